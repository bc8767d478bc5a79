//! JWT client assertions (RFC 7523 §2.2, §3): a client proves itself with a JWT signed by a key
//! of its JWKS, which names the client's issuer and subject, Roster as audience, a short
//! lifetime and a `jti` used once. Entra's workload identity federation sends a token Entra
//! signed (issuer `https://login.microsoftonline.com/{tenant}/v2.0`) the same way.

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

/// The assertion type RFC 7523 §2.2 registers.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Clock skew tolerated between the assertion's issuer and Roster.
pub const LEEWAY_SECS: u64 = 60;
/// Assertions valid for longer than this are refused: their `jti` would be kept that long.
pub const MAX_LIFETIME_SECS: i64 = 25 * 3600;

/// What is read from an assertion before its signature is checked: only to find the client
/// and its key, never to decide anything.
#[derive(Debug)]
pub struct Unverified {
    pub alg: Algorithm,
    pub kid: Option<String>,
    pub iss: String,
    pub sub: String,
}

#[derive(Deserialize)]
struct Names {
    iss: Option<String>,
    sub: Option<String>,
}

/// Reads the header and the issuer and subject. Only RS256 and ES256 pass: `none`, the HMAC
/// algorithms (which would take a public key as a shared secret) and every other are refused.
pub fn peek(assertion: &str) -> Result<Unverified, String> {
    let header = jsonwebtoken::decode_header(assertion).map_err(|_| "the client assertion is not a JWT".to_owned())?;
    if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
        return Err(format!("the client assertion is signed with {:?}; only RS256 and ES256 are accepted", header.alg));
    }
    let names: Names = jsonwebtoken::dangerous::insecure_decode_claims(assertion)
        .map_err(|_| "the client assertion's claims are not readable".to_owned())?;
    match (names.iss, names.sub) {
        (Some(iss), Some(sub)) => Ok(Unverified { alg: header.alg, kid: header.kid, iss, sub }),
        _ => Err("the client assertion lacks iss or sub".into()),
    }
}

/// What a verified assertion tells: its id and when it stops being valid.
#[derive(Debug, Deserialize)]
pub struct Verified {
    pub jti: Option<String>,
    pub exp: i64,
    pub iat: Option<i64>,
}

pub struct Expected<'a> {
    pub issuer: &'a str,
    pub subject: &'a str,
    /// Any one of these must be among the assertion's audiences.
    pub audiences: &'a [String],
}

/// Checks the signature with `key` and the claims RFC 7523 §3 requires.
pub fn verify(
    assertion: &str,
    alg: Algorithm,
    key: &DecodingKey,
    expected: &Expected<'_>,
    now: i64,
) -> Result<Verified, String> {
    use jsonwebtoken::errors::ErrorKind;
    let mut validation = Validation::new(alg);
    validation.algorithms = vec![alg];
    validation.set_issuer(&[expected.issuer]);
    validation.set_audience(expected.audiences);
    validation.sub = Some(expected.subject.to_owned());
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation.validate_nbf = true;
    validation.leeway = LEEWAY_SECS;
    let verified = jsonwebtoken::decode::<Verified>(assertion, key, &validation).map_err(|e| {
        match e.kind() {
            ErrorKind::ExpiredSignature => "the client assertion has expired",
            ErrorKind::ImmatureSignature => "the client assertion is not valid yet (nbf)",
            ErrorKind::InvalidAudience => "the client assertion is meant for another audience",
            ErrorKind::InvalidIssuer => "the client assertion has another issuer",
            ErrorKind::InvalidSubject => "the client assertion has another subject",
            ErrorKind::InvalidSignature => "the client assertion's signature does not match the client's key",
            ErrorKind::InvalidAlgorithm => "the client assertion's algorithm does not suit the client's key",
            ErrorKind::MissingRequiredClaim(_) => "the client assertion lacks exp, iss, aud or sub",
            _ => "the client assertion is malformed",
        }
        .to_owned()
    })?;
    let claims = verified.claims;
    if claims.jti.as_deref().is_none_or(str::is_empty) {
        return Err("the client assertion has no jti (RFC 7523 §3), so a replay could not be told apart".into());
    }
    if claims.exp > now + MAX_LIFETIME_SECS {
        return Err("the client assertion is valid for too long (more than 25 hours)".into());
    }
    if claims.iat.is_some_and(|iat| iat > now + LEEWAY_SECS as i64) {
        return Err("the client assertion was issued in the future (iat)".into());
    }
    Ok(claims)
}
