DROP TABLE tombstones;
DROP TABLE audit_log;
DROP TABLE events;
DROP TABLE content;
DROP TABLE sessions;
ALTER TABLE tenants DROP COLUMN archive_export;
ALTER TABLE tenants DROP COLUMN delete_after_days;
ALTER TABLE tenants DROP COLUMN former_member_after_days;
