//! What every request handler shares.

use std::sync::Arc;

use crate::auth::cache::TokenCache;
use crate::auth::Keys;
use crate::clock::Clock;
use crate::config::Settings;
use crate::db::Database;
use crate::metrics::Metrics;

pub struct AppState {
    pub db: Database,
    pub keys: Keys,
    pub metrics: Metrics,
    pub settings: Settings,
    /// Where `Location` and `meta.location` point.
    pub origin: crate::http::origin::Origin,
    pub clock: Arc<Clock>,
    /// Rate limits, in-flight bounds and database shares (also the app's own data, for the
    /// middleware that checks client addresses).
    pub fairness: actix_web::web::Data<crate::http::fairness::Fairness>,
    pub token_cache: TokenCache,
    pub anchors: Arc<crate::listing::Anchors>,
    /// Member changes waiting to be applied to a group together (PostgreSQL).
    pub member_batches: Arc<crate::groups::batches::MemberBatches>,
    pub readiness: crate::readiness::Readiness,
    /// Failed client authentications and cached JWKS documents of the OAuth endpoints.
    pub oauth: crate::auth::oauth::OAuthState,
    /// Each IdP connection's requests, buffered until the background writer stores them.
    pub request_log: Arc<crate::requestlog::RequestLog>,
}
