//! The Admin Panel over plain HTTP, from the attacker's side as much as the admin's: sign-in
//! links, session cookies, CSRF and origin checks, tenancy, and the lifecycle actions' rules.
//! (The browser suite in tests/browser drives the same pages in Chromium.)

use chrono::Duration;
use reqwest::header::{HeaderMap, COOKIE, LOCATION, ORIGIN, SET_COOKIE};
use reqwest::redirect::Policy;
use reqwest::StatusCode;
use roster::panel::signin::{issue_link, LinkRequest};
use serde_json::json;

use crate::both_backends;
use crate::helpers::{json, Backend, TestApp, TestDatabase};

/// A one-time sign-in link's secret, made the way `roster admin link` makes it.
pub fn link(app: &TestApp, tenant: &str, name: &str, all_tenants: bool) -> String {
    let req = LinkRequest { tenant, name, all_tenants, lifetime: Duration::minutes(15) };
    issue_link(&mut app.connection(), &req, app.clock.now()).expect("link issued").0
}

/// A browser without JavaScript: it keeps the session cookie by hand and follows no redirect.
pub struct Browser<'a> {
    app: &'a TestApp,
    pub client: reqwest::Client,
    cookie: Option<String>,
}

impl<'a> Browser<'a> {
    pub fn new(app: &'a TestApp) -> Browser<'a> {
        Browser { app, client: reqwest::Client::builder().redirect(Policy::none()).build().unwrap(), cookie: None }
    }

    pub async fn sign_in(app: &'a TestApp, tenant: &str, name: &str) -> Browser<'a> {
        let mut browser = Browser::new(app);
        let res = browser.redeem(&link(app, tenant, name, false)).await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        browser
    }

    pub async fn redeem(&mut self, token: &str) -> reqwest::Response {
        let res = self.client.post(self.app.url("/admin/signin")).form(&[("token", token)]).send().await.unwrap();
        if let Some(set) = res.headers().get(SET_COOKIE) {
            self.cookie = Some(set.to_str().unwrap().split(';').next().unwrap().to_owned());
        }
        res
    }

    pub fn with_cookie(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.cookie {
            Some(cookie) => req.header(COOKIE, cookie),
            None => req,
        }
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.with_cookie(self.client.get(self.app.url(path))).send().await.unwrap()
    }

    pub async fn page(&self, path: &str) -> String {
        let res = self.get(path).await;
        assert_eq!(res.status(), StatusCode::OK, "GET {path}");
        res.text().await.unwrap()
    }

    /// The CSRF token the page's forms carry.
    pub async fn csrf(&self) -> String {
        let page = self.page("/admin/people").await;
        let re = regex::Regex::new(r#"name="csrf" value="([0-9a-f]+)""#).unwrap();
        re.captures(&page).expect("a form with a CSRF token")[1].to_owned()
    }

    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.with_cookie(self.client.post(self.app.url(path))).form(form).send().await.unwrap()
    }
}

async fn user(app: &TestApp, name: &str) -> String {
    let body = app
        .create_user(
            json!({"userName": name, "externalId": format!("ext-{name}"), "displayName": format!("{name} Person"),
            "emails": [{"value": format!("{name}@example.com"), "primary": true}]}),
        )
        .await;
    body["id"].as_str().unwrap().to_owned()
}

async fn is_active(app: &TestApp, id: &str) -> bool {
    app.get_ok(&format!("/scim/v2/Users/{id}")).await["active"].as_bool().unwrap()
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> &'h str {
    headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// Whether the panel sent the request to the sign-in page, saying the session ended: a 303, not
/// a 401, which would need a `WWW-Authenticate` challenge (RFC 9110 §15.5.2).
fn signed_out(res: &reqwest::Response) -> bool {
    res.status() == StatusCode::SEE_OTHER
        && header(res.headers(), LOCATION.as_str()) == "/admin/signin?ended=1"
        && res.headers().get("www-authenticate").is_none()
}

async fn a_link_signs_in_once_with_a_strict_cookie(app: TestApp) {
    let token = link(&app, "default", "alice", false);
    let mut browser = Browser::new(&app);
    // Opening the link only shows a button: a link preview cannot spend it.
    let page = browser.page(&format!("/admin/signin?token={token}")).await;
    assert!(page.contains(r#"action="/admin/signin""#), "{page}");
    let res = browser.redeem(&token).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(header(res.headers(), "location"), "/admin/people");
    let cookie = header(res.headers(), "set-cookie").to_owned();
    for part in ["roster_admin=", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(part), "{part} in {cookie}");
    }
    assert!(!cookie.contains("Secure"), "http public URL: {cookie}");
    let people = browser.get("/admin/people").await;
    assert_eq!(people.status(), StatusCode::OK);
    let headers = people.headers().clone();
    let csp = header(&headers, "content-security-policy");
    assert!(
        csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(header(&headers, "x-content-type-options"), "nosniff");
    assert_eq!(header(&headers, "referrer-policy"), "same-origin");
    assert_eq!(header(&headers, "cache-control"), "no-store");
    let html = people.text().await.unwrap();
    assert!(html.contains("Signed in as") && html.contains("alice"), "{html}");
    assert!(!html.contains("<script>"), "no inline script");

    // The same link again, from anyone: refused, and no cookie.
    let mut other = Browser::new(&app);
    let reused = other.redeem(&token).await;
    assert_eq!(reused.status(), StatusCode::FORBIDDEN);
    assert!(reused.headers().get(SET_COOKIE).is_none());
    assert!(reused.text().await.unwrap().contains("already been used"));
    // A made-up link too.
    assert_eq!(other.redeem("not-a-link").await.status(), StatusCode::FORBIDDEN);
    // The sign-in is in the audit log under the admin's name.
    let audit: Vec<_> =
        roster::db::records::audit_after(&mut app.connection(), &tenant_id(&app, "default"), 0, 100).unwrap();
    assert!(audit.iter().any(|a| a.actor == "panel:alice" && a.action == "admin.sign_in"));
}

pub fn tenant_id(app: &TestApp, name: &str) -> String {
    roster::db::tenants::by_name(&mut app.connection(), name).unwrap().unwrap().id
}

async fn an_expired_link_is_refused(app: TestApp) {
    let token = link(&app, "default", "alice", false);
    app.clock.advance(Duration::minutes(16));
    let mut browser = Browser::new(&app);
    let res = browser.redeem(&token).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(browser.cookie.is_none());
    assert!(signed_out(&browser.get("/admin/people").await));
}

async fn no_page_is_served_without_a_session(app: TestApp) {
    let id = user(&app, "nosession").await;
    let browser = Browser::new(&app);
    for path in ["/admin/people".to_owned(), format!("/admin/people/{id}"), "/admin/sessions".to_owned()] {
        let res = browser.get(&path).await;
        assert!(signed_out(&res), "{path}");
        assert!(!res.text().await.unwrap().contains("nosession"), "{path} shows nothing of the account");
    }
    let forged = Browser { cookie: Some("roster_admin=forged".into()), ..Browser::new(&app) };
    assert!(signed_out(&forged.post(&format!("/admin/people/{id}/deactivate"), &[("csrf", "x")]).await));
    assert!(is_active(&app, &id).await);
    let page = browser.page("/admin/signin?ended=1").await;
    assert!(page.contains("Signed out") && page.contains("roster admin link"), "{page}");
}

async fn a_post_without_the_sessions_csrf_token_or_from_elsewhere_changes_nothing(app: TestApp) {
    let id = user(&app, "target").await;
    let browser = Browser::sign_in(&app, "default", "alice").await;
    let path = format!("/admin/people/{id}/deactivate");
    // No token, a wrong token, another session's token.
    let res = browser.with_cookie(browser.client.post(app.url(&path))).form(&[("x", "y")]).send().await.unwrap();
    assert!(res.status().is_client_error(), "{}", res.status());
    assert_eq!(browser.post(&path, &[("csrf", "0000")]).await.status(), StatusCode::FORBIDDEN);
    let mallory = Browser::sign_in(&app, "default", "mallory").await;
    assert_eq!(browser.post(&path, &[("csrf", &mallory.csrf().await)]).await.status(), StatusCode::FORBIDDEN);
    // The right token from another site's page.
    let csrf = browser.csrf().await;
    let cross = browser
        .with_cookie(browser.client.post(app.url(&path)))
        .header(ORIGIN, "https://evil.example")
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), StatusCode::FORBIDDEN);
    let cross_site = browser
        .with_cookie(browser.client.post(app.url(&path)))
        .header("sec-fetch-site", "cross-site")
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(cross_site.status(), StatusCode::FORBIDDEN);
    assert!(is_active(&app, &id).await, "nothing changed");
    // The real form works, and the audit log names the admin.
    let res = browser
        .with_cookie(browser.client.post(app.url(&path)))
        .header(ORIGIN, app.address.as_str())
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(!is_active(&app, &id).await);
    let audit = roster::db::records::audit_after(&mut app.connection(), &tenant_id(&app, "default"), 0, 100).unwrap();
    assert!(audit.iter().any(|a| a.actor == "panel:alice" && a.action == "deactivate" && a.user_id == id));
}

async fn another_tenants_accounts_are_not_found(app: TestApp) {
    roster::db::tenants::create(&mut app.connection(), "other").unwrap();
    let other_token = app.issue_token("other", "other-idp", "scim");
    let res = app
        .client
        .post(app.url("/scim/v2/Users"))
        .bearer_auth(&other_token)
        .header("content-type", "application/scim+json")
        .body(json!({"userName": "elsewhere", "displayName": "Elsewhere Person"}).to_string())
        .send()
        .await
        .unwrap();
    let foreign = json(res).await["id"].as_str().unwrap().to_owned();
    let browser = Browser::sign_in(&app, "default", "alice").await;
    let csrf = browser.csrf().await;
    assert_eq!(browser.get(&format!("/admin/people/{foreign}")).await.status(), StatusCode::NOT_FOUND);
    for action in ["deactivate", "delete", "remove-profile-fields"] {
        let res = browser
            .post(&format!("/admin/people/{foreign}/{action}"), &[("csrf", &csrf), ("confirm", "elsewhere")])
            .await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{action}");
    }
    let list = browser.page("/admin/people?q=elsewhere").await;
    assert!(!list.contains("Elsewhere"), "{list}");
    let still =
        app.client.get(app.url(&format!("/scim/v2/Users/{foreign}"))).bearer_auth(&other_token).send().await.unwrap();
    assert_eq!(json(still).await["active"], json!(true));
    // A one-tenant session cannot switch.
    let res = browser.post("/admin/tenant", &[("csrf", &csrf), ("tenant", "other")]).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(browser.get(&format!("/admin/people/{foreign}")).await.status(), StatusCode::NOT_FOUND);
    // An all-tenants session can, and then sees the other tenant only.
    let mut root = Browser::new(&app);
    root.redeem(&link(&app, "default", "root", true)).await;
    let res = root.post("/admin/tenant", &[("csrf", &root.csrf().await), ("tenant", "other")]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(root.page(&format!("/admin/people/{foreign}")).await.contains("elsewhere"));
}

async fn a_revoked_or_idle_session_is_refused(app: TestApp) {
    let alice = Browser::sign_in(&app, "default", "alice").await;
    let bob = Browser::sign_in(&app, "default", "bob").await;
    let sessions = roster::panel::store::list_sessions(&mut app.connection(), None, 10).unwrap();
    let alices = sessions.iter().find(|s| s.name == "alice").unwrap().id.clone();
    let page = bob.page("/admin/sessions").await;
    assert!(page.contains("alice") && page.contains(&alices), "{page}");
    let res = bob.post(&format!("/admin/sessions/{alices}/revoke"), &[("csrf", &bob.csrf().await)]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(signed_out(&alice.get("/admin/people").await));
    assert_eq!(bob.get("/admin/people").await.status(), StatusCode::OK);
    // Another tenant's admin cannot revoke (or see) this tenant's sessions.
    roster::db::tenants::create(&mut app.connection(), "other").unwrap();
    let eve = Browser::sign_in(&app, "other", "eve").await;
    let bobs = sessions.iter().find(|s| s.name == "bob").unwrap().id.clone();
    assert!(!eve.page("/admin/sessions").await.contains(&bobs));
    let res = eve.post(&format!("/admin/sessions/{bobs}/revoke"), &[("csrf", &eve.csrf().await)]).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_eq!(bob.get("/admin/people").await.status(), StatusCode::OK);
    // Idle for longer than the idle timeout: signed out.
    app.clock.advance(Duration::minutes(31));
    assert!(signed_out(&bob.get("/admin/people").await));
}

/// A revocation is audited in the revoked session's tenant, naming the session, and in the
/// revoker's tenant when that is another.
async fn revoking_a_session_is_audited_in_both_tenants_naming_it(app: TestApp) {
    let alice = Browser::sign_in(&app, "default", "alice").await;
    roster::db::tenants::create(&mut app.connection(), "other").unwrap();
    let mut root = Browser::new(&app);
    root.redeem(&link(&app, "other", "root", true)).await;
    let sessions = roster::panel::store::list_sessions(&mut app.connection(), None, 10).unwrap();
    let alices = sessions.iter().find(|s| s.name == "alice").unwrap().id.clone();
    let res = root.post(&format!("/admin/sessions/{alices}/revoke"), &[("csrf", &root.csrf().await)]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(signed_out(&alice.get("/admin/people").await));
    for tenant in ["default", "other"] {
        let audit = roster::db::records::audit_after(&mut app.connection(), &tenant_id(&app, tenant), 0, 100).unwrap();
        let entry = audit.iter().find(|a| a.action == "admin.revoke_session").expect(tenant);
        assert_eq!(entry.actor, "panel:root");
        assert_eq!(entry.state_after.as_deref(), Some(format!("session {alices} revoked").as_str()), "{tenant}");
    }
}

async fn remove_profile_fields_waits_for_the_grace_period_and_the_typed_user_name(app: TestApp) {
    let id = user(&app, "leaver").await;
    let browser = Browser::sign_in(&app, "default", "alice").await;
    let csrf = browser.csrf().await;
    let act = |action: &'static str, confirm: &'static str| {
        let (path, csrf) = (format!("/admin/people/{id}/{action}"), csrf.clone());
        let browser = &browser;
        async move { browser.post(&path, &[("csrf", csrf.as_str()), ("confirm", confirm)]).await }
    };
    let active = act("remove-profile-fields", "leaver").await;
    assert_eq!(active.status(), StatusCode::CONFLICT);
    assert!(active.text().await.unwrap().contains("deactivate it before"), "the rule in words");
    assert_eq!(act("deactivate", "").await.status(), StatusCode::SEE_OTHER);
    let page = browser.page(&format!("/admin/people/{id}")).await;
    assert!(page.contains("Remove Profile Fields available from"), "{page}");
    let early = act("remove-profile-fields", "leaver").await;
    assert_eq!(early.status(), StatusCode::CONFLICT);
    let text = early.text().await.unwrap();
    assert!(text.contains("can become a Former Member from"), "{text}");
    app.clock.advance(Duration::days(4) + Duration::minutes(1));
    // A fresh sign-in: the clock's jump ended the idle session.
    let browser = Browser::sign_in(&app, "default", "alice").await;
    let csrf = browser.csrf().await;
    let path = format!("/admin/people/{id}/remove-profile-fields");
    let mistyped = browser.post(&path, &[("csrf", &csrf), ("confirm", "LEAVER ")]).await;
    assert_eq!(mistyped.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(mistyped.text().await.unwrap().contains("nothing was changed"));
    assert_eq!(app.get_ok(&format!("/scim/v2/Users/{id}")).await["userName"], "leaver");
    assert_eq!(browser.post(&path, &[("csrf", &csrf), ("confirm", "leaver")]).await.status(), StatusCode::SEE_OTHER);
    let page = browser.page(&format!("/admin/people/{id}")).await;
    assert!(page.contains("Former Member") && !page.contains("leaver@example.com"), "{page}");
    // Reactivation is refused with the rule, not a code.
    let res = browser.post(&format!("/admin/people/{id}/reactivate"), &[("csrf", &csrf)]).await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    assert!(res.text().await.unwrap().contains("provision a new account"));
}

async fn delete_follows_the_tenant_policy_and_needs_the_user_name(app: TestApp) {
    let change =
        roster::db::tenants::PolicyChange { delete_policy: Some("require-deactivated".into()), ..Default::default() };
    roster::db::tenants::set_policy(&mut app.connection(), "default", &change).unwrap();
    let id = user(&app, "goner").await;
    let browser = Browser::sign_in(&app, "default", "alice").await;
    let csrf = browser.csrf().await;
    let path = format!("/admin/people/{id}/delete");
    let refused = browser.post(&path, &[("csrf", &csrf), ("confirm", "goner")]).await;
    assert_eq!(refused.status(), StatusCode::CONFLICT);
    assert!(refused.text().await.unwrap().contains("deactivated before they are deleted"));
    browser.post(&format!("/admin/people/{id}/deactivate"), &[("csrf", &csrf)]).await;
    assert_eq!(browser.post(&path, &[("csrf", &csrf)]).await.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let res = browser.post(&path, &[("csrf", &csrf), ("confirm", "goner")]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(header(res.headers(), LOCATION.as_str()), "/admin/people?done=deleted");
    assert_eq!(app.get(&format!("/scim/v2/Users/{id}")).await.status(), 404);
    assert_eq!(browser.get(&format!("/admin/people/{id}")).await.status(), StatusCode::NOT_FOUND);
}

/// Under `deactivate-only` the account stays, deactivated, but hidden like a deleted one: the
/// panel says so on the list instead of sending the admin to a page that is gone.
async fn a_deactivate_only_delete_returns_to_the_list_saying_what_happened(app: TestApp) {
    let change =
        roster::db::tenants::PolicyChange { delete_policy: Some("deactivate-only".into()), ..Default::default() };
    roster::db::tenants::set_policy(&mut app.connection(), "default", &change).unwrap();
    let id = user(&app, "keeper").await;
    let browser = Browser::sign_in(&app, "default", "alice").await;
    let csrf = browser.csrf().await;
    let res = browser.post(&format!("/admin/people/{id}/delete"), &[("csrf", &csrf), ("confirm", "keeper")]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let location = header(res.headers(), LOCATION.as_str()).to_owned();
    assert!(location.starts_with("/admin/people?"), "{location}");
    let page = browser.page(&location).await;
    assert!(page.contains("deactivate-only policy") && !page.contains("keeper@example.com"), "{page}");
}

async fn people_are_found_by_name_user_name_email_or_external_id_and_paged(app: TestApp) {
    for name in ["ada", "adam", "bob", "carol"] {
        user(&app, name).await;
    }
    let bob = app
        .create_user(json!({"userName": "robert", "displayName": "Bobby Tables", "externalId": "HR-42",
        "emails": [{"value": "tables@corp.example"}]}))
        .await;
    let bob_id = bob["id"].as_str().unwrap();
    let browser = Browser::sign_in(&app, "default", "alice").await;
    let names = |page: &str| -> Vec<String> {
        let re = regex::Regex::new(r#"<td class="mono">([^<]+)</td>"#).unwrap();
        re.captures_iter(page).map(|c| c[1].to_owned()).collect()
    };
    assert_eq!(names(&browser.page("/admin/people?q=ADA").await), ["ada", "adam"], "userName prefix, any case");
    assert_eq!(names(&browser.page("/admin/people?q=bobby").await), ["robert"], "displayName prefix");
    assert_eq!(names(&browser.page("/admin/people?q=tables%40corp").await), ["robert"], "email prefix");
    assert_eq!(names(&browser.page("/admin/people?q=HR-42").await), ["robert"], "externalId");
    assert!(names(&browser.page("/admin/people?q=hr-4").await).is_empty(), "externalId matches exactly");
    assert!(names(&browser.page("/admin/people?q=%25").await).is_empty(), "LIKE wildcards are literal");
    let csrf = browser.csrf().await;
    browser.post(&format!("/admin/people/{bob_id}/deactivate"), &[("csrf", &csrf)]).await;
    let deactivated = browser.page("/admin/people?state=deactivated").await;
    assert_eq!(names(&deactivated), ["robert"]);
    assert!(deactivated.contains("Deactivated since"), "the badge");
    assert!(names(&browser.page("/admin/people?q=robert&state=active").await).is_empty());
    assert_eq!(browser.get("/admin/people?state=gone").await.status(), StatusCode::BAD_REQUEST);
    // Paging by cursor: 50 a page, every account once.
    for i in 0..50 {
        user(&app, &format!("bulk{i:02}")).await;
    }
    let first = browser.page("/admin/people").await;
    let next = regex::Regex::new(r#"rel="next" href="([^"]+)""#).unwrap().captures(&first).expect("a next page")[1]
        .replace("&amp;", "&");
    let second = browser.page(&next).await;
    let mut all = names(&first);
    all.extend(names(&second));
    assert_eq!(all.len(), 55);
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 55, "no account twice");
    assert!(!second.contains(r#"rel="next""#));
}

/// A search's lookups filter by state before they stop at their limit: matching accounts are
/// found however many others match the prefix first.
async fn an_email_search_filters_by_state_before_its_limit(app: TestApp) {
    for i in 0..52 {
        app.create_user(
            json!({"userName": format!("p{i:02}"), "emails": [{"value": format!("same{i:02}@corp.example")}]}),
        )
        .await;
    }
    let zed = app.create_user(json!({"userName": "zed", "emails": [{"value": "samez@corp.example"}]})).await;
    let browser = Browser::sign_in(&app, "default", "alice").await;
    let csrf = browser.csrf().await;
    browser.post(&format!("/admin/people/{}/deactivate", zed["id"].as_str().unwrap()), &[("csrf", &csrf)]).await;
    let page = browser.page("/admin/people?q=same&state=deactivated").await;
    assert!(page.contains(">zed</td>"), "{page}");
    let page = browser.page("/admin/people?q=same").await;
    assert!(page.contains("refine the search"), "{page}");
}

async fn a_secure_public_url_makes_the_cookie_secure_and_host_bound(backend: Backend) {
    let Some(db) = TestDatabase::create(backend) else { return };
    let app = TestApp::spawn_with(db, |s| s.public_url = Some("https://roster.example".into())).await;
    let mut browser = Browser::new(&app);
    let res = browser.redeem(&link(&app, "default", "alice", false)).await;
    let cookie = header(res.headers(), "set-cookie");
    assert!(cookie.starts_with("__Host-roster_admin=") && cookie.contains("Secure"), "{cookie}");
    // The panel's origin is the public URL's: a form from the listen address is another site.
    let csrf = browser.csrf().await;
    let res = browser
        .with_cookie(browser.client.post(app.url("/admin/signout")))
        .header(ORIGIN, app.address.as_str())
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
}

async fn assets_are_embedded_with_an_etag(app: TestApp) {
    let res = app.client.get(app.url("/admin/assets/panel.css")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(header(res.headers(), "content-type").starts_with("text/css"));
    let etag = header(res.headers(), "etag").to_owned();
    assert!(etag.len() > 10);
    let again = app.client.get(app.url("/admin/assets/panel.css")).header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
}

both_backends!(
    a_link_signs_in_once_with_a_strict_cookie,
    an_expired_link_is_refused,
    no_page_is_served_without_a_session,
    a_post_without_the_sessions_csrf_token_or_from_elsewhere_changes_nothing,
    another_tenants_accounts_are_not_found,
    a_revoked_or_idle_session_is_refused,
    revoking_a_session_is_audited_in_both_tenants_naming_it,
    remove_profile_fields_waits_for_the_grace_period_and_the_typed_user_name,
    delete_follows_the_tenant_policy_and_needs_the_user_name,
    a_deactivate_only_delete_returns_to_the_list_saying_what_happened,
    an_email_search_filters_by_state_before_its_limit,
    people_are_found_by_name_user_name_email_or_external_id_and_paged,
    assets_are_embedded_with_an_etag,
);
both_backends!(by_backend: a_secure_public_url_makes_the_cookie_secure_and_host_bound);

/// Several nodes on one PostgreSQL are one panel: a link spent on one node is spent on all, a
/// session opened on one works on another, and a revocation on one holds on all at once.
#[tokio::test]
async fn two_nodes_on_one_postgresql_share_links_sessions_and_revocations() {
    let Some(app) = TestApp::spawn(Backend::Postgres).await else { return };
    let second = roster::startup::Application::build(app.settings.clone()).expect("a second node");
    let node_b = format!("http://127.0.0.1:{}", second.port());
    tokio::spawn(second.run_until_stopped());
    let token = link(&app, "default", "alice", false);
    let mut alice = Browser::new(&app);
    assert_eq!(alice.redeem(&token).await.status(), StatusCode::SEE_OTHER);
    let on_b = |browser: &Browser<'_>, path: &str| browser.with_cookie(browser.client.get(format!("{node_b}{path}")));
    assert_eq!(on_b(&alice, "/admin/people").send().await.unwrap().status(), StatusCode::OK, "the session works on B");
    let reuse =
        alice.client.post(format!("{node_b}/admin/signin")).form(&[("token", token.as_str())]).send().await.unwrap();
    assert_eq!(reuse.status(), StatusCode::FORBIDDEN, "the link is spent on B too");
    let bob = Browser::sign_in(&app, "default", "bob").await;
    let alices = roster::panel::store::list_sessions(&mut app.connection(), None, 10)
        .unwrap()
        .into_iter()
        .find(|s| s.name == "alice")
        .unwrap()
        .id;
    let csrf = bob.csrf().await;
    let revoke = bob
        .with_cookie(bob.client.post(format!("{node_b}/admin/sessions/{alices}/revoke")))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoke.status(), StatusCode::SEE_OTHER);
    assert!(signed_out(&alice.get("/admin/people").await), "revoked on B, refused on A");
}

mod groups_settings_audit;
