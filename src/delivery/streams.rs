//! SET streams (docs/security-events.md): a tenant's receivers of Security Event Tokens, pushed
//! to (RFC 8935) or polling (RFC 8936). A stream is a destination of the delivery engine like a
//! webhook — the same table, fan-out, claims, back-off and delivery log —; what differs is the
//! message (a signed SET per event URI, [`super::set`]) and, for a poll stream, that its SETs
//! wait `awaiting` for the receiver's acknowledgement instead of being sent.

use std::collections::BTreeMap;

use chrono::NaiveDateTime;
use serde_json::Value;

use super::keys::{self, KeyError};
use super::outbound;
use super::set::{self, Addressing, EVENT_URIS};
use super::signing::SealKey;
use crate::db::deliveries::{self, DELIVERED, DROPPED, REJECTED};
use crate::db::tenants::{self, Tenant};
use crate::db::webhooks::{self as store, WebhookRow, SET_POLL, SET_PUSH};
use crate::db::{records, write_transaction, DbConnection, DbError};

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("no tenant named {0:?}")]
    UnknownTenant(String),
    #[error("tenant {tenant:?} has no stream {id:?}")]
    UnknownStream { tenant: String, id: String },
    #[error("{0}")]
    InvalidUrl(String),
    #[error("unknown or ambiguous event {0:?}; the event URIs are {uris}", uris = EVENT_URIS.join(", "))]
    UnknownEvent(String),
    #[error("the audience must not be empty")]
    EmptyAudience,
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for StreamError {
    fn from(e: diesel::result::Error) -> Self {
        StreamError::Db(e.into())
    }
}

/// How a stream's SETs leave.
pub enum Delivery<'a> {
    /// POSTed to the URL (RFC 8935).
    Push { url: &'a str, allow_private: bool },
    /// Fetched by the receiver from `POST /api/v1/streams/{id}/poll` (RFC 8936).
    Poll,
}

pub struct NewStream<'a> {
    pub tenant: &'a str,
    pub delivery: Delivery<'a>,
    /// The SETs' `aud`: how the receiver knows them as its own.
    pub audience: &'a str,
    /// Event URIs, or an unambiguous end of one (`prov:create:notice`, `session-revoked`);
    /// empty: every one.
    pub events: &'a [String],
}

/// The event URI `name` stands for: itself, or the one URI it ends.
fn event_uri(name: &str) -> Result<&'static str, StreamError> {
    if let Some(uri) = EVENT_URIS.iter().find(|u| **u == name) {
        return Ok(uri);
    }
    let mut matching =
        EVENT_URIS.iter().filter(|u| u.strip_suffix(name).is_some_and(|head| head.ends_with([':', '/'])));
    match (matching.next(), matching.next()) {
        (Some(uri), None) => Ok(uri),
        _ => Err(StreamError::UnknownEvent(name.to_owned())),
    }
}

fn tenant(conn: &mut DbConnection, name: &str) -> Result<Tenant, StreamError> {
    tenants::by_name(conn, name)?.ok_or_else(|| StreamError::UnknownTenant(name.to_owned()))
}

/// Adds a stream that receives the SETs of the tenant's events committed from now on, and
/// makes the tenant's signing key if it has none yet (so its JWKS is there to configure).
pub fn add(conn: &mut DbConnection, new: &NewStream<'_>, now: NaiveDateTime) -> Result<WebhookRow, StreamError> {
    let audience = new.audience.trim();
    if audience.is_empty() {
        return Err(StreamError::EmptyAudience);
    }
    let (kind, url, allow_private) = match new.delivery {
        Delivery::Push { url, allow_private } => {
            let parsed = outbound::parse_url(url).map_err(StreamError::InvalidUrl)?;
            if !allow_private {
                outbound::check_public(&parsed).map_err(StreamError::InvalidUrl)?;
            }
            (SET_PUSH, parsed.to_string(), allow_private)
        }
        Delivery::Poll => (SET_POLL, String::new(), false),
    };
    let mut uris: Vec<&str> = Vec::new();
    for name in new.events.iter().map(|e| e.trim()).filter(|e| !e.is_empty()) {
        let uri = event_uri(name)?;
        if !uris.contains(&uri) {
            uris.push(uri);
        }
    }
    let tenant = tenant(conn, new.tenant)?;
    let seal = SealKey::load(conn)?;
    keys::current(conn, &seal, &tenant.id, now)?;
    let row = write_transaction(conn, |conn| {
        let row = WebhookRow {
            id: format!("st_{}", uuid::Uuid::new_v4().simple()),
            tenant_id: tenant.id.clone(),
            url,
            event_types: uris.join(","),
            allow_private,
            // SETs are signed with the tenant's key, not a shared secret.
            secret: String::new(),
            previous_secret: None,
            previous_secret_expires_at: None,
            after_event: records::last_event_number(conn, &tenant.id)?,
            created_at: now,
            kind: kind.to_owned(),
            audience: Some(audience.to_owned()),
        };
        store::insert(conn, &row)?;
        Ok::<_, StreamError>(row)
    })?;
    Ok(row)
}

pub fn list(conn: &mut DbConnection, tenant_name: &str) -> Result<Vec<WebhookRow>, StreamError> {
    let tenant = tenant(conn, tenant_name)?;
    Ok(store::of_tenant(conn, &tenant.id, true)?)
}

pub fn remove(conn: &mut DbConnection, tenant_name: &str, id: &str) -> Result<(), StreamError> {
    let tenant = tenant(conn, tenant_name)?;
    if store::remove(conn, &tenant.id, id, true)? {
        Ok(())
    } else {
        Err(StreamError::UnknownStream { tenant: tenant_name.to_owned(), id: id.to_owned() })
    }
}

/// A SET of a stream's delivery, signed now with the tenant's current key; `None` when its
/// event has no such SET (or the event is gone).
pub fn signed_set(
    key: &keys::TenantKey,
    to: &Addressing<'_>,
    event: &records::EventRow,
    part: i32,
    now: NaiveDateTime,
) -> Result<Option<String>, KeyError> {
    match set::claims(to, event, part, now.and_utc().timestamp()) {
        Some(claims) => key.sign(&claims).map(Some),
        None => Ok(None),
    }
}

/// An error a receiver reports for a SET in `setErrs` (RFC 8936 §2.2, §2.4.4): `err` a code of
/// the RFC 8935 §2.4 registry — an open registry, so any string is taken — and `description`
/// (RFC 8936 §2.6).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct SetErr {
    pub err: String,
    #[serde(default)]
    pub description: Option<String>,
}

/// A poll request (RFC 8936 §2.2), parsed.
#[derive(Debug, Clone, Default)]
pub struct Poll {
    pub ack: Vec<String>,
    pub set_errs: BTreeMap<String, SetErr>,
    /// How many SETs at most to return; 0: acknowledge only (RFC 8936 §2.4.2).
    pub max_events: i64,
    pub return_immediately: bool,
}

/// The most SETs one answer holds. An absent `maxEvents` sets no limit (RFC 8936 §2.2), so the
/// answer holds up to this many, and `moreAvailable` says whether more are waiting.
pub const MAX_EVENTS: i64 = 1000;

impl Poll {
    /// The request body: a JSON object whose members are all optional; any malformed one is
    /// refused (the poll endpoint answers it `400` `invalid_request`) with a description of what
    /// is wrong.
    pub fn parse(body: &[u8]) -> Result<Poll, String> {
        let value: Value = if body.iter().all(u8::is_ascii_whitespace) {
            Value::Object(Default::default())
        } else {
            serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?
        };
        let Value::Object(members) = value else { return Err("the body must be a JSON object".into()) };
        let mut poll = Poll { max_events: MAX_EVENTS, ..Poll::default() };
        for (name, value) in members {
            match name.as_str() {
                "ack" => {
                    let list = value.as_array().ok_or("ack must be an array of jti strings")?;
                    poll.ack = list
                        .iter()
                        .map(|j| j.as_str().map(str::to_owned).ok_or("ack must be an array of jti strings"))
                        .collect::<Result<_, _>>()?;
                }
                "setErrs" => {
                    poll.set_errs = serde_json::from_value(value).map_err(|_| {
                        "setErrs must be an object of jti to {\"err\": string, \"description\": string}".to_owned()
                    })?;
                }
                "maxEvents" => {
                    poll.max_events = value
                        .as_i64()
                        .filter(|n| *n >= 0)
                        .ok_or("maxEvents must be a non-negative integer")?
                        .min(MAX_EVENTS);
                }
                "returnImmediately" => {
                    poll.return_immediately = value.as_bool().ok_or("returnImmediately must be true or false")?;
                }
                // Members this transmitter does not know are ignored.
                _ => {}
            }
        }
        Ok(poll)
    }
}

/// What one poll answers (RFC 8936 §2.3): SETs by jti, and whether more are waiting.
#[derive(Debug, Default)]
pub struct Polled {
    pub sets: BTreeMap<String, String>,
    pub more_available: bool,
}

/// The poll stream `id` of the tenant; another tenant's, or a push stream or webhook, is none.
pub fn poll_stream(conn: &mut DbConnection, tenant_id: &str, id: &str) -> Result<Option<WebhookRow>, DbError> {
    Ok(store::by_id(conn, tenant_id, id)?.filter(|s| s.kind == SET_POLL))
}

/// Records the acknowledgements and errors of a poll, in the caller's transaction. A jti this
/// stream has no awaiting SET for (acknowledged already, another tenant's, malformed) changes
/// nothing: acknowledging twice is harmless.
pub fn acknowledge(
    conn: &mut DbConnection,
    stream: &WebhookRow,
    poll: &Poll,
    now: NaiveDateTime,
) -> Result<(), DbError> {
    for jti in &poll.ack {
        if let Some((seq, part)) = set::parse_jti(&stream.tenant_id, jti) {
            deliveries::finish_awaiting(conn, &stream.id, seq, part, DELIVERED, None, now)?;
        }
    }
    for (jti, error) in &poll.set_errs {
        if let Some((seq, part)) = set::parse_jti(&stream.tenant_id, jti) {
            let text = format!("the receiver reported {}: {}", error.err, error.description.as_deref().unwrap_or(""));
            let text: String = text.chars().take(300).collect();
            deliveries::finish_awaiting(conn, &stream.id, seq, part, REJECTED, Some(&text), now)?;
        }
    }
    Ok(())
}

/// The stream's oldest SETs awaiting acknowledgement, up to `max`, signed now; in the caller's
/// transaction, after giving the stream its new events. A SET whose event was purged meanwhile
/// is dropped, not returned.
pub fn take(
    conn: &mut DbConnection,
    seal: &SealKey,
    issuer_base: &str,
    stream: &WebhookRow,
    max: i64,
    now: NaiveDateTime,
) -> Result<Polled, StreamError> {
    super::fan_out_waiting(conn, &stream.tenant_id, &stream.id, now)?;
    if max == 0 {
        return Ok(Polled::default());
    }
    let waiting = deliveries::awaiting(conn, &stream.id, max + 1)?;
    let more_available = waiting.len() as i64 > max;
    let Some(tenant) = tenants::by_id(conn, &stream.tenant_id)? else { return Ok(Polled::default()) };
    let key = keys::current(conn, seal, &tenant.id, now)?;
    let issuer = set::issuer(issuer_base, &tenant.name);
    let to = Addressing { issuer: &issuer, audience: stream.audience.as_deref().unwrap_or(""), tenant_id: &tenant.id };
    let mut polled = Polled { more_available, ..Polled::default() };
    let mut returned = Vec::new();
    for delivery in waiting.into_iter().take(max as usize) {
        let event = records::event_by_number(conn, &tenant.id, delivery.event_seq)?;
        let token = match &event {
            Some(event) => signed_set(&key, &to, event, delivery.part, now)?,
            None => None,
        };
        match token {
            Some(token) => {
                polled.sets.insert(set::jti(&tenant.id, delivery.event_seq, delivery.part), token);
                returned.push(delivery.id);
            }
            None => {
                let gone = "the event was purged before it was acknowledged";
                deliveries::finish_awaiting(
                    conn,
                    &stream.id,
                    delivery.event_seq,
                    delivery.part,
                    DROPPED,
                    Some(gone),
                    now,
                )?;
            }
        }
    }
    deliveries::count_polled(conn, &returned)?;
    Ok(polled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_names_are_uris_or_an_unambiguous_end_of_one() {
        assert_eq!(event_uri("session-revoked").unwrap(), set::CAEP_SESSION_REVOKED);
        assert_eq!(event_uri("prov:create:notice").unwrap(), set::PROV_CREATE);
        assert_eq!(event_uri(set::RISC_ACCOUNT_PURGED).unwrap(), set::RISC_ACCOUNT_PURGED);
        assert!(event_uri("notice").is_err(), "ends three URIs");
        assert!(event_uri("revoked").is_err(), "not the end of a name");
    }

    #[test]
    fn a_poll_body_is_checked_member_by_member() {
        let poll = Poll::parse(br#"{"ack": ["a"], "maxEvents": 5, "returnImmediately": true, "x": 1}"#).unwrap();
        assert_eq!((poll.ack, poll.max_events, poll.return_immediately), (vec!["a".to_owned()], 5, true));
        assert_eq!(Poll::parse(b"").unwrap().max_events, MAX_EVENTS, "absent: no limit but the cap");
        assert_eq!(Poll::parse(br#"{"maxEvents": 999999}"#).unwrap().max_events, MAX_EVENTS);
        for bad in [
            &br#"{"maxEvents": -1}"#[..],
            br#"{"ack": "a"}"#,
            br#"{"ack": [1]}"#,
            b"[]",
            b"{",
            br#"{"returnImmediately": "yes"}"#,
            br#"{"setErrs": {"j": {"description": "no err"}}}"#,
        ] {
            assert!(Poll::parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
