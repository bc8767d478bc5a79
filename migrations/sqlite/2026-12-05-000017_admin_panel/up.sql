-- The Admin Panel (docs/admin-panel.md): one-time sign-in links and the sessions they open. Only
-- the SHA-256 of a link's or a session's secret is stored. Both belong to the tenant the link
-- was made for (`home_tenant_id`); a session of an all-tenants link may look at another tenant
-- (`tenant_id`, checked again on every request).
CREATE TABLE admin_links (
    token_hash TEXT PRIMARY KEY NOT NULL,
    home_tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    all_tenants BOOLEAN NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP
);

CREATE TABLE admin_sessions (
    id TEXT PRIMARY KEY NOT NULL,
    token_hash TEXT NOT NULL,
    home_tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    tenant_id TEXT NOT NULL,
    name TEXT NOT NULL,
    all_tenants BOOLEAN NOT NULL,
    created_at TIMESTAMP NOT NULL,
    last_seen_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP
);
CREATE UNIQUE INDEX admin_sessions_token ON admin_sessions (token_hash);
CREATE INDEX admin_sessions_home ON admin_sessions (home_tenant_id, created_at);

-- The people list filters by state and pages by pk; a person's timeline reads their events and
-- audit entries: each through an index, at any number of accounts.
CREATE INDEX users_tenant_state_pk ON users (tenant_id, lifecycle_state, pk);
CREATE INDEX events_tenant_user ON events (tenant_id, user_id, seq);
CREATE INDEX audit_log_tenant_user ON audit_log (tenant_id, user_id, seq);
