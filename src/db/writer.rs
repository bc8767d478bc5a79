//! Group commit for SQLite: one thread owns a write connection and applies the writes that
//! arrive while the previous commit was syncing as one transaction, each write in a savepoint
//! of its own. One fsync then makes a whole batch durable, so concurrent writes share commits
//! instead of paying one each, and every write is still acknowledged only after it is on disk
//! (`synchronous = FULL`). A write alone in its batch needs no savepoint: the transaction
//! undoes it (see [`in_savepoint`]), which spares SQLite copying every page it changes.

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::time::Instant;

use diesel::connection::{AnsiTransactionManager, TransactionManager};

use super::{scrub, DatabaseUrl, DbConnection, DbError};

/// Most writes in one commit: bounds how long a batch holds the lock.
const MAX_BATCH: usize = 256;

/// A write's result, waiting for its batch to commit.
pub trait Pending: Send {
    /// Delivers the result, or the commit's failure, to the waiting request.
    fn finish(self: Box<Self>, commit: Result<(), String>);
}

/// Applies one write (in its savepoint) and hands back its pending result.
pub type Job = Box<dyn FnOnce(&mut DbConnection) -> Box<dyn Pending> + Send>;

#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::Sender<Job>,
    /// Cleared when the writer thread ends, however it ends (`/readyz`).
    alive: Arc<AtomicBool>,
}

/// Clears the writer's liveness flag when its thread ends, by returning or by unwinding.
struct Lifeline(Arc<AtomicBool>);

impl Drop for Lifeline {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Relaxed);
    }
}

impl Writer {
    /// Starts the writer thread with its own connection.
    pub fn start(url: &DatabaseUrl) -> Result<Writer, DbError> {
        let mut conn = url.establish()?;
        // Each write runs in a savepoint, so SQLite copies every page a write changes that an
        // earlier write of the batch changed first into a statement journal, to undo that write
        // alone. By default the journal spills into a temporary file past 64 KiB, and at 10^6
        // users those writes were more bytes than the WAL itself (measured: 52 MB to the
        // journal against 23 MB to the WAL in 3 s of creates). In memory it lives only for one
        // batch of at most MAX_BATCH writes.
        if let DbConnection::Sqlite(sqlite) = &mut conn {
            use diesel::connection::SimpleConnection;
            sqlite.batch_execute("PRAGMA temp_store = MEMORY")?;
        }
        let (jobs, queue) = mpsc::channel::<Job>();
        let alive = Arc::new(AtomicBool::new(true));
        let lifeline = Lifeline(alive.clone());
        std::thread::Builder::new()
            .name("roster-sqlite-writer".into())
            .spawn(move || {
                let _lifeline = lifeline;
                // When a committed write removed personal data and the WAL still holds it.
                let mut scrub_owed: Option<Instant> = None;
                loop {
                    let next = match scrub_owed {
                        None => queue.recv().map_err(|_| RecvTimeoutError::Disconnected),
                        Some(since) => {
                            queue.recv_timeout((since + scrub::DELAY).saturating_duration_since(Instant::now()))
                        }
                    };
                    let first = match next {
                        Ok(job) => job,
                        Err(RecvTimeoutError::Timeout) => {
                            scrub_owed = checkpoint(&mut conn, scrub_owed);
                            continue;
                        }
                        Err(RecvTimeoutError::Disconnected) => {
                            checkpoint(&mut conn, scrub_owed);
                            break;
                        }
                    };
                    let mut batch = vec![first];
                    while batch.len() < MAX_BATCH {
                        match queue.try_recv() {
                            Ok(job) => batch.push(job),
                            Err(_) => break,
                        }
                    }
                    run_batch(&mut conn, batch);
                    if scrub::take() {
                        scrub_owed.get_or_insert_with(Instant::now);
                    }
                    // Under a steady stream of writes, one checkpoint per DELAY at most.
                    if scrub_owed.is_some_and(|since| since.elapsed() >= scrub::DELAY) {
                        scrub_owed = checkpoint(&mut conn, scrub_owed);
                    }
                }
            })
            .map_err(|e| DbError::Blocking(e.to_string()))?;
        Ok(Writer { jobs, alive })
    }

    /// Whether the writer thread still takes writes.
    pub fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Relaxed)
    }

    pub fn submit(&self, job: Job) -> Result<(), DbError> {
        self.jobs.send(job).map_err(|_| DbError::Blocking("the SQLite writer has stopped".into()))
    }
}

/// A statement of fixed text, so that the connection keeps it prepared: diesel's own
/// savepoints go through `batch_execute`, which has SQLite parse them on every use, four times
/// per write (the batch's savepoint and the write's own).
macro_rules! fixed_statement {
    ($name:ident, $text:literal) => {
        struct $name;

        impl diesel::query_builder::QueryId for $name {
            type QueryId = $name;
            const HAS_STATIC_QUERY_ID: bool = true;
        }

        impl diesel::query_builder::QueryFragment<diesel::sqlite::Sqlite> for $name {
            fn walk_ast<'b>(
                &'b self,
                mut out: diesel::query_builder::AstPass<'_, 'b, diesel::sqlite::Sqlite>,
            ) -> diesel::QueryResult<()> {
                out.push_sql($text);
                Ok(())
            }
        }

        impl diesel::RunQueryDsl<diesel::SqliteConnection> for $name {}
    };
}

fixed_statement!(Savepoint, "SAVEPOINT roster_write");
fixed_statement!(Release, "RELEASE roster_write");
fixed_statement!(RollbackTo, "ROLLBACK TO roster_write");

thread_local! {
    /// Set on this thread when a failed write's savepoint could not be rolled back: what the
    /// write did may still be in the enclosing transaction, which therefore must not commit.
    /// Cleared when a transaction begins; read before it commits ([`take_undo_failure`]).
    static UNDO_FAILED: Cell<bool> = const { Cell::new(false) };

    /// Whether the writer's transaction holds one write alone, and what it has written (see
    /// [`Alone`]).
    static ALONE: Cell<Alone> = const { Cell::new(Alone::No) };
}

/// A writer batch of one write: while nothing has been written in its transaction, rolling the
/// transaction back and beginning it again undoes a write exactly as a savepoint would, without
/// one.
#[derive(Clone, Copy)]
enum Alone {
    /// Not a writer batch of one write: writes take savepoints.
    No,
    /// A batch of one write, its transaction just begun: nothing written yet.
    Begun,
    /// A batch of one write whose transaction began at this `total_changes()` of the connection;
    /// nothing has been written while the count has not moved.
    Since(i64),
}

#[diesel::declare_sql_function]
extern "SQL" {
    /// Rows the connection's INSERT, UPDATE and DELETE statements have changed since it opened.
    fn total_changes() -> diesel::sql_types::BigInt;
}

/// Whether nothing has been written in the writer's transaction since it began, while it holds
/// one write alone (see [`ALONE`]); asks the connection, and remembers its first answer.
fn nothing_written_alone(conn: &mut diesel::SqliteConnection) -> diesel::QueryResult<bool> {
    use diesel::RunQueryDsl;
    let alone = ALONE.get();
    if matches!(alone, Alone::No) {
        return Ok(false);
    }
    let now: i64 = diesel::select(total_changes()).get_result(conn)?;
    match alone {
        Alone::Since(began) => Ok(began == now),
        _ => {
            ALONE.set(Alone::Since(now));
            Ok(true)
        }
    }
}

/// Undoes everything written in the writer's transaction, which holds one write alone and wrote
/// nothing before the failed part began: rolls it back and begins it again. Should either fail,
/// the transaction is marked as not to be committed.
fn undo_alone(conn: &mut diesel::SqliteConnection) {
    let again = AnsiTransactionManager::rollback_transaction(conn)
        .and_then(|_| AnsiTransactionManager::begin_transaction_sql(conn, "BEGIN IMMEDIATE"));
    ALONE.set(Alone::Begun);
    if let Err(e) = again {
        tracing::error!(error = %e, "a failed write could not be undone; nothing of its batch will be stored");
        UNDO_FAILED.with(|failed| failed.set(true));
        ALONE.set(Alone::No);
    }
}

/// Whether a write of the transaction on this thread could not be undone since it began; clears
/// the mark. Call when beginning a transaction (to start clean) and before committing one.
pub fn take_undo_failure() -> bool {
    UNDO_FAILED.with(|failed| failed.replace(false))
}

/// Runs `work` inside the SQLite transaction already open on `conn` (a writer batch's, or any
/// other), in a savepoint of its own: when it fails, its writes are undone and the
/// transaction's others stand. SQLite savepoints nest by name, so `work` may open further ones,
/// diesel's included. Should the undo itself fail, the write's own error is still returned and
/// the enclosing transaction is marked so that it rolls back rather than commit a part of a
/// write reported as failed (see [`take_undo_failure`]).
///
/// While the writer's transaction holds one write alone and nothing has been written in it yet,
/// no savepoint is opened: a failure rolls the transaction back and begins it again, which undoes
/// exactly what a savepoint would have. A savepoint costs more than its two statements: SQLite
/// copies every page the write then changes into a journal in memory, to undo it alone (with the
/// insert triggers, about 70,000 of the 690,000 instructions of a create).
pub fn in_savepoint<T, E, F>(conn: &mut DbConnection, work: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    use diesel::RunQueryDsl;
    fn sqlite(conn: &mut DbConnection) -> &mut diesel::SqliteConnection {
        match conn {
            DbConnection::Sqlite(c) => c,
            DbConnection::Postgresql(_) => unreachable!("savepoints of the SQLite writer only"),
        }
    }
    let _txn = super::txn::SqliteTxn::enter();
    if UNDO_FAILED.get() {
        // A write of this transaction could not be undone (or its transaction begun again): it
        // will not commit, so nothing more is written in it.
        return Err(diesel::result::Error::BrokenTransactionManager.into());
    }
    // Alone in its batch with nothing written yet: the transaction is the savepoint. A SQLite
    // savepoint copies every page a write changes into a journal, to undo that write alone.
    if nothing_written_alone(sqlite(conn))? {
        let result = work(conn);
        if result.is_err() {
            undo_alone(sqlite(conn));
        }
        return result;
    }
    Savepoint.execute(sqlite(conn))?;
    let undo = |conn: &mut DbConnection| {
        let c = sqlite(conn);
        if let Err(e) = RollbackTo.execute(c).and_then(|_| Release.execute(c)) {
            tracing::error!(error = %e, "a failed write could not be undone; its transaction will be rolled back");
            UNDO_FAILED.with(|failed| failed.set(true));
        }
    };
    match work(conn) {
        Ok(value) => match Release.execute(sqlite(conn)) {
            Ok(_) => Ok(value),
            // Not released: undo it, so that nothing of a write reported as failed commits.
            Err(e) => {
                undo(conn);
                Err(e.into())
            }
        },
        Err(e) => {
            undo(conn);
            Err(e)
        }
    }
}

/// Checkpoints the WAL when a scrub is owed (see [`scrub`]); what is still owed after it.
fn checkpoint(conn: &mut DbConnection, owed: Option<Instant>) -> Option<Instant> {
    owed?;
    let DbConnection::Sqlite(sqlite) = conn else { unreachable!("the writer serves SQLite only") };
    match scrub::checkpoint(sqlite) {
        Ok(true) => None,
        // A reader still uses older frames: again after another DELAY.
        Ok(false) => Some(Instant::now()),
        Err(e) => {
            tracing::warn!(error = %e, "could not checkpoint the WAL after removing personal data");
            Some(Instant::now())
        }
    }
}

fn run_batch(conn: &mut DbConnection, batch: Vec<Job>) {
    let DbConnection::Sqlite(sqlite) = conn else { unreachable!("the writer serves SQLite only") };
    if let Err(e) = AnsiTransactionManager::begin_transaction_sql(sqlite, "BEGIN IMMEDIATE") {
        // The jobs never ran. Dropping them closes their reply channels, so each request gets
        // an error and none is acknowledged.
        tracing::error!(error = %e, "the SQLite writer could not begin a transaction");
        drop(batch);
        return;
    }
    take_undo_failure();
    // A write alone needs no savepoint of its own (see `in_savepoint`).
    ALONE.set(if batch.len() == 1 { Alone::Begun } else { Alone::No });
    let mut pending = Vec::with_capacity(batch.len());
    let mut panicked = false;
    for job in batch {
        match catch_unwind(AssertUnwindSafe(|| job(conn))) {
            Ok(p) => pending.push(p),
            Err(_) => panicked = true,
        }
    }
    ALONE.set(Alone::No);
    let DbConnection::Sqlite(sqlite) = conn else { unreachable!() };
    let commit = if panicked {
        Err("a write in the same batch failed unexpectedly; nothing was stored".to_owned())
    } else if take_undo_failure() {
        Err("a failed write in the same batch could not be undone; nothing was stored".to_owned())
    } else {
        AnsiTransactionManager::commit_transaction(sqlite).map_err(|e| e.to_string())
    };
    if commit.is_err() {
        let _ = AnsiTransactionManager::rollback_transaction(sqlite);
    }
    for p in pending {
        p.finish(commit.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A write whose result cannot be delivered: the panic ends the writer thread.
    struct Undeliverable;

    impl Pending for Undeliverable {
        fn finish(self: Box<Self>, _commit: Result<(), String>) {
            panic!("delivering the result failed");
        }
    }

    /// Hands a job's result and its batch's commit back to the test.
    struct Sent(mpsc::Sender<(Result<(), String>, Result<(), String>)>, Result<(), String>);

    impl Pending for Sent {
        fn finish(self: Box<Self>, commit: Result<(), String>) {
            let _ = self.0.send((self.1, commit));
        }
    }

    fn insert(conn: &mut DbConnection, x: i64) -> Result<(), diesel::result::Error> {
        use diesel::RunQueryDsl;
        let DbConnection::Sqlite(c) = conn else { unreachable!() };
        diesel::sql_query(format!("INSERT INTO t (x) VALUES ({x})")).execute(c).map(|_| ())
    }

    /// Runs `work` as the writer's one job, in its savepoint as `Database::write` does, and
    /// returns its result and the commit's.
    fn alone(
        writer: &Writer,
        work: impl FnOnce(&mut DbConnection) -> Result<(), diesel::result::Error> + Send + 'static,
    ) -> (Result<(), String>, Result<(), String>) {
        let (sent, received) = mpsc::channel();
        writer
            .submit(Box::new(move |conn| {
                let result = in_savepoint(conn, work).map_err(|e| e.to_string());
                Box::new(Sent(sent, result)) as Box<dyn Pending>
            }))
            .unwrap();
        received.recv().unwrap()
    }

    fn stored(url: &DatabaseUrl) -> Vec<i64> {
        use diesel::prelude::*;
        #[derive(QueryableByName)]
        struct Row {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            x: i64,
        }
        let DbConnection::Sqlite(mut c) = url.establish().unwrap() else { unreachable!() };
        diesel::sql_query("SELECT x FROM t ORDER BY x").load::<Row>(&mut c).unwrap().into_iter().map(|r| r.x).collect()
    }

    /// A write alone in its batch runs without a savepoint (the transaction undoes it); what
    /// it undoes must still be exactly what a savepoint would have undone.
    #[test]
    fn a_write_alone_in_its_batch_is_undone_exactly_as_a_savepoint_would() {
        let folder = std::env::temp_dir().join(format!("roster_writer_{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&folder).unwrap();
        let url = DatabaseUrl::parse(folder.join("roster.db").to_str().unwrap()).unwrap();
        let writer = Writer::start(&url).unwrap();
        let (_, commit) = alone(&writer, |conn| {
            use diesel::connection::SimpleConnection;
            let DbConnection::Sqlite(c) = conn else { unreachable!() };
            c.batch_execute("CREATE TABLE t (x BIGINT NOT NULL UNIQUE)")
        });
        commit.unwrap();

        // A failed write leaves nothing, and the batch still commits.
        let (result, commit) = alone(&writer, |conn| {
            insert(conn, 1)?;
            insert(conn, 2)?;
            insert(conn, 1)
        });
        assert!(result.is_err());
        commit.unwrap();
        assert_eq!(stored(&url), Vec::<i64>::new());

        // Nested writes, as a Bulk request's: a failure undoes only its own part, whether
        // anything was written before it or not.
        let (result, commit) = alone(&writer, |conn| {
            assert!(in_savepoint(conn, |conn| insert(conn, 7).and_then(|_| insert(conn, 7))).is_err());
            in_savepoint(conn, |conn| insert(conn, 8))?;
            assert!(in_savepoint(conn, |conn| insert(conn, 9).and_then(|_| insert(conn, 8))).is_err());
            in_savepoint(conn, |conn| insert(conn, 10))
        });
        result.unwrap();
        commit.unwrap();
        assert_eq!(stored(&url), vec![8, 10]);

        // Writes of the job itself before a nested failure stay.
        let (result, commit) = alone(&writer, |conn| {
            insert(conn, 20)?;
            assert!(in_savepoint(conn, |conn| insert(conn, 21).and_then(|_| insert(conn, 21))).is_err());
            Ok(())
        });
        result.unwrap();
        commit.unwrap();
        assert_eq!(stored(&url), vec![8, 10, 20]);
        drop(writer);
        let _ = std::fs::remove_dir_all(folder);
    }

    #[test]
    fn the_writer_reports_when_its_thread_has_ended() {
        let folder = std::env::temp_dir().join(format!("roster_writer_{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&folder).unwrap();
        let url = DatabaseUrl::parse(folder.join("roster.db").to_str().unwrap()).unwrap();
        let writer = Writer::start(&url).unwrap();
        assert!(writer.is_alive());
        writer.submit(Box::new(|_| Box::new(Undeliverable) as Box<dyn Pending>)).unwrap();
        // The thread's end is what is awaited: the bound only keeps a broken build from hanging.
        let deadline = Instant::now() + std::time::Duration::from_secs(30);
        while writer.is_alive() && Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(!writer.is_alive());
        let _ = std::fs::remove_dir_all(folder);
    }
}
