//! Approvals: levels of groups (real roles with quorums that can be met, or people the ticket
//! names), conditions that cover every case, paths for approval, rejection and (optionally)
//! expiry, excluded fields that hold user names, and reminders in order and before the expiry.

use itsmflow_dsl::ast::{self, ApprovalEntry, Ident, OutcomeKind, Span, Spanned};
use itsmflow_dsl::format::approval_rule_line;
use itsmflow_dsl::Diagnostic;

use super::escalation::not_after;
use super::flow::{guess, UNRESOLVED};
use super::people::{self, Place};
use super::process::{head, ProcessScope};
use super::values::too_large_within;
use super::Ctx;
use crate::graph::Edge;
use crate::model::{
    Approval, ApprovalGroup, ApprovalLevel, ApprovalRule, Approvers, Condition, Duration, FieldId,
    FieldType, Quorum, StageId,
};

/// An approval outcome as an edge of the process graph; either end may be [`UNRESOLVED`] or a
/// guess (see `flow`).
pub(super) type OutcomeEdge = (StageId, StageId, Edge);

/// The approvals that could be built, and the outcome edges of those that could not (a
/// missing outcome, an unknown stage), so the flow checks still see the ways they do give.
pub(super) fn check_approvals(
    approvals: &[&ast::Approval],
    scope: &ProcessScope,
    initial: Option<StageId>,
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
            // Approval is asked when a ticket enters the stage; a ticket is born in its
            // initial stage without entering it, so nothing would ever ask.
            if initial == Some(StageId(s)) {
                ctx.diags.push(
                    Diagnostic::error(
                        "approval-in-initial-stage",
                        a.stage.span,
                        format!("stage `{}` is where tickets start, so its approval would never be asked", a.stage),
                    )
                    .with_label("approval is asked on entering a stage")
                    .with_help("start tickets in a stage before it (e.g. `submitted`) with a transition into this one"),
                );
            }
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
    let cond_scope = scope.cond_scope(
        "an approval rule",
        "the approval plan is chosen without reading linked tickets",
    );
    let mut rules = Vec::new();
    let mut rule_spans = Vec::new();
    let mut all_resolved = true;
    let mut outcomes: [Option<(Span, Option<StageId>)>; 3] = [None; 3];
    // The outcomes' stages for the flow checks, unknown ones guessed.
    let mut flow_targets = [UNRESOLVED; 3];
    let mut expire_after: Option<Spanned<Duration>> = None;
    let mut excludes_seen: Option<Span> = None;
    let mut excludes = Vec::new();
    // The reminders that could be read, with where they are written.
    let mut reminders: Vec<Spanned<Duration>> = Vec::new();
    for entry in &a.entries {
        match entry {
            ApprovalEntry::Rule {
                condition,
                plan,
                span,
                ..
            } => {
                let cond = condition
                    .as_ref()
                    .map(|c| cond_scope.resolve(c, &mut ctx.diags));
                if matches!(cond, Some(None)) {
                    all_resolved = false;
                }
                let levels = plan
                    .levels
                    .iter()
                    .map(|level| check_level(level, scope, ctx))
                    .collect();
                rules.push(ApprovalRule {
                    condition: cond.flatten(),
                    levels,
                    text: approval_rule_line(entry),
                });
                rule_spans.push((*span, condition.is_none()));
            }
            ApprovalEntry::Excludes { fields, span } => {
                if let Some(first) = excludes_seen {
                    ctx.diags.push(
                        Diagnostic::error(
                            "duplicate-attribute",
                            *span,
                            "`excludes` is given twice",
                        )
                        .with_label("given again here")
                        .with_secondary(first, "first given here")
                        .with_help(
                            "list every field in one `excludes`: `excludes requester, implementer`",
                        ),
                    );
                    continue;
                }
                excludes_seen = Some(*span);
                excludes = check_excludes(fields, scope, ctx);
            }
            ApprovalEntry::Remind { after, .. } => {
                if after.node.is_zero() {
                    // A duration too large to read is already reported, and left as zero.
                    if !too_large_within(&ctx.diags, after.span) {
                        ctx.diags.push(
                            Diagnostic::error(
                                "zero-duration",
                                after.span,
                                "a reminder needs a delay above zero",
                            )
                            .with_label("zero")
                            .with_help("approvers are asked as their level opens; remind them later, e.g. `remind after 1d`"),
                        );
                    }
                    continue;
                }
                if let Some(prev) = reminders.last() {
                    if not_after(&after.node, &prev.node) {
                        ctx.diags.push(
                            Diagnostic::error(
                                "approval-reminder-order",
                                after.span,
                                "reminders are out of order",
                            )
                            .with_label("not later than the reminder before it")
                            .with_secondary(prev.span, "previous reminder")
                            .with_help(
                                "list reminders from the earliest to the latest; each is sent once per level",
                            ),
                        );
                    }
                }
                reminders.push(after.clone());
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
                    (OutcomeKind::Expire, Some(d)) => expire_after = Some(d.clone()),
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

    // Reminders count from when their level opens, at the earliest when the ticket enters the
    // stage, where the expiry counts from: one not earlier than the expiry never fires.
    if let Some(expiry) = expire_after.as_ref().filter(|d| !d.node.is_zero()) {
        for r in &reminders {
            if not_after(&expiry.node, &r.node) {
                ctx.diags.push(
                    Diagnostic::warning(
                        "approval-reminder-after-expiry",
                        r.span,
                        "this reminder would never fire: the approval expires first",
                    )
                    .with_label(format!("not earlier than the expiry after {}", expiry.node))
                    .with_secondary(expiry.span, "the approval expires here")
                    .with_help(format!(
                        "remind earlier than `on expire after {}`, or remove this reminder",
                        expiry.node
                    )),
                );
            }
        }
    }

    let on_expire = match (expire_after.map(|d| d.node), outcomes[2].and_then(|o| o.1)) {
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
            excludes,
            reminders: reminders.into_iter().map(|r| r.node).collect(),
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

/// A level's groups: quorums that can be met, roles that are declared, each role once; people
/// the ticket names, the creator (who never votes) warned of.
fn check_level(level: &ast::ApprovalLevel, scope: &ProcessScope, ctx: &mut Ctx) -> ApprovalLevel {
    let mut groups = Vec::with_capacity(level.groups.len());
    for (i, group) in level.groups.iter().enumerate() {
        let (quorum, role) = match group {
            ast::ApprovalGroup::Role { quorum, role, .. } => (quorum, role),
            ast::ApprovalGroup::Person(person) => {
                if person.managers.is_empty() {
                    if let ast::PersonBase::Creator(span) = person.base {
                        ctx.diags.push(
                            Diagnostic::warning(
                                "approval-asks-creator",
                                span,
                                "this group asks the ticket's creator, who never votes on their own ticket",
                            )
                            .with_label("this level can never be met")
                            .with_help(
                                "ask someone else about the creator's ticket, such as `manager of creator`",
                            ),
                        );
                    }
                }
                if let Some(person) = people::resolve(person, Place::Approval, scope, ctx) {
                    groups.push(ApprovalGroup {
                        quorum: Quorum::AtLeast(1),
                        approvers: Approvers::Person(person),
                    });
                }
                continue;
            }
        };
        let quorum = check_quorum(quorum, ctx);
        let first = level.groups[..i].iter().find_map(|g| match g {
            ast::ApprovalGroup::Role { role: r, .. }
                if !role.name.is_empty() && r.name == role.name =>
            {
                Some(r)
            }
            _ => None,
        });
        if let Some(first) = first {
            ctx.diags.push(
                Diagnostic::warning(
                    "approval-same-role",
                    role.span,
                    format!("role `{role}` is asked twice in one level"),
                )
                .with_label("the same people count in both groups")
                .with_secondary(first.span, "first asked here")
                .with_help(
                    "a vote counts in every group of the level its voter belongs to, so fewer people than intended can meet it; merge the groups, or name another role",
                ),
            );
        }
        if let Some(role) = ctx.role(role) {
            groups.push(ApprovalGroup {
                quorum,
                approvers: Approvers::Role(role),
            });
        }
    }
    ApprovalLevel { groups }
}

fn check_quorum(quorum: &Spanned<ast::Quorum>, ctx: &mut Ctx) -> Quorum {
    let span = quorum.span;
    match quorum.node {
        ast::Quorum::All => Quorum::All,
        ast::Quorum::Count(k) => match u32::try_from(k) {
            Ok(k) if k >= 1 => Quorum::AtLeast(k),
            _ if too_large_within(&ctx.diags, span) => Quorum::AtLeast(1),
            _ => {
                ctx.diags.push(
                    Diagnostic::error(
                        "approval-quorum",
                        span,
                        format!("a quorum of {k} approves nothing"),
                    )
                    .with_label("must be at least 1")
                    .with_help(
                        "write `any 1 of role ...` for one approver, or `none` for no approval",
                    ),
                );
                Quorum::AtLeast(1)
            }
        },
        ast::Quorum::Percent(pc) => match u32::try_from(pc) {
            Ok(100) => {
                // Every holder counts, and someone who raised the ticket never votes: the
                // level would wait for ever whenever the requester holds the role.
                ctx.diags.push(
                    Diagnostic::warning(
                        "approval-full-percent",
                        span,
                        "`100%` counts every holder of the role, including one who raised the ticket and may not vote",
                    )
                    .with_label("cannot be met when the requester holds the role")
                    .with_help("write `all of role ...` for every holder who may vote"),
                );
                Quorum::Percent(100)
            }
            Ok(pc) if (1..=100).contains(&pc) => Quorum::Percent(pc),
            _ if too_large_within(&ctx.diags, span) => Quorum::Percent(100),
            Ok(0) => {
                ctx.diags.push(
                    Diagnostic::error("approval-quorum", span, "a quorum of 0% approves nothing")
                        .with_label("must be between 1% and 100%")
                        .with_help("write `1%` or more, or `none` for no approval"),
                );
                Quorum::Percent(100)
            }
            _ => {
                ctx.diags.push(
                    Diagnostic::error(
                        "approval-quorum",
                        span,
                        format!("a quorum of {pc}% can never be met"),
                    )
                    .with_label("must be between 1% and 100%")
                    .with_help(
                        "a role has no more approvers than holders; write `all of role ...` for every approver who may vote",
                    ),
                );
                Quorum::Percent(100)
            }
        },
    }
}

/// The fields of `excludes`: declared, text or person (they hold user names), each once.
fn check_excludes(fields: &[Ident], scope: &ProcessScope, ctx: &mut Ctx) -> Vec<FieldId> {
    let mut out = Vec::with_capacity(fields.len());
    for (i, field) in fields.iter().enumerate() {
        if let Some(first) = fields[..i].iter().find(|f| f.name == field.name) {
            ctx.diags.push(
                Diagnostic::error(
                    "duplicate-definition",
                    field.span,
                    format!("field `{field}` is listed twice"),
                )
                .with_label("listed again here")
                .with_secondary(first.span, "first listed here"),
            );
            continue;
        }
        let Some(id) = scope.fields.resolve(field, &mut ctx.diags) else {
            continue;
        };
        match scope.field_types.get(id as usize) {
            Some(FieldType::Text | FieldType::Person) => out.push(FieldId(id)),
            // Everyone in the list is kept from voting (`excludes implementers`).
            Some(FieldType::List(element)) if **element == FieldType::Person => {
                out.push(FieldId(id))
            }
            Some(other) => ctx.diags.push(
                Diagnostic::error(
                    "approval-excludes-type",
                    field.span,
                    format!("`{field}` is {other}; `excludes` needs text, person or list(person) fields"),
                )
                .with_label("not a text or person field")
                .with_help(
                    "`excludes` names fields that hold people's user names, such as `requester: person` or `implementers: list(person)`",
                ),
            ),
            None => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use itsmflow_dsl::Sources;

    use crate::model::{Quorum, RoleId};

    #[test]
    fn the_model_holds_groups_excludes_reminders_and_rule_text() {
        let text = "role cab\nrole sec\nrole board\nprocess p {
  fields {
    kind: enum(a, b)
    requester: text
    implementer: text
  }
  stage new initial
  stage review
  stage done final
  stage no final
  transition t: new -> review
  approval in review {
    excludes implementer, requester
    when kind == a => 2 of role cab and 50% of role sec,
      then all of role board // last
    otherwise => none
    remind after 4h
    remind after 1d
    on approve => done
    on reject => no
    on expire after 5d => no
  }
}
";
        let mut sources = Sources::new();
        sources.add("p.itsm", text);
        let checked = crate::check(&sources);
        assert!(checked.diagnostics.is_empty(), "{:?}", checked.diagnostics);
        let project = checked.project.expect("a project");
        let roles: Vec<&str> = project.roles.iter().map(|r| r.name.as_str()).collect();
        let role = |name: &str| RoleId(roles.iter().position(|r| *r == name).unwrap() as u32);
        let p = &project.processes[0];
        let a = &p.approvals[0];
        let fields: Vec<&str> = a
            .excludes
            .iter()
            .map(|f| p.fields[f.index()].name.as_str())
            .collect();
        assert_eq!(fields, ["implementer", "requester"]);
        assert_eq!(
            a.reminders
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>(),
            ["4h", "1d"]
        );
        let texts: Vec<&str> = a.rules.iter().map(|r| r.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "when kind == a => any 2 of role cab and 50% of role sec, then all of role board",
                "otherwise => none",
            ]
        );
        let levels: Vec<Vec<(Quorum, Option<RoleId>)>> = a.rules[0]
            .levels
            .iter()
            .map(|l| l.groups.iter().map(|g| (g.quorum, g.role())).collect())
            .collect();
        assert_eq!(
            levels,
            [
                vec![
                    (Quorum::AtLeast(2), Some(role("cab"))),
                    (Quorum::Percent(50), Some(role("sec")))
                ],
                vec![(Quorum::All, Some(role("board")))],
            ]
        );
        assert!(a.rules[1].levels.is_empty());
        assert_eq!(a.roles(), [role("cab"), role("sec"), role("board")]);
    }
}
