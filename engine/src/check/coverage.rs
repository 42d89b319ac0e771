//! Coverage of ordered `when` rules (routing, approval): which rules can never apply because
//! earlier ones already match every case they cover, and a case that no rule matches.
//!
//! Enum and bool fields and `priority` have finite values, so the analysis enumerates their
//! combinations. An `int` field is split at the constants the rules compare it with: each
//! constant, and the gaps between and beyond them, is one value of the analysis (represented by
//! one number in it), as every comparison in the rules has the same outcome throughout a gap.
//! A comparison on any other field (text, durations, dates) becomes an
//! independent true/false unknown. Treating those as independent can only add cases, never
//! remove them, so a rule reported as shadowed really is; an uncovered case may, rarely, be
//! impossible (`x < 5` and `x >= 5` are not known to exclude each other), which is why the
//! help for it is to add `otherwise`.

use std::collections::{BTreeSet, HashMap};

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
    /// Per field: whether a ticket may have it unset (neither required nor defaulted), which
    /// the field's cases include (no comparison holds of an unset field but `!=`).
    pub may_be_unset: &'a [bool],
}

#[derive(Debug, Default)]
pub struct Findings {
    /// Rules (by position) that never apply.
    pub shadowed: Vec<usize>,
    /// A description of one case that no rule matches, if any.
    pub uncovered: Option<String>,
}

enum Var<'c> {
    Finite {
        subject: Subject,
        size: u32,
    },
    /// An `int` field: one number for each constant the rules compare it with and for each
    /// (non-empty) gap between and beyond them, in increasing order; then `None` (unset) for a
    /// field a ticket may leave unset.
    Int {
        subject: Subject,
        numbers: Vec<Option<i64>>,
    },
    Atom(&'c Condition),
}

/// The variables of the analysis: one per finite subject, one per distinct comparison on any
/// other subject.
struct Vars<'c> {
    vars: Vec<Var<'c>>,
    finite: HashMap<Subject, usize>,
    /// The constants the rules compare each `int` field with, then its variable once declared.
    int_constants: HashMap<Subject, BTreeSet<i64>>,
    ints: HashMap<Subject, usize>,
    /// Atoms by their `Debug` text, which identifies a comparison (built once per comparison,
    /// while compiling; evaluation never looks at it).
    atoms: HashMap<String, usize>,
}

/// A rule's condition compiled against the variables: evaluating it is array lookups.
enum Test {
    Or(Vec<Test>),
    And(Vec<Test>),
    Not(Box<Test>),
    /// A finite variable compared with the index of a value (`None`: not one of its values);
    /// `unset` is the index that stands for an unset field, if it may be unset.
    Compare {
        var: usize,
        op: CmpOp,
        value: Option<u32>,
        unset: Option<u32>,
    },
    /// A finite variable with one of these value indices.
    In {
        var: usize,
        values: Vec<u32>,
    },
    /// An `int` variable: true for the numbers (by index) marked here.
    Numbers {
        var: usize,
        holds: Vec<bool>,
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
            // As the engine evaluates it: an unset field equals nothing.
            Test::Compare { var, op, unset, .. } if Some(assignment[*var]) == *unset => {
                *op == CmpOp::Ne
            }
            Test::Compare { var, op, value, .. } => compare(assignment[*var], *op, *value),
            Test::In { var, values } => values.contains(&assignment[*var]),
            Test::Numbers { var, holds } => holds[assignment[*var] as usize],
            Test::Atom(var) => assignment[*var] == 1,
        }
    }
}

impl<'a> Domain<'a> {
    /// How many cases a finite subject has: its values, and one more (the last) for a field
    /// a ticket may leave unset.
    fn size(&self, subject: Subject) -> Option<u32> {
        match subject {
            Subject::Priority => Some(self.priorities.len() as u32),
            Subject::Stage => None,
            Subject::Field(f) => self.field_types[f.index()]
                .finite_values()
                .map(|n| n as u32 + u32::from(self.may_be_unset(subject))),
        }
    }

    fn may_be_unset(&self, subject: Subject) -> bool {
        match subject {
            Subject::Field(f) => self.may_be_unset.get(f.index()).copied().unwrap_or(false),
            Subject::Priority | Subject::Stage => false,
        }
    }

    /// The case that stands for an unset field, for a finite field that may be unset.
    fn unset_index(&self, subject: Subject) -> Option<u32> {
        match subject {
            Subject::Field(f) if self.may_be_unset(subject) => self.field_types[f.index()]
                .finite_values()
                .map(|n| n as u32),
            _ => None,
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
                let test = if let Some(var) = self.finite_var(*subject, vars) {
                    Test::Compare {
                        var,
                        op: *op,
                        value: index_of(value),
                        unset: self.unset_index(*subject),
                    }
                } else if let Some((var, numbers)) = self.int_var(*subject, vars) {
                    // As the engine evaluates it: an unset field equals nothing.
                    let holds = numbers
                        .iter()
                        .map(|&n| match n {
                            Some(n) => int_value(value).is_some_and(|v| compare_int(n, *op, v)),
                            None => *op == CmpOp::Ne,
                        })
                        .collect();
                    Test::Numbers { var, holds }
                } else {
                    Test::Atom(atom_var(c, vars))
                };
                (test, 1)
            }
            // Never met: routing and approval rules may not read linked tickets (the checker
            // refuses them, `link-condition-not-here`, before any analysis). Were one met, it
            // would be an unknown like any comparison the analysis cannot enumerate.
            Condition::Linked { .. } => (Test::Atom(atom_var(c, vars)), 1),
            // A list's elements are not enumerated: `has` and `is empty` are unknowns the
            // analysis leaves open, each both ways.
            Condition::Has { values, .. } => {
                (Test::Atom(atom_var(c, vars)), values.len().max(1) as u64)
            }
            Condition::Empty(_) => (Test::Atom(atom_var(c, vars)), 1),
            Condition::In { subject, values } => {
                let test = if let Some(var) = self.finite_var(*subject, vars) {
                    Test::In {
                        var,
                        values: values.iter().filter_map(index_of).collect(),
                    }
                } else if let Some((var, numbers)) = self.int_var(*subject, vars) {
                    let holds = numbers
                        .iter()
                        .map(|&n| n.is_some() && values.iter().any(|v| int_value(v) == n))
                        .collect();
                    Test::Numbers { var, holds }
                } else {
                    Test::Atom(atom_var(c, vars))
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

    fn is_int(&self, subject: Subject) -> bool {
        matches!(subject, Subject::Field(f) if self.field_types[f.index()] == FieldType::Int)
    }

    /// Note the constants a condition compares `int` fields with.
    fn collect_constants(&self, c: &Condition, constants: &mut HashMap<Subject, BTreeSet<i64>>) {
        match c {
            Condition::Or(parts) | Condition::And(parts) => {
                for p in parts {
                    self.collect_constants(p, constants);
                }
            }
            Condition::Not(inner) => self.collect_constants(inner, constants),
            Condition::Compare { subject, value, .. } if self.is_int(*subject) => {
                constants
                    .entry(*subject)
                    .or_default()
                    .extend(int_value(value));
            }
            Condition::In { subject, values } if self.is_int(*subject) => {
                constants
                    .entry(*subject)
                    .or_default()
                    .extend(values.iter().filter_map(int_value));
            }
            Condition::Compare { .. }
            | Condition::In { .. }
            | Condition::Has { .. }
            | Condition::Empty(_)
            | Condition::Linked { .. } => {}
        }
    }

    /// The variable of an `int` field, declared on first use, and the numbers standing for
    /// its values; `None` for other subjects.
    fn int_var(&self, subject: Subject, vars: &mut Vars) -> Option<(usize, Vec<Option<i64>>)> {
        if !self.is_int(subject) {
            return None;
        }
        let unset = match subject {
            Subject::Field(f) => self.may_be_unset.get(f.index()).copied().unwrap_or(false),
            Subject::Priority | Subject::Stage => false,
        };
        let var = *vars.ints.entry(subject).or_insert_with(|| {
            let constants = vars.int_constants.get(&subject);
            let mut numbers: Vec<Option<i64>> = split(constants.into_iter().flatten().copied())
                .into_iter()
                .map(Some)
                .collect();
            if unset {
                numbers.push(None);
            }
            vars.vars.push(Var::Int { subject, numbers });
            vars.vars.len() - 1
        });
        match &vars.vars[var] {
            Var::Int { numbers, .. } => Some((var, numbers.clone())),
            _ => None,
        }
    }

    /// Analyse rules in order; `None` stands for `otherwise`.
    pub fn analyse(&self, rules: &[Option<&Condition>]) -> Findings {
        let mut int_constants = HashMap::new();
        for c in rules.iter().flatten() {
            self.collect_constants(c, &mut int_constants);
        }
        let mut vars = Vars {
            vars: Vec::new(),
            finite: HashMap::new(),
            int_constants,
            ints: HashMap::new(),
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
                Var::Int { numbers, .. } => numbers.len() as u32,
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
                        _ if self.unset_index(Subject::Field(*f)) == Some(value) => {
                            "unset".to_string()
                        }
                        FieldType::Enum(values) => {
                            values.get(value as usize).cloned().unwrap_or_default()
                        }
                        _ => (value == 1).to_string(),
                    };
                    parts.push(format!("`{name}` is {v}"));
                }
                Var::Int {
                    subject: Subject::Field(f),
                    numbers,
                } => parts.push(match numbers[value as usize] {
                    Some(n) => format!("`{}` is {n}", self.fields.name(f.0)),
                    None => format!("`{}` is unset", self.fields.name(f.0)),
                }),
                Var::Int { .. }
                | Var::Finite {
                    subject: Subject::Stage,
                    ..
                } => {}
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
            Subject::Stage => "stage".to_string(),
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
            Condition::Has { field, values } => {
                let element = self.field_types[field.index()].element();
                let vs: Vec<String> = values
                    .iter()
                    .map(|v| match (v, element) {
                        (Value::Enum(i), Some(FieldType::Enum(names))) => {
                            names.get(*i as usize).cloned().unwrap_or_default()
                        }
                        _ => self.show_operand(&Operand::Value(v.clone())),
                    })
                    .collect();
                format!("{} has {}", self.fields.name(field.0), vs.join(" or "))
            }
            Condition::Empty(field) => format!("{} is empty", self.fields.name(field.0)),
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
            Operand::Value(Value::List(elements)) => format!("{} values", elements.len()),
            Operand::Stage(s) => s.0.to_string(),
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

/// The number of an `int` operand.
fn int_value(o: &Operand) -> Option<i64> {
    match o {
        Operand::Value(Value::Int(n)) => Some(*n),
        _ => None,
    }
}

/// One number for each constant and for each non-empty gap below, between and above them (its
/// least member, or for the gap below the constants, its greatest), in increasing order. Every
/// comparison with the constants holds for all numbers of a gap or for none, so these numbers
/// stand for all of them. With no constants, one number stands for every number.
fn split(constants: impl Iterator<Item = i64>) -> Vec<i64> {
    let constants: BTreeSet<i64> = constants.collect();
    let mut numbers = Vec::with_capacity(2 * constants.len() + 1);
    match constants.first() {
        None => numbers.push(0),
        Some(&first) => numbers.extend(first.checked_sub(1)),
    }
    let mut rest = constants.iter().peekable();
    while let Some(&c) = rest.next() {
        numbers.push(c);
        if let Some(above) = c.checked_add(1) {
            if rest.peek().is_none_or(|&&next| above < next) {
                numbers.push(above);
            }
        }
    }
    numbers
}

fn compare_int(v: i64, op: CmpOp, o: i64) -> bool {
    match op {
        CmpOp::Eq => v == o,
        CmpOp::Ne => v != o,
        CmpOp::Lt => v < o,
        CmpOp::Le => v <= o,
        CmpOp::Gt => v > o,
        CmpOp::Ge => v >= o,
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

    use super::{split, MAX_WORK};

    /// The numbers of an `int` field: each constant and each non-empty gap, none past the ends
    /// of `i64`.
    #[test]
    fn int_fields_are_split_at_their_constants() {
        assert_eq!(split([].into_iter()), [0]);
        assert_eq!(split([50].into_iter()), [49, 50, 51]);
        assert_eq!(split([3, 1, 2, 1].into_iter()), [0, 1, 2, 3, 4]);
        assert_eq!(split([0, 10].into_iter()), [-1, 0, 1, 10, 11]);
        assert_eq!(
            split([i64::MIN, i64::MAX].into_iter()),
            [i64::MIN, i64::MIN + 1, i64::MAX]
        );
    }

    /// A routing of an `int` field's rules: shadowed rules and gaps are exact.
    fn int_routing(rules: &[&str]) -> String {
        let mut text = String::from(
            "queue q\nprocess p {\n  fields {\n    n: int required\n    m: int required\n  }\n",
        );
        text.push_str("  stage a initial {\n    queue by routing\n  }\n  stage b final\n");
        text.push_str("  transition t: a -> b\n  routing {\n");
        for r in rules {
            text.push_str(&format!("    {r} => q\n"));
        }
        text.push_str("  }\n}\n");
        text
    }

    #[test]
    fn int_comparisons_are_exact() {
        let total = [
            vec!["when n < 50", "when n >= 50"],
            vec!["when n <= 49", "when n > 49"],
            vec!["when n == 5", "when n != 5"],
            vec!["when n in (1, 2)", "when n < 1 or n > 2"],
            vec!["when n < 0 and m < 0", "when n >= 0", "when m >= 0"],
            vec!["when not (n > 3)", "when n >= 4"],
        ];
        for rules in total {
            assert_eq!(errors(&int_routing(&rules)), [], "{rules:?}");
        }
        let text = int_routing(&["when n < 50", "when n > 50"]);
        let mut sources = Sources::new();
        sources.add("routing.itsm", &text);
        let messages: Vec<String> = crate::check(&sources)
            .diagnostics
            .into_iter()
            .map(|d| format!("{} {:?}", d.code, d))
            .collect();
        assert_eq!(messages.len(), 1, "{messages:?}");
        assert!(messages[0].starts_with("routing-not-total"), "{messages:?}");
        assert!(messages[0].contains("`n` is 50"), "{messages:?}");
        assert_eq!(
            errors(&int_routing(&[
                "when n in (1, 2, 3)",
                "when n == 2",
                "otherwise"
            ])),
            [("routing-shadowed", "when n == 2 => q".to_string())]
        );
        assert_eq!(
            errors(&int_routing(&[
                "when n >= 1 and n <= 1",
                "when n == 1",
                "otherwise"
            ])),
            [("routing-shadowed", "when n == 1 => q".to_string())]
        );
    }

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
