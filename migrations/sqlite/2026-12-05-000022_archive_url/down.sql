ALTER TABLE archive_exports DROP COLUMN last_error;
ALTER TABLE archive_exports DROP COLUMN next_attempt_at;
ALTER TABLE archive_exports DROP COLUMN attempts;
ALTER TABLE tenants DROP COLUMN archive_secret;
ALTER TABLE tenants DROP COLUMN archive_allow_private;
ALTER TABLE tenants DROP COLUMN archive_url;
