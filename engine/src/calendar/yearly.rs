//! Holidays that come back every year: a fixed month and day (`12-25`), or a day counted from
//! Easter Sunday (`easter+1`, Easter Monday), so a calendar needs no edit each year.
//!
//! They are expanded into dates for [`FIRST_YEAR`]..=[`LAST_YEAR`] when the calendar is checked,
//! beside its one-off dates: every computation on a calendar then sees plain dates, and asks
//! nothing more per day.

use chrono::{Datelike, NaiveDate};

/// The years yearly holidays are expanded for.
pub const FIRST_YEAR: i32 = 1970;
pub const LAST_YEAR: i32 = 2199;

/// A holiday that comes back every year.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum YearlyDay {
    /// The same month and day each year (a 29 February only in leap years).
    Fixed { month: u32, day: u32 },
    /// This many days after Easter Sunday (before it when negative), Gregorian.
    Easter(i64),
}

impl YearlyDay {
    /// As written in a calendar: `12-25`, `easter`, `easter+39`, `easter-2`; `None` if it is
    /// neither (a month and day must exist in some year).
    pub fn parse(text: &str) -> Option<YearlyDay> {
        if let Some(rest) = text.strip_prefix("easter") {
            let offset = match rest {
                "" => 0,
                _ => rest.parse::<i64>().ok()?,
            };
            return (offset.abs() <= 366).then_some(YearlyDay::Easter(offset));
        }
        let (m, d) = text.split_once('-')?;
        let (month, day) = (m.parse().ok()?, d.parse().ok()?);
        // 2000 was a leap year: any day that exists in some year exists in it.
        NaiveDate::from_ymd_opt(2000, month, day)?;
        Some(YearlyDay::Fixed { month, day })
    }

    /// Its date in `year`, if it has one that year.
    pub fn in_year(self, year: i32) -> Option<NaiveDate> {
        match self {
            YearlyDay::Fixed { month, day } => NaiveDate::from_ymd_opt(year, month, day),
            YearlyDay::Easter(offset) => {
                easter_sunday(year)?.checked_add_signed(chrono::TimeDelta::days(offset))
            }
        }
    }

    /// Its dates over every year expanded.
    pub fn dates(self) -> impl Iterator<Item = NaiveDate> {
        (FIRST_YEAR..=LAST_YEAR).filter_map(move |y| self.in_year(y))
    }
}

/// Easter Sunday of a Gregorian year (the anonymous Gregorian computus, as in Meeus).
pub fn easter_sunday(year: i32) -> Option<NaiveDate> {
    let a = year % 19;
    let b = year / 100;
    let c = year % 100;
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    let date = NaiveDate::from_ymd_opt(year, month as u32, day as u32)?;
    debug_assert_eq!(date.weekday(), chrono::Weekday::Sun);
    Some(date)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("date")
    }

    #[test]
    fn easter_2024_to_2030() {
        let known = [
            (2024, 3, 31),
            (2025, 4, 20),
            (2026, 4, 5),
            (2027, 3, 28),
            (2028, 4, 16),
            (2029, 4, 1),
            (2030, 4, 21),
        ];
        for (y, m, d) in known {
            assert_eq!(easter_sunday(y), Some(date(y, m, d)), "{y}");
        }
    }

    #[test]
    fn easter_relative_days() {
        let monday = YearlyDay::parse("easter+1").expect("parse");
        let ascension = YearlyDay::parse("easter+39").expect("parse");
        let whit_monday = YearlyDay::parse("easter+50").expect("parse");
        let good_friday = YearlyDay::parse("easter-2").expect("parse");
        // 2024 to 2030, as published.
        let expected = [
            (2024, (4, 1), (5, 9), (5, 20), (3, 29)),
            (2025, (4, 21), (5, 29), (6, 9), (4, 18)),
            (2026, (4, 6), (5, 14), (5, 25), (4, 3)),
            (2027, (3, 29), (5, 6), (5, 17), (3, 26)),
            (2028, (4, 17), (5, 25), (6, 5), (4, 14)),
            (2029, (4, 2), (5, 10), (5, 21), (3, 30)),
            (2030, (4, 22), (5, 30), (6, 10), (4, 19)),
        ];
        for (y, mon, asc, whit, fri) in expected {
            assert_eq!(monday.in_year(y), Some(date(y, mon.0, mon.1)), "{y}");
            assert_eq!(ascension.in_year(y), Some(date(y, asc.0, asc.1)), "{y}");
            assert_eq!(whit_monday.in_year(y), Some(date(y, whit.0, whit.1)), "{y}");
            assert_eq!(good_friday.in_year(y), Some(date(y, fri.0, fri.1)), "{y}");
        }
    }

    #[test]
    fn fixed_days_and_leap_days() {
        let christmas = YearlyDay::parse("12-25").expect("parse");
        assert_eq!(christmas.in_year(2031), Some(date(2031, 12, 25)));
        let leap = YearlyDay::parse("02-29").expect("parse");
        assert_eq!(leap.in_year(2027), None);
        assert_eq!(leap.in_year(2028), Some(date(2028, 2, 29)));
        assert_eq!(YearlyDay::parse("02-30"), None);
        assert_eq!(YearlyDay::parse("13-01"), None);
        assert_eq!(YearlyDay::parse("easter+x"), None);
        assert_eq!(christmas.dates().count() as i32, LAST_YEAR - FIRST_YEAR + 1);
    }
}
