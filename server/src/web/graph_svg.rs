//! A process drawn as inline SVG, laid out on the server: nothing to install in the browser
//! (no Graphviz, no script library), and the page's content security policy needs no
//! exception (presentation attributes and classes, no `style`).
//!
//! The layout is a plain layered one over the engine's graph ([`ProcessGraph`]): edges that
//! close a cycle (found by a depth-first search from the initial stage) are set aside, every
//! stage is put in the layer after its furthest predecessor, stages within a layer are
//! ordered by where their predecessors are, and layers run left to right. Forward edges are
//! curves between layers; edges back are drawn below the stages, each a little lower than the
//! last so they stay apart; a stage's edge to itself is a loop above it.
//!
//! [`ProcessGraph`]: itsmflow_engine::graph::ProcessGraph

use std::collections::HashMap;
use std::fmt::Write;

use itsmflow_engine::graph::Edge;
use itsmflow_engine::model::{Process, Project};
use maud::{html, Markup, PreEscaped};

/// Sizes in SVG units (pixels at 100%).
const NODE_H: f64 = 40.0;
const GAP_X: f64 = 120.0;
const GAP_Y: f64 = 34.0;
const MARGIN: f64 = 24.0;
/// Roughly the width of a character of the labels' font.
const CHAR_W: f64 = 7.4;
const LABEL_CHAR_W: f64 = 6.4;

/// An edge as drawn.
struct Drawn {
    from: usize,
    to: usize,
    label: String,
    /// Who may take it (for the tooltip), or why it happens.
    title: String,
    approval: bool,
}

/// Where each stage goes: the stages of each layer, in their order top to bottom.
struct Layout {
    order: Vec<Vec<usize>>,
}

/// Layers and order for `n` stages with edges `edges`, starting from `initial`.
fn layout(
    n: usize,
    initial: usize,
    finals: &[usize],
    edges: &[(usize, usize)],
) -> (Layout, Vec<bool>) {
    let mut out: Vec<Vec<(usize, usize)>> = vec![Vec::new(); n];
    for (i, &(a, b)) in edges.iter().enumerate() {
        if a < n && b < n {
            out[a].push((b, i));
        }
    }
    // Depth-first from the initial stage (then from any stage not reached): an edge to a
    // stage still on the path closes a cycle.
    let mut back = vec![false; edges.len()];
    let mut state = vec![0u8; n]; // 0 unseen, 1 on the path, 2 done
    let starts = std::iter::once(initial.min(n.saturating_sub(1))).chain(0..n);
    for start in starts {
        if n == 0 || state[start] != 0 {
            continue;
        }
        let mut stack = vec![(start, 0usize)];
        state[start] = 1;
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            if let Some(&(to, edge)) = out[node].get(*next) {
                *next += 1;
                match state[to] {
                    0 => {
                        state[to] = 1;
                        stack.push((to, 0));
                    }
                    1 => back[edge] = true,
                    _ => {}
                }
            } else {
                state[node] = 2;
                stack.pop();
            }
        }
    }
    // Longest path from the sources, over the forward edges (a DAG now). Self-loops are back
    // edges, so they never move a stage.
    let mut layer = vec![0usize; n];
    let mut indegree = vec![0usize; n];
    for (i, &(a, b)) in edges.iter().enumerate() {
        if !back[i] && a != b && a < n && b < n {
            indegree[b] += 1;
        }
    }
    let mut ready: Vec<usize> = (0..n).filter(|&i| indegree[i] == 0).collect();
    while let Some(a) = ready.pop() {
        for &(b, e) in &out[a] {
            if back[e] || a == b {
                continue;
            }
            layer[b] = layer[b].max(layer[a] + 1);
            indegree[b] -= 1;
            if indegree[b] == 0 {
                ready.push(b);
            }
        }
    }
    let layers = layer.iter().copied().max().map_or(0, |m| m + 1);
    let mut order: Vec<Vec<usize>> = vec![Vec::new(); layers];
    for (stage, &l) in layer.iter().enumerate() {
        order[l].push(stage);
    }
    // Order each layer by the mean place of its stages' predecessors (declaration order
    // breaks ties), twice over: fewer crossings for little work.
    for _ in 0..2 {
        for l in 1..layers {
            let place: HashMap<usize, usize> = order[l - 1]
                .iter()
                .enumerate()
                .map(|(i, &s)| (s, i))
                .collect();
            let mut keyed: Vec<(f64, usize)> = order[l]
                .iter()
                .map(|&s| {
                    let preds: Vec<usize> = edges
                        .iter()
                        .filter(|&&(a, b)| b == s && place.contains_key(&a))
                        .map(|&(a, _)| place[&a])
                        .collect();
                    let key = if preds.is_empty() {
                        f64::from(u32::try_from(s).unwrap_or(u32::MAX))
                    } else {
                        preds.iter().sum::<usize>() as f64 / preds.len() as f64
                    };
                    // Final stages go below the others of their layer: the way through the
                    // process reads along the top.
                    (key + if finals.contains(&s) { 1e6 } else { 0.0 }, s)
                })
                .collect();
            keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            order[l] = keyed.into_iter().map(|(_, s)| s).collect();
        }
    }
    (Layout { order }, back)
}

fn label_of(process: &Process, stage: usize) -> String {
    process
        .stages
        .get(stage)
        .map(|s| s.label.clone().unwrap_or_else(|| s.name.clone()))
        .unwrap_or_default()
}

fn edges_of(project: &Project, process: &Process) -> Vec<Drawn> {
    process
        .graph
        .edges()
        .map(|(from, to, edge)| {
            let (label, title, approval) = match edge {
                Edge::Approval(kind) => (
                    format!("on {}", kind.as_str()),
                    format!("the approval's outcome: {}", kind.as_str()),
                    true,
                ),
                Edge::Transition(t) => {
                    let t = &process.transitions[t.index()];
                    let who: Vec<String> = t
                        .roles
                        .iter()
                        .map(|r| project.role(*r).name.clone())
                        .chain(t.people.iter().map(|p| p.describe(process)))
                        .collect();
                    let mut title = if who.is_empty() {
                        format!("{}: anyone", t.name)
                    } else {
                        format!("{}: {}", t.name, who.join(", "))
                    };
                    if let Some(after) = t.after {
                        let _ = write!(title, "; by itself after {after}");
                    }
                    (t.name.clone(), title, false)
                }
            };
            Drawn {
                from: from.index(),
                to: to.index(),
                label,
                title,
                approval,
            }
        })
        .collect()
}

/// Text for SVG written by hand (the paths and labels are built as one string each).
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn n(v: f64) -> String {
    format!("{v:.1}")
}

/// The process as an `svg` element (with a title and description for screen readers; the
/// page lists the same transitions as a table too).
pub fn render(project: &Project, process: &Process) -> Markup {
    let count = process.stages.len();
    let edges = edges_of(project, process);
    let pairs: Vec<(usize, usize)> = edges.iter().map(|e| (e.from, e.to)).collect();
    let initial = process.initial.index();
    let finals: Vec<usize> = (0..count).filter(|&i| process.stages[i].is_final).collect();
    let (lay, back) = layout(count, initial, &finals, &pairs);

    // Each layer as wide as its longest label.
    let widths: Vec<f64> = lay
        .order
        .iter()
        .map(|stages| {
            stages
                .iter()
                .map(|&s| label_of(process, s).chars().count() as f64 * CHAR_W + 28.0)
                .fold(90.0, f64::max)
        })
        .collect();
    let tallest = lay.order.iter().map(Vec::len).max().unwrap_or(0) as f64;
    let column_h = tallest * NODE_H + (tallest - 1.0).max(0.0) * GAP_Y;
    let mut x_of_layer = Vec::with_capacity(widths.len());
    let mut x = MARGIN;
    for w in &widths {
        x_of_layer.push(x);
        x += w + GAP_X;
    }
    let width = (x - GAP_X + MARGIN).max(2.0 * MARGIN);
    // Room above for self-loops.
    let top = MARGIN + 24.0;
    let mut pos: Vec<(f64, f64, f64)> = vec![(0.0, 0.0, 0.0); count]; // x, y, width
    for (l, stages) in lay.order.iter().enumerate() {
        let h = stages.len() as f64 * NODE_H + (stages.len() as f64 - 1.0).max(0.0) * GAP_Y;
        let y0 = top + (column_h - h) / 2.0;
        for (i, &s) in stages.iter().enumerate() {
            pos[s] = (x_of_layer[l], y0 + i as f64 * (NODE_H + GAP_Y), widths[l]);
        }
    }
    let layer_of: Vec<usize> = {
        let mut l = vec![0; count];
        for (i, stages) in lay.order.iter().enumerate() {
            for &st in stages {
                l[st] = i;
            }
        }
        l
    };
    // The lowest node edge of the layers strictly between two layers: an edge across them
    // passes below it.
    let below = |a: usize, b: usize| {
        let (lo, hi) = (a.min(b), a.max(b));
        lay.order[lo + 1..hi]
            .iter()
            .flatten()
            .map(|&st| pos[st].1 + NODE_H)
            .fold(0.0, f64::max)
    };
    let cubic = |p: [(f64, f64); 4]| {
        format!(
            "M{} {} C{} {} {} {} {} {}",
            n(p[0].0),
            n(p[0].1),
            n(p[1].0),
            n(p[1].1),
            n(p[2].0),
            n(p[2].1),
            n(p[3].0),
            n(p[3].1)
        )
    };
    // A cubic's point at its middle, where its label goes.
    let middle = |p: [(f64, f64); 4]| {
        (
            (p[0].0 + 3.0 * p[1].0 + 3.0 * p[2].0 + p[3].0) / 8.0,
            (p[0].1 + 3.0 * p[1].1 + 3.0 * p[2].1 + p[3].1) / 8.0,
        )
    };

    let mut paths = String::new();
    let mut labels = String::new();
    let mut parallel: HashMap<(usize, usize), usize> = HashMap::new();
    let mut lowest = top + column_h;
    // Labels placed so far: centre and width.
    let mut placed: Vec<(f64, f64, f64)> = Vec::new();
    for (i, e) in edges.iter().enumerate() {
        let (Some(&(fx, fy, fw)), Some(&(tx, ty, tw))) = (pos.get(e.from), pos.get(e.to)) else {
            continue;
        };
        let k = {
            let c = parallel.entry((e.from, e.to)).or_insert(0);
            *c += 1;
            (*c - 1) as f64
        };
        let span = layer_of[e.from].abs_diff(layer_of[e.to]);
        let (d, (lx, ly)) = if e.from == e.to {
            // A loop above the stage.
            let cx = fx + fw / 2.0 + k * 18.0;
            let p = [
                (cx - 12.0, fy),
                (cx - 26.0, fy - 34.0),
                (cx + 26.0, fy - 34.0),
                (cx + 12.0, fy),
            ];
            (cubic(p), (cx, fy - 30.0))
        } else {
            // Forward edges leave the right side a little above the middle and enter the left
            // side; edges back leave the left side a little below and enter the right side,
            // bowed down, so a way there and a way back stay apart.
            let (sx, sy, ex, ey, dir) = if back[i] {
                (
                    fx,
                    fy + NODE_H / 2.0 + 7.0,
                    tx + tw,
                    ty + NODE_H / 2.0 + 7.0,
                    -1.0,
                )
            } else {
                (
                    fx + fw,
                    fy + NODE_H / 2.0 - 5.0,
                    tx,
                    ty + NODE_H / 2.0 - 5.0,
                    1.0,
                )
            };
            let (sy, ey) = (sy + k * 6.0, ey + k * 6.0);
            let p = if span > 1 {
                // Across other layers: below their stages, so it crosses none of them.
                let clear = below(layer_of[e.from], layer_of[e.to]) + 14.0 + k * 10.0;
                let depth = ((clear - (sy + ey) / 8.0) / 0.75).max(sy.max(ey));
                [
                    (sx, sy),
                    (sx + dir * 60.0, depth),
                    (ex - dir * 60.0, depth),
                    (ex, ey),
                ]
            } else if back[i] {
                let bow = 26.0 + k * 12.0;
                [
                    (sx, sy),
                    (sx - 30.0, sy + bow),
                    (ex + 30.0, ey + bow),
                    (ex, ey),
                ]
            } else {
                let bend = (ex - sx) / 2.0;
                let lift = k * 16.0;
                [
                    (sx, sy),
                    (sx + bend, sy - lift),
                    (ex - bend, ey - lift),
                    (ex, ey),
                ]
            };
            let (mx, my) = middle(p);
            lowest = lowest.max(my + 8.0);
            (
                cubic(p),
                (
                    mx,
                    if back[i] || span > 1 {
                        my + 12.0
                    } else {
                        my - 3.0
                    },
                ),
            )
        };
        let class = if e.approval { "edge approval" } else { "edge" };
        let _ = write!(
            paths,
            "<path class=\"{class}\" d=\"{d}\" marker-end=\"url(#arrow)\"><title>{}</title></path>",
            escape(&e.title)
        );
        let w = e.label.chars().count() as f64 * LABEL_CHAR_W + 6.0;
        // A label that would cover one already placed moves down until it is clear.
        let mut ly = ly;
        for _ in 0..6 {
            let hit = placed.iter().any(|&(x, y, pw): &(f64, f64, f64)| {
                (x - lx).abs() < (w + pw) / 2.0 && (y - ly).abs() < 14.0
            });
            if !hit {
                break;
            }
            ly += 14.0;
        }
        placed.push((lx, ly, w));
        lowest = lowest.max(ly + 4.0);
        let _ = write!(
            labels,
            "<g class=\"edge-label\"><title>{title}</title><rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"14\" rx=\"3\"></rect><text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{label}</text></g>",
            n(lx - w / 2.0),
            n(ly - 11.0),
            n(w),
            n(lx),
            n(ly),
            title = escape(&e.title),
            label = escape(&e.label),
        );
    }
    let height = lowest + MARGIN + 12.0;
    let title_id = format!("graph-{}-title", process.name);
    let desc_id = format!("graph-{}-desc", process.name);
    html! {
        svg.process-graph xmlns="http://www.w3.org/2000/svg" role="img"
            viewBox=(format!("0 0 {} {}", n(width), n(height)))
            width=(n(width)) height=(n(height))
            aria-labelledby=(format!("{title_id} {desc_id}")) {
            title id=(title_id) { "The stages of " (process.name) " and the ways between them" }
            desc id=(desc_id) {
                (count) " stages, " (edges.len()) " transitions and approval outcomes; the table below lists them."
            }
            defs {
                marker #arrow viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse" {
                    path d="M0 0 L10 5 L0 10 z" class="arrowhead" {}
                }
            }
            g { (PreEscaped(paths)) }
            @for (s, stage) in process.stages.iter().enumerate() {
                @let (x, y, w) = pos[s];
                @let class = if stage.initial { "stage initial" } else if stage.is_final { "stage final" } else { "stage" };
                g class=(class) {
                    title { (stage.name) @if stage.initial { " (initial)" } @if stage.is_final { " (final)" } }
                    rect x=(n(x)) y=(n(y)) width=(n(w)) height=(n(NODE_H)) rx="8" {}
                    @if stage.is_final {
                        rect.inner x=(n(x + 3.0)) y=(n(y + 3.0)) width=(n(w - 6.0)) height=(n(NODE_H - 6.0)) rx="6" {}
                    }
                    text x=(n(x + w / 2.0)) y=(n(y + NODE_H / 2.0 + 5.0)) text-anchor="middle" { (label_of(process, s)) }
                }
            }
            g { (PreEscaped(labels)) }
        }
    }
}

/// The layer of each stage (for tests and for reading order).
#[cfg(test)]
fn layers(n: usize, initial: usize, edges: &[(usize, usize)]) -> Vec<usize> {
    let mut layer = vec![0; n];
    for (l, stages) in layout(n, initial, &[], edges).0.order.iter().enumerate() {
        for &s in stages {
            layer[s] = l;
        }
    }
    layer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_follow_their_predecessors_and_cycles_do_not_push_them() {
        // new -> triage -> working <-> waiting, working -> resolved -> working (reopen),
        // resolved -> closed.
        let edges = [(0, 1), (1, 2), (2, 3), (3, 2), (2, 4), (4, 2), (4, 5)];
        assert_eq!(layers(6, 0, &edges), vec![0, 1, 2, 3, 3, 4]);
        // A self-loop and an unreachable stage.
        assert_eq!(layers(3, 0, &[(0, 0), (0, 1)]), vec![0, 1, 0]);
        assert_eq!(layers(0, 0, &[]), Vec::<usize>::new());
    }

    #[test]
    fn back_edges_are_found() {
        let (_, back) = layout(3, 0, &[], &[(0, 1), (1, 2), (2, 0), (1, 1)]);
        assert_eq!(back, vec![false, false, true, true]);
    }
}
