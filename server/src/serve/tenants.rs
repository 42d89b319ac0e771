//! One engine per tenant, each on storage of its own: the tenant's SQLite file, or its schema
//! in the PostgreSQL database. A request reaches only the engine of its token's tenant, so no
//! query can see another tenant's rows.
//!
//! Engines open on first use and stay open.

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use itsmflow_dsl::{Diagnostic, Sources};
use itsmflow_engine::model::Project;
use itsmflow_engine::runtime::{
    Catalog, Clock, Engine, EngineError, Published, Scheduler, SchedulerHandle,
};
use itsmflow_engine::store::postgres::PostgresStore;
use itsmflow_engine::store::sqlite::SqliteStore;
use itsmflow_engine::store::{Store, StoreError};
use tokio::sync::{Mutex, RwLock};

use super::events::{self, EventBus};
use super::fanout::Outbound;
use super::webhook::Webhook;
use crate::database::Database;
use crate::identity::directory::TenantDirectory;
use crate::identity::store::IdentityStore;

/// Opens the store of a tenant.
pub trait Backend: Send + Sync + 'static {
    type Store: Store;
    fn open(
        &self,
        tenant: &str,
        catalog: Arc<Catalog>,
    ) -> impl Future<Output = Result<Self::Store, StoreError>> + Send;
}

pub struct SqliteBackend {
    pub main: PathBuf,
}

impl Backend for SqliteBackend {
    type Store = SqliteStore;
    async fn open(&self, tenant: &str, catalog: Arc<Catalog>) -> Result<SqliteStore, StoreError> {
        SqliteStore::open(Database::sqlite_file(&self.main, tenant), catalog).await
    }
}

pub struct PostgresBackend {
    pub url: String,
    pub max_connections: u32,
}

impl Backend for PostgresBackend {
    type Store = PostgresStore;
    async fn open(&self, tenant: &str, catalog: Arc<Catalog>) -> Result<PostgresStore, StoreError> {
        if tenant != crate::database::DEFAULT_TENANT {
            // The schema name is built from a validated tenant name, never from free text.
            let pool = sqlx::PgPool::connect(&self.url).await?;
            let created = sqlx::query(&format!(
                "CREATE SCHEMA IF NOT EXISTS {}",
                Database::postgres_schema(tenant)
            ))
            .execute(&pool)
            .await;
            // Two nodes creating the same schema at once: one of them sees a unique violation.
            if let Err(e) = created {
                let exists: bool = sqlx::query_scalar(
                    "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)",
                )
                .bind(Database::postgres_schema(tenant))
                .fetch_one(&pool)
                .await?;
                if !exists {
                    return Err(e.into());
                }
            }
            pool.close().await;
        }
        PostgresStore::connect_with(
            &Database::postgres_url(&self.url, tenant),
            catalog,
            self.max_connections,
        )
        .await
    }
}

/// A tenant's engine, the scheduler firing its timers, and the live feed of its queues.
pub struct Tenant<S: Store> {
    pub name: String,
    pub engine: Arc<Engine<S>>,
    pub events: EventBus,
    /// Background work that stops with the server: the scheduler, and the tasks relaying
    /// firings to queue listeners and delivering notifications.
    scheduler: Mutex<Option<SchedulerHandle>>,
    helpers: Vec<tokio::task::JoinHandle<()>>,
    /// Clocks found past their target by this node's scheduler since it started.
    pub breaches: Arc<std::sync::atomic::AtomicU64>,
}

impl<S: Store> Tenant<S> {
    /// Timer points this node's scheduler fired since it started.
    pub async fn fired(&self) -> u64 {
        self.scheduler
            .lock()
            .await
            .as_ref()
            .map(|h| h.stats().fired)
            .unwrap_or(0)
    }

    /// Stop firing timers (the firing under way completes) and stop the helpers.
    pub async fn stop(&self) {
        if let Some(handle) = self.scheduler.lock().await.take() {
            handle.stop().await;
        }
        for h in &self.helpers {
            h.abort();
        }
    }
}

pub struct Tenants<B: Backend> {
    backend: B,
    /// Where each tenant's engine finds who holds which roles (its approvers).
    identities: IdentityStore,
    clock: Arc<dyn Clock>,
    open: RwLock<HashMap<String, Arc<Tenant<B::Store>>>>,
    /// Held while a tenant's engine opens, so two requests do not open it twice.
    opening: Mutex<()>,
    /// The standard definitions every new tenant starts with.
    standard: Option<Sources>,
    /// Where notifications are delivered, if anywhere.
    webhook: Option<Webhook>,
    /// Where queue events go for other nodes, when several share the database.
    fanout: Option<Outbound>,
    /// What became of each tenant's tailoring when the standard processes were last
    /// published to it by this node.
    tailorings: RwLock<HashMap<String, TailoringState>>,
    /// The standard library, checked once: every tenant without a tailoring publishes this
    /// same project (at start, all of them), so it is not checked again for each.
    standard_project: std::sync::OnceLock<Result<Arc<Project>, Vec<Diagnostic>>>,
}

/// Why the standard processes (with a tenant's tailoring) were not published to a tenant.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("the tenant's tailoring cannot be read: {0}")]
    Identity(#[from] crate::identity::store::IdentityError),
}

/// What became of a tenant's tailoring the last time the standard processes were published
/// to it.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum TailoringState {
    /// The tenant runs the standard processes with its tailoring applied.
    Applied { at: chrono::DateTime<chrono::Utc> },
    /// The standard processes with the tailoring do not check: the tenant keeps the versions
    /// it had, and these are the problems.
    NotApplied {
        at: chrono::DateTime<chrono::Utc>,
        diagnostics: serde_json::Value,
    },
}

/// The standard files, then the tenant's own under `tailoring/` (so a client's file never
/// takes the name of a standard one).
pub fn with_tailoring(standard: &Sources, files: &[(String, String)]) -> Sources {
    let mut sources = standard.clone();
    for (name, text) in files {
        sources.add(format!("tailoring/{name}"), text.clone());
    }
    sources
}

impl<B: Backend> Tenants<B> {
    pub fn new(
        backend: B,
        identities: IdentityStore,
        clock: Arc<dyn Clock>,
        standard: Option<Sources>,
        webhook: Option<Webhook>,
        fanout: Option<Outbound>,
    ) -> Self {
        Tenants {
            backend,
            identities,
            clock,
            open: RwLock::new(HashMap::new()),
            opening: Mutex::new(()),
            standard,
            webhook,
            fanout,
            tailorings: RwLock::new(HashMap::new()),
            standard_project: std::sync::OnceLock::new(),
        }
    }

    /// The engine of a tenant, opening it if needed. The caller has checked that the tenant
    /// exists.
    pub async fn get(&self, tenant: &str) -> Result<Arc<Tenant<B::Store>>, EngineError> {
        if let Some(t) = self.open.read().await.get(tenant) {
            return Ok(t.clone());
        }
        let _guard = self.opening.lock().await;
        if let Some(t) = self.open.read().await.get(tenant) {
            return Ok(t.clone());
        }
        let catalog = Arc::new(Catalog::default());
        let store = self.backend.open(tenant, catalog.clone()).await?;
        let directory = Arc::new(TenantDirectory::new(self.identities.clone(), tenant));
        let engine = Arc::new(
            Engine::open(store, catalog, self.clock.clone())
                .await?
                .with_directory(directory),
        );
        let events = EventBus::new(tenant, self.fanout.clone());
        let breaches = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let mut helpers = vec![
            tokio::spawn(events::relay(engine.task_events(), events.clone())),
            tokio::spawn(events::count_breaches(engine.firings(), breaches.clone())),
        ];
        if let Some(webhook) = &self.webhook {
            helpers.push(tokio::spawn(
                webhook.clone().deliver(tenant.to_string(), engine.clone()),
            ));
        }
        let scheduler = Scheduler::spawn(engine.clone());
        let t = Arc::new(Tenant {
            name: tenant.to_string(),
            engine,
            events,
            scheduler: Mutex::new(Some(scheduler)),
            helpers,
            breaches,
        });
        self.open
            .write()
            .await
            .insert(tenant.to_string(), t.clone());
        Ok(t)
    }

    /// Publish the standard definitions to a tenant, with its tailoring applied if it has
    /// one (unchanged processes keep their version). When they do not check, nothing is
    /// replaced: the tenant keeps the versions it had, and the problems are kept as its
    /// tailoring's state.
    pub async fn publish_standard(&self, tenant: &str) -> Result<Vec<Published>, PublishError> {
        let Some(standard) = &self.standard else {
            return Ok(Vec::new());
        };
        let tailoring = self.identities.tailoring(tenant).await?;
        let sources = match &tailoring {
            Some(t) => with_tailoring(standard, &t.files),
            None => standard.clone(),
        };
        let engine = &self.get(tenant).await?.engine;
        let result = match &tailoring {
            Some(_) => engine.publish(&sources).await,
            None => match self.standard_project(standard) {
                Ok(project) => engine.publish_checked(standard, project.clone()).await,
                Err(diagnostics) => Err(EngineError::InvalidDefinitions(diagnostics.clone())),
            },
        };
        if tailoring.is_some() {
            let at = self.clock.now();
            let state = match &result {
                Ok(_) => TailoringState::Applied { at },
                Err(EngineError::InvalidDefinitions(diagnostics)) => TailoringState::NotApplied {
                    at,
                    diagnostics: itsmflow_dsl::diagnostic::to_json(&sources, diagnostics),
                },
                // A storage failure: nothing to say about the tailoring itself.
                Err(_) => return result.map_err(PublishError::from),
            };
            self.tailorings
                .write()
                .await
                .insert(tenant.to_string(), state);
        } else {
            self.tailorings.write().await.remove(tenant);
        }
        Ok(result?)
    }

    /// The standard library's checked project (checked on first use).
    fn standard_project(&self, standard: &Sources) -> &Result<Arc<Project>, Vec<Diagnostic>> {
        self.standard_project.get_or_init(|| {
            let checked = itsmflow_engine::check(standard);
            checked.project.map(Arc::new).ok_or(checked.diagnostics)
        })
    }

    /// What became of the tenant's tailoring when the standard processes were last
    /// published to it by this node (`None`: it has none, or none was published since).
    pub async fn tailoring_state(&self, tenant: &str) -> Option<TailoringState> {
        self.tailorings.read().await.get(tenant).cloned()
    }

    /// The standard definitions, if the server publishes any.
    pub fn standard(&self) -> Option<&Sources> {
        self.standard.as_ref()
    }

    /// Stop every tenant's background work.
    pub async fn stop_all(&self) {
        for t in self.opened().await {
            t.stop().await;
        }
    }

    /// A tenant's engine if it is open on this node.
    pub async fn if_open(&self, tenant: &str) -> Option<Arc<Tenant<B::Store>>> {
        self.open.read().await.get(tenant).cloned()
    }

    /// The tenants whose engines are open now.
    pub async fn opened(&self) -> Vec<Arc<Tenant<B::Store>>> {
        self.open.read().await.values().cloned().collect()
    }
}
