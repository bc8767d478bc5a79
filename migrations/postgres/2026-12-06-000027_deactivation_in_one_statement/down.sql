-- roster_write_user as migration 000009 defined it: the revoked sessions are not named, and a
-- deactivation takes the account's row and revokes its sessions in statements of its own.
CREATE OR REPLACE FUNCTION roster_write_user(
    p_tenant TEXT,
    p_id TEXT,
    p_pk BIGINT,
    p_version BIGINT,
    p_now TIMESTAMP,
    p_user_name TEXT,
    p_user_name_folded TEXT,
    p_external_id TEXT,
    p_display_name TEXT,
    p_display_name_folded TEXT,
    p_active BOOLEAN,
    p_lifecycle_state TEXT,
    p_deactivated_at TIMESTAMP,
    p_former_member_since TIMESTAMP,
    p_data TEXT,
    p_values BOOLEAN,
    v_attrs TEXT[],
    v_idxs INTEGER[],
    v_values TEXT[],
    v_folded TEXT[],
    v_types TEXT[],
    v_primary BOOLEAN[],
    v_items TEXT[],
    p_revoke_sessions BOOLEAN,
    e_kinds TEXT[],
    e_payloads TEXT[],
    p_actor TEXT,
    p_action TEXT,
    p_before TEXT,
    p_after TEXT
) RETURNS BIGINT
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    written BIGINT;
BEGIN
    IF p_pk IS NULL THEN
        INSERT INTO users (tenant_id, id, created_at, updated_at, version, user_name, user_name_folded,
                           external_id, display_name, display_name_folded, active, lifecycle_state,
                           deactivated_at, former_member_since, data)
        VALUES (p_tenant, p_id, p_now, p_now, 1, p_user_name, p_user_name_folded, p_external_id,
                p_display_name, p_display_name_folded, p_active, p_lifecycle_state, p_deactivated_at,
                p_former_member_since, p_data)
        RETURNING pk INTO written;
    ELSE
        UPDATE users SET user_name = p_user_name, user_name_folded = p_user_name_folded,
                         external_id = p_external_id, display_name = p_display_name,
                         display_name_folded = p_display_name_folded, active = p_active,
                         lifecycle_state = p_lifecycle_state, deactivated_at = p_deactivated_at,
                         former_member_since = p_former_member_since, data = p_data,
                         updated_at = p_now, version = p_version + 1
        WHERE pk = p_pk AND version = p_version
        RETURNING pk INTO written;
        IF NOT FOUND THEN
            RETURN NULL;
        END IF;
        IF p_values THEN
            DELETE FROM user_values WHERE user_pk = written;
        END IF;
    END IF;
    IF p_values THEN
        INSERT INTO user_values (tenant_id, user_pk, attr, idx, value, value_folded, item_type, is_primary, item)
        SELECT p_tenant, written, v.attr, v.idx, v.value, v.folded, v.kind, v.is_primary, v.item
        FROM unnest(v_attrs, v_idxs, v_values, v_folded, v_types, v_primary, v_items)
            AS v(attr, idx, value, folded, kind, is_primary, item);
    END IF;
    IF p_revoke_sessions THEN
        UPDATE sessions SET revoked_at = p_now WHERE user_pk = written AND revoked_at IS NULL;
    END IF;
    INSERT INTO events (tenant_id, kind, user_id, payload, created_at)
    SELECT p_tenant, e.kind, p_id, e.payload, p_now
    FROM unnest(e_kinds, e_payloads) WITH ORDINALITY AS e(kind, payload, n)
    ORDER BY e.n;
    IF p_action IS NOT NULL THEN
        INSERT INTO audit_log (tenant_id, actor, action, user_id, state_before, state_after, at)
        VALUES (p_tenant, p_actor, p_action, p_id, p_before, p_after, p_now);
    END IF;
    RETURN written;
END
$$;
