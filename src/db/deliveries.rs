//! Deliveries of outbox events to a destination, and their log (docs/webhooks.md). A row names
//! its event by number and holds no part of it: the body is built from the event when sent.
//!
//! A row is `pending` until it is `delivered`, `dead` (its last try failed) or `dropped` (its
//! event was purged first). A sender claims due rows for a lease: on PostgreSQL with
//! `FOR UPDATE SKIP LOCKED`, so that nodes sharing the database claim different rows; a node
//! that dies holding rows leaves them to be claimed again when the lease runs out.

use chrono::NaiveDateTime;
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::Bool;

use super::schema::{deliveries, events};
use super::DbConnection;

pub const PENDING: &str = "pending";
pub const DELIVERED: &str = "delivered";
pub const DEAD: &str = "dead";
pub const DROPPED: &str = "dropped";
/// A poll stream's SET, sent on each poll until the receiver acknowledges it (RFC 8936).
pub const AWAITING: &str = "awaiting";
/// A poll stream's SET the receiver reported an error for (RFC 8936 `setErrs`).
pub const REJECTED: &str = "rejected";

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = deliveries)]
pub struct DeliveryRow {
    pub id: i64,
    pub tenant_id: String,
    pub webhook_id: String,
    pub event_seq: i64,
    pub user_id: Option<String>,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: NaiveDateTime,
    pub lease_owner: Option<String>,
    pub lease_until: Option<NaiveDateTime>,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub last_duration_ms: Option<i64>,
    pub created_at: NaiveDateTime,
    pub finished_at: Option<NaiveDateTime>,
    /// Which of its event's SETs a stream's delivery is (0 for a webhook's).
    pub part: i32,
}

/// A delivery to add: an event (one of its SETs, for a stream) and the account it is about.
#[derive(Debug, Clone)]
pub struct Queued {
    pub event_seq: i64,
    pub part: i32,
    pub user_id: Option<String>,
}

/// Adds a delivery to `webhook_id` of each queued event, in `status` ([`PENDING`], or
/// [`AWAITING`] for a poll stream), due at once, in the order given (which is the order they
/// are sent in for one account).
pub fn enqueue(
    conn: &mut DbConnection,
    tenant_id: &str,
    webhook_id: &str,
    events: &[Queued],
    status: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    let rows: Vec<_> = events
        .iter()
        .map(|q| {
            (
                deliveries::tenant_id.eq(tenant_id),
                deliveries::webhook_id.eq(webhook_id),
                deliveries::event_seq.eq(q.event_seq),
                deliveries::part.eq(q.part),
                deliveries::user_id.eq(q.user_id.as_deref()),
                deliveries::status.eq(status),
                deliveries::next_attempt_at.eq(now),
                deliveries::created_at.eq(now),
            )
        })
        .collect();
    let mut added = 0;
    // In chunks: SQLite binds at most 32766 values per statement.
    for chunk in rows.chunks(500) {
        added += on_backend!(conn, c => diesel::insert_into(deliveries::table).values(chunk).execute(c))?;
    }
    Ok(added)
}

/// A poll stream's SETs awaiting acknowledgement, oldest first, up to `limit`.
pub fn awaiting(conn: &mut DbConnection, webhook_id: &str, limit: i64) -> QueryResult<Vec<DeliveryRow>> {
    deliveries::table
        .filter(deliveries::webhook_id.eq(webhook_id))
        // Literal text, so that the partial index `deliveries_awaiting` serves it.
        .filter(sql::<Bool>("deliveries.status = 'awaiting'"))
        .order(deliveries::id)
        .limit(limit)
        .select(DeliveryRow::as_select())
        .load(conn)
}

/// Ends a poll stream's awaiting delivery of `(event, part)` as `status` ([`DELIVERED`]: acknowledged,
/// [`REJECTED`] with the receiver's `error`, [`DROPPED`]: its event was purged); false when no
/// such delivery awaits (already acknowledged, or never sent to this stream).
pub fn finish_awaiting(
    conn: &mut DbConnection,
    webhook_id: &str,
    event_seq: i64,
    part: i32,
    status: &str,
    error: Option<&str>,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    let changed = diesel::update(
        deliveries::table
            .filter(deliveries::webhook_id.eq(webhook_id))
            .filter(deliveries::event_seq.eq(event_seq))
            .filter(deliveries::part.eq(part))
            .filter(deliveries::status.eq(AWAITING)),
    )
    .set((deliveries::status.eq(status), deliveries::last_error.eq(error), deliveries::finished_at.eq(now)))
    .execute(conn)?;
    Ok(changed > 0)
}

/// Counts a poll of the delivery as a try (the delivery log's `attempts`).
pub fn count_polled(conn: &mut DbConnection, ids: &[i64]) -> QueryResult<()> {
    diesel::update(deliveries::table.filter(deliveries::id.eq_any(ids)))
        .set(deliveries::attempts.eq(deliveries::attempts + 1))
        .execute(conn)?;
    Ok(())
}

/// Claims up to `limit` due deliveries for `owner` until `lease_until`, oldest first. A
/// delivery waits while an earlier one of the same account to the same endpoint is pending, so
/// one account's events reach an endpoint in order; a claim takes at most the first of each.
pub fn claim(
    conn: &mut DbConnection,
    now: NaiveDateTime,
    owner: &str,
    lease_until: NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<DeliveryRow>> {
    super::write_transaction(conn, |conn| {
        let earlier = diesel::alias!(deliveries as earlier);
        // `status = 'pending'` as literal text, not a bound value: only then can either database
        // prove that the partial indexes on pending rows serve the query.
        macro_rules! due {
            () => {
                deliveries::table
                    .filter(sql::<Bool>("deliveries.status = 'pending'"))
                    .filter(deliveries::next_attempt_at.le(now))
                    .filter(deliveries::lease_until.is_null().or(deliveries::lease_until.lt(now)))
                    .filter(diesel::dsl::not(diesel::dsl::exists(
                        earlier
                            .filter(earlier.field(deliveries::webhook_id).eq(deliveries::webhook_id))
                            .filter(earlier.field(deliveries::user_id).eq(deliveries::user_id))
                            .filter(sql::<Bool>("earlier.status = 'pending'"))
                            .filter(earlier.field(deliveries::id).lt(deliveries::id)),
                    )))
                    .order(deliveries::id)
                    .limit(limit)
                    .select(deliveries::id)
            };
        }
        let ids: Vec<i64> = match conn {
            DbConnection::Sqlite(c) => due!().load(c)?,
            DbConnection::Postgresql(c) => due!().for_update().skip_locked().load(c)?,
        };
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        diesel::update(deliveries::table.filter(deliveries::id.eq_any(&ids)))
            .set((deliveries::lease_owner.eq(owner), deliveries::lease_until.eq(lease_until)))
            .execute(conn)?;
        deliveries::table
            .filter(deliveries::id.eq_any(&ids))
            .order(deliveries::id)
            .select(DeliveryRow::as_select())
            .load(conn)
    })
}

/// What became of one try.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// The new status: [`PENDING`] (tried again at `next_attempt_at`), [`DELIVERED`], [`DEAD`]
    /// or [`DROPPED`].
    pub status: &'static str,
    pub next_attempt_at: NaiveDateTime,
    /// The receiver's HTTP status, when it answered.
    pub http_status: Option<i32>,
    pub error: Option<String>,
    pub duration_ms: Option<i64>,
    /// Whether a request was sent (a dropped delivery sends none).
    pub tried: bool,
}

/// Records a try of a delivery `owner` holds; false when its lease ran out and another sender
/// claimed it meanwhile (that sender records its own try).
pub fn record(
    conn: &mut DbConnection,
    id: i64,
    owner: &str,
    attempt: &Attempt,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    let finished = (attempt.status != PENDING).then_some(now);
    let changed =
        diesel::update(deliveries::table.filter(deliveries::id.eq(id)).filter(deliveries::lease_owner.eq(owner)))
            .set((
                deliveries::status.eq(attempt.status),
                deliveries::attempts.eq(deliveries::attempts + i32::from(attempt.tried)),
                deliveries::next_attempt_at.eq(attempt.next_attempt_at),
                deliveries::lease_owner.eq(None::<String>),
                deliveries::lease_until.eq(None::<NaiveDateTime>),
                deliveries::last_status.eq(attempt.http_status),
                deliveries::last_error.eq(attempt.error.as_deref()),
                deliveries::last_duration_ms.eq(attempt.duration_ms),
                deliveries::finished_at.eq(finished),
            ))
            .execute(conn)?;
    Ok(changed == 1)
}

/// A tenant's delivery log, newest first, optionally of one webhook and in one status.
pub fn log(
    conn: &mut DbConnection,
    tenant_id: &str,
    webhook_id: Option<&str>,
    status: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<DeliveryRow>> {
    let mut query = deliveries::table.filter(deliveries::tenant_id.eq(tenant_id)).into_boxed();
    if let Some(webhook_id) = webhook_id {
        query = query.filter(deliveries::webhook_id.eq(webhook_id.to_owned()));
    }
    if let Some(status) = status {
        query = query.filter(deliveries::status.eq(status.to_owned()));
    }
    query.order(deliveries::id.desc()).limit(limit).select(DeliveryRow::as_select()).load(conn)
}

/// One webhook's deliveries, newest first, `limit` of them with ids below `before` (the cursor
/// of the panel's log: the last id of the page before).
pub fn page_of(
    conn: &mut DbConnection,
    tenant_id: &str,
    webhook_id: &str,
    before: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<DeliveryRow>> {
    let mut query = deliveries::table
        .filter(deliveries::tenant_id.eq(tenant_id))
        .filter(deliveries::webhook_id.eq(webhook_id))
        .into_boxed();
    if let Some(before) = before {
        query = query.filter(deliveries::id.lt(before));
    }
    query.order(deliveries::id.desc()).limit(limit).select(DeliveryRow::as_select()).load(conn)
}

/// How many deliveries are pending, and when the oldest of them was queued.
pub fn backlog(conn: &mut DbConnection) -> QueryResult<(i64, Option<NaiveDateTime>)> {
    deliveries::table
        .filter(sql::<Bool>("status = 'pending'"))
        .select((diesel::dsl::count_star(), diesel::dsl::min(deliveries::created_at)))
        .first(conn)
}

/// The number of the tenant's oldest event that a delivery still waits to send, if any: the
/// event retention keeps it and every later event (a retry may come a day after the event).
/// A poll stream's SETs awaiting acknowledgement do not hold events back — a receiver that
/// stopped polling would keep them for good —: one whose event is purged is dropped.
pub fn lowest_pending(conn: &mut DbConnection, tenant_id: &str) -> QueryResult<Option<i64>> {
    deliveries::table
        .filter(deliveries::tenant_id.eq(tenant_id))
        .filter(sql::<Bool>("deliveries.status = 'pending'"))
        .select(diesel::dsl::min(deliveries::event_seq))
        .first(conn)
}

/// Removes the tenant's finished deliveries (delivered, dead, dropped) from the log once they
/// are as old as the events are kept (`finished_before`; None: events are kept for good) or
/// their event is gone, and returns how many went.
pub fn prune_finished(
    conn: &mut DbConnection,
    tenant_id: &str,
    finished_before: Option<NaiveDateTime>,
) -> QueryResult<usize> {
    let event_gone = diesel::dsl::not(diesel::dsl::exists(
        events::table
            .filter(events::tenant_id.eq(deliveries::tenant_id))
            .filter(events::tenant_seq.eq(deliveries::event_seq.nullable())),
    ));
    let finished = deliveries::table
        .filter(deliveries::tenant_id.eq(tenant_id))
        .filter(deliveries::status.ne_all([PENDING, AWAITING]))
        .into_boxed();
    let expired = match finished_before {
        Some(cutoff) => finished.filter(deliveries::finished_at.lt(cutoff).or(event_gone)),
        None => finished.filter(event_gone),
    };
    let ids: Vec<i64> = expired.select(deliveries::id).load(conn)?;
    let mut pruned = 0;
    for chunk in ids.chunks(500) {
        pruned += diesel::delete(deliveries::table.filter(deliveries::id.eq_any(chunk))).execute(conn)?;
    }
    Ok(pruned)
}
