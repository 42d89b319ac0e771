//! One migration mechanism for every set of tables in a database.
//!
//! The engine's tables and the server's identity tables (`auth_*`) live in one database, and
//! both are versioned by sqlx's migrator in its one `_sqlx_migrations` table. Each set owns a
//! range of versions (the engine below 1000, identity from 1001), so neither takes the
//! other's steps for its own. sqlx refuses a database holding an applied step it does not
//! know (a newer binary migrated it); with two sets in one table each would see the other's
//! steps that way, so that check is made here instead, over the set's own range only: a
//! database migrated by a newer itsmflow is still refused, before anything changes.

use std::ops::RangeInclusive;

use sqlx::migrate::{Migrate, MigrateError, Migrator};
use sqlx::{Database, Pool};

#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error(transparent)]
    Sqlx(#[from] MigrateError),
    #[error(
        "the database was migrated by a newer itsmflow: step {version} of the {set} tables is \
         unknown to this one; run that version, or restore a backup taken before"
    )]
    Newer { set: &'static str, version: i64 },
}

impl From<sqlx::Error> for MigrationError {
    fn from(e: sqlx::Error) -> Self {
        MigrationError::Sqlx(MigrateError::Execute(e))
    }
}

/// A set of tables and its migrations, which own `versions` in `_sqlx_migrations`.
pub struct MigrationSet {
    name: &'static str,
    versions: RangeInclusive<i64>,
    migrator: Migrator,
}

/// The engine's steps: versions below 1000.
pub const ENGINE_VERSIONS: RangeInclusive<i64> = 1..=999;
/// The identity tables' steps (tenants, users, tokens, sessions): versions 1001 to 1999.
pub const IDENTITY_VERSIONS: RangeInclusive<i64> = 1001..=1999;

impl MigrationSet {
    /// `migrator` (from `sqlx::migrate!`) must hold only versions in `versions`; a test of
    /// each set checks it.
    pub fn new(name: &'static str, versions: RangeInclusive<i64>, mut migrator: Migrator) -> Self {
        // Steps of the other sets are in the same table: sqlx must not refuse them.
        migrator.set_ignore_missing(true);
        MigrationSet {
            name,
            versions,
            migrator,
        }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The steps of this set, in order.
    pub fn migrations(&self) -> impl Iterator<Item = &sqlx::migrate::Migration> {
        self.migrator.iter()
    }

    /// Whether every step is in the set's own range.
    pub fn within_range(&self) -> bool {
        self.migrator
            .iter()
            .all(|m| self.versions.contains(&m.version))
    }

    /// Apply the steps not applied yet, after refusing a database that holds a step of this
    /// set this binary does not know. sqlx still refuses a known step whose text changed.
    pub async fn run<DB>(&self, pool: &Pool<DB>) -> Result<(), MigrationError>
    where
        DB: Database,
        DB::Connection: Migrate,
    {
        {
            let mut conn = pool.acquire().await?;
            conn.ensure_migrations_table().await?;
            let applied = conn.list_applied_migrations().await?;
            if let Some(unknown) = applied.iter().find(|m| {
                self.versions.contains(&m.version) && !self.migrator.version_exists(m.version)
            }) {
                return Err(MigrationError::Newer {
                    set: self.name,
                    version: unknown.version,
                });
            }
        }
        self.migrator.run(pool).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_engine_steps_stay_below_the_identity_range() {
        for set in [
            crate::store::sqlite::migrations(),
            crate::store::postgres::migrations(),
        ] {
            assert!(
                set.within_range(),
                "an engine step is numbered 1000 or more"
            );
            assert!(set.migrations().count() > 0);
        }
    }
}
