//! Runtime throughput, each figure against a baseline measured in the same run.
//!
//! ```sh
//! cargo bench -p itsmflow-engine --bench runtime            # memory and SQLite
//! ITSMFLOW_BENCH_ONLY=memory|sqlite|postgres ...            # one part only
//! ITSMFLOW_BENCH_TASKS=20000 ...                            # PostgreSQL task count (5,000)
//! ITSMFLOW_BENCH_SECS=10 ...                                 # seconds per SQLite figure (3)
//! ITSMFLOW_BENCH_LIFECYCLES=5000 ...                         # per in-memory figure (50,000)
//! ITSMFLOW_BENCH_POSTGRES=postgres:///postgres?host=/var/run/postgresql \
//!     cargo bench -p itsmflow-engine --bench runtime        # and PostgreSQL
//! ```
//!
//! - in memory: full incident lifecycles per second (create, log, accept, resolve, close: three
//!   user tasks), against the 100,000/s goal and SpiffWorkflow's ~580/s reference; on one
//!   thread, and from concurrent loops on both cores, through one engine and through an engine
//!   per loop;
//! - SQLite, every acknowledged transition durable (`synchronous = FULL`): transitions per
//!   second from concurrent clients, against raw single-row autocommit inserts in WAL mode with
//!   `synchronous = FULL` and `NORMAL` on the same disk; and creations per second (an instance
//!   row and its first event, no task) from the same clients, against the same ceilings;
//! - PostgreSQL: claim + complete per second through the engine, against a bare
//!   `FOR UPDATE SKIP LOCKED` claim-and-finish loop on a plain table, same concurrency;
//! - approval votes against task completions, in memory and on SQLite, one after another on
//!   one thread: the time of a vote (ten approvers per level, the tenth vote deciding it) over
//!   the time of completing a claimed task (`ITSMFLOW_BENCH_ONLY=votes` for this part only);
//! - effects on linked tickets, in memory and on SQLite: the time of one problem action that
//!   resolves its N linked incidents (`then perform resolve on incidents`), against N resolve
//!   actions performed on N incidents one by one (`ITSMFLOW_BENCH_ONLY=effects`).

use std::path::PathBuf;

#[path = "../tests/support/mod.rs"]
mod support;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::processes;

use chrono::TimeDelta;
use itsmflow_engine::runtime::{Actor, Catalog, Engine, SystemClock};
use itsmflow_engine::store::memory::MemoryStore;
use itsmflow_engine::store::postgres::PostgresStore;
use itsmflow_engine::store::sqlite::{Durability, SqliteStore};
use itsmflow_engine::store::Store;
use serde_json::{json, Map, Value};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection};

// The allocator the `itsmflow` binary uses, set up as it does, so figures match production.
#[global_allocator]
static ALLOCATOR: itsmflow_engine::allocator::Allocator = itsmflow_engine::allocator::Allocator;

fn incident() -> Map<String, Value> {
    json!({"title": "VPN down", "caller": "carol", "service": "vpn", "category": "network",
           "impact": "medium", "urgency": "medium"})
    .as_object()
    .cloned()
    .expect("object")
}

async fn engine<S: Store>(store: S, catalog: Arc<Catalog>) -> Engine<S> {
    let e = Engine::open(store, catalog, Arc::new(SystemClock))
        .await
        .expect("open");
    e.publish(&processes()).await.expect("publish");
    e
}

fn temp_db(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("itsmflow_bench_{}_{name}.db", std::process::id()));
    remove_db(&p);
    p
}

fn remove_db(p: &std::path::Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", p.display()));
    }
}

/// The sum of what the spawned clients or workers counted.
async fn joined(handles: Vec<tokio::task::JoinHandle<u64>>) -> u64 {
    let mut total = 0;
    for h in handles {
        total += h.await.expect("a client panicked");
    }
    total
}

/// One incident from creation to closure; three user tasks (accept, resolve, close).
async fn lifecycle<S: Store>(
    e: &Engine<S>,
    agent: &Actor,
    caller: &Actor,
    fields: &Map<String, Value>,
    resolution: &Map<String, Value>,
) {
    let none = Map::new();
    let inc = e.create("incident", fields, caller).await.expect("create");
    e.perform(inc.id(), "log", &none, None, agent, None)
        .await
        .expect("log");
    let task = e
        .claim_next("network", agent, TimeDelta::minutes(10))
        .await
        .expect("claim")
        .expect("task");
    e.complete(task.id, task.token, "accept", &none, agent)
        .await
        .expect("accept");
    e.perform(inc.id(), "resolve", resolution, None, agent, None)
        .await
        .expect("resolve");
    e.perform(inc.id(), "close", &none, None, caller, None)
        .await
        .expect("close");
}

/// Lifecycles per in-memory figure: 50,000, or `ITSMFLOW_BENCH_LIFECYCLES` (fewer for runs
/// under an instruction counter such as `valgrind --tool=cachegrind`, whose counts do not
/// depend on what else the machine is doing).
fn lifecycles() -> usize {
    std::env::var("ITSMFLOW_BENCH_LIFECYCLES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(50_000)
}

/// An engine on a fresh in-memory store.
async fn in_memory() -> Engine<MemoryStore> {
    let catalog = Arc::new(Catalog::default());
    engine(MemoryStore::new(catalog.clone()), catalog).await
}

async fn bench_memory() {
    let e = in_memory().await;
    let agent = Actor::new("alice", &["agent", "network_engineer"]);
    let caller = Actor::new("carol", &["caller"]);
    let fields = incident();
    let resolution = json!({"resolution": "fixed"})
        .as_object()
        .cloned()
        .expect("object");
    for _ in 0..2_000 {
        lifecycle(&e, &agent, &caller, &fields, &resolution).await;
    }
    let n = lifecycles();
    let before = Process::now();
    let t = Instant::now();
    for _ in 0..n {
        lifecycle(&e, &agent, &caller, &fields, &resolution).await;
    }
    let rate = n as f64 / t.elapsed().as_secs_f64();
    let kept = Process::now().since(&before, n);
    println!("memory: {rate:>10.0} incident lifecycles/s (3 user tasks each, one thread, every instance kept)");
    println!("        {kept}");
    println!(
        "        {:>10.2}x the 100,000/s goal; {:.0}x SpiffWorkflow's ~580/s reference",
        rate / 100_000.0,
        rate / 580.0
    );
    drop(e);

    // A simulation that starts a fresh store every 5,000 tickets keeps its memory bounded; the
    // difference to the figure above is the cost of growing the heap for retained tickets: each
    // kept lifecycle leaves about 5 KB resident (printed above), memory the kernel must find,
    // zero and map. On the 2-core development VM that is 7-11 us per 4 KB page (a C probe
    // touching fresh anonymous memory, with or without huge pages), about 9-14 us per
    // lifecycle: the whole gap between ~120,000/s fresh (8 us each) and ~60,000/s kept. The
    // fresh stores reuse memory the allocator already holds (their growth prints as ~0).
    let per_round = 5_000;
    let rounds = lifecycles().div_ceil(per_round);
    let before = Process::now();
    let t = Instant::now();
    for _ in 0..rounds {
        let e = in_memory().await;
        for _ in 0..per_round {
            lifecycle(&e, &agent, &caller, &fields, &resolution).await;
        }
    }
    let rate = (rounds * per_round) as f64 / t.elapsed().as_secs_f64();
    let fresh = Process::now().since(&before, rounds * per_round);
    println!("memory: {rate:>10.0} incident lifecycles/s (a fresh store every {per_round} tickets, publish included)");
    println!("        {fresh}");
    println!("        {:>10.2}x the 100,000/s goal", rate / 100_000.0);
}

/// What the process has taken from the kernel so far (Linux; nothing elsewhere): the memory
/// the in-memory figures spend growing the heap, as against running the lifecycles.
struct Process {
    /// Minor page faults: each first touch of a page of fresh memory, which the kernel maps and
    /// zeroes (on a virtual machine, often with an exit to the host as well).
    faults: Option<u64>,
    /// Resident memory, bytes.
    resident: Option<u64>,
}

impl Process {
    fn now() -> Self {
        // /proc/self/stat: the fields after the command name (in parentheses, which may hold
        // spaces) start with the state; minflt is the tenth field of the line.
        let faults = std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|stat| {
                let (_, after) = stat.rsplit_once(')')?;
                after.split_whitespace().nth(7)?.parse().ok()
            });
        // /proc/self/statm: sizes in pages; the second is resident.
        let resident = std::fs::read_to_string("/proc/self/statm")
            .ok()
            .and_then(|statm| {
                let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
                Some(pages * 4096)
            });
        Process { faults, resident }
    }

    /// Page faults and resident growth since `before`, per lifecycle of `n`.
    fn since(&self, before: &Process, n: usize) -> String {
        let per = |now: Option<u64>, then: Option<u64>| {
            now.zip(then)
                .map(|(a, b)| a.saturating_sub(b) as f64 / n as f64)
        };
        match (
            per(self.faults, before.faults),
            per(self.resident, before.resident),
        ) {
            (Some(faults), Some(bytes)) => format!(
                "{faults:>10.2} page faults and {:.0} bytes of resident growth per lifecycle",
                bytes
            ),
            _ => "(page faults not measured on this system)".to_string(),
        }
    }
}

/// The same lifecycles from `clients` concurrent loops on every core: through one engine (what
/// a simulation running many tickets at once gets from the machine), then through an engine
/// per loop sharing one catalog (what it gets by splitting its tickets between engines, which
/// then share no store).
async fn bench_memory_parallel(clients: usize) {
    let one = Arc::new(in_memory().await);
    let shared = lifecycles_from_loops(&vec![one; clients]).await;
    println!("memory: {shared:>10.0} incident lifecycles/s ({clients} concurrent loops on 2 threads, one engine)");
    println!("        {:>10.2}x the 100,000/s goal", shared / 100_000.0);

    let catalog = Arc::new(Catalog::default());
    let mut engines = Vec::new();
    for _ in 0..clients {
        let store = MemoryStore::new(catalog.clone());
        engines.push(Arc::new(engine(store, catalog.clone()).await));
    }
    let split = lifecycles_from_loops(&engines).await;
    println!("memory: {split:>10.0} incident lifecycles/s ({clients} concurrent loops on 2 threads, an engine each, one catalog)");
    println!(
        "        {:>10.2}x the 100,000/s goal; {:.2}x one shared engine",
        split / 100_000.0,
        split / shared
    );
}

/// Lifecycles per second from one concurrent loop per engine given, after a warm-up. Each loop
/// claims its own ticket's task by id (the next in the queue may be another loop's).
async fn lifecycles_from_loops(engines: &[Arc<Engine<MemoryStore>>]) -> f64 {
    let loops = engines.len();
    let run = |count: usize| {
        let mut handles = Vec::new();
        for (c, e) in engines.iter().enumerate() {
            let e = e.clone();
            handles.push(tokio::spawn(async move {
                let agent = Actor::new("alice", &["agent", "network_engineer"]);
                let caller = Actor::new("carol", &["caller"]);
                let (fields, none) = (incident(), Map::new());
                let resolution = json!({"resolution": "fixed"})
                    .as_object()
                    .cloned()
                    .expect("object");
                let mine = count / loops + usize::from(c < count % loops);
                for _ in 0..mine {
                    let inc = e
                        .create("incident", &fields, &caller)
                        .await
                        .expect("create");
                    let id = inc.id();
                    let logged = e
                        .perform(id, "log", &none, None, &agent, None)
                        .await
                        .expect("log");
                    let queued = logged.task().expect("a task in network").id;
                    let task = e
                        .claim(queued, &agent, TimeDelta::minutes(10))
                        .await
                        .expect("claim");
                    e.complete(task.id, task.token, "accept", &none, &agent)
                        .await
                        .expect("accept");
                    e.perform(id, "resolve", &resolution, None, &agent, None)
                        .await
                        .expect("resolve");
                    e.perform(id, "close", &none, None, &caller, None)
                        .await
                        .expect("close");
                }
                mine as u64
            }));
        }
        handles
    };
    joined(run(2_000)).await;
    let t = Instant::now();
    let total = joined(run(lifecycles())).await;
    total as f64 / t.elapsed().as_secs_f64()
}

/// Raw single-row autocommit inserts: the ceiling for one durable commit at a time.
async fn raw_sqlite_commits(sync: SqliteSynchronous, secs: f64) -> f64 {
    let path = temp_db(&format!("raw_{sync:?}"));
    let mut conn = SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(sync)
        .connect()
        .await
        .expect("sqlite");
    sqlx::query("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
        .execute(&mut conn)
        .await
        .expect("table");
    let t = Instant::now();
    let mut n = 0u64;
    while t.elapsed().as_secs_f64() < secs {
        sqlx::query("INSERT INTO t (v) VALUES (?)")
            .bind("x")
            .execute(&mut conn)
            .await
            .expect("insert");
        n += 1;
    }
    let rate = n as f64 / t.elapsed().as_secs_f64();
    conn.close().await.expect("close");
    remove_db(&path);
    rate
}

async fn bench_sqlite(clients: usize, secs: f64) {
    let full = raw_sqlite_commits(SqliteSynchronous::Full, secs).await;
    let normal = raw_sqlite_commits(SqliteSynchronous::Normal, secs).await;
    println!("sqlite raw single-row commits, WAL: {full:>8.0}/s synchronous=FULL, {normal:>8.0}/s NORMAL");

    let path = temp_db("engine");
    let catalog = Arc::new(Catalog::default());
    let store = SqliteStore::open_with(&path, catalog.clone(), Durability::Full)
        .await
        .expect("sqlite");
    let e = Arc::new(engine(store, catalog).await);
    let agent = Actor::new("alice", &["agent", "network_engineer"]);
    // Each client owns one incident in `working` and moves it back and forth (ask / answer):
    // every transition rewrites the instance, appends history and closes or opens a task.
    let mut ids = Vec::new();
    for _ in 0..clients {
        let inc = e
            .create("incident", &incident(), &agent)
            .await
            .expect("create");
        e.perform(inc.id(), "log", &Map::new(), None, &agent, None)
            .await
            .expect("log");
        e.perform(inc.id(), "accept", &Map::new(), None, &agent, None)
            .await
            .expect("accept");
        ids.push(inc.id());
    }
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let start = Instant::now();
    let mut handles = Vec::new();
    for id in ids {
        let e = e.clone();
        let agent = agent.clone();
        handles.push(tokio::spawn(async move {
            let none = Map::new();
            let mut n = 0u64;
            while Instant::now() < deadline {
                e.perform(id, "ask", &none, None, &agent, None)
                    .await
                    .expect("ask");
                e.perform(id, "answer", &none, None, &agent, None)
                    .await
                    .expect("answer");
                n += 2;
            }
            n
        }));
    }
    let total = joined(handles).await;
    let rate = total as f64 / start.elapsed().as_secs_f64();
    println!(
        "sqlite engine, durable (FULL), {clients} clients: {rate:>8.0} transitions/s = {:.2}x the FULL ceiling, {:.2}x the NORMAL ceiling",
        rate / full,
        rate / normal
    );

    // Creation pays for every index on `instances` and `events`, which transitions mostly do
    // not: measured on its own.
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let start = Instant::now();
    let mut handles = Vec::new();
    for _ in 0..clients {
        let e = e.clone();
        let agent = agent.clone();
        handles.push(tokio::spawn(async move {
            let fields = incident();
            let mut n = 0u64;
            while Instant::now() < deadline {
                e.create("incident", &fields, &agent).await.expect("create");
                n += 1;
            }
            n
        }));
    }
    let total = joined(handles).await;
    let rate = total as f64 / start.elapsed().as_secs_f64();
    println!(
        "sqlite engine, durable (FULL), {clients} clients: {rate:>8.0} creations/s   = {:.2}x the FULL ceiling, {:.2}x the NORMAL ceiling",
        rate / full,
        rate / normal
    );
    drop(e);
    remove_db(&path);
}

async fn bench_postgres(url: &str, workers: usize, tasks: usize) {
    // Baseline: a plain table, claim with SKIP LOCKED, then mark done.
    // No check of connections at acquire: under this load none is idle long enough for the
    // store's pool to check it either, so both loops make the same round trips per statement.
    let pool = sqlx::postgres::PgPoolOptions::new()
        .test_before_acquire(false)
        .max_connections(workers as u32)
        .connect(url)
        .await
        .expect("postgres");
    for sql in [
        "DROP TABLE IF EXISTS bench_tasks",
        "CREATE TABLE bench_tasks (id BIGSERIAL PRIMARY KEY, queue TEXT NOT NULL, priority INT NOT NULL, state TEXT NOT NULL, claimed_by TEXT, token BIGINT NOT NULL DEFAULT 0)",
        "CREATE INDEX ON bench_tasks (queue, priority, id) WHERE state = 'open'",
    ] {
        sqlx::query(sql).execute(&pool).await.expect("setup");
    }
    sqlx::query("INSERT INTO bench_tasks (queue, priority, state) SELECT 'q', g % 5, 'open' FROM generate_series(1, $1) g")
        .bind(tasks as i64)
        .execute(&pool)
        .await
        .expect("fill");
    let start = Instant::now();
    let mut handles = Vec::new();
    for w in 0..workers {
        let pool = pool.clone();
        handles.push(tokio::spawn(async move {
            let me = format!("w{w}");
            let mut n = 0u64;
            loop {
                let id: Option<i64> = sqlx::query_scalar(
                    "WITH next AS (SELECT id FROM bench_tasks WHERE queue = 'q' AND state = 'open' ORDER BY priority, id LIMIT 1 FOR UPDATE SKIP LOCKED) \
                     UPDATE bench_tasks t SET state = 'claimed', claimed_by = $1, token = t.token + 1 FROM next WHERE t.id = next.id RETURNING t.id",
                )
                .bind(&me)
                .fetch_optional(&pool)
                .await
                .expect("claim");
                let Some(id) = id else { break n };
                sqlx::query("UPDATE bench_tasks SET state = 'done' WHERE id = $1 AND claimed_by = $2")
                    .bind(id)
                    .bind(&me)
                    .execute(&pool)
                    .await
                    .expect("done");
                n += 1;
            }
        }));
    }
    let total = joined(handles).await;
    let bare = total as f64 / start.elapsed().as_secs_f64();
    sqlx::query("DROP TABLE bench_tasks")
        .execute(&pool)
        .await
        .expect("drop");

    // The engine: the same number of triage tasks, claimed and completed (`cancel`).
    let db = format!("itsmflow_bench_{}", std::process::id());
    sqlx::query(&format!("DROP DATABASE IF EXISTS {db}"))
        .execute(&pool)
        .await
        .expect("drop db");
    sqlx::query(&format!("CREATE DATABASE {db}"))
        .execute(&pool)
        .await
        .expect("create db");
    let db_url = support::with_database(url, &db);
    let catalog = Arc::new(Catalog::default());
    let store = PostgresStore::connect_with(&db_url, catalog.clone(), workers as u32)
        .await
        .expect("store");
    let e = Arc::new(engine(store, catalog).await);
    let agent = Actor::new("alice", &["agent", "network_engineer"]);
    for _ in 0..tasks {
        let inc = e
            .create("incident", &incident(), &agent)
            .await
            .expect("create");
        e.perform(inc.id(), "log", &Map::new(), None, &agent, None)
            .await
            .expect("log");
    }
    let start = Instant::now();
    let mut handles = Vec::new();
    for w in 0..workers {
        let e = e.clone();
        handles.push(tokio::spawn(async move {
            let me = Actor::new(format!("w{w}"), &["agent", "network_engineer"]);
            let none = Map::new();
            let mut n = 0u64;
            while let Some(t) = e
                .claim_next("network", &me, TimeDelta::minutes(5))
                .await
                .expect("claim")
            {
                e.complete(t.id, t.token, "cancel", &none, &me)
                    .await
                    .expect("complete");
                n += 1;
            }
            n
        }));
    }
    let total = joined(handles).await;
    let rate = total as f64 / start.elapsed().as_secs_f64();
    println!("postgres bare SKIP LOCKED claim + finish, {workers} workers: {bare:>8.0}/s");
    println!(
        "postgres engine claim + complete,       {workers} workers: {rate:>8.0}/s = {:.2}x the bare loop (goal 0.70x)",
        rate / bare
    );
    drop(e);
    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
        .execute(&pool)
        .await;
}

/// Ten approvers must all approve; the tenth vote decides, and the ticket moves on to a
/// stage with a queue, whose task the completion baseline completes.
const VOTES: &str = r#"
role board
role agent
queue desk { members agent }
process change {
  fields { title: text required }
  stage draft initial
  stage approval
  stage work { queue desk }
  stage done final
  stage rejected final
  transition submit: draft -> approval
  transition finish: work -> done
  approval in approval {
    otherwise => all of role board
    on approve => work
    on reject => rejected
  }
}
"#;

/// Seconds per vote and per completion on `store`, from `tickets` tickets each way.
async fn votes_and_completions<S: Store>(
    store: S,
    catalog: Arc<Catalog>,
    tickets: usize,
) -> (f64, f64) {
    let board: Vec<String> = (0..10).map(|i| format!("member{i}")).collect();
    let dir = itsmflow_engine::runtime::StaticDirectory::new();
    dir.set(
        "board",
        &board.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let e = Engine::open(store, catalog, Arc::new(SystemClock))
        .await
        .expect("open")
        .with_directory(Arc::new(dir));
    let mut sources = itsmflow_dsl::Sources::new();
    sources.add("votes.itsm", VOTES);
    e.publish(&sources).await.expect("publish");
    let requester = Actor::new("rita", &[]);
    let agent = Actor::new("alice", &["agent"]);
    let voters: Vec<Actor> = board
        .iter()
        .map(|n| Actor::new(n.as_str(), &["board"]))
        .collect();
    let title = json!({"title": "t"}).as_object().cloned().expect("object");
    let none = Map::new();
    // In rounds, votes then completions, so both run on a store of the same size.
    let round = tickets.min(500);
    let (mut voting, mut completing) = (Duration::ZERO, Duration::ZERO);
    let mut done = 0;
    while done < tickets {
        let mut ids = Vec::with_capacity(round);
        for _ in 0..round {
            let c = e
                .create("change", &title, &requester)
                .await
                .expect("create");
            e.perform(c.id(), "submit", &none, None, &requester, None)
                .await
                .expect("submit");
            ids.push(c.id());
        }
        let t = Instant::now();
        for id in &ids {
            for v in &voters {
                e.vote(*id, true, None, None, None, v).await.expect("vote");
            }
        }
        voting += t.elapsed();
        let mut claimed = Vec::with_capacity(round);
        for _ in 0..round {
            let task = e
                .claim_next("desk", &agent, TimeDelta::minutes(10))
                .await
                .expect("claim")
                .expect("task");
            claimed.push(task);
        }
        let t = Instant::now();
        for task in &claimed {
            e.complete(task.id, task.token, "finish", &none, &agent)
                .await
                .expect("complete");
        }
        completing += t.elapsed();
        done += round;
    }
    let per_vote = voting.as_secs_f64() / (done * voters.len()) as f64;
    let per_completion = completing.as_secs_f64() / done as f64;
    (per_vote, per_completion)
}

async fn bench_votes() {
    let catalog = Arc::new(Catalog::default());
    let (vote, complete) =
        votes_and_completions(MemoryStore::new(catalog.clone()), catalog, 20_000).await;
    println!(
        "votes, memory: {:>8.1} µs per vote, {:>8.1} µs per task completion: a vote costs {:.2}x a completion",
        vote * 1e6,
        complete * 1e6,
        vote / complete
    );
    let path = temp_db("votes");
    let catalog = Arc::new(Catalog::default());
    let store = SqliteStore::open_with(&path, catalog.clone(), Durability::Full)
        .await
        .expect("sqlite");
    let (vote, complete) = votes_and_completions(store, catalog, 200).await;
    println!(
        "votes, sqlite: {:>8.1} µs per vote, {:>8.1} µs per task completion: a vote costs {:.2}x a completion",
        vote * 1e6,
        complete * 1e6,
        vote / complete
    );
    remove_db(&path);
}

/// A problem whose `resolve` resolves every incident it caused.
const EFFECTS: &str = r#"
role agent
queue desk { members agent }
process incident {
  fields { title: text required  resolution: text }
  links { caused_by: many problem }
  stage working initial { queue desk }
  stage resolved final
  transition resolve: working -> resolved by role agent requires resolution
}
process problem {
  fields { title: text required  root_cause: text }
  links { incidents: many incident via caused_by }
  stage open initial
  stage resolved final
  transition resolve: open -> resolved by role agent requires root_cause
    then perform resolve on incidents with { resolution: root_cause }
}
"#;

/// Seconds per problem resolve that resolves `n` linked incidents, and per `n` resolves done
/// one by one, over `rounds` of each.
async fn effects_and_actions<S: Store>(
    store: S,
    catalog: Arc<Catalog>,
    n: usize,
    rounds: usize,
) -> (f64, f64) {
    let e = Engine::open(store, catalog, Arc::new(SystemClock))
        .await
        .expect("open");
    let mut sources = itsmflow_dsl::Sources::new();
    sources.add("effects.itsm", EFFECTS);
    e.publish(&sources).await.expect("publish");
    let agent = Actor::new("alice", &["agent"]);
    let title = json!({"title": "t"}).as_object().cloned().expect("object");
    let cause = json!({"root_cause": "r"})
        .as_object()
        .cloned()
        .expect("object");
    let resolution = json!({"resolution": "r"})
        .as_object()
        .cloned()
        .expect("object");
    let (mut cascading, mut one_by_one) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..rounds {
        let p = e.create("problem", &title, &agent).await.expect("problem");
        let mut linked = Vec::with_capacity(n);
        let mut alone = Vec::with_capacity(n);
        for _ in 0..n {
            let i = e
                .create("incident", &title, &agent)
                .await
                .expect("incident");
            e.link(i.id(), p.id(), "caused_by", &agent)
                .await
                .expect("link");
            linked.push(i.id());
            alone.push(
                e.create("incident", &title, &agent)
                    .await
                    .expect("incident")
                    .id(),
            );
        }
        let t = Instant::now();
        e.perform(p.id(), "resolve", &cause, None, &agent, None)
            .await
            .expect("resolve the problem");
        cascading += t.elapsed();
        let t = Instant::now();
        for i in alone {
            e.perform(i, "resolve", &resolution, None, &agent, None)
                .await
                .expect("resolve");
        }
        one_by_one += t.elapsed();
    }
    (
        cascading.as_secs_f64() / rounds as f64,
        one_by_one.as_secs_f64() / rounds as f64,
    )
}

async fn bench_effects() {
    for n in [1, 10, 50] {
        let catalog = Arc::new(Catalog::default());
        let (cascade, alone) =
            effects_and_actions(MemoryStore::new(catalog.clone()), catalog, n, 400).await;
        println!(
            "effects, memory, {n:>2} linked: {:>8.1} µs for the problem's resolve, {:>8.1} µs for {n} resolves one by one: {:.2}x",
            cascade * 1e6,
            alone * 1e6,
            cascade / alone
        );
        let path = temp_db("effects");
        let catalog = Arc::new(Catalog::default());
        let store = SqliteStore::open_with(&path, catalog.clone(), Durability::Full)
            .await
            .expect("sqlite");
        let (cascade, alone) = effects_and_actions(store, catalog, n, 20).await;
        println!(
            "effects, sqlite, {n:>2} linked: {:>8.1} µs for the problem's resolve, {:>8.1} µs for {n} resolves one by one: {:.2}x",
            cascade * 1e6,
            alone * 1e6,
            cascade / alone
        );
        remove_db(&path);
    }
}

fn main() {
    itsmflow_engine::allocator::hold_freed_memory();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    // ITSMFLOW_BENCH_ONLY=memory|sqlite|postgres runs one part (for profiling).
    let only = std::env::var("ITSMFLOW_BENCH_ONLY").ok();
    let run = |part: &str| only.as_deref().is_none_or(|o| o == part);
    if run("memory") {
        // The in-memory lifecycle runs on one thread, as a simulation would.
        let single = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        single.block_on(bench_memory());
    }
    rt.block_on(async {
        if run("memory") {
            bench_memory_parallel(4).await;
        }
        if run("votes") {
            bench_votes().await;
        }
        if run("effects") {
            bench_effects().await;
        }
        if run("sqlite") {
            let secs = std::env::var("ITSMFLOW_BENCH_SECS")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(3.0);
            bench_sqlite(64, secs).await;
        }
        if !run("postgres") {
        } else if let Ok(url) = std::env::var("ITSMFLOW_BENCH_POSTGRES") {
            let tasks = std::env::var("ITSMFLOW_BENCH_TASKS")
                .ok()
                .and_then(|n| n.parse().ok())
                .unwrap_or(5_000);
            bench_postgres(&url, 16, tasks).await;
        } else {
            println!("postgres: skipped (set ITSMFLOW_BENCH_POSTGRES to a server URL to run it)");
        }
    });
}
