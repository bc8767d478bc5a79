-- Authorization servers a tenant trusts (docs/oauth.md, "External authorization servers"): their
-- RS256/ES256 access tokens, for this audience, are accepted on SCIM for the tenant, with at most
-- `scope`. One issuer and audience belong to one tenant, so a token names its tenant.
CREATE TABLE oauth_issuers (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    issuer TEXT NOT NULL,
    audience TEXT NOT NULL,
    jwks_url TEXT NOT NULL,
    scope TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX oauth_issuers_name ON oauth_issuers (tenant_id, name);
CREATE UNIQUE INDEX oauth_issuers_issuer ON oauth_issuers (issuer, audience);

-- Okta's authorization-code grant (docs/oauth.md, "Okta"): the redirect URIs a client may use
-- (space-separated, compared exactly), the one-time approvals the tenant's admin opens, the
-- codes they lead to, and the refresh tokens the codes are exchanged for. Secrets of each are
-- stored only as SHA-256.
ALTER TABLE oauth_clients ADD COLUMN redirect_uris TEXT;
CREATE TABLE oauth_approvals (
    ticket_hash TEXT PRIMARY KEY NOT NULL,
    client_id TEXT NOT NULL REFERENCES oauth_clients (id) ON DELETE CASCADE,
    expires_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP
);
CREATE TABLE oauth_codes (
    code_hash TEXT PRIMARY KEY NOT NULL,
    client_id TEXT NOT NULL REFERENCES oauth_clients (id) ON DELETE CASCADE,
    redirect_uri TEXT NOT NULL,
    code_challenge TEXT,
    scope TEXT NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP
);
CREATE TABLE oauth_refresh_tokens (
    token_hash TEXT PRIMARY KEY NOT NULL,
    client_id TEXT NOT NULL REFERENCES oauth_clients (id) ON DELETE CASCADE,
    scope TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP
);
CREATE INDEX oauth_refresh_tokens_client ON oauth_refresh_tokens (client_id);
