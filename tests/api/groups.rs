//! `/scim/v2/Groups` with memberships, as Okta's Group Push and Entra's group provisioning use it.

use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{assert_scim_error, json, TestApp};

async fn new_user(app: &TestApp, name: &str) -> String {
    let body = app.create_user(json!({"userName": name, "displayName": name.to_uppercase()})).await;
    body["id"].as_str().unwrap().to_owned()
}

async fn new_group(app: &TestApp, name: &str, members: &[&str]) -> Value {
    let members: Vec<Value> = members.iter().map(|id| json!({"value": id})).collect();
    let res = app.post("/scim/v2/Groups", &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": name, "members": members})).await;
    let status = res.status();
    let body = json(res).await;
    assert_eq!(status, 201, "{body}");
    body
}

fn member_ids(group: &Value) -> Vec<String> {
    let mut ids: Vec<String> = group["members"]
        .as_array()
        .map(|m| m.iter().map(|m| m["value"].as_str().unwrap().to_owned()).collect())
        .unwrap_or_default();
    ids.sort();
    ids
}

fn sorted(ids: &[&String]) -> Vec<String> {
    let mut v: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

/// The number in an ETag such as `W/"3"`.
fn version(etag: &str) -> i64 {
    etag.trim_start_matches("W/").trim_matches('"').parse().unwrap()
}

fn ops(ops: Value) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops})
}

async fn create_read_and_list_groups(app: TestApp) {
    let (a, b) = (new_user(&app, "ann").await, new_user(&app, "bob").await);
    let res = app.post("/scim/v2/Groups", &json!({"displayName": "Tour Guides", "externalId": "okta-g1", "members": [{"value": a}, {"value": b, "display": "Bob as Okta knows him"}]})).await;
    assert_eq!(res.status(), 201);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let group = json(res).await;
    let id = group["id"].as_str().unwrap();
    assert_eq!(location, format!("{}/scim/v2/Groups/{id}", app.address));
    assert_eq!(group["schemas"], json!(["urn:ietf:params:scim:schemas:core:2.0:Group"]));
    assert_eq!(member_ids(&group), sorted(&[&a, &b]));
    let first = group["members"].as_array().unwrap().iter().find(|m| m["value"] == a.as_str()).unwrap();
    assert_eq!(first["display"], "ANN", "without a display sent, the user's displayName");
    assert_eq!(first["type"], "User");
    let second = group["members"].as_array().unwrap().iter().find(|m| m["value"] == b.as_str()).unwrap();
    assert_eq!(second["display"], "Bob as Okta knows him", "a display sent is kept");
    assert_eq!(first["$ref"], format!("{}/scim/v2/Users/{a}", app.address));
    assert_eq!(app.get_ok(&format!("/scim/v2/Groups/{id}")).await, group);
    let slim = app.get_ok(&format!("/scim/v2/Groups/{id}?excludedAttributes=members")).await;
    assert!(slim.get("members").is_none() && slim["displayName"] == "Tour Guides");
    // Filters Okta and Entra send.
    for filter in [
        "displayName eq \"tour guides\"",
        "externalId eq \"okta-g1\"",
        &format!("members[value eq \"{a}\"]"),
        &format!("members.value eq \"{b}\""),
    ] {
        let found =
            app.get_ok(&format!("/scim/v2/Groups?filter={}&excludedAttributes=members", urlencoding(filter))).await;
        assert_eq!(found["totalResults"], 1, "{filter}");
        assert!(found["Resources"][0].get("members").is_none());
    }
    // The user's readOnly `groups` reflects the membership, and users can be found by group.
    let user = app.get_ok(&format!("/scim/v2/Users/{a}")).await;
    assert_eq!(
        user["groups"],
        json!([{"value": id, "display": "Tour Guides", "type": "direct", "$ref": format!("{}/scim/v2/Groups/{id}", app.address)}])
    );
    let by_group =
        app.get_ok(&format!("/scim/v2/Users?filter={}", urlencoding(&format!("groups.value eq \"{id}\"")))).await;
    assert_eq!(by_group["totalResults"], 2);
    let err = assert_scim_error(app.post("/scim/v2/Groups", &json!({"displayName": "TOUR GUIDES"})).await, 409).await;
    assert_eq!(err["scimType"], "uniqueness");
    let err = assert_scim_error(app.post("/scim/v2/Groups", &json!({"members": []})).await, 400).await;
    assert!(err["detail"].as_str().unwrap().contains("displayName"));
}

fn urlencoding(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn member_patches_in_every_form_idps_send(app: TestApp) {
    let users: Vec<String> = futures_join(&app, &["u1", "u2", "u3", "u4"]).await;
    let group = new_group(&app, "Engineering", &[&users[0], &users[1], &users[2]]).await;
    let path = format!("/scim/v2/Groups/{}", group["id"].as_str().unwrap());
    // Entra's non-standard removal removes only the listed member, never the whole group.
    let res =
        app.patch(&path, &ops(json!([{"op": "Remove", "path": "members", "value": [{"value": users[0]}]}]))).await;
    assert_eq!(res.status(), 204);
    assert_eq!(member_ids(&app.get_ok(&path).await), sorted(&[&users[1], &users[2]]));
    // RFC remove by value filter.
    app.patch(&path, &ops(json!([{"op": "remove", "path": format!("members[value eq \"{}\"]", users[1])}]))).await;
    assert_eq!(member_ids(&app.get_ok(&path).await), sorted(&[&users[2]]));
    // Add a list, including one already present.
    app.patch(&path, &ops(json!([{"op": "add", "path": "members", "value": [{"value": users[0], "display": "x"}, {"value": users[2]}]}]))).await;
    assert_eq!(member_ids(&app.get_ok(&path).await), sorted(&[&users[0], &users[2]]));
    // Replace the full list.
    app.patch(&path, &ops(json!([{"op": "replace", "path": "members", "value": [{"value": users[3]}]}]))).await;
    assert_eq!(member_ids(&app.get_ok(&path).await), sorted(&[&users[3]]));
    // Okta's path-less replace of {id, displayName} on every push.
    let res = app
        .patch(&path, &ops(json!([{"op": "replace", "value": {"id": group["id"], "displayName": "Engineering Team"}}])))
        .await;
    assert_eq!(res.status(), 204);
    let now = app.get_ok(&path).await;
    assert_eq!(now["displayName"], "Engineering Team");
    assert_eq!(member_ids(&now), sorted(&[&users[3]]));
    // The Microsoft reference collection sends a bare id string.
    app.patch(&path, &ops(json!([{"op": "Add", "path": "members", "value": users[1]}]))).await;
    assert_eq!(member_ids(&app.get_ok(&path).await), sorted(&[&users[1], &users[3]]));
    // Unknown member: 400 invalidValue, and nothing of the request is applied.
    let err = assert_scim_error(
        app.patch(
            &path,
            &ops(json!([
                {"op": "add", "path": "members", "value": [{"value": users[0]}]},
                {"op": "add", "path": "members", "value": [{"value": "no-such-user"}]}
            ])),
        )
        .await,
        400,
    )
    .await;
    assert_eq!(err["scimType"], "invalidValue");
    assert!(err["detail"].as_str().unwrap().contains("no-such-user"));
    assert_eq!(member_ids(&app.get_ok(&path).await), sorted(&[&users[1], &users[3]]));
    // Asking for attributes turns the 204 into a 200 with the group.
    let res = app
        .patch(
            &format!("{path}?attributes=displayName"),
            &ops(json!([{"op": "replace", "path": "displayName", "value": "Eng"}])),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        json(res).await,
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "id": group["id"], "displayName": "Eng"})
    );
    // Remove all members: path `members` without a value.
    app.patch(&path, &ops(json!([{"op": "remove", "path": "members"}]))).await;
    assert_eq!(member_ids(&app.get_ok(&path).await), Vec::<String>::new());
}

async fn futures_join(app: &TestApp, names: &[&str]) -> Vec<String> {
    let mut ids = Vec::new();
    for name in names {
        ids.push(new_user(app, name).await);
    }
    ids
}

async fn okta_group_push_sequence(app: TestApp) {
    // Okta: create with members [], rename, add, remove, delete (Okta Group Push docs).
    let (a, b) = (new_user(&app, "okta-a").await, new_user(&app, "okta-b").await);
    let group = new_group(&app, "Okta Pushed", &[]).await;
    assert!(group.get("members").is_none());
    let path = format!("/scim/v2/Groups/{}", group["id"].as_str().unwrap());
    let res = app
        .patch(&path, &ops(json!([{"op": "replace", "value": {"id": group["id"], "displayName": "Okta Pushed 2"}}])))
        .await;
    assert_eq!(res.status(), 204);
    app.patch(&path, &ops(json!([{"op": "add", "path": "members", "value": [{"value": a, "display": "a"}, {"value": b, "display": "b"}]}]))).await;
    app.patch(&path, &ops(json!([{"op": "remove", "path": format!("members[value eq \"{a}\"]")}]))).await;
    let now = app.get_ok(&path).await;
    assert_eq!((now["displayName"].as_str(), member_ids(&now)), (Some("Okta Pushed 2"), vec![b.clone()]));
    let listed = app.get_ok("/scim/v2/Groups?startIndex=1&count=100").await;
    assert_eq!(listed["totalResults"], 1);
    assert_eq!(listed["Resources"][0]["members"][0]["value"], b.as_str());
    assert_eq!(app.delete(&path).await.status(), 204);
    assert_scim_error(app.get(&path).await, 404).await;
    assert!(app.get_ok(&format!("/scim/v2/Users/{b}")).await.get("groups").is_none());
}

async fn entra_group_sequence(app: TestApp) {
    // Entra: match by displayName with excludedAttributes=members, create, update, add and
    // remove members with capitalised ops, each answered 204.
    let missing = app
        .get_ok(&format!(
            "/scim/v2/Groups?excludedAttributes=members&filter={}",
            urlencoding("displayName eq \"Sales\"")
        ))
        .await;
    assert_eq!(missing["totalResults"], 0);
    let group = new_group(&app, "Sales", &[]).await;
    let path = format!("/scim/v2/Groups/{}", group["id"].as_str().unwrap());
    let u = new_user(&app, "entra-u").await;
    for body in [
        ops(json!([{"op": "Replace", "path": "displayName", "value": "Sales EMEA"}])),
        ops(json!([{"op": "Add", "path": "members", "value": [{"value": u}]}])),
    ] {
        assert_eq!(app.patch(&path, &body).await.status(), 204);
    }
    let got = app.get_ok(&format!("{path}?excludedAttributes=members")).await;
    assert_eq!(got["displayName"], "Sales EMEA");
    assert!(got.get("members").is_none());
    assert_eq!(member_ids(&app.get_ok(&path).await), vec![u.clone()]);
    assert_eq!(
        app.patch(&path, &ops(json!([{"op": "Remove", "path": "members", "value": [{"value": u}]}]))).await.status(),
        204
    );
    assert_eq!(member_ids(&app.get_ok(&path).await), Vec::<String>::new());
}

async fn deleting_a_user_removes_its_memberships(app: TestApp) {
    let (a, b) = (new_user(&app, "stay").await, new_user(&app, "leave").await);
    let group = new_group(&app, "Team", &[&a, &b]).await;
    assert_eq!(app.delete(&format!("/scim/v2/Users/{b}")).await.status(), 204);
    let now = app.get_ok(&format!("/scim/v2/Groups/{}", group["id"].as_str().unwrap())).await;
    assert_eq!(member_ids(&now), vec![a]);
}

async fn groups_can_contain_groups(app: TestApp) {
    let inner = new_group(&app, "Inner", &[]).await;
    let inner_id = inner["id"].as_str().unwrap();
    let outer = new_group(&app, "Outer", &[inner_id]).await;
    assert_eq!(outer["members"][0]["type"], "Group");
    assert_eq!(outer["members"][0]["display"], "Inner");
    assert_eq!(app.delete(&format!("/scim/v2/Groups/{inner_id}")).await.status(), 204);
    assert!(app.get_ok(&format!("/scim/v2/Groups/{}", outer["id"].as_str().unwrap())).await.get("members").is_none());
}

async fn put_replaces_members_and_etags_guard_groups(app: TestApp) {
    let (a, b) = (new_user(&app, "pa").await, new_user(&app, "pb").await);
    let group = new_group(&app, "Put Group", &[&a]).await;
    let path = format!("/scim/v2/Groups/{}", group["id"].as_str().unwrap());
    let res = app.put(&path, &json!({"displayName": "Put Group", "members": [{"value": b}]})).await;
    assert_eq!(res.status(), 200);
    let body = json(res).await;
    assert_eq!(member_ids(&body), vec![b]);
    let stale = group["meta"]["version"].as_str().unwrap();
    let res = app
        .client
        .patch(app.url(&path))
        .bearer_auth(&app.token)
        .header("if-match", stale)
        .json(&ops(json!([{"op": "remove", "path": "members"}])))
        .send()
        .await
        .unwrap();
    assert_scim_error(res, 412).await;
    let res = app
        .client
        .get(app.url(&path))
        .bearer_auth(&app.token)
        .header("if-none-match", body["meta"]["version"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 304);
}

async fn other_tenants_cannot_see_or_join_groups(app: TestApp) {
    let user = new_user(&app, "mine").await;
    let group = new_group(&app, "Mine", &[&user]).await;
    roster::db::tenants::create(&mut app.connection(), "rival").unwrap();
    let rival = app.issue_token("rival", "rival-idp", "scim");
    let id = group["id"].as_str().unwrap();
    assert_scim_error(app.get_with(&format!("/scim/v2/Groups/{id}"), &rival).await, 404).await;
    // A rival's group cannot take our user as a member.
    let res = app
        .client
        .post(app.url("/scim/v2/Groups"))
        .bearer_auth(&rival)
        .json(&json!({"displayName": "Theirs", "members": [{"value": user}]}))
        .send()
        .await
        .unwrap();
    assert_scim_error(res, 400).await;
}

async fn root_search_covers_users_and_groups(app: TestApp) {
    new_user(&app, "searcher").await;
    new_group(&app, "Searchers", &[]).await;
    let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": "meta.created pr", "startIndex": 1, "count": 10});
    let found = json(app.post("/scim/v2/.search", &body).await).await;
    assert_eq!(found["totalResults"], 2);
    let types: Vec<&str> =
        found["Resources"].as_array().unwrap().iter().map(|r| r["meta"]["resourceType"].as_str().unwrap()).collect();
    assert_eq!(types, ["User", "Group"]);
    let only_users =
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": "userName sw \"search\""});
    assert_eq!(json(app.post("/scim/v2/.search", &only_users).await).await["totalResults"], 1);
    // An attribute one type lacks leaves that type out; one that no type has is an invalid
    // filter, as on /Users (RFC 7644 §3.4.2.2), not an empty answer.
    let nowhere =
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": "nosuch eq \"x\""});
    let res = app.post("/scim/v2/.search", &nowhere).await;
    assert_eq!(res.status(), 400);
    assert_eq!(json(res).await["scimType"], "invalidFilter");
    let second =
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "startIndex": 2, "count": 1});
    let page = json(app.post("/scim/v2/.search", &second).await).await;
    assert_eq!(page["Resources"][0]["displayName"], "Searchers");
}

async fn entra_group_create_body_is_accepted(app: TestApp) {
    // Microsoft's "Create Group" example lists its own schema URI beside the core one.
    let res = app.post("/scim/v2/Groups", &json!({
        "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159", "displayName": "Group1",
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group", "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
        "meta": {"resourceType": "Group"}, "members": []
    })).await;
    assert_eq!(res.status(), 201);
}

async fn discovery_describes_groups(app: TestApp) {
    let types = app.get_ok("/scim/v2/ResourceTypes").await;
    let endpoints: Vec<&str> =
        types["Resources"].as_array().unwrap().iter().map(|t| t["endpoint"].as_str().unwrap()).collect();
    assert_eq!(endpoints, ["/Users", "/Groups"]);
    let group = app.get_ok("/scim/v2/Schemas/urn:ietf:params:scim:schemas:core:2.0:Group").await;
    assert!(group["attributes"].as_array().unwrap().iter().any(|a| a["name"] == "members"));
}

both_backends!(
    create_read_and_list_groups,
    member_patches_in_every_form_idps_send,
    okta_group_push_sequence,
    entra_group_sequence,
    deleting_a_user_removes_its_memberships,
    groups_can_contain_groups,
    put_replaces_members_and_etags_guard_groups,
    other_tenants_cannot_see_or_join_groups,
    root_search_covers_users_and_groups,
    entra_group_create_body_is_accepted,
    discovery_describes_groups,
);

/// A user's `groups` reads the same from every way of reading the user: several groups in
/// displayName order, none as an absent attribute, and left out when excluded.
async fn a_users_groups_read_alike_from_get_list_filter_and_writes(app: TestApp) {
    let user = app.create_user(json!({"userName": "member"})).await;
    let loner = app.create_user(json!({"userName": "loner"})).await;
    let id = user["id"].as_str().unwrap().to_owned();
    let mut expected = Vec::new();
    for name in ["zeta", "alpha", "mu"] {
        let res = app.post("/scim/v2/Groups", &json!({"displayName": name, "members": [{"value": id}]})).await;
        let group = json(res).await;
        expected.push((name.to_owned(), group["id"].as_str().unwrap().to_owned()));
    }
    expected.sort();
    let shown: Vec<Value> = expected
        .iter()
        .map(|(name, gid)| {
            json!({"value": gid, "display": name, "type": "direct", "$ref": format!("{}/scim/v2/Groups/{gid}", app.address)})
        })
        .collect();
    let filter = format!("filter={}", urlencoding("userName eq \"member\""));
    let reads = [
        app.get_ok(&format!("/scim/v2/Users/{id}")).await,
        app.get_ok(&format!("/scim/v2/Users?{filter}")).await["Resources"][0].clone(),
        app.get_ok("/scim/v2/Users?count=1").await["Resources"][0].clone(),
        app.get_ok("/scim/v2/Users?count=1&cursor=").await["Resources"][0].clone(),
        json(
            app.patch(
                &format!("/scim/v2/Users/{id}"),
                &json!({"Operations": [{"op": "replace", "path": "displayName", "value": "M"}]}),
            )
            .await,
        )
        .await,
    ];
    for (k, read) in reads.iter().enumerate() {
        assert_eq!(read["groups"], Value::Array(shown.clone()), "read {k}: {read}");
    }
    let lone = app.get_ok(&format!("/scim/v2/Users/{}", loner["id"].as_str().unwrap())).await;
    assert!(lone.get("groups").is_none(), "{lone}");
    let slim = app.get_ok(&format!("/scim/v2/Users/{id}?excludedAttributes=groups")).await;
    assert!(slim.get("groups").is_none() && slim["userName"] == "member");
}

both_backends!(a_users_groups_read_alike_from_get_list_filter_and_writes);

/// Concurrent writes to one group each count: every member added is there, every change gets
/// its own version, and a PATCH of one attribute keeps another's concurrent change.
async fn concurrent_writes_to_one_group_lose_nothing(app: TestApp) {
    let res = app.post("/scim/v2/Groups", &json!({"displayName": "busy"})).await;
    let group = json(res).await;
    let path = format!("/scim/v2/Groups/{}", group["id"].as_str().unwrap());
    let before = version(group["meta"]["version"].as_str().unwrap());
    let mut members = Vec::new();
    for k in 0..12 {
        members.push(app.create_user(json!({"userName": format!("busy{k}")})).await["id"].as_str().unwrap().to_owned());
    }
    let mut bodies: Vec<Value> = members
        .iter()
        .map(|id| json!({"Operations": [{"op": "add", "path": "members", "value": [{"value": id}]}]}))
        .collect();
    bodies.push(json!({"Operations": [{"op": "replace", "path": "externalId", "value": "ext-busy"}]}));
    bodies.push(json!({"Operations": [{"op": "replace", "path": "displayName", "value": "busier"}]}));
    let patches = bodies.iter().map(|body| app.patch(&path, body));
    for res in futures_util::future::join_all(patches).await {
        assert!(res.status().is_success(), "{}", res.status());
    }
    let after = app.get_ok(&path).await;
    assert_eq!(after["members"].as_array().map(Vec::len), Some(12), "{after}");
    assert_eq!((after["displayName"].as_str(), after["externalId"].as_str()), (Some("busier"), Some("ext-busy")));
    assert_eq!(
        version(after["meta"]["version"].as_str().unwrap()),
        before + bodies.len() as i64,
        "one version per write"
    );
}

both_backends!(concurrent_writes_to_one_group_lose_nothing);

/// Many member PATCHes to one group at once, as an IdP pushing a group sends them (on
/// PostgreSQL they are applied together, see `groups::batches`): each answers as if it had been
/// applied alone, in some order. Adds and removes all land, a PATCH naming an unknown member
/// fails alone, a member removed and added back in one PATCH takes the display name it was
/// added with, adding an existing member keeps its display name, and every success has a
/// version of its own with none skipped.
async fn concurrent_member_patches_each_count_once(app: TestApp) {
    let mut users = Vec::new();
    for k in 0..14 {
        users.push(new_user(&app, &format!("crowd{k}")).await);
    }
    let group = new_group(&app, "crowd", &[&users[0], &users[1], &users[2], &users[3]]).await;
    let path = format!("/scim/v2/Groups/{}", group["id"].as_str().unwrap());
    let before = version(group["meta"]["version"].as_str().unwrap());
    let member = |id: &str, display: Option<&str>| match display {
        Some(d) => json!({"value": id, "display": d}),
        None => json!({"value": id}),
    };
    let mut bodies = Vec::new();
    for id in &users[4..14] {
        bodies.push(ops(json!([{"op": "add", "path": "members", "value": [member(id, None)]}])));
    }
    for id in &users[0..2] {
        bodies.push(ops(json!([{"op": "remove", "path": format!("members[value eq \"{id}\"]")}])));
    }
    bodies.push(ops(json!([
        {"op": "remove", "path": format!("members[value eq \"{}\"]", users[2])},
        {"op": "add", "path": "members", "value": [member(&users[2], Some("back again"))]},
    ])));
    bodies.push(ops(json!([{"op": "add", "path": "members", "value": [member(&users[3], Some("not taken"))]}])));
    let unknown = "2f1e0c4e-0000-4000-8000-000000000000";
    bodies.push(ops(
        json!([{"op": "add", "path": "members", "value": [member(&users[13], None), member(unknown, None)]}]),
    ));
    let responses = futures_util::future::join_all(bodies.iter().map(|body| app.patch(&path, body))).await;
    let mut versions = Vec::new();
    let mut refused = 0;
    for res in responses {
        match res.status().as_u16() {
            204 => versions.push(version(res.headers()["etag"].to_str().unwrap())),
            400 => {
                refused += 1;
                let body = assert_scim_error(res, 400).await;
                assert_eq!(body["scimType"], "invalidValue", "{body}");
            }
            other => panic!("unexpected status {other}: {}", res.text().await.unwrap_or_default()),
        }
    }
    assert_eq!(refused, 1, "only the PATCH naming an unknown member fails");
    versions.sort_unstable();
    let expected: Vec<i64> = (before + 1..=before + versions.len() as i64).collect();
    assert_eq!(versions, expected, "one version per successful PATCH, none skipped or shared");
    let after = app.get_ok(&path).await;
    assert_eq!(version(after["meta"]["version"].as_str().unwrap()), before + versions.len() as i64);
    let mut expected_members: Vec<&String> = users[2..14].iter().collect();
    expected_members.sort();
    assert_eq!(member_ids(&after), sorted(&expected_members), "{after}");
    let display = |id: &str| {
        after["members"].as_array().unwrap().iter().find(|m| m["value"] == id).map(|m| m["display"].clone()).unwrap()
    };
    assert_eq!(display(&users[2]), "back again");
    assert_eq!(display(&users[3]), "CROWD3", "adding an existing member changes nothing");
}

both_backends!(concurrent_member_patches_each_count_once);

/// `change_members`, which applies a batch's net effect in one statement on PostgreSQL, against
/// the database directly: removed members go, added ones come (existing ones untouched), those
/// removed and added again take the new display name, the version moves on by the number of
/// changes; another tenant's group or a missing one is not touched, and an unknown member fails
/// the whole call with nothing changed.
async fn change_members_applies_a_net_change(app: TestApp) {
    use roster::db::groups::WriteError;
    use roster::db::write::change_members;
    use roster::scim::members::Member;
    let mut users = Vec::new();
    for k in 0..5 {
        users.push(new_user(&app, &format!("net{k}")).await);
    }
    let group = new_group(&app, "net", &[&users[0], &users[1], &users[2]]).await;
    let id = group["id"].as_str().unwrap();
    let before = version(group["meta"]["version"].as_str().unwrap());
    let mut conn = app.connection();
    let tenant = roster::db::tenants::by_name(&mut conn, "default").unwrap().unwrap().id;
    let other = roster::db::tenants::create(&mut conn, "net-other").unwrap().id;
    let m = |id: &str, display: Option<&str>| Member {
        value: id.to_owned(),
        display: display.map(str::to_owned),
        kind: None,
    };
    let added = vec![m(&users[1], Some("ignored")), m(&users[2], Some("renamed")), m(&users[3], Some("new"))];
    let removed = [users[0].clone()];
    let now = chrono::Utc::now().naive_utc();
    for (tenant, group) in [(other.as_str(), id), (tenant.as_str(), "no-such-group")] {
        let none = change_members(&mut conn, tenant, group, now, 3, &removed, &added, &[]);
        assert!(matches!(none, Ok(None)), "{tenant} {group}: {none:?}");
    }
    // A user of another tenant is as unknown as an id that names nothing.
    let foreign_token = app.issue_token("net-other", "other-idp", "scim");
    let foreign = app
        .client
        .post(app.url("/scim/v2/Users"))
        .bearer_auth(&foreign_token)
        .json(&json!({"userName": "net-foreign"}))
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 201);
    let foreign = json(foreign).await["id"].as_str().unwrap().to_owned();
    let mut with_unknown = added.clone();
    with_unknown.push(m("7d1c5a66-0000-4000-8000-000000000000", None));
    with_unknown.push(m(&users[4], None));
    with_unknown.push(m(&foreign, None));
    let unknown = change_members(&mut conn, &tenant, id, now, 3, &removed, &with_unknown, &[]);
    match unknown {
        Err(WriteError::UnknownMembers(ids)) => {
            assert_eq!(ids, format!("7d1c5a66-0000-4000-8000-000000000000, {foreign}"))
        }
        other => panic!("expected unknown members, got {other:?}"),
    }
    let row = change_members(&mut conn, &tenant, id, now, 3, &removed, &added, &[users[2].as_str()])
        .unwrap()
        .expect("the group exists");
    assert_eq!(row.version, before + 3, "the failed call changed nothing, this one moved the version by 3");
    drop(conn);
    let after = app.get_ok(&format!("/scim/v2/Groups/{id}")).await;
    assert_eq!(member_ids(&after), sorted(&[&users[1], &users[2], &users[3]]), "{after}");
    assert_eq!(version(after["meta"]["version"].as_str().unwrap()), before + 3);
    let display =
        |id: &str| after["members"].as_array().unwrap().iter().find(|m| m["value"] == id).unwrap()["display"].clone();
    assert_eq!(display(&users[1]), "NET1", "an existing member keeps its display name");
    assert_eq!(display(&users[2]), "renamed");
    assert_eq!(display(&users[3]), "new");
}

both_backends!(change_members_applies_a_net_change);

/// PATCH with If-Match (RFC 7644 §3.14), with member operations only: the version the client
/// names is the one before the change, and a stale one changes nothing.
async fn if_match_guards_member_only_patches(app: TestApp) {
    let (a, b, c) = (new_user(&app, "ia").await, new_user(&app, "ib").await, new_user(&app, "ic").await);
    let group = new_group(&app, "Guarded", &[&a]).await;
    let path = format!("/scim/v2/Groups/{}", group["id"].as_str().unwrap());
    let first = group["meta"]["version"].as_str().unwrap().to_owned();
    let patch_if = |etag: String, body: Value| {
        app.client.patch(app.url(&path)).bearer_auth(&app.token).header("if-match", etag).json(&body).send()
    };
    let add_b = ops(json!([{"op": "add", "path": "members", "value": [{"value": b}]}]));
    let res = patch_if(first.clone(), add_b).await.unwrap();
    assert_eq!(res.status(), 204);
    let second = res.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(version(&second), version(&first) + 1);
    for body in [
        ops(json!([{"op": "add", "path": "members", "value": [{"value": c}]}])),
        ops(json!([{"op": "remove", "path": format!("members[value eq \"{a}\"]")}])),
        ops(json!([{"op": "remove", "path": "members"}])),
    ] {
        let err = assert_scim_error(patch_if(first.clone(), body).await.unwrap(), 412).await;
        assert!(err["detail"].as_str().unwrap().contains(&second), "{err}");
    }
    let now = app.get_ok(&path).await;
    assert_eq!(member_ids(&now), sorted(&[&a, &b]));
    assert_eq!(now["meta"]["version"], second.as_str(), "a refused PATCH leaves the version");
}

/// Okta and Entra send one member change per PATCH, many at once: each is applied, and each
/// gets a version of its own, one after the other.
async fn concurrent_member_patches_each_get_their_own_version(app: TestApp) {
    let mut ids = Vec::new();
    for k in 0..16 {
        ids.push(new_user(&app, &format!("c{k}")).await);
    }
    let staying: Vec<&str> = ids[8..].iter().map(String::as_str).collect();
    let group = new_group(&app, "Churn", &staying).await;
    let path = format!("/scim/v2/Groups/{}", group["id"].as_str().unwrap());
    let before = version(group["meta"]["version"].as_str().unwrap());
    let bodies: Vec<Value> = ids
        .iter()
        .enumerate()
        .map(|(k, id)| match k {
            0..8 => ops(json!([{"op": "add", "path": "members", "value": [{"value": id}]}])),
            _ => ops(json!([{"op": "remove", "path": format!("members[value eq \"{id}\"]")}])),
        })
        .collect();
    let tasks: Vec<_> = bodies
        .into_iter()
        .map(|body| {
            let request = app.client.patch(app.url(&path)).bearer_auth(&app.token).json(&body);
            tokio::spawn(async move { request.send().await.unwrap() })
        })
        .collect();
    let mut versions = Vec::new();
    for task in tasks {
        let res = task.await.unwrap();
        assert_eq!(res.status(), 204);
        versions.push(version(res.headers()["etag"].to_str().unwrap()));
    }
    versions.sort();
    assert_eq!(versions, (before + 1..=before + 16).collect::<Vec<_>>(), "distinct, consecutive versions");
    let after = app.get_ok(&path).await;
    assert_eq!(member_ids(&after), sorted(&ids[..8].iter().collect::<Vec<_>>()));
    assert_eq!(version(after["meta"]["version"].as_str().unwrap()), before + 16);
}

/// Member PATCHes that all name one version, at once: one applies, the others answer 412. A
/// refused one has already moved the group's version on before its check (the bump is the lock),
/// so beside other writes of a SQLite batch it is undone by running the batch again; either way
/// nothing of the refused ones stays.
async fn concurrent_member_patches_with_one_if_match_apply_once(app: TestApp) {
    let mut ids = Vec::new();
    for k in 0..8 {
        ids.push(new_user(&app, &format!("m{k}")).await);
    }
    let group = new_group(&app, "Pinned", &[]).await;
    let path = format!("/scim/v2/Groups/{}", group["id"].as_str().unwrap());
    let etag = group["meta"]["version"].as_str().unwrap().to_owned();
    let tasks: Vec<_> = ids
        .iter()
        .map(|id| {
            let body = ops(json!([{"op": "add", "path": "members", "value": [{"value": id}]}]));
            let request =
                app.client.patch(app.url(&path)).bearer_auth(&app.token).header("if-match", &etag).json(&body);
            tokio::spawn(async move { request.send().await.unwrap().status().as_u16() })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    assert_eq!(statuses.iter().filter(|&&s| s == 204).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|&&s| s == 412).count(), 7, "{statuses:?}");
    let after = app.get_ok(&path).await;
    assert_eq!(after["members"].as_array().map_or(0, Vec::len), 1, "only the applied PATCH's member");
    assert_eq!(version(after["meta"]["version"].as_str().unwrap()), version(&etag) + 1, "one version step");
}

/// An unknown member fails the whole PATCH with 400 invalidValue (RFC 7644 §3.12), whatever
/// came before it in the request: no member changes, and the version stays.
async fn an_unknown_member_leaves_the_group_untouched(app: TestApp) {
    let (a, b) = (new_user(&app, "ua").await, new_user(&app, "ub").await);
    let group = new_group(&app, "Untouched", &[&a]).await;
    let path = format!("/scim/v2/Groups/{}", group["id"].as_str().unwrap());
    for body in [
        ops(json!([{"op": "add", "path": "members", "value": [{"value": "no-such-user"}]}])),
        ops(json!([
            {"op": "remove", "path": format!("members[value eq \"{a}\"]")},
            {"op": "add", "path": "members", "value": [{"value": b}, {"value": "no-such-user"}]}
        ])),
        ops(json!([
            {"op": "replace", "path": "displayName", "value": "Touched"},
            {"op": "add", "path": "members", "value": [{"value": b}, {"value": "no-such-user"}]}
        ])),
    ] {
        let err = assert_scim_error(app.patch(&path, &body).await, 400).await;
        assert_eq!(err["scimType"], "invalidValue");
        assert!(err["detail"].as_str().unwrap().contains("no-such-user"), "{err}");
    }
    let now = app.get_ok(&path).await;
    assert_eq!(member_ids(&now), vec![a]);
    assert_eq!((now["displayName"].as_str(), &now["meta"]["version"]), (Some("Untouched"), &group["meta"]["version"]));
}

/// A group of another tenant is not found, whichever kind of PATCH names it, and does not
/// change.
async fn patches_to_another_tenants_group_are_not_found(app: TestApp) {
    let user = new_user(&app, "ours").await;
    let group = new_group(&app, "Ours", &[&user]).await;
    let path = format!("/scim/v2/Groups/{}", group["id"].as_str().unwrap());
    roster::db::tenants::create(&mut app.connection(), "rival").unwrap();
    let rival = app.issue_token("rival", "rival-idp", "scim");
    let theirs = app
        .client
        .post(app.url("/scim/v2/Users"))
        .bearer_auth(&rival)
        .json(&json!({"userName": "theirs"}))
        .send()
        .await
        .unwrap();
    let theirs = json(theirs).await["id"].as_str().unwrap().to_owned();
    for body in [
        ops(json!([{"op": "add", "path": "members", "value": [{"value": theirs}]}])),
        ops(json!([{"op": "remove", "path": format!("members[value eq \"{user}\"]")}])),
        ops(json!([{"op": "remove", "path": "members"}])),
        ops(json!([{"op": "replace", "path": "displayName", "value": "Taken"}])),
        // Our user is unknown to the rival, but the group is missing first.
        ops(json!([{"op": "add", "path": "members", "value": [{"value": user}]}])),
    ] {
        let res = app.client.patch(app.url(&path)).bearer_auth(&rival).json(&body).send().await.unwrap();
        assert_scim_error(res, 404).await;
    }
    let now = app.get_ok(&path).await;
    assert_eq!(member_ids(&now), vec![user]);
    assert_eq!((now["displayName"].as_str(), &now["meta"]["version"]), (Some("Ours"), &group["meta"]["version"]));
}

both_backends!(
    if_match_guards_member_only_patches,
    concurrent_member_patches_each_get_their_own_version,
    concurrent_member_patches_with_one_if_match_apply_once,
    an_unknown_member_leaves_the_group_untouched,
    patches_to_another_tenants_group_are_not_found,
);
