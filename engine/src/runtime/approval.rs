//! Approvals at run time, as pure functions like the rest of [`super::logic`].
//!
//! Nothing about an approval is stored apart from the history: the plan chosen, each level's
//! approvers, every vote and delegation are events, and [`ApprovalState::of`] folds them into
//! the state of the approval of the stage the instance is in. The pending ballots the store
//! keeps (for "my approvals") are a copy, written with every change that moves them: the
//! difference a vote or a delegation makes, else the whole list ([`BallotChange`]).
//!
//! - **Entering** a stage with an approval appends `approval_requested` (the first rule that
//!   matches, and how many levels its plan has). A plan of `none` takes `on approve` at once,
//!   in the same change; otherwise the first level opens.
//! - **Opening a level** fixes its approvers: per group, the holders of the group's role now
//!   (from the [`Directory`], read by the engine before deciding), or the one person a person
//!   group names (`manager of requester`), less the ticket's creator
//!   and the people named in the approval's `excludes` fields. A level that cannot be met by
//!   them is recorded as `approval_stuck` and the process managers are notified: it waits
//!   (for its expiry, or for someone to withdraw the ticket) and says why.
//! - **A vote** counts once, on one ballot, in every group of the level its approver is in.
//!   A level passes when every group has its quorum of approvals, and fails as soon as one
//!   group can no longer reach it; passing opens the next level or, after the last, takes
//!   `on approve`; failing takes `on reject`. Either is `approval_decided`, which moves the
//!   instance like a transition.
//! - **Expiry** (`on expire after D`) and **reminders** are due points of [`super::timers`];
//!   firing them lands here.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::catalog::Definition;
use super::error::{ApprovalRefusal, EngineError};
use super::logic::{holds, new_task, queue_for, Request};
use super::types::*;
use crate::model::{
    Approval, ApprovalGroup, Approvers, OutcomeKind, PersonRef, Process, RoleId, StageId, Value,
};

/// The role that hears of approvals that cannot proceed.
pub const PROCESS_MANAGER_ROLE: &str = "process_manager";

/// How many approvals a change may pass through (a `none` plan whose `on approve` stage asks
/// for another approval, and so on) before it stops where it is: a loop of `none` plans would
/// otherwise never end.
const MAX_CHAINED_APPROVALS: usize = 16;

/// What a [`Directory`] answers, when it has looked.
pub type DirectoryAnswer<'a, T> = Pin<Box<dyn Future<Output = Result<T, EngineError>> + Send + 'a>>;

/// Who holds which roles in the tenant: where approvers come from. The server answers from its
/// users; tests from a table.
pub trait Directory: Send + Sync + 'static {
    /// The holders of each of `roles`, by name.
    fn holders<'a>(&'a self, roles: &'a [&'a str]) -> DirectoryAnswer<'a, Vec<Vec<String>>>;

    /// Whether a user of this name exists (an administrator may delegate to anyone who does;
    /// a `person` field holds only users who do).
    fn exists<'a>(&'a self, user: &'a str) -> DirectoryAnswer<'a, bool>;

    /// The manager of each of `users`, where the directory names one.
    fn managers<'a>(&'a self, users: &'a [&'a str]) -> DirectoryAnswer<'a, Vec<Option<String>>>;
}

/// No directory at all (an engine embedded without users: simulations, tests): nobody holds any
/// role, so approval levels wait, reported as unmeetable; nobody has a manager; and any name is
/// taken as a user, since there is nothing to check it against.
#[derive(Default)]
pub struct NoDirectory;

impl Directory for NoDirectory {
    fn holders<'a>(&'a self, roles: &'a [&'a str]) -> DirectoryAnswer<'a, Vec<Vec<String>>> {
        Box::pin(async move { Ok(vec![Vec::new(); roles.len()]) })
    }
    fn exists<'a>(&'a self, _user: &'a str) -> DirectoryAnswer<'a, bool> {
        Box::pin(async { Ok(true) })
    }
    fn managers<'a>(&'a self, users: &'a [&'a str]) -> DirectoryAnswer<'a, Vec<Option<String>>> {
        Box::pin(async move { Ok(vec![None; users.len()]) })
    }
}

/// A directory kept in memory: roles and their holders, changeable at any time (tests, and
/// embedders without users of their own).
#[derive(Default)]
pub struct StaticDirectory {
    roles: std::sync::RwLock<Vec<(String, Vec<String>)>>,
    /// (user, their manager).
    managers: std::sync::RwLock<Vec<(String, String)>>,
    /// Users who hold no role but exist.
    users: std::sync::RwLock<Vec<String>>,
}

impl StaticDirectory {
    pub fn new() -> Self {
        Self::default()
    }

    /// Say that `user` exists (holding roles is another way to).
    pub fn add_user(&self, user: &str) {
        let mut users = self.users.write().unwrap_or_else(|e| e.into_inner());
        if !users.iter().any(|u| u == user) {
            users.push(user.to_string());
        }
    }

    /// Set `user`'s manager.
    pub fn set_manager(&self, user: &str, manager: &str) {
        let mut managers = self.managers.write().unwrap_or_else(|e| e.into_inner());
        managers.retain(|(u, _)| u != user);
        managers.push((user.to_string(), manager.to_string()));
    }

    /// Set who holds `role` (replacing whoever did).
    pub fn set(&self, role: &str, holders: &[&str]) {
        let mut roles = self.roles.write().unwrap_or_else(|e| e.into_inner());
        let holders: Vec<String> = holders.iter().map(|h| h.to_string()).collect();
        match roles.iter_mut().find(|(r, _)| r == role) {
            Some((_, h)) => *h = holders,
            None => roles.push((role.to_string(), holders)),
        }
    }
}

impl Directory for StaticDirectory {
    fn holders<'a>(&'a self, roles: &'a [&'a str]) -> DirectoryAnswer<'a, Vec<Vec<String>>> {
        let known = self.roles.read().unwrap_or_else(|e| e.into_inner());
        let found = roles
            .iter()
            .map(|role| {
                known
                    .iter()
                    .find(|(r, _)| r == role)
                    .map(|(_, h)| h.clone())
                    .unwrap_or_default()
            })
            .collect();
        Box::pin(async move { Ok(found) })
    }
    fn exists<'a>(&'a self, user: &'a str) -> DirectoryAnswer<'a, bool> {
        let known = self.roles.read().unwrap_or_else(|e| e.into_inner());
        let found = known.iter().any(|(_, h)| h.iter().any(|h| h == user))
            || self
                .users
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .any(|u| u == user);
        Box::pin(async move { Ok(found) })
    }
    fn managers<'a>(&'a self, users: &'a [&'a str]) -> DirectoryAnswer<'a, Vec<Option<String>>> {
        let known = self.managers.read().unwrap_or_else(|e| e.into_inner());
        let found = users
            .iter()
            .map(|u| known.iter().find(|(x, _)| x == u).map(|(_, m)| m.clone()))
            .collect();
        Box::pin(async move { Ok(found) })
    }
}

/// What a decision may need of the directory, read before deciding (decisions are pure): the
/// holders of roles, the managers of the people the ticket names, and who holds its task.
#[derive(Debug, Default)]
pub struct Holders {
    roles: Vec<(RoleId, Vec<Arc<str>>)>,
    /// (person, their manager, if the directory names one).
    managers: Vec<(Arc<str>, Option<Arc<str>>)>,
    /// Who holds the ticket's open task.
    assignee: Option<Arc<str>>,
}

/// Nobody holds anything: for decisions that open no level.
pub static NO_HOLDERS: Holders = Holders {
    roles: Vec::new(),
    managers: Vec::new(),
    assignee: None,
};

impl Holders {
    pub fn new(roles: Vec<(RoleId, Vec<Arc<str>>)>) -> Self {
        Holders {
            roles,
            ..Holders::default()
        }
    }

    /// Also know these managers, and who holds the ticket's task.
    pub fn with_people(
        mut self,
        managers: Vec<(Arc<str>, Option<Arc<str>>)>,
        assignee: Option<Arc<str>>,
    ) -> Self {
        self.managers = managers;
        self.assignee = assignee;
        self
    }

    /// The person `p` names on the ticket (`task`: its open task, when at hand; else the
    /// holder read with the directory), if it names anyone.
    pub fn person(&self, p: &PersonRef, inst: &Instance, task: Option<&Task>) -> Option<Arc<str>> {
        match p {
            PersonRef::Field(f) => match inst.fields.get(f.index()) {
                Some(Some(Value::Text(name))) if !name.trim().is_empty() => {
                    Some(Arc::from(name.trim()))
                }
                _ => None,
            },
            PersonRef::Creator => Some(inst.created_by.clone()),
            PersonRef::Assignee => match task {
                Some(t) => {
                    let holder = t.holder();
                    (!holder.is_empty()).then(|| Arc::from(holder))
                }
                None => self.assignee.clone(),
            },
            PersonRef::ManagerOf(inner) => {
                let person = self.person(inner, inst, task)?;
                self.managers
                    .iter()
                    .find(|(p, _)| *p == person)
                    .and_then(|(_, m)| m.clone())
            }
        }
    }

    /// Everyone `p` names on the ticket: the people of a `list(person)` field (in order, once
    /// each), else the one person [`Self::person`] finds, if any.
    pub fn people(&self, p: &PersonRef, inst: &Instance, task: Option<&Task>) -> Vec<Arc<str>> {
        match p {
            PersonRef::Field(f) => match inst.fields.get(f.index()) {
                Some(Some(v)) => v.people(),
                _ => Vec::new(),
            },
            _ => self.person(p, inst, task).into_iter().collect(),
        }
    }

    /// Holders of `role`, sorted by name, once each.
    pub fn of(&self, role: RoleId) -> &[Arc<str>] {
        self.roles
            .iter()
            .find(|(r, _)| *r == role)
            .map_or(&[], |(_, h)| h.as_slice())
    }

    /// Whether `user` holds `role`.
    pub fn holds(&self, user: &str, role: RoleId) -> bool {
        self.of(role).iter().any(|h| &**h == user)
    }
}

/// The roles whose holders a decision on `p` may need: every role its approvals name.
pub fn approval_roles(p: &Process) -> Vec<RoleId> {
    let mut roles = Vec::new();
    for a in &p.approvals {
        for r in a.roles() {
            if !roles.contains(&r) {
                roles.push(r);
            }
        }
    }
    roles
}

/// A vote cast.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vote {
    pub approve: bool,
    /// Who cast it: the approver, or their delegate.
    pub by: Arc<str>,
    pub at: DateTime<Utc>,
    pub comment: Option<String>,
}

/// One approver's ballot on a level.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ballot {
    pub approver: Arc<str>,
    /// Who votes on the approver's behalf, when they delegated.
    pub delegate: Option<Arc<str>>,
    pub vote: Option<Vote>,
    /// The groups of the level the approver is in: bit `i` for group `i` (of the first 64;
    /// a level with more is counted by name).
    pub groups: u64,
}

impl Ballot {
    /// Who is to cast it.
    pub fn holder(&self) -> &Arc<str> {
        self.delegate.as_ref().unwrap_or(&self.approver)
    }
}

/// Where a level stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Open,
    Passed,
    /// Some group can no longer reach its quorum; why.
    Failed(String),
}

/// A level as opened, with its ballots.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Level {
    pub index: u32,
    pub opened_at: DateTime<Utc>,
    /// Fixed when the level opened, so shared by every copy of the state.
    pub groups: Arc<[LevelGroup]>,
    pub excluded: Arc<[Arc<str>]>,
    /// One per approver of the level (in order of first appearance across its groups).
    pub ballots: Vec<Ballot>,
    /// Why it cannot be met, if it cannot.
    pub stuck: Option<String>,
    /// Reminder steps fired.
    pub reminded: Vec<u32>,
}

impl Level {
    fn new(
        index: u32,
        opened_at: DateTime<Utc>,
        groups: Vec<LevelGroup>,
        excluded: Vec<Arc<str>>,
    ) -> Self {
        let mut ballots: Vec<Ballot> = Vec::new();
        for (i, g) in groups.iter().enumerate() {
            let bit = if i < 64 { 1u64 << i } else { 0 };
            for a in &g.approvers {
                match ballots.iter_mut().find(|b| b.approver == *a) {
                    Some(b) => b.groups |= bit,
                    None => ballots.push(Ballot {
                        approver: a.clone(),
                        delegate: None,
                        vote: None,
                        groups: bit,
                    }),
                }
            }
        }
        Level {
            index,
            opened_at,
            groups: groups.into(),
            excluded: excluded.into(),
            ballots,
            stuck: None,
            reminded: Vec::new(),
        }
    }

    pub fn ballot(&self, approver: &str) -> Option<&Ballot> {
        self.ballots.iter().find(|b| &*b.approver == approver)
    }

    fn ballot_mut(&mut self, approver: &str) -> Option<&mut Ballot> {
        self.ballots.iter_mut().find(|b| &*b.approver == approver)
    }

    /// The ballot `user` is to cast: their own (not delegated), or one delegated to them.
    pub fn held_by(&self, user: &str) -> Option<&Ballot> {
        self.ballots.iter().find(|b| &**b.holder() == user)
    }

    /// Approvals and rejections so far in group `index`.
    pub fn tally(&self, index: usize) -> (u32, u32) {
        let mut yes = 0;
        let mut no = 0;
        let mut count = |vote: Option<&Vote>| match vote {
            Some(v) if v.approve => yes += 1,
            Some(_) => no += 1,
            None => {}
        };
        if index < 64 {
            let bit = 1u64 << index;
            for b in self.ballots.iter().filter(|b| b.groups & bit != 0) {
                count(b.vote.as_ref());
            }
        } else if let Some(g) = self.groups.get(index) {
            for a in &g.approvers {
                count(self.ballot(a).and_then(|b| b.vote.as_ref()));
            }
        }
        (yes, no)
    }

    /// Whether every group has its quorum, some group can no longer reach it, or neither.
    pub fn verdict(&self, def: &Definition) -> Verdict {
        let mut passed = true;
        for (i, g) in self.groups.iter().enumerate() {
            let (yes, no) = self.tally(i);
            let eligible = g.approvers.len() as u32;
            if yes >= g.needed && g.needed > 0 {
                continue;
            }
            passed = false;
            if eligible.saturating_sub(no) < g.needed && no > 0 {
                return Verdict::Failed(format!(
                    "{no} of {eligible} approvers of {} rejected, so its {} approvals can no longer be reached",
                    g.of.describe(def),
                    g.needed
                ));
            }
        }
        if passed {
            Verdict::Passed
        } else {
            Verdict::Open
        }
    }

    /// Why the level cannot be met by its approvers, if it cannot.
    fn unmeetable(&self, def: &Definition) -> Option<String> {
        let reasons: Vec<String> = self
            .groups
            .iter()
            .filter(|g| g.needed == 0 || (g.approvers.len() as u32) < g.needed)
            .map(|g| {
                let role = g.of.describe(def);
                let excluded = g.holders as usize - g.approvers.len();
                let but = if excluded > 0 {
                    format!(" ({excluded} more may not vote on their own ticket)")
                } else {
                    String::new()
                };
                match (&g.of, g.needed) {
                    (GroupOf::Person(_), _) if g.holders == 0 => {
                        format!("the ticket names nobody as {role}")
                    }
                    (GroupOf::Person(_), _) => {
                        format!("{role} may not vote on their own ticket")
                    }
                    (_, 0) => format!("{role} has no holder who may vote{but}"),
                    _ => format!(
                        "it needs {} approvals of {role}, which has {} approvers{but}",
                        g.needed,
                        g.approvers.len()
                    ),
                }
            })
            .collect();
        (!reasons.is_empty()).then(|| reasons.join("; "))
    }

    /// Ballots not cast yet.
    pub fn pending(&self) -> impl Iterator<Item = &Ballot> {
        self.ballots.iter().filter(|b| b.vote.is_none())
    }
}

/// The approval of the stage an instance is in, as its history tells it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApprovalState {
    pub stage: StageId,
    pub entered_at: DateTime<Utc>,
    /// The rule whose plan applies (index among the approval's rules), once chosen.
    pub rule: Option<u32>,
    /// Levels in the plan.
    pub levels: u32,
    /// Levels that passed, in order.
    pub passed: Vec<Level>,
    /// The level waiting for votes.
    pub open: Option<Level>,
}

impl ApprovalState {
    /// The approval of the stage the instance is in after `events` (its whole history), or
    /// `None` if that stage asks for none.
    pub fn of(p: &Process, events: &[Event]) -> Option<ApprovalState> {
        let mut state = None;
        for e in super::types::current_epoch(events) {
            Self::apply(&mut state, p, e);
        }
        state
    }

    /// Take one more event.
    pub fn apply(state: &mut Option<ApprovalState>, p: &Process, e: &Event) {
        let entered = match &e.kind {
            EventKind::Created { stage, .. } => Some(*stage),
            EventKind::Migrated(m) => Some(m.stage),
            EventKind::Transitioned { from, to, .. } if from != to => Some(*to),
            EventKind::ApprovalDecided { to, .. } => Some(*to),
            _ => None,
        };
        if let Some(stage) = entered {
            *state = p.approval_in(stage).map(|_| ApprovalState {
                stage,
                entered_at: e.at,
                rule: None,
                levels: 0,
                passed: Vec::new(),
                open: None,
            });
            return;
        }
        let Some(s) = state.as_mut() else {
            return;
        };
        match &e.kind {
            EventKind::ApprovalRequested { rule, levels } => {
                s.rule = Some(*rule);
                s.levels = *levels;
            }
            EventKind::LevelOpened {
                level,
                groups,
                excluded,
            } => {
                if let Some(done) = s.open.take() {
                    s.passed.push(done);
                }
                s.open = Some(Level::new(*level, e.at, groups.clone(), excluded.clone()));
            }
            EventKind::ApprovalStuck { level, reason } => {
                if let Some(l) = s.open.as_mut().filter(|l| l.index == *level) {
                    l.stuck = Some(reason.clone());
                }
            }
            EventKind::Voted {
                level,
                approver,
                approve,
                comment,
            } => {
                if let Some(b) = s
                    .open
                    .as_mut()
                    .filter(|l| l.index == *level)
                    .and_then(|l| l.ballot_mut(approver))
                {
                    b.vote = Some(Vote {
                        approve: *approve,
                        by: e.actor.clone(),
                        at: e.at,
                        comment: comment.clone(),
                    });
                }
            }
            EventKind::Delegated { level, from, to } => {
                if let Some(b) = s
                    .open
                    .as_mut()
                    .filter(|l| l.index == *level)
                    .and_then(|l| l.ballot_mut(from))
                {
                    b.delegate = Some(to.clone());
                }
            }
            EventKind::Reminded { level, step } => {
                if let Some(l) = s.open.as_mut().filter(|l| l.index == *level) {
                    l.reminded.push(*step);
                }
            }
            _ => {}
        }
    }

    /// The ballots to keep as pending for "my approvals".
    pub fn pending_ballots(&self, def: &Definition, inst: &Instance) -> Vec<PendingBallot> {
        let Some(level) = &self.open else {
            return Vec::new();
        };
        let names = def.task_names();
        level
            .pending()
            .map(|b| PendingBallot {
                instance: inst.id,
                process: names.process.clone(),
                stage: names.stages[self.stage.index()].clone(),
                level: level.index,
                approver: b.holder().clone(),
                on_behalf_of: b.delegate.as_ref().map(|_| b.approver.clone()),
                opened_at: level.opened_at,
            })
            .collect()
    }
}

/// `any 3 of role cab and manager of requester`.
pub fn describe_level(def: &Definition, groups: &[ApprovalGroup]) -> String {
    groups
        .iter()
        .map(|g| match &g.approvers {
            Approvers::Role(r) => format!("{} of role {}", g.quorum, def.project.role(*r).name),
            Approvers::Person(p) => p.describe(def.model()),
        })
        .collect::<Vec<_>>()
        .join(" and ")
}

impl GroupOf {
    /// `role \`cab\``, or the person as written.
    pub fn describe(&self, def: &Definition) -> String {
        match self {
            GroupOf::Role(r) => format!("role `{}`", def.project.role(*r).name),
            GroupOf::Person(p) => format!("`{p}`"),
        }
    }

    /// The outbox role its approvers are told under: the role, or `approver` for a person.
    pub fn outbox_role(&self, def: &Definition) -> String {
        match self {
            GroupOf::Role(r) => def.project.role(*r).name.clone(),
            GroupOf::Person(_) => "approver".to_string(),
        }
    }
}

/// Whether `user` may not vote on the ticket: its creator, or named in an `excludes` field
/// (one of the people in a `list(person)` one).
pub fn is_excluded(approval: &Approval, inst: &Instance, user: &str) -> bool {
    *inst.created_by == *user
        || approval.excludes.iter().any(|f| {
            inst.fields
                .get(f.index())
                .and_then(Option::as_ref)
                .is_some_and(|v| v.people().iter().any(|name| &**name == user))
        })
}

/// A change under construction by the approval's rules: the events appended one at a time,
/// the approval as they leave it, and the instance's open task as the change leaves it.
pub(super) struct Decider<'a> {
    def: &'a Definition,
    req: &'a Request<'a>,
    change: &'a mut Change,
    /// The instance's task not done that the change has not closed (a stage with an approval
    /// may name a queue); a task the change opens is in `change.new_task` instead.
    open_task: Option<TaskId>,
    /// The approval of the instance's stage after the events so far.
    state: Option<ApprovalState>,
    /// What the events so far did to the pending ballots, while they only took some away and
    /// added some (`None` once the whole list must be written again).
    delta: Option<(Vec<Arc<str>>, Vec<PendingBallot>)>,
}

impl<'a> Decider<'a> {
    /// Go on from `change` (decided on an instance whose approval was `before`).
    pub fn new(
        def: &'a Definition,
        req: &'a Request<'a>,
        change: &'a mut Change,
        open_task: Option<TaskId>,
        mut before: Option<ApprovalState>,
    ) -> Self {
        for e in &change.events {
            ApprovalState::apply(&mut before, def.model(), e);
        }
        Decider {
            def,
            req,
            change,
            open_task,
            state: before,
            delta: Some((Vec::new(), Vec::new())),
        }
    }

    /// The approval as the change leaves it.
    pub fn into_state(self) -> Option<ApprovalState> {
        self.state
    }

    /// Append an event, and take it into the approval's state.
    fn push(&mut self, kind: EventKind, reason: Option<String>) {
        super::notices::append(self.change, self.req, kind, reason);
        if let Some(e) = self.change.events.last() {
            ApprovalState::apply(&mut self.state, self.def.model(), e);
        }
    }

    fn approval(&self) -> Option<&'a Approval> {
        self.def.model().approval_in(self.change.instance.stage)
    }

    /// The instance has just entered its stage: ask for its approval, if it has one (and the
    /// ones after it, while plans of `none` move it on).
    pub fn entered(&mut self) {
        for _ in 0..MAX_CHAINED_APPROVALS {
            let Some(approval) = self.approval() else {
                return;
            };
            let inst = &self.change.instance;
            let Some((index, rule)) = approval.rules.iter().enumerate().find(|(_, r)| {
                r.condition
                    .as_ref()
                    .is_none_or(|c| holds(c, &inst.fields, inst.priority))
            }) else {
                // The checker proves every ticket matches a rule; should one not, the ticket
                // waits with this said rather than moving on unapproved.
                self.push(
                    EventKind::Skipped {
                        action: "approval".into(),
                        reason: "no approval rule matches the ticket".into(),
                    },
                    None,
                );
                return;
            };
            let levels = rule.levels.len() as u32;
            let why = format!("rule {}: {}", index + 1, rule.text);
            self.push(
                EventKind::ApprovalRequested {
                    rule: index as u32,
                    levels,
                },
                Some(why.clone()),
            );
            let stage = self.change.instance.stage;
            if levels > 0 {
                self.open_level(0);
                self.stage_notices(stage);
                return;
            }
            self.stage_notices(stage);
            self.decide(
                OutcomeKind::Approve,
                approval.on_approve,
                format!("no approval needed ({why})"),
            );
        }
        self.push(
            EventKind::Skipped {
                action: "approval".into(),
                reason: format!(
                    "{MAX_CHAINED_APPROVALS} approvals in a row needed none; stopped here"
                ),
            },
            None,
        );
    }

    /// Open level `index` of the plan chosen on entering the stage.
    fn open_level(&mut self, index: u32) {
        let p = self.def.model();
        let Some(approval) = self.approval() else {
            return;
        };
        let Some(rule) = self
            .state
            .as_ref()
            .and_then(|s| s.rule)
            .and_then(|r| approval.rules.get(r as usize))
        else {
            return;
        };
        let Some(level) = rule.levels.get(index as usize) else {
            return;
        };
        let mut excluded: Vec<Arc<str>> = Vec::new();
        let groups: Vec<LevelGroup> = level
            .groups
            .iter()
            .map(|g| {
                let (of, holders): (GroupOf, Vec<Arc<str>>) = match &g.approvers {
                    Approvers::Role(r) => (GroupOf::Role(*r), self.req.holders.of(*r).to_vec()),
                    Approvers::Person(p) => (
                        GroupOf::Person(p.describe(self.def.model()).into()),
                        self.req
                            .holders
                            .person(p, &self.change.instance, None)
                            .into_iter()
                            .collect(),
                    ),
                };
                let mut approvers = Vec::with_capacity(holders.len());
                for h in &holders {
                    if is_excluded(approval, &self.change.instance, h) {
                        if !excluded.contains(h) {
                            excluded.push(h.clone());
                        }
                    } else {
                        approvers.push(h.clone());
                    }
                }
                LevelGroup {
                    of,
                    needed: g.quorum.needed(holders.len(), approvers.len()) as u32,
                    holders: holders.len() as u32,
                    approvers,
                }
            })
            .collect();
        let plan_size = rule.levels.len();
        let describe = describe_level(self.def, &level.groups);
        self.push(
            EventKind::LevelOpened {
                level: index,
                groups,
                excluded,
            },
            Some(format!("level {} of {plan_size}: {describe}", index + 1)),
        );
        self.delta = None;
        let Some(opened) = self.state.as_ref().and_then(|s| s.open.clone()) else {
            return;
        };
        let id = self.change.instance.id;
        for g in opened.groups.iter() {
            if g.approvers.is_empty() {
                continue;
            }
            self.change.notifications.push(NewNotification {
                role: g.of.outbox_role(self.def),
                recipients: g.approvers.iter().map(|a| a.to_string()).collect(),
                clock: None,
                threshold: None,
                message: format!(
                    "{} {id} awaits your approval (level {} of {plan_size}: {describe})",
                    p.name,
                    index + 1
                ),
                deliver_at: self.req.now,
            });
        }
        if let Some(reason) = opened.unmeetable(self.def) {
            self.change.notifications.push(NewNotification {
                role: PROCESS_MANAGER_ROLE.to_string(),
                recipients: Vec::new(),
                clock: None,
                threshold: None,
                message: format!(
                    "{} {id} cannot be approved: level {} of {plan_size} cannot be met: {reason}",
                    p.name,
                    index + 1
                ),
                deliver_at: self.req.now,
            });
            self.push(
                EventKind::ApprovalStuck {
                    level: index,
                    reason: reason.clone(),
                },
                Some(format!("cannot be met: {reason}")),
            );
        }
        self.refresh_ballots();
    }

    /// End the approval with `outcome`, moving the instance to `to` (and asking that stage's
    /// approval, if it has one).
    fn decide(&mut self, outcome: OutcomeKind, to: StageId, reason: String) {
        let p = self.def.model();
        let from = self.change.instance.stage;
        self.push(
            EventKind::ApprovalDecided { outcome, from, to },
            Some(reason),
        );
        // The level's ballots all go, whatever the stage entered asks.
        self.delta = None;
        let inst = Arc::make_mut(&mut self.change.instance);
        inst.stage = to;
        let queue = queue_for(p, to, &inst.fields, inst.priority);
        if queue != inst.queue {
            let from = inst.queue;
            inst.queue = queue;
            self.push(
                EventKind::Routed {
                    from,
                    to: queue,
                    cause: Cause::Stage,
                },
                None,
            );
        }
        // The approval stage's task (one this change opened is simply not opened).
        if self.change.new_task.take().is_none() {
            if let Some(task) = self.open_task.take() {
                self.change.close_task = Some(CloseTask {
                    task,
                    fence: Fence::engine(),
                });
            }
        }
        self.change.new_task = queue.map(|q| new_task(self.def, &self.change.instance, q));
        self.refresh_ballots();
        // A stage with an approval of its own tells once its level is open (see `entered`).
        if p.approval_in(to).is_none() {
            self.stage_notices(to);
        }
    }

    /// Send the notices of entering `stage` (the approvers of its open level, if any, are
    /// those `notify approvers` reaches).
    fn stage_notices(&mut self, stage: StageId) {
        let p = self.def.model();
        let notices = &p.stages[stage.index()].notices;
        if notices.is_empty() {
            return;
        }
        let approvers: Vec<Arc<str>> = self
            .state
            .as_ref()
            .filter(|s| s.stage == stage)
            .and_then(|s| s.open.as_ref())
            .map(|l| l.pending().map(|b| b.holder().clone()).collect())
            .unwrap_or_default();
        let reason = format!("entered {}", p.stages[stage.index()].name);
        for notice in notices {
            super::notices::send(
                self.def,
                self.req,
                self.change,
                None,
                notice,
                super::notices::About::Stage,
                &approvers,
                &reason,
            );
        }
    }

    /// Write the pending ballots as the events so far leave them: what changed, while that is
    /// known, else the whole list.
    fn refresh_ballots(&mut self) {
        self.change.ballots = Some(match &self.delta {
            Some((removed, added)) => BallotChange::Some {
                removed: removed.clone(),
                added: added.clone(),
            },
            None => BallotChange::All(
                self.state
                    .as_ref()
                    .map(|s| s.pending_ballots(self.def, &self.change.instance))
                    .unwrap_or_default(),
            ),
        });
    }

    /// Note that the ballot `holder` was to cast goes (cast, or handed on), and that `added`
    /// come.
    fn ballot_moved(&mut self, holder: Arc<str>, added: Option<Arc<str>>, on_behalf_of: Arc<str>) {
        let Some((removed, new)) = self.delta.as_mut() else {
            return;
        };
        removed.push(holder);
        if let (Some(to), Some(state)) = (added, &self.state) {
            if let Some(level) = &state.open {
                let names = self.def.task_names();
                new.push(PendingBallot {
                    instance: self.change.instance.id,
                    process: names.process.clone(),
                    stage: names.stages[state.stage.index()].clone(),
                    level: level.index,
                    approver: to,
                    on_behalf_of: Some(on_behalf_of),
                    opened_at: level.opened_at,
                });
            }
        }
    }

    /// After a vote: pass the level on, fail it, or leave it open.
    fn settle(&mut self) {
        let Some(approval) = self.approval() else {
            return;
        };
        let Some(state) = &self.state else {
            return;
        };
        let Some(level) = &state.open else {
            return;
        };
        match level.verdict(self.def) {
            Verdict::Open => self.refresh_ballots(),
            Verdict::Failed(why) => {
                let reasons: Vec<String> = level
                    .ballots
                    .iter()
                    .filter_map(|b| {
                        let v = b.vote.as_ref().filter(|v| !v.approve)?;
                        Some(match &v.comment {
                            Some(c) => format!("{} rejected: {c}", b.approver),
                            None => format!("{} rejected", b.approver),
                        })
                    })
                    .collect();
                let reason = format!(
                    "level {} of {}: {why} ({})",
                    level.index + 1,
                    state.levels,
                    reasons.join("; ")
                );
                self.decide(OutcomeKind::Reject, approval.on_reject, reason);
                // The stage the outcome led to may ask for an approval of its own.
                self.entered();
            }
            Verdict::Passed if level.index + 1 < state.levels => {
                let next = level.index + 1;
                self.open_level(next);
            }
            Verdict::Passed => {
                let reason = format!("all {} levels approved", state.levels);
                self.decide(OutcomeKind::Approve, approval.on_approve, reason);
                // The stage the outcome led to may ask for an approval of its own.
                self.entered();
            }
        }
    }

    /// Record `by`'s vote on the open level (checked by [`check_vote`] first).
    pub fn vote(&mut self, approver: Arc<str>, approve: bool, comment: Option<String>) {
        let Some(level) = self.state.as_ref().and_then(|s| s.open.as_ref()) else {
            return;
        };
        let holder = level
            .ballot(&approver)
            .map(|b| b.holder().clone())
            .unwrap_or_else(|| approver.clone());
        let level = level.index;
        let reason = comment.clone();
        self.push(
            EventKind::Voted {
                level,
                approver: approver.clone(),
                approve,
                comment,
            },
            reason,
        );
        self.ballot_moved(holder, None, approver);
        self.settle();
    }

    /// Hand `from`'s ballot to `to` (checked by [`check_delegation`] first).
    pub fn delegate(&mut self, from: Arc<str>, to: Arc<str>, reason: Option<String>) {
        let Some(level) = self.state.as_ref().and_then(|s| s.open.as_ref()) else {
            return;
        };
        let level = level.index;
        let message = format!(
            "{} {} awaits your approval, on behalf of {from}",
            self.def.model().name,
            self.change.instance.id
        );
        let role = self
            .state
            .as_ref()
            .and_then(|s| s.open.as_ref())
            .and_then(|l| l.groups.iter().find(|g| g.approvers.contains(&from)))
            .map(|g| g.of.outbox_role(self.def))
            .unwrap_or_default();
        self.push(
            EventKind::Delegated {
                level,
                from: from.clone(),
                to: to.clone(),
            },
            reason,
        );
        self.ballot_moved(from.clone(), Some(to.clone()), from);
        self.change.notifications.push(NewNotification {
            role,
            recipients: vec![to.to_string()],
            clock: None,
            threshold: None,
            message,
            deliver_at: self.req.now,
        });
        self.refresh_ballots();
    }

    /// No decision in time: take `on expire`.
    pub fn expire(&mut self, label: &str) {
        let Some(approval) = self.approval() else {
            return;
        };
        let Some((_, to)) = approval.on_expire else {
            return;
        };
        self.decide(
            OutcomeKind::Expire,
            to,
            format!("no decision within {label}"),
        );
        // The stage the outcome led to may ask for an approval of its own.
        self.entered();
    }

    /// Remind the approvers of the open level who have not voted (reminder `step`).
    pub fn remind(&mut self, level: u32, step: u32, label: &str) {
        let Some(open) = self
            .state
            .as_ref()
            .and_then(|s| s.open.as_ref())
            .filter(|l| l.index == level)
        else {
            return;
        };
        let waiting: Vec<String> = open.pending().map(|b| b.holder().to_string()).collect();
        let role = open
            .groups
            .first()
            .map(|g| g.of.outbox_role(self.def))
            .unwrap_or_default();
        let total = self.state.as_ref().map_or(0, |s| s.levels);
        let id = self.change.instance.id;
        if !waiting.is_empty() {
            self.change.notifications.push(NewNotification {
                role,
                recipients: waiting,
                clock: None,
                threshold: None,
                message: format!(
                    "reminder: {} {id} has awaited your approval for {label} (level {} of {total})",
                    self.def.model().name,
                    level + 1
                ),
                deliver_at: self.req.now,
            });
        }
        self.push(
            EventKind::Reminded { level, step },
            Some(format!("{label} after the level opened")),
        );
    }
}

/// Whether `actor` may vote now, on the approval as it stands (`level`, when given, is the
/// level the voter saw); the approver whose ballot they cast.
pub fn check_vote(
    def: &Definition,
    inst: &Instance,
    state: Option<&ApprovalState>,
    actor: &Actor,
    level: Option<u32>,
) -> Result<Arc<str>, EngineError> {
    let p = def.model();
    let refuse = |refusal| {
        Err(EngineError::ApprovalRefused {
            instance: inst.id,
            refusal,
        })
    };
    let Some(state) = state else {
        return refuse(ApprovalRefusal::NoApproval {
            stage: p.stages[inst.stage.index()].name.clone(),
        });
    };
    let Some(open) = &state.open else {
        return refuse(ApprovalRefusal::NoApproval {
            stage: p.stages[inst.stage.index()].name.clone(),
        });
    };
    if let Some(seen) = level {
        if seen != open.index {
            return refuse(ApprovalRefusal::LevelClosed {
                level: seen + 1,
                open: open.index + 1,
            });
        }
    }
    if let Some(approval) = p.approval_in(inst.stage) {
        if is_excluded(approval, inst, &actor.name) {
            return refuse(ApprovalRefusal::OwnTicket);
        }
    }
    if let Some(b) = open.held_by(&actor.name) {
        return match &b.vote {
            Some(v) => refuse(ApprovalRefusal::AlreadyVoted {
                approve: v.approve,
                at: v.at,
            }),
            None => Ok(b.approver.clone()),
        };
    }
    if let Some(b) = open.ballot(&actor.name) {
        if let Some(d) = &b.delegate {
            return refuse(ApprovalRefusal::Delegated { to: d.to_string() });
        }
    }
    refuse(ApprovalRefusal::NotApprover {
        level: open.index + 1,
        roles: open.groups.iter().map(|g| g.of.describe(def)).collect(),
    })
}

/// Whether `from`'s ballot on the open level may go to `to`. `to` must hold a role of a group
/// `from` votes in (`holders` says who holds the level's roles now) unless `named_by_admin`;
/// segregation of duties applies to `to` as to anyone, and nobody holds two ballots.
pub fn check_delegation(
    def: &Definition,
    inst: &Instance,
    state: Option<&ApprovalState>,
    from: &str,
    to: &str,
    holders: &Holders,
    named_by_admin: bool,
) -> Result<Arc<str>, EngineError> {
    let p = def.model();
    let refuse = |refusal| {
        Err(EngineError::ApprovalRefused {
            instance: inst.id,
            refusal,
        })
    };
    let Some(open) = state.and_then(|s| s.open.as_ref()) else {
        return refuse(ApprovalRefusal::NoApproval {
            stage: p.stages[inst.stage.index()].name.clone(),
        });
    };
    let Some(ballot) = open.ballot(from) else {
        return refuse(ApprovalRefusal::NotApprover {
            level: open.index + 1,
            roles: open.groups.iter().map(|g| g.of.describe(def)).collect(),
        });
    };
    if let Some(v) = &ballot.vote {
        return refuse(ApprovalRefusal::AlreadyVoted {
            approve: v.approve,
            at: v.at,
        });
    }
    if let Some(d) = &ballot.delegate {
        return refuse(ApprovalRefusal::Delegated { to: d.to_string() });
    }
    if from == to {
        return refuse(ApprovalRefusal::BadDelegate {
            why: "a vote cannot be delegated to the approver themselves".into(),
        });
    }
    if let Some(approval) = p.approval_in(inst.stage) {
        if is_excluded(approval, inst, to) {
            return refuse(ApprovalRefusal::BadDelegate {
                why: format!(
                    "`{to}` may not vote on this ticket (segregation of duties: they raised it or are named in it)"
                ),
            });
        }
    }
    if open.held_by(to).is_some() || open.ballot(to).is_some() {
        return refuse(ApprovalRefusal::BadDelegate {
            why: format!("`{to}` already has a vote on this level"),
        });
    }
    let roles: Vec<RoleId> = open
        .groups
        .iter()
        .filter(|g| g.approvers.iter().any(|a| &**a == from))
        .filter_map(|g| match g.of {
            GroupOf::Role(r) => Some(r),
            GroupOf::Person(_) => None,
        })
        .collect();
    if !named_by_admin && !roles.iter().any(|r| holders.holds(to, *r)) {
        let names: Vec<String> = roles
            .iter()
            .map(|r| format!("`{}`", def.project.role(*r).name))
            .collect();
        let why = if names.is_empty() {
            format!("`{to}` was not named by an administrator, who alone may hand on a vote the ticket gives a person")
        } else {
            format!(
                "`{to}` does not hold role {}; an administrator may name someone who does not",
                names.join(" or ")
            )
        };
        return refuse(ApprovalRefusal::BadDelegate { why });
    }
    Ok(ballot.approver.clone())
}
