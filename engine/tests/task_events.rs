//! Queue listeners hear what every committed change does to tasks, whoever made it: a ticket
//! raised, a claim and its release, an action moving a ticket to another queue, a task pushed
//! to an agent who then goes off shift, a spawned ticket's task, an effect closing a linked
//! ticket's task, a timer escalating a task, a migration moving tasks to the new version's
//! queues; on every store (memory, a real SQLite file, a real PostgreSQL database).

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use itsmflow_dsl::Sources;
use itsmflow_engine::runtime::migrate::Plan;
use itsmflow_engine::runtime::{Actor, Catalog, InstanceId, ManualClock, TaskEvent, TaskEventKind};
use itsmflow_engine::store::Store;
use serde_json::{json, Map};
use support::{fields, Node};
use tokio::sync::broadcast::error::TryRecvError;
use tokio::sync::broadcast::Receiver;

#[macro_use]
mod support;

const PROJECT: &str = r#"
role agent

queue desk {
  members agent
}

queue experts {
  members agent
}

queue pushed {
  members agent
  assign round_robin
}

process job {
  fields {
    title: text required
    impact: enum(high, low) required
  }

  links {
    parent: one ticket
  }

  stage open initial {
    queue desk
  }
  stage done final

  transition finish: open -> done
}

process ticket {
  fields {
    title: text required
    impact: enum(high, low) required
  }

  links {
    jobs: many job via parent
  }

  priorities P1, P2

  priority from impact {
    high => P1
    low => P2
  }

  targets on 24x7 {
    P1: resolve 4h
    P2: resolve 4h
  }

  stage new initial {
    queue desk
  }
  stage working {
    queue experts
  }
  stage handed {
    queue pushed
  }
  stage done final

  transition start: new -> working
  transition hand: new -> handed
  transition split: new -> new spawns job as jobs
  transition finish: new, working, handed -> done then perform finish on jobs

  escalation on resolve {
    at 50% => move to experts
  }
}
"#;

fn sources(text: &str) -> Sources {
    let mut s = Sources::new();
    s.add("project.itsm", text.to_string());
    s
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0)
        .single()
        .expect("date")
}

fn alice() -> Actor {
    Actor::new("alice", &["agent"])
}

struct World<S: Store> {
    node: Node<S>,
    clock: Arc<ManualClock>,
    heard: tokio::sync::Mutex<Receiver<TaskEvent>>,
}

async fn open<S: Store>(store: S, catalog: Arc<Catalog>) -> World<S> {
    let clock = Arc::new(ManualClock::new(start()));
    let node = Node::open(store, catalog, clock.clone(), &sources(PROJECT)).await;
    let heard = tokio::sync::Mutex::new(node.engine.task_events());
    World { node, clock, heard }
}

async fn close<S: Store>(world: World<S>) {
    world.node.stop().await;
}

/// An event as a test names it: what happened, in which queue, to which instance's task.
type Heard = (TaskEventKind, String, i64);

impl<S: Store> World<S> {
    /// What was told so far (the engine tells before the call that committed returns).
    async fn heard(&self) -> Vec<Heard> {
        let mut rx = self.heard.lock().await;
        let mut out = Vec::new();
        loop {
            match rx.try_recv() {
                Ok(e) => out.push((e.kind, e.task.queue.to_string(), e.task.instance.0)),
                Err(TryRecvError::Empty) => return out,
                Err(e) => panic!("task events: {e}"),
            }
        }
    }

    /// Wait for the scheduler to tell `n` events.
    async fn await_heard(&self, n: usize) -> Vec<Heard> {
        let mut rx = self.heard.lock().await;
        let mut out = Vec::new();
        while out.len() < n {
            let e = tokio::time::timeout(std::time::Duration::from_secs(30), rx.recv())
                .await
                .unwrap_or_else(|_| panic!("only {out:?} told"))
                .expect("task events");
            out.push((e.kind, e.task.queue.to_string(), e.task.instance.0));
        }
        out
    }

    async fn raise(&self, title: &str) -> InstanceId {
        self.node
            .engine
            .create(
                "ticket",
                &fields(json!({"title": title, "impact": "low"})),
                &alice(),
            )
            .await
            .expect("create")
            .id()
    }

    async fn act(&self, id: InstanceId, action: &str) {
        self.node
            .engine
            .perform(id, action, &Map::new(), None, &alice(), None)
            .await
            .unwrap_or_else(|e| panic!("{action}: {e}"));
    }
}

use TaskEventKind::*;

fn heard(kind: TaskEventKind, queue: &str, id: InstanceId) -> Heard {
    (kind, queue.to_string(), id.0)
}

async fn every_change_is_told<S: Store>(w: &World<S>) {
    let e = &w.node.engine;
    let lease = TimeDelta::minutes(10);

    // Raised, claimed, released.
    let a = w.raise("Printer jams").await;
    assert_eq!(w.heard().await, [heard(Added, "desk", a)]);
    let task = e
        .claim_next("desk", &alice(), lease)
        .await
        .expect("claim")
        .expect("a task");
    e.release(task.id, task.token, &alice())
        .await
        .expect("release");
    assert_eq!(
        w.heard().await,
        [heard(Claimed, "desk", a), heard(Released, "desk", a)]
    );

    // An action moves the ticket to another queue; completing a claimed task does too.
    w.act(a, "start").await;
    assert_eq!(
        w.heard().await,
        [heard(Removed, "desk", a), heard(Added, "experts", a)]
    );
    let task = e
        .claim_next("experts", &alice(), lease)
        .await
        .expect("claim")
        .expect("a task");
    e.complete(task.id, task.token, "finish", &Map::new(), &alice())
        .await
        .expect("complete");
    assert_eq!(
        w.heard().await,
        [heard(Claimed, "experts", a), heard(Removed, "experts", a)]
    );

    // A task pushed to an agent goes back to its queue when the agent goes off shift.
    e.set_agent(&alice(), true).await.expect("on shift");
    let b = w.raise("Laptop slow").await;
    w.act(b, "hand").await;
    let told = w.heard().await;
    assert_eq!(
        told,
        [
            heard(Added, "desk", b),
            heard(Removed, "desk", b),
            heard(Added, "pushed", b)
        ]
    );
    assert_eq!(
        e.queue_tasks("pushed", 10).await.expect("queue")[0]
            .assigned_to
            .as_deref(),
        Some("alice")
    );
    e.set_agent(&alice(), false).await.expect("off shift");
    assert_eq!(w.heard().await, [heard(Released, "pushed", b)]);
    w.act(b, "finish").await;
    assert_eq!(w.heard().await, [heard(Removed, "pushed", b)]);

    // A spawned ticket's task enters its queue; an effect closing it takes it out.
    let c = w.raise("Office move").await;
    w.act(c, "split").await;
    let told = w.heard().await;
    let job = InstanceId(told.last().expect("told").2);
    assert_ne!(job, c);
    assert_eq!(told, [heard(Added, "desk", c), heard(Added, "desk", job)]);
    w.act(c, "finish").await;
    assert_eq!(
        w.heard().await,
        [heard(Removed, "desk", c), heard(Removed, "desk", job)]
    );

    // A timer escalates a task to another queue: told by the scheduler that fired it.
    let d = w.raise("Backup failed").await;
    assert_eq!(w.heard().await, [heard(Added, "desk", d)]);
    w.clock.advance(TimeDelta::hours(2) + TimeDelta::minutes(1));
    assert_eq!(
        w.await_heard(2).await,
        [heard(Removed, "desk", d), heard(Escalated, "experts", d)]
    );

    // A migration moves the task of a ticket whose stage changes queue in the new version.
    w.act(d, "start").await;
    w.heard().await;
    let v2 = PROJECT.replace(
        "stage working {\n    queue experts",
        "stage working {\n    queue desk",
    );
    e.publish(&sources(&v2)).await.expect("publish v2");
    let plan: Plan =
        serde_json::from_value(json!({"process": "ticket", "from": 1, "to": 2})).expect("plan");
    e.migrate(&plan, &alice(), true).await.expect("migrate");
    assert_eq!(
        w.heard().await,
        [heard(Removed, "experts", d), heard(Added, "desk", d)]
    );
}

on_every_store!(told, every_change_is_told, open, close);
