//! Integrity under attack and concurrency: tenant isolation on writes, a gap-free event feed,
//! writes racing deletions, soft deletion as RFC 7644 §3.6 sees it, and versions that follow
//! every change a client can see.

use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{assert_scim_error, json, TestApp};

/// Calls the product API with `token`.
async fn call(
    app: &TestApp,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut req = app.client.request(method, app.url(path)).bearer_auth(token);
    if let Some(body) = body {
        req = req.json(&body);
    }
    req.send().await.expect("request sent")
}

async fn user(app: &TestApp, name: &str) -> String {
    app.create_user(json!({"userName": name})).await["id"].as_str().unwrap().to_owned()
}

async fn a_session_cannot_be_ended_by_another_tenant(app: TestApp) {
    roster::db::tenants::create(&mut app.connection(), "rival").unwrap();
    let ours = app.issue_token("default", "product", "sessions");
    let theirs = app.issue_token("rival", "product", "sessions");
    let ann = user(&app, "ann").await;
    let opened =
        json(call(&app, &ours, reqwest::Method::POST, "/api/v1/sessions", Some(json!({"userId": ann}))).await).await;
    let (id, token) = (opened["id"].as_str().unwrap(), opened["token"].as_str().unwrap());
    let res = call(&app, &theirs, reqwest::Method::DELETE, &format!("/api/v1/sessions/{id}"), None).await;
    assert_scim_error(res, 404).await;
    let introspected =
        call(&app, &ours, reqwest::Method::POST, "/api/v1/sessions/introspect", Some(json!({"token": token}))).await;
    assert_eq!(json(introspected).await["active"], true, "another tenant's DELETE must not revoke the session");
    // Its own tenant still ends it.
    let res = call(&app, &ours, reqwest::Method::DELETE, &format!("/api/v1/sessions/{id}"), None).await;
    assert_eq!(res.status(), 204);
}

both_backends!(a_session_cannot_be_ended_by_another_tenant);
