//! Bearer tokens: JWTs that Roster signs (HS256) naming a tenant, a subject and scopes.
//!
//! A token is accepted only when its signature, algorithm, issuer, audience and times check
//! out, and its `jti` is on record for its tenant and not revoked (docs/storage.md, "Tokens and scopes"). The record,
//! not the claims, says what the token may do: whoever learns the signing key (it sits in the
//! database unless configured) can sign claims, but cannot widen a recorded token's powers or
//! make up a token that was never issued.
//!
//! `oauth` issues the same tokens at `/oauth/token` to OAuth clients (docs/oauth.md), and checks
//! the RS256/ES256 tokens of authorization servers a tenant trusts; those too end in [`admit`].

pub mod cache;
mod extract;
pub mod oauth;
pub mod scope;

pub use extract::Principal;
pub use scope::{Scope, Scopes};

use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use validator::{Validate, ValidationError};

use crate::db::{self, tenants, tokens::TokenRecord, DbConnection, DbError};

pub const ISSUER: &str = "roster";
pub const AUDIENCE: &str = "roster";
/// Name of the generated signing key in the `server_settings` table.
const KEY_SETTING: &str = "token_signing_key";
/// Clock skew tolerated between the node that issued a token and the one checking it.
const LEEWAY_SECS: u64 = 5;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    /// The tenant's id (stable across renames).
    pub tenant: String,
    /// Space-separated, as in RFC 8693 §4.2.
    pub scope: String,
    pub iat: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    pub jti: String,
}

/// The HS256 key pair and the validation rules, built once at start-up.
#[derive(Clone)]
pub struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl Keys {
    pub fn from_secret(secret: &[u8]) -> Keys {
        // Only HS256: `alg: none`, RS256 and every other algorithm are refused before the
        // signature is looked at, which closes algorithm-confusion attacks.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECS;
        Keys { encoding: EncodingKey::from_secret(secret), decoding: DecodingKey::from_secret(secret), validation }
    }

    /// The configured secret when there is one (at least 32 bytes), otherwise the key generated
    /// on first start and kept in the database, so that every node sharing it agrees.
    pub fn load(conn: &mut DbConnection, configured: Option<&str>) -> Result<Keys, anyhow::Error> {
        if let Some(secret) = configured {
            anyhow::ensure!(secret.len() >= 32, "the token secret must be at least 32 bytes long");
            return Ok(Keys::from_secret(secret.as_bytes()));
        }
        Ok(Keys::from_secret(&db::settings::generated_key(conn, KEY_SETTING)?))
    }

    pub fn sign(&self, claims: &Claims) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .expect("HS256 signing of serialisable claims cannot fail")
    }

    /// Whether claims that verified earlier still hold at `now` (seconds since the epoch):
    /// the same `exp` and `nbf` rules, with the same leeway, as [`Keys::verify`] applies.
    pub fn still_valid(claims: &Claims, now: i64) -> bool {
        let leeway = LEEWAY_SECS as i64;
        claims.exp.is_none_or(|exp| exp >= now - leeway) && claims.nbf.is_none_or(|nbf| nbf <= now + leeway)
    }

    /// Checks signature and claims; the database check comes after, in [`Principal`].
    pub fn verify(&self, token: &str) -> Result<Claims, String> {
        use jsonwebtoken::errors::ErrorKind;
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).map(|d| d.claims).map_err(|e| {
            match e.kind() {
                ErrorKind::ExpiredSignature => "The token has expired",
                ErrorKind::ImmatureSignature => "The token is not valid yet",
                ErrorKind::InvalidAudience => "The token is meant for another audience",
                ErrorKind::InvalidIssuer => "The token was issued by another issuer",
                ErrorKind::InvalidSignature => "The token's signature does not match",
                ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => "The token's algorithm is not accepted",
                _ => "The token is malformed",
            }
            .to_owned()
        })
    }
}

/// What a verified token may do: the powers its stored record grants, narrowed by its claims.
/// Claims may narrow (fewer scopes, an earlier `exp`) but never widen the record: a subject,
/// scope or lifetime the record lacks means the claims were not signed by `roster token issue`.
pub fn admit(claims: &Claims, record: Option<&TokenRecord>, now: i64) -> Result<Scopes, &'static str> {
    let record = match record {
        Some(r) if r.jti == claims.jti && r.tenant_id == claims.tenant => r,
        _ => return Err("The token is not known to this server"),
    };
    if record.revoked_at.is_some() {
        return Err("The token has been revoked");
    }
    if record.expires_at.is_some_and(|exp| exp.and_utc().timestamp() < now - LEEWAY_SECS as i64) {
        return Err("The token has expired");
    }
    let claimed: Scopes = claims.scope.parse().map_err(|_| "The token's scope is malformed")?;
    let granted: Scopes = record.scope.parse().map_err(|_| "The token's record has a malformed scope")?;
    if !claimed.within(&granted) || claims.sub != record.name {
        return Err("The token's claims do not match the token issued under its id");
    }
    Ok(claimed)
}

#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error("no tenant named {0:?}")]
    UnknownTenant(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// What `roster token issue` asks for; [`issue`] checks the rules written on the fields.
#[derive(Validate)]
pub struct TokenRequest<'a> {
    pub tenant: &'a str,
    /// The connection's name becomes the token's subject and the actor of the audit log, and
    /// `roster token list` prints it between tabs: short, and without control characters.
    #[validate(length(min = 1, max = 64), custom(function = "no_control_characters"))]
    pub name: &'a str,
    pub scopes: Scopes,
    #[validate(custom(function = "within_a_century"))]
    pub expires_in: Option<Duration>,
}

fn no_control_characters(name: &str) -> Result<(), ValidationError> {
    match name.chars().find(|c| c.is_control()) {
        None => Ok(()),
        Some(c) => Err(ValidationError::new("control_character")
            .with_message(format!("name must not hold control characters; got {c:?} in {name:?}").into())),
    }
}

/// A lifetime beyond a century is meant as "never expires" (issue the token without one), and
/// far enough beyond it no timestamp can hold the expiry.
fn within_a_century(lifetime: &Duration) -> Result<(), ValidationError> {
    if lifetime.as_secs() <= 36_500 * 86_400 {
        return Ok(());
    }
    Err(ValidationError::new("lifetime")
        .with_message("expires must be at most 36500 days; for a token that never expires, leave expires out".into()))
}

pub struct Issued {
    pub token: String,
    pub claims: Claims,
}

/// Records and signs a new token.
pub fn issue(conn: &mut DbConnection, keys: &Keys, req: TokenRequest<'_>) -> Result<Issued, IssueError> {
    req.validate().map_err(|e| IssueError::Invalid(crate::validation::describe(&e, str::to_owned)))?;
    let tenant = tenants::by_name(conn, req.tenant)?.ok_or_else(|| IssueError::UnknownTenant(req.tenant.to_owned()))?;
    let issued_at = db::now();
    let expires_at = req.expires_in.map(|d| issued_at + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX));
    let record = TokenRecord {
        jti: uuid::Uuid::new_v4().to_string(),
        tenant_id: tenant.id,
        name: req.name.to_owned(),
        scope: req.scopes.to_string(),
        issued_at,
        expires_at,
        revoked_at: None,
        client_id: None,
    };
    Ok(record_and_sign(conn, keys, record)?)
}

/// Stores `record` and signs the token it describes: the one way every token Roster issues is
/// made, from the CLI or at `/oauth/token`, so every one is checked the same way ([`admit`]).
pub fn record_and_sign(conn: &mut DbConnection, keys: &Keys, record: TokenRecord) -> Result<Issued, DbError> {
    db::tokens::insert(conn, &record)?;
    let issued_at = record.issued_at;
    let expires_at = record.expires_at;
    let claims = Claims {
        iss: ISSUER.to_owned(),
        aud: AUDIENCE.to_owned(),
        sub: record.name,
        tenant: record.tenant_id,
        scope: record.scope,
        iat: issued_at.and_utc().timestamp(),
        nbf: None,
        exp: expires_at.map(|t| t.and_utc().timestamp()),
        jti: record.jti,
    };
    Ok(Issued { token: keys.sign(&claims), claims })
}

/// Parses `90d`, `12h`, `30m`, `45s` or a bare number of seconds.
pub fn parse_lifetime(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (digits, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u64 = digits.parse().map_err(|_| format!("{text:?} is not a lifetime like 90d, 12h, 30m or 45s"))?;
    let unit_secs: u64 = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("unknown unit {unit:?} in {text:?}: use s, m, h or d")),
    };
    let secs = n.checked_mul(unit_secs).ok_or_else(|| format!("{text:?} is longer than any lifetime"))?;
    if secs == 0 {
        return Err("a token lifetime must be longer than zero".into());
    }
    Ok(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_accept_days_hours_minutes_seconds() {
        assert_eq!(parse_lifetime("90d").unwrap(), Duration::from_secs(90 * 86_400));
        assert_eq!(parse_lifetime("12h").unwrap(), Duration::from_secs(12 * 3600));
        assert_eq!(parse_lifetime("30m").unwrap(), Duration::from_secs(1800));
        assert_eq!(parse_lifetime("45").unwrap(), Duration::from_secs(45));
        assert!(parse_lifetime("0d").is_err());
        assert!(parse_lifetime("3w").unwrap_err().contains("unknown unit"));
        assert!(parse_lifetime("soon").is_err());
    }

    #[test]
    fn lifetimes_too_long_to_count_are_refused_not_wrapped() {
        assert!(parse_lifetime("999999999999999d").unwrap_err().contains("longer than any lifetime"));
    }

    fn request(name: &str, expires_in: Option<Duration>) -> TokenRequest<'_> {
        TokenRequest { tenant: "default", name, scopes: "scim".parse().unwrap(), expires_in }
    }

    fn refusal(req: TokenRequest<'_>) -> String {
        crate::validation::describe(&req.validate().expect_err("the request is refused"), str::to_owned)
    }

    #[test]
    fn a_token_name_is_a_short_line_of_text() {
        assert!(request("okta-prod", None).validate().is_ok());
        assert!(request("Entra ID (prod)", None).validate().is_ok());
        assert_eq!(refusal(request("", None)), "name must be 1 to 64 characters long");
        assert_eq!(refusal(request(&"x".repeat(65), None)), "name must be 1 to 64 characters long; got 65");
        assert_eq!(
            refusal(request("okta\tprod", None)),
            "name must not hold control characters; got '\\t' in \"okta\\tprod\""
        );
    }

    #[test]
    fn a_token_lifetime_is_at_most_a_century() {
        let century = Duration::from_secs(36_500 * 86_400);
        assert!(request("okta", Some(century)).validate().is_ok());
        let refused = refusal(request("okta", Some(century + Duration::from_secs(1))));
        assert!(refused.starts_with("expires must be at most 36500 days"), "{refused}");
    }

    #[test]
    fn the_record_bounds_what_claims_may_grant() {
        let now = chrono::Utc::now();
        let record = TokenRecord {
            jti: "j".into(),
            tenant_id: "t".into(),
            name: "okta".into(),
            scope: "scim events".into(),
            issued_at: now.naive_utc(),
            expires_at: None,
            revoked_at: None,
            client_id: None,
        };
        let claims = |sub: &str, tenant: &str, scope: &str| Claims {
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            sub: sub.into(),
            tenant: tenant.into(),
            scope: scope.into(),
            iat: now.timestamp(),
            nbf: None,
            exp: None,
            jti: "j".into(),
        };
        let t = now.timestamp();
        assert_eq!(admit(&claims("okta", "t", "scim events"), Some(&record), t), Ok("scim events".parse().unwrap()));
        assert_eq!(admit(&claims("okta", "t", "scim:read"), Some(&record), t), Ok("scim:read".parse().unwrap()));
        for wider in [claims("okta", "t", "scim admin"), claims("root", "t", "scim"), claims("okta", "u", "scim")] {
            assert!(admit(&wider, Some(&record), t).is_err(), "{wider:?}");
        }
        assert!(admit(&claims("okta", "t", "scim"), None, t).is_err());
        let revoked = TokenRecord { revoked_at: Some(now.naive_utc()), ..record.clone() };
        assert_eq!(admit(&claims("okta", "t", "scim"), Some(&revoked), t), Err("The token has been revoked"));
        let expired = TokenRecord { expires_at: Some(now.naive_utc() - chrono::Duration::minutes(1)), ..record };
        assert_eq!(admit(&claims("okta", "t", "scim"), Some(&expired), t), Err("The token has expired"));
    }

    /// A remembered token is held to the times `verify` checks, with the same leeway: the
    /// signature is what the cache spares, not the expiry.
    #[test]
    fn remembered_claims_expire_as_verify_would_have_them() {
        let keys = Keys::from_secret(&[7; 32]);
        let now = chrono::Utc::now().timestamp();
        let claims = |nbf: Option<i64>, exp: Option<i64>| Claims {
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            sub: "s".into(),
            tenant: "t".into(),
            scope: "scim".into(),
            iat: now - 100,
            nbf,
            exp,
            jti: "j".into(),
        };
        for (nbf, exp) in [
            (None, None),
            (None, Some(now + 60)),
            (None, Some(now - 3)),
            (None, Some(now - 60)),
            (Some(now + 3), None),
            (Some(now + 60), None),
            (Some(now - 60), Some(now + 60)),
        ] {
            let c = claims(nbf, exp);
            let verified = keys.verify(&keys.sign(&c)).is_ok();
            assert_eq!(Keys::still_valid(&c, now), verified, "nbf {nbf:?}, exp {exp:?}, now {now}");
        }
        assert!(!Keys::still_valid(&claims(None, Some(now - 60)), now));
        assert!(!Keys::still_valid(&claims(Some(now + 60), None), now));
    }
}
