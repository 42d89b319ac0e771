//! What the checker's unit tests share: a one-file project checked, and its problems as codes
//! with the text each points at.

use itsmflow_dsl::Sources;

/// A project of one file, `p.itsm`, checked.
pub fn checked(text: &str) -> crate::Checked {
    let mut sources = Sources::new();
    sources.add("p.itsm", text);
    crate::check(&sources)
}

/// The codes and the text they point at.
pub fn problems(text: &str) -> Vec<(&'static str, String)> {
    checked(text)
        .diagnostics
        .iter()
        .map(|d| (d.code, text[d.span.range()].to_string()))
        .collect()
}
