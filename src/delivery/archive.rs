//! The archive sink's URL destination (`roster tenant set --archive-url`): the export of a
//! deleted account, the same JSON Lines the directory sink writes ([`crate::archive`]), is
//! POSTed to the tenant's archive URL by the webhook sender, with the same outbound rules
//! ([`super::outbound`]), signed the Standard Webhooks way with the tenant's archive secret
//! ([`super::signing`]), and tried again with the webhooks' back-off ([`super::backoff`]) until
//! the receiver acknowledges it with a 2xx. Only then does it leave Roster. An export still
//! unacknowledged when the tenant's hold is over is destroyed by the sweep with an
//! `archive.expired` alert, as for the directory.
//!
//! At least once: an export is claimed for a lease before it is sent and removed only after the
//! 2xx, so a sender killed in between leaves it to be sent again once the lease is over, and
//! several nodes on one PostgreSQL claim different exports (`db::archive::claim_due`).

use chrono::NaiveDateTime;
use futures_util::future::join_all;
use serde_json::json;

use super::message::Message;
use super::signing::{SealKey, Secret};
use super::{backoff, describe, outbound, Engine, ERROR_TEXT};
use crate::config::WebhookSettings;
use crate::db::archive::{self as store, Destination, PendingExport};
use crate::db::tenants::{self, ArchiveUrl, Tenant, TenantError};
use crate::db::{records, scrub, write_transaction, DbConnection, DbError};

/// What a tenant's archive secret is sealed for: the tenant, apart from any webhook.
fn sealed_for(tenant_id: &str) -> String {
    format!("archive_{tenant_id}")
}

/// A checked archive URL for the tenant named `tenant`, with a new signing secret: the
/// destination to store, and the secret in the `whsec_…` form, to print once. Without
/// `allow_private` the URL must be https and name no internal address, as a webhook's.
pub fn url_destination(
    conn: &mut DbConnection,
    tenant: &str,
    url: &str,
    allow_private: bool,
) -> Result<(ArchiveUrl, String), TenantError> {
    let invalid = |e: String| TenantError::InvalidPolicy(format!("archive URL: {e}"));
    let parsed = outbound::parse_url(url).map_err(invalid)?;
    if !allow_private {
        outbound::check_public(&parsed)
            .map_err(|e| invalid(format!("{e} (for an archive URL, the flag is --archive-allow-private)")))?;
    }
    let tenant_id = tenants::by_name(conn, tenant)?.ok_or_else(|| TenantError::Unknown(tenant.to_owned()))?.id;
    let secret = Secret::generate();
    let sealed_secret = SealKey::load(conn)?.seal(&secret, &sealed_for(&tenant_id));
    Ok((ArchiveUrl { url: parsed.to_string(), allow_private, sealed_secret }, secret.reveal()))
}

/// A claimed export with what sending it needs, read in one database job.
struct Claimed {
    pending: PendingExport,
    tenant: Option<Tenant>,
    export: Result<Vec<u8>, String>,
}

impl Engine {
    /// Sends the URL exports that are due, a batch at a time, until none is (a failed one is due
    /// again only after its back-off) or the sender is stopped.
    pub(super) async fn send_archives(&self, stopped: &tokio::sync::watch::Receiver<bool>) -> Result<(), DbError> {
        loop {
            let (now, lease) = (self.clock.now(), self.lease());
            let limit = self.settings.concurrency as i64;
            let claimed = self
                .db
                .run(move |conn| {
                    let claimed = write_transaction(conn, |conn| {
                        Ok::<_, DbError>(store::claim_due(conn, now, now + lease, limit)?)
                    })?;
                    let mut ready = Vec::with_capacity(claimed.len());
                    for pending in claimed {
                        let tenant = tenants::by_id(conn, &pending.tenant_id)?;
                        let export = store::open(conn, &pending).map_err(|e| e.to_string());
                        ready.push(Claimed { pending, tenant, export });
                    }
                    Ok::<_, DbError>(ready)
                })
                .await?;
            if claimed.is_empty() {
                return Ok(());
            }
            let outcomes: Vec<(PendingExport, Result<u16, String>)> =
                join_all(claimed.into_iter().map(|c| async move {
                    let sent = self.send_export(&c).await;
                    (c.pending, sent)
                }))
                .await;
            let (settings, now) = (self.settings, self.clock.now());
            self.db
                .run(move |conn| {
                    for (pending, sent) in &outcomes {
                        record(conn, &settings, pending, sent, now)?;
                    }
                    Ok::<_, DbError>(())
                })
                .await?;
            if *stopped.borrow() {
                return Ok(());
            }
        }
    }

    /// One try: the receiver's status code, or why none came.
    async fn send_export(&self, claimed: &Claimed) -> Result<u16, String> {
        let tenant = claimed.tenant.as_ref().ok_or("the tenant is gone")?;
        let url = tenant.archive_url.as_deref().ok_or("the tenant has no archive URL any more")?;
        let sealed = tenant.archive_secret.as_deref().ok_or("the tenant's archive URL has no signing secret")?;
        let secret = self.seal.open(sealed, &sealed_for(&tenant.id)).map_err(|_| {
            "the archive URL's stored secret does not open with this database's key; set the URL again".to_owned()
        })?;
        let export = claimed.export.as_ref()?;
        let url = outbound::parse_url(url)?;
        let client = self.outbound.client(&url, tenant.archive_allow_private)?;
        let message = Message::of_export(&tenant.id, claimed.pending.seq, export.clone());
        let response = message.request(client, url, &[secret]).send().await.map_err(describe)?;
        Ok(response.status().as_u16())
    }
}

/// Records a try: acknowledged (2xx), the export leaves Roster with an `archive.written` event in
/// the same transaction; otherwise it is due again after the back-off.
fn record(
    conn: &mut DbConnection,
    settings: &WebhookSettings,
    pending: &PendingExport,
    sent: &Result<u16, String>,
    now: NaiveDateTime,
) -> Result<(), DbError> {
    let error = match sent {
        Ok(code) if (200..300).contains(code) => {
            return write_transaction(conn, |conn| {
                if store::remove(conn, pending.seq)? {
                    let payload = json!({"userId": pending.user_id, "destination": Destination::Url.as_str()});
                    records::add_event(
                        conn,
                        &pending.tenant_id,
                        "archive.written",
                        Some(&pending.user_id),
                        &payload,
                        now,
                    )?;
                    // The sealed export's bytes go from the database files as a deletion's do.
                    scrub::personal_data_removed();
                }
                Ok(())
            });
        }
        Ok(code) => format!("the endpoint answered {code}"),
        Err(e) => e.clone(),
    };
    let error: String = error.chars().take(ERROR_TEXT).collect();
    tracing::warn!(
        tenant_id = pending.tenant_id,
        user_id = pending.user_id,
        error,
        "archive export not acknowledged; it is tried again"
    );
    let tries = u32::try_from(pending.attempts).unwrap_or(0) + 1;
    let wait = backoff::wait_after(settings, tries);
    store::retry_later(conn, pending.seq, now + chrono::Duration::milliseconds(wait.as_millis() as i64), &error)?;
    Ok(())
}
