-- The request log of each IdP connection, one row per connection and write of the log (about
-- once a second) instead of one row per request: `entries` holds the requests of the batch, oldest
-- first, as a JSON array of {"at": microseconds since 1970 UTC, "m": method, "p": masked path,
-- "s": status, "d": duration in microseconds, "t": scimType, "e": masked detail}. A row and
-- its two index entries per request cost a logged request about 37,000 instructions on SQLite,
-- about a fifth of a GET (bench/README.md, "What the request log costs"). `requests` and
-- `errors` (status 400 and up) count the entries, for the error rate without reading them.
-- Bounded as before: batches whose newest request is older than a day go, and the oldest batches
-- of a connection beyond its newest N requests.
CREATE TABLE request_batches (
    id INTEGER PRIMARY KEY,
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

-- Each logged request so far becomes a batch of its own (times to the millisecond).
INSERT INTO request_batches (tenant_id, connection, first_at, last_at, requests, errors, entries)
SELECT tenant_id, connection, at, at, 1, CASE WHEN status >= 400 THEN 1 ELSE 0 END,
    json_array(json_object(
        'at', CAST(round((julianday(at) - 2440587.5) * 86400000.0) AS INTEGER) * 1000,
        'm', method, 'p', path, 's', status, 'd', duration_us, 't', scim_type, 'e', detail))
FROM request_log ORDER BY id;

DROP TABLE request_log;
