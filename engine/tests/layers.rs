//! The engine's layers, checked on its source: the shared records (`src/record`) name neither
//! the store nor the runtime, and the store (`src/store`) names nothing of the runtime. Each
//! reads what it needs through the records (a store turns names into ids through
//! `record::Definitions`, not the runtime's catalog), so a store is written, read and tested
//! without the runtime.
//!
//! The check is on words, not on Rust's name resolution: code (what is left of a line before
//! `//`) in a layer may not contain the module's name as a whole identifier at all, which
//! catches `crate::runtime::…`, `super::super::runtime` and `use crate::{runtime::…}` alike.
//! Comments may speak of the runtime.

use std::path::{Path, PathBuf};

/// The Rust files under `dir`, at any depth, in a stable order.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
        for entry in entries {
            let path = entry
                .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
                .path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Whether the code of `line` (comments cut off) names `module`: the word as a whole
/// identifier, other than tokio's module of that name.
fn names(line: &str, module: &str) -> bool {
    let code = line.split("//").next().unwrap_or_default();
    code.match_indices(module).any(|(at, _)| {
        let before = &code[..at];
        let after = &code[at + module.len()..];
        let whole = !before.ends_with(is_ident_char) && !after.starts_with(is_ident_char);
        whole && !before.ends_with("tokio::")
    })
}

/// Every line of the files under `src/<layer>` that names one of `forbidden`, as
/// `file:line: text`.
fn violations(layer: &str, forbidden: &[&str]) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src")
        .join(layer);
    let files = rust_files(&root);
    assert!(!files.is_empty(), "no Rust files under {}", root.display());
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
        for (i, line) in text.lines().enumerate() {
            if forbidden.iter().any(|module| names(line, module)) {
                found.push(format!("{}:{}: {}", file.display(), i + 1, line.trim()));
            }
        }
    }
    found
}

#[test]
fn the_store_names_nothing_of_the_runtime() {
    let found = violations("store", &["runtime"]);
    assert!(
        found.is_empty(),
        "the store depends on the records, not on the runtime (use crate::record, and \
         record::Definitions for the catalog); found:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_records_name_neither_the_store_nor_the_runtime() {
    let found = violations("record", &["runtime", "store"]);
    assert!(
        found.is_empty(),
        "the records are the layer below the store and the runtime; found:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_check_sees_every_way_of_naming_a_module() {
    for line in [
        "use crate::runtime::types::*;",
        "use crate::{model, runtime::codec};",
        "use super::super::runtime::catalog::Catalog;",
        "    catalog: Arc<crate::runtime::Catalog>, // the engine's",
        "pub use runtime::Catalog;",
    ] {
        assert!(names(line, "runtime"), "missed: {line}");
    }
    for line in [
        "//! Persistence for the runtime.",
        "    /// Start tasks on the current runtime",
        "let tasks = 1; // see crate::runtime::engine",
        "let handle = tokio::runtime::Handle::current();",
        "let runtime_stats = 0;",
        "let storefront = 1;",
    ] {
        assert!(
            !names(line, "runtime") && !names(line, "store"),
            "wrongly flagged: {line}"
        );
    }
}
