//! Whether this node can actually serve (`/readyz`): the database answers, every migration this
//! binary embeds is applied, the SQLite writer thread is alive, and the SQLite database's file
//! system has room left. Liveness (`/healthz`) is only "the process answers".
//!
//! Load balancers and benchmarks poll `/readyz` often, so the checks that cost more than a
//! round trip (the migrations table, `statvfs`) are remembered for [`RECHECK_AFTER`]; the
//! `SELECT 1` and the writer's liveness are checked on every call.

use std::path::PathBuf;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use actix_web::web::Bytes;
use diesel::connection::SimpleConnection;
use serde_json::{json, Map, Value};

use crate::db::{Database, DbError};

/// How long the slower checks' results are reused.
const RECHECK_AFTER: Duration = Duration::from_secs(1);

const MB: u64 = 1024 * 1024;

/// The slower checks' last results.
#[derive(Clone)]
struct Slow {
    at: Instant,
    /// Whether a migration is missing; `None` when the migrations table could not be read.
    migrations_pending: Option<bool>,
    disk: Disk,
    /// The 200 body when these results pass: built once, not on every call.
    ready_body: Option<Bytes>,
}

#[derive(Clone, Copy)]
enum Disk {
    /// PostgreSQL, an in-memory SQLite database, or `min_free_disk_mb = 0`.
    NotChecked,
    FreeBytes(u64),
    Unreadable,
}

pub struct Readiness {
    /// The folder holding the SQLite database, when free space is checked.
    folder: Option<PathBuf>,
    min_free_bytes: u64,
    slow: RwLock<Option<Slow>>,
}

impl Readiness {
    pub fn new(db: &Database, min_free_disk_mb: u64) -> Readiness {
        let folder = db.sqlite_file().filter(|_| min_free_disk_mb > 0).map(|file| match file.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
            _ => PathBuf::from("."),
        });
        Readiness { folder, min_free_bytes: min_free_disk_mb.saturating_mul(MB), slow: RwLock::new(None) }
    }

    /// Runs the checks: whether all pass, and the JSON body naming each check's result.
    pub async fn check(&self, db: &Database) -> (bool, Bytes) {
        let cached = self.slow.read().unwrap_or_else(|e| e.into_inner()).clone();
        let stale = cached.as_ref().is_none_or(|slow| slow.at.elapsed() >= RECHECK_AFTER);
        let folder = if stale { self.folder.clone() } else { None };
        let probe = db
            .run(move |conn| {
                conn.batch_execute("SELECT 1").map_err(DbError::from)?;
                if !stale {
                    return Ok::<_, DbError>(None);
                }
                let migrations_pending = crate::db::migrations_pending(conn)
                    .inspect_err(|e| tracing::warn!("readiness: cannot read the applied migrations: {e}"))
                    .ok();
                let disk = match folder {
                    None => Disk::NotChecked,
                    Some(folder) => match fs4::available_space(&folder) {
                        Ok(bytes) => Disk::FreeBytes(bytes),
                        Err(e) => {
                            tracing::warn!("readiness: cannot read the free space beside the database: {e}");
                            Disk::Unreadable
                        }
                    },
                };
                Ok(Some((migrations_pending, disk)))
            })
            .await;
        let writer_alive = db.writer_alive();
        let slow = match probe {
            Ok(Some((migrations_pending, disk))) => {
                let mut fresh = Slow { at: Instant::now(), migrations_pending, disk, ready_body: None };
                // What a call whose database and writer pass answers until the next recheck.
                let (ready, body) = self.report(Ok(()), Some(&fresh), writer_alive.map(|_| true));
                fresh.ready_body = ready.then(|| Bytes::from(body.to_string()));
                *self.slow.write().unwrap_or_else(|e| e.into_inner()) = Some(fresh.clone());
                Some(fresh)
            }
            // Unreachable database: the last known results, for what they are worth.
            _ => cached,
        };
        if let (Ok(_), Some(true) | None, Some(Slow { ready_body: Some(body), .. })) = (&probe, writer_alive, &slow) {
            return (true, body.clone());
        }
        let (ready, body) = self.report(probe.map(drop).map_err(|e| e.to_string()), slow.as_ref(), writer_alive);
        (ready, Bytes::from(body.to_string()))
    }

    fn report(&self, database: Result<(), String>, slow: Option<&Slow>, writer_alive: Option<bool>) -> (bool, Value) {
        let mut checks = Map::new();
        let mut failed = Vec::new();
        let mut report = |name: &str, outcome: Result<String, String>| {
            match outcome {
                Ok(detail) => checks.insert(name.into(), json!({ "status": "ok", "detail": detail })),
                Err(detail) => {
                    failed.push(name.to_owned());
                    checks.insert(name.into(), json!({ "status": "failed", "detail": detail }))
                }
            };
        };
        report("database", database.map(|()| "answers SELECT 1".to_owned()));
        match slow.map(|slow| slow.migrations_pending) {
            Some(Some(false)) => report("migrations", Ok("every migration of this release is applied".into())),
            Some(Some(true)) => {
                report("migrations", Err("the database lacks migrations of this release: run `roster migrate`".into()))
            }
            Some(None) => report("migrations", Err("the applied migrations cannot be read".into())),
            // Never reached the database: its own check has failed already.
            None => {}
        }
        if let Some(alive) = writer_alive {
            report(
                "writer",
                if alive {
                    Ok("the SQLite writer thread runs".into())
                } else {
                    Err("the SQLite writer thread has stopped".into())
                },
            );
        }
        let needed = self.min_free_bytes / MB;
        match slow.map_or(Disk::NotChecked, |slow| slow.disk) {
            Disk::NotChecked => {}
            Disk::FreeBytes(free) if free >= self.min_free_bytes => {
                report("disk", Ok(format!("{} MB free, at least {needed} MB required", free / MB)))
            }
            Disk::FreeBytes(free) => report(
                "disk",
                Err(format!("{} MB free beside the database, below min_free_disk_mb = {needed}", free / MB)),
            ),
            Disk::Unreadable => report("disk", Err("the free space beside the database cannot be read".into())),
        }
        if failed.is_empty() {
            (true, json!({ "status": "ready", "checks": checks }))
        } else {
            (false, json!({ "status": "unavailable", "failed": failed, "checks": checks }))
        }
    }
}
