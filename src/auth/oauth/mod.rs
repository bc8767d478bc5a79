//! OAuth 2.0 for IdP connections (docs/oauth.md): per-tenant clients with rotating secrets
//! (this file), the token endpoint that exchanges a client's credentials for an access token
//! (`token.rs`), JWT client assertions and the JWKS documents their keys come from
//! (`assertion.rs`, `jwks.rs`), the bound on failed attempts (`limiter.rs`), and the access
//! tokens of authorization servers a tenant trusts (`external.rs`).
//!
//! Access tokens are the same HS256 tokens `roster token issue` prints, recorded in the same
//! table with the client they were issued to: every way in ends in the one check of
//! [`crate::auth::Principal`] (record, tenant, scopes), and the hot path gains no query.

pub mod assertion;
pub mod code;
pub mod error;
pub mod external;
pub mod jwks;
pub mod limiter;
pub mod token;

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::NaiveDateTime;
use sha2::{Digest, Sha256};

use crate::auth::Scopes;
use crate::db::oauth::{self as store, ClientRecord, SecretRecord};
use crate::db::{self, tenants, DbConnection, DbError};

/// What the OAuth endpoints keep between requests on one node.
pub struct OAuthState {
    pub failures: limiter::FailureLimiter,
    pub jwks: jwks::JwksCache,
}

impl OAuthState {
    pub fn new(settings: &crate::config::Settings) -> OAuthState {
        OAuthState { failures: Default::default(), jwks: jwks::JwksCache::new(settings.oauth_allow_http_loopback) }
    }
}

/// 256 random bits, base64url, behind a prefix that names what they are.
fn random_secret(prefix: &str) -> String {
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>()))
}

/// Prefix of every client secret, so that a leaked one is recognisable (secret scanners).
const SECRET_PREFIX: &str = "rsec_";

/// Secrets last at most this long (Entra's gallery asks for 1–3 years).
pub const MAX_SECRET_LIFETIME: Duration = Duration::from_secs(3 * 366 * 86_400);

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("no tenant named {0:?}")]
    UnknownTenant(String),
    #[error("tenant {tenant:?} has no OAuth client named {name:?}")]
    UnknownClient { tenant: String, name: String },
    #[error("tenant {tenant:?} already has a client named {name:?}")]
    NameTaken { tenant: String, name: String },
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// A secret as generated: 256 random bits, shown once. Only [`hash`] of it is stored.
pub struct NewSecret {
    pub record: SecretRecord,
    pub secret: String,
}

/// SHA-256, hex. The secrets are 256 random bits, so no guess can find one whose hash matches
/// and a slow password hash (argon2) would add nothing but a cost on every token request
/// (docs/oauth.md, "Secrets").
pub fn hash(secret: &str) -> String {
    Sha256::digest(secret.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

fn new_secret(client_id: &str, now: NaiveDateTime, expires_in: Option<Duration>) -> Result<NewSecret, ClientError> {
    if expires_in.is_some_and(|d| d > MAX_SECRET_LIFETIME) {
        return Err(ClientError::Invalid(
            "a secret lasts at most 1098 days (3 years); choose a shorter --expires".into(),
        ));
    }
    let secret = random_secret(SECRET_PREFIX);
    let expires_at = expires_in.map(|d| now + chrono::Duration::from_std(d).expect("at most three years"));
    let record = SecretRecord {
        id: db::new_id(),
        client_id: client_id.to_owned(),
        secret_hash: hash(&secret),
        created_at: now,
        expires_at,
        revoked_at: None,
    };
    Ok(NewSecret { record, secret })
}

/// How a client proves itself with a signed JWT (RFC 7523 §2.2) instead of, or beside, a
/// secret. For `private_key_jwt` the issuer and subject are the client_id; for a federated
/// client (Entra workload identity federation) they are the external issuer's.
#[derive(Debug, Clone, Default)]
pub struct AssertionTrust {
    pub issuer: Option<String>,
    pub subject: Option<String>,
    pub audience: Option<String>,
    pub jwks_url: Option<String>,
    pub jwks: Option<String>,
}

pub struct NewClient<'a> {
    pub tenant: &'a str,
    pub name: &'a str,
    pub scopes: Scopes,
    /// A first secret, with its lifetime (None: no expiry); None: a client without a secret.
    pub secret: Option<Option<Duration>>,
    pub trust: AssertionTrust,
    /// Where Okta's authorization-code grant may send codes (its OAuth callback URLs).
    pub redirect_uris: Vec<String>,
}

pub struct Created {
    pub client: ClientRecord,
    pub secret: Option<NewSecret>,
}

/// Creates a client and, when asked, its first secret.
pub fn create(conn: &mut DbConnection, req: NewClient<'_>, allow_http_loopback: bool) -> Result<Created, ClientError> {
    let tenant = tenants::by_name(conn, req.tenant)?.ok_or_else(|| ClientError::UnknownTenant(req.tenant.into()))?;
    if req.name.is_empty() || req.name.chars().count() > 64 || req.name.chars().any(char::is_control) {
        return Err(ClientError::Invalid("a client name is 1 to 64 characters without control characters".into()));
    }
    let now = db::now();
    let id = uuid::Uuid::new_v4().to_string();
    let trust = req.trust;
    if trust.jwks_url.is_some() && trust.jwks.is_some() {
        return Err(ClientError::Invalid("give a JWKS URL or a JWKS document, not both".into()));
    }
    let takes_assertions = trust.jwks_url.is_some() || trust.jwks.is_some();
    if !takes_assertions && (trust.issuer.is_some() || trust.subject.is_some() || trust.audience.is_some()) {
        return Err(ClientError::Invalid(
            "an assertion issuer, subject or audience needs a JWKS URL or document".into(),
        ));
    }
    if trust.issuer.is_some() != trust.subject.is_some() {
        return Err(ClientError::Invalid("a federated client names both the issuer and the subject".into()));
    }
    if let Some(url) = &trust.jwks_url {
        jwks::check_url(url, allow_http_loopback).map_err(ClientError::Invalid)?;
    }
    if let Some(doc) = &trust.jwks {
        jwks::KeySet::parse(doc).map_err(ClientError::Invalid)?;
    }
    for uri in &req.redirect_uris {
        check_redirect_uri(uri, allow_http_loopback).map_err(ClientError::Invalid)?;
    }
    if !takes_assertions && req.secret.is_none() {
        return Err(ClientError::Invalid("a client needs a secret or keys (a JWKS URL or document) to sign in".into()));
    }
    let client = ClientRecord {
        id: id.clone(),
        tenant_id: tenant.id,
        name: req.name.to_owned(),
        scope: req.scopes.to_string(),
        created_at: now,
        revoked_at: None,
        // private_key_jwt (RFC 7523 §3): the client signs as itself.
        assertion_issuer: takes_assertions.then(|| trust.issuer.clone().unwrap_or_else(|| id.clone())),
        assertion_subject: takes_assertions.then(|| trust.subject.clone().unwrap_or_else(|| id.clone())),
        assertion_audience: trust.audience,
        jwks_url: trust.jwks_url,
        jwks: trust.jwks,
        redirect_uris: (!req.redirect_uris.is_empty()).then(|| req.redirect_uris.join(" ")),
    };
    let secret = req.secret.map(|expires_in| new_secret(&id, now, expires_in)).transpose()?;
    store::insert_client(conn, &client, secret.as_ref().map(|s| &s.record)).map_err(|e| match e {
        DbError::Query(ref q) if db::is_unique_violation(q) => {
            ClientError::NameTaken { tenant: req.tenant.into(), name: req.name.into() }
        }
        e => e.into(),
    })?;
    Ok(Created { client, secret })
}

/// The named client of the named tenant.
pub fn find(conn: &mut DbConnection, tenant: &str, name: &str) -> Result<ClientRecord, ClientError> {
    let t = tenants::by_name(conn, tenant)?.ok_or_else(|| ClientError::UnknownTenant(tenant.into()))?;
    store::client_by_name(conn, &t.id, name)?
        .ok_or_else(|| ClientError::UnknownClient { tenant: tenant.into(), name: name.into() })
}

/// Adds a secret to a live client; the ones it has stay live (rotation).
pub fn add_secret(
    conn: &mut DbConnection,
    tenant: &str,
    name: &str,
    expires_in: Option<Duration>,
) -> Result<NewSecret, ClientError> {
    let client = find(conn, tenant, name)?;
    if client.revoked_at.is_some() {
        return Err(ClientError::Invalid(format!("client {name:?} is revoked")));
    }
    let secret = new_secret(&client.id, db::now(), expires_in)?;
    store::insert_secret(conn, &secret.record)?;
    Ok(secret)
}

/// The prefix of refresh tokens (Okta's authorization-code grant), so that a leaked one says what
/// it is.
pub const REFRESH_PREFIX: &str = "rrt_";

/// A redirect URI a client may register: https, or http to a loopback address when allowed.
/// No fragment (RFC 6749 §3.1.2).
pub fn check_redirect_uri(uri: &str, allow_http_loopback: bool) -> Result<(), String> {
    let parsed = reqwest::Url::parse(uri).map_err(|e| format!("redirect URI {uri:?} is not a URL: {e}"))?;
    if parsed.fragment().is_some() {
        return Err(format!("redirect URI {uri:?} must not have a fragment"));
    }
    let host = parsed.host_str().unwrap_or("");
    let loopback =
        host.trim_start_matches('[').trim_end_matches(']').parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    match parsed.scheme() {
        "https" if !host.is_empty() => Ok(()),
        "http" if allow_http_loopback && loopback => Ok(()),
        _ => Err(format!("a redirect URI must be https://; got {uri:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_random_and_stored_only_as_their_hash() {
        let now = db::now();
        let a = new_secret("c", now, None).unwrap();
        let b = new_secret("c", now, Some(Duration::from_secs(86_400))).unwrap();
        assert_ne!(a.secret, b.secret);
        assert!(a.secret.starts_with(SECRET_PREFIX) && a.secret.len() == SECRET_PREFIX.len() + 43);
        assert_eq!(a.record.secret_hash, hash(&a.secret));
        assert!(!a.record.secret_hash.contains(&a.secret[SECRET_PREFIX.len()..]));
        assert_eq!(b.record.expires_at, Some(now + chrono::Duration::days(1)));
        assert!(new_secret("c", now, Some(MAX_SECRET_LIFETIME + Duration::from_secs(1))).is_err());
    }
}
