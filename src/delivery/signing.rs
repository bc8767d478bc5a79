//! Standard Webhooks signatures, and the signing secrets sealed at rest.
//!
//! A secret is 32 random bytes, shown once as `whsec_<base64>` (the form Standard Webhooks
//! libraries read). A request carries `webhook-signature: v1,<base64 HMAC-SHA256 of
//! "{webhook-id}.{webhook-timestamp}.{body}">`, one such signature per live secret, separated
//! by spaces (two during a rotation).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::db::{DbConnection, DbError};

const PREFIX: &str = "whsec_";
/// Name of the generated sealing key in the `server_settings` table.
const SEAL_KEY_SETTING: &str = "webhook_secret_key";

/// A webhook's signing secret, in the clear; only ever in memory.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    /// Key material to seal that is not a webhook secret (a SET signing key's private half).
    pub fn from_bytes(bytes: Vec<u8>) -> Secret {
        Secret(bytes)
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn generate() -> Secret {
        Secret(rand::random::<[u8; 32]>().to_vec())
    }

    /// The form printed to the operator once, and pasted into the receiver's configuration.
    pub fn reveal(&self) -> String {
        format!("{PREFIX}{}", STANDARD.encode(&self.0))
    }

    /// `v1,<base64 signature>` of one message.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC takes a key of any length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

/// The `webhook-signature` header's value: a signature with each live secret, space-separated.
pub fn signature_header(secrets: &[Secret], id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets.iter().map(|s| s.sign(id, timestamp, body)).collect::<Vec<_>>().join(" ")
}

/// Seals secrets for the database with XChaCha20-Poly1305 under a key generated once and kept
/// in `server_settings`, the webhook's id bound in as associated data: a sealed secret copied
/// to another webhook's row does not open. Whoever holds the whole database holds the key too
/// (as for the token signing key); what this keeps secret is every partial copy — an export of
/// the table, a log of the row, a query result pasted into a ticket.
#[derive(Clone)]
pub struct SealKey(XChaCha20Poly1305);

impl SealKey {
    pub fn load(conn: &mut DbConnection) -> Result<SealKey, DbError> {
        let key = crate::db::settings::generated_key(conn, SEAL_KEY_SETTING)?;
        Ok(SealKey(XChaCha20Poly1305::new_from_slice(&key).expect("a 32-byte key")))
    }

    pub fn seal(&self, secret: &Secret, webhook_id: &str) -> String {
        let nonce: [u8; 24] = rand::random();
        let sealed = self
            .0
            .encrypt(&XNonce::from(nonce), Payload { msg: &secret.0, aad: webhook_id.as_bytes() })
            .expect("encryption into memory cannot fail");
        STANDARD.encode([nonce.as_slice(), &sealed].concat())
    }

    pub fn open(&self, sealed: &str, webhook_id: &str) -> Result<Secret, SealError> {
        let bytes = STANDARD.decode(sealed).map_err(|_| SealError)?;
        let (nonce, sealed) = bytes.split_first_chunk::<24>().ok_or(SealError)?;
        let plain = self
            .0
            .decrypt(&XNonce::from(*nonce), Payload { msg: sealed, aad: webhook_id.as_bytes() })
            .map_err(|_| SealError)?;
        Ok(Secret(plain))
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the webhook's stored secret does not open with this database's key; rotate the secret")]
pub struct SealError;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_as_the_standard_webhooks_reference_does() {
        // The example of the Standard Webhooks specification (its reference libraries' tests).
        let secret = Secret(STANDARD.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap());
        let signed = secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330, b"{\"test\": 2432232314}");
        assert_eq!(signed, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn a_secret_signs_with_its_own_bytes_and_reveals_them() {
        let secret = Secret::generate();
        let shown = secret.reveal();
        let bytes = STANDARD.decode(shown.strip_prefix("whsec_").unwrap()).unwrap();
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&bytes).unwrap();
        mac.update(b"evt_1.1700000000.{}");
        assert_eq!(
            secret.sign("evt_1", 1_700_000_000, b"{}"),
            format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
        );
        let other = Secret::generate();
        assert_eq!(signature_header(&[secret.clone(), other.clone()], "a", 1, b"b").split(' ').count(), 2);
    }

    #[test]
    fn a_sealed_secret_opens_only_for_its_webhook() {
        let key = SealKey(XChaCha20Poly1305::new_from_slice(&[7; 32]).unwrap());
        let secret = Secret::generate();
        let sealed = key.seal(&secret, "wh_1");
        assert!(!sealed.contains(&STANDARD.encode(&secret.0)));
        assert_eq!(key.open(&sealed, "wh_1").unwrap(), secret);
        assert!(key.open(&sealed, "wh_2").is_err());
    }
}
