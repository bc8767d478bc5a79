//! Lifecycle transitions an administrator asks for by hand (`roster user …`). They go through
//! the same lifecycle rules as SCIM; the actor recorded in the audit log is "admin".

use crate::db::users::{self as user_store, UserRow};
use crate::db::{self, tenants, write_transaction, DbConnection};
use crate::lifecycle::{self, Actor, Deleted, LifecycleError, Policy};

const ACTOR: &str = "admin";

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
    let policy = Policy::of(&tenant);
    let actor = Actor { tenant_id: &tenant.id, name: ACTOR, policy: &policy, now: db::now() };
    write_transaction(conn, |conn| {
        let row = user_store::find(conn, &tenant.id, &action.user_id)?
            .ok_or_else(|| AdminError::NoSuchUser(action.user_id.clone()))?;
        Ok(match action.transition {
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
