//! A tenant's SET signing keys (docs/security-events.md): the private key sealed, the public
//! one as the JWK published in the tenant's JWKS.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::signing_keys;
use super::DbConnection;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = signing_keys)]
pub struct SigningKeyRow {
    pub kid: String,
    pub tenant_id: String,
    /// `ES256` or `RS256`.
    pub alg: String,
    /// The private key (PKCS#8 DER for ES256, PKCS#1 DER for RS256), sealed with the kid bound in.
    pub private_key: String,
    /// The public key as a JWK (RFC 7517), with its `kid`, `alg` and `use`.
    pub public_jwk: String,
    pub created_at: NaiveDateTime,
    /// When a newer key replaced it; it signs no more.
    pub retired_at: Option<NaiveDateTime>,
    /// Until when a replaced key stays published; `None` while it is the current key.
    pub expires_at: Option<NaiveDateTime>,
}

pub fn insert(conn: &mut DbConnection, row: &SigningKeyRow) -> QueryResult<()> {
    diesel::insert_into(signing_keys::table).values(row).execute(conn)?;
    Ok(())
}

/// The key the tenant signs with now: the newest one not retired.
pub fn current(conn: &mut DbConnection, tenant_id: &str) -> QueryResult<Option<SigningKeyRow>> {
    signing_keys::table
        .filter(signing_keys::tenant_id.eq(tenant_id))
        .filter(signing_keys::retired_at.is_null())
        .order((signing_keys::created_at.desc(), signing_keys::kid.desc()))
        .select(SigningKeyRow::as_select())
        .first(conn)
        .optional()
}

/// The keys published at `now`: the current one and those replaced less than their grace ago,
/// newest first.
pub fn published(conn: &mut DbConnection, tenant_id: &str, now: NaiveDateTime) -> QueryResult<Vec<SigningKeyRow>> {
    signing_keys::table
        .filter(signing_keys::tenant_id.eq(tenant_id))
        .filter(signing_keys::expires_at.is_null().or(signing_keys::expires_at.gt(now)))
        .order((signing_keys::created_at.desc(), signing_keys::kid.desc()))
        .select(SigningKeyRow::as_select())
        .load(conn)
}

/// Retires the tenant's keys that still sign, keeping them published until `expires_at`, and
/// drops those whose grace has passed; returns how many were retired.
pub fn retire(
    conn: &mut DbConnection,
    tenant_id: &str,
    now: NaiveDateTime,
    expires_at: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::delete(
        signing_keys::table.filter(signing_keys::tenant_id.eq(tenant_id)).filter(signing_keys::expires_at.le(now)),
    )
    .execute(conn)?;
    diesel::update(
        signing_keys::table.filter(signing_keys::tenant_id.eq(tenant_id)).filter(signing_keys::retired_at.is_null()),
    )
    .set((signing_keys::retired_at.eq(now), signing_keys::expires_at.eq(expires_at)))
    .execute(conn)
}
