//! The runtime: publish definitions, create instances, perform actions, work queues. Every
//! method decides its change with [`Logic`] (pure) and writes it with one [`Store`] call, so a
//! refused request changes nothing and an accepted one is all-or-nothing.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use itsmflow_dsl::Sources;
use serde_json::{Map, Value as Json};

use super::approval::{self, ApprovalState, Decider, Directory, Holders, NoDirectory, NO_HOLDERS};
use super::catalog::{process_hash, Catalog, Definition, DefinitionId, ProjectSource, QueueInfo};
use super::claimed::ClaimedInstances;
use super::clock::Clock;
use super::error::ApprovalRefusal;
use super::error::EngineError;
use super::logic::{self, Logic, Request};
use super::relations;
use super::schedule_memo::{ApprovalMemo, Remembered, ScheduleMemo};
use super::scheduler::Wakeup;
use super::task_events::{Origin, TaskEvent, TaskEventKind, Watch};
use super::timers::{Schedule, TimerState};
use super::types::*;
use super::types::{Change, NewTask};
use super::view::{self, ApprovalView, EventView, InstanceView, LinkView};
use crate::check::check;
use crate::model::{Assignment, Project};
use crate::store::{Committed, InstanceFilter, NewDefinition, Store, StoreError};

mod effects;
mod migration;

/// What a publish did, per process.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Published {
    pub process: String,
    pub version: u32,
    /// False when the process was unchanged and kept its current version.
    pub new: bool,
}

pub struct Engine<S> {
    store: S,
    catalog: Arc<Catalog>,
    clock: Arc<dyn Clock>,
    logic: Logic,
    roster: Roster,
    wakeup: Arc<Wakeup>,
    firings: tokio::sync::broadcast::Sender<Firing>,
    /// What each committed change did to tasks, for queue listeners.
    tasks: tokio::sync::broadcast::Sender<TaskEvent>,
    /// The timer state recent commits left, so the next change need not derive it again.
    schedules: ScheduleMemo,
    /// Instances read with this engine's claims, for the completions that follow.
    claimed: ClaimedInstances,
    /// The approval state recent votes and delegations left, so the next needs no history.
    approvals: ApprovalMemo,
    /// Who holds which roles: where approvers come from.
    directory: Arc<dyn Directory>,
    ballots: tokio::sync::broadcast::Sender<BallotsChanged>,
    /// Woken when a commit through this engine writes notifications, so a deliverer need not
    /// poll for them.
    outbox: Arc<tokio::sync::Notify>,
}

/// The pending approval ballots of an instance changed (a level opened or closed, a vote or a
/// delegation), as `change` says; [`BallotChange::for_user`] tells each approver's live list
/// what is theirs on it now.
#[derive(Clone, Debug)]
pub struct BallotsChanged {
    pub instance: InstanceId,
    pub change: BallotChange,
}

/// A timer this engine fired (an escalation step, a breach, an automatic transition) on an
/// instance. What it did to tasks is told as task events ([`Engine::task_events`]).
#[derive(Clone, Debug)]
pub struct Firing {
    pub instance: InstanceId,
    /// Clocks this firing found past their target.
    pub breaches: u32,
}

/// How many times a change without an expected version is decided again after losing a race
/// (each loss means another change was written: with n writers at once, the last waits n).
const CONFLICT_RETRIES: u32 = 1000;

/// Whether an action lost a race with another change to the same instance (and so may be
/// decided again on the new state).
fn lost_race(e: &EngineError) -> bool {
    matches!(e, EngineError::Store(StoreError::Conflict { .. }))
}

/// Whether a change opens an approval level (so its approvers must be read).
fn opens_level(change: &Change) -> bool {
    change
        .events
        .iter()
        .any(|e| matches!(e.kind, EventKind::LevelOpened { .. }))
}

/// Listeners that fall this far behind miss firings (and are told how many).
const FIRINGS_BUFFER: usize = 1024;

/// Listeners that fall this far behind miss task events (and are told how many). Larger than
/// for firings: every action sends one or two, and a server relays them from one task.
const TASK_EVENTS_BUFFER: usize = 8192;

/// A firing that lost a race (another node changed the instance) is decided again on the new
/// state this many times before it is left to the next round.
const FIRING_RETRIES: u32 = 8;

/// Active agents and their roles, as last read from the store. Push assignment reads it for
/// every new task, so it is kept for a moment: a change made through this engine takes effect
/// at once, one made through another node within `ROSTER_TTL`.
#[derive(Default)]
struct Roster {
    cached: std::sync::Mutex<Option<(std::time::Instant, Agents)>>,
}

/// Active agents by name (shared with the tasks pushed to them), with their roles.
type Agents = Arc<Vec<(Arc<str>, Vec<String>)>>;

const ROSTER_TTL: std::time::Duration = std::time::Duration::from_secs(2);

impl Roster {
    fn get(&self) -> Option<Agents> {
        let cached = self.cached.lock().unwrap_or_else(|e| e.into_inner());
        cached
            .as_ref()
            .filter(|(at, _)| at.elapsed() < ROSTER_TTL)
            .map(|(_, agents)| agents.clone())
    }
    fn set(&self, agents: Vec<(String, Vec<String>)>) -> Agents {
        let agents: Agents = Arc::new(
            agents
                .into_iter()
                .map(|(name, roles)| (Arc::from(name), roles))
                .collect(),
        );
        *self.cached.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((std::time::Instant::now(), agents.clone()));
        agents
    }
    fn forget(&self) {
        *self.cached.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

impl<S: Store> Engine<S> {
    /// Start on a store, loading (and re-checking) every published definition.
    pub async fn open(
        store: S,
        catalog: Arc<Catalog>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, EngineError> {
        let (definitions, projects) = store.load_definitions().await?;
        let projects: HashMap<String, ProjectSource> = projects.into_iter().collect();
        let mut compiled = HashMap::new();
        for d in definitions {
            let source = projects.get(&d.project_hash).ok_or_else(|| {
                StoreError::Corrupt(format!("definition {} has no project source", d.id.0))
            })?;
            if !compiled.contains_key(&d.project_hash) {
                // As published: checks added since do not lock a database out.
                let checked = crate::check::check_published(&source.to_sources());
                let project = checked
                    .project
                    .ok_or(EngineError::InvalidDefinitions(checked.diagnostics))?;
                compiled.insert(d.project_hash.clone(), Arc::new(project));
            }
            let project = compiled[&d.project_hash].clone();
            let def = Definition::new(d.id, d.version, d.hash, d.published_at, project, &d.process)
                .ok_or_else(|| {
                    StoreError::Corrupt(format!("definition {} names a missing process", d.id.0))
                })?;
            catalog.insert(def);
        }
        Ok(Engine {
            store,
            catalog,
            clock,
            logic: Logic::default(),
            roster: Roster::default(),
            wakeup: Arc::new(Wakeup::default()),
            firings: tokio::sync::broadcast::channel(FIRINGS_BUFFER).0,
            tasks: tokio::sync::broadcast::channel(TASK_EVENTS_BUFFER).0,
            schedules: ScheduleMemo::default(),
            claimed: ClaimedInstances::default(),
            approvals: ApprovalMemo::default(),
            directory: Arc::new(NoDirectory),
            ballots: tokio::sync::broadcast::channel(FIRINGS_BUFFER).0,
            outbox: Arc::new(tokio::sync::Notify::new()),
        })
    }

    /// Take approvers from `directory` (by default nobody holds any role, so every approval
    /// level waits, reported as unmeetable).
    pub fn with_directory(mut self, directory: Arc<dyn Directory>) -> Self {
        self.directory = directory;
        self
    }

    /// What a decision on the instance may need of the directory, now: who holds the roles
    /// its process's approvals name, and the managers of the people it names (as deep as its
    /// `manager of` references go).
    async fn holders(
        &self,
        def: &Definition,
        inst: &Instance,
        task: Option<&Task>,
    ) -> Result<Holders, EngineError> {
        let p = def.model();
        let roles = approval::approval_roles(p);
        let role_names: Vec<&str> = roles
            .iter()
            .map(|r| def.project.role(*r).name.as_str())
            .collect();
        let found = match roles.is_empty() {
            true => Vec::new(),
            false => self.directory.holders(&role_names).await?,
        };
        let roles = roles
            .into_iter()
            .zip(found)
            .map(|(role, mut people)| {
                people.sort();
                people.dedup();
                (role, people.into_iter().map(Arc::from).collect())
            })
            .collect();
        let assignee = task
            .filter(|t| t.state != TaskState::Done)
            .map(|t| t.holder())
            .filter(|h| !h.is_empty())
            .map(Arc::<str>::from);
        // The people the ticket names, then their managers, and theirs, as deep as needed.
        let mut managers: Vec<(Arc<str>, Option<Arc<str>>)> = Vec::new();
        let depth = def.manager_depth();
        if depth > 0 {
            let mut names: Vec<Arc<str>> = p
                .fields
                .iter()
                .zip(inst.fields.iter())
                .filter(|(f, _)| f.ty == crate::model::FieldType::Person)
                .filter_map(|(_, v)| match v {
                    Some(crate::model::Value::Text(n)) if !n.trim().is_empty() => {
                        Some(Arc::from(n.trim()))
                    }
                    _ => None,
                })
                .chain(std::iter::once(inst.created_by.clone()))
                .chain(assignee.clone())
                .collect();
            for _ in 0..depth {
                names.sort();
                names.dedup();
                names.retain(|n| !managers.iter().any(|(m, _)| m == n));
                if names.is_empty() {
                    break;
                }
                let asked: Vec<&str> = names.iter().map(|n| &**n).collect();
                let answers = self.directory.managers(&asked).await?;
                let mut next = Vec::new();
                for (who, manager) in names.iter().zip(answers) {
                    let manager: Option<Arc<str>> = manager.map(Arc::from);
                    next.extend(manager.clone());
                    managers.push((who.clone(), manager));
                }
                names = next;
            }
        }
        Ok(Holders::new(roles).with_people(managers, assignee))
    }

    /// Refuse person fields in `input` that name nobody in the directory: a `person` field
    /// holds a user of the tenant.
    async fn check_people(
        &self,
        def: &Definition,
        input: &Map<String, Json>,
    ) -> Result<(), EngineError> {
        let p = def.model();
        let mut errors = Vec::new();
        for (name, value) in input {
            let Some(f) = p.field(name) else { continue };
            let ty = &p.fields[f.index()].ty;
            if !ty.holds_people() {
                continue;
            }
            // A `list(person)` names each element by its position, as its type errors do.
            let named: Vec<(Option<usize>, &Json)> = match (ty, value) {
                (crate::model::FieldType::List(_), Json::Array(elements)) => elements
                    .iter()
                    .enumerate()
                    .map(|(i, e)| (Some(i), e))
                    .collect(),
                _ => vec![(None, value)],
            };
            for (index, value) in named {
                let Some(user) = value.as_str().map(str::trim).filter(|u| !u.is_empty()) else {
                    continue;
                };
                if !self.directory.exists(user).await? {
                    let error = super::values::FieldError::new(
                        name,
                        format!("`{user}` is not a user of this tenant"),
                    );
                    errors.push(match index {
                        Some(i) => error.at(i),
                        None => error,
                    });
                }
            }
        }
        match errors.is_empty() {
            true => Ok(()),
            false => Err(EngineError::InvalidFields(errors)),
        }
    }

    /// Hear of every change this engine makes to pending approval ballots from now on.
    pub fn ballot_changes(&self) -> tokio::sync::broadcast::Receiver<BallotsChanged> {
        self.ballots.subscribe()
    }

    /// What to tell listeners of the ballots a change writes, if anyone listens.
    fn ballot_news(&self, change: &Change) -> Option<BallotChange> {
        let ballots = change.ballots.as_ref()?;
        (self.ballots.receiver_count() > 0).then(|| ballots.clone())
    }

    /// Tell listeners of ballots a committed change wrote.
    fn ballots_committed(&self, instance: InstanceId, ballots: Option<BallotChange>) {
        if let Some(change) = ballots {
            // Nobody listening any more is fine.
            let _ = self.ballots.send(BallotsChanged { instance, change });
        }
    }

    /// Hear of every timer this engine fires from now on.
    pub fn firings(&self) -> tokio::sync::broadcast::Receiver<Firing> {
        self.firings.subscribe()
    }

    /// What every change committed through this engine does to tasks, from then on: tasks
    /// added to queues, claimed, released, removed, escalated by timers.
    pub fn task_events(&self) -> tokio::sync::broadcast::Receiver<TaskEvent> {
        self.tasks.subscribe()
    }

    /// Whether anyone listens for task events (if not, nothing is kept to tell them).
    fn watched(&self) -> bool {
        self.tasks.receiver_count() > 0
    }

    fn tell(&self, events: impl IntoIterator<Item = TaskEvent>) {
        for event in events {
            // Nobody listening is fine.
            let _ = self.tasks.send(event);
        }
    }

    /// Tell what a committed change did to tasks, as remembered before it was written.
    fn tell_committed(&self, watch: Option<Watch>, committed: &Committed, origin: Origin) {
        if let Some(watch) = watch {
            self.tell(watch.events(committed, origin, self.clock.now()));
        }
    }

    /// The engine's time.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// How commits tell this engine's scheduler about earlier timers.
    pub(crate) fn wakeup(&self) -> &Arc<Wakeup> {
        &self.wakeup
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    fn request<'a>(
        &self,
        actor: &'a Actor,
        reason: Option<String>,
        holders: &'a Holders,
    ) -> Request<'a> {
        Request {
            actor,
            now: self.clock.now(),
            reason,
            holders,
            linked: &relations::NO_LINKS,
            checklist: &[],
        }
    }

    /// Check a project and publish a new version of every process that changed. A project
    /// with errors replaces nothing.
    pub async fn publish(&self, sources: &Sources) -> Result<Vec<Published>, EngineError> {
        let checked = check(sources);
        let Some(project) = checked.project else {
            return Err(EngineError::InvalidDefinitions(checked.diagnostics));
        };
        self.publish_checked(sources, Arc::new(project)).await
    }

    /// [`Engine::publish`] of a project already checked from `sources` (the test runner checks
    /// a project once and publishes it to a fresh engine per test).
    pub async fn publish_checked(
        &self,
        sources: &Sources,
        project: Arc<Project>,
    ) -> Result<Vec<Published>, EngineError> {
        let source = ProjectSource {
            files: sources
                .iter()
                .map(|(_, f)| (f.name.clone(), f.text.clone()))
                .collect(),
        };
        let project_hash = source.hash();
        let mut report = Vec::new();
        let mut new = Vec::new();
        for p in &project.processes {
            let hash = process_hash(&project_hash, &p.name);
            match self.catalog.latest(&p.name) {
                Some(cur) if cur.hash == hash => report.push(Published {
                    process: p.name.clone(),
                    version: cur.version,
                    new: false,
                }),
                cur => {
                    let version = cur.map(|c| c.version + 1).unwrap_or(1);
                    new.push(NewDefinition {
                        process: p.name.clone(),
                        version,
                        hash,
                    });
                    report.push(Published {
                        process: p.name.clone(),
                        version,
                        new: true,
                    });
                }
            }
        }
        if new.is_empty() {
            return Ok(report);
        }
        let now = self.clock.now();
        let ids = self
            .store
            .save_definitions(&project_hash, &source, &new, now)
            .await?;
        for (d, id) in new.iter().zip(ids) {
            if let Some(def) = Definition::new(
                id,
                d.version,
                d.hash.clone(),
                now,
                project.clone(),
                &d.process,
            ) {
                self.catalog.insert(def);
            }
        }
        Ok(report)
    }

    fn latest(&self, process: &str) -> Result<Arc<Definition>, EngineError> {
        self.catalog
            .latest(process)
            .ok_or_else(|| EngineError::UnknownProcess(process.to_string()))
    }

    fn definition(&self, id: DefinitionId) -> Result<Arc<Definition>, EngineError> {
        self.catalog.get(id).ok_or_else(|| {
            EngineError::Store(StoreError::Corrupt(format!("no definition {}", id.0)))
        })
    }

    /// An instance, its definition and its open task.
    async fn load(
        &self,
        id: InstanceId,
    ) -> Result<(Arc<Instance>, Arc<Definition>, Option<Task>), EngineError> {
        let (inst, task) = self
            .store
            .instance_with_task(id)
            .await?
            .ok_or(EngineError::InstanceNotFound(id))?;
        let def = self.definition(inst.definition)?;
        Ok((inst, def, task))
    }

    /// Set a new instance's wake-up and its task's due time; returns what they came from.
    fn schedule_new(&self, new: &mut NewInstance) -> Result<Remembered, EngineError> {
        let def = self.definition(new.instance.definition)?;
        let mut state = TimerState::of(&def, &new.events);
        let schedule = state.schedule(&def);
        new.wakeup = schedule.wakeup();
        if let Some(t) = new.task.as_mut() {
            t.due_at = schedule.resolve_due;
            t.ola_due_at = schedule.ola_due;
        }
        Ok(Remembered {
            state: Arc::new(state),
            wakeup: new.wakeup,
        })
    }

    /// Set the wake-up of a change that can move it (see [`super::timers::affected_by`]), and
    /// the due time of the task it opens or updates. The timer state before the change is the
    /// one [`ScheduleMemo`] remembers for the version the change was decided on, or else folded
    /// from the history (`before`, read when not given). Returns the state and wake-up after
    /// the change, where known, for the memo once the change is committed.
    async fn schedule(
        &self,
        def: &Definition,
        before: Option<Vec<Event>>,
        change: &mut Change,
    ) -> Result<Option<Remembered>, EngineError> {
        for s in change.spawns.iter_mut() {
            self.schedule_new(s)?;
        }
        let id = change.instance.id;
        let remembered = self.schedules.take(id, change.expected_version);
        if !super::timers::affected_by(def, &change.events) {
            // The fold ignores such events: the state and wake-up carry over as they are.
            return Ok(remembered);
        }
        // The state is changed where it lies: the memo gave up its reference, so this is the
        // only one and nothing is copied.
        let (mut shared, before) = match remembered {
            Some(r) => (r.state, r.wakeup),
            None => {
                let mut events = match before {
                    Some(events) => events,
                    None => self.store.history(id).await?,
                };
                // Events after the version the change was decided on make it fail its version
                // check anyway; they must not count here.
                events.retain(|e| e.seq <= change.expected_version);
                let mut state = TimerState::of(def, &events);
                let wakeup = state.schedule(def).wakeup();
                (Arc::new(state), wakeup)
            }
        };
        let state = Arc::make_mut(&mut shared);
        state.apply(def, &change.events);
        // The wake-up is written only when it moves (entering a stage that leaves the clocks
        // as they were, like `log`, writes nothing; nor does a change that leaves the earliest
        // point where it was). `before` is the wake-up of the state's schedule, so while that
        // holds it is the wake-up after too.
        let unchanged = state.schedule_holds();
        let schedule = state.schedule(def);
        let wakeup = match unchanged {
            true => before,
            false => schedule.wakeup(),
        };
        if wakeup != before {
            change.wakeup = Some(wakeup);
        }
        if let Some(t) = change.new_task.as_mut() {
            t.due_at = schedule.resolve_due;
            t.ola_due_at = schedule.ola_due;
        }
        if let Some(u) = change.update_task.as_mut() {
            u.due_at = schedule.resolve_due;
            u.ola_due_at = schedule.ola_due;
        }
        Ok(Some(Remembered {
            state: shared,
            wakeup,
        }))
    }

    /// Tell the scheduler of wake-ups it may not know about.
    fn wakeups_committed(&self, wakeups: impl IntoIterator<Item = DateTime<Utc>>) {
        if let Some(earliest) = wakeups.into_iter().min() {
            self.wakeup.timers_committed(earliest);
        }
    }

    /// Write a change and show the instance as it now is.
    // Not an async fn on purpose: see the comment in the body.
    #[allow(clippy::manual_async_fn)]
    fn commit(
        &self,
        mut change: Change,
        def: Arc<Definition>,
        task_before: Option<Task>,
        history: Option<Vec<Event>>,
    ) -> impl Future<Output = Result<InstanceView, EngineError>> + '_ {
        // An async block, not an async fn: an async fn's future keeps each argument twice (as
        // passed and as bound in the body), and this one sits inside every action's future,
        // which is moved whole when it is started.
        async move {
            let after = self.schedule(&def, history, &mut change).await?;
            let (id, version) = (change.instance.id, change.instance.version);
            let touched_task = change.new_task.is_some() || change.update_task.is_some();
            let closed_task = change.close_task.is_some();
            let state = change.instance.clone();
            let wakeups = wakeups_of(&change);
            let ballots = self.ballot_news(&change);
            let notifies = !change.notifications.is_empty()
                || change.cascade.iter().any(|c| !c.notifications.is_empty());
            let cascaded_ballots: Vec<_> = change
                .cascade
                .iter()
                .map(|c| (c.instance.id, self.ballot_news(c)))
                .collect();
            let watch = self
                .watched()
                .then(|| Watch::of(&mut change, task_before.clone()));
            let committed = self.store.commit(change).await?;
            self.tell_committed(watch, &committed, Origin::Request);
            self.wakeups_committed(wakeups);
            self.outbox_committed(notifies);
            self.ballots_committed(id, ballots);
            for (other, ballots) in cascaded_ballots {
                self.ballots_committed(other, ballots);
            }
            if let Some(after) = after {
                self.schedules.put(id, version, after);
            }
            let (task, previous) = if touched_task {
                (committed.task, task_before)
            } else if closed_task {
                (None, task_before)
            } else {
                (task_before.clone(), task_before)
            };
            Ok(InstanceView::changed(def, state, task, previous))
        }
    }

    /// Create an instance of the latest version of a process.
    pub async fn create(
        &self,
        process: &str,
        fields: &Map<String, Json>,
        actor: &Actor,
    ) -> Result<InstanceView, EngineError> {
        let def = self.latest(process)?;
        let mut new =
            self.logic
                .create(&def, fields, &self.request(actor, None, &NO_HOLDERS), None)?;
        self.check_people(&def, fields).await?;
        if let Some(t) = new.task.as_mut() {
            self.assign(t).await?;
        }
        let remembered = self.schedule_new(&mut new)?;
        let mut inst = new.instance.clone();
        let (id, task) = self.store.create(new).await?;
        if let Some(t) = task.as_ref().filter(|_| self.watched()) {
            self.tell([TaskEvent::new(
                TaskEventKind::Added,
                t.clone(),
                self.clock.now(),
            )]);
        }
        self.wakeups_committed(remembered.wakeup);
        self.schedules.put(id, inst.version, remembered);
        inst.id = id;
        Ok(InstanceView::new(def, Arc::new(inst), task))
    }

    /// Raise a ticket for a catalogue item: on the item's process, with the fields the item
    /// presets (they win over the input's), refused when a field the item requires is missing.
    pub async fn create_item(
        &self,
        item: &str,
        fields: &Map<String, Json>,
        actor: &Actor,
    ) -> Result<InstanceView, EngineError> {
        let project = self
            .catalog
            .latest_project()
            .ok_or_else(|| EngineError::UnknownItem(item.to_string()))?;
        let (_, found) = project
            .item(item)
            .ok_or_else(|| EngineError::UnknownItem(item.to_string()))?;
        let process = project
            .process(&found.process)
            .ok_or_else(|| EngineError::UnknownProcess(found.process.clone()))?;
        let mut input = fields.clone();
        for (field, value) in &found.presets {
            let f = &process.fields[field.index()];
            input.insert(f.name.clone(), super::values::to_json(f, value));
        }
        let missing: Vec<super::values::FieldError> = found
            .requires
            .iter()
            .map(|f| &process.fields[f.index()])
            .filter(|f| {
                input
                    .get(&f.name)
                    .is_none_or(|v| v.is_null() || v.as_str().is_some_and(|s| s.trim().is_empty()))
            })
            .map(|f| super::values::FieldError::new(&f.name, format!("is required for `{item}`")))
            .collect();
        if !missing.is_empty() {
            return Err(EngineError::InvalidFields(missing));
        }
        self.create(&found.process, &input, actor).await
    }

    pub async fn instance(&self, id: InstanceId) -> Result<InstanceView, EngineError> {
        let (inst, def, task) = self.load(id).await?;
        Ok(InstanceView::new(def, inst, task))
    }

    /// Instances that match `filter`, newest first, at most `limit`, each with its open task
    /// (read with it, at little cost: one indexed lookup per instance in the same snapshot), so
    /// a listed instance looks exactly as when read alone. For the next page, set
    /// `filter.before` to the id of the last instance of this one.
    pub async fn list_instances(
        &self,
        filter: &InstanceFilter,
        limit: u32,
    ) -> Result<Vec<InstanceView>, EngineError> {
        let found = self.store.list_instances(filter, limit).await?;
        found
            .into_iter()
            .map(|(inst, task)| {
                Ok(InstanceView::new(
                    self.definition(inst.definition)?,
                    inst,
                    task,
                ))
            })
            .collect()
    }

    /// The raw state, as the runtime sees it.
    pub async fn state(&self, id: InstanceId) -> Result<Instance, EngineError> {
        Ok(Instance::clone(&self.load(id).await?.0))
    }

    /// Perform an action. `expected_version`, when given, must be the instance's version;
    /// without it, an action that loses a race with another change is decided again on the
    /// state that change left (see [`Engine::retried`]).
    // Not an async fn on purpose: see the comment in `commit`.
    #[allow(clippy::manual_async_fn)]
    pub fn perform<'a>(
        &'a self,
        id: InstanceId,
        action: &'a str,
        fields: &'a Map<String, Json>,
        expected_version: Option<i64>,
        actor: &'a Actor,
        reason: Option<String>,
    ) -> impl Future<Output = Result<InstanceView, EngineError>> + 'a {
        // An async block using its captures where they lie (see `commit`). The first attempt
        // is the common one; only a lost race without a version goes round again.
        async move {
            let first = self
                .act(
                    id,
                    action,
                    fields,
                    expected_version,
                    actor,
                    reason.clone(),
                    None,
                )
                .await;
            match first {
                Err(e) if expected_version.is_none() && lost_race(&e) => {
                    self.retried(None, || {
                        self.act(id, action, fields, None, actor, reason.clone(), None)
                    })
                    .await
                }
                other => other,
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    // Not an async fn on purpose: see the comment in the body.
    #[allow(clippy::manual_async_fn)]
    fn act<'a>(
        &'a self,
        id: InstanceId,
        action: &'a str,
        fields: &'a Map<String, Json>,
        expected_version: Option<i64>,
        actor: &'a Actor,
        reason: Option<String>,
        fence: Option<(TaskId, Fence)>,
    ) -> impl Future<Output = Result<InstanceView, EngineError>> + 'a {
        // An async block using its captures where they lie (see `commit`).
        async move {
            // Where a read is a round trip, the history comes along in case the action moves
            // the instance on (its timers are derived from it), unless the timer state of a
            // recent version is remembered; elsewhere it is read only if needed.
            let (loaded, history) =
                if self.store.reads_are_round_trips() && !self.schedules.knows(id) {
                    let ((inst, task), history) = self
                        .store
                        .instance_with_task_and_history(id)
                        .await?
                        .ok_or(EngineError::InstanceNotFound(id))?;
                    let def = self.definition(inst.definition)?;
                    ((inst, def, task), Some(history))
                } else {
                    (self.load(id).await?, None)
                };
            self.act_on(
                loaded,
                action,
                fields,
                expected_version,
                actor,
                reason,
                fence,
                history,
            )
            .await
        }
    }

    #[allow(clippy::too_many_arguments)]
    // Not an async fn on purpose: see the comment in the body.
    #[allow(clippy::manual_async_fn)]
    fn act_on<'a>(
        &'a self,
        target: (Arc<Instance>, Arc<Definition>, Option<Task>),
        action: &'a str,
        fields: &'a Map<String, Json>,
        expected_version: Option<i64>,
        actor: &'a Actor,
        reason: Option<String>,
        fence: Option<(TaskId, Fence)>,
        history: Option<Vec<Event>>,
    ) -> impl Future<Output = Result<InstanceView, EngineError>> + 'a {
        // An async block using its captures where they lie, like `commit`: every action's
        // future holds this one.
        async move {
            let commit = {
                let (inst, def, task) = &target;
                check_version(inst, expected_version)?;
                if let Some((task_id, _)) = &fence {
                    if task.as_ref().map(|t| t.id) != Some(*task_id) {
                        return Err(StoreError::LeaseLost(*task_id).into());
                    }
                }
                // Entering a stage with an approval opens its first level: its approvers are
                // read now (and only then); so are the managers a transition `by manager of`
                // someone names.
                let p = def.model();
                let needs_managers = def.manager_depth() > 0;
                let reads_directory = (!p.approvals.is_empty() || needs_managers)
                    && p.transition(action).is_some_and(|t| {
                        let t = &p.transitions[t.index()];
                        p.approval_in(t.to).is_some()
                            || (needs_managers
                                && (t.people.iter().any(|r| r.depth() > 0)
                                    || !t.notices.is_empty()
                                    || !p.stages[t.to.index()].notices.is_empty()))
                    });
                let holders = match reads_directory {
                    true => self.holders(def, inst, task.as_ref()).await?,
                    false => Holders::default(),
                };
                // A `when` that reads linked tickets: they are read now, and the change is
                // written only if they are still as read (see `check_reads`).
                let transition = p.transition(action).map(|t| &p.transitions[t.index()]);
                let link_reads = transition.map(effects::links_read_by).unwrap_or_default();
                let linked = self.linked(def, inst.id, &link_reads).await?;
                // A transition that requires the stage's checklist done: its state is read
                // from the history (the history already read, if any).
                let ticked = match transition.filter(|t| t.requires_checklist) {
                    Some(_) => {
                        let events = match &history {
                            Some(h) => std::borrow::Cow::Borrowed(h),
                            None => std::borrow::Cow::Owned(self.store.history(inst.id).await?),
                        };
                        super::checklist::state(p, inst.stage, &events)
                    }
                    None => Vec::new(),
                };
                let mut change = self.logic.perform(
                    &self.catalog,
                    def,
                    inst,
                    task.as_ref(),
                    fence.map(|(_, f)| f),
                    action,
                    fields,
                    &Request {
                        linked: &linked,
                        checklist: &ticked,
                        ..self.request(actor, reason, &holders)
                    },
                )?;
                if !fields.is_empty() {
                    self.check_people(def, fields).await?;
                }
                self.assign_all(&mut change, target.2.as_ref()).await?;
                let mut touched = relations::Touched::default();
                if let Some(t) = transition {
                    if !t.effects.is_empty() {
                        self.cascade(def, &mut change, actor, &mut touched, 1)
                            .await?;
                    }
                    if !t.spawns.is_empty() {
                        self.check_spawn_links(def, &change).await?;
                    }
                }
                Self::check_reads(&mut change, &linked);
                let (_, def, task) = target;
                // The change moves into the commit here, and its place ends with this block,
                // so the future does not keep room for it beside the commit's.
                self.commit(change, def, task, history)
            };
            commit.await
        }
    }

    /// Update fields outside a transition.
    pub async fn update(
        &self,
        id: InstanceId,
        fields: &Map<String, Json>,
        expected_version: Option<i64>,
        actor: &Actor,
        reason: Option<String>,
    ) -> Result<InstanceView, EngineError> {
        self.retried(expected_version, || {
            self.update_once(id, fields, expected_version, actor, reason.clone())
        })
        .await
    }

    async fn update_once(
        &self,
        id: InstanceId,
        fields: &Map<String, Json>,
        expected_version: Option<i64>,
        actor: &Actor,
        reason: Option<String>,
    ) -> Result<InstanceView, EngineError> {
        let (inst, def, task) = self.load(id).await?;
        check_version(&inst, expected_version)?;
        let mut change = self.logic.update(
            &def,
            &inst,
            task.as_ref(),
            fields,
            &self.request(actor, reason, &NO_HOLDERS),
        )?;
        self.check_people(&def, fields).await?;
        if change.events.is_empty() {
            return Ok(InstanceView::new(def, inst, task));
        }
        self.assign_all(&mut change, task.as_ref()).await?;
        self.commit(change, def, task, None).await
    }

    /// Comment on an instance as it now is (a comment that loses a race with another change
    /// is written after it).
    pub async fn comment(
        &self,
        id: InstanceId,
        text: &str,
        actor: &Actor,
    ) -> Result<InstanceView, EngineError> {
        self.retried(None, || self.comment_once(id, text, actor))
            .await
    }

    async fn comment_once(
        &self,
        id: InstanceId,
        text: &str,
        actor: &Actor,
    ) -> Result<InstanceView, EngineError> {
        let (inst, def, task) = self.load(id).await?;
        let change = self.logic.note(
            &inst,
            EventKind::Commented {
                text: text.to_string(),
            },
            &self.request(actor, None, &NO_HOLDERS),
        );
        self.commit(change, def, task, None).await
    }

    /// The checklist of the instance's stage: each item with its label and whether it is ticked.
    pub async fn checklist(&self, id: InstanceId) -> Result<Vec<ChecklistEntry>, EngineError> {
        let (inst, def, _) = self.load(id).await?;
        let p = def.model();
        let stage = &p.stages[inst.stage.index()];
        if stage.checklist.is_empty() {
            return Ok(Vec::new());
        }
        let ticked = super::checklist::state(p, inst.stage, &self.store.history(id).await?);
        Ok(stage
            .checklist
            .iter()
            .zip(ticked)
            .map(|(item, done)| ChecklistEntry {
                item: item.name.clone(),
                label: item.label.clone(),
                done,
            })
            .collect())
    }

    /// Tick (`done`) or clear an item of the checklist of the instance's stage. Anyone who may
    /// perform some transition out of the stage may; an item already so changes nothing (no
    /// event, no new version), so a repeated request records it once.
    pub async fn check_item(
        &self,
        id: InstanceId,
        item: &str,
        done: bool,
        expected_version: Option<i64>,
        actor: &Actor,
    ) -> Result<InstanceView, EngineError> {
        self.retried(expected_version, || {
            self.check_item_once(id, item, done, expected_version, actor)
        })
        .await
    }

    async fn check_item_once(
        &self,
        id: InstanceId,
        item: &str,
        done: bool,
        expected_version: Option<i64>,
        actor: &Actor,
    ) -> Result<InstanceView, EngineError> {
        let (inst, def, task) = self.load(id).await?;
        check_version(&inst, expected_version)?;
        let p = def.model();
        let stage = &p.stages[inst.stage.index()];
        let Some(index) = stage.checklist.iter().position(|i| i.name == item) else {
            return Err(EngineError::UnknownChecklistItem {
                stage: stage.name.clone(),
                item: item.to_string(),
                known: stage.checklist.iter().map(|i| i.name.clone()).collect(),
            });
        };
        let holders = match def.manager_depth() > 0 {
            true => self.holders(&def, &inst, task.as_ref()).await?,
            false => Holders::default(),
        };
        let req = self.request(actor, None, &holders);
        let out: Vec<&crate::model::Transition> = p
            .transitions
            .iter()
            .filter(|t| t.from.contains(&inst.stage))
            .collect();
        if !out
            .iter()
            .any(|t| logic::may_perform(&def, t, &inst, task.as_ref(), &req))
        {
            let mut roles: Vec<String> = Vec::new();
            let mut people: Vec<String> = Vec::new();
            for t in &out {
                for r in &t.roles {
                    let name = &def.project.role(*r).name;
                    if !roles.contains(name) {
                        roles.push(name.clone());
                    }
                }
                for who in t.people.iter().map(|r| r.describe(p)) {
                    if !people.contains(&who) {
                        people.push(who);
                    }
                }
            }
            return Err(EngineError::Forbidden {
                action: format!("check {item}"),
                roles,
                people,
            });
        }
        let events = self.store.history(id).await?;
        let ticked = super::checklist::state(p, inst.stage, &events);
        if ticked.get(index) == Some(&done) {
            return Ok(InstanceView::new(def, inst, task));
        }
        let change = self.logic.note(
            &inst,
            EventKind::Checked {
                stage: inst.stage,
                item: index as u32,
                done,
            },
            &req,
        );
        self.commit(change, def, task, None).await
    }

    /// Link two instances (`from` `kind` `to`, e.g. incident `caused_by` problem): `from` as it
    /// now is, and whether the link is new. A link that exists already changes nothing (no
    /// event, no new version), so a client that repeats the request, not knowing whether the
    /// first arrived, records it once.
    pub async fn link(
        &self,
        from: InstanceId,
        to: InstanceId,
        kind: &str,
        actor: &Actor,
    ) -> Result<(InstanceView, bool), EngineError> {
        self.retried(None, || self.link_once(from, to, kind, actor))
            .await
    }

    async fn link_once(
        &self,
        from: InstanceId,
        to: InstanceId,
        kind: &str,
        actor: &Actor,
    ) -> Result<(InstanceView, bool), EngineError> {
        let (inst, def, task) = self.load(from).await?;
        // A kind `from`'s process declares, to a ticket of the process it names, within the
        // cardinality both sides declare; stored from the declaring side.
        let Some((a, b, stored)) = self.link_to_store(&def, from, to, kind).await? else {
            return Ok((InstanceView::new(def, inst, task), false));
        };
        let req = self.request(actor, None, &NO_HOLDERS);
        let mut change = self.logic.note(
            &inst,
            EventKind::Linked {
                kind: kind.to_string(),
                other: to,
            },
            &req,
        );
        change.links.push(Link {
            from: a,
            to: b,
            kind: stored,
            created_at: req.now,
        });
        Ok((self.commit(change, def, task, None).await?, true))
    }

    pub async fn history(&self, id: InstanceId) -> Result<Vec<EventView>, EngineError> {
        let (inst, def, _) = self.load(id).await?;
        let events = self.store.history(inst.id).await?;
        // Each event is shown under the version it was decided on: the instance's, back to
        // its last migration, then the version that migration left, and so on.
        let mut shown = Vec::with_capacity(events.len());
        let mut under = def;
        for e in events.iter().rev() {
            shown.push(view::event(&under, e));
            if let EventKind::Migrated(m) = &e.kind {
                under = self.definition(m.from)?;
            }
        }
        shown.reverse();
        Ok(shown)
    }

    /// The instance's respond and resolve clocks now (see [`super::clocks`]).
    pub async fn clocks(&self, id: InstanceId) -> Result<Vec<super::clocks::Clock>, EngineError> {
        let (inst, def, _) = self.load(id).await?;
        let events = self.store.history(inst.id).await?;
        Ok(super::clocks::clocks(&def, &events, self.clock.now()))
    }

    /// The instance's OLA clocks now: one per stay in a queue with an OLA target, past stays
    /// first, the open one last (see [`super::ola`]).
    pub async fn ola_clocks(
        &self,
        id: InstanceId,
    ) -> Result<Vec<super::ola::OlaClock>, EngineError> {
        let (inst, def, _) = self.load(id).await?;
        let events = self.store.history(inst.id).await?;
        Ok(super::ola::ola_clocks(&def, &events, self.clock.now()))
    }

    /// The instance's pending due points, earliest first, from its history (the store keeps
    /// only the earliest's time, to know when to look again).
    pub async fn timers(&self, id: InstanceId) -> Result<Vec<Timer>, EngineError> {
        let (_, def, _) = self.load(id).await?;
        let events = self.store.history(id).await?;
        Ok(Schedule::of(&def, &events).timers(&def))
    }

    /// Fire what is due on an instance by now, one point per transaction, earliest first (so
    /// steps missed while no scheduler ran fire once each, in order). What is due is decided
    /// from the history under the instance's version check, so a point fires once however many
    /// schedulers try. Returns how many fired.
    pub async fn fire_due(&self, id: InstanceId) -> Result<u32, EngineError> {
        let system = Actor::system();
        let mut fired = 0;
        let mut retries = 0;
        loop {
            let (inst, def, task) = match self.load(id).await {
                Ok(loaded) => loaded,
                Err(EngineError::InstanceNotFound(_)) => return Ok(fired),
                Err(e) => return Err(e),
            };
            let events = self.store.history(id).await?;
            let mut state = TimerState::of(&def, &events);
            let schedule = state.schedule(&def).clone();
            // What the history gives, for `schedule` below to find instead of folding it
            // again (keyed by the version this history ends at).
            if let Some(last) = events.last() {
                let remembered = Remembered {
                    state: Arc::new(state),
                    wakeup: schedule.wakeup(),
                };
                self.schedules.put(id, last.seq, remembered);
            }
            let now = self.clock.now();
            let mut after = None;
            // A firing may enter a stage with an approval (an automatic transition, a
            // `perform`, an expiry to another approval stage).
            let holders = match schedule.first_due(now) {
                Some(_) if !def.model().approvals.is_empty() || def.manager_depth() > 0 => {
                    self.holders(&def, &inst, task.as_ref()).await?
                }
                _ => Holders::default(),
            };
            // And it may perform a transition whose `when` reads linked tickets, or that acts
            // on them.
            let link_reads = match schedule.first_due(now) {
                Some(_) => effects::links_read_by_any(def.model()),
                None => Vec::new(),
            };
            let linked = self.linked(&def, id, &link_reads).await?;
            let ticked = super::checklist::state(def.model(), inst.stage, &events);
            let mut touched = relations::Touched::default();
            let mut change = match schedule.first_due(now) {
                Some(due) => {
                    let req = Request {
                        actor: &system,
                        now,
                        reason: None,
                        holders: &holders,
                        linked: &linked,
                        checklist: &ticked,
                    };
                    let mut change = self.logic.fire(
                        &self.catalog,
                        &def,
                        &inst,
                        task.as_ref(),
                        due,
                        &req,
                        Some(&events),
                    );
                    self.assign_all(&mut change, task.as_ref()).await?;
                    self.cascade(&def, &mut change, &system, &mut touched, 1)
                        .await?;
                    Self::check_reads(&mut change, &linked);
                    after = self.schedule(&def, Some(events), &mut change).await?;
                    // A firing always writes the wake-up, moved or not: that ends the lease
                    // on it, and tells the loop below of a point due at the same instant.
                    if let Some(after) = &after {
                        change.wakeup = Some(after.wakeup);
                    }
                    change
                }
                None if fired > 0 => return Ok(fired),
                // Woken while nothing is due (another node fired it first): put the wake-up
                // right, so it wakes nobody again.
                None => {
                    let mut change = logic::unchanged(&inst);
                    change.wakeup = Some(schedule.wakeup());
                    change
                }
            };
            let firing = !change.events.is_empty();
            if firing {
                // Spawned instances, and linked tickets the firing acted on, may have points
                // due before anything the scheduler knows.
                let spawned: Vec<_> = change
                    .spawns
                    .iter()
                    .filter_map(|s| s.wakeup)
                    .chain(change.cascade.iter().flat_map(wakeups_of))
                    .collect();
                let more = change.wakeup.flatten().is_some_and(|at| at <= now);
                let breaches = change
                    .events
                    .iter()
                    .filter(|e| matches!(e.kind, EventKind::Breached { .. }))
                    .count() as u32;
                let version = change.instance.version;
                let ballots = self.ballot_news(&change);
                let notifies = !change.notifications.is_empty()
                    || change.cascade.iter().any(|c| !c.notifications.is_empty());
                let watch = self.watched().then(|| Watch::of(&mut change, task.clone()));
                match self.store.commit(change).await {
                    Ok(committed) => {
                        self.tell_committed(watch, &committed, Origin::Timer);
                        fired += 1;
                        self.outbox_committed(notifies);
                        self.ballots_committed(id, ballots);
                        self.wakeups_committed(spawned);
                        if let Some(after) = after.take() {
                            self.schedules.put(id, version, after);
                        }
                        // Nobody listening is fine.
                        let _ = self.firings.send(Firing {
                            instance: id,
                            breaches,
                        });
                        if !more {
                            return Ok(fired);
                        }
                    }
                    Err(StoreError::Conflict { .. }) if retries < FIRING_RETRIES => retries += 1,
                    Err(e) => return Err(e.into()),
                }
            } else {
                return match self.store.commit(change).await {
                    Ok(_) | Err(StoreError::Conflict { .. }) => Ok(fired),
                    Err(e) => Err(e.into()),
                };
            }
        }
    }

    /// Write an instance's wake-up again from its history (for instances created before
    /// timers existed, or after restoring a backup); returns its due points.
    pub async fn reschedule(&self, id: InstanceId) -> Result<Vec<Timer>, EngineError> {
        let (inst, def, _) = self.load(id).await?;
        let events = self.store.history(id).await?;
        let schedule = Schedule::of(&def, &events);
        let mut change = logic::unchanged(&inst);
        change.wakeup = Some(schedule.wakeup());
        self.store.commit(change).await?;
        self.wakeups_committed(schedule.wakeup());
        Ok(schedule.timers(&def))
    }

    /// Rows of the notifications outbox, by id after `after_id` (for paging), at most `limit`.
    pub async fn notifications(
        &self,
        filter: &NotificationFilter,
        limit: u32,
        after_id: Option<i64>,
    ) -> Result<Vec<Notification>, EngineError> {
        Ok(self.store.notifications(filter, limit, after_id).await?)
    }

    /// Notifications ready to deliver now: not delivered, and not held past now.
    pub async fn notifications_to_deliver(
        &self,
        limit: u32,
        after_id: Option<i64>,
    ) -> Result<Vec<Notification>, EngineError> {
        self.notifications(
            &NotificationFilter::to_deliver(self.clock.now()),
            limit,
            after_id,
        )
        .await
    }

    /// Mark outbox rows delivered (now); returns how many were not delivered before.
    pub async fn mark_delivered(&self, ids: &[i64]) -> Result<u64, EngineError> {
        Ok(self.store.mark_delivered(ids, self.clock.now()).await?)
    }

    /// Claim up to `limit` notifications to deliver now, each leased for `lease` to this
    /// deliverer (see [`Store::claim_deliveries`]): deliverers on every node may run, and none
    /// posts what another has claimed.
    pub async fn claim_deliveries(
        &self,
        limit: u32,
        lease: TimeDelta,
    ) -> Result<Vec<Notification>, EngineError> {
        let now = self.clock.now();
        Ok(self.store.claim_deliveries(now, now + lease, limit).await?)
    }

    /// A delivery of notification `id` failed: try again after `retry_in`, or, without it,
    /// give up (the row is kept, marked dead, with the error).
    pub async fn delivery_failed(
        &self,
        id: i64,
        error: &str,
        retry_in: Option<TimeDelta>,
    ) -> Result<(), EngineError> {
        let now = self.clock.now();
        Ok(self
            .store
            .delivery_failed(id, error, retry_in.map(|d| now + d), now)
            .await?)
    }

    /// Woken when this engine commits notifications (other nodes' commits are found by the
    /// deliverer's own look, now and then).
    pub fn outbox_changes(&self) -> Arc<tokio::sync::Notify> {
        self.outbox.clone()
    }

    /// Tell the deliverer of notifications a change wrote.
    fn outbox_committed(&self, wrote: bool) {
        if wrote {
            self.outbox.notify_one();
        }
    }

    /// The raw history, as the runtime sees it.
    pub async fn events(&self, id: InstanceId) -> Result<Vec<Event>, EngineError> {
        Ok(self.store.history(id).await?)
    }

    pub async fn links(&self, id: InstanceId) -> Result<Vec<LinkView>, EngineError> {
        let (_, def, _) = self.load(id).await?;
        Ok(self
            .store
            .links(id)
            .await?
            .iter()
            .map(|l| view::link(&def, id, l))
            .collect())
    }

    /// Why the instance is as it is, and what `actor` may do with it now (see
    /// [`super::explain`]). It only reads: each action is checked as performing it would check
    /// it (the same function decides), with what performing would read first (the managers a
    /// `by manager of` names, the linked tickets a `when` reads), and nothing is written.
    pub async fn explain(
        &self,
        id: InstanceId,
        actor: &Actor,
    ) -> Result<super::explain::Explanation, EngineError> {
        let (inst, def, task) = self.load(id).await?;
        let events = self.store.history(id).await?;
        let p = def.model();
        let here: Vec<&crate::model::Transition> = p
            .transitions
            .iter()
            .filter(|t| t.from.contains(&inst.stage))
            .collect();
        let holders = match here.iter().any(|t| t.people.iter().any(|r| r.depth() > 0)) {
            true => self.holders(&def, &inst, task.as_ref()).await?,
            false => Holders::default(),
        };
        let mut reads = Vec::new();
        for l in here.iter().flat_map(|t| effects::links_read_by(t)) {
            if !reads.contains(&l) {
                reads.push(l);
            }
        }
        let linked = self.linked(&def, inst.id, &reads).await?;
        let approval = p
            .approval_in(inst.stage)
            .and_then(|_| ApprovalState::of(p, &events));
        let ticked = super::checklist::state(p, inst.stage, &events);
        let req = Request {
            linked: &linked,
            checklist: &ticked,
            ..self.request(actor, None, &holders)
        };
        let facts = super::explain::Facts {
            def: &def,
            inst: &inst,
            // Why it reads as it does under the version it runs on.
            events: super::types::current_epoch(&events),
            approval,
            actor,
            now: req.now,
        };
        super::explain::explain(&facts, |t| {
            self.logic.refusals(&def, &inst, task.as_ref(), t, &req)
        })
    }

    // -- approvals -------------------------------------------------------------------------------

    /// The approval of the stage the instance is in (`None` if its stage asks none): the plan
    /// and why it applies, each level, every ballot.
    pub async fn approval(&self, id: InstanceId) -> Result<Option<ApprovalView>, EngineError> {
        let (inst, def, _) = self.load(id).await?;
        if def.model().approval_in(inst.stage).is_none() {
            return Ok(None);
        }
        let events = self.store.history(id).await?;
        let Some(state) = ApprovalState::of(def.model(), &events) else {
            return Ok(None);
        };
        let due = Schedule::of(&def, &events)
            .due
            .iter()
            .find(|d| d.kind == super::timers::TimerKind::Expiry)
            .map(|d| d.due_at);
        Ok(Some(ApprovalView::new(def, state, due)))
    }

    /// Vote on the open level of the instance's approval, as `actor` (on their own ballot or
    /// one delegated to them). `level`, when given, is the level the voter saw (0 for the
    /// first): a vote meant for a level that has closed since is refused rather than counted
    /// on the next. Without `expected_version` a vote that lost a race with another change is
    /// decided again on the new state, so concurrent votes all count, each once.
    pub async fn vote(
        &self,
        id: InstanceId,
        approve: bool,
        comment: Option<String>,
        level: Option<u32>,
        expected_version: Option<i64>,
        actor: &Actor,
    ) -> Result<InstanceView, EngineError> {
        self.retried(expected_version, || async {
            let (inst, task, before, history) = self.approval_loaded(id).await?;
            let def = self.definition(inst.definition)?;
            check_version(&inst, expected_version)?;
            let approver =
                approval::check_vote(&def, &inst, Option::as_ref(&before), actor, level)?;
            let decide = |holders: &Holders| {
                let req = self.request(actor, None, holders);
                let mut change = logic::unchanged(&inst);
                let open = task.as_ref().map(|t| t.id);
                let mut d = Decider::new(&def, &req, &mut change, open, Option::clone(&before));
                d.vote(approver.clone(), approve, comment.clone());
                let after = d.into_state();
                (change, after)
            };
            // Most votes open no level; the directory is read only for those that do.
            let (mut change, mut after) = decide(&NO_HOLDERS);
            if opens_level(&change) {
                (change, after) = decide(&self.holders(&def, &inst, task.as_ref()).await?);
            }
            self.assign_all(&mut change, task.as_ref()).await?;
            let view = self.commit(change, def, task, history).await?;
            self.approvals.put(id, view.version(), Arc::new(after));
            Ok(view)
        })
        .await
    }

    /// Hand the vote of `from` (the actor, unless an administrator names another approver) on
    /// the open level to `to`, who must hold a role of the approver's groups unless an
    /// administrator names them.
    pub async fn delegate(
        &self,
        id: InstanceId,
        from: Option<&str>,
        to: &str,
        actor: &Actor,
        as_admin: bool,
    ) -> Result<InstanceView, EngineError> {
        let from = from.unwrap_or(&actor.name);
        if from != &*actor.name && !as_admin {
            return Err(EngineError::ApprovalRefused {
                instance: id,
                refusal: ApprovalRefusal::BadDelegate {
                    why: "only an administrator may delegate another approver's vote".into(),
                },
            });
        }
        if as_admin && !self.directory.exists(to).await? {
            return Err(EngineError::ApprovalRefused {
                instance: id,
                refusal: ApprovalRefusal::BadDelegate {
                    why: format!("there is no user `{to}`"),
                },
            });
        }
        self.retried(None, || async {
            let (inst, task, before, history) = self.approval_loaded(id).await?;
            let def = self.definition(inst.definition)?;
            let holders = self.holders(&def, &inst, task.as_ref()).await?;
            let approver = approval::check_delegation(
                &def,
                &inst,
                Option::as_ref(&before),
                from,
                to,
                &holders,
                as_admin,
            )?;
            let req = self.request(actor, None, &holders);
            let mut change = logic::unchanged(&inst);
            let open = task.as_ref().map(|t| t.id);
            let reason = (from != &*actor.name).then(|| format!("named by {}", actor.name));
            let mut d = Decider::new(&def, &req, &mut change, open, Option::clone(&before));
            d.delegate(approver, Arc::from(to), reason);
            let after = d.into_state();
            let view = self.commit(change, def, task, history).await?;
            self.approvals.put(id, view.version(), Arc::new(after));
            Ok(view)
        })
        .await
    }

    /// An instance, its task not done and the approval of its stage, for a vote or a
    /// delegation. The approval comes from the memo when it knows the instance's version (no
    /// history is read), else from the history, which is returned too.
    #[allow(clippy::type_complexity)]
    async fn approval_loaded(
        &self,
        id: InstanceId,
    ) -> Result<
        (
            Arc<Instance>,
            Option<Task>,
            Arc<Option<ApprovalState>>,
            Option<Vec<Event>>,
        ),
        EngineError,
    > {
        let (inst, task, history) = match self.approvals.peek(id) {
            Some((version, state)) => {
                let (inst, task) = self
                    .store
                    .instance_with_task(id)
                    .await?
                    .ok_or(EngineError::InstanceNotFound(id))?;
                if inst.version == version {
                    return Ok((inst, task, state, None));
                }
                let history = self.store.history(id).await?;
                (inst, task, history)
            }
            None => {
                let ((inst, task), history) = self
                    .store
                    .instance_with_task_and_history(id)
                    .await?
                    .ok_or(EngineError::InstanceNotFound(id))?;
                (inst, task, history)
            }
        };
        let def = self.definition(inst.definition)?;
        // Events after the version read belong to a change this one will lose to.
        let history: Vec<Event> = history
            .into_iter()
            .filter(|e| e.seq <= inst.version)
            .collect();
        let state = ApprovalState::of(def.model(), &history);
        Ok((inst, task, Arc::new(state), Some(history)))
    }

    /// The votes waiting for `user` (their own and those delegated to them), oldest level
    /// first, at most `limit`.
    pub async fn pending_ballots(
        &self,
        user: &str,
        limit: u32,
    ) -> Result<Vec<PendingBallot>, EngineError> {
        Ok(self.store.pending_ballots(user, limit).await?)
    }

    /// Run `attempt` again while it loses a race with another change, unless the caller
    /// named the version it decided on (then the conflict is theirs to see). Each attempt reads
    /// the instance anew and decides again, so what it writes is checked against the state it
    /// applies to: a change no longer allowed there is refused for what it is (the action is
    /// not possible in the stage now, a guard no longer holds), never as a conflict.
    async fn retried<T, F, Fut>(
        &self,
        expected_version: Option<i64>,
        attempt: F,
    ) -> Result<T, EngineError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, EngineError>>,
    {
        let mut tries = 0;
        loop {
            match attempt().await {
                Err(e)
                    if expected_version.is_none() && lost_race(&e) && tries < CONFLICT_RETRIES =>
                {
                    tries += 1;
                    // Those that lost together should not all come back together.
                    if tries > 2 {
                        let jitter = (self.clock.now().timestamp_subsec_micros() % 500) as u64;
                        tokio::time::sleep(std::time::Duration::from_micros(jitter)).await;
                    }
                }
                other => return other,
            }
        }
    }

    /// Replay the history and compare it with the stored state.
    pub async fn verify(&self, id: InstanceId) -> Result<bool, EngineError> {
        let (inst, _, _) = self.load(id).await?;
        let events = self.store.history(id).await?;
        Ok(logic::replay(id, inst.definition, &events).as_ref() == Some(&inst))
    }

    // -- queues and tasks -----------------------------------------------------------------------

    fn queue_info(&self, queue: &str) -> Result<Arc<QueueInfo>, EngineError> {
        self.catalog
            .queue(queue)
            .ok_or_else(|| EngineError::UnknownQueue(queue.to_string()))
    }

    /// Only members of a queue's roles may claim its tasks (anyone, if it names none).
    fn check_member(&self, queue: &str, actor: &Actor) -> Result<(), EngineError> {
        let info = self.queue_info(queue)?;
        if info.admits(actor) {
            Ok(())
        } else {
            Err(EngineError::NotQueueMember {
                queue: queue.to_string(),
                roles: info.roles.clone(),
            })
        }
    }

    /// Register an agent for push assignment, or take them off (their unclaimed assigned
    /// tasks go back to their queues).
    pub async fn set_agent(&self, agent: &Actor, active: bool) -> Result<(), EngineError> {
        let result = self
            .store
            .set_agent(&agent.name, &agent.roles, active, self.clock.now())
            .await;
        self.roster.forget();
        let now = self.clock.now();
        self.tell(
            result?
                .into_iter()
                .map(|t| TaskEvent::new(TaskEventKind::Released, t, now)),
        );
        Ok(())
    }

    /// For a queue with push assignment, pick the agent a new task goes to: the next active
    /// member by name after the queue's last assignee (round robin), or the active member
    /// holding the fewest tasks (least loaded). With no active member the task stays in the
    /// queue for anyone to claim.
    async fn assign(&self, task: &mut NewTask) -> Result<(), EngineError> {
        task.assigned_to = self.choose_agent(&task.queue).await?;
        Ok(())
    }

    /// The agent a task entering `queue` is pushed to, if the queue pushes and has an active
    /// member.
    async fn choose_agent(&self, queue: &str) -> Result<Option<Arc<str>>, EngineError> {
        let Some(info) = self.catalog.queue(queue) else {
            return Ok(None);
        };
        if info.assignment == Assignment::Pull {
            return Ok(None);
        }
        let agents = match self.roster.get() {
            Some(agents) => agents,
            None => self.roster.set(self.store.active_agents().await?),
        };
        let members: Vec<&Arc<str>> = agents
            .iter()
            .filter(|(_, roles)| {
                info.roles.is_empty() || roles.iter().any(|r| info.roles.contains(r))
            })
            .map(|(name, _)| name)
            .collect();
        if members.is_empty() {
            return Ok(None);
        }
        let chosen = match info.assignment {
            Assignment::RoundRobin => {
                let last = self.store.last_assignee(queue).await?;
                members
                    .iter()
                    .find(|&&n| Some(&**n) > last.as_deref())
                    .or(members.first())
                    .map(|&n| Arc::clone(n))
            }
            Assignment::LeastLoaded => {
                let names: Vec<&str> = members.iter().map(|n| &***n).collect();
                let loads: HashMap<String, u64> =
                    self.store.agent_loads(&names).await?.into_iter().collect();
                members
                    .iter()
                    .min_by_key(|&&n| (loads.get(&**n).copied().unwrap_or(0), n))
                    .map(|&n| Arc::clone(n))
            }
            Assignment::Pull => None,
        };
        Ok(chosen)
    }

    /// Push-assign every task a change creates, and the open task if the change moves it to
    /// another queue (an escalation, or routing after a field changed): `task_before` is the
    /// open task as the change was decided on.
    async fn assign_all(
        &self,
        change: &mut Change,
        task_before: Option<&Task>,
    ) -> Result<(), EngineError> {
        if let (Some(u), Some(before)) = (change.update_task.as_mut(), task_before) {
            if u.queue != before.queue {
                u.assigned_to = self.choose_agent(&u.queue).await?;
            }
        }
        if let Some(t) = change.new_task.as_mut() {
            self.assign(t).await?;
        }
        for s in change.spawns.iter_mut() {
            if let Some(t) = s.task.as_mut() {
                self.assign(t).await?;
            }
        }
        Ok(())
    }

    pub async fn queue_tasks(&self, queue: &str, limit: u32) -> Result<Vec<Task>, EngineError> {
        self.queue_info(queue)?;
        Ok(self.store.queue_tasks(queue, limit).await?)
    }

    pub async fn queue_counts(&self) -> Result<Vec<(String, u64)>, EngineError> {
        Ok(self.store.queue_counts().await?)
    }

    pub async fn task(&self, id: TaskId) -> Result<Task, EngineError> {
        self.store
            .task(id)
            .await?
            .ok_or(EngineError::TaskNotFound(id))
    }

    /// Claim the next task of a queue for `lease`.
    pub async fn claim_next(
        &self,
        queue: &str,
        actor: &Actor,
        lease: TimeDelta,
    ) -> Result<Option<Task>, EngineError> {
        self.check_member(queue, actor)?;
        let now = self.clock.now();
        let task = if !self.store.reads_are_round_trips() {
            self.store
                .claim_next(queue, &actor.name, now, now + lease)
                .await?
        } else {
            let claimed = self
                .store
                .claim_next_with_instance(queue, &actor.name, now, now + lease)
                .await?;
            claimed.map(|(task, instance)| {
                self.claimed.put(task.clone(), instance);
                task
            })
        };
        if let Some(t) = task.as_ref().filter(|_| self.watched()) {
            self.tell([TaskEvent::new(TaskEventKind::Claimed, t.clone(), now)]);
        }
        Ok(task)
    }

    pub async fn claim(
        &self,
        task: TaskId,
        actor: &Actor,
        lease: TimeDelta,
    ) -> Result<Task, EngineError> {
        let t = self.task(task).await?;
        self.check_member(&t.queue, actor)?;
        let now = self.clock.now();
        let claimed = self
            .store
            .claim(task, &actor.name, now, now + lease)
            .await?;
        if self.watched() {
            self.tell([TaskEvent::new(TaskEventKind::Claimed, claimed.clone(), now)]);
        }
        Ok(claimed)
    }

    pub async fn renew(
        &self,
        task: TaskId,
        token: i64,
        actor: &Actor,
        lease: TimeDelta,
    ) -> Result<Task, EngineError> {
        let now = self.clock.now();
        Ok(self
            .store
            .renew(task, token, &actor.name, now, now + lease)
            .await?)
    }

    pub async fn release(
        &self,
        task: TaskId,
        token: i64,
        actor: &Actor,
    ) -> Result<(), EngineError> {
        let released = self.store.release(task, token, &actor.name).await?;
        if self.watched() {
            self.tell([TaskEvent::new(
                TaskEventKind::Released,
                released,
                self.clock.now(),
            )]);
        }
        Ok(())
    }

    /// Complete a claimed task by performing an action on its instance. Refused if the claim
    /// (checked by its fencing token) is no longer this agent's.
    pub async fn complete(
        &self,
        task: TaskId,
        token: i64,
        action: &str,
        fields: &Map<String, Json>,
        actor: &Actor,
    ) -> Result<InstanceView, EngineError> {
        // A claim this engine made read the instance already. Deciding on that read is safe:
        // the change is checked against the instance's version and the task's token when it
        // commits, so one made since is refused. Then, or on any refusal (it may come from the
        // older read), nothing was written and the completion is decided again on a fresh read.
        if let Some((t, inst)) = self.claimed.take(task, token) {
            let open = Some(t.clone());
            match self
                .complete_on((t, inst, open), token, action, fields, actor)
                .await
            {
                Ok(view) => return Ok(view),
                Err(EngineError::Store(e))
                    if !matches!(e, StoreError::Conflict { .. } | StoreError::LeaseLost(_)) =>
                {
                    return Err(EngineError::Store(e));
                }
                Err(_) => {}
            }
        }
        // A completion carries no version: it applies to the instance as it is when it is
        // written, as long as the claim (the token) holds.
        self.retried(None, || async {
            let found = self
                .store
                .task_with_instance(task)
                .await?
                .ok_or(EngineError::TaskNotFound(task))?;
            self.complete_on(found, token, action, fields, actor).await
        })
        .await
    }

    /// [`Engine::complete`] on the task, its instance and the instance's open task as read.
    // Not an async fn on purpose: see the comment in the body.
    #[allow(clippy::manual_async_fn)]
    fn complete_on<'a>(
        &'a self,
        found: (Task, Arc<Instance>, Option<Task>),
        token: i64,
        action: &'a str,
        fields: &'a Map<String, Json>,
        actor: &'a Actor,
    ) -> impl Future<Output = Result<InstanceView, EngineError>> + 'a {
        // An async block using its captures where they lie (see `commit`).
        async move {
            let act = {
                let (t, inst, _) = &found;
                let task = t.id;
                if t.state != TaskState::Claimed
                    || t.token != token
                    || t.claimed_by.as_deref() != Some(&*actor.name)
                {
                    return Err(StoreError::LeaseLost(task).into());
                }
                let def = self.definition(inst.definition)?;
                let fence = Fence::Token {
                    token,
                    agent: actor.name.clone(),
                };
                let (_, inst, open) = found;
                // The history is read only if the action moves the instance on and its timer
                // state at this version is not remembered (see `schedule`).
                self.act_on(
                    (inst, def, open),
                    action,
                    fields,
                    None,
                    actor,
                    None,
                    Some((task, fence)),
                    None,
                )
            };
            act.await
        }
    }
}

/// The wake-ups a change writes: the instance's and its spawned instances'.
fn wakeups_of(change: &Change) -> Vec<DateTime<Utc>> {
    std::iter::once(change)
        .chain(&change.cascade)
        .flat_map(|c| {
            c.wakeup
                .flatten()
                .into_iter()
                .chain(c.spawns.iter().filter_map(|s| s.wakeup))
        })
        .collect()
}

fn check_version(inst: &Instance, expected: Option<i64>) -> Result<(), EngineError> {
    match expected {
        Some(v) if v != inst.version => Err(StoreError::Conflict {
            id: inst.id,
            expected: v,
        }
        .into()),
        _ => Ok(()),
    }
}
