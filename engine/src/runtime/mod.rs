//! The runtime: instances pinned to published definitions, their history, tasks and queues.

pub mod catalog;
mod claimed;
pub mod clock;
pub mod clocks;
pub mod codec;
pub mod engine;
pub mod error;
pub mod firing;
pub mod logic;
mod replicas;
mod schedule_memo;
pub mod scheduler;
pub mod timers;
pub mod types;
pub mod values;
pub mod view;

pub use catalog::{Catalog, DefinitionId};
pub use clock::{Clock, ManualClock, SystemClock};
pub use engine::{Engine, Firing, Published};
pub use error::EngineError;
pub use scheduler::{Scheduler, SchedulerConfig, SchedulerHandle, SchedulerStats};
pub use types::{
    Actor, InstanceId, Notification, NotificationFilter, Task, TaskId, TaskState, Timer,
};
pub use view::{EventView, InstanceView, LinkView};
