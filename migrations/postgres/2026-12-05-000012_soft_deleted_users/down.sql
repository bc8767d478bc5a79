CREATE OR REPLACE FUNCTION roster_change_members(
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

DROP TRIGGER users_counted_hidden ON users;
DROP TRIGGER users_counted_out ON users;
DROP TRIGGER users_counted ON users;
CREATE TRIGGER users_counted AFTER INSERT OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION roster_count_resources('User');
ALTER TABLE users DROP COLUMN deleted_at;
