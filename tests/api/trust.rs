//! What Roster believes about a request: links only to hosts it is configured to serve, cursors
//! it made itself, and values PostgreSQL text can hold.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{assert_scim_error, json, Backend, TestApp, TestDatabase};

/// Creates a user with extra request headers; returns `Location` and `meta.location`.
async fn create_with_headers(app: &TestApp, user_name: &str, headers: &[(&str, &str)]) -> (String, String) {
    let mut req = app
        .client
        .post(app.url("/scim/v2/Users"))
        .bearer_auth(&app.token)
        .header("content-type", "application/scim+json")
        .body(json!({ "userName": user_name }).to_string());
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let res = req.send().await.unwrap();
    assert_eq!(res.status(), 201);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let body = json(res).await;
    let meta = body["meta"]["location"].as_str().unwrap().to_owned();
    assert_eq!(location, meta);
    (location, meta)
}

/// Without `public_url`, a forged `Host` or forwarded header does not become the link a client
/// is told to follow: the listen address is used instead.
async fn forged_host_and_forwarded_headers_do_not_reach_locations(app: TestApp) {
    let own = format!("{}/scim/v2/Users/", app.address);
    let forged: [&[(&str, &str)]; 5] = [
        &[("host", "evil.example")],
        &[("x-forwarded-host", "evil.example")],
        &[("x-forwarded-proto", "https"), ("x-forwarded-host", "evil.example:443")],
        &[("forwarded", "host=evil.example;proto=https")],
        &[("host", "evil.example"), ("x-forwarded-for", "10.0.0.1")],
    ];
    for (i, headers) in forged.iter().enumerate() {
        let (location, _) = create_with_headers(&app, &format!("forged{i}"), headers).await;
        assert!(location.starts_with(&own), "{headers:?} gave {location}");
    }
    // A loopback name for the listen port is one of the server's own.
    let port = app.address.rsplit(':').next().unwrap();
    let localhost = format!("localhost:{port}");
    let (location, _) = create_with_headers(&app, "local", &[("host", &localhost)]).await;
    assert!(location.starts_with(&format!("http://{localhost}/scim/v2/Users/")), "{location}");
}

/// Forwarded headers are believed from a configured proxy, for hosts on the allowed list.
async fn forwarded_headers_count_only_from_trusted_proxies(backend: Backend) {
    let Some(db) = TestDatabase::create(backend) else { return };
    let app = TestApp::spawn_with(db, |s| {
        s.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
        s.allowed_hosts = vec!["scim.example.com".into()];
    })
    .await;
    let forwarded = [("x-forwarded-host", "scim.example.com"), ("x-forwarded-proto", "https")];
    let (location, _) = create_with_headers(&app, "proxied", &forwarded).await;
    assert!(location.starts_with("https://scim.example.com/scim/v2/Users/"), "{location}");
    let (location, _) =
        create_with_headers(&app, "rfc7239", &[("forwarded", "host=scim.example.com;proto=https")]).await;
    assert!(location.starts_with("https://scim.example.com/scim/v2/Users/"), "{location}");
    // Even a trusted proxy passes on what the client sent as its Host: still checked.
    let (location, _) = create_with_headers(&app, "relayed", &[("x-forwarded-host", "evil.example")]).await;
    assert!(location.starts_with(&format!("{}/scim/v2/Users/", app.address)), "{location}");
    // The allowed list also admits the name in a plain Host header.
    let (location, _) = create_with_headers(&app, "direct", &[("host", "scim.example.com")]).await;
    assert!(location.starts_with("http://scim.example.com/scim/v2/Users/"), "{location}");
}

const SORTED: &str = "/scim/v2/Users?count=1&sortBy=userName";

/// The first page's `nextCursor`, over users whose userNames are e-mail addresses.
async fn a_cursor(app: &TestApp) -> String {
    for name in ["alice.cursor@example.com", "bob.cursor@example.com"] {
        app.create_user(json!({ "userName": name })).await;
    }
    let page = app.get_ok(&format!("{SORTED}&cursor=")).await;
    page["nextCursor"].as_str().expect("a next page").to_owned()
}

/// `cursor` with one field changed, as a client would edit a readable cursor (base64 JSON, as
/// they once were); for a sealed one, a made-up cursor of that shape.
fn edited(cursor: &str, field: &str, value: Value) -> String {
    let readable = URL_SAFE_NO_PAD.decode(cursor).ok().and_then(|b| serde_json::from_slice::<Value>(&b).ok());
    let mut forged = readable
        .unwrap_or_else(|| json!({"f": true, "k": "alice", "p": 1, "q": "0", "t": chrono::Utc::now().timestamp()}));
    forged[field] = value;
    URL_SAFE_NO_PAD.encode(forged.to_string())
}

async fn invalid_cursor(app: &TestApp, token: &str, cursor: &str) {
    let res = app.get_with(&format!("{SORTED}&cursor={cursor}"), token).await;
    let body = assert_scim_error(res, 400).await;
    assert_eq!(body["scimType"], "invalidCursor", "{body}");
}

/// RFC 9865 §2 leaves cursors opaque: Roster's carry neither the sort key (here an e-mail
/// address) nor anything a client can read, in the text or under its base64.
async fn cursors_reveal_no_sort_key(app: TestApp) {
    let cursor = a_cursor(&app).await;
    let decoded = URL_SAFE_NO_PAD.decode(&cursor).unwrap_or_default();
    for text in [cursor.as_bytes(), decoded.as_slice()] {
        assert!(!text.windows(5).any(|w| w == b"alice"), "the sort key shows in {cursor}");
        assert!(!text.windows(3).any(|w| w == b"\"k\""), "the cursor's fields show in {cursor}");
    }
    let next = app.get_ok(&format!("{SORTED}&cursor={cursor}")).await;
    assert_eq!(next["Resources"][0]["userName"], "bob.cursor@example.com");
}

/// A cursor is authenticated: any edited byte, or a cursor made up by a client, is 400
/// `invalidCursor` — so its embedded time, and with it the 24 h expiry, cannot be moved.
async fn edited_or_made_up_cursors_are_invalid(app: TestApp) {
    let cursor = a_cursor(&app).await;
    for i in [0, cursor.len() / 2, cursor.len() - 1] {
        let mut bytes = cursor.clone().into_bytes();
        bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
        invalid_cursor(&app, &app.token, &String::from_utf8(bytes).unwrap()).await;
    }
    let now = chrono::Utc::now().timestamp();
    let made_up = json!({"f": true, "k": "a", "p": 1, "q": "0", "t": now + 86_400 * 365});
    invalid_cursor(&app, &app.token, &URL_SAFE_NO_PAD.encode(made_up.to_string())).await;
    invalid_cursor(&app, &app.token, "not-a-cursor").await;
    // Moving the issue time forward would have kept a cursor alive past its 24 h.
    let later = chrono::Utc::now().timestamp() + 86_400 * 365;
    invalid_cursor(&app, &app.token, &edited(&cursor, "t", json!(later))).await;
}

/// The tenant is bound into every cursor: one tenant's cursor is refused in another.
async fn a_cursor_from_another_tenant_is_invalid(app: TestApp) {
    let cursor = a_cursor(&app).await;
    roster::db::tenants::create(&mut app.connection(), "acme").unwrap();
    let theirs = app.issue_token("acme", "entra", "scim");
    invalid_cursor(&app, &theirs, &cursor).await;
}

/// A forged cursor with a NUL in its sort key was a 500 on PostgreSQL, whose text cannot hold
/// U+0000; it is refused before any query.
async fn a_forged_cursor_with_nul_is_400(app: TestApp) {
    let cursor = a_cursor(&app).await;
    let forged = edited(&cursor, "k", json!("alice\u{0}"));
    invalid_cursor(&app, &app.token, &forged).await;
}

/// Cursors expire after `cursorTimeout` (24 h) by the server's clock.
async fn a_cursor_expires_after_a_day(app: TestApp) {
    let cursor = a_cursor(&app).await;
    app.clock.advance(chrono::Duration::hours(25));
    let body = assert_scim_error(app.get(&format!("{SORTED}&cursor={cursor}")).await, 400).await;
    assert_eq!(body["scimType"], "expiredCursor", "{body}");
}

/// Every node sharing the database seals cursors with the same key, kept in the database.
async fn a_cursor_from_one_node_works_on_another(backend: Backend) {
    let Some(db) = TestDatabase::create(backend) else { return };
    let first = TestApp::spawn_with(db, |_| {}).await;
    let cursor = a_cursor(&first).await;
    let second = roster::startup::Application::build(first.settings.clone()).unwrap();
    let address = format!("http://127.0.0.1:{}", second.port());
    tokio::spawn(second.run_until_stopped());
    let res = first.client.get(format!("{address}{SORTED}&cursor={cursor}")).bearer_auth(&first.token).send().await;
    let page = json(res.unwrap()).await;
    assert_eq!(page["Resources"][0]["userName"], "bob.cursor@example.com", "{page}");
}

/// PostgreSQL text cannot hold U+0000: wherever a request can carry one — URL, JSON escapes in a
/// body, a filter's string escapes, a token's claims — the answer is a 4xx SCIM error on both
/// backends, never a 500, and nothing reaches the database.
async fn nul_characters_are_refused_at_every_entry_point(app: TestApp) {
    let user = app.create_user(json!({"userName": "nul-target"})).await;
    let id = user["id"].as_str().unwrap();
    let all = app.issue_token("default", "everything", "scim sessions content events admin");
    let send = |method: reqwest::Method, path: &str, body: Option<Value>| {
        let mut req = app.client.request(method, app.url(path)).bearer_auth(&all);
        if let Some(body) = body {
            req = req.header("content-type", "application/scim+json").body(body.to_string());
        }
        req.send()
    };
    use reqwest::Method;
    let nul = "a\u{0}b";
    let cases: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, format!("/scim/v2/Users/{id}%00"), None),
        (Method::GET, "/scim/v2/Users?filter=userName%20eq%20%22a%5Cu0000b%22".into(), None),
        (Method::GET, "/scim/v2/Groups?filter=displayName%20co%20%22%5Cu0000%22".into(), None),
        (Method::GET, "/scim/v2/Users?sortBy=userName&cursor=%00".into(), None),
        (Method::GET, "/api/v1/search?q=a%00".into(), None),
        (Method::GET, "/api/v1/content/a%00".into(), None),
        (Method::DELETE, "/api/v1/sessions/a%00".into(), None),
        (Method::POST, "/scim/v2/Users".into(), Some(json!({"userName": nul}))),
        (Method::POST, "/scim/v2/Groups".into(), Some(json!({"displayName": nul}))),
        (
            Method::POST,
            "/scim/v2/Users/.search".into(),
            Some(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                        "filter": "userName eq \"a\\u0000b\""})),
        ),
        (
            Method::POST,
            "/scim/v2/Users/.search".into(),
            Some(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "cursor": nul})),
        ),
        (
            Method::PATCH,
            format!("/scim/v2/Users/{id}"),
            Some(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                        "Operations": [{"op": "replace", "path": "emails[value eq \"a\\u0000\"].type", "value": "x"}]})),
        ),
        (
            Method::PATCH,
            format!("/scim/v2/Users/{id}"),
            Some(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                        "Operations": [{"op": "replace", "path": "nickName", "value": nul}]})),
        ),
        (Method::PUT, format!("/scim/v2/Users/{id}"), Some(json!({"userName": "nul-target", "title": nul}))),
        (Method::POST, "/api/v1/sessions".into(), Some(json!({"userId": nul}))),
        (Method::POST, "/api/v1/sessions/introspect".into(), Some(json!({"token": nul}))),
        (Method::POST, "/api/v1/content".into(), Some(json!({"kind": "post", "authorId": id, "body": nul}))),
    ];
    for (method, path, body) in cases {
        let res = send(method.clone(), &path, body.clone()).await.unwrap();
        let status = res.status().as_u16();
        assert!((400..500).contains(&status), "{method} {path} {body:?}: {status}");
        assert_scim_error(res, status).await;
    }
    // A token whose claims hold NUL (signed with the real key) is unknown, not a database error.
    let keys = app.keys();
    for field in ["jti", "tenant"] {
        let mut claims = app.claims_of(&app.token);
        match field {
            "jti" => claims.jti = "j\u{0}".into(),
            _ => claims.tenant = "t\u{0}".into(),
        }
        let res = app.get_with("/scim/v2/Users", &keys.sign(&claims)).await;
        assert_scim_error(res, 401).await;
    }
    let stored = app.get_ok(&format!("/scim/v2/Users/{id}")).await;
    assert_eq!(stored["meta"]["version"], user["meta"]["version"], "nothing was written");
}

both_backends!(
    nul_characters_are_refused_at_every_entry_point,
    forged_host_and_forwarded_headers_do_not_reach_locations,
    cursors_reveal_no_sort_key,
    edited_or_made_up_cursors_are_invalid,
    a_cursor_from_another_tenant_is_invalid,
    a_forged_cursor_with_nul_is_400,
    a_cursor_expires_after_a_day,
);
both_backends!(by_backend: a_cursor_from_one_node_works_on_another);
both_backends!(by_backend: forwarded_headers_count_only_from_trusted_proxies);
