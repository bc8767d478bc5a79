//! The panel's Webhooks pages over plain HTTP: endpoints added, tested, rotated, replayed and
//! removed by an admin (with CSRF, audited under the admin's name), the secret shown once and
//! verifying what a real receiver on loopback gets, the delivery log, and tenants kept apart.

use reqwest::StatusCode;
use roster::db::deliveries::{self, Queued};
use roster::db::webhooks as store;
use roster::delivery::webhooks::{self, NewWebhook};
use serde_json::json;

use crate::both_backends;
use crate::helpers::{Backend, TestApp, TestDatabase};
use crate::panel::{tenant_id, Browser};
use crate::webhooks::{fast, wait_for, Receiver};

async fn spawn(backend: Backend) -> Option<TestApp> {
    let db = TestDatabase::create(backend)?;
    Some(TestApp::spawn_with(db, |s| s.webhooks = fast()).await)
}

fn audited(app: &TestApp, action: &str) -> Vec<(String, Option<String>)> {
    roster::db::records::audit_after(&mut app.connection(), &tenant_id(app, "default"), 0, 1000)
        .unwrap()
        .into_iter()
        .filter(|a| a.action == action)
        .map(|a| (a.actor, a.state_after))
        .collect()
}

fn hooks(app: &TestApp, tenant: &str) -> Vec<store::WebhookRow> {
    store::of_tenant(&mut app.connection(), &tenant_id(app, tenant), false).unwrap()
}

/// The secret a page shows once.
fn secret_of(page: &str) -> String {
    let re = regex::Regex::new(r#"id="new-secret"[^>]*value="(whsec_[^"]+)""#).unwrap();
    re.captures(page).expect("the secret is shown")[1].to_owned()
}

/// Adds `url` in the panel (every event type, private addresses allowed); its id and secret.
async fn add(browser: &Browser<'_>, url: &str) -> (String, String) {
    let csrf = browser.csrf().await;
    let res = browser.post("/admin/webhooks", &[("csrf", &csrf), ("url", url), ("allow_private", "yes")]).await;
    assert_eq!(res.status(), StatusCode::OK);
    let page = res.text().await.unwrap();
    assert!(page.contains("Verifying signatures") && page.contains("only time the signing secret is shown"), "{page}");
    let re = regex::Regex::new(r#"href="/admin/webhooks/(wh_[0-9a-f]+)""#).unwrap();
    let id = re.captures(&page).expect("a link to the webhook")[1].to_owned();
    (id, secret_of(&page))
}

async fn a_webhook_added_in_the_panel_signs_what_it_delivers(backend: Backend) {
    let Some(app) = spawn(backend).await else { return };
    let mut receiver = Receiver::start();
    let browser = Browser::sign_in(&app, "default", "alice").await;

    // Without the session's CSRF token nothing is added.
    let forged = browser.post("/admin/webhooks", &[("csrf", "0000"), ("url", &receiver.url())]).await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    // A loopback URL is refused without the allow-private box, in words, with the form kept.
    let csrf = browser.csrf().await;
    let private = browser.post("/admin/webhooks", &[("csrf", &csrf), ("url", &receiver.url())]).await;
    assert_eq!(private.status(), StatusCode::BAD_REQUEST);
    let page = private.text().await.unwrap();
    assert!(page.contains("Not added") && page.contains("loopback"), "{page}");
    assert!(page.contains(&format!(r#"value="{}""#, receiver.url())), "the form keeps the URL");
    let bad = browser.post("/admin/webhooks", &[("csrf", &csrf), ("url", "ftp://example.com/x")]).await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert!(hooks(&app, "default").is_empty());
    assert!(audited(&app, "admin.add_webhook").is_empty());

    let (id, secret) = add(&browser, &receiver.url()).await;
    assert!(secret.starts_with("whsec_"));
    receiver.configure(json!({"secrets": [secret]})).await;
    let stored = hooks(&app, "default");
    assert_eq!(stored.len(), 1);
    assert_eq!(
        (stored[0].id.as_str(), stored[0].allow_private, stored[0].event_types.as_str()),
        (id.as_str(), true, "")
    );

    let list = browser.page("/admin/webhooks").await;
    assert!(list.contains(&receiver.url()) && list.contains("All event types"), "{list}");
    assert!(!list.contains(&secret), "the secret is shown once, never again");

    app.create_user(json!({"userName": "hooked@example.com"})).await;
    wait_for("the event at the receiver", 20, || !receiver.delivered().is_empty()).await;
    let got = receiver.delivered();
    assert_eq!(got[0]["valid"], true, "the panel's secret verifies the signature: {}", got[0]);
    assert_eq!(got[0]["body"]["type"], "user.created");
    let event = got[0]["body"]["eventId"].as_i64().unwrap();

    // The delivery log shows it delivered, and not the secret.
    let mut page = String::new();
    for _ in 0..100 {
        page = browser.page(&format!("/admin/webhooks/{id}")).await;
        if page.contains(">delivered<") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(page.contains(">delivered<") && page.contains(&format!(">{event}<")), "{page}");
    assert!(!page.contains(&secret));

    let entries = audited(&app, "admin.add_webhook");
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].0, "panel:alice");
    assert!(entries[0].1.as_deref().unwrap().contains(&id));
}

async fn test_rotate_replay_and_remove_go_through_the_panel(backend: Backend) {
    let Some(app) = spawn(backend).await else { return };
    let mut receiver = Receiver::start();
    let browser = Browser::sign_in(&app, "default", "alice").await;
    let (id, old) = add(&browser, &receiver.url()).await;
    receiver.configure(json!({"secrets": [old]})).await;
    let page = format!("/admin/webhooks/{id}");
    let csrf = browser.csrf().await;

    // Send test event.
    assert_eq!(browser.post(&format!("{page}/test"), &[("csrf", "0000")]).await.status(), StatusCode::FORBIDDEN);
    let tested = browser.post(&format!("{page}/test"), &[("csrf", &csrf)]).await;
    assert_eq!(tested.status(), StatusCode::OK);
    assert!(tested.text().await.unwrap().contains("The endpoint answered 204"));
    let test = receiver.records().into_iter().find(|r| r["body"]["type"] == "webhook.test").expect("the test event");
    assert_eq!(test["valid"], true);
    assert_eq!(audited(&app, "admin.test_webhook").len(), 1);
    // An endpoint that fails the test: said in words, and audited with its answer.
    receiver.configure(json!({"mode": "fail"})).await;
    let failed = browser.post(&format!("{page}/test"), &[("csrf", &csrf)]).await;
    assert_eq!(failed.status(), StatusCode::BAD_GATEWAY);
    assert!(failed.text().await.unwrap().contains("did not accept the test event"));
    assert!(audited(&app, "admin.test_webhook")[1].1.as_deref().unwrap().contains("answered 500"));
    receiver.configure(json!({"mode": "ok"})).await;

    // Rotate: a new secret shown once; the old one still signs.
    assert_eq!(browser.post(&format!("{page}/rotate"), &[("csrf", "0000")]).await.status(), StatusCode::FORBIDDEN);
    let bad = browser.post(&format!("{page}/rotate"), &[("csrf", &csrf), ("keep_old", "soon")]).await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let rotated = browser.post(&format!("{page}/rotate"), &[("csrf", &csrf), ("keep_old", "24h")]).await;
    assert_eq!(rotated.status(), StatusCode::OK);
    let new = secret_of(&rotated.text().await.unwrap());
    assert_ne!(new, old);
    let row = hooks(&app, "default").remove(0);
    let live = row.previous_secret_expires_at.expect("the old secret stays live") - roster::db::now();
    assert!(live > chrono::Duration::hours(23) && live <= chrono::Duration::hours(24), "{live}");
    assert!(!browser.page(&page).await.contains(&new));
    for secrets in [json!([new]), json!([old])] {
        receiver.configure(json!({"secrets": secrets})).await;
        let before = receiver.records().len();
        assert_eq!(browser.post(&format!("{page}/test"), &[("csrf", &csrf)]).await.status(), StatusCode::OK);
        let last = receiver.records().into_iter().nth(before).expect("a second test event");
        assert_eq!(last["valid"], true, "signed with {secrets}: {last}");
    }
    let rotations = audited(&app, "admin.rotate_webhook_secret");
    assert_eq!(rotations.len(), 1);
    assert_eq!(rotations[0].0, "panel:alice");

    // Replay: the events from an id on come again.
    receiver.configure(json!({"secrets": [new]})).await;
    app.create_user(json!({"userName": "replayed@example.com"})).await;
    wait_for("the event", 20, || receiver.delivered().iter().any(|r| r["body"]["type"] == "user.created")).await;
    let event = receiver.delivered().iter().find(|r| r["body"]["type"] == "user.created").unwrap()["body"]["eventId"]
        .as_i64()
        .unwrap();
    let nonsense = browser.post(&format!("{page}/replay"), &[("csrf", &csrf), ("from", "first")]).await;
    assert_eq!(nonsense.status(), StatusCode::BAD_REQUEST);
    assert!(nonsense.text().await.unwrap().contains("is not an event id"));
    let zero = browser.post(&format!("{page}/replay"), &[("csrf", &csrf), ("from", "0")]).await;
    assert_eq!(zero.status(), StatusCode::BAD_REQUEST);
    assert!(zero.text().await.unwrap().contains("Event ids start at 1."));
    let replayed = browser.post(&format!("{page}/replay"), &[("csrf", &csrf), ("from", &event.to_string())]).await;
    assert_eq!(replayed.status(), StatusCode::SEE_OTHER);
    let location = replayed.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(location, format!("{page}?replayed=1"));
    assert!(browser.page(&location).await.contains("1 events were queued again"));
    wait_for("the replayed event", 20, || {
        receiver.delivered().iter().filter(|r| r["body"]["eventId"] == json!(event)).count() == 2
    })
    .await;
    assert!(audited(&app, "admin.replay_webhook")[0].1.as_deref().unwrap().contains("1 events"));

    // Remove: only with the confirmation.
    let unconfirmed = browser.post(&format!("{page}/remove"), &[("csrf", &csrf)]).await;
    assert_eq!(unconfirmed.status(), StatusCode::BAD_REQUEST);
    assert!(unconfirmed.text().await.unwrap().contains("Nothing was removed"));
    assert_eq!(hooks(&app, "default").len(), 1);
    let removed = browser.post(&format!("{page}/remove"), &[("csrf", &csrf), ("confirm", "yes")]).await;
    assert_eq!(removed.status(), StatusCode::SEE_OTHER);
    assert!(hooks(&app, "default").is_empty());
    assert_eq!(browser.get(&page).await.status(), StatusCode::NOT_FOUND);
    let entries = audited(&app, "admin.remove_webhook");
    assert_eq!(entries.len(), 1);
    assert!(entries[0].1.as_deref().unwrap().contains(&id));
}

async fn another_tenants_webhooks_are_not_found(backend: Backend) {
    let Some(app) = spawn(backend).await else { return };
    roster::db::tenants::create(&mut app.connection(), "rival").unwrap();
    let new =
        NewWebhook { tenant: "rival", url: "https://hooks.example.com/rival", event_types: &[], allow_private: false };
    let theirs = webhooks::add(&mut app.connection(), &new, roster::db::now()).unwrap().webhook.id;
    let browser = Browser::sign_in(&app, "default", "alice").await;
    assert!(!browser.page("/admin/webhooks").await.contains("hooks.example.com/rival"));
    let page = format!("/admin/webhooks/{theirs}");
    assert_eq!(browser.get(&page).await.status(), StatusCode::NOT_FOUND);
    let csrf = browser.csrf().await;
    for (action, extra) in
        [("test", ("x", "")), ("rotate", ("keep_old", "1h")), ("replay", ("from", "1")), ("remove", ("confirm", "yes"))]
    {
        let res = browser.post(&format!("{page}/{action}"), &[("csrf", &csrf), extra]).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{action}");
        assert!(res.text().await.unwrap().contains("has no webhook"), "{action}: said in words");
    }
    let rival = hooks(&app, "rival");
    assert_eq!(rival.len(), 1);
    assert!(rival[0].previous_secret.is_none(), "not rotated");
    let all = roster::db::records::audit_after(&mut app.connection(), &tenant_id(&app, "default"), 0, 1000).unwrap();
    assert!(all.iter().all(|a| !a.action.contains("webhook")), "nothing audited");
}

async fn the_delivery_log_is_paged_newest_first(backend: Backend) {
    let Some(app) = spawn(backend).await else { return };
    let new = NewWebhook {
        tenant: "default",
        url: "https://hooks.example.com/paged",
        event_types: &[],
        allow_private: false,
    };
    let id = webhooks::add(&mut app.connection(), &new, roster::db::now()).unwrap().webhook.id;
    // Dead deliveries: the delivery engine leaves them as they are.
    let queued: Vec<Queued> = (1..=60).map(|n| Queued { event_seq: n, part: 0, user_id: None }).collect();
    let tenant = tenant_id(&app, "default");
    deliveries::enqueue(&mut app.connection(), &tenant, &id, &queued, deliveries::DEAD, roster::db::now()).unwrap();
    let browser = Browser::sign_in(&app, "default", "alice").await;
    let first = browser.page(&format!("/admin/webhooks/{id}")).await;
    let cell = |n: i64| format!(r#"<td class="mono">{n}</td>"#);
    assert!(first.contains(&cell(60)) && first.contains(&cell(11)) && !first.contains(&cell(10)), "{first}");
    assert!(first.find(&cell(60)) < first.find(&cell(11)), "newest first");
    let re = regex::Regex::new(r#"href="(/admin/webhooks/wh_[0-9a-f]+\?before=[0-9]+)""#).unwrap();
    let older = re.captures(&first).expect("a link to older deliveries")[1].to_owned();
    let second = browser.page(&older).await;
    assert!(second.contains(&cell(10)) && second.contains(&cell(1)) && !second.contains(&cell(11)), "{second}");
    assert!(!re.is_match(&second), "no page after the last");
    assert!(second.contains(&format!(r#"href="/admin/webhooks/{id}">Newest"#)));
}

both_backends!(by_backend:
    the_delivery_log_is_paged_newest_first,
    a_webhook_added_in_the_panel_signs_what_it_delivers,
    test_rotate_replay_and_remove_go_through_the_panel,
    another_tenants_webhooks_are_not_found,
);
