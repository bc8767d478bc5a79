//! What Roster believes about a request: links only to hosts it is configured to serve, cursors
//! it made itself, and values PostgreSQL text can hold.

use serde_json::json;

use crate::both_backends;
use crate::helpers::{json, Backend, TestApp, TestDatabase};

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

both_backends!(forged_host_and_forwarded_headers_do_not_reach_locations);
both_backends!(by_backend: forwarded_headers_count_only_from_trusted_proxies);
