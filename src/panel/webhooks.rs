//! Webhooks: the tenant's Standard Webhooks endpoints (docs/webhooks.md) and their delivery
//! log. Every action goes through the same functions as `roster webhook …`
//! ([`crate::delivery::webhooks`]) and is audited under the admin's name in the transaction that
//! makes the change; a new or rotated signing secret is shown once.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::pages::{check_form, render, see_other, signed_in, Shared};
use super::signin::Admin;
use super::views::Section;
use super::webhooks_views::{self as views, AddForm, ListView, LogView, Secret};
use super::PanelError;
use crate::auth;
use crate::db::deliveries;
use crate::db::records::{self, Audit};
use crate::db::webhooks as store;
use crate::db::{write_transaction, DbConnection};
use crate::delivery::signing::SealKey;
use crate::delivery::webhooks::{self, NewWebhook, WebhookError};

/// Deliveries per page of a webhook's log.
const LOG_PAGE: i64 = 50;
/// How long the old secret keeps signing after a rotation unless the admin picks otherwise: the
/// default of `roster webhook rotate-secret --keep-old`.
const DEFAULT_KEEP: &str = "24h";

/// A refusal of the delivery module in the panel's words: an unknown webhook is not found (also
/// another tenant's), bad input is a refusal shown on the page.
fn refused(admin: &Admin, e: WebhookError) -> PanelError {
    match e {
        WebhookError::UnknownWebhook { id, .. } => {
            PanelError::NotFound(format!("Tenant {} has no webhook with id {id:?}.", admin.tenant.name))
        }
        WebhookError::UnknownTenant(name) => PanelError::NotFound(format!("There is no tenant named {name:?}.")),
        WebhookError::Db(e) => PanelError::Db(e),
        other => PanelError::BadRequest(sentence(&other.to_string())),
    }
}

/// A message of the delivery module as a sentence: capitalised, with a full stop.
fn sentence(text: &str) -> String {
    let mut chars = text.chars();
    let mut out: String = chars.next().map(|c| c.to_uppercase().collect()).unwrap_or_default();
    out.push_str(chars.as_str());
    if !out.ends_with('.') {
        out.push('.');
    }
    out
}

fn audit(conn: &mut DbConnection, admin: &AuditBy, action: &str, what: &str) -> Result<(), PanelError> {
    let entry = Audit {
        tenant_id: &admin.tenant_id,
        actor: &admin.actor,
        action,
        user_id: "",
        before: None,
        after: Some(what),
        at: admin.now,
    };
    records::audit(conn, &entry)?;
    Ok(())
}

/// Who an audit entry names, and when, carried into a database closure.
struct AuditBy {
    tenant_id: String,
    tenant: String,
    actor: String,
    now: chrono::NaiveDateTime,
}

impl AuditBy {
    fn of(admin: &Admin, state: &Shared) -> AuditBy {
        AuditBy {
            tenant_id: admin.tenant.id.clone(),
            tenant: admin.tenant.name.clone(),
            actor: admin.actor(),
            now: state.clock.now(),
        }
    }
}

async fn list_page(
    state: &Shared,
    admin: &Admin,
    status: StatusCode,
    form: AddForm,
    notice: Option<&str>,
) -> Result<HttpResponse, PanelError> {
    let tenant_id = admin.tenant.id.clone();
    let (hooks, streams) = state
        .db
        .run(move |conn| {
            let hooks = store::of_tenant(conn, &tenant_id, false)?;
            let streams = store::of_tenant(conn, &tenant_id, true)?;
            Ok::<_, PanelError>((hooks, streams))
        })
        .await?;
    let view = ListView { hooks: &hooks, streams: &streams, form: &form, notice, now: state.clock.now() };
    let body = views::list_page(admin, &view);
    render(state, admin, status, "Webhooks", Section::Webhooks, body).await
}

#[derive(Deserialize)]
pub struct ListQuery {
    done: Option<String>,
}

pub async fn list(req: HttpRequest, state: Shared, query: web::Query<ListQuery>) -> Result<HttpResponse, PanelError> {
    let admin = signed_in(&req, &state).await?;
    let notice = (query.done.as_deref() == Some("removed"))
        .then_some("The webhook was removed with its delivery log; nothing more is sent to it.");
    list_page(&state, &admin, StatusCode::OK, AddForm::default(), notice).await
}

/// The add form as sent: `event` may come several times (one checkbox each).
fn add_form(pairs: Vec<(String, String)>) -> (String, AddForm) {
    let mut csrf = String::new();
    let mut form = AddForm::default();
    for (name, value) in pairs {
        match name.as_str() {
            "csrf" => csrf = value,
            "url" => form.url = value.trim().to_owned(),
            "event" => form.events.push(value),
            "allow_private" => form.allow_private = value == "yes",
            _ => {}
        }
    }
    (csrf, form)
}

pub async fn add(
    req: HttpRequest,
    state: Shared,
    pairs: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, PanelError> {
    let admin = signed_in(&req, &state).await?;
    let (csrf, form) = add_form(pairs.into_inner());
    check_form(&req, &state, Some(&admin), &csrf)?;
    let by = AuditBy::of(&admin, &state);
    let (url, events, allow_private) = (form.url.clone(), form.events.clone(), form.allow_private);
    let added = state
        .db
        .write(move |conn| {
            write_transaction(conn, |conn| {
                let new = NewWebhook { tenant: &by.tenant, url: &url, event_types: &events, allow_private };
                let added = match webhooks::add(conn, &new, by.now) {
                    Ok(added) => added,
                    // Refused before anything was written: the form says why.
                    Err(e @ (WebhookError::InvalidUrl(_) | WebhookError::UnknownEventType(_))) => {
                        return Ok(Err(sentence(&e.to_string())))
                    }
                    Err(WebhookError::UnknownTenant(name)) => {
                        return Err(PanelError::NotFound(format!("There is no tenant named {name:?}.")))
                    }
                    Err(WebhookError::Db(e)) => return Err(PanelError::Db(e)),
                    Err(e) => return Err(PanelError::BadRequest(sentence(&e.to_string()))),
                };
                let w = &added.webhook;
                let types = if w.event_types.is_empty() { "every event type" } else { &w.event_types };
                let private = if w.allow_private { ", private addresses allowed" } else { "" };
                let what = format!("webhook {} to {} ({types}{private})", w.id, w.url);
                audit(conn, &by, "admin.add_webhook", &what)?;
                Ok::<_, PanelError>(Ok(added))
            })
        })
        .await?;
    let added = match added {
        Ok(added) => added,
        Err(refusal) => {
            let form = AddForm { refusal: Some(refusal), ..form };
            return list_page(&state, &admin, StatusCode::BAD_REQUEST, form, None).await;
        }
    };
    let shown = Secret { webhook: &added.webhook, secret: &added.secret, rotated_until: None };
    let body = views::secret_page(&shown);
    render(&state, &admin, StatusCode::OK, "Webhook added", Section::Webhooks, body).await
}

#[derive(Deserialize)]
pub struct ShowQuery {
    before: Option<i64>,
    /// How many events a replay just queued again.
    replayed: Option<usize>,
}

pub async fn show(
    req: HttpRequest,
    state: Shared,
    path: web::Path<String>,
    query: web::Query<ShowQuery>,
) -> Result<HttpResponse, PanelError> {
    let admin = signed_in(&req, &state).await?;
    let id = path.into_inner();
    let query = query.into_inner();
    let (tenant, tenant_id, lookup, before) =
        (admin.tenant.name.clone(), admin.tenant.id.clone(), id.clone(), query.before);
    let found = state
        .db
        .run(move |conn| {
            let webhook = match webhooks::get(conn, &tenant, &lookup) {
                Ok(webhook) => webhook,
                Err(WebhookError::UnknownWebhook { .. }) => return Ok(None),
                Err(WebhookError::Db(e)) => return Err(PanelError::Db(e)),
                Err(e) => return Err(PanelError::BadRequest(sentence(&e.to_string()))),
            };
            let rows = deliveries::page_of(conn, &tenant_id, &lookup, before, LOG_PAGE + 1)?;
            Ok::<_, PanelError>(Some((webhook, rows)))
        })
        .await?;
    let (webhook, mut rows) = found
        .ok_or_else(|| PanelError::NotFound(format!("Tenant {} has no webhook with id {id:?}.", admin.tenant.name)))?;
    let more = rows.len() as i64 > LOG_PAGE;
    rows.truncate(LOG_PAGE as usize);
    let next = more.then(|| format!("/admin/webhooks/{}?before={}", webhook.id, rows.last().map_or(0, |r| r.id)));
    let notice = query
        .replayed
        .map(|n| format!("{n} events were queued again; they are sent after whatever was pending for this endpoint."));
    let log = LogView { rows: &rows, next, paged: before.is_some() };
    let body = views::webhook_page(&admin, &webhook, &log, notice.as_deref(), None, state.clock.now());
    render(&state, &admin, StatusCode::OK, "Webhook", Section::Webhooks, body).await
}

#[derive(Deserialize)]
pub struct RemoveForm {
    csrf: String,
    confirm: Option<String>,
}

pub async fn remove(
    req: HttpRequest,
    state: Shared,
    path: web::Path<String>,
    form: web::Form<RemoveForm>,
) -> Result<HttpResponse, PanelError> {
    let admin = signed_in(&req, &state).await?;
    check_form(&req, &state, Some(&admin), &form.csrf)?;
    let id = path.into_inner();
    if form.confirm.as_deref() != Some("yes") {
        return Err(PanelError::BadRequest(
            "Nothing was removed: tick the box that confirms the endpoint gets no more events.".into(),
        ));
    }
    let by = AuditBy::of(&admin, &state);
    let removed = state
        .db
        .write(move |conn| {
            write_transaction(conn, |conn| {
                let webhook = match webhooks::get(conn, &by.tenant, &id) {
                    Ok(webhook) => webhook,
                    Err(e) => return Ok(Err(e)),
                };
                if let Err(e) = webhooks::remove(conn, &by.tenant, &id) {
                    return Ok(Err(e));
                }
                audit(
                    conn,
                    &by,
                    "admin.remove_webhook",
                    &format!("webhook {} to {} removed", webhook.id, webhook.url),
                )?;
                Ok::<_, PanelError>(Ok(()))
            })
        })
        .await?;
    match removed {
        Ok(()) => Ok(see_other("/admin/webhooks?done=removed")),
        Err(e) => Err(refused(&admin, e)),
    }
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    csrf: String,
}

pub async fn test(
    req: HttpRequest,
    state: Shared,
    path: web::Path<String>,
    form: web::Form<CsrfOnly>,
) -> Result<HttpResponse, PanelError> {
    let admin = signed_in(&req, &state).await?;
    check_form(&req, &state, Some(&admin), &form.csrf)?;
    let id = path.into_inner();
    let (tenant, lookup) = (admin.tenant.name.clone(), id.clone());
    let (webhook, seal) = state
        .db
        .run(move |conn| {
            let webhook = webhooks::get(conn, &tenant, &lookup);
            let seal = SealKey::load(conn).map_err(PanelError::Db)?;
            Ok::<_, PanelError>((webhook, seal))
        })
        .await?;
    let webhook = webhook.map_err(|e| refused(&admin, e))?;
    let now = state.clock.now();
    let tested =
        webhooks::test(&webhook, &seal, &state.settings.webhooks, now).await.map_err(|e| refused(&admin, e))?;
    let took = tested.took.as_millis();
    let (ok, outcome) = match &tested.answer {
        Ok(code) if (200..300).contains(code) => (true, format!("The endpoint answered {code} in {took} ms.")),
        Ok(code) => (false, format!("The endpoint answered {code} in {took} ms: it did not accept the test event.")),
        Err(e) => (false, format!("{} (after {took} ms).", sentence(e).trim_end_matches('.'))),
    };
    // The test itself changes nothing; the entry records that it was sent and what came back.
    let by = AuditBy::of(&admin, &state);
    let what = format!("test event sent to webhook {} at {}: {outcome}", webhook.id, webhook.url);
    state.db.write(move |conn| write_transaction(conn, |conn| audit(conn, &by, "admin.test_webhook", &what))).await?;
    let tenant_id = admin.tenant.id.clone();
    let hook_id = webhook.id.clone();
    let rows = state
        .db
        .run(move |conn| Ok::<_, PanelError>(deliveries::page_of(conn, &tenant_id, &hook_id, None, LOG_PAGE + 1)?))
        .await?;
    let next = (rows.len() as i64 > LOG_PAGE).then(|| {
        format!("/admin/webhooks/{}?before={}", webhook.id, rows.get(LOG_PAGE as usize - 1).map_or(0, |r| r.id))
    });
    let shown = &rows[..rows.len().min(LOG_PAGE as usize)];
    let log = LogView { rows: shown, next, paged: false };
    let tested = views::Tested { ok, outcome: &outcome };
    let body = views::webhook_page(&admin, &webhook, &log, None, Some(&tested), now);
    let status = if ok { StatusCode::OK } else { StatusCode::BAD_GATEWAY };
    render(&state, &admin, status, "Webhook", Section::Webhooks, body).await
}

#[derive(Deserialize)]
pub struct RotateForm {
    csrf: String,
    keep_old: Option<String>,
}

pub async fn rotate(
    req: HttpRequest,
    state: Shared,
    path: web::Path<String>,
    form: web::Form<RotateForm>,
) -> Result<HttpResponse, PanelError> {
    let admin = signed_in(&req, &state).await?;
    check_form(&req, &state, Some(&admin), &form.csrf)?;
    let id = path.into_inner();
    let keep_text = form.keep_old.as_deref().map(str::trim).filter(|t| !t.is_empty()).unwrap_or(DEFAULT_KEEP);
    let keep = auth::parse_lifetime(keep_text)
        .map_err(|e| PanelError::BadRequest(format!("The secret was not rotated: {e}")))?;
    let by = AuditBy::of(&admin, &state);
    let keep_until = by.now + chrono::Duration::from_std(keep).unwrap_or(chrono::Duration::MAX);
    let rotated = state
        .db
        .write(move |conn| {
            write_transaction(conn, |conn| {
                let secret = match webhooks::rotate_secret(conn, &by.tenant, &id, keep, by.now) {
                    Ok(secret) => secret,
                    Err(e) => return Ok(Err(e)),
                };
                let webhook = match webhooks::get(conn, &by.tenant, &id) {
                    Ok(webhook) => webhook,
                    Err(e) => return Ok(Err(e)),
                };
                let what = format!(
                    "webhook {} secret rotated; the old one signs too until {}",
                    id,
                    crate::clock::time(keep_until)
                );
                audit(conn, &by, "admin.rotate_webhook_secret", &what)?;
                Ok::<_, PanelError>(Ok((webhook, secret)))
            })
        })
        .await?;
    let (webhook, secret) = rotated.map_err(|e| refused(&admin, e))?;
    let shown = Secret { webhook: &webhook, secret: &secret, rotated_until: Some(keep_until) };
    let body = views::secret_page(&shown);
    render(&state, &admin, StatusCode::OK, "Secret rotated", Section::Webhooks, body).await
}

#[derive(Deserialize)]
pub struct ReplayForm {
    csrf: String,
    from: String,
}

pub async fn replay(
    req: HttpRequest,
    state: Shared,
    path: web::Path<String>,
    form: web::Form<ReplayForm>,
) -> Result<HttpResponse, PanelError> {
    let admin = signed_in(&req, &state).await?;
    check_form(&req, &state, Some(&admin), &form.csrf)?;
    let id = path.into_inner();
    let from: i64 = form.from.trim().parse().map_err(|_| {
        PanelError::BadRequest(format!(
            "Nothing was replayed: {:?} is not an event id (the whole number `id` of an event in the feed).",
            form.from.trim()
        ))
    })?;
    let by = AuditBy::of(&admin, &state);
    let target = id.clone();
    let replayed = state
        .db
        .write(move |conn| {
            write_transaction(conn, |conn| {
                let queued = match webhooks::replay(conn, &by.tenant, &target, from, by.now) {
                    Ok(queued) => queued,
                    Err(e) => return Ok(Err(e)),
                };
                let what = format!("webhook {target}: {queued} events from event {from} on queued again");
                audit(conn, &by, "admin.replay_webhook", &what)?;
                Ok::<_, PanelError>(Ok(queued))
            })
        })
        .await?;
    let queued = replayed.map_err(|e| refused(&admin, e))?;
    Ok(see_other(&format!("/admin/webhooks/{id}?replayed={queued}")))
}
