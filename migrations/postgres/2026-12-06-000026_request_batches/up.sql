-- The request log of each IdP connection, one row per connection and write of the log (about
-- once a second, per node) instead of one row per request: `entries` holds the requests of the
-- batch, oldest first, as a JSON array of {"at": microseconds since 1970 UTC, "m": method,
-- "p": masked path, "s": status, "d": duration in microseconds, "t": scimType, "e": masked
-- detail}. `requests` and `errors` (status 400 and up) count the entries, for the error rate
-- without reading them. Bounded as before: batches whose newest request is older than a day go,
-- and the oldest batches of a connection beyond its newest N requests. See the SQLite migration
-- of the same name for what a row per request cost.
CREATE TABLE request_batches (
    id BIGSERIAL PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    connection TEXT NOT NULL,
    first_at TIMESTAMP NOT NULL,
    last_at TIMESTAMP NOT NULL,
    requests INTEGER NOT NULL,
    errors INTEGER NOT NULL,
    entries TEXT NOT NULL
);
CREATE INDEX request_batches_connection ON request_batches (tenant_id, connection, id);
CREATE INDEX request_batches_last_at ON request_batches (last_at);

-- Each logged request so far becomes a batch of its own.
INSERT INTO request_batches (tenant_id, connection, first_at, last_at, requests, errors, entries)
SELECT tenant_id, connection, at, at, 1, CASE WHEN status >= 400 THEN 1 ELSE 0 END,
    json_build_array(json_build_object(
        'at', (extract(epoch FROM at) * 1000000)::BIGINT,
        'm', method, 'p', path, 's', status, 'd', duration_us, 't', scim_type, 'e', detail))::TEXT
FROM request_log ORDER BY id;

DROP TABLE request_log;
