//! A catalog's copies of its entries, one set per thread.
//!
//! Every action looks its definition up, and many clone names out of it for the task they
//! create. Read from one shared map, each lookup writes to memory every thread shares: the
//! read lock's counter, the definition's reference count, the names' reference counts. With
//! two threads acting at once those cache lines travel between the cores at every action, which
//! made two threads on one catalog about a third slower than two threads on a catalog each.
//!
//! So a catalog keeps shards of replicas, and each thread reads through its own shard: a copy
//! of each definition it used (its names copied too, so their counts are the shard's own),
//! behind a lock no other thread takes unless there are more threads than shards. The shared
//! catalog is read once per shard and entry. The shards belong to the catalog, so a server with
//! a catalog per tenant keeps no replicas of a catalog beyond the catalog's own life.
//!
//! Replicas are kept per generation of the catalog (one more at each insert) and read again
//! after a publish: the latest version of a process and the queues' members change then.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use foldhash::HashMap;

use super::catalog::{Definition, DefinitionId, QueueInfo};

/// One shard's replicas.
#[derive(Default)]
pub struct Replica {
    generation: u64,
    pub by_id: HashMap<DefinitionId, Arc<Definition>>,
    /// The latest version of each process, as of `generation`.
    pub latest: HashMap<String, Arc<Definition>>,
    /// Queue members, as of `generation`.
    pub queues: HashMap<String, Arc<QueueInfo>>,
}

impl Replica {
    /// This shard's copy of `def`, made on first use.
    pub fn of(&mut self, def: &Definition) -> Arc<Definition> {
        self.by_id
            .entry(def.id)
            .or_insert_with(|| Arc::new(def.replica()))
            .clone()
    }
}

/// A shard on cache lines of its own, so that threads locking neighbouring shards do not
/// share a line.
#[repr(align(128))]
struct Shard(Mutex<Replica>);

pub struct Replicas {
    shards: Box<[Shard]>,
}

impl std::fmt::Debug for Replicas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Replicas({} shards)", self.shards.len())
    }
}

impl Default for Replicas {
    /// Two shards per core: a runtime's worker threads each get a shard of their own, with
    /// room for the threads that come and go beside them.
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(4, |n| n.get());
        let shards = (cores * 2).clamp(4, 256);
        Replicas {
            shards: (0..shards)
                .map(|_| Shard(Mutex::new(Replica::default())))
                .collect(),
        }
    }
}

/// Threads numbered in the order they first read a catalog: consecutive threads get
/// consecutive shards.
static THREADS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static THREAD: usize = THREADS.fetch_add(1, Ordering::Relaxed);
}

impl Replicas {
    /// Run `f` on the calling thread's shard at `generation` (what a publish changes is
    /// forgotten when the generation moved on). `f` must not read the replicas again.
    pub fn with<R>(&self, generation: u64, f: impl FnOnce(&mut Replica) -> R) -> R {
        // A thread being torn down has no number any more: any shard is correct.
        let thread = THREAD.try_with(|n| *n).unwrap_or(0);
        let shard = &self.shards[thread % self.shards.len()];
        let mut replica = shard.0.lock().unwrap_or_else(|e| e.into_inner());
        if replica.generation != generation {
            // Everything goes, versions too: publishes are rare, and a version inserted again
            // under its id (stores sharing a catalog number theirs from 1) is then read anew.
            replica.generation = generation;
            replica.by_id.clear();
            replica.latest.clear();
            replica.queues.clear();
        }
        f(&mut replica)
    }
}
