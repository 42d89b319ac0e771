//! `expect` steps: what a ticket must look like now. A failure says what was expected and what
//! the ticket shows instead, in the words the test is written in.

use itsmflow_dsl::ast::{ClockCheck, Duration, Expectation, Notified, OutcomeKind, Threshold};
use serde_json::Value as Json;

use super::world::{instant, literal_json, World};
use super::StepFailure;
use crate::runtime::clocks::{Clock, ClockState};
use crate::runtime::ola::OlaClock;
use crate::runtime::types::EventKind;
use crate::runtime::{InstanceId, InstanceView, NotificationFilter, TaskState};

pub(super) async fn check(
    world: &mut World,
    id: InstanceId,
    negated: bool,
    expectation: &Expectation,
) -> Result<(), StepFailure> {
    let view = world.engine.instance(id).await?;
    match expectation {
        Expectation::Stage(s) => same(negated, "stage", &s.name, view.stage()),
        Expectation::Priority(p) => same(
            negated,
            "priority",
            &or_none(p.as_ref().map(|p| p.name.as_str())),
            &or_none(view.priority()),
        ),
        Expectation::Queue(q) => same(
            negated,
            "queue",
            &or_none(q.as_ref().map(|q| q.name.as_str())),
            &or_none(view.queue()),
        ),
        Expectation::Holder(h) => same(
            negated,
            "holder of the task",
            &or_none(h.as_ref().map(|h| h.name.as_str())),
            &or_none(holder(world, &view).as_deref()),
        ),
        Expectation::Field { field, value } => {
            let actual = view.field(&field.name).unwrap_or(Json::Null);
            let expected = match value {
                Some(v) => canonical(&view, &field.name, literal_json(&v.kind)),
                None => Json::Null,
            };
            same(
                negated,
                &format!("field `{}`", field.name),
                &json_text(&expected),
                &json_text(&actual),
            )
        }
        Expectation::FieldHas { field, value } => {
            let actual = view.field(&field.name).unwrap_or(Json::Null);
            let wanted = element_json(&view, &field.name, literal_json(&value.kind));
            let elements = actual.as_array().map(Vec::as_slice).unwrap_or_default();
            let found = elements.contains(&wanted);
            if found == negated {
                let which = if negated { "no element" } else { "an element" };
                return Err(StepFailure::new(format!(
                    "expected {which} of field `{}` to be {}, but it is {}",
                    field.name,
                    json_text(&wanted),
                    json_text(&actual)
                )));
            }
            Ok(())
        }
        Expectation::Clock { clock, check } => {
            let clocks = world.engine.clocks(id).await?;
            let Some(c) = clocks.iter().find(|c| c.clock == clock.node) else {
                return Err(StepFailure::new(format!(
                    "the ticket has no {} clock (its priority sets no target for it)",
                    clock.node.as_str()
                )));
            };
            clock_check(negated, c, check)
        }
        Expectation::Ola { check, .. } => {
            let clocks = world.engine.ola_clocks(id).await?;
            let current = clocks.iter().rev().find(|c| c.left_at.is_none());
            ola_check(negated, current, view.queue(), check)
        }
        Expectation::OlaBreachedIn(queue) => {
            let events = world.engine.events(id).await?;
            let project = &view.definition().project;
            let breached = events.iter().any(|e| {
                matches!(&e.kind, EventKind::OlaBreached { queue: q }
                    if project.queues.get(q.index()).is_some_and(|q| q.name == queue.name))
            });
            happened(
                negated,
                &format!("a breach of the OLA of queue `{}`", queue.name),
                breached,
            )
        }
        Expectation::Escalated { clock, threshold } => {
            // By value, as the checker compares them: `120m` is the step written `2h`.
            let p = view.definition().model();
            let step = p
                .escalations
                .iter()
                .find(|e| e.clock == clock.node)
                .and_then(|e| {
                    e.steps
                        .iter()
                        .position(|s| same_threshold(s.threshold, threshold.node))
                })
                .ok_or_else(|| {
                    StepFailure::new(format!(
                        "`{}` has no escalation step on {} at {}",
                        p.name,
                        clock.node.as_str(),
                        threshold_text(threshold.node)
                    ))
                })?;
            let events = world.engine.events(id).await?;
            let fired = events.iter().any(|e| {
                matches!(&e.kind, EventKind::Escalated { clock: c, step: s, .. }
                    if *c == clock.node && *s as usize == step)
            });
            happened(
                negated,
                &format!(
                    "the {} escalation at {}",
                    clock.node.as_str(),
                    threshold_text(threshold.node)
                ),
                fired,
            )
        }
        Expectation::Breached(clock) => {
            let events = world.engine.events(id).await?;
            let breached = events
                .iter()
                .any(|e| matches!(&e.kind, EventKind::Breached { clock: c } if *c == clock.node));
            happened(
                negated,
                &format!("a breach of the {} clock", clock.node.as_str()),
                breached,
            )
        }
        Expectation::Notified {
            recipient,
            contains,
        } => {
            notified(
                world,
                id,
                negated,
                recipient,
                contains.as_ref().map(|c| c.node.as_str()),
            )
            .await
        }
        Expectation::Approval { state, level } => {
            approval(
                world,
                id,
                negated,
                &state.name,
                level.as_ref().map(|l| l.node),
            )
            .await
        }
        Expectation::Linked {
            kind,
            other,
            names: true,
        } => {
            let links = world.engine.links(id).await?;
            // The first linked that has no name yet (links come in the order they were made),
            // so naming them one after another names each in turn.
            let named: Vec<InstanceId> = world.handles.values().copied().collect();
            let Some(found) = links.iter().find(|l| {
                (l.name.as_deref() == Some(&kind.name) || l.kind == kind.name)
                    && !named.contains(&l.other)
            }) else {
                return Err(StepFailure {
                    message: format!(
                        "no `{}` link to a ticket not named yet, to name `{}`",
                        kind.name, other.name
                    ),
                    expected: Some(format!("a `{}` link", kind.name)),
                    actual: Some(list_or_none(&link_names(world, &links))),
                });
            };
            if negated {
                return Err(StepFailure::new("`not linked ... as` names no ticket"));
            }
            world.handles.insert(other.name.clone(), found.other);
            Ok(())
        }
        Expectation::Linked {
            kind,
            other,
            names: false,
        } => {
            let other_id = world.ticket(Some(other))?;
            let links = world.engine.links(id).await?;
            let found = links.iter().any(|l| {
                l.other == other_id
                    && (l.name.as_deref() == Some(&kind.name) || l.kind == kind.name)
            });
            let actual = link_names(world, &links);
            let what = format!("a `{}` link to `{}`", kind.name, other.name);
            if found == negated {
                return Err(StepFailure {
                    message: format!("{what} {}", if negated { "exists" } else { "is missing" }),
                    expected: Some(format!("{}{what}", if negated { "no " } else { "" })),
                    actual: Some(list_or_none(&actual)),
                });
            }
            Ok(())
        }
        Expectation::Checked(item) => {
            let items = world.engine.checklist(id).await?;
            let Some(entry) = items.iter().find(|e| e.item == item.name) else {
                return Err(StepFailure {
                    message: format!(
                        "the checklist of stage `{}` has no item `{}`",
                        view.stage(),
                        item.name
                    ),
                    expected: Some(format!("an item `{}`", item.name)),
                    actual: Some(list_or_none(
                        &items.iter().map(|e| e.item.as_str()).collect::<Vec<_>>(),
                    )),
                });
            };
            happened_as(
                negated,
                &format!("`{}`", item.name),
                entry.done,
                "ticked",
                "not ticked",
            )
        }
        Expectation::History(steps) => {
            let events = world.engine.events(id).await?;
            let p = view.definition().model();
            let taken: Vec<&str> = events
                .iter()
                .filter_map(|e| match &e.kind {
                    EventKind::Transitioned { action, .. } => {
                        Some(p.transitions[action.index()].name.as_str())
                    }
                    EventKind::ApprovalDecided { outcome, .. } => Some(outcome_word(*outcome)),
                    _ => None,
                })
                .collect();
            let expected: Vec<&str> = steps.iter().map(|s| s.name.as_str()).collect();
            same(
                negated,
                "history",
                &list_or_none(&expected),
                &list_or_none(&taken),
            )
        }
    }
}

/// Links as a test writes them: `caused_by p`, or `caused_by ticket 7` for one it never named.
fn link_names(world: &World, links: &[crate::runtime::LinkView]) -> Vec<String> {
    links
        .iter()
        .map(|l| {
            let name = l.name.as_deref().unwrap_or(&l.kind);
            // The smallest handle, so the text is the same on every run.
            let handle = world
                .handles
                .iter()
                .filter(|(_, v)| **v == l.other)
                .map(|(k, _)| k.clone())
                .min()
                .unwrap_or_else(|| format!("ticket {}", l.other));
            format!("{name} {handle}")
        })
        .collect()
}

fn same_threshold(model: crate::model::Threshold, written: Threshold) -> bool {
    match (model, written) {
        (crate::model::Threshold::Percent(a), Threshold::Percent(b)) => a == b,
        (crate::model::Threshold::After(a), Threshold::After(b)) => {
            a.days_and_seconds() == b.days_and_seconds()
        }
        _ => false,
    }
}

fn threshold_text(t: Threshold) -> String {
    match t {
        Threshold::Percent(p) => format!("{p}%"),
        Threshold::After(d) => d.to_string(),
    }
}

fn outcome_word(o: OutcomeKind) -> &'static str {
    match o {
        OutcomeKind::Approve => "approve",
        OutcomeKind::Reject => "reject",
        OutcomeKind::Expire => "expire",
    }
}

/// Who holds the open task: the agent with a live claim on it, else the one it is pushed to.
fn holder(world: &World, view: &InstanceView) -> Option<String> {
    use crate::runtime::Clock as _;
    let task = view.task()?;
    let now = world.clock.now();
    if task.state == TaskState::Claimed && task.lease_until.is_some_and(|l| l > now) {
        return task.claimed_by.as_deref().map(str::to_string);
    }
    task.assigned_to.as_deref().map(str::to_string)
}

/// An expected value in the form the ticket shows it (an instant as the engine writes it).
/// One element of a list field as the API writes it (as [`canonical`] does for a value).
fn element_json(view: &InstanceView, field: &str, value: Json) -> Json {
    match canonical(view, field, Json::Array(vec![value.clone()])) {
        Json::Array(mut items) if items.len() == 1 => items.pop().unwrap_or(value),
        _ => value,
    }
}

fn canonical(view: &InstanceView, field: &str, value: Json) -> Json {
    let p = view.definition().model();
    let Some(f) = p.field(field).map(|id| &p.fields[id.index()]) else {
        return value;
    };
    match crate::runtime::values::from_json(f, &value) {
        Ok(Some(v)) => crate::runtime::values::to_json(f, &v),
        _ => value,
    }
}

fn clock_check(negated: bool, c: &Clock, check: &ClockCheck) -> Result<(), StepFailure> {
    let subject = format!("the {} clock", c.clock.as_str());
    let measured = Measured {
        state: c.state,
        elapsed_seconds: c.elapsed_seconds,
        remaining_seconds: c.remaining_seconds,
        due_at: c.due_at,
    };
    measured_check(negated, &subject, &measured, check)
}

/// What a clock (of the ticket, or of its stay in a queue) has measured, as an expectation
/// reads it.
struct Measured {
    state: ClockState,
    elapsed_seconds: i64,
    remaining_seconds: i64,
    due_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// An expectation on a measuring clock, `subject` naming it in the failure ("the resolve
/// clock", "the OLA clock of queue `network`").
fn measured_check(
    negated: bool,
    subject: &str,
    c: &Measured,
    check: &ClockCheck,
) -> Result<(), StepFailure> {
    match check {
        ClockCheck::State(word) => same(negated, subject, &word.name, state_word(c.state)),
        ClockCheck::Elapsed(d) => same(
            negated,
            &format!("business time {subject} has counted"),
            &exact(d)?,
            &seconds_text(c.elapsed_seconds),
        ),
        ClockCheck::Remaining(d) => same(
            negated,
            &format!("business time left on {subject}"),
            &exact(d)?,
            &seconds_text(c.remaining_seconds),
        ),
        ClockCheck::Due(at) => {
            let expected = crate::check::parse_datetime(&at.node)
                .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
                .map(instant)
                .ok_or_else(|| StepFailure::new(format!("`{}` is not an instant", at.node)))?;
            same(
                negated,
                &format!("{subject}'s due time"),
                &expected,
                &or_none(c.due_at.map(instant).as_deref()),
            )
        }
    }
}

/// An `expect ola ...` on the OLA clock of the ticket's current stay (`current`), if it has
/// one; `expect ola none` asks that it has none.
fn ola_check(
    negated: bool,
    current: Option<&OlaClock>,
    queue: Option<&str>,
    check: &ClockCheck,
) -> Result<(), StepFailure> {
    let Some(c) = current else {
        if let ClockCheck::State(word) = check {
            return same(negated, "the OLA clock", &word.name, "none");
        }
        return Err(StepFailure::new(match queue {
            Some(q) => format!(
                "the ticket has no OLA clock (queue `{q}` has no OLA target for its priority)"
            ),
            None => "the ticket has no OLA clock (it is in no queue)".to_string(),
        }));
    };
    let subject = format!("the OLA clock of queue `{}`", c.queue);
    let measured = Measured {
        state: c.state,
        elapsed_seconds: c.elapsed_seconds,
        remaining_seconds: c.remaining_seconds,
        due_at: c.due_at,
    };
    measured_check(negated, &subject, &measured, check)
}

/// A duration of business seconds as the engine counts them: days and weeks depend on the
/// calendar, so they are refused here.
fn exact(d: &Duration) -> Result<String, StepFailure> {
    if d.weeks > 0 || d.days > 0 {
        return Err(StepFailure::new(
            "write elapsed and remaining business time in hours, minutes and seconds (a \
             business day's length depends on the calendar)",
        ));
    }
    let secs = d.hours * 3600 + d.minutes * 60 + d.seconds;
    Ok(seconds_text(i64::try_from(secs).unwrap_or(i64::MAX)))
}

/// Business seconds as a test writes them: `1h30m`, `0m`, `-15m` once past a target.
fn seconds_text(secs: i64) -> String {
    let sign = if secs < 0 { "-" } else { "" };
    let secs = secs.unsigned_abs();
    let d = Duration {
        hours: secs / 3600,
        minutes: secs % 3600 / 60,
        seconds: secs % 60,
        ..Duration::default()
    };
    format!("{sign}{d}")
}

fn state_word(s: ClockState) -> &'static str {
    match s {
        ClockState::NotStarted => "not_started",
        ClockState::Running => "running",
        ClockState::Paused => "paused",
        ClockState::Met => "met",
        ClockState::Breached => "breached",
    }
}

async fn notified(
    world: &World,
    id: InstanceId,
    negated: bool,
    recipient: &Notified,
    contains: Option<&str>,
) -> Result<(), StepFailure> {
    let filter = NotificationFilter {
        instance: Some(id),
        ..Default::default()
    };
    let rows = world.engine.notifications(&filter, 10_000, None).await?;
    let reaches = |role: &str, people: &[String]| match recipient {
        Notified::Role(r) => people.is_empty() && role == r.name,
        Notified::User(u) => {
            people.contains(&u.name)
                || (people.is_empty()
                    && world
                        .users
                        .get(&u.name)
                        .is_some_and(|roles| roles.iter().any(|r| r == role)))
        }
    };
    let found = rows
        .iter()
        .any(|n| reaches(&n.role, &n.recipients) && contains.is_none_or(|t| n.message.contains(t)));
    let who = match recipient {
        Notified::Role(r) => format!("role {}", r.name),
        Notified::User(u) => u.name.clone(),
    };
    let what = match contains {
        Some(t) => format!("a notification to {who} containing \"{t}\""),
        None => format!("a notification to {who}"),
    };
    if found == negated {
        let sent: Vec<String> = rows
            .iter()
            .map(|n| {
                let to = if n.recipients.is_empty() {
                    format!("role {}", n.role)
                } else {
                    n.recipients.join(", ")
                };
                format!("to {to}: \"{}\"", n.message)
            })
            .collect();
        return Err(StepFailure {
            message: format!(
                "{what} {}",
                if negated { "was sent" } else { "was not sent" }
            ),
            expected: Some(format!("{}{what}", if negated { "no " } else { "" })),
            actual: Some(list_or_none(&sent)),
        });
    }
    Ok(())
}

async fn approval(
    world: &World,
    id: InstanceId,
    negated: bool,
    state: &str,
    level: Option<u32>,
) -> Result<(), StepFailure> {
    let open = world.engine.approval(id).await?;
    let open_level = open.as_ref().and_then(|a| a.open_level());
    let events = world.engine.events(id).await?;
    let last_outcome = events.iter().rev().find_map(|e| match &e.kind {
        EventKind::ApprovalDecided { outcome, .. } => Some(*outcome),
        _ => None,
    });
    let actual = match (open_level, last_outcome) {
        (Some(l), _) => format!("pending level {}", l + 1),
        (None, Some(o)) => match o {
            OutcomeKind::Approve => "approved",
            OutcomeKind::Reject => "rejected",
            OutcomeKind::Expire => "expired",
        }
        .to_string(),
        (None, None) => "none".to_string(),
    };
    let expected = match (state, level) {
        ("pending", Some(l)) => format!("pending level {l}"),
        (s, _) => s.to_string(),
    };
    // `pending` without a level is any level.
    let matches = if state == "pending" && level.is_none() {
        open_level.is_some()
    } else {
        expected == actual
    };
    if matches == negated {
        return Err(StepFailure {
            message: "approval differs".into(),
            expected: Some(if negated {
                format!("not {expected}")
            } else {
                expected
            }),
            actual: Some(actual),
        });
    }
    Ok(())
}

fn same(negated: bool, what: &str, expected: &str, actual: &str) -> Result<(), StepFailure> {
    match (expected == actual, negated) {
        (true, false) | (false, true) => Ok(()),
        (false, false) => Err(StepFailure::mismatch(what, expected, actual)),
        (true, true) => Err(StepFailure::mismatch(
            what,
            format!("not {expected}"),
            actual,
        )),
    }
}

/// Like [`happened`], in the expectation's own words (`ticked` / `not ticked`).
fn happened_as(
    negated: bool,
    what: &str,
    is: bool,
    yes: &str,
    no: &str,
) -> Result<(), StepFailure> {
    if is == negated {
        return Err(StepFailure {
            message: format!("{what} is {}", if is { yes } else { no }),
            expected: Some(if negated { no } else { yes }.into()),
            actual: Some(if is { yes } else { no }.into()),
        });
    }
    Ok(())
}

fn happened(negated: bool, what: &str, did: bool) -> Result<(), StepFailure> {
    if did == negated {
        return Err(StepFailure {
            message: format!("{what} {}", if did { "happened" } else { "did not happen" }),
            expected: Some(if negated { "not fired" } else { "fired" }.into()),
            actual: Some(if did { "fired" } else { "not fired" }.into()),
        });
    }
    Ok(())
}

fn or_none(v: Option<&str>) -> String {
    v.unwrap_or("none").to_string()
}

fn list_or_none<S: AsRef<str>>(items: &[S]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items
            .iter()
            .map(AsRef::as_ref)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn json_text(v: &Json) -> String {
    match v {
        Json::Null => "none".into(),
        Json::String(s) => format!("\"{s}\""),
        Json::Array(items) => format!(
            "[{}]",
            items.iter().map(json_text).collect::<Vec<_>>().join(", ")
        ),
        other => other.to_string(),
    }
}
