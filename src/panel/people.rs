//! What the panel shows of an account's lifecycle: its state badges and the dates that matter,
//! computed from the tenant's policy the way the lifecycle module and the sweep apply it.

use chrono::NaiveDateTime;
use serde_json::Value;

use super::store::{self, AuditItem, ContentItem};
use crate::db::users::{self as user_store, UserRow};
use crate::db::{DbConnection, DbError};
use crate::lifecycle::{self, Policy, State};
use crate::product::person::People;

/// A state badge in the list and on a person's page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Badge {
    Active,
    DeactivatedSince(NaiveDateTime),
    FormerMember,
    DeletionScheduled(NaiveDateTime),
}

/// The dates of an account's lifecycle under its tenant's policy; None where they do not apply.
#[derive(Debug, Clone, Default)]
pub struct Dates {
    pub deactivated_at: Option<NaiveDateTime>,
    /// The sweep removes group memberships from then on (deactivation plus the grace period).
    pub memberships_removed_at: Option<NaiveDateTime>,
    /// The earliest time Remove Profile Fields is allowed.
    pub remove_profile_from: Option<NaiveDateTime>,
    /// Retention makes the account a Former Member then (`former_member_after_days`).
    pub former_member_scheduled: Option<NaiveDateTime>,
    pub former_member_since: Option<NaiveDateTime>,
    /// Retention deletes the account then (`delete_after_days`).
    pub deletion_at: Option<NaiveDateTime>,
}

pub fn dates(row: &UserRow, policy: &Policy) -> Dates {
    let inactive = row.lifecycle_state != State::Active;
    let deactivated_at = row.deactivated_at.filter(|_| inactive);
    Dates {
        deactivated_at,
        memberships_removed_at: deactivated_at.map(|t| t + policy.grace),
        remove_profile_from: (row.lifecycle_state == State::Deactivated)
            .then(|| lifecycle::former_member_allowed_at(row, policy))
            .flatten(),
        // The sweep's cutoff: the retention step, never before the grace period is over.
        former_member_scheduled: policy
            .former_member_after
            .filter(|_| row.lifecycle_state == State::Deactivated)
            .and_then(|after| deactivated_at.map(|t| t + after.max(policy.grace))),
        former_member_since: row.former_member_since,
        deletion_at: policy.delete_after.and_then(|after| deactivated_at.map(|t| t + after)),
    }
}

pub fn badges(row: &UserRow, policy: &Policy) -> Vec<Badge> {
    let dates = dates(row, policy);
    let mut badges = vec![match row.lifecycle_state {
        State::Active => Badge::Active,
        State::Deactivated => Badge::DeactivatedSince(dates.deactivated_at.unwrap_or(row.updated_at)),
        State::FormerMember => Badge::FormerMember,
    }];
    if let Some(at) = dates.deletion_at {
        badges.push(Badge::DeletionScheduled(at));
    }
    badges
}

/// A text attribute of the profile.
pub fn text<'a>(doc: &'a serde_json::Map<String, Value>, key: &str) -> Option<&'a str> {
    doc.get(key).and_then(Value::as_str)
}

/// The primary email, or the first one.
pub fn email(doc: &serde_json::Map<String, Value>) -> Option<String> {
    let items = doc.get("emails")?.as_array()?;
    let primary = items.iter().find(|i| i.get("primary").and_then(Value::as_bool) == Some(true));
    primary.or(items.first())?.get("value")?.as_str().map(str::to_owned)
}

/// One line of a person's timeline.
#[derive(Debug, Clone)]
pub enum Moment {
    Event { kind: String, at: NaiveDateTime },
    Audit(AuditItem),
}

impl Moment {
    pub fn at(&self) -> NaiveDateTime {
        match self {
            Moment::Event { at, .. } => *at,
            Moment::Audit(a) => a.at,
        }
    }
}

/// Everything a person's page shows, read together.
pub struct Person {
    pub row: UserRow,
    pub groups: Vec<(String, String)>,
    pub open_sessions: i64,
    pub content_counts: Vec<(String, i64)>,
    pub latest_content: Vec<ContentItem>,
    /// The name the person's content shows, as the product shows it (docs/product.md, "People"):
    /// the current name, or for a Former Member the one frozen at the transition.
    pub author_name: String,
    pub timeline: Vec<Moment>,
}

/// How many timeline lines and content items a page shows.
const SHOWN: i64 = 50;

pub fn person(
    conn: &mut DbConnection,
    tenant_id: &str,
    id: &str,
    now: NaiveDateTime,
) -> Result<Option<Person>, DbError> {
    let Some(read) = user_store::read(conn, tenant_id, id)? else {
        return Ok(None);
    };
    let groups = read.groups();
    let row = read.row;
    let mut timeline: Vec<Moment> = store::events_of(conn, tenant_id, id, SHOWN)?
        .into_iter()
        .map(|(kind, at)| Moment::Event { kind, at })
        .chain(store::audit_of(conn, tenant_id, id, SHOWN)?.into_iter().map(Moment::Audit))
        .collect();
    timeline.sort_by_key(|m| std::cmp::Reverse(m.at()));
    timeline.truncate(SHOWN as usize);
    Ok(Some(Person {
        groups,
        open_sessions: store::open_sessions(conn, row.pk, now)?,
        content_counts: store::content_counts(conn, row.pk)?,
        latest_content: store::latest_content(conn, row.pk, 10)?,
        author_name: People::load(conn, [row.pk])?.get(Some(row.pk), "").name,
        timeline,
        row,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::DeletePolicy;
    use chrono::Duration;

    fn row(state: State, deactivated_at: Option<NaiveDateTime>) -> UserRow {
        let t = NaiveDateTime::default();
        UserRow {
            pk: 1,
            id: "u".into(),
            user_name: "bjensen".into(),
            external_id: None,
            active: state == State::Active,
            lifecycle_state: state,
            deactivated_at,
            former_member_since: None,
            data: "{}".into(),
            created_at: t,
            updated_at: t,
            version: 1,
        }
    }

    fn policy(former_member_after: Option<i64>, delete_after: Option<i64>) -> Policy {
        Policy {
            grace: Duration::days(4),
            delete: DeletePolicy::DeactivateThenDelete,
            former_member_after: former_member_after.map(Duration::days),
            delete_after: delete_after.map(Duration::days),
            archive_export: false,
            archive_hold: Duration::days(7),
            archive_destination: crate::db::archive::Destination::Directory,
            event_retention: Some(Duration::days(90)),
        }
    }

    #[test]
    fn a_deactivated_accounts_dates_follow_the_grace_period_and_retention() {
        let at = NaiveDateTime::default() + Duration::days(10);
        let d = dates(&row(State::Deactivated, Some(at)), &policy(Some(2), Some(30)));
        assert_eq!(d.memberships_removed_at, Some(at + Duration::days(4)));
        assert_eq!(d.remove_profile_from, Some(at + Duration::days(4)));
        assert_eq!(d.former_member_scheduled, Some(at + Duration::days(4)), "never before the grace period");
        assert_eq!(d.deletion_at, Some(at + Duration::days(30)));
    }

    #[test]
    fn an_active_account_has_no_lifecycle_dates_and_one_badge() {
        let r = row(State::Active, None);
        let d = dates(&r, &policy(Some(2), Some(30)));
        assert!(d.deactivated_at.is_none() && d.remove_profile_from.is_none() && d.deletion_at.is_none());
        assert_eq!(badges(&r, &policy(None, Some(30))), vec![Badge::Active]);
    }

    #[test]
    fn retention_shows_a_scheduled_deletion_badge() {
        let at = NaiveDateTime::default();
        let b = badges(&row(State::Deactivated, Some(at)), &policy(None, Some(7)));
        assert_eq!(b, vec![Badge::DeactivatedSince(at), Badge::DeletionScheduled(at + Duration::days(7))]);
    }
}
