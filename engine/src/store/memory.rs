//! The store in memory: the same semantics as the databases, for simulations, tests and the
//! in-memory runtime. One mutex makes every method atomic.

use std::collections::BTreeSet;

use foldhash::{HashMap, HashMapExt, HashSet};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

use super::{
    sql, Committed, Created, InstanceAndTask, InstanceFilter, NewDefinition, Result, Store,
    StoreError, StoredDefinition, StoredDefinitions,
};
use crate::record::codec;
use crate::record::types::*;
use crate::record::{DefinitionId, Definitions, ProcessVersion, ProjectSource};

/// Events a new instance's history has room for: an incident from creation to closure
/// (routing, priority and stage changes included) takes about this many.
const HISTORY_ROOM: usize = 8;

/// Queue order: priority (unset last), due time (unset last), creation, id.
type OrderKey = (u32, i64, i64, i64);

fn order_key(t: &Task) -> OrderKey {
    (
        t.priority.unwrap_or(u32::MAX),
        t.due_at.map(|d| d.timestamp_micros()).unwrap_or(i64::MAX),
        t.created_at.timestamp_micros(),
        t.id.0,
    )
}

/// Rows by id, for ids handed out in order from 1 and never removed: a row's place is its id.
/// The rows a ticket's actions touch, the newest, then sit together at the end, where a hash
/// map scatters them over its whole table (a cache and TLB miss at each lookup once the table
/// outgrows the caches, which is what slowed down simulations that keep every ticket).
struct Rows<T>(Vec<T>);

impl<T> Default for Rows<T> {
    fn default() -> Self {
        Rows(Vec::new())
    }
}

impl<T> Rows<T> {
    fn place(id: i64) -> Option<usize> {
        usize::try_from(id.checked_sub(1)?).ok()
    }

    fn get(&self, id: i64) -> Option<&T> {
        self.0.get(Self::place(id)?)
    }

    fn get_mut(&mut self, id: i64) -> Option<&mut T> {
        self.0.get_mut(Self::place(id)?)
    }

    /// The id the next row pushed gets.
    fn next_id(&self) -> i64 {
        self.0.len() as i64 + 1
    }

    fn push(&mut self, row: T) {
        self.0.push(row);
    }
}

/// An instance and what the store keeps beside it.
struct Ticket {
    instance: Arc<Instance>,
    history: Vec<Event>,
    open_task: Option<TaskId>,
    /// When its earliest point is due, and when it may next be claimed (then, or the end of a
    /// lease on it); microseconds.
    wakeup: Option<(i64, i64)>,
}

#[derive(Default)]
struct Inner {
    definitions: Vec<StoredDefinition>,
    projects: HashMap<String, ProjectSource>,
    tickets: Rows<Ticket>,
    links: Vec<Link>,
    /// Each link's pair and kind: a link is kept once per pair and kind, as the SQL stores'
    /// key does.
    link_keys: HashSet<(InstanceId, InstanceId, String)>,
    tasks: Rows<Task>,
    /// Tasks not done, per queue, in queue order.
    queues: HashMap<Arc<str>, BTreeSet<OrderKey>>,
    /// Name -> (roles, active).
    agents: std::collections::BTreeMap<String, (Vec<String>, bool)>,
    /// Per queue, the tasks in it (done ones too) pushed to someone, by id: the newest is the
    /// queue's last assignee, as the SQL stores read it from their task rows.
    pushed: HashMap<Arc<str>, std::collections::BTreeMap<TaskId, Arc<str>>>,
    /// Per agent, the tasks not done they hold (claimed by them, or pushed to them and not
    /// claimed yet), kept as tasks change: least-loaded pushing reads its candidates only.
    loads: HashMap<Arc<str>, u64>,
    /// `(claimable from, instance)`, in order: the tickets' wake-ups.
    wakeup_order: BTreeSet<(i64, InstanceId)>,
    notifications: Vec<Notification>,
    /// Per notification (by position): until when it is leased to a deliverer or waits to be
    /// tried again.
    notification_leases: Vec<Option<DateTime<Utc>>>,
    /// Pending approval ballots per instance, as the last change that moved them wrote them.
    ballots: HashMap<InstanceId, Vec<PendingBallot>>,
    next_definition: i64,
}

pub struct MemoryStore {
    inner: Mutex<Inner>,
    /// The published definitions (the engine's catalog): instances hold stage and queue ids, and
    /// listing filters on their names.
    catalog: Arc<dyn Definitions>,
}

impl MemoryStore {
    /// An empty store; `catalog` must be the one the engine is opened with, as for the
    /// databases.
    pub fn new(catalog: Arc<dyn Definitions>) -> Self {
        MemoryStore {
            inner: Mutex::default(),
            catalog,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Whom a task counts against in least-loaded pushing: its claimant, else its assignee, while
/// it is not done.
fn holder_of(t: &Task) -> Option<&Arc<str>> {
    if t.state == TaskState::Done {
        return None;
    }
    t.claimed_by.as_ref().or(t.assigned_to.as_ref())
}

/// Count a task for its holder (`up`), or stop counting it.
fn count_load(loads: &mut HashMap<Arc<str>, u64>, holder: Option<&Arc<str>>, up: bool) {
    let Some(holder) = holder else { return };
    if up {
        *loads.entry(holder.clone()).or_default() += 1;
    } else if let Some(n) = loads.get_mut(&**holder) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            loads.remove(&**holder);
        }
    }
}

/// Put a task in its queue's order (a new queue shares the task's name for its key).
/// Note a task pushed to an agent in the record of its queue's pushed tasks.
fn note_pushed(
    pushed: &mut HashMap<Arc<str>, std::collections::BTreeMap<TaskId, Arc<str>>>,
    task: &Task,
) {
    if let Some(a) = &task.assigned_to {
        pushed
            .entry(task.queue.clone())
            .or_default()
            .insert(task.id, a.clone());
    }
}

fn enqueue(queues: &mut HashMap<Arc<str>, BTreeSet<OrderKey>>, task: &Task) {
    let key = order_key(task);
    match queues.get_mut(&*task.queue) {
        Some(q) => {
            q.insert(key);
        }
        None => {
            queues.insert(task.queue.clone(), BTreeSet::from([key]));
        }
    }
}

impl Inner {
    /// Whether `change` may be written: its version check and task fence.
    fn check(&self, change: &Change) -> Result<()> {
        let id = change.instance.id;
        let current = self.tickets.get(id.0).ok_or(StoreError::NoInstance(id))?;
        if current.instance.version != change.expected_version {
            return Err(StoreError::Conflict {
                id,
                expected: change.expected_version,
            });
        }
        // Check the task fence before changing anything: the same conditions as the SQL
        // stores' statements, and the same reasons when it does not hold.
        if let Some(close) = &change.close_task {
            let task = self.tasks.get(close.task.0);
            let holds = task.is_some_and(|t| match &close.fence {
                Fence::Token { token, agent } => t.leased_to(*token, agent),
                Fence::NotClaimedByOther { actor, now } => {
                    t.state != TaskState::Done && !t.claimed_by_other(actor, *now)
                }
            });
            if !holds {
                return Err(StoreError::fence_refused(close, task));
            }
        }
        Ok(())
    }

    /// Write a change that [`Inner::check`] accepted.
    fn apply(&mut self, change: Change) -> Committed {
        let id = change.instance.id;
        let at = change.instance.updated_at;
        if let Some(close) = &change.close_task {
            self.with_task(close.task, |t| {
                t.state = TaskState::Done;
                t.lease_until = None;
            });
        }
        let mut touched = None;
        if let Some(update) = change.update_task {
            self.with_task(update.task, |t| {
                // A task moved to another queue is pushed to whom the engine chose there, and
                // a claim on it ends: the team it left no longer works it.
                if t.queue != update.queue {
                    t.assigned_to = update.assigned_to;
                    if t.state == TaskState::Claimed {
                        t.state = TaskState::Open;
                    }
                    t.claimed_by = None;
                    t.lease_until = None;
                }
                t.queue = update.queue;
                t.priority = update.priority;
                t.due_at = update.due_at;
                t.ola_due_at = update.ola_due_at;
            });
            touched = Some(update.task);
        }
        if let Some(task) = change.new_task {
            touched = Some(self.insert_task(id, task, at));
        }
        for link in change.links {
            self.add_link(link);
        }
        let mut spawned = Vec::with_capacity(change.spawns.len());
        for s in change.spawns {
            let child = self.insert_instance(s);
            spawned.push((child, self.open_task(child)));
        }
        if let Some(wakeup) = change.wakeup {
            self.set_wakeup(id, wakeup);
        }
        self.insert_notifications(id, change.notifications, at);
        match change.ballots {
            Some(BallotChange::All(list)) if list.is_empty() => {
                self.ballots.remove(&id);
            }
            Some(BallotChange::All(list)) => {
                self.ballots.insert(id, list);
            }
            Some(BallotChange::Some { removed, added }) => {
                let list = self.ballots.entry(id).or_default();
                list.retain(|b| !removed.contains(&b.approver));
                list.extend(added);
            }
            None => {}
        }
        if let Some(ticket) = self.tickets.get_mut(id.0) {
            ticket.history.extend(change.events);
            ticket.instance = change.instance;
        }
        let task = touched.and_then(|t| self.tasks.get(t.0)).cloned();
        Committed {
            spawned,
            task,
            cascaded: Vec::new(),
        }
    }

    fn insert_task(&mut self, instance: InstanceId, new: NewTask, at: DateTime<Utc>) -> TaskId {
        let task = Task {
            id: TaskId(self.tasks.next_id()),
            instance,
            process: new.process,
            stage: new.stage,
            queue: new.queue,
            priority: new.priority,
            due_at: new.due_at,
            ola_due_at: new.ola_due_at,
            created_at: at,
            state: TaskState::Open,
            assigned_to: new.assigned_to,
            claimed_by: None,
            lease_until: None,
            token: 0,
        };
        enqueue(&mut self.queues, &task);
        count_load(&mut self.loads, holder_of(&task), true);
        if let Some(ticket) = self.tickets.get_mut(instance.0) {
            ticket.open_task = Some(task.id);
        }
        note_pushed(&mut self.pushed, &task);
        let id = task.id;
        self.tasks.push(task);
        id
    }

    /// Replace an instance's wake-up.
    fn set_wakeup(&mut self, instance: InstanceId, at: Option<DateTime<Utc>>) {
        let Some(ticket) = self.tickets.get_mut(instance.0) else {
            return;
        };
        if let Some((_, claimable)) = ticket.wakeup.take() {
            self.wakeup_order.remove(&(claimable, instance));
        }
        if let Some(at) = at {
            let at = at.timestamp_micros();
            ticket.wakeup = Some((at, at));
            self.wakeup_order.insert((at, instance));
        }
    }

    fn insert_notifications(
        &mut self,
        instance: InstanceId,
        rows: Vec<NewNotification>,
        at: DateTime<Utc>,
    ) {
        for n in rows {
            let id = self.notifications.len() as i64 + 1;
            self.notifications.push(Notification {
                id,
                instance,
                role: n.role,
                recipients: n.recipients,
                clock: n.clock,
                threshold: n.threshold,
                message: n.message,
                created_at: at,
                deliver_at: n.deliver_at,
                delivered_at: None,
                attempts: 0,
                last_error: None,
                dead_at: None,
            });
            self.notification_leases.push(None);
        }
    }

    fn add_link(&mut self, link: Link) {
        if self
            .link_keys
            .insert((link.from, link.to, link.kind.clone()))
        {
            self.links.push(link);
        }
    }

    fn insert_instance(&mut self, new: NewInstance) -> InstanceId {
        let id = InstanceId(self.tickets.next_id());
        let mut inst = new.instance;
        inst.id = id;
        let at = inst.created_at;
        if let Some(parent) = &new.parent {
            self.add_link(parent.link(id, at));
        }
        // Room for a ticket's usual history from the start, so its first actions append
        // without growing the vector from one event, one reallocation at a time.
        let mut history = Vec::with_capacity(new.events.len().max(HISTORY_ROOM));
        history.extend(new.events);
        self.tickets.push(Ticket {
            instance: Arc::new(inst),
            history,
            open_task: None,
            wakeup: None,
        });
        self.set_wakeup(id, new.wakeup);
        if let Some(task) = new.task {
            self.insert_task(id, task, at);
        }
        id
    }

    /// Apply `f` to a task, keeping what is kept beside the tasks up to date: its queue's order
    /// (left when done), its holder's load, the record of pushed tasks, the instance's open
    /// task.
    fn with_task(&mut self, id: TaskId, f: impl FnOnce(&mut Task)) {
        let Some(task) = self.tasks.get_mut(id.0) else {
            return;
        };
        if let Some(q) = self.queues.get_mut(&*task.queue) {
            q.remove(&order_key(task));
        }
        let held_by = holder_of(task).cloned();
        let (queue, assignee) = (task.queue.clone(), task.assigned_to.clone());
        f(task);
        if held_by.as_ref() != holder_of(task) {
            count_load(&mut self.loads, held_by.as_ref(), false);
            count_load(&mut self.loads, holder_of(task), true);
        }
        if queue != task.queue || assignee != task.assigned_to {
            if let Some(p) = self.pushed.get_mut(&*queue) {
                p.remove(&id);
            }
            note_pushed(&mut self.pushed, task);
        }
        if task.state != TaskState::Done {
            enqueue(&mut self.queues, task);
        } else if let Some(ticket) = self.tickets.get_mut(task.instance.0) {
            if ticket.open_task == Some(id) {
                ticket.open_task = None;
            }
        }
    }

    /// The tasks not done, from the queues (which hold them all): however many tickets a
    /// simulation has closed, only the open work is read.
    fn not_done(&self) -> impl Iterator<Item = &Task> {
        self.queues
            .values()
            .flatten()
            .filter_map(|k| self.tasks.get(k.3))
    }

    fn open_task(&self, id: InstanceId) -> Option<Task> {
        self.tickets
            .get(id.0)
            .and_then(|t| t.open_task)
            .and_then(|t| self.tasks.get(t.0))
            .cloned()
    }

    fn claimable(task: &Task, agent: &str, now: DateTime<Utc>) -> bool {
        let free = match task.state {
            TaskState::Open => true,
            TaskState::Claimed => task.lease_until.is_none_or(|l| l <= now),
            TaskState::Done => false,
        };
        free && task.assigned_to.as_deref().is_none_or(|a| a == agent)
    }

    fn claim_task(&mut self, id: TaskId, agent: &str, lease_until: DateTime<Utc>) -> Option<Task> {
        self.with_task(id, |t| {
            t.state = TaskState::Claimed;
            t.claimed_by = Some(Arc::from(agent));
            t.lease_until = Some(lease_until);
            t.token += 1;
        });
        self.tasks.get(id.0).cloned()
    }
}

impl MemoryStore {
    /// Whether an instance meets the filter; `definitions` keeps the ones looked up so far.
    fn matches(
        &self,
        filter: &InstanceFilter,
        inst: &Instance,
        definitions: &mut HashMap<DefinitionId, Arc<ProcessVersion>>,
    ) -> Result<bool> {
        if filter
            .created_by
            .as_ref()
            .is_some_and(|c| **c != *inst.created_by)
        {
            return Ok(false);
        }
        if filter.process.is_none() && filter.stage.is_none() && filter.queue.is_none() {
            return Ok(true);
        }
        let def = match definitions.entry(inst.definition) {
            std::collections::hash_map::Entry::Occupied(d) => d.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(sql::definition(&*self.catalog, inst.definition)?)
            }
        };
        Ok(filter.process.as_deref().is_none_or(|p| p == def.process)
            && filter
                .stage
                .as_deref()
                .is_none_or(|s| s == codec::stage_name(def, inst.stage))
            && filter
                .queue
                .as_deref()
                .is_none_or(|q| Some(q) == codec::queue_name(def, inst.queue)))
    }
}

impl Store for MemoryStore {
    async fn load_definitions(&self) -> Result<StoredDefinitions> {
        let inner = self.lock();
        let projects = inner
            .projects
            .iter()
            .map(|(h, s)| (h.clone(), s.clone()))
            .collect();
        Ok((inner.definitions.clone(), projects))
    }

    async fn save_definitions(
        &self,
        project_hash: &str,
        source: &ProjectSource,
        definitions: &[NewDefinition],
        at: DateTime<Utc>,
    ) -> Result<Vec<DefinitionId>> {
        let mut inner = self.lock();
        inner
            .projects
            .entry(project_hash.to_string())
            .or_insert_with(|| source.clone());
        let mut ids = Vec::with_capacity(definitions.len());
        for d in definitions {
            inner.next_definition += 1;
            let id = DefinitionId(inner.next_definition);
            inner.definitions.push(StoredDefinition {
                id,
                process: d.process.clone(),
                version: d.version,
                hash: d.hash.clone(),
                project_hash: project_hash.to_string(),
                published_at: at,
            });
            ids.push(id);
        }
        Ok(ids)
    }

    async fn create(&self, new: NewInstance) -> Result<Created> {
        let mut inner = self.lock();
        let id = inner.insert_instance(new);
        Ok((id, inner.open_task(id)))
    }

    async fn instance(&self, id: InstanceId) -> Result<Option<Instance>> {
        Ok(self
            .lock()
            .tickets
            .get(id.0)
            .map(|t| Instance::clone(&t.instance)))
    }

    async fn instance_with_task(
        &self,
        id: InstanceId,
    ) -> Result<Option<(std::sync::Arc<Instance>, Option<Task>)>> {
        let inner = self.lock();
        let Some(ticket) = inner.tickets.get(id.0) else {
            return Ok(None);
        };
        Ok(Some((ticket.instance.clone(), inner.open_task(id))))
    }

    async fn list_instances(
        &self,
        filter: &InstanceFilter,
        limit: u32,
    ) -> Result<Vec<InstanceAndTask>> {
        let inner = self.lock();
        // Ids are handed out in order and instances are never removed, so counting down from
        // the cursor walks them newest first.
        let below = filter.before.map_or(inner.tickets.next_id(), |b| {
            b.0.min(inner.tickets.next_id())
        });
        let mut definitions = HashMap::new();
        let mut found = Vec::new();
        for id in (1..below).rev().map(InstanceId) {
            if found.len() >= limit as usize {
                break;
            }
            let Some(ticket) = inner.tickets.get(id.0) else {
                continue;
            };
            if self.matches(filter, &ticket.instance, &mut definitions)? {
                found.push((ticket.instance.clone(), inner.open_task(id)));
            }
        }
        Ok(found)
    }

    async fn commit(&self, mut change: Change) -> Result<Committed> {
        let mut inner = self.lock();
        // Every check before any write: the change and the changes it carries to linked
        // tickets apply together or not at all.
        let cascade = std::mem::take(&mut change.cascade);
        inner.check(&change)?;
        for c in &cascade {
            inner.check(c)?;
        }
        let mut committed = inner.apply(change);
        committed.cascaded = cascade.into_iter().map(|c| inner.apply(c)).collect();
        Ok(committed)
    }

    async fn pending_ballots(&self, user: &str, limit: u32) -> Result<Vec<PendingBallot>> {
        let inner = self.lock();
        let mut found: Vec<PendingBallot> = inner
            .ballots
            .values()
            .flatten()
            .filter(|b| &*b.approver == user)
            .cloned()
            .collect();
        found.sort_by_key(|b| (b.opened_at, b.instance));
        found.truncate(limit as usize);
        Ok(found)
    }

    async fn history(&self, id: InstanceId) -> Result<Vec<Event>> {
        Ok(self
            .lock()
            .tickets
            .get(id.0)
            .map(|t| t.history.clone())
            .unwrap_or_default())
    }

    async fn links(&self, id: InstanceId) -> Result<Vec<Link>> {
        let mut links: Vec<Link> = self
            .lock()
            .links
            .iter()
            .filter(|l| l.from == id || l.to == id)
            .cloned()
            .collect();
        // The SQL stores' order.
        links.sort_by_key(|l| (l.created_at, l.from, l.to));
        Ok(links)
    }

    async fn task(&self, id: TaskId) -> Result<Option<Task>> {
        Ok(self.lock().tasks.get(id.0).cloned())
    }

    async fn queue_tasks(&self, queue: &str, limit: u32) -> Result<Vec<Task>> {
        let inner = self.lock();
        Ok(inner
            .queues
            .get(queue)
            .into_iter()
            .flatten()
            .take(limit as usize)
            .filter_map(|k| inner.tasks.get(k.3).cloned())
            .collect())
    }

    async fn queue_counts(&self) -> Result<Vec<(String, u64)>> {
        let inner = self.lock();
        let mut counts: Vec<(String, u64)> = inner
            .queues
            .iter()
            .filter(|(_, q)| !q.is_empty())
            .map(|(name, q)| (name.to_string(), q.len() as u64))
            .collect();
        counts.sort();
        Ok(counts)
    }

    async fn claim_next(
        &self,
        queue: &str,
        agent: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<Task>> {
        let mut inner = self.lock();
        let found = inner.queues.get(queue).and_then(|q| {
            q.iter().map(|k| TaskId(k.3)).find(|id| {
                inner
                    .tasks
                    .get(id.0)
                    .is_some_and(|t| Inner::claimable(t, agent, now))
            })
        });
        Ok(found.and_then(|id| inner.claim_task(id, agent, lease_until)))
    }

    async fn claim(
        &self,
        id: TaskId,
        agent: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Task> {
        let mut inner = self.lock();
        let task = inner.tasks.get(id.0);
        let claimable = task.is_some_and(|t| {
            t.state != TaskState::Done
                && (t.claimed_by.as_deref() == Some(agent) || Inner::claimable(t, agent, now))
        });
        if !claimable {
            return Err(StoreError::claim_refused(id, task));
        }
        inner
            .claim_task(id, agent, lease_until)
            .ok_or(StoreError::NoTask(id))
    }

    async fn renew(
        &self,
        id: TaskId,
        token: i64,
        agent: &str,
        _now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Task> {
        let mut inner = self.lock();
        match inner.tasks.get_mut(id.0) {
            Some(task) if task.leased_to(token, agent) => {
                task.lease_until = Some(lease_until);
                Ok(task.clone())
            }
            other => Err(StoreError::lease_refused(id, other.as_deref())),
        }
    }

    async fn release(&self, id: TaskId, token: i64, agent: &str) -> Result<Task> {
        let mut inner = self.lock();
        let task = inner.tasks.get(id.0);
        if !task.is_some_and(|t| t.leased_to(token, agent)) {
            return Err(StoreError::lease_refused(id, task));
        }
        inner.with_task(id, |t| {
            t.state = TaskState::Open;
            t.claimed_by = None;
            t.lease_until = None;
        });
        inner.tasks.get(id.0).cloned().ok_or(StoreError::NoTask(id))
    }

    async fn set_agent(
        &self,
        name: &str,
        roles: &[String],
        active: bool,
        _at: DateTime<Utc>,
    ) -> Result<Vec<Task>> {
        let mut inner = self.lock();
        inner
            .agents
            .insert(name.to_string(), (roles.to_vec(), active));
        let mut returned = Vec::new();
        if !active {
            let ids: Vec<TaskId> = inner
                .not_done()
                .filter(|t| t.state == TaskState::Open && t.assigned_to.as_deref() == Some(name))
                .map(|t| t.id)
                .collect();
            for id in ids {
                inner.with_task(id, |t| t.assigned_to = None);
                returned.extend(inner.tasks.get(id.0).cloned());
            }
        }
        Ok(returned)
    }

    async fn active_agents(&self) -> Result<Vec<(String, Vec<String>)>> {
        Ok(self
            .lock()
            .agents
            .iter()
            .filter(|(_, (_, active))| *active)
            .map(|(n, (roles, _))| (n.clone(), roles.clone()))
            .collect())
    }

    async fn agent_loads(&self, agents: &[&str]) -> Result<Vec<(String, u64)>> {
        let inner = self.lock();
        let loads: std::collections::BTreeMap<&str, u64> = agents
            .iter()
            .filter_map(|a| inner.loads.get(*a).map(|n| (*a, *n)))
            .collect();
        Ok(loads.into_iter().map(|(a, n)| (a.to_string(), n)).collect())
    }

    async fn last_assignee(&self, queue: &str) -> Result<Option<String>> {
        Ok(self
            .lock()
            .pushed
            .get(queue)
            .and_then(|p| p.last_key_value())
            .map(|(_, a)| a.to_string()))
    }

    async fn claim_wakeups(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<InstanceId>> {
        let mut inner = self.lock();
        let now = now.timestamp_micros();
        let lease = lease_until.timestamp_micros();
        let claimable: Vec<(i64, InstanceId)> = inner
            .wakeup_order
            .iter()
            .take_while(|(at, _)| *at <= now)
            .take(limit as usize)
            .copied()
            .collect();
        let mut due = Vec::with_capacity(claimable.len());
        for (at, id) in claimable {
            inner.wakeup_order.remove(&(at, id));
            inner.wakeup_order.insert((lease, id));
            let wakeup = inner.tickets.get_mut(id.0).and_then(|t| t.wakeup.as_mut());
            if let Some((due_at, claimable)) = wakeup {
                *claimable = lease;
                due.push((*due_at, id));
            }
        }
        due.sort_unstable();
        Ok(due.into_iter().map(|(_, id)| id).collect())
    }

    async fn next_wakeup_at(&self) -> Result<Option<DateTime<Utc>>> {
        Ok(self
            .lock()
            .wakeup_order
            .first()
            .and_then(|(at, _)| DateTime::from_timestamp_micros(*at)))
    }

    async fn wakeup(&self, instance: InstanceId) -> Result<Option<DateTime<Utc>>> {
        Ok(self
            .lock()
            .tickets
            .get(instance.0)
            .and_then(|t| t.wakeup)
            .and_then(|(at, _)| DateTime::from_timestamp_micros(at)))
    }

    async fn notifications(
        &self,
        filter: &NotificationFilter,
        limit: u32,
        after_id: Option<i64>,
    ) -> Result<Vec<Notification>> {
        let inner = self.lock();
        let from = usize::try_from(after_id.unwrap_or(0).max(0)).unwrap_or(usize::MAX);
        Ok(inner
            .notifications
            .iter()
            .skip(from)
            .filter(|n| filter.matches(n))
            .take(limit as usize)
            .cloned()
            .collect())
    }

    async fn claim_deliveries(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Notification>> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let mut claimed = Vec::new();
        for (n, lease) in inner
            .notifications
            .iter_mut()
            .zip(inner.notification_leases.iter_mut())
        {
            if claimed.len() >= limit as usize {
                break;
            }
            let claimable = n.delivered_at.is_none()
                && n.dead_at.is_none()
                && n.deliver_at <= now
                && lease.is_none_or(|until| until <= now);
            if claimable {
                *lease = Some(lease_until);
                n.attempts += 1;
                claimed.push(n.clone());
            }
        }
        Ok(claimed)
    }

    async fn delivery_failed(
        &self,
        id: i64,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let Some(i) = usize::try_from(id - 1).ok() else {
            return Ok(());
        };
        if let (Some(n), Some(lease)) = (
            inner.notifications.get_mut(i),
            inner.notification_leases.get_mut(i),
        ) {
            n.last_error = Some(error.to_string());
            match retry_at {
                Some(at) => *lease = Some(at),
                None => n.dead_at = Some(now),
            }
        }
        Ok(())
    }

    async fn mark_delivered(&self, ids: &[i64], at: DateTime<Utc>) -> Result<u64> {
        let mut inner = self.lock();
        let mut marked = 0;
        for id in ids {
            let slot = usize::try_from(*id - 1)
                .ok()
                .and_then(|i| inner.notifications.get_mut(i));
            if let Some(n) = slot.filter(|n| n.delivered_at.is_none()) {
                n.delivered_at = Some(at);
                marked += 1;
            }
        }
        Ok(marked)
    }
}
