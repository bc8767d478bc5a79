//! A connection to either backend: the connection type, the backend it is, storage errors, and
//! how a connection is set up (SQLite's pragmas and the fold function it lacks).

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::{PgConnection, SqliteConnection};

use super::dialect::Backend;
use super::url::DatabaseUrl;
use super::{share, url};

// Folds text the way filters and uniqueness do (NFC, then Unicode lowercase); SQLite's own
// `lower()` only knows ASCII, so Roster registers this on every SQLite connection.
#[diesel::declare_sql_function]
extern "SQL" {
    fn roster_fold(
        input: diesel::sql_types::Nullable<diesel::sql_types::Text>,
    ) -> diesel::sql_types::Nullable<diesel::sql_types::Text>;
}

/// A connection to whichever backend the URL named. Statements diesel cannot build for both
/// run on the connection inside (`on_backend!`); SQL that differs is in `dialect`.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgresql(PgConnection),
    Sqlite(SqliteConnection),
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

/// What SQLite waits for the database lock before it answers SQLITE_BUSY.
pub(super) const SQLITE_BUSY_TIMEOUT_MS: u32 = 10_000;

impl DatabaseUrl {
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
                    input.map(|s| crate::scim::fold::fold(&s))
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
pub(super) fn plans_once(conn: &mut SqliteConnection) -> bool {
    #[derive(QueryableByName)]
    struct CompileOption {
        #[diesel(sql_type = diesel::sql_types::Text)]
        compile_options: String,
    }
    diesel::sql_query("PRAGMA compile_options")
        .load::<CompileOption>(conn)
        .is_ok_and(|options| options.iter().any(|o| o.compile_options == "ENABLE_QPSG"))
}

/// Creates the SQLite database file, when it does not exist yet, readable and writable by its
/// owner only: it holds personal data and the token signing key. SQLite creates the `-wal` and
/// `-shm` files with the database file's permissions. An existing file keeps its own.
fn create_private(target: &str) -> std::io::Result<()> {
    let Some(path) = url::sqlite_file(target) else { return Ok(()) };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        other => other.map(drop),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_sqlite_plans_statements_once() {
        let DbConnection::Sqlite(mut conn) = DatabaseUrl::parse(":memory:").unwrap().establish().unwrap() else {
            panic!("a path is SQLite")
        };
        assert!(plans_once(&mut conn), "built without LIBSQLITE3_FLAGS from .cargo/config.toml");
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
