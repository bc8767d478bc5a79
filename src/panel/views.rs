//! The panel's pages, as compile-time checked markup (maud escapes every value it prints). No
//! inline script or style: the Content-Security-Policy allows neither.

use chrono::NaiveDateTime;
use maud::{html, Markup, DOCTYPE};

use super::assets;
use super::people::{self, Badge, Moment, Person};
use super::signin::Admin;
use super::store::AdminSessionRow;
use crate::db::tenants::Tenant;
use crate::db::users::UserRow;
use crate::lifecycle::{DeletePolicy, Policy, State, FORMER_MEMBER_NAME};

/// Times as people read them, in UTC, inside `<time>` with the exact value.
pub(super) fn when(t: NaiveDateTime) -> Markup {
    html! { time datetime=(crate::clock::time(t)) { (t.format("%Y-%m-%d %H:%M UTC")) } }
}

/// The navigation entries; the current one is marked for assistive technology.
#[derive(PartialEq, Eq, Clone, Copy)]
pub enum Section {
    People,
    Sessions,
    Groups,
    Settings,
    Audit,
    Connections,
    Webhooks,
    None,
}

/// The frame of every page: skip link, header with navigation and tenant, main landmark.
pub fn page(title: &str, admin: Option<(&Admin, &[Tenant])>, section: Section, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Roster admin" }
                link rel="stylesheet" href=(assets::CSS.url());
                script src=(assets::JS.url()) defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/admin/people" { span aria-hidden="true" { "◆ " } "Roster admin" }
                    @if let Some((admin, tenants)) = admin {
                        nav aria-label="Main" {
                            ul {
                                li { a href="/admin/people" aria-current=[(section == Section::People).then_some("page")] { "People" } }
                                li { a href="/admin/groups" aria-current=[(section == Section::Groups).then_some("page")] { "Groups" } }
                                li { a href="/admin/settings" aria-current=[(section == Section::Settings).then_some("page")] { "Settings" } }
                                li { a href="/admin/audit" aria-current=[(section == Section::Audit).then_some("page")] { "Audit log" } }
                                li { a href="/admin/connections" aria-current=[(section == Section::Connections).then_some("page")] { "Connections" } }
                                li { a href="/admin/webhooks" aria-current=[(section == Section::Webhooks).then_some("page")] { "Webhooks" } }
                                li { a href="/admin/sessions" aria-current=[(section == Section::Sessions).then_some("page")] { "Admin sessions" } }
                            }
                        }
                        div.who {
                            @if admin.session.all_tenants && tenants.len() > 1 {
                                form.switch method="post" action="/admin/tenant" {
                                    input type="hidden" name="csrf" value=(admin.csrf);
                                    label for="tenant-switch" { "Tenant" }
                                    select id="tenant-switch" name="tenant" {
                                        @for t in tenants {
                                            option value=(t.name) selected[t.id == admin.tenant.id] { (t.name) }
                                        }
                                    }
                                    button type="submit" { "Switch" }
                                }
                            } @else {
                                span { "Tenant " strong { (admin.tenant.name) } }
                            }
                            span.name { "Signed in as " strong { (admin.session.name) } }
                            form method="post" action="/admin/signout" {
                                input type="hidden" name="csrf" value=(admin.csrf);
                                button.link type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                main id="main" tabindex="-1" { (body) }
                footer { "Roster " (env!("CARGO_PKG_VERSION")) " · pages show personal data: they are never cached" }
            }
        }
    }
}

pub fn badge(b: &Badge) -> Markup {
    match b {
        Badge::Active => html! { span.badge.active { "Active" } },
        Badge::DeactivatedSince(t) => html! { span.badge.deactivated { "Deactivated since " (when(*t)) } },
        Badge::FormerMember => html! { span.badge.former { "Former Member" } },
        Badge::DeletionScheduled(t) => html! { span.badge.deletion { "Deletion scheduled " (when(*t)) } },
    }
}

pub(super) fn badges(row: &UserRow, policy: &Policy) -> Markup {
    html! { span.badges { @for b in people::badges(row, policy) { (badge(&b)) " " } } }
}

/// The name a person is shown by.
pub(super) fn display_name(row: &UserRow) -> String {
    if row.lifecycle_state == State::FormerMember {
        return FORMER_MEMBER_NAME.to_owned();
    }
    let doc = row.document();
    people::text(&doc, "displayName")
        .or_else(|| doc.get("name").and_then(|n| n.get("formatted")).and_then(|f| f.as_str()))
        .unwrap_or(&row.user_name)
        .to_owned()
}

pub struct PeopleList<'a> {
    pub tenant: &'a Tenant,
    pub total: i64,
    pub query: &'a str,
    pub state: Option<State>,
    pub rows: &'a [UserRow],
    /// Where the next page starts (browsing), or None on the last page.
    pub next: Option<String>,
    /// A search found more than it shows.
    pub more: bool,
    pub notice: Option<&'a str>,
}

pub fn people_list(list: &PeopleList<'_>) -> Markup {
    let policy = Policy::of(list.tenant);
    let state_option = |value: &str, label: &str, state: Option<State>| {
        html! { option value=(value) selected[list.state == state] { (label) } }
    };
    html! {
        h1 { "People" }
        p.lead { (list.total) " accounts in tenant " strong { (list.tenant.name) } ". Each person's page lists their "
            a href="/admin/groups" { "groups" } "." }
        @if let Some(notice) = list.notice {
            p.notice role="status" { (notice) }
        }
        form.search method="get" action="/admin/people" role="search" {
            div.field {
                label for="q" { "Search" }
                input id="q" name="q" type="search" value=(list.query) autocomplete="off"
                    aria-describedby="q-help" placeholder="Name, userName, email or externalId";
                small id="q-help" { "Names, userNames and emails match from their start; an externalId matches exactly." }
            }
            div.field {
                label for="state" { "State" }
                select id="state" name="state" {
                    (state_option("", "Any state", None))
                    (state_option("active", "Active", Some(State::Active)))
                    (state_option("deactivated", "Deactivated", Some(State::Deactivated)))
                    (state_option("formerMember", "Former Member", Some(State::FormerMember)))
                }
            }
            button type="submit" { "Search" }
        }
        @if list.rows.is_empty() {
            p.empty { "No account matches." }
        } @else {
            div.table-wrap {
                table.people {
                    caption.visually-hidden { "People" }
                    thead { tr { th scope="col" { "Name" } th scope="col" { "userName" } th scope="col" { "Email" } th scope="col" { "State" } th scope="col" { "Created" } } }
                    tbody {
                        @for row in list.rows {
                            @let doc = row.document();
                            tr {
                                td { a href={ "/admin/people/" (row.id) } { (display_name(row)) } }
                                td.mono { (row.user_name) }
                                td { (people::email(&doc).unwrap_or_default()) }
                                td { (badges(row, &policy)) }
                                td { (when(row.created_at)) }
                            }
                        }
                    }
                }
            }
        }
        @if list.more {
            p.notice { "More accounts match than are shown: refine the search." }
        }
        nav.pager aria-label="Pages" {
            @if let Some(next) = &list.next {
                a rel="next" href=(next) { "Next page →" }
            }
        }
    }
}

/// What an action's form needs to know about the outcome of the last attempt.
pub struct Outcome<'a> {
    pub done: Option<&'a str>,
    pub refused: Option<&'a str>,
}

fn action_form(admin: &Admin, row: &UserRow, action: &str, body: Markup) -> Markup {
    html! {
        form.action method="post" action={ "/admin/people/" (row.id) "/" (action) } {
            input type="hidden" name="csrf" value=(admin.csrf);
            (body)
        }
    }
}

/// The field that asks for the userName before an irreversible action.
fn confirm_field(row: &UserRow, action: &str) -> Markup {
    let id = format!("confirm-{action}");
    html! {
        div.field {
            label for=(id) { "Type the userName " code { (row.user_name) } " to confirm" }
            input id=(id) name="confirm" type="text" autocomplete="off" spellcheck="false" required
                data-confirm=(row.user_name);
        }
    }
}

pub fn person_page(admin: &Admin, person: &Person, now: NaiveDateTime, outcome: &Outcome<'_>) -> Markup {
    let row = &person.row;
    let policy = Policy::of(&admin.tenant);
    let dates = people::dates(row, &policy);
    let doc = row.document();
    let former = row.lifecycle_state == State::FormerMember;
    html! {
        p.crumbs { a href="/admin/people" { "← People" } }
        h1 { (display_name(row)) " " (badges(row, &policy)) }
        @if let Some(done) = outcome.done {
            p.notice role="status" { (done) }
        }
        @if let Some(refused) = outcome.refused {
            div.refusal role="alert" { h2 { "Not done" } p { (refused) } }
        }
        div.grid {
            section aria-labelledby="profile" {
                h2 id="profile" { "Profile" }
                @if former {
                    p { "This account is a " strong { "Former Member" } ": its profile fields were removed"
                        @if let Some(t) = dates.former_member_since { " on " (when(t)) } ". It stays for the record; a person who returns needs a new account." }
                }
                dl {
                    dt { "userName" } dd.mono { (row.user_name) }
                    dt { "id" } dd.mono { (row.id) }
                    @if !former {
                        @if let Some(v) = people::text(&doc, "displayName") { dt { "displayName" } dd { (v) } }
                        @if let Some(v) = doc.get("name").and_then(|n| n.get("formatted")).and_then(|v| v.as_str()) { dt { "Name" } dd { (v) } }
                        @if let Some(v) = people::email(&doc) { dt { "Email" } dd { (v) } }
                        @if let Some(v) = people::text(&doc, "title") { dt { "Title" } dd { (v) } }
                        @if let Some(v) = &row.external_id { dt { "externalId" } dd.mono { (v) } }
                    }
                }
            }
            section aria-labelledby="lifecycle" {
                h2 id="lifecycle" { "Lifecycle" }
                dl {
                    dt { "Created" } dd { (when(row.created_at)) }
                    @if let Some(t) = dates.deactivated_at { dt { "Deactivated at" } dd { (when(t)) } }
                    @if let Some(t) = dates.memberships_removed_at {
                        dt { "Group memberships removed" } dd { (when(t)) }
                    }
                    @if let Some(t) = dates.remove_profile_from { dt { "Remove Profile Fields available from" } dd { (when(t)) } }
                    @if let Some(t) = dates.former_member_scheduled { dt { "Becomes a Former Member by retention at" } dd { (when(t)) } }
                    @if let Some(t) = dates.former_member_since { dt { "Former Member since" } dd { (when(t)) } }
                    @if let Some(t) = dates.deletion_at { dt { "Deleted by retention at" } dd { (when(t)) } }
                    dt { "Grace period" } dd { (policy.grace.num_days()) " days (tenant policy)" }
                }
            }
            section aria-labelledby="groups" {
                h2 id="groups" { "Groups " span.count { "(" (person.groups.len()) ")" } }
                @if person.groups.is_empty() { p.empty { "In no group." } } @else {
                    ul { @for (id, name) in &person.groups { li { a href={ "/admin/groups/" (id) } { (name) } } } }
                }
            }
            section aria-labelledby="sessions" {
                h2 id="sessions" { "Sessions" }
                p { strong.sessions-count { (person.open_sessions) } " open " (if person.open_sessions == 1 { "session" } else { "sessions" }) }
            }
            section aria-labelledby="content" {
                h2 id="content" { "Content" }
                @if person.content_counts.is_empty() { p.empty { "Wrote nothing." } } @else {
                    ul.counts { @for (kind, n) in &person.content_counts { li { strong { (n) } " " (kind) @if *n != 1 { "s" } } } }
                    h3 { "Latest" }
                    ul.content {
                        @for item in &person.latest_content {
                            li {
                                span.author {
                                    // The original author name stays; a Former Member's no longer
                                    // links to the account (docs/lifecycle.md).
                                    @if former { (person.author_name) } @else { a href={ "/admin/people/" (row.id) } { (person.author_name) } }
                                }
                                " · " (item.kind) " · " (when(item.created_at))
                                blockquote { (item.body) }
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="actions" {
            h2 id="actions" { "Actions" }
            div.actions {
                @match row.lifecycle_state {
                    State::Active => {
                        (action_form(admin, row, "deactivate", html! {
                            h3 { "Deactivate" }
                            p { "Signs the person out everywhere at once (" (person.open_sessions) " open sessions) and blocks sign-in. Group memberships are removed after the grace period; profile and content stay." }
                            button.primary type="submit" { "Deactivate" }
                        }))
                    }
                    State::Deactivated => {
                        (action_form(admin, row, "reactivate", html! {
                            h3 { "Reactivate" }
                            p { "Restores sign-in; all data was kept and pending membership removal is cancelled." }
                            button type="submit" { "Reactivate" }
                        }))
                    }
                    State::FormerMember => {}
                }
                @if !former {
                    (action_form(admin, row, "remove-profile-fields", html! {
                        h3 { "Remove Profile Fields" }
                        p.warning { strong { "Irreversible." } " Every profile field is removed and the name becomes “Former Member”. Content keeps the original author name but no longer links to the account. The account cannot be reactivated: a person who returns needs a new account." }
                        @match (row.lifecycle_state, dates.remove_profile_from) {
                            (State::Active, _) => {
                                p.rule { "Deactivate the account first." }
                                button.danger type="submit" disabled { "Remove Profile Fields" }
                            }
                            (_, Some(from)) if now < from => {
                                p.rule { "Available from " (when(from)) " (deactivation plus the " (policy.grace.num_days()) "-day grace period)." }
                                button.danger type="submit" disabled { "Remove Profile Fields" }
                            }
                            _ => {
                                (confirm_field(row, "remove-profile-fields"))
                                button.danger type="submit" { "Remove Profile Fields" }
                            }
                        }
                    }))
                }
                (action_form(admin, row, "delete", html! {
                    h3 { "Delete" }
                    p { (delete_explanation(&policy, row.lifecycle_state)) }
                    @if policy.archive_export && policy.delete != DeletePolicy::DeactivateOnly {
                        p { "An archive export of the profile and content is made first, for the tenant's archive directory." }
                    } @else if policy.delete != DeletePolicy::DeactivateOnly {
                        p { "No archive export is made (the tenant's policy has none)." }
                    }
                    @if policy.delete == DeletePolicy::RequireDeactivated && row.lifecycle_state == State::Active {
                        p.rule { "The tenant requires accounts to be deactivated before they are deleted." }
                        button.danger type="submit" disabled { "Delete" }
                    } @else {
                        (confirm_field(row, "delete"))
                        button.danger type="submit" { "Delete" }
                    }
                }))
            }
        }
        section aria-labelledby="timeline" {
            h2 id="timeline" { "Timeline" }
            p { a href={ "/admin/audit?target=" (row.id) } { "Every audit entry of this account" } }
            @if person.timeline.is_empty() { p.empty { "Nothing recorded." } } @else {
                div.table-wrap {
                    table.timeline {
                        thead { tr { th scope="col" { "When" } th scope="col" { "What" } th scope="col" { "By" } } }
                        tbody {
                            @for m in &person.timeline {
                                @match m {
                                    Moment::Event { kind, at } => tr { td { (when(*at)) } td { "event " code { (kind) } } td { "—" } },
                                    Moment::Audit(a) => tr {
                                        td { (when(a.at)) }
                                        td { (a.action) @if a.before.is_some() || a.after.is_some() {
                                            " (" (a.before.as_deref().unwrap_or("—")) " → " (a.after.as_deref().unwrap_or("deleted")) ")" } }
                                        td { (a.actor) }
                                    },
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn delete_explanation(policy: &Policy, state: State) -> &'static str {
    match (policy.delete, state) {
        (DeletePolicy::DeactivateOnly, _) => {
            "The tenant's policy is deactivate-only: the account is deactivated and removed from SCIM, its content stays."
        }
        (DeletePolicy::DeactivateThenDelete, State::Active) => {
            "Deactivates the account, then deletes it with everything it wrote (posts, comments, messages), permanently. Only a tombstone without personal data remains."
        }
        _ => "Deletes the account and everything it wrote (posts, comments, messages), permanently. Only a tombstone without personal data remains.",
    }
}

pub fn sessions_page(admin: &Admin, sessions: &[AdminSessionRow], now: NaiveDateTime, notice: Option<&str>) -> Markup {
    html! {
        h1 { "Admin sessions" }
        p.lead { "Sessions opened with sign-in links. A session ends after " (super::signin::IDLE_TIMEOUT.num_minutes())
            " minutes without use and " (super::signin::ABSOLUTE_TIMEOUT.num_hours()) " hours after sign-in at the latest." }
        @if let Some(notice) = notice { p.notice role="status" { (notice) } }
        div.table-wrap {
            table {
                thead { tr { th scope="col" { "Admin" } th scope="col" { "Signed in" } th scope="col" { "Last used" } th scope="col" { "State" } th scope="col" { span.visually-hidden { "Action" } } } }
                tbody {
                    @for s in sessions {
                        @let open = s.revoked_at.is_none() && now < s.expires_at && now < s.last_seen_at + super::signin::IDLE_TIMEOUT;
                        tr {
                            td { (s.name) @if s.id == admin.session.id { " " span.badge.active { "this session" } } @if s.all_tenants { " " span.badge { "all tenants" } } }
                            td { (when(s.created_at)) }
                            td { (when(s.last_seen_at)) }
                            td { @if let Some(t) = s.revoked_at { "revoked " (when(t)) } @else if open { "open" } @else { "ended" } }
                            td {
                                @if open {
                                    form method="post" action={ "/admin/sessions/" (s.id) "/revoke" } {
                                        input type="hidden" name="csrf" value=(admin.csrf);
                                        button type="submit" aria-label={ "Revoke the session of " (s.name) " signed in " (s.created_at.format("%Y-%m-%d %H:%M")) } { "Revoke" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The sign-in page; `ended` says why the admin is back here, under the heading "Signed out".
pub fn signin_page(token: Option<&str>, ended: Option<&str>) -> Markup {
    html! {
        div.card {
            @if let Some(ended) = ended {
                h1 { "Signed out" }
                p { (ended) }
            } @else {
                h1 { "Sign in to Roster admin" }
            }
            @if let Some(token) = token {
                p { "This one-time link signs you in. It works once and only for a few minutes." }
                form method="post" action="/admin/signin" {
                    input type="hidden" name="token" value=(token);
                    button.primary type="submit" { "Sign in" }
                }
            } @else {
                p { "Sign-in is by one-time link. An operator makes one on the server:" }
                pre { code { "roster admin link --tenant <tenant> --name <your name>" } }
            }
        }
    }
}

/// A page that says what went wrong, in words.
pub fn problem(title: &str, detail: &str) -> Markup {
    html! {
        div.card {
            h1 { (title) }
            p { (detail) }
            p { a href="/admin/people" { "Back to People" } }
        }
    }
}
