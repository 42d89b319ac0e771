//! The timer state and wake-up of recently changed instances, by instance and version.
//!
//! A change that can move timers derives the wake-up after it and compares it with the one
//! before it, so that only a change that moves it writes it. Both come from the history:
//! without this memo, every such change would read the instance's whole history and fold it
//! (business-calendar arithmetic for every pause of a clock), twice. So each commit leaves here
//! the [`TimerState`] its history folds to and the wake-up it gives, and the next change on the
//! instance takes its "before" from here and folds only its own events into a copy of the
//! state: no history read, and work that does not grow with the history.
//!
//! The same memo keeps each recently voted instance's approval state ([`ApprovalMemo`]), so
//! the next vote on it needs no history read either.
//!
//! Correct across nodes without invalidation: the state and wake-up are a pure function of the
//! history up to a version, a version of an instance is committed once (the store's version
//! check), and the history is append-only. An entry for `(instance, version)` is therefore true
//! forever; a miss only costs the read and fold it saves.

use foldhash::HashMap;
use std::sync::{Arc, Mutex};

use super::timers::TimerState;
use super::types::InstanceId;
use chrono::{DateTime, Utc};

/// Entries kept at most. Agents act on the tickets they just touched, so a small memo catches
/// most changes; when full it starts over, which is cheaper than keeping an eviction order on
/// every change.
const CAPACITY: usize = 16_384;

/// What an instance's history up to one version gives its timers.
#[derive(Clone, Debug)]
pub struct Remembered {
    /// The history folded.
    pub state: Arc<TimerState>,
    /// When it next has something due.
    pub wakeup: Option<DateTime<Utc>>,
}

/// What the history up to one version gives, by instance.
pub struct VersionMemo<T> {
    entries: Mutex<HashMap<InstanceId, (i64, T)>>,
}

impl<T> Default for VersionMemo<T> {
    fn default() -> Self {
        VersionMemo {
            entries: Mutex::default(),
        }
    }
}

/// Timer states and wake-ups.
pub type ScheduleMemo = VersionMemo<Remembered>;

/// Approval states (`None`: the stage asked for none).
pub type ApprovalMemo = VersionMemo<Arc<Option<super::approval::ApprovalState>>>;

impl<T: Clone> VersionMemo<T> {
    /// What is remembered of the instance, and at which version, left in place.
    pub fn peek(&self, id: InstanceId) -> Option<(i64, T)> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.get(&id).cloned()
    }
}

impl<T> VersionMemo<T> {
    /// What the instance had at `version`, if remembered, taken out: the change decided on
    /// that version puts back what it leaves once committed (a change that fails costs the
    /// next one a fold of the history).
    pub fn take(&self, id: InstanceId, version: i64) -> Option<T> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        match entries.get(&id) {
            Some((v, _)) if *v == version => entries.remove(&id).map(|(_, r)| r),
            _ => None,
        }
    }

    /// Whether anything is remembered of the instance (at whatever version): a hint that its
    /// history need not be read ahead of a change.
    pub fn knows(&self, id: InstanceId) -> bool {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.contains_key(&id)
    }

    /// Remember what a committed `version` of the instance has.
    pub fn put(&self, id: InstanceId, version: i64, remembered: T) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= CAPACITY && !entries.contains_key(&id) {
            entries.clear();
        }
        entries.insert(id, (version, remembered));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nothing() -> Remembered {
        Remembered {
            state: Arc::default(),
            wakeup: None,
        }
    }

    #[test]
    fn remembers_only_the_version_it_was_told() {
        let memo = ScheduleMemo::default();
        let id = InstanceId(7);
        assert!(memo.take(id, 3).is_none());
        assert!(!memo.knows(id));
        memo.put(id, 3, nothing());
        assert!(memo.knows(id));
        assert!(
            memo.take(id, 4).is_none(),
            "another version is not the same history"
        );
        assert!(memo.knows(id), "a miss takes nothing out");
        assert!(memo.take(id, 3).is_some());
        assert!(!memo.knows(id), "taken out");
        assert!(memo.take(id, 3).is_none(), "taken once");
        memo.put(id, 3, nothing());
        memo.put(id, 5, nothing());
        assert!(
            memo.take(id, 3).is_none(),
            "a newer version replaces the older"
        );
        assert!(memo.take(id, 5).is_some());
    }

    #[test]
    fn stays_bounded() {
        let memo = ScheduleMemo::default();
        for i in 0..(CAPACITY as i64 * 2 + 3) {
            memo.put(InstanceId(i), 1, nothing());
        }
        let len = memo.entries.lock().map(|r| r.len()).unwrap_or(usize::MAX);
        assert!(len <= CAPACITY, "{len} entries");
    }
}
