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
pub(crate) mod names;
mod notices;
mod people;
mod process;
mod queues;
mod rules;
mod values;

use std::collections::HashSet;

use itsmflow_dsl::ast::{self, Ident, Item};
use itsmflow_dsl::{diagnostic, parse, Diagnostic, Sources};

use crate::model::{CalendarId, CalendarRef, Project, QueueId, RoleId};
use names::Names;

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

/// Parse and check every file of a project.
pub fn check(sources: &Sources) -> Checked {
    let mut diagnostics = Vec::new();
    let mut files = Vec::with_capacity(sources.len());
    let mut broken = HashSet::new();
    for (id, file) in sources.iter() {
        let parsed = parse(id, &file.text);
        diagnostics.extend(parsed.diagnostics);
        broken.extend(parsed.broken_items);
        files.push(parsed.file);
    }
    check_files(&files, broken, diagnostics)
}

/// Check already parsed files. `broken` names items that failed to parse.
pub fn check_files(
    files: &[ast::File],
    broken: HashSet<String>,
    diagnostics: Vec<Diagnostic>,
) -> Checked {
    let mut ctx = Ctx::new(broken, diagnostics);
    let items: Vec<&Item> = files.iter().flat_map(|f| &f.items).collect();

    // Declare every project-level name first, so files and items may refer to each other in
    // any order.
    for item in &items {
        let names = match item {
            Item::Calendar(_) => &mut ctx.calendars,
            Item::Queue(_) => &mut ctx.queues,
            Item::Role(_) => &mut ctx.roles,
            Item::Process(p) if p.tailoring.is_some() => continue,
            Item::Process(_) => &mut ctx.processes,
        };
        names.declare(item.name(), &mut ctx.diags);
    }
    ctx.used_calendars = vec![false; ctx.calendars.len()];
    ctx.used_roles = vec![false; ctx.roles.len()];
    ctx.used_queues = vec![false; ctx.queues.len()];

    let mut calendars = Vec::new();
    let mut roles = Vec::new();
    let mut queue_items = Vec::new();
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
            _ => {}
        }
    }
    let queues = queues::check_queues(&queue_items, &mut ctx);
    ctx.queue_models = queues.clone();

    let mut processes = Vec::new();
    for item in &items {
        if let Item::Process(p) = item {
            if let Some(t) = &p.tailoring {
                ctx.diags.push(
                    Diagnostic::error(
                        "unsupported-tailoring",
                        t.span,
                        format!(
                            "tailoring `{}` for client `{}` is not supported yet",
                            t.base, t.client
                        ),
                    )
                    .with_label("client tailorings are not checked or run by this version")
                    .with_help("copy the process under a new name until tailoring lands"),
                );
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

    check_spawns(&ctx.pending_spawns, &processes, &mut ctx.diags);
    ctx.report_unused();
    let mut diagnostics = std::mem::take(&mut ctx.diags);
    diagnostic::sort(&mut diagnostics);
    // `Span` equality ignores positions, so compare where each diagnostic is explicitly.
    diagnostics.dedup_by(|a, b| {
        (a.code, &a.message, a.span.file, a.span.start, a.span.end)
            == (b.code, &b.message, b.span.file, b.span.start, b.span.end)
    });
    let has_errors = diagnostics.iter().any(Diagnostic::is_error);
    let project = (!has_errors).then_some(Project {
        calendars,
        roles,
        queues,
        processes,
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
    used_calendars: Vec<bool>,
    used_roles: Vec<bool>,
    used_queues: Vec<bool>,
    /// Names of items that failed to parse: references to them are not reported.
    broken: HashSet<String>,
    /// The checked queues, for tier checks in escalations.
    pub queue_models: Vec<crate::model::Queue>,
    /// `spawns` clauses, checked once every process is.
    pub pending_spawns: Vec<PendingSpawn>,
}

/// A `spawns` clause waiting for its child process to be checked.
pub(crate) struct PendingSpawn {
    pub clause: ast::Span,
    /// The spawning transition's name.
    pub parent: String,
    pub child: String,
    pub parent_fields: Vec<(String, crate::model::FieldType)>,
}

/// A spawned instance copies its parent's fields by name: every field the child requires
/// without a default must exist in the parent, with the same type.
fn check_spawns(
    pending: &[PendingSpawn],
    processes: &[crate::model::Process],
    diags: &mut Vec<Diagnostic>,
) {
    for spawn in pending {
        let Some(child) = processes.iter().find(|p| p.name == spawn.child) else {
            continue; // the child has errors of its own
        };
        for field in &child.fields {
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
                    .with_help("give the two fields the same type, or rename one"),
                ),
                None if field.required && field.default.is_none() => diags.push(
                    Diagnostic::error(
                        "spawn-missing-field",
                        spawn.clause,
                        format!(
                            "`{}` requires `{}`, which this process does not have",
                            child.name, field.name
                        ),
                    )
                    .with_label("the spawned instance could not be created")
                    .with_help(format!(
                        "add a field `{}` here, or give it a default in `{}`",
                        field.name, child.name
                    )),
                ),
                _ => {}
            }
        }
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
            used_calendars: Vec::new(),
            used_roles: Vec::new(),
            used_queues: Vec::new(),
            broken,
            queue_models: Vec::new(),
            pending_spawns: Vec::new(),
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
                if !used {
                    let id = id as u32;
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
