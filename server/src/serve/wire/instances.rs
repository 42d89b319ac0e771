//! Instances (tickets): the ticket itself, its pages, history, links and clocks, and the
//! bodies that raise, change, comment on and link one.

use chrono::{DateTime, Utc};
use itsmflow_engine::runtime::clocks::{self, ClockState as EngineClockState};
use itsmflow_engine::runtime::ola;
use itsmflow_engine::runtime::{EventView, InstanceView, LinkView};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};
use utoipa::{IntoParams, ToSchema};

use super::approvals::Approval;
use super::tasks::Task;

/// An instance of a process (a ticket).
#[derive(Debug, Serialize, ToSchema)]
pub struct Instance {
    pub id: i64,
    #[schema(examples("incident"))]
    pub process: String,
    /// The version of the process definition the instance is pinned to.
    #[schema(minimum = 1)]
    pub definition_version: u32,
    #[schema(examples("triage"))]
    pub stage: String,
    /// Field values by name, as JSON; unset fields are absent or null; a `list(T)` field is an
    /// array.
    #[schema(value_type = Object)]
    pub fields: Map<String, Json>,
    /// The priority's name, e.g. `P3`.
    #[schema(required = true, examples("P3"))]
    pub priority: Option<String>,
    /// The queue the instance waits in, if any.
    #[schema(required = true, examples("service_desk"))]
    pub queue: Option<String>,
    /// The optimistic concurrency token: the `seq` of the last history event. Send it back as
    /// `version` or `If-Match`.
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The user who created the instance.
    pub created_by: String,
    /// The actions possible in the current stage (the caller's roles are not considered).
    pub actions: Vec<String>,
    /// The instance's task that is not done, if any.
    #[schema(required = true)]
    pub task: Option<Task>,
    /// Present while the instance is in a stage that asks for approval: its plan, levels and
    /// ballots (as `GET /v1/instances/{id}/approval`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval: Option<Approval>,
    /// Present for a process whose queues have operational-level targets (on
    /// `GET /v1/instances/{id}`): the OLA clock of the ticket's stay in its current queue
    /// (`current`, null when it has none) and how its past stays ended (`past`), oldest first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ola: Option<OlaClocks>,
}

impl From<&InstanceView> for Instance {
    fn from(view: &InstanceView) -> Self {
        Instance {
            id: view.id().0,
            process: view.process().to_string(),
            definition_version: view.definition_version(),
            stage: view.stage().to_string(),
            fields: view.fields(),
            priority: view.priority().map(str::to_string),
            queue: view.queue().map(str::to_string),
            version: view.version(),
            created_at: view.created_at(),
            updated_at: view.updated_at(),
            created_by: view.created_by().to_string(),
            actions: view.actions().into_iter().map(str::to_string).collect(),
            task: view.task().map(Task::from),
            approval: None,
            ola: None,
        }
    }
}

/// A page of instances, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct InstancePage {
    pub items: Vec<Instance>,
    /// Pass as `cursor` to get the next page; null on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// One entry of an instance's history.
#[derive(Debug, Serialize, ToSchema)]
pub struct Event {
    /// 1 for the creation, then one more per event.
    pub seq: i64,
    pub at: DateTime<Utc>,
    /// A user name, or `system` for what the scheduler did (escalations, breaches, automatic
    /// transitions).
    pub actor: String,
    pub kind: EventKind,
    /// Depends on `kind`: created {stage, fields, priority, queue, spawned_by}; transitioned
    /// {action, from, to}; fields_changed {changes: [{field, old, new}]}; priority_changed and
    /// routed {from, to, cause: fields|stage|escalation}; commented {text}; linked {kind,
    /// other}; recurred {index, period}; checked {stage, item, done}; acted_on; spawned
    /// {process, link}; escalated {clock, step, threshold} (an escalation step was reached;
    /// its actions follow as their own events); breached {clock}; ola_breached {queue};
    /// elapsed {transition} (an automatic `after` transition's delay passed; the transition
    /// follows); notified {role, deliver_at} (a notification was written to the outbox;
    /// `deliver_at` is set when it is held to business hours); skipped {action, reason} (an
    /// action the engine was to take by itself could not be taken); approval_requested,
    /// level_opened, approval_stuck, voted, delegated, reminded and approval_decided: the
    /// approval's course; migrated {from_definition, from_version, from_stage, stage, fields,
    /// priority, queue, entered_at, clocks} (the ticket moved to another version of its
    /// process; the events before it read under the version it left).
    #[schema(value_type = Object)]
    pub data: Json,
    #[schema(required = true)]
    pub reason: Option<String>,
}

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Created,
    Transitioned,
    FieldsChanged,
    PriorityChanged,
    Routed,
    Commented,
    Linked,
    Recurred,
    Checked,
    ActedOn,
    Spawned,
    Escalated,
    Breached,
    OlaBreached,
    Elapsed,
    Notified,
    Skipped,
    ApprovalRequested,
    LevelOpened,
    ApprovalStuck,
    Voted,
    Delegated,
    Reminded,
    ApprovalDecided,
    Migrated,
}

impl EventKind {
    const ALL: [EventKind; 25] = [
        EventKind::Created,
        EventKind::Transitioned,
        EventKind::FieldsChanged,
        EventKind::PriorityChanged,
        EventKind::Routed,
        EventKind::Commented,
        EventKind::Linked,
        EventKind::Recurred,
        EventKind::Checked,
        EventKind::ActedOn,
        EventKind::Spawned,
        EventKind::Escalated,
        EventKind::Breached,
        EventKind::OlaBreached,
        EventKind::Elapsed,
        EventKind::Notified,
        EventKind::Skipped,
        EventKind::ApprovalRequested,
        EventKind::LevelOpened,
        EventKind::ApprovalStuck,
        EventKind::Voted,
        EventKind::Delegated,
        EventKind::Reminded,
        EventKind::ApprovalDecided,
        EventKind::Migrated,
    ];

    pub fn name(self) -> &'static str {
        match self {
            EventKind::Created => "created",
            EventKind::Transitioned => "transitioned",
            EventKind::FieldsChanged => "fields_changed",
            EventKind::PriorityChanged => "priority_changed",
            EventKind::Routed => "routed",
            EventKind::Commented => "commented",
            EventKind::Linked => "linked",
            EventKind::Recurred => "recurred",
            EventKind::Checked => "checked",
            EventKind::ActedOn => "acted_on",
            EventKind::Spawned => "spawned",
            EventKind::Escalated => "escalated",
            EventKind::Breached => "breached",
            EventKind::OlaBreached => "ola_breached",
            EventKind::Elapsed => "elapsed",
            EventKind::Notified => "notified",
            EventKind::Skipped => "skipped",
            EventKind::ApprovalRequested => "approval_requested",
            EventKind::LevelOpened => "level_opened",
            EventKind::ApprovalStuck => "approval_stuck",
            EventKind::Voted => "voted",
            EventKind::Delegated => "delegated",
            EventKind::Reminded => "reminded",
            EventKind::ApprovalDecided => "approval_decided",
            EventKind::Migrated => "migrated",
        }
    }

    /// The kind the engine names `name`, if the API knows it.
    pub fn named(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// The engine recorded an event of a kind the API does not describe (a new kind the wire
/// types were not taught).
#[derive(Debug, thiserror::Error)]
#[error("history event kind `{0}` is not one the API describes")]
pub struct UnknownEventKind(pub String);

impl TryFrom<&EventView> for Event {
    type Error = UnknownEventKind;

    fn try_from(e: &EventView) -> Result<Self, Self::Error> {
        Ok(Event {
            seq: e.seq,
            at: e.at,
            actor: e.actor.to_string(),
            kind: EventKind::named(e.kind).ok_or_else(|| UnknownEventKind(e.kind.to_string()))?,
            data: e.data.clone(),
            reason: e.reason.clone(),
        })
    }
}

/// An instance's history, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct History {
    pub items: Vec<Event>,
}

/// A directed link between two instances, as stored (`from` `kind` `to`, from the process
/// that declares the kind), and as seen from the instance whose links are listed (`other`,
/// `name`).
#[derive(Debug, Serialize, ToSchema)]
pub struct Link {
    pub from: i64,
    pub to: i64,
    #[schema(examples("caused_by"))]
    pub kind: String,
    pub created_at: DateTime<Utc>,
    /// The instance at the other end, seen from the instance whose links these are.
    pub other: i64,
    /// The name the listing instance's process gives the link (`incidents` for a problem's
    /// view of an incident's `caused_by`), when it declares one.
    #[schema(required = true, examples("incidents"))]
    pub name: Option<String>,
}

impl From<&LinkView> for Link {
    fn from(l: &LinkView) -> Self {
        Link {
            from: l.from.0,
            to: l.to.0,
            kind: l.kind.clone(),
            created_at: l.created_at,
            other: l.other.0,
            name: l.name.clone(),
        }
    }
}

/// An instance's links.
#[derive(Debug, Serialize, ToSchema)]
pub struct LinkList {
    pub items: Vec<Link>,
}

/// Where one escalation step falls on a clock.
#[derive(Debug, Serialize, ToSchema)]
pub struct EscalationPoint {
    /// As written: `75%` or `2h`.
    pub threshold: String,
    /// Business seconds on the clock at which the step is due.
    pub at_seconds: i64,
    pub reached: bool,
    /// When the clock will reach it, if it is running and has not yet.
    #[schema(required = true)]
    pub due_at: Option<DateTime<Utc>>,
}

/// A service clock (respond or resolve) of an instance, now.
#[derive(Debug, Serialize, ToSchema)]
pub struct Clock {
    pub clock: ClockKind,
    /// The target as written (`4h`, `3d`).
    pub target: String,
    pub target_seconds: i64,
    pub elapsed_seconds: i64,
    /// Negative once breached.
    pub remaining_seconds: i64,
    /// Elapsed as a share of the target, in percent.
    pub percent: f64,
    pub state: ClockState,
    #[schema(required = true)]
    pub started_at: Option<DateTime<Utc>>,
    #[schema(required = true)]
    pub stopped_at: Option<DateTime<Utc>>,
    /// When it reaches its target, if it is running.
    #[schema(required = true)]
    pub due_at: Option<DateTime<Utc>>,
    /// The escalation steps the process defines on this clock, in order.
    pub escalations: Vec<EscalationPoint>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClockKind {
    Respond,
    Resolve,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClockState {
    NotStarted,
    Running,
    Paused,
    Met,
    Breached,
}

impl From<EngineClockState> for ClockState {
    fn from(s: EngineClockState) -> Self {
        match s {
            EngineClockState::NotStarted => ClockState::NotStarted,
            EngineClockState::Running => ClockState::Running,
            EngineClockState::Paused => ClockState::Paused,
            EngineClockState::Met => ClockState::Met,
            EngineClockState::Breached => ClockState::Breached,
        }
    }
}

impl From<itsmflow_engine::model::ClockKind> for ClockKind {
    fn from(k: itsmflow_engine::model::ClockKind) -> Self {
        match k {
            itsmflow_engine::model::ClockKind::Respond => ClockKind::Respond,
            itsmflow_engine::model::ClockKind::Resolve => ClockKind::Resolve,
        }
    }
}

impl From<&clocks::Clock> for Clock {
    fn from(c: &clocks::Clock) -> Self {
        Clock {
            clock: c.clock.into(),
            target: c.target.clone(),
            target_seconds: c.target_seconds,
            elapsed_seconds: c.elapsed_seconds,
            remaining_seconds: c.remaining_seconds,
            percent: c.percent,
            state: c.state.into(),
            started_at: c.started_at,
            stopped_at: c.stopped_at,
            due_at: c.due_at,
            escalations: c
                .escalations
                .iter()
                .map(|e| EscalationPoint {
                    threshold: e.threshold.clone(),
                    at_seconds: e.at_seconds,
                    reached: e.reached,
                    due_at: e.due_at,
                })
                .collect(),
        }
    }
}

/// An instance's service clocks now: those its current priority has a target for.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClockList {
    pub items: Vec<Clock>,
}

/// The OLA clock of one stay of a ticket in a queue: business time from when the ticket
/// entered the queue to when it left (or now), paused in stages that pause the resolve clock.
#[derive(Debug, Serialize, ToSchema)]
pub struct OlaClock {
    pub queue: String,
    /// The tier whose targets apply, when the queue has none of its own.
    #[schema(required = true)]
    pub tier: Option<u32>,
    /// The target row that applies: the priority's name, or `default`.
    pub row: String,
    /// The target as written, e.g. `4h`.
    pub target: String,
    pub target_seconds: i64,
    pub elapsed_seconds: i64,
    /// Negative once past the target.
    pub remaining_seconds: i64,
    pub state: OlaClockState,
    /// The calendar it runs on, `24x7` or a calendar's name.
    pub calendar: String,
    pub entered_at: DateTime<Utc>,
    #[schema(required = true)]
    pub left_at: Option<DateTime<Utc>>,
    /// When it reaches its target, while it runs.
    #[schema(required = true)]
    pub due_at: Option<DateTime<Utc>>,
    /// An `ola_breached` event records the breach (and the queue's members were notified).
    pub breach_recorded: bool,
}

/// Where an OLA clock stands (a stay's clock starts when the ticket enters the queue, so it
/// is never `not_started`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OlaClockState {
    Running,
    Paused,
    Met,
    Breached,
    NotStarted,
}

impl From<EngineClockState> for OlaClockState {
    fn from(s: EngineClockState) -> Self {
        match s {
            EngineClockState::NotStarted => OlaClockState::NotStarted,
            EngineClockState::Running => OlaClockState::Running,
            EngineClockState::Paused => OlaClockState::Paused,
            EngineClockState::Met => OlaClockState::Met,
            EngineClockState::Breached => OlaClockState::Breached,
        }
    }
}

impl From<&ola::OlaClock> for OlaClock {
    fn from(c: &ola::OlaClock) -> Self {
        OlaClock {
            queue: c.queue.clone(),
            tier: c.tier,
            row: c.row.clone(),
            target: c.target.clone(),
            target_seconds: c.target_seconds,
            elapsed_seconds: c.elapsed_seconds,
            remaining_seconds: c.remaining_seconds,
            state: c.state.into(),
            calendar: c.calendar.clone(),
            entered_at: c.entered_at,
            left_at: c.left_at,
            due_at: c.due_at,
            breach_recorded: c.breach_recorded,
        }
    }
}

/// A ticket's OLA clocks: its current stay's and how its past stays ended.
#[derive(Debug, Serialize, ToSchema)]
pub struct OlaClocks {
    #[schema(required = true)]
    pub current: Option<OlaClock>,
    pub past: Vec<OlaClock>,
}

impl From<Vec<ola::OlaClock>> for OlaClocks {
    /// The current stay's clock is the last, while it is open.
    fn from(mut clocks: Vec<ola::OlaClock>) -> Self {
        let current = match clocks.last() {
            Some(c) if c.left_at.is_none() => clocks.pop(),
            _ => None,
        };
        OlaClocks {
            current: current.as_ref().map(OlaClock::from),
            past: clocks.iter().map(OlaClock::from).collect(),
        }
    }
}

/// Either `process` (raise a ticket of the latest version of a process) or `item` (a
/// catalogue item: its process, with the fields it presets, which win over `fields`, and
/// refused with `invalid-fields` when a field it requires is missing). Giving both, or
/// neither, is `invalid-request`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewInstanceRequest {
    #[serde(default)]
    #[schema(examples("incident"))]
    pub process: Option<String>,
    /// A catalogue item (see `GET /v1/catalog`).
    #[serde(default)]
    #[schema(examples("new_laptop"))]
    pub item: Option<String>,
    /// Field values by name.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub fields: Map<String, Json>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionRequest {
    /// Field values by name.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub fields: Map<String, Json>,
    /// The instance version the caller last saw; refused with 409 if it has moved on. Same as
    /// `If-Match`; when both are given they must agree (else 400).
    #[serde(default)]
    #[schema(minimum = 1)]
    pub version: Option<i64>,
    /// Recorded in the history with the change.
    #[serde(default)]
    pub reason: Option<String>,
}

/// Comments are notes, not documents: 64 KiB at most.
pub const MAX_COMMENT: usize = 64 * 1024;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommentRequest {
    /// Not blank; at most 64 KiB.
    #[schema(min_length = 1)]
    pub text: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkRequest {
    /// The other instance; not this one.
    pub to: i64,
    /// The link kind, as the process declares it.
    #[schema(pattern = "^[A-Za-z][A-Za-z0-9_]{0,99}$", examples("caused_by"))]
    pub kind: String,
}

/// Which instances to list: filters combine with AND.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct InstanceQuery {
    /// Only instances of this process.
    pub process: Option<String>,
    /// Only instances in this stage.
    pub stage: Option<String>,
    /// Only instances waiting in this queue.
    pub queue: Option<String>,
    /// Only instances this user created (ignored for requesters: they see their own).
    pub created_by: Option<String>,
    /// Page size: 1 to the server's `--max-page` (default 500); 50 if absent. Out of range is a
    /// 422.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}
