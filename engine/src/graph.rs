//! A process as a graph: stages are nodes, transitions and approval outcomes are edges.
//!
//! The checker uses it for reachability (unreachable stages, dead ends, no way to a final
//! stage); the runtime uses it to list the actions available in a stage; the CLI renders it
//! as Graphviz `dot` or Mermaid.

use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::{Bfs, EdgeRef, Reversed};
use petgraph::Direction;

use crate::model::{
    Cardinality, EscalationAction, OutcomeKind, Process, Project, StageId, TransitionId,
};

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
        Edge::Approval(OutcomeKind::Expire) => {
            let after = process
                .approvals
                .iter()
                .find_map(|a| a.on_expire.map(|(d, _)| d));
            match after {
                Some(d) => format!("on expire (after {d})"),
                None => "on expire".to_string(),
            }
        }
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
            // Guards: the `when` condition and the rules that must hold.
            if let Some(when) = &t.when {
                label.push_str(&format!(" when {}", when.text));
            }
            let rules: Vec<&str> = t
                .guards
                .iter()
                .filter_map(|r| process.rules.get(r.index()))
                .map(|r| r.name.as_str())
                .collect();
            if !rules.is_empty() {
                label.push_str(&format!(" if rule {}", rules.join(", ")));
            }
            for spawn in &t.spawns {
                label.push_str(&format!(" spawns {} as {}", spawn.process, spawn.link));
            }
            for effect in &t.effects {
                let link = process
                    .links
                    .get(effect.link.index())
                    .map_or("?", |l| l.name.as_str());
                label.push_str(&format!(" then perform {} on {link}", effect.action));
            }
            label
        }
    }
}

fn stage_label(process: &Process, stage: StageId) -> String {
    let s = &process.stages[stage.index()];
    s.label.clone().unwrap_or_else(|| s.name.clone())
}

/// What a stage does besides its ways out, a line each: the approval asked in it (its rules)
/// and its recurring steps (`every`).
fn stage_notes(project: &Project, process: &Process, stage: StageId) -> Vec<String> {
    let mut notes = Vec::new();
    for approval in process.approvals.iter().filter(|a| a.stage == stage) {
        notes.push("approval".to_string());
        for rule in &approval.rules {
            notes.push(rule.text.clone());
        }
    }
    let checklist = &process.stages[stage.index()].checklist;
    if !checklist.is_empty() {
        let items: Vec<&str> = checklist.iter().map(|i| i.name.as_str()).collect();
        notes.push(format!("checklist: {}", items.join(", ")));
    }
    for every in &process.stages[stage.index()].recurring {
        let actions: Vec<String> = every
            .actions
            .iter()
            .map(|a| match a {
                EscalationAction::Notify(_) => "notify".to_string(),
                EscalationAction::MoveToNextTier => "move to next tier".to_string(),
                EscalationAction::MoveToQueue(q) => format!("move to {}", project.queue(*q).name),
                EscalationAction::RaisePriority => "raise priority".to_string(),
                EscalationAction::Perform(t) => format!(
                    "perform {}",
                    process
                        .transitions
                        .get(t.index())
                        .map_or("?", |t| t.name.as_str())
                ),
            })
            .collect();
        let when = if every.condition.is_some() {
            " (when its condition holds)"
        } else {
            ""
        };
        notes.push(format!(
            "every {}{when} => {}",
            every.period,
            actions.join(", ")
        ));
    }
    notes
}

/// The process's declared links, a line each: `caused_by: one problem`.
fn link_lines(process: &Process) -> Vec<String> {
    process
        .links
        .iter()
        .map(|l| {
            let cardinality = match l.cardinality {
                Cardinality::One => "one",
                Cardinality::Many => "many",
            };
            let via = l
                .via
                .as_ref()
                .map(|v| format!(" via {v}"))
                .unwrap_or_default();
            format!("{}: {cardinality} {}{via}", l.name, l.process)
        })
        .collect()
}

/// Graphviz `dot` source for a process: stages as boxes (initial bold, final double; a stage
/// asking for approval is a diamond-cornered box), transitions labelled with their action,
/// roles, delays, guards, spawns and effects; approval outcomes dashed; an approval's rules and
/// a stage's recurring steps in a note beside it; the processes a transition spawns as nodes of
/// their own, and the process's links in a note.
pub fn to_dot(project: &Project, process: &Process) -> String {
    let mut out = format!("digraph {} {{\n", quoted(&process.name));
    out.push_str("  rankdir=LR;\n  node [shape=box, style=rounded];\n");
    for (i, s) in process.stages.iter().enumerate() {
        let id = StageId(i as u32);
        let mut attrs = vec![format!("label={}", quoted(&stage_label(process, id)))];
        let approval = process.approvals.iter().any(|a| a.stage == id);
        match (s.initial, approval) {
            (true, true) => attrs.push("style=\"rounded,bold,diagonals\"".into()),
            (true, false) => attrs.push("style=\"rounded,bold\"".into()),
            (false, true) => attrs.push("style=\"rounded,diagonals\"".into()),
            (false, false) => {}
        }
        if s.is_final {
            attrs.push("peripheries=2".into());
        }
        out.push_str(&format!("  {} [{}];\n", quoted(&s.name), attrs.join(", ")));
        let notes = stage_notes(project, process, id);
        if !notes.is_empty() {
            let note = quoted(&format!("note:{}", s.name));
            out.push_str(&format!(
                "  {note} [shape=note, style=solid, label={}];\n  {} -> {note} [style=dotted, arrowhead=none];\n",
                quoted(&notes.join("\n")).replace('\n', "\\n"),
                quoted(&s.name),
            ));
        }
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
    // Spawned processes: a node each, reached from the stage the spawning transition enters.
    for t in &process.transitions {
        // One edge per process spawned, however many of its tickets the transition starts.
        let mut drawn: Vec<&str> = Vec::new();
        for spawn in &t.spawns {
            if drawn.contains(&spawn.process.as_str()) {
                continue;
            }
            drawn.push(&spawn.process);
            let node = quoted(&format!("process:{}", spawn.process));
            out.push_str(&format!(
                "  {node} [shape=component, style=solid, label={}];\n  {} -> {node} [style=dotted, label={}];\n",
                quoted(&format!("process {}", spawn.process)),
                quoted(&process.stages[t.to.index()].name),
                quoted(&format!("{} spawns", t.name)),
            ));
        }
    }
    let links = link_lines(process);
    if !links.is_empty() {
        out.push_str(&format!(
            "  \"links:\" [shape=note, style=solid, label={}];\n",
            quoted(&format!("links\n{}", links.join("\n"))).replace('\n', "\\n")
        ));
    }
    out.push_str("}\n");
    out
}

/// A stage's Mermaid id: its name behind a prefix, so that no stage name (`state`, `note`,
/// `end`, `class`, `default`, ...) is read as one of Mermaid's keywords.
fn mermaid_id(name: &str) -> String {
    format!("s_{name}")
}

/// Text for a Mermaid label or note: `:` and `;` end a label, and `#` starts an entity.
fn mermaid_text(text: &str) -> String {
    text.replace([':', ';'], " ").replace('#', "no. ")
}

/// Mermaid `stateDiagram-v2` source for a process: the same as [`to_dot`], with notes for
/// approvals, recurring steps, spawned processes and links.
pub fn to_mermaid(project: &Project, process: &Process) -> String {
    let mut out = String::from("stateDiagram-v2\n");
    for (i, s) in process.stages.iter().enumerate() {
        let id = mermaid_id(&s.name);
        let label = mermaid_text(&stage_label(process, StageId(i as u32)));
        out.push_str(&format!("  state {} as {id}\n", quoted(&label)));
        if s.initial {
            out.push_str(&format!("  [*] --> {id}\n"));
        }
        if s.is_final {
            out.push_str(&format!("  {id} --> [*]\n"));
        }
    }
    for (from, to, edge) in process.graph.edges() {
        let label = mermaid_text(&edge_label(project, process, edge));
        out.push_str(&format!(
            "  {} --> {} : {}\n",
            mermaid_id(&process.stages[from.index()].name),
            mermaid_id(&process.stages[to.index()].name),
            label
        ));
    }
    let mut notes: Vec<Vec<String>> = (0..process.stages.len())
        .map(|i| stage_notes(project, process, StageId(i as u32)))
        .collect();
    for t in &process.transitions {
        for spawn in &t.spawns {
            let note = format!("{} spawns process {}", t.name, spawn.process);
            if !notes[t.to.index()].contains(&note) {
                notes[t.to.index()].push(note);
            }
        }
    }
    let links = link_lines(process);
    if !links.is_empty() {
        let initial = process.initial.index();
        if let Some(n) = notes.get_mut(initial) {
            n.push("links".to_string());
            n.extend(links);
        }
    }
    for (i, lines) in notes.iter().enumerate() {
        if lines.is_empty() {
            continue;
        }
        out.push_str(&format!(
            "  note right of {}\n",
            mermaid_id(&process.stages[i].name)
        ));
        for line in lines {
            out.push_str(&format!("    {}\n", mermaid_text(line)));
        }
        out.push_str("  end note\n");
    }
    out
}
