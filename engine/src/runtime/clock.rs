//! The engine's source of time. Production uses the system clock; tests and simulations use a
//! [`ManualClock`] and move time forward by hand, so nothing ever sleeps to test a deadline.
//!
//! The scheduler also waits on the clock ([`Clock::sleep_until`]): on the system clock that is
//! a timer of the runtime; on a manual clock it is woken by [`ManualClock::advance`] and
//! [`ManualClock::set`], so a test moves past a deadline without any real waiting.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{DateTime, NaiveDate, NaiveTime, TimeDelta, Timelike, Utc};
use tokio::sync::watch;

/// A future the clock resolves.
pub type Sleep<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;

    /// Resolve once `now()` has reached `at` (at once if it has).
    fn sleep_until(&self, at: DateTime<Utc>) -> Sleep<'_>;
}

/// Wall-clock time.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

/// Days from 1 January of year 1 (chrono's count) to the Unix epoch.
const UNIX_EPOCH_DAYS_FROM_CE: i64 = 719_163;

thread_local! {
    /// The day the thread last read the clock on (days since the Unix epoch) and its date.
    static TODAY: Cell<(u64, NaiveDate)> = const { Cell::new((u64::MAX, NaiveDate::MIN)) };
}

/// The instant `secs` and `micros` after the Unix epoch. Working a date out from a day number
/// is most of what a chrono conversion costs, and every action reads the clock, so each
/// thread keeps the date of the day it last read and works it out again only when the day
/// changes.
fn utc_from_unix(secs: u64, micros: u32) -> DateTime<Utc> {
    let (day, second) = (secs / 86_400, (secs % 86_400) as u32);
    let date = TODAY.with(|today| match today.get() {
        (d, date) if d == day => Some(date),
        _ => {
            let date = i64::try_from(day)
                .ok()
                .and_then(|d| i32::try_from(d + UNIX_EPOCH_DAYS_FROM_CE).ok())
                .and_then(NaiveDate::from_num_days_from_ce_opt)?;
            today.set((day, date));
            Some(date)
        }
    });
    let time = NaiveTime::from_num_seconds_from_midnight_opt(second, micros * 1_000);
    match date.zip(time) {
        Some((date, time)) => date.and_time(time).and_utc(),
        // Past the last date chrono can represent.
        None => DateTime::<Utc>::MAX_UTC,
    }
}

/// The longest single runtime timer; a longer wait is taken in steps (tokio's timer wheel
/// covers about two years).
const LONGEST_SLEEP: std::time::Duration = std::time::Duration::from_secs(86_400);

impl Clock for SystemClock {
    /// Whole microseconds: what the databases keep, so an instance reads back exactly as it
    /// was answered when it was written.
    fn now(&self) -> DateTime<Utc> {
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(since) => utc_from_unix(since.as_secs(), since.subsec_micros()),
            // A system clock set before 1970: chrono's own conversion, truncated.
            Err(_) => {
                let now = Utc::now();
                now.with_nanosecond(now.nanosecond() / 1_000 * 1_000)
                    .unwrap_or(now)
            }
        }
    }

    fn sleep_until(&self, at: DateTime<Utc>) -> Sleep<'_> {
        Box::pin(async move {
            loop {
                let Ok(left) = (at - Utc::now()).to_std() else {
                    return;
                };
                if left.is_zero() {
                    return;
                }
                tokio::time::sleep(left.min(LONGEST_SLEEP)).await;
            }
        })
    }
}

/// Virtual time that moves only when told to.
#[derive(Debug)]
pub struct ManualClock {
    now: watch::Sender<DateTime<Utc>>,
}

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        ManualClock {
            now: watch::Sender::new(start),
        }
    }

    /// Move time forward, waking whoever sleeps until a time now reached.
    pub fn advance(&self, by: TimeDelta) {
        self.now.send_modify(|now| *now += by);
    }

    pub fn set(&self, to: DateTime<Utc>) {
        self.now.send_replace(to);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.borrow()
    }

    fn sleep_until(&self, at: DateTime<Utc>) -> Sleep<'_> {
        let mut rx = self.now.subscribe();
        Box::pin(async move {
            // `wait_for` checks the current time first, then every change; the sender lives as
            // long as the clock, which outlives this borrow.
            let _ = rx.wait_for(|now| *now >= at).await;
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_from_the_epoch_agree_with_chrono_across_days() {
        // Back and forth over day, month, year and leap-day boundaries, so the kept date is
        // both reused and replaced.
        let starts = [0, 951_782_400, 1_709_164_800, 1_735_689_599, 4_102_444_799];
        for start in starts {
            for offset in [0, 1, 86_399, 86_400, 1, 172_801, 0] {
                let secs = start + offset;
                for micros in [0, 1, 999_999] {
                    let expected =
                        DateTime::from_timestamp(secs as i64, micros * 1_000).expect("in range");
                    assert_eq!(utc_from_unix(secs, micros), expected, "{secs}s {micros}us");
                }
            }
        }
    }

    #[test]
    fn system_time_is_whole_microseconds_and_current() {
        for _ in 0..20 {
            let before = Utc::now() - TimeDelta::microseconds(1);
            let now = SystemClock.now();
            let after = Utc::now();
            assert_eq!(now.timestamp_subsec_nanos() % 1_000, 0, "{now:?}");
            assert!(
                before <= now && now <= after,
                "{before:?} {now:?} {after:?}"
            );
        }
    }
}
