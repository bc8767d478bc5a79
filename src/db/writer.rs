//! Group commit for SQLite: one thread owns a write connection and applies the writes that
//! arrive while the previous commit was syncing as one transaction, each write in a savepoint
//! of its own. One fsync then makes a whole batch durable, so concurrent writes share commits
//! instead of paying one each, and every write is still acknowledged only after it is on disk
//! (`synchronous = FULL`).

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
    let mut pending = Vec::with_capacity(batch.len());
    let mut panicked = false;
    for job in batch {
        match catch_unwind(AssertUnwindSafe(|| job(conn))) {
            Ok(p) => pending.push(p),
            Err(_) => panicked = true,
        }
    }
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
