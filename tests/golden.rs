//! Golden tests of the checker's diagnostics.
//!
//! `tests/golden/invalid/` holds one small project per problem the checker reports: a `.itsm`
//! file, or a directory whose `.itsm` files are checked together as one project. The first line
//! of each file names the diagnostic codes the project must report, e.g.
//! `// expect: unknown-stage, unused-declaration` (for a directory, the union over its files);
//! the set of codes reported must equal that set. The rendered report (plain text, no colour)
//! of each is kept as an insta snapshot under `tests/golden/snapshots/`, named after the input.
//!
//! `tests/golden/valid/` holds projects (files or directories) that must check without a single
//! error or warning.
//!
//! Regenerate snapshots with `INSTA_UPDATE=always cargo test -p itsmflow-tests --test golden`
//! and review every changed `.snap` file.

use std::collections::BTreeSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use itsmflow_dsl::diagnostic::render_text;
use itsmflow_dsl::{Diagnostic, Sources};

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// One golden case: a file, or a directory of files forming one project.
struct Case {
    /// The file stem or directory name; also the snapshot name.
    name: String,
    /// `(name reported in diagnostics, text)`, in sorted order.
    files: Vec<(String, String)>,
}

fn is_itsm(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "itsm")
}

/// Every `.itsm` file below `dir`, sorted.
fn itsm_files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display()));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if is_itsm(&path) {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The path of `path` relative to `tests/golden`, with `/` separators, so reports and
/// snapshots read the same on every platform.
fn display_name(path: &Path) -> String {
    let rel = path.strip_prefix(golden_dir()).unwrap_or(path);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The cases of `tests/golden/<kind>`, sorted by name.
fn cases(kind: &str) -> Vec<Case> {
    let dir = golden_dir().join(kind);
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_dir() || is_itsm(p))
        .collect();
    entries.sort();
    entries
        .into_iter()
        .map(|path| {
            let files: Vec<PathBuf> = if path.is_dir() {
                itsm_files_below(&path)
            } else {
                vec![path.clone()]
            };
            assert!(!files.is_empty(), "{}: no .itsm files", path.display());
            let name = path
                .file_stem()
                .expect("file name")
                .to_string_lossy()
                .into_owned();
            Case {
                name,
                files: files.iter().map(|f| (display_name(f), read(f))).collect(),
            }
        })
        .collect()
}

fn check(case: &Case) -> (Sources, Vec<Diagnostic>) {
    let mut sources = Sources::new();
    for (name, text) in &case.files {
        sources.add(name.clone(), text.clone());
    }
    let checked = itsmflow_engine::check(&sources);
    (sources, checked.diagnostics)
}

/// The codes named by a file's first line, `// expect: a, b`.
fn expected_codes(file: &str, text: &str) -> BTreeSet<String> {
    let first = text.lines().next().unwrap_or("");
    let Some(list) = first.trim().strip_prefix("// expect:") else {
        panic!("{file}: the first line must be `// expect: code, code, ...`, found {first:?}");
    };
    list.split(',')
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty())
        .collect()
}

/// Each invalid project reports exactly the codes its `// expect:` lines name, and its
/// rendered report matches the snapshot. All cases run; failures are listed at the end.
#[test]
fn invalid_projects_report_expected_diagnostics() {
    let cases = cases("invalid");
    assert!(
        cases.len() >= 40,
        "expected a golden input per diagnostic, found only {}",
        cases.len()
    );
    let mut failures = Vec::new();
    for case in &cases {
        let expected: BTreeSet<String> = case
            .files
            .iter()
            .filter(|(_, text)| text.starts_with("// expect:") || case.files.len() == 1)
            .flat_map(|(name, text)| expected_codes(name, text))
            .collect();
        assert!(
            !expected.is_empty(),
            "{}: no `// expect:` line in any of its files",
            case.name
        );
        let (sources, diagnostics) = check(case);
        let reported: BTreeSet<String> = diagnostics.iter().map(|d| d.code.to_string()).collect();
        let rendered = render_text(&sources, &diagnostics);
        if reported != expected {
            let missing: Vec<&String> = expected.difference(&reported).collect();
            let extra: Vec<&String> = reported.difference(&expected).collect();
            failures.push(format!(
                "{}: codes differ; missing {missing:?}, unexpected {extra:?}\n{rendered}",
                case.name
            ));
        }
        let snapshot = catch_unwind(AssertUnwindSafe(|| {
            insta::with_settings!({
                snapshot_path => golden_dir().join("snapshots"),
                prepend_module_to_snapshot => false,
                omit_expression => true,
                description => case.files.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", "),
            }, {
                insta::assert_snapshot!(case.name.as_str(), rendered);
            });
        }));
        if snapshot.is_err() {
            failures.push(format!("{}: snapshot differs (see above)", case.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} golden cases failed:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

/// Every snapshot belongs to an input: a renamed or removed input must take its snapshot along.
#[test]
fn every_snapshot_has_an_input() {
    let names: BTreeSet<String> = cases("invalid").into_iter().map(|c| c.name).collect();
    let dir = golden_dir().join("snapshots");
    let mut orphans = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("directory entry").path();
        let file = path.file_name().unwrap_or_default().to_string_lossy();
        let Some(stem) = file.strip_suffix(".snap") else {
            continue; // `.snap.new` files are insta's pending reviews
        };
        if !names.contains(stem) {
            orphans.push(file.into_owned());
        }
    }
    assert!(
        orphans.is_empty(),
        "snapshots without an input: {orphans:?}"
    );
}

/// The valid projects check with no errors and no warnings.
#[test]
fn valid_projects_check_clean() {
    let cases = cases("valid");
    assert!(!cases.is_empty(), "no valid golden projects");
    for case in &cases {
        let (sources, diagnostics) = check(case);
        assert!(
            diagnostics.is_empty(),
            "{} should check clean:\n{}",
            case.name,
            render_text(&sources, &diagnostics)
        );
        let checked = itsmflow_engine::check(&sources);
        assert!(
            checked.project.is_some(),
            "{}: no project without errors",
            case.name
        );
    }
}

/// A rhai error is reported where it is in the `.itsm` file, not at the start of the rule:
/// the case marks the spot with the token the error must point at.
#[test]
fn rhai_errors_point_into_the_itsm_file() {
    // (case, the token the error must point at, its 1-based line and column in characters)
    for (case_name, token, line, column) in [
        // An error on the second line of a multi-line body.
        ("rhai-syntax", ">", 17, 23),
        // A body that starts in the middle of a line, after non-ASCII text.
        ("rhai-undefined-variable", "resolutoin", 14, 86),
    ] {
        let case = cases("invalid")
            .into_iter()
            .find(|c| c.name == case_name)
            .unwrap_or_else(|| panic!("no golden case {case_name}"));
        let (sources, diagnostics) = check(&case);
        let d = diagnostics
            .iter()
            .find(|d| d.code == "rhai-syntax")
            .unwrap_or_else(|| panic!("{case_name}: no rhai-syntax diagnostic"));
        let file = sources.get(d.span.file).expect("file of the diagnostic");
        assert_eq!(
            file.line_col(d.span.start as usize),
            (line, column),
            "{case_name}: {} points at {:?}",
            d.message,
            sources.location(d.span)
        );
        assert!(
            file.text[d.span.start as usize..].starts_with(token),
            "{case_name}: the error points at {:?}, not at `{token}`",
            &file.text[d.span.start as usize..(d.span.start as usize + 20).min(file.text.len())]
        );
    }
}

/// The same mistake in two places is two diagnostics. Known checker bug: `check_files` calls
/// `diagnostics.dedup()`, and `Span`'s `PartialEq` is always true, so diagnostics that differ
/// only in where they are collapse into one (here: two zero targets report one error).
#[test]
fn the_same_problem_in_two_places_is_reported_twice() {
    let case = cases("invalid")
        .into_iter()
        .find(|c| c.name == "same-problem-twice")
        .expect("golden case same-problem-twice");
    let (sources, diagnostics) = check(&case);
    let lines: Vec<usize> = diagnostics
        .iter()
        .filter(|d| d.code == "zero-target")
        .map(|d| {
            let file = sources.get(d.span.file).expect("file of the diagnostic");
            file.line_col(d.span.start as usize).0
        })
        .collect();
    assert_eq!(lines, vec![8, 9], "{}", render_text(&sources, &diagnostics));
}

/// The formatter on every golden input that parses (valid or not, the checker's verdict does
/// not matter to it): formatting is idempotent and keeps the syntax tree.
#[test]
fn every_parsable_golden_file_formats_stably() {
    use itsmflow_dsl::ast::FileId;
    use itsmflow_dsl::{format, parse};

    let mut failures = Vec::new();
    let mut formatted = 0;
    for case in cases("valid").iter().chain(cases("invalid").iter()) {
        for (name, text) in &case.files {
            let parsed = parse(FileId(0), text);
            if parsed.has_errors() {
                continue;
            }
            formatted += 1;
            let once = format::format(text, &parsed.file);
            let reparsed = parse(FileId(0), &once);
            if reparsed.has_errors() || reparsed.file != parsed.file {
                failures.push(format!(
                    "{name}: formatting changed what the file says\n{once}"
                ));
                continue;
            }
            let twice = format::format(&once, &reparsed.file);
            if twice != once {
                failures.push(format!(
                    "{name}: formatting is not idempotent\n--- once ---\n{once}\n--- twice ---\n{twice}"
                ));
            }
        }
    }
    assert!(formatted > 40, "only {formatted} golden files parse");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
