//! Local wall-clock times to UTC instants in a calendar's time zone.
//!
//! Every conversion could go through chrono-tz, but a lookup there costs about 50 ns and a
//! walk over a few weeks of office hours makes dozens of them. [`Zone`] instead keeps a
//! *window*: a span of UTC instants over which it has seen a single UTC offset, found by
//! sampling the offset at most [`STEP`] apart. Inside the window a local time converts by
//! subtracting that offset; near a change of offset it falls back to chrono-tz ([`exact`]).
//!
//! The window is sound on one assumption about the time-zone data: **a zone's UTC offset never
//! changes twice within [`STEP`] (3 days)**, so two equal samples 3 days apart have no change
//! between them, and **every offset is less than a day** in size. In the tz database bundled by
//! chrono-tz 0.10 the closest pair of changes is 6.96 days apart (Brazil's week of daylight
//! saving time in October 2000, and projected Ramadan changes in Gaza), and no offset reaches
//! 16 hours. The unit tests compare the window against chrono-tz for zones with frequent
//! changes.

use chrono::{DateTime, LocalResult, Offset, TimeZone};
use chrono_tz::{GapInfo, Tz};

use super::DAY;

/// The longest distance between two offset samples that are taken as one unbroken offset.
pub(super) const STEP: i64 = 3 * DAY;

/// Which end of an open range a local time is: it decides an ambiguous local time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Edge {
    /// An opening: an ambiguous time takes its earliest instant.
    Start,
    /// A closing: an ambiguous time takes its latest instant.
    End,
}

/// The UTC offset (seconds east of UTC) of `tz` at the UTC instant `utc` (Unix seconds).
pub(super) fn offset_at(tz: Tz, utc: i64) -> i64 {
    match DateTime::from_timestamp(utc, 0) {
        Some(t) => i64::from(
            tz.offset_from_utc_datetime(&t.naive_utc())
                .fix()
                .local_minus_utc(),
        ),
        None => 0,
    }
}

/// The UTC instant of the local wall-clock time `local` (seconds since 1970-01-01T00:00 local),
/// by chrono-tz: an ambiguous time (clocks going back) takes its earliest instant for a
/// [`Edge::Start`] and its latest for an [`Edge::End`]; a time that does not exist (clocks going
/// forward) takes the first instant after the gap, which is the moment the clocks jump.
pub(super) fn exact(tz: Tz, local: i64, edge: Edge) -> i64 {
    let Some(naive) = DateTime::from_timestamp(local, 0).map(|t| t.naive_utc()) else {
        return local;
    };
    let utc_of = |off: <Tz as TimeZone>::Offset| local - i64::from(off.fix().local_minus_utc());
    match tz.offset_from_local_datetime(&naive) {
        LocalResult::Single(off) => utc_of(off),
        LocalResult::Ambiguous(a, b) => {
            let (a, b) = (utc_of(a), utc_of(b));
            match edge {
                Edge::Start => a.min(b),
                Edge::End => a.max(b),
            }
        }
        LocalResult::None => GapInfo::new(&naive, &tz)
            .and_then(|gap| gap.end)
            .map(|after| after.timestamp())
            // chrono-tz knows no end of the gap only at the edges of its data.
            .unwrap_or_else(|| local - offset_at(tz, local)),
    }
}

/// A time zone with a window of UTC instants known to share one offset.
#[derive(Clone, Copy, Debug)]
pub(super) struct Zone {
    tz: Tz,
    /// Invariant when `valid`: the offset is `off` at every instant of `lo..=hi`.
    off: i64,
    lo: i64,
    hi: i64,
    valid: bool,
}

impl Zone {
    pub(super) fn new(tz: Tz) -> Self {
        Zone {
            tz,
            off: 0,
            lo: 0,
            hi: 0,
            valid: false,
        }
    }

    fn reset(&mut self, at: i64, off: i64) {
        self.lo = at;
        self.hi = at;
        self.off = off;
        self.valid = off.abs() < DAY;
    }

    /// The offset in force at every instant of `lo..=hi`, if it is a single one; `None` when
    /// the offset changes in or near that span.
    pub(super) fn uniform(&mut self, lo: i64, hi: i64) -> Option<i64> {
        if self.valid && self.lo <= lo && hi <= self.hi {
            return Some(self.off);
        }
        if !self.valid || lo > self.hi.saturating_add(STEP) || hi < self.lo.saturating_sub(STEP) {
            self.reset(lo, offset_at(self.tz, lo));
            if !self.valid {
                return None;
            }
        }
        // Grow the window a whole step at a time, so that walking forward day by day costs one
        // sample every three days.
        while lo < self.lo {
            let t = self.lo - STEP;
            let off = offset_at(self.tz, t);
            if off != self.off {
                self.reset(t, off);
                return None;
            }
            self.lo = t;
        }
        while self.hi < hi {
            let t = self.hi + STEP;
            let off = offset_at(self.tz, t);
            if off != self.off {
                self.reset(t, off);
                return None;
            }
            self.hi = t;
        }
        Some(self.off)
    }

    /// The offset at the UTC instant `utc`.
    pub(super) fn offset(&mut self, utc: i64) -> i64 {
        self.uniform(utc, utc)
            .unwrap_or_else(|| offset_at(self.tz, utc))
    }

    /// The UTC instant of a local time, with the rules of [`exact`].
    pub(super) fn utc(&mut self, local: i64, edge: Edge) -> i64 {
        // With one offset over a day either side, the local time has exactly one instant:
        // every other offset (under a day) would land in the window and have to be the same.
        match self.uniform(local - DAY, local + DAY) {
            Some(off) => local - off,
            None => exact(self.tz, local, edge),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> i64 {
        chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M")
            .unwrap()
            .and_utc()
            .timestamp()
    }

    /// The window agrees with chrono-tz everywhere, walking forward as the walker does (with
    /// steps back of a day, like a walk that starts the day before).
    #[test]
    fn window_matches_chrono_tz() {
        let zones = [
            "Europe/Amsterdam",
            "America/New_York",
            "America/Recife",
            "Asia/Gaza",
            "Africa/Casablanca",
            "Australia/Lord_Howe",
            "Pacific/Apia",
            "America/Havana",
            "America/Santiago",
            "Asia/Beirut",
            "UTC",
        ];
        for name in zones {
            let tz: Tz = name.parse().unwrap();
            for (from, to) in [
                ("1999-06-01 00:00", "2001-06-01 00:00"),
                ("2010-06-01 00:00", "2012-06-01 00:00"),
                ("2024-01-01 00:00", "2027-01-01 00:00"),
                ("2040-01-01 00:00", "2041-01-01 00:00"),
            ] {
                let mut zone = Zone::new(tz);
                let mut local = ts(from);
                let end = ts(to);
                let mut n = 0u64;
                while local < end {
                    for edge in [Edge::Start, Edge::End] {
                        assert_eq!(
                            zone.utc(local, edge),
                            exact(tz, local, edge),
                            "{name} local {local} {edge:?}"
                        );
                    }
                    let utc = local - 7 * 3600;
                    assert_eq!(zone.offset(utc), offset_at(tz, utc), "{name} utc {utc}");
                    // Mostly forward by 30 minutes, now and then back a day.
                    n += 1;
                    if n == 97 {
                        n = 0;
                        local -= DAY;
                    } else {
                        local += 1800;
                    }
                }
            }
        }
    }

    #[test]
    fn gaps_and_overlaps() {
        let ams: Tz = "Europe/Amsterdam".parse().unwrap();
        // 2026-03-29 02:30 does not exist: the clocks jump at 01:00 UTC.
        let gap = ts("2026-03-29 02:30");
        assert_eq!(exact(ams, gap, Edge::Start), ts("2026-03-29 01:00"));
        assert_eq!(exact(ams, gap, Edge::End), ts("2026-03-29 01:00"));
        // 2026-10-25 02:30 happens twice: 00:30 and 01:30 UTC.
        let twice = ts("2026-10-25 02:30");
        assert_eq!(exact(ams, twice, Edge::Start), ts("2026-10-25 00:30"));
        assert_eq!(exact(ams, twice, Edge::End), ts("2026-10-25 01:30"));
    }
}
