//! Operating Roster: the CLI, start-up, health, metrics, request ids, limits and shutdown.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use roster::startup::Application;

use crate::both_backends;
use crate::helpers::{assert_scim_error, json, test_settings, Backend, TestApp, TestDatabase};

pub fn roster(db_url: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_roster"))
        .args(args)
        .env("ROSTER_DATABASE_URL", db_url)
        .env("ROSTER_TOKEN_SECRET", crate::helpers::SECRET)
        .env_remove("ROSTER_CONFIG")
        .output()
        .expect("roster runs")
}

fn stdout(out: &std::process::Output) -> String {
    assert!(out.status.success(), "roster failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout.clone()).unwrap()
}

async fn health_readiness_and_metrics_answer_without_a_token(app: TestApp) {
    assert_eq!(json(app.client.get(app.url("/healthz")).send().await.unwrap()).await["status"], "ok");
    assert_eq!(json(app.client.get(app.url("/readyz")).send().await.unwrap()).await["status"], "ready");
    app.get("/scim/v2/ServiceProviderConfig").await;
    // Requests are labelled by the route pattern they matched, never by their own path.
    app.get("/scim/v2/Users/no-such-user").await;
    app.get("/scim/v2/NoSuchEndpoint/x").await;
    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains(r#"route="/scim/v2/Users/{id}",method="GET",status="404"} 1"#), "{metrics}");
    assert!(metrics.contains(r#"route="unmatched",method="GET",status="404"} 1"#), "{metrics}");
    assert!(!metrics.contains("no-such-user") && !metrics.contains("NoSuchEndpoint"), "{metrics}");
    assert!(
        metrics.contains(
            r#"roster_http_requests_total{route="/scim/v2/ServiceProviderConfig",method="GET",status="200"} 1"#
        ),
        "{metrics}"
    );
    assert!(metrics.contains(r#"roster_http_request_duration_seconds_count{route="/healthz"} 1"#), "{metrics}");
    assert!(metrics.contains(r#"roster_db_pool_connections{state="max"} 4"#), "{metrics}");
}

async fn every_response_carries_a_request_id(app: TestApp) {
    let res = app.client.get(app.url("/healthz")).send().await.unwrap();
    let generated = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(generated.len(), 36);
    let res = app.client.get(app.url("/healthz")).header("x-request-id", "idp-trace-42").send().await.unwrap();
    assert_eq!(res.headers()["x-request-id"], "idp-trace-42");
    // An id that could forge log lines is replaced.
    let res = app.client.get(app.url("/healthz")).header("x-request-id", "a b\"c").send().await.unwrap();
    assert_ne!(res.headers()["x-request-id"], "a b\"c");
}

async fn an_oversized_body_is_413_with_a_scim_error(app: TestApp) {
    let body = vec![b' '; app.settings.body_limit + 1];
    let res = app
        .client
        .post(app.url("/scim/v2/Users"))
        .bearer_auth(&app.token)
        .header("content-type", "application/scim+json")
        .body(body)
        .send()
        .await
        .unwrap();
    let err = assert_scim_error(res, 413).await;
    assert!(err["detail"].as_str().unwrap().contains("65536 bytes"));
    // The server keeps serving.
    assert_eq!(app.get("/scim/v2/ServiceProviderConfig").await.status(), 200);
}

async fn an_unknown_endpoint_is_404_with_a_scim_error(app: TestApp) {
    assert_scim_error(app.get("/scim/v2/Nope").await, 404).await;
}

async fn the_bootstrap_token_is_shown_only_when_the_database_is_created(app: TestApp) {
    // `app` already created its database; a second start on it has nothing to print.
    let again = Application::build(test_settings(&app.db.url)).unwrap();
    assert!(again.bootstrap.is_none());
    let fresh = TestDatabase::create(app.db.backend).unwrap();
    let first = Application::build(test_settings(&fresh.url)).unwrap();
    let bootstrap = first.bootstrap.as_ref().expect("a new database prints a bootstrap token");
    assert_eq!(bootstrap.base_url, format!("http://127.0.0.1:{}/scim/v2", first.port()));
    let claims = app.claims_of(&bootstrap.token);
    assert_eq!((claims.sub.as_str(), claims.scope.as_str()), ("bootstrap", "scim"));
}

async fn the_cli_manages_tenants_and_tokens(app: TestApp) {
    let url = &app.db.url;
    let listed = stdout(&roster(url, &["tenant", "list"]));
    assert!(listed.lines().nth(1).unwrap().starts_with("default\t"), "the default tenant exists: {listed}");
    let created = stdout(&roster(url, &["tenant", "create", "acme"]));
    assert!(created.starts_with("acme\t"));
    stdout(&roster(
        url,
        &[
            "tenant",
            "set",
            "acme",
            "--grace-days",
            "0",
            "--delete-policy",
            "require-deactivated",
            "--delete-after-days",
            "30",
        ],
    ));
    let listed = stdout(&roster(url, &["tenant", "list"]));
    assert!(listed.contains("\t0\trequire-deactivated\toff\t30\tfalse"), "{listed}");
    let bad = roster(url, &["tenant", "set", "acme", "--delete-policy", "never"]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("delete policy must be one of"));
    let bad = roster(url, &["tenant", "set", "acme", "--grace-days", "40000"]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("grace_days must be between 0 and 36500; got 40000"));
    let bad = roster(url, &["tenant", "create", "acme corp"]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("tenant names are 1 to 64 characters"));
    let dup = roster(url, &["tenant", "create", "acme"]);
    assert!(!dup.status.success() && String::from_utf8_lossy(&dup.stderr).contains("already exists"));

    let out = roster(
        url,
        &["token", "issue", "--tenant", "acme", "--name", "okta-prod", "--scope", "scim,events", "--expires", "90d"],
    );
    let token = stdout(&out).trim().to_owned();
    assert_eq!(token.split('.').count(), 3, "stdout holds only the token");
    let claims = app.claims_of(&token);
    assert_eq!((claims.sub.as_str(), claims.scope.as_str()), ("okta-prod", "scim events"));
    let lifetime = claims.exp.unwrap() - claims.iat;
    assert_eq!(lifetime, 90 * 86_400);
    assert_eq!(app.get_with("/scim/v2/ServiceProviderConfig", &token).await.status(), 200);

    let list = stdout(&roster(url, &["token", "list"]));
    assert!(list.contains(&claims.jti) && list.contains("okta-prod") && !list.contains(&token));
    stdout(&roster(url, &["token", "revoke", &claims.jti]));
    assert_scim_error(app.get_with("/scim/v2/ServiceProviderConfig", &token).await, 401).await;
    assert!(!roster(url, &["token", "revoke", "no-such-jti"]).status.success());
    let bad_name = roster(url, &["token", "issue", "--tenant", "acme", "--name", "okta\nprod", "--scope", "scim"]);
    assert!(String::from_utf8_lossy(&bad_name.stderr).contains("name must not hold control characters"));
    let bad_scope = roster(url, &["token", "issue", "--tenant", "acme", "--name", "x", "--scope", "root"]);
    assert!(String::from_utf8_lossy(&bad_scope.stderr).contains("unknown scope"));
    let no_tenant = roster(url, &["token", "issue", "--tenant", "nobody", "--name", "x", "--scope", "scim"]);
    assert!(String::from_utf8_lossy(&no_tenant.stderr).contains("no tenant named \"nobody\""));
}

/// The product API's bodies and queries are checked where they enter: a missing, mistyped, empty
/// or oversized member is 400 with a detail that names it as the client spelled it.
async fn product_requests_outside_their_rules_are_400_naming_the_member(app: TestApp) {
    let token = app.issue_token("default", "product", "sessions,content,events");
    let call = |method: reqwest::Method, path: &str, body: Option<serde_json::Value>| {
        let mut req = app.client.request(method, app.url(path)).bearer_auth(&token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        req.send()
    };
    let user = app.create_user(serde_json::json!({"userName": "writer"})).await["id"].as_str().unwrap().to_owned();
    let long_id = "x".repeat(65);
    let long_search = format!("/api/v1/search?q={}", "a".repeat(257));
    for (path, body, detail) in [
        ("/api/v1/sessions", serde_json::json!({}), "missing field `userId`"),
        ("/api/v1/sessions", serde_json::json!({"userId": 7}), "userId: invalid type: integer `7`"),
        ("/api/v1/sessions", serde_json::json!({"userId": ""}), "userId must be 1 to 64 characters long"),
        ("/api/v1/sessions", serde_json::json!({"userId": long_id}), "userId must be 1 to 64 characters long; got 65"),
        ("/api/v1/sessions/introspect", serde_json::json!({"token": ""}), "token must not be empty"),
        (
            "/api/v1/content",
            serde_json::json!({"kind": "post", "authorId": user, "body": ""}),
            "body must be 1 to 40000 characters long",
        ),
        (
            "/api/v1/content",
            serde_json::json!({"kind": "post", "authorId": user, "body": "x".repeat(40_001)}),
            "body must be 1 to 40000 characters long; got 40001",
        ),
        (
            "/api/v1/content",
            serde_json::json!({"kind": "comment", "authorId": user, "body": "hi", "parentId": long_id}),
            "parentId must be 1 to 64 characters long; got 65",
        ),
    ] {
        let err = assert_scim_error(call(reqwest::Method::POST, path, Some(body.clone())).await.unwrap(), 400).await;
        assert_eq!(err["scimType"], "invalidValue", "{body}");
        assert!(err["detail"].as_str().unwrap().contains(detail), "{body}: {err}");
    }
    for (path, detail) in [
        ("/api/v1/search?q=", "q must be 1 to 256 characters long"),
        (long_search.as_str(), "q must be 1 to 256 characters long; got 257"),
        ("/api/v1/events?after=-1", "after must be at least 0; got -1"),
    ] {
        let err = assert_scim_error(call(reqwest::Method::GET, path, None).await.unwrap(), 400).await;
        assert!(err["detail"].as_str().unwrap().contains(detail), "{path}: {err}");
    }
    // Within the rules the same requests succeed; members the API does not know are ignored.
    let body = serde_json::json!({"kind": "post", "authorId": user, "body": "x".repeat(40_000), "mood": "long"});
    assert_eq!(call(reqwest::Method::POST, "/api/v1/content", Some(body)).await.unwrap().status(), 201);
    let session = serde_json::json!({"userId": user});
    assert_eq!(call(reqwest::Method::POST, "/api/v1/sessions", Some(session)).await.unwrap().status(), 201);
}

both_backends!(
    health_readiness_and_metrics_answer_without_a_token,
    every_response_carries_a_request_id,
    an_oversized_body_is_413_with_a_scim_error,
    an_unknown_endpoint_is_404_with_a_scim_error,
    the_bootstrap_token_is_shown_only_when_the_database_is_created,
    the_cli_manages_tenants_and_tokens,
    product_requests_outside_their_rules_are_400_naming_the_member,
);

#[test]
fn an_unreachable_database_reports_the_real_reason() {
    let out = roster("postgres://postgres@127.0.0.1:1/test", &["migrate"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("127.0.0.1") && err.contains("Connection refused"), "{err}");
    assert!(!err.contains("invalid connection url"));

    let out = roster("/nonexistent-folder/roster.db", &["migrate"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unable to open database file"), "{err}");
}

#[test]
fn serve_reads_environment_settings_and_stops_gracefully_on_sigterm() {
    let db = TestDatabase::create(Backend::Sqlite).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new(env!("CARGO_BIN_EXE_roster"))
        .arg("serve")
        .env("ROSTER_DATABASE_URL", &db.url)
        .env("ROSTER_LISTEN", format!("127.0.0.1:{port}"))
        .env("ROSTER_LOG_FORMAT", "json")
        .env("ROSTER_WORKERS", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    // Ready once it answers HTTP: the port is bound a moment before signal handling starts.
    let healthy = || -> bool {
        use std::io::{Read, Write};
        let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return false };
        let _ = stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer.starts_with("HTTP/1.1 200")
    };
    loop {
        if healthy() {
            break;
        }
        assert!(Instant::now() < deadline, "roster did not start listening on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let kill = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "exit status {:?}", out.status);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(&format!("SCIM base URL:   http://127.0.0.1:{port}/scim/v2")), "{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let first_log: serde_json::Value =
        serde_json::from_str(stderr.lines().find(|l| l.starts_with('{')).unwrap()).unwrap();
    assert!(first_log.get("level").is_some(), "JSON logs: {stderr}");
    assert!(stderr.contains("roster stopped"), "{stderr}");
}
