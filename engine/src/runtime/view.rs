//! Instances and events as users see them: names, JSON field values, the actions possible now.
//!
//! An [`InstanceView`] holds the state and its definition and renders names and JSON only when
//! asked (or serialized), so engine calls that nobody inspects cost no formatting.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};
use serde_json::{Map, Value as Json};

use super::approval::{self, ApprovalState, Level};
use super::catalog::Definition;
use super::codec;
use super::types::*;

#[derive(Clone, Debug)]
pub struct InstanceView {
    def: Arc<Definition>,
    state: Arc<Instance>,
    task: Option<Task>,
    /// After an action: the open task as it was before it (not serialized).
    previous_task: Option<Task>,
}

impl PartialEq for InstanceView {
    fn eq(&self, other: &Self) -> bool {
        self.def.id == other.def.id && self.state == other.state && self.task == other.task
    }
}

impl InstanceView {
    pub fn new(def: Arc<Definition>, state: Arc<Instance>, task: Option<Task>) -> Self {
        InstanceView::changed(def, state, task, None)
    }

    /// The view of an instance just changed, with its open task as it was before (built whole:
    /// every action returns one, and setting the previous task on a built view moved the view
    /// in and out again).
    pub fn changed(
        def: Arc<Definition>,
        state: Arc<Instance>,
        task: Option<Task>,
        previous_task: Option<Task>,
    ) -> Self {
        InstanceView {
            def,
            state,
            task,
            previous_task,
        }
    }

    /// After an action, the instance's open task as it was before (so callers can tell who
    /// watches queues what moved without reading it again).
    pub fn previous_task(&self) -> Option<&Task> {
        self.previous_task.as_ref()
    }
    pub fn id(&self) -> InstanceId {
        self.state.id
    }
    pub fn process(&self) -> &str {
        &self.def.process
    }
    /// The definition version the instance is pinned to.
    pub fn definition_version(&self) -> u32 {
        self.def.version
    }
    pub fn stage(&self) -> &str {
        codec::stage_name(&self.def, self.state.stage)
    }
    pub fn priority(&self) -> Option<&str> {
        codec::priority_name(&self.def, self.state.priority)
    }
    pub fn queue(&self) -> Option<&str> {
        codec::queue_name(&self.def, self.state.queue)
    }
    pub fn fields(&self) -> Map<String, Json> {
        codec::fields_to_json(self.def.model(), &self.state.fields)
    }
    pub fn field(&self, name: &str) -> Option<Json> {
        let p = self.def.model();
        let id = p.field(name)?;
        let v = self.state.fields.get(id.index())?.as_ref()?;
        Some(super::values::to_json(&p.fields[id.index()], v))
    }
    /// The optimistic concurrency token: the `seq` of the last history event.
    pub fn version(&self) -> i64 {
        self.state.version
    }
    pub fn created_at(&self) -> DateTime<Utc> {
        self.state.created_at
    }
    pub fn updated_at(&self) -> DateTime<Utc> {
        self.state.updated_at
    }
    /// Who created the instance (for a spawned one, who performed the transition that did).
    pub fn created_by(&self) -> &str {
        &self.state.created_by
    }
    /// Actions possible in the current stage.
    pub fn actions(&self) -> Vec<&str> {
        let p = self.def.model();
        p.transitions
            .iter()
            .filter(|t| t.from.contains(&self.state.stage))
            .map(|t| t.name.as_str())
            .collect()
    }
    /// Actions possible in the current stage that `actor` may be offered: those open to anyone,
    /// those of a role the actor holds, and those given to people the ticket names (whether the
    /// actor is one of them may take the directory to tell, so performing decides). A list for
    /// showing choices; performing an action checks again, in full.
    pub fn actions_for(&self, actor: &Actor) -> Vec<&str> {
        let p = self.def.model();
        p.transitions
            .iter()
            .filter(|t| t.from.contains(&self.state.stage))
            .filter(|t| {
                (t.roles.is_empty() && t.people.is_empty())
                    || !t.people.is_empty()
                    || t.roles
                        .iter()
                        .any(|r| actor.has_role(&self.def.project.role(*r).name))
            })
            .map(|t| t.name.as_str())
            .collect()
    }
    /// The definition version the instance runs on (its fields, stages and actions).
    pub fn definition(&self) -> &Arc<Definition> {
        &self.def
    }
    /// The instance's task that is not done, if any.
    pub fn task(&self) -> Option<&Task> {
        self.task.as_ref()
    }
    pub fn state(&self) -> &Instance {
        &self.state
    }
}

impl Serialize for InstanceView {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Instance", 13)?;
        s.serialize_field("id", &self.id())?;
        s.serialize_field("process", self.process())?;
        s.serialize_field("definition_version", &self.definition_version())?;
        s.serialize_field("stage", self.stage())?;
        s.serialize_field("fields", &self.fields())?;
        s.serialize_field("priority", &self.priority())?;
        s.serialize_field("queue", &self.queue())?;
        s.serialize_field("version", &self.version())?;
        s.serialize_field("created_at", &self.created_at())?;
        s.serialize_field("updated_at", &self.updated_at())?;
        s.serialize_field("created_by", self.created_by())?;
        s.serialize_field("actions", &self.actions())?;
        s.serialize_field("task", &self.task)?;
        s.end()
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EventView {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub actor: Arc<str>,
    pub kind: &'static str,
    pub data: Json,
    pub reason: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LinkView {
    /// The link as stored: `from` `kind` `to` (kinds are stored from the process that declares
    /// them).
    pub from: InstanceId,
    pub to: InstanceId,
    pub kind: String,
    pub created_at: DateTime<Utc>,
    /// The ticket at the other end, seen from the ticket whose links these are.
    pub other: InstanceId,
    /// The name that ticket's process gives the link (`incidents` for a problem's view of an
    /// incident's `caused_by`), when it declares one.
    pub name: Option<String>,
}

pub fn event(def: &Definition, e: &Event) -> EventView {
    let (kind, data) = codec::event_to_json(def, &e.kind);
    EventView {
        seq: e.seq,
        at: e.at,
        actor: e.actor.clone(),
        kind,
        data,
        reason: e.reason.clone(),
    }
}

/// A link of instance `me` (of `def`), seen from it.
pub fn link(def: &Definition, me: InstanceId, l: &Link) -> LinkView {
    let p = def.model();
    let name = p
        .links
        .iter()
        .find(|d| super::relations::other_end(d, me, l).is_some())
        .map(|d| d.name.clone())
        .or_else(|| (l.from == me).then(|| l.kind.clone()));
    LinkView {
        from: l.from,
        to: l.to,
        kind: l.kind.clone(),
        created_at: l.created_at,
        other: if l.from == me { l.to } else { l.from },
        name,
    }
}

impl InstanceView {
    /// Whether the instance names `user`: its creator, or the user in one of its `person`
    /// fields (the caller, the requester) or among the people of a `list(person)` one.
    pub fn names(&self, user: &str) -> bool {
        if self.created_by() == user {
            return true;
        }
        let p = self.def.model();
        p.fields.iter().zip(self.state.fields.iter()).any(|(f, v)| {
            f.ty.holds_people()
                && v.as_ref()
                    .is_some_and(|v| v.people().iter().any(|name| &**name == user))
        })
    }

    /// Whether the instance is in a stage that asks for approval.
    pub fn awaits_approval(&self) -> bool {
        self.def.model().approval_in(self.state.stage).is_some()
    }
}

/// The approval of an instance's stage as people see it: the plan and the rule that chose
/// it, each level of the plan (passed, open or to come) with its groups and ballots, who is
/// still to vote, and when it expires.
#[derive(Clone, Debug)]
pub struct ApprovalView {
    def: Arc<Definition>,
    state: ApprovalState,
    expires_at: Option<DateTime<Utc>>,
}

impl ApprovalView {
    pub fn new(
        def: Arc<Definition>,
        state: ApprovalState,
        expires_at: Option<DateTime<Utc>>,
    ) -> Self {
        ApprovalView {
            def,
            state,
            expires_at,
        }
    }

    pub fn state(&self) -> &ApprovalState {
        &self.state
    }

    /// The definition version the approval's instance runs on (its roles and plans).
    pub fn definition(&self) -> &Arc<Definition> {
        &self.def
    }

    /// When `on expire` is taken, if the approval has one.
    pub fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.expires_at
    }

    /// The open level (0 for the first), if one is open.
    pub fn open_level(&self) -> Option<u32> {
        self.state.open.as_ref().map(|l| l.index)
    }

    /// Who is still to vote on the open level.
    pub fn waiting_for(&self) -> Vec<&str> {
        self.state
            .open
            .iter()
            .flat_map(|l| l.pending())
            .map(|b| &**b.holder())
            .collect()
    }

    /// Why this plan applies: the rule that matched, as written.
    pub fn explain(&self) -> String {
        let p = self.def.model();
        let Some(approval) = p.approval_in(self.state.stage) else {
            return String::new();
        };
        match self
            .state
            .rule
            .and_then(|r| approval.rules.get(r as usize).map(|x| (r, x)))
        {
            Some((r, rule)) => format!(
                "rule {} of {} is the first that matches the ticket: {}",
                r + 1,
                approval.rules.len(),
                rule.text
            ),
            None => "no plan chosen yet".to_string(),
        }
    }

    fn level_json(&self, level: &Level, state: &str) -> Json {
        let roles = |g: &LevelGroup| match &g.of {
            GroupOf::Role(r) => Some(self.def.project.role(*r).name.clone()),
            GroupOf::Person(_) => None,
        };
        let person = |g: &LevelGroup| match &g.of {
            GroupOf::Person(p) => Some(p.to_string()),
            GroupOf::Role(_) => None,
        };
        let groups: Vec<Json> = level
            .groups
            .iter()
            .enumerate()
            .map(|(i, g)| {
                let (yes, no) = level.tally(i);
                serde_json::json!({
                    "role": roles(g),
                    "person": person(g),
                    "needed": g.needed,
                    "holders": g.holders,
                    "approvals": yes,
                    "rejections": no,
                    "approvers": g.approvers.iter().map(|a| &**a).collect::<Vec<_>>(),
                })
            })
            .collect();
        let ballots: Vec<Json> = level
            .ballots
            .iter()
            .map(|b| {
                serde_json::json!({
                    "approver": &*b.approver,
                    "delegate": b.delegate.as_deref(),
                    "vote": b.vote.as_ref().map(|v| if v.approve { "approve" } else { "reject" }),
                    "voted_by": b.vote.as_ref().map(|v| &*v.by),
                    "voted_at": b.vote.as_ref().map(|v| v.at),
                    "comment": b.vote.as_ref().and_then(|v| v.comment.as_deref()),
                })
            })
            .collect();
        serde_json::json!({
            "level": level.index + 1,
            "state": state,
            "opened_at": level.opened_at,
            "groups": groups,
            "excluded": level.excluded.iter().map(|a| &**a).collect::<Vec<_>>(),
            "ballots": ballots,
            "cannot_proceed": level.stuck,
        })
    }
}

impl Serialize for ApprovalView {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let p = self.def.model();
        let approval = p.approval_in(self.state.stage);
        let rule = self
            .state
            .rule
            .and_then(|r| approval.and_then(|a| a.rules.get(r as usize)));
        let mut levels: Vec<Json> = self
            .state
            .passed
            .iter()
            .map(|l| self.level_json(l, "approved"))
            .collect();
        if let Some(open) = &self.state.open {
            let state = if open.stuck.is_some() {
                "cannot_proceed"
            } else {
                "open"
            };
            levels.push(self.level_json(open, state));
        }
        if let Some(rule) = rule {
            for (i, l) in rule.levels.iter().enumerate().skip(levels.len()) {
                levels.push(serde_json::json!({
                    "level": i + 1,
                    "state": "to_come",
                    "requires": approval::describe_level(&self.def, &l.groups),
                }));
            }
        }
        let mut s = serializer.serialize_struct("Approval", 8)?;
        s.serialize_field("stage", codec::stage_name(&self.def, self.state.stage))?;
        s.serialize_field("rule", &self.state.rule.map(|r| r + 1))?;
        s.serialize_field("plan", &rule.map(|r| r.text.as_str()))?;
        s.serialize_field("explain", &self.explain())?;
        s.serialize_field("open_level", &self.open_level().map(|l| l + 1))?;
        s.serialize_field("waiting_for", &self.waiting_for())?;
        s.serialize_field("levels", &levels)?;
        s.serialize_field("expires_at", &self.expires_at)?;
        s.end()
    }
}
