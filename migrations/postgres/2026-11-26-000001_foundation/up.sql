-- Tenants own every other row.
CREATE TABLE tenants (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    -- Lifecycle policy (docs/lifecycle.md); whole days, 0 allowed.
    grace_days INTEGER NOT NULL DEFAULT 4,
    delete_policy TEXT NOT NULL DEFAULT 'deactivate-then-delete'
);
CREATE UNIQUE INDEX tenants_name ON tenants (name);

-- Server-wide values such as the generated token signing key.
CREATE TABLE server_settings (
    name TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);

-- Every token Roster has issued, so it can be listed and revoked by jti.
CREATE TABLE tokens (
    jti TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    scope TEXT NOT NULL,
    issued_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP,
    revoked_at TIMESTAMP
);
CREATE INDEX tokens_tenant ON tokens (tenant_id);
