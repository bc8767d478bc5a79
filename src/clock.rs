//! The time Roster acts at. Real time in production; tests move it forward to pass grace
//! periods without sleeping (DESIGN.md §1 counts days).

use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{NaiveDateTime, SubsecRound};

#[derive(Debug, Default)]
pub struct Clock {
    offset_ms: AtomicI64,
}

impl Clock {
    /// Now, at millisecond precision: what is stored is exactly what `meta` shows, so a
    /// client's `meta.lastModified gt <value it read>` excludes the resource it read it from.
    pub fn now(&self) -> NaiveDateTime {
        let real = chrono::Utc::now().naive_utc();
        (real + chrono::Duration::milliseconds(self.offset_ms.load(Ordering::Relaxed))).trunc_subsecs(3)
    }

    /// Moves this clock forward (tests only need forward).
    pub fn advance(&self, by: chrono::Duration) {
        self.offset_ms.fetch_add(by.num_milliseconds(), Ordering::Relaxed);
    }
}
