//! Published definitions. Each publish of a project that checks clean stores its source and,
//! for every process whose content changed, a new immutable version. Instances are pinned to
//! the version they started on, so the catalog keeps every version ever published.

use foldhash::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};

use super::replicas::{Replica, Replicas};
use super::timers::Timing;
use crate::model::{Process, Project};
pub use crate::record::definition::{
    process_hash, DefinitionId, Definitions, ProcessVersion, ProjectSource,
};

/// One version of one process, compiled: the published version (its fields read through
/// `Deref`, so the runtime reads `def.project` as it did before the record was split out) and
/// what the runtime works out of it once.
#[derive(Debug)]
pub struct Definition {
    /// Behind an `Arc` of its own so that [`Definitions::published`] hands it to a store
    /// without copying; each replica has its own (see [`Definition::replica`]).
    published: Arc<ProcessVersion>,
    /// What the timer fold asks of the process at every event, worked out once.
    timing: Timing,
    /// How many `manager of` steps the process's deepest reference to a person takes (0: it
    /// reads no managers), worked out once: every action asks.
    manager_depth: usize,
    /// The names a task carries, shared by every task of this version instead of copied.
    task_names: TaskNames,
}

impl std::ops::Deref for Definition {
    type Target = ProcessVersion;

    fn deref(&self) -> &ProcessVersion {
        &self.published
    }
}

/// The process's name and its stages' and the project's queues' names, by index.
#[derive(Debug)]
pub struct TaskNames {
    pub process: Arc<str>,
    pub stages: Vec<Arc<str>>,
    pub queues: Vec<Arc<str>>,
}

impl TaskNames {
    /// The names of a process's tasks, each allocated anew.
    fn of(model: &Process, project: &Project) -> Self {
        TaskNames {
            process: model.name.as_str().into(),
            stages: model
                .stages
                .iter()
                .map(|s| s.name.as_str().into())
                .collect(),
            queues: project
                .queues
                .iter()
                .map(|q| q.name.as_str().into())
                .collect(),
        }
    }
}

impl Definition {
    pub fn new(
        id: DefinitionId,
        version: u32,
        hash: String,
        published_at: DateTime<Utc>,
        project: Arc<Project>,
        process: &str,
    ) -> Option<Self> {
        let published = ProcessVersion::new(id, version, hash, published_at, project, process)?;
        let model = published.model();
        let timing = Timing::of_in(model, &published.project);
        let manager_depth = manager_depth(model);
        let task_names = TaskNames::of(model, &published.project);
        Some(Definition {
            published: Arc::new(published),
            timing,
            manager_depth,
            task_names,
        })
    }

    pub fn timing(&self) -> &Timing {
        &self.timing
    }

    /// How many `manager of` steps the process's deepest reference to a person takes (0: a
    /// decision on it never reads a manager from the directory).
    pub fn manager_depth(&self) -> usize {
        self.manager_depth
    }

    pub fn task_names(&self) -> &TaskNames {
        &self.task_names
    }

    /// A copy for a shard of replicas: the same version, with names (and a record) of its own.
    pub(super) fn replica(&self) -> Definition {
        Definition {
            published: Arc::new(ProcessVersion::clone(&self.published)),
            timing: self.timing.clone(),
            manager_depth: self.manager_depth,
            task_names: TaskNames::of(self.model(), &self.project),
        }
    }
}

/// How many `manager of` steps the deepest reference of the process takes (0: it reads no
/// managers).
fn manager_depth(p: &Process) -> usize {
    use crate::model::{EscalationAction, Notice, PersonRef, Recipient};
    let transitions = p.transitions.iter().flat_map(|t| &t.people);
    let approvals = p.approvals.iter().flat_map(|a| a.people());
    let notices = p
        .transitions
        .iter()
        .flat_map(|t| &t.notices)
        .chain(p.stages.iter().flat_map(|s| &s.notices))
        .chain(
            p.escalations
                .iter()
                .flat_map(|e| &e.steps)
                .flat_map(|s| &s.actions)
                .filter_map(|a| match a {
                    EscalationAction::Notify(n) => Some(n),
                    _ => None,
                }),
        )
        .flat_map(|n: &Notice| &n.to)
        .filter_map(|r| match r {
            Recipient::Person(p) => Some(p),
            _ => None,
        });
    transitions
        .chain(approvals)
        .chain(notices)
        .map(PersonRef::depth)
        .max()
        .unwrap_or(0)
}

/// A queue as the runtime needs it, independent of definition versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueInfo {
    /// Roles whose holders may claim its tasks; empty means anyone.
    pub roles: Vec<String>,
    pub assignment: crate::model::Assignment,
}

impl QueueInfo {
    /// Whether `actor` works this queue (may claim its tasks): a holder of one of its roles, or
    /// anyone when it names none.
    pub fn admits(&self, actor: &super::Actor) -> bool {
        self.roles.is_empty() || self.roles.iter().any(|r| actor.has_role(r))
    }
}

/// Every published version, by id, and the latest version of each process.
///
/// Lookups are served from the calling thread's shard of replicas (`replicas`), so that
/// threads acting at once do not write to the same memory to read it.
#[derive(Debug, Default)]
pub struct Catalog {
    inner: RwLock<CatalogInner>,
    replicas: Replicas,
    /// One more at each insert: what a publish changes is read again through every shard.
    generation: AtomicU64,
}

#[derive(Debug, Default)]
struct CatalogInner {
    by_id: HashMap<DefinitionId, Arc<Definition>>,
    latest: HashMap<String, Arc<Definition>>,
    /// Member roles of every queue, as the most recently published project declares them.
    queue_members: HashMap<String, Arc<QueueInfo>>,
    /// The `published_at` of the project `queue_members` came from.
    queues_from: Option<DateTime<Utc>>,
}

impl Catalog {
    pub fn insert(&self, def: Definition) -> Arc<Definition> {
        let def = Arc::new(def);
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        inner.by_id.insert(def.id, def.clone());
        let newer = inner
            .latest
            .get(&def.process)
            .is_none_or(|cur| cur.version < def.version);
        if newer {
            inner.latest.insert(def.process.clone(), def.clone());
        }
        if inner.queues_from.is_none_or(|at| at <= def.published_at) {
            inner.queues_from = Some(def.published_at);
            inner.queue_members = def
                .project
                .queues
                .iter()
                .map(|q| {
                    let info = QueueInfo {
                        roles: q
                            .members
                            .iter()
                            .map(|r| def.project.role(*r).name.clone())
                            .collect(),
                        assignment: q.assignment,
                    };
                    (q.name.clone(), Arc::new(info))
                })
                .collect();
        }
        // Bumped while the lock is held, so a thread that sees the new generation reads the
        // new entries.
        self.generation.fetch_add(1, Ordering::Release);
        def
    }

    fn shared(&self) -> std::sync::RwLockReadGuard<'_, CatalogInner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Run `f` on the calling thread's replicas.
    fn replica<R>(&self, f: impl FnOnce(&mut Replica) -> R) -> R {
        let generation = self.generation.load(Ordering::Acquire);
        self.replicas.with(generation, f)
    }

    /// Who works a queue and how work reaches them; `None` if no published project declares it.
    pub fn queue(&self, queue: &str) -> Option<Arc<QueueInfo>> {
        self.replica(|r| {
            if let Some(info) = r.queues.get(queue) {
                return Some(info.clone());
            }
            let info = Arc::new(QueueInfo::clone(self.shared().queue_members.get(queue)?));
            r.queues.insert(queue.to_string(), info.clone());
            Some(info)
        })
    }

    pub fn get(&self, id: DefinitionId) -> Option<Arc<Definition>> {
        self.replica(|r| {
            if let Some(def) = r.by_id.get(&id) {
                return Some(def.clone());
            }
            let shared = self.shared().by_id.get(&id)?.clone();
            Some(r.of(&shared))
        })
    }

    pub fn latest(&self, process: &str) -> Option<Arc<Definition>> {
        self.replica(|r| {
            if let Some(def) = r.latest.get(process) {
                return Some(def.clone());
            }
            let shared = self.shared().latest.get(process)?.clone();
            let def = r.of(&shared);
            r.latest.insert(process.to_string(), def.clone());
            Some(def)
        })
    }

    /// Every published version of every process, by process name then version.
    /// The project the newest published version belongs to: the current service catalogue.
    pub fn latest_project(&self) -> Option<Arc<crate::model::Project>> {
        self.shared()
            .by_id
            .values()
            .max_by_key(|d| d.id)
            .map(|d| d.project.clone())
    }

    pub fn definitions(&self) -> Vec<Arc<Definition>> {
        let mut all: Vec<Arc<Definition>> = self.shared().by_id.values().cloned().collect();
        all.sort_by(|a, b| (&a.process, a.version).cmp(&(&b.process, b.version)));
        all
    }

    /// One version of a process.
    pub fn version(&self, process: &str, version: u32) -> Option<Arc<Definition>> {
        self.shared()
            .by_id
            .values()
            .find(|d| d.process == process && d.version == version)
            .cloned()
    }

    /// Every queue the latest published project declares, by name.
    pub fn queues(&self) -> Vec<(String, Arc<QueueInfo>)> {
        let mut all: Vec<(String, Arc<QueueInfo>)> = self
            .shared()
            .queue_members
            .iter()
            .map(|(name, info)| (name.clone(), info.clone()))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }
}

impl Definitions for Catalog {
    fn published(&self, id: DefinitionId) -> Option<Arc<ProcessVersion>> {
        self.get(id).map(|def| def.published.clone())
    }
}
