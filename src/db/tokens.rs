//! The record of every issued token, so tokens can be listed and revoked by `jti`.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{tenants, tokens};
use super::{now, DbConnection, DbError};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = tokens)]
pub struct TokenRecord {
    pub jti: String,
    pub tenant_id: String,
    pub name: String,
    pub scope: String,
    pub issued_at: NaiveDateTime,
    pub expires_at: Option<NaiveDateTime>,
    pub revoked_at: Option<NaiveDateTime>,
    /// The OAuth client it was issued to at `/oauth/token`; None for `roster token issue`.
    pub client_id: Option<String>,
}

pub fn insert(conn: &mut DbConnection, record: &TokenRecord) -> Result<(), DbError> {
    diesel::insert_into(tokens::table).values(record).execute(conn)?;
    Ok(())
}

/// Every token with the name of its tenant, newest first.
pub fn list(conn: &mut DbConnection) -> Result<Vec<(TokenRecord, String)>, DbError> {
    Ok(tokens::table
        .inner_join(tenants::table)
        .order(tokens::issued_at.desc())
        .select((TokenRecord::as_select(), tenants::name))
        .load(conn)?)
}

/// Marks the token revoked; false when no such token exists. Revoking twice keeps the first time.
pub fn revoke(conn: &mut DbConnection, jti: &str) -> Result<bool, DbError> {
    let found = tokens::table.find(jti).count().get_result::<i64>(conn)? > 0;
    diesel::update(tokens::table.find(jti).filter(tokens::revoked_at.is_null()))
        .set(tokens::revoked_at.eq(now()))
        .execute(conn)?;
    Ok(found)
}

/// The record of `jti` when it was issued to this tenant (and the tenant still exists): the
/// authority on what the token may do, whatever its claims say.
pub fn record(conn: &mut DbConnection, jti: &str, tenant_id: &str) -> Result<Option<TokenRecord>, DbError> {
    // Claims can hold U+0000, which no stored id does and PostgreSQL text refuses (an error, not
    // "no row"): such a token is simply not on record.
    if jti.contains('\0') || tenant_id.contains('\0') {
        return Ok(None);
    }
    Ok(tokens::table
        .inner_join(tenants::table)
        .filter(tokens::jti.eq(jti))
        .filter(tokens::tenant_id.eq(tenant_id))
        .select(TokenRecord::as_select())
        .first(conn)
        .optional()?)
}
