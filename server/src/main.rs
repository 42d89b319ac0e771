//! The `itsmflow` command: check, format and draw process definitions, serve them over HTTP,
//! manage access tokens, and explain tickets.

mod database;
mod diff;
mod explain;
mod files;
mod identity;
mod migrate;
mod process_tests;
mod serve;
mod tailoring;
mod tokens;
mod web;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use itsmflow_dsl::ast::FileId;
use itsmflow_dsl::{diagnostic, format, parse, Diagnostic, Sources};

// mimalloc, as the engine's benchmarks measure it (`itsmflow_engine::allocator`).
#[global_allocator]
static ALLOCATOR: itsmflow_engine::allocator::Allocator = itsmflow_engine::allocator::Allocator;

/// Exit codes: 0 clean, 1 problems found, 2 unusable input.
pub(crate) const EXIT_PROBLEMS: u8 = 1;
pub(crate) const EXIT_UNUSABLE: u8 = 2;

#[derive(Parser)]
#[command(
    name = "itsmflow",
    version,
    about = "Service management processes as code"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum ReportFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum GraphFormat {
    Dot,
    Mermaid,
}

#[derive(Subcommand)]
enum Command {
    /// Check definitions and report every problem. A file is checked within the project of its
    /// directory; a directory is checked whole.
    Check {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        format: ReportFormat,
        /// Treat warnings as problems (exit 1).
        #[arg(long)]
        deny_warnings: bool,
        /// Check the project as this client runs it (its tailorings applied). Without it, a
        /// project that tailors for several clients is checked for each.
        #[arg(long)]
        client: Option<String>,
    },
    /// Print the definitions a client runs: the standard ones with the client's tailorings
    /// applied, as formatted language.
    Effective(tailoring::EffectiveArgs),
    /// Carry a client's tailoring onto a new standard library: each of its entries as still
    /// applying, conflicting (the library changed the same entry) or obsolete (the library
    /// now says the same), then the client checked on the new library.
    Rebase(tailoring::RebaseArgs),
    /// Compare two projects as they run, entry by entry (a plan of what changed): exit 0 when
    /// they are the same, 1 when they differ.
    Diff(diff::DiffArgs),
    /// Rewrite files in the canonical layout (comments are kept).
    Fmt {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Change nothing; list the files that are not formatted and exit 1 if any.
        #[arg(long)]
        check: bool,
    },
    /// Draw a process as a graph of stages and transitions.
    Graph {
        /// A file or directory of the project.
        path: PathBuf,
        /// The process to draw; defaults to the only process of the named file.
        #[arg(long)]
        process: Option<String>,
        #[arg(long, value_enum, default_value = "dot")]
        format: GraphFormat,
    },
    /// Run process tests (`test` items) on the in-memory engine, on virtual time.
    Test(process_tests::TestArgs),
    /// Serve the HTTP API (an embedded SQLite file by default).
    Serve(serve::ServeArgs),
    /// Create, list and revoke API tokens (directly in the database).
    Token(tokens::TokenArgs),
    /// Say why a ticket is as it is: priority, queue, clocks, approval and the actions a user
    /// may take (read from the database; no server needed).
    Explain(explain::ExplainArgs),
    /// Move live tickets from one version of a process to another, as a plan says (a dry run
    /// unless `--apply`; straight on the database).
    Migrate(migrate::MigrateArgs),
    /// Print the HTTP API's OpenAPI 3.1 document, as the server derives it from its code (what
    /// `server/openapi.json` holds and `/openapi.json` serves).
    Openapi,
}

fn main() -> ExitCode {
    itsmflow_engine::allocator::hold_freed_memory();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check {
            paths,
            format,
            deny_warnings,
            client,
        } => check(&paths, format, deny_warnings, client.as_deref()),
        Command::Effective(args) => tailoring::effective(&args),
        Command::Rebase(args) => tailoring::rebase(&args),
        Command::Diff(args) => return ExitCode::from(diff::run(&args)),
        Command::Fmt { paths, check } => fmt(&paths, check),
        Command::Graph {
            path,
            process,
            format,
        } => graph(&path, process.as_deref(), format),
        Command::Test(args) => process_tests::run(&args),
        Command::Serve(args) => return run_async(serve::serve(args)),
        Command::Token(args) => return run_async(tokens::run(args)),
        Command::Explain(args) => return run_async(explain::run(args)),
        Command::Migrate(args) => return migrate_command(args),
        Command::Openapi => {
            print!("{}", serve::openapi::document());
            Ok(0)
        }
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_UNUSABLE)
        }
    }
}

/// Run an async command to completion; its error is printed and exits 2.
/// `itsmflow migrate`, whose exit code says whether the plan was refused.
fn migrate_command(args: migrate::MigrateArgs) -> ExitCode {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => ExitCode::from(runtime.block_on(migrate::run(args))),
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            ExitCode::from(EXIT_UNUSABLE)
        }
    }
}

fn run_async<E: std::fmt::Display>(
    command: impl std::future::Future<Output = Result<(), E>>,
) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(EXIT_UNUSABLE);
        }
    };
    match runtime.block_on(command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_UNUSABLE)
        }
    }
}

pub(crate) fn print_report(sources: &Sources, diagnostics: &[Diagnostic], format: ReportFormat) {
    let out = match format {
        ReportFormat::Text => diagnostic::render_text(sources, diagnostics),
        ReportFormat::Json => {
            let mut s = diagnostic::to_json(sources, diagnostics).to_string();
            s.push('\n');
            s
        }
    };
    let _ = std::io::stdout().write_all(out.as_bytes());
}

fn check(
    paths: &[PathBuf],
    format: ReportFormat,
    deny_warnings: bool,
    client: Option<&str>,
) -> Result<u8, files::LoadError> {
    let loaded = files::load(paths)?;
    let diagnostics = tailoring::diagnostics(&loaded.sources, client);
    // A problem concerns the named files if it is in one of them or points into one (a name
    // declared again in a sibling file is the named file's problem too).
    let shown: Vec<Diagnostic> = diagnostics
        .into_iter()
        .filter(|d| {
            loaded.requested.contains(&d.span.file)
                || d.secondary
                    .iter()
                    .any(|(s, _)| loaded.requested.contains(&s.file))
        })
        .collect();
    print_report(&loaded.sources, &shown, format);
    let failed = shown.iter().any(|d| d.is_error() || deny_warnings);
    Ok(if failed { EXIT_PROBLEMS } else { 0 })
}

fn fmt(paths: &[PathBuf], check_only: bool) -> Result<u8, files::LoadError> {
    let mut targets = Vec::new();
    for p in paths {
        if p.is_dir() {
            targets.extend(files::itsm_files(p)?);
        } else if p.exists() {
            targets.push(p.clone());
        } else {
            return Err(files::LoadError::NotFound(p.clone()));
        }
    }
    let mut code = 0;
    for path in targets {
        let text = files::read_text(&path)?;
        let mut sources = Sources::new();
        let id = sources.add(path.display().to_string(), text.clone());
        let parsed = parse(id, &text);
        if parsed.has_errors() {
            print_report(&sources, &parsed.diagnostics, ReportFormat::Text);
            code = EXIT_PROBLEMS;
            continue;
        }
        let formatted = format::format(&text, &parsed.file);
        if formatted == text {
            continue;
        }
        if check_only {
            println!("{}: not formatted", path.display());
            code = EXIT_PROBLEMS;
        } else {
            write_atomically(&path, &formatted).map_err(|source| files::LoadError::Unreadable {
                path: path.clone(),
                source,
            })?;
            println!("{}: formatted", path.display());
        }
    }
    Ok(code)
}

/// Write to a temporary file beside `path` and rename it over: a crash leaves the old file or
/// the new one, never half of each.
fn write_atomically(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".itsmflow-fmt.tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

fn graph(
    path: &std::path::Path,
    process: Option<&str>,
    format: GraphFormat,
) -> Result<u8, files::LoadError> {
    let loaded = files::load(&[path.to_path_buf()])?;
    let checked = itsmflow_engine::check(&loaded.sources);
    let Some(project) = checked.project else {
        let errors: Vec<Diagnostic> = checked
            .diagnostics
            .into_iter()
            .filter(Diagnostic::is_error)
            .collect();
        print_report(&loaded.sources, &errors, ReportFormat::Text);
        return Ok(EXIT_PROBLEMS);
    };
    let name = match process {
        Some(n) => n.to_string(),
        None => match processes_in(&loaded.sources, &loaded.requested) {
            names if names.len() == 1 => names[0].clone(),
            names => {
                eprintln!(
                    "error: name the process to draw with --process (found: {})",
                    if names.is_empty() {
                        "none".to_string()
                    } else {
                        names.join(", ")
                    }
                );
                return Ok(EXIT_UNUSABLE);
            }
        },
    };
    let Some(p) = project.process(&name) else {
        let names: Vec<&str> = project.processes.iter().map(|p| p.name.as_str()).collect();
        eprintln!(
            "error: no process `{name}` (processes: {})",
            names.join(", ")
        );
        return Ok(EXIT_UNUSABLE);
    };
    let out = match format {
        GraphFormat::Dot => itsmflow_engine::graph::to_dot(&project, p),
        GraphFormat::Mermaid => itsmflow_engine::graph::to_mermaid(&project, p),
    };
    let _ = std::io::stdout().write_all(out.as_bytes());
    Ok(0)
}

/// Names of the processes declared in the requested files.
pub(crate) fn processes_in(
    sources: &Sources,
    requested: &std::collections::BTreeSet<FileId>,
) -> Vec<String> {
    let mut names = Vec::new();
    for id in requested {
        if let Some(f) = sources.get(*id) {
            for item in parse(*id, &f.text).file.items {
                if let itsmflow_dsl::ast::Item::Process(p) = item {
                    names.push(p.name.name);
                }
            }
        }
    }
    names
}
