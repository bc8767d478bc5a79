//! Upgrades: a database written by an earlier release is migrated by this one when it starts, and
//! then serves everything it held as that release served it. The fixtures, the release that wrote
//! each and what they hold are described in tests/fixtures/README.md.

use std::path::{Path, PathBuf};

use chrono::Duration;
use diesel::{Connection, ExpressionMethods, PgConnection, QueryDsl, QueryableByName, RunQueryDsl, SqliteConnection};
use reqwest::Method;
use roster::delivery::webhooks;
use serde_json::{json, Value};

use crate::helpers::{json, Backend, TestApp, TestDatabase};
use crate::webhooks::{wait_for, Receiver};

const ROSTER: &str = "urn:ietf:params:scim:schemas:extension:roster:2.0:User";

/// The current server on a copy of the fixtures one release wrote, and what that release's
/// clients saw in them (its `manifest.json`, for this backend).
struct Upgraded {
    app: TestApp,
    seen: Value,
}

fn fixtures(release: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(release)
}

fn manifest(release: &str) -> Value {
    serde_json::from_slice(&std::fs::read(fixtures(release).join("manifest.json")).unwrap()).unwrap()
}

/// The releases whose fixtures hold `what` (`conversations`, `webhooks`, `oauth`, `admin`,
/// `tenants`: what the schema gained in 3cdfb82); at least one must.
fn releases_holding(what: &str) -> Vec<&'static str> {
    let holding: Vec<&str> = RELEASES.into_iter().filter(|r| manifest(r)["sqlite"].get(what).is_some()).collect();
    assert!(!holding.is_empty(), "no fixture holds {what}");
    holding
}

impl Upgraded {
    /// None when PostgreSQL tests are skipped on this machine.
    async fn from(release: &str, backend: Backend) -> Option<Upgraded> {
        let folder = fixtures(release);
        let manifest = manifest(release);
        let db = match backend {
            Backend::Sqlite => {
                let db = TestDatabase::create(backend)?;
                std::fs::copy(folder.join("roster.db"), &db.url).unwrap();
                db
            }
            Backend::Postgres => {
                // The dump names its objects in `public`: it needs a database of its own.
                let db = TestDatabase::create_isolated(backend)?;
                let out = std::process::Command::new("psql")
                    .args(["--quiet", "--no-psqlrc", "-v", "ON_ERROR_STOP=1", "--dbname", &db.url, "--file"])
                    .arg(folder.join("postgres.sql"))
                    .output()
                    .expect("psql runs");
                assert!(out.status.success(), "loading the dump: {}", String::from_utf8_lossy(&out.stderr));
                db
            }
        };
        let seen = manifest[match backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }]
        .clone();
        // The release generated its signing key and kept it in the database, as every deployment
        // without `token_secret` does: the tokens it issued must keep working.
        let app = TestApp::spawn_with(db, |settings| settings.token_secret = None).await;
        Some(Upgraded { app, seen })
    }

    fn token(&self, name: &str) -> &str {
        self.seen["tokens"][name].as_str().unwrap()
    }

    fn id(&self, user: &str) -> &str {
        self.seen["users"][user]["id"].as_str().unwrap()
    }

    fn content_id(&self, key: &str) -> &str {
        self.seen["content"][key]["id"].as_str().unwrap()
    }

    fn group_id(&self, group: &str) -> &str {
        self.seen["groups"][group]["id"].as_str().unwrap()
    }

    /// What the release answered, with its links pointing at this server instead.
    fn as_seen(&self, what: &Value) -> Value {
        let text = what.to_string().replace(self.seen["origin"].as_str().unwrap(), &self.app.address);
        serde_json::from_str(&text).unwrap()
    }

    async fn call(&self, method: Method, path: &str, token: &str, body: Option<Value>) -> reqwest::Response {
        let mut req = self.app.client.request(method, self.app.url(path)).bearer_auth(token);
        if let Some(body) = body {
            req = req.header("content-type", "application/scim+json").body(body.to_string());
        }
        req.send().await.unwrap()
    }

    /// GET with the tenant's SCIM token (or any token named in the manifest); returns status and body.
    async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        let res = self.call(Method::GET, path, self.token(token), None).await;
        (res.status().as_u16(), json(res).await)
    }

    async fn user(&self, name: &str) -> Value {
        let token = if self.seen["users"][name]["tenant"] == "acme" { "acme_scim" } else { "scim" };
        let (status, body) = self.get(&format!("/scim/v2/Users/{}", self.id(name)), token).await;
        assert_eq!(status, 200, "{name}: {body}");
        body
    }

    async fn members(&self, group: &str) -> Vec<String> {
        let token = if group == "Acme staff" { "acme_scim" } else { "scim" };
        let (status, body) = self.get(&format!("/scim/v2/Groups/{}", self.group_id(group)), token).await;
        assert_eq!(status, 200, "{group}: {body}");
        let mut ids: Vec<String> =
            body["members"].as_array().unwrap().iter().map(|m| m["value"].as_str().unwrap().to_owned()).collect();
        ids.sort();
        ids
    }

    fn ids(&self, users: &[&str]) -> Vec<String> {
        let mut ids: Vec<String> = users.iter().map(|u| self.id(u).to_owned()).collect();
        ids.sort();
        ids
    }

    async fn product(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let res = self.call(method, path, self.token("product"), body).await;
        (res.status().as_u16(), json(res).await)
    }

    /// Sets the clock back to just after the release wrote its last row, for what lasts a short
    /// time (an Admin Panel session, a sign-in link, an export's hold) and had not expired then.
    fn back_to_when_written(&self) {
        let written: chrono::DateTime<chrono::Utc> = self.seen["written_at"].as_str().unwrap().parse().unwrap();
        self.app.clock.advance(written.naive_utc() + Duration::minutes(1) - self.app.clock.now());
    }

    async fn feed(&self, path: &str, key: &str, token: &str) -> Vec<Value> {
        let (status, body) = self.get(path, token).await;
        assert_eq!(status, 200, "{body}");
        body[key].as_array().unwrap().clone()
    }
}

/// Ids of the sessions that were never revoked nor ended, read from the database itself: an
/// introspection would answer inactive for an expired session as well.
fn unrevoked_sessions(db: &TestDatabase) -> Vec<String> {
    #[derive(QueryableByName)]
    struct Session {
        #[diesel(sql_type = diesel::sql_types::Text)]
        id: String,
    }
    let sql = diesel::sql_query("SELECT id FROM sessions WHERE revoked_at IS NULL ORDER BY id");
    let rows = match db.backend {
        Backend::Sqlite => sql.load::<Session>(&mut SqliteConnection::establish(&db.url).unwrap()),
        Backend::Postgres => sql.load::<Session>(&mut PgConnection::establish(&db.url).unwrap()),
    };
    rows.unwrap().into_iter().map(|s| s.id).collect()
}

/// The releases whose fixtures are under tests/fixtures, oldest first; every test runs on each.
const RELEASES: [&str; 4] = ["c9fb648", "5a256fa", "3cdfb82", "94b5040"];

/// The migrations the newest of them lacks. A schema change adds its migration here only once the
/// fixtures of the release before it are written and added to `RELEASES` (tests/fixtures/README.md):
/// then this lists just the new migration. Empty while the newest fixture has every migration.
const SINCE_NEWEST: [&str; 1] = ["20261206000027"];

/// The versions of a backend's migration folders (`2026-12-05-000011_event_positions` is
/// `20261205000011`, as Diesel records it).
fn migrations(backend: &str) -> Vec<String> {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations").join(backend);
    let mut versions: Vec<String> = std::fs::read_dir(folder)
        .unwrap()
        .map(|entry| {
            let name = entry.unwrap().file_name().into_string().unwrap();
            name.split('_').next().unwrap().replace('-', "")
        })
        .collect();
    versions.sort();
    versions
}

#[test]
fn every_schema_change_since_the_newest_fixture_is_tested_from_the_release_before_it() {
    let newest = RELEASES[RELEASES.len() - 1];
    let folder = fixtures(newest);
    let copy = TestDatabase::create(Backend::Sqlite).unwrap();
    std::fs::copy(folder.join("roster.db"), &copy.url).unwrap();
    #[derive(QueryableByName)]
    struct Migration {
        #[diesel(sql_type = diesel::sql_types::Text)]
        version: String,
    }
    let sqlite: Vec<String> = diesel::sql_query("SELECT version FROM __diesel_schema_migrations")
        .load::<Migration>(&mut SqliteConnection::establish(&copy.url).unwrap())
        .unwrap()
        .into_iter()
        .map(|m| m.version)
        .collect();
    // The dump lists the applied versions in the data of `__diesel_schema_migrations`.
    let dump = std::fs::read_to_string(folder.join("postgres.sql")).unwrap();
    let (_, data) = dump.split_once("COPY public.__diesel_schema_migrations (version, run_on) FROM stdin;\n").unwrap();
    let postgres: Vec<String> = data
        .lines()
        .take_while(|line| *line != "\\.")
        .map(|line| line.split('\t').next().unwrap().to_owned())
        .collect();
    for (backend, applied) in [("sqlite", sqlite), ("postgres", postgres)] {
        let newer: Vec<String> = migrations(backend).into_iter().filter(|v| !applied.contains(v)).collect();
        let expected: Vec<String> =
            SINCE_NEWEST.iter().map(|v| v.to_string()).filter(|v| migrations(backend).contains(v)).collect();
        assert_eq!(
            newer, expected,
            "{backend}: a migration is newer than the fixtures of {newest}: write those of the release \
             before it (tests/fixtures/README.md)"
        );
    }
}

async fn every_account_reads_as_the_release_served_it(backend: Backend) {
    for release in RELEASES {
        let Some(old) = Upgraded::from(release, backend).await else { return };
        for (name, user) in old.seen["users"].as_object().unwrap() {
            let token = if user["tenant"] == "acme" { "acme_scim" } else { "scim" };
            let (status, body) = old.get(&format!("/scim/v2/Users/{}", user["id"].as_str().unwrap()), token).await;
            if name == "erin.deleted" || user["seen"]["status"] == "404" {
                // Erin was deleted; from 5a256fa on a deactivate-only DELETE hides the account too.
                assert_eq!(status, 404, "{name}: what the release no longer served stays gone: {body}");
            } else {
                assert_eq!(status, 200, "{name}: {body}");
                assert_eq!(body, old.as_seen(&user["seen"]), "{name} as {release} served it");
            }
        }

        let alice = old.user("alice.active").await;
        assert_eq!((alice["active"].clone(), alice[ROSTER]["lifecycleState"].clone()), (json!(true), json!("active")));
        assert_eq!(alice["emails"][0]["value"], "alice.active@example.com");
        assert_eq!(alice["addresses"][0]["locality"], "Springfield");
        let bob = old.user("bob.deactivated").await;
        assert_eq!(
            (bob["active"].clone(), bob[ROSTER]["lifecycleState"].clone()),
            (json!(false), json!("deactivated"))
        );
        assert_eq!(bob["groups"][0]["display"], "Engineering", "within the grace period memberships stay");
        let carol = old.user("carol.membershipsremoved").await;
        assert_eq!(carol[ROSTER]["lifecycleState"], "deactivated");
        assert_eq!(carol.get("groups").and_then(Value::as_array).map_or(0, Vec::len), 0, "the sweep removed them");
        assert_eq!(carol["emails"][0]["value"], "carol.membershipsremoved@example.com", "a deactivated profile stays");
        let dave = old.user("dave.formermember").await;
        assert_eq!((dave["active"].clone(), dave[ROSTER]["formerMember"].clone()), (json!(false), json!(true)));
        assert_eq!(dave["displayName"], "Former Member");
        assert_ne!(dave["userName"], "dave.formermember", "a Former Member's userName is opaque");
        for removed in [
            "emails",
            "phoneNumbers",
            "title",
            "externalId",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
        ] {
            assert!(dave.get(removed).is_none(), "a Former Member has no {removed}: {dave}");
        }
        let frank = old.user("frank.reactivated").await;
        assert_eq!((frank["active"].clone(), frank[ROSTER]["lifecycleState"].clone()), (json!(true), json!("active")));
        // c9fb648 only deactivated on a deactivate-only DELETE and recorded nothing else, so the account
        // is still shown, deactivated, as that release showed it.
        if release == "c9fb648" {
            let zed = old.user("zed.softdeleted").await;
            assert_eq!(zed[ROSTER]["lifecycleState"], "deactivated");
        }

        let (_, by_name) = old.get("/scim/v2/Users?filter=userName%20eq%20%22erin.deleted%22", "scim").await;
        assert_eq!(by_name["totalResults"], 0, "a deleted account is not found by filter");
        let (_, listed) = old.get("/scim/v2/Users?count=0", "scim").await;
        assert_eq!(listed["totalResults"], 5, "alice, bob, carol, dave and frank: the counts were carried over");
        let (_, other_tenant) = old.get(&format!("/scim/v2/Users/{}", old.id("alice.active")), "acme_scim").await;
        assert_eq!(other_tenant["status"], "404", "tenants stay apart");
    }
}

async fn groups_keep_their_members(backend: Backend) {
    for release in RELEASES {
        let Some(old) = Upgraded::from(release, backend).await else { return };
        assert_eq!(old.members("Engineering").await, old.ids(&["alice.active", "bob.deactivated"]));
        assert_eq!(old.members("Everyone").await, old.ids(&["alice.active", "frank.reactivated"]));
        // c9fb648 kept a soft-deleted account in its groups; later releases hide it there too.
        let acme_staff: &[&str] = if release == "c9fb648" { &["ann.acme", "zed.softdeleted"] } else { &["ann.acme"] };
        assert_eq!(old.members("Acme staff").await, old.ids(acme_staff));
        for (name, group) in old.seen["groups"].as_object().unwrap() {
            let token = if name == "Acme staff" { "acme_scim" } else { "scim" };
            let (_, body) = old.get(&format!("/scim/v2/Groups/{}", group["id"].as_str().unwrap()), token).await;
            assert_eq!(body, old.as_seen(&group["seen"]), "{name} as {release} served it");
        }
    }
}

async fn sessions_of_deactivated_accounts_stay_revoked(backend: Backend) {
    for release in RELEASES {
        let Some(old) = Upgraded::from(release, backend).await else { return };
        let session = |name: &str| old.seen["sessions"][name]["id"].as_str().unwrap().to_owned();
        assert_eq!(
            unrevoked_sessions(&old.app.db),
            vec![session("alice.active")],
            "every deactivation revoked its sessions"
        );
        for name in ["bob.deactivated", "carol.membershipsremoved", "dave.formermember"] {
            let token = old.seen["sessions"][name]["token"].clone();
            let (_, answer) =
                old.product(Method::POST, "/api/v1/sessions/introspect", Some(json!({"token": token}))).await;
            assert_eq!(answer, json!({"active": false}), "{name}");
        }
        let (status, opened) =
            old.product(Method::POST, "/api/v1/sessions", Some(json!({"userId": old.id("alice.active")}))).await;
        assert_eq!(status, 201, "{opened}");
        let (_, answer) =
            old.product(Method::POST, "/api/v1/sessions/introspect", Some(json!({"token": opened["token"]}))).await;
        assert_eq!(answer["sub"], old.id("alice.active"));
        let (status, _) =
            old.product(Method::POST, "/api/v1/sessions", Some(json!({"userId": old.id("bob.deactivated")}))).await;
        assert_eq!(status, 403, "a deactivated account still cannot sign in");

        // A deactivation on the upgraded schema revokes the release's session and the new one,
        // and its event names both, sorted.
        let mut open = vec![session("alice.active"), opened["id"].as_str().unwrap().to_owned()];
        open.sort();
        let off = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "active", "value": false}]});
        let alice = format!("/scim/v2/Users/{}", old.id("alice.active"));
        let res = old.call(Method::PATCH, &alice, old.token("scim"), Some(off)).await;
        assert_eq!(res.status(), 200, "{release}");
        assert!(unrevoked_sessions(&old.app.db).is_empty(), "{release}");
        let (_, feed) = old.product(Method::GET, "/api/v1/events?after=0&limit=1000", None).await;
        let deactivated = feed["events"].as_array().unwrap().iter().rfind(|e| e["type"] == "user.deactivated").unwrap();
        assert_eq!(deactivated["data"]["id"], old.id("alice.active"), "{release}");
        assert_eq!(deactivated["data"]["revokedSessions"], json!(open), "{release}");
    }
}

/// Whether `now` serves every member `before` had, with the same value.
fn served_as_before(now: &Value, before: &Value) -> bool {
    match (now, before) {
        (Value::Object(now), Value::Object(before)) => {
            before.iter().all(|(k, v)| now.get(k).is_some_and(|n| served_as_before(n, v)))
        }
        _ => now == before,
    }
}

async fn content_keeps_its_authors(backend: Backend) {
    for release in RELEASES {
        let Some(old) = Upgraded::from(release, backend).await else { return };
        for (key, item) in old.seen["content"].as_object().unwrap() {
            let token = if ["ann-post", "yan-post"].contains(&key.as_str()) { "acme_product" } else { "product" };
            let (status, body) = old.get(&format!("/api/v1/content/{}", item["id"].as_str().unwrap()), token).await;
            if key == "erin-post" || item["seen"]["status"] == "404" {
                assert_eq!(status, 404, "what a deleted account wrote stays deleted: {body}");
            } else {
                // Members added since (a person's `state`, a message's `recipient`) are allowed.
                let seen = old.as_seen(&item["seen"]);
                assert!(served_as_before(&body, &seen), "{key} as {release} served it: {seen}, now {body}");
            }
        }
        let (_, post) = old.get(&format!("/api/v1/content/{}", old.content_id("alice-post")), "product").await;
        assert_eq!(post["author"]["id"], old.id("alice.active"));
        assert!(post["author"]["profile"].as_str().unwrap().ends_with(&format!("/Users/{}", old.id("alice.active"))));
        let (_, post) = old.get(&format!("/api/v1/content/{}", old.content_id("dave-post")), "product").await;
        assert_eq!(
            post["author"],
            json!({"name": "Dave Example", "state": "formerMember"}),
            "a Former Member's content keeps the name, not the link"
        );
    }
}

async fn the_event_feed_and_audit_log_are_renumbered_per_tenant(backend: Backend) {
    for release in RELEASES {
        let Some(old) = Upgraded::from(release, backend).await else { return };
        for (tenant, events, audit) in [("default", "product", "product"), ("acme", "acme_product", "acme_product")] {
            // The release numbered both tenants' entries in one sequence; the upgrade numbers each
            // tenant's own 1, 2, 3, … in the same order, and keeps everything else.
            for (path, key, expected) in [
                ("/api/v1/events?after=0&limit=1000", "events", &old.seen["events"][tenant]),
                ("/api/v1/audit?after=0&limit=1000", "entries", &old.seen["audit"][tenant]),
            ] {
                let token = if key == "events" { events } else { audit };
                let now = old.feed(path, key, token).await;
                let renumbered: Vec<Value> = expected
                    .as_array()
                    .unwrap()
                    .iter()
                    .zip(1..)
                    .map(|(entry, n)| {
                        let mut entry = entry.clone();
                        entry["id"] = json!(n);
                        entry
                    })
                    .collect();
                assert!(!renumbered.is_empty(), "the fixture holds {tenant}'s {key}");
                assert_eq!(now, renumbered, "{tenant}'s {key}");
            }
        }
        let types: Vec<Value> =
            old.seen["events"]["default"].as_array().unwrap().iter().map(|e| e["type"].clone()).collect();
        for kind in [
            "user.created",
            "user.deactivated",
            "membership.removed",
            "user.former_member",
            "user.deleted",
            "user.reactivated",
        ] {
            assert!(types.contains(&json!(kind)), "the fixture holds a {kind} event: {types:?}");
        }
    }
}

async fn tokens_keep_their_powers_and_revocations(backend: Backend) {
    for release in RELEASES {
        let Some(old) = Upgraded::from(release, backend).await else { return };
        let (status, _) = old.get("/scim/v2/Users?count=1", "scim").await;
        assert_eq!(status, 200, "a token the release issued still works: its key is the stored one");
        let (status, body) = old.get("/scim/v2/Users?count=1", "revoked").await;
        assert_eq!(status, 401, "a token revoked before the upgrade stays revoked: {body}");
        let (status, _) = old.get("/api/v1/events?after=0", "scim").await;
        assert_eq!(status, 403, "scopes are kept");
    }
}

async fn new_writes_and_sweeps_work_on_the_upgraded_data(backend: Backend) {
    for release in RELEASES {
        let Some(old) = Upgraded::from(release, backend).await else { return };
        let scim = old.token("scim").to_owned();
        let events_before = old.seen["events"]["default"].as_array().unwrap().len();

        // The Former Member's old userName and externalId are free for a new account.
        let res = old
            .call(
                Method::POST,
                "/scim/v2/Users",
                &scim,
                Some(
                    json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "dave.formermember",
                    "externalId": "ext-dave.formermember"}),
                ),
            )
            .await;
        assert_eq!(res.status(), 201);
        let new_dave = json(res).await["id"].as_str().unwrap().to_owned();
        let res = old.call(Method::POST, "/scim/v2/Users", &scim, Some(json!({"userName": "Alice.Active"}))).await;
        assert_eq!(json(res).await["scimType"], "uniqueness", "userNames the release stored still collide");

        let alice = format!("/scim/v2/Users/{}", old.id("alice.active"));
        let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "title", "value": "Staff Engineer"}]});
        let res = old.call(Method::PATCH, &alice, &scim, Some(patch)).await;
        assert_eq!(res.status(), 200);
        let patched = json(res).await;
        assert_eq!(patched["title"], "Staff Engineer");
        assert_eq!(patched["emails"][0]["value"], "alice.active@example.com", "the rest of the profile is kept");
        let group = format!("/scim/v2/Groups/{}", old.group_id("Everyone"));
        let add = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "add", "path": "members", "value": [{"value": new_dave}]}]});
        assert_eq!(old.call(Method::PATCH, &group, &scim, Some(add)).await.status(), 204);
        let mut everyone = old.ids(&["alice.active", "frank.reactivated"]);
        everyone.push(new_dave.clone());
        everyone.sort();
        assert_eq!(old.members("Everyone").await, everyone);

        // Bob was deactivated just before the fixture was written: once his grace period has
        // passed, the sweep removes his membership as it would have before the upgrade.
        old.app.clock.advance(Duration::days(5));
        let (status, _) = old.product(Method::POST, "/api/v1/admin/sweep", None).await;
        assert_eq!(status, 200);
        assert_eq!(old.members("Engineering").await, old.ids(&["alice.active"]));

        let events = old.feed(&format!("/api/v1/events?after={events_before}"), "events", "product").await;
        let after: Vec<(Value, Value)> = events.iter().map(|e| (e["id"].clone(), e["type"].clone())).collect();
        let n = events_before as i64;
        assert_eq!(
            after,
            vec![
                (json!(n + 1), json!("user.created")),
                (json!(n + 2), json!("user.updated")),
                (json!(n + 3), json!("membership.removed")),
            ],
            "new events continue the tenant's numbering without a gap"
        );
    }
}

async fn conversations_and_their_messages_are_still_served(backend: Backend) {
    for release in releases_holding("conversations") {
        let Some(old) = Upgraded::from(release, backend).await else { return };
        for (title, conversation) in old.seen["conversations"].as_object().unwrap() {
            let token = if conversation["tenant"] == "acme" { "acme_product" } else { "product" };
            let path = format!("/api/v1/conversations/{}", conversation["id"].as_str().unwrap());
            let (status, body) = old.get(&path, token).await;
            assert_eq!(status, 200, "{title}: {body}");
            let seen = old.as_seen(&conversation["seen"]);
            assert!(served_as_before(&body, &seen), "{title} as {release} served it: {seen}, now {body}");
            let (status, messages) = old.get(&format!("{path}/messages"), token).await;
            assert_eq!(status, 200, "{title}: {messages}");
            let seen = old.as_seen(&conversation["messages"]);
            assert!(
                served_as_before(&messages, &seen),
                "{title}'s messages as {release} served them: {seen}, now {messages}"
            );
        }

        // Dave left as a Former Member (his message keeps his name, not his account), Erin's
        // message went with her; Bob, deactivated within his grace period, is still a member.
        let launch = format!("/api/v1/conversations/{}", old.seen["conversations"]["Launch"]["id"].as_str().unwrap());
        let (_, conversation) = old.get(&launch, "product").await;
        let mut members: Vec<String> =
            conversation["members"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap().to_owned()).collect();
        members.sort();
        assert_eq!(members, old.ids(&["alice.active", "bob.deactivated", "frank.reactivated"]));
        let (_, messages) = old.get(&format!("{launch}/messages"), "product").await;
        let said: Vec<(Value, Value)> = messages["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["sender"].get("id").cloned().unwrap_or_else(|| m["sender"]["name"].clone()), m["body"].clone()))
            .collect();
        assert_eq!(
            said,
            vec![
                (json!(old.id("alice.active")), json!("Kick-off at ten")),
                (json!(old.id("bob.deactivated")), json!("On my way")),
                (json!("Dave Example"), json!("Slides are in the handover notes")),
                (json!(old.id("frank.reactivated")), json!("Saved you a seat")),
            ]
        );

        // The conversation goes on after the upgrade, under the same rules.
        let messages_path = format!("{launch}/messages");
        let post = |sender: &str, body: &str| {
            old.product(Method::POST, &messages_path, Some(json!({"senderId": old.id(sender), "body": body})))
        };
        let (status, sent) = post("alice.active", "Welcome to the new release").await;
        assert_eq!(status, 201, "{sent}");
        let (status, refused) = post("bob.deactivated", "Still here").await;
        assert_eq!(status, 403, "a deactivated member cannot post: {refused}");
        let (_, newer) = old.get(&format!("{launch}/messages?after={}", messages["next"]), "product").await;
        assert_eq!(newer["messages"].as_array().unwrap().len(), 1, "{newer}");
        assert_eq!(newer["messages"][0]["id"], sent["id"], "the cursor the release gave out still continues the list");
    }
}

async fn an_oauth_client_still_gets_tokens_with_its_secret(backend: Backend) {
    for release in releases_holding("oauth") {
        let Some(old) = Upgraded::from(release, backend).await else { return };
        let client = &old.seen["oauth"];
        let (id, secret) = (client["client_id"].as_str().unwrap(), client["client_secret"].as_str().unwrap());
        let token = |secret: &str| {
            old.app
                .client
                .post(old.app.url("/oauth/token"))
                .basic_auth(id, Some(secret))
                .form(&[("grant_type", "client_credentials"), ("scope", "scim")])
                .send()
        };
        let res = token(secret).await.unwrap();
        assert_eq!(res.status(), 200);
        let answer = json(res).await;
        for (key, value) in client["token"].as_object().unwrap() {
            assert_eq!(&answer[key], value, "{key} as {release} answered it");
        }
        let access = answer["access_token"].as_str().unwrap();
        let res = old.call(Method::GET, "/scim/v2/Users?count=0", access, None).await;
        assert_eq!(res.status(), 200);
        assert_eq!(json(res).await["totalResults"], 5, "the client's token reads its tenant");
        let res = token("not-the-secret").await.unwrap();
        assert_eq!(res.status(), 401, "the stored secret is still the only one");
    }
}

async fn webhooks_keep_their_deliveries_and_keep_delivering(backend: Backend) {
    for release in releases_holding("webhooks") {
        let Some(old) = Upgraded::from(release, backend).await else { return };
        for (tenant, hook) in old.seen["webhooks"].as_object().unwrap() {
            let id = hook["id"].as_str().unwrap();
            let listed = webhooks::list(&mut old.app.connection(), tenant).unwrap();
            assert_eq!(listed.iter().map(|w| w.id.as_str()).collect::<Vec<_>>(), [id], "{tenant}'s webhooks");
            let events = if tenant == "acme" { "user.deactivated" } else { "" };
            assert_eq!(listed[0].event_types, events, "{tenant}'s webhook keeps the types it asked for");
            let log = webhooks::delivery_log(&mut old.app.connection(), tenant, Some(id), None, 10_000).unwrap();
            let mut now: Vec<Value> = log.iter().map(|d| json!({"event": d.event_seq, "status": d.status})).collect();
            now.sort_by_key(|d| d["event"].as_i64());
            assert!(!now.is_empty(), "the fixture holds {tenant}'s deliveries");
            assert_eq!(Value::from(now), hook["deliveries"], "{tenant}'s delivery log as {release} listed it");
        }

        // The receiver the release delivered to is gone: this one takes its place, with the
        // secret the release gave out, which must still sign.
        let hook = &old.seen["webhooks"]["default"];
        let mut receiver = Receiver::start();
        receiver.configure(json!({"secrets": [hook["secret"]]})).await;
        let id = hook["id"].as_str().unwrap();
        diesel::update(roster::db::schema::webhooks::table.find(id))
            .set(roster::db::schema::webhooks::url.eq(receiver.url()))
            .execute(&mut old.app.connection())
            .unwrap();
        let res = old
            .call(Method::POST, "/scim/v2/Users", old.token("scim"), Some(json!({"userName": "hook.after.upgrade"})))
            .await;
        assert_eq!(res.status(), 201);
        let user = json(res).await["id"].clone();
        wait_for("the new account's event at the release's webhook", 20, || {
            receiver.delivered().iter().any(|r| r["body"]["userId"] == user && r["body"]["type"] == "user.created")
        })
        .await;
        for record in receiver.delivered() {
            assert_eq!(record["valid"], true, "signed with the release's secret: {record}");
        }
    }
}

async fn tenant_settings_are_kept_and_a_waiting_export_still_reaches_the_archive(backend: Backend) {
    for release in releases_holding("tenants") {
        let Some(old) = Upgraded::from(release, backend).await else { return };
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_roster"))
            .args(["tenant", "list"])
            .env("ROSTER_DATABASE_URL", &old.app.db.url)
            .env_remove("ROSTER_CONFIG")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8(out.stdout).unwrap();
        let mut lines = text.lines().map(|l| l.split('\t').collect::<Vec<_>>());
        let header = lines.next().unwrap();
        let listed: Vec<Vec<&str>> = lines.collect();
        for (name, seen) in old.seen["tenants"].as_object().unwrap() {
            let row = listed.iter().find(|row| row[0] == name).unwrap_or_else(|| panic!("{name} in {text}"));
            for (column, value) in seen.as_object().unwrap() {
                let at = header.iter().position(|h| h == column).unwrap_or_else(|| panic!("{column} in {text}"));
                assert_eq!(json!(row[at]), *value, "{name}'s {column} as {release} listed it");
            }
        }
        let acme = roster::db::tenants::by_name(&mut old.app.connection(), "acme").unwrap().unwrap();
        assert_eq!(
            (acme.event_retention_days, acme.archive_export, acme.archive_hold_hours, acme.delete_policy.as_str()),
            (Some(30), true, 48, "deactivate-only")
        );

        // Yan's export waited for the sweep when the release wrote the fixture, within its hold;
        // pointed at a directory that exists here, the sweep writes it, with what Yan wrote.
        old.back_to_when_written();
        let dir = std::env::temp_dir().join(format!("roster_upgrade_{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let change = roster::db::tenants::PolicyChange {
            archive_dir: Some(Some(dir.to_string_lossy().into_owned())),
            ..Default::default()
        };
        roster::db::tenants::set_policy(&mut old.app.connection(), "acme", &change).unwrap();
        let res = old.call(Method::POST, "/api/v1/admin/sweep", old.token("acme_product"), None).await;
        assert_eq!(res.status(), 200);
        let file = dir.join(roster::archive::file_name(old.id("yan.archived")));
        let export = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(export.contains("yan.archived") && export.contains("Archive me"), "{export}");
    }
}

async fn admin_panel_sessions_and_links_of_the_release_still_work(backend: Backend) {
    for release in releases_holding("admin") {
        let Some(old) = Upgraded::from(release, backend).await else { return };
        let admin = &old.seen["admin"];
        old.back_to_when_written();
        let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let res = browser
            .get(old.app.url("/admin/people"))
            .header(reqwest::header::COOKIE, admin["cookie"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "the session the release opened still signs in");
        let page = res.text().await.unwrap();
        assert_eq!(json!(page.matches("href=\"/admin/people/").count()), admin["people"], "{page}");
        assert!(page.contains("alice.active"), "{page}");

        let link = admin["unspent_link"].as_str().unwrap();
        let redeem = || browser.post(old.app.url("/admin/signin")).form(&[("token", link)]).send();
        let res = redeem().await.unwrap();
        assert_eq!(res.status(), 303, "the link the release made signs in once");
        assert!(res.headers().contains_key(reqwest::header::SET_COOKIE));
        let res = redeem().await.unwrap();
        assert_ne!(res.status(), 303, "and only once");
    }
}

crate::both_backends!(by_backend:
    conversations_and_their_messages_are_still_served,
    an_oauth_client_still_gets_tokens_with_its_secret,
    webhooks_keep_their_deliveries_and_keep_delivering,
    tenant_settings_are_kept_and_a_waiting_export_still_reaches_the_archive,
    admin_panel_sessions_and_links_of_the_release_still_work,
    every_account_reads_as_the_release_served_it,
    groups_keep_their_members,
    sessions_of_deactivated_accounts_stay_revoked,
    content_keeps_its_authors,
    the_event_feed_and_audit_log_are_renumbered_per_tenant,
    tokens_keep_their_powers_and_revocations,
    new_writes_and_sweeps_work_on_the_upgraded_data,
);
