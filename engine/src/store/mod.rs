//! Durable state behind one trait, with an in-memory, an SQLite and a PostgreSQL
//! implementation that pass the same test suite.
//!
//! Every method is one transaction. [`Store::commit`] applies a whole [`Change`] (the
//! instance's new state under an optimistic version check, its history events, its task
//! operations, links and spawned instances) or nothing. Claims are single statements that
//! pick the first open (or lease-expired) task in queue order and bump its fencing token; renew,
//! release and complete present the token and fail if it is stale.
//!
//! The three agree on every behaviour the store suite (`engine/tests/store_suite.rs`) checks.

use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::record::types::*;
use crate::record::{DefinitionId, ProjectSource};

pub mod memory;
pub mod migrations;
pub mod postgres;
mod sql;
pub mod sqlite;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("instance {id} was changed by someone else (it is no longer at version {expected})")]
    Conflict { id: InstanceId, expected: i64 },
    #[error("the lease on task {0} was lost (expired and claimed again, released, or completed)")]
    LeaseLost(TaskId),
    #[error("task {task} is claimed by {by}")]
    Claimed { task: TaskId, by: String },
    #[error("task {0} is already done")]
    TaskDone(TaskId),
    #[error("no task {0}")]
    NoTask(TaskId),
    #[error("no instance {0}")]
    NoInstance(InstanceId),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database migration failed: {0}")]
    Migration(#[from] migrations::MigrationError),
    #[error("stored data cannot be read: {0}")]
    Corrupt(String),
    /// The database did not serve the request: a batch of writes failed to commit (none of
    /// it was applied), or a read failed.
    #[error("the database did not serve the request (nothing was written): {0}")]
    Unavailable(String),
    /// The connection failed after the write was sent: it may or may not have been applied.
    #[error("the connection to the database failed during the write, which may have been applied (read before trying again): {0}")]
    Uncertain(String),
}

impl StoreError {
    /// Why a change decided on version `expected` of instance `id` was not written by the
    /// version check: no such instance (`now` is `None`), else a conflict.
    pub fn stale_version(id: InstanceId, expected: i64, now: Option<i64>) -> Self {
        match now {
            None => StoreError::NoInstance(id),
            Some(_) => StoreError::Conflict { id, expected },
        }
    }

    /// Why a claim of task `id` changed nothing, from the task as it now is (`None`: there is
    /// no such task).
    pub fn claim_refused(id: TaskId, now: Option<&Task>) -> Self {
        match now {
            None => StoreError::NoTask(id),
            Some(t) if t.state == TaskState::Done => StoreError::TaskDone(id),
            Some(t) => StoreError::Claimed {
                task: id,
                by: t.holder().to_string(),
            },
        }
    }

    /// Why renewing, releasing or completing task `id` under a fencing token changed nothing,
    /// from the task as it now is (`None`: there is no such task).
    pub fn lease_refused(id: TaskId, now: Option<&Task>) -> Self {
        match now {
            None => StoreError::NoTask(id),
            Some(_) => StoreError::LeaseLost(id),
        }
    }

    /// Why closing a task under `close`'s fence changed nothing, from the task as it now is
    /// (`None`: there is no such task).
    pub fn fence_refused(close: &CloseTask, now: Option<&Task>) -> Self {
        match (now, &close.fence) {
            (_, Fence::Token { .. }) => StoreError::lease_refused(close.task, now),
            (None, _) => StoreError::NoTask(close.task),
            (Some(t), _) if t.state == TaskState::Done => StoreError::TaskDone(close.task),
            (Some(t), _) => StoreError::Claimed {
                task: close.task,
                by: t.claimant().to_string(),
            },
        }
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// A new instance's id, and its first task if it has one.
pub type Created = (InstanceId, Option<Task>);

/// What a commit did that its caller cannot know in advance.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Committed {
    /// The instances the change spawned, in order, each with its first task.
    pub spawned: Vec<Created>,
    /// The instance's open task after the change, when the change created or updated one.
    pub task: Option<Task>,
    /// What each of the change's [`Change::cascade`] did, in order.
    pub cascaded: Vec<Committed>,
}

/// A published version as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredDefinition {
    pub id: DefinitionId,
    pub process: String,
    pub version: u32,
    pub hash: String,
    pub project_hash: String,
    pub published_at: DateTime<Utc>,
}

/// Every stored definition, and the sources of the projects they came from (by project hash).
pub type StoredDefinitions = (Vec<StoredDefinition>, Vec<(String, ProjectSource)>);

/// A task, its instance, and the instance's open task.
pub type TaskAndInstance = (Task, std::sync::Arc<Instance>, Option<Task>);

/// An instance and its task that is not done, if any.
pub type InstanceAndTask = (std::sync::Arc<Instance>, Option<Task>);

/// Which instances to list: those that meet every criterion given (all, if none is).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InstanceFilter {
    /// The process, by name.
    pub process: Option<String>,
    /// The current stage, by name (in any process that has one so named, unless `process` is
    /// given).
    pub stage: Option<String>,
    /// The current queue, by name.
    pub queue: Option<String>,
    /// Who created the instance.
    pub created_by: Option<String>,
    /// The cursor: only instances with a smaller id. Lists are newest (highest id) first, so
    /// the last id of one page, given here, yields the next page.
    pub before: Option<InstanceId>,
}

/// A version to publish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewDefinition {
    pub process: String,
    pub version: u32,
    pub hash: String,
}

/// Persistence for the runtime. Implementations must make each method atomic and must keep
/// `instances` equal to the replay of `events` (they only ever write both together).
pub trait Store: Send + Sync + 'static {
    /// Every stored definition and the sources of the projects they came from.
    fn load_definitions(&self) -> impl Future<Output = Result<StoredDefinitions>> + Send;

    /// Store a project's source and new versions of its processes, atomically.
    fn save_definitions(
        &self,
        project_hash: &str,
        source: &ProjectSource,
        definitions: &[NewDefinition],
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<DefinitionId>>> + Send;

    /// Insert a new instance with its history and task; returns its id.
    fn create(&self, new: NewInstance) -> impl Future<Output = Result<Created>> + Send;

    fn instance(&self, id: InstanceId) -> impl Future<Output = Result<Option<Instance>>> + Send;

    /// An instance and its task that is not done, read together.
    fn instance_with_task(
        &self,
        id: InstanceId,
    ) -> impl Future<Output = Result<Option<(std::sync::Arc<Instance>, Option<Task>)>>> + Send;

    /// A task, its instance, and the instance's task that is not done (the same task, unless
    /// the instance has moved on), read together.
    fn task_with_instance(
        &self,
        task: TaskId,
    ) -> impl Future<Output = Result<Option<TaskAndInstance>>> + Send {
        async move {
            let Some(t) = self.task(task).await? else {
                return Ok(None);
            };
            Ok(self
                .instance_with_task(t.instance)
                .await?
                .map(|(i, open)| (t, i, open)))
        }
    }

    /// [`Store::instance_with_task`] and the instance's history, read together.
    fn instance_with_task_and_history(
        &self,
        id: InstanceId,
    ) -> impl Future<Output = Result<Option<(InstanceAndTask, Vec<Event>)>>> + Send {
        async move {
            let Some(found) = self.instance_with_task(id).await? else {
                return Ok(None);
            };
            let history = self.history(id).await?;
            Ok(Some((found, history)))
        }
    }

    /// Whether each read costs a network round trip (so reading the history along with an
    /// instance, in case the action needs it, is cheaper than reading it later when it does).
    fn reads_are_round_trips(&self) -> bool {
        false
    }

    /// Apply a change atomically.
    fn commit(&self, change: Change) -> impl Future<Output = Result<Committed>> + Send;

    /// Instances that match `filter`, newest first (by id, descending), at most `limit`, each
    /// with its task that is not done, read together.
    fn list_instances(
        &self,
        filter: &InstanceFilter,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<InstanceAndTask>>> + Send;

    fn history(&self, id: InstanceId) -> impl Future<Output = Result<Vec<Event>>> + Send;

    /// The approval ballots waiting for `user` to cast (their own, and those delegated to
    /// them), oldest level first (by when it opened, then instance), at most `limit`.
    fn pending_ballots(
        &self,
        user: &str,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<PendingBallot>>> + Send;

    fn links(&self, id: InstanceId) -> impl Future<Output = Result<Vec<Link>>> + Send;

    fn task(&self, id: TaskId) -> impl Future<Output = Result<Option<Task>>> + Send;

    /// Tasks not done in a queue, in queue order: priority, then due time, then age.
    fn queue_tasks(
        &self,
        queue: &str,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<Task>>> + Send;

    /// Count of tasks not done per queue.
    fn queue_counts(&self) -> impl Future<Output = Result<Vec<(String, u64)>>> + Send;

    /// Claim the first claimable task of a queue for `agent`, in queue order: open, or claimed
    /// with a lease that ended before `now`, and not assigned to someone else. (PostgreSQL puts
    /// expired leases back among the open tasks at most once a second per node, so there a task
    /// may wait up to a second longer after its lease ends.) Exactly one of several concurrent
    /// claimers of the same task wins.
    fn claim_next(
        &self,
        queue: &str,
        agent: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<Task>>> + Send;

    /// [`Store::claim_next`], and the claimed task's instance as the claim found it: where
    /// reads are round trips, completing the task next can then go without one.
    fn claim_next_with_instance(
        &self,
        queue: &str,
        agent: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<(Task, Arc<Instance>)>>> + Send {
        async move {
            let Some(task) = self.claim_next(queue, agent, now, lease_until).await? else {
                return Ok(None);
            };
            let inst = self
                .instance(task.instance)
                .await?
                .ok_or(StoreError::NoInstance(task.instance))?;
            Ok(Some((task, Arc::new(inst))))
        }
    }

    /// Claim a given task (or re-claim one's own, which renews it with a new token).
    fn claim(
        &self,
        task: TaskId,
        agent: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> impl Future<Output = Result<Task>> + Send;

    /// Extend a lease; fails with `LeaseLost` if `token` is no longer the task's.
    fn renew(
        &self,
        task: TaskId,
        token: i64,
        agent: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> impl Future<Output = Result<Task>> + Send;

    /// Give a claimed task back to its queue; returns it as it now is.
    fn release(
        &self,
        task: TaskId,
        token: i64,
        agent: &str,
    ) -> impl Future<Output = Result<Task>> + Send;

    /// Register an agent (or update their roles), and say whether they take pushed work now.
    /// An agent who stops gets their assigned, unclaimed tasks returned to their queues: those
    /// tasks, as they are now, are returned.
    fn set_agent(
        &self,
        name: &str,
        roles: &[String],
        active: bool,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<Task>>> + Send;

    /// Active agents and their roles, by name.
    fn active_agents(&self) -> impl Future<Output = Result<Vec<(String, Vec<String>)>>> + Send;

    /// Per agent among `agents`, the tasks not done that are claimed by them or pushed to them
    /// and not claimed yet (agents with none are left out). Read through indexes on claimed and
    /// pushed tasks, so a push costs the candidates' work, not a scan of the whole backlog.
    fn agent_loads(
        &self,
        agents: &[&str],
    ) -> impl Future<Output = Result<Vec<(String, u64)>>> + Send;

    /// Who the most recent pushed task of a queue went to.
    fn last_assignee(&self, queue: &str) -> impl Future<Output = Result<Option<String>>> + Send;

    // -- timers and notifications ---------------------------------------------------------------

    /// Up to `limit` instances with something due by `now` (their wake-up), earliest first,
    /// each leased to the caller until `lease_until`: nobody claims it again before then (if
    /// the caller dies, it is due again after the lease). Firing the instance's due points sets
    /// its next wake-up, which ends the lease. On PostgreSQL concurrent claimers skip each
    /// other's rows (`FOR UPDATE SKIP LOCKED`).
    fn claim_wakeups(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        lease_until: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<InstanceId>>> + Send;

    /// When the next wake-up is due (or its lease ends), if there is any.
    fn next_wakeup_at(&self) -> impl Future<Output = Result<Option<DateTime<Utc>>>> + Send;

    /// When the instance next has something due, as stored.
    fn wakeup(
        &self,
        instance: InstanceId,
    ) -> impl Future<Output = Result<Option<DateTime<Utc>>>> + Send;

    /// Outbox rows matching `filter`, by id, after `after_id`.
    fn notifications(
        &self,
        filter: &NotificationFilter,
        limit: u32,
        after_id: Option<i64>,
    ) -> impl Future<Output = Result<Vec<Notification>>> + Send;

    /// Claim up to `limit` outbox rows to deliver at `now`: undelivered, not given up, due, and
    /// not leased or waiting to be tried again; each is leased until `lease_until` and its
    /// attempt counted, so no other deliverer (on any node) takes it meanwhile. Oldest first.
    fn claim_deliveries(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<Notification>>> + Send;

    /// An attempt to deliver row `id` failed with `error`: it is tried again from `retry_at`,
    /// or, without one, given up at `now` (a dead letter).
    fn delivery_failed(
        &self,
        id: i64,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Mark outbox rows delivered at `at`; returns how many were not delivered before.
    fn mark_delivered(
        &self,
        ids: &[i64],
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64>> + Send;

    /// Whether other processes may write to the same data (so timers may be added that this
    /// process is not told about).
    fn is_shared(&self) -> bool {
        false
    }
}
