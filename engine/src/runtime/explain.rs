//! Why a ticket is as it is: which priority table cell gave its priority, which routing rule
//! its queue, what target and calendar its clocks run on and what paused them, which approval
//! rule chose its plan, and which actions the caller may take now and why not the others.
//!
//! One job: build an [`Explanation`] from what the engine read (the instance, its history,
//! its approval, what the caller holds). Every answer comes from the function the runtime
//! decides with (`logic`, `clocks`, `approval`), so the explanation cannot disagree with what
//! the engine does.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::approval::{self, ApprovalState};
use super::catalog::Definition;
use super::clocks::{self, ClockBasis, PauseSpent};
use super::codec;
use super::error::EngineError;
use super::logic;
use super::types::{Actor, Cause, Event, EventKind, Instance, InstanceId};
use crate::model::{
    CalendarRef, FieldType, PriorityId, Process, StageId, StageQueue, Transition, Value,
};

pub use super::logic::Fields;

/// The index (in `p.routing`) of the routing rule that picks the queue of a ticket in `stage`
/// with these fields and priority: the first whose condition holds (`otherwise` always
/// does). `None` when the stage does not queue by routing, or no rule matches.
pub fn routing_rule(
    p: &Process,
    stage: StageId,
    fields: &Fields,
    priority: Option<PriorityId>,
) -> Option<usize> {
    if p.stages.get(stage.index())?.queue != Some(StageQueue::ByRouting) {
        return None;
    }
    p.routing.iter().position(|r| {
        r.condition
            .as_ref()
            .is_none_or(|c| logic::holds(c, fields, priority))
    })
}

/// The index (in the priority table's `cells`) of the cell these fields select; `None`
/// without a table or while a field it reads is unset.
pub fn priority_cell(p: &Process, fields: &Fields) -> Option<usize> {
    let table = p.priority_table.as_ref()?;
    table.cell(|f| logic::table_value(fields, f))
}

/// Why a ticket is as it is, at one instant, for one caller.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Explanation {
    pub instance: InstanceId,
    pub process: String,
    pub definition_version: u32,
    pub stage: String,
    pub at: DateTime<Utc>,
    pub priority: PriorityWhy,
    pub queue: QueueWhy,
    pub clocks: Vec<ClockWhy>,
    /// The OLA clock of the ticket's stay in its current queue, with the target row that
    /// applies (the priority's or `default`, the queue's own or its tier's); `None` when the
    /// queue agrees no OLA target for the ticket.
    pub ola: Option<super::ola::OlaClock>,
    /// The approval of the stage, if it asks one.
    pub approval: Option<ApprovalWhy>,
    pub actions: ActionsWhy,
}

/// Where the ticket's priority comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PrioritySource {
    /// A cell of the priority table.
    Table,
    /// The process has no priority table.
    NoTable,
    /// A field the table reads is not set.
    FieldsNotSet,
    /// An escalation raised it (the last change of priority was an escalation's).
    Escalation,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PriorityWhy {
    /// The ticket's priority now.
    pub priority: Option<String>,
    pub source: PrioritySource,
    /// The fields the table reads, in its order, with their values.
    pub reads: Vec<FieldRead>,
    /// The cell's index in the table (row-major over `reads`), once every field is set.
    pub cell: Option<usize>,
    /// The cell's row and column as written: the first field's value, the second's.
    pub row: Option<String>,
    pub column: Option<String>,
    /// The priority the cell gives (the ticket's, unless an escalation raised it).
    pub table_priority: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldRead {
    pub field: String,
    /// As the API shows it; `None` while unset.
    pub value: Option<String>,
}

/// Where the ticket's queue comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueSource {
    /// The stage names its queue.
    Stage,
    /// A routing rule picked it.
    Routing,
    /// An escalation moved the ticket there (the last move of queue was an escalation's).
    Escalation,
    /// The stage has no queue.
    None,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct QueueWhy {
    pub queue: Option<String>,
    pub source: QueueSource,
    /// For a stage that queues by routing: the rule that matches now (1 for the first).
    pub rule: Option<usize>,
    /// That rule as written (`when category in (network.*) => network`, `otherwise => ...`).
    pub condition: Option<String>,
}

/// Where a clock's target comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetSource {
    /// The process's targets, by the ticket's priority.
    Priority,
    /// The ticket's service agrees its own target for that priority, overriding the process's.
    Service,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClockWhy {
    /// The clock as `GET /v1/instances/{id}/clocks` shows it: target, elapsed and remaining
    /// business time, state, due instant, escalation points.
    #[serde(flatten)]
    pub clock: clocks::Clock,
    /// The priority whose target applies.
    pub priority: String,
    pub target_from: TargetSource,
    /// The service whose target applies, when `target_from` is `service`.
    pub service: Option<String>,
    /// The calendar the clock runs on (`24x7` for always open).
    pub calendar: String,
    pub pauses: Vec<PauseWhy>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PauseWhy {
    /// The stage that paused the clock.
    pub stage: String,
    pub from: DateTime<Utc>,
    /// When the clock ran again (or stopped); `None` while still paused.
    pub until: Option<DateTime<Utc>>,
    /// Wall-clock seconds paused (until now, for an open pause).
    pub seconds: i64,
    /// Business seconds on the clock's calendar the pause held it.
    pub business_seconds: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ApprovalWhy {
    /// The rule whose plan applies (1 for the first), once chosen.
    pub rule: Option<u32>,
    /// That rule as written.
    pub plan: Option<String>,
    /// Why the plan applies, in words.
    pub explain: String,
    /// The level waiting for votes (1 for the first), and how many the plan has.
    pub open_level: Option<u32>,
    pub levels: u32,
    /// What the open level asks, as written (`any 1 of role change_manager`).
    pub requires: Option<String>,
    /// Who is still to vote on the open level.
    pub waiting_for: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ActionsWhy {
    /// Whom the actions are explained for.
    pub user: String,
    pub roles: Vec<String>,
    /// The actions out of the current stage, in declaration order (none: the ticket waits
    /// for nothing anyone can do here).
    pub items: Vec<ActionWhy>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ActionWhy {
    pub action: String,
    pub label: Option<String>,
    /// The stage it leads to.
    pub to: String,
    /// Whether the caller may perform it now (without giving fields).
    pub available: bool,
    /// When the engine performs it by itself (`after 3d`, `at planned_start`).
    pub automatic: Option<String>,
    /// Every reason it would be refused now, as performing it would say.
    pub refusals: Vec<Refusal>,
}

/// One reason an action is refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Refusal {
    /// `stage`, `who` (a role or person it needs), `fields` (required fields not set),
    /// `rule` (a guard rule does not hold or failed), `condition` (its `when` does not hold),
    /// `invalid` (any other).
    pub kind: &'static str,
    /// The refusal as performing the action gives it.
    pub message: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub people: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
}

impl Refusal {
    /// The refusal `perform` would return, as data.
    fn of(e: EngineError) -> Self {
        let message = e.to_string();
        let mut r = Refusal {
            kind: "invalid",
            message,
            roles: Vec::new(),
            people: Vec::new(),
            fields: Vec::new(),
            rule: None,
            condition: None,
        };
        match e {
            EngineError::ActionNotAllowed { .. } => r.kind = "stage",
            EngineError::Forbidden { roles, people, .. } => {
                r.kind = "who";
                r.roles = roles;
                r.people = people;
            }
            EngineError::MissingFields { fields, .. } => {
                r.kind = "fields";
                r.fields = fields;
            }
            EngineError::GuardFailed { rule, .. } | EngineError::RuleFailed { rule, .. } => {
                r.kind = "rule";
                r.rule = Some(rule);
            }
            EngineError::ConditionFailed { condition, .. } => {
                r.kind = "condition";
                r.condition = Some(condition);
            }
            _ => {}
        }
        r
    }
}

/// What the engine read to explain a ticket.
pub struct Facts<'a> {
    pub def: &'a Arc<Definition>,
    pub inst: &'a Instance,
    pub events: &'a [Event],
    pub approval: Option<ApprovalState>,
    pub actor: &'a Actor,
    pub now: DateTime<Utc>,
}

/// Put the parts together; `refusals` gives, per action out of the stage, why it is refused
/// (the engine's decision, see `Logic::refusals`).
pub fn explain(
    facts: &Facts<'_>,
    mut refusals: impl FnMut(&Transition) -> Result<Vec<EngineError>, EngineError>,
) -> Result<Explanation, EngineError> {
    let (def, inst) = (facts.def, facts.inst);
    let p = def.model();
    let mut items = Vec::new();
    for t in p
        .transitions
        .iter()
        .filter(|t| t.from.contains(&inst.stage))
    {
        items.push(action(p, t, refusals(t)?));
    }
    Ok(Explanation {
        instance: inst.id,
        process: p.name.clone(),
        definition_version: def.version,
        stage: codec::stage_name(def, inst.stage).to_string(),
        at: facts.now,
        priority: priority(def, inst, facts.events),
        queue: queue(def, inst, facts.events),
        clocks: clocks_of(def, facts.events, facts.now),
        ola: super::ola::ola_clocks(def, facts.events, facts.now)
            .pop()
            .filter(|c| c.left_at.is_none()),
        approval: facts.approval.as_ref().map(|a| approval_of(def, a)),
        actions: ActionsWhy {
            user: facts.actor.name.to_string(),
            roles: facts.actor.roles.clone(),
            items,
        },
    })
}

/// A field's value as the API shows it.
fn shown(p: &Process, f: crate::model::FieldId, v: Option<&Value>) -> Option<String> {
    let field = p.fields.get(f.index())?;
    Some(match super::values::to_json(field, v?) {
        serde_json::Value::String(s) => s,
        other => other.to_string(),
    })
}

/// Whether the latest event of the kind `pick` finds was caused by an escalation.
fn last_cause(events: &[Event], pick: impl Fn(&EventKind) -> Option<Cause>) -> Option<Cause> {
    events.iter().rev().find_map(|e| pick(&e.kind))
}

fn priority(def: &Definition, inst: &Instance, events: &[Event]) -> PriorityWhy {
    let p = def.model();
    let name = |id: Option<PriorityId>| codec::priority_name(def, id).map(str::to_string);
    let mut why = PriorityWhy {
        priority: name(inst.priority),
        source: PrioritySource::NoTable,
        reads: Vec::new(),
        cell: None,
        row: None,
        column: None,
        table_priority: None,
    };
    let Some(table) = &p.priority_table else {
        return why;
    };
    why.reads = table
        .fields
        .iter()
        .map(|f| FieldRead {
            field: p.fields[f.index()].name.clone(),
            value: shown(p, *f, inst.fields.get(f.index()).and_then(Option::as_ref)),
        })
        .collect();
    why.cell = priority_cell(p, &inst.fields);
    let Some(cell) = why.cell else {
        why.source = PrioritySource::FieldsNotSet;
        return why;
    };
    why.row = why.reads.first().and_then(|r| r.value.clone());
    why.column = why.reads.get(1).and_then(|r| r.value.clone());
    why.table_priority = name(table.cells.get(cell).copied());
    let escalated = last_cause(events, |k| match k {
        EventKind::PriorityChanged { cause, .. } => Some(*cause),
        _ => None,
    }) == Some(Cause::Escalation);
    why.source = match escalated {
        true => PrioritySource::Escalation,
        false => PrioritySource::Table,
    };
    why
}

fn queue(def: &Definition, inst: &Instance, events: &[Event]) -> QueueWhy {
    let p = def.model();
    let mut why = QueueWhy {
        queue: codec::queue_name(def, inst.queue).map(str::to_string),
        source: QueueSource::None,
        rule: None,
        condition: None,
    };
    let Some(by) = p.stages[inst.stage.index()].queue else {
        return why;
    };
    why.source = match by {
        StageQueue::Named(_) => QueueSource::Stage,
        StageQueue::ByRouting => QueueSource::Routing,
    };
    if let Some(i) = routing_rule(p, inst.stage, &inst.fields, inst.priority) {
        why.rule = Some(i + 1);
        why.condition = p.routing.get(i).map(|r| r.text.clone());
    }
    let escalated = last_cause(events, |k| match k {
        EventKind::Routed { cause, .. } => Some(*cause),
        _ => None,
    }) == Some(Cause::Escalation);
    if escalated && inst.queue.is_some() {
        why.source = QueueSource::Escalation;
    }
    why
}

fn calendar_name(def: &Definition, c: CalendarRef) -> String {
    match c {
        CalendarRef::AlwaysOpen => "24x7".to_string(),
        CalendarRef::Named(id) => def
            .project
            .calendars
            .get(id.index())
            .map(|c| c.name.clone())
            .unwrap_or_default(),
    }
}

fn clocks_of(def: &Definition, events: &[Event], now: DateTime<Utc>) -> Vec<ClockWhy> {
    let p = def.model();
    clocks::explained(def, events, now)
        .into_iter()
        .map(|b: ClockBasis| {
            let service = b.service.and_then(|i| {
                let st = p.service_targets.as_ref()?;
                match &p.fields.get(st.field.index())?.ty {
                    FieldType::Enum(values) => values.get(i as usize).cloned(),
                    _ => None,
                }
            });
            ClockWhy {
                priority: codec::priority_name(def, Some(b.priority))
                    .unwrap_or_default()
                    .to_string(),
                target_from: match b.service {
                    Some(_) => TargetSource::Service,
                    None => TargetSource::Priority,
                },
                service,
                calendar: calendar_name(def, b.calendar),
                pauses: b.pauses.iter().map(|s| pause(def, s)).collect(),
                clock: b.clock,
            }
        })
        .collect()
}

fn pause(def: &Definition, s: &PauseSpent) -> PauseWhy {
    PauseWhy {
        stage: codec::stage_name(def, s.pause.stage).to_string(),
        from: s.pause.from,
        until: s.pause.until,
        seconds: s.seconds,
        business_seconds: s.business_seconds,
    }
}

fn approval_of(def: &Arc<Definition>, state: &ApprovalState) -> ApprovalWhy {
    let p = def.model();
    let view = super::view::ApprovalView::new(def.clone(), state.clone(), None);
    let rule = state
        .rule
        .and_then(|r| p.approval_in(state.stage)?.rules.get(r as usize));
    let requires = state.open.as_ref().and_then(|open| {
        let level = rule?.levels.get(open.index as usize)?;
        Some(approval::describe_level(def, &level.groups))
    });
    ApprovalWhy {
        rule: state.rule.map(|r| r + 1),
        plan: rule.map(|r| r.text.clone()),
        explain: view.explain(),
        open_level: view.open_level().map(|l| l + 1),
        levels: state.levels,
        requires,
        waiting_for: view.waiting_for().into_iter().map(str::to_string).collect(),
    }
}

fn action(p: &Process, t: &Transition, refusals: Vec<EngineError>) -> ActionWhy {
    let automatic = match (t.after, t.at) {
        (Some(d), _) => Some(format!("after {d}")),
        (None, Some(f)) => p.fields.get(f.index()).map(|f| format!("at {}", f.name)),
        (None, None) => None,
    };
    ActionWhy {
        action: t.name.clone(),
        label: t.label.clone(),
        to: p.stages[t.to.index()].name.clone(),
        available: refusals.is_empty(),
        automatic,
        refusals: refusals.into_iter().map(Refusal::of).collect(),
    }
}
