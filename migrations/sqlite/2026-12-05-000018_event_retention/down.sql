DROP TABLE archive_exports;
ALTER TABLE tenants DROP COLUMN archive_hold_hours;
ALTER TABLE tenants DROP COLUMN archive_dir;
ALTER TABLE tenants DROP COLUMN event_retention_days;
