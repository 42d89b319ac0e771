//! The flow of a process: every stage reachable from the initial one, every non-final stage
//! with a way out, final stages without one, and a way to an end from everywhere.

use itsmflow_dsl::ast;
use itsmflow_dsl::Diagnostic;

use super::names::Names;
use crate::graph::{Edge, ProcessGraph};
use crate::model::{Approval, OutcomeKind, Stage, StageId, Transition, TransitionId};

pub(super) fn check_flow(
    p: &ast::Process,
    names: &Names,
    stages: &[Stage],
    transitions: &[Transition],
    approvals: &[Approval],
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
        if s.is_final && graph.has_exit(id) {
            diags.push(
                Diagnostic::error("final-stage-has-exit", span(i), format!("final stage `{}` has a way out", s.name))
                    .with_label("instances end here, yet a transition leaves it")
                    .with_help("remove the transition, or make the stage non-final (reopening goes from `resolved`, not from `closed`)"),
            );
        }
        if !s.is_final && !graph.has_exit(id) {
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
    let reachable = graph.reachable_from(StageId(initial as u32));
    let can_end = graph.can_reach(&finals);
    for (i, s) in stages.iter().enumerate() {
        if !reachable[i] {
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
