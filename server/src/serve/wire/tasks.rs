//! Tasks: the work a queue holds, and the bodies that claim, renew, release and complete one.

use chrono::{DateTime, Utc};
use itsmflow_engine::runtime as engine;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};
use utoipa::{IntoParams, ToSchema};

/// Work waiting in a queue: an instance in a stage that names a queue.
#[derive(Debug, Serialize, ToSchema)]
pub struct Task {
    pub id: i64,
    pub instance: i64,
    pub process: String,
    pub stage: String,
    pub queue: String,
    /// Position of the instance's priority in the process's list (0 is the most urgent); null
    /// sorts last.
    #[schema(required = true)]
    pub priority: Option<u32>,
    /// When the ticket's resolve target (SLA) is due, while that clock runs.
    #[schema(required = true)]
    pub due_at: Option<DateTime<Utc>>,
    /// When the ticket's stay in this queue reaches the queue's operational-level target
    /// (OLA), while that clock runs; null when the queue has no OLA target for the ticket's
    /// priority. Sort a queue by it to see what the group must finish first.
    #[schema(required = true)]
    pub ola_due_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub state: TaskState,
    /// Pushed to this agent (round-robin or least-loaded queues).
    #[schema(required = true)]
    pub assigned_to: Option<String>,
    #[schema(required = true)]
    pub claimed_by: Option<String>,
    #[schema(required = true)]
    pub lease_until: Option<DateTime<Utc>>,
    /// Fencing token: incremented by every claim; renew, release and complete must present it.
    pub token: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    Open,
    Claimed,
    Done,
}

impl From<engine::TaskState> for TaskState {
    fn from(state: engine::TaskState) -> Self {
        match state {
            engine::TaskState::Open => TaskState::Open,
            engine::TaskState::Claimed => TaskState::Claimed,
            engine::TaskState::Done => TaskState::Done,
        }
    }
}

impl From<&engine::Task> for Task {
    fn from(t: &engine::Task) -> Self {
        Task {
            id: t.id.0,
            instance: t.instance.0,
            process: t.process.to_string(),
            stage: t.stage.to_string(),
            queue: t.queue.to_string(),
            priority: t.priority,
            due_at: t.due_at,
            ola_due_at: t.ola_due_at,
            created_at: t.created_at,
            state: t.state.into(),
            assigned_to: t.assigned_to.as_deref().map(str::to_string),
            claimed_by: t.claimed_by.as_deref().map(str::to_string),
            lease_until: t.lease_until,
            token: t.token,
        }
    }
}

impl From<engine::Task> for Task {
    fn from(t: engine::Task) -> Self {
        Task::from(&t)
    }
}

/// A queue's tasks not done, in the order to take them.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskList {
    pub items: Vec<Task>,
}

/// The longest lease a claim may ask for: a day.
pub const MAX_LEASE_SECONDS: i64 = 86_400;

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimRequest {
    /// How long the claim lasts unless renewed.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 86400, default = 300)]
    pub lease_seconds: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenewRequest {
    /// The fencing token the claim returned.
    pub token: i64,
    /// How long the claim lasts unless renewed.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 86400, default = 300)]
    pub lease_seconds: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseRequest {
    /// The fencing token the claim returned.
    pub token: i64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteRequest {
    /// The fencing token the claim returned.
    pub token: i64,
    /// The action performed on the task's instance.
    #[schema(examples("resolve"))]
    pub action: String,
    /// Field values by name.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub fields: Map<String, Json>,
}

/// How many of a queue's tasks to list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct QueueTasksQuery {
    /// Page size: 1 to the server's `--max-page` (default 500); 50 if absent. Out of range is a
    /// 422.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}
