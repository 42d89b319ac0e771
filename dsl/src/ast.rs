//! The spanned syntax tree of an `.itsm` file.
//!
//! Every node carries the [`Span`] it was parsed from, so the checker can point at it. Spans
//! never take part in equality (see [`Span`]'s `PartialEq`), so two trees compare equal when
//! they say the same thing, wherever it was written: that is what `parse(fmt(x)) == parse(x)`
//! relies on. The tree holds what was written, unresolved and unchecked; names are plain
//! strings until `itsmflow_engine` resolves them.

use std::fmt;

/// Index of a source file in a [`crate::Sources`] set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId(pub u32);

/// A byte range in one source file.
#[derive(Clone, Copy, Debug, Default)]
pub struct Span {
    pub file: FileId,
    pub start: u32,
    pub end: u32,
}

/// Spans are location, not meaning: they compare equal always, so syntax trees compare by
/// content. Compare `start`/`end` explicitly where a location matters.
impl PartialEq for Span {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl Eq for Span {}

impl Span {
    pub fn new(file: FileId, start: usize, end: usize) -> Self {
        Span {
            file,
            start: start as u32,
            end: end as u32,
        }
    }
    pub fn range(&self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }
    pub fn len(&self) -> usize {
        (self.end - self.start) as usize
    }
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }
}

/// A value and where it was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spanned<T> {
    pub node: T,
    pub span: Span,
}

impl<T> Spanned<T> {
    pub fn new(node: T, span: Span) -> Self {
        Spanned { node, span }
    }
}

/// A name as written: an identifier, an enum value or a calendar reference such as `24x7`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

impl Ident {
    pub fn as_str(&self) -> &str {
        &self.name
    }
}

impl fmt::Display for Ident {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct File {
    pub items: Vec<Item>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    Calendar(Calendar),
    Queue(Queue),
    /// `tier 2 "Second line" { targets ... }`: what every queue of a tier agrees.
    Tier(Tier),
    Role(Role),
    Service(Service),
    Process(Process),
    Test(Test),
}

impl Item {
    pub fn span(&self) -> Span {
        match self {
            Item::Calendar(c) => c.span,
            Item::Queue(q) => q.span,
            Item::Tier(t) => t.span,
            Item::Role(r) => r.span,
            Item::Service(s) => s.span,
            Item::Process(p) => p.span,
            Item::Test(t) => t.span,
        }
    }
    pub fn name(&self) -> &Ident {
        match self {
            Item::Calendar(c) => &c.name,
            Item::Queue(q) => &q.name,
            Item::Tier(t) => &t.name,
            Item::Role(r) => &r.name,
            Item::Service(s) => &s.name,
            Item::Process(p) => &p.name,
            Item::Test(t) => &t.name,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Calendars

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Calendar {
    pub name: Ident,
    pub label: Option<Spanned<String>>,
    /// `for client acme extends office`: a client's tailoring of a calendar.
    pub tailoring: Option<Tailoring>,
    pub entries: Vec<CalendarEntry>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CalendarEntry {
    Timezone(Spanned<String>),
    Hours(Hours),
    Holidays(Vec<Holiday>, Span),
    /// In a calendar's tailoring: `add holidays 05-04`, `remove holidays 04-27`,
    /// `replace hours mon-fri 07:00-19:00`, `remove hours sat`, `replace timezone "..."`.
    /// Hours are addressed by their days as written, holidays by their dates.
    Overlay {
        verb: Spanned<Verb>,
        entry: Box<CalendarEntry>,
        span: Span,
    },
}

impl CalendarEntry {
    pub fn span(&self) -> Span {
        match self {
            CalendarEntry::Timezone(t) => t.span,
            CalendarEntry::Hours(h) => h.span,
            CalendarEntry::Holidays(_, s) => *s,
            CalendarEntry::Overlay { span, .. } => *span,
        }
    }
}

/// `hours mon-fri 08:00-12:00, 13:00-17:00` or `hours sat, sun closed`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hours {
    pub days: Vec<DayRange>,
    /// `None` for `closed`.
    pub times: Option<Vec<TimeRange>>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DayRange {
    pub from: Ident,
    pub to: Option<Ident>,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClockTime {
    pub hour: u32,
    pub minute: u32,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimeRange {
    pub from: ClockTime,
    pub to: ClockTime,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holiday {
    /// As written: `YYYY-MM-DD`, or yearly `MM-DD` or `easter[+-N]`; the checker validates it.
    pub date: Spanned<String>,
    pub label: Option<Spanned<String>>,
    pub span: Span,
}

// ---------------------------------------------------------------------------------------------
// Queues and roles

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Queue {
    pub name: Ident,
    pub label: Option<Spanned<String>>,
    /// `for client acme extends service_desk`: a client's tailoring of a queue.
    pub tailoring: Option<Tailoring>,
    pub attrs: Vec<QueueAttr>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueueAttrKind {
    Tier(i64),
    EscalatesTo(Ident),
    Members(Vec<Ident>),
    /// Push assignment strategy, e.g. `round_robin`.
    Assign(Ident),
    /// `targets [on CAL] { P1: resolve 2h ... }`: the queue's operational-level targets (OLA),
    /// how long a ticket may stay with the group. Rows as in a process's targets.
    Targets(Targets),
    /// In a queue's tailoring: `replace tier 3`, `add members lead`, `remove target P4`, ...
    Overlay(QueueOverlay),
    /// In a queue's tailoring: `rename to helpdesk`, the queue's new name, which every
    /// reference to it in the standard files follows.
    Rename(Ident),
}

/// One entry of a queue's tailoring: a verb and a setting of the queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueOverlay {
    pub verb: Spanned<Verb>,
    pub entry: QueueEntry,
}

/// What a queue's tailoring changes: after `add` and `replace`, written in full; after
/// `remove` and `require`, named.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueueEntry {
    /// A setting as a queue writes it: `tier 2`, `escalates_to q`, `assign least_loaded`,
    /// `targets [on CAL] { ... }` (the whole block); `members a, b` is the whole list after
    /// `replace`, and those roles after `add`.
    Setting(Box<QueueAttrKind>),
    /// `target P1: resolve 1h`: the OLA row of one priority.
    Target(TargetRow),
    /// `targets on acme_hours`: the calendar of the OLA targets.
    TargetsCalendar(Ident),
    /// After `remove` and `require`.
    Named(QueueEntryRef),
}

/// A setting of a queue by its stable name: its keyword, a member by its role, a target row
/// by its priority.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueueEntryRef {
    Tier,
    EscalatesTo,
    Assign,
    /// The OLA targets block as a whole.
    Targets,
    /// Those roles among the members.
    Members(Vec<Ident>),
    /// The OLA row of one priority.
    Target(Ident),
}

impl QueueEntryRef {
    /// As a tailoring writes it after `remove`: `tier`, `members lead`, `target P1`.
    pub fn text(&self) -> String {
        match self {
            QueueEntryRef::Tier => "tier".to_string(),
            QueueEntryRef::EscalatesTo => "escalates_to".to_string(),
            QueueEntryRef::Assign => "assign".to_string(),
            QueueEntryRef::Targets => "targets".to_string(),
            QueueEntryRef::Members(roles) => format!(
                "members {}",
                roles
                    .iter()
                    .map(|r| r.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            QueueEntryRef::Target(p) => format!("target {p}"),
        }
    }
}

/// `tier 2 "Second line" { targets { ... } }`: the operational-level targets of every queue
/// of tier 2 that has none of its own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tier {
    /// The tier's number as written, also kept as a name (`2`) so the item can be told apart
    /// from others by name like every other item.
    pub number: Spanned<i64>,
    pub name: Ident,
    pub label: Option<Spanned<String>>,
    /// Each `targets` block written (the checker allows one).
    pub targets: Vec<Targets>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueAttr {
    pub kind: QueueAttrKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Role {
    pub name: Ident,
    pub label: Option<Spanned<String>>,
    pub span: Span,
}

// ---------------------------------------------------------------------------------------------
// The service catalogue

/// `service email "E-mail" { ... }`: a service of the catalogue. Its entries are kept in the
/// order written; the checker allows each but `item` once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Service {
    pub name: Ident,
    pub label: Option<Spanned<String>>,
    pub entries: Vec<ServiceEntry>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServiceEntryKind {
    /// `description "..."`.
    Description(Spanned<String>),
    /// `owner role R`.
    Owner(Ident),
    /// `supported on CALENDAR` (a declared calendar or `24x7`).
    SupportedOn(Ident),
    /// `queues a, b`: the queues that work the service, first line first.
    Queues(Vec<Ident>),
    /// `targets { P1: respond 10m, resolve 2h on 24x7 ... }`: rows as in a process's targets,
    /// by priority name.
    Targets(Vec<TargetRow>),
    /// `item NAME "label" { ... }`: something users can request of the service.
    Item(CatalogueItem),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceEntry {
    pub kind: ServiceEntryKind,
    pub span: Span,
}

/// `item shared_mailbox "New shared mailbox" { process request  with { ... }  requires x }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CatalogueItem {
    pub name: Ident,
    pub label: Option<Spanned<String>>,
    pub entries: Vec<ItemEntry>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ItemEntryKind {
    /// `description "..."`.
    Description(Spanned<String>),
    /// `process P`: the process a ticket for the item is raised in.
    Process(Ident),
    /// `with { FIELD: VALUE, ... }`: values the item presets, as in `spawns ... with` but
    /// literals only (a bare name is a value, such as an enum value).
    With(Vec<SpawnEntry>),
    /// `requires a, b`: fields a ticket for the item must have at creation.
    Requires(Vec<Ident>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ItemEntry {
    pub kind: ItemEntryKind,
    pub span: Span,
}

// ---------------------------------------------------------------------------------------------
// Processes

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Process {
    pub name: Ident,
    pub label: Option<Spanned<String>>,
    pub tailoring: Option<Tailoring>,
    pub members: Vec<Member>,
    pub span: Span,
}

/// `for client acme extends incident`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tailoring {
    pub client: Ident,
    pub base: Ident,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Member {
    Fields(Fields),
    Links(Links),
    Priorities(Priorities),
    PriorityTable(PriorityTable),
    Targets(Targets),
    Stage(Stage),
    Transition(Transition),
    Routing(Routing),
    Escalation(Escalation),
    Approval(Approval),
    Rule(Rule),
    /// An entry of a tailoring (`add stage ...`, `remove route vip`): only in a process that
    /// `extends` another.
    Overlay(Overlay),
}

impl Member {
    pub fn span(&self) -> Span {
        match self {
            Member::Fields(m) => m.span,
            Member::Links(m) => m.span,
            Member::Priorities(m) => m.span,
            Member::PriorityTable(m) => m.span,
            Member::Targets(m) => m.span,
            Member::Stage(m) => m.span,
            Member::Transition(m) => m.span,
            Member::Routing(m) => m.span,
            Member::Escalation(m) => m.span,
            Member::Approval(m) => m.span,
            Member::Rule(m) => m.span,
            Member::Overlay(m) => m.span,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Tailoring

/// One entry of a tailoring: `add stage vendor_wait ...`, `replace target P1: ...`,
/// `remove route vip`, `require stage resolved`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Overlay {
    pub verb: Spanned<Verb>,
    pub entry: OverlayEntry,
    pub span: Span,
}

/// What a tailoring does to an entry of the process it extends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verb {
    /// A new entry: its name must not exist yet.
    Add,
    /// An existing entry, written anew in its place.
    Replace,
    /// An existing entry, taken out.
    Remove,
    /// A guard: the entry must exist (so a base that drops it is reported, not silently
    /// followed).
    Require,
}

impl Verb {
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Add => "add",
            Verb::Replace => "replace",
            Verb::Remove => "remove",
            Verb::Require => "require",
        }
    }
}

/// The entry an [`Overlay`] applies to: written out in full after `add` and `replace`, named
/// after `remove` and `require`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OverlayEntry {
    Field(Field),
    Stage(Stage),
    Transition(Transition),
    /// `target P1: respond 10m, resolve 2h`: the targets row of one priority.
    Target(TargetRow),
    /// `targets on acme_hours`: the calendar the targets run on where a row names none.
    TargetsCalendar(Ident),
    /// `priority from impact, urgency { ... }`: the whole priority table.
    PriorityTable(PriorityTable),
    /// `priority high => P1, P1, P2` (a row) or `priority high, low => P2` (one cell).
    PriorityRow(PriorityRow),
    /// `priorities P1, P2, P3`: the priority levels.
    Priorities(Priorities),
    /// `route sap: when ... => acme_sap before vip`, or `route otherwise => q`.
    Route {
        rule: RouteRule,
        place: Option<RoutePlace>,
    },
    /// `approval in review { ... }`: the whole approval of a stage.
    Approval(Approval),
    /// `approval in review emergency: when ... => ...`, `approval in review on reject =>
    /// rework`, `approval in review excludes requester`: one entry of a stage's approval; a
    /// rule may be placed `before` or `after` a named one.
    ApprovalEntry {
        stage: Ident,
        entry: ApprovalEntry,
        place: Option<RoutePlace>,
    },
    /// `escalation on resolve at 90% => ...`: the step of that clock at that threshold.
    Escalation {
        clock: Spanned<ClockKind>,
        step: EscalationStep,
    },
    Rule(Rule),
    /// After `remove` or `require`: the entry's kind and name.
    Named(EntryRef),
}

/// Where an added route goes: `before vip`, `after vip`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoutePlace {
    pub before: bool,
    pub anchor: Ident,
    pub span: Span,
}

/// An entry of a process by its stable name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntryRef {
    Field(Ident),
    Stage(Ident),
    Transition(Ident),
    /// A targets row, by its priority.
    Target(Ident),
    /// A priority table row (all keys but the last field's) or cell (every key).
    Priority(Vec<Ident>, Span),
    /// A route by name; `None` is `otherwise`.
    Route(Option<Ident>, Span),
    /// An escalation step by its clock and threshold.
    Escalation {
        clock: Spanned<ClockKind>,
        threshold: Spanned<Threshold>,
    },
    Rule(Ident),
    /// A stage's whole approval: `approval in review`.
    Approval(Ident),
    /// One entry of a stage's approval: a rule by name (`None`: `otherwise`), an outcome, the
    /// excludes or the reminder.
    ApprovalEntry {
        stage: Ident,
        key: ApprovalKey,
        span: Span,
    },
}

/// How an approval's entry is addressed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApprovalKey {
    Rule(Option<String>),
    Outcome(OutcomeKind),
    Excludes,
    Remind,
}

impl ApprovalKey {
    pub fn of(entry: &ApprovalEntry) -> ApprovalKey {
        match entry {
            ApprovalEntry::Rule { name, .. } => {
                ApprovalKey::Rule(name.as_ref().map(|n| n.name.clone()))
            }
            ApprovalEntry::Outcome(o) => ApprovalKey::Outcome(o.kind.node),
            ApprovalEntry::Excludes { .. } => ApprovalKey::Excludes,
            ApprovalEntry::Remind { .. } => ApprovalKey::Remind,
        }
    }

    /// As a tailoring names it: `emergency`, `otherwise`, `on reject`, `excludes`, `remind`.
    pub fn text(&self) -> String {
        match self {
            ApprovalKey::Rule(Some(n)) => n.clone(),
            ApprovalKey::Rule(None) => "otherwise".to_string(),
            ApprovalKey::Outcome(k) => format!("on {}", k.as_str()),
            ApprovalKey::Excludes => "excludes".to_string(),
            ApprovalKey::Remind => "remind".to_string(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fields {
    pub fields: Vec<Field>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    pub name: Ident,
    pub ty: FieldType,
    pub required: Option<Span>,
    pub default: Option<Literal>,
    pub span: Span,
}

/// `links { caused_by: one problem  children: many incident via parent }`: the kinds of link
/// the process's tickets have to other tickets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Links {
    pub links: Vec<LinkDecl>,
    pub span: Span,
}

/// How many tickets a link kind allows: `one` (at most one) or `many`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cardinality {
    One,
    Many,
}

impl Cardinality {
    pub fn as_str(self) -> &'static str {
        match self {
            Cardinality::One => "one",
            Cardinality::Many => "many",
        }
    }
}

/// One link kind: `caused_by: one problem`, or `incidents: many incident via caused_by` (the
/// `caused_by` links that incidents store, read from this side).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkDecl {
    pub name: Ident,
    pub cardinality: Spanned<Cardinality>,
    /// The other process.
    pub process: Ident,
    /// `via KIND`: the link kind the other process declares, which this one reads back.
    pub via: Option<Ident>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FieldType {
    /// `text`, `person`, `int`, `bool`, `duration`, `datetime`, `service` (one of the
    /// catalogue's services); the checker rejects other names.
    Named(Ident),
    Enum(Vec<Ident>, Span),
    /// `list(T)`: any number of values of `T`. A `list` of lists parses, and the checker
    /// refuses it (`nested-list`).
    List(Box<FieldType>, Span),
}

impl FieldType {
    pub fn span(&self) -> Span {
        match self {
            FieldType::Named(i) => i.span,
            FieldType::Enum(_, s) | FieldType::List(_, s) => *s,
        }
    }
}

/// A duration as written, e.g. `1h30m`. Weeks and days are calendar days of the calendar that
/// applies; hours, minutes and seconds are business time on it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Duration {
    pub weeks: u64,
    pub days: u64,
    pub hours: u64,
    pub minutes: u64,
    pub seconds: u64,
}

impl Duration {
    pub fn is_zero(&self) -> bool {
        *self == Duration::default()
    }
    /// Days (weeks count seven) and the rest in seconds. `None` on overflow.
    pub fn days_and_seconds(&self) -> Option<(u64, u64)> {
        let days = self.weeks.checked_mul(7)?.checked_add(self.days)?;
        let secs = self
            .hours
            .checked_mul(3600)?
            .checked_add(self.minutes.checked_mul(60)?)?
            .checked_add(self.seconds)?;
        Some((days, secs))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_zero() {
            return f.write_str("0m");
        }
        for (n, unit) in [
            (self.weeks, "w"),
            (self.days, "d"),
            (self.hours, "h"),
            (self.minutes, "m"),
            (self.seconds, "s"),
        ] {
            if n > 0 {
                write!(f, "{n}{unit}")?;
            }
        }
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LiteralKind {
    /// `2026-12-25T08:00` with optional seconds and offset, as written.
    DateTime(String),
    /// `2026-12-25`, as written.
    Date(String),
    Duration(Duration),
    Integer(i64),
    String(String),
    /// A bare word: an enum value, a priority, `true` or `false`.
    Symbol(String),
    /// `hardware.*` in an `in (...)` list: the value `hardware` and every value under it
    /// (`hardware.laptop`); the text before `.*`.
    Prefix(String),
    /// `[a, b]`: the value of a `list(T)` field, where a field's whole value is written (a
    /// default, a `with` entry, a test's values); never in a condition.
    List(Vec<Literal>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Literal {
    pub kind: LiteralKind,
    pub span: Span,
}

/// `priorities P1, P2, P3`: the priority levels, most urgent first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Priorities {
    pub levels: Vec<Ident>,
    pub span: Span,
}

/// `priority from impact, urgency { high => P1, P2, P3 ... }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PriorityTable {
    pub fields: Vec<Ident>,
    pub rows: Vec<PriorityRow>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PriorityRow {
    pub keys: Vec<Ident>,
    pub cells: Vec<Ident>,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClockKind {
    Respond,
    Resolve,
}

impl ClockKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ClockKind::Respond => "respond",
            ClockKind::Resolve => "resolve",
        }
    }
}

impl fmt::Display for ClockKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Targets {
    pub calendar: Option<Ident>,
    pub rows: Vec<TargetRow>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetRow {
    pub priority: Ident,
    pub clocks: Vec<ClockTarget>,
    pub calendar: Option<Ident>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClockTarget {
    pub clock: Spanned<ClockKind>,
    pub duration: Spanned<Duration>,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StageKind {
    Initial,
    Final,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stage {
    pub name: Ident,
    pub label: Option<Spanned<String>>,
    pub kinds: Vec<Spanned<StageKind>>,
    pub attrs: Vec<StageAttr>,
    pub span: Span,
}

impl Stage {
    pub fn is(&self, kind: StageKind) -> bool {
        self.kinds.iter().any(|k| k.node == kind)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueueTarget {
    Named(Ident),
    ByRouting,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StageAttrKind {
    Queue(QueueTarget),
    Pauses(Vec<Spanned<ClockKind>>),
    Stops(Vec<Spanned<ClockKind>>),
    Starts(Vec<Spanned<ClockKind>>),
    /// `notify ...`: sent when an instance enters the stage.
    Notify(Notify),
    /// `every 30m when ... => actions`: repeated while an instance stays in the stage.
    Every {
        period: Spanned<Duration>,
        condition: Option<Condition>,
        actions: Vec<EscalationAction>,
    },
    /// `checklist { accounts "Accounts created"  laptop "Laptop imaged" }`: items people tick
    /// off while a ticket is in the stage; a transition may require them all.
    Checklist(Vec<ChecklistItem>),
}

/// One item of a stage's checklist: a name (how the API and tests address it) and a label.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChecklistItem {
    pub name: Ident,
    pub label: Option<Spanned<String>>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StageAttr {
    pub kind: StageAttrKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    pub name: Ident,
    pub label: Option<Spanned<String>>,
    pub from: Vec<Ident>,
    pub to: Ident,
    pub clauses: Vec<TransitionClause>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransitionClauseKind {
    ByRoles(Vec<Ident>),
    /// `by caller, manager of requester`: people the ticket names who may perform it.
    ByPeople(Vec<PersonRef>),
    After(Duration),
    /// `at FIELD`: automatic when the instant in the field comes.
    At(Ident),
    Requires(Vec<Ident>),
    /// `requires checklist`: every item of the checklist of the stage it leaves is ticked.
    RequiresChecklist,
    /// `spawns problem as caused_by with { title: title }`: the process to start, the kind of
    /// link to it, and the fields `with` sets in the new ticket (empty without `with`).
    Spawns {
        process: Ident,
        link: Option<Ident>,
        with: Vec<SpawnEntry>,
    },
    /// `notify ...`: sent when the transition is performed.
    Notify(Notify),
    /// `when CONDITION`: the transition may be performed only while the condition holds.
    When(Condition),
    /// `then perform resolve on incidents with { resolution: root_cause }`: a transition of
    /// the tickets linked through `link`, performed with this one; `with` as in `spawns` (the
    /// fields are the linked process's).
    Perform {
        action: Ident,
        link: Ident,
        with: Vec<SpawnEntry>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransitionClause {
    pub kind: TransitionClauseKind,
    pub span: Span,
}

/// One entry of `spawns ... with { ... }`: `change_type: normal`, `title: title`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpawnEntry {
    /// The spawned process's field.
    pub field: Ident,
    /// As written. A bare name ([`LiteralKind::Symbol`]) is a field of the spawning process
    /// when it has one of that name, else a value (an enum value, `true`, `false`) of the
    /// spawned process's field: the checker decides.
    pub value: Literal,
    pub span: Span,
}

/// Someone a ticket names, as written: `creator`, `assignee`, a field (which the checker
/// requires to be a `person` field), or `manager of` one of these, as many times over as
/// written.
///
/// The `manager of`s are kept flat, as a list, rather than nested: however many are written,
/// nothing that walks or drops a `PersonRef` recurses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersonRef {
    /// Where each `manager of` is written, outermost first: `manager of manager of caller` has
    /// two. (Spans compare equal, so two references are equal when they have as many.)
    pub managers: Vec<Span>,
    pub base: PersonBase,
    pub span: Span,
}

/// Whom a [`PersonRef`] starts from, before any `manager of`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PersonBase {
    /// `creator`: who created the ticket.
    Creator(Span),
    /// `assignee`: who holds the ticket's open task.
    Assignee(Span),
    /// The name of a field.
    Field(Ident),
}

impl PersonBase {
    pub fn span(&self) -> Span {
        match self {
            PersonBase::Creator(s) | PersonBase::Assignee(s) => *s,
            PersonBase::Field(f) => f.span,
        }
    }
}

/// A notification: `notify caller and role team_lead "Incident {id} is late" during business
/// hours`, in an escalation step, a stage or a transition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notify {
    /// At least one (the grammar requires it), in the order written.
    pub to: Vec<Recipient>,
    /// `None`: the engine writes its own words.
    pub message: Option<Message>,
    /// Where `during business hours` is written: the notification is held to them.
    pub business_hours: Option<Span>,
    pub span: Span,
}

/// Whom a notification goes to, as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recipient {
    /// `role team_lead`: every holder of the role. `span` covers `role` and the name.
    Role { role: Ident, span: Span },
    /// Someone the ticket names: `caller`, `creator`, `manager of requester`.
    Person(PersonRef),
    /// `approvers`: the open approval level's approvers who have not voted yet.
    Approvers(Span),
}

impl Recipient {
    pub fn span(&self) -> Span {
        match self {
            Recipient::Role { span, .. } | Recipient::Approvers(span) => *span,
            Recipient::Person(p) => p.span,
        }
    }
}

/// A message template as written: `"Incident {id} ({title}) is resolved"`.
///
/// The parser cuts the text into [`MessagePiece`]s, with spans inside the string literal (escapes
/// taken into account), and keeps what does not form a placeholder as a piece of its own for
/// the checker to report; the formatter prints `text` back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The text between the quotes, escapes resolved.
    pub text: String,
    pub pieces: Vec<MessagePiece>,
    /// The string literal, quotes included.
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MessagePiece {
    /// Text as it reads: `{{` and `}}` are already single braces.
    Text(String),
    /// `{name}`: the name, spanned between the braces.
    Placeholder(Ident),
    /// A `{` that no `}` closes (before the next `{`, or the end of the message).
    Unclosed(Span),
    /// A `}` that no `{` opened (a brace is written `}}`).
    Unopened(Span),
    /// `{...}` around something that is not a name (`{}`, `{ id }`, `{a.b}`): what is between
    /// the braces, and the span of the whole.
    NotAName(String, Span),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
    pub fn is_ordering(self) -> bool {
        !matches!(self, CmpOp::Eq | CmpOp::Ne)
    }
}

/// How deeply parentheses, `not` and the `where` of a link condition may nest in a condition:
/// `not (a == b)` nests one level, `((a == b))` two, `any l where a == b` one. Deeper conditions are reported as `condition-too-deep` and kept only as
/// [`Condition::TooDeep`], so nothing ever walks a tree deep enough to overflow the stack.
pub const MAX_CONDITION_DEPTH: usize = 32;

/// How many linked tickets a link condition asks to match.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quantifier {
    Any,
    All,
    No,
}

impl Quantifier {
    pub fn as_str(self) -> &'static str {
        match self {
            Quantifier::Any => "any",
            Quantifier::All => "all",
            Quantifier::No => "no",
        }
    }
}

/// A condition in `routing`, `approval` and a transition's `when`: a field (or `priority`)
/// compared with a value, or (in `when` only, the checker decides) a quantifier over linked
/// tickets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Condition {
    Or(Vec<Condition>, Span),
    And(Vec<Condition>, Span),
    Not(Box<Condition>, Span),
    Compare {
        subject: Ident,
        op: Spanned<CmpOp>,
        value: Literal,
        span: Span,
    },
    In {
        subject: Ident,
        values: Vec<Literal>,
        span: Span,
    },
    /// `affected has email`, `categories has hardware.*`: some element of a list field is the
    /// value (or under it).
    Has {
        subject: Ident,
        value: Literal,
        span: Span,
    },
    /// `watchers is empty`: a list field has no elements (or is unset).
    Empty {
        subject: Ident,
        span: Span,
    },
    /// `any caused_by`, `all children where stage == closed`: over the tickets linked through
    /// `link`, each tested with `test` (a condition on the linked ticket; `all` always has one).
    Linked {
        quantifier: Spanned<Quantifier>,
        link: Ident,
        test: Option<Box<Condition>>,
        span: Span,
    },
    /// A whole condition that nests deeper than [`MAX_CONDITION_DEPTH`], which the parser
    /// reports (`condition-too-deep`) instead of converting it. It is kept as its tokens joined
    /// by single spaces (comments dropped), so that the formatter prints it back unchanged and
    /// two of them compare by what they say; the checker skips it.
    TooDeep(String, Span),
}

impl Condition {
    pub fn span(&self) -> Span {
        match self {
            Condition::Or(_, s)
            | Condition::And(_, s)
            | Condition::Not(_, s)
            | Condition::TooDeep(_, s) => *s,
            Condition::Compare { span, .. }
            | Condition::In { span, .. }
            | Condition::Has { span, .. }
            | Condition::Empty { span, .. }
            | Condition::Linked { span, .. } => *span,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Routing {
    pub rules: Vec<RouteRule>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteRule {
    /// `vip: when ...`: how a tailoring addresses the route (`otherwise` needs none).
    pub name: Option<Ident>,
    /// `None` for `otherwise`.
    pub condition: Option<Condition>,
    pub queue: Ident,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Escalation {
    pub clock: Spanned<ClockKind>,
    pub steps: Vec<EscalationStep>,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Threshold {
    /// Share of the clock's target, `at 75%`.
    Percent(u32),
    /// Business time since the clock started, `at 2h`.
    After(Duration),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EscalationStep {
    pub threshold: Spanned<Threshold>,
    pub actions: Vec<EscalationAction>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EscalationActionKind {
    /// `notify role ROLE`, `notify caller and approvers "message"`, ...
    Notify(Notify),
    MoveToNextTier,
    MoveToQueue(Ident),
    RaisePriority,
    Perform(Ident),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EscalationAction {
    pub kind: EscalationActionKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Approval {
    /// The stage in which approval is asked.
    pub stage: Ident,
    pub entries: Vec<ApprovalEntry>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApprovalEntry {
    /// `when cond => plan`, or `otherwise => plan` when `condition` is `None`.
    Rule {
        /// `cab: when ...`: how a tailoring addresses the rule (`otherwise` needs none).
        name: Option<Ident>,
        condition: Option<Condition>,
        plan: ApprovalPlan,
        span: Span,
    },
    Outcome(ApprovalOutcome),
    /// `excludes requester, implementer`: fields naming people who may not vote.
    Excludes {
        fields: Vec<Ident>,
        span: Span,
    },
    /// `remind after 1d`: approvers who have not voted are reminded this long after their
    /// level opens.
    Remind {
        after: Spanned<Duration>,
        span: Span,
    },
}

impl ApprovalEntry {
    pub fn span(&self) -> Span {
        match self {
            ApprovalEntry::Rule { span, .. }
            | ApprovalEntry::Excludes { span, .. }
            | ApprovalEntry::Remind { span, .. } => *span,
            ApprovalEntry::Outcome(o) => o.span,
        }
    }
}

/// Sequential approval levels (`then`); empty means `none` (no approval needed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApprovalPlan {
    pub levels: Vec<ApprovalLevel>,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quorum {
    All,
    /// `any 2` or `2`: at least this many members of the role must approve.
    Count(i64),
    /// `50%`: this share of the role's holders (rounded up) must approve.
    Percent(i64),
}

/// One level of a plan: groups joined by `and`, asked at once, each of which must reach its
/// quorum.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApprovalLevel {
    pub groups: Vec<ApprovalGroup>,
    pub span: Span,
}

/// One group of a level: a quorum of a role's holders, or one person.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApprovalGroup {
    /// `any 2 of role cab`: a quorum of a role's holders.
    Role {
        quorum: Spanned<Quorum>,
        role: Ident,
        span: Span,
    },
    /// `manager of requester`: one person, who must approve.
    Person(PersonRef),
}

impl ApprovalGroup {
    pub fn span(&self) -> Span {
        match self {
            ApprovalGroup::Role { span, .. } => *span,
            ApprovalGroup::Person(p) => p.span,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutcomeKind {
    Approve,
    Reject,
    Expire,
}

impl OutcomeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeKind::Approve => "approve",
            OutcomeKind::Reject => "reject",
            OutcomeKind::Expire => "expire",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApprovalOutcome {
    pub kind: Spanned<OutcomeKind>,
    pub after: Option<Spanned<Duration>>,
    pub stage: Ident,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RuleTarget {
    /// `when transition close, cancel`: the rule guards these transitions.
    Guard(Vec<Ident>),
    /// `computes risk`: the rule's value is stored in this field.
    Computes(Ident),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub name: Ident,
    pub target: RuleTarget,
    pub code: RhaiCode,
    pub span: Span,
}

/// A rule body in rhai, exactly as written between the braces.
#[derive(Clone, Debug, Eq)]
pub struct RhaiCode {
    pub text: String,
    /// Span of `text` (inside the braces).
    pub span: Span,
}

impl RhaiCode {
    /// The code with its common indentation removed and blank lines around it dropped: what
    /// the formatter prints, and what makes two bodies the same.
    pub fn normalized(&self) -> Vec<&str> {
        let lines: Vec<&str> = self.text.lines().map(str::trim_end).collect();
        let first = lines.iter().position(|l| !l.is_empty());
        let last = lines.iter().rposition(|l| !l.is_empty());
        let (Some(first), Some(last)) = (first, last) else {
            return Vec::new();
        };
        let lines = &lines[first..=last];
        let indent = lines
            .iter()
            .filter(|l| !l.is_empty())
            .map(|l| l.len() - l.trim_start_matches([' ', '\t']).len())
            .min()
            .unwrap_or(0);
        lines
            .iter()
            .map(|l| l.get(indent..).unwrap_or(""))
            .collect()
    }
}

impl PartialEq for RhaiCode {
    fn eq(&self, other: &Self) -> bool {
        self.normalized() == other.normalized()
    }
}

// ---------------------------------------------------------------------------------------------
// Process tests
//
// `test "name" { ... }`: a scenario run by `itsmflow test` on the in-memory engine, on virtual
// time. Steps run in order; the first failing step ends the test. Tests are not part of the
// published model: the checker checks their names against the project and the engine ignores
// them.

/// `test "P1 goes to the major incident team" { STEP* }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Test {
    /// The test's name, as written in its string (the span is the string's).
    pub name: Ident,
    pub steps: Vec<TestStep>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestStep {
    pub kind: TestStepKind,
    pub span: Span,
}

/// Who acts in a step: `as alice`. Tests name users; `user` steps declare them.
pub type Actor = Ident;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TestStepKind {
    /// `at 2026-03-02T09:00Z`: the virtual instant the test starts at. Only as the first step;
    /// without it a test starts at 2026-01-05T09:00:00Z (a Monday).
    Start(Spanned<String>),
    /// `user alice roles agent, team_lead manager carol`: a user of the test's tenant, with
    /// the roles they hold and their manager (another declared user).
    User {
        name: Ident,
        roles: Vec<Ident>,
        manager: Option<Ident>,
    },
    /// `create incident i as carol { caller: carol, impact: high }`: raise a ticket of a
    /// process, or of a catalogue item (`create item new_laptop as carol { ... }`). The
    /// optional handle names it for later steps; the ticket created or acted on last is the
    /// one a step without `on` means.
    Create {
        target: CreateTarget,
        handle: Option<Ident>,
        actor: Actor,
        fields: Vec<SpawnEntry>,
        refused: Option<Refusal>,
    },
    /// `perform resolve on i as alice with { resolution: "restarted" }`.
    Perform {
        action: Ident,
        ticket: Option<Ident>,
        actor: Actor,
        fields: Vec<SpawnEntry>,
        refused: Option<Refusal>,
    },
    /// `update on i as alice { impact: high }`: change fields without a transition.
    Update {
        ticket: Option<Ident>,
        actor: Actor,
        fields: Vec<SpawnEntry>,
        refused: Option<Refusal>,
    },
    /// `vote approve on c as sid`, `vote reject as sid`: on the open approval level.
    Vote {
        approve: bool,
        ticket: Option<Ident>,
        actor: Actor,
        refused: Option<Refusal>,
    },
    /// `link i caused_by p as alice`: link two tickets by a kind the first one's process
    /// declares.
    Link {
        from: Ident,
        kind: Ident,
        to: Ident,
        actor: Actor,
        refused: Option<Refusal>,
    },
    /// `check laptop on r as fred`: tick an item of the checklist of the ticket's stage;
    /// `uncheck laptop as fred` clears it.
    Check {
        item: Ident,
        done: bool,
        ticket: Option<Ident>,
        actor: Actor,
        refused: Option<Refusal>,
    },
    /// `claim on i as alice`: claim the ticket's open task; `release on i as alice` gives it back.
    Claim {
        release: bool,
        ticket: Option<Ident>,
        actor: Actor,
        refused: Option<Refusal>,
    },
    /// `wait 30m`, `wait 4h business`, `wait 2d business on office`, `wait until
    /// 2026-03-03T09:00Z`: move virtual time on, firing every timer that comes due on the way,
    /// each at its own instant.
    Wait(Wait),
    /// `expect stage resolved`, `expect on p not escalated resolve 50%`, ...
    Expect {
        ticket: Option<Ident>,
        negated: bool,
        expectation: Expectation,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CreateTarget {
    Process(Ident),
    /// `item NAME`: a catalogue item.
    Item(Ident),
}

/// `refused` after a step: the step must be refused, and when a text follows, the refusal's
/// message must contain it: `perform close as bob refused "role"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub contains: Option<Spanned<String>>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Wait {
    /// Wall-clock time.
    For(Duration),
    /// Business time on a calendar: the named one, or the business hours of the process of
    /// the ticket the test acted on last.
    Business {
        duration: Duration,
        calendar: Option<Ident>,
    },
    /// Up to an instant, as written.
    Until(Spanned<String>),
}

/// What an `expect` step asserts about a ticket (the one named by `on`, else the ticket the
/// test created or acted on last).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expectation {
    /// `expect stage resolved`.
    Stage(Ident),
    /// `expect priority P1`, `expect priority none`.
    Priority(Option<Ident>),
    /// `expect queue service_desk`, `expect queue none`.
    Queue(Option<Ident>),
    /// `expect holder alice`: who holds the open task; `expect holder none`.
    Holder(Option<Ident>),
    /// `expect field resolution == "restarted"`, `expect field resolution == none`.
    Field {
        field: Ident,
        value: Option<Literal>,
    },
    /// `expect field watchers has ann`: some element of a list field is the value.
    FieldHas { field: Ident, value: Literal },
    /// `expect clock resolve running`, `... elapsed 30m`, `... remaining 3h30m`,
    /// `... due 2026-03-02T13:00Z`.
    Clock {
        clock: Spanned<ClockKind>,
        check: ClockCheck,
    },
    /// `expect ola remaining 1h`, `expect ola running`: the OLA clock of the ticket's current
    /// stay in a queue (`expect ola none`: it has none).
    Ola { check: ClockCheck, span: Span },
    /// `expect ola breached in network`: a stay in the queue breached its OLA target.
    OlaBreachedIn(Ident),
    /// `expect escalated resolve 50%`: the escalation step at that threshold has fired.
    Escalated {
        clock: Spanned<ClockKind>,
        threshold: Spanned<Threshold>,
    },
    /// `expect breached resolve`.
    Breached(Spanned<ClockKind>),
    /// `expect notified role team_lead`, `expect notified carol "is half way"`: a notification
    /// went to a role's holders or to a user (with a text its message contains).
    Notified {
        recipient: Notified,
        contains: Option<Spanned<String>>,
    },
    /// `expect approval pending level 2`, `expect approval approved`, `... rejected`,
    /// `... expired`, `... none`.
    Approval {
        state: Ident,
        level: Option<Spanned<u32>>,
    },
    /// `expect linked caused_by p`: a link of this kind (as the ticket's process names it)
    /// to the ticket handled `p`. With `as` (`expect linked caused_by as p`), a link of this
    /// kind to a ticket not named yet, which is then named `p` (the first linked, when there
    /// are several, so naming them in turn names each): how a test reaches a ticket a
    /// transition spawned.
    Linked {
        kind: Ident,
        other: Ident,
        names: bool,
    },
    /// `expect checked laptop`: the item of the checklist of the ticket's stage is ticked.
    Checked(Ident),
    /// `expect history log, accept, resolve`: the transitions taken, in order, exactly
    /// (approval outcomes count as the outcome: `approve`, `reject`, `expire`).
    History(Vec<Ident>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notified {
    Role(Ident),
    User(Ident),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClockCheck {
    /// `running`, `paused`, `met`, `breached`, `not_started`.
    State(Ident),
    /// Business time counted so far.
    Elapsed(Duration),
    /// Business time left before the target.
    Remaining(Duration),
    /// The instant it breaches, as written (a running clock's).
    Due(Spanned<String>),
}
