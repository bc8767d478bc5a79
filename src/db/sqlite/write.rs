//! SQLite's write path, read top to bottom: a user's create and update, and a change of a
//! group's members. Each runs as several statements inside the write transaction its caller
//! holds (a savepoint of the group-commit writer's batch); PostgreSQL does the same in one
//! statement each (see `postgres/write.rs`), and `tests/api/write_paths.rs` holds the two to
//! the same rows.
//!
//! The statements run on SQLite's own connection rather than through `DbConnection`, whose
//! wrapper renders a statement's text on every execution even when it is prepared.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, QueryFragment};
use diesel::sqlite::Sqlite;

use crate::db::groups::{self, GroupRow};
use crate::db::records::Records;
use crate::db::schema::user_values;
use crate::db::users::{map_error, value_rows, Columns, Effects, UserRow, UserWrite, ValueRow, WriteError};
use crate::db::DbConnection;
use crate::scim::members::Member;
use crate::scim::resource::Document;

/// SQLite's own connection inside the wrapper: this file serves SQLite only.
fn sqlite(conn: &mut DbConnection) -> &mut SqliteConnection {
    match conn {
        DbConnection::Sqlite(sqlite) => sqlite,
        DbConnection::Postgresql(_) => unreachable!("the SQLite write path runs on SQLite"),
    }
}

/// A new user: its row, one `user_values` row per item of its multi-valued attributes, and its
/// records. Returns the row's pk.
pub(in crate::db) fn insert_user(
    conn: &mut DbConnection,
    tenant_id: &str,
    id: &str,
    write: &UserWrite<'_>,
    columns: &Columns,
    now: NaiveDateTime,
    records: &Records<'_>,
) -> Result<i64, WriteError> {
    let c = sqlite(conn);
    InsertRow { columns, tenant_id, id, now }.execute(c).map_err(map_error(write.doc))?;
    // Not `RETURNING pk`: SQLite runs a RETURNING clause as a trigger, which gives the insert a
    // statement journal (see the migration `writes_without_triggers`).
    let pk: i64 = diesel::select(last_insert_rowid()).get_result(c)?;
    CountIn(tenant_id).execute(c)?;
    write_values(c, tenant_id, pk, write.doc)?;
    records.write(conn, tenant_id, id, now)?;
    Ok(pk)
}

#[diesel::declare_sql_function]
extern "SQL" {
    /// The rowid of the connection's last insert: a new user's pk.
    fn last_insert_rowid() -> diesel::sql_types::BigInt;
}

/// Counts a new user in its tenant's `resource_counts` (SQLite keeps one slot per tenant and
/// type), which a trigger did before the migration `writes_without_triggers`. A fixed text, kept
/// prepared: diesel renders and prepares its upserts afresh on every use.
struct CountIn<'a>(&'a str);

impl diesel::query_builder::QueryId for CountIn<'_> {
    type QueryId = CountIn<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl QueryFragment<Sqlite> for CountIn<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        out.push_sql("INSERT INTO resource_counts (tenant_id, resource_type, slot, n) VALUES (");
        out.push_bind_param::<diesel::sql_types::Text, _>(self.0)?;
        out.push_sql(", 'User', 0, 1) ON CONFLICT (tenant_id, resource_type, slot) DO UPDATE SET n = n + 1");
        Ok(())
    }
}

impl RunQueryDsl<SqliteConnection> for CountIn<'_> {}

/// A new version of `row`: fails with [`WriteError::Changed`], having written nothing, when
/// `row` is stale. The item index is rewritten only when `items_changed`, and the identity
/// columns (with their indexes' entries) only when `identity_changed`.
#[allow(clippy::too_many_arguments)]
pub(in crate::db) fn update_user(
    conn: &mut DbConnection,
    tenant_id: &str,
    row: &UserRow,
    write: &UserWrite<'_>,
    columns: &Columns,
    items_changed: bool,
    identity_changed: bool,
    now: NaiveDateTime,
    effects: &Effects<'_>,
) -> Result<(), WriteError> {
    // Only from the version that was read: a concurrent change makes this a no-op, reported.
    let (pk, version, next_version) = (row.pk, row.version, row.version + 1);
    let updated = if identity_changed {
        UpdateRow::<true> { columns, pk, version, next_version, now }.execute(sqlite(conn))
    } else {
        UpdateRow::<false> { columns, pk, version, next_version, now }.execute(sqlite(conn))
    }
    .map_err(map_error(write.doc))?;
    if updated == 0 {
        return Err(WriteError::Changed);
    }
    if items_changed {
        diesel::delete(user_values::table.filter(user_values::user_pk.eq(row.pk))).execute(conn)?;
        write_values(sqlite(conn), tenant_id, row.pk, write.doc)?;
    }
    if effects.revoke_sessions {
        let revoked = crate::db::sessions::revoke_all(conn, row.pk, now)?;
        effects.records.with_revoked_sessions(&revoked).write(conn, tenant_id, &row.id, now)?;
    } else {
        effects.records.write(conn, tenant_id, &row.id, now)?;
    }
    Ok(())
}

/// A change of a group's members (see [`groups::change_members`]) as the statements of one
/// change, in the transaction the caller holds.
#[allow(clippy::too_many_arguments)]
pub(in crate::db) fn change_members(
    conn: &mut DbConnection,
    tenant_id: &str,
    id: &str,
    now: NaiveDateTime,
    changes: i64,
    removed: &[String],
    added: &[Member],
    readded: &[&str],
) -> Result<Option<GroupRow>, groups::WriteError> {
    // Unknown members are found before anything is written; a missing group still answers
    // None first, as it does on PostgreSQL.
    let resolved = groups::resolve(conn, tenant_id, added)?;
    if let Err(unknown) = resolved.check(added) {
        return match groups::find(conn, tenant_id, id)? {
            Some(_) => Err(unknown),
            None => Ok(None),
        };
    }
    let Some(row) = groups::touch(conn, tenant_id, id, now, changes)? else { return Ok(None) };
    let gone: Vec<String> = removed.iter().cloned().chain(readded.iter().map(|id| (*id).to_owned())).collect();
    if !gone.is_empty() {
        groups::remove_members(conn, &row, &gone)?;
    }
    groups::add_members(conn, tenant_id, &row, added, &resolved)?;
    Ok(Some(row))
}

// A user's INSERT and UPDATE are written out with fixed texts. diesel keeps neither prepared
// (an UPDATE's changeset, or an insert's optional values, may leave columns out), so every write
// would have the database parse and plan them afresh; these always name the same columns and are
// prepared once per connection.

/// `INSERT INTO users (…) VALUES (…)`.
struct InsertRow<'a> {
    columns: &'a Columns,
    tenant_id: &'a str,
    id: &'a str,
    now: NaiveDateTime,
}

impl diesel::query_builder::QueryId for InsertRow<'_> {
    type QueryId = InsertRow<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl QueryFragment<Sqlite> for InsertRow<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        use diesel::sql_types::{BigInt, Text, Timestamp};
        out.push_sql("INSERT INTO users (tenant_id, id, created_at, updated_at, version");
        for name in Columns::NAMES {
            out.push_sql(", ");
            out.push_sql(name);
        }
        out.push_sql(") VALUES (");
        out.push_bind_param::<Text, _>(self.tenant_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(self.id)?;
        out.push_sql(", ");
        out.push_bind_param::<Timestamp, _>(&self.now)?;
        out.push_sql(", ");
        out.push_bind_param::<Timestamp, _>(&self.now)?;
        out.push_sql(", ");
        out.push_bind_param::<BigInt, _>(&1_i64)?;
        self.columns.push_values(out.reborrow(), false)?;
        out.push_sql(")");
        Ok(())
    }
}

impl RunQueryDsl<SqliteConnection> for InsertRow<'_> {}

/// `UPDATE users SET <every stored column> WHERE pk = ? AND version = ?`, or with `IDENTITY`
/// false every column but the identity ones ([`Columns::push_state_assignments`]). The two are
/// two types, so that each keeps its own prepared statement.
struct UpdateRow<'a, const IDENTITY: bool> {
    columns: &'a Columns,
    pk: i64,
    version: i64,
    next_version: i64,
    now: NaiveDateTime,
}

impl<const IDENTITY: bool> diesel::query_builder::QueryId for UpdateRow<'_, IDENTITY> {
    type QueryId = UpdateRow<'static, IDENTITY>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<const IDENTITY: bool> QueryFragment<Sqlite> for UpdateRow<'_, IDENTITY> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        use diesel::sql_types::{BigInt, Timestamp};
        out.push_sql("UPDATE users SET ");
        if IDENTITY {
            self.columns.push_values(out.reborrow(), true)?;
        } else {
            self.columns.push_state_assignments(out.reborrow())?;
        }
        out.push_sql(", updated_at = ");
        out.push_bind_param::<Timestamp, _>(&self.now)?;
        out.push_sql(", version = ");
        out.push_bind_param::<BigInt, _>(&self.next_version)?;
        out.push_sql(" WHERE pk = ");
        out.push_bind_param::<BigInt, _>(&self.pk)?;
        out.push_sql(" AND version = ");
        out.push_bind_param::<BigInt, _>(&self.version)?;
        Ok(())
    }
}

impl<const IDENTITY: bool> RunQueryDsl<SqliteConnection> for UpdateRow<'_, IDENTITY> {}

/// One row per item of each multi-valued complex attribute, for filters on them.
fn write_values(conn: &mut SqliteConnection, tenant_id: &str, pk: i64, doc: &Document) -> QueryResult<()> {
    // Item by item (a handful per user): one statement of fixed text, kept prepared. A multi-row
    // INSERT's text varies with the number of rows, so diesel would render it on every write to
    // look it up.
    for row in value_rows(doc) {
        InsertValue { tenant_id, pk, row: &row }.execute(conn)?;
    }
    Ok(())
}

/// `INSERT INTO user_values (…) VALUES (…)`.
struct InsertValue<'a> {
    tenant_id: &'a str,
    pk: i64,
    row: &'a ValueRow,
}

impl diesel::query_builder::QueryId for InsertValue<'_> {
    type QueryId = InsertValue<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl QueryFragment<Sqlite> for InsertValue<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        use diesel::sql_types::{BigInt, Bool, Integer, Nullable, Text};
        let row = self.row;
        out.push_sql(
            "INSERT INTO user_values (tenant_id, user_pk, attr, idx, value, value_folded, item_type, is_primary, \
             item) VALUES (",
        );
        out.push_bind_param::<Text, _>(self.tenant_id)?;
        out.push_sql(", ");
        out.push_bind_param::<BigInt, _>(&self.pk)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(row.attr)?;
        out.push_sql(", ");
        out.push_bind_param::<Integer, _>(&row.idx)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<Text>, _>(&row.value)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<Text>, _>(&row.value_folded)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<Text>, _>(&row.item_type)?;
        out.push_sql(", ");
        out.push_bind_param::<Bool, _>(&row.is_primary)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&row.item)?;
        out.push_sql(")");
        Ok(())
    }
}

impl RunQueryDsl<SqliteConnection> for InsertValue<'_> {}
