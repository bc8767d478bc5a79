//! Fair use of the database by tenants: each tenant's requests may hold at most a share of the
//! pool's connections at once, and a request's database work runs under a time limit, so one
//! tenant's most expensive legal requests leave the rest of the pool to the others.
//!
//! A request is scoped by [`scoped`] (HTTP middleware) and claims its tenant's share once its
//! scope is checked ([`claim`]); [`crate::db::Database::run`] then waits for a place in that
//! share before it waits for a connection. Work outside a request (the sweep, the CLI) has no
//! share and no time limit beyond PostgreSQL's `statement_timeout`.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use tokio::sync::Semaphore;

tokio::task_local! {
    static SHARE: RefCell<Option<Arc<Semaphore>>>;
}

/// Runs a request's future with room for the share its tenant claims.
pub async fn scoped<F: std::future::Future>(request: F) -> F::Output {
    SHARE.scope(RefCell::new(None), request).await
}

/// Puts the current request's database work under `share`. Outside [`scoped`] it does nothing.
pub fn claim(share: Arc<Semaphore>) {
    let _ = SHARE.try_with(|slot| *slot.borrow_mut() = Some(share));
}

/// The share the current request claimed, if any.
pub(super) fn current() -> Option<Arc<Semaphore>> {
    SHARE.try_with(|slot| slot.borrow().clone()).ok().flatten()
}

/// One semaphore per tenant, each with `per_tenant` places.
#[derive(Debug)]
pub struct Shares {
    per_tenant: usize,
    tenants: RwLock<HashMap<String, Arc<Semaphore>>>,
}

impl Shares {
    pub fn new(per_tenant: u32) -> Shares {
        Shares { per_tenant: per_tenant.max(1) as usize, tenants: RwLock::default() }
    }

    pub fn of(&self, tenant: &str) -> Arc<Semaphore> {
        if let Some(share) = self.tenants.read().unwrap_or_else(|p| p.into_inner()).get(tenant) {
            return share.clone();
        }
        let mut tenants = self.tenants.write().unwrap_or_else(|p| p.into_inner());
        tenants.entry(tenant.to_owned()).or_insert_with(|| Arc::new(Semaphore::new(self.per_tenant))).clone()
    }
}

thread_local! {
    /// When the SQLite work running on this thread must stop; read by the progress handler.
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Runs `work` on this thread with SQLite statements interrupted once `deadline` has passed.
pub(super) fn with_deadline<T>(deadline: Option<Instant>, work: impl FnOnce() -> T) -> T {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            DEADLINE.with(|d| d.set(None));
        }
    }
    DEADLINE.with(|d| d.set(deadline));
    let _reset = Reset;
    work()
}

/// Called by SQLite every [`PROGRESS_STEPS`] virtual-machine steps of any statement; a non-zero
/// answer interrupts the statement (SQLITE_INTERRUPT, "interrupted").
unsafe extern "C" fn past_deadline(_: *mut std::ffi::c_void) -> std::ffi::c_int {
    DEADLINE.with(|d| d.get()).is_some_and(|deadline| Instant::now() >= deadline) as std::ffi::c_int
}

/// About tens of microseconds of work between two looks at the clock.
const PROGRESS_STEPS: std::ffi::c_int = 1000;

/// Installs [`past_deadline`] on every SQLite connection this process opens from now on (once).
/// SQLite calls the entry point as each connection opens (`sqlite3_auto_extension`), which is
/// the only place the connection's handle is at hand: Diesel does not expose it.
pub(super) fn install_progress_handler() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(register_progress_handler);
}

fn register_progress_handler() {
    unsafe extern "C" fn on_open(
        db: *mut libsqlite3_sys::sqlite3,
        _: *mut *mut std::ffi::c_char,
        _: *const libsqlite3_sys::sqlite3_api_routines,
    ) -> std::ffi::c_int {
        // SAFETY: `db` is the connection being opened, valid for the duration of this call;
        // the handler is a plain function that takes no argument.
        unsafe {
            libsqlite3_sys::sqlite3_progress_handler(db, PROGRESS_STEPS, Some(past_deadline), std::ptr::null_mut())
        };
        libsqlite3_sys::SQLITE_OK
    }
    // SAFETY: registers a function with the signature SQLite expects of an extension entry point.
    unsafe {
        libsqlite3_sys::sqlite3_auto_extension(Some(on_open));
    }
}

/// True when a query failed because its time limit stopped it: SQLite's interrupt from the
/// progress handler, or PostgreSQL's `statement_timeout` (SQLSTATE 57014).
pub fn is_time_limit(err: &diesel::result::Error) -> bool {
    match err {
        diesel::result::Error::DatabaseError(_, info) => {
            let message = info.message();
            message == "interrupted" || message.contains("statement timeout")
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_tenant_has_its_own_share() {
        let shares = Shares::new(2);
        let a = shares.of("a");
        let _one = a.clone().try_acquire_owned().unwrap();
        let _two = shares.of("a").try_acquire_owned().unwrap();
        assert!(shares.of("a").try_acquire_owned().is_err(), "the share of a is full");
        assert!(shares.of("b").try_acquire_owned().is_ok(), "b is not affected");
    }
}
