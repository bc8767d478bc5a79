-- Security Event Tokens (docs/security-events.md): SETs are built from committed events when a
-- stream polls or is pushed to, so what this adds is small.
--
-- `txn`: what the events of one transaction share (RFC 8417 §2.2 `txn`), set when the event
-- is written: on PostgreSQL the transaction id (`txid_current()`, 64 bits, never reused). Older events have
-- none; their SETs carry a `txn` of their own.
ALTER TABLE events ADD COLUMN txn BIGINT;
-- A default set after the column exists: the rows already there keep NULL, not the migration's id.
ALTER TABLE events ALTER COLUMN txn SET DEFAULT txid_current();

-- A stream is a destination of the delivery engine like a webhook: `kind` tells them apart
-- ('webhook', 'set-push', 'set-poll'). A stream's `audience` is its SETs' `aud`; a poll
-- stream has no URL (empty) and no signing secret (empty): its SETs are signed with the
-- tenant's key.
ALTER TABLE webhooks ADD COLUMN kind TEXT NOT NULL DEFAULT 'webhook';
ALTER TABLE webhooks ADD COLUMN audience TEXT;

-- One event may become several SETs (a deactivation: prov:deactivate, RISC account-disabled,
-- CAEP session-revoked); a stream's delivery is of one of them, `part` its place in the list.
ALTER TABLE deliveries ADD COLUMN part INTEGER NOT NULL DEFAULT 0;
-- A poll stream's SETs wait, `awaiting`, for the receiver's acknowledgement.
CREATE INDEX deliveries_awaiting ON deliveries (webhook_id, id) WHERE status = 'awaiting';

-- A tenant's SET signing keys. The private key is sealed (XChaCha20-Poly1305, the webhook
-- secrets' key, with the kid bound in); the public one is published as a JWK until
-- `expires_at` (a key replaced by a rotation stays published for a grace period).
CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    alg TEXT NOT NULL,
    private_key TEXT NOT NULL,
    public_jwk TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    retired_at TIMESTAMP,
    expires_at TIMESTAMP
);
CREATE INDEX signing_keys_tenant ON signing_keys (tenant_id, created_at);
