//! The `roster` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::auth::{self, Scopes, TokenRequest};
use crate::config::{Layer, LogFormat, Settings};
use crate::db::{self, tenants};
use crate::startup::{self, Application};
use crate::telemetry;

#[derive(Parser)]
#[command(name = "roster", version, about = "SCIM 2.0 identity provisioning with an account lifecycle")]
struct Cli {
    /// TOML settings file; environment variables and flags override it.
    #[arg(long, global = true, env = "ROSTER_CONFIG")]
    config: Option<PathBuf>,
    /// `postgres://user@host:5432/db` for PostgreSQL, otherwise an SQLite file path [default: roster.db]
    #[arg(long, global = true, env = "ROSTER_DATABASE_URL")]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server (SCIM at /scim/v2).
    Serve(ServeArgs),
    /// Apply pending database migrations and exit.
    Migrate,
    /// Create and list tenants.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Issue, list and revoke bearer tokens.
    #[command(subcommand)]
    Token(TokenCommand),
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
    /// Base URL clients use to reach Roster, for `Location` and `meta.location` [default: from the Host header]
    #[arg(long, env = "ROSTER_PUBLIC_URL")]
    public_url: Option<String>,
    /// HTTP worker threads [default: number of cores]
    #[arg(long, env = "ROSTER_WORKERS")]
    workers: Option<usize>,
}

#[derive(Subcommand)]
enum TenantCommand {
    /// Create a tenant.
    Create { name: String },
    /// List tenants.
    List,
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
        Command::Serve(args) => serve(settings(&cli, args)?),
        Command::Migrate => {
            let settings = settings(&cli, ServeArgs::default())?;
            startup::open_database(&settings)?;
            eprintln!(
                "migrations applied to {}",
                db::DatabaseUrl::parse(&settings.database_url).map_err(anyhow::Error::msg)?.redacted()
            );
            Ok(())
        }
        Command::Tenant(cmd) => {
            let settings = settings(&cli, ServeArgs::default())?;
            let (db, _, _) = startup::open_database(&settings)?;
            let mut conn = db.conn()?;
            match cmd {
                TenantCommand::Create { name } => {
                    let tenant = tenants::create(&mut conn, &name)?;
                    println!("{}\t{}", tenant.name, tenant.id);
                }
                TenantCommand::List => {
                    for t in tenants::list(&mut conn)? {
                        println!("{}\t{}\tcreated {}", t.name, t.id, t.created_at.and_utc().to_rfc3339());
                    }
                }
            }
            Ok(())
        }
        Command::Token(cmd) => {
            let settings = settings(&cli, ServeArgs::default())?;
            let (db, keys, _) = startup::open_database(&settings)?;
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
                    let time = |t: Option<chrono::NaiveDateTime>| {
                        t.map(|t| t.and_utc().to_rfc3339()).unwrap_or_else(|| "-".into())
                    };
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
    }
}

fn serve(settings: Settings) -> anyhow::Result<()> {
    telemetry::init(settings.log_format);
    actix_web::rt::System::new().block_on(async move {
        let app = Application::build(settings)?;
        if let Some(b) = &app.bootstrap {
            // Shown once, when this start created the database: enough to connect an IdP.
            println!("Roster created a new database.");
            println!("SCIM base URL:   {}", b.base_url);
            println!("Bootstrap token: {}", b.token);
            println!("(tenant \"default\", scope scim; revoke it with `roster token revoke` once you have your own)");
        }
        app.run_until_stopped().await?;
        tracing::info!("roster stopped");
        Ok(())
    })
}
