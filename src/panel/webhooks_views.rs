//! The Webhooks pages' markup: the list with the add form, a new or rotated secret (shown once),
//! and a webhook with its actions and delivery log. Styles and the copy button are the
//! Connections pages' (assets/connections.css and connections.js).

use chrono::NaiveDateTime;
use maud::{html, Markup};

use super::assets;
use super::signin::Admin;
use super::views::when;
use crate::db::deliveries::{self, DeliveryRow};
use crate::db::webhooks::{WebhookRow, SET_POLL};
use crate::delivery::webhooks::EVENT_TYPES;

/// The add form's values, kept when it is refused.
#[derive(Default)]
pub struct AddForm {
    pub url: String,
    pub events: Vec<String>,
    pub allow_private: bool,
    pub refusal: Option<String>,
}

pub struct ListView<'a> {
    pub hooks: &'a [WebhookRow],
    pub streams: &'a [WebhookRow],
    pub form: &'a AddForm,
    pub notice: Option<&'a str>,
    pub now: NaiveDateTime,
}

/// A secret just made: the only time it is shown.
pub struct Secret<'a> {
    pub webhook: &'a WebhookRow,
    pub secret: &'a str,
    /// After a rotation: until when the old secret signs too.
    pub rotated_until: Option<NaiveDateTime>,
}

pub struct LogView<'a> {
    pub rows: &'a [DeliveryRow],
    pub next: Option<String>,
    /// Not the first page.
    pub paged: bool,
}

/// What a test event's request got back.
pub struct Tested<'a> {
    pub ok: bool,
    pub outcome: &'a str,
}

fn stylesheet() -> Markup {
    html! { link rel="stylesheet" href=(assets::CONNECTIONS_CSS.url()); }
}

fn event_types(w: &WebhookRow) -> Markup {
    html! {
        @if w.event_types.is_empty() { "All event types" }
        @else { @for (i, t) in w.event_types.split(',').enumerate() { @if i > 0 { ", " } code { (t) } } }
    }
}

/// Its signing secrets: one, or two while an old one still signs after a rotation.
fn secrets_state(w: &WebhookRow, now: NaiveDateTime) -> Markup {
    html! {
        @match w.previous_secret_expires_at {
            Some(until) if until > now => { span.badge.deactivated { "Rotating" } " old secret signs too until " (when(until)) }
            _ => { span.badge.active { "Active" } }
        }
    }
}

fn status(row: &DeliveryRow) -> Markup {
    let class = match row.status.as_str() {
        deliveries::DELIVERED => "active",
        deliveries::PENDING | deliveries::AWAITING => "deactivated",
        _ => "deletion",
    };
    html! { span class={ "badge " (class) } { (row.status) } }
}

fn add_form(admin: &Admin, form: &AddForm) -> Markup {
    html! {
        section aria-labelledby="add" {
            h2 id="add" { "Add a webhook" }
            p { "The endpoint receives the tenant's events committed from now on, POSTed as JSON and signed the Standard Webhooks way. Its signing secret is shown once, right after it is added." }
            @if let Some(refusal) = &form.refusal {
                div.refusal role="alert" { h3 { "Not added" } p { (refusal) } }
            }
            form.issue method="post" action="/admin/webhooks" {
                input type="hidden" name="csrf" value=(admin.csrf);
                div.field {
                    label for="webhook-url" { "Endpoint URL" }
                    input id="webhook-url" name="url" type="text" inputmode="url" required value=(form.url)
                        placeholder="https://hooks.example.com/roster" autocomplete="off" spellcheck="false" aria-describedby="webhook-url-help";
                    span.help id="webhook-url-help" { "An http:// or https:// URL. Redirects to other hosts are not followed." }
                }
                fieldset {
                    legend { "Event types" }
                    p.help { "None ticked: every type, including types added later." }
                    @for kind in EVENT_TYPES {
                        div.check {
                            input id={ "event-" (kind) } type="checkbox" name="event" value=(kind)
                                checked[form.events.iter().any(|e| e == kind)];
                            label for={ "event-" (kind) } { code { (kind) } }
                        }
                    }
                }
                div.check {
                    input id="allow-private" type="checkbox" name="allow_private" value="yes" checked[form.allow_private]
                        aria-describedby="allow-private-help";
                    label for="allow-private" { "Allow private addresses" }
                }
                p.warning id="allow-private-help" { strong { "Only for a receiver on your internal network." }
                    " Without it, URLs that reach loopback, private or link-local addresses are refused, also when a host name resolves to one at sending time, so a webhook cannot be turned against the network Roster runs in." }
                button.primary type="submit" { "Add webhook" }
            }
        }
    }
}

pub fn list_page(admin: &Admin, view: &ListView<'_>) -> Markup {
    html! {
        (stylesheet())
        h1 { "Webhooks" }
        p.lead { "Endpoints that receive tenant " strong { (admin.tenant.name) } "'s events (docs/webhooks.md), delivered at least once with retries over more than a day. The same endpoints are managed with " code { "roster webhook" } " on the server." }
        @if let Some(notice) = view.notice { p.notice role="status" { (notice) } }
        section aria-labelledby="endpoints" {
            h2 id="endpoints" { "Endpoints " span.count { "(" (view.hooks.len()) ")" } }
            @if view.hooks.is_empty() { p.empty { "No webhook yet: add one below." } } @else {
                div.table-wrap {
                    table.connections {
                        thead { tr {
                            th scope="col" { "URL" } th scope="col" { "Event types" } th scope="col" { "Private addresses" }
                            th scope="col" { "Secret" } th scope="col" { "Created" }
                        } }
                        tbody {
                            @for w in view.hooks {
                                tr {
                                    td.mono { a href={ "/admin/webhooks/" (w.id) } { (w.url) } }
                                    td { (event_types(w)) }
                                    td { @if w.allow_private { "Allowed" } @else { "Refused" } }
                                    td { (secrets_state(w, view.now)) }
                                    td { (when(w.created_at)) }
                                }
                            }
                        }
                    }
                }
            }
        }
        (add_form(admin, view.form))
        @if !view.streams.is_empty() {
            section aria-labelledby="streams" {
                h2 id="streams" { "Security event streams " span.count { "(" (view.streams.len()) ")" } }
                p { "RFC 9967 SET streams share the delivery machinery; they are managed with " code { "roster stream" } " on the server (docs/security-events.md)." }
                div.table-wrap {
                    table.connections {
                        thead { tr { th scope="col" { "Id" } th scope="col" { "Delivery" } th scope="col" { "Audience" } th scope="col" { "Created" } } }
                        tbody {
                            @for s in view.streams {
                                tr {
                                    td.mono { (s.id) }
                                    td.mono { @if s.kind == SET_POLL { "poll (RFC 8936)" } @else { "push to " (s.url) } }
                                    td.mono { (s.audience.as_deref().unwrap_or("-")) }
                                    td { (when(s.created_at)) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// How a receiver checks a request, the Standard Webhooks way.
fn verify_note() -> Markup {
    html! {
        section aria-labelledby="verify" {
            h2 id="verify" { "Verifying signatures" }
            p { "Each request carries " code { "webhook-id" } ", " code { "webhook-timestamp" } " and " code { "webhook-signature" } ". "
                "The signature is " code { "v1," } " followed by the Base64 HMAC-SHA256 of " code { "{webhook-id}.{webhook-timestamp}.{body}" }
                ", keyed with the Base64-decoded part of the secret after " code { "whsec_" } ". "
                "Accept the request if one of the space-separated signatures matches (during a rotation there are two) and the timestamp is within a few minutes. "
                "Standard Webhooks libraries take the secret as it is; docs/webhooks.md has an example." }
        }
    }
}

pub fn secret_page(shown: &Secret<'_>) -> Markup {
    let w = shown.webhook;
    html! {
        (stylesheet())
        p.crumbs { a href="/admin/webhooks" { "← Webhooks" } }
        h1 { @if shown.rotated_until.is_some() { "Secret rotated" } @else { "Webhook added" } }
        div.card.issued {
            p.warning { strong { "Copy it now." } " This is the only time the signing secret is shown; Roster keeps it sealed. If it is lost, rotate it." }
            div.field.copyable {
                label for="new-secret" { "Signing secret" }
                div.copy-row {
                    input id="new-secret" type="text" readonly value=(shown.secret) spellcheck="false";
                    button type="button" data-copy="new-secret" hidden { "Copy" }
                }
                span.copy-status id="new-secret-status" role="status" {}
            }
            @if let Some(until) = shown.rotated_until {
                p { "Requests are signed with both the new and the old secret until " (when(until)) ": switch the receiver to the new one before then." }
            }
            dl {
                dt { "Endpoint" } dd.mono { (w.url) }
                dt { "Event types" } dd { (event_types(w)) }
                dt { "Webhook id" } dd.mono { (w.id) }
            }
        }
        (verify_note())
        p { a href={ "/admin/webhooks/" (w.id) } { "See this webhook and its deliveries" } }
        script src=(assets::CONNECTIONS_JS.url()) defer {}
    }
}

fn log_table(base: &str, log: &LogView<'_>, now: NaiveDateTime) -> Markup {
    html! {
        @if log.rows.is_empty() {
            p.empty { "No delivery yet." }
        } @else {
            div.table-wrap {
                table.log {
                    thead { tr {
                        th scope="col" { "Event" } th scope="col" { "Status" } th scope="col" { "Attempts" }
                        th scope="col" { "Last answer" } th scope="col" { "Duration" } th scope="col" { "Next attempt" }
                        th scope="col" { "Queued" }
                    } }
                    tbody {
                        @for row in log.rows {
                            tr.failed[row.status == deliveries::DEAD] {
                                td.mono { (row.event_seq) }
                                td { (status(row)) }
                                td { (row.attempts) }
                                td {
                                    @if let Some(code) = row.last_status { span.status { (code) } }
                                    @if let Some(e) = &row.last_error { @if row.last_status.is_some() { " " } (e) }
                                    @if row.last_status.is_none() && row.last_error.is_none() { "-" }
                                }
                                td { @if let Some(ms) = row.last_duration_ms { (ms) " ms" } @else { "-" } }
                                td {
                                    @if row.status == deliveries::PENDING {
                                        @if row.next_attempt_at <= now { "Now" } @else { (when(row.next_attempt_at)) }
                                    } @else { "-" }
                                }
                                td { (when(row.created_at)) }
                            }
                        }
                    }
                }
            }
        }
        nav.pager aria-label="Delivery log pages" {
            @if log.paged { a href=(base) { "Newest" } }
            @if let Some(next) = &log.next { " " a href=(next) { "Older" } }
        }
    }
}

pub fn webhook_page(
    admin: &Admin,
    w: &WebhookRow,
    log: &LogView<'_>,
    notice: Option<&str>,
    tested: Option<&Tested<'_>>,
    now: NaiveDateTime,
) -> Markup {
    let base = format!("/admin/webhooks/{}", w.id);
    html! {
        (stylesheet())
        p.crumbs { a href="/admin/webhooks" { "← Webhooks" } }
        h1 { "Webhook to " code { (w.url) } }
        @if let Some(notice) = notice { p.notice role="status" { (notice) } }
        @if let Some(t) = tested {
            @if t.ok { p.notice role="status" { "Test event sent. " (t.outcome) } }
            @else { div.refusal role="alert" { h2 { "The test event was not accepted" } p { (t.outcome) } } }
        }
        div.grid {
            section aria-labelledby="about" {
                h2 id="about" { "Webhook" }
                dl {
                    dt { "Webhook id" } dd.mono { (w.id) }
                    dt { "Event types" } dd { (event_types(w)) }
                    dt { "Private addresses" } dd { @if w.allow_private { "Allowed" } @else { "Refused" } }
                    dt { "Secret" } dd { (secrets_state(w, now)) }
                    dt { "Created" } dd { (when(w.created_at)) }
                }
            }
            section aria-labelledby="actions" {
                h2 id="actions" { "Actions" }
                form.action method="post" action={ (base) "/test" } {
                    input type="hidden" name="csrf" value=(admin.csrf);
                    p { "Sends a signed " code { "webhook.test" } " event now and shows the answer; it is not part of the delivery log." }
                    button type="submit" { "Send test event" }
                }
                form.action method="post" action={ (base) "/rotate" } {
                    input type="hidden" name="csrf" value=(admin.csrf);
                    div.field {
                        label for="keep-old" { "Old secret keeps signing for" }
                        select id="keep-old" name="keep_old" {
                            option value="1h" { "1 hour" }
                            option value="24h" selected { "24 hours" }
                            option value="7d" { "7 days" }
                        }
                    }
                    button type="submit" { "Rotate secret" }
                }
                form.action method="post" action={ (base) "/replay" } {
                    input type="hidden" name="csrf" value=(admin.csrf);
                    div.field {
                        label for="replay-from" { "Replay from event id" }
                        input id="replay-from" name="from" type="text" inputmode="numeric" pattern="[0-9]+" required aria-describedby="replay-help";
                        span.help id="replay-help" { "The " code { "id" } " of an event in the event feed; its events from there on are sent again." }
                    }
                    button type="submit" { "Replay" }
                }
            }
        }
        section aria-labelledby="log" {
            h2 id="log" { "Deliveries" }
            p { "Newest first. A delivery is retried with growing waits until it is delivered or, after the last attempt, dead; replay sends dead ones again." }
            (log_table(&base, log, now))
        }
        section aria-labelledby="remove" {
            h2 id="remove" { "Remove" }
            form.action method="post" action={ (base) "/remove" } {
                input type="hidden" name="csrf" value=(admin.csrf);
                p { "Removes the endpoint and its delivery log; nothing more is sent to it. This cannot be undone." }
                div.check {
                    input id="remove-confirm" type="checkbox" name="confirm" value="yes" required;
                    label for="remove-confirm" { "Yes, remove the webhook to " strong.mono { (w.url) } }
                }
                button.danger type="submit" { "Remove webhook" }
            }
        }
    }
}
