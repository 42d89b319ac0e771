//! `itsmflow explain ID`: why a ticket is as it is (priority cell, routing rule, clocks,
//! approval, actions), read straight from the server's database without starting a server or
//! its scheduler: nothing is fired or written on the ticket.

use std::fmt::Write as _;
use std::sync::Arc;

use itsmflow_engine::runtime::explain::{
    ActionWhy, ApprovalWhy, ClockWhy, PrioritySource, PriorityWhy, QueueSource, QueueWhy,
    TargetSource,
};
use itsmflow_engine::runtime::{
    Actor, Catalog, Engine, EngineError, Explanation, InstanceId, SystemClock,
};
use itsmflow_engine::store::{Store, StoreError};

use crate::database::{Database, DEFAULT_TENANT};
use crate::identity::directory::TenantDirectory;
use crate::identity::store::{IdentityError, IdentityStore, OpenForTenant};
use crate::serve::tenants::{Backend, PostgresBackend, SqliteBackend};

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum ExplainFormat {
    Text,
    Json,
}

#[derive(clap::Args, Debug)]
pub struct ExplainArgs {
    /// The ticket's id.
    id: i64,
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
    /// Explain the actions for this user (their roles are read from the database unless
    /// `--role` gives them); without it, for someone holding no role.
    #[arg(long = "as", value_name = "USER")]
    user: Option<String>,
    /// A role of the user (repeat for several); replaces the roles the database gives them.
    #[arg(long = "role", value_name = "ROLE")]
    roles: Vec<String>,
    #[arg(long, value_enum, default_value = "text")]
    format: ExplainFormat,
}

#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    #[error(transparent)]
    Open(#[from] OpenForTenant),
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot write the explanation as JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{0}")]
    Invalid(String),
}

/// Who the actions are explained for when `--as` is not given: nobody in particular, holding
/// no role (so only actions open to anyone show as available).
const NOBODY: &str = "nobody";

pub async fn run(args: ExplainArgs) -> Result<(), ExplainError> {
    let db = Database::parse(&args.database);
    let identities = IdentityStore::open_for_tenant(&db, &args.tenant).await?;
    let actor = actor(&identities, &args).await?;
    let directory = Arc::new(TenantDirectory::new(identities, &args.tenant));
    let catalog = Arc::new(Catalog::default());
    let explanation = match &db {
        Database::Sqlite(main) => {
            let backend = SqliteBackend { main: main.clone() };
            let store = backend.open(&args.tenant, catalog.clone()).await?;
            explain_on(store, catalog, directory, args.id, &actor).await?
        }
        Database::Postgres(url) => {
            let backend = PostgresBackend {
                url: url.clone(),
                max_connections: 2,
            };
            let store = backend.open(&args.tenant, catalog.clone()).await?;
            explain_on(store, catalog, directory, args.id, &actor).await?
        }
    };
    let out = match args.format {
        ExplainFormat::Json => serde_json::to_string_pretty(&explanation)? + "\n",
        ExplainFormat::Text => text(&explanation),
    };
    print!("{out}");
    Ok(())
}

/// The user the actions are explained for, with the roles `--role` gives, else those the
/// tenant's identity tables give them.
async fn actor(identities: &IdentityStore, args: &ExplainArgs) -> Result<Actor, ExplainError> {
    let Some(user) = &args.user else {
        return Ok(Actor {
            name: NOBODY.into(),
            roles: args.roles.clone(),
        });
    };
    if !args.roles.is_empty() {
        return Ok(Actor {
            name: user.as_str().into(),
            roles: args.roles.clone(),
        });
    }
    match identities.user(&args.tenant, user).await? {
        Some(u) => Ok(Actor {
            name: u.name.as_str().into(),
            roles: u.roles,
        }),
        None => Err(ExplainError::Invalid(format!(
            "no user `{user}` in tenant `{}`; give their roles with --role",
            args.tenant
        ))),
    }
}

/// Open the engine on the store (no scheduler: nothing fires) and explain the ticket.
async fn explain_on<S: Store>(
    store: S,
    catalog: Arc<Catalog>,
    directory: Arc<TenantDirectory>,
    id: i64,
    actor: &Actor,
) -> Result<Explanation, ExplainError> {
    let engine = Engine::open(store, catalog, Arc::new(SystemClock))
        .await?
        .with_directory(directory);
    Ok(engine.explain(InstanceId(id), actor).await?)
}

/// The explanation for people: a short section per part, one line per fact.
pub fn text(x: &Explanation) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Ticket {} ({} v{}), stage {}, at {}",
        x.instance.0,
        x.process,
        x.definition_version,
        x.stage,
        x.at.to_rfc3339()
    );
    section(&mut out, "Priority", priority_lines(&x.priority));
    section(&mut out, "Queue", queue_lines(&x.queue));
    section(
        &mut out,
        "Clocks",
        x.clocks.iter().flat_map(clock_lines).collect(),
    );
    if let Some(ola) = &x.ola {
        section(&mut out, "Team target (OLA)", vec![ola_line(ola)]);
    }
    section(&mut out, "Approval", approval_lines(x.approval.as_ref()));
    let mut actions = vec![format!(
        "as {} ({})",
        x.actions.user,
        match x.actions.roles.is_empty() {
            true => "no roles".to_string(),
            false => format!("roles {}", x.actions.roles.join(", ")),
        }
    )];
    if x.actions.items.is_empty() {
        actions.push(format!("no action leaves stage {}", x.stage));
    }
    actions.extend(x.actions.items.iter().map(action_line));
    section(&mut out, "Actions", actions);
    out
}

fn section(out: &mut String, title: &str, lines: Vec<String>) {
    let _ = writeln!(out, "\n{title}");
    for line in lines {
        let _ = writeln!(out, "  {line}");
    }
}

fn priority_lines(p: &PriorityWhy) -> Vec<String> {
    let priority = p.priority.as_deref().unwrap_or("none");
    let reads = p
        .reads
        .iter()
        .map(|r| {
            format!(
                "{} = {}",
                r.field,
                r.value.as_deref().unwrap_or("(not set)")
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    let cell = || {
        format!(
            "table cell {} (row {}, column {}) gives {}",
            p.cell.map(|c| c.to_string()).unwrap_or_default(),
            p.row.as_deref().unwrap_or("-"),
            p.column.as_deref().unwrap_or("-"),
            p.table_priority.as_deref().unwrap_or("none")
        )
    };
    let mut lines = vec![format!("priority {priority}")];
    match p.source {
        PrioritySource::NoTable => lines.push("the process has no priority table".into()),
        PrioritySource::FieldsNotSet => {
            lines.push(format!("fields not set: the table reads {reads}"))
        }
        PrioritySource::Table => {
            lines.push(format!("the table reads {reads}"));
            lines.push(cell());
        }
        PrioritySource::Escalation => {
            lines.push(format!("the table reads {reads}"));
            lines.push(cell());
            lines.push("raised by escalation since".into());
        }
    }
    lines
}

fn queue_lines(q: &QueueWhy) -> Vec<String> {
    let queue = q.queue.as_deref().unwrap_or("none");
    let rule = || match (q.rule, q.condition.as_deref()) {
        (Some(n), Some(c)) => format!("routing rule {n} matches: {c}"),
        _ => "no routing rule matches".to_string(),
    };
    match q.source {
        QueueSource::None => vec!["no queue: the stage names none".into()],
        QueueSource::Stage => vec![format!("queue {queue}: the stage names it")],
        QueueSource::Routing => vec![format!("queue {queue}"), rule()],
        QueueSource::Escalation => vec![
            format!("queue {queue}: moved there by escalation"),
            format!("(by routing: {})", rule()),
        ],
    }
}

fn clock_lines(c: &ClockWhy) -> Vec<String> {
    let k = &c.clock;
    let from = match c.target_from {
        TargetSource::Priority => format!("priority {}", c.priority),
        TargetSource::Service => format!(
            "service {} for priority {}",
            c.service.as_deref().unwrap_or("?"),
            c.priority
        ),
    };
    let state = serde_json::to_value(k.state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let mut lines = vec![format!(
        "{}: target {} (of {from}) on {}; {state}, {} elapsed, {} remaining{}",
        k.clock.as_str(),
        k.target,
        c.calendar,
        duration(k.elapsed_seconds),
        duration(k.remaining_seconds),
        k.due_at
            .map(|d| format!(", due {}", d.to_rfc3339()))
            .unwrap_or_default()
    )];
    for p in &c.pauses {
        lines.push(format!(
            "  paused in {} from {} {} ({} business time)",
            p.stage,
            p.from.to_rfc3339(),
            match p.until {
                Some(u) => format!("to {}", u.to_rfc3339()),
                None => "until now".to_string(),
            },
            duration(p.business_seconds)
        ));
    }
    lines
}

fn ola_line(c: &itsmflow_engine::runtime::ola::OlaClock) -> String {
    let from = match c.tier {
        Some(n) => format!("row {} of tier {n}'s targets", c.row),
        None => format!("row {} of the queue's targets", c.row),
    };
    let state = serde_json::to_value(c.state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    format!(
        "queue {}: target {} ({from}) on {}; {state}, {} elapsed, {} remaining{}",
        c.queue,
        c.target,
        c.calendar,
        duration(c.elapsed_seconds),
        duration(c.remaining_seconds),
        c.due_at
            .map(|d| format!(", due {}", d.to_rfc3339()))
            .unwrap_or_default()
    )
}

fn approval_lines(a: Option<&ApprovalWhy>) -> Vec<String> {
    let Some(a) = a else {
        return vec!["the stage asks no approval".into()];
    };
    let mut lines = vec![a.explain.clone()];
    if let Some(level) = a.open_level {
        lines.push(format!(
            "level {level} of {} open{}",
            a.levels,
            a.requires
                .as_ref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        ));
    }
    if !a.waiting_for.is_empty() {
        lines.push(format!("waiting for {}", a.waiting_for.join(", ")));
    }
    lines
}

fn action_line(a: &ActionWhy) -> String {
    let automatic = a
        .automatic
        .as_ref()
        .map(|w| format!(" (the engine performs it {w})"))
        .unwrap_or_default();
    match a.available {
        true => format!("{} -> {}: available{automatic}", a.action, a.to),
        false => format!(
            "{} -> {}: not available: {}{automatic}",
            a.action,
            a.to,
            a.refusals
                .iter()
                .map(|r| r.message.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        ),
    }
}

/// Seconds as `1d 2h 3m` (negative: `-…`, past a target).
fn duration(seconds: i64) -> String {
    let sign = if seconds < 0 { "-" } else { "" };
    let s = seconds.unsigned_abs();
    let (d, h, m) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60);
    let mut parts = Vec::new();
    if d > 0 {
        parts.push(format!("{d}d"));
    }
    if h > 0 {
        parts.push(format!("{h}h"));
    }
    if m > 0 || parts.is_empty() {
        parts.push(format!("{m}m"));
    }
    format!("{sign}{}", parts.join(" "))
}
