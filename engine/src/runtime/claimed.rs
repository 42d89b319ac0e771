//! The instances this engine's claims read, kept for the completions that follow.
//!
//! An agent claims a task and, usually soon, completes it. Where every read is a round trip
//! to the database (PostgreSQL), the claim's statement returns the task's instance too, and the
//! completion starts from it instead of reading it again. That is as safe as any read: the
//! change the completion makes is checked against the instance's version and the task's
//! fencing token when it commits, so a change made in between is refused, and the engine then
//! decides the completion again on a fresh read (see `Engine::complete`).

use std::sync::{Arc, Mutex};

use foldhash::HashMap;

use super::types::{Instance, Task, TaskId};

/// Claims kept at most; when full it starts over (a claim not found only costs a read).
const CAPACITY: usize = 16_384;

#[derive(Default)]
pub struct ClaimedInstances {
    claims: Mutex<HashMap<TaskId, (Task, Arc<Instance>)>>,
}

impl ClaimedInstances {
    /// Keep a claimed task and its instance as the claim read them.
    pub fn put(&self, task: Task, instance: Arc<Instance>) {
        let mut claims = self.claims.lock().unwrap_or_else(|p| p.into_inner());
        if claims.len() >= CAPACITY && !claims.contains_key(&task.id) {
            claims.clear();
        }
        claims.insert(task.id, (task, instance));
    }

    /// The claim of `task` with fencing token `token`, taken out; `None` if this engine did not
    /// make that claim (or no longer remembers it).
    pub fn take(&self, task: TaskId, token: i64) -> Option<(Task, Arc<Instance>)> {
        let mut claims = self.claims.lock().unwrap_or_else(|p| p.into_inner());
        match claims.get(&task) {
            Some((t, _)) if t.token == token => claims.remove(&task),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::model::StageId;
    use crate::runtime::catalog::DefinitionId;
    use crate::runtime::types::{InstanceId, TaskState};

    fn claimed(id: i64, token: i64) -> (Task, Arc<Instance>) {
        let now = Utc::now();
        let task = Task {
            id: TaskId(id),
            instance: InstanceId(id),
            process: "incident".into(),
            stage: "triage".into(),
            queue: "network".into(),
            priority: Some(2),
            due_at: None,
            ola_due_at: None,
            created_at: now,
            state: TaskState::Claimed,
            assigned_to: None,
            claimed_by: Some("alice".into()),
            lease_until: Some(now),
            token,
        };
        let instance = Instance {
            id: InstanceId(id),
            definition: DefinitionId(1),
            stage: StageId(1),
            fields: Default::default(),
            priority: None,
            queue: None,
            version: 2,
            created_at: now,
            updated_at: now,
            created_by: "carol".into(),
        };
        (task, Arc::new(instance))
    }

    #[test]
    fn a_claim_is_taken_once_and_only_with_its_token() {
        let claims = ClaimedInstances::default();
        let (task, inst) = claimed(1, 3);
        claims.put(task, inst);
        assert!(claims.take(TaskId(1), 2).is_none(), "another token");
        assert!(claims.take(TaskId(2), 3).is_none(), "another task");
        assert!(claims.take(TaskId(1), 3).is_some());
        assert!(claims.take(TaskId(1), 3).is_none(), "taken once");
    }

    #[test]
    fn stays_bounded() {
        let claims = ClaimedInstances::default();
        for i in 0..(CAPACITY as i64 * 2 + 3) {
            let (task, inst) = claimed(i, 1);
            claims.put(task, inst);
        }
        let len = claims.claims.lock().map(|c| c.len()).unwrap_or(usize::MAX);
        assert!(len <= CAPACITY, "{len} entries");
    }
}
