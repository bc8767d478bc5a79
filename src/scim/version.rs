//! Resource versions as entity tags (RFC 7644 §3.14): how `meta.version` is written, how an
//! `If-Match`/`If-None-Match` list is compared with it, and the refusal of a stale write.

use actix_web::http::StatusCode;

use crate::error::ScimError;

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
pub fn check_version(resource: &str, version: i64, if_match: Option<&str>) -> Result<(), ScimError> {
    match if_match {
        Some(list) if !etag_listed(list, &etag(version)) => Err(ScimError::new(
            StatusCode::PRECONDITION_FAILED,
            format!("The {resource} has changed: its version is {}, the request expected {list}", etag(version)),
        )),
        _ => Ok(()),
    }
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

    #[test]
    fn a_stale_if_match_is_refused_with_412_and_a_current_one_passes() {
        assert!(check_version("User", 3, None).is_ok());
        assert!(check_version("User", 3, Some("W/\"3\"")).is_ok());
        let err = check_version("User", 3, Some("W/\"2\"")).unwrap_err();
        assert_eq!(err.status, StatusCode::PRECONDITION_FAILED);
        assert!(err.detail.contains("W/\"3\""), "{}", err.detail);
    }
}
