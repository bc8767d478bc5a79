CREATE TABLE request_log (
    id INTEGER PRIMARY KEY,
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
SELECT b.tenant_id, b.connection,
    datetime(json_extract(e.value, '$.at') / 1000000.0, 'unixepoch', 'subsec'),
    json_extract(e.value, '$.m'), json_extract(e.value, '$.p'), json_extract(e.value, '$.s'),
    json_extract(e.value, '$.d'), json_extract(e.value, '$.t'), json_extract(e.value, '$.e')
FROM request_batches b, json_each(b.entries) e ORDER BY b.id, e.key;
DROP TABLE request_batches;
