//! Where the errors of the services and of storage become SCIM error responses: each one's
//! HTTP status, `scimType` (RFC 7644 §3.12) and `detail` is chosen here, once. The services
//! return their own errors — [`LifecycleError`], [`ProductError`], storage's — and `?` in a
//! handler or a SCIM service converts them through these impls.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};

use crate::db::{self, DbError};
use crate::error::{ScimError, ScimType, SCIM_CONTENT_TYPE};
use crate::lifecycle::LifecycleError;
use crate::product::ProductError;

impl From<LifecycleError> for ScimError {
    fn from(err: LifecycleError) -> Self {
        let detail = err.to_string();
        match err {
            // RFC 7644 §3.12: an attempt to change what may not change is `mutability`.
            LifecycleError::FormerMemberIsFinal => ScimError::bad_request(ScimType::Mutability, detail),
            // The request is valid but the account's state does not allow it now (409).
            LifecycleError::NotDeactivated
            | LifecycleError::GracePeriodNotOver { .. }
            | LifecycleError::DeactivateBeforeDelete => ScimError::conflict(None, detail),
            LifecycleError::UserNameTaken(_) => ScimError::conflict(Some(ScimType::Uniqueness), detail),
            LifecycleError::Changed => ScimError::changed(),
            // The token names a tenant that is gone: its credentials no longer hold.
            LifecycleError::TenantGone => ScimError::unauthorized(detail),
            LifecycleError::Storage(e) => e.into(),
        }
    }
}

impl From<ProductError> for ScimError {
    fn from(err: ProductError) -> Self {
        let detail = err.to_string();
        match err {
            ProductError::Refused { .. } | ProductError::NotAMember { .. } => ScimError::forbidden(detail),
            ProductError::NoSuchUser(_)
            | ProductError::NoSuchConversation(_)
            | ProductError::NoSuchMember { .. }
            | ProductError::NoSuchGroup(_)
            | ProductError::RecipientGone(_)
            | ProductError::NoSuchSession(_)
            | ProductError::NoSuchPost(_)
            | ProductError::NoSuchContent(_) => ScimError::not_found(detail),
            ProductError::Invalid(_) => ScimError::bad_request(ScimType::InvalidValue, detail),
            ProductError::Storage(e) => e.into(),
        }
    }
}

impl From<db::groups::WriteError> for ScimError {
    fn from(err: db::groups::WriteError) -> Self {
        use db::groups::WriteError;
        match err {
            WriteError::NameTaken(name) => ScimError::conflict(
                Some(ScimType::Uniqueness),
                format!("A group with displayName {name:?} already exists (displayName is unique regardless of case)"),
            ),
            WriteError::UnknownMembers(ids) => {
                ScimError::bad_request(ScimType::InvalidValue, format!("No user or group with id {ids} in this tenant"))
            }
            WriteError::Db(e) => e.into(),
        }
    }
}

impl From<DbError> for ScimError {
    fn from(err: DbError) -> Self {
        match err {
            DbError::PoolTimeout(detail) => {
                crate::metrics::pool_timeout();
                ScimError::unavailable(detail)
            }
            // A request that ran into its time limit (`statement_timeout_ms`): the server is
            // not broken, it refused to spend more on this request; the client may retry.
            DbError::Query(e) if db::share::is_time_limit(&e) => {
                crate::metrics::statement_timeout();
                ScimError::unavailable(
                    "The request's database work ran past the server's time limit and was stopped; narrow the \
                     filter or retry later",
                )
            }
            // Another transaction held what this one needed: PostgreSQL chose it as a deadlock's
            // victim (SQLSTATE 40P01) or could not serialize it (40001), or SQLite's writer stayed
            // busy past its wait. Nothing of it was stored and the same request may succeed now.
            DbError::Query(e) if db::is_contention(&e) => ScimError::contention(),
            other => ScimError::internal(other),
        }
    }
}

impl From<diesel::result::Error> for ScimError {
    fn from(err: diesel::result::Error) -> Self {
        ScimError::from(DbError::from(err))
    }
}

/// How every SCIM error is answered: the RFC 7644 §3.12 body with its status.
impl ResponseError for ScimError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status);
        res.insert_header((header::CONTENT_TYPE, SCIM_CONTENT_TYPE));
        if self.status == StatusCode::UNAUTHORIZED {
            // RFC 6750 §3: a bearer-protected resource names its scheme on 401.
            res.insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"roster\""));
        }
        if let Some(secs) = self.retry_after {
            res.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        res.body(self.body().to_string())
    }
}

#[cfg(test)]
mod tests {
    use actix_web::http::StatusCode;
    use chrono::NaiveDate;

    use super::*;
    use crate::lifecycle::State;

    fn answer(err: impl Into<ScimError>) -> (StatusCode, Option<&'static str>, String) {
        let err = err.into();
        (err.status, err.scim_type.map(ScimType::as_str), err.detail)
    }

    fn database_error(kind: diesel::result::DatabaseErrorKind, message: &str) -> diesel::result::Error {
        diesel::result::Error::DatabaseError(kind, Box::new(message.to_owned()))
    }

    #[test]
    fn losing_to_a_concurrent_transaction_is_503_with_retry_after() {
        use diesel::result::DatabaseErrorKind::{SerializationFailure, Unknown};
        for err in [
            database_error(Unknown, "deadlock detected"),
            database_error(SerializationFailure, "could not serialize access due to concurrent update"),
            database_error(Unknown, "database is locked"),
        ] {
            let err = ScimError::from(err);
            assert_eq!((err.status, err.retry_after), (StatusCode::SERVICE_UNAVAILABLE, Some(1)), "{}", err.detail);
            assert!(err.is_contended());
            let response = err.error_response();
            assert_eq!(response.headers().get(header::RETRY_AFTER).unwrap(), "1");
        }
        let other = ScimError::from(database_error(Unknown, "no such table: nowhere"));
        assert_eq!(other.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!other.is_contended());
    }

    #[test]
    fn a_former_member_cannot_change_is_a_mutability_error() {
        let (status, scim_type, detail) = answer(LifecycleError::FormerMemberIsFinal);
        assert_eq!((status, scim_type), (StatusCode::BAD_REQUEST, Some("mutability")));
        assert!(detail.contains("cannot be reactivated"), "{detail}");
    }

    #[test]
    fn refusals_of_the_state_an_account_is_in_are_conflicts_naming_the_rule() {
        let allowed_at = NaiveDate::from_ymd_opt(2026, 1, 5).unwrap().and_hms_opt(10, 0, 0).unwrap();
        let (status, scim_type, detail) = answer(LifecycleError::GracePeriodNotOver { allowed_at });
        assert_eq!((status, scim_type), (StatusCode::CONFLICT, None));
        assert_eq!(
            detail,
            "The account can become a Former Member from 2026-01-05T10:00:00.000Z (deactivated plus the grace period)"
        );
        for refusal in [LifecycleError::NotDeactivated, LifecycleError::DeactivateBeforeDelete] {
            assert_eq!(answer(refusal).0, StatusCode::CONFLICT);
        }
    }

    #[test]
    fn a_taken_user_name_is_a_uniqueness_conflict() {
        let (status, scim_type, detail) = answer(LifecycleError::UserNameTaken("bjensen".into()));
        assert_eq!((status, scim_type), (StatusCode::CONFLICT, Some("uniqueness")));
        assert!(detail.starts_with("A user with userName \"bjensen\" already exists"), "{detail}");
    }

    #[test]
    fn a_lost_race_answers_as_a_changed_resource_so_that_callers_retry() {
        assert!(ScimError::from(LifecycleError::Changed).is_changed());
    }

    #[test]
    fn a_gone_tenant_is_unauthorized() {
        let (status, _, detail) = answer(LifecycleError::TenantGone);
        assert_eq!((status, detail.as_str()), (StatusCode::UNAUTHORIZED, "The tenant no longer exists"));
    }

    #[test]
    fn the_product_refuses_inactive_accounts_with_forbidden() {
        let refused = ProductError::Refused {
            what: "No session can be opened",
            user_id: "u1".into(),
            state: State::FormerMember,
        };
        let (status, _, detail) = answer(refused);
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(detail, "No session can be opened: the account u1 is a Former Member");
        assert_eq!(answer(ProductError::NoSuchContent("c1".into())).0, StatusCode::NOT_FOUND);
        assert_eq!(answer(ProductError::Invalid("q must not be empty".into())).1, Some("invalidValue"));
    }
}
