//! Business time on service calendars: when a target falls due, and how much of a target has
//! run between two instants. Pure arithmetic, no I/O.
//!
//! A [`BusinessCalendar`] wraps a checked [`Calendar`] (or is the built-in `24x7`) and answers
//! four questions: is it open at an instant ([`BusinessCalendar::is_open`]), when does it next
//! open ([`BusinessCalendar::next_opening`]), how much business time lies between two instants
//! ([`BusinessCalendar::elapsed`]), and which instant is a duration of business time after
//! another ([`BusinessCalendar::add`]). The rules are those of "Business time" in
//! `docs/language.md`; in short:
//!
//! - **Open time.** Each local date that is not a holiday is open for its weekday's ranges,
//!   in the calendar's time zone. A range is converted to UTC by its two ends: a local time
//!   that does not exist (clocks going forward) is the first instant after the gap; one that
//!   happens twice (clocks going back) is its earliest instant as an opening and its latest as a
//!   closing. So a range over the spring-forward hour is an hour shorter, one over the
//!   fall-back hour an hour longer. `24:00` is the next local midnight. Ranges are half open:
//!   a calendar open 08:00-17:00 is open at 08:00:00 and closed at 17:00:00. Where a change of
//!   clocks makes a range end after the next one starts, the next one starts at that end, so no
//!   time counts twice.
//! - **`h`, `m`, `s`** are business seconds: the result is the earliest instant by which that
//!   much open time has passed since the start.
//! - **`d`** counts business days: dates that are not holidays and whose weekday has hours.
//!   From the start (moved to the next opening if closed), let `o` be the open time of its
//!   business day before it; `Nd` is the first open instant of the Nth following business day
//!   with `o` of that day's open time before it (so after a break, not at its start), or that
//!   day's closing if the day has no more than `o` open time.
//! - **`w`** is as many business days as the calendar's week has open weekdays (5 on mon-fri).
//! - A duration with both applies the days first, then the hours, minutes and seconds. A zero
//!   duration gives the start if it is open, otherwise the next opening.
//! - **`24x7`**: `1d` is 24 hours and `1w` is 168 hours.
//! - Instants are taken to the second (fractions are dropped), and nothing is computed past
//!   9999-12-31 or when the calendar does not open for ten years.
//!
//! Cost: a walk converts each local date's ranges to UTC, consulting chrono-tz about once
//! every three days (see `zone.rs` for why that is sound), and skips a whole week at a time
//! where no holiday and no change of clocks falls. Business seconds (`h`, `m`, `s`: `add` and
//! `elapsed`) are mostly not walked at all: the calendar's [`CalendarIndex`] keeps the intervals
//! walks gave, a block of dates at a time, and answers by binary search (`index.rs`).

mod index;
mod walk;
pub mod yearly;
mod zone;

pub use index::CalendarIndex;

use std::cell::Cell;

use chrono::{DateTime, Utc};

use crate::model::{Calendar, CalendarRef, Duration};
use walk::{weekday, HolidayCursor, Walker};
use zone::Zone;

const DAY: i64 = 86_400;
/// The last supported local date, 9999-12-31, in days since 1970-01-01.
const MAX_DAYS: i64 = 2_932_896;
/// The last supported instant, 9999-12-31T23:59:59Z.
const MAX_INSTANT: i64 = (MAX_DAYS + 1) * DAY - 1;
/// A calendar that stays closed this many days in a row (about ten years) is taken never to
/// open again.
pub const HORIZON_DAYS: i64 = 3_653;

/// A calendar to compute business time on: a declared calendar or the built-in `24x7`.
#[derive(Clone, Debug)]
pub struct BusinessCalendar<'a> {
    /// `None` for `24x7`.
    hours: Option<Hours<'a>>,
}

/// A declared calendar with its week summarised.
#[derive(Clone, Debug)]
struct Hours<'a> {
    cal: &'a Calendar,
    /// The time zone with the span of one offset the last walk learnt: the next walk, usually
    /// over nearby dates (a clock's target, then each of its escalation steps), starts from it
    /// instead of looking the offset up again. Sound for any later walk: the span is a fact
    /// about the zone, not about the walk.
    zone: Cell<Zone>,
    week: Week,
}

/// What a calendar's week gives a walk, summarised once per calendar (kept by its
/// [`CalendarIndex`]).
#[derive(Clone, Copy, Debug)]
struct Week {
    /// Open seconds of a week without holidays or changes of clocks.
    week_secs: i64,
    /// Weekdays with open time.
    open_days: u64,
    open: [bool; 7],
    /// For seven dates from a date of weekday `w`, without holidays or changes of clocks:
    /// seconds from the first date's midnight to the first opening and to the last closing.
    span_first: [i64; 7],
    span_last: [i64; 7],
}

impl Week {
    fn of(cal: &Calendar) -> Week {
        let mut first: [Option<i64>; 7] = [None; 7];
        let mut last: [Option<i64>; 7] = [None; 7];
        let mut week_secs = 0;
        for (w, ranges) in cal.week.iter().enumerate() {
            // As the walker sees them: ends past 24:00 cut, overlaps trimmed.
            let mut prev = 0;
            for &(from, to) in ranges {
                let start = i64::from(from.min(1440)).max(prev);
                let end = i64::from(to.min(1440)).max(start);
                prev = end;
                if end > start {
                    first[w].get_or_insert(start * 60);
                    last[w] = Some(end * 60);
                    week_secs += (end - start) * 60;
                }
            }
        }
        let open = first.map(|f| f.is_some());
        let mut span_first = [0; 7];
        let mut span_last = [0; 7];
        for w in 0..7 {
            let day = |k: usize| (k, (w + k) % 7);
            span_first[w] = (0..7)
                .map(day)
                .find_map(|(k, d)| first[d].map(|s| k as i64 * DAY + s))
                .unwrap_or(0);
            span_last[w] = (0..7)
                .rev()
                .map(day)
                .find_map(|(k, d)| last[d].map(|e| k as i64 * DAY + e))
                .unwrap_or(0);
        }
        Week {
            week_secs,
            open_days: open.iter().filter(|o| **o).count() as u64,
            open,
            span_first,
            span_last,
        }
    }
}

impl<'a> Hours<'a> {
    fn new(cal: &'a Calendar) -> Self {
        Hours {
            cal,
            zone: Cell::new(Zone::new(cal.timezone)),
            week: cal.index.week(cal),
        }
    }

    fn is_open(&self, at: i64) -> bool {
        let mut walk = Walker::around(self, at);
        walk.until = walk.date() + 2;
        while let Some(iv) = walk.next() {
            if iv.start > at {
                break;
            }
            if at < iv.end {
                return true;
            }
        }
        false
    }

    /// The first open interval that ends after `at`.
    fn next_open_interval(&self, walk: &mut Walker<'_, 'a>, at: i64) -> Option<walk::Interval> {
        loop {
            let iv = walk.next()?;
            if iv.end > at && iv.end > iv.start {
                return Some(iv);
            }
        }
    }

    fn elapsed(&self, from: i64, to: i64) -> i64 {
        self.cal
            .index
            .elapsed(self, from, to)
            .unwrap_or_else(|| self.walk_elapsed(from, to))
    }

    /// [`Hours::elapsed`] by walking the calendar.
    fn walk_elapsed(&self, from: i64, to: i64) -> i64 {
        let mut walk = Walker::around(self, from);
        // Every interval of a later date starts after `to` (offsets are under a day).
        walk.until = (to + DAY).div_euclid(DAY) + 1;
        let mut total = 0;
        loop {
            if to - walk.date() * DAY > 9 * DAY {
                if let Some((first, last)) = walk.uniform_week() {
                    if first >= from && last <= to {
                        total += self.week.week_secs;
                        walk.skip_week(last);
                        continue;
                    }
                }
            }
            let Some(iv) = walk.next() else { break };
            if iv.start >= to {
                break;
            }
            total += (iv.end.min(to) - iv.start.max(from)).max(0);
        }
        total
    }

    /// The earliest instant by which `secs` (> 0) business seconds have passed since `from`.
    fn add_secs(&self, from: i64, secs: i64) -> Option<i64> {
        // Business time never runs faster than real time.
        if secs > MAX_INSTANT.saturating_sub(from) {
            return None;
        }
        match self.cal.index.add_secs(self, from, secs) {
            Some(t) => Some(t).filter(|t| *t <= MAX_INSTANT),
            None => self.walk_add_secs(from, secs),
        }
    }

    /// [`Hours::add_secs`] by walking the calendar.
    fn walk_add_secs(&self, from: i64, secs: i64) -> Option<i64> {
        let mut walk = Walker::around(self, from);
        let mut rest = secs;
        loop {
            if rest > self.week.week_secs {
                if let Some((first, last)) = walk.uniform_week() {
                    if first >= from {
                        rest -= self.week.week_secs;
                        walk.skip_week(last);
                        continue;
                    }
                }
            }
            let iv = walk.next()?;
            if iv.end <= from {
                continue;
            }
            let begin = iv.start.max(from);
            if rest <= iv.end - begin {
                return Some(begin + rest).filter(|t| *t <= MAX_INSTANT);
            }
            rest -= iv.end - begin;
        }
    }

    /// `days` (> 0) business days after `from`: the same open time into the day (see the
    /// module documentation).
    fn add_days(&self, from: i64, days: u64) -> Option<i64> {
        let index = &self.cal.index;
        let (day, offset) = match index.day_offset(self, from) {
            Some(found) => found,
            None => self.walk_day_offset(from)?,
        };
        let target = self.nth_business_day(day, days)?;
        let at = match index.at_offset(self, target, offset) {
            Some(at) => at,
            None => self.walk_at_offset(target, offset),
        };
        at.filter(|t| *t <= MAX_INSTANT)
    }

    /// The business day of `from` (or of the next opening), and the open time of that day
    /// before it; `None` if the calendar does not open again.
    fn walk_day_offset(&self, from: i64) -> Option<(i64, i64)> {
        let mut walk = Walker::around(self, from);
        let (mut date, mut before) = (i64::MIN, 0);
        loop {
            let iv = walk.next()?;
            if iv.date != date {
                date = iv.date;
                before = 0;
            }
            if iv.end > from && iv.end > iv.start {
                return Some((iv.date, before + iv.start.max(from) - iv.start));
            }
            before += iv.len();
        }
    }

    /// The instant `offset` open seconds into the local date `day`, or its closing if it has no
    /// more open time than that.
    fn walk_at_offset(&self, day: i64, offset: i64) -> Option<i64> {
        let mut walk = Walker::from_date(self, self.zone.get(), day - 1);
        walk.until = day;
        let (mut before, mut close) = (0, None);
        while let Some(iv) = walk.next() {
            if iv.date < day {
                continue;
            }
            if iv.len() > 0 && offset < before + iv.len() {
                return Some(iv.start + offset - before);
            }
            before += iv.len();
            close = Some(iv.end);
        }
        close
    }

    /// The `n`th (> 0) business day after `day`.
    fn nth_business_day(&self, day: i64, n: u64) -> Option<i64> {
        if n > u64::try_from(MAX_DAYS - day).ok()? {
            return None;
        }
        let mut holidays = HolidayCursor::new(&self.cal.holidays);
        let (mut d, mut last, mut n) = (day, day, n);
        loop {
            // Seven dates without a holiday hold one business day per open weekday.
            if n > self.week.open_days && d + 7 <= MAX_DAYS && holidays.first_from(d + 1) > d + 7 {
                d += 7;
                last = d;
                n -= self.week.open_days;
                continue;
            }
            d += 1;
            if d > MAX_DAYS || d - last > HORIZON_DAYS {
                return None;
            }
            if self.week.open[weekday(d)] && !holidays.is_holiday(d) {
                last = d;
                n -= 1;
                if n == 0 {
                    return Some(d);
                }
            }
        }
    }
}

fn instant(secs: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(secs, 0)
}

impl<'a> BusinessCalendar<'a> {
    /// The built-in `24x7`: always open, no holidays, no time zone.
    pub fn always_open() -> Self {
        BusinessCalendar { hours: None }
    }

    /// A declared calendar.
    pub fn new(calendar: &'a Calendar) -> Self {
        BusinessCalendar {
            hours: Some(Hours::new(calendar)),
        }
    }

    /// The calendar a clock runs on, from a project's calendars (`None` if the id is not one
    /// of them).
    pub fn from_ref(calendars: &'a [Calendar], calendar: CalendarRef) -> Option<Self> {
        match calendar {
            CalendarRef::AlwaysOpen => Some(Self::always_open()),
            CalendarRef::Named(id) => calendars.get(id.index()).map(Self::new),
        }
    }

    /// Business days in `1w`: the weekdays with open hours (7 for `24x7`).
    pub fn business_days_per_week(&self) -> u64 {
        self.hours.as_ref().map_or(7, |h| h.week.open_days)
    }

    /// The business seconds in `d` wherever it starts, when that does not depend on the dates:
    /// hours, minutes and seconds are that much business time from any start (business time
    /// is additive), on a calendar open on some weekday. `None` when `d` has days or weeks
    /// (those count dates), or the calendar is never open.
    pub fn fixed_seconds(&self, d: &Duration) -> Option<i64> {
        let (days, secs) = self.split(d)?;
        (days == 0 && self.business_days_per_week() > 0).then_some(secs)
    }

    /// The business seconds in `d` counted from `start`: [`BusinessCalendar::fixed_seconds`]
    /// where that applies, else the open time up to [`BusinessCalendar::add`]'s answer; `None`
    /// when that many is never reached.
    pub fn seconds_in(&self, start: DateTime<Utc>, d: &Duration) -> Option<i64> {
        self.fixed_seconds(d)
            .or_else(|| self.add(start, d).map(|end| self.elapsed(start, end)))
    }

    /// A duration as (business days, business seconds); `None` on overflow.
    fn split(&self, d: &Duration) -> Option<(u64, i64)> {
        let days = d
            .weeks
            .checked_mul(self.business_days_per_week())?
            .checked_add(d.days)?;
        let secs = d
            .hours
            .checked_mul(3600)?
            .checked_add(d.minutes.checked_mul(60)?)?
            .checked_add(d.seconds)?;
        Some((days, i64::try_from(secs).ok()?))
    }

    /// The instant `d` of business time after `start` (see the module documentation for what
    /// `d` and `w` mean). Counting begins at the next opening if `start` is outside hours; a
    /// zero duration gives [`BusinessCalendar::next_opening`]. `None` when the calendar does not
    /// open again within ten years, or the result would be after 9999-12-31.
    pub fn add(&self, start: DateTime<Utc>, d: &Duration) -> Option<DateTime<Utc>> {
        let (days, secs) = self.split(d)?;
        if days == 0 && secs == 0 {
            return self.next_opening(start);
        }
        let from = start.timestamp();
        let Some(hours) = &self.hours else {
            let days = i64::try_from(days).ok()?.checked_mul(DAY)?;
            let t = from.checked_add(days)?.checked_add(secs)?;
            return instant(t).filter(|_| t <= MAX_INSTANT);
        };
        if hours.week.open_days == 0 {
            return None;
        }
        let mut t = from;
        if days > 0 {
            t = hours.add_days(t, days)?;
        }
        if secs > 0 {
            t = hours.add_secs(t, secs)?;
        }
        instant(t)
    }

    /// The instant `secs` business seconds after `start` (the same as [`BusinessCalendar::add`]
    /// with a duration of that many seconds).
    pub fn add_seconds(&self, start: DateTime<Utc>, secs: u64) -> Option<DateTime<Utc>> {
        self.add(
            start,
            &Duration {
                seconds: secs,
                ..Duration::default()
            },
        )
    }

    /// Business time between two instants, in seconds: the open time in `[start, end)`, 0 if
    /// `end <= start`. Instants are taken to the second.
    pub fn elapsed(&self, start: DateTime<Utc>, end: DateTime<Utc>) -> i64 {
        let (from, to) = (start.timestamp(), end.timestamp());
        if to <= from {
            return 0;
        }
        match &self.hours {
            None => to - from,
            Some(h) if h.week.open_days == 0 => 0,
            Some(h) => h.elapsed(from, to),
        }
    }

    /// Whether the calendar is open at `at`.
    pub fn is_open(&self, at: DateTime<Utc>) -> bool {
        match &self.hours {
            None => true,
            Some(h) => h.week.open_days > 0 && h.is_open(at.timestamp()),
        }
    }

    /// The first instant at or after `at` when the calendar is open: `at` itself if it is
    /// open. `None` if it does not open within ten years (or before 9999-12-31).
    pub fn next_opening(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let Some(hours) = &self.hours else {
            return Some(at);
        };
        if hours.week.open_days == 0 {
            return None;
        }
        let from = at.timestamp();
        let mut walk = Walker::around(hours, from);
        let iv = hours.next_open_interval(&mut walk, from)?;
        if iv.start <= from {
            Some(at)
        } else {
            instant(iv.start)
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;
    use proptest::prelude::*;

    use super::walk::{from_naive, to_naive, weekday};
    use super::*;

    #[test]
    fn day_numbers() {
        let max = NaiveDate::from_ymd_opt(9999, 12, 31).unwrap();
        assert_eq!(from_naive(max), MAX_DAYS);
        assert_eq!(to_naive(MAX_DAYS), Some(max));
        assert_eq!(
            DateTime::from_timestamp(MAX_INSTANT, 0)
                .unwrap()
                .to_rfc3339(),
            "9999-12-31T23:59:59+00:00"
        );
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
        assert_eq!(from_naive(epoch), 0);
        // 1970-01-01 was a Thursday; 1969-12-29 a Monday.
        assert_eq!(weekday(0), 3);
        assert_eq!(weekday(-3), 0);
        assert_eq!(weekday(4), 0);
    }

    fn calendar(zone: &str, week: [Vec<(u32, u32)>; 7], holidays: &[(i32, u32, u32)]) -> Calendar {
        Calendar {
            name: "test".into(),
            label: None,
            timezone: zone.parse().expect("zone"),
            week,
            holidays: holidays
                .iter()
                .filter_map(|(y, m, d)| NaiveDate::from_ymd_opt(*y, *m, *d))
                .collect(),
            index: Default::default(),
        }
    }

    /// Calendars where the index has most to get right: changes of clocks inside and at the
    /// edges of ranges, ranges to 24:00, overnight shifts, holidays, a weekday without hours.
    fn calendars() -> Vec<Calendar> {
        let office = || vec![(480, 750), (780, 1020)];
        vec![
            calendar(
                "Europe/Amsterdam",
                [
                    office(),
                    office(),
                    office(),
                    office(),
                    office(),
                    vec![],
                    vec![],
                ],
                &[(2026, 12, 25), (2026, 12, 28), (2027, 1, 1), (2031, 4, 14)],
            ),
            calendar(
                "America/Santiago",
                [
                    vec![(0, 1440)],
                    vec![(0, 120), (1320, 1440)],
                    vec![(60, 180)],
                    vec![],
                    vec![(0, 1440)],
                    vec![(23 * 60, 1440)],
                    vec![(0, 60)],
                ],
                &[(2026, 9, 18)],
            ),
            calendar(
                "Australia/Lord_Howe",
                [
                    vec![(90, 150), (600, 1440)],
                    vec![(0, 1440)],
                    vec![(0, 1440)],
                    vec![(120, 240)],
                    vec![(0, 1440)],
                    vec![(0, 1440)],
                    vec![(0, 1440)],
                ],
                &[],
            ),
        ]
    }

    fn instant() -> impl Strategy<Value = i64> {
        // 1995 to 2045, and now and then the edges of what the index covers.
        prop_oneof![
            8 => 788_918_400i64..2_366_841_600,
            1 => -2_210_000_000i64..-2_200_000_000,
            1 => 7_257_000_000i64..7_258_200_000,
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        /// The index answers as the walk does.
        #[test]
        fn index_agrees_with_the_walk(
            which in 0usize..3,
            from in instant(),
            span in prop_oneof![0i64..3 * DAY, 0i64..400 * DAY],
            secs in prop_oneof![1i64..8 * 3600, 1i64..3_000 * 3600],
        ) {
            let all = calendars();
            let hours = Hours::new(&all[which]);
            let to = from + span;
            if span > 0 {
                prop_assert_eq!(hours.elapsed(from, to), hours.walk_elapsed(from, to));
            }
            prop_assert_eq!(hours.add_secs(from, secs), hours.walk_add_secs(from, secs));
            let index = &all[which].index;
            let walked = hours.walk_day_offset(from);
            if let Some(found) = index.day_offset(&hours, from) {
                prop_assert_eq!(Some(found), walked);
            }
            if let Some((day, offset)) = walked {
                let later = day + span.div_euclid(DAY);
                if let Some(at) = index.at_offset(&hours, later, offset) {
                    prop_assert_eq!(at, hours.walk_at_offset(later, offset));
                }
            }
        }
    }
}
