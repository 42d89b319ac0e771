//! Operational-level targets (OLA) on every store (memory, a real SQLite file, a real
//! PostgreSQL database), on virtual time: each stay of a ticket in a queue is measured on its
//! own (across stage changes in the queue, not across a move to another queue), pauses while
//! the ticket waits, takes its tier's targets where its queue has none, and its breach fires
//! once (also after the store is opened again past it) and tells the queue's members. The
//! task a queue lists carries the OLA due time.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use itsmflow_dsl::Sources;
use itsmflow_engine::runtime::clocks::ClockState;
use itsmflow_engine::runtime::ola::OlaClock;
use itsmflow_engine::runtime::{Actor, Catalog, InstanceId, ManualClock, NotificationFilter};
use itsmflow_engine::store::memory::MemoryStore;
use itsmflow_engine::store::postgres::PostgresStore;
use itsmflow_engine::store::sqlite::SqliteStore;
use itsmflow_engine::store::Store;
use serde_json::{json, Map, Value};
use support::{fields, Node, Place};

mod support;

/// The desk agrees its own OLA; the expert team (tier 2) takes its tier's; the vendor agrees
/// none. Everything on `24x7`, so times are easy to count.
const PROJECT: &str = r#"
role agent
role engineer

tier 2 "Second line" {
  targets on 24x7 {
    default: resolve 2h
  }
}

queue desk {
  tier 1
  members agent
  targets on 24x7 {
    P2: resolve 1h
    P3: resolve 2h
  }
}

queue expert {
  tier 2
  members engineer
}

queue vendor {
  tier 3
}

process ticket {
  fields {
    title: text required
    impact: enum(high, low) required
    team: enum(desk, expert, vendor) required default desk
    resolution: text
  }

  priorities P1, P2, P3

  priority from impact {
    high => P2
    low => P3
  }

  targets on 24x7 {
    P1: resolve 8h
    P2: resolve 8h
    P3: resolve 8h
  }

  stage open initial {
    queue by routing
  }
  stage working {
    queue by routing
  }
  stage waiting {
    queue by routing
    pauses resolve
  }
  stage resolved {
    stops resolve
  }
  stage closed final

  transition take: open -> working by role agent
  transition wait: working -> waiting by role agent
  transition resume: waiting -> working by role agent
  transition resolve: working -> resolved by role agent requires resolution
  transition close: resolved -> closed by role agent

  routing {
    when team == expert => expert
    when team == vendor => vendor
    otherwise => desk
  }
}
"#;

fn project() -> Sources {
    let mut s = Sources::new();
    s.add("project.itsm", PROJECT.to_string());
    s
}

fn agent() -> Actor {
    Actor::new("alice", &["agent"])
}

/// Monday 2 November 2026, 09:00 UTC.
fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0)
        .single()
        .expect("valid time")
}

fn mins(m: i64) -> TimeDelta {
    TimeDelta::minutes(m)
}

async fn advance<S: Store>(node: &Node<S>, clock: &ManualClock, by: TimeDelta) {
    clock.advance(by);
    node.scheduler.settled().await;
}

/// The OLA clocks: past stays first, the current one (if any) last.
async fn ola<S: Store>(node: &Node<S>, id: InstanceId) -> Vec<OlaClock> {
    node.engine.ola_clocks(id).await.expect("ola clocks")
}

/// The queues whose OLA breach the history records, in order.
async fn breaches<S: Store>(node: &Node<S>, id: InstanceId) -> Vec<String> {
    node.engine
        .history(id)
        .await
        .expect("history")
        .into_iter()
        .filter(|h| h.kind == "ola_breached")
        .map(|h| {
            h.data
                .get("queue")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

/// The OLA due time of the instance's task, as the queue lists it.
async fn listed_ola_due<S: Store>(
    node: &Node<S>,
    queue: &str,
    id: InstanceId,
) -> Option<DateTime<Utc>> {
    let tasks = node.engine.queue_tasks(queue, 100).await.expect("tasks");
    let task = tasks
        .iter()
        .find(|t| t.instance == id)
        .unwrap_or_else(|| panic!("no task of {id} in {queue}: {tasks:?}"));
    task.ola_due_at
}

async fn act<S: Store>(node: &Node<S>, id: InstanceId, action: &str, with: Map<String, Value>) {
    node.engine
        .perform(id, action, &with, None, &agent(), None)
        .await
        .unwrap_or_else(|e| panic!("{action}: {e}"));
}

async fn move_to<S: Store>(node: &Node<S>, id: InstanceId, team: &str) {
    node.engine
        .update(id, &fields(json!({ "team": team })), None, &agent(), None)
        .await
        .expect("update");
}

// ---------------------------------------------------------------------------------------------
// Scenarios

/// A stay goes on across stage changes in its queue and ends when the ticket moves to another
/// queue, which starts a stay of its own on that queue's targets (here its tier's).
async fn stays_per_queue_and_tier_fallback<S: Store>(node: &Node<S>, clock: &ManualClock) {
    let e = &node.engine;
    let t = e
        .create(
            "ticket",
            &fields(json!({"title": "printer on fire", "impact": "low"})),
            &agent(),
        )
        .await
        .expect("create");
    let id = t.id();
    let now = ola(node, id).await;
    assert_eq!(now.len(), 1, "{now:?}");
    let c = &now[0];
    assert_eq!(
        (c.queue.as_str(), c.tier, c.row.as_str(), c.target.as_str()),
        ("desk", None, "P3", "2h"),
        "the desk's own row for P3"
    );
    assert_eq!(c.state, ClockState::Running);
    assert_eq!(c.due_at, Some(start() + TimeDelta::hours(2)));
    assert_eq!(
        listed_ola_due(node, "desk", id).await,
        Some(start() + TimeDelta::hours(2)),
        "the queue lists the task with its OLA due time"
    );

    advance(node, clock, mins(30)).await;
    act(node, id, "take", Map::new()).await;
    advance(node, clock, mins(30)).await;
    let now = ola(node, id).await;
    assert_eq!(now.len(), 1, "taking it keeps it in the desk: one stay");
    assert_eq!(now[0].elapsed_seconds, 3600);

    // Reassigned to the expert team: the desk's stay ends within its target; the team's own
    // begins on tier 2's `default` row.
    move_to(node, id, "expert").await;
    let now = ola(node, id).await;
    assert_eq!(now.len(), 2, "{now:?}");
    let (past, current) = (&now[0], &now[1]);
    assert_eq!(past.queue, "desk");
    assert_eq!(past.state, ClockState::Met);
    assert_eq!(past.elapsed_seconds, 3600);
    assert_eq!(past.left_at, Some(start() + TimeDelta::hours(1)));
    assert_eq!(
        (current.queue.as_str(), current.tier, current.row.as_str()),
        ("expert", Some(2), "default"),
        "a queue without targets takes its tier's"
    );
    assert_eq!(current.elapsed_seconds, 0);
    assert_eq!(current.due_at, Some(start() + TimeDelta::hours(3)));
    assert_eq!(
        listed_ola_due(node, "expert", id).await,
        Some(start() + TimeDelta::hours(3)),
        "the moved task carries the new stay's due time"
    );

    // A queue with no OLA: no clock, and its task has no OLA due time.
    move_to(node, id, "vendor").await;
    let now = ola(node, id).await;
    assert_eq!(
        now.len(),
        2,
        "no stay is measured in the vendor queue: {now:?}"
    );
    assert!(now.iter().all(|c| c.left_at.is_some()));
    assert_eq!(listed_ola_due(node, "vendor", id).await, None);
    assert!(breaches(node, id).await.is_empty());
    assert!(e.verify(id).await.expect("verify"));
}

/// Waiting pauses the stay's clock (no due time, nothing fires); resuming runs it again
/// from where it was; past its target the breach is recorded once and the queue's members
/// are told; the stay that ends after it reads breached.
async fn pause_then_breach_once<S: Store>(node: &Node<S>, clock: &ManualClock) {
    let e = &node.engine;
    let t = e
        .create(
            "ticket",
            &fields(json!({"title": "router down", "impact": "high", "team": "expert"})),
            &agent(),
        )
        .await
        .expect("create");
    let id = t.id();
    act(node, id, "take", Map::new()).await;
    advance(node, clock, mins(30)).await;
    act(node, id, "wait", Map::new()).await;
    let c = ola(node, id).await.pop().expect("a clock");
    assert_eq!(c.state, ClockState::Paused);
    assert_eq!(c.due_at, None);
    assert_eq!(
        listed_ola_due(node, "expert", id).await,
        None,
        "paused: no due time"
    );

    // Four hours waiting: longer than the whole target, and nothing falls due.
    advance(node, clock, TimeDelta::hours(4)).await;
    assert!(breaches(node, id).await.is_empty(), "paused, not breached");
    let c = ola(node, id).await.pop().expect("a clock");
    assert_eq!((c.state, c.elapsed_seconds), (ClockState::Paused, 1800));

    act(node, id, "resume", Map::new()).await;
    let resumed = start() + TimeDelta::minutes(270);
    let c = ola(node, id).await.pop().expect("a clock");
    assert_eq!(c.state, ClockState::Running);
    assert_eq!(c.due_at, Some(resumed + mins(90)), "1h30m of the 2h left");
    assert_eq!(
        listed_ola_due(node, "expert", id).await,
        Some(resumed + mins(90))
    );

    advance(node, clock, mins(91)).await;
    assert_eq!(breaches(node, id).await, ["expert"]);
    let told = e
        .notifications(
            &NotificationFilter {
                instance: Some(id),
                ..Default::default()
            },
            100,
            None,
        )
        .await
        .expect("notifications");
    let ola_notes: Vec<_> = told
        .iter()
        .filter(|n| n.clock.as_deref() == Some("ola"))
        .collect();
    assert_eq!(ola_notes.len(), 1, "{told:?}");
    assert_eq!(
        ola_notes[0].role, "engineer",
        "the queue's members are told"
    );
    assert!(
        ola_notes[0]
            .message
            .contains("passed the OLA target of queue expert"),
        "{}",
        ola_notes[0].message
    );
    let c = ola(node, id).await.pop().expect("a clock");
    assert_eq!(c.state, ClockState::Breached);
    assert!(c.breach_recorded);

    advance(node, clock, TimeDelta::hours(5)).await;
    assert_eq!(breaches(node, id).await, ["expert"], "fired once");

    act(
        node,
        id,
        "resolve",
        fields(json!({"resolution": "replaced the router"})),
    )
    .await;
    let c = ola(node, id).await.pop().expect("a clock");
    assert_eq!(
        c.state,
        ClockState::Breached,
        "the ended stay reads breached"
    );
    assert!(c.left_at.is_some());
    assert!(e.verify(id).await.expect("verify"));
}

macro_rules! on_every_store {
    ($name:ident, $scenario:ident) => {
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn memory() {
                let clock = Arc::new(ManualClock::new(start()));
                let catalog = Arc::new(Catalog::default());
                let store = MemoryStore::new(catalog.clone());
                let node = Node::open(store, catalog, clock.clone(), &project()).await;
                $scenario(&node, &clock).await;
                node.stop().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let place = Place::new("sqlite").await;
                let Place::Sqlite(path) = &place else {
                    unreachable!()
                };
                let clock = Arc::new(ManualClock::new(start()));
                let catalog = Arc::new(Catalog::default());
                let store = SqliteStore::open(path, catalog.clone())
                    .await
                    .expect("sqlite");
                let node = Node::open(store, catalog, clock.clone(), &project()).await;
                $scenario(&node, &clock).await;
                node.stop().await;
                place.remove().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let place = Place::new("postgres").await;
                let Place::Postgres(url) = &place else {
                    unreachable!()
                };
                let clock = Arc::new(ManualClock::new(start()));
                let catalog = Arc::new(Catalog::default());
                let store = PostgresStore::connect(url, catalog.clone())
                    .await
                    .expect("postgres");
                let node = Node::open(store, catalog, clock.clone(), &project()).await;
                $scenario(&node, &clock).await;
                node.stop().await;
                place.remove().await;
            }
        }
    };
}

on_every_store!(stays, stays_per_queue_and_tier_fallback);
on_every_store!(pause_and_breach, pause_then_breach_once);

// ---------------------------------------------------------------------------------------------
// Restarts: a breach that fell due while no scheduler ran fires once when one runs again.

async fn breach_after_restart<S: Store>(open: impl AsyncFn(Arc<Catalog>) -> S) {
    let clock = Arc::new(ManualClock::new(start()));
    let catalog = Arc::new(Catalog::default());
    let node = Node::open(
        open(catalog.clone()).await,
        catalog,
        clock.clone(),
        &project(),
    )
    .await;
    let t = node
        .engine
        .create(
            "ticket",
            &fields(json!({"title": "mail down", "impact": "high"})),
            &agent(),
        )
        .await
        .expect("create");
    node.stop().await;

    // Down for three hours: the desk's P2 target (1h) passed meanwhile.
    clock.advance(TimeDelta::hours(3));
    let catalog = Arc::new(Catalog::default());
    let node = Node::open(
        open(catalog.clone()).await,
        catalog,
        clock.clone(),
        &project(),
    )
    .await;
    node.scheduler.settled().await;
    assert_eq!(breaches(&node, t.id()).await, ["desk"]);
    let recorded = node
        .engine
        .history(t.id())
        .await
        .expect("history")
        .into_iter()
        .find(|h| h.kind == "ola_breached")
        .expect("recorded");
    assert_eq!(
        recorded.at,
        start() + TimeDelta::hours(3),
        "fired when the node came back"
    );
    advance(&node, &clock, TimeDelta::days(1)).await;
    assert_eq!(
        breaches(&node, t.id()).await,
        ["desk"],
        "nothing fires twice"
    );
    assert!(node.engine.verify(t.id()).await.expect("verify"));
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missed_ola_breach_fires_once_after_a_sqlite_restart() {
    let place = Place::new("sqlite").await;
    let Place::Sqlite(path) = place.clone() else {
        unreachable!()
    };
    breach_after_restart(async |catalog| SqliteStore::open(&path, catalog).await.expect("sqlite"))
        .await;
    place.remove().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missed_ola_breach_fires_once_after_a_postgres_restart() {
    let place = Place::new("postgres").await;
    let Place::Postgres(url) = place.clone() else {
        unreachable!()
    };
    breach_after_restart(async |catalog| {
        PostgresStore::connect(&url, catalog)
            .await
            .expect("postgres")
    })
    .await;
    place.remove().await;
}
