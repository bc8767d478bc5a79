//! The request log of each IdP connection, and when each token was last used, recorded off the
//! request path: a request adds one entry to a buffer in memory; a background task masks the
//! entries and writes them in one transaction per batch, sets `last_used_at` at most once a
//! minute per token, and keeps the log bounded (a day, and the newest rows of each connection).
//! Nothing of a request body is kept; the path's query and an error's detail are stored with
//! every value masked (see [`mask_path`], [`mask_text`]). Requests refused before a token is
//! identified belong to no tenant: they are only counted (`roster_requests_unidentified_total`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::NaiveDateTime;

use crate::clock::Clock;
use crate::db::connections::{self as store, Batch, LogRow};
use crate::db::{write_transaction, Database, DbError};

/// How often the buffer is written.
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// A token's `last_used_at` is written at most this often, and its connection's log trimmed.
const TOUCH_EVERY: Duration = Duration::from_secs(60);
/// Entries waiting at most; beyond, new ones are dropped (and counted) rather than let memory grow
/// while the database is away.
const MAX_PENDING: usize = 50_000;
// A connection's requests of one write are one row, numbered within it in 16 bits.
const _: () = assert!(MAX_PENDING < store::BATCH_LIMIT);

/// How long and how much of each connection's log is kept.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub max_age: chrono::Duration,
    pub rows_per_connection: i64,
}

pub const RETENTION: Retention = Retention { max_age: chrono::Duration::hours(24), rows_per_connection: 10_000 };

/// The connection a request's token belongs to, set by authentication on the request's
/// extensions once the token is known to be on record for its tenant (even when it is then
/// refused as revoked or expired: its IdP should see why).
#[derive(Debug, Clone)]
pub struct Identified {
    pub tenant: Arc<str>,
    /// The token's jti, or its OAuth client's id (one connection however many access tokens).
    pub connection: Arc<str>,
}

/// A finished request as the middleware saw it, unmasked: masking is the writer's work.
pub struct Entry {
    pub who: Identified,
    pub at: NaiveDateTime,
    pub method: actix_web::http::Method,
    pub path_and_query: String,
    pub status: u16,
    pub duration: Duration,
    /// For an error answer: its scimType and detail.
    pub error: Option<(Option<&'static str>, String)>,
}

#[derive(Default)]
pub struct RequestLog {
    pending: Mutex<Vec<Entry>>,
}

impl RequestLog {
    /// Buffers a finished request for the next batch (dropped, and counted, when the buffer
    /// is full).
    pub fn push(&self, entry: Entry) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        if pending.len() >= MAX_PENDING {
            drop(pending);
            metrics::counter!("roster_request_log_dropped_total").increment(1);
            return;
        }
        pending.push(entry);
    }

    fn take(&self) -> Vec<Entry> {
        std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// A connection due its minute's write: its token's last use, and the trim of its log.
struct Touch {
    tenant: Arc<str>,
    connection: Arc<str>,
    last_used: NaiveDateTime,
}

/// What the writer remembers between batches: when each connection was last written (for
/// `last_used_at` and trimming) and the newest use still to be written.
#[derive(Default)]
struct Writer {
    touched: HashMap<(Arc<str>, Arc<str>), Instant>,
    due: HashMap<(Arc<str>, Arc<str>), NaiveDateTime>,
    pruned: Option<Instant>,
}

impl Writer {
    /// The batches of the entries, masked, one per connection, and which connections are due
    /// their minute's write.
    fn prepare(&mut self, entries: Vec<Entry>, now: Instant) -> (Vec<Batch>, Vec<Touch>) {
        // Each connection's requests in the order they finished.
        let mut of: HashMap<(Arc<str>, Arc<str>), Vec<LogRow>> = HashMap::new();
        let mut order = Vec::new();
        for e in entries {
            let key = (e.who.tenant.clone(), e.who.connection.clone());
            let latest = self.due.entry(key.clone()).or_insert(e.at);
            *latest = (*latest).max(e.at);
            let (scim_type, detail) = match e.error {
                Some((scim_type, detail)) => (scim_type.map(str::to_owned), Some(mask_text(&detail))),
                None => (None, None),
            };
            let rows = of.entry(key.clone()).or_insert_with(|| {
                order.push(key);
                Vec::new()
            });
            rows.push(LogRow {
                id: 0,
                at: e.at,
                method: e.method.to_string(),
                path: mask_path(&e.path_and_query),
                status: i32::from(e.status),
                duration_us: i64::try_from(e.duration.as_micros()).unwrap_or(i64::MAX),
                scim_type,
                detail,
            });
        }
        let batches = order
            .into_iter()
            .map(|key| {
                let rows = of.remove(&key).expect("listed when first seen");
                Batch::new(key.0.to_string(), key.1.to_string(), &rows)
            })
            .collect();
        self.touched.retain(|_, at| now.duration_since(*at) < TOUCH_EVERY);
        let ready: Vec<_> = self.due.keys().filter(|k| !self.touched.contains_key(*k)).cloned().collect();
        let mut touch = Vec::with_capacity(ready.len());
        for key in ready {
            let at = self.due.remove(&key).expect("the key was just listed");
            self.touched.insert(key.clone(), now);
            touch.push(Touch { tenant: key.0, connection: key.1, last_used: at });
        }
        (batches, touch)
    }
}

/// Writes one batch: a row per connection, the due `last_used_at` marks and trims, and once a
/// minute the removal of rows past their age. One transaction, so several nodes sharing a
/// PostgreSQL each write their own batches beside the others'.
fn write_batch(
    db_conn: &mut crate::db::DbConnection,
    batches: &[Batch],
    touch: &[Touch],
    prune_before: Option<NaiveDateTime>,
    retention: Retention,
) -> Result<(), DbError> {
    write_transaction(db_conn, |conn| {
        store::insert_batches(conn, batches)?;
        for t in touch {
            store::mark_used(conn, &t.connection, t.last_used)?;
            store::trim_connection(conn, &t.tenant, &t.connection, retention.rows_per_connection)?;
        }
        if let Some(before) = prune_before {
            store::prune_before(conn, before)?;
        }
        Ok(())
    })
}

/// The background writer; [`Flusher::stop`] writes what is buffered and ends it.
pub struct Flusher {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Flusher {
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Writes the buffer every second until stopped, on the current runtime.
pub fn spawn(log: Arc<RequestLog>, db: Database, clock: Arc<Clock>) -> Flusher {
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(async move {
        let mut writer = Writer::default();
        let mut ticks = tokio::time::interval(FLUSH_EVERY);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let last = tokio::select! {
                _ = ticks.tick() => false,
                _ = stopped.changed() => true,
            };
            let entries = log.take();
            let now = Instant::now();
            let prune = writer.pruned.is_none_or(|at| now.duration_since(at) >= TOUCH_EVERY);
            if entries.is_empty() && writer.due.is_empty() && !prune {
                if last {
                    return;
                }
                continue;
            }
            let (batches, touch) = writer.prepare(entries, now);
            let prune_before = prune.then(|| clock.now() - RETENTION.max_age);
            if prune {
                writer.pruned = Some(now);
            }
            let written = db.write(move |conn| write_batch(conn, &batches, &touch, prune_before, RETENTION)).await;
            if let Err(e) = written {
                metrics::counter!("roster_request_log_failed_batches_total").increment(1);
                tracing::warn!(error = %e, "the request log could not be written; this batch is lost");
            }
            if last {
                return;
            }
        }
    });
    Flusher { stop, task }
}

/// The SCIM attribute names and operators a filter is made of stay; every value (quoted, or bare
/// as Okta and Entra sometimes send them) becomes `"…"`. `true`, `false` and `null` stay.
fn mask_filter(filter: &str) -> String {
    const OPERATORS: [&str; 10] = ["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le", "pr"];
    let mut out = String::with_capacity(filter.len());
    let mut chars = filter.chars().peekable();
    let mut after_operator = false;
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                // A quoted value, with its escapes (RFC 7644 §3.4.2.2: JSON strings).
                let mut escaped = false;
                for c in chars.by_ref() {
                    match (escaped, c) {
                        (false, '\\') => escaped = true,
                        (false, '"') => break,
                        _ => escaped = false,
                    }
                }
                out.push_str("\"…\"");
                after_operator = false;
            }
            c if c.is_whitespace() || "()[]".contains(c) => {
                out.push(c);
                if c != ' ' && !c.is_whitespace() {
                    after_operator = false;
                }
            }
            c => {
                let mut word = String::from(c);
                while let Some(&n) = chars.peek() {
                    if n.is_whitespace() || "()[]\"".contains(n) {
                        break;
                    }
                    word.push(n);
                    chars.next();
                }
                let lower = word.to_ascii_lowercase();
                if after_operator && !matches!(lower.as_str(), "true" | "false" | "null") {
                    out.push_str("\"…\"");
                    after_operator = false;
                } else {
                    out.push_str(&word);
                    after_operator = OPERATORS.contains(&lower.as_str()) && lower != "pr";
                }
            }
        }
    }
    out
}

/// Query parameters whose values are names, numbers or opaque cursors, never personal data.
const PLAIN_PARAMETERS: [&str; 7] =
    ["attributes", "excludedattributes", "sortby", "sortorder", "startindex", "count", "cursor"];

/// The path of a request as its log shows it: the path as it came (ids are Roster's own), the
/// query decoded, with `filter` values masked and every other parameter's value masked unless
/// it is one of [`PLAIN_PARAMETERS`].
pub fn mask_path(path_and_query: &str) -> String {
    let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
    // A path segment is an id Roster issued, except where a client put something else there.
    let path: Vec<String> = path
        .split('/')
        .map(|segment| if segment.contains('@') || segment.contains('%') { "…".to_owned() } else { segment.to_owned() })
        .collect();
    let mut out = path.join("/");
    if query.is_empty() {
        return out;
    }
    let params: Vec<String> = form_urlencoded::parse(query.as_bytes())
        .map(|(name, value)| {
            let lower = name.to_ascii_lowercase();
            let shown = if lower == "filter" {
                mask_filter(&value)
            } else if PLAIN_PARAMETERS.contains(&lower.as_str()) {
                value.into_owned()
            } else {
                "…".to_owned()
            };
            format!("{name}={shown}")
        })
        .collect();
    out.push('?');
    out.push_str(&params.join("&"));
    out
}

/// An error's detail as its log shows it: every quoted part (where Roster's details quote the
/// values they name) and every word that looks like an address becomes `…`.
pub fn mask_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(['"', '“']) {
        let (before, from) = rest.split_at(start);
        out.push_str(before);
        let open = from.chars().next().expect("found above");
        let close = if open == '“' { '”' } else { '"' };
        let inner = &from[open.len_utf8()..];
        match inner.find(close) {
            Some(end) => {
                out.push(open);
                out.push('…');
                out.push(close);
                rest = &inner[end + close.len_utf8()..];
            }
            None => {
                out.push('…');
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out.split(' ').map(|word| if word.contains('@') { "…" } else { word }).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_values_are_masked_and_names_kept() {
        assert_eq!(
            mask_path("/scim/v2/Users?filter=userName%20eq%20%22alice%40x%22"),
            "/scim/v2/Users?filter=userName eq \"…\""
        );
        assert_eq!(
            mask_filter(r#"emails[type eq "work" and value co "a\"b"] or externalId eq bob and active eq true"#),
            r#"emails[type eq "…" and value co "…"] or externalId eq "…" and active eq true"#
        );
        assert_eq!(mask_filter("title pr and not (userName sw Ali)"), "title pr and not (userName sw \"…\")");
        assert_eq!(
            mask_path("/scim/v2/Users?startIndex=1&count=10&attributes=userName&q=alice&filter=displayName+eq+Alice"),
            "/scim/v2/Users?startIndex=1&count=10&attributes=userName&q=…&filter=displayName eq \"…\""
        );
    }

    #[test]
    fn ids_stay_in_paths_and_addresses_do_not() {
        assert_eq!(mask_path("/scim/v2/Users/8c1f0d3e-aa"), "/scim/v2/Users/8c1f0d3e-aa");
        assert_eq!(mask_path("/scim/v2/Users/alice@x.example"), "/scim/v2/Users/…");
        assert_eq!(mask_path("/scim/v2/Users/alice%40x"), "/scim/v2/Users/…");
    }

    #[test]
    fn details_keep_their_words_and_lose_their_values() {
        assert_eq!(mask_text(r#"userName "alice@x" is already taken"#), r#"userName "…" is already taken"#);
        assert_eq!(mask_text("no user bob@example.com here"), "no user … here");
        assert_eq!(mask_text("an “odd” quote and an open \"end"), "an “…” quote and an open …");
    }

    #[test]
    fn a_connection_is_marked_used_at_most_once_a_minute() {
        let who = Identified { tenant: "t".into(), connection: "j".into() };
        let entry = |at: NaiveDateTime| Entry {
            who: who.clone(),
            at,
            method: actix_web::http::Method::GET,
            path_and_query: "/scim/v2/Users".into(),
            status: 200,
            duration: Duration::from_millis(3),
            error: None,
        };
        let t0 = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap().naive_utc();
        let start = Instant::now();
        let mut writer = Writer::default();
        let (rows, touch) = writer.prepare(vec![entry(t0)], start);
        assert_eq!((rows.len(), touch.len()), (1, 1));
        let later = t0 + chrono::Duration::seconds(5);
        let (_, touch) = writer.prepare(vec![entry(later)], start + Duration::from_secs(5));
        assert!(touch.is_empty(), "written five seconds ago: not again yet");
        let (rows, touch) = writer.prepare(Vec::new(), start + TOUCH_EVERY);
        assert!(rows.is_empty());
        assert_eq!(touch.len(), 1);
        assert_eq!(touch[0].last_used, later, "the newest use waited for its minute");
    }
}
