//! The service catalogue: services (owner, supporting calendar, queues, targets per priority)
//! and the items users can request of them.
//!
//! A service refers to processes, and processes to services, in any order and any file: the
//! names of services (the values of every `service` field) and of items are declared before any
//! process is checked, and the services themselves are checked once every process has been
//! read, against the processes' [`Signature`](super::links::Signature)s and the
//! [`ServiceProcess`]es they left. Their targets are then merged into the processes with a
//! `service` field ([`Process::service_targets`]).

use itsmflow_dsl::ast::{self, Ident, ItemEntryKind, ServiceEntryKind, Span};
use itsmflow_dsl::Diagnostic;

use super::escalation::not_after;
use super::names::{self, did_you_mean, Names};
use super::process::{head, respond_after_resolve};
use super::values::too_large_within;
use super::Ctx;
use crate::model::{
    CalendarRef, CatalogueItem, ClockKind, Duration, FieldId, Process, Service, ServiceTargets,
    SpawnValue, Target, Value,
};

/// A process with a `service` field, as far as it could be read: what a service's targets
/// apply to.
pub(crate) struct ServiceProcess {
    pub name: String,
    pub field: FieldId,
    /// Its priorities, by name, most urgent first.
    pub priorities: Vec<String>,
    /// Its own target per priority, with where each clock's duration is written (respond,
    /// resolve).
    pub own: Vec<Option<(Target, [Option<Span>; 2])>>,
}

impl ServiceProcess {
    pub(super) fn new(
        name: &str,
        field: FieldId,
        priorities: &Names,
        targets: &[Option<Target>],
        block: Option<&ast::Targets>,
    ) -> Self {
        let own = targets
            .iter()
            .enumerate()
            .map(|(p, target)| {
                let target = target.clone()?;
                let mut spans = [None; 2];
                let row = block?
                    .rows
                    .iter()
                    .find(|r| priorities.get(&r.priority.name) == Some(p as u32));
                for clock in row.map(|r| r.clocks.as_slice()).unwrap_or_default() {
                    let slot = &mut spans[usize::from(clock.clock.node == ClockKind::Resolve)];
                    if slot.is_none() {
                        *slot = Some(clock.duration.span);
                    }
                }
                Some((target, spans))
            })
            .collect();
        ServiceProcess {
            name: name.to_string(),
            field,
            priorities: priorities.iter().map(str::to_string).collect(),
            own,
        }
    }
}

/// Declares the items of every service (each declared once): item names are the project's,
/// since the API addresses an item by its name alone.
pub(super) fn declare_items(services: &[&ast::Service], ctx: &mut Ctx) {
    for s in services {
        for entry in &s.entries {
            if let ServiceEntryKind::Item(item) = &entry.kind {
                ctx.items.declare(&item.name, &mut ctx.diags);
            }
        }
    }
}

/// A service's targets row, checked.
struct Row<'a> {
    ast: &'a ast::TargetRow,
    /// `on CALENDAR` at the end of the row.
    calendar: Option<CalendarRef>,
    respond: Option<Duration>,
    resolve: Option<Duration>,
    /// Where each clock is given: (respond, resolve).
    given: [Option<&'a ast::ClockTarget>; 2],
}

/// Checks every service (those declared once, in declaration order: a service's index is its
/// value in `service` fields), and sets the [`Process::service_targets`] of `processes`.
pub(super) fn check_services(
    services: &[&ast::Service],
    processes: &mut [Process],
    ctx: &mut Ctx,
) -> Vec<Service> {
    let mut models = Vec::with_capacity(services.len());
    let mut all_rows = Vec::with_capacity(services.len());
    for (index, s) in services.iter().enumerate() {
        let (model, rows) = check_service(s, index as u32, ctx);
        models.push(model);
        all_rows.push(rows);
    }
    if ctx.service_processes.is_empty() && ctx.broken.is_empty() {
        for s in services {
            ctx.diags.push(
                Diagnostic::warning(
                    "unused-declaration",
                    s.name.span,
                    format!("service `{}` is never used", s.name),
                )
                .with_label("declared here")
                .with_help(
                    "no process has a field of type `service`, so no ticket names it and its targets never apply: give the processes whose tickets are about a service a field `service: service`",
                ),
            );
        }
    }
    merge_targets(&models, &all_rows, processes, ctx);
    models
}

/// One service: its settings, targets (returned, checked, for merging) and items.
fn check_service<'a>(s: &'a ast::Service, index: u32, ctx: &mut Ctx) -> (Service, Vec<Row<'a>>) {
    let mut model = Service {
        name: s.name.name.clone(),
        label: s.label.as_ref().map(|l| l.node.clone()),
        description: None,
        owner: None,
        calendar: None,
        queues: Vec::new(),
        targets: Vec::new(),
        items: Vec::new(),
    };
    let mut seen: [Option<Span>; 5] = [None; 5];
    let mut rows_written: Option<&[ast::TargetRow]> = None;
    for entry in &s.entries {
        let slot = match &entry.kind {
            ServiceEntryKind::Description(_) => 0,
            ServiceEntryKind::Owner(_) => 1,
            ServiceEntryKind::SupportedOn(_) => 2,
            ServiceEntryKind::Queues(_) => 3,
            ServiceEntryKind::Targets(_) => 4,
            ServiceEntryKind::Item(item) => {
                if let Some(item) = check_item(item, s, index, ctx) {
                    model.items.push(item);
                }
                continue;
            }
        };
        if let Some(first) = seen[slot] {
            ctx.diags.push(twice(entry.span, first, "service"));
            continue;
        }
        seen[slot] = Some(entry.span);
        match &entry.kind {
            ServiceEntryKind::Description(d) => model.description = Some(d.node.clone()),
            ServiceEntryKind::Owner(role) => model.owner = ctx.role(role),
            ServiceEntryKind::SupportedOn(cal) => model.calendar = ctx.calendar(cal),
            ServiceEntryKind::Queues(queues) => {
                for (i, q) in queues.iter().enumerate() {
                    if let Some(first) = queues[..i].iter().find(|f| f.name == q.name) {
                        ctx.diags.push(listed_twice(q, first, "queue"));
                        continue;
                    }
                    if let Some(id) = ctx.queue(q) {
                        model.queues.push(id);
                    }
                }
            }
            ServiceEntryKind::Targets(rows) => rows_written = Some(rows),
            ServiceEntryKind::Item(_) => {}
        }
    }
    // After the loop: a row's calendar defaults to `supported on`, wherever that is written.
    let rows = rows_written
        .map(|rows| check_rows(rows, ctx))
        .unwrap_or_default();
    model.targets = rows
        .iter()
        .map(|row| {
            let target = Target {
                calendar: row
                    .calendar
                    .or(model.calendar)
                    .unwrap_or(CalendarRef::AlwaysOpen),
                respond: row.respond,
                resolve: row.resolve,
            };
            (row.ast.priority.name.clone(), target)
        })
        .collect();
    (model, rows)
}

/// `this service setting is given twice`, `this item setting is given twice`.
fn twice(span: Span, first: Span, what: &str) -> Diagnostic {
    Diagnostic::error(
        "duplicate-attribute",
        span,
        format!("this {what} setting is given twice"),
    )
    .with_label("given again here")
    .with_secondary(first, "first given here")
}

/// A list that names something twice.
fn listed_twice(ident: &Ident, first: &Ident, kind: &str) -> Diagnostic {
    Diagnostic::error(
        "duplicate-definition",
        ident.span,
        format!("{kind} `{}` is listed twice", ident.name),
    )
    .with_label("listed again here")
    .with_secondary(first.span, "first listed here")
    .with_help("remove one of them")
}

/// A service's target rows: a priority once each, each clock once, no zero target, and the
/// respond target of a row that gives both no longer than its resolve target. Priorities no
/// process with a `service` field has are reported (`service-target-unused`) but kept.
fn check_rows<'a>(rows: &'a [ast::TargetRow], ctx: &mut Ctx) -> Vec<Row<'a>> {
    let mut out: Vec<Row> = Vec::with_capacity(rows.len());
    for row in rows {
        if let Some(first) = out
            .iter()
            .find(|r| r.ast.priority.name == row.priority.name)
        {
            ctx.diags.push(
                Diagnostic::error(
                    "duplicate-definition",
                    row.priority.span,
                    format!("targets for `{}` are given twice", row.priority),
                )
                .with_label("given again here")
                .with_secondary(first.ast.priority.span, "first given here"),
            );
            continue;
        }
        unused_priority(&row.priority, ctx);
        let calendar = row.calendar.as_ref().and_then(|c| ctx.calendar(c));
        let mut checked = Row {
            ast: row,
            calendar,
            respond: None,
            resolve: None,
            given: [None; 2],
        };
        for clock in &row.clocks {
            let resolve = clock.clock.node == ClockKind::Resolve;
            let slot = if resolve {
                &mut checked.resolve
            } else {
                &mut checked.respond
            };
            if slot.is_some() {
                ctx.diags.push(
                    Diagnostic::error(
                        "duplicate-attribute",
                        clock.span,
                        format!("the {} target is given twice", clock.clock.node),
                    )
                    .with_label("given again here"),
                );
                continue;
            }
            if clock.duration.node.is_zero() {
                if !too_large_within(&ctx.diags, clock.duration.span) {
                    ctx.diags.push(
                        Diagnostic::error(
                            "zero-target",
                            clock.duration.span,
                            "a target must be longer than zero",
                        )
                        .with_label("zero")
                        .with_help(
                            "leave the clock out if the service agrees no such target: the process's own applies",
                        ),
                    );
                }
                continue;
            }
            *slot = Some(clock.duration.node);
            checked.given[usize::from(resolve)] = Some(clock);
        }
        if let [Some(respond), Some(resolve)] = checked.given {
            respond_after_resolve(respond, resolve, &mut ctx.diags);
        }
        out.push(checked);
    }
    out
}

/// `service-target-unused`: a row for a priority that no process with a `service` field has.
/// (Without any such process, the whole service is reported unused instead.)
fn unused_priority(priority: &Ident, ctx: &mut Ctx) {
    let processes = &ctx.service_processes;
    if processes.is_empty()
        || processes
            .iter()
            .any(|p| p.priorities.contains(&priority.name))
    {
        return;
    }
    let mut known: Vec<&str> = Vec::new();
    for p in processes {
        for name in &p.priorities {
            if !known.contains(&name.as_str()) {
                known.push(name);
            }
        }
    }
    let with_field: Vec<String> = processes.iter().map(|p| format!("`{}`", p.name)).collect();
    let d = Diagnostic::warning(
        "service-target-unused",
        priority.span,
        format!(
            "no process with a `service` field has a priority `{}`",
            priority.name
        ),
    )
    .with_label("these targets never apply");
    // A process that has the priority, but no `service` field: the likelier mistake.
    let without_field = ctx
        .signatures
        .iter()
        .find(|s| s.priorities.get(&priority.name).is_some());
    let d = match (without_field, did_you_mean(&priority.name, known.iter().copied())) {
        (Some(sig), _) => d.with_help(format!(
            "`{}` has a priority `{}` but no `service` field: give it one (`service: service`) for the services' targets to apply to its tickets",
            sig.name, priority.name
        )),
        (None, Some(s)) => d.with_help(format!("did you mean `{s}`?")),
        (None, None) if known.is_empty() => d.with_help(format!(
            "the processes with a `service` field ({}) declare no priorities",
            with_field.join(", ")
        )),
        (None, None) => d.with_help(format!(
            "a row applies to the priority of that name in {}; their priorities are: {}",
            with_field.join(", "),
            known.join(", ")
        )),
    };
    ctx.diags.push(d);
}

/// One catalogue item: its process, what it presets (typed as that process's fields; the
/// process's `service` field is preset to this service unless `with` sets it), and the fields
/// it requires.
fn check_item(
    item: &ast::CatalogueItem,
    service: &ast::Service,
    index: u32,
    ctx: &mut Ctx,
) -> Option<CatalogueItem> {
    let mut seen: [Option<Span>; 4] = [None; 4];
    let mut description = None;
    let mut process: Option<&Ident> = None;
    let mut with: &[ast::SpawnEntry] = &[];
    let mut requires: &[Ident] = &[];
    for entry in &item.entries {
        let slot = match &entry.kind {
            ItemEntryKind::Description(_) => 0,
            ItemEntryKind::Process(_) => 1,
            ItemEntryKind::With(_) => 2,
            ItemEntryKind::Requires(_) => 3,
        };
        if let Some(first) = seen[slot] {
            ctx.diags.push(twice(entry.span, first, "item"));
            continue;
        }
        seen[slot] = Some(entry.span);
        match &entry.kind {
            ItemEntryKind::Description(d) => description = Some(d.node.clone()),
            ItemEntryKind::Process(p) => process = Some(p),
            ItemEntryKind::With(entries) => with = entries,
            ItemEntryKind::Requires(fields) => requires = fields,
        }
    }
    let Some(process) = process else {
        ctx.diags.push(
            Diagnostic::error(
                "missing-process",
                item.name.span,
                format!("item `{}` names no process", item.name),
            )
            .with_label("in which process is a request for it raised?")
            .with_secondary(
                head(service.span, "service".len()),
                "an item of this service",
            )
            .with_help("add the process its tickets are raised in: `process request`"),
        );
        return None;
    };
    if ctx.processes.get(&process.name).is_none() {
        if !ctx.broken.contains(&process.name) {
            let d = names::unknown("process", process, ctx.processes.iter());
            ctx.diags.push(d);
        }
        return None;
    }
    // The process's fields as far as they could be read (it may have errors of its own).
    let sig = ctx.signatures.iter().find(|s| s.name == process.name)?;
    let with = super::With {
        entries: with,
        from: None,
        from_fields: &[],
    };
    let (set_fields, set) = super::spawn_with(&with, &sig.name, &sig.field_models, &mut ctx.diags);
    let mut presets: Vec<(FieldId, Value)> = set_fields
        .into_iter()
        .filter_map(|f| match f.value {
            SpawnValue::Literal(v) => Some((FieldId(sig.fields.get(&f.name)?), v)),
            SpawnValue::Parent(_) => None,
        })
        .collect();
    let service_field = ctx
        .service_processes
        .iter()
        .find(|p| p.name == process.name)
        .map(|p| p.field);
    if let Some(field) = service_field {
        let name = sig.fields.name(field.0);
        if !set.contains(name) {
            presets.push((field, Value::Enum(index)));
        }
    }
    let mut required = Vec::with_capacity(requires.len());
    for (i, f) in requires.iter().enumerate() {
        if let Some(first) = requires[..i].iter().find(|g| g.name == f.name) {
            ctx.diags.push(listed_twice(f, first, "field"));
            continue;
        }
        match sig.fields.get(&f.name) {
            Some(id) => required.push(FieldId(id)),
            None => ctx
                .diags
                .push(super::unknown_child_field(f, &sig.name, &sig.field_models)),
        }
    }
    Some(CatalogueItem {
        name: item.name.name.clone(),
        label: item.label.as_ref().map(|l| l.node.clone()),
        description,
        process: process.name.clone(),
        presets,
        requires: required,
    })
}

/// Sets [`Process::service_targets`] of every checked process with a `service` field from the
/// services' rows, and reports a row that gives one clock whose merged target has its respond
/// target longer than its resolve target (the other clock being the process's own).
fn merge_targets(
    services: &[Service],
    rows: &[Vec<Row>],
    processes: &mut [Process],
    ctx: &mut Ctx,
) {
    for sp in &ctx.service_processes {
        let process = processes.iter_mut().find(|p| p.name == sp.name);
        let mut table: Vec<Vec<Option<Target>>> = Vec::with_capacity(services.len());
        for (service, rows) in services.iter().zip(rows) {
            let mut per_priority = Vec::with_capacity(sp.priorities.len());
            for (p, priority) in sp.priorities.iter().enumerate() {
                let Some(row) = rows.iter().find(|row| row.ast.priority.name == *priority) else {
                    per_priority.push(None);
                    continue;
                };
                let own = sp.own.get(p).and_then(Option::as_ref);
                if let Some(d) = merged_respond_after_resolve(row, own, &sp.name, priority) {
                    ctx.diags.push(d);
                }
                let own_target = own.map(|(t, _)| t);
                per_priority.push(Some(Target {
                    calendar: row
                        .calendar
                        .or(service.calendar)
                        .or(own_target.map(|t| t.calendar))
                        .unwrap_or(CalendarRef::AlwaysOpen),
                    respond: row.respond.or(own_target.and_then(|t| t.respond)),
                    resolve: row.resolve.or(own_target.and_then(|t| t.resolve)),
                }));
            }
            table.push(per_priority);
        }
        let Some(process) = process else {
            continue; // it has errors of its own
        };
        if table.iter().flatten().any(Option::is_some) {
            process.service_targets = Some(ServiceTargets {
                field: sp.field,
                targets: table,
            });
        }
    }
}

/// `respond-after-resolve` for a row that gives one clock, where the process's target for the
/// priority gives the other: the merged target's respond is longer than its resolve.
fn merged_respond_after_resolve(
    row: &Row,
    own: Option<&(Target, [Option<Span>; 2])>,
    process: &str,
    priority: &str,
) -> Option<Diagnostic> {
    let (own, spans) = own?;
    let d = match row.given {
        [None, Some(resolve)] => {
            let (r, span) = (own.respond?, spans[0]?);
            let s = resolve.duration.node;
            clearly_longer(&r, &s).then(|| {
                Diagnostic::error(
                    "respond-after-resolve",
                    resolve.duration.span,
                    format!(
                        "this resolve target {s} is shorter than the respond target {r} that `{process}` gives `{priority}`"
                    ),
                )
                .with_label("shorter than the respond target it keeps")
                .with_secondary(span, format!("`{process}`'s respond target for `{priority}`"))
                .with_help(
                    "a row that gives only `resolve` keeps the process's `respond`: give a shorter respond target here too, or a longer resolve target",
                )
            })
        }
        [Some(respond), None] => {
            let (s, span) = (own.resolve?, spans[1]?);
            let r = respond.duration.node;
            clearly_longer(&r, &s).then(|| {
                Diagnostic::error(
                    "respond-after-resolve",
                    respond.duration.span,
                    format!(
                        "this respond target {r} is longer than the resolve target {s} that `{process}` gives `{priority}`"
                    ),
                )
                .with_label("longer than the resolve target it keeps")
                .with_secondary(span, format!("`{process}`'s resolve target for `{priority}`"))
                .with_help(
                    "a row that gives only `respond` keeps the process's `resolve`: give a longer resolve target here too, or a shorter respond target",
                )
            })
        }
        _ => None,
    };
    d
}

/// `respond` is longer than `resolve` whatever the calendar (as [`respond_after_resolve`]
/// judges a row).
fn clearly_longer(respond: &Duration, resolve: &Duration) -> bool {
    not_after(resolve, respond) && !not_after(respond, resolve)
}

#[cfg(test)]
mod tests {
    use itsmflow_dsl::Sources;

    use crate::model::*;

    /// The catalogue golden project: services in two files, before and after the processes.
    fn project() -> Project {
        let mut sources = Sources::new();
        for (name, text) in [
            (
                "catalogue.itsm",
                include_str!("../../../tests/golden/valid/catalogue/catalogue.itsm"),
            ),
            (
                "incident.itsm",
                include_str!("../../../tests/golden/valid/catalogue/incident.itsm"),
            ),
            (
                "request.itsm",
                include_str!("../../../tests/golden/valid/catalogue/request.itsm"),
            ),
            (
                "shared.itsm",
                include_str!("../../../tests/golden/valid/catalogue/shared.itsm"),
            ),
        ] {
            sources.add(name, text);
        }
        let checked = crate::check(&sources);
        assert!(checked.diagnostics.is_empty(), "{:#?}", checked.diagnostics);
        checked.project.expect("a project")
    }

    /// A target as a comparable tuple (`Target` has no `PartialEq`).
    type Parts = (CalendarRef, Option<Duration>, Option<Duration>);

    fn parts(t: Option<&Target>) -> Option<Parts> {
        t.map(|t| (t.calendar, t.respond, t.resolve))
    }

    fn minutes(m: u64) -> Option<Duration> {
        Some(Duration {
            minutes: m,
            ..Duration::default()
        })
    }

    fn hours(h: u64) -> Option<Duration> {
        Some(Duration {
            hours: h,
            ..Duration::default()
        })
    }

    #[test]
    fn services_and_items_fill_the_model() {
        let project = project();
        let names: Vec<&str> = project.services.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["email", "desktop", "network"]);
        let office = CalendarRef::Named(CalendarId(0));
        let email = project.service("email").expect("email");
        assert_eq!(email.label.as_deref(), Some("E-mail"));
        assert_eq!(
            email.description.as_deref(),
            Some("Mail and calendars for every employee")
        );
        assert_eq!(email.owner, Some(RoleId(1)));
        assert_eq!(email.calendar, Some(office));
        assert_eq!(email.queues, [QueueId(0), QueueId(1)]);
        let rows: Vec<(&str, Option<Parts>)> = email
            .targets
            .iter()
            .map(|(p, t)| (p.as_str(), parts(Some(t))))
            .collect();
        assert_eq!(
            rows,
            [
                ("P1", Some((CalendarRef::AlwaysOpen, minutes(10), hours(2)))),
                ("P2", Some((office, None, hours(4)))),
            ]
        );

        // The `service` field is an enum of the services, in declaration order.
        let incident = project.process("incident").expect("incident");
        let field = incident.field("service").expect("a service field");
        assert_eq!(
            incident.fields[field.index()].ty,
            FieldType::Enum(vec!["email".into(), "desktop".into(), "network".into()])
        );

        // Items: `with` typed as the process's fields, then the item's own service.
        let request = project.process("request").expect("request");
        let f = |name: &str| request.field(name).expect("a field");
        let (service, mailbox) = project.item("shared_mailbox").expect("an item");
        assert_eq!(service.name, "email");
        assert_eq!(mailbox.process, "request");
        assert_eq!(mailbox.label.as_deref(), Some("New shared mailbox"));
        assert_eq!(
            mailbox.presets,
            [
                (f("item"), Value::Enum(1)),
                (f("notes"), Value::Text("shared mailbox".into())),
                (f("service"), Value::Enum(0)),
            ]
        );
        assert_eq!(mailbox.requires, [f("justification")]);
        let (service, laptop) = project.item("laptop").expect("an item");
        assert_eq!(service.name, "desktop");
        assert_eq!(
            laptop.presets,
            [
                (f("item"), Value::Enum(0)),
                (f("urgency"), Value::Enum(1)),
                (f("service"), Value::Enum(1)),
            ]
        );
        // `with` sets the service itself: no other preset of it.
        let (_, token) = project.item("vpn_token").expect("an item");
        assert_eq!(
            token.presets,
            [(f("item"), Value::Enum(1)), (f("service"), Value::Enum(2))]
        );
        assert!(project.item("nope").is_none());
    }

    #[test]
    fn service_targets_override_the_process_per_priority_and_clock() {
        let project = project();
        let incident = project.process("incident").expect("incident");
        let st = incident.service_targets.as_ref().expect("service targets");
        assert_eq!(Some(st.field), incident.field("service"));
        let office = CalendarRef::Named(CalendarId(0));
        let (email, desktop, network) = (0, 1, 2);
        // email P1: both clocks, on the row's calendar.
        let at = |s: usize, p: usize| parts(st.targets[s][p].as_ref());
        assert_eq!(
            at(email, 0),
            Some((CalendarRef::AlwaysOpen, minutes(10), hours(2)))
        );
        // email P2: resolve only; respond is the process's, the calendar the service's.
        assert_eq!(at(email, 1), Some((office, hours(1), hours(4))));
        // email gives no P3; desktop nothing at all.
        assert_eq!(at(email, 2), None);
        assert!(st.targets[desktop].iter().all(Option::is_none));
        // network P3: respond only, on its `supported on` 24x7; resolve is the process's 3d.
        let three_days = Some(Duration {
            days: 3,
            ..Duration::default()
        });
        assert_eq!(
            at(network, 2),
            Some((CalendarRef::AlwaysOpen, hours(1), three_days))
        );
        let p1 = Some(PriorityId(0));
        let p3 = Some(PriorityId(2));
        assert_eq!(parts(incident.target(p1, Some(email as u32))), at(email, 0));
        // No service row, no service: the process's own.
        let own = |p: usize| parts(incident.targets[p].as_ref());
        assert_eq!(parts(incident.target(p3, Some(email as u32))), own(2));
        assert_eq!(parts(incident.target(p1, None)), own(0));
        let fields: Vec<Option<Value>> = incident
            .fields
            .iter()
            .map(|f| (f.name == "service").then_some(Value::Enum(2)))
            .collect();
        assert_eq!(incident.service_of(&fields), Some(2));

        // The request's priorities are R1, R2: no service agrees targets for them.
        let request = project.process("request").expect("request");
        assert!(request.service_targets.is_none());
    }
}
