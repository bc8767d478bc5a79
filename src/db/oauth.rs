//! OAuth clients, their secrets (as hashes only), the assertion ids seen, the token endpoint's
//! audit trail, trusted authorization servers, and the approvals, codes and refresh tokens of
//! the authorization-code grant (docs/oauth.md).

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{
    oauth_approvals, oauth_assertion_jtis, oauth_audit, oauth_client_secrets, oauth_clients, oauth_codes,
    oauth_issuers, oauth_refresh_tokens, tenants, tokens,
};
use super::{write_transaction, DbConnection, DbError};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = oauth_clients)]
pub struct ClientRecord {
    /// The public `client_id`.
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub scope: String,
    pub created_at: NaiveDateTime,
    pub revoked_at: Option<NaiveDateTime>,
    /// The `iss` its JWT assertions carry (RFC 7523 §3); None: the client takes no assertions.
    pub assertion_issuer: Option<String>,
    pub assertion_subject: Option<String>,
    /// The `aud` its assertions must carry; None: Roster's token endpoint URL or issuer.
    pub assertion_audience: Option<String>,
    pub jwks_url: Option<String>,
    pub jwks: Option<String>,
    /// Where the authorization-code grant may send its codes: exact URIs, space-separated.
    pub redirect_uris: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = oauth_client_secrets)]
pub struct SecretRecord {
    pub id: String,
    pub client_id: String,
    /// SHA-256 of the secret, hex (see `oauth::secret`).
    pub secret_hash: String,
    pub created_at: NaiveDateTime,
    pub expires_at: Option<NaiveDateTime>,
    pub revoked_at: Option<NaiveDateTime>,
}

/// Stores a new client and its first secret together.
pub fn insert_client(
    conn: &mut DbConnection,
    client: &ClientRecord,
    secret: Option<&SecretRecord>,
) -> Result<(), DbError> {
    write_transaction(conn, |conn| {
        diesel::insert_into(oauth_clients::table).values(client).execute(conn)?;
        if let Some(secret) = secret {
            diesel::insert_into(oauth_client_secrets::table).values(secret).execute(conn)?;
        }
        Ok(())
    })
}

/// A tenant's client by name, revoked or not.
pub fn client_by_name(conn: &mut DbConnection, tenant_id: &str, name: &str) -> Result<Option<ClientRecord>, DbError> {
    Ok(oauth_clients::table
        .filter(oauth_clients::tenant_id.eq(tenant_id))
        .filter(oauth_clients::name.eq(name))
        .select(ClientRecord::as_select())
        .first(conn)
        .optional()?)
}

/// A client by its `client_id`, revoked or not.
pub fn client(conn: &mut DbConnection, client_id: &str) -> Result<Option<ClientRecord>, DbError> {
    // A presented client_id may hold U+0000, which PostgreSQL text refuses: no such client.
    if client_id.contains('\0') {
        return Ok(None);
    }
    Ok(oauth_clients::table.find(client_id).select(ClientRecord::as_select()).first(conn).optional()?)
}

/// The live client whose assertions carry this issuer and subject.
pub fn client_by_assertion(conn: &mut DbConnection, issuer: &str, subject: &str) -> Result<Vec<ClientRecord>, DbError> {
    if issuer.contains('\0') || subject.contains('\0') {
        return Ok(Vec::new());
    }
    Ok(oauth_clients::table
        .filter(oauth_clients::assertion_issuer.eq(issuer))
        .filter(oauth_clients::assertion_subject.eq(subject))
        .filter(oauth_clients::revoked_at.is_null())
        .select(ClientRecord::as_select())
        .load(conn)?)
}

/// Every client of a tenant (or of all tenants) with its tenant's name, oldest first.
pub fn clients(conn: &mut DbConnection, tenant_id: Option<&str>) -> Result<Vec<(ClientRecord, String)>, DbError> {
    let mut query = oauth_clients::table
        .inner_join(tenants::table)
        .order((oauth_clients::created_at, oauth_clients::id))
        .select((ClientRecord::as_select(), tenants::name))
        .into_boxed();
    if let Some(tenant_id) = tenant_id {
        query = query.filter(oauth_clients::tenant_id.eq(tenant_id.to_owned()));
    }
    Ok(query.load(conn)?)
}

/// Locks the client's row until the transaction ends; false when the client is revoked or
/// gone. A token issued under this lock cannot slip past `revoke_client`: its update of the row
/// waits for the issuing transaction and then sees (and revokes) what it wrote, or it came
/// first and this finds the client revoked.
pub fn lock_live_client(conn: &mut DbConnection, client_id: &str) -> Result<bool, DbError> {
    let changed = diesel::update(oauth_clients::table.find(client_id).filter(oauth_clients::revoked_at.is_null()))
        .set(oauth_clients::id.eq(oauth_clients::id))
        .execute(conn)?;
    Ok(changed == 1)
}

/// Revokes the client and, in the same transaction, every token issued to it. False when the
/// client was already revoked.
pub fn revoke_client(conn: &mut DbConnection, client_id: &str, now: NaiveDateTime) -> Result<bool, DbError> {
    write_transaction(conn, |conn| {
        let changed = diesel::update(oauth_clients::table.find(client_id).filter(oauth_clients::revoked_at.is_null()))
            .set(oauth_clients::revoked_at.eq(now))
            .execute(conn)?;
        diesel::update(tokens::table.filter(tokens::client_id.eq(client_id)).filter(tokens::revoked_at.is_null()))
            .set(tokens::revoked_at.eq(now))
            .execute(conn)?;
        diesel::update(
            oauth_refresh_tokens::table
                .filter(oauth_refresh_tokens::client_id.eq(client_id))
                .filter(oauth_refresh_tokens::revoked_at.is_null()),
        )
        .set(oauth_refresh_tokens::revoked_at.eq(now))
        .execute(conn)?;
        Ok(changed > 0)
    })
}

pub fn insert_secret(conn: &mut DbConnection, secret: &SecretRecord) -> Result<(), DbError> {
    diesel::insert_into(oauth_client_secrets::table).values(secret).execute(conn)?;
    Ok(())
}

/// A client's secrets (their ids and times, never a secret), oldest first.
pub fn secrets(conn: &mut DbConnection, client_id: &str) -> Result<Vec<SecretRecord>, DbError> {
    Ok(oauth_client_secrets::table
        .filter(oauth_client_secrets::client_id.eq(client_id))
        .order((oauth_client_secrets::created_at, oauth_client_secrets::id))
        .select(SecretRecord::as_select())
        .load(conn)?)
}

/// Revokes one secret of the client; false when the client has no such live secret.
pub fn revoke_secret(
    conn: &mut DbConnection,
    client_id: &str,
    secret_id: &str,
    now: NaiveDateTime,
) -> Result<bool, DbError> {
    let changed = diesel::update(
        oauth_client_secrets::table
            .filter(oauth_client_secrets::id.eq(secret_id))
            .filter(oauth_client_secrets::client_id.eq(client_id))
            .filter(oauth_client_secrets::revoked_at.is_null()),
    )
    .set(oauth_client_secrets::revoked_at.eq(now))
    .execute(conn)?;
    Ok(changed > 0)
}

/// The secret of this client with this hash, if there is one, live or not: the caller says
/// why a dead one is refused.
pub fn secret_by_hash(conn: &mut DbConnection, client_id: &str, hash: &str) -> Result<Option<SecretRecord>, DbError> {
    Ok(oauth_client_secrets::table
        .filter(oauth_client_secrets::secret_hash.eq(hash))
        .filter(oauth_client_secrets::client_id.eq(client_id))
        .select(SecretRecord::as_select())
        .first(conn)
        .optional()?)
}

/// Records an assertion's `jti` until the assertion expires; false when this issuer's `jti`
/// was seen before (a replay). The primary key decides, so two nodes cannot both accept it.
pub fn first_use_of_jti(
    conn: &mut DbConnection,
    issuer: &str,
    jti: &str,
    expires_at: NaiveDateTime,
    now: NaiveDateTime,
) -> Result<bool, DbError> {
    if issuer.contains('\0') || jti.contains('\0') {
        return Ok(false);
    }
    // Ids whose assertions have expired can no longer be replayed: forget them.
    diesel::delete(oauth_assertion_jtis::table.filter(oauth_assertion_jtis::expires_at.lt(now))).execute(conn)?;
    // Not inside a transaction: on PostgreSQL a refused insert leaves nothing to roll back.
    let inserted = diesel::insert_into(oauth_assertion_jtis::table)
        .values((
            oauth_assertion_jtis::issuer.eq(issuer),
            oauth_assertion_jtis::jti.eq(jti),
            oauth_assertion_jtis::expires_at.eq(expires_at),
        ))
        .execute(conn);
    match inserted {
        Ok(_) => Ok(true),
        Err(e) if super::is_unique_violation(&e) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = oauth_audit)]
pub struct AuditRecord {
    pub id: String,
    pub tenant_id: Option<String>,
    /// The client_id as presented (cut to 128 characters), known or not.
    pub client_id: String,
    /// `issued`, `refused`, `revoked`.
    pub outcome: String,
    pub detail: String,
    pub peer: Option<String>,
    pub at: NaiveDateTime,
}

pub fn audit(conn: &mut DbConnection, record: &AuditRecord) -> Result<(), DbError> {
    diesel::insert_into(oauth_audit::table).values(record).execute(conn)?;
    Ok(())
}

/// The newest entries, of one tenant or (with None) of every client whether known or not.
pub fn audit_entries(
    conn: &mut DbConnection,
    tenant_id: Option<&str>,
    limit: i64,
) -> Result<Vec<AuditRecord>, DbError> {
    let mut query =
        oauth_audit::table.order(oauth_audit::id.desc()).limit(limit).select(AuditRecord::as_select()).into_boxed();
    if let Some(tenant_id) = tenant_id {
        query = query.filter(oauth_audit::tenant_id.eq(tenant_id.to_owned()));
    }
    Ok(query.load(conn)?)
}

/// An authorization server a tenant trusts (see `oauth::external`).
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = oauth_issuers)]
pub struct IssuerRecord {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub issuer: String,
    pub audience: String,
    pub jwks_url: String,
    /// The most its tokens may do, whatever scopes they carry.
    pub scope: String,
    pub created_at: NaiveDateTime,
}

pub fn insert_issuer(conn: &mut DbConnection, issuer: &IssuerRecord) -> Result<(), DbError> {
    diesel::insert_into(oauth_issuers::table).values(issuer).execute(conn)?;
    Ok(())
}

/// The trusted servers whose issuer is `iss`, of every tenant (one per audience).
pub fn issuers_named(conn: &mut DbConnection, iss: &str) -> Result<Vec<IssuerRecord>, DbError> {
    if iss.contains('\0') {
        return Ok(Vec::new());
    }
    Ok(oauth_issuers::table.filter(oauth_issuers::issuer.eq(iss)).select(IssuerRecord::as_select()).load(conn)?)
}

/// Every trusted server with its tenant's name, of one tenant or of all.
pub fn issuers(conn: &mut DbConnection, tenant_id: Option<&str>) -> Result<Vec<(IssuerRecord, String)>, DbError> {
    let mut query = oauth_issuers::table
        .inner_join(tenants::table)
        .order((oauth_issuers::created_at, oauth_issuers::id))
        .select((IssuerRecord::as_select(), tenants::name))
        .into_boxed();
    if let Some(tenant_id) = tenant_id {
        query = query.filter(oauth_issuers::tenant_id.eq(tenant_id.to_owned()));
    }
    Ok(query.load(conn)?)
}

/// Stops trusting the tenant's server of this name; false when there is none.
pub fn remove_issuer(conn: &mut DbConnection, tenant_id: &str, name: &str) -> Result<bool, DbError> {
    let removed = diesel::delete(
        oauth_issuers::table.filter(oauth_issuers::tenant_id.eq(tenant_id)).filter(oauth_issuers::name.eq(name)),
    )
    .execute(conn)?;
    Ok(removed > 0)
}

/// A one-time approval of the authorization-code grant, opened by the tenant's admin.
pub fn insert_approval(
    conn: &mut DbConnection,
    ticket_hash: &str,
    client_id: &str,
    expires_at: NaiveDateTime,
) -> Result<(), DbError> {
    diesel::insert_into(oauth_approvals::table)
        .values((
            oauth_approvals::ticket_hash.eq(ticket_hash),
            oauth_approvals::client_id.eq(client_id),
            oauth_approvals::expires_at.eq(expires_at),
        ))
        .execute(conn)?;
    Ok(())
}

/// The live client an unused, unexpired approval is for.
pub fn approval_client(
    conn: &mut DbConnection,
    ticket_hash: &str,
    now: NaiveDateTime,
) -> Result<Option<ClientRecord>, DbError> {
    Ok(oauth_approvals::table
        .inner_join(oauth_clients::table)
        .filter(oauth_approvals::ticket_hash.eq(ticket_hash))
        .filter(oauth_approvals::used_at.is_null())
        .filter(oauth_approvals::expires_at.gt(now))
        .filter(oauth_clients::revoked_at.is_null())
        .select(ClientRecord::as_select())
        .first(conn)
        .optional()?)
}

/// Uses up the approval for this client; false when it is not live (used, expired, another's).
pub fn take_approval(
    conn: &mut DbConnection,
    ticket_hash: &str,
    client_id: &str,
    now: NaiveDateTime,
) -> Result<bool, DbError> {
    let changed = diesel::update(
        oauth_approvals::table
            .filter(oauth_approvals::ticket_hash.eq(ticket_hash))
            .filter(oauth_approvals::client_id.eq(client_id))
            .filter(oauth_approvals::used_at.is_null())
            .filter(oauth_approvals::expires_at.gt(now)),
    )
    .set(oauth_approvals::used_at.eq(now))
    .execute(conn)?;
    Ok(changed == 1)
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = oauth_codes)]
pub struct CodeRecord {
    pub code_hash: String,
    pub client_id: String,
    pub redirect_uri: String,
    /// PKCE (RFC 7636) S256 challenge, when the client sent one.
    pub code_challenge: Option<String>,
    pub scope: String,
    pub expires_at: NaiveDateTime,
    pub used_at: Option<NaiveDateTime>,
}

pub fn insert_code(conn: &mut DbConnection, code: &CodeRecord) -> Result<(), DbError> {
    diesel::insert_into(oauth_codes::table).values(code).execute(conn)?;
    Ok(())
}

/// Uses up the code of this client if it is unused and unexpired; None otherwise. The update
/// decides, so a code is exchanged once even when two requests race.
pub fn take_code(
    conn: &mut DbConnection,
    code_hash: &str,
    client_id: &str,
    now: NaiveDateTime,
) -> Result<Option<CodeRecord>, DbError> {
    write_transaction(conn, |conn| {
        let changed = diesel::update(
            oauth_codes::table
                .filter(oauth_codes::code_hash.eq(code_hash))
                .filter(oauth_codes::client_id.eq(client_id))
                .filter(oauth_codes::used_at.is_null())
                .filter(oauth_codes::expires_at.gt(now)),
        )
        .set(oauth_codes::used_at.eq(now))
        .execute(conn)?;
        if changed == 0 {
            return Ok(None);
        }
        Ok(Some(oauth_codes::table.find(code_hash).select(CodeRecord::as_select()).first(conn)?))
    })
}

pub fn insert_refresh_token(
    conn: &mut DbConnection,
    token_hash: &str,
    client_id: &str,
    scope: &str,
    now: NaiveDateTime,
) -> Result<(), DbError> {
    diesel::insert_into(oauth_refresh_tokens::table)
        .values((
            oauth_refresh_tokens::token_hash.eq(token_hash),
            oauth_refresh_tokens::client_id.eq(client_id),
            oauth_refresh_tokens::scope.eq(scope),
            oauth_refresh_tokens::created_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

/// Revokes the client's live refresh token with this hash and returns its scope; None when the
/// client holds no such live token. Used when a refresh token is exchanged (it rotates) and by
/// RFC 7009 revocation.
pub fn take_refresh_token(
    conn: &mut DbConnection,
    token_hash: &str,
    client_id: &str,
    now: NaiveDateTime,
) -> Result<Option<String>, DbError> {
    write_transaction(conn, |conn| {
        let changed = diesel::update(
            oauth_refresh_tokens::table
                .filter(oauth_refresh_tokens::token_hash.eq(token_hash))
                .filter(oauth_refresh_tokens::client_id.eq(client_id))
                .filter(oauth_refresh_tokens::revoked_at.is_null()),
        )
        .set(oauth_refresh_tokens::revoked_at.eq(now))
        .execute(conn)?;
        if changed == 0 {
            return Ok(None);
        }
        Ok(Some(oauth_refresh_tokens::table.find(token_hash).select(oauth_refresh_tokens::scope).first(conn)?))
    })
}
