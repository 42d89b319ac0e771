//! Conditions in `routing` and `approval`: subjects resolved, values typed like their subject,
//! ordering only where the type has an order.

use itsmflow_dsl::ast::{self, Ident, Literal, LiteralKind};
use itsmflow_dsl::Diagnostic;

use super::names::{self, Names};
use super::values::{push_value_error, typed_value};
use crate::model::{Condition, FieldId, FieldType, Operand, PriorityId, Subject};

/// What a condition in a process can refer to.
pub struct CondScope<'a> {
    pub fields: &'a Names,
    pub field_types: &'a [FieldType],
    pub priorities: &'a Names,
}

impl CondScope<'_> {
    fn subject(&self, ident: &Ident, diags: &mut Vec<Diagnostic>) -> Option<Subject> {
        if ident.name == "priority" {
            if self.priorities.len() == 0 {
                diags.push(
                    Diagnostic::error(
                        "no-priorities",
                        ident.span,
                        "this process has no priorities",
                    )
                    .with_label("compared here")
                    .with_help("declare them first, e.g. `priorities P1, P2, P3`"),
                );
                return None;
            }
            return Some(Subject::Priority);
        }
        match self.fields.get(&ident.name) {
            Some(id) => Some(Subject::Field(FieldId(id))),
            None => {
                let candidates = self.fields.iter().chain(std::iter::once("priority"));
                diags.push(names::unknown("field", ident, candidates));
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
            // TODO(links): stage operands of linked tickets.
            Subject::Stage => None,
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
                if op.node.is_ordering() && !self.is_ordered(s) {
                    let ty = match s {
                        Subject::Field(f) => self.field_types[f.index()].to_string(),
                        Subject::Priority => "priority".into(),
                        Subject::Stage => "stage".into(),
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
                subject, values, ..
            } => {
                let s = self.subject(subject, diags)?;
                let mut out = Vec::with_capacity(values.len());
                let mut ok = true;
                for v in values {
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
        }
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
