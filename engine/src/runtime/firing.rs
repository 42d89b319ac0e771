//! What a timer does when it fires, as a pure function like the rest of [`super::logic`]: the
//! complete [`Change`] of one firing, recorded in the history as the engine's own events.
//!
//! - An **escalation step** appends `escalated` (the step is then fired for good), then one
//!   event per action, in the order written:
//!   - `notify ...`: per recipient a row in the notifications outbox and `notified` (or
//!     `skipped` for a person the ticket does not name), see [`super::notices`]; with `during
//!     business hours`, a notification outside the process's business hours (the calendar of
//!     its `targets` table, see [`crate::model::Process::business_hours`]) is held (its
//!     `deliver_at`) until that calendar next opens;
//!   - `move to next tier`, `move to Q`: `routed` (cause `escalation`), and the open task
//!     moves to that queue (it is no longer pushed to anyone there);
//!   - `raise priority`: `priority_changed` (cause `escalation`) to the next more urgent
//!     priority; the clocks are measured again on the new target, never reset;
//!   - `perform T`: the transition, performed by `system` if everything but its roles allows
//!     it (stage, required fields, guards).
//!
//!   An action that cannot be taken (no open task to move, no next tier, already the most
//!   urgent priority, a transition refused) appends `skipped` with the reason instead.
//! - A **breach** appends `breached`.
//! - An **OLA breach** (a stay in a queue past the queue's target, see [`super::ola`]) appends
//!   `ola_breached` and notifies the queue's member roles (clock `ola` in the outbox).
//! - An **automatic transition** (`after`) appends `elapsed`, then the transition or `skipped`.
//! - An approval's **reminder** appends `reminded` and tells the approvers of the open level
//!   who have not voted; its **expiry** takes `on expire` (see [`super::approval`]).

use std::sync::Arc;

use super::approval::{ApprovalState, Decider};
use super::catalog::{Catalog, Definition};
use super::logic::{unchanged, Logic, Request};
use super::notices::{self, About};
use super::timers::{Due, TimerKind, TimerState};
use super::types::*;
use crate::model::{EscalationAction, Notice, PriorityId, QueueId, Recipient, TransitionId};

impl Logic {
    /// The change one due point makes when it fires (`history`, when given, is the instance's
    /// whole history, which an approval's expiry and reminders read).
    #[allow(clippy::too_many_arguments)]
    pub fn fire(
        &self,
        catalog: &Catalog,
        def: &Definition,
        inst: &Instance,
        task: Option<&Task>,
        due: &Due,
        req: &Request,
        history: Option<&[Event]>,
    ) -> Change {
        let mut f = Firing {
            logic: self,
            catalog,
            def,
            req,
            change: unchanged(inst),
            task: task.filter(|t| t.state != TaskState::Done).cloned(),
            approvers: history
                .and_then(|h| ApprovalState::of(def.model(), h))
                .and_then(|s| s.open)
                .map(|l| l.pending().map(|b| b.holder().clone()).collect())
                .unwrap_or_default(),
        };
        match due.kind {
            TimerKind::Escalation { clock, step } => {
                let reason = format!("{} of the {clock} target", due.label);
                f.push(
                    EventKind::Escalated {
                        clock,
                        step,
                        threshold: due.label.to_string(),
                    },
                    &reason,
                );
                let actions = def
                    .model()
                    .escalations
                    .iter()
                    .filter(|e| e.clock == clock)
                    .flat_map(|e| &e.steps)
                    .nth(step as usize)
                    .map(|s| s.actions.clone())
                    .unwrap_or_default();
                let threshold = due.label.to_string();
                let about = About::Escalation {
                    clock,
                    threshold: &threshold,
                };
                for action in actions {
                    f.act(&action, about, &reason);
                }
            }
            TimerKind::Breach { clock } => f.push(
                EventKind::Breached { clock },
                &format!("the {clock} target passed"),
            ),
            TimerKind::OlaBreach { queue } => f.ola_breach(queue),
            TimerKind::After { transition } => {
                let stage = &def.model().stages[inst.stage.index()].name;
                let reason = format!("{} in {stage}", due.label);
                f.push(EventKind::Elapsed { transition }, &reason);
                f.perform(transition, &reason);
            }
            TimerKind::At { transition } => {
                let p = def.model();
                let field = p.transitions[transition.index()]
                    .at
                    .map(|f| p.fields[f.index()].name.as_str())
                    .unwrap_or_default();
                let reason = format!("the time in `{field}` came");
                f.push(EventKind::Elapsed { transition }, &reason);
                f.perform(transition, &reason);
            }
            TimerKind::Every { index } => {
                let stage = &def.model().stages[inst.stage.index()];
                let label = due.label.to_string();
                let reason = format!("{label} in {}", stage.name);
                let period = history
                    .map(|h| TimerState::of(def, h).period_at(def, index, req.now))
                    .unwrap_or(1);
                f.push(EventKind::Recurred { index, period }, &reason);
                let about = About::Recurring { every: &label };
                let actions = stage
                    .recurring
                    .get(index as usize)
                    .map(|r| r.actions.clone())
                    .unwrap_or_default();
                for action in actions {
                    f.act(&action, about, &reason);
                }
            }
            TimerKind::Expiry | TimerKind::Reminder { .. } => {
                let before = history.and_then(|h| ApprovalState::of(def.model(), h));
                let open = f.task.as_ref().map(|t| t.id);
                let mut change = unchanged(&f.change.instance);
                let label = due.label.to_string();
                let mut d = Decider::new(def, req, &mut change, open, before);
                match due.kind {
                    TimerKind::Reminder { level, step } => d.remind(level, step, &label),
                    _ => d.expire(&label),
                }
                f.merge(change);
            }
        }
        f.change
    }
}

/// One firing's change, built action by action.
struct Firing<'a> {
    logic: &'a Logic,
    catalog: &'a Catalog,
    def: &'a Definition,
    req: &'a Request<'a>,
    change: Change,
    /// The instance's open task as it will be after the change so far; one the change opens
    /// has id 0.
    task: Option<Task>,
    /// The approvers of the open approval level who have not voted (for `notify approvers`).
    approvers: Vec<Arc<str>>,
}

impl Firing<'_> {
    fn push(&mut self, kind: EventKind, reason: &str) {
        let inst = Arc::make_mut(&mut self.change.instance);
        inst.version += 1;
        inst.updated_at = self.req.now;
        match &kind {
            EventKind::Routed { to, .. } => inst.queue = *to,
            EventKind::PriorityChanged { to, .. } => inst.priority = *to,
            _ => {}
        }
        self.change.events.push(Event {
            seq: inst.version,
            at: self.req.now,
            actor: self.req.actor.name.clone(),
            kind,
            reason: Some(reason.to_string()),
        });
    }

    /// The ticket's stay in `queue` passed the queue's OLA target: record it, and tell the
    /// queue's members (the group whose target it is), as an escalation's `notify` would.
    fn ola_breach(&mut self, queue: QueueId) {
        let q = self.def.project.queue(queue);
        let reason = format!("the OLA target of queue {} passed", q.name);
        self.push(EventKind::OlaBreached { queue }, &reason);
        if q.members.is_empty() {
            return;
        }
        let notice = Notice {
            to: q.members.iter().map(|r| Recipient::Role(*r)).collect(),
            message: None,
            business_hours: false,
        };
        let name = q.name.clone();
        self.notify(&notice, About::Ola { queue: &name }, &reason);
    }

    fn skip(&mut self, action: String, why: String, reason: &str) {
        self.push(
            EventKind::Skipped {
                action,
                reason: why,
            },
            reason,
        );
    }

    fn act(&mut self, action: &EscalationAction, about: About, reason: &str) {
        match action {
            EscalationAction::Notify(notice) => self.notify(notice, about, reason),
            EscalationAction::MoveToNextTier => {
                let from = self.change.instance.queue;
                let next = from.and_then(|q| self.def.project.queue(q).escalates_to);
                match (from, next) {
                    (Some(_), Some(to)) => self.move_to(to, "move to next tier", reason),
                    (Some(q), None) => self.skip(
                        "move to next tier".into(),
                        format!("`{}` is the last tier", self.def.project.queue(q).name),
                        reason,
                    ),
                    (None, _) => self.skip(
                        "move to next tier".into(),
                        "the ticket is in no queue".into(),
                        reason,
                    ),
                }
            }
            EscalationAction::MoveToQueue(q) => {
                let what = format!("move to {}", self.def.project.queue(*q).name);
                self.move_to(*q, &what, reason)
            }
            EscalationAction::RaisePriority => self.raise_priority(reason),
            EscalationAction::Perform(t) => self.perform(*t, reason),
        }
    }

    fn notify(&mut self, notice: &Notice, about: About, reason: &str) {
        let task = self.task.clone();
        notices::send(
            self.def,
            self.req,
            &mut self.change,
            task.as_ref(),
            notice,
            about,
            &self.approvers,
            reason,
        );
    }

    fn move_to(&mut self, to: QueueId, what: &str, reason: &str) {
        if self.task.is_none() {
            return self.skip(what.into(), "the ticket has no open task".into(), reason);
        }
        let from = self.change.instance.queue;
        if from == Some(to) {
            return self.skip(
                what.into(),
                "the task is already in that queue".into(),
                reason,
            );
        }
        self.push(
            EventKind::Routed {
                from,
                to: Some(to),
                cause: Cause::Escalation,
            },
            reason,
        );
        let name = self.def.task_names().queues[to.index()].clone();
        self.retask(|t| t.queue = name);
    }

    fn raise_priority(&mut self, reason: &str) {
        let from = self.change.instance.priority;
        match from {
            Some(p) if p.0 > 0 => {
                let to = PriorityId(p.0 - 1);
                self.push(
                    EventKind::PriorityChanged {
                        from,
                        to: Some(to),
                        cause: Cause::Escalation,
                    },
                    reason,
                );
                self.retask(|t| t.priority = Some(to.0));
                self.recompute_for_priority(reason);
            }
            Some(_) => self.skip(
                "raise priority".into(),
                "the ticket has the most urgent priority".into(),
                reason,
            ),
            None => self.skip(
                "raise priority".into(),
                "the ticket has no priority".into(),
                reason,
            ),
        }
    }

    fn perform(&mut self, transition: TransitionId, reason: &str) {
        let name = &self.def.model().transitions[transition.index()].name;
        let req = Request {
            actor: self.req.actor,
            now: self.req.now,
            reason: Some(reason.to_string()),
            holders: self.req.holders,
            linked: self.req.linked,
            checklist: self.req.checklist,
        };
        match self.logic.perform_as_engine(
            self.catalog,
            self.def,
            &self.change.instance,
            self.task.as_ref(),
            name,
            &req,
        ) {
            Ok(next) => self.merge(next),
            Err(e) => self.skip(format!("perform {name}"), e.to_string(), reason),
        }
    }

    /// Change the open task: the one the change opens, or an update of the one it had.
    /// After a raise: the `computes` rules that read the priority, run again on the raised
    /// one (a P3 raised to P2 is material from then on). A rule that fails leaves the fields
    /// as they were and says why in the history.
    fn recompute_for_priority(&mut self, reason: &str) {
        let p = self.def.model();
        if !p
            .rules
            .iter()
            .any(|r| matches!(r.kind, crate::model::RuleKind::Computes(_)) && r.reads.priority)
        {
            return;
        }
        let inst = self.change.instance.clone();
        let mut fields = inst.fields.clone();
        if let Err(e) = self
            .logic
            .compute(p, &mut fields, inst.stage, |_| inst.priority)
        {
            return self.skip("compute fields".into(), e.to_string(), reason);
        }
        if Arc::ptr_eq(&fields, &inst.fields) {
            return;
        }
        let changes: Vec<FieldChange> = (0..p.fields.len())
            .filter(|&i| inst.fields.get(i) != fields.get(i))
            .map(|i| FieldChange {
                field: crate::model::FieldId(i as u32),
                old: inst.fields.get(i).cloned().flatten(),
                new: fields.get(i).cloned().flatten(),
            })
            .collect();
        if changes.is_empty() {
            return;
        }
        Arc::make_mut(&mut self.change.instance).fields = fields;
        self.push(EventKind::FieldsChanged { changes }, reason);
    }

    fn retask(&mut self, f: impl FnOnce(&mut Task)) {
        let Some(task) = self.task.as_mut() else {
            return;
        };
        f(task);
        match self.change.new_task.as_mut() {
            Some(new) => {
                new.queue = task.queue.clone();
                new.priority = task.priority;
            }
            None => {
                self.change.update_task = Some(UpdateTask {
                    task: task.id,
                    queue: task.queue.clone(),
                    priority: task.priority,
                    due_at: task.due_at,
                    ola_due_at: task.ola_due_at,
                    assigned_to: None,
                })
            }
        }
    }

    /// Append a change decided on the state so far.
    fn merge(&mut self, next: Change) {
        self.change.events.extend(next.events);
        self.change.instance = next.instance;
        if let Some(close) = next.close_task {
            // Closing a task this change opened means not opening it.
            if self.change.new_task.take().is_none() {
                self.change.update_task = None;
                self.change.close_task = Some(close);
            }
            self.task = None;
        }
        if let Some(u) = next.update_task {
            self.retask(|t| {
                t.queue = u.queue;
                t.priority = u.priority;
            });
        }
        if let Some(new) = next.new_task {
            self.task = Some(Task {
                id: TaskId(0),
                instance: self.change.instance.id,
                process: new.process.clone(),
                stage: new.stage.clone(),
                queue: new.queue.clone(),
                priority: new.priority,
                due_at: new.due_at,
                ola_due_at: new.ola_due_at,
                created_at: self.req.now,
                state: TaskState::Open,
                assigned_to: new.assigned_to.clone(),
                claimed_by: None,
                lease_until: None,
                token: 0,
            });
            self.change.new_task = Some(new);
        }
        self.change.links.extend(next.links);
        self.change.spawns.extend(next.spawns);
        self.change.notifications.extend(next.notifications);
        if let Some(next) = next.ballots {
            self.change.ballots = Some(match self.change.ballots.take() {
                Some(before) => before.then(next),
                None => next,
            });
        }
    }
}
