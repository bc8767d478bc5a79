//! Cursors (RFC 9865) sealed so that a client can hold them but not read or forge them.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

use crate::db::DbConnection;
use crate::error::{ScimError, ScimType};
use crate::scim::list::Cursor;

/// Name of the generated cursor key in the `server_settings` table.
const CURSOR_KEY_SETTING: &str = "cursor_key";

/// Seals cursors (RFC 9865) so that they are opaque and cannot be forged or edited: the row
/// position, sort key (an email, say) and issue time inside are encrypted and authenticated
/// with XChaCha20-Poly1305, the tenant's id bound in as associated data, so a cursor only opens
/// for the tenant it was made for. The key is generated once and kept in the database, so every
/// node sharing it opens every other node's cursors.
#[derive(Clone)]
pub struct CursorKey(XChaCha20Poly1305);

impl std::fmt::Debug for CursorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorKey(..)")
    }
}

impl CursorKey {
    pub fn load(conn: &mut DbConnection) -> Result<CursorKey, crate::db::DbError> {
        Ok(CursorKey::from_bytes(&crate::db::settings::generated_key(conn, CURSOR_KEY_SETTING)?))
    }

    fn from_bytes(bytes: &[u8]) -> CursorKey {
        CursorKey(XChaCha20Poly1305::new_from_slice(bytes).expect("a 32-byte key"))
    }

    /// URL-safe text: a random 24-byte nonce, then the sealed cursor.
    pub fn seal(&self, cursor: &Cursor, tenant_id: &str) -> String {
        let nonce: [u8; 24] = rand::random();
        let mut msg = serde_json::to_vec(cursor).expect("a cursor serialises");
        // Padded (JSON allows trailing spaces) so that the length tells little about the sort key.
        msg.resize(msg.len().next_multiple_of(64), b' ');
        let sealed = self
            .0
            .encrypt(&XNonce::from(nonce), Payload { msg: &msg, aad: tenant_id.as_bytes() })
            .expect("encryption into memory cannot fail");
        URL_SAFE_NO_PAD.encode([nonce.as_slice(), &sealed].concat())
    }

    /// The cursor inside `text` when this server sealed it for this tenant, unaltered.
    pub fn open(&self, text: &str, tenant_id: &str) -> Result<Cursor, ScimError> {
        let invalid = || {
            ScimError::bad_request(
                ScimType::InvalidCursor,
                "The cursor is not valid: it was altered, or made by another server or for another tenant",
            )
        };
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| invalid())?;
        let (nonce, sealed) = bytes.split_first_chunk::<24>().ok_or_else(invalid)?;
        let msg = self
            .0
            .decrypt(&XNonce::from(*nonce), Payload { msg: sealed, aad: tenant_id.as_bytes() })
            .map_err(|_| invalid())?;
        serde_json::from_slice(&msg).map_err(|_| invalid())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_cursors_open_only_unaltered_with_their_key_and_tenant() {
        let key = CursorKey::from_bytes(&[9; 32]);
        let cursor = Cursor { forward: true, key: Some("a@example.com".into()), pk: 7, query: "q".into(), issued: 1 };
        let text = key.seal(&cursor, "t1");
        assert_eq!(key.open(&text, "t1").unwrap(), cursor);
        assert_ne!(key.seal(&cursor, "t1"), text, "a fresh nonce each time: equal cursors do not look equal");
        let refused = |text: &str, key: &CursorKey, tenant: &str| {
            key.open(text, tenant).unwrap_err().scim_type == Some(ScimType::InvalidCursor)
        };
        assert!(refused(&text, &key, "t2"));
        assert!(refused(&text, &CursorKey::from_bytes(&[8; 32]), "t1"));
        let mut bytes = URL_SAFE_NO_PAD.decode(&text).unwrap();
        for i in [0, 24, bytes.len() - 1] {
            bytes[i] ^= 1;
            assert!(refused(&URL_SAFE_NO_PAD.encode(&bytes), &key, "t1"), "byte {i} flipped");
            bytes[i] ^= 1;
        }
        let short = key.seal(&Cursor { key: Some("a@b.c".into()), ..cursor.clone() }, "t1");
        assert_eq!(short.len(), text.len(), "padded: the sort key's length does not show");
        assert!(refused("", &key, "t1"));
        assert!(refused("%%%", &key, "t1"));
        assert!(refused(&URL_SAFE_NO_PAD.encode([0u8; 23]), &key, "t1"));
    }
}
