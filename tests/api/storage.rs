//! What Roster leaves on the disk and in its logs: removed personal data gone from every
//! database file, passwords never shown, connection strings never taken for file names.

use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl};
use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{json, postgres_url, Backend, TestApp, TestDatabase};

const ROSTER: &str = "urn:ietf:params:scim:schemas:extension:roster:2.0:User";

/// A person whose every personal value holds `tag`, so that any copy of it can be found.
fn distinctive_person(tag: &str) -> Value {
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
fn personal_values(tag: &str) -> Vec<String> {
    ["username", "externalid", "displayname", "given", "family", "email", "phone", "street"]
        .iter()
        .map(|field| format!("{tag}-{field}"))
        .collect()
}

async fn call(app: &TestApp, token: &str, method: reqwest::Method, path: &str, body: Value) -> reqwest::Response {
    app.client.request(method, app.url(path)).bearer_auth(token).json(&body).send().await.unwrap()
}

async fn deactivate(app: &TestApp, id: &str) {
    let body = json!({"Operations": [{"op": "replace", "value": {"active": false}}]});
    assert_eq!(app.patch(&format!("/scim/v2/Users/{id}"), &body).await.status(), 200);
}

/// RFC 7644 §3.6: a deleted resource is gone for the client; and what a Former Member loses
/// (DESIGN §1) is gone too. Here: gone from the bytes of every database file, not only from
/// the rows — SQLite's main file, WAL and shared memory; PostgreSQL's heap, TOAST and index
/// pages outside their free space (what remains there is documented in the README).
async fn removed_personal_data_is_gone_from_every_database_file(app: TestApp) {
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
    // The scrub runs shortly after the removals commit, batched; wait for it, within a bound.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let found = match app.db.backend {
            Backend::Sqlite => found_in_sqlite_files(&app.db.url, &values),
            Backend::Postgres => found_in_postgres_pages(&app.db, &values),
        };
        if found.is_empty() {
            break;
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
        .filter(|v| bytes.windows(v.len()).any(|w| w == v.to_ascii_lowercase().as_bytes()))
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
    let schema = db.url.rsplit("search_path%3D").next().unwrap().to_owned();
    let mut conn = PgConnection::establish(&postgres_url()).unwrap();
    // Tests run in parallel; a concurrent CREATE EXTENSION may fail where another succeeded.
    let _ = conn.batch_execute("CREATE EXTENSION IF NOT EXISTS pageinspect SCHEMA public");
    let pages: Vec<Page> = diesel::sql_query(
        "WITH own AS (SELECT c.oid, c.reltoastrelid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                      WHERE n.nspname = $1 AND c.relkind IN ('r', 'i', 'm')), \
              toast AS (SELECT reltoastrelid AS oid FROM own WHERE reltoastrelid <> 0), \
              rels AS (SELECT oid FROM own UNION SELECT oid FROM toast \
                       UNION SELECT indexrelid FROM pg_index WHERE indrelid IN (SELECT oid FROM toast)), \
              pages AS (SELECT r.oid::regclass::text AS relation, \
                               public.get_raw_page(r.oid::regclass::text, b::int) AS page \
                        FROM rels r, generate_series(0, pg_relation_size(r.oid) / 8192 - 1) b) \
         SELECT relation, substring(page FROM 1 FOR h.lower) || substring(page FROM h.upper + 1) AS used \
         FROM pages, public.page_header(page) h",
    )
    .bind::<diesel::sql_types::Text, _>(&schema)
    .load(&mut conn)
    .unwrap();
    assert!(pages.iter().any(|p| p.relation.ends_with("users")), "the schema's pages were read");
    pages
        .iter()
        .flat_map(|p| occurring(&p.used, values).into_iter().map(|v| format!("{v} in {}", p.relation)))
        .collect()
}

both_backends!(removed_personal_data_is_gone_from_every_database_file);
