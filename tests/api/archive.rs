//! The archive sink (docs/operations.md, "Archive directory"): the export of a deleted account
//! waits sealed in Roster until it is written to the tenant's archive directory, then leaves
//! Roster; a crash between the two writes it again rather than losing it; an export that waits
//! past its hold is destroyed with an alert.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection, SqliteConnection};
use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{json, Backend, TestApp, TestDatabase, SECRET};
use roster::db::tenants::{self, PolicyChange, TenantError};
use roster::delivery::archive::url_destination;

use crate::webhooks::{fast, wait_for, Receiver};

struct Tenant<'a> {
    app: &'a TestApp,
    token: String,
}

impl<'a> Tenant<'a> {
    fn default_of(app: &'a TestApp) -> Tenant<'a> {
        Tenant { app, token: app.issue_token("default", "product", "content,events,admin") }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.app.client.request(method, self.app.url(path)).bearer_auth(&self.token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.unwrap();
        assert!(res.status().is_success(), "{path}: {}", res.status());
        json(res).await
    }

    async fn write(&self, kind: &str, author: &str, body: &str, parent: Option<&str>) -> String {
        let item = json!({"kind": kind, "authorId": author, "body": body, "parentId": parent});
        self.call(reqwest::Method::POST, "/api/v1/content", Some(item)).await["id"].as_str().unwrap().to_owned()
    }

    async fn sweep(&self) -> Value {
        self.call(reqwest::Method::POST, "/api/v1/admin/sweep", None).await
    }

    /// The feed's (type, data) pairs.
    async fn events(&self) -> Vec<(String, Value)> {
        let feed = self.call(reqwest::Method::GET, "/api/v1/events?after=0&limit=1000", None).await;
        feed["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["type"].as_str().unwrap().to_owned(), e["data"].clone()))
            .collect()
    }

    fn pending(&self) -> i64 {
        let mut conn = self.app.connection();
        let tenant = tenants::by_name(&mut conn, "default").unwrap().unwrap();
        roster::db::archive::pending_count(&mut conn, &tenant.id).unwrap()
    }
}

fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("roster_t_{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn archive_into(app: &TestApp, dir: &Path) {
    let change = PolicyChange {
        archive_export: Some(true),
        archive_dir: Some(Some(dir.to_string_lossy().into_owned())),
        ..Default::default()
    };
    tenants::set_policy(&mut app.connection(), "default", &change).unwrap();
}

async fn person(app: &TestApp, name: &str) -> String {
    app.create_user(
        json!({"userName": name, "externalId": format!("ext-{name}"), "displayName": format!("{name} Archived"),
        "emails": [{"value": format!("{name}@example.com")}]}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The export file's lines, parsed.
fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

async fn a_deleted_accounts_export_is_written_to_the_archive_directory_then_leaves_roster(app: TestApp) {
    let dir = tempdir();
    archive_into(&app, &dir);
    let tenant = Tenant::default_of(&app);
    let ann = person(&app, "ann").await;
    let post = tenant.write("post", &ann, "ann's post for the archive", None).await;
    tenant.write("comment", &ann, "ann's comment", Some(&post)).await;

    assert_eq!(app.delete(&format!("/scim/v2/Users/{ann}")).await.status(), 204);
    // Deleted for everyone at once; the export waits in Roster, not yet in the directory.
    assert_eq!(app.get(&format!("/scim/v2/Users/{ann}")).await.status(), 404);
    let search = tenant.call(reqwest::Method::GET, "/api/v1/search?q=ann", None).await.to_string();
    assert!(!search.contains("ann's post") && !search.contains(&ann), "{search}");
    let file = dir.join(format!("{ann}.jsonl"));
    assert!(!file.exists());
    assert_eq!(tenant.pending(), 1);

    assert_eq!(tenant.sweep().await["exportsWritten"], 1);
    let exported = lines(&file);
    assert_eq!(exported.len(), 3, "{exported:?}");
    assert_eq!((exported[0]["type"].as_str(), exported[0]["id"].as_str()), (Some("user"), Some(ann.as_str())));
    assert_eq!(exported[0]["state"], "deactivated");
    assert_eq!(exported[0]["profile"]["userName"], "ann");
    assert_eq!(exported[0]["profile"]["emails"][0]["value"], "ann@example.com");
    assert_eq!(exported[1]["type"], "content");
    assert_eq!((exported[1]["id"].as_str(), exported[1]["kind"].as_str()), (Some(post.as_str()), Some("post")));
    assert_eq!(exported[1]["body"], "ann's post for the archive");
    assert_eq!(
        (exported[2]["body"].as_str(), exported[2]["parentId"].as_str()),
        (Some("ann's comment"), Some(post.as_str()))
    );
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    let names: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names.len(), 1, "no temporary file left: {names:?}");

    // Roster holds nothing of it now: no pending export, and no event with its data.
    assert_eq!(tenant.pending(), 0);
    let events = tenant.events().await;
    let kinds: Vec<&str> = events.iter().map(|(k, _)| k.as_str()).collect();
    let pos = |k: &str| kinds.iter().position(|t| *t == k).unwrap_or_else(|| panic!("{k} in {kinds:?}"));
    assert!(pos("user.exported") < pos("user.deleted") && pos("user.deleted") < pos("archive.written"));
    assert_eq!(events[pos("user.exported")].1, json!({"id": ann, "destination": "directory"}));
    assert_eq!(
        events[pos("archive.written")].1,
        json!({"userId": ann, "destination": "directory", "file": format!("{ann}.jsonl")})
    );
    let text = serde_json::to_string(&events).unwrap();
    for value in ["ann@example.com", "ann Archived", "ext-ann", "ann's post", "ann's comment", "\"ann\""] {
        assert!(!text.contains(value), "{value} in {text}");
    }
    // A second sweep has nothing more to write.
    assert_eq!(tenant.sweep().await["exportsWritten"], 0);
    std::fs::remove_dir_all(&dir).unwrap();
}

async fn archive_export_without_a_destination_is_refused_when_the_policy_is_set(app: TestApp) {
    let mut conn = app.connection();
    let set = |conn: &mut _, change: PolicyChange| tenants::set_policy(conn, "default", &change);
    let on = || PolicyChange { archive_export: Some(true), ..Default::default() };
    let refused = set(&mut conn, on()).unwrap_err();
    assert!(matches!(refused, TenantError::ArchiveWithoutDestination));
    assert!(refused.to_string().contains("--archive-dir PATH"), "{refused}");
    let dir_change = |dir: &str| PolicyChange { archive_dir: Some(Some(dir.to_owned())), ..on() };
    for (dir, why) in [
        ("relative/archive", "must be an absolute path"),
        ("/nonexistent/roster-archive", "cannot be used"),
        ("/etc/hostname", "is not a directory"),
    ] {
        let refused = set(&mut conn, dir_change(dir)).unwrap_err().to_string();
        assert!(refused.contains(why) && refused.contains(dir), "{refused}");
    }
    let tenant = tenants::by_name(&mut conn, "default").unwrap().unwrap();
    assert!(!tenant.archive_export && tenant.archive_dir.is_none(), "nothing changed on a refusal");

    let dir = tempdir();
    let tenant = set(&mut conn, dir_change(dir.to_str().unwrap())).unwrap();
    assert!(tenant.archive_export);
    assert_eq!(tenant.archive_dir.as_deref(), dir.to_str());
    // The destination cannot go while export is on; both can go together.
    let gone = PolicyChange { archive_dir: Some(None), ..Default::default() };
    assert!(matches!(set(&mut conn, gone).unwrap_err(), TenantError::ArchiveWithoutDestination));
    let off = PolicyChange { archive_export: Some(false), archive_dir: Some(None), ..Default::default() };
    assert!(set(&mut conn, off).unwrap().archive_dir.is_none());
    std::fs::remove_dir_all(&dir).unwrap();
}

async fn an_export_that_waits_past_its_hold_is_destroyed_with_an_alert(app: TestApp) {
    let dir = tempdir();
    archive_into(&app, &dir);
    let hold = PolicyChange { archive_hold_hours: Some(2), ..Default::default() };
    tenants::set_policy(&mut app.connection(), "default", &hold).unwrap();
    let tenant = Tenant::default_of(&app);
    let bo = person(&app, "bo").await;
    // The directory disappears (an unmounted volume): the export cannot be written and waits.
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(app.delete(&format!("/scim/v2/Users/{bo}")).await.status(), 204);
    let report = tenant.sweep().await;
    assert_eq!((report["exportsWritten"].as_u64(), report["exportsExpired"].as_u64()), (Some(0), Some(0)));
    assert_eq!(tenant.pending(), 1);

    app.clock.advance(chrono::Duration::hours(2));
    assert_eq!(tenant.sweep().await["exportsExpired"], 1);
    assert_eq!(tenant.pending(), 0);
    let events = tenant.events().await;
    let (_, alert) = events.iter().find(|(k, _)| k == "archive.expired").expect("an alert event");
    assert_eq!(alert["userId"], bo.as_str());
    assert_eq!(alert["destination"], "directory");
    assert!(alert["queuedAt"].is_string() && alert["expiredAt"].is_string(), "{alert}");
    assert!(!events.iter().any(|(k, _)| k == "archive.written"));
    // Recreating the directory brings nothing back: the export is destroyed.
    std::fs::create_dir_all(&dir).unwrap();
    assert_eq!(tenant.sweep().await["exportsWritten"], 0);
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Holds back the step that removes an export once its file is written: SQLite's write lock,
/// or (PostgreSQL) a lock on `events` that keeps the removal's event from being inserted.
enum Holder {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

impl Holder {
    fn take(db: &TestDatabase) -> Holder {
        match db.backend {
            Backend::Sqlite => {
                let mut conn = SqliteConnection::establish(&db.url).unwrap();
                conn.batch_execute("BEGIN IMMEDIATE").unwrap();
                Holder::Sqlite(conn)
            }
            Backend::Postgres => {
                let mut conn = PgConnection::establish(&db.url).unwrap();
                conn.batch_execute("BEGIN; LOCK TABLE events IN EXCLUSIVE MODE").unwrap();
                Holder::Postgres(conn)
            }
        }
    }

    fn release(self) {
        match self {
            Holder::Sqlite(mut c) => c.batch_execute("ROLLBACK").unwrap(),
            Holder::Postgres(mut c) => c.batch_execute("ROLLBACK").unwrap(),
        }
    }
}

/// `roster sweep` is killed (SIGKILL) after it wrote an export's file and before it removed the
/// export: the export is still pending, and the next sweep writes the same file again and only
/// then removes it. At most a duplicate write, never a lost export.
async fn a_sink_killed_between_writing_and_removing_writes_again_and_loses_nothing(backend: Backend) {
    let Some(db) = TestDatabase::create(backend) else { return };
    let app = TestApp::spawn_with(db, |_| {}).await;
    let dir = tempdir();
    archive_into(&app, &dir);
    let tenant = Tenant::default_of(&app);
    let cy = person(&app, "cy").await;
    tenant.write("post", &cy, "cy's last words", None).await;
    assert_eq!(app.delete(&format!("/scim/v2/Users/{cy}")).await.status(), 204);
    let file = dir.join(format!("{cy}.jsonl"));

    let holder = Holder::take(&app.db);
    let mut sweep = Command::new(env!("CARGO_BIN_EXE_roster"))
        .arg("sweep")
        .env("ROSTER_DATABASE_URL", &app.db.url)
        .env("ROSTER_TOKEN_SECRET", SECRET)
        .env_remove("ROSTER_CONFIG")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !file.exists() {
        assert!(sweep.try_wait().unwrap().is_none(), "the sweep ended before it wrote the file");
        assert!(Instant::now() < deadline, "the sweep wrote no file");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(sweep.try_wait().unwrap().is_none(), "the removal is held back");
    sweep.kill().unwrap(); // SIGKILL
    sweep.wait().unwrap();
    holder.release();

    // The file is whole (written under another name, then renamed), and the export still pending.
    let first = std::fs::read(&file).unwrap();
    assert_eq!(lines(&file)[1]["body"], "cy's last words");
    assert_eq!(tenant.pending(), 1);
    assert!(!tenant.events().await.iter().any(|(k, _)| k == "archive.written"));

    // The archive lost the file meanwhile: the next run writes it again.
    std::fs::remove_file(&file).unwrap();
    assert_eq!(tenant.sweep().await["exportsWritten"], 1);
    assert_eq!(std::fs::read(&file).unwrap().len(), first.len());
    assert_eq!(lines(&file)[0]["profile"]["userName"], "cy");
    assert_eq!(tenant.pending(), 0);
    let written = tenant.events().await.into_iter().filter(|(k, _)| k == "archive.written").count();
    assert_eq!(written, 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

both_backends!(
    a_deleted_accounts_export_is_written_to_the_archive_directory_then_leaves_roster,
    archive_export_without_a_destination_is_refused_when_the_policy_is_set,
    an_export_that_waits_past_its_hold_is_destroyed_with_an_alert,
);
both_backends!(by_backend: a_sink_killed_between_writing_and_removing_writes_again_and_loses_nothing);

/// Points the default tenant's archive export at `receiver` (a loopback address, so allowed
/// private) and gives the receiver the signing secret, as an operator pastes it.
async fn archive_to_url(app: &TestApp, receiver: &mut Receiver, hold_hours: Option<i32>) {
    let mut conn = app.connection();
    let (url, secret) = url_destination(&mut conn, "default", &receiver.url(), true).unwrap();
    let change = PolicyChange {
        archive_export: Some(true),
        archive_url: Some(Some(url)),
        archive_hold_hours: hold_hours,
        ..Default::default()
    };
    tenants::set_policy(&mut conn, "default", &change).unwrap();
    receiver.configure(json!({"secrets": [secret]})).await;
}

async fn spawn_delivering(backend: Backend) -> Option<TestApp> {
    let db = TestDatabase::create(backend)?;
    Some(TestApp::spawn_with(db, |s| s.webhooks = fast()).await)
}

/// Tries recorded on the default tenant's pending exports.
fn attempts(app: &TestApp) -> i32 {
    use diesel::prelude::*;
    use roster::db::schema::archive_exports;
    archive_exports::table.select(archive_exports::attempts).load::<i32>(&mut *app.connection()).unwrap().iter().sum()
}

/// The export of a deleted account is POSTed to the archive URL: the same JSON Lines the
/// directory would hold, signed with the secret given when the URL was set; once the receiver
/// acknowledges it, it leaves Roster, with an `archive.written` event that holds none of it.
async fn an_export_is_posted_signed_to_the_archive_url_then_leaves_roster(backend: Backend) {
    let Some(app) = spawn_delivering(backend).await else { return };
    let mut receiver = Receiver::start();
    archive_to_url(&app, &mut receiver, None).await;
    let tenant = Tenant::default_of(&app);
    let ann = person(&app, "ann").await;
    let post = tenant.write("post", &ann, "ann's post for the archive", None).await;
    assert_eq!(app.delete(&format!("/scim/v2/Users/{ann}")).await.status(), 204);
    assert_eq!(app.get(&format!("/scim/v2/Users/{ann}")).await.status(), 404);

    wait_for("the export at the archive URL", 20, || !receiver.delivered().is_empty()).await;
    wait_for("the export to leave Roster", 20, || tenant.pending() == 0).await;
    let got = receiver.delivered();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["valid"], true, "the signature verifies with the secret shown: {}", got[0]);
    assert!(got[0]["id"].as_str().unwrap().starts_with("arch_"), "{}", got[0]);
    let lines = got[0]["body"].as_array().expect("JSON Lines");
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!((lines[0]["type"].as_str(), lines[0]["id"].as_str()), (Some("user"), Some(ann.as_str())));
    assert_eq!(lines[0]["profile"]["emails"][0]["value"], "ann@example.com");
    assert_eq!(
        (lines[1]["id"].as_str(), lines[1]["body"].as_str()),
        (Some(post.as_str()), Some("ann's post for the archive"))
    );

    let events = tenant.events().await;
    let written: Vec<&Value> = events.iter().filter(|(k, _)| k == "archive.written").map(|(_, d)| d).collect();
    assert_eq!(written, [&json!({"userId": ann, "destination": "url"})]);
    let exported = events.iter().find(|(k, _)| k == "user.exported").expect("user.exported");
    assert_eq!(exported.1, json!({"id": ann, "destination": "url"}));
    let text = serde_json::to_string(&events).unwrap();
    assert!(!text.contains("ann@example.com") && !text.contains("ann's post"), "{text}");
    // Acknowledged once: nothing is sent again.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.records().len(), 1);
}

/// A receiver that is down, then answers 500, does not lose the export: it stays in Roster and
/// is tried again with the back-off, and is delivered once the receiver is back.
async fn an_export_waits_for_a_receiver_that_is_down_and_is_delivered_later(backend: Backend) {
    let Some(app) = spawn_delivering(backend).await else { return };
    let mut receiver = Receiver::start();
    archive_to_url(&app, &mut receiver, None).await;
    let tenant = Tenant::default_of(&app);
    let bo = person(&app, "bo").await;
    receiver.stop();
    assert_eq!(app.delete(&format!("/scim/v2/Users/{bo}")).await.status(), 204);
    wait_for("tries while the receiver is down", 20, || attempts(&app) >= 2).await;
    assert_eq!(tenant.pending(), 1);

    receiver.restart().await;
    receiver.configure(json!({"mode": "fail"})).await;
    wait_for("a try answered 500", 20, || receiver.records().iter().any(|r| r["mode"] == "fail")).await;
    assert_eq!(tenant.pending(), 1, "a 500 is no acknowledgement");
    receiver.configure(json!({"mode": "ok"})).await;
    wait_for("the export delivered", 20, || !receiver.delivered().is_empty()).await;
    wait_for("the export to leave Roster", 20, || tenant.pending() == 0).await;
    let got = receiver.delivered();
    assert_eq!(got[0]["valid"], true);
    assert_eq!(got[0]["body"][0]["id"], bo.as_str());
    // Every try carried the same webhook-id, so the receiver can tell a repeat.
    let ids: BTreeSet<String> = receiver.records().iter().map(|r| r["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ids.len(), 1);
}

/// An export the archive URL never acknowledges is destroyed once the tenant's hold is over,
/// with an `archive.expired` alert, exactly as when the directory cannot be written; and it is
/// not sent again after that.
async fn an_export_never_acknowledged_is_destroyed_after_its_hold_with_an_alert(backend: Backend) {
    let Some(app) = spawn_delivering(backend).await else { return };
    let mut receiver = Receiver::start();
    archive_to_url(&app, &mut receiver, Some(1)).await;
    receiver.configure(json!({"mode": "fail"})).await;
    let tenant = Tenant::default_of(&app);
    let cy = person(&app, "cy").await;
    assert_eq!(app.delete(&format!("/scim/v2/Users/{cy}")).await.status(), 204);
    wait_for("several refused tries", 20, || receiver.records().len() >= 2).await;
    let report = tenant.sweep().await;
    assert_eq!((report["exportsWritten"].as_u64(), report["exportsExpired"].as_u64()), (Some(0), Some(0)));
    assert_eq!(tenant.pending(), 1);

    app.clock.advance(chrono::Duration::hours(1));
    assert_eq!(tenant.sweep().await["exportsExpired"], 1);
    assert_eq!(tenant.pending(), 0);
    let events = tenant.events().await;
    let (_, alert) = events.iter().find(|(k, _)| k == "archive.expired").expect("an alert event");
    assert_eq!(alert["userId"], cy.as_str());
    assert_eq!(alert["destination"], "url");
    assert!(!events.iter().any(|(k, _)| k == "archive.written"));
    let tries = receiver.records().len();
    receiver.configure(json!({"mode": "ok"})).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(receiver.records().len(), tries, "a destroyed export is not sent again");
}

/// One destination kind per tenant: a URL clears the directory and back; a URL must be https
/// to a public address unless private destinations are allowed; export on with neither stays
/// refused.
async fn an_archive_url_replaces_the_directory_and_is_checked_like_a_webhook(app: TestApp) {
    let mut conn = app.connection();
    for (url, why) in [
        ("http://archive.example.com/in", "not https"),
        ("https://127.0.0.1/in", "loopback"),
        ("https://169.254.169.254/latest", "link-local"),
        ("https://user:pw@archive.example.com/", "user name"),
    ] {
        let refused = url_destination(&mut conn, "default", url, false).unwrap_err().to_string();
        assert!(refused.contains(why), "{url}: {refused}");
    }
    let dir = tempdir();
    let dir_text: String = dir.to_string_lossy().into();
    let with_dir =
        PolicyChange { archive_export: Some(true), archive_dir: Some(Some(dir_text.clone())), ..Default::default() };
    tenants::set_policy(&mut conn, "default", &with_dir).unwrap();
    let (url, secret) = url_destination(&mut conn, "default", "https://archive.example.com/in", false).unwrap();
    assert!(secret.starts_with("whsec_"));
    assert!(!url.sealed_secret.contains(secret.trim_start_matches("whsec_")), "stored sealed");
    let with_url = PolicyChange { archive_url: Some(Some(url.clone())), ..Default::default() };
    let t = tenants::set_policy(&mut conn, "default", &with_url).unwrap();
    assert_eq!((t.archive_url.as_deref(), t.archive_dir.as_deref()), (Some("https://archive.example.com/in"), None));
    let both = PolicyChange { archive_url: Some(Some(url)), archive_dir: Some(Some(dir_text)), ..Default::default() };
    assert!(matches!(
        tenants::set_policy(&mut conn, "default", &both).unwrap_err(),
        TenantError::TwoArchiveDestinations
    ));
    let t = tenants::set_policy(&mut conn, "default", &with_dir).unwrap();
    assert!(t.archive_url.is_none() && t.archive_secret.is_none() && t.archive_dir.is_some(), "{t:?}");
    let none = PolicyChange { archive_dir: Some(None), ..Default::default() };
    assert!(matches!(
        tenants::set_policy(&mut conn, "default", &none).unwrap_err(),
        TenantError::ArchiveWithoutDestination
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

both_backends!(an_archive_url_replaces_the_directory_and_is_checked_like_a_webhook);
both_backends!(
    by_backend: an_export_is_posted_signed_to_the_archive_url_then_leaves_roster,
    an_export_waits_for_a_receiver_that_is_down_and_is_delivered_later,
    an_export_never_acknowledged_is_destroyed_after_its_hold_with_an_alert,
);

/// The command line takes the settings in the forms the documentation shows, and refuses
/// archive export without a destination with the same message.
#[test]
fn tenant_set_takes_durations_and_refuses_export_without_a_destination() {
    let db = TestDatabase::create(Backend::Sqlite).unwrap();
    let roster = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_roster"))
            .args(args)
            .env("ROSTER_DATABASE_URL", &db.url)
            .env("ROSTER_TOKEN_SECRET", SECRET)
            .env_remove("ROSTER_CONFIG")
            .output()
            .unwrap()
    };
    let refused = roster(&["tenant", "set", "default", "--archive-export", "true"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("archive export needs a destination"));
    for bad in
        [["--event-retention", "90x"], ["--event-retention", "0d"], ["--archive-hold", "7"], ["--archive-hold", "0h"]]
    {
        let out = roster(&["tenant", "set", "default", bad[0], bad[1]]);
        assert!(!out.status.success(), "{bad:?} accepted");
    }
    let dir = tempdir();
    let ok = roster(&[
        "tenant",
        "set",
        "default",
        "--event-retention",
        "30d",
        "--archive-hold",
        "48h",
        "--archive-dir",
        dir.to_str().unwrap(),
        "--archive-export",
        "true",
    ]);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let list = String::from_utf8(roster(&["tenant", "list"]).stdout).unwrap();
    let row: Vec<&str> = list.lines().nth(1).unwrap().split('\t').collect();
    assert_eq!(row[6..], ["true", "false", "30", dir.to_str().unwrap(), "48", "-"]);

    // An archive URL replaces the directory, and its signing secret is printed once, alone on
    // standard output.
    let refused = roster(&["tenant", "set", "default", "--archive-url", "http://127.0.0.1:9/archive"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--archive-allow-private"));
    let url = "http://127.0.0.1:9/archive";
    let set = roster(&["tenant", "set", "default", "--archive-url", url, "--archive-allow-private"]);
    assert!(set.status.success(), "{}", String::from_utf8_lossy(&set.stderr));
    let secret = String::from_utf8(set.stdout).unwrap();
    assert!(secret.trim().starts_with("whsec_") && secret.lines().count() == 1, "{secret}");
    let list = String::from_utf8(roster(&["tenant", "list"]).stdout).unwrap();
    let row: Vec<&str> = list.lines().nth(1).unwrap().split('\t').collect();
    assert_eq!(row[9..], ["-", "48", url]);
    let both = roster(&["tenant", "set", "default", "--archive-url", url, "--archive-dir", dir.to_str().unwrap()]);
    assert!(!both.status.success(), "one destination at a time");
    std::fs::remove_dir_all(&dir).unwrap();
}
