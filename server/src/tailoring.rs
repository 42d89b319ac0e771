//! The CLI's view of tailoring: checking a project for its clients, and printing the
//! definitions a client runs (`itsmflow effective`).

use std::path::PathBuf;

use itsmflow_dsl::ast::{File, Item};
use itsmflow_dsl::{format, Diagnostic};
use itsmflow_engine::check::{self, ClientChoice};

use crate::{files, print_report, ReportFormat, EXIT_PROBLEMS};

#[derive(clap::Args)]
pub struct EffectiveArgs {
    /// Files or directories of the project: the standard definitions and the client's
    /// tailorings.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// The client whose tailorings apply (needed when the project tailors for several).
    #[arg(long)]
    pub client: Option<String>,
    /// Print only this process.
    #[arg(long)]
    pub process: Option<String>,
}

/// Which client a command is for: the one named, else the project's only one.
pub fn choice(client: Option<&str>) -> ClientChoice<'_> {
    match client {
        Some(c) => ClientChoice::Named(c),
        None => ClientChoice::Auto,
    }
}

/// The diagnostics of checking a project: for the named client, or (without one) as the
/// standard processes and for every client the project tailors for.
pub fn diagnostics(sources: &itsmflow_dsl::Sources, client: Option<&str>) -> Vec<Diagnostic> {
    match client {
        Some(c) => check::check_for(sources, ClientChoice::Named(c)).diagnostics,
        None if !check::clients(sources).is_empty() => check::check_every_client(sources),
        None => check::check(sources).diagnostics,
    }
}

/// `itsmflow effective`: the project as the client runs it, as formatted language. Nothing is
/// printed for a project with errors (they are reported instead, and the exit code is 1).
pub fn effective(args: &EffectiveArgs) -> Result<u8, files::LoadError> {
    let loaded = files::load(&args.paths)?;
    let client = choice(args.client.as_deref());
    if let Some(c) = args.client.as_deref() {
        let known = check::clients(&loaded.sources);
        if !known.iter().any(|k| k == c) {
            eprintln!(
                "error: the project has no tailoring for client `{c}` (it has: {})",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            );
            return Ok(EXIT_PROBLEMS);
        }
    }
    let checked = check::check_for(&loaded.sources, client);
    let errors: Vec<Diagnostic> = checked
        .diagnostics
        .into_iter()
        .filter(Diagnostic::is_error)
        .collect();
    if !errors.is_empty() {
        print_report(&loaded.sources, &errors, ReportFormat::Text);
        return Ok(EXIT_PROBLEMS);
    }
    let mut ignored = Vec::new();
    let files = check::effective_files(&loaded.sources, client, &mut ignored);
    let items: Vec<Item> = files
        .into_iter()
        .flat_map(|f| f.items)
        .filter(|item| match (&args.process, item) {
            (Some(name), Item::Process(p)) => p.name.name == *name,
            (Some(_), _) => false,
            // The effective project is what runs: process tests are not part of it.
            (None, Item::Test(_)) => false,
            (None, _) => true,
        })
        .collect();
    if items.is_empty() {
        if let Some(name) = &args.process {
            eprintln!("error: no process `{name}` in the effective project");
            return Ok(EXIT_PROBLEMS);
        }
    }
    // Printed from the tree, whose pieces come from several files: without the source text,
    // comments and blank lines are not carried over.
    print!("{}", format::format("", &File { items }));
    Ok(0)
}
