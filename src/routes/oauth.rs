//! The OAuth 2.0 endpoints (docs/oauth.md): `/oauth/token` (RFC 6749 §4.4, RFC 7523 §2.2),
//! `/oauth/revoke` (RFC 7009) and the authorization server metadata (RFC 8414).

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use crate::auth::Scope;
use crate::oauth::token::{self, Endpoints, Form, OAuthError};
use crate::state::AppState;

/// Form bodies of the token endpoint are a few hundred bytes; an assertion a few kilobytes.
const MAX_FORM_BYTES: usize = 16 * 1024;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(super::resource("/.well-known/oauth-authorization-server", "GET").route(web::get().to(metadata)))
        .service(
            web::scope("/oauth")
                .app_data(web::PayloadConfig::new(MAX_FORM_BYTES))
                .service(super::resource("/token", "POST").route(web::post().to(token_endpoint)))
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
        "grant_types_supported": ["client_credentials"],
        // No authorization endpoint: the client credentials grant needs none.
        "response_types_supported": [],
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
    let peer = req.peer_addr().map(|a| a.ip());
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
    match form.get("grant_type") {
        Some("client_credentials") => {}
        Some(other) => {
            return Err(OAuthError {
                error: "unsupported_grant_type",
                ..OAuthError::invalid_request(format!("grant_type {other:?} is not supported; use client_credentials"))
            })
        }
        None => return Err(OAuthError::invalid_request("grant_type is missing")),
    }
    token::issue(&state, client, form.get("scope"), req.peer_addr().map(|a| a.ip())).await
}

async fn revoke_endpoint(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, OAuthError> {
    let (form, client) = authenticated_form(&req, &state, &body).await?;
    let token = form.get("token").ok_or_else(|| OAuthError::invalid_request("token is missing"))?;
    token::revoke(&state, client, token, req.peer_addr().map(|a| a.ip())).await
}
