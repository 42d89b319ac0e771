//! Instances and events as users see them: names, JSON field values, the actions possible now.
//!
//! An [`InstanceView`] holds the state and its definition and renders names and JSON only when
//! asked (or serialized), so engine calls that nobody inspects cost no formatting.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};
use serde_json::{Map, Value as Json};

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
    pub from: InstanceId,
    pub to: InstanceId,
    pub kind: String,
    pub created_at: DateTime<Utc>,
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

pub fn link(l: &Link) -> LinkView {
    LinkView {
        from: l.from,
        to: l.to,
        kind: l.kind.clone(),
        created_at: l.created_at,
    }
}
