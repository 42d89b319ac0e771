//! Approvals: levels with real roles and quorums of at least one, conditions that cover every
//! case, and paths for approval, rejection and (optionally) expiry.

use itsmflow_dsl::ast::{self, ApprovalEntry, OutcomeKind, Span};
use itsmflow_dsl::Diagnostic;

use super::flow::{guess, UNRESOLVED};
use super::process::{head, ProcessScope};
use super::values::too_large_within;
use super::Ctx;
use crate::graph::Edge;
use crate::model::{Approval, ApprovalLevel, ApprovalRule, Condition, Quorum, StageId};

/// An approval outcome as an edge of the process graph; either end may be [`UNRESOLVED`] or a
/// guess (see `flow`).
pub(super) type OutcomeEdge = (StageId, StageId, Edge);

/// The approvals that could be built, and the outcome edges of those that could not (a
/// missing outcome, an unknown stage), so the flow checks still see the ways they do give.
pub(super) fn check_approvals(
    approvals: &[&ast::Approval],
    scope: &ProcessScope,
    ctx: &mut Ctx,
) -> (Vec<Approval>, Vec<OutcomeEdge>) {
    let mut out = Vec::new();
    let mut partial = Vec::new();
    let mut stages_seen: Vec<(u32, Span)> = Vec::new();
    for a in approvals {
        let header = head(a.span, "approval".len());
        let stage = scope.stages.resolve(&a.stage, &mut ctx.diags);
        if let Some(s) = stage {
            if let Some((_, first)) = stages_seen.iter().find(|(id, _)| *id == s) {
                ctx.diags.push(
                    Diagnostic::error(
                        "duplicate-section",
                        a.stage.span,
                        format!("stage `{}` has two approvals", a.stage),
                    )
                    .with_label("second approval")
                    .with_secondary(*first, "first approval")
                    .with_help("put all levels in one approval, with `when` rules"),
                );
            }
            stages_seen.push((s, a.stage.span));
        }
        let (approval, edges) = check_approval(a, header, stage.map(StageId), scope, ctx);
        out.extend(approval);
        partial.extend(edges);
    }
    (out, partial)
}

fn check_approval(
    a: &ast::Approval,
    header: Span,
    stage: Option<StageId>,
    scope: &ProcessScope,
    ctx: &mut Ctx,
) -> (Option<Approval>, Vec<OutcomeEdge>) {
    let cond_scope = scope.cond_scope();
    let mut rules = Vec::new();
    let mut rule_spans = Vec::new();
    let mut all_resolved = true;
    let mut outcomes: [Option<(Span, Option<StageId>)>; 3] = [None; 3];
    // The outcomes' stages for the flow checks, unknown ones guessed.
    let mut flow_targets = [UNRESOLVED; 3];
    let mut expire_after = None;
    for entry in &a.entries {
        match entry {
            ApprovalEntry::Rule {
                condition,
                plan,
                span,
            } => {
                let cond = condition
                    .as_ref()
                    .map(|c| cond_scope.resolve(c, &mut ctx.diags));
                if matches!(cond, Some(None)) {
                    all_resolved = false;
                }
                let mut levels = Vec::with_capacity(plan.levels.len());
                for level in &plan.levels {
                    let quorum = match level.quorum.node {
                        ast::Quorum::All => Quorum::All,
                        ast::Quorum::Count(k) => match u32::try_from(k) {
                            Ok(k) if k >= 1 => Quorum::AtLeast(k),
                            _ if too_large_within(&ctx.diags, level.quorum.span) => {
                                Quorum::AtLeast(1)
                            }
                            _ => {
                                ctx.diags.push(
                                    Diagnostic::error("approval-quorum", level.quorum.span, format!("a quorum of {k} approves nothing"))
                                        .with_label("must be at least 1")
                                        .with_help("write `any 1 of role ...` for one approver, or `none` for no approval"),
                                );
                                Quorum::AtLeast(1)
                            }
                        },
                    };
                    if let Some(role) = ctx.role(&level.role) {
                        levels.push(ApprovalLevel { quorum, role });
                    }
                }
                rules.push(ApprovalRule {
                    condition: cond.flatten(),
                    levels,
                });
                rule_spans.push((*span, condition.is_none()));
            }
            ApprovalEntry::Outcome(o) => {
                let slot = match o.kind.node {
                    OutcomeKind::Approve => 0,
                    OutcomeKind::Reject => 1,
                    OutcomeKind::Expire => 2,
                };
                if let Some((first, _)) = outcomes[slot] {
                    ctx.diags.push(
                        Diagnostic::error(
                            "duplicate-attribute",
                            o.span,
                            format!("`on {}` is given twice", o.kind.node.as_str()),
                        )
                        .with_label("given again here")
                        .with_secondary(first, "first given here"),
                    );
                    continue;
                }
                match (o.kind.node, &o.after) {
                    (OutcomeKind::Expire, None) => ctx.diags.push(
                        Diagnostic::error("missing-delay", o.kind.span, "expiry needs a delay")
                            .with_label("expire when?")
                            .with_help("write `on expire after 5d => stage`"),
                    ),
                    (OutcomeKind::Expire, Some(d)) => expire_after = Some(d.node),
                    (kind, Some(d)) => ctx.diags.push(
                        Diagnostic::error(
                            "unexpected-delay",
                            d.span,
                            format!(
                                "`on {}` happens when approvers decide, not after a delay",
                                kind.as_str()
                            ),
                        )
                        .with_label("remove this delay")
                        .with_help("use `on expire after ...` for a deadline"),
                    ),
                    _ => {}
                }
                let target = scope.stages.resolve(&o.stage, &mut ctx.diags).map(StageId);
                outcomes[slot] = Some((o.span, target));
                flow_targets[slot] = target.unwrap_or_else(|| guess(&scope.stages, &o.stage));
            }
        }
    }

    if rules.is_empty() {
        ctx.diags.push(
            Diagnostic::error(
                "approval-no-levels",
                header,
                "this approval says nothing about who approves",
            )
            .with_label("no `when` or `otherwise` rules")
            .with_help(
                "add e.g. `otherwise => any 1 of role change_manager`, or `otherwise => none`",
            ),
        );
    }
    if outcomes[1].is_none() {
        ctx.diags.push(
            Diagnostic::error(
                "approval-no-reject-path",
                header,
                "this approval has no rejection path",
            )
            .with_label("where does a rejected ticket go?")
            .with_help("add `on reject => rejected` (a stage)"),
        );
    }
    if outcomes[0].is_none() {
        ctx.diags.push(
            Diagnostic::error(
                "approval-no-approve-path",
                header,
                "this approval has no path for approval",
            )
            .with_label("where does an approved ticket go?")
            .with_help("add `on approve => scheduled` (a stage)"),
        );
    }

    if all_resolved && !rules.is_empty() {
        let conds: Vec<Option<&Condition>> = rules.iter().map(|r| r.condition.as_ref()).collect();
        let findings = scope.domain().analyse(&conds);
        for i in findings.shadowed {
            ctx.diags.push(
                Diagnostic::error(
                    "approval-shadowed",
                    rule_spans[i].0,
                    "this approval rule never applies",
                )
                .with_label("earlier rules already match every ticket it would match")
                .with_help("move it above the rules that cover it, or remove it"),
            );
        }
        if let Some(case) = findings.uncovered {
            ctx.diags.push(
                Diagnostic::error(
                    "approval-not-total",
                    header,
                    "this approval does not cover every ticket",
                )
                .with_label(format!("no rule matches {case}"))
                .with_help("add a last rule `otherwise => ...`"),
            );
        }
    }

    let on_expire = match (expire_after, outcomes[2].and_then(|o| o.1)) {
        (Some(d), Some(s)) => Some((d, s)),
        _ => None,
    };
    let (on_approve, on_reject) = (outcomes[0].and_then(|o| o.1), outcomes[1].and_then(|o| o.1));
    if let (Some(stage), Some(on_approve), Some(on_reject)) = (stage, on_approve, on_reject) {
        let mut edges = Vec::new();
        if on_expire.is_none() && outcomes[2].is_some() {
            // Given, but without its delay or with an unknown stage.
            edges.push((stage, flow_targets[2], Edge::Approval(OutcomeKind::Expire)));
        }
        let approval = Approval {
            stage,
            rules,
            on_approve,
            on_reject,
            on_expire,
        };
        return (Some(approval), edges);
    }
    let stage = stage.unwrap_or_else(|| guess(&scope.stages, &a.stage));
    let kinds = [
        OutcomeKind::Approve,
        OutcomeKind::Reject,
        OutcomeKind::Expire,
    ];
    let edges = (0..3)
        .filter(|&slot| outcomes[slot].is_some())
        .map(|slot| (stage, flow_targets[slot], Edge::Approval(kinds[slot])))
        .collect();
    (None, edges)
}
