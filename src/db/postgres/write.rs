//! PostgreSQL's write path, read top to bottom: a user's create, a Bulk chunk's creates, a
//! user's update, and a change of a group's members, each one statement that calls a PL/pgSQL
//! function, so one round trip and its own transaction. The functions are defined by the
//! migrations:
//!
//! - `roster_create_users`: `migrations/postgres/2026-12-06-000023_create_users/up.sql`;
//! - `roster_write_user`: `migrations/postgres/2026-11-26-000009_write_user/up.sql`;
//! - `roster_change_members`: `2026-11-26-000007_change_members` says why it is a function,
//!   `2026-11-26-000008_change_members_lookup` has it look the members up, and
//!   `2026-12-05-000012_soft_deleted_users` has it pass over hidden users.
//!
//! SQLite does the same as several statements (see `sqlite/write.rs`); `tests/api/write_paths.rs`
//! holds the two to the same rows.

use chrono::NaiveDateTime;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, QueryFragment};

use crate::db::groups::{self, GroupRow};
use crate::db::records::Records;
use crate::db::users::{map_error, value_rows, Columns, Effects, NewUser, UserRow, UserWrite, ValueRow, WriteError};
use crate::scim::members::Member;

/// A new user with its item index and records. Returns the row's pk.
pub(in crate::db) fn insert_user(
    pg: &mut PgConnection,
    tenant_id: &str,
    id: &str,
    write: &UserWrite<'_>,
    columns: &Columns,
    now: NaiveDateTime,
    records: &Records<'_>,
) -> Result<i64, WriteError> {
    let statement = WriteUser {
        tenant_id,
        id,
        pk: None,
        version: 0,
        now,
        columns,
        write_values: true,
        values: ValueArrays::of(value_rows(write.doc)),
        revoke_sessions: false,
        records: RecordArrays::of(records),
    };
    let pk: Option<i64> = statement.get_result(pg).map_err(map_error(write.doc))?;
    // An insert either returns its pk or fails.
    pk.ok_or(WriteError::Db(diesel::result::Error::NotFound))
}

/// New users with their item indexes and records, as one statement (`roster_create_users`,
/// migration `000023_create_users`): one round trip however many, and no subtransaction. Returns
/// each user's pk in order, None for a user whose userName is taken (nothing of it written).
/// Any other failure fails them all, having written nothing.
pub(in crate::db) fn insert_users(
    pg: &mut PgConnection,
    tenant_id: &str,
    users: &[NewUser<'_>],
    columns: &[Columns],
    now: NaiveDateTime,
) -> Result<Vec<Option<i64>>, WriteError> {
    let statement = CreateUsers::of(tenant_id, users, columns, now);
    let pks: Vec<Option<i64>> = statement.load(pg).map_err(|e| match e {
        diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::ForeignKeyViolation, _) => {
            WriteError::TenantGone
        }
        e => WriteError::Db(e),
    })?;
    // One row per user, or the function is not the one this code calls.
    if pks.len() != users.len() {
        return Err(WriteError::Db(diesel::result::Error::NotFound));
    }
    Ok(pks)
}

/// A new version of `row` with its effects: fails with [`WriteError::Changed`], having written
/// nothing, when `row` is stale. The item index is rewritten only when `items_changed`.
#[allow(clippy::too_many_arguments)]
pub(in crate::db) fn update_user(
    pg: &mut PgConnection,
    tenant_id: &str,
    row: &UserRow,
    write: &UserWrite<'_>,
    columns: &Columns,
    items_changed: bool,
    now: NaiveDateTime,
    effects: &Effects<'_>,
) -> Result<(), WriteError> {
    let statement = WriteUser {
        tenant_id,
        id: &row.id,
        pk: Some(row.pk),
        version: row.version,
        now,
        columns,
        write_values: items_changed,
        values: if items_changed { ValueArrays::of(value_rows(write.doc)) } else { ValueArrays::default() },
        revoke_sessions: effects.revoke_sessions,
        records: RecordArrays::of(&effects.records),
    };
    let written: Option<i64> = statement.get_result(pg).map_err(map_error(write.doc))?;
    if written.is_none() {
        return Err(WriteError::Changed);
    }
    Ok(())
}

/// A change of a group's members (see [`groups::change_members`]) as one statement: the group
/// is held only while it runs and commits.
#[allow(clippy::too_many_arguments)]
pub(in crate::db) fn change_members(
    pg: &mut PgConnection,
    tenant_id: &str,
    id: &str,
    now: NaiveDateTime,
    changes: i64,
    removed: &[String],
    added: &[Member],
    readded: &[&str],
) -> Result<Option<GroupRow>, groups::WriteError> {
    let statement = ChangeMembers {
        tenant_id,
        id,
        now,
        changes,
        removed,
        ids: added.iter().map(|m| m.value.as_str()).collect(),
        displays: added.iter().map(|m| m.display.as_deref()).collect(),
        readded,
        columns: <GroupRow as Selectable<Pg>>::construct_selection(),
    };
    statement.get_result(pg).optional().map_err(|e| match &e {
        diesel::result::Error::DatabaseError(_, info) if info.hint() == Some("roster: unknown members") => {
            groups::WriteError::UnknownMembers(info.details().unwrap_or_default().to_owned())
        }
        _ => groups::WriteError::Db(e),
    })
}

/// `SELECT roster_write_user(…)` (migration `000009_write_user`): a user's insert or update
/// with its item index, sessions and records, as one statement of fixed text.
struct WriteUser<'a> {
    tenant_id: &'a str,
    id: &'a str,
    /// The user an update writes; None for an insert.
    pk: Option<i64>,
    /// The version an update starts from (ignored by an insert).
    version: i64,
    now: NaiveDateTime,
    columns: &'a Columns,
    /// Whether to write the item index (replacing what there is) from `values`.
    write_values: bool,
    values: ValueArrays,
    revoke_sessions: bool,
    records: RecordArrays<'a>,
}

/// [`ValueRow`]s as parallel arrays, the form a statement of fixed text takes them in.
#[derive(Default)]
struct ValueArrays {
    attrs: Vec<&'static str>,
    idxs: Vec<i32>,
    values: Vec<Option<String>>,
    folded: Vec<Option<String>>,
    types: Vec<Option<String>>,
    primary: Vec<bool>,
    items: Vec<String>,
}

impl ValueArrays {
    fn of(rows: Vec<ValueRow>) -> ValueArrays {
        let mut arrays = ValueArrays::default();
        rows.into_iter().for_each(|row| arrays.push(row));
        arrays
    }

    fn push(&mut self, row: ValueRow) {
        self.attrs.push(row.attr);
        self.idxs.push(row.idx);
        self.values.push(row.value);
        self.folded.push(row.value_folded);
        self.types.push(row.item_type);
        self.primary.push(row.is_primary);
        self.items.push(row.item);
    }

    /// Binds the arrays, each after a comma, in the order both functions take them.
    fn push_arrays<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        use diesel::sql_types::{Array, Bool, Integer, Nullable, Text};
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.attrs)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Integer>, _>(&self.idxs)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<Text>>, _>(&self.values)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<Text>>, _>(&self.folded)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<Text>>, _>(&self.types)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Bool>, _>(&self.primary)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.items)
    }
}

/// [`Records`] as parallel arrays of events, and the audit entry's fields (all None for none).
struct RecordArrays<'a> {
    kinds: Vec<&'a str>,
    payloads: Vec<&'a str>,
    actor: Option<&'a str>,
    action: Option<&'a str>,
    before: Option<&'a str>,
    after: Option<&'a str>,
}

impl<'a> RecordArrays<'a> {
    fn of(records: &'a Records<'a>) -> RecordArrays<'a> {
        let t = records.transition;
        RecordArrays {
            kinds: records.events.iter().map(|(kind, _)| *kind).collect(),
            payloads: records.events.iter().map(|(_, payload)| payload.as_str()).collect(),
            actor: t.map(|t| t.actor),
            action: t.map(|t| t.action),
            before: t.and_then(|t| t.before),
            after: t.and_then(|t| t.after),
        }
    }
}

impl diesel::query_builder::QueryId for WriteUser<'_> {
    type QueryId = WriteUser<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl diesel::query_builder::Query for WriteUser<'_> {
    type SqlType = diesel::sql_types::Nullable<diesel::sql_types::BigInt>;
}

impl QueryFragment<Pg> for WriteUser<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        use diesel::sql_types::{Array, BigInt, Bool, Nullable, Text, Timestamp};
        out.push_sql("SELECT roster_write_user(");
        out.push_bind_param::<Text, _>(self.tenant_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(self.id)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<BigInt>, _>(&self.pk)?;
        out.push_sql(", ");
        out.push_bind_param::<BigInt, _>(&self.version)?;
        out.push_sql(", ");
        out.push_bind_param::<Timestamp, _>(&self.now)?;
        self.columns.push_values(out.reborrow(), false)?;
        out.push_sql(", ");
        out.push_bind_param::<Bool, _>(&self.write_values)?;
        self.values.push_arrays(out.reborrow())?;
        out.push_sql(", ");
        out.push_bind_param::<Bool, _>(&self.revoke_sessions)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.records.kinds)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.records.payloads)?;
        let records = &self.records;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<Text>, _>(&records.actor)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<Text>, _>(&records.action)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<Text>, _>(&records.before)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<Text>, _>(&records.after)?;
        out.push_sql(")");
        Ok(())
    }
}

impl RunQueryDsl<PgConnection> for WriteUser<'_> {}

/// `SELECT * FROM roster_create_users(…)` (migration `000023_create_users`): users as parallel
/// arrays, and their items, events and audit entries as parallel arrays that name their user by
/// its place (from 1). One statement of fixed text whatever the number of users, so the
/// connection keeps it prepared.
struct CreateUsers<'a> {
    tenant_id: &'a str,
    now: NaiveDateTime,
    ids: Vec<&'a str>,
    user_names: Vec<&'a str>,
    user_names_folded: Vec<&'a str>,
    external_ids: Vec<Option<&'a str>>,
    display_names: Vec<Option<&'a str>>,
    display_names_folded: Vec<Option<&'a str>>,
    active: Vec<bool>,
    lifecycle_states: Vec<&'static str>,
    deactivated_at: Vec<Option<NaiveDateTime>>,
    former_member_since: Vec<Option<NaiveDateTime>>,
    data: Vec<&'a str>,
    value_users: Vec<i32>,
    values: ValueArrays,
    event_users: Vec<i32>,
    kinds: Vec<&'a str>,
    payloads: Vec<&'a str>,
    audit_users: Vec<i32>,
    actors: Vec<&'a str>,
    actions: Vec<&'a str>,
    before: Vec<Option<&'a str>>,
    after: Vec<Option<&'a str>>,
}

impl<'a> CreateUsers<'a> {
    fn of(tenant_id: &'a str, users: &'a [NewUser<'a>], columns: &'a [Columns], now: NaiveDateTime) -> Self {
        let mut statement = CreateUsers {
            tenant_id,
            now,
            ids: Vec::with_capacity(users.len()),
            user_names: Vec::with_capacity(users.len()),
            user_names_folded: Vec::with_capacity(users.len()),
            external_ids: Vec::with_capacity(users.len()),
            display_names: Vec::with_capacity(users.len()),
            display_names_folded: Vec::with_capacity(users.len()),
            active: Vec::with_capacity(users.len()),
            lifecycle_states: Vec::with_capacity(users.len()),
            deactivated_at: Vec::with_capacity(users.len()),
            former_member_since: Vec::with_capacity(users.len()),
            data: Vec::with_capacity(users.len()),
            value_users: Vec::new(),
            values: ValueArrays::default(),
            event_users: Vec::with_capacity(users.len()),
            kinds: Vec::with_capacity(users.len()),
            payloads: Vec::with_capacity(users.len()),
            audit_users: Vec::with_capacity(users.len()),
            actors: Vec::with_capacity(users.len()),
            actions: Vec::with_capacity(users.len()),
            before: Vec::with_capacity(users.len()),
            after: Vec::with_capacity(users.len()),
        };
        for (n, (user, columns)) in (1..).zip(users.iter().zip(columns)) {
            statement.ids.push(user.id);
            statement.user_names.push(&columns.user_name);
            statement.user_names_folded.push(&columns.user_name_folded);
            statement.external_ids.push(columns.external_id.as_deref());
            statement.display_names.push(columns.display_name.as_deref());
            statement.display_names_folded.push(columns.display_name_folded.as_deref());
            statement.active.push(columns.active);
            statement.lifecycle_states.push(columns.lifecycle_state.as_str());
            statement.deactivated_at.push(columns.deactivated_at);
            statement.former_member_since.push(columns.former_member_since);
            statement.data.push(&columns.data);
            for row in value_rows(user.write.doc) {
                statement.value_users.push(n);
                statement.values.push(row);
            }
            for (kind, payload) in &user.records.events {
                statement.event_users.push(n);
                statement.kinds.push(kind);
                statement.payloads.push(payload);
            }
            if let Some(t) = user.records.transition {
                statement.audit_users.push(n);
                statement.actors.push(t.actor);
                statement.actions.push(t.action);
                statement.before.push(t.before);
                statement.after.push(t.after);
            }
        }
        statement
    }
}

impl diesel::query_builder::QueryId for CreateUsers<'_> {
    type QueryId = CreateUsers<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl diesel::query_builder::Query for CreateUsers<'_> {
    type SqlType = diesel::sql_types::Nullable<diesel::sql_types::BigInt>;
}

impl QueryFragment<Pg> for CreateUsers<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        use diesel::sql_types::{Array, Bool, Integer, Nullable, Text, Timestamp};
        out.push_sql("SELECT * FROM roster_create_users(");
        out.push_bind_param::<Text, _>(self.tenant_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Timestamp, _>(&self.now)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.ids)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.user_names)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.user_names_folded)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<Text>>, _>(&self.external_ids)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<Text>>, _>(&self.display_names)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<Text>>, _>(&self.display_names_folded)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Bool>, _>(&self.active)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.lifecycle_states)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<Timestamp>>, _>(&self.deactivated_at)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<Timestamp>>, _>(&self.former_member_since)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.data)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Integer>, _>(&self.value_users)?;
        self.values.push_arrays(out.reborrow())?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Integer>, _>(&self.event_users)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.kinds)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.payloads)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Integer>, _>(&self.audit_users)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.actors)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.actions)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<Text>>, _>(&self.before)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<Text>>, _>(&self.after)?;
        out.push_sql(")");
        Ok(())
    }
}

impl RunQueryDsl<PgConnection> for CreateUsers<'_> {}

/// The statement of [`change_members`]; its text is fixed (the members travel as
/// arrays), so the connection keeps it prepared.
struct ChangeMembers<'a> {
    tenant_id: &'a str,
    id: &'a str,
    now: NaiveDateTime,
    changes: i64,
    removed: &'a [String],
    ids: Vec<&'a str>,
    displays: Vec<Option<&'a str>>,
    readded: &'a [&'a str],
    columns: <GroupRow as Selectable<Pg>>::SelectExpression,
}

impl diesel::query_builder::QueryId for ChangeMembers<'_> {
    type QueryId = ChangeMembers<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl diesel::query_builder::Query for ChangeMembers<'_> {
    type SqlType = <<GroupRow as Selectable<Pg>>::SelectExpression as diesel::Expression>::SqlType;
}

impl QueryFragment<Pg> for ChangeMembers<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        use diesel::sql_types::{Array, BigInt, Nullable, Text, Timestamp};
        out.push_sql("SELECT ");
        self.columns.walk_ast(out.reborrow())?;
        out.push_sql(" FROM roster_change_members(");
        out.push_bind_param::<BigInt, _>(&self.changes)?;
        out.push_sql(", ");
        out.push_bind_param::<Timestamp, _>(&self.now)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(self.id)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(self.tenant_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(self.removed)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.ids)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<Text>>, _>(&self.displays)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(self.readded)?;
        // Named as the table, so that the columns' qualified names find the function's row.
        out.push_sql(") AS scim_groups");
        Ok(())
    }
}

impl RunQueryDsl<PgConnection> for ChangeMembers<'_> {}
