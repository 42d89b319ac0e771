//! Group commit for PostgreSQL: changes that callers commit at the same time are written by
//! one statement, in one transaction.
//!
//! Each statement and each transaction has a fixed cost on the server (executor set-up, the
//! commit record and its flush, a round trip) that is larger than the work of one change. So a
//! few committer tasks take the changes waiting when they are free and write them together:
//! under load a batch holds as many changes as arrived while the last one was written, and a
//! change that arrives alone is written alone, at once, by the same statement.
//!
//! Every change in a batch is checked on its own (its instance's version, its task's fence) and
//! applies whole or not at all, as if committed alone: each of its writes is conditional on its
//! own checks. A change is acknowledged only after the batch's transaction committed. Should the
//! statement fail as a whole (a constraint, a deadlock with another node), nothing of it was
//! written, and each change is committed again on its own, to get its own answer. A change
//! committed alone answers its own errors as they come.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Utc};
use serde_json::Value as Json;
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};

use super::gather::{Gathering, Waiting};
use super::{nothing_written, refusal, NotificationArrays};
use crate::record::types::*;
use crate::store::sql::{self, ChangeRows};
use crate::store::{Committed, Result, StoreError};

/// Changes written by one statement at most.
const MOST_PER_BATCH: usize = 64;

/// The way to the committer tasks. They end when this is dropped, after the changes handed to
/// them are written.
pub(super) struct Committer {
    gathering: Gathering<ChangeRows, Committed>,
    together: Arc<AtomicU64>,
}

impl Committer {
    /// Start `tasks` committer tasks on the current runtime, writing through `pool`.
    pub(super) fn start(pool: PgPool, tasks: usize) -> Self {
        let together = Arc::new(AtomicU64::new(0));
        let counter = together.clone();
        let gathering = Gathering::start(tasks, MOST_PER_BATCH, move |batch| {
            write(pool.clone(), batch, counter.clone())
        });
        Committer {
            gathering,
            together,
        }
    }

    /// How many changes were written (or refused) by a statement with others.
    pub(super) fn changes_written_together(&self) -> u64 {
        self.together.load(Ordering::Relaxed)
    }

    /// Commit a change (with no spawns and no links), alone or with others; its outcome. The
    /// change is written even if the caller stops waiting.
    pub(super) async fn commit(&self, rows: ChangeRows) -> Result<Committed> {
        self.gathering.ask(rows).await
    }
}

/// Write the changes taken together and answer each. One statement cannot apply two versions
/// of a row, so changes of an instance already in a statement go in the next one, in order.
async fn write(pool: PgPool, batch: Vec<Waiting<ChangeRows, Committed>>, together: Arc<AtomicU64>) {
    let mut rest = batch;
    while !rest.is_empty() {
        let mut instances = HashSet::new();
        let (now, later): (Vec<_>, Vec<_>) = rest
            .into_iter()
            .partition(|w| instances.insert(w.request.instance.id));
        write_one_statement(&pool, now, &together).await;
        rest = later;
    }
}

/// Write changes of distinct instances with one statement and answer each.
async fn write_one_statement(
    pool: &PgPool,
    batch: Vec<Waiting<ChangeRows, Committed>>,
    together: &AtomicU64,
) {
    if batch.len() == 1 {
        for w in batch {
            let outcome = commit_alone(pool, &w.request).await;
            w.answer(outcome);
        }
        return;
    }
    let changes: Vec<&ChangeRows> = batch.iter().map(|w| &w.request).collect();
    match commit_together(pool, &changes).await {
        Ok(outcomes) => {
            together.fetch_add(batch.len() as u64, Ordering::Relaxed);
            for (w, outcome) in batch.into_iter().zip(outcomes) {
                let answer = settle(pool, &w.request, outcome).await;
                w.answer(answer);
            }
        }
        Err(e) if nothing_written(&e) => {
            // Each change on its own, for its own answer.
            for w in batch {
                let outcome = commit_alone(pool, &w.request).await;
                w.answer(outcome);
            }
        }
        Err(e) => {
            // The connection failed with the statement sent: it may have committed. Writing
            // the changes again could report as refused (a conflict with itself) a change
            // that was applied, so each caller is told what is known.
            for w in batch {
                w.answer(Err(StoreError::Uncertain(e.to_string())));
            }
        }
    }
}

/// Commit one change by itself: the same statement, for one.
pub(super) async fn commit_alone(pool: &PgPool, rows: &ChangeRows) -> Result<Committed> {
    let outcome = commit_together(pool, &[rows])
        .await?
        .pop()
        .ok_or_else(|| StoreError::Corrupt("a change went unanswered".into()))?;
    settle(pool, rows, outcome).await
}

/// A change's answer from its outcome; a refusal says why.
async fn settle(pool: &PgPool, rows: &ChangeRows, outcome: Outcome) -> Result<Committed> {
    match outcome {
        Outcome::Written(committed) => Ok(*committed),
        Outcome::Refused { fenced } => Err(refusal(pool, rows, fenced).await),
    }
}

enum Outcome {
    /// Boxed: a refusal, the other outcome, is a flag, and the committed state (its tasks) is
    /// large.
    Written(Box<Committed>),
    /// Nothing of the change was written; `fenced` says whether its task's fence held (`None`:
    /// it closes no task).
    Refused { fenced: Option<bool> },
}

/// What the changes of a batch hold, which decides the parts of its statement.
#[derive(Default)]
struct Parts {
    close: bool,
    update: bool,
    new_task: bool,
    wakeup_set: bool,
    wakeup_cleared: bool,
    notifications: bool,
}

impl Parts {
    fn of(changes: &[&ChangeRows]) -> Self {
        let mut p = Parts::default();
        for c in changes {
            p.close |= c.close_task.is_some();
            p.update |= c.update_task.is_some();
            p.new_task |= c.new_task.is_some();
            p.wakeup_set |= matches!(c.wakeup, Some(Some(_)));
            p.wakeup_cleared |= matches!(c.wakeup, Some(None));
            p.notifications |= !c.notifications.is_empty();
        }
        p
    }
}

impl Parts {
    /// The parts as bits, to find the statement made for them.
    fn key(&self) -> usize {
        [
            self.close,
            self.update,
            self.new_task,
            self.wakeup_set,
            self.wakeup_cleared,
            self.notifications,
        ]
        .iter()
        .enumerate()
        .map(|(bit, on)| usize::from(*on) << bit)
        .sum()
    }

    /// The statement for these parts, made once.
    fn statement(&self) -> &'static str {
        static MADE: [OnceLock<String>; 64] = [const { OnceLock::new() }; 64];
        MADE[self.key()].get_or_init(|| statement(self))
    }
}

/// The batch's statement: the changes as one row each (`ch`), every write joined to the
/// instances whose version check passed (`i`), which joins to the tasks whose fence held (`f`).
fn statement(p: &Parts) -> String {
    // $1..$8: the instances; $9..$15: the events; then each part's columns, in this order.
    let mut next = 16;
    let mut params = |n: usize| {
        let ps: Vec<usize> = (next..next + n).collect();
        next += n;
        ps
    };
    let mut columns = vec![
        "$1::bigint[]".to_string(),
        "$2::bigint[]".into(),
        "$3::text[]".into(),
        "$4::jsonb[]".into(),
        "$5::text[]".into(),
        "$6::text[]".into(),
        "$7::bigint[]".into(),
        "$8::timestamptz[]".into(),
    ];
    let mut names = vec![
        "id",
        "expected",
        "stage",
        "fields",
        "priority",
        "queue",
        "version",
        "updated_at",
    ];
    let mut add = |types: &[&'static str], cols: &[&'static str]| {
        for (p, (t, c)) in params(types.len()).into_iter().zip(types.iter().zip(cols)) {
            columns.push(format!("${p}::{t}[]"));
            names.push(c);
        }
    };
    if p.close {
        add(
            &["bigint", "boolean", "bigint", "text", "bigint"],
            &["close_task", "by_token", "token", "who", "now"],
        );
    }
    if p.update {
        add(
            &["bigint", "text", "integer", "bigint", "text", "bigint"],
            &["u_task", "u_queue", "u_priority", "u_due", "u_to", "u_ola"],
        );
    }
    if p.wakeup_set || p.wakeup_cleared {
        add(&["bigint", "boolean"], &["wake_at", "wake_clear"]);
    }
    if p.new_task {
        add(
            &[
                "text", "text", "text", "integer", "bigint", "bigint", "text", "bigint",
            ],
            &[
                "n_process",
                "n_stage",
                "n_queue",
                "n_priority",
                "n_due",
                "n_created",
                "n_to",
                "n_ola",
            ],
        );
    }
    let notes = p.notifications.then(|| params(6));

    let mut sql = format!(
        "WITH ch AS MATERIALIZED (SELECT * FROM UNNEST({}) AS ch({})), ",
        columns.join(", "),
        names.join(", ")
    );
    if p.close {
        // Tasks are locked in id order, and before any instance: two batches never wait on
        // each other in a circle over tasks. They are found by id alone and the fence checked
        // on the locked rows: with the fence in the locking scan's condition, its state test
        // can match the predicate of a partial index of tasks, which the planner may then read
        // whole while that index is small, and a pooled connection keeps the plan as it grows
        // (see migration 0006). Each is looked up on its own (a lateral join on the primary
        // key), in id order: as a semi-join, the planner hashes a scan of the whole table
        // while its statistics still say it is small (a fresh database under load), and a
        // pooled connection keeps that plan as the table grows.
        sql.push_str(
            "l AS (SELECT t.id, t.state, t.token, t.claimed_by, t.lease_until \
                   FROM (SELECT DISTINCT close_task FROM ch WHERE close_task IS NOT NULL ORDER BY close_task) AS w \
                   CROSS JOIN LATERAL (SELECT id, state, token, claimed_by, lease_until FROM tasks \
                                       WHERE tasks.id = w.close_task FOR UPDATE) AS t), \
             f AS (SELECT ch.id AS instance_id, l.id AS task FROM ch JOIN l ON l.id = ch.close_task \
                   WHERE CASE WHEN ch.by_token \
                         THEN l.state = 'claimed' AND l.token = ch.token AND l.claimed_by = ch.who \
                         ELSE l.state <> 'done' AND NOT (l.state = 'claimed' AND l.lease_until > ch.now AND l.claimed_by <> ch.who) END), ",
        );
    }
    let fenced = if p.close {
        " AND (ch.close_task IS NULL OR ch.id IN (SELECT instance_id FROM f))"
    } else {
        ""
    };
    sql.push_str(&format!(
        "i AS (UPDATE instances SET stage = ch.stage, fields = ch.fields, priority = ch.priority, queue = ch.queue, \
               version = ch.version, updated_at = ch.updated_at \
               FROM ch WHERE instances.id = ch.id AND instances.version = ch.expected{fenced} RETURNING instances.id), "
    ));
    if p.close {
        sql.push_str(
            "c AS (UPDATE tasks SET state = 'done', lease_until = NULL \
                   WHERE id IN (SELECT f.task FROM f JOIN i ON i.id = f.instance_id) RETURNING id, instance_id), ",
        );
    }
    if p.update {
        sql.push_str(
            "u AS (UPDATE tasks t SET assigned_to = CASE WHEN t.queue = ch.u_queue THEN t.assigned_to ELSE ch.u_to END, \
                   state = CASE WHEN t.queue = ch.u_queue THEN t.state ELSE 'open' END, \
                   claimed_by = CASE WHEN t.queue = ch.u_queue THEN t.claimed_by ELSE NULL END, \
                   lease_until = CASE WHEN t.queue = ch.u_queue THEN t.lease_until ELSE NULL END, \
                   queue = ch.u_queue, priority = ch.u_priority, due_at = ch.u_due, ola_due_at = ch.u_ola \
                   FROM ch JOIN i ON i.id = ch.id WHERE t.id = ch.u_task AND t.state <> 'done' RETURNING t.*), ",
        );
    }
    if p.wakeup_set {
        sql.push_str(
            "ws AS (INSERT INTO wakeups (instance_id, due_at, fire_at) \
                    SELECT ch.id, ch.wake_at, ch.wake_at FROM ch JOIN i ON i.id = ch.id WHERE ch.wake_at IS NOT NULL \
                    ON CONFLICT (instance_id) DO UPDATE SET due_at = excluded.due_at, fire_at = excluded.fire_at), ",
        );
    }
    if p.wakeup_cleared {
        sql.push_str(
            "wc AS (DELETE FROM wakeups WHERE instance_id IN \
                    (SELECT ch.id FROM ch JOIN i ON i.id = ch.id WHERE ch.wake_clear)), ",
        );
    }
    if let Some(n) = &notes {
        sql.push_str(&format!(
            "o AS (INSERT INTO notifications (instance_id, role, clock, threshold, message, created_at, deliver_at) \
                   SELECT n.instance_id, n.role, n.clock, n.threshold, n.message, \
                          (EXTRACT(EPOCH FROM ch.updated_at) * 1000000)::bigint, n.deliver_at \
                   FROM UNNEST(${}::bigint[], ${}::text[], ${}::text[], ${}::text[], ${}::text[], ${}::bigint[]) \
                        AS n(instance_id, role, clock, threshold, message, deliver_at) \
                   JOIN ch ON ch.id = n.instance_id JOIN i ON i.id = n.instance_id), ",
            n[0], n[1], n[2], n[3], n[4], n[5]
        ));
    }
    if p.new_task {
        // Reading `c` closes each instance's old task before its new one opens (one open task
        // per instance is a unique index).
        let after_close = if p.close {
            " AND (ch.close_task IS NULL OR ch.id IN (SELECT instance_id FROM c))"
        } else {
            ""
        };
        sql.push_str(&format!(
            "n AS (INSERT INTO tasks (instance_id, process, stage, queue, priority, due_at, created_at, state, assigned_to, ola_due_at) \
                   SELECT ch.id, ch.n_process, ch.n_stage, ch.n_queue, ch.n_priority, ch.n_due, ch.n_created, 'open', ch.n_to, ch.n_ola \
                   FROM ch JOIN i ON i.id = ch.id WHERE ch.n_queue IS NOT NULL{after_close} RETURNING *), "
        ));
    }
    sql.push_str(
        "e AS (INSERT INTO events (instance_id, seq, at, actor, kind, data, reason) \
               SELECT * FROM UNNEST($9::bigint[], $10::bigint[], $11::timestamptz[], $12::text[], $13::text[], $14::jsonb[], $15::text[]) \
               AS ev(instance_id, seq, at, actor, kind, data, reason) WHERE ev.instance_id IN (SELECT id FROM i)) \
         SELECT ch.id, ch.id IN (SELECT id FROM i) AS updated",
    );
    if p.close {
        sql.push_str(", CASE WHEN ch.close_task IS NULL THEN NULL ELSE ch.id IN (SELECT instance_id FROM f) END AS fenced");
    }
    // A change updates its open task or opens a new one, never both (the update is for an
    // instance staying in its stage).
    match (p.update, p.new_task) {
        (true, true) => sql.push_str(
            ", COALESCE((SELECT row_to_json(u) FROM u WHERE u.instance_id = ch.id), \
                        (SELECT row_to_json(n) FROM n WHERE n.instance_id = ch.id)) AS task",
        ),
        (true, false) => {
            sql.push_str(", (SELECT row_to_json(u) FROM u WHERE u.instance_id = ch.id) AS task")
        }
        (false, true) => {
            sql.push_str(", (SELECT row_to_json(n) FROM n WHERE n.instance_id = ch.id) AS task")
        }
        (false, false) => {}
    }
    sql.push_str(" FROM ch");
    sql
}

/// A change's events as one array per column, for `UNNEST`.
#[derive(Default)]
struct EventColumns {
    seq: Vec<i64>,
    at: Vec<DateTime<Utc>>,
    actor: Vec<String>,
    kind: Vec<String>,
    data: Vec<Json>,
    reason: Vec<Option<String>>,
}

impl EventColumns {
    fn extend(&mut self, events: &[sql::EventRow]) {
        for e in events {
            self.seq.push(e.seq);
            self.at.push(e.at);
            self.actor.push(e.actor.clone());
            self.kind.push(e.kind.to_string());
            self.data.push(e.data.clone());
            self.reason.push(e.reason.clone());
        }
    }
}

/// The batch's columns, one entry per change (or per event, per notification).
#[derive(Default)]
struct Columns {
    id: Vec<i64>,
    expected: Vec<i64>,
    stage: Vec<String>,
    fields: Vec<Json>,
    priority: Vec<Option<String>>,
    queue: Vec<Option<String>>,
    version: Vec<i64>,
    updated_at: Vec<DateTime<Utc>>,
    event_instance: Vec<i64>,
    events: EventColumns,
    close_task: Vec<Option<i64>>,
    by_token: Vec<Option<bool>>,
    token: Vec<Option<i64>>,
    who: Vec<Option<String>>,
    now: Vec<Option<i64>>,
    u_task: Vec<Option<i64>>,
    u_queue: Vec<Option<String>>,
    u_priority: Vec<Option<i32>>,
    u_due: Vec<Option<i64>>,
    u_to: Vec<Option<String>>,
    u_ola: Vec<Option<i64>>,
    wake_at: Vec<Option<i64>>,
    wake_clear: Vec<bool>,
    n_process: Vec<Option<String>>,
    n_stage: Vec<Option<String>>,
    n_queue: Vec<Option<String>>,
    n_priority: Vec<Option<i32>>,
    n_due: Vec<Option<i64>>,
    n_created: Vec<Option<i64>>,
    n_to: Vec<Option<String>>,
    n_ola: Vec<Option<i64>>,
    note_instance: Vec<i64>,
    notes: NotificationArrays,
}

impl Columns {
    fn of(changes: &[&ChangeRows]) -> Self {
        let mut c = Columns::default();
        for rows in changes {
            let i = &rows.instance;
            c.id.push(i.id);
            c.expected.push(rows.expected_version);
            c.stage.push(i.stage.clone());
            c.fields.push(i.fields.clone());
            c.priority.push(i.priority.clone());
            c.queue.push(i.queue.clone());
            c.version.push(i.version);
            c.updated_at.push(i.updated_at);
            c.event_instance
                .extend(std::iter::repeat_n(i.id, rows.events.len()));
            c.events.extend(&rows.events);
            match &rows.close_task {
                Some(close) => {
                    c.close_task.push(Some(close.task.0));
                    match &close.fence {
                        Fence::Token { token, agent } => {
                            c.by_token.push(Some(true));
                            c.token.push(Some(*token));
                            c.who.push(Some(agent.to_string()));
                            c.now.push(None);
                        }
                        Fence::NotClaimedByOther { actor, now } => {
                            c.by_token.push(Some(false));
                            c.token.push(None);
                            c.who.push(Some(actor.to_string()));
                            c.now.push(Some(sql::micros(*now)));
                        }
                    }
                }
                None => {
                    c.close_task.push(None);
                    c.by_token.push(None);
                    c.token.push(None);
                    c.who.push(None);
                    c.now.push(None);
                }
            }
            let u = rows.update_task.as_ref();
            c.u_task.push(u.map(|u| u.task.0));
            c.u_queue.push(u.map(|u| u.queue.to_string()));
            c.u_priority
                .push(u.map(|u| sql::priority_column(u.priority)));
            c.u_due.push(u.map(|u| sql::due_column(u.due_at)));
            c.u_to
                .push(u.and_then(|u| u.assigned_to.as_deref().map(str::to_string)));
            c.u_ola.push(u.map(|u| sql::due_column(u.ola_due_at)));
            c.wake_at.push(rows.wakeup.flatten());
            c.wake_clear.push(matches!(rows.wakeup, Some(None)));
            let n = rows.new_task.as_ref();
            c.n_process.push(n.map(|t| t.process.to_string()));
            c.n_stage.push(n.map(|t| t.stage.to_string()));
            c.n_queue.push(n.map(|t| t.queue.to_string()));
            c.n_priority
                .push(n.map(|t| sql::priority_column(t.priority)));
            c.n_due.push(n.map(|t| sql::due_column(t.due_at)));
            c.n_created.push(n.map(|_| sql::micros(i.updated_at)));
            c.n_to
                .push(n.and_then(|t| t.assigned_to.as_deref().map(str::to_string)));
            c.n_ola.push(n.map(|t| sql::due_column(t.ola_due_at)));
            c.note_instance
                .extend(std::iter::repeat_n(i.id, rows.notifications.len()));
            c.notes.extend(&rows.notifications);
        }
        c
    }
}

/// Write the changes with one statement; each one's outcome, in order.
async fn commit_together(pool: &PgPool, changes: &[&ChangeRows]) -> Result<Vec<Outcome>> {
    let parts = Parts::of(changes);
    let c = Columns::of(changes);
    let mut q = sqlx::query(parts.statement())
        .bind(&c.id)
        .bind(&c.expected)
        .bind(&c.stage)
        .bind(&c.fields)
        .bind(&c.priority)
        .bind(&c.queue)
        .bind(&c.version)
        .bind(&c.updated_at)
        .bind(&c.event_instance)
        .bind(&c.events.seq)
        .bind(&c.events.at)
        .bind(&c.events.actor)
        .bind(&c.events.kind)
        .bind(&c.events.data)
        .bind(&c.events.reason);
    if parts.close {
        q = q
            .bind(&c.close_task)
            .bind(&c.by_token)
            .bind(&c.token)
            .bind(&c.who)
            .bind(&c.now);
    }
    if parts.update {
        q = q
            .bind(&c.u_task)
            .bind(&c.u_queue)
            .bind(&c.u_priority)
            .bind(&c.u_due)
            .bind(&c.u_to)
            .bind(&c.u_ola);
    }
    if parts.wakeup_set || parts.wakeup_cleared {
        q = q.bind(&c.wake_at).bind(&c.wake_clear);
    }
    if parts.new_task {
        q = q
            .bind(&c.n_process)
            .bind(&c.n_stage)
            .bind(&c.n_queue)
            .bind(&c.n_priority)
            .bind(&c.n_due)
            .bind(&c.n_created)
            .bind(&c.n_to)
            .bind(&c.n_ola);
    }
    if parts.notifications {
        q = q
            .bind(&c.note_instance)
            .bind(&c.notes.role)
            .bind(&c.notes.clock)
            .bind(&c.notes.threshold)
            .bind(&c.notes.message)
            .bind(&c.notes.deliver_at);
    }
    let rows = q.fetch_all(pool).await?;
    let mut by_instance = std::collections::HashMap::with_capacity(rows.len());
    for row in &rows {
        by_instance.insert(row.try_get::<i64, _>("id")?, row);
    }
    changes
        .iter()
        .map(|change| {
            let row = by_instance
                .get(&change.instance.id)
                .ok_or_else(|| StoreError::Corrupt("a batch lost a change".into()))?;
            outcome(&parts, row)
        })
        .collect()
}

fn outcome(parts: &Parts, row: &PgRow) -> Result<Outcome> {
    let fenced: Option<bool> = if parts.close {
        row.try_get("fenced")?
    } else {
        None
    };
    if !row.try_get::<bool, _>("updated")? {
        return Ok(Outcome::Refused { fenced });
    }
    let task: Option<Json> = if parts.update || parts.new_task {
        row.try_get("task")?
    } else {
        None
    };
    Ok(Outcome::Written(Box::new(Committed {
        spawned: Vec::new(),
        task: task.map(|t| sql::task_from_json(&t)).transpose()?,
        cascaded: Vec::new(),
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every statement's placeholders are exactly `$1..$n`, `n` being what `commit_together`
    /// binds for those parts: the two are written apart and must agree.
    #[test]
    fn each_statement_takes_the_parameters_bound_for_it() {
        for key in 0..64usize {
            let bit = |b: usize| key & (1 << b) != 0;
            let parts = Parts {
                close: bit(0),
                update: bit(1),
                new_task: bit(2),
                wakeup_set: bit(3),
                wakeup_cleared: bit(4),
                notifications: bit(5),
            };
            assert_eq!(parts.key(), key);
            let bound = 15
                + 5 * usize::from(parts.close)
                + 6 * usize::from(parts.update)
                + 2 * usize::from(parts.wakeup_set || parts.wakeup_cleared)
                + 8 * usize::from(parts.new_task)
                + 6 * usize::from(parts.notifications);
            let sql = parts.statement();
            let mut used: Vec<usize> = sql
                .split('$')
                .skip(1)
                .filter_map(|rest| {
                    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                    digits.parse().ok()
                })
                .collect();
            used.sort_unstable();
            used.dedup();
            assert_eq!(
                used,
                (1..=bound).collect::<Vec<_>>(),
                "parts {key:06b}: {sql}"
            );
        }
    }
}
