//! The write path of users and group members: each write picks its backend's statements
//! (`sqlite/write.rs`, `postgres/write.rs`, each readable whole) and returns what was stored.

use chrono::NaiveDateTime;

use super::groups::{GroupRow, WriteError as GroupWriteError};
use super::users::{indexed_items, Columns, Effects, NewUser, UserRow, UserWrite, WriteError as UserWriteError};
use super::{postgres, sqlite, DbConnection};
use crate::scim::members::Member;
use crate::scim::resource::Document;

/// Stores a new user with its item index and records. On PostgreSQL this is one statement,
/// so it needs no transaction of its own (see [`crate::db::single_statement_write`]). Each
/// backend's statements are in its `write.rs`.
pub fn insert_user(
    conn: &mut DbConnection,
    tenant_id: &str,
    user: NewUser<'_>,
    now: NaiveDateTime,
) -> Result<UserRow, UserWriteError> {
    let NewUser { id, write, records } = &user;
    let columns = Columns::of(write);
    let pk = match conn {
        DbConnection::Postgresql(pg) => postgres::write::insert_user(pg, tenant_id, id, write, &columns, now, records),
        DbConnection::Sqlite(_) => sqlite::write::insert_user(conn, tenant_id, id, write, &columns, now, records),
    }?;
    Ok(columns.stored(pk, id, now, now, 1))
}

/// Stores new users, each with its item index and records, in order. Returns each one's row,
/// or [`UserWriteError::UserNameTaken`] for one whose userName is taken (already stored, or
/// by an earlier user of `users`), of which nothing is stored. Any other failure is returned
/// for them all.
///
/// On PostgreSQL this is one statement (`postgres/write.rs`): however many users, one round
/// trip and no subtransaction, and when it fails nothing of it is stored. It writes for each
/// user the rows [`insert_user`] writes (`tests/api/write_paths.rs` holds them alike), from
/// the same [`NewUser`]; a single create keeps its own statement, which costs the database
/// half of what this one does for one user (a set-based statement's fixed cost). On SQLite, where a
/// statement costs no round trip, each user is [`insert_user`]'s statements in a savepoint of
/// its own within the caller's write transaction; when one fails otherwise than by its
/// userName, the users before it are written in that transaction, which the caller rolls back.
pub fn insert_users(
    conn: &mut DbConnection,
    tenant_id: &str,
    users: &[NewUser<'_>],
    now: NaiveDateTime,
) -> Result<Vec<Result<UserRow, UserWriteError>>, UserWriteError> {
    let columns: Vec<Columns> = users.iter().map(|user| Columns::of(&user.write)).collect();
    let pks = match conn {
        DbConnection::Postgresql(pg) => postgres::write::insert_users(pg, tenant_id, users, &columns, now)?,
        DbConnection::Sqlite(_) => {
            let mut pks = Vec::with_capacity(users.len());
            for (user, columns) in users.iter().zip(&columns) {
                let insert = |conn: &mut DbConnection| {
                    sqlite::write::insert_user(conn, tenant_id, user.id, &user.write, columns, now, &user.records)
                };
                match super::write_transaction(conn, insert) {
                    Ok(pk) => pks.push(Some(pk)),
                    Err(UserWriteError::UserNameTaken(_)) => pks.push(None),
                    Err(e) => return Err(e),
                }
            }
            pks
        }
    };
    let rows = users.iter().zip(columns).zip(pks).map(|((user, columns), pk)| match pk {
        Some(pk) => Ok(columns.stored(pk, user.id, now, now, 1)),
        None => Err(UserWriteError::UserNameTaken(columns.user_name)),
    });
    Ok(rows.collect())
}

/// Stores a new version of `row`, whose profile is `before` (`row.document()`), with its
/// `effects`; fails with [`UserWriteError::Changed`] when `row` is stale, having written
/// nothing. On PostgreSQL this is one statement.
pub fn update_user(
    conn: &mut DbConnection,
    tenant_id: &str,
    row: &UserRow,
    before: &Document,
    write: &UserWrite<'_>,
    now: NaiveDateTime,
    effects: &Effects<'_>,
) -> Result<UserRow, UserWriteError> {
    let columns = Columns::of(write);
    // The item index is rewritten only when the items changed (not for `active`, a name…).
    let items_changed = indexed_items(before) != indexed_items(write.doc);
    match conn {
        DbConnection::Postgresql(pg) => {
            postgres::write::update_user(pg, tenant_id, row, write, &columns, items_changed, now, effects)
        }
        DbConnection::Sqlite(_) => {
            let identity_changed = columns.identity_changed(row, before);
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
