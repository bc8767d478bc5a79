//! Spawns the real application on a random port over a fresh database, on either backend.

use std::sync::OnceLock;
use std::time::Duration;

use diesel::r2d2::PooledConnection;

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection};
use roster::auth::{self, Claims, Keys, Scopes, TokenRequest};
use roster::config::{LogFormat, Settings};
use roster::db::{Database, Manager};
use roster::startup::Application;
use serde_json::Value;

/// The PostgreSQL the tests use; override with ROSTER_TEST_POSTGRES_URL.
pub fn postgres_url() -> String {
    std::env::var("ROSTER_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// The secret test apps sign tokens with, so tests can also forge tokens on purpose.
pub const SECRET: &str = "test-secret-that-is-at-least-32-bytes-long";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Whether PostgreSQL tests run: they must when ROSTER_REQUIRE_POSTGRES=1 (CI); elsewhere they
/// are skipped with a notice when PostgreSQL cannot be reached.
fn postgres_available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| match PgConnection::establish(&postgres_url()) {
        Ok(_) => true,
        Err(e) if std::env::var("ROSTER_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") => {
            panic!("ROSTER_REQUIRE_POSTGRES=1 but PostgreSQL at {} cannot be reached: {e}", postgres_url())
        }
        Err(e) => {
            eprintln!("NOTICE: skipping PostgreSQL tests, {} cannot be reached: {e}", postgres_url());
            false
        }
    })
}

/// A fresh, private database: an SQLite file in a temporary folder, or a PostgreSQL schema.
pub struct TestDatabase {
    pub backend: Backend,
    pub url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    File(std::path::PathBuf),
    Schema(String),
    Database(String),
}

impl TestDatabase {
    pub fn create(backend: Backend) -> Option<TestDatabase> {
        let name = format!("roster_t_{}", uuid::Uuid::new_v4().simple());
        match backend {
            Backend::Sqlite => {
                let dir = std::env::temp_dir().join(&name);
                std::fs::create_dir_all(&dir).expect("temporary folder");
                let url = dir.join("roster.db").to_string_lossy().into_owned();
                Some(TestDatabase { backend, url, cleanup: Cleanup::File(dir) })
            }
            Backend::Postgres => {
                if !postgres_available() {
                    return None;
                }
                let mut conn = PgConnection::establish(&postgres_url()).expect("PostgreSQL connection");
                conn.batch_execute(&format!("CREATE SCHEMA {name}")).expect("create schema");
                let sep = if postgres_url().contains('?') { '&' } else { '?' };
                let url = format!("{}{sep}options=-csearch_path%3D{name}", postgres_url());
                Some(TestDatabase { backend, url, cleanup: Cleanup::Schema(name) })
            }
        }
    }

    /// Like [`TestDatabase::create`], but on PostgreSQL a database of its own rather than a
    /// schema in the shared one: for tests whose outcome depends on what other sessions of the
    /// same database do, such as how far VACUUM may prune (its horizon is per database).
    pub fn create_isolated(backend: Backend) -> Option<TestDatabase> {
        if backend == Backend::Sqlite {
            return TestDatabase::create(backend);
        }
        if !postgres_available() {
            return None;
        }
        let name = format!("roster_t_{}", uuid::Uuid::new_v4().simple());
        let mut conn = PgConnection::establish(&postgres_url()).expect("PostgreSQL connection");
        conn.batch_execute(&format!("CREATE DATABASE {name}")).expect("create database");
        let base = postgres_url();
        let (server, query) = base.split_once('?').map_or((base.as_str(), None), |(s, q)| (s, Some(q)));
        let (server, _) = server.rsplit_once('/').expect("the test URL names a database");
        let url = match query {
            Some(query) => format!("{server}/{name}?{query}"),
            None => format!("{server}/{name}"),
        };
        Some(TestDatabase { backend, url, cleanup: Cleanup::Database(name) })
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::File(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::Schema(name) => {
                if let Ok(mut conn) = PgConnection::establish(&postgres_url()) {
                    let _ = conn.batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"));
                }
            }
            Cleanup::Database(name) => {
                if let Ok(mut conn) = PgConnection::establish(&postgres_url()) {
                    let _ = conn.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
                }
            }
        }
    }
}

pub fn test_settings(url: &str) -> Settings {
    Settings {
        listen: "127.0.0.1:0".into(),
        database_url: url.to_owned(),
        pool_size: 4,
        pool_timeout_secs: 5,
        body_limit: 64 * 1024,
        log_format: LogFormat::Human,
        token_secret: Some(SECRET.into()),
        public_url: None,
        workers: Some(1),
        // Tests run the sweep when they mean to, through the admin API.
        sweep_interval_secs: 0,
        max_in_flight_per_tenant: 256,
        // Revocation tests expect the next request to see it.
        token_cache_ms: 0,
        body_read_timeout_secs: 10,
        // Every test client is 127.0.0.1 and many tests send bursts: the tests of the rate
        // limits turn them on.
        rate_limit_per_tenant: 0,
        rate_burst_per_tenant: 0,
        rate_limit_per_client: 0,
        rate_burst_per_client: 0,
        pool_share_per_tenant: None,
        statement_timeout_ms: 10_000,
        // The OAuth tests serve JWKS documents on loopback over plain http.
        oauth_allow_http_loopback: true,
        ..Settings::default()
    }
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub settings: Settings,
    /// A `scim`-scoped token for the default tenant.
    pub token: String,
    pub db: TestDatabase,
    /// The app's clock: move it forward to pass grace periods.
    pub clock: std::sync::Arc<roster::clock::Clock>,
}

impl TestApp {
    /// None when the backend is PostgreSQL and PostgreSQL tests are skipped on this machine.
    pub async fn spawn(backend: Backend) -> Option<TestApp> {
        let db = TestDatabase::create(backend)?;
        Some(TestApp::spawn_with(db, |_| {}).await)
    }

    pub async fn spawn_with(db: TestDatabase, adjust: impl FnOnce(&mut Settings)) -> TestApp {
        // Logs only on request: TEST_LOG=1 cargo test -- --nocapture
        if std::env::var_os("TEST_LOG").is_some() {
            roster::telemetry::init(LogFormat::Human);
        }
        let mut settings = test_settings(&db.url);
        adjust(&mut settings);
        let app = Application::build(settings.clone()).expect("the app builds");
        let address = format!("http://127.0.0.1:{}", app.port());
        let clock = app.clock.clone();
        tokio::spawn(app.run_until_stopped());
        let mut test = TestApp { address, client: reqwest::Client::new(), settings, token: String::new(), db, clock };
        test.token = test.issue_token("default", "test-idp", "scim");
        test
    }

    /// A direct connection to the app's database, for arranging what the API cannot.
    pub fn connection(&self) -> PooledConnection<Manager> {
        let (database, _) =
            Database::open(&self.settings.database_url, 1, Duration::from_secs(5)).expect("database opens");
        database.conn().expect("connection")
    }

    pub fn keys(&self) -> Keys {
        Keys::from_secret(SECRET.as_bytes())
    }

    /// Issues a recorded token the way `roster token issue` does.
    pub fn issue_token(&self, tenant: &str, name: &str, scopes: &str) -> String {
        let mut conn = self.connection();
        let scopes: Scopes = scopes.parse().expect("valid scopes");
        auth::issue(&mut conn, &self.keys(), TokenRequest { tenant, name, scopes, expires_in: None })
            .expect("token issued")
            .token
    }

    /// The claims of a valid token, for tests that alter one field and re-sign.
    pub fn claims_of(&self, token: &str) -> Claims {
        self.keys().verify(token).expect("a valid token")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn get_with(&self, path: &str, token: &str) -> reqwest::Response {
        self.client.get(self.url(path)).bearer_auth(token).send().await.expect("request sent")
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.get_with(path, &self.token).await
    }

    /// Sends `body` as application/scim+json with the app's token.
    pub async fn send(&self, method: reqwest::Method, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .request(method, self.url(path))
            .bearer_auth(&self.token)
            .header("content-type", "application/scim+json")
            .body(body.to_string())
            .send()
            .await
            .expect("request sent")
    }

    pub async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.send(reqwest::Method::POST, path, body).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> reqwest::Response {
        self.send(reqwest::Method::PUT, path, body).await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> reqwest::Response {
        self.send(reqwest::Method::PATCH, path, body).await
    }

    pub async fn delete(&self, path: &str) -> reqwest::Response {
        self.client.delete(self.url(path)).bearer_auth(&self.token).send().await.expect("request sent")
    }

    /// Creates a user and returns its representation; fails the test unless 201.
    pub async fn create_user(&self, body: Value) -> Value {
        let res = self.post("/scim/v2/Users", &body).await;
        let status = res.status();
        let json = json(res).await;
        assert_eq!(status, 201, "create failed: {json}");
        json
    }

    /// GET that must answer 200; returns the JSON body.
    pub async fn get_ok(&self, path: &str) -> Value {
        let res = self.get(path).await;
        let status = res.status();
        let body = json(res).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }
}

/// Reads a response body as JSON, failing the test with the body text when it is not.
pub async fn json(res: reqwest::Response) -> Value {
    let text = res.text().await.expect("body");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Asserts a SCIM error response (RFC 7644 §3.12) and returns its body.
pub async fn assert_scim_error(res: reqwest::Response, status: u16) -> Value {
    assert_eq!(res.status().as_u16(), status, "status");
    let content_type = res.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    assert!(content_type.starts_with("application/scim+json"), "content type {content_type}");
    let body = json(res).await;
    assert_eq!(body["schemas"], serde_json::json!(["urn:ietf:params:scim:api:messages:2.0:Error"]));
    assert_eq!(body["status"], serde_json::json!(status.to_string()), "status is a string");
    assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()), "detail present: {body}");
    body
}

/// Runs an async test body on SQLite and on PostgreSQL: `both_backends!(name_a, name_b);`
/// expects `async fn name_a(app: TestApp)` in scope; `both_backends!(by_backend: name_c);`
/// expects `async fn name_c(backend: Backend)`, for tests that start an app of their own.
#[macro_export]
macro_rules! both_backends {
    // Tests that start their own app (other settings) from the backend they are given.
    (by_backend: $($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                super::$name($crate::helpers::Backend::Sqlite).await;
            }
            #[tokio::test]
            async fn postgres() {
                super::$name($crate::helpers::Backend::Postgres).await;
            }
        }
    )*};
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                let app = $crate::helpers::TestApp::spawn($crate::helpers::Backend::Sqlite).await.expect("sqlite");
                super::$name(app).await;
            }
            #[tokio::test]
            async fn postgres() {
                if let Some(app) = $crate::helpers::TestApp::spawn($crate::helpers::Backend::Postgres).await {
                    super::$name(app).await;
                }
            }
        }
    )*};
}
