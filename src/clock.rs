//! The time Roster acts at, and how it shows times. Real time in production; tests move it
//! forward to pass grace periods without sleeping (docs/lifecycle.md counts days).

use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{Datelike, NaiveDateTime, SecondsFormat, SubsecRound, Timelike};

/// RFC 3339 in UTC with milliseconds, as `meta`, events and the product API show times
/// (RFC 7643 §2.3.5: xsd:dateTime).
pub fn time(t: NaiveDateTime) -> String {
    let (date, clock) = (t.date(), t.time());
    let millis = clock.nanosecond() / 1_000_000;
    // Written digit by digit: chrono's formatter goes through `fmt` for every field, and a page
    // of 100 users shows 200 times. Years outside 0..=9999 (signed, wider) and leap seconds
    // (millis past 999) keep chrono's spelling.
    if !(0..=9999).contains(&date.year()) || millis > 999 {
        return t.and_utc().to_rfc3339_opts(SecondsFormat::Millis, true);
    }
    let mut out = [0u8; 24];
    let mut put = |at: usize, value: u32, width: usize| {
        let mut value = value;
        for i in (at..at + width).rev() {
            out[i] = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    put(0, date.year() as u32, 4);
    put(5, date.month(), 2);
    put(8, date.day(), 2);
    put(11, clock.hour(), 2);
    put(14, clock.minute(), 2);
    put(17, clock.second(), 2);
    put(20, millis, 3);
    for (at, separator) in [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':'), (19, b'.'), (23, b'Z')] {
        out[at] = separator;
    }
    // ASCII digits and separators only; collecting chars cost more than the rest together.
    String::from_utf8(out.to_vec()).expect("ASCII")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_shown_as_chrono_shows_them_in_rfc_3339_with_milliseconds() {
        let chrono = |t: NaiveDateTime| t.and_utc().to_rfc3339_opts(SecondsFormat::Millis, true);
        let day = chrono::NaiveDate::from_ymd_opt(2026, 12, 5).unwrap();
        let mut cases = vec![
            day.and_hms_milli_opt(0, 0, 0, 0).unwrap(),
            day.and_hms_milli_opt(23, 59, 59, 999).unwrap(),
            day.and_hms_nano_opt(9, 8, 7, 6_543_210).unwrap(),
            // A leap second, and years chrono writes with a sign or more digits.
            day.and_hms_milli_opt(23, 59, 59, 1_500).unwrap(),
            chrono::NaiveDate::from_ymd_opt(7, 1, 2).unwrap().and_hms_opt(3, 4, 5).unwrap(),
            chrono::NaiveDate::from_ymd_opt(-1, 1, 1).unwrap().and_hms_opt(0, 0, 0).unwrap(),
            chrono::NaiveDate::from_ymd_opt(12345, 6, 7).unwrap().and_hms_opt(8, 9, 10).unwrap(),
            NaiveDateTime::MIN,
            NaiveDateTime::MAX,
        ];
        let mut t = day.and_hms_opt(0, 0, 0).unwrap();
        for _ in 0..2000 {
            t += chrono::Duration::milliseconds(86_400_000 * 97 + 3_723_457);
            cases.push(t);
        }
        for t in cases {
            assert_eq!(time(t), chrono(t), "{t:?}");
        }
        assert_eq!(time(day.and_hms_milli_opt(9, 8, 7, 60).unwrap()), "2026-12-05T09:08:07.060Z");
    }
}
