//! Process tests (`test "name" { ... }`), checked against the project.
//!
//! Tests are not part of the [`Project`](crate::model::Project): `itsmflow test` reads their
//! syntax trees. What is checked here is what can be known before running them: that every
//! name a step writes exists (processes, items, transitions, fields and their values, stages,
//! priorities, queues, roles, calendars, link kinds, escalation steps, checklist items), that
//! users and ticket handles are introduced before they are used, and that the words of clock
//! and approval states are ones the runner knows.
//!
//! Which process a step is about is followed through the steps: each handle keeps the process
//! it was created in, and a step without `on` means the ticket created or acted on last (an
//! `expect` acts on nothing). Where the process cannot be known (its name is unknown, or the
//! process has errors of its own and so no model), the step's process-specific names are not
//! checked: that would only repeat the first error.

use std::collections::HashMap;

use itsmflow_dsl::ast::{self, Ident, Item, Span, TestStepKind};
use itsmflow_dsl::Diagnostic;

use super::names::{did_you_mean, unknown};
use super::values::{parse_datetime, too_large_within, typed_value};
use super::Ctx;
use crate::model::{self, FieldType, Process, Service};

/// The words `expect clock C STATE` takes.
const CLOCK_STATES: [&str; 5] = ["running", "paused", "met", "breached", "not_started"];
/// The words `expect ola STATE` takes: the current stay's clock, or `none` without one (a
/// stay that ended is no longer current, so `met` is not among them).
const OLA_STATES: [&str; 4] = ["running", "paused", "breached", "none"];
/// The words `expect approval STATE` takes.
const APPROVAL_STATES: [&str; 5] = ["pending", "approved", "rejected", "expired", "none"];
/// What `expect history` may name besides transitions: the outcomes of an approval.
const APPROVAL_OUTCOMES: [&str; 3] = ["approve", "reject", "expire"];

/// Checks every test of the project, once the processes and services are checked.
pub(super) fn check_tests(
    items: &[&Item],
    processes: &[Process],
    services: &[Service],
    ctx: &mut Ctx,
) {
    let mut names: HashMap<&str, Span> = HashMap::new();
    for item in items {
        let Item::Test(test) = item else { continue };
        match names.get(test.name.name.as_str()) {
            Some(first) => ctx.diags.push(duplicate_test(&test.name, *first)),
            None => {
                names.insert(&test.name.name, test.name.span);
            }
        }
        let mut scope = Scope {
            processes,
            services,
            ctx: &mut *ctx,
            users: HashMap::new(),
            handles: HashMap::new(),
            refused_handles: HashMap::new(),
            current: None,
        };
        for (index, step) in test.steps.iter().enumerate() {
            scope.step(index, step, &test.steps[..index]);
        }
    }
}

fn duplicate_test(name: &Ident, first: Span) -> Diagnostic {
    Diagnostic::error(
        "test-duplicate-name",
        name.span,
        format!("two tests are called {:?}", name.name),
    )
    .with_label("named again here")
    .with_secondary(first, "first named here")
    .with_help("give each test a name of its own: the report tells tests apart by name")
}

/// A ticket of a test, as far as the checker knows it: the checked process it is a ticket of,
/// or `None` when that cannot be known (the error that hides it is reported elsewhere).
type Ticket<'p> = Option<&'p Process>;

/// What a test has introduced so far, step by step.
struct Scope<'a, 'p> {
    processes: &'p [Process],
    services: &'p [Service],
    ctx: &'a mut Ctx,
    /// Users declared by `user` steps, and where.
    users: HashMap<String, Span>,
    /// Handles of created tickets, with where they were created.
    handles: HashMap<String, (Span, Ticket<'p>)>,
    /// Handles whose `create` must be refused: they name no ticket.
    refused_handles: HashMap<String, Span>,
    /// The ticket created or acted on last; `None` before the first.
    current: Option<Ticket<'p>>,
}

impl<'p> Scope<'_, 'p> {
    fn push(&mut self, d: Diagnostic) {
        self.ctx.diags.push(d);
    }

    fn step(&mut self, index: usize, step: &ast::TestStep, before: &[ast::TestStep]) {
        match &step.kind {
            TestStepKind::Start(at) => self.start(index, at, before),
            TestStepKind::User {
                name,
                roles,
                manager,
            } => self.user(name, roles, manager.as_ref()),
            TestStepKind::Create {
                target,
                handle,
                actor,
                fields,
                refused,
            } => self.create(target, handle.as_ref(), actor, fields, refused.is_some()),
            TestStepKind::Perform {
                action,
                ticket,
                actor,
                fields,
                ..
            } => {
                self.actor(actor);
                if let Some(t) = self.acting_on(ticket.as_ref(), step.span) {
                    self.transition(t, action);
                    self.fields(t, fields);
                }
            }
            TestStepKind::Update {
                ticket,
                actor,
                fields,
                ..
            } => {
                self.actor(actor);
                if let Some(t) = self.acting_on(ticket.as_ref(), step.span) {
                    self.fields(t, fields);
                }
            }
            TestStepKind::Check {
                item,
                ticket,
                actor,
                ..
            } => {
                self.actor(actor);
                if let Some(t) = self.acting_on(ticket.as_ref(), step.span) {
                    self.checklist_item(t, item);
                }
            }
            TestStepKind::Vote { ticket, actor, .. }
            | TestStepKind::Claim { ticket, actor, .. } => {
                self.actor(actor);
                self.acting_on(ticket.as_ref(), step.span);
            }
            TestStepKind::Link {
                from,
                kind,
                to,
                actor,
                ..
            } => self.link(from, kind, to, actor),
            TestStepKind::Wait(wait) => self.wait(wait),
            TestStepKind::Expect {
                ticket,
                expectation,
                negated,
            } => {
                let t = match ticket {
                    Some(handle) => self.handle(handle),
                    None => self.current_ticket(step.span),
                };
                if let Some(t) = t {
                    self.expect(t, expectation);
                    if let ast::Expectation::Linked {
                        kind,
                        other,
                        names: true,
                    } = expectation
                    {
                        self.linked_as(t, kind, other, *negated);
                    }
                }
            }
        }
    }

    // -- steps --------------------------------------------------------------------------------

    /// `at T`: the first step only, once, at an instant that exists.
    fn start(&mut self, index: usize, at: &ast::Spanned<String>, before: &[ast::TestStep]) {
        let earlier = before
            .iter()
            .find(|s| matches!(s.kind, TestStepKind::Start(_)));
        if let Some(first) = earlier {
            self.push(
                Diagnostic::error("test-start-not-first", at.span, "the test starts twice")
                    .with_label("a second `at`")
                    .with_secondary(first.span, "the test starts here")
                    .with_help("remove one of them; to move time on, use `wait until`"),
            );
        } else if index > 0 {
            self.push(
                Diagnostic::error(
                    "test-start-not-first",
                    at.span,
                    "`at` must be the first step of a test",
                )
                .with_label("after other steps")
                .with_help("move it to the top; to move time on later, use `wait until`"),
            );
        }
        self.datetime(at);
    }

    /// `user NAME roles ... manager ...`.
    fn user(&mut self, name: &Ident, roles: &[Ident], manager: Option<&Ident>) {
        for role in roles {
            self.role(role);
        }
        if let Some(m) = manager {
            self.known_user(m);
        }
        if let Some(first) = self.users.get(&name.name) {
            let first = *first;
            self.push(
                Diagnostic::error(
                    "test-duplicate-user",
                    name.span,
                    format!("user `{}` is declared twice", name.name),
                )
                .with_label("declared again here")
                .with_secondary(first, "first declared here")
                .with_help("declare each user once, with all their roles"),
            );
            return;
        }
        self.users.insert(name.name.clone(), name.span);
    }

    /// `create PROCESS|item ITEM [HANDLE] as USER { ... } [refused]`.
    fn create(
        &mut self,
        target: &ast::CreateTarget,
        handle: Option<&Ident>,
        actor: &Ident,
        fields: &[ast::SpawnEntry],
        refused: bool,
    ) {
        let ticket = self.create_target(target);
        self.actor(actor);
        if let Some(t) = ticket {
            self.fields(Some(t), fields);
        }
        if let Some(h) = handle {
            self.new_handle(h, ticket, refused);
        }
        // A refused creation makes no ticket: the last one stays the one steps mean.
        if !refused {
            self.current = Some(ticket);
        }
    }

    /// The process a `create` raises a ticket of, by name or through a catalogue item.
    fn create_target(&mut self, target: &ast::CreateTarget) -> Ticket<'p> {
        match target {
            ast::CreateTarget::Process(name) => {
                if self.ctx.processes.get(&name.name).is_none() {
                    if !self.ctx.broken.contains(&name.name) {
                        let mut d = unknown("process", name, self.ctx.processes.iter());
                        d.code = "test-unknown-process";
                        self.push(d);
                    }
                    return None;
                }
                self.process(&name.name)
            }
            ast::CreateTarget::Item(name) => {
                if self.ctx.items.get(&name.name).is_none() {
                    if !self.ctx.broken.contains(&name.name) {
                        let mut d = unknown("catalogue item", name, self.ctx.items.iter());
                        d.code = "test-unknown-item";
                        self.push(d);
                    }
                    return None;
                }
                let process = self
                    .services
                    .iter()
                    .flat_map(|s| &s.items)
                    .find(|i| i.name == name.name)
                    .map(|i| i.process.as_str())?;
                self.process(process)
            }
        }
    }

    fn process(&self, name: &str) -> Ticket<'p> {
        self.processes.iter().find(|p| p.name == name)
    }

    fn new_handle(&mut self, handle: &Ident, ticket: Ticket<'p>, refused: bool) {
        let first = self
            .handles
            .get(&handle.name)
            .map(|(s, _)| *s)
            .or_else(|| self.refused_handles.get(&handle.name).copied());
        if let Some(first) = first {
            self.push(
                Diagnostic::error(
                    "test-duplicate-handle",
                    handle.span,
                    format!("`{}` already names a ticket of this test", handle.name),
                )
                .with_label("named again here")
                .with_secondary(first, "first named here")
                .with_help("give each ticket a name of its own"),
            );
            return;
        }
        if refused {
            self.refused_handles
                .insert(handle.name.clone(), handle.span);
        } else {
            self.handles
                .insert(handle.name.clone(), (handle.span, ticket));
        }
    }

    /// `link FROM KIND TO as USER`: a kind `FROM`'s process declares, to a ticket of the
    /// process it links to.
    fn link(&mut self, from: &Ident, kind: &Ident, to: &Ident, actor: &Ident) {
        self.actor(actor);
        let from_ticket = self.handle(from);
        let to_ticket = self.handle(to);
        if let Some(t) = from_ticket {
            self.current = Some(t);
        }
        let (Some(Some(p)), Some(to_ticket)) = (from_ticket, to_ticket) else {
            return;
        };
        let Some(decl) = self.link_kind(p, kind) else {
            return;
        };
        if let Some(other) = to_ticket.filter(|o| o.name != decl.process) {
            self.push(
                Diagnostic::error(
                    "test-link-mismatch",
                    to.span,
                    format!(
                        "`{}` links to a ticket of `{}`, but `{}` is a ticket of `{}`",
                        kind.name, decl.process, to.name, other.name
                    ),
                )
                .with_label(format!("a ticket of `{}`", other.name))
                .with_help(format!("link a ticket of `{}` here", decl.process)),
            );
        }
    }

    /// `wait ...`: a calendar that exists, an instant that exists.
    fn wait(&mut self, wait: &ast::Wait) {
        match wait {
            ast::Wait::Business {
                calendar: Some(cal),
                ..
            } if cal.name != "24x7"
                && self.ctx.calendars.get(&cal.name).is_none()
                && !self.ctx.broken.contains(&cal.name) =>
            {
                let mut d = unknown("calendar", cal, self.ctx.calendars.iter());
                d.code = "test-unknown-calendar";
                self.push(d);
            }
            ast::Wait::Until(at) => self.datetime(at),
            _ => {}
        }
    }

    // -- expectations -------------------------------------------------------------------------

    fn expect(&mut self, ticket: Ticket<'p>, e: &ast::Expectation) {
        use ast::Expectation as E;
        // Names of the project, or of the test, are checked whatever the ticket's process.
        match e {
            E::Queue(Some(q)) => self.queue(q),
            E::Holder(Some(user)) => self.known_user(user),
            E::Notified { recipient, .. } => match recipient {
                ast::Notified::Role(role) => self.role(role),
                ast::Notified::User(user) => self.known_user(user),
            },
            E::Clock {
                check: ast::ClockCheck::State(state),
                ..
            } => self.state_word(state, &CLOCK_STATES, "a clock"),
            E::Clock {
                check: ast::ClockCheck::Due(at),
                ..
            } => self.datetime(at),
            E::Ola {
                check: ast::ClockCheck::State(state),
                ..
            } => self.state_word(state, &OLA_STATES, "an OLA clock"),
            E::Ola {
                check: ast::ClockCheck::Due(at),
                ..
            } => self.datetime(at),
            E::OlaBreachedIn(q) => self.queue(q),
            E::Approval { state, .. } => self.state_word(state, &APPROVAL_STATES, "an approval"),
            E::Linked {
                other,
                names: false,
                ..
            } => {
                self.handle(other);
            }
            _ => {}
        }
        let Some(p) = ticket else { return };
        match e {
            E::Stage(stage) => {
                let names = p.stages.iter().map(|s| s.name.as_str());
                self.name_in(p, stage, names, "stage", "test-unknown-stage");
            }
            E::Priority(Some(priority)) => self.priority(p, priority),
            E::Field { field, value } => {
                if let Some(f) = self.field(p, field) {
                    if let Some(v) = value {
                        self.value(f, v);
                    }
                }
            }
            E::FieldHas { field, value } => {
                if let Some(f) = self.field(p, field) {
                    self.element(f, field, value);
                }
            }
            E::Escalated { clock, threshold } => self.escalation(p, clock, threshold),
            E::Linked { kind, .. } => {
                self.link_kind(p, kind);
            }
            E::Checked(item) => self.checklist_item(Some(p), item),
            E::History(actions) => {
                for action in actions {
                    if !APPROVAL_OUTCOMES.contains(&action.name.as_str()) {
                        self.transition(Some(p), action);
                    }
                }
            }
            _ => {}
        }
    }

    /// `expect linked KIND as NAME`: names the linked ticket, a ticket of the process the kind
    /// links to. `not` would name nothing.
    fn linked_as(&mut self, ticket: Ticket<'p>, kind: &Ident, name: &Ident, negated: bool) {
        if negated {
            self.push(
                Diagnostic::error(
                    "test-negated-name",
                    name.span,
                    format!("`not linked ... as {}` names no ticket", name.name),
                )
                .with_label("nothing is linked to name")
                .with_help("drop `as` to expect no link to a named ticket, or drop `not`"),
            );
            return;
        }
        let target = ticket.and_then(|p| {
            p.links
                .iter()
                .find(|l| l.name == kind.name)
                .and_then(|l| self.processes.iter().find(|q| q.name == l.process))
        });
        self.new_handle(name, target, false);
    }

    fn priority(&mut self, p: &Process, priority: &Ident) {
        if p.priorities.is_empty() {
            self.push(
                Diagnostic::error(
                    "test-unknown-priority",
                    priority.span,
                    format!("`{}` has no priorities", p.name),
                )
                .with_label("its tickets have none")
                .with_help("expect `priority none`, or declare the process's priorities"),
            );
            return;
        }
        let names = p.priorities.iter().map(String::as_str);
        self.name_in(p, priority, names, "priority", "test-unknown-priority");
    }

    /// `expect escalated CLOCK THRESHOLD`: the process escalates on that clock at that
    /// threshold, or the expectation could never hold (and `not` would always hold).
    fn escalation(
        &mut self,
        p: &Process,
        clock: &ast::Spanned<ast::ClockKind>,
        threshold: &ast::Spanned<ast::Threshold>,
    ) {
        let steps: Vec<model::Threshold> = p
            .escalations
            .iter()
            .filter(|e| e.clock == clock.node)
            .flat_map(|e| e.steps.iter().map(|s| s.threshold))
            .collect();
        let wanted = model_threshold(threshold.node);
        if steps.iter().any(|t| same_threshold(*t, wanted)) {
            return;
        }
        let d = Diagnostic::error(
            "test-unknown-escalation",
            threshold.span,
            format!(
                "`{}` has no escalation step at {wanted} of the {} clock",
                p.name, clock.node
            ),
        )
        .with_label("no step at this threshold");
        let list: Vec<String> = steps.iter().map(ToString::to_string).collect();
        self.push(match list.is_empty() {
            true => d.with_help(format!(
                "`{}` does not escalate on the {} clock",
                p.name, clock.node
            )),
            false => d.with_help(format!(
                "its steps on the {} clock are at: {}",
                clock.node,
                list.join(", ")
            )),
        });
    }

    // -- names ----------------------------------------------------------------------------------

    /// `as USER`: a user declared by an earlier `user` step.
    fn actor(&mut self, user: &Ident) {
        self.known_user(user);
    }

    fn known_user(&mut self, user: &Ident) {
        if self.users.contains_key(&user.name) {
            return;
        }
        let d = Diagnostic::error(
            "test-unknown-user",
            user.span,
            format!("no `user` step before this declares `{}`", user.name),
        )
        .with_label("not declared yet");
        let declared = self.users.keys().map(String::as_str);
        let d = match did_you_mean(&user.name, declared) {
            Some(s) => d.with_help(format!("did you mean `{s}`?")),
            None => d.with_help(format!(
                "declare the user in a step before: `user {}`, with `roles ...` if they need any",
                user.name
            )),
        };
        self.push(d);
    }

    fn role(&mut self, role: &Ident) {
        if self.ctx.roles.get(&role.name).is_none() && !self.ctx.broken.contains(&role.name) {
            let mut d = unknown("role", role, self.ctx.roles.iter());
            d.code = "test-unknown-role";
            self.push(d);
        }
    }

    fn queue(&mut self, queue: &Ident) {
        if self.ctx.queues.get(&queue.name).is_none() && !self.ctx.broken.contains(&queue.name) {
            let mut d = unknown("queue", queue, self.ctx.queues.iter());
            d.code = "test-unknown-queue";
            self.push(d);
        }
    }

    /// `ident` is one of the `names` of process `p`, else `code` is reported, with a close
    /// name. The message names the process: a step without `on` does not.
    fn name_in<'n>(
        &mut self,
        p: &Process,
        ident: &Ident,
        names: impl Iterator<Item = &'n str>,
        kind: &str,
        code: &'static str,
    ) {
        let names: Vec<&str> = names.collect();
        if names.contains(&ident.name.as_str()) {
            return;
        }
        let mut d = unknown(kind, ident, names.into_iter());
        d.code = code;
        d.message = format!("`{}` has no {kind} `{}`", p.name, ident.name);
        self.push(d);
    }

    /// A clock or approval state: one of the words the runner knows.
    fn state_word(&mut self, state: &Ident, words: &[&str], what: &str) {
        if words.contains(&state.name.as_str()) {
            return;
        }
        let d = Diagnostic::error(
            "test-unknown-state",
            state.span,
            format!("`{}` is not {what} state", state.name),
        )
        .with_label("not a state");
        self.push(match did_you_mean(&state.name, words.iter().copied()) {
            Some(s) => d.with_help(format!("did you mean `{s}`?")),
            None => d.with_help(format!("the states are: {}", words.join(", "))),
        });
    }

    /// An instant as `at`, `wait until` and `due` write it, which must exist.
    fn datetime(&mut self, at: &ast::Spanned<String>) {
        if parse_datetime(&at.node).is_none() {
            self.push(
                Diagnostic::error(
                    "test-invalid-datetime",
                    at.span,
                    format!("`{}` is not a valid date and time", at.node),
                )
                .with_label("no such date or time")
                .with_help("write `YYYY-MM-DDThh:mm`, optionally with seconds and `Z` or an offset such as `+01:00`"),
            );
        }
    }

    fn transition(&mut self, ticket: Ticket<'p>, action: &Ident) {
        let Some(p) = ticket else { return };
        let names = p.transitions.iter().map(|t| t.name.as_str());
        self.name_in(p, action, names, "transition", "test-unknown-transition");
    }

    /// An item of a checklist of some stage of the ticket's process (which stage the ticket
    /// will be in is known only when the test runs).
    fn checklist_item(&mut self, ticket: Ticket<'p>, item: &Ident) {
        let Some(p) = ticket else { return };
        let mut names: Vec<&str> = Vec::new();
        for i in p.stages.iter().flat_map(|s| &s.checklist) {
            if !names.contains(&i.name.as_str()) {
                names.push(&i.name);
            }
        }
        if names.contains(&item.name.as_str()) {
            return;
        }
        let no_checklists = names.is_empty();
        let mut d = unknown("checklist item", item, names.into_iter());
        d.code = "test-unknown-checklist-item";
        d.message = format!("`{}` has no checklist item `{}`", p.name, item.name);
        if no_checklists {
            d = d.with_help(format!("no stage of `{}` has a checklist", p.name));
        }
        self.push(d);
    }

    fn link_kind<'q>(&mut self, p: &'q Process, kind: &Ident) -> Option<&'q model::LinkDecl> {
        let decl = p.links.iter().find(|l| l.name == kind.name);
        if decl.is_none() {
            let names = p.links.iter().map(|l| l.name.as_str());
            let mut d = unknown("link", kind, names);
            d.code = "test-unknown-link";
            d.message = format!("`{}` has no link `{}`", p.name, kind.name);
            if p.links.is_empty() {
                d = d.with_help(format!("`{}` declares no links", p.name));
            }
            self.push(d);
        }
        decl
    }

    // -- tickets ------------------------------------------------------------------------------

    /// The ticket a step acts on (`on NAME`, else the current one), which it makes current.
    fn acting_on(&mut self, on: Option<&Ident>, step: Span) -> Option<Ticket<'p>> {
        let ticket = match on {
            Some(handle) => self.handle(handle),
            None => self.current_ticket(step),
        };
        if ticket.is_some() {
            self.current = ticket;
        }
        ticket
    }

    /// The ticket a step without `on` means; reported when there is none yet.
    fn current_ticket(&mut self, step: Span) -> Option<Ticket<'p>> {
        if self.current.is_none() {
            self.push(
                Diagnostic::error(
                    "test-no-ticket",
                    step,
                    "this step needs a ticket, and none is created before it",
                )
                .with_label("which ticket?")
                .with_help("create one first: `create PROCESS as USER { ... }`"),
            );
        }
        self.current
    }

    /// The ticket a handle names; reported when none does yet.
    fn handle(&mut self, handle: &Ident) -> Option<Ticket<'p>> {
        if let Some((_, t)) = self.handles.get(&handle.name) {
            return Some(*t);
        }
        let d = Diagnostic::error(
            "test-unknown-handle",
            handle.span,
            format!("no ticket is called `{}` here", handle.name),
        );
        let d = match self.refused_handles.get(&handle.name) {
            Some(refused) => d.with_label("its creation is refused").with_secondary(
                *refused,
                "this `create` must be refused, so makes no ticket",
            ),
            None => {
                let d = d.with_label("not created before this step");
                match did_you_mean(&handle.name, self.handles.keys().map(String::as_str)) {
                    Some(s) => d.with_help(format!("did you mean `{s}`?")),
                    None => d.with_help(format!(
                        "name the ticket where it is created: `create PROCESS {} as USER`",
                        handle.name
                    )),
                }
            }
        };
        self.push(d);
        None
    }

    // -- fields -------------------------------------------------------------------------------

    /// `{ FIELD: VALUE, ... }` of a create, perform or update: fields of the ticket's process,
    /// each once, with values of their types.
    fn fields(&mut self, ticket: Ticket<'p>, entries: &[ast::SpawnEntry]) {
        let Some(p) = ticket else { return };
        for (i, entry) in entries.iter().enumerate() {
            let Some(field) = self.field(p, &entry.field) else {
                continue;
            };
            if let Some(first) = entries[..i]
                .iter()
                .find(|e| e.field.name == entry.field.name)
            {
                self.push(
                    Diagnostic::error(
                        "test-duplicate-field",
                        entry.field.span,
                        format!("`{}` is set twice", entry.field.name),
                    )
                    .with_label("set again here")
                    .with_secondary(first.field.span, "first set here")
                    .with_help("remove one of them"),
                );
                continue;
            }
            self.value(field, &entry.value);
        }
    }

    fn field<'q>(&mut self, p: &'q Process, field: &Ident) -> Option<&'q model::Field> {
        let found = p.fields.iter().find(|f| f.name == field.name);
        if found.is_none() {
            let names = p.fields.iter().map(|f| f.name.as_str());
            let mut d = unknown("field", field, names);
            d.code = "test-unknown-field";
            d.message = format!("`{}` has no field `{}`", p.name, field.name);
            self.push(d);
        }
        found
    }

    /// A value for a field: of its type, as a `default` is written. A person field takes a
    /// user of the test (a bare name) or a name in quotes.
    fn value(&mut self, field: &model::Field, value: &ast::Literal) {
        if self.test_user(&field.ty, value) {
            return;
        }
        // A `list(person)`'s elements are users of the test as well: `[ann, "bob"]`.
        if let (Some(FieldType::Person), ast::LiteralKind::List(elements)) =
            (field.ty.element(), &value.kind)
        {
            for (i, e) in elements.iter().enumerate() {
                if !self.test_user(&FieldType::Person, e) {
                    self.typed(&format!("{}[{i}]", field.name), &FieldType::Person, e);
                }
            }
            return;
        }
        self.typed(&field.name, &field.ty, value);
    }

    /// `expect field F has V`: `F` is a list and `V` a value of its elements.
    fn element(&mut self, field: &model::Field, name: &Ident, value: &ast::Literal) {
        let Some(element) = field.ty.element() else {
            self.push(
                Diagnostic::error(
                    "test-not-a-list",
                    name.span,
                    format!("`{name}` is {}, not a list", field.ty),
                )
                .with_label("`has` asks for an element of a list field")
                .with_help(format!(
                    "expect its one value: `expect field {name} == ...`"
                )),
            );
            return;
        };
        if !self.test_user(element, value) {
            self.typed(&field.name, element, value);
        }
    }

    /// Whether `value` is a bare name given for a person: a user of the test (checked).
    fn test_user(&mut self, ty: &FieldType, value: &ast::Literal) -> bool {
        let (FieldType::Person, ast::LiteralKind::Symbol(user)) = (ty, &value.kind) else {
            return false;
        };
        let ident = Ident {
            name: user.clone(),
            span: value.span,
        };
        self.known_user(&ident);
        true
    }

    /// `value` typed as `ty` for the field (or element) `name`, as a `default` is.
    fn typed(&mut self, name: &str, ty: &FieldType, value: &ast::Literal) {
        if let Err(d) = typed_value(name, ty, value) {
            // A number too large was reported by the parser, which left 0 in its place.
            if d.code == "unknown-value" && too_large_within(&self.ctx.diags, value.span) {
                return;
            }
            let mut d = *d;
            d.code = "test-invalid-value";
            self.push(d);
        }
    }
}

fn model_threshold(t: ast::Threshold) -> model::Threshold {
    match t {
        ast::Threshold::Percent(n) => model::Threshold::Percent(n),
        ast::Threshold::After(d) => model::Threshold::After(d),
    }
}

/// Thresholds compare by what they mean: `1h` is `60m`.
fn same_threshold(a: model::Threshold, b: model::Threshold) -> bool {
    match (a, b) {
        (model::Threshold::Percent(x), model::Threshold::Percent(y)) => x == y,
        (model::Threshold::After(x), model::Threshold::After(y)) => {
            x.days_and_seconds() == y.days_and_seconds()
        }
        _ => false,
    }
}
