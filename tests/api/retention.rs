//! Events expire and never keep what an account lost: the tenant's event retention, payloads
//! that name changed attributes instead of copying values, and the identifiers a Former Member
//! transition or a deletion removes from earlier events (docs/lifecycle.md, "Events").

use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{json, Backend, TestApp, TestDatabase};
use crate::storage::{deactivate, distinctive_person, gone_from_disk, personal_values};
use roster::db::tenants::{self, PolicyChange};

const ROSTER: &str = "urn:ietf:params:scim:schemas:extension:roster:2.0:User";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// A tenant's reader of the event feed and caller of the sweep.
struct Feed<'a> {
    app: &'a TestApp,
    token: String,
}

impl<'a> Feed<'a> {
    fn of(app: &'a TestApp, tenant: &str) -> Feed<'a> {
        Feed { app, token: app.issue_token(tenant, &format!("{tenant}-product"), "events,admin") }
    }

    /// The whole feed: (id, type, data).
    async fn events(&self) -> Vec<(i64, String, Value)> {
        let res = self.app.client.get(self.app.url("/api/v1/events?after=0&limit=1000")).bearer_auth(&self.token);
        let feed = json(res.send().await.unwrap()).await;
        feed["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["id"].as_i64().unwrap(), e["type"].as_str().unwrap().to_owned(), e["data"].clone()))
            .collect()
    }

    async fn ids(&self) -> Vec<i64> {
        self.events().await.into_iter().map(|(id, _, _)| id).collect()
    }

    /// The data of the account's events of `kind`, in order.
    async fn data(&self, kind: &str, user: &str) -> Vec<Value> {
        self.events().await.into_iter().filter(|(_, k, d)| k == kind && d["id"] == user).map(|(_, _, d)| d).collect()
    }

    async fn sweep(&self) -> Value {
        let res = self.app.client.post(self.app.url("/api/v1/admin/sweep")).bearer_auth(&self.token);
        let res = res.send().await.unwrap();
        assert_eq!(res.status(), 200);
        json(res).await
    }
}

fn set(app: &TestApp, tenant: &str, change: PolicyChange) {
    tenants::set_policy(&mut app.connection(), tenant, &change).unwrap();
}

async fn create(app: &TestApp, token: &str, body: Value) -> String {
    let res = app.client.post(app.url("/scim/v2/Users")).bearer_auth(token).json(&body).send().await.unwrap();
    assert_eq!(res.status(), 201);
    json(res).await["id"].as_str().unwrap().to_owned()
}

async fn become_former_member(app: &TestApp, id: &str) {
    deactivate(app, id).await;
    app.clock.advance(chrono::Duration::days(4));
    let body = json!({"Operations": [{"op": "replace", "path": format!("{ROSTER}:formerMember"), "value": true}]});
    assert_eq!(app.patch(&format!("/scim/v2/Users/{id}"), &body).await.status(), 200);
}

async fn events_older_than_the_tenant_retention_are_purged_by_the_sweep(app: TestApp) {
    set(&app, "default", PolicyChange { event_retention_days: Some(Some(30)), ..Default::default() });
    tenants::create(&mut app.connection(), "acme").unwrap();
    let (feed, acme) = (Feed::of(&app, "default"), Feed::of(&app, "acme"));
    let acme_scim = app.issue_token("acme", "acme-idp", "scim");
    create(&app, &app.token, json!({"userName": "old-a"})).await;
    create(&app, &app.token, json!({"userName": "old-b"})).await;
    create(&app, &acme_scim, json!({"userName": "acme-old"})).await;
    app.clock.advance(chrono::Duration::days(31));
    create(&app, &app.token, json!({"userName": "young"})).await;
    assert_eq!(feed.ids().await, [1, 2, 3]);

    assert_eq!(feed.sweep().await["eventsPurged"], 2);
    // The older events are gone; the one left keeps its id, so a reader's position holds.
    let left = feed.events().await;
    assert_eq!(left.len(), 1);
    assert_eq!((left[0].0, left[0].1.as_str()), (3, "user.created"));
    // Another tenant keeps its own retention (the default, 90 days): its 31-day-old event stays.
    assert_eq!(acme.sweep().await["eventsPurged"], 0);
    assert_eq!(acme.ids().await, [1]);

    // The newest event stays however old, so that the numbering continues after it.
    app.clock.advance(chrono::Duration::days(31));
    assert_eq!(feed.sweep().await["eventsPurged"], 0);
    create(&app, &app.token, json!({"userName": "later"})).await;
    assert_eq!(feed.ids().await, [3, 4]);
    app.clock.advance(chrono::Duration::days(31));
    assert_eq!(feed.sweep().await["eventsPurged"], 1);
    assert_eq!(feed.ids().await, [4]);

    // Off: kept for good.
    set(&app, "default", PolicyChange { event_retention_days: Some(None), ..Default::default() });
    create(&app, &app.token, json!({"userName": "kept"})).await;
    app.clock.advance(chrono::Duration::days(400));
    create(&app, &app.token, json!({"userName": "kept-too"})).await;
    assert_eq!(feed.sweep().await["eventsPurged"], 0);
    assert_eq!(feed.ids().await, [4, 5, 6]);
}

async fn event_payloads_name_changed_attributes_and_carry_identifiers_only_until_the_profile_goes(app: TestApp) {
    let feed = Feed::of(&app, "default");
    let id = create(
        &app,
        &app.token,
        json!({"userName": "pat", "externalId": "ext-pat", "displayName": "Pat Doe", "title": "Engineer",
               "emails": [{"value": "pat@example.com"}], ENTERPRISE: {"department": "R&D"}}),
    )
    .await;
    let created = json!({"id": id, "state": "active", "identifiers": {"userName": "pat", "externalId": "ext-pat"}});
    assert_eq!(feed.data("user.created", &id).await, [created]);

    let profile = json!({"Operations": [
        {"op": "replace", "path": "title", "value": "Manager"},
        {"op": "replace", "path": "emails", "value": [{"value": "pat.doe@example.com"}]},
        {"op": "replace", "path": format!("{ENTERPRISE}:department"), "value": "Sales"}]});
    assert_eq!(app.patch(&format!("/scim/v2/Users/{id}"), &profile).await.status(), 200);
    let rename = json!({"Operations": [{"op": "replace", "path": "userName", "value": "pat.doe"}]});
    assert_eq!(app.patch(&format!("/scim/v2/Users/{id}"), &rename).await.status(), 200);
    let updated = feed.data("user.updated", &id).await;
    assert_eq!(
        updated,
        [
            json!({"id": id, "method": "PATCH", "attributes": ["emails", "title", format!("{ENTERPRISE}:department")]}),
            json!({"id": id, "method": "PATCH", "attributes": ["userName"], "identifiers": {"userName": "pat.doe", "externalId": "ext-pat"}}),
        ]
    );

    let before: Vec<(i64, String)> = feed.events().await.into_iter().map(|(n, k, _)| (n, k)).collect();
    become_former_member(&app, &id).await;
    let after = feed.events().await;
    // Ids, types and order of the earlier events unchanged; their identifiers gone.
    let kept: Vec<(i64, String)> = after.iter().take(before.len()).map(|(n, k, _)| (*n, k.clone())).collect();
    assert_eq!(kept, before);
    assert_eq!(feed.data("user.created", &id).await, [json!({"id": id, "state": "active"})]);
    assert_eq!(
        feed.data("user.updated", &id).await[1],
        json!({"id": id, "method": "PATCH", "attributes": ["userName"]})
    );
    // The transition names what it removed, never the values.
    let former = &feed.data("user.former_member", &id).await[0];
    let removed: Vec<&str> = former["attributes"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    for name in ["displayName", "emails", "externalId", "name", "title", "userName", ENTERPRISE] {
        assert!(removed.contains(&name), "{name} in {removed:?}");
    }
    let text = serde_json::to_string(&after).unwrap();
    for value in ["pat", "Pat Doe", "example.com", "Manager", "Sales", "Engineer"] {
        assert!(!text.contains(value), "{value:?} still in the feed: {text}");
    }
}

/// Below HTTP: after a Former Member transition and a deletion (with its archive export), the
/// old userName, name and email are in no database file — SQLite's file and WAL, PostgreSQL's
/// heap, TOAST and index pages — though the events that named them are still in the feed.
async fn former_members_and_deleted_accounts_leave_no_personal_data_in_event_files(backend: Backend) {
    let Some(db) = TestDatabase::create_isolated(backend) else { return };
    let app = TestApp::spawn_with(db, |_| {}).await;
    let archive = tempdir();
    let change = PolicyChange {
        archive_export: Some(true),
        archive_dir: Some(Some(archive.to_string_lossy().into_owned())),
        ..Default::default()
    };
    set(&app, "default", change);
    let feed = Feed::of(&app, "default");
    let former = create(&app, &app.token, distinctive_person("zqevformer")).await;
    let deleted = create(&app, &app.token, distinctive_person("zqevdeleted")).await;
    let rename = json!({"Operations": [{"op": "replace", "path": "userName", "value": "zqevdeleted-renamed"}]});
    assert_eq!(app.patch(&format!("/scim/v2/Users/{deleted}"), &rename).await.status(), 200);
    // The events did hold the identifiers: what follows has something to remove.
    assert_eq!(feed.data("user.created", &former).await[0]["identifiers"]["userName"], "zqevformer-username");
    assert_eq!(feed.data("user.updated", &deleted).await[0]["identifiers"]["userName"], "zqevdeleted-renamed");

    become_former_member(&app, &former).await;
    assert_eq!(app.delete(&format!("/scim/v2/Users/{deleted}")).await.status(), 204);
    let mut values = personal_values("zqevformer");
    values.extend(personal_values("zqevdeleted"));
    values.push("zqevdeleted-renamed".into());
    // The export waits sealed: its plain text is nowhere in the files.
    gone_from_disk(&app, &values).await;
    assert_eq!(feed.sweep().await["exportsWritten"], 1);
    gone_from_disk(&app, &values).await;
    let kinds: Vec<String> = feed.events().await.into_iter().map(|(_, k, _)| k).collect();
    for kind in
        ["user.created", "user.updated", "user.former_member", "user.exported", "user.deleted", "archive.written"]
    {
        assert!(kinds.contains(&kind.to_owned()), "{kind} in {kinds:?}");
    }
    // The audit log names actors, actions and states only.
    let audit = app.client.get(app.url("/api/v1/audit?after=0&limit=1000")).bearer_auth(&feed.token);
    let audit = json(audit.send().await.unwrap()).await.to_string().to_lowercase();
    assert!(values.iter().all(|v| !audit.contains(v)), "{audit}");
    std::fs::remove_dir_all(&archive).unwrap();
}

/// A retry may come a day after its event, and a short retention must not take the event first;
/// the delivery log, once finished, goes with the events it names.
async fn events_wait_for_their_pending_deliveries_and_the_log_goes_with_them(app: TestApp) {
    use diesel::prelude::*;
    use roster::db::deliveries;
    use roster::db::schema::deliveries::dsl;
    use roster::delivery::webhooks::{self, NewWebhook};

    set(&app, "default", PolicyChange { event_retention_days: Some(Some(1)), ..Default::default() });
    let feed = Feed::of(&app, "default");
    create(&app, &app.token, json!({"userName": "early"})).await;
    create(&app, &app.token, json!({"userName": "retried"})).await;
    // A webhook whose delivery of event 2 failed and is due again later; queued by hand, so
    // that no sender of this test's server takes it meanwhile.
    let mut conn = app.connection();
    // It asks for a type this test never writes, so the sender queues nothing of its own.
    let types = ["archive.expired".to_owned()];
    let new =
        NewWebhook { tenant: "default", url: "http://127.0.0.1:9/hook", event_types: &types, allow_private: true };
    let webhook = webhooks::add(&mut conn, &new, app.clock.now()).unwrap().webhook;
    let later = app.clock.now() + chrono::Duration::days(3650);
    roster::db::write_transaction(&mut conn, |conn| {
        let queued = [deliveries::Queued { event_seq: 2, part: 0, user_id: None }];
        deliveries::enqueue(conn, &webhook.tenant_id, &webhook.id, &queued, deliveries::PENDING, app.clock.now())?;
        diesel::update(dsl::deliveries).set(dsl::next_attempt_at.eq(later)).execute(&mut *conn)
    })
    .unwrap();
    drop(conn);

    app.clock.advance(chrono::Duration::days(2));
    create(&app, &app.token, json!({"userName": "young"})).await;
    let swept = feed.sweep().await;
    assert_eq!((swept["eventsPurged"].as_u64(), swept["deliveriesPruned"].as_u64()), (Some(1), Some(0)));
    assert_eq!(feed.ids().await, [2, 3], "event 2 waits for its delivery");

    // Delivered: the event may go, and its log entry with it.
    diesel::update(dsl::deliveries)
        .set((dsl::status.eq("delivered"), dsl::finished_at.eq(app.clock.now())))
        .execute(&mut *app.connection())
        .unwrap();
    let swept = feed.sweep().await;
    assert_eq!((swept["eventsPurged"].as_u64(), swept["deliveriesPruned"].as_u64()), (Some(1), Some(1)));
    assert_eq!(feed.ids().await, [3]);
    assert!(webhooks::delivery_log(&mut app.connection(), "default", None, None, 100).unwrap().is_empty());
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("roster_t_{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

both_backends!(
    events_older_than_the_tenant_retention_are_purged_by_the_sweep,
    event_payloads_name_changed_attributes_and_carry_identifiers_only_until_the_profile_goes,
    events_wait_for_their_pending_deliveries_and_the_log_goes_with_them,
);
both_backends!(by_backend: former_members_and_deleted_accounts_leave_no_personal_data_in_event_files);
