//! Agents' saved queue filters: a name for a queue's filter and sort (the query string of the
//! queue page), kept per user and tenant in the main database beside the sessions, so they
//! follow the user from browser to browser. The web pages alone read and write them.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{micros, time, IdentityStore, Result};

/// A saved filter: open it as `/queues/{queue}?{query}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SavedFilter {
    pub queue: String,
    pub name: String,
    /// The filter's query string, as the queue page writes it (no leading `?`).
    pub query: String,
    pub created_at: DateTime<Utc>,
}

impl IdentityStore {
    /// Save a filter under `name` for `queue`, replacing the one of that name (saving again
    /// is how a filter is changed).
    pub async fn save_filter(&self, tenant: &str, user: &str, filter: &SavedFilter) -> Result<()> {
        on_db!(self, |pool| {
            sqlx::query(
                "INSERT INTO auth_saved_filters (tenant, user_name, queue, name, query, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (tenant, user_name, queue, name) \
                 DO UPDATE SET query = excluded.query, created_at = excluded.created_at",
            )
            .bind(tenant)
            .bind(user)
            .bind(&filter.queue)
            .bind(&filter.name)
            .bind(&filter.query)
            .bind(micros(filter.created_at))
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// A user's saved filters, by queue then name.
    pub async fn saved_filters(&self, tenant: &str, user: &str) -> Result<Vec<SavedFilter>> {
        let rows = on_db!(self, |pool| {
            sqlx::query(
                "SELECT queue, name, query, created_at FROM auth_saved_filters \
                 WHERE tenant = $1 AND user_name = $2 ORDER BY queue, name",
            )
            .bind(tenant)
            .bind(user)
            .fetch_all(pool)
            .await?
            .iter()
            .map(|r| {
                Ok(SavedFilter {
                    queue: r.try_get("queue")?,
                    name: r.try_get("name")?,
                    query: r.try_get("query")?,
                    created_at: time(r.try_get("created_at")?)?,
                })
            })
            .collect::<Result<Vec<_>>>()?
        });
        Ok(rows)
    }

    /// Delete a user's saved filter; false if there was none of that name.
    pub async fn delete_filter(
        &self,
        tenant: &str,
        user: &str,
        queue: &str,
        name: &str,
    ) -> Result<bool> {
        let done = on_db!(self, |pool| {
            sqlx::query(
                "DELETE FROM auth_saved_filters \
                 WHERE tenant = $1 AND user_name = $2 AND queue = $3 AND name = $4",
            )
            .bind(tenant)
            .bind(user)
            .bind(queue)
            .bind(name)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(done == 1)
    }
}
