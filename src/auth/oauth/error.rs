//! The error of the OAuth endpoints (RFC 6749 §5.2) and the scopes a token request may ask for:
//! shared by the token endpoint (`token.rs`) and the authorization-code grant (`code.rs`).

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

use crate::auth::Scopes;
use crate::db::DbError;

/// An RFC 6749 §5.2 error response.
#[derive(Debug)]
pub struct OAuthError {
    pub status: StatusCode,
    pub error: &'static str,
    pub description: String,
    pub retry_after: Option<u64>,
}

impl OAuthError {
    pub fn invalid_request(description: impl Into<String>) -> Self {
        OAuthError {
            status: StatusCode::BAD_REQUEST,
            error: "invalid_request",
            description: description.into(),
            retry_after: None,
        }
    }

    /// 401 with a `WWW-Authenticate: Basic` challenge (RFC 6749 §5.2). The description stays
    /// the same whatever failed: which part was wrong goes to the audit log, not to a guesser.
    pub(super) fn invalid_client() -> Self {
        OAuthError {
            status: StatusCode::UNAUTHORIZED,
            error: "invalid_client",
            description: "Client authentication failed".into(),
            retry_after: None,
        }
    }

    pub fn new(error: &'static str, description: impl Into<String>) -> Self {
        OAuthError { status: StatusCode::BAD_REQUEST, error, description: description.into(), retry_after: None }
    }

    pub fn too_many(retry_after: u64) -> Self {
        OAuthError {
            status: StatusCode::TOO_MANY_REQUESTS,
            error: "invalid_client",
            description: "Too many failed client authentications from this address; retry after Retry-After seconds"
                .into(),
            retry_after: Some(retry_after),
        }
    }

    pub(super) fn internal(err: impl std::fmt::Display) -> Self {
        tracing::error!(error = %err, "token endpoint failed");
        OAuthError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            error: "server_error",
            description: "Internal server error".into(),
            retry_after: None,
        }
    }
}

impl From<DbError> for OAuthError {
    fn from(err: DbError) -> Self {
        OAuthError::internal(err)
    }
}

impl std::fmt::Display for OAuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error, self.description)
    }
}

impl ResponseError for OAuthError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status);
        // RFC 6749 §5.1: responses of the token endpoint are not stored.
        res.insert_header((header::CACHE_CONTROL, "no-store")).insert_header((header::PRAGMA, "no-cache"));
        if self.status == StatusCode::UNAUTHORIZED {
            res.insert_header((header::WWW_AUTHENTICATE, "Basic realm=\"roster\""));
        }
        if let Some(secs) = self.retry_after {
            res.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        res.json(json!({"error": self.error, "error_description": self.description}))
    }
}

/// The scopes asked for, within `granted` (the client's, or a refresh token's); all of
/// `granted` when none are asked for.
pub fn requested_scopes(granted: &str, scope: Option<&str>) -> Result<Scopes, OAuthError> {
    let granted: Scopes = granted.parse().map_err(OAuthError::internal)?;
    match scope {
        None => Ok(granted),
        Some(asked) => {
            let asked: Scopes = asked.parse().map_err(|e| OAuthError::new("invalid_scope", e))?;
            if !asked.within(&granted) {
                return Err(OAuthError::new(
                    "invalid_scope",
                    format!("the client may ask for {granted} only; it asked for {asked}"),
                ));
            }
            Ok(asked)
        }
    }
}
