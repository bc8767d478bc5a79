//! A short-lived memory of token checks, so a busy IdP connection pays neither the signature
//! check nor a database round trip on every request. It is keyed by the token's exact text and
//! only tokens whose signature verified reach it, so it cannot be flooded without the signing
//! key, and a token that differs by one byte is checked afresh. A remembered token is still held
//! to its `exp` and `nbf` at every use. A revocation takes effect within the cache lifetime
//! (`token_cache_ms`, 1 s by default) on every node.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::Claims;
use crate::db::tokens::TokenRecord;
use crate::metrics::Caller;

/// Entries kept at most; past it the cache starts afresh.
const MAX_ENTRIES: usize = 10_000;

/// What was learnt about one token: its verified claims, and the database's record for its jti
/// (None: not on record for its tenant), which [`super::admit`] holds the claims to at each use.
#[derive(Debug, Clone)]
pub struct Checked {
    pub claims: Arc<Claims>,
    pub record: Option<Arc<TokenRecord>>,
    /// The token's tenant and connection as metrics and spans label them, made once per check
    /// rather than once per request.
    pub caller: Caller,
    /// The connection its requests are logged under, when the token is on record.
    pub identified: Option<crate::requestlog::Identified>,
}

impl Checked {
    pub fn new(claims: Claims, record: Option<TokenRecord>) -> Checked {
        let caller = Caller { tenant: claims.tenant.as_str().into(), connection: claims.sub.as_str().into() };
        let identified = record.as_ref().map(|r| crate::requestlog::Identified {
            tenant: caller.tenant.clone(),
            connection: r.client_id.as_deref().unwrap_or(&r.jti).into(),
        });
        Checked { claims: Arc::new(claims), record: record.map(Arc::new), caller, identified }
    }
}

pub struct TokenCache {
    ttl: Duration,
    entries: Mutex<HashMap<Box<str>, (Checked, Instant)>>,
}

impl TokenCache {
    pub fn new(ttl: Duration) -> TokenCache {
        TokenCache { ttl, entries: Mutex::default() }
    }

    /// What was remembered about this exact token, if still fresh. The caller checks the
    /// claims' times: they move on while the entry stays.
    pub fn get(&self, token: &str) -> Option<Checked> {
        if self.ttl.is_zero() {
            return None;
        }
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let (checked, at) = entries.get(token)?;
        (at.elapsed() < self.ttl).then(|| checked.clone())
    }

    /// Remembers a token whose signature verified.
    pub fn put(&self, token: &str, checked: Checked) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(token.into(), (checked, Instant::now()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checked(jti: &str) -> Checked {
        let claims = Claims {
            iss: "roster".into(),
            aud: "roster".into(),
            sub: "s".into(),
            tenant: "t1".into(),
            scope: "scim".into(),
            iat: 0,
            nbf: None,
            exp: None,
            jti: jti.into(),
        };
        Checked::new(claims, None)
    }

    #[test]
    fn answers_expire_and_are_tied_to_the_exact_token() {
        let cache = TokenCache::new(Duration::from_millis(50));
        cache.put("a.b.c", checked("j1"));
        assert_eq!(cache.get("a.b.c").map(|c| c.claims.jti.clone()).as_deref(), Some("j1"));
        assert!(cache.get("a.b.C").is_none(), "one byte differs: not the remembered token");
        assert!(cache.get("a.b.c ").is_none());
        std::thread::sleep(Duration::from_millis(60));
        assert!(cache.get("a.b.c").is_none());
        let off = TokenCache::new(Duration::ZERO);
        off.put("a.b.c", checked("j"));
        assert!(off.get("a.b.c").is_none());
    }
}
