//! Moving live tickets to a new version of their process, on every store (memory, a real
//! SQLite file, a real PostgreSQL database), on virtual time: a plan is checked against both
//! versions and the stages tickets occupy before anything is written; each clock keeps its
//! time, restarts or is measured again as the plan says; escalation steps the old version
//! fired are not fired again, the new version's fire once; tasks follow the new stages and
//! queues; and 10,000 tickets move while agents keep working on them, none lost or doubled.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use itsmflow_dsl::Sources;
use itsmflow_engine::runtime::migrate::Plan;
use itsmflow_engine::runtime::{
    Actor, Catalog, EngineError, InstanceId, ManualClock, StaticDirectory,
};
use itsmflow_engine::store::memory::MemoryStore;
use itsmflow_engine::store::postgres::PostgresStore;
use itsmflow_engine::store::sqlite::SqliteStore;
use itsmflow_engine::store::Store;
use serde_json::json;
use support::{fields, Node, Place};

mod support;

/// Version 1: tickets are triaged, then worked; resolve runs 4h on 24x7 for P2, with one
/// escalation step at 50%.
const V1: &str = r#"
role agent

calendar office {
  timezone "UTC"
  hours mon-fri 09:00-17:00
}

queue desk {
  members agent
}

queue experts {
  members agent
}

process ticket {
  fields {
    title: text required
    impact: enum(high, low) required
    note: text
  }

  priorities P1, P2

  priority from impact {
    high => P1
    low => P2
  }

  targets on 24x7 {
    P1: resolve 2h
    P2: resolve 4h
  }

  stage new initial {
    queue desk
  }
  stage triage {
    queue desk
  }
  stage working {
    queue desk
  }
  stage waiting {
    queue desk
    pauses resolve
  }
  stage resolved {
    stops resolve
  }
  stage closed final

  transition sort: new -> triage by role agent
  transition take: new, triage -> working by role agent
  transition wait: working -> waiting by role agent
  transition resume: waiting -> working by role agent
  transition resolve: working -> resolved by role agent
  transition close: resolved -> closed by role agent

  escalation on resolve {
    at 50% => notify role agent
  }
}
"#;

/// Version 2: no triage (its tickets are worked at once), `working` is `in_progress` with the
/// experts, a category with a default, and a second escalation step at 75%.
const V2: &str = r#"
role agent

calendar office {
  timezone "UTC"
  hours mon-fri 09:00-17:00
}

queue desk {
  members agent
}

queue experts {
  members agent
}

process ticket {
  fields {
    title: text required
    impact: enum(high, low) required
    note: text
    category: enum(general, network) required default general
  }

  priorities P1, P2

  priority from impact {
    high => P1
    low => P2
  }

  targets on 24x7 {
    P1: resolve 2h
    P2: resolve 4h
  }

  stage new initial {
    queue desk
  }
  stage in_progress {
    queue experts
  }
  stage waiting {
    queue desk
    pauses resolve
  }
  stage resolved {
    stops resolve
  }
  stage closed final

  transition take: new -> in_progress by role agent
  transition wait: in_progress -> waiting by role agent
  transition resume: waiting -> in_progress by role agent
  transition resolve: in_progress -> resolved by role agent
  transition close: resolved -> closed by role agent

  escalation on resolve {
    at 50% => notify role agent
    at 75% => notify role agent
  }
}
"#;

/// Version 3: version 2 with its targets on office hours, to measure clocks again.
fn v3() -> String {
    V2.replace("targets on 24x7", "targets on office")
}

fn sources(text: &str) -> Sources {
    let mut s = Sources::new();
    s.add("project.itsm", text.to_string());
    s
}

fn agent() -> Actor {
    Actor::new("alice", &["agent"])
}

fn manager() -> Actor {
    Actor::new("pat", &["process_manager"])
}

/// Monday 2 November 2026, 07:00 UTC: two hours before the office opens.
fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 2, 7, 0, 0)
        .single()
        .expect("valid time")
}

fn plan(stages: &[(&str, &str)], clocks: &[(&str, &str)]) -> Plan {
    serde_json::from_value(json!({
        "process": "ticket",
        "from": 1,
        "stages": stages.iter().copied().collect::<BTreeMap<_, _>>(),
        "clocks": clocks.iter().copied().collect::<BTreeMap<_, _>>(),
    }))
    .expect("plan")
}

async fn create<S: Store>(node: &Node<S>, title: &str) -> InstanceId {
    node.engine
        .create(
            "ticket",
            &fields(json!({"title": title, "impact": "low"})),
            &agent(),
        )
        .await
        .expect("create")
        .id()
}

async fn act<S: Store>(node: &Node<S>, id: InstanceId, action: &str) {
    node.engine
        .perform(id, action, &fields(json!({})), None, &agent(), None)
        .await
        .unwrap_or_else(|e| panic!("{action} on {id}: {e}"));
}

async fn advance<S: Store>(node: &Node<S>, clock: &ManualClock, by: TimeDelta) {
    clock.advance(by);
    node.scheduler.settled().await;
}

/// The thresholds of the escalation steps the history records, in order.
async fn escalations<S: Store>(node: &Node<S>, id: InstanceId) -> Vec<String> {
    node.engine
        .history(id)
        .await
        .expect("history")
        .into_iter()
        .filter(|h| h.kind == "escalated")
        .map(|h| h.data["threshold"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// The resolve clock's remaining business seconds.
async fn resolve_left<S: Store>(node: &Node<S>, id: InstanceId) -> i64 {
    node.engine
        .clocks(id)
        .await
        .expect("clocks")
        .into_iter()
        .find(|c| c.clock.as_str() == "resolve")
        .expect("a resolve clock")
        .remaining_seconds
}

// ---------------------------------------------------------------------------------------------
// Scenarios

/// A plan that leaves tickets in a stage the new version lacks is refused, with every problem
/// named, and nothing is written; the mapped plan then moves each ticket: its stage, queue,
/// task, fields (the new default), history, and steps (the 50% fired under version 1 is not
/// fired again; the 75% fires once under version 2).
async fn moves_tickets_by_the_plan<S: Store>(node: &Node<S>, clock: &ManualClock) {
    let e = &node.engine;
    let fresh = create(node, "fresh").await;
    let sorted = create(node, "sorted").await;
    act(node, sorted, "sort").await;
    let worked = create(node, "worked").await;
    act(node, worked, "take").await;
    let done = create(node, "done").await;
    act(node, done, "take").await;
    act(node, done, "resolve").await;
    act(node, done, "close").await;
    // 2h30 in: the 50% step (2h of 4h) fired under version 1.
    advance(node, clock, TimeDelta::minutes(150)).await;
    assert_eq!(escalations(node, worked).await, ["50%"]);
    e.publish(&sources(V2)).await.expect("publish v2");

    let before: Vec<_> = {
        let mut v = Vec::new();
        for id in [fresh, sorted, worked, done] {
            v.push(e.state(id).await.expect("state"));
        }
        v
    };
    let refused = e
        .migrate(&plan(&[], &[]), &manager(), true)
        .await
        .expect_err("triage and working are not mapped");
    let EngineError::MigrationRefused(problems) = refused else {
        panic!("refused for another reason: {refused}");
    };
    let codes: Vec<_> = problems.iter().map(|p| p.code).collect();
    assert_eq!(codes, ["unmapped-stage", "unmapped-stage"], "{problems:?}");
    assert!(
        problems[0].message.contains("1 ticket in stage `triage`"),
        "{problems:?}"
    );
    for (id, was) in [fresh, sorted, worked, done].into_iter().zip(&before) {
        assert_eq!(&e.state(id).await.expect("state"), was, "nothing written");
    }

    let mapped = plan(
        &[("triage", "in_progress"), ("working", "in_progress")],
        &[],
    );
    let dry = e
        .migrate(&mapped, &manager(), false)
        .await
        .expect("dry run");
    assert!(dry.dry_run);
    assert_eq!(dry.migrated, 0);
    let listed: Vec<_> = dry.tickets.iter().map(|t| t.instance).collect();
    assert_eq!(
        listed,
        [fresh, sorted, worked],
        "every live ticket, oldest first"
    );
    let w = &dry.tickets[2];
    assert_eq!(
        (w.before.stage.as_str(), w.after.stage.as_str()),
        ("working", "in_progress")
    );
    assert_eq!(w.before.queue.as_deref(), Some("desk"));
    assert_eq!(w.after.queue.as_deref(), Some("experts"));
    assert_eq!(w.before.clocks[0].remaining_seconds, 90 * 60);
    assert_eq!(
        w.after.clocks[0].remaining_seconds,
        90 * 60,
        "keep: 2h30 of 4h ran"
    );
    for (id, was) in [fresh, sorted, worked, done].into_iter().zip(&before) {
        assert_eq!(
            &e.state(id).await.expect("state"),
            was,
            "a dry run writes nothing"
        );
    }

    let applied = e.migrate(&mapped, &manager(), true).await.expect("migrate");
    assert_eq!(applied.migrated, 3);
    assert_eq!(
        applied.tickets, dry.tickets,
        "the dry run said what happened"
    );
    let v2 = e.state(worked).await.expect("state");
    assert_ne!(v2.definition, before[2].definition);
    let view = e.instance(worked).await.expect("view");
    let shown = serde_json::to_value(&view).expect("json");
    assert_eq!(shown["stage"], "in_progress", "{shown}");
    assert_eq!(
        shown["fields"]["category"], "general",
        "the new field's default"
    );
    assert_eq!(shown["version"], 1 + before[2].version);
    let tasks = e.queue_tasks("experts", 10).await.expect("tasks");
    // Moved at once, the two tasks are equal in queue order: compared as a set.
    let mut moved: Vec<_> = tasks.iter().map(|t| t.instance).collect();
    moved.sort();
    assert_eq!(moved, [sorted, worked], "{tasks:?}");
    assert!(tasks.iter().all(|t| &*t.stage == "in_progress"));
    let desk = e.queue_tasks("desk", 10).await.expect("tasks");
    assert_eq!(
        desk.iter().map(|t| t.instance).collect::<Vec<_>>(),
        [fresh],
        "the untouched stage's task stays"
    );
    let history = e.history(worked).await.expect("history");
    let last = history.last().expect("an event");
    assert_eq!(last.kind, "migrated");
    assert_eq!(last.data["from_version"], 1);
    assert_eq!(last.data["from_stage"], "working");
    assert_eq!(last.data["stage"], "in_progress");
    assert_eq!(&*last.actor, "pat");
    // The events before it are still shown under version 1.
    assert!(history
        .iter()
        .any(|h| h.kind == "transitioned" && h.data["to"] == "working"));
    assert!(
        e.verify(worked).await.expect("verify"),
        "state is its history's replay"
    );
    assert_eq!(
        e.state(done).await.expect("state"),
        before[3],
        "an ended ticket stays on its version"
    );

    // 3h in: the 75% step of version 2 fires, once; the 50% does not fire again.
    advance(node, clock, TimeDelta::minutes(30)).await;
    assert_eq!(escalations(node, worked).await, ["50%", "75%"]);
    advance(node, clock, TimeDelta::hours(2)).await;
    assert_eq!(escalations(node, worked).await, ["50%", "75%"]);
    let breached = e
        .history(worked)
        .await
        .expect("history")
        .iter()
        .filter(|h| h.kind == "breached")
        .count();
    assert_eq!(breached, 1, "the breach fires once, under version 2");

    // The ticket goes on under version 2.
    act(node, worked, "resolve").await;
    act(node, worked, "close").await;
    assert!(e.verify(worked).await.expect("verify"));
    // Running it again finds nothing left on version 1.
    let again = e.migrate(&mapped, &manager(), true).await.expect("again");
    assert_eq!((again.migrated, again.tickets.len()), (0, 0));
}

/// Each clock as the plan says: 07:00 to 10:00 ran 3h on 24x7 (version 1), 1h on office hours
/// (version 3). Keep: 3h of 4h ran. Recompute: 1h ran. Restart: nothing ran.
async fn clock_moves_as_the_plan_says<S: Store>(
    node: &Node<S>,
    clock: &ManualClock,
    mode: &str,
    ran: i64,
) {
    let e = &node.engine;
    let id = create(node, mode).await;
    act(node, id, "take").await;
    advance(node, clock, TimeDelta::hours(3)).await;
    e.publish(&sources(V2)).await.expect("v2");
    e.publish(&sources(&v3())).await.expect("v3");
    let mut p = plan(&[("working", "in_progress")], &[("resolve", mode)]);
    p.to = Some(3);
    let report = e.migrate(&p, &manager(), true).await.expect("migrate");
    assert_eq!(report.migrated, 1, "{report:?}");
    assert_eq!(resolve_left(node, id).await, 4 * 3600 - ran, "{mode}");
    assert!(e.verify(id).await.expect("verify"));
    // Office hours end at 17:00: the clock runs 7h more today, and is due when its target
    // is reached on office hours.
    advance(node, clock, TimeDelta::hours(1)).await;
    assert_eq!(
        resolve_left(node, id).await,
        3 * 3600 - ran,
        "{mode}, an hour on"
    );
}

/// Version 2 with a review: `in_progress` asks one manager's approval before the ticket is
/// resolved.
fn with_review() -> String {
    V2.replacen("role agent\n", "role agent\nrole manager\n", 1).replace(
        "  escalation on resolve {",
        "  approval in in_progress {\n    otherwise => any 1 of role manager\n    on approve => resolved\n    on reject => new\n  }\n\n  escalation on resolve {",
    )
}

/// A ticket moved into a stage with an approval is asked for it then: the level opens with
/// its approvers, a vote decides it, and the ticket goes on under the new version.
async fn moved_into_an_approval<S: Store>(node: &Node<S>, _clock: &ManualClock) {
    let e = &node.engine;
    let id = create(node, "needs review").await;
    act(node, id, "take").await;
    e.publish(&sources(&with_review())).await.expect("publish");
    let report = e
        .migrate(&plan(&[("working", "in_progress")], &[]), &manager(), true)
        .await
        .expect("migrate");
    assert_eq!(report.migrated, 1);
    let kinds: Vec<String> = e
        .history(id)
        .await
        .expect("history")
        .into_iter()
        .map(|h| h.kind.to_string())
        .collect();
    let migrated = kinds
        .iter()
        .position(|k| k == "migrated")
        .expect("migrated");
    assert_eq!(
        &kinds[migrated..],
        ["migrated", "approval_requested", "level_opened"],
        "{kinds:?}"
    );
    let pending = e.pending_ballots("mo", 10).await.expect("ballots");
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert_eq!(pending[0].instance, id);
    e.vote(id, true, None, None, None, &Actor::new("mo", &["manager"]))
        .await
        .expect("vote");
    let shown = serde_json::to_value(e.instance(id).await.expect("view")).expect("json");
    assert_eq!(shown["stage"], "resolved", "{shown}");
    assert!(e.verify(id).await.expect("verify"));
}

/// Every problem of a plan is named, each with its code, and nothing is written.
async fn every_problem_is_named<S: Store>(node: &Node<S>, _clock: &ManualClock) {
    let e = &node.engine;
    let id = create(node, "worked").await;
    act(node, id, "take").await;
    let before = e.state(id).await.expect("state");
    // Version 2 without `note`, and with an owner every ticket must have.
    let v2 = V2.replace("    note: text\n", "    owner: text required\n");
    e.publish(&sources(&v2)).await.expect("publish");
    let refused = |plan: serde_json::Value| async move {
        let plan: Plan = serde_json::from_value(plan).expect("plan");
        match e.migrate(&plan, &manager(), true).await {
            Err(EngineError::MigrationRefused(problems)) => problems,
            other => panic!("not refused: {other:?}"),
        }
    };
    let problems = refused(json!({
        "process": "ticket",
        "from": 1,
        "stages": {"working": "closed", "nowhere": "new"},
        "drop_fields": ["title", "nothing"],
        "set": {"category": "bogus"},
        "clocks": {"fix": "keep"},
    }))
    .await;
    let named: Vec<(&str, &str)> = problems
        .iter()
        .map(|p| (p.code, p.message.as_str()))
        .collect();
    assert_eq!(
        named,
        [
            ("unknown-stage", "version 1 has no stage `nowhere`"),
            (
                "no-way-out",
                "stage `working` goes to `closed`, a final stage: live tickets would end without being worked"
            ),
            (
                "field-kept",
                "field `title` is in `drop_fields` but version 2 keeps it with the same type"
            ),
            (
                "field-dropped",
                "version 2 has no field `note`; add it to `drop_fields` to drop its values"
            ),
            ("unknown-field", "version 1 has no field `nothing` to drop"),
            (
                "invalid-value",
                "`set` of `category`: expected one of: general, network"
            ),
            (
                "field-required",
                "field `owner` is required in version 2, which tickets of version 1 do not have; give it in `set`"
            ),
            ("unknown-clock", "`fix` is not a clock (clocks: respond, resolve)"),
        ],
        "{problems:?}"
    );
    assert_eq!(e.state(id).await.expect("state"), before, "nothing written");
    let unknown = e
        .migrate(
            &serde_json::from_value(json!({"process": "ticket", "from": 1, "to": 9}))
                .expect("plan"),
            &manager(),
            false,
        )
        .await
        .expect_err("no version 9");
    assert_eq!(unknown.to_string(), "`ticket` has no version 9");

    // Given what it lacks, the plan goes through.
    let moved = e
        .migrate(
            &serde_json::from_value(json!({
                "process": "ticket",
                "from": 1,
                "stages": {"working": "in_progress"},
                "drop_fields": ["note"],
                "set": {"owner": "alice"},
            }))
            .expect("plan"),
            &manager(),
            true,
        )
        .await
        .expect("migrate");
    assert_eq!(moved.migrated, 1);
    let shown = serde_json::to_value(e.instance(id).await.expect("view")).expect("json");
    assert_eq!(shown["fields"]["owner"], "alice", "{shown}");
}

/// How many tickets the load scenario moves.
const MANY: usize = 10_000;

/// 10,000 live tickets (a third each new, triaged, worked) move while four agents keep taking
/// new ones and putting worked ones on hold and back: every ticket moves exactly once, none is
/// lost, each ends with one open task where version 2 puts it, its state is its history's
/// replay, and the 50% step falls due once per ticket, under version 2.
async fn many_while_agents_work<S: Store>(node: &Node<S>, clock: &ManualClock) {
    use futures_util::StreamExt;
    let e = &node.engine;
    let ids: Vec<InstanceId> = futures_util::stream::iter(0..MANY)
        .map(|i| async move {
            let id = create(node, &format!("ticket {i}")).await;
            match i % 3 {
                1 => act(node, id, "sort").await,
                2 => act(node, id, "take").await,
                _ => {}
            }
            id
        })
        .buffered(16)
        .collect()
        .await;
    advance(node, clock, TimeDelta::hours(1)).await;
    e.publish(&sources(V2)).await.expect("publish v2");

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut agents = Vec::new();
    for a in 0..4 {
        let (engine, stop) = (e.clone(), stop.clone());
        // Each agent works its own tickets: the new ones it takes once, the worked ones it
        // puts on hold and takes back, for as long as the migration runs.
        let mine: Vec<(InstanceId, usize)> = ids
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 3 != 1 && (i / 3) % 4 == a)
            .map(|(i, id)| (*id, i % 3))
            .collect();
        agents.push(tokio::spawn(async move {
            let mut done = 0usize;
            let mut waiting = vec![false; mine.len()];
            let mut taken = vec![false; mine.len()];
            'work: loop {
                for (k, (id, kind)) in mine.iter().enumerate() {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        break 'work;
                    }
                    let action = match (kind, taken[k], waiting[k]) {
                        (0, false, _) => "take",
                        (_, _, false) => "wait",
                        (_, _, true) => "resume",
                    };
                    engine
                        .perform(*id, action, &fields(json!({})), None, &agent(), None)
                        .await
                        .unwrap_or_else(|e| panic!("{action} on {id}: {e}"));
                    match action {
                        "take" => taken[k] = true,
                        _ => waiting[k] = !waiting[k],
                    }
                    done += 1;
                }
            }
            done
        }));
    }
    let plan = plan(
        &[("triage", "in_progress"), ("working", "in_progress")],
        &[],
    );
    let started = std::time::Instant::now();
    let report = e.migrate(&plan, &manager(), true).await.expect("migrate");
    // Shown, not asserted: speed is measured in benchmarks.
    println!("moved {MANY} tickets in {:?}", started.elapsed());
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut acted = 0;
    for a in agents {
        acted += a.await.expect("agent");
    }
    assert!(acted > 0, "the agents worked during the migration");
    assert_eq!(report.migrated, MANY, "skipped: {:?}", report.skipped);
    let mut moved: Vec<InstanceId> = report.tickets.iter().map(|t| t.instance).collect();
    moved.sort();
    moved.dedup();
    assert_eq!(moved.len(), MANY, "each ticket once");

    let v2 = e.state(ids[0]).await.expect("state").definition;
    futures_util::stream::iter(&ids)
        .for_each_concurrent(16, |id| async move {
            let state = e.state(*id).await.expect("state");
            assert_eq!(state.definition, v2, "{id} moved");
            let history = e.history(*id).await.expect("history");
            let migrations = history.iter().filter(|h| h.kind == "migrated").count();
            assert_eq!(migrations, 1, "{id} moved once");
            // `keep`: the hour each resolve clock ran under version 1 counts (holds and
            // resumes took no time on this clock).
            assert_eq!(
                resolve_left(node, *id).await,
                3 * 3600,
                "{id}: 3h of 4h left"
            );
            assert!(
                e.verify(*id).await.expect("verify"),
                "{id}: state is its history"
            );
        })
        .await;
    let counts: BTreeMap<String, u64> = e
        .queue_counts()
        .await
        .expect("counts")
        .into_iter()
        .collect();
    assert_eq!(
        counts.values().sum::<u64>(),
        MANY as u64,
        "one open task per ticket: {counts:?}"
    );

    // 2h in, the 50% step falls due on every clock still running, once, under version 2.
    advance(node, clock, TimeDelta::minutes(70)).await;
    futures_util::stream::iter(&ids)
        .for_each_concurrent(16, |id| async move {
            let history = e.history(*id).await.expect("history");
            let migrated = history
                .iter()
                .find(|h| h.kind == "migrated")
                .map(|h| h.seq)
                .expect("migrated");
            let steps: Vec<_> = history.iter().filter(|h| h.kind == "escalated").collect();
            let paused = e.state(*id).await.expect("state").stage.index() == 2;
            match paused {
                // On hold in `waiting`: its clock has not run 2h yet.
                true => assert!(steps.len() <= 1, "{id}: {steps:?}"),
                false => {
                    assert_eq!(steps.len(), 1, "{id}: {steps:?}");
                    assert!(steps[0].seq > migrated, "{id}: fired under version 2");
                }
            }
        })
        .await;
}

/// A scenario on a real SQLite file, removed afterwards.
async fn on_sqlite<F>(scenario: F)
where
    F: AsyncFnOnce(&Node<SqliteStore>, &ManualClock),
{
    let place = Place::new("sqlite").await;
    let Place::Sqlite(path) = place.clone() else {
        unreachable!()
    };
    let clock = Arc::new(ManualClock::new(start()));
    let catalog = Arc::new(Catalog::default());
    let store = SqliteStore::open(&path, catalog.clone())
        .await
        .expect("sqlite");
    let node = Node::open(store, catalog, clock.clone(), &sources(V1)).await;
    scenario(&node, &clock).await;
    node.stop().await;
    place.remove().await;
}

/// A scenario on a fresh PostgreSQL database, dropped afterwards.
async fn on_postgres<F>(scenario: F)
where
    F: AsyncFnOnce(&Node<PostgresStore>, &ManualClock),
{
    let place = Place::new("postgres").await;
    let Place::Postgres(url) = place.clone() else {
        unreachable!()
    };
    let clock = Arc::new(ManualClock::new(start()));
    let catalog = Arc::new(Catalog::default());
    let store = PostgresStore::connect(&url, catalog.clone())
        .await
        .expect("postgres");
    let node = Node::open(store, catalog, clock.clone(), &sources(V1)).await;
    scenario(&node, &clock).await;
    node.stop().await;
    place.remove().await;
}

async fn on_memory<F>(scenario: F)
where
    F: AsyncFnOnce(&Node<MemoryStore>, &ManualClock),
{
    let clock = Arc::new(ManualClock::new(start()));
    let catalog = Arc::new(Catalog::default());
    let node = Node::open(
        MemoryStore::new(catalog.clone()),
        catalog,
        clock.clone(),
        &sources(V1),
    )
    .await;
    scenario(&node, &clock).await;
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_a_ticket_moved_into_an_approval_is_asked_for_it() {
    let clock = Arc::new(ManualClock::new(start()));
    let catalog = Arc::new(Catalog::default());
    let directory = Arc::new(StaticDirectory::new());
    directory.set("manager", &["mo"]);
    directory.set("agent", &["alice"]);
    let node = Node::open_with(
        MemoryStore::new(catalog.clone()),
        catalog,
        clock.clone(),
        &sources(V1),
        directory,
    )
    .await;
    moved_into_an_approval(&node, &clock).await;
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_every_problem_of_a_plan_is_named() {
    on_memory(every_problem_is_named).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_moves_tickets_by_the_plan() {
    on_memory(moves_tickets_by_the_plan).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_a_kept_clock_keeps_the_time_it_ran() {
    on_memory(async |node, clock| {
        clock_moves_as_the_plan_says(node, clock, "keep", 3 * 3600).await
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_a_recomputed_clock_is_measured_on_the_new_calendar() {
    on_memory(async |node, clock| {
        clock_moves_as_the_plan_says(node, clock, "recompute", 3600).await
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_a_restarted_clock_starts_at_the_migration() {
    on_memory(async |node, clock| clock_moves_as_the_plan_says(node, clock, "restart", 0).await)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_moves_tickets_by_the_plan() {
    on_sqlite(moves_tickets_by_the_plan).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_moves_tickets_by_the_plan() {
    on_postgres(moves_tickets_by_the_plan).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_moves_ten_thousand_tickets_while_agents_work() {
    on_sqlite(many_while_agents_work).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_moves_ten_thousand_tickets_while_agents_work() {
    on_postgres(many_while_agents_work).await;
}
