CREATE TRIGGER users_counted_in AFTER INSERT ON users BEGIN
    INSERT INTO resource_counts (tenant_id, resource_type, slot, n) VALUES (NEW.tenant_id, 'User', 0, 1)
    ON CONFLICT (tenant_id, resource_type, slot) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER events_numbered AFTER INSERT ON events WHEN NEW.tenant_seq IS NULL
BEGIN
    UPDATE events
    SET tenant_seq = (SELECT COALESCE(MAX(tenant_seq), 0) + 1 FROM events WHERE tenant_id = NEW.tenant_id)
    WHERE seq = NEW.seq;
END;
CREATE TRIGGER audit_log_numbered AFTER INSERT ON audit_log WHEN NEW.tenant_seq IS NULL
BEGIN
    UPDATE audit_log
    SET tenant_seq = (SELECT COALESCE(MAX(tenant_seq), 0) + 1 FROM audit_log WHERE tenant_id = NEW.tenant_id)
    WHERE seq = NEW.seq;
END;
