//! The `roster` command line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::auth::{self, Scopes, TokenRequest};
use crate::config::{Layer, LogFormat, Settings};
use crate::db::{self, tenants};
use crate::startup::{self, Application};
use crate::telemetry;

mod stream;
mod webhook;

#[derive(Parser)]
#[command(name = "roster", version, about = "SCIM 2.0 identity provisioning with an account lifecycle")]
struct Cli {
    /// TOML settings file; environment variables and flags override it.
    #[arg(long, global = true, env = "ROSTER_CONFIG")]
    config: Option<PathBuf>,
    /// `postgres://user@host:5432/db` or a libpq `host=… dbname=…` string for PostgreSQL (without
    /// TLS to a loopback host unless the URL or PGSSLMODE sets sslmode), otherwise an SQLite file
    /// path or `sqlite:path` [default: roster.db]
    // The value is not echoed in --help: it may hold a password.
    #[arg(long, global = true, env = "ROSTER_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server (SCIM at /scim/v2).
    Serve(Box<ServeArgs>),
    /// Apply pending database migrations and exit.
    Migrate,
    /// Create and list tenants.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Issue, list and revoke bearer tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Change an account's lifecycle state, as an administrator.
    #[command(subcommand)]
    User(UserCommand),
    /// OAuth 2.0 clients of IdP connections (docs/oauth.md): create, list, revoke, their secrets.
    #[command(subcommand)]
    Client(ClientCommand),
    /// Authorization servers a tenant trusts: their RS256/ES256 access tokens are accepted on SCIM.
    #[command(subcommand)]
    Issuer(IssuerCommand),
    /// Run one background sweep now: membership removal and retention, for every tenant.
    Sweep,
    /// Measure the single-row commit rate of the database (same disk and durability settings),
    /// the yardstick for write throughput; prints commits per second.
    ProbeCommits {
        #[arg(long, default_value_t = 5)]
        seconds: u64,
    },
    /// Write a consistent copy of the SQLite database to PATH (a new file, mode 0600) while
    /// servers keep serving; PostgreSQL: use pg_dump or pg_basebackup.
    Backup {
        /// The file to write; it must not exist.
        path: std::path::PathBuf,
    },
    /// Replace the SQLite database with the backup at PATH, after SQLite's integrity check of
    /// the copy; refused while a server uses the database, unless --force.
    Restore {
        /// A file written by `roster backup`.
        path: std::path::PathBuf,
        /// Replace the database even while a running server uses it.
        #[arg(long)]
        force: bool,
    },
    /// Manage a tenant's webhooks: endpoints that receive its events, signed, at least once.
    #[command(subcommand)]
    Webhook(webhook::WebhookCommand),
    /// Manage a tenant's SET streams (RFC 8935 push, RFC 8936 poll) and its SET signing keys.
    #[command(subcommand)]
    Stream(stream::StreamCommand),
    /// Print the audit log of lifecycle transitions (JSON lines).
    Audit {
        /// Only this tenant.
        #[arg(long)]
        tenant: Option<String>,
        /// Entries after this id (each tenant numbers its own entries, so only with --tenant).
        #[arg(long, default_value_t = 0, requires = "tenant")]
        after: i64,
        #[arg(long, default_value_t = 1000)]
        limit: i64,
    },
    /// Admin Panel (/admin): one-time sign-in links, and the sessions they open.
    #[command(subcommand)]
    Admin(crate::panel::cli::AdminCommand),
}

#[derive(Subcommand)]
enum UserCommand {
    /// Deactivate: revoke every session; memberships go after the grace period.
    Deactivate(UserTarget),
    /// Reactivate a deactivated account.
    Reactivate(UserTarget),
    /// Remove the profile of an account deactivated for longer than the grace period.
    FormerMember(UserTarget),
    /// Delete the account and everything it wrote, under the tenant's delete policy.
    Delete(UserTarget),
}

#[derive(Args)]
struct UserTarget {
    #[arg(long)]
    tenant: String,
    /// The account's SCIM id.
    id: String,
}

#[derive(Args, Default)]
struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080]
    #[arg(long, env = "ROSTER_LISTEN")]
    listen: Option<String>,
    /// Database connections per node [default: 16]
    #[arg(long, env = "ROSTER_POOL_SIZE")]
    pool_size: Option<u32>,
    /// Seconds to wait for a free connection before answering 503 [default: 5]
    #[arg(long, env = "ROSTER_POOL_TIMEOUT_SECS")]
    pool_timeout_secs: Option<u64>,
    /// Largest accepted request body in bytes; larger ones get 413 [default: 1048576]
    #[arg(long, env = "ROSTER_BODY_LIMIT")]
    body_limit: Option<usize>,
    /// Log format [default: human]
    #[arg(long, env = "ROSTER_LOG_FORMAT", value_enum)]
    log_format: Option<LogFormat>,
    /// Base URL clients use to reach Roster, for `Location` and `meta.location` [default: from the Host header when allowed, otherwise the listen address]
    #[arg(long, env = "ROSTER_PUBLIC_URL")]
    public_url: Option<String>,
    /// HTTP worker threads [default: number of cores]
    #[arg(long, env = "ROSTER_WORKERS")]
    workers: Option<usize>,
    /// Seconds between background sweeps (membership removal, retention); 0 turns them off [default: 60]
    #[arg(long, env = "ROSTER_SWEEP_INTERVAL_SECS")]
    sweep_interval_secs: Option<u64>,
    /// Requests one tenant may have in flight; more get 429 with Retry-After [default: 256]
    #[arg(long, env = "ROSTER_MAX_IN_FLIGHT_PER_TENANT")]
    max_in_flight_per_tenant: Option<usize>,
    /// Milliseconds a token check is remembered; revocations take effect within it; 0 turns it off [default: 1000]
    #[arg(long, env = "ROSTER_TOKEN_CACHE_MS")]
    token_cache_ms: Option<u64>,
    /// Lifetime in seconds of the token printed when a new database is created [default: 86400]
    #[arg(long, env = "ROSTER_BOOTSTRAP_TOKEN_SECS")]
    bootstrap_token_secs: Option<u64>,
    /// Proxies (IPs or CIDRs, comma-separated) whose Forwarded/X-Forwarded-* headers are believed [default: none]
    #[arg(long, env = "ROSTER_TRUSTED_PROXIES", value_delimiter = ',')]
    trusted_proxies: Option<Vec<String>>,
    /// Host names (comma-separated, optionally host:port) accepted from Host when public_url is unset [default: the listen address and localhost]
    #[arg(long, env = "ROSTER_ALLOWED_HOSTS", value_delimiter = ',')]
    allowed_hosts: Option<Vec<String>>,
    /// Seconds a request body may take to arrive; slower ones get 408; 0 turns it off [default: 10]
    #[arg(long, env = "ROSTER_BODY_READ_TIMEOUT_SECS")]
    body_read_timeout_secs: Option<u64>,
    /// Requests per second one tenant may make, sustained; more get 429 with Retry-After; 0 turns it off [default: 300]
    #[arg(long, env = "ROSTER_RATE_LIMIT_PER_TENANT")]
    rate_limit_per_tenant: Option<u32>,
    /// Requests a tenant may make at once beyond its sustained rate [default: 600]
    #[arg(long, env = "ROSTER_RATE_BURST_PER_TENANT")]
    rate_burst_per_tenant: Option<u32>,
    /// Requests per second one client address (IPv6: its /64) may make, sustained; 0 turns it off [default: 1000]
    #[arg(long, env = "ROSTER_RATE_LIMIT_PER_CLIENT")]
    rate_limit_per_client: Option<u32>,
    /// Requests a client address may make at once beyond its sustained rate [default: 2000]
    #[arg(long, env = "ROSTER_RATE_BURST_PER_CLIENT")]
    rate_burst_per_client: Option<u32>,
    /// Pooled database connections one tenant may hold at once [default: half the pool]
    #[arg(long, env = "ROSTER_POOL_SHARE_PER_TENANT")]
    pool_share_per_tenant: Option<u32>,
    /// Milliseconds a request's database work may run before it is stopped (503); 0 turns it off [default: 10000]
    #[arg(long, env = "ROSTER_STATEMENT_TIMEOUT_MS")]
    statement_timeout_ms: Option<u64>,
    /// Megabytes that must stay free beside the SQLite database for /readyz to answer ready; 0 turns the check off [default: 256]
    #[arg(long, env = "ROSTER_MIN_FREE_DISK_MB")]
    min_free_disk_mb: Option<u64>,
    /// OTLP/HTTP base URL of an OpenTelemetry collector to export traces to (http://host:4318) [default: none, no export]
    #[arg(long, env = "ROSTER_OTLP_ENDPOINT")]
    otlp_endpoint: Option<String>,
    /// Seconds an access token from /oauth/token lasts, 3600 to 21600 [default: 3600]
    #[arg(long, env = "ROSTER_OAUTH_TOKEN_SECS")]
    oauth_token_secs: Option<u64>,
    /// Fetch JWKS documents from http:// URLs on loopback addresses too (local testing only) [default: false]
    #[arg(long, env = "ROSTER_OAUTH_ALLOW_HTTP_LOOPBACK")]
    oauth_allow_http_loopback: Option<bool>,
}

#[derive(Subcommand)]
enum TenantCommand {
    /// Create a tenant.
    Create { name: String },
    /// List tenants with their lifecycle policy.
    List,
    /// Change a tenant's lifecycle policy and validation.
    Set {
        name: String,
        /// Days an account stays deactivated before memberships go and it may become a Former Member.
        #[arg(long)]
        grace_days: Option<i32>,
        /// deactivate-then-delete, require-deactivated or deactivate-only.
        #[arg(long)]
        delete_policy: Option<String>,
        /// Make deactivated accounts Former Members after this many days ("off" to stop).
        #[arg(long, value_parser = days_or_off)]
        former_member_after_days: Option<DaysOrOff>,
        /// Delete deactivated accounts after this many days ("off" to stop).
        #[arg(long, value_parser = days_or_off)]
        delete_after_days: Option<DaysOrOff>,
        /// Export an account and everything it wrote to the archive destination before deleting
        /// it (needs --archive-dir or --archive-url).
        #[arg(long)]
        archive_export: Option<bool>,
        /// Absolute path of an existing directory on the server that receives the exports of
        /// deleted accounts, one JSON Lines file per account ("off" to remove it). Setting it
        /// clears --archive-url: a tenant has one archive destination.
        #[arg(long, value_name = "PATH", conflicts_with = "archive_url")]
        archive_dir: Option<String>,
        /// URL that receives the export of each deleted account as a POST of the same JSON Lines,
        /// signed as webhooks are; the export leaves Roster once the URL answers 2xx ("off" to
        /// remove it). https only, and no internal address, unless --archive-allow-private.
        /// Prints the new signing secret (whsec_...) once. Setting it clears --archive-dir: a
        /// tenant has one archive destination.
        #[arg(long, value_name = "URL")]
        archive_url: Option<String>,
        /// With --archive-url: allow http, and loopback and private addresses (a receiver inside
        /// your own network).
        #[arg(long, requires = "archive_url")]
        archive_allow_private: bool,
        /// How long an export may wait for the archive destination (a directory, or a 2xx from
        /// the URL) before it is destroyed and an archive.expired event raised: hours ("48h") or
        /// days ("7d") [default: 7d].
        #[arg(long, value_name = "DURATION", value_parser = hold_hours)]
        archive_hold: Option<i32>,
        /// How long events are kept before the sweep purges them: days ("90d" or "90"), or "off"
        /// to keep them for good [default: 90d].
        #[arg(long, value_name = "DAYS", value_parser = retention_days)]
        event_retention: Option<DaysOrOff>,
        /// Refuse with 400 values that break only a SHOULD of RFC 7643 (an email that is not an
        /// address, a phone number that is not a tel: URI), which are otherwise stored as sent.
        #[arg(long)]
        strict_validation: Option<bool>,
    },
}

/// A number of days, or "off".
#[derive(Clone, Copy)]
struct DaysOrOff(Option<i32>);

fn days_or_off(text: &str) -> Result<DaysOrOff, String> {
    if text.eq_ignore_ascii_case("off") {
        return Ok(DaysOrOff(None));
    }
    text.parse().map(|d| DaysOrOff(Some(d))).map_err(|_| format!("{text:?} is neither a number of days nor \"off\""))
}

/// A number of days ("90d" or "90"), or "off".
fn retention_days(text: &str) -> Result<DaysOrOff, String> {
    days_or_off(text.strip_suffix(['d', 'D']).unwrap_or(text))
        .map_err(|_| format!("{text:?} is neither a number of days (\"90d\") nor \"off\""))
}

/// A number of hours ("48h") or days ("7d"), as hours.
fn hold_hours(text: &str) -> Result<i32, String> {
    let refused = || format!("{text:?} is not a number of hours (\"48h\") or days (\"7d\")");
    let (number, per) = match text.char_indices().last() {
        Some((i, 'h' | 'H')) => (&text[..i], 1),
        Some((i, 'd' | 'D')) => (&text[..i], 24),
        _ => return Err(refused()),
    };
    let n: i32 = number.parse().map_err(|_| refused())?;
    n.checked_mul(per).ok_or_else(refused)
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Issue a token and print only the token on stdout.
    Issue {
        /// Tenant the token is confined to.
        #[arg(long)]
        tenant: String,
        /// Name of the connection using it, e.g. okta-prod; it becomes the token's subject.
        #[arg(long)]
        name: String,
        /// Scopes, comma-separated: scim, scim:read, sessions, content, events, admin.
        #[arg(long)]
        scope: Scopes,
        /// Lifetime such as 90d, 12h or 30m; without it the token lasts until revoked.
        #[arg(long, value_parser = auth::parse_lifetime)]
        expires: Option<std::time::Duration>,
    },
    /// List issued tokens (never the tokens themselves).
    List,
    /// Revoke a token by its jti; requests carrying it get 401 from then on.
    Revoke { jti: String },
}

#[derive(Subcommand)]
enum ClientCommand {
    /// Create a client; prints its client_id and its first secret, which is shown only this once.
    Create {
        /// Tenant the client's tokens are confined to.
        #[arg(long)]
        tenant: String,
        /// Name of the connection, e.g. entra-prod; the subject of its tokens and the audit actor.
        #[arg(long)]
        name: String,
        /// Scopes the client may ask for, comma-separated: scim, scim:read, sessions, content, events, admin.
        #[arg(long)]
        scope: Scopes,
        /// Lifetime of the first secret, at most 1098d (three years).
        #[arg(long, default_value = "365d", value_parser = auth::parse_lifetime)]
        secret_expires: std::time::Duration,
        /// Create the client without a secret: it signs in with JWT assertions only.
        #[arg(long)]
        no_secret: bool,
        /// URL of the JWKS document holding the keys its assertions are signed with (https).
        #[arg(long)]
        jwks_url: Option<String>,
        /// File holding that JWKS document, stored with the client instead of fetched.
        #[arg(long, conflicts_with = "jwks_url")]
        jwks_file: Option<PathBuf>,
        /// Federated client: the issuer of its assertions, e.g. https://login.microsoftonline.com/{tenant}/v2.0
        /// [default: the client_id, as private_key_jwt has it]
        #[arg(long, requires = "subject")]
        issuer: Option<String>,
        /// Federated client: the subject of its assertions (Entra: the object id of the identity).
        #[arg(long, requires = "issuer")]
        subject: Option<String>,
        /// The audience its assertions carry [default: this server's token endpoint URL or issuer URL]
        #[arg(long)]
        audience: Option<String>,
        /// For Okta's OAuth mode: a redirect URI (Okta's OAuth callback URL) the authorization-code
        /// grant may send codes to; repeat for several.
        #[arg(long)]
        redirect_uri: Vec<String>,
    },
    /// Print a one-time link that approves Okta's authorization request for this client; the
    /// tenant's admin opens it in the browser that then clicks Authenticate in Okta.
    Approve {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        name: String,
        /// How long the link stays valid, at most 1d [default: 15m]
        #[arg(long, value_parser = auth::parse_lifetime)]
        valid: Option<std::time::Duration>,
    },
    /// List clients (never their secrets).
    List {
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Revoke a client: its secrets and every access token it holds stop working.
    Revoke {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        name: String,
    },
    /// Add, list and revoke a client's secrets; several may be live at once, for rotation.
    #[command(subcommand)]
    Secret(SecretCommand),
    /// Print the token endpoint's audit log, newest first (JSON lines): tokens issued, refusals.
    Audit {
        /// Only this tenant's clients (refusals of unknown clients are listed without it).
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
}

#[derive(Subcommand)]
enum IssuerCommand {
    /// Trust an authorization server for a tenant.
    Add {
        #[arg(long)]
        tenant: String,
        /// A name for this trust, e.g. corp-as.
        #[arg(long)]
        name: String,
        /// The `iss` of its tokens, exactly as they carry it.
        #[arg(long)]
        issuer: String,
        /// The `aud` its tokens carry for Roster; one issuer and audience belong to one tenant.
        #[arg(long)]
        audience: String,
        /// URL of its JWKS document (https).
        #[arg(long)]
        jwks_url: String,
        /// The most its tokens may do here, comma-separated; scopes they carry beyond it are ignored.
        #[arg(long)]
        scope: Scopes,
    },
    /// List trusted authorization servers.
    List {
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Stop trusting an authorization server; its tokens get 401 (within token_cache_ms).
    Remove {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        name: String,
    },
}

#[derive(Subcommand)]
enum SecretCommand {
    /// Add a secret (printed once); the client's other secrets stay live.
    Add {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        name: String,
        /// Lifetime, at most 1098d (three years).
        #[arg(long, default_value = "365d", value_parser = auth::parse_lifetime)]
        expires: std::time::Duration,
    },
    /// List a client's secrets with their expiry (never the secrets).
    List {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        name: String,
    },
    /// Revoke one secret by its id.
    Revoke {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        name: String,
        id: String,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn settings(cli: &Cli, serve: ServeArgs) -> anyhow::Result<Settings> {
    let flags = Layer {
        listen: serve.listen,
        database_url: cli.database_url.clone(),
        pool_size: serve.pool_size,
        pool_timeout_secs: serve.pool_timeout_secs,
        body_limit: serve.body_limit,
        log_format: serve.log_format,
        // Only from the environment or the file: a secret on the command line shows in `ps`.
        token_secret: std::env::var("ROSTER_TOKEN_SECRET").ok(),
        public_url: serve.public_url,
        workers: serve.workers,
        sweep_interval_secs: serve.sweep_interval_secs,
        max_in_flight_per_tenant: serve.max_in_flight_per_tenant,
        token_cache_ms: serve.token_cache_ms,
        bootstrap_token_secs: serve.bootstrap_token_secs,
        trusted_proxies: serve.trusted_proxies,
        allowed_hosts: serve.allowed_hosts,
        body_read_timeout_secs: serve.body_read_timeout_secs,
        rate_limit_per_tenant: serve.rate_limit_per_tenant,
        rate_burst_per_tenant: serve.rate_burst_per_tenant,
        rate_limit_per_client: serve.rate_limit_per_client,
        rate_burst_per_client: serve.rate_burst_per_client,
        pool_share_per_tenant: serve.pool_share_per_tenant,
        statement_timeout_ms: serve.statement_timeout_ms,
        min_free_disk_mb: serve.min_free_disk_mb,
        otlp_endpoint: serve.otlp_endpoint,
        webhooks: None,
        oauth_token_secs: serve.oauth_token_secs,
        oauth_allow_http_loopback: serve.oauth_allow_http_loopback,
    };
    let file = match &cli.config {
        Some(path) => Layer::from_file(path)?,
        None => Layer::default(),
    };
    flags.over(file).resolve()
}

fn run(mut cli: Cli) -> anyhow::Result<()> {
    let command = std::mem::replace(&mut cli.command, Command::Migrate);
    match command {
        Command::Serve(args) => serve(settings(&cli, *args)?),
        Command::Migrate => migrate(&cli),
        Command::Backup { path } => backup(&cli, &path),
        Command::Restore { path, force } => restore(&cli, &path, force),
        Command::Tenant(cmd) => tenant(&cli, cmd),
        Command::Token(cmd) => token(&cli, cmd),
        Command::User(cmd) => user(&cli, cmd),
        Command::Client(cmd) => client(&cli, cmd),
        Command::Issuer(cmd) => issuer(&cli, cmd),
        Command::ProbeCommits { seconds } => probe_commits(&cli, seconds),
        Command::Sweep => sweep(&cli),
        Command::Audit { tenant, after, limit } => audit(&cli, tenant, after, limit),
        Command::Webhook(cmd) => webhook::run(&cli, cmd),
        Command::Stream(cmd) => stream::run(&cli, cmd),
        Command::Admin(cmd) => crate::panel::cli::run(&open(&cli)?.0, &command_settings(&cli)?, cmd),
    }
}

/// The settings of a command other than `serve`: the file and the environment, no flags.
fn command_settings(cli: &Cli) -> anyhow::Result<Settings> {
    settings(cli, ServeArgs::default())
}

/// The database of a command other than `serve`, migrated, and its token keys.
fn open(cli: &Cli) -> anyhow::Result<(db::Database, auth::Keys)> {
    let (db, keys, _) = startup::open_database(&command_settings(cli)?)?;
    Ok((db, keys))
}

fn database_url(settings: &Settings) -> anyhow::Result<db::DatabaseUrl> {
    db::DatabaseUrl::parse(&settings.database_url).map_err(anyhow::Error::msg)
}

fn migrate(cli: &Cli) -> anyhow::Result<()> {
    let settings = command_settings(cli)?;
    startup::open_database(&settings)?;
    eprintln!("migrations applied to {}", database_url(&settings)?.redacted());
    Ok(())
}

fn backup(cli: &Cli, path: &Path) -> anyhow::Result<()> {
    let url = database_url(&command_settings(cli)?)?;
    crate::backup::backup(&url, path)?;
    eprintln!("backed up {} to {}", url.redacted(), path.display());
    Ok(())
}

fn restore(cli: &Cli, path: &Path, force: bool) -> anyhow::Result<()> {
    let url = database_url(&command_settings(cli)?)?;
    crate::backup::restore(&url, path, force)?;
    eprintln!("restored {} from {}; the next start applies any newer migrations", url.redacted(), path.display());
    Ok(())
}

fn tenant(cli: &Cli, cmd: TenantCommand) -> anyhow::Result<()> {
    let (db, _) = open(cli)?;
    let mut conn = db.conn()?;
    match cmd {
        TenantCommand::Create { name } => {
            let tenant = tenants::create(&mut conn, &name)?;
            println!("{}\t{}", tenant.name, tenant.id);
        }
        TenantCommand::List => {
            println!("name\tid\tgrace_days\tdelete_policy\tformer_member_after_days\tdelete_after_days\tarchive_export\tstrict_validation\tevent_retention_days\tarchive_dir\tarchive_hold_hours\tarchive_url");
            for t in tenants::list(&mut conn)? {
                let days = |d: Option<i32>| d.map(|d| d.to_string()).unwrap_or_else(|| "off".into());
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    t.name,
                    t.id,
                    t.grace_days,
                    t.delete_policy,
                    days(t.former_member_after_days),
                    days(t.delete_after_days),
                    t.archive_export,
                    t.strict_validation,
                    days(t.event_retention_days),
                    t.archive_dir.as_deref().unwrap_or("-"),
                    t.archive_hold_hours,
                    t.archive_url.as_deref().unwrap_or("-")
                );
            }
        }
        TenantCommand::Set {
            name,
            grace_days,
            delete_policy,
            former_member_after_days,
            delete_after_days,
            archive_export,
            strict_validation,
            archive_dir,
            archive_url,
            archive_allow_private,
            archive_hold,
            event_retention,
        } => {
            let (archive_url, secret) = match archive_url {
                Some(url) if url.eq_ignore_ascii_case("off") => (Some(None), None),
                Some(url) => {
                    let (url, secret) =
                        crate::delivery::archive::url_destination(&mut conn, &name, &url, archive_allow_private)?;
                    (Some(Some(url)), Some(secret))
                }
                None => (None, None),
            };
            let change = tenants::PolicyChange {
                grace_days,
                delete_policy,
                former_member_after_days: former_member_after_days.map(|d| d.0),
                delete_after_days: delete_after_days.map(|d| d.0),
                archive_export,
                strict_validation,
                event_retention_days: event_retention.map(|d| d.0),
                archive_dir: archive_dir.map(|d| (!d.eq_ignore_ascii_case("off")).then_some(d)),
                archive_url,
                archive_hold_hours: archive_hold,
            };
            let t = tenants::set_policy(&mut conn, &name, &change)?;
            eprintln!("tenant {} now: grace {} days, delete policy {}", t.name, t.grace_days, t.delete_policy);
            if let Some(secret) = secret {
                eprintln!(
                    "archive URL {}: its signing secret, shown this once:",
                    t.archive_url.as_deref().unwrap_or("-")
                );
                println!("{secret}");
            }
        }
    }
    Ok(())
}

fn token(cli: &Cli, cmd: TokenCommand) -> anyhow::Result<()> {
    let (db, keys) = open(cli)?;
    let mut conn = db.conn()?;
    match cmd {
        TokenCommand::Issue { tenant, name, scope, expires } => {
            let issued = auth::issue(
                &mut conn,
                &keys,
                TokenRequest { tenant: &tenant, name: &name, scopes: scope, expires_in: expires },
            )?;
            eprintln!("issued token {} for {name} in tenant {tenant}", issued.claims.jti);
            println!("{}", issued.token);
        }
        TokenCommand::List => {
            println!("jti\ttenant\tname\tscope\tissued\texpires\trevoked");
            let time =
                |t: Option<chrono::NaiveDateTime>| t.map(|t| t.and_utc().to_rfc3339()).unwrap_or_else(|| "-".into());
            for (t, tenant) in db::tokens::list(&mut conn)? {
                println!(
                    "{}\t{tenant}\t{}\t{}\t{}\t{}\t{}",
                    t.jti,
                    t.name,
                    t.scope,
                    t.issued_at.and_utc().to_rfc3339(),
                    time(t.expires_at),
                    time(t.revoked_at)
                );
            }
        }
        TokenCommand::Revoke { jti } => {
            anyhow::ensure!(db::tokens::revoke(&mut conn, &jti)?, "no token with jti {jti}");
            eprintln!("revoked {jti}");
        }
    }
    Ok(())
}

fn rfc3339(t: Option<chrono::NaiveDateTime>) -> String {
    t.map(|t| t.and_utc().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)).unwrap_or_else(|| "-".into())
}

fn print_secret(secret: &crate::auth::oauth::NewSecret) {
    println!("client_secret: {}", secret.secret);
    println!("secret_id: {}", secret.record.id);
    println!("secret_expires: {}", rfc3339(secret.record.expires_at));
}

fn client(cli: &Cli, cmd: ClientCommand) -> anyhow::Result<()> {
    use crate::auth::oauth;
    use crate::db::oauth as store;
    let settings = command_settings(cli)?;
    let (db, _) = open(cli)?;
    let mut conn = db.conn()?;
    match cmd {
        ClientCommand::Create {
            tenant,
            name,
            scope,
            secret_expires,
            no_secret,
            jwks_url,
            jwks_file,
            issuer,
            subject,
            audience,
            redirect_uri,
        } => {
            let jwks = match jwks_file {
                Some(path) => Some(
                    std::fs::read_to_string(&path)
                        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?,
                ),
                None => None,
            };
            let created = oauth::create(
                &mut conn,
                oauth::NewClient {
                    tenant: &tenant,
                    name: &name,
                    scopes: scope,
                    secret: (!no_secret).then_some(Some(secret_expires)),
                    trust: oauth::AssertionTrust { issuer, subject, audience, jwks_url, jwks },
                    redirect_uris: redirect_uri,
                },
                settings.oauth_allow_http_loopback,
            )?;
            println!("client_id: {}", created.client.id);
            if let Some(secret) = &created.secret {
                print_secret(secret);
            }
            eprintln!(
                "created client {name} in tenant {tenant} (scope {}); the secret is not shown again. Token \
                 endpoint: <public URL>/oauth/token (see /.well-known/oauth-authorization-server)",
                created.client.scope
            );
        }
        ClientCommand::List { tenant } => {
            let tenant_id = match tenant {
                Some(name) => Some(
                    tenants::by_name(&mut conn, &name)?.ok_or_else(|| anyhow::anyhow!("no tenant named {name:?}"))?.id,
                ),
                None => None,
            };
            println!("client_id\ttenant\tname\tscope\tcreated\trevoked\tassertion_issuer\tassertion_subject\tkeys");
            for (c, tenant) in store::clients(&mut conn, tenant_id.as_deref())? {
                let keys = c.jwks_url.clone().or(c.jwks.as_ref().map(|_| "stored JWKS".into())).unwrap_or("-".into());
                println!(
                    "{}\t{tenant}\t{}\t{}\t{}\t{}\t{}\t{}\t{keys}",
                    c.id,
                    c.name,
                    c.scope,
                    rfc3339(Some(c.created_at)),
                    rfc3339(c.revoked_at),
                    c.assertion_issuer.as_deref().unwrap_or("-"),
                    c.assertion_subject.as_deref().unwrap_or("-"),
                );
            }
        }
        ClientCommand::Approve { tenant, name, valid } => {
            let ticket =
                oauth::code::approval(&mut conn, &tenant, &name, valid.unwrap_or(oauth::code::APPROVAL_LIFETIME))?;
            let base = settings.public_url.clone().unwrap_or_else(|| format!("http://{}", settings.listen));
            println!("{base}/oauth/approve/{ticket}");
            eprintln!(
                "open this link once, in the browser you then use to click Authenticate in Okta for {name}; \
                 it works once"
            );
        }
        ClientCommand::Revoke { tenant, name } => {
            let c = oauth::find(&mut conn, &tenant, &name)?;
            anyhow::ensure!(store::revoke_client(&mut conn, &c.id, db::now())?, "client {name:?} was already revoked");
            eprintln!("revoked client {name} ({}) and its access tokens", c.id);
        }
        ClientCommand::Secret(SecretCommand::Add { tenant, name, expires }) => {
            let secret = oauth::add_secret(&mut conn, &tenant, &name, Some(expires))?;
            print_secret(&secret);
            eprintln!("added a secret to {name}; its other secrets stay live until revoked or expired");
        }
        ClientCommand::Secret(SecretCommand::List { tenant, name }) => {
            let c = oauth::find(&mut conn, &tenant, &name)?;
            println!("secret_id\tcreated\texpires\trevoked\tstate");
            let now = db::now();
            for s in store::secrets(&mut conn, &c.id)? {
                let state = match (s.revoked_at, s.expires_at) {
                    (Some(_), _) => "revoked",
                    (None, Some(at)) if at <= now => "expired",
                    _ => "live",
                };
                println!(
                    "{}\t{}\t{}\t{}\t{state}",
                    s.id,
                    rfc3339(Some(s.created_at)),
                    rfc3339(s.expires_at),
                    rfc3339(s.revoked_at)
                );
            }
        }
        ClientCommand::Secret(SecretCommand::Revoke { tenant, name, id }) => {
            let c = oauth::find(&mut conn, &tenant, &name)?;
            anyhow::ensure!(
                store::revoke_secret(&mut conn, &c.id, &id, db::now())?,
                "client {name:?} has no live secret {id}"
            );
            eprintln!("revoked secret {id} of {name}");
        }
        ClientCommand::Audit { tenant, limit } => {
            let tenant_id = match tenant {
                Some(name) => Some(
                    tenants::by_name(&mut conn, &name)?.ok_or_else(|| anyhow::anyhow!("no tenant named {name:?}"))?.id,
                ),
                None => None,
            };
            for e in store::audit_entries(&mut conn, tenant_id.as_deref(), limit)? {
                let line = serde_json::json!({
                    "at": rfc3339(Some(e.at)),
                    "tenant": e.tenant_id,
                    "client_id": e.client_id,
                    "outcome": e.outcome,
                    "detail": e.detail,
                    "peer": e.peer,
                });
                println!("{line}");
            }
        }
    }
    Ok(())
}

fn issuer(cli: &Cli, cmd: IssuerCommand) -> anyhow::Result<()> {
    use crate::auth::oauth::external;
    let settings = command_settings(cli)?;
    let (db, _) = open(cli)?;
    let mut conn = db.conn()?;
    let tenant_id = |conn: &mut db::DbConnection, name: &str| -> anyhow::Result<String> {
        Ok(tenants::by_name(conn, name)?.ok_or_else(|| anyhow::anyhow!("no tenant named {name:?}"))?.id)
    };
    match cmd {
        IssuerCommand::Add { tenant, name, issuer, audience, jwks_url, scope } => {
            let added = external::add(
                &mut conn,
                external::NewIssuer {
                    tenant: &tenant,
                    name: &name,
                    issuer: &issuer,
                    audience: &audience,
                    jwks_url: &jwks_url,
                    scopes: scope,
                },
                settings.oauth_allow_http_loopback,
            )?;
            eprintln!("tenant {tenant} now trusts {issuer} (audience {audience}) with at most {}", added.scope);
        }
        IssuerCommand::List { tenant } => {
            let tenant_id = tenant.map(|t| tenant_id(&mut conn, &t)).transpose()?;
            println!("tenant\tname\tissuer\taudience\tjwks_url\tscope\tcreated");
            for (i, tenant) in crate::db::oauth::issuers(&mut conn, tenant_id.as_deref())? {
                println!(
                    "{tenant}\t{}\t{}\t{}\t{}\t{}\t{}",
                    i.name,
                    i.issuer,
                    i.audience,
                    i.jwks_url,
                    i.scope,
                    rfc3339(Some(i.created_at))
                );
            }
        }
        IssuerCommand::Remove { tenant, name } => {
            let id = tenant_id(&mut conn, &tenant)?;
            anyhow::ensure!(
                crate::db::oauth::remove_issuer(&mut conn, &id, &name)?,
                "tenant {tenant:?} trusts no server named {name:?}"
            );
            eprintln!("tenant {tenant} no longer trusts {name}");
        }
    }
    Ok(())
}

/// A lifecycle transition by hand; a refusal prints the rule that refused it.
fn user(cli: &Cli, cmd: UserCommand) -> anyhow::Result<()> {
    let (db, _) = open(cli)?;
    let mut conn = db.conn()?;
    let row = crate::admin::apply(&mut conn, cmd.into())?;
    db::scrub::now(&mut conn);
    match row {
        Some(row) => eprintln!("{} is now {}", row.id, row.lifecycle_state),
        None => eprintln!("deleted"),
    }
    Ok(())
}

fn probe_commits(cli: &Cli, seconds: u64) -> anyhow::Result<()> {
    let settings = command_settings(cli)?;
    let rate = crate::probe::commit_rate(&settings.database_url, std::time::Duration::from_secs(seconds))?;
    eprintln!("{} single-row commits in {:.1} s", rate.commits, rate.elapsed.as_secs_f64());
    println!("{:.0}", rate.per_second());
    Ok(())
}

fn sweep(cli: &Cli) -> anyhow::Result<()> {
    let (db, _) = open(cli)?;
    let mut conn = db.conn()?;
    let report = crate::sweep::run(&mut conn, db::now(), None)?;
    db::scrub::now(&mut conn);
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

fn audit(cli: &Cli, tenant: Option<String>, after: i64, limit: i64) -> anyhow::Result<()> {
    let (db, _) = open(cli)?;
    let mut conn = db.conn()?;
    let rows = match tenant {
        Some(name) => {
            let tenant =
                tenants::by_name(&mut conn, &name)?.ok_or_else(|| anyhow::anyhow!("no tenant named {name:?}"))?;
            db::records::audit_after(&mut conn, &tenant.id, after, limit)?
        }
        None => db::records::audit_of_all_tenants(&mut conn, limit)?,
    };
    for row in rows {
        println!("{}", crate::product::audit_json(&row));
    }
    Ok(())
}

impl From<UserCommand> for crate::admin::Action {
    fn from(cmd: UserCommand) -> Self {
        use crate::admin::{Action, Transition};
        let (transition, target) = match cmd {
            UserCommand::Deactivate(t) => (Transition::Deactivate, t),
            UserCommand::Reactivate(t) => (Transition::Reactivate, t),
            UserCommand::FormerMember(t) => (Transition::FormerMember, t),
            UserCommand::Delete(t) => (Transition::Delete, t),
        };
        Action { tenant: target.tenant, user_id: target.id, transition }
    }
}

fn serve(settings: Settings) -> anyhow::Result<()> {
    // Held until serving ends, so that the last spans are exported.
    let _telemetry = telemetry::init_with_export(settings.log_format, settings.otlp_endpoint.as_deref())?;
    actix_web::rt::System::new().block_on(async move {
        let app = Application::build(settings)?;
        if let Some(b) = &app.bootstrap {
            // Shown once, when this start created the database: enough to connect an IdP.
            println!("Roster created a new database.");
            println!("SCIM base URL:   {}", b.base_url);
            println!("Bootstrap token: {}", b.token);
            println!(
                "(tenant \"default\", scope scim, expires {}; issue lasting tokens with `roster token issue`)",
                b.expires_at
            );
        }
        app.run_until_stopped().await?;
        tracing::info!("roster stopped");
        Ok(())
    })
}
