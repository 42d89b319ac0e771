//! The scheduler: a task that fires due timers.
//!
//! It claims the instances with something due by now from the store (by the one wake-up row
//! each keeps, a batch at a time, each leased so nobody else takes it meanwhile; on PostgreSQL
//! `FOR UPDATE SKIP LOCKED`, so schedulers on several nodes share the work; on SQLite through
//! the store's one writer, so one scheduler per process), and has the engine fire each claimed
//! instance ([`Engine::fire_due`]): one point per transaction, decided again from the history
//! under the instance's version check, so a point fires exactly once whichever node gets there.
//!
//! Then it sleeps until the next timer is due, on the engine's [`Clock`] (so a test moving a
//! [`super::ManualClock`] wakes it without real waiting). It does not poll: it wakes when that
//! time comes, when this engine commits a timer earlier than the one it sleeps for, or when it
//! is stopped. Timers another node commits are not announced; on a shared store (PostgreSQL)
//! the scheduler therefore also looks again every `recheck` (2 s by default), which bounds how
//! late such a timer can fire.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;

use super::clock::Clock;
use super::engine::Engine;
use crate::store::Store;

/// How a scheduler works.
#[derive(Clone, Debug)]
pub struct SchedulerConfig {
    /// Timers claimed at a time.
    pub batch: u32,
    /// How long a claimed timer is left to this scheduler before another may take it (in the
    /// clock's time).
    pub lease: TimeDelta,
    /// Look for timers at least this often (in the clock's time), for timers other nodes add;
    /// `None` to wait only for this engine's own.
    pub recheck: Option<TimeDelta>,
    /// Instances fired at once.
    pub concurrency: usize,
    /// After a database error, try again this much later (in the clock's time).
    pub retry: TimeDelta,
}

impl SchedulerConfig {
    /// The defaults for a store: with `recheck` only if other nodes share it.
    pub fn for_store<S: Store>(store: &S) -> Self {
        SchedulerConfig {
            batch: 256,
            lease: TimeDelta::seconds(60),
            recheck: store.is_shared().then(|| TimeDelta::seconds(2)),
            concurrency: 8,
            retry: TimeDelta::seconds(1),
        }
    }
}

/// What a scheduler has done so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SchedulerStats {
    /// Times it woke from sleep (a due time came, a commit woke it, or a recheck).
    pub wakeups: u64,
    /// Wake-ups claimed (instances with something due).
    pub claimed: u64,
    /// Points fired (escalation steps, breaches, automatic transitions).
    pub fired: u64,
    /// Failed claims or firings (retried later).
    pub errors: u64,
}

#[derive(Default)]
struct Counters {
    wakeups: AtomicU64,
    claimed: AtomicU64,
    fired: AtomicU64,
    errors: AtomicU64,
}

/// How commits wake a sleeping scheduler: when a timer earlier than the one it sleeps for is
/// committed. While it is awake every commit with timers counts as earlier, so a timer
/// committed while it works is never missed (at worst it looks once more for nothing).
#[derive(Debug)]
pub(crate) struct Wakeup {
    notify: Notify,
    /// Microseconds; `i64::MAX` while awake or asleep with no timer.
    asleep_until: AtomicI64,
    /// Wake-ups requested so far.
    requested: AtomicU64,
}

impl Default for Wakeup {
    fn default() -> Self {
        Wakeup {
            notify: Notify::new(),
            asleep_until: AtomicI64::new(i64::MAX),
            requested: AtomicU64::new(0),
        }
    }
}

impl Wakeup {
    pub(crate) fn timers_committed(&self, earliest: DateTime<Utc>) {
        if earliest.timestamp_micros() < self.asleep_until.load(Ordering::SeqCst) {
            self.requested.fetch_add(1, Ordering::SeqCst);
            self.notify.notify_one();
        }
    }
}

/// Where the scheduler is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    Working,
    /// Asleep after finding nothing due at `checked_at`, until `until` (or a wake-up), having
    /// seen `seen` wake-up requests.
    Asleep {
        checked_at: DateTime<Utc>,
        until: Option<DateTime<Utc>>,
        seen: u64,
    },
    Stopped,
}

/// Starts schedulers.
pub struct Scheduler;

impl Scheduler {
    /// Start firing the engine's timers, with the defaults for its store.
    pub fn spawn<S: Store>(engine: Arc<Engine<S>>) -> SchedulerHandle {
        let config = SchedulerConfig::for_store(engine.store());
        Self::spawn_with(engine, config)
    }

    pub fn spawn_with<S: Store>(
        engine: Arc<Engine<S>>,
        config: SchedulerConfig,
    ) -> SchedulerHandle {
        let (stop_tx, stop_rx) = watch::channel(false);
        let (status_tx, status_rx) = watch::channel(Status::Working);
        let counters = Arc::new(Counters::default());
        let clock = engine.clock().clone();
        let wakeup = engine.wakeup().clone();
        let task = tokio::spawn(run(engine, config, counters.clone(), status_tx, stop_rx));
        SchedulerHandle {
            stop: stop_tx,
            status: status_rx,
            counters,
            clock,
            wakeup,
            task,
        }
    }
}

/// A running scheduler.
pub struct SchedulerHandle {
    stop: watch::Sender<bool>,
    status: watch::Receiver<Status>,
    counters: Arc<Counters>,
    clock: Arc<dyn Clock>,
    wakeup: Arc<Wakeup>,
    task: tokio::task::JoinHandle<()>,
}

impl SchedulerHandle {
    pub fn stats(&self) -> SchedulerStats {
        let c = &self.counters;
        SchedulerStats {
            wakeups: c.wakeups.load(Ordering::Relaxed),
            claimed: c.claimed.load(Ordering::Relaxed),
            fired: c.fired.load(Ordering::Relaxed),
            errors: c.errors.load(Ordering::Relaxed),
        }
    }

    /// Wait until the scheduler has fired everything due by the clock's current time that it
    /// knows of, and sleeps. For tests and simulations on a manual clock: move the clock,
    /// then wait for this.
    pub async fn settled(&self) {
        let mut status = self.status.clone();
        loop {
            let now = self.clock.now();
            let requested = self.wakeup.requested.load(Ordering::SeqCst);
            match *status.borrow_and_update() {
                Status::Asleep {
                    checked_at,
                    until,
                    seen,
                } if seen >= requested && (checked_at >= now || until.is_none_or(|u| u > now)) => {
                    return
                }
                Status::Stopped => return,
                _ => {}
            }
            if status.changed().await.is_err() {
                return;
            }
        }
    }

    /// Stop: the firing under way completes, nothing more is claimed.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

async fn run<S: Store>(
    engine: Arc<Engine<S>>,
    config: SchedulerConfig,
    counters: Arc<Counters>,
    status: watch::Sender<Status>,
    mut stop: watch::Receiver<bool>,
) {
    let clock = engine.clock().clone();
    let wakeup = engine.wakeup().clone();
    loop {
        if *stop.borrow() {
            break;
        }
        status.send_replace(Status::Working);
        wakeup.asleep_until.store(i64::MAX, Ordering::SeqCst);
        let seen = wakeup.requested.load(Ordering::SeqCst);
        let checked_at = clock.now();
        let ok = fire_due(&engine, &config, &counters, checked_at, &stop).await;
        let next = match (ok, engine.store().next_wakeup_at().await) {
            (true, Ok(next)) => next,
            _ => {
                counters.errors.fetch_add(1, Ordering::Relaxed);
                Some(clock.now() + config.retry)
            }
        };
        let now = clock.now();
        let until = match (next, config.recheck) {
            (Some(at), Some(r)) => Some(at.min(now + r)),
            (None, Some(r)) => Some(now + r),
            (next, None) => next,
        };
        if until.is_some_and(|u| u <= now) {
            // Due already (a lease ran out, or time moved on while firing).
            continue;
        }
        wakeup.asleep_until.store(
            until.map_or(i64::MAX, |u| u.timestamp_micros()),
            Ordering::SeqCst,
        );
        status.send_replace(Status::Asleep {
            checked_at,
            until,
            seen,
        });
        let sleep = async {
            match until {
                Some(at) => clock.sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = sleep => {}
            _ = wakeup.notify.notified() => {}
            _ = stop.changed() => {}
        }
        counters.wakeups.fetch_add(1, Ordering::Relaxed);
    }
    status.send_replace(Status::Stopped);
}

/// Fire every timer due by `now`, batch by batch; false if the store failed.
async fn fire_due<S: Store>(
    engine: &Arc<Engine<S>>,
    config: &SchedulerConfig,
    counters: &Counters,
    now: DateTime<Utc>,
    stop: &watch::Receiver<bool>,
) -> bool {
    loop {
        if *stop.borrow() {
            return true;
        }
        let claimed = match engine
            .store()
            .claim_wakeups(now, config.batch, now + config.lease)
            .await
        {
            Ok(claimed) => claimed,
            Err(_) => return false,
        };
        if claimed.is_empty() {
            return true;
        }
        counters
            .claimed
            .fetch_add(claimed.len() as u64, Ordering::Relaxed);
        // Instances in the order of their earliest due point; each one's points fire in order
        // within `Engine::fire_due`.
        let mut running = JoinSet::new();
        for id in claimed {
            while running.len() >= config.concurrency.max(1) {
                if let Some(done) = running.join_next().await {
                    count(counters, done);
                }
            }
            let engine = engine.clone();
            running.spawn(async move { engine.fire_due(id).await });
        }
        while let Some(done) = running.join_next().await {
            count(counters, done);
        }
    }
}

fn count(
    counters: &Counters,
    done: Result<Result<u32, super::EngineError>, tokio::task::JoinError>,
) {
    match done {
        Ok(Ok(n)) => {
            counters.fired.fetch_add(u64::from(n), Ordering::Relaxed);
        }
        _ => {
            counters.errors.fetch_add(1, Ordering::Relaxed);
        }
    }
}
