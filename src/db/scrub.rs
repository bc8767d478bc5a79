//! Personal data gone from the disk, not only from the rows.
//!
//! Deleting a row or overwriting a profile leaves the old bytes behind: SQLite frees the cells
//! but keeps their content in the page (unless `secure_delete`), and its WAL keeps every older
//! page image until it is reset; PostgreSQL keeps the old row versions as dead tuples until
//! VACUUM prunes them (and even then their bytes stay in the page's free space until reused:
//! see the README). So a write that removes an account's personal data (becoming a Former
//! Member, deletion) marks itself with [`personal_data_removed`], and once it has committed
//! the storage layer scrubs: on SQLite a WAL checkpoint in TRUNCATE mode (pages are zeroed on
//! free by `PRAGMA secure_delete`, set on every connection), on PostgreSQL a VACUUM of the
//! tables such writes touch. Both are batched, so that bulk deletion pays for one scrub per
//! batch rather than one per account. What remains afterwards is written in the README
//! (Operations, "Personal data on disk").

use std::cell::Cell;
use std::sync::mpsc::{self, RecvTimeoutError::Disconnected};
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;

use super::{DatabaseUrl, DbConnection};

/// How long a scrub waits after the first removal that asks for it, so that the removals of a
/// bulk deletion share one; also the least time between two scrubs while removals keep coming.
pub const DELAY: Duration = Duration::from_secs(1);

/// How long a WAL checkpoint waits for readers of older WAL frames before it gives up and is
/// tried again later: the SQLite writer does it, and holds every write back meanwhile.
const CHECKPOINT_PATIENCE_MS: u32 = 200;

/// How long PostgreSQL's scrubber waits before it tries again a VACUUM that failed.
const RETRY: Duration = Duration::from_secs(30);

/// How long it waits before it tries again a VACUUM that an older snapshot held back.
const HELD_BACK_RETRY: Duration = Duration::from_secs(5);

/// The tables whose rows a Former Member transition or a deletion changes or deletes: `events`
/// loses the account's identifiers (`records::forget_identifiers`), and `archive_exports` the
/// sealed export once the archive sink has written it.
const TOUCHED_TABLES: &str = "users, user_values, group_members, content, sessions, events, archive_exports, \
     conversation_members, conversation_messages, former_member_names";

thread_local! {
    /// Set by a write on this thread that removes personal data; taken once it has committed.
    static REMOVED: Cell<bool> = const { Cell::new(false) };
}

/// Marks the write running on this thread as one that removes an account's personal data, so
/// that the storage layer scrubs the old bytes from the disk after it commits.
pub fn personal_data_removed() {
    REMOVED.with(|removed| removed.set(true));
}

/// Whether a write on this thread removed personal data since the last call; clears the mark.
pub fn take() -> bool {
    REMOVED.with(|removed| removed.replace(false))
}

/// Copies the whole WAL into the database file and truncates it to zero bytes
/// (`wal_checkpoint(TRUNCATE)`), so that no older page image survives in it. False when a
/// reader still needed old frames and the checkpoint could not complete; try again later.
pub fn checkpoint(conn: &mut diesel::SqliteConnection) -> QueryResult<bool> {
    #[derive(QueryableByName)]
    struct Checkpoint {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        busy: i32,
    }
    conn.batch_execute(&format!("PRAGMA busy_timeout = {CHECKPOINT_PATIENCE_MS}"))?;
    let result = diesel::sql_query("PRAGMA wal_checkpoint(TRUNCATE)").load::<Checkpoint>(conn);
    conn.batch_execute(&format!("PRAGMA busy_timeout = {}", super::connection::SQLITE_BUSY_TIMEOUT_MS))?;
    let complete = result?.first().is_some_and(|c| c.busy == 0);
    crate::metrics::sqlite_checkpoint(complete);
    Ok(complete)
}

/// VACUUM (with index cleanup forced: PostgreSQL otherwise skips the indexes when few pages
/// have dead rows, and their entries keep the old values) of the tables removals touch. Several
/// nodes may do this at once: VACUUMs of one table wait for each other, and the later one then
/// also prunes what committed while the earlier one ran.
pub fn vacuum(conn: &mut diesel::PgConnection) -> QueryResult<()> {
    conn.batch_execute(&format!("VACUUM (INDEX_CLEANUP ON) {TOUCHED_TABLES}"))
}

/// The next transaction id PostgreSQL will hand out: every removal that has committed so far
/// has a smaller one.
fn next_xid(conn: &mut diesel::PgConnection) -> QueryResult<String> {
    #[derive(QueryableByName)]
    struct Next {
        #[diesel(sql_type = diesel::sql_types::Text)]
        xid: String,
    }
    let next: Next =
        diesel::sql_query("SELECT pg_snapshot_xmax(pg_current_snapshot())::text AS xid").get_result(conn)?;
    Ok(next.xid)
}

/// Whether another session of this database holds a snapshot or a transaction older than
/// `xid`. VACUUM cannot prune a row version such a session might still see, so a VACUUM that
/// starts while one does leaves the removed values in dead rows (a long report, a `pg_dump`, an
/// idle open transaction). None can start later: a new snapshot's horizon is the oldest
/// transaction still running, which such a session would be. Replication slots and prepared
/// transactions also hold VACUUM back; they are not looked at here (README).
fn held_back(conn: &mut diesel::PgConnection, xid: &str) -> QueryResult<bool> {
    #[derive(QueryableByName)]
    struct Held {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        held: bool,
    }
    let held: Held = diesel::sql_query(
        "SELECT EXISTS (SELECT 1 FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid() \
         AND (age(backend_xmin) > age($1::xid) OR age(backend_xid) > age($1::xid))) AS held",
    )
    .bind::<diesel::sql_types::Text, _>(xid)
    .get_result(conn)?;
    Ok(held.held)
}

/// One scrub for every removal committed before `xid` (see [`next_xid`]): a VACUUM, and whether
/// it must be tried again because an older snapshot kept it from pruning them all.
fn vacuum_after(conn: &mut diesel::PgConnection, xid: &str) -> QueryResult<bool> {
    let held = held_back(conn, xid)?;
    vacuum(conn)?;
    Ok(held)
}

/// Scrubs at once on `conn`, when a write on this thread removed personal data: for work
/// outside [`super::Database::run`] and the SQLite writer (the command line's).
pub fn now(conn: &mut DbConnection) {
    if take() {
        on(conn);
    }
}

/// Scrubs at once on `conn`: a checkpoint on SQLite, a VACUUM on PostgreSQL.
pub fn on(conn: &mut DbConnection) {
    let result = match conn {
        DbConnection::Sqlite(c) => checkpoint(c).map(|_| ()),
        DbConnection::Postgresql(c) => vacuum(c),
    };
    if let Err(e) = result {
        tracing::warn!(error = %e, "could not scrub removed personal data from the database files");
    }
}

/// PostgreSQL's scrubber: a thread with its own connection that VACUUMs [`DELAY`] after it is
/// asked, once for all requests that arrive meanwhile. It stops when the last [`Vacuum`] handle
/// (each clone of the database) is dropped.
#[derive(Clone)]
pub struct Vacuum {
    requests: mpsc::Sender<()>,
}

impl Vacuum {
    pub fn start(url: DatabaseUrl) -> std::io::Result<Vacuum> {
        let (requests, queue) = mpsc::channel::<()>();
        std::thread::Builder::new().name("roster-vacuum".into()).spawn(move || {
            let mut conn: Option<DbConnection> = None;
            // A VACUUM that failed, or that an older snapshot held back, is still owed: tried
            // again after a while, requested or not.
            let mut owed: Option<Duration> = None;
            loop {
                let next = match owed {
                    Some(wait) => queue.recv_timeout(wait),
                    None => queue.recv().map_err(|_| Disconnected),
                };
                if next == Err(Disconnected) {
                    break;
                }
                if conn.is_none() {
                    conn = url.establish().map_err(|e| tracing::warn!(error = %e, "vacuum: no connection")).ok();
                }
                let Some(DbConnection::Postgresql(pg)) = conn.as_mut() else {
                    owed = Some(RETRY);
                    continue;
                };
                std::thread::sleep(DELAY);
                while queue.try_recv().is_ok() {}
                // Taken after the batching delay and the requests it gathered: each request is
                // sent once its removal has committed, so every removal this VACUUM answers for
                // committed before this transaction id, and an older snapshot still holding one
                // of them back is seen by `vacuum_after`.
                let xid = next_xid(pg);
                owed = match xid.and_then(|xid| vacuum_after(pg, &xid)) {
                    Ok(false) => None,
                    Ok(true) => {
                        tracing::debug!("an older snapshot held the scrub back; it runs again shortly");
                        Some(HELD_BACK_RETRY)
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "could not vacuum the tables of removed personal data");
                        conn = None;
                        Some(RETRY)
                    }
                };
            }
        })?;
        Ok(Vacuum { requests })
    }

    /// Asks for a VACUUM soon; many requests in a short time make one.
    pub fn request(&self) {
        let _ = self.requests.send(());
    }
}
