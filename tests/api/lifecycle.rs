//! The account lifecycle of docs/lifecycle.md, row by row, through the public APIs.

use chrono::Duration;
use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{assert_scim_error, json, TestApp};

const ROSTER: &str = "urn:ietf:params:scim:schemas:extension:roster:2.0:User";

/// A token with every product scope, for sessions, content, events, audit and sweeps.
fn product_token(app: &TestApp) -> String {
    app.issue_token("default", "product", "sessions,content,events,admin")
}

struct Product<'a> {
    app: &'a TestApp,
    token: String,
}

impl Product<'_> {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> reqwest::Response {
        let mut req = self.app.client.request(method, self.app.url(path)).bearer_auth(&self.token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        req.send().await.unwrap()
    }

    async fn open_session(&self, user: &str) -> reqwest::Response {
        self.call(reqwest::Method::POST, "/api/v1/sessions", Some(json!({"userId": user}))).await
    }

    async fn session_token(&self, user: &str) -> String {
        let res = self.open_session(user).await;
        assert_eq!(res.status(), 201);
        json(res).await["token"].as_str().unwrap().to_owned()
    }

    async fn active(&self, token: &str) -> bool {
        let res = self.call(reqwest::Method::POST, "/api/v1/sessions/introspect", Some(json!({"token": token}))).await;
        json(res).await["active"].as_bool().unwrap()
    }

    async fn write(&self, kind: &str, author: &str, body: &str, extra: Value) -> reqwest::Response {
        let mut req = json!({"kind": kind, "authorId": author, "body": body});
        for (k, v) in extra.as_object().unwrap() {
            req[k] = v.clone();
        }
        self.call(reqwest::Method::POST, "/api/v1/content", Some(req)).await
    }

    async fn post(&self, author: &str, body: &str) -> String {
        let res = self.write("post", author, body, json!({})).await;
        assert_eq!(res.status(), 201);
        json(res).await["id"].as_str().unwrap().to_owned()
    }

    async fn events(&self) -> Vec<(String, Value)> {
        let feed = json(self.call(reqwest::Method::GET, "/api/v1/events?after=0&limit=1000", None).await).await;
        feed["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["type"].as_str().unwrap().to_owned(), e["data"].clone()))
            .collect()
    }

    async fn event_types(&self, user: &str) -> Vec<String> {
        self.events()
            .await
            .into_iter()
            .filter(|(_, d)| d["id"] == user || d["userId"] == user)
            .map(|(t, _)| t)
            .collect()
    }

    async fn sweep(&self) -> Value {
        json(self.call(reqwest::Method::POST, "/api/v1/admin/sweep", None).await).await
    }

    async fn search(&self, q: &str) -> Value {
        json(self.call(reqwest::Method::GET, &format!("/api/v1/search?q={q}"), None).await).await
    }
}

async fn person(app: &TestApp, name: &str) -> String {
    let body = app
        .create_user(json!({"userName": name, "externalId": format!("ext-{name}"), "displayName": format!("{name} Person"),
            "name": {"givenName": name, "familyName": "Person"}, "title": "Engineer",
            "emails": [{"value": format!("{name}@example.com"), "type": "work", "primary": true}],
            "phoneNumbers": [{"value": "555-0100"}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "R&D", "employeeNumber": "7"}}))
        .await;
    body["id"].as_str().unwrap().to_owned()
}

async fn deactivate(app: &TestApp, id: &str) -> Value {
    let res = app
        .patch(&format!("/scim/v2/Users/{id}"), &json!({"Operations": [{"op": "replace", "value": {"active": false}}]}))
        .await;
    assert_eq!(res.status(), 200);
    json(res).await
}

fn patch_former_member() -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": format!("{ROSTER}:formerMember"), "value": true}]})
}

async fn provisioning_sets_the_initial_state(app: TestApp) {
    let product = Product { token: product_token(&app), app: &app };
    let active = person(&app, "new").await;
    let user = app.get_ok(&format!("/scim/v2/Users/{active}")).await;
    assert_eq!(user[ROSTER]["lifecycleState"], "active");
    assert_eq!(user[ROSTER]["formerMember"], false);
    assert!(user[ROSTER].get("deactivatedAt").is_none());
    let inactive = app.create_user(json!({"userName": "dormant", "active": false})).await;
    assert_eq!(inactive["active"], false);
    assert_eq!(inactive[ROSTER]["lifecycleState"], "deactivated");
    assert!(inactive[ROSTER]["deactivatedAt"].is_string());
    assert_eq!(product.event_types(&active).await, ["user.created"]);
}

async fn deactivation_revokes_every_session_and_keeps_the_profile(app: TestApp) {
    let product = Product { token: product_token(&app), app: &app };
    let (ann, bob) = (person(&app, "ann").await, person(&app, "bob").await);
    let sessions = [product.session_token(&ann).await, product.session_token(&ann).await];
    for s in &sessions {
        assert!(product.active(s).await);
    }
    let post = product.post(&ann, "hello from ann").await;
    let user = deactivate(&app, &ann).await;
    assert_eq!(user["active"], false);
    assert_eq!(user[ROSTER]["lifecycleState"], "deactivated");
    for s in &sessions {
        assert!(!product.active(s).await, "a session opened before deactivation is inactive at once");
    }
    let denied = product.open_session(&ann).await;
    let err = assert_scim_error(denied, 403).await;
    assert!(err["detail"].as_str().unwrap().contains("deactivated"));
    // Okta and Entra require the user to stay readable, by id and by filter.
    assert_eq!(app.get_ok(&format!("/scim/v2/Users/{ann}")).await["emails"][0]["value"], "ann@example.com");
    let found = app.get_ok("/scim/v2/Users?filter=userName%20eq%20%22ann%22").await;
    assert_eq!(found["totalResults"], 1);
    // Content stays visible, marked; new direct messages to the user are refused.
    let content = json(product.call(reqwest::Method::GET, &format!("/api/v1/content/{post}"), None).await).await;
    assert_eq!(content["author"]["deactivated"], true);
    let dm = product.write("message", &bob, "are you there?", json!({"recipientId": ann})).await;
    assert_scim_error(dm, 403).await;
    let search = product.search("ann").await;
    assert_eq!(search["people"][0]["deactivated"], true);
    // Deactivating again is a harmless no-op.
    let again = deactivate(&app, &ann).await;
    assert_eq!(again[ROSTER]["deactivatedAt"], user[ROSTER]["deactivatedAt"]);
    assert_eq!(product.event_types(&ann).await, ["user.created", "user.deactivated"]);
}

/// A PATCH or PUT that changes the profile and the state is one write: one new version, the
/// events of both in order, the transition audited, the sessions revoked, the item index
/// rewritten — and a write that fails writes none of it.
async fn a_profile_and_state_change_is_one_write(app: TestApp) {
    let product = Product { token: product_token(&app), app: &app };
    let id = person(&app, "pat").await;
    let session = product.session_token(&id).await;
    let body = json!({"Operations": [
        {"op": "replace", "path": "displayName", "value": "Pat Renamed"},
        {"op": "replace", "path": "active", "value": false},
    ]});
    let res = app.patch(&format!("/scim/v2/Users/{id}"), &body).await;
    assert_eq!(res.status(), 200);
    let user = json(res).await;
    assert_eq!((user["displayName"].as_str(), user["active"].as_bool()), (Some("Pat Renamed"), Some(false)));
    assert_eq!(user["meta"]["version"], "W/\"2\"", "one write, one version");
    assert!(!product.active(&session).await, "the deactivation revoked the session");
    assert_eq!(product.event_types(&id).await, ["user.created", "user.updated", "user.deactivated"]);
    let audit = json(product.call(reqwest::Method::GET, "/api/v1/audit", None).await).await;
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["userId"] == id.as_str())
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["create", "deactivate"]);

    // PUT: new emails and active again. Filters see the new item index, not the old one.
    let put = json!({"userName": "pat", "emails": [{"value": "pat.new@example.com", "type": "work"}], "active": true});
    let res = app.put(&format!("/scim/v2/Users/{id}"), &put).await;
    assert_eq!(res.status(), 200);
    assert_eq!(json(res).await["meta"]["version"], "W/\"3\"");
    let found = app.get_ok("/scim/v2/Users?filter=emails.value%20eq%20%22pat.new@example.com%22").await;
    assert_eq!(found["totalResults"], 1);
    let old = app.get_ok("/scim/v2/Users?filter=emails.value%20eq%20%22pat@example.com%22").await;
    assert_eq!(old["totalResults"], 0);
    let types = product.event_types(&id).await;
    assert_eq!(types[3..], ["user.updated", "user.reactivated"]);

    // A write that fails (the userName is taken) leaves the user, its events and its index as
    // they were.
    person(&app, "taken").await;
    let clash = json!({"userName": "TAKEN", "emails": [{"value": "clash@example.com"}], "active": false});
    assert_scim_error(app.put(&format!("/scim/v2/Users/{id}"), &clash).await, 409).await;
    let user = app.get_ok(&format!("/scim/v2/Users/{id}")).await;
    assert_eq!((user["userName"].as_str(), user["active"].as_bool()), (Some("pat"), Some(true)));
    assert_eq!(user["meta"]["version"], "W/\"3\"");
    assert_eq!(product.event_types(&id).await.len(), 5);
    let clash = app.get_ok("/scim/v2/Users?filter=emails.value%20eq%20%22clash@example.com%22").await;
    assert_eq!(clash["totalResults"], 0);
}

/// A tenant deleted while a create was under way (its token still remembered) gets 401, and
/// nothing is stored: the user's row names the tenant, which no longer exists.
async fn a_create_for_a_deleted_tenant_is_refused(app: TestApp) {
    let mut conn = app.connection();
    let tenant = roster::db::tenants::create(&mut conn, "leaving").unwrap().id;
    assert!(roster::db::tenants::delete(&mut conn, "leaving").unwrap());
    let ctx =
        roster::context::Ctx { tenant_id: tenant.clone(), actor: "idp".into(), now: chrono::Utc::now().naive_utc() };
    for active in [true, false] {
        let doc = json!({"userName": "late", "emails": [{"value": "late@example.com"}], "active": active});
        let doc = doc.as_object().unwrap().clone();
        let err = roster::users::create(&mut conn, &ctx, &doc).unwrap_err();
        assert_eq!(err.status, 401, "{err:?}");
        assert!(err.detail.contains("tenant no longer exists"), "{}", err.detail);
    }
    use diesel::prelude::*;
    use roster::db::schema::{events, users};
    let stored: i64 = users::table.filter(users::tenant_id.eq(&tenant)).count().get_result(&mut *conn).unwrap();
    let recorded: i64 = events::table.filter(events::tenant_id.eq(&tenant)).count().get_result(&mut *conn).unwrap();
    assert_eq!((stored, recorded), (0, 0));
}

async fn every_deactivation_form_idps_send_works(app: TestApp) {
    let forms = [
        json!({"Operations": [{"op": "Replace", "path": "active", "value": "False"}]}),
        json!({"Operations": [{"op": "replace", "value": {"active": false}}]}),
        json!({"Operations": [{"op": "replace", "path": "active", "value": false}]}),
    ];
    for (i, form) in forms.iter().enumerate() {
        let id = person(&app, &format!("form{i}")).await;
        let res = app.patch(&format!("/scim/v2/Users/{id}"), form).await;
        assert_eq!(json(res).await[ROSTER]["lifecycleState"], "deactivated", "form {form}");
    }
    // Okta AIW: a full PUT with active false.
    let id = person(&app, "putter").await;
    let mut full = app.get_ok(&format!("/scim/v2/Users/{id}")).await;
    full["active"] = json!(false);
    let res = app.put(&format!("/scim/v2/Users/{id}"), &full).await;
    assert_eq!(json(res).await[ROSTER]["lifecycleState"], "deactivated");
}

async fn memberships_go_after_the_grace_period_unless_reactivated(app: TestApp) {
    let product = Product { token: product_token(&app), app: &app };
    let (stays, goes) = (person(&app, "stays").await, person(&app, "goes").await);
    let group = app
        .post("/scim/v2/Groups", &json!({"displayName": "Team", "members": [{"value": stays}, {"value": goes}]}))
        .await;
    let group = json(group).await;
    let path = format!("/scim/v2/Groups/{}", group["id"].as_str().unwrap());
    deactivate(&app, &stays).await;
    deactivate(&app, &goes).await;
    app.clock.advance(Duration::days(3));
    app.patch(
        &format!("/scim/v2/Users/{stays}"),
        &json!({"Operations": [{"op": "replace", "path": "active", "value": true}]}),
    )
    .await;
    assert_eq!(product.sweep().await["membershipsRemoved"], 0, "not yet: 3 of 4 days");
    app.clock.advance(Duration::days(2));
    let before = app.get_ok(&path).await["meta"].clone();
    assert_eq!(product.sweep().await["membershipsRemoved"], 1);
    // The group changed: a new version, and lastModified is the sweep's time (a client syncing
    // with `meta.lastModified gt …` must see it).
    let after = app.get_ok(&path).await["meta"].clone();
    assert_ne!(after["version"], before["version"]);
    assert!(after["lastModified"].as_str() > before["lastModified"].as_str(), "{before} → {after}");
    let members: Vec<String> = app.get_ok(&path).await["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(members, vec![stays], "reactivation cancelled the pending removal");
    assert!(product.event_types(&goes).await.contains(&"membership.removed".to_owned()));
    assert_eq!(product.sweep().await["membershipsRemoved"], 0, "each removal happens once");
}

async fn former_member_removes_the_profile_and_frees_the_user_name(app: TestApp) {
    let product = Product { token: product_token(&app), app: &app };
    let ann = person(&app, "ann").await;
    let post = product.post(&ann, "ann's post").await;
    let team =
        json(app.post("/scim/v2/Groups", &json!({"displayName": "team", "members": [{"value": ann}]})).await).await;
    // Active: deactivate first.
    let err = assert_scim_error(app.patch(&format!("/scim/v2/Users/{ann}"), &patch_former_member()).await, 409).await;
    assert!(err["detail"].as_str().unwrap().contains("deactivate"));
    // A deactivated account keeps its memberships through the grace period, and says so.
    assert_eq!(deactivate(&app, &ann).await["groups"][0]["value"], team["id"]);
    // Inside the grace period: 409 naming the earliest time.
    app.clock.advance(Duration::days(1));
    let err = assert_scim_error(app.patch(&format!("/scim/v2/Users/{ann}"), &patch_former_member()).await, 409).await;
    assert!(err["detail"].as_str().unwrap().contains("from 20"), "{err}");
    app.clock.advance(Duration::days(3));
    let res = app.patch(&format!("/scim/v2/Users/{ann}"), &patch_former_member()).await;
    assert_eq!(res.status(), 200);
    let former = json(res).await;
    assert_eq!(former["displayName"], "Former Member");
    assert_eq!(former["name"], json!({"formatted": "Former Member"}));
    assert_eq!(former[ROSTER]["lifecycleState"], "formerMember");
    assert_eq!(former[ROSTER]["formerMember"], true);
    assert!(former[ROSTER]["formerMemberSince"].is_string());
    assert!(former.get("groups").is_none(), "a Former Member belongs to no group: {former}");
    assert!(app.get_ok(&format!("/scim/v2/Groups/{}", team["id"].as_str().unwrap())).await.get("members").is_none());
    for gone in
        ["emails", "phoneNumbers", "title", "externalId", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]
    {
        assert!(former.get(gone).is_none(), "{gone} removed: {former}");
    }
    assert_ne!(former["userName"], "ann");
    // Still readable by id; the old userName and externalId are free for a new, unrelated account.
    assert_eq!(app.get_ok(&format!("/scim/v2/Users/{ann}")).await["displayName"], "Former Member");
    assert_eq!(app.get_ok("/scim/v2/Users?filter=userName%20eq%20%22ann%22").await["totalResults"], 0);
    let again = person(&app, "ann").await;
    assert_ne!(again, ann);
    assert_eq!(
        app.get_ok("/scim/v2/Users?filter=externalId%20eq%20%22ext-ann%22").await["Resources"][0]["id"],
        again.as_str()
    );
    // Content keeps the original author name but no longer links to the account.
    let content = json(product.call(reqwest::Method::GET, &format!("/api/v1/content/{post}"), None).await).await;
    assert_eq!(content["author"], json!({"name": "ann Person", "state": "formerMember"}));
    let search = product.search("former").await;
    assert_eq!(search["people"][0], json!({"name": "Former Member", "state": "formerMember"}));
    assert!(product.search("ann%40example").await["people"].as_array().unwrap().is_empty());
}

async fn a_former_member_cannot_come_back_or_change(app: TestApp) {
    let id = person(&app, "gone").await;
    deactivate(&app, &id).await;
    app.clock.advance(Duration::days(4));
    app.patch(&format!("/scim/v2/Users/{id}"), &patch_former_member()).await;
    let path = format!("/scim/v2/Users/{id}");
    for body in [
        json!({"Operations": [{"op": "replace", "path": "active", "value": true}]}),
        json!({"Operations": [{"op": "replace", "path": "displayName", "value": "Back"}]}),
        json!({"Operations": [{"op": "replace", "path": format!("{ROSTER}:formerMember"), "value": false}]}),
    ] {
        let err = assert_scim_error(app.patch(&path, &body).await, 400).await;
        assert_eq!(err["scimType"], "mutability");
        assert!(err["detail"].as_str().unwrap().contains("provision a new account"));
    }
    // IdPs re-sending the state they saw is harmless.
    let res = app.patch(&path, &json!({"Operations": [{"op": "replace", "value": {"active": false}}]})).await;
    assert_eq!(res.status(), 200);
    let current = app.get_ok(&path).await;
    assert_eq!(app.put(&path, &current).await.status(), 200);
}

async fn deletion_removes_the_account_and_everything_it_wrote(app: TestApp) {
    let product = Product { token: product_token(&app), app: &app };
    let (ann, bob) = (person(&app, "ann").await, person(&app, "bob").await);
    let anns_post = product.post(&ann, "ann writes").await;
    let bobs_post = product.post(&bob, "bob writes").await;
    let comment = json(product.write("comment", &ann, "ann comments", json!({"parentId": bobs_post})).await).await;
    let to_bob = json(product.write("message", &ann, "hi bob", json!({"recipientId": bob})).await).await;
    let from_bob = json(product.write("message", &bob, "hi ann", json!({"recipientId": ann})).await).await;
    let group = json(
        app.post("/scim/v2/Groups", &json!({"displayName": "G", "members": [{"value": ann}, {"value": bob}]})).await,
    )
    .await;
    let session = product.session_token(&ann).await;
    deactivate(&app, &ann).await;
    assert_eq!(app.delete(&format!("/scim/v2/Users/{ann}")).await.status(), 204);
    assert_scim_error(app.get(&format!("/scim/v2/Users/{ann}")).await, 404).await;
    assert_eq!(app.get_ok("/scim/v2/Users?filter=userName%20eq%20%22ann%22").await["totalResults"], 0);
    for gone in [&anns_post, comment["id"].as_str().unwrap(), to_bob["id"].as_str().unwrap()] {
        assert_scim_error(product.call(reqwest::Method::GET, &format!("/api/v1/content/{gone}"), None).await, 404)
            .await;
    }
    // What others wrote stays, including a message that was sent to the deleted person.
    let kept = json(
        product
            .call(reqwest::Method::GET, &format!("/api/v1/content/{}", from_bob["id"].as_str().unwrap()), None)
            .await,
    )
    .await;
    assert_eq!(kept["body"], "hi ann");
    assert!(kept.get("recipientId").is_none());
    assert_eq!(
        json(product.call(reqwest::Method::GET, &format!("/api/v1/content/{bobs_post}"), None).await).await["body"],
        "bob writes"
    );
    assert!(!product.active(&session).await);
    let members = app.get_ok(&format!("/scim/v2/Groups/{}", group["id"].as_str().unwrap())).await;
    assert_eq!(members["members"].as_array().unwrap().len(), 1);
    assert!(product.search("ann%40example").await["people"].as_array().unwrap().is_empty());
    assert!(product.search("ann%20writes").await["content"].as_array().unwrap().is_empty());
    assert_eq!(product.search("bob%20writes").await["content"].as_array().unwrap().len(), 1);
    let types = product.event_types(&ann).await;
    assert_eq!(types.last().unwrap(), "user.deleted");
    // The tombstone keeps only the id and time.
    let tomb = roster::db::records::tombstone(&mut app.connection(), &app.claims_of(&app.token).tenant, &ann).unwrap();
    assert!(tomb.is_some());
    // Deleting again is harmless.
    assert_scim_error(app.delete(&format!("/scim/v2/Users/{ann}")).await, 404).await;
}

async fn deleting_an_active_account_follows_the_tenant_policy(app: TestApp) {
    let product = Product { token: product_token(&app), app: &app };
    let set =
        |policy: &str| roster::db::tenants::PolicyChange { delete_policy: Some(policy.into()), ..Default::default() };
    // Default: deactivate-then-delete, two audit entries.
    let a = person(&app, "a").await;
    assert_eq!(app.delete(&format!("/scim/v2/Users/{a}")).await.status(), 204);
    assert_scim_error(app.get(&format!("/scim/v2/Users/{a}")).await, 404).await;
    let audit = json(product.call(reqwest::Method::GET, "/api/v1/audit", None).await).await;
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["userId"] == a.as_str())
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["create", "deactivate", "delete"]);
    roster::db::tenants::set_policy(&mut app.connection(), "default", &set("require-deactivated")).unwrap();
    let b = person(&app, "b").await;
    assert_scim_error(app.delete(&format!("/scim/v2/Users/{b}")).await, 409).await;
    assert_eq!(app.get_ok(&format!("/scim/v2/Users/{b}")).await["active"], true);
    roster::db::tenants::set_policy(&mut app.connection(), "default", &set("deactivate-only")).unwrap();
    assert_eq!(app.delete(&format!("/scim/v2/Users/{b}")).await.status(), 204);
    // Kept, deactivated, for the product; deleted for SCIM (RFC 7644 §3.6).
    assert_scim_error(app.get(&format!("/scim/v2/Users/{b}")).await, 404).await;
}

async fn archive_export_is_written_before_the_rows_go(app: TestApp) {
    let product = Product { token: product_token(&app), app: &app };
    let dir = std::env::temp_dir().join(format!("roster_t_{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let change = roster::db::tenants::PolicyChange {
        archive_export: Some(true),
        archive_dir: Some(Some(dir.to_string_lossy().into_owned())),
        ..Default::default()
    };
    roster::db::tenants::set_policy(&mut app.connection(), "default", &change).unwrap();
    let ann = person(&app, "ann").await;
    product.post(&ann, "for the archive").await;
    app.delete(&format!("/scim/v2/Users/{ann}")).await;
    // The export is taken before the rows go; the event says so, without the data.
    let events = product.events().await;
    let export = events.iter().find(|(t, _)| t == "user.exported").expect("an export event");
    assert_eq!(export.1, json!({"id": ann, "destination": "directory"}));
    let kinds: Vec<&str> = events.iter().map(|(t, _)| t.as_str()).collect();
    let pos = |k: &str| kinds.iter().position(|t| *t == k).unwrap();
    assert!(pos("user.exported") < pos("user.deleted"));
    product.sweep().await;
    let file = std::fs::read_to_string(dir.join(format!("{ann}.jsonl"))).unwrap();
    let lines: Vec<Value> = file.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines[0]["profile"]["userName"], "ann");
    assert_eq!(lines[1]["body"], "for the archive");
    std::fs::remove_dir_all(&dir).unwrap();
}

async fn retention_policy_runs_in_the_sweep(app: TestApp) {
    let product = Product { token: product_token(&app), app: &app };
    let change = roster::db::tenants::PolicyChange {
        former_member_after_days: Some(Some(10)),
        delete_after_days: Some(Some(30)),
        ..Default::default()
    };
    roster::db::tenants::set_policy(&mut app.connection(), "default", &change).unwrap();
    let id = person(&app, "retained").await;
    deactivate(&app, &id).await;
    app.clock.advance(Duration::days(11));
    let report = product.sweep().await;
    assert_eq!(report["formerMembers"], 1);
    assert_eq!(app.get_ok(&format!("/scim/v2/Users/{id}")).await[ROSTER]["lifecycleState"], "formerMember");
    assert_eq!(product.sweep().await["formerMembers"], 0);
    app.clock.advance(Duration::days(20));
    assert_eq!(product.sweep().await["deleted"], 1);
    assert_scim_error(app.get(&format!("/scim/v2/Users/{id}")).await, 404).await;
    let audit = json(product.call(reqwest::Method::GET, "/api/v1/audit", None).await).await;
    let last = audit["entries"].as_array().unwrap().last().unwrap().clone();
    assert_eq!((last["actor"].as_str(), last["action"].as_str()), (Some("retention-policy"), Some("delete")));
}

async fn the_audit_log_names_actors_and_never_removed_data(app: TestApp) {
    let product = Product { token: product_token(&app), app: &app };
    let change = roster::db::tenants::PolicyChange { grace_days: Some(0), ..Default::default() };
    roster::db::tenants::set_policy(&mut app.connection(), "default", &change).unwrap();
    let id = person(&app, "secret-name").await;
    deactivate(&app, &id).await;
    assert_eq!(
        app.patch(&format!("/scim/v2/Users/{id}"), &patch_former_member()).await.status(),
        200,
        "grace 0 allows it at once"
    );
    let audit = json(product.call(reqwest::Method::GET, "/api/v1/audit", None).await).await;
    let text = audit.to_string();
    assert!(!text.contains("secret-name") && !text.contains("example.com"), "{text}");
    let entries = audit["entries"].as_array().unwrap();
    let former = entries.iter().find(|e| e["action"] == "former_member").unwrap();
    assert_eq!(
        (former["actor"].as_str(), former["before"].as_str(), former["after"].as_str()),
        (Some("test-idp"), Some("deactivated"), Some("formerMember"))
    );
    let events = product.events().await;
    assert!(!serde_json::to_string(&events).unwrap().contains("secret-name"));
    // Only admins read the audit log.
    let res = app.client.get(app.url("/api/v1/audit")).bearer_auth(&app.token).send().await.unwrap();
    assert_scim_error(res, 403).await;
}

async fn deactivation_racing_session_opening_never_leaves_an_open_session(app: TestApp) {
    let product = Product { token: product_token(&app), app: &app };
    for round in 0..8 {
        let id = person(&app, &format!("racer{round}")).await;
        let opens = (0..4).map(|_| product.open_session(&id));
        let deactivation = deactivate(&app, &id);
        let (opened, _) = tokio::join!(futures_util::future::join_all(opens), deactivation);
        let mut ids = Vec::new();
        for res in opened {
            if res.status() == 201 {
                let session = json(res).await;
                assert!(!product.active(session["token"].as_str().unwrap()).await, "round {round}: a session survived");
                ids.push(session["id"].clone());
            } else {
                assert_eq!(res.status(), 403);
            }
        }
        // The deactivation's event names exactly the sessions that opened before it, in order.
        ids.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
        let events = product.events().await;
        let deactivated = events.iter().find(|(t, d)| t == "user.deactivated" && d["id"] == id.as_str());
        let named = &deactivated.expect("a deactivation event").1["revokedSessions"];
        assert_eq!(named, &Value::from(ids), "round {round}");
    }
}

both_backends!(
    provisioning_sets_the_initial_state,
    deactivation_revokes_every_session_and_keeps_the_profile,
    a_profile_and_state_change_is_one_write,
    a_create_for_a_deleted_tenant_is_refused,
    every_deactivation_form_idps_send_works,
    memberships_go_after_the_grace_period_unless_reactivated,
    former_member_removes_the_profile_and_frees_the_user_name,
    a_former_member_cannot_come_back_or_change,
    deletion_removes_the_account_and_everything_it_wrote,
    deleting_an_active_account_follows_the_tenant_policy,
    archive_export_is_written_before_the_rows_go,
    retention_policy_runs_in_the_sweep,
    the_audit_log_names_actors_and_never_removed_data,
    deactivation_racing_session_opening_never_leaves_an_open_session,
);

/// Several nodes sweeping one database at once apply and report each effect once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sweeps_remove_each_membership_once() {
    for backend in [crate::helpers::Backend::Sqlite, crate::helpers::Backend::Postgres] {
        let Some(app) = TestApp::spawn(backend).await else { continue };
        let product = Product { token: product_token(&app), app: &app };
        let mut ids = Vec::new();
        for i in 0..20 {
            ids.push(person(&app, &format!("swept{i}")).await);
        }
        let members: Vec<Value> = ids.iter().map(|id| json!({"value": id})).collect();
        let res = app.post("/scim/v2/Groups", &json!({"displayName": "Swept", "members": members})).await;
        assert_eq!(res.status(), 201);
        for id in &ids {
            deactivate(&app, id).await;
        }
        let later = roster::db::now() + Duration::days(5);
        let url = app.settings.database_url.clone();
        let nodes: Vec<_> = (0..3)
            .map(|_| {
                let url = url.clone();
                std::thread::spawn(move || {
                    let (db, _) = roster::db::Database::open(&url, 2, std::time::Duration::from_secs(10)).unwrap();
                    roster::sweep::run(&mut db.conn().unwrap(), later, None).unwrap()
                })
            })
            .collect();
        let removed: usize = nodes.into_iter().map(|n| n.join().unwrap().memberships_removed).sum();
        assert_eq!(removed, 20, "{backend:?}: reported once each");
        let events = product.events().await;
        assert_eq!(events.iter().filter(|(t, _)| t == "membership.removed").count(), 20, "{backend:?}: one event each");
    }
}

#[tokio::test]
async fn administrators_change_states_and_read_the_audit_log_from_the_cli() {
    let app = TestApp::spawn(crate::helpers::Backend::Sqlite).await.unwrap();
    let id = person(&app, "cli-user").await;
    let roster = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_roster"))
            .args(args)
            .env("ROSTER_DATABASE_URL", &app.db.url)
            .env("ROSTER_TOKEN_SECRET", crate::helpers::SECRET)
            .output()
            .unwrap()
    };
    let out = roster(&["user", "deactivate", "--tenant", "default", &id]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(app.get_ok(&format!("/scim/v2/Users/{id}")).await["active"], false);
    let early = roster(&["user", "former-member", "--tenant", "default", &id]);
    assert!(!early.status.success());
    assert!(String::from_utf8_lossy(&early.stderr).contains("can become a Former Member from"));
    assert!(roster(&["user", "reactivate", "--tenant", "default", &id]).status.success());
    assert!(roster(&["user", "delete", "--tenant", "default", &id]).status.success());
    assert_scim_error(app.get(&format!("/scim/v2/Users/{id}")).await, 404).await;
    let audit = String::from_utf8(roster(&["audit", "--tenant", "default"]).stdout).unwrap();
    let actions: Vec<String> = audit
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["userId"] == id.as_str())
        .map(|e| format!("{}:{}", e["actor"].as_str().unwrap(), e["action"].as_str().unwrap()))
        .collect();
    assert_eq!(
        actions,
        ["test-idp:create", "admin:deactivate", "admin:reactivate", "admin:deactivate", "admin:delete"]
    );
    let sweep = roster(&["sweep"]);
    assert!(String::from_utf8_lossy(&sweep.stdout).contains("membershipsRemoved"));
}
