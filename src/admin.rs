//! Lifecycle transitions an administrator asks for by hand (`roster user …`). They go through
//! the same lifecycle rules as SCIM; the actor recorded in the audit log is "admin". The admin
//! panel applies its transitions through [`apply_as`] under the signed-in admin's name.

use chrono::NaiveDateTime;

use crate::db::tenants::Tenant;
use crate::db::users::{self as user_store, UserRow};
use crate::db::{self, tenants, write_transaction, DbConnection};
use crate::lifecycle::{self, Actor, Deleted, LifecycleError, Policy};

/// The actor of the command line in the audit log.
pub const ACTOR: &str = "admin";

pub enum Transition {
    Deactivate,
    Reactivate,
    FormerMember,
    Delete,
}

pub struct Action {
    pub tenant: String,
    pub user_id: String,
    pub transition: Transition,
}

/// Why an administrator's transition did not happen; printed as the sentence it is.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("no tenant named {0:?}")]
    UnknownTenant(String),
    #[error("No User with id {0:?}")]
    NoSuchUser(String),
    /// The lifecycle refused the transition (the message gives its rule).
    #[error(transparent)]
    Refused(#[from] LifecycleError),
    #[error(transparent)]
    Db(#[from] db::DbError),
}

impl From<diesel::result::Error> for AdminError {
    fn from(err: diesel::result::Error) -> Self {
        AdminError::Db(err.into())
    }
}

/// Applies the transition; the account after it, or None when it was deleted.
pub fn apply(conn: &mut DbConnection, action: Action) -> Result<Option<UserRow>, AdminError> {
    let tenant =
        tenants::by_name(conn, &action.tenant)?.ok_or_else(|| AdminError::UnknownTenant(action.tenant.clone()))?;
    apply_as(conn, &tenant, ACTOR, db::now(), &action.user_id, action.transition)
}

/// Applies the transition to the account `user_id` of `tenant` as `actor` (the name the audit
/// log records) at `now`: what the command line and the admin panel both do.
pub fn apply_as(
    conn: &mut DbConnection,
    tenant: &Tenant,
    actor: &str,
    now: NaiveDateTime,
    user_id: &str,
    transition: Transition,
) -> Result<Option<UserRow>, AdminError> {
    let policy = Policy::of(tenant);
    let actor = Actor { tenant_id: &tenant.id, name: actor, policy: &policy, now };
    write_transaction(conn, |conn| {
        let row =
            user_store::find(conn, &tenant.id, user_id)?.ok_or_else(|| AdminError::NoSuchUser(user_id.to_owned()))?;
        Ok(match transition {
            Transition::Deactivate => Some(lifecycle::deactivate(conn, &actor, &row)?),
            Transition::Reactivate => Some(lifecycle::reactivate(conn, &actor, &row)?),
            Transition::FormerMember => Some(lifecycle::become_former_member(conn, &actor, &row)?),
            Transition::Delete => match lifecycle::delete(conn, &actor, &row)? {
                Deleted::Gone => None,
                Deleted::Deactivated(row) => Some(row),
            },
        })
    })
}
