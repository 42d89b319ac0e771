//! What the SQL stores share: rows in their stored form (names and JSON, from
//! [`crate::record::codec`]), and what a task row's columns mean.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value as Json;

use super::{InstanceFilter, Result, StoreError};
use crate::record::codec;
use crate::record::types::*;
use crate::record::{DefinitionId, Definitions, ProcessVersion};

/// Stored in place of "no priority" / "no due time", so that they sort last.
pub const NO_PRIORITY: i32 = i32::MAX;
pub const NO_DUE: i64 = i64::MAX;

pub fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// A stored instant. One out of range was not written by this engine: the database is
/// damaged, and saying so beats reading it as 1970 (a task due then would sort first forever).
pub fn from_micros(us: i64) -> Result<DateTime<Utc>> {
    instant(us).map_err(StoreError::Corrupt)
}

/// [`from_micros`], with the reason as text (for row readers that report their own errors).
pub fn instant(us: i64) -> std::result::Result<DateTime<Utc>, String> {
    DateTime::from_timestamp_micros(us)
        .ok_or_else(|| format!("a stored instant ({us} microseconds since 1970) is out of range"))
}

/// The published version an instance row names. Rows are written only for published versions,
/// so one that is not there is damage.
pub fn definition(catalog: &dyn Definitions, id: DefinitionId) -> Result<Arc<ProcessVersion>> {
    catalog
        .published(id)
        .ok_or_else(|| StoreError::Corrupt(format!("no published definition {}", id.0)))
}

/// An instance row.
pub struct InstanceRow {
    pub id: i64,
    pub definition_id: i64,
    pub process: String,
    pub stage: String,
    pub fields: Json,
    pub priority: Option<String>,
    pub queue: Option<String>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Never missing from a row the store wrote; a row from before migration 0004 got it from
    /// its first event.
    pub created_by: Option<String>,
}

/// An event row (without its instance id).
pub struct EventRow {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub kind: &'static str,
    pub data: Json,
    pub reason: Option<String>,
}

pub struct NewInstanceRows {
    pub instance: InstanceRow,
    pub events: Vec<EventRow>,
    pub task: Option<NewTask>,
    pub parent: Option<ParentLink>,
    /// Microseconds.
    pub wakeup: Option<i64>,
}

pub struct ChangeRows {
    pub instance: InstanceRow,
    pub expected_version: i64,
    pub events: Vec<EventRow>,
    pub close_task: Option<CloseTask>,
    pub update_task: Option<UpdateTask>,
    pub new_task: Option<NewTask>,
    pub links: Vec<Link>,
    pub spawns: Vec<NewInstanceRows>,
    /// Microseconds; see [`Change::wakeup`].
    pub wakeup: Option<Option<i64>>,
    pub notifications: Vec<NewNotification>,
    /// See [`Change::ballots`].
    pub ballots: Option<BallotChange>,
    /// See [`Change::cascade`].
    pub cascade: Vec<ChangeRows>,
}

impl ChangeRows {
    /// Whether the change writes more than the common statement of a store writes: links,
    /// spawned instances, approval ballots, notifications for named people, changes to linked
    /// tickets, a move to another version.
    pub fn is_uncommon(&self) -> bool {
        !self.spawns.is_empty()
            || self.events.iter().any(|e| e.kind == "migrated")
            || !self.cascade.is_empty()
            || !self.links.is_empty()
            || self.ballots.is_some()
            || self.notifications.iter().any(|n| !n.recipients.is_empty())
    }
}

/// The outbox rows a deliverer may claim at `$now`: undelivered, alive, due, and neither
/// leased nor waiting to be tried again; the oldest first.
pub const CLAIMABLE_NOTIFICATIONS: &str =
    "delivered_at IS NULL AND dead_at IS NULL AND deliver_at <= {now} \
     AND (claimed_until IS NULL OR claimed_until <= {now})";

/// Notification recipients as stored: a JSON array, or NULL for every holder of the role.
pub fn recipients_column(recipients: &[String]) -> Option<String> {
    (!recipients.is_empty()).then(|| Json::from(recipients.to_vec()).to_string())
}

/// A pending ballot from its stored columns.
#[allow(clippy::too_many_arguments)]
pub fn ballot_from_columns(
    instance_id: i64,
    approver: String,
    on_behalf_of: Option<String>,
    level: i64,
    process: String,
    stage: String,
    opened_at: i64,
) -> Result<PendingBallot> {
    Ok(PendingBallot {
        instance: InstanceId(instance_id),
        process: process.into(),
        stage: stage.into(),
        level: u32::try_from(level).unwrap_or_default(),
        approver: approver.into(),
        on_behalf_of: on_behalf_of.map(Into::into),
        opened_at: from_micros(opened_at)?,
    })
}

pub fn instance_row(def: &ProcessVersion, i: &Instance) -> InstanceRow {
    InstanceRow {
        id: i.id.0,
        definition_id: def.id.0,
        process: def.process.clone(),
        stage: codec::stage_name(def, i.stage).to_string(),
        fields: Json::Object(codec::fields_to_json(def.model(), &i.fields)),
        priority: codec::priority_name(def, i.priority).map(str::to_string),
        queue: codec::queue_name(def, i.queue).map(str::to_string),
        version: i.version,
        created_at: i.created_at,
        updated_at: i.updated_at,
        created_by: Some(i.created_by.to_string()),
    }
}

pub fn event_rows(def: &ProcessVersion, events: &[Event]) -> Vec<EventRow> {
    events
        .iter()
        .map(|e| {
            let (kind, data) = codec::event_to_json(def, &e.kind);
            EventRow {
                seq: e.seq,
                at: e.at,
                actor: e.actor.to_string(),
                kind,
                data,
                reason: e.reason.clone(),
            }
        })
        .collect()
}

pub fn new_instance_rows(catalog: &dyn Definitions, n: NewInstance) -> Result<NewInstanceRows> {
    let def = definition(catalog, n.instance.definition)?;
    Ok(NewInstanceRows {
        instance: instance_row(&def, &n.instance),
        events: event_rows(&def, &n.events),
        task: n.task,
        parent: n.parent,
        wakeup: n.wakeup.map(micros),
    })
}

pub fn change_rows(catalog: &dyn Definitions, c: Change) -> Result<ChangeRows> {
    let def = definition(catalog, c.instance.definition)?;
    Ok(ChangeRows {
        instance: instance_row(&def, &c.instance),
        expected_version: c.expected_version,
        events: event_rows(&def, &c.events),
        close_task: c.close_task,
        update_task: c.update_task,
        new_task: c.new_task,
        links: c.links,
        spawns: c
            .spawns
            .into_iter()
            .map(|s| new_instance_rows(catalog, s))
            .collect::<Result<_>>()?,
        wakeup: c.wakeup.map(|w| w.map(micros)),
        notifications: c.notifications,
        ballots: c.ballots,
        cascade: c
            .cascade
            .into_iter()
            .map(|c| change_rows(catalog, c))
            .collect::<Result<_>>()?,
    })
}

/// Decode an instance row with the definition it is pinned to.
pub fn decode_instance(catalog: &dyn Definitions, row: InstanceRow) -> Result<Instance> {
    let def = definition(catalog, DefinitionId(row.definition_id))?;
    let corrupt = |e: String| StoreError::Corrupt(format!("instance {}: {e}", row.id));
    Ok(Instance {
        id: InstanceId(row.id),
        definition: def.id,
        stage: codec::stage_id(&def, &row.stage).map_err(corrupt)?,
        fields: Arc::new(codec::fields_from_json(def.model(), &row.fields).map_err(corrupt)?),
        priority: codec::priority_id(&def, row.priority.as_deref()).map_err(corrupt)?,
        queue: codec::queue_id(&def, row.queue.as_deref()).map_err(corrupt)?,
        version: row.version,
        created_at: row.created_at,
        updated_at: row.updated_at,
        created_by: row
            .created_by
            .ok_or_else(|| corrupt("no creator".to_string()))?
            .into(),
    })
}

/// A parameter of an instance listing query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListParam {
    Text(String),
    Int(i64),
}

/// An instance listing query, newest first: `select` (which reads `FROM instances`), then a
/// condition for each criterion given, and its parameters in order. `placeholder(n)` spells the
/// n-th parameter (from 1) as the database does. Criteria not given are left out of the text,
/// rather than written as `(? IS NULL OR ...)`, so that the planner can use an index for the
/// ones that are.
pub fn list_query(
    select: &str,
    filter: &InstanceFilter,
    limit: u32,
    placeholder: impl Fn(usize) -> String,
) -> (String, Vec<ListParam>) {
    let mut conditions = Vec::new();
    let mut params = Vec::new();
    let by_name = [
        ("process", &filter.process),
        ("stage", &filter.stage),
        ("queue", &filter.queue),
        ("created_by", &filter.created_by),
    ];
    for (column, value) in by_name {
        if let Some(v) = value {
            params.push(ListParam::Text(v.clone()));
            conditions.push(format!("{column} = {}", placeholder(params.len())));
        }
    }
    if let Some(before) = filter.before {
        params.push(ListParam::Int(before.0));
        conditions.push(format!("id < {}", placeholder(params.len())));
    }
    let mut sql = select.to_string();
    if !conditions.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&conditions.join(" AND "));
    }
    params.push(ListParam::Int(i64::from(limit)));
    sql.push_str(&format!(
        " ORDER BY id DESC LIMIT {}",
        placeholder(params.len())
    ));
    (sql, params)
}

/// An event as a database row gives it, not yet read under a definition.
pub struct StoredEvent {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub kind: String,
    pub data: Json,
    pub reason: Option<String>,
}

/// An instance's history, each event read under the version it was decided on: the
/// instance's own version (`def`) back to its last migration, then the version that
/// migration left, and so on (events are stored with names, which only their version knows).
pub fn decode_history(
    catalog: &dyn Definitions,
    def: Arc<ProcessVersion>,
    instance: i64,
    rows: Vec<StoredEvent>,
) -> Result<Vec<Event>> {
    let mut under = def;
    let mut events = Vec::with_capacity(rows.len());
    for r in rows.into_iter().rev() {
        let left = match r.kind.as_str() {
            "migrated" => Some(codec::migrated_from(&r.data).map_err(|e| {
                StoreError::Corrupt(format!("instance {instance} event {}: {e}", r.seq))
            })?),
            _ => None,
        };
        events.push(decode_event(
            &under, instance, r.seq, r.at, r.actor, &r.kind, &r.data, r.reason,
        )?);
        if let Some(left) = left {
            under = definition(catalog, left)?;
        }
    }
    events.reverse();
    Ok(events)
}

#[allow(clippy::too_many_arguments)]
pub fn decode_event(
    def: &ProcessVersion,
    instance: i64,
    seq: i64,
    at: DateTime<Utc>,
    actor: String,
    kind: &str,
    data: &Json,
    reason: Option<String>,
) -> Result<Event> {
    let kind = codec::event_from_json(def, kind, data)
        .map_err(|e| StoreError::Corrupt(format!("instance {instance} event {seq}: {e}")))?;
    Ok(Event {
        seq,
        at,
        actor: actor.into(),
        kind,
        reason,
    })
}

/// A task row's columns as stored: "no priority" and "no due time" as their sentinels, times in
/// microseconds. Each database reads its rows into this; [`TaskColumns::into_task`] is the one
/// place that knows what the stored values mean.
pub struct TaskColumns {
    pub id: i64,
    pub instance_id: i64,
    pub process: String,
    pub stage: String,
    pub queue: String,
    pub priority: i64,
    pub due_at: i64,
    /// `NO_DUE` for none, as `due_at`.
    pub ola_due_at: i64,
    pub created_at: i64,
    pub state: String,
    pub assigned_to: Option<String>,
    pub claimed_by: Option<String>,
    pub lease_until: Option<i64>,
    pub token: i64,
}

impl TaskColumns {
    /// The task; an error names a state that is not one.
    pub fn into_task(self) -> std::result::Result<Task, String> {
        let state =
            TaskState::parse(&self.state).ok_or_else(|| format!("task state `{}`", self.state))?;
        Ok(Task {
            id: TaskId(self.id),
            instance: InstanceId(self.instance_id),
            process: self.process.into(),
            stage: self.stage.into(),
            queue: self.queue.into(),
            priority: (self.priority != i64::from(NO_PRIORITY)).then_some(self.priority as u32),
            due_at: (self.due_at != NO_DUE)
                .then(|| instant(self.due_at))
                .transpose()?,
            ola_due_at: (self.ola_due_at != NO_DUE)
                .then(|| instant(self.ola_due_at))
                .transpose()?,
            created_at: instant(self.created_at)?,
            state,
            assigned_to: self.assigned_to.map(Arc::from),
            claimed_by: self.claimed_by.map(Arc::from),
            lease_until: self.lease_until.map(instant).transpose()?,
            token: self.token,
        })
    }
}

/// A task from a JSON object of its row (`row_to_json` in PostgreSQL).
pub fn task_from_json(t: &Json) -> Result<Task> {
    let bad = || StoreError::Corrupt(format!("task row {t}"));
    let int = |k: &str| t.get(k).and_then(Json::as_i64).ok_or_else(bad);
    let text = |k: &str| t.get(k).and_then(Json::as_str).map(str::to_string);
    let columns = TaskColumns {
        id: int("id")?,
        instance_id: int("instance_id")?,
        process: text("process").ok_or_else(bad)?,
        stage: text("stage").ok_or_else(bad)?,
        queue: text("queue").ok_or_else(bad)?,
        priority: int("priority")?,
        due_at: int("due_at")?,
        ola_due_at: int("ola_due_at")?,
        created_at: int("created_at")?,
        state: text("state").ok_or_else(bad)?,
        assigned_to: text("assigned_to"),
        claimed_by: text("claimed_by"),
        lease_until: t.get("lease_until").and_then(Json::as_i64),
        token: int("token")?,
    };
    columns.into_task().map_err(StoreError::Corrupt)
}

pub fn priority_column(p: Option<u32>) -> i32 {
    p.map(|p| p.min(i32::MAX as u32 - 1) as i32)
        .unwrap_or(NO_PRIORITY)
}

pub fn due_column(d: Option<DateTime<Utc>>) -> i64 {
    d.map(micros).unwrap_or(NO_DUE)
}

/// A notification row's columns as stored (times in microseconds).
pub struct NotificationColumns {
    pub id: i64,
    pub instance_id: i64,
    pub role: String,
    /// See [`recipients_column`].
    pub recipients: Option<String>,
    pub clock: Option<String>,
    pub threshold: Option<String>,
    pub message: String,
    pub created_at: i64,
    pub deliver_at: i64,
    pub delivered_at: Option<i64>,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub dead_at: Option<i64>,
}

impl NotificationColumns {
    /// The notification; an error names an instant out of range.
    pub fn into_notification(self) -> std::result::Result<Notification, String> {
        Ok(Notification {
            id: self.id,
            instance: InstanceId(self.instance_id),
            role: self.role,
            recipients: self
                .recipients
                .and_then(|r| serde_json::from_str(&r).ok())
                .unwrap_or_default(),
            clock: self.clock,
            threshold: self.threshold,
            message: self.message,
            created_at: instant(self.created_at)?,
            deliver_at: instant(self.deliver_at)?,
            delivered_at: self.delivered_at.map(instant).transpose()?,
            attempts: u32::try_from(self.attempts).unwrap_or(0),
            last_error: self.last_error,
            dead_at: self.dead_at.map(instant).transpose()?,
        })
    }
}

/// The outbox filter as SQL conditions on numbered parameters from `first`: role, instance,
/// undelivered (a boolean), deliverable-at (microseconds), after-id; each parameter may be
/// NULL (no condition). For PostgreSQL (`pg`) the parameters are cast to their types.
pub fn notification_conditions(first: usize, pg: bool) -> String {
    let p = |i: usize, ty: &str| {
        if pg {
            format!("${}::{ty}", first + i)
        } else {
            format!("?{}", first + i)
        }
    };
    format!(
        "({role} IS NULL OR role = {role}) AND ({inst} IS NULL OR instance_id = {inst}) \
         AND (NOT {undelivered} OR delivered_at IS NULL) \
         AND ({at} IS NULL OR deliver_at <= {at}) AND id > {after}",
        role = p(0, "text"),
        inst = p(1, "bigint"),
        undelivered = p(2, "boolean"),
        at = p(3, "bigint"),
        after = p(4, "bigint"),
    )
}
