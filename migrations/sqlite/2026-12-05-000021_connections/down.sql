DROP TABLE request_log;
ALTER TABLE tokens DROP COLUMN last_used_at;
