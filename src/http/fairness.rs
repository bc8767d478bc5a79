//! Fair sharing between tenants and clients: request-rate limits per tenant and per client
//! address (token buckets; 429 with Retry-After beyond them), and the admission of a request to
//! its tenant's places (rate, in-flight bound, database share) only once its scope is known to
//! be granted, so a token that lacks the scope cannot crowd out its tenant's other tokens.

use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{web, Error};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::Settings;
use crate::db::share::{self, Shares};
use crate::error::ScimError;
use crate::http::inflight::{InFlight, Permit};

/// How many checks pass between two clean-ups of idle buckets.
const RETAIN_EVERY: u64 = 1 << 16;

/// A token bucket per key; `None` when the limit is off.
struct Limiter<K: Hash + Eq + Clone> {
    what: &'static str,
    buckets: Option<DefaultKeyedRateLimiter<K>>,
    /// The most requests a bucket holds at once.
    burst: u32,
    checks: AtomicU64,
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    fn new(what: &'static str, rate: u32, burst: u32) -> Self {
        let burst = if burst == 0 { rate } else { burst };
        let buckets = NonZeroU32::new(rate).map(|rate| {
            let burst = NonZeroU32::new(burst).unwrap_or(rate);
            // Sharded buckets (DashMap): no lock shared by every request.
            RateLimiter::dashmap(Quota::per_second(rate).allow_burst(burst))
        });
        Limiter { what, buckets, burst, checks: AtomicU64::new(0) }
    }

    fn check(&self, key: &K) -> Result<(), ScimError> {
        let Some(buckets) = &self.buckets else { return Ok(()) };
        if self.checks.fetch_add(1, Ordering::Relaxed) % RETAIN_EVERY == RETAIN_EVERY - 1 {
            // Buckets that have filled up again are indistinguishable from new ones.
            buckets.retain_recent();
            buckets.shrink_to_fit();
        }
        buckets.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            let mut err = ScimError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!("Too many requests from this {}; retry after the time Retry-After gives", self.what),
            );
            // RFC 9110 §10.2.3: whole seconds; at least one, so that a client does wait.
            err.retry_after = Some(wait.as_secs_f64().ceil().max(1.0) as u64);
            err
        })
    }
}

/// The request-rate limits and the tenants' database shares of a running server.
pub struct Fairness {
    tenants: Limiter<String>,
    clients: Limiter<IpAddr>,
    pub shares: Shares,
    /// Requests each tenant has in flight (`max_in_flight_per_tenant`).
    pub inflight: InFlight,
}

impl Fairness {
    pub fn new(settings: &Settings) -> Fairness {
        Fairness {
            tenants: Limiter::new("tenant", settings.rate_limit_per_tenant, settings.rate_burst_per_tenant),
            clients: Limiter::new("client address", settings.rate_limit_per_client, settings.rate_burst_per_client),
            shares: Shares::new(settings.pool_share()),
            inflight: InFlight::new(settings.max_in_flight_per_tenant),
        }
    }

    /// One more request from `peer`; an IPv6 client counts by its /64, which one host is
    /// usually given whole.
    pub fn check_client(&self, peer: IpAddr) -> Result<(), ScimError> {
        let key = match peer {
            IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => {
                IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into())
            }
            IpAddr::V6(v6) => IpAddr::V4(v6.to_ipv4_mapped().expect("checked above")),
            v4 => v4,
        };
        self.clients.check(&key)
    }

    pub fn check_tenant(&self, tenant: &String) -> Result<(), ScimError> {
        self.tenants.check(tenant)
    }

    /// The most places [`Fairness::take_for_tenant`] may ask for at once (the tenant's burst);
    /// none when the tenant's rate is not limited.
    pub fn tenant_burst(&self) -> Option<u32> {
        self.tenants.buckets.as_ref().map(|_| self.tenants.burst)
    }

    /// Takes `n` (at most [`Fairness::tenant_burst`]) more of `tenant`'s request places at once,
    /// waiting for them until `deadline` at the latest: for the operations of a Bulk request,
    /// which was admitted as one request. When they would come later, none is taken and the
    /// answer is 429 with the wait as Retry-After.
    pub async fn take_for_tenant(&self, tenant: &String, n: u32, deadline: Instant) -> Result<(), ScimError> {
        let (Some(buckets), Some(n)) = (&self.tenants.buckets, NonZeroU32::new(n)) else { return Ok(()) };
        loop {
            let wait = match buckets.check_key_n(tenant, n) {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(not_until)) => not_until.wait_time_from(DefaultClock::default().now()),
                Err(_) => Duration::MAX,
            };
            if Instant::now().checked_add(wait).is_none_or(|ready| ready > deadline) {
                let mut err = ScimError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "Too many requests from this tenant: the Bulk request's operations from this one on would \
                     wait too long for the tenant's request rate; send them again later",
                );
                err.retry_after = Some(wait.min(Duration::from_secs(3600)).as_secs_f64().ceil().max(1.0) as u64);
                return Err(err);
            }
            tokio::time::sleep(wait).await;
        }
    }
}

/// Refuses a client address beyond its rate before anything else is done for it, and gives the
/// request room for its tenant's database share (see [`share`]).
pub async fn fair_share(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    if let (Some(fairness), Some(peer)) = (req.app_data::<web::Data<Fairness>>(), req.peer_addr()) {
        if let Err(err) = fairness.check_client(peer.ip()) {
            return Ok(req.error_response(err));
        }
    }
    Ok(share::scoped(next.call(req)).await?.map_into_boxed_body())
}

/// A request's admission to its tenant's places, taken at the first scope check that passes.
pub struct Admission {
    fairness: web::Data<Fairness>,
    permit: OnceLock<Permit>,
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admission").field("permit", &self.permit.get()).finish()
    }
}

impl Admission {
    pub fn new(fairness: web::Data<Fairness>) -> Admission {
        Admission { fairness, permit: OnceLock::new() }
    }

    /// Counts the request against `tenant`'s rate, takes its place among the tenant's requests
    /// in flight (held until the request is answered) and puts its database work under the
    /// tenant's share. Once per request; later calls succeed at once.
    pub fn admit(&self, tenant: &String) -> Result<(), ScimError> {
        if self.permit.get().is_some() {
            return Ok(());
        }
        self.fairness.check_tenant(tenant)?;
        let permit = self.fairness.inflight.enter(tenant)?;
        let _ = self.permit.set(permit);
        share::claim(self.fairness.shares.of(tenant));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_beyond_its_burst_gets_429_with_retry_after_and_others_do_not() {
        let limiter = Limiter::<String>::new("tenant", 1, 3);
        let (a, b) = ("a".to_owned(), "b".to_owned());
        for _ in 0..3 {
            limiter.check(&a).expect("within the burst");
        }
        let err = limiter.check(&a).unwrap_err();
        assert_eq!(err.status.as_u16(), 429);
        assert_eq!(err.retry_after, Some(1));
        assert!(limiter.check(&b).is_ok(), "another key has its own bucket");
    }

    #[tokio::test]
    async fn a_bulk_takes_places_at_once_and_waits_for_them_only_until_its_deadline() {
        let fairness =
            Fairness::new(&Settings { rate_limit_per_tenant: 2, rate_burst_per_tenant: 3, ..Settings::default() });
        let tenant = "t".to_owned();
        assert_eq!(fairness.tenant_burst(), Some(3));
        let now = Instant::now();
        fairness.take_for_tenant(&tenant, 3, now).await.expect("the whole burst at once");
        let err = fairness.take_for_tenant(&tenant, 2, Instant::now()).await.unwrap_err();
        assert_eq!((err.status.as_u16(), err.retry_after), (429, Some(1)));
        let started = Instant::now();
        fairness.take_for_tenant(&tenant, 1, started + Duration::from_secs(2)).await.expect("within the deadline");
        assert!(started.elapsed() >= Duration::from_millis(400), "it waited for the place");
        let off = Fairness::new(&Settings { rate_limit_per_tenant: 0, ..Settings::default() });
        assert_eq!(off.tenant_burst(), None);
        off.take_for_tenant(&tenant, 1000, Instant::now()).await.expect("no limit");
    }

    #[test]
    fn a_zero_rate_turns_the_limit_off() {
        let limiter = Limiter::<String>::new("tenant", 0, 0);
        assert!((0..10_000).all(|_| limiter.check(&"a".to_owned()).is_ok()));
    }

    #[test]
    fn ipv6_clients_count_by_their_64_and_mapped_ipv4_as_ipv4() {
        let fairness =
            Fairness::new(&Settings { rate_limit_per_client: 1, rate_burst_per_client: 1, ..Settings::default() });
        fairness.check_client("2001:db8:1:2::1".parse().unwrap()).unwrap();
        assert!(fairness.check_client("2001:db8:1:2:ffff::9".parse().unwrap()).is_err(), "same /64");
        assert!(fairness.check_client("2001:db8:1:3::1".parse().unwrap()).is_ok(), "another /64");
        fairness.check_client("192.0.2.1".parse().unwrap()).unwrap();
        assert!(fairness.check_client("::ffff:192.0.2.1".parse().unwrap()).is_err(), "the same IPv4 client");
    }
}
