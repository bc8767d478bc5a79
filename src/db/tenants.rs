//! Tenants: every other row belongs to one.

use std::sync::LazyLock;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use regex::Regex;
use validator::{Validate, ValidationError};

use super::schema::{resource_counts, tenants};
use super::{is_unique_violation, now, DbConnection, DbError};
use crate::validation::describe;

pub const DEFAULT_TENANT: &str = "default";

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = tenants)]
pub struct Tenant {
    pub id: String,
    pub name: String,
    pub created_at: NaiveDateTime,
    pub grace_days: i32,
    pub delete_policy: String,
    pub former_member_after_days: Option<i32>,
    pub delete_after_days: Option<i32>,
    pub archive_export: bool,
    /// Refuse values that break only a SHOULD of RFC 7643 (see `resource::strict_refusal`).
    pub strict_validation: bool,
    /// Days events are kept before the sweep purges them; `None` keeps them for good.
    pub event_retention_days: Option<i32>,
    /// The directory on the server that receives the export of a deleted account.
    pub archive_dir: Option<String>,
    /// Hours an export may wait for its destination before it is destroyed (and an alert raised).
    pub archive_hold_hours: i32,
    /// The URL that receives the export of a deleted account as a signed POST (instead of the
    /// directory: a tenant has one kind of archive destination at a time).
    pub archive_url: Option<String>,
    /// Whether the archive URL may be http, or reach loopback and private addresses.
    pub archive_allow_private: bool,
    /// The archive URL's signing secret, sealed (`delivery::signing::SealKey`).
    pub archive_secret: Option<String>,
}

/// An archive URL as `roster tenant set --archive-url` gives it: checked, and with its new
/// signing secret already sealed (`delivery::archive::url_destination` makes it).
#[derive(Debug, Clone)]
pub struct ArchiveUrl {
    pub url: String,
    pub allow_private: bool,
    pub sealed_secret: String,
}

/// Events are kept this long unless the tenant says otherwise.
pub const DEFAULT_EVENT_RETENTION_DAYS: i32 = 90;
/// An export waits this long (a week) for its destination unless the tenant says otherwise.
pub const DEFAULT_ARCHIVE_HOLD_HOURS: i32 = 168;

/// A change to a tenant's lifecycle policy (`roster tenant set`); `None` leaves a setting as it
/// is. [`set_policy`] checks the rules written on the fields before it changes anything.
#[derive(Debug, Default, Validate)]
pub struct PolicyChange {
    /// Day counts stop at a century: past it a step would never run.
    #[validate(range(min = 0, max = 36_500))]
    pub grace_days: Option<i32>,
    #[validate(custom(function = "known_delete_policy"))]
    pub delete_policy: Option<String>,
    /// `Some(None)` turns the retention step off.
    #[validate(range(min = 0, max = 36_500))]
    pub former_member_after_days: Option<Option<i32>>,
    #[validate(range(min = 0, max = 36_500))]
    pub delete_after_days: Option<Option<i32>>,
    pub archive_export: Option<bool>,
    pub strict_validation: Option<bool>,
    /// `Some(None)` keeps events for good. At least a day: a feed reader needs time to read.
    #[validate(range(min = 1, max = 36_500))]
    pub event_retention_days: Option<Option<i32>>,
    /// `Some(None)` removes the destination (refused while archive export is on). A directory
    /// clears the archive URL.
    pub archive_dir: Option<Option<String>>,
    /// `Some(None)` removes the destination (refused while archive export is on). A URL clears
    /// the archive directory.
    pub archive_url: Option<Option<ArchiveUrl>>,
    /// An hour to a year.
    #[validate(range(min = 1, max = 8_760))]
    pub archive_hold_hours: Option<i32>,
}

pub const DELETE_POLICIES: [&str; 3] = ["deactivate-then-delete", "require-deactivated", "deactivate-only"];

fn known_delete_policy(policy: &str) -> Result<(), ValidationError> {
    if DELETE_POLICIES.contains(&policy) {
        return Ok(());
    }
    let message = format!("delete policy must be one of {}; got {policy:?}", DELETE_POLICIES.join(", "));
    Err(ValidationError::new("delete_policy").with_message(message.into()))
}

/// An archive directory is an absolute path to an existing directory of the machine that runs
/// the change (the server's, where `roster tenant set` is meant to run), so that a typing error
/// is caught when the policy is set rather than when the first export waits in vain.
fn usable_archive_dir(dir: &str) -> Result<(), TenantError> {
    let refuse = |why: &str| Err(TenantError::InvalidPolicy(format!("archive directory {dir:?} {why}")));
    let path = std::path::Path::new(dir);
    if !path.is_absolute() {
        return refuse("must be an absolute path");
    }
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => refuse("is not a directory"),
        Err(e) => refuse(&format!("cannot be used: {e}")),
    }
}

/// Letters, digits, `-`, `_` and `.`: a tenant's name is typed on command lines and read in
/// logs, so it holds nothing a shell or a log reader could take for something else.
static TENANT_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new("^[A-Za-z0-9._-]*$").expect("the tenant name pattern compiles"));

/// A tenant as `roster tenant create` names it.
#[derive(Validate)]
struct NewTenant<'a> {
    #[validate(length(min = 1, max = 64), regex(path = *TENANT_NAME))]
    name: &'a str,
}

#[derive(Debug, thiserror::Error)]
pub enum TenantError {
    #[error("a tenant named {0:?} already exists")]
    Exists(String),
    #[error("tenant names are 1 to 64 characters of letters, digits, '-', '_' and '.'; got {0:?}")]
    InvalidName(String),
    #[error("no tenant named {0:?}")]
    Unknown(String),
    #[error("{0}")]
    InvalidPolicy(String),
    #[error(
        "archive export needs a destination: set one with --archive-dir PATH or --archive-url URL in the same \
         command or before (exports are delivered there before a deleted account's data leaves Roster)"
    )]
    ArchiveWithoutDestination,
    #[error("an archive destination is a directory or a URL, not both: give --archive-dir or --archive-url")]
    TwoArchiveDestinations,
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for TenantError {
    fn from(e: diesel::result::Error) -> Self {
        TenantError::Db(e.into())
    }
}

pub fn create(conn: &mut DbConnection, name: &str) -> Result<Tenant, TenantError> {
    // The error names the whole rule, whichever part of it the name broke.
    NewTenant { name }.validate().map_err(|_| TenantError::InvalidName(name.to_owned()))?;
    let tenant = Tenant {
        id: uuid::Uuid::new_v4().to_string(),
        name: name.to_owned(),
        created_at: now(),
        grace_days: 4,
        delete_policy: "deactivate-then-delete".to_owned(),
        former_member_after_days: None,
        delete_after_days: None,
        archive_export: false,
        strict_validation: false,
        event_retention_days: Some(DEFAULT_EVENT_RETENTION_DAYS),
        archive_dir: None,
        archive_hold_hours: DEFAULT_ARCHIVE_HOLD_HOURS,
        archive_url: None,
        archive_allow_private: false,
        archive_secret: None,
    };
    match diesel::insert_into(tenants::table).values(&tenant).execute(conn) {
        Ok(_) => Ok(tenant),
        Err(e) if is_unique_violation(&e) => Err(TenantError::Exists(name.to_owned())),
        Err(e) => Err(e.into()),
    }
}

/// Creates the `default` tenant unless it exists; safe when several nodes start at once.
pub fn ensure_default(conn: &mut DbConnection) -> Result<Tenant, TenantError> {
    // Read first: a command started while a writer holds SQLite's lock then needs no lock.
    if let Some(tenant) = by_name(conn, DEFAULT_TENANT)? {
        return Ok(tenant);
    }
    match create(conn, DEFAULT_TENANT) {
        Err(TenantError::Exists(_)) => Ok(by_name(conn, DEFAULT_TENANT)?.expect("the default tenant exists")),
        other => other,
    }
}

pub fn list(conn: &mut DbConnection) -> Result<Vec<Tenant>, DbError> {
    Ok(tenants::table.order(tenants::name).select(Tenant::as_select()).load(conn)?)
}

pub fn by_name(conn: &mut DbConnection, name: &str) -> Result<Option<Tenant>, DbError> {
    Ok(tenants::table.filter(tenants::name.eq(name)).select(Tenant::as_select()).first(conn).optional()?)
}

pub fn by_id(conn: &mut DbConnection, id: &str) -> Result<Option<Tenant>, DbError> {
    // Read by every write: on the backend's own connection, where it stays prepared.
    Ok(on_backend!(conn, c => tenants::table.find(id).select(Tenant::as_select()).first(c).optional())?)
}

/// Deleting a tenant removes everything it owns (foreign keys cascade) and so invalidates its
/// tokens. Its resource counts go last: the triggers that keep them fire while its users cascade.
pub fn delete(conn: &mut DbConnection, name: &str) -> Result<bool, DbError> {
    conn.transaction(|conn| {
        let Some(id) =
            tenants::table.filter(tenants::name.eq(name)).select(tenants::id).first::<String>(conn).optional()?
        else {
            return Ok(false);
        };
        diesel::delete(tenants::table.find(&id)).execute(conn)?;
        diesel::delete(resource_counts::table.filter(resource_counts::tenant_id.eq(&id))).execute(conn)?;
        Ok(true)
    })
}

/// How many resources of a type (`User`, `Group`) a tenant holds, from the counts kept beside
/// the rows in the same transactions: by triggers (see the `resource_counts` migration), and on
/// SQLite by the user create itself (`db::sqlite::write`, migration `writes_without_triggers`).
pub fn resource_count(conn: &mut DbConnection, tenant_id: &str, resource_type: &str) -> QueryResult<i64> {
    let slots: Vec<i64> = resource_counts::table
        .filter(resource_counts::tenant_id.eq(tenant_id))
        .filter(resource_counts::resource_type.eq(resource_type))
        .select(resource_counts::n)
        .load(conn)?;
    Ok(slots.iter().sum())
}

/// Changes a tenant's lifecycle policy and returns the tenant as it now is.
pub fn set_policy(conn: &mut DbConnection, name: &str, change: &PolicyChange) -> Result<Tenant, TenantError> {
    change.validate().map_err(|e| TenantError::InvalidPolicy(describe(&e, str::to_owned)))?;
    if let Some(Some(dir)) = &change.archive_dir {
        usable_archive_dir(dir)?;
    }
    conn.transaction(|conn| change_policy(conn, name, change))
}

fn change_policy(conn: &mut DbConnection, name: &str, change: &PolicyChange) -> Result<Tenant, TenantError> {
    let tenant = by_name(conn, name)?.ok_or_else(|| TenantError::Unknown(name.to_owned()))?;
    let exporting = change.archive_export.unwrap_or(tenant.archive_export);
    // One kind of destination at a time: a new one of either kind replaces the other.
    let (dir, url) = match (&change.archive_dir, &change.archive_url) {
        (Some(Some(_)), Some(Some(_))) => return Err(TenantError::TwoArchiveDestinations),
        (Some(Some(_)), _) => (true, false),
        (_, Some(Some(_))) => (false, true),
        (dir, url) => (
            dir.as_ref().map_or(tenant.archive_dir.is_some(), Option::is_some),
            url.as_ref().map_or(tenant.archive_url.is_some(), Option::is_some),
        ),
    };
    let destination = dir || url;
    // Refused only when the change is about the archive: a tenant upgraded with export on and no
    // destination can still change its other settings (its exports wait, see docs/operations.md).
    let about_archive =
        change.archive_export == Some(true) || change.archive_dir.is_some() || change.archive_url.is_some();
    if exporting && !destination && about_archive {
        return Err(TenantError::ArchiveWithoutDestination);
    }
    let target = tenants::table.find(&tenant.id);
    if let Some(d) = change.grace_days {
        diesel::update(target).set(tenants::grace_days.eq(d)).execute(conn)?;
    }
    if let Some(p) = &change.delete_policy {
        diesel::update(target).set(tenants::delete_policy.eq(p)).execute(conn)?;
    }
    if let Some(d) = change.former_member_after_days {
        diesel::update(target).set(tenants::former_member_after_days.eq(d)).execute(conn)?;
    }
    if let Some(d) = change.delete_after_days {
        diesel::update(target).set(tenants::delete_after_days.eq(d)).execute(conn)?;
    }
    if let Some(a) = change.archive_export {
        diesel::update(target).set(tenants::archive_export.eq(a)).execute(conn)?;
    }
    if let Some(s) = change.strict_validation {
        diesel::update(target).set(tenants::strict_validation.eq(s)).execute(conn)?;
    }
    if let Some(d) = change.event_retention_days {
        diesel::update(target).set(tenants::event_retention_days.eq(d)).execute(conn)?;
    }
    let no_url = || {
        (
            tenants::archive_url.eq(None::<String>),
            tenants::archive_allow_private.eq(false),
            tenants::archive_secret.eq(None::<String>),
        )
    };
    if let Some(d) = &change.archive_dir {
        diesel::update(target).set(tenants::archive_dir.eq(d)).execute(conn)?;
        if d.is_some() {
            diesel::update(target).set(no_url()).execute(conn)?;
        }
    }
    match &change.archive_url {
        Some(Some(u)) => {
            let set = (
                tenants::archive_url.eq(&u.url),
                tenants::archive_allow_private.eq(u.allow_private),
                tenants::archive_secret.eq(&u.sealed_secret),
                tenants::archive_dir.eq(None::<String>),
            );
            diesel::update(target).set(set).execute(conn)?;
        }
        Some(None) => {
            diesel::update(target).set(no_url()).execute(conn)?;
        }
        None => {}
    }
    if let Some(h) = change.archive_hold_hours {
        diesel::update(target).set(tenants::archive_hold_hours.eq(h)).execute(conn)?;
    }
    Ok(by_id(conn, &tenant.id)?.expect("the tenant still exists"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(change: PolicyChange) -> String {
        describe(&change.validate().expect_err("the change is refused"), str::to_owned)
    }

    #[test]
    fn day_counts_outside_a_century_are_refused_naming_the_setting() {
        assert_eq!(
            refusal(PolicyChange { grace_days: Some(-1), ..Default::default() }),
            "grace_days must be between 0 and 36500; got -1"
        );
        assert_eq!(
            refusal(PolicyChange { former_member_after_days: Some(Some(36_501)), ..Default::default() }),
            "former_member_after_days must be between 0 and 36500; got 36501"
        );
        assert_eq!(
            refusal(PolicyChange { delete_after_days: Some(Some(-30)), ..Default::default() }),
            "delete_after_days must be between 0 and 36500; got -30"
        );
        let edges = PolicyChange {
            grace_days: Some(0),
            former_member_after_days: Some(Some(36_500)),
            delete_after_days: Some(None),
            ..Default::default()
        };
        assert!(edges.validate().is_ok());
    }

    #[test]
    fn a_delete_policy_is_one_of_the_three() {
        let never = PolicyChange { delete_policy: Some("never".into()), ..Default::default() };
        assert_eq!(
            refusal(never),
            "delete policy must be one of deactivate-then-delete, require-deactivated, deactivate-only; got \"never\""
        );
        for policy in DELETE_POLICIES {
            assert!(PolicyChange { delete_policy: Some(policy.into()), ..Default::default() }.validate().is_ok());
        }
    }

    #[test]
    fn tenant_names_are_short_words_of_letters_digits_and_dot_dash_underscore() {
        for good in ["default", "acme-corp", "a", "eu_west.2", &"x".repeat(64)] {
            assert!(NewTenant { name: good }.validate().is_ok(), "{good:?}");
        }
        for bad in ["", &"x".repeat(65), "acme corp", "acme/prod", "ünïcode", "tab\there"] {
            assert!(NewTenant { name: bad }.validate().is_err(), "{bad:?}");
        }
    }
}
