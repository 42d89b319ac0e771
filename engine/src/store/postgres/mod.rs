//! The scale-out store: PostgreSQL, shared by any number of stateless server nodes.
//!
//! Each method is one transaction on a pooled connection; changes committed at the same time
//! are written together, one statement and transaction for all (group commit, [`batch`]),
//! each still checked and applied on its own; instances created at the same time are written
//! together likewise ([`creations`]), and so are claims asked for at the same time
//! ([`claims`]). Instances are updated under an optimistic version check (a
//! stale version changes nothing and reports a conflict). Claims pick the next open tasks with
//! `FOR UPDATE SKIP LOCKED` in the same statement that leases them, so concurrent claimers on
//! any node never wait on each other and never get the same task.
//! Tasks whose lease ran out are put back among the open ones by each node at most once a
//! second (in the time the callers pass in), before it claims: a crashed agent's task is back in
//! its queue, in its place by priority, within a second of its lease ending, and renewing or
//! completing with the old lease is then refused.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value as Json;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{PgConnection, PgPool, Row};

use super::migrations::{MigrationSet, ENGINE_VERSIONS};
use super::sql::{self, ChangeRows, NewInstanceRows};
use super::{
    Committed, Created, InstanceAndTask, InstanceFilter, NewDefinition, Result, Store, StoreError,
    StoredDefinition, StoredDefinitions, TaskAndInstance,
};
use crate::record::types::*;
use crate::record::{DefinitionId, Definitions, ProcessVersion, ProjectSource};

mod batch;
mod creations;
mod gather;
mod reads;

/// The engine's tables on PostgreSQL (see [`super::migrations`]).
pub fn migrations() -> MigrationSet {
    MigrationSet::new(
        "engine",
        ENGINE_VERSIONS,
        sqlx::migrate!("./migrations/postgres"),
    )
}

pub struct PostgresStore {
    pool: PgPool,
    /// Writes the changes committed at the same time together (see [`batch`]).
    committer: batch::Committer,
    /// Writes the instances created at the same time together (see [`creations`]).
    creator: creations::Creator,
    /// Serves the claims asked for at the same time together (see [`claims`]).
    claimer: claims::Claimer,
    /// Serves the instances asked for at the same time together (see [`reads`]).
    reader: reads::Reader,
    /// The published definitions (the engine's catalog), to turn stored names into ids and back.
    catalog: Arc<dyn Definitions>,
    /// When (in the callers' time, microseconds) expired leases were last returned to their
    /// queues by this node.
    last_sweep: std::sync::atomic::AtomicI64,
}

/// Expired leases are returned to their queues at most this often per node (in the time the
/// callers pass in), so a crashed agent's task is back in its queue, in its place by priority,
/// within this long of its lease running out.
const SWEEP_INTERVAL_MICROS: i64 = 1_000_000;

/// A pooled connection idle at least this long is checked (one empty round trip) before it is
/// handed out; one used more recently is handed out as it is.
///
/// The pool's default checks every connection at every acquire, which doubles the round trips
/// of a store whose methods are one statement each. A connection that was answering moments
/// ago is very likely still there; one that sat idle may have been closed by the server, a
/// proxy or a failover meanwhile, and checking it first keeps that from failing a request.
const CHECK_CONNECTIONS_IDLE_FOR: std::time::Duration = std::time::Duration::from_millis(500);

/// How many tasks write changes ([`batch`]), how many create instances ([`creations`]), and
/// how many serve claims ([`claims`]), for a pool of `connections`: one per 16 connections. Each keeps one connection busy; more of them
/// make smaller batches side by side. On a 2-core machine with 16 connections, a second one
/// cost more in fixed costs per change than it gained (claim + complete: 0.53-0.61x the bare
/// loop with two committers, 0.55-0.64x with one; with two claimers too, 0.59-0.70x).
fn gatherers(connections: u32) -> usize {
    (connections as usize / 16).max(1)
}

/// Pool options for PostgreSQL connections: idle ones are checked before use (see
/// [`CHECK_CONNECTIONS_IDLE_FOR`]), busy ones are not.
pub fn pool_options() -> PgPoolOptions {
    PgPoolOptions::new()
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= CHECK_CONNECTIONS_IDLE_FOR {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
}

impl PostgresStore {
    /// Connect and bring the schema up to date (migrations take an advisory lock, so nodes
    /// starting together do not race).
    pub async fn connect(url: &str, catalog: Arc<dyn Definitions>) -> Result<Self> {
        Self::connect_with(url, catalog, 16).await
    }

    pub async fn connect_with(
        url: &str,
        catalog: Arc<dyn Definitions>,
        max_connections: u32,
    ) -> Result<Self> {
        let options: PgConnectOptions = url.parse()?;
        let pool = pool_options()
            .max_connections(max_connections)
            .connect_with(options)
            .await?;
        migrations().run(&pool).await?;
        Ok(PostgresStore {
            committer: batch::Committer::start(pool.clone(), gatherers(max_connections)),
            creator: creations::Creator::start(pool.clone(), gatherers(max_connections)),
            claimer: claims::Claimer::start(
                pool.clone(),
                catalog.clone(),
                gatherers(max_connections),
            ),
            reader: reads::Reader::start(
                pool.clone(),
                catalog.clone(),
                // Reads are most of what a busy node sends alone: two may be on their way.
                gatherers(max_connections).max(2),
            ),
            pool,
            catalog,
            last_sweep: std::sync::atomic::AtomicI64::new(i64::MIN),
        })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// How many changes were written (or refused) by one statement together with others since
    /// the store was opened: the work group commit saved (see [`batch`]).
    pub fn changes_written_together(&self) -> u64 {
        self.committer.changes_written_together()
    }

    /// How many instances were created by one statement together with others since the store
    /// was opened (see [`creations`]).
    pub fn instances_created_together(&self) -> u64 {
        self.creator.created_together()
    }

    /// How many claims were served by one statement together with others since the store was
    /// opened (see [`claims`]).
    pub fn claims_made_together(&self) -> u64 {
        self.claimer.claims_made_together()
    }

    /// How many instances were read by one statement together with others since the store was
    /// opened (see [`reads`]).
    pub fn instances_read_together(&self) -> u64 {
        self.reader.read_together()
    }
}

async fn insert_events(
    conn: &mut PgConnection,
    instance: i64,
    events: &[sql::EventRow],
) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    // One statement for all of a change's events.
    let mut q = sqlx::QueryBuilder::<sqlx::Postgres>::new(
        "INSERT INTO events (instance_id, seq, at, actor, kind, data, reason) ",
    );
    q.push_values(events, |mut b, e| {
        b.push_bind(instance)
            .push_bind(e.seq)
            .push_bind(e.at)
            .push_bind(&e.actor)
            .push_bind(e.kind)
            .push_bind(&e.data)
            .push_bind(&e.reason);
    });
    q.build().execute(&mut *conn).await?;
    Ok(())
}

async fn insert_task(
    conn: &mut PgConnection,
    instance: i64,
    t: &NewTask,
    at: DateTime<Utc>,
) -> Result<Task> {
    let row = sqlx::query(
        "INSERT INTO tasks (instance_id, process, stage, queue, priority, due_at, created_at, state, assigned_to, ola_due_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'open', $8, $9) RETURNING *",
    )
    .bind(instance)
    .bind(&*t.process)
    .bind(&*t.stage)
    .bind(&*t.queue)
    .bind(sql::priority_column(t.priority))
    .bind(sql::due_column(t.due_at))
    .bind(sql::micros(at))
    .bind(t.assigned_to.as_deref())
    .bind(sql::due_column(t.ola_due_at))
    .fetch_one(&mut *conn)
    .await?;
    task_from_row(&row)
}

async fn insert_link(
    conn: &mut PgConnection,
    from: i64,
    to: i64,
    kind: &str,
    at: DateTime<Utc>,
) -> Result<()> {
    sqlx::query("INSERT INTO links (from_id, to_id, kind, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING")
        .bind(from)
        .bind(to)
        .bind(kind)
        .bind(at)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

async fn create(conn: &mut PgConnection, rows: NewInstanceRows) -> Result<Created> {
    let i = &rows.instance;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO instances (definition_id, process, stage, fields, priority, queue, version, created_at, updated_at, created_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
    )
    .bind(i.definition_id)
    .bind(&i.process)
    .bind(&i.stage)
    .bind(&i.fields)
    .bind(&i.priority)
    .bind(&i.queue)
    .bind(i.version)
    .bind(i.created_at)
    .bind(i.updated_at)
    .bind(&i.created_by)
    .fetch_one(&mut *conn)
    .await?;
    insert_events(conn, id, &rows.events).await?;
    if rows.wakeup.is_some() {
        set_wakeup(conn, id, rows.wakeup).await?;
    }
    let task = match &rows.task {
        Some(t) => Some(insert_task(conn, id, t, i.created_at).await?),
        None => None,
    };
    if let Some(parent) = &rows.parent {
        let l = parent.link(InstanceId(id), i.created_at);
        insert_link(conn, l.from.0, l.to.0, &l.kind, l.created_at).await?;
    }
    Ok((InstanceId(id), task))
}

async fn task_by_id(conn: &mut PgConnection, id: TaskId) -> Result<Option<Task>> {
    let row = sqlx::query("SELECT * FROM tasks WHERE id = $1")
        .bind(id.0)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(|r| task_from_row(&r)).transpose()
}

async fn close_task(conn: &mut PgConnection, close: &CloseTask) -> Result<()> {
    let closed = match &close.fence {
        Fence::Token { token, agent } => sqlx::query(
            "UPDATE tasks SET state = 'done', lease_until = NULL \
             WHERE id = $1 AND state = 'claimed' AND token = $2 AND claimed_by = $3",
        )
        .bind(close.task.0)
        .bind(token)
        .bind(&**agent)
        .execute(&mut *conn)
        .await?
        .rows_affected(),
        Fence::NotClaimedByOther { actor, now } => sqlx::query(
            "UPDATE tasks SET state = 'done', lease_until = NULL \
             WHERE id = $1 AND state <> 'done' \
               AND NOT (state = 'claimed' AND lease_until > $2 AND claimed_by <> $3)",
        )
        .bind(close.task.0)
        .bind(sql::micros(*now))
        .bind(&**actor)
        .execute(&mut *conn)
        .await?
        .rows_affected(),
    };
    if closed == 1 {
        return Ok(());
    }
    let task = task_by_id(conn, close.task).await?;
    Err(StoreError::fence_refused(close, task.as_ref()))
}

/// The instance's version now (`None`: there is no such instance).
async fn instance_version(conn: &mut PgConnection, id: i64) -> Result<Option<i64>> {
    Ok(
        sqlx::query_scalar("SELECT version FROM instances WHERE id = $1")
            .bind(id)
            .fetch_optional(conn)
            .await?,
    )
}

/// Lock the task a change closes or updates before its instance, as the group commit does
/// (its statement locks the batch's tasks, then updates their instances): a change written
/// alone while a batch acts on the same ticket then waits for the batch instead of holding
/// the instance the batch needs while it waits for the task the batch holds.
async fn lock_tasks_first(conn: &mut PgConnection, rows: &ChangeRows) -> Result<()> {
    let mut tasks: Vec<i64> = rows
        .close_task
        .iter()
        .map(|c| c.task.0)
        .chain(rows.update_task.iter().map(|u| u.task.0))
        .collect();
    if tasks.is_empty() {
        return Ok(());
    }
    tasks.sort_unstable();
    tasks.dedup();
    sqlx::query("SELECT id FROM tasks WHERE id = ANY($1) ORDER BY id FOR UPDATE")
        .bind(&tasks)
        .fetch_all(&mut *conn)
        .await?;
    Ok(())
}

/// Lock every instance a change with linked tickets writes or checks, in the order of their
/// ids, before writing any: two such changes that touch the same tickets (two work orders of
/// one request, each checking the other) then wait for each other instead of deadlocking.
async fn lock_in_order(conn: &mut PgConnection, rows: &ChangeRows) -> Result<()> {
    fn ids(rows: &ChangeRows, out: &mut Vec<i64>) {
        out.push(rows.instance.id);
        for c in &rows.cascade {
            ids(c, out);
        }
    }
    if rows.cascade.is_empty() {
        return Ok(());
    }
    let mut all = Vec::new();
    ids(rows, &mut all);
    all.sort_unstable();
    all.dedup();
    sqlx::query("SELECT id FROM instances WHERE id = ANY($1) ORDER BY id FOR UPDATE")
        .bind(&all)
        .fetch_all(&mut *conn)
        .await?;
    Ok(())
}

async fn commit(conn: &mut PgConnection, rows: ChangeRows) -> Result<Committed> {
    let i = &rows.instance;
    let updated = sqlx::query(
        "UPDATE instances SET stage = $1, fields = $2, priority = $3, queue = $4, version = $5, updated_at = $6, \
         definition_id = $9 WHERE id = $7 AND version = $8",
    )
    .bind(&i.stage)
    .bind(&i.fields)
    .bind(&i.priority)
    .bind(&i.queue)
    .bind(i.version)
    .bind(i.updated_at)
    .bind(i.id)
    .bind(rows.expected_version)
    .bind(i.definition_id)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if updated == 0 {
        let now = instance_version(conn, i.id).await?;
        return Err(StoreError::stale_version(
            InstanceId(i.id),
            rows.expected_version,
            now,
        ));
    }
    if let Some(close) = &rows.close_task {
        close_task(conn, close).await?;
    }
    let mut task = None;
    if let Some(u) = &rows.update_task {
        let row = sqlx::query(
            "UPDATE tasks SET assigned_to = CASE WHEN queue = $1 THEN assigned_to ELSE $5 END, \
             state = CASE WHEN queue = $1 THEN state ELSE 'open' END, \
             claimed_by = CASE WHEN queue = $1 THEN claimed_by ELSE NULL END, \
             lease_until = CASE WHEN queue = $1 THEN lease_until ELSE NULL END, \
             queue = $1, priority = $2, due_at = $4, ola_due_at = $6 \
             WHERE id = $3 AND state <> 'done' RETURNING *",
        )
        .bind(&*u.queue)
        .bind(sql::priority_column(u.priority))
        .bind(u.task.0)
        .bind(sql::due_column(u.due_at))
        .bind(u.assigned_to.as_deref())
        .bind(sql::due_column(u.ola_due_at))
        .fetch_optional(&mut *conn)
        .await?;
        task = row.map(|r| task_from_row(&r)).transpose()?;
    }
    if let Some(t) = &rows.new_task {
        task = Some(insert_task(conn, i.id, t, i.updated_at).await?);
    }
    insert_events(conn, i.id, &rows.events).await?;
    if let Some(wakeup) = rows.wakeup {
        set_wakeup(conn, i.id, wakeup).await?;
    }
    insert_notifications(conn, i.id, &rows.notifications, i.updated_at).await?;
    if let Some(ballots) = &rows.ballots {
        write_ballots(conn, i.id, ballots).await?;
    }
    for l in &rows.links {
        insert_link(conn, l.from.0, l.to.0, &l.kind, l.created_at).await?;
    }
    let mut spawned = Vec::with_capacity(rows.spawns.len());
    for s in rows.spawns {
        spawned.push(create(conn, s).await?);
    }
    // In the same transaction: a version check failing here undoes the whole change.
    let mut cascaded = Vec::with_capacity(rows.cascade.len());
    for c in rows.cascade {
        cascaded.push(Box::pin(commit(conn, c)).await?);
    }
    Ok(Committed {
        spawned,
        task,
        cascaded,
    })
}

/// Write how a change leaves an instance's pending ballots: the difference when it is known,
/// else the whole list.
async fn write_ballots(
    conn: &mut PgConnection,
    instance: i64,
    change: &BallotChange,
) -> Result<()> {
    let ballots = match change {
        BallotChange::Some { removed, added } => {
            let removed: Vec<&str> = removed.iter().map(|r| &**r).collect();
            sqlx::query("DELETE FROM ballots WHERE instance_id = $1 AND approver = ANY($2)")
                .bind(instance)
                .bind(removed)
                .execute(&mut *conn)
                .await?;
            added
        }
        BallotChange::All(list) => {
            sqlx::query("DELETE FROM ballots WHERE instance_id = $1")
                .bind(instance)
                .execute(&mut *conn)
                .await?;
            list
        }
    };
    if ballots.is_empty() {
        return Ok(());
    }
    let approver: Vec<&str> = ballots.iter().map(|b| &*b.approver).collect();
    let behalf: Vec<Option<&str>> = ballots.iter().map(|b| b.on_behalf_of.as_deref()).collect();
    let level: Vec<i32> = ballots.iter().map(|b| b.level as i32).collect();
    let process: Vec<&str> = ballots.iter().map(|b| &*b.process).collect();
    let stage: Vec<&str> = ballots.iter().map(|b| &*b.stage).collect();
    let opened: Vec<i64> = ballots.iter().map(|b| sql::micros(b.opened_at)).collect();
    sqlx::query(
        "INSERT INTO ballots (instance_id, approver, on_behalf_of, level, process, stage, opened_at) \
         SELECT $1, b.approver, b.on_behalf_of, b.level, b.process, b.stage, b.opened_at \
         FROM UNNEST($2::text[], $3::text[], $4::int[], $5::text[], $6::text[], $7::bigint[]) \
              AS b(approver, on_behalf_of, level, process, stage, opened_at)",
    )
    .bind(instance)
    .bind(approver)
    .bind(behalf)
    .bind(level)
    .bind(process)
    .bind(stage)
    .bind(opened)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Why a change that wrote nothing was refused (`fenced`: whether its task's fence held when
/// it ran; `None`: it closes no task). In the order the other stores check (and the
/// multi-statement `commit`): the instance, its version, then the task's fence. A stale
/// change is a conflict whatever became of its task since, so that callers re-read and decide
/// again.
async fn refusal(pool: &PgPool, rows: &ChangeRows, fenced: Option<bool>) -> StoreError {
    let explain = async {
        let i = &rows.instance;
        let mut conn = pool.acquire().await?;
        let now = instance_version(&mut conn, i.id).await?;
        let stale = StoreError::stale_version(InstanceId(i.id), rows.expected_version, now);
        if now != Some(rows.expected_version) {
            return Ok(stale);
        }
        if let (Some(close), Some(false)) = (&rows.close_task, fenced) {
            let task = task_by_id(&mut conn, close.task).await?;
            return Ok(StoreError::fence_refused(close, task.as_ref()));
        }
        // The version check failed when the statement ran.
        Ok(stale)
    };
    explain.await.unwrap_or_else(|e: StoreError| e)
}

/// Notifications as one array per column, for `UNNEST`.
#[derive(Default)]
struct NotificationArrays {
    role: Vec<String>,
    clock: Vec<Option<String>>,
    threshold: Vec<Option<String>>,
    message: Vec<String>,
    deliver_at: Vec<i64>,
    recipients: Vec<Option<String>>,
}

impl NotificationArrays {
    fn of(rows: &[NewNotification]) -> Self {
        let mut c = NotificationArrays::default();
        c.extend(rows);
        c
    }

    fn extend(&mut self, rows: &[NewNotification]) {
        for n in rows {
            self.role.push(n.role.clone());
            self.clock.push(n.clock.clone());
            self.threshold.push(n.threshold.clone());
            self.message.push(n.message.clone());
            self.deliver_at.push(sql::micros(n.deliver_at));
            self.recipients.push(sql::recipients_column(&n.recipients));
        }
    }
}

/// Replace an instance's wake-up (microseconds; `None`: nothing is due).
async fn set_wakeup(conn: &mut PgConnection, instance: i64, at: Option<i64>) -> Result<()> {
    match at {
        Some(at) => sqlx::query(
            "INSERT INTO wakeups (instance_id, due_at, fire_at) VALUES ($1, $2, $2) \
             ON CONFLICT (instance_id) DO UPDATE SET due_at = excluded.due_at, fire_at = excluded.fire_at",
        )
        .bind(instance)
        .bind(at),
        None => sqlx::query("DELETE FROM wakeups WHERE instance_id = $1").bind(instance),
    }
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn insert_notifications(
    conn: &mut PgConnection,
    instance: i64,
    rows: &[NewNotification],
    at: DateTime<Utc>,
) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let n = NotificationArrays::of(rows);
    sqlx::query(
        "INSERT INTO notifications (instance_id, role, clock, threshold, message, created_at, deliver_at, recipients) \
         SELECT $1, n.role, n.clock, n.threshold, n.message, $2, n.deliver_at, n.recipients \
         FROM UNNEST($3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::text[]) \
              AS n(role, clock, threshold, message, deliver_at, recipients)",
    )
    .bind(instance)
    .bind(sql::micros(at))
    .bind(n.role)
    .bind(n.clock)
    .bind(n.threshold)
    .bind(n.message)
    .bind(n.deliver_at)
    .bind(n.recipients)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

fn notification_from_row(row: &PgRow) -> Result<Notification> {
    sql::NotificationColumns {
        id: row.try_get("id")?,
        instance_id: row.try_get("instance_id")?,
        role: row.try_get("role")?,
        recipients: row.try_get("recipients")?,
        clock: row.try_get("clock")?,
        threshold: row.try_get("threshold")?,
        message: row.try_get("message")?,
        created_at: row.try_get("created_at")?,
        deliver_at: row.try_get("deliver_at")?,
        delivered_at: row.try_get("delivered_at")?,
        attempts: i64::from(row.try_get::<i32, _>("attempts")?),
        last_error: row.try_get("last_error")?,
        dead_at: row.try_get("dead_at")?,
    }
    .into_notification()
    .map_err(StoreError::Corrupt)
}

/// A task from a `SELECT * FROM tasks` (or `RETURNING *`) row.
fn task_from_row(row: &PgRow) -> Result<Task> {
    let priority: i32 = row.try_get("priority")?;
    let columns = sql::TaskColumns {
        id: row.try_get("id")?,
        instance_id: row.try_get("instance_id")?,
        process: row.try_get("process")?,
        stage: row.try_get("stage")?,
        queue: row.try_get("queue")?,
        priority: i64::from(priority),
        due_at: row.try_get("due_at")?,
        ola_due_at: row.try_get("ola_due_at")?,
        created_at: row.try_get("created_at")?,
        state: row.try_get("state")?,
        assigned_to: row.try_get("assigned_to")?,
        claimed_by: row.try_get("claimed_by")?,
        lease_until: row.try_get("lease_until")?,
        token: row.try_get("token")?,
    };
    columns.into_task().map_err(StoreError::Corrupt)
}

/// The claim of the next open task of queue `$3` for agent `$1` until `$2`, as `c` (the claimed
/// row), followed by the `SELECT` given over it: one statement text, built at compile time.
macro_rules! claim_next_then {
    ($select:expr) => {
        concat!(
            "WITH next AS ( \
                 SELECT id FROM tasks \
                 WHERE queue = $3 AND state = 'open' AND (assigned_to IS NULL OR assigned_to = $1) \
                 ORDER BY priority, due_at, created_at, id LIMIT 1 FOR UPDATE SKIP LOCKED), \
             c AS (UPDATE tasks t SET state = 'claimed', claimed_by = $1, lease_until = $2, token = t.token + 1 \
                 FROM next WHERE t.id = next.id RETURNING t.*) ",
            $select
        )
    };
}

mod claims;

/// Whether a failed statement certainly wrote nothing: the server refused it (and rolled its
/// transaction back), or it never reached the server.
fn nothing_written(e: &StoreError) -> bool {
    matches!(
        e,
        StoreError::Database(
            sqlx::Error::Database(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed
        )
    )
}

impl PostgresStore {
    /// Put the tasks whose lease ran out back among the open ones, at most once a second per
    /// node.
    async fn sweep_expired_leases(&self, now: DateTime<Utc>) -> Result<()> {
        // Claims read only open tasks, through an index that a claim moves the row out of, so
        // it stays small. Tasks whose lease ran out are first put back among them (at most once
        // a second per node): scanning for them at every claim would walk, each time, over every
        // claimed row version not yet vacuumed.
        let now_us = sql::micros(now);
        let last = self.last_sweep.load(std::sync::atomic::Ordering::Relaxed);
        if now_us.saturating_sub(last) >= SWEEP_INTERVAL_MICROS
            && self
                .last_sweep
                .compare_exchange(
                    last,
                    now_us,
                    std::sync::atomic::Ordering::Relaxed,
                    std::sync::atomic::Ordering::Relaxed,
                )
                .is_ok()
        {
            sqlx::query(
                "UPDATE tasks SET state = 'open', claimed_by = NULL, lease_until = NULL \
                 WHERE lease_until <= $1 AND state = 'claimed'",
            )
            .bind(now_us)
            .execute(&self.pool)
            .await?;
        }
        Ok(())
    }
}

fn instance_row(r: &PgRow) -> Result<sql::InstanceRow> {
    Ok(sql::InstanceRow {
        id: r.try_get("id")?,
        definition_id: r.try_get("definition_id")?,
        process: r.try_get("process")?,
        stage: r.try_get("stage")?,
        fields: r.try_get("fields")?,
        priority: r.try_get("priority")?,
        queue: r.try_get("queue")?,
        version: r.try_get("version")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        created_by: r.try_get("created_by")?,
    })
}

/// An instance and its open task, from a row of `i.*` and the task as JSON in `task`.
fn instance_and_task(catalog: &dyn Definitions, row: &PgRow) -> Result<InstanceAndTask> {
    let inst = sql::decode_instance(catalog, instance_row(row)?)?;
    let task: Option<Json> = row.try_get("task")?;
    let task = task.map(|t| sql::task_from_json(&t)).transpose()?;
    Ok((Arc::new(inst), task))
}

/// The history of an instance as [`HISTORY_JSON`] gives it (`None` when it has no events).
fn history_from_json(
    catalog: &dyn Definitions,
    def: Arc<ProcessVersion>,
    instance: InstanceId,
    history: Option<Json>,
) -> Result<Vec<Event>> {
    let corrupt = |what: String| StoreError::Corrupt(format!("instance {instance} event {what}"));
    let mut events = Vec::new();
    let list = match history {
        Some(Json::Array(list)) => list,
        _ => Vec::new(),
    };
    for mut e in list {
        let field = |name: &str| {
            e.get(name)
                .ok_or_else(|| corrupt(format!("without `{name}`")))
        };
        let text = |name: &str| -> Result<String> {
            field(name)?
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| corrupt(format!("`{name}` is not text")))
        };
        let seq = field("seq")?
            .as_i64()
            .ok_or_else(|| corrupt("without a number".into()))?;
        let at = DateTime::parse_from_rfc3339(&text("at")?)
            .map_err(|err| corrupt(format!("{seq} time: {err}")))?
            .with_timezone(&Utc);
        let reason = field("reason")?.as_str().map(str::to_string);
        events.push(sql::StoredEvent {
            seq,
            at,
            actor: text("actor")?,
            kind: text("kind")?,
            data: e.get_mut("data").map(Json::take).unwrap_or_default(),
            reason,
        });
    }
    sql::decode_history(catalog, def, instance.0, events)
}

/// An instance's (`i`) events as one JSON array, in order, in `history`.
const HISTORY_JSON: &str =
    "(SELECT json_agg(json_build_object('seq', e.seq, 'at', e.at, 'actor', e.actor, \
     'kind', e.kind, 'data', e.data, 'reason', e.reason) ORDER BY e.seq) \
     FROM events e WHERE e.instance_id = i.id) AS history";

/// Instances (`i`) with their task that is not done beside them, as JSON in `task`.
const INSTANCES_WITH_TASK: &str =
    "SELECT i.*, (SELECT row_to_json(t) FROM tasks t WHERE t.instance_id = i.id AND t.state <> 'done') AS task \
     FROM instances i";

/// Rows a claim may take: open, or claimed with an expired lease ($now is the parameter).
const CLAIMABLE: &str = "(state = 'open' OR (state = 'claimed' AND lease_until <= $3))";

impl Store for PostgresStore {
    async fn load_definitions(&self) -> Result<StoredDefinitions> {
        let rows = sqlx::query("SELECT * FROM definitions ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        let mut defs = Vec::with_capacity(rows.len());
        for r in rows {
            let version: i32 = r.try_get("version")?;
            defs.push(StoredDefinition {
                id: DefinitionId(r.try_get("id")?),
                process: r.try_get("process")?,
                version: version as u32,
                hash: r.try_get("hash")?,
                project_hash: r.try_get("project_hash")?,
                published_at: r.try_get("published_at")?,
            });
        }
        let rows = sqlx::query("SELECT hash, source FROM projects")
            .fetch_all(&self.pool)
            .await?;
        let mut projects = Vec::with_capacity(rows.len());
        for r in rows {
            let source: Json = r.try_get("source")?;
            let source: ProjectSource = serde_json::from_value(source)
                .map_err(|e| StoreError::Corrupt(format!("project source: {e}")))?;
            projects.push((r.try_get("hash")?, source));
        }
        Ok((defs, projects))
    }

    async fn save_definitions(
        &self,
        project_hash: &str,
        source: &ProjectSource,
        definitions: &[NewDefinition],
        at: DateTime<Utc>,
    ) -> Result<Vec<DefinitionId>> {
        let source =
            serde_json::to_value(source).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT INTO projects (hash, source, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
            .bind(project_hash)
            .bind(&source)
            .bind(at)
            .execute(&mut *tx)
            .await?;
        let mut ids = Vec::with_capacity(definitions.len());
        for d in definitions {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO definitions (process, version, hash, project_hash, published_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
            )
            .bind(&d.process)
            .bind(d.version as i32)
            .bind(&d.hash)
            .bind(project_hash)
            .bind(at)
            .fetch_one(&mut *tx)
            .await?;
            ids.push(DefinitionId(id));
        }
        tx.commit().await?;
        Ok(ids)
    }

    async fn create(&self, new: NewInstance) -> Result<Created> {
        let rows = sql::new_instance_rows(&*self.catalog, new)?;
        if rows.parent.is_none() {
            return self.creator.create(rows).await;
        }
        let mut tx = self.pool.begin().await?;
        let created = create(&mut tx, rows).await?;
        tx.commit().await?;
        Ok(created)
    }

    async fn instance(&self, id: InstanceId) -> Result<Option<Instance>> {
        let row = sqlx::query("SELECT * FROM instances WHERE id = $1")
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(r) => Ok(Some(sql::decode_instance(
                &*self.catalog,
                instance_row(&r)?,
            )?)),
            None => Ok(None),
        }
    }

    async fn instance_with_task(
        &self,
        id: InstanceId,
    ) -> Result<Option<(std::sync::Arc<Instance>, Option<Task>)>> {
        // One round trip, shared with the reads asked for meanwhile: the instance and its open
        // task (if any) as JSON beside it.
        self.reader.instance_with_task(id).await
    }

    async fn instance_with_task_and_history(
        &self,
        id: InstanceId,
    ) -> Result<Option<(InstanceAndTask, Vec<Event>)>> {
        let row = sqlx::query(&format!(
            "SELECT i.*, (SELECT row_to_json(t) FROM tasks t WHERE t.instance_id = i.id AND t.state <> 'done') AS task, \
                    {HISTORY_JSON} FROM instances i WHERE i.id = $1"
        ))
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let found = instance_and_task(&*self.catalog, &row)?;
        let def = sql::definition(&*self.catalog, found.0.definition)?;
        let history: Option<Json> = row.try_get("history")?;
        let events = history_from_json(&*self.catalog, def, found.0.id, history)?;
        Ok(Some((found, events)))
    }

    fn reads_are_round_trips(&self) -> bool {
        true
    }

    async fn list_instances(
        &self,
        filter: &InstanceFilter,
        limit: u32,
    ) -> Result<Vec<InstanceAndTask>> {
        // One statement, so one snapshot; each open task is one lookup in
        // `tasks_one_open_per_instance`.
        let (query, params) =
            sql::list_query(INSTANCES_WITH_TASK, filter, limit, |n| format!("${n}"));
        let mut q = sqlx::query(&query);
        for p in params {
            q = match p {
                sql::ListParam::Text(s) => q.bind(s),
                sql::ListParam::Int(i) => q.bind(i),
            };
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| instance_and_task(&*self.catalog, r))
            .collect()
    }

    async fn task_with_instance(&self, task: TaskId) -> Result<Option<TaskAndInstance>> {
        let row = sqlx::query(
            "SELECT i.*, row_to_json(t) AS the_task, \
                    (SELECT row_to_json(o) FROM tasks o WHERE o.instance_id = i.id AND o.state <> 'done') AS task \
             FROM tasks t JOIN instances i ON i.id = t.instance_id WHERE t.id = $1",
        )
        .bind(task.0)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let inst = sql::decode_instance(&*self.catalog, instance_row(&row)?)?;
        let the_task: Json = row.try_get("the_task")?;
        let open: Option<Json> = row.try_get("task")?;
        Ok(Some((
            sql::task_from_json(&the_task)?,
            Arc::new(inst),
            open.map(|t| sql::task_from_json(&t)).transpose()?,
        )))
    }

    async fn commit(&self, change: Change) -> Result<Committed> {
        let rows = sql::change_rows(&*self.catalog, change)?;
        if !rows.is_uncommon() {
            return self.committer.commit(rows).await;
        }
        let mut tx = self.pool.begin().await?;
        lock_tasks_first(&mut tx, &rows).await?;
        lock_in_order(&mut tx, &rows).await?;
        let spawned = commit(&mut tx, rows).await?;
        tx.commit().await?;
        Ok(spawned)
    }

    async fn pending_ballots(&self, user: &str, limit: u32) -> Result<Vec<PendingBallot>> {
        let rows = sqlx::query(
            "SELECT instance_id, approver, on_behalf_of, level, process, stage, opened_at \
             FROM ballots WHERE approver = $1 ORDER BY opened_at, instance_id LIMIT $2",
        )
        .bind(user)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                sql::ballot_from_columns(
                    r.try_get("instance_id")?,
                    r.try_get("approver")?,
                    r.try_get("on_behalf_of")?,
                    i64::from(r.try_get::<i32, _>("level")?),
                    r.try_get("process")?,
                    r.try_get("stage")?,
                    r.try_get("opened_at")?,
                )
            })
            .collect()
    }

    async fn history(&self, id: InstanceId) -> Result<Vec<Event>> {
        // One round trip: the events with their instance's definition beside them.
        let rows = sqlx::query(
            "SELECT e.*, i.definition_id FROM events e JOIN instances i ON i.id = e.instance_id \
             WHERE e.instance_id = $1 ORDER BY e.seq",
        )
        .bind(id.0)
        .fetch_all(&self.pool)
        .await?;
        let Some(first) = rows.first() else {
            return Ok(Vec::new());
        };
        let definition = DefinitionId(first.try_get("definition_id")?);
        let def = sql::definition(&*self.catalog, definition)?;
        let mut events = Vec::with_capacity(rows.len());
        for r in rows {
            events.push(sql::StoredEvent {
                seq: r.try_get("seq")?,
                at: r.try_get("at")?,
                actor: r.try_get("actor")?,
                kind: r.try_get("kind")?,
                data: r.try_get("data")?,
                reason: r.try_get("reason")?,
            });
        }
        sql::decode_history(&*self.catalog, def, id.0, events)
    }

    async fn links(&self, id: InstanceId) -> Result<Vec<Link>> {
        let rows = sqlx::query("SELECT * FROM links WHERE from_id = $1 OR to_id = $1 ORDER BY created_at, from_id, to_id")
            .bind(id.0)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Link {
                    from: InstanceId(r.try_get("from_id")?),
                    to: InstanceId(r.try_get("to_id")?),
                    kind: r.try_get("kind")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    async fn task(&self, id: TaskId) -> Result<Option<Task>> {
        let mut conn = self.pool.acquire().await?;
        task_by_id(&mut conn, id).await
    }

    async fn queue_tasks(&self, queue: &str, limit: u32) -> Result<Vec<Task>> {
        let rows = sqlx::query(
            "SELECT * FROM tasks WHERE queue = $1 AND state <> 'done' ORDER BY priority, due_at, created_at, id LIMIT $2",
        )
        .bind(queue)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(task_from_row).collect()
    }

    async fn queue_counts(&self) -> Result<Vec<(String, u64)>> {
        let rows = sqlx::query("SELECT queue, COUNT(*) AS n FROM tasks WHERE state <> 'done' GROUP BY queue ORDER BY queue")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("queue")?, r.try_get::<i64, _>("n")? as u64)))
            .collect()
    }

    async fn claim_next(
        &self,
        queue: &str,
        agent: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<Task>> {
        self.sweep_expired_leases(now).await?;
        let row: Option<PgRow> = sqlx::query(claim_next_then!("SELECT * FROM c"))
            .bind(agent)
            .bind(sql::micros(lease_until))
            .bind(queue)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| task_from_row(&r)).transpose()
    }

    async fn claim_next_with_instance(
        &self,
        queue: &str,
        agent: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<(Task, Arc<Instance>)>> {
        self.sweep_expired_leases(now).await?;
        self.claimer
            .claim_next(queue, agent, sql::micros(lease_until))
            .await
    }

    async fn claim(
        &self,
        task: TaskId,
        agent: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Task> {
        let sql = format!(
            "UPDATE tasks SET state = 'claimed', claimed_by = $1, lease_until = $2, token = token + 1 \
             WHERE id = $4 AND state <> 'done' \
               AND ((({CLAIMABLE}) AND (assigned_to IS NULL OR assigned_to = $1)) OR claimed_by = $1) \
             RETURNING *"
        );
        let mut conn = self.pool.acquire().await?;
        let row: Option<PgRow> = sqlx::query(&sql)
            .bind(agent)
            .bind(sql::micros(lease_until))
            .bind(sql::micros(now))
            .bind(task.0)
            .fetch_optional(&mut *conn)
            .await?;
        if let Some(r) = row {
            return task_from_row(&r);
        }
        let now = task_by_id(&mut conn, task).await?;
        Err(StoreError::claim_refused(task, now.as_ref()))
    }

    async fn renew(
        &self,
        task: TaskId,
        token: i64,
        agent: &str,
        _now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Task> {
        let mut conn = self.pool.acquire().await?;
        let row: Option<PgRow> = sqlx::query(
            "UPDATE tasks SET lease_until = $1 WHERE id = $2 AND state = 'claimed' AND token = $3 AND claimed_by = $4 RETURNING *",
        )
        .bind(sql::micros(lease_until))
        .bind(task.0)
        .bind(token)
        .bind(agent)
        .fetch_optional(&mut *conn)
        .await?;
        match row {
            Some(r) => task_from_row(&r),
            None => Err(StoreError::lease_refused(
                task,
                task_by_id(&mut conn, task).await?.as_ref(),
            )),
        }
    }

    async fn release(&self, task: TaskId, token: i64, agent: &str) -> Result<Task> {
        let mut conn = self.pool.acquire().await?;
        let released = sqlx::query(
            "UPDATE tasks SET state = 'open', claimed_by = NULL, lease_until = NULL \
             WHERE id = $1 AND state = 'claimed' AND token = $2 AND claimed_by = $3 RETURNING *",
        )
        .bind(task.0)
        .bind(token)
        .bind(agent)
        .fetch_optional(&mut *conn)
        .await?;
        match released {
            Some(row) => task_from_row(&row),
            None => Err(StoreError::lease_refused(
                task,
                task_by_id(&mut conn, task).await?.as_ref(),
            )),
        }
    }

    async fn set_agent(
        &self,
        name: &str,
        roles: &[String],
        active: bool,
        at: DateTime<Utc>,
    ) -> Result<Vec<Task>> {
        let roles = serde_json::to_value(roles).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO agents (name, roles, active, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (name) DO UPDATE SET roles = excluded.roles, active = excluded.active, updated_at = excluded.updated_at",
        )
        .bind(name)
        .bind(&roles)
        .bind(active)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        let returned = match active {
            true => Vec::new(),
            false => sqlx::query(
                "UPDATE tasks SET assigned_to = NULL WHERE assigned_to = $1 AND state = 'open' \
                 RETURNING *",
            )
            .bind(name)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(task_from_row)
            .collect::<Result<Vec<_>>>()?,
        };
        tx.commit().await?;
        Ok(returned)
    }

    async fn active_agents(&self) -> Result<Vec<(String, Vec<String>)>> {
        let rows = sqlx::query("SELECT name, roles FROM agents WHERE active ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let roles: Json = r.try_get("roles")?;
                let roles = serde_json::from_value(roles)
                    .map_err(|e| StoreError::Corrupt(format!("agent roles: {e}")))?;
                Ok((r.try_get("name")?, roles))
            })
            .collect()
    }

    async fn agent_loads(&self, agents: &[&str]) -> Result<Vec<(String, u64)>> {
        // A claimed task is its claimant's, an open one its assignee's (an open task has no
        // claimant: releasing and the lease sweep clear it). Claimed tasks are read through
        // the index of leases (0006), which a task has exactly while it is claimed; open pushed
        // ones through their own (0007).
        let rows = sqlx::query(
            "SELECT agent, COUNT(*) AS n FROM ( \
                 SELECT claimed_by AS agent FROM tasks \
                 WHERE lease_until IS NOT NULL AND state = 'claimed' AND claimed_by = ANY($1) \
                 UNION ALL \
                 SELECT assigned_to FROM tasks WHERE state = 'open' AND assigned_to = ANY($1) \
             ) held GROUP BY agent ORDER BY agent",
        )
        .bind(agents)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("agent")?, r.try_get::<i64, _>("n")? as u64)))
            .collect()
    }

    async fn last_assignee(&self, queue: &str) -> Result<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT assigned_to FROM tasks WHERE queue = $1 AND assigned_to IS NOT NULL ORDER BY id DESC LIMIT 1",
        )
        .bind(queue)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn claim_wakeups(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<InstanceId>> {
        // Rows another node is claiming are skipped, not waited for.
        let mut due: Vec<(i64, i64)> = sqlx::query_as(
            "UPDATE wakeups w SET fire_at = $1 \
             FROM (SELECT instance_id FROM wakeups WHERE fire_at <= $2 ORDER BY fire_at LIMIT $3 FOR UPDATE SKIP LOCKED) d \
             WHERE w.instance_id = d.instance_id RETURNING w.due_at, w.instance_id",
        )
        .bind(sql::micros(lease_until))
        .bind(sql::micros(now))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        due.sort_unstable();
        Ok(due.into_iter().map(|(_, id)| InstanceId(id)).collect())
    }

    async fn next_wakeup_at(&self) -> Result<Option<DateTime<Utc>>> {
        let at: Option<i64> = sqlx::query_scalar("SELECT MIN(fire_at) FROM wakeups")
            .fetch_one(&self.pool)
            .await?;
        at.map(sql::from_micros).transpose()
    }

    async fn wakeup(&self, instance: InstanceId) -> Result<Option<DateTime<Utc>>> {
        let at: Option<i64> =
            sqlx::query_scalar("SELECT due_at FROM wakeups WHERE instance_id = $1")
                .bind(instance.0)
                .fetch_optional(&self.pool)
                .await?;
        at.map(sql::from_micros).transpose()
    }

    async fn notifications(
        &self,
        filter: &NotificationFilter,
        limit: u32,
        after_id: Option<i64>,
    ) -> Result<Vec<Notification>> {
        let sql = format!(
            "SELECT * FROM notifications WHERE {} ORDER BY id LIMIT $6",
            sql::notification_conditions(1, true)
        );
        let rows = sqlx::query(&sql)
            .bind(&filter.role)
            .bind(filter.instance.map(|i| i.0))
            .bind(filter.undelivered)
            .bind(filter.deliverable_at.map(sql::micros))
            .bind(after_id.unwrap_or(0))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(notification_from_row).collect()
    }

    async fn claim_deliveries(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Notification>> {
        // SKIP LOCKED: deliverers on other nodes claiming at once take other rows.
        let sql = format!(
            "UPDATE notifications SET claimed_until = $1, attempts = attempts + 1 \
             WHERE id IN (SELECT id FROM notifications WHERE {} ORDER BY id LIMIT $3 \
             FOR UPDATE SKIP LOCKED) RETURNING *",
            sql::CLAIMABLE_NOTIFICATIONS.replace("{now}", "$2")
        );
        let rows = sqlx::query(&sql)
            .bind(sql::micros(lease_until))
            .bind(sql::micros(now))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        let mut claimed: Vec<Notification> = rows
            .iter()
            .map(notification_from_row)
            .collect::<Result<_>>()?;
        claimed.sort_by_key(|n| n.id);
        Ok(claimed)
    }

    async fn delivery_failed(
        &self,
        id: i64,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE notifications SET last_error = $2, \
             claimed_until = COALESCE($3, claimed_until), \
             dead_at = CASE WHEN $3 IS NULL THEN $4 ELSE dead_at END \
             WHERE id = $1 AND delivered_at IS NULL",
        )
        .bind(id)
        .bind(error)
        .bind(retry_at.map(sql::micros))
        .bind(sql::micros(now))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn mark_delivered(&self, ids: &[i64], at: DateTime<Utc>) -> Result<u64> {
        Ok(sqlx::query(
            "UPDATE notifications SET delivered_at = $1 WHERE id = ANY($2) AND delivered_at IS NULL",
        )
        .bind(sql::micros(at))
        .bind(ids)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    fn is_shared(&self) -> bool {
        true
    }
}
