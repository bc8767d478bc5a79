//! What a SET stream receives: each outbox event as Security Event Tokens (RFC 8417), built and
//! signed from the committed event row when it is polled or pushed, never on the write path.
//!
//! An event becomes one SET per event URI it maps to (the table in [`uris`]): the RFC 9967
//! provisioning events (§2.4, the URIs of its §7.4 registry: `create`, `put` and `patch` in their
//! `notice` form, whose payload is `attributes`; `delete`, `activate` and `deactivate` with an
//! empty payload and no `notice`/`full` suffix), CAEP session-revoked and RISC
//! account-disabled/-enabled/-purged. Each SET carries exactly one event, which every receiver
//! (SCIM, Shared Signals) accepts. A SET's `jti` is its event's number and its place in that
//! list: the same on every re-delivery.

use serde_json::{json, Map, Value};

use crate::db::records::{EventRow, IDENTIFIERS, REVOKED_SESSIONS};

pub const PROV_CREATE: &str = "urn:ietf:params:scim:event:prov:create:notice";
pub const PROV_PUT: &str = "urn:ietf:params:scim:event:prov:put:notice";
pub const PROV_PATCH: &str = "urn:ietf:params:scim:event:prov:patch:notice";
pub const PROV_DELETE: &str = "urn:ietf:params:scim:event:prov:delete";
pub const PROV_ACTIVATE: &str = "urn:ietf:params:scim:event:prov:activate";
pub const PROV_DEACTIVATE: &str = "urn:ietf:params:scim:event:prov:deactivate";
pub const CAEP_SESSION_REVOKED: &str = "https://schemas.openid.net/secevent/caep/event-type/session-revoked";
pub const RISC_ACCOUNT_DISABLED: &str = "https://schemas.openid.net/secevent/risc/event-type/account-disabled";
pub const RISC_ACCOUNT_ENABLED: &str = "https://schemas.openid.net/secevent/risc/event-type/account-enabled";
pub const RISC_ACCOUNT_PURGED: &str = "https://schemas.openid.net/secevent/risc/event-type/account-purged";

/// Every event URI a stream may carry (and `ServiceProviderConfig` advertises).
pub const EVENT_URIS: [&str; 10] = [
    PROV_CREATE,
    PROV_PUT,
    PROV_PATCH,
    PROV_DELETE,
    PROV_ACTIVATE,
    PROV_DEACTIVATE,
    CAEP_SESSION_REVOKED,
    RISC_ACCOUNT_DISABLED,
    RISC_ACCOUNT_ENABLED,
    RISC_ACCOUNT_PURGED,
];

/// The SETs an outbox event becomes, in order (a delivery's `part` indexes this list). How
/// many depends on the event's type and, for a deactivation, on the sessions it revoked, which
/// its payload lists as written in its transaction and which scrubbing keeps
/// ([`REVOKED_SESSIONS`]): a SET keeps its `jti` when its event is scrubbed.
pub fn uris(event: &EventRow) -> Vec<&'static str> {
    // Only a deactivation's count depends on its payload: no other event is parsed here.
    let data = match event.kind.as_str() {
        "user.deactivated" => serde_json::from_str(&event.payload).unwrap_or(Value::Null),
        _ => Value::Null,
    };
    uris_of(event, &data)
}

/// [`uris`] of an event whose payload is already parsed.
fn uris_of(event: &EventRow, data: &Value) -> Vec<&'static str> {
    match event.kind.as_str() {
        "user.created" => vec![PROV_CREATE],
        // A profile change says whether a PUT or a PATCH made it.
        "user.updated" if payload_method(event) == Some("PUT") => vec![PROV_PUT],
        "user.updated" => vec![PROV_PATCH],
        // Deactivation revokes every session of the account at once (docs/lifecycle.md): one
        // session-revoked per session; a deactivation written before the sessions were listed
        // keeps the one session-revoked about the account it always had.
        "user.deactivated" => {
            let sessions = revoked_sessions(data).map_or(1, |ids| ids.len());
            let mut uris = vec![PROV_DEACTIVATE, RISC_ACCOUNT_DISABLED];
            uris.extend(std::iter::repeat_n(CAEP_SESSION_REVOKED, sessions));
            uris
        }
        "user.reactivated" => vec![PROV_ACTIVATE, RISC_ACCOUNT_ENABLED],
        // Names of the attributes removed or replaced, never their values.
        "user.former_member" => vec![PROV_PATCH],
        "user.deleted" => vec![PROV_DELETE, RISC_ACCOUNT_PURGED],
        // The group's `members` changed.
        "membership.removed" => vec![PROV_PATCH],
        // user.exported, archive.*: about Roster's archive, not the account's provisioning.
        _ => vec![],
    }
}

/// The ids of the sessions a `user.deactivated` event revoked, in the order it lists them;
/// None for an event written before deactivations listed them.
fn revoked_sessions(data: &Value) -> Option<Vec<&str>> {
    let ids = data.get(REVOKED_SESSIONS)?.as_array()?;
    Some(ids.iter().filter_map(Value::as_str).collect())
}

fn payload_method(event: &EventRow) -> Option<&str> {
    // Cheaper than parsing the payload: the method is written as `"method":"PUT"`.
    event.payload.contains("\"method\":\"PUT\"").then_some("PUT")
}

/// The `jti` of an event's `part`-th SET: unique per issuer (the tenant), and among issuers
/// through the tenant's id.
pub fn jti(tenant_id: &str, event_seq: i64, part: i32) -> String {
    format!("{tenant_id}.{event_seq}.{part}")
}

/// The event number and part a `jti` of this tenant names; `None` for anything else.
pub fn parse_jti(tenant_id: &str, jti: &str) -> Option<(i64, i32)> {
    let rest = jti.strip_prefix(tenant_id)?.strip_prefix('.')?;
    let (seq, part) = rest.split_once('.')?;
    Some((seq.parse().ok()?, part.parse().ok()?))
}

/// Who receives a SET, and as whom it is issued.
pub struct Addressing<'a> {
    /// The tenant's issuer: `{public_url}/tenants/{name}`.
    pub issuer: &'a str,
    pub audience: &'a str,
    pub tenant_id: &'a str,
}

/// The tenant's issuer URL (RFC 8417 `iss`), beside its JWKS at `{issuer}/.well-known/jwks.json`.
pub fn issuer(base: &str, tenant_name: &str) -> String {
    format!("{base}/tenants/{tenant_name}")
}

/// The claims of the `part`-th SET of `event`, issued at `iat` (seconds); `None` when the
/// event has no such SET.
pub fn claims(to: &Addressing<'_>, event: &EventRow, part: i32, iat: i64) -> Option<Value> {
    let part_index = usize::try_from(part).ok()?;
    let data: Value = serde_json::from_str(&event.payload).unwrap_or(Value::Null);
    let uris = uris_of(event, &data);
    let uri = *uris.get(part_index)?;
    let toe = event.created_at.and_utc().timestamp();
    let id = |key: &str| data.get(key).and_then(Value::as_str).map(str::to_owned);
    let (resource, payload) = match event.kind.as_str() {
        "membership.removed" => (format!("/Groups/{}", id("groupId")?), json!({"attributes": ["members"]})),
        _ => {
            let user = event.user_id.clone().or_else(|| id("id"))?;
            let payload = match uri {
                PROV_CREATE => json!({"attributes": created_attributes(&data)}),
                PROV_PATCH | PROV_PUT => json!({"attributes": data.get("attributes").cloned().unwrap_or(json!([]))}),
                CAEP_SESSION_REVOKED => json!({"event_timestamp": toe}),
                // prov:delete, prov:activate, prov:deactivate and the RISC events: the event and
                // its subject say it all.
                _ => json!({}),
            };
            (format!("/Users/{user}"), payload)
        }
    };
    // RFC 9967 §2.1: `uri` is required; `externalId` ("if known") and `id` are optional members,
    // left out.
    let mut subject = json!({"format": "scim", "uri": resource});
    if uri == CAEP_SESSION_REVOKED {
        // The session and its account, as the `complex` subject of the Shared Signals Framework
        // (CAEP 1.0 §3.1's example): `session` is an `opaque` identifier (RFC 9493 §3.2.4).
        let first = uris.iter().position(|u| *u == CAEP_SESSION_REVOKED)?;
        if let Some(sessions) = revoked_sessions(&data) {
            let session = sessions.get(part_index - first)?;
            subject = json!({"format": "complex", "user": subject, "session": {"format": "opaque", "id": session}});
        }
    }
    let mut events = Map::new();
    events.insert(uri.to_owned(), payload);
    Some(json!({
        "iss": to.issuer,
        "aud": to.audience,
        "iat": iat,
        "jti": jti(to.tenant_id, event.tenant_seq, part),
        "toe": toe,
        // RFC 9967 §2.2, a string: events of one transaction share it; an event written before
        // `txn` existed stands alone.
        "txn": match event.txn {
            Some(txn) => txn.to_string(),
            None => format!("event-{}", event.tenant_seq),
        },
        "sub_id": subject,
        "events": events,
    }))
}

/// The attributes a new account was given, by name (RFC 9967 §2.4.1, Figure 5): the `id` the
/// service assigned, `userName` and `active` always, and `externalId` when the event still shows
/// one (names only — a notice carries no values).
fn created_attributes(data: &Value) -> Vec<&'static str> {
    let mut names = vec!["id", "userName"];
    if data.get(IDENTIFIERS).and_then(|i| i.get("externalId")).is_some_and(|v| !v.is_null()) {
        names.push("externalId");
    }
    names.push("active");
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jti_names_its_event_and_part_for_its_tenant_only() {
        let jti = jti("t-1", 42, 2);
        assert_eq!(parse_jti("t-1", &jti), Some((42, 2)));
        assert_eq!(parse_jti("t-2", &jti), None);
        assert_eq!(parse_jti("t-1", "t-1.x.0"), None);
        assert_eq!(parse_jti("t-1", "t-1.4"), None);
    }

    #[test]
    fn every_mapped_uri_is_advertised() {
        let event = |kind: &str, payload: &str| EventRow {
            tenant_seq: 1,
            kind: kind.into(),
            user_id: Some("u".into()),
            payload: payload.into(),
            created_at: chrono::NaiveDateTime::default(),
            txn: None,
        };
        for kind in ["user.created", "user.updated", "user.deactivated", "user.reactivated", "user.deleted"] {
            assert!(uris(&event(kind, "{}")).iter().all(|u| EVENT_URIS.contains(u)), "{kind}");
        }
        assert_eq!(uris(&event("user.updated", r#"{"method":"PUT"}"#)), [PROV_PUT]);
        assert_eq!(uris(&event("user.updated", r#"{"method":"PATCH"}"#)), [PROV_PATCH]);
        assert!(uris(&event("archive.written", "{}")).is_empty());
    }

    #[test]
    fn a_deactivation_has_a_session_revoked_per_revoked_session() {
        let event = |payload: &str| EventRow {
            tenant_seq: 7,
            kind: "user.deactivated".into(),
            user_id: Some("u".into()),
            payload: payload.into(),
            created_at: chrono::NaiveDateTime::default(),
            txn: None,
        };
        let to = Addressing { issuer: "https://r.example/tenants/a", audience: "https://rp.example", tenant_id: "t" };
        let two = event(r#"{"id":"u","revokedSessions":["s1","s2"]}"#);
        assert_eq!(uris(&two), [PROV_DEACTIVATE, RISC_ACCOUNT_DISABLED, CAEP_SESSION_REVOKED, CAEP_SESSION_REVOKED]);
        for (part, session) in [(2, "s1"), (3, "s2")] {
            let claims = claims(&to, &two, part, 0).unwrap();
            assert_eq!(claims["jti"], format!("t.7.{part}"));
            assert_eq!(
                claims["sub_id"],
                json!({"format": "complex", "user": {"format": "scim", "uri": "/Users/u"},
                       "session": {"format": "opaque", "id": session}})
            );
            assert_eq!(claims["events"][CAEP_SESSION_REVOKED], json!({"event_timestamp": 0}));
        }
        assert!(claims(&to, &two, 4, 0).is_none());
        assert_eq!(claims(&to, &two, 1, 0).unwrap()["sub_id"], json!({"format": "scim", "uri": "/Users/u"}));
        // No open session: no session-revoked.
        let none = event(r#"{"id":"u","revokedSessions":[]}"#);
        assert_eq!(uris(&none), [PROV_DEACTIVATE, RISC_ACCOUNT_DISABLED]);
        assert!(claims(&to, &none, 2, 0).is_none());
        // Written before sessions were listed: the one session-revoked about the account.
        let old = event(r#"{"id":"u"}"#);
        assert_eq!(uris(&old), [PROV_DEACTIVATE, RISC_ACCOUNT_DISABLED, CAEP_SESSION_REVOKED]);
        assert_eq!(claims(&to, &old, 2, 0).unwrap()["sub_id"], json!({"format": "scim", "uri": "/Users/u"}));
    }
}
