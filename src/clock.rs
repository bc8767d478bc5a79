//! The time Roster acts at, and how it shows times. Real time in production; tests move it
//! forward to pass grace periods without sleeping (docs/lifecycle.md counts days).

use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{NaiveDateTime, SecondsFormat, SubsecRound};

/// RFC 3339 in UTC with milliseconds, as `meta`, events and the product API show times
/// (RFC 7643 §2.3.5: xsd:dateTime).
pub fn time(t: NaiveDateTime) -> String {
    t.and_utc().to_rfc3339_opts(SecondsFormat::Millis, true)
}

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
