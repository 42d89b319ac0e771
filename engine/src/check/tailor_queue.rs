//! Tailoring a queue: a client's own settings over a standard queue
//! (`queue service_desk for client acme extends service_desk { replace tier 2 ... }`).
//!
//! Each setting is addressed by its keyword (`tier`, `escalates_to`, `assign`, `targets`), a
//! member by its role, an OLA row by its priority. `rename to NAME` gives the queue a new name;
//! which references follow it is [`super::tailor_rename`]'s business, not this module's.

use itsmflow_dsl::ast::{
    Ident, Queue, QueueAttr, QueueAttrKind, QueueEntry, QueueEntryRef, QueueOverlay, Span, Targets,
    Verb,
};
use itsmflow_dsl::{format, Diagnostic};

use super::names::did_you_mean;
use super::tailor::needs_verb;

/// The base queue with the tailoring's entries applied, in order. The name stays the
/// overlay's: a rename is applied once the renames of the whole project are known.
pub(super) fn apply_queue(base: &Queue, overlay: &Queue, diags: &mut Vec<Diagnostic>) -> Queue {
    let mut q = base.clone();
    q.name = overlay.name.clone();
    q.tailoring = None;
    if overlay.label.is_some() {
        q.label = overlay.label.clone();
    }
    for attr in &overlay.attrs {
        match &attr.kind {
            QueueAttrKind::Overlay(o) => {
                if let Err(d) = apply_entry(&mut q, o, attr.span) {
                    diags.push(*d);
                }
            }
            QueueAttrKind::Rename(_) => {}
            _ => diags.push(needs_verb(
                attr.span,
                "write `add`, `replace`, `remove` or `require` before it",
                "`replace tier 2` changes the tier, `add members lead` adds a role to the \
                 members, `remove target P4` takes an OLA row out",
            )),
        }
    }
    q
}

/// A setting a queue has at most once, in the order a queue is usually written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Setting {
    Tier,
    EscalatesTo,
    Members,
    Assign,
    Targets,
}

impl Setting {
    pub fn of(kind: &QueueAttrKind) -> Option<Setting> {
        Some(match kind {
            QueueAttrKind::Tier(_) => Setting::Tier,
            QueueAttrKind::EscalatesTo(_) => Setting::EscalatesTo,
            QueueAttrKind::Members(_) => Setting::Members,
            QueueAttrKind::Assign(_) => Setting::Assign,
            QueueAttrKind::Targets(_) => Setting::Targets,
            QueueAttrKind::Overlay(_) | QueueAttrKind::Rename(_) => return None,
        })
    }

    fn keyword(self) -> &'static str {
        match self {
            Setting::Tier => "tier",
            Setting::EscalatesTo => "escalates_to",
            Setting::Members => "members",
            Setting::Assign => "assign",
            Setting::Targets => "targets",
        }
    }
}

/// An entry of a queue by its stable name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueueAddress {
    /// A setting as a whole (`replace members a, b` is the whole list).
    Setting(Setting),
    /// Those roles among the members (`add members lead`, `remove members agent`).
    Members(Vec<String>),
    /// The OLA row of a priority.
    Target(String),
    /// The calendar of the OLA targets.
    TargetsCalendar,
}

impl QueueAddress {
    pub fn of(o: &QueueOverlay) -> QueueAddress {
        match &o.entry {
            QueueEntry::Setting(kind) => match (kind.as_ref(), o.verb.node) {
                (QueueAttrKind::Members(roles), Verb::Add) => QueueAddress::Members(names(roles)),
                (kind, _) => QueueAddress::Setting(Setting::of(kind).unwrap_or(Setting::Tier)),
            },
            QueueEntry::Target(row) => QueueAddress::Target(row.priority.name.clone()),
            QueueEntry::TargetsCalendar(_) => QueueAddress::TargetsCalendar,
            QueueEntry::Named(r) => match r {
                QueueEntryRef::Tier => QueueAddress::Setting(Setting::Tier),
                QueueEntryRef::EscalatesTo => QueueAddress::Setting(Setting::EscalatesTo),
                QueueEntryRef::Assign => QueueAddress::Setting(Setting::Assign),
                QueueEntryRef::Targets => QueueAddress::Setting(Setting::Targets),
                QueueEntryRef::Members(roles) => QueueAddress::Members(names(roles)),
                QueueEntryRef::Target(p) => QueueAddress::Target(p.name.clone()),
            },
        }
    }

    /// As a tailoring names it: `tier`, `members lead`, `target P1`, `targets on`.
    pub fn describe_plain(&self) -> String {
        match self {
            QueueAddress::Setting(s) => s.keyword().to_string(),
            QueueAddress::Members(roles) => format!("members {}", roles.join(", ")),
            QueueAddress::Target(p) => format!("target {p}"),
            QueueAddress::TargetsCalendar => "targets on".to_string(),
        }
    }

    /// As a diagnostic says it.
    fn describe(&self) -> String {
        match self {
            QueueAddress::Setting(Setting::Targets) => "OLA targets".to_string(),
            QueueAddress::Setting(s) => format!("`{}`", s.keyword()),
            QueueAddress::Members(roles) if roles.len() == 1 => {
                format!("member role `{}`", roles[0])
            }
            QueueAddress::Members(roles) => format!("member roles `{}`", roles.join("`, `")),
            QueueAddress::Target(p) => format!("the OLA target of `{p}`"),
            QueueAddress::TargetsCalendar => "a calendar for the OLA targets".to_string(),
        }
    }

    /// The base's entry as the language writes it on one line, `None` where it has none. For
    /// members, the roles asked for that the queue has.
    pub fn content(&self, q: &Queue) -> Option<String> {
        match self {
            QueueAddress::Setting(s) => setting(q, *s).map(|i| setting_text(&q.attrs[i].kind)),
            QueueAddress::Members(roles) => {
                let have: Vec<&String> = roles.iter().filter(|r| is_member(q, r)).collect();
                (!have.is_empty()).then(|| {
                    let list: Vec<&str> = have.iter().map(|r| r.as_str()).collect();
                    format!("members {}", list.join(", "))
                })
            }
            QueueAddress::Target(p) => targets(q)
                .and_then(|t| t.rows.iter().find(|r| r.priority.name == *p))
                .map(|row| format!("target {}", format::target_row_line(row))),
            QueueAddress::TargetsCalendar => targets(q)
                .and_then(|t| t.calendar.as_ref())
                .map(|c| format!("targets on {c}")),
        }
    }
}

/// What the client's entry says, as [`QueueAddress::content`] says the base's (`None` for an
/// entry only named).
pub fn entry_content(o: &QueueOverlay) -> Option<String> {
    match &o.entry {
        QueueEntry::Setting(kind) => Some(setting_text(kind)),
        QueueEntry::Target(row) => Some(format!("target {}", format::target_row_line(row))),
        QueueEntry::TargetsCalendar(c) => Some(format!("targets on {c}")),
        QueueEntry::Named(_) => None,
    }
}

/// A setting printed by the formatter, on one line.
fn setting_text(kind: &QueueAttrKind) -> String {
    let q = Queue {
        name: Ident {
            name: "x".to_string(),
            span: Span::default(),
        },
        label: None,
        tailoring: None,
        attrs: vec![QueueAttr {
            kind: kind.clone(),
            span: Span::default(),
        }],
        span: Span::default(),
    };
    let printed = format::format(
        "",
        &itsmflow_dsl::ast::File {
            items: vec![itsmflow_dsl::ast::Item::Queue(q)],
        },
    );
    let lines: Vec<&str> = printed.lines().collect();
    // `queue x {`, the setting's line(s), `}`.
    let inner = lines.get(1..lines.len().saturating_sub(1)).unwrap_or(&[]);
    inner.iter().map(|l| l.trim()).collect::<Vec<_>>().join(" ")
}

type Applying = Result<(), Box<Diagnostic>>;

fn apply_entry(q: &mut Queue, o: &QueueOverlay, span: Span) -> Applying {
    let address = QueueAddress::of(o);
    let verb = o.verb.node;
    match (&o.entry, &address) {
        (QueueEntry::Setting(kind), QueueAddress::Members(_)) => {
            let QueueAttrKind::Members(roles) = kind.as_ref() else {
                return Ok(());
            };
            add_members(q, roles, span)
        }
        (QueueEntry::Setting(kind), QueueAddress::Setting(s)) => {
            match (verb, setting(q, *s)) {
                (Verb::Add, Some(i)) => Err(exists(span, &address, q.attrs[i].span)),
                (Verb::Add, None) => {
                    // In the usual order of a queue's settings, so `effective` reads as written.
                    let at = q
                        .attrs
                        .iter()
                        .position(|a| Setting::of(&a.kind).is_some_and(|x| order(x) > order(*s)))
                        .unwrap_or(q.attrs.len());
                    q.attrs.insert(
                        at,
                        QueueAttr {
                            kind: kind.as_ref().clone(),
                            span,
                        },
                    );
                    Ok(())
                }
                (_, Some(i)) => {
                    q.attrs[i] = QueueAttr {
                        kind: kind.as_ref().clone(),
                        span,
                    };
                    Ok(())
                }
                (_, None) => Err(missing(span, verb, &address, q, None)),
            }
        }
        (QueueEntry::Target(row), _) => {
            let Some(block) = targets_mut(q) else {
                return Err(no_targets(span, verb, &address, q));
            };
            let at = block
                .rows
                .iter()
                .position(|r| r.priority.name == row.priority.name);
            match (verb, at) {
                (Verb::Add, Some(i)) => Err(exists(span, &address, block.rows[i].span)),
                (Verb::Add, None) => {
                    block.rows.push(row.clone());
                    Ok(())
                }
                (_, Some(i)) => {
                    block.rows[i] = row.clone();
                    Ok(())
                }
                (_, None) => {
                    let known: Vec<String> =
                        block.rows.iter().map(|r| r.priority.name.clone()).collect();
                    let close = did_you_mean(&row.priority.name, known.iter().map(String::as_str))
                        .map(str::to_string);
                    Err(missing(span, verb, &address, q, close))
                }
            }
        }
        (QueueEntry::TargetsCalendar(cal), _) => {
            let Some(block) = targets_mut(q) else {
                return Err(no_targets(span, verb, &address, q));
            };
            match (verb, &block.calendar) {
                (Verb::Add, Some(c)) => Err(exists(span, &address, c.span)),
                (Verb::Replace, None) => Err(missing(span, verb, &address, q, None)),
                _ => {
                    block.calendar = Some(cal.clone());
                    Ok(())
                }
            }
        }
        (QueueEntry::Named(_), _) => named(q, verb, &address, span),
        // `add` and `replace` write a setting, a row or a calendar; the grammar allows no other.
        (QueueEntry::Setting(_), _) => Ok(()),
    }
}

/// `add members lead, boss`: each role joins the members (a list is started if there is none).
fn add_members(q: &mut Queue, roles: &[Ident], span: Span) -> Applying {
    for role in roles {
        if is_member(q, &role.name) {
            let at = setting(q, Setting::Members).map_or(span, |i| q.attrs[i].span);
            let d = exists(
                role.span,
                &QueueAddress::Members(vec![role.name.clone()]),
                at,
            );
            return Err(Box::new(d.with_help(
                "the role works the queue already: leave it out of `add members`",
            )));
        }
    }
    match setting(q, Setting::Members) {
        Some(i) => {
            if let QueueAttrKind::Members(list) = &mut q.attrs[i].kind {
                list.extend(roles.iter().cloned());
            }
        }
        None => {
            let at = q
                .attrs
                .iter()
                .position(|a| {
                    Setting::of(&a.kind).is_some_and(|x| order(x) > order(Setting::Members))
                })
                .unwrap_or(q.attrs.len());
            q.attrs.insert(
                at,
                QueueAttr {
                    kind: QueueAttrKind::Members(roles.to_vec()),
                    span,
                },
            );
        }
    }
    Ok(())
}

/// `remove ...` and `require ...`.
fn named(q: &mut Queue, verb: Verb, address: &QueueAddress, span: Span) -> Applying {
    match address {
        QueueAddress::Setting(s) => match setting(q, *s) {
            None => Err(missing(span, verb, address, q, None)),
            Some(i) => {
                if verb == Verb::Remove {
                    q.attrs.remove(i);
                }
                Ok(())
            }
        },
        QueueAddress::Members(roles) => {
            if let Some(absent) = roles.iter().find(|r| !is_member(q, r)) {
                let one = QueueAddress::Members(vec![absent.clone()]);
                let members: Vec<String> = setting(q, Setting::Members)
                    .map(|i| match &q.attrs[i].kind {
                        QueueAttrKind::Members(list) => names(list),
                        _ => Vec::new(),
                    })
                    .unwrap_or_default();
                let close =
                    did_you_mean(absent, members.iter().map(String::as_str)).map(str::to_string);
                return Err(missing(span, verb, &one, q, close));
            }
            if verb == Verb::Remove {
                if let Some(i) = setting(q, Setting::Members) {
                    if let QueueAttrKind::Members(list) = &mut q.attrs[i].kind {
                        list.retain(|r| !roles.contains(&r.name));
                        // A queue without members is written without `members`.
                        if list.is_empty() {
                            q.attrs.remove(i);
                        }
                    }
                }
            }
            Ok(())
        }
        QueueAddress::Target(p) => {
            let Some(block) = targets_mut(q) else {
                return Err(no_targets(span, verb, address, q));
            };
            match block.rows.iter().position(|r| r.priority.name == *p) {
                None => {
                    let known: Vec<String> =
                        block.rows.iter().map(|r| r.priority.name.clone()).collect();
                    let close =
                        did_you_mean(p, known.iter().map(String::as_str)).map(str::to_string);
                    Err(missing(span, verb, address, q, close))
                }
                Some(i) => {
                    if verb == Verb::Remove {
                        block.rows.remove(i);
                    }
                    Ok(())
                }
            }
        }
        // The calendar is replaced or added, never only named.
        QueueAddress::TargetsCalendar => Ok(()),
    }
}

fn order(s: Setting) -> usize {
    s as usize
}

fn setting(q: &Queue, s: Setting) -> Option<usize> {
    q.attrs.iter().position(|a| Setting::of(&a.kind) == Some(s))
}

fn is_member(q: &Queue, role: &str) -> bool {
    q.attrs.iter().any(|a| match &a.kind {
        QueueAttrKind::Members(list) => list.iter().any(|r| r.name == role),
        _ => false,
    })
}

fn targets(q: &Queue) -> Option<&Targets> {
    q.attrs.iter().find_map(|a| match &a.kind {
        QueueAttrKind::Targets(t) => Some(t),
        _ => None,
    })
}

fn targets_mut(q: &mut Queue) -> Option<&mut Targets> {
    q.attrs.iter_mut().find_map(|a| match &mut a.kind {
        QueueAttrKind::Targets(t) => Some(t),
        _ => None,
    })
}

fn names(ids: &[Ident]) -> Vec<String> {
    ids.iter().map(|i| i.name.clone()).collect()
}

fn exists(span: Span, address: &QueueAddress, base: Span) -> Box<Diagnostic> {
    Box::new(
        Diagnostic::error(
            "overlay-exists",
            span,
            format!(
                "cannot add {}: the queue already has it",
                address.describe()
            ),
        )
        .with_label("added here")
        .with_secondary(base, "it is here")
        .with_help("write `replace` to change it"),
    )
}

fn missing(
    span: Span,
    verb: Verb,
    address: &QueueAddress,
    q: &Queue,
    close: Option<String>,
) -> Box<Diagnostic> {
    let what = address.describe();
    let v = verb.as_str();
    let (code, message) = match verb {
        Verb::Require => (
            "overlay-required-missing",
            format!(
                "the tailoring requires {what}, which queue `{}` does not have",
                q.name
            ),
        ),
        _ => (
            "overlay-missing",
            format!("cannot {v} {what}: queue `{}` has no such entry", q.name),
        ),
    };
    let d = Diagnostic::error(code, span, message).with_label(format!("{v} here"));
    Box::new(match close {
        Some(c) => d.with_help(format!("did you mean `{c}`?")),
        None if verb == Verb::Replace => {
            d.with_help("write `add` for an entry the base does not have")
        }
        None => d,
    })
}

/// A row or the calendar of OLA targets the queue does not have a block for (it may take its
/// tier's targets, which are the tier's to change).
fn no_targets(span: Span, verb: Verb, address: &QueueAddress, q: &Queue) -> Box<Diagnostic> {
    let d = missing(span, verb, address, q, None);
    Box::new(d.with_help(
        "the queue has no OLA targets of its own: write `add targets { ... }` with every row \
         (a queue's own targets replace its tier's whole)",
    ))
}
