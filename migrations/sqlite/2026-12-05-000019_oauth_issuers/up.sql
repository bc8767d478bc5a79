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
