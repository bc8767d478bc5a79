//! Group commit for SQLite: one thread owns a write connection and applies the writes that
//! arrive while the previous commit was syncing as one transaction, each write in a savepoint
//! of its own. One fsync then makes a whole batch durable, so concurrent writes share commits
//! instead of paying one each, and every write is still acknowledged only after it is on disk
//! (`synchronous = FULL`). A write alone in its batch needs no savepoint: the transaction
//! undoes it (see [`in_savepoint`]), which spares SQLite copying every page it changes. Nor does
//! a write that can run again ([`Replayable`]): should one fail after writing beside others, the
//! batch is rolled back and runs again, each write in a savepoint ([`run_batch`]).

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

/// A write that can run again from the start, which spares it a savepoint even when its batch
/// holds other writes: should one of the batch's writes fail after it wrote something, the
/// batch's transaction is rolled back and every write of it runs again, each in a savepoint of
/// its own (see [`run_batch`]). Its work must depend on nothing but the database and what it
/// holds, so that running it again does what the first run would have done.
pub trait Replayable: Send {
    /// Runs the write in the writer's transaction and keeps its result, in place of any earlier
    /// run's.
    fn run(&mut self, conn: &mut DbConnection);
    /// Delivers the kept result, or the commit's failure, to the waiting request.
    fn finish(self: Box<Self>, commit: Result<(), String>);
}

/// A write in the writer's queue.
enum Queued {
    Once(Job),
    Again(Box<dyn Replayable>),
}

impl Queued {
    /// Runs the write: a [`Job`] is consumed, a [`Replayable`] kept for a possible replay.
    fn run(self, conn: &mut DbConnection) -> Ran {
        match self {
            Queued::Once(job) => Ran::Once(job(conn)),
            Queued::Again(mut write) => {
                write.run(conn);
                Ran::Again(write)
            }
        }
    }
}

/// A write that has run, waiting for its batch to commit.
enum Ran {
    Once(Box<dyn Pending>),
    Again(Box<dyn Replayable>),
}

impl Ran {
    /// The write, to run again. Only a [`Replayable`] runs bare after other writes, so only one
    /// can have its batch run again.
    fn again(self) -> Queued {
        match self {
            Ran::Again(write) => Queued::Again(write),
            Ran::Once(_) => unreachable!("a write that runs once runs bare only as its batch's first"),
        }
    }

    fn finish(self, commit: Result<(), String>) {
        match self {
            Ran::Once(pending) => pending.finish(commit),
            Ran::Again(write) => write.finish(commit),
        }
    }
}

#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::Sender<Queued>,
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
        let (jobs, queue) = mpsc::channel::<Queued>();
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
        self.queue(Queued::Once(job))
    }

    /// Queues a write that may run again (see [`Replayable`]).
    pub fn submit_replayable(&self, write: Box<dyn Replayable>) -> Result<(), DbError> {
        self.queue(Queued::Again(write))
    }

    fn queue(&self, write: Queued) -> Result<(), DbError> {
        self.jobs.send(write).map_err(|_| DbError::Blocking("the SQLite writer has stopped".into()))
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

    /// Whether the write running on the writer runs without a savepoint, and what it has
    /// written (see [`Bare`]).
    static BARE: Cell<Bare> = const { Cell::new(Bare::No) };

    /// Set when a write that ran without a savepoint after other writes of its batch failed
    /// having written something: only rolling back the whole batch undoes it, so the batch runs
    /// again with savepoints (see [`run_batch`]).
    static REPLAY: Cell<bool> = const { Cell::new(false) };
}

/// A write on the writer without a savepoint: a write alone in its batch, or a [`Replayable`]
/// one. While it has written nothing, a failure needs no savepoint to be undone. When it fails
/// after writing, the first write of a batch is undone by rolling the transaction back and
/// beginning it again, exactly as a savepoint would have undone it; a later one (`after_others`)
/// has the batch run again ([`REPLAY`]).
#[derive(Clone, Copy)]
enum Bare {
    /// Writes take savepoints.
    No,
    /// The write has just begun: nothing written by it yet.
    Begun { after_others: bool },
    /// The write began at this `total_changes()` of the connection; it has written nothing while
    /// the count has not moved.
    Since { began: i64, after_others: bool },
}

#[diesel::declare_sql_function]
extern "SQL" {
    /// Rows the connection's INSERT, UPDATE and DELETE statements have changed since it opened.
    fn total_changes() -> diesel::sql_types::BigInt;
}

fn changes(conn: &mut diesel::SqliteConnection) -> diesel::QueryResult<i64> {
    use diesel::RunQueryDsl;
    diesel::select(total_changes()).get_result(conn)
}

/// Whether the running write runs without a savepoint and has written nothing yet (see
/// [`BARE`]); asks the connection, and remembers its first answer.
fn nothing_written_bare(conn: &mut diesel::SqliteConnection) -> diesel::QueryResult<bool> {
    let bare = BARE.get();
    if matches!(bare, Bare::No) {
        return Ok(false);
    }
    let now = changes(conn)?;
    match bare {
        Bare::Since { began, .. } => Ok(began == now),
        Bare::Begun { after_others } => {
            BARE.set(Bare::Since { began: now, after_others });
            Ok(true)
        }
        Bare::No => unreachable!("returned above"),
    }
}

/// Undoes what a failed write without a savepoint wrote, which it began to write with nothing
/// of its own written before. After other writes of its batch, when it wrote anything, the
/// batch is marked to run again ([`REPLAY`]); as its batch's first write, the transaction is
/// rolled back and begun again. Should either fail, the transaction is marked as not to be
/// committed.
fn undo_bare(conn: &mut diesel::SqliteConnection) {
    if let Bare::Since { began, after_others: true } = BARE.get() {
        if !matches!(changes(conn), Ok(now) if now == began) {
            REPLAY.set(true);
        }
        return;
    }
    let again = AnsiTransactionManager::rollback_transaction(conn)
        .and_then(|_| AnsiTransactionManager::begin_transaction_sql(conn, "BEGIN IMMEDIATE"));
    BARE.set(Bare::Begun { after_others: false });
    if let Err(e) = again {
        tracing::error!(error = %e, "a failed write could not be undone; nothing of its batch will be stored");
        UNDO_FAILED.with(|failed| failed.set(true));
        BARE.set(Bare::No);
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
/// While the write runs bare (alone in its batch, or [`Replayable`]; see [`Bare`]) and has
/// written nothing yet, no savepoint is opened: a failure rolls the transaction back and begins it
/// again (the batch's first write), which undoes exactly what a savepoint would have, or has the
/// batch run again with savepoints (a later one). A savepoint costs more than its two statements: SQLite
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
    // Without a savepoint, with nothing written yet: the transaction, or running the batch
    // again, undoes a failure. A SQLite savepoint copies every page a write changes into a
    // journal, to undo that write alone.
    if nothing_written_bare(sqlite(conn))? {
        let result = work(conn);
        if result.is_err() {
            undo_bare(sqlite(conn));
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

fn run_batch(conn: &mut DbConnection, batch: Vec<Queued>) {
    let DbConnection::Sqlite(sqlite) = conn else { unreachable!("the writer serves SQLite only") };
    if let Err(e) = AnsiTransactionManager::begin_transaction_sql(sqlite, "BEGIN IMMEDIATE") {
        // The jobs never ran. Dropping them closes their reply channels, so each request gets
        // an error and none is acknowledged.
        tracing::error!(error = %e, "the SQLite writer could not begin a transaction");
        drop(batch);
        return;
    }
    take_undo_failure();
    // A write alone needs no savepoint of its own, nor do writes that can run again (see
    // `in_savepoint` and `Replayable`).
    let bare = batch.len() == 1 || batch.iter().all(|write| matches!(write, Queued::Again(_)));
    let (mut ran, mut panicked, left) = run_writes(conn, batch, bare);
    if let Some(left) = left {
        // A write failed after writing, beside others: the batch again, each in a savepoint.
        let again: Vec<Queued> = ran.into_iter().map(Ran::again).chain(left).collect();
        let DbConnection::Sqlite(sqlite) = conn else { unreachable!() };
        let restarted = AnsiTransactionManager::rollback_transaction(sqlite)
            .and_then(|_| AnsiTransactionManager::begin_transaction_sql(sqlite, "BEGIN IMMEDIATE"));
        match restarted {
            Ok(()) => {
                // Whatever a first run could not undo was rolled back with it.
                take_undo_failure();
                (ran, panicked, _) = run_writes(conn, again, false);
            }
            Err(e) => {
                tracing::error!(error = %e, "the SQLite writer could not begin its batch again");
                drop(again);
                return;
            }
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
    for write in ran {
        write.finish(commit.clone());
    }
}

/// Runs `writes` in the writer's open transaction, without savepoints when `bare`. Returns what
/// ran, whether any write panicked, and, when a bare write failed after writing beside others
/// (see [`Bare`]), the writes not yet run: the batch must then run again.
fn run_writes(conn: &mut DbConnection, writes: Vec<Queued>, bare: bool) -> (Vec<Ran>, bool, Option<Vec<Queued>>) {
    let mut ran = Vec::with_capacity(writes.len());
    let mut panicked = false;
    let mut writes = writes.into_iter();
    REPLAY.set(false);
    while let Some(write) = writes.next() {
        let after_others = !ran.is_empty() || panicked;
        BARE.set(if bare { Bare::Begun { after_others } } else { Bare::No });
        match catch_unwind(AssertUnwindSafe(|| write.run(conn))) {
            Ok(done) => ran.push(done),
            Err(_) => panicked = true,
        }
        // After a panic nothing commits, so nothing needs to run again.
        if REPLAY.replace(false) && !panicked {
            BARE.set(Bare::No);
            return (ran, panicked, Some(writes.collect()));
        }
    }
    BARE.set(Bare::No);
    (ran, panicked, None)
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

    /// A writer on a new database in a folder of its own, with a table `t` of unique numbers.
    fn writer_with_table() -> (std::path::PathBuf, DatabaseUrl, Writer) {
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
        (folder, url, writer)
    }

    /// A write alone in its batch runs without a savepoint (the transaction undoes it); what
    /// it undoes must still be exactly what a savepoint would have undone.
    #[test]
    fn a_write_alone_in_its_batch_is_undone_exactly_as_a_savepoint_would() {
        let (folder, url, writer) = writer_with_table();

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

    /// A replayable write for the tests: runs `work`, counts its runs, and hands its result and
    /// its batch's commit back.
    struct Again<F> {
        work: F,
        runs: Arc<std::sync::atomic::AtomicUsize>,
        result: Option<Result<(), String>>,
        sent: mpsc::Sender<(Result<(), String>, Result<(), String>)>,
    }

    impl<F: FnMut(&mut DbConnection) -> Result<(), diesel::result::Error> + Send> Replayable for Again<F> {
        fn run(&mut self, conn: &mut DbConnection) {
            self.runs.fetch_add(1, Ordering::Relaxed);
            self.result = Some(in_savepoint(conn, &mut self.work).map_err(|e| e.to_string()));
        }

        fn finish(self: Box<Self>, commit: Result<(), String>) {
            let _ = self.sent.send((self.result.expect("it ran"), commit));
        }
    }

    /// Holds the writer's thread until the returned sender is dropped, so that what is submitted
    /// meanwhile makes one batch.
    fn hold(writer: &Writer) -> mpsc::Sender<()> {
        let (release, held) = mpsc::channel::<()>();
        let (started, running) = mpsc::channel::<()>();
        writer
            .submit(Box::new(move |_| {
                let _ = started.send(());
                let _ = held.recv();
                Box::new(Sent(mpsc::channel().0, Ok(()))) as Box<dyn Pending>
            }))
            .unwrap();
        running.recv().unwrap();
        release
    }

    /// Replayable writes of one batch run without savepoints. When one fails after writing
    /// beside others, the batch runs again, each write in a savepoint: the others' writes stay,
    /// the failed one's are undone, and each request gets its own write's result.
    #[test]
    fn a_batch_of_replayable_writes_runs_again_when_one_fails_after_writing() {
        let (folder, url, writer) = writer_with_table();

        type Work = Box<dyn FnMut(&mut DbConnection) -> Result<(), diesel::result::Error> + Send>;
        let batch = |works: Vec<Work>| {
            let release = hold(&writer);
            let mut answers = Vec::new();
            let mut runs = Vec::new();
            for work in works {
                let (sent, received) = mpsc::channel();
                let counted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
                writer.submit_replayable(Box::new(Again { work, runs: counted.clone(), result: None, sent })).unwrap();
                answers.push(received);
                runs.push(counted);
            }
            drop(release);
            let answers: Vec<_> = answers.into_iter().map(|a| a.recv().unwrap()).collect();
            let runs: Vec<usize> = runs.iter().map(|r| r.load(Ordering::Relaxed)).collect();
            (answers, runs)
        };

        // All succeed: one run each, no savepoint needed.
        let (answers, runs) = batch(vec![
            Box::new(|conn| insert(conn, 1)),
            Box::new(|conn| insert(conn, 2)),
            Box::new(|conn| insert(conn, 3)),
        ]);
        assert!(answers.iter().all(|(result, commit)| result.is_ok() && commit.is_ok()), "{answers:?}");
        assert_eq!(runs, vec![1, 1, 1]);
        assert_eq!(stored(&url), vec![1, 2, 3]);

        // The second fails before writing anything (its first insert breaks the unique key):
        // nothing to undo, nothing runs again.
        let (answers, runs) = batch(vec![
            Box::new(|conn| insert(conn, 4)),
            Box::new(|conn| insert(conn, 1).and_then(|_| insert(conn, 5))),
            Box::new(|conn| insert(conn, 6)),
        ]);
        assert!(answers[0].0.is_ok() && answers[1].0.is_err() && answers[2].0.is_ok(), "{answers:?}");
        assert!(answers.iter().all(|(_, commit)| commit.is_ok()));
        assert_eq!(runs, vec![1, 1, 1]);
        assert_eq!(stored(&url), vec![1, 2, 3, 4, 6]);

        // The second fails after writing 8: the batch runs again in savepoints, and 8 is gone
        // while the writes before and after it stay. The write after it ran only in the replay.
        let (answers, runs) = batch(vec![
            Box::new(|conn| insert(conn, 7)),
            Box::new(|conn| insert(conn, 8).and_then(|_| insert(conn, 7))),
            Box::new(|conn| insert(conn, 9)),
        ]);
        assert!(answers[0].0.is_ok() && answers[1].0.is_err() && answers[2].0.is_ok(), "{answers:?}");
        assert!(answers.iter().all(|(_, commit)| commit.is_ok()));
        assert_eq!(runs, vec![2, 2, 1]);
        assert_eq!(stored(&url), vec![1, 2, 3, 4, 6, 7, 9]);

        // The first fails after writing: as a batch's first write it is undone by beginning the
        // transaction again, and nothing runs twice.
        let (answers, runs) = batch(vec![
            Box::new(|conn| insert(conn, 10).and_then(|_| insert(conn, 1))),
            Box::new(|conn| insert(conn, 11)),
        ]);
        assert!(answers[0].0.is_err() && answers[1].0.is_ok(), "{answers:?}");
        assert_eq!(runs, vec![1, 1]);
        assert_eq!(stored(&url), vec![1, 2, 3, 4, 6, 7, 9, 11]);
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
