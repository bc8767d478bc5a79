-- SCIM Users. `data` holds the canonical resource document (JSON); the columns beside it hold
-- what is looked up, sorted on or constrained, so those lookups use indexes.
CREATE TABLE users (
    pk INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    user_name TEXT NOT NULL,
    -- NFC + lowercase: userName is caseExact false and unique per tenant (RFC 7643 §4.1.1).
    user_name_folded TEXT NOT NULL,
    external_id TEXT,
    display_name TEXT,
    display_name_folded TEXT,
    active BOOLEAN NOT NULL,
    lifecycle_state TEXT NOT NULL,
    deactivated_at TIMESTAMP,
    former_member_since TIMESTAMP,
    data TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    version BIGINT NOT NULL
);
CREATE UNIQUE INDEX users_id ON users (id);
CREATE UNIQUE INDEX users_tenant_user_name ON users (tenant_id, user_name_folded);
CREATE INDEX users_tenant_external_id ON users (tenant_id, external_id);
CREATE INDEX users_tenant_display_name ON users (tenant_id, display_name_folded);
CREATE INDEX users_tenant_pk ON users (tenant_id, pk);
CREATE INDEX users_tenant_updated ON users (tenant_id, updated_at);

-- One row per item of a multi-valued attribute (emails, phoneNumbers, …): the search index
-- behind filters such as `emails[type eq "work"].value eq "…"`. Rewritten with the user.
CREATE TABLE user_values (
    tenant_id TEXT NOT NULL,
    user_pk BIGINT NOT NULL REFERENCES users (pk) ON DELETE CASCADE,
    attr TEXT NOT NULL,
    idx INTEGER NOT NULL,
    value TEXT,
    value_folded TEXT,
    item_type TEXT,
    is_primary BOOLEAN NOT NULL,
    item TEXT NOT NULL,
    PRIMARY KEY (user_pk, attr, idx)
);
CREATE INDEX user_values_lookup ON user_values (tenant_id, attr, value_folded);
