DROP FUNCTION roster_change_members(BIGINT, TIMESTAMP, TEXT, TEXT, TEXT[], TEXT[], TEXT[], TEXT[]);

-- A batch of member changes to one group, in one statement (see src/groups/batches.rs and
-- db::groups::change_members): the version moved on by p_changes, the members in p_removed
-- deleted, and the members in the parallel arrays inserted, skipping those already there except
-- the ones in p_readded (removed and added again), whose display name is replaced. Returns the
-- group as it is after, or nothing when it does not exist.
--
-- A function, rather than one statement with common table expressions, for two reasons. It
-- carries plan_cache_mode: as a prepared statement PostgreSQL planned it anew on every run,
-- because its reusable plan assumed ten elements per array and so looked dearer than planning
-- for the two or three a batch holds; planning was a third of the database's time per batch. And
-- each removal is its own DELETE by the whole primary key, which is one index probe whatever the
-- statistics say: a join of the ids to the group's members, or member_id = ANY(...), was planned
-- from statistics that are stale after a group has grown by many members at once, and then
-- scanned all of them (46 ms a batch at 10^5 members).
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
DECLARE
    g scim_groups;
    gone TEXT;
BEGIN
    UPDATE scim_groups SET version = version + p_changes, updated_at = p_now
    WHERE id = p_group_id AND tenant_id = p_tenant
    RETURNING * INTO g;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    FOREACH gone IN ARRAY p_removed LOOP
        DELETE FROM group_members WHERE group_pk = g.pk AND member_id = gone;
    END LOOP;
    INSERT INTO group_members (tenant_id, group_pk, member_id, member_type, user_pk, member_group_pk, display)
    SELECT p_tenant, g.pk, a.member, a.kind, a.user_row, a.group_row, a.shown
    FROM unnest(p_ids, p_kinds, p_user_pks, p_group_pks, p_displays) AS a(member, kind, user_row, group_row, shown)
    ON CONFLICT (group_pk, member_id) DO UPDATE SET display = EXCLUDED.display
    WHERE EXCLUDED.member_id = ANY(p_readded);
    RETURN NEXT g;
END
$$;
