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

/// Nor are they when evaluating every rule in every combination could visit more condition
/// nodes than this (cases times the size of all the rules' conditions). At the bound, that is
/// 2^16 cases of 200 rules of four comparisons: about 0.2 s in a debug build.
const MAX_WORK: u64 = 1 << 26;

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

/// The variables of the analysis: one per finite subject, one per distinct comparison on any
/// other subject.
struct Vars<'c> {
    vars: Vec<Var<'c>>,
    finite: HashMap<Subject, usize>,
    /// Atoms by their `Debug` text, which identifies a comparison (built once per comparison,
    /// while compiling; evaluation never looks at it).
    atoms: HashMap<String, usize>,
}

/// A rule's condition compiled against the variables: evaluating it is array lookups.
enum Test {
    Or(Vec<Test>),
    And(Vec<Test>),
    Not(Box<Test>),
    /// A finite variable compared with the index of a value (`None`: not one of its values).
    Compare {
        var: usize,
        op: CmpOp,
        value: Option<u32>,
    },
    /// A finite variable with one of these value indices.
    In {
        var: usize,
        values: Vec<u32>,
    },
    /// An unknown: true in the cases where its variable is 1.
    Atom(usize),
}

impl Test {
    fn eval(&self, assignment: &[u32]) -> bool {
        match self {
            Test::Or(parts) => parts.iter().any(|p| p.eval(assignment)),
            Test::And(parts) => parts.iter().all(|p| p.eval(assignment)),
            Test::Not(inner) => !inner.eval(assignment),
            Test::Compare { var, op, value } => compare(assignment[*var], *op, *value),
            Test::In { var, values } => values.contains(&assignment[*var]),
            Test::Atom(var) => assignment[*var] == 1,
        }
    }
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

    /// Compile a condition, declaring the variables it uses; also returns its size (nodes, and
    /// values of `in` lists), which bounds the steps of evaluating it.
    fn compile<'c>(&self, c: &'c Condition, vars: &mut Vars<'c>) -> (Test, u64) {
        let all = |parts: &'c [Condition], vars: &mut Vars<'c>| {
            let mut nodes = 1;
            let tests = parts
                .iter()
                .map(|p| {
                    let (t, n) = self.compile(p, vars);
                    nodes += n;
                    t
                })
                .collect();
            (tests, nodes)
        };
        match c {
            Condition::Or(parts) => {
                let (tests, nodes) = all(parts, vars);
                (Test::Or(tests), nodes)
            }
            Condition::And(parts) => {
                let (tests, nodes) = all(parts, vars);
                (Test::And(tests), nodes)
            }
            Condition::Not(inner) => {
                let (t, n) = self.compile(inner, vars);
                (Test::Not(Box::new(t)), n + 1)
            }
            Condition::Compare { subject, op, value } => {
                let test = match self.finite_var(*subject, vars) {
                    Some(var) => Test::Compare {
                        var,
                        op: *op,
                        value: index_of(value),
                    },
                    None => Test::Atom(atom_var(c, vars)),
                };
                (test, 1)
            }
            Condition::In { subject, values } => {
                let test = match self.finite_var(*subject, vars) {
                    Some(var) => Test::In {
                        var,
                        values: values.iter().filter_map(index_of).collect(),
                    },
                    None => Test::Atom(atom_var(c, vars)),
                };
                // Testing membership costs a step per value.
                (test, values.len().max(1) as u64)
            }
        }
    }

    /// The variable of a subject with finite values, declared on first use; `None` for other
    /// subjects.
    fn finite_var(&self, subject: Subject, vars: &mut Vars) -> Option<usize> {
        let size = self.size(subject)?;
        Some(*vars.finite.entry(subject).or_insert_with(|| {
            vars.vars.push(Var::Finite { subject, size });
            vars.vars.len() - 1
        }))
    }

    /// Analyse rules in order; `None` stands for `otherwise`.
    pub fn analyse(&self, rules: &[Option<&Condition>]) -> Findings {
        let mut vars = Vars {
            vars: Vec::new(),
            finite: HashMap::new(),
            atoms: HashMap::new(),
        };
        // `None` for `otherwise`, which always applies.
        let mut tests: Vec<Option<Test>> = Vec::with_capacity(rules.len());
        let mut nodes: u64 = 0;
        for rule in rules {
            match rule {
                Some(c) => {
                    let (t, n) = self.compile(c, &mut vars);
                    tests.push(Some(t));
                    nodes = nodes.saturating_add(n);
                }
                None => {
                    tests.push(None);
                    nodes = nodes.saturating_add(1);
                }
            }
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
        let too_much = cases.is_none_or(|c| c > MAX_CASES || c.saturating_mul(nodes) > MAX_WORK);
        if too_much || sizes.contains(&0) {
            return Findings::default();
        }

        let mut fires = vec![false; rules.len()];
        let mut uncovered = None;
        let mut assignment = vec![0u32; sizes.len()];
        loop {
            let first = tests
                .iter()
                .position(|t| t.as_ref().is_none_or(|t| t.eval(&assignment)));
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

/// The variable of a comparison on a subject without finite values, declared on first use.
/// Equal comparisons (by their `Debug` text) share one.
fn atom_var<'c>(c: &'c Condition, vars: &mut Vars<'c>) -> usize {
    *vars.atoms.entry(format!("{c:?}")).or_insert_with(|| {
        vars.vars.push(Var::Atom(c));
        vars.vars.len() - 1
    })
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

#[cfg(test)]
mod tests {
    use itsmflow_dsl::Sources;

    use super::MAX_WORK;

    /// A process with 16 text fields and a routing of `rules` rules, each requiring a different
    /// set of four fields to be `"x"`, then a copy of the first rule (which never applies), then
    /// `otherwise`. Each comparison is an unknown of the analysis: 2^16 cases.
    fn text_routing(rules: usize) -> String {
        let mut text = String::from("queue q\nprocess p {\n  fields {\n");
        for f in 0..16 {
            text.push_str(&format!("    f{f}: text\n"));
        }
        text.push_str("  }\n  stage a initial {\n    queue by routing\n  }\n  stage b final\n");
        text.push_str("  transition t: a -> b\n  routing {\n");
        // Sets of four fields, no two alike (so none contains another), spread over all 16.
        let sets: Vec<u32> = (0u32..1 << 16).filter(|s| s.count_ones() == 4).collect();
        let sets = sets.iter().step_by(sets.len() / rules).take(rules);
        let conditions: Vec<String> = sets
            .map(|s| {
                (0..16)
                    .filter(|f| *s & (1 << f) != 0)
                    .map(|f| format!("f{f} == \"x\""))
                    .collect::<Vec<_>>()
                    .join(" and ")
            })
            .collect();
        for c in conditions.iter().chain(conditions.first()) {
            text.push_str(&format!("    when {c} => q\n"));
        }
        text.push_str("    otherwise => q\n  }\n}\n");
        text
    }

    /// The errors reported for a file.
    fn errors(text: &str) -> Vec<(&'static str, String)> {
        let mut sources = Sources::new();
        sources.add("routing.itsm", text);
        crate::check(&sources)
            .diagnostics
            .into_iter()
            .filter(|d| d.is_error())
            .map(|d| (d.code, text[d.span.range()].to_string()))
            .collect()
    }

    /// 2^16 cases of 200 rules (just under the work bound): evaluating a condition used to
    /// format every comparison it reached to look up its unknown, which took seconds here (3 s
    /// in a debug build); now it is an array lookup.
    #[test]
    fn many_unknowns_and_many_rules_are_analysed() {
        let text = text_routing(200);
        assert!((0..16).all(|f| text.contains(&format!("f{f} =="))));
        let first_rule = text
            .lines()
            .find(|l| l.contains("when"))
            .unwrap_or_default()
            .trim();
        assert_eq!(
            errors(&text),
            [("routing-shadowed", first_rule.to_string())],
            "only the copy of the first rule never applies"
        );
    }

    /// Beyond the work bound nothing is analysed, and nothing is reported.
    #[test]
    fn too_much_work_is_not_analysed() {
        let text = text_routing(400);
        assert!((0..16).all(|f| text.contains(&format!("f{f} =="))));
        assert!(2u64.pow(16) * 400 * 5 > MAX_WORK);
        assert_eq!(errors(&text), []);
    }
}
