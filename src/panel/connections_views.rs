//! The Connections pages' markup: the list with the issue form, a newly issued token (shown
//! once), and a connection with its error rate and request log.

use chrono::NaiveDateTime;
use maud::{html, Markup};

use super::assets;
use super::signin::Admin;
use super::views::when;
use crate::auth::Scope;
use crate::db::connections::{ErrorRate, LogRow};
use crate::requestlog::RETENTION;

pub enum Kind {
    Token { issued_at: NaiveDateTime, expires_at: Option<NaiveDateTime>, last_used: Option<NaiveDateTime> },
    OAuthClient { created_at: NaiveDateTime },
}

/// One IdP connection: a bearer token or an OAuth client.
pub struct Connection {
    pub id: String,
    pub name: String,
    pub scope: String,
    pub kind: Kind,
    pub revoked_at: Option<NaiveDateTime>,
    /// Over the last hour.
    pub rate: ErrorRate,
}

impl Connection {
    fn expired(&self, now: NaiveDateTime) -> bool {
        matches!(self.kind, Kind::Token { expires_at: Some(t), .. } if t <= now)
    }
}

/// The issue form's values, kept when it is refused.
pub struct IssueForm {
    pub name: String,
    pub scopes: Vec<String>,
    pub expires: String,
    pub refusal: Option<String>,
}

impl Default for IssueForm {
    fn default() -> Self {
        IssueForm {
            name: String::new(),
            scopes: vec![Scope::Scim.as_str().to_owned()],
            expires: "365d".into(),
            refusal: None,
        }
    }
}

/// A token just issued: the only time its text is shown.
pub struct Issued<'a> {
    pub jti: &'a str,
    pub name: &'a str,
    pub scope: &'a str,
    pub expires_at: Option<NaiveDateTime>,
    pub token: &'a str,
    pub base_url: &'a str,
}

pub struct LogView<'a> {
    /// Where the newest page is, with the same filter.
    pub first: String,
    pub rows: &'a [LogRow],
    pub errors_only: bool,
    pub next: Option<String>,
    /// Not the first page.
    pub paged: bool,
}

/// A logged request's time: to the second, as requests a second apart are told apart.
fn to_the_second(t: NaiveDateTime) -> Markup {
    html! { time datetime=(crate::clock::time(t)) { (t.format("%Y-%m-%d %H:%M:%S UTC")) } }
}

/// The pages' own styles, beside panel.css (a `link` in the body is allowed for stylesheets).
fn stylesheet() -> Markup {
    html! { link rel="stylesheet" href=(assets::CONNECTIONS_CSS.url()); }
}

const LIFETIMES: [(&str, &str); 5] = [
    ("30d", "30 days"),
    ("90d", "90 days"),
    ("365d", "1 year"),
    ("730d", "2 years"),
    ("never", "Never (until revoked)"),
];

fn scope_help(scope: Scope) -> &'static str {
    match scope {
        Scope::Scim => "read and write Users and Groups (what Okta and Entra provisioning needs)",
        Scope::ScimRead => "read Users and Groups only",
        Scope::Sessions => "open and check product sessions",
        Scope::Content => "posts, comments and messages",
        Scope::Events => "read the event feed",
        Scope::Admin => "tenant administration through the API",
    }
}

/// The error-rate indicator: requests and failures over the last hour, in a warning style
/// when most fail (Entra quarantines a provisioning app then).
fn rate(rate: &ErrorRate) -> Markup {
    html! {
        @if rate.requests == 0 {
            span.rate.idle { "No requests in the last hour" }
        } @else {
            span.rate.failing[rate.failing()] {
                (rate.requests) " requests, " (rate.errors) " failed (" (rate.percent()) "%)"
                @if rate.failing() { " — most requests fail" }
            }
        }
    }
}

fn state(c: &Connection, now: NaiveDateTime) -> Markup {
    html! {
        @if let Some(t) = c.revoked_at { span.badge.deletion { "Revoked " (when(t)) } }
        @else if c.expired(now) { span.badge.deactivated { "Expired" } }
        @else { span.badge.active { "Active" } }
    }
}

fn base_url_field(base_url: &str) -> Markup {
    html! {
        div.field.copyable {
            label for="scim-base" { "SCIM base URL" }
            div.copy-row {
                input id="scim-base" type="text" readonly value=(base_url) spellcheck="false";
                button type="button" data-copy="scim-base" hidden { "Copy" }
            }
            span.copy-status id="scim-base-status" role="status" {}
        }
    }
}

fn issue_form(admin: &Admin, form: &IssueForm) -> Markup {
    html! {
        section aria-labelledby="issue" {
            h2 id="issue" { "Issue a token" }
            p { "A bearer token for one IdP connection. It is shown once, right after it is issued." }
            @if let Some(refusal) = &form.refusal {
                div.refusal role="alert" { h3 { "Not issued" } p { (refusal) } }
            }
            form.issue method="post" action="/admin/connections" {
                input type="hidden" name="csrf" value=(admin.csrf);
                div.field {
                    label for="token-name" { "Name" }
                    input id="token-name" name="name" type="text" required maxlength="64" value=(form.name)
                        placeholder="okta-prod" autocomplete="off" spellcheck="false" aria-describedby="token-name-help";
                    span.help id="token-name-help" { "Names the connection in this list and in the audit log, e.g. okta-prod or entra-prod." }
                }
                fieldset {
                    legend { "Scope" }
                    @for scope in Scope::ALL {
                        div.check {
                            input id={ "scope-" (scope.as_str()) } type="checkbox" name="scope" value=(scope.as_str())
                                checked[form.scopes.iter().any(|s| s == scope.as_str())];
                            label for={ "scope-" (scope.as_str()) } { code { (scope.as_str()) } " — " (scope_help(scope)) }
                        }
                    }
                }
                div.field {
                    label for="token-expires" { "Expires after" }
                    select id="token-expires" name="expires" {
                        @for (value, label) in LIFETIMES {
                            option value=(value) selected[form.expires == value] { (label) }
                        }
                    }
                }
                button.primary type="submit" { "Issue token" }
            }
        }
    }
}

pub struct ListView<'a> {
    pub all: &'a [Connection],
    pub base_url: &'a str,
    pub form: &'a IssueForm,
    pub notice: Option<&'a str>,
    pub now: NaiveDateTime,
}

pub fn list_page(admin: &Admin, view: &ListView<'_>) -> Markup {
    let (all, base_url, form, notice, now) = (view.all, view.base_url, view.form, view.notice, view.now);
    let (tokens, clients): (Vec<&Connection>, Vec<&Connection>) =
        all.iter().partition(|c| matches!(c.kind, Kind::Token { .. }));
    html! {
        (stylesheet())
        h1 { "Connections" }
        p.lead { "Each identity provider connects to tenant " strong { (admin.tenant.name) } " with its own bearer token or OAuth client. "
            "Requests are logged per connection for " (RETENTION.max_age.num_hours()) " hours (the newest "
            (RETENTION.rows_per_connection) " of each), with personal values masked." }
        @if let Some(notice) = notice { p.notice role="status" { (notice) } }
        (base_url_field(base_url))
        section aria-labelledby="tokens" {
            h2 id="tokens" { "Bearer tokens " span.count { "(" (tokens.len()) ")" } }
            @if tokens.is_empty() { p.empty { "No token yet: issue one below." } } @else {
                div.table-wrap {
                    table.connections {
                        thead { tr {
                            th scope="col" { "Name" } th scope="col" { "Scope" } th scope="col" { "State" }
                            th scope="col" { "Last used" } th scope="col" { "Last hour" } th scope="col" { "Expires" }
                        } }
                        tbody {
                            @for c in &tokens {
                                tr {
                                    td { a href={ "/admin/connections/" (c.id) } { (c.name) } }
                                    td.mono { (c.scope) }
                                    td { (state(c, now)) }
                                    td { @if let Kind::Token { last_used: Some(t), .. } = c.kind { (when(t)) } @else { "Never" } }
                                    td { (rate(&c.rate)) }
                                    td { @if let Kind::Token { expires_at: Some(t), .. } = c.kind { (when(t)) } @else { "Never" } }
                                }
                            }
                        }
                    }
                }
            }
        }
        (issue_form(admin, form))
        section aria-labelledby="clients" {
            h2 id="clients" { "OAuth clients " span.count { "(" (clients.len()) ")" } }
            p { "Clients that get short-lived access tokens at " code { "/oauth/token" } " (docs/oauth.md). They are created, rotated and revoked with " code { "roster client" } " on the server." }
            @if clients.is_empty() { p.empty { "No OAuth client." } } @else {
                div.table-wrap {
                    table.connections {
                        thead { tr {
                            th scope="col" { "Name" } th scope="col" { "client_id" } th scope="col" { "Scope" }
                            th scope="col" { "State" } th scope="col" { "Last hour" } th scope="col" { "Created" }
                        } }
                        tbody {
                            @for c in &clients {
                                tr {
                                    td { a href={ "/admin/connections/" (c.id) } { (c.name) } }
                                    td.mono { (c.id) }
                                    td.mono { (c.scope) }
                                    td { (state(c, now)) }
                                    td { (rate(&c.rate)) }
                                    td { @if let Kind::OAuthClient { created_at } = c.kind { (when(created_at)) } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

pub fn issued_page(issued: &Issued<'_>) -> Markup {
    html! {
        (stylesheet())
        p.crumbs { a href="/admin/connections" { "← Connections" } }
        h1 { "Token issued: " (issued.name) }
        div.card.issued {
            p.warning { strong { "Copy it now." } " This is the only time the token is shown; Roster keeps only its record. If it is lost, revoke it and issue another." }
            div.field.copyable {
                label for="new-token" { "Bearer token" }
                div.copy-row {
                    textarea id="new-token" readonly rows="6" spellcheck="false" { (issued.token) }
                    button type="button" data-copy="new-token" hidden { "Copy" }
                }
                span.copy-status id="new-token-status" role="status" {}
            }
            (base_url_field(issued.base_url))
            dl {
                dt { "Scope" } dd.mono { (issued.scope) }
                dt { "Expires" } dd { @if let Some(t) = issued.expires_at { (when(t)) } @else { "Never (until revoked)" } }
                dt { "Token id (jti)" } dd.mono { (issued.jti) }
            }
        }
        section aria-labelledby="paste" {
            h2 id="paste" { "Where to paste them" }
            div.grid {
                div {
                    h3 { "Okta" }
                    p { "In the app's Provisioning tab, Integration: " strong { "SCIM connector base URL" } " is the SCIM base URL; "
                        strong { "Authentication Mode" } " is " em { "HTTP Header" } ", and the token goes in " strong { "Authorization" } " (Bearer)." }
                }
                div {
                    h3 { "Microsoft Entra ID" }
                    p { "In the enterprise app's Provisioning, Admin Credentials: " strong { "Tenant URL" } " is the SCIM base URL and "
                        strong { "Secret Token" } " is the token. Test Connection calls Roster at once." }
                }
            }
        }
        p { a href={ "/admin/connections/" (issued.jti) } { "See this connection's request log" } }
        script src=(assets::CONNECTIONS_JS.url()) defer {}
    }
}

fn log_table(view: &LogView<'_>) -> Markup {
    html! {
        @if view.rows.is_empty() {
            p.empty { @if view.errors_only { "No failed request logged." } @else { "No request logged." } }
        } @else {
            div.table-wrap {
                table.log {
                    thead { tr {
                        th scope="col" { "Time" } th scope="col" { "Request" } th scope="col" { "Status" }
                        th scope="col" { "Duration" } th scope="col" { "Error" }
                    } }
                    tbody {
                        @for row in view.rows {
                            tr.failed[row.status >= 400] {
                                td { (to_the_second(row.at)) }
                                td.mono { span.method { (row.method) } " " (row.path) }
                                td { span.status { (row.status) } }
                                td { (format!("{:.1} ms", row.duration_us as f64 / 1000.0)) }
                                td {
                                    @if let Some(t) = &row.scim_type { code.scim-type { (t) } " " }
                                    @if let Some(d) = &row.detail { (d) }
                                }
                            }
                        }
                    }
                }
            }
        }
        nav.pager aria-label="Log pages" {
            @if view.paged { a href=(view.first) { "← Newest" } " " }
            @if let Some(next) = &view.next { a rel="next" href=(next) { "Older →" } }
        }
    }
}

pub fn connection_page(
    admin: &Admin,
    c: &Connection,
    log: &LogView<'_>,
    notice: Option<&str>,
    now: NaiveDateTime,
) -> Markup {
    let live = c.revoked_at.is_none();
    html! {
        (stylesheet())
        p.crumbs { a href="/admin/connections" { "← Connections" } }
        h1 { (c.name) " " (state(c, now)) }
        @if let Some(notice) = notice { p.notice role="status" { (notice) } }
        div.grid {
            section aria-labelledby="about" {
                h2 id="about" { "Connection" }
                dl {
                    @match c.kind {
                        Kind::Token { issued_at, expires_at, last_used } => {
                            dt { "Kind" } dd { "Bearer token" }
                            dt { "Token id (jti)" } dd.mono { (c.id) }
                            dt { "Issued" } dd { (when(issued_at)) }
                            dt { "Expires" } dd { @if let Some(t) = expires_at { (when(t)) } @else { "Never" } }
                            dt { "Last used" } dd { @if let Some(t) = last_used { (when(t)) } @else { "Never" } }
                        }
                        Kind::OAuthClient { created_at } => {
                            dt { "Kind" } dd { "OAuth client" }
                            dt { "client_id" } dd.mono { (c.id) }
                            dt { "Created" } dd { (when(created_at)) }
                        }
                    }
                    dt { "Scope" } dd.mono { (c.scope) }
                }
            }
            section aria-labelledby="health" {
                h2 id="health" { "Last hour" }
                p.rate-big { (rate(&c.rate)) }
                @if c.rate.failing() {
                    p.warning { "Most requests fail. Microsoft Entra quarantines a provisioning app whose requests mostly fail, and then provisions it only rarely: read the errors below and fix the cause." }
                }
            }
        }
        @if let Kind::Token { .. } = c.kind {
            @if live {
                section aria-labelledby="revoke" {
                    h2 id="revoke" { "Revoke" }
                    form.action method="post" action={ "/admin/connections/" (c.id) "/revoke" } {
                        input type="hidden" name="csrf" value=(admin.csrf);
                        p { "Requests with this token get 401 from then on (within a second): the IdP stops provisioning until it is given a new token. This cannot be undone." }
                        div.check {
                            input id="revoke-confirm" type="checkbox" name="confirm" value="yes" required;
                            label for="revoke-confirm" { "Yes, revoke the token " strong { (c.name) } }
                        }
                        button.danger type="submit" { "Revoke token" }
                    }
                }
            }
        } @else if live {
            p { "Revoke this client on the server with " code { "roster client revoke" } "." }
        }
        section aria-labelledby="log" {
            h2 id="log" { "Request log" }
            p { "Newest first. Request bodies are never kept; values in filters, query parameters and error details are shown as …" }
            form.search method="get" action={ "/admin/connections/" (c.id) } {
                div.check {
                    input id="errors-only" type="checkbox" name="errors" value="1" checked[log.errors_only];
                    label for="errors-only" { "Errors only" }
                }
                button type="submit" { "Show" }
            }
            (log_table(log))
        }
    }
}
