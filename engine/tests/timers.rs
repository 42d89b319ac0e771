//! Timers and the scheduler on virtual time: escalation steps, breaches, automatic transitions
//! and held notifications, on every store (memory, a real SQLite file, a real PostgreSQL
//! database), across restarts, and shared by two PostgreSQL nodes. Nothing here sleeps on real
//! time: tests move a `ManualClock` and wait for the scheduler to settle.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use itsmflow_dsl::Sources;
use itsmflow_engine::runtime::{
    Actor, Catalog, Clock, Engine, InstanceId, ManualClock, Notification, NotificationFilter,
    Scheduler, SchedulerConfig, TaskState, Timer,
};
use itsmflow_engine::store::memory::MemoryStore;
use itsmflow_engine::store::postgres::PostgresStore;
use itsmflow_engine::store::sqlite::SqliteStore;
use itsmflow_engine::store::Store;
use serde_json::{json, Map, Value};
use support::{fields, processes, Node, Place};

mod support;

/// A small process on `24x7`, so every due point is easy to count: P3 has 8h to resolve, P2 6h.
const TICKET: &str = r#"
role agent
role team_lead

queue desk {
  tier 1
  escalates_to expert
  members agent
}

queue expert {
  tier 2
  members agent
}

process ticket {
  fields {
    title: text required
    impact: enum(high, low) required
    resolution: text
  }

  priorities P1, P2, P3

  priority from impact {
    high => P2
    low => P3
  }

  targets on 24x7 {
    P1: resolve 4h
    P2: resolve 6h
    P3: resolve 8h
  }

  stage open initial {
    queue desk
  }
  stage waiting {
    pauses resolve
  }
  stage resolved {
    stops resolve
  }
  stage closed final

  transition wait: open -> waiting by role agent
  transition resume: waiting -> open by role agent
  transition resolve: open -> resolved by role agent requires resolution
  transition reopen: resolved -> open by role agent
  transition close: resolved -> closed by role agent or after 3d

  escalation on resolve {
    at 25% => notify role team_lead
    at 50% => raise priority
    at 75% => move to next tier
    at 100% => notify role team_lead, perform resolve
  }
}
"#;

/// Many tickets that all notify at once, half an hour after they are created.
const PING: &str = r#"
role watcher

process ping {
  fields {
    level: enum(one) required default one
  }

  priorities P1

  priority from level {
    one => P1
  }

  targets on 24x7 {
    P1: resolve 1h
  }

  stage open initial
  stage done final

  transition finish: open -> done

  escalation on resolve {
    at 50% => notify role watcher
  }
}
"#;

fn project(text: &str) -> Sources {
    let mut s = Sources::new();
    s.add("project.itsm", text.to_string());
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

fn ticket(impact: &str) -> Map<String, Value> {
    fields(json!({"title": "printer on fire", "impact": impact}))
}

// ---------------------------------------------------------------------------------------------
// Harness

/// Run a scenario on a node of each kind of store, with `TICKET` or the given project
/// published; the scenario gets the node and its clock.
macro_rules! on_every_store {
    ($name:ident, $scenario:ident) => {
        on_every_store!($name, $scenario, TICKET);
    };
    ($name:ident, $scenario:ident, $text:expr) => {
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn memory() {
                let clock = Arc::new(ManualClock::new(start()));
                let catalog = Arc::new(Catalog::default());
                let node = Node::open(
                    MemoryStore::new(catalog.clone()),
                    catalog,
                    clock.clone(),
                    &project($text),
                )
                .await;
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
                let node = Node::open(store, catalog, clock.clone(), &project($text)).await;
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
                let node = Node::open(store, catalog, clock.clone(), &project($text)).await;
                $scenario(&node, &clock).await;
                node.stop().await;
                place.remove().await;
            }
        }
    };
}

/// The instance's due points, from its history; and the store keeps the earliest as its
/// wake-up, however the points moved.
async fn due_points<S: Store>(e: &Engine<S>, id: InstanceId) -> Vec<Timer> {
    let points = e.timers(id).await.expect("timers");
    assert_eq!(
        e.store().wakeup(id).await.expect("wakeup"),
        points.first().map(|t| t.due_at),
        "the stored wake-up is the earliest due point: {points:?}"
    );
    points
}

/// Move the clock and let the scheduler fire what fell due.
async fn advance<S: Store>(node: &Node<S>, clock: &ManualClock, by: TimeDelta) {
    clock.advance(by);
    node.scheduler.settled().await;
}

/// The instance's history as (kind, detail): the threshold, action, role, queue or priority.
async fn story<S: Store>(e: &Engine<S>, id: InstanceId) -> Vec<(String, String)> {
    e.history(id)
        .await
        .expect("history")
        .into_iter()
        .map(|h| {
            let d = &h.data;
            let detail = ["threshold", "action", "role", "to", "clock", "transition"]
                .iter()
                .find_map(|k| d.get(*k).and_then(Value::as_str))
                .unwrap_or_default()
                .to_string();
            (h.kind.to_string(), detail)
        })
        .collect()
}

fn of_kind<'a>(story: &'a [(String, String)], kind: &str) -> Vec<&'a str> {
    story
        .iter()
        .filter(|(k, _)| k == kind)
        .map(|(_, d)| d.as_str())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Scenarios

/// Every step fires once, in order; raising the priority at 50% moves the later steps (the
/// clock is measured again on the shorter target, not reset).
async fn levels_fire_once_in_order<S: Store>(node: &Node<S>, clock: &ManualClock) {
    let e = &node.engine;
    let t = e
        .create("ticket", &ticket("low"), &agent())
        .await
        .expect("create");
    assert_eq!(t.priority(), Some("P3"));
    let task = t.task().cloned().expect("task in desk");
    assert_eq!(
        task.due_at,
        Some(start() + TimeDelta::hours(8)),
        "due when the resolve clock is"
    );
    let dues: Vec<(String, DateTime<Utc>)> = due_points(e, t.id())
        .await
        .into_iter()
        .map(|t| (format!("{} {} {}", t.kind, t.what, t.step), t.due_at))
        .collect();
    let h = |n: i64| start() + TimeDelta::hours(n);
    assert_eq!(
        dues,
        vec![
            ("escalation resolve 0".into(), h(2)),
            ("escalation resolve 1".into(), h(4)),
            ("escalation resolve 2".into(), h(6)),
            ("escalation resolve 3".into(), h(8)),
            ("breach resolve 0".into(), h(8)),
        ]
    );

    advance(node, clock, TimeDelta::minutes(119)).await;
    assert!(
        of_kind(&story(e, t.id()).await, "escalated").is_empty(),
        "nothing before 25%"
    );
    advance(node, clock, TimeDelta::minutes(1)).await;
    let s = story(e, t.id()).await;
    assert_eq!(of_kind(&s, "escalated"), ["25%"]);
    assert_eq!(of_kind(&s, "notified"), ["team_lead"]);

    advance(node, clock, TimeDelta::hours(2)).await;
    let s = story(e, t.id()).await;
    assert_eq!(of_kind(&s, "escalated"), ["25%", "50%"]);
    assert_eq!(of_kind(&s, "priority_changed"), ["P2"]);
    let view = e.instance(t.id()).await.expect("instance");
    assert_eq!(view.priority(), Some("P2"));
    let task = view.task().cloned().expect("task");
    assert_eq!(task.priority, Some(1), "the task follows the priority");
    assert_eq!(
        task.due_at,
        Some(h(6)),
        "P2 resolves in 6h from the same start"
    );
    let next = due_points(e, t.id()).await;
    assert_eq!(
        next.first().map(|t| (t.step, t.due_at)),
        Some((2, start() + TimeDelta::minutes(270))),
        "75% of 6h is 4h30m of the same clock"
    );

    // Someone on the desk holds the task when it moves on.
    let held = e
        .claim(task.id, &agent(), TimeDelta::hours(8))
        .await
        .expect("claim");
    assert_eq!(held.claimed_by.as_deref(), Some(agent().name.as_ref()));

    advance(node, clock, TimeDelta::minutes(30)).await;
    let s = story(e, t.id()).await;
    assert_eq!(of_kind(&s, "escalated"), ["25%", "50%", "75%"]);
    assert_eq!(of_kind(&s, "routed"), ["expert"]);
    let task = e
        .instance(t.id())
        .await
        .expect("instance")
        .task()
        .cloned()
        .expect("task");
    assert_eq!(&*task.queue, "expert", "moved to the next tier");
    // The desk no longer works it: the claim ends and the task waits in the expert queue.
    assert_eq!(task.state, TaskState::Open, "{task:?}");
    assert_eq!(task.claimed_by, None);
    assert_eq!(task.lease_until, None);
    assert!(
        e.complete(
            task.id,
            held.token,
            "resolve",
            &fields(json!({"resolution": "x"})),
            &agent()
        )
        .await
        .is_err(),
        "the old claim cannot complete it"
    );

    advance(node, clock, TimeDelta::minutes(90)).await;
    advance(node, clock, TimeDelta::days(5)).await;
    let s = story(e, t.id()).await;
    assert_eq!(of_kind(&s, "escalated"), ["25%", "50%", "75%", "100%"]);
    assert_eq!(of_kind(&s, "breached"), ["resolve"], "breached once");
    assert_eq!(of_kind(&s, "notified"), ["team_lead", "team_lead"]);
    let kinds: Vec<&str> = s.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "created",
            "escalated",
            "notified",
            "escalated",
            "priority_changed",
            "escalated",
            "routed",
            "escalated",
            "notified",
            "skipped",
            "breached"
        ]
    );
    let skipped = e
        .history(t.id())
        .await
        .expect("history")
        .into_iter()
        .find(|h| h.kind == "skipped")
        .expect("skipped");
    assert_eq!(skipped.data["action"], "perform resolve");
    assert_eq!(skipped.data["reason"], "`resolve` requires resolution");
    assert_eq!(&*skipped.actor, "system");
    assert!(due_points(e, t.id()).await.is_empty());
    let outbox = e
        .notifications(&NotificationFilter::default(), 10, None)
        .await
        .expect("outbox");
    assert_eq!(outbox.len(), 2);
    assert!(outbox
        .iter()
        .all(|n| n.role == "team_lead" && n.instance == t.id()));
    assert_eq!(
        outbox
            .iter()
            .map(|n| n.threshold.as_deref())
            .collect::<Vec<_>>(),
        [Some("25%"), Some("100%")]
    );
    assert!(e.verify(t.id()).await.expect("verify"));
    assert!(node.scheduler.stats().fired >= 5);
}

/// A resolved ticket closes itself three days later; the resolve clock it stopped fires
/// nothing more; a paused clock fires nothing while paused.
async fn after_delay_and_stopped_clocks<S: Store>(node: &Node<S>, clock: &ManualClock) {
    let e = &node.engine;
    let t = e
        .create("ticket", &ticket("low"), &agent())
        .await
        .expect("create");
    // Paused from 1h to 3h: nothing can fall due meanwhile.
    advance(node, clock, TimeDelta::hours(1)).await;
    e.perform(t.id(), "wait", &Map::new(), None, &agent(), None)
        .await
        .expect("wait");
    assert!(
        due_points(e, t.id()).await.is_empty(),
        "a paused clock has no due points ahead"
    );
    advance(node, clock, TimeDelta::hours(2)).await;
    e.perform(t.id(), "resume", &Map::new(), None, &agent(), None)
        .await
        .expect("resume");
    let first = due_points(e, t.id()).await;
    assert_eq!(
        first.first().map(|t| t.due_at),
        Some(start() + TimeDelta::hours(4)),
        "25% (2h of running time) after the pause"
    );
    advance(node, clock, TimeDelta::hours(1)).await;
    assert_eq!(of_kind(&story(e, t.id()).await, "escalated"), ["25%"]);

    // Resolving stops the clock: only the automatic close is left.
    let resolved = e
        .perform(
            t.id(),
            "resolve",
            &fields(json!({"resolution": "replaced the toner"})),
            None,
            &agent(),
            None,
        )
        .await
        .expect("resolve");
    let timers = due_points(e, t.id()).await;
    assert_eq!(timers.len(), 1, "{timers:?}");
    assert_eq!(
        (timers[0].kind, timers[0].what.as_str()),
        ("after", "close")
    );
    assert_eq!(timers[0].due_at, clock.now() + TimeDelta::days(3));

    advance(node, clock, TimeDelta::days(2)).await;
    let s = story(e, t.id()).await;
    assert_eq!(
        of_kind(&s, "escalated"),
        ["25%"],
        "nothing fires on a stopped clock"
    );
    assert_eq!(
        e.instance(t.id()).await.expect("instance").stage(),
        "resolved"
    );

    advance(node, clock, TimeDelta::days(1)).await;
    let view = e.instance(t.id()).await.expect("instance");
    assert_eq!(view.stage(), "closed", "closed by itself after 3d");
    let history = e.history(t.id()).await.expect("history");
    let last: Vec<(&str, &str)> = history
        .iter()
        .rev()
        .take(2)
        .map(|h| (h.kind, &*h.actor))
        .collect();
    assert_eq!(last, [("transitioned", "system"), ("elapsed", "system")]);
    assert_eq!(history.len() as i64, view.version());
    assert!(due_points(e, t.id()).await.is_empty());
    assert_eq!(of_kind(&story(e, t.id()).await, "escalated"), ["25%"]);
    assert!(resolved.version() < view.version());
    assert!(e.verify(t.id()).await.expect("verify"));
}

/// The scheduler sleeps until the next due point: moving time short of it wakes nothing.
async fn no_polling_while_nothing_is_due<S: Store>(node: &Node<S>, clock: &ManualClock) {
    let e = &node.engine;
    node.scheduler.settled().await;
    let idle = node.scheduler.stats().wakeups;
    for _ in 0..100 {
        advance(node, clock, TimeDelta::minutes(10)).await;
    }
    assert_eq!(
        node.scheduler.stats().wakeups,
        idle,
        "no timers: asleep for 16h40m of time"
    );

    let t = e
        .create("ticket", &ticket("low"), &agent())
        .await
        .expect("create");
    node.scheduler.settled().await;
    let woken = node.scheduler.stats().wakeups;
    assert!(woken <= idle + 1, "the new timer woke it at most once");
    for _ in 0..119 {
        advance(node, clock, TimeDelta::minutes(1)).await;
    }
    assert_eq!(
        node.scheduler.stats().wakeups,
        woken,
        "not woken before 25% is due"
    );
    advance(node, clock, TimeDelta::minutes(1)).await;
    assert_eq!(
        node.scheduler.stats().wakeups,
        woken + 1,
        "woken once, when it was due"
    );
    assert_eq!(of_kind(&story(e, t.id()).await, "escalated"), ["25%"]);
}

/// The wake-up changes in the same transaction as the state: a commit refused by the version
/// check leaves it as it was.
async fn refused_commits_leave_timers_alone<S: Store>(node: &Node<S>, clock: &ManualClock) {
    use itsmflow_engine::runtime::logic::{Logic, Request};
    let e = &node.engine;
    let t = e
        .create("ticket", &ticket("low"), &agent())
        .await
        .expect("create");
    let stale = e.state(t.id()).await.expect("state");
    let before = due_points(e, t.id()).await;
    e.comment(t.id(), "looking", &agent())
        .await
        .expect("comment");
    assert_eq!(
        due_points(e, t.id()).await,
        before,
        "a comment moves nothing"
    );
    let def = e.catalog().get(stale.definition).expect("definition");
    let mut change = Logic::default()
        .perform(
            e.catalog(),
            &def,
            &stale,
            None,
            None,
            "wait",
            &Map::new(),
            &Request {
                actor: &agent(),
                now: clock.now(),
                reason: None,
                holders: &itsmflow_engine::runtime::approval::NO_HOLDERS,
                linked: &itsmflow_engine::runtime::relations::NO_LINKS,
                checklist: &[],
            },
        )
        .expect("decided on the stale state");
    change.wakeup = Some(None);
    assert!(e.store().commit(change).await.is_err(), "stale version");
    assert!(
        e.store().wakeup(t.id()).await.expect("wakeup").is_some(),
        "the refused change took nothing away"
    );
    assert_eq!(due_points(e, t.id()).await, before);
    let again: Vec<_> = e
        .reschedule(t.id())
        .await
        .expect("reschedule")
        .into_iter()
        .map(|t| (t.kind, t.what, t.step, t.cycle, t.due_at))
        .collect();
    let before: Vec<_> = before
        .into_iter()
        .map(|t| (t.kind, t.what, t.step, t.cycle, t.due_at))
        .collect();
    assert_eq!(again, before, "the same points from the history");
    assert_eq!(
        e.store().wakeup(t.id()).await.expect("wakeup"),
        before.first().map(|t| t.4),
        "rescheduling writes the earliest"
    );
}

/// `PING` with its step at 100%, where the breach falls due too: the store's wake-up does not
/// move when the first of the two fires, and the second must still fire at once, not when the
/// scheduler's lease on the wake-up runs out.
fn same_instant() -> String {
    PING.replace("at 50%", "at 100%")
}

async fn points_due_together_fire_together<S: Store>(node: &Node<S>, clock: &ManualClock) {
    let e = &node.engine;
    let t = e
        .create("ping", &Map::new(), &Actor::system())
        .await
        .expect("create");
    let due: Vec<(&str, DateTime<Utc>)> = due_points(e, t.id())
        .await
        .into_iter()
        .map(|p| (p.kind, p.due_at))
        .collect();
    let at = start() + TimeDelta::hours(1);
    assert_eq!(due, [("escalation", at), ("breach", at)]);
    advance(node, clock, TimeDelta::hours(1)).await;
    let s = story(e, t.id()).await;
    assert_eq!(of_kind(&s, "escalated"), ["100%"]);
    assert_eq!(of_kind(&s, "breached").len(), 1, "{s:?}");
    assert!(due_points(e, t.id()).await.is_empty());
}

on_every_store!(every_level_fires_once_in_order, levels_fire_once_in_order);
on_every_store!(
    points_due_at_one_instant_fire_together,
    points_due_together_fire_together,
    &same_instant()
);
on_every_store!(
    refused_commits_leave_the_wakeup_alone,
    refused_commits_leave_timers_alone
);
on_every_store!(
    after_delays_and_stopped_clocks,
    after_delay_and_stopped_clocks
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduler_does_not_poll() {
    let clock = Arc::new(ManualClock::new(start()));
    let catalog = Arc::new(Catalog::default());
    let node = Node::open(
        MemoryStore::new(catalog.clone()),
        catalog,
        clock.clone(),
        &project(TICKET),
    )
    .await;
    no_polling_while_nothing_is_due(&node, &clock).await;
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduler_does_not_poll_sqlite() {
    let place = Place::new("sqlite").await;
    let Place::Sqlite(path) = &place else {
        unreachable!()
    };
    let clock = Arc::new(ManualClock::new(start()));
    let catalog = Arc::new(Catalog::default());
    let store = SqliteStore::open(path, catalog.clone())
        .await
        .expect("sqlite");
    let node = Node::open(store, catalog, clock.clone(), &project(TICKET)).await;
    no_polling_while_nothing_is_due(&node, &clock).await;
    node.stop().await;
    place.remove().await;
}

// ---------------------------------------------------------------------------------------------
// Restarts: steps missed while no scheduler ran fire once each, in order.

async fn missed_levels_after_restart<S: Store>(open: impl AsyncFn(Arc<Catalog>) -> S) {
    let clock = Arc::new(ManualClock::new(start()));
    let catalog = Arc::new(Catalog::default());
    let node = Node::open(
        open(catalog.clone()).await,
        catalog,
        clock.clone(),
        &project(TICKET),
    )
    .await;
    let t = node
        .engine
        .create("ticket", &ticket("low"), &agent())
        .await
        .expect("create");
    node.stop().await;

    // Down for 7 hours: past 25% (2h) and 50% (4h); the raise at 50% then puts 75% (4h30m)
    // and 100% (6h) behind too.
    clock.advance(TimeDelta::hours(7));
    let catalog = Arc::new(Catalog::default());
    let node = Node::open(
        open(catalog.clone()).await,
        catalog,
        clock.clone(),
        &project(TICKET),
    )
    .await;
    node.scheduler.settled().await;
    let e = &node.engine;
    let s = story(e, t.id()).await;
    assert_eq!(of_kind(&s, "escalated"), ["25%", "50%", "75%", "100%"]);
    assert_eq!(of_kind(&s, "breached"), ["resolve"]);
    assert_eq!(of_kind(&s, "notified"), ["team_lead", "team_lead"]);
    advance(&node, &clock, TimeDelta::days(1)).await;
    assert_eq!(story(e, t.id()).await, s, "nothing fires twice");
    assert!(e.verify(t.id()).await.expect("verify"));
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missed_levels_fire_once_in_order_after_a_sqlite_restart() {
    let place = Place::new("sqlite").await;
    let Place::Sqlite(path) = place.clone() else {
        unreachable!()
    };
    missed_levels_after_restart(async |catalog| {
        SqliteStore::open(&path, catalog).await.expect("sqlite")
    })
    .await;
    place.remove().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missed_levels_fire_once_in_order_after_a_postgres_restart() {
    let place = Place::new("postgres").await;
    let Place::Postgres(url) = place.clone() else {
        unreachable!()
    };
    missed_levels_after_restart(async |catalog| {
        PostgresStore::connect(&url, catalog)
            .await
            .expect("postgres")
    })
    .await;
    place.remove().await;
}

// ---------------------------------------------------------------------------------------------
// Time in fields: transitions at a field's instant, and steps repeated while in a stage.

/// A change window opens at the instant its ticket names; while scheduled, a major change
/// reminds the agents every 30 minutes; while implementing, every change does every hour.
const WINDOW: &str = r#"
role agent

queue desk {
  members agent
}

process change {
  fields {
    title: text required
    planned_start: datetime
    severity: enum(major, minor) required default minor
  }

  stage scheduled initial {
    every 30m when severity == major => notify role agent "Change {id}: the window nears"
  }
  stage implementing {
    queue desk
    every 1h => notify role agent
  }
  stage done final

  transition begin: scheduled -> implementing by role agent or at planned_start
  transition finish: implementing -> done by role agent
}
"#;

fn change(fields_json: Value) -> Map<String, Value> {
    let mut f = fields(json!({"title": "Swap the core switch"}));
    f.extend(fields(fields_json));
    f
}

fn at(minutes: i64) -> String {
    (start() + TimeDelta::minutes(minutes)).to_rfc3339()
}

/// `at planned_start`: due at the field's instant, moved when the field changes, never while
/// it is unset, and at once when it has passed already.
async fn transitions_at_a_field_time<S: Store>(node: &Node<S>, clock: &ManualClock) {
    let e = &node.engine;
    let none = Map::new();
    let c = e
        .create(
            "change",
            &change(json!({"planned_start": at(120)})),
            &agent(),
        )
        .await
        .expect("create");
    let points = due_points(e, c.id()).await;
    assert_eq!(points.len(), 1, "{points:?}");
    assert_eq!(
        (points[0].kind, points[0].due_at),
        ("at", start() + TimeDelta::minutes(120))
    );
    advance(node, clock, TimeDelta::minutes(60)).await;
    assert_eq!(e.instance(c.id()).await.expect("read").stage(), "scheduled");
    // Brought forward to 90 minutes: it opens then.
    e.update(
        c.id(),
        &change(json!({"planned_start": at(90)})),
        None,
        &agent(),
        None,
    )
    .await
    .expect("move the window");
    assert_eq!(
        due_points(e, c.id()).await[0].due_at,
        start() + TimeDelta::minutes(90)
    );
    advance(node, clock, TimeDelta::minutes(31)).await;
    let v = e.instance(c.id()).await.expect("read");
    assert_eq!(v.stage(), "implementing");
    assert!(v.task().is_some(), "the implementer's task is open");
    let s = story(e, c.id()).await;
    assert_eq!(of_kind(&s, "elapsed"), ["begin"]);

    // Unset: nothing due; set to a time past: at once.
    let later = e
        .create("change", &change(json!({})), &agent())
        .await
        .expect("create");
    assert!(due_points(e, later.id()).await.is_empty());
    e.update(
        later.id(),
        &change(json!({"planned_start": at(0)})),
        None,
        &agent(),
        None,
    )
    .await
    .expect("set a past time");
    advance(node, clock, TimeDelta::seconds(1)).await;
    assert_eq!(
        e.instance(later.id()).await.expect("read").stage(),
        "implementing"
    );
    e.perform(later.id(), "finish", &none, None, &agent(), None)
        .await
        .expect("finish");
    for id in [c.id(), later.id()] {
        assert!(e.verify(id).await.expect("verify"));
    }
}

/// `every`: once per period while in the stage and while its condition holds; periods missed
/// while nothing ran are made up by one run; leaving the stage ends it.
async fn steps_recur_while_in_a_stage<S: Store>(node: &Node<S>, clock: &ManualClock) {
    let e = &node.engine;
    let minor = e
        .create("change", &change(json!({})), &agent())
        .await
        .expect("create");
    let major = e
        .create("change", &change(json!({"severity": "major"})), &agent())
        .await
        .expect("create");
    assert!(
        due_points(e, minor.id()).await.is_empty(),
        "the condition does not hold"
    );
    let points = due_points(e, major.id()).await;
    assert_eq!(
        (points[0].kind, points[0].due_at),
        ("every", start() + TimeDelta::minutes(30))
    );

    let recurred = async |id| {
        e.history(id)
            .await
            .expect("history")
            .iter()
            .filter(|h| h.kind == "recurred")
            .map(|h| h.data["period"].as_i64().expect("period"))
            .collect::<Vec<_>>()
    };
    advance(node, clock, TimeDelta::minutes(30)).await;
    advance(node, clock, TimeDelta::minutes(30)).await;
    assert_eq!(recurred(major.id()).await, [1, 2]);
    // Down for two and a half hours: the missed periods are made up by one run, then the
    // steps go on from there.
    clock.advance(TimeDelta::minutes(150));
    node.scheduler.settled().await;
    assert_eq!(recurred(major.id()).await, [1, 2, 7]);
    advance(node, clock, TimeDelta::minutes(30)).await;
    assert_eq!(recurred(major.id()).await, [1, 2, 7, 8]);
    let notified = e
        .notifications(
            &NotificationFilter {
                instance: Some(major.id()),
                ..Default::default()
            },
            100,
            None,
        )
        .await
        .expect("notifications");
    assert_eq!(notified.len(), 4, "{notified:?}");
    assert!(notified
        .iter()
        .all(|n| n.message.ends_with("the window nears")));

    // The minor change becomes major: its first step is due a period after it entered the
    // stage, long past, so at once, for the period it is in (four hours: the eighth).
    e.update(
        minor.id(),
        &change(json!({"severity": "major"})),
        None,
        &agent(),
        None,
    )
    .await
    .expect("now major");
    advance(node, clock, TimeDelta::seconds(1)).await;
    assert_eq!(recurred(minor.id()).await, [8]);

    // Another stage, other steps: leaving ends the first, entering starts the second.
    e.perform(major.id(), "begin", &Map::new(), None, &agent(), None)
        .await
        .expect("begin");
    advance(node, clock, TimeDelta::minutes(59)).await;
    assert_eq!(recurred(major.id()).await, [1, 2, 7, 8]);
    advance(node, clock, TimeDelta::minutes(1)).await;
    assert_eq!(recurred(major.id()).await, [1, 2, 7, 8, 1]);
    for id in [minor.id(), major.id()] {
        assert!(e.verify(id).await.expect("verify"));
    }
}

on_every_store!(at_a_field_time, transitions_at_a_field_time, WINDOW);
on_every_store!(recurring_steps, steps_recur_while_in_a_stage, WINDOW);

/// Across a restart: the periods missed while down run once, and none runs twice after.
async fn recurring_after_restart<S: Store>(open: impl AsyncFn(Arc<Catalog>) -> S) {
    let clock = Arc::new(ManualClock::new(start()));
    let catalog = Arc::new(Catalog::default());
    let node = Node::open(
        open(catalog.clone()).await,
        catalog,
        clock.clone(),
        &project(WINDOW),
    )
    .await;
    let c = node
        .engine
        .create("change", &change(json!({"severity": "major"})), &agent())
        .await
        .expect("create");
    advance(&node, &clock, TimeDelta::minutes(30)).await;
    node.stop().await;

    clock.advance(TimeDelta::hours(2));
    let catalog = Arc::new(Catalog::default());
    let node = Node::open(
        open(catalog.clone()).await,
        catalog,
        clock.clone(),
        &project(WINDOW),
    )
    .await;
    node.scheduler.settled().await;
    let periods = async || {
        node.engine
            .history(c.id())
            .await
            .expect("history")
            .iter()
            .filter(|h| h.kind == "recurred")
            .map(|h| h.data["period"].as_i64().expect("period"))
            .collect::<Vec<_>>()
    };
    assert_eq!(periods().await, [1, 5]);
    advance(&node, &clock, TimeDelta::minutes(10)).await;
    assert_eq!(periods().await, [1, 5], "nothing twice");
    advance(&node, &clock, TimeDelta::minutes(20)).await;
    assert_eq!(periods().await, [1, 5, 6]);
    assert!(node.engine.verify(c.id()).await.expect("verify"));
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recurring_steps_after_a_sqlite_restart() {
    let place = Place::new("sqlite").await;
    let Place::Sqlite(path) = place.clone() else {
        unreachable!()
    };
    recurring_after_restart(async |catalog| {
        SqliteStore::open(&path, catalog).await.expect("sqlite")
    })
    .await;
    place.remove().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recurring_steps_after_a_postgres_restart() {
    let place = Place::new("postgres").await;
    let Place::Postgres(url) = place.clone() else {
        unreachable!()
    };
    recurring_after_restart(async |catalog| {
        PostgresStore::connect(&url, catalog)
            .await
            .expect("postgres")
    })
    .await;
    place.remove().await;
}

// ---------------------------------------------------------------------------------------------
// Notifications held to business hours (the standard incident process).

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_notification_is_delivered_at_the_next_opening() {
    // The service's (SLA) notifications: the queues' OLA breaches notify too (checked last).
    fn sla(all: Vec<Notification>) -> Vec<Notification> {
        all.into_iter()
            .filter(|n| n.clock.as_deref() != Some("ola"))
            .collect()
    }
    // Friday 6 November 2026, 16:00 UTC (17:00 in Amsterdam, as the office closes).
    let friday = Utc
        .with_ymd_and_hms(2026, 11, 6, 16, 0, 0)
        .single()
        .expect("time");
    let clock = Arc::new(ManualClock::new(friday));
    let catalog = Arc::new(Catalog::default());
    let node = Node::open(
        MemoryStore::new(catalog.clone()),
        catalog,
        clock.clone(),
        &processes(),
    )
    .await;
    let e = &node.engine;
    let inc = e
        .create(
            "incident",
            &fields(json!({
                "title": "Payroll down",
                "caller": "carol",
                "service": "payroll",
                "category": "software",
                "impact": "high",
                "urgency": "high",
            })),
            &Actor::new("carol", &["caller"]),
        )
        .await
        .expect("create");
    assert_eq!(inc.priority(), Some("P1"), "P1 resolves in 4h on 24x7");
    e.perform(inc.id(), "log", &Map::new(), None, &agent(), None)
        .await
        .expect("log");

    // 50% (2h, 19:00 local): the team lead's notification waits for Monday 08:00 local.
    advance(&node, &clock, TimeDelta::hours(2)).await;
    let all = sla(e
        .notifications(&NotificationFilter::default(), 10, None)
        .await
        .expect("outbox"));
    assert_eq!(all.len(), 1);
    let monday = Utc
        .with_ymd_and_hms(2026, 11, 9, 7, 0, 0)
        .single()
        .expect("time");
    assert_eq!(all[0].role, "team_lead");
    assert_eq!(all[0].deliver_at, monday);
    assert!(
        sla(e.notifications_to_deliver(10, None).await.expect("due")).is_empty(),
        "held"
    );

    // 100% (4h): the incident manager is told at once; P1 cannot be raised.
    advance(&node, &clock, TimeDelta::hours(2)).await;
    let due = sla(e.notifications_to_deliver(10, None).await.expect("due"));
    assert_eq!(
        due.iter().map(|n| n.role.as_str()).collect::<Vec<_>>(),
        ["incident_manager"]
    );
    assert_eq!(e.mark_delivered(&[due[0].id]).await.expect("mark"), 1);
    assert_eq!(
        e.mark_delivered(&[due[0].id]).await.expect("mark"),
        0,
        "once"
    );
    let s = story(e, inc.id()).await;
    assert_eq!(of_kind(&s, "skipped"), ["raise priority"]);
    assert_eq!(
        of_kind(&s, "routed"),
        ["major_incident", "vendor"],
        "75% moved it a tier up"
    );

    clock.set(monday - TimeDelta::seconds(1));
    node.scheduler.settled().await;
    assert!(sla(e.notifications_to_deliver(10, None).await.expect("due")).is_empty());
    clock.set(monday);
    let due = sla(e.notifications_to_deliver(10, None).await.expect("due"));
    assert_eq!(
        due.iter().map(|n| n.role.as_str()).collect::<Vec<_>>(),
        ["team_lead"]
    );
    assert!(due[0].message.contains("50%"), "{}", due[0].message);
    let undelivered = NotificationFilter {
        undelivered: true,
        ..Default::default()
    };
    assert_eq!(
        sla(e
            .notifications(&undelivered, 10, None)
            .await
            .expect("outbox"))
        .len(),
        1
    );
    assert_eq!(
        sla(e
            .notifications(&NotificationFilter::default(), 10, Some(due[0].id))
            .await
            .expect("page"))
        .len(),
        1,
        "paging by id"
    );
    // The groups' own (OLA) breaches are told when they fire, never held to business hours:
    // the major incident team's hour (P1, on the SLA's 24x7) and the vendor's two hours after
    // the move.
    let ola: Vec<(String, bool)> = e
        .notifications(&NotificationFilter::default(), 10, None)
        .await
        .expect("outbox")
        .into_iter()
        .filter(|n| n.clock.as_deref() == Some("ola"))
        .map(|n| (n.role, n.deliver_at == n.created_at))
        .collect();
    assert_eq!(
        ola,
        [
            ("incident_manager".to_string(), true),
            ("network_engineer".to_string(), true),
        ]
    );
    node.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Two nodes on one PostgreSQL database share the work and fire every point once.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_postgres_nodes_fire_ten_thousand_timers_once() {
    const N: usize = 10_000;
    let place = Place::new("postgres").await;
    let Place::Postgres(url) = place.clone() else {
        unreachable!()
    };
    let clock = Arc::new(ManualClock::new(start()));
    let mut nodes = Vec::new();
    for _ in 0..2 {
        let catalog = Arc::new(Catalog::default());
        let store = PostgresStore::connect(&url, catalog.clone())
            .await
            .expect("postgres");
        let engine = Engine::open(store, catalog, clock.clone())
            .await
            .expect("open");
        engine.publish(&project(PING)).await.expect("publish");
        let engine = Arc::new(engine);
        let config = SchedulerConfig::for_store(engine.store());
        let scheduler = Scheduler::spawn_with(engine.clone(), config);
        nodes.push(Node { engine, scheduler });
    }

    // Created together, so all notify at the same instant.
    let creator = nodes[0].engine.clone();
    let mut work = tokio::task::JoinSet::new();
    for chunk in 0..32 {
        let e = creator.clone();
        work.spawn(async move {
            for _ in (chunk..N).step_by(32) {
                e.create("ping", &Map::new(), &Actor::system())
                    .await
                    .expect("create");
            }
        });
    }
    while let Some(done) = work.join_next().await {
        done.expect("creator");
    }
    let pool = sqlx::PgPool::connect(&url).await.expect("pool");
    let count = async |sql: &str| -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(&pool)
            .await
            .expect("count")
    };
    let micros = |at: DateTime<Utc>| at.timestamp_micros();
    let half = micros(start() + TimeDelta::minutes(30));
    assert_eq!(
        count(&format!(
            "SELECT count(*) FROM wakeups WHERE due_at = {half}"
        ))
        .await,
        N as i64,
        "one wake-up per instance, at its 50% step"
    );

    clock.advance(TimeDelta::minutes(30));
    for n in &nodes {
        n.scheduler.settled().await;
    }
    // A node may have settled before the other's last commit: settle both again.
    for n in &nodes {
        n.scheduler.settled().await;
    }
    assert_eq!(count("SELECT count(*) FROM notifications").await, N as i64);
    assert_eq!(
        count("SELECT count(*) FROM events WHERE kind = 'escalated'").await,
        N as i64
    );
    assert_eq!(
        count("SELECT count(*) FROM events WHERE kind = 'notified'").await,
        N as i64
    );
    let breach = micros(start() + TimeDelta::hours(1));
    assert_eq!(
        count(&format!(
            "SELECT count(*) FROM wakeups WHERE due_at = {breach}"
        ))
        .await,
        N as i64,
        "every wake-up moved on to the breach"
    );
    let fired: u64 = nodes.iter().map(|n| n.scheduler.stats().fired).sum();
    assert_eq!(fired, N as u64, "every point fired once in total");
    eprintln!(
        "fired per node: {:?}",
        nodes
            .iter()
            .map(|n| n.scheduler.stats())
            .collect::<Vec<_>>()
    );
    pool.close().await;
    for n in nodes {
        n.stop().await;
    }
    place.remove().await;
}
