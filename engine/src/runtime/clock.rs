//! The engine's source of time. Production uses the system clock; tests and simulations use a
//! [`ManualClock`] and move time forward by hand, so nothing ever sleeps to test a deadline.
//!
//! The scheduler also waits on the clock ([`Clock::sleep_until`]): on the system clock that is
//! a timer of the runtime; on a manual clock it is woken by [`ManualClock::advance`] and
//! [`ManualClock::set`], so a test moves past a deadline without any real waiting.

use std::future::Future;
use std::pin::Pin;

use chrono::{DateTime, TimeDelta, Timelike, Utc};
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

/// The longest single runtime timer; a longer wait is taken in steps (tokio's timer wheel
/// covers about two years).
const LONGEST_SLEEP: std::time::Duration = std::time::Duration::from_secs(86_400);

impl Clock for SystemClock {
    /// Whole microseconds: what the databases keep, so an instance reads back exactly as it
    /// was answered when it was written.
    fn now(&self) -> DateTime<Utc> {
        let now = Utc::now();
        // Truncating the nanoseconds in place leaves the date alone; subtracting a delta
        // would work the calendar date out again, on every action.
        now.with_nanosecond(now.nanosecond() / 1_000 * 1_000)
            .unwrap_or(now)
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
