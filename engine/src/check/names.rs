//! Name tables with duplicate detection and "did you mean" suggestions.

use std::collections::HashMap;

use itsmflow_dsl::ast::{Ident, Span};
use itsmflow_dsl::Diagnostic;

/// Declared names of one kind (stages of a process, queues of a project, ...), in order.
#[derive(Clone, Debug)]
pub struct Names {
    /// What the names are, for messages: "stage", "queue".
    pub kind: &'static str,
    index: HashMap<String, u32>,
    spans: Vec<Span>,
    names: Vec<String>,
}

impl Names {
    pub fn new(kind: &'static str) -> Self {
        Names {
            kind,
            index: HashMap::new(),
            spans: Vec::new(),
            names: Vec::new(),
        }
    }

    /// Declare a name; a second declaration of the same name is reported and gets no index.
    pub fn declare(&mut self, ident: &Ident, diags: &mut Vec<Diagnostic>) -> Option<u32> {
        if let Some(&first) = self.index.get(&ident.name) {
            diags.push(
                Diagnostic::error(
                    "duplicate-definition",
                    ident.span,
                    format!("{} `{}` is defined more than once", self.kind, ident.name),
                )
                .with_label("defined again here")
                .with_secondary(self.spans[first as usize], "first defined here")
                .with_help("rename or remove one of them"),
            );
            return None;
        }
        let id = self.names.len() as u32;
        self.index.insert(ident.name.clone(), id);
        self.spans.push(ident.span);
        self.names.push(ident.name.clone());
        Some(id)
    }

    pub fn get(&self, name: &str) -> Option<u32> {
        self.index.get(name).copied()
    }

    pub fn span(&self, id: u32) -> Span {
        self.spans[id as usize]
    }

    pub fn name(&self, id: u32) -> &str {
        &self.names[id as usize]
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(String::as_str)
    }

    /// Resolve a reference, reporting an unknown name with a suggestion.
    pub fn resolve(&self, ident: &Ident, diags: &mut Vec<Diagnostic>) -> Option<u32> {
        if let Some(id) = self.get(&ident.name) {
            return Some(id);
        }
        diags.push(unknown(self.kind, ident, self.iter()));
        None
    }
}

/// The diagnostic for a reference to a name that is not declared.
pub fn unknown<'a>(
    kind: &str,
    ident: &Ident,
    candidates: impl Iterator<Item = &'a str>,
) -> Diagnostic {
    let code = match kind {
        "stage" => "unknown-stage",
        "queue" => "unknown-queue",
        "role" => "unknown-role",
        "calendar" => "unknown-calendar",
        "field" => "unknown-field",
        "priority" => "unknown-priority",
        "transition" => "unknown-transition",
        "process" => "unknown-process",
        "link" => "unknown-link",
        _ => "unknown-name",
    };
    let d = Diagnostic::error(code, ident.span, format!("unknown {kind} `{}`", ident.name))
        .with_label(format!("no {kind} has this name"));
    let candidates: Vec<&str> = candidates.filter(|c| !c.is_empty()).collect();
    match did_you_mean(&ident.name, candidates.iter().copied()) {
        Some(s) => d.with_help(format!("did you mean `{s}`?")),
        None if !candidates.is_empty() && candidates.len() <= MAX_LISTED => d.with_help(format!(
            "declared {} are: {}",
            plural(kind),
            candidates.join(", ")
        )),
        None => d,
    }
}

/// Unknown names list the declared ones when there are no more than this.
const MAX_LISTED: usize = 8;

/// `priority` -> `priorities`, `process` -> `processes`, `stage` -> `stages`.
fn plural(kind: &str) -> String {
    if let Some(stem) = kind.strip_suffix('y') {
        format!("{stem}ies")
    } else if kind.ends_with('s') {
        format!("{kind}es")
    } else {
        format!("{kind}s")
    }
}

/// `1 value`, `2 values`.
pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The closest candidate to `name`, if it is close enough to be a likely typo.
///
/// Short names (three characters or fewer) are too close to each other for edit distance
/// alone: priority `P4` is one edit from `P1`, yet almost surely not a typo of it. For them
/// the candidate must be one edit away (a case difference is none) and have the same digits:
/// `p1` or `1P` for `P1` and `hgh` for `high`, but not `P4` or `P12` for `P1`.
pub fn did_you_mean<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let lower = name.to_lowercase();
    let short = name.chars().count() <= 3;
    let limit = if short { 1 } else { name.chars().count() / 3 };
    candidates
        .filter(|c| !c.is_empty())
        .map(|c| (c, c.to_lowercase()))
        .map(|(c, cl)| (strsim::damerau_levenshtein(&lower, &cl), c, cl))
        .filter(|(d, _, cl)| *d <= limit && (!short || same_digits(&lower, cl)))
        .min_by_key(|(d, c, _)| (*d, *c))
        .map(|(_, c, _)| c)
}

/// Whether `a` and `b` have the same digits in the same order.
fn same_digits(a: &str, b: &str) -> bool {
    a.chars()
        .filter(char::is_ascii_digit)
        .eq(b.chars().filter(char::is_ascii_digit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        let names = ["service_desk", "network", "vendor"];
        assert_eq!(did_you_mean("netwrok", names.into_iter()), Some("network"));
        assert_eq!(
            did_you_mean("servicedesk", names.into_iter()),
            Some("service_desk")
        );
        assert_eq!(did_you_mean("finance", names.into_iter()), None);
    }

    #[test]
    fn short_names_differing_in_a_digit_are_not_typos() {
        let priorities = ["P1", "P2", "P3"];
        assert_eq!(did_you_mean("P4", priorities.into_iter()), None);
        assert_eq!(did_you_mean("P12", priorities.into_iter()), None);
        assert_eq!(did_you_mean("P", priorities.into_iter()), None);
        assert_eq!(did_you_mean("p2", priorities.into_iter()), Some("P2"));
        assert_eq!(did_you_mean("1P", priorities.into_iter()), Some("P1"));
        assert_eq!(
            did_you_mean("hgh", ["high", "low"].into_iter()),
            Some("high")
        );
        assert_eq!(did_you_mean("fry", ["fri", "sat"].into_iter()), Some("fri"));
    }

    #[test]
    fn unknown_names_list_few_candidates() {
        let ident = Ident {
            name: "P4".into(),
            span: Span::default(),
        };
        let d = unknown("priority", &ident, ["P1", "P2", "P3"].into_iter());
        assert_eq!(
            d.help.as_deref(),
            Some("declared priorities are: P1, P2, P3")
        );
        assert_eq!(plural("process"), "processes");
        assert_eq!(count(1, "value", "values"), "1 value");
    }
}
