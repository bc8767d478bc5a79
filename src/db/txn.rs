//! The `txn` claim of a SQLite write's events (RFC 8417 §2.2, RFC 9967 §2.2): one value per
//! request's write, whether it runs as its own transaction or as a savepoint in the group-commit
//! writer's batch. PostgreSQL's events take their transaction's id from a column default.

thread_local! {
    /// The `txn` of the events the SQLite write on this thread writes (RFC 8417 §2.2): drawn
    /// when its outermost `write_transaction` starts — a request's own savepoint inside the
    /// group-commit writer's batch included —, so the events of one request share it and no
    /// other's. PostgreSQL's events take their transaction's id from a column default.
    static SQLITE_TXN: std::cell::Cell<Option<i64>> = const { std::cell::Cell::new(None) };
}

/// The current SQLite write's `txn`, if a `write_transaction` is running on this thread.
pub fn sqlite_txn() -> Option<i64> {
    SQLITE_TXN.with(|t| t.get())
}

/// Holds [`SQLITE_TXN`] for the outermost write transaction, cleared when dropped (also on an
/// early return or unwinding).
pub(super) struct SqliteTxn(bool);

impl SqliteTxn {
    pub(super) fn enter() -> SqliteTxn {
        SQLITE_TXN.with(|t| {
            let outer = t.get().is_none();
            if outer {
                t.set(Some(rand::random::<i64>() & i64::MAX));
            }
            SqliteTxn(outer)
        })
    }
}

impl Drop for SqliteTxn {
    fn drop(&mut self) {
        if self.0 {
            SQLITE_TXN.with(|t| t.set(None));
        }
    }
}
