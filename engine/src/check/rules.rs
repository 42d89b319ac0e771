//! Rules: rhai compiled once, in the sandbox they run in, with rhai's errors mapped to the
//! place in the `.itsm` file where they are; then typed against the process's fields
//! ([`super::rhai_types`]).

use std::rc::Rc;

use itsmflow_dsl::ast::{self, RuleTarget, Span};
use itsmflow_dsl::Diagnostic;

use super::names::Names;
use super::process::ProcessScope;
use super::rhai_types::{self, offset_of, Expect, Strs, Ty, Var};
use crate::model::{
    FieldId, FieldType, PriorityTable, Rule, RuleKind, RuleReads, Transition, TransitionId,
};
use crate::script;

/// What the rules' types depend on besides the process's names.
pub(super) struct RuleContext<'a> {
    pub transitions: &'a [Transition],
    pub priority_table: Option<&'a PriorityTable>,
}

pub(super) fn check_rules(
    rules: &[&ast::Rule],
    scope: &ProcessScope,
    context: &RuleContext,
    diags: &mut Vec<Diagnostic>,
) -> Vec<Rule> {
    if rules.is_empty() {
        return Vec::new();
    }
    let engine = script::sandboxed_engine();
    let rhai_scope = script::compile_scope(scope.fields.iter(), scope.priorities.iter());
    let types = Types::new(scope, context);
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
            Ok(ast) => {
                types.check(r, &kind, &ast, scope, context, diags);
                out.push(Rule {
                    name: r.name.name.clone(),
                    kind,
                    source: r.code.text.clone(),
                    ast,
                    reads: reads(&r.code.text, scope),
                })
            }
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

/// The types of what rules read, shared by a process's rules.
struct Types {
    /// Per field: an enum's values.
    enums: Vec<Option<Rc<Strs>>>,
    stages: Rc<Strs>,
    /// The ticket always has a priority (the table decides one from required fields).
    priority_always_set: bool,
    has_priorities: bool,
}

impl Types {
    fn new(scope: &ProcessScope, context: &RuleContext) -> Types {
        let enums = scope
            .field_models
            .iter()
            .map(|f| match f.ty.element().unwrap_or(&f.ty) {
                // A `list(enum(..))`'s elements are its values.
                FieldType::Enum(values) => Some(Rc::new(Strs {
                    values: values.clone(),
                    of: Some(format!("`{}`", f.name)),
                })),
                _ => None,
            })
            .collect();
        let stages = Rc::new(Strs {
            values: scope.stages.iter().map(str::to_string).collect(),
            of: Some(format!("`{}`", script::STAGE_VARIABLE)),
        });
        let priority_always_set = context.priority_table.is_some_and(|t| {
            t.fields.iter().all(|f| {
                scope
                    .field_models
                    .get(f.index())
                    .is_some_and(|m| m.required)
            })
        });
        Types {
            enums,
            stages,
            priority_always_set,
            has_priorities: scope.priorities.iter().next().is_some(),
        }
    }

    /// Type the rule and report what it finds.
    fn check(
        &self,
        r: &ast::Rule,
        kind: &RuleKind,
        ast: &rhai::AST,
        scope: &ProcessScope,
        context: &RuleContext,
        diags: &mut Vec<Diagnostic>,
    ) {
        // A field is set where a rule runs when it is required (a ticket never lacks one: it
        // is asked for at creation and cannot be cleared), and in a guard when every
        // transition the guard is on requires it (checked before guards run). A field with
        // only a default may be cleared by an update, so it may be unset.
        let guarded: Option<Vec<&Transition>> = match kind {
            RuleKind::Guard(ts) => Some(
                ts.iter()
                    .filter_map(|t| context.transitions.get(t.index()))
                    .collect(),
            ),
            RuleKind::Computes(_) => None,
        };
        let mut vars: Vec<Var> = Vec::with_capacity(scope.field_models.len() + 8);
        for (i, f) in scope.field_models.iter().enumerate() {
            let required_here = guarded.as_ref().is_some_and(|ts| {
                !ts.is_empty() && ts.iter().all(|t| t.requires.iter().any(|x| x.index() == i))
            });
            let may_be_unset = !f.required && !required_here;
            vars.push(Var {
                name: f.name.clone(),
                ty: Ty::field(&f.ty, self.enums[i].clone(), may_be_unset),
                constant: false,
                unset_help: may_be_unset.then(|| unset_help(f)),
            });
        }
        vars.push(Var {
            name: script::STAGE_VARIABLE.to_string(),
            ty: Ty::one_of(self.stages.clone()),
            constant: false,
            unset_help: None,
        });
        let priority = if !self.has_priorities {
            Ty::new(rhai_types::Kinds::UNIT)
        } else if self.priority_always_set {
            Ty::int(true)
        } else {
            Ty::int(true).with_unit()
        };
        vars.push(Var {
            name: script::PRIORITY_VARIABLE.to_string(),
            ty: priority,
            constant: false,
            unset_help: Some(format!(
                "`priority` is `()` while the ticket has none (the priority table reads fields \
                 that are not all required): check `priority != () && ...` first, or write \
                 `(priority ?? {})`",
                scope.priorities.iter().count().max(1)
            )),
        });
        for level in scope.priorities.iter() {
            vars.push(Var {
                name: level.to_string(),
                ty: Ty::int(true),
                constant: true,
                unset_help: None,
            });
        }
        let expect = match kind {
            RuleKind::Guard(_) => Expect::Guard,
            RuleKind::Computes(f) => match scope.field_models.get(f.index()) {
                Some(field) => Expect::Computes {
                    field: &field.name,
                    ty: &field.ty,
                    required: field.required,
                },
                None => return,
            },
        };
        let base = r.code.span.start as usize;
        for f in rhai_types::check_rule(ast, &r.code.text, vars, &expect) {
            let span = Span::new(r.code.span.file, base + f.start, base + f.end.max(f.start));
            let d = if f.warning {
                Diagnostic::warning(f.code, span, f.message)
            } else {
                Diagnostic::error(f.code, span, f.message)
            };
            let d = d.with_label(f.label);
            diags.push(match f.help {
                Some(h) => d.with_help(h),
                None => d,
            });
        }
    }
}

/// What to do about a field being unset in a rule.
fn unset_help(f: &crate::model::Field) -> String {
    let name = &f.name;
    match &f.default {
        Some(v) => format!(
            "`{name}` has a default but is not `required`, so a ticket's update may clear it: \
             declare it `required` (new tickets still get the default), or write \
             `({name} ?? {})`",
            rhai_literal(&f.ty, v)
        ),
        None => {
            let fallback = match &f.ty {
                FieldType::Text | FieldType::Person | FieldType::Enum(_) => "\"\"",
                FieldType::Bool => "false",
                FieldType::List(_) => "[]",
                _ => "0",
            };
            format!(
                "an unset field reaches a rule as `()`: check it first (`{name} != () && ...`), \
                 or give a value for when it is unset: `({name} ?? {fallback})`"
            )
        }
    }
}

/// A value as rhai source, as a rule sees it.
fn rhai_literal(ty: &FieldType, v: &crate::model::Value) -> String {
    use crate::model::Value;
    match (v, ty) {
        (Value::Text(s), _) => format!("{:?}", s.as_ref()),
        (Value::Int(n), _) => n.to_string(),
        (Value::Bool(b), _) => b.to_string(),
        (Value::Enum(i), FieldType::Enum(values)) => values
            .get(*i as usize)
            .map_or_else(|| "()".to_string(), |s| format!("{s:?}")),
        (Value::Enum(i), _) => i.to_string(),
        (Value::Duration(d, s), _) => d.saturating_mul(86_400).saturating_add(*s).to_string(),
        (Value::DateTime(t), _) => t.to_string(),
        (Value::List(elements), _) => {
            let element = ty.element().unwrap_or(ty);
            let items: Vec<String> = elements.iter().map(|e| rhai_literal(element, e)).collect();
            format!("[{}]", items.join(", "))
        }
    }
}
