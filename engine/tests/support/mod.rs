//! What the engine's tests and benchmarks share: the standard process library as a project.

#![allow(dead_code)] // each test binary uses its own part

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use itsmflow_dsl::Sources;
use itsmflow_engine::runtime::{
    Catalog, Directory, Engine, ManualClock, NoDirectory, Scheduler, SchedulerHandle,
};
use itsmflow_engine::store::Store;
use serde_json::{Map, Value};

/// Every `.itsm` file of `processes/`, sorted, as one project.
pub fn processes() -> Sources {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../processes");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("processes/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "itsm"))
        .collect();
    files.sort();
    let mut sources = Sources::new();
    for f in files {
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        sources.add(name, std::fs::read_to_string(&f).expect("read"));
    }
    sources
}

/// One `.itsm` file, checked: its project, or a panic listing the errors.
pub fn checked_project(name: &str, text: &str) -> itsmflow_engine::model::Project {
    let mut sources = Sources::new();
    sources.add(name, text);
    let checked = itsmflow_engine::check(&sources);
    let errors: Vec<_> = checked
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    checked.project.expect("checked")
}

/// A JSON object literal as a field map.
pub fn fields(v: Value) -> Map<String, Value> {
    v.as_object().cloned().expect("object")
}

/// A PostgreSQL URL with its database replaced by `name` (query parameters kept).
pub fn with_database(url: &str, name: &str) -> String {
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

pub static COUNTER: AtomicU32 = AtomicU32::new(0);

pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

/// An engine with its scheduler.
pub struct Node<S: Store> {
    pub engine: Arc<Engine<S>>,
    pub scheduler: SchedulerHandle,
}

impl<S: Store> Node<S> {
    pub async fn open(
        store: S,
        catalog: Arc<Catalog>,
        clock: Arc<ManualClock>,
        sources: &Sources,
    ) -> Self {
        Self::open_with(store, catalog, clock, sources, Arc::new(NoDirectory)).await
    }

    /// [`Node::open`], taking approvers from `directory`.
    pub async fn open_with(
        store: S,
        catalog: Arc<Catalog>,
        clock: Arc<ManualClock>,
        sources: &Sources,
        directory: Arc<dyn Directory>,
    ) -> Self {
        let engine = Engine::open(store, catalog, clock)
            .await
            .expect("open")
            .with_directory(directory);
        engine.publish(sources).await.expect("publish");
        let engine = Arc::new(engine);
        let scheduler = Scheduler::spawn(engine.clone());
        Node { engine, scheduler }
    }

    pub async fn stop(self) {
        self.scheduler.stop().await;
    }
}

/// Where a store keeps its data, to open it again.
#[derive(Clone)]
pub enum Place {
    Memory,
    Sqlite(PathBuf),
    Postgres(String),
}

pub fn pg_admin_url() -> String {
    std::env::var("ITSMFLOW_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres:///postgres?host=/var/run/postgresql".into())
}

pub async fn pg_database() -> String {
    let admin = pg_admin_url();
    let name = unique("itsmflow_test");
    let pool = sqlx::PgPool::connect(&admin).await.unwrap_or_else(|e| {
        panic!(
            "PostgreSQL is not reachable at {admin} ({e}); start it or set ITSMFLOW_TEST_POSTGRES"
        )
    });
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&pool)
        .await
        .expect("create database");
    pool.close().await;
    with_database(&admin, &name)
}

impl Place {
    pub async fn new(kind: &str) -> Place {
        match kind {
            "memory" => Place::Memory,
            "sqlite" => {
                Place::Sqlite(std::env::temp_dir().join(format!("{}.db", unique("itsmflow_test"))))
            }
            _ => Place::Postgres(pg_database().await),
        }
    }

    pub async fn remove(self) {
        match self {
            Place::Memory => {}
            Place::Sqlite(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            }
            Place::Postgres(url) => {
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
        }
    }
}

/// Run a scenario on each kind of store: memory, a fresh SQLite file, a fresh PostgreSQL
/// database. `$open(store, catalog)` makes the scenario's world (an engine on the store, with
/// whatever it needs), `$scenario(&world)` runs, `$close(world)` ends it.
#[allow(unused_macros)] // not every test binary uses it
macro_rules! on_every_store {
    ($name:ident, $scenario:ident, $open:ident, $close:ident) => {
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn memory() {
                let catalog = ::std::sync::Arc::new(::itsmflow_engine::runtime::Catalog::default());
                let store = ::itsmflow_engine::store::memory::MemoryStore::new(catalog.clone());
                let world = $open(store, catalog).await;
                $scenario(&world).await;
                $close(world).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let place = crate::support::Place::new("sqlite").await;
                let crate::support::Place::Sqlite(path) = &place else {
                    unreachable!()
                };
                let catalog = ::std::sync::Arc::new(::itsmflow_engine::runtime::Catalog::default());
                let store =
                    ::itsmflow_engine::store::sqlite::SqliteStore::open(path, catalog.clone())
                        .await
                        .expect("sqlite");
                let world = $open(store, catalog).await;
                $scenario(&world).await;
                $close(world).await;
                place.remove().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let place = crate::support::Place::new("postgres").await;
                let crate::support::Place::Postgres(url) = &place else {
                    unreachable!()
                };
                let catalog = ::std::sync::Arc::new(::itsmflow_engine::runtime::Catalog::default());
                let store = ::itsmflow_engine::store::postgres::PostgresStore::connect(
                    url,
                    catalog.clone(),
                )
                .await
                .expect("postgres");
                let world = $open(store, catalog).await;
                $scenario(&world).await;
                $close(world).await;
                place.remove().await;
            }
        }
    };
}
