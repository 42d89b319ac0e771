//! The runtime: instances pinned to published definitions, their history, tasks and queues.

pub mod approval;
pub mod catalog;
pub mod checklist;
mod claimed;
pub mod clock;
pub mod clocks;
pub mod engine;
pub mod error;
pub mod explain;
pub mod firing;
pub mod logic;
pub mod migrate;
pub mod notices;
pub mod ola;
pub mod relations;
mod replicas;
mod schedule_memo;
pub mod scheduler;
pub mod task_events;
pub mod timers;
pub mod view;

// The records the runtime shares with the store, at the paths they had when they lived here.
pub use crate::record::{codec, types, values};

pub use approval::{Directory, NoDirectory, StaticDirectory};
pub use catalog::{Catalog, DefinitionId};
pub use clock::{Clock, ManualClock, SystemClock};
pub use engine::{BallotsChanged, Engine, Firing, Published};
pub use error::{ApprovalRefusal, EngineError};
pub use explain::Explanation;
pub use scheduler::{Scheduler, SchedulerConfig, SchedulerHandle, SchedulerStats};
pub use task_events::{TaskEvent, TaskEventKind};
pub use types::{
    Actor, InstanceId, Notification, NotificationFilter, PendingBallot, Task, TaskId, TaskState,
    Timer,
};
pub use view::{ApprovalView, EventView, InstanceView, LinkView};
