//! Instances read together: requests for an instance with its open task that arrive while
//! another read is on its way are served by one statement.
//!
//! An action on a ticket starts by reading it, and under load many agents act at once. The
//! fixed cost of a statement (a round trip, parsing, planning, a snapshot) is most of the
//! cost of such a read, so a reader task takes every request waiting when it is free and reads
//! those instances with one `= ANY` lookup. A request that arrives alone is served alone, at
//! once. Reads change nothing, so serving them together answers each exactly as reading it
//! alone at that moment would.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use sqlx::{PgPool, Row};

use super::gather::{Gathering, Waiting};
use super::{instance_and_task, INSTANCES_WITH_TASK};
use crate::record::types::InstanceId;
use crate::record::Definitions;
use crate::store::{InstanceAndTask, Result, StoreError};

/// Instances read by one statement at most.
const MOST_PER_BATCH: usize = 128;

/// The way to the reader tasks. They end when this is dropped, after serving the requests
/// handed to them.
pub(super) struct Reader {
    gathering: Gathering<InstanceId, Option<InstanceAndTask>>,
    together: Arc<AtomicU64>,
}

impl Reader {
    /// Start `tasks` reader tasks on the current runtime, reading through `pool`.
    pub(super) fn start(pool: PgPool, catalog: Arc<dyn Definitions>, tasks: usize) -> Self {
        let together = Arc::new(AtomicU64::new(0));
        let counter = together.clone();
        let gathering = Gathering::start(tasks, MOST_PER_BATCH, move |waiting| {
            if waiting.len() > 1 {
                counter.fetch_add(waiting.len() as u64, Ordering::Relaxed);
            }
            serve(pool.clone(), catalog.clone(), waiting)
        });
        Reader {
            gathering,
            together,
        }
    }

    /// How many reads were served by one statement together with others.
    pub(super) fn read_together(&self) -> u64 {
        self.together.load(Ordering::Relaxed)
    }

    /// The instance with its open task, if it exists; alone or with others.
    pub(super) async fn instance_with_task(
        &self,
        id: InstanceId,
    ) -> Result<Option<InstanceAndTask>> {
        self.gathering.ask(id).await
    }
}

async fn serve(
    pool: PgPool,
    catalog: Arc<dyn Definitions>,
    waiting: Vec<Waiting<InstanceId, Option<InstanceAndTask>>>,
) {
    let ids: Vec<i64> = waiting.iter().map(|w| w.request.0).collect();
    match read(&pool, &*catalog, &ids).await {
        Ok(found) => {
            for w in waiting {
                let answer = match found.get(&w.request) {
                    None => Ok(None),
                    Some(Ok(read)) => Ok(Some(read.clone())),
                    Some(Err(why)) => Err(StoreError::Corrupt(why.clone())),
                };
                w.answer(answer);
            }
        }
        Err(e) => {
            // The statement read nothing: each request fails as reading alone would have.
            let message = e.to_string();
            for w in waiting {
                w.answer(Err(StoreError::Unavailable(message.clone())));
            }
        }
    }
}

/// The instances among `ids` that exist, each decoded on its own: one that cannot be decoded
/// fails its own request (as corrupt), not the others'.
async fn read(
    pool: &PgPool,
    catalog: &dyn Definitions,
    ids: &[i64],
) -> Result<HashMap<InstanceId, std::result::Result<InstanceAndTask, String>>> {
    let rows = sqlx::query(&format!("{INSTANCES_WITH_TASK} WHERE i.id = ANY($1)"))
        .bind(ids)
        .fetch_all(pool)
        .await?;
    let mut found = HashMap::with_capacity(rows.len());
    for row in &rows {
        let id: i64 = row.try_get("id")?;
        let decoded = instance_and_task(catalog, row).map_err(|e| e.to_string());
        found.insert(InstanceId(id), decoded);
    }
    Ok(found)
}
