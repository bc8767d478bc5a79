//! Security Event Tokens (docs/security-events.md): every lifecycle transition as RFC 9967 SETs
//! (with CAEP and RISC events), verified with the tenant's published JWKS; RFC 8936 polling with
//! acknowledgements, limits, long polls and errors; RFC 8935 push to a receiver on loopback;
//! key rotation; tenants kept apart.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use roster::config::WebhookSettings;
use roster::delivery::keys::{self, KeyAlg};
use roster::delivery::set::{
    self, Addressing, CAEP_SESSION_REVOKED, EVENT_URIS, PROV_ACTIVATE, PROV_CREATE, PROV_DEACTIVATE, PROV_DELETE,
    PROV_PATCH, PROV_PUT, RISC_ACCOUNT_DISABLED, RISC_ACCOUNT_ENABLED, RISC_ACCOUNT_PURGED,
};
use roster::delivery::signing::SealKey;
use roster::delivery::streams::{self, Delivery, NewStream};
use roster::delivery::webhooks;
use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{json as json_body, Backend, TestApp, TestDatabase};

const AUDIENCE: &str = "https://receiver.example.com";
const ROSTER: &str = "urn:ietf:params:scim:schemas:extension:roster:2.0:User";

fn add_poll_stream(app: &TestApp, tenant: &str, events: &[&str]) -> String {
    let events: Vec<String> = events.iter().map(|e| e.to_string()).collect();
    let new = NewStream { tenant, delivery: Delivery::Poll, audience: AUDIENCE, events: &events };
    streams::add(&mut app.connection(), &new, app.clock.now()).expect("stream added").id
}

async fn poll_with(app: &TestApp, token: &str, stream: &str, body: &Value) -> reqwest::Response {
    app.client
        .post(app.url(&format!("/api/v1/streams/{stream}/poll")))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("poll sent")
}

/// A poll that must answer 200: the SETs by jti, and `moreAvailable`.
async fn poll(app: &TestApp, token: &str, stream: &str, body: Value) -> (BTreeMap<String, String>, bool) {
    let res = poll_with(app, token, stream, &body).await;
    let status = res.status();
    let answer = json_body(res).await;
    assert_eq!(status, 200, "poll: {answer}");
    let sets =
        answer["sets"].as_object().expect("sets").iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()));
    (sets.collect(), answer["moreAvailable"].as_bool().expect("moreAvailable"))
}

async fn jwks(app: &TestApp, tenant: &str) -> JwkSet {
    let res = app.client.get(app.url(&format!("/tenants/{tenant}/.well-known/jwks.json"))).send().await.unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.expect("a JWK set")
}

/// The SET's claims, once its header (`typ`, `kid`) and signature have been checked against
/// the JWKS, with `iss` and `aud` as the tenant's.
fn verify(set: &str, keys: &JwkSet, issuer: &str) -> Value {
    let header = jsonwebtoken::decode_header(set).expect("a JWS header");
    assert_eq!(header.typ.as_deref(), Some("secevent+jwt"));
    let kid = header.kid.expect("a kid");
    let jwk = keys.find(&kid).unwrap_or_else(|| panic!("kid {kid} is not in the JWKS"));
    let mut validation = Validation::new(header.alg);
    assert!(matches!(header.alg, Algorithm::ES256 | Algorithm::RS256));
    // A SET has no `exp` (RFC 8417 §2.2).
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.set_audience(&[AUDIENCE]);
    validation.set_issuer(&[issuer]);
    jsonwebtoken::decode::<Value>(set, &DecodingKey::from_jwk(jwk).unwrap(), &validation).expect("a valid SET").claims
}

/// The one event URI of a SET and its payload.
fn event_of(claims: &Value) -> (String, Value) {
    let events = claims["events"].as_object().expect("events");
    assert_eq!(events.len(), 1, "one event per SET: {claims}");
    let (uri, payload) = events.iter().next().unwrap();
    (uri.clone(), payload.clone())
}

fn issuer(app: &TestApp, tenant: &str) -> String {
    format!("{}/tenants/{tenant}", app.address)
}

/// Every SET the stream has, verified, in event order (acknowledging them as it goes).
async fn drain(app: &TestApp, token: &str, stream: &str, tenant: &str) -> Vec<Value> {
    let keys = jwks(app, tenant).await;
    let mut all = Vec::new();
    let mut ack: Vec<String> = Vec::new();
    loop {
        let (sets, more) = poll(app, token, stream, json!({"ack": ack, "returnImmediately": true})).await;
        if sets.is_empty() {
            break;
        }
        ack = sets.keys().cloned().collect();
        all.extend(sets.values().map(|s| verify(s, &keys, &issuer(app, tenant))));
        if !more {
            let (rest, _) = poll(app, token, stream, json!({"ack": ack, "returnImmediately": true})).await;
            assert!(rest.is_empty());
            break;
        }
    }
    // The jti ends with the event number and the SET's place among the event's.
    let order = |c: &Value| {
        let jti = c["jti"].as_str().unwrap();
        let mut parts = jti.rsplitn(3, '.');
        let part: i64 = parts.next().unwrap().parse().unwrap();
        let seq: i64 = parts.next().unwrap().parse().unwrap();
        (seq, part)
    };
    all.sort_by_key(order);
    all
}

async fn patch_user(app: &TestApp, id: &str, ops: Value) {
    let res = app
        .patch(
            &format!("/scim/v2/Users/{id}"),
            &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops}),
        )
        .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
}

async fn every_transition_becomes_its_sets_signed_with_the_published_key(app: TestApp) {
    let stream = add_poll_stream(&app, "default", &[]);
    let reader = app.issue_token("default", "receiver", "events");
    let user = app.create_user(json!({"userName": "ada@example.com", "externalId": "ext-ada"})).await;
    let id = user["id"].as_str().unwrap().to_owned();
    patch_user(&app, &id, json!([{"op": "replace", "path": "displayName", "value": "Ada"}])).await;
    let res = app
        .put(
            &format!("/scim/v2/Users/{id}"),
            &json!({"userName": "ada@example.com", "externalId": "ext-ada", "displayName": "Ada L"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    // Read before the deletion, which removes the identifiers from the account's events.
    let mut sets = drain(&app, &reader, &stream, "default").await;
    assert_eq!(event_of(&sets[0]).1, json!({"attributes": ["id", "userName", "externalId", "active"]}));
    patch_user(&app, &id, json!([{"op": "replace", "path": "active", "value": false}])).await;
    patch_user(&app, &id, json!([{"op": "replace", "path": "active", "value": true}])).await;
    // Active: the default policy deactivates and deletes in one transaction.
    assert_eq!(app.delete(&format!("/scim/v2/Users/{id}")).await.status(), 204);

    sets.extend(drain(&app, &reader, &stream, "default").await);
    let uris: Vec<String> = sets.iter().map(|c| event_of(c).0).collect();
    assert_eq!(
        uris,
        [
            PROV_CREATE,
            PROV_PATCH,
            PROV_PUT,
            // No open session: no session-revoked.
            PROV_DEACTIVATE,
            RISC_ACCOUNT_DISABLED,
            PROV_ACTIVATE,
            RISC_ACCOUNT_ENABLED,
            PROV_DEACTIVATE,
            RISC_ACCOUNT_DISABLED,
            PROV_DELETE,
            RISC_ACCOUNT_PURGED,
        ]
    );
    for claims in &sets {
        assert_eq!(claims["sub_id"], json!({"format": "scim", "uri": format!("/Users/{id}")}));
        assert!(claims["iat"].is_i64() && claims["toe"].is_i64() && claims["txn"].is_string(), "{claims}");
    }
    let jtis: BTreeSet<&str> = sets.iter().map(|c| c["jti"].as_str().unwrap()).collect();
    assert_eq!(jtis.len(), sets.len(), "a jti per SET");
    // Notices name attributes, never values.
    assert_eq!(event_of(&sets[1]).1, json!({"attributes": ["displayName"]}));
    let text = serde_json::to_string(&sets).unwrap();
    assert!(!text.contains("ada@example.com") && !text.contains("ext-ada"), "no values in notices");

    // One transaction, one txn: the deactivation and deletion of the DELETE share theirs; each
    // request before it has its own.
    let txn = |i: usize| sets[i]["txn"].as_str().unwrap().to_owned();
    assert!((3..5).all(|i| txn(i) == txn(3)), "one deactivation's SETs share its txn");
    assert!((7..11).all(|i| txn(i) == txn(7)), "the DELETE's deactivation and deletion share a txn");
    let distinct: BTreeSet<String> = [0, 1, 2, 3, 5, 7].into_iter().map(txn).collect();
    assert_eq!(distinct.len(), 6, "separate requests, separate txns");

    // What the service advertises (RFC 9967 §4).
    let config = app.get_ok("/scim/v2/ServiceProviderConfig").await;
    assert_eq!(config["securityEvents"]["asyncRequest"], "none");
    assert_eq!(config["securityEvents"]["eventUris"], json!(EVENT_URIS));
}

/// Opens a product session for the user `id` of `tenant`, as a sign-in does; returns its id.
fn open_session(app: &TestApp, tenant: &str, id: &str) -> String {
    let mut conn = app.connection();
    let tenant = roster::db::tenants::by_name(&mut conn, tenant).unwrap().unwrap();
    let user = roster::db::users::find(&mut conn, &tenant.id, id).unwrap().unwrap();
    let session = uuid::Uuid::new_v4().to_string();
    let now = app.clock.now();
    let hash = format!("hash-of-{session}");
    roster::db::sessions::insert(
        &mut conn,
        &tenant.id,
        &session,
        user.pk,
        &hash,
        now,
        now + chrono::Duration::hours(8),
    )
    .unwrap();
    session
}

async fn a_deactivation_revokes_each_open_session_in_its_own_set(app: TestApp) {
    let stream = add_poll_stream(&app, "default", &[]);
    let reader = app.issue_token("default", "receiver", "events");
    let user = app.create_user(json!({"userName": "grace@example.com", "externalId": "ext-grace"})).await;
    let id = user["id"].as_str().unwrap().to_owned();
    let mut sessions = BTreeSet::from([open_session(&app, "default", &id), open_session(&app, "default", &id)]);
    // A session already ended is not revoked again, nor named.
    let ended = open_session(&app, "default", &id);
    let tenant = roster::db::tenants::by_name(&mut app.connection(), "default").unwrap().unwrap();
    assert!(roster::db::sessions::revoke(&mut app.connection(), &tenant.id, &ended, app.clock.now()).unwrap());
    patch_user(&app, &id, json!([{"op": "replace", "path": "active", "value": false}])).await;

    // Polled (and so signed) before the account's earlier events are scrubbed.
    let before = drain(&app, &reader, &stream, "default").await;
    let uris: Vec<String> = before.iter().map(|c| event_of(c).0).collect();
    assert_eq!(uris, [PROV_CREATE, PROV_DEACTIVATE, RISC_ACCOUNT_DISABLED, CAEP_SESSION_REVOKED, CAEP_SESSION_REVOKED]);
    for claims in &before[3..] {
        assert_eq!(event_of(claims).1, json!({"event_timestamp": claims["toe"]}));
        let sub = &claims["sub_id"];
        assert_eq!(sub["format"], "complex", "{claims}");
        assert_eq!(sub["user"], json!({"format": "scim", "uri": format!("/Users/{id}")}));
        assert_eq!(sub["session"]["format"], "opaque");
        assert!(sessions.remove(sub["session"]["id"].as_str().unwrap()), "a revoked session, once: {sub}");
        assert_eq!(claims["txn"], before[1]["txn"], "one transaction");
    }
    assert!(sessions.is_empty(), "every open session named: {sessions:?}");

    // The account becomes a Former Member: its earlier events are scrubbed; the deactivation
    // keeps its SETs, each with its jti and subject (what a re-delivery of them would sign).
    app.clock.advance(chrono::Duration::days(5));
    patch_user(&app, &id, json!([{"op": "replace", "path": format!("{ROSTER}:formerMember"), "value": true}])).await;
    let events = roster::db::records::events_after(&mut app.connection(), &tenant.id, 0, 100).unwrap();
    assert!(events.iter().all(|e| !e.payload.contains("ext-grace")), "scrubbed: {events:?}");
    let to = Addressing { issuer: &issuer(&app, "default"), audience: AUDIENCE, tenant_id: &tenant.id };
    let rebuilt: Vec<Value> = events
        .iter()
        .flat_map(|e| (0..set::uris(e).len()).map(|part| set::claims(&to, e, part as i32, 0).unwrap()))
        .collect();
    let identity = |c: &Value| (c["jti"].clone(), event_of(c).0, c["sub_id"].clone());
    let before: Vec<_> = before.iter().map(identity).collect();
    let after: Vec<_> = rebuilt.iter().map(identity).collect();
    assert_eq!(after[..before.len()], before[..], "the same SETs after the scrub");
    assert_eq!(after[before.len()].1, PROV_PATCH, "then the Former Member transition's");
}

async fn a_former_member_set_names_attributes_never_removed_values(app: TestApp) {
    let stream = add_poll_stream(&app, "default", &["prov:patch:notice"]);
    let reader = app.issue_token("default", "receiver", "events");
    let user = app
        .create_user(json!({"userName": "grace@example.com", "name": {"givenName": "Grace", "familyName": "Hopper"},
            "emails": [{"value": "grace.hopper@example.com", "type": "work"}], "title": "Rear Admiral"}))
        .await;
    let id = user["id"].as_str().unwrap().to_owned();
    patch_user(&app, &id, json!([{"op": "replace", "path": "active", "value": false}])).await;
    app.clock.advance(chrono::Duration::days(5));
    patch_user(&app, &id, json!([{"op": "replace", "path": format!("{ROSTER}:formerMember"), "value": true}])).await;

    let sets = drain(&app, &reader, &stream, "default").await;
    assert_eq!(sets.len(), 1, "the stream wants prov:patch only: {sets:?}");
    let (uri, payload) = event_of(&sets[0]);
    assert_eq!(uri, PROV_PATCH);
    let names: BTreeSet<&str> = payload["attributes"].as_array().unwrap().iter().map(|n| n.as_str().unwrap()).collect();
    for removed in ["emails", "title", "userName", "name"] {
        assert!(names.contains(removed), "{removed} named: {payload}");
    }
    let text = sets[0].to_string();
    for value in ["grace@example.com", "grace.hopper@example.com", "Grace", "Hopper", "Rear Admiral"] {
        assert!(!text.contains(value), "the SET holds {value:?}: {text}");
    }
}

async fn polls_acknowledge_limit_and_refuse_as_rfc_8936_says(app: TestApp) {
    let stream = add_poll_stream(&app, "default", &["prov:create:notice"]);
    let reader = app.issue_token("default", "receiver", "events");
    for i in 0..3 {
        app.create_user(json!({"userName": format!("poll{i}")})).await;
    }
    let (first, more) = poll(&app, &reader, &stream, json!({"maxEvents": 2, "returnImmediately": true})).await;
    assert_eq!((first.len(), more), (2, true));
    // Unacknowledged SETs come again, with the same jti.
    let (again, _) = poll(&app, &reader, &stream, json!({"maxEvents": 2, "returnImmediately": true})).await;
    assert_eq!(again.keys().collect::<Vec<_>>(), first.keys().collect::<Vec<_>>());
    let ack: Vec<&String> = first.keys().collect();
    let (rest, more) =
        poll(&app, &reader, &stream, json!({"ack": ack, "maxEvents": 10, "returnImmediately": true})).await;
    assert_eq!((rest.len(), more), (1, false));
    assert!(rest.keys().all(|j| !first.contains_key(j)), "an acknowledged SET is not returned again");
    // An error report ends a SET too; maxEvents 0 only acknowledges.
    let jti = rest.keys().next().unwrap().clone();
    // `err` a code of the RFC 8935 §2.4 registry (RFC 8936 §2.6).
    let errs = json!({jti.clone(): {"err": "invalid_request", "description": "unknown account"}});
    let (none, more) = poll(&app, &reader, &stream, json!({"setErrs": errs, "maxEvents": 0})).await;
    assert_eq!((none.len(), more), (0, false));
    let (none, _) = poll(&app, &reader, &stream, json!({"returnImmediately": true})).await;
    assert!(none.is_empty());
    let log = webhooks::delivery_log(&mut app.connection(), "default", None, Some("rejected"), 10).unwrap();
    assert_eq!(log.len(), 1);
    assert!(
        log[0].last_error.as_deref().unwrap().contains("invalid_request: unknown account"),
        "{:?}",
        log[0].last_error
    );
    let acknowledged = webhooks::delivery_log(&mut app.connection(), "default", None, Some("delivered"), 10).unwrap();
    assert_eq!(acknowledged.len(), 2);

    // Errors: a malformed request is 400 invalid_request, in RFC 8935 §2.3's shape.
    for bad in [json!([]), json!({"maxEvents": -1}), json!({"ack": "x"}), json!({"returnImmediately": "yes"})] {
        let res = poll_with(&app, &reader, &stream, &bad).await;
        assert_eq!(res.status(), 400, "{bad}");
        let body = json_body(res).await;
        assert_eq!(body["err"], "invalid_request", "{body}");
        assert!(body["description"].as_str().is_some_and(|d| !d.is_empty()));
    }
    let res = poll_with(&app, &app.token, &stream, &json!({})).await;
    assert_eq!(res.status(), 403, "a token without the events scope");
    assert_eq!(json_body(res).await["err"], "access_denied");
    let res = app.client.post(app.url(&format!("/api/v1/streams/{stream}/poll"))).body("{}").send().await.unwrap();
    assert_eq!(res.status(), 401, "no token");
    assert_eq!(poll_with(&app, &reader, "st_nothing", &json!({})).await.status(), 404);
}

async fn a_long_poll_answers_when_an_event_commits(app: TestApp) {
    let stream = add_poll_stream(&app, "default", &[]);
    let reader = app.issue_token("default", "receiver", "events");
    let started = Instant::now();
    let waiting = {
        let (client, url, reader) =
            (app.client.clone(), app.url(&format!("/api/v1/streams/{stream}/poll")), reader.clone());
        tokio::spawn(async move {
            client.post(url).bearer_auth(reader).body(r#"{"returnImmediately": false}"#).send().await.unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!waiting.is_finished(), "nothing to return yet: the poll waits");
    app.create_user(json!({"userName": "late"})).await;
    let answer: Value = waiting.await.unwrap().json().await.unwrap();
    assert_eq!(answer["sets"].as_object().unwrap().len(), 1, "{answer}");
    assert!(started.elapsed() < Duration::from_secs(10), "woken by the write, not the 20 s bound");
}

/// A push receiver on loopback (RFC 8935): records each request; refuses the first `refuse`
/// with 400 and an RFC 8935 error body, then accepts with 202.
struct PushReceiver {
    url: String,
    received: Arc<Mutex<Vec<(String, String)>>>,
}

impl PushReceiver {
    async fn start(refuse: usize) -> PushReceiver {
        use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
        let received: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
        let shared = received.clone();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/events", listener.local_addr().unwrap());
        let server = HttpServer::new(move || {
            let shared = shared.clone();
            App::new().route(
                "/events",
                web::post().to(move |req: HttpRequest, body: String| {
                    let shared = shared.clone();
                    async move {
                        let media = req.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
                        let mut received = shared.lock().unwrap();
                        received.push((media.to_owned(), body));
                        if received.len() <= refuse {
                            HttpResponse::BadRequest()
                                .json(json!({"err": "invalid_key", "description": "the key is not known yet"}))
                        } else {
                            HttpResponse::Accepted().finish()
                        }
                    }
                }),
            )
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        tokio::spawn(server);
        PushReceiver { url, received }
    }

    fn requests(&self) -> Vec<(String, String)> {
        self.received.lock().unwrap().clone()
    }
}

fn fast() -> WebhookSettings {
    WebhookSettings { retry_base_ms: 100, retry_max_ms: 300, poll_ms: 50, ..WebhookSettings::default() }
}

async fn sets_are_pushed_to_the_receiver_and_refusals_logged(backend: Backend) {
    let Some(db) = TestDatabase::create(backend) else { return };
    let app = TestApp::spawn_with(db, |s| s.webhooks = fast()).await;
    let receiver = PushReceiver::start(1).await;
    let events: Vec<String> = Vec::new();
    let new = NewStream {
        tenant: "default",
        delivery: Delivery::Push { url: &receiver.url, allow_private: true },
        audience: AUDIENCE,
        events: &events,
    };
    streams::add(&mut app.connection(), &new, app.clock.now()).unwrap();
    let user = app.create_user(json!({"userName": "pushed"})).await;
    let id = user["id"].as_str().unwrap();
    patch_user(&app, id, json!([{"op": "replace", "path": "active", "value": false}])).await;

    let deadline = Instant::now() + Duration::from_secs(20);
    // One refused try, then the create and the deactivation's two SETs accepted (no session
    // was open, so no session-revoked).
    while receiver.requests().len() < 4 {
        assert!(Instant::now() < deadline, "pushed: {:?}", receiver.requests());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let keys = jwks(&app, "default").await;
    let requests = receiver.requests();
    assert!(requests.iter().all(|(media, _)| media == "application/secevent+jwt"));
    let accepted: Vec<Value> =
        requests[1..].iter().map(|(_, set)| verify(set, &keys, &issuer(&app, "default"))).collect();
    let mut uris: Vec<String> = accepted.iter().map(|c| event_of(c).0).collect();
    uris.sort();
    let mut expected = vec![PROV_CREATE, PROV_DEACTIVATE, RISC_ACCOUNT_DISABLED];
    expected.sort();
    assert_eq!(uris, expected);
    // The refused try and its RFC 8935 error are in the delivery log; it went through on a retry.
    let log = webhooks::delivery_log(&mut app.connection(), "default", None, None, 100).unwrap();
    assert!(log.iter().all(|d| d.status == "delivered"), "{log:?}");
    let retried = log.iter().find(|d| d.attempts == 2).expect("one delivery tried twice");
    assert_eq!(retried.last_status, Some(202));
    // The refused SET came again with its jti (re-signed: a later `iat`).
    let refused = verify(&requests[0].1, &keys, &issuer(&app, "default"));
    assert!(accepted.iter().any(|c| c["jti"] == refused["jti"]), "the refused SET was sent again");
}

async fn a_rotated_key_verifies_until_its_grace_ends(app: TestApp) {
    let stream = add_poll_stream(&app, "default", &[]);
    let reader = app.issue_token("default", "receiver", "events");
    app.create_user(json!({"userName": "before-rotation"})).await;
    let (old_sets, _) = poll(&app, &reader, &stream, json!({"returnImmediately": true})).await;
    let old_kid = jsonwebtoken::decode_header(old_sets.values().next().unwrap()).unwrap().kid.unwrap();

    let seal = SealKey::load(&mut app.connection()).unwrap();
    let tenant = roster::db::tenants::by_name(&mut app.connection(), "default").unwrap().unwrap();
    let (new_key, retired) = keys::rotate(
        &mut app.connection(),
        &seal,
        &tenant.id,
        KeyAlg::Rs256,
        Duration::from_secs(3600),
        app.clock.now(),
    )
    .unwrap();
    assert_eq!(retired, 1);
    let published = jwks(&app, "default").await;
    assert!(published.find(&old_kid).is_some() && published.find(&new_key.kid).is_some());
    // A SET signed before the rotation still verifies; new ones carry the new kid (RS256).
    for set in old_sets.values() {
        verify(set, &published, &issuer(&app, "default"));
    }
    app.create_user(json!({"userName": "after-rotation"})).await;
    let ack: Vec<&String> = old_sets.keys().collect();
    let (new_sets, _) = poll(&app, &reader, &stream, json!({"ack": ack, "returnImmediately": true})).await;
    let header = jsonwebtoken::decode_header(new_sets.values().next().unwrap()).unwrap();
    assert_eq!((header.kid.as_deref(), header.alg), (Some(new_key.kid.as_str()), Algorithm::RS256));
    verify(new_sets.values().next().unwrap(), &published, &issuer(&app, "default"));

    // Past the grace period the old key is dropped from the JWKS.
    app.clock.advance(chrono::Duration::hours(2));
    let published = jwks(&app, "default").await;
    assert!(published.find(&old_kid).is_none());
    assert_eq!(published.keys.len(), 1);
}

async fn tenants_never_see_each_others_streams_or_keys(app: TestApp) {
    roster::db::tenants::create(&mut app.connection(), "globex").unwrap();
    let ours = add_poll_stream(&app, "default", &[]);
    let theirs = add_poll_stream(&app, "globex", &[]);
    let our_reader = app.issue_token("default", "receiver", "events");
    let their_reader = app.issue_token("globex", "receiver", "events");
    app.create_user(json!({"userName": "ours"})).await;

    // Another tenant's stream id finds nothing, even with a valid token of the right scope.
    assert_eq!(poll_with(&app, &their_reader, &ours, &json!({"returnImmediately": true})).await.status(), 404);
    assert_eq!(poll_with(&app, &our_reader, &theirs, &json!({"returnImmediately": true})).await.status(), 404);
    let (theirs_sets, _) = poll(&app, &their_reader, &theirs, json!({"returnImmediately": true})).await;
    assert!(theirs_sets.is_empty(), "globex's stream has none of default's events");
    let (our_sets, _) = poll(&app, &our_reader, &ours, json!({"returnImmediately": true})).await;
    assert_eq!(our_sets.len(), 1);
    // A jti of ours acknowledged on their stream changes nothing of ours.
    let ack: Vec<&String> = our_sets.keys().collect();
    poll(&app, &their_reader, &theirs, json!({"ack": ack, "maxEvents": 0})).await;
    let (still, _) = poll(&app, &our_reader, &ours, json!({"returnImmediately": true})).await;
    assert_eq!(still.len(), 1);

    // Each tenant publishes its own keys; its SETs verify with its JWKS only, as its issuer.
    let our_keys = jwks(&app, "default").await;
    let their_keys = jwks(&app, "globex").await;
    let our_kids: BTreeSet<_> = our_keys.keys.iter().filter_map(|k| k.common.key_id.clone()).collect();
    assert!(their_keys.keys.iter().all(|k| !our_kids.contains(k.common.key_id.as_ref().unwrap())));
    let kid = jsonwebtoken::decode_header(still.values().next().unwrap()).unwrap().kid.unwrap();
    assert!(our_keys.find(&kid).is_some() && their_keys.find(&kid).is_none(), "signed with default's key only");
    assert_eq!(app.client.get(app.url("/tenants/nobody/.well-known/jwks.json")).send().await.unwrap().status(), 404);

    // The commands see a tenant's own streams only, and webhooks and streams apart.
    let listed: Vec<String> =
        streams::list(&mut app.connection(), "globex").unwrap().into_iter().map(|s| s.id).collect();
    assert_eq!(listed, [theirs.as_str()]);
    assert!(streams::remove(&mut app.connection(), "globex", &ours).is_err());
    assert!(webhooks::list(&mut app.connection(), "default").unwrap().is_empty(), "a stream is no webhook");
    assert!(webhooks::remove(&mut app.connection(), "default", &ours).is_err());
    streams::remove(&mut app.connection(), "default", &ours).unwrap();
    assert_eq!(poll_with(&app, &our_reader, &ours, &json!({})).await.status(), 404);
}

both_backends!(
    every_transition_becomes_its_sets_signed_with_the_published_key,
    a_deactivation_revokes_each_open_session_in_its_own_set,
    a_former_member_set_names_attributes_never_removed_values,
    polls_acknowledge_limit_and_refuse_as_rfc_8936_says,
    a_long_poll_answers_when_an_event_commits,
    a_rotated_key_verifies_until_its_grace_ends,
    tenants_never_see_each_others_streams_or_keys,
);

both_backends!(by_backend: sets_are_pushed_to_the_receiver_and_refusals_logged);
