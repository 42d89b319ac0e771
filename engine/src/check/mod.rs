//! The checker: syntax trees of a project's files in, a [`Project`] and diagnostics out.
//!
//! It reports every problem in one run: a broken item is skipped, not fatal, and references to
//! names that failed to parse are not reported again as unknown. A [`Project`] is produced only
//! when there are no errors (warnings do not block). Checking is linear in the size of the
//! input: name tables are hash maps and graph checks are breadth-first searches.

mod approval;
mod calendar;
mod condition;
mod coverage;
mod escalation;
mod flow;
mod links;
pub(crate) mod names;
mod notices;
mod ola;
mod people;
mod process;
mod process_tests;
mod queues;
pub mod rebase;
mod rebase_calendar;
mod rebase_queue;
mod rhai_types;
mod rules;
mod services;
pub mod tailor;
mod tailor_calendar;
mod tailor_queue;
pub mod tailor_rename;
mod values;

#[cfg(test)]
mod test_support;

use std::collections::HashSet;

use itsmflow_dsl::ast::{self, Ident, Item};
use itsmflow_dsl::{diagnostic, parse, Diagnostic, Sources};

use crate::model::{
    CalendarId, CalendarRef, Field, FieldId, FieldType, Process, Project, QueueId, RoleId,
    SpawnField, SpawnValue,
};
use names::Names;

pub use tailor::ClientChoice;
pub use values::parse_datetime;

/// The outcome of checking a project.
#[derive(Debug)]
pub struct Checked {
    /// Present when there are no errors.
    pub project: Option<Project>,
    /// Errors and warnings, sorted by file and position.
    pub diagnostics: Vec<Diagnostic>,
}

impl Checked {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Errors of checks added after definitions may have been published with what they refuse:
/// rules typed at check time (rules that could fail at run time), and link kinds a `spawns`
/// must declare (before, any name was a link kind). A definition published before is still
/// loaded with them (see [`check_published`]); a new publish is refused.
const STRICTER_SINCE_PUBLISHED: &[&str] = &[
    "rule-unknown-method",
    "rule-unknown-value",
    "rule-type-mismatch",
    "rule-maybe-unset",
    "rule-not-bool",
    "rule-computes-wrong-type",
    "rule-assigns-constant",
    "unknown-link",
    "spawn-link-mismatch",
];

thread_local! {
    /// Set while [`check_published`] runs: the errors in [`STRICTER_SINCE_PUBLISHED`] do not
    /// keep a process out of the project.
    static PUBLISHED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether a diagnostic keeps a process (and so the project) from checking.
pub(super) fn blocks(d: &Diagnostic) -> bool {
    d.is_error() && !(PUBLISHED.with(|p| p.get()) && STRICTER_SINCE_PUBLISHED.contains(&d.code))
}

/// Check a project that was published before (to load it again at start): as [`check`],
/// except that errors of checks added since ([`STRICTER_SINCE_PUBLISHED`]) are kept as
/// diagnostics but do not refuse it, so a database written by an earlier version opens and its
/// tickets run on as they did. A project with any other error is still refused.
pub fn check_published(sources: &Sources) -> Checked {
    PUBLISHED.with(|p| p.set(true));
    let checked = check(sources);
    PUBLISHED.with(|p| p.set(false));
    checked
}

/// Parse and check every file of a project, for the one client its tailorings name (see
/// [`tailor`]).
pub fn check(sources: &Sources) -> Checked {
    check_for(sources, ClientChoice::Auto)
}

/// Parse and check every file of a project, with `client`'s tailorings applied.
pub fn check_for(sources: &Sources, client: ClientChoice<'_>) -> Checked {
    let mut diagnostics = Vec::new();
    let mut files = Vec::with_capacity(sources.len());
    let mut broken = HashSet::new();
    let mut broken_words = HashSet::new();
    for (id, file) in sources.iter() {
        let parsed = parse(id, &file.text);
        diagnostics.extend(parsed.diagnostics);
        broken.extend(parsed.broken_items);
        broken_words.extend(parsed.broken_words);
        files.push(parsed.file);
    }
    let renames = tailor::queue_renames(&files, client);
    let (files, applied) = tailor::effective(&files, client, &mut diagnostics);
    let mut ctx = Ctx::new(broken, diagnostics);
    ctx.broken_words = broken_words;
    let mut checked = check_with(&files, ctx);
    tailor::point_at_tailorings(&mut checked.diagnostics, &applied);
    tailor_rename::explain_old_names(&mut checked.diagnostics, &renames);
    checked
}

/// The syntax trees of a project's files, and their syntax errors.
pub fn parse_files(sources: &Sources) -> (Vec<ast::File>, Vec<Diagnostic>) {
    let mut diagnostics = Vec::new();
    let files = sources
        .iter()
        .map(|(id, file)| {
            let parsed = parse(id, &file.text);
            diagnostics.extend(parsed.diagnostics);
            parsed.file
        })
        .collect();
    (files, diagnostics)
}

/// The queues a project's chosen client renames (`rename to NAME` in a queue's tailoring).
pub fn queue_renames(sources: &Sources, client: ClientChoice<'_>) -> Vec<tailor_rename::Rename> {
    tailor::queue_renames(&parse_files(sources).0, client)
}

/// The clients a project's tailorings name, in order of name.
pub fn clients(sources: &Sources) -> Vec<String> {
    tailor::clients(&parse_files(sources).0)
}

/// Check a project for every client it tailors for, and as the standard processes: the
/// diagnostics of all, each once. What a consultant's repository of several clients runs in
/// CI; a project to publish is checked for one client ([`check_for`]).
pub fn check_every_client(sources: &Sources) -> Vec<Diagnostic> {
    let base = check_for(sources, ClientChoice::Base).diagnostics;
    let mut all = base.clone();
    let files = parse_files(sources).0;
    for client in tailor::clients(&files) {
        let header = tailor::first_header(&files, &client);
        let checked = check_for(sources, ClientChoice::Named(&client)).diagnostics;
        for mut d in checked.iter().cloned() {
            // A declaration is unused only if every variant leaves it unused.
            if all.iter().any(|seen| same(seen, &d)) || d.code == "unused-declaration" {
                continue;
            }
            // Not a problem of the standard processes: the client's tailoring causes it,
            // wherever it shows (a process that spawns the tailored one, say).
            let label = format!("found with client `{client}`'s tailoring");
            // (A problem in the client's own files is plainly theirs: no label needed.)
            if let Some(header) = header.filter(|h| h.file != d.span.file) {
                // Unless it points into the client's files already (at the tailoring that
                // caused it).
                if !d.secondary.iter().any(|(s, _)| s.file == header.file) {
                    d = d.with_secondary(header, label);
                }
            }
            all.push(d);
        }
        // A declaration is unused only if no variant uses it: a client's own calendar is
        // unused by the standard processes, and used by the client's.
        all.retain(|d| d.code != "unused-declaration" || checked.iter().any(|c| same(c, d)));
    }
    diagnostic::sort(&mut all);
    all
}

/// The same problem found in two checks (of two clients, say).
fn same(a: &Diagnostic, b: &Diagnostic) -> bool {
    a.code == b.code
        && a.message == b.message
        && a.span.file == b.span.file
        && a.span.start == b.span.start
        && a.span.end == b.span.end
}

/// The files of a project as they run for `client`: its tailorings applied, each tailored
/// process in place of its base. Problems applying them are added to `diagnostics`.
pub fn effective_files(
    sources: &Sources,
    client: ClientChoice<'_>,
    diagnostics: &mut Vec<Diagnostic>,
) -> Vec<ast::File> {
    let (files, syntax) = parse_files(sources);
    diagnostics.extend(syntax);
    tailor::effective(&files, client, diagnostics).0
}

/// Check already parsed files. `broken` names items that failed to parse.
pub fn check_files(
    files: &[ast::File],
    broken: HashSet<String>,
    diagnostics: Vec<Diagnostic>,
) -> Checked {
    check_with(files, Ctx::new(broken, diagnostics))
}

fn check_with(files: &[ast::File], mut ctx: Ctx) -> Checked {
    let items: Vec<&Item> = files.iter().flat_map(|f| &f.items).collect();

    // Declare every project-level name first, so files and items may refer to each other in
    // any order.
    for item in &items {
        let names = match item {
            Item::Calendar(_) => &mut ctx.calendars,
            Item::Queue(_) => &mut ctx.queues,
            // Tiers are numbers, not names: `ola::check_tiers` reports one declared twice.
            Item::Tier(_) => continue,
            Item::Role(_) => &mut ctx.roles,
            Item::Service(_) => &mut ctx.services,
            Item::Process(p) if p.tailoring.is_some() => continue,
            Item::Process(_) => &mut ctx.processes,
            // Tests are checked against the finished project (process_tests.rs), and their names are
            // free text: two tests may not share one, which that check reports.
            Item::Test(_) => continue,
        };
        names.declare(item.name(), &mut ctx.diags);
    }
    // Catalogue items are addressed by name alone, so their names are the project's too.
    let service_items: Vec<&ast::Service> = items
        .iter()
        .filter_map(|item| match item {
            Item::Service(s) if !ctx.is_redeclared(&ctx.services, &s.name) => Some(s),
            _ => None,
        })
        .collect();
    services::declare_items(&service_items, &mut ctx);
    ctx.used_calendars = vec![false; ctx.calendars.len()];
    ctx.used_roles = vec![false; ctx.roles.len()];
    ctx.used_queues = vec![false; ctx.queues.len()];

    let mut calendars = Vec::new();
    let mut roles = Vec::new();
    let mut queue_items = Vec::new();
    let mut tier_items = Vec::new();
    for item in &items {
        match item {
            Item::Calendar(c) if !ctx.is_redeclared(&ctx.calendars, &c.name) => {
                calendars.push(calendar::check_calendar(c, &mut ctx.diags))
            }
            Item::Role(r) if !ctx.is_redeclared(&ctx.roles, &r.name) => {
                roles.push(crate::model::Role {
                    name: r.name.name.clone(),
                    label: r.label.as_ref().map(|l| l.node.clone()),
                })
            }
            Item::Queue(q) if !ctx.is_redeclared(&ctx.queues, &q.name) => queue_items.push(q),
            Item::Tier(t) => tier_items.push(t),
            _ => {}
        }
    }
    let mut queues = queues::check_queues(&queue_items, &mut ctx);
    let tiers = ola::check_tiers(&tier_items, &mut ctx);
    let mut ola_spans = std::mem::take(&mut ctx.ola_spans);
    ola::inherit(&tiers, &mut queues, &mut ola_spans, &mut ctx.diags);
    ctx.queue_models = queues.clone();

    let mut processes = Vec::new();
    for item in &items {
        if let Item::Process(p) = item {
            // Tailorings were applied before (see `tailor`); one left is another client's.
            if p.tailoring.is_some() {
                continue;
            }
            if ctx.is_redeclared(&ctx.processes, &p.name) {
                continue;
            }
            if let Some(model) = process::check_process(p, &mut ctx) {
                processes.push(model);
            }
        }
    }

    check_spawns(&ctx.pending_spawns, &mut processes, &mut ctx.diags);
    links::check_across(
        &ctx.signatures,
        &ctx.pending_guards,
        &ctx.pending_effects,
        &mut processes,
        &mut ctx.diags,
    );
    let services = services::check_services(&service_items, &mut processes, &mut ctx);
    ola::check_against_processes(&queues, &ola_spans, &processes, &calendars, &mut ctx.diags);
    // Last, against what checked: a test is not part of the project, and a process with
    // errors of its own is not checked against again.
    process_tests::check_tests(&items, &processes, &services, &mut ctx);
    ctx.report_unused();
    let mut diagnostics = std::mem::take(&mut ctx.diags);
    diagnostic::sort(&mut diagnostics);
    // `Span` equality ignores positions, so compare where each diagnostic is explicitly.
    diagnostics.dedup_by(|a, b| {
        (a.code, &a.message, a.span.file, a.span.start, a.span.end)
            == (b.code, &b.message, b.span.file, b.span.start, b.span.end)
    });
    let has_errors = diagnostics.iter().any(blocks);
    let project = (!has_errors).then_some(Project {
        calendars,
        roles,
        queues,
        processes,
        services,
    });
    Checked {
        project,
        diagnostics,
    }
}

/// Project-wide state of one check run.
pub(crate) struct Ctx {
    pub diags: Vec<Diagnostic>,
    pub calendars: Names,
    pub roles: Names,
    pub queues: Names,
    pub processes: Names,
    /// The catalogue's services, in declaration order: the values of every `service` field.
    pub services: Names,
    /// Catalogue items, across services.
    pub items: Names,
    /// The processes read that have a `service` field, checked or not.
    pub service_processes: Vec<services::ServiceProcess>,
    used_calendars: Vec<bool>,
    used_roles: Vec<bool>,
    used_queues: Vec<bool>,
    /// Names of items that failed to parse: references to them are not reported.
    broken: HashSet<String>,
    /// Names written in items that failed to parse: a declaration of one of them may be used
    /// there, so it is not reported as unused.
    broken_words: HashSet<String>,
    /// The checked queues, for tier checks in escalations.
    pub queue_models: Vec<crate::model::Queue>,
    /// Per queue checked so far: where its own OLA rows were written.
    pub(crate) ola_spans: Vec<Option<ola::OlaSpans>>,
    /// `spawns` clauses, checked once every process is.
    pub pending_spawns: Vec<PendingSpawn>,
    /// What other processes may refer to of each process read, checked or not.
    pub signatures: Vec<links::Signature>,
    /// Transitions' `when` and `then perform` clauses, checked once every process is read.
    pub pending_guards: Vec<links::PendingGuard>,
    pub pending_effects: Vec<links::PendingEffect>,
}

/// A `spawns` clause waiting for its child process to be checked.
pub(crate) struct PendingSpawn {
    pub clause: ast::Span,
    /// The spawning process's name, and the index of the spawning transition in it: where
    /// the fields `with` sets go.
    pub process: String,
    pub transition: usize,
    /// Which of the transition's `spawns` it is.
    pub index: usize,
    /// The spawning transition's name.
    pub parent: String,
    pub child: String,
    /// The spawning process's fields, by [`FieldId`]: name and type.
    pub parent_fields: Vec<(String, FieldType)>,
    /// `with { ... }`, as written.
    pub with: Vec<ast::SpawnEntry>,
}

/// A spawned instance copies its parent's fields by name, then takes the values `with` gives.
/// Every `with` entry names a field of the child and gives it a value of its type (a field of
/// the parent, or a literal); every field the child requires without a default is given,
/// by `with` or by a parent's field of the same name, with the same type. Fills in the
/// spawning transitions' [`Spawn::fields`](crate::model::Spawn::fields).
fn check_spawns(pending: &[PendingSpawn], processes: &mut [Process], diags: &mut Vec<Diagnostic>) {
    spawns_within_cardinality(pending, processes, diags);
    for spawn in pending {
        let Some(child) = processes.iter().find(|p| p.name == spawn.child) else {
            continue; // the child has errors of its own
        };
        let with = With {
            entries: &spawn.with,
            from: Some(&spawn.process),
            from_fields: &spawn.parent_fields,
        };
        let (fields, set) = spawn_with(&with, &child.name, &child.fields, diags);
        for field in &child.fields {
            if set.contains(field.name.as_str()) {
                continue; // `with` gives it, whatever a field of the same name would copy
            }
            match spawn.parent_fields.iter().find(|(n, _)| *n == field.name) {
                Some((_, ty)) if *ty != field.ty => diags.push(
                    Diagnostic::error(
                        "spawn-field-type",
                        spawn.clause,
                        format!(
                            "`{}` is {ty} here but {} in `{}`",
                            field.name, field.ty, child.name
                        ),
                    )
                    .with_label(format!("`{}` copies fields by name", spawn.parent))
                    .with_help(format!(
                        "give the two fields the same type, or set `{}` with `with {{ {}: ... }}`",
                        field.name, field.name
                    )),
                ),
                None if field.required && field.default.is_none() => diags.push(
                    Diagnostic::error(
                        "spawn-missing-field",
                        spawn.clause,
                        if spawn.with.is_empty() {
                            format!(
                                "`{}` requires `{}`, which this process does not have",
                                child.name, field.name
                            )
                        } else {
                            format!(
                                "`{}` requires `{}`, which `with` does not set and this process does not have",
                                child.name, field.name
                            )
                        },
                    )
                    .with_label("the spawned instance could not be created")
                    .with_help(format!(
                        "set it with `with {{ {}: ... }}`, add a field `{}` here, or give it a default in `{}`",
                        field.name, field.name, child.name
                    )),
                ),
                _ => {}
            }
        }
        if let Some(t) = processes
            .iter_mut()
            .find(|p| p.name == spawn.process)
            .and_then(|p| p.transitions.get_mut(spawn.transition))
            .and_then(|t| t.spawns.get_mut(spawn.index))
        {
            t.fields = fields;
        }
    }
}

/// Several `spawns` of one transition through a link kind that links to one ticket would give
/// the ticket a second: refused where written.
fn spawns_within_cardinality(
    pending: &[PendingSpawn],
    processes: &[Process],
    diags: &mut Vec<Diagnostic>,
) {
    for (i, spawn) in pending.iter().enumerate() {
        let Some(p) = processes.iter().find(|p| p.name == spawn.process) else {
            continue;
        };
        let link_of = |s: &PendingSpawn| {
            p.transitions
                .get(s.transition)
                .and_then(|t| t.spawns.get(s.index))
                .map(|s| s.link.as_str())
        };
        let Some(link) = link_of(spawn) else { continue };
        let one = p
            .link(link)
            .is_some_and(|l| p.links[l.index()].cardinality == crate::model::Cardinality::One);
        let first = pending[..i].iter().find(|s| {
            s.process == spawn.process
                && s.transition == spawn.transition
                && link_of(s) == Some(link)
        });
        if let (true, Some(first)) = (one, first) {
            diags.push(
                Diagnostic::error(
                    "spawn-cardinality",
                    spawn.clause,
                    format!("`{link}` links to one ticket, and this transition spawns a second"),
                )
                .with_label("a second ticket through the same link")
                .with_secondary(first.clause, "the first")
                .with_help(format!(
                    "declare `{link}: many {}` to start several, or spawn one",
                    spawn.child
                )),
            );
        }
    }
}

/// `with { ... }`, of `spawns` or `then perform`, as written, and the process it takes its
/// values from.
pub(crate) struct With<'a> {
    pub entries: &'a [ast::SpawnEntry],
    /// The process whose transition it is; `None` for a catalogue item's presets, which have
    /// no ticket to read fields from (a bare name is then always a value).
    pub from: Option<&'a str>,
    /// That process's fields, by [`FieldId`]: name and type.
    pub from_fields: &'a [(String, FieldType)],
}

/// The entries of `with { ... }`, checked against the fields of the process they set (the
/// child's, or the linked ticket's): what they set, and the names of its fields they name (also
/// those whose value is wrong, so that a wrong value is not reported again as a missing field).
fn spawn_with<'c>(
    with: &With,
    child: &str,
    child_fields: &'c [Field],
    diags: &mut Vec<Diagnostic>,
) -> (Vec<SpawnField>, HashSet<&'c str>) {
    let mut fields = Vec::with_capacity(with.entries.len());
    let mut set: HashSet<&str> = HashSet::new();
    for (i, entry) in with.entries.iter().enumerate() {
        let Some(target) = child_fields.iter().find(|f| f.name == entry.field.name) else {
            diags.push(unknown_child_field(&entry.field, child, child_fields));
            continue;
        };
        if let Some(first) = with.entries[..i]
            .iter()
            .find(|e| e.field.name == entry.field.name)
        {
            diags.push(
                Diagnostic::error(
                    "duplicate-definition",
                    entry.field.span,
                    format!("`with` sets `{}` twice", entry.field.name),
                )
                .with_label("set again here")
                .with_secondary(first.field.span, "first set here")
                .with_help("remove one of them"),
            );
            continue;
        }
        set.insert(target.name.as_str());
        if let Some(value) = spawn_value(with, child, target, &entry.value, diags) {
            fields.push(SpawnField {
                name: target.name.clone(),
                value,
            });
        }
    }
    (fields, set)
}

/// `with { name: ... }` names a field the child does not have.
fn unknown_child_field(ident: &Ident, child: &str, fields: &[Field]) -> Diagnostic {
    let d = Diagnostic::error(
        "unknown-field",
        ident.span,
        format!("`{child}` has no field `{}`", ident.name),
    )
    .with_label(format!("not a field of `{child}`"));
    let names = fields.iter().map(|f| f.name.as_str());
    match names::did_you_mean(&ident.name, names.clone()) {
        Some(s) => d.with_help(format!("did you mean `{s}`?")),
        None if fields.is_empty() => d.with_help(format!("`{child}` has no fields to set")),
        None => d.with_help(format!(
            "the fields of `{child}` are: {}",
            names.collect::<Vec<_>>().join(", ")
        )),
    }
}

/// The value of one `with` entry for the child's field `target`: a field of the parent (a bare
/// name the parent has a field of), else a literal typed as `target`.
fn spawn_value(
    spawn: &With,
    child: &str,
    target: &Field,
    value: &ast::Literal,
    diags: &mut Vec<Diagnostic>,
) -> Option<SpawnValue> {
    let bare = match &value.kind {
        ast::LiteralKind::Symbol(s) => Some(s.as_str()),
        _ => None,
    };
    if let Some(name) = bare {
        if let Some(i) = spawn.from_fields.iter().position(|(n, _)| n == name) {
            let ty = &spawn.from_fields[i].1;
            if *ty != target.ty {
                diags.push(
                    Diagnostic::error(
                        "spawn-field-type",
                        value.span,
                        format!(
                            "`{name}` is {ty} here but `{}` is {} in `{child}`",
                            target.name, target.ty
                        ),
                    )
                    .with_label(format!("`{}` takes {}", target.name, target.ty))
                    .with_help("name a field of that type here, or write a value"),
                );
                return None;
            }
            return Some(SpawnValue::Parent(FieldId(i as u32)));
        }
    }
    match values::typed_value(&target.name, &target.ty, value) {
        Ok(v) => Some(SpawnValue::Literal(v)),
        Err(d) => {
            let name =
                bare.filter(|s| s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_'));
            let d = match (name, spawn.from) {
                (Some(name), Some(from)) => misnamed_field(spawn, from, target, name, *d),
                _ => *d,
            };
            values::push_value_error(diags, value, d);
            None
        }
    }
}

/// A bare name in `with` that is not a field of the spawning process, nor a value of `target`
/// (`typed` says why). Where `target`'s type has no bare values (all but enum and bool), it can
/// only have meant a field of the spawning process: `unknown-field`. Otherwise it stays the
/// value error, with a hint at a field of a close name.
fn misnamed_field(
    spawn: &With,
    from: &str,
    target: &Field,
    name: &str,
    typed: Diagnostic,
) -> Diagnostic {
    let fields = spawn.from_fields.iter().map(|(n, _)| n.as_str());
    let close = names::did_you_mean(name, fields);
    if matches!(target.ty, FieldType::Enum(_) | FieldType::Bool) {
        let has_guess = typed
            .help
            .as_deref()
            .is_some_and(|h| h.starts_with("did you mean"));
        return match close {
            Some(f) if !has_guess => {
                typed.with_help(format!("did you mean `{f}`, a field of `{from}`?"))
            }
            _ => typed,
        };
    }
    let d = Diagnostic::error(
        "unknown-field",
        typed.span,
        format!("`{from}` has no field `{name}`"),
    )
    .with_label("not a field of this process");
    match (close, typed.help) {
        (Some(f), _) => d.with_help(format!("did you mean `{f}`?")),
        (None, Some(help)) => d.with_help(format!(
            "name a field of `{}`, or write a value ({help})",
            from
        )),
        (None, None) => d.with_help(format!("name a field of `{}`, or write a value", from)),
    }
}

impl Ctx {
    fn new(broken: HashSet<String>, diags: Vec<Diagnostic>) -> Self {
        Ctx {
            diags,
            calendars: Names::new("calendar"),
            roles: Names::new("role"),
            queues: Names::new("queue"),
            processes: Names::new("process"),
            services: Names::new("service"),
            items: Names::new("catalogue item"),
            service_processes: Vec::new(),
            used_calendars: Vec::new(),
            used_roles: Vec::new(),
            used_queues: Vec::new(),
            broken,
            broken_words: HashSet::new(),
            queue_models: Vec::new(),
            ola_spans: Vec::new(),
            pending_spawns: Vec::new(),
            signatures: Vec::new(),
            pending_guards: Vec::new(),
            pending_effects: Vec::new(),
        }
    }

    /// Whether this declaration is a second one of its name (already reported).
    fn is_redeclared(&self, names: &Names, ident: &Ident) -> bool {
        names.get(&ident.name).is_none_or(|id| {
            names.span(id).start != ident.span.start || names.span(id).file != ident.span.file
        })
    }

    fn resolve(&mut self, kind: Kind, ident: &Ident) -> Option<u32> {
        let names = match kind {
            Kind::Role => &self.roles,
            Kind::Queue => &self.queues,
            Kind::Calendar => &self.calendars,
        };
        if let Some(id) = names.get(&ident.name) {
            let used = match kind {
                Kind::Role => &mut self.used_roles,
                Kind::Queue => &mut self.used_queues,
                Kind::Calendar => &mut self.used_calendars,
            };
            if let Some(u) = used.get_mut(id as usize) {
                *u = true;
            }
            return Some(id);
        }
        if !self.broken.contains(&ident.name) {
            let d = names::unknown(names.kind, ident, names.iter());
            self.diags.push(d);
            // A misspelling of a declared name: that declaration is meant, so it is not
            // reported as unused on top.
            if let Some(meant) = names::did_you_mean(&ident.name, names.iter()) {
                let id = names.get(meant);
                let used = match kind {
                    Kind::Role => &mut self.used_roles,
                    Kind::Queue => &mut self.used_queues,
                    Kind::Calendar => &mut self.used_calendars,
                };
                if let Some(u) = id.and_then(|id| used.get_mut(id as usize)) {
                    *u = true;
                }
            }
        }
        None
    }

    pub fn role(&mut self, ident: &Ident) -> Option<RoleId> {
        self.resolve(Kind::Role, ident).map(RoleId)
    }

    pub fn queue(&mut self, ident: &Ident) -> Option<QueueId> {
        self.resolve(Kind::Queue, ident).map(QueueId)
    }

    pub fn calendar(&mut self, ident: &Ident) -> Option<CalendarRef> {
        if ident.name == "24x7" {
            return Some(CalendarRef::AlwaysOpen);
        }
        self.resolve(Kind::Calendar, ident)
            .map(|id| CalendarRef::Named(CalendarId(id)))
    }

    fn report_unused(&mut self) {
        for (names, used) in [
            (&self.calendars, &self.used_calendars),
            (&self.roles, &self.used_roles),
            (&self.queues, &self.used_queues),
        ] {
            for (id, used) in used.iter().enumerate() {
                let id = id as u32;
                if !used && !self.broken_words.contains(names.name(id)) {
                    self.diags.push(
                        Diagnostic::warning(
                            "unused-declaration",
                            names.span(id),
                            format!("{} `{}` is never used", names.kind, names.name(id)),
                        )
                        .with_label("declared here")
                        .with_help("remove it, or refer to it from a process"),
                    );
                }
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Role,
    Queue,
    Calendar,
}

#[cfg(test)]
mod tests {
    use itsmflow_dsl::Sources;

    use crate::model::{SpawnField, SpawnValue, Value};

    /// `with` entries come out in the model as written: a bare name the parent has a field of
    /// is that field, anything else a value typed as the child's field.
    #[test]
    fn spawn_with_fills_the_model() {
        let text = r#"
process problem {
  fields {
    title: text required
    service: text
    category: text
  }
  links {
    fixes: one change
  }
  stage logged initial
  stage closed final
  transition fix: logged -> closed spawns change as fixes with {
    summary: title, change_type: normal, category: 1, urgent: true, effort: 1h30m,
    note: "from a problem", service: service, start: 2026-01-01,
  }
  transition close: logged -> closed spawns problem
}

process change {
  fields {
    summary: text required
    change_type: enum(standard, normal, emergency) required
    category: enum(0, 1, 2, 3) required default 0
    urgent: bool
    effort: duration
    note: text
    service: text
    start: datetime
  }
  stage registered initial
  stage closed final
  transition close: registered -> closed
}
"#;
        let mut sources = Sources::new();
        sources.add("spawn.itsm", text);
        let checked = super::check(&sources);
        assert!(checked.diagnostics.is_empty(), "{:#?}", checked.diagnostics);
        let project = checked.project.expect("a project");
        let problem = &project.processes[0];
        let spawn = problem.transitions[0].spawns.first().expect("a spawn");
        assert_eq!(
            (spawn.process.as_str(), spawn.link.as_str()),
            ("change", "fixes")
        );
        let field = |name: &str, value: SpawnValue| SpawnField {
            name: name.to_string(),
            value,
        };
        assert_eq!(
            spawn.fields,
            [
                field("summary", SpawnValue::Parent(crate::model::FieldId(0))),
                field("change_type", SpawnValue::Literal(Value::Enum(1))),
                field("category", SpawnValue::Literal(Value::Enum(1))),
                field("urgent", SpawnValue::Literal(Value::Bool(true))),
                field("effort", SpawnValue::Literal(Value::Duration(0, 5400))),
                field(
                    "note",
                    SpawnValue::Literal(Value::Text("from a problem".into()))
                ),
                field("service", SpawnValue::Parent(crate::model::FieldId(1))),
                field("start", SpawnValue::Literal(Value::DateTime(1_767_225_600))),
            ]
        );
        // Without `with`, nothing but the copies by name.
        let plain = problem.transitions[1].spawns.first().expect("a spawn");
        assert_eq!(
            (plain.process.as_str(), plain.link.as_str()),
            ("problem", "spawned")
        );
        assert!(plain.fields.is_empty());
    }
}
