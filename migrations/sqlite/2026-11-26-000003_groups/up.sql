-- SCIM Groups ("groups" is an SQL keyword, hence the prefix). Members live in their own table so
-- that adding or removing one costs the same in a group of ten and of a hundred thousand.
CREATE TABLE scim_groups (
    pk INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    display_name TEXT NOT NULL,
    -- NFC + lowercase: displayName is unique per tenant regardless of case.
    display_name_folded TEXT NOT NULL,
    external_id TEXT,
    data TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    version BIGINT NOT NULL
);
CREATE UNIQUE INDEX scim_groups_id ON scim_groups (id);
CREATE UNIQUE INDEX scim_groups_tenant_name ON scim_groups (tenant_id, display_name_folded);
CREATE INDEX scim_groups_tenant_external_id ON scim_groups (tenant_id, external_id);
CREATE INDEX scim_groups_tenant_pk ON scim_groups (tenant_id, pk);

-- A member is a user or a group; whichever it is, deleting it removes the membership.
CREATE TABLE group_members (
    tenant_id TEXT NOT NULL,
    group_pk BIGINT NOT NULL REFERENCES scim_groups (pk) ON DELETE CASCADE,
    member_id TEXT NOT NULL,
    member_type TEXT NOT NULL,
    user_pk BIGINT REFERENCES users (pk) ON DELETE CASCADE,
    member_group_pk BIGINT REFERENCES scim_groups (pk) ON DELETE CASCADE,
    PRIMARY KEY (group_pk, member_id)
);
CREATE INDEX group_members_member ON group_members (tenant_id, member_id);
CREATE INDEX group_members_user ON group_members (user_pk);
CREATE INDEX group_members_member_group ON group_members (member_group_pk);
