//! Name tables with duplicate detection and "did you mean" suggestions.

use std::collections::HashMap;

use itsmflow_dsl::ast::{Ident, Span};
use itsmflow_dsl::Diagnostic;

/// Declared names of one kind (stages of a process, queues of a project, ...), in order.
#[derive(Debug)]
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
                .with_help(format!("rename or remove one of the two {}s", self.kind)),
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
        _ => "unknown-name",
    };
    let d = Diagnostic::error(code, ident.span, format!("unknown {kind} `{}`", ident.name))
        .with_label(format!("no {kind} has this name"));
    match did_you_mean(&ident.name, candidates) {
        Some(s) => d.with_help(format!("did you mean `{s}`?")),
        None => d,
    }
}

/// The closest candidate to `name`, if it is close enough to be a likely typo.
pub fn did_you_mean<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let lower = name.to_lowercase();
    let limit = (name.chars().count() / 3).max(1);
    candidates
        .filter(|c| !c.is_empty())
        .map(|c| (strsim::damerau_levenshtein(&lower, &c.to_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, c)| (*d, *c))
        .map(|(_, c)| c)
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
}
