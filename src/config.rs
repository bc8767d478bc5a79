//! Settings, layered: built-in defaults < TOML file (`--config`) < `ROSTER_*` environment
//! variables < command-line flags. clap handles the last two; this module merges in the file.

use std::path::Path;

use serde::Deserialize;
use validator::{Validate, ValidationError};

use crate::validation::describe;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Human,
    Json,
}

/// The effective settings of a running Roster. [`Layer::resolve`] checks the rules written on
/// the fields; a setting outside them stops start-up with a message naming it.
#[derive(Debug, Clone, Validate)]
pub struct Settings {
    /// Address and port to listen on.
    #[validate(custom(function = "host_and_port"))]
    pub listen: String,
    /// `postgres://…` for PostgreSQL, otherwise an SQLite file path.
    #[validate(length(min = 1))]
    pub database_url: String,
    #[validate(range(min = 1))]
    pub pool_size: u32,
    /// Seconds a request waits for a free database connection before answering 503; the pool
    /// cannot wait for no time at all, and a client waits no hour for an answer.
    #[validate(range(min = 1, max = 3600))]
    pub pool_timeout_secs: u64,
    /// Largest request body accepted, in bytes; larger ones get 413.
    #[validate(range(min = 1024))]
    pub body_limit: usize,
    pub log_format: LogFormat,
    /// HS256 secret for tokens; when absent a key is generated and kept in the database.
    pub token_secret: Option<String>,
    /// Base URL clients reach Roster at (e.g. behind a proxy); when absent it is taken from
    /// each request as far as it can be believed (`http::origin`).
    #[validate(custom(function = "http_base_url"))]
    pub public_url: Option<String>,
    /// HTTP worker threads; defaults to the number of cores.
    #[validate(range(min = 1))]
    pub workers: Option<usize>,
    /// Seconds between background sweeps (membership removal, retention); 0 turns them off.
    pub sweep_interval_secs: u64,
    /// Requests one tenant may have in flight at once; more get 429 with Retry-After.
    #[validate(range(min = 1))]
    pub max_in_flight_per_tenant: usize,
    /// Milliseconds a token check is remembered; a revocation takes effect within it. 0: off.
    pub token_cache_ms: u64,
    /// Lifetime in seconds of the token printed when `serve` creates the database: it is shown
    /// on a terminal and pasted around, so it expires, within a year at the latest.
    #[validate(range(
        min = 1,
        max = 31_536_000,
        message = "bootstrap_token_secs must be between 1 and 31536000 (a year); issue long-lived tokens with \
                   `roster token issue`"
    ))]
    pub bootstrap_token_secs: u64,
    /// Peers (IPs or CIDRs) whose `Forwarded`/`X-Forwarded-*` headers are believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Host names (optionally `host:port`) accepted from `Host` when `public_url` is unset,
    /// besides the listen address and its loopback forms.
    pub allowed_hosts: Vec<String>,
    /// Seconds a request body may take to arrive in full; slower ones get 408. 0: no limit.
    pub body_read_timeout_secs: u64,
    /// Requests per second one tenant may make, sustained (token bucket); more get 429 with
    /// Retry-After. 0: no limit.
    pub rate_limit_per_tenant: u32,
    /// Requests a tenant may make at once beyond its sustained rate.
    pub rate_burst_per_tenant: u32,
    /// Requests per second one client address (an IPv6 /64) may make, sustained. 0: no limit.
    pub rate_limit_per_client: u32,
    /// Requests a client address may make at once beyond its sustained rate.
    pub rate_burst_per_client: u32,
    /// Pooled database connections one tenant's requests may hold at once; when absent, half
    /// the pool (rounded up).
    #[validate(range(min = 1))]
    pub pool_share_per_tenant: Option<u32>,
    /// Milliseconds a request's database work may run before it is stopped (PostgreSQL
    /// `statement_timeout`, SQLite's progress handler) and answered 503. 0: no limit. At most
    /// what PostgreSQL's `statement_timeout`, a 32-bit integer of milliseconds, can hold.
    #[validate(range(max = 2_147_483_647))]
    pub statement_timeout_ms: u64,
    /// Megabytes that must stay free on the SQLite database's file system for `/readyz` to
    /// answer ready: a full disk fails every write. 0: not checked.
    pub min_free_disk_mb: u64,
    /// Base URL of an OpenTelemetry collector's OTLP/HTTP receiver (`http://collector:4318`,
    /// plain HTTP); spans are exported there when set, and not at all when absent.
    #[validate(custom(function = "otlp_url"))]
    pub otlp_endpoint: Option<String>,
    /// Seconds an access token from `/oauth/token` lasts: Entra's gallery asks for 1 to 6 hours.
    #[validate(range(
        min = 3600,
        max = 21_600,
        message = "oauth_token_secs must be between 3600 and 21600 (1 to 6 hours)"
    ))]
    pub oauth_token_secs: u64,
    /// Lets JWKS URLs be plain `http://` on a loopback address (tests, a local key server);
    /// otherwise only `https://` JWKS URLs are fetched.
    pub oauth_allow_http_loopback: bool,
    /// Delivery of outbox events to webhooks (the `[webhooks]` table of the file).
    #[validate(nested)]
    pub webhooks: WebhookSettings,
}

/// How events are delivered to webhooks: timeouts of each request and the retry schedule. The
/// defaults retry for about 26.5 hours (30 s doubling up to 6 h, 14 tries, plus up to a quarter
/// of jitter); tests shorten them to run in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Validate)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookSettings {
    /// Milliseconds one request may take in all (connect, send, answer).
    #[validate(range(min = 100, max = 300_000))]
    pub timeout_ms: u64,
    /// Milliseconds to set up the connection (TCP and TLS).
    #[validate(range(min = 50, max = 60_000))]
    pub connect_timeout_ms: u64,
    /// Milliseconds before the first retry; each later wait doubles, up to `retry_max_ms`.
    #[validate(range(min = 10))]
    pub retry_base_ms: u64,
    #[validate(range(min = 10))]
    pub retry_max_ms: u64,
    /// Tries before a delivery is dead-lettered.
    #[validate(range(min = 1, max = 100))]
    pub max_attempts: u32,
    /// Milliseconds between looks at the outbox when no write on this node woke the sender
    /// (events written by another node or a command, retries coming due).
    #[validate(range(min = 10, max = 60_000))]
    pub poll_ms: u64,
    /// Requests in flight at once, over every endpoint.
    #[validate(range(min = 1, max = 1024))]
    pub concurrency: usize,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            timeout_ms: 10_000,
            connect_timeout_ms: 3_000,
            retry_base_ms: 30_000,
            retry_max_ms: 6 * 3600 * 1000,
            max_attempts: 14,
            poll_ms: 1_000,
            concurrency: 16,
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: "127.0.0.1:8080".into(),
            database_url: "roster.db".into(),
            pool_size: 16,
            pool_timeout_secs: 5,
            body_limit: 1024 * 1024,
            log_format: LogFormat::Human,
            token_secret: None,
            public_url: None,
            workers: None,
            sweep_interval_secs: 60,
            max_in_flight_per_tenant: 256,
            token_cache_ms: 1000,
            bootstrap_token_secs: 24 * 3600,
            trusted_proxies: Vec::new(),
            allowed_hosts: Vec::new(),
            body_read_timeout_secs: 10,
            // The OpenID IPSIE SCIM profile asks a provider to take at least 25 requests/s per
            // tenant; these defaults allow twelve times that, sustained.
            rate_limit_per_tenant: 300,
            rate_burst_per_tenant: 600,
            rate_limit_per_client: 1000,
            rate_burst_per_client: 2000,
            pool_share_per_tenant: None,
            statement_timeout_ms: 10_000,
            min_free_disk_mb: 256,
            otlp_endpoint: None,
            webhooks: WebhookSettings::default(),
            oauth_token_secs: 3600,
            oauth_allow_http_loopback: false,
        }
    }
}

/// The same settings as they may appear in the TOML file or on the command line: all optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layer {
    pub listen: Option<String>,
    pub database_url: Option<String>,
    pub pool_size: Option<u32>,
    pub pool_timeout_secs: Option<u64>,
    pub body_limit: Option<usize>,
    pub log_format: Option<LogFormat>,
    pub token_secret: Option<String>,
    pub public_url: Option<String>,
    pub workers: Option<usize>,
    pub sweep_interval_secs: Option<u64>,
    pub max_in_flight_per_tenant: Option<usize>,
    pub token_cache_ms: Option<u64>,
    pub bootstrap_token_secs: Option<u64>,
    pub trusted_proxies: Option<Vec<String>>,
    pub allowed_hosts: Option<Vec<String>>,
    pub body_read_timeout_secs: Option<u64>,
    pub rate_limit_per_tenant: Option<u32>,
    pub rate_burst_per_tenant: Option<u32>,
    pub rate_limit_per_client: Option<u32>,
    pub rate_burst_per_client: Option<u32>,
    pub pool_share_per_tenant: Option<u32>,
    pub statement_timeout_ms: Option<u64>,
    pub min_free_disk_mb: Option<u64>,
    pub otlp_endpoint: Option<String>,
    pub webhooks: Option<WebhookSettings>,
    pub oauth_token_secs: Option<u64>,
    pub oauth_allow_http_loopback: Option<bool>,
}

impl Layer {
    pub fn from_file(path: &Path) -> anyhow::Result<Layer> {
        let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("invalid settings in {}: {e}", path.display()))
    }

    /// `self` wins over `lower` wherever it has a value.
    pub fn over(self, lower: Layer) -> Layer {
        Layer {
            listen: self.listen.or(lower.listen),
            database_url: self.database_url.or(lower.database_url),
            pool_size: self.pool_size.or(lower.pool_size),
            pool_timeout_secs: self.pool_timeout_secs.or(lower.pool_timeout_secs),
            body_limit: self.body_limit.or(lower.body_limit),
            log_format: self.log_format.or(lower.log_format),
            token_secret: self.token_secret.or(lower.token_secret),
            public_url: self.public_url.or(lower.public_url),
            workers: self.workers.or(lower.workers),
            sweep_interval_secs: self.sweep_interval_secs.or(lower.sweep_interval_secs),
            max_in_flight_per_tenant: self.max_in_flight_per_tenant.or(lower.max_in_flight_per_tenant),
            token_cache_ms: self.token_cache_ms.or(lower.token_cache_ms),
            bootstrap_token_secs: self.bootstrap_token_secs.or(lower.bootstrap_token_secs),
            trusted_proxies: self.trusted_proxies.or(lower.trusted_proxies),
            allowed_hosts: self.allowed_hosts.or(lower.allowed_hosts),
            body_read_timeout_secs: self.body_read_timeout_secs.or(lower.body_read_timeout_secs),
            rate_limit_per_tenant: self.rate_limit_per_tenant.or(lower.rate_limit_per_tenant),
            rate_burst_per_tenant: self.rate_burst_per_tenant.or(lower.rate_burst_per_tenant),
            rate_limit_per_client: self.rate_limit_per_client.or(lower.rate_limit_per_client),
            rate_burst_per_client: self.rate_burst_per_client.or(lower.rate_burst_per_client),
            pool_share_per_tenant: self.pool_share_per_tenant.or(lower.pool_share_per_tenant),
            statement_timeout_ms: self.statement_timeout_ms.or(lower.statement_timeout_ms),
            min_free_disk_mb: self.min_free_disk_mb.or(lower.min_free_disk_mb),
            otlp_endpoint: self.otlp_endpoint.or(lower.otlp_endpoint),
            webhooks: self.webhooks.or(lower.webhooks),
            oauth_token_secs: self.oauth_token_secs.or(lower.oauth_token_secs),
            oauth_allow_http_loopback: self.oauth_allow_http_loopback.or(lower.oauth_allow_http_loopback),
        }
    }

    pub fn resolve(self) -> anyhow::Result<Settings> {
        let d = Settings::default();
        let settings = Settings {
            listen: self.listen.unwrap_or(d.listen),
            database_url: self.database_url.unwrap_or(d.database_url),
            pool_size: self.pool_size.unwrap_or(d.pool_size),
            pool_timeout_secs: self.pool_timeout_secs.unwrap_or(d.pool_timeout_secs),
            body_limit: self.body_limit.unwrap_or(d.body_limit),
            log_format: self.log_format.unwrap_or(d.log_format),
            token_secret: self.token_secret.or(d.token_secret),
            public_url: self.public_url.map(|u| u.trim_end_matches('/').to_owned()),
            workers: self.workers.or(d.workers),
            sweep_interval_secs: self.sweep_interval_secs.unwrap_or(d.sweep_interval_secs),
            max_in_flight_per_tenant: self.max_in_flight_per_tenant.unwrap_or(d.max_in_flight_per_tenant),
            token_cache_ms: self.token_cache_ms.unwrap_or(d.token_cache_ms),
            bootstrap_token_secs: self.bootstrap_token_secs.unwrap_or(d.bootstrap_token_secs),
            trusted_proxies: match self.trusted_proxies {
                Some(list) => list.iter().map(|p| parse_proxy(p)).collect::<anyhow::Result<_>>()?,
                None => d.trusted_proxies,
            },
            allowed_hosts: self.allowed_hosts.unwrap_or(d.allowed_hosts),
            body_read_timeout_secs: self.body_read_timeout_secs.unwrap_or(d.body_read_timeout_secs),
            rate_limit_per_tenant: self.rate_limit_per_tenant.unwrap_or(d.rate_limit_per_tenant),
            rate_burst_per_tenant: self.rate_burst_per_tenant.unwrap_or(d.rate_burst_per_tenant),
            rate_limit_per_client: self.rate_limit_per_client.unwrap_or(d.rate_limit_per_client),
            rate_burst_per_client: self.rate_burst_per_client.unwrap_or(d.rate_burst_per_client),
            pool_share_per_tenant: self.pool_share_per_tenant.or(d.pool_share_per_tenant),
            statement_timeout_ms: self.statement_timeout_ms.unwrap_or(d.statement_timeout_ms),
            min_free_disk_mb: self.min_free_disk_mb.unwrap_or(d.min_free_disk_mb),
            otlp_endpoint: self.otlp_endpoint.or(d.otlp_endpoint),
            webhooks: self.webhooks.unwrap_or(d.webhooks),
            oauth_token_secs: self.oauth_token_secs.unwrap_or(d.oauth_token_secs),
            oauth_allow_http_loopback: self.oauth_allow_http_loopback.unwrap_or(d.oauth_allow_http_loopback),
        };
        settings.validate().map_err(|e| anyhow::anyhow!("invalid settings: {}", describe(&e, str::to_owned)))?;
        Ok(settings)
    }
}

/// An `http` or `https` URL with a host: `Location` headers are built on it, and
/// `scim.example.com` or `localhost:8080` (a URL of the scheme "localhost") would make every
/// link one that no client can follow.
fn http_base_url(url: &str) -> Result<(), ValidationError> {
    if is_http_url(url) {
        return Ok(());
    }
    Err(ValidationError::new("http_base_url").with_message(
        format!("public_url must be an http:// or https:// URL, such as https://scim.example.com; got {url:?}").into(),
    ))
}

fn is_http_url(url: &str) -> bool {
    let host = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://")).unwrap_or("");
    !host.is_empty() && !host.starts_with('/')
}

/// A plain `http` URL with a host: the exporter is built without TLS, for a collector on the
/// host or the private network, which forwards over TLS where it must.
fn otlp_url(url: &str) -> Result<(), ValidationError> {
    if is_http_url(url) && url.starts_with("http://") {
        return Ok(());
    }
    Err(ValidationError::new("otlp_url").with_message(
        format!(
            "otlp_endpoint must be an http:// URL of a nearby collector, such as http://127.0.0.1:4318 (Roster \
             exports without TLS); got {url:?}"
        )
        .into(),
    ))
}

/// `host:port` as the listener binds it: `127.0.0.1:8080`, `[::1]:8080`, `roster.internal:80`.
fn host_and_port(listen: &str) -> Result<(), ValidationError> {
    match listen.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => Ok(()),
        _ => Err(ValidationError::new("host_and_port").with_message(
            format!("listen must be an address and a port, such as 127.0.0.1:8080; got {listen:?}").into(),
        )),
    }
}

/// `10.0.0.7` (one address) or `10.0.0.0/8`.
fn parse_proxy(text: &str) -> anyhow::Result<ipnet::IpNet> {
    let text = text.trim();
    text.parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| anyhow::anyhow!("trusted_proxies: {text:?} is neither an IP address nor a CIDR block"))
}

impl Settings {
    /// The pooled connections one tenant may hold at once: at most the pool, by default half.
    pub fn pool_share(&self) -> u32 {
        self.pool_share_per_tenant.unwrap_or(self.pool_size.div_ceil(2)).clamp(1, self.pool_size.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_environment_win_over_the_file_which_wins_over_defaults() {
        let file: Layer = toml::from_str("listen = \"0.0.0.0:9000\"\npool_size = 4\nlog_format = \"json\"").unwrap();
        let flags = Layer { pool_size: Some(32), ..Layer::default() };
        let s = flags.over(file).resolve().unwrap();
        assert_eq!(s.listen, "0.0.0.0:9000");
        assert_eq!(s.pool_size, 32);
        assert_eq!(s.log_format, LogFormat::Json);
        assert_eq!(s.database_url, "roster.db");
    }

    #[test]
    fn trusted_proxies_are_addresses_or_cidr_blocks() {
        let file: Layer = toml::from_str("trusted_proxies = [\"10.0.0.7\", \"192.168.0.0/16\", \"::1\"]").unwrap();
        let s = file.resolve().unwrap();
        assert_eq!(s.trusted_proxies.len(), 3);
        assert!(s.trusted_proxies[1].contains(&"192.168.4.2".parse::<std::net::IpAddr>().unwrap()));
        let bad = Layer { trusted_proxies: Some(vec!["proxy.internal".into()]), ..Layer::default() };
        assert!(bad.resolve().unwrap_err().to_string().contains("proxy.internal"));
        assert!(Layer::default().resolve().unwrap().trusted_proxies.is_empty());
    }

    fn refusal(file: &str) -> String {
        let layer: Layer = toml::from_str(file).unwrap();
        layer.resolve().expect_err(file).to_string()
    }

    #[test]
    fn settings_outside_their_range_are_refused_naming_the_setting() {
        for (file, message) in [
            ("pool_size = 0", "pool_size must be at least 1; got 0"),
            ("pool_timeout_secs = 0", "pool_timeout_secs must be between 1 and 3600; got 0"),
            ("body_limit = 1023", "body_limit must be at least 1024; got 1023"),
            ("workers = 0", "workers must be at least 1; got 0"),
            ("max_in_flight_per_tenant = 0", "max_in_flight_per_tenant must be at least 1; got 0"),
            ("pool_share_per_tenant = 0", "pool_share_per_tenant must be at least 1; got 0"),
            ("statement_timeout_ms = 2147483648", "statement_timeout_ms must be at most 2147483647; got 2147483648"),
            ("bootstrap_token_secs = 0", "bootstrap_token_secs must be between 1 and 31536000"),
            ("database_url = \"\"", "database_url must not be empty"),
            ("public_url = \"scim.example.com\"", "public_url must be an http:// or https:// URL"),
            ("public_url = \"localhost:8080\"", "https://scim.example.com; got \"localhost:8080\""),
            ("public_url = \"https://\"", "public_url must be an http:// or https:// URL"),
            ("listen = \"8080\"", "listen must be an address and a port, such as 127.0.0.1:8080; got \"8080\""),
            ("listen = \"127.0.0.1:http\"", "listen must be an address and a port"),
            ("otlp_endpoint = \"collector:4318\"", "otlp_endpoint must be an http:// URL"),
            ("otlp_endpoint = \"https://otel.example.com\"", "Roster exports without TLS"),
            ("oauth_token_secs = 3599", "oauth_token_secs must be between 3600 and 21600"),
            ("oauth_token_secs = 21601", "oauth_token_secs must be between 3600 and 21600"),
        ] {
            let refused = refusal(file);
            assert!(refused.contains(message), "{file}: {refused}");
        }
    }

    #[test]
    fn every_refused_setting_is_named_at_once() {
        let refused = refusal("pool_size = 0\nworkers = 0");
        assert_eq!(refused, "invalid settings: pool_size must be at least 1; got 0; workers must be at least 1; got 0");
    }

    #[test]
    fn the_edges_of_each_range_are_accepted() {
        let file = "pool_size = 1\npool_timeout_secs = 3600\nbody_limit = 1024\nworkers = 1\n\
                    max_in_flight_per_tenant = 1\npool_share_per_tenant = 1\nstatement_timeout_ms = 2147483647\n\
                    bootstrap_token_secs = 31536000\nlisten = \"[::1]:0\"\npublic_url = \"https://scim.example.com\"";
        let layer: Layer = toml::from_str(file).unwrap();
        let s = layer.resolve().unwrap();
        assert_eq!((s.pool_size, s.listen.as_str()), (1, "[::1]:0"));
    }

    #[test]
    fn unknown_keys_in_the_file_are_an_error() {
        assert!(toml::from_str::<Layer>("listne = \"x\"").is_err());
    }
}
