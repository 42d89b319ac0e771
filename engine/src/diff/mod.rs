//! A semantic diff of two projects: what changed, entry by entry, never line by line.
//!
//! Two projects' definitions (each as it runs: `check::effective_files`, tailorings applied)
//! are compared entry by entry, each entry addressed by the stable name a tailoring uses for it
//! (a field's name, a target's priority, a route's name, an escalation step's clock and
//! threshold; see `check::tailor`), so a change reads as what it does (`~ target P1: respond
//! 15m -> 10m`) and not as the lines that moved. Entries compare by content: syntax trees
//! ignore their spans in `==`, so where an entry was written, and in which file, is no change.
//!
//! What is compared: per process, its label, fields, links, priority levels, priority table
//! (cell by cell), targets and their calendar, stages, transitions, routes (and their order,
//! which decides), escalation steps, approvals (per stage) and rules; and the calendars,
//! queues, roles and services of the project, and processes added or removed whole. The order
//! of the other entries does not change what they do, and is not compared. Process tests are
//! not part of what runs, and are left out.

mod items;
mod process;
mod show;
#[cfg(test)]
mod tests;

use itsmflow_dsl::ast;
use serde::Serialize;

use crate::check::tailor_rename::{rewrite, Rename};

/// What kind of entry a change is to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A process's label.
    Label,
    Field,
    Link,
    /// The priority levels (`priorities P1, P2, P3`).
    Priorities,
    /// The priority table as a whole: added, removed, or read from other fields.
    PriorityTable,
    /// One cell of the priority table, by its keys (`impact=high, urgency=low`).
    PriorityCell,
    /// The calendar of the targets (`targets on office`).
    TargetsCalendar,
    /// The targets row of one priority.
    Target,
    Stage,
    Transition,
    Route,
    /// An escalation step, by clock and threshold (`resolve at 90%`).
    Escalation,
    /// A stage's approval, by the stage.
    Approval,
    Rule,
    Calendar,
    Queue,
    /// A tier's operational-level targets (`tier 2 { targets { ... } }`), by its number.
    Tier,
    Role,
    Service,
    /// A whole process, added or removed.
    Process,
}

impl Kind {
    /// The words the text output uses for the kind.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Label => "label",
            Kind::Field => "field",
            Kind::Link => "link",
            Kind::Priorities => "priorities",
            Kind::PriorityTable => "priority table",
            Kind::PriorityCell => "priority",
            Kind::TargetsCalendar => "targets calendar",
            Kind::Target => "target",
            Kind::Stage => "stage",
            Kind::Transition => "transition",
            Kind::Route => "route",
            Kind::Escalation => "escalation",
            Kind::Approval => "approval",
            Kind::Rule => "rule",
            Kind::Calendar => "calendar",
            Kind::Queue => "queue",
            Kind::Tier => "tier",
            Kind::Role => "role",
            Kind::Service => "service",
            Kind::Process => "process",
        }
    }
}

/// What happened to an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Added,
    Removed,
    Changed,
    /// A route in another place among the others (it is otherwise the same).
    Moved,
}

/// One part of a changed entry (`respond` of a target, `queue` of a stage) with its old and new
/// value as the language writes it; `None` where the entry did not have it. The aspect is empty
/// for an entry that is one value (a priority cell, the targets' calendar).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Detail {
    pub aspect: String,
    pub old: Option<String>,
    pub new: Option<String>,
}

/// A change to one entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Change {
    pub kind: Kind,
    /// The entry's stable name (`cost_centre`, `P1`, `resolve at 90%`); empty for what a
    /// process has once (its label, priority levels, table, targets' calendar).
    pub name: String,
    pub change: ChangeKind,
    /// The entry as the language writes it (for `moved`: its place, `before network`).
    pub old: Option<String>,
    pub new: Option<String>,
    /// For `changed`: each part that differs.
    pub details: Vec<Detail>,
    /// For an added route: its place among the routes (`before network`).
    pub place: Option<String>,
}

/// The changes to one process present on both sides.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProcessDiff {
    pub name: String,
    pub changes: Vec<Change>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub added: usize,
    pub removed: usize,
    pub changed: usize,
    pub moved: usize,
}

/// The differences between two projects: per process, then the project's other items (and
/// processes added or removed whole).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Diff {
    pub processes: Vec<ProcessDiff>,
    pub items: Vec<Change>,
    pub summary: Summary,
}

/// Compare two projects' files (each side's effective files, as they run).
pub fn diff(old: &[ast::File], new: &[ast::File]) -> Diff {
    let old_items: Vec<&ast::Item> = old.iter().flat_map(|f| &f.items).collect();
    let new_items: Vec<&ast::Item> = new.iter().flat_map(|f| &f.items).collect();
    let mut processes = Vec::new();
    for (o, n) in items::process_pairs(&old_items, &new_items) {
        let changes = process::compare(o, n);
        if !changes.is_empty() {
            processes.push(ProcessDiff {
                name: n.name.name.clone(),
                changes,
            });
        }
    }
    Diff::new(processes, items::compare(&old_items, &new_items))
}

/// Compare two projects' files where the new side renames queues (a client's tailoring
/// `rename`s a standard queue): the old side is read with the new names, so a stage or route
/// that follows the rename is no change, and each renamed queue is one change, `name OLD ->
/// NEW` among its details, not a queue removed and another added. A rename the old side has
/// already made is none.
pub fn diff_renamed(old: &[ast::File], new: &[ast::File], renames: &[Rename]) -> Diff {
    let has = |files: &[ast::File], name: &str| {
        files
            .iter()
            .flat_map(|f| &f.items)
            .any(|i| matches!(i, ast::Item::Queue(q) if q.name.name == name))
    };
    let renames: Vec<Rename> = renames
        .iter()
        .filter(|r| has(old, &r.from) && !has(old, &r.to.name))
        .filter(|r| has(new, &r.to.name) && !has(new, &r.from))
        .cloned()
        .collect();
    if renames.is_empty() {
        return diff(old, new);
    }
    let mut renamed = old.to_vec();
    for file in &mut renamed {
        rewrite(file, &renames);
        for item in &mut file.items {
            if let ast::Item::Queue(q) = item {
                if let Some(r) = renames.iter().find(|r| r.from == q.name.name) {
                    q.name.name = r.to.name.clone();
                }
            }
        }
    }
    let found = diff(&renamed, new);
    let mut items = found.items;
    for r in &renames {
        let name = Detail {
            aspect: "name".to_string(),
            old: Some(r.from.clone()),
            new: Some(r.to.name.clone()),
        };
        if let Some(c) = items
            .iter_mut()
            .find(|c| c.kind == Kind::Queue && c.name == r.to.name)
        {
            c.details.insert(0, name);
            continue;
        }
        // The same queue under its new name: the rename is the one change.
        let text = |files: &[ast::File], name: &str| {
            files.iter().flat_map(|f| &f.items).find_map(|i| match i {
                ast::Item::Queue(q) if q.name.name == name => Some(show::item(i.clone())),
                _ => None,
            })
        };
        let at = items
            .iter()
            .position(|c| !matches!(c.kind, Kind::Calendar | Kind::Queue))
            .unwrap_or(items.len());
        items.insert(
            at,
            Change {
                kind: Kind::Queue,
                name: r.to.name.clone(),
                change: ChangeKind::Changed,
                old: text(old, &r.from),
                new: text(new, &r.to.name),
                details: vec![name],
                place: None,
            },
        );
    }
    Diff::new(found.processes, items)
}

impl Diff {
    fn new(processes: Vec<ProcessDiff>, items: Vec<Change>) -> Diff {
        let mut summary = Summary::default();
        let all = processes.iter().flat_map(|p| &p.changes).chain(&items);
        for c in all {
            match c.change {
                ChangeKind::Added => summary.added += 1,
                ChangeKind::Removed => summary.removed += 1,
                ChangeKind::Changed => summary.changed += 1,
                ChangeKind::Moved => summary.moved += 1,
            }
        }
        Diff {
            processes,
            items,
            summary,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.processes.is_empty() && self.items.is_empty()
    }

    /// Only what concerns one process: its changes, or its being added or removed.
    pub fn only_process(self, name: &str) -> Diff {
        let processes = self
            .processes
            .into_iter()
            .filter(|p| p.name == name)
            .collect();
        let items = self
            .items
            .into_iter()
            .filter(|c| c.kind == Kind::Process && c.name == name)
            .collect();
        Diff::new(processes, items)
    }

    /// The diff as a plan: `process NAME` and a line per change (`+` added, `-` removed, `~`
    /// changed or moved), the other items, and a summary; or `no differences`.
    pub fn to_text(&self) -> String {
        if self.is_empty() {
            return "no differences\n".to_string();
        }
        let mut out = String::new();
        for p in &self.processes {
            out.push_str(&format!("process {}\n", p.name));
            for c in &p.changes {
                out.push_str(&change_text(c, "  "));
            }
            out.push('\n');
        }
        for c in &self.items {
            out.push_str(&change_text(c, ""));
        }
        if !self.items.is_empty() {
            out.push('\n');
        }
        let s = self.summary;
        out.push_str(&format!(
            "{} added, {} removed, {} changed, {} moved\n",
            s.added, s.removed, s.changed, s.moved
        ));
        out
    }
}

/// One change as lines of the plan, each started by `indent`.
fn change_text(c: &Change, indent: &str) -> String {
    let title = match c.name.as_str() {
        "" => c.kind.as_str().to_string(),
        name => format!("{} {name}", c.kind.as_str()),
    };
    let (sign, text) = match c.change {
        ChangeKind::Added => {
            let mut text = c.new.clone().unwrap_or_default();
            if let Some(place) = &c.place {
                text.push(' ');
                text.push_str(place);
            }
            ('+', text)
        }
        ChangeKind::Removed => ('-', c.old.clone().unwrap_or_default()),
        ChangeKind::Changed => {
            let details: Vec<String> = c.details.iter().map(detail_text).collect();
            ('~', format!("{title}: {}", details.join("; ")))
        }
        ChangeKind::Moved => (
            '~',
            format!(
                "{title}: moved {} (was {})",
                c.new.as_deref().unwrap_or("?"),
                c.old.as_deref().unwrap_or("?")
            ),
        ),
    };
    // An entry of several lines (a stage with attributes) keeps its layout, under the sign.
    let mut out = String::new();
    for (i, line) in text.lines().enumerate() {
        let lead = if i == 0 {
            format!("{sign} ")
        } else {
            "  ".into()
        };
        out.push_str(&format!("{indent}{lead}{line}\n"));
    }
    out
}

/// `respond 15m -> 10m`, `queue none -> service_desk`; a value of several lines (a rule's
/// body) only as `body changed`, the values being in the JSON output.
fn detail_text(d: &Detail) -> String {
    let value = |v: &Option<String>| v.clone().unwrap_or_else(|| "none".to_string());
    let several = |v: &Option<String>| v.as_deref().is_some_and(|v| v.contains('\n'));
    let change = if several(&d.old) || several(&d.new) {
        "changed".to_string()
    } else {
        format!("{} -> {}", value(&d.old), value(&d.new))
    };
    match d.aspect.as_str() {
        "" => change,
        aspect => format!("{aspect} {change}"),
    }
}

/// An entry as the diff shows it: its text, and its parts by what they set (`respond`,
/// `queue`), for the details of a change. A part may occur more than once (two `notify`s).
pub(crate) struct Shown {
    pub text: String,
    pub aspects: Vec<(String, String)>,
}

/// Entries of one kind on both sides, by stable name: what was added, removed or changed, in
/// the new side's order, then the removed ones in the old side's order. Two entries of one
/// name on a side (which the checker refuses) pair up in order.
pub(crate) fn compare<T: PartialEq>(
    kind: Kind,
    old: &[(String, &T)],
    new: &[(String, &T)],
    show: impl Fn(&T) -> Shown,
) -> Vec<Change> {
    let mut changes = Vec::new();
    for (i, (name, n)) in new.iter().enumerate() {
        match counterpart(new, i, old) {
            None => changes.push(added(kind, name, show(*n).text)),
            Some((_, o)) if *o == *n => {}
            Some((_, o)) => changes.push(changed(kind, name, show(*o), show(*n))),
        }
    }
    for (i, (name, o)) in old.iter().enumerate() {
        if counterpart(old, i, new).is_none() {
            changes.push(removed(kind, name, show(*o).text));
        }
    }
    changes
}

/// The entry of `other` that pairs with `side[i]`: the one of the same name and occurrence.
fn counterpart<'a, 'b, T>(
    side: &[(String, &T)],
    i: usize,
    other: &'a [(String, &'b T)],
) -> Option<&'a (String, &'b T)> {
    let name = &side[i].0;
    let nth = side[..i].iter().filter(|(n, _)| n == name).count();
    other.iter().filter(|(n, _)| n == name).nth(nth)
}

pub(crate) fn added(kind: Kind, name: &str, text: String) -> Change {
    Change {
        kind,
        name: name.to_string(),
        change: ChangeKind::Added,
        old: None,
        new: Some(text),
        details: Vec::new(),
        place: None,
    }
}

pub(crate) fn removed(kind: Kind, name: &str, text: String) -> Change {
    Change {
        kind,
        name: name.to_string(),
        change: ChangeKind::Removed,
        old: Some(text),
        new: None,
        details: Vec::new(),
        place: None,
    }
}

/// A changed entry, with the parts that differ. Entries that differ in a way no part shows
/// (there should be none) still say so, with the whole old and new entry.
pub(crate) fn changed(kind: Kind, name: &str, old: Shown, new: Shown) -> Change {
    let mut details = details(&old.aspects, &new.aspects);
    if details.is_empty() {
        details.push(Detail {
            aspect: String::new(),
            old: Some(old.text.clone()),
            new: Some(new.text.clone()),
        });
    }
    Change {
        kind,
        name: name.to_string(),
        change: ChangeKind::Changed,
        old: Some(old.text),
        new: Some(new.text),
        details,
        place: None,
    }
}

/// The parts that differ, in the order they first occur (new side first). The values of a part
/// that occurs several times are compared together, joined by ` | `.
fn details(old: &[(String, String)], new: &[(String, String)]) -> Vec<Detail> {
    let mut keys: Vec<&str> = Vec::new();
    for (k, _) in new.iter().chain(old) {
        if !keys.contains(&k.as_str()) {
            keys.push(k.as_str());
        }
    }
    let value = |side: &[(String, String)], key: &str| {
        let values: Vec<&str> = side
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect();
        (!values.is_empty()).then(|| values.join(" | "))
    };
    keys.into_iter()
        .filter_map(|key| {
            let (o, n) = (value(old, key), value(new, key));
            (o != n).then(|| Detail {
                aspect: key.to_string(),
                old: o,
                new: n,
            })
        })
        .collect()
}

/// An entry that a process has at most once (its label, the targets' calendar), compared as
/// one value: a change from or to `None` is a change too, not an addition.
pub(crate) fn value_change(
    kind: Kind,
    old: Option<(String, String)>,
    new: Option<(String, String)>,
) -> Option<Change> {
    if old == new {
        return None;
    }
    let (old_text, old_value) = old.unzip();
    let (new_text, new_value) = new.unzip();
    Some(Change {
        kind,
        name: String::new(),
        change: ChangeKind::Changed,
        old: old_text,
        new: new_text,
        details: vec![Detail {
            aspect: String::new(),
            old: old_value,
            new: new_value,
        }],
        place: None,
    })
}
