// @generated automatically by Diesel CLI.

diesel::table! {
    archive_exports (seq) {
        seq -> BigInt,
        tenant_id -> Text,
        user_id -> Text,
        destination -> Text,
        sealed -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    audit_log (seq) {
        seq -> BigInt,
        tenant_id -> Text,
        actor -> Text,
        action -> Text,
        user_id -> Text,
        state_before -> Nullable<Text>,
        state_after -> Nullable<Text>,
        at -> Timestamp,
        tenant_seq -> Nullable<BigInt>,
    }
}

diesel::table! {
    content (id) {
        id -> Text,
        tenant_id -> Text,
        kind -> Text,
        author_pk -> BigInt,
        author_name -> Text,
        parent_id -> Nullable<Text>,
        recipient_pk -> Nullable<BigInt>,
        body -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    events (seq) {
        seq -> BigInt,
        tenant_id -> Text,
        kind -> Text,
        user_id -> Nullable<Text>,
        payload -> Text,
        created_at -> Timestamp,
        tenant_seq -> Nullable<BigInt>,
    }
}

diesel::table! {
    group_members (group_pk, member_id) {
        tenant_id -> Text,
        group_pk -> BigInt,
        member_id -> Text,
        member_type -> Text,
        user_pk -> Nullable<BigInt>,
        member_group_pk -> Nullable<BigInt>,
        display -> Nullable<Text>,
    }
}

diesel::table! {
    resource_counts (tenant_id, resource_type, slot) {
        tenant_id -> Text,
        resource_type -> Text,
        slot -> Integer,
        n -> BigInt,
    }
}

diesel::table! {
    scim_groups (pk) {
        pk -> BigInt,
        tenant_id -> Text,
        id -> Text,
        display_name -> Text,
        display_name_folded -> Text,
        external_id -> Nullable<Text>,
        data -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> BigInt,
    }
}

diesel::table! {
    server_settings (name) {
        name -> Text,
        value -> Text,
    }
}

diesel::table! {
    sessions (id) {
        id -> Text,
        tenant_id -> Text,
        user_pk -> BigInt,
        token_hash -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    tenants (id) {
        id -> Text,
        name -> Text,
        created_at -> Timestamp,
        grace_days -> Integer,
        delete_policy -> Text,
        former_member_after_days -> Nullable<Integer>,
        delete_after_days -> Nullable<Integer>,
        archive_export -> Bool,
        strict_validation -> Bool,
        event_retention_days -> Nullable<Integer>,
        archive_dir -> Nullable<Text>,
        archive_hold_hours -> Integer,
    }
}

diesel::table! {
    tokens (jti) {
        jti -> Text,
        tenant_id -> Text,
        name -> Text,
        scope -> Text,
        issued_at -> Timestamp,
        expires_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    tombstones (tenant_id, user_id) {
        tenant_id -> Text,
        user_id -> Text,
        deleted_at -> Timestamp,
    }
}

diesel::table! {
    user_values (user_pk, attr, idx) {
        tenant_id -> Text,
        user_pk -> BigInt,
        attr -> Text,
        idx -> Integer,
        value -> Nullable<Text>,
        value_folded -> Nullable<Text>,
        item_type -> Nullable<Text>,
        is_primary -> Bool,
        item -> Text,
    }
}

diesel::table! {
    users (pk) {
        pk -> BigInt,
        tenant_id -> Text,
        id -> Text,
        user_name -> Text,
        user_name_folded -> Text,
        external_id -> Nullable<Text>,
        display_name -> Nullable<Text>,
        display_name_folded -> Nullable<Text>,
        active -> Bool,
        lifecycle_state -> Text,
        deactivated_at -> Nullable<Timestamp>,
        former_member_since -> Nullable<Timestamp>,
        data -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> BigInt,
        deleted_at -> Nullable<Timestamp>,
    }
}

diesel::joinable!(archive_exports -> tenants (tenant_id));
diesel::joinable!(group_members -> users (user_pk));
diesel::joinable!(sessions -> users (user_pk));
diesel::joinable!(scim_groups -> tenants (tenant_id));
diesel::joinable!(tokens -> tenants (tenant_id));
diesel::joinable!(user_values -> users (user_pk));
diesel::joinable!(users -> tenants (tenant_id));

diesel::allow_tables_to_appear_in_same_query!(
    archive_exports,
    audit_log,
    content,
    events,
    group_members,
    resource_counts,
    scim_groups,
    server_settings,
    sessions,
    tenants,
    tokens,
    tombstones,
    user_values,
    users,
);
