//! A tenant's SET signing keys (docs/security-events.md, "Keys"): asymmetric (ES256 by default,
//! RS256 on request), made the first time the tenant signs a SET or by a rotation, the private
//! half sealed in the database, the public half published as the tenant's JWKS (RFC 7517 §5).
//! A rotation makes a new key the signing one and keeps the replaced one published for a grace
//! period, so that a receiver still verifies SETs it signed; then it is dropped.

use std::time::Duration;

use chrono::NaiveDateTime;
use jsonwebtoken::jwk::{Jwk, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::Value;

use super::signing::{SealError, SealKey, Secret};
use crate::db::signing_keys::{self as store, SigningKeyRow};
use crate::db::{write_transaction, DbConnection, DbError};

/// The media type of a SET (RFC 8417 §2.3), its JOSE `typ` header.
pub const SET_TYP: &str = "secevent+jwt";

/// The algorithms a tenant's key may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlg {
    Es256,
    Rs256,
}

impl KeyAlg {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyAlg::Es256 => "ES256",
            KeyAlg::Rs256 => "RS256",
        }
    }

    fn algorithm(self) -> Algorithm {
        match self {
            KeyAlg::Es256 => Algorithm::ES256,
            KeyAlg::Rs256 => Algorithm::RS256,
        }
    }

    fn encoding_key(self, der: &[u8]) -> EncodingKey {
        match self {
            KeyAlg::Es256 => EncodingKey::from_ec_der(der),
            KeyAlg::Rs256 => EncodingKey::from_rsa_der(der),
        }
    }
}

impl std::str::FromStr for KeyAlg {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().as_str() {
            "ES256" => Ok(KeyAlg::Es256),
            "RS256" => Ok(KeyAlg::Rs256),
            _ => Err(KeyError::UnknownAlgorithm(s.to_owned())),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("unknown key algorithm {0:?}; use ES256 or RS256")]
    UnknownAlgorithm(String),
    #[error("a SET signing key could not be made: {0}")]
    Generate(String),
    #[error("the stored signing key {0:?} is unusable; rotate the tenant's keys")]
    Unusable(String),
    #[error(transparent)]
    Seal(#[from] SealError),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for KeyError {
    fn from(e: diesel::result::Error) -> Self {
        KeyError::Db(e.into())
    }
}

/// The key a tenant signs with, opened.
pub struct TenantKey {
    pub kid: String,
    alg: KeyAlg,
    key: EncodingKey,
}

impl TenantKey {
    fn open(seal: &SealKey, row: &SigningKeyRow) -> Result<TenantKey, KeyError> {
        let alg: KeyAlg = row.alg.parse().map_err(|_| KeyError::Unusable(row.kid.clone()))?;
        let der = seal.open(&row.private_key, &row.kid)?;
        Ok(TenantKey { kid: row.kid.clone(), alg, key: alg.encoding_key(der.bytes()) })
    }

    /// The compact JWS of `claims`, with `typ: secevent+jwt` and this key's `kid`.
    pub fn sign(&self, claims: &Value) -> Result<String, KeyError> {
        let mut header = Header::new(self.alg.algorithm());
        header.typ = Some(SET_TYP.to_owned());
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.key).map_err(|_| KeyError::Unusable(self.kid.clone()))
    }
}

/// A new key pair for the tenant, its private half sealed.
fn generate(seal: &SealKey, tenant_id: &str, alg: KeyAlg, now: NaiveDateTime) -> Result<SigningKeyRow, KeyError> {
    let der = match alg {
        KeyAlg::Es256 => {
            use p256::pkcs8::EncodePrivateKey;
            let key = p256::SecretKey::random(&mut rand_core::OsRng);
            key.to_pkcs8_der().map_err(|e| KeyError::Generate(e.to_string()))?.as_bytes().to_vec()
        }
        KeyAlg::Rs256 => {
            use rsa::pkcs1::EncodeRsaPrivateKey;
            let key =
                rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 2048).map_err(|e| KeyError::Generate(e.to_string()))?;
            key.to_pkcs1_der().map_err(|e| KeyError::Generate(e.to_string()))?.as_bytes().to_vec()
        }
    };
    let kid = format!("sk_{}", uuid::Uuid::new_v4().simple());
    let mut jwk = Jwk::from_encoding_key(&alg.encoding_key(&der), alg.algorithm())
        .map_err(|e| KeyError::Generate(e.to_string()))?;
    jwk.common.key_id = Some(kid.clone());
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    jwk.common.key_algorithm = Some(match alg {
        KeyAlg::Es256 => KeyAlgorithm::ES256,
        KeyAlg::Rs256 => KeyAlgorithm::RS256,
    });
    Ok(SigningKeyRow {
        private_key: seal.seal(&Secret::from_bytes(der), &kid),
        public_jwk: serde_json::to_string(&jwk).map_err(|e| KeyError::Generate(e.to_string()))?,
        kid,
        tenant_id: tenant_id.to_owned(),
        alg: alg.as_str().to_owned(),
        created_at: now,
        retired_at: None,
        expires_at: None,
    })
}

/// The tenant's signing key, made (ES256) the first time it is needed.
pub fn current(
    conn: &mut DbConnection,
    seal: &SealKey,
    tenant_id: &str,
    now: NaiveDateTime,
) -> Result<TenantKey, KeyError> {
    if let Some(row) = store::current(conn, tenant_id)? {
        return TenantKey::open(seal, &row);
    }
    let row = generate(seal, tenant_id, KeyAlg::Es256, now)?;
    write_transaction(conn, |conn| {
        // Two nodes making the first key at once make two; the newer signs, both are published.
        if let Some(existing) = store::current(conn, tenant_id)? {
            return TenantKey::open(seal, &existing);
        }
        store::insert(conn, &row)?;
        TenantKey::open(seal, &row)
    })
}

/// Makes a new `alg` key the tenant's signing key; the keys it replaces stay published for
/// `grace`. Returns the new key's row (its public JWK) and how many keys it replaced.
pub fn rotate(
    conn: &mut DbConnection,
    seal: &SealKey,
    tenant_id: &str,
    alg: KeyAlg,
    grace: Duration,
    now: NaiveDateTime,
) -> Result<(SigningKeyRow, usize), KeyError> {
    let row = generate(seal, tenant_id, alg, now)?;
    let until = now + chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::MAX);
    write_transaction(conn, |conn| {
        let retired = store::retire(conn, tenant_id, now, until)?;
        store::insert(conn, &row)?;
        Ok::<_, KeyError>(retired)
    })
    .map(|retired| (row, retired))
}

/// The tenant's JWKS (RFC 7517 §5): the current key and those still in their grace period.
pub fn jwks(conn: &mut DbConnection, tenant_id: &str, now: NaiveDateTime) -> Result<JwkSet, KeyError> {
    let keys = store::published(conn, tenant_id, now)?
        .into_iter()
        .map(|row| serde_json::from_str::<Jwk>(&row.public_jwk).map_err(|_| KeyError::Unusable(row.kid)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(JwkSet { keys })
}

/// The published keys' rows, for `roster tenant keys list`.
pub fn list(conn: &mut DbConnection, tenant_id: &str, now: NaiveDateTime) -> Result<Vec<SigningKeyRow>, KeyError> {
    Ok(store::published(conn, tenant_id, now)?)
}
