//! What Roster leaves on the disk and in its logs: removed personal data gone from every
//! database file, passwords never shown, connection strings never taken for file names.

use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl};
use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{json, Backend, TestApp, TestDatabase};

const ROSTER: &str = "urn:ietf:params:scim:schemas:extension:roster:2.0:User";

/// A person whose every personal value holds `tag`, so that any copy of it can be found.
pub(crate) fn distinctive_person(tag: &str) -> Value {
    json!({
        "userName": format!("{tag}-username"),
        "externalId": format!("{tag}-externalid"),
        "displayName": format!("{tag}-displayname"),
        "name": {"givenName": format!("{tag}-given"), "familyName": format!("{tag}-family")},
        "emails": [{"value": format!("{tag}-email@example.org"), "type": "work", "primary": true}],
        "phoneNumbers": [{"value": format!("{tag}-phone-555-0199")}],
        "addresses": [{"streetAddress": format!("17 {tag}-street"), "locality": "Springfield"}],
    })
}

/// Every value of [`distinctive_person`], as stored (userNames are also stored folded).
pub(crate) fn personal_values(tag: &str) -> Vec<String> {
    ["username", "externalid", "displayname", "given", "family", "email", "phone", "street"]
        .iter()
        .map(|field| format!("{tag}-{field}"))
        .collect()
}

async fn call(app: &TestApp, token: &str, method: reqwest::Method, path: &str, body: Value) -> reqwest::Response {
    app.client.request(method, app.url(path)).bearer_auth(token).json(&body).send().await.unwrap()
}

pub(crate) async fn deactivate(app: &TestApp, id: &str) {
    let body = json!({"Operations": [{"op": "replace", "value": {"active": false}}]});
    assert_eq!(app.patch(&format!("/scim/v2/Users/{id}"), &body).await.status(), 200);
}

/// RFC 7644 §3.6: a deleted resource is gone for the client; and what a Former Member loses
/// (DESIGN §1) is gone too. Here: gone from the bytes of every database file, not only from
/// the rows — SQLite's main file, WAL and shared memory; PostgreSQL's heap, TOAST and index
/// pages outside their free space (what remains there is documented in the README).
async fn removed_personal_data_is_gone_from_every_database_file(backend: Backend) {
    // A database of its own: VACUUM cannot prune rows that another session of the same database
    // might still see, and the other tests' sessions are no business of this one.
    let Some(db) = TestDatabase::create_isolated(backend) else { return };
    let app = TestApp::spawn_with(db, |_| {}).await;
    let product = app.issue_token("default", "product", "content");
    let former = app.create_user(distinctive_person("zqformer")).await["id"].as_str().unwrap().to_owned();
    let deleted = app.create_user(distinctive_person("zqdeleted")).await["id"].as_str().unwrap().to_owned();
    // Memberships keep the member's display name as the client sent it.
    let members = json!([{"value": former, "display": "zqformer-displayname"},
        {"value": deleted, "display": "zqdeleted-displayname"}]);
    let res = app.post("/scim/v2/Groups", &json!({"displayName": "team", "members": members})).await;
    assert_eq!(res.status(), 201);
    let post = json!({"kind": "post", "authorId": deleted, "body": "zqdeleted-post text"});
    let res = call(&app, &product, reqwest::Method::POST, "/api/v1/content", post).await;
    assert_eq!(res.status(), 201);
    let parent = json(res).await["id"].clone();
    let comment = json!({"kind": "comment", "authorId": deleted, "body": "zqdeleted-comment text", "parentId": parent});
    assert_eq!(call(&app, &product, reqwest::Method::POST, "/api/v1/content", comment).await.status(), 201);

    deactivate(&app, &former).await;
    app.clock.advance(chrono::Duration::days(4));
    let become_former =
        json!({"Operations": [{"op": "replace", "path": format!("{ROSTER}:formerMember"), "value": true}]});
    assert_eq!(app.patch(&format!("/scim/v2/Users/{former}"), &become_former).await.status(), 200);
    assert_eq!(app.delete(&format!("/scim/v2/Users/{deleted}")).await.status(), 204);

    let mut values = personal_values("zqformer");
    values.extend(personal_values("zqdeleted"));
    values.extend(["zqdeleted-post text".to_owned(), "zqdeleted-comment text".to_owned()]);
    gone_from_disk(&app, &values).await;
}

/// The retention policy's periodic sweep removes personal data as the API does, and scrubs it
/// as well.
async fn the_retention_sweep_scrubs_what_it_removes_from_the_disk(backend: Backend) {
    // The periodic sweep is spawned onto actix's (thread-local) task set.
    tokio::task::LocalSet::new().run_until(periodic_sweep_scrubs(backend)).await;
}

async fn periodic_sweep_scrubs(backend: Backend) {
    let Some(db) = TestDatabase::create_isolated(backend) else { return };
    let app = TestApp::spawn_with(db, |s| s.sweep_interval_secs = 1).await;
    let change = roster::db::tenants::PolicyChange {
        former_member_after_days: Some(Some(10)),
        delete_after_days: Some(Some(30)),
        ..Default::default()
    };
    roster::db::tenants::set_policy(&mut app.connection(), "default", &change).unwrap();
    let id = app.create_user(distinctive_person("zqretained")).await["id"].as_str().unwrap().to_owned();
    deactivate(&app, &id).await;
    app.clock.advance(chrono::Duration::days(11));
    let deadline = Instant::now() + Duration::from_secs(30);
    while app.get_ok(&format!("/scim/v2/Users/{id}")).await[ROSTER]["lifecycleState"] != "formerMember" {
        assert!(Instant::now() < deadline, "the sweep made no Former Member");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    gone_from_disk(&app, &personal_values("zqretained")).await;
}

/// A session that keeps an old snapshot open (a long report, a `pg_dump`) keeps VACUUM from
/// pruning the dead rows it might still see. The scrub notices, and runs again until that
/// session is gone, rather than leaving the removed values in dead rows until some later VACUUM.
#[tokio::test]
async fn a_scrub_held_back_by_an_old_snapshot_runs_again_once_it_is_gone() {
    let Some(db) = TestDatabase::create_isolated(Backend::Postgres) else { return };
    let app = TestApp::spawn_with(db, |_| {}).await;
    let id = app.create_user(distinctive_person("zqheld")).await["id"].as_str().unwrap().to_owned();
    let mut reader = PgConnection::establish(&app.db.url).unwrap();
    reader.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM users").unwrap();
    deactivate(&app, &id).await;
    app.clock.advance(chrono::Duration::days(4));
    let become_former =
        json!({"Operations": [{"op": "replace", "path": format!("{ROSTER}:formerMember"), "value": true}]});
    assert_eq!(app.patch(&format!("/scim/v2/Users/{id}"), &become_former).await.status(), 200);
    // The first scrub runs about a second after the change; the reader still sees the old row.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!found_in_postgres_pages(&app.db, &personal_values("zqheld")).is_empty(), "held back by the reader");
    reader.batch_execute("COMMIT").unwrap();
    gone_from_disk(&app, &personal_values("zqheld")).await;
}

/// Waits until none of `values` is in the database files: the scrub runs shortly after the
/// removals commit, batched. Fails when some remain after a generous bound.
pub(crate) async fn gone_from_disk(app: &TestApp, values: &[String]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let found = match app.db.backend {
            Backend::Sqlite => found_in_sqlite_files(&app.db.url, values),
            Backend::Postgres => found_in_postgres_pages(&app.db, values),
        };
        if found.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "removed personal data still on disk: {found:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Which of `values` (compared in ASCII lowercase) occur in `bytes`.
fn occurring<'a>(bytes: &[u8], values: &'a [String]) -> Vec<&'a str> {
    let bytes = bytes.to_ascii_lowercase();
    values
        .iter()
        .filter(|v| {
            let v = v.to_ascii_lowercase();
            bytes.windows(v.len()).any(|w| w == v.as_bytes())
        })
        .map(String::as_str)
        .collect()
}

fn found_in_sqlite_files(path: &str, values: &[String]) -> Vec<String> {
    let mut found = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        let file = format!("{path}{suffix}");
        let bytes = std::fs::read(&file).unwrap_or_default();
        found.extend(occurring(&bytes, values).into_iter().map(|v| format!("{v} in roster.db{suffix}")));
    }
    found
}

#[derive(QueryableByName)]
struct Page {
    #[diesel(sql_type = diesel::sql_types::Text)]
    relation: String,
    #[diesel(sql_type = diesel::sql_types::Binary)]
    used: Vec<u8>,
}

/// Searches every page of every relation of the test's schema (tables, their TOAST tables, all
/// indexes), read with `pageinspect` as the superuser: the page minus its free space (between
/// `pd_lower` and `pd_upper`), so live and dead tuples and index entries alike.
fn found_in_postgres_pages(db: &TestDatabase, values: &[String]) -> Vec<String> {
    let mut conn = PgConnection::establish(&db.url).unwrap();
    // Tests run in parallel; a concurrent CREATE EXTENSION may fail where another succeeded.
    let _ = conn.batch_execute("CREATE EXTENSION IF NOT EXISTS pageinspect SCHEMA public");
    let pages: Vec<Page> = diesel::sql_query(
        "WITH own AS (SELECT c.oid, c.reltoastrelid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                      WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'i', 'm')), \
              toast AS (SELECT reltoastrelid AS oid FROM own WHERE reltoastrelid <> 0), \
              rels AS (SELECT oid FROM own UNION SELECT oid FROM toast \
                       UNION SELECT indexrelid FROM pg_index WHERE indrelid IN (SELECT oid FROM toast)), \
              pages AS (SELECT r.oid::regclass::text AS relation, \
                               public.get_raw_page(r.oid::regclass::text, b::int) AS page \
                        FROM rels r, generate_series(0, pg_relation_size(r.oid) / 8192 - 1) b) \
         SELECT relation, substring(page FROM 1 FOR h.lower) || substring(page FROM h.upper + 1) AS used \
         FROM pages, public.page_header(page) h",
    )
    .load(&mut conn)
    .unwrap();
    assert!(pages.iter().any(|p| p.relation.ends_with("users")), "the schema's pages were read");
    pages
        .iter()
        .flat_map(|p| occurring(&p.used, values).into_iter().map(|v| format!("{v} in {}", p.relation)))
        .collect()
}

both_backends!(by_backend: removed_personal_data_is_gone_from_every_database_file, the_retention_sweep_scrubs_what_it_removes_from_the_disk);

/// Runs `roster` with `args` against `db_url`, in a folder of its own (so that a connection
/// string mistaken for an SQLite path would show up as a file there).
fn roster_in(dir: &std::path::Path, db_url: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_roster"))
        .args(args)
        .current_dir(dir)
        .env("ROSTER_DATABASE_URL", db_url)
        .env("ROSTER_TOKEN_SECRET", crate::helpers::SECRET)
        .env_remove("ROSTER_CONFIG")
        .output()
        .expect("roster runs")
}

fn scratch_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("roster_t_{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_database_password_never_appears_in_errors() {
    let dir = scratch_dir();
    for url in [
        // libpq quotes a malformed part of a URL in its error: here, the password.
        "postgres://roster:zqsecret%ZZ@127.0.0.1:1/test",
        "postgres://roster@127.0.0.1:1/test?password=zqsecret",
        "host=127.0.0.1 port=1 user=roster password=zqsecret dbname=test",
        "host=127.0.0.1 port=1 user=roster password='zq secret' dbname=test",
    ] {
        let out = roster_in(&dir, url, &["migrate"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{url} is unreachable: {err}");
        assert!(err.contains("127.0.0.1"), "the error names the server: {err}");
        assert!(!err.contains("zqsecret") && !err.contains("zq secret"), "{err}");
    }
    let created: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(created.is_empty(), "no connection string was taken for a file name: {created:?}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_key_value_string_with_a_mistyped_keyword_is_refused_not_made_a_file() {
    let dir = scratch_dir();
    let out = roster_in(&dir, "hots=db.internal dbname=roster password=zqsecret", &["migrate"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("\"hots\" is not a libpq keyword") && !err.contains("zqsecret"), "{err}");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "no file made");
    let _ = std::fs::remove_dir_all(dir);
}

/// A libpq key=value string reaches PostgreSQL, and the start-up log line shows it without
/// its password (PostgreSQL's trust authentication ignores the password).
#[test]
fn serve_connects_with_a_key_value_string_and_logs_it_without_the_password() {
    let Some(db) = TestDatabase::create(Backend::Postgres) else { return };
    let schema = db.url.rsplit("search_path%3D").next().unwrap().to_owned();
    // The test URL's default server, written in libpq's other form.
    if std::env::var_os("ROSTER_TEST_POSTGRES_URL").is_some() {
        return;
    }
    let url = format!(
        "host=127.0.0.1 port=5432 user=postgres dbname=test password=zqsecret options='-csearch_path={schema}'"
    );
    let dir = scratch_dir();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_roster"))
        .arg("serve")
        .current_dir(&dir)
        .env("ROSTER_DATABASE_URL", &url)
        .env("ROSTER_TOKEN_SECRET", crate::helpers::SECRET)
        .env("ROSTER_LISTEN", format!("127.0.0.1:{port}"))
        .env("ROSTER_WORKERS", "1")
        .env_remove("ROSTER_CONFIG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut log = String::new();
    while !log.contains("roster starting") {
        let mut line = String::new();
        if std::io::BufRead::read_line(&mut stderr, &mut line).unwrap() == 0 {
            break;
        }
        log.push_str(&line);
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(log.contains("roster starting") && log.contains("password=***"), "{log}");
    assert!(!log.contains("zqsecret"), "{log}");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "no SQLite file made");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn help_does_not_echo_the_database_url_from_the_environment() {
    let out = roster_in(&std::env::temp_dir(), "postgres://roster:zqsecret@db.internal/roster", &["--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("ROSTER_DATABASE_URL") && !help.contains("zqsecret"), "{help}");
}
