//! The embedded store: SQLite in WAL mode with `synchronous = FULL`, so every acknowledged
//! change is on disk.
//!
//! Writes go through one writer task that owns the only writing connection and commits in
//! groups: it takes every write request waiting (up to a batch size), runs each inside its own
//! savepoint (a refused request rolls back to its savepoint and fails alone), commits the
//! batch with one fsync, and only then answers each request. A change is acknowledged only
//! after the commit that made it durable; if that commit fails, every request in the batch
//! gets the error and none of them was applied. Reads use a separate pool of connections,
//! which WAL lets run beside the writer.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value as Json;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous};
use sqlx::{Connection, Row, SqlitePool};
use tokio::sync::{mpsc, oneshot};

use super::sql::{self, ChangeRows, NewInstanceRows};
use super::{Committed, NewDefinition, Result, Store, StoreError, StoredDefinition};
use crate::runtime::catalog::{Catalog, DefinitionId, ProjectSource};
use crate::runtime::types::*;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Most requests committed together.
const MAX_BATCH: usize = 256;

/// How durable a commit is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Durability {
    /// fsync at every commit: an acknowledged change survives power loss (the default).
    #[default]
    Full,
    /// WAL `synchronous = NORMAL`: survives a crash of the process, not of the machine.
    Normal,
}

pub struct SqliteStore {
    reader: SqlitePool,
    writer: mpsc::Sender<Job>,
    catalog: Arc<Catalog>,
}

type Reply<T> = oneshot::Sender<Result<T>>;

enum Job {
    SaveDefinitions {
        project_hash: String,
        source: String,
        definitions: Vec<NewDefinition>,
        at: DateTime<Utc>,
        reply: Reply<Vec<DefinitionId>>,
    },
    Create(NewInstanceRows, Reply<InstanceId>),
    Commit(ChangeRows, Reply<Committed>),
    ClaimNext {
        queue: String,
        agent: String,
        now: i64,
        lease_until: i64,
        reply: Reply<Option<Task>>,
    },
    Claim {
        task: TaskId,
        agent: String,
        now: i64,
        lease_until: i64,
        reply: Reply<Task>,
    },
    Renew {
        task: TaskId,
        token: i64,
        agent: String,
        lease_until: i64,
        reply: Reply<Task>,
    },
    Release {
        task: TaskId,
        token: i64,
        agent: String,
        reply: Reply<()>,
    },
    SetAgent {
        name: String,
        roles: String,
        active: bool,
        at: DateTime<Utc>,
        reply: Reply<()>,
    },
}

/// A job's outcome, held until its batch commits.
enum Done {
    Ids(Reply<Vec<DefinitionId>>, Result<Vec<DefinitionId>>),
    Instance(Reply<InstanceId>, Result<InstanceId>),
    Committed(Reply<Committed>, Result<Committed>),
    MaybeTask(Reply<Option<Task>>, Result<Option<Task>>),
    Task(Reply<Task>, Result<Task>),
    Unit(Reply<()>, Result<()>),
}

impl Done {
    fn is_err(&self) -> bool {
        match self {
            Done::Ids(_, r) => r.is_err(),
            Done::Instance(_, r) => r.is_err(),
            Done::Committed(_, r) => r.is_err(),
            Done::MaybeTask(_, r) => r.is_err(),
            Done::Task(_, r) => r.is_err(),
            Done::Unit(_, r) => r.is_err(),
        }
    }

    /// Answer the request; if the batch failed to commit, with that failure instead.
    fn send(self, failed: Option<&str>) {
        fn pick<T>(r: Result<T>, failed: Option<&str>) -> Result<T> {
            match failed {
                Some(e) => Err(StoreError::Unavailable(e.to_string())),
                None => r,
            }
        }
        // A requester that gave up waiting is not an error.
        match self {
            Done::Ids(tx, r) => drop(tx.send(pick(r, failed))),
            Done::Instance(tx, r) => drop(tx.send(pick(r, failed))),
            Done::Committed(tx, r) => drop(tx.send(pick(r, failed))),
            Done::MaybeTask(tx, r) => drop(tx.send(pick(r, failed))),
            Done::Task(tx, r) => drop(tx.send(pick(r, failed))),
            Done::Unit(tx, r) => drop(tx.send(pick(r, failed))),
        }
    }
}

impl SqliteStore {
    /// Open (creating if needed) the database file and bring its schema up to date.
    pub async fn open(path: impl AsRef<Path>, catalog: Arc<Catalog>) -> Result<Self> {
        Self::open_with(path, catalog, Durability::Full).await
    }

    pub async fn open_with(path: impl AsRef<Path>, catalog: Arc<Catalog>, durability: Durability) -> Result<Self> {
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path.as_ref())
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(match durability {
                Durability::Full => SqliteSynchronous::Full,
                Durability::Normal => SqliteSynchronous::Normal,
            })
            .foreign_keys(true)
            .busy_timeout(std::time::Duration::from_secs(10));
        let mut conn = SqliteConnection::connect_with(&options).await?;
        MIGRATOR.run(&mut conn).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options.clone().read_only(true))
            .await?;
        let (tx, rx) = mpsc::channel(4096);
        tokio::spawn(write_loop(conn, rx));
        Ok(SqliteStore {
            reader,
            writer: tx,
            catalog,
        })
    }

    async fn write<T>(&self, make: impl FnOnce(Reply<T>) -> Job) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        self.writer
            .send(make(tx))
            .await
            .map_err(|_| StoreError::Unavailable("the writer has stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Unavailable("the writer has stopped".into()))?
    }
}

async fn exec(conn: &mut SqliteConnection, sql: &str) -> sqlx::Result<()> {
    sqlx::query(sql).execute(&mut *conn).await.map(drop)
}

async fn write_loop(mut conn: SqliteConnection, mut rx: mpsc::Receiver<Job>) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.recv().await {
        jobs.push(first);
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let mut done = Vec::with_capacity(jobs.len());
        let begun = exec(&mut conn, "BEGIN IMMEDIATE").await;
        if let Err(e) = begun {
            let msg = e.to_string();
            for job in jobs.drain(..) {
                fail(job, &msg);
            }
            continue;
        }
        for job in jobs.drain(..) {
            let savepoint = exec(&mut conn, "SAVEPOINT job").await;
            let outcome = run(&mut conn, job).await;
            let rolled_back = if outcome.is_err() || savepoint.is_err() {
                exec(&mut conn, "ROLLBACK TO job").await
            } else {
                Ok(())
            };
            let released = exec(&mut conn, "RELEASE job").await;
            if let Err(e) = savepoint.and(rolled_back).and(released) {
                // The transaction's state is unknown: abandon the whole batch.
                let _ = exec(&mut conn, "ROLLBACK").await;
                let msg = e.to_string();
                outcome.send(Some(&msg));
                for d in done.drain(..) {
                    Done::send(d, Some(&msg));
                }
                break;
            }
            done.push(outcome);
        }
        if done.is_empty() {
            continue;
        }
        match exec(&mut conn, "COMMIT").await {
            Ok(()) => done.into_iter().for_each(|d| d.send(None)),
            Err(e) => {
                let _ = exec(&mut conn, "ROLLBACK").await;
                let msg = e.to_string();
                done.into_iter().for_each(|d| d.send(Some(&msg)));
            }
        }
    }
}

fn fail(job: Job, msg: &str) {
    let err = || StoreError::Unavailable(msg.to_string());
    match job {
        Job::SaveDefinitions { reply, .. } => drop(reply.send(Err(err()))),
        Job::Create(_, reply) => drop(reply.send(Err(err()))),
        Job::Commit(_, reply) => drop(reply.send(Err(err()))),
        Job::ClaimNext { reply, .. } => drop(reply.send(Err(err()))),
        Job::Claim { reply, .. } => drop(reply.send(Err(err()))),
        Job::Renew { reply, .. } => drop(reply.send(Err(err()))),
        Job::Release { reply, .. } => drop(reply.send(Err(err()))),
        Job::SetAgent { reply, .. } => drop(reply.send(Err(err()))),
    }
}

async fn run(conn: &mut SqliteConnection, job: Job) -> Done {
    match job {
        Job::SaveDefinitions {
            project_hash,
            source,
            definitions,
            at,
            reply,
        } => Done::Ids(reply, save_definitions(conn, &project_hash, &source, &definitions, at).await),
        Job::Create(rows, reply) => Done::Instance(reply, create(conn, rows).await),
        Job::Commit(rows, reply) => Done::Committed(reply, commit(conn, rows).await),
        Job::ClaimNext {
            queue,
            agent,
            now,
            lease_until,
            reply,
        } => Done::MaybeTask(reply, claim_next(conn, &queue, &agent, now, lease_until).await),
        Job::Claim {
            task,
            agent,
            now,
            lease_until,
            reply,
        } => Done::Task(reply, claim(conn, task, &agent, now, lease_until).await),
        Job::Renew {
            task,
            token,
            agent,
            lease_until,
            reply,
        } => Done::Task(reply, renew(conn, task, token, &agent, lease_until).await),
        Job::Release {
            task,
            token,
            agent,
            reply,
        } => Done::Unit(reply, release(conn, task, token, &agent).await),
        Job::SetAgent {
            name,
            roles,
            active,
            at,
            reply,
        } => Done::Unit(reply, set_agent(conn, &name, &roles, active, at).await),
    }
}

async fn save_definitions(
    conn: &mut SqliteConnection,
    project_hash: &str,
    source: &str,
    definitions: &[NewDefinition],
    at: DateTime<Utc>,
) -> Result<Vec<DefinitionId>> {
    sqlx::query("INSERT INTO projects (hash, source, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING")
        .bind(project_hash)
        .bind(source)
        .bind(at)
        .execute(&mut *conn)
        .await?;
    let mut ids = Vec::with_capacity(definitions.len());
    for d in definitions {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO definitions (process, version, hash, project_hash, published_at) VALUES (?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(&d.process)
        .bind(d.version as i64)
        .bind(&d.hash)
        .bind(project_hash)
        .bind(at)
        .fetch_one(&mut *conn)
        .await?;
        ids.push(DefinitionId(id));
    }
    Ok(ids)
}

async fn insert_events(conn: &mut SqliteConnection, instance: i64, events: &[sql::EventRow]) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    // One statement for all of a change's events.
    let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new("INSERT INTO events (instance_id, seq, at, actor, kind, data, reason) ");
    q.push_values(events, |mut b, e| {
        b.push_bind(instance)
            .push_bind(e.seq)
            .push_bind(e.at)
            .push_bind(&e.actor)
            .push_bind(e.kind)
            .push_bind(e.data.to_string())
            .push_bind(&e.reason);
    });
    q.build().execute(&mut *conn).await?;
    Ok(())
}

async fn insert_task(conn: &mut SqliteConnection, instance: i64, t: &NewTask, at: DateTime<Utc>) -> Result<Task> {
    let row = sqlx::query(
        "INSERT INTO tasks (instance_id, process, stage, queue, priority, due_at, created_at, state, assigned_to) \
         VALUES (?, ?, ?, ?, ?, ?, ?, 'open', ?) RETURNING *",
    )
    .bind(instance)
    .bind(&t.process)
    .bind(&t.stage)
    .bind(&t.queue)
    .bind(sql::priority_column(t.priority))
    .bind(sql::due_column(t.due_at))
    .bind(sql::micros(at))
    .bind(&t.assigned_to)
    .fetch_one(&mut *conn)
    .await?;
    sql::task_from_row(&row)
}

async fn create(conn: &mut SqliteConnection, rows: NewInstanceRows) -> Result<InstanceId> {
    let i = &rows.instance;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO instances (definition_id, process, stage, fields, priority, queue, version, created_at, updated_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(i.definition_id)
    .bind(&i.process)
    .bind(&i.stage)
    .bind(i.fields.to_string())
    .bind(&i.priority)
    .bind(&i.queue)
    .bind(i.version)
    .bind(i.created_at)
    .bind(i.updated_at)
    .fetch_one(&mut *conn)
    .await?;
    insert_events(conn, id, &rows.events).await?;
    if let Some(t) = &rows.task {
        insert_task(conn, id, t, i.created_at).await?;
    }
    if let Some((parent, kind)) = &rows.parent {
        sqlx::query("INSERT INTO links (from_id, to_id, kind, created_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING")
            .bind(parent.0)
            .bind(id)
            .bind(kind)
            .bind(i.created_at)
            .execute(&mut *conn)
            .await?;
    }
    Ok(InstanceId(id))
}

async fn commit(conn: &mut SqliteConnection, rows: ChangeRows) -> Result<Committed> {
    let i = &rows.instance;
    let updated = sqlx::query(
        "UPDATE instances SET stage = ?, fields = ?, priority = ?, queue = ?, version = ?, updated_at = ? \
         WHERE id = ? AND version = ?",
    )
    .bind(&i.stage)
    .bind(i.fields.to_string())
    .bind(&i.priority)
    .bind(&i.queue)
    .bind(i.version)
    .bind(i.updated_at)
    .bind(i.id)
    .bind(rows.expected_version)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if updated == 0 {
        let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM instances WHERE id = ?")
            .bind(i.id)
            .fetch_optional(&mut *conn)
            .await?;
        return Err(match exists {
            Some(_) => StoreError::Conflict {
                id: InstanceId(i.id),
                expected: rows.expected_version,
            },
            None => StoreError::NoInstance(InstanceId(i.id)),
        });
    }
    if let Some(close) = &rows.close_task {
        close_task(conn, close).await?;
    }
    let mut task = None;
    if let Some(u) = &rows.update_task {
        let row = sqlx::query("UPDATE tasks SET assigned_to = CASE WHEN queue = ?1 THEN assigned_to END, queue = ?1, priority = ?2 \
             WHERE id = ?3 AND state <> 'done' RETURNING *")
            .bind(&u.queue)
            .bind(sql::priority_column(u.priority))
            .bind(u.task.0)
            .fetch_optional(&mut *conn)
            .await?;
        task = row.map(|r| sql::task_from_row(&r)).transpose()?;
    }
    if let Some(t) = &rows.new_task {
        task = Some(insert_task(conn, i.id, t, i.updated_at).await?);
    }
    insert_events(conn, i.id, &rows.events).await?;
    for l in &rows.links {
        sqlx::query("INSERT INTO links (from_id, to_id, kind, created_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING")
            .bind(l.from.0)
            .bind(l.to.0)
            .bind(&l.kind)
            .bind(l.created_at)
            .execute(&mut *conn)
            .await?;
    }
    let mut spawned = Vec::with_capacity(rows.spawns.len());
    for s in rows.spawns {
        spawned.push(Box::pin(create(conn, s)).await?);
    }
    Ok(Committed { spawned, task })
}

async fn close_task(conn: &mut SqliteConnection, close: &CloseTask) -> Result<()> {
    let closed = match &close.fence {
        Fence::Token { token, agent } => sqlx::query(
            "UPDATE tasks SET state = 'done', lease_until = NULL \
             WHERE id = ? AND state = 'claimed' AND token = ? AND claimed_by = ?",
        )
        .bind(close.task.0)
        .bind(token)
        .bind(agent)
        .execute(&mut *conn)
        .await?
        .rows_affected(),
        Fence::NotClaimedByOther { actor, now } => sqlx::query(
            "UPDATE tasks SET state = 'done', lease_until = NULL \
             WHERE id = ? AND state <> 'done' \
               AND NOT (state = 'claimed' AND lease_until > ? AND claimed_by <> ?)",
        )
        .bind(close.task.0)
        .bind(sql::micros(*now))
        .bind(actor)
        .execute(&mut *conn)
        .await?
        .rows_affected(),
    };
    if closed == 1 {
        return Ok(());
    }
    let row = sqlx::query("SELECT * FROM tasks WHERE id = ?")
        .bind(close.task.0)
        .fetch_optional(&mut *conn)
        .await?;
    let task = match row {
        Some(r) => sql::task_from_row(&r)?,
        None => return Err(StoreError::NoTask(close.task)),
    };
    Err(match close.fence {
        Fence::Token { .. } => StoreError::LeaseLost(close.task),
        Fence::NotClaimedByOther { .. } if task.state == TaskState::Done => StoreError::TaskDone(close.task),
        Fence::NotClaimedByOther { .. } => StoreError::Claimed {
            task: close.task,
            by: task.claimed_by.unwrap_or_default(),
        },
    })
}

const CLAIMABLE: &str = "(state = 'open' OR (state = 'claimed' AND lease_until <= ?))";

async fn claim_next(conn: &mut SqliteConnection, queue: &str, agent: &str, now: i64, lease_until: i64) -> Result<Option<Task>> {
    let sql = format!(
        "UPDATE tasks SET state = 'claimed', claimed_by = ?, lease_until = ?, token = token + 1 \
         WHERE id = (SELECT id FROM tasks WHERE queue = ? AND state <> 'done' AND {CLAIMABLE} \
                       AND (assigned_to IS NULL OR assigned_to = ?) \
                     ORDER BY priority, due_at, created_at, id LIMIT 1) \
         RETURNING *"
    );
    let row: Option<SqliteRow> = sqlx::query(&sql)
        .bind(agent)
        .bind(lease_until)
        .bind(queue)
        .bind(now)
        .bind(agent)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(|r| sql::task_from_row(&r)).transpose()
}

async fn claim(conn: &mut SqliteConnection, task: TaskId, agent: &str, now: i64, lease_until: i64) -> Result<Task> {
    let sql = format!(
        "UPDATE tasks SET state = 'claimed', claimed_by = ?, lease_until = ?, token = token + 1 \
         WHERE id = ? AND state <> 'done' \
           AND ((({CLAIMABLE}) AND (assigned_to IS NULL OR assigned_to = ?)) OR claimed_by = ?) \
         RETURNING *"
    );
    let row: Option<SqliteRow> = sqlx::query(&sql)
        .bind(agent)
        .bind(lease_until)
        .bind(task.0)
        .bind(now)
        .bind(agent)
        .bind(agent)
        .fetch_optional(&mut *conn)
        .await?;
    if let Some(r) = row {
        return sql::task_from_row(&r);
    }
    let current = sqlx::query("SELECT * FROM tasks WHERE id = ?")
        .bind(task.0)
        .fetch_optional(&mut *conn)
        .await?;
    Err(match current {
        None => StoreError::NoTask(task),
        Some(r) => {
            let t = sql::task_from_row(&r)?;
            if t.state == TaskState::Done {
                StoreError::TaskDone(task)
            } else {
                StoreError::Claimed {
                    task,
                    by: t.claimed_by.or(t.assigned_to).unwrap_or_default(),
                }
            }
        }
    })
}

async fn renew(conn: &mut SqliteConnection, task: TaskId, token: i64, agent: &str, lease_until: i64) -> Result<Task> {
    let row: Option<SqliteRow> = sqlx::query(
        "UPDATE tasks SET lease_until = ? WHERE id = ? AND state = 'claimed' AND token = ? AND claimed_by = ? RETURNING *",
    )
    .bind(lease_until)
    .bind(task.0)
    .bind(token)
    .bind(agent)
    .fetch_optional(&mut *conn)
    .await?;
    match row {
        Some(r) => sql::task_from_row(&r),
        None => Err(StoreError::LeaseLost(task)),
    }
}

async fn release(conn: &mut SqliteConnection, task: TaskId, token: i64, agent: &str) -> Result<()> {
    let n = sqlx::query(
        "UPDATE tasks SET state = 'open', claimed_by = NULL, lease_until = NULL \
         WHERE id = ? AND state = 'claimed' AND token = ? AND claimed_by = ?",
    )
    .bind(task.0)
    .bind(token)
    .bind(agent)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if n == 1 {
        Ok(())
    } else {
        Err(StoreError::LeaseLost(task))
    }
}

/// Per agent, tasks not done that they hold or are assigned.
const LOADS: &str = "SELECT COALESCE(claimed_by, assigned_to) AS agent, COUNT(*) AS n FROM tasks \
                     WHERE state <> 'done' AND COALESCE(claimed_by, assigned_to) IS NOT NULL \
                     GROUP BY COALESCE(claimed_by, assigned_to) ORDER BY agent";

async fn set_agent(conn: &mut SqliteConnection, name: &str, roles: &str, active: bool, at: DateTime<Utc>) -> Result<()> {
    sqlx::query(
        "INSERT INTO agents (name, roles, active, updated_at) VALUES (?, ?, ?, ?) \
         ON CONFLICT (name) DO UPDATE SET roles = excluded.roles, active = excluded.active, updated_at = excluded.updated_at",
    )
    .bind(name)
    .bind(roles)
    .bind(active)
    .bind(at)
    .execute(&mut *conn)
    .await?;
    if !active {
        sqlx::query("UPDATE tasks SET assigned_to = NULL WHERE assigned_to = ? AND state = 'open'")
            .bind(name)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

fn parse_json(text: &str, what: &str) -> Result<Json> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

fn instance_row(r: &SqliteRow) -> Result<sql::InstanceRow> {
    let fields: String = r.try_get("fields")?;
    Ok(sql::InstanceRow {
        id: r.try_get("id")?,
        definition_id: r.try_get("definition_id")?,
        process: r.try_get("process")?,
        stage: r.try_get("stage")?,
        fields: parse_json(&fields, "instance fields")?,
        priority: r.try_get("priority")?,
        queue: r.try_get("queue")?,
        version: r.try_get("version")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

impl Store for SqliteStore {
    async fn load_definitions(&self) -> Result<(Vec<StoredDefinition>, Vec<(String, ProjectSource)>)> {
        let rows = sqlx::query("SELECT * FROM definitions ORDER BY id").fetch_all(&self.reader).await?;
        let mut defs = Vec::with_capacity(rows.len());
        for r in rows {
            let version: i64 = r.try_get("version")?;
            defs.push(StoredDefinition {
                id: DefinitionId(r.try_get("id")?),
                process: r.try_get("process")?,
                version: version as u32,
                hash: r.try_get("hash")?,
                project_hash: r.try_get("project_hash")?,
                published_at: r.try_get("published_at")?,
            });
        }
        let rows = sqlx::query("SELECT hash, source FROM projects").fetch_all(&self.reader).await?;
        let mut projects = Vec::with_capacity(rows.len());
        for r in rows {
            let source: String = r.try_get("source")?;
            let source: ProjectSource =
                serde_json::from_str(&source).map_err(|e| StoreError::Corrupt(format!("project source: {e}")))?;
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
        let source = serde_json::to_string(source).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let project_hash = project_hash.to_string();
        let definitions = definitions.to_vec();
        self.write(|reply| Job::SaveDefinitions {
            project_hash,
            source,
            definitions,
            at,
            reply,
        })
        .await
    }

    async fn create(&self, new: NewInstance) -> Result<InstanceId> {
        let rows = sql::new_instance_rows(&self.catalog, new)?;
        self.write(|reply| Job::Create(rows, reply)).await
    }

    async fn instance(&self, id: InstanceId) -> Result<Option<Instance>> {
        let row = sqlx::query("SELECT * FROM instances WHERE id = ?")
            .bind(id.0)
            .fetch_optional(&self.reader)
            .await?;
        match row {
            Some(r) => Ok(Some(sql::decode_instance(&self.catalog, instance_row(&r)?)?)),
            None => Ok(None),
        }
    }

    async fn instance_with_task(&self, id: InstanceId) -> Result<Option<(Instance, Option<Task>)>> {
        // Two reads in one read transaction, so the pair is consistent.
        let mut tx = self.reader.begin().await?;
        let row = sqlx::query("SELECT * FROM instances WHERE id = ?")
            .bind(id.0)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let inst = sql::decode_instance(&self.catalog, instance_row(&row)?)?;
        let task = sqlx::query("SELECT * FROM tasks WHERE instance_id = ? AND state <> 'done'")
            .bind(id.0)
            .fetch_optional(&mut *tx)
            .await?;
        let task = task.map(|r| sql::task_from_row(&r)).transpose()?;
        tx.commit().await?;
        Ok(Some((inst, task)))
    }

    async fn commit(&self, change: Change) -> Result<Committed> {
        let rows = sql::change_rows(&self.catalog, change)?;
        self.write(|reply| Job::Commit(rows, reply)).await
    }

    async fn history(&self, id: InstanceId) -> Result<Vec<Event>> {
        let def_id: Option<i64> = sqlx::query_scalar("SELECT definition_id FROM instances WHERE id = ?")
            .bind(id.0)
            .fetch_optional(&self.reader)
            .await?;
        let Some(def_id) = def_id else { return Ok(Vec::new()) };
        let def = sql::definition(&self.catalog, DefinitionId(def_id))?;
        let rows = sqlx::query("SELECT * FROM events WHERE instance_id = ? ORDER BY seq")
            .bind(id.0)
            .fetch_all(&self.reader)
            .await?;
        let mut events = Vec::with_capacity(rows.len());
        for r in rows {
            let kind: String = r.try_get("kind")?;
            let data: String = r.try_get("data")?;
            events.push(sql::decode_event(
                &def,
                id.0,
                r.try_get("seq")?,
                r.try_get("at")?,
                r.try_get("actor")?,
                &kind,
                &parse_json(&data, "event data")?,
                r.try_get("reason")?,
            )?);
        }
        Ok(events)
    }

    async fn links(&self, id: InstanceId) -> Result<Vec<Link>> {
        let rows = sqlx::query("SELECT * FROM links WHERE from_id = ? OR to_id = ? ORDER BY created_at, from_id, to_id")
            .bind(id.0)
            .bind(id.0)
            .fetch_all(&self.reader)
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
        let row = sqlx::query("SELECT * FROM tasks WHERE id = ?")
            .bind(id.0)
            .fetch_optional(&self.reader)
            .await?;
        row.map(|r| sql::task_from_row(&r)).transpose()
    }

    async fn open_task(&self, instance: InstanceId) -> Result<Option<Task>> {
        let row = sqlx::query("SELECT * FROM tasks WHERE instance_id = ? AND state <> 'done'")
            .bind(instance.0)
            .fetch_optional(&self.reader)
            .await?;
        row.map(|r| sql::task_from_row(&r)).transpose()
    }

    async fn queue_tasks(&self, queue: &str, limit: u32) -> Result<Vec<Task>> {
        let rows = sqlx::query(
            "SELECT * FROM tasks WHERE queue = ? AND state <> 'done' ORDER BY priority, due_at, created_at, id LIMIT ?",
        )
        .bind(queue)
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(sql::task_from_row).collect()
    }

    async fn queue_counts(&self) -> Result<Vec<(String, u64)>> {
        let rows = sqlx::query("SELECT queue, COUNT(*) AS n FROM tasks WHERE state <> 'done' GROUP BY queue ORDER BY queue")
            .fetch_all(&self.reader)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("queue")?, r.try_get::<i64, _>("n")? as u64)))
            .collect()
    }

    async fn claim_next(&self, queue: &str, agent: &str, now: DateTime<Utc>, lease_until: DateTime<Utc>) -> Result<Option<Task>> {
        let (queue, agent) = (queue.to_string(), agent.to_string());
        self.write(|reply| Job::ClaimNext {
            queue,
            agent,
            now: sql::micros(now),
            lease_until: sql::micros(lease_until),
            reply,
        })
        .await
    }

    async fn claim(&self, task: TaskId, agent: &str, now: DateTime<Utc>, lease_until: DateTime<Utc>) -> Result<Task> {
        let agent = agent.to_string();
        self.write(|reply| Job::Claim {
            task,
            agent,
            now: sql::micros(now),
            lease_until: sql::micros(lease_until),
            reply,
        })
        .await
    }

    async fn renew(&self, task: TaskId, token: i64, agent: &str, _now: DateTime<Utc>, lease_until: DateTime<Utc>) -> Result<Task> {
        let agent = agent.to_string();
        self.write(|reply| Job::Renew {
            task,
            token,
            agent,
            lease_until: sql::micros(lease_until),
            reply,
        })
        .await
    }

    async fn release(&self, task: TaskId, token: i64, agent: &str) -> Result<()> {
        let agent = agent.to_string();
        self.write(|reply| Job::Release {
            task,
            token,
            agent,
            reply,
        })
        .await
    }

    async fn set_agent(&self, name: &str, roles: &[String], active: bool, at: DateTime<Utc>) -> Result<()> {
        let roles = serde_json::to_string(roles).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let name = name.to_string();
        self.write(|reply| Job::SetAgent {
            name,
            roles,
            active,
            at,
            reply,
        })
        .await
    }

    async fn active_agents(&self) -> Result<Vec<(String, Vec<String>)>> {
        let rows = sqlx::query("SELECT name, roles FROM agents WHERE active ORDER BY name")
            .fetch_all(&self.reader)
            .await?;
        rows.iter()
            .map(|r| {
                let roles: String = r.try_get("roles")?;
                let roles = serde_json::from_str(&roles).map_err(|e| StoreError::Corrupt(format!("agent roles: {e}")))?;
                Ok((r.try_get("name")?, roles))
            })
            .collect()
    }

    async fn agent_loads(&self) -> Result<Vec<(String, u64)>> {
        let rows = sqlx::query(LOADS).fetch_all(&self.reader).await?;
        rows.iter()
            .map(|r| Ok((r.try_get("agent")?, r.try_get::<i64, _>("n")? as u64)))
            .collect()
    }

    async fn last_assignee(&self, queue: &str) -> Result<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT assigned_to FROM tasks WHERE queue = ? AND assigned_to IS NOT NULL ORDER BY id DESC LIMIT 1",
        )
        .bind(queue)
        .fetch_optional(&self.reader)
        .await?)
    }
}
