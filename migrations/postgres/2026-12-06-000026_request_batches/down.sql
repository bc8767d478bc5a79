CREATE TABLE request_log (
    id BIGSERIAL PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    connection TEXT NOT NULL,
    at TIMESTAMP NOT NULL,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    status INTEGER NOT NULL,
    duration_us BIGINT NOT NULL,
    scim_type TEXT,
    detail TEXT
);
CREATE INDEX request_log_connection ON request_log (tenant_id, connection, id);
CREATE INDEX request_log_at ON request_log (at);
INSERT INTO request_log (tenant_id, connection, at, method, path, status, duration_us, scim_type, detail)
SELECT b.tenant_id, b.connection, to_timestamp((e.value ->> 'at')::BIGINT / 1000000.0) AT TIME ZONE 'UTC',
    e.value ->> 'm', e.value ->> 'p', (e.value ->> 's')::INTEGER, (e.value ->> 'd')::BIGINT,
    e.value ->> 't', e.value ->> 'e'
FROM request_batches b, jsonb_array_elements(b.entries::jsonb) WITH ORDINALITY AS e(value, n)
ORDER BY b.id, e.n;
DROP TABLE request_batches;
