//! **Run tests** in the process editor: the project's `test` items run on the project as
//! edited (the posted draft, not the published one), as `itsmflow test --coverage` runs them:
//! each test passed or failed with the failing step's line, expected and actual values, then
//! the coverage of each process. A project with errors runs nothing; its diagnostics are shown.
//!
//! Tests are work for the processor (each is a fresh in-memory engine on virtual time), so
//! they run on a blocking thread with a current-thread runtime of its own, never on the
//! server's executor. They are bounded: the draft is held to the editor's size limits (the
//! files the form may carry, the request body limit), at most [`RUNNING`] runs go at once on a
//! server, and a run is given [`TIME_LIMIT`]. Past it the page says so; the run's thread is
//! told to stop and keeps its slot until it does, so runs that will not stop cannot pile up.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::Response;
use itsmflow_dsl::diagnostic;
use itsmflow_engine::testing::{Coverage, Options, Report, Suite, TestResult};
use maud::{html, Markup};
use serde_json::Value as Json;
use tokio::sync::Semaphore;

use super::editor::{self, Files};
use crate::serve::error::ApiError;
use crate::serve::routes::definitions;
use crate::serve::tenants::Backend;
use crate::web::csrf::Posted;

/// How long a run may take.
pub const TIME_LIMIT: Duration = Duration::from_secs(20);

/// Runs going at once on this server (each takes a processor).
pub const RUNNING: usize = 2;

fn slots() -> Arc<Semaphore> {
    static SLOTS: OnceLock<Arc<Semaphore>> = OnceLock::new();
    SLOTS
        .get_or_init(|| Arc::new(Semaphore::new(RUNNING)))
        .clone()
}

/// How a run ended.
enum Outcome {
    Ran(Report),
    /// The project does not check: its diagnostics, in the API's JSON form.
    Broken(Json),
    TimedOut,
    Busy,
}

/// Run the tests of `files` within the limits.
async fn run_files(files: &Files) -> Result<Outcome, ApiError> {
    let sources = definitions::sources_of(files)?;
    let Ok(permit) = slots().try_acquire_owned() else {
        return Ok(Outcome::Busy);
    };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let job = tokio::task::spawn_blocking(move || -> Result<Outcome, ApiError> {
        // Held until the thread ends, however the page's wait ended.
        let _permit = permit;
        let (suite, _warnings) = match Suite::load(&sources) {
            Ok(s) => s,
            Err(diagnostics) => {
                return Ok(Outcome::Broken(diagnostic::to_json(&sources, &diagnostics)))
            }
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(ApiError::internal)?;
        let options = Options {
            coverage: true,
            ..Options::default()
        };
        Ok(runtime.block_on(async {
            // The run stops at its next await once the page has given up on it.
            tokio::select! {
                report = suite.run(&options) => Outcome::Ran(report),
                _ = stop_rx => Outcome::TimedOut,
            }
        }))
    });
    match tokio::time::timeout(TIME_LIMIT, job).await {
        Ok(joined) => joined.map_err(ApiError::internal)?,
        Err(_) => {
            let _ = stop_tx.send(());
            Ok(Outcome::TimedOut)
        }
    }
}

/// A failed test's step: where (a link that puts the cursor at it in its file, as a
/// diagnostic's does), what it says, and the values expected and found.
fn failure(t: &TestResult, files: &Files) -> Markup {
    let Some(f) = &t.failure else {
        return html! {};
    };
    let at = files.iter().position(|(name, _)| *name == t.file);
    html! {
        div.test-failure {
            p {
                @if let Some(i) = at {
                    a.goto href=(format!("#text-{i}")) data-target=(format!("text-{i}"))
                        data-line=(f.line) data-column=(f.column) { "Line " (f.line) ", column " (f.column) }
                } @else { "Line " (f.line) ", column " (f.column) }
                ": " code { (f.source) }
            }
            p { (f.message) }
            @if f.expected.is_some() || f.actual.is_some() {
                dl.fields {
                    @if let Some(e) = &f.expected { dt { "Expected" } dd.expected { code { (e) } } }
                    @if let Some(a) = &f.actual { dt { "Actual" } dd.actual { code { (a) } } }
                }
            }
        }
    }
}

fn one_test(t: &TestResult, files: &Files) -> Markup {
    let ok = t.failure.is_none();
    html! {
        li class=(if ok { "test test-passed" } else { "test test-failed" }) data-test=(t.name) {
            span class=(if ok { "clock on-time" } else { "clock breached" }) {
                (if ok { "passed" } else { "failed" })
            }
            " " code { (t.name) } " "
            span.hint { (t.file) ":" (t.line) }
            (failure(t, files))
        }
    }
}

fn coverage(c: &Coverage) -> Markup {
    html! {
        table #test-coverage {
            caption { "Coverage: what the tests reached in each process" }
            thead { tr {
                th scope="col" { "Process" }
                th.num scope="col" { "Covered" }
                th scope="col" { "By kind" }
                th scope="col" { "Not reached" }
            } }
            tbody {
                @for p in &c.processes {
                    @let (covered, total) = p.counts();
                    tr data-process=(p.process) {
                        td { code { (p.process) } }
                        td.num { (format!("{:.1}%", p.percent())) " (" (covered) "/" (total) ")" }
                        td {
                            (p.categories.iter().filter(|k| !k.items.is_empty())
                                .map(|k| format!("{} {}/{}", k.name, k.covered(), k.items.len()))
                                .collect::<Vec<_>>().join(", "))
                        }
                        td {
                            (p.categories.iter().filter(|k| k.counted)
                                .flat_map(|k| k.items.iter().filter(|i| !i.covered).map(move |i| format!("{} `{}`", k.name, i.name)))
                                .collect::<Vec<_>>().join("; "))
                        }
                    }
                }
            }
        }
    }
}

/// The results section shown above the editor: the failed tests first, the passed ones
/// folded, then the coverage.
fn results(report: &Report, files: &Files) -> Markup {
    let (passed, failed) = (report.passed(), report.failed());
    html! {
        section.card #test-results aria-labelledby="h-tests" {
            h2 #h-tests { "Tests of the project as edited" }
            @if report.tests.is_empty() {
                p role="status" { "The project has no tests. Write them as " code { "test" } " items (see the language's “Process tests”)." }
            } @else {
                p role="status" class=(if failed > 0 { "error" } else { "notice" }) #test-summary {
                    (passed) " passed, " (failed) " failed."
                    " Nothing is published until you publish."
                }
                @if failed > 0 {
                    ol.tests aria-label="Failed tests" {
                        @for t in report.tests.iter().filter(|t| t.failure.is_some()) { (one_test(t, files)) }
                    }
                }
                @if passed > 0 {
                    details.passed-tests {
                        summary { "Passed tests (" (passed) ")" }
                        ol.tests {
                            @for t in report.tests.iter().filter(|t| t.failure.is_none()) { (one_test(t, files)) }
                        }
                    }
                }
            }
            @if let Some(c) = &report.coverage { (coverage(c)) }
        }
    }
}

/// `POST /processes/edit/tests`: run the draft's tests and show them above the editor.
pub async fn run<B: Backend>(posted: Posted<B::Store>) -> crate::web::WebResult<Response> {
    let files = editor::posted_files(&posted)?;
    let signed = &posted.signed;
    let outcome = match run_files(&files).await {
        Ok(o) => o,
        Err(e) => return Ok(editor::refused(signed, &files, &e)),
    };
    Ok(match outcome {
        Outcome::Ran(report) => editor::editor_with(
            signed,
            StatusCode::OK,
            &files,
            editor::Extra {
                tests: Some(results(&report, &files)),
                ..Default::default()
            },
        ),
        Outcome::Broken(report) => editor::editor_with(
            signed,
            StatusCode::UNPROCESSABLE_ENTITY,
            &files,
            editor::Extra {
                report: Some(&report),
                error: Some("The project has errors: fix them first. No test ran."),
                ..Default::default()
            },
        ),
        Outcome::TimedOut => editor::editor_with(
            signed,
            StatusCode::SERVICE_UNAVAILABLE,
            &files,
            editor::Extra {
                error: Some(&format!(
                    "The tests did not finish within {} seconds and were stopped. Run them with \
                     `itsmflow test`, which has no time limit, to see which one takes long.",
                    TIME_LIMIT.as_secs()
                )),
                ..Default::default()
            },
        ),
        Outcome::Busy => editor::editor_with(
            signed,
            StatusCode::SERVICE_UNAVAILABLE,
            &files,
            editor::Extra {
                error: Some("Other tests are running on the server: try again in a moment."),
                ..Default::default()
            },
        ),
    })
}
