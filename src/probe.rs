//! `roster probe-commits`: the single-row commit rate of the database Roster uses, on the same
//! disk and with the same durability settings — the yardstick that group commit is measured
//! against (one row, one transaction, one sync, in a loop).

use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::RunQueryDsl;

use crate::db::{Backend, DatabaseUrl, DbError};

pub struct CommitRate {
    pub commits: u64,
    pub elapsed: Duration,
}

impl CommitRate {
    pub fn per_second(&self) -> f64 {
        self.commits as f64 / self.elapsed.as_secs_f64()
    }
}

/// Commits single-row inserts one at a time for `duration`. On SQLite it writes a scratch file
/// next to the database (same disk, WAL, `synchronous = FULL`); on PostgreSQL a scratch table in
/// the same database (`synchronous_commit` as configured). The scratch data is removed after.
pub fn commit_rate(url: &str, duration: Duration) -> Result<CommitRate, DbError> {
    let parsed =
        DatabaseUrl::parse(url).map_err(|reason| DbError::Connect { url: "(as configured)".to_owned(), reason })?;
    let scratch = match parsed.backend {
        Backend::Sqlite => {
            let path = format!("{}.commit-probe", parsed.target());
            Some(path)
        }
        Backend::Postgres => None,
    };
    let probe_url = scratch.clone().unwrap_or_else(|| url.to_owned());
    let mut conn = DatabaseUrl::parse(&probe_url).map_err(DbError::Blocking)?.establish()?;
    conn.batch_execute(
        "DROP TABLE IF EXISTS roster_commit_probe; CREATE TABLE roster_commit_probe (n BIGINT NOT NULL, at TEXT NOT NULL)",
    )?;
    let started = Instant::now();
    let mut commits = 0u64;
    while started.elapsed() < duration {
        // Autocommit: each statement is its own transaction and its own sync.
        diesel::sql_query(format!("INSERT INTO roster_commit_probe (n, at) VALUES ({commits}, 'probe')"))
            .execute(&mut conn)?;
        commits += 1;
    }
    let elapsed = started.elapsed();
    conn.batch_execute("DROP TABLE roster_commit_probe")?;
    drop(conn);
    if let Some(path) = scratch {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{path}{suffix}"));
        }
    }
    Ok(CommitRate { commits, elapsed })
}
