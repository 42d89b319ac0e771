//! Process tests: the `test` items of a project, run on the in-memory engine on virtual time.
//!
//! Each test gets an engine of its own (a fresh in-memory store, a [`ManualClock`] at the
//! test's start, a directory of the users the test declares) with the project published to it,
//! and runs its steps in order; the first step that fails ends the test. Nothing waits on real
//! time and nothing runs concurrently: `wait` moves the clock from one due timer to the next and
//! fires each at its own instant, so a test gives the same result on every run.
//!
//! The project is checked once for the whole run (a project with errors runs nothing); what
//! each test reached is gathered into [`Coverage`] when asked.

mod coverage;
mod expect;
mod world;

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use itsmflow_dsl::ast::{self, FileId, Item};
use itsmflow_dsl::{Diagnostic, Sources};
use serde::Serialize;

pub use coverage::{Category, Coverage, ProcessCoverage};

use crate::model::Project;
use crate::runtime::ManualClock;
use world::World;

/// Where a test starts when it does not say (`at`): a Monday morning.
pub fn default_start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 5, 9, 0, 0)
        .single()
        .unwrap_or_default()
}

/// What to run, and what to gather.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Only tests whose name contains this text.
    pub filter: Option<String>,
    /// Gather coverage (a little more work after each test).
    pub coverage: bool,
    /// Only tests written in these files (all when `None`).
    pub files: Option<BTreeSet<FileId>>,
}

/// The results of a run, in the order the tests are written (files in the project's order).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    pub tests: Vec<TestResult>,
    /// Present when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coverage: Option<Coverage>,
}

impl Report {
    pub fn passed(&self) -> usize {
        self.tests.iter().filter(|t| t.failure.is_none()).count()
    }
    pub fn failed(&self) -> usize {
        self.tests.len() - self.passed()
    }
}

/// One test's result.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TestResult {
    pub name: String,
    /// Where the test is written: file, and the line of `test`.
    pub file: String,
    pub line: usize,
    /// Steps run (all of them when it passed).
    pub steps: usize,
    /// Why it failed; `None` when it passed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
}

/// The step that failed and how.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// The failing step's line and its text, as written.
    pub line: usize,
    pub column: usize,
    pub source: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actual: Option<String>,
}

/// How a step failed, before it is placed in the source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StepFailure {
    pub message: String,
    pub expected: Option<String>,
    pub actual: Option<String>,
}

impl StepFailure {
    pub fn new(message: impl Into<String>) -> Self {
        StepFailure {
            message: message.into(),
            expected: None,
            actual: None,
        }
    }
    pub fn mismatch(what: &str, expected: impl Into<String>, actual: impl Into<String>) -> Self {
        StepFailure {
            message: format!("{what} differs"),
            expected: Some(expected.into()),
            actual: Some(actual.into()),
        }
    }
}

impl From<crate::runtime::EngineError> for StepFailure {
    fn from(e: crate::runtime::EngineError) -> Self {
        StepFailure::new(format!("the engine failed: {e}"))
    }
}

impl From<crate::store::StoreError> for StepFailure {
    fn from(e: crate::store::StoreError) -> Self {
        StepFailure::new(format!("the store failed: {e}"))
    }
}

/// The tests of a project, with the project checked for them.
pub struct Suite<'a> {
    sources: &'a Sources,
    project: Arc<Project>,
    tests: Vec<ast::Test>,
}

impl<'a> Suite<'a> {
    /// Check the project; its diagnostics when it has errors (nothing can run then).
    pub fn load(sources: &'a Sources) -> Result<(Suite<'a>, Vec<Diagnostic>), Vec<Diagnostic>> {
        let checked = crate::check(sources);
        let Some(project) = checked.project else {
            return Err(checked.diagnostics);
        };
        let tests = sources
            .iter()
            .flat_map(|(id, f)| itsmflow_dsl::parse(id, &f.text).file.items)
            .filter_map(|item| match item {
                Item::Test(t) => Some(t),
                _ => None,
            })
            .collect();
        Ok((
            Suite {
                sources,
                project: Arc::new(project),
                tests,
            },
            checked.diagnostics,
        ))
    }

    /// How many tests the project has.
    pub fn len(&self) -> usize {
        self.tests.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tests.is_empty()
    }

    /// Run the tests `options` selects, one after another.
    pub async fn run(&self, options: &Options) -> Report {
        let mut tests = Vec::new();
        let mut coverage = options.coverage.then(|| Coverage::new(&self.project));
        for test in &self.tests {
            let named = options
                .filter
                .as_ref()
                .is_none_or(|f| test.name.name.contains(f.as_str()));
            let in_files = options
                .files
                .as_ref()
                .is_none_or(|files| files.contains(&test.span.file));
            if !named || !in_files {
                continue;
            }
            let (result, world) = self.run_one(test).await;
            if let (Some(c), Some(w)) = (coverage.as_mut(), world) {
                c.gather(&w).await;
            }
            tests.push(result);
        }
        Report { tests, coverage }
    }

    async fn run_one(&self, test: &ast::Test) -> (TestResult, Option<World>) {
        let (file, line) = self.place(test.span);
        let mut result = TestResult {
            name: test.name.name.clone(),
            file,
            line,
            steps: 0,
            failure: None,
        };
        let start = match test.steps.first().map(|s| &s.kind) {
            Some(ast::TestStepKind::Start(at)) => {
                match crate::check::parse_datetime(&at.node)
                    .and_then(|s| DateTime::<Utc>::from_timestamp(s, 0))
                {
                    Some(t) => t,
                    None => {
                        result.failure = Some(self.failure(
                            test.steps[0].span,
                            StepFailure::new(format!("`{}` is not an instant", at.node)),
                        ));
                        return (result, None);
                    }
                }
            }
            _ => default_start(),
        };
        let clock = Arc::new(ManualClock::new(start));
        let mut world = match World::open(self.sources, self.project.clone(), clock).await {
            Ok(w) => w,
            Err(f) => {
                result.failure = Some(self.failure(test.span, f));
                return (result, None);
            }
        };
        for step in &test.steps {
            result.steps += 1;
            if let Err(f) = world.step(step).await {
                result.failure = Some(self.failure(step.span, f));
                break;
            }
        }
        (result, Some(world))
    }

    fn place(&self, span: ast::Span) -> (String, usize) {
        match self.sources.get(span.file) {
            Some(f) => (f.name.clone(), f.line_col(span.start as usize).0),
            None => (String::new(), 0),
        }
    }

    fn failure(&self, span: ast::Span, f: StepFailure) -> Failure {
        let (line, column, source) = match self.sources.get(span.file) {
            Some(file) => {
                let (line, column) = file.line_col(span.start as usize);
                let text = file
                    .text
                    .get(span.start as usize..span.end as usize)
                    .unwrap_or("");
                (line, column, one_line(text))
            }
            None => (0, 0, String::new()),
        };
        Failure {
            line,
            column,
            source,
            message: f.message,
            expected: f.expected,
            actual: f.actual,
        }
    }
}

/// A step as written, on one line (a step with a field list may span several).
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
