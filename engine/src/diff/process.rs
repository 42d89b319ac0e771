//! The entries of one process, compared kind by kind, each by the stable name a tailoring
//! addresses it by.

use itsmflow_dsl::ast::{
    Approval, ApprovalEntry, ClockKind, EscalationStep, Field, FieldType, Ident, LinkDecl, Links,
    Member, OverlayEntry, PriorityRow, PriorityTable, Process, RouteRule, Rule, Span, Spanned,
    Stage, StageKind, TargetRow, Targets, Threshold, Transition, TransitionClause,
};
use itsmflow_dsl::format;

use super::{added, changed, compare as by_name, removed, show, value_change};
use super::{Change, ChangeKind, Kind, Shown};

/// The changes from `old` to `new`, grouped by kind in the order a process is written.
pub(super) fn compare(old: &Process, new: &Process) -> Vec<Change> {
    let mut out = Vec::new();
    out.extend(label(old, new));
    out.extend(fields(old, new));
    out.extend(links(old, new));
    out.extend(priorities(old, new));
    out.extend(priority_table(old, new));
    out.extend(targets_calendar(old, new));
    out.extend(targets(old, new));
    out.extend(stages(old, new));
    out.extend(transitions(old, new));
    out.extend(routes(old, new));
    out.extend(escalations(old, new));
    out.extend(approvals(old, new));
    out.extend(rules(old, new));
    out
}

/// Every entry `pick` finds in the process's members, in order.
fn gather<'a, T>(p: &'a Process, pick: impl Fn(&'a Member) -> Vec<&'a T>) -> Vec<&'a T> {
    p.members.iter().flat_map(pick).collect()
}

/// Entries with their stable names.
fn named<T>(entries: Vec<&T>, name: impl Fn(&T) -> String) -> Vec<(String, &T)> {
    entries.into_iter().map(|e| (name(e), e)).collect()
}

fn names(ids: &[Ident]) -> String {
    ids.iter()
        .map(|i| i.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn label(old: &Process, new: &Process) -> Option<Change> {
    let value = |p: &Process| show::label(&p.label).map(|l| (l.clone(), l));
    value_change(Kind::Label, value(old), value(new))
}

// -- fields and links ----------------------------------------------------------------------------

fn fields(old: &Process, new: &Process) -> Vec<Change> {
    let entries = |p| {
        let all = gather(p, |m| match m {
            Member::Fields(f) => f.fields.iter().collect(),
            _ => Vec::new(),
        });
        named(all, |f: &Field| f.name.name.clone())
    };
    by_name(Kind::Field, &entries(old), &entries(new), show_field)
}

/// A field, and its type, `required` and default apart: each printed by the formatter from a
/// copy of the field without the others.
fn show_field(f: &Field) -> Shown {
    let text = show::entry(OverlayEntry::Field(f.clone()));
    let bare = Field {
        required: None,
        default: None,
        ..f.clone()
    };
    let typed = show::entry(OverlayEntry::Field(bare.clone()));
    let ty = typed
        .strip_prefix(&format!("field {}: ", f.name))
        .unwrap_or(&typed);
    let required = if f.required.is_some() { "yes" } else { "no" };
    let mut aspects = vec![
        ("type".to_string(), ty.to_string()),
        ("required".to_string(), required.to_string()),
    ];
    if let Some(value) = &f.default {
        let with_default = show::entry(OverlayEntry::Field(Field {
            default: Some(value.clone()),
            ..bare
        }));
        let value = with_default
            .strip_prefix(&format!("{typed} default "))
            .unwrap_or(&with_default);
        aspects.push(("default".to_string(), value.to_string()));
    }
    Shown { text, aspects }
}

fn links(old: &Process, new: &Process) -> Vec<Change> {
    let entries = |p| {
        let all = gather(p, |m| match m {
            Member::Links(l) => l.links.iter().collect(),
            _ => Vec::new(),
        });
        named(all, |l: &LinkDecl| l.name.name.clone())
    };
    by_name(Kind::Link, &entries(old), &entries(new), |l| {
        let block = show::member(Member::Links(Links {
            links: vec![l.clone()],
            span: Span::default(),
        }));
        let line = show::body(&block);
        let value = line.strip_prefix(&format!("{}:", l.name)).unwrap_or(&line);
        Shown {
            text: format!("link {line}"),
            aspects: vec![(String::new(), value.trim().to_string())],
        }
    })
}

// -- priorities -----------------------------------------------------------------------------------

fn priorities(old: &Process, new: &Process) -> Option<Change> {
    let value = |p: &Process| {
        let levels = p.members.iter().find_map(|m| match m {
            Member::Priorities(x) => Some(x),
            _ => None,
        })?;
        let text = show::entry(OverlayEntry::Priorities(levels.clone()));
        Some((text, names(&levels.levels)))
    };
    value_change(Kind::Priorities, value(old), value(new))
}

fn table(p: &Process) -> Option<&PriorityTable> {
    p.members.iter().find_map(|m| match m {
        Member::PriorityTable(t) => Some(t),
        _ => None,
    })
}

/// The table added, removed, read from other fields (a change of the whole), or else changed
/// cell by cell.
fn priority_table(old: &Process, new: &Process) -> Vec<Change> {
    let text = |t: &PriorityTable| show::entry(OverlayEntry::PriorityTable(t.clone()));
    match (table(old), table(new)) {
        (None, None) => Vec::new(),
        (None, Some(t)) => vec![added(Kind::PriorityTable, "", text(t))],
        (Some(t), None) => vec![removed(Kind::PriorityTable, "", text(t))],
        (Some(o), Some(n)) if names(&o.fields) != names(&n.fields) => {
            let shown = |t: &PriorityTable| Shown {
                text: text(t),
                aspects: vec![("from".to_string(), names(&t.fields))],
            };
            vec![changed(Kind::PriorityTable, "", shown(o), shown(n))]
        }
        (Some(o), Some(n)) => {
            let (old_cells, new_cells) = (cells(old, o), cells(new, n));
            let old_entries = named(old_cells.iter().collect(), Cell::name);
            let new_entries = named(new_cells.iter().collect(), Cell::name);
            by_name(Kind::PriorityCell, &old_entries, &new_entries, show_cell)
        }
    }
}

/// One cell of a priority table: a value of each field, and the priority it gives.
#[derive(PartialEq)]
struct Cell {
    keys: Vec<(String, String)>,
    priority: String,
}

impl Cell {
    /// `impact=high, urgency=low`: a cell by the field values that select it.
    fn name(&self) -> String {
        self.keys
            .iter()
            .map(|(field, value)| format!("{field}={value}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The cell as a tailoring writes it, `priority high, low => P2`.
fn show_cell(c: &Cell) -> Shown {
    let row = PriorityRow {
        keys: c.keys.iter().map(|(_, v)| show::ident(v)).collect(),
        cells: vec![show::ident(&c.priority)],
        span: Span::default(),
    };
    Shown {
        text: show::entry(OverlayEntry::PriorityRow(row)),
        aspects: vec![(String::new(), c.priority.clone())],
    }
}

/// The table's cells, row by row. A row of the table's form `high => P1, P2, P3` holds a cell
/// per value of the last field, in the order the field declares them; a row naming every
/// field's value is one cell.
fn cells(p: &Process, t: &PriorityTable) -> Vec<Cell> {
    let fields: Vec<String> = t.fields.iter().map(|f| f.name.clone()).collect();
    let last_values = t.fields.last().and_then(|last| enum_values(p, &last.name));
    let mut out = Vec::new();
    for row in &t.rows {
        let keys: Vec<(String, String)> = fields
            .iter()
            .zip(&row.keys)
            .map(|(f, k)| (f.clone(), k.name.clone()))
            .collect();
        if row.keys.len() == fields.len() {
            for cell in &row.cells {
                out.push(Cell {
                    keys: keys.clone(),
                    priority: cell.name.clone(),
                });
            }
            continue;
        }
        let last = fields.last().cloned().unwrap_or_default();
        for (i, cell) in row.cells.iter().enumerate() {
            // A checked table's last field is an enum with a value per cell; a position
            // stands in otherwise, so that no cell is lost.
            let value = last_values
                .and_then(|values| values.get(i))
                .map_or_else(|| format!("#{}", i + 1), |v| v.name.clone());
            let mut keys = keys.clone();
            keys.push((last.clone(), value));
            out.push(Cell {
                keys,
                priority: cell.name.clone(),
            });
        }
    }
    out
}

fn enum_values<'a>(p: &'a Process, field: &str) -> Option<&'a [Ident]> {
    p.members.iter().find_map(|m| match m {
        Member::Fields(f) => {
            f.fields
                .iter()
                .find(|x| x.name.name == field)
                .and_then(|x| match &x.ty {
                    FieldType::Enum(values, _) => Some(values.as_slice()),
                    FieldType::Named(_) | FieldType::List(..) => None,
                })
        }
        _ => None,
    })
}

// -- targets -----------------------------------------------------------------------------------

fn targets_block(p: &Process) -> Option<&Targets> {
    p.members.iter().find_map(|m| match m {
        Member::Targets(t) => Some(t),
        _ => None,
    })
}

fn targets_calendar(old: &Process, new: &Process) -> Option<Change> {
    let value = |p: &Process| {
        let calendar = targets_block(p)?.calendar.as_ref()?;
        let text = show::entry(OverlayEntry::TargetsCalendar(calendar.clone()));
        Some((text, calendar.name.clone()))
    };
    value_change(Kind::TargetsCalendar, value(old), value(new))
}

fn targets(old: &Process, new: &Process) -> Vec<Change> {
    let entries = |p| {
        let all = gather(p, |m| match m {
            Member::Targets(t) => t.rows.iter().collect(),
            _ => Vec::new(),
        });
        named(all, |r: &TargetRow| r.priority.name.clone())
    };
    by_name(Kind::Target, &entries(old), &entries(new), |row| {
        let mut aspects: Vec<(String, String)> = row
            .clocks
            .iter()
            .map(|c| (c.clock.node.to_string(), c.duration.node.to_string()))
            .collect();
        if let Some(calendar) = &row.calendar {
            aspects.push(("calendar".to_string(), calendar.name.clone()));
        }
        Shown {
            text: show::entry(OverlayEntry::Target(row.clone())),
            aspects,
        }
    })
}

// -- stages and transitions -------------------------------------------------------------------

fn stages(old: &Process, new: &Process) -> Vec<Change> {
    let entries = |p| {
        let all = gather(p, |m| match m {
            Member::Stage(s) => vec![s],
            _ => Vec::new(),
        });
        named(all, |s: &Stage| s.name.name.clone())
    };
    by_name(Kind::Stage, &entries(old), &entries(new), show_stage)
}

/// A stage, and its parts: label, kinds, and each attribute by its keyword (`queue`,
/// `pauses`, `notify`, `every`, `checklist`, ...).
fn show_stage(s: &Stage) -> Shown {
    let text = show::entry(OverlayEntry::Stage(s.clone()));
    let mut aspects = Vec::new();
    if let Some(label) = show::label(&s.label) {
        aspects.push(("label".to_string(), label));
    }
    let kinds: Vec<&str> = s
        .kinds
        .iter()
        .map(|k| match k.node {
            StageKind::Initial => "initial",
            StageKind::Final => "final",
        })
        .collect();
    if !kinds.is_empty() {
        aspects.push(("kind".to_string(), kinds.join(" ")));
    }
    aspects.extend(show::body_entries(&text).iter().map(|e| show::keyed(e)));
    Shown { text, aspects }
}

fn transitions(old: &Process, new: &Process) -> Vec<Change> {
    let entries = |p| {
        let all = gather(p, |m| match m {
            Member::Transition(t) => vec![t],
            _ => Vec::new(),
        });
        named(all, |t: &Transition| t.name.name.clone())
    };
    by_name(Kind::Transition, &entries(old), &entries(new), |t| {
        let mut aspects = Vec::new();
        if let Some(label) = show::label(&t.label) {
            aspects.push(("label".to_string(), label));
        }
        aspects.push(("from".to_string(), names(&t.from)));
        aspects.push(("to".to_string(), t.to.name.clone()));
        aspects.extend(t.clauses.iter().map(|c| show::keyed(&clause(c))));
        Shown {
            text: show::entry(OverlayEntry::Transition(t.clone())),
            aspects,
        }
    })
}

/// One clause of a transition as the formatter prints it (`by role agent`, `after 3d`,
/// `when ...`): printed in a stand-in transition of that clause alone, and cut out.
fn clause(c: &TransitionClause) -> String {
    let stand_in = Transition {
        name: show::ident("t"),
        label: None,
        from: vec![show::ident("a")],
        to: show::ident("b"),
        clauses: vec![c.clone()],
        span: Span::default(),
    };
    let text = show::one_line(&show::entry(OverlayEntry::Transition(stand_in)));
    match text.strip_prefix("transition t: a -> b ") {
        Some(rest) => rest.to_string(),
        None => text,
    }
}

// -- routes ------------------------------------------------------------------------------------

/// A route's stable name: its name, `otherwise`, or (unnamed, which only a process that is
/// not tailored may have) the route as written.
fn route_name(r: &RouteRule) -> String {
    match (&r.name, &r.condition) {
        (Some(name), _) => name.name.clone(),
        (None, None) => "otherwise".to_string(),
        (None, Some(_)) => format::route_rule_line(r),
    }
}

fn routes(old: &Process, new: &Process) -> Vec<Change> {
    let entries = |p| {
        let all = gather(p, |m| match m {
            Member::Routing(r) => r.rules.iter().collect(),
            _ => Vec::new(),
        });
        named(all, route_name)
    };
    let (old, new) = (entries(old), entries(new));
    let mut changes = by_name(Kind::Route, &old, &new, |r| {
        let mut aspects = Vec::new();
        if let Some(c) = &r.condition {
            aspects.push(("when".to_string(), format::condition_line(c)));
        }
        aspects.push(("queue".to_string(), r.queue.name.clone()));
        let entry = OverlayEntry::Route {
            rule: r.clone(),
            place: None,
        };
        Shown {
            text: show::entry(entry),
            aspects,
        }
    });
    let old_order: Vec<&str> = old.iter().map(|(n, _)| n.as_str()).collect();
    let new_order: Vec<&str> = new.iter().map(|(n, _)| n.as_str()).collect();
    // The first route that matches decides: where an added route goes is part of the change.
    for c in &mut changes {
        if c.change == ChangeKind::Added {
            c.place = place(&new_order, &c.name);
        }
    }
    changes.extend(moves(&old_order, &new_order));
    changes
}

/// Where a route is among the others: before the next one, or after the one before it.
fn place(order: &[&str], name: &str) -> Option<String> {
    let i = order.iter().position(|n| *n == name)?;
    match (
        order.get(i + 1),
        i.checked_sub(1).and_then(|j| order.get(j)),
    ) {
        (Some(next), _) => Some(format!("before {next}")),
        (None, Some(prev)) => Some(format!("after {prev}")),
        (None, None) => None,
    }
}

/// The routes on both sides that are in another order: those outside a longest run of them
/// in the same order on both sides (the fewest moves that explain the new order).
fn moves(old: &[&str], new: &[&str]) -> Vec<Change> {
    let old_common: Vec<&str> = old.iter().copied().filter(|n| new.contains(n)).collect();
    let new_common: Vec<&str> = new.iter().copied().filter(|n| old.contains(n)).collect();
    let kept = longest_common(&old_common, &new_common);
    new_common
        .iter()
        .filter(|n| !kept.contains(n))
        .map(|name| Change {
            kind: Kind::Route,
            name: name.to_string(),
            change: ChangeKind::Moved,
            old: place(old, name),
            new: place(new, name),
            details: Vec::new(),
            place: None,
        })
        .collect()
}

/// The longest common subsequence of two lists of names (a few routes: quadratic is fine).
fn longest_common<'a>(a: &[&'a str], b: &[&'a str]) -> Vec<&'a str> {
    let mut len = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            len[i][j] = if a[i] == b[j] {
                len[i + 1][j + 1] + 1
            } else {
                len[i + 1][j].max(len[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < a.len() && j < b.len() {
        if a[i] == b[j] {
            out.push(a[i]);
            i += 1;
            j += 1;
        } else if len[i + 1][j] >= len[i][j + 1] {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

// -- escalation, approval, rules ----------------------------------------------------------------

/// An escalation step with the clock it is on: what names it.
#[derive(PartialEq)]
struct Step<'a> {
    clock: ClockKind,
    step: &'a EscalationStep,
}

fn threshold_text(t: Threshold) -> String {
    match t {
        Threshold::Percent(n) => format!("{n}%"),
        Threshold::After(d) => d.to_string(),
    }
}

/// The process's escalation steps, each with its clock.
fn steps(p: &Process) -> Vec<Step<'_>> {
    p.members
        .iter()
        .flat_map(|m| match m {
            Member::Escalation(e) => e
                .steps
                .iter()
                .map(|step| Step {
                    clock: e.clock.node,
                    step,
                })
                .collect(),
            _ => Vec::new(),
        })
        .collect()
}

/// `resolve at 90%`: a step by its clock and threshold.
fn step_name(s: &Step<'_>) -> String {
    format!("{} at {}", s.clock, threshold_text(s.step.threshold.node))
}

fn escalations(old: &Process, new: &Process) -> Vec<Change> {
    let (old_steps, new_steps) = (steps(old), steps(new));
    let old_entries = named(old_steps.iter().collect(), step_name);
    let new_entries = named(new_steps.iter().collect(), step_name);
    by_name(Kind::Escalation, &old_entries, &new_entries, |s| {
        let text = show::entry(OverlayEntry::Escalation {
            clock: Spanned::new(s.clock, Span::default()),
            step: s.step.clone(),
        });
        let actions = show::one_line(&text)
            .split_once(" => ")
            .map(|(_, actions)| actions.to_string())
            .unwrap_or_default();
        Shown {
            text,
            aspects: vec![(String::new(), actions)],
        }
    })
}

fn approvals(old: &Process, new: &Process) -> Vec<Change> {
    let entries = |p| {
        let all = gather(p, |m| match m {
            Member::Approval(a) => vec![a],
            _ => Vec::new(),
        });
        named(all, |a: &Approval| a.stage.name.clone())
    };
    by_name(Kind::Approval, &entries(old), &entries(new), |a| {
        // Each rule by its name (as a tailoring addresses it), the rest by keyword.
        let aspects = a
            .entries
            .iter()
            .map(|e| {
                let line = format::approval_rule_line(e);
                match e {
                    // A named rule by its name; the unnamed ones (and `otherwise`) choose in
                    // order, so together they are one part.
                    ApprovalEntry::Rule { name: Some(n), .. } => (format!("rule {n}"), line),
                    ApprovalEntry::Rule { .. } => ("rules".to_string(), line),
                    // `on reject rejected -> assessment`: where the outcome leads.
                    ApprovalEntry::Outcome(o) => {
                        let after = o
                            .after
                            .as_ref()
                            .map(|d| format!(" after {}", d.node))
                            .unwrap_or_default();
                        (
                            format!("on {}{after}", o.kind.node.as_str()),
                            o.stage.name.clone(),
                        )
                    }
                    _ => show::keyed(&line),
                }
            })
            .collect();
        Shown {
            text: show::member(Member::Approval(a.clone())),
            aspects,
        }
    })
}

fn rules(old: &Process, new: &Process) -> Vec<Change> {
    let entries = |p| {
        let all = gather(p, |m| match m {
            Member::Rule(r) => vec![r],
            _ => Vec::new(),
        });
        named(all, |r: &Rule| r.name.name.clone())
    };
    by_name(Kind::Rule, &entries(old), &entries(new), |r| {
        let text = show::entry(OverlayEntry::Rule(r.clone()));
        let header = text.lines().next().unwrap_or_default();
        let target = header
            .strip_prefix(&format!("rule {} ", r.name))
            .unwrap_or(header)
            .trim_end_matches(" {}")
            .trim_end_matches(" {");
        let aspects = vec![
            ("target".to_string(), target.to_string()),
            ("body".to_string(), r.code.normalized().join("\n")),
        ];
        Shown { text, aspects }
    })
}
