//! Coverage of ordered `when` rules (routing, approval): which rules can never apply because
//! earlier ones already match every case they cover, and a case that no rule matches.
//!
//! Enum and bool fields and `priority` have finite values, so the analysis enumerates their
//! combinations. A comparison on any other field (text, numbers, dates) becomes an
//! independent true/false unknown. Treating those as independent can only add cases, never
//! remove them, so a rule reported as shadowed really is; an uncovered case may, rarely, be
//! impossible (`x < 5` and `x >= 5` are not known to exclude each other), which is why the
//! help for it is to add `otherwise`.

use std::collections::HashMap;

use super::names::Names;
use crate::model::{CmpOp, Condition, FieldType, Operand, Subject, Value};

/// Combinations beyond this are not enumerated (and nothing is reported).
const MAX_CASES: u64 = 1 << 16;

pub struct Domain<'a> {
    pub fields: &'a Names,
    pub field_types: &'a [FieldType],
    pub priorities: &'a Names,
}

#[derive(Debug, Default)]
pub struct Findings {
    /// Rules (by position) that never apply.
    pub shadowed: Vec<usize>,
    /// A description of one case that no rule matches, if any.
    pub uncovered: Option<String>,
}

enum Var<'c> {
    Finite { subject: Subject, size: u32 },
    Atom(&'c Condition),
}

struct Vars<'c> {
    vars: Vec<Var<'c>>,
    finite: HashMap<Subject, usize>,
    atoms: HashMap<String, usize>,
}

impl<'a> Domain<'a> {
    fn size(&self, subject: Subject) -> Option<u32> {
        match subject {
            Subject::Priority => Some(self.priorities.len() as u32),
            Subject::Field(f) => self.field_types[f.index()]
                .finite_values()
                .map(|n| n as u32),
        }
    }

    fn collect<'c>(&self, c: &'c Condition, vars: &mut Vars<'c>) {
        match c {
            Condition::Or(parts) | Condition::And(parts) => {
                parts.iter().for_each(|p| self.collect(p, vars))
            }
            Condition::Not(inner) => self.collect(inner, vars),
            Condition::Compare { subject, .. } | Condition::In { subject, .. } => {
                match self.size(*subject) {
                    Some(size) => {
                        if !vars.finite.contains_key(subject) {
                            vars.finite.insert(*subject, vars.vars.len());
                            vars.vars.push(Var::Finite {
                                subject: *subject,
                                size,
                            });
                        }
                    }
                    None => {
                        let key = format!("{c:?}");
                        if !vars.atoms.contains_key(&key) {
                            vars.atoms.insert(key, vars.vars.len());
                            vars.vars.push(Var::Atom(c));
                        }
                    }
                }
            }
        }
    }

    /// Analyse rules in order; `None` stands for `otherwise`.
    pub fn analyse(&self, rules: &[Option<&Condition>]) -> Findings {
        let mut vars = Vars {
            vars: Vec::new(),
            finite: HashMap::new(),
            atoms: HashMap::new(),
        };
        for c in rules.iter().flatten() {
            self.collect(c, &mut vars);
        }
        let sizes: Vec<u32> = vars
            .vars
            .iter()
            .map(|v| match v {
                Var::Finite { size, .. } => *size,
                Var::Atom(_) => 2,
            })
            .collect();
        let cases = sizes
            .iter()
            .try_fold(1u64, |acc, &n| acc.checked_mul(u64::from(n)));
        if cases.is_none_or(|c| c > MAX_CASES) || sizes.contains(&0) {
            return Findings::default();
        }

        let mut fires = vec![false; rules.len()];
        let mut uncovered = None;
        let mut assignment = vec![0u32; sizes.len()];
        loop {
            let first = rules
                .iter()
                .position(|r| r.is_none_or(|c| self.eval(c, &vars, &assignment)));
            match first {
                Some(i) => fires[i] = true,
                None if uncovered.is_none() => uncovered = Some(self.describe(&vars, &assignment)),
                None => {}
            }
            // Next combination (odometer); done when it wraps.
            let mut k = 0;
            loop {
                if k == sizes.len() {
                    let shadowed = (0..rules.len()).filter(|&i| !fires[i]).collect();
                    return Findings {
                        shadowed,
                        uncovered,
                    };
                }
                assignment[k] += 1;
                if assignment[k] < sizes[k] {
                    break;
                }
                assignment[k] = 0;
                k += 1;
            }
        }
    }

    fn eval(&self, c: &Condition, vars: &Vars, assignment: &[u32]) -> bool {
        match c {
            Condition::Or(parts) => parts.iter().any(|p| self.eval(p, vars, assignment)),
            Condition::And(parts) => parts.iter().all(|p| self.eval(p, vars, assignment)),
            Condition::Not(inner) => !self.eval(inner, vars, assignment),
            Condition::Compare { subject, op, value } => match vars.finite.get(subject) {
                Some(&v) => compare(assignment[v], *op, index_of(value)),
                None => self.atom(c, vars, assignment),
            },
            Condition::In { subject, values } => match vars.finite.get(subject) {
                Some(&v) => values.iter().any(|o| index_of(o) == Some(assignment[v])),
                None => self.atom(c, vars, assignment),
            },
        }
    }

    fn atom(&self, c: &Condition, vars: &Vars, assignment: &[u32]) -> bool {
        vars.atoms
            .get(&format!("{c:?}"))
            .is_some_and(|&i| assignment[i] == 1)
    }

    fn describe(&self, vars: &Vars, assignment: &[u32]) -> String {
        let mut parts = Vec::new();
        for (var, &value) in vars.vars.iter().zip(assignment) {
            match var {
                Var::Finite {
                    subject: Subject::Priority,
                    ..
                } => parts.push(format!("priority is {}", self.priorities.name(value))),
                Var::Finite {
                    subject: Subject::Field(f),
                    ..
                } => {
                    let name = self.fields.name(f.0);
                    let v = match &self.field_types[f.index()] {
                        FieldType::Enum(values) => {
                            values.get(value as usize).cloned().unwrap_or_default()
                        }
                        _ => (value == 1).to_string(),
                    };
                    parts.push(format!("`{name}` is {v}"));
                }
                Var::Atom(c) => parts.push(format!("`{}` is {}", self.show(c), value == 1)),
            }
        }
        if parts.is_empty() {
            "in every case".to_string()
        } else {
            format!("when {}", parts.join(" and "))
        }
    }

    fn show(&self, c: &Condition) -> String {
        let subject = |s: &Subject| match s {
            Subject::Priority => "priority".to_string(),
            Subject::Field(f) => self.fields.name(f.0).to_string(),
        };
        match c {
            Condition::Compare {
                subject: s,
                op,
                value,
            } => {
                format!(
                    "{} {} {}",
                    subject(s),
                    op.as_str(),
                    self.show_operand(value)
                )
            }
            Condition::In { subject: s, values } => {
                let vs: Vec<String> = values.iter().map(|v| self.show_operand(v)).collect();
                format!("{} in ({})", subject(s), vs.join(", "))
            }
            _ => String::new(),
        }
    }

    fn show_operand(&self, o: &Operand) -> String {
        match o {
            Operand::Priority(p) => self.priorities.name(p.0).to_string(),
            Operand::Value(Value::Text(t)) => format!("{t:?}"),
            Operand::Value(Value::Int(n)) => n.to_string(),
            Operand::Value(Value::Bool(b)) => b.to_string(),
            Operand::Value(Value::Duration(d, s)) => format!("{d}d{s}s"),
            Operand::Value(Value::DateTime(t)) => t.to_string(),
            Operand::Value(Value::Enum(i)) => i.to_string(),
        }
    }
}

/// The position of a finite operand among its subject's values.
fn index_of(o: &Operand) -> Option<u32> {
    match o {
        Operand::Priority(p) => Some(p.0),
        Operand::Value(Value::Enum(i)) => Some(*i),
        Operand::Value(Value::Bool(b)) => Some(u32::from(*b)),
        _ => None,
    }
}

fn compare(v: u32, op: CmpOp, o: Option<u32>) -> bool {
    let Some(o) = o else { return false };
    match op {
        CmpOp::Eq => v == o,
        CmpOp::Ne => v != o,
        CmpOp::Lt => v < o,
        CmpOp::Le => v <= o,
        CmpOp::Gt => v > o,
        CmpOp::Ge => v >= o,
    }
}
