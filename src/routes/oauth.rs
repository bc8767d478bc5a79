//! The OAuth 2.0 endpoints (docs/oauth.md): `/oauth/token` (RFC 6749 §4.4, RFC 7523 §2.2),
//! `/oauth/revoke` (RFC 7009) and the authorization server metadata (RFC 8414).

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use crate::auth::oauth::code::{self, AuthorizeError, AuthorizeRequest, APPROVAL_COOKIE};
use crate::auth::oauth::token::{self, Endpoints, Form, Grant, OAuthError};
use crate::auth::Scope;
use crate::db;
use crate::state::AppState;

/// Form bodies of the token endpoint are a few hundred bytes; an assertion a few kilobytes.
const MAX_FORM_BYTES: usize = 16 * 1024;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(super::resource("/.well-known/oauth-authorization-server", "GET").route(web::get().to(metadata)))
        .service(
            web::scope("/oauth")
                .app_data(web::PayloadConfig::new(MAX_FORM_BYTES))
                .service(super::resource("/token", "POST").route(web::post().to(token_endpoint)))
                .service(super::resource("/authorize", "GET").route(web::get().to(authorize)))
                .service(super::resource("/approve/{ticket}", "GET").route(web::get().to(approve)))
                .service(super::resource("/revoke", "POST").route(web::post().to(revoke_endpoint))),
        );
}

/// This server's issuer URL: the base SCIM is served under, as the client reached it.
fn endpoints(req: &HttpRequest, state: &AppState) -> Endpoints {
    let scim = state.origin.scim_base(req);
    let issuer = scim.strip_suffix("/scim/v2").unwrap_or(&scim).to_owned();
    Endpoints { token: format!("{issuer}/oauth/token"), issuer }
}

/// RFC 8414 §2–3. What is listed is what the endpoints do.
async fn metadata(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let Endpoints { issuer, token } = endpoints(&req, &state);
    let auth_methods = ["client_secret_basic", "client_secret_post", "private_key_jwt"];
    HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "max-age=3600")).json(json!({
        "issuer": issuer,
        "token_endpoint": token,
        "revocation_endpoint": format!("{issuer}/oauth/revoke"),
        "authorization_endpoint": format!("{issuer}/oauth/authorize"),
        "grant_types_supported": ["client_credentials", "authorization_code", "refresh_token"],
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": auth_methods,
        "token_endpoint_auth_signing_alg_values_supported": ["RS256", "ES256"],
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint_auth_signing_alg_values_supported": ["RS256", "ES256"],
        "scopes_supported": Scope::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
    }))
}

/// The form of a request to either endpoint, with the client authenticated. A client address
/// over its failed attempts is refused before its credentials are looked at.
async fn authenticated_form(
    req: &HttpRequest,
    state: &AppState,
    body: &[u8],
) -> Result<(Form, crate::db::oauth::ClientRecord), OAuthError> {
    // Behind a load balancer every caller would share its address: count the forwarded one.
    let peer = state.origin.client_ip(req);
    if let Some(wait) = peer.and_then(|p| state.oauth.failures.blocked(p)) {
        return Err(OAuthError::too_many(wait));
    }
    let media = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !media.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return Err(OAuthError::invalid_request("send the parameters as application/x-www-form-urlencoded"));
    }
    let form = Form::parse(body)?;
    let authorization = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let credentials = token::credentials(authorization, &form)?;
    let client = token::authenticate(state, peer, &credentials, &endpoints(req, state)).await?;
    Ok((form, client))
}

async fn token_endpoint(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, OAuthError> {
    let (form, client) = authenticated_form(&req, &state, &body).await?;
    let param = |name: &str| form.get(name).map(str::to_owned);
    let required = |name: &str| param(name).ok_or_else(|| OAuthError::invalid_request(format!("{name} is missing")));
    let grant = match form.get("grant_type") {
        Some("client_credentials") => Grant::ClientCredentials { scope: param("scope") },
        Some("authorization_code") => Grant::Code {
            code: required("code")?,
            redirect_uri: param("redirect_uri"),
            verifier: param("code_verifier"),
        },
        Some("refresh_token") => Grant::Refresh { token: required("refresh_token")?, scope: param("scope") },
        Some(other) => {
            return Err(OAuthError {
                error: "unsupported_grant_type",
                ..OAuthError::invalid_request(format!(
                "grant_type {other:?} is not supported; use client_credentials, authorization_code or refresh_token"
            ))
            })
        }
        None => return Err(OAuthError::invalid_request("grant_type is missing")),
    };
    token::issue(&state, client, grant, state.origin.client_ip(&req)).await
}

async fn revoke_endpoint(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, OAuthError> {
    let (form, client) = authenticated_form(&req, &state, &body).await?;
    let token = form.get("token").ok_or_else(|| OAuthError::invalid_request("token is missing"))?;
    token::revoke(&state, client, token, state.origin.client_ip(&req)).await
}

/// A small HTML page for the admin's browser; `text` is escaped.
fn page(status: actix_web::http::StatusCode, title: &str, text: &str) -> HttpResponse {
    let escape = |t: &str| t.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;");
    HttpResponse::build(status)
        .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header(("content-security-policy", "default-src 'none'"))
        .insert_header(("x-frame-options", "DENY"))
        .body(format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>{0}</title></head>\
             <body><h1>{0}</h1><p>{1}</p></body></html>",
            escape(title),
            escape(text)
        ))
}

/// The value of one cookie of the request (no cookie crate: this is the only cookie read).
fn cookie(req: &HttpRequest, name: &str) -> Option<String> {
    req.headers().get_all(header::COOKIE).filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name).then(|| v.to_owned())
    })
}

/// The one-time approval link of `roster client approve`: remembers the approval in this
/// browser, for Okta's authorization request that follows.
async fn approve(req: HttpRequest, state: web::Data<AppState>, ticket: web::Path<String>) -> HttpResponse {
    use actix_web::http::StatusCode;
    let ticket = ticket.into_inner();
    let hash = crate::auth::oauth::hash(&ticket);
    let found = state.db.run(move |conn| crate::db::oauth::approval_client(conn, &hash, db::now())).await;
    let client =
        match found {
            Ok(Some(client)) => client,
            Ok(None) => return page(
                StatusCode::NOT_FOUND,
                "Approval link not valid",
                "This approval link is unknown, already used or expired. Print a new one with roster client approve.",
            ),
            Err(e) => return page(StatusCode::SERVICE_UNAVAILABLE, "Try again", &e.to_string()),
        };
    let secure = if endpoints(&req, &state).issuer.starts_with("https://") { "; Secure" } else { "" };
    let minutes = code::APPROVAL_LIFETIME.as_secs();
    let mut res = page(
        StatusCode::OK,
        "Connection approved",
        &format!(
            "The connection {:?} may now be authorized from this browser: go back to Okta and click \
             Authenticate (or Re-authenticate) within 15 minutes.",
            client.name
        ),
    );
    // SameSite=Lax: the authorization request arrives as a top-level navigation from Okta.
    let value = format!("{APPROVAL_COOKIE}={ticket}; Path=/oauth; Max-Age={minutes}; HttpOnly; SameSite=Lax{secure}");
    if let Ok(value) = header::HeaderValue::from_str(&value) {
        res.headers_mut().insert(header::SET_COOKIE, value);
    }
    res
}

/// RFC 6749 §4.1.1: issues a code when the connection was approved in this browser.
async fn authorize(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    use actix_web::http::StatusCode;
    let mut params = AuthorizeRequest::default();
    for (name, value) in form_urlencoded::parse(req.query_string().as_bytes()) {
        let slot = match name.as_ref() {
            "response_type" => &mut params.response_type,
            "client_id" => &mut params.client_id,
            "redirect_uri" => &mut params.redirect_uri,
            "scope" => &mut params.scope,
            "state" => &mut params.state,
            "code_challenge" => &mut params.code_challenge,
            "code_challenge_method" => &mut params.code_challenge_method,
            _ => continue,
        };
        if slot.replace(value.into_owned()).is_some() {
            return page(StatusCode::BAD_REQUEST, "Invalid request", &format!("{name} is given more than once"));
        }
    }
    let ticket = cookie(&req, APPROVAL_COOKIE);
    let state_param = params.state.clone();
    let result = state.db.run(move |conn| code::authorize(conn, &params, ticket.as_deref(), db::now())).await;
    let redirect = |uri: &str, pairs: Vec<(&str, String)>| {
        let mut url = match reqwest::Url::parse(uri) {
            Ok(url) => url,
            Err(_) => return page(StatusCode::BAD_REQUEST, "Invalid request", "the redirect URI is not a URL"),
        };
        url.query_pairs_mut().extend_pairs(pairs.iter().map(|(k, v)| (*k, v.as_str())));
        if let Some(state) = &state_param {
            url.query_pairs_mut().append_pair("state", state);
        }
        HttpResponse::Found().insert_header((header::LOCATION, url.to_string())).finish()
    };
    match result {
        Ok(granted) => redirect(&granted.redirect_uri, vec![("code", granted.code)]),
        Err(AuthorizeError::Redirect { redirect_uri, error, description }) => {
            redirect(&redirect_uri, vec![("error", error.to_owned()), ("error_description", description)])
        }
        Err(AuthorizeError::Page(text)) => page(StatusCode::BAD_REQUEST, "Invalid authorization request", &text),
        Err(AuthorizeError::NeedsApproval { client }) => page(
            StatusCode::FORBIDDEN,
            "Approval needed",
            &format!(
                "The connection {client:?} has not been approved in this browser. The tenant's administrator runs \
                 roster client approve --tenant <tenant> --name {client}, opens the link it prints in this \
                 browser, and then tries again from Okta."
            ),
        ),
        Err(AuthorizeError::Db(e)) => page(StatusCode::SERVICE_UNAVAILABLE, "Try again", &e.to_string()),
    }
}
