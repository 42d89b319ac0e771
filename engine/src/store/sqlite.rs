//! The embedded store: SQLite in WAL mode with `synchronous = FULL`, so every acknowledged
//! change is on disk.
//!
//! Writes go through one writer thread that owns the only writing connection and commits in
//! groups: it takes every write request waiting (up to a batch size), runs each inside its own
//! savepoint (a refused request rolls back to its savepoint and fails alone; a lone request
//! needs none), commits the batch with one fsync, and only then answers each request. A change
//! is acknowledged only after the commit that made it durable; if that commit fails, every
//! request in the batch gets the error and none of them was applied.
//!
//! Reads use a small pool of read-only connections on blocking threads, which WAL lets run
//! beside the writer. The schema is created by sqlx's migrator (the same mechanism as for
//! PostgreSQL); the data path talks to SQLite directly through rusqlite, statement by statement
//! in the calling thread, which is several times cheaper than a hop to a driver thread per
//! statement.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Row};
use serde_json::Value as Json;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};

use tokio::sync::{mpsc, oneshot};

use super::migrations::{MigrationSet, ENGINE_VERSIONS};
use super::sql::{self, ChangeRows, NewInstanceRows};
use super::{
    Committed, Created, InstanceAndTask, InstanceFilter, NewDefinition, Result, Store, StoreError,
    StoredDefinition, StoredDefinitions,
};
use crate::record::types::*;
use crate::record::{DefinitionId, Definitions, ProjectSource};

/// The engine's tables on SQLite (see [`super::migrations`]).
pub fn migrations() -> MigrationSet {
    MigrationSet::new(
        "engine",
        ENGINE_VERSIONS,
        sqlx::migrate!("./migrations/sqlite"),
    )
}

/// Most requests committed together.
const MAX_BATCH: usize = 256;
/// Read connections kept open.
const READERS: usize = 4;

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
    readers: Arc<ReaderPool>,
    writer: mpsc::Sender<Job>,
    /// The published definitions (the engine's catalog), to turn stored names into ids and back.
    catalog: Arc<dyn Definitions>,
}

/// Read-only connections, handed out to blocking tasks. At most `READERS` reads run at once
/// (the semaphore), so connections are reused rather than opened per read: opening one
/// re-parses the schema.
struct ReaderPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    permits: tokio::sync::Semaphore,
}

impl ReaderPool {
    fn with<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match conn {
            Some(c) => c,
            None => open_reader(&self.path)?,
        };
        let out = f(&conn);
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < READERS {
            idle.push(conn);
        }
        out
    }
}

fn open_reader(path: &Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    Ok(conn)
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
    // Boxed: a new instance or a change is much larger than the other jobs, which would all
    // take its size.
    Create(Box<NewInstanceRows>, Reply<Created>),
    Commit(Box<ChangeRows>, Reply<Committed>),
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
        reply: Reply<Task>,
    },
    SetAgent {
        name: String,
        roles: String,
        active: bool,
        at: DateTime<Utc>,
        reply: Reply<Vec<Task>>,
    },
    ClaimWakeups {
        now: i64,
        limit: u32,
        lease_until: i64,
        reply: Reply<Vec<InstanceId>>,
    },
    MarkDelivered {
        ids: Vec<i64>,
        at: i64,
        reply: Reply<u64>,
    },
    ClaimDeliveries {
        now: i64,
        lease_until: i64,
        limit: u32,
        reply: Reply<Vec<Notification>>,
    },
    DeliveryFailed {
        id: i64,
        error: String,
        retry_at: Option<i64>,
        now: i64,
        reply: Reply<()>,
    },
}

/// A job's outcome, held until its batch commits.
enum Done {
    Ids(Reply<Vec<DefinitionId>>, Result<Vec<DefinitionId>>),
    Instance(Reply<Created>, Result<Created>),
    Committed(Reply<Committed>, Result<Committed>),
    MaybeTask(Reply<Option<Task>>, Result<Option<Task>>),
    Task(Reply<Task>, Result<Task>),
    Unit(Reply<()>, Result<()>),
    Tasks(Reply<Vec<Task>>, Result<Vec<Task>>),
    Instances(Reply<Vec<InstanceId>>, Result<Vec<InstanceId>>),
    Count(Reply<u64>, Result<u64>),
    Notifications(Reply<Vec<Notification>>, Result<Vec<Notification>>),
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
            Done::Tasks(_, r) => r.is_err(),
            Done::Instances(_, r) => r.is_err(),
            Done::Count(_, r) => r.is_err(),
            Done::Notifications(_, r) => r.is_err(),
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
            Done::Tasks(tx, r) => drop(tx.send(pick(r, failed))),
            Done::Instances(tx, r) => drop(tx.send(pick(r, failed))),
            Done::Count(tx, r) => drop(tx.send(pick(r, failed))),
            Done::Notifications(tx, r) => drop(tx.send(pick(r, failed))),
        }
    }
}

impl SqliteStore {
    /// Open (creating if needed) the database file and bring its schema up to date.
    pub async fn open(path: impl AsRef<Path>, catalog: Arc<dyn Definitions>) -> Result<Self> {
        Self::open_with(path, catalog, Durability::Full).await
    }

    pub async fn open_with(
        path: impl AsRef<Path>,
        catalog: Arc<dyn Definitions>,
        durability: Durability,
    ) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        // A one-connection pool rather than a bare connection: its migration future is `Send`
        // for any lifetime, so callers can open stores from spawned tasks.
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal);
        let migrate = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        migrations().run(&migrate).await?;
        migrate.close().await;

        let writer = Connection::open(&path)?;
        writer.busy_timeout(std::time::Duration::from_secs(10))?;
        writer.pragma_update(None, "journal_mode", "WAL")?;
        writer.pragma_update(
            None,
            "synchronous",
            match durability {
                Durability::Full => "FULL",
                Durability::Normal => "NORMAL",
            },
        )?;
        writer.pragma_update(None, "foreign_keys", "ON")?;
        let (tx, rx) = mpsc::channel(4096);
        std::thread::Builder::new()
            .name("itsmflow-sqlite-writer".into())
            .spawn(move || write_loop(writer, rx))
            .map_err(|e| StoreError::Unavailable(format!("cannot start the writer: {e}")))?;
        Ok(SqliteStore {
            readers: Arc::new(ReaderPool {
                path,
                idle: Mutex::new(Vec::new()),
                permits: tokio::sync::Semaphore::new(READERS),
            }),
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

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let _permit = self
            .readers
            .permits
            .acquire()
            .await
            .map_err(|_| StoreError::Unavailable("the store is closed".into()))?;
        let readers = self.readers.clone();
        tokio::task::spawn_blocking(move || readers.with(f))
            .await
            .map_err(|e| StoreError::Unavailable(format!("a read failed: {e}")))?
    }
}

// ---------------------------------------------------------------------------------------------
// Value encoding

/// Timestamps as fixed-width RFC 3339 text in UTC, which sorts correctly as text.
fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn parse_ts(text: &str) -> rusqlite::Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
        })
}

fn parse_json(text: &str, what: &str) -> Result<Json> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

fn task_from_row(row: &Row) -> rusqlite::Result<Task> {
    let columns = sql::TaskColumns {
        id: row.get("id")?,
        instance_id: row.get("instance_id")?,
        process: row.get("process")?,
        stage: row.get("stage")?,
        queue: row.get("queue")?,
        priority: row.get("priority")?,
        due_at: row.get("due_at")?,
        ola_due_at: row.get("ola_due_at")?,
        created_at: row.get("created_at")?,
        state: row.get("state")?,
        assigned_to: row.get("assigned_to")?,
        claimed_by: row.get("claimed_by")?,
        lease_until: row.get("lease_until")?,
        token: row.get("token")?,
    };
    columns.into_task().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.into())
    })
}

fn instance_row(r: &Row) -> rusqlite::Result<(sql::InstanceRow, String)> {
    let created: String = r.get("created_at")?;
    let updated: String = r.get("updated_at")?;
    let fields: String = r.get("fields")?;
    Ok((
        sql::InstanceRow {
            id: r.get("id")?,
            definition_id: r.get("definition_id")?,
            process: r.get("process")?,
            stage: r.get("stage")?,
            fields: Json::Null,
            priority: r.get("priority")?,
            queue: r.get("queue")?,
            version: r.get("version")?,
            created_at: parse_ts(&created)?,
            updated_at: parse_ts(&updated)?,
            created_by: r.get("created_by")?,
        },
        fields,
    ))
}

/// Run `f` in one read transaction, so that what it reads is one snapshot.
fn in_snapshot<T>(conn: &Connection, f: impl FnOnce() -> Result<T>) -> Result<T> {
    conn.execute_batch("BEGIN")?;
    let out = f();
    conn.execute_batch("COMMIT")?;
    out
}

fn open_task_of(conn: &Connection, instance: i64) -> Result<Option<Task>> {
    Ok(conn
        .prepare_cached("SELECT * FROM tasks WHERE instance_id = ?1 AND state <> 'done'")?
        .query_row(params![instance], task_from_row)
        .optional()?)
}

fn decode_instance_row(
    catalog: &dyn Definitions,
    (mut row, fields): (sql::InstanceRow, String),
) -> Result<Instance> {
    row.fields = parse_json(&fields, "instance fields")?;
    sql::decode_instance(catalog, row)
}

// ---------------------------------------------------------------------------------------------
// The writer

fn write_loop(mut conn: Connection, mut rx: mpsc::Receiver<Job>) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.blocking_recv() {
        jobs.push(first);
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        run_batch(&mut conn, &mut jobs);
    }
}

fn run_batch(conn: &mut Connection, jobs: &mut Vec<Job>) {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        let msg = e.to_string();
        jobs.drain(..).for_each(|j| fail(j, &msg));
        return;
    }
    let mut done = Vec::with_capacity(jobs.len());
    if jobs.len() == 1 {
        // A lone job needs no savepoint: if it fails, the whole transaction is rolled back.
        if let Some(job) = jobs.pop() {
            let outcome = run(conn, job);
            if outcome.is_err() {
                let _ = conn.execute_batch("ROLLBACK");
                outcome.send(None);
                return;
            }
            done.push(outcome);
        }
    } else {
        for job in jobs.drain(..) {
            let savepoint = conn.execute_batch("SAVEPOINT job");
            let outcome = run(conn, job);
            let rolled_back = if outcome.is_err() || savepoint.is_err() {
                conn.execute_batch("ROLLBACK TO job")
            } else {
                Ok(())
            };
            let released = conn.execute_batch("RELEASE job");
            if let Err(e) = savepoint.and(rolled_back).and(released) {
                // The transaction's state is unknown: abandon the whole batch.
                let _ = conn.execute_batch("ROLLBACK");
                let msg = e.to_string();
                outcome.send(Some(&msg));
                done.drain(..).for_each(|d: Done| d.send(Some(&msg)));
                return;
            }
            done.push(outcome);
        }
    }
    match conn.execute_batch("COMMIT") {
        Ok(()) => done.into_iter().for_each(|d| d.send(None)),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            let msg = e.to_string();
            done.into_iter().for_each(|d| d.send(Some(&msg)));
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
        Job::ClaimWakeups { reply, .. } => drop(reply.send(Err(err()))),
        Job::MarkDelivered { reply, .. } => drop(reply.send(Err(err()))),
        Job::ClaimDeliveries { reply, .. } => drop(reply.send(Err(err()))),
        Job::DeliveryFailed { reply, .. } => drop(reply.send(Err(err()))),
    }
}

fn run(conn: &Connection, job: Job) -> Done {
    match job {
        Job::SaveDefinitions {
            project_hash,
            source,
            definitions,
            at,
            reply,
        } => Done::Ids(
            reply,
            save_definitions(conn, &project_hash, &source, &definitions, at),
        ),
        Job::Create(rows, reply) => Done::Instance(reply, create(conn, *rows)),
        Job::Commit(rows, reply) => Done::Committed(reply, commit(conn, *rows)),
        Job::ClaimNext {
            queue,
            agent,
            now,
            lease_until,
            reply,
        } => Done::MaybeTask(reply, claim_next(conn, &queue, &agent, now, lease_until)),
        Job::Claim {
            task,
            agent,
            now,
            lease_until,
            reply,
        } => Done::Task(reply, claim(conn, task, &agent, now, lease_until)),
        Job::Renew {
            task,
            token,
            agent,
            lease_until,
            reply,
        } => Done::Task(reply, renew(conn, task, token, &agent, lease_until)),
        Job::Release {
            task,
            token,
            agent,
            reply,
        } => Done::Task(reply, release(conn, task, token, &agent)),
        Job::SetAgent {
            name,
            roles,
            active,
            at,
            reply,
        } => Done::Tasks(reply, set_agent(conn, &name, &roles, active, at)),
        Job::ClaimWakeups {
            now,
            limit,
            lease_until,
            reply,
        } => Done::Instances(reply, claim_wakeups(conn, now, limit, lease_until)),
        Job::MarkDelivered { ids, at, reply } => Done::Count(reply, mark_delivered(conn, &ids, at)),
        Job::ClaimDeliveries {
            now,
            lease_until,
            limit,
            reply,
        } => Done::Notifications(reply, claim_deliveries(conn, now, lease_until, limit)),
        Job::DeliveryFailed {
            id,
            error,
            retry_at,
            now,
            reply,
        } => Done::Unit(reply, delivery_failed(conn, id, &error, retry_at, now)),
    }
}

fn notification_from_row(row: &Row) -> rusqlite::Result<Notification> {
    sql::NotificationColumns {
        id: row.get("id")?,
        instance_id: row.get("instance_id")?,
        role: row.get("role")?,
        recipients: row.get("recipients")?,
        clock: row.get("clock")?,
        threshold: row.get("threshold")?,
        message: row.get("message")?,
        created_at: row.get("created_at")?,
        deliver_at: row.get("deliver_at")?,
        delivered_at: row.get("delivered_at")?,
        attempts: row.get("attempts")?,
        last_error: row.get("last_error")?,
        dead_at: row.get("dead_at")?,
    }
    .into_notification()
    .map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Integer, e.into())
    })
}

/// Replace an instance's wake-up (microseconds; `None`: nothing is due).
fn set_wakeup(conn: &Connection, instance: i64, at: Option<i64>) -> Result<()> {
    match at {
        Some(at) => conn
            .prepare_cached(
                "INSERT INTO wakeups (instance_id, due_at, fire_at) VALUES (?1, ?2, ?2) \
                 ON CONFLICT (instance_id) DO UPDATE SET due_at = excluded.due_at, fire_at = excluded.fire_at",
            )?
            .execute(params![instance, at])?,
        None => conn
            .prepare_cached("DELETE FROM wakeups WHERE instance_id = ?1")?
            .execute(params![instance])?,
    };
    Ok(())
}

fn insert_notifications(
    conn: &Connection,
    instance: i64,
    rows: &[NewNotification],
    at: DateTime<Utc>,
) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut insert = conn.prepare_cached(
        "INSERT INTO notifications (instance_id, role, clock, threshold, message, created_at, deliver_at, recipients) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    for n in rows {
        insert.execute(params![
            instance,
            n.role,
            n.clock,
            n.threshold,
            n.message,
            sql::micros(at),
            sql::micros(n.deliver_at),
            sql::recipients_column(&n.recipients)
        ])?;
    }
    Ok(())
}

fn claim_wakeups(
    conn: &Connection,
    now: i64,
    limit: u32,
    lease_until: i64,
) -> Result<Vec<InstanceId>> {
    let mut due = conn
        .prepare_cached(
            "UPDATE wakeups SET fire_at = ?1 \
             WHERE instance_id IN (SELECT instance_id FROM wakeups WHERE fire_at <= ?2 ORDER BY fire_at LIMIT ?3) \
             RETURNING due_at, instance_id",
        )?
        .query_map(params![lease_until, now, limit], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    due.sort_unstable();
    Ok(due.into_iter().map(|(_, id)| InstanceId(id)).collect())
}

/// Lease the oldest claimable outbox rows (the writer is the only one, so no two claims meet).
fn claim_deliveries(
    conn: &Connection,
    now: i64,
    lease_until: i64,
    limit: u32,
) -> Result<Vec<Notification>> {
    let sql = format!(
        "UPDATE notifications SET claimed_until = ?1, attempts = attempts + 1 \
         WHERE id IN (SELECT id FROM notifications WHERE {} ORDER BY id LIMIT ?3) RETURNING *",
        sql::CLAIMABLE_NOTIFICATIONS.replace("{now}", "?2")
    );
    let mut claimed = conn
        .prepare_cached(&sql)?
        .query_map(params![lease_until, now, limit], notification_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    claimed.sort_by_key(|n| n.id);
    Ok(claimed)
}

fn delivery_failed(
    conn: &Connection,
    id: i64,
    error: &str,
    retry_at: Option<i64>,
    now: i64,
) -> Result<()> {
    conn.prepare_cached(
        "UPDATE notifications SET last_error = ?2, claimed_until = COALESCE(?3, claimed_until), \
         dead_at = CASE WHEN ?3 IS NULL THEN ?4 ELSE dead_at END \
         WHERE id = ?1 AND delivered_at IS NULL",
    )?
    .execute(params![id, error, retry_at, now])?;
    Ok(())
}

fn mark_delivered(conn: &Connection, ids: &[i64], at: i64) -> Result<u64> {
    let mut update = conn.prepare_cached(
        "UPDATE notifications SET delivered_at = ?1 WHERE id = ?2 AND delivered_at IS NULL",
    )?;
    let mut marked = 0;
    for id in ids {
        marked += update.execute(params![at, id])? as u64;
    }
    Ok(marked)
}

fn save_definitions(
    conn: &Connection,
    project_hash: &str,
    source: &str,
    definitions: &[NewDefinition],
    at: DateTime<Utc>,
) -> Result<Vec<DefinitionId>> {
    conn.prepare_cached("INSERT INTO projects (hash, source, created_at) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING")?
        .execute(params![project_hash, source, ts(at)])?;
    let mut ids = Vec::with_capacity(definitions.len());
    let mut insert = conn.prepare_cached(
        "INSERT INTO definitions (process, version, hash, project_hash, published_at) VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
    )?;
    for d in definitions {
        let id: i64 = insert.query_row(
            params![d.process, d.version, d.hash, project_hash, ts(at)],
            |r| r.get(0),
        )?;
        ids.push(DefinitionId(id));
    }
    Ok(ids)
}

fn insert_events(conn: &Connection, instance: i64, events: &[sql::EventRow]) -> Result<()> {
    let mut insert = conn.prepare_cached(
        "INSERT INTO events (instance_id, seq, at, actor, kind, data, reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for e in events {
        insert.execute(params![
            instance,
            e.seq,
            ts(e.at),
            e.actor,
            e.kind,
            e.data.to_string(),
            e.reason
        ])?;
    }
    Ok(())
}

fn insert_task(conn: &Connection, instance: i64, t: &NewTask, at: DateTime<Utc>) -> Result<Task> {
    Ok(conn
        .prepare_cached(
            "INSERT INTO tasks (instance_id, process, stage, queue, priority, due_at, created_at, state, assigned_to, ola_due_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'open', ?8, ?9) RETURNING *",
        )?
        .query_row(
            params![
                instance,
                t.process,
                t.stage,
                t.queue,
                sql::priority_column(t.priority),
                sql::due_column(t.due_at),
                sql::micros(at),
                t.assigned_to,
                sql::due_column(t.ola_due_at)
            ],
            task_from_row,
        )?)
}

fn insert_link(conn: &Connection, from: i64, to: i64, kind: &str, at: DateTime<Utc>) -> Result<()> {
    conn.prepare_cached("INSERT INTO links (from_id, to_id, kind, created_at) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING")?
        .execute(params![from, to, kind, ts(at)])?;
    Ok(())
}

fn create(conn: &Connection, rows: NewInstanceRows) -> Result<Created> {
    let i = &rows.instance;
    let id: i64 = conn
        .prepare_cached(
            "INSERT INTO instances (definition_id, process, stage, fields, priority, queue, version, created_at, updated_at, created_by) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) RETURNING id",
        )?
        .query_row(
            params![
                i.definition_id,
                i.process,
                i.stage,
                i.fields.to_string(),
                i.priority,
                i.queue,
                i.version,
                ts(i.created_at),
                ts(i.updated_at),
                i.created_by
            ],
            |r| r.get(0),
        )?;
    insert_events(conn, id, &rows.events)?;
    if rows.wakeup.is_some() {
        set_wakeup(conn, id, rows.wakeup)?;
    }
    let task = match &rows.task {
        Some(t) => Some(insert_task(conn, id, t, i.created_at)?),
        None => None,
    };
    if let Some(parent) = &rows.parent {
        let l = parent.link(InstanceId(id), i.created_at);
        insert_link(conn, l.from.0, l.to.0, &l.kind, l.created_at)?;
    }
    Ok((InstanceId(id), task))
}

fn task_by_id(conn: &Connection, id: TaskId) -> Result<Option<Task>> {
    Ok(conn
        .prepare_cached("SELECT * FROM tasks WHERE id = ?1")?
        .query_row(params![id.0], task_from_row)
        .optional()?)
}

fn commit(conn: &Connection, rows: ChangeRows) -> Result<Committed> {
    let i = &rows.instance;
    let updated = conn
        .prepare_cached(
            "UPDATE instances SET stage = ?1, fields = ?2, priority = ?3, queue = ?4, version = ?5, updated_at = ?6, \
             definition_id = ?9 WHERE id = ?7 AND version = ?8",
        )?
        .execute(params![
            i.stage,
            i.fields.to_string(),
            i.priority,
            i.queue,
            i.version,
            ts(i.updated_at),
            i.id,
            rows.expected_version,
            i.definition_id
        ])?;
    if updated == 0 {
        let now: Option<i64> = conn
            .prepare_cached("SELECT version FROM instances WHERE id = ?1")?
            .query_row(params![i.id], |r| r.get(0))
            .optional()?;
        return Err(StoreError::stale_version(
            InstanceId(i.id),
            rows.expected_version,
            now,
        ));
    }
    if let Some(close) = &rows.close_task {
        close_task(conn, close)?;
    }
    let mut task = None;
    if let Some(u) = &rows.update_task {
        task = conn
            .prepare_cached(
                "UPDATE tasks SET assigned_to = CASE WHEN queue = ?1 THEN assigned_to ELSE ?5 END, \
                 state = CASE WHEN queue = ?1 THEN state ELSE 'open' END, \
                 claimed_by = CASE WHEN queue = ?1 THEN claimed_by ELSE NULL END, \
                 lease_until = CASE WHEN queue = ?1 THEN lease_until ELSE NULL END, \
                 queue = ?1, priority = ?2, due_at = ?4, ola_due_at = ?6 \
                 WHERE id = ?3 AND state <> 'done' RETURNING *",
            )?
            .query_row(
                params![
                    u.queue,
                    sql::priority_column(u.priority),
                    u.task.0,
                    sql::due_column(u.due_at),
                    u.assigned_to,
                    sql::due_column(u.ola_due_at)
                ],
                task_from_row,
            )
            .optional()?;
    }
    if let Some(t) = &rows.new_task {
        task = Some(insert_task(conn, i.id, t, i.updated_at)?);
    }
    insert_events(conn, i.id, &rows.events)?;
    if let Some(wakeup) = rows.wakeup {
        set_wakeup(conn, i.id, wakeup)?;
    }
    insert_notifications(conn, i.id, &rows.notifications, i.updated_at)?;
    if let Some(ballots) = &rows.ballots {
        write_ballots(conn, i.id, ballots)?;
    }
    for l in &rows.links {
        insert_link(conn, l.from.0, l.to.0, &l.kind, l.created_at)?;
    }
    let mut spawned = Vec::with_capacity(rows.spawns.len());
    for s in rows.spawns {
        spawned.push(create(conn, s)?);
    }
    // In the same transaction: a version check failing here undoes the whole change.
    let cascaded = rows
        .cascade
        .into_iter()
        .map(|c| commit(conn, c))
        .collect::<Result<_>>()?;
    Ok(Committed {
        spawned,
        task,
        cascaded,
    })
}

/// Write how a change leaves an instance's pending ballots: the difference when it is known,
/// else the whole list.
fn write_ballots(conn: &Connection, instance: i64, change: &BallotChange) -> Result<()> {
    let added = match change {
        BallotChange::Some { removed, added } => {
            let mut delete = conn
                .prepare_cached("DELETE FROM ballots WHERE instance_id = ?1 AND approver = ?2")?;
            for holder in removed {
                delete.execute(params![instance, &**holder])?;
            }
            added
        }
        BallotChange::All(list) => {
            conn.prepare_cached("DELETE FROM ballots WHERE instance_id = ?1")?
                .execute(params![instance])?;
            list
        }
    };
    let ballots = added;
    let mut insert = conn.prepare_cached(
        "INSERT INTO ballots (instance_id, approver, on_behalf_of, level, process, stage, opened_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for b in ballots {
        insert.execute(params![
            instance,
            &*b.approver,
            b.on_behalf_of.as_deref(),
            b.level,
            &*b.process,
            &*b.stage,
            sql::micros(b.opened_at)
        ])?;
    }
    Ok(())
}

fn close_task(conn: &Connection, close: &CloseTask) -> Result<()> {
    let closed = match &close.fence {
        Fence::Token { token, agent } => conn
            .prepare_cached(
                "UPDATE tasks SET state = 'done', lease_until = NULL \
                 WHERE id = ?1 AND state = 'claimed' AND token = ?2 AND claimed_by = ?3",
            )?
            .execute(params![close.task.0, token, agent])?,
        Fence::NotClaimedByOther { actor, now } => conn
            .prepare_cached(
                "UPDATE tasks SET state = 'done', lease_until = NULL \
                 WHERE id = ?1 AND state <> 'done' \
                   AND NOT (state = 'claimed' AND lease_until > ?2 AND claimed_by <> ?3)",
            )?
            .execute(params![close.task.0, sql::micros(*now), actor])?,
    };
    if closed == 1 {
        return Ok(());
    }
    let task = task_by_id(conn, close.task)?;
    Err(StoreError::fence_refused(close, task.as_ref()))
}

fn claim_next(
    conn: &Connection,
    queue: &str,
    agent: &str,
    now: i64,
    lease_until: i64,
) -> Result<Option<Task>> {
    Ok(conn
        .prepare_cached(
            "UPDATE tasks SET state = 'claimed', claimed_by = ?1, lease_until = ?2, token = token + 1 \
             WHERE id = (SELECT id FROM tasks \
                         WHERE queue = ?3 AND state <> 'done' \
                           AND (state = 'open' OR (state = 'claimed' AND lease_until <= ?4)) \
                           AND (assigned_to IS NULL OR assigned_to = ?1) \
                         ORDER BY priority, due_at, created_at, id LIMIT 1) \
             RETURNING *",
        )?
        .query_row(params![agent, lease_until, queue, now], task_from_row)
        .optional()?)
}

fn claim(conn: &Connection, task: TaskId, agent: &str, now: i64, lease_until: i64) -> Result<Task> {
    let row = conn
        .prepare_cached(
            "UPDATE tasks SET state = 'claimed', claimed_by = ?1, lease_until = ?2, token = token + 1 \
             WHERE id = ?3 AND state <> 'done' \
               AND (((state = 'open' OR (state = 'claimed' AND lease_until <= ?4)) \
                     AND (assigned_to IS NULL OR assigned_to = ?1)) \
                    OR claimed_by = ?1) \
             RETURNING *",
        )?
        .query_row(params![agent, lease_until, task.0, now], task_from_row)
        .optional()?;
    if let Some(t) = row {
        return Ok(t);
    }
    let now = task_by_id(conn, task)?;
    Err(StoreError::claim_refused(task, now.as_ref()))
}

fn renew(
    conn: &Connection,
    task: TaskId,
    token: i64,
    agent: &str,
    lease_until: i64,
) -> Result<Task> {
    let renewed = conn.prepare_cached(
        "UPDATE tasks SET lease_until = ?1 WHERE id = ?2 AND state = 'claimed' AND token = ?3 AND claimed_by = ?4 RETURNING *",
    )?
    .query_row(params![lease_until, task.0, token, agent], task_from_row)
    .optional()?;
    match renewed {
        Some(t) => Ok(t),
        None => Err(StoreError::lease_refused(
            task,
            task_by_id(conn, task)?.as_ref(),
        )),
    }
}

fn release(conn: &Connection, task: TaskId, token: i64, agent: &str) -> Result<Task> {
    let released = conn
        .prepare_cached(
            "UPDATE tasks SET state = 'open', claimed_by = NULL, lease_until = NULL \
             WHERE id = ?1 AND state = 'claimed' AND token = ?2 AND claimed_by = ?3 RETURNING *",
        )?
        .query_row(params![task.0, token, agent], task_from_row)
        .optional()?;
    match released {
        Some(t) => Ok(t),
        None => Err(StoreError::lease_refused(
            task,
            task_by_id(conn, task)?.as_ref(),
        )),
    }
}

fn set_agent(
    conn: &Connection,
    name: &str,
    roles: &str,
    active: bool,
    at: DateTime<Utc>,
) -> Result<Vec<Task>> {
    conn.prepare_cached(
        "INSERT INTO agents (name, roles, active, updated_at) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (name) DO UPDATE SET roles = excluded.roles, active = excluded.active, updated_at = excluded.updated_at",
    )?
    .execute(params![name, roles, active, ts(at)])?;
    if active {
        return Ok(Vec::new());
    }
    let returned = conn
        .prepare_cached(
            "UPDATE tasks SET assigned_to = NULL WHERE assigned_to = ?1 AND state = 'open' \
             RETURNING *",
        )?
        .query_map(params![name], task_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(returned)
}

// ---------------------------------------------------------------------------------------------
// The trait

impl Store for SqliteStore {
    async fn load_definitions(&self) -> Result<StoredDefinitions> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached("SELECT * FROM definitions ORDER BY id")?;
            let defs = stmt
                .query_map([], |r| {
                    let published: String = r.get("published_at")?;
                    Ok(StoredDefinition {
                        id: DefinitionId(r.get("id")?),
                        process: r.get("process")?,
                        version: r.get("version")?,
                        hash: r.get("hash")?,
                        project_hash: r.get("project_hash")?,
                        published_at: parse_ts(&published)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let mut stmt = conn.prepare_cached("SELECT hash, source FROM projects")?;
            let rows = stmt
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let mut projects = Vec::with_capacity(rows.len());
            for (hash, source) in rows {
                let source: ProjectSource = serde_json::from_str(&source)
                    .map_err(|e| StoreError::Corrupt(format!("project source: {e}")))?;
                projects.push((hash, source));
            }
            Ok((defs, projects))
        })
        .await
    }

    async fn save_definitions(
        &self,
        project_hash: &str,
        source: &ProjectSource,
        definitions: &[NewDefinition],
        at: DateTime<Utc>,
    ) -> Result<Vec<DefinitionId>> {
        let source =
            serde_json::to_string(source).map_err(|e| StoreError::Corrupt(e.to_string()))?;
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

    async fn create(&self, new: NewInstance) -> Result<Created> {
        let rows = sql::new_instance_rows(&*self.catalog, new)?;
        self.write(|reply| Job::Create(Box::new(rows), reply)).await
    }

    async fn instance(&self, id: InstanceId) -> Result<Option<Instance>> {
        let catalog = self.catalog.clone();
        self.read(move |conn| {
            let row = conn
                .prepare_cached("SELECT * FROM instances WHERE id = ?1")?
                .query_row(params![id.0], instance_row)
                .optional()?;
            row.map(|r| decode_instance_row(&*catalog, r)).transpose()
        })
        .await
    }

    async fn instance_with_task(
        &self,
        id: InstanceId,
    ) -> Result<Option<(std::sync::Arc<Instance>, Option<Task>)>> {
        let catalog = self.catalog.clone();
        self.read(move |conn| {
            in_snapshot(conn, || {
                let row = conn
                    .prepare_cached("SELECT * FROM instances WHERE id = ?1")?
                    .query_row(params![id.0], instance_row)
                    .optional()?;
                let Some(row) = row else { return Ok(None) };
                let task = open_task_of(conn, id.0)?;
                Ok(Some((Arc::new(decode_instance_row(&*catalog, row)?), task)))
            })
        })
        .await
    }

    async fn list_instances(
        &self,
        filter: &InstanceFilter,
        limit: u32,
    ) -> Result<Vec<InstanceAndTask>> {
        let (query, params) = sql::list_query("SELECT * FROM instances", filter, limit, |n| {
            format!("?{n}")
        });
        let params: Vec<rusqlite::types::Value> = params
            .into_iter()
            .map(|p| match p {
                sql::ListParam::Text(s) => rusqlite::types::Value::Text(s),
                sql::ListParam::Int(i) => rusqlite::types::Value::Integer(i),
            })
            .collect();
        let catalog = self.catalog.clone();
        self.read(move |conn| {
            in_snapshot(conn, || {
                let rows = conn
                    .prepare_cached(&query)?
                    .query_map(rusqlite::params_from_iter(params), instance_row)?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                // One indexed lookup per instance (`tasks_one_open_per_instance`), in process.
                rows.into_iter()
                    .map(|row| {
                        let task = open_task_of(conn, row.0.id)?;
                        Ok((Arc::new(decode_instance_row(&*catalog, row)?), task))
                    })
                    .collect()
            })
        })
        .await
    }

    async fn commit(&self, change: Change) -> Result<Committed> {
        let rows = sql::change_rows(&*self.catalog, change)?;
        self.write(|reply| Job::Commit(Box::new(rows), reply)).await
    }

    async fn pending_ballots(&self, user: &str, limit: u32) -> Result<Vec<PendingBallot>> {
        let user = user.to_string();
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT instance_id, approver, on_behalf_of, level, process, stage, opened_at \
                 FROM ballots WHERE approver = ?1 ORDER BY opened_at, instance_id LIMIT ?2",
            )?;
            let rows = stmt
                .query_map(params![user, limit], |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                    ))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            rows.into_iter()
                .map(
                    |(id, approver, on_behalf_of, level, process, stage, opened_at)| {
                        sql::ballot_from_columns(
                            id,
                            approver,
                            on_behalf_of,
                            level,
                            process,
                            stage,
                            opened_at,
                        )
                    },
                )
                .collect()
        })
        .await
    }

    async fn history(&self, id: InstanceId) -> Result<Vec<Event>> {
        let catalog = self.catalog.clone();
        self.read(move |conn| {
            let def_id: Option<i64> = conn
                .prepare_cached("SELECT definition_id FROM instances WHERE id = ?1")?
                .query_row(params![id.0], |r| r.get(0))
                .optional()?;
            let Some(def_id) = def_id else { return Ok(Vec::new()) };
            let def = sql::definition(&*catalog, DefinitionId(def_id))?;
            let mut stmt = conn.prepare_cached("SELECT seq, at, actor, kind, data, reason FROM events WHERE instance_id = ?1 ORDER BY seq")?;
            let rows = stmt
                .query_map(params![id.0], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                        r.get::<_, Option<String>>(5)?,
                    ))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let rows = rows
                .into_iter()
                .map(|(seq, at, actor, kind, data, reason)| {
                    Ok(sql::StoredEvent { seq, at: parse_ts(&at)?, actor, kind, data: parse_json(&data, "event data")?, reason })
                })
                .collect::<Result<Vec<_>>>()?;
            sql::decode_history(&*catalog, def, id.0, rows)
        })
        .await
    }

    async fn links(&self, id: InstanceId) -> Result<Vec<Link>> {
        self.read(move |conn| {
            let mut stmt =
                conn.prepare_cached("SELECT * FROM links WHERE from_id = ?1 OR to_id = ?1 ORDER BY created_at, from_id, to_id")?;
            let links = stmt
                .query_map(params![id.0], |r| {
                    let at: String = r.get("created_at")?;
                    Ok(Link {
                        from: InstanceId(r.get("from_id")?),
                        to: InstanceId(r.get("to_id")?),
                        kind: r.get("kind")?,
                        created_at: parse_ts(&at)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(links)
        })
        .await
    }

    async fn task(&self, id: TaskId) -> Result<Option<Task>> {
        self.read(move |conn| task_by_id(conn, id)).await
    }

    async fn queue_tasks(&self, queue: &str, limit: u32) -> Result<Vec<Task>> {
        let queue = queue.to_string();
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT * FROM tasks WHERE queue = ?1 AND state <> 'done' ORDER BY priority, due_at, created_at, id LIMIT ?2",
            )?;
            let tasks = stmt
                .query_map(params![queue, limit], task_from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(tasks)
        })
        .await
    }

    async fn queue_counts(&self) -> Result<Vec<(String, u64)>> {
        self.read(|conn| {
            let mut stmt =
                conn.prepare_cached("SELECT queue, COUNT(*) FROM tasks WHERE state <> 'done' GROUP BY queue ORDER BY queue")?;
            let counts = stmt
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64)))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(counts)
        })
        .await
    }

    async fn claim_next(
        &self,
        queue: &str,
        agent: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<Task>> {
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

    async fn claim(
        &self,
        task: TaskId,
        agent: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Task> {
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

    async fn renew(
        &self,
        task: TaskId,
        token: i64,
        agent: &str,
        _now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Task> {
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

    async fn release(&self, task: TaskId, token: i64, agent: &str) -> Result<Task> {
        let agent = agent.to_string();
        self.write(|reply| Job::Release {
            task,
            token,
            agent,
            reply,
        })
        .await
    }

    async fn set_agent(
        &self,
        name: &str,
        roles: &[String],
        active: bool,
        at: DateTime<Utc>,
    ) -> Result<Vec<Task>> {
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
        self.read(|conn| {
            let mut stmt =
                conn.prepare_cached("SELECT name, roles FROM agents WHERE active ORDER BY name")?;
            let rows = stmt
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            rows.into_iter()
                .map(|(name, roles)| {
                    let roles = serde_json::from_str(&roles)
                        .map_err(|e| StoreError::Corrupt(format!("agent roles: {e}")))?;
                    Ok((name, roles))
                })
                .collect()
        })
        .await
    }

    async fn agent_loads(&self, agents: &[&str]) -> Result<Vec<(String, u64)>> {
        // As in PostgreSQL: claimed tasks by claimant, open ones by assignee, each through its
        // partial index (0006); the candidates come as a JSON array.
        let agents =
            serde_json::to_string(agents).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT agent, COUNT(*) FROM ( \
                     SELECT claimed_by AS agent FROM tasks \
                     WHERE state = 'claimed' AND claimed_by IN (SELECT value FROM json_each(?1)) \
                     UNION ALL \
                     SELECT assigned_to FROM tasks \
                     WHERE state = 'open' AND assigned_to IN (SELECT value FROM json_each(?1)) \
                 ) GROUP BY agent ORDER BY agent",
            )?;
            let loads = stmt
                .query_map([&agents], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(loads)
        })
        .await
    }

    async fn last_assignee(&self, queue: &str) -> Result<Option<String>> {
        let queue = queue.to_string();
        self.read(move |conn| {
            Ok(conn
                .prepare_cached("SELECT assigned_to FROM tasks WHERE queue = ?1 AND assigned_to IS NOT NULL ORDER BY id DESC LIMIT 1")?
                .query_row(params![queue], |r| r.get(0))
                .optional()?)
        })
        .await
    }

    async fn claim_wakeups(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<InstanceId>> {
        self.write(|reply| Job::ClaimWakeups {
            now: sql::micros(now),
            limit,
            lease_until: sql::micros(lease_until),
            reply,
        })
        .await
    }

    async fn next_wakeup_at(&self) -> Result<Option<DateTime<Utc>>> {
        self.read(|conn| {
            let at: Option<i64> = conn
                .prepare_cached("SELECT MIN(fire_at) FROM wakeups")?
                .query_row([], |r| r.get(0))?;
            at.map(sql::from_micros).transpose()
        })
        .await
    }

    async fn wakeup(&self, instance: InstanceId) -> Result<Option<DateTime<Utc>>> {
        self.read(move |conn| {
            let at: Option<i64> = conn
                .prepare_cached("SELECT due_at FROM wakeups WHERE instance_id = ?1")?
                .query_row(params![instance.0], |r| r.get(0))
                .optional()?;
            at.map(sql::from_micros).transpose()
        })
        .await
    }

    async fn notifications(
        &self,
        filter: &NotificationFilter,
        limit: u32,
        after_id: Option<i64>,
    ) -> Result<Vec<Notification>> {
        let filter = filter.clone();
        self.read(move |conn| {
            let sql = format!(
                "SELECT * FROM notifications WHERE {} ORDER BY id LIMIT ?6",
                sql::notification_conditions(1, false)
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt
                .query_map(
                    params![
                        filter.role,
                        filter.instance.map(|i| i.0),
                        filter.undelivered,
                        filter.deliverable_at.map(sql::micros),
                        after_id.unwrap_or(0),
                        limit
                    ],
                    notification_from_row,
                )?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
        .await
    }

    async fn claim_deliveries(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Notification>> {
        self.write(|reply| Job::ClaimDeliveries {
            now: sql::micros(now),
            lease_until: sql::micros(lease_until),
            limit,
            reply,
        })
        .await
    }

    async fn delivery_failed(
        &self,
        id: i64,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let error = error.to_string();
        self.write(|reply| Job::DeliveryFailed {
            id,
            error,
            retry_at: retry_at.map(sql::micros),
            now: sql::micros(now),
            reply,
        })
        .await
    }

    async fn mark_delivered(&self, ids: &[i64], at: DateTime<Utc>) -> Result<u64> {
        let ids = ids.to_vec();
        self.write(|reply| Job::MarkDelivered {
            ids,
            at: sql::micros(at),
            reply,
        })
        .await
    }
}
