//! Groups, Settings and the Audit log in Chromium: an identity team opens a group to see who is
//! leaving it and when, changes the grace period, and finds the change in the audit log under
//! its own name.

use fantoccini::Locator;
use serde_json::json;

use super::helpers::{json, Backend, TestApp, TestDatabase};
use super::{click, screenshot, submit, text_of, type_into, wait_for, Driver};
use roster::panel::signin::{issue_link, LinkRequest};

async fn an_identity_team_reads_groups_and_changes_the_policy(backend: Backend) {
    let Some(driver) = Driver::start().await else { return };
    let Some(db) = TestDatabase::create(backend) else { return };
    let app = TestApp::spawn_with(db, |_| {}).await;
    let mut members = Vec::new();
    for (user, name) in [
        ("ada.lovelace", "Ada Lovelace"),
        ("alan.turing", "Alan Turing"),
        ("grace.hopper", "Grace Hopper"),
        ("edsger.dijkstra", "Edsger Dijkstra"),
        ("barbara.liskov", "Barbara Liskov"),
    ] {
        let body = app
            .create_user(json!({"userName": user, "displayName": name,
                "emails": [{"value": format!("{user}@example.com"), "primary": true}]}))
            .await;
        members.push(body["id"].as_str().unwrap().to_owned());
    }
    let engineering = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Engineering",
        "externalId": "00g1eng7", "members": members.iter().map(|id| json!({"value": id})).collect::<Vec<_>>()});
    let res = app.post("/scim/v2/Groups", &engineering).await;
    assert_eq!(res.status(), 201);
    let research = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Research",
        "externalId": "00g1res9", "members": [{"value": members[0]}, {"value": members[2]}]});
    assert_eq!(app.post("/scim/v2/Groups", &research).await.status(), 201);
    for name in ["Design", "Finance", "People Operations"] {
        let body = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": name});
        assert_eq!(app.post("/scim/v2/Groups", &body).await.status(), 201);
    }
    // Grace Hopper leaves: deactivated by the IdP, still a member for the grace period.
    let leaver = &members[2];
    let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "active", "value": false}]});
    let res = app.patch(&format!("/scim/v2/Users/{leaver}"), &patch).await;
    assert_eq!(json(res).await["active"], json!(false));

    let req = LinkRequest {
        tenant: "default",
        name: "it-oncall",
        all_tenants: false,
        lifetime: chrono::Duration::minutes(15),
    };
    let (token, _) = issue_link(&mut app.connection(), &req, app.clock.now()).unwrap();
    let browser = driver.browser().await;
    browser.goto(&app.url(&format!("/admin/signin?token={token}"))).await.unwrap();
    click(&browser, "main button[type=submit]").await;
    wait_for(&browser, "table.people").await;

    // Groups, from the navigation: each with its member count.
    click(&browser, "nav a[href='/admin/groups']").await;
    wait_for(&browser, "table.groups").await;
    let table = text_of(&browser, "table.groups").await;
    assert!(
        table.contains("Engineering") && table.contains("00g1eng7") && table.contains("People Operations"),
        "{table}"
    );
    screenshot(&browser, backend, "groups").await;
    type_into(&browser, "#q", "eng").await;
    click(&browser, "form.search button").await;
    // The results page is another document: wait for its address, then for its table.
    for _ in 0..100 {
        if browser.current_url().await.unwrap().as_str().ends_with("/admin/groups?q=eng") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    wait_for(&browser, "table.groups").await;
    let found = text_of(&browser, "table.groups").await;
    assert!(found.contains("Engineering") && !found.contains("Research"), "{found}");

    // The group: its members with their state, and when the leaver's membership goes.
    click(&browser, "table.groups tbody tr a").await;
    wait_for(&browser, "table.members").await;
    assert_eq!(text_of(&browser, "h1").await, "Engineering");
    let leaving =
        browser.find(Locator::XPath("//table[@class='members']//tr[contains(., 'grace.hopper')]")).await.unwrap();
    let row = leaving.text().await.unwrap();
    assert!(row.contains("Deactivated since") && row.contains("Removed at 20"), "{row}");
    screenshot(&browser, backend, "group").await;

    // Settings: the grace period goes from 4 days to 2.
    click(&browser, "nav a[href='/admin/settings']").await;
    wait_for(&browser, "form.settings").await;
    type_into(&browser, "#grace_days", "2").await;
    submit(&browser, "form.settings button[type=submit]").await;
    wait_for(&browser, "p.notice").await;
    assert!(text_of(&browser, "p.notice").await.starts_with("Saved."));
    let grace = browser.find(Locator::Css("#grace_days")).await.unwrap().prop("value").await.unwrap();
    assert_eq!(grace.as_deref(), Some("2"));
    screenshot(&browser, backend, "settings").await;
    // A refused change says why, in words.
    type_into(&browser, "#archive_dir", "exports").await;
    click(&browser, "form.settings button[type=submit]").await;
    wait_for(&browser, ".refusal").await;
    assert!(text_of(&browser, ".refusal").await.contains("must be an absolute path"));

    // The audit log shows the change under the admin's name, newest first.
    click(&browser, "nav a[href='/admin/audit']").await;
    wait_for(&browser, "table.audit").await;
    let newest = text_of(&browser, "table.audit tbody tr").await;
    assert!(
        newest.contains("panel:it-oncall")
            && newest.contains("admin.set_policy")
            && newest.contains("grace_days=4 → grace_days=2"),
        "{newest}"
    );
    screenshot(&browser, backend, "audit").await;
    type_into(&browser, "#actor", "panel:").await;
    click(&browser, "form.filters button[type=submit]").await;
    // The filtered page has a link that clears the filters; the first one had none.
    wait_for(&browser, "form.filters .buttons a").await;
    let mine = text_of(&browser, "table.audit").await;
    assert!(mine.contains("admin.sign_in") && !mine.contains("test-idp"), "{mine}");

    // On a phone: one column, nothing cut off.
    browser.set_window_size(390, 1000).await.unwrap();
    for page in ["/admin/settings", "/admin/audit", "/admin/groups"] {
        browser.goto(&app.url(page)).await.unwrap();
        let overflow = browser
            .execute("return document.documentElement.scrollWidth > document.documentElement.clientWidth", vec![])
            .await
            .unwrap();
        if page == "/admin/settings" {
            screenshot(&browser, backend, "settings-phone").await;
        }
        assert_eq!(overflow, json!(false), "no sideways scrolling on {page}");
    }
    browser.close().await.unwrap();
}

mod an_identity_team_reads_groups_and_changes_the_policy {
    #[tokio::test]
    async fn sqlite() {
        super::an_identity_team_reads_groups_and_changes_the_policy(super::Backend::Sqlite).await;
    }
    #[tokio::test]
    async fn postgres() {
        super::an_identity_team_reads_groups_and_changes_the_policy(super::Backend::Postgres).await;
    }
}
