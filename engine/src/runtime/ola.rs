//! Operational-level clocks (OLA), derived from an instance's history like the service clocks
//! (see [`super::clocks`]): nothing about them is stored, so they cannot drift from the audit
//! trail.
//!
//! - Each **stay** of the ticket in a queue is measured on its own: it begins when the ticket
//!   enters the queue (created in it, a stage that names it, routing or an escalation moving
//!   it there: a `created` event with a queue, or `routed` to it) and ends when it leaves
//!   (`routed` elsewhere or to no queue, or a final stage). A ticket sent back to a queue it
//!   was in starts a new stay: the group is measured on each hand-over, not on the total.
//! - It **pauses** while the ticket is in a stage that `pauses resolve`: waiting for the
//!   customer is not the group's time, as it is not the service's.
//! - Its **target** is the queue's OLA row for the ticket's priority (the current one for the
//!   open stay, the one when it ended for a past one), else the `default` row; no row, no
//!   clock. It runs on the row's calendar, else the block's `targets on`, else the calendar of
//!   the process's own target for that priority (so the group works the SLA's hours), else
//!   `24x7`. A target in days is converted to business time from the stay's start.
//! - The open stay's **breach** is a timer like the SLA breaches ([`super::timers`]): when it
//!   fires, an `ola_breached` event records it, once per stay, and the queue's member roles are
//!   notified. A past stay reads **met** or **breached** from its measure.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::catalog::Definition;
use super::clocks::ClockState;
use super::types::{Event, EventKind};
use crate::calendar::BusinessCalendar;
use crate::model::{CalendarRef, OlaRow, PriorityId, QueueId, StageId};

/// One stay of a ticket in a queue, as its history gives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stay {
    pub queue: QueueId,
    /// The `seq` of the event that began it: it identifies the stay's one breach timer.
    pub seq: i64,
    pub entered_at: DateTime<Utc>,
    pub left_at: Option<DateTime<Utc>>,
    /// Closed and open running intervals; only the last can be open.
    running: Vec<(DateTime<Utc>, Option<DateTime<Utc>>)>,
    /// Its breach was recorded (`ola_breached`).
    pub breach_recorded: bool,
    /// The priority when it ended (a past stay is measured on it).
    ended_priority: Option<PriorityId>,
}

impl Stay {
    fn running_now(&self) -> bool {
        self.left_at.is_none() && self.running.last().is_some_and(|(_, end)| end.is_none())
    }
}

/// The stays folded from a history one event at a time (see [`super::timers::TimerState`]).
#[derive(Clone, Debug, Default)]
pub struct OlaTimeline {
    stays: Vec<Stay>,
    /// The ticket's stage pauses the resolve clock.
    paused: bool,
    /// The ticket is in a final stage: a queue it is put in there is not worked.
    ended: bool,
    priority: Option<PriorityId>,
}

impl OlaTimeline {
    /// Take one event; returns whether the stays changed (so a schedule derived from them no
    /// longer holds).
    pub fn apply(&mut self, def: &Definition, e: &Event) -> bool {
        match &e.kind {
            EventKind::Migrated(m) => {
                // The stays under the version left are not measured under the new one: the
                // stay in the ticket's queue starts again at the migration.
                *self = OlaTimeline {
                    priority: m.priority,
                    ..OlaTimeline::default()
                };
                self.enter_stage(def, m.stage, e.at);
                if let Some(q) = m.queue {
                    self.open(q, e);
                }
                true
            }
            EventKind::Created {
                stage,
                queue,
                priority,
                ..
            } => {
                self.priority = *priority;
                self.enter_stage(def, *stage, e.at);
                if let Some(q) = queue {
                    self.open(*q, e);
                }
                true
            }
            EventKind::Transitioned { from, to, .. } if from != to => {
                self.enter_stage(def, *to, e.at)
            }
            EventKind::ApprovalDecided { to, .. } => self.enter_stage(def, *to, e.at),
            EventKind::Routed { to, .. } => {
                self.close(e.at);
                if let Some(q) = to {
                    self.open(*q, e);
                }
                true
            }
            EventKind::PriorityChanged { to, .. } => {
                self.priority = *to;
                self.open_stay().is_some()
            }
            EventKind::OlaBreached { queue } => match self.open_stay_mut() {
                Some(s) if s.queue == *queue => {
                    s.breach_recorded = true;
                    true
                }
                _ => false,
            },
            _ => false,
        }
    }

    fn open_stay(&self) -> Option<&Stay> {
        self.stays.last().filter(|s| s.left_at.is_none())
    }

    fn open_stay_mut(&mut self) -> Option<&mut Stay> {
        self.stays.last_mut().filter(|s| s.left_at.is_none())
    }

    /// The ticket enters a stage: a final one ends the stay, a pausing one pauses it, any
    /// other runs it.
    fn enter_stage(&mut self, def: &Definition, stage: StageId, at: DateTime<Utc>) -> bool {
        let Some(s) = def.model().stages.get(stage.index()) else {
            return false;
        };
        self.ended = s.is_final;
        if s.is_final {
            self.paused = false;
            return self.close(at);
        }
        self.paused = s.pauses.resolve;
        let paused = self.paused;
        let Some(stay) = self.open_stay_mut() else {
            return false;
        };
        let open = stay.running.last_mut().filter(|(_, end)| end.is_none());
        match (open, paused) {
            (Some((_, end)), true) => {
                *end = Some(at);
                true
            }
            (None, false) => {
                stay.running.push((at, None));
                true
            }
            _ => false,
        }
    }

    fn open(&mut self, queue: QueueId, e: &Event) {
        if self.ended {
            return;
        }
        self.stays.push(Stay {
            queue,
            seq: e.seq,
            entered_at: e.at,
            left_at: None,
            running: if self.paused {
                Vec::new()
            } else {
                vec![(e.at, None)]
            },
            breach_recorded: false,
            ended_priority: None,
        });
    }

    fn close(&mut self, at: DateTime<Utc>) -> bool {
        let priority = self.priority;
        let Some(stay) = self.open_stay_mut() else {
            return false;
        };
        if let Some((_, end)) = stay.running.last_mut().filter(|(_, end)| end.is_none()) {
            *end = Some(at);
        }
        stay.left_at = Some(at);
        stay.ended_priority = priority;
        true
    }

    /// The stays so far, in order.
    pub fn stays(&self) -> &[Stay] {
        &self.stays
    }

    /// The open stay's target, where it is known and not yet recorded as breached: its queue,
    /// its cycle (the stay's `seq`), when it is (or was) reached, and whether the stay runs
    /// now. `None` if there is no open stay with a target, or it is paused short of it.
    pub fn breach_point(
        &self,
        def: &Definition,
        service: Option<u32>,
    ) -> Option<(QueueId, i64, Option<DateTime<Utc>>, bool)> {
        let stay = self.open_stay()?;
        let m = Measure::of(def, stay, self.priority, service)?;
        Some((stay.queue, stay.seq, m.reached_at(stay), stay.running_now()))
    }

    /// Every stay as it reads at `now`: the open one last, if any. Stays in a queue without
    /// an OLA (or without a row for the priority) are left out.
    pub fn clocks(
        &self,
        def: &Definition,
        service: Option<u32>,
        now: DateTime<Utc>,
    ) -> Vec<OlaClock> {
        self.stays
            .iter()
            .filter_map(|stay| {
                let priority = match stay.left_at {
                    Some(_) => stay.ended_priority,
                    None => self.priority,
                };
                let m = Measure::of(def, stay, priority, service)?;
                Some(m.reading(def, stay, now))
            })
            .collect()
    }
}

/// An OLA clock of one stay, at one instant.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OlaClock {
    pub queue: String,
    /// `Some(n)` when the target is the tier's (the queue has none of its own).
    pub tier: Option<u32>,
    /// The row that applies: the priority's, or `default`.
    pub row: String,
    /// The target as written (`4h`).
    pub target: String,
    /// The target in business seconds on its calendar, from the stay's start.
    pub target_seconds: i64,
    pub elapsed_seconds: i64,
    /// `target_seconds - elapsed_seconds`, negative once breached.
    pub remaining_seconds: i64,
    /// `running`, `paused`, `met` (left within its target) or `breached`.
    pub state: ClockState,
    /// The calendar it runs on (`24x7` or a calendar's name).
    pub calendar: String,
    pub entered_at: DateTime<Utc>,
    pub left_at: Option<DateTime<Utc>>,
    /// When it reaches its target, while it runs.
    pub due_at: Option<DateTime<Utc>>,
    /// The breach was recorded in the history (and the queue's members notified).
    pub breach_recorded: bool,
}

/// A stay's target and calendar.
struct Measure<'a> {
    row: &'a OlaRow,
    tier: Option<u32>,
    calendar: CalendarRef,
    cal: BusinessCalendar<'a>,
    target_seconds: i64,
}

impl<'a> Measure<'a> {
    fn of(
        def: &'a Definition,
        stay: &Stay,
        priority: Option<PriorityId>,
        service: Option<u32>,
    ) -> Option<Measure<'a>> {
        let p = def.model();
        let ola = def.project.queues.get(stay.queue.index())?.ola.as_ref()?;
        let name = priority.and_then(|pr| p.priorities.get(pr.index()));
        let row = ola.row(name.map(String::as_str))?;
        let calendar = ola
            .calendar_of(row)
            .or_else(|| p.target(priority, service).map(|t| t.calendar))
            .unwrap_or(CalendarRef::AlwaysOpen);
        let cal = BusinessCalendar::from_ref(&def.project.calendars, calendar)?;
        let target_seconds = cal
            .seconds_in(stay.entered_at, &row.resolve)
            .unwrap_or(i64::MAX);
        Some(Measure {
            row,
            tier: ola.tier,
            calendar,
            cal,
            target_seconds,
        })
    }

    /// Business seconds the stay has run by `now`.
    fn elapsed(&self, stay: &Stay, now: DateTime<Utc>) -> i64 {
        stay.running
            .iter()
            .map(|(start, end)| {
                let end = end.unwrap_or(now).max(*start);
                self.cal.elapsed(*start, end)
            })
            .fold(0i64, i64::saturating_add)
    }

    /// When the stay reaches its target: within a running interval of the past, or ahead in
    /// the open one; `None` if it is paused or ended short of it.
    fn reached_at(&self, stay: &Stay) -> Option<DateTime<Utc>> {
        let mut done = 0i64;
        for (start, end) in &stay.running {
            let left = self.target_seconds.saturating_sub(done);
            match end {
                Some(end) => {
                    let run = self.cal.elapsed(*start, *end);
                    if run >= left {
                        return self.cal.add_seconds(*start, u64::try_from(left).ok()?);
                    }
                    done = done.saturating_add(run);
                }
                None => return self.cal.add_seconds(*start, u64::try_from(left).ok()?),
            }
        }
        None
    }

    fn reading(&self, def: &Definition, stay: &Stay, now: DateTime<Utc>) -> OlaClock {
        let end = stay.left_at.unwrap_or(now);
        let elapsed = self.elapsed(stay, end);
        let remaining = self.target_seconds.saturating_sub(elapsed);
        let running = stay.running_now();
        let state = match stay.left_at {
            // Left exactly at its target, it met it; an open stay is breached at 100%.
            Some(_) if elapsed <= self.target_seconds && !stay.breach_recorded => ClockState::Met,
            Some(_) => ClockState::Breached,
            None if elapsed >= self.target_seconds || stay.breach_recorded => ClockState::Breached,
            None if running => ClockState::Running,
            None => ClockState::Paused,
        };
        let due_at = match running {
            true => u64::try_from(remaining)
                .ok()
                .and_then(|r| self.cal.add_seconds(now, r)),
            false => None,
        };
        let calendar = match self.calendar {
            CalendarRef::AlwaysOpen => "24x7".to_string(),
            CalendarRef::Named(id) => def
                .project
                .calendars
                .get(id.index())
                .map(|c| c.name.clone())
                .unwrap_or_default(),
        };
        OlaClock {
            queue: def
                .project
                .queues
                .get(stay.queue.index())
                .map(|q| q.name.clone())
                .unwrap_or_default(),
            tier: self.tier,
            row: self.row.name().to_string(),
            target: self.row.resolve.to_string(),
            target_seconds: self.target_seconds,
            elapsed_seconds: elapsed,
            remaining_seconds: remaining,
            state,
            calendar,
            entered_at: stay.entered_at,
            left_at: stay.left_at,
            due_at,
            breach_recorded: stay.breach_recorded,
        }
    }
}

/// The instance's OLA clocks at `now`, past stays first, the open one (if any) last. The
/// timer fold follows the stays (and the ticket's service, whose targets may give the
/// calendar), so one fold of the history gives both.
pub fn ola_clocks(def: &Definition, events: &[Event], now: DateTime<Utc>) -> Vec<OlaClock> {
    if !def.timing().ola {
        return Vec::new();
    }
    let state = super::timers::TimerState::of(def, events);
    let service = state.service(def);
    state
        .ola()
        .map(|t| t.clocks(def, service, now))
        .unwrap_or_default()
}
