//! The pool of connections and how work runs on it: off the async workers, within a tenant's
//! share, and (SQLite writes) through the group-commit writer.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::r2d2;
use tracing::Instrument;

use super::connection::{plans_once, DbConnection, DbError};
use super::dialect::Backend;
use super::migrate::{migrate, Opened};
use super::url::DatabaseUrl;
use super::{scrub, share, writer};

/// A write's result, sent to its request once the batch it belongs to has committed.
struct Reply<T, E> {
    reply: tokio::sync::oneshot::Sender<Result<T, E>>,
    result: Result<T, E>,
    /// Its lifecycle transitions, counted when it commits.
    held: crate::metrics::Held,
}

impl<T: Send, E: From<DbError> + Send> writer::Pending for Reply<T, E> {
    fn finish(self: Box<Self>, commit: Result<(), String>) {
        let result = match (commit, self.result) {
            (Ok(()), Ok(value)) => {
                self.held.count();
                Ok(value)
            }
            // A failed write rolled back its own savepoint; its own error says more than a
            // failed commit would.
            (_, Err(e)) => Err(e),
            (Err(reason), Ok(_)) => Err(E::from(DbError::Commit(reason))),
        };
        let _ = self.reply.send(result);
    }
}

/// A write that may run again (see [`writer::Replayable`]), with the result of its last run.
struct Again<F, T, E> {
    work: F,
    /// The result of its last run, and the lifecycle transitions that run made.
    result: Option<(Result<T, E>, crate::metrics::Held)>,
    reply: tokio::sync::oneshot::Sender<Result<T, E>>,
}

impl<F, T, E> writer::Replayable for Again<F, T, E>
where
    F: FnMut(&mut DbConnection) -> Result<T, E> + Send,
    T: Send,
    E: From<DbError> + From<diesel::result::Error> + Send,
{
    fn run(&mut self, conn: &mut DbConnection) {
        // A run again replaces the first run's transitions: they were rolled back.
        self.result = Some(crate::metrics::holding(|| writer::in_savepoint(conn, &mut self.work)));
    }

    fn finish(self: Box<Self>, commit: Result<(), String>) {
        let Some((result, held)) = self.result else { return };
        writer::Pending::finish(Box::new(Reply { reply: self.reply, result, held }), commit);
    }
}

/// Makes pool connections on the backend the URL names; on PostgreSQL with the statement time
/// limit in milliseconds (0: none) that the database was given.
pub struct Manager(DatabaseUrl, Arc<AtomicU64>);

impl r2d2::ManageConnection for Manager {
    type Connection = DbConnection;
    type Error = DbError;

    fn connect(&self) -> Result<DbConnection, DbError> {
        let mut conn = self.0.establish()?;
        let limit = self.1.load(Ordering::Relaxed);
        if let (DbConnection::Postgresql(pg), true) = (&mut conn, limit > 0) {
            // Every statement on a pooled connection, requests' and the sweep's alike (the sweep
            // works in bounded steps); migrations run on a connection of their own.
            pg.batch_execute(&format!("SET statement_timeout = {limit}"))?;
        }
        Ok(conn)
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), DbError> {
        conn.batch_execute("SELECT 1").map_err(DbError::from)
    }

    fn has_broken(&self, _conn: &mut DbConnection) -> bool {
        false
    }
}

/// The backend as OpenTelemetry's `db.system` attribute names it.
fn system(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgresql",
    }
}

#[derive(Clone)]
pub struct Database {
    pool: r2d2::Pool<Manager>,
    url: DatabaseUrl,
    /// SQLite has one writer at a time: this process's writes go through one thread that
    /// commits them in groups (see [`writer`]), rather than polling the database lock with
    /// SQLite's busy handler, whose back-off sleeps (up to 100 ms a try) would set the tail
    /// latency of every write.
    writer: Option<writer::Writer>,
    /// PostgreSQL's scrubber of removed personal data (see [`scrub`]).
    vacuum: Option<scrub::Vacuum>,
    /// Milliseconds a request's database work may run; 0: no limit. See [`share`].
    statement_timeout_ms: Arc<AtomicU64>,
}

impl Database {
    /// Connects, applies pending migrations and builds the pool. The first connection is made
    /// directly so that an unreachable database reports its real reason at once.
    pub fn open(url: &str, pool_size: u32, timeout: Duration) -> Result<(Database, Opened), DbError> {
        // The URL is not repeated: unparsed, its password cannot be told apart.
        let url =
            DatabaseUrl::parse(url).map_err(|reason| DbError::Connect { url: "(as configured)".to_owned(), reason })?;
        let mut first = url.establish()?;
        if let DbConnection::Sqlite(sqlite) = &mut first {
            if !plans_once(sqlite) {
                tracing::warn!(
                    "this SQLite was built without SQLITE_ENABLE_QPSG (see .cargo/config.toml): \
                     kept statements are re-planned on every run, and reads are slower"
                );
            }
        }
        let opened = migrate(&mut first)?;
        let statement_timeout_ms = Arc::new(AtomicU64::new(0));
        let pool = r2d2::Pool::builder()
            .max_size(pool_size.max(1))
            // No connections opened in the background: a short-lived CLI command could otherwise
            // exit while a pool thread is inside libpq, which crashes the process at exit.
            .min_idle(Some(0))
            .connection_timeout(timeout)
            .test_on_check_out(false)
            .error_handler(Box::new(r2d2::LoggingErrorHandler))
            .build_unchecked(Manager(url.clone(), statement_timeout_ms.clone()));
        drop(first);
        let (writer, vacuum) = match url.backend {
            Backend::Sqlite => (Some(writer::Writer::start(&url)?), None),
            Backend::Postgres => {
                (None, Some(scrub::Vacuum::start(url.clone()).map_err(|e| DbError::Blocking(e.to_string()))?))
            }
        };
        Ok((Database { pool, url, writer, vacuum, statement_timeout_ms }, opened))
    }

    /// Stops a request's database work that runs longer than `limit` (zero: no limit): on
    /// PostgreSQL every statement of a pooled connection opened from now on, by
    /// `statement_timeout`; on SQLite the whole of a request's [`Database::run`], by the
    /// progress handler. Call before the pool opens its first connection.
    pub fn limit_statements(&self, limit: Duration) {
        self.statement_timeout_ms.store(limit.as_millis().min(u64::MAX as u128) as u64, Ordering::Relaxed);
    }

    pub fn backend(&self) -> Backend {
        self.url.backend
    }

    pub fn redacted_url(&self) -> String {
        self.url.redacted()
    }

    /// The SQLite database's file; none on PostgreSQL or for an in-memory database.
    pub fn sqlite_file(&self) -> Option<std::path::PathBuf> {
        self.url.sqlite_file()
    }

    /// Whether the SQLite group-commit writer still takes writes; none on PostgreSQL.
    pub fn writer_alive(&self) -> Option<bool> {
        self.writer.as_ref().map(writer::Writer::is_alive)
    }

    /// Bytes in the SQLite write-ahead log file now; none on PostgreSQL or without a WAL file.
    pub fn wal_bytes(&self) -> Option<u64> {
        let mut wal = self.sqlite_file()?.into_os_string();
        wal.push("-wal");
        std::fs::metadata(wal).ok().map(|m| m.len())
    }

    pub fn pool_state(&self) -> (u32, u32, u32) {
        let state = self.pool.state();
        (self.pool.max_size(), state.connections, state.idle_connections)
    }

    pub fn conn(&self) -> Result<r2d2::PooledConnection<Manager>, DbError> {
        self.pool.get().map_err(|e| DbError::PoolTimeout(e.to_string()))
    }

    /// Runs blocking database work off the async workers.
    pub async fn run<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let db = self.clone();
        let span = tracing::debug_span!("db.run", db.system = system(db.url.backend));
        // The pool timeout counts from when the request asked, including any wait for its
        // tenant's share and for a blocking thread, so an overloaded server answers 503 in time
        // instead of queueing.
        let asked = std::time::Instant::now();
        let timeout = db.pool.connection_timeout();
        let share = share::current();
        let place = match &share {
            Some(share) => Some(
                tokio::time::timeout(timeout, share.clone().acquire_owned())
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .ok_or_else(|| {
                        E::from(DbError::PoolTimeout(
                            "this tenant's share of the database connections stayed in use for the whole pool \
                             timeout"
                                .into(),
                        ))
                    })?,
            ),
            None => None,
        };
        let limit = db.statement_timeout_ms.load(Ordering::Relaxed);
        let sqlite_limit =
            (share.is_some() && limit > 0 && db.url.backend == Backend::Sqlite).then(|| Duration::from_millis(limit));
        actix_web::web::block(move || {
            let _span = span.entered();
            // Held until the work is done, even when the request has gone meanwhile.
            let _place = place;
            let left = timeout.saturating_sub(asked.elapsed());
            if left.is_zero() {
                return Err(E::from(DbError::PoolTimeout(
                    "the request waited the whole pool timeout for a thread".into(),
                )));
            }
            let mut conn = match db.pool.try_get() {
                Some(conn) => conn,
                None => {
                    let waited = std::time::Instant::now();
                    let conn = db.pool.get_timeout(left).map_err(|e| DbError::PoolTimeout(e.to_string()));
                    crate::metrics::pool_wait(waited.elapsed());
                    conn?
                }
            };
            let deadline = sqlite_limit.map(|limit| std::time::Instant::now() + limit);
            scrub::take();
            // A write's transitions count once its work has returned, its transaction committed.
            let (result, held) = crate::metrics::holding(|| share::with_deadline(deadline, || work(&mut conn)));
            if result.is_ok() {
                held.count();
            }
            if scrub::take() {
                match &db.vacuum {
                    Some(vacuum) => vacuum.request(),
                    // SQLite work outside the writer (the sweep's): checkpoint on its connection.
                    None => scrub::on(&mut conn),
                }
            }
            result
        })
        .await
        .map_err(|e| E::from(DbError::Blocking(e.to_string())))?
    }

    /// Runs a read that takes microseconds — one row by a unique key, an indexed lookup — on
    /// the calling thread when SQLite has a connection idle in the pool, sparing the hand-off to
    /// a blocking thread and back, which costs more than such a read. Anything else (PostgreSQL,
    /// whose round trip would hold the thread; no idle connection, whose wait would too) goes
    /// through [`Database::run`]. Never for reads whose cost grows with the data.
    pub async fn run_short<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        if self.url.backend == Backend::Sqlite {
            if let Some(mut conn) = self.pool.try_get() {
                return work(&mut conn);
            }
        }
        self.run(work).await
    }

    /// [`Database::write`] of work that may run again from the start: on SQLite it then needs
    /// no savepoint of its own in its batch (see [`writer::Replayable`]). `work` must depend on
    /// nothing but the database and what it holds.
    pub async fn write_replayable<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnMut(&mut DbConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + From<diesel::result::Error> + Send + 'static,
    {
        self.to_writer(work, |writer, work, reply| {
            writer.submit_replayable(Box::new(Again { work, result: None, reply }))
        })
        .await
    }

    /// Runs work that writes (and opens its own transaction): on PostgreSQL like
    /// [`Database::run`], as concurrent commits already share WAL flushes there; on SQLite
    /// through the group-commit writer, inside a savepoint of its batch. Either way the result
    /// comes back only once the write is durable.
    pub async fn write<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + From<diesel::result::Error> + Send + 'static,
    {
        self.to_writer(work, |writer, work, reply| {
            writer.submit(Box::new(move |conn| {
                let (result, held) = crate::metrics::holding(|| writer::in_savepoint(conn, work));
                Box::new(Reply { reply, result, held }) as Box<dyn writer::Pending>
            }))
        })
        .await
    }

    /// A write of [`Database::write`] or [`Database::write_replayable`]: with the SQLite writer,
    /// `submit` queues `work` with the channel its result comes back on once durable; without
    /// it (PostgreSQL), `work` runs as [`Database::run`] does.
    async fn to_writer<T, E, F>(
        &self,
        work: F,
        submit: impl FnOnce(&writer::Writer, F, tokio::sync::oneshot::Sender<Result<T, E>>) -> Result<(), DbError>,
    ) -> Result<T, E>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + From<diesel::result::Error> + Send + 'static,
    {
        let span = tracing::debug_span!("db.write", db.system = system(self.url.backend));
        let Some(writer) = &self.writer else {
            return self.run(work).instrument(span).await;
        };
        let (reply, answer) = tokio::sync::oneshot::channel::<Result<T, E>>();
        submit(writer, work, reply)?;
        // A closed channel: the writer stopped, or the batch failed to begin, before the reply.
        let answer = answer.instrument(span).await;
        answer.unwrap_or_else(|_| Err(E::from(DbError::Blocking("the write was not applied".into()))))
    }
}

#[cfg(test)]
mod tests {
    use metrics_exporter_prometheus::PrometheusBuilder;
    use writer::{Pending, Replayable};

    use super::*;

    /// The transitions a write of the SQLite writer made count once, when its batch commits:
    /// not for a first run its batch undid to run it again, nor when the batch fails to commit.
    #[test]
    fn a_write_counts_its_transitions_once_and_only_when_its_batch_commits() {
        let folder = std::env::temp_dir().join(format!("roster_pool_{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&folder).unwrap();
        let url = DatabaseUrl::parse(folder.join("roster.db").to_str().unwrap()).unwrap();
        let mut conn = url.establish().unwrap();
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let counted = || {
            let series = "roster_lifecycle_transitions_total{kind=\"deactivate\"} ";
            handle.render().lines().find_map(|l| l.strip_prefix(series).map(|n| n.parse::<u64>().unwrap())).unwrap_or(0)
        };
        let deactivate = |_: &mut DbConnection| {
            crate::metrics::lifecycle_transition("deactivate");
            Ok::<_, DbError>(())
        };
        metrics::with_local_recorder(&recorder, || {
            // Run, run again, committed.
            let (reply, answer) = tokio::sync::oneshot::channel();
            let mut write = Box::new(Again { work: deactivate, result: None, reply });
            write.run(&mut conn);
            write.run(&mut conn);
            assert_eq!(counted(), 0, "nothing before the commit");
            Replayable::finish(write, Ok(()));
            assert_eq!(counted(), 1);
            assert!(matches!(answer.blocking_recv(), Ok(Ok(()))));

            // Its batch failed to commit.
            let (reply, answer) = tokio::sync::oneshot::channel();
            let mut write = Box::new(Again { work: deactivate, result: None, reply });
            write.run(&mut conn);
            Replayable::finish(write, Err("the commit failed".into()));
            assert!(matches!(answer.blocking_recv(), Ok(Err(DbError::Commit(_)))));

            // A write that runs once: committed, and then one whose batch failed.
            for (commit, total) in [(Ok(()), 2), (Err("the commit failed".to_owned()), 2)] {
                let (reply, _answer) = tokio::sync::oneshot::channel::<Result<(), DbError>>();
                let (result, held) = crate::metrics::holding(|| writer::in_savepoint(&mut conn, deactivate));
                Pending::finish(Box::new(Reply { reply, result, held }), commit);
                assert_eq!(counted(), total);
            }
        });
        drop(conn);
        let _ = std::fs::remove_dir_all(folder);
    }
}
