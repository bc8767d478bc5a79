//! The write path of users and group members: each write picks its backend's statements
//! (`sqlite/write.rs`, `postgres/write.rs`, each readable whole) and returns what was stored.

use chrono::NaiveDateTime;

use super::groups::{GroupRow, WriteError as GroupWriteError};
use super::records::Records;
use super::users::{indexed_items, Columns, Effects, UserRow, UserWrite, WriteError as UserWriteError};
use super::{postgres, sqlite, DbConnection};
use crate::scim::members::Member;

/// Stores a new user with its item index and `records`. On PostgreSQL this is one statement,
/// so it needs no transaction of its own (see [`crate::db::single_statement_write`]). Each
/// backend's statements are in its `write.rs`.
pub fn insert_user(
    conn: &mut DbConnection,
    tenant_id: &str,
    id: &str,
    write: &UserWrite<'_>,
    now: NaiveDateTime,
    records: &Records<'_>,
) -> Result<UserRow, UserWriteError> {
    let columns = Columns::of(write);
    let pk = match conn {
        DbConnection::Postgresql(pg) => postgres::write::insert_user(pg, tenant_id, id, write, &columns, now, records),
        DbConnection::Sqlite(_) => sqlite::write::insert_user(conn, tenant_id, id, write, &columns, now, records),
    }?;
    Ok(columns.stored(pk, id, now, now, 1))
}

/// Stores a new version of `row` with its `effects`; fails with [`UserWriteError::Changed`] when
/// `row` is stale, having written nothing. On PostgreSQL this is one statement.
pub fn update_user(
    conn: &mut DbConnection,
    tenant_id: &str,
    row: &UserRow,
    write: &UserWrite<'_>,
    now: NaiveDateTime,
    effects: &Effects<'_>,
) -> Result<UserRow, UserWriteError> {
    let columns = Columns::of(write);
    // The item index is rewritten only when the items changed (not for `active`, a name…).
    let old = row.document();
    let items_changed = indexed_items(&old) != indexed_items(write.doc);
    match conn {
        // A deactivation names the sessions it revoked in its event, so on PostgreSQL it takes
        // the account's row, revokes them and writes as one transaction of three statements.
        // Opening a session takes the same row first (`product::open_session`), so none opens
        // between the revocation and the write unnamed.
        DbConnection::Postgresql(_) if effects.revoke_sessions => {
            use diesel::Connection;
            conn.transaction::<_, UserWriteError, _>(|conn| {
                if !super::users::lock_at_version(conn, row.pk, row.version)? {
                    return Err(UserWriteError::Changed);
                }
                let revoked = super::sessions::revoke_all(conn, row.pk, now)?;
                let effects =
                    Effects { revoke_sessions: true, records: effects.records.with_revoked_sessions(&revoked) };
                let DbConnection::Postgresql(pg) = conn else { unreachable!("matched PostgreSQL") };
                postgres::write::update_user(pg, tenant_id, row, write, &columns, items_changed, now, &effects)
            })
        }
        DbConnection::Postgresql(pg) => {
            postgres::write::update_user(pg, tenant_id, row, write, &columns, items_changed, now, effects)
        }
        DbConnection::Sqlite(_) => {
            let identity_changed = columns.identity_changed(row, &old);
            sqlite::write::update_user(
                conn,
                tenant_id,
                row,
                write,
                &columns,
                items_changed,
                identity_changed,
                now,
                effects,
            )
        }
    }?;
    Ok(columns.stored(row.pk, &row.id, row.created_at, now, row.version + 1))
}

/// Applies member changes already reduced to what they come to (see `groups::batches`): moves
/// the group's version on by `changes`, deletes the members in `removed`, and adds the users or
/// groups of the tenant that `added` names, skipping members already there except the ones in
/// `readded` (removed and added again), whose display name is replaced. None when the group does
/// not exist; [`GroupWriteError::UnknownMembers`], with nothing changed, when some of `added` name
/// nothing in the tenant.
///
/// On PostgreSQL this is one statement, so one round trip and its own transaction: the group
/// is held only while it runs and commits (`postgres/write.rs`). On SQLite it is the statements
/// of a single change, in the transaction the caller holds (`sqlite/write.rs`).
#[allow(clippy::too_many_arguments)]
pub fn change_members(
    conn: &mut DbConnection,
    tenant_id: &str,
    id: &str,
    now: NaiveDateTime,
    changes: i64,
    removed: &[String],
    added: &[Member],
    readded: &[&str],
) -> Result<Option<GroupRow>, GroupWriteError> {
    match conn {
        DbConnection::Postgresql(pg) => {
            postgres::write::change_members(pg, tenant_id, id, now, changes, removed, added, readded)
        }
        DbConnection::Sqlite(_) => {
            sqlite::write::change_members(conn, tenant_id, id, now, changes, removed, added, readded)
        }
    }
}
