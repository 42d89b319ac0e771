//! Claims made together: agents asking for the next task of one queue at the same time are
//! served by one statement, in one transaction.
//!
//! As with changes ([`super::batch`]), the fixed cost of a statement and of a commit is most of
//! the cost of a claim, so a claimer task takes the requests waiting when it is free and
//! serves those of each queue together. A request that arrives alone is served alone, at once.
//!
//! Each agent gets what claiming alone would have given it, had the requests of the batch run
//! one after another in the order they arrived: the open, unpushed tasks of the queue are taken
//! in queue order with `FOR UPDATE SKIP LOCKED`, as many as there are requests, and handed out
//! in that order. An agent with tasks pushed to it in the queue may have one of those come
//! first, so its request is served on its own instead, by the one-request statement.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};

use super::gather::{Gathering, Waiting};
use super::task_from_row;
use crate::record::types::*;
use crate::record::Definitions;
use crate::store::sql;
use crate::store::{Result, StoreError};

/// Requests served by one statement at most.
const MOST_PER_BATCH: usize = 64;

/// A claimed task with its instance as of the claim.
pub(super) type Claimed = Option<(Task, Arc<Instance>)>;

/// An agent asking for the next task of a queue.
struct Ask {
    queue: String,
    agent: String,
    /// Microseconds.
    lease_until: i64,
}

/// The way to the claimer tasks. They end when this is dropped, after serving the requests
/// handed to them.
pub(super) struct Claimer {
    gathering: Gathering<Ask, Claimed>,
    together: Arc<AtomicU64>,
}

impl Claimer {
    /// Start `tasks` claimer tasks on the current runtime, claiming through `pool`.
    pub(super) fn start(pool: PgPool, catalog: Arc<dyn Definitions>, tasks: usize) -> Self {
        let together = Arc::new(AtomicU64::new(0));
        let counter = together.clone();
        let gathering = Gathering::start(tasks, MOST_PER_BATCH, move |waiting| {
            serve_queues(pool.clone(), catalog.clone(), waiting, counter.clone())
        });
        Claimer {
            gathering,
            together,
        }
    }

    /// Claim the next task of `queue` for `agent` until `lease_until` (microseconds), alone or
    /// with others.
    pub(super) async fn claim_next(
        &self,
        queue: &str,
        agent: &str,
        lease_until: i64,
    ) -> Result<Claimed> {
        self.gathering
            .ask(Ask {
                queue: queue.to_string(),
                agent: agent.to_string(),
                lease_until,
            })
            .await
    }

    /// How many requests were served by a statement with others.
    pub(super) fn claims_made_together(&self) -> u64 {
        self.together.load(Ordering::Relaxed)
    }
}

/// Serve the requests taken together, queue by queue, each queue's in the order they arrived.
async fn serve_queues(
    pool: PgPool,
    catalog: Arc<dyn Definitions>,
    mut waiting: Vec<Waiting<Ask, Claimed>>,
    together: Arc<AtomicU64>,
) {
    while !waiting.is_empty() {
        let queue = waiting[0].request.queue.clone();
        let (same, rest): (Vec<_>, Vec<_>) =
            waiting.into_iter().partition(|w| w.request.queue == queue);
        waiting = rest;
        serve(&pool, &*catalog, &queue, same, &together).await;
    }
}

/// Serve the requests for one queue and answer each.
async fn serve(
    pool: &PgPool,
    catalog: &dyn Definitions,
    queue: &str,
    requests: Vec<Waiting<Ask, Claimed>>,
    together: &AtomicU64,
) {
    if requests.len() == 1 {
        return serve_each(pool, catalog, queue, requests).await;
    }
    match claim_together(pool, catalog, queue, &requests).await {
        Ok(served) => {
            together.fetch_add(requests.len() as u64, Ordering::Relaxed);
            let mut alone = Vec::new();
            for (w, served) in requests.into_iter().zip(served) {
                match served {
                    Served::Claimed(claimed) => w.answer(Ok(claimed)),
                    Served::Alone => alone.push(w),
                }
            }
            serve_each(pool, catalog, queue, alone).await;
        }
        Err(e) if super::nothing_written(&e) => serve_each(pool, catalog, queue, requests).await,
        Err(e) => {
            // The connection failed with the statement sent: tasks may have been claimed
            // (their leases will run out); the agents ask again.
            for w in requests {
                w.answer(Err(StoreError::Uncertain(e.to_string())));
            }
        }
    }
}

async fn serve_each(
    pool: &PgPool,
    catalog: &dyn Definitions,
    queue: &str,
    requests: Vec<Waiting<Ask, Claimed>>,
) {
    for w in requests {
        let claimed = claim_one(
            pool,
            catalog,
            queue,
            &w.request.agent,
            w.request.lease_until,
        )
        .await;
        w.answer(claimed);
    }
}

/// What a request in a batch got.
enum Served {
    Claimed(Claimed),
    /// The agent has tasks pushed to it in the queue: serve it alone.
    Alone,
}

/// The claimed task's instance `i`, beside the task's own columns: the columns
/// [`claimed_from_row`] reads, prefixed `i_`.
macro_rules! instance_columns {
    () => {
        "i.definition_id AS i_definition_id, i.stage AS i_stage, i.fields AS i_fields, \
         i.priority AS i_priority, i.queue AS i_queue, i.version AS i_version, \
         i.created_at AS i_created_at, i.updated_at AS i_updated_at, i.created_by AS i_created_by"
    };
}

/// One agent's claim, alone.
pub(super) async fn claim_one(
    pool: &PgPool,
    catalog: &dyn Definitions,
    queue: &str,
    agent: &str,
    lease_until: i64,
) -> Result<Claimed> {
    // The instance as of the claim's snapshot: whoever uses it relies on the version check of
    // the change it makes, like any read.
    let row: Option<PgRow> = sqlx::query(claim_next_then!(concat!(
        "SELECT c.*, ",
        instance_columns!(),
        " FROM c JOIN instances i ON i.id = c.instance_id"
    )))
    .bind(agent)
    .bind(lease_until)
    .bind(queue)
    .fetch_optional(pool)
    .await?;
    row.map(|row| claimed_from_row(catalog, &row)).transpose()
}

/// A claimed task (its columns as they are) and its instance (its columns prefixed `i_`), from
/// one row: no JSON to build on the server nor to parse here.
fn claimed_from_row(catalog: &dyn Definitions, row: &PgRow) -> Result<(Task, Arc<Instance>)> {
    let instance = sql::InstanceRow {
        id: row.try_get("instance_id")?,
        definition_id: row.try_get("i_definition_id")?,
        process: row.try_get("process")?,
        stage: row.try_get("i_stage")?,
        fields: row.try_get("i_fields")?,
        priority: row.try_get("i_priority")?,
        queue: row.try_get("i_queue")?,
        version: row.try_get("i_version")?,
        created_at: row.try_get("i_created_at")?,
        updated_at: row.try_get("i_updated_at")?,
        created_by: row.try_get("i_created_by")?,
    };
    let inst = sql::decode_instance(catalog, instance)?;
    Ok((task_from_row(row)?, Arc::new(inst)))
}

/// The requests (`$1` agents, `$2` leases, in order of arrival) served together from queue
/// `$3`: the open unpushed tasks first in queue order, locked, numbered, and given to the
/// requests of agents without pushed tasks there, numbered in order too. One row per request.
///
/// Whether an agent has pushed tasks in the queue is one probe of the index of open pushed
/// tasks by assignee and queue (migration 0008). The limit is a subquery: with it, the planner
/// still reads the queue's index in order, even for a generic plan over a long queue (checked
/// with 50,000 open tasks), where a sort would read them all.
const CLAIM_TOGETHER: &str = concat!(
    "\
WITH req AS MATERIALIZED ( \
     SELECT agent, lease_until, n FROM UNNEST($1::text[], $2::bigint[]) WITH ORDINALITY AS r(agent, lease_until, n)), \
 pushed AS MATERIALIZED ( \
     SELECT agent FROM req r WHERE EXISTS ( \
         SELECT 1 FROM tasks t WHERE t.assigned_to = r.agent AND t.queue = $3 AND t.state = 'open')), \
 asking AS MATERIALIZED ( \
     SELECT agent, lease_until, n, row_number() OVER (ORDER BY n) AS k FROM req \
     WHERE agent NOT IN (SELECT agent FROM pushed)), \
 next AS ( \
     SELECT id, row_number() OVER (ORDER BY priority, due_at, created_at, id) AS k FROM ( \
         SELECT id, priority, due_at, created_at FROM tasks \
         WHERE queue = $3 AND state = 'open' AND assigned_to IS NULL \
         ORDER BY priority, due_at, created_at, id \
         LIMIT (SELECT count(*) FROM asking) FOR UPDATE SKIP LOCKED) s), \
 c AS ( \
     UPDATE tasks t SET state = 'claimed', claimed_by = a.agent, lease_until = a.lease_until, token = t.token + 1 \
     FROM next JOIN asking a ON a.k = next.k WHERE t.id = next.id \
     RETURNING t.*, a.n AS request) \
SELECT req.n, req.agent IN (SELECT agent FROM pushed) AS pushed, c.*, ",
    instance_columns!(),
    " \
FROM req LEFT JOIN c ON c.request = req.n LEFT JOIN instances i ON i.id = c.instance_id \
ORDER BY req.n"
);

/// Serve the requests with one statement; what each got, in order.
async fn claim_together(
    pool: &PgPool,
    catalog: &dyn Definitions,
    queue: &str,
    requests: &[Waiting<Ask, Claimed>],
) -> Result<Vec<Served>> {
    let agents: Vec<&str> = requests.iter().map(|w| w.request.agent.as_str()).collect();
    let leases: Vec<i64> = requests.iter().map(|w| w.request.lease_until).collect();
    let rows = sqlx::query(CLAIM_TOGETHER)
        .bind(&agents)
        .bind(&leases)
        .bind(queue)
        .fetch_all(pool)
        .await?;
    if rows.len() != requests.len() {
        return Err(StoreError::Corrupt(format!(
            "{} requests served by {} rows",
            requests.len(),
            rows.len()
        )));
    }
    rows.iter()
        .map(|row| {
            if row.try_get::<bool, _>("pushed")? {
                return Ok(Served::Alone);
            }
            // A request that got no task has a row of nulls beside it.
            let task: Option<i64> = row.try_get("id")?;
            Ok(Served::Claimed(match task {
                Some(_) => Some(claimed_from_row(catalog, row)?),
                None => None,
            }))
        })
        .collect()
}
