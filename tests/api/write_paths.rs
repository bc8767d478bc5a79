//! One suite for both write paths. A user's create and update and a change of a group's members
//! are several statements on SQLite (`src/db/sqlite/write.rs`) and one call of a PL/pgSQL
//! function on PostgreSQL (`src/db/postgres/write.rs`, functions in `migrations/postgres`).
//! The same writes, sent to an app on each backend, must leave the same rows in every table
//! they touch: ids are mapped to the order they were made in, times to `<time>`, and row keys
//! (`pk`) to the ids they stand for.

use std::collections::HashMap;

use diesel::prelude::*;
use roster::db::records;
use roster::db::schema::{audit_log, events, group_members, resource_counts, scim_groups, sessions, tenants};
use roster::db::schema::{tombstones, user_values, users};
use roster::db::DbConnection;
use serde_json::{json, Value};

use crate::helpers::{Backend, TestApp};

const ROSTER: &str = "urn:ietf:params:scim:schemas:extension:roster:2.0:User";

/// What the writes answered, step by step, and the ids they made, in the order they were made.
#[derive(Debug, Default)]
struct Transcript {
    answers: Vec<(String, u16)>,
    ids: Vec<String>,
}

impl Transcript {
    async fn record(&mut self, step: &str, res: reqwest::Response) -> Value {
        self.answers.push((step.to_owned(), res.status().as_u16()));
        let body: Value = res.json().await.unwrap_or(Value::Null);
        if let Some(id) = body["id"].as_str() {
            if !self.ids.iter().any(|known| known == id) {
                self.ids.push(id.to_owned());
            }
        }
        body
    }
}

fn ops(operations: Value) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": operations})
}

/// The writes: creates with multi-valued items, PATCHes that change the items and that do not,
/// deactivations (sessions revoked, events and audit), a PUT, a stale write, member adds,
/// removes and re-adds, an unknown member, a group in a group, a Former Member, and a deletion.
async fn writes(app: &TestApp) -> Transcript {
    let mut t = Transcript::default();
    let users = "/scim/v2/Users";
    let ann = json!({
        "userName": "Ann.Lee", "externalId": "ext-ann", "displayName": "Ann Lee",
        "name": {"givenName": "Ann", "familyName": "Lee"},
        "emails": [{"value": "Ann@Example.org", "type": "Work", "primary": true}, {"value": "ann@home.example"}],
        "phoneNumbers": [{"value": "+1 555 0100", "type": "mobile"}],
    });
    let ann = t.record("create ann", app.post(users, &ann).await).await["id"].as_str().unwrap().to_owned();
    let bob = json!({"userName": "bob", "emails": [{"value": "bob@example.org", "type": "work"}], "active": true});
    let bob = t.record("create bob", app.post(users, &bob).await).await["id"].as_str().unwrap().to_owned();
    let cy = json!({"userName": "Çy", "displayName": "ΣΊΣΥΦΟΣ"});
    let cy = t.record("create cy", app.post(users, &cy).await).await["id"].as_str().unwrap().to_owned();
    let taken = json!({"userName": "ANN.LEE"});
    t.record("create a taken userName", app.post(users, &taken).await).await;

    let product = app.issue_token("default", "product", "sessions");
    for user in [&ann, &bob] {
        let session = json!({"userId": user});
        let res =
            app.client.post(app.url("/api/v1/sessions")).bearer_auth(&product).json(&session).send().await.unwrap();
        assert_eq!(res.status(), 201, "a session");
        // Its id is in the deactivation's event (`revokedSessions`).
        t.record("open a session", res).await;
    }

    let ann_path = format!("{users}/{ann}");
    let items = ops(json!([
        {"op": "replace", "path": "emails", "value": [{"value": "ann@new.example", "type": "work", "primary": true}]},
        {"op": "add", "path": "addresses", "value": [{"locality": "Springfield", "type": "home"}]},
    ]));
    t.record("patch ann's items", app.patch(&ann_path, &items).await).await;
    let name = ops(json!([{"op": "replace", "path": "displayName", "value": "Ann B. Lee"}]));
    t.record("patch ann's name", app.patch(&ann_path, &name).await).await;
    let off = ops(json!([{"op": "replace", "value": {"active": false}}]));
    t.record("deactivate ann", app.patch(&ann_path, &off).await).await;

    let bob_path = format!("{users}/{bob}");
    let put = json!({"userName": "Bob", "displayName": "Bob Ray", "title": "Dr",
        "emails": [{"value": "bob@work.example", "type": "work", "primary": true}],
        "ims": [{"value": "bob-im", "type": "xmpp"}]});
    t.record("put bob", app.put(&bob_path, &put).await).await;
    // A change of externalId alone: SQLite's UPDATE then sets the identity columns, which an
    // update that changes only the account's state leaves out.
    let external = ops(json!([{"op": "replace", "path": "externalId", "value": "ext-bob-2"}]));
    t.record("patch bob's externalId", app.patch(&bob_path, &external).await).await;
    let stale = app
        .client
        .put(app.url(&bob_path))
        .bearer_auth(&app.token)
        .header("if-match", "W/\"1\"")
        .json(&json!({"userName": "bob-stale"}))
        .send()
        .await
        .unwrap();
    t.record("put bob from a stale version", stale).await;
    t.record("deactivate bob", app.patch(&bob_path, &off).await).await;

    let groups = "/scim/v2/Groups";
    let team = json!({"displayName": "Team", "externalId": "ext-team",
        "members": [{"value": ann, "display": "Ann as sent"}, {"value": bob}]});
    let team = t.record("create team", app.post(groups, &team).await).await["id"].as_str().unwrap().to_owned();
    let team_path = format!("{groups}/{team}");
    let change = ops(json!([
        {"op": "add", "path": "members", "value": [{"value": cy}, {"value": cy, "display": "second"}]},
        {"op": "remove", "path": format!("members[value eq \"{ann}\"]")},
    ]));
    t.record("add cy, remove ann", app.patch(&team_path, &change).await).await;
    let readd = ops(json!([
        {"op": "remove", "path": format!("members[value eq \"{bob}\"]")},
        {"op": "add", "path": "members", "value": [{"value": bob, "display": "Bob again"}]},
    ]));
    t.record("remove and re-add bob", app.patch(&team_path, &readd).await).await;
    let unknown = ops(json!([{"op": "add", "path": "members", "value": [{"value": "no-such-id"}]}]));
    t.record("add an unknown member", app.patch(&team_path, &unknown).await).await;
    let outer = json!({"displayName": "Outer", "members": [{"value": team}, {"value": ann}]});
    t.record("create outer", app.post(groups, &outer).await).await;
    let rename = json!({"displayName": "Team B", "members": [{"value": bob}, {"value": cy}]});
    t.record("put team", app.put(&team_path, &rename).await).await;

    let former = ops(json!([{"op": "replace", "path": format!("{ROSTER}:formerMember"), "value": true}]));
    t.record("make ann a former member within the grace period", app.patch(&ann_path, &former).await).await;
    app.clock.advance(chrono::Duration::days(4));
    t.record("make ann a former member", app.patch(&ann_path, &former).await).await;
    t.record("delete cy", app.delete(&format!("{users}/{cy}")).await).await;
    t.record("delete cy again", app.delete(&format!("{users}/{cy}")).await).await;
    t
}

/// Rows of every table the writes touch, normalised so that two backends can be compared.
#[derive(Debug, PartialEq)]
struct Tables(Vec<(&'static str, Vec<Value>)>);

/// Ids become their place in `ids` (`#1`…), times become `<time>`, random names `<random>`,
/// and JSON text is compared as JSON; in strings and in JSON alike.
fn normalise(value: Value, ids: &HashMap<String, String>) -> Value {
    match value {
        Value::String(text) => {
            if let Some(name) = ids.get(&text) {
                return Value::String(name.clone());
            }
            if chrono::DateTime::parse_from_rfc3339(&text).is_ok() {
                return Value::String("<time>".into());
            }
            if text.starts_with(['{', '[']) {
                if let Ok(json) = serde_json::from_str::<Value>(&text) {
                    return normalise(json, ids);
                }
            }
            // A Former Member's userName is made of a random UUID (`lifecycle`).
            if let Some(random) = text.strip_prefix("former-member-") {
                if uuid::Uuid::parse_str(random).is_ok() {
                    return Value::String("former-member-<random>".into());
                }
            }
            let mut text = text;
            for (id, name) in ids {
                text = text.replace(id.as_str(), name);
            }
            Value::String(text)
        }
        Value::Array(items) => Value::Array(items.into_iter().map(|v| normalise(v, ids)).collect()),
        Value::Object(map) => Value::Object(map.into_iter().map(|(k, v)| (k, normalise(v, ids))).collect()),
        other => other,
    }
}

fn tables(conn: &mut DbConnection, made: &[String]) -> Tables {
    let tenants: Vec<(String, String)> = tenants::table.select((tenants::id, tenants::name)).load(conn).unwrap();
    // The feed and the audit log number rows as they are read on PostgreSQL: read them first.
    for (tenant, _) in &tenants {
        records::events_after(conn, tenant, 0, 10_000).unwrap();
        records::audit_after(conn, tenant, 0, 10_000).unwrap();
    }
    let mut ids: HashMap<String, String> =
        made.iter().enumerate().map(|(i, id)| (id.clone(), format!("#{}", i + 1))).collect();
    ids.extend(tenants.iter().map(|(id, name)| (id.clone(), format!("tenant {name}"))));
    let user_of: HashMap<i64, String> =
        users::table.select((users::pk, users::id)).load::<(i64, String)>(conn).unwrap().into_iter().collect();
    let group_of: HashMap<i64, String> = scim_groups::table
        .select((scim_groups::pk, scim_groups::id))
        .load::<(i64, String)>(conn)
        .unwrap()
        .into_iter()
        .collect();
    let user = |pk: Option<i64>| pk.map(|pk| user_of[&pk].clone());
    let group = |pk: Option<i64>| pk.map(|pk| group_of[&pk].clone());

    let mut out: Vec<(&'static str, Vec<Value>)> = Vec::new();
    let rows = users::table
        .order(users::pk)
        .select((
            (users::tenant_id, users::id, users::user_name, users::user_name_folded, users::external_id),
            (users::display_name, users::display_name_folded, users::active, users::lifecycle_state),
            (users::deactivated_at.is_not_null(), users::former_member_since.is_not_null(), users::data),
            (users::version, users::deleted_at.is_not_null()),
        ))
        .load::<(
            (String, String, String, String, Option<String>),
            (Option<String>, Option<String>, bool, String),
            (bool, bool, String),
            (i64, bool),
        )>(conn)
        .unwrap();
    out.push(("users", rows.into_iter().map(|row| json!(row)).collect()));

    let rows = user_values::table
        .order((user_values::user_pk, user_values::attr, user_values::idx))
        .select((
            user_values::tenant_id,
            user_values::user_pk,
            user_values::attr,
            user_values::idx,
            user_values::value,
            user_values::value_folded,
            user_values::item_type,
            user_values::is_primary,
            user_values::item,
        ))
        .load::<(String, i64, String, i32, Option<String>, Option<String>, Option<String>, bool, String)>(conn)
        .unwrap();
    let rows =
        rows.into_iter().map(|(t, pk, a, i, v, f, ty, p, item)| json!([t, user(Some(pk)), a, i, v, f, ty, p, item]));
    out.push(("user_values", rows.collect()));

    let rows = scim_groups::table
        .order(scim_groups::pk)
        .select((
            scim_groups::tenant_id,
            scim_groups::id,
            scim_groups::display_name,
            scim_groups::display_name_folded,
            scim_groups::external_id,
            scim_groups::data,
            scim_groups::version,
        ))
        .load::<(String, String, String, String, Option<String>, String, i64)>(conn)
        .unwrap();
    out.push(("scim_groups", rows.into_iter().map(|row| json!(row)).collect()));

    let rows = group_members::table
        .order((group_members::group_pk, group_members::member_id))
        .select((
            group_members::tenant_id,
            group_members::group_pk,
            group_members::member_id,
            group_members::member_type,
            group_members::user_pk,
            group_members::member_group_pk,
            group_members::display,
        ))
        .load::<(String, i64, String, String, Option<i64>, Option<i64>, Option<String>)>(conn)
        .unwrap();
    let rows =
        rows.into_iter().map(|(t, g, m, kind, u, mg, d)| json!([t, group(Some(g)), m, kind, user(u), group(mg), d]));
    out.push(("group_members", rows.collect()));

    // PostgreSQL spreads a count over slots: the sum is what counts.
    let counts: Vec<(String, String, i64)> = resource_counts::table
        .select((resource_counts::tenant_id, resource_counts::resource_type, resource_counts::n))
        .load(conn)
        .unwrap();
    let mut sums: std::collections::BTreeMap<(String, String), i64> = Default::default();
    for (tenant, kind, n) in counts {
        *sums.entry((tenant, kind)).or_default() += n;
    }
    out.push(("resource_counts", sums.into_iter().map(|row| json!(row)).collect()));

    let rows = events::table
        .order(events::seq)
        .select((events::tenant_id, events::kind, events::user_id, events::payload, events::tenant_seq))
        .load::<(String, String, Option<String>, String, Option<i64>)>(conn)
        .unwrap();
    out.push(("events", rows.into_iter().map(|row| json!(row)).collect()));

    let rows = audit_log::table
        .order(audit_log::seq)
        .select((
            audit_log::tenant_id,
            audit_log::actor,
            audit_log::action,
            audit_log::user_id,
            audit_log::state_before,
            audit_log::state_after,
            audit_log::tenant_seq,
        ))
        .load::<(String, String, String, String, Option<String>, Option<String>, Option<i64>)>(conn)
        .unwrap();
    out.push(("audit_log", rows.into_iter().map(|row| json!(row)).collect()));

    let rows = sessions::table
        .order((sessions::user_pk, sessions::created_at))
        .select((sessions::tenant_id, sessions::user_pk, sessions::revoked_at.is_not_null()))
        .load::<(String, i64, bool)>(conn)
        .unwrap();
    out.push(("sessions", rows.into_iter().map(|(t, pk, revoked)| json!([t, user(Some(pk)), revoked])).collect()));

    let rows = tombstones::table
        .order(tombstones::user_id)
        .select((tombstones::tenant_id, tombstones::user_id))
        .load::<(String, String)>(conn)
        .unwrap();
    out.push(("tombstones", rows.into_iter().map(|row| json!(row)).collect()));

    Tables(
        out.into_iter()
            .map(|(table, rows)| (table, rows.into_iter().map(|row| normalise(row, &ids)).collect()))
            .collect(),
    )
}

#[tokio::test]
async fn both_write_paths_leave_the_same_rows() {
    let sqlite = TestApp::spawn(Backend::Sqlite).await.expect("sqlite");
    let Some(postgres) = TestApp::spawn(Backend::Postgres).await else { return };
    let on_sqlite = writes(&sqlite).await;
    let on_postgres = writes(&postgres).await;
    assert_eq!(on_sqlite.answers, on_postgres.answers, "both backends answer the writes alike");
    let sqlite_rows = tables(&mut sqlite.connection(), &on_sqlite.ids);
    let postgres_rows = tables(&mut postgres.connection(), &on_postgres.ids);
    for ((table, sqlite_rows), (_, postgres_rows)) in sqlite_rows.0.iter().zip(&postgres_rows.0) {
        assert_eq!(sqlite_rows, postgres_rows, "the rows of {table} (SQLite left, PostgreSQL right)");
    }
    // The writes wrote something to every table compared, so that an empty table cannot pass.
    for (table, rows) in &sqlite_rows.0 {
        assert!(!rows.is_empty(), "the writes left no row in {table}");
    }
}

/// Creates made one POST at a time, and the same creates made by one Bulk request (whose
/// creates PostgreSQL writes a chunk at a time, as one statement): what a userName already
/// taken, an inactive account and items leave must be the same row for row.
const CREATES: [&str; 5] = ["ann", "bob", "cy", "ANN", "dee"];

fn create_body(name: &str) -> Value {
    let mut body = json!({"userName": name, "externalId": format!("ext-{name}"), "displayName": format!("{name} Lee"),
        "emails": [{"value": format!("{name}@Example.org"), "type": "Work", "primary": true},
                   {"value": format!("{name}@home.example")}],
        "phoneNumbers": [{"value": "+1 555 0100", "type": "mobile"}]});
    if name == "cy" {
        body["active"] = json!(false);
    }
    body
}

/// The rows of `tables` in an order that does not depend on which chunk committed first: a Bulk
/// request's chunks run side by side, so neither `pk`s nor the events' numbers follow the
/// request's order (the last column of `events` and `audit_log` is that number, left out).
fn unordered(tables: Tables) -> Vec<(&'static str, Vec<String>)> {
    tables
        .0
        .into_iter()
        .map(|(table, rows)| {
            let mut rows: Vec<String> = rows
                .into_iter()
                .map(|mut row| {
                    if matches!(table, "events" | "audit_log") {
                        row.as_array_mut().unwrap().pop();
                    }
                    row.to_string()
                })
                .collect();
            rows.sort();
            (table, rows)
        })
        .collect()
}

async fn a_bulk_create_leaves_the_rows_of_a_single_post(backend: Backend) {
    let Some(posted) = TestApp::spawn(backend).await else { return };
    let bulked = TestApp::spawn(backend).await.expect("a second app on the same backend");
    let mut singly = Transcript::default();
    for name in CREATES {
        singly.record(name, posted.post("/scim/v2/Users", &create_body(name)).await).await;
    }
    let operations: Vec<Value> = CREATES
        .iter()
        .map(|name| json!({"method": "POST", "path": "/Users", "bulkId": name, "data": create_body(name)}))
        .collect();
    let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": operations});
    let res = bulked.post("/scim/v2/Bulk", &body).await;
    assert_eq!(res.status(), 200);
    let answer: Value = res.json().await.unwrap();
    let mut together = Transcript::default();
    for (name, op) in CREATES.iter().zip(answer["Operations"].as_array().unwrap()) {
        let status: u16 = op["status"].as_str().unwrap().parse().unwrap();
        together.answers.push((name.to_string(), status));
        if let Some(location) = op["location"].as_str() {
            together.ids.push(location.rsplit('/').next().unwrap().to_owned());
        }
    }
    assert_eq!(singly.answers, together.answers, "the POSTs and the Bulk operations answer alike");
    let posted_rows = unordered(tables(&mut posted.connection(), &singly.ids));
    let bulked_rows = unordered(tables(&mut bulked.connection(), &together.ids));
    for ((table, posted_rows), (_, bulked_rows)) in posted_rows.iter().zip(&bulked_rows) {
        assert_eq!(posted_rows, bulked_rows, "the rows of {table} (POSTs left, Bulk right)");
    }
}

#[tokio::test]
async fn a_bulk_create_leaves_the_rows_of_a_single_post_on_sqlite() {
    a_bulk_create_leaves_the_rows_of_a_single_post(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_bulk_create_leaves_the_rows_of_a_single_post_on_postgres() {
    a_bulk_create_leaves_the_rows_of_a_single_post(Backend::Postgres).await;
}

/// `users::create_many` on SQLite, which no request reaches (a Bulk request there creates its
/// users one at a time, each in a savepoint of its chunk): each user is written in a savepoint of
/// its own, and a taken userName fails that user alone.
#[tokio::test]
async fn creating_users_together_on_sqlite_fails_a_taken_user_name_alone() {
    use roster::context::Ctx;
    use roster::scim::resource::parse_resource;
    use roster::scim::schema::USER_RESOURCE;

    let Some(app) = TestApp::spawn(Backend::Sqlite).await else { return };
    assert_eq!(app.post("/scim/v2/Users", &json!({"userName": "ann"})).await.status(), 201);
    let mut conn = app.connection();
    let conn: &mut DbConnection = &mut conn;
    let tenant_id: String = tenants::table.filter(tenants::name.eq("default")).select(tenants::id).first(conn).unwrap();
    let ctx = Ctx { tenant_id, actor: "test".into(), now: chrono::Utc::now().naive_utc() };
    let checked: Vec<_> = ["bob", "ANN", "cy"]
        .iter()
        .map(|name| {
            let doc = parse_resource(&USER_RESOURCE, &json!({"userName": name})).unwrap();
            roster::users::check_create(conn, &ctx, doc).unwrap()
        })
        .collect();
    let results = roster::db::write_transaction(conn, |conn| roster::users::create_many(conn, &ctx, &checked)).unwrap();
    let statuses: Vec<u16> = results.iter().map(|r| r.as_ref().map_or_else(|e| e.status.as_u16(), |_| 201)).collect();
    assert_eq!(statuses, [201, 409, 201]);
    let mut names: Vec<String> = users::table.select(users::user_name).load(conn).unwrap();
    names.sort();
    assert_eq!(names, ["ann", "bob", "cy"]);
    let created: i64 = events::table.filter(events::kind.eq("user.created")).count().get_result(conn).unwrap();
    assert_eq!(created, 3, "one event for each user stored, none for the refused one");
}
