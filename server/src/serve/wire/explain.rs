//! An instance explained: why its priority, queue, clocks and approval are what they are,
//! and which actions the caller may take now.

use chrono::{DateTime, Utc};
use itsmflow_engine::runtime::explain as engine;
use serde::Serialize;
use utoipa::ToSchema;

use super::instances::{Clock, OlaClock};

/// Why an instance is as it is, now, and what the caller may do with it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Explanation {
    pub instance: i64,
    pub process: String,
    pub definition_version: u32,
    pub stage: String,
    /// The instant explained.
    pub at: DateTime<Utc>,
    pub priority: PriorityExplanation,
    pub queue: QueueExplanation,
    pub clocks: Vec<ClockExplanation>,
    /// The OLA clock of the ticket's stay in its current queue, naming the target row that
    /// applies (`row`: the priority's or `default`; `tier` when the queue takes its tier's
    /// targets); null when the queue agrees no OLA target for the ticket.
    #[schema(required = true)]
    pub ola: Option<OlaClock>,
    /// The approval of the stage; null if the stage asks none.
    #[schema(required = true)]
    pub approval: Option<ApprovalExplanation>,
    pub actions: ActionsExplanation,
}

impl From<&engine::Explanation> for Explanation {
    fn from(e: &engine::Explanation) -> Self {
        Explanation {
            instance: e.instance.0,
            process: e.process.clone(),
            definition_version: e.definition_version,
            stage: e.stage.clone(),
            at: e.at,
            priority: (&e.priority).into(),
            queue: (&e.queue).into(),
            clocks: e.clocks.iter().map(ClockExplanation::from).collect(),
            ola: e.ola.as_ref().map(OlaClock::from),
            approval: e.approval.as_ref().map(ApprovalExplanation::from),
            actions: (&e.actions).into(),
        }
    }
}

/// Where the priority comes from.
#[derive(Debug, Serialize, ToSchema)]
pub struct PriorityExplanation {
    /// The instance's priority now.
    #[schema(required = true)]
    pub priority: Option<String>,
    pub source: PrioritySource,
    /// The fields the table reads, in its order, with their values (null: unset).
    pub reads: Vec<FieldRead>,
    /// The cell's index in the table (row-major over `reads`, 0 for the first).
    #[schema(required = true)]
    pub cell: Option<usize>,
    /// The first field's value: the cell's row as written.
    #[schema(required = true)]
    pub row: Option<String>,
    /// The second field's value: the cell's column.
    #[schema(required = true)]
    pub column: Option<String>,
    /// The priority the cell gives.
    #[schema(required = true)]
    pub table_priority: Option<String>,
}

/// `escalation`: the last change of priority was an escalation's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PrioritySource {
    Table,
    NoTable,
    FieldsNotSet,
    Escalation,
}

/// A field the priority table reads, with its value (null: unset).
#[derive(Debug, Serialize, ToSchema)]
pub struct FieldRead {
    pub field: String,
    #[schema(required = true)]
    pub value: Option<String>,
}

impl From<&engine::PriorityWhy> for PriorityExplanation {
    fn from(p: &engine::PriorityWhy) -> Self {
        PriorityExplanation {
            priority: p.priority.clone(),
            source: match p.source {
                engine::PrioritySource::Table => PrioritySource::Table,
                engine::PrioritySource::NoTable => PrioritySource::NoTable,
                engine::PrioritySource::FieldsNotSet => PrioritySource::FieldsNotSet,
                engine::PrioritySource::Escalation => PrioritySource::Escalation,
            },
            reads: p
                .reads
                .iter()
                .map(|r| FieldRead {
                    field: r.field.clone(),
                    value: r.value.clone(),
                })
                .collect(),
            cell: p.cell,
            row: p.row.clone(),
            column: p.column.clone(),
            table_priority: p.table_priority.clone(),
        }
    }
}

/// Where the queue comes from.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueueExplanation {
    #[schema(required = true)]
    pub queue: Option<String>,
    pub source: QueueSource,
    /// For a stage that queues by routing: the routing rule that matches now (1 for the
    /// first).
    #[schema(required = true, minimum = 1)]
    pub rule: Option<usize>,
    /// That rule as written (`when category in (network.*) => network`).
    #[schema(required = true)]
    pub condition: Option<String>,
}

/// `stage`: the stage names its queue; `routing`: a routing rule picked it; `escalation`: the
/// last move of queue was an escalation's; `none`: the stage has no queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum QueueSource {
    Stage,
    Routing,
    Escalation,
    None,
}

impl From<&engine::QueueWhy> for QueueExplanation {
    fn from(q: &engine::QueueWhy) -> Self {
        QueueExplanation {
            queue: q.queue.clone(),
            source: match q.source {
                engine::QueueSource::Stage => QueueSource::Stage,
                engine::QueueSource::Routing => QueueSource::Routing,
                engine::QueueSource::Escalation => QueueSource::Escalation,
                engine::QueueSource::None => QueueSource::None,
            },
            rule: q.rule,
            condition: q.condition.clone(),
        }
    }
}

/// A clock as `GET /v1/instances/{id}/clocks` shows it, with where its target comes from, its
/// calendar and its pauses.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClockExplanation {
    #[serde(flatten)]
    pub clock: Clock,
    /// The priority whose target applies.
    pub priority: String,
    pub target_from: TargetSource,
    /// The service whose target applies, when `target_from` is `service`.
    #[schema(required = true)]
    pub service: Option<String>,
    /// The calendar the clock runs on (`24x7`: always open).
    pub calendar: String,
    pub pauses: Vec<Pause>,
}

/// `service`: the instance's service agrees its own target for that priority.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TargetSource {
    Priority,
    Service,
}

/// A pause of the clock.
#[derive(Debug, Serialize, ToSchema)]
pub struct Pause {
    /// The stage that paused it.
    pub stage: String,
    pub from: DateTime<Utc>,
    /// Null while still paused.
    #[schema(required = true)]
    pub until: Option<DateTime<Utc>>,
    /// Wall-clock seconds (until now for an open pause).
    pub seconds: i64,
    /// Business seconds on the clock's calendar.
    pub business_seconds: i64,
}

impl From<&engine::ClockWhy> for ClockExplanation {
    fn from(c: &engine::ClockWhy) -> Self {
        ClockExplanation {
            clock: Clock::from(&c.clock),
            priority: c.priority.clone(),
            target_from: match c.target_from {
                engine::TargetSource::Priority => TargetSource::Priority,
                engine::TargetSource::Service => TargetSource::Service,
            },
            service: c.service.clone(),
            calendar: c.calendar.clone(),
            pauses: c
                .pauses
                .iter()
                .map(|p| Pause {
                    stage: p.stage.clone(),
                    from: p.from,
                    until: p.until,
                    seconds: p.seconds,
                    business_seconds: p.business_seconds,
                })
                .collect(),
        }
    }
}

/// Which rule chose the approval plan, the open level and who is still to vote.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApprovalExplanation {
    /// The approval rule whose plan applies (1 for the first).
    #[schema(required = true, minimum = 1)]
    pub rule: Option<u32>,
    /// That rule as written.
    #[schema(required = true)]
    pub plan: Option<String>,
    pub explain: String,
    /// 1 for the first.
    #[schema(required = true, minimum = 1)]
    pub open_level: Option<u32>,
    /// Levels in the plan.
    pub levels: u32,
    /// What the open level asks, as written.
    #[schema(required = true)]
    pub requires: Option<String>,
    pub waiting_for: Vec<String>,
}

impl From<&engine::ApprovalWhy> for ApprovalExplanation {
    fn from(a: &engine::ApprovalWhy) -> Self {
        ApprovalExplanation {
            rule: a.rule,
            plan: a.plan.clone(),
            explain: a.explain.clone(),
            open_level: a.open_level,
            levels: a.levels,
            requires: a.requires.clone(),
            waiting_for: a.waiting_for.clone(),
        }
    }
}

/// The actions out of the current stage, for the caller.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActionsExplanation {
    pub user: String,
    pub roles: Vec<String>,
    pub items: Vec<ActionExplanation>,
}

/// One action.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActionExplanation {
    pub action: String,
    #[schema(required = true)]
    pub label: Option<String>,
    /// The stage it leads to.
    pub to: String,
    /// Whether the caller may perform it now, without giving fields.
    pub available: bool,
    /// When the engine performs it by itself (`after 3d`, `at planned_start`).
    #[schema(required = true)]
    pub automatic: Option<String>,
    pub refusals: Vec<ActionRefusal>,
}

impl From<&engine::ActionsWhy> for ActionsExplanation {
    fn from(a: &engine::ActionsWhy) -> Self {
        ActionsExplanation {
            user: a.user.clone(),
            roles: a.roles.clone(),
            items: a
                .items
                .iter()
                .map(|i| ActionExplanation {
                    action: i.action.clone(),
                    label: i.label.clone(),
                    to: i.to.clone(),
                    available: i.available,
                    automatic: i.automatic.clone(),
                    refusals: i.refusals.iter().map(ActionRefusal::from).collect(),
                })
                .collect(),
        }
    }
}

/// One reason an action is refused, as performing it would give it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActionRefusal {
    /// `stage`, `who` (a role or person it needs), `fields` (required fields not set), `rule`
    /// (a guard rule does not hold or failed), `condition` (its `when` does not hold),
    /// `invalid` (any other).
    pub kind: RefusalKind,
    pub message: String,
    /// `who`: the roles that may.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// `who`: the people the ticket names who may (`caller`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub people: Vec<String>,
    /// `fields`: the required fields not set.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
    /// `rule`: the guard rule.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// `condition`: the `when` as written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
}

/// Why an action is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RefusalKind {
    Stage,
    Who,
    Fields,
    Rule,
    Condition,
    Invalid,
}

impl RefusalKind {
    /// The kind the engine names `name`; one the API does not know is `invalid` ("any other").
    fn named(name: &str) -> Self {
        match name {
            "stage" => RefusalKind::Stage,
            "who" => RefusalKind::Who,
            "fields" => RefusalKind::Fields,
            "rule" => RefusalKind::Rule,
            "condition" => RefusalKind::Condition,
            _ => RefusalKind::Invalid,
        }
    }
}

impl From<&engine::Refusal> for ActionRefusal {
    fn from(r: &engine::Refusal) -> Self {
        ActionRefusal {
            kind: RefusalKind::named(r.kind),
            message: r.message.clone(),
            roles: r.roles.clone(),
            people: r.people.clone(),
            fields: r.fields.clone(),
            rule: r.rule.clone(),
            condition: r.condition.clone(),
        }
    }
}
