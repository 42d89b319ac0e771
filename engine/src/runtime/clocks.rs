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
use super::types::{Event, EventKind};
use crate::calendar::BusinessCalendar;
use crate::model::{ClockKind, PriorityId, StageId, Threshold};

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

/// What the history says about one clock: when it ran, and whether it stopped.
struct Timeline {
    started_at: Option<DateTime<Utc>>,
    /// Closed and open running intervals.
    running: Vec<(DateTime<Utc>, Option<DateTime<Utc>>)>,
    paused: bool,
    stopped_at: Option<DateTime<Utc>>,
}

fn timeline(
    def: &Definition,
    clock: ClockKind,
    events: &[Event],
) -> (Timeline, Option<PriorityId>) {
    let p = def.model();
    let has_start_stage = p.stages.iter().any(|s| s.starts.has(clock));
    let mut t = Timeline {
        started_at: None,
        running: Vec::new(),
        paused: false,
        stopped_at: None,
    };
    let mut priority = None;
    // Enter `stage` at `at`: start, pause, resume or stop the clock.
    let enter = |t: &mut Timeline, stage: StageId, at: DateTime<Utc>, first: bool| {
        if t.stopped_at.is_some() {
            return;
        }
        let s = &p.stages[stage.index()];
        if t.started_at.is_none() {
            let starts = if has_start_stage {
                s.starts.has(clock)
            } else {
                first
            };
            if !starts {
                return;
            }
            t.started_at = Some(at);
        }
        if let Some((_, end @ None)) = t.running.last_mut() {
            *end = Some(at);
        }
        if s.stops.has(clock) || s.is_final {
            t.stopped_at = Some(at);
            t.paused = false;
        } else if s.pauses.has(clock) {
            t.paused = true;
        } else {
            t.paused = false;
            t.running.push((at, None));
        }
    };
    for e in events {
        match &e.kind {
            EventKind::Created {
                stage,
                priority: p0,
                ..
            } => {
                priority = *p0;
                enter(&mut t, *stage, e.at, true);
            }
            EventKind::Transitioned { from, to, .. } if from != to => {
                enter(&mut t, *to, e.at, false)
            }
            EventKind::PriorityChanged { to, .. } => priority = *to,
            _ => {}
        }
    }
    (t, priority)
}

/// One clock of an instance as its history and current priority give it: its timeline, its
/// calendar and its target.
struct Measured<'a> {
    clock: ClockKind,
    t: Timeline,
    cal: BusinessCalendar<'a>,
    duration: crate::model::Duration,
    /// The target in business seconds from the start (0 while not started).
    target_seconds: i64,
}

fn measure<'a>(def: &'a Definition, clock: ClockKind, events: &[Event]) -> Option<Measured<'a>> {
    let p = def.model();
    let (t, priority) = timeline(def, clock, events);
    let target = priority
        .and_then(|pr| p.targets.get(pr.index()))
        .and_then(|t| t.as_ref())?;
    let duration = target.of(clock)?;
    let cal = BusinessCalendar::from_ref(&def.project.calendars, target.calendar)?;
    let target_seconds = match t.started_at {
        Some(started) => cal
            .add(started, &duration)
            .map(|end| cal.elapsed(started, end))
            .unwrap_or(i64::MAX),
        None => 0,
    };
    Some(Measured {
        clock,
        t,
        cal,
        duration,
        target_seconds,
    })
}

impl Measured<'_> {
    fn running(&self) -> bool {
        self.t.stopped_at.is_none()
            && !self.t.paused
            && self.t.running.last().is_some_and(|(_, end)| end.is_none())
    }

    /// The escalation steps of this clock: each threshold as written and the business time on
    /// the clock at which it falls.
    fn steps(&self, def: &Definition) -> Vec<(String, i64)> {
        let Some(started) = self.t.started_at else {
            return Vec::new();
        };
        def.model()
            .escalations
            .iter()
            .filter(|e| e.clock == self.clock)
            .flat_map(|e| &e.steps)
            .map(|step| match step.threshold {
                // Rounded up: a step is not due before its share of the target has passed.
                Threshold::Percent(pc) => {
                    let share = i128::from(self.target_seconds) * i128::from(pc);
                    let at = share.div_euclid(100) + i128::from(share.rem_euclid(100) != 0);
                    (format!("{pc}%"), i64::try_from(at).unwrap_or(i64::MAX))
                }
                Threshold::After(d) => (
                    d.to_string(),
                    self.cal
                        .add(started, &d)
                        .map(|end| self.cal.elapsed(started, end))
                        .unwrap_or(i64::MAX),
                ),
            })
            .collect()
    }

    /// For each of `marks` (business seconds on the clock), the instant at which the clock
    /// has run that much: within a running interval of the past, or ahead in the current one;
    /// `None` if the clock is paused or stopped short of it. Each closed interval is measured
    /// once, and the marks ahead of the current interval are found in one walk.
    fn instants_at(&self, marks: &[i64]) -> Vec<Option<DateTime<Utc>>> {
        let mut out = vec![None; marks.len()];
        let mut order: Vec<usize> = (0..marks.len()).collect();
        order.sort_by_key(|&i| marks[i]);
        // The marks not yet placed, ascending, and the business time before the interval.
        let mut rest = order.as_slice();
        let mut done = 0i64;
        for (start, end) in &self.t.running {
            if rest.is_empty() {
                break;
            }
            let len = end.map(|end| self.cal.elapsed(*start, end));
            let within = match len {
                None => rest.len(),
                Some(len) => rest.partition_point(|&i| marks[i] <= done.saturating_add(len)),
            };
            let (here, later) = rest.split_at(within);
            // A mark below zero falls nowhere (they sort first).
            let placed: Vec<(usize, u64)> = here
                .iter()
                .filter_map(|&i| Some((i, u64::try_from(marks[i] - done).ok()?)))
                .collect();
            let lefts: Vec<u64> = placed.iter().map(|(_, left)| *left).collect();
            for ((i, _), at) in placed.iter().zip(self.cal.add_seconds_each(*start, &lefts)) {
                out[*i] = at;
            }
            rest = later;
            done = done.saturating_add(len.unwrap_or(0));
        }
        out
    }
}

/// Where a clock's due points fall, from the history alone: the instant each escalation step
/// and the target were or will be reached, where that can be known (a paused clock has no
/// instant for the points it has not reached). The scheduler's timers come from this.
#[derive(Clone, Debug, PartialEq)]
pub struct Crossings {
    pub clock: ClockKind,
    /// When the clock started: it identifies the clock's one cycle.
    pub started_at: DateTime<Utc>,
    /// Stopped for good: nothing on it falls due any more.
    pub stopped: bool,
    /// Running now (not paused, not stopped).
    pub running: bool,
    /// Per escalation step of the clock, in order: the threshold as written, and its instant.
    pub steps: Vec<(String, Option<DateTime<Utc>>)>,
    /// When it reaches (or reached) its target.
    pub breach: Option<DateTime<Utc>>,
}

/// The crossings of the instance's started clocks.
pub fn crossings(def: &Definition, events: &[Event]) -> Vec<Crossings> {
    [ClockKind::Respond, ClockKind::Resolve]
        .into_iter()
        .filter_map(|clock| {
            let m = measure(def, clock, events)?;
            let started_at = m.t.started_at?;
            let steps = m.steps(def);
            // The steps and the target, placed in one pass over the clock's intervals.
            let mut marks: Vec<i64> = steps.iter().map(|(_, at)| *at).collect();
            marks.push(m.target_seconds);
            let mut instants = m.instants_at(&marks);
            let breach = instants.pop().flatten();
            Some(Crossings {
                clock,
                started_at,
                stopped: m.t.stopped_at.is_some(),
                running: m.running(),
                steps: steps
                    .into_iter()
                    .zip(instants)
                    .map(|((threshold, _), at)| (threshold, at))
                    .collect(),
                breach,
            })
        })
        .collect()
}

/// The instance's clocks at `now` (those its current priority has a target for).
pub fn clocks(def: &Definition, events: &[Event], now: DateTime<Utc>) -> Vec<Clock> {
    let mut out = Vec::new();
    for clock in [ClockKind::Respond, ClockKind::Resolve] {
        let Some(m) = measure(def, clock, events) else {
            continue;
        };
        let Some(started) = m.t.started_at else {
            out.push(Clock {
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
            });
            continue;
        };
        let target_seconds = m.target_seconds;
        let cal = &m.cal;
        let elapsed: i64 =
            m.t.running
                .iter()
                .map(|(a, b)| cal.elapsed(*a, b.unwrap_or(now).max(*a)))
                .sum();
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
            .into_iter()
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
                    threshold,
                    at_seconds,
                    reached,
                    due_at,
                }
            })
            .collect();
        out.push(Clock {
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
        });
    }
    out
}
