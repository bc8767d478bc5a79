//! `roster webhook …`: a tenant's webhook endpoints (docs/webhooks.md).

use std::time::Duration;

use clap::Subcommand;

use super::{command_settings, open, Cli};
use crate::auth;
use crate::db;
use crate::delivery::signing::SealKey;
use crate::delivery::webhooks::{self, NewWebhook};

/// Webhooks: the tenant's events, signed the Standard Webhooks way, delivered at least once.
#[derive(Subcommand)]
pub(super) enum WebhookCommand {
    /// Adds an endpoint that receives the tenant's events committed from now on, and prints its
    /// id and its signing secret (`whsec_…`), which is shown this once.
    Add {
        /// The tenant's name.
        #[arg(long)]
        tenant: String,
        /// http:// or https:// URL the events are POSTed to.
        #[arg(long)]
        url: String,
        /// Event types to send, comma-separated (default: every type).
        #[arg(long, value_delimiter = ',')]
        events: Vec<String>,
        /// Allow the URL to reach loopback, private and link-local addresses (a receiver on
        /// the internal network). Without it they are refused, also when a host name resolves
        /// to one at sending time.
        #[arg(long)]
        allow_private: bool,
    },
    /// Lists the tenant's endpoints.
    List {
        /// The tenant's name.
        #[arg(long)]
        tenant: String,
    },
    /// Removes an endpoint and its delivery log; nothing more is sent to it.
    Remove {
        /// The tenant's name.
        #[arg(long)]
        tenant: String,
        /// The webhook's id (printed by `add` and `list`).
        id: String,
    },
    /// Sends a signed `webhook.test` message now and prints the endpoint's answer.
    Test {
        /// The tenant's name.
        #[arg(long)]
        tenant: String,
        /// The webhook's id (printed by `add` and `list`).
        id: String,
    },
    /// Gives the endpoint a new secret (printed once). Requests carry signatures with both the
    /// new and the old secret until the old one expires.
    RotateSecret {
        /// The tenant's name.
        #[arg(long)]
        tenant: String,
        /// The webhook's id (printed by `add` and `list`).
        id: String,
        /// How long the old secret stays live, e.g. `24h`, `30m`, `7d`.
        #[arg(long, default_value = "24h", value_parser = auth::parse_lifetime)]
        keep_old: Duration,
    },
    /// Sends the endpoint's events again from event id FROM on (the `id` of
    /// `GET /api/v1/events`), after whatever is pending for it.
    Replay {
        /// The tenant's name.
        #[arg(long)]
        tenant: String,
        /// The webhook's id (printed by `add` and `list`).
        id: String,
        #[arg(long)]
        from: i64,
    },
    /// The delivery log, newest first: status, tries, duration, next try, last error.
    Deliveries {
        /// The tenant's name.
        #[arg(long)]
        tenant: String,
        /// Only this endpoint's deliveries (a webhook's id; a SET stream's deliveries are in
        /// the tenant's log without it).
        #[arg(long)]
        webhook: Option<String>,
        /// Only deliveries in this status: pending, delivered, dead or dropped (and, for a SET
        /// poll stream, awaiting or rejected).
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
}

pub(super) fn run(cli: &Cli, cmd: WebhookCommand) -> anyhow::Result<()> {
    let (database, _) = open(cli)?;
    let mut conn = database.conn()?;
    let now = db::now();
    match cmd {
        WebhookCommand::Add { tenant, url, events, allow_private } => {
            let added = webhooks::add(
                &mut conn,
                &NewWebhook { tenant: &tenant, url: &url, event_types: &events, allow_private },
                now,
            )?;
            println!("id\t{}", added.webhook.id);
            println!("secret\t{}", added.secret);
            eprintln!("the secret is shown this once; the receiver verifies signatures with it");
        }
        WebhookCommand::List { tenant } => {
            println!("id\turl\tevents\tallow_private\tsecrets\tcreated");
            for w in webhooks::list(&mut conn, &tenant)? {
                let live = if w.previous_secret_expires_at.is_some_and(|t| t > now) { 2 } else { 1 };
                let events = if w.event_types.is_empty() { "*" } else { &w.event_types };
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    w.id,
                    w.url,
                    events,
                    w.allow_private,
                    live,
                    crate::clock::time(w.created_at)
                );
            }
        }
        WebhookCommand::Remove { tenant, id } => {
            webhooks::remove(&mut conn, &tenant, &id)?;
            eprintln!("removed {id}");
        }
        WebhookCommand::Test { tenant, id } => {
            let webhook = webhooks::get(&mut conn, &tenant, &id)?;
            let seal = SealKey::load(&mut conn)?;
            let settings = command_settings(cli)?.webhooks;
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let tested = runtime.block_on(webhooks::test(&webhook, &seal, &settings, now))?;
            let took = tested.took.as_millis();
            match tested.answer {
                Ok(code) if (200..300).contains(&code) => println!("{code} in {took} ms"),
                Ok(code) => anyhow::bail!("the endpoint answered {code} in {took} ms"),
                Err(e) => anyhow::bail!("{e} (after {took} ms)"),
            }
        }
        WebhookCommand::RotateSecret { tenant, id, keep_old } => {
            let secret = webhooks::rotate_secret(&mut conn, &tenant, &id, keep_old, now)?;
            println!("secret\t{secret}");
            eprintln!("the old secret signs too for {}", humanize(keep_old));
        }
        WebhookCommand::Replay { tenant, id, from } => {
            let queued = webhooks::replay(&mut conn, &tenant, &id, from, now)?;
            eprintln!("{queued} events queued for {id} again");
        }
        WebhookCommand::Deliveries { tenant, webhook, status, limit } => {
            let log = webhooks::delivery_log(&mut conn, &tenant, webhook.as_deref(), status.as_deref(), limit)?;
            println!("delivery\twebhook\tevent\tstatus\ttries\tduration_ms\tlast_status\tnext_try\tlast_error");
            for d in log {
                let next = if d.status == db::deliveries::PENDING {
                    crate::clock::time(d.next_attempt_at)
                } else {
                    "-".into()
                };
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    d.id,
                    d.webhook_id,
                    d.event_seq,
                    d.status,
                    d.attempts,
                    d.last_duration_ms.map(|m| m.to_string()).unwrap_or_else(|| "-".into()),
                    d.last_status.map(|s| s.to_string()).unwrap_or_else(|| "-".into()),
                    next,
                    d.last_error.as_deref().unwrap_or("-").replace(['\t', '\n'], " ")
                );
            }
        }
    }
    Ok(())
}

fn humanize(d: Duration) -> String {
    let secs = d.as_secs();
    match secs {
        s if s % 86_400 == 0 => format!("{} days", s / 86_400),
        s if s % 3600 == 0 => format!("{} hours", s / 3600),
        s => format!("{s} seconds"),
    }
}
