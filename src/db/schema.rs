// @generated automatically by Diesel CLI.

diesel::table! {
    server_settings (name) {
        name -> Text,
        value -> Text,
    }
}

diesel::table! {
    tenants (id) {
        id -> Text,
        name -> Text,
        created_at -> Timestamp,
        grace_days -> Integer,
        delete_policy -> Text,
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

diesel::joinable!(tokens -> tenants (tenant_id));

diesel::allow_tables_to_appear_in_same_query!(server_settings, tenants, tokens,);
