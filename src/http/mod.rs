//! HTTP plumbing shared by every route: middleware, metrics and SCIM-shaped responses.

pub mod body;
pub mod fairness;
pub mod inflight;
pub mod metrics;
pub mod middleware;
pub mod origin;
pub mod path;

use actix_web::http::{header, StatusCode};
use actix_web::HttpResponse;

use crate::error::SCIM_CONTENT_TYPE;

/// A JSON body with the SCIM media type (RFC 7644 §3.1; Entra requires it).
pub fn scim_json(status: StatusCode, body: &serde_json::Value) -> HttpResponse {
    // Straight into bytes (`to_string` would go through `fmt::Display`, several times slower),
    // with room for a typical resource so that the buffer is not regrown as it fills.
    let mut bytes = Vec::with_capacity(1024);
    serde_json::to_writer(&mut bytes, body).expect("a JSON value always serialises");
    HttpResponse::build(status).insert_header((header::CONTENT_TYPE, SCIM_CONTENT_TYPE)).body(bytes)
}

/// The weak entity tag of a resource version (RFC 7644 §3.14, `meta.version`).
pub fn etag(version: i64) -> String {
    format!("W/\"{version}\"")
}

/// True when an `If-Match`/`If-None-Match` list names `etag` or is `*`. Weak and strong forms of
/// the same tag are equal here: SCIM versions are weak tags by nature.
pub fn etag_listed(list: &str, etag: &str) -> bool {
    let bare = |t: &str| t.trim().trim_start_matches("W/").trim_start_matches("w/").to_owned();
    list.split(',').any(|t| t.trim() == "*" || bare(t) == bare(etag))
}

/// 412 unless `if_match`, when given, names the resource's current `version` (RFC 7644 §3.14).
pub fn check_version(resource: &str, version: i64, if_match: Option<&str>) -> Result<(), crate::error::ScimError> {
    match if_match {
        Some(list) if !etag_listed(list, &etag(version)) => Err(crate::error::ScimError::new(
            StatusCode::PRECONDITION_FAILED,
            format!("The {resource} has changed: its version is {}, the request expected {list}", etag(version)),
        )),
        _ => Ok(()),
    }
}

/// The request's `If-Match` header, for writes that must not overwrite a newer version.
pub fn if_match(req: &actix_web::HttpRequest) -> Option<String> {
    req.headers().get(header::IF_MATCH).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_compare_weakly_and_star_matches_anything() {
        assert!(etag_listed("W/\"3\"", &etag(3)));
        assert!(etag_listed("\"3\"", &etag(3)));
        assert!(etag_listed("W/\"1\", W/\"3\"", &etag(3)));
        assert!(etag_listed("*", &etag(9)));
        assert!(!etag_listed("W/\"2\"", &etag(3)));
    }
}
