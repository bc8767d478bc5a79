//! A short-lived memory of token checks, so a busy IdP connection does not cost a database
//! round trip per request. Only tokens whose signature verified reach it, so it cannot be
//! flooded without the signing key. A revocation takes effect within the cache lifetime
//! (`token_cache_ms`, 1 s by default) on every node.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Entries kept at most; past it the cache starts afresh.
const MAX_ENTRIES: usize = 10_000;

/// The tenant a jti was checked for, the database's answer (None: unknown; Some(revoked)), and
/// when it was checked.
type Entry = (String, Option<bool>, Instant);

pub struct TokenCache {
    ttl: Duration,
    entries: Mutex<HashMap<String, Entry>>,
}

impl TokenCache {
    pub fn new(ttl: Duration) -> TokenCache {
        TokenCache { ttl, entries: Mutex::default() }
    }

    /// The remembered database answer for this jti and tenant, if still fresh.
    pub fn get(&self, jti: &str, tenant: &str) -> Option<Option<bool>> {
        if self.ttl.is_zero() {
            return None;
        }
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let (cached_tenant, status, at) = entries.get(jti)?;
        (cached_tenant == tenant && at.elapsed() < self.ttl).then_some(*status)
    }

    pub fn put(&self, jti: &str, tenant: &str, status: Option<bool>) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(jti.to_owned(), (tenant.to_owned(), status, Instant::now()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_expire_and_are_tied_to_the_tenant() {
        let cache = TokenCache::new(Duration::from_millis(50));
        cache.put("j1", "t1", Some(false));
        assert_eq!(cache.get("j1", "t1"), Some(Some(false)));
        assert_eq!(cache.get("j1", "t2"), None);
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(cache.get("j1", "t1"), None);
        let off = TokenCache::new(Duration::ZERO);
        off.put("j", "t", Some(false));
        assert_eq!(off.get("j", "t"), None);
    }
}
