-- OAuth 2.0 clients of a tenant (docs/oauth.md): what an IdP connection authenticates as at
-- /oauth/token. A client proves itself with a secret (stored only as its SHA-256), or with a JWT
-- assertion (RFC 7523 §2.2) whose issuer, subject and audience it names and whose keys come
-- from a JWKS document (`jwks_url`) or are stored with it (`jwks`).
CREATE TABLE oauth_clients (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    scope TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP,
    assertion_issuer TEXT,
    assertion_subject TEXT,
    assertion_audience TEXT,
    jwks_url TEXT,
    jwks TEXT
);
CREATE UNIQUE INDEX oauth_clients_name ON oauth_clients (tenant_id, name);

-- A client's secrets: several may be live at once, for rotation.
CREATE TABLE oauth_client_secrets (
    id TEXT PRIMARY KEY NOT NULL,
    client_id TEXT NOT NULL REFERENCES oauth_clients (id) ON DELETE CASCADE,
    secret_hash TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP,
    revoked_at TIMESTAMP
);
CREATE UNIQUE INDEX oauth_client_secrets_hash ON oauth_client_secrets (secret_hash);
CREATE INDEX oauth_client_secrets_client ON oauth_client_secrets (client_id);

-- Access tokens the token endpoint issued name their client, so that RFC 7009 revocation can
-- check who asks and revoking a client ends its tokens. Tokens of `roster token issue`: NULL.
ALTER TABLE tokens ADD COLUMN client_id TEXT REFERENCES oauth_clients (id) ON DELETE CASCADE;
CREATE INDEX tokens_client ON tokens (client_id);

-- Assertion ids (`jti`) seen, until the assertion expires: a replayed assertion is refused on
-- every node sharing the database.
CREATE TABLE oauth_assertion_jtis (
    issuer TEXT NOT NULL,
    jti TEXT NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    PRIMARY KEY (issuer, jti)
);
CREATE INDEX oauth_assertion_jtis_expiry ON oauth_assertion_jtis (expires_at);

-- What happened at the token endpoint: every issued token and every refusal (brute force shows
-- here). `tenant_id` is NULL when the client named is unknown.
CREATE TABLE oauth_audit (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT REFERENCES tenants (id) ON DELETE CASCADE,
    client_id TEXT NOT NULL,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL,
    peer TEXT,
    at TIMESTAMP NOT NULL
);
CREATE INDEX oauth_audit_tenant ON oauth_audit (tenant_id, at);
