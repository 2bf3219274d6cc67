//! Calendar dates as printed on cards (`YYYYMMDD`), with just the arithmetic the checks need.
//! Plain code instead of a date crate: proleptic Gregorian, no time zones, no allocation.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

/// A valid Gregorian calendar date (years 1–9999).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CivilDate {
    year: u16,
    month: u8,
    day: u8,
}

impl CivilDate {
    /// The date, or `None` when it does not exist (2023-02-29, month 13, day 0, year 0).
    pub fn new(year: u16, month: u8, day: u8) -> Option<Self> {
        let valid = (1..=9999).contains(&year)
            && (1..=12).contains(&month)
            && day >= 1
            && day <= days_in_month(year, month);
        valid.then_some(Self { year, month, day })
    }

    /// Exactly eight ASCII digits forming a real date.
    pub fn parse_yyyymmdd(text: &str) -> Option<Self> {
        let b = text.as_bytes();
        if b.len() != 8 || !b.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let num = |r: std::ops::Range<usize>| {
            b.get(r)
                .map(|d| d.iter().fold(0u16, |acc, c| acc * 10 + u16::from(c - b'0')))
        };
        let (year, month, day) = (num(0..4)?, num(4..6)?, num(6..8)?);
        Self::new(year, u8::try_from(month).ok()?, u8::try_from(day).ok()?)
    }

    /// Year.
    pub fn year(&self) -> u16 {
        self.year
    }

    /// Month, 1–12.
    pub fn month(&self) -> u8 {
        self.month
    }

    /// Day of the month.
    pub fn day(&self) -> u8 {
        self.day
    }

    /// The same month and day `years` later. 29 February lands on 28 February in a common year.
    /// `None` past year 9999.
    pub fn add_years(&self, years: u16) -> Option<Self> {
        let year = self.year.checked_add(years)?;
        let day = self.day.min(days_in_month(year, self.month));
        Self::new(year, self.month, day)
    }

    /// Full years from `self` to `later` (an age); 0 when `later` is not after `self`.
    pub fn full_years_until(&self, later: &Self) -> u16 {
        if later <= self {
            return 0;
        }
        let mut years = later.year - self.year;
        if (later.month, later.day) < (self.month, self.day) {
            years -= 1;
        }
        years
    }

    /// The date `days` after 1970-01-01 (negative: before). Howard Hinnant's `civil_from_days`.
    pub fn from_unix_days(days: i64) -> Option<Self> {
        let z = days.checked_add(719_468)?;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        Self::new(
            u16::try_from(year).ok()?,
            u8::try_from(month).ok()?,
            u8::try_from(day).ok()?,
        )
    }

    /// Today in China (UTC+8, no daylight saving): the calendar cards are issued and expire in.
    pub fn today_in_china() -> Self {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let days = (secs + 8 * 3600) / 86_400;
        i64::try_from(days)
            .ok()
            .and_then(Self::from_unix_days)
            .unwrap_or(Self {
                year: 1970,
                month: 1,
                day: 1,
            })
    }
}

/// `YYYY-MM-DD`.
impl fmt::Display for CivilDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

fn is_leap(year: u16) -> bool {
    #[allow(
        clippy::manual_is_multiple_of,
        reason = "u16::is_multiple_of needs Rust 1.87; MSRV is 1.85"
    )]
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    leap
}

fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> CivilDate {
        CivilDate::parse_yyyymmdd(text).expect(text)
    }

    #[test]
    fn parses_only_real_dates() {
        assert_eq!(d("19491231").to_string(), "1949-12-31");
        assert!(CivilDate::parse_yyyymmdd("20240229").is_some());
        for bad in [
            "20230229",
            "19000229",
            "20231301",
            "20230001",
            "20230100",
            "20230431",
            "00000101",
            "2023011",
            "202301011",
            "2023-1-1",
            "２０２３０１０１",
            "",
        ] {
            assert_eq!(CivilDate::parse_yyyymmdd(bad), None, "{bad}");
        }
        assert!(CivilDate::parse_yyyymmdd("20000229").is_some());
    }

    #[test]
    fn adding_years_keeps_month_and_day() {
        assert_eq!(d("20200610").add_years(20), Some(d("20400610")));
        assert_eq!(d("20040229").add_years(10), Some(d("20140228")));
        assert_eq!(d("20040229").add_years(20), Some(d("20240229")));
        assert_eq!(d("99990101").add_years(1), None);
    }

    #[test]
    fn ages() {
        let birth = d("19900307");
        assert_eq!(birth.full_years_until(&d("20200306")), 29);
        assert_eq!(birth.full_years_until(&d("20200307")), 30);
        assert_eq!(birth.full_years_until(&d("19800101")), 0);
    }

    #[test]
    fn unix_days() {
        assert_eq!(CivilDate::from_unix_days(0), Some(d("19700101")));
        assert_eq!(CivilDate::from_unix_days(20_407), Some(d("20251115")));
        assert_eq!(CivilDate::from_unix_days(-1), Some(d("19691231")));
        assert_eq!(CivilDate::from_unix_days(i64::MAX), None);
        assert!(CivilDate::today_in_china() > d("20250101"));
    }
}
