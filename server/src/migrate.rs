//! `itsmflow migrate PLAN`: move a tenant's live tickets from one version of a process to
//! another, straight on the server's database (see `itsmflow_engine::runtime::migrate`). A
//! dry run by default: it lists every live ticket as it reads before and after, and writes
//! nothing; `--apply` moves them. A plan that does not check is refused before anything is
//! written, every problem named (exit 1).
//!
//! With a server running on the same database, prefer `POST /v1/migrations`: the server then
//! hears of the moved tickets' new timers at once, where from here it finds them at its next
//! look at the database.

use std::path::PathBuf;
use std::sync::Arc;

use itsmflow_engine::runtime::migrate::{ClockSide, Plan, Report, Side};
use itsmflow_engine::runtime::{Actor, Catalog, Engine, EngineError, SystemClock};
use itsmflow_engine::store::{Store, StoreError};

use crate::database::{Database, DEFAULT_TENANT};
use crate::identity::directory::TenantDirectory;
use crate::identity::store::{IdentityError, IdentityStore, OpenForTenant};
use crate::serve::tenants::{Backend, PostgresBackend, SqliteBackend};
use crate::web::standing::left;
use crate::{EXIT_PROBLEMS, EXIT_UNUSABLE};

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum MigrateFormat {
    Text,
    Json,
}

#[derive(clap::Args, Debug)]
pub struct MigrateArgs {
    /// The plan, a JSON file: `{"process", "from", "to", "stages", "clocks", "drop_fields",
    /// "set"}` (see docs/api.md, "Migrations").
    plan: PathBuf,
    /// The server's database: `sqlite://PATH` (or a path) or `postgres://…`.
    #[arg(
        long,
        visible_alias = "database-url",
        env = "ITSMFLOW_DATABASE_URL",
        default_value = "sqlite://itsmflow.db"
    )]
    database: String,
    #[arg(long, default_value = DEFAULT_TENANT)]
    tenant: String,
    /// Move the tickets; without it, only say what would happen.
    #[arg(long)]
    apply: bool,
    /// Who the tickets' histories say moved them.
    #[arg(long = "as", value_name = "USER", default_value = "migration")]
    user: String,
    #[arg(long, value_enum, default_value = "text")]
    format: MigrateFormat,
}

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error(transparent)]
    Open(#[from] OpenForTenant),
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot write the report as JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{0}")]
    Invalid(String),
}

/// Run the command; the exit code on success (1 when the plan was refused).
pub async fn run(args: MigrateArgs) -> u8 {
    match migrate(&args).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            EXIT_UNUSABLE
        }
    }
}

async fn migrate(args: &MigrateArgs) -> Result<u8, MigrateError> {
    let written = std::fs::read_to_string(&args.plan)
        .map_err(|e| MigrateError::Invalid(format!("cannot read {}: {e}", args.plan.display())))?;
    let plan: Plan = serde_json::from_str(&written).map_err(|e| {
        MigrateError::Invalid(format!(
            "{}:{}:{}: not a migration plan: {e}",
            args.plan.display(),
            e.line(),
            e.column()
        ))
    })?;
    let db = Database::parse(&args.database);
    let identities = IdentityStore::open_for_tenant(&db, &args.tenant).await?;
    let directory = Arc::new(TenantDirectory::new(identities, &args.tenant));
    let actor = Actor::new(args.user.as_str(), &[]);
    let catalog = Arc::new(Catalog::default());
    let outcome = match &db {
        Database::Sqlite(main) => {
            let backend = SqliteBackend { main: main.clone() };
            let store = backend.open(&args.tenant, catalog.clone()).await?;
            migrate_on(store, catalog, directory, &plan, &actor, args.apply).await
        }
        Database::Postgres(url) => {
            let backend = PostgresBackend {
                url: url.clone(),
                max_connections: 8,
            };
            let store = backend.open(&args.tenant, catalog.clone()).await?;
            migrate_on(store, catalog, directory, &plan, &actor, args.apply).await
        }
    };
    let report = match outcome {
        Ok(report) => report,
        Err(EngineError::MigrationRefused(problems)) => {
            match args.format {
                MigrateFormat::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({ "problems": problems }))?
                ),
                MigrateFormat::Text => {
                    for p in &problems {
                        println!("[{}] {}", p.code, p.message);
                    }
                    println!("the plan was refused; nothing was changed");
                }
            }
            return Ok(EXIT_PROBLEMS);
        }
        Err(e) => return Err(e.into()),
    };
    match args.format {
        MigrateFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        MigrateFormat::Text => print!("{}", text(&report)),
    }
    Ok(0)
}

/// Open the engine on the store (no scheduler: nothing fires here) and run the plan.
async fn migrate_on<S: Store>(
    store: S,
    catalog: Arc<Catalog>,
    directory: Arc<TenantDirectory>,
    plan: &Plan,
    actor: &Actor,
    apply: bool,
) -> Result<Report, EngineError> {
    let engine = Engine::open(store, catalog, Arc::new(SystemClock))
        .await?
        .with_directory(directory);
    engine.migrate(plan, actor, apply).await
}

/// The report for people: what moves where, then one line per ticket.
pub fn text(r: &Report) -> String {
    let mut out = String::new();
    let verb = match r.dry_run {
        true => "would move",
        false => "moved",
    };
    let count = match r.dry_run {
        true => r.tickets.len(),
        false => r.migrated,
    };
    out.push_str(&format!(
        "{} version {} to version {}: {verb} {count} live ticket{}\n",
        r.process,
        r.from,
        r.to,
        if count == 1 { "" } else { "s" }
    ));
    for t in &r.tickets {
        out.push_str(&format!(
            "  #{}: {} -> {}\n",
            t.instance,
            side(&t.before),
            side(&t.after)
        ));
    }
    if !r.skipped.is_empty() {
        let ids: Vec<String> = r.skipped.iter().map(|i| format!("#{i}")).collect();
        out.push_str(&format!(
            "left as they were (ended or moved meanwhile): {}\n",
            ids.join(", ")
        ));
    }
    if r.dry_run {
        out.push_str("dry run: nothing was changed (run again with --apply)\n");
    }
    out
}

/// `working (desk, P2; resolve 1h 30m left)`.
fn side(s: &Side) -> String {
    let mut parts = Vec::new();
    if let Some(q) = &s.queue {
        parts.push(q.clone());
    }
    if let Some(p) = &s.priority {
        parts.push(p.clone());
    }
    let clocks: Vec<String> = s.clocks.iter().map(clock).collect();
    match (parts.is_empty(), clocks.is_empty()) {
        (true, true) => s.stage.clone(),
        (false, true) => format!("{} ({})", s.stage, parts.join(", ")),
        (true, false) => format!("{} ({})", s.stage, clocks.join(", ")),
        (false, false) => format!("{} ({}; {})", s.stage, parts.join(", "), clocks.join(", ")),
    }
}

fn clock(c: &ClockSide) -> String {
    format!("{} {}", c.clock.as_str(), left(c.remaining_seconds))
}
