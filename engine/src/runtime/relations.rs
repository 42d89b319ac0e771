//! Tickets that relate: which stored links a declared link kind reads, the linked tickets as a
//! condition sees them, and evaluating conditions that read them.
//!
//! A link is stored once, from the process that declares its kind (`incident caused_by
//! problem`); the other process reads the same rows through a `via` declaration
//! (`incidents: many incident via caused_by`). Linked tickets may run another version of their
//! process than the one the reader's definition was checked with, so a linked ticket's stage,
//! priority and fields are translated by name into the reader's model of its process before a
//! condition reads them (nothing to translate when both are the same version, the usual case).

use std::sync::Arc;

use super::catalog::Definition;
use super::types::{Instance, InstanceId, Link};
use crate::model::{
    Cardinality, CmpOp, Condition, FieldType, LinkDecl, LinkId, Operand, PriorityId, Process,
    Quantifier, StageId, Subject, Value,
};

/// A linked ticket as the reader's conditions see it: its state in the reader's model of its
/// process (`None` where that model has no such stage, field value or priority).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkedTicket {
    pub id: InstanceId,
    pub stage: Option<StageId>,
    pub fields: Vec<Option<Value>>,
    pub priority: Option<PriorityId>,
}

/// The tickets linked to one instance, per link kind its process declares (by [`LinkId`]);
/// only the kinds a decision reads are loaded, the others are empty.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Linked {
    pub by_link: Vec<Vec<LinkedTicket>>,
    /// The linked tickets as read: a change decided on them is written only if none has
    /// changed since (each is checked at its version in the same transaction).
    pub read: Vec<Arc<Instance>>,
}

impl Linked {
    pub fn of(&self, link: LinkId) -> &[LinkedTicket] {
        self.by_link
            .get(link.index())
            .map(Vec::as_slice)
            .unwrap_or_default()
    }
}

/// No linked tickets: for decisions that read none.
pub static NO_LINKS: Linked = Linked {
    by_link: Vec::new(),
    read: Vec::new(),
};

/// The link kinds a condition reads.
pub fn links_read(c: &Condition, out: &mut Vec<LinkId>) {
    match c {
        Condition::Or(parts) | Condition::And(parts) => {
            for p in parts {
                links_read(p, out);
            }
        }
        Condition::Not(inner) => links_read(inner, out),
        Condition::Compare { .. }
        | Condition::In { .. }
        | Condition::Has { .. }
        | Condition::Empty(_) => {}
        Condition::Linked { link, .. } => {
            if !out.contains(link) {
                out.push(*link);
            }
        }
    }
}

/// Whether a stored link is one of `decl`'s, seen from `me`, and if so the other ticket.
pub fn other_end(decl: &LinkDecl, me: InstanceId, link: &Link) -> Option<InstanceId> {
    let (kind, from_me) = decl.stored_kind();
    if link.kind != kind {
        return None;
    }
    match from_me {
        true if link.from == me => Some(link.to),
        false if link.to == me => Some(link.from),
        _ => None,
    }
}

/// The tickets linked to `me` through `decl`, among its stored links, in id order, once each.
pub fn others(decl: &LinkDecl, me: InstanceId, stored: &[Link]) -> Vec<InstanceId> {
    let mut others: Vec<InstanceId> = stored
        .iter()
        .filter_map(|s| other_end(decl, me, s))
        .collect();
    others.sort();
    others.dedup();
    others
}

/// The link to store for `me` declaring `decl` to `other`: from the declaring side.
pub fn stored(
    decl: &LinkDecl,
    me: InstanceId,
    other: InstanceId,
) -> (InstanceId, InstanceId, &str) {
    let (kind, from_me) = decl.stored_kind();
    match from_me {
        true => (me, other, kind),
        false => (other, me, kind),
    }
}

/// Why a new link of kind `decl` from `me` to `other` (of process `other_process`) may not be
/// made, given `me`'s links now and `other`'s.
pub fn refusal(
    decl: &LinkDecl,
    other_process: &str,
    mine: &[Link],
    me: InstanceId,
    theirs: &[Link],
    other: InstanceId,
    other_decl: Option<&LinkDecl>,
) -> Option<String> {
    if decl.process != other_process {
        return Some(format!(
            "`{}` links to a {} ticket, and {other} is a {other_process} ticket",
            decl.name, decl.process
        ));
    }
    if decl.cardinality == Cardinality::One {
        if let Some(existing) = mine.iter().find_map(|l| other_end(decl, me, l)) {
            if existing != other {
                return Some(format!(
                    "`{}` links to one {} ticket, and this one already links to {existing}",
                    decl.name, decl.process
                ));
            }
        }
    }
    // The other side's own declaration of the same rows may allow only one too.
    if let Some(back) = other_decl.filter(|d| d.cardinality == Cardinality::One) {
        if let Some(existing) = theirs.iter().find_map(|l| other_end(back, other, l)) {
            if existing != me {
                return Some(format!(
                    "{other}'s `{}` links to one ticket, and it already links to {existing}",
                    back.name
                ));
            }
        }
    }
    None
}

/// The declaration in `theirs` that reads the same stored rows as `decl` from the other end.
pub fn reverse<'p>(decl: &LinkDecl, mine: &Process, theirs: &'p Process) -> Option<&'p LinkDecl> {
    theirs.links.iter().find(|d| {
        d.process == mine.name
            && match (&decl.via, &d.via) {
                (None, Some(v)) => *v == decl.name,
                (Some(v), None) => d.name == *v,
                _ => false,
            }
    })
}

/// A linked ticket as `reader` (the reader's model of the linked process) sees it.
pub fn view(reader: &Process, def: &Definition, inst: &Instance) -> LinkedTicket {
    let own = def.model();
    if std::ptr::eq(own, reader) {
        return LinkedTicket {
            id: inst.id,
            stage: Some(inst.stage),
            fields: inst.fields.to_vec(),
            priority: inst.priority,
        };
    }
    let stage = reader.stage(&own.stages[inst.stage.index()].name);
    let priority = inst
        .priority
        .and_then(|p| own.priorities.get(p.index()))
        .and_then(|name| reader.priorities.iter().position(|n| n == name))
        .map(|i| PriorityId(i as u32));
    let fields = reader
        .fields
        .iter()
        .map(|f| {
            let theirs = own.field(&f.name)?;
            let value = inst.fields.get(theirs.index())?.as_ref()?;
            translate(&own.fields[theirs.index()].ty, &f.ty, value)
        })
        .collect();
    LinkedTicket {
        id: inst.id,
        stage,
        fields,
        priority,
    }
}

/// A value of a field typed `from`, as the same field typed `to` (enum values by name).
fn translate(from: &FieldType, to: &FieldType, value: &Value) -> Option<Value> {
    match (from, to, value) {
        // Element by element; an element the reader's model has no value for is left out, as
        // a field the model does not know is.
        (FieldType::List(old), FieldType::List(new), Value::List(elements)) => Some(Value::List(
            elements
                .iter()
                .filter_map(|e| translate(old, new, e))
                .collect(),
        )),
        (FieldType::Enum(old), FieldType::Enum(new), Value::Enum(i)) => {
            let name = old.get(*i as usize)?;
            new.iter()
                .position(|n| n == name)
                .map(|i| Value::Enum(i as u32))
        }
        (FieldType::Enum(_), _, _) | (_, FieldType::Enum(_), _) => None,
        (a, b, v) if a == b => Some(v.clone()),
        _ => None,
    }
}

/// What a condition reads of one ticket.
#[derive(Clone, Copy)]
pub struct Facts<'a> {
    pub fields: &'a [Option<Value>],
    pub priority: Option<PriorityId>,
    pub stage: Option<StageId>,
    /// Its linked tickets, as far as loaded (none inside a link condition's `where`).
    pub linked: Option<&'a Linked>,
}

impl<'a> Facts<'a> {
    pub fn of(fields: &'a [Option<Value>], priority: Option<PriorityId>) -> Self {
        Facts {
            fields,
            priority,
            stage: None,
            linked: None,
        }
    }

    fn ticket(t: &'a LinkedTicket) -> Self {
        Facts {
            fields: &t.fields,
            priority: t.priority,
            stage: t.stage,
            linked: None,
        }
    }

    fn subject(&self, s: Subject) -> Option<Operand> {
        match s {
            Subject::Priority => self.priority.map(Operand::Priority),
            Subject::Stage => self.stage.map(Operand::Stage),
            Subject::Field(f) => self.fields.get(f.index())?.clone().map(Operand::Value),
        }
    }
}

/// Evaluate a condition. An unset field equals nothing: `==`, ordering and `in` are false,
/// `!=` is true. A link condition over links that were not loaded sees no linked tickets.
pub fn holds(c: &Condition, facts: Facts) -> bool {
    match c {
        Condition::Or(parts) => parts.iter().any(|p| holds(p, facts)),
        Condition::And(parts) => parts.iter().all(|p| holds(p, facts)),
        Condition::Not(inner) => !holds(inner, facts),
        Condition::Compare { subject, op, value } => match facts.subject(*subject) {
            None => *op == CmpOp::Ne,
            Some(v) => match op {
                CmpOp::Eq => v == *value,
                CmpOp::Ne => v != *value,
                CmpOp::Lt => v < *value,
                CmpOp::Le => v <= *value,
                CmpOp::Gt => v > *value,
                CmpOp::Ge => v >= *value,
            },
        },
        Condition::In { subject, values } => {
            facts.subject(*subject).is_some_and(|v| values.contains(&v))
        }
        Condition::Has { field, values } => match facts.fields.get(field.index()) {
            Some(Some(Value::List(elements))) => elements.iter().any(|e| values.contains(e)),
            _ => false,
        },
        Condition::Empty(field) => match facts.fields.get(field.index()) {
            Some(Some(Value::List(elements))) => elements.is_empty(),
            _ => true,
        },
        Condition::Linked {
            quantifier,
            link,
            test,
        } => {
            let tickets = facts.linked.map(|l| l.of(*link)).unwrap_or_default();
            let matches = |t: &LinkedTicket| {
                test.as_deref()
                    .is_none_or(|test| holds(test, Facts::ticket(t)))
            };
            match quantifier {
                Quantifier::Any => tickets.iter().any(matches),
                Quantifier::All => tickets.iter().all(matches),
                Quantifier::No => !tickets.iter().any(matches),
            }
        }
    }
}

/// What one action's effects have done so far: the tickets they changed (each at most once
/// per action, the acting ticket first, added when effects first run). Empty, and so free, for
/// the actions that have no effects.
#[derive(Debug, Default)]
pub struct Touched {
    pub tickets: Vec<InstanceId>,
}

/// How many steps a cascade of effects may take (an effect's transition may have effects of its
/// own): the checker refuses cycles, so this only bounds what a long chain costs.
pub const MAX_CASCADE_DEPTH: usize = 4;
