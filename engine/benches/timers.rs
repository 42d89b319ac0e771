//! Scheduler lag: the wall time from a batch of timers falling due (the virtual clock moved past
//! them) to every one of them fired and committed, with 1,000 instances waiting for a timer in
//! the store against 1,000,000 waiting, measured in the same run. The scheduler claims and
//! sleeps by an index on the wake-ups' due time, so the lag must not grow with the waiting.
//!
//! ```sh
//! cargo bench -p itsmflow-engine --bench timers                  # SQLite
//! ITSMFLOW_BENCH_POSTGRES=postgres:///postgres?host=/var/run/postgresql \
//!     cargo bench -p itsmflow-engine --bench timers                  # and PostgreSQL
//! ITSMFLOW_BENCH_PENDING=100000 ...                              # the large case (1,000,000)
//! ```
//!
//! Each iteration creates a batch of tickets (not timed) whose automatic transition falls due
//! an hour later, moves the clock an hour, and times until the scheduler has settled: woken,
//! claimed the batch, fired each ticket in its own transaction (an `elapsed` event, the
//! transition, the wake-up deleted). The waiting wake-ups, due in the next century, are written
//! straight into the tables: one on each of as many closed tickets. Not polling while nothing is
//! due is shown
//! by the test `the_scheduler_does_not_poll` (engine/tests/timers.rs), which counts wake-ups.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use criterion::{criterion_group, criterion_main, Criterion};
use itsmflow_dsl::Sources;
use itsmflow_engine::runtime::{
    Actor, Catalog, Engine, InstanceId, ManualClock, Scheduler, SchedulerHandle,
};
use itsmflow_engine::store::postgres::PostgresStore;
use itsmflow_engine::store::sqlite::SqliteStore;
use itsmflow_engine::store::Store;
use serde_json::Map;

#[global_allocator]
static ALLOCATOR: itsmflow_engine::allocator::Allocator = itsmflow_engine::allocator::Allocator;

const PING: &str = r#"
process ping {
  stage open initial
  stage done final

  transition finish: open -> done after 1h
}
"#;

/// Tickets falling due together in one iteration.
const BATCH: usize = 100;

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0)
        .single()
        .expect("valid time")
}

fn pending_large() -> u64 {
    std::env::var("ITSMFLOW_BENCH_PENDING")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000)
}

struct Rig<S: Store> {
    engine: Arc<Engine<S>>,
    scheduler: SchedulerHandle,
    clock: Arc<ManualClock>,
}

impl<S: Store> Rig<S> {
    async fn open(store: S, catalog: Arc<Catalog>) -> (Self, InstanceId) {
        let clock = Arc::new(ManualClock::new(start()));
        let engine = Engine::open(store, catalog, clock.clone())
            .await
            .expect("open");
        let mut sources = Sources::new();
        sources.add("ping.itsm", PING);
        engine.publish(&sources).await.expect("publish");
        // The closed ticket whose copies the waiting wake-ups hang on.
        let holder = engine
            .create("ping", &Map::new(), &Actor::system())
            .await
            .expect("create")
            .id();
        let engine = Arc::new(engine);
        let scheduler = Scheduler::spawn(engine.clone());
        // Its own timer fires first, so every iteration fires exactly its batch.
        clock.advance(TimeDelta::hours(1));
        scheduler.settled().await;
        (
            Rig {
                engine,
                scheduler,
                clock,
            },
            holder,
        )
    }

    /// One batch: create it, move the clock past it, and time until it has fired.
    async fn lag(&self) -> Duration {
        let mut created = tokio::task::JoinSet::new();
        for _ in 0..BATCH {
            let e = self.engine.clone();
            created.spawn(async move {
                e.create("ping", &Map::new(), &Actor::system())
                    .await
                    .expect("create")
            });
        }
        while let Some(done) = created.join_next().await {
            done.expect("create");
        }
        self.scheduler.settled().await;
        let fired = self.scheduler.stats().fired;
        let began = Instant::now();
        self.clock.advance(TimeDelta::hours(1));
        self.scheduler.settled().await;
        let lag = began.elapsed();
        assert_eq!(
            self.scheduler.stats().fired - fired,
            BATCH as u64,
            "every timer of the batch fired"
        );
        lag
    }
}

/// `count` wake-ups, due a century from now, inserted in bulk: one on each of `count` copies
/// of `holder` (a closed ticket).
fn fill_sqlite(path: &std::path::Path, holder: InstanceId, count: u64) {
    let mut conn = rusqlite::Connection::open(path).expect("open");
    conn.busy_timeout(Duration::from_secs(30)).expect("timeout");
    let tx = conn.transaction().expect("begin");
    {
        let mut copy = tx
            .prepare(
                "INSERT INTO instances (definition_id, process, stage, fields, priority, queue, version, created_at, updated_at) \
                 SELECT definition_id, process, stage, fields, priority, queue, version, created_at, updated_at \
                 FROM instances WHERE id = ?1 RETURNING id",
            )
            .expect("prepare");
        let mut insert = tx
            .prepare("INSERT INTO wakeups (instance_id, due_at, fire_at) VALUES (?1, ?2, ?2)")
            .expect("prepare");
        let far = (start() + TimeDelta::days(36_500)).timestamp_micros();
        for i in 0..count as i64 {
            let id: i64 = copy
                .query_row(rusqlite::params![holder.0], |r| r.get(0))
                .expect("copy");
            insert
                .execute(rusqlite::params![id, far + i])
                .expect("insert");
        }
    }
    tx.commit().expect("commit");
    // Measure the steady state, not the checkpoint of a million-row write.
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE); ANALYZE")
        .expect("checkpoint");
}

async fn fill_postgres(url: &str, holder: InstanceId, count: u64) {
    let pool = sqlx::PgPool::connect(url).await.expect("pool");
    let far = (start() + TimeDelta::days(36_500)).timestamp_micros();
    sqlx::query(
        "WITH copies AS ( \
             INSERT INTO instances (definition_id, process, stage, fields, priority, queue, version, created_at, updated_at) \
             SELECT definition_id, process, stage, fields, priority, queue, version, created_at, updated_at \
             FROM instances, generate_series(1, $3) WHERE id = $1 RETURNING id) \
         INSERT INTO wakeups (instance_id, due_at, fire_at) \
         SELECT c.id, $2 + c.id, $2 + c.id FROM copies c",
    )
    .bind(holder.0)
    .bind(far)
    .bind(count as i64)
    .execute(&pool)
    .await
    .expect("fill");
    for table in ["instances", "wakeups"] {
        sqlx::query(&format!("VACUUM ANALYZE {table}"))
            .execute(&pool)
            .await
            .expect("analyze");
    }
    pool.close().await;
}

fn sqlite_rig(
    rt: &tokio::runtime::Runtime,
    pending: u64,
) -> (Rig<SqliteStore>, std::path::PathBuf) {
    let path = std::env::temp_dir().join(format!(
        "itsmflow_bench_timers_{}_{pending}.db",
        std::process::id()
    ));
    remove(&path);
    let (rig, holder) = rt.block_on(async {
        let catalog = Arc::new(Catalog::default());
        let store = SqliteStore::open(&path, catalog.clone())
            .await
            .expect("sqlite");
        Rig::open(store, catalog).await
    });
    fill_sqlite(&path, holder, pending);
    (rig, path)
}

fn remove(path: &std::path::Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

fn postgres_rig(
    rt: &tokio::runtime::Runtime,
    admin: &str,
    pending: u64,
) -> (Rig<PostgresStore>, String) {
    let name = format!("itsmflow_bench_timers_{}_{pending}", std::process::id());
    rt.block_on(async {
        let pool = sqlx::PgPool::connect(admin).await.expect("postgres");
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&pool)
            .await
            .expect("drop");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&pool)
            .await
            .expect("create");
        pool.close().await;
        let url = with_database(admin, &name);
        let catalog = Arc::new(Catalog::default());
        let store = PostgresStore::connect(&url, catalog.clone())
            .await
            .expect("postgres");
        let (rig, holder) = Rig::open(store, catalog).await;
        fill_postgres(&url, holder, pending).await;
        (rig, name)
    })
}

fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let server = base.rsplit_once('/').map(|(b, _)| b).unwrap_or(base);
    match query {
        Some(q) => format!("{server}/{name}?{q}"),
        None => format!("{server}/{name}"),
    }
}

fn bench(c: &mut Criterion) {
    // Before the runtime's threads start, as the binary does in `main`.
    itsmflow_engine::allocator::hold_freed_memory();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let sizes = [1_000, pending_large()];

    let mut group = c.benchmark_group(format!("timers/sqlite lag of {BATCH} due"));
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    for pending in sizes {
        let (rig, path) = sqlite_rig(&rt, pending);
        group.bench_function(format!("{pending} pending"), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        total += rig.lag().await;
                    }
                    total
                })
            })
        });
        rt.block_on(rig.scheduler.stop());
        drop(rig.engine);
        remove(&path);
    }
    group.finish();

    let Ok(admin) = std::env::var("ITSMFLOW_BENCH_POSTGRES") else {
        println!("postgres: skipped (set ITSMFLOW_BENCH_POSTGRES to a server URL to run it)");
        return;
    };
    let mut group = c.benchmark_group(format!("timers/postgres lag of {BATCH} due"));
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    for pending in sizes {
        let (rig, name) = postgres_rig(&rt, &admin, pending);
        group.bench_function(format!("{pending} pending"), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        total += rig.lag().await;
                    }
                    total
                })
            })
        });
        rt.block_on(async {
            rig.scheduler.stop().await;
            drop(rig.engine);
            if let Ok(pool) = sqlx::PgPool::connect(&admin).await {
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&pool)
                    .await;
            }
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
