//! `/scim/v2/Users` as clients see it: RFC 7643/7644 behaviour and the forms Okta and Entra send.

use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{assert_scim_error, json, TestApp};

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn barbara() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
        "userName": "bjensen@example.com",
        "externalId": "00u1abcd",
        "name": {"givenName": "Barbara", "familyName": "Jensen", "formatted": "Ms. Barbara J Jensen III"},
        "displayName": "Babs Jensen",
        "nickName": "Babs",
        "title": "Tour Guide",
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": true},
            {"value": "babs@jensen.org", "type": "home"}
        ],
        "phoneNumbers": [{"value": "555-555-8377", "type": "work"}],
        "addresses": [{"type": "work", "streetAddress": "100 Universal City Plaza", "locality": "Hollywood", "region": "CA", "postalCode": "91608", "country": "USA", "primary": true}],
        "active": true,
        "password": "t1meMa$heen",
        ENTERPRISE: {"employeeNumber": "701984", "department": "Tour Operations", "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d"}}
    })
}

fn user(name: &str) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name, "name": {"givenName": "Given", "familyName": name}})
}

async fn ids(app: &TestApp, query: &str) -> Vec<String> {
    let body = app.get_ok(&format!("/scim/v2/Users?{query}")).await;
    body["Resources"].as_array().unwrap().iter().map(|r| r["userName"].as_str().unwrap_or("").to_owned()).collect()
}

fn q(filter: &str) -> String {
    format!("filter={}", urlencode(filter))
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn create_answers_201_with_location_and_the_full_resource(app: TestApp) {
    let res = app.post("/scim/v2/Users", &barbara()).await;
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["content-type"], "application/scim+json");
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let etag = res.headers()["etag"].to_str().unwrap().to_owned();
    let body = json(res).await;
    let id = body["id"].as_str().unwrap();
    assert_eq!(location, format!("{}/scim/v2/Users/{id}", app.address));
    assert_eq!(body["meta"]["location"], location.as_str());
    assert_eq!(body["meta"]["version"], etag.as_str());
    assert_eq!(body["meta"]["resourceType"], "User");
    assert_eq!(body["userName"], "bjensen@example.com");
    assert_eq!(body["name"]["familyName"], "Jensen");
    assert_eq!(body["emails"][0]["primary"], true);
    assert_eq!(body["addresses"][0]["locality"], "Hollywood");
    assert_eq!(body[ENTERPRISE]["manager"]["value"], "26118915-6090-4610-87e4-49d8ca9f808d");
    assert_eq!(body["active"], true);
    assert!(body.get("password").is_none(), "password is never returned");
    let schemas = body["schemas"].as_array().unwrap();
    assert!(
        schemas.contains(&json!(ENTERPRISE)) && schemas.contains(&json!("urn:ietf:params:scim:schemas:core:2.0:User"))
    );
    assert_eq!(app.get_ok(&format!("/scim/v2/Users/{id}")).await, body);
}

async fn usernames_are_unique_regardless_of_case(app: TestApp) {
    app.create_user(user("Alice@Example.com")).await;
    let err = assert_scim_error(app.post("/scim/v2/Users", &user("alice@example.COM")).await, 409).await;
    assert_eq!(err["scimType"], "uniqueness");
    // Unicode case too.
    app.create_user(user("ÉLODIE")).await;
    assert_scim_error(app.post("/scim/v2/Users", &user("élodie")).await, 409).await;
}

async fn invalid_users_get_clear_errors_and_nothing_is_stored(app: TestApp) {
    let cases = [
        (json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "name": {"givenName": "x"}}), "userName"),
        (
            json!({"userName": "x", "emails": [{"value": "a@b.c", "primary": true}, {"value": "c@d.e", "primary": true}]}),
            "primary",
        ),
        (json!({"schemas": ["urn:example:unknown"], "userName": "x"}), "urn:example:unknown"),
        (json!({"userName": "x", "active": "maybe"}), "active"),
        (json!(["not", "an", "object"]), ""),
    ];
    for (body, mentions) in cases {
        let err = assert_scim_error(app.post("/scim/v2/Users", &body).await, 400).await;
        assert!(err["detail"].as_str().unwrap().contains(mentions), "{err} should mention {mentions}");
    }
    let junk = app
        .client
        .post(app.url("/scim/v2/Users"))
        .bearer_auth(&app.token)
        .header("content-type", "application/scim+json")
        .body("{\"userName\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(assert_scim_error(junk, 400).await["scimType"], "invalidSyntax");
    let wrong_type = app
        .client
        .post(app.url("/scim/v2/Users"))
        .bearer_auth(&app.token)
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_scim_error(wrong_type, 415).await;
    assert_eq!(app.get_ok("/scim/v2/Users").await["totalResults"], 0);
}

async fn read_only_attributes_are_ignored_and_names_are_case_insensitive(app: TestApp) {
    let body = app
        .create_user(json!({
            "SCHEMAS": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "USERNAME": "carol",
            "id": "chosen-by-client",
            "meta": {"created": "2001-01-01T00:00:00Z"},
            "Name": {"GivenName": "Carol"},
            "groups": [{"value": "g1"}],
            "nickNmae": "misspelled attributes are ignored"
        }))
        .await;
    assert_eq!(body["userName"], "carol");
    assert_eq!(body["name"]["givenName"], "Carol");
    assert_ne!(body["id"], "chosen-by-client");
    assert_ne!(body["meta"]["created"], "2001-01-01T00:00:00Z");
    assert!(body.get("nickNmae").is_none());
}

async fn put_replaces_the_resource(app: TestApp) {
    let created = app.create_user(barbara()).await;
    let id = created["id"].as_str().unwrap();
    let mut replacement = user("bjensen@example.com");
    replacement["displayName"] = json!("Barbara");
    replacement["id"] = json!("ignored");
    let res = app.put(&format!("/scim/v2/Users/{id}"), &replacement).await;
    assert_eq!(res.status(), 200);
    let body = json(res).await;
    assert_eq!(body["id"], id);
    assert_eq!(body["displayName"], "Barbara");
    assert!(body.get("emails").is_none(), "PUT removes what it leaves out");
    assert!(body.get(ENTERPRISE).is_none());
    assert_eq!(body["meta"]["created"], created["meta"]["created"]);
    assert_ne!(body["meta"]["version"], created["meta"]["version"]);
}

async fn okta_full_put_keeps_active_and_accepts_password(app: TestApp) {
    let created = app
        .create_user(json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "dave@example.com", "name": {"givenName": "Dave", "familyName": "Lee"},
            "emails": [{"primary": true, "value": "dave@example.com", "type": "work"}],
            "displayName": "Dave Lee", "locale": "en-US", "externalId": "00ujl29u0le5T6Aj10h7",
            "groups": [], "password": "1mz050nq", "active": true
        }))
        .await;
    let id = created["id"].as_str().unwrap();
    let mut full = created.clone();
    full["name"]["familyName"] = json!("Leigh");
    full["password"] = json!("new-secret");
    let body = json(app.put(&format!("/scim/v2/Users/{id}"), &full).await).await;
    assert_eq!(body["active"], true);
    assert_eq!(body["name"]["familyName"], "Leigh");
    assert!(body.get("password").is_none());
    // Okta's AIW apps deactivate with a full PUT.
    full["active"] = json!(false);
    let body = json(app.put(&format!("/scim/v2/Users/{id}"), &full).await).await;
    assert_eq!(body["active"], false);
}

async fn patch_applies_rfc_operations_atomically(app: TestApp) {
    let created = app.create_user(barbara()).await;
    let path = format!("/scim/v2/Users/{}", created["id"].as_str().unwrap());
    let ops = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [
            {"op": "add", "path": "emails", "value": [{"value": "b@other.org", "type": "other"}]},
            {"op": "replace", "path": "name.familyName", "value": "Jensen-Smith"},
            {"op": "remove", "path": "phoneNumbers"},
            {"op": "replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": "Sales"},
            {"op": "remove", "path": "emails[type eq \"home\"]"}
        ]
    });
    let res = app.patch(&path, &ops).await;
    assert_eq!(res.status(), 200);
    let body = json(res).await;
    assert_eq!(body["name"]["familyName"], "Jensen-Smith");
    assert!(body.get("phoneNumbers").is_none());
    assert_eq!(body[ENTERPRISE]["department"], "Sales");
    let emails: Vec<&str> = body["emails"].as_array().unwrap().iter().map(|e| e["value"].as_str().unwrap()).collect();
    assert_eq!(emails, ["bjensen@example.com", "b@other.org"]);

    // A failing operation leaves nothing applied.
    let before = app.get_ok(&path).await;
    let bad = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [
        {"op": "replace", "path": "displayName", "value": "Changed"},
        {"op": "replace", "path": "noSuchAttribute", "value": "x"}
    ]});
    let err = assert_scim_error(app.patch(&path, &bad).await, 400).await;
    assert_eq!(err["scimType"], "invalidPath");
    assert_eq!(app.get_ok(&path).await, before);
    let err =
        assert_scim_error(app.patch(&path, &json!({"Operations": [{"op": "remove", "path": "userName"}]})).await, 400)
            .await;
    assert!(err["detail"].as_str().unwrap().contains("userName"));
    let err = assert_scim_error(app.patch(&path, &json!({"Operations": [{"op": "remove"}]})).await, 400).await;
    assert_eq!(err["scimType"], "noTarget");
}

async fn entra_patch_forms_are_accepted(app: TestApp) {
    let created =
        app.create_user(json!({"userName": "erin@contoso.com", "active": "True", "externalId": "erin"})).await;
    assert_eq!(created["active"], true, "POST with \"True\" as a string");
    let path = format!("/scim/v2/Users/{}", created["id"].as_str().unwrap());
    // Capitalised ops, "False" strings, dotted keys, qualified extension keys.
    let body = json(
        app.patch(
            &path,
            &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [
                {"op": "Replace", "path": "active", "value": "False"},
                {"op": "Add", "value": {"displayName": "Erin", "name.givenName": "Erin", "name.familyName": "Ng",
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "42"}},
                {"op": "Add", "path": "emails[type eq \"work\"].value", "value": "erin@contoso.com"},
                {"op": "Replace", "path": "addresses[type eq \"work\"].formatted", "value": "1 Main St"}
            ]}),
        )
        .await,
    )
    .await;
    assert_eq!(body["active"], false);
    assert_eq!(body["displayName"], "Erin");
    assert_eq!(body["name"]["givenName"], "Erin");
    assert_eq!(body["name"]["familyName"], "Ng");
    assert_eq!(body[ENTERPRISE]["employeeNumber"], "42");
    assert_eq!(body["emails"], json!([{"type": "work", "value": "erin@contoso.com"}]));
    assert_eq!(body["addresses"][0]["formatted"], "1 Main St");
    // Okta's path-less deactivate and reactivate.
    let body = json(app.patch(&path, &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "replace", "value": {"active": true}}]})).await).await;
    assert_eq!(body["active"], true);
    // Microsoft's null update: "" then null clear an optional attribute.
    let body =
        json(app.patch(&path, &json!({"Operations": [{"op": "Replace", "path": "displayName", "value": ""}]})).await)
            .await;
    assert!(body.get("displayName").is_none());
    let body = json(
        app.patch(&path, &json!({"Operations": [{"op": "Replace", "path": "name.familyName", "value": null}]})).await,
    )
    .await;
    assert!(body["name"].get("familyName").is_none());
    // The enterprise manager as Entra sends it.
    let body = json(
        app.patch(
            &path,
            &json!({"Operations": [{"op": "Add", "path": "manager", "value": [{"$ref": null, "value": "boss-id"}]}]}),
        )
        .await,
    )
    .await;
    assert_eq!(body[ENTERPRISE]["manager"]["value"], "boss-id");
}

async fn delete_answers_204_and_then_404_for_everything(app: TestApp) {
    let created = app.create_user(user("gone")).await;
    let path = format!("/scim/v2/Users/{}", created["id"].as_str().unwrap());
    assert_eq!(app.delete(&path).await.status(), 204);
    assert_scim_error(app.get(&path).await, 404).await;
    assert_scim_error(app.put(&path, &user("gone")).await, 404).await;
    assert_scim_error(
        app.patch(&path, &json!({"Operations": [{"op": "replace", "path": "displayName", "value": "x"}]})).await,
        404,
    )
    .await;
    assert_scim_error(app.delete(&path).await, 404).await;
    assert_eq!(app.get_ok(&format!("/scim/v2/Users?{}", q("userName eq \"gone\""))).await["totalResults"], 0);
    // The userName is free again.
    app.create_user(user("gone")).await;
}

async fn etags_guard_writes_and_save_reads(app: TestApp) {
    let created = app.create_user(user("etag")).await;
    let path = format!("/scim/v2/Users/{}", created["id"].as_str().unwrap());
    let v1 = created["meta"]["version"].as_str().unwrap().to_owned();
    let res = app.client.get(app.url(&path)).bearer_auth(&app.token).header("if-none-match", &v1).send().await.unwrap();
    assert_eq!(res.status(), 304);
    let patch = json!({"Operations": [{"op": "replace", "path": "displayName", "value": "E"}]});
    let res = app
        .client
        .patch(app.url(&path))
        .bearer_auth(&app.token)
        .header("if-match", &v1)
        .json(&patch)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let v2 = res.headers()["etag"].to_str().unwrap().to_owned();
    assert_ne!(v1, v2);
    let stale = app
        .client
        .patch(app.url(&path))
        .bearer_auth(&app.token)
        .header("if-match", &v1)
        .json(&patch)
        .send()
        .await
        .unwrap();
    assert_scim_error(stale, 412).await;
    let stale = app
        .client
        .put(app.url(&path))
        .bearer_auth(&app.token)
        .header("if-match", &v1)
        .json(&user("etag"))
        .send()
        .await
        .unwrap();
    assert_scim_error(stale, 412).await;
    let stale = app.client.delete(app.url(&path)).bearer_auth(&app.token).header("if-match", &v1).send().await.unwrap();
    assert_scim_error(stale, 412).await;
    let res = app.client.get(app.url(&path)).bearer_auth(&app.token).header("if-none-match", &v1).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let res = app.client.delete(app.url(&path)).bearer_auth(&app.token).header("if-match", &v2).send().await.unwrap();
    assert_eq!(res.status(), 204);
}

async fn filters_run_the_whole_grammar(app: TestApp) {
    for (name, given, family, title, email_type, active) in [
        ("ann", "Ann", "Olsen", "Engineer", "work", true),
        ("bob", "Bob", "O'Brien", "Manager", "home", true),
        ("cid", "Cid", "Olsen", "Engineer", "work", false),
        ("dee", "Dee", "Park", "", "home", true),
    ] {
        let mut body = json!({"userName": name, "externalId": format!("ext-{name}"), "displayName": given,
            "name": {"givenName": given, "familyName": family}, "active": active,
            "emails": [{"value": format!("{name}@example.com"), "type": email_type}]});
        if !title.is_empty() {
            body["title"] = json!(title);
        }
        app.create_user(body).await;
    }
    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("userName eq \"ANN\"", vec!["ann"]),
        ("UserName Eq \"bob\"", vec!["bob"]),
        ("externalId eq ext-cid", vec!["cid"]),
        ("externalId eq \"EXT-CID\"", vec![]),
        ("displayName eq \"Dee\"", vec!["dee"]),
        ("name.familyName eq \"olsen\"", vec!["ann", "cid"]),
        ("name.familyName co \"'b\"", vec!["bob"]),
        ("userName sw \"a\" or userName ew \"e\"", vec!["ann", "dee"]),
        ("title pr", vec!["ann", "bob", "cid"]),
        ("not (title pr)", vec!["dee"]),
        ("title ne \"Engineer\"", vec!["bob", "dee"]),
        ("active eq false", vec!["cid"]),
        ("active eq \"True\" and title eq \"Engineer\"", vec!["ann"]),
        ("emails[type eq \"work\" and value co \"@example\"]", vec!["ann", "cid"]),
        ("emails[type eq \"work\"].value eq \"cid@example.com\"", vec!["cid"]),
        ("emails.value eq \"BOB@example.com\"", vec!["bob"]),
        ("emails co \"dee@\"", vec!["dee"]),
        ("emails.type eq \"home\" and (name.familyName eq \"Park\" or name.givenName eq \"Bob\")", vec!["bob", "dee"]),
        ("userName gt \"bob\"", vec!["cid", "dee"]),
        ("userName le \"bob\"", vec!["ann", "bob"]),
        ("meta.created gt \"2000-01-01T00:00:00Z\"", vec!["ann", "bob", "cid", "dee"]),
        ("meta.lastModified lt 2000-01-01T00:00:00Z", vec![]),
        ("meta.resourceType eq \"User\"", vec!["ann", "bob", "cid", "dee"]),
        ("urn:ietf:params:scim:schemas:core:2.0:User:userName eq \"ann\"", vec!["ann"]),
        ("name[givenName eq \"Ann\" or familyName eq \"Park\"]", vec!["ann", "dee"]),
        ("userName co \"%\"", vec![]),
        ("userName co \"_\"", vec![]),
    ];
    for (filter, expected) in cases {
        assert_eq!(ids(&app, &q(filter)).await, expected, "filter {filter}");
    }
    // Zero matches are a 200 with totalResults 0, never a 404 (Entra's Test Connection).
    let none = app.get_ok(&format!("/scim/v2/Users?{}", q(&format!("userName eq \"{}\"", uuid::Uuid::new_v4())))).await;
    assert_eq!(none["totalResults"], 0);
    assert_eq!(none["Resources"], json!([]));
}

async fn invalid_filters_answer_400_invalid_filter(app: TestApp) {
    for filter in [
        "userName eq",
        "userName zz \"x\"",
        "(userName eq \"x\"",
        "nosuch eq 1",
        "active gt true",
        "meta.created eq \"yesterday\"",
        "userName eq \"x\" ; DROP TABLE users",
    ] {
        let err = assert_scim_error(app.get(&format!("/scim/v2/Users?{}", q(filter))).await, 400).await;
        assert_eq!(err["scimType"], "invalidFilter", "{filter}: {err}");
    }
    let err = assert_scim_error(app.get(&format!("/scim/v2/Users?{}", q("userName eq"))).await, 400).await;
    assert!(err["detail"].as_str().unwrap().contains("position"), "{err}");
}

async fn sorting_and_index_paging_are_stable(app: TestApp) {
    for name in ["delta", "alpha", "echo", "charlie", "bravo"] {
        app.create_user(user(name)).await;
    }
    assert_eq!(ids(&app, "sortBy=userName").await, ["alpha", "bravo", "charlie", "delta", "echo"]);
    assert_eq!(ids(&app, "sortBy=userName&sortOrder=descending").await, ["echo", "delta", "charlie", "bravo", "alpha"]);
    assert_eq!(ids(&app, "").await, ["delta", "alpha", "echo", "charlie", "bravo"], "creation order by default");
    let page = app.get_ok("/scim/v2/Users?sortBy=userName&startIndex=2&count=2").await;
    assert_eq!(page["totalResults"], 5);
    assert_eq!(page["startIndex"], 2);
    assert_eq!(page["itemsPerPage"], 2);
    assert_eq!(page["Resources"][0]["userName"], "bravo");
    let zero = app.get_ok("/scim/v2/Users?count=0").await;
    assert_eq!((zero["totalResults"].as_i64(), zero["itemsPerPage"].as_i64()), (Some(5), Some(0)));
    let beyond = app.get_ok("/scim/v2/Users?startIndex=100").await;
    assert_eq!(beyond["Resources"], json!([]));
    assert_eq!(ids(&app, "startIndex=-4&count=1").await, ["delta"]);
    let err = assert_scim_error(app.get("/scim/v2/Users?count=ten").await, 400).await;
    assert_eq!(err["scimType"], "invalidValue");
}

async fn cursor_paging_walks_forward_and_back(app: TestApp) {
    for i in 0..7 {
        app.create_user(user(&format!("user{i}"))).await;
    }
    let first = app.get_ok("/scim/v2/Users?cursor=&count=3&sortBy=userName&sortOrder=descending").await;
    let names = |page: &Value| -> Vec<String> {
        page["Resources"].as_array().unwrap().iter().map(|r| r["userName"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(names(&first), ["user6", "user5", "user4"]);
    assert!(first.get("previousCursor").is_none() && first.get("startIndex").is_none());
    let next = first["nextCursor"].as_str().unwrap();
    let second =
        app.get_ok(&format!("/scim/v2/Users?cursor={next}&count=3&sortBy=userName&sortOrder=descending")).await;
    assert_eq!(names(&second), ["user3", "user2", "user1"]);
    let third = app
        .get_ok(&format!(
            "/scim/v2/Users?cursor={}&count=3&sortBy=userName&sortOrder=descending",
            second["nextCursor"].as_str().unwrap()
        ))
        .await;
    assert_eq!(names(&third), ["user0"]);
    assert!(third.get("nextCursor").is_none());
    let back = app
        .get_ok(&format!(
            "/scim/v2/Users?cursor={}&count=3&sortBy=userName&sortOrder=descending",
            third["previousCursor"].as_str().unwrap()
        ))
        .await;
    assert_eq!(names(&back), ["user3", "user2", "user1"]);
    assert_eq!(back["totalResults"], 7);
    // A cursor replayed with another query is refused.
    let err = assert_scim_error(app.get(&format!("/scim/v2/Users?cursor={next}&count=3")).await, 400).await;
    assert_eq!(err["scimType"], "invalidCursor");
    // Default order, small pages: every user exactly once.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = app.get_ok(&format!("/scim/v2/Users?cursor={cursor}&count=2")).await;
        seen.extend(names(&page));
        match page["nextCursor"].as_str() {
            Some(c) => cursor = c.to_owned(),
            None => break,
        }
    }
    assert_eq!(seen, (0..7).map(|i| format!("user{i}")).collect::<Vec<_>>());
}

async fn attributes_and_excluded_attributes_shape_every_read(app: TestApp) {
    let created = app.create_user(barbara()).await;
    let id = created["id"].as_str().unwrap();
    let one = app.get_ok(&format!("/scim/v2/Users/{id}?attributes=userName,name.familyName,emails.value")).await;
    assert_eq!(one["id"], id);
    assert_eq!(one["userName"], "bjensen@example.com");
    assert_eq!(one["name"], json!({"familyName": "Jensen"}));
    assert_eq!(one["emails"][0], json!({"value": "bjensen@example.com"}));
    assert!(one.get("displayName").is_none() && one.get("meta").is_none());
    let excluded = app.get_ok(&format!("/scim/v2/Users?excludedAttributes=emails,{ENTERPRISE}:department")).await;
    let r = &excluded["Resources"][0];
    assert!(r.get("emails").is_none());
    assert!(r[ENTERPRISE].get("department").is_none() && r[ENTERPRISE]["employeeNumber"] == "701984");
    let search = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "attributes": ["displayName"],
        "filter": "displayName sw \"babs\"", "startIndex": 1, "count": 10});
    for path in ["/scim/v2/Users/.search", "/scim/v2/.search"] {
        let res = app.post(path, &search).await;
        assert_eq!(res.status(), 200);
        let found = json(res).await;
        assert_eq!(found["totalResults"], 1);
        assert_eq!(
            found["Resources"][0],
            json!({"id": id, "displayName": "Babs Jensen", "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"]})
        );
    }
    let created = app.post("/scim/v2/Users?attributes=userName", &user("projected")).await;
    assert_eq!(created.status(), 201);
    let body = json(created).await;
    assert!(body.get("name").is_none() && body["userName"] == "projected");
}

async fn discovery_describes_what_is_served(app: TestApp) {
    let spc = app.get_ok("/scim/v2/ServiceProviderConfig").await;
    assert_eq!(spc["patch"]["supported"], true);
    assert_eq!(spc["filter"]["supported"], true);
    assert_eq!(spc["filter"]["maxResults"], 1000);
    assert_eq!(spc["etag"]["supported"], true);
    assert_eq!(spc["sort"]["supported"], true);
    assert_eq!(spc["bulk"]["supported"], true);
    assert_eq!(spc["bulk"]["maxOperations"], 1000);
    assert_eq!(spc["pagination"]["cursor"], true);
    assert_eq!(spc["pagination"]["maxPageSize"], 1000);
    let types = app.get_ok("/scim/v2/ResourceTypes").await;
    assert_eq!(types["Resources"][0]["endpoint"], "/Users");
    assert_eq!(types["Resources"][0]["schemaExtensions"].as_array().unwrap().len(), 2);
    let schemas = app.get_ok("/scim/v2/Schemas").await;
    let urns: Vec<&str> = schemas["Resources"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert!(urns.contains(&"urn:ietf:params:scim:schemas:core:2.0:User"));
    assert!(urns.contains(&ENTERPRISE));
    assert!(urns.contains(&"urn:ietf:params:scim:schemas:extension:roster:2.0:User"));
    let user_schema = app.get_ok("/scim/v2/Schemas/urn:ietf:params:scim:schemas:core:2.0:User").await;
    let user_name = user_schema["attributes"].as_array().unwrap().iter().find(|a| a["name"] == "userName").unwrap();
    assert_eq!(user_name["uniqueness"], "server");
    assert_eq!(user_name["caseExact"], false);
    assert_scim_error(app.get("/scim/v2/Schemas/urn:nope").await, 404).await;
    assert_scim_error(app.get("/scim/v2/Me").await, 501).await;
}

async fn tenants_never_see_each_other(app: TestApp) {
    let created = app.create_user(user("shared-name")).await;
    let id = created["id"].as_str().unwrap();
    roster::db::tenants::create(&mut app.connection(), "other").unwrap();
    let other = app.issue_token("other", "other-idp", "scim");
    assert_scim_error(app.get_with(&format!("/scim/v2/Users/{id}"), &other).await, 404).await;
    let listed = json(app.get_with("/scim/v2/Users", &other).await).await;
    assert_eq!(listed["totalResults"], 0);
    let res = app.client.delete(app.url(&format!("/scim/v2/Users/{id}"))).bearer_auth(&other).send().await.unwrap();
    assert_scim_error(res, 404).await;
    // The same userName may exist in both tenants.
    let res =
        app.client.post(app.url("/scim/v2/Users")).bearer_auth(&other).json(&user("shared-name")).send().await.unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(app.get_ok(&format!("/scim/v2/Users/{id}")).await["userName"], "shared-name");
}

/// Regression: an `or` filter was spliced into the listing's SQL without brackets, so
/// `tenant AND a OR b` answered `GET /Users?filter=a or b` with other tenants' users matching `b`.
async fn an_or_filter_never_reaches_another_tenant(app: TestApp) {
    app.create_user(user("ours")).await;
    roster::db::tenants::create(&mut app.connection(), "other").unwrap();
    let other = app.issue_token("other", "other-idp", "scim");
    let res =
        app.client.post(app.url("/scim/v2/Users")).bearer_auth(&other).json(&user("theirs")).send().await.unwrap();
    assert_eq!(res.status(), 201);
    let filters =
        ["userName eq \"nobody\" or userName pr", "userName pr or id pr", "not (userName eq \"x\") or userName pr"];
    for filter in filters {
        let query = format!("/scim/v2/Users?{}", q(filter));
        let listed = json(app.get_with(&query, &other).await).await;
        let names: Vec<_> = listed["Resources"].as_array().unwrap().iter().map(|u| u["userName"].clone()).collect();
        assert_eq!(names, [serde_json::json!("theirs")], "{filter}");
        let body =
            serde_json::json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": filter});
        let res = app.client.post(app.url("/scim/v2/.search")).bearer_auth(&other).json(&body).send().await.unwrap();
        assert_eq!(json(res).await["totalResults"], 1, "/.search {filter}");
    }
}

async fn read_only_tokens_cannot_write(app: TestApp) {
    let reader = app.issue_token("default", "auditor", "scim:read");
    let res = app.client.post(app.url("/scim/v2/Users")).bearer_auth(&reader).json(&user("x")).send().await.unwrap();
    assert_scim_error(res, 403).await;
    let res = app.client.get(app.url("/scim/v2/Users")).bearer_auth(&reader).send().await.unwrap();
    assert_eq!(res.status(), 200);
}

both_backends!(
    create_answers_201_with_location_and_the_full_resource,
    usernames_are_unique_regardless_of_case,
    invalid_users_get_clear_errors_and_nothing_is_stored,
    read_only_attributes_are_ignored_and_names_are_case_insensitive,
    put_replaces_the_resource,
    okta_full_put_keeps_active_and_accepts_password,
    patch_applies_rfc_operations_atomically,
    entra_patch_forms_are_accepted,
    delete_answers_204_and_then_404_for_everything,
    etags_guard_writes_and_save_reads,
    filters_run_the_whole_grammar,
    invalid_filters_answer_400_invalid_filter,
    sorting_and_index_paging_are_stable,
    cursor_paging_walks_forward_and_back,
    attributes_and_excluded_attributes_shape_every_read,
    discovery_describes_what_is_served,
    tenants_never_see_each_other,
    an_or_filter_never_reaches_another_tenant,
    read_only_tokens_cannot_write,
);

async fn lifecycle_attributes_cannot_be_removed_and_put_keeps_the_state(app: TestApp) {
    let created = app.create_user(json!({"userName": "stateful", "active": false})).await;
    let path = format!("/scim/v2/Users/{}", created["id"].as_str().unwrap());
    for path_name in ["active", "urn:ietf:params:scim:schemas:extension:roster:2.0:User:formerMember"] {
        let err = assert_scim_error(
            app.patch(&path, &json!({"Operations": [{"op": "remove", "path": path_name}]})).await,
            400,
        )
        .await;
        assert_eq!(err["scimType"], "mutability", "{path_name}");
    }
    // A PUT that leaves `active` out changes no state.
    let body = json(app.put(&path, &json!({"userName": "stateful", "displayName": "S"})).await).await;
    assert_eq!(body["active"], false);
}

async fn wrong_methods_answer_405_with_allow(app: TestApp) {
    for (method, path, allow) in [
        (reqwest::Method::POST, "/scim/v2/ServiceProviderConfig", "GET"),
        (reqwest::Method::DELETE, "/scim/v2/Schemas", "GET"),
        (reqwest::Method::PUT, "/scim/v2/ResourceTypes", "GET"),
        (reqwest::Method::DELETE, "/scim/v2/Users", "GET, POST"),
        (reqwest::Method::GET, "/scim/v2/Users/.search", "POST"),
    ] {
        let res = app.client.request(method.clone(), app.url(path)).bearer_auth(&app.token).send().await.unwrap();
        assert_eq!(res.headers()["allow"], allow, "{method} {path}");
        assert_scim_error(res, 405).await;
    }
}

both_backends!(lifecycle_attributes_cannot_be_removed_and_put_keeps_the_state, wrong_methods_answer_405_with_allow);

/// totalResults of an unfiltered list (kept by triggers) and of a filter that matches everyone
/// (counted by a query) for users and groups.
async fn totals(app: &TestApp, token: &str) -> [i64; 4] {
    let mut out = [0; 4];
    for (i, path) in [
        "/scim/v2/Users?count=1".to_owned(),
        format!("/scim/v2/Users?count=1&{}", q("userName pr")),
        "/scim/v2/Groups?count=1".to_owned(),
        format!("/scim/v2/Groups?count=1&{}", q("displayName pr")),
    ]
    .iter()
    .enumerate()
    {
        let res = app.get_with(path, token).await;
        out[i] = json(res).await["totalResults"].as_i64().unwrap_or(-1);
    }
    out
}

async fn unfiltered_totals_follow_every_create_and_delete(app: TestApp) {
    let token = app.token.clone();
    assert_eq!(totals(&app, &token).await, [0, 0, 0, 0]);
    let mut ids = Vec::new();
    for k in 0..5 {
        ids.push(app.create_user(user(&format!("count{k}"))).await["id"].as_str().unwrap().to_owned());
    }
    let mut groups = Vec::new();
    for k in 0..2 {
        let res = app.post("/scim/v2/Groups", &json!({"displayName": format!("team{k}")})).await;
        groups.push(json(res).await["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(totals(&app, &token).await, [5, 5, 2, 2]);
    for id in &ids[..2] {
        assert_eq!(app.delete(&format!("/scim/v2/Users/{id}")).await.status(), 204);
    }
    assert_eq!(app.delete(&format!("/scim/v2/Groups/{}", groups[0])).await.status(), 204);
    // A refused create (duplicate userName) changes nothing.
    assert_scim_error(app.post("/scim/v2/Users", &user("count4")).await, 409).await;
    assert_eq!(totals(&app, &token).await, [3, 3, 1, 1]);

    // Concurrent creates, which on PostgreSQL add to several slots.
    let bodies: Vec<Value> = (0..20).map(|k| user(&format!("burst{k}"))).collect();
    let creates = bodies.iter().map(|body| app.post("/scim/v2/Users", body));
    for res in futures_util::future::join_all(creates).await {
        assert_eq!(res.status(), 201);
    }
    assert_eq!(totals(&app, &token).await, [23, 23, 1, 1]);

    // Another tenant's rows count for it alone, and leave nothing behind when it is deleted.
    let rival = roster::db::tenants::create(&mut app.connection(), "rival").unwrap();
    let rival_token = app.issue_token("rival", "okta", "scim");
    for k in 0..3 {
        let res =
            app.client.post(app.url("/scim/v2/Users")).bearer_auth(&rival_token).json(&user(&format!("r{k}"))).send();
        assert_eq!(res.await.unwrap().status(), 201);
    }
    assert_eq!(totals(&app, &rival_token).await, [3, 3, 0, 0]);
    assert_eq!(totals(&app, &token).await, [23, 23, 1, 1]);
    assert!(roster::db::tenants::delete(&mut app.connection(), "rival").unwrap());
    assert_eq!(roster::db::tenants::resource_count(&mut app.connection(), &rival.id, "User").unwrap(), 0);
    let rows: i64 = {
        use diesel::prelude::*;
        use roster::db::schema::resource_counts;
        resource_counts::table
            .filter(resource_counts::tenant_id.eq(&rival.id))
            .count()
            .get_result(&mut app.connection())
            .unwrap()
    };
    assert_eq!(rows, 0, "a deleted tenant's counts are removed with it");
}

both_backends!(unfiltered_totals_follow_every_create_and_delete);

/// A write answers with the user as stored (no read-back), and the index of multi-valued items
/// follows the items whichever way they change, and only then.
async fn write_answers_match_later_reads_and_item_filters_follow_changes(app: TestApp) {
    let created =
        app.create_user(json!({"userName": "items", "emails": [{"value": "old@example.com", "type": "work"}]})).await;
    let path = format!("/scim/v2/Users/{}", created["id"].as_str().unwrap());
    let found = |email: &str| format!("/scim/v2/Users?{}", q(&format!("emails.value eq \"{email}\"")));
    let strip = |mut v: Value| {
        v.as_object_mut().unwrap().remove("groups");
        v
    };
    assert_eq!(strip(created.clone()), strip(app.get_ok(&path).await));
    let deactivate = json!({"Operations": [{"op": "replace", "path": "active", "value": false}]});
    let patched = json(app.patch(&path, &deactivate).await).await;
    assert_eq!(patched, app.get_ok(&path).await, "the PATCH answer is what a GET then shows");
    assert_eq!(app.get_ok(&found("old@example.com")).await["totalResults"], 1, "items kept across a state change");
    let swap = json!({"Operations": [{"op": "replace", "path": "emails", "value": [{"value": "new@example.com"}]}]});
    let swapped = json(app.patch(&path, &swap).await).await;
    assert_eq!(swapped, app.get_ok(&path).await);
    assert_eq!(app.get_ok(&found("old@example.com")).await["totalResults"], 0);
    assert_eq!(app.get_ok(&found("new@example.com")).await["totalResults"], 1);
    let put = json(app.put(&path, &json!({"userName": "items", "active": false})).await).await;
    assert_eq!(put, app.get_ok(&path).await);
    assert_eq!(app.get_ok(&found("new@example.com")).await["totalResults"], 0, "a PUT without emails drops them");
}

both_backends!(write_answers_match_later_reads_and_item_filters_follow_changes);

/// An index-paged walk (Okta's import) continues after the last row it was shown: the pages are
/// those of plain offsets while nothing changes, and a user removed from an earlier page does
/// not shift the next one (no user skipped), with or without sortBy.
async fn index_walks_continue_after_the_row_they_last_saw(app: TestApp) {
    for k in 0..25 {
        app.create_user(user(&format!("walk{k:02}"))).await;
    }
    for order in ["", "&sortBy=userName&sortOrder=descending"] {
        let first = walk_page(&app, 1, order).await;
        let second = walk_page(&app, 11, order).await;
        let third = walk_page(&app, 21, order).await;
        let total = app.get_ok("/scim/v2/Users?count=0").await["totalResults"].as_u64().unwrap() as usize;
        let mut all: Vec<String> = [first.clone(), second.clone(), third].concat();
        assert_eq!(all.len(), total);
        all.sort();
        all.dedup();
        assert_eq!(all.len(), total, "every user once");
        if !order.is_empty() {
            assert_eq!(first[0], "walk24", "sorted descending");
        }
        // The same walk again from the start gives the same pages.
        assert_eq!(walk_page(&app, 1, order).await, first);
        assert_eq!(walk_page(&app, 11, order).await, second);
        if order.is_empty() {
            // A user of the first page goes away; the walk's next page is still the one after
            // the last row it saw, where an offset would now skip a user.
            let filter = q(&format!("userName eq \"{}\"", first[3]));
            let victim = app.get_ok(&format!("/scim/v2/Users?{filter}")).await;
            let id = victim["Resources"][0]["id"].as_str().unwrap().to_owned();
            assert_eq!(app.delete(&format!("/scim/v2/Users/{id}")).await.status(), 204);
            assert_eq!(walk_page(&app, 11, order).await, second, "no user skipped");
        }
    }
}

async fn walk_page(app: &TestApp, start: usize, order: &str) -> Vec<String> {
    let body = app.get_ok(&format!("/scim/v2/Users?startIndex={start}&count=10{order}")).await;
    let total = app.get_ok("/scim/v2/Users?count=0").await["totalResults"].clone();
    assert_eq!(body["totalResults"], total);
    body["Resources"].as_array().unwrap().iter().map(|r| r["userName"].as_str().unwrap().to_owned()).collect()
}

both_backends!(index_walks_continue_after_the_row_they_last_saw);

/// Many concurrent GETs by id (which PostgreSQL answers in shared round trips) each get their
/// own user, and never another tenant's, even when asked for in the same instant.
async fn concurrent_reads_by_id_answer_each_caller_alone(app: TestApp) {
    let mut ids = Vec::new();
    for k in 0..20 {
        ids.push(app.create_user(user(&format!("many{k}"))).await["id"].as_str().unwrap().to_owned());
    }
    roster::db::tenants::create(&mut app.connection(), "rival").unwrap();
    let rival = app.issue_token("rival", "okta", "scim");
    let mut asks = Vec::new();
    for round in 0..5 {
        for (k, id) in ids.iter().enumerate() {
            let from_rival = (k + round) % 3 == 0;
            let token = if from_rival { &rival } else { &app.token };
            let url = app.url(&format!("/scim/v2/Users/{id}"));
            asks.push((k, from_rival, app.client.get(url).bearer_auth(token).send()));
        }
        let url = app.url("/scim/v2/Users/no-such-id");
        asks.push((usize::MAX, false, app.client.get(url).bearer_auth(&app.token).send()));
    }
    let (meta, requests): (Vec<(usize, bool)>, Vec<_>) = asks.into_iter().map(|(k, r, f)| ((k, r), f)).unzip();
    for ((k, from_rival), res) in meta.into_iter().zip(futures_util::future::join_all(requests).await) {
        let res = res.unwrap();
        if k == usize::MAX || from_rival {
            assert_scim_error(res, 404).await;
        } else {
            assert_eq!(json(res).await["userName"], format!("many{k}"));
        }
    }
}

both_backends!(concurrent_reads_by_id_answer_each_caller_alone);

/// `meta.lastModified` filters, what a client syncing "what changed since" asks, follow every
/// write of a user: create, PATCH (a deactivation), PUT, delete; and stay within the tenant. On
/// PostgreSQL they read the side table that triggers keep (migration 000010), on SQLite the column.
async fn last_modified_filters_follow_every_write(app: TestApp) {
    let mut stamps = Vec::new();
    let mut paths = Vec::new();
    for name in ["mod-a", "mod-b", "mod-c"] {
        let created = app.create_user(user(name)).await;
        stamps.push(created["meta"]["lastModified"].as_str().unwrap().to_owned());
        paths.push(format!("/scim/v2/Users/{}", created["id"].as_str().unwrap()));
        app.clock.advance(chrono::Duration::seconds(1));
    }
    let [t_a, t_b, t_c] = [&stamps[0], &stamps[1], &stamps[2]];
    let cases = [
        (format!("meta.lastModified gt \"{t_b}\""), vec!["mod-c"]),
        (format!("meta.lastModified ge \"{t_b}\""), vec!["mod-b", "mod-c"]),
        (format!("meta.lastModified eq \"{t_b}\""), vec!["mod-b"]),
        (format!("meta.lastModified lt \"{t_b}\""), vec!["mod-a"]),
        (format!("meta.lastModified le \"{t_b}\""), vec!["mod-a", "mod-b"]),
        (format!("meta.lastModified ne \"{t_b}\""), vec!["mod-a", "mod-c"]),
        (format!("not (meta.lastModified gt \"{t_a}\")"), vec!["mod-a"]),
        (format!("meta.lastModified gt \"{t_a}\" and userName eq \"mod-c\""), vec!["mod-c"]),
        (format!("meta.lastModified lt \"{t_b}\" or userName eq \"mod-c\""), vec!["mod-a", "mod-c"]),
        ("meta.lastModified pr".to_owned(), vec!["mod-a", "mod-b", "mod-c"]),
    ];
    for (filter, expected) in &cases {
        assert_eq!(ids(&app, &q(filter)).await, *expected, "filter {filter}");
    }

    let since_c = q(&format!("meta.lastModified gt \"{t_c}\""));
    let deactivate = json!({"Operations": [{"op": "replace", "path": "active", "value": false}]});
    let patched = json(app.patch(&paths[0], &deactivate).await).await;
    let t_patch = patched["meta"]["lastModified"].as_str().unwrap().to_owned();
    assert!(t_patch.as_str() > t_c.as_str(), "{t_patch} after {t_c}");
    assert_eq!(ids(&app, &since_c).await, ["mod-a"], "a deactivation is a change");
    assert_eq!(ids(&app, &q(&format!("meta.lastModified eq \"{t_patch}\""))).await, ["mod-a"]);
    assert_eq!(ids(&app, &q(&format!("meta.lastModified eq \"{t_a}\""))).await, Vec::<String>::new());

    app.clock.advance(chrono::Duration::seconds(1));
    let put = json(app.put(&paths[1], &json!({"userName": "mod-b", "displayName": "Bee"})).await).await;
    assert!(put["meta"]["lastModified"].as_str().unwrap() > t_patch.as_str());
    assert_eq!(ids(&app, &since_c).await, ["mod-a", "mod-b"]);
    let since_patch = q(&format!("meta.lastModified gt \"{t_patch}\""));
    assert_eq!(ids(&app, &since_patch).await, ["mod-b"]);
    assert_eq!(ids(&app, "sortBy=meta.lastModified&sortOrder=descending").await, ["mod-b", "mod-a", "mod-c"]);

    // Another tenant's later changes are not this tenant's.
    roster::db::tenants::create(&mut app.connection(), "rival").unwrap();
    let rival = app.issue_token("rival", "okta", "scim");
    app.clock.advance(chrono::Duration::seconds(1));
    let res = app.client.post(app.url("/scim/v2/Users")).bearer_auth(&rival).json(&user("mod-r")).send().await.unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(ids(&app, &since_patch).await, ["mod-b"]);
    let theirs = json(app.get_with(&format!("/scim/v2/Users?{since_c}"), &rival).await).await;
    assert_eq!(theirs["totalResults"], 1);
    assert_eq!(theirs["Resources"][0]["userName"], "mod-r");

    // A deleted user is gone from the filter; the others stay as they were.
    assert_eq!(app.delete(&paths[1]).await.status(), 204);
    assert_eq!(ids(&app, &since_c).await, ["mod-a"]);
    assert_eq!(ids(&app, &q("meta.lastModified pr")).await, ["mod-a", "mod-c"]);
}

both_backends!(last_modified_filters_follow_every_write);

// -- userName profile (RFC 8265 usernames, compared by compatibility caseless matching) ------------

async fn lookalike_user_names_collide_with_the_account_they_imitate(app: TestApp) {
    let admin = app.create_user(user("admin")).await;
    for lookalike in ["ADMIN", "Admin", "ａｄｍｉｎ", "ＡＤＭＩＮ"] {
        let err = assert_scim_error(app.post("/scim/v2/Users", &user(lookalike)).await, 409).await;
        assert_eq!(err["scimType"], "uniqueness", "{lookalike}");
    }
    assert_eq!(ids(&app, &q("userName eq \"ADMIN\"")).await, ["admin"]);
    assert_eq!(ids(&app, &q("userName eq \"ａｄｍｉｎ\"")).await, ["admin"]);
    assert_eq!(admin["userName"], "admin");

    // Full case folding, not lowercasing: ß is ss, long s is s.
    app.create_user(user("Straße")).await;
    assert_scim_error(app.post("/scim/v2/Users", &user("STRASSE")).await, 409).await;
    assert_eq!(ids(&app, &q("userName eq \"strasse\"")).await, ["Straße"]);
    assert_eq!(ids(&app, &q("userName sw \"STRAS\"")).await, ["Straße"]);
    app.create_user(user("sam")).await;
    assert_scim_error(app.post("/scim/v2/Users", &user("ſam")).await, 409).await;

    // A Cyrillic а is another letter: another userName (mixed-script confusables are not refused).
    let cyrillic = app.create_user(user("\u{430}dmin")).await;
    assert_eq!(cyrillic["userName"], "\u{430}dmin");
    assert_eq!(ids(&app, &q("userName eq \"admin\"")).await, ["admin"]);
}

async fn user_names_with_hidden_or_reordering_characters_are_refused(app: TestApp) {
    let cases = [
        ("ad\u{200D}min", "invisible"),
        ("ad\u{200B}min", "invisible"),
        ("\u{202E}nimda", "bidirectional"),
        ("admin\u{2067}", "bidirectional"),
        ("admin ", "begin or end with a space"),
        (" admin", "begin or end with a space"),
        ("ad\tmin", "control"),
        ("admin\n", "control"),
        ("ad\u{A0}min", "U+0020"),
        ("admin☃", "identifier"),
    ];
    for (name, why) in cases {
        let err = assert_scim_error(app.post("/scim/v2/Users", &user(name)).await, 400).await;
        assert_eq!(err["scimType"], "invalidValue", "{name:?}");
        let detail = err["detail"].as_str().unwrap();
        assert!(detail.contains("userName") && detail.contains(why), "{name:?}: {detail}");
    }
    assert_eq!(app.get_ok("/scim/v2/Users").await["totalResults"], 0);

    // PUT and PATCH are held to the same profile.
    let bob = app.create_user(user("bob")).await;
    let path = format!("/scim/v2/Users/{}", bob["id"].as_str().unwrap());
    assert_scim_error(app.put(&path, &user("bob\u{200D}")).await, 400).await;
    let patch = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "userName", "value": "b\u{202E}ob"}]
    });
    let err = assert_scim_error(app.patch(&path, &patch).await, 400).await;
    assert_eq!(err["scimType"], "invalidValue");
    assert_eq!(app.get_ok(&path).await["userName"], "bob");
    // Words separated by spaces are RFC 8265 §3.1 userparts.
    app.create_user(user("Barbara Jensen")).await;
}

async fn international_user_names_work_and_normalisation_forms_collide(app: TestApp) {
    let jose = app.create_user(user("Jos\u{E9}")).await;
    assert_eq!(jose["userName"], "Jos\u{E9}", "stored and returned as sent");
    let err = assert_scim_error(app.post("/scim/v2/Users", &user("JOSE\u{301}")).await, 409).await;
    assert_eq!(err["scimType"], "uniqueness");
    assert_eq!(ids(&app, &q("userName eq \"JOS\u{C9}\"")).await, ["Jos\u{E9}"]);
    for name in ["müller@example.de", "日本太郎", "Ἀθηνᾶ", "ı.yılmaz"] {
        assert_eq!(app.create_user(user(name)).await["userName"], name);
        assert_eq!(ids(&app, &q(&format!("userName eq \"{name}\""))).await, [name]);
    }
    assert_eq!(ids(&app, &q("userName eq \"MÜLLER@EXAMPLE.DE\"")).await, ["müller@example.de"]);
    assert_eq!(ids(&app, &q("userName sw \"日本\"")).await, ["日本太郎"]);
}

/// Keys stored under the former comparison (NFC and lowercasing) are recomputed when the server
/// starts; two accounts that the new comparison makes one keep working, the later by its old key.
async fn stored_user_name_keys_are_recomputed_at_start_up(app: TestApp) {
    use diesel::prelude::*;
    use roster::db::schema::{server_settings, users};

    let forget_keys = |conn: &mut roster::db::DbConnection| {
        diesel::delete(server_settings::table.filter(server_settings::name.eq("user_name_key"))).execute(conn).unwrap();
    };
    let set_key = |conn: &mut roster::db::DbConnection, user: &Value, key: &str| {
        diesel::update(users::table.filter(users::id.eq(user["id"].as_str().unwrap().to_owned())))
            .set(users::user_name_folded.eq(key.to_owned()))
            .execute(conn)
            .unwrap();
    };
    // As the former comparison stored them: `Straße` and `STRASSE` were two userNames.
    let street = app.create_user(user("Straße")).await;
    set_key(&mut app.connection(), &street, "straße");
    app.create_user(user("STRASSE")).await;
    forget_keys(&mut app.connection());
    // Opening the database again is a start-up.
    drop(app.connection());
    assert_eq!(ids(&app, &q("userName eq \"strasse\"")).await, ["STRASSE"]);
    assert_eq!(ids(&app, &q("userName eq \"straße\"")).await, ["STRASSE"]);
    assert_eq!(app.get_ok(&format!("/scim/v2/Users/{}", street["id"].as_str().unwrap())).await["userName"], "Straße");
    assert_scim_error(app.post("/scim/v2/Users", &user("strasse")).await, 409).await;

    // Keys that changed are recomputed: ſ was its own letter under lowercasing.
    let sam = app.create_user(user("ſam")).await;
    set_key(&mut app.connection(), &sam, "ſam");
    forget_keys(&mut app.connection());
    drop(app.connection());
    assert_eq!(ids(&app, &q("userName eq \"SAM\"")).await, ["ſam"]);
}

both_backends!(
    lookalike_user_names_collide_with_the_account_they_imitate,
    user_names_with_hidden_or_reordering_characters_are_refused,
    international_user_names_work_and_normalisation_forms_collide,
    stored_user_name_keys_are_recomputed_at_start_up,
);

/// An account stored before the profile, under a userName the profile now refuses, can still be
/// written with that userName unchanged (Okta PUTs the whole user; Entra deactivates by PATCH),
/// and renamed to an acceptable one; only a new userName is held to the profile.
async fn a_stored_user_name_the_profile_refuses_keeps_working_until_changed(app: TestApp) {
    use diesel::prelude::*;
    use roster::db::schema::users;

    let legacy = app.create_user(user("legacy")).await;
    let id = legacy["id"].as_str().unwrap().to_owned();
    {
        let mut conn = app.connection();
        let data: String = users::table.filter(users::id.eq(&id)).select(users::data).first(&mut *conn).unwrap();
        let mut data: Value = serde_json::from_str(&data).unwrap();
        data["userName"] = json!("legacy\tname ");
        diesel::update(users::table.filter(users::id.eq(&id)))
            .set((users::user_name.eq("legacy\tname "), users::data.eq(data.to_string())))
            .execute(&mut *conn)
            .unwrap();
    }
    let path = format!("/scim/v2/Users/{id}");
    let mut body = user("legacy\tname ");
    body["title"] = json!("Guide");
    let put = json(app.put(&path, &body).await).await;
    assert_eq!(put["userName"], "legacy\tname ");
    assert_eq!(put["title"], "Guide");
    let deactivate = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "active", "value": false}]
    });
    assert_eq!(json(app.patch(&path, &deactivate).await).await["active"], false);
    // Another refused userName is still refused; an acceptable one is taken.
    assert_scim_error(app.put(&path, &user("legacy\tname")).await, 400).await;
    assert_eq!(json(app.put(&path, &user("legacy name")).await).await["userName"], "legacy name");
}

both_backends!(a_stored_user_name_the_profile_refuses_keeps_working_until_changed);

/// OpenID IPSIE SCIM profile §6.1.2: the Application MUST NOT support `password`. The User schema
/// does not declare it, and a password sent anyway (Okta sends one on create) is ignored, on
/// POST, PUT and both forms of PATCH: the write succeeds and nothing of it is stored.
async fn a_password_sent_is_ignored_and_never_stored(app: TestApp) {
    let schema = app.get_ok("/scim/v2/Schemas/urn:ietf:params:scim:schemas:core:2.0:User").await;
    let names: Vec<&str> =
        schema["attributes"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert!(!names.contains(&"password"), "{names:?}");

    let created = app.create_user(json!({"userName": "pat", "password": "zq-create-secret"})).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let path = format!("/scim/v2/Users/{id}");
    let res = app.put(&path, &json!({"userName": "pat", "password": "zq-put-secret"})).await;
    assert_eq!(res.status(), 200);
    let patches = [
        json!({"Operations": [{"op": "replace", "path": "password", "value": "zq-patch-secret"}]}),
        json!({"Operations": [{"op": "replace", "value": {"password": "zq-patch-secret", "nickName": "P"}}]}),
    ];
    for body in patches {
        let res = app.patch(&path, &body).await;
        assert_eq!(res.status(), 200, "{body}");
    }
    let mut conn = app.connection();
    let tenant = roster::db::tenants::by_name(&mut conn, "default").unwrap().unwrap();
    let stored = roster::db::users::find(&mut conn, &tenant.id, &id).unwrap().unwrap();
    assert!(!stored.data.contains("zq-") && !stored.data.to_lowercase().contains("password"), "{}", stored.data);
    assert_eq!(app.get_ok(&path).await["nickName"], "P", "the rest of the PATCH applied");
}

both_backends!(a_password_sent_is_ignored_and_never_stored);
