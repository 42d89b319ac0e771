//! Queues: their summaries, and the events of a queue's live stream.

use chrono::{DateTime, Utc};
use itsmflow_engine::model::Assignment;
use itsmflow_engine::runtime::catalog::QueueInfo;
use serde::Serialize;
use utoipa::ToSchema;

use crate::serve::events::{self, QueueEventKind};

/// A queue with its number of tasks not done.
#[derive(Debug, Serialize, ToSchema)]
pub struct Queue {
    #[schema(examples("service_desk"))]
    pub name: String,
    /// The roles that work the queue.
    pub roles: Vec<String>,
    pub assignment: QueueAssignment,
    /// Tasks not done in the queue.
    pub tasks: u64,
}

impl Queue {
    pub fn new(name: String, info: &QueueInfo, tasks: u64) -> Self {
        Queue {
            name,
            roles: info.roles.clone(),
            assignment: info.assignment.into(),
            tasks,
        }
    }
}

/// How a queue hands out its tasks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum QueueAssignment {
    Pull,
    RoundRobin,
    LeastLoaded,
}

impl From<Assignment> for QueueAssignment {
    fn from(a: Assignment) -> Self {
        match a {
            Assignment::Pull => QueueAssignment::Pull,
            Assignment::RoundRobin => QueueAssignment::RoundRobin,
            Assignment::LeastLoaded => QueueAssignment::LeastLoaded,
        }
    }
}

/// Every queue of the tenant's definitions.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueueList {
    pub items: Vec<Queue>,
}

/// The `data` of a queue event; the SSE event name equals `type`.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueueEvent {
    #[serde(rename = "type")]
    pub kind: QueueEventType,
    pub queue: String,
    pub task: i64,
    pub instance: i64,
    #[schema(required = true)]
    pub priority: Option<u32>,
    #[schema(required = true)]
    pub claimed_by: Option<String>,
    pub at: DateTime<Utc>,
}

/// What happened to the task. `escalated`: a timer (escalation step, breach, automatic
/// transition) fired on the task's instance; the task is in `queue` now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum QueueEventType {
    Added,
    Claimed,
    Released,
    Removed,
    Escalated,
}

impl QueueEventType {
    /// The SSE event name, the same as `type`.
    pub fn name(self) -> &'static str {
        match self {
            QueueEventType::Added => "added",
            QueueEventType::Claimed => "claimed",
            QueueEventType::Released => "released",
            QueueEventType::Removed => "removed",
            QueueEventType::Escalated => "escalated",
        }
    }
}

impl From<QueueEventKind> for QueueEventType {
    fn from(kind: QueueEventKind) -> Self {
        match kind {
            QueueEventKind::Added => QueueEventType::Added,
            QueueEventKind::Claimed => QueueEventType::Claimed,
            QueueEventKind::Released => QueueEventType::Released,
            QueueEventKind::Removed => QueueEventType::Removed,
            QueueEventKind::Escalated => QueueEventType::Escalated,
        }
    }
}

impl From<&events::QueueEvent> for QueueEvent {
    fn from(e: &events::QueueEvent) -> Self {
        QueueEvent {
            kind: e.kind.into(),
            queue: e.queue.to_string(),
            task: e.task,
            instance: e.instance,
            priority: e.priority,
            claimed_by: e.claimed_by.as_deref().map(str::to_string),
            at: e.at,
        }
    }
}

/// The `data` of the `ready` event every stream starts with: an empty object. Reload what
/// the stream follows on it.
#[derive(Debug, Default, Serialize, ToSchema)]
#[schema(max_properties = 0)]
pub struct StreamReady {}

/// The `data` of a `lagged` event: the client fell behind and missed events; reload what the
/// stream follows.
#[derive(Debug, Serialize, ToSchema)]
pub struct StreamLagged {
    /// How many events were missed.
    #[schema(minimum = 1)]
    pub missed: u64,
}
