//! `roster admin`: sign-in links to the Admin Panel, and its sessions.

use clap::Subcommand;

use super::signin::{self, LinkRequest};
use super::store;
use crate::config::Settings;
use crate::db::{self, tenants, Database};

#[derive(Subcommand)]
pub enum AdminCommand {
    /// Print a one-time sign-in link to the Admin Panel (/admin), built from public_url. It works
    /// once, for a short time; the session it opens sees only TENANT unless --all-tenants.
    Link {
        /// The tenant the admin manages.
        #[arg(long)]
        tenant: String,
        /// The admin's name, recorded in the audit log as "panel:NAME".
        #[arg(long, default_value = "admin")]
        name: String,
        /// Let the session switch to any tenant.
        #[arg(long)]
        all_tenants: bool,
        /// How long the link works: 15m, 1h, … (at most 24h).
        #[arg(long, default_value = "15m", value_parser = crate::auth::parse_lifetime)]
        expires: std::time::Duration,
        /// The base URL people open Roster at [default: public_url of the settings file, or the listen address]
        #[arg(long, env = "ROSTER_PUBLIC_URL")]
        public_url: Option<String>,
    },
    /// List Admin Panel sessions (tab-separated), newest first.
    Sessions {
        /// Only sessions opened with links for this tenant.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Revoke an Admin Panel session at once, by its id (from `roster admin sessions`).
    Revoke { id: String },
}

/// Where the panel is reached: `public_url`, or the listen address.
fn base_url(public_url: Option<&str>, settings: &Settings) -> String {
    match public_url.or(settings.public_url.as_deref()) {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => format!("http://{}", settings.listen.replace("0.0.0.0", "localhost")),
    }
}

pub fn run(db: &Database, settings: &Settings, cmd: AdminCommand) -> anyhow::Result<()> {
    let mut conn = db.conn()?;
    let now = db::now();
    match cmd {
        AdminCommand::Link { tenant, name, all_tenants, expires, public_url } => {
            let lifetime = chrono::Duration::from_std(expires).unwrap_or(chrono::Duration::MAX);
            let req = LinkRequest { tenant: &tenant, name: &name, all_tenants, lifetime };
            let (token, expires_at) = signin::issue_link(&mut conn, &req, now)?;
            eprintln!(
                "one-time sign-in link for {name} in tenant {tenant}{}, valid until {} (open it in a browser):",
                if all_tenants { " (all tenants)" } else { "" },
                crate::clock::time(expires_at)
            );
            println!("{}/admin/signin?token={token}", base_url(public_url.as_deref(), settings));
        }
        AdminCommand::Sessions { tenant } => {
            let home = match tenant {
                Some(name) => Some(
                    tenants::by_name(&mut conn, &name)?.ok_or_else(|| anyhow::anyhow!("no tenant named {name:?}"))?.id,
                ),
                None => None,
            };
            println!("id\tname\ttenant\tall_tenants\tcreated\tlast_seen\texpires\tstate");
            for s in store::list_sessions(&mut conn, home.as_deref(), 1000)? {
                let state = match s.revoked_at {
                    Some(_) => "revoked",
                    None if now < s.expires_at && now < s.last_seen_at + signin::IDLE_TIMEOUT => "open",
                    None => "ended",
                };
                let t = crate::clock::time;
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{state}",
                    s.id,
                    s.name,
                    s.home_tenant_id,
                    s.all_tenants,
                    t(s.created_at),
                    t(s.last_seen_at),
                    t(s.expires_at)
                );
            }
        }
        AdminCommand::Revoke { id } => {
            let Some(session) = store::session_by_id(&mut conn, &id)? else {
                anyhow::bail!("no admin session with id {id}")
            };
            db::write_transaction(&mut conn, |conn| {
                anyhow::ensure!(store::revoke_session(conn, &id, None, now)?, "admin session {id} is already revoked");
                signin::audit_revocation(conn, &session, crate::admin::ACTOR, &session.home_tenant_id, now)?;
                Ok(())
            })?;
            eprintln!("revoked admin session {id}");
        }
    }
    Ok(())
}
