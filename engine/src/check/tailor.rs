//! Tailoring: a client's processes as the standard ones with the client's changes applied.
//!
//! `process incident for client acme extends incident { ... }` holds entries, each a verb and
//! an entry of the base addressed by a stable name (see [`ast::OverlayEntry`]). The effective
//! process is the base with the entries applied in order; the checker then checks the
//! effective project as any other, so every rule that holds for a process holds for a
//! tailored one. A problem the tailoring causes in the base (a transition into a stage it
//! removed) is reported where it is, in the base, with the tailoring's header as a second
//! label, so the consultant sees both the line that breaks and the change that broke it.
//!
//! Calendars and queues are tailored the same way ([`super::tailor_calendar`],
//! [`super::tailor_queue`]); a queue's `rename` is known first, and the standard files'
//! references follow it before anything is applied ([`super::tailor_rename`]).
//!
//! A project runs for one client: with tailorings for several, one is chosen (`--client`);
//! the others are left out.

use std::collections::BTreeSet;

use itsmflow_dsl::ast::{
    self, ApprovalKey, EntryRef, Ident, Item, Member, Overlay, OverlayEntry, Process, Span,
    Threshold, Verb,
};
use itsmflow_dsl::Diagnostic;

use super::names::did_you_mean;
use super::tailor_calendar::apply_calendar;
use super::tailor_queue::apply_queue;
use super::tailor_rename;

/// Which client's tailorings a check applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientChoice<'a> {
    /// The one client the project tailors for, if exactly one; with several, an error.
    Auto,
    /// None: the standard processes as they are.
    Base,
    Named(&'a str),
}

/// The clients a project's tailorings name, in order of name.
pub fn clients(files: &[ast::File]) -> Vec<String> {
    all_tailorings(files)
        .map(|t| t.client.name.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// The header (`for client ... extends ...`) of the client's first tailoring.
pub fn first_header(files: &[ast::File], client: &str) -> Option<Span> {
    all_tailorings(files)
        .find(|t| t.client.name == client)
        .map(|t| t.span)
}

/// The headers of every tailoring, of every kind, in order.
fn all_tailorings(files: &[ast::File]) -> impl Iterator<Item = &ast::Tailoring> {
    files
        .iter()
        .flat_map(|f| &f.items)
        .filter_map(item_tailoring)
}

pub(super) fn tailorings(files: &[ast::File]) -> impl Iterator<Item = (&Process, &ast::Tailoring)> {
    files.iter().flat_map(|f| &f.items).filter_map(|i| match i {
        Item::Process(p) => p.tailoring.as_ref().map(|t| (p, t)),
        _ => None,
    })
}

/// The tailorings applied to one process, for diagnostics: the span of a tailoring's header
/// and the effective process's name.
#[derive(Clone, Debug)]
pub struct Applied {
    pub process: String,
    pub client: String,
    pub header: Span,
    /// The base process's whole span: a problem inside it is one the tailoring may cause.
    pub base: Span,
}

/// The project's files with the chosen client's tailorings applied: each tailored process in
/// place of its base (or beside it, under a new name), tailorings of other clients left out.
pub fn effective(
    files: &[ast::File],
    choice: ClientChoice<'_>,
    diags: &mut Vec<Diagnostic>,
) -> (Vec<ast::File>, Vec<Applied>) {
    let client = chosen_client(files, choice, diags);
    // A queue's new name is known before anything is applied: the standard processes a
    // client's tailorings extend already use it.
    let renames = match client.as_deref() {
        Some(c) => tailor_rename::renames(files, c, diags),
        None => Vec::new(),
    };
    let rewritten: Vec<ast::File>;
    let files: &[ast::File] = if renames.is_empty() {
        files
    } else {
        rewritten = files
            .iter()
            .map(|f| {
                let mut f = f.clone();
                if file_client(&f) != client.as_deref() {
                    tailor_rename::rewrite(&mut f, &renames);
                }
                f
            })
            .collect();
        &rewritten
    };

    let processes: Vec<&Process> = files
        .iter()
        .flat_map(|f| &f.items)
        .filter_map(|i| match i {
            Item::Process(p) => Some(p),
            _ => None,
        })
        .collect();
    let calendars: Vec<&ast::Calendar> = files
        .iter()
        .flat_map(|f| &f.items)
        .filter_map(|i| match i {
            Item::Calendar(c) => Some(c),
            _ => None,
        })
        .collect();
    let queues: Vec<&ast::Queue> = files
        .iter()
        .flat_map(|f| &f.items)
        .filter_map(|i| match i {
            Item::Queue(q) => Some(q),
            _ => None,
        })
        .collect();
    let client = client.as_deref();
    let mut queues = tailor_items(
        &queues,
        |q| (&q.name, q.tailoring.as_ref(), q.span),
        "queue",
        client,
        apply_queue,
        diags,
    );
    for (_, q, in_place) in &mut queues.items {
        if let Some(r) = renames.iter().find(|r| *in_place && r.from == q.name.name) {
            q.name = r.to.clone();
        }
    }
    let processes = tailor_items(
        &processes,
        |p| (&p.name, p.tailoring.as_ref(), p.span),
        "process",
        client,
        apply,
        diags,
    );
    let calendars = tailor_items(
        &calendars,
        |c| (&c.name, c.tailoring.as_ref(), c.span),
        "calendar",
        client,
        apply_calendar,
        diags,
    );

    // The files again: a base that is tailored under its own name gives way to the tailored
    // item (in the base's place); tailorings become their effective items, or nothing when
    // they are another client's.
    let (mut next_process, mut next_calendar, mut next_queue) = (0, 0, 0);
    let mut out = Vec::with_capacity(files.len());
    for file in files {
        let mut items = Vec::with_capacity(file.items.len());
        // Tests belong to the variant of their file: beside a client's tailoring they are that
        // client's (they test what it changes); elsewhere they are the standard library's
        // (they test the standard processes, which a client may have changed on purpose).
        let others_tests = file_client(file) != client;
        for item in &file.items {
            match item {
                Item::Test(_) if others_tests => {}
                Item::Process(p) if p.tailoring.is_some() => {
                    next_process += 1;
                    if let Some(e) = processes.at_tailoring(next_process - 1) {
                        items.push(Item::Process(e.clone()));
                    }
                }
                Item::Calendar(c) if c.tailoring.is_some() => {
                    next_calendar += 1;
                    if let Some(e) = calendars.at_tailoring(next_calendar - 1) {
                        items.push(Item::Calendar(e.clone()));
                    }
                }
                Item::Queue(q) if q.tailoring.is_some() => {
                    next_queue += 1;
                    if let Some(e) = queues.at_tailoring(next_queue - 1) {
                        items.push(Item::Queue(e.clone()));
                    }
                }
                Item::Queue(q) => {
                    let e = queues.in_place_of(&q.name.name).unwrap_or(q);
                    items.push(Item::Queue(e.clone()));
                }
                Item::Process(p) => {
                    let e = processes.in_place_of(&p.name.name).unwrap_or(p);
                    items.push(Item::Process(e.clone()));
                }
                Item::Calendar(c) => {
                    let e = calendars.in_place_of(&c.name.name).unwrap_or(c);
                    items.push(Item::Calendar(e.clone()));
                }
                other => items.push(other.clone()),
            }
        }
        out.push(ast::File { items });
    }
    let mut applied = processes.applied;
    applied.extend(calendars.applied);
    applied.extend(queues.applied);
    (out, applied)
}

/// The client whose tailorings apply: the one named, or the project's only one (with
/// several, none, and an error).
fn chosen_client(
    files: &[ast::File],
    choice: ClientChoice<'_>,
    diags: &mut Vec<Diagnostic>,
) -> Option<String> {
    match choice {
        ClientChoice::Base => None,
        ClientChoice::Named(c) => Some(c.to_string()),
        ClientChoice::Auto => {
            let all = clients(files);
            if all.len() > 1 {
                let second = all_tailorings(files).find(|t| t.client.name == all[1]);
                if let Some(t) = second {
                    diags.push(
                        Diagnostic::error(
                            "several-clients",
                            t.client.span,
                            format!(
                                "this project tailors for clients {}: a project runs for one \
                                 client at a time",
                                all.iter()
                                    .map(|c| format!("`{c}`"))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        )
                        .with_label("a second client")
                        .with_help(
                            "check each client with `--client NAME`; publish each client's \
                             tailoring to its own tenant",
                        ),
                    );
                }
                None
            } else {
                all.into_iter().next()
            }
        }
    }
}

/// The queues the chosen client's tailorings rename, each checked (problems are the
/// checker's to report: see [`effective`]).
pub fn queue_renames(files: &[ast::File], choice: ClientChoice<'_>) -> Vec<tailor_rename::Rename> {
    let mut ignored = Vec::new();
    match chosen_client(files, choice, &mut ignored) {
        Some(c) => tailor_rename::renames(files, &c, &mut ignored),
        None => Vec::new(),
    }
}

/// The tailoring header of an item, if it is a tailoring.
fn item_tailoring(item: &Item) -> Option<&ast::Tailoring> {
    match item {
        Item::Process(p) => p.tailoring.as_ref(),
        Item::Calendar(c) => c.tailoring.as_ref(),
        Item::Queue(q) => q.tailoring.as_ref(),
        _ => None,
    }
}

/// The client whose tailorings a file holds, if any: the file is that client's. (Tests in it
/// are the client's; references in it use the client's names for its queues.)
fn file_client(file: &ast::File) -> Option<&str> {
    file.items
        .iter()
        .filter_map(item_tailoring)
        .map(|t| t.client.name.as_str())
        .next()
}

/// The chosen client's tailorings of one kind of item, applied.
struct Tailored<T> {
    /// By the tailoring's index among the tailorings of its kind: the effective item, and
    /// whether it takes its base's place (same name) or stands beside it.
    items: Vec<(usize, T, bool)>,
    applied: Vec<Applied>,
}

impl<T> Tailored<T> {
    /// What goes where the `index`th tailoring of the kind is written: a tailored item under
    /// a name of its own (one under its base's name goes in the base's place instead).
    fn at_tailoring(&self, index: usize) -> Option<&T> {
        self.items
            .iter()
            .find(|(i, _, in_place)| *i == index && !in_place)
            .map(|(_, t, _)| t)
    }

    /// The tailored item that takes the place of the base item `name`.
    fn in_place_of(&self, name: &str) -> Option<&T> {
        self.applied
            .iter()
            .zip(&self.items)
            .find(|(a, (_, _, in_place))| *in_place && a.process == name)
            .map(|(_, (_, t, _))| t)
    }
}

/// Apply the chosen client's tailorings among `items` (one kind: processes or calendars).
/// `parts` gives an item's name, tailoring header and span.
fn tailor_items<T: Clone>(
    items: &[&T],
    parts: impl Fn(&T) -> (&Ident, Option<&ast::Tailoring>, Span),
    kind: &str,
    client: Option<&str>,
    apply: impl Fn(&T, &T, &mut Vec<Diagnostic>) -> T,
    diags: &mut Vec<Diagnostic>,
) -> Tailored<T> {
    let bases: Vec<&T> = items
        .iter()
        .copied()
        .filter(|i| parts(i).1.is_none())
        .collect();
    let mut out = Tailored {
        items: Vec::new(),
        applied: Vec::new(),
    };
    let mut seen: Vec<&Ident> = Vec::new();
    let tailorings = items
        .iter()
        .copied()
        .filter_map(|i| parts(i).1.map(|t| (i, t)));
    for (index, (overlay, t)) in tailorings.enumerate() {
        if Some(t.client.name.as_str()) != client {
            continue;
        }
        let name = parts(overlay).0;
        if let Some(first) = seen.iter().find(|n| n.name == name.name) {
            diags.push(
                Diagnostic::error(
                    "duplicate-tailoring",
                    name.span,
                    format!("`{name}` is tailored twice for client `{}`", t.client),
                )
                .with_label("second tailoring")
                .with_secondary(first.span, "first one here")
                .with_help(format!("put every change of the {kind} in one tailoring")),
            );
            continue;
        }
        seen.push(name);
        let Some(base) = bases.iter().find(|b| parts(b).0.name == t.base.name) else {
            let mut d = Diagnostic::error(
                "unknown-base",
                t.base.span,
                format!("no {kind} `{}` to extend", t.base),
            )
            .with_label(format!("not a {kind} of the project"));
            if let Some(close) =
                did_you_mean(&t.base.name, bases.iter().map(|b| parts(b).0.as_str()))
            {
                d = d.with_help(format!("did you mean `{close}`?"));
            }
            diags.push(d);
            continue;
        };
        let in_place = name.name == t.base.name;
        out.applied.push(Applied {
            process: name.name.clone(),
            client: t.client.name.clone(),
            header: t.span,
            base: parts(base).2,
        });
        out.items
            .push((index, apply(base, overlay, diags), in_place));
    }
    out
}

/// A diagnostic inside a tailored process's base gets the tailoring's header as a second
/// label: the change that made the line a problem.
pub fn point_at_tailorings(diags: &mut [Diagnostic], applied: &[Applied]) {
    for d in diags.iter_mut() {
        let Some(a) = applied.iter().find(|a| {
            a.base.file == d.span.file && a.base.start <= d.span.start && d.span.end <= a.base.end
        }) else {
            continue;
        };
        let label = format!("in `{}` as tailored for client `{}`", a.process, a.client);
        *d = d.clone().with_secondary(a.header, label);
    }
}

/// The base with the tailoring's entries applied, in order.
fn apply(base: &Process, overlay: &Process, diags: &mut Vec<Diagnostic>) -> Process {
    let mut p = base.clone();
    p.name = overlay.name.clone();
    if overlay.label.is_some() {
        p.label = overlay.label.clone();
    }
    for member in &overlay.members {
        match member {
            Member::Overlay(o) => {
                if let Err(d) = apply_entry(&mut p, o) {
                    diags.push(*d);
                }
            }
            other => diags.push(needs_verb(
                other.span(),
                "write `add`, `replace`, `remove` or `require` before it",
                "`add stage x ...` adds one, `replace stage x ...` rewrites one, `remove stage \
                 x` takes one out",
            )),
        }
    }
    p
}

type Applying = Result<(), Box<Diagnostic>>;

/// An entry of a tailoring (of a process or a calendar) written without a verb.
pub(super) fn needs_verb(span: Span, label: &str, help: &str) -> Diagnostic {
    Diagnostic::error(
        "tailoring-needs-verb",
        span,
        "a tailoring changes its base entry by entry: this entry has no verb",
    )
    .with_label(label.to_string())
    .with_help(help.to_string())
}

/// Where an entry is in a process: the member's index, and the index inside it for entries
/// kept in blocks (fields, target rows, priority rows, routes, escalation steps).
pub(super) type Place = (usize, Option<usize>);

fn apply_entry(p: &mut Process, o: &Overlay) -> Applying {
    let verb = o.verb.node;
    if let OverlayEntry::ApprovalEntry {
        entry:
            ast::ApprovalEntry::Rule {
                name: None,
                condition: Some(_),
                span,
                ..
            },
        ..
    } = &o.entry
    {
        return Err(Box::new(
            Diagnostic::error(
                "overlay-unnamed-rule",
                *span,
                format!(
                    "an approval rule a tailoring {}s needs a name",
                    verb.as_str()
                ),
            )
            .with_label("no name")
            .with_help("write `NAME: when ... => PLAN`, the name the rule is known by"),
        ));
    }
    if let OverlayEntry::Route { rule, .. } = &o.entry {
        // Only `otherwise` goes without a name: any other route is addressed by its name.
        if rule.name.is_none() && rule.condition.is_some() {
            return Err(Box::new(
                Diagnostic::error(
                    "overlay-unnamed-route",
                    rule.span,
                    format!("a route a tailoring {}s needs a name", verb.as_str()),
                )
                .with_label("no name")
                .with_help("write `NAME: when ... => QUEUE`, the name the route is known by"),
            ));
        }
    }
    let address = Address::of(&o.entry);
    let found = address.find(p);
    match (verb, found) {
        (Verb::Add, Some(at)) => Err(exists(o, &address, span_at(p, at))),
        (Verb::Replace | Verb::Remove | Verb::Require, None) => Err(missing(o, &address, p)),
        (Verb::Require, Some(_)) => Ok(()),
        (Verb::Remove, Some(at)) => remove(p, at, o),
        (Verb::Replace, Some(at)) => replace(p, at, o),
        (Verb::Add, None) => add(p, o),
    }
}

/// An entry's kind and stable name, as the diagnostics say it.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Address {
    Field(String),
    Stage(String),
    Transition(String),
    Target(String),
    TargetsCalendar,
    PriorityTable,
    Priority(Vec<String>),
    Priorities,
    Route(Option<String>),
    Escalation(ast::ClockKind, Threshold),
    Rule(String),
    /// A stage's whole approval.
    Approval(String),
    /// One entry of a stage's approval.
    ApprovalEntry(String, ApprovalKey),
}

impl Address {
    pub(super) fn of(entry: &OverlayEntry) -> Address {
        match entry {
            OverlayEntry::Field(f) => Address::Field(f.name.name.clone()),
            OverlayEntry::Stage(s) => Address::Stage(s.name.name.clone()),
            OverlayEntry::Transition(t) => Address::Transition(t.name.name.clone()),
            OverlayEntry::Target(r) => Address::Target(r.priority.name.clone()),
            OverlayEntry::TargetsCalendar(_) => Address::TargetsCalendar,
            OverlayEntry::PriorityTable(_) => Address::PriorityTable,
            OverlayEntry::PriorityRow(r) => Address::Priority(names(&r.keys)),
            OverlayEntry::Priorities(_) => Address::Priorities,
            OverlayEntry::Route { rule, .. } => {
                Address::Route(rule.name.as_ref().map(|n| n.name.clone()))
            }
            OverlayEntry::Escalation { clock, step } => {
                Address::Escalation(clock.node, step.threshold.node)
            }
            OverlayEntry::Rule(r) => Address::Rule(r.name.name.clone()),
            OverlayEntry::Approval(a) => Address::Approval(a.stage.name.clone()),
            OverlayEntry::ApprovalEntry { stage, entry, .. } => {
                Address::ApprovalEntry(stage.name.clone(), ApprovalKey::of(entry))
            }
            OverlayEntry::Named(n) => match n {
                EntryRef::Field(i) => Address::Field(i.name.clone()),
                EntryRef::Stage(i) => Address::Stage(i.name.clone()),
                EntryRef::Transition(i) => Address::Transition(i.name.clone()),
                EntryRef::Target(i) => Address::Target(i.name.clone()),
                EntryRef::Priority(keys, _) => Address::Priority(names(keys)),
                EntryRef::Route(name, _) => Address::Route(name.as_ref().map(|n| n.name.clone())),
                EntryRef::Escalation { clock, threshold } => {
                    Address::Escalation(clock.node, threshold.node)
                }
                EntryRef::Rule(i) => Address::Rule(i.name.clone()),
                EntryRef::Approval(stage) => Address::Approval(stage.name.clone()),
                EntryRef::ApprovalEntry { stage, key, .. } => {
                    Address::ApprovalEntry(stage.name.clone(), key.clone())
                }
            },
        }
    }

    /// As a tailoring writes the entry's head: `target P1`, `escalation on resolve at 90%`.
    pub(super) fn describe_plain(&self) -> String {
        match self {
            Address::Field(n) => format!("field {n}"),
            Address::Stage(n) => format!("stage {n}"),
            Address::Transition(n) => format!("transition {n}"),
            Address::Target(n) => format!("target {n}"),
            Address::TargetsCalendar => "targets on".to_string(),
            Address::PriorityTable => "priority from".to_string(),
            Address::Priority(keys) => format!("priority {}", keys.join(", ")),
            Address::Priorities => "priorities".to_string(),
            Address::Route(Some(n)) => format!("route {n}"),
            Address::Route(None) => "route otherwise".to_string(),
            Address::Escalation(clock, t) => {
                format!("escalation on {clock} at {}", threshold_text(*t))
            }
            Address::Rule(n) => format!("rule {n}"),
            Address::Approval(stage) => format!("approval in {stage}"),
            Address::ApprovalEntry(stage, key) => format!("approval in {stage} {}", key.text()),
        }
    }

    pub(super) fn describe(&self) -> String {
        match self {
            Address::Field(n) => format!("field `{n}`"),
            Address::Stage(n) => format!("stage `{n}`"),
            Address::Transition(n) => format!("transition `{n}`"),
            Address::Target(n) => format!("target `{n}`"),
            Address::TargetsCalendar => "targets calendar".to_string(),
            Address::PriorityTable => "priority table".to_string(),
            Address::Priority(keys) => format!("priority table entry `{}`", keys.join(", ")),
            Address::Priorities => "priority levels".to_string(),
            Address::Route(Some(n)) => format!("route `{n}`"),
            Address::Route(None) => "route `otherwise`".to_string(),
            Address::Escalation(clock, t) => {
                format!("escalation step `{clock} at {}`", threshold_text(*t))
            }
            Address::Rule(n) => format!("rule `{n}`"),
            Address::Approval(stage) => format!("approval in `{stage}`"),
            Address::ApprovalEntry(stage, key) => {
                format!("`{}` of the approval in `{stage}`", key.text())
            }
        }
    }

    /// Where the entry is in `p`, if it is.
    pub(super) fn find(&self, p: &Process) -> Option<Place> {
        for (i, m) in p.members.iter().enumerate() {
            let inner = match (self, m) {
                (Address::Field(n), Member::Fields(f)) => {
                    f.fields.iter().position(|x| x.name.name == *n)
                }
                (Address::Stage(n), Member::Stage(s)) if s.name.name == *n => {
                    return Some((i, None))
                }
                (Address::Transition(n), Member::Transition(t)) if t.name.name == *n => {
                    return Some((i, None))
                }
                (Address::Target(n), Member::Targets(t)) => {
                    t.rows.iter().position(|r| r.priority.name == *n)
                }
                (Address::TargetsCalendar, Member::Targets(t)) if t.calendar.is_some() => {
                    return Some((i, None))
                }
                (Address::PriorityTable, Member::PriorityTable(_)) => return Some((i, None)),
                (Address::Priority(keys), Member::PriorityTable(t)) => {
                    t.rows
                        .iter()
                        .position(|r| names(&r.keys) == *keys)
                        .or_else(|| {
                            // A cell of a full row: every key but the last names the row.
                            let (_, row_keys) = keys.split_last()?;
                            (keys.len() == t.fields.len())
                                .then(|| t.rows.iter().position(|r| names(&r.keys) == *row_keys))
                                .flatten()
                        })
                }
                (Address::Priorities, Member::Priorities(_)) => return Some((i, None)),
                (Address::Route(name), Member::Routing(r)) => {
                    r.rules.iter().position(|rule| match name {
                        Some(n) => rule.name.as_ref().is_some_and(|x| x.name == *n),
                        None => rule.condition.is_none(),
                    })
                }
                (Address::Escalation(clock, t), Member::Escalation(e))
                    if e.clock.node == *clock =>
                {
                    e.steps.iter().position(|s| s.threshold.node == *t)
                }
                (Address::Rule(n), Member::Rule(r)) if r.name.name == *n => return Some((i, None)),
                (Address::Approval(st), Member::Approval(a)) if a.stage.name == *st => {
                    return Some((i, None))
                }
                (Address::ApprovalEntry(st, key), Member::Approval(a)) if a.stage.name == *st => {
                    a.entries.iter().position(|e| ApprovalKey::of(e) == *key)
                }
                _ => None,
            };
            if let Some(j) = inner {
                return Some((i, Some(j)));
            }
        }
        None
    }
}

pub(super) fn names(ids: &[Ident]) -> Vec<String> {
    ids.iter().map(|i| i.name.clone()).collect()
}

fn threshold_text(t: Threshold) -> String {
    match t {
        Threshold::Percent(n) => format!("{n}%"),
        Threshold::After(d) => d.to_string(),
    }
}

/// The span of the entry at `at`, for a second label.
fn span_at(p: &Process, (i, j): Place) -> Span {
    let member = &p.members[i];
    match (member, j) {
        (Member::Fields(f), Some(j)) => f.fields[j].span,
        (Member::Targets(t), Some(j)) => t.rows[j].span,
        (Member::PriorityTable(t), Some(j)) => t.rows[j].span,
        (Member::Routing(r), Some(j)) => r.rules[j].span,
        (Member::Escalation(e), Some(j)) => e.steps[j].span,
        (Member::Approval(a), Some(j)) => a.entries[j].span(),
        (m, _) => m.span(),
    }
}

fn exists(o: &Overlay, address: &Address, base: Span) -> Box<Diagnostic> {
    let what = address.describe();
    Box::new(
        Diagnostic::error(
            "overlay-exists",
            o.span,
            format!("cannot add {what}: the process already has it"),
        )
        .with_label("added here")
        .with_secondary(base, "it is here")
        .with_help("write `replace` to change it, or give the new one another name"),
    )
}

fn missing(o: &Overlay, address: &Address, p: &Process) -> Box<Diagnostic> {
    let what = address.describe();
    let verb = o.verb.node.as_str();
    let (code, message) = match o.verb.node {
        Verb::Require => (
            "overlay-required-missing",
            format!(
                "the tailoring requires {what}, which `{}` does not have",
                p.name
            ),
        ),
        _ => (
            "overlay-missing",
            format!("cannot {verb} {what}: `{}` has no such entry", p.name),
        ),
    };
    let mut d = Diagnostic::error(code, o.span, message).with_label(format!("{verb} here"));
    let candidates = entry_names(p, address);
    let wanted = match address {
        Address::Field(n)
        | Address::Stage(n)
        | Address::Transition(n)
        | Address::Target(n)
        | Address::Rule(n)
        | Address::Route(Some(n))
        | Address::ApprovalEntry(_, ApprovalKey::Rule(Some(n))) => Some(n.as_str()),
        _ => None,
    };
    if let Some(close) = wanted.and_then(|w| did_you_mean(w, candidates.iter().map(String::as_str)))
    {
        d = d.with_help(format!("did you mean `{close}`?"));
    } else if o.verb.node == Verb::Replace {
        d = d.with_help("write `add` for an entry the base does not have");
    }
    Box::new(d)
}

/// The names of the entries of the address's kind, for a did-you-mean.
fn entry_names(p: &Process, address: &Address) -> Vec<String> {
    let mut out = Vec::new();
    for m in &p.members {
        match (address, m) {
            (Address::Field(_), Member::Fields(f)) => {
                out.extend(f.fields.iter().map(|x| x.name.name.clone()))
            }
            (Address::Stage(_), Member::Stage(s)) => out.push(s.name.name.clone()),
            (Address::Transition(_), Member::Transition(t)) => out.push(t.name.name.clone()),
            (Address::Target(_), Member::Targets(t)) => {
                out.extend(t.rows.iter().map(|r| r.priority.name.clone()))
            }
            (Address::Rule(_), Member::Rule(r)) => out.push(r.name.name.clone()),
            (Address::Route(_), Member::Routing(r)) => out.extend(
                r.rules
                    .iter()
                    .filter_map(|x| x.name.as_ref().map(|n| n.name.clone())),
            ),
            _ => {}
        }
    }
    out
}

fn remove(p: &mut Process, (i, j): Place, o: &Overlay) -> Applying {
    match (&mut p.members[i], j) {
        (Member::Fields(f), Some(j)) => {
            f.fields.remove(j);
        }
        (Member::Targets(t), Some(j)) => {
            t.rows.remove(j);
        }
        (Member::PriorityTable(t), Some(j)) => {
            if let OverlayEntry::Named(EntryRef::Priority(keys, _)) = &o.entry {
                if names(&t.rows[j].keys) != names(keys) {
                    return Err(Box::new(
                        Diagnostic::error(
                            "overlay-cell-removed",
                            o.span,
                            "a cell of a full priority row cannot be removed",
                        )
                        .with_secondary(t.rows[j].span, "the row it is in")
                        .with_help("replace the cell, or remove the whole row"),
                    ));
                }
            }
            t.rows.remove(j);
        }
        (Member::Routing(r), Some(j)) => {
            r.rules.remove(j);
        }
        (Member::Escalation(e), Some(j)) => {
            e.steps.remove(j);
        }
        (Member::Approval(a), Some(j)) => {
            a.entries.remove(j);
        }
        _ => {
            p.members.remove(i);
        }
    }
    Ok(())
}

fn replace(p: &mut Process, (i, j): Place, o: &Overlay) -> Applying {
    let fields = p.members.clone();
    match (&mut p.members[i], j, &o.entry) {
        (Member::Fields(f), Some(j), OverlayEntry::Field(x)) => f.fields[j] = x.clone(),
        (Member::Stage(s), _, OverlayEntry::Stage(x)) => *s = x.clone(),
        (Member::Transition(t), _, OverlayEntry::Transition(x)) => *t = x.clone(),
        (Member::Targets(t), Some(j), OverlayEntry::Target(x)) => t.rows[j] = x.clone(),
        (Member::Targets(t), _, OverlayEntry::TargetsCalendar(c)) => t.calendar = Some(c.clone()),
        (Member::PriorityTable(t), _, OverlayEntry::PriorityTable(x)) => *t = x.clone(),
        (Member::PriorityTable(t), Some(j), OverlayEntry::PriorityRow(x)) => {
            if names(&t.rows[j].keys) == names(&x.keys) {
                t.rows[j] = x.clone();
            } else {
                // One cell of a full row: its place is the last key's among the last field's
                // values, in their declared order.
                let cell = cell_index(&fields, t, x).ok_or_else(|| {
                    Box::new(
                        Diagnostic::error(
                            "overlay-cell-unknown",
                            o.span,
                            "this cell's last key is not a value of the table's last field",
                        )
                        .with_secondary(t.rows[j].span, "the row it would be in"),
                    )
                })?;
                match (t.rows[j].cells.get_mut(cell), x.cells.first()) {
                    (Some(slot), Some(value)) if x.cells.len() == 1 => *slot = value.clone(),
                    _ => {
                        return Err(Box::new(
                            Diagnostic::error(
                                "overlay-cell-unknown",
                                o.span,
                                "a cell is replaced by exactly one priority",
                            )
                            .with_secondary(t.rows[j].span, "the row it is in"),
                        ))
                    }
                }
            }
        }
        (Member::Priorities(x), _, OverlayEntry::Priorities(y)) => *x = y.clone(),
        (Member::Routing(r), Some(j), OverlayEntry::Route { rule, place }) => {
            if let Some(place) = place {
                return Err(Box::new(
                    Diagnostic::error(
                        "overlay-place-on-replace",
                        place.span,
                        "a replaced route keeps its place",
                    )
                    .with_help("remove the route and add it where it should go"),
                ));
            }
            r.rules[j] = rule.clone();
        }
        (Member::Escalation(e), Some(j), OverlayEntry::Escalation { step, .. }) => {
            e.steps[j] = step.clone()
        }
        (Member::Rule(r), _, OverlayEntry::Rule(x)) => *r = x.clone(),
        (Member::Approval(a), None, OverlayEntry::Approval(x)) => *a = x.clone(),
        (Member::Approval(a), Some(j), OverlayEntry::ApprovalEntry { entry, place, .. }) => {
            if let Some(place) = place {
                return Err(Box::new(
                    Diagnostic::error(
                        "overlay-place-on-replace",
                        place.span,
                        "a replaced approval rule keeps its place",
                    )
                    .with_help("remove the rule and add it where it should go"),
                ));
            }
            a.entries[j] = entry.clone();
        }
        _ => {
            return Err(Box::new(Diagnostic::error(
                "overlay-missing",
                o.span,
                "nothing of this kind to replace here",
            )))
        }
    }
    Ok(())
}

/// The index of a cell `keys` (every field's value) in a full row of `table`: the last key's
/// position among the last field's declared values.
pub(super) fn cell_index(
    members: &[Member],
    table: &ast::PriorityTable,
    cell: &ast::PriorityRow,
) -> Option<usize> {
    let last_field = table.fields.last()?;
    let last_key = cell.keys.last()?;
    members
        .iter()
        .find_map(|m| match m {
            Member::Fields(f) => f.fields.iter().find(|x| x.name.name == last_field.name),
            _ => None,
        })
        .and_then(|field| match &field.ty {
            ast::FieldType::Enum(values, _) => values.iter().position(|v| v.name == last_key.name),
            _ => None,
        })
}

fn add(p: &mut Process, o: &Overlay) -> Applying {
    match &o.entry {
        OverlayEntry::Field(f) => {
            match p.members.iter_mut().find_map(|m| match m {
                Member::Fields(x) => Some(x),
                _ => None,
            }) {
                Some(block) => block.fields.push(f.clone()),
                None => p.members.insert(
                    0,
                    Member::Fields(ast::Fields {
                        fields: vec![f.clone()],
                        span: o.span,
                    }),
                ),
            }
        }
        OverlayEntry::Stage(s) => insert_after_last(p, Member::Stage(s.clone()), |m| {
            matches!(m, Member::Stage(_))
        }),
        OverlayEntry::Transition(t) => insert_after_last(p, Member::Transition(t.clone()), |m| {
            matches!(m, Member::Transition(_) | Member::Stage(_))
        }),
        OverlayEntry::Rule(r) => p.members.push(Member::Rule(r.clone())),
        OverlayEntry::Approval(a) => insert_after_last(p, Member::Approval(a.clone()), |m| {
            matches!(m, Member::Approval(_))
        }),
        OverlayEntry::ApprovalEntry {
            stage,
            entry,
            place,
        } => add_approval_entry(p, stage, entry, place.as_ref(), o)?,
        OverlayEntry::Target(row) => match targets_block(p) {
            Some(t) => t.rows.push(row.clone()),
            None => p.members.push(Member::Targets(ast::Targets {
                calendar: None,
                rows: vec![row.clone()],
                span: o.span,
            })),
        },
        OverlayEntry::TargetsCalendar(c) => match targets_block(p) {
            Some(t) => t.calendar = Some(c.clone()),
            None => p.members.push(Member::Targets(ast::Targets {
                calendar: Some(c.clone()),
                rows: Vec::new(),
                span: o.span,
            })),
        },
        OverlayEntry::PriorityTable(t) => p.members.push(Member::PriorityTable(t.clone())),
        OverlayEntry::Priorities(x) => p.members.insert(0, Member::Priorities(x.clone())),
        OverlayEntry::PriorityRow(row) => {
            match p.members.iter_mut().find_map(|m| match m {
                Member::PriorityTable(t) => Some(t),
                _ => None,
            }) {
                Some(t) => t.rows.push(row.clone()),
                None => {
                    return Err(Box::new(
                        Diagnostic::error(
                            "overlay-missing",
                            o.span,
                            format!("`{}` has no priority table to add a row to", p.name),
                        )
                        .with_help("add a whole table: `add priority from a, b { ... }`"),
                    ))
                }
            }
        }
        OverlayEntry::Route { rule, place } => add_route(p, rule, place.as_ref(), o)?,
        OverlayEntry::Escalation { clock, step } => {
            let block = p.members.iter_mut().find_map(|m| match m {
                Member::Escalation(e) if e.clock.node == clock.node => Some(e),
                _ => None,
            });
            match block {
                Some(e) => {
                    // In threshold order where the two are comparable, as a reader expects.
                    let at = e
                        .steps
                        .iter()
                        .position(|s| later(s.threshold.node, step.threshold.node))
                        .unwrap_or(e.steps.len());
                    e.steps.insert(at, step.clone());
                }
                None => p.members.push(Member::Escalation(ast::Escalation {
                    clock: clock.clone(),
                    steps: vec![step.clone()],
                    span: o.span,
                })),
            }
        }
        OverlayEntry::Named(_) => {
            return Err(Box::new(Diagnostic::error(
                "overlay-missing",
                o.span,
                "`add` writes the entry out in full",
            )))
        }
    }
    Ok(())
}

/// Whether `a` comes after `b` on the same clock (only thresholds of one kind compare).
fn later(a: Threshold, b: Threshold) -> bool {
    match (a, b) {
        (Threshold::Percent(x), Threshold::Percent(y)) => x > y,
        (Threshold::After(x), Threshold::After(y)) => x.days_and_seconds() > y.days_and_seconds(),
        _ => false,
    }
}

fn targets_block(p: &mut Process) -> Option<&mut ast::Targets> {
    p.members.iter_mut().find_map(|m| match m {
        Member::Targets(t) => Some(t),
        _ => None,
    })
}

/// Put `member` after the last member `like` matches (or at the end), so a reader finds it
/// among its kind.
fn insert_after_last(p: &mut Process, member: Member, like: impl Fn(&Member) -> bool) {
    let at = p
        .members
        .iter()
        .rposition(like)
        .map(|i| i + 1)
        .unwrap_or(p.members.len());
    p.members.insert(at, member);
}

fn add_route(
    p: &mut Process,
    rule: &ast::RouteRule,
    place: Option<&ast::RoutePlace>,
    o: &Overlay,
) -> Applying {
    let routing = p.members.iter_mut().find_map(|m| match m {
        Member::Routing(r) => Some(r),
        _ => None,
    });
    let Some(routing) = routing else {
        p.members.push(Member::Routing(ast::Routing {
            rules: vec![rule.clone()],
            span: o.span,
        }));
        return Ok(());
    };
    let at = match place {
        Some(place) => {
            let anchor = routing.rules.iter().position(|r| {
                r.name.as_ref().is_some_and(|n| n.name == place.anchor.name)
                    || (place.anchor.name == "otherwise" && r.condition.is_none())
            });
            let Some(anchor) = anchor else {
                let mut d = Diagnostic::error(
                    "unknown-anchor",
                    place.anchor.span,
                    format!("no route `{}` to place this one by", place.anchor),
                )
                .with_label("not a route of the process");
                let known: Vec<&str> = routing
                    .rules
                    .iter()
                    .filter_map(|r| r.name.as_ref().map(|n| n.as_str()))
                    .collect();
                if let Some(close) = did_you_mean(&place.anchor.name, known.into_iter()) {
                    d = d.with_help(format!("did you mean `{close}`?"));
                }
                return Err(Box::new(d));
            };
            if place.before {
                anchor
            } else {
                anchor + 1
            }
        }
        // Before `otherwise`, which must stay last.
        None => routing
            .rules
            .iter()
            .position(|r| r.condition.is_none())
            .unwrap_or(routing.rules.len()),
    };
    routing.rules.insert(at, rule.clone());
    Ok(())
}

/// Add one entry to a stage's approval: a named rule where placed (by default before
/// `otherwise`, which must stay last), any other entry at the end.
fn add_approval_entry(
    p: &mut Process,
    stage: &Ident,
    entry: &ast::ApprovalEntry,
    place: Option<&ast::RoutePlace>,
    o: &Overlay,
) -> Applying {
    let name = p.name.name.clone();
    let Some(approval) = p.members.iter_mut().find_map(|m| match m {
        Member::Approval(a) if a.stage.name == stage.name => Some(a),
        _ => None,
    }) else {
        return Err(Box::new(
            Diagnostic::error(
                "overlay-missing",
                o.span,
                format!("`{name}` asks no approval in `{stage}` to add to"),
            )
            .with_help(format!(
                "add a whole approval: `add approval in {stage} {{ ... }}`"
            )),
        ));
    };
    let is_rule = |e: &ast::ApprovalEntry| matches!(e, ast::ApprovalEntry::Rule { .. });
    let at = match (place, is_rule(entry)) {
        (Some(place), _) => {
            let anchor = approval.entries.iter().position(|e| match e {
                ast::ApprovalEntry::Rule {
                    name, condition, ..
                } => {
                    name.as_ref().is_some_and(|n| n.name == place.anchor.name)
                        || (place.anchor.name == "otherwise" && condition.is_none())
                }
                _ => false,
            });
            let Some(anchor) = anchor else {
                return Err(Box::new(
                    Diagnostic::error(
                        "unknown-anchor",
                        place.anchor.span,
                        format!("no approval rule `{}` to place this one by", place.anchor),
                    )
                    .with_label(format!("not a rule of the approval in `{stage}`")),
                ));
            };
            if place.before {
                anchor
            } else {
                anchor + 1
            }
        }
        (None, true) => approval
            .entries
            .iter()
            .position(|e| {
                matches!(
                    e,
                    ast::ApprovalEntry::Rule {
                        condition: None,
                        ..
                    }
                )
            })
            .unwrap_or_else(|| {
                approval
                    .entries
                    .iter()
                    .rposition(is_rule)
                    .map_or(0, |i| i + 1)
            }),
        (None, false) => approval.entries.len(),
    };
    approval.entries.insert(at, entry.clone());
    Ok(())
}
