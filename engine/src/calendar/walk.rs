//! Walking a calendar's open intervals forward in time, one local date after another.

use std::collections::BTreeSet;

use chrono::{Datelike, NaiveDate};

use super::zone::{Edge, Zone};
use super::{Hours, DAY, HORIZON_DAYS, MAX_DAYS};

/// Days from 0001-01-01 (day 1 of the common era) to 1970-01-01.
const EPOCH_FROM_CE: i64 = 719_163;

/// The weekday of a day number (days since 1970-01-01), Monday 0: 1970-01-01 was a Thursday.
pub(super) fn weekday(day: i64) -> usize {
    (day + 3).rem_euclid(7) as usize
}

pub(super) fn to_naive(day: i64) -> Option<NaiveDate> {
    NaiveDate::from_num_days_from_ce_opt(i32::try_from(day + EPOCH_FROM_CE).ok()?)
}

pub(super) fn from_naive(date: NaiveDate) -> i64 {
    i64::from(date.num_days_from_ce()) - EPOCH_FROM_CE
}

/// Answers "the first holiday on or after this date" for dates that mostly go forward, with a
/// tree lookup only when a holiday is passed.
pub(super) struct HolidayCursor<'a> {
    set: &'a BTreeSet<NaiveDate>,
    /// `next` is the first holiday on or after `from` (`i64::MAX`: none).
    from: i64,
    next: i64,
}

impl<'a> HolidayCursor<'a> {
    pub(super) fn new(set: &'a BTreeSet<NaiveDate>) -> Self {
        HolidayCursor {
            set,
            from: i64::MAX,
            next: i64::MIN,
        }
    }

    /// The first holiday on or after `day` (`i64::MAX` if none).
    pub(super) fn first_from(&mut self, day: i64) -> i64 {
        if self.set.is_empty() {
            return i64::MAX;
        }
        if !(self.from <= day && day <= self.next) {
            self.next = to_naive(day)
                .and_then(|d| self.set.range(d..).next().copied())
                .map_or(i64::MAX, from_naive);
        }
        self.from = day;
        self.next
    }

    pub(super) fn is_holiday(&mut self, day: i64) -> bool {
        self.first_from(day) == day
    }
}

/// One open range of one local date, in UTC (Unix seconds). May be empty (`start == end`) when
/// a change of clocks swallows the range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Interval {
    /// The local date whose hours these are (days since 1970-01-01).
    pub date: i64,
    pub start: i64,
    pub end: i64,
}

impl Interval {
    pub fn len(&self) -> i64 {
        self.end - self.start
    }
}

/// The open intervals of a calendar in time order, from a given local date on. Intervals never
/// overlap: each starts no earlier than the previous one ended (which matters only where a
/// change of clocks makes the end of one range later than the start of the next).
pub(super) struct Walker<'c, 'a> {
    hours: &'c Hours<'a>,
    zone: Zone,
    holidays: HolidayCursor<'a>,
    /// The next range to convert is range `idx` of local date `date`.
    date: i64,
    idx: usize,
    prev_end: i64,
    /// The last date with open time (or the first date walked), for the horizon.
    last_open: i64,
    /// No intervals of dates after this one.
    pub until: i64,
}

impl<'c, 'a> Walker<'c, 'a> {
    /// From local date `date`.
    pub(super) fn from_date(hours: &'c Hours<'a>, zone: Zone, date: i64) -> Self {
        Walker {
            hours,
            zone,
            holidays: HolidayCursor::new(&hours.cal.holidays),
            date,
            idx: 0,
            prev_end: i64::MIN,
            last_open: date,
            until: MAX_DAYS,
        }
    }

    /// From the local date before the one of the instant `at`: a range of that date that
    /// ends at 24:00 can reach past `at`'s midnight when the clocks go back at midnight.
    pub(super) fn around(hours: &'c Hours<'a>, at: i64) -> Self {
        let mut zone = hours.zone.get();
        let date = (at + zone.offset(at)).div_euclid(DAY);
        Walker::from_date(hours, zone, date - 1)
    }

    /// The local date of the next interval (or, between dates, of the next date to walk).
    pub(super) fn date(&self) -> i64 {
        self.date
    }

    pub(super) fn next(&mut self) -> Option<Interval> {
        let hours = self.hours;
        loop {
            if self.date > self.until
                || self.date > MAX_DAYS
                || self.date - self.last_open > HORIZON_DAYS
            {
                return None;
            }
            let ranges = &hours.cal.week[weekday(self.date)];
            if self.idx == 0 && (ranges.is_empty() || self.holidays.is_holiday(self.date)) {
                self.date += 1;
                continue;
            }
            let (from, to) = ranges[self.idx];
            let midnight = self.date * DAY;
            let start = self
                .zone
                .utc(midnight + i64::from(from.min(1440)) * 60, Edge::Start)
                .max(self.prev_end);
            let end = self
                .zone
                .utc(midnight + i64::from(to.min(1440)) * 60, Edge::End)
                .max(start);
            self.prev_end = end;
            let date = self.date;
            self.idx += 1;
            if self.idx == ranges.len() {
                self.idx = 0;
                self.date += 1;
            }
            if end > start {
                self.last_open = date;
            }
            return Some(Interval { date, start, end });
        }
    }

    /// When the walk is at the start of a date and the seven dates from it have no holiday and
    /// one UTC offset throughout, their open intervals are the calendar's week shifted by that
    /// offset: returns the first opening and the last closing of those seven dates (UTC).
    pub(super) fn uniform_week(&mut self) -> Option<(i64, i64)> {
        let day = self.date;
        if self.idx != 0 || day + 6 > MAX_DAYS.min(self.until) {
            return None;
        }
        if self.holidays.first_from(day) < day + 7 {
            return None;
        }
        let off = self.zone.uniform(day * DAY - DAY, (day + 7) * DAY + DAY)?;
        let w = weekday(day);
        let first = day * DAY + self.hours.week.span_first[w] - off;
        if self.prev_end > first {
            return None;
        }
        Some((first, day * DAY + self.hours.week.span_last[w] - off))
    }

    /// Skip the seven dates of a [`Walker::uniform_week`] whose last closing is `last`.
    pub(super) fn skip_week(&mut self, last: i64) {
        self.date += 7;
        self.prev_end = last;
        self.last_open = self.date - 1;
    }
}

/// A walk hands what it learnt about the zone's offsets back to its calendar for the next one.
impl Drop for Walker<'_, '_> {
    fn drop(&mut self) {
        self.hours.zone.set(self.zone);
    }
}
