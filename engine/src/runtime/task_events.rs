//! What committed changes did to tasks, for whoever watches queues (the server's live queue
//! views). The engine tells it from each change it writes, whoever asked for the change: an
//! agent's action, a timer, an effect on a linked ticket, a spawn, an agent going off shift, a
//! migration. Telling is best effort, like the views it feeds: a listener that falls behind
//! is told how many events it missed and reloads.

use chrono::{DateTime, Utc};

use super::types::{Change, Task};
use crate::store::Committed;

/// What happened to a task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskEventKind {
    /// The task entered its queue: new, moved here, or re-prioritised in place.
    Added,
    Claimed,
    /// Back in its queue for anyone: its claim was released, or the agent it was pushed to
    /// went off shift.
    Released,
    /// The task left its queue: done, or its instance moved on.
    Removed,
    /// A timer fired on the task's instance (an escalation step, a breach, an automatic
    /// transition): it may have moved here, changed priority, or be about to go.
    Escalated,
}

/// A task as a committed change left it (for `Removed`: as it was when it left).
#[derive(Clone, Debug)]
pub struct TaskEvent {
    pub kind: TaskEventKind,
    pub task: Task,
    pub at: DateTime<Utc>,
}

impl TaskEvent {
    pub fn new(kind: TaskEventKind, task: Task, at: DateTime<Utc>) -> Self {
        TaskEvent { kind, task, at }
    }
}

/// Who made a change: a request, or a timer (whose effect on the instance's own task is told
/// as `Escalated`, so a queue view can show that the engine moved it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    Request,
    Timer,
}

/// What a change was about to do to one instance's open task.
struct Shape {
    before: Option<Task>,
    /// The change creates or updates the instance's task (the store hands back the result).
    touched: bool,
    closed: bool,
}

impl Shape {
    fn of(change: &Change, before: Option<Task>) -> Self {
        Shape {
            before,
            touched: change.new_task.is_some() || change.update_task.is_some(),
            closed: change.close_task.is_some(),
        }
    }

    fn tell(
        self,
        after: Option<&Task>,
        origin: Origin,
        at: DateTime<Utc>,
        out: &mut Vec<TaskEvent>,
    ) {
        let after = match (self.touched, self.closed) {
            (true, _) => after.cloned(),
            (false, true) => None,
            (false, false) => self.before.clone(),
        };
        let event = |kind, task: &Task| TaskEvent::new(kind, task.clone(), at);
        let left = |before: &Task| {
            after
                .as_ref()
                .is_none_or(|a| a.id != before.id || a.queue != before.queue)
        };
        match origin {
            Origin::Timer => {
                out.extend(
                    self.before
                        .as_ref()
                        .filter(|b| left(b))
                        .map(|b| event(TaskEventKind::Removed, b)),
                );
                out.extend(after.as_ref().map(|a| event(TaskEventKind::Escalated, a)));
            }
            Origin::Request => match (&self.before, &after) {
                (Some(b), Some(a)) if !left(b) => {
                    if a.priority != b.priority {
                        out.push(event(TaskEventKind::Added, a));
                    }
                }
                (before, after) => {
                    out.extend(before.as_ref().map(|b| event(TaskEventKind::Removed, b)));
                    out.extend(after.as_ref().map(|a| event(TaskEventKind::Added, a)));
                }
            },
        }
    }
}

/// What to remember of a change before it is written, to tell afterwards what it did to
/// tasks: the instance's task as the change was decided on, and the same for each linked
/// ticket the change carries ([`Change::task_before`]).
pub(crate) struct Watch {
    main: Shape,
    cascade: Vec<Shape>,
}

impl Watch {
    /// `before` is the instance's open task as the change was decided on.
    pub fn of(change: &mut Change, before: Option<Task>) -> Self {
        Watch {
            main: Shape::of(change, before),
            cascade: change
                .cascade
                .iter_mut()
                .map(|c| {
                    let before = c.task_before.take();
                    Shape::of(c, before)
                })
                .collect(),
        }
    }

    /// The events of the change, now that the store says what it wrote.
    pub fn events(
        self,
        committed: &Committed,
        origin: Origin,
        at: DateTime<Utc>,
    ) -> Vec<TaskEvent> {
        let mut out = Vec::new();
        self.main
            .tell(committed.task.as_ref(), origin, at, &mut out);
        spawned(committed, at, &mut out);
        for (shape, done) in self.cascade.into_iter().zip(&committed.cascaded) {
            shape.tell(done.task.as_ref(), Origin::Request, at, &mut out);
            spawned(done, at, &mut out);
        }
        out
    }
}

/// Each spawned instance's first task entered its queue.
fn spawned(committed: &Committed, at: DateTime<Utc>, out: &mut Vec<TaskEvent>) {
    out.extend(
        committed
            .spawned
            .iter()
            .filter_map(|(_, task)| task.as_ref())
            .map(|t| TaskEvent::new(TaskEventKind::Added, t.clone(), at)),
    );
}
