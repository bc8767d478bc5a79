//! The background sweep: removes the memberships of accounts deactivated for longer than the
//! grace period, applies each tenant's retention policy (Former Member after N days, deletion
//! after M days), writes pending archive exports to their destination (`archive`), and purges
//! events older than the tenant's event retention with the delivery log's finished entries of
//! that age. Every effect is its own transaction that re-checks the account and
//! writes only from the version it read, so several nodes sweeping one PostgreSQL at once
//! apply — and report — each effect once.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::NaiveDateTime;
use serde::Serialize;

use crate::archive;
use crate::clock::Clock;
use crate::db::archive as archive_store;
use crate::db::users::{self as user_store, UserRow};
use crate::db::{deliveries, records};
use crate::db::{tenants, write_transaction, Database, DbConnection};
use crate::lifecycle::{self, Actor, DeletePolicy, LifecycleError, Policy, State};

/// Accounts handled per step and tenant in one sweep; the next sweep continues.
const BATCH: i64 = 500;
/// Events purged per statement, and statements per tenant in one sweep: each batch is its own
/// short transaction, so a large purge never holds the events table for long.
const EVENT_BATCH: i64 = 1000;
const EVENT_BATCHES: usize = 50;
const ACTOR: &str = "retention-policy";

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub memberships_removed: usize,
    pub former_members: usize,
    pub deleted: usize,
    pub exports_written: usize,
    pub exports_expired: usize,
    pub events_purged: usize,
    pub deliveries_pruned: usize,
}

/// One effect on one account, in its own transaction, on fresh data. An account another node
/// changed first is skipped: its sweep did the work. The account's row is locked before any
/// other row is touched, as every write to an account does, so that the sweep's membership
/// removal and a transition of the same account (which locks the account, then removes its
/// memberships) cannot each hold what the other waits for.
fn on_fresh<T: Default>(
    conn: &mut DbConnection,
    pk: i64,
    work: impl Fn(&mut DbConnection, &UserRow) -> Result<T, LifecycleError>,
) -> Result<T, LifecycleError> {
    let result = write_transaction(conn, |conn| match user_store::by_pk(conn, pk) {
        Ok(row) if user_store::lock_at_version(conn, row.pk, row.version)? => work(conn, &row),
        Ok(_) | Err(diesel::result::Error::NotFound) => Ok(T::default()),
        Err(e) => Err(e.into()),
    });
    match result {
        Err(LifecycleError::Changed) => Ok(T::default()),
        other => other,
    }
}

/// One sweep over every tenant, or over `only` that tenant (by id).
pub fn run(conn: &mut DbConnection, now: NaiveDateTime, only: Option<&str>) -> Result<Report, LifecycleError> {
    let mut report = Report::default();
    for tenant in tenants::list(conn)?.into_iter().filter(|t| only.is_none_or(|id| t.id == id)) {
        let policy = Policy::of(&tenant);
        let actor = Actor { tenant_id: &tenant.id, name: ACTOR, policy: &policy, now };
        let past_grace = |row: &UserRow, cutoff: NaiveDateTime| {
            row.lifecycle_state != State::Active && row.deactivated_at.is_some_and(|t| t <= cutoff)
        };

        let cutoff = now - policy.grace;
        for row in user_store::with_memberships_deactivated_before(conn, &tenant.id, cutoff, BATCH)? {
            report.memberships_removed += on_fresh(conn, row.pk, |conn, row| {
                if past_grace(row, cutoff) {
                    lifecycle::remove_memberships(conn, &actor, row)
                } else {
                    Ok(0)
                }
            })?;
        }

        if let Some(after) = policy.former_member_after {
            let cutoff = now - after.max(policy.grace);
            for row in user_store::in_state_since(conn, &tenant.id, &[State::Deactivated], cutoff, BATCH)? {
                report.former_members += on_fresh(conn, row.pk, |conn, row| {
                    if row.lifecycle_state == State::Deactivated && past_grace(row, cutoff) {
                        lifecycle::become_former_member(conn, &actor, row).map(|_| 1)
                    } else {
                        Ok(0)
                    }
                })?;
            }
        }

        if let Some(after) = policy.delete_after {
            let cutoff = now - after;
            // Retention deletes for real whatever DELETE requests do under the tenant's policy.
            let deleting = Policy { delete: DeletePolicy::DeactivateThenDelete, ..policy.clone() };
            let actor = Actor { policy: &deleting, ..actor };
            for row in
                user_store::in_state_since(conn, &tenant.id, &[State::Deactivated, State::FormerMember], cutoff, BATCH)?
            {
                report.deleted += on_fresh(conn, row.pk, |conn, row| {
                    if past_grace(row, cutoff) {
                        lifecycle::delete(conn, &actor, row).map(|_| 1)
                    } else {
                        Ok(0)
                    }
                })?;
            }
        }

        // After the deletions, so that this sweep's exports go out in this sweep.
        if tenant.archive_export || archive_store::pending_count(conn, &tenant.id)? > 0 {
            let delivered = archive::deliver(conn, &tenant, now)?;
            report.exports_written += delivered.written;
            report.exports_expired += delivered.expired;
        }

        if let Some(retention) = policy.event_retention {
            for _ in 0..EVENT_BATCHES {
                let purged = records::purge_events_before(conn, &tenant.id, now - retention, EVENT_BATCH)?;
                report.events_purged += purged;
                if purged < EVENT_BATCH as usize {
                    break;
                }
            }
        }
        // The delivery log lasts as long as the events it names.
        let finished_before = policy.event_retention.map(|retention| now - retention);
        report.deliveries_pruned += deliveries::prune_finished(conn, &tenant.id, finished_before)?;
    }
    Ok(report)
}

/// Sweeps every `interval_secs` (0: never) for as long as the server runs.
pub fn spawn(db: Database, clock: Arc<Clock>, interval_secs: u64) {
    if interval_secs == 0 {
        return;
    }
    // On the server's runtime, beside the workers (as actix's own `rt::spawn` does).
    tokio::task::spawn_local(async move {
        let mut ticks = tokio::time::interval(StdDuration::from_secs(interval_secs));
        loop {
            ticks.tick().await;
            let (now, started) = (clock.now(), std::time::Instant::now());
            let swept = db.run(move |conn| run(conn, now, None)).await;
            crate::metrics::sweep_run(if swept.is_ok() { "ok" } else { "failed" }, started.elapsed());
            match swept {
                Ok(report) if report != Report::default() => tracing::info!(?report, "sweep applied lifecycle effects"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "sweep failed; it runs again on the next tick"),
            }
        }
    });
}
