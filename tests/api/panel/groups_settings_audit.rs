//! The panel's Groups, Settings and Audit log pages over plain HTTP: what they show, how they page,
//! what they refuse, and that each change of a setting is audited under the admin's name.

use chrono::{NaiveDate, NaiveDateTime};
use reqwest::header::{CONTENT_DISPOSITION, CONTENT_TYPE, LOCATION};
use reqwest::StatusCode;
use roster::db::records::{self, Audit};
use roster::db::tenants;
use serde_json::{json, Value};

use super::{header, tenant_id, user, Browser};
use crate::both_backends;
use crate::helpers::{json, TestApp};

async fn group(app: &TestApp, name: &str, external_id: &str, members: &[&str]) -> String {
    let members: Vec<Value> = members.iter().map(|id| json!({"value": id})).collect();
    let body = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": name,
        "externalId": external_id, "members": members});
    let res = app.post("/scim/v2/Groups", &body).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    json(res).await["id"].as_str().unwrap().to_owned()
}

/// The rows of the first table body of a page.
fn rows(page: &str) -> usize {
    let body = page.split("<tbody>").nth(1).and_then(|b| b.split("</tbody>").next()).unwrap_or("");
    body.matches("<tr>").count()
}

/// The `rel="next"` link of a page, unescaped.
fn next_link(page: &str) -> Option<String> {
    let re = regex::Regex::new(r#"<a rel="next" href="([^"]+)""#).unwrap();
    re.captures(page).map(|c| c[1].replace("&amp;", "&"))
}

async fn groups_are_listed_searched_and_their_members_paged_with_their_state(app: TestApp) {
    let mut people = Vec::new();
    for i in 0..55 {
        people.push(user(&app, &format!("member{i:02}")).await);
    }
    let ids: Vec<&str> = people.iter().map(String::as_str).collect();
    let engineering = group(&app, "Engineering", "okta-eng-1", &ids).await;
    group(&app, "Design", "okta-design", &ids[..1]).await;
    let leaver = &people[3];
    let res = app
        .patch(
            &format!("/scim/v2/Users/{leaver}"),
            &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "value": {"active": false}}]}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let deactivated_at = app.clock.now();

    let browser = Browser::sign_in(&app, "default", "alice").await;
    let list = browser.page("/admin/groups").await;
    assert!(list.contains("2 groups in tenant"), "{list}");
    assert!(list.contains(r#"<td class="mono">okta-eng-1</td><td class="num">55</td>"#), "member counts: {list}");
    assert!(list.contains(r#"<td class="mono">okta-design</td><td class="num">1</td>"#), "{list}");
    assert!(list.contains(r#"aria-current="page">Groups</a>"#), "the navigation marks the page");
    // By the start of a displayName in any case, or by an exact externalId.
    for q in ["engin", "ENGINEERING", "okta-eng-1"] {
        let found = browser.page(&format!("/admin/groups?q={q}")).await;
        assert!(found.contains("Engineering") && !found.contains("Design"), "{q}: {found}");
    }
    let none = browser.page("/admin/groups?q=okta-eng").await;
    assert!(none.contains("No group matches."), "an externalId matches exactly: {none}");

    // A group's page: its details, 50 members, then the rest after the last one shown.
    let page = browser.page(&format!("/admin/groups/{engineering}")).await;
    assert!(page.contains("okta-eng-1") && page.contains("Members <span class=\"count\">(55)</span>"), "{page}");
    assert_eq!(rows_of_members(&page), 50);
    // The deactivated member: when, and when the sweep removes the membership (the grace period).
    let removed = (deactivated_at + chrono::Duration::days(4)).format("%Y-%m-%d %H:%M UTC").to_string();
    assert!(page.contains("Deactivated since") && page.contains("Removed at <time"), "{page}");
    assert!(page.contains(&removed), "removal at deactivation plus the grace period: {page}");
    let next = next_link(&page).expect("a next page");
    assert!(next.starts_with(&format!("/admin/groups/{engineering}?after=")), "{next}");
    let rest = browser.page(&next).await;
    assert_eq!(rows_of_members(&rest), 5);
    assert!(next_link(&rest).is_none());
    // The person's page links to their groups, and the group back to the person.
    let person = browser.page(&format!("/admin/people/{leaver}")).await;
    assert!(person.contains(&format!(r#"href="/admin/groups/{engineering}""#)), "{person}");
    assert!(
        page.contains(&format!(r#"href="/admin/people/{leaver}""#))
            || rest.contains(&format!(r#"href="/admin/people/{leaver}""#))
    );

    // The list pages by cursor too.
    for i in 0..51 {
        group(&app, &format!("Team {i:02}"), &format!("team-{i}"), &[]).await;
    }
    let first = browser.page("/admin/groups").await;
    assert_eq!(rows(&first), 50);
    let second = browser.page(&next_link(&first).expect("a second page")).await;
    assert_eq!(rows(&second), 3);
    assert!(next_link(&second).is_none());
    let searched = browser.page("/admin/groups?q=team").await;
    assert_eq!(rows(&searched), 50);
    let more = next_link(&searched).expect("a search pages too");
    assert!(more.ends_with("after_name=team+49"), "{more}");
    let last = browser.page(&more).await;
    assert_eq!(rows(&last), 1);
    assert!(last.contains("Team 50") && next_link(&last).is_none(), "{last}");
}

fn rows_of_members(page: &str) -> usize {
    let table = page.split(r#"<table class="members">"#).nth(1).unwrap_or("");
    rows(table)
}

async fn another_tenants_groups_are_not_found(app: TestApp) {
    tenants::create(&mut app.connection(), "other").unwrap();
    let other_token = app.issue_token("other", "other-idp", "scim");
    let res = app
        .client
        .post(app.url("/scim/v2/Groups"))
        .bearer_auth(&other_token)
        .header("content-type", "application/scim+json")
        .body(json!({"displayName": "Their Secret Group", "externalId": "theirs"}).to_string())
        .send()
        .await
        .unwrap();
    let foreign = json(res).await["id"].as_str().unwrap().to_owned();
    let browser = Browser::sign_in(&app, "default", "alice").await;
    let res = browser.get(&format!("/admin/groups/{foreign}")).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert!(!res.text().await.unwrap().contains("Their Secret Group"));
    assert_eq!(browser.get("/admin/groups/no-such-group").await.status(), StatusCode::NOT_FOUND);
    for q in ["Their", "theirs"] {
        assert!(!browser.page(&format!("/admin/groups?q={q}")).await.contains("Their Secret Group"), "{q}");
    }
    // Without a session, nothing.
    let stranger = Browser::new(&app);
    for path in [
        "/admin/groups".to_owned(),
        format!("/admin/groups/{foreign}"),
        "/admin/settings".into(),
        "/admin/audit".into(),
        "/admin/audit.jsonl".into(),
    ] {
        assert_eq!(stranger.get(&path).await.status(), StatusCode::SEE_OTHER, "{path}");
    }
}

/// The settings form as the page fills it for `tenant`, with `changes` applied.
fn settings_form(tenant: &tenants::Tenant, csrf: &str, changes: &[(&str, &str)]) -> Vec<(String, String)> {
    let days = |d: Option<i32>| d.map(|d| d.to_string()).unwrap_or_default();
    let mut form: Vec<(String, String)> = vec![
        ("csrf".into(), csrf.into()),
        ("grace_days".into(), tenant.grace_days.to_string()),
        ("delete_policy".into(), tenant.delete_policy.clone()),
        ("former_member_after_days".into(), days(tenant.former_member_after_days)),
        ("delete_after_days".into(), days(tenant.delete_after_days)),
        ("event_retention_days".into(), days(tenant.event_retention_days)),
        ("archive_dir".into(), tenant.archive_dir.clone().unwrap_or_default()),
        ("archive_hold_hours".into(), tenant.archive_hold_hours.to_string()),
    ];
    if tenant.archive_export {
        form.push(("archive_export".into(), "on".into()));
    }
    for (name, value) in changes {
        form.retain(|(n, _)| n != name);
        if *value != "(unticked)" {
            form.push(((*name).into(), (*value).into()));
        }
    }
    form
}

fn default_tenant(app: &TestApp) -> tenants::Tenant {
    tenants::by_name(&mut app.connection(), "default").unwrap().unwrap()
}

async fn settings_are_validated_as_the_command_line_does_and_each_change_is_audited(app: TestApp) {
    let browser = Browser::sign_in(&app, "default", "alice").await;
    let page = browser.page("/admin/settings").await;
    for shown in [
        r#"name="grace_days" type="text" inputmode="numeric" value="4""#,
        "deactivate-then-delete",
        "Keep events",
        "Archive directory",
    ] {
        assert!(page.contains(shown), "{shown}: {page}");
    }
    let csrf = browser.csrf().await;
    let before = default_tenant(&app);
    let post = |form: Vec<(String, String)>| {
        let browser = &browser;
        async move {
            browser
                .with_cookie(browser.client.post(browser.app.url("/admin/settings")))
                .form(&form)
                .send()
                .await
                .unwrap()
        }
    };

    // Without the session's CSRF token: refused, nothing changed.
    let forged = post(settings_form(&before, "0000", &[("grace_days", "0")])).await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let tokenless =
        post(settings_form(&before, "", &[("grace_days", "0")]).into_iter().filter(|(n, _)| n != "csrf").collect())
            .await;
    assert!(tokenless.status().is_client_error(), "{}", tokenless.status());

    // The command line's rules, in words, and nothing changed.
    let archive_dir = std::env::temp_dir().to_string_lossy().into_owned();
    for (changes, says) in [
        (vec![("grace_days", "-1")], "grace_days must be between 0 and 36500; got -1"),
        (vec![("grace_days", "four")], "Grace period: &quot;four&quot; is not a whole number."),
        (vec![("delete_policy", "never")], "delete policy must be one of deactivate-then-delete"),
        (vec![("event_retention_days", "0")], "event_retention_days must be between 1 and 36500; got 0"),
        (vec![("archive_hold_hours", "9000")], "archive_hold_hours must be between 1 and 8760; got 9000"),
        (vec![("archive_export", "on")], "Archive export needs a destination"),
        (vec![("archive_dir", "relative/exports")], "must be an absolute path"),
    ] {
        let res = post(settings_form(&before, &csrf, &changes)).await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{changes:?}");
        let text = res.text().await.unwrap();
        assert!(text.contains(says) && text.contains("Not saved"), "{changes:?} → {says}: {text}");
    }
    let unchanged = default_tenant(&app);
    assert_eq!(
        (unchanged.grace_days, unchanged.archive_export, &unchanged.delete_policy),
        (4, false, &before.delete_policy)
    );

    // A valid change: saved, and each setting changed is an audit entry under the admin's name.
    let changes = [
        ("grace_days", "0"),
        ("delete_policy", "require-deactivated"),
        ("archive_export", "on"),
        ("archive_dir", archive_dir.as_str()),
        ("delete_after_days", "30"),
    ];
    let res = post(settings_form(&before, &csrf, &changes)).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(header(res.headers(), LOCATION.as_str()), "/admin/settings?done=saved");
    let after = default_tenant(&app);
    assert_eq!(after.grace_days, 0);
    assert_eq!(after.delete_policy, "require-deactivated");
    assert!(after.archive_export);
    assert_eq!(after.archive_dir.as_deref(), Some(archive_dir.as_str()));
    assert_eq!(after.delete_after_days, Some(30));
    let audit = records::audit_after(&mut app.connection(), &tenant_id(&app, "default"), 0, 100).unwrap();
    let changed: Vec<(&str, &str)> = audit
        .iter()
        .filter(|a| a.action == "admin.set_policy")
        .map(|a| {
            assert_eq!(a.actor, "panel:alice");
            (a.state_before.as_deref().unwrap(), a.state_after.as_deref().unwrap())
        })
        .collect();
    assert_eq!(changed.len(), 5, "{changed:?}");
    assert!(changed.contains(&("grace_days=4", "grace_days=0")), "{changed:?}");
    assert!(changed.contains(&("delete_after_days=off", "delete_after_days=30")), "{changed:?}");
    assert!(changed.contains(&("archive_export=false", "archive_export=true")), "{changed:?}");
    let page = browser.page("/admin/settings?done=saved").await;
    assert!(page.contains(r#"name="grace_days" type="text" inputmode="numeric" value="0""#), "{page}");
    assert!(page.contains("Saved."), "{page}");

    // The same form again changes nothing and records nothing.
    let res = post(settings_form(&after, &csrf, &[])).await;
    assert_eq!(header(res.headers(), LOCATION.as_str()), "/admin/settings?done=unchanged");
    let again = records::audit_after(&mut app.connection(), &tenant_id(&app, "default"), 0, 100).unwrap();
    assert_eq!(again.len(), audit.len());
    // Turning export off, the destination may go.
    let res = post(settings_form(&after, &csrf, &[("archive_export", "(unticked)"), ("archive_dir", "")])).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let off = default_tenant(&app);
    assert!(!off.archive_export && off.archive_dir.is_none());
}

/// `hours` after the start of November 2026.
fn at(hours: u32) -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2026, 11, 1).unwrap().and_hms_opt(0, 0, 0).unwrap() + chrono::Duration::hours(hours.into())
}

/// Audit entries of an HR system, arranged directly: `n` of them, one an hour from Nov 1st.
fn hr_entries(app: &TestApp, tenant: &str, n: u32, user_id: &str) {
    let tenant_id = tenant_id(app, tenant);
    let mut conn = app.connection();
    for i in 0..n {
        let entry = Audit {
            tenant_id: &tenant_id,
            actor: "hr-sync",
            action: "deactivate",
            user_id,
            before: Some("active"),
            after: Some("deactivated"),
            at: at(i),
        };
        records::audit(&mut conn, &entry).unwrap();
    }
}

/// The JSON Lines of a download.
async fn download(browser: &Browser<'_>, query: &str) -> (reqwest::header::HeaderMap, Vec<Value>) {
    let res = browser.get(&format!("/admin/audit.jsonl{query}")).await;
    assert_eq!(res.status(), StatusCode::OK, "{query}");
    let headers = res.headers().clone();
    let text = res.text().await.unwrap();
    let lines = text.lines().map(|l| serde_json::from_str(l).expect("each line is JSON")).collect();
    (headers, lines)
}

async fn the_audit_log_is_filtered_paged_newest_first_and_downloaded_as_json_lines(app: TestApp) {
    let target = user(&app, "audited").await;
    hr_entries(&app, "default", 1200, "");
    hr_entries(&app, "default", 3, &target);
    tenants::create(&mut app.connection(), "other").unwrap();
    hr_entries(&app, "other", 5, "");
    let browser = Browser::sign_in(&app, "default", "alice").await;
    let csrf = browser.csrf().await;
    let res = browser.post(&format!("/admin/people/{target}/deactivate"), &[("csrf", &csrf)]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);

    // Newest first: the admin's deactivation, then its sign-in, then the arranged entries.
    let page = browser.page("/admin/audit").await;
    assert_eq!(rows(&page), 50);
    let first_row = page.split("<tbody>").nth(1).unwrap().split("</tr>").next().unwrap();
    assert!(first_row.contains("panel:alice") && first_row.contains("deactivate"), "{first_row}");
    assert!(first_row.contains(&format!(r#"href="/admin/people/{target}""#)), "{first_row}");
    let older = browser.page(&next_link(&page).expect("older entries")).await;
    assert_eq!(rows(&older), 50);
    assert!(older.contains("← Newest"));

    // Filters: actor, action, person (by userName or id), time range; each combines.
    let alices = browser.page("/admin/audit?actor=panel:alice").await;
    assert!(!alices.contains("hr-sync") && alices.contains("admin.sign_in"), "{alices}");
    assert_eq!(rows(&browser.page("/admin/audit?action=admin.sign").await), 1);
    let everything = records::audit_after(&mut app.connection(), &tenant_id(&app, "default"), 0, 10_000).unwrap();
    let of_target = everything.iter().filter(|a| a.user_id == target).count();
    assert!(of_target >= 4, "three arranged, the panel's, and the SCIM creation's");
    for person in ["audited", target.as_str()] {
        let theirs = browser.page(&format!("/admin/audit?target={person}")).await;
        assert_eq!(rows(&theirs), of_target, "{person}");
    }
    let day = browser.page("/admin/audit?actor=hr-sync&from=2026-11-02&to=2026-11-02").await;
    assert_eq!(rows(&day), 24, "the whole of the 2nd of November, and only it");
    assert!(next_link(&day).is_none());
    let refused = browser.get("/admin/audit?from=yesterday").await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert!(refused.text().await.unwrap().contains("is not a date"));

    // The download: every entry that passes the filters, newest first, in pages of the log.
    let (headers, all) = download(&browser, "").await;
    assert_eq!(header(&headers, CONTENT_TYPE.as_str()), "application/jsonl; charset=utf-8");
    let disposition = header(&headers, CONTENT_DISPOSITION.as_str());
    assert!(
        disposition.starts_with("attachment; filename=\"roster-audit-default-") && disposition.ends_with(".jsonl\""),
        "{disposition}"
    );
    assert_eq!(all.len(), everything.len(), "every entry of the tenant, the other tenant's none");
    assert!(all.len() > 1200);
    let ids: Vec<i64> = all.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first, each once");
    assert_eq!(all[0]["actor"], "panel:alice");
    assert_eq!(all[0]["userId"], json!(target));
    let (_, day) = download(&browser, "?actor=hr-sync&from=2026-11-02&to=2026-11-03").await;
    assert_eq!(day.len(), 48);
    assert!(day.iter().all(|e| e["actor"] == "hr-sync" && e["at"].as_str().unwrap().starts_with("2026-11-0")));
    let (_, theirs) = download(&browser, "?target=audited&action=deactivate").await;
    assert_eq!(theirs.len(), 4, "three arranged and the panel's");
    assert!(page.contains(r#"href="/admin/audit.jsonl""#), "the page links the download");
    let filtered = browser.page("/admin/audit?actor=hr-sync&action=deac").await;
    assert!(
        filtered.contains(r#"href="/admin/audit.jsonl?actor=hr-sync&amp;action=deac""#),
        "with the same filters: {filtered}"
    );
}

both_backends!(
    groups_are_listed_searched_and_their_members_paged_with_their_state,
    another_tenants_groups_are_not_found,
    settings_are_validated_as_the_command_line_does_and_each_change_is_audited,
    the_audit_log_is_filtered_paged_newest_first_and_downloaded_as_json_lines,
);
