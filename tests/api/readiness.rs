//! `/readyz` answers ready only when this node can serve, and names what stops it otherwise;
//! `/healthz` only says the process answers.

use diesel::connection::SimpleConnection;
use serde_json::Value;

use crate::both_backends;
use crate::helpers::{json, Backend, TestApp, TestDatabase};

async fn readyz(app: &TestApp) -> (u16, Value) {
    let res = app.client.get(app.url("/readyz")).send().await.unwrap();
    (res.status().as_u16(), json(res).await)
}

async fn healthz_status(app: &TestApp) -> u16 {
    app.client.get(app.url("/healthz")).send().await.unwrap().status().as_u16()
}

fn check_status(body: &Value, check: &str) -> String {
    body["checks"][check]["status"].as_str().unwrap_or("absent").to_owned()
}

async fn readiness_lists_every_check_it_passed(app: TestApp) {
    let (status, body) = readyz(&app).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ready")), "{body}");
    assert_eq!(check_status(&body, "database"), "ok", "{body}");
    assert_eq!(check_status(&body, "migrations"), "ok", "{body}");
    // The writer thread and the free space beside the file are SQLite's; a PostgreSQL server's
    // disk is its own operator's to watch.
    let sqlite_only = if app.db.backend == Backend::Sqlite { "ok" } else { "absent" };
    assert_eq!(check_status(&body, "writer"), sqlite_only, "{body}");
    assert_eq!(check_status(&body, "disk"), sqlite_only, "{body}");
}

async fn readiness_fails_naming_migrations_when_one_of_this_release_is_missing(app: TestApp) {
    // As if the database had been migrated by an older binary than this node's.
    app.connection()
        .batch_execute(
            "DELETE FROM __diesel_schema_migrations \
             WHERE version = (SELECT MAX(version) FROM __diesel_schema_migrations)",
        )
        .unwrap();
    let (status, body) = readyz(&app).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["failed"], serde_json::json!(["migrations"]), "{body}");
    assert!(body["checks"]["migrations"]["detail"].as_str().unwrap().contains("roster migrate"), "{body}");
    assert_eq!(healthz_status(&app).await, 200, "liveness does not depend on readiness");
}

async fn readiness_fails_naming_the_disk_when_free_space_is_below_the_threshold(backend: Backend) {
    let Some(db) = TestDatabase::create(backend) else { return };
    // More megabytes than any disk has.
    let app = TestApp::spawn_with(db, |s| s.min_free_disk_mb = 1 << 40).await;
    let (status, body) = readyz(&app).await;
    match backend {
        Backend::Sqlite => {
            assert_eq!(status, 503, "{body}");
            assert_eq!(body["failed"], serde_json::json!(["disk"]), "{body}");
            assert!(body["checks"]["disk"]["detail"].as_str().unwrap().contains("min_free_disk_mb"), "{body}");
        }
        Backend::Postgres => assert_eq!((status, check_status(&body, "disk")), (200, "absent".into()), "{body}"),
    }
    assert_eq!(healthz_status(&app).await, 200, "liveness does not depend on readiness");
}

both_backends!(
    readiness_lists_every_check_it_passed,
    readiness_fails_naming_migrations_when_one_of_this_release_is_missing
);
both_backends!(by_backend: readiness_fails_naming_the_disk_when_free_space_is_below_the_threshold);
