-- When each token was last used: kept in memory on each node and written at most once a
-- minute per token, so that SCIM requests carry no write of their own for it.
ALTER TABLE tokens ADD COLUMN last_used_at TIMESTAMP;

-- The request log of each IdP connection (docs/admin-panel.md, "Connections"): one row per
-- request a token was identified on, written in batches off the request path. The path and
-- the error detail are stored masked (no personal values); bodies are never stored. Bounded:
-- rows older than a day and rows beyond the newest N of a connection are pruned as batches
-- are written. `connection` is the token's jti, or the OAuth client id for its access tokens.
-- A plain rowid key (no AUTOINCREMENT and its sqlite_sequence write per row): rows are only
-- removed oldest first, so new ids keep growing.
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
