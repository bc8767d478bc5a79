//! Exports of deleted accounts waiting for their archive destination (`archive_exports`),
//! sealed at rest.
//!
//! An export holds everything a deleted account was and wrote, so it is stored sealed with
//! XChaCha20-Poly1305 under a key generated once and kept in `server_settings` (as cursors are),
//! the tenant's and the account's ids bound in as associated data. That keeps the export's text
//! out of the database files and backups' plain bytes; it does not protect against someone who
//! holds the whole database, key included (docs/operations.md).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::archive_exports;
use super::{DbConnection, DbError};

/// Name of the generated archive key in the `server_settings` table.
const ARCHIVE_KEY_SETTING: &str = "archive_key";

/// Where a pending export goes, stored by name in `destination`: the kind of destination the
/// tenant had when the account was deleted. The sink of the kind the tenant has when the export
/// is delivered takes it (a tenant has one kind at a time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// The tenant's archive directory on the server, one JSON Lines file per account.
    Directory,
    /// The tenant's archive URL, which receives the same JSON Lines as a signed POST.
    Url,
}

impl Destination {
    pub fn as_str(self) -> &'static str {
        match self {
            Destination::Directory => "directory",
            Destination::Url => "url",
        }
    }
}

/// A pending export, as stored (still sealed).
#[derive(Debug, Clone, Queryable)]
pub struct PendingExport {
    pub seq: i64,
    pub tenant_id: String,
    pub user_id: String,
    pub destination: String,
    sealed: String,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    /// Tries made to send it to a URL.
    pub attempts: i32,
    /// When the next try to a URL is due (None: at once); while a sender's request is out, the
    /// end of its lease.
    pub next_attempt_at: Option<NaiveDateTime>,
    pub last_error: Option<String>,
}

fn cipher(conn: &mut DbConnection) -> Result<XChaCha20Poly1305, DbError> {
    let key = super::settings::generated_key(conn, ARCHIVE_KEY_SETTING)?;
    Ok(XChaCha20Poly1305::new_from_slice(&key).expect("a 32-byte key"))
}

fn bound(tenant_id: &str, user_id: &str) -> Vec<u8> {
    format!("{tenant_id}/{user_id}").into_bytes()
}

/// Stores `export` (the file's bytes) sealed, pending for `destination` until `expires_at`, in the
/// caller's transaction.
pub fn queue(
    conn: &mut DbConnection,
    tenant_id: &str,
    user_id: &str,
    destination: Destination,
    export: &[u8],
    now: NaiveDateTime,
    expires_at: NaiveDateTime,
) -> Result<(), DbError> {
    let nonce: [u8; 24] = rand::random();
    let aad = bound(tenant_id, user_id);
    let sealed = cipher(conn)?
        .encrypt(&XNonce::from(nonce), Payload { msg: export, aad: &aad })
        .expect("encryption into memory cannot fail");
    diesel::insert_into(archive_exports::table)
        .values((
            archive_exports::tenant_id.eq(tenant_id),
            archive_exports::user_id.eq(user_id),
            archive_exports::destination.eq(destination.as_str()),
            archive_exports::sealed.eq(STANDARD.encode([nonce.as_slice(), &sealed].concat())),
            archive_exports::created_at.eq(now),
            archive_exports::expires_at.eq(expires_at),
        ))
        .execute(conn)?;
    Ok(())
}

/// The export's bytes. An export that does not open (altered, or sealed under another key) is
/// an error: it is never written out as something else.
pub fn open(conn: &mut DbConnection, pending: &PendingExport) -> Result<Vec<u8>, DbError> {
    let broken = || {
        DbError::from(diesel::result::Error::DeserializationError(
            format!("the pending export of {} does not open with this database's archive key", pending.user_id).into(),
        ))
    };
    let bytes = STANDARD.decode(&pending.sealed).map_err(|_| broken())?;
    let (nonce, sealed) = bytes.split_first_chunk::<24>().ok_or_else(broken)?;
    let aad = bound(&pending.tenant_id, &pending.user_id);
    cipher(conn)?.decrypt(&XNonce::from(*nonce), Payload { msg: sealed, aad: &aad }).map_err(|_| broken())
}

/// The tenant's oldest pending export after `after` (by `seq`), if any. On PostgreSQL it is
/// claimed (`FOR UPDATE SKIP LOCKED`) for the caller's transaction, so that several nodes each
/// take a different one; SQLite serves one node.
pub fn next(conn: &mut DbConnection, tenant_id: &str, after: i64) -> QueryResult<Option<PendingExport>> {
    let query = || {
        archive_exports::table
            .filter(archive_exports::tenant_id.eq(tenant_id))
            .filter(archive_exports::seq.gt(after))
            .order(archive_exports::seq)
            // The columns in the struct's order: a selection that names no backend, for both arms.
            .select(archive_exports::all_columns)
    };
    match conn {
        DbConnection::Postgresql(pg) => query().for_update().skip_locked().first(pg).optional(),
        DbConnection::Sqlite(c) => query().first(c).optional(),
    }
}

/// Claims, for a sender of URL exports, up to `limit` exports due at `now` of tenants that have an
/// archive URL: each is leased until `lease_until` (its next try is due then), so that another
/// sender, here or on another node (`FOR UPDATE SKIP LOCKED`), takes other ones, and one whose
/// sender died is tried again once the lease is over. Exports past their hold are left to the
/// sweep, which destroys them. Runs in the caller's transaction.
pub fn claim_due(
    conn: &mut DbConnection,
    now: NaiveDateTime,
    lease_until: NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<PendingExport>> {
    use super::schema::tenants;
    let query = || {
        archive_exports::table
            .filter(
                archive_exports::tenant_id
                    .eq_any(tenants::table.filter(tenants::archive_url.is_not_null()).select(tenants::id)),
            )
            .filter(archive_exports::next_attempt_at.is_null().or(archive_exports::next_attempt_at.le(now)))
            .filter(archive_exports::expires_at.gt(now))
            .order(archive_exports::seq)
            .limit(limit)
            .select(archive_exports::all_columns)
    };
    let claimed: Vec<PendingExport> = match conn {
        DbConnection::Postgresql(pg) => query().for_update().skip_locked().load(pg)?,
        DbConnection::Sqlite(c) => query().load(c)?,
    };
    let seqs: Vec<i64> = claimed.iter().map(|p| p.seq).collect();
    diesel::update(archive_exports::table.filter(archive_exports::seq.eq_any(&seqs)))
        .set(archive_exports::next_attempt_at.eq(lease_until))
        .execute(conn)?;
    Ok(claimed)
}

/// Records a failed try: one more attempt, the next one due at `next_attempt_at`.
pub fn retry_later(conn: &mut DbConnection, seq: i64, next_attempt_at: NaiveDateTime, error: &str) -> QueryResult<()> {
    diesel::update(archive_exports::table.find(seq))
        .set((
            archive_exports::attempts.eq(archive_exports::attempts + 1),
            archive_exports::next_attempt_at.eq(next_attempt_at),
            archive_exports::last_error.eq(error),
        ))
        .execute(conn)?;
    Ok(())
}

/// Whether any tenant with an archive URL has an export waiting, so that the sender has work.
pub fn any_for_url(conn: &mut DbConnection) -> QueryResult<bool> {
    use super::schema::tenants;
    diesel::select(diesel::dsl::exists(
        archive_exports::table.filter(
            archive_exports::tenant_id
                .eq_any(tenants::table.filter(tenants::archive_url.is_not_null()).select(tenants::id)),
        ),
    ))
    .get_result(conn)
}

/// Removes a pending export; false when it was already gone (another node finished it).
pub fn remove(conn: &mut DbConnection, seq: i64) -> QueryResult<bool> {
    Ok(diesel::delete(archive_exports::table.find(seq)).execute(conn)? == 1)
}

/// How many exports the tenant has waiting.
pub fn pending_count(conn: &mut DbConnection, tenant_id: &str) -> QueryResult<i64> {
    archive_exports::table.filter(archive_exports::tenant_id.eq(tenant_id)).count().get_result(conn)
}
