//! A bound on the requests one tenant has in flight, so one busy IdP connection cannot take
//! every worker and database connection from the others. Beyond it: 429 with Retry-After,
//! which Entra honours.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::error::ScimError;

#[derive(Debug)]
pub struct InFlight {
    limit: usize,
    counts: Arc<Mutex<HashMap<String, usize>>>,
}

/// Held for as long as a request runs; releases its place when dropped.
#[derive(Debug)]
pub struct Permit {
    tenant: String,
    counts: Arc<Mutex<HashMap<String, usize>>>,
}

impl InFlight {
    pub fn new(limit: usize) -> InFlight {
        InFlight { limit: limit.max(1), counts: Arc::default() }
    }

    pub fn enter(&self, tenant: &str) -> Result<Permit, ScimError> {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let count = counts.entry(tenant.to_owned()).or_default();
        if *count >= self.limit {
            let mut err = ScimError::new(
                actix_web::http::StatusCode::TOO_MANY_REQUESTS,
                format!("This tenant already has {} requests in flight; retry shortly", self.limit),
            );
            err.retry_after = Some(1);
            return Err(err);
        }
        *count += 1;
        Ok(Permit { tenant: tenant.to_owned(), counts: self.counts.clone() })
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = counts.get_mut(&self.tenant) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.tenant);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_tenant_gets_its_own_places_and_they_come_back() {
        let inflight = InFlight::new(2);
        let a1 = inflight.enter("a").unwrap();
        let _a2 = inflight.enter("a").unwrap();
        let err = inflight.enter("a").unwrap_err();
        assert_eq!(err.status.as_u16(), 429);
        assert_eq!(err.retry_after, Some(1));
        assert!(inflight.enter("b").is_ok(), "another tenant is not affected");
        drop(a1);
        assert!(inflight.enter("a").is_ok());
    }
}
