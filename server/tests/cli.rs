//! End-to-end tests of the `itsmflow` binary: exit codes, report formats, project loading,
//! formatting files in place, and drawing graphs.
//!
//! Every test works in a fresh directory under the system temp directory (removed when the
//! test ends) and runs the real binary. Exit codes: 0 clean, 1 problems found, 2 unusable input.

use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use itsmflow_dsl::ast::{FileId, Item, Member};

// ---------------------------------------------------------------------------------------------
// Helpers

/// A directory of its own for one test, removed on drop.
struct TempDir {
    path: PathBuf,
}

impl TempDir {
    fn new(tag: &str) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "itsmflow-cli-test-{}-{n}-{tag}",
            std::process::id()
        ));
        if path.exists() {
            std::fs::remove_dir_all(&path).expect("remove a stale temp dir");
        }
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir { path }
    }

    fn path(&self) -> &Path {
        &self.path
    }

    /// Write a file (creating parent directories) and return its path.
    fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create parent dir");
        }
        std::fs::write(&path, contents).expect("write file");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

fn itsmflow<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    Command::new(env!("CARGO_BIN_EXE_itsmflow"))
        .args(args)
        .output()
        .expect("run the itsmflow binary")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Assert the exit code, showing what the command printed when it differs.
#[track_caller]
fn assert_exit(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "unexpected exit status\n--- stdout ---\n{}\n--- stderr ---\n{}",
        stdout(out),
        stderr(out)
    );
}

#[track_caller]
fn json_report(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e})\n--- stdout ---\n{}\n--- stderr ---\n{}",
            stdout(out),
            stderr(out)
        )
    })
}

fn codes(report: &serde_json::Value) -> Vec<String> {
    report["diagnostics"]
        .as_array()
        .expect("`diagnostics` is an array")
        .iter()
        .map(|d| d["code"].as_str().expect("`code` is a string").to_string())
        .collect()
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the server crate lives in the workspace")
        .to_path_buf()
}

// ---------------------------------------------------------------------------------------------
// Fixtures

/// Declarations shared by the fixture projects' processes.
const SHARED: &str = "\
role agent
role team_lead

queue service_desk {
  tier 1
  members agent
}
";

/// A clean process using the declarations of `SHARED`.
const CLEAN_PROCESS: &str = "\
process incident {
  priorities P1, P2

  targets on 24x7 {
    P1: respond 15m, resolve 4h
    P2: respond 1h, resolve 1d
  }

  stage new initial {
    queue service_desk
  }
  stage closed final

  transition close: new -> closed by role agent

  escalation on resolve {
    at 75% => notify role team_lead
  }
}
";

/// A process with two errors: an unknown stage (line 5) and an unknown role (line 6).
const BROKEN_PROCESS: &str = "\
process request {
  stage open initial
  stage done final

  transition finish: open -> dne by role agent
  transition cancel: open -> done by role agnet
}
";

/// A clean project, `SHARED` plus `CLEAN_PROCESS` in two files.
fn clean_project(tag: &str) -> TempDir {
    let dir = TempDir::new(tag);
    dir.write("shared.itsm", SHARED);
    dir.write("incident.itsm", CLEAN_PROCESS);
    dir
}

// ---------------------------------------------------------------------------------------------
// check: exit codes

#[test]
fn check_clean_project_exits_0() {
    let dir = clean_project("check-clean");
    let out = itsmflow([OsStr::new("check"), dir.path().as_os_str()]);
    assert_exit(&out, 0);
    assert!(
        stdout(&out).contains("no problems found"),
        "the text report ends with a summary: {}",
        stdout(&out)
    );
}

#[test]
fn check_project_with_errors_exits_1_and_reports_them() {
    let dir = clean_project("check-errors");
    dir.write("request.itsm", BROKEN_PROCESS);
    let out = itsmflow([OsStr::new("check"), dir.path().as_os_str()]);
    assert_exit(&out, 1);
    let text = stdout(&out);
    for expected in ["unknown-stage", "unknown-role", "request.itsm", "2 errors"] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}

#[test]
fn check_missing_path_exits_2() {
    let dir = TempDir::new("check-missing");
    let missing = dir.path().join("nowhere.itsm");
    let out = itsmflow([OsStr::new("check"), missing.as_os_str()]);
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("no such file or directory"),
        "stderr: {}",
        stderr(&out)
    );
}

#[test]
fn check_non_utf8_file_exits_2() {
    let dir = clean_project("check-non-utf8");
    dir.write("latin1.itsm", b"role caf\xe9\n");
    let out = itsmflow([OsStr::new("check"), dir.path().as_os_str()]);
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("latin1.itsm") && stderr(&out).contains("not UTF-8"),
        "stderr: {}",
        stderr(&out)
    );
}

#[test]
fn check_directory_without_itsm_files_exits_2() {
    let dir = TempDir::new("check-empty");
    dir.write("README.md", "no definitions here\n");
    let out = itsmflow([OsStr::new("check"), dir.path().as_os_str()]);
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("no .itsm files"),
        "stderr: {}",
        stderr(&out)
    );
}

// ---------------------------------------------------------------------------------------------
// check: JSON report

#[test]
fn check_json_report_has_counts_codes_and_positions() {
    let dir = clean_project("check-json");
    let request = dir.write("request.itsm", BROKEN_PROCESS);
    dir.write("unused.itsm", "role auditor\n");
    let out = itsmflow([
        OsStr::new("check"),
        dir.path().as_os_str(),
        OsStr::new("--format"),
        OsStr::new("json"),
    ]);
    assert_exit(&out, 1);
    let report = json_report(&out);
    assert_eq!(report["errors"], 2, "{report:#}");
    assert_eq!(report["warnings"], 1, "{report:#}");
    let diagnostics = report["diagnostics"].as_array().expect("diagnostics array");
    assert_eq!(diagnostics.len(), 3, "{report:#}");
    for d in diagnostics {
        for key in ["code", "severity", "message", "file"] {
            assert!(d[key].is_string(), "`{key}` missing in {d:#}");
        }
        for key in ["line", "column", "end_line", "end_column"] {
            assert!(
                d[key].as_u64().is_some_and(|n| n >= 1),
                "`{key}` missing in {d:#}"
            );
        }
    }
    let find = |code: &str| {
        diagnostics
            .iter()
            .find(|d| d["code"] == code)
            .unwrap_or_else(|| panic!("no {code} in {report:#}"))
    };
    let request_name = request.display().to_string();
    let stage = find("unknown-stage");
    assert_eq!(stage["severity"], "error");
    assert_eq!(stage["file"], request_name.as_str());
    assert_eq!((&stage["line"], &stage["column"]), (&5.into(), &30.into()));
    let role = find("unknown-role");
    assert_eq!(role["file"], request_name.as_str());
    assert_eq!((&role["line"], &role["column"]), (&6.into(), &43.into()));
    assert_eq!(role["help"], "did you mean `agent`?");
    let unused = find("unused-declaration");
    assert_eq!(unused["severity"], "warning");
    assert!(
        unused["file"]
            .as_str()
            .is_some_and(|f| f.ends_with("unused.itsm")),
        "{unused:#}"
    );
}

#[test]
fn check_json_report_of_a_clean_project_is_empty() {
    let dir = clean_project("check-json-clean");
    let out = itsmflow([
        OsStr::new("check"),
        dir.path().as_os_str(),
        OsStr::new("--format"),
        OsStr::new("json"),
    ]);
    assert_exit(&out, 0);
    let report = json_report(&out);
    assert_eq!(report["errors"], 0);
    assert_eq!(report["warnings"], 0);
    assert_eq!(report["diagnostics"], serde_json::json!([]));
}

// ---------------------------------------------------------------------------------------------
// check: one file of a project

#[test]
fn checking_one_file_sees_its_siblings_but_reports_only_that_file() {
    let dir = clean_project("check-one-file");
    let request = dir.write("request.itsm", BROKEN_PROCESS);
    let incident = dir.path().join("incident.itsm");

    // incident.itsm uses roles and a queue declared in shared.itsm: no unknown names, and the
    // errors of request.itsm are not its problem.
    let out = itsmflow([
        OsStr::new("check"),
        incident.as_os_str(),
        OsStr::new("--format"),
        OsStr::new("json"),
    ]);
    assert_exit(&out, 0);
    let report = json_report(&out);
    assert_eq!(codes(&report), Vec::<String>::new(), "{report:#}");

    // request.itsm's own errors are reported, and only those: `agent` (from shared.itsm)
    // resolves, `agnet` does not.
    let out = itsmflow([
        OsStr::new("check"),
        request.as_os_str(),
        OsStr::new("--format"),
        OsStr::new("json"),
    ]);
    assert_exit(&out, 1);
    let report = json_report(&out);
    let mut found = codes(&report);
    found.sort();
    assert_eq!(found, ["unknown-role", "unknown-stage"], "{report:#}");
    let request_name = request.display().to_string();
    for d in report["diagnostics"].as_array().expect("diagnostics array") {
        assert_eq!(d["file"], request_name.as_str(), "{d:#}");
    }
}

#[test]
fn checking_one_file_does_not_report_warnings_of_its_siblings() {
    let dir = clean_project("check-one-file-warnings");
    dir.write("unused.itsm", "role auditor\n");
    let incident = dir.path().join("incident.itsm");
    let out = itsmflow([
        OsStr::new("check"),
        incident.as_os_str(),
        OsStr::new("--deny-warnings"),
    ]);
    assert_exit(&out, 0);
}

/// A file named by a bare relative path (`incident.itsm`) is the same file as the one found in
/// its directory (`./incident.itsm`): it is loaded once, so nothing in it is "defined twice".
#[test]
fn checking_one_file_reports_a_sibling_that_declares_its_names_again() {
    let dir = clean_project("check-one-file-duplicate");
    // `zz.itsm` sorts after `shared.itsm`, so the duplicate is reported there, pointing back at
    // the first declaration in `shared.itsm`: checking `shared.itsm` alone must show it.
    dir.write("zz.itsm", "role agent\n");
    let shared = dir.path().join("shared.itsm");
    let out = itsmflow([
        OsStr::new("check"),
        shared.as_os_str(),
        OsStr::new("--format"),
        OsStr::new("json"),
    ]);
    assert_exit(&out, 1);
    let report = json_report(&out);
    assert_eq!(codes(&report), ["duplicate-definition"], "{report:#}");
}

#[test]
fn checking_a_file_by_relative_path_loads_it_once() {
    let dir = clean_project("check-relative");
    let out = Command::new(env!("CARGO_BIN_EXE_itsmflow"))
        .args(["check", "incident.itsm"])
        .current_dir(dir.path())
        .output()
        .expect("run the itsmflow binary");
    assert_exit(&out, 0);
}

// ---------------------------------------------------------------------------------------------
// check: --deny-warnings

#[test]
fn deny_warnings_turns_warnings_into_exit_1() {
    let dir = clean_project("check-deny-warnings");
    dir.write("unused.itsm", "role auditor\n");

    let out = itsmflow([OsStr::new("check"), dir.path().as_os_str()]);
    assert_exit(&out, 0);
    assert!(
        stdout(&out).contains("unused-declaration") && stdout(&out).contains("1 warning"),
        "warnings are reported even when allowed: {}",
        stdout(&out)
    );

    let out = itsmflow([
        OsStr::new("check"),
        dir.path().as_os_str(),
        OsStr::new("--deny-warnings"),
    ]);
    assert_exit(&out, 1);
}

#[test]
fn deny_warnings_on_a_clean_project_exits_0() {
    let dir = clean_project("check-deny-clean");
    let out = itsmflow([
        OsStr::new("check"),
        dir.path().as_os_str(),
        OsStr::new("--deny-warnings"),
    ]);
    assert_exit(&out, 0);
}

// ---------------------------------------------------------------------------------------------
// fmt

const UNFORMATTED: &str = "\
// A process written carelessly.
process todo   {
stage open initial
      stage done final // the end


  transition finish : open ->   done
}
";

#[test]
fn fmt_check_reports_an_unformatted_file_and_leaves_it_alone() {
    let dir = TempDir::new("fmt-check");
    let path = dir.write("todo.itsm", UNFORMATTED);
    let out = itsmflow([OsStr::new("fmt"), OsStr::new("--check"), path.as_os_str()]);
    assert_exit(&out, 1);
    assert!(
        stdout(&out).contains("todo.itsm") && stdout(&out).contains("not formatted"),
        "stdout: {}",
        stdout(&out)
    );
    assert_eq!(
        std::fs::read_to_string(&path).expect("read back"),
        UNFORMATTED,
        "fmt --check must not change the file"
    );
}

#[test]
fn fmt_rewrites_a_file_then_fmt_check_passes() {
    let dir = TempDir::new("fmt-rewrite");
    let path = dir.write("todo.itsm", UNFORMATTED);

    let out = itsmflow([OsStr::new("fmt"), path.as_os_str()]);
    assert_exit(&out, 0);
    let formatted = std::fs::read_to_string(&path).expect("read back");
    assert_ne!(formatted, UNFORMATTED, "fmt did not change the file");
    assert!(
        formatted.contains("// A process written carelessly.") && formatted.contains("// the end"),
        "comments must survive formatting:\n{formatted}"
    );
    assert!(
        formatted.contains("transition finish: open -> done"),
        "not in canonical layout:\n{formatted}"
    );

    let out = itsmflow([OsStr::new("fmt"), OsStr::new("--check"), path.as_os_str()]);
    assert_exit(&out, 0);

    // A second fmt changes nothing, and no temporary file is left behind.
    let out = itsmflow([OsStr::new("fmt"), path.as_os_str()]);
    assert_exit(&out, 0);
    assert_eq!(
        std::fs::read_to_string(&path).expect("read back"),
        formatted
    );
    let leftovers: Vec<String> = std::fs::read_dir(dir.path())
        .expect("list dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n != "todo.itsm")
        .collect();
    assert!(leftovers.is_empty(), "fmt left files behind: {leftovers:?}");

    // The formatted file still checks clean.
    let out = itsmflow([OsStr::new("check"), path.as_os_str()]);
    assert_exit(&out, 0);
}

#[test]
fn fmt_on_a_directory_formats_every_file() {
    let dir = TempDir::new("fmt-dir");
    let a = dir.write("a.itsm", UNFORMATTED);
    let b = dir.write("nested/b.itsm", UNFORMATTED.replace("todo", "chore"));
    let out = itsmflow([
        OsStr::new("fmt"),
        OsStr::new("--check"),
        dir.path().as_os_str(),
    ]);
    assert_exit(&out, 1);
    let out = itsmflow([OsStr::new("fmt"), dir.path().as_os_str()]);
    assert_exit(&out, 0);
    let out = itsmflow([
        OsStr::new("fmt"),
        OsStr::new("--check"),
        dir.path().as_os_str(),
    ]);
    assert_exit(&out, 0);
    for p in [a, b] {
        assert_ne!(std::fs::read_to_string(&p).expect("read back"), UNFORMATTED);
    }
}

#[test]
fn fmt_on_a_file_with_a_syntax_error_exits_1_and_leaves_it_alone() {
    let dir = TempDir::new("fmt-syntax");
    let broken = "process todo {\n  stage open initial\n  stage done   final\n  transition finish open -> done\n}\n";
    let path = dir.write("broken.itsm", broken);
    for args in [vec!["fmt"], vec!["fmt", "--check"]] {
        let out = Command::new(env!("CARGO_BIN_EXE_itsmflow"))
            .args(&args)
            .arg(&path)
            .output()
            .expect("run the itsmflow binary");
        assert_exit(&out, 1);
        assert!(
            stdout(&out).contains("syntax"),
            "{args:?} should report the syntax error: {}",
            stdout(&out)
        );
        assert_eq!(
            std::fs::read_to_string(&path).expect("read back"),
            broken,
            "{args:?} must not touch a file it cannot parse"
        );
    }
}

#[test]
fn fmt_missing_path_exits_2() {
    let dir = TempDir::new("fmt-missing");
    let out = itsmflow([OsStr::new("fmt"), dir.path().join("nope.itsm").as_os_str()]);
    assert_exit(&out, 2);
}

// ---------------------------------------------------------------------------------------------
// graph

fn incident_path() -> PathBuf {
    repo_root().join("processes").join("incident.itsm")
}

/// Stage and transition names of `processes/incident.itsm`, read from the file itself.
fn incident_names() -> (Vec<String>, Vec<String>) {
    let path = incident_path();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let parsed = itsmflow_dsl::parse(FileId(0), &text);
    assert!(!parsed.has_errors(), "{:?}", parsed.diagnostics);
    let mut stages = Vec::new();
    let mut transitions = Vec::new();
    for item in &parsed.file.items {
        let Item::Process(p) = item else { continue };
        assert_eq!(p.name.name, "incident");
        for m in &p.members {
            match m {
                Member::Stage(s) => stages.push(s.name.name.clone()),
                Member::Transition(t) => transitions.push(t.name.name.clone()),
                _ => {}
            }
        }
    }
    assert!(
        !stages.is_empty() && !transitions.is_empty(),
        "incident.itsm has no stages or transitions"
    );
    (stages, transitions)
}

fn graph(format: &str) -> String {
    let out = itsmflow([
        OsStr::new("graph"),
        incident_path().as_os_str(),
        OsStr::new("--format"),
        OsStr::new(format),
    ]);
    assert_exit(&out, 0);
    stdout(&out)
}

#[test]
fn graph_dot_has_every_stage_and_transition() {
    let dot = graph("dot");
    assert!(dot.starts_with("digraph "), "{dot}");
    let (stages, transitions) = incident_names();
    for s in &stages {
        assert!(
            dot.contains(&format!("  \"{s}\" [")),
            "stage {s} is not a node:\n{dot}"
        );
    }
    for t in &transitions {
        let labelled = [" ", "\"", " ["]
            .iter()
            .any(|end| dot.contains(&format!("[label=\"{t}{end}")));
        assert!(labelled, "transition {t} labels no edge:\n{dot}");
    }
}

#[test]
fn graph_mermaid_has_every_stage_and_transition() {
    let mermaid = graph("mermaid");
    assert!(mermaid.starts_with("stateDiagram-v2\n"), "{mermaid}");
    let (stages, transitions) = incident_names();
    for s in &stages {
        assert!(
            mermaid.contains(&format!(" as s_{s}\n")),
            "stage {s} is not a state:\n{mermaid}"
        );
    }
    for t in &transitions {
        let labelled = mermaid.lines().any(|l| {
            l.contains("-->")
                && l.split(" : ")
                    .nth(1)
                    .is_some_and(|lab| lab.split([' ', '[']).next() == Some(t))
        });
        assert!(labelled, "transition {t} labels no edge:\n{mermaid}");
    }
}

#[test]
fn graph_dot_renders_with_graphviz() {
    let dot = graph("dot");
    let child = Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "graphviz's `dot` is not on PATH: install graphviz (e.g. `apt-get install graphviz`) \
             to run this test; CI installs it"
        ),
        Err(e) => panic!("cannot run `dot`: {e}"),
    };
    child
        .stdin
        .take()
        .expect("dot's stdin")
        .write_all(dot.as_bytes())
        .expect("write to dot");
    let out = child.wait_with_output().expect("wait for dot");
    assert!(
        out.status.success(),
        "dot rejected the graph: {}\n{dot}",
        stderr(&out)
    );
    assert!(
        stdout(&out).contains("<svg"),
        "dot produced no SVG: {}",
        stdout(&out)
    );
}

/// Stages named as Mermaid's keywords, and every feature a graph shows: a spawn, links, a
/// `when` guard and a rule guard, an approval with its outcomes, an automatic transition and a
/// recurring step.
const KEYWORD_STAGES: &str = r#"role agent
role cab
process problem {
  links {
    incidents: many incident via caused_by
  }
  stage state initial
  stage end final
  transition close: state -> end by role agent
}
process incident {
  fields {
    title: text
    urgent: bool
  }
  links {
    caused_by: one problem
  }
  stage state "New: \"fresh\"" initial {
    every 30m when urgent == true => notify role agent "Still new"
  }
  stage note
  stage class
  stage style
  stage click
  stage default
  stage end final
  stage direction final
  transition start: state -> note by role agent when urgent == true
  transition review: note -> class by role agent spawns problem as caused_by
  transition go: class -> style after 2h
  transition go2: style -> click by role agent
  transition fin: click -> end by role agent
  transition x: default -> direction by role agent
  transition y: state -> default by role agent
  rule needs_title when transition fin { title != "" }
  approval in class {
    when urgent == true => any 1 of role cab
    otherwise => none
    on approve => style
    on reject => note
    on expire after 5d => end
  }
}
"#;

fn keyword_graph(format: &str) -> String {
    let dir = TempDir::new("graph-keywords");
    let path = dir.write("kw.itsm", KEYWORD_STAGES);
    let out = itsmflow([
        OsStr::new("graph"),
        path.as_os_str(),
        OsStr::new("--process"),
        OsStr::new("incident"),
        OsStr::new("--format"),
        OsStr::new(format),
    ]);
    assert_exit(&out, 0);
    stdout(&out)
}

/// Mermaid reads `state`, `note`, `class`, `style`, `click`, `default`, `end` and `direction`
/// as keywords: stage ids are prefixed, so no id is one, and labels hold no `:` or `;`.
#[test]
fn graph_mermaid_ids_are_never_keywords() {
    let mermaid = keyword_graph("mermaid");
    const KEYWORDS: [&str; 8] = [
        "state",
        "note",
        "class",
        "style",
        "click",
        "default",
        "end",
        "direction",
    ];
    for line in mermaid.lines().skip(1).map(str::trim) {
        let ids: Vec<&str> = if let Some(rest) = line.strip_prefix("state ") {
            vec![rest.rsplit(" as ").next().unwrap_or("")]
        } else if line.contains("-->") {
            let arrow = line.split(" : ").next().unwrap_or("");
            arrow.split(" --> ").collect()
        } else if let Some(id) = line.strip_prefix("note right of ") {
            vec![id]
        } else {
            continue;
        };
        for id in ids {
            assert!(
                id == "[*]" || (id.starts_with("s_") && !KEYWORDS.contains(&id)),
                "id {id:?} in {line:?}:\n{mermaid}"
            );
        }
        if let Some(label) = line.split_once(" : ").map(|(_, l)| l) {
            assert!(!label.contains([':', ';']), "label {label:?}:\n{mermaid}");
        }
    }
    for keyword in KEYWORDS {
        assert!(
            mermaid.contains(&format!(" as s_{keyword}\n")),
            "{keyword}:\n{mermaid}"
        );
    }
    assert!(
        mermaid.contains("state \"New  'fresh'\" as s_state\n"),
        "{mermaid}"
    );
    // Notes are closed.
    assert_eq!(
        mermaid.matches("  note right of").count(),
        mermaid.matches("  end note").count(),
        "{mermaid}"
    );
}

/// Graphs show spawns, links, guards, approvals, automatic transitions and recurring steps;
/// the dot graph is valid for graphviz.
#[test]
fn graphs_show_spawns_links_guards_approvals_and_recurring_steps() {
    let dot = keyword_graph("dot");
    let mermaid = keyword_graph("mermaid");
    for graph in [&dot, &mermaid] {
        for shown in [
            "start [agent] when urgent == true",
            "fin [agent] if rule needs_title",
            "review [agent] spawns problem as caused_by",
            "go (after 2h)",
            "on approve",
            "on reject",
            "on expire (after 5d)",
            "when urgent == true => any 1 of role cab",
            "otherwise => none",
            "every 30m (when its condition holds) => notify",
            "links",
        ] {
            assert!(graph.contains(shown), "{shown:?} not shown:\n{graph}");
        }
    }
    assert!(
        dot.contains("\"process:problem\" [shape=component"),
        "{dot}"
    );
    assert!(dot.contains("\"class\" -> \"process:problem\""), "{dot}");
    assert!(dot.contains("caused_by: one problem"), "{dot}");
    assert!(mermaid.contains("caused_by  one problem"), "{mermaid}");
    assert!(
        mermaid.contains("review spawns process problem"),
        "{mermaid}"
    );
    let mut child = Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("graphviz's `dot` on PATH");
    child
        .stdin
        .take()
        .expect("dot's stdin")
        .write_all(dot.as_bytes())
        .expect("write to dot");
    let out = child.wait_with_output().expect("wait for dot");
    assert!(
        out.status.success(),
        "dot rejected the graph: {}\n{dot}",
        stderr(&out)
    );
}

/// `check` and `fmt` on a file with a byte-order mark and CRLF line ends: it checks clean and
/// formats with both kept.
#[test]
fn bom_and_crlf_files_check_and_keep_their_form_when_formatted() {
    let dir = TempDir::new("bom-crlf");
    let text = "\u{feff}role agent\r\nprocess p {\r\n  stage a   initial\r\n  stage b final\r\n  transition t: a -> b by role agent\r\n}\r\n";
    let path = dir.write("p.itsm", text);
    let out = itsmflow([OsStr::new("check"), path.as_os_str()]);
    assert_exit(&out, 0);
    let out = itsmflow([OsStr::new("fmt"), path.as_os_str()]);
    assert_exit(&out, 0);
    let formatted = std::fs::read_to_string(&path).expect("read back");
    assert_eq!(formatted, text.replace("a   initial", "a initial"));
}

#[test]
fn graph_of_a_project_with_errors_exits_1() {
    let dir = TempDir::new("graph-errors");
    let path = dir.write("request.itsm", format!("{SHARED}\n{BROKEN_PROCESS}"));
    let out = itsmflow([OsStr::new("graph"), path.as_os_str()]);
    assert_exit(&out, 1);
    assert!(stdout(&out).contains("unknown-stage"), "{}", stdout(&out));
}

#[test]
fn graph_of_an_unknown_process_exits_2() {
    let out = itsmflow([
        OsStr::new("graph"),
        incident_path().as_os_str(),
        OsStr::new("--process"),
        OsStr::new("no_such_process"),
    ]);
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("no_such_process"),
        "stderr: {}",
        stderr(&out)
    );
}
