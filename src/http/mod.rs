//! HTTP plumbing shared by every route: middleware, metrics and SCIM-shaped responses.

pub mod metrics;
pub mod middleware;

use actix_web::http::{header, StatusCode};
use actix_web::HttpResponse;

use crate::error::SCIM_CONTENT_TYPE;

/// A JSON body with the SCIM media type (RFC 7644 §3.1; Entra requires it).
pub fn scim_json(status: StatusCode, body: &serde_json::Value) -> HttpResponse {
    HttpResponse::build(status).insert_header((header::CONTENT_TYPE, SCIM_CONTENT_TYPE)).body(body.to_string())
}
