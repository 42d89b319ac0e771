//! Approvals: a ticket's approval (plan, levels, ballots), the votes waiting for a user, and
//! the bodies that vote and delegate.

use chrono::{DateTime, Utc};
use itsmflow_engine::runtime::approval::{describe_level, Level};
use itsmflow_engine::runtime::catalog::Definition;
use itsmflow_engine::runtime::types::GroupOf;
use itsmflow_engine::runtime::{codec, ApprovalView};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// The approval of the stage an instance is in.
#[derive(Debug, Serialize, ToSchema)]
pub struct Approval {
    pub stage: String,
    /// The rule whose plan applies (1 for the first).
    #[schema(required = true, minimum = 1)]
    pub rule: Option<u32>,
    /// That rule as written.
    #[schema(examples(
        "when category == 2 => any 3 of role cab, then any 1 of role change_manager"
    ))]
    #[schema(required = true)]
    pub plan: Option<String>,
    /// Why this plan applies.
    pub explain: String,
    /// The level open now (1 for the first).
    #[schema(required = true, minimum = 1)]
    pub open_level: Option<u32>,
    /// Who is still to vote on the open level (delegates in place of their approvers).
    pub waiting_for: Vec<String>,
    pub levels: Vec<ApprovalLevel>,
    /// When `on expire` is taken, if the approval has one.
    #[schema(required = true)]
    pub expires_at: Option<DateTime<Utc>>,
}

/// A level of the plan: one reached (passed or open, with its groups and ballots), or one to
/// come (only `level`, `state` and `requires`).
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum ApprovalLevel {
    Reached(ReachedLevel),
    ToCome(LevelToCome),
}

/// A level that has opened: `approved`, `open`, or `cannot_proceed` (open, but its approvers
/// cannot meet it).
#[derive(Debug, Serialize, ToSchema)]
pub struct ReachedLevel {
    #[schema(minimum = 1)]
    pub level: u32,
    pub state: ReachedState,
    pub opened_at: DateTime<Utc>,
    pub groups: Vec<ApprovalGroup>,
    /// Holders of the level's roles who may not vote on this ticket (its creator, people its
    /// `excludes` fields name).
    pub excluded: Vec<String>,
    pub ballots: Vec<ApprovalBallot>,
    /// Why the level cannot be met, if it cannot.
    #[schema(required = true)]
    pub cannot_proceed: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReachedState {
    Approved,
    Open,
    CannotProceed,
}

/// A level of the plan not opened yet.
#[derive(Debug, Serialize, ToSchema)]
pub struct LevelToCome {
    #[schema(minimum = 1)]
    pub level: u32,
    pub state: ToComeState,
    /// Its groups as written.
    #[schema(examples("any 1 of role change_manager"))]
    pub requires: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ToComeState {
    ToCome,
}

/// One group of a level: a quorum of one role's holders, or one person the ticket names,
/// fixed when the level opened.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApprovalGroup {
    /// The role whose holders the group asks; null for a person.
    #[schema(required = true)]
    pub role: Option<String>,
    /// The person the group asks, as written (`manager of requester`); null for a role.
    #[schema(required = true)]
    pub person: Option<String>,
    /// Approvals the group needs.
    pub needed: u32,
    /// Holders of the role when the level opened, excluded ones included.
    pub holders: u32,
    pub approvals: u32,
    pub rejections: u32,
    /// Who may vote in the group.
    pub approvers: Vec<String>,
}

/// One approver's ballot on a level.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApprovalBallot {
    pub approver: String,
    /// Who votes on the approver's behalf, if they delegated.
    #[schema(required = true)]
    pub delegate: Option<String>,
    #[schema(required = true)]
    pub vote: Option<Decision>,
    #[schema(required = true)]
    pub voted_by: Option<String>,
    #[schema(required = true)]
    pub voted_at: Option<DateTime<Utc>>,
    #[schema(required = true)]
    pub comment: Option<String>,
}

/// A vote's decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Approve,
    Reject,
}

impl From<&ApprovalView> for Approval {
    fn from(view: &ApprovalView) -> Self {
        let def = view.definition();
        let state = view.state();
        let asked = def.model().approval_in(state.stage);
        let rule = state
            .rule
            .and_then(|r| asked.and_then(|a| a.rules.get(r as usize)));
        let mut levels: Vec<ApprovalLevel> = state
            .passed
            .iter()
            .map(|l| ApprovalLevel::Reached(reached(def, l, ReachedState::Approved)))
            .collect();
        if let Some(open) = &state.open {
            let now = if open.stuck.is_some() {
                ReachedState::CannotProceed
            } else {
                ReachedState::Open
            };
            levels.push(ApprovalLevel::Reached(reached(def, open, now)));
        }
        if let Some(rule) = rule {
            let to_come = rule.levels.iter().enumerate().skip(levels.len());
            levels.extend(to_come.map(|(i, l)| {
                ApprovalLevel::ToCome(LevelToCome {
                    level: counted_from_one(i),
                    state: ToComeState::ToCome,
                    requires: describe_level(def, &l.groups),
                })
            }));
        }
        Approval {
            stage: codec::stage_name(def, state.stage).to_string(),
            rule: state.rule.map(|r| r + 1),
            plan: rule.map(|r| r.text.clone()),
            explain: view.explain(),
            open_level: view.open_level().map(|l| l + 1),
            waiting_for: view.waiting_for().into_iter().map(str::to_string).collect(),
            levels,
            expires_at: view.expires_at(),
        }
    }
}

/// A level's position counted from 1, as people count.
fn counted_from_one(index: usize) -> u32 {
    u32::try_from(index).map_or(u32::MAX, |i| i.saturating_add(1))
}

fn reached(def: &Definition, level: &Level, state: ReachedState) -> ReachedLevel {
    let groups = level
        .groups
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let (approvals, rejections) = level.tally(i);
            let (role, person) = match &g.of {
                GroupOf::Role(r) => (Some(def.project.role(*r).name.clone()), None),
                GroupOf::Person(p) => (None, Some(p.to_string())),
            };
            ApprovalGroup {
                role,
                person,
                needed: g.needed,
                holders: g.holders,
                approvals,
                rejections,
                approvers: g.approvers.iter().map(|a| a.to_string()).collect(),
            }
        })
        .collect();
    let ballots = level
        .ballots
        .iter()
        .map(|b| ApprovalBallot {
            approver: b.approver.to_string(),
            delegate: b.delegate.as_deref().map(str::to_string),
            vote: b.vote.as_ref().map(|v| {
                if v.approve {
                    Decision::Approve
                } else {
                    Decision::Reject
                }
            }),
            voted_by: b.vote.as_ref().map(|v| v.by.to_string()),
            voted_at: b.vote.as_ref().map(|v| v.at),
            comment: b.vote.as_ref().and_then(|v| v.comment.clone()),
        })
        .collect();
    ReachedLevel {
        level: level.index.saturating_add(1),
        state,
        opened_at: level.opened_at,
        groups,
        excluded: level.excluded.iter().map(|a| a.to_string()).collect(),
        ballots,
        cannot_proceed: level.stuck.clone(),
    }
}

/// A vote waiting for the caller.
#[derive(Debug, Serialize, ToSchema)]
pub struct PendingBallot {
    pub instance: i64,
    pub process: String,
    pub stage: String,
    /// The level (0 for the first).
    pub level: u32,
    /// Who is to vote (the caller).
    pub approver: String,
    /// The approver whose vote was delegated to the caller.
    #[schema(required = true)]
    pub on_behalf_of: Option<String>,
    pub opened_at: DateTime<Utc>,
}

impl From<&itsmflow_engine::runtime::PendingBallot> for PendingBallot {
    fn from(b: &itsmflow_engine::runtime::PendingBallot) -> Self {
        PendingBallot {
            instance: b.instance.0,
            process: b.process.to_string(),
            stage: b.stage.to_string(),
            level: b.level,
            approver: b.approver.to_string(),
            on_behalf_of: b.on_behalf_of.as_deref().map(str::to_string),
            opened_at: b.opened_at,
        }
    }
}

/// The votes waiting for the caller, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct PendingBallotPage {
    pub items: Vec<PendingBallot>,
}

/// The `data` of an `approvals` event of the caller's live list: the instance's ballots
/// changed, and these are the caller's on it now (an empty list: nothing there waits for the
/// caller any more).
#[derive(Debug, Serialize, ToSchema)]
pub struct ApprovalsChanged {
    pub instance: i64,
    pub ballots: Vec<PendingBallot>,
}

/// Comments on votes are reasons, not documents: 4 KiB at most.
pub const MAX_VOTE_COMMENT: usize = 4 * 1024;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VoteRequest {
    pub decision: Decision,
    /// Why; kept in the history (and in the reasons of a rejection). At most 4 KiB once
    /// trimmed.
    #[serde(default)]
    pub comment: Option<String>,
    /// The level the voter saw (1 for the first): a vote for a level that has closed since is
    /// refused (409 `/problems/level-closed`) rather than counted on the next.
    #[serde(default)]
    #[schema(minimum = 1)]
    pub level: Option<u32>,
    /// The instance version the voter saw (or send `If-Match`; both must agree); without it
    /// the vote counts on the approval as it now is, however many votes arrive at once.
    #[serde(default)]
    #[schema(minimum = 1)]
    pub version: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DelegationRequest {
    /// Who votes instead: a holder of one of the approver's roles, or (named by an
    /// administrator) any user of the tenant.
    pub to: String,
    /// Whose vote: the caller's own, unless an administrator names an approver.
    #[serde(default)]
    pub from: Option<String>,
}

/// How many of the caller's pending votes to list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MyApprovalsQuery {
    /// Page size: 1 to the server's `--max-page` (default 500); 50 if absent. Out of range is a
    /// 422.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}
