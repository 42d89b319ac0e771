//! A calendar's open intervals, walked once and kept, so that business time between two
//! instants and the instant some business seconds after another are binary searches instead of
//! walks.
//!
//! The walk (`walk.rs`) stays the definition of a calendar's open intervals: the index keeps
//! what it gives, [`BLOCK_DAYS`] local dates at a time, each block built the first time a
//! computation needs it and shared from then on by every computation on the calendar (every
//! instance, every thread). A block holds its intervals in time order with the open seconds
//! before each.
//!
//! The index answers only where its answer is the walk's: for dates it covers, and where every
//! block involved has open time. A block without any open time is where the walk's ten-year
//! horizon could apply, so there (and outside the covered dates) the caller walks instead.

use std::fmt;
use std::sync::OnceLock;

use super::walk::Walker;
use super::{Hours, Week, DAY};
use crate::model::Calendar;

/// Local dates per block: a computation over a few weeks touches one or two.
const BLOCK_DAYS: i64 = 128;
/// The local dates the index covers (days since 1970-01-01): 1900-01-01 to 2199-12-31.
const FIRST_DAY: i64 = -25_567;
const LAST_DAY: i64 = 84_005;
/// The blocks wholly within those dates (block `b` holds dates `b * BLOCK_DAYS..`).
const FIRST_BLOCK: i64 = (FIRST_DAY + BLOCK_DAYS - 1).div_euclid(BLOCK_DAYS);
const LAST_BLOCK: i64 = (LAST_DAY + 1).div_euclid(BLOCK_DAYS) - 1;

/// The blocks of one calendar built so far, and the summary of its week. Cloning a calendar
/// starts its clone on an empty index: the clone may be changed, and an index is only true of
/// the calendar it was built for.
#[derive(Default)]
pub struct CalendarIndex {
    /// A slot per block of the covered dates (allocated on first use), each filled the first
    /// time a computation needs it and read without a lock from then on: every instance on
    /// every thread reads the same few blocks, and a lock's or a shared count's cache line
    /// passed between cores at each read cost more than the read.
    blocks: OnceLock<Box<[OnceLock<Box<Block>>]>>,
    week: OnceLock<Week>,
}

impl Clone for CalendarIndex {
    fn clone(&self) -> Self {
        CalendarIndex::default()
    }
}

impl fmt::Debug for CalendarIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let blocks = self.blocks.get().map_or(0, |slots| {
            slots.iter().filter(|s| s.get().is_some()).count()
        });
        f.debug_struct("CalendarIndex")
            .field("blocks", &blocks)
            .finish()
    }
}

/// The open intervals of [`BLOCK_DAYS`] local dates, in time order.
struct Block {
    /// The local date of each interval.
    dates: Vec<i64>,
    starts: Vec<i64>,
    ends: Vec<i64>,
    /// Open seconds of the block before each interval, then the block's total.
    before: Vec<i64>,
}

impl Block {
    fn build(hours: &Hours<'_>, block: i64) -> Block {
        let first = block * BLOCK_DAYS;
        // From two dates earlier, so that the first dates' intervals are trimmed against the
        // ones before them as in any longer walk.
        let mut walk = Walker::from_date(hours, hours.zone.get(), first - 2);
        walk.until = first + BLOCK_DAYS - 1;
        let (mut dates, mut starts, mut ends) = (Vec::new(), Vec::new(), Vec::new());
        let mut before = vec![0];
        while let Some(iv) = walk.next() {
            if iv.date < first {
                continue;
            }
            dates.push(iv.date);
            starts.push(iv.start);
            ends.push(iv.end);
            before.push(before[before.len() - 1] + iv.len());
        }
        Block {
            dates,
            starts,
            ends,
            before,
        }
    }

    fn total(&self) -> i64 {
        self.before[self.before.len() - 1]
    }

    /// Open seconds of the block before the instant `t`.
    fn open_before(&self, t: i64) -> i64 {
        match self.starts.partition_point(|s| *s <= t) {
            0 => 0,
            n => {
                let k = n - 1;
                self.before[k] + (t - self.starts[k]).clamp(0, self.ends[k] - self.starts[k])
            }
        }
    }

    /// The earliest instant by which `goal` (`0 < goal <= total`) open seconds of the block
    /// have passed.
    fn instant_of(&self, goal: i64) -> i64 {
        let k = self.before[1..].partition_point(|c| *c < goal);
        self.starts[k] + (goal - self.before[k])
    }
}

impl CalendarIndex {
    /// The summary of `cal`'s week (`cal` is the calendar this index belongs to).
    pub(super) fn week(&self, cal: &Calendar) -> Week {
        *self.week.get_or_init(|| Week::of(cal))
    }

    /// Block `block` of the calendar `hours` is of, built if it is not yet; `None` outside the
    /// covered dates or when it has no open time.
    fn block(&self, hours: &Hours<'_>, block: i64) -> Option<&Block> {
        if !(FIRST_BLOCK..=LAST_BLOCK).contains(&block) {
            return None;
        }
        let slots = self.blocks.get_or_init(|| {
            (FIRST_BLOCK..=LAST_BLOCK)
                .map(|_| OnceLock::new())
                .collect()
        });
        let slot = slots.get(usize::try_from(block - FIRST_BLOCK).ok()?)?;
        let b = slot.get_or_init(|| Box::new(Block::build(hours, block)));
        (b.total() > 0).then_some(b)
    }

    /// The blocks whose intervals can lie within `from..to` (a local date's intervals lie
    /// within a day of its UTC midnight, offsets being under a day).
    fn blocks_around(from: i64, to: i64) -> std::ops::RangeInclusive<i64> {
        let first = (from.div_euclid(DAY) - 1).div_euclid(BLOCK_DAYS);
        let last = (to.div_euclid(DAY) + 1).div_euclid(BLOCK_DAYS);
        first..=last
    }

    /// Open seconds in `[from, to)` (`from < to`), if the index can tell.
    pub(super) fn elapsed(&self, hours: &Hours<'_>, from: i64, to: i64) -> Option<i64> {
        let mut total = 0;
        for b in Self::blocks_around(from, to) {
            let block = self.block(hours, b)?;
            total += block.open_before(to) - block.open_before(from);
        }
        Some(total)
    }

    /// The business day of `from` (or of the next opening) and the open time of that day
    /// before `from`, if the index can tell: the first interval that ends after `from` and is
    /// not empty gives both.
    pub(super) fn day_offset(&self, hours: &Hours<'_>, from: i64) -> Option<(i64, i64)> {
        let mut b = *Self::blocks_around(from, from).start();
        loop {
            let block = self.block(hours, b)?;
            let first = block.ends.partition_point(|e| *e <= from);
            let found = (first..block.ends.len()).find(|&k| block.ends[k] > block.starts[k]);
            if let Some(k) = found {
                let day = block.dates[k];
                let day_first = block.dates.partition_point(|d| *d < day);
                let before = block.before[k] - block.before[day_first];
                return Some((day, before + block.starts[k].max(from) - block.starts[k]));
            }
            b += 1;
        }
    }

    /// The instant `offset` open seconds into the local date `day`, or the date's closing if
    /// it has no more open time than that (`None` if it has no intervals at all), if the index
    /// can tell.
    pub(super) fn at_offset(
        &self,
        hours: &Hours<'_>,
        day: i64,
        offset: i64,
    ) -> Option<Option<i64>> {
        let block = self.block(hours, day.div_euclid(BLOCK_DAYS))?;
        let first = block.dates.partition_point(|d| *d < day);
        let last = block.dates.partition_point(|d| *d <= day);
        let (mut before, mut close) = (0, None);
        for k in first..last {
            let len = block.ends[k] - block.starts[k];
            if len > 0 && offset < before + len {
                return Some(Some(block.starts[k] + offset - before));
            }
            before += len;
            close = Some(block.ends[k]);
        }
        Some(close)
    }

    /// The earliest instant by which `secs` (> 0) open seconds have passed since `from`, if
    /// the index can tell (within the covered dates, every block on the way open sometime).
    pub(super) fn add_secs(&self, hours: &Hours<'_>, from: i64, secs: i64) -> Option<i64> {
        let mut rest = secs;
        let mut b = *Self::blocks_around(from, from).start();
        loop {
            let block = self.block(hours, b)?;
            let done = block.open_before(from);
            let left = block.total() - done;
            if rest <= left {
                return Some(block.instant_of(done + rest));
            }
            rest -= left;
            b += 1;
        }
    }
}
