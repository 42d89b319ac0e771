//! One behavioural suite for the runtime, run against every store: in memory, a real SQLite
//! file, and a real PostgreSQL database (a fresh database per test; `.ci/run` starts the
//! server). PostgreSQL tests fail, not skip, when the server is unreachable.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use chrono::{TimeDelta, TimeZone, Utc};
use itsmflow_dsl::Sources;
use itsmflow_engine::runtime::approval::NO_HOLDERS;
use itsmflow_engine::runtime::{
    Actor, Catalog, Engine, EngineError, InstanceId, ManualClock, TaskState,
};
use itsmflow_engine::store::memory::MemoryStore;
use itsmflow_engine::store::postgres::PostgresStore;
use itsmflow_engine::store::sqlite::SqliteStore;
use itsmflow_engine::store::{InstanceFilter, Store, StoreError};
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
        "service": "vpn",
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
    let catalog = Arc::new(Catalog::default());
    let (engine, clock) = published(MemoryStore::new(catalog.clone()), catalog).await;
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

/// The name of a database made by [`pg_database`], given its URL.
fn pg_database_name(url: &str) -> String {
    // The query (`?host=/var/run/postgresql`) may hold slashes too: strip it first.
    let path = url.split('?').next().unwrap_or_default();
    path.rsplit('/').next().unwrap_or_default().to_string()
}

/// Drop a database made by [`pg_database`], given its URL.
async fn drop_pg_database(url: &str) {
    let name = pg_database_name(url);
    if let Ok(pool) = sqlx::PgPool::connect(&pg_admin_url()).await {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&pool)
            .await;
    }
}

impl<S: Store> Harness<S> {
    async fn finish(self) {
        drop(self.engine);
        match self.cleanup {
            Some(url) if url.starts_with("postgres") => drop_pg_database(&url).await,
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
    // What each may be offered in triage: the agents' actions to an agent, none to the caller.
    assert_eq!(inc.actions(), ["accept", "cancel"]);
    assert_eq!(inc.actions_for(&agent()), ["accept", "cancel"]);
    assert!(inc.actions_for(&caller()).is_empty());
    let network = e.catalog().queue("network").expect("network queue");
    assert!(network.admits(&engineer("nina")));
    assert!(!network.admits(&caller()));
    let task = inc.task().cloned().expect("a task in the network queue");
    assert_eq!(&*task.queue, "network");

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
            // `resolved` tells its caller.
            "notified",
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

    // A guard that says no: a material incident (here of high impact, computed by the rule
    // `materiality`) closes only once a problem behind it is resolved, and it has none.
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
            &fields(json!({"impact": "high"})),
            None,
            &agent(),
            None,
        )
        .await
        .expect("now material");
    let before = e.state(inc.id()).await.expect("state");
    let err = e
        .perform(inc.id(), "close", &Map::new(), None, &caller(), None)
        .await
        .expect_err("guard");
    assert!(
        matches!(err, EngineError::ConditionFailed { ref condition, .. }
            if condition.contains("any caused_by")),
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

/// A completion is decided on the instance as it is when it commits, whatever the claim read
/// (on PostgreSQL the claim returns the instance, and the completion starts from that read).
async fn completion_after_changes_since_the_claim<S: Store>(h: &Harness<S>) {
    let e = &h.engine;
    let inc = logged(e, &network_incident()).await;
    let bob = engineer("bob");
    let task = e
        .claim_next("network", &bob, TimeDelta::minutes(10))
        .await
        .expect("claim")
        .expect("task");
    // Changed after the claim read it.
    e.comment(inc.id(), "it is down for the whole floor", &caller())
        .await
        .expect("comment");
    let done = e
        .complete(task.id, task.token, "accept", &Map::new(), &bob)
        .await
        .expect("complete on the current version");
    assert_eq!(done.stage(), "working");
    let kinds: Vec<&str> = e
        .history(inc.id())
        .await
        .expect("history")
        .iter()
        .map(|ev| ev.kind)
        .collect();
    let commented = kinds.iter().position(|k| *k == "commented");
    let accepted = kinds.iter().rposition(|k| *k == "transitioned");
    assert!(
        commented.is_some() && commented < accepted,
        "the comment stays, before the acceptance: {kinds:?}"
    );
    assert!(e.verify(inc.id()).await.expect("verify"));

    // Moved on by its holder after the claim: the claim's task is closed, and completing it
    // is refused without changing anything.
    let task = e
        .claim_next("network", &bob, TimeDelta::minutes(10))
        .await
        .expect("claim")
        .expect("the working task");
    e.perform(inc.id(), "ask", &Map::new(), None, &bob, None)
        .await
        .expect("ask the caller");
    let before = e.state(inc.id()).await.expect("state");
    let err = e
        .complete(
            task.id,
            task.token,
            "resolve",
            &fields(json!({"resolution": "fixed"})),
            &bob,
        )
        .await
        .expect_err("the task was closed");
    assert!(
        matches!(err, EngineError::Store(StoreError::LeaseLost(_))),
        "{err}"
    );
    assert_eq!(e.state(inc.id()).await.expect("state"), before);
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
    assert_eq!(&*moved.queue, "major_incident");
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

/// The change completing `task` with `accept`, decided by the engine's logic on `state` and
/// presenting `token`, without committing it: a change as another node would have made it.
fn accept_decided_on<S: Store>(
    e: &Engine<S>,
    state: &itsmflow_engine::runtime::types::Instance,
    task: &itsmflow_engine::runtime::Task,
    token: i64,
    agent: &Actor,
) -> itsmflow_engine::runtime::types::Change {
    use itsmflow_engine::runtime::types::Fence;

    accept_fenced_on(
        e,
        state,
        task,
        Some(Fence::Token {
            token,
            agent: agent.name.clone(),
        }),
        agent,
    )
}

/// The change performing `accept` on `state`, closing `task` under `fence` (`None`: acting on
/// the instance directly, as `agent`), without committing it.
fn accept_fenced_on<S: Store>(
    e: &Engine<S>,
    state: &itsmflow_engine::runtime::types::Instance,
    task: &itsmflow_engine::runtime::Task,
    fence: Option<itsmflow_engine::runtime::types::Fence>,
    agent: &Actor,
) -> itsmflow_engine::runtime::types::Change {
    use itsmflow_engine::runtime::logic::{Logic, Request};

    let def = e.catalog().get(state.definition).expect("definition");
    Logic::default()
        .perform(
            e.catalog(),
            &def,
            state,
            Some(task),
            fence,
            "accept",
            &Map::new(),
            &Request {
                actor: agent,
                now: Utc::now(),
                reason: None,
                holders: &NO_HOLDERS,
                linked: &itsmflow_engine::runtime::relations::NO_LINKS,
                checklist: &[],
            },
        )
        .expect("decided")
}

/// A change decided on a state that has moved on (another node acted in between) is refused by
/// the store as a whole: the task it would close stays open, nothing is appended.
async fn stale_commit_changes_nothing<S: Store>(h: &Harness<S>) {
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

    let change = accept_decided_on(e, &stale, &task, task.token, &me);
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

type Op<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>>;

/// A stale change: its instance and task, whether it is stale by version (else by token), the
/// change, and the instance's state and history before it was tried.
type Refused = (
    InstanceId,
    itsmflow_engine::runtime::TaskId,
    bool,
    itsmflow_engine::runtime::types::Change,
    itsmflow_engine::runtime::types::Instance,
    Vec<itsmflow_engine::runtime::types::Event>,
);

/// Many changes at once, of every kind a change can be: a completion that opens the next
/// stage's task, one that ends the instance (its task closed, its clocks stopped), a field
/// update that moves the task to another queue, a comment. Each is applied whole. Stale changes
/// among them (decided on an old version, or holding an old fencing token) are refused and
/// touch nothing, whatever is written beside them.
async fn concurrent_changes<S: Store>(h: &Harness<S>)
where
    Engine<S>: Send + Sync,
{
    let e = &h.engine;
    const EACH: usize = 6;
    let bob = Actor::new("bob", &["network_engineer", "agent"]);
    let mut to_accept = Vec::new();
    let mut to_cancel = Vec::new();
    let mut to_escalate = Vec::new();
    let mut to_comment = Vec::new();
    let mut stale = Vec::new();
    for n in 0..EACH * 5 {
        let inc = logged(e, &network_incident()).await;
        match n % 5 {
            0 | 1 | 4 => {
                let task = e
                    .claim(inc.task().expect("task").id, &bob, TimeDelta::minutes(5))
                    .await
                    .expect("claim");
                match n % 5 {
                    0 => to_accept.push(task),
                    1 => to_cancel.push(task),
                    _ => stale.push((inc.id(), task)),
                }
            }
            2 => to_escalate.push(inc),
            _ => to_comment.push(inc),
        }
    }
    // Half the stale changes are decided on a version that has moved on, half hold a token
    // that is no longer the task's.
    let mut refused: Vec<Refused> = Vec::new();
    for (k, (id, task)) in stale.iter().enumerate() {
        let state = e.state(*id).await.expect("state");
        let old_version = k % 2 == 0;
        let token = if old_version {
            e.comment(*id, "looking", &agent()).await.expect("comment");
            task.token
        } else {
            task.token + 1
        };
        let change = accept_decided_on(e, &state, task, token, &bob);
        let before = e.state(*id).await.expect("state");
        let events = e.events(*id).await.expect("events");
        refused.push((*id, task.id, old_version, change, before, events));
    }

    let bob = &bob;
    fn refuse<'a, S: Store>(
        e: &'a Engine<S>,
        (id, task, old_version, change, _, _): &'a Refused,
    ) -> Op<'a>
    where
        Engine<S>: Send + Sync,
    {
        Box::pin(async move {
            let err = e
                .store()
                .commit(change.clone())
                .await
                .expect_err("stale change");
            if *old_version {
                assert!(
                    matches!(err, StoreError::Conflict { id: i, .. } if i == *id),
                    "{err}"
                );
            } else {
                assert!(
                    matches!(err, StoreError::LeaseLost(t) if t == *task),
                    "{err}"
                );
            }
        })
    }
    // Two waves, so that a refusal the database would catch anyway (an old version's events
    // collide with the ones written since) never hides one that only the store's checks catch.
    let first: Vec<Op<'_>> = to_accept
        .iter()
        .map(|t| {
            Box::pin(async move {
                let inc = e
                    .complete(t.id, t.token, "accept", &Map::new(), bob)
                    .await
                    .expect("accept");
                assert_eq!(inc.stage(), "working");
                let next = inc.task().expect("working is queued");
                assert_ne!(next.id, t.id);
                assert_eq!(next.state, TaskState::Open);
            }) as Op<'_>
        })
        .chain(to_cancel.iter().map(|t| {
            Box::pin(async move {
                let inc = e
                    .complete(t.id, t.token, "cancel", &Map::new(), bob)
                    .await
                    .expect("cancel");
                assert_eq!(inc.stage(), "cancelled");
                assert!(inc.task().is_none());
            }) as Op<'_>
        }))
        .chain(refused.iter().filter(|r| !r.2).map(|r| refuse(e, r)))
        .collect();
    futures_join_all(first).await;
    let second: Vec<Op<'_>> = to_escalate
        .iter()
        .map(|inc| {
            Box::pin(async move {
                let up = e
                    .update(
                        inc.id(),
                        &fields(json!({"impact": "high", "urgency": "high"})),
                        Some(inc.version()),
                        &agent(),
                        None,
                    )
                    .await
                    .expect("update");
                assert_eq!(up.priority(), Some("P1"));
                let task = up.task().expect("task");
                assert_eq!(task.id, inc.task().expect("task").id, "the same task moves");
                assert_eq!(&*task.queue, "major_incident");
            }) as Op<'_>
        })
        .chain(to_comment.iter().map(|inc| {
            Box::pin(async move {
                let after = e
                    .comment(inc.id(), "called back", &agent())
                    .await
                    .expect("comment");
                assert_eq!(after.version(), inc.version() + 1);
            }) as Op<'_>
        }))
        .chain(refused.iter().filter(|r| r.2).map(|r| refuse(e, r)))
        .collect();
    futures_join_all(second).await;

    for (id, task, _, _, before, events) in &refused {
        assert_eq!(&e.state(*id).await.expect("state"), before);
        assert_eq!(&e.events(*id).await.expect("events"), events);
        assert_eq!(e.task(*task).await.expect("task").state, TaskState::Claimed);
    }
    for t in to_accept.iter().chain(&to_cancel) {
        assert_eq!(e.task(t.id).await.expect("task").state, TaskState::Done);
    }
    assert_eq!(
        e.queue_tasks("major_incident", 100)
            .await
            .expect("queue")
            .len(),
        EACH
    );
    let ids = listed(e, &InstanceFilter::default(), 100).await;
    assert_eq!(ids.len(), EACH * 5);
    for id in ids {
        assert!(
            e.verify(id).await.expect("verify"),
            "state equals the replay of its history"
        );
    }
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
        holders: &NO_HOLDERS,
        linked: &itsmflow_engine::runtime::relations::NO_LINKS,
        checklist: &[],
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
            ola_due_at: None,
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
    e.link(other.id(), inc.id(), "parent", &agent())
        .await
        .expect("link");
    let err = e
        .link(other.id(), InstanceId(999_999), "parent", &agent())
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

/// A listing filter; `None` for each criterion not given.
fn filter(
    process: Option<&str>,
    stage: Option<&str>,
    queue: Option<&str>,
    created_by: Option<&str>,
) -> InstanceFilter {
    InstanceFilter {
        process: process.map(str::to_string),
        stage: stage.map(str::to_string),
        queue: queue.map(str::to_string),
        created_by: created_by.map(str::to_string),
        before: None,
    }
}

/// Ids of the instances a listing shows, in its order.
async fn listed<S: Store>(e: &Engine<S>, f: &InstanceFilter, limit: u32) -> Vec<InstanceId> {
    e.list_instances(f, limit)
        .await
        .expect("list")
        .iter()
        .map(|i| i.id())
        .collect()
}

/// Every page of a listing, following the cursor; `between` runs after the first page.
async fn paged<S: Store>(
    e: &Engine<S>,
    f: &InstanceFilter,
    per_page: u32,
    between: impl AsyncFnOnce(),
) -> Vec<Vec<InstanceId>> {
    let mut pages = Vec::new();
    let mut f = f.clone();
    let mut between = Some(between);
    loop {
        let page = listed(e, &f, per_page).await;
        let Some(last) = page.last().copied() else {
            break;
        };
        assert!(page.len() <= per_page as usize);
        pages.push(page);
        f.before = Some(last);
        if let Some(run) = between.take() {
            run().await;
        }
    }
    pages
}

async fn listing<S: Store>(h: &Harness<S>) {
    let e = &h.engine;
    let dave = Actor::new("dave", &["caller"]);
    let mut hardware = network_incident();
    hardware.insert("category".into(), json!("hardware"));
    hardware.insert("impact".into(), json!("high"));
    // In creation order: carol's new incident, carol's logged one (network), dave's new one,
    // carol's logged hardware one (second line), dave's worked one, the problem alice raises
    // from it, dave's second new one.
    let a = e
        .create("incident", &network_incident(), &caller())
        .await
        .expect("create");
    let b = logged(e, &network_incident()).await;
    let c = e
        .create("incident", &network_incident(), &dave)
        .await
        .expect("create");
    let d = logged(e, &hardware).await;
    let w = e
        .create("incident", &network_incident(), &dave)
        .await
        .expect("create");
    e.perform(w.id(), "log", &Map::new(), None, &agent(), None)
        .await
        .expect("log");
    e.perform(w.id(), "accept", &Map::new(), None, &agent(), None)
        .await
        .expect("accept");
    let w = e
        .perform(w.id(), "raise_problem", &Map::new(), None, &agent(), None)
        .await
        .expect("spawn");
    let p = e.links(w.id()).await.expect("links")[0].to;
    let f = e
        .create("incident", &network_incident(), &dave)
        .await
        .expect("create");
    let (a, b, c, d, w, f) = (a.id(), b.id(), c.id(), d.id(), w.id(), f.id());
    let newest_first = vec![f, p, w, d, c, b, a];

    // Everything, newest first; each listed instance exactly as when read alone (task included).
    let all = e
        .list_instances(&InstanceFilter::default(), 100)
        .await
        .expect("list");
    assert_eq!(all.iter().map(|i| i.id()).collect::<Vec<_>>(), newest_first);
    for view in &all {
        assert_eq!(view, &e.instance(view.id()).await.expect("instance"));
    }
    assert!(
        all.iter().any(|i| i.task().is_some()),
        "open tasks are listed with their instances"
    );
    assert_eq!(
        listed(e, &InstanceFilter::default(), 3).await,
        vec![f, p, w],
        "limit"
    );
    assert!(listed(e, &InstanceFilter::default(), 0).await.is_empty());

    // Each filter alone.
    assert_eq!(
        listed(e, &filter(Some("problem"), None, None, None), 100).await,
        vec![p]
    );
    assert_eq!(
        listed(e, &filter(Some("incident"), None, None, None), 100).await,
        vec![f, w, d, c, b, a]
    );
    assert_eq!(
        listed(e, &filter(None, Some("new"), None, None), 100).await,
        vec![f, c, a]
    );
    assert_eq!(
        listed(e, &filter(None, Some("triage"), None, None), 100).await,
        vec![d, b]
    );
    assert_eq!(
        listed(e, &filter(None, Some("logged"), None, None), 100).await,
        vec![p]
    );
    assert_eq!(
        listed(e, &filter(None, None, Some("network"), None), 100).await,
        vec![w, b]
    );
    assert_eq!(
        listed(e, &filter(None, None, Some("second_line"), None), 100).await,
        vec![d]
    );
    assert_eq!(
        listed(e, &filter(None, None, None, Some("dave")), 100).await,
        vec![f, w, c]
    );
    assert_eq!(
        listed(e, &filter(None, None, None, Some("carol")), 100).await,
        vec![d, b, a]
    );
    assert_eq!(
        listed(e, &filter(None, None, None, Some("alice")), 100).await,
        vec![p],
        "a spawned instance is created by whoever performed the transition"
    );
    for nothing in [
        filter(Some("change"), None, None, None),
        filter(None, Some("closed"), None, None),
        filter(None, None, Some("vendor"), None),
        filter(None, None, None, Some("nobody")),
    ] {
        assert!(listed(e, &nothing, 100).await.is_empty(), "{nothing:?}");
    }

    // Combined: every criterion must hold.
    assert_eq!(
        listed(
            e,
            &filter(Some("incident"), Some("triage"), None, Some("carol")),
            100
        )
        .await,
        vec![d, b]
    );
    assert_eq!(
        listed(
            e,
            &filter(
                Some("incident"),
                Some("triage"),
                Some("network"),
                Some("carol")
            ),
            100
        )
        .await,
        vec![b]
    );
    assert_eq!(
        listed(
            e,
            &filter(Some("incident"), None, Some("network"), Some("dave")),
            100
        )
        .await,
        vec![w]
    );
    assert!(
        listed(e, &filter(Some("incident"), None, None, Some("alice")), 100)
            .await
            .is_empty()
    );
    assert!(
        listed(e, &filter(Some("problem"), Some("new"), None, None), 100)
            .await
            .is_empty()
    );

    // The cursor: ids strictly below it.
    let mut below_d = InstanceFilter {
        before: Some(d),
        ..InstanceFilter::default()
    };
    assert_eq!(listed(e, &below_d, 100).await, vec![c, b, a]);
    below_d.created_by = Some("dave".into());
    assert_eq!(listed(e, &below_d, 100).await, vec![c]);

    // Paging walks every instance exactly once, even with instances created meanwhile (they
    // are newer than the cursor, so they appear on a first page, not a later one).
    for per_page in [1, 2, 3, 7, 50] {
        let pages = paged(e, &InstanceFilter::default(), per_page, async || {
            e.create("incident", &network_incident(), &caller())
                .await
                .expect("create");
        })
        .await;
        let walked: Vec<InstanceId> = pages.concat();
        let mut seen = walked.clone();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), walked.len(), "no instance twice: {pages:?}");
        assert!(
            walked.windows(2).all(|w| w[0] > w[1]),
            "newest first: {pages:?}"
        );
        assert!(
            newest_first.iter().all(|id| walked.contains(id)),
            "every instance: {pages:?}"
        );
    }
    let daves = paged(e, &filter(None, None, None, Some("dave")), 2, async || {}).await;
    assert_eq!(daves, vec![vec![f, w], vec![c]]);

    // The creator is part of the state, shown, and equal to the replay of the history.
    let problem = e.instance(p).await.expect("problem");
    assert_eq!(problem.created_by(), "alice");
    assert_eq!(e.instance(w).await.expect("incident").created_by(), "dave");
    let shown = serde_json::to_value(&problem).expect("json");
    assert_eq!(shown["created_by"], json!("alice"));
    for id in listed(e, &InstanceFilter::default(), 1000).await {
        assert!(e.verify(id).await.expect("verify"), "instance {id}");
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
                .and_then(|t| t.assigned_to.as_deref().map(str::to_string))
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
    let open: Vec<Option<Arc<str>>> = e
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
    // Now two each (cat's second task is open, pushed to her): the tie goes by name.
    let inc = logged(e, &hw).await;
    assert_eq!(
        inc.task().and_then(|t| t.assigned_to.clone()).as_deref(),
        Some("ben"),
        "tasks pushed and not claimed yet count too"
    );
    // Off shift and back: ben's pushed, unclaimed tasks went back to their queues, so he now
    // holds only the task he claimed, one fewer than cat.
    e.set_agent(&ben, false).await.expect("off shift");
    e.set_agent(&ben, true).await.expect("back on shift");
    let inc = logged(e, &hw).await;
    assert_eq!(
        inc.task().and_then(|t| t.assigned_to.clone()).as_deref(),
        Some("ben"),
        "tasks handed back no longer count"
    );

    // A task that moves into a pushing queue (here: routing after a field changed) is pushed
    // there; moved on into a pulling queue, it is nobody's.
    let mut sw = network_incident();
    sw.insert("category".into(), json!("software"));
    let inc = logged(e, &sw).await;
    assert_eq!(inc.queue(), Some("service_desk"));
    assert_eq!(inc.task().and_then(|t| t.assigned_to.clone()), None);
    let moved = e
        .update(
            inc.id(),
            &fields(json!({"category": "network"})),
            None,
            &ben,
            None,
        )
        .await
        .expect("reroute");
    assert_eq!(moved.queue(), Some("network"));
    let pushed = moved.task().and_then(|t| t.assigned_to.clone());
    assert!(
        matches!(pushed.as_deref(), Some("ben" | "cat")),
        "pushed to an active network member: {pushed:?}"
    );
    let back = e
        .update(
            inc.id(),
            &fields(json!({"category": "access"})),
            None,
            &ben,
            None,
        )
        .await
        .expect("reroute");
    assert_eq!(back.queue(), Some("service_desk"));
    assert_eq!(back.task().and_then(|t| t.assigned_to.clone()), None);
    assert!(e.verify(inc.id()).await.expect("verify"));
}

/// The task and the holder a claim was refused for; a panic if it was refused for any other
/// reason.
fn refused_as_claimed(err: EngineError) -> (itsmflow_engine::runtime::TaskId, String) {
    let EngineError::Store(StoreError::Claimed { task, by }) = err else {
        panic!("not refused as claimed: {err}")
    };
    (task, by)
}

/// `claimer`'s claim of `task` is refused as held by `holder` (`why`), and leaves the task as
/// it was.
async fn claim_refused_naming<S: Store>(
    e: &Engine<S>,
    task: &itsmflow_engine::runtime::Task,
    claimer: &Actor,
    holder: &str,
    why: &str,
) {
    let err = e
        .claim(task.id, claimer, TimeDelta::minutes(5))
        .await
        .expect_err(why);
    assert_eq!(refused_as_claimed(err), (task.id, holder.to_string()));
    assert_eq!(
        &e.task(task.id).await.expect("task"),
        task,
        "a refused claim changed the task"
    );
}

/// A claim of a given task that someone else holds is refused, naming who holds it: the agent
/// it was pushed to while nobody has claimed it, else its claimant. The task stays as it was.
async fn refused_claims<S: Store>(h: &Harness<S>) {
    let e = &h.engine;
    let (ann, ben) = (engineer("ann"), engineer("ben"));
    for a in [&ann, &ben] {
        e.set_agent(a, true).await.expect("register");
    }
    let lease = TimeDelta::minutes(5);

    // Pushed round robin to ann (first by name), not claimed yet: ben is refused, named ann.
    let inc = logged(e, &network_incident()).await;
    let pushed = e.task(inc.task().expect("task").id).await.expect("task");
    assert_eq!(pushed.assigned_to.as_deref(), Some("ann"));
    assert_eq!(pushed.state, TaskState::Open);
    assert_eq!(pushed.claimed_by, None);
    let state = e.state(inc.id()).await.expect("state");
    claim_refused_naming(e, &pushed, &ben, "ann", "pushed to ann").await;
    assert_eq!(e.state(inc.id()).await.expect("state"), state);

    // ann claims it (a new fencing token); ben is refused again, named ann.
    let held = e
        .claim(pushed.id, &ann, lease)
        .await
        .expect("the assignee claims");
    assert_eq!(held.state, TaskState::Claimed);
    assert_eq!(held.claimed_by.as_deref(), Some("ann"));
    assert_eq!(held.assigned_to.as_deref(), Some("ann"));
    assert!(held.token > pushed.token, "a claim bumps the token");
    claim_refused_naming(e, &held, &ben, "ann", "claimed by ann").await;

    // Least loaded: ann holds a task, ben none, so second_line pushes to ben; ann is refused,
    // named ben.
    let mut hw = network_incident();
    hw.insert("category".into(), json!("hardware"));
    hw.insert("impact".into(), json!("high"));
    hw.insert("urgency".into(), json!("low"));
    let inc = logged(e, &hw).await;
    assert_eq!(inc.queue(), Some("second_line"));
    let to_ben = e.task(inc.task().expect("task").id).await.expect("task");
    assert_eq!(to_ben.assigned_to.as_deref(), Some("ben"));
    assert_eq!(to_ben.state, TaskState::Open);
    claim_refused_naming(e, &to_ben, &ann, "ben", "pushed to ben").await;

    // A task pushed to nobody (service_desk pulls) and claimed: the claimant is named.
    let mut sw = network_incident();
    sw.insert("category".into(), json!("software"));
    let inc = logged(e, &sw).await;
    assert_eq!(inc.queue(), Some("service_desk"));
    let task = inc.task().cloned().expect("task");
    assert_eq!(task.assigned_to, None);
    let alices = e
        .claim(task.id, &agent(), lease)
        .await
        .expect("claim a given task");
    claim_refused_naming(
        e,
        &alices,
        &Actor::new("dora", &["agent"]),
        "alice",
        "claimed by alice",
    )
    .await;

    // The holders' claims still stand.
    let inc = e
        .complete(held.id, held.token, "accept", &Map::new(), &ann)
        .await
        .expect("ann completes");
    assert_eq!(inc.stage(), "working");
    let got = e
        .claim(to_ben.id, &ben, lease)
        .await
        .expect("the assignee claims");
    assert_eq!(got.claimed_by.as_deref(), Some("ben"));
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

/// A change decided on a version that has moved on is refused as a conflict whatever became of
/// the task it would close since (here: completed by its holder), so that whoever made it reads
/// again and decides again (the scheduler retries conflicts only); a change to an instance that
/// does not exist is refused as such, whatever its task. Nothing is written either way.
async fn stale_commit_conflicts_whatever_became_of_its_task<S: Store>(h: &Harness<S>) {
    let e = &h.engine;
    let inc = logged(e, &network_incident()).await;
    let bob = engineer("bob");
    let task = e
        .claim_next("network", &bob, TimeDelta::minutes(5))
        .await
        .expect("claim")
        .expect("task");
    let stale = e.state(inc.id()).await.expect("state");
    let changes = [
        (
            "completing the claim",
            accept_decided_on(e, &stale, &task, task.token, &bob),
        ),
        (
            "acting on the instance directly",
            accept_fenced_on(e, &stale, &task, None, &agent()),
        ),
    ];

    // The holder completes the task: the instance moves on, the task is done.
    let done = e
        .complete(task.id, task.token, "accept", &Map::new(), &bob)
        .await
        .expect("complete");
    assert_eq!(done.stage(), "working");
    let before = e.state(inc.id()).await.expect("state");
    let history = e.events(inc.id()).await.expect("events");

    for (what, change) in &changes {
        let err = e
            .store()
            .commit(change.clone())
            .await
            .expect_err("stale version");
        assert!(
            matches!(err, StoreError::Conflict { id, expected } if id == inc.id() && expected == stale.version),
            "{what}: {err}"
        );
    }
    for (what, change) in changes {
        let mut change = change;
        std::sync::Arc::make_mut(&mut change.instance).id = InstanceId(999_999);
        let err = e
            .store()
            .commit(change)
            .await
            .expect_err("no such instance");
        assert!(
            matches!(err, StoreError::NoInstance(InstanceId(999_999))),
            "{what}: {err}"
        );
    }
    assert_eq!(e.state(inc.id()).await.expect("state"), before);
    assert_eq!(e.events(inc.id()).await.expect("events"), history);
    assert_eq!(e.task(task.id).await.expect("task").state, TaskState::Done);
}

/// Renewing or releasing a task that does not exist is refused as no such task (a `404`, as
/// for a completion), not as a lost lease; presenting a token that is no longer the task's is
/// a lost lease.
async fn renew_and_release_of_no_task<S: Store>(h: &Harness<S>) {
    use itsmflow_engine::runtime::TaskId;

    let e = &h.engine;
    let bob = engineer("bob");
    let lease = TimeDelta::minutes(5);
    let missing = TaskId(999_999);
    let err = e.renew(missing, 1, &bob, lease).await.expect_err("renew");
    assert!(
        matches!(err, EngineError::Store(StoreError::NoTask(t)) if t == missing),
        "{err}"
    );
    let err = e.release(missing, 1, &bob).await.expect_err("release");
    assert!(
        matches!(err, EngineError::Store(StoreError::NoTask(t)) if t == missing),
        "{err}"
    );

    logged(e, &network_incident()).await;
    let task = e
        .claim_next("network", &bob, lease)
        .await
        .expect("claim")
        .expect("task");
    let stale = task.token + 1;
    let err = e
        .renew(task.id, stale, &bob, lease)
        .await
        .expect_err("renew");
    assert!(
        matches!(err, EngineError::Store(StoreError::LeaseLost(t)) if t == task.id),
        "{err}"
    );
    let err = e.release(task.id, stale, &bob).await.expect_err("release");
    assert!(
        matches!(err, EngineError::Store(StoreError::LeaseLost(t)) if t == task.id),
        "{err}"
    );
    assert_eq!(e.task(task.id).await.expect("task"), task);
}

/// A link is kept once per pair of instances and kind, however often it is made (a repeat
/// records nothing); links are listed by when they were made, then by the instances' ids.
/// (`children` is the incident's reverse side of `parent`: each is stored as child `parent`
/// parent.)
async fn links_once_each_in_order<S: Store>(h: &Harness<S>) {
    let e = &h.engine;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let inc = e
            .create("incident", &network_incident(), &caller())
            .await
            .expect("create");
        ids.push(inc.id());
    }
    let (from, older, newer) = (ids[0], ids[1], ids[2]);
    // At the same instant: to the newer instance first, then twice to the older one. The
    // repeat changes nothing: no event, no new version.
    let mut made = Vec::new();
    for to in [newer, older, older] {
        let (view, new) = e.link(from, to, "children", &agent()).await.expect("link");
        made.push((new, view.version()));
    }
    let v = made[0].1;
    assert_eq!(made, [(true, v), (true, v + 1), (false, v + 1)]);
    assert_eq!(e.state(from).await.expect("state").version, v + 1);
    assert_eq!(e.events(from).await.expect("events").len() as i64, v + 1);
    let listed: Vec<(InstanceId, InstanceId, String)> = e
        .store()
        .links(from)
        .await
        .expect("links")
        .into_iter()
        .map(|l| (l.from, l.to, l.kind))
        .collect();
    let kind = "parent".to_string();
    assert_eq!(
        listed,
        vec![(older, from, kind.clone()), (newer, from, kind.clone())]
    );
    assert_eq!(e.store().links(older).await.expect("links").len(), 1);
}

/// Round robin goes on from whom the queue's newest pushed task went to, a task moved into the
/// queue (routed there after a field changed, and pushed there) included.
async fn round_robin_after_a_moved_task<S: Store>(h: &Harness<S>) {
    let e = &h.engine;
    let (ann, ben, cat) = (engineer("ann"), engineer("ben"), engineer("cat"));
    for a in [&ann, &ben, &cat] {
        e.set_agent(a, true).await.expect("register");
    }
    let pushed = |inc: &itsmflow_engine::runtime::InstanceView| {
        inc.task()
            .and_then(|t| t.assigned_to.as_deref().map(str::to_string))
    };
    let first = logged(e, &network_incident()).await;
    assert_eq!(pushed(&first).as_deref(), Some("ann"));

    let mut sw = network_incident();
    sw.insert("category".into(), json!("software"));
    let inc = logged(e, &sw).await;
    assert_eq!(inc.queue(), Some("service_desk"));
    let moved = e
        .update(
            inc.id(),
            &fields(json!({"category": "network"})),
            None,
            &agent(),
            None,
        )
        .await
        .expect("reroute");
    assert_eq!(moved.queue(), Some("network"));
    assert_eq!(pushed(&moved).as_deref(), Some("ben"));
    assert_eq!(
        e.store().last_assignee("network").await.expect("last"),
        Some("ben".to_string())
    );

    let next = logged(e, &network_incident()).await;
    assert_eq!(pushed(&next).as_deref(), Some("cat"), "after ben, cat");
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
            async fn completions_follow_changes_made_since_the_claim() {
                let h = super::$backend().await;
                completion_after_changes_since_the_claim(&h).await;
                h.finish().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn field_updates_recompute_priority_and_routing() {
                let h = super::$backend().await;
                reprioritise_and_reroute(&h).await;
                h.finish().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn concurrent_changes_each_apply_whole_or_not_at_all() {
                let h = super::$backend().await;
                concurrent_changes(&h).await;
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
            async fn listing_filters_and_pages_newest_first() {
                let h = super::$backend().await;
                listing(&h).await;
                h.finish().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn push_assignment_round_robin_and_least_loaded() {
                let h = super::$backend().await;
                push_assignment(&h).await;
                h.finish().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_refused_claim_names_the_task_holder() {
                let h = super::$backend().await;
                refused_claims(&h).await;
                h.finish().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn instances_stay_on_their_definition_version() {
                let h = super::$backend().await;
                versions(&h).await;
                h.finish().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_stale_commit_conflicts_whatever_became_of_its_task() {
                let h = super::$backend().await;
                stale_commit_conflicts_whatever_became_of_its_task(&h).await;
                h.finish().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn renewing_or_releasing_no_task_is_no_task() {
                let h = super::$backend().await;
                renew_and_release_of_no_task(&h).await;
                h.finish().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn links_are_kept_once_each_and_listed_in_order() {
                let h = super::$backend().await;
                links_once_each_in_order(&h).await;
                h.finish().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn round_robin_counts_a_task_moved_into_the_queue() {
                let h = super::$backend().await;
                round_robin_after_a_moved_task(&h).await;
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

/// Changes committed at the same time are written by one statement (group commit), each still
/// applied whole or refused on its own, with its own answer: the concurrent scenario again,
/// checking that its changes did go together.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_writes_concurrent_changes_together() {
    let h = postgres().await;
    concurrent_changes(&h).await;
    let together = h.engine.store().changes_written_together();
    assert!(together >= 10, "{together} changes were written together");
    h.finish().await;
}

/// Instances created at the same time are written by one statement (group commit), each with
/// an id of its own, its first event and its task, just as when created alone. (One thread: the
/// creations are all waiting when the creator runs, so they go together.)
#[tokio::test]
async fn postgres_creates_concurrent_instances_together() {
    let h = postgres().await;
    let e = &h.engine;
    let alone = e
        .create("incident", &network_incident(), &caller())
        .await
        .expect("create alone");
    let created = std::sync::Mutex::new(Vec::new());
    let creations: Vec<Op<'_>> = (0..24)
        .map(|n| {
            let created = &created;
            Box::pin(async move {
                let mut fields = network_incident();
                fields.insert("title".into(), json!(format!("outage {n}")));
                let inc = e
                    .create("incident", &fields, &caller())
                    .await
                    .expect("create");
                created.lock().expect("results").push((n, inc));
            }) as Op<'_>
        })
        .collect();
    futures_join_all(creations).await;
    let created = created.into_inner().expect("results");
    let mut ids: Vec<InstanceId> = created.iter().map(|(_, inc)| inc.id()).collect();
    ids.push(alone.id());
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 25, "every instance has an id of its own");
    for (n, inc) in &created {
        let stored = e.instance(inc.id()).await.expect("stored");
        assert_eq!(stored.field("title"), Some(json!(format!("outage {n}"))));
        assert_eq!(stored.stage(), alone.stage());
        assert_eq!(stored.version(), alone.version());
        assert_eq!(
            inc.task().map(|t| (t.id, &t.queue, t.instance)),
            stored.task().map(|t| (t.id, &t.queue, t.instance)),
            "the task answered is the one stored, for its own instance"
        );
        assert_eq!(inc.task().is_some(), alone.task().is_some());
        assert_eq!(
            e.events(inc.id()).await.expect("events").len(),
            e.events(alone.id()).await.expect("events").len()
        );
        assert!(e.verify(inc.id()).await.expect("verify"));
    }
    let together = e.store().instances_created_together();
    assert!(together >= 12, "{together} instances were created together");
    h.finish().await;
}

/// Instances read at the same time are read by one statement, each request answered with
/// its own instance and open task, and a missing instance with nothing, just as when read
/// alone. (One thread: the reads are all waiting when the reader runs, so they go together.)
#[tokio::test]
async fn postgres_reads_concurrent_instances_together() {
    let h = postgres().await;
    let e = &h.engine;
    let mut raised = Vec::new();
    for n in 0..12 {
        let mut fields = network_incident();
        fields.insert("title".into(), json!(format!("outage {n}")));
        raised.push(
            e.create("incident", &fields, &caller())
                .await
                .expect("create"),
        );
    }
    let missing = InstanceId(raised.iter().map(|i| i.id().0).max().unwrap_or(0) + 1000);
    let read = std::sync::Mutex::new(Vec::new());
    let reads: Vec<Op<'_>> = raised
        .iter()
        .map(|inc| inc.id())
        .chain([missing])
        .map(|id| {
            let read = &read;
            Box::pin(async move {
                let found = e.instance(id).await;
                read.lock().expect("results").push((id, found));
            }) as Op<'_>
        })
        .collect();
    futures_join_all(reads).await;
    for (id, found) in read.into_inner().expect("results") {
        if id == missing {
            assert!(
                matches!(found, Err(EngineError::InstanceNotFound(i)) if i == id),
                "{:?}",
                found.map(|v| v.id())
            );
            continue;
        }
        let found = found.expect("read");
        let raised = raised.iter().find(|i| i.id() == id).expect("raised");
        assert_eq!(found.id(), id);
        assert_eq!(found.field("title"), raised.field("title"));
        assert_eq!(
            found.task().map(|t| (t.id, t.instance)),
            raised.task().map(|t| (t.id, t.instance)),
            "each read gets its own instance's task"
        );
    }
    let together = e.store().instances_read_together();
    assert!(together >= 6, "{together} instances were read together");
    h.finish().await;
}

/// Many changes to one instance at once (which group commit keeps out of each other's
/// statements): each is written or refused as a conflict, the ones written make consecutive
/// versions, and the state is still the replay of its history.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_concurrent_changes_to_one_instance_each_apply_or_conflict() {
    let h = postgres().await;
    let e = &h.engine;
    let inc = logged(e, &network_incident()).await;
    let (id, first) = (inc.id(), inc.version());
    let comments: Vec<Op<'_>> = (0..12)
        .map(|n| {
            Box::pin(async move {
                match e.comment(id, &format!("note {n}"), &agent()).await {
                    Ok(after) => assert!(after.version() > first),
                    Err(EngineError::Store(StoreError::Conflict { id: other, .. })) => {
                        assert_eq!(other, id)
                    }
                    Err(other) => panic!("{other}"),
                }
            }) as Op<'_>
        })
        .collect();
    futures_join_all(comments).await;
    let now = e.instance(inc.id()).await.expect("instance");
    let events = e.events(inc.id()).await.expect("events");
    let written = (now.version() - inc.version()) as usize;
    assert!(written >= 1);
    assert_eq!(events.len(), now.version() as usize);
    let seqs: Vec<i64> = events.iter().map(|ev| ev.seq).collect();
    assert_eq!(seqs, (1..=now.version()).collect::<Vec<_>>());
    assert!(e.verify(inc.id()).await.expect("verify"));
    h.finish().await;
}

/// Agents asking for work at once are served by one statement, each getting what it would
/// have got asking alone: nobody gets a task pushed to someone else, and an agent with tasks
/// pushed to it still gets the first task it may take. (One thread: the requests are waiting
/// when the claimer runs, so they are served together.)
#[tokio::test]
async fn postgres_claims_made_together_leave_pushed_tasks_to_their_agent() {
    let h = postgres().await;
    let e = &h.engine;
    let (ann, ben) = (engineer("ann"), engineer("ben"));
    e.set_agent(&ann, true).await.expect("ann on shift");
    e.set_agent(&ben, true).await.expect("ben on shift");
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let inc = logged(e, &network_incident()).await;
        tasks.push(inc.task().expect("queued").clone());
    }
    let pushed: Vec<Option<&str>> = tasks.iter().map(|t| t.assigned_to.as_deref()).collect();
    assert_eq!(pushed, [Some("ann"), Some("ben"), Some("ann"), Some("ben")]);
    // Ben goes off shift: his two tasks are anyone's now, ann keeps hers.
    e.set_agent(&ben, false).await.expect("ben off shift");

    let claimers = [
        engineer("xia"),
        ann.clone(),
        engineer("yan"),
        engineer("zoe"),
    ];
    let got = std::sync::Mutex::new(Vec::new());
    let asks: Vec<Op<'_>> = claimers
        .iter()
        .map(|who| {
            let got = &got;
            Box::pin(async move {
                let task = e
                    .claim_next("network", who, TimeDelta::minutes(5))
                    .await
                    .expect("claim");
                got.lock()
                    .expect("results")
                    .push((who.name.to_string(), task.map(|t| t.id)));
            }) as Op<'_>
        })
        .collect();
    futures_join_all(asks).await;
    let got = got.into_inner().expect("results");
    let of = |name: &str| {
        got.iter()
            .find(|(who, _)| who == name)
            .and_then(|(_, t)| *t)
    };
    assert_eq!(
        of("ann"),
        Some(tasks[0].id),
        "her first pushed task comes first"
    );
    let mut others: Vec<_> = ["xia", "yan", "zoe"].into_iter().filter_map(of).collect();
    others.sort();
    assert_eq!(
        others,
        [tasks[1].id, tasks[3].id],
        "the two unpushed tasks, once each; ann's second one stays hers"
    );
    // The first request to reach the store may first return expired leases to their queues
    // (a round trip of its own), and so come alone; the other three always come together.
    let together = e.store().claims_made_together();
    assert!(together >= 3, "{together} claims were made together");
    h.finish().await;
}

/// Connections the server closed while they sat idle in the pool (a restart, a failover, a
/// proxy's idle timeout) are found out and replaced before a request gets one: the next
/// actions succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_replaces_connections_closed_while_idle() {
    let h = postgres().await;
    let e = &h.engine;
    let first = logged(e, &network_incident()).await;
    let url = h.cleanup.clone().expect("url");
    let admin = sqlx::PgPool::connect(&pg_admin_url()).await.expect("admin");
    let closed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
    )
    .bind(pg_database_name(&url))
    .fetch_all(&admin)
    .await
    .expect("terminate");
    admin.close().await;
    assert!(
        !closed.is_empty() && closed.iter().all(|c| *c),
        "{closed:?}"
    );
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;

    let again = e.instance(first.id()).await.expect("read after the close");
    assert_eq!(again.version(), first.version());
    let second = logged(e, &network_incident()).await;
    assert_eq!(second.stage(), "triage");
    h.finish().await;
}

// ---------------------------------------------------------------------------------------------
// Migrations 0004 (creators) and 0005 (wake-ups) on data written before them.

/// The migrations of one database before 0004, from the same files the stores embed.
async fn migrations_before_0004(database: &str) -> sqlx::migrate::Migrator {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(database);
    let mut migrator = sqlx::migrate::Migrator::new(dir.as_path())
        .await
        .expect("migrations");
    let before: Vec<_> = migrator
        .migrations
        .iter()
        .filter(|m| m.version < 4)
        .cloned()
        .collect();
    migrator.migrations = before.into();
    migrator
}

/// Rows as the stores wrote them before 0004: instance 1 created by carol (and commented on
/// by alice), instance 2 created by dave. Valid SQL for both databases.
const ROWS_BEFORE_0004: &str = r#"
INSERT INTO projects (hash, source, created_at) VALUES ('p', '{"files": []}', '2026-11-02T09:00:00.000000Z');
INSERT INTO definitions (process, version, hash, project_hash, published_at)
    VALUES ('incident', 1, 'h', 'p', '2026-11-02T09:00:00.000000Z');
INSERT INTO instances (definition_id, process, stage, fields, priority, queue, version, created_at, updated_at) VALUES
    (1, 'incident', 'new', '{}', NULL, NULL, 2, '2026-11-02T09:00:00.000000Z', '2026-11-02T09:01:00.000000Z'),
    (1, 'incident', 'new', '{}', NULL, NULL, 1, '2026-11-02T09:02:00.000000Z', '2026-11-02T09:02:00.000000Z');
INSERT INTO events (instance_id, seq, at, actor, kind, data, reason) VALUES
    (1, 1, '2026-11-02T09:00:00.000000Z', 'carol', 'created', '{}', NULL),
    (1, 2, '2026-11-02T09:01:00.000000Z', 'alice', 'commented', '{}', NULL),
    (2, 1, '2026-11-02T09:02:00.000000Z', 'dave', 'created', '{}', NULL);
INSERT INTO timers (instance_id, kind, what, step, cycle, due_at, fire_at) VALUES
    (1, 'escalation', 'resolve', 0, 0, 3000, 3000),
    (1, 'escalation', 'resolve', 1, 0, 2000, 9000),
    (1, 'breach', 'resolve', 0, 0, 4000, 4000);
"#;

/// Instance 1's timer rows become one wake-up: its earliest point (2000, leased until 9000),
/// claimable from the earliest `fire_at` (3000); instance 2 had none.
const WAKEUPS: &str = "SELECT instance_id, due_at, fire_at FROM wakeups ORDER BY instance_id";

fn migrated_wakeups() -> Vec<(i64, i64, i64)> {
    vec![(1, 2000, 3000)]
}

const CREATORS: &str = "SELECT id, created_by FROM instances ORDER BY id";

fn backfilled() -> Vec<(i64, Option<String>)> {
    vec![(1, Some("carol".into())), (2, Some("dave".into()))]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_migrations_fill_in_creators_and_wakeups() {
    let path = sqlite_path();
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true);
    let mut conn = sqlx::ConnectOptions::connect(&options)
        .await
        .expect("sqlite");
    migrations_before_0004("sqlite")
        .await
        .run(&mut conn)
        .await
        .expect("migrate to 0002");
    sqlx::raw_sql(ROWS_BEFORE_0004)
        .execute(&mut conn)
        .await
        .expect("old rows");
    let store = SqliteStore::open(&path, Arc::new(Catalog::default()))
        .await
        .expect("migrate to 0005");
    let creators: Vec<(i64, Option<String>)> = sqlx::query_as(CREATORS)
        .fetch_all(&mut conn)
        .await
        .expect("creators");
    assert_eq!(creators, backfilled());
    let wakeups: Vec<(i64, i64, i64)> = sqlx::query_as(WAKEUPS)
        .fetch_all(&mut conn)
        .await
        .expect("wakeups");
    assert_eq!(wakeups, migrated_wakeups());

    // A listing by creator reads the new index backwards: no table scan, no sort.
    let plan: Vec<(i64, i64, i64, String)> = sqlx::query_as(
        "EXPLAIN QUERY PLAN SELECT * FROM instances WHERE created_by = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3",
    )
    .fetch_all(&mut conn)
    .await
    .expect("plan");
    let plan: Vec<&str> = plan.iter().map(|p| p.3.as_str()).collect();
    assert!(
        plan.iter().any(|p| p.contains("instances_created_by"))
            && !plan.iter().any(|p| p.contains("TEMP B-TREE")),
        "{plan:?}"
    );
    drop(store);
    drop(conn);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_migrations_fill_in_creators_and_wakeups() {
    let url = pg_database().await;
    let pool = sqlx::PgPool::connect(&url).await.expect("postgres");
    migrations_before_0004("postgres")
        .await
        .run(&pool)
        .await
        .expect("migrate to 0002");
    sqlx::raw_sql(ROWS_BEFORE_0004)
        .execute(&pool)
        .await
        .expect("old rows");
    let store = PostgresStore::connect(&url, Arc::new(Catalog::default()))
        .await
        .expect("migrate to 0005");
    let creators: Vec<(i64, Option<String>)> = sqlx::query_as(CREATORS)
        .fetch_all(&pool)
        .await
        .expect("creators");
    assert_eq!(creators, backfilled());
    let wakeups: Vec<(i64, i64, i64)> = sqlx::query_as(WAKEUPS)
        .fetch_all(&pool)
        .await
        .expect("wakeups");
    assert_eq!(wakeups, migrated_wakeups());
    drop(store);
    pool.close().await;
    drop_pg_database(&url).await;
}
