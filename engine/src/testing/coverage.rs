//! What the tests of a run reached in each process: stages entered, transitions taken, routing
//! rules matched, escalation steps fired, approval rules chosen and approval outcomes, and
//! (reported, not counted in the percentage) priority table cells used.
//!
//! Gathered from the histories of every ticket a test left behind (spawned ones too), so it
//! counts what the engine did, not what the test meant to do.

use serde::Serialize;

use super::world::World;
use crate::model::{Process, Project};
use crate::runtime::explain::{priority_cell, routing_rule};
use crate::runtime::logic::replay;
use crate::runtime::types::{Event, EventKind};
use crate::store::InstanceFilter;

/// Coverage of every process of the project, in declaration order.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Coverage {
    pub processes: Vec<ProcessCoverage>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProcessCoverage {
    pub process: String,
    pub categories: Vec<Category>,
}

/// One kind of thing a process has, each with whether a test reached it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Category {
    pub name: &'static str,
    /// Whether it counts towards the process's percentage (priority cells do not: a table of
    /// 25 cells needs no 25 tests to be trusted).
    pub counted: bool,
    pub items: Vec<CoveredItem>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CoveredItem {
    pub name: String,
    pub covered: bool,
}

impl Category {
    fn new(name: &'static str, counted: bool, items: impl IntoIterator<Item = String>) -> Self {
        Category {
            name,
            counted,
            items: items
                .into_iter()
                .map(|name| CoveredItem {
                    name,
                    covered: false,
                })
                .collect(),
        }
    }
    pub fn covered(&self) -> usize {
        self.items.iter().filter(|i| i.covered).count()
    }
    fn mark(&mut self, index: usize) {
        if let Some(i) = self.items.get_mut(index) {
            i.covered = true;
        }
    }
}

const STAGES: usize = 0;
const TRANSITIONS: usize = 1;
const ROUTING: usize = 2;
const ESCALATIONS: usize = 3;
const APPROVAL_RULES: usize = 4;
const APPROVAL_OUTCOMES: usize = 5;
const PRIORITY_CELLS: usize = 6;

impl ProcessCoverage {
    fn of(p: &Process) -> Self {
        let routes = p.routing.iter().map(|r| r.text.clone());
        let steps = p.escalations.iter().flat_map(|e| {
            e.steps
                .iter()
                .map(move |s| format!("{} at {}", e.clock.as_str(), s.threshold))
        });
        let stage = |s: crate::model::StageId| p.stages[s.index()].name.clone();
        let rules = p.approvals.iter().flat_map(|a| {
            a.rules
                .iter()
                .map(move |r| format!("in {}: {}", stage(a.stage), r.text))
        });
        let outcomes = p.approvals.iter().flat_map(|a| {
            let mut o = vec![
                format!("in {}: on approve", stage(a.stage)),
                format!("in {}: on reject", stage(a.stage)),
            ];
            if a.on_expire.is_some() {
                o.push(format!("in {}: on expire", stage(a.stage)));
            }
            o
        });
        let cells = p
            .priority_table
            .iter()
            .flat_map(|t| (0..t.cells.len()).map(move |i| cell_name(p, t, i)));
        ProcessCoverage {
            process: p.name.clone(),
            categories: vec![
                Category::new("stages", true, p.stages.iter().map(|s| s.name.clone())),
                Category::new(
                    "transitions",
                    true,
                    p.transitions.iter().map(|t| t.name.clone()),
                ),
                Category::new("routing rules", true, routes),
                Category::new("escalation steps", true, steps),
                Category::new("approval rules", true, rules),
                Category::new("approval outcomes", true, outcomes),
                Category::new("priority cells", false, cells),
            ],
        }
    }

    /// Items reached and items there are, over the counted categories.
    pub fn counts(&self) -> (usize, usize) {
        self.categories
            .iter()
            .filter(|c| c.counted)
            .fold((0, 0), |(c, t), k| (c + k.covered(), t + k.items.len()))
    }

    /// The share reached, in percent (100 for a process with nothing to reach).
    pub fn percent(&self) -> f64 {
        match self.counts() {
            (_, 0) => 100.0,
            (c, t) => c as f64 * 100.0 / t as f64,
        }
    }
}

/// `impact=high, urgency=low => P2`.
fn cell_name(p: &Process, t: &crate::model::PriorityTable, index: usize) -> String {
    let mut rest = index;
    let mut values = Vec::with_capacity(t.fields.len());
    for (f, n) in t.fields.iter().zip(&t.radix).rev() {
        let n = (*n as usize).max(1);
        let v = rest % n;
        rest /= n;
        let field = &p.fields[f.index()];
        let value = match &field.ty {
            crate::model::FieldType::Enum(values) => {
                values.get(v).cloned().unwrap_or_else(|| v.to_string())
            }
            crate::model::FieldType::Bool => (v == 1).to_string(),
            _ => v.to_string(),
        };
        values.push(format!("{}={value}", field.name));
    }
    values.reverse();
    let priority = t
        .cells
        .get(index)
        .and_then(|c| p.priorities.get(c.index()))
        .cloned()
        .unwrap_or_default();
    format!("{} => {priority}", values.join(", "))
}

impl Coverage {
    pub fn new(project: &Project) -> Self {
        Coverage {
            processes: project.processes.iter().map(ProcessCoverage::of).collect(),
        }
    }

    /// Whether every process reaches `min` percent.
    pub fn meets(&self, min: f64) -> bool {
        self.processes.iter().all(|p| p.percent() + 1e-9 >= min)
    }

    /// Add what the tickets of a finished test reached.
    pub(super) async fn gather(&mut self, world: &World) {
        let Ok(views) = world
            .engine
            .list_instances(&InstanceFilter::default(), u32::MAX)
            .await
        else {
            return;
        };
        for view in views {
            let def = view.definition();
            let p = def.model();
            let Some(cov) = self.processes.iter_mut().find(|c| c.process == p.name) else {
                continue;
            };
            let Ok(events) = world.engine.events(view.id()).await else {
                continue;
            };
            mark_events(cov, p, &events);
            mark_decisions(cov, p, view.id(), def.id, &events);
        }
    }
}

/// What a history records itself: stages, transitions, escalations, approvals.
fn mark_events(cov: &mut ProcessCoverage, p: &Process, events: &[Event]) {
    let mut stage = None;
    for e in events {
        match &e.kind {
            EventKind::Created { stage: s, .. } => {
                stage = Some(*s);
                cov.categories[STAGES].mark(s.index());
            }
            EventKind::Transitioned { action, to, .. } => {
                stage = Some(*to);
                cov.categories[TRANSITIONS].mark(action.index());
                cov.categories[STAGES].mark(to.index());
            }
            EventKind::ApprovalDecided { outcome, from, to } => {
                stage = Some(*to);
                cov.categories[STAGES].mark(to.index());
                if let Some(base) = outcome_base(p, *from) {
                    let offset = match outcome {
                        crate::model::OutcomeKind::Approve => 0,
                        crate::model::OutcomeKind::Reject => 1,
                        crate::model::OutcomeKind::Expire => 2,
                    };
                    cov.categories[APPROVAL_OUTCOMES].mark(base + offset);
                }
            }
            EventKind::ApprovalRequested { rule, .. } => {
                if let Some(base) = stage.and_then(|s| rule_base(p, s)) {
                    cov.categories[APPROVAL_RULES].mark(base + *rule as usize);
                }
            }
            EventKind::Escalated { clock, step, .. } => {
                let base: usize = p
                    .escalations
                    .iter()
                    .take_while(|x| x.clock != *clock)
                    .map(|x| x.steps.len())
                    .sum();
                if p.escalations.iter().any(|x| x.clock == *clock) {
                    cov.categories[ESCALATIONS].mark(base + *step as usize);
                }
            }
            _ => {}
        }
    }
}

/// Index of the first outcome of the approval in `stage` among all outcomes of the process.
fn outcome_base(p: &Process, stage: crate::model::StageId) -> Option<usize> {
    let mut base = 0;
    for a in &p.approvals {
        if a.stage == stage {
            return Some(base);
        }
        base += 2 + usize::from(a.on_expire.is_some());
    }
    None
}

/// Index of the first rule of the approval in `stage` among all approval rules of the process.
fn rule_base(p: &Process, stage: crate::model::StageId) -> Option<usize> {
    let mut base = 0;
    for a in &p.approvals {
        if a.stage == stage {
            return Some(base);
        }
        base += a.rules.len();
    }
    None
}

/// What the engine decided from the fields at each step: the routing rule that chose the queue
/// on entering a routed stage or when fields changed in one, and the priority cell.
fn mark_decisions(
    cov: &mut ProcessCoverage,
    p: &Process,
    id: crate::runtime::InstanceId,
    def: crate::runtime::DefinitionId,
    events: &[Event],
) {
    for (i, e) in events.iter().enumerate() {
        let decides = matches!(
            e.kind,
            EventKind::Created { .. }
                | EventKind::Transitioned { .. }
                | EventKind::ApprovalDecided { .. }
                | EventKind::FieldsChanged { .. }
                | EventKind::PriorityChanged { .. }
        );
        if !decides {
            continue;
        }
        let Some(state) = replay(id, def, &events[..=i]) else {
            continue;
        };
        if let Some(cell) = priority_cell(p, &state.fields) {
            cov.categories[PRIORITY_CELLS].mark(cell);
        }
        if let Some(rule) = routing_rule(p, state.stage, &state.fields, state.priority) {
            cov.categories[ROUTING].mark(rule);
        }
    }
}
