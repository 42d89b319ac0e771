//! `itsmflow serve`: the HTTP API over the engine.

pub mod app;
pub mod auth;
pub mod error;
pub mod events;
pub mod fanout;
pub mod metrics;
pub mod openapi;
pub mod request;
pub mod routes;
pub mod tenants;
pub mod webhook;
pub mod wire;

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use itsmflow_dsl::Sources;
use itsmflow_engine::runtime::{Clock, SystemClock};

use self::app::{App, Limits};
use self::tenants::{Backend, PostgresBackend, PublishError, SqliteBackend, Tenants};
use crate::database::{Database, DEFAULT_TENANT};
use crate::identity::store::IdentityStore;
use crate::identity::ROLE_ADMIN;

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "ITSMFLOW_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// `sqlite://PATH` (an embedded file, created if missing) or `postgres://…`.
    #[arg(
        long,
        env = "ITSMFLOW_DATABASE_URL",
        default_value = "sqlite://itsmflow.db"
    )]
    pub database_url: String,
    /// Directory of definitions published to the default tenant at start (and to every new
    /// tenant). Unchanged processes keep their version.
    #[arg(long, env = "ITSMFLOW_PROCESSES", default_value = "processes")]
    pub processes: PathBuf,
    /// Publish nothing at start; serve what was published before.
    #[arg(long)]
    pub no_processes: bool,
    /// Largest request body, in bytes.
    #[arg(long, env = "ITSMFLOW_MAX_BODY_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Largest page a list returns.
    #[arg(long, env = "ITSMFLOW_MAX_PAGE", default_value_t = 500)]
    pub max_page: u32,
    /// Requests taking longer than this many seconds are answered 503.
    #[arg(long, env = "ITSMFLOW_REQUEST_TIMEOUT", default_value_t = 30)]
    pub request_timeout: u64,
    /// Connections per tenant to PostgreSQL.
    #[arg(long, env = "ITSMFLOW_PG_CONNECTIONS", default_value_t = 16)]
    pub pg_connections: u32,
    /// Deliver notifications (escalations) by POSTing each, as JSON, to this http:// URL.
    #[arg(long, env = "ITSMFLOW_WEBHOOK_URL")]
    pub webhook_url: Option<String>,
    /// Log lines as JSON instead of text.
    #[arg(long, env = "ITSMFLOW_LOG_JSON")]
    pub log_json: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot open the database: {0}")]
    Identities(#[from] crate::identity::store::IdentityError),
    #[error("cannot open the engine: {0}")]
    Engine(#[from] itsmflow_engine::runtime::EngineError),
    #[error("cannot publish the standard processes: {0}")]
    Publish(#[from] tenants::PublishError),
    #[error("cannot read the definitions: {0}")]
    Files(#[from] crate::files::LoadError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Webhook(#[from] webhook::WebhookError),
    #[error("the server failed: {0}")]
    Io(#[from] std::io::Error),
}

fn init_logging(json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("ITSMFLOW_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

pub async fn serve(args: ServeArgs) -> Result<(), ServeError> {
    init_logging(args.log_json);
    let db = Database::parse(&args.database_url);
    let standard = if args.no_processes {
        None
    } else {
        Some(crate::files::load_project(&args.processes)?)
    };
    match &db {
        Database::Sqlite(path) => {
            let backend = SqliteBackend { main: path.clone() };
            run(args, &db, backend, standard).await
        }
        Database::Postgres(url) => {
            let backend = PostgresBackend {
                url: url.clone(),
                max_connections: args.pg_connections,
            };
            run(args, &db, backend, standard).await
        }
    }
}

async fn run<B: Backend>(
    args: ServeArgs,
    db: &Database,
    backend: B,
    standard: Option<Sources>,
) -> Result<(), ServeError> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let identities = IdentityStore::open(db).await?;
    identities
        .create_tenant(DEFAULT_TENANT, clock.now())
        .await?;
    let webhook = args
        .webhook_url
        .as_deref()
        .map(webhook::Webhook::new)
        .transpose()?;
    // Nodes sharing a PostgreSQL database tell each other of queue events.
    let fanout = match &identities {
        IdentityStore::Postgres(pool) => Some((pool.clone(), fanout::start(pool.clone()))),
        IdentityStore::Sqlite(_) => None,
    };
    let tenants = Tenants::new(
        backend,
        identities.clone(),
        clock.clone(),
        standard,
        webhook,
        fanout.as_ref().map(|(_, out)| out.clone()),
    );
    // Every tenant runs the standard processes (each with its tailoring, if it has one):
    // a new standard library reaches them all at start.
    let mut every = identities.tenants().await?;
    if !every.iter().any(|t| t == DEFAULT_TENANT) {
        every.insert(0, DEFAULT_TENANT.to_string());
    }
    for tenant in &every {
        match tenants.publish_standard(tenant).await {
            Ok(published) => {
                for p in published {
                    tracing::info!(tenant = %tenant, process = %p.process, version = p.version, new = p.new, "published");
                }
            }
            // A definition that does not check never replaces a good one: keep serving what
            // was published before, and say why loudly.
            Err(PublishError::Engine(
                itsmflow_engine::runtime::EngineError::InvalidDefinitions(diagnostics),
            )) => {
                let tailoring = identities.tailoring(tenant).await.ok().flatten();
                let standard = tenants.standard().cloned().unwrap_or_default();
                let sources = match &tailoring {
                    Some(t) => tenants::with_tailoring(&standard, &t.files),
                    None => standard,
                };
                eprint!(
                    "{}",
                    itsmflow_dsl::diagnostic::render_text(&sources, &diagnostics)
                );
                tracing::error!(
                    tenant = %tenant,
                    dir = %args.processes.display(),
                    tailored = tailoring.is_some(),
                    "the definitions do not check; serving the versions published before"
                );
            }
            Err(e) => return Err(e.into()),
        }
    }
    let first_token = bootstrap_admin(&identities, clock.as_ref()).await?;
    let setup_link = first_password_link(&identities, clock.as_ref()).await?;
    // Open every tenant now rather than on its first request: its schema is brought up to
    // date, and a storage problem shows at start, not in the middle of someone's day.
    for tenant in identities.tenants().await? {
        tenants.get(&tenant).await?;
    }

    let app = Arc::new(App {
        identities,
        tenants,
        auth_cache: Default::default(),
        metrics: Default::default(),
        clock,
        shutdown: tokio::sync::watch::channel(false).0,
        throttle: Default::default(),
        limits: Limits {
            max_body: args.max_body_bytes,
            max_page: args.max_page,
            request_timeout: Duration::from_secs(args.request_timeout),
        },
    });
    if let Some((pool, outbound)) = fanout {
        tokio::spawn(fanout::listen(pool, outbound, app.clone()));
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|source| ServeError::Listen {
            addr: args.listen,
            source,
        })?;
    let addr = listener.local_addr()?;
    {
        // The first lines on stdout are for people (and scripts) starting the server.
        let mut out = std::io::stdout().lock();
        writeln!(out, "itsmflow listening on http://{addr}")?;
        if let Some(token) = first_token {
            writeln!(
                out,
                "administrator token (shown once, keep it safe): {token}\n\
                 try: curl -H 'Authorization: Bearer {token}' http://{addr}/v1/queues"
            )?;
        }
        if let Some(secret) = setup_link {
            writeln!(
                out,
                "set the administrator's password in a browser (once, within 24 hours): \
                 http://{addr}/setup/{secret}"
            )?;
        }
        out.flush()?;
    }
    tracing::info!(%addr, "serving");
    let stopping = app.shutdown.clone();
    // With each connection's address: failed sign-ins are counted per client address too.
    let service = app::router(app.clone()).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, service)
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            let _ = stopping.send(true);
        })
        .await?;
    // Requests are done; let the schedulers finish the firing under way.
    app.tenants.stop_all().await;
    tracing::info!("stopped");
    Ok(())
}

/// On the very first start, the default tenant gets an administrator `admin` and a token,
/// which is printed once.
async fn bootstrap_admin(
    identities: &IdentityStore,
    clock: &dyn Clock,
) -> Result<Option<String>, ServeError> {
    if !identities.users(DEFAULT_TENANT).await?.is_empty() {
        return Ok(None);
    }
    let now = clock.now();
    match identities
        .create_user(DEFAULT_TENANT, "admin", &[ROLE_ADMIN.to_string()], now)
        .await
    {
        Ok(_) => {}
        // Another node starting at the same moment created it; it prints the token.
        Err(crate::identity::store::IdentityError::Exists(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let (_, secret) = identities
        .create_token(
            DEFAULT_TENANT,
            "admin",
            Some("first administrator"),
            None,
            now,
        )
        .await?;
    Ok(Some(secret))
}

/// While no administrator of the default tenant has a password, each start offers a one-time
/// link to set the first administrator's (the web pages need one; the token printed at the
/// first start is for the API). The link is a 256-bit secret, kept hashed, spent on use.
async fn first_password_link(
    identities: &IdentityStore,
    clock: &dyn Clock,
) -> Result<Option<String>, ServeError> {
    if identities.admin_has_password(DEFAULT_TENANT).await? {
        return Ok(None);
    }
    let users = identities.users(DEFAULT_TENANT).await?;
    let Some(admin) = users
        .iter()
        .find(|u| u.roles.iter().any(|r| r == ROLE_ADMIN))
    else {
        return Ok(None);
    };
    let expires = clock.now() + chrono::TimeDelta::hours(24);
    Ok(Some(
        identities
            .create_setup_link(DEFAULT_TENANT, &admin.name, expires)
            .await?,
    ))
}

/// Ctrl-C or SIGTERM: stop accepting, finish the requests in flight, then exit.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
