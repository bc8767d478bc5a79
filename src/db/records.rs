//! The outbox of lifecycle events, the audit log, and the tombstones of deleted accounts.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde_json::Value;

use super::schema::{audit_log, events, tombstones};
use super::DbConnection;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = events)]
pub struct EventRow {
    pub seq: i64,
    pub kind: String,
    pub user_id: Option<String>,
    pub payload: String,
    pub created_at: NaiveDateTime,
}

pub fn add_event(
    conn: &mut DbConnection,
    tenant_id: &str,
    kind: &str,
    user_id: Option<&str>,
    payload: &Value,
    now: NaiveDateTime,
) -> QueryResult<()> {
    diesel::insert_into(events::table)
        .values((
            events::tenant_id.eq(tenant_id),
            events::kind.eq(kind),
            events::user_id.eq(user_id),
            events::payload.eq(payload.to_string()),
            events::created_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

/// Events after `after`, oldest first.
pub fn events_after(conn: &mut DbConnection, tenant_id: &str, after: i64, limit: i64) -> QueryResult<Vec<EventRow>> {
    events::table
        .filter(events::tenant_id.eq(tenant_id))
        .filter(events::seq.gt(after))
        .order(events::seq)
        .limit(limit)
        .select(EventRow::as_select())
        .load(conn)
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = audit_log)]
pub struct AuditRow {
    pub seq: i64,
    pub tenant_id: String,
    pub actor: String,
    pub action: String,
    pub user_id: String,
    pub state_before: Option<String>,
    pub state_after: Option<String>,
    pub at: NaiveDateTime,
}

/// One audited transition: who did what to which account, from which state to which.
pub struct Audit<'a> {
    pub tenant_id: &'a str,
    pub actor: &'a str,
    pub action: &'a str,
    pub user_id: &'a str,
    pub before: Option<&'a str>,
    pub after: Option<&'a str>,
    pub at: NaiveDateTime,
}

pub fn audit(conn: &mut DbConnection, entry: &Audit<'_>) -> QueryResult<()> {
    diesel::insert_into(audit_log::table)
        .values((
            audit_log::tenant_id.eq(entry.tenant_id),
            audit_log::actor.eq(entry.actor),
            audit_log::action.eq(entry.action),
            audit_log::user_id.eq(entry.user_id),
            audit_log::state_before.eq(entry.before),
            audit_log::state_after.eq(entry.after),
            audit_log::at.eq(entry.at),
        ))
        .execute(conn)?;
    Ok(())
}

/// Audit entries after `after`, oldest first; all tenants when `tenant_id` is None.
pub fn audit_after(
    conn: &mut DbConnection,
    tenant_id: Option<&str>,
    after: i64,
    limit: i64,
) -> QueryResult<Vec<AuditRow>> {
    let mut query = audit_log::table.filter(audit_log::seq.gt(after)).into_boxed();
    if let Some(t) = tenant_id {
        query = query.filter(audit_log::tenant_id.eq(t.to_owned()));
    }
    query.order(audit_log::seq).limit(limit).select(AuditRow::as_select()).load(conn)
}

pub fn add_tombstone(conn: &mut DbConnection, tenant_id: &str, user_id: &str, at: NaiveDateTime) -> QueryResult<()> {
    diesel::insert_into(tombstones::table)
        .values((tombstones::tenant_id.eq(tenant_id), tombstones::user_id.eq(user_id), tombstones::deleted_at.eq(at)))
        .execute(conn)?;
    Ok(())
}

pub fn tombstone(conn: &mut DbConnection, tenant_id: &str, user_id: &str) -> QueryResult<Option<NaiveDateTime>> {
    tombstones::table
        .filter(tombstones::tenant_id.eq(tenant_id))
        .filter(tombstones::user_id.eq(user_id))
        .select(tombstones::deleted_at)
        .first(conn)
        .optional()
}
