//! Tolerant request paths: SCIM endpoint names in any case and a trailing slash, rewritten to the
//! canonical path before routing; and the longest URI Roster reads, refused with 414.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::uri::{PathAndQuery, Uri};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::Error;

use crate::error::ScimError;

/// The longest request target (path and query) Roster reads. RFC 9110 §4.1 recommends at least
/// 8,000 octets; a filter at its own limit (8,192 characters) percent-encoded fits. It is under
/// the 65,534 bytes the HTTP layer can hold at all: past that, the request is refused before
/// Roster sees it.
pub const MAX_URI_BYTES: usize = 32 * 1024;

const SCIM_BASE: &str = "/scim/v2";

/// The fixed names of SCIM endpoints (RFC 7644 §3.2), as routed. Clients send them in other cases
/// (`/users`, `/USERS`); the names are not data, so matching them in any case loses nothing.
const ENDPOINTS: &[&str] =
    &["Users", "Groups", "Schemas", "ResourceTypes", "ServiceProviderConfig", "Me", "Bulk", ".search"];

/// Refuses a URI longer than [`MAX_URI_BYTES`] with 414 and a SCIM error (RFC 9110 §15.5.15),
/// then rewrites a SCIM path to its canonical form: endpoint names in their routed case and no
/// trailing slash. Ids and URNs are left as sent (ids are case-exact, RFC 7643 §3.1; schema and
/// resource-type lookups ignore case themselves).
pub async fn tolerate_path(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<actix_web::body::BoxBody>, Error> {
    let length = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    if length > MAX_URI_BYTES {
        return Ok(req.error_response(ScimError::new(
            StatusCode::URI_TOO_LONG,
            format!("The request URI is {length} bytes long; at most {MAX_URI_BYTES} are accepted"),
        )));
    }
    if let Some(path) = canonical_path(req.uri().path()) {
        let mut parts = req.uri().clone().into_parts();
        let target = match req.uri().query() {
            Some(query) => format!("{path}?{query}"),
            None => path,
        };
        // Both parse: the target is the original one with characters removed or re-cased.
        if let Ok(pq) = PathAndQuery::try_from(target) {
            parts.path_and_query = Some(pq);
            if let Ok(uri) = Uri::from_parts(parts) {
                req.match_info_mut().get_mut().update(&uri);
                req.head_mut().uri = uri;
            }
        }
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

/// The canonical form of a SCIM path, or None when it is already canonical or not a SCIM path.
fn canonical_path(path: &str) -> Option<String> {
    let base = path.get(..SCIM_BASE.len()).filter(|b| b.eq_ignore_ascii_case(SCIM_BASE))?;
    let rest = &path[base.len()..];
    if !(rest.is_empty() || rest.starts_with('/')) {
        return None;
    }
    let trimmed = rest.trim_end_matches('/');
    let mut out = String::with_capacity(path.len());
    out.push_str(SCIM_BASE);
    for (i, segment) in trimmed.split('/').skip(1).enumerate() {
        out.push('/');
        // The endpoint name, or `.search` under `/Users` and `/Groups` (RFC 7644 §3.4.3); ids
        // never start with a dot, so a second segment that is not `.search` is an id.
        let fixed = (i == 0 || (i == 1 && segment.eq_ignore_ascii_case(".search")))
            .then(|| ENDPOINTS.iter().find(|name| name.eq_ignore_ascii_case(segment)))
            .flatten();
        out.push_str(fixed.copied().unwrap_or(segment));
    }
    (out != path).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::canonical_path;

    #[test]
    fn endpoint_names_take_their_routed_case_and_ids_keep_theirs() {
        assert_eq!(canonical_path("/scim/v2/users").as_deref(), Some("/scim/v2/Users"));
        assert_eq!(canonical_path("/SCIM/V2/GROUPS/AbC").as_deref(), Some("/scim/v2/Groups/AbC"));
        assert_eq!(canonical_path("/scim/v2/users/.SEARCH").as_deref(), Some("/scim/v2/Users/.search"));
        assert_eq!(canonical_path("/scim/v2/serviceproviderconfig").as_deref(), Some("/scim/v2/ServiceProviderConfig"));
        assert_eq!(canonical_path("/scim/v2/Users/users").as_deref(), None);
    }

    #[test]
    fn trailing_slashes_are_dropped() {
        assert_eq!(canonical_path("/scim/v2/Users/").as_deref(), Some("/scim/v2/Users"));
        assert_eq!(canonical_path("/scim/v2/Users/abc//").as_deref(), Some("/scim/v2/Users/abc"));
    }

    #[test]
    fn other_paths_are_left_alone() {
        assert_eq!(canonical_path("/scim/v2/Users/abc"), None);
        assert_eq!(canonical_path("/scim/v2x/users"), None);
        assert_eq!(canonical_path("/api/v1/content/"), None);
        assert_eq!(canonical_path("/healthz"), None);
    }
}
