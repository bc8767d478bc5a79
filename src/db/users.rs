//! Storage of SCIM Users: the row, its JSON document, and the side table of multi-valued items.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde_json::Value;

use super::lifecycle_state::LifecycleState;
use super::records::Records;
use super::schema::{tenants, user_values, users};
use super::tenants::Tenant;
use super::timestamp::Timestamp;
use super::{is_unique_violation, Backend, DbConnection, DbError};
use crate::scim::fold::fold;
use crate::scim::resource::Document;
use crate::scim::schema::{AttrType, USER_SCHEMA};
use crate::scim::user_name::user_name_key;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct UserRow {
    pub pk: i64,
    pub id: String,
    pub user_name: String,
    pub external_id: Option<String>,
    pub active: bool,
    pub lifecycle_state: LifecycleState,
    pub deactivated_at: Option<NaiveDateTime>,
    pub former_member_since: Option<NaiveDateTime>,
    pub data: String,
    #[diesel(deserialize_as = Timestamp)]
    pub created_at: NaiveDateTime,
    #[diesel(deserialize_as = Timestamp)]
    pub updated_at: NaiveDateTime,
    pub version: i64,
}

impl UserRow {
    pub fn document(&self) -> Document {
        match serde_json::from_str(&self.data) {
            Ok(Value::Object(map)) => map,
            _ => Document::new(),
        }
    }
}

/// A user as reads show it: the row and, from the same query, the groups it is a direct member
/// of — one round trip per read instead of one for the row and one for its groups.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct UserRead {
    #[diesel(embed)]
    pub row: UserRow,
    #[diesel(select_expression = GroupsOfUser, select_expression_type = GroupsOfUser)]
    pub groups: Option<String>,
}

impl UserRead {
    /// The groups as (id, displayName), in displayName order (then id), the same on both
    /// backends whatever their collations.
    pub fn groups(&self) -> Vec<(String, String)> {
        let mut groups: Vec<(String, String)> =
            self.groups.as_deref().and_then(|json| serde_json::from_str(json).ok()).unwrap_or_default();
        groups.sort_unstable_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
        groups
    }
}

/// The groups a user row is a direct member of, as a JSON array of `[id, displayName]` pairs
/// (NULL or `[]` when none): a subquery on the `group_members_user` index, run for each row the
/// outer query on `users` returns. The text is fixed per backend, so the statement caches like
/// any other. It does not sort: an ordered aggregate costs SQLite a temporary b-tree per row
/// even when the user is in no group; [`UserRead::groups`] sorts.
#[derive(Debug, Clone, Copy, diesel::query_builder::QueryId)]
pub struct GroupsOfUser;

impl diesel::expression::Expression for GroupsOfUser {
    type SqlType = diesel::sql_types::Nullable<diesel::sql_types::Text>;
}

// Wherever `users` is in the FROM clause (alone, or joined to its tenant).
impl<QS> diesel::expression::AppearsOnTable<QS> for GroupsOfUser where users::pk: diesel::AppearsOnTable<QS> {}

impl<QS> diesel::expression::SelectableExpression<QS> for GroupsOfUser where users::pk: diesel::SelectableExpression<QS> {}

impl diesel::expression::ValidGrouping<()> for GroupsOfUser {
    type IsAggregate = diesel::expression::is_aggregate::Never;
}

impl diesel::query_builder::QueryFragment<diesel::sqlite::Sqlite> for GroupsOfUser {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::sqlite::Sqlite>,
    ) -> QueryResult<()> {
        out.push_sql(Backend::Sqlite.groups_of_user());
        Ok(())
    }
}

impl diesel::query_builder::QueryFragment<diesel::pg::Pg> for GroupsOfUser {
    fn walk_ast<'b>(&'b self, mut out: diesel::query_builder::AstPass<'_, 'b, diesel::pg::Pg>) -> QueryResult<()> {
        out.push_sql(Backend::Postgres.groups_of_user());
        Ok(())
    }
}

impl diesel::query_builder::QueryFragment<super::MultiBackend> for GroupsOfUser {
    fn walk_ast<'b>(&'b self, pass: diesel::query_builder::AstPass<'_, 'b, super::MultiBackend>) -> QueryResult<()> {
        super::MultiBackend::walk_variant_ast(self, pass)
    }
}

/// What a write stores: the document (without `active`, which is a column) and the state.
pub struct UserWrite<'a> {
    pub doc: &'a Document,
    pub active: bool,
    pub lifecycle_state: LifecycleState,
    pub deactivated_at: Option<NaiveDateTime>,
    pub former_member_since: Option<NaiveDateTime>,
}

/// A user to create: its id, what it stores, and what is recorded with it (see
/// [`crate::db::write::insert_users`]).
pub struct NewUser<'a> {
    pub id: &'a str,
    pub write: UserWrite<'a>,
    pub records: Records<'a>,
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("userName {0:?} is already taken")]
    UserNameTaken(String),
    /// Another request changed the user since it was read (optimistic concurrency).
    #[error("the user was changed by another request")]
    Changed,
    /// The tenant was deleted while the request was under way.
    #[error("the tenant no longer exists")]
    TenantGone,
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
}

fn text(doc: &Document, key: &str) -> Option<String> {
    doc.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// The columns a write stores (see [`InsertRow`] and [`UpdateRow`]).
pub(in crate::db) struct Columns {
    pub(in crate::db) user_name: String,
    pub(in crate::db) user_name_folded: String,
    pub(in crate::db) external_id: Option<String>,
    pub(in crate::db) display_name: Option<String>,
    pub(in crate::db) display_name_folded: Option<String>,
    pub(in crate::db) active: bool,
    pub(in crate::db) lifecycle_state: LifecycleState,
    pub(in crate::db) deactivated_at: Option<NaiveDateTime>,
    pub(in crate::db) former_member_since: Option<NaiveDateTime>,
    pub(in crate::db) data: String,
}

impl Columns {
    pub(in crate::db) fn of(write: &UserWrite<'_>) -> Columns {
        let user_name = text(write.doc, "userName").unwrap_or_default();
        Columns {
            user_name_folded: user_name_key(&user_name),
            user_name,
            external_id: text(write.doc, "externalId"),
            display_name: text(write.doc, "displayName"),
            display_name_folded: text(write.doc, "displayName").map(|d| fold(&d)),
            active: write.active,
            lifecycle_state: write.lifecycle_state,
            deactivated_at: write.deactivated_at,
            former_member_since: write.former_member_since,
            data: serde_json::to_string(write.doc).expect("a document is JSON"),
        }
    }
}

impl Columns {
    /// The row as the write stored it, without reading it back: every column is known here
    /// (times are in milliseconds, which both backends keep exactly).
    pub(in crate::db) fn stored(
        self,
        pk: i64,
        id: &str,
        created_at: NaiveDateTime,
        updated_at: NaiveDateTime,
        version: i64,
    ) -> UserRow {
        UserRow {
            pk,
            id: id.to_owned(),
            user_name: self.user_name,
            external_id: self.external_id,
            active: self.active,
            lifecycle_state: self.lifecycle_state,
            deactivated_at: self.deactivated_at,
            former_member_since: self.former_member_since,
            data: self.data,
            created_at,
            updated_at,
            version,
        }
    }
}

/// The items of the multi-valued complex attributes, which `user_values` indexes.
pub(in crate::db) fn indexed_items(doc: &Document) -> Vec<Option<&Value>> {
    USER_SCHEMA
        .attributes
        .iter()
        .filter(|a| a.multi_valued && a.kind == AttrType::Complex)
        .map(|a| doc.get(a.name))
        .collect()
}

/// One row of `user_values`: an item of a multi-valued complex attribute, for filters on it.
pub(in crate::db) struct ValueRow {
    pub(in crate::db) attr: &'static str,
    pub(in crate::db) idx: i32,
    pub(in crate::db) value: Option<String>,
    pub(in crate::db) value_folded: Option<String>,
    pub(in crate::db) item_type: Option<String>,
    pub(in crate::db) is_primary: bool,
    pub(in crate::db) item: String,
}

pub(in crate::db) fn value_rows(doc: &Document) -> Vec<ValueRow> {
    let mut rows = Vec::new();
    for attr in USER_SCHEMA.attributes.iter().filter(|a| a.multi_valued && a.kind == AttrType::Complex) {
        let Some(Value::Array(items)) = doc.get(attr.name) else { continue };
        for (idx, item) in items.iter().enumerate() {
            let value = item.get("value").and_then(Value::as_str);
            rows.push(ValueRow {
                attr: attr.name,
                idx: idx as i32,
                value: value.map(str::to_owned),
                value_folded: value.map(fold),
                item_type: item.get("type").and_then(Value::as_str).map(fold),
                is_primary: item.get("primary").and_then(Value::as_bool).unwrap_or(false),
                item: item.to_string(),
            });
        }
    }
    rows
}

pub(in crate::db) fn map_error(doc: &Document) -> impl Fn(diesel::result::Error) -> WriteError + '_ {
    move |e| match e {
        e if is_unique_violation(&e) => WriteError::UserNameTaken(text(doc, "userName").unwrap_or_default()),
        diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::ForeignKeyViolation, _) => {
            WriteError::TenantGone
        }
        e => WriteError::Db(e),
    }
}

/// What a write to a user brings about besides the row: on PostgreSQL in the same statement.
#[derive(Debug, Default)]
pub struct Effects<'a> {
    /// Every open session of the user revoked (a deactivation logs out everywhere at once).
    pub revoke_sessions: bool,
    pub records: Records<'a>,
}

// The columns of a user's write, bound in one fixed order by each backend's statement of fixed
// text (`sqlite/write.rs`, `postgres/write.rs`), so that the statement is prepared once per
// connection.

type Pass<'a, 'b, DB> = diesel::query_builder::AstPass<'a, 'b, DB>;

/// A backend that can bind every type a user row stores.
pub(in crate::db) trait RowBackend:
    diesel::backend::Backend
    + diesel::sql_types::HasSqlType<diesel::sql_types::Text>
    + diesel::sql_types::HasSqlType<diesel::sql_types::Bool>
    + diesel::sql_types::HasSqlType<diesel::sql_types::BigInt>
    + diesel::sql_types::HasSqlType<diesel::sql_types::Timestamp>
{
}

impl RowBackend for diesel::sqlite::Sqlite {}
impl RowBackend for diesel::pg::Pg {}

impl Columns {
    pub(in crate::db) const NAMES: [&'static str; 10] = [
        "user_name",
        "user_name_folded",
        "external_id",
        "display_name",
        "display_name_folded",
        "active",
        "lifecycle_state",
        "deactivated_at",
        "former_member_since",
        "data",
    ];

    /// How many of [`Columns::NAMES`], from the first, are the account's identity: userName,
    /// externalId and displayName with their folded forms, the keys of the unique and lookup
    /// indexes. An UPDATE that leaves them out when they did not change spares SQLite rewriting
    /// those indexes' entries (it rewrites every index over a column in the SET list, changed or
    /// not: three pages of a PATCH's thirteen, bench/README.md "Write amplification").
    const IDENTITY: usize = 5;

    /// Whether this write changes the identity columns of `row`, whose document is `old`.
    pub(in crate::db) fn identity_changed(&self, row: &UserRow, old: &Document) -> bool {
        self.user_name != row.user_name
            || self.external_id != row.external_id
            || self.display_name != text(old, "displayName")
    }

    /// Binds every column's value in the order of [`Columns::NAMES`]: `, ?` after earlier values
    /// (an INSERT's list), or `name = ?` pairs joined by commas (an UPDATE's SET). The text is
    /// the same on every run; nothing is allocated for it.
    pub(in crate::db) fn push_values<'b, DB>(&'b self, out: Pass<'_, 'b, DB>, assignments: bool) -> QueryResult<()>
    where
        DB: RowBackend,
        String: diesel::serialize::ToSql<diesel::sql_types::Text, DB>,
        LifecycleState: diesel::serialize::ToSql<diesel::sql_types::Text, DB>,
        bool: diesel::serialize::ToSql<diesel::sql_types::Bool, DB>,
        NaiveDateTime: diesel::serialize::ToSql<diesel::sql_types::Timestamp, DB>,
    {
        self.push(out, assignments, 0)
    }

    /// The `name = ?` pairs of the columns after the identity ones ([`Columns::IDENTITY`]), for
    /// an UPDATE that changes only the account's state and document.
    pub(in crate::db) fn push_state_assignments<'b, DB>(&'b self, out: Pass<'_, 'b, DB>) -> QueryResult<()>
    where
        DB: RowBackend,
        String: diesel::serialize::ToSql<diesel::sql_types::Text, DB>,
        LifecycleState: diesel::serialize::ToSql<diesel::sql_types::Text, DB>,
        bool: diesel::serialize::ToSql<diesel::sql_types::Bool, DB>,
        NaiveDateTime: diesel::serialize::ToSql<diesel::sql_types::Timestamp, DB>,
    {
        self.push(out, true, Self::IDENTITY)
    }

    /// Binds the columns of [`Columns::NAMES`] from the `from`th on.
    fn push<'b, DB>(&'b self, mut out: Pass<'_, 'b, DB>, assignments: bool, from: usize) -> QueryResult<()>
    where
        DB: RowBackend,
        String: diesel::serialize::ToSql<diesel::sql_types::Text, DB>,
        LifecycleState: diesel::serialize::ToSql<diesel::sql_types::Text, DB>,
        bool: diesel::serialize::ToSql<diesel::sql_types::Bool, DB>,
        NaiveDateTime: diesel::serialize::ToSql<diesel::sql_types::Timestamp, DB>,
    {
        use diesel::sql_types::{Bool, Nullable, Text, Timestamp};
        // Destructured so that a column added to `Columns` cannot be left out here.
        let Columns {
            user_name,
            user_name_folded,
            external_id,
            display_name,
            display_name_folded,
            active,
            lifecycle_state,
            deactivated_at,
            former_member_since,
            data,
        } = self;
        let mut names = Self::NAMES.iter().enumerate();
        // Pushes the separator and name of the next column; false when it is left out.
        let mut next = |out: &mut Pass<'_, 'b, DB>| {
            let (i, name) = names.next().expect("one name per column");
            if i < from {
                return false;
            }
            if !assignments || i > from {
                out.push_sql(", ");
            }
            if assignments {
                out.push_sql(name);
                out.push_sql(" = ");
            }
            true
        };
        // The next column's value, unless it is left out.
        macro_rules! bind {
            ($sql_type:ty, $value:expr) => {
                if next(&mut out) {
                    out.push_bind_param::<$sql_type, _>($value)?;
                }
            };
        }
        bind!(Text, user_name);
        bind!(Text, user_name_folded);
        bind!(Nullable<Text>, external_id);
        bind!(Nullable<Text>, display_name);
        bind!(Nullable<Text>, display_name_folded);
        bind!(Bool, active);
        bind!(Text, lifecycle_state);
        bind!(Nullable<Timestamp>, deactivated_at);
        bind!(Nullable<Timestamp>, former_member_since);
        bind!(Text, data);
        Ok(())
    }
}

pub fn by_pk(conn: &mut DbConnection, pk: i64) -> QueryResult<UserRow> {
    users::table.find(pk).select(UserRow::as_select()).first(conn)
}

/// The user with this id as reads show it (with its groups).
pub fn read(conn: &mut DbConnection, tenant_id: &str, id: &str) -> QueryResult<Option<UserRead>> {
    // No LIMIT: `id` is unique.
    let mut rows: Vec<UserRead> = on_backend!(conn, c => users::table
        .filter(users::id.eq(id))
        .filter(users::tenant_id.eq(tenant_id))
        .filter(users::deleted_at.is_null())
        .select(UserRead::as_select())
        .load(c))?;
    Ok(rows.pop())
}

/// The user with this id as reads show it, and its tenant, whose lifecycle policy a write
/// applies: what a read-modify-write starts from, in one query.
pub fn read_with_tenant(conn: &mut DbConnection, tenant_id: &str, id: &str) -> QueryResult<Option<(UserRead, Tenant)>> {
    let mut rows: Vec<(UserRead, Tenant)> = on_backend!(conn, c => users::table
        .inner_join(tenants::table)
        .filter(users::id.eq(id))
        .filter(users::tenant_id.eq(tenant_id))
        .filter(users::deleted_at.is_null())
        .select((UserRead::as_select(), Tenant::as_select()))
        .load(c))?;
    Ok(rows.pop())
}

pub fn find(conn: &mut DbConnection, tenant_id: &str, id: &str) -> QueryResult<Option<UserRow>> {
    users::table
        .filter(users::id.eq(id))
        .filter(users::tenant_id.eq(tenant_id))
        .filter(users::deleted_at.is_null())
        .select(UserRow::as_select())
        .first(conn)
        .optional()
}

pub fn delete(conn: &mut DbConnection, pk: i64) -> QueryResult<()> {
    diesel::delete(user_values::table.filter(user_values::user_pk.eq(pk))).execute(conn)?;
    diesel::delete(users::table.find(pk)).execute(conn)?;
    Ok(())
}

/// Takes the row lock of an active user, so that a concurrent deactivation either commits first
/// (and this finds the user inactive) or waits until this transaction ends. False when the user
/// is not active. It is an update, not a read's lock: on PostgreSQL a deactivation that waited
/// for it sees what this transaction wrote once it commits (`roster_write_user` revokes the
/// sessions after taking the row, in a statement of its own with a later snapshot).
pub fn lock_if_active(conn: &mut DbConnection, pk: i64) -> QueryResult<bool> {
    let locked = diesel::update(users::table.find(pk).filter(users::active.eq(true)))
        .set(users::version.eq(users::version))
        .execute(conn)?;
    Ok(locked == 1)
}

/// Holds the user's row as a foreign key check would (`FOR KEY SHARE` on PostgreSQL) until the
/// transaction ends, so that a row referring to it can be written: a deletion in progress is
/// waited for, and then the user is gone (false). SQLite's write transactions run one at a time,
/// so a row read in one stays.
pub fn hold_key(conn: &mut DbConnection, pk: i64) -> QueryResult<bool> {
    let user = users::table.find(pk).select(users::pk);
    let found = with_row_lock!(conn, user, for_key_share, |q, c| q.first::<i64>(c).optional())?;
    Ok(found.is_some())
}

/// Steps a user's version and modification time for a change made elsewhere that the user's
/// resource shows (its `groups`), so that ETags and `meta.lastModified` follow it.
pub fn touch(conn: &mut DbConnection, pk: i64, now: NaiveDateTime) -> QueryResult<()> {
    diesel::update(users::table.find(pk))
        .set((users::version.eq(users::version + 1), users::updated_at.eq(now)))
        .execute(conn)?;
    Ok(())
}

/// Hides a user from SCIM for good (a DELETE under the `deactivate-only` policy, RFC 7644
/// §3.6) while the row stays for the product. Its folded userName becomes one no userName folds
/// to (folding lowercases), so the name can be provisioned again.
pub fn hide(conn: &mut DbConnection, pk: i64, id: &str, now: NaiveDateTime) -> QueryResult<()> {
    diesel::update(users::table.find(pk))
        .set((
            users::deleted_at.eq(now),
            users::user_name_folded.eq(format!("DELETED:{id}")),
            users::version.eq(users::version + 1),
            users::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

/// Takes the row lock of a user still at `version`, so that a write decided on what was read
/// at that version applies to it and to nothing newer. False when the user changed or is gone.
pub fn lock_at_version(conn: &mut DbConnection, pk: i64, version: i64) -> QueryResult<bool> {
    let locked = diesel::update(users::table.find(pk).filter(users::version.eq(version)))
        .set(users::version.eq(users::version))
        .execute(conn)?;
    Ok(locked == 1)
}

/// Users of a tenant matching a lifecycle condition, for the background sweep.
pub fn in_state_since(
    conn: &mut DbConnection,
    tenant_id: &str,
    states: &[LifecycleState],
    deactivated_before: NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<UserRow>> {
    users::table
        .filter(users::tenant_id.eq(tenant_id))
        .filter(users::lifecycle_state.eq_any(states))
        .filter(users::deactivated_at.le(deactivated_before))
        .order(users::pk)
        .limit(limit)
        .select(UserRow::as_select())
        .load(conn)
}

/// The `server_settings` entry naming the userName key that stored keys were computed with.
const USER_NAME_KEY_SETTING: &str = "user_name_key";
/// Changes whenever [`user_name_key`] changes what it returns for some userName.
const USER_NAME_KEY: &str = "compatibility caseless (Unicode D146)";

/// Recomputes every stored userName key after the key's definition changed (the key is
/// computed in Rust on both backends, so a SQL migration cannot). Runs at start-up, after the
/// migrations and under their lock; a database whose keys are current costs one lookup.
///
/// Two accounts whose userNames were distinct before and are one now (`Straße` and `STRASSE`)
/// cannot both hold the new key: the one reached second keeps its old key, stays reachable by id
/// and by its old spelling, and is logged so an operator can rename it.
pub fn refold_user_names(conn: &mut DbConnection) -> Result<(), DbError> {
    if super::settings::get(conn, USER_NAME_KEY_SETTING)?.as_deref() == Some(USER_NAME_KEY) {
        return Ok(());
    }
    const BATCH: i64 = 1000;
    let mut after = 0i64;
    let (mut changed, mut kept) = (0u64, 0u64);
    loop {
        let batch: Vec<(i64, String, String, String, String)> = users::table
            .filter(users::pk.gt(after))
            // A soft-deleted account's key was freed for reuse on purpose (`hide`).
            .filter(users::deleted_at.is_null())
            .order(users::pk)
            .limit(BATCH)
            .select((users::pk, users::tenant_id, users::id, users::user_name, users::user_name_folded))
            .load(conn)?;
        let Some(last) = batch.last() else { break };
        after = last.0;
        conn.transaction(|conn| {
            for (pk, tenant_id, id, user_name, stored) in &batch {
                let key = user_name_key(user_name);
                if &key == stored {
                    continue;
                }
                // A savepoint each, so that one collision does not abort the batch on PostgreSQL.
                let update = conn.transaction(|conn| {
                    diesel::update(users::table.filter(users::pk.eq(pk)))
                        .set(users::user_name_folded.eq(&key))
                        .execute(conn)
                });
                match update {
                    Ok(_) => changed += 1,
                    Err(e) if is_unique_violation(&e) => {
                        kept += 1;
                        tracing::warn!(
                            tenant = %tenant_id,
                            user = %id,
                            "this user's userName is now the same as another user's of the tenant \
                             (compared as RFC 8265 usernames); it keeps its old comparison key until renamed"
                        );
                    }
                    Err(e) => return Err(e),
                }
            }
            Ok::<_, diesel::result::Error>(())
        })?;
    }
    super::settings::put(conn, USER_NAME_KEY_SETTING, USER_NAME_KEY)?;
    if changed > 0 || kept > 0 {
        tracing::info!(changed, kept, "userName keys recomputed for the new comparison");
    }
    Ok(())
}

/// People search for the product API: the userName key contains `like_user_name`, or the
/// folded displayName contains `like_folded` (both LIKE patterns, escaped).
pub fn search(
    conn: &mut DbConnection,
    tenant_id: &str,
    like_user_name: &str,
    like_folded: &str,
    limit: i64,
) -> QueryResult<Vec<UserRow>> {
    users::table
        .filter(users::tenant_id.eq(tenant_id))
        .filter(users::deleted_at.is_null())
        .filter(
            users::user_name_folded
                .like(like_user_name)
                .escape('\\')
                .or(users::display_name_folded.like(like_folded).escape('\\')),
        )
        .order(users::pk)
        .limit(limit)
        .select(UserRow::as_select())
        .load(conn)
}

/// Deactivated (or Former Member) users of a tenant who still belong to a group or a
/// conversation and were deactivated before `cutoff`.
pub fn with_memberships_deactivated_before(
    conn: &mut DbConnection,
    tenant_id: &str,
    cutoff: NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<UserRow>> {
    use super::schema::{conversation_members, group_members};
    users::table
        .filter(users::tenant_id.eq(tenant_id))
        .filter(users::lifecycle_state.ne(LifecycleState::Active))
        .filter(users::deactivated_at.le(cutoff))
        .filter(
            users::pk
                .nullable()
                .eq_any(group_members::table.select(group_members::user_pk))
                .or(users::pk.eq_any(conversation_members::table.select(conversation_members::user_pk))),
        )
        .order(users::pk)
        .limit(limit)
        .select(UserRow::as_select())
        .load(conn)
}
