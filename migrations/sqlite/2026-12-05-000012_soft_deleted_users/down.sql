DROP TRIGGER users_counted_hidden;
DROP TRIGGER users_counted_out;
CREATE TRIGGER users_counted_out AFTER DELETE ON users BEGIN
    INSERT INTO resource_counts (tenant_id, resource_type, slot, n) VALUES (OLD.tenant_id, 'User', 0, -1)
    ON CONFLICT (tenant_id, resource_type, slot) DO UPDATE SET n = n - 1;
END;
ALTER TABLE users DROP COLUMN deleted_at;
