//! Instances and events in their external form: names instead of indices, JSON field values.
//! This is the form the databases store (so the history can be queried for reports without
//! the engine) and the form the API shows.

use serde_json::{json, Map, Value as Json};

use super::definition::{DefinitionId, ProcessVersion};
use super::types::*;
use super::values;
use crate::model::{
    ClockKind, FieldId, OutcomeKind, PriorityId, Process, QueueId, RoleId, StageId, Value,
};

fn corrupt(what: impl Into<String>) -> String {
    what.into()
}

pub fn stage_name(def: &ProcessVersion, s: StageId) -> &str {
    def.model()
        .stages
        .get(s.index())
        .map(|s| s.name.as_str())
        .unwrap_or("")
}

pub fn priority_name(def: &ProcessVersion, p: Option<PriorityId>) -> Option<&str> {
    p.and_then(|p| def.model().priorities.get(p.index()).map(String::as_str))
}

pub fn queue_name(def: &ProcessVersion, q: Option<QueueId>) -> Option<&str> {
    q.and_then(|q| def.project.queues.get(q.index()).map(|q| q.name.as_str()))
}

pub fn stage_id(def: &ProcessVersion, name: &str) -> Result<StageId, String> {
    def.model()
        .stage(name)
        .ok_or_else(|| corrupt(format!("unknown stage `{name}`")))
}

pub fn priority_id(def: &ProcessVersion, name: Option<&str>) -> Result<Option<PriorityId>, String> {
    match name {
        None => Ok(None),
        Some(n) => def
            .model()
            .priorities
            .iter()
            .position(|p| p == n)
            .map(|i| Some(PriorityId(i as u32)))
            .ok_or_else(|| corrupt(format!("unknown priority `{n}`"))),
    }
}

pub fn queue_id(def: &ProcessVersion, name: Option<&str>) -> Result<Option<QueueId>, String> {
    match name {
        None => Ok(None),
        Some(n) => def
            .project
            .queues
            .iter()
            .position(|q| q.name == n)
            .map(|i| Some(QueueId(i as u32)))
            .ok_or_else(|| corrupt(format!("unknown queue `{n}`"))),
    }
}

/// Set fields as a JSON object by name (unset fields are left out).
pub fn fields_to_json(p: &Process, fields: &[Option<Value>]) -> Map<String, Json> {
    let mut map = Map::new();
    for (f, v) in p.fields.iter().zip(fields) {
        if let Some(v) = v {
            map.insert(f.name.clone(), values::to_json(f, v));
        }
    }
    map
}

pub fn fields_from_json(p: &Process, json: &Json) -> Result<Vec<Option<Value>>, String> {
    let mut fields = vec![None; p.fields.len()];
    let Some(map) = json.as_object() else {
        return Err(corrupt("fields are not an object"));
    };
    for (name, v) in map {
        let id = p
            .field(name)
            .ok_or_else(|| corrupt(format!("unknown field `{name}`")))?;
        fields[id.index()] = values::from_json(&p.fields[id.index()], v).map_err(|e| e.message)?;
    }
    Ok(fields)
}

fn field_value(p: &Process, f: FieldId, v: &Option<Value>) -> Json {
    match (p.fields.get(f.index()), v) {
        (Some(field), Some(v)) => values::to_json(field, v),
        _ => Json::Null,
    }
}

/// An event's kind name and data.
pub fn event_to_json(def: &ProcessVersion, kind: &EventKind) -> (&'static str, Json) {
    let p = def.model();
    match kind {
        EventKind::Created {
            stage,
            fields,
            priority,
            queue,
            spawned_by,
        } => (
            "created",
            json!({
                "stage": stage_name(def, *stage),
                "fields": fields_to_json(p, fields),
                "priority": priority_name(def, *priority),
                "queue": queue_name(def, *queue),
                "spawned_by": spawned_by.as_ref().map(|(i, l)| json!({"instance": i.0, "link": l})),
            }),
        ),
        EventKind::Transitioned { action, from, to } => (
            "transitioned",
            json!({
                "action": p.transitions.get(action.index()).map(|t| t.name.as_str()),
                "from": stage_name(def, *from),
                "to": stage_name(def, *to),
            }),
        ),
        EventKind::FieldsChanged { changes } => (
            "fields_changed",
            json!({
                "changes": changes.iter().map(|c| json!({
                    "field": p.fields.get(c.field.index()).map(|f| f.name.as_str()),
                    "old": field_value(p, c.field, &c.old),
                    "new": field_value(p, c.field, &c.new),
                })).collect::<Vec<_>>(),
            }),
        ),
        EventKind::PriorityChanged { from, to, cause } => (
            "priority_changed",
            json!({"from": priority_name(def, *from), "to": priority_name(def, *to), "cause": cause}),
        ),
        EventKind::Routed { from, to, cause } => (
            "routed",
            json!({"from": queue_name(def, *from), "to": queue_name(def, *to), "cause": cause}),
        ),
        EventKind::Commented { text } => ("commented", json!({ "text": text })),
        EventKind::Linked { kind, other } => ("linked", json!({"kind": kind, "other": other.0})),
        EventKind::Recurred { index, period } => {
            ("recurred", json!({"index": index, "period": period}))
        }
        EventKind::Checked { stage, item, done } => (
            "checked",
            json!({
                "stage": stage_name(def, *stage),
                "item": p.stages.get(stage.index())
                    .and_then(|s| s.checklist.get(*item as usize))
                    .map(|i| i.name.as_str()),
                "done": done,
            }),
        ),
        EventKind::ActedOn {
            link,
            other,
            action,
        } => (
            "acted_on",
            json!({"link": link, "other": other.0, "action": action}),
        ),
        EventKind::Spawned { process, link } => {
            ("spawned", json!({"process": process, "link": link}))
        }
        EventKind::Escalated {
            clock,
            step,
            threshold,
        } => (
            "escalated",
            json!({"clock": clock.as_str(), "step": step, "threshold": threshold}),
        ),
        EventKind::Breached { clock } => ("breached", json!({"clock": clock.as_str()})),
        EventKind::OlaBreached { queue } => (
            "ola_breached",
            json!({"queue": def.project.queues.get(queue.index()).map(|q| q.name.as_str())}),
        ),
        EventKind::Elapsed { transition } => (
            "elapsed",
            json!({"transition": p.transitions.get(transition.index()).map(|t| t.name.as_str())}),
        ),
        EventKind::Notified {
            role,
            people,
            deliver_at,
        } => (
            "notified",
            match role {
                // Rows written before people could be notified have no `people`.
                Some(r) => json!({"role": role_name(def, *r), "deliver_at": deliver_at}),
                None => json!({
                    "role": null,
                    "people": people.iter().map(|p| &**p).collect::<Vec<_>>(),
                    "deliver_at": deliver_at,
                }),
            },
        ),
        EventKind::Skipped { action, reason } => {
            ("skipped", json!({"action": action, "reason": reason}))
        }
        EventKind::ApprovalRequested { rule, levels } => (
            "approval_requested",
            json!({"rule": rule, "levels": levels}),
        ),
        EventKind::LevelOpened {
            level,
            groups,
            excluded,
        } => (
            "level_opened",
            json!({
                "level": level,
                "groups": groups.iter().map(|g| json!({
                    "role": match &g.of { GroupOf::Role(r) => Some(role_name(def, *r)), GroupOf::Person(_) => None },
                    "person": match &g.of { GroupOf::Person(p) => Some(&**p), GroupOf::Role(_) => None },
                    "needed": g.needed,
                    "holders": g.holders,
                    "approvers": g.approvers.iter().map(|a| &**a).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
                "excluded": excluded.iter().map(|a| &**a).collect::<Vec<_>>(),
            }),
        ),
        EventKind::ApprovalStuck { level, reason } => {
            ("approval_stuck", json!({"level": level, "reason": reason}))
        }
        EventKind::Voted {
            level,
            approver,
            approve,
            comment,
        } => (
            "voted",
            json!({
                "level": level,
                "approver": &**approver,
                "decision": if *approve { "approve" } else { "reject" },
                "comment": comment,
            }),
        ),
        EventKind::Delegated { level, from, to } => (
            "delegated",
            json!({"level": level, "from": &**from, "to": &**to}),
        ),
        EventKind::Reminded { level, step } => ("reminded", json!({"level": level, "step": step})),
        EventKind::ApprovalDecided { outcome, from, to } => (
            "approval_decided",
            json!({
                "outcome": outcome.as_str(),
                "from": stage_name(def, *from),
                "to": stage_name(def, *to),
            }),
        ),
        EventKind::Migrated(m) => ("migrated", migration_to_json(def, m)),
    }
}

fn migration_to_json(def: &ProcessVersion, m: &Migration) -> Json {
    let clocks: Vec<Json> = m
        .clocks
        .iter()
        .map(|c| {
            json!({
                "clock": c.clock.as_str(),
                "mode": c.mode.as_str(),
                "started_at": c.started_at,
                "stopped_at": c.stopped_at,
                "elapsed_seconds": c.elapsed,
                "running": c.running.iter().map(|(a, b)| json!([a, b])).collect::<Vec<_>>(),
                "fired": c.fired,
                "breached": c.breached,
            })
        })
        .collect();
    json!({
        "from_definition": m.from.0,
        "from_version": m.from_version,
        "from_stage": &*m.from_stage,
        "stage": stage_name(def, m.stage),
        "fields": fields_to_json(def.model(), &m.fields),
        "priority": priority_name(def, m.priority),
        "queue": queue_name(def, m.queue),
        "entered_at": m.entered_at,
        "clocks": clocks,
    })
}

fn instant_of(data: &Json, key: &str) -> Result<Option<chrono::DateTime<chrono::Utc>>, String> {
    match data.get(key) {
        Some(d) if !d.is_null() => serde_json::from_value(d.clone())
            .map(Some)
            .map_err(|e| format!("bad `{key}`: {e}")),
        _ => Ok(None),
    }
}

/// The version a `migrated` event's data says the ticket left.
pub fn migrated_from(data: &Json) -> Result<DefinitionId, String> {
    data.get("from_definition")
        .and_then(Json::as_i64)
        .map(DefinitionId)
        .ok_or_else(|| corrupt("a migration without the version it left"))
}

fn migration_from_json(def: &ProcessVersion, data: &Json) -> Result<Migration, String> {
    let mut clocks = Vec::new();
    for c in data
        .get("clocks")
        .and_then(Json::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let mut running = Vec::new();
        for pair in c
            .get("running")
            .and_then(Json::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            let end = |i: usize| {
                pair.get(i)
                    .and_then(|v| serde_json::from_value(v.clone()).ok())
                    .ok_or_else(|| corrupt("a running interval without its ends"))
            };
            running.push((end(0)?, end(1)?));
        }
        clocks.push(CarriedClock {
            clock: clock_of(c)?,
            mode: ClockMode::parse(str_of(c, "mode")?)
                .ok_or_else(|| corrupt("unknown clock mode"))?,
            started_at: instant_of(c, "started_at")?
                .ok_or_else(|| corrupt("a carried clock without its start"))?,
            stopped_at: instant_of(c, "stopped_at")?,
            elapsed: c.get("elapsed_seconds").and_then(Json::as_i64).unwrap_or(0),
            running,
            fired: c
                .get("fired")
                .and_then(Json::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Json::as_str)
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default(),
            breached: c.get("breached").and_then(Json::as_bool).unwrap_or(false),
        });
    }
    Ok(Migration {
        from: migrated_from(data)?,
        from_version: u32_of(data, "from_version")?,
        from_stage: str_of(data, "from_stage")?.into(),
        stage: stage_id(def, str_of(data, "stage")?)?,
        fields: fields_from_json(def.model(), data.get("fields").unwrap_or(&Json::Null))?,
        priority: priority_id(def, opt_str(data, "priority"))?,
        queue: queue_id(def, opt_str(data, "queue"))?,
        entered_at: instant_of(data, "entered_at")?
            .ok_or_else(|| corrupt("a migration without its stage's entry"))?,
        clocks,
    })
}

fn u32_of(data: &Json, key: &str) -> Result<u32, String> {
    data.get(key)
        .and_then(Json::as_u64)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| corrupt(format!("event data has no number `{key}`")))
}

fn names_of(data: &Json, key: &str) -> Result<Vec<std::sync::Arc<str>>, String> {
    data.get(key)
        .and_then(Json::as_array)
        .ok_or_else(|| corrupt(format!("event data has no list `{key}`")))?
        .iter()
        .map(|n| {
            n.as_str()
                .map(std::sync::Arc::from)
                .ok_or_else(|| corrupt(format!("`{key}` holds something other than names")))
        })
        .collect()
}

pub fn role_name(def: &ProcessVersion, r: RoleId) -> &str {
    def.project
        .roles
        .get(r.index())
        .map(|r| r.name.as_str())
        .unwrap_or("")
}

fn role_id(def: &ProcessVersion, name: &str) -> Result<RoleId, String> {
    def.project
        .roles
        .iter()
        .position(|r| r.name == name)
        .map(|i| RoleId(i as u32))
        .ok_or_else(|| corrupt(format!("unknown role `{name}`")))
}

fn clock_of(data: &Json) -> Result<ClockKind, String> {
    match str_of(data, "clock")? {
        "respond" => Ok(ClockKind::Respond),
        "resolve" => Ok(ClockKind::Resolve),
        other => Err(corrupt(format!("unknown clock `{other}`"))),
    }
}

fn str_of<'a>(data: &'a Json, key: &str) -> Result<&'a str, String> {
    data.get(key)
        .and_then(Json::as_str)
        .ok_or_else(|| corrupt(format!("event data has no `{key}`")))
}

fn opt_str<'a>(data: &'a Json, key: &str) -> Option<&'a str> {
    data.get(key).and_then(Json::as_str)
}

fn cause_of(data: &Json) -> Result<Cause, String> {
    serde_json::from_value(data.get("cause").cloned().unwrap_or(Json::Null))
        .map_err(|e| e.to_string())
}

pub fn event_from_json(def: &ProcessVersion, kind: &str, data: &Json) -> Result<EventKind, String> {
    let p = def.model();
    Ok(match kind {
        "created" => EventKind::Created {
            stage: stage_id(def, str_of(data, "stage")?)?,
            fields: fields_from_json(p, data.get("fields").unwrap_or(&Json::Null))?,
            priority: priority_id(def, opt_str(data, "priority"))?,
            queue: queue_id(def, opt_str(data, "queue"))?,
            spawned_by: match data.get("spawned_by") {
                Some(s) if !s.is_null() => Some((
                    InstanceId(
                        s.get("instance")
                            .and_then(Json::as_i64)
                            .ok_or("bad spawned_by")?,
                    ),
                    str_of(s, "link")?.to_string(),
                )),
                _ => None,
            },
        },
        "transitioned" => {
            let action = str_of(data, "action")?;
            EventKind::Transitioned {
                action: p
                    .transition(action)
                    .ok_or_else(|| corrupt(format!("unknown action `{action}`")))?,
                from: stage_id(def, str_of(data, "from")?)?,
                to: stage_id(def, str_of(data, "to")?)?,
            }
        }
        "fields_changed" => {
            let mut changes = Vec::new();
            for c in data
                .get("changes")
                .and_then(Json::as_array)
                .ok_or("no changes")?
            {
                let name = str_of(c, "field")?;
                let id = p
                    .field(name)
                    .ok_or_else(|| corrupt(format!("unknown field `{name}`")))?;
                let field = &p.fields[id.index()];
                let decode = |key: &str| -> Result<Option<Value>, String> {
                    values::from_json(field, c.get(key).unwrap_or(&Json::Null))
                        .map_err(|e| e.message)
                };
                changes.push(FieldChange {
                    field: id,
                    old: decode("old")?,
                    new: decode("new")?,
                });
            }
            EventKind::FieldsChanged { changes }
        }
        "priority_changed" => EventKind::PriorityChanged {
            from: priority_id(def, opt_str(data, "from"))?,
            to: priority_id(def, opt_str(data, "to"))?,
            cause: cause_of(data)?,
        },
        "routed" => EventKind::Routed {
            from: queue_id(def, opt_str(data, "from"))?,
            to: queue_id(def, opt_str(data, "to"))?,
            cause: cause_of(data)?,
        },
        "commented" => EventKind::Commented {
            text: str_of(data, "text")?.to_string(),
        },
        "linked" => EventKind::Linked {
            kind: str_of(data, "kind")?.to_string(),
            other: InstanceId(data.get("other").and_then(Json::as_i64).ok_or("bad link")?),
        },
        "checked" => {
            let stage = stage_id(def, str_of(data, "stage")?)?;
            let name = str_of(data, "item")?;
            let item = def
                .model()
                .stages
                .get(stage.index())
                .and_then(|s| s.checklist.iter().position(|i| i.name == name))
                .ok_or("unknown checklist item")?;
            EventKind::Checked {
                stage,
                item: item as u32,
                done: data.get("done").and_then(Json::as_bool).ok_or("bad done")?,
            }
        }
        "recurred" => EventKind::Recurred {
            index: u32_of(data, "index")?,
            period: u32_of(data, "period")?,
        },
        "acted_on" => EventKind::ActedOn {
            link: str_of(data, "link")?.to_string(),
            other: InstanceId(data.get("other").and_then(Json::as_i64).ok_or("bad link")?),
            action: str_of(data, "action")?.to_string(),
        },
        "spawned" => EventKind::Spawned {
            process: str_of(data, "process")?.to_string(),
            link: str_of(data, "link")?.to_string(),
        },
        "escalated" => EventKind::Escalated {
            clock: clock_of(data)?,
            step: data
                .get("step")
                .and_then(Json::as_u64)
                .and_then(|s| u32::try_from(s).ok())
                .ok_or("bad escalation step")?,
            threshold: str_of(data, "threshold")?.to_string(),
        },
        "breached" => EventKind::Breached {
            clock: clock_of(data)?,
        },
        "ola_breached" => {
            let name = str_of(data, "queue")?;
            let queue = def
                .project
                .queues
                .iter()
                .position(|q| q.name == name)
                .ok_or_else(|| corrupt(format!("unknown queue `{name}`")))?;
            EventKind::OlaBreached {
                queue: crate::model::QueueId(queue as u32),
            }
        }
        "elapsed" => {
            let name = str_of(data, "transition")?;
            EventKind::Elapsed {
                transition: p
                    .transition(name)
                    .ok_or_else(|| corrupt(format!("unknown action `{name}`")))?,
            }
        }
        "notified" => EventKind::Notified {
            role: match opt_str(data, "role") {
                Some(r) => Some(role_id(def, r)?),
                None => None,
            },
            people: match data.get("people") {
                Some(p) if !p.is_null() => names_of(data, "people")?,
                _ => Vec::new(),
            },
            deliver_at: match data.get("deliver_at") {
                Some(d) if !d.is_null() => {
                    Some(serde_json::from_value(d.clone()).map_err(|e| e.to_string())?)
                }
                _ => None,
            },
        },
        "skipped" => EventKind::Skipped {
            action: str_of(data, "action")?.to_string(),
            reason: str_of(data, "reason")?.to_string(),
        },
        "approval_requested" => EventKind::ApprovalRequested {
            rule: u32_of(data, "rule")?,
            levels: u32_of(data, "levels")?,
        },
        "level_opened" => {
            let mut groups = Vec::new();
            for g in data
                .get("groups")
                .and_then(Json::as_array)
                .ok_or("level without groups")?
            {
                let of = match (opt_str(g, "role"), opt_str(g, "person")) {
                    (Some(role), _) => GroupOf::Role(role_id(def, role)?),
                    (None, Some(person)) => GroupOf::Person(person.into()),
                    (None, None) => return Err(corrupt("a group names neither role nor person")),
                };
                groups.push(LevelGroup {
                    of,
                    needed: u32_of(g, "needed")?,
                    holders: u32_of(g, "holders")?,
                    approvers: names_of(g, "approvers")?,
                });
            }
            EventKind::LevelOpened {
                level: u32_of(data, "level")?,
                groups,
                excluded: names_of(data, "excluded")?,
            }
        }
        "approval_stuck" => EventKind::ApprovalStuck {
            level: u32_of(data, "level")?,
            reason: str_of(data, "reason")?.to_string(),
        },
        "voted" => EventKind::Voted {
            level: u32_of(data, "level")?,
            approver: str_of(data, "approver")?.into(),
            approve: match str_of(data, "decision")? {
                "approve" => true,
                "reject" => false,
                other => return Err(corrupt(format!("unknown decision `{other}`"))),
            },
            comment: opt_str(data, "comment").map(str::to_string),
        },
        "delegated" => EventKind::Delegated {
            level: u32_of(data, "level")?,
            from: str_of(data, "from")?.into(),
            to: str_of(data, "to")?.into(),
        },
        "reminded" => EventKind::Reminded {
            level: u32_of(data, "level")?,
            step: u32_of(data, "step")?,
        },
        "approval_decided" => EventKind::ApprovalDecided {
            outcome: match str_of(data, "outcome")? {
                "approve" => OutcomeKind::Approve,
                "reject" => OutcomeKind::Reject,
                "expire" => OutcomeKind::Expire,
                other => return Err(corrupt(format!("unknown outcome `{other}`"))),
            },
            from: stage_id(def, str_of(data, "from")?)?,
            to: stage_id(def, str_of(data, "to")?)?,
        },
        "migrated" => EventKind::Migrated(Box::new(migration_from_json(def, data)?)),
        other => return Err(corrupt(format!("unknown event kind `{other}`"))),
    })
}
