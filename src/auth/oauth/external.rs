//! Access tokens of authorization servers a tenant trusts (docs/oauth.md, "External
//! authorization servers"): a tenant names an issuer, the audience its tokens carry for Roster,
//! the JWKS URL of its keys and the most its tokens may do. A SCIM request carrying such a
//! token (RS256 or ES256) is checked here and then, like every token, by [`crate::auth::admit`]
//! against a record: here the record is made from the trusted server's configuration, so the
//! tenant and the scope ceiling come from Roster, never from the token alone. A checked token
//! is remembered like every other (`token_cache_ms`): removing a trusted server takes effect
//! within that time.

use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;
use serde_json::Value;

use super::ClientError;
use crate::auth::{Claims, Scope, Scopes};
use crate::db::oauth::{self as store, IssuerRecord};
use crate::db::tokens::TokenRecord;
use crate::db::{self, tenants, DbConnection, DbError};
use crate::state::AppState;

/// Clock skew tolerated between the external server and Roster.
const LEEWAY_SECS: u64 = 60;

pub struct NewIssuer<'a> {
    pub tenant: &'a str,
    pub name: &'a str,
    pub issuer: &'a str,
    pub audience: &'a str,
    pub jwks_url: &'a str,
    pub scopes: Scopes,
}

pub fn add(
    conn: &mut DbConnection,
    req: NewIssuer<'_>,
    allow_http_loopback: bool,
) -> Result<IssuerRecord, ClientError> {
    let tenant = tenants::by_name(conn, req.tenant)?.ok_or_else(|| ClientError::UnknownTenant(req.tenant.into()))?;
    if req.name.is_empty() || req.name.chars().count() > 64 || req.name.chars().any(char::is_control) {
        return Err(ClientError::Invalid("a name is 1 to 64 characters without control characters".into()));
    }
    if req.issuer.is_empty() || req.audience.is_empty() {
        return Err(ClientError::Invalid("the issuer and the audience must not be empty".into()));
    }
    super::jwks::check_url(req.jwks_url, allow_http_loopback).map_err(ClientError::Invalid)?;
    let record = IssuerRecord {
        id: db::new_id(),
        tenant_id: tenant.id,
        name: req.name.into(),
        issuer: req.issuer.into(),
        audience: req.audience.into(),
        jwks_url: req.jwks_url.into(),
        scope: req.scopes.to_string(),
        created_at: db::now(),
    };
    store::insert_issuer(conn, &record).map_err(|e| match e {
        DbError::Query(ref q) if db::is_unique_violation(q) => ClientError::Invalid(format!(
            "tenant {:?} already trusts a server named {:?}, or a tenant already trusts issuer {:?} for audience {:?}",
            req.tenant, req.name, req.issuer, req.audience
        )),
        e => e.into(),
    })?;
    Ok(record)
}

/// The algorithm of a token signed with a key pair, the kind an external server issues;
/// None for every other token (Roster's own are HS256).
pub fn key_pair_algorithm(token: &str) -> Option<Algorithm> {
    let alg = jsonwebtoken::decode_header(token).ok()?.alg;
    matches!(alg, Algorithm::RS256 | Algorithm::ES256).then_some(alg)
}

#[derive(Deserialize)]
struct Unverified {
    iss: Option<String>,
    #[serde(default)]
    aud: Value,
}

#[derive(Deserialize)]
struct External {
    sub: String,
    exp: i64,
    iat: Option<i64>,
    nbf: Option<i64>,
    jti: Option<String>,
    scope: Option<String>,
    /// Entra and others write scopes as `scp`, a string or an array.
    scp: Option<Value>,
}

/// Checks an external access token and returns the claims and the record [`crate::auth::admit`]
/// holds them to; the error is the 401's detail.
pub async fn check(state: &AppState, token: &str, alg: Algorithm) -> Result<(Claims, TokenRecord), String> {
    let unverified: Unverified =
        jsonwebtoken::dangerous::insecure_decode_claims(token).map_err(|_| "The token is malformed".to_owned())?;
    let iss = unverified.iss.unwrap_or_default();
    let named = iss.clone();
    let candidates = state.db.run(move |conn| store::issuers_named(conn, &named)).await.map_err(|e| e.to_string())?;
    let audiences: Vec<&str> = match &unverified.aud {
        Value::String(a) => vec![a.as_str()],
        Value::Array(list) => list.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let Some(trusted) = candidates.into_iter().find(|c| audiences.contains(&c.audience.as_str())) else {
        return Err(format!(
            "The token is signed with {alg:?}, an algorithm Roster accepts only from an authorization server a \
             tenant trusts, and no tenant trusts issuer {iss:?} for the token's audience"
        ));
    };
    let kid = jsonwebtoken::decode_header(token).ok().and_then(|h| h.kid);
    let key = state
        .oauth
        .jwks
        .key(&trusted.jwks_url, kid.as_deref(), alg)
        .await
        .map_err(|e| format!("The token cannot be checked: {e}"))?;
    let mut validation = Validation::new(alg);
    validation.algorithms = vec![alg];
    validation.set_issuer(&[&trusted.issuer]);
    validation.set_audience(&[&trusted.audience]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation.validate_nbf = true;
    validation.leeway = LEEWAY_SECS;
    let external = jsonwebtoken::decode::<External>(token, &key, &validation).map_err(|e| {
        use jsonwebtoken::errors::ErrorKind;
        match e.kind() {
            ErrorKind::ExpiredSignature => "The token has expired",
            ErrorKind::ImmatureSignature => "The token is not valid yet",
            ErrorKind::InvalidSignature => "The token's signature does not match the issuer's key",
            _ => "The token's claims do not check out (iss, aud, sub, exp)",
        }
        .to_owned()
    })?;
    let claims = external.claims;
    let ceiling: Scopes = trusted.scope.parse().map_err(|_| "The trusted server's scope is malformed".to_owned())?;
    let granted = granted_scopes(claims.scope.as_deref(), claims.scp.as_ref(), &ceiling)
        .ok_or_else(|| format!("The token carries none of the scopes its issuer may grant here ({ceiling})"))?;
    let issued_at = claims.iat.and_then(|t| chrono::DateTime::from_timestamp(t, 0)).map(|t| t.naive_utc());
    let expires_at = chrono::DateTime::from_timestamp(claims.exp, 0).map(|t| t.naive_utc());
    // External tokens need no jti; the token's own hash names it otherwise.
    let jti = claims.jti.filter(|j| !j.is_empty()).unwrap_or_else(|| super::hash(token));
    let record = TokenRecord {
        jti: jti.clone(),
        tenant_id: trusted.tenant_id.clone(),
        name: claims.sub.clone(),
        scope: granted.to_string(),
        issued_at: issued_at.unwrap_or_else(db::now),
        expires_at,
        revoked_at: None,
        client_id: None,
    };
    let claims = Claims {
        iss: trusted.issuer,
        aud: trusted.audience,
        sub: claims.sub,
        tenant: trusted.tenant_id,
        scope: record.scope.clone(),
        iat: claims.iat.unwrap_or_default(),
        nbf: claims.nbf,
        exp: Some(claims.exp),
        jti,
    };
    Ok((claims, record))
}

/// The Roster scopes among the token's (`scope`, space-separated, or `scp`), within `ceiling`.
/// Scopes of other applications are ignored; None when no Roster scope is left.
fn granted_scopes(scope: Option<&str>, scp: Option<&Value>, ceiling: &Scopes) -> Option<Scopes> {
    let mut names: Vec<String> = scope.unwrap_or("").split(' ').map(str::to_owned).collect();
    match scp {
        Some(Value::String(s)) => names.extend(s.split(' ').map(str::to_owned)),
        Some(Value::Array(list)) => names.extend(list.iter().filter_map(Value::as_str).map(str::to_owned)),
        _ => {}
    }
    let known: Vec<&str> =
        names.iter().map(String::as_str).filter(|n| n.parse::<Scope>().is_ok_and(|s| ceiling.grants(s))).collect();
    known.join(" ").parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_roster_scopes_within_the_ceiling_are_granted() {
        let ceiling: Scopes = "scim".parse().unwrap();
        let scp = serde_json::json!(["openid", "scim:read"]);
        assert_eq!(granted_scopes(Some("openid scim"), None, &ceiling).unwrap().to_string(), "scim");
        assert_eq!(granted_scopes(None, Some(&scp), &ceiling).unwrap().to_string(), "scim:read");
        assert!(granted_scopes(Some("admin events"), None, &ceiling).is_none());
        assert!(granted_scopes(None, None, &ceiling).is_none());
    }
}
