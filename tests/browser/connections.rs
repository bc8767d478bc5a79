//! Connections in Chromium: an admin issues a token, sees it once with its copy button, the IdP
//! fails a request with it, the admin reads the failure in the connection's request log, and
//! revokes the token.

use std::time::Duration;

use fantoccini::{Client, Locator};
use serde_json::json;

use super::helpers::{Backend, TestApp, TestDatabase};
use super::{click, screenshot, submit, text_of, type_into, wait_for, Driver};
use roster::panel::signin::{issue_link, LinkRequest};

/// Issues a token through the page's form; the token the page shows.
async fn issue(browser: &Client, app: &TestApp, name: &str) -> String {
    browser.goto(&app.url("/admin/connections")).await.unwrap();
    type_into(browser, "#token-name", name).await;
    click(browser, "form.issue button[type=submit]").await;
    wait_for(browser, "#new-token").await;
    let field = browser.find(Locator::Css("#new-token")).await.unwrap();
    field.prop("value").await.unwrap().expect("the token is in the field").trim().to_owned()
}

/// Reloads the connection's page until its log shows a failed request (written about once a
/// second, off the request path).
async fn failed_row(browser: &Client) -> String {
    for _ in 0..50 {
        browser.refresh().await.unwrap();
        if let Ok(row) = browser.find(Locator::Css("table.log tr.failed")).await {
            return row.text().await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("no failed request appeared in the log");
}

async fn an_admin_issues_reads_the_log_of_and_revokes_a_token(backend: Backend) {
    let Some(driver) = Driver::start().await else { return };
    let Some(db) = TestDatabase::create(backend) else { return };
    let app = TestApp::spawn_with(db, |_| {}).await;
    let req = LinkRequest {
        tenant: "default",
        name: "it-oncall",
        all_tenants: false,
        lifetime: chrono::Duration::minutes(15),
    };
    let (link, _) = issue_link(&mut app.connection(), &req, app.clock.now()).unwrap();
    let browser = driver.browser().await;
    browser.goto(&app.url(&format!("/admin/signin?token={link}"))).await.unwrap();
    click(&browser, "main button[type=submit]").await;
    wait_for(&browser, "#q").await;

    // A healthy connection first, so the list has one of each.
    let okta = issue(&browser, &app, "okta-prod").await;
    for _ in 0..3 {
        assert!(app
            .get_with("/scim/v2/Users?filter=userName%20eq%20%22ada%40example.com%22", &okta)
            .await
            .status()
            .is_success());
    }

    let token = issue(&browser, &app, "entra-prod").await;
    assert!(text_of(&browser, "h1").await.contains("entra-prod"));
    let base = browser.find(Locator::Css("#scim-base")).await.unwrap().prop("value").await.unwrap().unwrap();
    assert_eq!(base, format!("{}/scim/v2", app.address));
    // The script made the copy button visible; clicking it reports what it did.
    let copy = browser.find(Locator::Css("button[data-copy='new-token']")).await.unwrap();
    assert!(copy.is_displayed().await.unwrap(), "the copy button shows with JavaScript");
    copy.click().await.unwrap();
    browser
        .wait()
        .at_most(Duration::from_secs(5))
        .for_element(Locator::XPath("//*[@id='new-token-status'][normalize-space()!='']"))
        .await
        .unwrap();
    screenshot(&browser, backend, "connection-issued").await;

    // Shown once: the list and the connection's page never show it again.
    browser.goto(&app.url("/admin/connections")).await.unwrap();
    assert!(!browser.source().await.unwrap().contains(&token));

    // The IdP sends a user without a userName, then a good filter.
    let bad = app
        .client
        .post(app.url("/scim/v2/Users"))
        .bearer_auth(&token)
        .json(&json!({"displayName": "Grace Hopper"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 400);
    let again = app
        .client
        .post(app.url("/scim/v2/Users"))
        .bearer_auth(&token)
        .json(&json!({"displayName": "Grace Hopper"}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status().as_u16(), 400);
    assert!(app.get_with("/scim/v2/Users?count=1", &token).await.status().is_success());

    browser.goto(&app.url("/admin/connections")).await.unwrap();
    // Newest first: the first row is entra-prod.
    click(&browser, "table.connections tbody tr:first-child a").await;
    wait_for(&browser, "#log").await;
    assert!(text_of(&browser, "h1").await.contains("entra-prod"));
    let row = failed_row(&browser).await;
    assert!(row.contains("POST") && row.contains("400") && row.contains("invalidValue"), "{row}");
    assert!(!browser.source().await.unwrap().contains("Grace Hopper"), "no body is kept");
    screenshot(&browser, backend, "connection-log").await;

    browser.goto(&app.url("/admin/connections")).await.unwrap();
    wait_for(&browser, "table.connections").await;
    screenshot(&browser, backend, "connections").await;

    // Revoke, confirming; the token stops working.
    click(&browser, "table.connections tbody tr:first-child a").await;
    wait_for(&browser, "#revoke-confirm").await;
    click(&browser, "#revoke-confirm").await;
    submit(&browser, "form[action$='/revoke'] button").await;
    wait_for(&browser, "p.notice").await;
    assert!(text_of(&browser, "p.notice").await.starts_with("Revoked"));
    assert_eq!(app.get_with("/scim/v2/Users", &token).await.status().as_u16(), 401);
    assert!(app.get_with("/scim/v2/Users", &okta).await.status().is_success(), "the other connection works on");
    browser.close().await.unwrap();
}

mod an_admin_issues_reads_the_log_of_and_revokes_a_token {
    #[tokio::test]
    async fn sqlite() {
        super::an_admin_issues_reads_the_log_of_and_revokes_a_token(super::Backend::Sqlite).await;
    }
    #[tokio::test]
    async fn postgres() {
        super::an_admin_issues_reads_the_log_of_and_revokes_a_token(super::Backend::Postgres).await;
    }
}
