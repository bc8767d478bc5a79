//! `roster stream …`: a tenant's SET streams and signing keys (docs/security-events.md).

use std::time::Duration;

use clap::Subcommand;

use super::{open, Cli};
use crate::auth;
use crate::db::{self, tenants};
use crate::delivery::keys::{self, KeyAlg};
use crate::delivery::signing::SealKey;
use crate::delivery::streams::{self, Delivery, NewStream};

/// SET streams: the tenant's events as signed Security Event Tokens (RFC 8417, RFC 9967),
/// pushed (RFC 8935) or polled (RFC 8936).
#[derive(Subcommand)]
pub(super) enum StreamCommand {
    /// Adds a stream that receives the SETs of the tenant's events committed from now on, and
    /// prints its id (a poll stream's receiver polls POST /api/v1/streams/ID/poll).
    Add {
        /// The tenant's name.
        #[arg(long)]
        tenant: String,
        /// Push the SETs to this http:// or https:// URL (RFC 8935).
        #[arg(long, value_name = "URL", conflicts_with = "poll", required_unless_present = "poll")]
        push: Option<String>,
        /// Keep the SETs for the receiver to poll (RFC 8936).
        #[arg(long)]
        poll: bool,
        /// The SETs' `aud`: the receiver's identifier.
        #[arg(long)]
        audience: String,
        /// Event URIs to send, comma-separated, or an unambiguous end of one
        /// (`prov:create:notice`, `session-revoked`, `account-purged`) [default: every one].
        #[arg(long, value_delimiter = ',')]
        events: Vec<String>,
        /// Allow the push URL to reach loopback, private and link-local addresses.
        #[arg(long, requires = "push")]
        allow_private: bool,
    },
    /// Lists the tenant's streams.
    List {
        #[arg(long)]
        tenant: String,
    },
    /// Removes a stream and its delivery log; nothing more is sent or kept for it.
    Remove {
        #[arg(long)]
        tenant: String,
        /// The stream's id (printed by `add` and `list`).
        id: String,
    },
    /// Lists the tenant's published signing keys (its JWKS), newest first.
    Keys {
        #[arg(long)]
        tenant: String,
    },
    /// Makes a new signing key the tenant's; the replaced one stays in the JWKS until
    /// --keep-old has passed, so receivers still verify the SETs it signed.
    RotateKey {
        #[arg(long)]
        tenant: String,
        /// ES256 or RS256.
        #[arg(long, default_value = "ES256")]
        alg: String,
        /// How long the replaced key stays published, e.g. `24h`, `7d`.
        #[arg(long, default_value = "7d", value_parser = auth::parse_lifetime)]
        keep_old: Duration,
    },
}

pub(super) fn run(cli: &Cli, cmd: StreamCommand) -> anyhow::Result<()> {
    let (database, _) = open(cli)?;
    let mut conn = database.conn()?;
    let now = db::now();
    let tenant_id = |conn: &mut db::DbConnection, name: &str| -> anyhow::Result<String> {
        Ok(tenants::by_name(conn, name)?.ok_or_else(|| anyhow::anyhow!("no tenant named {name:?}"))?.id)
    };
    match cmd {
        StreamCommand::Add { tenant, push, poll: _, audience, events, allow_private } => {
            let delivery = match push.as_deref() {
                Some(url) => Delivery::Push { url, allow_private },
                None => Delivery::Poll,
            };
            let stream = streams::add(
                &mut conn,
                &NewStream { tenant: &tenant, delivery, audience: &audience, events: &events },
                now,
            )?;
            println!("id\t{}", stream.id);
        }
        StreamCommand::List { tenant } => {
            println!("id\tkind\turl\taudience\tevents\tcreated");
            for s in streams::list(&mut conn, &tenant)? {
                let events = if s.event_types.is_empty() { "*" } else { &s.event_types };
                let url = if s.url.is_empty() { "-" } else { &s.url };
                let audience = s.audience.as_deref().unwrap_or("-");
                println!("{}\t{}\t{url}\t{audience}\t{events}\t{}", s.id, s.kind, crate::clock::time(s.created_at));
            }
        }
        StreamCommand::Remove { tenant, id } => {
            streams::remove(&mut conn, &tenant, &id)?;
            eprintln!("removed {id}");
        }
        StreamCommand::Keys { tenant } => {
            let id = tenant_id(&mut conn, &tenant)?;
            println!("kid\talg\tcreated\tsigns\tpublished_until");
            for k in keys::list(&mut conn, &id, now)? {
                let until = k.expires_at.map(crate::clock::time).unwrap_or_else(|| "-".into());
                let signs = k.retired_at.is_none();
                println!("{}\t{}\t{}\t{signs}\t{until}", k.kid, k.alg, crate::clock::time(k.created_at));
            }
        }
        StreamCommand::RotateKey { tenant, alg, keep_old } => {
            let alg: KeyAlg = alg.parse()?;
            let id = tenant_id(&mut conn, &tenant)?;
            let seal = SealKey::load(&mut conn)?;
            let (key, retired) = keys::rotate(&mut conn, &seal, &id, alg, keep_old, now)?;
            println!("kid\t{}", key.kid);
            eprintln!(
                "{retired} replaced key(s) stay published until {}",
                crate::clock::time(now + chrono::Duration::from_std(keep_old)?)
            );
        }
    }
    Ok(())
}
