//! IdP connections as the Admin Panel shows them: a tenant's tokens with when each was last
//! used, and the request log of each connection (`request_log`, written in batches by
//! `crate::requestlog`, already masked).

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{request_log, tokens};
use super::tokens::TokenRecord;
use super::{DbConnection, DbError};

/// One logged request, as stored: the path and detail are masked before they get here.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = request_log)]
pub struct LogRow {
    #[diesel(skip_insertion)]
    pub id: i64,
    pub tenant_id: String,
    pub connection: String,
    pub at: NaiveDateTime,
    pub method: String,
    pub path: String,
    pub status: i32,
    pub duration_us: i64,
    pub scim_type: Option<String>,
    pub detail: Option<String>,
}

/// Rows per insert statement: 9 values each stays far below SQLite's bound variables limit.
const INSERT_CHUNK: usize = 500;

pub fn insert_log(conn: &mut DbConnection, rows: &[LogRow]) -> Result<(), DbError> {
    match conn {
        // One row a statement: the statement is prepared once and kept, where a statement of
        // many rows is written and prepared again for every batch (its text changes with the
        // row count) and cost the server more than the requests it logged.
        DbConnection::Sqlite(c) => {
            for row in rows {
                diesel::insert_into(request_log::table).values(row).execute(c)?;
            }
        }
        // Over the network, one round trip per chunk instead of one per row.
        DbConnection::Postgresql(c) => {
            for chunk in rows.chunks(INSERT_CHUNK) {
                diesel::insert_into(request_log::table).values(chunk).execute(c)?;
            }
        }
    }
    Ok(())
}

/// Keeps the newest `keep` rows of one connection; returns how many were removed.
pub fn trim_connection(
    conn: &mut DbConnection,
    tenant_id: &str,
    connection: &str,
    keep: i64,
) -> Result<usize, DbError> {
    let oldest_kept: Option<i64> = request_log::table
        .filter(request_log::tenant_id.eq(tenant_id))
        .filter(request_log::connection.eq(connection))
        .order(request_log::id.desc())
        .offset(keep)
        .select(request_log::id)
        .first(conn)
        .optional()?;
    let Some(beyond) = oldest_kept else { return Ok(0) };
    Ok(diesel::delete(
        request_log::table
            .filter(request_log::tenant_id.eq(tenant_id))
            .filter(request_log::connection.eq(connection))
            .filter(request_log::id.le(beyond)),
    )
    .execute(conn)?)
}

/// Removes every logged request older than `before`, of every tenant.
pub fn prune_before(conn: &mut DbConnection, before: NaiveDateTime) -> Result<usize, DbError> {
    Ok(diesel::delete(request_log::table.filter(request_log::at.lt(before))).execute(conn)?)
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

/// A page of one connection's log, newest first: rows before `before` (an id), errors only
/// (status 400 and up) when asked.
pub fn log_page(
    conn: &mut DbConnection,
    tenant_id: &str,
    connection: &str,
    before: Option<i64>,
    errors_only: bool,
    limit: i64,
) -> Result<Vec<LogRow>, DbError> {
    let mut query = request_log::table
        .filter(request_log::tenant_id.eq(tenant_id))
        .filter(request_log::connection.eq(connection))
        .into_boxed();
    if let Some(before) = before {
        query = query.filter(request_log::id.lt(before));
    }
    if errors_only {
        query = query.filter(request_log::status.ge(400));
    }
    Ok(query.order(request_log::id.desc()).limit(limit).select(LogRow::as_select()).load(conn)?)
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

pub fn error_rate(
    conn: &mut DbConnection,
    tenant_id: &str,
    connection: &str,
    since: NaiveDateTime,
) -> Result<ErrorRate, DbError> {
    let recent = || {
        request_log::table
            .filter(request_log::tenant_id.eq(tenant_id))
            .filter(request_log::connection.eq(connection))
            .filter(request_log::at.ge(since))
    };
    let requests = recent().count().get_result(conn)?;
    let errors =
        if requests == 0 { 0 } else { recent().filter(request_log::status.ge(400)).count().get_result(conn)? };
    Ok(ErrorRate { requests, errors })
}
