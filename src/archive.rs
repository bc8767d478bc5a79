//! The archive sink: the export of a deleted account, waiting sealed in the archive outbox
//! (`db::archive`), is written to the tenant's archive directory (or, for a tenant with an
//! archive URL, sent there by the webhook sender: `delivery::archive`), and only then removed
//! from Roster. At least once: the file is written and made durable before the pending export is
//! removed, so a crash in between writes the same file again on the next run, and never loses
//! it. An export that waits longer than the tenant's hold is destroyed, and an `archive.expired`
//! event raised, so that what Roster deleted does not stay in it indefinitely.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use chrono::NaiveDateTime;
use serde::Serialize;
use serde_json::json;

use crate::clock::time;
use crate::db::archive::{self as store, Destination, PendingExport};
use crate::db::tenants::Tenant;
use crate::db::{records, scrub, write_transaction, DbConnection, DbError};

/// Exports written per tenant in one run; the next run continues.
const BATCH: usize = 100;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivered {
    pub written: usize,
    pub expired: usize,
}

/// Why one export was not delivered: its file could not be written (it stays pending), or the
/// database failed.
#[derive(Debug, thiserror::Error)]
enum ArchiveError {
    #[error("could not write the export of {user_id} to {dir}: {source}")]
    Write { user_id: String, dir: String, source: std::io::Error },
    #[error(transparent)]
    Storage(#[from] DbError),
}

impl From<diesel::result::Error> for ArchiveError {
    fn from(e: diesel::result::Error) -> Self {
        ArchiveError::Storage(e.into())
    }
}

/// Writes the tenant's pending exports to its archive directory, and destroys those past their
/// hold. A write that fails (the directory missing, the disk full) leaves the export pending and
/// is logged; the next run tries again, until the hold is over.
pub fn deliver(conn: &mut DbConnection, tenant: &Tenant, now: NaiveDateTime) -> Result<Delivered, DbError> {
    let mut done = Delivered::default();
    let mut after = 0;
    for _ in 0..BATCH {
        // On PostgreSQL the export is claimed for this transaction (several nodes take different
        // ones) and the file is written while it is held; SQLite holds no write lock meanwhile.
        let outcome = match conn {
            DbConnection::Postgresql(_) => write_transaction(conn, |conn| deliver_next(conn, tenant, after, now)),
            DbConnection::Sqlite(_) => deliver_next(conn, tenant, after, now),
        };
        match outcome {
            Ok(Some((seq, Outcome::Written))) => {
                done.written += 1;
                after = seq;
            }
            Ok(Some((seq, Outcome::Expired))) => {
                done.expired += 1;
                after = seq;
            }
            Ok(Some((seq, Outcome::Gone))) => after = seq,
            Ok(None) => break,
            Err(ArchiveError::Write { user_id, dir, source }) => {
                tracing::warn!(tenant = %tenant.name, user_id, dir, error = %source, "archive export not written; it stays pending");
                break;
            }
            Err(ArchiveError::Storage(e)) => return Err(e),
        }
    }
    if done != Delivered::default() {
        // The sealed exports' bytes go from the database files as a deletion's do.
        scrub::personal_data_removed();
    }
    Ok(done)
}

enum Outcome {
    Written,
    Expired,
    /// Another node finished it first.
    Gone,
}

/// The next pending export after `after`: destroyed when past its hold, else written and removed.
fn deliver_next(
    conn: &mut DbConnection,
    tenant: &Tenant,
    after: i64,
    now: NaiveDateTime,
) -> Result<Option<(i64, Outcome)>, ArchiveError> {
    let Some(pending) = store::next(conn, &tenant.id, after)? else { return Ok(None) };
    let seq = pending.seq;
    if pending.expires_at <= now {
        return Ok(Some((seq, expire(conn, &pending, now)?)));
    }
    let Some(dir) = &tenant.archive_dir else {
        if tenant.archive_url.is_some() {
            // The webhook sender delivers it (`delivery::archive`); only its expiry is the sweep's.
            return Ok(Some((seq, Outcome::Gone)));
        }
        tracing::warn!(tenant = %tenant.name, user_id = pending.user_id, "archive export pending: the tenant has no archive directory");
        return Ok(None);
    };
    let export = store::open(conn, &pending)?;
    write_file(Path::new(dir), &pending.user_id, &export).map_err(|source| ArchiveError::Write {
        user_id: pending.user_id.clone(),
        dir: dir.clone(),
        source,
    })?;
    // Only now, with the file durable, does the export leave Roster.
    let removed = write_transaction(conn, |conn| -> Result<bool, ArchiveError> {
        let removed = store::remove(conn, seq)?;
        if removed {
            let destination = Destination::Directory.as_str();
            let payload =
                json!({"userId": pending.user_id, "destination": destination, "file": file_name(&pending.user_id)});
            records::add_event(conn, &tenant.id, "archive.written", Some(&pending.user_id), &payload, now)?;
        }
        Ok(removed)
    })?;
    Ok(Some((seq, if removed { Outcome::Written } else { Outcome::Gone })))
}

/// Destroys an export that waited past its hold, with an alert event in the same transaction.
fn expire(conn: &mut DbConnection, pending: &PendingExport, now: NaiveDateTime) -> Result<Outcome, ArchiveError> {
    let removed = write_transaction(conn, |conn| -> Result<bool, ArchiveError> {
        let removed = store::remove(conn, pending.seq)?;
        if removed {
            let payload = json!({
                "userId": pending.user_id,
                "destination": pending.destination,
                "queuedAt": time(pending.created_at),
                "expiredAt": time(pending.expires_at),
            });
            records::add_event(conn, &pending.tenant_id, "archive.expired", Some(&pending.user_id), &payload, now)?;
        }
        Ok(removed)
    })?;
    if removed {
        tracing::error!(
            tenant_id = pending.tenant_id,
            user_id = pending.user_id,
            queued_at = %time(pending.created_at),
            "archive export destroyed unwritten: its hold is over"
        );
        return Ok(Outcome::Expired);
    }
    Ok(Outcome::Gone)
}

/// The file an account's export is written to: its id, which is a UUID, so no path tricks.
pub fn file_name(user_id: &str) -> String {
    format!("{user_id}.jsonl")
}

/// Writes `bytes` as `dir/<user_id>.jsonl`, readable by the owner only: into a temporary file of
/// the same directory, fsync'd, renamed over the final name, and the directory fsync'd, so that
/// after a crash the file is either whole or absent (never half-written), and once this returns
/// it survives one.
fn write_file(dir: &Path, user_id: &str, bytes: &[u8]) -> std::io::Result<PathBuf> {
    let target = dir.join(file_name(user_id));
    let temporary = dir.join(format!(".{}.{}.tmp", file_name(user_id), uuid::Uuid::new_v4().simple()));
    let written = (|| {
        let mut file = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&temporary, &target)
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&temporary);
        return Err(e);
    }
    File::open(dir)?.sync_all()?;
    Ok(target)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn an_export_file_is_whole_owner_only_and_replaces_an_earlier_write() {
        let dir = std::env::temp_dir().join(format!("roster-archive-{}", uuid::Uuid::new_v4().simple()));
        fs::create_dir(&dir).unwrap();
        let path = write_file(&dir, "u1", b"first\n").unwrap();
        let path_again = write_file(&dir, "u1", b"{\"type\":\"user\"}\n").unwrap();
        assert_eq!(path, path_again);
        assert_eq!(fs::read(&path).unwrap(), b"{\"type\":\"user\"}\n");
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let names: Vec<_> = fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["u1.jsonl"], "no temporary file is left behind");
        assert!(write_file(&dir.join("missing"), "u2", b"x").is_err());
        fs::remove_dir_all(&dir).unwrap();
    }
}
