//! `/scim/v2/Bulk` (RFC 7644 §3.7): many writes in one request, each through the same rules as
//! its single-resource endpoint.

use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{assert_scim_error, json, TestApp};

const BULK_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
const BULK_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:BulkResponse";

fn bulk(operations: Value) -> Value {
    json!({"schemas": [BULK_REQUEST], "Operations": operations})
}

/// Sends a BulkRequest, asserts the 200 BulkResponse and returns its operations.
async fn send(app: &TestApp, body: &Value) -> Vec<Value> {
    let res = app.post("/scim/v2/Bulk", body).await;
    let status = res.status();
    let body = json(res).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["schemas"], json!([BULK_RESPONSE]));
    body["Operations"].as_array().expect("Operations").clone()
}

fn by_bulk_id<'a>(ops: &'a [Value], bulk_id: &str) -> &'a Value {
    ops.iter().find(|op| op["bulkId"] == bulk_id).unwrap_or_else(|| panic!("no result for {bulk_id}: {ops:?}"))
}

/// The path of a result's `location`, below the server's address.
fn path_of(app: &TestApp, op: &Value) -> String {
    op["location"].as_str().expect("location").strip_prefix(&app.address).expect("an absolute location").to_owned()
}

fn id_of(op: &Value) -> String {
    op["location"].as_str().unwrap().rsplit('/').next().unwrap().to_owned()
}

fn member_ids(group: &Value) -> Vec<String> {
    let mut ids: Vec<String> = group["members"]
        .as_array()
        .map(|m| m.iter().map(|m| m["value"].as_str().unwrap().to_owned()).collect())
        .unwrap_or_default();
    ids.sort();
    ids
}

fn user(name: &str) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name})
}

fn group(name: &str, members: &[&str]) -> Value {
    let members: Vec<Value> = members.iter().map(|m| json!({"value": m})).collect();
    json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": name, "members": members})
}

async fn get_with(app: &TestApp, token: &str, path: &str) -> Value {
    let res = app.get_with(path, token).await;
    assert_eq!(res.status(), 200, "GET {path}");
    json(res).await
}

/// §3.7.2: a group may list users by `bulkId` that are declared after it; every created resource
/// is there afterwards, with the events and audit entries a single POST leaves.
async fn a_group_lists_users_declared_after_it_by_bulk_id(app: TestApp) {
    let ops = send(
        &app,
        &bulk(json!([
            {"method": "POST", "path": "/Groups", "bulkId": "team", "data": group("Team", &["bulkId:ann", "bulkId:bob"])},
            {"method": "POST", "path": "/Users", "bulkId": "ann", "data": user("ann")},
            {"method": "POST", "path": "/Users", "bulkId": "bob", "data": user("bob")},
        ])),
    )
    .await;
    assert_eq!(ops.len(), 3);
    for op in &ops {
        assert_eq!(op["method"], "POST");
        assert_eq!(op["status"], "201", "{op}");
        assert!(op["version"].as_str().is_some_and(|v| v.starts_with("W/")), "{op}");
        assert!(op.get("response").is_none(), "a success carries no error: {op}");
    }
    let (ann, bob) = (by_bulk_id(&ops, "ann"), by_bulk_id(&ops, "bob"));
    assert!(ann["location"].as_str().unwrap().starts_with(&format!("{}/scim/v2/Users/", app.address)));
    let read = app.get_ok(&path_of(&app, ann)).await;
    assert_eq!(read["userName"], "ann");
    assert_eq!(read["meta"]["version"], ann["version"]);
    let team = app.get_ok(&path_of(&app, by_bulk_id(&ops, "team"))).await;
    let mut expected = vec![id_of(ann), id_of(bob)];
    expected.sort();
    assert_eq!(member_ids(&team), expected);

    let reader = app.issue_token("default", "reader", "events,admin");
    let events = get_with(&app, &reader, "/api/v1/events?after=0&limit=100").await;
    let created: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "user.created")
        .map(|e| e["userId"].as_str().unwrap())
        .collect();
    assert!(created.contains(&id_of(ann).as_str()) && created.contains(&id_of(bob).as_str()), "{events}");
    let audit = get_with(&app, &reader, "/api/v1/audit").await;
    let audited: Vec<&Value> =
        audit["entries"].as_array().unwrap().iter().filter(|e| e["userId"] == id_of(ann).as_str()).collect();
    assert_eq!(audited.len(), 1, "{audit}");
    assert_eq!(audited[0]["actor"], "test-idp", "audited as the token's subject");
}

/// PUT, PATCH and DELETE name their resource in `path`, which may itself be a `bulkId`
/// reference; `version` is the If-Match of each operation (§3.7, §3.14).
async fn put_patch_and_delete_honour_version_and_references(app: TestApp) {
    let carol = app.create_user(json!({"userName": "carol"})).await;
    let carol_id = carol["id"].as_str().unwrap();
    let version = carol["meta"]["version"].as_str().unwrap();
    let doomed =
        send(&app, &bulk(json!([{"method": "POST", "path": "/Groups", "bulkId": "g", "data": group("Doomed", &[])}])))
            .await;
    let doomed = id_of(&doomed[0]);
    let ops = send(
        &app,
        &bulk(json!([
            {"method": "PUT", "path": format!("/Users/{carol_id}"), "version": version,
             "data": {"userName": "carol", "displayName": "Carol"}},
            {"method": "PATCH", "path": format!("/Users/{carol_id}"), "version": version,
             "data": {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                      "Operations": [{"op": "replace", "path": "nickName", "value": "stale"}]}},
            {"method": "PATCH", "path": "/Users/bulkId:dan",
             "data": {"Operations": [{"op": "replace", "path": "displayName", "value": "Dan"}]}},
            {"method": "POST", "path": "/Users", "bulkId": "dan", "data": user("dan")},
            {"method": "DELETE", "path": format!("/Groups/{doomed}")},
        ])),
    )
    .await;
    assert_eq!(ops.len(), 5);
    let put = ops.iter().find(|op| op["method"] == "PUT").unwrap();
    assert_eq!(put["status"], "200", "{put}");
    assert_ne!(put["version"], version, "the PUT made a new version");
    let stale = ops.iter().find(|op| op["method"] == "PATCH" && op["location"].as_str().unwrap().ends_with(carol_id));
    let stale = stale.unwrap();
    assert_eq!(stale["status"], "412", "the PATCH named the version the PUT replaced: {stale}");
    assert_eq!(stale["response"]["schemas"], json!(["urn:ietf:params:scim:api:messages:2.0:Error"]));
    assert_eq!(stale["response"]["status"], "412");
    let read = app.get_ok(&format!("/scim/v2/Users/{carol_id}")).await;
    assert_eq!(read["displayName"], "Carol");
    assert!(read.get("nickName").is_none(), "the failed PATCH changed nothing");
    let dan = by_bulk_id(&ops, "dan");
    assert_eq!(app.get_ok(&path_of(&app, dan)).await["displayName"], "Dan");
    let delete = ops.iter().find(|op| op["method"] == "DELETE").unwrap();
    assert_eq!(delete["status"], "204");
    assert_eq!(app.get(&format!("/scim/v2/Groups/{doomed}")).await.status(), 404);
}

/// §3.7.1: two groups that are members of each other are both created, each with the other as
/// member.
async fn circular_references_between_groups_are_resolved(app: TestApp) {
    let ops = send(
        &app,
        &bulk(json!([
            {"method": "POST", "path": "/Groups", "bulkId": "a", "data": group("A", &["bulkId:b"])},
            {"method": "POST", "path": "/Groups", "bulkId": "b", "data": group("B", &["bulkId:a"])},
        ])),
    )
    .await;
    let (a, b) = (by_bulk_id(&ops, "a"), by_bulk_id(&ops, "b"));
    assert_eq!((a["status"].as_str(), b["status"].as_str()), (Some("201"), Some("201")), "{ops:?}");
    let read_a = app.get_ok(&path_of(&app, a)).await;
    let read_b = app.get_ok(&path_of(&app, b)).await;
    assert_eq!(member_ids(&read_a), [id_of(b)]);
    assert_eq!(member_ids(&read_b), [id_of(a)]);
    assert_eq!(read_a["meta"]["version"], a["version"], "the version reported is the one after the members were added");
}

/// A cycle no group's members can break (a user whose `manager` is a user that names it back)
/// fails its operations with 409 (§3.7.1 allows stopping with 409).
async fn a_cycle_through_users_fails_with_409(app: TestApp) {
    let manager = |name: &str, other: &str| {
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                           "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
               "userName": name,
               "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": {"value": format!("bulkId:{other}")}}})
    };
    let ops = send(
        &app,
        &bulk(json!([
            {"method": "POST", "path": "/Users", "bulkId": "x", "data": manager("x", "y")},
            {"method": "POST", "path": "/Users", "bulkId": "y", "data": manager("y", "x")},
        ])),
    )
    .await;
    assert_eq!(ops.len(), 2);
    for op in &ops {
        assert_eq!(op["status"], "409", "{op}");
        assert_eq!(op["response"]["scimType"], "invalidValue");
    }
}

/// §3.7.3: after `failOnErrors` errors the rest is neither performed nor listed.
async fn fail_on_errors_stops_after_that_many_errors(app: TestApp) {
    let mut body = bulk(json!([
        {"method": "POST", "path": "/Users", "bulkId": "bad", "data": {"displayName": "no userName"}},
        {"method": "POST", "path": "/Users", "bulkId": "late", "data": user("late")},
    ]));
    body["failOnErrors"] = json!(1);
    let ops = send(&app, &body).await;
    assert_eq!(ops.len(), 1, "{ops:?}");
    assert_eq!(ops[0]["status"], "400");
    assert_eq!(ops[0]["response"]["scimType"], "invalidValue");
    let found = app.get_ok("/scim/v2/Users?filter=userName%20eq%20%22late%22").await;
    assert_eq!(found["totalResults"], 0, "the operation after the error was not performed");
}

/// Without `failOnErrors`, a failing operation fails alone: an unknown method or path, a
/// `bulkId` no POST declares, or one whose POST failed.
async fn each_operation_fails_on_its_own(app: TestApp) {
    let ops = send(
        &app,
        &bulk(json!([
            {"method": "GET", "path": "/Users"},
            {"method": "POST", "path": "/Widgets", "bulkId": "w", "data": {}},
            {"method": "POST", "path": "/Groups", "bulkId": "g", "data": group("G", &["bulkId:nobody"])},
            {"method": "POST", "path": "/Users", "bulkId": "dup", "data": user("erin")},
            {"method": "POST", "path": "/Users", "bulkId": "dup2", "data": user("erin")},
            {"method": "PATCH", "path": "/Users/bulkId:dup2",
             "data": {"Operations": [{"op": "replace", "path": "nickName", "value": "e"}]}},
            {"method": "post", "path": "/users/", "bulkId": "frank", "data": user("frank")},
            {"method": "POST", "path": "/Groups", "data": group("Without bulkId", &[])},
        ])),
    )
    .await;
    assert_eq!(ops.len(), 8);
    let status: Vec<&str> = ops.iter().map(|op| op["status"].as_str().unwrap()).collect();
    assert_eq!(status, ["400", "400", "409", "201", "409", "409", "201", "201"], "{ops:?}");
    assert!(ops[7].get("bulkId").is_none());
    assert_eq!(ops[0]["response"]["scimType"], "invalidSyntax");
    assert_eq!(ops[4]["response"]["scimType"], "uniqueness", "the second erin");
    assert!(ops[5]["response"]["detail"].as_str().unwrap().contains("dup2"), "{}", ops[5]);
    assert_eq!(ops[6]["method"], "post", "the method as sent");
}

/// A `bulkId` declared twice fails the second POST only: references still find the first.
async fn a_bulk_id_declared_twice_fails_the_second_post_only(app: TestApp) {
    let ops = send(
        &app,
        &bulk(json!([
            {"method": "PATCH", "path": "/Users/bulkId:d",
             "data": {"Operations": [{"op": "replace", "path": "nickName", "value": "G"}]}},
            {"method": "POST", "path": "/Users", "bulkId": "d", "data": user("gina")},
            {"method": "POST", "path": "/Users", "bulkId": "d", "data": user("hank")},
        ])),
    )
    .await;
    let status: Vec<&str> = ops.iter().map(|op| op["status"].as_str().unwrap()).collect();
    assert_eq!(status, ["200", "201", "400"], "{ops:?}");
    assert_eq!(ops[2]["response"]["scimType"], "invalidSyntax");
    assert_eq!(app.get_ok(&path_of(&app, &ops[1])).await["nickName"], "G");
    let hank = app.get_ok("/scim/v2/Users?filter=userName%20eq%20%22hank%22").await;
    assert_eq!(hank["totalResults"], 0);
}

/// §3.7.4: more than `maxOperations` operations, or a body over `maxPayloadSize`, is refused
/// whole with 413 and a SCIM error; both limits are the ones ServiceProviderConfig advertises.
async fn limits_are_advertised_and_enforced_with_413(app: TestApp) {
    let config = app.get_ok("/scim/v2/ServiceProviderConfig").await;
    let limits = &config["bulk"];
    assert_eq!(limits["supported"], true);
    assert_eq!(limits["maxOperations"], 1000);
    assert_eq!(limits["maxPayloadSize"].as_u64(), Some(app.settings.body_limit as u64));

    let one = json!({"method": "DELETE", "path": "/Users/nobody"});
    let res = app.post("/scim/v2/Bulk", &bulk(Value::Array(vec![one.clone(); 1001]))).await;
    let err = assert_scim_error(res, 413).await;
    assert!(err["detail"].as_str().unwrap().contains("1000"), "{err}");
    let ops = send(&app, &bulk(Value::Array(vec![one; 1000]))).await;
    assert_eq!(ops.len(), 1000, "maxOperations operations are accepted");

    let big = "x".repeat(app.settings.body_limit);
    let res = app
        .post("/scim/v2/Bulk", &bulk(json!([{"method": "POST", "path": "/Users", "data": {"userName": big}}])))
        .await;
    assert_scim_error(res, 413).await;
}

/// A malformed top level fails the whole request with 400 `invalidSyntax`; a read-only token
/// may not write through /Bulk.
async fn malformed_requests_and_read_only_tokens_are_refused(app: TestApp) {
    for body in [json!({"schemas": [BULK_REQUEST]}), json!({"schemas": [BULK_REQUEST], "Operations": {}}), json!([])] {
        let err = assert_scim_error(app.post("/scim/v2/Bulk", &body).await, 400).await;
        assert_eq!(err["scimType"], "invalidSyntax", "{body}");
    }
    let reader = app.issue_token("default", "reader", "scim:read");
    let res = app
        .client
        .post(app.url("/scim/v2/Bulk"))
        .bearer_auth(reader)
        .json(&bulk(json!([{"method": "POST", "path": "/Users", "bulkId": "r", "data": user("reader")}])))
        .send()
        .await
        .unwrap();
    assert_scim_error(res, 403).await;
}

/// An operation on another tenant's resource finds nothing there (404) and changes nothing;
/// a group cannot take another tenant's user as member; the operations around them, in the same
/// chunk, are stored in the token's tenant only.
async fn operations_stay_inside_the_tokens_tenant(app: TestApp) {
    let rival_tenant = roster::db::tenants::create(&mut app.connection(), "rival").unwrap();
    let rival = app.issue_token("rival", "idp", "scim");
    let res =
        app.client.post(app.url("/scim/v2/Users")).bearer_auth(&rival).json(&user("theirs")).send().await.unwrap();
    assert_eq!(res.status(), 201);
    let theirs = json(res).await["id"].as_str().unwrap().to_owned();
    let res = app.client.post(app.url("/scim/v2/Groups")).bearer_auth(&rival).json(&group("Rivals", &[&theirs]));
    let res = res.send().await.unwrap();
    assert_eq!(res.status(), 201);
    let their_group = json(res).await["id"].as_str().unwrap().to_owned();
    let ops = send(
        &app,
        &bulk(json!([
            {"method": "PATCH", "path": format!("/Users/{theirs}"),
             "data": {"Operations": [{"op": "replace", "path": "active", "value": false}]}},
            {"method": "POST", "path": "/Users", "bulkId": "mine", "data": user("mine")},
            {"method": "PUT", "path": format!("/Users/{theirs}"), "data": user("taken-over")},
            {"method": "POST", "path": "/Groups", "bulkId": "poach", "data": group("Poachers", &[&theirs])},
            {"method": "PATCH", "path": format!("/Groups/{their_group}"),
             "data": {"Operations": [{"op": "add", "path": "members", "value": [{"value": "bulkId:mine"}]}]}},
            {"method": "DELETE", "path": format!("/Groups/{their_group}")},
            {"method": "DELETE", "path": format!("/Users/{theirs}")},
        ])),
    )
    .await;
    let status: Vec<&str> = ops.iter().map(|op| op["status"].as_str().unwrap()).collect();
    assert_eq!(status[0], "404");
    assert_eq!(status[1], "201");
    assert_eq!(status[2], "404");
    assert!(status[3].starts_with('4'), "another tenant's user is no member candidate: {}", ops[3]);
    assert_eq!(&status[4..], ["404", "404", "404"], "{ops:?}");

    let read = get_with(&app, &rival, &format!("/scim/v2/Users/{theirs}")).await;
    assert_eq!((read["active"].as_bool(), read["userName"].as_str()), (Some(true), Some("theirs")));
    let their = get_with(&app, &rival, &format!("/scim/v2/Groups/{their_group}")).await;
    assert_eq!(member_ids(&their), [theirs]);
    assert_eq!(app.get_ok("/scim/v2/Groups?filter=displayName%20eq%20%22Poachers%22").await["totalResults"], 0);
    let mine = app.get_ok(&path_of(&app, &ops[1])).await;
    assert_eq!(mine["userName"], "mine");
    let mut conn = app.connection();
    let count = |conn: &mut _, tenant: &str, kind| roster::db::tenants::resource_count(conn, tenant, kind).unwrap();
    assert_eq!((count(&mut conn, &rival_tenant.id, "User"), count(&mut conn, &rival_tenant.id, "Group")), (1, 1));
    let own = roster::db::tenants::by_name(&mut conn, "default").unwrap().unwrap().id;
    assert_eq!((count(&mut conn, &own, "User"), count(&mut conn, &own, "Group")), (1, 0));
}

/// A Bulk request of N operations costs its tenant what N requests do: past the tenant's burst,
/// its operations wait for the rate, and the tenant's next request finds the bucket spent.
async fn each_operation_counts_against_the_tenants_rate(backend: crate::helpers::Backend) {
    let Some(db) = crate::helpers::TestDatabase::create(backend) else { return };
    let app = TestApp::spawn_with(db, |s| {
        s.rate_limit_per_tenant = 5;
        s.rate_burst_per_tenant = 10;
    })
    .await;
    let operations: Vec<Value> = (0..20)
        .map(|n| json!({"method": "POST", "path": "/Users", "bulkId": format!("u{n}"), "data": user(&format!("paced{n}"))}))
        .collect();
    let started = std::time::Instant::now();
    let ops = send(&app, &bulk(Value::Array(operations))).await;
    let elapsed = started.elapsed();
    assert!(ops.iter().all(|op| op["status"] == "201"), "{ops:?}");
    // 21 requests' worth at 5/s with a burst of 10: about two seconds of waiting.
    assert!(elapsed >= std::time::Duration::from_millis(1600), "took {elapsed:?}");
    // The bucket is spent: of a few requests right after, one at least is refused (a token
    // comes back every 200 ms, so one or two may pass on a slow machine).
    let mut refused = false;
    for n in 0..5 {
        let res = app.post("/scim/v2/Users", &user(&format!("next{n}"))).await;
        refused |= res.status() == 429;
    }
    assert!(refused, "the tenant's requests after the Bulk were all served");
}

/// What the database holds for the default tenant: users and groups as the kept counts say,
/// events, audit entries, and the searchable values (`user_values`) equal to `value`.
fn footprint(app: &TestApp, value: &str) -> [i64; 5] {
    use diesel::prelude::*;
    use roster::db::schema::{audit_log, events, user_values};
    let mut conn = app.connection();
    let tenant = roster::db::tenants::by_name(&mut conn, "default").unwrap().unwrap().id;
    let count = |conn: &mut _, kind| roster::db::tenants::resource_count(conn, &tenant, kind).unwrap();
    let (users, groups) = (count(&mut conn, "User"), count(&mut conn, "Group"));
    let events: i64 = events::table.filter(events::tenant_id.eq(&tenant)).count().get_result(&mut *conn).unwrap();
    let audit: i64 = audit_log::table.filter(audit_log::tenant_id.eq(&tenant)).count().get_result(&mut *conn).unwrap();
    let values: i64 = user_values::table
        .filter(user_values::tenant_id.eq(&tenant))
        .filter(user_values::value.eq(value))
        .count()
        .get_result(&mut *conn)
        .unwrap();
    [users, groups, events, audit, values]
}

fn user_with_email(name: &str) -> Value {
    json!({"userName": name, "emails": [{"value": format!("{name}@example.com"), "type": "work"}]})
}

/// Operations that fail in the middle of a chunk — one refused by a unique index, one refused by
/// the lifecycle after it had written the account, its searchable values, its event and its audit
/// entry — leave nothing behind, and the operations before and after them in the same chunk are
/// all stored, each with what a single POST leaves.
async fn a_failure_in_the_middle_of_a_chunk_rolls_back_only_that_operation(app: TestApp) {
    let mut doomed = user_with_email("doomed");
    doomed["urn:ietf:params:scim:schemas:extension:roster:2.0:User"] = json!({"formerMember": true});
    let ops = send(
        &app,
        &bulk(json!([
            {"method": "POST", "path": "/Users", "bulkId": "ann", "data": user_with_email("ann")},
            {"method": "POST", "path": "/Users", "bulkId": "doomed", "data": doomed},
            {"method": "POST", "path": "/Users", "bulkId": "twin", "data": user_with_email("ANN")},
            {"method": "POST", "path": "/Users", "bulkId": "bob", "data": user_with_email("bob")},
            {"method": "POST", "path": "/Groups", "bulkId": "g", "data": group("G", &["bulkId:ann", "bulkId:bob"])},
            {"method": "PATCH", "path": "/Users/bulkId:bob",
             "data": {"Operations": [{"op": "replace", "path": "nickName", "value": "Bobby"}]}},
        ])),
    )
    .await;
    let status: Vec<&str> = ops.iter().map(|op| op["status"].as_str().unwrap()).collect();
    assert_eq!(status, ["201", "409", "409", "201", "201", "200"], "{ops:?}");
    assert_eq!(ops[2]["response"]["scimType"], "uniqueness");
    assert!(ops[1].get("location").is_none(), "a failed create names no resource: {}", ops[1]);

    assert_eq!(
        footprint(&app, "doomed@example.com"),
        [2, 1, 3, 2, 0],
        "users, groups, events (two creates, one update), audit, doomed's values"
    );
    assert_eq!(footprint(&app, "bob@example.com")[4], 1, "bob's email is searchable");
    let found = app.get_ok("/scim/v2/Users?filter=emails.value%20eq%20%22doomed@example.com%22").await;
    assert_eq!(found["totalResults"], 0);
    let listed = app.get_ok("/scim/v2/Users").await;
    assert_eq!(listed["totalResults"], 2);
    let bob = app.get_ok(&path_of(&app, &ops[3])).await;
    assert_eq!(bob["nickName"], "Bobby");
    assert_eq!(bob["meta"]["version"], ops[5]["version"]);
    let g = app.get_ok(&path_of(&app, &ops[4])).await;
    let mut expected = vec![id_of(&ops[0]), id_of(&ops[3])];
    expected.sort();
    assert_eq!(member_ids(&g), expected);
}

/// §3.7.3 within a chunk: the request stops right at the `failOnErrors`-th error, whether the
/// error needed the database or not; what ran before it is stored, what comes after is neither
/// performed nor listed.
async fn fail_on_errors_stops_inside_a_chunk(app: TestApp) {
    let mut body = bulk(json!([
        {"method": "POST", "path": "/Users", "bulkId": "a", "data": user("first")},
        {"method": "POST", "path": "/Users", "bulkId": "b", "data": user("first")},
        {"method": "POST", "path": "/Users", "bulkId": "c", "data": user("second")},
        {"method": "GET", "path": "/Users"},
        {"method": "POST", "path": "/Users", "bulkId": "d", "data": user("third")},
        {"method": "DELETE", "path": "/Users/bulkId:a"},
    ]));
    body["failOnErrors"] = json!(2);
    let ops = send(&app, &body).await;
    let status: Vec<&str> = ops.iter().map(|op| op["status"].as_str().unwrap()).collect();
    assert_eq!(status, ["201", "409", "201", "400"], "{ops:?}");
    for (name, stored) in [("first", 1), ("second", 1), ("third", 0)] {
        let found = app.get_ok(&format!("/scim/v2/Users?filter=userName%20eq%20%22{name}%22")).await;
        assert_eq!(found["totalResults"], stored, "{name}");
    }
    assert_eq!(app.get_ok(&path_of(&app, &ops[0])).await["userName"], "first", "the DELETE after the stop did not run");
    assert_eq!(footprint(&app, "")[..4], [2, 0, 2, 2]);
}

/// Installs, in the test's database, a check that fails the commit of any transaction that
/// created a user named `doomed`: on PostgreSQL a deferred constraint trigger, on SQLite a
/// deferred foreign key that such a user's insert breaks. Both are checked only at COMMIT, after
/// every statement of the transaction succeeded.
fn refuse_commits_creating_doomed(app: &TestApp) {
    use diesel::connection::SimpleConnection;
    let mut conn = app.connection();
    let sql = if app.db.backend == crate::helpers::Backend::Postgres {
        "CREATE FUNCTION test_refuse_doomed() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
             IF NEW.user_name = 'doomed' THEN RAISE EXCEPTION 'doomed may not be committed'; END IF;
             RETURN NULL;
         END $$;
         CREATE CONSTRAINT TRIGGER test_refuse_doomed AFTER INSERT ON users
             DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION test_refuse_doomed();"
    } else {
        "CREATE TABLE test_parent (id INTEGER PRIMARY KEY);
         CREATE TABLE test_child (parent INTEGER REFERENCES test_parent (id) DEFERRABLE INITIALLY DEFERRED);
         CREATE TRIGGER test_refuse_doomed AFTER INSERT ON users WHEN NEW.user_name = 'doomed'
         BEGIN INSERT INTO test_child VALUES (1); END;"
    };
    conn.batch_execute(sql).unwrap();
}

/// When a chunk's commit fails, no operation of it is reported done: each fails, and none of
/// them left anything. Operations reported done are stored. SQLite runs the three in one chunk;
/// PostgreSQL writes the two users side by side, each in a chunk of its own (the tests' pool
/// gives two lanes), so there only doomed's fails, and the group finds ann.
async fn a_failed_commit_fails_every_operation_of_its_chunk(app: TestApp) {
    refuse_commits_creating_doomed(&app);
    let ops = send(
        &app,
        &bulk(json!([
            {"method": "POST", "path": "/Users", "bulkId": "ann", "data": user_with_email("ann")},
            {"method": "POST", "path": "/Users", "bulkId": "doomed", "data": user_with_email("doomed")},
            {"method": "POST", "path": "/Groups", "bulkId": "g", "data": group("G", &["bulkId:ann"])},
        ])),
    )
    .await;
    assert_eq!(ops.len(), 3, "{ops:?}");
    let statuses: Vec<&str> = ops.iter().map(|op| op["status"].as_str().unwrap()).collect();
    let expected =
        if app.db.backend == crate::helpers::Backend::Postgres { ["201", "500", "201"] } else { ["500", "500", "500"] };
    assert_eq!(statuses, expected, "{ops:?}");
    for op in ops.iter().filter(|op| op["status"] == "500") {
        assert!(op.get("location").is_none() && op.get("version").is_none(), "{op}");
        assert!(op["response"]["detail"].as_str().unwrap().contains("did not commit"), "{op}");
    }
    let stored = if statuses[0] == "201" { [1, 1, 1, 1, 1] } else { [0, 0, 0, 0, 0] };
    assert_eq!(footprint(&app, "ann@example.com"), stored, "users, groups, events, audit, ann's values");
    let doomed = app.get_ok("/scim/v2/Users?filter=userName%20eq%20%22doomed%22").await;
    assert_eq!(doomed["totalResults"], 0);

    // The next request's chunk is not touched by the earlier failure.
    let ops =
        send(&app, &bulk(json!([{"method": "POST", "path": "/Users", "bulkId": "cy", "data": user("cy")}]))).await;
    assert_eq!(ops[0]["status"], "201", "{ops:?}");
    assert_eq!(app.get_ok(&path_of(&app, &ops[0])).await["userName"], "cy");
}

/// §3.7.1 with members written as clients do: `"Value"` in another case, or bare strings.
async fn cycles_through_members_written_in_any_form_are_resolved(app: TestApp) {
    let ops = send(
        &app,
        &bulk(json!([
            {"method": "POST", "path": "/Groups", "bulkId": "a",
             "data": {"displayName": "A", "Members": [{"Value": "bulkId:b"}]}},
            {"method": "POST", "path": "/Groups", "bulkId": "b", "data": {"displayName": "B", "members": ["bulkId:a"]}},
        ])),
    )
    .await;
    let (a, b) = (by_bulk_id(&ops, "a"), by_bulk_id(&ops, "b"));
    assert_eq!((a["status"].as_str(), b["status"].as_str()), (Some("201"), Some("201")), "{ops:?}");
    let read_a = app.get_ok(&path_of(&app, a)).await;
    assert_eq!(member_ids(&read_a), [id_of(b)]);
    assert_eq!(member_ids(&app.get_ok(&path_of(&app, b)).await), [id_of(a)]);
    assert_eq!(read_a["meta"]["version"], a["version"]);
}

/// An operation the tenant's rate refuses (the Bulk would wait too long for it) fails with 429
/// and counts for `failOnErrors`: the request stops after that many, and nothing after the
/// first refusal is stored.
async fn operations_refused_by_the_rate_are_429_and_count_for_fail_on_errors(backend: crate::helpers::Backend) {
    let Some(db) = crate::helpers::TestDatabase::create(backend) else { return };
    let app = TestApp::spawn_with(db, |s| {
        s.rate_limit_per_tenant = 1;
        s.rate_burst_per_tenant = 1;
    })
    .await;
    let operations: Vec<Value> = (0..12)
        .map(|n| json!({"method": "POST", "path": "/Users", "bulkId": format!("u{n}"), "data": user(&format!("slow{n}"))}))
        .collect();
    let mut body = bulk(Value::Array(operations));
    body["failOnErrors"] = json!(2);
    let ops = send(&app, &body).await;
    let created = ops.iter().take_while(|op| op["status"] == "201").count();
    // One operation a second, for at most the five seconds a Bulk waits for its rate.
    assert!((2..=7).contains(&created), "{ops:?}");
    assert_eq!(ops.len(), created + 2, "listing stops at the second error: {ops:?}");
    for op in &ops[created..] {
        assert_eq!(op["status"], "429", "{op}");
        assert_eq!(op["response"]["status"], "429");
    }
    // Read on the database: the tenant's own requests are still held to its rate.
    assert_eq!(footprint(&app, "")[0], created as i64, "only the operations reported 201 are stored");
}

both_backends!(by_backend: operations_refused_by_the_rate_are_429_and_count_for_fail_on_errors);

both_backends!(by_backend: each_operation_counts_against_the_tenants_rate);

/// On PostgreSQL only creates share a chunk: a PATCH between two POSTs runs in a chunk of its
/// own (its row locks are not held in the request's order), so the failed commit of the first
/// POST's chunk does not touch it. SQLite runs all three in one chunk.
async fn on_postgres_only_creates_share_a_chunk(app: TestApp) {
    refuse_commits_creating_doomed(&app);
    let bob = app.create_user(json!({"userName": "bob"})).await;
    let bob_id = bob["id"].as_str().unwrap();
    let ops = send(
        &app,
        &bulk(json!([
            {"method": "POST", "path": "/Users", "bulkId": "doomed", "data": user("doomed")},
            {"method": "PATCH", "path": format!("/Users/{bob_id}"),
             "data": {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                      "Operations": [{"op": "replace", "path": "displayName", "value": "Bob"}]}},
            {"method": "POST", "path": "/Users", "bulkId": "ann", "data": user("ann")},
        ])),
    )
    .await;
    let statuses: Vec<&str> = ops.iter().map(|op| op["status"].as_str().unwrap()).collect();
    if app.db.backend == crate::helpers::Backend::Postgres {
        assert_eq!(statuses, ["500", "200", "201"], "{ops:?}");
        assert_eq!(app.get_ok(&format!("/scim/v2/Users/{bob_id}")).await["displayName"], "Bob");
    } else {
        assert_eq!(statuses, ["500", "500", "500"], "{ops:?}");
    }
}

/// Every user of the default tenant, by id: its userName.
async fn user_names(app: &TestApp) -> std::collections::HashMap<String, String> {
    let listed = app.get_ok("/scim/v2/Users?count=1000").await;
    listed["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["id"].as_str().unwrap().to_owned(), u["userName"].as_str().unwrap().to_owned()))
        .collect()
}

/// Enough creates for several chunks (30 operations each on PostgreSQL, where they run side by
/// side): the results come back in the request's order, each naming the resource its own
/// operation created; groups and a PATCH that refer to users created in other chunks — before
/// and after them in the request — wait for them and find them; and of two creates of one
/// userName, the first in the request's order wins, whichever chunk each would fall in.
async fn a_wave_of_chunks_answers_in_order_and_resolves_references_across_chunks(app: TestApp) {
    let mut operations = vec![json!({"method": "POST", "path": "/Groups", "bulkId": "early",
        "data": group("Early", &["bulkId:u5", "bulkId:u70", "bulkId:u149"])})];
    for n in 0..150 {
        let name = if n == 40 { "U3".to_owned() } else { format!("u{n}") };
        operations.push(json!({"method": "POST", "path": "/Users", "bulkId": format!("u{n}"), "data": user(&name)}));
    }
    operations.push(json!({"method": "POST", "path": "/Groups", "bulkId": "late",
        "data": group("Late", &["bulkId:u0", "bulkId:u61", "bulkId:u120"])}));
    operations.push(json!({"method": "PATCH", "path": "/Users/bulkId:u100",
        "data": {"Operations": [{"op": "replace", "path": "nickName", "value": "Hundred"}]}}));
    let ops = send(&app, &bulk(Value::Array(operations))).await;
    assert_eq!(ops.len(), 153);
    assert_eq!(ops[0]["bulkId"], "early");
    let names = user_names(&app).await;
    for n in 0..150 {
        let op = &ops[n + 1];
        assert_eq!(op["bulkId"], format!("u{n}"), "results in the request's order");
        if n == 40 {
            assert_eq!(op["status"], "409", "the second create of u3 loses: {op}");
            assert_eq!(op["response"]["scimType"], "uniqueness");
            continue;
        }
        assert_eq!(op["status"], "201", "{op}");
        assert_eq!(names[&id_of(op)], format!("u{n}"), "the location names the operation's own user");
    }
    assert_eq!(names.len(), 149);
    let ids = |ns: &[usize]| {
        let mut ids: Vec<String> = ns.iter().map(|&n| id_of(&ops[n + 1])).collect();
        ids.sort();
        ids
    };
    assert_eq!(ops[0]["status"], "201", "{}", ops[0]);
    assert_eq!(member_ids(&app.get_ok(&path_of(&app, &ops[0])).await), ids(&[5, 70, 149]));
    assert_eq!(ops[151]["status"], "201", "{}", ops[151]);
    assert_eq!(member_ids(&app.get_ok(&path_of(&app, &ops[151])).await), ids(&[0, 61, 120]));
    assert_eq!(ops[152]["status"], "200", "{}", ops[152]);
    assert_eq!(app.get_ok(&path_of(&app, &ops[101])).await["nickName"], "Hundred");
}

/// §3.7.3 across chunks: `failOnErrors` counts the errors of the whole request, not of a chunk.
/// The errors here fall 35 operations apart, so in different chunks on PostgreSQL: the request
/// stops at the third, and nothing after it runs or is listed.
async fn fail_on_errors_counts_errors_across_chunks(app: TestApp) {
    let bad = [10, 45, 80, 95];
    let operations: Vec<Value> = (0..100)
        .map(|n| {
            let data = if bad.contains(&n) { json!({"displayName": "no userName"}) } else { user(&format!("c{n}")) };
            json!({"method": "POST", "path": "/Users", "bulkId": format!("c{n}"), "data": data})
        })
        .collect();
    let mut body = bulk(Value::Array(operations));
    body["failOnErrors"] = json!(3);
    let ops = send(&app, &body).await;
    assert_eq!(ops.len(), 81, "listing stops at the third error");
    for (n, op) in ops.iter().enumerate() {
        let expected = if bad.contains(&n) { "400" } else { "201" };
        assert_eq!(op["status"], expected, "operation {n}: {op}");
    }
    let names = user_names(&app).await;
    assert_eq!(names.len(), 78);
    assert!(!names.values().any(|name| name == "c81" || name == "c99"), "nothing after the stop was stored");
}

/// §3.7: a chunk whose commit fails fails its own operations only. The chunks before it, beside
/// it (PostgreSQL runs several at once) and after it stand: every operation reported 201 is
/// stored, every one reported failed left nothing.
async fn a_failed_commit_leaves_the_other_chunks_committed(app: TestApp) {
    refuse_commits_creating_doomed(&app);
    let operations: Vec<Value> = (0..100)
        .map(|n| {
            let name = if n == 40 { "doomed".to_owned() } else { format!("d{n}") };
            json!({"method": "POST", "path": "/Users", "bulkId": format!("d{n}"), "data": user(&name)})
        })
        .collect();
    let ops = send(&app, &bulk(Value::Array(operations))).await;
    assert_eq!(ops.len(), 100);
    assert_eq!(ops[40]["status"], "500", "{}", ops[40]);
    let names = user_names(&app).await;
    let stored: Vec<usize> = (0..100).filter(|n| names.values().any(|name| *name == format!("d{n}"))).collect();
    let reported: Vec<usize> = (0..100).filter(|&n| ops[n]["status"] == "201").collect();
    assert_eq!(stored, reported, "exactly the operations reported done are stored");
    for n in (0..100).filter(|n| !reported.contains(n)) {
        assert_eq!(ops[n]["status"], "500", "{}", ops[n]);
    }
    if app.db.backend == crate::helpers::Backend::Postgres {
        // The tests' pool gives two lanes: the chunk of 0..50 failed, 50..100 ran beside it.
        assert_eq!(reported, (50..100).collect::<Vec<_>>());
    }
}

/// The users' creates of a chunk are written together (on PostgreSQL as one statement), yet
/// each stands or fails alone: a userName an existing user has, an invalid userName, and a
/// userName an earlier operation of the request took fail with their own status, and every
/// other create answers its own location and version and leaves what a single POST leaves.
async fn users_written_together_fail_one_by_one(app: TestApp) {
    app.create_user(json!({"userName": "taken"})).await;
    let operations: Vec<Value> = (0..60)
        .map(|n| {
            let data = match n {
                7 => user("TAKEN"),
                20 => user("k\u{200B}20"),
                33 => user("K2"),
                _ => user_with_email(&format!("k{n}")),
            };
            json!({"method": "POST", "path": "/Users", "bulkId": format!("k{n}"), "data": data})
        })
        .collect();
    let ops = send(&app, &bulk(Value::Array(operations))).await;
    assert_eq!(ops.len(), 60);
    for (n, op) in ops.iter().enumerate() {
        assert_eq!(op["bulkId"], format!("k{n}"), "results in the request's order");
        match n {
            7 | 33 => {
                assert_eq!(op["status"], "409", "{op}");
                assert_eq!(op["response"]["scimType"], "uniqueness", "{op}");
                assert!(op.get("location").is_none(), "{op}");
            }
            20 => {
                assert_eq!(op["status"], "400", "{op}");
                assert_eq!(op["response"]["scimType"], "invalidValue", "{op}");
            }
            _ => {
                assert_eq!(op["status"], "201", "{op}");
                let read = app.get_ok(&path_of(&app, op)).await;
                assert_eq!(read["userName"], format!("k{n}"), "the location names the operation's own user");
                assert_eq!(read["meta"]["version"], op["version"], "{op}");
                assert_eq!(read["emails"][0]["value"], format!("k{n}@example.com"));
            }
        }
    }
    assert_eq!(footprint(&app, "k59@example.com"), [58, 0, 58, 58, 1], "users, groups, events, audit, k59's values");
    let found = app.get_ok("/scim/v2/Users?filter=emails.value%20eq%20%22k31@example.com%22").await;
    assert_eq!(found["totalResults"], 1, "the items of a user written together are searchable");
    let taken = app.get_ok("/scim/v2/Users?filter=userName%20eq%20%22taken%22").await;
    assert_eq!(taken["totalResults"], 1, "the existing user is untouched");
}

both_backends!(
    a_group_lists_users_declared_after_it_by_bulk_id,
    on_postgres_only_creates_share_a_chunk,
    put_patch_and_delete_honour_version_and_references,
    circular_references_between_groups_are_resolved,
    a_cycle_through_users_fails_with_409,
    fail_on_errors_stops_after_that_many_errors,
    each_operation_fails_on_its_own,
    a_bulk_id_declared_twice_fails_the_second_post_only,
    limits_are_advertised_and_enforced_with_413,
    malformed_requests_and_read_only_tokens_are_refused,
    operations_stay_inside_the_tokens_tenant,
    a_failure_in_the_middle_of_a_chunk_rolls_back_only_that_operation,
    fail_on_errors_stops_inside_a_chunk,
    a_failed_commit_fails_every_operation_of_its_chunk,
    cycles_through_members_written_in_any_form_are_resolved,
    a_wave_of_chunks_answers_in_order_and_resolves_references_across_chunks,
    fail_on_errors_counts_errors_across_chunks,
    a_failed_commit_leaves_the_other_chunks_committed,
    users_written_together_fail_one_by_one,
);
