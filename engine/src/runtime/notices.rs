//! Notifications a definition sends (an escalation step's `notify`, entering a stage, performing
//! a transition), as pure functions like the rest of [`super::logic`]: each recipient becomes a
//! row of the notifications outbox, written with the change, and a `notified` event (or a
//! `skipped` one when the ticket names nobody as that person).
//!
//! - A role goes to every holder of the role: one row for the role, no recipients named.
//! - A person (a `person` field, the creator, the task's holder, someone's manager read from
//!   the directory before deciding) goes to that user: one row naming them.
//! - `approvers` goes to the approvers of the open level who have not voted yet.
//!
//! A message is the notice's template over the ticket as the change leaves it, or the engine's
//! own words for what happened.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::catalog::Definition;
use super::logic::Request;
use super::types::*;
use super::values;
use crate::calendar::BusinessCalendar;
use crate::model::{ClockKind, Notice, Recipient, TemplatePart};

/// What a notification is about, for its default message and the outbox's clock columns.
#[derive(Clone, Copy)]
pub enum About<'a> {
    /// An escalation step of a clock, at a threshold.
    Escalation {
        clock: ClockKind,
        threshold: &'a str,
    },
    /// A recurring step of the current stage (`every 30m`).
    Recurring { every: &'a str },
    /// The instance entered its current stage.
    Stage,
    /// A transition was performed.
    Transition(&'a str),
    /// The ticket's stay in a queue passed the queue's OLA target.
    Ola { queue: &'a str },
}

/// Append an event to a change, numbered after its last.
pub(super) fn append(change: &mut Change, req: &Request, kind: EventKind, reason: Option<String>) {
    let inst = Arc::make_mut(&mut change.instance);
    inst.version += 1;
    inst.updated_at = req.now;
    change.events.push(Event {
        seq: inst.version,
        at: req.now,
        actor: req.actor.name.clone(),
        kind,
        reason,
    });
}

/// Send `notice` with `change`: rows for the outbox and their events. `task` is the instance's
/// open task, when at hand; `approvers` those of the open approval level still to vote.
#[allow(clippy::too_many_arguments)]
pub(super) fn send(
    def: &Definition,
    req: &Request,
    change: &mut Change,
    task: Option<&Task>,
    notice: &Notice,
    about: About,
    approvers: &[Arc<str>],
    reason: &str,
) {
    let deliver_at = deliver_at(def, req.now, notice.business_hours);
    let message = match &notice.message {
        Some(parts) => render(def, &change.instance, parts),
        None => default_message(def, &change.instance, &about),
    };
    let (clock, threshold) = match about {
        About::Escalation { clock, threshold } => (
            Some(clock.as_str().to_string()),
            Some(threshold.to_string()),
        ),
        About::Ola { .. } => (Some("ola".to_string()), Some("100%".to_string())),
        _ => (None, None),
    };
    let held = (deliver_at != req.now).then_some(deliver_at);
    for to in &notice.to {
        let (role, people, what): (Option<_>, Vec<Arc<str>>, String) = match to {
            Recipient::Role(r) => (Some(*r), Vec::new(), String::new()),
            Recipient::Person(p) => {
                let what = p.describe(def.model());
                // A `list(person)` field notifies each of its people, once each.
                let who = req.holders.people(p, &change.instance, task);
                (None, who, what)
            }
            Recipient::Approvers => (None, approvers.to_vec(), "approvers".to_string()),
        };
        if role.is_none() && people.is_empty() {
            // An empty list of people is the usual case (an incident nobody watches), not a
            // notice that could not be sent: nothing to record.
            if names_a_list(def, to) {
                continue;
            }
            append(
                change,
                req,
                EventKind::Skipped {
                    action: format!("notify {what}"),
                    reason: format!("the ticket names nobody as {what}"),
                },
                Some(reason.to_string()),
            );
            continue;
        }
        change.notifications.push(NewNotification {
            role: match role {
                Some(r) => def.project.role(r).name.clone(),
                None => what,
            },
            recipients: people.iter().map(|p| p.to_string()).collect(),
            clock: clock.clone(),
            threshold: threshold.clone(),
            message: message.clone(),
            deliver_at,
        });
        append(
            change,
            req,
            EventKind::Notified {
                role,
                people,
                deliver_at: held,
            },
            Some(reason.to_string()),
        );
    }
}

/// Whether the recipient is the people of a `list(person)` field.
fn names_a_list(def: &Definition, to: &Recipient) -> bool {
    match to {
        Recipient::Person(crate::model::PersonRef::Field(f)) => def
            .model()
            .fields
            .get(f.index())
            .is_some_and(|field| field.ty.element().is_some()),
        _ => false,
    }
}

/// Now, or when the process's business hours next begin for a notice held to them.
fn deliver_at(def: &Definition, now: DateTime<Utc>, business_hours: bool) -> DateTime<Utc> {
    if !business_hours {
        return now;
    }
    BusinessCalendar::from_ref(&def.project.calendars, def.model().business_hours)
        .and_then(|cal| cal.next_opening(now))
        .unwrap_or(now)
}

/// A template over the ticket.
pub fn render(def: &Definition, inst: &Instance, parts: &[TemplatePart]) -> String {
    let p = def.model();
    let mut out = String::new();
    for part in parts {
        match part {
            TemplatePart::Text(t) => out.push_str(t),
            TemplatePart::Field(f) => {
                if let (Some(field), Some(Some(v))) =
                    (p.fields.get(f.index()), inst.fields.get(f.index()))
                {
                    out.push_str(&readable(values::to_json(field, v)));
                }
            }
            TemplatePart::Id => out.push_str(&inst.id.to_string()),
            TemplatePart::Process => out.push_str(&p.name),
            TemplatePart::Stage => {
                let st = &p.stages[inst.stage.index()];
                out.push_str(st.label.as_deref().unwrap_or(&st.name));
            }
            TemplatePart::Priority => {
                if let Some(pr) = inst.priority.and_then(|pr| p.priorities.get(pr.index())) {
                    out.push_str(pr);
                }
            }
        }
    }
    out
}

/// A field's value in a message: text as it is, a list as its elements joined by commas
/// (`ann, bob`), anything else as JSON writes it.
fn readable(json: serde_json::Value) -> String {
    match json {
        serde_json::Value::String(s) => s,
        serde_json::Value::Array(items) => items
            .into_iter()
            .map(readable)
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}

/// The engine's own words for what happened.
fn default_message(def: &Definition, inst: &Instance, about: &About) -> String {
    let p = def.model();
    match about {
        About::Escalation { clock, threshold } => {
            let priority = inst
                .priority
                .and_then(|pr| p.priorities.get(pr.index()))
                .map(|pr| format!(" ({pr})"))
                .unwrap_or_default();
            format!(
                "{} {} reached {threshold} of its {clock} target{priority}",
                p.name, inst.id
            )
        }
        About::Stage => format!(
            "{} {} entered {}",
            p.name,
            inst.id,
            p.stages[inst.stage.index()].name
        ),
        About::Transition(action) => format!("{} {}: {action}", p.name, inst.id),
        About::Ola { queue } => {
            let priority = inst
                .priority
                .and_then(|pr| p.priorities.get(pr.index()))
                .map(|pr| format!(" ({pr})"))
                .unwrap_or_default();
            format!(
                "{} {} passed the OLA target of queue {queue}{priority}",
                p.name, inst.id
            )
        }
        About::Recurring { every } => format!(
            "{} {} is still in {} ({every})",
            p.name,
            inst.id,
            p.stages[inst.stage.index()].name
        ),
    }
}
