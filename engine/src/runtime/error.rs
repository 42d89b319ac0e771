//! What can go wrong when acting on instances and tasks. Every refusal leaves everything as it
//! was: errors are decided before anything is written, or the write is rolled back.

use itsmflow_dsl::Diagnostic;

use super::types::{InstanceId, TaskId};
use super::values::FieldError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("the definitions do not check ({} problems)", .0.iter().filter(|d| d.is_error()).count())]
    InvalidDefinitions(Vec<Diagnostic>),
    #[error("no process `{0}` is published")]
    UnknownProcess(String),
    #[error("the catalogue has no item `{0}`")]
    UnknownItem(String),
    #[error("no instance {0}")]
    InstanceNotFound(InstanceId),
    #[error("no task {0}")]
    TaskNotFound(TaskId),
    #[error("invalid fields: {}", .0.iter().map(|e| format!("`{}` {}", e.place(), e.message)).collect::<Vec<_>>().join("; "))]
    InvalidFields(Vec<FieldError>),
    #[error("`{action}` is not an action of process `{process}`")]
    UnknownAction { process: String, action: String },
    #[error("`{action}` cannot be performed in stage `{stage}`")]
    ActionNotAllowed {
        action: String,
        stage: String,
        /// Actions that are possible in this stage.
        allowed: Vec<String>,
    },
    #[error("`{action}` may be performed only by {}", who(.roles, .people))]
    Forbidden {
        action: String,
        roles: Vec<String>,
        /// The people the ticket names who may, as written (`caller`, `manager of requester`).
        people: Vec<String>,
    },
    #[error("queue `{queue}` is worked by role {}", .roles.join(", "))]
    NotQueueMember { queue: String, roles: Vec<String> },
    #[error("`{action}` requires {}", .fields.join(", "))]
    MissingFields { action: String, fields: Vec<String> },
    #[error("`{action}` requires the checklist done: {} not ticked", .items.join(", "))]
    ChecklistIncomplete { action: String, items: Vec<String> },
    #[error("the stage `{stage}` has no checklist item `{item}`{}", if .known.is_empty() { String::new() } else { format!(" (items: {})", .known.join(", ")) })]
    UnknownChecklistItem {
        stage: String,
        item: String,
        known: Vec<String>,
    },
    #[error("rule `{rule}` does not allow `{action}`")]
    GuardFailed { rule: String, action: String },
    #[error("`{action}` may be performed only when {condition}")]
    ConditionFailed { action: String, condition: String },
    #[error("instance {instance} cannot be linked as `{kind}`: {why}")]
    LinkRefused {
        instance: InstanceId,
        kind: String,
        why: String,
        /// The link kinds the instance's process declares.
        known: Vec<String>,
    },
    #[error("rule `{rule}` failed: {message}")]
    RuleFailed { rule: String, message: String },
    #[error("spawning `{process}` failed: {source}")]
    SpawnFailed {
        process: String,
        source: Box<EngineError>,
    },
    #[error("no queue `{0}`")]
    UnknownQueue(String),
    #[error("instance {instance}: {refusal}")]
    ApprovalRefused {
        instance: InstanceId,
        refusal: ApprovalRefusal,
    },
    #[error("`{process}` has no version {version}")]
    UnknownVersion { process: String, version: u32 },
    #[error("the migration plan cannot be applied: {}", .0.iter().map(|p| p.message.as_str()).collect::<Vec<_>>().join("; "))]
    MigrationRefused(Vec<super::migrate::Problem>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a vote or a delegation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApprovalRefusal {
    #[error("nothing awaits approval in stage `{stage}`")]
    NoApproval { stage: String },
    #[error("level {level} is closed; level {open} is open now")]
    LevelClosed { level: u32, open: u32 },
    #[error("you may not vote on a ticket you raised or are named in (segregation of duties)")]
    OwnTicket,
    #[error("you already voted to {} at {at}", if *.approve { "approve" } else { "reject" })]
    AlreadyVoted {
        approve: bool,
        at: chrono::DateTime<chrono::Utc>,
    },
    #[error("you delegated your vote to `{to}`")]
    Delegated { to: String },
    #[error("you are not an approver of level {level}, which asks {}", .roles.join(" and "))]
    NotApprover { level: u32, roles: Vec<String> },
    #[error("{why}")]
    BadDelegate { why: String },
}

impl ApprovalRefusal {
    /// A stable name for the refusal, for clients to act on.
    pub fn code(&self) -> &'static str {
        match self {
            ApprovalRefusal::NoApproval { .. } => "no-open-approval",
            ApprovalRefusal::LevelClosed { .. } => "level-closed",
            ApprovalRefusal::OwnTicket => "segregation-of-duties",
            ApprovalRefusal::AlreadyVoted { .. } => "already-voted",
            ApprovalRefusal::Delegated { .. } => "vote-delegated",
            ApprovalRefusal::NotApprover { .. } => "not-an-approver",
            ApprovalRefusal::BadDelegate { .. } => "delegate-refused",
        }
    }
}

/// `role agent, network_engineer or caller`.
fn who(roles: &[String], people: &[String]) -> String {
    let mut parts = Vec::new();
    if !roles.is_empty() {
        parts.push(format!("role {}", roles.join(", ")));
    }
    if !people.is_empty() {
        parts.push(people.join(", "));
    }
    parts.join(" or ")
}
