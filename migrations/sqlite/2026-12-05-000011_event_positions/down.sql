DROP TRIGGER audit_log_numbered;
DROP INDEX audit_log_tenant_number;
ALTER TABLE audit_log DROP COLUMN tenant_seq;
CREATE INDEX audit_log_tenant_seq ON audit_log (tenant_id, seq);
DROP TRIGGER events_numbered;
DROP INDEX events_tenant_number;
ALTER TABLE events DROP COLUMN tenant_seq;
CREATE INDEX events_tenant_seq ON events (tenant_id, seq);
