//! The Admin Panel as an identity team uses it, in a real headless Chromium driven through
//! WebDriver (chromedriver), against a real Roster on SQLite and on PostgreSQL.
//!
//! Without chromedriver the tests are skipped with a notice, unless ROSTER_REQUIRE_BROWSER=1
//! (CI), which makes its absence a failure. Screenshots of the main pages are written to
//! `target/screenshots/`; with ROSTER_SCREENSHOTS_TO_DOCS=1 they also replace the ones in
//! `docs/screenshots/` that the README shows.

mod a11y;
#[allow(dead_code)]
#[path = "../api/helpers.rs"]
mod helpers;

mod connections;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use helpers::{json, Backend, TestApp, TestDatabase};
use roster::panel::signin::{issue_link, LinkRequest};
use serde_json::{json, Value};

const DRIVERS: &[&str] = &["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"];
const BROWSERS: &[&str] = &["/usr/bin/chromium", "/usr/bin/chromium-browser"];

fn find(paths: &[&str], name: &str) -> Option<PathBuf> {
    paths.iter().map(PathBuf::from).find(|p| p.exists()).or_else(|| {
        std::env::var_os("PATH")
            .and_then(|path| std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| p.exists()))
    })
}

/// A chromedriver of its own for one test, on a free port; stopped when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    async fn start() -> Option<Driver> {
        let required = std::env::var("ROSTER_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
        let Some(driver) = find(DRIVERS, "chromedriver") else {
            assert!(
                !required,
                "ROSTER_REQUIRE_BROWSER=1 but chromedriver is not installed (apt-get install chromium chromium-driver)"
            );
            eprintln!("NOTICE: skipping the browser tests: chromedriver is not installed (apt-get install chromium chromium-driver)");
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        // Owned at once, so that it is stopped however this test ends.
        let driver = Driver { child, url: format!("http://127.0.0.1:{port}") };
        let status = format!("{}/status", driver.url);
        for _ in 0..100 {
            if reqwest::get(&status).await.is_ok_and(|r| r.status().is_success()) {
                return Some(driver);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("chromedriver did not answer on {}", driver.url);
    }

    async fn browser(&self) -> Client {
        let mut chrome = json!({"args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--window-size=1280,1000", "--lang=en-US", "--force-device-scale-factor=1"]});
        if let Some(binary) = find(BROWSERS, "chromium") {
            chrome["binary"] = json!(binary);
        }
        let mut caps = serde_json::Map::new();
        caps.insert("goog:chromeOptions".into(), chrome);
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        ClientBuilder::new(connector).capabilities(caps).connect(&self.url).await.expect("a Chromium session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes the page as it looks now, at a height that shows it whole.
async fn screenshot(browser: &Client, backend: Backend, name: &str) {
    let height = browser
        .execute("return document.documentElement.scrollHeight", vec![])
        .await
        .ok()
        .and_then(|v| v.as_u64())
        .unwrap_or(1000)
        .clamp(600, 2400) as u32;
    let width =
        browser.execute("return window.outerWidth", vec![]).await.ok().and_then(|v| v.as_u64()).unwrap_or(1280) as u32;
    browser.set_window_size(width, height + 120).await.unwrap();
    let png = browser.screenshot().await.expect("screenshot");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("../screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let backend = format!("{backend:?}").to_lowercase();
    std::fs::write(dir.join(format!("{backend}-{name}.png")), &png).unwrap();
    if backend == "sqlite" && std::env::var("ROSTER_SCREENSHOTS_TO_DOCS").is_ok_and(|v| v == "1") {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots");
        std::fs::create_dir_all(&docs).unwrap();
        std::fs::write(docs.join(format!("{name}.png")), &png).unwrap();
    }
    browser.set_window_size(width, 1000).await.unwrap();
}

/// Waits for an element, and on failure says where the browser is and what it shows.
async fn wait_for(browser: &Client, css: &str) {
    if let Err(e) = browser.wait().at_most(Duration::from_secs(10)).for_element(Locator::Css(css)).await {
        let url = browser.current_url().await.map(|u| u.to_string()).unwrap_or_default();
        let page = browser.source().await.unwrap_or_default();
        panic!("{css} did not appear ({e}) at {url}:\n{page}");
    }
}

async fn text_of(browser: &Client, css: &str) -> String {
    browser.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}")).text().await.unwrap()
}

async fn click(browser: &Client, css: &str) {
    browser.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}")).click().await.unwrap();
}

/// Clicks a button that submits a form and waits until the browser has left the page it was on:
/// what is looked for next is then on the answer, not still on the page before it (which may
/// have a notice of its own).
async fn submit(browser: &Client, css: &str) {
    let before = browser.find(Locator::Css("html")).await.unwrap();
    click(browser, css).await;
    for _ in 0..200 {
        if before.tag_name().await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{css}: the page did not change within 10 s");
}

async fn type_into(browser: &Client, css: &str, text: &str) {
    let field = browser.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}"));
    field.clear().await.unwrap();
    field.send_keys(text).await.unwrap();
}

/// Calls the product API (sessions, content) as the product would.
async fn product(app: &TestApp, token: &str, path: &str, body: Value) -> Value {
    let res = app.client.post(app.url(path)).bearer_auth(token).json(&body).send().await.unwrap();
    assert!(res.status().is_success(), "{path}: {}", res.status());
    json(res).await
}

async fn an_identity_team_handles_leavers_in_the_panel(backend: Backend) {
    let Some(driver) = Driver::start().await else { return };
    let Some(db) = TestDatabase::create(backend) else { return };
    let app = TestApp::spawn_with(db, |_| {}).await;
    let leaver = app
        .create_user(json!({"userName": "grace.hopper", "displayName": "Grace Hopper", "externalId": "HR-1906",
            "name": {"formatted": "Grace Hopper"}, "title": "Rear Admiral",
            "emails": [{"value": "grace@example.com", "type": "work", "primary": true}]}))
        .await;
    let leaver_id = leaver["id"].as_str().unwrap().to_owned();
    for (user, name) in
        [("ada.lovelace", "Ada Lovelace"), ("alan.turing", "Alan Turing"), ("edsger.dijkstra", "Edsger Dijkstra")]
    {
        app.create_user(
            json!({"userName": user, "displayName": name, "emails": [{"value": format!("{user}@example.com")}]}),
        )
        .await;
    }
    let product_token = app.issue_token("default", "product", "sessions,content");
    product(&app, &product_token, "/api/v1/sessions", json!({"userId": leaver_id})).await;
    product(&app, &product_token, "/api/v1/sessions", json!({"userId": leaver_id})).await;
    product(
        &app,
        &product_token,
        "/api/v1/content",
        json!({"kind": "post", "authorId": leaver_id, "body": "Found the first bug: a moth."}),
    )
    .await;

    // Sign in with a one-time link, as `roster admin link` prints it.
    let req = LinkRequest {
        tenant: "default",
        name: "it-oncall",
        all_tenants: false,
        lifetime: chrono::Duration::minutes(15),
    };
    let (token, _) = issue_link(&mut app.connection(), &req, app.clock.now()).unwrap();
    let browser = driver.browser().await;
    browser.goto(&app.url(&format!("/admin/signin?token={token}"))).await.unwrap();
    screenshot(&browser, backend, "sign-in").await;
    click(&browser, "main button[type=submit]").await;
    wait_for(&browser, "table.people").await;
    assert!(text_of(&browser, "header.top").await.contains("it-oncall"));
    screenshot(&browser, backend, "people").await;

    // Find the person and open their page.
    type_into(&browser, "#q", "grace").await;
    click(&browser, "form.search button").await;
    wait_for(&browser, "table.people").await;
    click(&browser, "table.people tbody tr a").await;
    wait_for(&browser, "#lifecycle").await;
    assert_eq!(text_of(&browser, ".sessions-count").await, "2");
    assert!(text_of(&browser, "h1").await.contains("Active"));

    // Deactivate: the badge changes and every session is gone at once.
    submit(&browser, "form[action$='/deactivate'] button").await;
    wait_for(&browser, "p.notice").await;
    let heading = text_of(&browser, "h1").await;
    assert!(heading.contains("Deactivated since"), "{heading}");
    assert_eq!(text_of(&browser, ".sessions-count").await, "0");

    // Too early for Remove Profile Fields: the button is disabled and says from when.
    let remove = browser.find(Locator::Css("form[action$='/remove-profile-fields']")).await.unwrap();
    let rule = remove.find(Locator::Css(".rule")).await.unwrap().text().await.unwrap();
    assert!(rule.starts_with("Available from 20"), "{rule}");
    let button = remove.find(Locator::Css("button")).await.unwrap();
    assert!(button.attr("disabled").await.unwrap().is_some());
    screenshot(&browser, backend, "person-deactivated").await;

    // The grace period passes (the tenant's grace is 0 days now): the action opens.
    let change = roster::db::tenants::PolicyChange { grace_days: Some(0), ..Default::default() };
    roster::db::tenants::set_policy(&mut app.connection(), "default", &change).unwrap();
    browser.refresh().await.unwrap();
    type_into(&browser, "#confirm-remove-profile-fields", "grace.hopper").await;
    submit(&browser, "form[action$='/remove-profile-fields'] button").await;
    wait_for(&browser, "p.notice").await;
    let heading = text_of(&browser, "h1").await;
    assert!(heading.starts_with("Former Member"), "{heading}");
    let page = browser.source().await.unwrap();
    assert!(!page.contains("grace@example.com") && !page.contains("HR-1906"), "the profile is gone");
    // The content still shows the original author name, no longer linked to the account.
    let author = browser.find(Locator::Css("ul.content .author")).await.unwrap();
    assert_eq!(author.text().await.unwrap(), "Grace Hopper");
    assert!(author.find(Locator::Css("a")).await.is_err(), "no link to a Former Member");
    screenshot(&browser, backend, "person-former-member").await;

    // Delete another person, confirming with their userName.
    browser.goto(&app.url("/admin/people?q=alan")).await.unwrap();
    click(&browser, "table.people tbody tr a").await;
    wait_for(&browser, "#confirm-delete").await;
    type_into(&browser, "#confirm-delete", "alan.turing").await;
    submit(&browser, "form[action$='/delete'] button").await;
    wait_for(&browser, "p.notice").await;
    assert_eq!(text_of(&browser, "p.notice").await, "The account was deleted.");
    let names = text_of(&browser, "table.people").await;
    assert!(!names.contains("alan.turing") && names.contains("ada.lovelace"), "{names}");
    screenshot(&browser, backend, "people-after-delete").await;

    browser.goto(&app.url("/admin/sessions")).await.unwrap();
    assert!(text_of(&browser, "table").await.contains("this session"));
    screenshot(&browser, backend, "sessions").await;

    // A narrow screen: one column, nothing cut off.
    browser.set_window_size(390, 1000).await.unwrap();
    browser.goto(&app.url(&format!("/admin/people/{leaver_id}"))).await.unwrap();
    let overflow = browser
        .execute("return document.documentElement.scrollWidth > document.documentElement.clientWidth", vec![])
        .await
        .unwrap();
    assert_eq!(overflow, json!(false), "no sideways scrolling on a phone");
    screenshot(&browser, backend, "person-phone").await;

    // Signing out ends the session: the cookie no longer opens a page.
    browser.set_window_size(1280, 1000).await.unwrap();
    click(&browser, "form[action='/admin/signout'] button").await;
    // The click returns before the form's navigation ends: wait for the sign-in page it leads
    // to, or that navigation may land after the next one.
    for _ in 0..100 {
        if browser.current_url().await.is_ok_and(|u| u.path() == "/admin/signin") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    browser.goto(&app.url("/admin/people")).await.unwrap();
    assert_eq!(text_of(&browser, "h1").await, "Signed out");
    browser.close().await.unwrap();
}

mod an_identity_team_handles_leavers_in_the_panel {
    #[tokio::test]
    async fn sqlite() {
        super::an_identity_team_handles_leavers_in_the_panel(super::Backend::Sqlite).await;
    }
    #[tokio::test]
    async fn postgres() {
        super::an_identity_team_handles_leavers_in_the_panel(super::Backend::Postgres).await;
    }
}

mod groups_settings;
/// axe-core finds no serious or critical violation on any page of the panel: the sign-in page
/// (with and without a link), the people list (plain, searched, filtered and empty), a person's
/// page when active, deactivated (with the lifecycle actions' forms) and a Former Member, the
/// admin sessions page, the groups list (plain and searched), a group with a deactivated member,
/// the settings form, the audit log (plain and filtered), the connections list, and a connection's
/// page with a failed request in its log (all entries and errors only).
async fn the_panels_pages_pass_an_accessibility_check(backend: Backend) {
    let Some(driver) = Driver::start().await else { return };
    let Some(db) = TestDatabase::create(backend) else { return };
    let app = TestApp::spawn_with(db, |_| {}).await;
    let active = app
        .create_user(json!({"userName": "ada.lovelace", "displayName": "Ada Lovelace", "title": "Analyst",
            "emails": [{"value": "ada@example.com", "type": "work", "primary": true}]}))
        .await;
    let active = active["id"].as_str().unwrap().to_owned();
    let leaver = app.create_user(json!({"userName": "grace.hopper", "displayName": "Grace Hopper"})).await;
    let leaver = leaver["id"].as_str().unwrap().to_owned();
    let product_token = app.issue_token("default", "product", "sessions,content");
    product(&app, &product_token, "/api/v1/sessions", json!({"userId": active})).await;
    product(&app, &product_token, "/api/v1/content", json!({"kind": "post", "authorId": leaver, "body": "Hello"}))
        .await;
    let deactivate = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "active", "value": false}]});
    assert_eq!(app.patch(&format!("/scim/v2/Users/{leaver}"), &deactivate).await.status(), 200);
    let former = app.create_user(json!({"userName": "alan.turing", "displayName": "Alan Turing"})).await;
    let former = former["id"].as_str().unwrap().to_owned();
    assert_eq!(app.patch(&format!("/scim/v2/Users/{former}"), &deactivate).await.status(), 200);
    let change = roster::db::tenants::PolicyChange { grace_days: Some(0), ..Default::default() };
    roster::db::tenants::set_policy(&mut app.connection(), "default", &change).unwrap();
    let remove = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "replace",
        "path": "urn:ietf:params:scim:schemas:extension:roster:2.0:User:formerMember", "value": true}]});
    assert_eq!(app.patch(&format!("/scim/v2/Users/{former}"), &remove).await.status(), 200);
    let group = app
        .post(
            "/scim/v2/Groups",
            &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": "Analysts", "members": [{"value": active}, {"value": leaver}]}),
        )
        .await;
    assert_eq!(group.status(), 201);
    let group = group.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    // A connection with a failed request in its log.
    let idp = app.issue_token("default", "okta-prod", "scim");
    let failed = reqwest::Client::new()
        .post(app.url("/scim/v2/Users"))
        .bearer_auth(&idp)
        .json(&json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "ada.lovelace"}))
        .send()
        .await
        .unwrap();
    assert_eq!(failed.status(), 409);
    // A webhook, added by the same function as `roster webhook add`; the events above came
    // before it, so one more account gives it a delivery in its log.
    let events = vec!["user.created".to_owned(), "user.deactivated".to_owned()];
    let new = roster::delivery::webhooks::NewWebhook {
        tenant: "default",
        url: "https://hooks.example.com/roster",
        event_types: &events,
        allow_private: false,
    };
    let webhook = roster::delivery::webhooks::add(&mut app.connection(), &new, app.clock.now()).unwrap().webhook.id;
    app.create_user(json!({"userName": "katherine.johnson", "displayName": "Katherine Johnson"})).await;

    let req =
        LinkRequest { tenant: "default", name: "a11y", all_tenants: false, lifetime: chrono::Duration::minutes(15) };
    let (token, _) = issue_link(&mut app.connection(), &req, app.clock.now()).unwrap();
    let browser = driver.browser().await;
    a11y::assert_accessible(&browser, &app.url("/admin/signin")).await;
    let signin = app.url(&format!("/admin/signin?token={token}"));
    a11y::assert_accessible(&browser, &signin).await;
    browser.goto(&signin).await.unwrap();
    click(&browser, "main button[type=submit]").await;
    wait_for(&browser, "table.people").await;

    for page in [
        "/admin/people".to_owned(),
        "/admin/people?q=grace".to_owned(),
        "/admin/people?state=deactivated".to_owned(),
        "/admin/people?q=nobody".to_owned(),
        format!("/admin/people/{active}"),
        format!("/admin/people/{leaver}"),
        format!("/admin/people/{former}"),
        "/admin/sessions".to_owned(),
        "/admin/groups".to_owned(),
        "/admin/groups?q=ana".to_owned(),
        format!("/admin/groups/{group}"),
        "/admin/settings".to_owned(),
        "/admin/audit".to_owned(),
        "/admin/audit?action=admin.".to_owned(),
        "/admin/connections".to_owned(),
        "/admin/webhooks".to_owned(),
        format!("/admin/webhooks/{webhook}"),
    ] {
        a11y::assert_accessible(&browser, &app.url(&page)).await;
    }
    // A connection's page with its request log: the first connection the list links to.
    browser.goto(&app.url("/admin/connections")).await.unwrap();
    let link = browser.find(Locator::Css("main a[href^='/admin/connections/']")).await.unwrap();
    let connection = link.attr("href").await.unwrap().expect("a link to the connection");
    a11y::assert_accessible(&browser, &app.url(&connection)).await;
    a11y::assert_accessible(&browser, &app.url(&format!("{connection}?errors=1"))).await;
    browser.goto(&app.url("/admin/webhooks")).await.unwrap();
    wait_for(&browser, "form.issue").await;
    screenshot(&browser, backend, "webhooks").await;
    browser.goto(&app.url(&format!("/admin/webhooks/{webhook}"))).await.unwrap();
    wait_for(&browser, "table.log").await;
    screenshot(&browser, backend, "webhook").await;
    browser.close().await.unwrap();
}

/// The check itself finds what it looks for: a page with an image without text and a button
/// without a name has critical violations.
#[tokio::test]
async fn the_accessibility_check_finds_violations() {
    let Some(driver) = Driver::start().await else { return };
    let browser = driver.browser().await;
    let page = "data:text/html,<!doctype html><html lang=en><title>t</title><main><img src=x><button></button></main>";
    let found = a11y::violations(&browser, page).await;
    let critical: Vec<&str> =
        found.iter().filter(|v| v["impact"] == "critical").filter_map(|v| v["id"].as_str()).collect();
    assert!(critical.contains(&"image-alt") && critical.contains(&"button-name"), "{found:?}");
    browser.close().await.unwrap();
}

mod the_panels_pages_pass_an_accessibility_check {
    #[tokio::test]
    async fn sqlite() {
        super::the_panels_pages_pass_an_accessibility_check(super::Backend::Sqlite).await;
    }
    #[tokio::test]
    async fn postgres() {
        super::the_panels_pages_pass_an_accessibility_check(super::Backend::Postgres).await;
    }
}
