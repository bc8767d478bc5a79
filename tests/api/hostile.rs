//! Hostile and concurrent input, from the attacker's side: every answer is a SCIM error, the
//! server keeps serving, and nothing is lost or duplicated.

use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{assert_scim_error, json, TestApp};

async fn still_serving(app: &TestApp) {
    assert_eq!(app.get("/scim/v2/ServiceProviderConfig").await.status(), 200);
}

async fn raw_post(app: &TestApp, content_type: &str, body: Vec<u8>) -> reqwest::Response {
    app.client
        .post(app.url("/scim/v2/Users"))
        .bearer_auth(&app.token)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn malformed_bodies_get_scim_errors(app: TestApp) {
    let deep = format!("{{\"userName\": \"x\", \"name\": {}{}}}", "[".repeat(5000), "]".repeat(5000));
    for (body, status) in [
        (deep.into_bytes(), 400),
        (b"{\"userName\": \"\xff\xfe\"}".to_vec(), 400),
        (b"".to_vec(), 400),
        (b"null".to_vec(), 400),
        (b"{\"userName\": \"a\"} trailing".to_vec(), 400),
    ] {
        assert_scim_error(raw_post(&app, "application/scim+json", body).await, status).await;
    }
    for content_type in ["text/plain", "application/xml", "multipart/form-data; boundary=x"] {
        assert_scim_error(raw_post(&app, content_type, b"{\"userName\":\"x\"}".to_vec()).await, 415).await;
    }
    // A body without a length is cut off at the limit as it streams.
    let chunks = futures_util::stream::iter((0..100).map(|_| Ok::<_, std::io::Error>(vec![b' '; 1024])));
    let res = app
        .client
        .post(app.url("/scim/v2/Users"))
        .bearer_auth(&app.token)
        .header("content-type", "application/scim+json")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_scim_error(res, 413).await;
    still_serving(&app).await;
}

async fn keys_repeated_with_other_case_are_refused(app: TestApp) {
    let err = assert_scim_error(
        raw_post(&app, "application/scim+json", br#"{"userName": "a", "USERNAME": "b"}"#.to_vec()).await,
        400,
    )
    .await;
    assert_eq!(err["scimType"], "invalidSyntax");
    assert_eq!(app.get_ok("/scim/v2/Users").await["totalResults"], 0);
}

async fn filters_cannot_inject_sql_or_wildcards(app: TestApp) {
    app.create_user(json!({"userName": "plain"})).await;
    app.create_user(json!({"userName": "o'brien\"; DROP TABLE users; --"})).await;
    app.create_user(json!({"userName": "50%_off"})).await;
    let count = |filter: &'static str| {
        let app = &app;
        async move {
            let res = app
                .client
                .get(app.url("/scim/v2/Users"))
                .query(&[("filter", filter)])
                .bearer_auth(&app.token)
                .send()
                .await
                .unwrap();
            let status = res.status();
            let body = json(res).await;
            assert_eq!(status, 200, "{filter}: {body}");
            body["totalResults"].as_i64().unwrap()
        }
    };
    assert_eq!(count(r#"userName eq "o'brien\"; DROP TABLE users; --""#).await, 1);
    assert_eq!(count(r#"userName co "'""#).await, 1);
    assert_eq!(count(r#"userName co "%""#).await, 1, "% is literal");
    assert_eq!(count(r#"userName co "_""#).await, 1, "_ is literal");
    assert_eq!(count(r#"userName sw "50%""#).await, 1);
    assert_eq!(count(r#"userName co "\\""#).await, 0);
    assert_eq!(app.get_ok("/scim/v2/Users").await["totalResults"], 3, "the table is still there");
}

async fn huge_filters_and_extreme_paging_are_bounded(app: TestApp) {
    app.create_user(json!({"userName": "one"})).await;
    // Over the filter's own limit, under the URI limit (a longer URI is 414, see tolerance.rs).
    let huge = "userName eq \"x\" or ".repeat(1000) + "userName eq \"one\"";
    let res = app
        .client
        .get(app.url("/scim/v2/Users"))
        .query(&[("filter", huge.as_str())])
        .bearer_auth(&app.token)
        .send()
        .await
        .unwrap();
    assert_eq!(assert_scim_error(res, 400).await["scimType"], "invalidFilter");
    let nested = "(".repeat(500) + "userName pr" + &")".repeat(500);
    let res = app
        .client
        .get(app.url("/scim/v2/Users"))
        .query(&[("filter", nested.as_str())])
        .bearer_auth(&app.token)
        .send()
        .await
        .unwrap();
    assert_scim_error(res, 400).await;
    for query in [
        "startIndex=9223372036854775807&count=5",
        "startIndex=-9223372036854775808",
        "count=9223372036854775807",
        "count=-1",
        "startIndex=1e30",
    ] {
        let res = app.get(&format!("/scim/v2/Users?{query}")).await;
        assert_eq!(res.status(), 200, "{query}");
        let body = json(res).await;
        assert!(body["itemsPerPage"].as_i64().unwrap() <= 1000);
    }
    still_serving(&app).await;
}

async fn user_names_equal_under_unicode_case_or_normalisation_collide(app: TestApp) {
    // "é" precomposed (U+00E9) and decomposed (e + U+0301); Greek capital and small sigma.
    app.create_user(json!({"userName": "jos\u{e9}"})).await;
    assert_scim_error(app.post("/scim/v2/Users", &json!({"userName": "jose\u{301}"})).await, 409).await;
    assert_scim_error(app.post("/scim/v2/Users", &json!({"userName": "JOS\u{c9}"})).await, 409).await;
    let found = app
        .client
        .get(app.url("/scim/v2/Users"))
        .query(&[("filter", "userName eq \"JOSE\u{301}\"")])
        .bearer_auth(&app.token)
        .send()
        .await
        .unwrap();
    assert_eq!(json(found).await["totalResults"], 1);
}

async fn concurrent_creates_of_one_user_name_give_one_201(app: TestApp) {
    let bodies: Vec<Value> = (0..12).map(|i| json!({"userName": "Racer", "externalId": format!("e{i}")})).collect();
    let results = futures_util::future::join_all(bodies.iter().map(|b| app.post("/scim/v2/Users", b))).await;
    let statuses: Vec<u16> = results.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(statuses.iter().filter(|&&s| s == 201).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|&&s| s == 409).count(), 11, "{statuses:?}");
    assert_eq!(app.get_ok("/scim/v2/Users").await["totalResults"], 1);
}

async fn concurrent_patches_with_one_if_match_give_one_success(app: TestApp) {
    let user = app.create_user(json!({"userName": "contended"})).await;
    let path = format!("/scim/v2/Users/{}", user["id"].as_str().unwrap());
    let version = user["meta"]["version"].as_str().unwrap().to_owned();
    let patches = (0..8).map(|i| {
        app.client
            .patch(app.url(&path))
            .bearer_auth(&app.token)
            .header("if-match", &version)
            .json(&json!({"Operations": [{"op": "replace", "path": "displayName", "value": format!("writer {i}")}]}))
            .send()
    });
    let results = futures_util::future::join_all(patches).await;
    let statuses: Vec<u16> = results.into_iter().map(|r| r.unwrap().status().as_u16()).collect();
    assert_eq!(statuses.iter().filter(|&&s| s == 200).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|&&s| s == 412).count(), 7, "{statuses:?}");
    // Without If-Match, concurrent patches all apply (each on fresh data).
    let adds: Vec<Value> = (0..8)
        .map(|i| json!({"Operations": [{"op": "add", "path": "emails", "value": [{"value": format!("w{i}@example.com")}]}]}))
        .collect();
    let results = futures_util::future::join_all(adds.iter().map(|b| app.patch(&path, b))).await;
    assert!(results.iter().all(|r| r.status() == 200));
    assert_eq!(app.get_ok(&path).await["emails"].as_array().unwrap().len(), 8, "no lost update");
}

async fn concurrent_member_changes_lose_nothing(app: TestApp) {
    let mut ids = Vec::new();
    for i in 0..16 {
        ids.push(app.create_user(json!({"userName": format!("m{i}")})).await["id"].as_str().unwrap().to_owned());
    }
    let initial: Vec<Value> = ids[8..].iter().map(|id| json!({"value": id})).collect();
    let group = json(app.post("/scim/v2/Groups", &json!({"displayName": "Busy", "members": initial})).await).await;
    let path = format!("/scim/v2/Groups/{}", group["id"].as_str().unwrap());
    let bodies: Vec<Value> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let op = if i < 8 {
                json!({"op": "add", "path": "members", "value": [{"value": id}]})
            } else {
                json!({"op": "remove", "path": format!("members[value eq \"{id}\"]")})
            };
            json!({"Operations": [op]})
        })
        .collect();
    let results = futures_util::future::join_all(bodies.iter().map(|b| app.patch(&path, b))).await;
    assert!(results.iter().all(|r| r.status() == 204), "{:?}", results.iter().map(|r| r.status()).collect::<Vec<_>>());
    let mut members: Vec<String> = app.get_ok(&path).await["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_str().unwrap().to_owned())
        .collect();
    members.sort();
    let mut expected = ids[..8].to_vec();
    expected.sort();
    assert_eq!(members, expected);
}

both_backends!(
    malformed_bodies_get_scim_errors,
    keys_repeated_with_other_case_are_refused,
    filters_cannot_inject_sql_or_wildcards,
    huge_filters_and_extreme_paging_are_bounded,
    user_names_equal_under_unicode_case_or_normalisation_collide,
    concurrent_creates_of_one_user_name_give_one_201,
    concurrent_patches_with_one_if_match_give_one_success,
    concurrent_member_changes_lose_nothing,
);

async fn nul_characters_in_urls_are_refused(app: TestApp) {
    for path in ["/scim/v2/Users/a%00b", "/scim/v2/Groups/a%00b", "/scim/v2/Users?filter=userName%20eq%20%22a%00b%22"] {
        let err = assert_scim_error(app.get(path).await, 400).await;
        assert!(err["detail"].as_str().unwrap().contains("NUL"), "{path}");
    }
    still_serving(&app).await;
}

both_backends!(nul_characters_in_urls_are_refused);
