//! One process: its fields, priorities, tables, stages, transitions and routing, resolved and
//! checked; escalation, approval, rules and the flow of stages have modules of their own.

use std::collections::HashSet;

use itsmflow_dsl::ast::{
    self, Ident, Member, QueueTarget, Span, StageAttrKind, StageKind, TransitionClauseKind,
};
use itsmflow_dsl::Diagnostic;

use super::condition::{CondScope, LinkAccess};
use super::coverage::Domain;
use super::names::{did_you_mean, Names};
use super::notices::{self, NoticeScope};
use super::values::{push_value_error, too_large_within, typed_value};
use super::{approval, escalation, flow, links, people, rules, Ctx};
use crate::model::*;

/// The names declared inside one process, and their checked definitions so far.
pub(super) struct ProcessScope {
    pub fields: Names,
    pub field_models: Vec<Field>,
    pub field_types: Vec<FieldType>,
    /// Per field: neither required nor defaulted, so a ticket may have it unset.
    pub may_be_unset: Vec<bool>,
    pub priorities: Names,
    pub stages: Names,
    pub transitions: Names,
    /// The link kinds, by [`LinkId`].
    pub links: Names,
    pub link_decls: Vec<links::DeclaredLink>,
    /// The field of type `service` (the first, if several are), and where it is declared.
    pub service_field: Option<(FieldId, Span)>,
}

impl ProcessScope {
    /// The scope of a condition that may not read linked tickets: `what` names the place
    /// ("routing"), `why` says why not.
    pub fn cond_scope(&self, what: &'static str, why: &'static str) -> CondScope<'_> {
        CondScope {
            fields: &self.fields,
            field_types: &self.field_types,
            priorities: &self.priorities,
            stages: None,
            links: LinkAccess::Refused { what, why },
        }
    }
    pub fn domain(&self) -> Domain<'_> {
        Domain {
            fields: &self.fields,
            field_types: &self.field_types,
            priorities: &self.priorities,
            may_be_unset: &self.may_be_unset,
        }
    }
}

/// The members of a process, grouped by kind, in source order.
#[derive(Default)]
struct Sections<'a> {
    fields: Vec<&'a ast::Fields>,
    links: Vec<&'a ast::Links>,
    priorities: Vec<&'a ast::Priorities>,
    tables: Vec<&'a ast::PriorityTable>,
    targets: Vec<&'a ast::Targets>,
    stages: Vec<&'a ast::Stage>,
    transitions: Vec<&'a ast::Transition>,
    routing: Vec<&'a ast::Routing>,
    escalations: Vec<&'a ast::Escalation>,
    approvals: Vec<&'a ast::Approval>,
    rules: Vec<&'a ast::Rule>,
}

/// A span covering the first `len` bytes of `span`: the keyword that opens a section.
pub(super) fn head(span: Span, len: usize) -> Span {
    Span {
        end: span.start.saturating_add(len as u32).min(span.end),
        ..span
    }
}

/// Sections that may appear once: report the second and later ones.
fn only_once(spans: &[Span], keyword: &str, diags: &mut Vec<Diagnostic>) {
    for s in spans.iter().skip(1) {
        diags.push(
            Diagnostic::error(
                "duplicate-section",
                head(*s, keyword.len()),
                format!("`{keyword}` is given twice in this process"),
            )
            .with_label("second one here")
            .with_secondary(head(spans[0], keyword.len()), "first one here")
            .with_help(format!("merge the two `{keyword}` sections")),
        );
    }
}

fn error_count(diags: &[Diagnostic]) -> usize {
    diags.iter().filter(|d| super::blocks(d)).count()
}

pub(super) fn check_process(p: &ast::Process, ctx: &mut Ctx) -> Option<Process> {
    let errors_before = error_count(&ctx.diags);
    let mut s = Sections::default();
    for m in &p.members {
        match m {
            Member::Fields(x) => s.fields.push(x),
            Member::Links(x) => s.links.push(x),
            Member::Priorities(x) => s.priorities.push(x),
            Member::PriorityTable(x) => s.tables.push(x),
            Member::Targets(x) => s.targets.push(x),
            Member::Stage(x) => s.stages.push(x),
            Member::Transition(x) => s.transitions.push(x),
            Member::Routing(x) => s.routing.push(x),
            Member::Escalation(x) => s.escalations.push(x),
            Member::Approval(x) => s.approvals.push(x),
            Member::Rule(x) => s.rules.push(x),
            Member::Overlay(o) => {
                // Checked as if written without the verb, so the one mistake is not followed
                // by others (a stage `add`ed here is still a stage of the process).
                match &o.entry {
                    ast::OverlayEntry::Stage(x) => s.stages.push(x),
                    ast::OverlayEntry::Transition(x) => s.transitions.push(x),
                    ast::OverlayEntry::Rule(x) => s.rules.push(x),
                    _ => {}
                }
                ctx.diags.push(
                    Diagnostic::error(
                        "overlay-outside-tailoring",
                        o.verb.span,
                        format!(
                            "`{}` changes the process a tailoring extends; `{}` extends none",
                            o.verb.node.as_str(),
                            p.name
                        ),
                    )
                    .with_label("only in a tailoring")
                    .with_help(format!(
                    "write the entry without `{}`, or tailor a process: `process {} for client \
                     NAME extends {} {{ ... }}`",
                    o.verb.node.as_str(),
                    p.name,
                    p.name
                )),
                )
            }
        }
    }
    only_once(
        &s.fields.iter().map(|x| x.span).collect::<Vec<_>>(),
        "fields",
        &mut ctx.diags,
    );
    only_once(
        &s.links.iter().map(|x| x.span).collect::<Vec<_>>(),
        "links",
        &mut ctx.diags,
    );
    only_once(
        &s.priorities.iter().map(|x| x.span).collect::<Vec<_>>(),
        "priorities",
        &mut ctx.diags,
    );
    only_once(
        &s.tables.iter().map(|x| x.span).collect::<Vec<_>>(),
        "priority",
        &mut ctx.diags,
    );
    only_once(
        &s.targets.iter().map(|x| x.span).collect::<Vec<_>>(),
        "targets",
        &mut ctx.diags,
    );
    only_once(
        &s.routing.iter().map(|x| x.span).collect::<Vec<_>>(),
        "routing",
        &mut ctx.diags,
    );

    let mut scope = ProcessScope {
        fields: Names::new("field"),
        field_models: Vec::new(),
        field_types: Vec::new(),
        may_be_unset: Vec::new(),
        priorities: Names::new("priority"),
        stages: Names::new("stage"),
        transitions: Names::new("transition"),
        links: Names::new("link"),
        link_decls: Vec::new(),
        service_field: None,
    };
    for block in s.fields.iter().take(1) {
        let services = FieldServices {
            names: &ctx.services,
            any_broken: !ctx.broken.is_empty(),
        };
        check_fields(block, &mut scope, &services, &mut ctx.diags);
    }
    for block in s.links.iter().take(1) {
        links::check_declarations(block, &mut scope, ctx);
    }
    scope.may_be_unset = scope
        .field_models
        .iter()
        .map(|f| !f.required && f.default.is_none())
        .collect();
    for block in s.priorities.iter().take(1) {
        for level in &block.levels {
            scope.priorities.declare(level, &mut ctx.diags);
        }
    }
    for stage in &s.stages {
        scope.stages.declare(&stage.name, &mut ctx.diags);
    }
    for t in &s.transitions {
        scope.transitions.declare(&t.name, &mut ctx.diags);
    }

    let priority_table = s
        .tables
        .first()
        .and_then(|t| check_table(t, &scope, &mut ctx.diags));
    let targets = check_targets(p, s.targets.first().copied(), &scope, ctx);
    if let Some((field, _)) = scope.service_field {
        ctx.service_processes
            .push(super::services::ServiceProcess::new(
                &p.name.name,
                field,
                &scope.priorities,
                &targets,
                s.targets.first().copied(),
            ));
    }
    // Business hours: the targets table's calendar, else the first row's calendar that has
    // hours (a `targets on 24x7` table means there are none).
    let business_hours = s
        .targets
        .first()
        .and_then(|b| b.calendar.as_ref())
        .and_then(|c| ctx.calendar(c))
        .or_else(|| {
            targets
                .iter()
                .flatten()
                .map(|t| t.calendar)
                .find(|c| *c != CalendarRef::AlwaysOpen)
        })
        .unwrap_or(CalendarRef::AlwaysOpen);
    // A calendar the targets name that is not declared (already reported as unknown) may be
    // the one with the hours: nothing follows from the process having none.
    let hours_unknown = s.targets.iter().any(|b| {
        b.calendar
            .iter()
            .chain(b.rows.iter().filter_map(|r| r.calendar.as_ref()))
            .any(|c| c.name != "24x7" && ctx.calendars.get(&c.name).is_none())
    });
    let always_open = business_hours == CalendarRef::AlwaysOpen && !hours_unknown;
    let has_routing = !s.routing.is_empty();
    // Stages that ask for approval, by name, for `notify approvers`.
    let approval_stages: HashSet<&str> = s.approvals.iter().map(|a| a.stage.as_str()).collect();
    let notice_scope = NoticeScope {
        scope: &scope,
        always_open,
    };
    let stages = check_stages(
        p,
        &s.stages,
        &notice_scope,
        &approval_stages,
        has_routing,
        ctx,
    );
    let mut transitions: Vec<Transition> = s
        .transitions
        .iter()
        .enumerate()
        .map(|(i, t)| check_transition(t, (&p.name.name, i), &notice_scope, &approval_stages, ctx))
        .collect();
    check_checklists(
        &s.stages,
        &scope.stages,
        &stages,
        &s.transitions,
        &mut ctx.diags,
    );
    let routing = s
        .routing
        .first()
        .map(|r| check_routing(r, &scope, &stages, ctx))
        .unwrap_or_default();

    // Queues that tasks of this process can be in, for escalation tier checks.
    let mut entry_queues: Vec<QueueId> = stages
        .iter()
        .filter_map(|st| match st.queue {
            Some(StageQueue::Named(q)) => Some(q),
            _ => None,
        })
        .collect();
    if stages
        .iter()
        .any(|st| st.queue == Some(StageQueue::ByRouting))
    {
        entry_queues.extend(routing.iter().map(|r| r.queue));
    }
    entry_queues.sort();
    entry_queues.dedup();

    super::queues::check_queue_actors(
        &super::queues::QueueUse {
            stage_items: &s.stages,
            stage_names: &scope.stages,
            stages: &stages,
            transitions: &transitions,
            routing: s.routing.first().copied(),
        },
        ctx,
    );

    let escalation_scope = escalation::EscalationScope {
        targets: &targets,
        entry_queues: &entry_queues,
        always_open,
        process: &p.name.name,
        any_approval: !s.approvals.is_empty(),
    };
    let escalations = escalation::check_escalations(&s.escalations, &scope, &escalation_scope, ctx);
    let routing_queues: Vec<QueueId> = routing.iter().map(|r| r.queue).collect();
    let mut stages = stages;
    escalation::check_recurring(
        &s.stages,
        &mut stages,
        &routing_queues,
        &scope,
        &escalation_scope,
        ctx,
    );
    let initial_stage = stages
        .iter()
        .position(|st| st.initial)
        .map(|i| StageId(i as u32));
    let (approvals, partial_edges) =
        approval::check_approvals(&s.approvals, &scope, initial_stage, ctx);
    let rules = rules::check_rules(
        &s.rules,
        &scope,
        &rules::RuleContext {
            transitions: &transitions,
            priority_table: priority_table.as_ref(),
        },
        &mut ctx.diags,
    );
    for (i, rule) in rules.iter().enumerate() {
        if let RuleKind::Guard(ts) = &rule.kind {
            for t in ts {
                if let Some(tr) = transitions.get_mut(t.index()) {
                    tr.guards.push(RuleId(i as u32));
                }
            }
        }
    }

    let initial = stages
        .iter()
        .position(|s| s.initial)
        .map(|i| StageId(i as u32));
    let graph = flow::check_flow(
        p,
        &scope.stages,
        &stages,
        &transitions,
        &approvals,
        &partial_edges,
        &mut ctx.diags,
    );

    ctx.signatures
        .push(links::signature(&p.name.name, &scope, &transitions));
    if error_count(&ctx.diags) > errors_before {
        return None;
    }
    Some(Process {
        name: p.name.name.clone(),
        label: p.label.as_ref().map(|l| l.node.clone()),
        fields: scope.field_models,
        priorities: scope.priorities.iter().map(str::to_string).collect(),
        priority_table,
        targets,
        business_hours,
        stages,
        initial: initial?,
        transitions,
        routing,
        escalations,
        approvals,
        rules,
        links: scope.link_decls.into_iter().map(|l| l.model).collect(),
        service_targets: None,
        graph,
    })
}

// ---------------------------------------------------------------------------------------------
// Fields

const RESERVED_FIELDS: [&str; 2] = ["priority", "stage"];

/// What a field of type `service` takes: the catalogue's services, in declaration order.
struct FieldServices<'a> {
    names: &'a Names,
    /// Whether an item of the project failed to parse (a service, perhaps: then a `service`
    /// field without services is not reported).
    any_broken: bool,
}

fn check_fields(
    block: &ast::Fields,
    scope: &mut ProcessScope,
    services: &FieldServices,
    diags: &mut Vec<Diagnostic>,
) {
    for f in &block.fields {
        if RESERVED_FIELDS.contains(&f.name.name.as_str()) {
            diags.push(
                Diagnostic::error(
                    "reserved-name",
                    f.name.span,
                    format!("`{}` cannot be a field name", f.name),
                )
                .with_label("reserved")
                .with_help(format!(
                    "`{}` is maintained by the engine; choose another name",
                    f.name
                )),
            );
            continue;
        }
        // Only a field declared `service` is the ticket's service, whose targets apply; a
        // `list(service)` names services without being it.
        let is_service = matches!(&f.ty, ast::FieldType::Named(n) if n.name == "service");
        let Some(ty) = field_type(f, &f.ty, false, scope, services, diags) else {
            continue;
        };
        let default =
            f.default
                .as_ref()
                .and_then(|lit| match typed_value(&f.name.name, &ty, lit) {
                    Ok(v) => Some(v),
                    Err(d) => {
                        push_value_error(diags, lit, *d);
                        None
                    }
                });
        if let Some(id) = scope.fields.declare(&f.name, diags) {
            if is_service && scope.service_field.is_none() {
                scope.service_field = Some((FieldId(id), f.name.span));
            }
            scope.field_types.push(ty.clone());
            scope.field_models.push(Field {
                name: f.name.name.clone(),
                ty,
                required: f.required.is_some(),
                default,
            });
        }
    }
}

/// The type `ty` declares for field `f` (`in_list`: as a list's element); `None`, reported,
/// if it names no type.
fn field_type(
    f: &ast::Field,
    ty: &ast::FieldType,
    in_list: bool,
    scope: &ProcessScope,
    services: &FieldServices,
    diags: &mut Vec<Diagnostic>,
) -> Option<FieldType> {
    Some(match ty {
        ast::FieldType::Named(name) if name.name == "service" => match in_list {
            true => services_type(f, name, services, diags),
            false => service_field_type(f, name, scope, services, diags),
        },
        ast::FieldType::Named(name) => match FieldType::from_name(&name.name) {
            Some(t) => t,
            None => {
                diags.push(unknown_type(name, in_list));
                return None;
            }
        },
        ast::FieldType::Enum(values, _) => enum_type(values, diags),
        ast::FieldType::List(_, span) if in_list => {
            diags.push(
                Diagnostic::error(
                    "nested-list",
                    *span,
                    format!("`{}` is a list of lists", f.name),
                )
                .with_label("a list inside a list")
                .with_help(
                    "a list's elements are single values: write `list(T)` with T one of text, person, int, bool, duration, datetime, service or enum(a, b); group values with an enum of dotted values such as `hardware.laptop`",
                ),
            );
            return None;
        }
        ast::FieldType::List(element, _) => FieldType::List(Box::new(field_type(
            f, element, true, scope, services, diags,
        )?)),
    })
}

fn unknown_type(name: &Ident, in_list: bool) -> Diagnostic {
    let (message, label) = match in_list {
        true => (
            format!("unknown element type `{name}` of a list"),
            "not a type a list can hold",
        ),
        false => (format!("unknown field type `{name}`"), "not a type"),
    };
    let d = Diagnostic::error("unknown-type", name.span, message).with_label(label);
    if name.name == "list" {
        return d.with_help("a list names the type of its elements: `list(text)`, `list(person)`");
    }
    let names = FieldType::NAMES.into_iter().chain(["service", "list"]);
    match did_you_mean(&name.name, names) {
        Some(s) => d.with_help(format!("did you mean `{s}`?")),
        None => d.with_help(
            "field types are text, person, int, bool, duration, datetime, service, enum(a, b, c) and list(T) of any of them",
        ),
    }
}

/// `enum(a, b, c)`: its values, each once.
fn enum_type(values: &[Ident], diags: &mut Vec<Diagnostic>) -> FieldType {
    let mut names = Names::new("enum value");
    for v in values {
        if names.get(&v.name).is_some() {
            diags.push(
                Diagnostic::error(
                    "duplicate-definition",
                    v.span,
                    format!("enum value `{}` is listed twice", v),
                )
                .with_label("listed again here")
                .with_secondary(
                    names.span(names.get(&v.name).unwrap_or(0)),
                    "first listed here",
                ),
            );
            continue;
        }
        names.declare(v, diags);
    }
    FieldType::Enum(names.iter().map(str::to_string).collect())
}

/// The type of a field declared `service`: an enum of the catalogue's services. A process has
/// at most one such field (`several-service-fields`), and a project with one declares services
/// (`no-services`).
fn service_field_type(
    f: &ast::Field,
    name: &Ident,
    scope: &ProcessScope,
    services: &FieldServices,
    diags: &mut Vec<Diagnostic>,
) -> FieldType {
    if let Some((_, first)) = scope.service_field {
        diags.push(
            Diagnostic::error(
                "several-service-fields",
                name.span,
                format!("`{}` is a second field of type `service`", f.name),
            )
            .with_label("a second service field")
            .with_secondary(first, "the first")
            .with_help(
                "a ticket is about one service, whose targets apply to it: keep one `service` field (a text or enum field can name another)",
            ),
        );
    }
    services_type(f, name, services, diags)
}

/// The catalogue's services as an enum, for a `service` field or a `list(service)`'s elements
/// (`no-services` when the project declares none).
fn services_type(
    f: &ast::Field,
    name: &Ident,
    services: &FieldServices,
    diags: &mut Vec<Diagnostic>,
) -> FieldType {
    if services.names.len() == 0 && !services.any_broken {
        diags.push(
            Diagnostic::error(
                "no-services",
                name.span,
                format!("`{}` names a service, but the project declares none", f.name),
            )
            .with_label("a field of type `service` takes a declared service")
            .with_help(format!(
                "declare the catalogue's services, e.g. `service email \"E-mail\" {{ ... }}`, or make `{}` a text field",
                f.name
            )),
        );
    }
    FieldType::Enum(services.names.iter().map(str::to_string).collect())
}

// ---------------------------------------------------------------------------------------------
// Priority table

/// The most cells (combinations of the fields' values) a priority table may have. Every cell
/// must be written out, so a real table is far smaller; this bounds the checker's memory.
const MAX_TABLE_CELLS: u64 = 1 << 16;

fn check_table(
    t: &ast::PriorityTable,
    scope: &ProcessScope,
    diags: &mut Vec<Diagnostic>,
) -> Option<PriorityTable> {
    let before = error_count(diags);
    if scope.priorities.len() == 0 {
        diags.push(
            Diagnostic::error(
                "no-priorities",
                head(t.span, "priority".len()),
                "a priority table needs declared priorities",
            )
            .with_label("the table's cells name priorities")
            .with_help("declare them first, e.g. `priorities P1, P2, P3, P4, P5`"),
        );
    }
    // The table's fields: each an enum or bool field, each once.
    let mut fields = Vec::new();
    let mut values: Vec<Vec<String>> = Vec::new();
    for (i, ident) in t.fields.iter().enumerate() {
        if t.fields[..i].iter().any(|f| f.name == ident.name) {
            diags.push(
                Diagnostic::error(
                    "duplicate-definition",
                    ident.span,
                    format!("field `{ident}` is listed twice"),
                )
                .with_label("listed again here"),
            );
            continue;
        }
        let Some(id) = scope.fields.resolve(ident, diags) else {
            continue;
        };
        match &scope.field_types[id as usize] {
            FieldType::Enum(vs) => values.push(vs.clone()),
            FieldType::Bool => values.push(vec!["false".into(), "true".into()]),
            other => {
                diags.push(
                    Diagnostic::error("type-mismatch", ident.span, format!("`{ident}` is {other}; a priority table needs enum or bool fields"))
                        .with_label("not an enum")
                        .with_help("priority is looked up by value, so every field of the table must have a fixed set of values"),
                );
                continue;
            }
        }
        fields.push(FieldId(id));
    }
    if error_count(diags) > before || fields.is_empty() {
        return None;
    }

    let n = fields.len();
    let radix: Vec<u32> = values.iter().map(|v| v.len() as u32).collect();
    let total = radix
        .iter()
        .try_fold(1u64, |acc, &r| acc.checked_mul(u64::from(r)));
    let total = match total {
        Some(total) if total <= MAX_TABLE_CELLS => total as usize,
        _ => {
            let count = match total {
                Some(total) => format!("{total} combinations of values"),
                None => "at least 2^64 combinations of values".to_string(),
            };
            let header = Span {
                end: t.fields.last().map_or(t.span.end, |f| f.span.end),
                ..t.span
            };
            diags.push(
                Diagnostic::error(
                    "priority-table-too-large",
                    header,
                    format!(
                        "this priority table has {count}; a table may have at most {MAX_TABLE_CELLS}"
                    ),
                )
                .with_label(format!(
                    "one priority per combination of the values of these {}",
                    super::names::count(n, "field", "fields")
                ))
                .with_help(
                    "key the table on fewer fields: a `computes` rule can combine several fields into one enum field for the table to use",
                ),
            );
            return None;
        }
    };
    let mut cells: Vec<Option<(PriorityId, Span)>> = vec![None; total];
    let value_of = |field: usize, key: &Ident, diags: &mut Vec<Diagnostic>| -> Option<u32> {
        match values[field].iter().position(|v| *v == key.name) {
            Some(i) => Some(i as u32),
            None => {
                let fname = &t.fields[field].name;
                let d = Diagnostic::error(
                    "unknown-value",
                    key.span,
                    format!("`{fname}` has no value `{}`", key.name),
                )
                .with_label("not one of its values");
                diags.push(
                    match did_you_mean(&key.name, values[field].iter().map(String::as_str)) {
                        Some(s) => d.with_help(format!("did you mean `{s}`?")),
                        None => d.with_help(format!(
                            "`{fname}` is one of: {}",
                            values[field].join(", ")
                        )),
                    },
                );
                None
            }
        }
    };
    let last = n - 1;
    // Whether every row could be read; if not, missing cells are likely that row's.
    let mut rows_ok = true;
    for row in &t.rows {
        let matrix_row = n > 1 && row.keys.len() == last && row.cells.len() == values[last].len();
        let single = row.keys.len() == n && row.cells.len() == 1;
        if !matrix_row && !single {
            let names: Vec<&str> = t.fields.iter().map(|f| f.name.as_str()).collect();
            let help = if n == 1 {
                format!(
                    "each row names a value of `{}` and one priority: `high => P1`",
                    names[0]
                )
            } else {
                format!(
                    "a row names a value of {} and lists one priority per value of `{}` ({}); or it names a value of every field and one priority",
                    names[..last].iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", "),
                    names[last],
                    values[last].join(", ")
                )
            };
            diags.push(
                Diagnostic::error(
                    "priority-table-shape",
                    row.span,
                    format!(
                        "this row has {} and {}",
                        super::names::count(row.keys.len(), "value", "values"),
                        super::names::count(row.cells.len(), "priority", "priorities")
                    ),
                )
                .with_label("does not fit the table")
                .with_help(help),
            );
            rows_ok = false;
            continue;
        }
        let Some(keys) = row
            .keys
            .iter()
            .enumerate()
            .map(|(i, k)| value_of(i, k, diags))
            .collect::<Option<Vec<u32>>>()
        else {
            rows_ok = false;
            continue;
        };
        let combos: Vec<(Vec<u32>, &Ident)> = if single {
            vec![(keys, &row.cells[0])]
        } else {
            row.cells
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let mut k = keys.clone();
                    k.push(i as u32);
                    (k, c)
                })
                .collect()
        };
        for (key, cell) in combos {
            let Some(p) = scope.priorities.get(&cell.name) else {
                rows_ok = false;
                if scope.priorities.len() > 0 {
                    let d = super::names::unknown("priority", cell, scope.priorities.iter());
                    diags.push(match d.help {
                        Some(_) => d,
                        None => d.with_help("declare it in `priorities`"),
                    });
                }
                continue;
            };
            let index = key
                .iter()
                .zip(&radix)
                .fold(0usize, |acc, (v, r)| acc * (*r as usize) + *v as usize);
            if let Some((_, first)) = cells[index] {
                diags.push(
                    Diagnostic::error(
                        "priority-table-duplicate",
                        cell.span,
                        format!(
                            "the priority for {} is given twice",
                            describe_key(t, &values, &key)
                        ),
                    )
                    .with_label("given again here")
                    .with_secondary(first, "first given here"),
                );
                continue;
            }
            cells[index] = Some((PriorityId(p), cell.span));
        }
    }

    let missing: Vec<usize> = (0..total).filter(|&i| cells[i].is_none()).collect();
    if !missing.is_empty() && rows_ok {
        let shown: Vec<String> = missing
            .iter()
            .take(4)
            .map(|&i| describe_key(t, &values, &unflatten(i, &radix)))
            .collect();
        let more = if missing.len() > 4 {
            format!(" and {} more", missing.len() - 4)
        } else {
            String::new()
        };
        diags.push(
            Diagnostic::error(
                "priority-table-incomplete",
                head(t.span, "priority".len()),
                format!(
                    "the priority table has no priority for {}{more}",
                    shown.join("; ")
                ),
            )
            .with_label("not every combination of values has a priority")
            .with_help("every combination of the fields' values needs a priority"),
        );
    }
    if error_count(diags) > before {
        return None;
    }
    let cells: Vec<PriorityId> = cells
        .into_iter()
        .map(|c| c.map(|(p, _)| p).unwrap_or(PriorityId(0)))
        .collect();
    for p in 0..scope.priorities.len() as u32 {
        if !cells.contains(&PriorityId(p)) {
            diags.push(
                Diagnostic::warning(
                    "unused-priority",
                    scope.priorities.span(p),
                    format!(
                        "priority `{}` is never given by the priority table",
                        scope.priorities.name(p)
                    ),
                )
                .with_label("no cell yields it")
                .with_help("tickets get it only when an escalation raises priority"),
            );
        }
    }
    Some(PriorityTable {
        fields,
        radix,
        cells,
    })
}

fn unflatten(mut index: usize, radix: &[u32]) -> Vec<u32> {
    let mut key = vec![0; radix.len()];
    for (slot, r) in key.iter_mut().zip(radix).rev() {
        *slot = (index % *r as usize) as u32;
        index /= *r as usize;
    }
    key
}

fn describe_key(t: &ast::PriorityTable, values: &[Vec<String>], key: &[u32]) -> String {
    t.fields
        .iter()
        .zip(key)
        .zip(values)
        .map(|((f, k), vs)| {
            format!(
                "{} = {}",
                f.name,
                vs.get(*k as usize).map(String::as_str).unwrap_or("?")
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

// ---------------------------------------------------------------------------------------------
// Targets

fn check_targets(
    p: &ast::Process,
    block: Option<&ast::Targets>,
    scope: &ProcessScope,
    ctx: &mut Ctx,
) -> Vec<Option<Target>> {
    let mut targets: Vec<Option<Target>> = vec![None; scope.priorities.len()];
    let Some(block) = block else {
        if scope.priorities.len() > 0 {
            ctx.diags.push(
                Diagnostic::warning(
                    "no-targets",
                    p.name.span,
                    format!("process `{}` has priorities but no targets", p.name),
                )
                .with_label("no respond or resolve clocks will run")
                .with_help("add `targets on <calendar> { P1: respond 15m, resolve 4h ... }`"),
            );
        }
        return targets;
    };
    if scope.priorities.len() == 0 {
        ctx.diags.push(
            Diagnostic::error(
                "no-priorities",
                head(block.span, "targets".len()),
                "targets need declared priorities",
            )
            .with_label("targets are given per priority")
            .with_help("declare them first, e.g. `priorities P1, P2, P3`"),
        );
        return targets;
    }
    let default_calendar = block.calendar.as_ref().and_then(|c| ctx.calendar(c));
    let mut row_spans: Vec<Option<Span>> = vec![None; scope.priorities.len()];
    for row in &block.rows {
        let Some(pid) = scope.priorities.resolve(&row.priority, &mut ctx.diags) else {
            continue;
        };
        if let Some(first) = row_spans[pid as usize] {
            ctx.diags.push(
                Diagnostic::error(
                    "duplicate-definition",
                    row.priority.span,
                    format!("targets for `{}` are given twice", row.priority),
                )
                .with_label("given again here")
                .with_secondary(first, "first given here"),
            );
            continue;
        }
        row_spans[pid as usize] = Some(row.priority.span);
        let calendar = match &row.calendar {
            Some(c) => ctx.calendar(c),
            None if block.calendar.is_some() => default_calendar,
            None => {
                ctx.diags.push(
                    Diagnostic::error("missing-calendar", row.span, format!("targets for `{}` have no calendar", row.priority))
                        .with_label("which hours does this clock run in?")
                        .with_help("name a calendar for all rows (`targets on office { ... }`) or for this row (`... on 24x7`)"),
                );
                None
            }
        };
        let mut target = Target {
            calendar: calendar.unwrap_or(CalendarRef::AlwaysOpen),
            respond: None,
            resolve: None,
        };
        // Where each clock's target was given: (respond, resolve).
        let mut given: [Option<&ast::ClockTarget>; 2] = [None; 2];
        for clock in &row.clocks {
            let slot = match clock.clock.node {
                ClockKind::Respond => &mut target.respond,
                ClockKind::Resolve => &mut target.resolve,
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
            if clock.duration.node.is_zero() && too_large_within(&ctx.diags, clock.duration.span) {
                continue; // already reported by the parser
            }
            if clock.duration.node.is_zero() {
                ctx.diags.push(
                    Diagnostic::error(
                        "zero-target",
                        clock.duration.span,
                        "a target must be longer than zero",
                    )
                    .with_label("zero")
                    .with_help("leave the clock out if this priority has no such target"),
                );
                continue;
            }
            *slot = Some(clock.duration.node);
            given[usize::from(clock.clock.node == ClockKind::Resolve)] = Some(clock);
        }
        if let [Some(respond), Some(resolve)] = given {
            respond_after_resolve(respond, resolve, &mut ctx.diags);
        }
        targets[pid as usize] = Some(target);
    }
    for (pid, span) in row_spans.iter().enumerate() {
        if span.is_none() {
            let pid = pid as u32;
            ctx.diags.push(
                Diagnostic::error(
                    "priority-without-target",
                    scope.priorities.span(pid),
                    format!("priority `{}` has no targets", scope.priorities.name(pid)),
                )
                .with_label("declared here")
                .with_secondary(head(block.span, "targets".len()), "targets are given here")
                .with_help(format!(
                    "add a row such as `{}: respond 1d, resolve 5d`",
                    scope.priorities.name(pid)
                )),
            );
        }
    }
    targets
}

/// A respond target clearly longer than the resolve target of the same row: the ticket would
/// have to be resolved before anyone had to respond to it. Durations are business time, so
/// only one that is longer in every unit (weeks, days, time of day) is reported.
pub(super) fn respond_after_resolve(
    respond: &ast::ClockTarget,
    resolve: &ast::ClockTarget,
    diags: &mut Vec<Diagnostic>,
) {
    let (r, s) = (&respond.duration.node, &resolve.duration.node);
    if escalation::not_after(s, r) && !escalation::not_after(r, s) {
        diags.push(
            Diagnostic::error(
                "respond-after-resolve",
                respond.duration.span,
                format!("the respond target {r} is longer than the resolve target {s}"),
            )
            .with_label("longer than the resolve target")
            .with_secondary(resolve.duration.span, "the resolve target")
            .with_help(
                "a ticket is responded to before it is resolved; make the respond target shorter, or the resolve target longer",
            ),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Stages and transitions

fn clocks_of(list: &[ast::Spanned<ClockKind>]) -> Clocks {
    let mut c = Clocks::default();
    for k in list {
        c.set(k.node);
    }
    c
}

/// What a stage does to a clock.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ClockVerb {
    Pauses,
    Stops,
    Starts,
}

impl ClockVerb {
    fn word(self) -> &'static str {
        match self {
            ClockVerb::Pauses => "pauses",
            ClockVerb::Stops => "stops",
            ClockVerb::Starts => "starts",
        }
    }
    fn what(self) -> &'static str {
        match self {
            ClockVerb::Pauses => "holds the clock still while a ticket is in the stage",
            ClockVerb::Stops => "ends the clock when a ticket enters the stage",
            ClockVerb::Starts => "sets the clock running when a ticket enters the stage",
        }
    }
}

/// A stage that pauses a clock and also stops or starts it: report each mention that
/// contradicts an earlier one, and remember the mentions.
fn clock_conflicts(
    verb: ClockVerb,
    clocks: &[ast::Spanned<ClockKind>],
    seen: &mut Vec<(ClockVerb, ClockKind, Span)>,
    diags: &mut Vec<Diagnostic>,
) {
    for c in clocks {
        let conflict = seen.iter().find(|(v, k, _)| {
            *k == c.node && (*v == ClockVerb::Pauses) != (verb == ClockVerb::Pauses)
        });
        if let Some((first, _, first_span)) = conflict {
            diags.push(
                Diagnostic::error(
                    "clock-conflict",
                    c.span,
                    format!(
                        "this stage {} the {} clock and also {} it",
                        first.word(),
                        c.node,
                        verb.word()
                    ),
                )
                .with_label(format!("`{}` here", verb.word()))
                .with_secondary(*first_span, format!("`{}` here", first.word()))
                .with_help(format!(
                    "`{}` {}, but `{}` {}; keep one of them",
                    first.word(),
                    first.what(),
                    verb.word(),
                    verb.what()
                )),
            );
        }
        seen.push((verb, c.node, c.span));
    }
}

fn check_stages(
    p: &ast::Process,
    stages: &[&ast::Stage],
    ns: &NoticeScope,
    approval_stages: &HashSet<&str>,
    has_routing: bool,
    ctx: &mut Ctx,
) -> Vec<Stage> {
    let scope = ns.scope;
    let mut out = Vec::with_capacity(stages.len());
    let mut first_initial: Option<Span> = None;
    for st in stages {
        if scope
            .stages
            .get(&st.name.name)
            .is_some_and(|id| scope.stages.span(id).start != st.name.span.start)
        {
            continue; // a duplicate, already reported
        }
        let initial = st.is(StageKind::Initial);
        let is_final = st.is(StageKind::Final);
        if initial && is_final {
            ctx.diags.push(
                Diagnostic::error(
                    "initial-and-final",
                    st.name.span,
                    format!("stage `{}` is both initial and final", st.name),
                )
                .with_label("an instance would end as it starts")
                .with_help("a process needs at least one stage between its start and its end"),
            );
        }
        if initial {
            if let Some(first) = first_initial {
                ctx.diags.push(
                    Diagnostic::error(
                        "several-initial-stages",
                        st.name.span,
                        format!("stage `{}` is a second initial stage", st.name),
                    )
                    .with_label("also initial")
                    .with_secondary(first, "the first initial stage")
                    .with_help(
                        "a process starts in exactly one stage; remove `initial` from all but one",
                    ),
                );
            } else {
                first_initial = Some(st.name.span);
            }
        }
        let mut model = Stage {
            name: st.name.name.clone(),
            label: st.label.as_ref().map(|l| l.node.clone()),
            initial,
            is_final,
            queue: None,
            pauses: Clocks::default(),
            stops: Clocks::default(),
            starts: Clocks::default(),
            notices: Vec::new(),
            recurring: Vec::new(),
            checklist: Vec::new(),
        };
        let mut queue_at: Option<Span> = None;
        let mut checklist_at: Option<Span> = None;
        let mut clock_mentions: Vec<(ClockVerb, ClockKind, Span)> = Vec::new();
        for attr in &st.attrs {
            match &attr.kind {
                StageAttrKind::Queue(target) => {
                    if let Some(first) = queue_at {
                        ctx.diags.push(
                            Diagnostic::error(
                                "duplicate-attribute",
                                attr.span,
                                "a stage has one queue",
                            )
                            .with_label("second queue")
                            .with_secondary(first, "first queue"),
                        );
                        continue;
                    }
                    queue_at = Some(attr.span);
                    model.queue = match target {
                        QueueTarget::Named(q) => ctx.queue(q).map(StageQueue::Named),
                        QueueTarget::ByRouting if !has_routing => {
                            ctx.diags.push(
                                Diagnostic::error("no-routing", attr.span, "this stage queues by routing, but the process has no routing")
                                    .with_label("no routing to follow")
                                    .with_help("add a `routing { ... }` section, or name a queue: `queue service_desk`"),
                            );
                            None
                        }
                        QueueTarget::ByRouting => Some(StageQueue::ByRouting),
                    };
                }
                StageAttrKind::Pauses(c) => {
                    clock_conflicts(ClockVerb::Pauses, c, &mut clock_mentions, &mut ctx.diags);
                    model.pauses = clocks_of(c)
                }
                StageAttrKind::Stops(c) => {
                    clock_conflicts(ClockVerb::Stops, c, &mut clock_mentions, &mut ctx.diags);
                    model.stops = clocks_of(c)
                }
                StageAttrKind::Starts(c) => {
                    clock_conflicts(ClockVerb::Starts, c, &mut clock_mentions, &mut ctx.diags);
                    model.starts = clocks_of(c)
                }
                StageAttrKind::Notify(n) => {
                    let place = notices::Place::Stage {
                        name: &st.name.name,
                        has_approval: approval_stages.contains(st.name.as_str()),
                    };
                    model
                        .notices
                        .extend(notices::check_notify(n, place, ns, ctx));
                }
                // Checked with the escalations, once routing is known (`check_recurring`).
                StageAttrKind::Every { .. } => {}
                StageAttrKind::Checklist(items) => {
                    let keyword = head(attr.span, "checklist".len());
                    if let Some(first) = checklist_at {
                        ctx.diags.push(
                            Diagnostic::error(
                                "duplicate-attribute",
                                keyword,
                                "a stage has one checklist",
                            )
                            .with_label("second checklist")
                            .with_secondary(first, "first checklist")
                            .with_help("list every item in one `checklist { ... }`"),
                        );
                        continue;
                    }
                    checklist_at = Some(keyword);
                    if is_final {
                        ctx.diags.push(
                            Diagnostic::error(
                                "checklist-on-final-stage",
                                keyword,
                                format!("final stage `{}` has a checklist", st.name),
                            )
                            .with_label("nobody works a ticket in a final stage")
                            .with_help(
                                "put the checklist on the stage where the work is done, and \
                                 `requires checklist` on the transition that leaves it",
                            ),
                        );
                    }
                    let mut names = Names::new("checklist item");
                    for item in items {
                        if names.declare(&item.name, &mut ctx.diags).is_some() {
                            model.checklist.push(ChecklistItem {
                                name: item.name.name.clone(),
                                label: item.label.as_ref().map(|l| l.node.clone()),
                            });
                        }
                    }
                }
            }
        }
        out.push(model);
    }
    if first_initial.is_none() {
        ctx.diags.push(
            Diagnostic::error(
                "no-initial-stage",
                p.name.span,
                format!("process `{}` has no initial stage", p.name),
            )
            .with_label("where do new instances start?")
            .with_help("mark one stage `initial`, e.g. `stage new initial`"),
        );
    }
    out
}

/// `place`: the process's name and the transition's index in it (where `check_spawns` puts
/// what `spawns ... with` sets).
fn check_transition(
    t: &ast::Transition,
    place: (&str, usize),
    ns: &NoticeScope,
    approval_stages: &HashSet<&str>,
    ctx: &mut Ctx,
) -> Transition {
    let scope = ns.scope;
    let from = t
        .from
        .iter()
        .map(|s| flow::resolve_stage(&scope.stages, s, &mut ctx.diags))
        .collect();
    let to = flow::resolve_stage(&scope.stages, &t.to, &mut ctx.diags);
    let mut model = Transition {
        when: None,
        effects: Vec::new(),
        name: t.name.name.clone(),
        label: t.label.as_ref().map(|l| l.node.clone()),
        from,
        to,
        roles: Vec::new(),
        people: Vec::new(),
        notices: Vec::new(),
        after: None,
        at: None,
        requires: Vec::new(),
        requires_checklist: false,
        guards: Vec::new(),
        spawns: Vec::new(),
    };
    let mut seen: [Option<Span>; 7] = [None; 7];
    for clause in &t.clauses {
        let slot = match &clause.kind {
            TransitionClauseKind::ByRoles(_) => 0,
            // One way to be automatic: after a delay, or at a time.
            TransitionClauseKind::After(_) | TransitionClauseKind::At(_) => 1,
            TransitionClauseKind::Requires(_) => 2,
            // Repeatable: each `spawns` starts a ticket (work that fans out).
            TransitionClauseKind::Spawns { .. } => 3,
            TransitionClauseKind::ByPeople(_) => 4,
            TransitionClauseKind::When(_) => 5,
            TransitionClauseKind::RequiresChecklist => 6,
            // Repeatable too: each is an effect, performed in order.
            TransitionClauseKind::Perform { action, link, with } => {
                ctx.pending_effects.push(links::PendingEffect {
                    clause: clause.span,
                    process: place.0.to_string(),
                    transition: place.1,
                    action: action.clone(),
                    link: link.clone(),
                    with: with.clone(),
                });
                continue;
            }
            // The one clause that may be repeated: each `notify` is a notification.
            TransitionClauseKind::Notify(n) => {
                let place = notices::Place::Transition {
                    name: &t.name.name,
                    to_approval: Some(t.to.as_str()).filter(|to| approval_stages.contains(to)),
                };
                model
                    .notices
                    .extend(notices::check_notify(n, place, ns, ctx));
                continue;
            }
        };
        if let Some(first) = seen[slot].filter(|_| slot != 3) {
            let help = match slot {
                4 => "list several people in one clause: `by caller, manager of caller`",
                1 => "a transition is automatic after a delay or at the time in a field, not both",
                5 => "join the conditions in one `when`: `when a == x and b == y`",
                6 => "one `requires checklist` asks for every item",
                _ => "list several roles or fields in one clause: `by role agent, team_lead`",
            };
            let message = match slot {
                1 => "this transition is automatic already",
                _ => "this clause is given twice",
            };
            ctx.diags.push(
                Diagnostic::error("duplicate-attribute", clause.span, message)
                    .with_label("given again here")
                    .with_secondary(first, "first given here")
                    .with_help(help),
            );
            continue;
        }
        seen[slot] = Some(clause.span);
        match &clause.kind {
            TransitionClauseKind::ByRoles(roles) => {
                model.roles = roles.iter().filter_map(|r| ctx.role(r)).collect()
            }
            TransitionClauseKind::ByPeople(people) => {
                model.people = people
                    .iter()
                    .filter_map(|p| people::resolve(p, people::Place::Transition, scope, ctx))
                    .collect()
            }
            TransitionClauseKind::After(d) => {
                if d.is_zero() && !too_large_within(&ctx.diags, clause.span) {
                    ctx.diags.push(
                        Diagnostic::error("zero-duration", clause.span, "an automatic transition needs a delay above zero")
                            .with_label("zero")
                            .with_help("an instance would leave the stage as soon as it arrived; merge the stages instead"),
                    );
                }
                model.after = Some(*d);
            }
            TransitionClauseKind::At(field) => {
                if let Some(f) = scope.fields.resolve(field, &mut ctx.diags) {
                    let ty = &scope.field_types[f as usize];
                    if *ty == FieldType::DateTime {
                        model.at = Some(FieldId(f));
                    } else {
                        ctx.diags.push(
                            Diagnostic::error(
                                "at-not-datetime",
                                field.span,
                                format!("`{field}` is {ty}, not a time"),
                            )
                            .with_label("`at` needs a `datetime` field")
                            .with_help(
                                "name a `datetime` field, such as `planned_start: datetime`; \
                                 for a delay after entering the stage, write `after 3d`",
                            ),
                        );
                    }
                }
            }
            TransitionClauseKind::Requires(fields) => {
                model.requires = fields
                    .iter()
                    .filter_map(|f| {
                        if f.name == "checklist" && scope.fields.get(&f.name).is_none() {
                            ctx.diags.push(checklist_in_fields(f, fields));
                            return None;
                        }
                        scope.fields.resolve(f, &mut ctx.diags).map(FieldId)
                    })
                    .collect()
            }
            // Whether the stages it leaves have a checklist is checked with the process's
            // stages (`check_checklists`).
            TransitionClauseKind::RequiresChecklist => model.requires_checklist = true,
            TransitionClauseKind::Notify(_) | TransitionClauseKind::Perform { .. } => {}
            TransitionClauseKind::When(condition) => {
                ctx.pending_guards.push(links::PendingGuard {
                    process: place.0.to_string(),
                    transition: place.1,
                    condition: condition.clone(),
                });
            }
            TransitionClauseKind::Spawns {
                process,
                link,
                with,
            } => {
                // A process that failed to parse has its syntax error already.
                let resolved = match ctx.broken.contains(&process.name) {
                    true => ctx.processes.get(&process.name),
                    false => ctx.processes.resolve(process, &mut ctx.diags),
                };
                if resolved.is_some() {
                    ctx.pending_spawns.push(super::PendingSpawn {
                        clause: clause.span,
                        process: place.0.to_string(),
                        transition: place.1,
                        index: model.spawns.len(),
                        parent: t.name.name.clone(),
                        child: process.name.clone(),
                        parent_fields: scope
                            .field_models
                            .iter()
                            .map(|f| (f.name.clone(), f.ty.clone()))
                            .collect(),
                        with: with.clone(),
                    });
                }
                let known = ctx.processes.get(&process.name).is_some();
                let link = links::spawn_link(
                    process,
                    link.as_ref(),
                    (scope, place.0, known),
                    &mut ctx.diags,
                );
                model.spawns.push(Spawn {
                    process: process.name.clone(),
                    link,
                    fields: Vec::new(),
                });
            }
        }
    }
    model
}

/// `requires notes, checklist` in a process without a field called `checklist`: the stage's
/// checklist, which is required in a clause of its own.
fn checklist_in_fields(checklist: &Ident, fields: &[Ident]) -> Diagnostic {
    let others: Vec<&str> = fields
        .iter()
        .map(Ident::as_str)
        .filter(|f| *f != "checklist")
        .collect();
    let help = match others.is_empty() {
        true => {
            "to require the stage's checklist, write `requires checklist` on its own".to_string()
        }
        false => format!(
            "`requires checklist` is a clause of its own: `requires {} requires checklist`",
            others.join(", ")
        ),
    };
    Diagnostic::error("unknown-field", checklist.span, "unknown field `checklist`")
        .with_label("no field has this name")
        .with_help(help)
}

/// `a`, `a and b`, `a, b and c`.
fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// A transition that `requires checklist` must leave only stages that have one
/// (`no-checklist`), and a checklist some transition out of its stage must require, or ticking
/// it would decide nothing (`unused-checklist`).
fn check_checklists(
    stage_items: &[&ast::Stage],
    stage_names: &Names,
    stages: &[Stage],
    transition_items: &[&ast::Transition],
    diags: &mut Vec<Diagnostic>,
) {
    let has_checklist = |name: &str| {
        stage_names
            .get(name)
            .and_then(|id| stages.get(id as usize))
            .map(|st| !st.checklist.is_empty())
    };
    let mut required: HashSet<&str> = HashSet::new();
    for t in transition_items {
        let Some(clause) = t
            .clauses
            .iter()
            .find(|c| c.kind == TransitionClauseKind::RequiresChecklist)
        else {
            continue;
        };
        let mut with = false;
        let mut without: Vec<&Ident> = Vec::new();
        for from in &t.from {
            match has_checklist(&from.name) {
                Some(true) => {
                    with = true;
                    required.insert(from.as_str());
                }
                Some(false) if !without.iter().any(|w| w.name == from.name) => without.push(from),
                // An unknown stage is reported already.
                _ => {}
            }
        }
        if without.is_empty() {
            continue;
        }
        let named = and_list(&without.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>());
        let (message, label, help) = match without.as_slice() {
            [one] => (
                format!(
                    "`{}` requires the checklist of stage `{one}`, which has none",
                    t.name
                ),
                format!("stage `{one}` has no checklist"),
                format!("give stage `{one}` a checklist: `checklist {{ done \"Work done\" }}`"),
            ),
            _ => (
                format!(
                    "`{}` requires the checklist of stages {named}, which have none",
                    t.name
                ),
                format!("stages {named} have no checklist"),
                format!(
                    "give stages {named} a checklist each: `checklist {{ done \"Work done\" }}`"
                ),
            ),
        };
        let help = match with {
            true => {
                format!("{help}; or leave them by another transition, without `requires checklist`")
            }
            false => format!("{help}; or remove `requires checklist`"),
        };
        let mut d = Diagnostic::error("no-checklist", clause.span, message)
            .with_label(label)
            .with_help(help);
        for stage in &without {
            if let Some(id) = stage_names.get(&stage.name) {
                d = d.with_secondary(stage_names.span(id), "a stage without a checklist");
            }
        }
        diags.push(d);
    }
    for st in stage_items {
        let Some(attr) = st
            .attrs
            .iter()
            .find(|a| matches!(a.kind, StageAttrKind::Checklist(_)))
        else {
            continue;
        };
        // A duplicate stage, and a final one, are reported already.
        let first = stage_names
            .get(&st.name.name)
            .is_some_and(|id| stage_names.span(id).start == st.name.span.start);
        if !first || st.is(StageKind::Final) || required.contains(st.name.as_str()) {
            continue;
        }
        diags.push(
            Diagnostic::warning(
                "unused-checklist",
                head(attr.span, "checklist".len()),
                format!("no transition out of stage `{}` requires its checklist", st.name),
            )
            .with_label("ticking its items would decide nothing")
            .with_help(format!(
                "add `requires checklist` to the transition that leaves `{}` once the work is done, or remove the checklist",
                st.name
            )),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Routing

fn check_routing(
    r: &ast::Routing,
    scope: &ProcessScope,
    stages: &[Stage],
    ctx: &mut Ctx,
) -> Vec<Route> {
    let before = error_count(&ctx.diags);
    let cond_scope = scope.cond_scope(
        "routing",
        "routing picks a queue without reading linked tickets",
    );
    let mut routes = Vec::with_capacity(r.rules.len());
    for rule in &r.rules {
        let condition = rule
            .condition
            .as_ref()
            .and_then(|c| cond_scope.resolve(c, &mut ctx.diags));
        let queue = ctx.queue(&rule.queue);
        if let (Some(queue), true) = (queue, rule.condition.is_none() || condition.is_some()) {
            routes.push(Route {
                condition,
                queue,
                text: itsmflow_dsl::format::route_rule_line(rule),
            });
        }
    }
    if !stages
        .iter()
        .any(|s| s.queue == Some(StageQueue::ByRouting))
    {
        ctx.diags.push(
            Diagnostic::warning(
                "unused-routing",
                head(r.span, "routing".len()),
                "no stage queues by routing",
            )
            .with_label("this routing is never used")
            .with_help("give a stage `queue by routing`, or remove the routing"),
        );
    }
    // Coverage findings are by position, so every rule must have been resolved. (A rule that
    // was not is reported, but possibly by the parser, before `before` was counted.)
    if error_count(&ctx.diags) > before || routes.len() != r.rules.len() {
        return routes;
    }
    let conds: Vec<Option<&Condition>> = routes.iter().map(|r| r.condition.as_ref()).collect();
    let findings = scope.domain().analyse(&conds);
    for i in findings.shadowed {
        let rule = &r.rules[i];
        ctx.diags.push(
            Diagnostic::error(
                "routing-shadowed",
                rule.span,
                "this routing rule never applies",
            )
            .with_label("earlier rules already match every ticket it would match")
            .with_help("move it above the rules that cover it, or remove it"),
        );
    }
    if let Some(case) = findings.uncovered {
        // The first-line queue, else any queue the project declares.
        let fallback = ctx
            .queue_models
            .iter()
            .find(|q| q.tier == Some(1))
            .or(ctx.queue_models.first())
            .map(|q| q.name.clone())
            .unwrap_or_else(|| "...".into());
        ctx.diags.push(
            Diagnostic::error(
                "routing-not-total",
                head(r.span, "routing".len()),
                "routing does not give every ticket a queue",
            )
            .with_label(format!("no rule matches {case}"))
            .with_help(format!("add a last rule `otherwise => {fallback}`")),
        );
    }
    routes
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{checked, problems};

    #[test]
    fn checklists_fill_the_model() {
        let text = r#"process p {
  stage s initial {
    checklist {
      accounts "Accounts created"
      badge
    }
  }
  stage t final
  transition go: s -> t requires checklist
  transition stop: s -> t
}
"#;
        let checked = checked(text);
        assert!(checked.diagnostics.is_empty(), "{:?}", checked.diagnostics);
        let project = checked.project.expect("a project");
        let p = &project.processes[0];
        let items: Vec<(&str, Option<&str>)> = p.stages[0]
            .checklist
            .iter()
            .map(|i| (i.name.as_str(), i.label.as_deref()))
            .collect();
        assert_eq!(
            items,
            [("accounts", Some("Accounts created")), ("badge", None)]
        );
        assert!(p.stages[1].checklist.is_empty());
        let required: Vec<bool> = p.transitions.iter().map(|t| t.requires_checklist).collect();
        assert_eq!(required, [true, false]);
    }

    #[test]
    fn checklists_are_checked_against_their_stages() {
        let text = r#"process p {
  fields {
    notes: text
  }
  stage a initial {
    checklist {
      x
      y
      x
    }
  }
  stage b {
    checklist {
      z
    }
  }
  stage c
  stage d final {
    checklist {
      w
    }
  }
  transition one: a -> b requires checklist or after 1d
  transition two: b, c -> d requires checklist requires checklist
  transition three: c -> d requires notes, checklist
  transition four: a -> c
}
"#;
        assert_eq!(
            problems(text),
            [
                ("duplicate-definition", "x".to_string()),
                ("checklist-on-final-stage", "checklist".to_string()),
                ("no-checklist", "requires checklist".to_string()),
                ("duplicate-attribute", "requires checklist".to_string()),
                ("unknown-field", "checklist".to_string()),
            ]
        );
        // `b` is left by `two`, which requires its checklist; `a` by `one`.
        let text = text.replace(
            "transition one: a -> b requires checklist or after 1d",
            "transition one: a -> b",
        );
        let codes: Vec<&str> = problems(&text).into_iter().map(|(c, _)| c).collect();
        assert!(codes.contains(&"unused-checklist"), "{codes:?}");
    }
}
