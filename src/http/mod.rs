//! HTTP plumbing shared by every route: middleware, metrics and SCIM-shaped responses.

pub mod body;
pub mod fairness;
pub mod inflight;
pub mod middleware;
pub mod origin;
pub mod path;
pub mod request_log;
pub mod wake;

use actix_web::http::{header, StatusCode};
use actix_web::HttpResponse;

use crate::error::SCIM_CONTENT_TYPE;

/// A JSON body with the SCIM media type (RFC 7644 §3.1; Entra requires it).
pub fn scim_json<T: serde::Serialize + ?Sized>(status: StatusCode, body: &T) -> HttpResponse {
    // Straight into bytes (`to_string` would go through `fmt::Display`, several times slower),
    // with room for a typical resource so that the buffer is not regrown as it fills.
    let mut bytes = Vec::with_capacity(1024);
    serde_json::to_writer(&mut bytes, body).expect("a response body always serialises");
    HttpResponse::build(status).insert_header((header::CONTENT_TYPE, SCIM_CONTENT_TYPE)).body(bytes)
}

/// The request's `If-Match` header, for writes that must not overwrite a newer version.
pub fn if_match(req: &actix_web::HttpRequest) -> Option<String> {
    req.headers().get(header::IF_MATCH).and_then(|v| v.to_str().ok()).map(str::to_owned)
}
