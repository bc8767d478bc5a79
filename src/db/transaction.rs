//! Transactions of writes on either backend, and the one database error writes tell apart.

use diesel::connection::{AnsiTransactionManager, TransactionManager};
use diesel::prelude::*;

use super::connection::DbConnection;
use super::writer;

/// Runs `work` in a transaction that holds the write lock from its first statement.
///
/// SQLite's default deferred transaction takes the lock at its first write; when another writer
/// got there first, the upgrade fails at once with SQLITE_BUSY instead of waiting.
/// `BEGIN IMMEDIATE` makes writers queue on the busy timeout instead.
///
/// The lifecycle transitions `work` makes are counted when it commits: at once when this was
/// the outermost transaction, else with the transaction it is a savepoint of
/// ([`crate::metrics::holding`]); never when it fails.
pub fn write_transaction<T, E, F>(conn: &mut DbConnection, work: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    let (result, held) = crate::metrics::holding(|| transaction(conn, work));
    if result.is_ok() {
        let depth =
            <DbConnection as Connection>::TransactionManager::transaction_manager_status_mut(conn).transaction_depth();
        match depth {
            Ok(None) => held.count(),
            _ => held.keep(),
        }
    }
    result
}

fn transaction<T, E, F>(conn: &mut DbConnection, work: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    let DbConnection::Sqlite(sqlite) = conn else {
        return conn.transaction(work);
    };
    let _txn = super::txn::SqliteTxn::enter();
    // Inside the group-commit writer's transaction this is a savepoint.
    if AnsiTransactionManager::transaction_manager_status_mut(sqlite).transaction_depth()?.is_some() {
        return writer::in_savepoint(conn, work);
    }
    AnsiTransactionManager::begin_transaction_sql(sqlite, "BEGIN IMMEDIATE")?;
    writer::take_undo_failure();
    let result = work(conn);
    let DbConnection::Sqlite(sqlite) = conn else { unreachable!("the connection kept its backend") };
    // A write inside failed and could not be undone; `work` went on regardless.
    let result = match result {
        Ok(_) if writer::take_undo_failure() => Err(E::from(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::Unknown,
            Box::new("a failed write could not be undone; nothing was stored".to_owned()),
        ))),
        other => other,
    };
    match result {
        Ok(value) => {
            AnsiTransactionManager::commit_transaction(sqlite)?;
            Ok(value)
        }
        Err(e) => {
            // The original error matters more than a failed rollback, which diesel records anyway.
            let _ = AnsiTransactionManager::rollback_transaction(sqlite);
            Err(e)
        }
    }
}

/// Runs a write that is one statement on PostgreSQL, where a statement is a transaction of its
/// own: without BEGIN and COMMIT, two round trips fewer. On SQLite it is a [`write_transaction`]
/// like any write (a savepoint inside the group-commit writer's batch). Only for work whose
/// every write on PostgreSQL is that one statement; reads before it must not need to be
/// consistent with it, beyond what the statement itself checks (a user's version, say).
pub fn single_statement_write<T, E, F>(conn: &mut DbConnection, work: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    match conn {
        DbConnection::Postgresql(_) => work(conn),
        DbConnection::Sqlite(_) => write_transaction(conn, work),
    }
}

/// True when another transaction held what this one needed: PostgreSQL chose it as a deadlock's
/// victim (SQLSTATE 40P01) or could not serialize it (40001), or SQLite's writer stayed busy past
/// its wait. Nothing of it was stored.
pub fn is_contention(err: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind, Error};
    match err {
        Error::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => true,
        Error::DatabaseError(_, info) => {
            let message = info.message();
            message.contains("deadlock detected")
                || message.contains("could not serialize access")
                || message.contains("database is locked")
        }
        _ => false,
    }
}

/// True for a unique-constraint violation on either backend.
pub fn is_unique_violation(err: &diesel::result::Error) -> bool {
    matches!(err, diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _))
}
