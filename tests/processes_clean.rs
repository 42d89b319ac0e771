//! The shipped definitions are clean: `processes/` (one project) and every project directory
//! under `examples/` check with no errors and no warnings, and every one of their files is in
//! canonical format in the strong sense: formatting is idempotent and does not change what
//! the file says (`parse(format(x)) == parse(x)`; syntax trees compare without spans).
//!
//! Files are discovered when the tests run, so new processes and examples are covered without
//! touching this file.

use std::path::{Path, PathBuf};

use itsmflow_dsl::ast::FileId;
use itsmflow_dsl::diagnostic::render_text;
use itsmflow_dsl::{format, parse, Sources};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.itsm` file below `dir`, sorted; empty if `dir` does not exist.
fn itsm_files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "itsm") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// A project: a name for messages and its files.
struct Project {
    name: String,
    files: Vec<PathBuf>,
}

/// `processes/` as one project, and each directory under `examples/` holding `.itsm` files as
/// one project each. (`.itsm` files directly in `examples/` form one more project.)
fn projects() -> Vec<Project> {
    let mut projects = vec![Project {
        name: "processes".into(),
        files: itsm_files_below(&root().join("processes")),
    }];
    let examples = root().join("examples");
    if let Ok(entries) = std::fs::read_dir(&examples) {
        let mut dirs = Vec::new();
        let mut loose = Vec::new();
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "itsm") {
                loose.push(path);
            }
        }
        dirs.sort();
        loose.sort();
        for dir in dirs {
            let mut files = itsm_files_below(&dir);
            // A client's tailoring (examples/acme) is a project together with the standard
            // library it extends.
            if files.iter().any(|f| read(f).contains(" for client ")) {
                let mut with_base = itsm_files_below(&root().join("processes"));
                with_base.append(&mut files);
                files = with_base;
            }
            if !files.is_empty() {
                projects.push(Project {
                    name: relative(&dir),
                    files,
                });
            }
        }
        if !loose.is_empty() {
            projects.push(Project {
                name: "examples".into(),
                files: loose,
            });
        }
    }
    projects
}

fn relative(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .display()
        .to_string()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn processes_directory_has_definitions() {
    let files = itsm_files_below(&root().join("processes"));
    assert!(
        !files.is_empty(),
        "no .itsm files found under processes/; the sample project is missing"
    );
}

#[test]
fn every_project_checks_without_errors_or_warnings() {
    let mut failures = Vec::new();
    for project in projects() {
        let mut sources = Sources::new();
        for f in &project.files {
            sources.add(relative(f), read(f));
        }
        let checked = itsmflow_engine::check(&sources);
        if !checked.diagnostics.is_empty() {
            failures.push(format!(
                "project {} is not clean:\n{}",
                project.name,
                render_text(&sources, &checked.diagnostics)
            ));
        } else if checked.project.is_none() {
            failures.push(format!(
                "project {}: no diagnostics, yet no checked project",
                project.name
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_file_formats_idempotently_and_keeps_its_meaning() {
    let mut failures = Vec::new();
    let mut count = 0;
    for project in projects() {
        for path in &project.files {
            count += 1;
            let name = relative(path);
            let text = read(path);
            let parsed = parse(FileId(0), &text);
            if parsed.has_errors() {
                failures.push(format!("{name}: does not parse: {:?}", parsed.diagnostics));
                continue;
            }
            let once = format::format(&text, &parsed.file);
            let reparsed = parse(FileId(0), &once);
            if reparsed.has_errors() {
                failures.push(format!(
                    "{name}: the formatted text does not parse: {:?}\n--- formatted ---\n{once}",
                    reparsed.diagnostics
                ));
                continue;
            }
            if reparsed.file != parsed.file {
                failures.push(format!(
                    "{name}: formatting changed the syntax tree\n--- formatted ---\n{once}"
                ));
            }
            let twice = format::format(&once, &reparsed.file);
            if twice != once {
                failures.push(format!(
                    "{name}: formatting is not idempotent\n{}",
                    first_difference(&once, &twice)
                ));
            }
        }
    }
    assert!(count > 0, "no .itsm files found");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The first line where two texts differ, for readable failures.
fn first_difference(a: &str, b: &str) -> String {
    let (mut la, mut lb) = (a.lines(), b.lines());
    let mut n = 1;
    loop {
        match (la.next(), lb.next()) {
            (None, None) => return "the texts differ only in line endings".into(),
            (x, y) if x == y => n += 1,
            (x, y) => {
                return format!(
                    "line {n}:\n  first:  {}\n  second: {}",
                    x.unwrap_or("<end>"),
                    y.unwrap_or("<end>")
                )
            }
        }
    }
}
