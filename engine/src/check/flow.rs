//! The flow of a process: every stage reachable from the initial one, every non-final stage
//! with a way out, final stages without one, and a way to an end from everywhere.
//!
//! A stage name in a transition or an approval outcome that does not resolve is reported where
//! it is written; for the flow checks it stands for the stage the "did you mean" help
//! suggests, the likely intent, so that one typo is not also reported as stages being stuck or
//! unreachable. Without a suggestion it is [`UNRESOLVED`]: the edge is left out of the graph,
//! but not forgotten: its source does have a way out (to somewhere unknown, which might reach
//! anything), and its target might be reached (from somewhere unknown).

use itsmflow_dsl::ast::{self, Ident};
use itsmflow_dsl::Diagnostic;

use super::names::{did_you_mean, Names};
use crate::graph::{Edge, ProcessGraph};
use crate::model::{Approval, OutcomeKind, Stage, StageId, Transition, TransitionId};

/// The end of an edge whose stage name did not resolve and suggests no stage (the error is
/// reported where it is written). `ProcessGraph` drops edges to stages it does not have.
pub(super) const UNRESOLVED: StageId = StageId(u32::MAX);

/// Resolve the stage at one end of a transition, reporting an unknown name; for an unknown
/// name, the stage to assume for the flow checks (see the module documentation).
pub(super) fn resolve_stage(stages: &Names, ident: &Ident, diags: &mut Vec<Diagnostic>) -> StageId {
    match stages.resolve(ident, diags) {
        Some(id) => StageId(id),
        None => guess(stages, ident),
    }
}

/// The stage an unknown stage name most likely means, or [`UNRESOLVED`].
pub(super) fn guess(stages: &Names, ident: &Ident) -> StageId {
    did_you_mean(&ident.name, stages.iter())
        .and_then(|name| stages.get(name))
        .map_or(UNRESOLVED, StageId)
}

/// `partial` are edges of approvals that could not be built (an outcome is missing or names an
/// unknown stage): their resolved ends still take part in the flow.
pub(super) fn check_flow(
    p: &ast::Process,
    names: &Names,
    stages: &[Stage],
    transitions: &[Transition],
    approvals: &[Approval],
    partial: &[(StageId, StageId, Edge)],
    diags: &mut Vec<Diagnostic>,
) -> ProcessGraph {
    let mut edges = Vec::new();
    for (i, t) in transitions.iter().enumerate() {
        for from in &t.from {
            edges.push((*from, t.to, Edge::Transition(TransitionId(i as u32))));
        }
    }
    for a in approvals {
        edges.push((a.stage, a.on_approve, Edge::Approval(OutcomeKind::Approve)));
        edges.push((a.stage, a.on_reject, Edge::Approval(OutcomeKind::Reject)));
        if let Some((_, s)) = a.on_expire {
            edges.push((a.stage, s, Edge::Approval(OutcomeKind::Expire)));
        }
    }
    edges.extend_from_slice(partial);
    // Stages with a way out to an unknown stage, and stages with a way in from one.
    let mut open_exit = vec![false; stages.len()];
    let mut open_entry = vec![false; stages.len()];
    for (from, to, _) in &edges {
        match (from.index() < stages.len(), to.index() < stages.len()) {
            (true, false) => open_exit[from.index()] = true,
            (false, true) => open_entry[to.index()] = true,
            _ => {}
        }
    }
    let graph = ProcessGraph::new(stages.len(), edges);
    if names.len() != stages.len() {
        return graph; // duplicate stage names: already reported, indices unreliable
    }
    let span = |i: usize| names.span(i as u32);
    let finals: Vec<StageId> = (0..stages.len())
        .filter(|&i| stages[i].is_final)
        .map(|i| StageId(i as u32))
        .collect();
    if finals.is_empty() && !stages.is_empty() {
        diags.push(
            Diagnostic::error(
                "no-final-stage",
                p.name.span,
                format!("process `{}` has no final stage", p.name),
            )
            .with_label("instances could never end")
            .with_help("mark the stage where instances end `final`, e.g. `stage closed final`"),
        );
    }
    for (i, s) in stages.iter().enumerate() {
        let id = StageId(i as u32);
        let has_exit = graph.has_exit(id) || open_exit[i];
        if s.is_final && has_exit {
            diags.push(
                Diagnostic::error("final-stage-has-exit", span(i), format!("final stage `{}` has a way out", s.name))
                    .with_label("instances end here, yet a transition leaves it")
                    .with_help("remove the transition, or make the stage non-final (reopening goes from `resolved`, not from `closed`)"),
            );
        }
        if !s.is_final && !has_exit {
            diags.push(
                Diagnostic::error(
                    "dead-end-stage",
                    span(i),
                    format!("stage `{}` has no way out", s.name),
                )
                .with_label("instances that get here are stuck")
                .with_help("add a transition from it, or mark it `final`"),
            );
        }
    }
    let Some(initial) = stages.iter().position(|s| s.initial) else {
        return graph;
    };
    // Instances start in the initial stage (a second one is reported as such: its stages are
    // not unreachable because of it), and may enter stages from unknown ones. Every stage might
    // be reachable once a stage with a way out to an unknown stage is.
    let roots: Vec<StageId> = (0..stages.len())
        .filter(|&i| stages[i].initial || open_entry[i])
        .map(|i| StageId(i as u32))
        .collect();
    let reachable = reachable_from_any(&graph, &roots);
    let open_reachable = (0..stages.len()).any(|i| reachable[i] && open_exit[i]);
    // A stage that reaches a way out to an unknown stage might reach a final stage by it.
    let mut ends = finals.clone();
    ends.extend(
        (0..stages.len())
            .filter(|&i| open_exit[i])
            .map(|i| StageId(i as u32)),
    );
    let can_end = graph.can_reach(&ends);
    for (i, s) in stages.iter().enumerate() {
        if !reachable[i] {
            if open_reachable {
                continue;
            }
            diags.push(
                Diagnostic::error(
                    "unreachable-stage",
                    span(i),
                    format!("stage `{}` cannot be reached", s.name),
                )
                .with_label(format!(
                    "no path leads here from `{}`",
                    stages[initial].name
                ))
                .with_help("add a transition into it, or remove it"),
            );
        } else if !finals.is_empty()
            && !s.is_final
            && graph.has_exit(StageId(i as u32))
            && !can_end[i]
        {
            diags.push(
                Diagnostic::error(
                    "no-path-to-final",
                    span(i),
                    format!("no path leads from stage `{}` to a final stage", s.name),
                )
                .with_label("instances here can never finish")
                .with_help("add a transition towards a final stage"),
            );
        }
    }
    graph
}

/// Stages reachable from any of `roots` (including the roots).
fn reachable_from_any(graph: &ProcessGraph, roots: &[StageId]) -> Vec<bool> {
    let mut seen = vec![false; graph.stage_count()];
    let mut queue: Vec<StageId> = Vec::new();
    for r in roots {
        if r.index() < seen.len() && !seen[r.index()] {
            seen[r.index()] = true;
            queue.push(*r);
        }
    }
    while let Some(s) = queue.pop() {
        for (to, _) in graph.exits(s) {
            if !seen[to.index()] {
                seen[to.index()] = true;
                queue.push(to);
            }
        }
    }
    seen
}
