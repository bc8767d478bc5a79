//! IdP connections as the Admin Panel shows them: a tenant's tokens with when each was last
//! used, and the request log of each connection (`request_batches`: one row per connection and
//! write of the log, its requests packed together; written by `crate::requestlog`, already
//! masked).

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use super::schema::{request_batches, tokens};
use super::tokens::TokenRecord;
use super::{DbConnection, DbError};

/// One logged request: the path and detail are masked before they get here. `id` orders a
/// connection's requests and pages them: the batch's id times 2^16 plus the request's place in
/// it (a batch holds fewer, see `requestlog::MAX_PENDING`).
#[derive(Debug, Clone, PartialEq)]
pub struct LogRow {
    pub id: i64,
    pub at: NaiveDateTime,
    pub method: String,
    pub path: String,
    pub status: i32,
    pub duration_us: i64,
    pub scim_type: Option<String>,
    pub detail: Option<String>,
}

/// Requests of one batch at most: their place in it is the low 16 bits of [`LogRow::id`].
pub const BATCH_LIMIT: usize = 1 << 16;

/// A request as a batch's `entries` hold it (short names: they are repeated in every entry).
#[derive(Serialize, Deserialize)]
struct Stored<'a> {
    /// Microseconds since 1970, UTC.
    at: i64,
    #[serde(rename = "m", borrow)]
    method: std::borrow::Cow<'a, str>,
    #[serde(rename = "p", borrow)]
    path: std::borrow::Cow<'a, str>,
    #[serde(rename = "s")]
    status: i32,
    #[serde(rename = "d")]
    duration_us: i64,
    #[serde(rename = "t", default, skip_serializing_if = "Option::is_none", borrow)]
    scim_type: Option<std::borrow::Cow<'a, str>>,
    #[serde(rename = "e", default, skip_serializing_if = "Option::is_none", borrow)]
    detail: Option<std::borrow::Cow<'a, str>>,
}

/// The requests of one connection in one write of the log, oldest first.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = request_batches)]
pub struct Batch {
    pub tenant_id: String,
    pub connection: String,
    first_at: NaiveDateTime,
    last_at: NaiveDateTime,
    requests: i32,
    errors: i32,
    entries: String,
}

impl Batch {
    /// The batch of `rows` (their ids are not read): at least one, and fewer than
    /// [`BATCH_LIMIT`].
    pub fn new(tenant_id: String, connection: String, rows: &[LogRow]) -> Batch {
        assert!(!rows.is_empty() && rows.len() < BATCH_LIMIT, "a batch holds 1 to {BATCH_LIMIT} requests");
        let stored: Vec<Stored<'_>> = rows
            .iter()
            .map(|r| Stored {
                at: r.at.and_utc().timestamp_micros(),
                method: r.method.as_str().into(),
                path: r.path.as_str().into(),
                status: r.status,
                duration_us: r.duration_us,
                scim_type: r.scim_type.as_deref().map(Into::into),
                detail: r.detail.as_deref().map(Into::into),
            })
            .collect();
        Batch {
            tenant_id,
            connection,
            first_at: rows.iter().map(|r| r.at).min().expect("a batch holds a request"),
            last_at: rows.iter().map(|r| r.at).max().expect("a batch holds a request"),
            requests: rows.len() as i32,
            errors: rows.iter().filter(|r| r.status >= 400).count() as i32,
            entries: serde_json::to_string(&stored).expect("a log entry is JSON"),
        }
    }
}

/// Rows per insert statement on PostgreSQL: 7 values each stays far below its bind limit.
const INSERT_CHUNK: usize = 500;

pub fn insert_batches(conn: &mut DbConnection, batches: &[Batch]) -> Result<(), DbError> {
    match conn {
        // One row a statement: the statement is prepared once and kept, where a statement of
        // many rows is written and prepared again for every batch (its text changes with the
        // row count).
        DbConnection::Sqlite(c) => {
            for batch in batches {
                diesel::insert_into(request_batches::table).values(batch).execute(c)?;
            }
        }
        // Over the network, one round trip per chunk instead of one per row.
        DbConnection::Postgresql(c) => {
            for chunk in batches.chunks(INSERT_CHUNK) {
                diesel::insert_into(request_batches::table).values(chunk).execute(c)?;
            }
        }
    }
    Ok(())
}

/// Keeps the batches of one connection that hold its newest `keep` requests (the oldest of them
/// whole, so a few more may stay); returns how many batches were removed.
pub fn trim_connection(
    conn: &mut DbConnection,
    tenant_id: &str,
    connection: &str,
    keep: i64,
) -> Result<usize, DbError> {
    // Each batch holds a request at least: the newest `keep` batches hold the boundary.
    let newest: Vec<(i64, i32)> = request_batches::table
        .filter(request_batches::tenant_id.eq(tenant_id))
        .filter(request_batches::connection.eq(connection))
        .order(request_batches::id.desc())
        .limit(keep)
        .select((request_batches::id, request_batches::requests))
        .load(conn)?;
    let mut held = 0i64;
    let Some(oldest_kept) = newest.iter().find_map(|(id, requests)| {
        held += i64::from(*requests);
        (held >= keep).then_some(*id)
    }) else {
        return Ok(0);
    };
    Ok(diesel::delete(
        request_batches::table
            .filter(request_batches::tenant_id.eq(tenant_id))
            .filter(request_batches::connection.eq(connection))
            .filter(request_batches::id.lt(oldest_kept)),
    )
    .execute(conn)?)
}

/// Removes every batch whose newest request is older than `before`, of every tenant; returns
/// how many.
pub fn prune_before(conn: &mut DbConnection, before: NaiveDateTime) -> Result<usize, DbError> {
    Ok(diesel::delete(request_batches::table.filter(request_batches::last_at.lt(before))).execute(conn)?)
}

/// Marks a token used at `at`, unless a later use is already recorded (another node's).
pub fn mark_used(conn: &mut DbConnection, jti: &str, at: NaiveDateTime) -> Result<(), DbError> {
    diesel::update(tokens::table.find(jti).filter(tokens::last_used_at.is_null().or(tokens::last_used_at.lt(at))))
        .set(tokens::last_used_at.eq(at))
        .execute(conn)?;
    Ok(())
}

/// A tenant's bearer tokens issued by `roster token issue` or the panel (not the access tokens
/// of OAuth clients), newest first, with when each was last used.
pub fn tokens_of(
    conn: &mut DbConnection,
    tenant_id: &str,
) -> Result<Vec<(TokenRecord, Option<NaiveDateTime>)>, DbError> {
    Ok(tokens::table
        .filter(tokens::tenant_id.eq(tenant_id))
        .filter(tokens::client_id.is_null())
        .order(tokens::issued_at.desc())
        .select((TokenRecord::as_select(), tokens::last_used_at))
        .load(conn)?)
}

/// One token of the tenant, by jti; None for another tenant's.
pub fn token_of(
    conn: &mut DbConnection,
    tenant_id: &str,
    jti: &str,
) -> Result<Option<(TokenRecord, Option<NaiveDateTime>)>, DbError> {
    Ok(tokens::table
        .filter(tokens::tenant_id.eq(tenant_id))
        .filter(tokens::client_id.is_null())
        .filter(tokens::jti.eq(jti))
        .select((TokenRecord::as_select(), tokens::last_used_at))
        .first(conn)
        .optional()?)
}

/// Revokes one of the tenant's tokens; false when it has no such token or it was revoked already.
pub fn revoke_token(conn: &mut DbConnection, tenant_id: &str, jti: &str, now: NaiveDateTime) -> Result<bool, DbError> {
    Ok(diesel::update(
        tokens::table
            .filter(tokens::tenant_id.eq(tenant_id))
            .filter(tokens::jti.eq(jti))
            .filter(tokens::revoked_at.is_null()),
    )
    .set(tokens::revoked_at.eq(now))
    .execute(conn)?
        > 0)
}

/// A page of one connection's log, newest first: requests before `before` (an id), errors only
/// (status 400 and up) when asked.
pub fn log_page(
    conn: &mut DbConnection,
    tenant_id: &str,
    connection: &str,
    before: Option<i64>,
    errors_only: bool,
    limit: i64,
) -> Result<Vec<LogRow>, DbError> {
    /// Batches read at a time.
    const READ: i64 = 32;
    let limit = usize::try_from(limit).unwrap_or(0);
    let mut page = Vec::new();
    // The batches at or below this id are still to be read.
    let mut upto = before.map(|id| id >> 16);
    while page.len() < limit {
        let mut query = request_batches::table
            .filter(request_batches::tenant_id.eq(tenant_id))
            .filter(request_batches::connection.eq(connection))
            .into_boxed();
        if let Some(upto) = upto {
            query = query.filter(request_batches::id.le(upto));
        }
        if errors_only {
            query = query.filter(request_batches::errors.gt(0));
        }
        let batches: Vec<(i64, String)> = query
            .order(request_batches::id.desc())
            .limit(READ)
            .select((request_batches::id, request_batches::entries))
            .load(conn)?;
        let Some(&(last, _)) = batches.last() else { break };
        for (batch, entries) in &batches {
            let stored: Vec<Stored<'_>> =
                serde_json::from_str(entries).map_err(|e| diesel::result::Error::DeserializationError(Box::new(e)))?;
            for (place, entry) in stored.into_iter().enumerate().rev() {
                let id = (batch << 16) | place as i64;
                if before.is_some_and(|before| id >= before) || (errors_only && entry.status < 400) {
                    continue;
                }
                page.push(LogRow {
                    id,
                    at: chrono::DateTime::from_timestamp_micros(entry.at).unwrap_or_default().naive_utc(),
                    method: entry.method.into_owned(),
                    path: entry.path.into_owned(),
                    status: entry.status,
                    duration_us: entry.duration_us,
                    scim_type: entry.scim_type.map(std::borrow::Cow::into_owned),
                    detail: entry.detail.map(std::borrow::Cow::into_owned),
                });
                if page.len() == limit {
                    return Ok(page);
                }
            }
        }
        upto = Some(last - 1);
    }
    Ok(page)
}

/// Requests and failed requests (status 400 and up) of one connection since `since`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ErrorRate {
    pub requests: i64,
    pub errors: i64,
}

impl ErrorRate {
    /// The share of failing requests in percent, rounded down.
    pub fn percent(&self) -> i64 {
        if self.requests == 0 {
            0
        } else {
            self.errors * 100 / self.requests
        }
    }

    /// Most requests fail: what makes Entra quarantine a provisioning app.
    pub fn failing(&self) -> bool {
        self.requests > 0 && self.errors * 2 > self.requests
    }
}

/// Batches count whole: one written a moment after `since` may hold a request of a moment before
/// (a batch spans about a second).
pub fn error_rate(
    conn: &mut DbConnection,
    tenant_id: &str,
    connection: &str,
    since: NaiveDateTime,
) -> Result<ErrorRate, DbError> {
    use diesel::dsl::sum;
    let (requests, errors): (Option<i64>, Option<i64>) = request_batches::table
        .filter(request_batches::tenant_id.eq(tenant_id))
        .filter(request_batches::connection.eq(connection))
        .filter(request_batches::last_at.ge(since))
        .select((sum(request_batches::requests), sum(request_batches::errors)))
        .first(conn)?;
    Ok(ErrorRate { requests: requests.unwrap_or(0), errors: errors.unwrap_or(0) })
}
