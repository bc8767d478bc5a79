//! What real clients send that a strict reading would refuse, accepted when it breaks only a
//! SHOULD or a convention (the decisions are listed in conformance-tests/README.md).

use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{assert_scim_error, TestApp};

const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

async fn status_of(res: reqwest::Response) -> (u16, Value) {
    let status = res.status().as_u16();
    let text = res.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn endpoint_names_are_matched_in_any_case(app: TestApp) {
    let res = app.post("/scim/v2/users", &json!({"userName": "lower.case"})).await;
    let (status, created) = status_of(res).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap();
    // The resource's address stays the canonical one, whatever path created it.
    assert_eq!(created["meta"]["location"], json!(app.url(&format!("/scim/v2/Users/{id}"))));

    for path in [
        "/scim/v2/users".to_owned(),
        "/SCIM/V2/USERS".to_owned(),
        format!("/scim/v2/users/{id}"),
        "/scim/v2/groups".to_owned(),
        "/scim/v2/serviceproviderconfig".to_owned(),
        "/scim/v2/resourcetypes".to_owned(),
        "/scim/v2/resourcetypes/user".to_owned(),
        "/scim/v2/schemas".to_owned(),
        "/scim/v2/schemas/URN:IETF:PARAMS:SCIM:SCHEMAS:CORE:2.0:USER".to_owned(),
    ] {
        let (status, body) = status_of(app.get(&path).await).await;
        assert_eq!(status, 200, "GET {path}: {body}");
    }
    let search = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": "userName eq \"lower.case\""});
    let (status, found) = status_of(app.post("/scim/v2/users/.SEARCH", &search).await).await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["totalResults"], json!(1));

    // Ids are case-exact (RFC 7643 §3.1): only the endpoint name is folded.
    let (status, _) = status_of(app.get(&format!("/scim/v2/Users/{}", id.to_uppercase())).await).await;
    assert_eq!(status, 404);
}

async fn a_trailing_slash_is_accepted_on_resource_and_collection_paths(app: TestApp) {
    let res = app.post("/scim/v2/Users/", &json!({"userName": "slash"})).await;
    let (status, created) = status_of(res).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap();
    let location = app.url(&format!("/scim/v2/Users/{id}"));
    assert_eq!(created["meta"]["location"], json!(location));

    let list = app.get_ok("/scim/v2/Users/").await;
    assert_eq!(list["totalResults"], json!(1));
    let one = app.get_ok(&format!("/scim/v2/Users/{id}/")).await;
    assert_eq!(one["meta"]["location"], json!(location));
    let patch = json!({"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "displayName", "value": "S"}]});
    let (status, patched) = status_of(app.patch(&format!("/scim/v2/Users/{id}/"), &patch).await).await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["displayName"], json!("S"));
    app.get_ok("/scim/v2/Groups/").await;
    app.get_ok("/scim/v2/ServiceProviderConfig/").await;
    let (status, _) = status_of(app.delete(&format!("/scim/v2/Users/{id}/")).await).await;
    assert_eq!(status, 204);
}

async fn a_uri_too_long_is_414_with_a_scim_error(app: TestApp) {
    let filter = format!("userName eq \"{}\"", "a".repeat(40_000));
    let res = app.get(&format!("/scim/v2/Users?filter={}", urlencoding(&filter))).await;
    let body = assert_scim_error(res, 414).await;
    assert!(body["detail"].as_str().unwrap().contains("URI"), "{body}");
}

fn urlencoding(s: &str) -> String {
    s.replace('%', "%25").replace(' ', "%20").replace('"', "%22")
}

async fn values_that_break_only_a_should_are_stored_as_sent(app: TestApp) {
    // RFC 7643 §4.1.2: emails SHOULD follow RFC 5321 and phone numbers SHOULD follow RFC 3966;
    // an IdP's data that does not is still its data.
    let user = app
        .create_user(json!({
            "userName": "loose",
            "emails": [{"value": "not an address", "type": "work"}],
            "phoneNumbers": [{"value": "(555) 555-0100 ext. 7", "type": "work"}],
        }))
        .await;
    assert_eq!(user["emails"][0]["value"], json!("not an address"));
    assert_eq!(user["phoneNumbers"][0]["value"], json!("(555) 555-0100 ext. 7"));
    let id = user["id"].as_str().unwrap();

    let patch = json!({"schemas": [PATCH_OP], "Operations": [
        {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "jdoe at example"}
    ]});
    let (status, patched) = status_of(app.patch(&format!("/scim/v2/Users/{id}"), &patch).await).await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["emails"][0]["value"], json!("jdoe at example"));
    let stored = app.get_ok(&format!("/scim/v2/Users/{id}")).await;
    assert_eq!(stored["emails"][0]["value"], json!("jdoe at example"));
}

async fn a_patch_naming_extra_schemas_beside_patch_op_is_applied(app: TestApp) {
    let user = app.create_user(json!({"userName": "extra.schemas"})).await;
    let id = user["id"].as_str().unwrap();
    let patch = json!({
        "schemas": [PATCH_OP, "urn:ietf:params:scim:schemas:core:2.0:User"],
        "Operations": [{"op": "replace", "path": "displayName", "value": "Extra"}],
    });
    let (status, patched) = status_of(app.patch(&format!("/scim/v2/Users/{id}"), &patch).await).await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["displayName"], json!("Extra"));

    // A body that names another message and not PatchOp is not a PATCH request (§3.5.2 MUST).
    let wrong = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "Operations": [{"op": "replace", "path": "displayName", "value": "Wrong"}],
    });
    assert_scim_error(app.patch(&format!("/scim/v2/Users/{id}"), &wrong).await, 400).await;
}

async fn group_member_forms_sent_by_okta_and_entra_are_accepted(app: TestApp) {
    let a = app.create_user(json!({"userName": "member.a"})).await["id"].as_str().unwrap().to_owned();
    let b = app.create_user(json!({"userName": "member.b"})).await["id"].as_str().unwrap().to_owned();
    let c = app.create_user(json!({"userName": "member.c"})).await["id"].as_str().unwrap().to_owned();
    // Okta sends each member with its `display`; Entra sends `type` and `$ref` too.
    let res = app
        .post(
            "/scim/v2/groups/",
            &json!({"displayName": "Forms", "members": [{"value": a, "display": "Someone Else", "type": "User", "$ref": "x"}]}),
        )
        .await;
    let (status, group) = status_of(res).await;
    assert_eq!(status, 201, "{group}");
    let id = group["id"].as_str().unwrap();
    // One member as an object instead of an array, one as a bare id (Entra's reference tests),
    // and `operations` in lower case.
    let patch = json!({"schemas": [PATCH_OP], "operations": [
        {"op": "Add", "path": "members", "value": {"value": b, "display": "B"}},
        {"op": "add", "path": "members", "value": c},
    ]});
    let res = app.patch(&format!("/scim/v2/Groups/{id}"), &patch).await;
    let status = res.status().as_u16();
    assert!(status == 200 || status == 204, "{status}: {}", res.text().await.unwrap());
    let group = app.get_ok(&format!("/scim/v2/Groups/{id}")).await;
    let mut members: Vec<&str> =
        group["members"].as_array().unwrap().iter().map(|m| m["value"].as_str().unwrap()).collect();
    members.sort();
    let mut expected = vec![a.as_str(), b.as_str(), c.as_str()];
    expected.sort();
    assert_eq!(members, expected);
}

async fn a_tenant_with_strict_validation_refuses_what_only_a_should_allows(app: TestApp) {
    let kept = app.create_user(json!({"userName": "kept", "emails": [{"value": "kept at example"}]})).await;
    let kept = kept["id"].as_str().unwrap();
    let strict = roster::db::tenants::PolicyChange { strict_validation: Some(true), ..Default::default() };
    roster::db::tenants::set_policy(&mut app.connection(), "default", &strict).expect("policy set");

    let res = app.post("/scim/v2/Users", &json!({"userName": "s1", "emails": [{"value": "not an address"}]})).await;
    let err = assert_scim_error(res, 400).await;
    assert_eq!(err["scimType"], "invalidValue");
    assert!(err["detail"].as_str().unwrap().contains("not an address"), "{err}");
    let res = app.post("/scim/v2/Users", &json!({"userName": "s2", "phoneNumbers": [{"value": "555-0100"}]})).await;
    assert_eq!(assert_scim_error(res, 400).await["scimType"], "invalidValue");
    let found = app.get_ok("/scim/v2/Users?filter=userName%20sw%20%22s%22").await;
    assert_eq!(found["totalResults"], json!(0), "nothing refused was stored");
    app.create_user(json!({
        "userName": "s3",
        "emails": [{"value": "s3@example.com"}],
        "phoneNumbers": [{"value": "tel:+1-201-555-0123"}],
    }))
    .await;

    // A value stored before the tenant turned strict does not block the account's other writes.
    let deactivate = json!({"schemas": [PATCH_OP], "Operations": [{"op": "replace", "value": {"active": false}}]});
    let (status, body) = status_of(app.patch(&format!("/scim/v2/Users/{kept}"), &deactivate).await).await;
    assert_eq!(status, 200, "{body}");
    let add = json!({"schemas": [PATCH_OP], "Operations": [{"op": "add", "path": "phoneNumbers", "value": [{"value": "555"}]}]});
    assert_scim_error(app.patch(&format!("/scim/v2/Users/{kept}"), &add).await, 400).await;
}

both_backends!(
    endpoint_names_are_matched_in_any_case,
    a_trailing_slash_is_accepted_on_resource_and_collection_paths,
    a_uri_too_long_is_414_with_a_scim_error,
    values_that_break_only_a_should_are_stored_as_sent,
    a_patch_naming_extra_schemas_beside_patch_op_is_applied,
    group_member_forms_sent_by_okta_and_entra_are_accepted,
    a_tenant_with_strict_validation_refuses_what_only_a_should_allows,
);
