//! Integrity under attack and concurrency: tenant isolation on writes, a gap-free event feed,
//! writes racing deletions, soft deletion as RFC 7644 §3.6 sees it, and versions that follow
//! every change a client can see.

use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{assert_scim_error, json, Backend, TestApp, TestDatabase};

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

/// One page of the event feed after `after`: (id, type, userId) of each event, and `next`.
async fn feed(app: &TestApp, token: &str, after: i64, limit: i64) -> (Vec<(i64, String, String)>, i64) {
    let path = format!("/api/v1/events?after={after}&limit={limit}");
    let res = call(app, token, reqwest::Method::GET, &path, None).await;
    assert_eq!(res.status(), 200);
    let page = json(res).await;
    let events = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let user = e["userId"].as_str().unwrap_or_default().to_owned();
            (e["id"].as_i64().unwrap(), e["type"].as_str().unwrap().to_owned(), user)
        })
        .collect();
    (events, page["next"].as_i64().unwrap())
}

/// Every event of the tenant, read from the start.
async fn whole_feed(app: &TestApp, token: &str) -> Vec<(i64, String, String)> {
    let (mut all, mut after) = (Vec::new(), 0);
    loop {
        let (page, next) = feed(app, token, after, 1000).await;
        if page.is_empty() {
            return all;
        }
        all.extend(page);
        after = next;
    }
}

fn active(value: bool) -> Value {
    json!({"Operations": [{"op": "replace", "value": {"active": value}}]})
}

/// A poller that only ever asks for events after the last id it saw sees every event exactly
/// once and in order, while writers commit lifecycle transitions concurrently: ids are given
/// in the order events become visible, never to a transaction still in flight.
async fn a_poller_sees_every_event_once_while_writers_race(backend: Backend) {
    let Some(db) = TestDatabase::create(backend) else { return };
    let app = TestApp::spawn_with(db, |s| {
        s.pool_size = 12;
        s.workers = Some(2);
    })
    .await;
    let events = app.issue_token("default", "feed", "events");
    const WRITERS: usize = 8;
    const TRANSITIONS: usize = 40;
    let mut users = Vec::new();
    for i in 0..WRITERS {
        users.push(user(&app, &format!("racer{i}")).await);
    }
    let done = std::sync::atomic::AtomicBool::new(false);
    let app = &app;
    let writers = futures_util::future::join_all(users.iter().map(|id| async move {
        for n in 0..TRANSITIONS {
            let res = app.patch(&format!("/scim/v2/Users/{id}"), &active(n % 2 == 1)).await;
            assert_eq!(res.status(), 200);
        }
    }));
    let poller = async {
        let (mut seen, mut after) = (Vec::new(), 0);
        loop {
            // Read once more after the writers are done, to drain what they committed last.
            let last = done.load(std::sync::atomic::Ordering::SeqCst);
            loop {
                let (page, next) = feed(app, &events, after, 25).await;
                if page.is_empty() {
                    break;
                }
                seen.extend(page);
                after = next;
            }
            if last {
                return seen;
            }
            tokio::task::yield_now().await;
        }
    };
    let writers = async {
        writers.await;
        done.store(true, std::sync::atomic::Ordering::SeqCst);
    };
    let ((), seen) = tokio::join!(writers, poller);
    let all = whole_feed(app, &events).await;
    assert_eq!(all.len(), WRITERS * (TRANSITIONS + 1), "a create and every transition, each one event");
    let missed: Vec<_> = all.iter().filter(|e| !seen.contains(e)).collect();
    assert!(missed.is_empty(), "the poller never saw {} of {} events: {missed:?}", missed.len(), all.len());
    assert_eq!(seen, all, "each event seen once, in the feed's order");
    let ids: Vec<i64> = all.iter().map(|e| e.0).collect();
    assert_eq!(ids, (1..=all.len() as i64).collect::<Vec<_>>(), "ids number the tenant's events 1..n");
    // Each account's events are in the order its transitions were made.
    for id in &users {
        let kinds: Vec<&str> = all.iter().filter(|e| &e.2 == id).map(|e| e.1.as_str()).collect();
        assert_eq!(kinds[0], "user.created");
        for (n, kind) in kinds[1..].iter().enumerate() {
            assert_eq!(*kind, if n % 2 == 0 { "user.deactivated" } else { "user.reactivated" });
        }
    }
}

/// Event and audit ids number each tenant's own entries: they start at 1 and say nothing of how
/// much another tenant did in between.
async fn each_tenant_numbers_its_own_events_and_audit_entries(app: TestApp) {
    roster::db::tenants::create(&mut app.connection(), "rival").unwrap();
    let tenants = [("default", app.token.clone()), ("rival", app.issue_token("rival", "idp", "scim"))];
    for n in 0..3 {
        for (_, token) in &tenants {
            let res = app
                .client
                .post(app.url("/scim/v2/Users"))
                .bearer_auth(token)
                .json(&json!({"userName": format!("person{n}")}))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 201);
        }
    }
    for (tenant, _) in &tenants {
        let token = app.issue_token(tenant, "reader", "events,admin");
        let ids: Vec<i64> = whole_feed(&app, &token).await.iter().map(|e| e.0).collect();
        assert_eq!(ids, [1, 2, 3], "{tenant}'s events");
        let audit = json(call(&app, &token, reqwest::Method::GET, "/api/v1/audit", None).await).await;
        let ids: Vec<i64> = audit["entries"].as_array().unwrap().iter().map(|e| e["id"].as_i64().unwrap()).collect();
        assert_eq!(ids, [1, 2, 3], "{tenant}'s audit entries");
        let after = json(call(&app, &token, reqwest::Method::GET, "/api/v1/audit?after=2", None).await).await;
        assert_eq!(after["entries"].as_array().unwrap().len(), 1, "{tenant}'s audit paged by its own ids");
    }
    // The operator's view of every tenant shows each entry with its tenant's own id.
    let roster = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_roster"))
            .args(args)
            .env("ROSTER_DATABASE_URL", &app.db.url)
            .env("ROSTER_TOKEN_SECRET", crate::helpers::SECRET)
            .output()
            .unwrap()
    };
    let out = roster(&["audit"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let entries: Vec<Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let ids: Vec<i64> = entries.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, [1, 1, 2, 2, 3, 3], "in the order they were written");
    assert!(!roster(&["audit", "--after", "1"]).status.success(), "ids are per tenant: --after needs --tenant");
}

/// A comment written while the author of its post is being deleted either lands before the
/// deletion (and goes with the post) or finds no post: 201 or 404, never a server error.
async fn a_comment_racing_the_deletion_of_its_post_answers_201_or_404(app: TestApp) {
    let content = app.issue_token("default", "product", "content");
    let commenter = user(&app, "commenter").await;
    let comment = |post: String| {
        let body = json!({"kind": "comment", "authorId": commenter, "body": "a reply", "parentId": post});
        call(&app, &content, reqwest::Method::POST, "/api/v1/content", Some(body))
    };
    for round in 0..30 {
        let author = user(&app, &format!("author{round}")).await;
        let body = json!({"kind": "post", "authorId": author, "body": "a post"});
        let post = json(call(&app, &content, reqwest::Method::POST, "/api/v1/content", Some(body)).await).await;
        let post = post["id"].as_str().unwrap().to_owned();
        let comments = futures_util::future::join_all((0..4).map(|_| comment(post.clone())));
        let path = format!("/scim/v2/Users/{author}");
        let (deleted, comments) = tokio::join!(app.delete(&path), comments);
        assert_eq!(deleted.status(), 204);
        for res in comments {
            let status = res.status().as_u16();
            if status != 201 {
                assert_eq!(assert_scim_error(res, 404).await["status"], "404", "round {round}");
            }
        }
        let gone = call(&app, &content, reqwest::Method::GET, &format!("/api/v1/content/{post}"), None).await;
        assert_scim_error(gone, 404).await;
    }
}

/// The sweep that removes a deactivated account's memberships changes its `groups`, so it steps
/// the account's version: a client revalidating with `If-None-Match` gets the new groups, not
/// a 304 (RFC 7644 §3.14, RFC 7232 §3.2).
async fn removing_memberships_in_the_sweep_steps_the_users_version(app: TestApp) {
    let change = roster::db::tenants::PolicyChange { grace_days: Some(0), ..Default::default() };
    roster::db::tenants::set_policy(&mut app.connection(), "default", &change).unwrap();
    let admin = app.issue_token("default", "ops", "admin");
    let id = user(&app, "member").await;
    let res = app.post("/scim/v2/Groups", &json!({"displayName": "Team", "members": [{"value": id}]})).await;
    assert_eq!(res.status(), 201);
    let res = app.patch(&format!("/scim/v2/Users/{id}"), &active(false)).await;
    assert_eq!(res.status(), 200);
    let path = format!("/scim/v2/Users/{id}");
    let before = app.get(&path).await;
    let etag = before.headers()["etag"].to_str().unwrap().to_owned();
    let before = json(before).await;
    assert_eq!(before["groups"].as_array().map_or(0, Vec::len), 1);
    app.clock.advance(chrono::Duration::seconds(1));
    let swept = json(call(&app, &admin, reqwest::Method::POST, "/api/v1/admin/sweep", None).await).await;
    assert_eq!(swept["membershipsRemoved"], 1);
    let res =
        app.client.get(app.url(&path)).bearer_auth(&app.token).header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(res.status(), 200, "the groups changed, so the version did");
    assert_ne!(res.headers()["etag"].to_str().unwrap(), etag);
    let after = json(res).await;
    assert!(after["groups"].as_array().is_none_or(Vec::is_empty), "{after}");
    assert!(after["meta"]["lastModified"].as_str() > before["meta"]["lastModified"].as_str());
}

/// Under the `deactivate-only` policy a DELETE keeps the account for the product, deactivated,
/// but SCIM treats it as deleted (RFC 7644 §3.6): every later read, filter, count and write
/// answers as if it were gone, and its userName may be provisioned again.
async fn a_soft_deleted_account_is_gone_for_scim(app: TestApp) {
    let change =
        roster::db::tenants::PolicyChange { delete_policy: Some("deactivate-only".into()), ..Default::default() };
    roster::db::tenants::set_policy(&mut app.connection(), "default", &change).unwrap();
    let content = app.issue_token("default", "product", "content");
    let bob = app
        .create_user(json!({"userName": "bob", "externalId": "ext-bob", "emails": [{"value": "bob@example.com"}]}))
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    user(&app, "ann").await;
    let body = json!({"kind": "post", "authorId": bob, "body": "bob's post"});
    let post = json(call(&app, &content, reqwest::Method::POST, "/api/v1/content", Some(body)).await).await;
    let group =
        json(app.post("/scim/v2/Groups", &json!({"displayName": "Team", "members": [{"value": bob}]})).await).await;
    let group = format!("/scim/v2/Groups/{}", group["id"].as_str().unwrap());
    let path = format!("/scim/v2/Users/{bob}");

    assert_eq!(app.delete(&path).await.status(), 204);

    assert_scim_error(app.get(&path).await, 404).await;
    assert_scim_error(app.put(&path, &json!({"userName": "bob"})).await, 404).await;
    assert_scim_error(app.patch(&path, &active(true)).await, 404).await;
    assert_scim_error(app.delete(&path).await, 404).await;
    for filter in [
        "userName%20eq%20%22bob%22".to_owned(),
        "externalId%20eq%20%22ext-bob%22".to_owned(),
        "emails.value%20eq%20%22bob%40example.com%22".to_owned(),
        "active%20eq%20false".to_owned(),
        format!("id%20eq%20%22{bob}%22"),
    ] {
        let found = app.get_ok(&format!("/scim/v2/Users?filter={filter}")).await;
        assert_eq!(found["totalResults"], 0, "{filter}: {found}");
    }
    let all = app.get_ok("/scim/v2/Users").await;
    assert_eq!(all["totalResults"], 1, "{all}");
    assert_eq!(all["Resources"].as_array().unwrap().len(), 1);
    let cursor = app.get_ok("/scim/v2/Users?cursor=&count=10").await;
    assert_eq!(cursor["Resources"].as_array().unwrap().len(), 1);
    let members = app.get_ok(&group).await;
    assert!(members["members"].as_array().is_none_or(Vec::is_empty), "{members}");
    let res =
        app.patch(&group, &json!({"Operations": [{"op": "add", "path": "members", "value": [{"value": bob}]}]})).await;
    assert_scim_error(res, 400).await;
    // The userName (and externalId) may be provisioned again, as a new account.
    let again = app.create_user(json!({"userName": "BOB", "externalId": "ext-bob"})).await;
    assert_ne!(again["id"], bob.as_str());
    // The product keeps what the account wrote.
    let kept =
        call(&app, &content, reqwest::Method::GET, &format!("/api/v1/content/{}", post["id"].as_str().unwrap()), None)
            .await;
    assert_eq!(kept.status(), 200);
    let kept = json(kept).await;
    assert_eq!(kept["author"]["name"], "bob");
    assert!(kept["author"].get("profile").is_none(), "no link to a profile that answers 404: {kept}");
    // Retention still deletes it for good, and it leaves the count only once.
    let change = roster::db::tenants::PolicyChange { delete_after_days: Some(Some(30)), ..Default::default() };
    roster::db::tenants::set_policy(&mut app.connection(), "default", &change).unwrap();
    app.clock.advance(chrono::Duration::days(31));
    let admin = app.issue_token("default", "ops", "admin");
    let swept = json(call(&app, &admin, reqwest::Method::POST, "/api/v1/admin/sweep", None).await).await;
    assert_eq!(swept["deleted"], 1, "{swept}");
    assert_eq!(app.get_ok("/scim/v2/Users").await["totalResults"], 2, "ann and the new BOB");
}

/// A direct message racing the deletion of its recipient is refused (403, deactivated) or finds
/// no recipient (404), or lands before and goes with the account: never a server error.
async fn a_message_racing_the_deletion_of_its_recipient_never_fails_the_server(app: TestApp) {
    let content = app.issue_token("default", "product", "content");
    let sender = user(&app, "sender").await;
    let message = |to: String| {
        let body = json!({"kind": "message", "authorId": sender, "body": "hello", "recipientId": to});
        call(&app, &content, reqwest::Method::POST, "/api/v1/content", Some(body))
    };
    for round in 0..30 {
        let recipient = user(&app, &format!("recipient{round}")).await;
        let messages = futures_util::future::join_all((0..4).map(|_| message(recipient.clone())));
        let path = format!("/scim/v2/Users/{recipient}");
        let (deleted, messages) = tokio::join!(app.delete(&path), messages);
        assert_eq!(deleted.status(), 204);
        for res in messages {
            let status = res.status().as_u16();
            assert!([201, 403, 404].contains(&status), "round {round}: {status} {}", res.text().await.unwrap());
        }
    }
}

both_backends!(
    a_message_racing_the_deletion_of_its_recipient_never_fails_the_server,
    a_soft_deleted_account_is_gone_for_scim,
    removing_memberships_in_the_sweep_steps_the_users_version,
    a_comment_racing_the_deletion_of_its_post_answers_201_or_404,
    a_session_cannot_be_ended_by_another_tenant,
    each_tenant_numbers_its_own_events_and_audit_entries
);
both_backends!(by_backend: a_poller_sees_every_event_once_while_writers_race);
