//! Service clocks, derived from an instance's history.
//!
//! A clock (respond or resolve) is a pure function of the history, the definition and the
//! time: nothing about it is stored, so it cannot drift from the audit trail, and a change of
//! priority or calendar re-reads the same history.
//!
//! - A clock **starts** when the instance is created, or, if some stage `starts` it, when the
//!   instance first enters such a stage.
//! - It **runs** while the instance is in a stage that neither `pauses` it nor `stops` it and is
//!   not final; in a pausing stage it is **paused**.
//! - Entering a stage that `stops` it, or a final stage, stops it for good: it is then **met**
//!   if its business time stayed within the target, **breached** if not. (A reopened ticket is
//!   not measured again by the same clock.)
//! - The **target** is the one the instance's *current* priority gives, on that target's
//!   calendar. When priority changes, the elapsed time is measured again over the same running
//!   intervals on the new target's calendar, and the due instant follows: the clock is never
//!   reset, pauses are kept.
//! - A target in days or weeks is converted to business time once, from the clock's start
//!   (`3d` from a Monday 10:00 on office hours is the business time until Thursday 10:00).
//! - Each escalation step on the clock falls at a point of business time: its percentage of the
//!   target (rounded up to the second), or its duration from the clock's start. A clock shows
//!   which points it has reached and when it will reach the others; firing them is the
//!   scheduler's work.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::catalog::Definition;
use super::timers::TimerState;
use super::types::{CarriedClock, Event};
use crate::calendar::BusinessCalendar;
use crate::model::{CalendarRef, ClockKind, PriorityId, Stage, StageId, Threshold};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClockState {
    /// The stage that starts it has not been reached.
    NotStarted,
    Running,
    Paused,
    /// Stopped within its target.
    Met,
    /// Past its target (running, paused or stopped).
    Breached,
}

/// One clock of one instance, at one instant.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Clock {
    pub clock: ClockKind,
    /// The target as written (`4h`, `3d`).
    pub target: String,
    /// The target in business seconds on its calendar, from the clock's start.
    pub target_seconds: i64,
    pub elapsed_seconds: i64,
    /// `target_seconds - elapsed_seconds`, negative once breached.
    pub remaining_seconds: i64,
    /// Elapsed as a share of the target, in percent.
    pub percent: f64,
    pub state: ClockState,
    pub started_at: Option<DateTime<Utc>>,
    pub stopped_at: Option<DateTime<Utc>>,
    /// When it reaches its target, if it is running.
    pub due_at: Option<DateTime<Utc>>,
    /// The escalation steps the process defines on this clock, in order.
    pub escalations: Vec<EscalationPoint>,
}

/// Where one escalation step falls on a clock.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EscalationPoint {
    /// The threshold as written: `75%` or `2h`.
    pub threshold: String,
    /// The business time on the clock at which the step is due.
    pub at_seconds: i64,
    /// Whether the clock has reached it.
    pub reached: bool,
    /// When the clock will reach it, if it is running and has not yet.
    pub due_at: Option<DateTime<Utc>>,
}

/// What the history says about one clock: when it ran, and whether it stopped. Built one
/// stage entry at a time ([`ClockTimeline::enter`]), so a timeline kept from an earlier version
/// of an instance takes a change's events without the history being read again.
#[derive(Clone, Debug, Default)]
pub struct ClockTimeline {
    started_at: Option<DateTime<Utc>>,
    /// Closed and open running intervals; only the last can be open.
    running: Vec<(DateTime<Utc>, Option<DateTime<Utc>>)>,
    paused: bool,
    stopped_at: Option<DateTime<Utc>>,
    /// Each pause so far: the stage that paused the clock, when it entered it, and when the
    /// clock ran again (or stopped, or moved on to another pausing stage); the last is open
    /// while the clock is paused. Only read to explain a clock, never to measure it.
    pauses: Vec<Pause>,
    /// What has been measured of it on one calendar, kept for the next measure.
    measures: Measures,
    /// Business seconds it ran before the ticket moved to the version it runs on, as measured
    /// there (a migration that keeps the clock's time), and when it moved: a point the clock
    /// had passed by then is placed at that instant.
    carried: Option<(i64, DateTime<Utc>)>,
}

/// One pause of a clock: the stage that paused it, from when until when (`None`: still
/// paused).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pause {
    pub stage: StageId,
    pub from: DateTime<Utc>,
    pub until: Option<DateTime<Utc>>,
}

/// Business time on one calendar: measuring a long timeline again for every change would cost
/// a calendar walk per pause, so what was measured is kept and only new intervals are walked.
#[derive(Clone, Debug, Default)]
struct Measures {
    calendar: Option<CalendarRef>,
    /// Business seconds the clock had run by the end of each closed interval, in order.
    ends: Vec<i64>,
    /// The target converted to business seconds from the start.
    target: Option<(crate::model::Duration, i64)>,
}

impl ClockTimeline {
    /// The timeline of a clock a migration at `at` carries over: started (and stopped) when it
    /// was, with the time it ran counted as the migration says. The stage the ticket is in
    /// now is entered next, as after any event.
    pub fn carried(c: &CarriedClock, at: DateTime<Utc>) -> Self {
        ClockTimeline {
            started_at: Some(c.started_at),
            running: c.running.iter().map(|(a, b)| (*a, Some(*b))).collect(),
            stopped_at: c.stopped_at,
            carried: (c.elapsed > 0 || c.running.is_empty()).then_some((c.elapsed, at)),
            ..ClockTimeline::default()
        }
    }

    /// The instance enters `stage` at `at` (`first`: it is created there): start, pause, resume
    /// or stop the clock. `has_start_stage`: some stage of the process `starts` the clock.
    /// Returns whether the timeline changed: moving between two stages the clock runs in
    /// leaves its running interval as it is (business time is additive, so one interval
    /// measures as the two would).
    pub fn enter(
        &mut self,
        clock: ClockKind,
        (id, stage): (StageId, &Stage),
        has_start_stage: bool,
        at: DateTime<Utc>,
        first: bool,
    ) -> bool {
        let changed = self.enter_stage(clock, stage, has_start_stage, at, first);
        self.note_pause(clock, id, stage, at);
        changed
    }

    /// Keep the pauses in step with the stage entered (after the timeline took it): a pause
    /// ends when the clock runs again, stops, or another pausing stage holds it; one begins
    /// when a pausing stage is entered.
    fn note_pause(&mut self, clock: ClockKind, id: StageId, stage: &Stage, at: DateTime<Utc>) {
        let open = self.pauses.last_mut().filter(|p| p.until.is_none());
        let pausing = self.paused && stage.pauses.has(clock);
        match open {
            Some(p) if p.stage == id && pausing => return,
            Some(p) => p.until = Some(at),
            None => {}
        }
        if pausing {
            self.pauses.push(Pause {
                stage: id,
                from: at,
                until: None,
            });
        }
    }

    /// The pauses so far, in order.
    pub fn pauses(&self) -> &[Pause] {
        &self.pauses
    }

    fn enter_stage(
        &mut self,
        clock: ClockKind,
        stage: &Stage,
        has_start_stage: bool,
        at: DateTime<Utc>,
        first: bool,
    ) -> bool {
        if self.stopped_at.is_some() {
            return false;
        }
        let mut changed = false;
        if self.started_at.is_none() {
            let starts = if has_start_stage {
                stage.starts.has(clock)
            } else {
                first
            };
            if !starts {
                return false;
            }
            self.started_at = Some(at);
            changed = true;
        }
        let open = self.running.last_mut().and_then(|(_, end)| match end {
            None => Some(end),
            Some(_) => None,
        });
        if stage.stops.has(clock) || stage.is_final {
            if let Some(end) = open {
                *end = Some(at);
            }
            self.stopped_at = Some(at);
            self.paused = false;
            true
        } else if stage.pauses.has(clock) {
            let running = open.is_some();
            if let Some(end) = open {
                *end = Some(at);
            }
            self.paused = true;
            changed || running
        } else if open.is_none() {
            self.paused = false;
            self.running.push((at, None));
            true
        } else {
            changed
        }
    }

    /// Measure the closed intervals not yet measured on `calendar` (all of them, when the
    /// calendar is another than last time).
    fn measure_on(&mut self, calendar: CalendarRef, cal: &BusinessCalendar<'_>) {
        let m = &mut self.measures;
        if m.calendar != Some(calendar) {
            *m = Measures {
                calendar: Some(calendar),
                ..Measures::default()
            };
        }
        let carried = self.carried.map_or(0, |(secs, _)| secs);
        let closed = self.running.iter().filter_map(|(a, b)| Some((*a, (*b)?)));
        for (start, end) in closed.skip(m.ends.len()) {
            let before = m.ends.last().copied().unwrap_or(carried);
            m.ends.push(before.saturating_add(cal.elapsed(start, end)));
        }
    }
}

/// One clock of an instance as its timeline and current priority give it: its calendar and
/// its target, its closed intervals measured.
struct Measured<'a, 't> {
    clock: ClockKind,
    t: &'t ClockTimeline,
    cal: BusinessCalendar<'a>,
    duration: crate::model::Duration,
    /// The target in business seconds from the start (0 while not started).
    target_seconds: i64,
}

fn measure<'a, 't>(
    def: &'a Definition,
    clock: ClockKind,
    t: &'t mut ClockTimeline,
    priority: Option<PriorityId>,
    service: Option<u32>,
) -> Option<Measured<'a, 't>> {
    // The ticket's service's target for its priority, else the process's own.
    let target = def.model().target(priority, service)?;
    let duration = target.of(clock)?;
    let cal = BusinessCalendar::from_ref(&def.project.calendars, target.calendar)?;
    t.measure_on(target.calendar, &cal);
    let target_seconds = match (t.started_at, t.measures.target) {
        (None, _) => 0,
        (Some(_), Some((d, secs))) if d == duration => secs,
        (Some(started), _) => {
            let secs = cal.seconds_in(started, &duration).unwrap_or(i64::MAX);
            t.measures.target = Some((duration, secs));
            secs
        }
    };
    Some(Measured {
        clock,
        t,
        cal,
        duration,
        target_seconds,
    })
}

impl Measured<'_, '_> {
    fn running(&self) -> bool {
        self.t.stopped_at.is_none()
            && !self.t.paused
            && self.t.running.last().is_some_and(|(_, end)| end.is_none())
    }

    /// Business seconds run by the end of the closed intervals.
    fn closed_seconds(&self) -> i64 {
        let carried = self.t.carried.map_or(0, |(secs, _)| secs);
        self.t.measures.ends.last().copied().unwrap_or(carried)
    }

    /// Business seconds run by `now`.
    fn elapsed_at(&self, now: DateTime<Utc>) -> i64 {
        let open = match self.t.running.last() {
            Some((start, None)) => self.cal.elapsed(*start, now.max(*start)),
            _ => 0,
        };
        self.closed_seconds().saturating_add(open)
    }

    /// The escalation steps of this clock, in order: each threshold and the business time on
    /// the clock at which it falls (none before the clock starts).
    fn steps<'d>(&'d self, def: &'d Definition) -> impl Iterator<Item = (Threshold, i64)> + 'd {
        let started = self.t.started_at;
        def.model()
            .escalations
            .iter()
            .filter(move |e| e.clock == self.clock && started.is_some())
            .flat_map(|e| &e.steps)
            .map(move |step| match step.threshold {
                // Rounded up: a step is not due before its share of the target has passed.
                Threshold::Percent(pc) => {
                    let share = i128::from(self.target_seconds) * i128::from(pc);
                    let at = share.div_euclid(100) + i128::from(share.rem_euclid(100) != 0);
                    (step.threshold, i64::try_from(at).unwrap_or(i64::MAX))
                }
                Threshold::After(d) => (
                    step.threshold,
                    started
                        .and_then(|started| self.cal.seconds_in(started, &d))
                        .unwrap_or(i64::MAX),
                ),
            })
    }

    /// The instant at which the clock has run `mark` business seconds: within a running
    /// interval of the past, or ahead in the current one; `None` if the clock is paused or
    /// stopped short of it. The closed intervals are measured already, so a mark costs one
    /// lookup in its interval.
    fn instant_at(&self, mark: i64) -> Option<DateTime<Utc>> {
        // A point passed before the ticket's migration: at the migration, the first instant
        // the version it runs on knew of it.
        let carried = self.t.carried.unwrap_or((0, DateTime::<Utc>::MIN_UTC));
        if carried.0 > 0 && mark <= carried.0 {
            return Some(carried.1);
        }
        let ends = &self.t.measures.ends;
        // The first interval that reaches the mark (a closed one whose measure does, else the
        // open one), and the business time before it.
        let k = ends.partition_point(|&end| end < mark);
        let (start, end) = self.t.running.get(k)?;
        if k == ends.len() && end.is_some() {
            return None;
        }
        let done = k.checked_sub(1).map_or(carried.0, |j| ends[j]);
        let left = u64::try_from(mark - done).ok()?;
        self.cal.add_seconds(*start, left)
    }
}

/// Where a live clock's due points fall, from the history alone: the instant each escalation
/// step and the target were or will be reached, where that can be known (a paused clock has no
/// instant for the points it has not reached). The scheduler's timers come from this.
#[derive(Clone, Debug, PartialEq)]
pub struct Crossings {
    pub clock: ClockKind,
    /// When the clock started: it identifies the clock's one cycle.
    pub started_at: DateTime<Utc>,
    /// Running now (not paused, not stopped).
    pub running: bool,
    /// Per escalation step of the clock, in order: the threshold, and its instant.
    pub steps: Vec<(Threshold, Option<DateTime<Utc>>)>,
    /// When it reaches (or reached) its target.
    pub breach: Option<DateTime<Utc>>,
}

/// The crossings of a clock from its timeline and the current priority; `None` unless it is
/// started and not stopped (nothing on a stopped clock falls due any more).
pub fn crossings(
    def: &Definition,
    clock: ClockKind,
    t: &mut ClockTimeline,
    priority: Option<PriorityId>,
    service: Option<u32>,
) -> Option<Crossings> {
    if t.stopped_at.is_some() {
        return None;
    }
    let m = measure(def, clock, t, priority, service)?;
    let started_at = m.t.started_at?;
    // The steps, then the target, each placed where the clock reaches it; a mark equal to the
    // one before it (a step at 100%, then the target) takes that one's instant.
    let mut last: Option<(i64, Option<DateTime<Utc>>)> = None;
    let mut place = |mark: i64| {
        let at = match last {
            Some((before, at)) if before == mark => at,
            _ => m.instant_at(mark),
        };
        last = Some((mark, at));
        at
    };
    let steps = m
        .steps(def)
        .map(|(threshold, mark)| (threshold, place(mark)))
        .collect();
    let breach = place(m.target_seconds);
    Some(Crossings {
        clock,
        started_at,
        running: m.running(),
        steps,
        breach,
    })
}

/// The instance's clocks at `now` (those its current priority has a target for).
pub fn clocks(def: &Definition, events: &[Event], now: DateTime<Utc>) -> Vec<Clock> {
    explained(def, events, now)
        .into_iter()
        .map(|basis| basis.clock)
        .collect()
}

/// Why a clock reads as it does: the target that applies and where it comes from (the
/// ticket's priority, and its service when the service agrees a target of its own), the
/// calendar it runs on, and its pauses.
#[derive(Clone, Debug, PartialEq)]
pub struct ClockBasis {
    pub clock: Clock,
    pub priority: PriorityId,
    /// The ticket's service (its value index), when the target is the service's.
    pub service: Option<u32>,
    pub calendar: CalendarRef,
    pub pauses: Vec<PauseSpent>,
}

/// A pause, and the time it held the clock: wall-clock, and business time on the clock's
/// calendar (what the clock would have run), up to `now` for one still open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PauseSpent {
    pub pause: Pause,
    pub seconds: i64,
    pub business_seconds: i64,
}

/// The instance's clocks at `now`, each with why it reads so (see [`ClockBasis`]).
pub fn explained(def: &Definition, events: &[Event], now: DateTime<Utc>) -> Vec<ClockBasis> {
    let mut state = TimerState::of(def, events);
    let priority = state.priority();
    let service = state.service(def);
    let mut out = Vec::new();
    let [respond, resolve] = state.timelines_mut();
    for (clock, t) in [(ClockKind::Respond, respond), (ClockKind::Resolve, resolve)] {
        let Some(m) = measure(def, clock, t, priority, service) else {
            continue;
        };
        // `measure` found a target, so there is a priority and a source of the target.
        let (Some(level), Some((target, by_service))) =
            (priority, def.model().target_source(priority, service))
        else {
            continue;
        };
        let pauses =
            m.t.pauses
                .iter()
                .map(|pause| {
                    let until = pause.until.unwrap_or(now).max(pause.from);
                    PauseSpent {
                        pause: *pause,
                        seconds: (until - pause.from).num_seconds(),
                        business_seconds: m.cal.elapsed(pause.from, until),
                    }
                })
                .collect();
        out.push(ClockBasis {
            clock: reading(def, &m, now),
            priority: level,
            service: service.filter(|_| by_service),
            calendar: target.calendar,
            pauses,
        });
    }
    out
}

/// A measured clock as it reads at `now`.
fn reading(def: &Definition, m: &Measured<'_, '_>, now: DateTime<Utc>) -> Clock {
    let clock = m.clock;
    let Some(started) = m.t.started_at else {
        return Clock {
            clock,
            target: m.duration.to_string(),
            target_seconds: 0,
            elapsed_seconds: 0,
            remaining_seconds: 0,
            percent: 0.0,
            state: ClockState::NotStarted,
            started_at: None,
            stopped_at: None,
            due_at: None,
            escalations: Vec::new(),
        };
    };
    let target_seconds = m.target_seconds;
    let cal = &m.cal;
    let elapsed = m.elapsed_at(now);
    let remaining = target_seconds.saturating_sub(elapsed);
    let running = m.running();
    let state = match m.t.stopped_at {
        // A clock stopped exactly at its target met it; a live one is breached at 100%.
        Some(_) if elapsed <= target_seconds => ClockState::Met,
        Some(_) => ClockState::Breached,
        None if elapsed >= target_seconds => ClockState::Breached,
        None if running => ClockState::Running,
        None => ClockState::Paused,
    };
    let due_at = if running {
        u64::try_from(remaining)
            .ok()
            .and_then(|r| cal.add_seconds(now, r))
    } else {
        None
    };
    let escalations = m
        .steps(def)
        .map(|(threshold, at_seconds)| {
            let reached = elapsed >= at_seconds;
            let due_at = if running && !reached {
                u64::try_from(at_seconds - elapsed)
                    .ok()
                    .and_then(|r| cal.add_seconds(now, r))
            } else {
                None
            };
            EscalationPoint {
                threshold: threshold.to_string(),
                at_seconds,
                reached,
                due_at,
            }
        })
        .collect();
    Clock {
        clock,
        target: m.duration.to_string(),
        target_seconds,
        elapsed_seconds: elapsed,
        remaining_seconds: remaining,
        percent: if target_seconds > 0 {
            (elapsed as f64 / target_seconds as f64 * 1000.0).round() / 10.0
        } else {
            0.0
        },
        state,
        started_at: Some(started),
        stopped_at: m.t.stopped_at,
        due_at,
        escalations,
    }
}

/// What the instance's clocks carry over a migration at `now` (see
/// [`super::types::Migration`]), each as `modes` says (respond, then resolve): a clock that
/// restarts, or has not started, carries nothing.
pub fn carry(
    def: &Definition,
    events: &[Event],
    now: DateTime<Utc>,
    modes: [super::types::ClockMode; 2],
) -> Vec<CarriedClock> {
    use super::types::{ClockMode, EventKind};
    let epoch = super::types::current_epoch(events);
    let mut state = TimerState::of(def, events);
    let priority = state.priority();
    let service = state.service(def);
    let [respond, resolve] = state.timelines_mut();
    let mut carried = Vec::new();
    for ((clock, t), mode) in [(ClockKind::Respond, respond), (ClockKind::Resolve, resolve)]
        .into_iter()
        .zip(modes)
    {
        let Some(started_at) = t.started_at else {
            continue;
        };
        if mode == ClockMode::Restart {
            continue;
        }
        // The steps and breach recorded on it, under this version and any it was migrated
        // from before.
        let mut fired = Vec::new();
        let mut breached = false;
        for e in epoch {
            match &e.kind {
                EventKind::Migrated(m) => {
                    if let Some(c) = m.clocks.iter().find(|c| c.clock == clock) {
                        fired.extend(c.fired.iter().cloned());
                        breached |= c.breached;
                    }
                }
                EventKind::Escalated {
                    clock: c,
                    threshold,
                    ..
                } if *c == clock => fired.push(threshold.clone()),
                EventKind::Breached { clock: c } if *c == clock => breached = true,
                _ => {}
            }
        }
        fired.dedup();
        let intervals: Vec<(DateTime<Utc>, DateTime<Utc>)> = t
            .running
            .iter()
            .map(|(a, b)| (*a, b.unwrap_or(now).max(*a)))
            .collect();
        // Time kept as measured here needs a target to be measured on; without one, the
        // intervals are carried to be measured under the new version.
        let measured = match mode {
            ClockMode::Keep => measure(def, clock, t, priority, service).map(|m| m.elapsed_at(now)),
            _ => None,
        };
        let (mode, elapsed, running) = match measured {
            Some(elapsed) => (ClockMode::Keep, elapsed, Vec::new()),
            None => (
                ClockMode::Recompute,
                t.carried.map_or(0, |(secs, _)| secs),
                intervals,
            ),
        };
        carried.push(CarriedClock {
            clock,
            mode,
            started_at,
            stopped_at: t.stopped_at,
            elapsed,
            running,
            fired,
            breached,
        });
    }
    carried
}
