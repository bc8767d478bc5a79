//! Builds the application from typed settings and returns it unstarted, so tests can spawn a
//! real server on a random port over a fresh database.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};

use crate::auth::cache::TokenCache;
use crate::auth::{self, Keys, Scope, TokenRequest};
use crate::clock::Clock;
use crate::config::Settings;
use crate::db::{tenants, Database};
use crate::http::middleware;
use crate::metrics::Metrics;
use crate::routes;
use crate::state::AppState;
use crate::sweep;

/// Printed once, when `serve` has just created the database.
pub struct Bootstrap {
    pub base_url: String,
    pub token: String,
    /// When the token stops working (RFC 3339).
    pub expires_at: String,
}

pub struct Application {
    port: u16,
    server: Server,
    pub bootstrap: Option<Bootstrap>,
    /// The application's time; tests move it forward past grace periods.
    pub clock: Arc<Clock>,
    /// Delivers outbox events to webhooks until the server stops.
    sender: crate::delivery::Sender,
    /// Writes the connections' request logs until the server stops.
    request_log: crate::requestlog::Flusher,
}

/// Opens (and migrates) the database, creates the default tenant and loads the token keys.
pub fn open_database(settings: &Settings) -> anyhow::Result<(Database, Keys, bool)> {
    let (db, opened) =
        Database::open(&settings.database_url, settings.pool_size, Duration::from_secs(settings.pool_timeout_secs))?;
    db.limit_statements(Duration::from_millis(settings.statement_timeout_ms));
    let mut conn = db.conn()?;
    tenants::ensure_default(&mut conn)?;
    let keys = Keys::load(&mut conn, settings.token_secret.as_deref())?;
    Ok((db.clone(), keys, opened.created))
}

impl Application {
    pub fn build(settings: Settings) -> anyhow::Result<Application> {
        let (db, keys, created) = open_database(&settings)?;
        let listener = TcpListener::bind(&settings.listen)
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", settings.listen))?;
        let addr = listener.local_addr()?;
        let bootstrap = if created {
            let mut conn = db.conn()?;
            let issued = auth::issue(
                &mut conn,
                &keys,
                TokenRequest {
                    tenant: tenants::DEFAULT_TENANT,
                    name: "bootstrap",
                    scopes: Scope::Scim.as_str().parse().expect("scim is a scope"),
                    // Printed to a terminal and often pasted around: short-lived, so that a copy
                    // left behind stops working (long-lived tokens: `roster token issue`).
                    expires_in: Some(Duration::from_secs(settings.bootstrap_token_secs)),
                },
            )?;
            let base = settings.public_url.clone().unwrap_or_else(|| format!("http://{addr}"));
            let expires_at = issued
                .claims
                .exp
                .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .unwrap_or_default();
            Some(Bootstrap { base_url: format!("{base}/scim/v2"), token: issued.token, expires_at })
        } else {
            None
        };
        tracing::info!(database = %db.redacted_url(), listen = %addr, "roster starting");
        let (workers, pool_size) = (settings.workers, settings.pool_size);
        let clock = Arc::new(Clock::default());
        let fairness = web::Data::new(crate::http::fairness::Fairness::new(&settings));
        let token_cache = TokenCache::new(Duration::from_millis(settings.token_cache_ms));
        let origin = crate::http::origin::Origin::new(&settings, addr);
        let cursor_key = crate::listing::CursorKey::load(&mut *db.conn()?)?;
        let readiness = crate::readiness::Readiness::new(&db, settings.min_free_disk_mb);
        crate::backup::hold_serving_lock(&db)?;
        // Services and storage count through the process-wide recorder from here on.
        crate::metrics::install();
        let metrics = Metrics::new();
        let oauth = crate::auth::oauth::OAuthState::new(&settings);
        let state = web::Data::new(AppState {
            db,
            keys,
            metrics: metrics.clone(),
            origin,
            settings,
            clock: clock.clone(),
            fairness: fairness.clone(),
            token_cache,
            anchors: std::sync::Arc::new(crate::listing::Anchors::with_cursor_key(cursor_key)),
            member_batches: Default::default(),
            readiness,
            oauth,
            request_log: Default::default(),
        });
        sweep::spawn(state.db.clone(), state.clock.clone(), state.settings.sweep_interval_secs);
        let request_log = crate::requestlog::spawn(state.request_log.clone(), state.db.clone(), state.clock.clone());
        let wake = web::Data::new(crate::delivery::Wake::default());
        let sender = crate::delivery::spawn(
            state.db.clone(),
            state.clock.clone(),
            state.settings.webhooks,
            wake.get_ref().clone(),
            state.origin.base(),
        )?;
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(fairness.clone())
                // Built on each worker's thread: its own metric handles, shared with no other.
                .app_data(metrics.worker())
                .app_data(wake.clone())
                .wrap(from_fn(crate::http::request_log::record))
                .wrap(from_fn(crate::http::wake::wake_sender))
                .wrap(from_fn(crate::http::path::tolerate_path))
                .wrap(from_fn(middleware::screen_request))
                .wrap(from_fn(crate::http::fairness::fair_share))
                .wrap(from_fn(middleware::observe))
                .configure(routes::configure)
        })
        // Database work runs on blocking threads; more of them than pooled connections would only
        // wait for a connection, each holding its own memory (allocator arenas, stacks).
        .worker_max_blocking_threads(pool_size as usize + 4)
        // The request head must arrive within this (actix's default, made explicit); the body
        // has `body_read_timeout_secs` (see the body extractor).
        .client_request_timeout(Duration::from_secs(5))
        .listen(listener)?
        // In-flight requests get this long to finish after SIGTERM/SIGINT.
        .shutdown_timeout(30);
        if let Some(n) = workers {
            server = server.workers(n.max(1));
        }
        Ok(Application { port: addr.port(), server: server.run(), bootstrap, clock, sender, request_log })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until SIGTERM or SIGINT, then drains in-flight requests, then lets the event
    /// sender finish the requests it has in flight and the request log write what it holds.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let served = self.server.await;
        self.sender.stop().await;
        self.request_log.stop().await;
        served
    }
}
