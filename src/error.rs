//! One error type for every answer that is not a success, rendered in the SCIM error schema
//! (RFC 7644 §3.12): `status` is a string, `scimType` only where the RFC defines one. Which
//! status a service's or storage's error answers with, and how an error becomes an HTTP response,
//! is decided in `crate::routes::errors`.

use actix_web::http::StatusCode;
use serde_json::json;

pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
pub const SCIM_CONTENT_TYPE: &str = "application/scim+json";

const CHANGED: &str = "The resource was changed by another request while this one was applied; read it again";

/// The `scimType` keywords of RFC 7644 §3.12 and RFC 9865 §5.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScimType {
    InvalidFilter,
    TooMany,
    Uniqueness,
    Mutability,
    InvalidSyntax,
    InvalidPath,
    NoTarget,
    InvalidValue,
    InvalidVers,
    Sensitive,
    InvalidCursor,
    ExpiredCursor,
    InvalidCount,
}

impl ScimType {
    pub fn as_str(self) -> &'static str {
        match self {
            ScimType::InvalidFilter => "invalidFilter",
            ScimType::TooMany => "tooMany",
            ScimType::Uniqueness => "uniqueness",
            ScimType::Mutability => "mutability",
            ScimType::InvalidSyntax => "invalidSyntax",
            ScimType::InvalidPath => "invalidPath",
            ScimType::NoTarget => "noTarget",
            ScimType::InvalidValue => "invalidValue",
            ScimType::InvalidVers => "invalidVers",
            ScimType::Sensitive => "sensitive",
            ScimType::InvalidCursor => "invalidCursor",
            ScimType::ExpiredCursor => "expiredCursor",
            ScimType::InvalidCount => "invalidCount",
        }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("{status} {detail}")]
pub struct ScimError {
    pub status: StatusCode,
    pub scim_type: Option<ScimType>,
    pub detail: String,
    /// Seconds a client should wait before retrying (429 and 503).
    pub retry_after: Option<u64>,
}

/// The detail of a request refused for contention ([`ScimError::contention`]).
const CONTENTION: &str = "The request ran into concurrent changes to the same resources and was rolled back; retry it";

impl ScimError {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        ScimError { status, scim_type: None, detail: detail.into(), retry_after: None }
    }

    pub fn bad_request(scim_type: ScimType, detail: impl Into<String>) -> Self {
        ScimError { scim_type: Some(scim_type), ..Self::new(StatusCode::BAD_REQUEST, detail) }
    }

    /// 400 `invalidFilter`: a filter that cannot be parsed or names what cannot be filtered on.
    pub fn invalid_filter(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::InvalidFilter, detail)
    }

    /// 400 `invalidPath`: a PATCH path that is malformed or names no attribute.
    pub fn invalid_path(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::InvalidPath, detail)
    }

    /// 400 `invalidValue`: a value of the wrong type or outside what the attribute allows.
    pub fn invalid_value(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::InvalidValue, detail)
    }

    /// 400 `invalidSyntax`: a request body the schema cannot be read from.
    pub fn invalid_syntax(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::InvalidSyntax, detail)
    }

    /// 400 `invalidSyntax` for a JSON key given twice: SCIM names are case-insensitive (RFC 7643
    /// §2.1), so `userName` and `USERNAME` in one object are the same key given twice.
    pub fn given_twice(key: &str) -> Self {
        Self::invalid_syntax(format!("{key:?} is given more than once (names are case-insensitive)"))
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, detail)
    }

    pub fn conflict(scim_type: Option<ScimType>, detail: impl Into<String>) -> Self {
        ScimError { scim_type, ..Self::new(StatusCode::CONFLICT, detail) }
    }

    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, format!("The request body is larger than the limit of {limit} bytes"))
    }

    /// A write lost a race: the resource changed after it was read.
    pub fn changed() -> Self {
        Self::new(StatusCode::PRECONDITION_FAILED, CHANGED)
    }

    pub fn is_changed(&self) -> bool {
        self.status == StatusCode::PRECONDITION_FAILED && self.detail == CHANGED
    }

    pub fn unavailable(detail: impl Into<String>) -> Self {
        ScimError { retry_after: Some(1), ..Self::new(StatusCode::SERVICE_UNAVAILABLE, detail) }
    }

    /// A transaction that lost to a concurrent one (a deadlock, a serialization failure, a busy
    /// SQLite): nothing of it was stored, and the same request may succeed now.
    pub fn contention() -> Self {
        Self::unavailable(CONTENTION)
    }

    /// True for [`ScimError::contention`]: running the request again alone may well succeed.
    pub fn is_contended(&self) -> bool {
        self.status == StatusCode::SERVICE_UNAVAILABLE && self.detail == CONTENTION
    }

    /// An unexpected failure: logged in full, answered without internals.
    pub fn internal(err: impl std::fmt::Display) -> Self {
        tracing::error!(error = %err, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
    }

    pub fn body(&self) -> serde_json::Value {
        let mut body = json!({
            "schemas": [ERROR_SCHEMA],
            "status": self.status.as_str(),
            "detail": self.detail,
        });
        if let Some(t) = self.scim_type {
            body["scimType"] = json!(t.as_str());
        }
        body
    }
}
