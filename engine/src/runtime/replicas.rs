//! Each thread's own copies of the catalog entries it reads.
//!
//! Every action looks its definition up, and many clone names out of it for the task they
//! create. Read from one shared map, each lookup writes to memory every thread shares: the
//! read lock's counter, the definition's reference count, the names' reference counts. With
//! two threads acting at once those cache lines travel between the cores at every action, which
//! made two threads on one catalog about a third slower than two threads on a catalog each.
//! A replica is a copy of a definition (its names copied too, so their counts are the
//! thread's own) that only its thread hands out; the shared catalog is read once per thread
//! and entry.
//!
//! Versions are immutable and ids never reused, so a replica of a version is true forever. What
//! a publish changes (the latest version of a process, the queues' members) is kept per
//! generation of the catalog and read again after a publish.

use std::cell::RefCell;
use std::sync::Arc;

use foldhash::{HashMap, HashMapExt};

use super::catalog::{Definition, DefinitionId, QueueInfo};

/// Catalogs a thread keeps replicas of at most: a process has one catalog (per tenant), tests
/// make many, one after another.
const CATALOGS_PER_THREAD: usize = 8;

/// One thread's replicas of one catalog.
pub struct Replica {
    catalog: u64,
    generation: u64,
    pub by_id: HashMap<DefinitionId, Arc<Definition>>,
    /// The latest version of each process, as of `generation`.
    pub latest: HashMap<String, Arc<Definition>>,
    /// Queue members, as of `generation`.
    pub queues: HashMap<String, Arc<QueueInfo>>,
}

thread_local! {
    static REPLICAS: RefCell<Vec<Replica>> = const { RefCell::new(Vec::new()) };
}

/// Run `f` on this thread's replica of catalog `catalog` at `generation` (what a publish
/// changes is forgotten when the generation moved on); `None` while the thread is being torn
/// down, when the caller reads the shared catalog instead. `f` must not call back in.
pub fn with<R>(catalog: u64, generation: u64, f: impl FnOnce(&mut Replica) -> R) -> Option<R> {
    REPLICAS
        .try_with(|replicas| {
            let mut replicas = replicas.try_borrow_mut().ok()?;
            let at = match replicas.iter().position(|r| r.catalog == catalog) {
                Some(at) => at,
                None => {
                    if replicas.len() >= CATALOGS_PER_THREAD {
                        replicas.remove(0);
                    }
                    replicas.push(Replica {
                        catalog,
                        generation,
                        by_id: HashMap::new(),
                        latest: HashMap::new(),
                        queues: HashMap::new(),
                    });
                    replicas.len() - 1
                }
            };
            let replica = &mut replicas[at];
            if replica.generation != generation {
                replica.generation = generation;
                replica.latest.clear();
                replica.queues.clear();
            }
            Some(f(replica))
        })
        .ok()
        .flatten()
}

impl Replica {
    /// This thread's copy of `def`, made on first use.
    pub fn of(&mut self, def: &Definition) -> Arc<Definition> {
        self.by_id
            .entry(def.id)
            .or_insert_with(|| Arc::new(def.replica()))
            .clone()
    }
}
