//! `/metrics` as an operator reads it: requests and errors per tenant and connection with their
//! scimType, lifecycle transitions, the pool, and the SQLite WAL.

use serde_json::json;

use crate::both_backends;
use crate::helpers::{Backend, TestApp};

pub async fn scrape(app: &TestApp) -> String {
    let res = app.client.get(app.url("/metrics")).send().await.expect("metrics");
    assert_eq!(res.status(), 200);
    res.text().await.expect("text")
}

/// The value of the series written exactly as `series` (name and labels), 0 when absent.
pub fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .map_or(0.0, |v| v.trim().parse().expect("a number"))
}

fn user(name: &str) -> serde_json::Value {
    json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name})
}

async fn requests_and_errors_are_counted_per_tenant_and_connection(app: TestApp) {
    let token = app.issue_token("default", "entra-prod", "scim");
    let tenant = app.claims_of(&token).tenant;
    let post = |body: serde_json::Value| {
        app.client
            .post(app.url("/scim/v2/Users"))
            .bearer_auth(&token)
            .header("content-type", "application/scim+json")
            .body(body.to_string())
            .send()
    };
    assert_eq!(post(user("ada@example.com")).await.unwrap().status(), 201);
    assert_eq!(post(user("ADA@example.com")).await.unwrap().status(), 409);
    assert_eq!(app.get_with("/scim/v2/Users?filter=userName%20zz%20%22x%22", &token).await.status(), 400);
    // Another connection of the same tenant is counted apart.
    app.get("/scim/v2/Users?count=1").await;

    let text = scrape(&app).await;
    let of = |connection: &str, rest: &str| format!("{{tenant=\"{tenant}\",connection=\"{connection}\"{rest}}}");
    assert_eq!(value(&text, &format!("roster_requests_total{}", of("entra-prod", ""))), 3.0, "{text}");
    let refused = |status: &str, scim_type: &str| {
        value(
            &text,
            &format!(
                "roster_request_errors_total{}",
                of("entra-prod", &format!(",status=\"{status}\",scim_type=\"{scim_type}\""))
            ),
        )
    };
    assert_eq!(refused("409", "uniqueness"), 1.0, "{text}");
    assert_eq!(refused("400", "invalidFilter"), 1.0, "{text}");
    assert!(!text.contains(&format!("roster_request_errors_total{}", of("entra-prod", ",status=\"201\""))));
    let bootstrap = app.claims_of(&app.token).sub;
    assert_eq!(value(&text, &format!("roster_requests_total{}", of(&bootstrap, ""))), 1.0, "{text}");
    // A request without a token has no tenant to count against.
    assert!(!text.contains("tenant=\"\""), "{text}");
}

async fn lifecycle_transitions_are_counted_by_kind(app: TestApp) {
    // Process-wide series: other tests in this process count too, so only the increase is ours.
    let deactivations = |text: &str| value(text, "roster_lifecycle_transitions_total{kind=\"deactivate\"}");
    let before = deactivations(&scrape(&app).await);
    let created = app.create_user(user("grace@example.com")).await;
    let id = created["id"].as_str().unwrap();
    let patch = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "active", "value": false}]
    });
    assert_eq!(app.patch(&format!("/scim/v2/Users/{id}"), &patch).await.status(), 200);
    let after = deactivations(&scrape(&app).await);
    assert!(after > before, "deactivation counted: {before} then {after}");
}

async fn the_pool_and_the_sqlite_wal_are_read_at_scrape_time(app: TestApp) {
    app.create_user(user("wal@example.com")).await;
    let text = scrape(&app).await;
    assert_eq!(value(&text, "roster_db_pool_connections{state=\"max\"}"), 4.0, "{text}");
    match app.db.backend {
        // Writes go to the WAL first; it holds at least the page just written.
        Backend::Sqlite => assert!(value(&text, "roster_sqlite_wal_bytes") > 0.0, "{text}"),
        Backend::Postgres => assert!(!text.contains("roster_sqlite_wal_bytes "), "{text}"),
    }
}

both_backends!(
    requests_and_errors_are_counted_per_tenant_and_connection,
    lifecycle_transitions_are_counted_by_kind,
    the_pool_and_the_sqlite_wal_are_read_at_scrape_time,
);
