//! Okta's OAuth mode: the authorization-code grant (RFC 6749 §4.1) with PKCE (RFC 7636) and
//! refresh tokens. The tenant's admin approves the connection by opening a one-time link that
//! `roster client approve` prints (until the Admin Panel's sign-in takes this over); Okta then
//! sends the admin's browser to `/oauth/authorize`, which redirects back with a code, and
//! exchanges the code at the token endpoint for an access token and a refresh token. Revoking
//! the client ends its refresh tokens.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::NaiveDateTime;
use sha2::{Digest, Sha256};

use super::error::{requested_scopes, OAuthError};
use super::{hash, random_secret, ClientError};
use crate::auth::Scopes;
use crate::db::oauth::{self as store, ClientRecord, CodeRecord};
use crate::db::{self, DbConnection, DbError};

/// Prefixes of the one-time values, so that a leaked one says what it is.
const TICKET_PREFIX: &str = "rapv_";
const CODE_PREFIX: &str = "rcode_";
/// A code must be exchanged within this (RFC 6749 §4.1.2: short-lived, at most 10 minutes).
const CODE_LIFETIME_SECS: i64 = 300;
/// An approval link lasts this long by default.
pub const APPROVAL_LIFETIME: Duration = Duration::from_secs(15 * 60);
/// The cookie that carries an opened approval to `/oauth/authorize`.
pub const APPROVAL_COOKIE: &str = "roster_oauth_approval";

/// A one-time approval for the named client; returns the ticket for the link.
pub fn approval(conn: &mut DbConnection, tenant: &str, name: &str, valid: Duration) -> Result<String, ClientError> {
    let client = super::find(conn, tenant, name)?;
    if client.revoked_at.is_some() {
        return Err(ClientError::Invalid(format!("client {name:?} is revoked")));
    }
    if client.redirect_uris.is_none() {
        return Err(ClientError::Invalid(format!(
            "client {name:?} has no redirect URI: create it with --redirect-uri (Okta's OAuth callback URL)"
        )));
    }
    if valid > Duration::from_secs(86_400) {
        return Err(ClientError::Invalid("an approval link lasts at most a day".into()));
    }
    let ticket = random_secret(TICKET_PREFIX);
    let expires_at = db::now() + chrono::Duration::from_std(valid).expect("at most a day");
    store::insert_approval(conn, &hash(&ticket), &client.id, expires_at)?;
    Ok(ticket)
}

/// The parameters of `/oauth/authorize` (RFC 6749 §4.1.1, RFC 7636 §4.3).
#[derive(Default)]
pub struct AuthorizeRequest {
    pub response_type: Option<String>,
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
}

/// Why `/oauth/authorize` does not issue a code.
#[derive(Debug)]
pub enum AuthorizeError {
    /// The client or redirect URI cannot be trusted: shown to the browser, never redirected
    /// (RFC 6749 §4.1.2.1).
    Page(String),
    /// The connection has not been approved (or the approval was used or expired).
    NeedsApproval {
        client: String,
    },
    /// Sent back to the client's redirect URI with `error` (RFC 6749 §4.1.2.1).
    Redirect {
        redirect_uri: String,
        error: &'static str,
        description: String,
    },
    Db(DbError),
}

impl From<DbError> for AuthorizeError {
    fn from(err: DbError) -> Self {
        AuthorizeError::Db(err)
    }
}

/// A code and where to send it.
pub struct Granted {
    pub redirect_uri: String,
    pub code: String,
}

/// Checks an authorization request and, when the approval `ticket` is live for its client,
/// uses the approval up and issues a code.
pub fn authorize(
    conn: &mut DbConnection,
    req: &AuthorizeRequest,
    ticket: Option<&str>,
    now: NaiveDateTime,
) -> Result<Granted, AuthorizeError> {
    let client_id = req.client_id.as_deref().ok_or_else(|| AuthorizeError::Page("client_id is missing".into()))?;
    let client = store::client(conn, client_id)?
        .filter(|c| c.revoked_at.is_none())
        .ok_or_else(|| AuthorizeError::Page(format!("no OAuth client {client_id:?}")))?;
    let registered: Vec<&str> =
        client.redirect_uris.as_deref().unwrap_or("").split(' ').filter(|u| !u.is_empty()).collect();
    let redirect_uri = match (&req.redirect_uri, registered.as_slice()) {
        (Some(uri), _) if registered.contains(&uri.as_str()) => uri.clone(),
        (None, [only]) => (*only).to_owned(),
        (Some(uri), _) => return Err(AuthorizeError::Page(format!("{uri:?} is not a redirect URI of this client"))),
        (None, _) => return Err(AuthorizeError::Page("redirect_uri is missing".into())),
    };
    let refuse = |error, description: String| AuthorizeError::Redirect {
        redirect_uri: redirect_uri.clone(),
        error,
        description,
    };
    if req.response_type.as_deref() != Some("code") {
        return Err(refuse("unsupported_response_type", "response_type must be code".into()));
    }
    // PKCE is required (RFC 7636; OAuth 2.0 Security BCP §2.1.1), S256 only: a request without
    // code_challenge_method means plain (RFC 7636 §4.3), which is refused.
    let Some(challenge) = &req.code_challenge else {
        return Err(refuse("invalid_request", "code_challenge is required (PKCE, RFC 7636, S256)".into()));
    };
    if req.code_challenge_method.as_deref() != Some("S256") {
        return Err(refuse("invalid_request", "code_challenge_method must be S256 (RFC 7636 §4.2)".into()));
    }
    let well_formed = (43..=128).contains(&challenge.len())
        && challenge.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    if !well_formed {
        return Err(refuse("invalid_request", "code_challenge must be 43 to 128 unreserved characters".into()));
    }
    let scopes = requested_scopes(&client.scope, req.scope.as_deref())
        .map_err(|e| refuse("invalid_scope", e.description.clone()))?;
    let Some(ticket) = ticket else {
        return Err(AuthorizeError::NeedsApproval { client: client.name });
    };
    // The approval is used up by the code it gives, or not at all.
    let code = db::write_transaction(conn, |conn| {
        if !store::take_approval(conn, &hash(ticket), &client.id, now)? {
            return Ok::<_, DbError>(None);
        }
        let code = random_secret(CODE_PREFIX);
        let record = CodeRecord {
            code_hash: hash(&code),
            client_id: client.id.clone(),
            redirect_uri: redirect_uri.clone(),
            code_challenge: Some(challenge.clone()),
            scope: scopes.to_string(),
            expires_at: now + chrono::Duration::seconds(CODE_LIFETIME_SECS),
            used_at: None,
        };
        store::insert_code(conn, &record)?;
        Ok(Some(code))
    })?;
    let code = code.ok_or(AuthorizeError::NeedsApproval { client: client.name })?;
    Ok(Granted { redirect_uri, code })
}

/// Exchanges a code for the scopes it was issued with (RFC 6749 §4.1.3, RFC 7636 §4.6).
pub fn exchange(
    conn: &mut DbConnection,
    client: &ClientRecord,
    code: &str,
    redirect_uri: Option<&str>,
    verifier: Option<&str>,
    now: NaiveDateTime,
) -> Result<Result<Scopes, OAuthError>, DbError> {
    let grant = |d: &str| Ok(Err(OAuthError::new("invalid_grant", d)));
    let Some(record) = store::take_code(conn, &hash(code), &client.id, now)? else {
        return grant("the code is unknown, used, expired or another client's");
    };
    // RFC 6749 §4.1.3 asks for redirect_uri when the authorization request had one; every code
    // is issued for a redirect URI, and Okta always sends it, so it is always asked for.
    match redirect_uri {
        None => return grant("redirect_uri is missing (RFC 6749 §4.1.3)"),
        Some(uri) if uri != record.redirect_uri => {
            return grant("redirect_uri differs from the authorization request's")
        }
        Some(_) => {}
    }
    if let Some(challenge) = &record.code_challenge {
        let Some(verifier) = verifier else {
            return grant("code_verifier is missing (the request had a code_challenge)");
        };
        if URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) != *challenge {
            return grant("code_verifier does not match the code_challenge");
        }
    }
    Ok(record.scope.parse().map_err(|e: String| OAuthError::new("server_error", e)))
}

/// Exchanges a refresh token for its scopes (narrowed by `scope` when given); the token is
/// used up, and the caller issues a new one with the access token (rotation).
pub fn refresh(
    conn: &mut DbConnection,
    client: &ClientRecord,
    token: &str,
    scope: Option<&str>,
    now: NaiveDateTime,
) -> Result<Result<Scopes, OAuthError>, DbError> {
    let Some(granted) = store::take_refresh_token(conn, &hash(token), &client.id, now)? else {
        let refused = "the refresh token is unknown, used, revoked or another client's";
        return Ok(Err(OAuthError::new("invalid_grant", refused)));
    };
    Ok(requested_scopes(&granted, scope))
}

#[cfg(test)]
mod tests {
    use crate::auth::oauth::check_redirect_uri;

    #[test]
    fn redirect_uris_are_https_without_fragment() {
        assert!(check_redirect_uri("https://system-admin.okta.com/admin/app/cpc/roster/oauth/callback", false).is_ok());
        assert!(check_redirect_uri("https://example.com/cb#x", false).is_err());
        assert!(check_redirect_uri("http://example.com/cb", true).is_err());
        assert!(check_redirect_uri("http://127.0.0.1:9/cb", true).is_ok());
        assert!(check_redirect_uri("http://127.0.0.1:9/cb", false).is_err());
    }
}
