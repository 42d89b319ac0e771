//! `itsmflow diff`: what differs between two projects as they run, entry by entry (the
//! comparison is `itsmflow_engine::diff`).
//!
//! Each side is loaded as `check` loads a project, checked, and taken as it runs (its client's
//! tailorings applied). Exit codes follow `diff`: 0 no differences, 1 differences, 2 trouble;
//! a side that does not check is trouble (2), not a difference, so that a script reading 1 as
//! "something changed" is never misled by a broken side.

use std::path::PathBuf;

use itsmflow_dsl::{diagnostic, Diagnostic};
use itsmflow_engine::check::{self, ClientChoice};
use itsmflow_engine::diff;

use crate::{files, ReportFormat, EXIT_PROBLEMS, EXIT_UNUSABLE};

#[derive(clap::Args)]
pub struct DiffArgs {
    /// Files or directories of the old project (a file stands for its directory's project).
    #[arg(required = true, value_name = "OLD")]
    old: Vec<PathBuf>,
    /// Files or directories of the new project, e.g. the standard processes and a client's
    /// tailorings.
    #[arg(long, required = true, num_args = 1.., value_name = "NEW")]
    to: Vec<PathBuf>,
    /// The client whose tailorings apply, on each side that has them (needed when a side
    /// tailors for several clients).
    #[arg(long)]
    client: Option<String>,
    /// Show only this process's changes (or its being added or removed).
    #[arg(long)]
    process: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: ReportFormat,
}

/// Why a diff could not be made: reported on standard error, exit 2.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    #[error(transparent)]
    Load(#[from] files::LoadError),
    #[error("the {side} project does not check:\n{report}")]
    DoesNotCheck { side: &'static str, report: String },
    #[error("neither project has a tailoring for client `{0}`")]
    UnknownClient(String),
    #[error("no process `{0}` in either project")]
    UnknownProcess(String),
    #[error("cannot write the diff as JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// `itsmflow diff`: prints the differences; 0 when there are none, 1 when there are, 2 when
/// they cannot be told (the error on standard error).
pub fn run(args: &DiffArgs) -> u8 {
    match compare(args) {
        Ok(out) => {
            print!("{}", out.text);
            if out.differs {
                EXIT_PROBLEMS
            } else {
                0
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            EXIT_UNUSABLE
        }
    }
}

/// The diff, printed, and whether there is a difference.
struct Output {
    text: String,
    differs: bool,
}

fn compare(args: &DiffArgs) -> Result<Output, DiffError> {
    let old = files::load(&args.old)?;
    let new = files::load(&args.to)?;
    if let Some(c) = args.client.as_deref() {
        let known = |s: &itsmflow_dsl::Sources| check::clients(s).iter().any(|k| k == c);
        if !known(&old.sources) && !known(&new.sources) {
            return Err(DiffError::UnknownClient(c.to_string()));
        }
    }
    let choice = match args.client.as_deref() {
        Some(c) => ClientChoice::Named(c),
        None => ClientChoice::Auto,
    };
    let old_files = effective(&old.sources, choice, "old")?;
    let new_files = effective(&new.sources, choice, "new")?;
    if let Some(name) = &args.process {
        let has = |files: &[itsmflow_dsl::ast::File]| {
            files
                .iter()
                .flat_map(|f| &f.items)
                .any(|i| matches!(i, itsmflow_dsl::ast::Item::Process(p) if p.name.name == *name))
        };
        if !has(&old_files) && !has(&new_files) {
            return Err(DiffError::UnknownProcess(name.clone()));
        }
    }
    // A queue the new side's client renames is shown renamed, not removed and added.
    let renames = check::queue_renames(&new.sources, choice);
    let mut found = diff::diff_renamed(&old_files, &new_files, &renames);
    if let Some(name) = &args.process {
        found = found.only_process(name);
    }
    let text = match args.format {
        ReportFormat::Text => found.to_text(),
        ReportFormat::Json => {
            let mut s = serde_json::to_string(&found)?;
            s.push('\n');
            s
        }
    };
    Ok(Output {
        text,
        differs: !found.is_empty(),
    })
}

/// One side's files as they run, once the side checks without errors. (A side with tailorings
/// of a client other than `--client` runs the standard processes: that client's tailorings
/// are left out, as `check --client` leaves them out.)
fn effective(
    sources: &itsmflow_dsl::Sources,
    choice: ClientChoice<'_>,
    side: &'static str,
) -> Result<Vec<itsmflow_dsl::ast::File>, DiffError> {
    let errors: Vec<Diagnostic> = check::check_for(sources, choice)
        .diagnostics
        .into_iter()
        .filter(Diagnostic::is_error)
        .collect();
    if !errors.is_empty() {
        let mut report = diagnostic::render_text(sources, &errors);
        // The report ends with its summary line; the error message adds its own line break.
        while report.ends_with('\n') {
            report.pop();
        }
        return Err(DiffError::DoesNotCheck { side, report });
    }
    let mut ignored = Vec::new();
    let files = check::effective_files(sources, choice, &mut ignored);
    Ok(files)
}
