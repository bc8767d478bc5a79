//! What the operator does to a tenant's webhooks (`roster webhook …`): add, list, remove, test,
//! rotate the secret, replay, read the delivery log.

use std::time::{Duration, Instant};

use chrono::NaiveDateTime;

use super::message::Message;
use super::outbound::{self, Outbound};
use super::signing::{SealError, SealKey, Secret};
use crate::config::WebhookSettings;
use crate::db::deliveries::{self, DeliveryRow};
use crate::db::webhooks::{self as store, WebhookRow};
use crate::db::{records, tenants, write_transaction, DbConnection, DbError};

/// The event types a webhook may ask for (docs/webhooks.md describes each).
pub const EVENT_TYPES: [&str; 10] = [
    "user.created",
    "user.updated",
    "user.deactivated",
    "user.reactivated",
    "user.former_member",
    "user.deleted",
    "user.exported",
    "membership.removed",
    "archive.written",
    "archive.expired",
];

/// The statuses of the delivery log.
pub const STATUSES: [&str; 6] = [
    deliveries::PENDING,
    deliveries::DELIVERED,
    deliveries::DEAD,
    deliveries::DROPPED,
    deliveries::AWAITING,
    deliveries::REJECTED,
];

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("no tenant named {0:?}")]
    UnknownTenant(String),
    #[error("tenant {tenant:?} has no webhook {id:?}")]
    UnknownWebhook { tenant: String, id: String },
    #[error("{0}")]
    InvalidUrl(String),
    #[error("unknown event type {0:?}; the types are {types}", types = EVENT_TYPES.join(", "))]
    UnknownEventType(String),
    #[error("unknown delivery status {0:?}; the statuses are {statuses}", statuses = STATUSES.join(", "))]
    UnknownStatus(String),
    #[error("event ids start at 1")]
    InvalidEventId,
    #[error(transparent)]
    Seal(#[from] SealError),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for WebhookError {
    fn from(e: diesel::result::Error) -> Self {
        WebhookError::Db(e.into())
    }
}

/// A new webhook and its secret, shown this once.
pub struct Added {
    pub webhook: WebhookRow,
    pub secret: String,
}

pub struct NewWebhook<'a> {
    pub tenant: &'a str,
    pub url: &'a str,
    /// Empty: every type.
    pub event_types: &'a [String],
    pub allow_private: bool,
}

fn tenant_id(conn: &mut DbConnection, name: &str) -> Result<String, WebhookError> {
    Ok(tenants::by_name(conn, name)?.ok_or_else(|| WebhookError::UnknownTenant(name.to_owned()))?.id)
}

fn find(conn: &mut DbConnection, tenant: &str, tenant_id: &str, id: &str) -> Result<WebhookRow, WebhookError> {
    store::by_id(conn, tenant_id, id)?
        .filter(|w| !w.is_stream())
        .ok_or_else(|| WebhookError::UnknownWebhook { tenant: tenant.to_owned(), id: id.to_owned() })
}

/// Adds a webhook that receives the tenant's events committed from now on.
pub fn add(conn: &mut DbConnection, new: &NewWebhook<'_>, now: NaiveDateTime) -> Result<Added, WebhookError> {
    let url = outbound::parse_url(new.url).map_err(WebhookError::InvalidUrl)?;
    if !new.allow_private {
        outbound::check_public(&url).map_err(WebhookError::InvalidUrl)?;
    }
    let mut types: Vec<&str> = Vec::new();
    for kind in new.event_types.iter().map(|t| t.trim()).filter(|t| !t.is_empty()) {
        let known =
            EVENT_TYPES.iter().find(|k| **k == kind).ok_or_else(|| WebhookError::UnknownEventType(kind.into()))?;
        if !types.contains(known) {
            types.push(known);
        }
    }
    let tenant_id = tenant_id(conn, new.tenant)?;
    let seal = SealKey::load(conn)?;
    let secret = Secret::generate();
    let id = format!("wh_{}", uuid::Uuid::new_v4().simple());
    let webhook = write_transaction(conn, |conn| {
        let row = WebhookRow {
            secret: seal.seal(&secret, &id),
            id: id.clone(),
            tenant_id: tenant_id.clone(),
            url: url.to_string(),
            event_types: types.join(","),
            allow_private: new.allow_private,
            previous_secret: None,
            previous_secret_expires_at: None,
            after_event: records::last_event_number(conn, &tenant_id)?,
            created_at: now,
            kind: store::WEBHOOK.to_owned(),
            audience: None,
        };
        store::insert(conn, &row)?;
        Ok::<_, WebhookError>(row)
    })?;
    Ok(Added { webhook, secret: secret.reveal() })
}

pub fn list(conn: &mut DbConnection, tenant: &str) -> Result<Vec<WebhookRow>, WebhookError> {
    let tenant_id = tenant_id(conn, tenant)?;
    Ok(store::of_tenant(conn, &tenant_id, false)?)
}

pub fn remove(conn: &mut DbConnection, tenant: &str, id: &str) -> Result<(), WebhookError> {
    let tenant_id = tenant_id(conn, tenant)?;
    if store::remove(conn, &tenant_id, id, false)? {
        Ok(())
    } else {
        Err(WebhookError::UnknownWebhook { tenant: tenant.to_owned(), id: id.to_owned() })
    }
}

/// Gives the webhook a new secret, returned to be shown once; requests are signed with the old
/// one too until `keep` has passed, so the receiver can switch in the meantime.
pub fn rotate_secret(
    conn: &mut DbConnection,
    tenant: &str,
    id: &str,
    keep: Duration,
    now: NaiveDateTime,
) -> Result<String, WebhookError> {
    let tenant_id = tenant_id(conn, tenant)?;
    let seal = SealKey::load(conn)?;
    let secret = Secret::generate();
    write_transaction(conn, |conn| {
        // Locked until the commit: two rotations at once would otherwise both keep the same
        // old secret as the previous one, and the secret the first handed out would never sign.
        let webhook = store::lock_waiting(conn, &tenant_id, id)?
            .filter(|w| !w.is_stream())
            .ok_or_else(|| WebhookError::UnknownWebhook { tenant: tenant.to_owned(), id: id.to_owned() })?;
        let keep_until = now + chrono::Duration::from_std(keep).unwrap_or(chrono::Duration::MAX);
        // The old secret, sealed anew: the stored text stays bound to this webhook either way.
        let previous = seal.seal(&seal.open(&webhook.secret, id)?, id);
        store::rotate(conn, &tenant_id, id, &seal.seal(&secret, id), &previous, keep_until)?;
        Ok::<_, WebhookError>(())
    })?;
    Ok(secret.reveal())
}

/// The secrets a request to `webhook` is signed with at `now`: the current one, and the one
/// before it until it expires.
pub fn live_secrets(seal: &SealKey, webhook: &WebhookRow, now: NaiveDateTime) -> Result<Vec<Secret>, SealError> {
    let mut secrets = vec![seal.open(&webhook.secret, &webhook.id)?];
    if let (Some(previous), Some(until)) = (&webhook.previous_secret, webhook.previous_secret_expires_at) {
        if now < until {
            secrets.push(seal.open(previous, &webhook.id)?);
        }
    }
    Ok(secrets)
}

/// Queues the webhook's events from number `from` on (of the types it wants) to be sent again,
/// after whatever is pending for it; returns how many. Events it has not been given yet come
/// by the usual way.
pub fn replay(
    conn: &mut DbConnection,
    tenant: &str,
    id: &str,
    from: i64,
    now: NaiveDateTime,
) -> Result<usize, WebhookError> {
    if from < 1 {
        return Err(WebhookError::InvalidEventId);
    }
    let tenant_id = tenant_id(conn, tenant)?;
    write_transaction(conn, |conn| {
        let webhook = store::lock_waiting(conn, &tenant_id, id)?
            .filter(|w| !w.is_stream())
            .ok_or_else(|| WebhookError::UnknownWebhook { tenant: tenant.to_owned(), id: id.to_owned() })?;
        let mut after = from - 1;
        let mut added = 0;
        while after < webhook.after_event {
            let events = records::events_after(conn, &tenant_id, after, 1000)?;
            let Some(last) = events.last().map(|e| e.tenant_seq) else { break };
            let wanted: Vec<deliveries::Queued> = events
                .into_iter()
                .filter(|e| e.tenant_seq <= webhook.after_event && webhook.wants(&e.kind))
                .map(|e| deliveries::Queued { event_seq: e.tenant_seq, part: 0, user_id: e.user_id })
                .collect();
            added += deliveries::enqueue(conn, &tenant_id, id, &wanted, deliveries::PENDING, now)?;
            after = last;
        }
        Ok(added)
    })
}

pub fn delivery_log(
    conn: &mut DbConnection,
    tenant: &str,
    webhook: Option<&str>,
    status: Option<&str>,
    limit: i64,
) -> Result<Vec<DeliveryRow>, WebhookError> {
    if let Some(status) = status.filter(|s| !STATUSES.contains(s)) {
        return Err(WebhookError::UnknownStatus(status.to_owned()));
    }
    let tenant_id = tenant_id(conn, tenant)?;
    if let Some(id) = webhook {
        find(conn, tenant, &tenant_id, id)?;
    }
    Ok(deliveries::log(conn, &tenant_id, webhook, status, limit)?)
}

/// What `roster webhook test` saw.
pub struct Tested {
    /// The endpoint's status code, or why there was none.
    pub answer: Result<u16, String>,
    pub took: Duration,
}

/// Sends a signed `webhook.test` message to the webhook now, with the same client, checks and
/// timeouts as deliveries; nothing is recorded.
pub async fn test(
    webhook: &WebhookRow,
    seal: &SealKey,
    settings: &WebhookSettings,
    now: NaiveDateTime,
) -> Result<Tested, WebhookError> {
    let secrets = live_secrets(seal, webhook, now)?;
    let outbound = Outbound::new(settings);
    let started = Instant::now();
    let answer = async {
        let url = outbound::parse_url(&webhook.url)?;
        let client = outbound.client(&url, webhook.allow_private)?;
        let response = Message::test(now).request(client, url, &secrets).send().await.map_err(super::describe)?;
        Ok(response.status().as_u16())
    }
    .await;
    Ok(Tested { answer, took: started.elapsed() })
}

/// The webhook `id` of the tenant, for commands that act on one.
pub fn get(conn: &mut DbConnection, tenant: &str, id: &str) -> Result<WebhookRow, WebhookError> {
    let tenant_id = tenant_id(conn, tenant)?;
    find(conn, tenant, &tenant_id, id)
}
