//! The authenticated caller, extracted from the `Authorization: Bearer` header.

use actix_web::{dev::Payload, http::header, web, FromRequest, HttpMessage, HttpRequest};
use futures_util::future::LocalBoxFuture;

use super::cache::Checked;
use super::{Keys, Scope, Scopes};
use crate::db;
use crate::error::ScimError;
use crate::state::AppState;

/// Who is calling: the tenant every query is confined to, the token's subject (recorded as the
/// actor in audit entries) and what it may do.
#[derive(Debug, Clone)]
pub struct Principal {
    pub tenant_id: String,
    pub subject: String,
    pub scopes: Scopes,
    pub jti: String,
    /// This request's places among its tenant's (rate, in flight, database share), taken
    /// only once a scope check has passed.
    admission: std::sync::Arc<crate::http::fairness::Admission>,
}

impl Principal {
    /// 403 unless the token carries `scope`; then the request is admitted to its tenant's
    /// places, where it may get 429 (rate, in flight).
    pub fn require(&self, scope: Scope) -> Result<(), ScimError> {
        if self.scopes.grants(scope) {
            self.admission.admit(&self.tenant_id)
        } else {
            Err(ScimError::forbidden(format!("The token lacks the {:?} scope this request needs", scope.as_str())))
        }
    }
}

fn bearer_token(req: &HttpRequest) -> Result<String, ScimError> {
    // Two credentials leave it open which one a proxy checked and which one is used (RFC 9110
    // §11.6.2 defines one credential per header; the field is not a list).
    if req.headers().get_all(header::AUTHORIZATION).nth(1).is_some() {
        return Err(ScimError::unauthorized("The request has more than one Authorization header; send exactly one"));
    }
    let value = req.headers().get(header::AUTHORIZATION).ok_or_else(|| {
        ScimError::unauthorized("The request has no Authorization header; send \"Authorization: Bearer <token>\"")
    })?;
    let value = value.to_str().map_err(|_| ScimError::unauthorized("The Authorization header is not readable text"))?;
    let (scheme, token) = value.trim().split_once(' ').unwrap_or((value, ""));
    // RFC 7235 §2.1: the scheme name is case-insensitive.
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(ScimError::unauthorized("The Authorization header must use the Bearer scheme"));
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(ScimError::unauthorized("The Authorization header carries no token"));
    }
    Ok(token.to_owned())
}

impl FromRequest for Principal {
    type Error = ScimError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = bearer_token(req);
        let req = req.clone();
        Box::pin(async move {
            let state = state.ok_or_else(|| ScimError::internal("application state is missing"))?;
            let token = token?;
            let now = chrono::Utc::now().timestamp();
            let checked = match state.token_cache.get(&token) {
                Some(checked) if Keys::still_valid(&checked.claims, now) => checked,
                // Not remembered, or its time has run out: the full check, which names the reason.
                _ => {
                    // RS256/ES256: an access token of an authorization server a tenant trusts;
                    // its record is made from that trust. Every other token is one of Roster's.
                    let (claims, record) = match crate::auth::oauth::external::key_pair_algorithm(&token) {
                        Some(alg) => {
                            let (claims, record) = crate::auth::oauth::external::check(&state, &token, alg)
                                .await
                                .map_err(ScimError::unauthorized)?;
                            (claims, Some(record))
                        }
                        None => {
                            let claims = state.keys.verify(&token).map_err(ScimError::unauthorized)?;
                            let (jti, tenant) = (claims.jti.clone(), claims.tenant.clone());
                            let record = state
                                .db
                                .run(move |conn| db::tokens::record(conn, &jti, &tenant).map_err(ScimError::from))
                                .await?;
                            (claims, record)
                        }
                    };
                    let checked = Checked::new(claims, record);
                    state.token_cache.put(&token, checked.clone());
                    checked
                }
            };
            if let Some(identified) = &checked.identified {
                req.extensions_mut().insert(identified.clone());
            }
            match super::admit(&checked.claims, checked.record.as_deref(), now) {
                Err(reason) => Err(ScimError::unauthorized(reason)),
                Ok(scopes) => {
                    let claims = &checked.claims;
                    // Metrics and the request span name the tenant and connection (token name).
                    req.extensions_mut().insert(checked.caller.clone());
                    Ok(Principal {
                        tenant_id: claims.tenant.clone(),
                        subject: claims.sub.clone(),
                        scopes,
                        jti: claims.jti.clone(),
                        admission: std::sync::Arc::new(crate::http::fairness::Admission::new(state.fairness.clone())),
                    })
                }
            }
        })
    }
}
