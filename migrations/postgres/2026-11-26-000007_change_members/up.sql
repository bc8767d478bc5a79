-- A batch of member changes to one group, in one statement (see src/groups/batches.rs and
-- db::groups::change_members): the version moved on by p_changes, the members in p_removed
-- deleted, and the members in the parallel arrays inserted, skipping those already there except
-- the ones in p_readded (removed and added again), whose display name is replaced. Returns the
-- group as it is after, or nothing when it does not exist.
--
-- A function only so that it can carry plan_cache_mode: as a prepared statement PostgreSQL
-- planned it anew on every run, because its reusable plan assumed ten elements per array and
-- so looked dearer than planning for the two or three a batch holds; planning was a third of
-- the database's time for each batch. The DELETE joins each id to the primary key rather than
-- testing member_id = ANY(...), whose plan depends on statistics that are stale after a group
-- has grown by many members at once.
CREATE FUNCTION roster_change_members(
    p_changes BIGINT,
    p_now TIMESTAMP,
    p_group_id TEXT,
    p_tenant TEXT,
    p_removed TEXT[],
    p_ids TEXT[],
    p_kinds TEXT[],
    p_user_pks BIGINT[],
    p_group_pks BIGINT[],
    p_displays TEXT[],
    p_readded TEXT[]
) RETURNS SETOF scim_groups
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
    RETURN QUERY
    WITH grp AS (
        UPDATE scim_groups SET version = version + p_changes, updated_at = p_now
        WHERE id = p_group_id AND tenant_id = p_tenant
        RETURNING *
    ), gone AS (
        DELETE FROM group_members m USING grp, unnest(p_removed) AS r(member)
        WHERE m.group_pk = grp.pk AND m.member_id = r.member
    ), added AS (
        INSERT INTO group_members (tenant_id, group_pk, member_id, member_type, user_pk, member_group_pk, display)
        SELECT p_tenant, grp.pk, a.member, a.kind, a.user_row, a.group_row, a.shown
        FROM grp, unnest(p_ids, p_kinds, p_user_pks, p_group_pks, p_displays) AS a(member, kind, user_row, group_row, shown)
        ON CONFLICT (group_pk, member_id) DO UPDATE SET display = EXCLUDED.display
        WHERE EXCLUDED.member_id = ANY(p_readded)
    )
    SELECT * FROM grp;
END
$$;
