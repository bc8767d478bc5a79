//! Connections: one per IdP bearer token, and the tenant's OAuth clients. Tokens are issued by
//! the same code as `roster token issue` ([`crate::auth::issue`]) and revoked here; each issue
//! and revocation is audited under the admin's name. A connection's page shows its request log
//! (`crate::requestlog`) and its error rate over the last hour.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{Duration, NaiveDateTime};
use serde::Deserialize;

use super::connections_views::{self as views, Connection, IssueForm, Issued, Kind, ListView, LogView};
use super::pages::{check_form, render, see_other, signed_in, Shared};
use super::signin::Admin;
use super::views::Section;
use super::{assets, PanelError};
use crate::auth::{self, IssueError, Scopes, TokenRequest};
use crate::db::connections::{self as store, ErrorRate};
use crate::db::records::{self, Audit};
use crate::db::{oauth, write_transaction, DbConnection};

/// Log rows per page of a connection.
const LOG_PAGE: i64 = 50;
/// The window of the error-rate indicator.
const RATE_WINDOW: Duration = Duration::hours(1);

pub async fn css(req: HttpRequest) -> HttpResponse {
    assets::CONNECTIONS_CSS.respond(&req)
}

pub async fn js(req: HttpRequest) -> HttpResponse {
    assets::CONNECTIONS_JS.respond(&req)
}

/// Every connection of the tenant with its error rate since `since`.
fn connections_of(
    conn: &mut DbConnection,
    tenant_id: &str,
    since: NaiveDateTime,
) -> Result<Vec<Connection>, PanelError> {
    let mut all = Vec::new();
    for (token, last_used) in store::tokens_of(conn, tenant_id)? {
        let rate = store::error_rate(conn, tenant_id, &token.jti, since)?;
        all.push(Connection::token(token, last_used, rate));
    }
    for (client, _) in oauth::clients(conn, Some(tenant_id))? {
        let rate = store::error_rate(conn, tenant_id, &client.id, since)?;
        all.push(Connection::client(client, rate));
    }
    Ok(all)
}

/// The tenant's connection `id`: a token's jti or an OAuth client's id. Another tenant's is not
/// found, as if it did not exist.
fn connection(
    conn: &mut DbConnection,
    tenant_id: &str,
    id: &str,
    since: NaiveDateTime,
) -> Result<Option<Connection>, PanelError> {
    if let Some((token, last_used)) = store::token_of(conn, tenant_id, id)? {
        let rate = store::error_rate(conn, tenant_id, id, since)?;
        return Ok(Some(Connection::token(token, last_used, rate)));
    }
    match oauth::client(conn, id)? {
        Some(client) if client.tenant_id == tenant_id => {
            let rate = store::error_rate(conn, tenant_id, id, since)?;
            Ok(Some(Connection::client(client, rate)))
        }
        _ => Ok(None),
    }
}

async fn list_page(
    req: &HttpRequest,
    state: &Shared,
    admin: &Admin,
    status: StatusCode,
    form: IssueForm,
    notice: Option<&str>,
) -> Result<HttpResponse, PanelError> {
    let tenant_id = admin.tenant.id.clone();
    let since = state.clock.now() - RATE_WINDOW;
    let all = state.db.run(move |conn| connections_of(conn, &tenant_id, since)).await?;
    let base = state.origin.scim_base(req);
    let view = ListView { all: &all, base_url: &base, form: &form, notice, now: state.clock.now() };
    let body = views::list_page(admin, &view);
    render(state, admin, status, "Connections", Section::Connections, body).await
}

#[derive(Deserialize)]
pub struct ListQuery {
    done: Option<String>,
}

pub async fn list(req: HttpRequest, state: Shared, query: web::Query<ListQuery>) -> Result<HttpResponse, PanelError> {
    let admin = signed_in(&req, &state).await?;
    let notice = (query.done.as_deref() == Some("revoked")).then_some("The token was revoked.");
    list_page(&req, &state, &admin, StatusCode::OK, IssueForm::default(), notice).await
}

/// The issue form as sent: `scope` may come several times (one checkbox each).
fn issue_form(pairs: Vec<(String, String)>) -> (String, IssueForm) {
    let mut csrf = String::new();
    let mut form = IssueForm { scopes: Vec::new(), ..IssueForm::default() };
    for (name, value) in pairs {
        match name.as_str() {
            "csrf" => csrf = value,
            "name" => form.name = value.trim().to_owned(),
            "scope" => form.scopes.push(value),
            "expires" => form.expires = value,
            _ => {}
        }
    }
    (csrf, form)
}

/// The token request a valid form makes, or why the form is refused, in words.
fn parse_issue(form: &IssueForm) -> Result<(Scopes, Option<std::time::Duration>), String> {
    if form.scopes.is_empty() {
        return Err("Choose at least one scope; an IdP provisioning accounts needs scim.".into());
    }
    let scopes: Scopes = form.scopes.join(" ").parse()?;
    let expires_in = match form.expires.trim() {
        "" | "never" => None,
        text => Some(auth::parse_lifetime(text)?),
    };
    Ok((scopes, expires_in))
}

pub async fn issue(
    req: HttpRequest,
    state: Shared,
    pairs: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, PanelError> {
    let admin = signed_in(&req, &state).await?;
    let (csrf, form) = issue_form(pairs.into_inner());
    check_form(&req, &state, Some(&admin), &csrf)?;
    let (scopes, expires_in) = match parse_issue(&form) {
        Ok(parsed) => parsed,
        Err(refusal) => {
            let form = IssueForm { refusal: Some(refusal), ..form };
            return list_page(&req, &state, &admin, StatusCode::BAD_REQUEST, form, None).await;
        }
    };
    let (keys, now, actor) = (state.keys.clone(), state.clock.now(), admin.actor());
    let (tenant_name, tenant_id, name) = (admin.tenant.name.clone(), admin.tenant.id.clone(), form.name.clone());
    let issued = state
        .db
        .write(move |conn| {
            write_transaction(conn, |conn| {
                let request = TokenRequest { tenant: &tenant_name, name: &name, scopes, expires_in };
                let issued = match auth::issue(conn, &keys, request) {
                    Ok(issued) => issued,
                    // Refused before anything was written: the form says why.
                    Err(IssueError::Invalid(refusal)) => return Ok(Err(refusal)),
                    Err(IssueError::UnknownTenant(name)) => {
                        return Err(PanelError::NotFound(format!("There is no tenant named {name:?}.")))
                    }
                    Err(IssueError::Db(e)) => return Err(e.into()),
                };
                let what = format!("token {:?} ({}), scope {}", name, issued.claims.jti, issued.claims.scope);
                let entry = Audit {
                    tenant_id: &tenant_id,
                    actor: &actor,
                    action: "admin.issue_token",
                    user_id: "",
                    before: None,
                    after: Some(&what),
                    at: now,
                };
                records::audit(conn, &entry)?;
                Ok::<_, PanelError>(Ok(issued))
            })
        })
        .await?;
    let issued = match issued {
        Ok(issued) => issued,
        Err(refusal) => {
            let form = IssueForm { refusal: Some(refusal), ..form };
            return list_page(&req, &state, &admin, StatusCode::BAD_REQUEST, form, None).await;
        }
    };
    let expires_at = issued.claims.exp.and_then(|t| chrono::DateTime::from_timestamp(t, 0)).map(|t| t.naive_utc());
    let shown = Issued {
        jti: &issued.claims.jti,
        name: &issued.claims.sub,
        scope: &issued.claims.scope,
        expires_at,
        token: &issued.token,
        base_url: &state.origin.scim_base(&req),
    };
    let body = views::issued_page(&shown);
    render(&state, &admin, StatusCode::OK, "Token issued", Section::Connections, body).await
}

#[derive(Deserialize)]
pub struct LogQuery {
    before: Option<i64>,
    errors: Option<String>,
    done: Option<String>,
}

pub async fn show(
    req: HttpRequest,
    state: Shared,
    path: web::Path<String>,
    query: web::Query<LogQuery>,
) -> Result<HttpResponse, PanelError> {
    let admin = signed_in(&req, &state).await?;
    let id = path.into_inner();
    let query = query.into_inner();
    let errors_only = query.errors.as_deref().is_some_and(|v| !v.is_empty() && v != "0");
    let (tenant_id, lookup) = (admin.tenant.id.clone(), id.clone());
    let since = state.clock.now() - RATE_WINDOW;
    let before = query.before;
    let found = state
        .db
        .run(move |conn| {
            let Some(found) = connection(conn, &tenant_id, &lookup, since)? else { return Ok(None) };
            let rows = store::log_page(conn, &tenant_id, &lookup, before, errors_only, LOG_PAGE + 1)?;
            Ok::<_, PanelError>(Some((found, rows)))
        })
        .await?;
    let (found, mut rows) = found.ok_or_else(|| {
        PanelError::NotFound(format!("Tenant {} has no connection with id {id:?}.", admin.tenant.name))
    })?;
    let more = rows.len() as i64 > LOG_PAGE;
    rows.truncate(LOG_PAGE as usize);
    let next = more.then(|| {
        let mut url = form_urlencoded::Serializer::new(String::new());
        url.append_pair("before", &rows.last().map_or(0, |r| r.id).to_string());
        if errors_only {
            url.append_pair("errors", "1");
        }
        format!("/admin/connections/{}?{}", found.id, url.finish())
    });
    let notice = (query.done.as_deref() == Some("revoked")).then_some("Revoked: requests with this token now get 401.");
    let title = found.name.clone();
    let first = format!("/admin/connections/{}{}", found.id, if errors_only { "?errors=1" } else { "" });
    let log = LogView { first, rows: &rows, errors_only, next, paged: before.is_some() };
    let body = views::connection_page(&admin, &found, &log, notice, state.clock.now());
    render(&state, &admin, StatusCode::OK, &title, Section::Connections, body).await
}

#[derive(Deserialize)]
pub struct RevokeForm {
    csrf: String,
    confirm: Option<String>,
}

pub async fn revoke(
    req: HttpRequest,
    state: Shared,
    path: web::Path<String>,
    form: web::Form<RevokeForm>,
) -> Result<HttpResponse, PanelError> {
    let admin = signed_in(&req, &state).await?;
    check_form(&req, &state, Some(&admin), &form.csrf)?;
    let jti = path.into_inner();
    if form.confirm.as_deref() != Some("yes") {
        return Err(PanelError::BadRequest(
            "Nothing was revoked: tick the box that confirms the IdP will stop provisioning with this token.".into(),
        ));
    }
    let (tenant_id, now, actor, target) = (admin.tenant.id.clone(), state.clock.now(), admin.actor(), jti.clone());
    let revoked = state
        .db
        .write(move |conn| {
            write_transaction(conn, |conn| {
                let Some((token, _)) = store::token_of(conn, &tenant_id, &target)? else { return Ok(None) };
                if !store::revoke_token(conn, &tenant_id, &target, now)? {
                    return Ok(Some(false));
                }
                let what = format!("token {:?} ({}) revoked", token.name, token.jti);
                let entry = Audit {
                    tenant_id: &tenant_id,
                    actor: &actor,
                    action: "admin.revoke_token",
                    user_id: "",
                    before: None,
                    after: Some(&what),
                    at: now,
                };
                records::audit(conn, &entry)?;
                Ok::<_, PanelError>(Some(true))
            })
        })
        .await?;
    match revoked {
        None => Err(PanelError::NotFound(format!("Tenant {} has no token with id {jti:?}.", admin.tenant.name))),
        Some(_) => Ok(see_other(&format!("/admin/connections/{jti}?done=revoked"))),
    }
}

impl Connection {
    fn token(token: crate::db::tokens::TokenRecord, last_used: Option<NaiveDateTime>, rate: ErrorRate) -> Connection {
        Connection {
            id: token.jti,
            name: token.name,
            scope: token.scope,
            kind: Kind::Token { issued_at: token.issued_at, expires_at: token.expires_at, last_used },
            revoked_at: token.revoked_at,
            rate,
        }
    }

    fn client(client: crate::db::oauth::ClientRecord, rate: ErrorRate) -> Connection {
        Connection {
            id: client.id,
            name: client.name,
            scope: client.scope,
            kind: Kind::OAuthClient { created_at: client.created_at },
            revoked_at: client.revoked_at,
            rate,
        }
    }
}
