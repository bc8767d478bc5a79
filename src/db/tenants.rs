//! Tenants: every other row belongs to one.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::tenants;
use super::{is_unique_violation, now, DbConnection, DbError};

pub const DEFAULT_TENANT: &str = "default";

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = tenants)]
pub struct Tenant {
    pub id: String,
    pub name: String,
    pub created_at: NaiveDateTime,
    pub grace_days: i32,
    pub delete_policy: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TenantError {
    #[error("a tenant named {0:?} already exists")]
    Exists(String),
    #[error("tenant names are 1 to 64 characters of letters, digits, '-', '_' and '.'; got {0:?}")]
    InvalidName(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for TenantError {
    fn from(e: diesel::result::Error) -> Self {
        TenantError::Db(e.into())
    }
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

pub fn create(conn: &mut DbConnection, name: &str) -> Result<Tenant, TenantError> {
    if !valid_name(name) {
        return Err(TenantError::InvalidName(name.to_owned()));
    }
    let tenant = Tenant {
        id: uuid::Uuid::new_v4().to_string(),
        name: name.to_owned(),
        created_at: now(),
        grace_days: 4,
        delete_policy: "deactivate-then-delete".to_owned(),
    };
    match diesel::insert_into(tenants::table).values(&tenant).execute(conn) {
        Ok(_) => Ok(tenant),
        Err(e) if is_unique_violation(&e) => Err(TenantError::Exists(name.to_owned())),
        Err(e) => Err(e.into()),
    }
}

/// Creates the `default` tenant unless it exists; safe when several nodes start at once.
pub fn ensure_default(conn: &mut DbConnection) -> Result<Tenant, TenantError> {
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
    Ok(tenants::table.find(id).select(Tenant::as_select()).first(conn).optional()?)
}

/// Deleting a tenant removes everything it owns (foreign keys cascade) and so invalidates its tokens.
pub fn delete(conn: &mut DbConnection, name: &str) -> Result<bool, DbError> {
    Ok(diesel::delete(tenants::table.filter(tenants::name.eq(name))).execute(conn)? > 0)
}
