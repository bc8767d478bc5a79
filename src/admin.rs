//! Lifecycle transitions an administrator asks for by hand (`roster user …`). They go through
//! the same lifecycle rules as SCIM; the actor recorded in the audit log is "admin".

use crate::db::{self, tenants, write_transaction, DbConnection};
use crate::error::ScimError;
use crate::lifecycle::{self, Actor, Deleted, Policy};
use crate::users::{self, Ctx};

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

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("no tenant named {0:?}")]
    UnknownTenant(String),
    #[error("{}", .0.detail)]
    Refused(ScimError),
    #[error(transparent)]
    Db(#[from] db::DbError),
}

/// Applies the transition; the account after it, or None when it was deleted.
pub fn apply(conn: &mut DbConnection, action: Action) -> Result<Option<db::users::UserRow>, AdminError> {
    let tenant =
        tenants::by_name(conn, &action.tenant)?.ok_or_else(|| AdminError::UnknownTenant(action.tenant.clone()))?;
    let ctx = Ctx { tenant_id: tenant.id.clone(), actor: "admin".into(), now: db::now() };
    let policy = Policy::of(&tenant);
    write_transaction(conn, |conn| {
        let actor = Actor { tenant_id: &ctx.tenant_id, name: &ctx.actor, policy: &policy, now: ctx.now };
        let row = users::get(conn, &ctx, &action.user_id)?;
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
    .map_err(AdminError::Refused)
}
