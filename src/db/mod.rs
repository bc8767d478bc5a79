//! Storage: one Diesel code path over SQLite (the embedded default) and PostgreSQL.
//!
//! The backend is chosen from the URL scheme here rather than by `MultiConnection::establish`,
//! which tries each backend in turn and reports only the last failure.

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
pub mod lifecycle_state;
pub mod query;
pub mod records;
pub mod schema;
pub mod scrub;
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
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    pub backend: Backend,
    /// What the driver is given: a PostgreSQL URL or libpq key=value string, or an SQLite path
    /// or `file:` URI.
    target: String,
    /// The password the target holds, if any, so that logs and errors never show it.
    password: Option<String>,
}

/// Shows the URL redacted: a derived `Debug` would print the password.
impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseUrl").field("backend", &self.backend).field("target", &self.redacted()).finish()
    }
}

/// What SQLite waits for the database lock before it answers SQLITE_BUSY.
const SQLITE_BUSY_TIMEOUT_MS: u32 = 10_000;

/// The connection keywords of libpq (PostgreSQL 15's `PQconndefaults` plus the later
/// `load_balance_hosts`, `sslcertmode`, `require_auth` and `gssdelegation`): a string whose
/// first word is `keyword=` is a key=value connection string (PostgreSQL docs §34.1.1.1).
const LIBPQ_KEYWORDS: &[&str] = &[
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "passfile",
    "require_auth",
    "channel_binding",
    "connect_timeout",
    "client_encoding",
    "options",
    "application_name",
    "fallback_application_name",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
    "tcp_user_timeout",
    "replication",
    "gssencmode",
    "sslmode",
    "requiressl",
    "sslcompression",
    "sslcert",
    "sslkey",
    "sslcertmode",
    "sslpassword",
    "sslrootcert",
    "sslcrl",
    "sslcrldir",
    "sslsni",
    "requirepeer",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
    "krbsrvname",
    "gsslib",
    "gssdelegation",
    "service",
    "target_session_attrs",
    "load_balance_hosts",
];

impl DatabaseUrl {
    /// Accepts, for PostgreSQL, a `postgres://` or `postgresql://` URL (several hosts and
    /// `?host=/socket/dir` included: libpq reads them) or a libpq key=value string
    /// (`host=… dbname=… user=…`); for SQLite, a path, `sqlite:PATH`, `sqlite://PATH` or a
    /// `file:` URI. Anything else is refused rather than taken for a file name. Errors never
    /// repeat the input, which may hold a password.
    pub fn parse(url: &str) -> Result<Self, String> {
        let url = url.trim();
        if url.is_empty() {
            return Err("the database URL is empty".into());
        }
        if let Some(path) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
            if path.is_empty() {
                return Err("the sqlite: URL names no file".into());
            }
            return Ok(DatabaseUrl { backend: Backend::Sqlite, target: path.to_owned(), password: None });
        }
        let scheme = url.split_once(':').map(|(scheme, _)| scheme.to_ascii_lowercase());
        if let Some(scheme @ ("postgres" | "postgresql")) = scheme.as_deref() {
            if !url[scheme.len()..].starts_with("://") {
                return Err(format!("a PostgreSQL URL starts with {scheme}://"));
            }
            let tls_chosen = std::env::var_os("PGSSLMODE").is_some();
            let password = url_password(url);
            return Ok(DatabaseUrl {
                backend: Backend::Postgres,
                target: without_loopback_tls(url, tls_chosen),
                password,
            });
        }
        if let Some(keyword) = first_keyword(url) {
            if !LIBPQ_KEYWORDS.contains(&keyword) {
                return Err(format!(
                    "the database URL looks like a key=value connection string, but {keyword:?} is not a \
                     libpq keyword (an SQLite path with '=' in it is written sqlite:PATH)"
                ));
            }
            let password = keyword_value(url, "password");
            return Ok(DatabaseUrl { backend: Backend::Postgres, target: url.to_owned(), password });
        }
        if url.contains("://") && !url.starts_with("file:") {
            let scheme = url.split_once("://").map_or("", |(scheme, _)| scheme);
            return Err(format!(
                "unsupported database URL scheme {scheme:?}: use postgres://…, a key=value connection \
                 string or an SQLite path"
            ));
        }
        Ok(DatabaseUrl { backend: Backend::Sqlite, target: url.to_owned(), password: None })
    }

    /// The SQLite database's file; none on PostgreSQL or for an in-memory database.
    pub fn sqlite_file(&self) -> Option<std::path::PathBuf> {
        (self.backend == Backend::Sqlite).then(|| sqlite_file(&self.target)).flatten()
    }

    /// What the driver connects to: the PostgreSQL URL, or the SQLite path or URI.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The URL without any password, for logs and errors.
    pub fn redacted(&self) -> String {
        self.redact(&self.target)
    }

    /// `text` with the URL's password, as written in the URL and percent-decoded, replaced by
    /// `***`: libpq's own messages can quote parts of the connection string.
    pub fn redact(&self, text: &str) -> String {
        let Some(password) = self.password.as_deref().filter(|p| !p.is_empty()) else { return text.to_owned() };
        let mut text = text.replace(password, "***");
        let decoded = percent_decoded(password);
        if !decoded.is_empty() && decoded != password {
            text = text.replace(&decoded, "***");
        }
        text
    }

    /// One connection outside any pool, set up as the pool's are.
    pub fn establish(&self) -> Result<DbConnection, DbError> {
        let connect_err =
            |e: ConnectionError| DbError::Connect { url: self.redacted(), reason: self.redact(e.to_string().trim()) };
        match self.backend {
            Backend::Postgres => {
                PgConnection::establish(&self.target).map(DbConnection::Postgresql).map_err(connect_err)
            }
            Backend::Sqlite => {
                sqlite_without_memory_statistics();
                // When this fails (no such folder, no permission), so does SQLite, which says why.
                let _ = create_private(&self.target);
                share::install_progress_handler();
                let mut conn = SqliteConnection::establish(&self.target).map_err(connect_err)?;
                // WAL lets readers run beside the writer; synchronous=FULL keeps a 2xx durable
                // across power loss; the busy timeout queues writers instead of failing them.
                // LIKE is made case-sensitive as on PostgreSQL: filters fold values themselves.
                // secure_delete zeroes what a delete or update frees, so that removed personal
                // data does not linger in free space of the file (see `scrub`).
                let setup_err =
                    |e: diesel::result::Error| DbError::Connect { url: self.redacted(), reason: e.to_string() };
                conn.batch_execute(&format!(
                    "PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}; PRAGMA journal_mode = WAL; \
                     PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA case_sensitive_like = ON; \
                     PRAGMA secure_delete = ON;",
                ))
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

/// The password of a `postgres://` URL: in the user info, or a `password` query parameter.
fn url_password(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
    if let Some((_, password)) = authority.rsplit_once('@').and_then(|(userinfo, _)| userinfo.split_once(':')) {
        return Some(password.to_owned());
    }
    let query = rest.split_once('?').map_or("", |(_, query)| query);
    query.split('&').find_map(|pair| pair.strip_prefix("password=")).map(str::to_owned)
}

/// The keyword of a libpq key=value string (`host=db user=r`, spaces around `=` allowed), or
/// None when the first word is not `keyword=`.
fn first_keyword(text: &str) -> Option<&str> {
    let end = text.find(|c: char| c == '=' || c.is_whitespace())?;
    let keyword = &text[..end];
    let valid = !keyword.is_empty() && keyword.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    (valid && text[end..].trim_start().starts_with('=')).then_some(keyword)
}

/// The value of `keyword` in a libpq key=value string: single-quoted values may hold spaces and
/// backslash-escaped quotes or backslashes.
fn keyword_value(text: &str, keyword: &str) -> Option<String> {
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let after = after.trim_start();
        let mut value = String::new();
        let mut end = after.len();
        let mut chars = after.char_indices();
        if after.starts_with('\'') {
            chars.next();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\'' => {
                        end = i + 1;
                        break;
                    }
                    '\\' => value.extend(chars.next().map(|(_, escaped)| escaped)),
                    c => value.push(c),
                }
            }
        } else {
            for (i, c) in chars {
                if c.is_whitespace() {
                    end = i;
                    break;
                }
                value.push(c);
            }
        }
        if key.trim() == keyword {
            return Some(value);
        }
        rest = after[end..].trim_start();
    }
    None
}

/// `%XX` escapes decoded, as libpq decodes a URL's parts; invalid escapes are kept as written.
fn percent_decoded(text: &str) -> String {
    percent_encoding::percent_decode_str(text).decode_utf8_lossy().into_owned()
}

/// The file an SQLite target names; none for an in-memory database.
fn sqlite_file(target: &str) -> Option<std::path::PathBuf> {
    let path = match target.strip_prefix("file:") {
        // A URI: its path ends at the query; `mode=memory` and `:memory:` are no file.
        Some(uri) if uri.contains("mode=memory") => return None,
        Some(uri) => {
            let path = uri.split(['?', '#']).next().unwrap_or("");
            let path = path.strip_prefix("//localhost").or_else(|| path.strip_prefix("//")).unwrap_or(path);
            percent_decoded(path)
        }
        None => target.to_owned(),
    };
    (!path.is_empty() && path != ":memory:").then(|| path.into())
}

/// Creates the SQLite database file, when it does not exist yet, readable and writable by its
/// owner only: it holds personal data and the token signing key. SQLite creates the `-wal` and
/// `-shm` files with the database file's permissions. An existing file keeps its own.
fn create_private(target: &str) -> std::io::Result<()> {
    let Some(path) = sqlite_file(target) else { return Ok(()) };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        other => other.map(drop),
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
            scrub::take();
            let result = share::with_deadline(deadline, || work(&mut conn));
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
    let postgres = matches!(conn, DbConnection::Postgresql(_));
    if postgres {
        conn.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"))?;
    }
    let result = match &mut *conn {
        DbConnection::Sqlite(c) => apply(c, SQLITE_MIGRATIONS),
        DbConnection::Postgresql(c) => apply(c, POSTGRES_MIGRATIONS),
    };
    let result = result.and_then(|opened| users::refold_user_names(conn).map(|()| opened));
    if postgres {
        conn.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"))?;
    }
    result
}

/// Whether a migration this binary embeds has not been applied to the database: another node
/// may have started on it with an older binary, or it was restored from an older backup.
///
/// Only reads the migrations table: diesel's own `has_pending_migration` first runs `CREATE TABLE
/// IF NOT EXISTS` on it, DDL that a probe called every second has no business running.
pub fn migrations_pending(conn: &mut DbConnection) -> Result<bool, DbError> {
    use diesel::migration::MigrationSource;

    #[derive(QueryableByName)]
    struct Applied {
        #[diesel(sql_type = diesel::sql_types::Text)]
        version: String,
    }
    fn versions<B: diesel::backend::Backend>(source: impl MigrationSource<B>) -> Result<Vec<String>, DbError> {
        let migrations = source.migrations().map_err(|e| DbError::Migration(e.to_string()))?;
        Ok(migrations.iter().map(|m| m.name().version().to_string()).collect())
    }
    let embedded = match conn {
        DbConnection::Sqlite(_) => versions::<diesel::sqlite::Sqlite>(SQLITE_MIGRATIONS)?,
        DbConnection::Postgresql(_) => versions::<diesel::pg::Pg>(POSTGRES_MIGRATIONS)?,
    };
    let applied: std::collections::HashSet<String> =
        diesel::sql_query("SELECT version FROM __diesel_schema_migrations")
            .load::<Applied>(conn)?
            .into_iter()
            .map(|a| a.version)
            .collect();
    Ok(embedded.iter().any(|version| !applied.contains(version)))
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

    #[test]
    fn libpq_key_value_strings_choose_postgres_and_hide_passwords() {
        for (input, password) in [
            ("host=db.internal port=5432 dbname=roster user=roster password=s3cret", "s3cret"),
            ("host = /var/run/postgresql dbname=roster", ""),
            (r"user=r password='a \'quoted\' s3cret' host=db", "a 'quoted' s3cret"),
            ("service=roster", ""),
        ] {
            let url = DatabaseUrl::parse(input).unwrap();
            assert_eq!(url.backend, Backend::Postgres, "{input}");
            assert_eq!(url.target(), input, "libpq reads the string as it is");
            if !password.is_empty() {
                assert!(!url.redacted().contains(password), "{input} → {}", url.redacted());
                assert!(!format!("{url:?}").contains(password), "Debug redacts too");
            }
        }
    }

    #[test]
    fn a_key_value_string_with_an_unknown_keyword_is_refused_without_echoing_it() {
        let err = DatabaseUrl::parse("hots=db.internal password=s3cret").unwrap_err();
        assert!(err.contains("\"hots\" is not a libpq keyword"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
    }

    #[test]
    fn postgres_url_forms_libpq_reads_are_postgres() {
        for input in [
            "postgresql://roster@db1:5432,db2:5433/roster?target_session_attrs=read-write",
            "postgres:///roster?host=/var/run/postgresql",
            "postgresql://%2Fvar%2Frun%2Fpostgresql/roster",
            "POSTGRES://roster@db.internal/roster",
        ] {
            assert_eq!(DatabaseUrl::parse(input).unwrap().backend, Backend::Postgres, "{input}");
        }
        for refused in ["postgres:roster", "postgresql:/db"] {
            assert!(DatabaseUrl::parse(refused).unwrap_err().contains("://"), "{refused}");
        }
    }

    #[test]
    fn passwords_are_hidden_wherever_the_url_holds_them() {
        for (input, password) in [
            ("postgres://roster:s3cret@db.internal:5432/roster", "s3cret"),
            ("postgres://roster:p%40ss%3Aw0rd@db.internal/roster", "p@ss:w0rd"),
            ("postgres://roster@db.internal/roster?sslmode=require&password=s3cret", "s3cret"),
        ] {
            let url = DatabaseUrl::parse(input).unwrap();
            assert!(!url.redacted().contains(password), "{}", url.redacted());
            let libpq_said = format!("invalid percent-encoded token: \"{password}\"");
            assert!(!url.redact(&libpq_said).contains(password), "errors are redacted too");
        }
        let encoded = DatabaseUrl::parse("postgres://roster:p%40ss%3Aw0rd@db/roster").unwrap();
        assert!(!encoded.redacted().contains("p%40ss%3Aw0rd"));
    }

    #[test]
    fn sqlite_urls_and_uris_are_sqlite() {
        for (input, target) in [
            ("sqlite:///var/lib/roster/roster.db", "/var/lib/roster/roster.db"),
            ("sqlite::memory:", ":memory:"),
            ("sqlite:odd=name.db", "odd=name.db"),
            ("file:roster.db?cache=shared", "file:roster.db?cache=shared"),
            ("file:///var/lib/roster/roster.db", "file:///var/lib/roster/roster.db"),
            ("my data/roster.db", "my data/roster.db"),
        ] {
            let url = DatabaseUrl::parse(input).unwrap();
            assert_eq!((url.backend, url.target()), (Backend::Sqlite, target), "{input}");
        }
        assert!(DatabaseUrl::parse("sqlite:").is_err());
    }

    #[cfg(unix)]
    #[test]
    fn a_new_sqlite_database_and_its_wal_are_readable_by_the_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("roster-mode-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("roster.db");
        let mut conn = DatabaseUrl::parse(path.to_str().unwrap()).unwrap().establish().unwrap();
        conn.batch_execute("CREATE TABLE t (x TEXT); INSERT INTO t VALUES ('x');").unwrap();
        for suffix in ["", "-wal", "-shm"] {
            let mode = std::fs::metadata(format!("{}{suffix}", path.display())).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "roster.db{suffix}");
        }
        drop(conn);
        let _ = std::fs::remove_dir_all(dir);
    }
}
