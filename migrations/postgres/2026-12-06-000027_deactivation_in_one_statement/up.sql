-- A deactivation in one statement again. Since a deactivation names in its `user.deactivated`
-- event the sessions it revoked (`revokedSessions`), PostgreSQL ran it as a transaction of five
-- round trips (BEGIN, the account's row taken, the sessions revoked, this function, COMMIT), so
-- that no session opening meanwhile would be missed by the revocation's snapshot.
--
-- This function does the same in its own statements, in that order: each statement of a
-- plpgsql function that is not STABLE or IMMUTABLE takes a fresh snapshot. The update of the
-- account's row comes first and holds the row to the commit; opening a session updates the same
-- row before it inserts (db::users::lock_if_active), so it either committed before that update
-- took the row, and the revocation's later snapshot sees its session, or it waits for this
-- commit and then finds the account inactive.
--
-- The revoked sessions' ids, in order, are added to each `user.deactivated` payload as its last
-- member, as the SQLite write adds them (db::records::Records::with_revoked_sessions): the
-- payload is a JSON object written by Roster, so the member is spliced in before its closing
-- brace. Otherwise as migration 000009 says.
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
    revoked TEXT[];
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
        WITH r AS (UPDATE sessions SET revoked_at = p_now WHERE user_pk = written AND revoked_at IS NULL
                   RETURNING id)
        SELECT coalesce(array_agg(id ORDER BY id), '{}') INTO revoked FROM r;
    END IF;
    INSERT INTO events (tenant_id, kind, user_id, payload, created_at)
    SELECT p_tenant, e.kind, p_id,
           CASE WHEN revoked IS NOT NULL AND e.kind = 'user.deactivated'
                THEN left(e.payload, -1) || ',"revokedSessions":' || array_to_json(revoked)::text || '}'
                ELSE e.payload END,
           p_now
    FROM unnest(e_kinds, e_payloads) WITH ORDINALITY AS e(kind, payload, n)
    ORDER BY e.n;
    IF p_action IS NOT NULL THEN
        INSERT INTO audit_log (tenant_id, actor, action, user_id, state_before, state_after, at)
        VALUES (p_tenant, p_actor, p_action, p_id, p_before, p_after, p_now);
    END IF;
    RETURN written;
END
$$;
