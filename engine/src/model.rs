//! The checked model of a project: every name resolved to an index, every value typed, every
//! table compiled to a lookup, every rule compiled to a rhai AST. A [`Project`] exists only for
//! input that checked without errors, so the runtime never re-validates a definition.

use std::collections::BTreeSet;
use std::fmt;

use chrono::NaiveDate;
use chrono_tz::Tz;

pub use itsmflow_dsl::ast::{ClockKind, CmpOp, Duration, OutcomeKind};

use crate::graph::ProcessGraph;

macro_rules! id_type {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {$(
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub u32);
        impl $name {
            pub fn index(self) -> usize {
                self.0 as usize
            }
        }
    )*};
}

id_type!(
    /// A calendar of the project.
    CalendarId,
    /// A role of the project.
    RoleId,
    /// A queue of the project.
    QueueId,
    /// A process of the project.
    ProcessId,
    /// A field of one process.
    FieldId,
    /// A stage of one process.
    StageId,
    /// A transition (action) of one process.
    TransitionId,
    /// A priority level of one process; lower is more urgent (the first declared is 0).
    PriorityId,
    /// A rhai rule of one process.
    RuleId,
    /// A link kind one process declares (`links { caused_by: one problem }`).
    LinkId,
);

/// Everything a set of `.itsm` files defines, checked.
#[derive(Debug)]
pub struct Project {
    pub calendars: Vec<Calendar>,
    pub roles: Vec<Role>,
    pub queues: Vec<Queue>,
    pub processes: Vec<Process>,
    /// The service catalogue, in the order declared.
    pub services: Vec<Service>,
}

impl Project {
    pub fn process(&self, name: &str) -> Option<&Process> {
        self.processes.iter().find(|p| p.name == name)
    }
    pub fn queue(&self, id: QueueId) -> &Queue {
        &self.queues[id.index()]
    }
    pub fn role(&self, id: RoleId) -> &Role {
        &self.roles[id.index()]
    }
}

/// A service of the catalogue: what users know by name, who owns it, when it is supported,
/// the teams behind it, the targets agreed for it, and what can be requested of it.
#[derive(Clone, Debug)]
pub struct Service {
    pub name: String,
    pub label: Option<String>,
    pub description: Option<String>,
    /// The role whose holders answer for it.
    pub owner: Option<RoleId>,
    /// The calendar it is supported on: its targets run on it unless a row names another.
    pub calendar: Option<CalendarRef>,
    /// The queues that work it, first line first.
    pub queues: Vec<QueueId>,
    /// Targets by priority name, overriding a process's own for tickets of this service (a
    /// process whose `service` field names it and that has a priority of that name).
    pub targets: Vec<(String, Target)>,
    pub items: Vec<CatalogueItem>,
}

/// Something users can request of a service (a request type): raised as a ticket of
/// `process`, with the fields `presets` fixes, and `requires` fields it needs besides the
/// process's own required ones.
#[derive(Clone, Debug)]
pub struct CatalogueItem {
    pub name: String,
    pub label: Option<String>,
    pub description: Option<String>,
    pub process: String,
    /// Fields of `process` and the values the item gives them (typed as those fields).
    pub presets: Vec<(FieldId, Value)>,
    /// Fields of `process` a ticket for this item must have at creation.
    pub requires: Vec<FieldId>,
}

impl Project {
    pub fn service(&self, name: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.name == name)
    }

    /// A catalogue item by name, with its service.
    pub fn item(&self, name: &str) -> Option<(&Service, &CatalogueItem)> {
        self.services
            .iter()
            .find_map(|s| s.items.iter().find(|i| i.name == name).map(|i| (s, i)))
    }
}

/// Which calendar a clock runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CalendarRef {
    /// The built-in `24x7`.
    AlwaysOpen,
    Named(CalendarId),
}

/// Business hours in a time zone, minus holidays.
#[derive(Clone, Debug)]
pub struct Calendar {
    pub name: String,
    pub label: Option<String>,
    pub timezone: Tz,
    /// Per weekday (Monday first): open ranges in minutes since local midnight, sorted and
    /// disjoint; `(480, 1020)` is 08:00-17:00.
    pub week: [Vec<(u32, u32)>; 7],
    pub holidays: BTreeSet<NaiveDate>,
    /// Its open intervals as computed so far and its week summarised, shared by every
    /// computation on it (see `calendar/index.rs`): `CalendarIndex::default()` to start, and
    /// again if the fields above are changed (a clone starts empty).
    pub index: crate::calendar::CalendarIndex,
}

#[derive(Clone, Debug)]
pub struct Role {
    pub name: String,
    pub label: Option<String>,
}

/// How tasks in a queue reach agents.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Assignment {
    /// Agents pull (claim) tasks.
    #[default]
    Pull,
    RoundRobin,
    LeastLoaded,
}

impl Assignment {
    pub const NAMES: [&'static str; 2] = ["round_robin", "least_loaded"];

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "round_robin" => Some(Assignment::RoundRobin),
            "least_loaded" => Some(Assignment::LeastLoaded),
            _ => None,
        }
    }
}

/// A resolver group.
#[derive(Clone, Debug)]
pub struct Queue {
    pub name: String,
    pub label: Option<String>,
    pub tier: Option<u32>,
    pub escalates_to: Option<QueueId>,
    pub members: Vec<RoleId>,
    pub assignment: Assignment,
    /// Its operational-level targets: its own, else its tier's (see [`Ola`]).
    pub ola: Option<Ola>,
}

/// Operational-level targets (OLA) of a queue: how long a ticket may stay with the group, per
/// priority, measured per stay (see `runtime/ola.rs`). Only a resolve target: claims are not
/// part of a ticket's history, so when a group picked a ticket up cannot be measured from it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ola {
    /// `Some(n)` when the queue has no targets of its own and takes those of `tier n`.
    pub tier: Option<u32>,
    /// The block's `targets on CALENDAR`.
    pub calendar: Option<CalendarRef>,
    pub rows: Vec<OlaRow>,
}

/// One row of an OLA: a priority (by name, as every process that uses the queue has its
/// own priorities) or `default`, its resolve target, and its own calendar if it names one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OlaRow {
    /// `None` for the `default` row.
    pub priority: Option<String>,
    pub resolve: Duration,
    pub calendar: Option<CalendarRef>,
}

impl OlaRow {
    /// The row's name as written: the priority, or `default`.
    pub fn name(&self) -> &str {
        self.priority.as_deref().unwrap_or("default")
    }
}

impl Ola {
    /// The row for a priority (by name): its own, else `default` (also for no priority).
    pub fn row(&self, priority: Option<&str>) -> Option<&OlaRow> {
        priority
            .and_then(|p| self.rows.iter().find(|r| r.priority.as_deref() == Some(p)))
            .or_else(|| self.rows.iter().find(|r| r.priority.is_none()))
    }

    /// The calendar a row runs on: the row's, else the block's; `None` leaves it to the
    /// process (the calendar of its own target for the priority, else `24x7`).
    pub fn calendar_of(&self, row: &OlaRow) -> Option<CalendarRef> {
        row.calendar.or(self.calendar)
    }
}

/// The type of a process field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FieldType {
    Text,
    /// A user of the tenant, by name.
    Person,
    Int,
    Bool,
    Duration,
    DateTime,
    Enum(Vec<String>),
    /// `list(T)`: any number of values of `T` (never itself a list: the checker refuses
    /// `nested-list`). A `list(service)` is a list of the catalogue's services, an enum; it is
    /// not the ticket's service, whose targets apply.
    List(Box<FieldType>),
}

impl FieldType {
    pub const NAMES: [&'static str; 6] = ["text", "person", "int", "bool", "duration", "datetime"];

    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "text" => FieldType::Text,
            "person" => FieldType::Person,
            "int" => FieldType::Int,
            "bool" => FieldType::Bool,
            "duration" => FieldType::Duration,
            "datetime" => FieldType::DateTime,
            _ => return None,
        })
    }

    /// Values an enum or bool field can take, in order; `None` for unbounded types.
    pub fn finite_values(&self) -> Option<usize> {
        match self {
            FieldType::Enum(v) => Some(v.len()),
            FieldType::Bool => Some(2),
            _ => None,
        }
    }

    /// The type of a list's elements; `None` for a type that is not a list.
    pub fn element(&self) -> Option<&FieldType> {
        match self {
            FieldType::List(element) => Some(element),
            _ => None,
        }
    }

    /// Whether it holds people: a `person` field, or a `list(person)`.
    pub fn holds_people(&self) -> bool {
        matches!(self, FieldType::Person)
            || matches!(self, FieldType::List(element) if **element == FieldType::Person)
    }
}

impl fmt::Display for FieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldType::Text => f.write_str("text"),
            FieldType::Person => f.write_str("person"),
            FieldType::Int => f.write_str("int"),
            FieldType::Bool => f.write_str("bool"),
            FieldType::Duration => f.write_str("duration"),
            FieldType::DateTime => f.write_str("datetime"),
            FieldType::Enum(values) => write!(f, "enum({})", values.join(", ")),
            FieldType::List(element) => write!(f, "list({element})"),
        }
    }
}

/// A typed value of a field.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Value {
    /// Shared, not copied: every change copies the instance's fields, which it mostly leaves
    /// as they were.
    Text(std::sync::Arc<str>),
    Int(i64),
    Bool(bool),
    /// Index into the field's enum values.
    Enum(u32),
    /// Business duration, normalised to (days, seconds).
    Duration(u64, u64),
    /// Seconds since the Unix epoch, UTC.
    DateTime(i64),
    /// The elements of a `list(T)` field, in order, each a value of `T`. Shared, as text is.
    List(std::sync::Arc<[Value]>),
}

impl Value {
    /// The people a `person` or `list(person)` field's value names: its non-blank user names,
    /// trimmed, in order, once each.
    pub fn people(&self) -> Vec<std::sync::Arc<str>> {
        let mut out: Vec<std::sync::Arc<str>> = Vec::new();
        let mut add = |v: &Value| {
            if let Value::Text(name) = v {
                let name = name.trim();
                if !name.is_empty() && !out.iter().any(|n| &**n == name) {
                    out.push(std::sync::Arc::from(name));
                }
            }
        };
        match self {
            Value::List(elements) => elements.iter().for_each(&mut add),
            other => add(other),
        }
        out
    }
}

#[derive(Clone, Debug)]
pub struct Field {
    pub name: String,
    /// A field declared `service` is an enum of the catalogue's services, by name.
    pub ty: FieldType,
    pub required: bool,
    pub default: Option<Value>,
}

/// Priority from a table over enum (or bool) fields, as a dense lookup: the cell of a
/// combination of value indices `(v0, v1, ..)` is at `v0 * n1 * n2.. + v1 * n2.. + ..`.
#[derive(Clone, Debug)]
pub struct PriorityTable {
    pub fields: Vec<FieldId>,
    /// Number of values of each field in `fields`.
    pub radix: Vec<u32>,
    pub cells: Vec<PriorityId>,
}

impl PriorityTable {
    /// The priority for the value index `value` gives of each of `fields` (`None` for a field
    /// that has none, which leaves the priority undecided).
    pub fn lookup(&self, value: impl FnMut(FieldId) -> Option<u32>) -> Option<PriorityId> {
        self.cells.get(self.cell(value)?).copied()
    }

    /// The index in `cells` of the combination `value` gives (`None` as for [`Self::lookup`]):
    /// the cell a ticket's priority comes from, for explaining it.
    pub fn cell(&self, mut value: impl FnMut(FieldId) -> Option<u32>) -> Option<usize> {
        if self.fields.len() != self.radix.len() {
            return None;
        }
        let mut index = 0usize;
        for (f, n) in self.fields.iter().zip(&self.radix) {
            let v = value(*f)?;
            if v >= *n {
                return None;
            }
            index = index * (*n as usize) + v as usize;
        }
        (index < self.cells.len()).then_some(index)
    }
}

/// Respond and resolve targets of one priority.
#[derive(Clone, Debug)]
pub struct Target {
    pub calendar: CalendarRef,
    pub respond: Option<Duration>,
    pub resolve: Option<Duration>,
}

impl Target {
    pub fn of(&self, clock: ClockKind) -> Option<Duration> {
        match clock {
            ClockKind::Respond => self.respond,
            ClockKind::Resolve => self.resolve,
        }
    }
}

/// Which clocks a stage affects.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Clocks {
    pub respond: bool,
    pub resolve: bool,
}

impl Clocks {
    pub fn set(&mut self, clock: ClockKind) {
        match clock {
            ClockKind::Respond => self.respond = true,
            ClockKind::Resolve => self.resolve = true,
        }
    }
    pub fn has(&self, clock: ClockKind) -> bool {
        match clock {
            ClockKind::Respond => self.respond,
            ClockKind::Resolve => self.resolve,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StageQueue {
    Named(QueueId),
    ByRouting,
}

#[derive(Clone, Debug)]
pub struct Stage {
    pub name: String,
    pub label: Option<String>,
    pub initial: bool,
    pub is_final: bool,
    pub queue: Option<StageQueue>,
    /// Clocks that pause while an instance is in this stage.
    pub pauses: Clocks,
    /// Clocks that stop (their target met) when an instance enters this stage.
    pub stops: Clocks,
    /// Clocks that start when an instance enters this stage (otherwise at creation).
    pub starts: Clocks,
    /// Sent when an instance enters this stage.
    pub notices: Vec<Notice>,
    /// `every D => ...`: actions repeated while an instance stays in this stage.
    pub recurring: Vec<Recurring>,
    /// `checklist { ... }`: items ticked off while a ticket is in the stage (again from none
    /// each time it enters).
    pub checklist: Vec<ChecklistItem>,
}

/// An item of a stage's checklist: its name (how the API and tests address it) and label.
#[derive(Clone, Debug)]
pub struct ChecklistItem {
    pub name: String,
    pub label: Option<String>,
}

/// `every 30m when priority == P1 => notify role incident_manager "..."`: while an instance
/// is in the stage, every `period` of wall-clock time after it entered, the actions run if the
/// condition holds then. Periods missed while no scheduler ran are made up by one run.
#[derive(Clone, Debug)]
pub struct Recurring {
    pub period: Duration,
    pub condition: Option<Condition>,
    pub actions: Vec<EscalationAction>,
}

/// Who a notification goes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recipient {
    /// Every holder of a role.
    Role(RoleId),
    /// One person the ticket names.
    Person(PersonRef),
    /// The approvers of the open approval level who have not voted yet.
    Approvers,
}

/// A piece of a message: text as written, or a value of the ticket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TemplatePart {
    Text(String),
    /// `{field}`: the field's value as the API shows it (empty when unset).
    Field(FieldId),
    /// `{id}`
    Id,
    /// `{process}`: the process's name.
    Process,
    /// `{stage}`: the stage's label, else its name.
    Stage,
    /// `{priority}`
    Priority,
}

/// A notification a definition sends: to whom, what it says (the engine's own words when
/// `message` is `None`), and whether it waits for business hours.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    pub to: Vec<Recipient>,
    pub message: Option<Vec<TemplatePart>>,
    pub business_hours: bool,
}

#[derive(Clone, Debug)]
pub struct Transition {
    pub name: String,
    pub label: Option<String>,
    pub from: Vec<StageId>,
    pub to: StageId,
    /// Roles allowed to perform it; with `people` empty too, anyone may.
    pub roles: Vec<RoleId>,
    /// People the ticket names who may perform it (besides the holders of `roles`).
    pub people: Vec<PersonRef>,
    /// Sent when it is performed.
    pub notices: Vec<Notice>,
    /// Performed automatically this long after entering a `from` stage.
    pub after: Option<Duration>,
    /// `at FIELD`: performed automatically when the instant in this `datetime` field comes (at
    /// once if it has passed when the instance enters a `from` stage; never while it is unset).
    pub at: Option<FieldId>,
    pub requires: Vec<FieldId>,
    /// `requires checklist`: every item of the checklist of the stage it leaves is ticked.
    pub requires_checklist: bool,
    /// Rules that must all hold for it to be performed.
    pub guards: Vec<RuleId>,
    /// Instances of other processes started (and linked) by this transition, in order: work
    /// that fans out, each part a ticket with its own queue, holder and clocks.
    pub spawns: Vec<Spawn>,
    /// `when CONDITION`: it may be performed only while this holds (it may read linked
    /// tickets).
    pub when: Option<Guard>,
    /// `then perform ACTION on LINK`: transitions performed on linked tickets with it, in the
    /// same transaction, in order.
    pub effects: Vec<Effect>,
}

/// A transition's `when`: the condition, and its text as written (canonical layout) to say
/// which condition refused an action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Guard {
    pub condition: Condition,
    pub text: String,
}

/// `then perform resolve on incidents with { resolution: root_cause }`: performing the
/// transition also performs `action` on every ticket linked through `link` whose stage allows
/// it (the others are left alone), giving it the fields `with` sets, as one recorded action on
/// each, under each one's version check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Effect {
    pub link: LinkId,
    /// A transition of the linked process, by name (the linked tickets may run another version
    /// of it, so it is looked up in each one's own definition).
    pub action: String,
    /// The linked ticket's fields set with it, from this ticket's fields or literals.
    pub fields: Vec<SpawnField>,
}

/// How many tickets a link kind allows, seen from the declaring process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cardinality {
    /// At most one.
    One,
    Many,
}

/// A link kind a process declares: `caused_by: one problem` (stored from this process), or
/// `incidents: many incident via caused_by` (the `caused_by` links of incidents that point
/// here, read from this side; stored from the other side, so one link is one row).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkDecl {
    pub name: String,
    /// The other process, by name.
    pub process: String,
    pub cardinality: Cardinality,
    /// For the reverse side: the link kind the other process declares (pointing here).
    pub via: Option<String>,
}

impl LinkDecl {
    /// The stored kind and whether this process is the link's `from` side (`false` for a `via`
    /// link, which is stored from the other process).
    pub fn stored_kind(&self) -> (&str, bool) {
        match &self.via {
            Some(kind) => (kind, false),
            None => (&self.name, true),
        }
    }
}

/// `spawns problem as caused_by with { ... }`: the child copies the parent's fields of the same
/// name, then takes the values `with` gives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spawn {
    pub process: String,
    /// The link's kind as the parent declares it (`spawned` unless named); a `via` link is
    /// stored from the child.
    pub link: String,
    /// The child's fields set by `with`, in order.
    pub fields: Vec<SpawnField>,
}

/// One field of a spawned ticket, set by `with { name: value }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpawnField {
    /// The child's field.
    pub name: String,
    pub value: SpawnValue,
}

/// Where a spawned ticket's field takes its value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SpawnValue {
    /// A field of the parent (unset there: unset in the child).
    Parent(FieldId),
    /// A value written in the definition, typed as the child's field.
    Literal(Value),
}

impl Spawn {
    pub const DEFAULT_LINK: &'static str = "spawned";
}

/// What a condition compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Subject {
    Field(FieldId),
    Priority,
    /// The stage a linked ticket is in: only inside a link condition's `where`.
    Stage,
}

/// How many linked tickets must match a link condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Quantifier {
    /// At least one (`any caused_by`: there is a linked ticket).
    Any,
    /// Every one (true when there is none).
    All,
    /// None.
    No,
}

/// A checked condition: subjects resolved and values typed like their subject.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Condition {
    Or(Vec<Condition>),
    And(Vec<Condition>),
    Not(Box<Condition>),
    Compare {
        subject: Subject,
        op: CmpOp,
        value: Operand,
    },
    In {
        subject: Subject,
        values: Vec<Operand>,
    },
    /// `affected has email`, `categories has hardware.*`: some element of the list field is
    /// one of `values` (one value, or those a prefix picks). Unset has no elements.
    Has {
        field: FieldId,
        values: Vec<Value>,
    },
    /// `watchers is empty`: the list field has no elements, or is unset.
    Empty(FieldId),
    /// `any caused_by where stage in (resolved, closed)`: over the tickets linked through
    /// `link`; `test`, when given, is a condition on each of them, with the subjects and
    /// operands of the linked process (as this project defines it). Only a transition's `when`
    /// may read links.
    Linked {
        quantifier: Quantifier,
        link: LinkId,
        test: Option<Box<Condition>>,
    },
}

impl Condition {
    /// Whether it reads linked tickets anywhere.
    pub fn reads_links(&self) -> bool {
        match self {
            Condition::Or(parts) | Condition::And(parts) => parts.iter().any(Self::reads_links),
            Condition::Not(inner) => inner.reads_links(),
            Condition::Compare { .. }
            | Condition::In { .. }
            | Condition::Has { .. }
            | Condition::Empty(_) => false,
            Condition::Linked { .. } => true,
        }
    }
}

/// A value in a condition: a field value, a priority level, or (of a linked ticket) a stage.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Operand {
    Value(Value),
    Priority(PriorityId),
    Stage(StageId),
}

#[derive(Clone, Debug)]
pub struct Route {
    /// `None` for `otherwise`.
    pub condition: Option<Condition>,
    pub queue: QueueId,
    /// The rule as written, in the canonical layout (`when category == network => network`),
    /// to explain which rule chose a ticket's queue.
    pub text: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Threshold {
    Percent(u32),
    After(Duration),
}

/// As written: `75%`, `2h`.
impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Threshold::Percent(pc) => write!(f, "{pc}%"),
            Threshold::After(d) => d.fmt(f),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EscalationAction {
    /// Notify the holders of a role, people the ticket names or its approvers; with
    /// `business_hours`, a notification that falls outside the process's business hours is held
    /// until they next begin.
    Notify(Notice),
    MoveToNextTier,
    MoveToQueue(QueueId),
    RaisePriority,
    Perform(TransitionId),
}

#[derive(Clone, Debug)]
pub struct EscalationStep {
    pub threshold: Threshold,
    pub actions: Vec<EscalationAction>,
}

#[derive(Clone, Debug)]
pub struct Escalation {
    pub clock: ClockKind,
    pub steps: Vec<EscalationStep>,
}

/// How many of a group's approvers must approve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quorum {
    /// Every approver of the group (every holder of the role, less those excluded).
    All,
    /// At least this many.
    AtLeast(u32),
    /// This share (1 to 100) of the role's holders when the level opens, rounded up, at least 1.
    Percent(u32),
}

impl Quorum {
    /// How many approvals the quorum needs of a group whose role has `holders` holders, of
    /// whom `eligible` may vote (the others are excluded by segregation of duties).
    pub fn needed(self, holders: usize, eligible: usize) -> usize {
        match self {
            Quorum::All => eligible,
            Quorum::AtLeast(k) => k as usize,
            Quorum::Percent(pc) => (holders * pc as usize).div_ceil(100).max(1),
        }
    }
}

/// As written: `all`, `any 2`, `50%`.
impl fmt::Display for Quorum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Quorum::All => f.write_str("all"),
            Quorum::AtLeast(k) => write!(f, "any {k}"),
            Quorum::Percent(pc) => write!(f, "{pc}%"),
        }
    }
}

/// Who a group of a level asks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Approvers {
    /// The holders of a role (when the level opens).
    Role(RoleId),
    /// One person the ticket names (its requester's manager, say); the quorum is 1.
    Person(PersonRef),
}

/// One group of a level: a quorum of a role's holders, or one person.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApprovalGroup {
    pub quorum: Quorum,
    pub approvers: Approvers,
}

impl ApprovalGroup {
    /// The group's role, for a role group.
    pub fn role(&self) -> Option<RoleId> {
        match self.approvers {
            Approvers::Role(r) => Some(r),
            Approvers::Person(_) => None,
        }
    }
}

/// Someone a ticket names, relative to it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PersonRef {
    /// The user in a `person` field.
    Field(FieldId),
    /// Who created the ticket.
    Creator,
    /// Who holds the ticket's open task: its claimant, else the agent it is pushed to.
    Assignee,
    /// The manager, in the tenant's directory, of someone the ticket names.
    ManagerOf(Box<PersonRef>),
}

impl PersonRef {
    /// How many `manager of` steps it takes.
    pub fn depth(&self) -> usize {
        match self {
            PersonRef::ManagerOf(inner) => 1 + inner.depth(),
            _ => 0,
        }
    }

    /// As written (`manager of requester`), with the process's field names.
    pub fn describe(&self, p: &Process) -> String {
        match self {
            PersonRef::Field(f) => p
                .fields
                .get(f.index())
                .map(|f| f.name.clone())
                .unwrap_or_default(),
            PersonRef::Creator => "creator".to_string(),
            PersonRef::Assignee => "assignee".to_string(),
            PersonRef::ManagerOf(inner) => format!("manager of {}", inner.describe(p)),
        }
    }
}

/// One level of a plan: groups that must each reach their quorum (`and`), asked at once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApprovalLevel {
    pub groups: Vec<ApprovalGroup>,
}

#[derive(Clone, Debug)]
pub struct ApprovalRule {
    /// `None` for `otherwise`.
    pub condition: Option<Condition>,
    /// Sequential levels; empty means no approval is needed.
    pub levels: Vec<ApprovalLevel>,
    /// The rule as written, in the canonical layout (`when category == 2 => ...`), to explain
    /// which rule chose a ticket's plan.
    pub text: String,
}

#[derive(Clone, Debug)]
pub struct Approval {
    pub stage: StageId,
    pub rules: Vec<ApprovalRule>,
    pub on_approve: StageId,
    pub on_reject: StageId,
    pub on_expire: Option<(Duration, StageId)>,
    /// Fields naming people who may not vote on the ticket (segregation of duties), besides
    /// its creator, who never may.
    pub excludes: Vec<FieldId>,
    /// Delays after a level opens at which approvers who have not voted are reminded, in
    /// order.
    pub reminders: Vec<Duration>,
}

impl Approval {
    /// Every role a level of any plan names, once each, in order of first mention.
    pub fn roles(&self) -> Vec<RoleId> {
        let mut roles = Vec::new();
        for r in self
            .rules
            .iter()
            .flat_map(|r| &r.levels)
            .flat_map(|l| &l.groups)
            .filter_map(ApprovalGroup::role)
        {
            if !roles.contains(&r) {
                roles.push(r);
            }
        }
        roles
    }

    /// Every person a level of any plan names.
    pub fn people(&self) -> impl Iterator<Item = &PersonRef> {
        self.rules
            .iter()
            .flat_map(|r| &r.levels)
            .flat_map(|l| &l.groups)
            .filter_map(|g| match &g.approvers {
                Approvers::Person(p) => Some(p),
                Approvers::Role(_) => None,
            })
    }
}

#[derive(Clone, Debug)]
pub enum RuleKind {
    Guard(Vec<TransitionId>),
    Computes(FieldId),
}

#[derive(Clone, Debug)]
pub struct Rule {
    pub name: String,
    pub kind: RuleKind,
    pub source: String,
    pub ast: rhai::AST,
    /// What its source can read: only these are put in its scope when it runs.
    pub reads: RuleReads,
}

/// The variables a rule's source names (a superset of those it reads: a name inside a string
/// counts too).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RuleReads {
    pub fields: Vec<FieldId>,
    pub stage: bool,
    pub priority: bool,
    /// Priority levels named, by position.
    pub levels: Vec<usize>,
}

#[derive(Debug)]
pub struct Process {
    pub name: String,
    pub label: Option<String>,
    pub fields: Vec<Field>,
    pub priorities: Vec<String>,
    pub priority_table: Option<PriorityTable>,
    /// Per priority, indexed by [`PriorityId`].
    pub targets: Vec<Option<Target>>,
    /// The process's business hours, to which `during business hours` holds notifications:
    /// the targets table's calendar, else the first target calendar that is not `24x7`.
    pub business_hours: CalendarRef,
    pub stages: Vec<Stage>,
    pub initial: StageId,
    pub transitions: Vec<Transition>,
    pub routing: Vec<Route>,
    pub escalations: Vec<Escalation>,
    pub approvals: Vec<Approval>,
    pub rules: Vec<Rule>,
    /// The link kinds it declares, by [`LinkId`].
    pub links: Vec<LinkDecl>,
    /// For a process with a `service` field: the targets its services agree, which override
    /// `targets` for their tickets.
    pub service_targets: Option<ServiceTargets>,
    pub graph: ProcessGraph,
}

/// Targets per service: `targets[service][priority]`, `service` indexing the values of the
/// process's `service` field (an enum of the catalogue's services) and `priority` its levels;
/// `None` where the service agrees nothing for that priority (the process's own applies).
#[derive(Clone, Debug)]
pub struct ServiceTargets {
    pub field: FieldId,
    pub targets: Vec<Vec<Option<Target>>>,
}

impl Process {
    pub fn field(&self, name: &str) -> Option<FieldId> {
        self.fields
            .iter()
            .position(|f| f.name == name)
            .map(|i| FieldId(i as u32))
    }
    pub fn stage(&self, name: &str) -> Option<StageId> {
        self.stages
            .iter()
            .position(|s| s.name == name)
            .map(|i| StageId(i as u32))
    }
    /// The target of a ticket with this priority and, for a process with a `service` field,
    /// this value of it (its index): the service's, else the process's own.
    pub fn target(&self, priority: Option<PriorityId>, service: Option<u32>) -> Option<&Target> {
        self.target_source(priority, service).map(|(t, _)| t)
    }

    /// As [`Process::target`], and whether the target is the service's (`true`) rather than
    /// the process's own: explaining a due time names where its target came from.
    pub fn target_source(
        &self,
        priority: Option<PriorityId>,
        service: Option<u32>,
    ) -> Option<(&Target, bool)> {
        let priority = priority?;
        let by_service = self.service_targets.as_ref().and_then(|st| {
            st.targets
                .get(service? as usize)?
                .get(priority.index())?
                .as_ref()
        });
        match by_service {
            Some(t) => Some((t, true)),
            None => Some((self.targets.get(priority.index())?.as_ref()?, false)),
        }
    }

    /// The value index of the ticket's `service` field, for a process whose services agree
    /// targets.
    pub fn service_of(&self, fields: &[Option<Value>]) -> Option<u32> {
        let field = self.service_targets.as_ref()?.field;
        match fields.get(field.index())? {
            Some(Value::Enum(i)) => Some(*i),
            _ => None,
        }
    }

    /// The queues a ticket of this process can be in: those its stages name, those routing
    /// chooses, those escalations move to, and the tiers above them where an escalation moves
    /// to the next tier. (Which queues OLA checks compare the process's targets with.)
    pub fn queues_used(&self, queues: &[Queue]) -> Vec<QueueId> {
        let mut used: Vec<QueueId> = Vec::new();
        let add = |q: QueueId, used: &mut Vec<QueueId>| {
            if !used.contains(&q) {
                used.push(q);
            }
        };
        let by_routing = self
            .stages
            .iter()
            .any(|s| s.queue == Some(StageQueue::ByRouting));
        for s in &self.stages {
            if let Some(StageQueue::Named(q)) = s.queue {
                add(q, &mut used);
            }
        }
        if by_routing {
            for r in &self.routing {
                add(r.queue, &mut used);
            }
        }
        let actions = self
            .escalations
            .iter()
            .flat_map(|e| &e.steps)
            .flat_map(|s| &s.actions);
        let mut next_tier = false;
        for a in actions {
            match a {
                EscalationAction::MoveToQueue(q) => add(*q, &mut used),
                EscalationAction::MoveToNextTier => next_tier = true,
                _ => {}
            }
        }
        if next_tier {
            // Each chain is followed to its end; the checker refuses cycles, and the length
            // bound keeps a cycle from looping here all the same.
            let mut i = 0;
            while i < used.len() && used.len() <= queues.len() {
                if let Some(next) = queues.get(used[i].index()).and_then(|q| q.escalates_to) {
                    add(next, &mut used);
                }
                i += 1;
            }
        }
        used
    }

    /// The approval asked in a stage, if any.
    pub fn approval_in(&self, stage: StageId) -> Option<&Approval> {
        self.approvals.iter().find(|a| a.stage == stage)
    }
    pub fn link(&self, name: &str) -> Option<LinkId> {
        self.links
            .iter()
            .position(|l| l.name == name)
            .map(|i| LinkId(i as u32))
    }
    pub fn transition(&self, name: &str) -> Option<TransitionId> {
        self.transitions
            .iter()
            .position(|t| t.name == name)
            .map(|i| TransitionId(i as u32))
    }
}
