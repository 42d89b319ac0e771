//! The records the runtime and the store share: instances, their history, tasks, links, and
//! the changes that move them. Ids inside an instance (stage, field, priority, transition) are
//! those of the definition version the instance is pinned to.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::definition::DefinitionId;
use crate::model::{
    ClockKind, FieldId, OutcomeKind, PriorityId, QueueId, RoleId, StageId, TransitionId, Value,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct InstanceId(pub i64);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TaskId(pub i64);

impl std::fmt::Display for InstanceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl std::fmt::Display for TaskId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Who does something: a user name and the roles they hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    /// Shared with every event, task and instance the actor's request writes, so recording
    /// who did something copies no text.
    pub name: Arc<str>,
    pub roles: Vec<String>,
}

impl Actor {
    pub fn new(name: impl Into<Arc<str>>, roles: &[&str]) -> Self {
        Actor {
            name: name.into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
        }
    }
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
    /// The engine itself (automatic transitions, escalations).
    pub fn system() -> Self {
        Actor::new("system", &[])
    }
}

/// The current state of an instance. It always equals the replay of its history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instance {
    pub id: InstanceId,
    pub definition: DefinitionId,
    pub stage: StageId,
    /// Indexed by [`FieldId`]; `None` where unset.
    pub fields: Arc<Vec<Option<Value>>>,
    pub priority: Option<PriorityId>,
    pub queue: Option<QueueId>,
    /// The `seq` of the last event; the optimistic concurrency token.
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Who created it: the actor of its first event (for a spawned instance, whoever performed
    /// the transition that spawned it). Never changes.
    pub created_by: Arc<str>,
}

/// One entry of an instance's history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// 1 for the creation, then one more per event.
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub actor: Arc<str>,
    pub kind: EventKind,
    pub reason: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldChange {
    pub field: FieldId,
    pub old: Option<Value>,
    pub new: Option<Value>,
}

/// Why priority or routing changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// Fields the priority table or routing reads changed.
    Fields,
    /// A stage was entered.
    Stage,
    Escalation,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventKind {
    Created {
        stage: StageId,
        fields: Vec<Option<Value>>,
        priority: Option<PriorityId>,
        queue: Option<QueueId>,
        spawned_by: Option<(InstanceId, String)>,
    },
    Transitioned {
        action: TransitionId,
        from: StageId,
        to: StageId,
    },
    FieldsChanged {
        changes: Vec<FieldChange>,
    },
    PriorityChanged {
        from: Option<PriorityId>,
        to: Option<PriorityId>,
        cause: Cause,
    },
    Routed {
        from: Option<QueueId>,
        to: Option<QueueId>,
        cause: Cause,
    },
    Commented {
        text: String,
    },
    Linked {
        kind: String,
        other: InstanceId,
    },
    /// A transition's `then perform` performed `action` on `other`, linked through `link` (the
    /// other ticket's history records the transition, with this ticket as its reason).
    ActedOn {
        link: String,
        other: InstanceId,
        action: String,
    },
    /// A transition started an instance of another process (its id is in the links).
    Spawned {
        process: String,
        link: String,
    },
    /// A clock reached an escalation step (its index among the clock's steps); the step's
    /// actions follow as their own events. Each step is recorded once per clock.
    Escalated {
        clock: ClockKind,
        step: u32,
        threshold: String,
    },
    /// A clock ran past its target.
    Breached {
        clock: ClockKind,
    },
    /// The ticket's stay in `queue` ran past the queue's operational-level target (once per
    /// stay; see [`crate::runtime::ola`]).
    OlaBreached {
        queue: QueueId,
    },
    /// The delay of an automatic transition (`after`) passed in the stage it leaves; the
    /// transition follows, or a [`EventKind::Skipped`] says why it could not be performed.
    Elapsed {
        transition: TransitionId,
    },
    /// Holders of a role, or people by name, were notified (a row in the notifications
    /// outbox), now or, when held to business hours, at `deliver_at`.
    Notified {
        role: Option<RoleId>,
        people: Vec<Arc<str>>,
        deliver_at: Option<DateTime<Utc>>,
    },
    /// A recurring step of the current stage (its index among the stage's `every`) ran for
    /// a period (1 for the first after entering); its actions follow as their own events.
    Recurred {
        index: u32,
        period: u32,
    },
    /// An item of the checklist of `stage` (the ticket's stage then) was ticked or cleared.
    Checked {
        stage: StageId,
        item: u32,
        done: bool,
    },
    /// An action the engine was to take by itself could not be taken.
    Skipped {
        action: String,
        reason: String,
    },
    /// Entering a stage with an approval chose its plan: the rule that matched (its index
    /// among the approval's rules) and how many levels the plan has (0 for `none`).
    ApprovalRequested {
        rule: u32,
        levels: u32,
    },
    /// A level of the plan opened (0 for the first), with its approvers fixed as the holders
    /// of its roles at this moment, less those segregation of duties excludes.
    LevelOpened {
        level: u32,
        groups: Vec<LevelGroup>,
        /// Holders of the level's roles who may not vote on this ticket.
        excluded: Vec<Arc<str>>,
    },
    /// The open level cannot be met (fewer eligible approvers than its quorum): it waits,
    /// and says why.
    ApprovalStuck {
        level: u32,
        reason: String,
    },
    /// A vote on the open level, on `approver`'s ballot; the event's actor cast it (the
    /// approver, or the delegate voting on their behalf).
    Voted {
        level: u32,
        approver: Arc<str>,
        approve: bool,
        comment: Option<String>,
    },
    /// `from` handed their ballot on the open level to `to`.
    Delegated {
        level: u32,
        from: Arc<str>,
        to: Arc<str>,
    },
    /// Approvers of the open level who had not voted were reminded (reminder `step`).
    Reminded {
        level: u32,
        step: u32,
    },
    /// The approval ended with an outcome and the instance moved to the outcome's stage.
    ApprovalDecided {
        outcome: OutcomeKind,
        from: StageId,
        to: StageId,
    },
    /// The ticket was moved to another version of its process (see [`crate::runtime::migrate`]).
    Migrated(Box<Migration>),
}

/// A ticket's move to another version of its process: its state under the new version, and
/// what it carries over from the old one.
///
/// The history before this event was decided under the version left, and is read under it;
/// what the engine derives from a history (state, clocks, timers, checklists, approvals, OLA
/// stays) starts again here, as from a creation, with the clocks seeded from `clocks`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Migration {
    /// The version left: its id, and its number among its process's versions.
    pub from: DefinitionId,
    pub from_version: u32,
    /// The stage left, by its name in the version left.
    pub from_stage: Arc<str>,
    pub stage: StageId,
    pub fields: Vec<Option<Value>>,
    pub priority: Option<PriorityId>,
    pub queue: Option<QueueId>,
    /// When the ticket entered the stage it was in: the automatic transitions and recurring
    /// steps of its new stage count from then, not from the migration.
    pub entered_at: DateTime<Utc>,
    /// The clocks that keep or recompute their time; a clock not listed starts again.
    pub clocks: Vec<CarriedClock>,
}

/// How a migration treats a service clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ClockMode {
    /// The business time it ran under the old version counts as it was measured there.
    #[default]
    Keep,
    /// It starts again at the migration, as on a new ticket.
    Restart,
    /// The intervals it ran are measured again under the new version's target and calendar.
    Recompute,
}

impl ClockMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ClockMode::Keep => "keep",
            ClockMode::Restart => "restart",
            ClockMode::Recompute => "recompute",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "keep" => Some(ClockMode::Keep),
            "restart" => Some(ClockMode::Restart),
            "recompute" => Some(ClockMode::Recompute),
            _ => None,
        }
    }
}

/// What a clock carries over a migration ([`ClockMode::Keep`] or [`ClockMode::Recompute`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CarriedClock {
    pub clock: ClockKind,
    pub mode: ClockMode,
    pub started_at: DateTime<Utc>,
    /// When it stopped, if it had (it stays stopped).
    pub stopped_at: Option<DateTime<Utc>>,
    /// Business seconds it ran, as measured under the old version (`keep`; 0 otherwise).
    pub elapsed: i64,
    /// The intervals it ran, to measure again (`recompute`; empty otherwise).
    pub running: Vec<(DateTime<Utc>, DateTime<Utc>)>,
    /// The thresholds of the escalation steps already fired on it (`75%`, `2h`): a step of
    /// the new version at the same threshold is not fired again.
    pub fired: Vec<String>,
    /// Its breach was recorded.
    pub breached: bool,
}

/// The events since the ticket last moved to another version: what its state, clocks and
/// timers are derived from (the whole history, for a ticket never migrated).
pub fn current_epoch(events: &[Event]) -> &[Event] {
    match events
        .iter()
        .rposition(|e| matches!(e.kind, EventKind::Migrated(_)))
    {
        Some(i) => &events[i..],
        None => events,
    }
}

/// An item of the checklist of a ticket's stage, as people see it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ChecklistEntry {
    pub item: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    pub done: bool,
}

/// One group of an open approval level, as fixed when it opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LevelGroup {
    pub of: GroupOf,
    /// Approvals the group needs.
    pub needed: u32,
    /// Holders of the role when the level opened, excluded ones included.
    pub holders: u32,
    /// Who may vote in the group.
    pub approvers: Vec<Arc<str>>,
}

/// Who a group of an open level asks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupOf {
    /// The holders of a role.
    Role(RoleId),
    /// One person the ticket names, as written (`manager of requester`).
    Person(Arc<str>),
}

/// A vote waiting to be cast: what "my approvals" lists. Written with the change that opens,
/// delegates or closes the level (the instance's whole list is replaced).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PendingBallot {
    pub instance: InstanceId,
    pub process: Arc<str>,
    pub stage: Arc<str>,
    /// The level (0 for the first).
    pub level: u32,
    /// Who is to vote now.
    pub approver: Arc<str>,
    /// The approver whose ballot it is, when it was delegated.
    pub on_behalf_of: Option<Arc<str>>,
    pub opened_at: DateTime<Utc>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    Open,
    Claimed,
    Done,
}

impl TaskState {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Open => "open",
            TaskState::Claimed => "claimed",
            TaskState::Done => "done",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "open" => Some(TaskState::Open),
            "claimed" => Some(TaskState::Claimed),
            "done" => Some(TaskState::Done),
            _ => None,
        }
    }
}

/// Work waiting in a queue: an instance in a stage that names a queue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Task {
    pub id: TaskId,
    pub instance: InstanceId,
    pub process: Arc<str>,
    pub stage: Arc<str>,
    pub queue: Arc<str>,
    /// Position of the instance's priority (0 most urgent); `None` sorts last.
    pub priority: Option<u32>,
    /// When the ticket's resolve target (SLA) is due, while that clock runs.
    pub due_at: Option<DateTime<Utc>>,
    /// When the ticket's stay in this queue reaches the queue's OLA target, while it runs.
    pub ola_due_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub state: TaskState,
    /// Pushed to this agent (round-robin or least-loaded queues).
    pub assigned_to: Option<Arc<str>>,
    pub claimed_by: Option<Arc<str>>,
    pub lease_until: Option<DateTime<Utc>>,
    /// Fencing token: incremented by every claim; renew, release and complete must present it.
    pub token: i64,
}

impl Task {
    /// Whether someone other than `agent` holds a live lease on it at `now`.
    pub fn claimed_by_other(&self, agent: &str, now: DateTime<Utc>) -> bool {
        self.state == TaskState::Claimed
            && self.lease_until.is_some_and(|l| l > now)
            && self.claimed_by.as_deref() != Some(agent)
    }

    /// Whether `agent` holds it under fencing token `token`: what completing, renewing or
    /// releasing a claim presents.
    pub fn leased_to(&self, token: i64, agent: &str) -> bool {
        self.state == TaskState::Claimed
            && self.token == token
            && self.claimed_by.as_deref() == Some(agent)
    }

    /// Who has claimed it (empty for nobody).
    pub fn claimant(&self) -> &str {
        self.claimed_by.as_deref().unwrap_or_default()
    }

    /// Who it is with: its claimant, else the agent it is pushed to (empty for nobody).
    pub fn holder(&self) -> &str {
        self.claimed_by
            .as_deref()
            .or(self.assigned_to.as_deref())
            .unwrap_or_default()
    }
}

/// A task to create with a change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewTask {
    pub process: Arc<str>,
    pub stage: Arc<str>,
    pub queue: Arc<str>,
    pub priority: Option<u32>,
    pub due_at: Option<DateTime<Utc>>,
    pub ola_due_at: Option<DateTime<Utc>>,
    pub assigned_to: Option<Arc<str>>,
}

/// How the task an instance leaves is closed, and what must hold for that.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fence {
    /// Completing a claimed task: the claim must still be this agent's, with this token.
    Token { token: i64, agent: Arc<str> },
    /// Acting on the instance directly: nobody else may hold a live lease on the task.
    NotClaimedByOther { actor: Arc<str>, now: DateTime<Utc> },
}

impl Fence {
    /// The engine's own actions (escalations, automatic transitions) close the task whoever
    /// holds it: no lease outlives the end of time.
    pub fn engine() -> Self {
        Fence::NotClaimedByOther {
            actor: Actor::system().name,
            now: DateTime::<Utc>::MAX_UTC,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloseTask {
    pub task: TaskId,
    pub fence: Fence,
}

/// Changes to an open task when the instance stays in its stage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpdateTask {
    pub task: TaskId,
    pub queue: Arc<str>,
    pub priority: Option<u32>,
    pub due_at: Option<DateTime<Utc>>,
    pub ola_due_at: Option<DateTime<Utc>>,
    /// When the task moves to another queue: who it is pushed to there (`None`: nobody, it
    /// waits to be claimed); a claim on it ends there too, since the team it left no longer
    /// works it. Ignored when the queue stays the same (the assignment and claim stay).
    pub assigned_to: Option<Arc<str>>,
}

/// A new instance with its first event and task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewInstance {
    /// `id` is assigned by the store.
    pub instance: Instance,
    pub events: Vec<Event>,
    pub task: Option<NewTask>,
    /// For spawned instances: the link to the parent, as stored.
    pub parent: Option<ParentLink>,
    /// When it first has something due (see [`crate::runtime::timers`]), if ever.
    pub wakeup: Option<DateTime<Utc>>,
}

/// How a spawned instance is linked to the instance that spawned it: the stored kind, and
/// whether the link is stored from the child (the parent's kind reads the child's declared
/// links `via` that kind).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParentLink {
    pub parent: InstanceId,
    pub kind: String,
    pub from_child: bool,
}

impl ParentLink {
    /// The stored link, once the child has its id.
    pub fn link(&self, child: InstanceId, at: DateTime<Utc>) -> Link {
        let (from, to) = match self.from_child {
            true => (child, self.parent),
            false => (self.parent, child),
        };
        Link {
            from,
            to,
            kind: self.kind.clone(),
            created_at: at,
        }
    }
}

/// Everything one action does, applied in one transaction or not at all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// The new state; its `version` is the `seq` of the last of `events`.
    pub instance: std::sync::Arc<Instance>,
    pub expected_version: i64,
    pub events: Vec<Event>,
    pub close_task: Option<CloseTask>,
    pub update_task: Option<UpdateTask>,
    pub new_task: Option<NewTask>,
    pub links: Vec<Link>,
    pub spawns: Vec<NewInstance>,
    /// When the instance next has something due after the change (`Some(None)`: never),
    /// replacing the stored wake-up; `None` when the change does not move it, so it is left
    /// alone.
    pub wakeup: Option<Option<DateTime<Utc>>>,
    /// Rows for the notifications outbox, written with the change.
    pub notifications: Vec<NewNotification>,
    /// The instance's pending approval ballots after the change; `None` when the change
    /// leaves them as they are.
    pub ballots: Option<BallotChange>,
    /// Changes to other instances (linked tickets a transition acts on) written in the same
    /// transaction, each under its own version check: all of them or none. Never nested.
    pub cascade: Vec<Change>,
    /// For a change in [`Change::cascade`]: its instance's open task as the change was decided
    /// on, so the engine can tell queue listeners what the change took away or moved. Not
    /// written.
    pub task_before: Option<Task>,
}

impl Change {
    /// A change to `instance` (its state after), decided on version `expected_version`,
    /// writing `events` and nothing else yet.
    pub fn new(instance: Arc<Instance>, expected_version: i64, events: Vec<Event>) -> Self {
        Change {
            instance,
            expected_version,
            events,
            close_task: None,
            update_task: None,
            new_task: None,
            links: Vec::new(),
            spawns: Vec::new(),
            wakeup: None,
            notifications: Vec::new(),
            ballots: None,
            cascade: Vec::new(),
            task_before: None,
        }
    }
}

/// How a change leaves an instance's pending ballots.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BallotChange {
    /// These are all of them now, replacing those before (a level opened or closed, the
    /// stage left).
    All(Vec<PendingBallot>),
    /// Only these changed (a vote, a delegation): the ballots that go, by who was to cast
    /// them, and those that come.
    Some {
        removed: Vec<Arc<str>>,
        added: Vec<PendingBallot>,
    },
}

impl BallotChange {
    /// No ballots any more.
    pub fn cleared() -> Self {
        BallotChange::All(Vec::new())
    }

    /// This change, then `next`, as one.
    pub fn then(self, next: BallotChange) -> BallotChange {
        match (self, next) {
            (_, all @ BallotChange::All(_)) => all,
            (BallotChange::All(mut list), BallotChange::Some { removed, added }) => {
                list.retain(|b| !removed.contains(&b.approver));
                list.extend(added);
                BallotChange::All(list)
            }
            (
                BallotChange::Some {
                    removed: mut gone,
                    added: mut came,
                },
                BallotChange::Some { removed, added },
            ) => {
                came.retain(|b| !removed.contains(&b.approver));
                gone.extend(removed);
                came.extend(added);
                BallotChange::Some {
                    removed: gone,
                    added: came,
                }
            }
        }
    }

    /// The ballots `user` holds on the instance after the change, if the change concerns
    /// them (`None`: theirs, if any, are as they were).
    pub fn for_user(&self, user: &str) -> Option<Vec<&PendingBallot>> {
        match self {
            BallotChange::All(list) => Some(list.iter().filter(|b| &*b.approver == user).collect()),
            BallotChange::Some { removed, added } => {
                let mine: Vec<&PendingBallot> =
                    added.iter().filter(|b| &*b.approver == user).collect();
                (removed.iter().any(|r| &**r == user) || !mine.is_empty()).then_some(mine)
            }
        }
    }
}

/// A due point of an instance: what falls due (`kind` `escalation`, `breach` or `after`;
/// `what` the clock or the transition; `step` the escalation step, else 0), in which cycle
/// (the clock's start, or the history entry that entered the stage, as microseconds or a
/// sequence number), and when. Derived from the history ([`crate::runtime::timers::Schedule`]); the
/// store keeps only each instance's earliest, as the time to look at it again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Timer {
    pub kind: &'static str,
    pub what: String,
    pub step: u32,
    pub cycle: i64,
    pub due_at: DateTime<Utc>,
}

/// A notification to write to the outbox with a change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewNotification {
    pub role: String,
    /// The people it is for, when it is for some holders of the role only (the approvers who
    /// have not voted, say); empty for every holder.
    pub recipients: Vec<String>,
    pub clock: Option<String>,
    pub threshold: Option<String>,
    pub message: String,
    /// Now, or the next business opening for a notification held to business hours.
    pub deliver_at: DateTime<Utc>,
}

/// A row of the notifications outbox: whoever delivers notifications (mail, chat, the HTTP
/// API) reads the rows due and marks them delivered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Notification {
    pub id: i64,
    pub instance: InstanceId,
    pub role: String,
    /// The people it is for; empty for every holder of the role.
    pub recipients: Vec<String>,
    pub clock: Option<String>,
    pub threshold: Option<String>,
    pub message: String,
    pub created_at: DateTime<Utc>,
    pub deliver_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    /// Delivery attempts so far (each claim counts one).
    pub attempts: u32,
    /// Why the last attempt failed, if it did.
    pub last_error: Option<String>,
    /// When delivery was given up after too many failed attempts (a dead letter).
    pub dead_at: Option<DateTime<Utc>>,
}

/// Which outbox rows to list. Every condition given must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NotificationFilter {
    pub role: Option<String>,
    pub instance: Option<InstanceId>,
    /// Only rows not yet marked delivered.
    pub undelivered: bool,
    /// Only rows whose delivery time has come by this instant (held rows wait for it).
    pub deliverable_at: Option<DateTime<Utc>>,
}

impl NotificationFilter {
    /// Rows to deliver now: not delivered, and not held past `now`.
    pub fn to_deliver(now: DateTime<Utc>) -> Self {
        NotificationFilter {
            undelivered: true,
            deliverable_at: Some(now),
            ..Default::default()
        }
    }

    pub fn matches(&self, n: &Notification) -> bool {
        self.role.as_ref().is_none_or(|r| *r == n.role)
            && self.instance.is_none_or(|i| i == n.instance)
            && (!self.undelivered || n.delivered_at.is_none())
            && self.deliverable_at.is_none_or(|at| n.deliver_at <= at)
    }
}

/// A directed link between two instances, e.g. incident `caused_by` problem.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Link {
    pub from: InstanceId,
    pub to: InstanceId,
    pub kind: String,
    pub created_at: DateTime<Utc>,
}
