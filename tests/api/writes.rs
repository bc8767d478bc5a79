//! A write that fails inside a transaction leaves nothing behind, even when undoing it fails.
//!
//! SQLite only: these are the savepoints of its group-commit writer and of `write_transaction`
//! nested in another transaction; on PostgreSQL neither runs a savepoint of Roster's. The undo
//! is made to fail by a write that releases the savepoint it was given, so that what it
//! inserted is left in the enclosing transaction.

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use roster::db::schema::server_settings;
use roster::db::{write_transaction, Database, DbConnection, DbError};

use crate::helpers::{Backend, TestDatabase};

fn open(test_db: &TestDatabase) -> Database {
    Database::open(&test_db.url, 2, Duration::from_secs(5)).expect("database opens").0
}

fn stored(conn: &mut DbConnection, name: &str) -> bool {
    server_settings::table.filter(server_settings::name.eq(name)).count().get_result::<i64>(conn).unwrap() > 0
}

fn put(conn: &mut DbConnection, name: &str) -> QueryResult<usize> {
    diesel::insert_into(server_settings::table)
        .values((server_settings::name.eq(name), server_settings::value.eq("x")))
        .execute(conn)
}

fn fails_beyond_undo(conn: &mut DbConnection, name: &str) -> Result<(), DbError> {
    put(conn, name)?;
    let DbConnection::Sqlite(sqlite) = conn else { panic!("an SQLite test") };
    sqlite.batch_execute("RELEASE roster_write")?;
    Err(DbError::Blocking("the write failed".into()))
}

#[tokio::test]
async fn a_writer_batch_with_a_write_that_could_not_be_undone_stores_nothing() {
    let test_db = TestDatabase::create(Backend::Sqlite).expect("SQLite");
    let db = open(&test_db);
    // Alone in its batch a write has no savepoint of its own (the batch's transaction undoes
    // it); a nested one gets a savepoint once something was written before it.
    let failed = db
        .write(|conn| {
            put(conn, "first")?;
            let inner = write_transaction(conn, |conn| fails_beyond_undo(conn, "left-behind"));
            assert!(matches!(inner, Err(DbError::Blocking(ref why)) if why == "the write failed"), "{inner:?}");
            // The caller shrugs the inner failure off and would commit.
            Ok::<_, DbError>(())
        })
        .await;
    assert!(matches!(failed, Err(DbError::Commit(ref why)) if why.contains("could not be undone")), "{failed:?}");
    // The writer goes on with the next batch, and commits it.
    db.write(|conn| put(conn, "next").map_err(DbError::from)).await.unwrap();
    let mut conn = db.conn().unwrap();
    assert!(!stored(&mut conn, "first") && !stored(&mut conn, "left-behind"), "a failed batch was committed");
    assert!(stored(&mut conn, "next"));
}

/// A write alone in its batch that fails leaves nothing, with no savepoint: its batch's
/// transaction is rolled back and begun again.
#[tokio::test]
async fn a_failed_write_alone_in_its_batch_leaves_nothing() {
    let test_db = TestDatabase::create(Backend::Sqlite).expect("SQLite");
    let db = open(&test_db);
    let failed = db
        .write(|conn| {
            put(conn, "alone")?;
            put(conn, "alone").map_err(DbError::from)
        })
        .await;
    assert!(matches!(failed, Err(DbError::Query(ref e)) if roster::db::is_unique_violation(e)), "{failed:?}");
    db.write(|conn| put(conn, "next").map_err(DbError::from)).await.unwrap();
    let mut conn = db.conn().unwrap();
    assert!(!stored(&mut conn, "alone"), "a write reported as failed was committed");
    assert!(stored(&mut conn, "next"));
}

#[test]
fn a_transaction_whose_inner_write_could_not_be_undone_rolls_back() {
    let test_db = TestDatabase::create(Backend::Sqlite).expect("SQLite");
    let db = open(&test_db);
    let mut conn = db.conn().unwrap();
    let outcome: Result<(), DbError> = write_transaction(&mut conn, |conn| {
        put(conn, "before")?;
        // The caller shrugs the inner failure off and would commit.
        let _ = write_transaction(conn, |conn| fails_beyond_undo(conn, "inner"));
        Ok(())
    });
    assert!(outcome.unwrap_err().to_string().contains("could not be undone"));
    assert!(!stored(&mut conn, "before") && !stored(&mut conn, "inner"), "nothing of it may be stored");
    // The next transaction on the same thread starts clean.
    write_transaction(&mut conn, |conn| put(conn, "after").map_err(DbError::from)).unwrap();
    assert!(stored(&mut conn, "after"));
}
