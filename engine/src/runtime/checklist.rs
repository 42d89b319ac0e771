//! Stage checklists: items people tick off while a ticket is in a stage, which a transition
//! may require all ticked (`requires checklist`).
//!
//! The state is not stored apart: it is read from the history, as every other fact of a
//! ticket is. A `checked` event ticks or clears one item of the stage the ticket was in; the
//! checklist of the current stage is what those events say since the ticket last entered it
//! (from another stage: a transition from the stage back to itself keeps it).

use super::types::{Event, EventKind};
use crate::model::{Process, StageId};

/// Which items of `stage`'s checklist are ticked after `events` (the ticket's whole history,
/// the ticket being in `stage` now), in the checklist's order.
pub fn state(p: &Process, stage: StageId, events: &[Event]) -> Vec<bool> {
    let items = p.stages.get(stage.index()).map_or(0, |s| s.checklist.len());
    // Most stages have none: a firing decides on every ticket, so no history is walked then.
    if items == 0 {
        return Vec::new();
    }
    let mut ticked = vec![false; items];
    // Ticks under a version the ticket left are not carried over: its items may differ.
    for e in super::types::current_epoch(events) {
        match &e.kind {
            EventKind::Created { stage: s, .. } if *s == stage => ticked.fill(false),
            EventKind::Transitioned { from, to, .. }
            | EventKind::ApprovalDecided { from, to, .. }
                if *to == stage && from != to =>
            {
                ticked.fill(false)
            }
            EventKind::Checked {
                stage: s,
                item,
                done,
            } if *s == stage => {
                if let Some(slot) = ticked.get_mut(*item as usize) {
                    *slot = *done;
                }
            }
            _ => {}
        }
    }
    ticked
}

/// The names of the items of `stage`'s checklist not ticked in `ticked`.
pub fn missing(p: &Process, stage: StageId, ticked: &[bool]) -> Vec<String> {
    p.stages
        .get(stage.index())
        .map(|s| {
            s.checklist
                .iter()
                .enumerate()
                .filter(|(i, _)| !ticked.get(*i).copied().unwrap_or(false))
                .map(|(_, item)| item.name.clone())
                .collect()
        })
        .unwrap_or_default()
}
