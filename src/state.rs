//! What every request handler shares.

use crate::auth::Keys;
use crate::config::Settings;
use crate::db::Database;
use crate::http::metrics::Metrics;

pub struct AppState {
    pub db: Database,
    pub keys: Keys,
    pub metrics: Metrics,
    pub settings: Settings,
}
