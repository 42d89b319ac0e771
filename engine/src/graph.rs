//! A process as a graph: stages are nodes, transitions and approval outcomes are edges.
//!
//! The checker uses it for reachability (unreachable stages, dead ends, no way to a final
//! stage); the runtime uses it to list the actions available in a stage; the CLI renders it
//! as Graphviz `dot` or Mermaid.

use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::{Bfs, EdgeRef, Reversed};
use petgraph::Direction;

use crate::model::{OutcomeKind, Process, Project, StageId, TransitionId};

/// Why an instance can move along an edge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Edge {
    Transition(TransitionId),
    Approval(OutcomeKind),
}

/// Stages and the ways between them. Node `i` is stage `i`.
#[derive(Clone, Debug, Default)]
pub struct ProcessGraph {
    graph: DiGraph<StageId, Edge, u32>,
}

impl ProcessGraph {
    pub fn new(stages: usize, edges: impl IntoIterator<Item = (StageId, StageId, Edge)>) -> Self {
        let mut graph = DiGraph::with_capacity(stages, stages * 4);
        for i in 0..stages {
            graph.add_node(StageId(i as u32));
        }
        for (from, to, edge) in edges {
            if from.index() < stages && to.index() < stages {
                graph.add_edge(
                    NodeIndex::new(from.index()),
                    NodeIndex::new(to.index()),
                    edge,
                );
            }
        }
        ProcessGraph { graph }
    }

    pub fn stage_count(&self) -> usize {
        self.graph.node_count()
    }

    /// Edges leaving a stage: `(target, edge)`.
    pub fn exits(&self, stage: StageId) -> impl Iterator<Item = (StageId, Edge)> + '_ {
        self.graph
            .edges_directed(NodeIndex::new(stage.index()), Direction::Outgoing)
            .map(|e| (StageId(e.target().index() as u32), *e.weight()))
    }

    /// Every edge in the order it was added: transitions in declaration order, then approval
    /// outcomes.
    pub fn edges(&self) -> impl Iterator<Item = (StageId, StageId, Edge)> + '_ {
        self.graph.raw_edges().iter().map(|e| {
            (
                StageId(e.source().index() as u32),
                StageId(e.target().index() as u32),
                e.weight,
            )
        })
    }

    /// Whether any edge leaves `stage` (self-loops count).
    pub fn has_exit(&self, stage: StageId) -> bool {
        self.exits(stage).next().is_some()
    }

    /// Stages reachable from `start` (including itself).
    pub fn reachable_from(&self, start: StageId) -> Vec<bool> {
        let mut seen = vec![false; self.stage_count()];
        if start.index() >= seen.len() {
            return seen;
        }
        let mut bfs = Bfs::new(&self.graph, NodeIndex::new(start.index()));
        while let Some(n) = bfs.next(&self.graph) {
            seen[n.index()] = true;
        }
        seen
    }

    /// Stages from which some stage in `targets` can be reached (including the targets).
    pub fn can_reach(&self, targets: &[StageId]) -> Vec<bool> {
        let mut seen = vec![false; self.stage_count()];
        let reversed = Reversed(&self.graph);
        for t in targets {
            if t.index() >= seen.len() || seen[t.index()] {
                continue;
            }
            let mut bfs = Bfs::new(reversed, NodeIndex::new(t.index()));
            while let Some(n) = bfs.next(reversed) {
                seen[n.index()] = true;
            }
        }
        seen
    }
}

/// Quote a string for dot and Mermaid labels.
fn quoted(text: &str) -> String {
    let escaped = text.replace('\\', "\\\\").replace('"', "'");
    format!("\"{escaped}\"")
}

fn edge_label(project: &Project, process: &Process, edge: Edge) -> String {
    match edge {
        Edge::Approval(kind) => format!("on {}", kind.as_str()),
        Edge::Transition(t) => {
            let t = &process.transitions[t.index()];
            let mut label = t.name.clone();
            // Who may: the roles, then the people the ticket names.
            let who: Vec<String> = t
                .roles
                .iter()
                .map(|r| project.role(*r).name.clone())
                .chain(t.people.iter().map(|p| p.describe(process)))
                .collect();
            if !who.is_empty() {
                label.push_str(&format!(" [{}]", who.join(", ")));
            }
            if let Some(after) = t.after {
                label.push_str(&format!(" (after {after})"));
            }
            if let Some(at) = t.at {
                label.push_str(&format!(" (at {})", process.fields[at.index()].name));
            }
            label
        }
    }
}

fn stage_label(process: &Process, stage: StageId) -> String {
    let s = &process.stages[stage.index()];
    s.label.clone().unwrap_or_else(|| s.name.clone())
}

/// Graphviz `dot` source for a process: stages as boxes (initial bold, final double),
/// transitions labelled with their action and roles.
pub fn to_dot(project: &Project, process: &Process) -> String {
    let mut out = format!("digraph {} {{\n", quoted(&process.name));
    out.push_str("  rankdir=LR;\n  node [shape=box, style=rounded];\n");
    for (i, s) in process.stages.iter().enumerate() {
        let id = StageId(i as u32);
        let mut attrs = vec![format!("label={}", quoted(&stage_label(process, id)))];
        if s.initial {
            attrs.push("style=\"rounded,bold\"".into());
        }
        if s.is_final {
            attrs.push("peripheries=2".into());
        }
        out.push_str(&format!("  {} [{}];\n", quoted(&s.name), attrs.join(", ")));
    }
    for (from, to, edge) in process.graph.edges() {
        let style = match edge {
            Edge::Approval(_) => ", style=dashed",
            Edge::Transition(_) => "",
        };
        out.push_str(&format!(
            "  {} -> {} [label={}{style}];\n",
            quoted(&process.stages[from.index()].name),
            quoted(&process.stages[to.index()].name),
            quoted(&edge_label(project, process, edge)),
        ));
    }
    out.push_str("}\n");
    out
}

/// Mermaid `stateDiagram-v2` source for a process.
pub fn to_mermaid(project: &Project, process: &Process) -> String {
    let mut out = String::from("stateDiagram-v2\n");
    for (i, s) in process.stages.iter().enumerate() {
        let label = stage_label(process, StageId(i as u32)).replace(':', " ");
        out.push_str(&format!("  state {} as {}\n", quoted(&label), s.name));
        if s.initial {
            out.push_str(&format!("  [*] --> {}\n", s.name));
        }
        if s.is_final {
            out.push_str(&format!("  {} --> [*]\n", s.name));
        }
    }
    for (from, to, edge) in process.graph.edges() {
        let label = edge_label(project, process, edge).replace(':', " ");
        out.push_str(&format!(
            "  {} --> {} : {}\n",
            process.stages[from.index()].name,
            process.stages[to.index()].name,
            label
        ));
    }
    out
}
