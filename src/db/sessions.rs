//! Product sign-in sessions. Only the SHA-256 of a session token is stored.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::lifecycle_state::LifecycleState;
use super::schema::{sessions, users};
use super::{DbConnection, MultiBackend};

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
) -> QueryResult<Option<(SessionRow, String, String, LifecycleState)>> {
    sessions::table
        .inner_join(users::table)
        .filter(sessions::token_hash.eq(token_hash))
        .filter(sessions::tenant_id.eq(tenant_id))
        .select((SessionRow::as_select(), users::id, users::user_name, users::lifecycle_state))
        .first(conn)
        .optional()
}

/// Ends one session; false when the tenant has no such session. Both statements are limited to
/// the caller's tenant: a session id of another tenant is "not found" and stays untouched.
pub fn revoke(conn: &mut DbConnection, tenant_id: &str, id: &str, now: NaiveDateTime) -> QueryResult<bool> {
    let of_tenant = sessions::table.filter(sessions::id.eq(id)).filter(sessions::tenant_id.eq(tenant_id));
    let found = of_tenant.count().get_result::<i64>(conn)? > 0;
    diesel::update(of_tenant.filter(sessions::revoked_at.is_null())).set(sessions::revoked_at.eq(now)).execute(conn)?;
    Ok(found)
}

/// Revokes every open session of a user at once; returns the ids of those that were open, in
/// order.
pub fn revoke_all(conn: &mut DbConnection, user_pk: i64, now: NaiveDateTime) -> QueryResult<Vec<String>> {
    let mut ids: Vec<String> = RevokeAll { user_pk, now }.load(conn)?;
    ids.sort_unstable();
    Ok(ids)
}

/// `UPDATE sessions SET revoked_at = ? WHERE user_pk = ? AND revoked_at IS NULL RETURNING id`, with a fixed
/// text so that the connection keeps it prepared: diesel never keeps its UPDATE statements
/// prepared, and this one runs in every deactivation while the account's row is held.
struct RevokeAll {
    user_pk: i64,
    now: NaiveDateTime,
}

impl diesel::query_builder::QueryId for RevokeAll {
    type QueryId = RevokeAll;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl diesel::query_builder::Query for RevokeAll {
    type SqlType = diesel::sql_types::Text;
}

impl diesel::query_builder::QueryFragment<MultiBackend> for RevokeAll {
    fn walk_ast<'b>(&'b self, mut out: diesel::query_builder::AstPass<'_, 'b, MultiBackend>) -> QueryResult<()> {
        use diesel::sql_types::{BigInt, Timestamp};
        out.push_sql("UPDATE sessions SET revoked_at = ");
        out.push_bind_param::<Timestamp, _>(&self.now)?;
        out.push_sql(" WHERE user_pk = ");
        out.push_bind_param::<BigInt, _>(&self.user_pk)?;
        out.push_sql(" AND revoked_at IS NULL RETURNING id");
        Ok(())
    }
}

impl RunQueryDsl<DbConnection> for RevokeAll {}

pub fn delete_all(conn: &mut DbConnection, user_pk: i64) -> QueryResult<usize> {
    diesel::delete(sessions::table.filter(sessions::user_pk.eq(user_pk))).execute(conn)
}
