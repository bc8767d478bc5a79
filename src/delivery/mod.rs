//! Delivery of committed outbox events to destinations outside Roster, at least once
//! (docs/webhooks.md). Webhooks are the first kind of destination; the archive
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
pub mod message;
pub mod outbound;
pub mod signing;
pub mod webhooks;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::NaiveDateTime;
use futures_util::future::join_all;
use tokio::sync::{watch, Notify};

use crate::clock::Clock;
use crate::config::WebhookSettings;
use crate::db::deliveries::{self, Attempt, DeliveryRow, DEAD, DELIVERED, DROPPED, PENDING};
use crate::db::{archive as archives, records, webhooks as store, write_transaction, Database, DbConnection, DbError};
use outbound::Outbound;
use signing::SealKey;

/// Events a webhook is given deliveries for per fan-out step; the next step continues.
const FAN_OUT_BATCH: i64 = 1000;
/// The longest error text kept in the delivery log.
const ERROR_TEXT: usize = 300;

/// Wakes the sender when this node has committed a write that may have added events.
#[derive(Clone, Default)]
pub struct Wake(Arc<Notify>);

impl Wake {
    pub fn notify(&self) {
        self.0.notify_one();
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
}

/// Starts the sender on the current runtime.
pub fn spawn(db: Database, clock: Arc<Clock>, settings: WebhookSettings, wake: Wake) -> Result<Sender, DbError> {
    let seal = SealKey::load(&mut *db.conn()?)?;
    let engine = Engine { outbound: Outbound::new(&settings), db, clock, settings, seal };
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
                _ = wake.0.notified() => {}
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
    /// webhooks and events read in one database job, the outcomes written in one transaction.
    async fn deliver(&self, claimed: Vec<DeliveryRow>, owner: String) -> Result<(), DbError> {
        let wanted: Vec<(String, String, i64)> =
            claimed.iter().map(|d| (d.tenant_id.clone(), d.webhook_id.clone(), d.event_seq)).collect();
        let found = self
            .db
            .run(move |conn| {
                let mut found = Vec::with_capacity(wanted.len());
                for (tenant, webhook_id, seq) in wanted {
                    let webhook = store::by_id(conn, &tenant, &webhook_id)?;
                    found.push((webhook, records::event_by_number(conn, &tenant, seq)?));
                }
                Ok::<_, DbError>(found)
            })
            .await?;
        let tries = claimed.iter().zip(found).filter_map(|(row, (webhook, event))| {
            // A webhook removed meanwhile took its deliveries with it.
            webhook.map(|webhook| self.attempt(row, webhook, event))
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
    ) -> (i64, Attempt, Option<f64>) {
        let now = self.clock.now();
        let Some(event) = event else {
            // Purged by retention before it could be sent: nothing is left to send.
            let attempt = Attempt {
                status: DROPPED,
                next_attempt_at: now,
                http_status: None,
                error: Some("the event was purged before it was delivered".into()),
                duration_ms: None,
                tried: false,
            };
            return (row.id, attempt, None);
        };
        let message = message::Message::of_event(&row.tenant_id, &event);
        let sent = self.send(&webhook, &message, now).await;
        let tries = u32::try_from(row.attempts).unwrap_or(0) + 1;
        let lag =
            sent.delivered().then(|| (self.clock.now() - event.created_at).num_milliseconds().max(0) as f64 / 1000.0);
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
        Sent { result, took: started.elapsed() }
    }

    fn outcome(&self, sent: Sent, tries: u32, now: NaiveDateTime) -> Attempt {
        let duration_ms = Some(sent.took.as_millis() as i64);
        let (http_status, error) = match &sent.result {
            Ok(code) if (200..300).contains(code) => {
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
            Err(e) => (None, e.clone()),
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
    /// The receiver's status code, or why no answer came.
    result: Result<u16, String>,
    took: Duration,
}

impl Sent {
    fn delivered(&self) -> bool {
        matches!(self.result, Ok(code) if (200..300).contains(&code))
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

fn fan_out_one(conn: &mut DbConnection, id: &str, now: NaiveDateTime) -> Result<usize, DbError> {
    let Some(webhook) = store::lock(conn, id)? else { return Ok(0) };
    let events = records::events_after(conn, &webhook.tenant_id, webhook.after_event, FAN_OUT_BATCH)?;
    let Some(last) = events.last().map(|e| e.tenant_seq) else { return Ok(0) };
    let wanted: Vec<(i64, Option<String>)> =
        events.into_iter().filter(|e| webhook.wants(&e.kind)).map(|e| (e.tenant_seq, e.user_id)).collect();
    let added = deliveries::enqueue(conn, &webhook.tenant_id, &webhook.id, &wanted, now)?;
    store::set_after_event(conn, &webhook.id, last)?;
    Ok(added)
}
