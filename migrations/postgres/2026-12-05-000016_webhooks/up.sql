-- Webhooks: a tenant's endpoints, and the deliveries of its outbox events to them
-- (docs/webhooks.md). A delivery row names its event by number and never copies the event's
-- payload: the request body is built from the event row when it is sent, so an event scrubbed
-- meanwhile sends what it now holds, and a purged event's delivery is dropped.
CREATE TABLE webhooks (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    url TEXT NOT NULL,
    -- Comma-separated event types; empty: every type.
    event_types TEXT NOT NULL DEFAULT '',
    allow_private BOOLEAN NOT NULL DEFAULT FALSE,
    -- Sealed (XChaCha20-Poly1305) under the server's webhook secret key.
    secret TEXT NOT NULL,
    previous_secret TEXT,
    previous_secret_expires_at TIMESTAMP,
    -- The tenant's events up to this number have been given their deliveries.
    after_event BIGINT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX webhooks_tenant ON webhooks (tenant_id, created_at);

CREATE TABLE deliveries (
    id BIGSERIAL PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    webhook_id TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    -- The event's number among its tenant's events (`events.tenant_seq`).
    event_seq BIGINT NOT NULL,
    -- The account the event is about: its deliveries to one endpoint go in order.
    user_id TEXT,
    -- pending, delivered, dead (every try failed) or dropped (the event was purged).
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL,
    lease_owner TEXT,
    lease_until TIMESTAMP,
    last_status INTEGER,
    last_error TEXT,
    last_duration_ms BIGINT,
    created_at TIMESTAMP NOT NULL,
    finished_at TIMESTAMP
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at, id) WHERE status = 'pending';
CREATE INDEX deliveries_line ON deliveries (webhook_id, user_id, id) WHERE status = 'pending';
CREATE INDEX deliveries_log ON deliveries (tenant_id, webhook_id, id);
