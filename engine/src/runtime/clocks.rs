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

/// The instance's clocks at `now` (those its current priority has a target for).
pub fn clocks(def: &Definition, events: &[Event], now: DateTime<Utc>) -> Vec<Clock> {
    let p = def.model();
    let mut out = Vec::new();
    for clock in [ClockKind::Respond, ClockKind::Resolve] {
        let (t, priority) = timeline(def, clock, events);
        let Some(target) = priority
            .and_then(|pr| p.targets.get(pr.index()))
            .and_then(|t| t.as_ref())
        else {
            continue;
        };
        let Some(duration) = target.of(clock) else {
            continue;
        };
        let Some(cal) = BusinessCalendar::from_ref(&def.project.calendars, target.calendar) else {
            continue;
        };
        let Some(started) = t.started_at else {
            out.push(Clock {
                clock,
                target: duration.to_string(),
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
        let target_seconds = cal
            .add(started, &duration)
            .map(|end| cal.elapsed(started, end))
            .unwrap_or(i64::MAX);
        let elapsed: i64 = t
            .running
            .iter()
            .map(|(a, b)| cal.elapsed(*a, b.unwrap_or(now).max(*a)))
            .sum();
        let remaining = target_seconds.saturating_sub(elapsed);
        let running = t.stopped_at.is_none()
            && !t.paused
            && t.running.last().is_some_and(|(_, end)| end.is_none());
        let state = match t.stopped_at {
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
        let escalations = p
            .escalations
            .iter()
            .filter(|e| e.clock == clock)
            .flat_map(|e| &e.steps)
            .map(|step| {
                let (threshold, at_seconds) = match step.threshold {
                    // Rounded up: a step is not due before its share of the target has passed.
                    Threshold::Percent(pc) => (
                        format!("{pc}%"),
                        (i128::from(target_seconds) * i128::from(pc)).div_euclid(100)
                            + i128::from(
                                (i128::from(target_seconds) * i128::from(pc)).rem_euclid(100) != 0,
                            ),
                    ),
                    Threshold::After(d) => (
                        d.to_string(),
                        i128::from(
                            cal.add(started, &d)
                                .map(|end| cal.elapsed(started, end))
                                .unwrap_or(i64::MAX),
                        ),
                    ),
                };
                let at_seconds = i64::try_from(at_seconds).unwrap_or(i64::MAX);
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
            target: duration.to_string(),
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
            stopped_at: t.stopped_at,
            due_at,
            escalations,
        });
    }
    out
}
