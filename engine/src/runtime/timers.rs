//! Timers: every future due point of an instance, as a pure function of its history.
//!
//! An instance has a timer for
//!
//! - each **escalation step** of a started clock that is not stopped, not yet recorded as fired
//!   (an `escalated` event), and whose instant is known: reached in the past (missed, say while
//!   no scheduler ran) or ahead on a running clock. A paused clock keeps the steps it reached
//!   but has no instant for the others until it runs again;
//! - each clock's **target** (its breach), the same way (a `breached` event records it);
//! - each **automatic transition** (`after`) out of the current stage: due its delay after the
//!   instance entered the stage, unless an `elapsed` event since then records that it fired.
//!
//! The delay of an automatic transition is business time on the calendar of the instance's
//! current priority's target (a target row's `on CALENDAR`, else the table's `targets on
//! CALENDAR`), the calendar its clocks run on; an instance without a priority, or whose
//! priority has no target, counts it on `24x7`. (Notifications `during business hours` are
//! held to the process's business hours instead: see [`super::firing`].)
//!
//! Because a timer is derived from the history, firing it once (appending its event) removes
//! it, a stage change that stops a clock cancels the clock's timers, and a priority change
//! moves them (the clock is measured again, never reset). The rows in the store are only a
//! copy to find what is due without reading every history: the scheduler decides what to fire
//! again from the history, under the instance's version check, so nothing fires twice.

use std::collections::HashSet;

use chrono::{DateTime, Utc};

use super::catalog::Definition;
use super::clocks::crossings;
use super::types::{Event, EventKind, NewTimer};
use crate::calendar::BusinessCalendar;
use crate::model::{CalendarRef, ClockKind, PriorityId, TransitionId};

/// What falls due.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TimerKind {
    /// Step `step` (its index among the clock's escalation steps).
    Escalation { clock: ClockKind, step: u32 },
    /// The clock's target.
    Breach { clock: ClockKind },
    /// An automatic transition out of the current stage.
    After { transition: TransitionId },
}

impl TimerKind {
    /// Among points due at the same instant: escalation steps first (a `100%` step acts before
    /// the breach is recorded), then breaches, then automatic transitions.
    fn rank(&self) -> (u8, u8, u32) {
        let clock = |c: &ClockKind| match c {
            ClockKind::Respond => 0,
            ClockKind::Resolve => 1,
        };
        match self {
            TimerKind::Escalation { clock: c, step } => (0, clock(c), *step),
            TimerKind::Breach { clock: c } => (1, clock(c), 0),
            TimerKind::After { transition } => (2, 0, transition.0),
        }
    }
}

/// One due point.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Due {
    pub kind: TimerKind,
    pub due_at: DateTime<Utc>,
    /// The clock's start (microseconds), or the `seq` of the event that entered the stage.
    pub cycle: i64,
    /// The threshold as written (`75%`), the target, or the delay (`3d`).
    pub label: String,
}

impl Due {
    /// The row the store keeps for it.
    pub fn row(&self, def: &Definition) -> NewTimer {
        let (kind, what, step) = match self.kind {
            TimerKind::Escalation { clock, step } => ("escalation", clock.as_str().into(), step),
            TimerKind::Breach { clock } => ("breach", clock.as_str().into(), 0),
            TimerKind::After { transition } => (
                "after",
                def.model()
                    .transitions
                    .get(transition.index())
                    .map(|t| t.name.clone())
                    .unwrap_or_default(),
                0,
            ),
        };
        NewTimer {
            kind,
            what,
            step,
            cycle: self.cycle,
            due_at: self.due_at,
        }
    }
}

/// Everything due for an instance, earliest first, and when its resolve clock falls due.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Schedule {
    pub due: Vec<Due>,
    /// The resolve clock's target instant while it runs: the due time of the instance's task.
    pub resolve_due: Option<DateTime<Utc>>,
}

impl Schedule {
    /// The schedule the history gives.
    pub fn of(def: &Definition, events: &[Event]) -> Schedule {
        let mut fired_steps = HashSet::new();
        let mut fired_breaches = HashSet::new();
        for e in events {
            match &e.kind {
                EventKind::Escalated { clock, step, .. } => {
                    fired_steps.insert((*clock, *step));
                }
                EventKind::Breached { clock } => {
                    fired_breaches.insert(*clock);
                }
                _ => {}
            }
        }
        let mut due = Vec::new();
        let mut resolve_due = None;
        for c in crossings(def, events) {
            if c.clock == ClockKind::Resolve && c.running {
                resolve_due = c.breach;
            }
            if c.stopped {
                continue;
            }
            let cycle = c.started_at.timestamp_micros();
            for (i, (label, at)) in c.steps.iter().enumerate() {
                let step = i as u32;
                if let (Some(at), false) = (at, fired_steps.contains(&(c.clock, step))) {
                    due.push(Due {
                        kind: TimerKind::Escalation {
                            clock: c.clock,
                            step,
                        },
                        due_at: *at,
                        cycle,
                        label: label.clone(),
                    });
                }
            }
            if let (Some(at), false) = (c.breach, fired_breaches.contains(&c.clock)) {
                due.push(Due {
                    kind: TimerKind::Breach { clock: c.clock },
                    due_at: at,
                    cycle,
                    label: "100%".into(),
                });
            }
        }
        due.extend(automatic_transitions(def, events));
        due.sort_by_key(|d| (d.due_at, d.kind.rank()));
        Schedule { due, resolve_due }
    }

    /// The earliest point due by `now`.
    pub fn first_due(&self, now: DateTime<Utc>) -> Option<&Due> {
        self.due.first().filter(|d| d.due_at <= now)
    }

    pub fn rows(&self, def: &Definition) -> Vec<NewTimer> {
        self.due.iter().map(|d| d.row(def)).collect()
    }
}

/// Automatic transitions out of the stage the instance is in, not fired since it entered.
fn automatic_transitions(def: &Definition, events: &[Event]) -> Vec<Due> {
    let p = def.model();
    if !p.transitions.iter().any(|t| t.after.is_some()) {
        return Vec::new();
    }
    // The event that entered the current stage, and what happened since.
    let Some((entered, stage)) = events.iter().enumerate().rev().find_map(|(i, e)| {
        let stage = match &e.kind {
            EventKind::Created { stage, .. } => *stage,
            EventKind::Transitioned { from, to, .. } if from != to => *to,
            _ => return None,
        };
        Some((i, stage))
    }) else {
        return Vec::new();
    };
    let entry = &events[entered];
    let since = &events[entered + 1..];
    let cal = calendar(def, priority(events));
    p.transitions
        .iter()
        .enumerate()
        .filter(|(_, t)| t.from.contains(&stage))
        .filter_map(|(i, t)| {
            let id = TransitionId(i as u32);
            let after = t.after?;
            let fired = since
                .iter()
                .any(|e| matches!(e.kind, EventKind::Elapsed { transition } if transition == id));
            if fired {
                return None;
            }
            Some(Due {
                kind: TimerKind::After { transition: id },
                due_at: cal.add(entry.at, &after)?,
                cycle: entry.seq,
                label: after.to_string(),
            })
        })
        .collect()
}

/// The instance's priority at the end of its history.
pub fn priority(events: &[Event]) -> Option<PriorityId> {
    events.iter().fold(None, |p, e| match &e.kind {
        EventKind::Created { priority, .. } => *priority,
        EventKind::PriorityChanged { to, .. } => *to,
        _ => p,
    })
}

/// The calendar of a priority's target (see the module documentation); `24x7` without one.
pub fn calendar(def: &Definition, priority: Option<PriorityId>) -> BusinessCalendar<'_> {
    let cal = priority
        .and_then(|p| def.model().targets.get(p.index()))
        .and_then(|t| t.as_ref())
        .map(|t| t.calendar)
        .unwrap_or(CalendarRef::AlwaysOpen);
    BusinessCalendar::from_ref(&def.project.calendars, cal)
        .unwrap_or_else(BusinessCalendar::always_open)
}

/// Whether a change with these events can move the instance's timers: only entering a stage,
/// a change of priority, or a timer firing can. Other changes (fields that leave the
/// priority alone, comments, links) leave the timer rows untouched, so they cost nothing.
pub fn affected_by(def: &Definition, events: &[Event]) -> bool {
    let p = def.model();
    let timed =
        p.targets.iter().any(Option::is_some) || p.transitions.iter().any(|t| t.after.is_some());
    timed
        && events.iter().any(|e| match &e.kind {
            EventKind::Created { .. }
            | EventKind::PriorityChanged { .. }
            | EventKind::Escalated { .. }
            | EventKind::Breached { .. }
            | EventKind::Elapsed { .. } => true,
            EventKind::Transitioned { from, to, .. } => from != to,
            _ => false,
        })
}
