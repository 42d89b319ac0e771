//! Business-time arithmetic (`itsmflow_engine::calendar`): named cases on checked calendars,
//! and properties over random starts, checked against a slow reference that follows the
//! documented rules literally (every range end converted by chrono-tz, day by day).

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, LocalResult, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use itsmflow_dsl::parse_duration;
use itsmflow_engine::calendar::BusinessCalendar;
use itsmflow_engine::model::{Calendar, Duration};
use proptest::prelude::*;

mod support;

const SHARED: &str = r#"
calendar office "Office hours, Amsterdam" {
  timezone "Europe/Amsterdam"
  hours mon-fri 08:00-17:00
  holidays 2026-05-14 "Ascension Day", 2026-05-25 "Whit Monday"
  holidays 2026-12-25 "Christmas Day", 2026-12-26 "Boxing Day (a Saturday)"
  holidays 2027-01-01 "New Year's Day", 2027-04-27 "King's Day"
}

calendar lunch "Office hours with a lunch break" {
  timezone "Europe/Amsterdam"
  hours mon-fri 08:00-12:00, 13:00-17:00
}

calendar short_friday {
  timezone "Europe/Amsterdam"
  hours mon-thu 08:00-17:00
  hours fri 08:00-12:00
}

calendar plain "Office hours without holidays" {
  timezone "Europe/Amsterdam"
  hours mon-fri 08:00-17:00
}

calendar night "Night shift, through the changes of clocks" {
  timezone "Europe/Amsterdam"
  hours mon-sun 00:00-06:00, 22:00-24:00
}

calendar early "Early hours, through the changes of clocks" {
  timezone "Europe/Amsterdam"
  hours mon-sun 01:00-04:00
}

calendar split "Ranges that meet at a repeated or skipped time" {
  timezone "Europe/Amsterdam"
  hours mon-sun 01:00-02:30, 02:30-04:00
}

calendar late "Opening at a repeated or skipped time" {
  timezone "Europe/Amsterdam"
  hours mon-sun 02:30-05:00
}

calendar new_york {
  timezone "America/New_York"
  hours mon-fri 09:00-17:00
  hours sun 00:30-05:00
  holidays 2026-07-03 "Independence Day (observed)"
}

calendar lord_howe "Half-hour changes of clocks" {
  timezone "Australia/Lord_Howe"
  hours mon-sun 01:00-03:00, 09:00-17:00
}

calendar utc_always {
  timezone "UTC"
  hours mon-sun 00:00-24:00
}

calendar yearly "Holidays that come back every year" {
  timezone "Europe/Amsterdam"
  hours mon-fri 08:00-17:00
  holidays 12-25, 12-26, 01-01, easter-2 "Good Friday", easter+1 "Easter Monday"
  holidays easter+39 "Ascension Day", easter+50 "Whit Monday"
}
"#;

fn calendars() -> Vec<Calendar> {
    support::checked_project("shared.itsm", SHARED).calendars
}

fn calendar<'a>(all: &'a [Calendar], name: &str) -> BusinessCalendar<'a> {
    if name == "24x7" {
        return BusinessCalendar::always_open();
    }
    BusinessCalendar::new(all.iter().find(|c| c.name == name).expect(name))
}

/// `2026-06-01 10:00+02:00`
fn t(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_str(text, "%Y-%m-%d %H:%M%:z")
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .with_timezone(&Utc)
}

fn dur(text: &str) -> Duration {
    parse_duration(text).unwrap_or_else(|| panic!("duration {text}"))
}

fn secs(d: &Duration) -> u64 {
    d.hours * 3600 + d.minutes * 60 + d.seconds
}

struct AddCase {
    name: &'static str,
    calendar: &'static str,
    start: &'static str,
    duration: &'static str,
    /// `None`: no result.
    due: Option<&'static str>,
}

const fn case(
    name: &'static str,
    calendar: &'static str,
    start: &'static str,
    duration: &'static str,
    due: &'static str,
) -> AddCase {
    AddCase {
        name,
        calendar,
        start,
        duration,
        due: Some(due),
    }
}

const ADD_CASES: &[AddCase] = &[
    // Yearly holidays: Easter 2027 is 28 March, so Good Friday (26 March) and Easter Monday
    // (29 March) are closed; Whit Monday 2030 is 10 June; Christmas 2031 falls on a Thursday.
    case(
        "over Easter, every year",
        "yearly",
        "2027-03-25 16:00+01:00",
        "2h",
        "2027-03-30 09:00+02:00",
    ),
    case(
        "a business day over Whit Monday",
        "yearly",
        "2030-06-07 10:00+02:00",
        "1d",
        "2030-06-11 10:00+02:00",
    ),
    case(
        "over Christmas, years ahead",
        "yearly",
        "2031-12-24 12:00+01:00",
        "8h",
        "2031-12-29 11:00+01:00",
    ),
    // Hours, minutes, seconds: business time.
    case(
        "inside hours",
        "office",
        "2026-06-01 10:00+02:00",
        "4h",
        "2026-06-01 14:00+02:00",
    ),
    case(
        "over the closing",
        "office",
        "2026-06-01 15:00+02:00",
        "4h",
        "2026-06-02 10:00+02:00",
    ),
    case(
        "ends at the closing",
        "office",
        "2026-06-01 13:00+02:00",
        "4h",
        "2026-06-01 17:00+02:00",
    ),
    case(
        "before opening",
        "office",
        "2026-06-01 06:00+02:00",
        "4h",
        "2026-06-01 12:00+02:00",
    ),
    case(
        "after closing",
        "office",
        "2026-06-01 18:00+02:00",
        "4h",
        "2026-06-02 12:00+02:00",
    ),
    case(
        "a day's hours after closing",
        "office",
        "2026-06-01 18:00+02:00",
        "9h",
        "2026-06-02 17:00+02:00",
    ),
    case(
        "at the closing instant",
        "office",
        "2026-06-01 17:00+02:00",
        "1h",
        "2026-06-02 09:00+02:00",
    ),
    case(
        "minutes and seconds",
        "office",
        "2026-06-01 16:58+02:00",
        "1m60s",
        "2026-06-01 17:00+02:00",
    ),
    case(
        "minutes over the closing",
        "office",
        "2026-06-01 16:59+02:00",
        "2m",
        "2026-06-02 08:01+02:00",
    ),
    case(
        "over a weekend",
        "office",
        "2026-06-05 15:00+02:00",
        "4h",
        "2026-06-08 10:00+02:00",
    ),
    case(
        "start on a weekend",
        "office",
        "2026-06-06 12:00+02:00",
        "1h",
        "2026-06-08 09:00+02:00",
    ),
    case(
        "over a holiday",
        "office",
        "2026-05-13 15:00+02:00",
        "4h",
        "2026-05-15 10:00+02:00",
    ),
    case(
        "start on a holiday",
        "office",
        "2026-05-14 10:00+02:00",
        "1h",
        "2026-05-15 09:00+02:00",
    ),
    case(
        "holiday on a closed day",
        "office",
        "2026-12-24 16:00+01:00",
        "10h",
        "2026-12-28 17:00+01:00",
    ),
    case(
        "at the lunch break",
        "lunch",
        "2026-06-01 12:30+02:00",
        "1h",
        "2026-06-01 14:00+02:00",
    ),
    case(
        "over the lunch break",
        "lunch",
        "2026-06-01 11:00+02:00",
        "2h",
        "2026-06-01 14:00+02:00",
    ),
    case(
        "ends at the lunch break",
        "lunch",
        "2026-06-01 11:00+02:00",
        "1h",
        "2026-06-01 12:00+02:00",
    ),
    case(
        "over lunch and night",
        "lunch",
        "2026-06-01 11:00+02:00",
        "8h",
        "2026-06-02 11:00+02:00",
    ),
    case(
        "24x7 hours",
        "24x7",
        "2026-06-06 23:00+00:00",
        "4h",
        "2026-06-07 03:00+00:00",
    ),
    case(
        "24x7 day",
        "24x7",
        "2026-03-28 12:00+00:00",
        "1d",
        "2026-03-29 12:00+00:00",
    ),
    case(
        "24x7 week",
        "24x7",
        "2026-06-01 10:00+00:00",
        "1w",
        "2026-06-08 10:00+00:00",
    ),
    case(
        "24x7 compound",
        "24x7",
        "2026-06-01 10:00+00:00",
        "1w1d1h1m",
        "2026-06-09 11:01+00:00",
    ),
    case(
        "named always open",
        "utc_always",
        "2026-06-06 23:00+00:00",
        "4h",
        "2026-06-07 03:00+00:00",
    ),
    // Zero: the start itself when open, otherwise the next opening.
    case(
        "zero inside hours",
        "office",
        "2026-06-01 10:00+02:00",
        "0m",
        "2026-06-01 10:00+02:00",
    ),
    case(
        "zero outside hours",
        "office",
        "2026-06-06 10:00+02:00",
        "0s",
        "2026-06-08 08:00+02:00",
    ),
    case(
        "zero at lunch",
        "lunch",
        "2026-06-01 12:00+02:00",
        "0s",
        "2026-06-01 13:00+02:00",
    ),
    case(
        "zero on 24x7",
        "24x7",
        "2026-06-06 10:00+02:00",
        "0s",
        "2026-06-06 10:00+02:00",
    ),
    // Days: the same open time into the Nth following business day.
    case(
        "1d from Monday",
        "office",
        "2026-06-01 10:00+02:00",
        "1d",
        "2026-06-02 10:00+02:00",
    ),
    case(
        "1d from Friday",
        "office",
        "2026-06-05 10:00+02:00",
        "1d",
        "2026-06-08 10:00+02:00",
    ),
    case(
        "3d from Monday",
        "office",
        "2026-06-01 10:00+02:00",
        "3d",
        "2026-06-04 10:00+02:00",
    ),
    case(
        "1d onto a holiday",
        "office",
        "2026-05-13 10:00+02:00",
        "1d",
        "2026-05-15 10:00+02:00",
    ),
    case(
        "1d from a holiday",
        "office",
        "2026-05-14 10:00+02:00",
        "1d",
        "2026-05-18 08:00+02:00",
    ),
    case(
        "1d after closing",
        "office",
        "2026-06-01 18:00+02:00",
        "1d",
        "2026-06-03 08:00+02:00",
    ),
    case(
        "1d from a weekend",
        "office",
        "2026-06-06 18:00+02:00",
        "1d",
        "2026-06-09 08:00+02:00",
    ),
    case(
        "1d at the closing instant",
        "office",
        "2026-06-01 17:00+02:00",
        "1d",
        "2026-06-03 08:00+02:00",
    ),
    case(
        "1d from the lunch break",
        "lunch",
        "2026-06-01 12:30+02:00",
        "1d",
        "2026-06-02 13:00+02:00",
    ),
    case(
        "1d after lunch",
        "lunch",
        "2026-06-01 13:00+02:00",
        "1d",
        "2026-06-02 13:00+02:00",
    ),
    case(
        "1d into a shorter day",
        "short_friday",
        "2026-06-04 15:00+02:00",
        "1d",
        "2026-06-05 12:00+02:00",
    ),
    case(
        "1d from a shorter day",
        "short_friday",
        "2026-06-05 11:00+02:00",
        "1d",
        "2026-06-08 11:00+02:00",
    ),
    case(
        "1d then hours",
        "office",
        "2026-06-01 10:00+02:00",
        "1d4h",
        "2026-06-02 14:00+02:00",
    ),
    case(
        "1d then hours over the closing",
        "office",
        "2026-06-01 10:00+02:00",
        "1d8h",
        "2026-06-03 09:00+02:00",
    ),
    case(
        "1w is five business days",
        "office",
        "2026-06-01 10:00+02:00",
        "1w",
        "2026-06-08 10:00+02:00",
    ),
    case(
        "1w over a holiday",
        "office",
        "2026-05-11 10:00+02:00",
        "1w",
        "2026-05-19 10:00+02:00",
    ),
    case(
        "1w over two holidays",
        "office",
        "2026-05-13 10:00+02:00",
        "1w2d",
        "2026-05-26 10:00+02:00",
    ),
    case(
        "1d over the clocks going forward",
        "office",
        "2026-03-27 10:00+01:00",
        "1d",
        "2026-03-30 10:00+02:00",
    ),
    case(
        "1d over the clocks going back",
        "office",
        "2026-10-23 10:00+02:00",
        "1d",
        "2026-10-26 10:00+01:00",
    ),
    // Changes of clocks inside open hours (Amsterdam: 2026-03-29 and 2026-10-25).
    case(
        "spring forward, range shorter",
        "early",
        "2026-03-29 01:00+01:00",
        "2h",
        "2026-03-29 04:00+02:00",
    ),
    case(
        "spring forward, into the next day",
        "early",
        "2026-03-29 01:00+01:00",
        "3h",
        "2026-03-30 02:00+02:00",
    ),
    case(
        "spring forward, start at the jump",
        "early",
        "2026-03-29 01:00+00:00",
        "30m",
        "2026-03-29 03:30+02:00",
    ),
    case(
        "fall back, range longer",
        "early",
        "2026-10-25 01:00+02:00",
        "4h",
        "2026-10-25 04:00+01:00",
    ),
    case(
        "fall back, repeated hour counts twice",
        "early",
        "2026-10-25 02:30+02:00",
        "1h",
        "2026-10-25 02:30+01:00",
    ),
    case(
        "fall back, ranges meeting at a repeated time",
        "split",
        "2026-10-25 01:00+02:00",
        "4h",
        "2026-10-25 04:00+01:00",
    ),
    case(
        "spring forward, ranges meeting in the gap",
        "split",
        "2026-03-29 01:00+01:00",
        "2h",
        "2026-03-29 04:00+02:00",
    ),
    case(
        "fall back, opening at a repeated time",
        "late",
        "2026-10-25 00:00+02:00",
        "30m",
        "2026-10-25 02:00+01:00",
    ),
    case(
        "spring forward, opening in the gap",
        "late",
        "2026-03-29 00:00+01:00",
        "30m",
        "2026-03-29 03:30+02:00",
    ),
    case(
        "night shift over spring forward",
        "night",
        "2026-03-28 22:00+01:00",
        "7h",
        "2026-03-29 06:00+02:00",
    ),
    case(
        "night shift over fall back",
        "night",
        "2026-10-24 22:00+02:00",
        "9h",
        "2026-10-25 06:00+01:00",
    ),
    case(
        "night shift over midnight",
        "night",
        "2026-06-01 23:00+02:00",
        "2h",
        "2026-06-02 01:00+02:00",
    ),
    case(
        "1d on a short day",
        "early",
        "2026-03-28 03:30+01:00",
        "1d",
        "2026-03-29 04:00+02:00",
    ),
    case(
        "1d after a short day",
        "early",
        "2026-03-29 03:30+02:00",
        "1d",
        "2026-03-30 02:30+02:00",
    ),
    case(
        "1d on a long day",
        "early",
        "2026-10-24 03:30+02:00",
        "1d",
        "2026-10-25 02:30+01:00",
    ),
    // New York: 2026-03-08 and 2026-11-01.
    case(
        "New York office hours",
        "new_york",
        "2026-03-06 15:00-05:00",
        "8h",
        "2026-03-09 11:30-04:00",
    ),
    case(
        "New York spring forward",
        "new_york",
        "2026-03-08 00:30-05:00",
        "4h",
        "2026-03-09 09:30-04:00",
    ),
    case(
        "New York fall back",
        "new_york",
        "2026-11-01 00:30-04:00",
        "5h30m",
        "2026-11-01 05:00-05:00",
    ),
    case(
        "New York holiday",
        "new_york",
        "2026-07-02 16:00-04:00",
        "2h",
        "2026-07-05 01:30-04:00",
    ),
    case(
        "Lord Howe half-hour change",
        "lord_howe",
        "2026-10-04 01:00+10:30",
        "2h",
        "2026-10-04 09:30+11:00",
    ),
    // Long durations.
    case(
        "2000h on office hours",
        "plain",
        "2026-06-01 08:00+02:00",
        "2000h",
        "2027-04-07 10:00+02:00",
    ),
    case(
        "400d on office hours with holidays",
        "office",
        "2026-06-01 10:00+02:00",
        "400d",
        "2027-12-16 10:00+01:00",
    ),
    case(
        "400d on 24x7",
        "24x7",
        "2026-06-01 10:00+00:00",
        "400d",
        "2027-07-06 10:00+00:00",
    ),
    case(
        "100w on office hours",
        "plain",
        "2026-06-01 10:00+02:00",
        "100w",
        "2028-05-01 10:00+02:00",
    ),
    AddCase {
        name: "past the year 9999",
        calendar: "24x7",
        start: "9999-12-31 20:00+00:00",
        duration: "4h",
        due: None,
    },
    AddCase {
        name: "too many weeks",
        calendar: "office",
        start: "2026-06-01 10:00+02:00",
        duration: "9999999w",
        due: None,
    },
    AddCase {
        name: "too many hours",
        calendar: "office",
        start: "2026-06-01 10:00+02:00",
        duration: "99999999999h",
        due: None,
    },
];

#[test]
fn add_cases() {
    let all = calendars();
    let mut failures = Vec::new();
    for c in ADD_CASES {
        let cal = calendar(&all, c.calendar);
        let start = t(c.start);
        let d = dur(c.duration);
        let got = cal.add(start, &d);
        let want = c.due.map(t);
        if got != want {
            failures.push(format!(
                "{}: {} + {} on {}: got {:?}, want {:?}",
                c.name, c.start, c.duration, c.calendar, got, want
            ));
        }
        // Hours, minutes and seconds are exact business time.
        if let (Some(due), 0, 0) = (got, d.days, d.weeks) {
            let e = cal.elapsed(start, due);
            if e != secs(&d) as i64 {
                failures.push(format!("{}: elapsed to the due time is {e}", c.name));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

struct ElapsedCase {
    name: &'static str,
    calendar: &'static str,
    from: &'static str,
    to: &'static str,
    secs: i64,
}

const fn span(
    name: &'static str,
    calendar: &'static str,
    from: &'static str,
    to: &'static str,
    secs: i64,
) -> ElapsedCase {
    ElapsedCase {
        name,
        calendar,
        from,
        to,
        secs,
    }
}

const H: i64 = 3600;

const ELAPSED_CASES: &[ElapsedCase] = &[
    span(
        "one office day",
        "office",
        "2026-06-01 00:00+02:00",
        "2026-06-02 00:00+02:00",
        9 * H,
    ),
    span(
        "office week",
        "office",
        "2026-06-01 00:00+02:00",
        "2026-06-08 00:00+02:00",
        45 * H,
    ),
    span(
        "week with a holiday",
        "office",
        "2026-05-11 00:00+02:00",
        "2026-05-18 00:00+02:00",
        36 * H,
    ),
    span(
        "partial days",
        "office",
        "2026-06-01 16:00+02:00",
        "2026-06-02 09:30+02:00",
        2 * H + 1800,
    ),
    span(
        "weekend only",
        "office",
        "2026-06-06 00:00+02:00",
        "2026-06-08 00:00+02:00",
        0,
    ),
    span(
        "end before start",
        "office",
        "2026-06-02 00:00+02:00",
        "2026-06-01 00:00+02:00",
        0,
    ),
    span(
        "lunch break excluded",
        "lunch",
        "2026-06-01 11:00+02:00",
        "2026-06-01 14:00+02:00",
        2 * H,
    ),
    span(
        "spring forward day",
        "early",
        "2026-03-29 00:00+01:00",
        "2026-03-30 00:00+02:00",
        2 * H,
    ),
    span(
        "fall back day",
        "early",
        "2026-10-25 00:00+02:00",
        "2026-10-26 00:00+01:00",
        4 * H,
    ),
    span(
        "split ranges, fall back",
        "split",
        "2026-10-25 00:00+02:00",
        "2026-10-26 00:00+01:00",
        4 * H,
    ),
    span(
        "split ranges, spring forward",
        "split",
        "2026-03-29 00:00+01:00",
        "2026-03-30 00:00+02:00",
        2 * H,
    ),
    span(
        "opening at a repeated time",
        "late",
        "2026-10-25 00:00+02:00",
        "2026-10-26 00:00+01:00",
        3 * H + 1800,
    ),
    span(
        "opening in the gap",
        "late",
        "2026-03-29 00:00+01:00",
        "2026-03-30 00:00+02:00",
        2 * H,
    ),
    span(
        "night, spring forward",
        "night",
        "2026-03-29 00:00+01:00",
        "2026-03-30 00:00+02:00",
        7 * H,
    ),
    span(
        "night, fall back",
        "night",
        "2026-10-25 00:00+02:00",
        "2026-10-26 00:00+01:00",
        9 * H,
    ),
    span(
        "New York, spring forward",
        "new_york",
        "2026-03-08 00:00-05:00",
        "2026-03-09 00:00-04:00",
        3 * H + 1800,
    ),
    span(
        "New York, fall back",
        "new_york",
        "2026-11-01 00:00-04:00",
        "2026-11-02 00:00-05:00",
        5 * H + 1800,
    ),
    span(
        "New York, ordinary Sunday",
        "new_york",
        "2026-06-07 00:00-04:00",
        "2026-06-08 00:00-04:00",
        4 * H + 1800,
    ),
    span(
        "a year of office hours",
        "office",
        "2026-01-01 00:00+01:00",
        "2027-01-01 00:00+01:00",
        (261 - 3) * 9 * H,
    ),
    span(
        "24x7",
        "24x7",
        "2026-03-28 00:00+00:00",
        "2026-03-30 00:00+00:00",
        48 * H,
    ),
];

#[test]
fn elapsed_cases() {
    let all = calendars();
    let mut failures = Vec::new();
    for c in ELAPSED_CASES {
        let got = calendar(&all, c.calendar).elapsed(t(c.from), t(c.to));
        if got != c.secs {
            failures.push(format!("{}: got {got}, want {}", c.name, c.secs));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn open_and_next_opening() {
    let all = calendars();
    let office = calendar(&all, "office");
    let lunch = calendar(&all, "lunch");
    let cases: &[(&str, &BusinessCalendar, &str, bool, &str)] = &[
        (
            "opening instant is open",
            &office,
            "2026-06-01 08:00+02:00",
            true,
            "2026-06-01 08:00+02:00",
        ),
        (
            "closing instant is closed",
            &office,
            "2026-06-01 17:00+02:00",
            false,
            "2026-06-02 08:00+02:00",
        ),
        (
            "weekend",
            &office,
            "2026-06-06 12:00+02:00",
            false,
            "2026-06-08 08:00+02:00",
        ),
        (
            "holiday",
            &office,
            "2026-05-14 12:00+02:00",
            false,
            "2026-05-15 08:00+02:00",
        ),
        (
            "lunch",
            &lunch,
            "2026-06-01 12:15+02:00",
            false,
            "2026-06-01 13:00+02:00",
        ),
        (
            "before lunch",
            &lunch,
            "2026-06-01 11:59+02:00",
            true,
            "2026-06-01 11:59+02:00",
        ),
    ];
    for (name, cal, at, open, next) in cases {
        assert_eq!(cal.is_open(t(at)), *open, "{name}");
        assert_eq!(cal.next_opening(t(at)), Some(t(next)), "{name}");
    }
    // A fraction of a second is kept when the start is open, dropped by the arithmetic.
    let at = t("2026-06-01 10:00+02:00") + chrono::TimeDelta::milliseconds(500);
    assert_eq!(office.next_opening(at), Some(at));
    assert_eq!(
        office.add(at, &dur("1h")),
        Some(t("2026-06-01 11:00+02:00"))
    );
    assert_eq!(office.elapsed(at, t("2026-06-01 11:00+02:00")), 3600);
}

fn bare_calendar(week: [Vec<(u32, u32)>; 7], holidays: BTreeSet<NaiveDate>) -> Calendar {
    Calendar {
        name: "bare".into(),
        label: None,
        timezone: Tz::Europe__Amsterdam,
        week,
        holidays,
        index: Default::default(),
    }
}

#[test]
fn never_open() {
    let closed = bare_calendar(Default::default(), BTreeSet::new());
    let cal = BusinessCalendar::new(&closed);
    let at = t("2026-06-01 10:00+02:00");
    assert!(!cal.is_open(at));
    assert_eq!(cal.next_opening(at), None);
    assert_eq!(cal.add(at, &dur("1h")), None);
    assert_eq!(cal.add(at, &dur("1d")), None);
    assert_eq!(cal.add(at, &dur("0s")), None);
    assert_eq!(cal.elapsed(at, at + chrono::TimeDelta::days(30)), 0);
    assert_eq!(cal.business_days_per_week(), 0);
    assert_eq!(cal.fixed_seconds(&dur("1h")), None, "never reached");
}

/// Open on Mondays only, with every Monday a holiday for `years` years from 2026.
fn mondays_off(years: i32) -> Calendar {
    let mut week: [Vec<(u32, u32)>; 7] = Default::default();
    week[0] = vec![(480, 1020)];
    let mut holidays = BTreeSet::new();
    let mut day = NaiveDate::from_ymd_opt(2026, 1, 5).unwrap();
    while day.year() < 2026 + years {
        holidays.insert(day);
        day += chrono::TimeDelta::days(7);
    }
    bare_calendar(week, holidays)
}

#[test]
fn horizon_of_ten_years() {
    let at = t("2026-01-01 10:00+01:00");
    let nine = mondays_off(9);
    let cal = BusinessCalendar::new(&nine);
    assert_eq!(cal.next_opening(at), Some(t("2035-01-01 08:00+01:00")));
    assert_eq!(cal.add(at, &dur("1h")), Some(t("2035-01-01 09:00+01:00")));
    assert_eq!(cal.add(at, &dur("1d")), Some(t("2035-01-08 08:00+01:00")));
    let eleven = mondays_off(11);
    let cal = BusinessCalendar::new(&eleven);
    assert_eq!(cal.next_opening(at), None);
    assert_eq!(cal.add(at, &dur("1h")), None);
    assert_eq!(cal.add(at, &dur("1d")), None);
    assert!(!cal.is_open(at));
}

// ---------------------------------------------------------------------------------------------
// The reference: the documented rules, literally and slowly.

/// The UTC instant of a local time: a time in a gap is the first instant after the gap (found
/// by walking forward a minute at a time), a repeated time its earliest instant for an opening
/// and its latest for a closing.
fn reference_utc(tz: Tz, date: NaiveDate, minute: u32, opening: bool) -> i64 {
    let mut local = date.and_hms_opt(0, 0, 0).unwrap() + chrono::TimeDelta::minutes(minute.into());
    loop {
        match tz.from_local_datetime(&local) {
            LocalResult::Single(t) => return t.timestamp(),
            LocalResult::Ambiguous(a, b) => {
                let (a, b) = (a.timestamp(), b.timestamp());
                return if opening { a.min(b) } else { a.max(b) };
            }
            LocalResult::None => {
                // The first instant after the gap: the first existing minute, at its earliest.
                local += chrono::TimeDelta::minutes(1);
                if let Some(t) = tz.from_local_datetime(&local).earliest() {
                    return t.timestamp();
                }
            }
        }
    }
}

/// The open intervals of local dates `from..=to`, in order, each with its date; each interval
/// starts no earlier than the one before it ended.
fn reference_intervals(
    cal: &Calendar,
    from: NaiveDate,
    to: NaiveDate,
) -> Vec<(NaiveDate, i64, i64)> {
    let mut out = Vec::new();
    let mut prev_end = i64::MIN;
    let mut date = from;
    while date <= to {
        if !cal.holidays.contains(&date) {
            for &(a, b) in &cal.week[date.weekday().num_days_from_monday() as usize] {
                let s = reference_utc(cal.timezone, date, a, true).max(prev_end);
                let e = reference_utc(cal.timezone, date, b, false).max(s);
                prev_end = e;
                out.push((date, s, e));
            }
        }
        date = date.succ_opt().unwrap();
    }
    out
}

fn local_date(cal: &Calendar, at: i64) -> NaiveDate {
    DateTime::from_timestamp(at, 0)
        .unwrap()
        .with_timezone(&cal.timezone)
        .date_naive()
}

fn reference_elapsed(cal: &Calendar, from: i64, to: i64) -> i64 {
    let first = local_date(cal, from).pred_opt().unwrap();
    let last = local_date(cal, to).succ_opt().unwrap();
    reference_intervals(cal, first, last)
        .iter()
        .map(|&(_, s, e)| (e.min(to) - s.max(from)).max(0))
        .sum()
}

fn reference_add_secs(cal: &Calendar, from: i64, secs: i64) -> i64 {
    let first = local_date(cal, from).pred_opt().unwrap();
    let mut rest = secs;
    for (_, s, e) in reference_intervals(cal, first, first + chrono::TimeDelta::days(800)) {
        if e <= from {
            continue;
        }
        let begin = s.max(from);
        if rest <= e - begin && (rest > 0 || e > begin) {
            return begin + rest;
        }
        rest -= e - begin;
    }
    panic!("reference: not within 800 days");
}

fn reference_add_days(cal: &Calendar, from: i64, days: u64) -> i64 {
    let first = local_date(cal, from).pred_opt().unwrap();
    let intervals = reference_intervals(cal, first, first + chrono::TimeDelta::days(800));
    let i = intervals
        .iter()
        .position(|&(_, s, e)| e > from && e > s)
        .expect("opens");
    let day = intervals[i].0;
    let offset: i64 = intervals[..i]
        .iter()
        .filter(|iv| iv.0 == day)
        .map(|&(_, s, e)| e - s)
        .sum::<i64>()
        + from.max(intervals[i].1)
        - intervals[i].1;
    let business = |d: NaiveDate| {
        !cal.holidays.contains(&d)
            && cal.week[d.weekday().num_days_from_monday() as usize]
                .iter()
                .any(|(a, b)| b > a)
    };
    let mut target = day;
    let mut n = days;
    while n > 0 {
        target = target.succ_opt().unwrap();
        if business(target) {
            n -= 1;
        }
    }
    let mut before = 0;
    let mut close = None;
    for &(_, s, e) in intervals.iter().filter(|iv| iv.0 == target) {
        if e > s && offset < before + (e - s) {
            return s + offset - before;
        }
        before += e - s;
        close = Some(e);
    }
    close.expect("a business day has hours")
}

const PROPERTY_CALENDARS: &[&str] = &[
    "office",
    "lunch",
    "short_friday",
    "night",
    "early",
    "split",
    "late",
    "new_york",
    "lord_howe",
    "utc_always",
    "24x7",
];

/// 2025-01-01 to 2028-01-01, both changes of clocks of each year included.
fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    (1_735_689_600i64..1_830_297_600, 0u32..4).prop_map(|(secs, frac)| {
        // Now and then a fraction of a second.
        DateTime::from_timestamp(secs, if frac == 0 { 250_000_000 } else { 0 }).unwrap()
    })
}

fn business_secs() -> impl Strategy<Value = u64> {
    prop_oneof![0u64..3_600, 0u64..40 * 3_600, 0u64..2_500 * 3_600]
}

fn named<'a>(all: &'a [Calendar], name: &str) -> Option<&'a Calendar> {
    all.iter().find(|c| c.name == name)
}

fn whole(t: DateTime<Utc>) -> i64 {
    t.timestamp()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// `h`/`m`/`s` are exact business time: elapsed(start, add(start, d)) == d, and the result
    /// is the earliest such instant. So such a duration is that many business seconds wherever
    /// it starts (`fixed_seconds`, which clocks use instead of the walk), and one with days is
    /// not.
    #[test]
    fn add_then_elapsed_is_the_duration(
        which in 0..PROPERTY_CALENDARS.len(),
        start in instant(),
        secs in business_secs(),
    ) {
        let all = calendars();
        let cal = calendar(&all, PROPERTY_CALENDARS[which]);
        let due = cal.add_seconds(start, secs).expect("opens");
        prop_assert_eq!(cal.elapsed(start, due), secs as i64);
        let d = Duration { seconds: secs, ..Duration::default() };
        prop_assert_eq!(cal.fixed_seconds(&d), Some(secs as i64));
        prop_assert_eq!(cal.fixed_seconds(&Duration { days: 1, ..d }), None);
        if secs > 0 {
            let just_before = due - chrono::TimeDelta::seconds(1);
            prop_assert_eq!(cal.elapsed(start, just_before), secs as i64 - 1);
        } else {
            prop_assert_eq!(Some(due), cal.next_opening(start));
        }
    }

    /// add is non-decreasing in the duration, for hours and for days.
    #[test]
    fn add_is_monotonic(
        which in 0..PROPERTY_CALENDARS.len(),
        start in instant(),
        a in business_secs(),
        b in business_secs(),
        da in 0u64..30,
        db in 0u64..30,
    ) {
        let all = calendars();
        let cal = calendar(&all, PROPERTY_CALENDARS[which]);
        let (a, b) = (a.min(b), a.max(b));
        prop_assert!(cal.add_seconds(start, a) <= cal.add_seconds(start, b));
        let (da, db) = (da.min(db), da.max(db));
        let days = |n| Duration { days: n, ..Duration::default() };
        let (x, y) = (cal.add(start, &days(da)), cal.add(start, &days(db)));
        prop_assert!(x.is_some() && x <= y, "{:?} {:?}", x, y);
    }

    /// elapsed(a, b) + elapsed(b, c) == elapsed(a, c), over spans long enough to skip weeks.
    #[test]
    fn elapsed_is_additive(
        which in 0..PROPERTY_CALENDARS.len(),
        a in instant(),
        b in instant(),
        c in instant(),
    ) {
        let all = calendars();
        let cal = calendar(&all, PROPERTY_CALENDARS[which]);
        let mut v = [a, b, c];
        v.sort();
        let [a, b, c] = v;
        prop_assert_eq!(cal.elapsed(a, b) + cal.elapsed(b, c), cal.elapsed(a, c));
        prop_assert_eq!(cal.elapsed(c, a), 0);
    }

    /// The calendar agrees with the slow reference on elapsed, add (hours and days), is_open
    /// and next_opening.
    #[test]
    fn matches_the_reference(
        which in 0..PROPERTY_CALENDARS.len() - 1,
        start in instant(),
        span_secs in prop_oneof![0i64..2 * 86_400, 0i64..60 * 86_400],
        secs in prop_oneof![1u64..3_600, 1u64..200 * 3_600],
        days in 1u64..25,
    ) {
        let all = calendars();
        let model = named(&all, PROPERTY_CALENDARS[which]).unwrap();
        let cal = BusinessCalendar::new(model);
        let from = whole(start);
        let to = DateTime::from_timestamp(from + span_secs, 0).unwrap();
        prop_assert_eq!(cal.elapsed(start, to), reference_elapsed(model, from, from + span_secs));
        prop_assert_eq!(
            cal.add_seconds(start, secs).map(whole),
            Some(reference_add_secs(model, from, secs as i64))
        );
        let d = Duration { days, ..Duration::default() };
        prop_assert_eq!(cal.add(start, &d).map(whole), Some(reference_add_days(model, from, days)));
        let open = reference_elapsed(model, from, from + 1) == 1;
        prop_assert_eq!(cal.is_open(start), open);
        let next = cal.next_opening(start).unwrap();
        prop_assert_eq!(next == start, open);
        prop_assert_eq!(whole(next), reference_add_secs(model, from, 1) - 1);
    }
}
