//! Discovery endpoints (RFC 7643 §5–7): they describe exactly what this build implements.

use actix_web::{http::StatusCode, web, HttpResponse};
use serde_json::json;

use crate::auth::{Principal, Scope};
use crate::error::ScimError;
use crate::http::scim_json;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/ServiceProviderConfig", web::get().to(service_provider_config));
}

async fn service_provider_config(principal: Principal) -> Result<HttpResponse, ScimError> {
    principal.require(Scope::ScimRead)?;
    let body = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "patch": { "supported": false },
        "bulk": { "supported": false, "maxOperations": 0, "maxPayloadSize": 0 },
        "filter": { "supported": false, "maxResults": 0 },
        "changePassword": { "supported": false },
        "sort": { "supported": false },
        "etag": { "supported": false },
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "A bearer JWT issued by `roster token issue`, sent as \"Authorization: Bearer <token>\"",
            "primary": true
        }],
        "meta": { "resourceType": "ServiceProviderConfig" }
    });
    Ok(scim_json(StatusCode::OK, &body))
}
