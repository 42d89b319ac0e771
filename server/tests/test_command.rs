//! `itsmflow test`, run as a user runs it: exit codes, the text report's failure with its line
//! and values, JUnit XML and JSON, the coverage threshold, and the standard library's own tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn itsmflow(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_itsmflow"))
        .args(args)
        .output()
        .expect("run the itsmflow binary")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[track_caller]
fn assert_exit(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "unexpected exit status\n--- stdout ---\n{}\n--- stderr ---\n{}",
        stdout(out),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A project directory of its own, removed on drop.
struct Project {
    dir: PathBuf,
}

impl Project {
    fn new(tag: &str, files: &[(&str, &str)]) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "itsmflow-test-command-{}-{tag}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the project");
        for (name, text) in files {
            std::fs::write(dir.join(name), text).expect("write a file");
        }
        Project { dir }
    }
    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
    fn dir(&self) -> String {
        self.dir.display().to_string()
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const PROCESS: &str = r#"
role agent
queue desk { members agent }

process job {
  fields {
    title: text required
  }
  stage open initial { queue desk }
  stage done final
  stage dropped final
  transition finish: open -> done by role agent
  transition drop: open -> dropped by role agent
}
"#;

const PASSING: &str = r#"
test "an agent finishes a job" {
  user ann roles agent
  create job as ann { title: "x" }
  perform finish as ann
  expect stage done
}
"#;

const FAILING: &str = r#"
test "a job is finished" {
  user ann roles agent
  create job as ann { title: "x" }
  perform finish as ann
  expect stage dropped
}
"#;

#[test]
fn passing_tests_exit_0_and_are_listed() {
    let p = Project::new("pass", &[("job.itsm", PROCESS), ("job.test.itsm", PASSING)]);
    let out = itsmflow(&["test", &p.dir()]);
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert!(text.contains("an agent finishes a job ... ok"), "{text}");
    assert!(
        text.contains("test result: ok. 1 passed; 0 failed"),
        "{text}"
    );
}

#[test]
fn a_failing_test_exits_1_and_shows_its_line_expected_and_actual() {
    let p = Project::new("fail", &[("job.itsm", PROCESS), ("job.test.itsm", FAILING)]);
    let out = itsmflow(&["test", &p.dir()]);
    assert_exit(&out, 1);
    let text = stdout(&out);
    let file = p.path("job.test.itsm");
    assert!(
        text.contains(&format!("{file}:6:3: expect stage dropped")),
        "{text}"
    );
    assert!(text.contains("expected: dropped"), "{text}");
    assert!(text.contains("actual: done"), "{text}");
    assert!(
        text.contains("test result: FAILED. 0 passed; 1 failed"),
        "{text}"
    );
}

#[test]
fn junit_and_json_reports_carry_the_failure() {
    let p = Project::new(
        "formats",
        &[("job.itsm", PROCESS), ("job.test.itsm", FAILING)],
    );
    let out = itsmflow(&["test", &p.dir(), "--format", "junit"]);
    assert_exit(&out, 1);
    let xml = stdout(&out);
    assert!(xml.starts_with("<?xml"), "{xml}");
    assert!(
        xml.contains(r#"<testsuites name="itsmflow" tests="1" failures="1">"#),
        "{xml}"
    );
    assert!(
        xml.contains(r#"<testcase name="a job is finished""#),
        "{xml}"
    );
    assert!(xml.contains("<failure message=\"stage differs\""), "{xml}");
    assert!(xml.contains("expected: dropped"), "{xml}");

    let out = itsmflow(&["test", &p.dir(), "--format", "json"]);
    assert_exit(&out, 1);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(report["failed"], 1);
    let failure = &report["projects"][0]["tests"][0]["failure"];
    assert_eq!(failure["line"], 6);
    assert_eq!(failure["expected"], "dropped");
    assert_eq!(failure["actual"], "done");
}

#[test]
fn coverage_below_the_minimum_exits_1_and_names_what_was_not_reached() {
    let p = Project::new(
        "coverage",
        &[("job.itsm", PROCESS), ("job.test.itsm", PASSING)],
    );
    let out = itsmflow(&["test", &p.dir(), "--min-coverage", "100"]);
    assert_exit(&out, 1);
    let text = stdout(&out);
    assert!(text.contains("not reached: stage `dropped`"), "{text}");
    assert!(text.contains("not reached: transition `drop`"), "{text}");
    assert!(text.contains("minimum 100%: NOT met"), "{text}");
    let out = itsmflow(&["test", &p.dir(), "--min-coverage", "60"]);
    assert_exit(&out, 0);
}

#[test]
fn a_project_that_does_not_check_runs_nothing_and_exits_1() {
    let broken = PROCESS.replace("by role agent", "by role agnet");
    let p = Project::new(
        "broken",
        &[("job.itsm", &broken), ("job.test.itsm", PASSING)],
    );
    let out = itsmflow(&["test", &p.dir()]);
    assert_exit(&out, 1);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no test ran"));
}

#[test]
fn a_project_without_tests_exits_1() {
    let p = Project::new("none", &[("job.itsm", PROCESS)]);
    let out = itsmflow(&["test", &p.dir()]);
    assert_exit(&out, 1);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no tests found"));
}

#[test]
fn a_missing_path_exits_2() {
    let out = itsmflow(&["test", "/nonexistent/itsmflow/processes"]);
    assert_exit(&out, 2);
}

/// The language reference's example project (the golden tests check it) also passes its tests.
#[test]
fn the_golden_example_project_passes_its_tests() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .join("tests/golden/valid/process-tests");
    let out = itsmflow(&["test", &root.display().to_string()]);
    assert_exit(&out, 0);
}

/// The standard library's tests pass and reach every stage, transition, routing rule,
/// escalation step, approval rule and outcome of every standard process: what CI requires.
#[test]
fn the_standard_library_is_fully_covered_by_its_tests() {
    let root = workspace().join("processes");
    let out = itsmflow(&["test", &root.display().to_string(), "--min-coverage", "100"]);
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert!(text.contains("minimum 100%: met"), "{text}");
}

/// What ships as an example checks, is formatted and passes its tests, as the library does.
#[test]
fn processes_and_examples_check_format_and_test_clean() {
    // Acme's tailoring (examples/acme) is checked with the library it extends (see
    // tests/tailoring.rs); the other examples stand alone.
    for dir in ["processes", "examples/password-reset"] {
        let path = workspace().join(dir).display().to_string();
        assert_exit(&itsmflow(&["check", "--deny-warnings", &path]), 0);
    }
    for dir in ["processes", "examples"] {
        let path = workspace().join(dir).display().to_string();
        assert_exit(&itsmflow(&["fmt", "--check", &path]), 0);
    }
    let example = workspace().join("examples/password-reset");
    assert_exit(
        &itsmflow(&[
            "test",
            &example.display().to_string(),
            "--min-coverage",
            "100",
        ]),
        0,
    );
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .to_path_buf()
}
