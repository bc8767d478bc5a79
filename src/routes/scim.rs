//! What every SCIM resource handler needs: the scope check, the caller's context, attribute
//! projection, the base URL, preconditions, and responses carrying ETags.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpRequest, HttpResponse};

use crate::auth::{Principal, Scope};
use crate::context::Ctx;
use crate::error::ScimError;
use crate::http::{if_match, scim_json};
use crate::listing::projection;
use crate::scim::projection::Projection;
use crate::scim::schema::ResourceType;
use crate::scim::version::{etag, etag_listed};
use crate::state::AppState;

pub struct Request {
    pub ctx: Ctx,
    pub base: String,
    pub projection: Projection,
    pub if_match: Option<String>,
}

impl Request {
    /// Checks the scope and reads what the handler needs from the request.
    pub fn new(
        req: &HttpRequest,
        state: &AppState,
        principal: &Principal,
        scope: Scope,
        rt: &'static ResourceType,
    ) -> Result<Request, ScimError> {
        principal.require(scope)?;
        let (mut attributes, mut excluded) = (None, None);
        for (name, value) in form_urlencoded::parse(req.query_string().as_bytes()) {
            match name.to_ascii_lowercase().as_str() {
                "attributes" => attributes = Some(value.into_owned()),
                "excludedattributes" => excluded = Some(value.into_owned()),
                _ => {}
            }
        }
        Ok(Request {
            ctx: Ctx {
                tenant_id: principal.tenant_id.clone(),
                actor: principal.subject.clone(),
                now: state.clock.now(),
            },
            base: state.origin.scim_base(req),
            projection: projection(rt, attributes.as_deref(), excluded.as_deref())?,
            if_match: if_match(req),
        })
    }

    /// True when the client named `attributes` or `excludedAttributes` (RFC 7644 §3.9).
    pub fn projected(&self) -> bool {
        !self.projection.is_default()
    }
}

/// A resource with its ETag (RFC 7644 §3.14).
pub fn respond(status: StatusCode, body: impl serde::Serialize, version: i64) -> HttpResponse {
    let mut res = scim_json(status, &body);
    res.headers_mut().insert(header::ETAG, header::HeaderValue::from_str(&etag(version)).expect("an ASCII etag"));
    res
}

/// 201 with `Location` (RFC 7644 §3.3).
pub fn created(body: impl serde::Serialize, location: &str, version: i64) -> HttpResponse {
    let mut res = respond(StatusCode::CREATED, body, version);
    if let Ok(value) = header::HeaderValue::from_str(location) {
        res.headers_mut().insert(header::LOCATION, value);
    }
    res
}

/// 304 when `If-None-Match` names the current version.
pub fn not_modified(req: &HttpRequest, version: i64) -> Option<HttpResponse> {
    let tag = etag(version);
    let listed =
        req.headers().get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()).is_some_and(|l| etag_listed(l, &tag));
    listed.then(|| HttpResponse::NotModified().insert_header((header::ETAG, tag)).finish())
}
