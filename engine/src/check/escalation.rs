//! Escalation: thresholds in order, actions that name real roles, queues and transitions, and
//! functional escalation that never moves a task past the last tier.

use itsmflow_dsl::ast::{self, EscalationActionKind, Span};
use itsmflow_dsl::Diagnostic;

use super::notices::{self, NoticeScope};
use super::process::{head, ProcessScope};
use super::values::too_large_within;
use super::Ctx;
use crate::model::{
    ClockKind, Duration, Escalation, EscalationAction, EscalationStep, QueueId, Target, Threshold,
    TransitionId,
};

/// `a` comes no later than `b` whatever the calendar (also used for approval reminders).
pub(super) fn not_after(a: &Duration, b: &Duration) -> bool {
    // Weeks, days and business time grow independently of each other (a week is as many
    // business days as the calendar opens in a week), so `a` is surely no later than `b` only
    // when it is no larger in each of them.
    let secs = |d: &Duration| d.days_and_seconds().map(|(_, s)| s);
    match (secs(a), secs(b)) {
        (Some(asec), Some(bsec)) => a.weeks <= b.weeks && a.days <= b.days && asec <= bsec,
        _ => false,
    }
}

/// What escalation steps may refer to besides the process's names.
pub(super) struct EscalationScope<'a> {
    pub targets: &'a [Option<Target>],
    /// Queues the process's stages (and routing) put tasks in.
    pub entry_queues: &'a [QueueId],
    /// Whether the process has no business hours (false also when a calendar its targets name
    /// is unknown: then it cannot be told).
    pub always_open: bool,
    /// The process's name, and whether it asks for approval anywhere (for `notify approvers`).
    pub process: &'a str,
    pub any_approval: bool,
}

pub(super) fn check_escalations(
    escalations: &[&ast::Escalation],
    scope: &ProcessScope,
    es: &EscalationScope,
    ctx: &mut Ctx,
) -> Vec<Escalation> {
    let targets = es.targets;
    let mut out = Vec::new();
    let mut seen: [Option<Span>; 2] = [None; 2];
    for esc in escalations {
        let clock = esc.clock.node;
        let slot = match clock {
            ClockKind::Respond => 0,
            ClockKind::Resolve => 1,
        };
        if let Some(first) = seen[slot] {
            ctx.diags.push(
                Diagnostic::error(
                    "duplicate-section",
                    head(esc.span, "escalation".len()),
                    format!("escalation on {clock} is given twice"),
                )
                .with_label("second one here")
                .with_secondary(first, "first one here")
                .with_help("merge their steps into one escalation"),
            );
            continue;
        }
        seen[slot] = Some(head(esc.span, "escalation".len()));
        if !targets.iter().flatten().any(|t| t.of(clock).is_some()) {
            ctx.diags.push(
                Diagnostic::error(
                    "no-target-for-clock",
                    esc.clock.span,
                    format!("escalation on {clock}, but no priority has a {clock} target"),
                )
                .with_label("this clock never runs")
                .with_help(format!(
                    "add {clock} targets in `targets`, or escalate on the other clock"
                )),
            );
        }
        out.push(Escalation {
            clock,
            steps: check_steps(esc, scope, es, ctx),
        });
    }
    out
}

fn check_steps(
    esc: &ast::Escalation,
    scope: &ProcessScope,
    es: &EscalationScope,
    ctx: &mut Ctx,
) -> Vec<EscalationStep> {
    let mut steps = Vec::with_capacity(esc.steps.len());
    let mut last_percent: Option<(u32, Span)> = None;
    let mut last_after: Option<(Duration, Span)> = None;
    // Where the task may be after the moves so far.
    let mut queues: Vec<QueueId> = es.entry_queues.to_vec();
    let notice_scope = NoticeScope {
        scope,
        always_open: es.always_open,
    };
    let place = notices::Place::Escalation {
        process: es.process,
        any_approval: es.any_approval,
    };
    for step in &esc.steps {
        // A threshold too large to read is already reported; it is 0 here, so neither its
        // value nor its order can be checked.
        let zero = match step.threshold.node {
            ast::Threshold::Percent(p) => p == 0,
            ast::Threshold::After(d) => d.is_zero(),
        };
        let unread = zero && too_large_within(&ctx.diags, step.threshold.span);
        let threshold = match step.threshold.node {
            ast::Threshold::Percent(_) if unread => Threshold::Percent(0),
            ast::Threshold::After(d) if unread => Threshold::After(d),
            ast::Threshold::Percent(p) => {
                if p == 0 {
                    ctx.diags.push(
                        Diagnostic::error(
                            "invalid-threshold",
                            step.threshold.span,
                            "a threshold must be above 0%",
                        )
                        .with_label("fires as the clock starts")
                        .with_help(
                            "act when the ticket is created with a stage or a routing rule instead",
                        ),
                    );
                }
                if let Some((prev, prev_span)) = last_percent {
                    if p <= prev {
                        ctx.diags.push(out_of_order(step.threshold.span, prev_span));
                    }
                }
                last_percent = Some((p, step.threshold.span));
                Threshold::Percent(p)
            }
            ast::Threshold::After(d) => {
                if d.is_zero() {
                    ctx.diags.push(
                        Diagnostic::error(
                            "invalid-threshold",
                            step.threshold.span,
                            "a threshold must be later than zero",
                        )
                        .with_label("fires as the clock starts"),
                    );
                }
                if let Some((prev, prev_span)) = last_after {
                    if not_after(&d, &prev) {
                        ctx.diags.push(out_of_order(step.threshold.span, prev_span));
                    }
                }
                last_after = Some((d, step.threshold.span));
                Threshold::After(d)
            }
        };
        let actions = step
            .actions
            .iter()
            .filter_map(|a| check_action(a, scope, &mut queues, place, &notice_scope, ctx))
            .collect();
        steps.push(EscalationStep { threshold, actions });
    }
    steps
}

/// One action of an escalation step or a recurring step; `queues` are where the task may be
/// before it, and after it.
fn check_action(
    action: &ast::EscalationAction,
    scope: &ProcessScope,
    queues: &mut Vec<QueueId>,
    place: notices::Place,
    notice_scope: &NoticeScope,
    ctx: &mut Ctx,
) -> Option<EscalationAction> {
    match &action.kind {
        EscalationActionKind::Notify(n) => {
            notices::check_notify(n, place, notice_scope, ctx).map(EscalationAction::Notify)
        }
        EscalationActionKind::MoveToQueue(q) => ctx.queue(q).map(|q| {
            *queues = vec![q];
            EscalationAction::MoveToQueue(q)
        }),
        EscalationActionKind::MoveToNextTier => {
            next_tier(action.span, queues, ctx);
            Some(EscalationAction::MoveToNextTier)
        }
        EscalationActionKind::RaisePriority => {
            if scope.priorities.len() < 2 {
                ctx.diags.push(
                    Diagnostic::error(
                        "no-priorities",
                        action.span,
                        "there is no higher priority to raise to",
                    )
                    .with_label("this process has fewer than two priorities")
                    .with_help("declare priorities, most urgent first: `priorities P1, P2, P3`"),
                );
            }
            Some(EscalationAction::RaisePriority)
        }
        EscalationActionKind::Perform(t) => scope
            .transitions
            .resolve(t, &mut ctx.diags)
            .map(|t| EscalationAction::Perform(TransitionId(t))),
    }
}

/// The `every` steps of each stage: a period above zero, a condition on the ticket's fields
/// and priority, and actions as an escalation step's (a `move to next tier` from the stage's
/// own queues).
pub(super) fn check_recurring(
    items: &[&ast::Stage],
    stages: &mut [crate::model::Stage],
    routing_queues: &[QueueId],
    scope: &ProcessScope,
    es: &EscalationScope,
    ctx: &mut Ctx,
) {
    let notice_scope = NoticeScope {
        scope,
        always_open: es.always_open,
    };
    let place = notices::Place::Escalation {
        process: es.process,
        any_approval: es.any_approval,
    };
    for (item, stage) in items.iter().zip(stages.iter_mut()) {
        for attr in &item.attrs {
            let ast::StageAttrKind::Every {
                period,
                condition,
                actions,
            } = &attr.kind
            else {
                continue;
            };
            if period.node.is_zero() && !too_large_within(&ctx.diags, period.span) {
                ctx.diags.push(
                    Diagnostic::error("invalid-period", period.span, "a period must be above zero")
                        .with_label("would repeat without pause")
                        .with_help("repeat every so often: `every 30m`"),
                );
            }
            let condition = condition.as_ref().and_then(|c| {
                scope
                    .cond_scope(
                        "a recurring step",
                        "it is decided from the ticket alone, when its time comes",
                    )
                    .resolve(c, &mut ctx.diags)
            });
            let mut queues: Vec<QueueId> = match stage.queue {
                Some(crate::model::StageQueue::Named(q)) => vec![q],
                Some(crate::model::StageQueue::ByRouting) => routing_queues.to_vec(),
                None => Vec::new(),
            };
            let actions = actions
                .iter()
                .filter_map(|a| check_action(a, scope, &mut queues, place, &notice_scope, ctx))
                .collect();
            stage.recurring.push(crate::model::Recurring {
                period: period.node,
                condition,
                actions,
            });
        }
    }
}

fn out_of_order(span: Span, previous: Span) -> Diagnostic {
    Diagnostic::error(
        "escalation-order",
        span,
        "escalation thresholds are out of order",
    )
    .with_label("not later than the threshold before it")
    .with_secondary(previous, "previous threshold")
    .with_help("list thresholds from the earliest to the latest; each fires once per clock")
}

/// Move every possible current queue one tier up, reporting queues that have no next tier.
fn next_tier(span: Span, queues: &mut Vec<QueueId>, ctx: &mut Ctx) {
    if queues.is_empty() {
        ctx.diags.push(
            Diagnostic::error(
                "escalation-past-last-tier",
                span,
                "there is no queue to escalate from",
            )
            .with_label("no stage of this process puts tasks in a queue")
            .with_help("give a stage a queue, or notify a role instead"),
        );
        return;
    }
    let mut next = Vec::with_capacity(queues.len());
    let mut stuck = Vec::new();
    for q in queues.iter() {
        if let Some(model) = ctx.queue_models.get(q.index()) {
            match model.escalates_to {
                Some(n) => next.push(n),
                None => stuck.push(model.name.clone()),
            }
        }
    }
    if !stuck.is_empty() {
        let list = stuck
            .iter()
            .map(|s| format!("`{s}`"))
            .collect::<Vec<_>>()
            .join(", ");
        ctx.diags.push(
            Diagnostic::error(
                "escalation-past-last-tier",
                span,
                format!("this moves tasks past the last tier of {list}"),
            )
            .with_label("no next tier to move to")
            .with_help(format!(
                "give {list} an `escalates_to` queue, or notify a role at this point instead"
            )),
        );
    }
    next.sort();
    next.dedup();
    *queues = next;
}
