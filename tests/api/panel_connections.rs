//! The panel's Connections pages over plain HTTP: tokens issued and revoked by an admin (with
//! CSRF, audited under the admin's name), shown once and working on SCIM; each connection's
//! request log, masked, bounded and confined to its tenant.

use std::time::Duration;

use reqwest::StatusCode;
use roster::db::connections::{self as store, Batch, LogRow};
use serde_json::json;

use crate::both_backends;
use crate::helpers::TestApp;
use crate::panel::{tenant_id, Browser};

/// Issues a token in the panel; the page's token and its jti.
async fn issue(browser: &Browser<'_>, app: &TestApp, name: &str) -> (String, String) {
    let csrf = browser.csrf().await;
    let form = [("csrf", csrf.as_str()), ("name", name), ("scope", "scim"), ("expires", "90d")];
    let res = browser.post("/admin/connections", &form).await;
    assert_eq!(res.status(), StatusCode::OK);
    let page = res.text().await.unwrap();
    let re = regex::Regex::new(r#"<textarea id="new-token"[^>]*>([^<]+)</textarea>"#).unwrap();
    let token = re.captures(&page).expect("the token is shown")[1].trim().to_owned();
    assert!(page.contains(&format!("{}/scim/v2", app.address)), "the SCIM base URL to paste: {page}");
    assert!(page.contains("Tenant URL") && page.contains("SCIM connector base URL"), "where Entra and Okta take it");
    let jti = app.claims_of(&token).jti;
    (token, jti)
}

/// The connection's log once `done` holds for it (the log is written about once a second).
async fn logged(app: &TestApp, connection: &str, done: impl Fn(&[LogRow]) -> bool) -> Vec<LogRow> {
    let tenant = tenant_id(app, "default");
    for _ in 0..100 {
        let rows = store::log_page(&mut app.connection(), &tenant, connection, None, false, 1000).unwrap();
        if done(&rows) {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the request log of {connection} never got what was expected");
}

fn audited(app: &TestApp, action: &str) -> Vec<(String, Option<String>)> {
    roster::db::records::audit_after(&mut app.connection(), &tenant_id(app, "default"), 0, 1000)
        .unwrap()
        .into_iter()
        .filter(|a| a.action == action)
        .map(|a| (a.actor, a.state_after))
        .collect()
}

async fn a_token_issued_in_the_panel_is_shown_once_and_provisions(app: TestApp) {
    let browser = Browser::sign_in(&app, "default", "alice").await;
    // Without the session's CSRF token nothing is issued.
    let forged = browser.post("/admin/connections", &[("csrf", "0000"), ("name", "okta"), ("scope", "scim")]).await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert!(audited(&app, "admin.issue_token").is_empty());

    let (token, jti) = issue(&browser, &app, "okta-prod").await;
    let list = browser.page("/admin/connections").await;
    assert!(list.contains("okta-prod") && list.contains(&jti), "{list}");
    assert!(!list.contains(&token), "the token is shown once, never again");
    assert!(!browser.page(&format!("/admin/connections/{jti}")).await.contains(&token));

    let created = app
        .client
        .post(app.url("/scim/v2/Users"))
        .bearer_auth(&token)
        .json(&json!({"userName": "new.hire@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED, "the panel's token provisions");
    let entries = audited(&app, "admin.issue_token");
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].0, "panel:alice");
    assert!(entries[0].1.as_deref().unwrap().contains(&jti));

    // Last used: written off the request path, shortly after.
    let tenant = tenant_id(&app, "default");
    let mut used = None;
    for _ in 0..100 {
        used = store::token_of(&mut app.connection(), &tenant, &jti).unwrap().unwrap().1;
        if used.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(used.is_some(), "the token's last use is recorded");
    let page = browser.page(&format!("/admin/connections/{jti}")).await;
    assert!(page.contains("POST") && page.contains("/scim/v2/Users") && page.contains("201"), "{page}");
}

async fn a_refused_issue_says_why_and_keeps_the_form(app: TestApp) {
    let browser = Browser::sign_in(&app, "default", "alice").await;
    let csrf = browser.csrf().await;
    let res = browser.post("/admin/connections", &[("csrf", &csrf), ("name", "okta"), ("expires", "90d")]).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let page = res.text().await.unwrap();
    assert!(page.contains("Choose at least one scope") && page.contains(r#"value="okta""#), "{page}");
    let long = "x".repeat(65);
    let res = browser.post("/admin/connections", &[("csrf", &csrf), ("name", &long), ("scope", "scim")]).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.text().await.unwrap().contains("name must be 1 to 64 characters long"));
    assert!(store::tokens_of(&mut app.connection(), &tenant_id(&app, "default"))
        .unwrap()
        .iter()
        .all(|(t, _)| t.name != "okta"));
}

async fn a_token_revoked_in_the_panel_is_refused_and_its_refusals_logged(app: TestApp) {
    let browser = Browser::sign_in(&app, "default", "alice").await;
    let (token, jti) = issue(&browser, &app, "entra-prod").await;
    let path = format!("/admin/connections/{jti}/revoke");
    let csrf = browser.csrf().await;
    assert_eq!(browser.post(&path, &[("csrf", "0000"), ("confirm", "yes")]).await.status(), StatusCode::FORBIDDEN);
    let unconfirmed = browser.post(&path, &[("csrf", &csrf)]).await;
    assert_eq!(unconfirmed.status(), StatusCode::BAD_REQUEST, "revoking needs the confirmation box");
    assert_eq!(app.get_with("/scim/v2/Users", &token).await.status(), StatusCode::OK);

    let revoked = browser.post(&path, &[("csrf", &csrf), ("confirm", "yes")]).await;
    assert_eq!(revoked.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.get_with("/scim/v2/Users", &token).await.status(), StatusCode::UNAUTHORIZED);
    let entries = audited(&app, "admin.revoke_token");
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].0, "panel:alice");
    let page = browser.page(&format!("/admin/connections/{jti}?done=revoked")).await;
    assert!(page.contains("Revoked") && !page.contains("Revoke token"), "{page}");
    // The IdP's refused request is in its connection's log, saying why.
    let rows = logged(&app, &jti, |rows| rows.iter().any(|r| r.status == 401)).await;
    let refused = rows.iter().find(|r| r.status == 401).unwrap();
    assert_eq!(refused.detail.as_deref(), Some("The token has been revoked"));
}

async fn a_failed_scim_request_is_logged_with_its_scim_type_and_no_personal_value(app: TestApp) {
    let browser = Browser::sign_in(&app, "default", "alice").await;
    let (token, jti) = issue(&browser, &app, "okta-prod").await;
    let send =
        |body: serde_json::Value| app.client.post(app.url("/scim/v2/Users")).bearer_auth(&token).json(&body).send();
    let person = json!({"userName": "zelda.secret@private.example", "name": {"givenName": "Zelda"},
        "emails": [{"value": "zelda.secret@private.example"}]});
    assert_eq!(send(person.clone()).await.unwrap().status(), StatusCode::CREATED);
    assert_eq!(send(person).await.unwrap().status(), StatusCode::CONFLICT);
    let filter = "/scim/v2/Users?filter=userName%20eq%20%22zelda.secret%40private.example%22&count=5";
    assert_eq!(app.get_with(filter, &token).await.status(), StatusCode::OK);
    let bare = "/scim/v2/Users?filter=displayName+eq+Zelda";
    assert_eq!(app.get_with(bare, &token).await.status(), StatusCode::OK);

    let rows = logged(&app, &jti, |rows| rows.len() >= 4).await;
    let conflict = rows.iter().find(|r| r.status == 409).expect("the conflict is logged");
    assert_eq!(conflict.scim_type.as_deref(), Some("uniqueness"));
    assert!(rows.iter().any(|r| r.path == r#"/scim/v2/Users?filter=userName eq "…"&count=5"#), "{rows:?}");
    assert!(rows.iter().any(|r| r.path == r#"/scim/v2/Users?filter=displayName eq "…""#), "{rows:?}");

    let page = browser.page(&format!("/admin/connections/{jti}")).await;
    assert!(page.contains("uniqueness") && page.contains("409"), "{page}");
    let errors = browser.page(&format!("/admin/connections/{jti}?errors=1")).await;
    assert!(errors.contains("409") && !errors.contains(">201<"), "errors only: {errors}");
    let list = browser.page("/admin/connections").await;
    assert!(list.contains("4 requests, 1 failed (25%)"), "{list}");

    // Nothing personal in any stored row of the log.
    let stored: Vec<String> =
        store::log_page(&mut app.connection(), &tenant_id(&app, "default"), &jti, None, false, 100)
            .unwrap()
            .into_iter()
            .map(|r| format!("{} {} {:?} {:?}", r.method, r.path, r.scim_type, r.detail))
            .collect();
    let stored = stored.join("\n");
    for secret in ["zelda", "Zelda", "private.example"] {
        assert!(!stored.contains(secret), "{secret} in the log:\n{stored}");
    }
}

async fn most_requests_failing_shows_the_warning(app: TestApp) {
    let browser = Browser::sign_in(&app, "default", "alice").await;
    let (token, jti) = issue(&browser, &app, "entra-prod").await;
    for _ in 0..3 {
        let res = app.get_with("/scim/v2/Users?filter=userName%20zz%20%22x%22", &token).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    }
    logged(&app, &jti, |rows| rows.len() >= 3).await;
    let page = browser.page(&format!("/admin/connections/{jti}")).await;
    assert!(page.contains("3 requests, 3 failed (100%)") && page.contains("quarantines"), "{page}");
    assert!(page.contains("invalidFilter"), "{page}");
}

async fn another_tenants_connections_are_not_found(app: TestApp) {
    roster::db::tenants::create(&mut app.connection(), "rival").unwrap();
    let theirs = app.issue_token("rival", "rival-okta", "scim");
    let jti = app.claims_of(&theirs).jti;
    assert_eq!(app.get_with("/scim/v2/Users", &theirs).await.status(), StatusCode::OK);
    let browser = Browser::sign_in(&app, "default", "alice").await;
    assert!(!browser.page("/admin/connections").await.contains("rival-okta"));
    assert_eq!(browser.get(&format!("/admin/connections/{jti}")).await.status(), StatusCode::NOT_FOUND);
    let csrf = browser.csrf().await;
    let revoke =
        browser.post(&format!("/admin/connections/{jti}/revoke"), &[("csrf", &csrf), ("confirm", "yes")]).await;
    assert_eq!(revoke.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.get_with("/scim/v2/Users", &theirs).await.status(), StatusCode::OK, "still works");
    // Its requests are in its own tenant's log, not in this one's.
    let rival = tenant_id(&app, "rival");
    for _ in 0..100 {
        if !store::log_page(&mut app.connection(), &rival, &jti, None, false, 10).unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(store::log_page(&mut app.connection(), &rival, &jti, None, false, 10).unwrap().len(), 2);
    let default = tenant_id(&app, "default");
    assert!(store::log_page(&mut app.connection(), &default, &jti, None, false, 10).unwrap().is_empty());
}

async fn requests_without_a_known_token_are_counted_in_no_tenants_log(app: TestApp) {
    use roster::db::schema::request_batches;
    let mut forged = app.claims_of(&app.token);
    forged.jti = "never-issued".into();
    let unknown = app.keys().sign(&forged);
    for token in ["garbage", unknown.as_str()] {
        assert_eq!(app.get_with("/scim/v2/Users", token).await.status(), StatusCode::UNAUTHORIZED);
    }
    // A known token's request afterwards: once it is logged, the earlier ones would have been.
    let known = app.claims_of(&app.token).jti;
    assert_eq!(app.get_ok("/scim/v2/Users").await["totalResults"], 0);
    let rows = logged(&app, &known, |rows| !rows.is_empty()).await;
    assert!(rows.iter().all(|r| r.status == 200));
    use diesel::prelude::*;
    let all: Option<i64> = request_batches::table
        .select(diesel::dsl::sum(request_batches::requests))
        .first(&mut *app.connection())
        .unwrap();
    assert_eq!(all, Some(rows.len() as i64), "only the known token's requests are logged");
    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let counted = metrics
        .lines()
        .find(|l| l.starts_with("roster_requests_unidentified_total"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse::<f64>().ok())
        .expect("the tenant-less counter is exported");
    assert!(counted >= 2.0, "{counted}");
}

/// The log keeps a day, and the newest requests of each connection, whatever is written; it
/// pages newest first, across batches and within one.
async fn the_log_is_bounded_in_time_and_rows_per_connection(app: TestApp) {
    use chrono::SubsecRound;
    let tenant = tenant_id(&app, "default");
    // A batch keeps times to the microsecond.
    let now = app.clock.now().trunc_subsecs(6);
    let row = |minutes_ago: i64, status: i32| LogRow {
        id: 0,
        at: now - chrono::Duration::minutes(minutes_ago),
        method: "GET".into(),
        path: "/scim/v2/Users".into(),
        status,
        duration_us: 900,
        scim_type: (status >= 400).then(|| "uniqueness".to_owned()),
        detail: None,
    };
    let batch = |connection: &str, rows: &[LogRow]| Batch::new(tenant.clone(), connection.into(), rows);
    // a: ten batches of one request; b: one of 25 hours ago and one of now; c: one of three.
    let mut batches: Vec<Batch> = (0..10).rev().map(|i| batch("a", &[row(i, 200)])).collect();
    batches.extend([batch("b", &[row(25 * 60, 200)]), batch("b", &[row(10, 200)])]);
    batches.push(batch("c", &[row(3, 200), row(2, 409), row(1, 200)]));
    let mut conn = app.connection();
    store::insert_batches(&mut conn, &batches).unwrap();
    assert_eq!(store::trim_connection(&mut conn, &tenant, "a", 3).unwrap(), 7);
    let kept = store::log_page(&mut conn, &tenant, "a", None, false, 100).unwrap();
    assert_eq!(kept.iter().map(|r| r.at).collect::<Vec<_>>(), (0..3).map(|i| row(i, 200).at).collect::<Vec<_>>());
    assert_eq!(store::trim_connection(&mut conn, &tenant, "b", 3).unwrap(), 0, "b is within its bound");
    let cutoff = now - roster::requestlog::RETENTION.max_age;
    assert_eq!(store::prune_before(&mut conn, cutoff).unwrap(), 1, "b's batch of 25 hours ago");
    assert_eq!(store::log_page(&mut conn, &tenant, "b", None, false, 100).unwrap().len(), 1);
    // Paging by cursor, newest first, across batches.
    let first = store::log_page(&mut conn, &tenant, "a", None, false, 2).unwrap();
    let next = store::log_page(&mut conn, &tenant, "a", Some(first[1].id), false, 2).unwrap();
    assert_eq!(next.len(), 1);
    assert!(next[0].id < first[1].id && first[0].id > first[1].id);
    // And within one batch, with its error alone when asked.
    let all = store::log_page(&mut conn, &tenant, "c", None, false, 10).unwrap();
    assert_eq!(
        all,
        vec![row(1, 200), row(2, 409), row(3, 200)]
            .into_iter()
            .zip(&all)
            .map(|(r, a)| LogRow { id: a.id, ..r })
            .collect::<Vec<_>>()
    );
    let first = store::log_page(&mut conn, &tenant, "c", None, false, 2).unwrap();
    let next = store::log_page(&mut conn, &tenant, "c", Some(first[1].id), false, 2).unwrap();
    assert_eq!((first.len(), next.len(), next[0].at), (2, 1, row(3, 200).at));
    let errors = store::log_page(&mut conn, &tenant, "c", None, true, 10).unwrap();
    assert_eq!(
        errors.iter().map(|r| (r.status, r.scim_type.as_deref())).collect::<Vec<_>>(),
        [(409, Some("uniqueness"))]
    );
    let rate = store::error_rate(&mut conn, &tenant, "c", now - chrono::Duration::hours(1)).unwrap();
    assert_eq!((rate.requests, rate.errors), (3, 1));
    assert_eq!(store::trim_connection(&mut conn, &tenant, "c", 1).unwrap(), 0, "a batch goes whole or not at all");
    // Microseconds survive the round trip through a batch.
    assert_eq!(all[0].at, row(1, 200).at);
}

/// The requests an older release logged one row each are kept, each a batch of its own, by the
/// migration that packs the log (its down migration unpacks them again, which sets the scene).
async fn requests_logged_one_row_each_are_kept_as_batches(app: TestApp) {
    use diesel::connection::SimpleConnection;
    let mut conn = app.connection();
    let backend = if matches!(*conn, roster::db::DbConnection::Sqlite(_)) { "sqlite" } else { "postgres" };
    let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(backend)
        .join("2026-12-06-000026_request_batches");
    let sql = |name: &str| std::fs::read_to_string(folder.join(name)).unwrap();
    let tenant = tenant_id(&app, "default");
    conn.batch_execute(&sql("down.sql")).unwrap();
    conn.batch_execute(&format!(
        "INSERT INTO request_log (tenant_id, connection, at, method, path, status, duration_us, scim_type, detail) VALUES \
         ('{tenant}', 'old-okta', '2026-12-01 10:00:00.125', 'GET', '/scim/v2/Users?filter=userName eq \"…\"', 200, 900, NULL, NULL), \
         ('{tenant}', 'old-okta', '2026-12-01 10:00:01.5', 'POST', '/scim/v2/Users', 409, 1500, 'uniqueness', 'userName \"…\" is taken')"
    ))
    .unwrap();
    conn.batch_execute(&sql("up.sql")).unwrap();
    let at = |text: &str| chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f").unwrap();
    let rows = store::log_page(&mut conn, &tenant, "old-okta", None, false, 10).unwrap();
    let seen: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                r.at,
                r.method.as_str(),
                r.path.as_str(),
                r.status,
                r.duration_us,
                r.scim_type.as_deref(),
                r.detail.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (
                at("2026-12-01 10:00:01.5"),
                "POST",
                "/scim/v2/Users",
                409,
                1500,
                Some("uniqueness"),
                Some("userName \"…\" is taken")
            ),
            (at("2026-12-01 10:00:00.125"), "GET", "/scim/v2/Users?filter=userName eq \"…\"", 200, 900, None, None),
        ]
    );
    let errors = store::log_page(&mut conn, &tenant, "old-okta", None, true, 10).unwrap();
    assert_eq!(errors.len(), 1);
}

both_backends!(
    a_token_issued_in_the_panel_is_shown_once_and_provisions,
    a_refused_issue_says_why_and_keeps_the_form,
    a_token_revoked_in_the_panel_is_refused_and_its_refusals_logged,
    a_failed_scim_request_is_logged_with_its_scim_type_and_no_personal_value,
    most_requests_failing_shows_the_warning,
    another_tenants_connections_are_not_found,
    requests_without_a_known_token_are_counted_in_no_tenants_log,
    the_log_is_bounded_in_time_and_rows_per_connection,
    requests_logged_one_row_each_are_kept_as_batches,
);
