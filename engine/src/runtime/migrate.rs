//! Moving live tickets from one version of a process to another.
//!
//! A ticket runs on the version it was created on until it ends; when a process manager
//! ships a version that changes its stages, its tickets in flight can be moved with a
//! [`Plan`]: where each stage of the old version goes, and for each service clock whether it
//! keeps its time, restarts, or is measured again under the new version.
//!
//! The plan is checked against both versions and the stages tickets occupy before anything is
//! written ([`check`]): every occupied stage mapped to a stage of the new version that is not
//! final and has a way out, every field with values either in the new version with the same
//! type or dropped on purpose, every required field of the new version given. Then each
//! ticket's move is worked out ([`move_ticket`]) as a `migrated` event holding its state under
//! the new version and what its clocks carry (see [`Migration`]); the engine commits it under
//! the ticket's version check, with its task and wake-up rewritten, one ticket at a time.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

use super::catalog::Definition;
use super::clocks;
use super::logic::{priority_of, queue_for};
use super::types::*;
use super::values;
use crate::model::{ClockKind, FieldId, FieldType, Process, StageId, Value};

/// What a process manager asks: move the live tickets of `process` on version `from` to
/// version `to` (the latest when not given).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub process: String,
    pub from: u32,
    #[serde(default)]
    pub to: Option<u32>,
    /// Stage of `from` to stage of `to`; a stage not listed goes to the stage of the same
    /// name, where `to` has one.
    #[serde(default)]
    pub stages: BTreeMap<String, String>,
    /// Per clock (`respond`, `resolve`): `keep` (the default), `restart` or `recompute`.
    #[serde(default)]
    pub clocks: BTreeMap<String, ClockMode>,
    /// Fields of `from` that `to` does not have (or has with another type) whose values are
    /// to be dropped.
    #[serde(default)]
    pub drop_fields: Vec<String>,
    /// Values for fields of `to`, given to every ticket that has none.
    #[serde(default)]
    pub set: Map<String, Json>,
}

/// Why a plan cannot be applied: a stable code and what to change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub code: &'static str,
    pub message: String,
}

impl Problem {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        Problem {
            code,
            message: message.into(),
        }
    }
}

/// A plan checked against both versions: how each part of a ticket moves.
#[derive(Clone, Debug)]
pub struct Checked {
    pub from: Arc<Definition>,
    pub to: Arc<Definition>,
    /// Per stage of `from`, where its tickets go (`None`: it is not occupied and not mapped).
    stages: Vec<Option<StageId>>,
    /// Per field of `to`, the field of `from` whose value it takes.
    fields: Vec<Option<FieldId>>,
    /// Per field of `to`, the value it gets where the ticket has none.
    set: Vec<Option<Value>>,
    modes: [ClockMode; 2],
}

/// Check `plan` for moving tickets from `from` to `to`, given how many live tickets each
/// stage of `from` holds (by name). Every problem is reported, not only the first.
pub fn check(
    plan: &Plan,
    from: Arc<Definition>,
    to: Arc<Definition>,
    occupied: &BTreeMap<String, usize>,
) -> Result<Checked, Vec<Problem>> {
    let (old, new) = (from.model(), to.model());
    let mut problems = Vec::new();
    if from.id == to.id {
        problems.push(Problem::new(
            "same-version",
            format!(
                "the plan moves `{}` version {} to itself",
                plan.process, from.version
            ),
        ));
    }

    for (name, target) in &plan.stages {
        if old.stage(name).is_none() {
            problems.push(Problem::new(
                "unknown-stage",
                format!("version {} has no stage `{name}`", from.version),
            ));
        }
        if new.stage(target).is_none() {
            problems.push(Problem::new(
                "unknown-stage",
                format!(
                    "version {} has no stage `{target}` (to map `{name}` to)",
                    to.version
                ),
            ));
        }
    }
    let mut stages = vec![None; old.stages.len()];
    for (i, stage) in old.stages.iter().enumerate() {
        let count = occupied.get(&stage.name).copied().unwrap_or(0);
        let target = match plan.stages.get(&stage.name) {
            Some(t) => new.stage(t),
            None => new.stage(&stage.name),
        };
        let Some(target) = target else {
            if count > 0 {
                problems.push(Problem::new(
                    "unmapped-stage",
                    format!(
                        "{count} ticket{} in stage `{}`, which version {} does not have; map it in `stages`",
                        plural(count),
                        stage.name,
                        to.version
                    ),
                ));
            }
            continue;
        };
        match no_way_out(new, target) {
            // Unoccupied and not asked for: a ticket reaching it later is left where it is.
            Some(_) if count == 0 && !plan.stages.contains_key(&stage.name) => {}
            Some(why) => problems.push(Problem::new(
                "no-way-out",
                format!(
                    "stage `{}` goes to `{}`, {why}",
                    stage.name,
                    new.stages[target.index()].name
                ),
            )),
            None => stages[i] = Some(target),
        }
    }

    let mut fields = vec![None; new.fields.len()];
    for (source, f) in old.fields.iter().enumerate() {
        let dropped = plan.drop_fields.contains(&f.name);
        match new.field(&f.name) {
            Some(id) if same_type(&f.ty, &new.fields[id.index()].ty) => {
                if dropped {
                    problems.push(Problem::new(
                        "field-kept",
                        format!(
                            "field `{}` is in `drop_fields` but version {} keeps it with the same type",
                            f.name, to.version
                        ),
                    ));
                }
                fields[id.index()] = Some(FieldId(source as u32));
            }
            Some(id) if !dropped => problems.push(Problem::new(
                "field-type",
                format!(
                    "field `{}` is {} in version {} and {} in version {}; add it to `drop_fields` to drop its values",
                    f.name,
                    f.ty,
                    from.version,
                    new.fields[id.index()].ty,
                    to.version
                ),
            )),
            None if !dropped => problems.push(Problem::new(
                "field-dropped",
                format!(
                    "version {} has no field `{}`; add it to `drop_fields` to drop its values",
                    to.version, f.name
                ),
            )),
            _ => {}
        }
    }
    for name in &plan.drop_fields {
        if old.field(name).is_none() {
            problems.push(Problem::new(
                "unknown-field",
                format!("version {} has no field `{name}` to drop", from.version),
            ));
        }
    }

    let mut set = vec![None; new.fields.len()];
    for (name, json) in &plan.set {
        match new.field(name) {
            None => problems.push(Problem::new(
                "unknown-field",
                format!("version {} has no field `{name}` to set", to.version),
            )),
            Some(id) => match values::from_json(&new.fields[id.index()], json) {
                Ok(v) => set[id.index()] = v,
                Err(e) => problems.push(Problem::new(
                    "invalid-value",
                    format!("`set` of `{name}`: {}", e.message),
                )),
            },
        }
    }
    for (i, f) in new.fields.iter().enumerate() {
        if f.required && f.default.is_none() && fields[i].is_none() && set[i].is_none() {
            problems.push(Problem::new(
                "field-required",
                format!(
                    "field `{}` is required in version {}, which tickets of version {} do not have; give it in `set`",
                    f.name, to.version, from.version
                ),
            ));
        }
    }

    let mut modes = [ClockMode::Keep; 2];
    for (name, mode) in &plan.clocks {
        match name.as_str() {
            "respond" => modes[0] = *mode,
            "resolve" => modes[1] = *mode,
            other => problems.push(Problem::new(
                "unknown-clock",
                format!("`{other}` is not a clock (clocks: respond, resolve)"),
            )),
        }
    }

    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Checked {
        from,
        to,
        stages,
        fields,
        set,
        modes,
    })
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// Types equal, or an enum whose values the new one all has (values are moved by name).
fn same_type(old: &FieldType, new: &FieldType) -> bool {
    match (old, new) {
        (FieldType::Enum(a), FieldType::Enum(b)) => a.iter().all(|v| b.contains(v)),
        (FieldType::List(a), FieldType::List(b)) => same_type(a, b),
        (a, b) => a == b,
    }
}

/// Why a live ticket could not go on from `stage`, if it could not.
fn no_way_out(p: &Process, stage: StageId) -> Option<&'static str> {
    let s = &p.stages[stage.index()];
    if s.is_final {
        return Some("a final stage: live tickets would end without being worked");
    }
    let leaves = p
        .transitions
        .iter()
        .any(|t| t.from.contains(&stage) && t.to != stage)
        || p.approval_in(stage).is_some();
    (!leaves).then_some("which has no way out")
}

/// One ticket, as it reads before or after the move.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Side {
    pub version: u32,
    pub stage: String,
    pub queue: Option<String>,
    pub priority: Option<String>,
    pub clocks: Vec<ClockSide>,
}

/// A clock as a ticket's side shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClockSide {
    pub clock: ClockKind,
    pub state: clocks::ClockState,
    /// Business seconds left to its target (negative once breached).
    pub remaining_seconds: i64,
}

/// One ticket's move.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TicketMove {
    pub instance: InstanceId,
    pub before: Side,
    pub after: Side,
}

impl Checked {
    /// Where a ticket in `stage` of `from` goes; `None` for a stage the plan does not map
    /// (`check` refuses a plan leaving an occupied stage unmapped, so only a ticket that
    /// reached such a stage after the check can be in one: it is left as it is).
    pub fn target(&self, stage: StageId) -> Option<StageId> {
        self.stages.get(stage.index()).copied().flatten()
    }
}

/// The migration event for a ticket of `checked.from` (with its history) at `now`, and how
/// the ticket reads before and after; `None` when its stage is not mapped (see
/// [`Checked::target`]).
pub fn move_ticket(
    checked: &Checked,
    inst: &Instance,
    events: &[Event],
    now: DateTime<Utc>,
) -> Option<(Migration, TicketMove)> {
    let (old, new) = (checked.from.model(), checked.to.model());
    let stage = checked.target(inst.stage)?;

    let mut fields: Vec<Option<Value>> = new.fields.iter().map(|f| f.default.clone()).collect();
    for (i, slot) in fields.iter_mut().enumerate() {
        if let Some(source) = checked.fields[i] {
            let moved = inst.fields[source.index()]
                .as_ref()
                .map(|v| values::to_json(&old.fields[source.index()], v))
                .and_then(|json| values::from_json(&new.fields[i], &json).ok().flatten());
            if moved.is_some() {
                *slot = moved;
            }
        }
        if slot.is_none() {
            slot.clone_from(&checked.set[i]);
        }
    }
    let priority = match new.priority_table.is_some() {
        true => priority_of(new, &fields),
        false => inst
            .priority
            .and_then(|p| old.priorities.get(p.index()))
            .and_then(|name| new.priorities.iter().position(|n| n == name))
            .map(|i| crate::model::PriorityId(i as u32)),
    };
    let queue = queue_for(new, stage, &fields, priority);
    let migration = Migration {
        from: checked.from.id,
        from_version: checked.from.version,
        from_stage: old.stages[inst.stage.index()].name.as_str().into(),
        stage,
        fields,
        priority,
        queue,
        entered_at: entered_at(events).unwrap_or(inst.updated_at),
        clocks: clocks::carry(&checked.from, events, now, checked.modes),
    };
    let after_events = [Event {
        seq: inst.version + 1,
        at: now,
        actor: Actor::system().name,
        kind: EventKind::Migrated(Box::new(migration.clone())),
        reason: None,
    }];
    let moved = TicketMove {
        instance: inst.id,
        before: side(
            &checked.from,
            inst.stage,
            inst.queue,
            inst.priority,
            events,
            now,
        ),
        after: side(&checked.to, stage, queue, priority, &after_events, now),
    };
    Some((migration, moved))
}

/// When the ticket entered the stage it is in.
fn entered_at(events: &[Event]) -> Option<DateTime<Utc>> {
    current_epoch(events)
        .iter()
        .rev()
        .find_map(|e| match &e.kind {
            EventKind::Created { .. } => Some(e.at),
            EventKind::Migrated(m) => Some(m.entered_at),
            EventKind::Transitioned { from, to, .. } if from != to => Some(e.at),
            EventKind::ApprovalDecided { .. } => Some(e.at),
            _ => None,
        })
}

fn side(
    def: &Definition,
    stage: StageId,
    queue: Option<crate::model::QueueId>,
    priority: Option<crate::model::PriorityId>,
    events: &[Event],
    now: DateTime<Utc>,
) -> Side {
    Side {
        version: def.version,
        stage: super::codec::stage_name(def, stage).to_string(),
        queue: super::codec::queue_name(def, queue).map(str::to_string),
        priority: super::codec::priority_name(def, priority).map(str::to_string),
        clocks: clocks::clocks(def, events, now)
            .into_iter()
            .map(|c| ClockSide {
                clock: c.clock,
                state: c.state,
                remaining_seconds: c.remaining_seconds,
            })
            .collect(),
    }
}

/// What a migration did, or (a dry run) would do.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    pub process: String,
    pub from: u32,
    pub to: u32,
    pub dry_run: bool,
    /// Every live ticket of `from`, as it reads before and after.
    pub tickets: Vec<TicketMove>,
    /// Tickets moved (0 on a dry run).
    pub migrated: usize,
    /// Tickets listed that had left `from` (ended, or moved by someone else) by the time
    /// their move was written, and were left as they were.
    pub skipped: Vec<InstanceId>,
}
