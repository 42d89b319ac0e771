//! Group commit of new instances on PostgreSQL: instances created at the same time are written
//! by one statement, in one transaction, like the changes of [`super::batch`].
//!
//! Creating an instance alone took a transaction of its own: `BEGIN`, the instance, its events,
//! its wake-up, its task, `COMMIT`, each a round trip, and a commit record flushed for each
//! instance. Under load that made creation the slowest request (its p99 at 32 agents was 1.4x
//! that of a claim). Here a creator task takes the new instances waiting when it is free and
//! writes them with one statement: their ids are drawn from the instances' sequence in the
//! statement itself, and every row they bring (events, wake-up, task) joins to its instance by
//! its place in the batch. An instance that arrives alone is written alone, at once, by the same
//! statement: one round trip instead of six.
//!
//! An instance is acknowledged only after the statement's transaction committed. Creations
//! have no version or fence to check, so nothing in a batch refuses one instance and not the
//! others; should the statement fail as a whole (say a constraint), nothing of it was written
//! and each instance is created again on its own, to get its own answer.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value as Json;
use sqlx::{PgPool, Row};

use super::gather::{Gathering, Waiting};
use super::nothing_written;
use crate::record::types::InstanceId;
use crate::store::sql::{self, NewInstanceRows};
use crate::store::{Created, Result, StoreError};

/// Instances written by one statement at most.
const MOST_PER_BATCH: usize = 64;

/// The way to the creator tasks. They end when this is dropped, after the instances handed to
/// them are written.
pub(super) struct Creator {
    gathering: Gathering<NewInstanceRows, Created>,
    together: Arc<AtomicU64>,
}

impl Creator {
    /// Start `tasks` creator tasks on the current runtime, writing through `pool`.
    pub(super) fn start(pool: PgPool, tasks: usize) -> Self {
        let together = Arc::new(AtomicU64::new(0));
        let counter = together.clone();
        Creator {
            gathering: Gathering::start(tasks, MOST_PER_BATCH, move |batch| {
                write(pool.clone(), batch, counter.clone())
            }),
            together,
        }
    }

    /// How many instances were created by a statement with others.
    pub(super) fn created_together(&self) -> u64 {
        self.together.load(Ordering::Relaxed)
    }

    /// Create an instance (without a parent to link to), alone or with others. It is written
    /// even if the caller stops waiting.
    pub(super) async fn create(&self, rows: NewInstanceRows) -> Result<Created> {
        self.gathering.ask(rows).await
    }
}

/// Write the instances taken together and answer each.
async fn write(
    pool: PgPool,
    batch: Vec<Waiting<NewInstanceRows, Created>>,
    together: Arc<AtomicU64>,
) {
    if batch.len() == 1 {
        for w in batch {
            let created = create_alone(&pool, &w.request).await;
            w.answer(created);
        }
        return;
    }
    let rows: Vec<&NewInstanceRows> = batch.iter().map(|w| &w.request).collect();
    match create_together(&pool, &rows).await {
        Ok(created) => {
            together.fetch_add(batch.len() as u64, Ordering::Relaxed);
            for (w, created) in batch.into_iter().zip(created) {
                w.answer(Ok(created));
            }
        }
        Err(e) if nothing_written(&e) => {
            // Each on its own, for its own answer.
            for w in batch {
                let created = create_alone(&pool, &w.request).await;
                w.answer(created);
            }
        }
        Err(e) => {
            // The connection failed with the statement sent: the instances may have been
            // created. Creating them again could make two of one ticket, so each caller is
            // told what is known.
            for w in batch {
                w.answer(Err(StoreError::Uncertain(e.to_string())));
            }
        }
    }
}

/// Create one instance by itself: the same statement, for one; its errors as they come.
async fn create_alone(pool: &PgPool, rows: &NewInstanceRows) -> Result<Created> {
    create_together(pool, &[rows])
        .await?
        .pop()
        .ok_or_else(|| StoreError::Corrupt("a creation went unanswered".into()))
}

/// The statement: the new instances as one row each (`ch`, numbered `n` in the batch's
/// order, each given its id from the sequence), and their events, wake-ups and tasks joined to
/// them by that number. Foreign keys are checked at the end of the statement, when every
/// instance row is in.
const CREATE_TOGETHER: &str = "\
WITH ch AS MATERIALIZED ( \
     SELECT nextval('instances_id_seq') AS id, ch.* FROM UNNEST( \
         $1::bigint[], $2::text[], $3::text[], $4::jsonb[], $5::text[], $6::text[], $7::bigint[], \
         $8::timestamptz[], $9::timestamptz[], $10::text[], $11::bigint[], \
         $12::text[], $13::text[], $14::text[], $15::integer[], $16::bigint[], $17::text[], $18::bigint[]) \
     WITH ORDINALITY AS ch(definition_id, process, stage, fields, priority, queue, version, \
         created_at, updated_at, created_by, wake_at, \
         t_process, t_stage, t_queue, t_priority, t_due, t_to, t_ola, n)), \
 i AS (INSERT INTO instances (id, definition_id, process, stage, fields, priority, queue, version, \
                              created_at, updated_at, created_by) \
       SELECT id, definition_id, process, stage, fields, priority, queue, version, \
              created_at, updated_at, created_by FROM ch), \
 e AS (INSERT INTO events (instance_id, seq, at, actor, kind, data, reason) \
       SELECT ch.id, ev.seq, ev.at, ev.actor, ev.kind, ev.data, ev.reason \
       FROM UNNEST($19::bigint[], $20::bigint[], $21::timestamptz[], $22::text[], $23::text[], \
                   $24::jsonb[], $25::text[]) AS ev(n, seq, at, actor, kind, data, reason) \
       JOIN ch ON ch.n = ev.n), \
 w AS (INSERT INTO wakeups (instance_id, due_at, fire_at) \
       SELECT id, wake_at, wake_at FROM ch WHERE wake_at IS NOT NULL), \
 t AS (INSERT INTO tasks (instance_id, process, stage, queue, priority, due_at, created_at, state, \
                          assigned_to, ola_due_at) \
       SELECT id, t_process, t_stage, t_queue, t_priority, t_due, \
              (EXTRACT(EPOCH FROM created_at) * 1000000)::bigint, 'open', t_to, t_ola \
       FROM ch WHERE t_queue IS NOT NULL RETURNING *) \
SELECT ch.id, (SELECT row_to_json(t) FROM t WHERE t.instance_id = ch.id) AS task \
FROM ch ORDER BY ch.n";

/// The batch's columns: one entry per instance, or per event.
#[derive(Default)]
struct Columns {
    definition_id: Vec<i64>,
    process: Vec<String>,
    stage: Vec<String>,
    fields: Vec<Json>,
    priority: Vec<Option<String>>,
    queue: Vec<Option<String>>,
    version: Vec<i64>,
    created_at: Vec<DateTime<Utc>>,
    updated_at: Vec<DateTime<Utc>>,
    created_by: Vec<Option<String>>,
    wake_at: Vec<Option<i64>>,
    t_process: Vec<Option<String>>,
    t_stage: Vec<Option<String>>,
    t_queue: Vec<Option<String>>,
    t_priority: Vec<Option<i32>>,
    t_due: Vec<Option<i64>>,
    t_to: Vec<Option<String>>,
    t_ola: Vec<Option<i64>>,
    /// Each event's instance, by its number in the batch (from 1, as `WITH ORDINALITY`).
    e_n: Vec<i64>,
    e_seq: Vec<i64>,
    e_at: Vec<DateTime<Utc>>,
    e_actor: Vec<String>,
    e_kind: Vec<&'static str>,
    e_data: Vec<Json>,
    e_reason: Vec<Option<String>>,
}

impl Columns {
    fn of(batch: &[&NewInstanceRows]) -> Self {
        let mut c = Columns::default();
        for (n, rows) in (1..).zip(batch) {
            let i = &rows.instance;
            c.definition_id.push(i.definition_id);
            c.process.push(i.process.clone());
            c.stage.push(i.stage.clone());
            c.fields.push(i.fields.clone());
            c.priority.push(i.priority.clone());
            c.queue.push(i.queue.clone());
            c.version.push(i.version);
            c.created_at.push(i.created_at);
            c.updated_at.push(i.updated_at);
            c.created_by.push(i.created_by.clone());
            c.wake_at.push(rows.wakeup);
            let t = rows.task.as_ref();
            c.t_process.push(t.map(|t| t.process.to_string()));
            c.t_stage.push(t.map(|t| t.stage.to_string()));
            c.t_queue.push(t.map(|t| t.queue.to_string()));
            c.t_priority
                .push(t.map(|t| sql::priority_column(t.priority)));
            c.t_due.push(t.map(|t| sql::due_column(t.due_at)));
            c.t_to
                .push(t.and_then(|t| t.assigned_to.as_deref().map(str::to_string)));
            c.t_ola.push(t.map(|t| sql::due_column(t.ola_due_at)));
            for e in &rows.events {
                c.e_n.push(n);
                c.e_seq.push(e.seq);
                c.e_at.push(e.at);
                c.e_actor.push(e.actor.clone());
                c.e_kind.push(e.kind);
                c.e_data.push(e.data.clone());
                c.e_reason.push(e.reason.clone());
            }
        }
        c
    }
}

/// Write the instances with one statement; what each became, in order.
async fn create_together(pool: &PgPool, batch: &[&NewInstanceRows]) -> Result<Vec<Created>> {
    let c = Columns::of(batch);
    let rows = sqlx::query(CREATE_TOGETHER)
        .bind(&c.definition_id)
        .bind(&c.process)
        .bind(&c.stage)
        .bind(&c.fields)
        .bind(&c.priority)
        .bind(&c.queue)
        .bind(&c.version)
        .bind(&c.created_at)
        .bind(&c.updated_at)
        .bind(&c.created_by)
        .bind(&c.wake_at)
        .bind(&c.t_process)
        .bind(&c.t_stage)
        .bind(&c.t_queue)
        .bind(&c.t_priority)
        .bind(&c.t_due)
        .bind(&c.t_to)
        .bind(&c.t_ola)
        .bind(&c.e_n)
        .bind(&c.e_seq)
        .bind(&c.e_at)
        .bind(&c.e_actor)
        .bind(&c.e_kind)
        .bind(&c.e_data)
        .bind(&c.e_reason)
        .fetch_all(pool)
        .await?;
    if rows.len() != batch.len() {
        return Err(StoreError::Corrupt(format!(
            "{} instances created as {} rows",
            batch.len(),
            rows.len()
        )));
    }
    rows.iter()
        .map(|row| {
            let task: Option<Json> = row.try_get("task")?;
            Ok((
                InstanceId(row.try_get("id")?),
                task.map(|t| sql::task_from_json(&t)).transpose()?,
            ))
        })
        .collect()
}
