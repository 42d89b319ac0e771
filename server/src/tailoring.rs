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
    // comments are not carried over. One blank line between items, as a file would have.
    let printed: Vec<String> = items
        .into_iter()
        .map(|item| format::format("", &File { items: vec![item] }))
        .collect();
    print!("{}", printed.join("\n"));
    Ok(0)
}

#[derive(clap::Args)]
pub struct RebaseArgs {
    /// The client's files (its tailorings, and what else it declares).
    #[arg(required = true)]
    pub client_paths: Vec<PathBuf>,
    /// The standard library the client tailored.
    #[arg(long, required = true, num_args = 1.., value_name = "DIR")]
    pub from: Vec<PathBuf>,
    /// The standard library to carry the tailoring onto.
    #[arg(long, required = true, num_args = 1.., value_name = "DIR")]
    pub onto: Vec<PathBuf>,
    /// The client, when the files tailor for several.
    #[arg(long)]
    pub client: Option<String>,
    #[arg(long, value_enum, default_value = "text")]
    pub format: ReportFormat,
}

/// `itsmflow rebase`: each entry of a client's tailoring, judged against the standard library
/// it tailored and the one it is carried onto (applying, conflicting, obsolete), then the
/// client checked on the new library. Exit 1 when an entry conflicts or the check finds errors.
pub fn rebase(args: &RebaseArgs) -> Result<u8, files::LoadError> {
    let client_loaded = files::load(&args.client_paths)?;
    let (client_files, _) = check::parse_files(&client_loaded.sources);
    let clients = itsmflow_engine::check::tailor::clients(&client_files);
    let client = match (&args.client, clients.as_slice()) {
        (Some(c), known) if known.contains(c) => c.clone(),
        (None, [only]) => only.clone(),
        (_, known) => {
            eprintln!(
                "error: name the client to rebase with --client (the files tailor for: {})",
                if known.is_empty() {
                    "nobody".to_string()
                } else {
                    known.join(", ")
                }
            );
            return Ok(crate::EXIT_UNUSABLE);
        }
    };
    let (old, _) = check::parse_files(&files::load(&args.from)?.sources);
    let (new, _) = check::parse_files(&files::load(&args.onto)?.sources);
    let report = itsmflow_engine::check::rebase::rebase(&old, &new, &client_files, &client);

    // The client on the new library, as it would run.
    let mut together = args.onto.clone();
    together.extend(args.client_paths.iter().cloned());
    let loaded = files::load(&together)?;
    let errors: Vec<Diagnostic> = check::check_for(&loaded.sources, ClientChoice::Named(&client))
        .diagnostics
        .into_iter()
        .filter(Diagnostic::is_error)
        .collect();

    let conflicts = report
        .iter()
        .filter(|e| e.status == Status::Conflicting)
        .count();
    match args.format {
        ReportFormat::Text => {
            print!("{}", rebase_text(&client, &report, &client_loaded.sources));
            if !errors.is_empty() {
                println!("\non the new library, the client's processes do not check:");
                print_report(&loaded.sources, &errors, ReportFormat::Text);
            }
        }
        ReportFormat::Json => {
            let entries: Vec<serde_json::Value> = report
                .iter()
                .map(|e| {
                    let (file, line) = place(&client_loaded.sources, e.span);
                    serde_json::json!({
                        "kind": e.kind,
                        "name": e.item,
                        "entry": e.entry,
                        "status": e.status,
                        "reason": e.reason,
                        "before": e.before,
                        "now": e.now,
                        "file": file,
                        "line": line,
                    })
                })
                .collect();
            let doc = serde_json::json!({
                "client": client,
                "entries": entries,
                "summary": summary_json(&report),
                "check": itsmflow_dsl::diagnostic::to_json(&loaded.sources, &errors),
            });
            println!("{doc}");
        }
    }
    Ok(if conflicts > 0 || !errors.is_empty() {
        EXIT_PROBLEMS
    } else {
        0
    })
}

use itsmflow_engine::check::rebase::{EntryReport, Status};

/// The file and line of a span of the client's files.
fn place(sources: &itsmflow_dsl::Sources, span: itsmflow_dsl::ast::Span) -> (String, usize) {
    match sources.get(span.file) {
        Some(f) => (f.name.clone(), f.line_col(span.start as usize).0),
        None => (String::new(), 0),
    }
}

fn count(report: &[EntryReport], status: Status) -> usize {
    report.iter().filter(|e| e.status == status).count()
}

fn summary_json(report: &[EntryReport]) -> serde_json::Value {
    serde_json::json!({
        "applying": count(report, Status::Applying),
        "conflicting": count(report, Status::Conflicting),
        "obsolete": count(report, Status::Obsolete),
    })
}

fn rebase_text(client: &str, report: &[EntryReport], sources: &itsmflow_dsl::Sources) -> String {
    let mut out = format!("client {client}\n");
    let mut item = ("", "");
    for e in report {
        if (e.kind, e.item.as_str()) != item {
            item = (e.kind, &e.item);
            out.push_str(&format!("  {} {}\n", e.kind, e.item));
        }
        let (file, line) = place(sources, e.span);
        out.push_str(&format!(
            "    {:<12} {} ({file}:{line})",
            e.status.as_str(),
            e.entry
        ));
        if let Some(reason) = &e.reason {
            out.push_str(&format!(": {reason}"));
        }
        out.push('\n');
        if e.status == Status::Conflicting {
            let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "(none)".to_string());
            out.push_str(&format!("                 before: {}\n", show(&e.before)));
            out.push_str(&format!("                 now:    {}\n", show(&e.now)));
        }
    }
    out.push_str(&format!(
        "{} applying, {} conflicting, {} obsolete\n",
        count(report, Status::Applying),
        count(report, Status::Conflicting),
        count(report, Status::Obsolete)
    ));
    out
}
