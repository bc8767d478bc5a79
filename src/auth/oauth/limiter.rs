//! The bound on failed client authentications per client address: past it, the token and
//! revocation endpoints answer 429 without looking at the credentials, so guessing stays
//! slow even for a client_id and secret the attacker chose. It counts per node; guessing a
//! 256-bit secret is hopeless anyway, the bound keeps the audit log and the CPU calm.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures one address may have within [`WINDOW`].
pub const MAX_FAILURES: u32 = 10;
pub const WINDOW: Duration = Duration::from_secs(60);
/// Addresses remembered at most; past it the expired windows are forgotten.
const MAX_ENTRIES: usize = 100_000;

#[derive(Default)]
pub struct FailureLimiter {
    windows: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl FailureLimiter {
    /// Seconds to wait when `peer` has used up its failures, otherwise None.
    pub fn blocked(&self, peer: IpAddr) -> Option<u64> {
        let windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        let (start, count) = windows.get(&key(peer))?;
        let left = WINDOW.checked_sub(start.elapsed())?;
        (*count >= MAX_FAILURES).then(|| left.as_secs().max(1))
    }

    /// Counts one failed authentication from `peer`.
    pub fn failed(&self, peer: IpAddr) {
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if windows.len() >= MAX_ENTRIES {
            windows.retain(|_, (start, _)| start.elapsed() < WINDOW);
        }
        let entry = windows.entry(key(peer)).or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= WINDOW {
            *entry = (Instant::now(), 0);
        }
        entry.1 += 1;
    }
}

/// An IPv6 client counts by its /64, which one host is usually given whole.
fn key(peer: IpAddr) -> IpAddr {
    match peer {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_blocked_after_its_failures_and_others_are_not() {
        let limiter = FailureLimiter::default();
        let a: IpAddr = "2001:db8::1".parse().unwrap();
        let same_64: IpAddr = "2001:db8::2".parse().unwrap();
        let other: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..MAX_FAILURES - 1 {
            limiter.failed(a);
        }
        assert_eq!(limiter.blocked(a), None);
        limiter.failed(same_64);
        assert!(limiter.blocked(a).is_some_and(|s| (1..=60).contains(&s)));
        assert_eq!(limiter.blocked(other), None);
    }
}
