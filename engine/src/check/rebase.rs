//! Carrying a client's tailoring onto a new standard library.
//!
//! Each entry of the client's tailorings is judged against what the base said before (the
//! library the client tailored) and what it says now, never record by record:
//!
//! - **applying**: the base did not change the entry the client changes, so the client's
//!   change still means what it meant;
//! - **conflicting**: the base changed that same entry (or now has one of the name the client
//!   adds, or no longer has the one it replaces, removes or requires): someone must decide;
//! - **obsolete**: the base now says what the client says (or removed what the client
//!   removes): the entry can go.

use itsmflow_dsl::ast::{self, Member, Overlay, OverlayEntry, Process, Span, Verb};
use itsmflow_dsl::format;

use super::tailor::{self, Address, Place};
use super::{rebase_calendar, rebase_queue};

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Applying,
    Conflicting,
    Obsolete,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Applying => "applying",
            Status::Conflicting => "conflicting",
            Status::Obsolete => "obsolete",
        }
    }
}

/// One entry of a client's tailoring, judged.
#[derive(Clone, Debug)]
pub struct EntryReport {
    /// What kind of item is tailored: `process`, `calendar` or `queue`.
    pub kind: &'static str,
    /// The tailored item's name, as the client's tailoring names it.
    pub item: String,
    /// The entry as the client wrote its head: `replace target P1`.
    pub entry: String,
    pub status: Status,
    /// Why, for an entry that is not simply applying.
    pub reason: Option<String>,
    /// The base's entry before and now, as the language writes it (`None`: it had none).
    pub before: Option<String>,
    pub now: Option<String>,
    /// Where the client wrote it.
    pub span: Span,
}

/// Judge every entry of `client`'s tailorings (in `client_files`) against the base before
/// (`old`) and now (`new`): its processes' tailorings, then its calendars' and queues'. A tailoring whose
/// base is gone from either side is reported as one conflicting entry.
pub fn rebase(
    old: &[ast::File],
    new: &[ast::File],
    client_files: &[ast::File],
    client: &str,
) -> Vec<EntryReport> {
    let mut out = Vec::new();
    for (overlay, t) in tailor::tailorings(client_files) {
        if t.client.name != client {
            continue;
        }
        let (before, now) = (base(old, &t.base.name), base(new, &t.base.name));
        let (Some(before), Some(now)) = (before, now) else {
            out.push(base_gone("process", &overlay.name, t, before.is_none()));
            continue;
        };
        for member in &overlay.members {
            if let Member::Overlay(o) = member {
                out.push(judge(&overlay.name.name, o, before, now));
            }
        }
    }
    out.extend(rebase_calendar::rebase_calendars(
        old,
        new,
        client_files,
        client,
    ));
    out.extend(rebase_queue::rebase_queues(old, new, client_files, client));
    out
}

/// A tailoring whose base the standard library had not (`before_missing`) or has no longer.
pub(super) fn base_gone(
    kind: &'static str,
    name: &ast::Ident,
    t: &ast::Tailoring,
    before_missing: bool,
) -> EntryReport {
    EntryReport {
        kind,
        item: name.name.clone(),
        entry: format!("extends {}", t.base),
        status: Status::Conflicting,
        reason: Some(format!(
            "the standard library {} no {kind} `{}`",
            if before_missing { "had" } else { "now has" },
            t.base
        )),
        before: None,
        now: None,
        span: t.span,
    }
}

/// The judgement of an entry from its verb and the base's entry before and now (`None`: the
/// base had none), compared with what the client's entry says (`None`: it only names one).
pub(super) fn status<T: PartialEq>(
    verb: Verb,
    old: Option<&T>,
    new: Option<&T>,
    mine: Option<&T>,
) -> (Status, Option<String>) {
    use Status::*;
    let changed = old != new;
    match (verb, new) {
        (Verb::Require, Some(_)) => (Applying, None),
        (Verb::Require, None) => (Conflicting, Some("the base no longer has it".to_string())),
        (Verb::Add, None) => (Applying, None),
        (Verb::Add, Some(n)) if Some(n) == mine => {
            (Obsolete, Some("the base now has the same".to_string()))
        }
        (Verb::Add, Some(_)) => (
            Conflicting,
            Some("the base now has its own of that name".to_string()),
        ),
        (Verb::Replace, None) => (Conflicting, Some("the base no longer has it".to_string())),
        (Verb::Replace, Some(n)) if Some(n) == mine => {
            (Obsolete, Some("the base now says the same".to_string()))
        }
        (Verb::Remove, None) => (Obsolete, Some("the base removed it too".to_string())),
        (Verb::Replace | Verb::Remove, Some(_)) if changed => (
            Conflicting,
            Some(match old {
                None => "the base added it since".to_string(),
                Some(_) => "the base changed it".to_string(),
            }),
        ),
        (Verb::Replace | Verb::Remove, Some(_)) => (Applying, None),
    }
}

fn base<'a>(files: &'a [ast::File], name: &str) -> Option<&'a Process> {
    files.iter().flat_map(|f| &f.items).find_map(|i| match i {
        ast::Item::Process(p) if p.tailoring.is_none() && p.name.name == name => Some(p),
        _ => None,
    })
}

fn judge(process: &str, o: &Overlay, before: &Process, now: &Process) -> EntryReport {
    let address = Address::of(&o.entry);
    let old = address
        .find(before)
        .map(|at| Content::at(before, at, &address));
    let new = address.find(now).map(|at| Content::at(now, at, &address));
    let mine = Content::of(&o.entry);
    let (status, reason) = status(o.verb.node, old.as_ref(), new.as_ref(), mine.as_ref());
    EntryReport {
        kind: "process",
        item: process.to_string(),
        entry: format!("{} {}", o.verb.node.as_str(), address.describe_plain()),
        status,
        reason,
        before: old.map(|c| c.text()),
        now: new.map(|c| c.text()),
        span: o.span,
    }
}

/// An entry's content, comparable whatever its spans: the member holding just that entry, or
/// a priority cell's value, or the targets' calendar.
#[derive(Clone, Debug, PartialEq)]
enum Content {
    Member(Box<Member>),
    Cell(String),
    Calendar(Option<String>),
}

impl Content {
    /// The base's entry at `at`.
    fn at(p: &Process, (i, j): Place, address: &Address) -> Content {
        let member = &p.members[i];
        match (member, j) {
            (Member::Fields(f), Some(j)) => {
                Content::Member(Box::new(Member::Fields(ast::Fields {
                    fields: vec![f.fields[j].clone()],
                    span: f.span,
                })))
            }
            (Member::Targets(t), Some(j)) => {
                Content::Member(Box::new(Member::Targets(ast::Targets {
                    calendar: None,
                    rows: vec![t.rows[j].clone()],
                    span: t.span,
                })))
            }
            (Member::Targets(t), None) => {
                Content::Calendar(t.calendar.as_ref().map(|c| c.name.clone()))
            }
            (Member::PriorityTable(t), Some(j)) => {
                let row = &t.rows[j];
                match address {
                    // A cell written as a row of its own: its one value.
                    Address::Priority(keys)
                        if tailor::names(&row.keys) == *keys
                            && keys.len() > 1
                            && row.cells.len() == 1 =>
                    {
                        Content::Cell(row.cells[0].name.clone())
                    }
                    // A cell of a full row: its value, at the cell's place.
                    Address::Priority(keys) if tailor::names(&row.keys) != *keys => {
                        let value = keys
                            .last()
                            .and_then(|last| cell_value(p, t, row, last))
                            .unwrap_or_default();
                        Content::Cell(value)
                    }
                    _ => Content::Member(Box::new(Member::PriorityTable(ast::PriorityTable {
                        fields: Vec::new(),
                        rows: vec![row.clone()],
                        span: t.span,
                    }))),
                }
            }
            (Member::Routing(r), Some(j)) => {
                Content::Member(Box::new(Member::Routing(ast::Routing {
                    rules: vec![r.rules[j].clone()],
                    span: r.span,
                })))
            }
            (Member::Escalation(e), Some(j)) => {
                Content::Member(Box::new(Member::Escalation(ast::Escalation {
                    clock: e.clock.clone(),
                    steps: vec![e.steps[j].clone()],
                    span: e.span,
                })))
            }
            (Member::Approval(a), Some(j)) => {
                Content::Member(Box::new(Member::Approval(ast::Approval {
                    stage: a.stage.clone(),
                    entries: vec![a.entries[j].clone()],
                    span: a.span,
                })))
            }
            (m, _) => Content::Member(Box::new(m.clone())),
        }
    }

    /// What the client's entry says, in the same form (`None` for an entry only named).
    fn of(entry: &OverlayEntry) -> Option<Content> {
        let span = Span::default();
        Some(match entry {
            OverlayEntry::Field(f) => Content::Member(Box::new(Member::Fields(ast::Fields {
                fields: vec![f.clone()],
                span,
            }))),
            OverlayEntry::Stage(s) => Content::Member(Box::new(Member::Stage(s.clone()))),
            OverlayEntry::Transition(t) => Content::Member(Box::new(Member::Transition(t.clone()))),
            OverlayEntry::Target(row) => Content::Member(Box::new(Member::Targets(ast::Targets {
                calendar: None,
                rows: vec![row.clone()],
                span,
            }))),
            OverlayEntry::TargetsCalendar(c) => Content::Calendar(Some(c.name.clone())),
            OverlayEntry::PriorityTable(t) => {
                Content::Member(Box::new(Member::PriorityTable(t.clone())))
            }
            OverlayEntry::PriorityRow(row) if row.cells.len() == 1 && row.keys.len() > 1 => {
                // Judged as a cell or as a one-cell row: both forms are compared.
                Content::Cell(row.cells[0].name.clone())
            }
            OverlayEntry::PriorityRow(row) => {
                Content::Member(Box::new(Member::PriorityTable(ast::PriorityTable {
                    fields: Vec::new(),
                    rows: vec![row.clone()],
                    span,
                })))
            }
            OverlayEntry::Priorities(p) => Content::Member(Box::new(Member::Priorities(p.clone()))),
            OverlayEntry::Route { rule, .. } => {
                Content::Member(Box::new(Member::Routing(ast::Routing {
                    rules: vec![rule.clone()],
                    span,
                })))
            }
            OverlayEntry::Escalation { clock, step } => {
                Content::Member(Box::new(Member::Escalation(ast::Escalation {
                    clock: clock.clone(),
                    steps: vec![step.clone()],
                    span,
                })))
            }
            OverlayEntry::Rule(r) => Content::Member(Box::new(Member::Rule(r.clone()))),
            OverlayEntry::Approval(a) => Content::Member(Box::new(Member::Approval(a.clone()))),
            OverlayEntry::ApprovalEntry { stage, entry, .. } => {
                Content::Member(Box::new(Member::Approval(ast::Approval {
                    stage: stage.clone(),
                    entries: vec![entry.clone()],
                    span,
                })))
            }
            OverlayEntry::Named(_) => return None,
        })
    }

    /// As the language writes it, on one line where it fits.
    fn text(&self) -> String {
        match self {
            Content::Cell(v) => v.clone(),
            Content::Calendar(Some(c)) => format!("targets on {c}"),
            Content::Calendar(None) => "targets (no calendar)".to_string(),
            Content::Member(m) => member_text(m),
        }
    }
}

fn ident(name: &str, span: Span) -> ast::Ident {
    ast::Ident {
        name: name.to_string(),
        span,
    }
}

/// A priority cell's value in a full row: the last key's place among the last field's values.
fn cell_value(
    p: &Process,
    table: &ast::PriorityTable,
    row: &ast::PriorityRow,
    last_key: &str,
) -> Option<String> {
    let probe = ast::PriorityRow {
        keys: vec![ident(last_key, row.span)],
        cells: Vec::new(),
        span: row.span,
    };
    let index = tailor::cell_index(&p.members, table, &probe)?;
    row.cells.get(index).map(|c| c.name.clone())
}

/// A member holding one entry, printed by the formatter and stripped of its block: the
/// entry's own line(s).
fn member_text(m: &Member) -> String {
    let process = Process {
        name: ident("x", Span::default()),
        label: None,
        tailoring: None,
        members: vec![m.clone()],
        span: Span::default(),
    };
    let printed = format::format(
        "",
        &ast::File {
            items: vec![ast::Item::Process(process)],
        },
    );
    let lines: Vec<&str> = printed.lines().collect();
    // `process x {`, the member, `}`; a block member (fields, targets, routing, escalation,
    // a table) adds its own header and closing line around the entry.
    let inner = lines.get(1..lines.len().saturating_sub(1)).unwrap_or(&[]);
    let inner = match m {
        Member::Fields(_)
        | Member::Targets(_)
        | Member::Routing(_)
        | Member::Escalation(_)
        | Member::PriorityTable(_)
        | Member::Approval(_)
            if inner.len() >= 2 =>
        {
            &inner[1..inner.len() - 1]
        }
        _ => inner,
    };
    inner.iter().map(|l| l.trim()).collect::<Vec<_>>().join(" ")
}
