//! Carrying a client's queue tailorings onto a new standard library: each entry judged as a
//! process tailoring's is (see [`super::rebase`]), a setting by its keyword, a member by its
//! role, an OLA row by its priority. A rename conflicts when the new library declares a queue
//! of the new name itself.

use itsmflow_dsl::ast::{self, Item, Queue, QueueAttrKind};

use super::rebase::{base_gone, status, EntryReport, Status};
use super::tailor_queue::{entry_content, QueueAddress};

/// Judge every entry of `client`'s queue tailorings (in `client_files`) against the base queue
/// before (`old`) and now (`new`).
pub(super) fn rebase_queues(
    old: &[ast::File],
    new: &[ast::File],
    client_files: &[ast::File],
    client: &str,
) -> Vec<EntryReport> {
    let mut out = Vec::new();
    for overlay in queues(client_files) {
        let Some(t) = overlay
            .tailoring
            .as_ref()
            .filter(|t| t.client.name == client)
        else {
            continue;
        };
        let (before, now) = (base(old, &t.base.name), base(new, &t.base.name));
        let (Some(before), Some(now)) = (before, now) else {
            out.push(base_gone("queue", &overlay.name, t, before.is_none()));
            continue;
        };
        for attr in &overlay.attrs {
            let report = |entry: String, (status, reason), before, now| EntryReport {
                kind: "queue",
                item: overlay.name.name.clone(),
                entry,
                status,
                reason,
                before,
                now,
                span: attr.span,
            };
            match &attr.kind {
                QueueAttrKind::Overlay(o) => {
                    let address = QueueAddress::of(o);
                    let (was, is) = (address.content(before), address.content(now));
                    let judged = status(
                        o.verb.node,
                        was.as_ref(),
                        is.as_ref(),
                        entry_content(o).as_ref(),
                    );
                    out.push(report(
                        format!("{} {}", o.verb.node.as_str(), address.describe_plain()),
                        judged,
                        was,
                        is,
                    ));
                }
                QueueAttrKind::Rename(to) => {
                    let judged = match base(new, &to.name) {
                        Some(_) => (
                            Status::Conflicting,
                            Some(format!("the base now has a queue `{to}` of its own")),
                        ),
                        None => (Status::Applying, None),
                    };
                    out.push(report(format!("rename to {to}"), judged, None, None));
                }
                // Not an entry of a tailoring (`tailoring-needs-verb` says so).
                _ => {}
            }
        }
    }
    out
}

fn queues(files: &[ast::File]) -> impl Iterator<Item = &Queue> {
    files.iter().flat_map(|f| &f.items).filter_map(|i| match i {
        Item::Queue(q) => Some(q),
        _ => None,
    })
}

fn base<'a>(files: &'a [ast::File], name: &str) -> Option<&'a Queue> {
    queues(files).find(|q| q.tailoring.is_none() && q.name.name == name)
}
