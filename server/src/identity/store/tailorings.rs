//! Each tenant's tailoring of the standard processes: the client's files, kept in the main
//! database so that every node, and every later start, derives the tenant's processes from the
//! standard library and the same files.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{micros, time, IdentityStore, Result};

/// A tenant's tailoring as stored: its files, in the order given, and who last set them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredTailoring {
    /// `(name, text)` of each file.
    pub files: Vec<(String, String)>,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct FileRow {
    name: String,
    text: String,
}

impl IdentityStore {
    /// The tenant's tailoring, if it has one.
    pub async fn tailoring(&self, tenant: &str) -> Result<Option<StoredTailoring>> {
        let row = on_db!(self, |pool| {
            sqlx::query(
                "SELECT files, updated_at, updated_by FROM auth_tailorings WHERE tenant = $1",
            )
            .bind(tenant)
            .fetch_optional(pool)
            .await?
            .map(|r| {
                Ok::<_, sqlx::Error>((
                    r.try_get::<String, _>("files")?,
                    r.try_get::<i64, _>("updated_at")?,
                    r.try_get::<String, _>("updated_by")?,
                ))
            })
            .transpose()?
        });
        let Some((files, updated_at, updated_by)) = row else {
            return Ok(None);
        };
        let files: Vec<FileRow> = serde_json::from_str(&files)?;
        Ok(Some(StoredTailoring {
            files: files.into_iter().map(|f| (f.name, f.text)).collect(),
            updated_at: time(updated_at)?,
            updated_by,
        }))
    }

    /// Set the tenant's tailoring (replacing the one it had).
    pub async fn set_tailoring(&self, tenant: &str, tailoring: &StoredTailoring) -> Result<()> {
        let files: Vec<FileRow> = tailoring
            .files
            .iter()
            .map(|(name, text)| FileRow {
                name: name.clone(),
                text: text.clone(),
            })
            .collect();
        let files = serde_json::to_string(&files)?;
        on_db!(self, |pool| {
            sqlx::query(
                "INSERT INTO auth_tailorings (tenant, files, updated_at, updated_by) \
                 VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (tenant) DO UPDATE SET files = excluded.files, \
                 updated_at = excluded.updated_at, updated_by = excluded.updated_by",
            )
            .bind(tenant)
            .bind(&files)
            .bind(micros(tailoring.updated_at))
            .bind(&tailoring.updated_by)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Drop the tenant's tailoring; false if it had none.
    pub async fn delete_tailoring(&self, tenant: &str) -> Result<bool> {
        let done = on_db!(self, |pool| {
            sqlx::query("DELETE FROM auth_tailorings WHERE tenant = $1")
                .bind(tenant)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(done == 1)
    }
}
