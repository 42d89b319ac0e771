//! What the engine's tests and benchmarks share: the standard process library as a project.

#![allow(dead_code)] // each test binary uses its own part

use std::path::PathBuf;

use itsmflow_dsl::Sources;
use serde_json::{Map, Value};

/// Every `.itsm` file of `processes/`, sorted, as one project.
pub fn processes() -> Sources {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../processes");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("processes/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "itsm"))
        .collect();
    files.sort();
    let mut sources = Sources::new();
    for f in files {
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        sources.add(name, std::fs::read_to_string(&f).expect("read"));
    }
    sources
}

/// One `.itsm` file, checked: its project, or a panic listing the errors.
pub fn checked_project(name: &str, text: &str) -> itsmflow_engine::model::Project {
    let mut sources = Sources::new();
    sources.add(name, text);
    let checked = itsmflow_engine::check(&sources);
    let errors: Vec<_> = checked
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    checked.project.expect("checked")
}

/// A JSON object literal as a field map.
pub fn fields(v: Value) -> Map<String, Value> {
    v.as_object().cloned().expect("object")
}

/// A PostgreSQL URL with its database replaced by `name` (query parameters kept).
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let server = base.rsplit_once('/').map(|(b, _)| b).unwrap_or(base);
    match query {
        Some(q) => format!("{server}/{name}?{q}"),
        None => format!("{server}/{name}"),
    }
}
