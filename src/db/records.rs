//! The outbox of lifecycle events, the audit log, and the tombstones of deleted accounts.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde_json::Value;

use super::schema::{audit_log, events, tombstones};
use super::DbConnection;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = events)]
pub struct EventRow {
    /// The event's number among its tenant's events: its id in the feed.
    #[diesel(select_expression = events::tenant_seq.assume_not_null())]
    pub tenant_seq: i64,
    pub kind: String,
    pub user_id: Option<String>,
    pub payload: String,
    pub created_at: NaiveDateTime,
    /// What the events of one transaction share (`None` for events older than it).
    pub txn: Option<i64>,
}

pub fn add_event(
    conn: &mut DbConnection,
    tenant_id: &str,
    kind: &str,
    user_id: Option<&str>,
    payload: &Value,
    now: NaiveDateTime,
) -> QueryResult<()> {
    insert_event(conn, tenant_id, kind, user_id, &payload.to_string(), now)
}

fn insert_event(
    conn: &mut DbConnection,
    tenant_id: &str,
    kind: &str,
    user_id: Option<&str>,
    payload: &str,
    now: NaiveDateTime,
) -> QueryResult<()> {
    match conn {
        DbConnection::Sqlite(c) => {
            // Outside a write transaction an event is a transaction of its own.
            let txn = super::txn::sqlite_txn().unwrap_or_else(|| rand::random::<i64>() & i64::MAX);
            SqliteEvent { tenant_id, kind, user_id, payload, at: &now, txn }.execute(c)?
        }
        // Numbered once committed, by the reader; `txn` is the column's default, the transaction id.
        DbConnection::Postgresql(c) => {
            let values = (
                events::tenant_id.eq(tenant_id),
                events::kind.eq(kind),
                events::user_id.eq(user_id),
                events::payload.eq(payload),
                events::created_at.eq(now),
            );
            diesel::insert_into(events::table).values(values).execute(c)?
        }
    };
    Ok(())
}

/// The member of a `user.deactivated` event's payload that lists the ids of the sessions it
/// revoked. Session ids are not personal data: scrubbing keeps them, so the number of SETs of
/// the event never changes.
pub const REVOKED_SESSIONS: &str = "revokedSessions";

/// What a write to one account records with it: lifecycle events, in order, and for a
/// transition its audit entry. A user write on PostgreSQL writes them in its own statement
/// (`users::insert`, `users::update`); [`Records::write`] writes them as statements of their own.
#[derive(Debug, Default)]
pub struct Records<'a> {
    /// (kind, payload as JSON text)
    pub events: Vec<(&'a str, String)>,
    pub transition: Option<Transition<'a>>,
}

/// An audited change of an account's state: who did what, from which state to which.
#[derive(Debug, Clone, Copy)]
pub struct Transition<'a> {
    pub actor: &'a str,
    pub action: &'a str,
    pub before: Option<&'a str>,
    pub after: Option<&'a str>,
}

impl<'a> Records<'a> {
    pub fn event(&mut self, kind: &'a str, payload: &Value) {
        self.events.push((kind, payload.to_string()));
    }

    /// These records with the ids of the sessions a deactivation revoked, `revoked` (in order),
    /// in its `user.deactivated` event (as `revokedSessions`): a SET stream derives one CAEP
    /// session-revoked SET per id from the committed event (`delivery/set.rs`). The member is
    /// spliced in as the payload's last, before its closing brace, as PostgreSQL's
    /// `roster_write_user` does it (migration `000027_deactivation_in_one_statement`), so that
    /// both backends store the same text.
    pub fn with_revoked_sessions(&self, revoked: &[String]) -> Records<'a> {
        let events = self
            .events
            .iter()
            .map(|(kind, payload)| match payload.strip_suffix('}') {
                Some(open) if *kind == "user.deactivated" => {
                    let ids = Value::from(revoked.to_vec());
                    (*kind, format!("{open},\"{REVOKED_SESSIONS}\":{ids}}}"))
                }
                _ => (*kind, payload.clone()),
            })
            .collect();
        Records { events, transition: self.transition }
    }

    /// Writes them for the account `user_id` as statements of their own: a transition's one
    /// event and its audit entry as one statement on PostgreSQL (where each statement is a
    /// round trip), anything else a statement per row.
    pub fn write(&self, conn: &mut DbConnection, tenant_id: &str, user_id: &str, at: NaiveDateTime) -> QueryResult<()> {
        let entry = self.transition.map(|t| Audit {
            tenant_id,
            actor: t.actor,
            action: t.action,
            user_id,
            before: t.before,
            after: t.after,
            at,
        });
        if let (DbConnection::Postgresql(pg), [(kind, payload)], Some(entry)) = (&mut *conn, &self.events[..], &entry) {
            EventAndAudit { kind, payload, entry }.execute(pg)?;
            return Ok(());
        }
        for (kind, payload) in &self.events {
            insert_event(conn, tenant_id, kind, Some(user_id), payload, at)?;
        }
        if let Some(entry) = &entry {
            audit(conn, entry)?;
        }
        Ok(())
    }
}

/// The tenant's events numbered after `after`, in their order. On PostgreSQL the events that
/// have committed since the last read are numbered first (see the migration `event_positions`):
/// a number is given only to a committed event and after every number given before, so a
/// poller that continues after the last number it saw misses nothing and sees nothing twice.
pub fn events_after(conn: &mut DbConnection, tenant_id: &str, after: i64, limit: i64) -> QueryResult<Vec<EventRow>> {
    number_committed(conn, "roster_number_events", tenant_id)?;
    events::table
        .filter(events::tenant_id.eq(tenant_id))
        .filter(events::tenant_seq.gt(after))
        .order(events::tenant_seq)
        .limit(limit)
        .select(EventRow::as_select())
        .load(conn)
}

/// Numbers a tenant's committed, unnumbered rows through `function` on PostgreSQL; SQLite numbers
/// rows as they are inserted, its write transactions being one at a time.
fn number_committed(conn: &mut DbConnection, function: &str, tenant_id: &str) -> QueryResult<()> {
    if let DbConnection::Postgresql(pg) = conn {
        diesel::sql_query(format!("SELECT {function}($1)"))
            .bind::<diesel::sql_types::Text, _>(tenant_id)
            .execute(pg)?;
    }
    Ok(())
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = audit_log)]
pub struct AuditRow {
    /// The entry's number among its tenant's entries: its id as the tenant sees it.
    #[diesel(select_expression = audit_log::tenant_seq.assume_not_null())]
    pub tenant_seq: i64,
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

impl Audit<'_> {
    /// Binds the entry's columns, in the order `tenant_id, actor, action, user_id, state_before,
    /// state_after, at`, separated by commas: the values of either backend's fixed insert.
    fn push_values<'b, DB>(&'b self, mut out: diesel::query_builder::AstPass<'_, 'b, DB>) -> QueryResult<()>
    where
        DB: diesel::backend::Backend
            + diesel::sql_types::HasSqlType<diesel::sql_types::Text>
            + diesel::sql_types::HasSqlType<diesel::sql_types::Timestamp>,
        str: diesel::serialize::ToSql<diesel::sql_types::Text, DB>,
        NaiveDateTime: diesel::serialize::ToSql<diesel::sql_types::Timestamp, DB>,
    {
        use diesel::sql_types::{Nullable, Text, Timestamp};
        for text in [self.tenant_id, self.actor, self.action, self.user_id] {
            out.push_bind_param::<Text, _>(text)?;
            out.push_sql(", ");
        }
        out.push_bind_param::<Nullable<Text>, _>(&self.before)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<Text>, _>(&self.after)?;
        out.push_sql(", ");
        out.push_bind_param::<Timestamp, _>(&self.at)
    }
}

pub fn audit(conn: &mut DbConnection, entry: &Audit<'_>) -> QueryResult<()> {
    match conn {
        // Numbered in the insert, as events are (see `SqliteEvent`).
        DbConnection::Sqlite(c) => SqliteAudit(entry).execute(c)?,
        DbConnection::Postgresql(c) => {
            let values = (
                audit_log::tenant_id.eq(entry.tenant_id),
                audit_log::actor.eq(entry.actor),
                audit_log::action.eq(entry.action),
                audit_log::user_id.eq(entry.user_id),
                audit_log::state_before.eq(entry.before),
                audit_log::state_after.eq(entry.after),
                audit_log::at.eq(entry.at),
            );
            diesel::insert_into(audit_log::table).values(values).execute(c)?
        }
    };
    Ok(())
}

// SQLite's inserts of an event and of an audit entry, each numbered in the insert itself: the
// tenant's highest number plus one, 1 for its first (SQLite has one writer at a time, so no two
// transactions take the same number; no trigger numbers them, see the migration
// `writes_without_triggers`). Fixed texts, so that diesel neither walks a query tree to bind them
// nor asks on every run whether it may keep them prepared.

/// `INSERT INTO events (…) VALUES (…, (SELECT COALESCE(MAX(tenant_seq), 0) + 1 …), …)`.
struct SqliteEvent<'a> {
    tenant_id: &'a str,
    kind: &'a str,
    user_id: Option<&'a str>,
    payload: &'a str,
    at: &'a NaiveDateTime,
    txn: i64,
}

impl diesel::query_builder::QueryId for SqliteEvent<'_> {
    type QueryId = SqliteEvent<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl diesel::query_builder::QueryFragment<diesel::sqlite::Sqlite> for SqliteEvent<'_> {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::sqlite::Sqlite>,
    ) -> QueryResult<()> {
        use diesel::sql_types::{BigInt, Nullable, Text, Timestamp};
        out.push_sql("INSERT INTO events (tenant_id, kind, user_id, payload, created_at, txn, tenant_seq) VALUES (");
        out.push_bind_param::<Text, _>(self.tenant_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(self.kind)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<Text>, _>(&self.user_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(self.payload)?;
        out.push_sql(", ");
        out.push_bind_param::<Timestamp, _>(self.at)?;
        out.push_sql(", ");
        out.push_bind_param::<BigInt, _>(&self.txn)?;
        out.push_sql(", (SELECT COALESCE(MAX(tenant_seq), 0) + 1 FROM events WHERE tenant_id = ");
        out.push_bind_param::<Text, _>(self.tenant_id)?;
        out.push_sql("))");
        Ok(())
    }
}

impl RunQueryDsl<diesel::SqliteConnection> for SqliteEvent<'_> {}

/// `INSERT INTO audit_log (…) VALUES (…, (SELECT COALESCE(MAX(tenant_seq), 0) + 1 …))`.
struct SqliteAudit<'a>(&'a Audit<'a>);

impl diesel::query_builder::QueryId for SqliteAudit<'_> {
    type QueryId = SqliteAudit<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl diesel::query_builder::QueryFragment<diesel::sqlite::Sqlite> for SqliteAudit<'_> {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::sqlite::Sqlite>,
    ) -> QueryResult<()> {
        use diesel::sql_types::Text;
        let e = self.0;
        out.push_sql(
            "INSERT INTO audit_log (tenant_id, actor, action, user_id, state_before, state_after, at, tenant_seq) \
             VALUES (",
        );
        e.push_values(out.reborrow())?;
        out.push_sql(", (SELECT COALESCE(MAX(tenant_seq), 0) + 1 FROM audit_log WHERE tenant_id = ");
        out.push_bind_param::<Text, _>(e.tenant_id)?;
        out.push_sql("))");
        Ok(())
    }
}

impl RunQueryDsl<diesel::SqliteConnection> for SqliteAudit<'_> {}

/// `WITH event AS (INSERT INTO events …) INSERT INTO audit_log …`: a fixed text, so that
/// PostgreSQL keeps it prepared (an `sql_query` would be parsed and planned every time).
struct EventAndAudit<'a> {
    kind: &'a str,
    payload: &'a str,
    entry: &'a Audit<'a>,
}

impl diesel::query_builder::QueryId for EventAndAudit<'_> {
    type QueryId = EventAndAudit<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl diesel::query_builder::QueryFragment<diesel::pg::Pg> for EventAndAudit<'_> {
    fn walk_ast<'b>(&'b self, mut out: diesel::query_builder::AstPass<'_, 'b, diesel::pg::Pg>) -> QueryResult<()> {
        use diesel::sql_types::{Text, Timestamp};
        let e = self.entry;
        out.push_sql("WITH event AS (INSERT INTO events (tenant_id, kind, user_id, payload, created_at) VALUES (");
        out.push_bind_param::<Text, _>(e.tenant_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(self.kind)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(e.user_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(self.payload)?;
        out.push_sql(", ");
        out.push_bind_param::<Timestamp, _>(&e.at)?;
        out.push_sql(
            ")) INSERT INTO audit_log (tenant_id, actor, action, user_id, state_before, state_after, at) VALUES (",
        );
        e.push_values(out.reborrow())?;
        out.push_sql(")");
        Ok(())
    }
}

impl RunQueryDsl<diesel::PgConnection> for EventAndAudit<'_> {}

/// A tenant's audit entries numbered after `after`, oldest first, numbered as events are (see
/// [`events_after`]).
pub fn audit_after(conn: &mut DbConnection, tenant_id: &str, after: i64, limit: i64) -> QueryResult<Vec<AuditRow>> {
    number_committed(conn, "roster_number_audit", tenant_id)?;
    audit_log::table
        .filter(audit_log::tenant_id.eq(tenant_id))
        .filter(audit_log::tenant_seq.gt(after))
        .order(audit_log::tenant_seq)
        .limit(limit)
        .select(AuditRow::as_select())
        .load(conn)
}

/// Numbers a tenant's committed audit entries, so that a reader may page them by number (the
/// panel's audit log, newest first).
pub fn number_audit(conn: &mut DbConnection, tenant_id: &str) -> QueryResult<()> {
    number_committed(conn, "roster_number_audit", tenant_id)
}

/// Every tenant's audit entries, oldest first, for the operator (`roster audit` without a tenant).
pub fn audit_of_all_tenants(conn: &mut DbConnection, limit: i64) -> QueryResult<Vec<AuditRow>> {
    let tenants: Vec<String> = super::schema::tenants::table.select(super::schema::tenants::id).load(conn)?;
    for tenant_id in &tenants {
        number_committed(conn, "roster_number_audit", tenant_id)?;
    }
    audit_log::table
        .filter(audit_log::tenant_seq.is_not_null())
        .order(audit_log::seq)
        .limit(limit)
        .select(AuditRow::as_select())
        .load(conn)
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

/// The tenant's event numbered `number`, if it is still kept.
pub fn event_by_number(conn: &mut DbConnection, tenant_id: &str, number: i64) -> QueryResult<Option<EventRow>> {
    events::table
        .filter(events::tenant_id.eq(tenant_id))
        .filter(events::tenant_seq.eq(number))
        .select(EventRow::as_select())
        .first(conn)
        .optional()
}

/// The number of the tenant's newest committed event (0 before its first), numbering what has
/// committed unnumbered first, as [`events_after`] does.
pub fn last_event_number(conn: &mut DbConnection, tenant_id: &str) -> QueryResult<i64> {
    number_committed(conn, "roster_number_events", tenant_id)?;
    let top: Option<i64> = events::table
        .filter(events::tenant_id.eq(tenant_id))
        .select(diesel::dsl::max(events::tenant_seq))
        .first(conn)?;
    Ok(top.unwrap_or(0))
}

/// The event types whose payload may carry an account's identifiers (`identifiers`: userName,
/// externalId) for consumers that link accounts by them. Every other payload holds ids, times,
/// states and attribute names only.
pub const IDENTIFYING_KINDS: [&str; 2] = ["user.created", "user.updated"];

/// [`IDENTIFYING_KINDS`] as SQL: the events of an account are found through `events_tenant_user`
/// (tenant, account), and this keeps those of these kinds.
const IDENTIFYING: &str = "kind IN ('user.created', 'user.updated')";

/// The payload key that holds an account's identifiers in [`IDENTIFYING_KINDS`].
pub const IDENTIFIERS: &str = "identifiers";

/// Removes the identifiers of the account `user_id` from its earlier events, in the caller's
/// transaction (becoming a Former Member, deletion): the events keep their ids, types, positions
/// and account id, so feeds and acknowledgements stay as they were. Returns how many changed.
pub fn forget_identifiers(conn: &mut DbConnection, tenant_id: &str, user_id: &str) -> QueryResult<usize> {
    // Found by account through `events_tenant_user`.
    let identifying: Vec<(i64, String)> = events::table
        .filter(events::tenant_id.eq(tenant_id))
        .filter(events::user_id.eq(user_id))
        .filter(diesel::dsl::sql::<diesel::sql_types::Bool>(IDENTIFYING))
        .select((events::seq, events::payload))
        .load(conn)?;
    let mut changed = 0;
    for (seq, payload) in identifying {
        let Ok(Value::Object(mut fields)) = serde_json::from_str::<Value>(&payload) else { continue };
        if fields.remove(IDENTIFIERS).is_none() {
            continue;
        }
        let scrubbed = Value::Object(fields).to_string();
        changed += diesel::update(events::table.find(seq)).set(events::payload.eq(scrubbed)).execute(conn)?;
    }
    Ok(changed)
}

/// Purges one batch of the tenant's oldest events written before `cutoff`, in feed order, and
/// returns how many went. It stops at the first event that is younger, so a reader only ever
/// loses the start of its feed, never an event between two it can still read; and it keeps the
/// tenant's newest event, whose number the next event continues from (the numbering takes the
/// highest number there is plus one), and every event from the oldest that a delivery still
/// waits to send (retries outlast a short retention).
pub fn purge_events_before(
    conn: &mut DbConnection,
    tenant_id: &str,
    cutoff: NaiveDateTime,
    batch: i64,
) -> QueryResult<usize> {
    number_committed(conn, "roster_number_events", tenant_id)?;
    let numbered = events::table.filter(events::tenant_id.eq(tenant_id)).filter(events::tenant_seq.is_not_null());
    let Some(newest) = numbered.select(diesel::dsl::max(events::tenant_seq)).first::<Option<i64>>(conn)? else {
        return Ok(0);
    };
    let keep_from = match super::deliveries::lowest_pending(conn, tenant_id)? {
        Some(pending) => pending.min(newest),
        None => newest,
    };
    let oldest: Vec<(i64, NaiveDateTime)> = numbered
        .filter(events::tenant_seq.lt(keep_from))
        .order(events::tenant_seq)
        .limit(batch)
        .select((events::tenant_seq.assume_not_null(), events::created_at))
        .load(conn)?;
    let Some(last) = oldest.iter().take_while(|(_, at)| *at < cutoff).map(|(n, _)| *n).last() else {
        return Ok(0);
    };
    diesel::delete(
        events::table
            .filter(events::tenant_id.eq(tenant_id))
            .filter(events::tenant_seq.is_not_null())
            .filter(events::tenant_seq.le(last)),
    )
    .execute(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_identifying_kinds_are_those_the_sql_names() {
        let listed: Vec<String> = IDENTIFYING_KINDS.iter().map(|k| format!("'{k}'")).collect();
        assert_eq!(IDENTIFYING, format!("kind IN ({})", listed.join(", ")));
    }
}
