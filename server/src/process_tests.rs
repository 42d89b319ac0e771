//! `itsmflow test`: run the process tests of one or more projects and report as a test runner
//! does (text for people, JUnit XML for CI systems, JSON for tools), with coverage on request.
//!
//! Each PATH is a project of its own (a directory, or a file within its directory's project);
//! only the tests of the named files run. Exit codes follow `check`: 0 when every test passed
//! (and coverage reached `--min-coverage`), 1 when a test failed, a project does not check or
//! coverage fell short, 2 when a path cannot be read.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;

use itsmflow_dsl::ast::FileId;
use itsmflow_dsl::{diagnostic, Diagnostic, Sources};
use itsmflow_engine::testing::{Coverage, Options, Report, Suite, TestResult};

use crate::files;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TestFormat {
    Text,
    Json,
    Junit,
}

#[derive(clap::Args)]
pub struct TestArgs {
    /// Directories (projects) or files whose tests to run.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    #[arg(long, value_enum, default_value = "text")]
    pub format: TestFormat,
    /// Report what the tests reached in each process.
    #[arg(long)]
    pub coverage: bool,
    /// Fail (exit 1) when a process's coverage is below this percentage (implies --coverage).
    #[arg(long, value_name = "PERCENT")]
    pub min_coverage: Option<f64>,
    /// Only tests whose name contains this text.
    #[arg(long)]
    pub filter: Option<String>,
    /// The standard definitions a client's tailoring (PATH) extends: checked and run
    /// together with each PATH, as the client runs them; only PATH's tests run.
    #[arg(long, value_name = "DIR")]
    pub base: Vec<PathBuf>,
}

/// The project of `path`, with the files of `base` beside it (a client's tailoring and the
/// standard definitions it extends); only `path`'s files are the requested ones.
fn with_base(path: &PathBuf, base: &[PathBuf]) -> Result<files::Loaded, files::LoadError> {
    if base.is_empty() {
        return files::load(std::slice::from_ref(path));
    }
    let own = files::load(std::slice::from_ref(path))?;
    let own_names: std::collections::BTreeSet<&str> = own
        .requested
        .iter()
        .filter_map(|id| own.sources.get(*id).map(|f| f.name.as_str()))
        .collect();
    let mut all = base.to_vec();
    all.push(path.clone());
    let mut loaded = files::load(&all)?;
    loaded.requested = loaded
        .sources
        .iter()
        .filter(|(_, f)| own_names.contains(f.name.as_str()))
        .map(|(id, _)| id)
        .collect();
    Ok(loaded)
}

/// One project's run.
struct Run {
    path: PathBuf,
    report: Report,
}

pub fn run(args: &TestArgs) -> Result<u8, files::LoadError> {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return Ok(crate::EXIT_UNUSABLE);
        }
    };
    let options = Options {
        filter: args.filter.clone(),
        coverage: args.coverage || args.min_coverage.is_some(),
        files: None,
    };
    let mut runs = Vec::new();
    let mut broken = false;
    for path in &args.paths {
        let loaded = with_base(path, &args.base)?;
        let (suite, _warnings) = match Suite::load(&loaded.sources) {
            Ok(s) => s,
            Err(diagnostics) => {
                let errors: Vec<Diagnostic> =
                    diagnostics.into_iter().filter(|d| d.is_error()).collect();
                eprint!("{}", diagnostic::render_text(&loaded.sources, &errors));
                eprintln!(
                    "error: {}: the project does not check; no test ran",
                    path.display()
                );
                broken = true;
                continue;
            }
        };
        let options = Options {
            files: Some(loaded.requested.clone()),
            ..options.clone()
        };
        let mut report = runtime.block_on(suite.run(&options));
        if let Some(c) = report.coverage.as_mut() {
            keep_relevant(c, &loaded.sources, &loaded.requested);
        }
        runs.push(Run {
            path: path.clone(),
            report,
        });
    }
    let out = match args.format {
        TestFormat::Text => text(&runs, args.min_coverage, broken),
        TestFormat::Json => json(&runs),
        TestFormat::Junit => junit(&runs),
    };
    let _ = std::io::stdout().write_all(out.as_bytes());
    let total: usize = runs.iter().map(|r| r.report.tests.len()).sum();
    let failed = runs.iter().any(|r| r.report.failed() > 0);
    let short = args.min_coverage.is_some_and(|min| {
        runs.iter()
            .any(|r| r.report.coverage.as_ref().is_some_and(|c| !c.meets(min)))
    });
    if total == 0 && !broken {
        eprintln!("error: no tests found");
        return Ok(crate::EXIT_PROBLEMS);
    }
    Ok(if failed || short || broken {
        crate::EXIT_PROBLEMS
    } else {
        0
    })
}

/// Coverage of the processes the run concerns: those declared in the named files, and any the
/// tests reached (a test file beside a process declares none).
fn keep_relevant(c: &mut Coverage, sources: &Sources, requested: &BTreeSet<FileId>) {
    let declared = crate::processes_in(sources, requested);
    c.processes
        .retain(|p| declared.contains(&p.process) || p.categories.iter().any(|k| k.covered() > 0));
}

// -- text --------------------------------------------------------------------------------------

fn text(runs: &[Run], min: Option<f64>, broken: bool) -> String {
    let mut out = String::new();
    let mut failures = Vec::new();
    for run in runs {
        for t in &run.report.tests {
            let status = if t.failure.is_some() { "FAILED" } else { "ok" };
            let _ = writeln!(out, "test {}:{} {} ... {status}", t.file, t.line, t.name);
            if t.failure.is_some() {
                failures.push(t);
            }
        }
    }
    if !failures.is_empty() {
        out.push_str("\nfailures:\n");
        for t in &failures {
            out.push_str(&failure_text(t));
        }
    }
    let passed: usize = runs.iter().map(|r| r.report.passed()).sum();
    let failed: usize = runs.iter().map(|r| r.report.failed()).sum();
    let _ = writeln!(
        out,
        "\ntest result: {}. {passed} passed; {failed} failed{}",
        if failed == 0 && !broken {
            "ok"
        } else {
            "FAILED"
        },
        if broken {
            "; a project does not check, so its tests did not run"
        } else {
            ""
        }
    );
    for run in runs {
        if let Some(c) = &run.report.coverage {
            out.push_str(&coverage_text(run, c, min));
        }
    }
    out
}

fn failure_text(t: &TestResult) -> String {
    let Some(f) = &t.failure else {
        return String::new();
    };
    let mut out = format!("\n---- {} ({}:{}) ----\n", t.name, t.file, t.line);
    let _ = writeln!(out, "  {}:{}:{}: {}", t.file, f.line, f.column, f.source);
    let _ = writeln!(out, "    {}", f.message);
    if let Some(e) = &f.expected {
        let _ = writeln!(out, "    expected: {e}");
    }
    if let Some(a) = &f.actual {
        let _ = writeln!(out, "      actual: {a}");
    }
    out
}

fn coverage_text(run: &Run, c: &Coverage, min: Option<f64>) -> String {
    let mut out = format!("\ncoverage of {}:\n", run.path.display());
    for p in &c.processes {
        let (covered, total) = p.counts();
        let below = min.is_some_and(|m| p.percent() + 1e-9 < m);
        let _ = writeln!(
            out,
            "  {:<20} {:>6.1}% ({covered}/{total}){}",
            p.process,
            p.percent(),
            if below { "  below the minimum" } else { "" }
        );
        let parts: Vec<String> = p
            .categories
            .iter()
            .filter(|k| !k.items.is_empty())
            .map(|k| format!("{} {}/{}", k.name, k.covered(), k.items.len()))
            .collect();
        let _ = writeln!(out, "    {}", parts.join(", "));
        for k in p.categories.iter().filter(|k| k.counted) {
            for i in k.items.iter().filter(|i| !i.covered) {
                let _ = writeln!(out, "    not reached: {} `{}`", singular(k.name), i.name);
            }
        }
    }
    if let Some(m) = min {
        let _ = writeln!(
            out,
            "  minimum {m}%: {}",
            if c.meets(m) { "met" } else { "NOT met" }
        );
    }
    out
}

fn singular(category: &str) -> &str {
    match category {
        "stages" => "stage",
        "transitions" => "transition",
        "routing rules" => "routing rule",
        "escalation steps" => "escalation step",
        "approval rules" => "approval rule",
        "approval outcomes" => "approval outcome",
        "priority cells" => "priority cell",
        other => other,
    }
}

// -- JSON --------------------------------------------------------------------------------------

fn json(runs: &[Run]) -> String {
    let value = serde_json::json!({
        "passed": runs.iter().map(|r| r.report.passed()).sum::<usize>(),
        "failed": runs.iter().map(|r| r.report.failed()).sum::<usize>(),
        "projects": runs.iter().map(|r| serde_json::json!({
            "path": r.path.display().to_string(),
            "tests": r.report.tests,
            "coverage": r.report.coverage.as_ref().map(|c| serde_json::json!({
                "processes": c.processes.iter().map(|p| {
                    let (covered, total) = p.counts();
                    serde_json::json!({
                        "process": p.process,
                        "percent": p.percent(),
                        "covered": covered,
                        "total": total,
                        "categories": p.categories,
                    })
                }).collect::<Vec<_>>(),
            })),
        })).collect::<Vec<_>>(),
    });
    let mut s = value.to_string();
    s.push('\n');
    s
}

// -- JUnit XML ---------------------------------------------------------------------------------

/// The JUnit XML CI systems read: one `testsuite` per file of tests, a `testcase` per test,
/// a `failure` with the step, expected and actual values for each failed one.
fn junit(runs: &[Run]) -> String {
    let tests: Vec<&TestResult> = runs.iter().flat_map(|r| &r.report.tests).collect();
    let failures = tests.iter().filter(|t| t.failure.is_some()).count();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"itsmflow\" tests=\"{}\" failures=\"{failures}\">",
        tests.len()
    );
    let mut files: Vec<&str> = tests.iter().map(|t| t.file.as_str()).collect();
    files.dedup();
    for file in files {
        let in_file: Vec<&&TestResult> = tests.iter().filter(|t| t.file == file).collect();
        let failed = in_file.iter().filter(|t| t.failure.is_some()).count();
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failed}\">",
            xml(file),
            in_file.len()
        );
        for t in in_file {
            let _ = write!(
                out,
                "    <testcase name=\"{}\" classname=\"{}\" file=\"{}\" line=\"{}\"",
                xml(&t.name),
                xml(file),
                xml(file),
                t.line
            );
            match &t.failure {
                None => out.push_str("/>\n"),
                Some(f) => {
                    let mut body = format!(
                        "{}:{}:{}: {}\n{}",
                        file, f.line, f.column, f.source, f.message
                    );
                    if let Some(e) = &f.expected {
                        let _ = write!(body, "\nexpected: {e}");
                    }
                    if let Some(a) = &f.actual {
                        let _ = write!(body, "\n  actual: {a}");
                    }
                    let _ = writeln!(
                        out,
                        ">\n      <failure message=\"{}\" type=\"expectation\">{}</failure>\n    </testcase>",
                        xml(&f.message),
                        xml(&body)
                    );
                }
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Control characters other than tab and newline are not allowed in XML 1.0.
            c if (c as u32) < 0x20 && c != '\t' && c != '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}
