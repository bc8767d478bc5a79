//! A timestamp column read without chrono's format parser.
//!
//! SQLite keeps a timestamp as text (`2026-12-06 01:02:03.045`, as diesel writes it), and
//! diesel reads it back by trying chrono's `parse_from_str` with one format after another:
//! about 2,500 instructions a timestamp, nearly a tenth of what a page of 100 users cost
//! (`bench/instructions.sh list-index`). [`Timestamp`] reads the text diesel writes digit by
//! digit and hands anything else to diesel's own reading; PostgreSQL's binary timestamps go
//! straight to diesel's.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::deserialize::{self, FromSql};
use diesel::pg::Pg;
use diesel::sql_types;
use diesel::sqlite::Sqlite;

use super::MultiBackend;

/// A `TIMESTAMP` column's value, for `#[diesel(deserialize_as = Timestamp)]` on a
/// `NaiveDateTime` field.
#[derive(diesel::deserialize::FromSqlRow)]
pub struct Timestamp(NaiveDateTime);

impl From<Timestamp> for NaiveDateTime {
    fn from(t: Timestamp) -> NaiveDateTime {
        t.0
    }
}

impl FromSql<sql_types::Timestamp, Sqlite> for Timestamp {
    fn from_sql(mut value: <Sqlite as diesel::backend::Backend>::RawValue<'_>) -> deserialize::Result<Self> {
        if let Some(t) = read(value.read_text()) {
            return Ok(Timestamp(t));
        }
        <NaiveDateTime as FromSql<sql_types::Timestamp, Sqlite>>::from_sql(value).map(Timestamp)
    }
}

impl FromSql<sql_types::Timestamp, Pg> for Timestamp {
    fn from_sql(value: <Pg as diesel::backend::Backend>::RawValue<'_>) -> deserialize::Result<Self> {
        <NaiveDateTime as FromSql<sql_types::Timestamp, Pg>>::from_sql(value).map(Timestamp)
    }
}

impl FromSql<sql_types::Timestamp, MultiBackend> for Timestamp {
    fn from_sql(value: <MultiBackend as diesel::backend::Backend>::RawValue<'_>) -> deserialize::Result<Self> {
        value.from_sql::<Timestamp, sql_types::Timestamp>()
    }
}

/// `YYYY-MM-DD HH:MM:SS`, then optionally `.` and one to nine digits of the second; `None` for
/// anything else, including a date or time that does not exist.
fn read(text: &str) -> Option<NaiveDateTime> {
    let b = text.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || b[10] != b' ' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let number = |from: usize, to: usize| -> Option<u32> {
        b[from..to].iter().try_fold(0u32, |n, &d| d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0')))
    };
    let nanos = match &b[19..] {
        [] => 0,
        [b'.', digits @ ..] if (1..=9).contains(&digits.len()) => {
            number(20, b.len())? * 10u32.pow(9 - digits.len() as u32)
        }
        _ => return None,
    };
    let date = NaiveDate::from_ymd_opt(i32::try_from(number(0, 4)?).ok()?, number(5, 7)?, number(8, 10)?)?;
    date.and_hms_nano_opt(number(11, 13)?, number(14, 16)?, number(17, 19)?, nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_diesel_writes_reads_as_chrono_reads_it() {
        for text in
            ["2026-12-06 01:02:03.045", "2026-12-06 01:02:03", "1999-02-28 23:59:59.5", "2024-02-29 00:00:00.123456789"]
        {
            assert_eq!(read(text), NaiveDateTime::parse_from_str(text, "%F %T%.f").ok(), "{text}");
        }
        let written = NaiveDate::from_ymd_opt(2026, 12, 6).unwrap().and_hms_milli_opt(1, 2, 3, 45).unwrap();
        assert_eq!(read(&written.format("%F %T%.f").to_string()), Some(written));
    }

    #[test]
    fn anything_else_is_left_to_diesel() {
        for text in [
            "2026-12-06T01:02:03",
            "2026-12-06 01:02",
            "2026-12-06 01:02:03.",
            "2026-12-06 01:02:03.0450000001",
            "2026-12-06 01:02:03Z",
            "2026-02-30 01:02:03",
            "2026-12-06 25:02:03",
            "2026-1a-06 01:02:03",
            "2461015.5",
        ] {
            assert_eq!(read(text), None, "{text}");
        }
    }
}
