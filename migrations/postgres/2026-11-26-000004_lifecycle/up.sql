-- Per-tenant lifecycle policy beyond the grace period (docs/lifecycle.md).
ALTER TABLE tenants ADD COLUMN former_member_after_days INTEGER;
ALTER TABLE tenants ADD COLUMN delete_after_days INTEGER;
ALTER TABLE tenants ADD COLUMN archive_export BOOLEAN NOT NULL DEFAULT FALSE;

-- Sign-in sessions of the product. The token itself is never stored, only its SHA-256.
CREATE TABLE sessions (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_pk BIGINT NOT NULL REFERENCES users (pk) ON DELETE CASCADE,
    token_hash TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP
);
CREATE UNIQUE INDEX sessions_token ON sessions (token_hash);
CREATE INDEX sessions_user ON sessions (user_pk);

-- Posts, comments and direct messages. `author_name` keeps the name the author had when
-- writing, so content survives the author becoming a Former Member.
CREATE TABLE content (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    author_pk BIGINT NOT NULL REFERENCES users (pk) ON DELETE CASCADE,
    author_name TEXT NOT NULL,
    parent_id TEXT REFERENCES content (id) ON DELETE CASCADE,
    recipient_pk BIGINT REFERENCES users (pk) ON DELETE SET NULL,
    body TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX content_author ON content (author_pk);
CREATE INDEX content_tenant_created ON content (tenant_id, created_at);
CREATE INDEX content_parent ON content (parent_id);

-- The transactional outbox: every lifecycle change is written here in its own transaction.
CREATE TABLE events (
    seq BIGSERIAL PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    user_id TEXT,
    payload TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX events_tenant_seq ON events (tenant_id, seq);

-- Who changed which account's state, and when. Never holds removed personal data.
CREATE TABLE audit_log (
    seq BIGSERIAL PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    user_id TEXT NOT NULL,
    state_before TEXT,
    state_after TEXT,
    at TIMESTAMP NOT NULL
);
CREATE INDEX audit_log_tenant_seq ON audit_log (tenant_id, seq);

-- What is left of a deleted account: its id and when it went.
CREATE TABLE tombstones (
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL,
    deleted_at TIMESTAMP NOT NULL,
    PRIMARY KEY (tenant_id, user_id)
);
