//! Instances and events as users see them: names, JSON field values, the actions possible now.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value as Json};

use super::catalog::Definition;
use super::codec;
use super::logic::actions_in;
use super::types::*;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct InstanceView {
    pub id: InstanceId,
    pub process: String,
    /// The definition version the instance is pinned to.
    pub definition_version: u32,
    pub stage: String,
    pub fields: Map<String, Json>,
    pub priority: Option<String>,
    pub queue: Option<String>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Actions possible in the current stage.
    pub actions: Vec<String>,
    pub task: Option<Task>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EventView {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
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

pub fn instance(def: &Definition, i: &Instance, task: Option<&Task>) -> InstanceView {
    InstanceView {
        id: i.id,
        process: def.process.clone(),
        definition_version: def.version,
        stage: codec::stage_name(def, i.stage).to_string(),
        fields: codec::fields_to_json(def.model(), &i.fields),
        priority: codec::priority_name(def, i.priority).map(str::to_string),
        queue: codec::queue_name(def, i.queue).map(str::to_string),
        version: i.version,
        created_at: i.created_at,
        updated_at: i.updated_at,
        actions: actions_in(def.model(), i.stage),
        task: task.cloned(),
    }
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
