//! The account lifecycle (docs/lifecycle.md). Every change of an account's state goes through this
//! module — SCIM writes, the product API, the admin CLI and the background sweep alike — and
//! each transition's effects happen in the caller's single database transaction.
//!
//! | from          | deactivate | reactivate        | become Former Member              | delete                 |
//! |---------------|------------|-------------------|-----------------------------------|------------------------|
//! | active        | deactivated| no-op             | 409, deactivate first             | per tenant policy      |
//! | deactivated   | no-op      | active            | Former Member once grace has passed, else 409 | deleted    |
//! | Former Member | no-op      | 400 mutability    | no-op                             | deleted                |
//!
//! A refusal is a [`LifecycleError`], a sentence without an HTTP status: the SCIM API answers it
//! with the status and `scimType` in the table (chosen in `crate::routes::errors`), the CLI prints
//! the sentence.

use chrono::{Duration, NaiveDateTime};
use serde_json::{json, Value};

use crate::clock::time;
use crate::db::archive::{self, Destination};
use crate::db::groups as group_store;
use crate::db::records::{self, Records, Transition};
use crate::db::tenants::Tenant;
use crate::db::users::{self as store, Effects, NewUser, UserRow, UserWrite, WriteError};
use crate::db::{content, conversations, people, scrub, sessions, DbConnection, DbError};
use crate::scim::resource::Document;

/// The states of the table above, as the `lifecycle_state` column stores them.
pub use crate::db::lifecycle_state::LifecycleState as State;

pub const FORMER_MEMBER_NAME: &str = "Former Member";

/// Why a transition was refused or did not take place. The refusals' messages are what a SCIM
/// client reads as `detail` and what `roster user` prints.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    /// Former Member is final: no reactivation and no profile change.
    #[error("A Former Member cannot be reactivated or changed; provision a new account instead")]
    FormerMemberIsFinal,
    /// Only a deactivated account may become a Former Member.
    #[error("The account is active: deactivate it before making it a Former Member")]
    NotDeactivated,
    #[error("The account can become a Former Member from {} (deactivated plus the grace period)", time(*.allowed_at))]
    GracePeriodNotOver { allowed_at: NaiveDateTime },
    /// The tenant's `require-deactivated` delete policy.
    #[error("The tenant requires accounts to be deactivated before they are deleted")]
    DeactivateBeforeDelete,
    #[error(
        "A user with userName {0:?} already exists (userNames are compared regardless of case, width and Unicode form)"
    )]
    UserNameTaken(String),
    /// Another request changed the account after it was read; the caller starts over on what is
    /// there now.
    #[error("The account was changed by another request while this one was applied; read it again")]
    Changed,
    /// The tenant was deleted while the request was under way.
    #[error("The tenant no longer exists")]
    TenantGone,
    #[error(transparent)]
    Storage(#[from] DbError),
}

impl From<diesel::result::Error> for LifecycleError {
    fn from(err: diesel::result::Error) -> Self {
        LifecycleError::Storage(err.into())
    }
}

impl From<WriteError> for LifecycleError {
    fn from(err: WriteError) -> Self {
        match err {
            WriteError::UserNameTaken(name) => LifecycleError::UserNameTaken(name),
            WriteError::Changed => LifecycleError::Changed,
            WriteError::TenantGone => LifecycleError::TenantGone,
            WriteError::Db(e) => e.into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeletePolicy {
    /// Deactivation's and deletion's effects in one transaction (the default).
    DeactivateThenDelete,
    /// 409 for an active account, as the product's own admin panel behaves.
    RequireDeactivated,
    /// DELETE only deactivates (a soft delete).
    DeactivateOnly,
}

/// A tenant's lifecycle settings.
#[derive(Debug, Clone)]
pub struct Policy {
    pub grace: Duration,
    pub delete: DeletePolicy,
    pub former_member_after: Option<Duration>,
    pub delete_after: Option<Duration>,
    pub archive_export: bool,
    /// How long the export of a deleted account waits for its destination.
    pub archive_hold: Duration,
    /// Where that export goes: the tenant's archive URL when it has one, else its directory.
    pub archive_destination: Destination,
    /// How long events are kept (the sweep purges older ones); `None` keeps them.
    pub event_retention: Option<Duration>,
}

impl Policy {
    pub fn of(tenant: &Tenant) -> Policy {
        let days = |d: i32| Duration::days(i64::from(d.max(0)));
        Policy {
            grace: days(tenant.grace_days),
            delete: match tenant.delete_policy.as_str() {
                "require-deactivated" => DeletePolicy::RequireDeactivated,
                "deactivate-only" => DeletePolicy::DeactivateOnly,
                _ => DeletePolicy::DeactivateThenDelete,
            },
            former_member_after: tenant.former_member_after_days.map(days),
            delete_after: tenant.delete_after_days.map(days),
            archive_export: tenant.archive_export,
            archive_hold: Duration::hours(i64::from(tenant.archive_hold_hours.max(1))),
            archive_destination: if tenant.archive_url.is_some() { Destination::Url } else { Destination::Directory },
            event_retention: tenant.event_retention_days.map(days),
        }
    }
}

/// Who acts, in which tenant, under which policy, and when.
pub struct Actor<'a> {
    pub tenant_id: &'a str,
    pub name: &'a str,
    pub policy: &'a Policy,
    pub now: NaiveDateTime,
}

impl Actor<'_> {
    fn event(&self, conn: &mut DbConnection, kind: &str, user_id: &str, payload: Value) -> Result<(), LifecycleError> {
        Ok(records::add_event(conn, self.tenant_id, kind, Some(user_id), &payload, self.now)?)
    }

    /// A transition: its event (`kind`, `payload`) and its audit entry (`action`, the states).
    fn transition(
        &self,
        conn: &mut DbConnection,
        (kind, payload): (&str, Value),
        action: &'static str,
        user_id: &str,
        (before, after): (Option<State>, Option<State>),
    ) -> Result<(), LifecycleError> {
        let mut records = Records { transition: Some(self.audited(action, before, after)), ..Records::default() };
        records.event(kind, &payload);
        Ok(records.write(conn, self.tenant_id, user_id, self.now)?)
    }

    /// A transition's audit entry, for [`Records`].
    fn audited(&self, action: &'static str, before: Option<State>, after: Option<State>) -> Transition<'_> {
        crate::metrics::lifecycle_transition(action);
        Transition { actor: self.name, action, before: before.map(State::as_str), after: after.map(State::as_str) }
    }
}

/// What a write stores: `doc` as the profile, in `state` since the times given.
fn stored(
    doc: &Document,
    state: State,
    deactivated_at: Option<NaiveDateTime>,
    former_member_since: Option<NaiveDateTime>,
) -> UserWrite<'_> {
    UserWrite { doc, active: state == State::Active, lifecycle_state: state, deactivated_at, former_member_since }
}

/// A new account: active, or deactivated when provisioned with `active: false`. It needs no
/// policy (the state is the one asked for), and on PostgreSQL it is one statement.
pub fn create(
    conn: &mut DbConnection,
    tenant_id: &str,
    actor: &str,
    now: NaiveDateTime,
    account: &NewAccount<'_>,
) -> Result<UserRow, LifecycleError> {
    Ok(crate::db::write::insert_user(conn, tenant_id, creation(actor, now, account), now)?)
}

/// New accounts, as [`create`] makes each: on PostgreSQL all of them one statement (a Bulk
/// request's creates). Each has its own result (a taken userName fails only its own); the
/// outer error is a failure of them all, which wrote nothing on PostgreSQL.
pub fn create_many(
    conn: &mut DbConnection,
    tenant_id: &str,
    actor: &str,
    now: NaiveDateTime,
    accounts: &[NewAccount<'_>],
) -> Result<Vec<Result<UserRow, LifecycleError>>, LifecycleError> {
    let users: Vec<NewUser<'_>> = accounts.iter().map(|account| creation(actor, now, account)).collect();
    let rows = crate::db::write::insert_users(conn, tenant_id, &users, now)?;
    Ok(rows.into_iter().map(|row| row.map_err(LifecycleError::from)).collect())
}

/// An account to create: its id, its profile, and whether it starts active.
pub struct NewAccount<'a> {
    pub id: &'a str,
    pub doc: &'a Document,
    pub active: bool,
}

/// What creating `account` writes: the row, its `user.created` event and its audit entry.
fn creation<'a>(actor: &'a str, now: NaiveDateTime, account: &NewAccount<'a>) -> NewUser<'a> {
    let NewAccount { id, doc, active } = *account;
    let state = if active { State::Active } else { State::Deactivated };
    let mut records = Records::default();
    let payload = json!({"id": id, "state": state.as_str(), records::IDENTIFIERS: identifiers(doc)});
    records.event("user.created", &payload);
    records.transition = Some(Transition { actor, action: "create", before: None, after: Some(state.as_str()) });
    NewUser { id, write: stored(doc, state, (!active).then_some(now), None), records }
}

/// What a consumer links an account by in its own systems: the userName and externalId. Only the
/// events in [`records::IDENTIFYING_KINDS`] carry them, and they are removed from those events
/// when the account becomes a Former Member or is deleted (`records::forget_identifiers`).
fn identifiers(doc: &Document) -> Value {
    let mut ids = serde_json::Map::new();
    for name in ["userName", "externalId"] {
        if let Some(value) = doc.get(name) {
            ids.insert(name.into(), value.clone());
        }
    }
    Value::Object(ids)
}

/// The names of the attributes that differ between two profiles, sorted: top-level attributes
/// by name, an extension's by its URN and name (`urn:…:enterprise:2.0:User:department`). Events
/// name what changed this way instead of copying values, which would outlive the profile.
pub fn changed_attributes(before: &Document, after: &Document) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for (name, old) in before {
        match (old, after.get(name)) {
            (Value::Object(o), Some(Value::Object(n))) if name.starts_with("urn:") => {
                for sub in o.keys().chain(n.keys().filter(|k| !o.contains_key(*k))) {
                    if o.get(sub) != n.get(sub) {
                        names.push(format!("{name}:{sub}"));
                    }
                }
            }
            (old, new) if Some(old) != new => names.push(name.clone()),
            _ => {}
        }
    }
    names.extend(after.keys().filter(|k| !before.contains_key(*k)).cloned());
    names.retain(|n| n != "schemas");
    names.sort();
    names
}

/// Deactivation: every session revoked at once, memberships scheduled for removal after the
/// grace period (the sweep removes them), profile and content kept.
pub fn deactivate(conn: &mut DbConnection, actor: &Actor<'_>, row: &UserRow) -> Result<UserRow, LifecycleError> {
    if row.lifecycle_state != State::Active {
        return Ok(row.clone());
    }
    let mut effects = Effects::default();
    let doc = row.document();
    let write = deactivation(actor, row, &doc, &mut effects);
    Ok(crate::db::write::update_user(conn, actor.tenant_id, row, &doc, &write, actor.now, &effects)?)
}

/// The write and effects that deactivate the active account `row`, with `doc` as its profile.
fn deactivation<'a>(
    actor: &'a Actor<'_>,
    row: &UserRow,
    doc: &'a Document,
    effects: &mut Effects<'a>,
) -> UserWrite<'a> {
    effects.revoke_sessions = true;
    effects.records.event(
        "user.deactivated",
        &json!({"id": row.id, "deactivatedAt": time(actor.now), "membershipsRemovedAt": time(actor.now + actor.policy.grace)}),
    );
    effects.records.transition = Some(actor.audited("deactivate", Some(State::Active), Some(State::Deactivated)));
    stored(doc, State::Deactivated, Some(actor.now), None)
}

/// Reactivation keeps all data; the pending membership removal lapses with `deactivatedAt`.
pub fn reactivate(conn: &mut DbConnection, actor: &Actor<'_>, row: &UserRow) -> Result<UserRow, LifecycleError> {
    match row.lifecycle_state {
        State::Active => Ok(row.clone()),
        State::FormerMember => Err(LifecycleError::FormerMemberIsFinal),
        State::Deactivated => {
            let mut effects = Effects::default();
            let doc = row.document();
            let write = reactivation(actor, row, &doc, &mut effects);
            Ok(crate::db::write::update_user(conn, actor.tenant_id, row, &doc, &write, actor.now, &effects)?)
        }
    }
}

/// The write and effects that reactivate the deactivated account `row`, with `doc` as its profile.
fn reactivation<'a>(
    actor: &'a Actor<'_>,
    row: &UserRow,
    doc: &'a Document,
    effects: &mut Effects<'a>,
) -> UserWrite<'a> {
    effects.records.event("user.reactivated", &json!({"id": row.id}));
    effects.records.transition = Some(actor.audited("reactivate", Some(State::Deactivated), Some(State::Active)));
    stored(doc, State::Active, None, None)
}

/// When a deactivated account may become a Former Member.
pub fn former_member_allowed_at(row: &UserRow, policy: &Policy) -> Option<NaiveDateTime> {
    row.deactivated_at.map(|t| t + policy.grace)
}

/// Former Member: the profile is removed, the account stays (readable, matched by id) with the
/// name "Former Member" and an opaque userName, so the old userName and externalId are free.
pub fn become_former_member(
    conn: &mut DbConnection,
    actor: &Actor<'_>,
    row: &UserRow,
) -> Result<UserRow, LifecycleError> {
    match row.lifecycle_state {
        State::FormerMember => return Ok(row.clone()),
        State::Active => return Err(LifecycleError::NotDeactivated),
        State::Deactivated => {}
    }
    let allowed_at = former_member_allowed_at(row, actor.policy).unwrap_or(actor.now);
    if actor.now < allowed_at {
        return Err(LifecycleError::GracePeriodNotOver { allowed_at });
    }
    let mut doc = Document::new();
    doc.insert("userName".into(), json!(format!("former-member-{}", uuid::Uuid::new_v4().simple())));
    doc.insert("displayName".into(), json!(FORMER_MEMBER_NAME));
    doc.insert("name".into(), json!({"formatted": FORMER_MEMBER_NAME}));
    let write = stored(&doc, State::FormerMember, row.deactivated_at, Some(actor.now));
    let effects = Effects { revoke_sessions: true, ..Effects::default() };
    let before = row.document();
    let updated = crate::db::write::update_user(conn, actor.tenant_id, row, &before, &write, actor.now, &effects)?;
    // What they wrote keeps the name they had until now, without a link (docs/product.md, "People").
    people::freeze_name(conn, row)?;
    scrub::personal_data_removed();
    let mut updated = updated;
    if remove_memberships(conn, actor, row)? > 0 {
        // `remove_memberships` stepped the version again (the user's `groups` changed): the
        // answer carries the version stored, or its ETag would be stale at once.
        updated.version += 1;
    }
    // The event names what was removed, never the values; earlier events lose the identifiers.
    let removed = changed_attributes(&before, &doc);
    records::forget_identifiers(conn, actor.tenant_id, &row.id)?;
    let event =
        ("user.former_member", json!({"id": row.id, "formerMemberSince": time(actor.now), "attributes": removed}));
    let states = (Some(State::Deactivated), Some(State::FormerMember));
    actor.transition(conn, event, "former_member", &row.id, states)?;
    Ok(updated)
}

/// Removes every group membership of the user, one event each, and every conversation
/// membership (the product's chat membership ends with the group memberships; their messages
/// stay). Answers the number of groups left.
pub fn remove_memberships(conn: &mut DbConnection, actor: &Actor<'_>, row: &UserRow) -> Result<usize, LifecycleError> {
    conversations::leave_all(conn, row.pk)?;
    let mut removed = 0;
    for (group_pk, group_id) in group_store::memberships_of_user(conn, row.pk)? {
        if group_store::remove_user_membership(conn, group_pk, row.pk, actor.now)? {
            removed += 1;
            actor.event(conn, "membership.removed", &row.id, json!({"userId": row.id, "groupId": group_id}))?;
        }
    }
    if removed > 0 {
        // The user's `groups` changed: a new version, or If-None-Match would answer 304 with
        // the old groups (RFC 7644 §3.14).
        store::touch(conn, row.pk, actor.now)?;
    }
    Ok(removed)
}

/// What a DELETE did.
#[derive(Debug)]
pub enum Deleted {
    Gone,
    /// The tenant's policy keeps the account, deactivated.
    Deactivated(UserRow),
}

/// Deletion: the account and everything it wrote go, in one transaction; a PII-free tombstone
/// and the audit entries remain.
pub fn delete(conn: &mut DbConnection, actor: &Actor<'_>, row: &UserRow) -> Result<Deleted, LifecycleError> {
    let row = match (row.lifecycle_state, actor.policy.delete) {
        (State::Active, DeletePolicy::RequireDeactivated) => return Err(LifecycleError::DeactivateBeforeDelete),
        (_, DeletePolicy::DeactivateOnly) => return soft_delete(conn, actor, row).map(Deleted::Deactivated),
        (State::Active, DeletePolicy::DeactivateThenDelete) => deactivate(conn, actor, row)?,
        // The row was read without a lock: on PostgreSQL another node may since have reactivated
        // the account (which the policy may forbid deleting) or deleted it. The deletion holds
        // only for the version read; otherwise the caller starts over on what is there now.
        _ if !store::lock_at_version(conn, row.pk, row.version)? => return Err(LifecycleError::Changed),
        _ => row.clone(),
    };
    let before = row.lifecycle_state;
    if actor.policy.archive_export {
        // The export waits, sealed, in the archive outbox (same transaction, before the rows go)
        // until the sink has written it to the tenant's destination; the event says so, without
        // the data.
        let export = archive_export(conn, actor, &row)?;
        let destination = actor.policy.archive_destination;
        let expires = actor.now + actor.policy.archive_hold;
        archive::queue(conn, actor.tenant_id, &row.id, destination, &export, actor.now, expires)?;
        actor.event(conn, "user.exported", &row.id, json!({"id": row.id, "destination": destination.as_str()}))?;
    }
    records::forget_identifiers(conn, actor.tenant_id, &row.id)?;
    remove_memberships(conn, actor, &row)?;
    content::delete_by_author(conn, row.pk)?;
    conversations::delete_by_sender(conn, row.pk)?;
    sessions::delete_all(conn, row.pk)?;
    store::delete(conn, row.pk)?;
    scrub::personal_data_removed();
    records::add_tombstone(conn, actor.tenant_id, &row.id, actor.now)?;
    let event = ("user.deleted", json!({"id": row.id, "deletedAt": time(actor.now)}));
    actor.transition(conn, event, "delete", &row.id, (Some(before), None))?;
    Ok(Deleted::Gone)
}

/// The export of an account for its archive, as JSON Lines: the account first (`"type":
/// "user"`: id, state, dates, full profile), then one line per item it wrote (`"type":
/// "content"`), oldest first.
fn archive_export(conn: &mut DbConnection, actor: &Actor<'_>, row: &UserRow) -> Result<Vec<u8>, LifecycleError> {
    let account = json!({
        "type": "user",
        "id": row.id,
        "state": row.lifecycle_state.as_str(),
        "deactivatedAt": row.deactivated_at.map(time),
        "formerMemberSince": row.former_member_since.map(time),
        "exportedAt": time(actor.now),
        "profile": Value::Object(row.document()),
    });
    let mut lines = vec![account];
    lines.extend(content::by_author(conn, row.pk)?.into_iter().map(|c| {
        json!({"type": "content", "id": c.id, "kind": c.kind, "body": c.body, "parentId": c.parent_id, "createdAt": time(c.created_at)})
    }));
    lines.extend(conversations::by_sender(conn, row.pk)?.into_iter().map(|m| {
        json!({"type": "content", "id": m.id, "kind": "conversationMessage", "body": m.body, "conversationId": m.conversation_id, "createdAt": time(m.created_at)})
    }));
    let mut text = Vec::new();
    for line in lines {
        text.extend(line.to_string().into_bytes());
        text.push(b'\n');
    }
    Ok(text)
}

/// A DELETE under the `deactivate-only` policy: the account is deactivated and keeps what it
/// wrote for the product, but is deleted for SCIM (RFC 7644 §3.6: every later request about it
/// answers 404): out of every read, filter, count and group, its userName free again.
fn soft_delete(conn: &mut DbConnection, actor: &Actor<'_>, row: &UserRow) -> Result<UserRow, LifecycleError> {
    let row = match row.lifecycle_state {
        State::Active => deactivate(conn, actor, row)?,
        // Read without a lock, as in `delete`: another node may since have reactivated the
        // account, which must not then be hidden with its sessions open. The caller starts over.
        _ if !store::lock_at_version(conn, row.pk, row.version)? => return Err(LifecycleError::Changed),
        _ => row.clone(),
    };
    remove_memberships(conn, actor, &row)?;
    store::hide(conn, row.pk, &row.id, actor.now)?;
    let state = row.lifecycle_state;
    let event = ("user.deleted", json!({"id": row.id, "deletedAt": time(actor.now), "contentKept": true}));
    actor.transition(conn, event, "delete", &row.id, (Some(state), Some(state)))?;
    Ok(row)
}

/// The SCIM request that changed a profile (RFC 7644 §3.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Put,
    Patch,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Put => "PUT",
            Method::Patch => "PATCH",
        }
    }
}

/// A SCIM PUT or PATCH result: the new profile, `active`, and the Roster extension's
/// `formerMember` when given. The profile and `active` are one write (one statement on
/// PostgreSQL), with the events of both in that order; becoming a Former Member follows, and
/// only then does the change take more than one statement (see [`update_is_one_statement`]).
pub fn update(
    conn: &mut DbConnection,
    actor: &Actor<'_>,
    row: &UserRow,
    method: Method,
    doc: &Document,
    active: bool,
    former_member: Option<bool>,
) -> Result<UserRow, LifecycleError> {
    if row.lifecycle_state == State::FormerMember {
        // Okta and Entra re-send the state they last saw; only real changes are refused.
        if active || former_member == Some(false) || *doc != row.document() {
            return Err(LifecycleError::FormerMemberIsFinal);
        }
        return Ok(row.clone());
    }
    // The stored profile, parsed once for every comparison below.
    let before = row.document();
    let doc_changed = *doc != before;
    let mut effects = Effects::default();
    if doc_changed {
        let changed = changed_attributes(&before, doc);
        // The method, so that a SET stream tells a replacement from a modification (RFC 9967
        // prov:put and prov:patch).
        let mut payload = json!({"id": row.id, "method": method.as_str(), "attributes": changed});
        if changed.iter().any(|n| n == "userName" || n == "externalId") {
            payload[records::IDENTIFIERS] = identifiers(doc);
        }
        effects.records.event("user.updated", &payload);
    }
    let write = match (row.active, active) {
        (true, false) => deactivation(actor, row, doc, &mut effects),
        (false, true) => reactivation(actor, row, doc, &mut effects),
        _ => stored(doc, row.lifecycle_state, row.deactivated_at, row.former_member_since),
    };
    let mut row = row.clone();
    if doc_changed || active != row.active {
        row = crate::db::write::update_user(conn, actor.tenant_id, &row, &before, &write, actor.now, &effects)?;
    }
    if former_member == Some(true) {
        row = become_former_member(conn, actor, &row)?;
    }
    Ok(row)
}

/// Whether [`update`] of `row` to `former_member` is one statement on PostgreSQL (so needs no
/// transaction around it): unless it makes the account a Former Member, which also removes its
/// memberships one by one.
pub fn update_is_one_statement(row: &UserRow, former_member: Option<bool>) -> bool {
    former_member != Some(true) || row.lifecycle_state == State::FormerMember
}
