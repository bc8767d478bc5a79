//! Storage: one Diesel code path over SQLite (the embedded default) and PostgreSQL.
//!
//! The backend is chosen from the URL scheme here rather than by `MultiConnection::establish`,
//! which tries each backend in turn and reports only the last failure.

/// Orders a boxed listing query: by the sort key (missing keys last, on both backends) and then
/// the row key, or by the row key alone; walked backwards when `$reverse` (previous pages).
macro_rules! keyset_order {
    ($query:expr, $pk:expr, $order:expr, $reverse:expr) => {{
        use diesel::sql_types::{Bool, Text};
        let (query, order, reverse) = ($query, $order, $reverse);
        let descending = order.descending != reverse;
        match &order.key {
            None if descending => query.order($pk.desc()),
            None => query.order($pk.asc()),
            Some(key) => {
                let missing = diesel::dsl::sql::<Bool>(&format!("({key} IS NULL)"));
                let query = if reverse { query.order(missing.desc()) } else { query.order(missing.asc()) };
                let key = diesel::dsl::sql::<Text>(key);
                let query = if descending { query.then_order_by(key.desc()) } else { query.then_order_by(key.asc()) };
                if reverse {
                    query.then_order_by($pk.desc())
                } else {
                    query.then_order_by($pk.asc())
                }
            }
        }
    }};
}

/// Implements [`crate::listing::Store`] for a resource table: counting (all of a tenant's rows from
/// the `resource_counts` the triggers keep, filtered ones by a query), and paging in any order.
/// A page past the start first finds its rows' keys (an index walk over the skipped rows) and
/// then reads just those rows, so a deep `startIndex` does not read every row it skips.
macro_rules! resource_store {
    ($store:ident, $row:ty, $table:ident, $resource_type:literal, |$r:ident| $pk_of:expr) => {
        pub struct $store;

        impl crate::listing::Store for $store {
            type Row = $row;

            fn count(conn: &mut DbConnection, tenant_id: &str, filter: Option<&Sql>) -> QueryResult<i64> {
                let Some(filter) = filter else {
                    return crate::db::tenants::resource_count(conn, tenant_id, $resource_type);
                };
                on_backend!(conn, c => $table::table
                    .filter($table::tenant_id.eq(tenant_id))
                    .filter(filter.clone())
                    .select(diesel::dsl::count_star())
                    .first(c))
            }

            fn page(
                conn: &mut DbConnection,
                tenant_id: &str,
                filter: Option<&Sql>,
                keyset: Option<&Sql>,
                order: &Order,
                reverse: bool,
                offset: i64,
                limit: i64,
            ) -> QueryResult<Vec<($row, Option<String>)>> {
                use diesel::sql_types::{Nullable, Text};
                // Without a sort key the selected key is a constant NULL: the statement's text
                // is then fixed and may be kept prepared.
                let key = crate::db::sql::Known::<Nullable<Text>>::new(
                    order.key.clone().unwrap_or_else(|| "NULL".to_owned()),
                    order.key.is_none(),
                );
                // Each statement runs on the backend's own connection (see `on_backend!`): a
                // boxed query's text is rendered to find its prepared statement either way,
                // but not twice more as the wrapper would.
                if offset == 0 {
                    return on_backend!(conn, c => {
                        let mut query = $table::table
                            .select((<$row>::as_select(), key.clone()))
                            .filter($table::tenant_id.eq(tenant_id))
                            .into_boxed();
                        for condition in [filter, keyset].into_iter().flatten() {
                            query = query.filter(condition.clone());
                        }
                        keyset_order!(query, $table::pk, order, reverse).limit(limit).load(c)
                    });
                }
                let keys: Vec<(i64, Option<String>)> = on_backend!(conn, c => {
                    let mut keys = $table::table
                        .select(($table::pk, key.clone()))
                        .filter($table::tenant_id.eq(tenant_id))
                        .into_boxed();
                    for condition in [filter, keyset].into_iter().flatten() {
                        keys = keys.filter(condition.clone());
                    }
                    keyset_order!(keys, $table::pk, order, reverse).offset(offset).limit(limit).load(c)
                })?;
                let pks: Vec<i64> = keys.iter().map(|(pk, _)| *pk).collect();
                let rows: Vec<$row> = on_backend!(conn, c => $table::table
                    .filter($table::pk.eq_any(&pks))
                    .select(<$row>::as_select())
                    .load::<$row>(c))?;
                let mut rows: std::collections::HashMap<i64, $row> = rows
                    .into_iter()
                    .map(|row| (<$store as crate::listing::Store>::pk(&row), row))
                    .collect();
                Ok(keys.into_iter().filter_map(|(pk, key)| rows.remove(&pk).map(|row| (row, key))).collect())
            }

            fn pk($r: &$row) -> i64 {
                $pk_of
            }
        }
    };
}

/// Runs a statement on the backend's own connection rather than through [`DbConnection`],
/// whose wrapper renders the statement's SQL text on every execution, twice, even when the
/// statement is already prepared. For hot statements with a fixed text (a static query id),
/// which the backend's connection then finds in its cache by type alone. `$body` is compiled
/// once per backend.
macro_rules! on_backend {
    ($conn:expr, $c:ident => $body:expr) => {
        match $conn {
            $crate::db::DbConnection::Sqlite($c) => $body,
            $crate::db::DbConnection::Postgresql($c) => $body,
        }
    };
}

pub mod content;
pub mod groups;
pub mod query;
pub mod records;
pub mod schema;
pub mod sessions;
pub mod settings;
pub mod share;
pub mod sql;
pub mod tenants;
pub mod tokens;
pub mod users;
mod writer;

/// A write's result, sent to its request once the batch it belongs to has committed.
struct Reply<T, E> {
    reply: tokio::sync::oneshot::Sender<Result<T, E>>,
    result: Result<T, E>,
}

impl<T: Send, E: From<DbError> + Send> writer::Pending for Reply<T, E> {
    fn finish(self: Box<Self>, commit: Result<(), String>) {
        let result = match (commit, self.result) {
            (Ok(()), result) => result,
            // A failed write rolled back its own savepoint; its own error says more.
            (Err(_), Err(e)) => Err(e),
            (Err(reason), Ok(_)) => Err(E::from(DbError::Commit(reason))),
        };
        let _ = self.reply.send(result);
    }
}

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::prelude::*;
use diesel::r2d2;
use diesel::{PgConnection, SqliteConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Serialises migrations when several nodes start against one PostgreSQL at once.
const MIGRATION_LOCK_KEY: i64 = 0x526f_7374_6572; // "Roster"

// Folds text the way filters and uniqueness do (NFC, then Unicode lowercase); SQLite's own
// `lower()` only knows ASCII, so Roster registers this on every SQLite connection.
#[diesel::declare_sql_function]
extern "SQL" {
    fn roster_fold(
        input: diesel::sql_types::Nullable<diesel::sql_types::Text>,
    ) -> diesel::sql_types::Nullable<diesel::sql_types::Text>;
}

#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgresql(PgConnection),
    Sqlite(SqliteConnection),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot connect to the database at {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("no database connection became free in time: {0}")]
    PoolTimeout(String),
    #[error("database migration failed: {0}")]
    Migration(String),
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
    #[error("background task failed: {0}")]
    Blocking(String),
    #[error("the transaction could not be committed: {0}")]
    Commit(String),
}

/// Where the database lives, parsed once from the configured URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    pub backend: Backend,
    /// What the driver is given: a PostgreSQL URL, or an SQLite path or `file:` URI.
    target: String,
}

impl DatabaseUrl {
    pub fn parse(url: &str) -> Result<Self, String> {
        let url = url.trim();
        if url.is_empty() {
            return Err("the database URL is empty".into());
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let tls_chosen = std::env::var_os("PGSSLMODE").is_some();
            return Ok(DatabaseUrl { backend: Backend::Postgres, target: without_loopback_tls(url, tls_chosen) });
        }
        let path = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(url);
        if path.contains("://") {
            return Err(format!("unsupported database URL scheme in {url:?}: use postgres://… or an SQLite path"));
        }
        Ok(DatabaseUrl { backend: Backend::Sqlite, target: path.to_owned() })
    }

    /// What the driver connects to: the PostgreSQL URL, or the SQLite path or URI.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The URL without any password, for logs and errors.
    pub fn redacted(&self) -> String {
        match self.backend {
            Backend::Sqlite => self.target.clone(),
            Backend::Postgres => redact_password(&self.target),
        }
    }

    /// One connection outside any pool, set up as the pool's are.
    pub fn establish(&self) -> Result<DbConnection, DbError> {
        let connect_err =
            |e: ConnectionError| DbError::Connect { url: self.redacted(), reason: e.to_string().trim().to_owned() };
        match self.backend {
            Backend::Postgres => {
                PgConnection::establish(&self.target).map(DbConnection::Postgresql).map_err(connect_err)
            }
            Backend::Sqlite => {
                sqlite_without_memory_statistics();
                share::install_progress_handler();
                let mut conn = SqliteConnection::establish(&self.target).map_err(connect_err)?;
                // WAL lets readers run beside the writer; synchronous=FULL keeps a 2xx durable
                // across power loss; the busy timeout queues writers instead of failing them.
                // LIKE is made case-sensitive as on PostgreSQL: filters fold values themselves.
                let setup_err =
                    |e: diesel::result::Error| DbError::Connect { url: self.redacted(), reason: e.to_string() };
                conn.batch_execute(
                    "PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                     PRAGMA foreign_keys = ON; PRAGMA case_sensitive_like = ON;",
                )
                .map_err(setup_err)?;
                roster_fold_utils::register_impl(&mut conn, |input: Option<String>| {
                    input.map(|s| crate::scim::resource::fold(&s))
                })
                .map_err(setup_err)?;
                Ok(DbConnection::Sqlite(conn))
            }
        }
    }
}

/// SQLite keeps process-wide allocation statistics (`sqlite3_memory_used`) under one mutex that
/// every allocation of every connection takes; Roster never reads them, and with a pool of
/// connections on several threads that mutex was a measurable share of each read. Turned off
/// once, before the process opens its first SQLite connection.
fn sqlite_without_memory_statistics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: SQLITE_CONFIG_MEMSTATUS takes one int. Every SQLite connection of this process
        // is opened after this call (it is the first thing `establish` does), so SQLite is not
        // yet initialised; were it initialised, sqlite3_config would return SQLITE_MISUSE and
        // change nothing, which is harmless.
        unsafe {
            libsqlite3_sys::sqlite3_config(libsqlite3_sys::SQLITE_CONFIG_MEMSTATUS, 0 as std::ffi::c_int);
        }
    });
}

/// Whether the bundled SQLite plans a statement once for all bound values (SQLITE_ENABLE_QPSG).
fn plans_once(conn: &mut SqliteConnection) -> bool {
    #[derive(QueryableByName)]
    struct CompileOption {
        #[diesel(sql_type = diesel::sql_types::Text)]
        compile_options: String,
    }
    diesel::sql_query("PRAGMA compile_options")
        .load::<CompileOption>(conn)
        .is_ok_and(|options| options.iter().any(|o| o.compile_options == "ENABLE_QPSG"))
}

/// A PostgreSQL URL whose hosts are all this machine's loopback, and which leaves TLS to libpq's
/// default (`sslmode=prefer`: TLS whenever the server offers it), gets `sslmode=disable`.
/// Encrypting traffic that never leaves the kernel protects nothing, and it cost a sixth of the
/// throughput of reads (measured with roster-bench). An `sslmode` in the URL, `PGSSLMODE` in the
/// environment (`tls_chosen`), or a `host`/`hostaddr` parameter leave the URL as it is.
fn without_loopback_tls(url: &str, tls_chosen: bool) -> String {
    let Some((_, rest)) = url.split_once("://") else { return url.to_owned() };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let hosts = authority.rsplit_once('@').map_or(authority, |(_, hosts)| hosts);
    let query = rest.split_once('?').map_or("", |(_, query)| query);
    let decides_tls = |key: &str| key == "sslmode" || key == "host" || key == "hostaddr";
    let decided = tls_chosen || query.split('&').any(|pair| decides_tls(pair.split('=').next().unwrap_or("")));
    if decided || hosts.is_empty() || !hosts.split(',').all(is_loopback_host) {
        return url.to_owned();
    }
    let separator = if !url.contains('?') {
        "?"
    } else if url.ends_with(['?', '&']) {
        ""
    } else {
        "&"
    };
    format!("{url}{separator}sslmode=disable")
}

/// `localhost`, `127.x.x.x` or `[::1]`, with or without a port.
fn is_loopback_host(host_and_port: &str) -> bool {
    let host = match host_and_port.strip_prefix('[') {
        Some(bracketed) => bracketed.split_once(']').map_or(bracketed, |(address, _)| address),
        None => host_and_port.split_once(':').map_or(host_and_port, |(host, _)| host),
    };
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let (authority, tail) = rest.split_once('/').map(|(a, t)| (a, format!("/{t}"))).unwrap_or((rest, String::new()));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            let hidden = if userinfo.contains(':') { ":***" } else { "" };
            format!("{scheme}://{user}{hidden}@{host}{tail}")
        }
        None => url.to_owned(),
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

/// What start-up found: whether this run created the database (no migration had been applied).
#[derive(Debug, Clone, Copy)]
pub struct Opened {
    pub created: bool,
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
    /// Milliseconds a request's database work may run; 0: no limit. See [`share`].
    statement_timeout_ms: Arc<AtomicU64>,
}

impl Database {
    /// Connects, applies pending migrations and builds the pool. The first connection is made
    /// directly so that an unreachable database reports its real reason at once.
    pub fn open(url: &str, pool_size: u32, timeout: Duration) -> Result<(Database, Opened), DbError> {
        let url = DatabaseUrl::parse(url).map_err(|reason| DbError::Connect { url: url.to_owned(), reason })?;
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
        let writer = match url.backend {
            Backend::Sqlite => Some(writer::Writer::start(&url)?),
            Backend::Postgres => None,
        };
        Ok((Database { pool, url, writer, statement_timeout_ms }, opened))
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
            // Held until the work is done, even when the request has gone meanwhile.
            let _place = place;
            let left = timeout.saturating_sub(asked.elapsed());
            if left.is_zero() {
                return Err(E::from(DbError::PoolTimeout(
                    "the request waited the whole pool timeout for a thread".into(),
                )));
            }
            let mut conn = db.pool.get_timeout(left).map_err(|e| DbError::PoolTimeout(e.to_string()))?;
            let deadline = sqlite_limit.map(|limit| std::time::Instant::now() + limit);
            share::with_deadline(deadline, || work(&mut conn))
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
        let Some(writer) = &self.writer else {
            return self.run(work).await;
        };
        let (reply, answer) = tokio::sync::oneshot::channel::<Result<T, E>>();
        writer.submit(Box::new(move |conn| {
            let result = writer::in_savepoint(conn, work);
            Box::new(Reply { reply, result }) as Box<dyn writer::Pending>
        }))?;
        answer.await.unwrap_or_else(|_| Err(E::from(DbError::Blocking("the write was not applied".into()))))
    }
}

/// Applies pending migrations on whichever backend the connection is.
pub fn migrate(conn: &mut DbConnection) -> Result<Opened, DbError> {
    fn apply<C: MigrationHarness<B>, B: diesel::backend::Backend>(
        conn: &mut C,
        migrations: EmbeddedMigrations,
    ) -> Result<Opened, DbError> {
        let err = |e: Box<dyn std::error::Error + Send + Sync>| DbError::Migration(e.to_string());
        let created = conn.applied_migrations().map_err(err)?.is_empty();
        conn.run_pending_migrations(migrations).map_err(err)?;
        Ok(Opened { created })
    }
    match conn {
        DbConnection::Sqlite(c) => apply(c, SQLITE_MIGRATIONS),
        DbConnection::Postgresql(c) => {
            c.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"))?;
            let result = apply(c, POSTGRES_MIGRATIONS);
            c.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"))?;
            result
        }
    }
}

/// Runs `work` in a transaction that holds the write lock from its first statement.
///
/// SQLite's default deferred transaction takes the lock at its first write; when another writer
/// got there first, the upgrade fails at once with SQLITE_BUSY instead of waiting.
/// `BEGIN IMMEDIATE` makes writers queue on the busy timeout instead.
pub fn write_transaction<T, E, F>(conn: &mut DbConnection, work: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    let DbConnection::Sqlite(sqlite) = conn else {
        return conn.transaction(work);
    };
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

/// True for a unique-constraint violation on either backend.
pub fn is_unique_violation(err: &diesel::result::Error) -> bool {
    matches!(err, diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _))
}

/// A new `id` for a user, group or content item: a UUID of version 7, whose first 48 bits are
/// the time of creation in milliseconds (the rest random). Ids made one after another sort
/// together, so a create adds its entry to the same last page of the unique index on `id` as
/// the creates before it, instead of to a random page of an index of 10^6 entries (with version
/// 4 ids, one more page per create for SQLite's WAL to write and its checkpoints to copy back).
/// The time in the id is what `meta.created` says anyway; the id stays opaque to clients
/// (RFC 7643 §3.1).
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Real time at millisecond precision, for records outside the lifecycle (tokens, tenants);
/// request handling uses the application's [`crate::clock::Clock`].
pub fn now() -> chrono::NaiveDateTime {
    crate::clock::Clock::default().now()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_ids_sort_in_the_order_they_were_made() {
        let ids: Vec<String> = (0..10_000).map(|_| new_id()).collect();
        assert!(ids.windows(2).all(|pair| pair[0] < pair[1]), "ids made one after another must ascend");
        assert!(ids.iter().all(|id| uuid::Uuid::parse_str(id).is_ok_and(|u| u.get_version_num() == 7)));
    }

    #[test]
    fn the_bundled_sqlite_plans_statements_once() {
        let DbConnection::Sqlite(mut conn) = DatabaseUrl::parse(":memory:").unwrap().establish().unwrap() else {
            panic!("a path is SQLite")
        };
        assert!(plans_once(&mut conn), "built without LIBSQLITE3_FLAGS from .cargo/config.toml");
    }

    #[test]
    fn postgres_urls_choose_postgres_and_hide_passwords() {
        let url = DatabaseUrl::parse("postgres://roster:s3cret@db.internal:5432/roster").unwrap();
        assert_eq!(url.backend, Backend::Postgres);
        assert_eq!(url.redacted(), "postgres://roster:***@db.internal:5432/roster");
    }

    #[test]
    fn loopback_postgres_goes_without_tls_unless_the_url_or_environment_decides() {
        let disabled = |url: &str| format!("{url}sslmode=disable");
        for (input, expected) in [
            ("postgres://postgres@127.0.0.1:5432/test", disabled("postgres://postgres@127.0.0.1:5432/test?")),
            ("postgresql://u:p@localhost/db", disabled("postgresql://u:p@localhost/db?")),
            ("postgres://[::1]:5433/db?application_name=r", disabled("postgres://[::1]:5433/db?application_name=r&")),
            ("postgres://127.0.0.2,localhost:5433/db?", disabled("postgres://127.0.0.2,localhost:5433/db?")),
            ("postgres://127.0.0.1", disabled("postgres://127.0.0.1?")),
        ] {
            assert_eq!(without_loopback_tls(input, false), expected, "{input}");
        }
        for kept in [
            "postgres://roster@db.internal:5432/roster",
            "postgres://127.0.0.1,db.internal/roster",
            "postgres://127.0.0.1/db?sslmode=require",
            "postgres://localhost/db?connect_timeout=3&sslmode=verify-full",
            "postgres:///db?host=/var/run/postgresql",
            "postgres://localhost/db?hostaddr=10.0.0.7",
            "postgres://[2001:db8::1]:5432/db",
            "postgres://localhost.evil.example/db",
            "postgres://127.0.0.1.nip.io/db",
        ] {
            assert_eq!(without_loopback_tls(kept, false), kept);
        }
        assert_eq!(without_loopback_tls("postgres://127.0.0.1/db", true), "postgres://127.0.0.1/db", "PGSSLMODE set");
    }

    #[test]
    fn plain_paths_and_sqlite_urls_choose_sqlite() {
        for (input, target) in
            [("roster.db", "roster.db"), ("sqlite://data/r.db", "data/r.db"), ("sqlite:r.db", "r.db")]
        {
            let url = DatabaseUrl::parse(input).unwrap();
            assert_eq!(url.backend, Backend::Sqlite);
            assert_eq!(url.target, target);
        }
    }

    #[test]
    fn unknown_schemes_are_refused() {
        assert!(DatabaseUrl::parse("mysql://localhost/x").unwrap_err().contains("unsupported"));
    }
}
