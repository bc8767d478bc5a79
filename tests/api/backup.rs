//! `roster backup` and `roster restore`: an SQLite copy taken while the server takes writes
//! holds every write acknowledged before it began, and restores into a database a server starts on.

use std::sync::{Arc, Mutex};

use diesel::{Connection, RunQueryDsl};
use serde_json::{json, Value};

use crate::helpers::{json, Backend, TestApp, TestDatabase};
use crate::operations::roster;

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

const ROSTER: &str = "urn:ietf:params:scim:schemas:extension:roster:2.0:User";

/// How far an account had gone when its last write was acknowledged. A restored copy may hold an
/// account further along (a write in flight when the backup began may be in it), never less far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Acknowledged {
    Active,
    Deactivated,
    FormerMember,
}

impl Acknowledged {
    fn of(user: &Value) -> Acknowledged {
        match (user["active"].as_bool(), user[ROSTER]["formerMember"].as_bool()) {
            (_, Some(true)) => Acknowledged::FormerMember,
            (Some(false), _) => Acknowledged::Deactivated,
            _ => Acknowledged::Active,
        }
    }
}

type Acknowledgements = Arc<Mutex<Vec<(String, Acknowledged)>>>;

/// An Entra-style provisioning run until told to stop: each account is created with a profile
/// and signs in; every second one is then deactivated with Entra's PATCH (which revokes its
/// session), and every fourth also made a Former Member (the tenant's grace period is 0).
/// Returns each account with the last state a response acknowledged.
fn provision_until_stopped(app: &TestApp, stop: Arc<tokio::sync::Notify>) -> Acknowledgements {
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let (client, base, done) = (app.client.clone(), app.address.clone(), acknowledged.clone());
    let (scim, sessions) = (app.token.clone(), app.issue_token("default", "product", "sessions"));
    tokio::spawn(async move {
        let send = |method: reqwest::Method, path: String, token: &str, body: Value| {
            client
                .request(method, format!("{base}{path}"))
                .bearer_auth(token)
                .header("content-type", "application/scim+json")
                .body(body.to_string())
                .send()
        };
        for n in 0.. {
            let name = format!("load-{n}@example.com");
            let user = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name,
                "externalId": format!("ext-{n}"), "active": true, "displayName": format!("Load {n}"),
                "name": {"givenName": "Load", "familyName": format!("Number {n}")},
                "emails": [{"value": name, "type": "work", "primary": true}]});
            let create = send(reqwest::Method::POST, "/scim/v2/Users".into(), &scim, user);
            let res = tokio::select! {
                res = create => res.unwrap(),
                () = stop.notified() => break,
            };
            assert_eq!(res.status(), 201);
            let id = res.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
            done.lock().unwrap().push((id.clone(), Acknowledged::Active));
            let res = send(reqwest::Method::POST, "/api/v1/sessions".into(), &sessions, json!({"userId": id})).await;
            assert_eq!(res.unwrap().status(), 201);
            let mut steps = Vec::new();
            if n % 2 == 1 {
                // Entra: "Replace", and the boolean as a string.
                let off = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "Replace", "path": "active", "value": "False"}]});
                steps.push((off, Acknowledged::Deactivated));
            }
            if n % 4 == 3 {
                let former = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "replace", "path": format!("{ROSTER}:formerMember"), "value": true}]});
                steps.push((former, Acknowledged::FormerMember));
            }
            for (patch, state) in steps {
                let res = send(reqwest::Method::PATCH, format!("/scim/v2/Users/{id}"), &scim, patch).await.unwrap();
                assert_eq!(res.status(), 200);
                done.lock().unwrap().last_mut().unwrap().1 = state;
            }
        }
    });
    acknowledged
}

/// Counts rows of the restored file directly: what the API shows could hide what it keeps.
fn count(database: &str, sql: &str) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = diesel::SqliteConnection::establish(database).unwrap();
    diesel::sql_query(sql).get_result::<Count>(&mut conn).unwrap().n
}

/// Sessions neither revoked nor ended although their account is not active.
const OPEN_SESSIONS_OF_INACTIVE_ACCOUNTS: &str = "SELECT count(*) AS n FROM sessions \
    JOIN users ON users.pk = sessions.user_pk \
    WHERE sessions.revoked_at IS NULL AND (NOT users.active OR users.lifecycle_state <> 'active')";

/// Former Members that still hold a profile value or their externalId.
const FORMER_MEMBERS_WITH_PERSONAL_DATA: &str = "SELECT count(*) AS n FROM users \
    WHERE lifecycle_state = 'formerMember' \
    AND (external_id IS NOT NULL OR EXISTS (SELECT 1 FROM user_values WHERE user_values.user_pk = users.pk))";

/// What a Former Member's representation may still show (docs/lifecycle.md: every profile field removed).
const FORMER_MEMBER_KEEPS: [&str; 7] = ["schemas", "id", "userName", "name", "displayName", "active", "meta"];

#[tokio::test]
async fn a_backup_taken_under_writes_restores_every_write_acknowledged_before_it_began() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let grace = roster(&app.db.url, &["tenant", "set", "default", "--grace-days", "0"]);
    assert!(grace.status.success(), "{}", stderr(&grace));
    let stop = Arc::new(tokio::sync::Notify::new());
    let acknowledged = provision_until_stopped(&app, stop.clone());
    while acknowledged.lock().unwrap().len() < 50 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let before_backup = acknowledged.lock().unwrap().clone();
    let folder = tempfile_folder();
    let copy = folder.join("roster-backup.db");
    let (url, path) = (app.db.url.clone(), copy.to_str().unwrap().to_owned());
    let out = tokio::task::spawn_blocking(move || roster(&url, &["backup", &path])).await.unwrap();
    stop.notify_one();
    assert!(out.status.success(), "{}", stderr(&out));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&copy).unwrap().permissions().mode() & 0o777, 0o600, "a backup holds personal data");
    let again = roster(&app.db.url, &["backup", copy.to_str().unwrap()]);
    assert!(!again.status.success() && stderr(&again).contains("exists already"), "{}", stderr(&again));

    // A server uses the database: restoring over it is refused unless forced.
    let live = roster(&app.db.url, &["restore", copy.to_str().unwrap()]);
    assert!(!live.status.success() && stderr(&live).contains("--force"), "{}", stderr(&live));

    let restored = TestDatabase::create(Backend::Sqlite).unwrap();
    let out = roster(&restored.url, &["restore", copy.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        count(&restored.url, OPEN_SESSIONS_OF_INACTIVE_ACCOUNTS),
        0,
        "no deactivated account has an open session"
    );
    assert_eq!(count(&restored.url, FORMER_MEMBERS_WITH_PERSONAL_DATA), 0, "no Former Member keeps personal data");
    let app = TestApp::spawn_with(restored, |_| {}).await;
    assert_eq!(app.client.get(app.url("/readyz")).send().await.unwrap().status(), 200, "a server starts on it");
    for (id, acknowledged) in &before_backup {
        let res = app.get(&format!("/scim/v2/Users/{id}")).await;
        assert_eq!(res.status(), 200, "user {id} was acknowledged");
        let user = json(res).await;
        assert!(Acknowledged::of(&user) >= *acknowledged, "{acknowledged:?} was acknowledged: {user}");
    }
    assert!(
        before_backup.iter().any(|(_, state)| *state == Acknowledged::FormerMember),
        "the load made Former Members"
    );

    let listed = json(app.get("/scim/v2/Users?count=1000").await).await;
    let users = listed["Resources"].as_array().unwrap();
    assert!(users.len() >= before_backup.len());
    for user in users.iter().filter(|u| Acknowledged::of(u) == Acknowledged::FormerMember) {
        let kept: Vec<&String> = user.as_object().unwrap().keys().filter(|k| !k.starts_with("urn:")).collect();
        assert!(
            kept.iter().all(|k| FORMER_MEMBER_KEEPS.contains(&k.as_str())),
            "a Former Member holds no personal data: {user}"
        );
        assert_eq!(
            (user["displayName"].as_str(), user["name"]["formatted"].as_str()),
            (Some("Former Member"), Some("Former Member"))
        );
        assert!(!user.to_string().contains("example.com") && !user.to_string().contains("Number"), "{user}");
    }
    let _ = std::fs::remove_dir_all(folder);
}

#[tokio::test]
async fn restore_refuses_a_file_that_fails_the_integrity_check() {
    let folder = tempfile_folder();
    let damaged = folder.join("damaged.db");
    std::fs::write(&damaged, vec![0x5a; 8192]).unwrap();
    let target = TestDatabase::create(Backend::Sqlite).unwrap();
    let out = roster(&target.url, &["restore", damaged.to_str().unwrap()]);
    assert!(!out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("not a readable SQLite database"), "{}", stderr(&out));
    assert!(!std::path::Path::new(&target.url).exists(), "nothing was put in place");
    let _ = std::fs::remove_dir_all(folder);
}

#[tokio::test]
async fn backup_and_restore_point_postgresql_at_its_own_tools() {
    let Some(db) = TestDatabase::create(Backend::Postgres) else { return };
    for command in ["backup", "restore"] {
        let out = roster(&db.url, &[command, "/nonexistent/roster-backup.db"]);
        assert!(!out.status.success());
        assert!(stderr(&out).contains("pg_dump") && stderr(&out).contains("pg_basebackup"), "{}", stderr(&out));
    }
}

fn tempfile_folder() -> std::path::PathBuf {
    let folder = std::env::temp_dir().join(format!("roster_backup_{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&folder).unwrap();
    folder
}
