//! The process editor: the tenant's published project, a text area per file; **Check** shows
//! the checker's diagnostics at their lines (and, with the page's script, as the user types,
//! through a small endpoint that answers the same lists as HTML); **Format** applies the
//! language's formatter; **Review and publish** first shows what publishing would change
//! (which processes get a new version, which files changed), then publishes through the API's
//! own publish, which refuses a project with errors and publishes nothing.
//!
//! Checking is the engine's `check`, the code `itsmflow check` and the API's publish run.
//! Every form posts the whole project (the files are small), so nothing is kept on the server
//! between steps.

use std::collections::HashMap;

use axum::http::StatusCode;
use axum::response::Response;
use itsmflow_dsl::{diagnostic, format, parse, Sources};
use itsmflow_engine::runtime::catalog::{process_hash, ProjectSource};
use itsmflow_engine::store::Store;
use maud::{html, Markup};
use serde_json::Value as Json;

use crate::serve::auth::Ctx;
use crate::serve::error::ApiError;
use crate::serve::routes::definitions;
use crate::serve::tenants::Backend;
use crate::web::csrf::{Fields, Posted};
use crate::web::layout::{self, Section, Viewer};
use crate::web::session::Signed;
use crate::web::{WebError, WebResult};

/// How many files a posted project may have (the form numbers them from 0).
const MAX_FILES: usize = 200;

/// The file a project starts with when none is published yet.
const FIRST_FILE: &str = "processes.itsm";

pub(super) type Files = Vec<(String, String)>;

/// The files of the form, `name.0`/`text.0`, `name.1`/`text.1`, …, in order. Browsers send a
/// text area's lines ending in CRLF; they are read back as written (LF), so an unedited file
/// is the same file and publishes no new version.
///
/// A file whose `remove.N` box is ticked is left out; a name in `new_file` adds an empty file.
fn files_of(form: &Fields) -> WebResult<Files> {
    let mut files = Vec::new();
    for i in 0..MAX_FILES {
        let Some(name) = form.get(&format!("name.{i}")) else {
            break;
        };
        if form.get(&format!("remove.{i}")).is_some() {
            continue;
        }
        let text = form.get(&format!("text.{i}")).unwrap_or_default();
        files.push((name.trim().to_string(), text.replace("\r\n", "\n")));
    }
    if let Some(new) = form
        .get("new_file")
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        if !files.iter().any(|(n, _)| n == new) {
            files.push((new.to_string(), String::new()));
        }
    }
    if files.is_empty() {
        return Err(WebError::BadForm(
            "the form has no files; reload the editor".into(),
        ));
    }
    Ok(files)
}

/// The files of the project published last (every publish that changed anything stored its
/// whole project), or none.
async fn published_files<S: Store>(ctx: &Ctx<S>) -> WebResult<Files> {
    let (stored, projects) = ctx
        .tenant
        .engine
        .store()
        .load_definitions()
        .await
        .map_err(ApiError::from)?;
    let Some(last) = stored.iter().max_by_key(|d| d.id) else {
        return Ok(Vec::new());
    };
    Ok(projects
        .into_iter()
        .find(|(hash, _)| *hash == last.project_hash)
        .map(|(_, source)| source.files)
        .unwrap_or_default())
}

/// The checker's diagnostics in the API's JSON form (1-based lines and columns, character
/// columns), and the project's processes when it checks without errors; or the refusal of a malformed
/// file list. Checking is work for the processor, not waiting: it runs on a blocking thread,
/// so a page checking as its user types holds up no other request.
async fn check(files: &Files) -> Result<(Json, Option<Vec<String>>), ApiError> {
    let sources = definitions::sources_of(files)?;
    tokio::task::spawn_blocking(move || {
        let checked = itsmflow_engine::check(&sources);
        (
            diagnostic::to_json(&sources, &checked.diagnostics),
            checked
                .project
                .map(|p| p.processes.iter().map(|p| p.name.clone()).collect()),
        )
    })
    .await
    .map_err(ApiError::internal)
}

fn count(report: &Json, key: &str) -> u64 {
    report.get(key).and_then(Json::as_u64).unwrap_or(0)
}

fn s(v: &Json, key: &str) -> String {
    v.get(key)
        .and_then(Json::as_str)
        .unwrap_or_default()
        .to_string()
}

fn num(v: &Json, key: &str) -> usize {
    v.get(key)
        .and_then(Json::as_u64)
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(0)
}

/// One diagnostic at its line: where, what, the line itself with the place marked, and help.
fn one_diagnostic(d: &Json, text: &str, file_index: usize) -> Markup {
    let severity = s(d, "severity");
    let (line, column) = (num(d, "line"), num(d, "column"));
    let source_line = text.lines().nth(line.saturating_sub(1)).unwrap_or_default();
    let end = if num(d, "end_line") == line {
        num(d, "end_column").max(column + 1)
    } else {
        source_line.chars().count() + 1
    };
    let marker = format!(
        "{}{}",
        " ".repeat(column.saturating_sub(1)),
        "^".repeat(end.saturating_sub(column).max(1))
    );
    let gutter = line.to_string();
    html! {
        li class=(format!("diagnostic diag-{severity}")) data-line=(line) {
            div {
                span class=(format!("sev sev-{severity}")) { (severity) }
                " "
                a.goto href=(format!("#text-{file_index}")) data-target=(format!("text-{file_index}"))
                    data-line=(line) data-column=(column) { "line " (line) ", column " (column) }
                " " code { (s(d, "code")) } ": " (s(d, "message"))
            }
            pre.excerpt aria-hidden="true" {
                (gutter) " | " (source_line) "\n"
                (" ".repeat(gutter.len())) " | " (marker)
                @let label = s(d, "label");
                @if !label.is_empty() { " " (label) }
            }
            @for r in d.get("related").and_then(Json::as_array).into_iter().flatten() {
                div.hint { (s(r, "message")) ": " (s(r, "file")) ":" (num(r, "line")) }
            }
            @if let Some(h) = d.get("help").and_then(Json::as_str) { div.hint { "help: " (h) } }
        }
    }
}

/// The report: a summary, then each file's diagnostics (each in `#diag-N`, which the page's
/// script replaces as the user types).
fn report_parts(files: &Files, report: Option<&Json>) -> (Markup, Vec<Markup>) {
    let Some(report) = report else {
        let per_file = (0..files.len())
            .map(|i| html! { div.file-diagnostics id=(format!("diag-{i}")) {} })
            .collect();
        return (
            html! { div #diag-summary role="status" aria-live="polite" {} },
            per_file,
        );
    };
    let (errors, warnings) = (count(report, "errors"), count(report, "warnings"));
    let all: Vec<&Json> = report
        .get("diagnostics")
        .and_then(Json::as_array)
        .map(|d| d.iter().collect())
        .unwrap_or_default();
    let summary = html! {
        div #diag-summary role="status" aria-live="polite" {
            @if errors == 0 && warnings == 0 {
                p.notice { "No problems found." }
            } @else {
                div class=(if errors > 0 { "error" } else { "notice" }) {
                    p {
                        (errors) " error" @if errors != 1 { "s" } ", "
                        (warnings) " warning" @if warnings != 1 { "s" } "."
                        @if errors > 0 { " A project with errors cannot be published." }
                    }
                    // Where they are, each a link to its place under its file.
                    ul.where {
                        @for d in &all {
                            @let file = s(d, "file");
                            @let at = files.iter().position(|(n, _)| *n == file);
                            li {
                                @if let Some(i) = at {
                                    a href=(format!("#diag-{i}")) { (file) ", line " (num(d, "line")) }
                                } @else { (file) }
                                ": " (s(d, "message"))
                            }
                        }
                    }
                }
            }
        }
    };
    let per_file = files
        .iter()
        .enumerate()
        .map(|(i, (name, text))| {
            let mine: Vec<&&Json> = all.iter().filter(|d| s(d, "file") == *name).collect();
            html! {
                div.file-diagnostics id=(format!("diag-{i}")) {
                    @if !mine.is_empty() {
                        ol.diagnostics aria-label=(format!("Problems in {name}")) {
                            @for d in mine { (one_diagnostic(d, text, i)) }
                        }
                    }
                }
            }
        })
        .collect();
    (summary, per_file)
}

fn viewer<S: Store>(signed: &Signed<S>) -> Viewer<'_> {
    Viewer {
        who: &signed.ctx.who,
        csrf: &signed.session.csrf,
    }
}

/// What the editor shows besides the files: the last check's report, a notice, an error, and
/// the results of a test run (`super::process_tests`).
#[derive(Default)]
pub(super) struct Extra<'a> {
    pub report: Option<&'a Json>,
    pub notice: Option<&'a str>,
    pub error: Option<&'a str>,
    pub tests: Option<Markup>,
}

/// The editor with `files`, and the report of the last check, if any.
fn editor<S: Store>(
    signed: &Signed<S>,
    status: StatusCode,
    files: &Files,
    report: Option<&Json>,
    notice: Option<&str>,
    error: Option<&str>,
) -> Response {
    editor_with(
        signed,
        status,
        files,
        Extra {
            report,
            notice,
            error,
            tests: None,
        },
    )
}

pub(super) fn editor_with<S: Store>(
    signed: &Signed<S>,
    status: StatusCode,
    files: &Files,
    extra: Extra,
) -> Response {
    let Extra {
        report,
        notice,
        error,
        tests,
    } = extra;
    let (summary, per_file) = report_parts(files, report);
    let troubled: Vec<String> = report
        .and_then(|r| r.get("diagnostics"))
        .and_then(Json::as_array)
        .map(|ds| ds.iter().map(|d| s(d, "file")).collect())
        .unwrap_or_default();
    let body = html! {
        p { a href="/processes" { "← Processes" } }
        h1 { "Edit the project" }
        p.hint {
            "The tenant's definitions, as published last. Check shows the checker's problems at "
            "their lines (also while you type); Format lays the files out as "
            code { "itsmflow fmt" } " does; Run tests runs the project's tests on the files as "
            "edited here; Review and publish shows what would change first."
        }
        @if let Some(n) = notice { p.notice role="status" #editor-notice { (n) } }
        @if let Some(e) = error { p.error role="alert" #editor-error { (e) } }
        (summary)
        @if let Some(t) = tests { (t) }
        form.editor method="post" action="/processes/edit/check" data-check-url="/processes/edit/diagnostics" {
            input type="hidden" name="csrf" value=(signed.session.csrf);
            @for (i, ((name, text), diags)) in files.iter().zip(per_file).enumerate() {
                // Files are folded but for those with problems (or a project of one file);
                // folded ones are still sent with every form.
                @let open = files.len() == 1 || troubled.contains(name) || text.is_empty();
                details.card.file open[open] {
                    summary { h2.inline id=(format!("file-{i}")) { code { (name) } } " " span.hint { (text.lines().count()) " lines" } }
                    input type="hidden" name=(format!("name.{i}")) value=(name);
                    label for=(format!("text-{i}")) { "Text of " (name) }
                    textarea.code id=(format!("text-{i}")) name=(format!("text.{i}")) spellcheck="false"
                        wrap="off" autocapitalize="off"
                        rows=(text.lines().count().clamp(8, 30) + 1)
                        aria-describedby=(format!("diag-{i}")) { (text) }
                    (diags)
                    div.check {
                        input type="checkbox" id=(format!("remove-{i}")) name=(format!("remove.{i}"));
                        label for=(format!("remove-{i}")) { "Remove " (name) " from the project" }
                    }
                }
            }
            section.card aria-labelledby="h-new-file" {
                h2 #h-new-file { "Add a file" }
                label for="new_file" { "File name" }
                input #new_file type="text" name="new_file" placeholder="e.g. access.itsm" autocomplete="off"
                    aria-describedby="new-file-hint";
                p.hint #new-file-hint { "A relative path ending in .itsm; it is added empty by the next Check." }
            }
            div.toolbar.sticky {
                button type="submit" #check { "Check" }
                button.secondary type="submit" #format formaction="/processes/edit/format" { "Format" }
                button.secondary type="submit" #run-tests formaction="/processes/edit/tests" { "Run tests" }
                button type="submit" #review formaction="/processes/edit/review" { "Review and publish…" }
            }
        }
    };
    layout::send(
        status,
        layout::page(
            "Edit the project",
            Some(&viewer(signed)),
            Section::Processes,
            body,
        ),
    )
}

/// `GET /processes/edit`.
pub async fn page<B: Backend>(signed: Signed<B::Store>) -> WebResult<Response> {
    signed.ctx.require_publisher()?;
    let mut files = published_files(&signed.ctx).await?;
    if files.is_empty() {
        files.push((FIRST_FILE.to_string(), String::new()));
    }
    Ok(editor(&signed, StatusCode::OK, &files, None, None, None))
}

/// The posted project, for a publisher only.
pub(super) fn posted_files<S: Store>(posted: &Posted<S>) -> WebResult<Files> {
    posted.signed.ctx.require_publisher()?;
    files_of(&posted.fields)
}

/// `POST /processes/edit/check`.
pub async fn check_page<B: Backend>(posted: Posted<B::Store>) -> WebResult<Response> {
    let files = posted_files(&posted)?;
    Ok(match check(&files).await {
        Ok((report, _)) => editor(
            &posted.signed,
            StatusCode::OK,
            &files,
            Some(&report),
            None,
            None,
        ),
        Err(e) => refused(&posted.signed, &files, &e),
    })
}

pub(super) fn refused<S: Store>(signed: &Signed<S>, files: &Files, e: &ApiError) -> Response {
    let message = format!("{}: {}", e.title, e.detail);
    editor(signed, e.status, files, None, None, Some(&message))
}

/// `POST /processes/edit/diagnostics`: the report alone, as HTML, for the page's script.
pub async fn diagnostics<B: Backend>(posted: Posted<B::Store>) -> WebResult<Response> {
    let files = posted_files(&posted)?;
    let (report, _) = check(&files).await?;
    let (summary, per_file) = report_parts(&files, Some(&report));
    let fragment = html! { (summary) @for f in per_file { (f) } };
    Ok(layout::send(StatusCode::OK, fragment))
}

/// `POST /processes/edit/format`: each file that parses, formatted; the others are left as
/// they are and their syntax errors shown (formatting a file with errors would change what
/// it says).
pub async fn format_page<B: Backend>(posted: Posted<B::Store>) -> WebResult<Response> {
    let mut files = posted_files(&posted)?;
    let mut unparsed = Vec::new();
    for (name, text) in files.iter_mut() {
        let mut one = Sources::new();
        let id = one.add(name.clone(), text.clone());
        let parsed = parse(id, text);
        if parsed.has_errors() {
            unparsed.push(name.clone());
            continue;
        }
        *text = format::format(text, &parsed.file);
    }
    Ok(match check(&files).await {
        Ok((report, _)) => {
            let notice = if unparsed.is_empty() {
                "Formatted. Nothing is published until you publish.".to_string()
            } else {
                format!(
                    "Formatted, except {} (syntax errors: fix them first).",
                    unparsed.join(", ")
                )
            };
            editor(
                &posted.signed,
                StatusCode::OK,
                &files,
                Some(&report),
                Some(&notice),
                None,
            )
        }
        Err(e) => refused(&posted.signed, &files, &e),
    })
}

/// Lines added and removed between two texts (by their longest common subsequence of lines).
fn line_changes(old: &str, new: &str) -> (usize, usize) {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    // The files are small; beyond this, a whole-file count is close enough.
    if a.len() * b.len() > 4_000_000 {
        return (b.len(), a.len());
    }
    let mut row = vec![0usize; b.len() + 1];
    for x in &a {
        let mut diagonal = 0;
        for (j, y) in b.iter().enumerate() {
            let up = row[j + 1];
            row[j + 1] = if x == y { diagonal + 1 } else { up.max(row[j]) };
            diagonal = up;
        }
    }
    let common = row[b.len()];
    (b.len() - common, a.len() - common)
}

/// What a publish of `files` would change.
struct Changes {
    /// `(process, current version, whether it gets a new one)`.
    processes: Vec<(String, Option<u32>, bool)>,
    /// Published processes the project no longer has (their versions stay).
    dropped: Vec<String>,
    /// `(file, what happened to it)`.
    files: Vec<(String, String)>,
}

fn changes<S: Store>(ctx: &Ctx<S>, files: &Files, old: &Files, processes: &[String]) -> Changes {
    // As the engine's publish decides: a process gets a new version when its hash, which
    // covers the whole project, differs from its latest version's.
    let project_hash = ProjectSource {
        files: files.clone(),
    }
    .hash();
    let catalog = ctx.tenant.engine.catalog();
    let processes: Vec<(String, Option<u32>, bool)> = processes
        .iter()
        .map(|p| {
            let current = catalog.latest(p);
            let new = current
                .as_ref()
                .is_none_or(|c| c.hash != process_hash(&project_hash, p));
            (p.clone(), current.map(|c| c.version), new)
        })
        .collect();
    let mut dropped: Vec<String> = catalog
        .definitions()
        .iter()
        .map(|d| d.process.clone())
        .filter(|p| !processes.iter().any(|(q, _, _)| q == p))
        .collect();
    dropped.dedup();
    let before: HashMap<&str, &str> = old.iter().map(|(n, t)| (n.as_str(), t.as_str())).collect();
    let mut file_changes: Vec<(String, String)> = files
        .iter()
        .map(|(name, text)| {
            let what = match before.get(name.as_str()) {
                None => format!("new, {} lines", text.lines().count()),
                Some(old) if old == text => "unchanged".to_string(),
                Some(old) => {
                    let (added, removed) = line_changes(old, text);
                    format!("{added} lines added, {removed} removed")
                }
            };
            (name.clone(), what)
        })
        .collect();
    for (name, _) in old {
        if !files.iter().any(|(n, _)| n == name) {
            file_changes.push((name.clone(), "removed".into()));
        }
    }
    Changes {
        processes,
        dropped,
        files: file_changes,
    }
}

/// `POST /processes/edit/review`: the check, and when it is clean, what publishing changes
/// with the button that publishes exactly these files.
pub async fn review<B: Backend>(posted: Posted<B::Store>) -> WebResult<Response> {
    let files = posted_files(&posted)?;
    let signed = &posted.signed;
    let (report, processes) = match check(&files).await {
        Ok(r) => r,
        Err(e) => return Ok(refused(signed, &files, &e)),
    };
    let Some(processes) = processes else {
        return Ok(editor(
            signed,
            StatusCode::UNPROCESSABLE_ENTITY,
            &files,
            Some(&report),
            None,
            Some("The project has errors: fix them first. Nothing was published."),
        ));
    };
    let old = published_files(&signed.ctx).await?;
    let c = changes(&signed.ctx, &files, &old, &processes);
    let any_new = c.processes.iter().any(|(_, _, new)| *new);
    let warnings = count(&report, "warnings");
    let body = html! {
        p { a href="/processes" { "← Processes" } }
        h1 { "Review and publish" }
        @if warnings > 0 {
            p.notice { "The project checks with " (warnings) " warning" @if warnings != 1 { "s" } "; it may be published." }
        } @else {
            p.notice { "The project checks clean." }
        }
        section.card aria-labelledby="h-what" {
            h2 #h-what { "What publishing changes" }
            @if !any_new {
                p #no-change { "Nothing: the project is the one published. Every process keeps its version." }
            }
            table #changes {
                caption { "Processes (a process's version covers the whole project it was published with)" }
                thead { tr { th scope="col" { "Process" } th scope="col" { "Now" } th scope="col" { "After publishing" } } }
                tbody {
                    @for (p, current, new) in &c.processes {
                        tr {
                            td { code { (p) } }
                            td { @match current { Some(v) => { "version " (v) }, None => { "not published" } } }
                            td {
                                @if *new { strong { "version " (current.map_or(1, |v| v + 1)) } }
                                @else { "unchanged" }
                            }
                        }
                    }
                }
            }
            @if !c.dropped.is_empty() {
                p.hint { "No longer in the project (their versions stay, and their tickets go on): " (c.dropped.join(", ")) "." }
            }
            h3 { "Files" }
            ul { @for (f, what) in &c.files { li { code { (f) } ": " (what) } } }
        }
        form method="post" action="/processes/edit/publish" {
            input type="hidden" name="csrf" value=(signed.session.csrf);
            @for (i, (name, text)) in files.iter().enumerate() {
                input type="hidden" name=(format!("name.{i}")) value=(name);
                // A text area keeps the text's line breaks, which a hidden input may not.
                textarea hidden name=(format!("text.{i}")) { (text) }
            }
            div.toolbar {
                button type="submit" #publish disabled[!any_new] { "Publish" }
                button.secondary type="submit" formaction="/processes/edit/check" { "Back to editing" }
            }
        }
    };
    Ok(layout::send(
        StatusCode::OK,
        layout::page(
            "Review and publish",
            Some(&viewer(signed)),
            Section::Processes,
            body,
        ),
    ))
}

/// `POST /processes/edit/publish`: the API's publish. When the engine refuses the project,
/// its diagnostics are shown in the editor and nothing is published.
pub async fn publish<B: Backend>(posted: Posted<B::Store>) -> WebResult<Response> {
    let files = posted_files(&posted)?;
    let signed = &posted.signed;
    match definitions::publish_files::<B>(&signed.ctx, &files).await {
        Ok(published) => {
            let new = published.iter().filter(|p| p.new).count();
            Ok(layout::see_other(&format!("/processes?published={new}")))
        }
        Err(e) => {
            let report = e.extra.get("diagnostics").cloned();
            let message = format!("{}: {}", e.title, e.detail);
            Ok(editor(
                signed,
                e.status,
                &files,
                report.as_ref(),
                None,
                Some(&message),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_added_and_removed() {
        assert_eq!(line_changes("a\nb\nc\n", "a\nb\nc\n"), (0, 0));
        assert_eq!(line_changes("a\nb\nc\n", "a\nx\nc\nd\n"), (2, 1));
        assert_eq!(line_changes("", "a\n"), (1, 0));
    }

    #[test]
    fn files_are_read_in_order_with_their_line_breaks() {
        let form = Fields::parse(b"csrf=x&name.0=a.itsm&text.0=one%0D%0Atwo&name.1=b.itsm&text.1=")
            .unwrap();
        let files = files_of(&form).unwrap();
        assert_eq!(
            files,
            vec![
                ("a.itsm".to_string(), "one\ntwo".to_string()),
                ("b.itsm".to_string(), String::new())
            ]
        );
        assert!(files_of(&Fields::parse(b"csrf=x").unwrap()).is_err());
        let form = Fields::parse(
            b"name.0=a.itsm&text.0=x&remove.0=on&name.1=b.itsm&text.1=y&new_file=c.itsm",
        )
        .unwrap();
        assert_eq!(
            files_of(&form).unwrap(),
            vec![
                ("b.itsm".to_string(), "y".to_string()),
                ("c.itsm".to_string(), String::new())
            ]
        );
    }
}
