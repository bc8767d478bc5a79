//! `roster backup` and `roster restore`: an SQLite copy taken while the server takes writes
//! holds every write acknowledged before it began, and restores into a database a server starts on.

use std::sync::{Arc, Mutex};

use serde_json::json;

use crate::helpers::{Backend, TestApp, TestDatabase};
use crate::operations::roster;

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Creates users one after another until told to stop; returns the ids acknowledged so far.
fn create_users_until_stopped(app: &TestApp, stop: Arc<tokio::sync::Notify>) -> Arc<Mutex<Vec<String>>> {
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let (client, url, token, done) =
        (app.client.clone(), app.url("/scim/v2/Users"), app.token.clone(), acknowledged.clone());
    tokio::spawn(async move {
        for n in 0.. {
            let create = client
                .post(&url)
                .bearer_auth(&token)
                .header("content-type", "application/scim+json")
                .json(&json!({ "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": format!("load-{n}") }))
                .send();
            let res = tokio::select! {
                res = create => res.unwrap(),
                () = stop.notified() => break,
            };
            assert_eq!(res.status(), 201);
            let id = res.json::<serde_json::Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
            done.lock().unwrap().push(id);
        }
    });
    acknowledged
}

#[tokio::test]
async fn a_backup_taken_under_writes_restores_every_create_acknowledged_before_it_began() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let stop = Arc::new(tokio::sync::Notify::new());
    let acknowledged = create_users_until_stopped(&app, stop.clone());
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
    let app = TestApp::spawn_with(restored, |_| {}).await;
    for id in &before_backup {
        assert_eq!(app.get(&format!("/scim/v2/Users/{id}")).await.status(), 200, "user {id} was acknowledged");
    }
    assert_eq!(app.client.get(app.url("/readyz")).send().await.unwrap().status(), 200);
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
