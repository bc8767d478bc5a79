-- roster_change_members looks the members a batch adds up itself, so that a batch is one round
-- trip instead of two (it was given their primary keys, found by a query of their own).
DROP FUNCTION roster_change_members(BIGINT, TIMESTAMP, TEXT, TEXT, TEXT[], TEXT[], TEXT[], BIGINT[], BIGINT[], TEXT[], TEXT[]);

-- A batch of member changes to one group, in one statement (see src/groups/batches.rs and
-- db::groups::change_members): the version moved on by p_changes, the members in p_removed
-- deleted, and the users or groups of the tenant that p_ids name inserted with the display
-- names in p_displays, skipping those already members except the ones in p_readded (removed and
-- added again), whose display name is replaced. Returns the group as it is after, or nothing
-- when it does not exist. When some of p_ids name nothing in the tenant, nothing is changed and
-- the error carries the hint 'roster: unknown members' and, as its detail, up to ten of them.
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
    p_displays TEXT[],
    p_readded TEXT[]
) RETURNS SETOF scim_groups
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    g scim_groups;
    gone TEXT;
    unknown TEXT;
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
    -- Each id by the unique index on id alone, the tenant compared on the row found: given both
    -- conditions, a plan may intersect the id's index entry with every entry of the tenant.
    WITH named AS (
        SELECT a.member, a.shown, a.n,
               (SELECT CASE WHEN u.tenant_id = p_tenant THEN u.pk END FROM users u WHERE u.id = a.member) AS user_row,
               (SELECT CASE WHEN sg.tenant_id = p_tenant THEN sg.pk END FROM scim_groups sg WHERE sg.id = a.member)
                   AS group_row
        FROM unnest(p_ids, p_displays) WITH ORDINALITY AS a(member, shown, n)
    ), added AS (
        INSERT INTO group_members (tenant_id, group_pk, member_id, member_type, user_pk, member_group_pk, display)
        SELECT p_tenant, g.pk, named.member, CASE WHEN named.user_row IS NULL THEN 'Group' ELSE 'User' END,
               named.user_row, named.group_row, named.shown
        FROM named
        WHERE named.user_row IS NOT NULL OR named.group_row IS NOT NULL
        ON CONFLICT (group_pk, member_id) DO UPDATE SET display = EXCLUDED.display
        WHERE EXCLUDED.member_id = ANY(p_readded)
    )
    SELECT string_agg(member, ', ' ORDER BY n) INTO unknown
    FROM (SELECT member, n FROM named WHERE user_row IS NULL AND group_row IS NULL ORDER BY n LIMIT 10) missing;
    IF unknown IS NOT NULL THEN
        RAISE EXCEPTION 'no user or group with id %', unknown
            USING ERRCODE = 'no_data_found', HINT = 'roster: unknown members', DETAIL = unknown;
    END IF;
    RETURN NEXT g;
END
$$;
