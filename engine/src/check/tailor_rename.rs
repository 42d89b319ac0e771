//! Renaming a queue: `queue service_desk for client acme extends service_desk { rename to
//! helpdesk }` makes the client's queue `helpdesk`, and every reference to `service_desk` in
//! the standard files follows (stages, routes, escalations, other queues' `escalates_to`,
//! services' `queues`, the standard tests). The client's own files are not rewritten: the
//! client sees its queues by their new names, and a reference to the old name there is the
//! unknown queue it looks like.
//!
//! A rename is checked before any tailoring is applied, so that the standard processes the
//! client's tailorings extend already use the new name.

use itsmflow_dsl::ast::{
    self, EscalationAction, EscalationActionKind, Expectation, Ident, Item, Member, QueueAttrKind,
    QueueTarget, ServiceEntryKind, StageAttrKind, TestStepKind,
};
use itsmflow_dsl::Diagnostic;

/// One queue's new name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rename {
    /// The client whose tailoring renames the queue.
    pub client: String,
    pub from: String,
    /// The new name, where the client wrote it.
    pub to: Ident,
}

/// The renames of `client`'s queue tailorings, each checked: one per queue, only of a queue
/// tailored in its own place, and onto a name no other queue has or takes.
pub(super) fn renames(
    files: &[ast::File],
    client: &str,
    diags: &mut Vec<Diagnostic>,
) -> Vec<Rename> {
    let queues: Vec<&ast::Queue> = files
        .iter()
        .flat_map(|f| &f.items)
        .filter_map(|i| match i {
            Item::Queue(q) => Some(q),
            _ => None,
        })
        .collect();
    // Every name a queue has in the client's project: the declared queues, and the client's
    // tailored copies under names of their own.
    let mut taken: Vec<&Ident> = queues
        .iter()
        .filter(|q| match &q.tailoring {
            None => true,
            Some(t) => t.client.name == client && q.name.name != t.base.name,
        })
        .map(|q| &q.name)
        .collect();
    let mut out: Vec<Rename> = Vec::new();
    for q in &queues {
        let Some(t) = q.tailoring.as_ref().filter(|t| t.client.name == client) else {
            continue;
        };
        let mut first: Option<&Ident> = None;
        for attr in &q.attrs {
            let QueueAttrKind::Rename(to) = &attr.kind else {
                continue;
            };
            if let Some(first) = first {
                diags.push(
                    Diagnostic::error(
                        "duplicate-rename",
                        attr.span,
                        format!("queue `{}` is renamed twice", t.base),
                    )
                    .with_label("renamed again here")
                    .with_secondary(first.span, "first renamed here")
                    .with_help("a queue has one name: keep one `rename`"),
                );
                continue;
            }
            first = Some(to);
            if q.name.name != t.base.name {
                diags.push(
                    Diagnostic::error(
                        "rename-of-copy",
                        attr.span,
                        format!(
                            "`{}` is a new queue beside `{}`: there is nothing to rename",
                            q.name, t.base
                        ),
                    )
                    .with_label("renames a copy")
                    .with_help(format!(
                        "to rename the standard queue, tailor it in its place: `queue {b} for \
                         client {c} extends {b} {{ rename to {to} }}`",
                        b = t.base,
                        c = t.client,
                    )),
                );
                continue;
            }
            let exists = queues
                .iter()
                .any(|b| b.tailoring.is_none() && b.name.name == t.base.name);
            if !exists {
                // `unknown-base` says so.
                continue;
            }
            if let Some(other) = taken.iter().find(|n| n.name == to.name) {
                let d = Diagnostic::error(
                    "rename-exists",
                    to.span,
                    format!(
                        "cannot rename `{}` to `{to}`: {}",
                        t.base,
                        if to.name == t.base.name {
                            "that is its name already".to_string()
                        } else {
                            format!("queue `{to}` exists")
                        }
                    ),
                )
                .with_label("a name in use")
                .with_help("a queue's name says which queue it is: choose a name no queue has");
                diags.push(if to.name == t.base.name {
                    d
                } else {
                    d.with_secondary(other.span, "that queue is here")
                });
                continue;
            }
            taken.push(to);
            out.push(Rename {
                client: client.to_string(),
                from: t.base.name.clone(),
                to: to.clone(),
            });
        }
    }
    out
}

/// Every reference to a renamed queue in `file`, rewritten to its new name. Queue declarations
/// keep their names: the tailored queue takes the new one when it is applied.
pub fn rewrite(file: &mut ast::File, renames: &[Rename]) {
    let follow = |id: &mut Ident| {
        if let Some(r) = renames.iter().find(|r| r.from == id.name) {
            id.name = r.to.name.clone();
        }
    };
    for item in &mut file.items {
        match item {
            Item::Queue(q) => {
                for attr in &mut q.attrs {
                    if let QueueAttrKind::EscalatesTo(to) = &mut attr.kind {
                        follow(to);
                    }
                }
            }
            Item::Process(p) => {
                for member in &mut p.members {
                    process_member(member, &follow);
                }
            }
            Item::Service(s) => {
                for entry in &mut s.entries {
                    if let ServiceEntryKind::Queues(list) = &mut entry.kind {
                        list.iter_mut().for_each(follow);
                    }
                }
            }
            Item::Test(t) => {
                for step in &mut t.steps {
                    if let TestStepKind::Expect {
                        expectation: Expectation::Queue(Some(q)) | Expectation::OlaBreachedIn(q),
                        ..
                    } = &mut step.kind
                    {
                        follow(q);
                    }
                }
            }
            Item::Calendar(_) | Item::Tier(_) | Item::Role(_) => {}
        }
    }
}

fn process_member(member: &mut Member, follow: &impl Fn(&mut Ident)) {
    match member {
        Member::Stage(stage) => {
            for attr in &mut stage.attrs {
                match &mut attr.kind {
                    StageAttrKind::Queue(QueueTarget::Named(q)) => follow(q),
                    StageAttrKind::Every { actions, .. } => moves(actions, follow),
                    _ => {}
                }
            }
        }
        Member::Routing(r) => r.rules.iter_mut().for_each(|rule| follow(&mut rule.queue)),
        Member::Escalation(e) => {
            for step in &mut e.steps {
                moves(&mut step.actions, follow);
            }
        }
        _ => {}
    }
}

fn moves(actions: &mut [EscalationAction], follow: &impl Fn(&mut Ident)) {
    for action in actions {
        if let EscalationActionKind::MoveToQueue(q) = &mut action.kind {
            follow(q);
        }
    }
}

/// An unknown queue that is a renamed queue's old name (in the client's own files, which use
/// the new one) says so.
pub(super) fn explain_old_names(diags: &mut [Diagnostic], renames: &[Rename]) {
    for d in diags.iter_mut() {
        if d.code != "unknown-queue" && d.code != "test-unknown-queue" {
            continue;
        }
        let Some(r) = renames
            .iter()
            .find(|r| d.message == format!("unknown queue `{}`", r.from))
        else {
            continue;
        };
        *d = d.clone().with_help(format!(
            "client `{}`'s tailoring renames `{}` to `{}`: the client's files use the new \
             name",
            r.client, r.from, r.to
        ));
    }
}
