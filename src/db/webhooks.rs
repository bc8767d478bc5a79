//! A tenant's webhook endpoints (docs/webhooks.md). Secrets are stored sealed; the delivery
//! engine opens them (`delivery::secret`).

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{deliveries, webhooks};
use super::DbConnection;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = webhooks)]
pub struct WebhookRow {
    pub id: String,
    pub tenant_id: String,
    pub url: String,
    /// Comma-separated event types; empty: every type.
    pub event_types: String,
    pub allow_private: bool,
    /// Sealed signing secret.
    pub secret: String,
    /// The secret before the last rotation, sealed, signed with too until it expires.
    pub previous_secret: Option<String>,
    pub previous_secret_expires_at: Option<NaiveDateTime>,
    /// The tenant's events up to this number have their deliveries.
    pub after_event: i64,
    pub created_at: NaiveDateTime,
    /// [`WEBHOOK`], [`SET_PUSH`] or [`SET_POLL`].
    pub kind: String,
    /// A SET stream's `aud`.
    pub audience: Option<String>,
}

/// A Standard Webhooks endpoint (docs/webhooks.md).
pub const WEBHOOK: &str = "webhook";
/// A SET stream pushed to its URL (RFC 8935; docs/security-events.md).
pub const SET_PUSH: &str = "set-push";
/// A SET stream its receiver polls (RFC 8936).
pub const SET_POLL: &str = "set-poll";

impl WebhookRow {
    pub fn is_stream(&self) -> bool {
        self.kind != WEBHOOK
    }

    /// Whether the endpoint asked for events of type `kind` (a stream: SETs of that event URI).
    pub fn wants(&self, kind: &str) -> bool {
        self.event_types.is_empty() || self.event_types.split(',').any(|t| t == kind)
    }
}

/// Whether any tenant has a webhook: with none, there is nothing to fan out or send.
pub fn any(conn: &mut DbConnection) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(webhooks::table.select(webhooks::id))).get_result(conn)
}

pub fn insert(conn: &mut DbConnection, row: &WebhookRow) -> QueryResult<()> {
    diesel::insert_into(webhooks::table).values(row).execute(conn)?;
    Ok(())
}

/// A tenant's destinations of one kind ([`WEBHOOK`], or a stream kind), oldest first;
/// `streams` picks both stream kinds instead.
pub fn of_tenant(conn: &mut DbConnection, tenant_id: &str, streams: bool) -> QueryResult<Vec<WebhookRow>> {
    let kinds: &[&str] = if streams { &[SET_PUSH, SET_POLL] } else { &[WEBHOOK] };
    webhooks::table
        .filter(webhooks::tenant_id.eq(tenant_id))
        .filter(webhooks::kind.eq_any(kinds))
        .order((webhooks::created_at, webhooks::id))
        .select(WebhookRow::as_select())
        .load(conn)
}

/// Every webhook's id, tenant and the last event it has deliveries for: the delivery engine's
/// walk over them.
pub fn all_positions(conn: &mut DbConnection) -> QueryResult<Vec<(String, String, i64)>> {
    webhooks::table.order(webhooks::id).select((webhooks::id, webhooks::tenant_id, webhooks::after_event)).load(conn)
}

/// A tenant's webhook by id; another tenant's id finds nothing.
pub fn by_id(conn: &mut DbConnection, tenant_id: &str, id: &str) -> QueryResult<Option<WebhookRow>> {
    webhooks::table
        .filter(webhooks::tenant_id.eq(tenant_id))
        .filter(webhooks::id.eq(id))
        .select(WebhookRow::as_select())
        .first(conn)
        .optional()
}

/// The webhook, locked for the rest of the transaction; on PostgreSQL `None` also when another
/// node holds it (`SKIP LOCKED`): that node is giving its events their deliveries. SQLite's write
/// transaction already excludes every other writer.
pub fn lock(conn: &mut DbConnection, id: &str) -> QueryResult<Option<WebhookRow>> {
    match conn {
        DbConnection::Sqlite(c) => webhooks::table.find(id).select(WebhookRow::as_select()).first(c).optional(),
        DbConnection::Postgresql(c) => {
            webhooks::table.find(id).select(WebhookRow::as_select()).for_update().skip_locked().first(c).optional()
        }
    }
}

/// A tenant's webhook, locked for the rest of the transaction, waiting for another node that
/// holds it (for an operator's change, which must not be skipped).
pub fn lock_waiting(conn: &mut DbConnection, tenant_id: &str, id: &str) -> QueryResult<Option<WebhookRow>> {
    match conn {
        DbConnection::Sqlite(c) => webhooks::table
            .filter(webhooks::tenant_id.eq(tenant_id))
            .filter(webhooks::id.eq(id))
            .select(WebhookRow::as_select())
            .first(c)
            .optional(),
        DbConnection::Postgresql(c) => webhooks::table
            .filter(webhooks::tenant_id.eq(tenant_id))
            .filter(webhooks::id.eq(id))
            .select(WebhookRow::as_select())
            .for_update()
            .first(c)
            .optional(),
    }
}

pub fn set_after_event(conn: &mut DbConnection, id: &str, after: i64) -> QueryResult<()> {
    diesel::update(webhooks::table.find(id)).set(webhooks::after_event.eq(after)).execute(conn)?;
    Ok(())
}

/// Makes `secret` the signing secret, keeping the one it replaces live until `keep_until`.
pub fn rotate(
    conn: &mut DbConnection,
    tenant_id: &str,
    id: &str,
    secret: &str,
    previous: &str,
    keep_until: NaiveDateTime,
) -> QueryResult<bool> {
    let changed = diesel::update(webhooks::table.filter(webhooks::tenant_id.eq(tenant_id)).filter(webhooks::id.eq(id)))
        .set((
            webhooks::secret.eq(secret),
            webhooks::previous_secret.eq(previous),
            webhooks::previous_secret_expires_at.eq(keep_until),
        ))
        .execute(conn)?;
    Ok(changed == 1)
}

/// Removes a tenant's webhook (or, with `streams`, SET stream) and its delivery log; false
/// when the tenant has no such destination of that kind.
pub fn remove(conn: &mut DbConnection, tenant_id: &str, id: &str, streams: bool) -> QueryResult<bool> {
    let kinds: &[&str] = if streams { &[SET_PUSH, SET_POLL] } else { &[WEBHOOK] };
    super::write_transaction(conn, |conn| {
        let removed = diesel::delete(
            webhooks::table
                .filter(webhooks::tenant_id.eq(tenant_id))
                .filter(webhooks::id.eq(id))
                .filter(webhooks::kind.eq_any(kinds)),
        )
        .execute(conn)?;
        if removed == 1 {
            diesel::delete(deliveries::table.filter(deliveries::webhook_id.eq(id))).execute(conn)?;
        }
        Ok(removed == 1)
    })
}
