// @generated automatically by Diesel CLI.

diesel::table! {
    admin_links (token_hash) {
        token_hash -> Text,
        home_tenant_id -> Text,
        name -> Text,
        all_tenants -> Bool,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    admin_sessions (id) {
        id -> Text,
        token_hash -> Text,
        home_tenant_id -> Text,
        tenant_id -> Text,
        name -> Text,
        all_tenants -> Bool,
        created_at -> Timestamp,
        last_seen_at -> Timestamp,
        expires_at -> Timestamp,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    archive_exports (seq) {
        seq -> BigInt,
        tenant_id -> Text,
        user_id -> Text,
        destination -> Text,
        sealed -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        attempts -> Integer,
        next_attempt_at -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
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
        parent_id -> Nullable<Text>,
        recipient_pk -> Nullable<BigInt>,
        body -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    conversation_members (conversation_id, user_pk) {
        conversation_id -> Text,
        user_pk -> BigInt,
        added_at -> Timestamp,
    }
}

diesel::table! {
    conversation_messages (seq) {
        seq -> BigInt,
        id -> Text,
        conversation_id -> Text,
        sender_pk -> BigInt,
        body -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    conversations (id) {
        id -> Text,
        tenant_id -> Text,
        title -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    deliveries (id) {
        id -> BigInt,
        tenant_id -> Text,
        webhook_id -> Text,
        event_seq -> BigInt,
        user_id -> Nullable<Text>,
        status -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        lease_owner -> Nullable<Text>,
        lease_until -> Nullable<Timestamp>,
        last_status -> Nullable<Integer>,
        last_error -> Nullable<Text>,
        last_duration_ms -> Nullable<BigInt>,
        created_at -> Timestamp,
        finished_at -> Nullable<Timestamp>,
        part -> Integer,
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
        txn -> Nullable<BigInt>,
    }
}

diesel::table! {
    former_member_names (user_pk) {
        user_pk -> BigInt,
        name -> Text,
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
    oauth_approvals (ticket_hash) {
        ticket_hash -> Text,
        client_id -> Text,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    oauth_assertion_jtis (issuer, jti) {
        issuer -> Text,
        jti -> Text,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    oauth_audit (id) {
        id -> Text,
        tenant_id -> Nullable<Text>,
        client_id -> Text,
        outcome -> Text,
        detail -> Text,
        peer -> Nullable<Text>,
        at -> Timestamp,
    }
}

diesel::table! {
    oauth_client_secrets (id) {
        id -> Text,
        client_id -> Text,
        secret_hash -> Text,
        created_at -> Timestamp,
        expires_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    oauth_clients (id) {
        id -> Text,
        tenant_id -> Text,
        name -> Text,
        scope -> Text,
        created_at -> Timestamp,
        revoked_at -> Nullable<Timestamp>,
        assertion_issuer -> Nullable<Text>,
        assertion_subject -> Nullable<Text>,
        assertion_audience -> Nullable<Text>,
        jwks_url -> Nullable<Text>,
        jwks -> Nullable<Text>,
        redirect_uris -> Nullable<Text>,
    }
}

diesel::table! {
    oauth_codes (code_hash) {
        code_hash -> Text,
        client_id -> Text,
        redirect_uri -> Text,
        code_challenge -> Nullable<Text>,
        scope -> Text,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    oauth_issuers (id) {
        id -> Text,
        tenant_id -> Text,
        name -> Text,
        issuer -> Text,
        audience -> Text,
        jwks_url -> Text,
        scope -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    oauth_refresh_tokens (token_hash) {
        token_hash -> Text,
        client_id -> Text,
        scope -> Text,
        created_at -> Timestamp,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    request_batches (id) {
        id -> BigInt,
        tenant_id -> Text,
        connection -> Text,
        first_at -> Timestamp,
        last_at -> Timestamp,
        requests -> Integer,
        errors -> Integer,
        entries -> Text,
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
    signing_keys (kid) {
        kid -> Text,
        tenant_id -> Text,
        alg -> Text,
        private_key -> Text,
        public_jwk -> Text,
        created_at -> Timestamp,
        retired_at -> Nullable<Timestamp>,
        expires_at -> Nullable<Timestamp>,
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
        archive_url -> Nullable<Text>,
        archive_allow_private -> Bool,
        archive_secret -> Nullable<Text>,
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
        client_id -> Nullable<Text>,
        last_used_at -> Nullable<Timestamp>,
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

diesel::table! {
    webhooks (id) {
        id -> Text,
        tenant_id -> Text,
        url -> Text,
        event_types -> Text,
        allow_private -> Bool,
        secret -> Text,
        previous_secret -> Nullable<Text>,
        previous_secret_expires_at -> Nullable<Timestamp>,
        after_event -> BigInt,
        created_at -> Timestamp,
        kind -> Text,
        audience -> Nullable<Text>,
    }
}

diesel::joinable!(archive_exports -> tenants (tenant_id));
diesel::joinable!(group_members -> users (user_pk));
diesel::joinable!(oauth_approvals -> oauth_clients (client_id));
diesel::joinable!(oauth_audit -> tenants (tenant_id));
diesel::joinable!(oauth_client_secrets -> oauth_clients (client_id));
diesel::joinable!(oauth_clients -> tenants (tenant_id));
diesel::joinable!(oauth_codes -> oauth_clients (client_id));
diesel::joinable!(oauth_issuers -> tenants (tenant_id));
diesel::joinable!(oauth_refresh_tokens -> oauth_clients (client_id));
diesel::joinable!(sessions -> users (user_pk));
diesel::joinable!(request_batches -> tenants (tenant_id));
diesel::joinable!(signing_keys -> tenants (tenant_id));
diesel::joinable!(scim_groups -> tenants (tenant_id));
diesel::joinable!(tokens -> oauth_clients (client_id));
diesel::joinable!(tokens -> tenants (tenant_id));
diesel::joinable!(user_values -> users (user_pk));
diesel::joinable!(users -> tenants (tenant_id));

diesel::allow_tables_to_appear_in_same_query!(
    admin_links,
    admin_sessions,
    archive_exports,
    audit_log,
    content,
    conversation_members,
    conversation_messages,
    conversations,
    deliveries,
    events,
    former_member_names,
    group_members,
    oauth_approvals,
    oauth_assertion_jtis,
    oauth_audit,
    oauth_client_secrets,
    oauth_clients,
    oauth_codes,
    oauth_issuers,
    oauth_refresh_tokens,
    request_batches,
    resource_counts,
    scim_groups,
    server_settings,
    sessions,
    signing_keys,
    tenants,
    tokens,
    tombstones,
    user_values,
    users,
    webhooks,
);
