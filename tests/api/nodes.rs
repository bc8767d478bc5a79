//! Several nodes on one PostgreSQL (DESIGN.md §5): writers that race on one database, as nodes
//! sharing it do, apply each effect once.

use serde_json::json;

use crate::helpers::{json as json_body, TestApp};

/// Requests to delete one deactivated account that race (an IdP retrying through another
/// node, or the same request twice) delete it once: one 204, then 404 (RFC 7644 §3.6), never a 500.
async fn racing_deletes_of_one_account_delete_it_once(app: TestApp) {
    for round in 0..5 {
        let user = app.create_user(json!({"userName": format!("racer{round}@example.com")})).await;
        let path = format!("/scim/v2/Users/{}", user["id"].as_str().unwrap());
        let deactivate = json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "active", "value": false}],
        });
        assert_eq!(app.patch(&path, &deactivate).await.status(), 200);
        let answers = futures_util::future::join_all((0..4).map(|_| app.delete(&path))).await;
        let mut statuses: Vec<u16> = answers.iter().map(|r| r.status().as_u16()).collect();
        statuses.sort();
        assert_eq!(statuses, [204, 404, 404, 404], "round {round}");
    }
}

/// Sweeps that run at once (on several nodes, or `roster sweep` beside a server) apply each
/// retention deletion once and all answer 200.
async fn racing_sweeps_delete_each_account_once(app: TestApp) {
    let change = roster::db::tenants::PolicyChange {
        grace_days: Some(0),
        delete_after_days: Some(Some(0)),
        ..Default::default()
    };
    roster::db::tenants::set_policy(&mut app.connection(), "default", &change).unwrap();
    let admin = app.issue_token("default", "operator", "admin,events");
    for round in 0..3 {
        for i in 0..8 {
            let user = app.create_user(json!({"userName": format!("leaver{round}-{i}@example.com")})).await;
            let id = user["id"].as_str().unwrap();
            let deactivate = json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "active", "value": false}],
            });
            assert_eq!(app.patch(&format!("/scim/v2/Users/{id}"), &deactivate).await.status(), 200);
        }
        let sweep = || app.client.post(app.url("/api/v1/admin/sweep")).bearer_auth(&admin).send();
        let mut deleted = 0;
        for answer in futures_util::future::join_all((0..4).map(|_| sweep())).await {
            let answer = answer.expect("request sent");
            assert_eq!(answer.status(), 200, "round {round}");
            deleted += json_body(answer).await["deleted"].as_u64().unwrap();
        }
        assert_eq!(deleted, 8, "round {round}: the sweeps together report each deletion once");
    }
    let feed = json_body(app.get_with("/api/v1/events?limit=1000", &admin).await).await;
    let deletions = feed["events"].as_array().unwrap().iter().filter(|e| e["type"] == "user.deleted").count();
    assert_eq!(deletions, 24, "one user.deleted event per account");
}

crate::both_backends!(racing_deletes_of_one_account_delete_it_once, racing_sweeps_delete_each_account_once);
