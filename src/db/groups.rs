//! Storage of SCIM Groups and their members. Member changes touch only the members named, so
//! their cost does not grow with the size of the group.

use std::collections::{HashMap, HashSet};

use chrono::NaiveDateTime;
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{Nullable, Text};
use serde_json::Value;

use super::schema::{group_members, scim_groups, users};
use super::{is_unique_violation, DbConnection, MultiBackend};
use crate::scim::fold::fold;
use crate::scim::members::Member;
use crate::scim::resource::Document;

/// Most ids named in one `IN (…)` list: well under both backends' limits on bound parameters.
const CHUNK: usize = 500;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = scim_groups)]
pub struct GroupRow {
    pub pk: i64,
    pub id: String,
    pub display_name: String,
    pub external_id: Option<String>,
    pub data: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub version: i64,
}

impl GroupRow {
    pub fn document(&self) -> Document {
        match serde_json::from_str(&self.data) {
            Ok(Value::Object(map)) => map,
            _ => Document::new(),
        }
    }
}

/// The columns of a [`GroupRow`], for writes that answer with the row they stored: the
/// multi-backend connection cannot return `GroupRow::as_returning()`, but takes the columns.
fn stored() -> <GroupRow as Selectable<MultiBackend>>::SelectExpression {
    <GroupRow as Selectable<MultiBackend>>::construct_selection()
}

/// A member as shown in a group: its id, kind and display name.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberRow {
    pub id: String,
    pub kind: MemberKind,
    pub display: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberKind {
    User,
    Group,
}

impl MemberKind {
    /// The kind stored as `member_type`.
    fn parse(text: &str) -> MemberKind {
        if text == "Group" {
            MemberKind::Group
        } else {
            MemberKind::User
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            MemberKind::User => "User",
            MemberKind::Group => "Group",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("displayName {0:?} is already taken")]
    NameTaken(String),
    #[error("no user or group with id {0}")]
    UnknownMembers(String),
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
}

#[derive(Insertable, AsChangeset)]
#[diesel(table_name = scim_groups, treat_none_as_null = true)]
struct Columns {
    display_name: String,
    display_name_folded: String,
    external_id: Option<String>,
    data: String,
}

impl Columns {
    /// The document without `members`, which live in their own table.
    fn of(doc: &Document) -> Columns {
        let text = |key: &str| doc.get(key).and_then(Value::as_str).map(str::to_owned);
        let display_name = text("displayName").unwrap_or_default();
        let mut data = doc.clone();
        data.remove("members");
        Columns {
            display_name_folded: fold(&display_name),
            display_name,
            external_id: text("externalId"),
            data: Value::Object(data).to_string(),
        }
    }
}

fn map_unique(doc: &Document) -> impl Fn(diesel::result::Error) -> WriteError + '_ {
    move |e| {
        if is_unique_violation(&e) {
            WriteError::NameTaken(doc.get("displayName").and_then(Value::as_str).unwrap_or_default().to_owned())
        } else {
            WriteError::Db(e)
        }
    }
}

pub fn insert(
    conn: &mut DbConnection,
    tenant_id: &str,
    id: &str,
    doc: &Document,
    now: NaiveDateTime,
) -> Result<GroupRow, WriteError> {
    diesel::insert_into(scim_groups::table)
        .values((
            Columns::of(doc),
            scim_groups::tenant_id.eq(tenant_id),
            scim_groups::id.eq(id),
            scim_groups::created_at.eq(now),
            scim_groups::updated_at.eq(now),
            scim_groups::version.eq(1_i64),
        ))
        .returning(stored())
        .get_result(conn)
        .map_err(map_unique(doc))
}

/// Stores new attributes (not members) and moves the version on.
pub fn update(
    conn: &mut DbConnection,
    row: &GroupRow,
    doc: &Document,
    now: NaiveDateTime,
) -> Result<GroupRow, WriteError> {
    diesel::update(scim_groups::table.find(row.pk))
        .set((Columns::of(doc), scim_groups::updated_at.eq(now), scim_groups::version.eq(row.version + 1)))
        .returning(stored())
        .get_result(conn)
        .map_err(map_unique(doc))
}

/// Moves the group's version on by `changes` for that many members-only changes, and holds the
/// row until the transaction ends. On PostgreSQL the UPDATE takes the row lock that [`lock`]'s `FOR UPDATE`
/// takes and counts from the version the previous writer committed; under READ COMMITTED the
/// statements after it see that writer's members. Member changes need nothing else of the
/// group, so concurrent ones queue only for the statements that follow. The row returned
/// carries the new version.
pub fn touch(
    conn: &mut DbConnection,
    tenant_id: &str,
    id: &str,
    now: NaiveDateTime,
    changes: i64,
) -> QueryResult<Option<GroupRow>> {
    Touch { tenant_id, id, now, changes, columns: stored() }.get_result(conn).optional()
}

/// `UPDATE scim_groups SET version = version + ?, updated_at = ? WHERE … RETURNING <GroupRow>`,
/// with a fixed text: diesel never keeps its UPDATE statements prepared, and this one runs while
/// the group's row is held, where parsing and planning it each time would hold it longer.
struct Touch<'a> {
    tenant_id: &'a str,
    id: &'a str,
    now: NaiveDateTime,
    changes: i64,
    /// `GroupRow`'s columns as diesel names them, so that they cannot drift from the struct.
    columns: <GroupRow as Selectable<MultiBackend>>::SelectExpression,
}

impl diesel::query_builder::QueryId for Touch<'_> {
    type QueryId = Touch<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl diesel::query_builder::Query for Touch<'_> {
    type SqlType = <<GroupRow as Selectable<MultiBackend>>::SelectExpression as diesel::Expression>::SqlType;
}

impl diesel::query_builder::QueryFragment<MultiBackend> for Touch<'_> {
    fn walk_ast<'b>(&'b self, mut out: diesel::query_builder::AstPass<'_, 'b, MultiBackend>) -> QueryResult<()> {
        use diesel::sql_types::{BigInt, Text, Timestamp};
        out.push_sql("UPDATE scim_groups SET version = version + ");
        out.push_bind_param::<BigInt, _>(&self.changes)?;
        out.push_sql(", updated_at = ");
        out.push_bind_param::<Timestamp, _>(&self.now)?;
        out.push_sql(" WHERE id = ");
        out.push_bind_param::<Text, _>(self.id)?;
        out.push_sql(" AND tenant_id = ");
        out.push_bind_param::<Text, _>(self.tenant_id)?;
        out.push_sql(" RETURNING ");
        self.columns.walk_ast(out.reborrow())
    }
}

impl RunQueryDsl<DbConnection> for Touch<'_> {}

/// Reads a group for a write and holds it until the transaction ends. On PostgreSQL the row is
/// locked (`FOR UPDATE`): under READ COMMITTED two writers would otherwise both start from the
/// same version, and the later commit would lose the earlier one's change and reuse its version.
/// A SQLite write transaction already excludes every other writer.
pub fn lock(conn: &mut DbConnection, tenant_id: &str, id: &str) -> QueryResult<Option<GroupRow>> {
    let target = scim_groups::table.filter(scim_groups::id.eq(id)).filter(scim_groups::tenant_id.eq(tenant_id));
    with_row_lock!(conn, target.select(GroupRow::as_select()), for_update, |q, c| q.first(c).optional())
}

pub fn find(conn: &mut DbConnection, tenant_id: &str, id: &str) -> QueryResult<Option<GroupRow>> {
    scim_groups::table
        .filter(scim_groups::id.eq(id))
        .filter(scim_groups::tenant_id.eq(tenant_id))
        .select(GroupRow::as_select())
        .first(conn)
        .optional()
}

pub fn delete(conn: &mut DbConnection, pk: i64) -> QueryResult<()> {
    diesel::delete(group_members::table.filter(group_members::group_pk.eq(pk))).execute(conn)?;
    diesel::delete(group_members::table.filter(group_members::member_group_pk.eq(pk))).execute(conn)?;
    diesel::delete(scim_groups::table.find(pk)).execute(conn)?;
    Ok(())
}

/// The users and groups of a tenant that member ids name.
pub struct Resolved(HashMap<String, (MemberKind, i64)>);

impl Resolved {
    /// Fails, naming up to ten of them, when some of `members` name nothing.
    pub fn check(&self, members: &[Member]) -> Result<(), WriteError> {
        let mut seen = HashSet::new();
        let missing: Vec<&str> = members
            .iter()
            .map(|m| m.value.as_str())
            .filter(|id| !self.0.contains_key(*id) && seen.insert(*id))
            .take(10)
            .collect();
        match missing.is_empty() {
            true => Ok(()),
            false => Err(WriteError::UnknownMembers(missing.join(", "))),
        }
    }
}

/// Looks up the users and groups that `members` name. Which they are does not depend on the
/// group being changed, so writes ask before they lock it. Ids that name nothing fail a write
/// only in [`add_members`], once the group was found and its version checked: a missing group
/// still answers 404 and a stale If-Match 412 before unknown members answer 400.
pub fn resolve<'a>(
    conn: &mut DbConnection,
    tenant_id: &str,
    members: impl IntoIterator<Item = &'a Member>,
) -> QueryResult<Resolved> {
    let mut seen = HashSet::new();
    let ids: Vec<&str> = members.into_iter().map(|m| m.value.as_str()).filter(|id| seen.insert(*id)).collect();
    let mut found = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(CHUNK) {
        // Users and groups in one round trip. The multi-backend connection cannot build a
        // UNION: the statement runs on the connection it wraps. The kinds are bound values
        // rather than SQL literals, which diesel would not keep prepared.
        //
        // Ids are unique across tenants, so rows are found by id alone and the tenant is
        // checked here: with `tenant_id = $1` in the statement, PostgreSQL's generic plan (used
        // after five runs) trusted its estimate of one tenant's share and intersected the ids
        // with a scan of every row of the tenant (0.6 ms at 10^4 users, growing with them).
        // A user hidden by a soft DELETE is no member-to-be (RFC 7644 §3.6).
        let both = users::table
            .filter(users::id.eq_any(chunk))
            .filter(users::deleted_at.is_null())
            .select((users::id, users::pk, users::tenant_id, "User".into_sql::<Text>()))
            .union_all(scim_groups::table.filter(scim_groups::id.eq_any(chunk)).select((
                scim_groups::id,
                scim_groups::pk,
                scim_groups::tenant_id,
                "Group".into_sql::<Text>(),
            )));
        let rows: Vec<(String, i64, String, String)> = on_backend!(conn, c => both.load(c))?;
        found.extend(
            rows.into_iter()
                .filter(|(_, _, tenant, _)| tenant == tenant_id)
                .map(|(id, pk, _, kind)| (id, (MemberKind::parse(&kind), pk))),
        );
    }
    Ok(Resolved(found))
}

/// Adds members that are not members yet, with the display name the client sent, if any; ids
/// that `resolved` does not know fail the whole call.
pub fn add_members(
    conn: &mut DbConnection,
    tenant_id: &str,
    group: &GroupRow,
    members: &[Member],
    resolved: &Resolved,
) -> Result<(), WriteError> {
    let mut displays: HashMap<&str, Option<&str>> = HashMap::new();
    let unique: Vec<&str> = members
        .iter()
        // The first display name of a member named twice, as if each were added in turn.
        .filter(|m| match displays.entry(&m.value) {
            std::collections::hash_map::Entry::Occupied(_) => false,
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(m.display.as_deref());
                true
            }
        })
        .map(|m| m.value.as_str())
        .collect();
    resolved.check(members)?;
    for chunk in unique.chunks(CHUNK) {
        let rows: Vec<_> = chunk
            .iter()
            .map(|&id| {
                let (kind, pk) = resolved.0[id];
                (
                    group_members::tenant_id.eq(tenant_id),
                    group_members::group_pk.eq(group.pk),
                    group_members::member_id.eq(id),
                    group_members::member_type.eq(kind.as_str()),
                    group_members::user_pk.eq((kind == MemberKind::User).then_some(pk)),
                    group_members::member_group_pk.eq((kind == MemberKind::Group).then_some(pk)),
                    group_members::display.eq(displays[id]),
                )
            })
            .collect();
        // One multi-row INSERT that skips those already members (the key is (group, member
        // id)), with no read of the members first: one statement fewer while the group is held.
        // The multi-backend connection can build neither part, so it runs on the one it wraps.
        let insert = diesel::insert_into(group_members::table).values(rows).on_conflict_do_nothing();
        on_backend!(conn, c => insert.execute(c))?;
    }
    Ok(())
}

/// Removes the members with these ids. One id (what IdPs send) is removed by the whole primary
/// key: PostgreSQL plans `member_id = ANY($2)` from the table's statistics, and while they are
/// stale — a group that grew by 10^5 members a minute ago — it scanned every member of the
/// group for each removal (30 ms at 10^5 members).
pub fn remove_members(conn: &mut DbConnection, group: &GroupRow, ids: &[String]) -> QueryResult<()> {
    if let [id] = ids {
        diesel::delete(group_members::table.find((group.pk, id))).execute(conn)?;
        return Ok(());
    }
    for chunk in ids.chunks(CHUNK) {
        diesel::delete(
            group_members::table
                .filter(group_members::group_pk.eq(group.pk))
                .filter(group_members::member_id.eq_any(chunk)),
        )
        .execute(conn)?;
    }
    Ok(())
}

pub fn remove_all_members(conn: &mut DbConnection, group: &GroupRow) -> QueryResult<()> {
    diesel::delete(group_members::table.filter(group_members::group_pk.eq(group.pk))).execute(conn)?;
    Ok(())
}

/// (group pk, member id, member type, display name)
type MemberListing = (i64, String, String, Option<String>);

/// Members of each group, with display names, keyed by group pk.
pub fn members_of(conn: &mut DbConnection, group_pks: &[i64]) -> QueryResult<HashMap<i64, Vec<MemberRow>>> {
    let mut out: HashMap<i64, Vec<MemberRow>> = HashMap::new();
    for chunk in group_pks.chunks(CHUNK) {
        let rows: Vec<MemberListing> = group_members::table
            .left_join(users::table.on(users::pk.nullable().eq(group_members::user_pk)))
            .filter(group_members::group_pk.eq_any(chunk))
            .select((
                group_members::group_pk,
                group_members::member_id,
                group_members::member_type,
                sql::<Nullable<Text>>(
                    "COALESCE(group_members.display, users.display_name, \
                     (SELECT mg.display_name FROM scim_groups mg WHERE mg.pk = group_members.member_group_pk))",
                ),
            ))
            .order((group_members::group_pk, group_members::member_id))
            .load(conn)?;
        for (group_pk, id, kind, display) in rows {
            out.entry(group_pk).or_default().push(MemberRow { id, kind: MemberKind::parse(&kind), display });
        }
    }
    Ok(out)
}

/// The groups a user is a direct member of, as (group pk, group id), in the order of their keys:
/// removing memberships steps each group's version, which locks the group's row, and two
/// transactions removing members of the same groups (a sweep and a deletion of different
/// accounts) must lock them in the same order or PostgreSQL finds a deadlock.
pub fn memberships_of_user(conn: &mut DbConnection, user_pk: i64) -> QueryResult<Vec<(i64, String)>> {
    group_members::table
        .inner_join(scim_groups::table.on(scim_groups::pk.eq(group_members::group_pk)))
        .filter(group_members::user_pk.eq(user_pk))
        .select((scim_groups::pk, scim_groups::id))
        .order(scim_groups::pk)
        .load(conn)
}

/// Removes one user's membership; true only for the call that actually removed it, so that
/// concurrent sweeps on several nodes report each removal once. The group's version and
/// lastModified move on, as for any other change of its members. The group's row is written
/// before its member row, the order a change of the group's members takes (`roster_change_members`,
/// `groups::patch`), so that this and a PATCH of the same group cannot wait on each other in a
/// cycle on PostgreSQL.
pub fn remove_user_membership(
    conn: &mut DbConnection,
    group_pk: i64,
    user_pk: i64,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    let membership =
        group_members::table.filter(group_members::group_pk.eq(group_pk)).filter(group_members::user_pk.eq(user_pk));
    let stepped = diesel::update(scim_groups::table.find(group_pk).filter(diesel::dsl::exists(membership)))
        .set((scim_groups::version.eq(scim_groups::version + 1), scim_groups::updated_at.eq(now)))
        .execute(conn)?;
    if stepped == 0 {
        return Ok(false);
    }
    Ok(diesel::delete(membership).execute(conn)? > 0)
}
