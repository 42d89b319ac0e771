//! Entries as the language writes them, for a diff to show.
//!
//! Everything is printed by the canonical formatter (`itsmflow_dsl::format`), never by hand, so
//! a diff shows an entry exactly as `itsmflow fmt` and `itsmflow effective` print it. The
//! formatter prints whole files; an entry is printed inside a stand-in process (or as a
//! tailoring's `add` of it, which is the one-line form of entries kept in blocks: `target P1:
//! ...`, `route sap: ...`) and cut out again. The stand-ins have no source text, so no comment
//! or blank line is printed.

use itsmflow_dsl::ast::{
    File, Ident, Item, Member, Overlay, OverlayEntry, Process, Role, Span, Spanned, Verb,
};
use itsmflow_dsl::format;

/// One indentation level of the formatter's output.
const INDENT: &str = "  ";

/// A name for the stand-ins an entry is printed in.
pub(super) fn ident(name: &str) -> Ident {
    Ident {
        name: name.to_string(),
        span: Span::default(),
    }
}

/// A top-level item as the formatter prints it, without the final line break.
pub(super) fn item(item: Item) -> String {
    format::format("", &File { items: vec![item] })
        .trim_end()
        .to_string()
}

/// A process member as the formatter prints it inside a process, unindented.
pub(super) fn member(member: Member) -> String {
    let process = Process {
        name: ident("x"),
        label: None,
        tailoring: None,
        members: vec![member],
        span: Span::default(),
    };
    body(&item(Item::Process(process)))
}

/// An entry written as a tailoring writes it after `add`: the one line a field, a target row,
/// a route or an escalation step has outside its block (`target P1: respond 10m, resolve 2h`).
pub(super) fn entry(entry: OverlayEntry) -> String {
    let overlay = Overlay {
        verb: Spanned::new(Verb::Add, Span::default()),
        entry,
        span: Span::default(),
    };
    let text = member(Member::Overlay(overlay));
    match text.strip_prefix("add ") {
        Some(rest) => rest.to_string(),
        None => text,
    }
}

/// A label as written (`"Awaiting vendor"`, quoted and escaped), printed as a role's.
pub(super) fn label(label: &Option<Spanned<String>>) -> Option<String> {
    let label = label.as_ref()?;
    let role = Role {
        name: ident("x"),
        label: Some(label.clone()),
        span: Span::default(),
    };
    let text = item(Item::Role(role));
    Some(text.strip_prefix("role x ").unwrap_or(&text).to_string())
}

/// The lines between a block's first line (`... {`) and its closing `}`, one level less
/// indented. A block printed without braces (`stage new initial`) has none.
pub(super) fn body(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    if lines.len() < 2 || !lines[0].ends_with('{') {
        return String::new();
    }
    lines[1..lines.len() - 1]
        .iter()
        .map(|l| l.strip_prefix(INDENT).unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A text of several lines on one: each line trimmed, joined by a space. The language does not
/// care about line breaks, so the result still reads as what was written.
pub(super) fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The entries of a formatted block's body, each on one line: a line at the body's own
/// indentation starts an entry, deeper lines and a closing `}` continue it.
pub(super) fn body_entries(text: &str) -> Vec<String> {
    let mut entries: Vec<String> = Vec::new();
    for line in body(text).lines() {
        let continues = line.starts_with(' ') || line.starts_with('}');
        match entries.last_mut() {
            Some(last) if continues => {
                last.push(' ');
                last.push_str(line.trim());
            }
            _ => entries.push(line.trim().to_string()),
        }
    }
    entries
}

/// An entry's line split into what it sets and its value: `tier 2` is `tier` and `2`. The
/// keyword is the first word, or the first two for the keywords that are read with the next
/// (`on approve`, `item laptop`, `then perform`).
pub(super) fn keyed(line: &str) -> (String, String) {
    let words = match line.split(' ').next() {
        Some("on" | "item" | "then") => 2,
        _ => 1,
    };
    let mut split = line.splitn(words + 1, ' ');
    let key: Vec<&str> = split.by_ref().take(words).collect();
    (key.join(" "), split.next().unwrap_or_default().to_string())
}
