//! Delivery of committed outbox events to destinations outside Roster, at least once
//! (docs/webhooks.md). Destinations are webhooks and SET streams (docs/security-events.md): a
//! push stream is sent to like a webhook, with a signed SET per event URI instead of the
//! webhook message; a poll stream's SETs are given to it when its receiver polls. The archive
//! sink's URL destination ([`archive`]) goes through the same sender.
//!
//! Two steps, each safe when several nodes share one PostgreSQL:
//!
//! 1. **Fan-out**: each webhook's new committed events (after its `after_event`) become
//!    `pending` deliveries, in one transaction with the webhook row locked (`FOR UPDATE SKIP
//!    LOCKED`: a node finding it locked leaves it to the node holding it).
//! 2. **Sending**: due deliveries are claimed for a lease (`db::deliveries::claim`), sent, and
//!    their outcome recorded; a failure is tried again after a back-off, and the last failure
//!    leaves the delivery `dead`. A node killed mid-send leaves its claim to expire and another
//!    sender to try again: the receiver may see a message twice, never a message lost.
//!
//! The request body is built from the event row at send time, never kept in the delivery: an
//! event scrubbed meanwhile sends what it holds now, and a purged one drops its delivery.
//!
//! The sender runs in `roster serve` as a background task, woken after each write request on
//! this node ([`Wake`]) and every `poll_ms`, and stops after its current batch on shutdown.

pub mod archive;
pub mod backoff;
pub mod keys;
pub mod message;
pub mod outbound;
pub mod set;
pub mod signing;
pub mod streams;
pub mod webhooks;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::NaiveDateTime;
use futures_util::future::join_all;
use tokio::sync::{watch, Notify};

use crate::clock::Clock;
use crate::config::WebhookSettings;
use crate::db::deliveries::{self, Attempt, DeliveryRow, Queued, AWAITING, DEAD, DELIVERED, DROPPED, PENDING};
use crate::db::{archive as archives, records, webhooks as store, write_transaction, Database, DbConnection, DbError};
use outbound::Outbound;
use signing::SealKey;

/// Events a webhook is given deliveries for per fan-out step; the next step continues.
const FAN_OUT_BATCH: i64 = 1000;
/// The longest error text kept in the delivery log.
const ERROR_TEXT: usize = 300;

/// Wakes the sender — and the SET polls waiting on this node — when this node has committed a
/// write that may have added events.
#[derive(Clone, Default)]
pub struct Wake {
    sender: Arc<Notify>,
    polls: Arc<Notify>,
}

impl Wake {
    pub fn notify(&self) {
        self.sender.notify_one();
        self.polls.notify_waiters();
    }

    /// Resolves at the next [`Wake::notify`] after it was called (a long poll's wait).
    pub async fn next_write(&self) {
        self.polls.notified().await;
    }
}

/// The running sender; [`Sender::stop`] ends it after its current batch.
pub struct Sender {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Sender {
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// What the sender needs, shared by its concurrent sends.
#[derive(Clone)]
struct Engine {
    db: Database,
    clock: Arc<Clock>,
    settings: WebhookSettings,
    outbound: Outbound,
    seal: SealKey,
    /// What SETs' issuers start with (`public_url`, or the listen address).
    issuer_base: Arc<str>,
}

/// Starts the sender on the current runtime.
pub fn spawn(
    db: Database,
    clock: Arc<Clock>,
    settings: WebhookSettings,
    wake: Wake,
    issuer_base: String,
) -> Result<Sender, DbError> {
    let seal = SealKey::load(&mut *db.conn()?)?;
    let engine =
        Engine { outbound: Outbound::new(&settings), db, clock, settings, seal, issuer_base: issuer_base.into() };
    let (stop, mut stopped) = watch::channel(false);
    let task = tokio::spawn(async move {
        let poll = Duration::from_millis(engine.settings.poll_ms);
        // Whether a webhook existed when last looked, and when that was. Without one a write's
        // wake-up costs nothing: the look is taken again on the timer only (a webhook added by
        // `roster webhook add` starts from the events after its creation, so none is missed).
        let mut seen: Option<(bool, Instant)> = None;
        loop {
            let look = !matches!(seen, Some((false, at)) if at.elapsed() < poll);
            if look {
                let any = |conn: &mut DbConnection| Ok::<_, DbError>(store::any(conn)? || archives::any_for_url(conn)?);
                match engine.db.run(any).await {
                    Ok(any) => {
                        seen = Some((any, Instant::now()));
                        if !any {
                            crate::metrics::webhook_backlog(0, 0.0);
                        }
                    }
                    Err(e) => {
                        seen = None;
                        tracing::warn!(error = %e, "webhook delivery failed; it tries again on the next round");
                    }
                }
            }
            if matches!(seen, Some((true, _))) {
                if let Err(e) = engine.cycle(&stopped).await {
                    tracing::warn!(error = %e, "webhook delivery failed; it tries again on the next round");
                }
            }
            tokio::select! {
                _ = wake.sender.notified() => {}
                _ = tokio::time::sleep(poll) => {}
                _ = stopped.changed() => {}
            }
            if *stopped.borrow() {
                break;
            }
        }
    });
    Ok(Sender { stop, task })
}

impl Engine {
    /// One round: fan out new events, then send what is due until nothing is or the sender is
    /// stopped (a shutdown waits for the batch in flight, not for the whole backlog).
    async fn cycle(&self, stopped: &watch::Receiver<bool>) -> Result<(), DbError> {
        let now = self.clock.now();
        self.db.run(move |conn| fan_out(conn, now)).await?;
        loop {
            let owner = uuid::Uuid::new_v4().to_string();
            let (now, lease) = (self.clock.now(), self.lease());
            let limit = self.settings.concurrency as i64;
            let claimed = {
                let owner = owner.clone();
                self.db
                    .run(move |conn| Ok::<_, DbError>(deliveries::claim(conn, now, &owner, now + lease, limit)?))
                    .await?
            };
            if claimed.is_empty() {
                break;
            }
            self.deliver(claimed, owner).await?;
            if *stopped.borrow() {
                break;
            }
        }
        self.send_archives(stopped).await?;
        let (depth, oldest) = self.db.run(|conn| Ok::<_, DbError>(deliveries::backlog(conn)?)).await?;
        let age = oldest.map(|t| (self.clock.now() - t).num_milliseconds().max(0) as f64 / 1000.0);
        crate::metrics::webhook_backlog(depth, age.unwrap_or(0.0));
        Ok(())
    }

    /// A claim outlives the longest request by a margin, so that no live sender loses one.
    fn lease(&self) -> chrono::Duration {
        chrono::Duration::milliseconds(2 * self.settings.timeout_ms as i64 + 2000)
    }

    /// Sends a batch of claimed deliveries at once and records what came of them: the
    /// destinations, events and (for SET streams) signing keys read in one database job, the
    /// outcomes written in one transaction.
    async fn deliver(&self, claimed: Vec<DeliveryRow>, owner: String) -> Result<(), DbError> {
        let wanted: Vec<(String, String, i64)> =
            claimed.iter().map(|d| (d.tenant_id.clone(), d.webhook_id.clone(), d.event_seq)).collect();
        let (seal, base, now) = (self.seal.clone(), self.issuer_base.clone(), self.clock.now());
        let found = self
            .db
            .run(move |conn| {
                let mut found = Vec::with_capacity(wanted.len());
                let mut signers: std::collections::HashMap<String, SignerOrWhyNot> = Default::default();
                for (tenant, webhook_id, seq) in wanted {
                    let webhook = store::by_id(conn, &tenant, &webhook_id)?;
                    let signer = match &webhook {
                        Some(w) if w.is_stream() => match signers.get(&tenant) {
                            Some(signer) => Some(signer.clone()),
                            None => {
                                let signer = Signer::load(conn, &seal, &base, &tenant, now)?;
                                signers.insert(tenant.clone(), signer.clone());
                                Some(signer)
                            }
                        },
                        _ => None,
                    };
                    found.push((webhook, records::event_by_number(conn, &tenant, seq)?, signer));
                }
                Ok::<_, DbError>(found)
            })
            .await?;
        let tries = claimed.iter().zip(found).filter_map(|(row, (webhook, event, signer))| {
            // A webhook removed meanwhile took its deliveries with it.
            webhook.map(|webhook| self.attempt(row, webhook, event, signer))
        });
        let outcomes: Vec<(i64, Attempt, Option<f64>)> = join_all(tries).await;
        for (_, attempt, lag) in &outcomes {
            crate::metrics::webhook_delivery(attempt.status, attempt.tried, attempt.duration_ms, *lag);
        }
        let now = self.clock.now();
        let lost = self
            .db
            .run(move |conn| {
                write_transaction(conn, |conn| {
                    let mut lost = 0;
                    for (id, attempt, _) in &outcomes {
                        lost += usize::from(!deliveries::record(conn, *id, &owner, attempt, now)?);
                    }
                    Ok::<_, DbError>(lost)
                })
            })
            .await?;
        if lost > 0 {
            tracing::info!(lost, "deliveries whose lease ran out before their try was recorded");
        }
        Ok(())
    }

    /// One try of one delivery, with the time from the event's commit to its delivery.
    async fn attempt(
        &self,
        row: &DeliveryRow,
        webhook: store::WebhookRow,
        event: Option<records::EventRow>,
        signer: Option<SignerOrWhyNot>,
    ) -> (i64, Attempt, Option<f64>) {
        let now = self.clock.now();
        let dropped = |error: &str| Attempt {
            status: DROPPED,
            next_attempt_at: now,
            http_status: None,
            error: Some(error.into()),
            duration_ms: None,
            tried: false,
        };
        let Some(event) = event else {
            // Purged by retention before it could be sent: nothing is left to send.
            return (row.id, dropped("the event was purged before it was delivered"), None);
        };
        let sent = match signer {
            // The tenant's key could not be opened: tried again later, like an endpoint down.
            Some(Err(why)) => Sent { result: Err(why), took: Duration::ZERO, accepted: false },
            Some(Ok(signer)) => {
                let audience = webhook.audience.as_deref().unwrap_or("");
                let to = set::Addressing { issuer: &signer.issuer, audience, tenant_id: &row.tenant_id };
                match streams::signed_set(&signer.key, &to, &event, row.part, now) {
                    Ok(Some(token)) => self.push_set(&webhook, token).await,
                    Ok(None) => return (row.id, dropped("the event has no such SET"), None),
                    Err(e) => Sent { result: Err(e.to_string()), took: Duration::ZERO, accepted: false },
                }
            }
            None => {
                let message = message::Message::of_event(&row.tenant_id, &event);
                self.send(&webhook, &message, now).await
            }
        };
        let tries = u32::try_from(row.attempts).unwrap_or(0) + 1;
        let lag =
            sent.accepted.then(|| (self.clock.now() - event.created_at).num_milliseconds().max(0) as f64 / 1000.0);
        (row.id, self.outcome(sent, tries, now), lag)
    }

    async fn send(&self, webhook: &store::WebhookRow, message: &message::Message, now: NaiveDateTime) -> Sent {
        let started = Instant::now();
        let result = async {
            let url = outbound::parse_url(&webhook.url)?;
            let client = self.outbound.client(&url, webhook.allow_private)?;
            let secrets = webhooks::live_secrets(&self.seal, webhook, now).map_err(|e| e.to_string())?;
            let request = message.request(client, url, &secrets);
            let response = request.send().await.map_err(describe)?;
            Ok::<_, String>(response.status().as_u16())
        }
        .await;
        let accepted = matches!(result, Ok(code) if (200..300).contains(&code));
        Sent { result, took: started.elapsed(), accepted }
    }

    /// RFC 8935 §2.1: the SET as the body, `application/secevent+jwt`; the receiver accepts it
    /// with 202 (§2.2), and refuses it with 400 and a JSON `{"err", "description"}` (§2.3, the
    /// codes of §2.4's registry), which the delivery log keeps.
    async fn push_set(&self, stream: &store::WebhookRow, token: String) -> Sent {
        let started = Instant::now();
        let result = async {
            let url = outbound::parse_url(&stream.url)?;
            let client = self.outbound.client(&url, stream.allow_private)?;
            let response = client
                .post(url)
                .header("content-type", "application/secevent+jwt")
                .header("accept", "application/json")
                .body(token)
                .send()
                .await
                .map_err(describe)?;
            let code = response.status().as_u16();
            if code == 202 {
                return Ok(code);
            }
            let body: serde_json::Value = response.json().await.unwrap_or(serde_json::Value::Null);
            match body.get("err").and_then(|e| e.as_str()) {
                Some(err) => {
                    let description = body.get("description").and_then(|d| d.as_str()).unwrap_or("");
                    Err(format!("the receiver answered {code}: {err}: {description}"))
                }
                None => Ok(code),
            }
        }
        .await;
        let accepted = matches!(result, Ok(202));
        Sent { result, took: started.elapsed(), accepted }
    }

    fn outcome(&self, sent: Sent, tries: u32, now: NaiveDateTime) -> Attempt {
        let duration_ms = Some(sent.took.as_millis() as i64);
        let (http_status, error) = match &sent.result {
            Ok(code) if sent.accepted => {
                return Attempt {
                    status: DELIVERED,
                    next_attempt_at: now,
                    http_status: Some(i32::from(*code)),
                    error: None,
                    duration_ms,
                    tried: true,
                }
            }
            Ok(code) => (Some(i32::from(*code)), format!("the endpoint answered {code}")),
            Err(e) => (e.strip_prefix("the receiver answered ").and_then(|r| r.get(..3)?.parse().ok()), e.clone()),
        };
        let error: String = error.chars().take(ERROR_TEXT).collect();
        let (status, next_attempt_at) = if tries >= self.settings.max_attempts {
            (DEAD, now)
        } else {
            let wait = backoff::wait_after(&self.settings, tries);
            (PENDING, now + chrono::Duration::milliseconds(wait.as_millis() as i64))
        };
        Attempt { status, next_attempt_at, http_status, error: Some(error), duration_ms, tried: true }
    }
}

struct Sent {
    /// The receiver's status code, or why no answer came (or, for a SET, why it was refused).
    result: Result<u16, String>,
    took: Duration,
    /// Whether the receiver took it: a 2xx for a webhook, 202 for a SET (RFC 8935 §2.2).
    accepted: bool,
}

/// What a SET stream's deliveries of one tenant are signed with.
struct Signer {
    issuer: String,
    key: keys::TenantKey,
}

/// A tenant's signer, or why its key is unusable (its SETs' deliveries fail with that).
type SignerOrWhyNot = Result<Arc<Signer>, String>;

impl Signer {
    fn load(
        conn: &mut DbConnection,
        seal: &SealKey,
        base: &str,
        tenant_id: &str,
        now: NaiveDateTime,
    ) -> Result<SignerOrWhyNot, DbError> {
        let name = crate::db::tenants::by_id(conn, tenant_id)?.map(|t| t.name).unwrap_or_default();
        match keys::current(conn, seal, tenant_id, now) {
            Ok(key) => Ok(Ok(Arc::new(Signer { issuer: set::issuer(base, &name), key }))),
            Err(keys::KeyError::Db(e)) => Err(e),
            Err(other) => Ok(Err(other.to_string())),
        }
    }
}

/// Why a request got no answer, in words for the delivery log (the error's chain, which names
/// a refused address or a timeout; never the body).
fn describe(e: reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "the request failed"
    };
    let mut text = what.to_owned();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Gives every webhook's new committed events their deliveries.
fn fan_out(conn: &mut DbConnection, now: NaiveDateTime) -> Result<usize, DbError> {
    let mut added = 0;
    let mut newest = std::collections::HashMap::new();
    for (id, tenant_id, after_event) in store::all_positions(conn)? {
        // A look before the write transaction, so that a quiet outbox takes no write lock.
        let top = match newest.get(&tenant_id) {
            Some(top) => *top,
            None => *newest.entry(tenant_id.clone()).or_insert(records::last_event_number(conn, &tenant_id)?),
        };
        if top > after_event {
            added += write_transaction(conn, |conn| fan_out_one(conn, &id, now))?;
        }
    }
    Ok(added)
}

/// Gives one destination its new committed events' deliveries, in the caller's transaction
/// (a SET stream: one per SET it wants; a poll stream's wait `awaiting` for its receiver).
fn fan_out_one(conn: &mut DbConnection, id: &str, now: NaiveDateTime) -> Result<usize, DbError> {
    let Some(webhook) = store::lock(conn, id)? else { return Ok(0) };
    fan_out_locked(conn, webhook, now)
}

/// [`fan_out_one`] for a poll: it waits for a sender giving the stream its events at the same
/// moment (rather than skip the stream), so the poll sees them.
pub(crate) fn fan_out_waiting(
    conn: &mut DbConnection,
    tenant_id: &str,
    id: &str,
    now: NaiveDateTime,
) -> Result<usize, DbError> {
    let Some(webhook) = store::lock_waiting(conn, tenant_id, id)? else { return Ok(0) };
    fan_out_locked(conn, webhook, now)
}

fn fan_out_locked(conn: &mut DbConnection, webhook: store::WebhookRow, now: NaiveDateTime) -> Result<usize, DbError> {
    let events = records::events_after(conn, &webhook.tenant_id, webhook.after_event, FAN_OUT_BATCH)?;
    let Some(last) = events.last().map(|e| e.tenant_seq) else { return Ok(0) };
    let mut wanted = Vec::new();
    for event in events {
        if webhook.is_stream() {
            for (part, uri) in set::uris(&event).into_iter().enumerate() {
                if webhook.wants(uri) {
                    let part = part as i32;
                    wanted.push(Queued { event_seq: event.tenant_seq, part, user_id: event.user_id.clone() });
                }
            }
        } else if webhook.wants(&event.kind) {
            wanted.push(Queued { event_seq: event.tenant_seq, part: 0, user_id: event.user_id });
        }
    }
    let status = if webhook.kind == store::SET_POLL { AWAITING } else { PENDING };
    let added = deliveries::enqueue(conn, &webhook.tenant_id, &webhook.id, &wanted, status, now)?;
    store::set_after_event(conn, &webhook.id, last)?;
    Ok(added)
}
