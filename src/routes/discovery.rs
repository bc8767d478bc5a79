//! Discovery endpoints (RFC 7643 §5–7, RFC 7644 §4): they describe exactly what this build
//! serves, so that clients (Entra reads `/Schemas`) see the truth.

use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::resource;
use crate::auth::{Principal, Scope};
use crate::error::ScimError;
use crate::http::scim_json;
use crate::scim::list::{Page, CURSOR_TIMEOUT_SECS, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};
use crate::scim::rendered::Resources;
use crate::scim::schema::{self, ResourceType, Schema};
use crate::state::AppState;

/// The resource types this build serves.
fn served() -> [&'static ResourceType; 2] {
    [&schema::USER_RESOURCE, &schema::GROUP_RESOURCE]
}

fn served_schemas() -> Vec<&'static Schema> {
    let mut out = Vec::new();
    for rt in served() {
        out.push(rt.schema);
        out.extend(rt.extensions.iter().map(|(s, _)| *s));
    }
    out
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/ServiceProviderConfig", "GET").route(web::get().to(service_provider_config)))
        .service(resource("/Schemas", "GET").route(web::get().to(schemas)))
        .service(resource("/Schemas/{urn}", "GET").route(web::get().to(one_schema)))
        .service(resource("/ResourceTypes", "GET").route(web::get().to(resource_types)))
        .service(resource("/ResourceTypes/{id}", "GET").route(web::get().to(one_resource_type)))
        .route("/Me", web::to(me));
}

fn base(req: &HttpRequest, state: &AppState) -> String {
    state.origin.scim_base(req)
}

fn list(resources: Vec<Value>) -> HttpResponse {
    let total = resources.len() as i64;
    let resources = Resources::Each(resources.into_iter().map(Into::into).collect());
    let page = Page { resources, total, start_index: Some(1), next_cursor: None, previous_cursor: None };
    scim_json(StatusCode::OK, &page.into_body())
}

async fn service_provider_config(
    req: HttpRequest,
    state: web::Data<AppState>,
    principal: Principal,
) -> Result<HttpResponse, ScimError> {
    principal.require(Scope::ScimRead)?;
    let body = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "patch": { "supported": true },
        // RFC 7644 §3.7.4: both limits are enforced with 413; the payload limit is the body limit
        // every request has.
        "bulk": {
            "supported": true,
            "maxOperations": crate::bulk::MAX_OPERATIONS,
            "maxPayloadSize": state.settings.body_limit
        },
        "filter": { "supported": true, "maxResults": MAX_PAGE_SIZE },
        "changePassword": { "supported": false },
        "sort": { "supported": true },
        "etag": { "supported": true },
        // RFC 9967 §4: the SCIM events (and the CAEP and RISC events) Roster issues as SETs to
        // its SET streams (docs/security-events.md); `asyncRequest` "none": no asynchronous
        // SCIM requests (§2.5.1.1).
        "securityEvents": {
            "asyncRequest": "none",
            "eventUris": crate::delivery::set::EVENT_URIS,
        },
        // RFC 9865 §4.
        "pagination": {
            "cursor": true,
            "index": true,
            "defaultPaginationMethod": "index",
            "defaultPageSize": DEFAULT_PAGE_SIZE,
            "maxPageSize": MAX_PAGE_SIZE,
            "cursorTimeout": CURSOR_TIMEOUT_SECS
        },
        "authenticationSchemes": [{
            "type": "oauth2",
            "name": "OAuth 2.0",
            "description": "An access token from the token endpoint (client credentials with a client secret, \
                            a private_key_jwt assertion or a federated assertion; metadata at \
                            /.well-known/oauth-authorization-server), sent as \"Authorization: Bearer <token>\"",
            "specUri": "https://www.rfc-editor.org/rfc/rfc6749",
            "documentationUri": "https://www.rfc-editor.org/rfc/rfc7523",
            "primary": true
        }, {
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "A bearer JWT issued by `roster token issue`, sent as \"Authorization: Bearer <token>\"",
            "specUri": "https://www.rfc-editor.org/rfc/rfc6750",
            "primary": false
        }],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": format!("{}/ServiceProviderConfig", base(&req, &state))
        }
    });
    Ok(scim_json(StatusCode::OK, &body))
}

async fn schemas(
    req: HttpRequest,
    state: web::Data<AppState>,
    principal: Principal,
) -> Result<HttpResponse, ScimError> {
    principal.require(Scope::ScimRead)?;
    let base = base(&req, &state);
    Ok(list(served_schemas().into_iter().map(|s| s.to_json(&base)).collect()))
}

async fn one_schema(
    req: HttpRequest,
    state: web::Data<AppState>,
    principal: Principal,
    urn: web::Path<String>,
) -> Result<HttpResponse, ScimError> {
    principal.require(Scope::ScimRead)?;
    let found = served_schemas().into_iter().find(|s| s.id.eq_ignore_ascii_case(&urn));
    let schema = found.ok_or_else(|| ScimError::not_found(format!("No schema {:?}", urn.as_str())))?;
    Ok(scim_json(StatusCode::OK, &schema.to_json(&base(&req, &state))))
}

async fn resource_types(
    req: HttpRequest,
    state: web::Data<AppState>,
    principal: Principal,
) -> Result<HttpResponse, ScimError> {
    principal.require(Scope::ScimRead)?;
    let base = base(&req, &state);
    Ok(list(served().into_iter().map(|rt| rt.to_json(&base)).collect()))
}

async fn one_resource_type(
    req: HttpRequest,
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<String>,
) -> Result<HttpResponse, ScimError> {
    principal.require(Scope::ScimRead)?;
    let found = served().into_iter().find(|rt| rt.id.eq_ignore_ascii_case(&id));
    let rt = found.ok_or_else(|| ScimError::not_found(format!("No resource type {:?}", id.as_str())))?;
    Ok(scim_json(StatusCode::OK, &rt.to_json(&base(&req, &state))))
}

/// RFC 7644 §3.11: a provider that does not support `/Me` answers 501. Roster's tokens stand
/// for IdP connections, not people, so there is no "me".
async fn me(principal: Principal) -> Result<HttpResponse, ScimError> {
    principal.require(Scope::ScimRead)?;
    Err(ScimError::new(
        StatusCode::NOT_IMPLEMENTED,
        "/Me is not supported: Roster's tokens stand for connections, not users",
    ))
}
