//! Queues (resolver groups): tiers, escalation chains without cycles, members, assignment.

use itsmflow_dsl::ast::{self, QueueAttrKind, Span, StageAttrKind};
use itsmflow_dsl::Diagnostic;

use super::names::did_you_mean;
use super::values::too_large_within;
use super::Ctx;
use crate::model::{Assignment, Queue, QueueId, RoleId, Stage, StageQueue, Transition};

/// Check the project's queues, in declaration order (their index is their `QueueId`).
pub fn check_queues(items: &[&ast::Queue], ctx: &mut Ctx) -> Vec<Queue> {
    let mut queues = Vec::with_capacity(items.len());
    let mut spans = Vec::with_capacity(items.len());
    for q in items {
        let mut model = Queue {
            name: q.name.name.clone(),
            label: q.label.as_ref().map(|l| l.node.clone()),
            tier: None,
            escalates_to: None,
            members: Vec::new(),
            assignment: Assignment::Pull,
            ola: None,
        };
        let mut ola_spans = None;
        let mut seen: [Option<Span>; 5] = [None; 5];
        for attr in &q.attrs {
            let slot = match &attr.kind {
                QueueAttrKind::Tier(_) => 0,
                QueueAttrKind::EscalatesTo(_) => 1,
                QueueAttrKind::Members(_) => 2,
                QueueAttrKind::Assign(_) => 3,
                QueueAttrKind::Targets(_) => 4,
                QueueAttrKind::Overlay(_) | QueueAttrKind::Rename(_) => {
                    ctx.diags.push(outside_tailoring(q, attr));
                    continue;
                }
            };
            if let Some(first) = seen[slot] {
                ctx.diags.push(
                    Diagnostic::error(
                        "duplicate-attribute",
                        attr.span,
                        "this queue setting is given twice",
                    )
                    .with_label("given again here")
                    .with_secondary(first, "first given here"),
                );
                continue;
            }
            seen[slot] = Some(attr.span);
            match &attr.kind {
                QueueAttrKind::Tier(n) => match u32::try_from(*n) {
                    Ok(t) if t >= 1 => model.tier = Some(t),
                    // A number too large to read is reported as such, not as tier 0.
                    _ if too_large_within(&ctx.diags, attr.span) => {}
                    _ => ctx.diags.push(
                        Diagnostic::error("invalid-tier", attr.span, format!("tier {n} is not a line of support"))
                            .with_label("tiers start at 1")
                            .with_help("tier 1 is the service desk, 2 specialist teams, 3 vendors and developers"),
                    ),
                },
                QueueAttrKind::EscalatesTo(target) => model.escalates_to = ctx.queue(target),
                QueueAttrKind::Targets(block) => {
                    let (ola, spans) = super::ola::check_block(block, ctx);
                    model.ola = Some(ola);
                    ola_spans = Some(spans);
                }
                QueueAttrKind::Members(roles) => {
                    model.members = roles.iter().filter_map(|r| ctx.role(r)).collect()
                }
                QueueAttrKind::Assign(how) => match Assignment::from_name(&how.name) {
                    Some(a) => model.assignment = a,
                    None => {
                        let d = Diagnostic::error(
                            "unknown-assignment",
                            how.span,
                            format!("unknown assignment `{}`", how.name),
                        )
                        .with_label("not an assignment strategy");
                        ctx.diags.push(match did_you_mean(&how.name, Assignment::NAMES.into_iter()) {
                            Some(s) => d.with_help(format!("did you mean `{s}`?")),
                            None => d.with_help("use `round_robin` or `least_loaded`, or leave it out to let agents claim tasks"),
                        });
                    }
                },
                // Reported above.
                QueueAttrKind::Overlay(_) | QueueAttrKind::Rename(_) => {}
            }
        }
        queues.push(model);
        spans.push(q.name.span);
        ctx.ola_spans.push(ola_spans);
    }
    check_chains(&queues, &spans, &mut ctx.diags);
    queues
}

/// Escalation chains must end (no cycles) and should climb in tier.
fn check_chains(queues: &[Queue], spans: &[Span], diags: &mut Vec<Diagnostic>) {
    // 0 = unvisited, 1 = on the current path, 2 = done.
    let mut state = vec![0u8; queues.len()];
    for start in 0..queues.len() {
        let mut path: Vec<usize> = Vec::new();
        let mut at = Some(start);
        while let Some(q) = at {
            if q >= queues.len() || state[q] == 2 {
                break;
            }
            if state[q] == 1 {
                let cycle: Vec<&str> = path
                    .iter()
                    .skip_while(|&&p| p != q)
                    .map(|&p| queues[p].name.as_str())
                    .collect();
                diags.push(
                    Diagnostic::error(
                        "escalation-cycle",
                        spans[q],
                        format!(
                            "queues escalate in a circle: {} -> {}",
                            cycle.join(" -> "),
                            queues[q].name
                        ),
                    )
                    .with_label("escalation comes back here")
                    .with_help("the last tier of an escalation chain must not escalate further"),
                );
                break;
            }
            state[q] = 1;
            path.push(q);
            at = queues[q].escalates_to.map(|n| n.index());
        }
        for p in path {
            state[p] = 2;
        }
    }
    for (i, q) in queues.iter().enumerate() {
        let (Some(next), Some(tier)) = (q.escalates_to, q.tier) else {
            continue;
        };
        if let Some(next_tier) = queues.get(next.index()).and_then(|n| n.tier) {
            if next_tier <= tier {
                diags.push(
                    Diagnostic::warning(
                        "tier-order",
                        spans[i],
                        format!(
                            "queue `{}` (tier {tier}) escalates to `{}` (tier {next_tier})",
                            q.name,
                            queues[next.index()].name
                        ),
                    )
                    .with_label("escalation should move to a higher tier")
                    .with_help(
                        "functional escalation moves work from the 1st line to the 2nd and 3rd",
                    ),
                );
            }
        }
    }
}

/// The stages of one process that put tasks in queues, with what they need to be judged.
pub(super) struct QueueUse<'a> {
    /// The stages as written (duplicates included), and their checked models by [`StageId`].
    pub stage_items: &'a [&'a ast::Stage],
    pub stage_names: &'a super::names::Names,
    pub stages: &'a [Stage],
    pub transitions: &'a [Transition],
    pub routing: Option<&'a ast::Routing>,
}

/// `queue-cannot-act`: a stage puts a task in a queue (by name or by routing) whose members
/// hold none of the roles its transitions accept, so they can claim the task but not act on
/// it. Only stages whose transitions out name roles, none of them open to anyone, count; a
/// transition `by PERSON` lets those people act, not the queue's members. A queue without
/// members (anyone may claim) is never reported.
pub(super) fn check_queue_actors(u: &QueueUse, ctx: &mut Ctx) {
    for item in u.stage_items {
        let Some(id) = u.stage_names.get(&item.name.name) else {
            continue;
        };
        if u.stage_names.span(id).start != item.name.span.start {
            continue; // a duplicate
        }
        let Some(stage) = u.stages.get(id as usize) else {
            continue;
        };
        let Some(queue_attr) = item
            .attrs
            .iter()
            .find(|a| matches!(a.kind, StageAttrKind::Queue(_)))
        else {
            continue;
        };
        let outs: Vec<&Transition> = u
            .transitions
            .iter()
            .filter(|t| t.from.iter().any(|f| f.index() == id as usize))
            .collect();
        if outs.is_empty()
            || outs
                .iter()
                .any(|t| t.roles.is_empty() && t.people.is_empty())
            || outs.iter().all(|t| t.roles.is_empty())
        {
            continue;
        }
        let mut accepted: Vec<RoleId> = outs.iter().flat_map(|t| t.roles.iter().copied()).collect();
        accepted.sort();
        accepted.dedup();
        // The queues the stage can use, each with where it is named.
        let mut queues: Vec<(QueueId, Span)> = Vec::new();
        match &stage.queue {
            Some(StageQueue::Named(q)) => queues.push((*q, queue_attr.span)),
            Some(StageQueue::ByRouting) => {
                for rule in u.routing.iter().flat_map(|r| &r.rules) {
                    if let Some(q) = ctx.queues.get(&rule.queue.name) {
                        let q = QueueId(q);
                        if !queues.iter().any(|(seen, _)| *seen == q) {
                            queues.push((q, rule.queue.span));
                        }
                    }
                }
            }
            None => continue,
        }
        for (q, span) in queues {
            let Some(queue) = ctx.queue_models.get(q.index()) else {
                continue;
            };
            if queue.members.is_empty() || queue.members.iter().any(|m| accepted.contains(m)) {
                continue;
            }
            let names = |roles: &[RoleId]| {
                roles
                    .iter()
                    .filter(|r| r.index() < ctx.roles.len())
                    .map(|r| format!("`{}`", ctx.roles.name(r.0)))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let (members, accepts) = (names(&queue.members), names(&accepted));
            let mut d = Diagnostic::warning(
                "queue-cannot-act",
                span,
                format!(
                    "the members of queue `{}` ({members}) can take no action in stage `{}`",
                    queue.name, item.name
                ),
            )
            .with_label(format!(
                "the transitions out of `{}` accept only {accepts}",
                item.name
            ));
            // `Span` equality ignores positions, so compare them.
            if (span.start, span.end) != (queue_attr.span.start, queue_attr.span.end) {
                d = d.with_secondary(queue_attr.span, "this stage queues by routing");
            }
            let one_of = if accepted.len() > 1 { "one of " } else { "" };
            ctx.diags.push(d.with_help(format!(
                "add {one_of}{accepts} to the members of `{}`, or a role of the queue ({members}) to a transition out of `{}`",
                queue.name, item.name
            )));
        }
    }
}

/// A tailoring's entry (`replace tier 2`, `rename to x`) in a queue that extends none.
fn outside_tailoring(q: &ast::Queue, attr: &ast::QueueAttr) -> Diagnostic {
    let what = match &attr.kind {
        QueueAttrKind::Overlay(o) => format!("`{}`", o.verb.node.as_str()),
        _ => "`rename`".to_string(),
    };
    Diagnostic::error(
        "overlay-outside-tailoring",
        attr.span,
        format!(
            "{what} changes the queue a tailoring extends; `{}` extends none",
            q.name
        ),
    )
    .with_label("only in a tailoring")
    .with_help(format!(
        "write the setting without a verb, or tailor the queue: `queue {} for client NAME \
         extends {} {{ ... }}`",
        q.name, q.name
    ))
}
