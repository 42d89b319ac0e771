//! Rules: rhai compiled once, in the sandbox they run in, with rhai's errors mapped to the
//! place in the `.itsm` file where they are.

use itsmflow_dsl::ast::{self, RuleTarget, Span};
use itsmflow_dsl::Diagnostic;

use super::names::Names;
use super::process::ProcessScope;
use crate::model::{FieldId, Rule, RuleKind, RuleReads, TransitionId};
use crate::script;

/// The byte offset in `code` of rhai's 1-based line and column (columns count characters).
fn offset_of(code: &str, line: usize, column: usize) -> usize {
    let mut offset = 0;
    for (i, l) in code.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            let col = l
                .char_indices()
                .nth(column.saturating_sub(1))
                .map(|(o, _)| o)
                .unwrap_or(l.trim_end_matches('\n').len());
            return offset + col;
        }
        offset += l.len();
    }
    code.len()
}

pub(super) fn check_rules(
    rules: &[&ast::Rule],
    scope: &ProcessScope,
    diags: &mut Vec<Diagnostic>,
) -> Vec<Rule> {
    if rules.is_empty() {
        return Vec::new();
    }
    let engine = script::sandboxed_engine();
    let rhai_scope = script::compile_scope(scope.fields.iter(), scope.priorities.iter());
    let mut names = Names::new("rule");
    let mut out = Vec::with_capacity(rules.len());
    for r in rules {
        if names.declare(&r.name, diags).is_none() {
            continue;
        }
        let kind = match &r.target {
            RuleTarget::Guard(ts) => RuleKind::Guard(
                ts.iter()
                    .filter_map(|t| scope.transitions.resolve(t, diags).map(TransitionId))
                    .collect(),
            ),
            RuleTarget::Computes(f) => {
                RuleKind::Computes(FieldId(scope.fields.resolve(f, diags).unwrap_or(0)))
            }
        };
        if r.code.text.trim().is_empty() {
            diags.push(
                Diagnostic::error(
                    "empty-rule",
                    r.name.span,
                    format!("rule `{}` has no body", r.name),
                )
                .with_label("nothing to evaluate")
                .with_help("write a rhai expression between the braces, e.g. `resolution != \"\"`"),
            );
            continue;
        }
        match engine.compile_with_scope(&rhai_scope, &r.code.text) {
            Ok(ast) => out.push(Rule {
                name: r.name.name.clone(),
                kind,
                source: r.code.text.clone(),
                ast,
                reads: reads(&r.code.text, scope),
            }),
            Err(e) => {
                let pos = e.position();
                let start = match (pos.line(), pos.position()) {
                    (Some(line), col) => {
                        r.code.span.start as usize + offset_of(&r.code.text, line, col.unwrap_or(1))
                    }
                    _ => r.code.span.start as usize,
                };
                let mut end = (start + 1).min(r.code.span.end as usize).max(start);
                let message = e.err_type().to_string();
                let help = if let rhai::ParseErrorType::VariableUndefined(name) = e.err_type() {
                    // rhai points at the start of the name: underline all of it.
                    let at = start - r.code.span.start as usize;
                    if r.code
                        .text
                        .get(at..)
                        .is_some_and(|rest| rest.starts_with(name.as_str()))
                    {
                        end = start + name.len();
                    }
                    undefined_variable_help(name, scope)
                } else {
                    "rules are rhai expressions; see docs/language.md".to_string()
                };
                diags.push(
                    Diagnostic::error(
                        "rhai-syntax",
                        Span::new(r.code.span.file, start, end),
                        format!("rule `{}` does not compile: {message}", r.name),
                    )
                    .with_label("here")
                    .with_help(help),
                );
            }
        }
    }
    out
}

/// The variables of the process that `code` names: every word of it that is a field, `stage`,
/// `priority` or a priority level. Scanning words rather than rhai's syntax tree can only add
/// names (one inside a string, say), never miss one the rule reads.
fn reads(code: &str, scope: &ProcessScope) -> RuleReads {
    let mut out = RuleReads::default();
    let words = code
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty());
    for word in words {
        if let Some(f) = scope.fields.get(word) {
            let f = FieldId(f);
            if !out.fields.contains(&f) {
                out.fields.push(f);
            }
        } else if word == script::STAGE_VARIABLE {
            out.stage = true;
        } else if word == script::PRIORITY_VARIABLE {
            out.priority = true;
        } else if let Some(level) = scope.priorities.get(word) {
            let level = level as usize;
            if !out.levels.contains(&level) {
                out.levels.push(level);
            }
        }
    }
    out.fields.sort_unstable();
    out.levels.sort_unstable();
    out
}

/// What a rule could have meant by a variable that is not in its scope, and what it can read.
fn undefined_variable_help(name: &str, scope: &ProcessScope) -> String {
    let fields: Vec<&str> = scope.fields.iter().collect();
    let priorities: Vec<&str> = scope.priorities.iter().collect();
    let known = fields
        .iter()
        .chain(&[script::STAGE_VARIABLE, script::PRIORITY_VARIABLE])
        .chain(&priorities)
        .copied();
    let mut parts = Vec::new();
    if !fields.is_empty() {
        parts.push(format!("the fields ({})", fields.join(", ")));
    }
    parts.push(format!("`{}`", script::STAGE_VARIABLE));
    parts.push(format!("`{}`", script::PRIORITY_VARIABLE));
    if !priorities.is_empty() {
        parts.push(format!("the priority levels ({})", priorities.join(", ")));
    }
    let last = parts.pop().unwrap_or_default();
    let readable = format!("rules can read {} and {last}", parts.join(", "));
    match super::names::did_you_mean(name, known) {
        Some(s) => format!("did you mean `{s}`? {readable}"),
        None => readable,
    }
}
