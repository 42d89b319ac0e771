//! One behavioural suite for the runtime, run against every store: in memory, a real SQLite
//! file, and a real PostgreSQL database (a fresh database per test; `.ci/run` starts the
//! server). PostgreSQL tests fail, not skip, when the server is unreachable.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use chrono::{TimeDelta, TimeZone, Utc};
use itsmflow_dsl::Sources;
use itsmflow_engine::runtime::{
    Actor, Catalog, Engine, EngineError, InstanceId, ManualClock, TaskState,
};
use itsmflow_engine::store::memory::MemoryStore;
use itsmflow_engine::store::postgres::PostgresStore;
use itsmflow_engine::store::sqlite::SqliteStore;
use itsmflow_engine::store::{Store, StoreError};
use serde_json::{json, Map, Value};
use support::{fields, processes, with_database};

mod support;

fn agent() -> Actor {
    Actor::new("alice", &["agent"])
}
fn engineer(name: &str) -> Actor {
    Actor::new(name, &["network_engineer"])
}
fn caller() -> Actor {
    Actor::new("carol", &["caller"])
}

fn network_incident() -> Map<String, Value> {
    fields(json!({
        "title": "VPN down",
        "caller": "carol",
        "service": "VPN",
        "category": "network",
        "impact": "medium",
        "urgency": "medium",
    }))
}

/// An incident with these fields, created by the caller and logged into its queue.
async fn logged<S: Store>(
    e: &Engine<S>,
    fields: &Map<String, Value>,
) -> itsmflow_engine::runtime::InstanceView {
    let inc = e
        .create("incident", fields, &caller())
        .await
        .expect("create");
    e.perform(inc.id(), "log", &Map::new(), None, &agent(), None)
        .await
        .expect("log")
}

fn start() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0)
        .single()
        .expect("valid time")
}

/// A store under test and what it takes to open another engine on the same data.
struct Harness<S: Store> {
    engine: Engine<S>,
    clock: Arc<ManualClock>,
    cleanup: Option<String>,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

async fn published<S: Store>(store: S, catalog: Arc<Catalog>) -> (Engine<S>, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(start()));
    let engine = Engine::open(store, catalog, clock.clone())
        .await
        .expect("open");
    engine.publish(&processes()).await.expect("publish");
    (engine, clock)
}

async fn memory() -> Harness<MemoryStore> {
    let (engine, clock) = published(MemoryStore::new(), Arc::new(Catalog::default())).await;
    Harness {
        engine,
        clock,
        cleanup: None,
    }
}

fn sqlite_path() -> PathBuf {
    std::env::temp_dir().join(format!("{}.db", unique("itsmflow_test")))
}

async fn sqlite() -> Harness<SqliteStore> {
    let path = sqlite_path();
    let catalog = Arc::new(Catalog::default());
    let store = SqliteStore::open(&path, catalog.clone())
        .await
        .expect("sqlite");
    let (engine, clock) = published(store, catalog).await;
    Harness {
        engine,
        clock,
        cleanup: Some(path.display().to_string()),
    }
}

fn pg_admin_url() -> String {
    std::env::var("ITSMFLOW_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres:///postgres?host=/var/run/postgresql".into())
}

/// A fresh database on the test server; its URL.
async fn pg_database() -> String {
    let admin = pg_admin_url();
    let name = unique("itsmflow_test");
    let pool = sqlx::PgPool::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL is not reachable at {admin} ({e}); start it (`.ci/run` does) or set ITSMFLOW_TEST_POSTGRES"));
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&pool)
        .await
        .expect("create database");
    pool.close().await;
    with_database(&admin, &name)
}

async fn postgres() -> Harness<PostgresStore> {
    let url = pg_database().await;
    let catalog = Arc::new(Catalog::default());
    let store = PostgresStore::connect(&url, catalog.clone())
        .await
        .expect("postgres");
    let (engine, clock) = published(store, catalog).await;
    Harness {
        engine,
        clock,
        cleanup: Some(url),
    }
}

impl<S: Store> Harness<S> {
    async fn finish(self) {
        drop(self.engine);
        match self.cleanup {
            Some(url) if url.starts_with("postgres") => {
                let name = url
                    .split('?')
                    .next()
                    .and_then(|s| s.rsplit('/').next())
                    .unwrap_or_default()
                    .to_string();
                if let Ok(pool) = sqlx::PgPool::connect(&pg_admin_url()).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&pool)
                        .await;
                }
            }
            Some(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{path}{suffix}"));
                }
            }
            None => {}
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Scenarios, each written once against the engine.

async fn lifecycle<S: Store>(h: &Harness<S>) {
    let e = &h.engine;
    let inc = e
        .create("incident", &network_incident(), &caller())
        .await
        .expect("create");
    assert_eq!(inc.stage(), "new");
    assert_eq!(inc.priority(), Some("P3"));
    assert_eq!(inc.definition_version(), 1);
    assert!(inc.task().is_none(), "`new` has no queue");

    let inc = e
        .perform(
            inc.id(),
            "log",
            &Map::new(),
            Some(inc.version()),
            &agent(),
            None,
        )
        .await
        .expect("log");
    assert_eq!(inc.stage(), "triage");
    assert_eq!(
        inc.queue(),
        Some("network"),
        "routing sends network incidents to the network team"
    );
    let task = inc.task().cloned().expect("a task in the network queue");
    assert_eq!(task.queue, "network");

    let listed = e.queue_tasks("network", 10).await.expect("queue");
    assert_eq!(
        listed.iter().map(|t| t.id).collect::<Vec<_>>(),
        vec![task.id]
    );

    let bob = engineer("bob");
    let claimed = e
        .claim_next("network", &bob, TimeDelta::minutes(10))
        .await
        .expect("claim")
        .expect("a task");
    assert_eq!(claimed.id, task.id);
    assert_eq!(claimed.state, TaskState::Claimed);

    let inc = e
        .complete(claimed.id, claimed.token, "accept", &Map::new(), &bob)
        .await
        .expect("accept");
    assert_eq!(inc.stage(), "working");
    let working = inc.task().cloned().expect("working is queued too");
    assert_ne!(working.id, claimed.id);
    assert_eq!(
        e.task(claimed.id).await.expect("task").state,
        TaskState::Done
    );

    let err = e
        .perform(inc.id(), "resolve", &Map::new(), None, &bob, None)
        .await
        .expect_err("needs a resolution");
    assert!(
        matches!(err, EngineError::MissingFields { ref fields, .. } if fields == &["resolution".to_string()]),
        "{err}"
    );

    let inc = e
        .perform(
            inc.id(),
            "resolve",
            &fields(json!({"resolution": "restarted the concentrator"})),
            None,
            &bob,
            None,
        )
        .await
        .expect("resolve");
    assert_eq!(inc.stage(), "resolved");
    assert!(inc.task().is_none());
    assert_eq!(
        e.task(working.id).await.expect("task").state,
        TaskState::Done
    );

    let inc = e
        .perform(inc.id(), "close", &Map::new(), None, &caller(), None)
        .await
        .expect("close");
    assert_eq!(inc.stage(), "closed");
    assert!(inc.actions().is_empty());

    let kinds: Vec<&str> = e
        .history(inc.id())
        .await
        .expect("history")
        .iter()
        .map(|h| h.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            "created",
            "transitioned",
            "routed",
            "transitioned",
            "fields_changed",
            "transitioned",
            "routed",
            "transitioned"
        ]
    );
    assert!(
        e.verify(inc.id()).await.expect("verify"),
        "state equals the replay of its history"
    );
}

/// Each refusal must leave the instance exactly as it was.
async fn refusals<S: Store>(h: &Harness<S>) {
    let e = &h.engine;
    let err = e
        .create(
            "incident",
            &fields(json!({"caller": "x", "impact": "huge", "colour": "red"})),
            &caller(),
        )
        .await
        .expect_err("bad fields");
    let EngineError::InvalidFields(errors) = err else {
        panic!("{err}")
    };
    let named: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    for f in ["impact", "colour", "title", "service", "category"] {
        assert!(named.contains(&f), "{f} missing from {named:?}");
    }
    assert!(
        e.queue_counts().await.expect("counts").is_empty(),
        "nothing was created"
    );

    let inc = logged(e, &network_incident()).await;
    let before = e.state(inc.id()).await.expect("state");
    let history = e.events(inc.id()).await.expect("events");
    let task = inc.task().cloned().expect("task");

    let cases: Vec<(&str, EngineError)> = vec![
        (
            "wrong role",
            e.perform(inc.id(), "accept", &Map::new(), None, &caller(), None)
                .await
                .expect_err("role"),
        ),
        (
            "not in this stage",
            e.perform(inc.id(), "close", &Map::new(), None, &caller(), None)
                .await
                .expect_err("stage"),
        ),
        (
            "unknown action",
            e.perform(inc.id(), "teleport", &Map::new(), None, &agent(), None)
                .await
                .expect_err("action"),
        ),
        (
            "stale version",
            e.perform(inc.id(), "accept", &Map::new(), Some(1), &agent(), None)
                .await
                .expect_err("stale"),
        ),
        (
            "bad field with action",
            e.perform(
                inc.id(),
                "accept",
                &fields(json!({"urgency": "whenever"})),
                None,
                &agent(),
                None,
            )
            .await
            .expect_err("field"),
        ),
        (
            "stale token",
            e.complete(task.id, 99, "accept", &Map::new(), &agent())
                .await
                .expect_err("token"),
        ),
        (
            "update to a bad value",
            e.update(
                inc.id(),
                &fields(json!({"impact": 3})),
                None,
                &agent(),
                None,
            )
            .await
            .expect_err("upd"),
        ),
        (
            "clear a required field",
            e.update(
                inc.id(),
                &fields(json!({"caller": null})),
                None,
                &agent(),
                None,
            )
            .await
            .expect_err("req"),
        ),
    ];
    assert!(
        matches!(cases[0].1, EngineError::Forbidden { .. }),
        "{}",
        cases[0].1
    );
    assert!(
        matches!(cases[1].1, EngineError::ActionNotAllowed { ref allowed, .. } if allowed.contains(&"accept".to_string()))
    );
    assert!(matches!(cases[2].1, EngineError::UnknownAction { .. }));
    assert!(matches!(
        cases[3].1,
        EngineError::Store(StoreError::Conflict { .. })
    ));
    assert!(matches!(cases[4].1, EngineError::InvalidFields(_)));
    assert!(matches!(
        cases[5].1,
        EngineError::Store(StoreError::LeaseLost(_))
    ));
    for (what, _) in &cases {
        assert_eq!(
            e.state(inc.id()).await.expect("state"),
            before,
            "{what} changed the instance"
        );
        assert_eq!(
            e.events(inc.id()).await.expect("events"),
            history,
            "{what} changed the history"
        );
    }

    // A guard that says no: `close` needs a resolution (the rule), which `requires` does not cover.
    let inc = e
        .perform(inc.id(), "accept", &Map::new(), None, &agent(), None)
        .await
        .expect("accept");
    let inc = e
        .perform(
            inc.id(),
            "resolve",
            &fields(json!({"resolution": "fixed"})),
            None,
            &agent(),
            None,
        )
        .await
        .expect("resolve");
    let inc = e
        .update(
            inc.id(),
            &fields(json!({"resolution": ""})),
            None,
            &agent(),
            None,
        )
        .await
        .expect("clear resolution");
    let before = e.state(inc.id()).await.expect("state");
    let err = e
        .perform(inc.id(), "close", &Map::new(), None, &caller(), None)
        .await
        .expect_err("guard");
    assert!(
        matches!(err, EngineError::GuardFailed { ref rule, .. } if rule == "close_needs_resolution"),
        "{err}"
    );
    assert_eq!(e.state(inc.id()).await.expect("state"), before);
}

/// Many tasks, many concurrent claimers: every task completed exactly once.
async fn claim_race<S: Store>(h: &Harness<S>)
where
    Engine<S>: Send + Sync,
{
    let e = &h.engine;
    const TASKS: usize = 40;
    for _ in 0..TASKS {
        logged(e, &network_incident()).await;
    }
    let completed = std::sync::Mutex::new(Vec::new());
    let claimers = (0..8).map(|n| {
        let completed = &completed;
        async move {
            // `cancel` ends the instance, so completing creates no further tasks.
            let me = Actor::new(format!("engineer{n}"), &["network_engineer", "agent"]);
            loop {
                let Some(task) = e
                    .claim_next("network", &me, TimeDelta::minutes(5))
                    .await
                    .expect("claim")
                else {
                    break;
                };
                let inc = e
                    .complete(task.id, task.token, "cancel", &Map::new(), &me)
                    .await
                    .expect("complete");
                assert_eq!(inc.stage(), "cancelled");
                completed.lock().expect("lock").push((task.id, inc.id()));
            }
        }
    });
    futures_join_all(claimers).await;
    let mut completed = completed.into_inner().expect("lock");
    completed.sort();
    let before = completed.len();
    completed.dedup_by_key(|(t, _)| *t);
    assert_eq!(before, completed.len(), "a task was completed twice");
    assert_eq!(completed.len(), TASKS, "every task was completed");
    assert!(e
        .queue_tasks("network", 100)
        .await
        .expect("queue")
        .is_empty());
}

async fn futures_join_all<F: std::future::Future<Output = ()>>(
    futures: impl IntoIterator<Item = F>,
) {
    let mut set: Vec<Option<_>> = futures.into_iter().map(|f| Some(Box::pin(f))).collect();
    // Poll all of them concurrently on this task (they are I/O bound).
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for slot in set.iter_mut() {
            if let Some(f) = slot {
                if f.as_mut().poll(cx).is_pending() {
                    pending = true;
                } else {
                    *slot = None;
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
}

async fn lease_expiry<S: Store>(h: &Harness<S>) {
    let e = &h.engine;
    let inc = logged(e, &network_incident()).await;
    let (bob, dan) = (engineer("bob"), engineer("dan"));
    let first = e
        .claim_next("network", &bob, TimeDelta::minutes(5))
        .await
        .expect("claim")
        .expect("task");
    assert!(
        e.claim_next("network", &dan, TimeDelta::minutes(5))
            .await
            .expect("claim")
            .is_none(),
        "leased"
    );
    let renewed = e
        .renew(first.id, first.token, &bob, TimeDelta::minutes(5))
        .await
        .expect("renew");
    assert_eq!(renewed.token, first.token);

    h.clock.advance(TimeDelta::minutes(6));
    let second = e
        .claim_next("network", &dan, TimeDelta::minutes(5))
        .await
        .expect("claim")
        .expect("expired lease returns the task");
    assert_eq!(second.id, first.id);
    assert!(
        second.token > first.token,
        "a new claim gets a new fencing token"
    );

    let before = e.state(inc.id()).await.expect("state");
    let err = e
        .complete(first.id, first.token, "accept", &Map::new(), &bob)
        .await
        .expect_err("stale token");
    assert!(
        matches!(err, EngineError::Store(StoreError::LeaseLost(_))),
        "{err}"
    );
    assert!(matches!(
        e.renew(first.id, first.token, &bob, TimeDelta::minutes(5))
            .await,
        Err(EngineError::Store(StoreError::LeaseLost(_)))
    ));
    assert!(matches!(
        e.release(first.id, first.token, &bob).await,
        Err(EngineError::Store(StoreError::LeaseLost(_)))
    ));
    assert_eq!(e.state(inc.id()).await.expect("state"), before);

    // Acting directly on an instance whose task someone else holds is refused too.
    let err = e
        .perform(inc.id(), "accept", &Map::new(), None, &agent(), None)
        .await
        .expect_err("claimed by dan");
    assert!(
        matches!(err, EngineError::Store(StoreError::Claimed { ref by, .. }) if by == "dan"),
        "{err}"
    );

    e.release(second.id, second.token, &dan)
        .await
        .expect("release");
    let again = e
        .claim(first.id, &bob, TimeDelta::minutes(5))
        .await
        .expect("claim a given task");
    let inc = e
        .complete(again.id, again.token, "accept", &Map::new(), &bob)
        .await
        .expect("complete");
    assert_eq!(inc.stage(), "working");

    // Only the queue's members may claim.
    let err = e
        .claim_next("network", &caller(), TimeDelta::minutes(5))
        .await
        .expect_err("not a member");
    assert!(matches!(err, EngineError::NotQueueMember { .. }), "{err}");
}

async fn reprioritise_and_reroute<S: Store>(h: &Harness<S>) {
    let e = &h.engine;
    let mut f = network_incident();
    f.insert("category".into(), json!("access"));
    let inc = logged(e, &f).await;
    assert_eq!(inc.queue(), Some("service_desk"));
    assert_eq!(inc.priority(), Some("P3"));
    let task = inc.task().cloned().expect("task");

    let inc = e
        .update(
            inc.id(),
            &fields(json!({"impact": "high", "urgency": "high"})),
            Some(inc.version()),
            &agent(),
            Some("CEO affected".into()),
        )
        .await
        .expect("update");
    assert_eq!(inc.priority(), Some("P1"));
    assert_eq!(
        inc.queue(),
        Some("major_incident"),
        "routing follows priority"
    );
    let moved = inc.task().cloned().expect("task");
    assert_eq!(moved.id, task.id, "the same task moves");
    assert_eq!(moved.queue, "major_incident");
    assert_eq!(moved.priority, Some(0));
    assert!(e
        .queue_tasks("service_desk", 10)
        .await
        .expect("queue")
        .is_empty());

    let history = e.history(inc.id()).await.expect("history");
    let tail: Vec<&str> = history.iter().rev().take(3).map(|h| h.kind).collect();
    assert_eq!(tail, ["routed", "priority_changed", "fields_changed"]);
    assert_eq!(
        history.last().and_then(|h| h.reason.clone()).as_deref(),
        Some("CEO affected")
    );
    assert!(e.verify(inc.id()).await.expect("verify"));
}

/// A change decided on a state that has moved on (another node acted in between) is refused by
/// the store as a whole: the task it would close stays open, nothing is appended.
async fn stale_commit_changes_nothing<S: Store>(h: &Harness<S>) {
    use itsmflow_engine::runtime::logic::{Logic, Request};
    use itsmflow_engine::runtime::types::Fence;

    let e = &h.engine;
    let inc = logged(e, &network_incident()).await;
    let me = engineer("bob");
    let task = e
        .claim_next("network", &me, TimeDelta::minutes(5))
        .await
        .expect("claim")
        .expect("task");
    let stale = e.state(inc.id()).await.expect("state");

    // Someone else changes the instance (a comment bumps its version, the task stays claimed).
    e.comment(inc.id(), "on it", &agent())
        .await
        .expect("comment");
    let before = e.state(inc.id()).await.expect("state");
    let history = e.events(inc.id()).await.expect("events");

    let def = e.catalog().get(stale.definition).expect("definition");
    let change = Logic::default()
        .perform(
            e.catalog(),
            &def,
            &stale,
            Some(&task),
            Some(Fence::Token {
                token: task.token,
                agent: me.name.clone(),
            }),
            "accept",
            &Map::new(),
            &Request {
                actor: &me,
                now: Utc::now(),
                reason: None,
            },
        )
        .expect("decided on the stale state");
    let err = e.store().commit(change).await.expect_err("stale version");
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
    assert_eq!(e.state(inc.id()).await.expect("state"), before);
    assert_eq!(e.events(inc.id()).await.expect("events"), history);
    let t = e.task(task.id).await.expect("task");
    assert_eq!(t.state, TaskState::Claimed, "the task was not closed");
    assert_eq!(t.token, task.token);

    // The claim still holds: completing through the engine works.
    let inc = e
        .complete(task.id, task.token, "accept", &Map::new(), &me)
        .await
        .expect("complete");
    assert_eq!(inc.stage(), "working");
}

/// Within a priority, the task due first comes first, whatever its age; tasks without a due
/// time come after those with one.
async fn queue_order_by_due_time<S: Store>(h: &Harness<S>) {
    use itsmflow_engine::runtime::logic::{Logic, Request};

    let e = &h.engine;
    let def = e.catalog().latest("incident").expect("incident");
    let logic = Logic::default();
    let req = Request {
        actor: &caller(),
        now: start(),
        reason: None,
    };
    // Created in this order, due in another: none, +3h, +1h, +2h.
    let dues = [None, Some(3), Some(1), Some(2)];
    let mut ids = Vec::new();
    for due in dues {
        let mut fields = network_incident();
        fields.insert("category".into(), json!("access"));
        let mut new = logic.create(&def, &fields, &req, None).expect("create");
        // The task is given straight to the store, with the due time under test.
        new.task = Some(itsmflow_engine::runtime::types::NewTask {
            process: "incident".into(),
            stage: "triage".into(),
            queue: "service_desk".into(),
            priority: new.instance.priority.map(|p| p.0),
            due_at: due.map(|h| start() + TimeDelta::hours(h)),
            assigned_to: None,
        });
        ids.push(e.store().create(new).await.expect("store").0);
    }
    let order: Vec<InstanceId> = e
        .queue_tasks("service_desk", 10)
        .await
        .expect("queue")
        .iter()
        .map(|t| t.instance)
        .collect();
    assert_eq!(order, vec![ids[2], ids[3], ids[1], ids[0]]);
}

async fn queue_order<S: Store>(h: &Harness<S>) {
    let e = &h.engine;
    let mut ids = Vec::new();
    for (impact, urgency) in [
        ("low", "low"),
        ("high", "medium"),
        ("medium", "medium"),
        ("high", "medium"),
    ] {
        let mut f = network_incident();
        f.insert("impact".into(), json!(impact));
        f.insert("urgency".into(), json!(urgency));
        let inc = logged(e, &f).await;
        ids.push(inc.id());
        h.clock.advance(TimeDelta::seconds(1));
    }
    let order: Vec<InstanceId> = e
        .queue_tasks("network", 10)
        .await
        .expect("queue")
        .iter()
        .map(|t| t.instance)
        .collect();
    assert_eq!(
        order,
        vec![ids[1], ids[3], ids[2], ids[0]],
        "priority first, then age"
    );
}

async fn comments_links_and_spawns<S: Store>(h: &Harness<S>) {
    let e = &h.engine;
    let inc = logged(e, &network_incident()).await;
    let inc = e
        .perform(inc.id(), "accept", &Map::new(), None, &agent(), None)
        .await
        .expect("accept");
    let task = inc.task().cloned().expect("task");
    let inc = e
        .comment(inc.id(), "called the vendor", &agent())
        .await
        .expect("comment");
    let inc = e
        .perform(inc.id(), "raise_problem", &Map::new(), None, &agent(), None)
        .await
        .expect("spawn");
    assert_eq!(inc.stage(), "working");
    assert_eq!(
        inc.task().map(|t| t.id),
        Some(task.id),
        "a self-loop keeps the task"
    );

    let links = e.links(inc.id()).await.expect("links");
    assert_eq!(links.len(), 1);
    assert_eq!(links[0].kind, "caused_by");
    let problem = e.instance(links[0].to).await.expect("problem");
    assert_eq!(problem.process(), "problem");
    assert_eq!(
        problem.field("title").as_ref(),
        Some(&json!("VPN down")),
        "fields are copied by name"
    );
    assert_eq!(problem.field("urgency").as_ref(), Some(&json!("medium")));

    let other = e
        .create("incident", &network_incident(), &caller())
        .await
        .expect("create");
    e.link(other.id(), inc.id(), "duplicate_of", &agent())
        .await
        .expect("link");
    let err = e
        .link(other.id(), InstanceId(999_999), "duplicate_of", &agent())
        .await
        .expect_err("no such instance");
    assert!(matches!(err, EngineError::InstanceNotFound(_)));

    let kinds: Vec<&str> = e
        .history(inc.id())
        .await
        .expect("history")
        .iter()
        .map(|h| h.kind)
        .collect();
    assert!(
        kinds.contains(&"commented") && kinds.contains(&"spawned"),
        "{kinds:?}"
    );
    let problem_history = e.history(problem.id()).await.expect("history");
    assert_eq!(
        problem_history[0].data["spawned_by"]["instance"],
        json!(inc.id().0)
    );
    for id in [inc.id(), problem.id(), other.id()] {
        assert!(e.verify(id).await.expect("verify"));
    }
}

/// `network` pushes round robin; `second_line` pushes to the least loaded member.
async fn push_assignment<S: Store>(h: &Harness<S>) {
    let e = &h.engine;
    let (ann, ben, cat) = (engineer("ann"), engineer("ben"), engineer("cat"));
    for a in [&ann, &ben, &cat] {
        e.set_agent(a, true).await.expect("register");
    }
    e.set_agent(&Actor::new("dora", &["agent"]), true)
        .await
        .expect("not a network member");

    let mut assigned = Vec::new();
    for _ in 0..4 {
        let inc = logged(e, &network_incident()).await;
        assigned.push(
            inc.task()
                .and_then(|t| t.assigned_to.clone())
                .expect("pushed"),
        );
    }
    assert_eq!(
        assigned,
        ["ann", "ben", "cat", "ann"],
        "round robin over active members by name"
    );

    // Pushed tasks are claimed by their assignee only.
    let got = e
        .claim_next("network", &ben, TimeDelta::minutes(5))
        .await
        .expect("claim")
        .expect("ben's task");
    assert_eq!(got.assigned_to.as_deref(), Some("ben"));
    assert!(e
        .claim_next("network", &ben, TimeDelta::minutes(5))
        .await
        .expect("claim")
        .is_none());

    // Taking ann off returns her unclaimed tasks to the queue for anyone.
    e.set_agent(&ann, false).await.expect("off shift");
    let open: Vec<Option<String>> = e
        .queue_tasks("network", 10)
        .await
        .expect("queue")
        .into_iter()
        .filter(|t| t.state == TaskState::Open)
        .map(|t| t.assigned_to)
        .collect();
    assert_eq!(open.iter().filter(|a| a.is_none()).count(), 2, "{open:?}");
    let next = logged(e, &network_incident()).await;
    assert_eq!(
        next.task().and_then(|t| t.assigned_to.clone()).as_deref(),
        Some("ben"),
        "ann is skipped"
    );

    // Least loaded: ben holds a claimed task and an assigned one, cat one assigned one.
    let mut hw = network_incident();
    hw.insert("category".into(), json!("hardware"));
    hw.insert("impact".into(), json!("high"));
    hw.insert("urgency".into(), json!("low"));
    let inc = logged(e, &hw).await;
    assert_eq!(inc.queue(), Some("second_line"));
    assert_eq!(
        inc.task().and_then(|t| t.assigned_to.clone()).as_deref(),
        Some("cat")
    );
}

async fn versions<S: Store>(h: &Harness<S>) {
    let e = &h.engine;
    let again = e.publish(&processes()).await.expect("publish");
    assert!(
        again.iter().all(|p| !p.new && p.version == 1),
        "an unchanged project publishes nothing"
    );

    let old = e
        .create("incident", &network_incident(), &caller())
        .await
        .expect("create");
    let mut changed = Sources::new();
    for (_, f) in processes().iter() {
        let text = f.text.replace(
            "stage closed \"Closed\" final",
            "stage closed \"Closed for good\" final",
        );
        changed.add(f.name.clone(), text);
    }
    let report = e.publish(&changed).await.expect("publish v2");
    assert!(report
        .iter()
        .any(|p| p.process == "incident" && p.new && p.version == 2));

    let mut broken = Sources::new();
    broken.add("broken.itsm", "process incident { stage a initial }");
    let err = e.publish(&broken).await.expect_err("does not check");
    assert!(matches!(err, EngineError::InvalidDefinitions(_)));

    let new = e
        .create("incident", &network_incident(), &caller())
        .await
        .expect("create");
    assert_eq!(
        new.definition_version(),
        2,
        "new instances start on the latest version"
    );
    let old = e
        .perform(old.id(), "log", &Map::new(), None, &agent(), None)
        .await
        .expect("old still runs");
    assert_eq!(
        old.definition_version(),
        1,
        "running instances stay on their version"
    );
}

async fn restart<S: Store>(h: Harness<S>, reopen: impl AsyncFnOnce(Arc<Catalog>) -> S) {
    let e = &h.engine;
    let inc = logged(e, &network_incident()).await;
    let catalog = Arc::new(Catalog::default());
    let store = reopen(catalog.clone()).await;
    let again = Engine::open(store, catalog, h.clock.clone())
        .await
        .expect("reopen");
    let seen = again.instance(inc.id()).await.expect("instance survives");
    assert_eq!(seen, inc);
    assert!(again.verify(inc.id()).await.expect("verify"));
    let report = again.publish(&processes()).await.expect("publish");
    assert!(report.iter().all(|p| !p.new), "definitions were reloaded");
    h.finish().await;
}

macro_rules! suite {
    ($backend:ident) => {
        mod $backend {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn incident_lifecycle() {
                let h = super::$backend().await;
                lifecycle(&h).await;
                h.finish().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn refusals_change_nothing() {
                let h = super::$backend().await;
                refusals(&h).await;
                h.finish().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn concurrent_claimers_complete_each_task_once() {
                let h = super::$backend().await;
                claim_race(&h).await;
                h.finish().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn expired_leases_return_tasks_and_fence_old_holders() {
                let h = super::$backend().await;
                lease_expiry(&h).await;
                h.finish().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn field_updates_recompute_priority_and_routing() {
                let h = super::$backend().await;
                reprioritise_and_reroute(&h).await;
                h.finish().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_stale_commit_changes_nothing() {
                let h = super::$backend().await;
                stale_commit_changes_nothing(&h).await;
                h.finish().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn queues_order_by_due_time_within_a_priority() {
                let h = super::$backend().await;
                queue_order_by_due_time(&h).await;
                h.finish().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn queues_order_by_priority_then_age() {
                let h = super::$backend().await;
                queue_order(&h).await;
                h.finish().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn comments_links_and_spawned_instances() {
                let h = super::$backend().await;
                comments_links_and_spawns(&h).await;
                h.finish().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn push_assignment_round_robin_and_least_loaded() {
                let h = super::$backend().await;
                push_assignment(&h).await;
                h.finish().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn instances_stay_on_their_definition_version() {
                let h = super::$backend().await;
                versions(&h).await;
                h.finish().await;
            }
        }
    };
}

suite!(memory);
suite!(sqlite);
suite!(postgres);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_survives_a_restart() {
    let h = sqlite().await;
    let path = h.cleanup.clone().expect("path");
    restart(h, async move |catalog| {
        SqliteStore::open(&path, catalog).await.expect("reopen")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_survives_a_restart() {
    let h = postgres().await;
    let url = h.cleanup.clone().expect("url");
    restart(h, async move |catalog| {
        PostgresStore::connect(&url, catalog)
            .await
            .expect("reconnect")
    })
    .await;
}
