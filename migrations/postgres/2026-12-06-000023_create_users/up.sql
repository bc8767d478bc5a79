-- Users' creates, many as one statement (db::write::insert_users): a Bulk request's creates on
-- PostgreSQL, a chunk at a time. A chunk that wrote each create as SAVEPOINT, a call of
-- roster_write_user and RELEASE took three round trips per user, and the savepoints' own
-- subtransaction ids capped a chunk at 30 (a backend caches 64; see CHUNK_OPERATIONS_POSTGRES
-- in src/bulk.rs); one statement takes one round trip for the chunk and no subtransaction.
-- Each user's rows are those roster_write_user writes for a create (tests/api/write_paths.rs
-- holds the two alike). A single POST keeps roster_write_user: for one user this statement
-- costs the database about twice as much (0.20 ms against 0.12 ms, measured in a loop of 3000
-- calls), for 250 users 0.08 ms a user.
--
-- The users come as parallel u_ arrays, in order. Their items (v_), events (e_) and audit
-- entries (a_) come as parallel arrays too, each row naming its user by its place in the u_
-- arrays (from 1). A user whose userName (or id) is taken — stored already, committed by a
-- concurrent transaction while this one waited for it, or earlier in the same call — is not
-- written, nor is anything of it: ON CONFLICT DO NOTHING takes the place of the unique
-- violation a savepoint would have caught, so one taken userName fails only its own user. It
-- returns one row per user, in order: the new pk, or NULL for a user not written. Any other
-- failure (the tenant deleted meanwhile) fails the whole statement, which wrote nothing.
--
-- The events are inserted in the users' order (and each user's in its order), so that their
-- sequence follows the request as a loop of single creates would. The triggers on `users`
-- (resource_counts, user_modified) fire for each row as they do for a single insert.
--
-- plan_cache_mode as in roster_write_user (migration 000009).
CREATE FUNCTION roster_create_users(
    p_tenant TEXT,
    p_now TIMESTAMP,
    u_ids TEXT[],
    u_user_names TEXT[],
    u_user_names_folded TEXT[],
    u_external_ids TEXT[],
    u_display_names TEXT[],
    u_display_names_folded TEXT[],
    u_active BOOLEAN[],
    u_lifecycle_states TEXT[],
    u_deactivated_at TIMESTAMP[],
    u_former_member_since TIMESTAMP[],
    u_data TEXT[],
    v_users INTEGER[],
    v_attrs TEXT[],
    v_idxs INTEGER[],
    v_values TEXT[],
    v_folded TEXT[],
    v_types TEXT[],
    v_primary BOOLEAN[],
    v_items TEXT[],
    e_users INTEGER[],
    e_kinds TEXT[],
    e_payloads TEXT[],
    a_users INTEGER[],
    a_actors TEXT[],
    a_actions TEXT[],
    a_before TEXT[],
    a_after TEXT[]
) RETURNS SETOF BIGINT
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
    RETURN QUERY
    WITH new AS (
        SELECT *
        FROM unnest(u_ids, u_user_names, u_user_names_folded, u_external_ids, u_display_names,
                    u_display_names_folded, u_active, u_lifecycle_states, u_deactivated_at,
                    u_former_member_since, u_data)
            WITH ORDINALITY AS u(id, user_name, user_name_folded, external_id, display_name,
                                 display_name_folded, active, lifecycle_state, deactivated_at,
                                 former_member_since, data, n)
    ), inserted AS (
        INSERT INTO users (tenant_id, id, created_at, updated_at, version, user_name, user_name_folded,
                           external_id, display_name, display_name_folded, active, lifecycle_state,
                           deactivated_at, former_member_since, data)
        SELECT p_tenant, new.id, p_now, p_now, 1, new.user_name, new.user_name_folded, new.external_id,
               new.display_name, new.display_name_folded, new.active, new.lifecycle_state,
               new.deactivated_at, new.former_member_since, new.data
        FROM new
        ORDER BY new.n
        ON CONFLICT DO NOTHING
        RETURNING users.pk, users.id
    ), written AS (
        SELECT new.n, inserted.pk, inserted.id FROM new JOIN inserted ON inserted.id = new.id
    ), items AS (
        INSERT INTO user_values (tenant_id, user_pk, attr, idx, value, value_folded, item_type, is_primary, item)
        SELECT p_tenant, written.pk, v.attr, v.idx, v.value, v.folded, v.kind, v.is_primary, v.item
        FROM unnest(v_users, v_attrs, v_idxs, v_values, v_folded, v_types, v_primary, v_items)
            AS v(n, attr, idx, value, folded, kind, is_primary, item)
        JOIN written ON written.n = v.n
    ), logged AS (
        INSERT INTO events (tenant_id, kind, user_id, payload, created_at)
        SELECT p_tenant, e.kind, written.id, e.payload, p_now
        FROM unnest(e_users, e_kinds, e_payloads) WITH ORDINALITY AS e(n, kind, payload, k)
        JOIN written ON written.n = e.n
        ORDER BY e.k
    ), audited AS (
        INSERT INTO audit_log (tenant_id, actor, action, user_id, state_before, state_after, at)
        SELECT p_tenant, a.actor, a.action, written.id, a.state_before, a.state_after, p_now
        FROM unnest(a_users, a_actors, a_actions, a_before, a_after) WITH ORDINALITY
            AS a(n, actor, action, state_before, state_after, k)
        JOIN written ON written.n = a.n
        ORDER BY a.k
    )
    SELECT written.pk FROM new LEFT JOIN written ON written.n = new.n ORDER BY new.n;
END
$$;
