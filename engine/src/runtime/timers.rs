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

use chrono::{DateTime, Utc};

use super::catalog::Definition;
use super::clocks::{crossings, ClockTimeline, Crossings};
use super::ola::OlaTimeline;
use super::types::{Event, EventKind, Timer};
use crate::calendar::BusinessCalendar;
use crate::model::{
    CalendarRef, ClockKind, Duration, FieldId, PriorityId, Process, Project, QueueId, StageId,
    Threshold, TransitionId, Value,
};

/// The clocks, in the order the state keeps them: respond, then resolve.
const CLOCKS: [ClockKind; 2] = [ClockKind::Respond, ClockKind::Resolve];

/// What falls due.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TimerKind {
    /// Step `step` (its index among the clock's escalation steps).
    Escalation { clock: ClockKind, step: u32 },
    /// The clock's target.
    Breach { clock: ClockKind },
    /// An automatic transition out of the current stage.
    After { transition: TransitionId },
    /// The approval of the current stage reminds the approvers of its open level who have not
    /// voted (reminder `step`).
    Reminder { level: u32, step: u32 },
    /// The approval of the current stage expires.
    Expiry,
    /// An automatic transition out of the current stage at the instant in a `datetime` field.
    At { transition: TransitionId },
    /// A recurring step of the current stage (its index among the stage's `every`).
    Every { index: u32 },
    /// The ticket's stay in a queue reaches the queue's OLA target (see [`super::ola`]).
    OlaBreach { queue: QueueId },
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
            TimerKind::Reminder { step, .. } => (3, 0, *step),
            TimerKind::Expiry => (4, 0, 0),
            TimerKind::At { transition } => (2, 1, transition.0),
            TimerKind::Every { index } => (5, 0, *index),
            TimerKind::OlaBreach { queue } => (1, 2, queue.0),
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
    /// The threshold (`75%`), the target, or the delay (`3d`).
    pub label: Label,
}

/// What a due point is, as written: an escalation step's threshold (`75%`, `2h`), the target
/// (`100%`), an automatic transition's delay (`3d`). Written out only when shown or fired: a
/// schedule is derived on every change that moves it, and formatting every label each time
/// cost more than placing the points.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Label {
    Threshold(Threshold),
    Target,
    Delay(Duration),
    /// The instant in a field (`at planned_start`).
    Instant,
    /// A recurring step's period (`every 30m`).
    Every(Duration),
}

impl std::fmt::Display for Label {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Label::Threshold(t) => t.fmt(f),
            Label::Target => f.write_str("100%"),
            Label::Delay(d) => d.fmt(f),
            Label::Instant => f.write_str("the time set"),
            Label::Every(d) => write!(f, "every {d}"),
        }
    }
}

impl Due {
    /// As shown: the transition by name.
    pub fn timer(&self, def: &Definition) -> Timer {
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
            TimerKind::Reminder { level, step } => {
                ("reminder", format!("level {}", level + 1), step)
            }
            TimerKind::Expiry => ("expiry", "approval".into(), 0),
            TimerKind::At { transition } => (
                "at",
                def.model()
                    .transitions
                    .get(transition.index())
                    .map(|t| t.name.clone())
                    .unwrap_or_default(),
                0,
            ),
            TimerKind::Every { index } => ("every", self.label.to_string(), index),
            TimerKind::OlaBreach { queue } => (
                "ola_breach",
                def.project
                    .queues
                    .get(queue.index())
                    .map(|q| q.name.clone())
                    .unwrap_or_default(),
                0,
            ),
        };
        Timer {
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
    /// The OLA target instant of the ticket's stay in its queue while it runs: the task's OLA
    /// due time.
    pub ola_due: Option<DateTime<Utc>>,
}

/// What an instance's timers depend on, folded from its history one event at a time: the
/// clocks' timelines, the priority, the steps and breaches already recorded, and the stage the
/// instance is in. [`TimerState::schedule`] gives the same [`Schedule`] as a derivation from
/// the whole history, so a state kept from the version a change was decided on takes the
/// change's events instead of the history being read and folded again.
#[derive(Clone, Debug, Default)]
pub struct TimerState {
    /// Respond, then resolve.
    clocks: [ClockTimeline; 2],
    priority: Option<PriorityId>,
    fired_steps: Vec<(ClockKind, u32)>,
    fired_breaches: Vec<ClockKind>,
    /// The stage the instance entered last.
    stage: Option<StageEntry>,
    /// The instance's fields, kept only for a process whose timers read them (`at FIELD`,
    /// `every ... when`).
    fields: Option<Vec<Option<Value>>>,
    /// The schedule of the events folded so far, once asked for: kept until an event changes
    /// what it depends on (most changes, like moving between two stages the clocks run in,
    /// do not).
    cached: Option<Schedule>,
    /// Each clock's crossings (respond, then resolve), once placed: kept until its timeline or
    /// the priority changes, so a change that stops or pauses one clock, or a step that fires,
    /// places no other clock's points again.
    placed: [Option<Option<Crossings>>; 2],
    /// The ticket's stays in queues, for a process some of whose queues have OLA targets.
    ola: Option<OlaTimeline>,
}

/// The instance's current stage, the event that entered it, and the automatic transitions
/// recorded as fired since; for a stage with an approval, its open level (index, when it
/// opened) and the reminders fired on it.
#[derive(Clone, Debug)]
struct StageEntry {
    stage: StageId,
    at: DateTime<Utc>,
    seq: i64,
    elapsed: Vec<TransitionId>,
    level: Option<(u32, DateTime<Utc>)>,
    reminded: Vec<u32>,
    /// Per recurring step fired since entering: the last period it ran for.
    recurred: Vec<(u32, u32)>,
}

impl TimerState {
    /// The state a whole history leaves.
    pub fn of(def: &Definition, events: &[Event]) -> TimerState {
        let mut state = TimerState::default();
        state.apply(def, super::types::current_epoch(events));
        state
    }

    /// Take events that follow the ones folded so far.
    pub fn apply(&mut self, def: &Definition, events: &[Event]) {
        let p = def.model();
        let timing = def.timing();
        for e in events {
            if timing.ola
                && self
                    .ola
                    .get_or_insert_with(OlaTimeline::default)
                    .apply(def, e)
            {
                self.cached = None;
            }
            let mut entered_at = e.at;
            let (stage, first) = match &e.kind {
                EventKind::Migrated(m) => {
                    // Everything starts again under the new version, but for what the
                    // migration carries over (the OLA stays were reset by their own fold).
                    let ola = self.ola.take();
                    *self = TimerState {
                        ola,
                        fields: timing.reads_fields.then(|| m.fields.clone()),
                        priority: m.priority,
                        ..TimerState::default()
                    };
                    for c in &m.clocks {
                        let index = CLOCKS.iter().position(|k| *k == c.clock).unwrap_or(0);
                        self.clocks[index] = ClockTimeline::carried(c, e.at);
                        let steps = p
                            .escalations
                            .iter()
                            .filter(|esc| esc.clock == c.clock)
                            .flat_map(|esc| &esc.steps);
                        for (i, step) in steps.enumerate() {
                            if c.fired.contains(&step.threshold.to_string()) {
                                self.fired_steps.push((c.clock, i as u32));
                            }
                        }
                        if c.breached {
                            self.fired_breaches.push(c.clock);
                        }
                    }
                    entered_at = m.entered_at;
                    (m.stage, true)
                }
                EventKind::Created {
                    stage,
                    priority,
                    fields,
                    ..
                } => {
                    if timing.reads_fields {
                        self.fields = Some(fields.clone());
                    }
                    self.priority = *priority;
                    self.cached = None;
                    self.placed = [None, None];
                    (*stage, true)
                }
                EventKind::Transitioned { from, to, .. } if from != to => (*to, false),
                EventKind::ApprovalDecided { to, .. } => (*to, false),
                EventKind::LevelOpened { level, .. } => {
                    if let Some(entry) = self.stage.as_mut() {
                        entry.level = Some((*level, e.at));
                        entry.reminded.clear();
                        self.cached = None;
                    }
                    continue;
                }
                EventKind::Reminded { step, .. } => {
                    if let Some(entry) = self.stage.as_mut() {
                        entry.reminded.push(*step);
                        self.cached = None;
                    }
                    continue;
                }
                EventKind::PriorityChanged { to, .. } => {
                    if self.priority != *to {
                        self.priority = *to;
                        self.cached = None;
                        self.placed = [None, None];
                    }
                    continue;
                }
                EventKind::Escalated { clock, step, .. } => {
                    self.fired_steps.push((*clock, *step));
                    self.cached = None;
                    continue;
                }
                EventKind::Breached { clock } => {
                    self.fired_breaches.push(*clock);
                    self.cached = None;
                    continue;
                }
                EventKind::Elapsed { transition } => {
                    if let Some(entry) = self.stage.as_mut() {
                        entry.elapsed.push(*transition);
                        self.cached = None;
                    }
                    continue;
                }
                EventKind::Recurred { index, period } => {
                    if let Some(entry) = self.stage.as_mut() {
                        entry.recurred.retain(|(i, _)| i != index);
                        entry.recurred.push((*index, *period));
                        self.cached = None;
                    }
                    continue;
                }
                EventKind::FieldsChanged { changes } => {
                    if let Some(fields) = self.fields.as_mut() {
                        for c in changes {
                            if let Some(slot) = fields.get_mut(c.field.index()) {
                                *slot = c.new.clone();
                            }
                        }
                        self.cached = None;
                        // Another service may agree other targets: the clocks are measured
                        // again against them (not reset), as on a change of priority.
                        let service = p.service_targets.as_ref().map(|st| st.field);
                        if changes.iter().any(|c| Some(c.field) == service) {
                            self.placed = [None, None];
                        }
                    }
                    continue;
                }
                _ => continue,
            };
            let Some(s) = p.stages.get(stage.index()) else {
                continue;
            };
            for (((clock, t), has_start_stage), placed) in CLOCKS
                .into_iter()
                .zip(self.clocks.iter_mut())
                .zip(timing.start_stages)
                .zip(self.placed.iter_mut())
            {
                if t.enter(clock, (stage, s), has_start_stage, e.at, first) {
                    self.cached = None;
                    *placed = None;
                }
            }
            // The automatic transitions out of the stage left, and out of the stage entered
            // (due from this entry), are the only due points a stage entry moves besides the
            // clocks'.
            let timed = |stage: StageId| {
                !timing.automatic_out_of(stage).is_empty()
                    || timing.approval_timed(stage)
                    || timing.field_timed(stage)
            };
            if timed(stage) || self.stage.as_ref().is_some_and(|left| timed(left.stage)) {
                self.cached = None;
            }
            self.stage = Some(StageEntry {
                stage,
                at: entered_at,
                seq: e.seq,
                elapsed: Vec::new(),
                level: None,
                reminded: Vec::new(),
                recurred: Vec::new(),
            });
        }
    }

    /// The priority at the end of the events folded.
    pub fn priority(&self) -> Option<PriorityId> {
        self.priority
    }

    /// The ticket's service (its `service` field's value index), for a process whose services
    /// agree targets of their own.
    pub fn service(&self, def: &Definition) -> Option<u32> {
        def.model().service_of(self.fields.as_deref()?)
    }

    /// The ticket's stays in queues, for a process whose queues have OLA targets.
    pub fn ola(&self) -> Option<&OlaTimeline> {
        self.ola.as_ref()
    }

    /// The clocks' timelines, respond then resolve.
    pub(super) fn timelines_mut(&mut self) -> &mut [ClockTimeline; 2] {
        &mut self.clocks
    }

    /// Everything due, from the events folded so far. Takes `&mut self` to keep the schedule,
    /// and what it measured of the clocks, for the next call.
    pub fn schedule(&mut self, def: &Definition) -> &Schedule {
        let schedule = match self.cached.take() {
            Some(schedule) => schedule,
            None => self.derive(def),
        };
        self.cached.insert(schedule)
    }

    /// Whether the schedule last asked for still holds: no event folded since changed what it
    /// depends on.
    pub fn schedule_holds(&self) -> bool {
        self.cached.is_some()
    }

    fn derive(&mut self, def: &Definition) -> Schedule {
        let service = self.service(def);
        let mut resolve_due = None;
        for ((clock, t), placed) in CLOCKS
            .into_iter()
            .zip(self.clocks.iter_mut())
            .zip(self.placed.iter_mut())
        {
            if placed.is_none() {
                *placed = Some(crossings(def, clock, t, self.priority, service));
            }
        }
        // Sized once: every step and target placed, and the automatic transitions.
        let points = self.placed.iter().flatten().flatten();
        let automatic = self
            .stage
            .as_ref()
            .map_or(0, |s| def.timing().automatic_out_of(s.stage).len());
        let mut due =
            Vec::with_capacity(points.map(|c| c.steps.len() + 1).sum::<usize>() + automatic);
        for c in self.placed.iter().flatten().flatten() {
            if c.clock == ClockKind::Resolve && c.running {
                resolve_due = c.breach;
            }
            let cycle = c.started_at.timestamp_micros();
            for (i, (threshold, at)) in c.steps.iter().enumerate() {
                let step = i as u32;
                if let (Some(at), false) = (at, self.fired_steps.contains(&(c.clock, step))) {
                    due.push(Due {
                        kind: TimerKind::Escalation {
                            clock: c.clock,
                            step,
                        },
                        due_at: *at,
                        cycle,
                        label: Label::Threshold(*threshold),
                    });
                }
            }
            if let (Some(at), false) = (c.breach, self.fired_breaches.contains(&c.clock)) {
                due.push(Due {
                    kind: TimerKind::Breach { clock: c.clock },
                    due_at: at,
                    cycle,
                    label: Label::Target,
                });
            }
        }
        let mut ola_due = None;
        if let Some(point) = self.ola.as_ref().and_then(|o| o.breach_point(def, service)) {
            let (queue, cycle, at, running) = point;
            if running {
                ola_due = at;
            }
            let recorded = self
                .ola
                .as_ref()
                .and_then(|o| o.stays().last())
                .is_some_and(|s| s.breach_recorded);
            if let (Some(at), false) = (at, recorded) {
                due.push(Due {
                    kind: TimerKind::OlaBreach { queue },
                    due_at: at,
                    cycle,
                    label: Label::Target,
                });
            }
        }
        self.automatic_transitions(def, &mut due);
        self.field_points(def, &mut due);
        self.approval_points(def, &mut due);
        due.sort_by_key(|d| (d.due_at, d.kind.rank()));
        Schedule {
            due,
            resolve_due,
            ola_due,
        }
    }

    /// Automatic transitions out of the stage the instance is in, not fired since it entered.
    fn automatic_transitions(&self, def: &Definition, due: &mut Vec<Due>) {
        let Some(entry) = &self.stage else {
            return;
        };
        let timed = def.timing().automatic_out_of(entry.stage);
        if timed.is_empty() {
            return;
        }
        let cal = calendar(def, self.priority, self.service(def));
        due.extend(
            timed
                .iter()
                .filter(|(id, _)| !entry.elapsed.contains(id))
                .filter_map(|&(id, after)| {
                    Some(Due {
                        kind: TimerKind::After { transition: id },
                        due_at: cal.add(entry.at, &after)?,
                        cycle: entry.seq,
                        label: Label::Delay(after),
                    })
                }),
        );
    }
}

impl TimerState {
    /// The transitions out of the current stage `at` a field's instant (while it is set), and
    /// the stage's recurring steps whose condition holds: each due a period after the last one
    /// it ran for (wall-clock time from entering the stage).
    fn field_points(&self, def: &Definition, due: &mut Vec<Due>) {
        let Some(entry) = &self.stage else {
            return;
        };
        let timing = def.timing();
        if !timing.field_timed(entry.stage) {
            return;
        }
        let p = def.model();
        let no_fields = Vec::new();
        let fields = self.fields.as_ref().unwrap_or(&no_fields);
        for &(transition, field) in timing.at_out_of(entry.stage) {
            if entry.elapsed.contains(&transition) {
                continue;
            }
            let Some(Some(Value::DateTime(secs))) = fields.get(field.index()) else {
                continue;
            };
            if let Some(at) = DateTime::from_timestamp(*secs, 0) {
                due.push(Due {
                    kind: TimerKind::At { transition },
                    due_at: at,
                    cycle: entry.seq,
                    label: Label::Instant,
                });
            }
        }
        let Some(stage) = p.stages.get(entry.stage.index()) else {
            return;
        };
        for (i, r) in stage.recurring.iter().enumerate() {
            let index = i as u32;
            let holds = r.condition.as_ref().is_none_or(|c| {
                super::relations::holds(c, super::relations::Facts::of(fields, self.priority))
            });
            let Some(period) = wall_clock(&r.period) else {
                continue;
            };
            if !holds {
                continue;
            }
            let last = entry
                .recurred
                .iter()
                .find(|(j, _)| *j == index)
                .map_or(0, |(_, n)| *n);
            let Some(at) = period
                .checked_mul(last as i32 + 1)
                .and_then(|d| entry.at.checked_add_signed(d))
            else {
                continue;
            };
            due.push(Due {
                kind: TimerKind::Every { index },
                due_at: at,
                cycle: entry.seq,
                label: Label::Every(r.period),
            });
        }
    }

    /// The last whole period of recurring step `index` of the current stage that has begun
    /// by `now` (1 for the first): what a firing records, so periods missed while no scheduler
    /// ran are made up by one run.
    pub fn period_at(&self, def: &Definition, index: u32, now: DateTime<Utc>) -> u32 {
        let Some(entry) = &self.stage else { return 1 };
        let period = def
            .model()
            .stages
            .get(entry.stage.index())
            .and_then(|s| s.recurring.get(index as usize))
            .and_then(|r| wall_clock(&r.period));
        match period {
            Some(p) if p > chrono::TimeDelta::zero() => {
                let since = (now - entry.at).num_seconds().max(0);
                (since / p.num_seconds().max(1)).clamp(1, i64::from(u32::MAX)) as u32
            }
            _ => 1,
        }
    }
}

/// A duration as wall-clock time (`1d` is 24 hours, `1w` seven days); `None` on overflow or
/// for zero.
pub fn wall_clock(d: &Duration) -> Option<chrono::TimeDelta> {
    let (days, secs) = d.days_and_seconds()?;
    let total = days.checked_mul(86_400)?.checked_add(secs)?;
    (total > 0)
        .then(|| chrono::TimeDelta::try_seconds(i64::try_from(total).ok()?))
        .flatten()
}

impl TimerState {
    /// The expiry of the current stage's approval, and the reminders of its open level not
    /// fired yet: on the process's business-hours calendar, from entering the stage and from
    /// the level's opening.
    fn approval_points(&self, def: &Definition, due: &mut Vec<Due>) {
        let Some(entry) = &self.stage else {
            return;
        };
        if !def.timing().approval_timed(entry.stage) {
            return;
        }
        let p = def.model();
        let Some(approval) = p.approval_in(entry.stage) else {
            return;
        };
        let cal = BusinessCalendar::from_ref(&def.project.calendars, p.business_hours)
            .unwrap_or_else(BusinessCalendar::always_open);
        if let Some((after, _)) = approval.on_expire {
            if let Some(at) = cal.add(entry.at, &after) {
                due.push(Due {
                    kind: TimerKind::Expiry,
                    due_at: at,
                    cycle: entry.seq,
                    label: Label::Delay(after),
                });
            }
        }
        if let Some((level, opened)) = entry.level {
            for (step, after) in approval.reminders.iter().enumerate() {
                let step = step as u32;
                if entry.reminded.contains(&step) {
                    continue;
                }
                if let Some(at) = cal.add(opened, after) {
                    due.push(Due {
                        kind: TimerKind::Reminder { level, step },
                        due_at: at,
                        cycle: opened.timestamp_micros(),
                        label: Label::Delay(*after),
                    });
                }
            }
        }
    }
}

/// What the timer fold asks of a process at every event, worked out once per published
/// version (each used to be a walk over the process's stages or transitions per event).
#[derive(Clone, Debug, Default)]
pub struct Timing {
    /// Per clock (respond, resolve): whether some stage `starts` it (else creation does).
    pub start_stages: [bool; 2],
    /// Per stage: the automatic transitions (`after`) out of it, with their delays.
    automatic: Vec<Vec<(TransitionId, Duration)>>,
    /// Whether anything falls due at all: a target, an automatic transition, or an approval's
    /// expiry or reminder.
    pub timed: bool,
    /// Per stage: whether its approval has an expiry or reminders.
    approval_timed: Vec<bool>,
    /// Per stage: the transitions out of it `at` a field's instant.
    at: Vec<Vec<(TransitionId, FieldId)>>,
    /// Per stage: whether it has `at` transitions or recurring steps.
    field_timed: Vec<bool>,
    /// Whether the timers read the instance's fields (the fold then keeps them).
    pub reads_fields: bool,
    /// Whether a queue the process can put tickets in has OLA targets (the fold then follows
    /// the ticket's stays in queues).
    pub ola: bool,
}

impl Timing {
    /// As [`Timing::of`], with what the project's queues add: their OLA targets.
    pub fn of_in(p: &Process, project: &Project) -> Timing {
        let mut timing = Timing::of(p);
        timing.ola = p.queues_used(&project.queues).iter().any(|q| {
            project
                .queues
                .get(q.index())
                .is_some_and(|q| q.ola.is_some())
        });
        timing.timed |= timing.ola;
        timing
    }

    pub fn of(p: &Process) -> Timing {
        let mut automatic = vec![Vec::new(); p.stages.len()];
        for (i, t) in p.transitions.iter().enumerate() {
            if let Some(after) = t.after {
                for from in &t.from {
                    if let Some(out) = automatic.get_mut(from.index()) {
                        out.push((TransitionId(i as u32), after));
                    }
                }
            }
        }
        let mut at = vec![Vec::new(); p.stages.len()];
        for (i, t) in p.transitions.iter().enumerate() {
            if let Some(field) = t.at {
                for from in &t.from {
                    if let Some(out) = at.get_mut(from.index()) {
                        out.push((TransitionId(i as u32), field));
                    }
                }
            }
        }
        let field_timed: Vec<bool> = p
            .stages
            .iter()
            .zip(&at)
            .map(|(s, at)| !at.is_empty() || !s.recurring.is_empty())
            .collect();
        let reads_fields = p.service_targets.is_some()
            || p.transitions.iter().any(|t| t.at.is_some())
            || p.stages
                .iter()
                .flat_map(|s| &s.recurring)
                .any(|r| r.condition.is_some());
        let mut approval_timed = vec![false; p.stages.len()];
        for a in &p.approvals {
            if let Some(slot) = approval_timed.get_mut(a.stage.index()) {
                *slot = a.on_expire.is_some() || !a.reminders.is_empty();
            }
        }
        Timing {
            start_stages: CLOCKS.map(|clock| p.stages.iter().any(|s| s.starts.has(clock))),
            timed: p.targets.iter().any(Option::is_some)
                || p.service_targets.is_some()
                || p.transitions.iter().any(|t| t.after.is_some())
                || approval_timed.iter().any(|t| *t)
                || field_timed.iter().any(|t| *t),
            automatic,
            approval_timed,
            at,
            field_timed,
            reads_fields,
            ola: false,
        }
    }

    /// Whether the approval of `stage` (if it has one) has an expiry or reminders.
    pub fn approval_timed(&self, stage: StageId) -> bool {
        self.approval_timed
            .get(stage.index())
            .copied()
            .unwrap_or(false)
    }

    /// Whether `stage` has transitions `at` a field's instant or recurring steps.
    pub fn field_timed(&self, stage: StageId) -> bool {
        self.field_timed
            .get(stage.index())
            .copied()
            .unwrap_or(false)
    }

    /// The transitions out of `stage` `at` a field's instant, with the field.
    pub fn at_out_of(&self, stage: StageId) -> &[(TransitionId, FieldId)] {
        self.at.get(stage.index()).map_or(&[], Vec::as_slice)
    }

    /// The automatic transitions (`after`) out of `stage`, with their delays, in the order
    /// written.
    pub fn automatic_out_of(&self, stage: StageId) -> &[(TransitionId, Duration)] {
        self.automatic.get(stage.index()).map_or(&[], Vec::as_slice)
    }
}

impl Schedule {
    /// The schedule the history gives.
    pub fn of(def: &Definition, events: &[Event]) -> Schedule {
        TimerState::of(def, events).derive(def)
    }

    /// The earliest point due by `now`.
    pub fn first_due(&self, now: DateTime<Utc>) -> Option<&Due> {
        self.due.first().filter(|d| d.due_at <= now)
    }

    pub fn timers(&self, def: &Definition) -> Vec<Timer> {
        self.due.iter().map(|d| d.timer(def)).collect()
    }

    /// When the earliest point falls due: what the store keeps, as the time to look again.
    pub fn wakeup(&self) -> Option<DateTime<Utc>> {
        self.due.first().map(|d| d.due_at)
    }
}

/// The calendar of the target of a priority (and service, see [`Process::target`]), as the
/// module documentation says; `24x7` without one.
pub fn calendar(
    def: &Definition,
    priority: Option<PriorityId>,
    service: Option<u32>,
) -> BusinessCalendar<'_> {
    let cal = def
        .model()
        .target(priority, service)
        .map(|t| t.calendar)
        .unwrap_or(CalendarRef::AlwaysOpen);
    BusinessCalendar::from_ref(&def.project.calendars, cal)
        .unwrap_or_else(BusinessCalendar::always_open)
}

/// Whether a change with these events can move the instance's timers: only entering a stage,
/// a change of priority, or a timer firing can. Other changes (fields that leave the
/// priority alone, comments, links) leave the stored wake-up untouched, so they cost nothing.
pub fn affected_by(def: &Definition, events: &[Event]) -> bool {
    def.timing().timed
        && events.iter().any(|e| match &e.kind {
            EventKind::Created { .. }
            | EventKind::Migrated(_)
            | EventKind::PriorityChanged { .. }
            | EventKind::Escalated { .. }
            | EventKind::Breached { .. }
            | EventKind::OlaBreached { .. }
            | EventKind::Elapsed { .. }
            | EventKind::ApprovalDecided { .. }
            | EventKind::LevelOpened { .. }
            | EventKind::Reminded { .. }
            | EventKind::Recurred { .. } => true,
            EventKind::Transitioned { from, to, .. } => from != to,
            EventKind::FieldsChanged { .. } => def.timing().reads_fields,
            // A move to another queue ends one stay and begins another.
            EventKind::Routed { .. } => def.timing().ola,
            _ => false,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_read_as_written() {
        let d = |hours, minutes| Duration {
            hours,
            minutes,
            ..Duration::default()
        };
        let days = Duration {
            days: 3,
            ..Duration::default()
        };
        let shown: Vec<String> = [
            Label::Threshold(Threshold::Percent(75)),
            Label::Threshold(Threshold::After(d(2, 30))),
            Label::Target,
            Label::Delay(days),
        ]
        .iter()
        .map(Label::to_string)
        .collect();
        assert_eq!(shown, ["75%", "2h30m", "100%", "3d"]);
    }
}
