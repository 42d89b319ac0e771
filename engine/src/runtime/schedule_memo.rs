//! The timer rows of recently changed instances, by instance and version.
//!
//! A change that can move timers compares the rows after it with the rows before it, so that
//! only a change that moves them writes them. Deriving the rows before the change costs as much
//! as deriving them after (business-calendar arithmetic for every escalation step), so the rows
//! each commit leaves are remembered here and the next change on the instance finds its
//! "before" without deriving it again.
//!
//! Correct across nodes without invalidation: the rows are a pure function of the history up to
//! a version, a version of an instance is committed once (the store's version check), and the
//! history is append-only. An entry for `(instance, version)` is therefore true forever; a miss
//! only costs the derivation it saves.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::types::{InstanceId, NewTimer};

/// Entries kept at most. Agents act on the tickets they just touched, so a small memo catches
/// most changes; when full it starts over, which is cheaper than keeping an eviction order on
/// every change.
const CAPACITY: usize = 16_384;

/// An instance's timer rows at one version.
type Remembered = (i64, Arc<Vec<NewTimer>>);

#[derive(Default)]
pub struct ScheduleMemo {
    rows: Mutex<HashMap<InstanceId, Remembered>>,
}

impl ScheduleMemo {
    /// The rows the instance had at `version`, if remembered.
    pub fn get(&self, id: InstanceId, version: i64) -> Option<Arc<Vec<NewTimer>>> {
        let rows = self.rows.lock().unwrap_or_else(|p| p.into_inner());
        rows.get(&id)
            .filter(|(v, _)| *v == version)
            .map(|(_, r)| r.clone())
    }

    /// Remember the rows a committed `version` of the instance has.
    pub fn put(&self, id: InstanceId, version: i64, timers: Arc<Vec<NewTimer>>) {
        let mut rows = self.rows.lock().unwrap_or_else(|p| p.into_inner());
        if rows.len() >= CAPACITY && !rows.contains_key(&id) {
            rows.clear();
        }
        rows.insert(id, (version, timers));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_only_the_version_it_was_told() {
        let memo = ScheduleMemo::default();
        let id = InstanceId(7);
        assert!(memo.get(id, 3).is_none());
        memo.put(id, 3, Arc::new(Vec::new()));
        assert!(memo.get(id, 3).is_some());
        assert!(
            memo.get(id, 4).is_none(),
            "another version is not the same history"
        );
        memo.put(id, 5, Arc::new(Vec::new()));
        assert!(
            memo.get(id, 3).is_none(),
            "a newer version replaces the older"
        );
    }

    #[test]
    fn stays_bounded() {
        let memo = ScheduleMemo::default();
        for i in 0..(CAPACITY as i64 * 2 + 3) {
            memo.put(InstanceId(i), 1, Arc::new(Vec::new()));
        }
        let len = memo.rows.lock().map(|r| r.len()).unwrap_or(usize::MAX);
        assert!(len <= CAPACITY, "{len} entries");
    }
}
