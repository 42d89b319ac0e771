//! Conditions in `routing`, `approval` and a transition's `when`: subjects resolved, values
//! typed like their subject, ordering only where the type has an order; link conditions only
//! in `when`, their tests against the linked process.

use itsmflow_dsl::ast::{self, Ident, Literal, LiteralKind};
use itsmflow_dsl::Diagnostic;

use super::links::Signature;
use super::names::{self, Names};
use super::values::{push_value_error, typed_value};
use crate::model::{
    Condition, FieldId, FieldType, LinkId, Operand, PriorityId, Quantifier, StageId, Subject, Value,
};

/// What a condition in a process can refer to.
pub struct CondScope<'a> {
    pub fields: &'a Names,
    pub field_types: &'a [FieldType],
    pub priorities: &'a Names,
    /// The stages `stage` may be compared with: the linked process's, inside a link
    /// condition's `where`; `None` elsewhere, where `stage` is no subject.
    pub stages: Option<&'a Names>,
    /// Whether link conditions may be written here, and over which links.
    pub links: LinkAccess<'a>,
}

/// Where a condition is, as far as link conditions (`any caused_by ...`) go.
#[derive(Clone, Copy)]
pub enum LinkAccess<'a> {
    /// Routing or an approval rule, decided without reading linked tickets: link conditions
    /// are refused. `what` names the place ("routing"), `why` says when it is decided.
    Refused {
        what: &'static str,
        why: &'static str,
    },
    /// A transition's `when`: over the links `process` declares, the linked tickets tested
    /// against their process in `project`.
    When {
        process: &'a Signature,
        project: &'a [Signature],
    },
    /// The `where` of a link condition, on a ticket of `linked`: link conditions do not nest.
    InTest { linked: &'a str },
}

impl CondScope<'_> {
    fn subject(&self, ident: &Ident, diags: &mut Vec<Diagnostic>) -> Option<Subject> {
        if ident.name == "priority" {
            if self.priorities.len() == 0 {
                let message = match self.links {
                    LinkAccess::InTest { linked } => format!("`{linked}` has no priorities"),
                    _ => "this process has no priorities".to_string(),
                };
                diags.push(
                    Diagnostic::error("no-priorities", ident.span, message)
                        .with_label("compared here")
                        .with_help("declare them first, e.g. `priorities P1, P2, P3`"),
                );
                return None;
            }
            return Some(Subject::Priority);
        }
        if ident.name == "stage" {
            if self.stages.is_some() {
                return Some(Subject::Stage);
            }
            let help = match self.links {
                LinkAccess::When { .. } => {
                    "the transition's `from` already says which stage this ticket is in; `stage` is the stage of a linked ticket, in `any LINK where stage == ...`"
                }
                _ => "`stage` is the stage of a linked ticket, in a transition's `when any LINK where stage == ...`",
            };
            diags.push(
                Diagnostic::error(
                    "stage-outside-link",
                    ident.span,
                    "`stage` can only be compared inside a link condition",
                )
                .with_label("not a field")
                .with_help(help),
            );
            return None;
        }
        match self.fields.get(&ident.name) {
            Some(id) => Some(Subject::Field(FieldId(id))),
            None => {
                let extra: &[&str] = if self.stages.is_some() {
                    &["priority", "stage"]
                } else {
                    &["priority"]
                };
                let candidates = self.fields.iter().chain(extra.iter().copied());
                let mut d = names::unknown("field", ident, candidates);
                if let LinkAccess::InTest { linked } = self.links {
                    d.message = format!("`{linked}` has no field `{}`", ident.name);
                    d.label = format!("not a field of `{linked}`, the linked process");
                }
                diags.push(d);
                None
            }
        }
    }

    fn operand(
        &self,
        subject: Subject,
        name: &Ident,
        lit: &Literal,
        diags: &mut Vec<Diagnostic>,
    ) -> Option<Operand> {
        match subject {
            Subject::Priority => match &lit.kind {
                LiteralKind::Symbol(s) => match self.priorities.get(s) {
                    Some(p) => Some(Operand::Priority(PriorityId(p))),
                    None => {
                        let ident = Ident {
                            name: s.clone(),
                            span: lit.span,
                        };
                        diags.push(names::unknown("priority", &ident, self.priorities.iter()));
                        None
                    }
                },
                _ => {
                    diags.push(
                        Diagnostic::error(
                            "type-mismatch",
                            lit.span,
                            "`priority` is compared with a priority level",
                        )
                        .with_label("not a priority")
                        .with_help(format!(
                            "priorities are: {}",
                            self.priorities.iter().collect::<Vec<_>>().join(", ")
                        )),
                    );
                    None
                }
            },
            Subject::Stage => {
                let stages = self.stages?;
                match &lit.kind {
                    LiteralKind::Symbol(s) => match stages.get(s) {
                        Some(st) => Some(Operand::Stage(StageId(st))),
                        None => {
                            let ident = Ident {
                                name: s.clone(),
                                span: lit.span,
                            };
                            let mut d = names::unknown("stage", &ident, stages.iter());
                            if let LinkAccess::InTest { linked } = self.links {
                                d.message = format!("`{linked}` has no stage `{s}`");
                            }
                            diags.push(d);
                            None
                        }
                    },
                    _ => {
                        diags.push(
                            Diagnostic::error(
                                "type-mismatch",
                                lit.span,
                                "`stage` is compared with a stage's name",
                            )
                            .with_label("not a stage")
                            .with_help(format!(
                                "stages are: {}",
                                stages.iter().collect::<Vec<_>>().join(", ")
                            )),
                        );
                        None
                    }
                }
            }
            Subject::Field(f) => {
                let ty = &self.field_types[f.index()];
                match typed_value(&name.name, ty, lit) {
                    Ok(v) => Some(Operand::Value(v)),
                    Err(d) => {
                        push_value_error(diags, lit, *d);
                        None
                    }
                }
            }
        }
    }

    fn is_ordered(&self, subject: Subject) -> bool {
        match subject {
            Subject::Priority => true,
            Subject::Stage => false,
            Subject::Field(f) => matches!(
                self.field_types[f.index()],
                FieldType::Int | FieldType::Duration | FieldType::DateTime
            ),
        }
    }

    /// Resolve a condition; `None` if any part of it is wrong (each problem is reported, here or,
    /// for a condition nested too deeply, by the parser).
    pub fn resolve(&self, cond: &ast::Condition, diags: &mut Vec<Diagnostic>) -> Option<Condition> {
        match cond {
            ast::Condition::Or(parts, _) => self.all(parts, diags).map(Condition::Or),
            ast::Condition::And(parts, _) => self.all(parts, diags).map(Condition::And),
            ast::Condition::Not(inner, _) => self
                .resolve(inner, diags)
                .map(|c| Condition::Not(Box::new(c))),
            ast::Condition::Compare {
                subject, op, value, ..
            } => {
                let s = self.subject(subject, diags)?;
                if self.refuse_list(s, subject, op.node.as_str(), op.span, diags) {
                    return None;
                }
                if op.node.is_ordering() && !self.is_ordered(s) {
                    let ty = match s {
                        Subject::Field(f) => self.field_types[f.index()].to_string(),
                        Subject::Priority => "priority".into(),
                        Subject::Stage => "a stage".into(),
                    };
                    diags.push(
                        Diagnostic::error(
                            "type-mismatch",
                            op.span,
                            format!("`{}` is {ty}, which has no order", subject.name),
                        )
                        .with_label(format!(
                            "`{}` needs numbers, durations or dates",
                            op.node.as_str()
                        ))
                        .with_help("compare with `==` or `!=`, or list values with `in (a, b)`"),
                    );
                    return None;
                }
                let value = self.operand(s, subject, value, diags)?;
                Some(Condition::Compare {
                    subject: s,
                    op: op.node,
                    value,
                })
            }
            // Reported by the parser (`condition-too-deep`) and not converted.
            ast::Condition::TooDeep(..) => None,
            ast::Condition::In {
                subject,
                values,
                span,
            } => {
                let s = self.subject(subject, diags)?;
                if self.refuse_list(s, subject, "in", *span, diags) {
                    return None;
                }
                let mut out = Vec::with_capacity(values.len());
                let mut ok = true;
                for v in values {
                    if let LiteralKind::Prefix(prefix) = &v.kind {
                        match self.under_subject(s, subject, prefix, v.span, diags) {
                            Some(found) => out.extend(found),
                            None => ok = false,
                        }
                        continue;
                    }
                    match self.operand(s, subject, v, diags) {
                        Some(o) => out.push(o),
                        None => ok = false,
                    }
                }
                ok.then_some(Condition::In {
                    subject: s,
                    values: out,
                })
            }
            ast::Condition::Has { subject, value, .. } => {
                let (field, element) = self.list_field(subject, "has", diags)?;
                let values = match &value.kind {
                    LiteralKind::Prefix(prefix) => self
                        .under(element, subject, prefix, value.span, diags)?
                        .into_iter()
                        .filter_map(|o| match o {
                            Operand::Value(v) => Some(v),
                            _ => None,
                        })
                        .collect(),
                    _ => match typed_value(&subject.name, element, value) {
                        Ok(v) => vec![v],
                        Err(d) => {
                            push_value_error(diags, value, *d);
                            return None;
                        }
                    },
                };
                Some(Condition::Has { field, values })
            }
            ast::Condition::Empty { subject, .. } => {
                let (field, _) = self.list_field(subject, "is empty", diags)?;
                Some(Condition::Empty(field))
            }
            ast::Condition::Linked {
                quantifier,
                link,
                test,
                span,
            } => self.linked(quantifier.node, link, test.as_deref(), *span, diags),
        }
    }

    /// `hardware.*` in an `in` list: the values of an enum field that are `hardware` or under
    /// it (`hardware.laptop`, `hardware.laptop.battery`), in the field's order.
    fn under_subject(
        &self,
        subject: Subject,
        name: &Ident,
        prefix: &str,
        span: ast::Span,
        diags: &mut Vec<Diagnostic>,
    ) -> Option<Vec<Operand>> {
        match subject {
            Subject::Field(f) => {
                self.under(&self.field_types[f.index()], name, prefix, span, diags)
            }
            _ => {
                diags.push(
                    Diagnostic::error(
                        "type-mismatch",
                        span,
                        format!(
                            "`{prefix}.*` picks values of an enum field, not of `{}`",
                            name.name
                        ),
                    )
                    .with_label("not an enum field"),
                );
                None
            }
        }
    }

    /// Whether `subject` is a list field, which a comparison or `in` (`what`) cannot read;
    /// if it is, it is reported, with what to write instead.
    fn refuse_list(
        &self,
        subject: Subject,
        name: &Ident,
        what: &str,
        span: ast::Span,
        diags: &mut Vec<Diagnostic>,
    ) -> bool {
        let Subject::Field(f) = subject else {
            return false;
        };
        let ty = &self.field_types[f.index()];
        if ty.element().is_none() {
            return false;
        }
        diags.push(
            Diagnostic::error(
                "list-comparison",
                span,
                format!("`{name}` is {ty}: a list is not compared with `{what}`"),
            )
            .with_label("reads one value, not a list")
            .with_help(format!(
                "ask whether an element is a value with `{name} has VALUE` (or `{name} has a.*` for a value and those under it), or whether there is none with `{name} is empty`"
            )),
        );
        true
    }

    /// The list field `name` that `has` or `is empty` (`what`) reads, and its element type.
    fn list_field(
        &self,
        name: &Ident,
        what: &str,
        diags: &mut Vec<Diagnostic>,
    ) -> Option<(FieldId, &FieldType)> {
        let Subject::Field(f) = self.subject(name, diags)? else {
            diags.push(
                Diagnostic::error(
                    "not-a-list",
                    name.span,
                    format!("`{name}` is not a list: `{what}` reads a list field"),
                )
                .with_label("not a list field")
                .with_help(format!("compare it with `==`, or `{name} in (a, b)`")),
            );
            return None;
        };
        let ty = &self.field_types[f.index()];
        match ty.element() {
            Some(element) => Some((f, element)),
            None => {
                let help = match what {
                    "has" => format!("`{name}` holds one value: write `{name} == VALUE` or `{name} in (a, b)`, or declare it `list({ty})`"),
                    _ => format!("`{name}` holds one value: ask `{name} == VALUE`, or declare it `list({ty})`"),
                };
                diags.push(
                    Diagnostic::error(
                        "not-a-list",
                        name.span,
                        format!("`{name}` is {ty}, not a list: `{what}` reads a list field"),
                    )
                    .with_label("not a list field")
                    .with_help(help),
                );
                None
            }
        }
    }

    /// `hardware.*` in an `in` list or after `has`: the values of an enum type `ty` that are
    /// `hardware` or under it (`hardware.laptop`, `hardware.laptop.battery`), in its order.
    fn under(
        &self,
        ty: &FieldType,
        name: &Ident,
        prefix: &str,
        span: ast::Span,
        diags: &mut Vec<Diagnostic>,
    ) -> Option<Vec<Operand>> {
        let values = match ty {
            FieldType::Enum(values) => values,
            ty => {
                diags.push(
                    Diagnostic::error(
                        "type-mismatch",
                        span,
                        format!(
                            "`{}` is {ty}: `{prefix}.*` picks values of an enum",
                            name.name
                        ),
                    )
                    .with_label("not an enum's values")
                    .with_help("list the values instead"),
                );
                return None;
            }
        };
        let dotted = format!("{prefix}.");
        let found: Vec<Operand> = values
            .iter()
            .enumerate()
            .filter(|(_, v)| *v == prefix || v.starts_with(&dotted))
            .map(|(i, _)| Operand::Value(Value::Enum(i as u32)))
            .collect();
        if found.is_empty() {
            let tops: Vec<&str> = values
                .iter()
                .map(|v| v.split('.').next().unwrap_or(v))
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            let d = Diagnostic::error(
                "unknown-value",
                span,
                format!("no value of `{}` is `{prefix}` or under it", name.name),
            )
            .with_label("matches nothing");
            diags.push(match names::did_you_mean(prefix, tops.iter().copied()) {
                Some(g) => d.with_help(format!("did you mean `{g}.*`?")),
                None => d.with_help(format!("its values start with: {}", tops.join(", "))),
            });
            return None;
        }
        Some(found)
    }

    /// `any LINK [where TEST]`, `all LINK where TEST`, `no LINK [where TEST]`.
    fn linked(
        &self,
        quantifier: ast::Quantifier,
        link: &Ident,
        test: Option<&ast::Condition>,
        span: ast::Span,
        diags: &mut Vec<Diagnostic>,
    ) -> Option<Condition> {
        let (process, project) = match self.links {
            LinkAccess::Refused { what, why } => {
                diags.push(
                    Diagnostic::error(
                        "link-condition-not-here",
                        span,
                        format!("{what} cannot read linked tickets"),
                    )
                    .with_label("a condition on linked tickets")
                    .with_help(format!(
                        "{why}; conditions on linked tickets belong in a transition's `when`"
                    )),
                );
                return None;
            }
            LinkAccess::InTest { linked } => {
                diags.push(
                    Diagnostic::error(
                        "nested-link-condition",
                        span,
                        "a link condition cannot be nested in another one's `where`",
                    )
                    .with_label(format!("the links of a linked `{linked}` ticket"))
                    .with_help(
                        "a `where` tests each linked ticket's own fields, priority and stage; link the tickets directly to read theirs",
                    ),
                );
                return None;
            }
            LinkAccess::When { process, project } => (process, project),
        };
        let Some(id) = process.links.get(&link.name) else {
            diags.push(process.unknown_link(link));
            return None;
        };
        let decl = &process.link_decls[id as usize].model;
        // An unknown process is reported at the declaration.
        let linked = project.iter().find(|s| s.name == decl.process)?;
        let test = match test {
            Some(t) => {
                let scope = CondScope {
                    fields: &linked.fields,
                    field_types: &linked.field_types,
                    priorities: &linked.priorities,
                    stages: Some(&linked.stages),
                    links: LinkAccess::InTest {
                        linked: &linked.name,
                    },
                };
                Some(Box::new(scope.resolve(t, diags)?))
            }
            None => None,
        };
        Some(Condition::Linked {
            quantifier: match quantifier {
                ast::Quantifier::Any => Quantifier::Any,
                ast::Quantifier::All => Quantifier::All,
                ast::Quantifier::No => Quantifier::No,
            },
            link: LinkId(id),
            test,
        })
    }

    fn all(&self, parts: &[ast::Condition], diags: &mut Vec<Diagnostic>) -> Option<Vec<Condition>> {
        let mut out = Vec::with_capacity(parts.len());
        let mut ok = true;
        for p in parts {
            match self.resolve(p, diags) {
                Some(c) => out.push(c),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }
}
