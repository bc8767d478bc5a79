//! Product sign-in sessions. Only the SHA-256 of a session token is stored.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{sessions, users};
use super::DbConnection;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = sessions)]
pub struct SessionRow {
    pub id: String,
    pub user_pk: i64,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub revoked_at: Option<NaiveDateTime>,
}

pub fn insert(
    conn: &mut DbConnection,
    tenant_id: &str,
    id: &str,
    user_pk: i64,
    token_hash: &str,
    now: NaiveDateTime,
    expires_at: NaiveDateTime,
) -> QueryResult<()> {
    diesel::insert_into(sessions::table)
        .values((
            sessions::id.eq(id),
            sessions::tenant_id.eq(tenant_id),
            sessions::user_pk.eq(user_pk),
            sessions::token_hash.eq(token_hash),
            sessions::created_at.eq(now),
            sessions::expires_at.eq(expires_at),
        ))
        .execute(conn)?;
    Ok(())
}

/// A session by its token's hash, with the owner's (user id, userName, lifecycle state).
pub fn by_token(
    conn: &mut DbConnection,
    tenant_id: &str,
    token_hash: &str,
) -> QueryResult<Option<(SessionRow, String, String, String)>> {
    sessions::table
        .inner_join(users::table)
        .filter(sessions::token_hash.eq(token_hash))
        .filter(sessions::tenant_id.eq(tenant_id))
        .select((SessionRow::as_select(), users::id, users::user_name, users::lifecycle_state))
        .first(conn)
        .optional()
}

/// Ends one session; false when the tenant has no such session.
pub fn revoke(conn: &mut DbConnection, tenant_id: &str, id: &str, now: NaiveDateTime) -> QueryResult<bool> {
    let found = sessions::table
        .filter(sessions::id.eq(id))
        .filter(sessions::tenant_id.eq(tenant_id))
        .count()
        .get_result::<i64>(conn)?
        > 0;
    diesel::update(sessions::table.filter(sessions::id.eq(id)).filter(sessions::revoked_at.is_null()))
        .set(sessions::revoked_at.eq(now))
        .execute(conn)?;
    Ok(found)
}

/// Revokes every open session of a user at once; returns how many were open.
pub fn revoke_all(conn: &mut DbConnection, user_pk: i64, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(sessions::table.filter(sessions::user_pk.eq(user_pk)).filter(sessions::revoked_at.is_null()))
        .set(sessions::revoked_at.eq(now))
        .execute(conn)
}

pub fn delete_all(conn: &mut DbConnection, user_pk: i64) -> QueryResult<usize> {
    diesel::delete(sessions::table.filter(sessions::user_pk.eq(user_pk))).execute(conn)
}
