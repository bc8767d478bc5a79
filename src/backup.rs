//! `roster backup` and `roster restore` for an SQLite database, and the lock by which a serving
//! node tells `restore` that its database is in use. PostgreSQL has its own tools for both
//! (`pg_dump`/`pg_restore`, `pg_basebackup`); the README says which procedure is supported.

use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use diesel::connection::SimpleConnection;
use diesel::{Connection, RunQueryDsl, SqliteConnection};

use crate::db::{Backend, Database, DatabaseUrl};

const POSTGRES_REFUSAL: &str = "roster backup and roster restore handle SQLite databases only; back up \
     PostgreSQL with pg_dump --format=custom and restore with pg_restore, or take a base backup with \
     pg_basebackup (see the README's operations section)";

/// The SQLite file a URL names; refuses PostgreSQL and in-memory databases.
fn sqlite_file(url: &DatabaseUrl) -> anyhow::Result<PathBuf> {
    if url.backend == Backend::Postgres {
        bail!(POSTGRES_REFUSAL);
    }
    url.sqlite_file().context("the database is in memory: there is no file to back up or restore")
}

/// Creates `path`, which must not exist yet, readable and writable by its owner only: a backup
/// holds the personal data and the token signing key the database holds.
fn create_private(path: &Path) -> anyhow::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map_err(|e| match e.kind() {
        ErrorKind::AlreadyExists => anyhow::anyhow!("{} exists already: give a path that does not", path.display()),
        _ => anyhow::anyhow!("cannot create {}: {e}", path.display()),
    })
}

/// Makes a file's creation, rename or removal in `path`'s folder durable.
fn sync_folder(path: &Path) -> anyhow::Result<()> {
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    File::open(folder).and_then(|f| f.sync_all()).with_context(|| format!("cannot sync {}", folder.display()))
}

/// An SQLite string literal.
fn quoted(path: &Path) -> anyhow::Result<String> {
    let text = path.to_str().context("the backup path is not valid UTF-8")?;
    Ok(format!("'{}'", text.replace('\'', "''")))
}

/// Writes a consistent copy of the database to `dest` while servers keep writing to it.
///
/// `VACUUM INTO` reads the database in one read transaction, so the copy is the database as of
/// one commit, with every write acknowledged before it began; under WAL it does not block the
/// writer. SQLite does not sync the file it writes (sqlite.org/lang_vacuum.html#vacuuminto),
/// so this does, and the folder too.
pub fn backup(url: &DatabaseUrl, dest: &Path) -> anyhow::Result<()> {
    let source = sqlite_file(url)?;
    if !source.is_file() {
        bail!("there is no database at {}", source.display());
    }
    let file = create_private(dest)?;
    let result = (|| {
        let mut conn = url.establish()?;
        conn.batch_execute(&format!("VACUUM INTO {}", quoted(dest)?))
            .with_context(|| format!("cannot write the backup to {}", dest.display()))?;
        drop(conn);
        file.sync_all().with_context(|| format!("cannot sync {}", dest.display()))?;
        sync_folder(dest)
    })();
    if result.is_err() {
        // Half a copy must not pass for a backup.
        let _ = std::fs::remove_file(dest);
    }
    result
}

#[derive(diesel::QueryableByName)]
struct IntegrityCheck {
    #[diesel(sql_type = diesel::sql_types::Text)]
    integrity_check: String,
}

/// Refuses a file that SQLite finds damaged, or that is no Roster database.
fn check_integrity(path: &Path) -> anyhow::Result<()> {
    let target = path.to_str().context("the path is not valid UTF-8")?;
    let mut conn = SqliteConnection::establish(target).with_context(|| format!("cannot open {target}"))?;
    let rows = diesel::sql_query("PRAGMA integrity_check")
        .load::<IntegrityCheck>(&mut conn)
        .with_context(|| format!("{} is not a readable SQLite database", path.display()))?;
    if rows.len() != 1 || rows[0].integrity_check != "ok" {
        let problems: Vec<_> = rows.into_iter().take(5).map(|r| r.integrity_check).collect();
        bail!("{} fails SQLite's integrity check: {}", path.display(), problems.join("; "));
    }
    conn.batch_execute("SELECT version FROM __diesel_schema_migrations LIMIT 1")
        .with_context(|| format!("{} is not a Roster database", path.display()))?;
    Ok(())
}

/// Replaces the database with the backup at `source`, after checking the copy's integrity.
/// Refuses while a `roster serve` uses the database, unless `force`.
pub fn restore(url: &DatabaseUrl, source: &Path, force: bool) -> anyhow::Result<()> {
    let target = sqlite_file(url)?;
    if !source.is_file() {
        bail!("there is no backup at {}", source.display());
    }
    // Held until the restored file is in place, so that no server starts on the old one meanwhile.
    let _lock = match File::open(&target) {
        Ok(live) => match live.try_lock() {
            Ok(()) => Some(live),
            Err(std::fs::TryLockError::WouldBlock) if !force => bail!(
                "a running roster serve uses {}: stop it before restoring, or pass --force to replace the \
                 database under it",
                target.display()
            ),
            Err(std::fs::TryLockError::WouldBlock) => None,
            Err(std::fs::TryLockError::Error(e)) => return Err(e).context(format!("cannot lock {}", target.display())),
        },
        Err(e) if e.kind() == ErrorKind::NotFound => None,
        Err(e) => return Err(e).context(format!("cannot open {}", target.display())),
    };
    let name = target.file_name().context("the database path names no file")?.to_string_lossy();
    let staged = target.with_file_name(format!("{name}.restoring"));
    // A copy left behind by an interrupted restore.
    let _ = std::fs::remove_file(&staged);
    let result = (|| {
        let mut copy = create_private(&staged)?;
        std::io::copy(&mut File::open(source)?, &mut copy)
            .with_context(|| format!("cannot copy {} to {}", source.display(), staged.display()))?;
        copy.sync_all()?;
        check_integrity(&staged)?;
        // The old database's WAL would otherwise be replayed onto the restored file, whose pages
        // it does not describe.
        for suffix in ["-wal", "-shm"] {
            match std::fs::remove_file(target.with_file_name(format!("{name}{suffix}"))) {
                Err(e) if e.kind() != ErrorKind::NotFound => {
                    return Err(e).context(format!("cannot remove the old database's {suffix} file"))
                }
                _ => {}
            }
        }
        std::fs::rename(&staged, &target)
            .with_context(|| format!("cannot move {} to {}", staged.display(), target.display()))?;
        sync_folder(&target)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&staged);
    }
    result
}

/// Marks the SQLite database as used by a serving node for as long as the process lives: a
/// shared `flock` on the database file (apart from SQLite's own locks), which `restore` cannot
/// take while any server holds it. The descriptor is never closed, because closing any
/// descriptor of the file would drop the POSIX locks that SQLite's connections in this process
/// hold on it.
pub fn hold_serving_lock(db: &Database) -> anyhow::Result<()> {
    let Some(path) = db.sqlite_file() else { return Ok(()) };
    let file = File::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
    match file.try_lock_shared() {
        Ok(()) => {
            std::mem::forget(file);
            Ok(())
        }
        Err(std::fs::TryLockError::WouldBlock) => {
            std::mem::forget(file);
            bail!("{} is being restored (roster restore holds it): start again once it is done", path.display())
        }
        Err(std::fs::TryLockError::Error(e)) => Err(e).context(format!("cannot lock {}", path.display())),
    }
}
