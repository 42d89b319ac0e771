//! Tenants, users and tokens, in the main database (the SQLite file or PostgreSQL's `public`
//! schema) beside the default tenant's data, in tables of their own (`auth_*`).
//!
//! The tables are versioned by the engine's migrator, as steps 1001 to 1999 of the database's
//! one `_sqlx_migrations` (the files in `server/migrations/`; see
//! [`itsmflow_engine::store::migrations`]).

use chrono::{DateTime, SubsecRound, TimeZone, Utc};
use itsmflow_engine::store::migrations::{MigrationError, MigrationSet, IDENTITY_VERSIONS};
use itsmflow_engine::store::postgres::pool_options;
use serde::Serialize;
use sqlx::migrate::Migrate;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{PgPool, Row, SqlitePool};

use super::{new_token, token_hash, Principal};
use crate::database::Database;

/// Why a command could not open a server's database for a tenant.
#[derive(Debug, thiserror::Error)]
pub enum OpenForTenant {
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// No such database, or no such tenant in it.
    #[error("{0}")]
    Missing(String),
}

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("{0}")]
    Migration(#[from] MigrationError),
    #[error("stored roles cannot be read: {0}")]
    Corrupt(#[from] serde_json::Error),
    #[error("a stored instant is out of range ({0} microseconds): the database is damaged")]
    CorruptInstant(i64),
    #[error("no source of randomness: {0}")]
    Random(getrandom::Error),
    #[error("{0} already exists")]
    Exists(String),
    #[error("{0} does not exist")]
    Missing(String),
}

pub type Result<T> = std::result::Result<T, IdentityError>;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct User {
    pub tenant: String,
    pub name: String,
    pub roles: Vec<String>,
    /// Their manager, a user of the same tenant (who approves on their behalf where a
    /// process asks the `manager of` someone).
    pub manager: Option<String>,
    pub email: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// A token as listed: never its secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TokenInfo {
    pub id: i64,
    pub tenant: String,
    pub user: String,
    pub label: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// The outcome of presenting a token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    Valid {
        principal: Principal,
        expires_at: Option<DateTime<Utc>>,
    },
    Unknown,
    Revoked,
    Expired,
}

/// A session just started: the cookie's secret (shown to the browser only). Its CSRF token is
/// read with the session, on each page.
#[derive(Clone, Debug)]
pub struct NewSession {
    pub secret: String,
    pub expires_at: DateTime<Utc>,
}

/// A live session: who it is (roles as they are now) and the token its forms must carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    pub principal: Principal,
    pub csrf: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Clone, Debug)]
pub enum IdentityStore {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Run the same statement on whichever database this is. Placeholders are `$1`, `$2`, … in
/// order of first appearance (SQLite binds by position).
macro_rules! on_db {
    ($store:expr, |$pool:ident| $body:expr) => {
        match $store {
            IdentityStore::Sqlite($pool) => $body,
            IdentityStore::Postgres($pool) => $body,
        }
    };
}

/// The identity tables' steps: versions 1001 to 1999 of the engine's one migrator (see
/// [`itsmflow_engine::store::migrations`]), in `server/migrations/`.
fn migrations(db: &IdentityStore) -> MigrationSet {
    let migrator = match db {
        IdentityStore::Sqlite(_) => sqlx::migrate!("./migrations/sqlite"),
        IdentityStore::Postgres(_) => sqlx::migrate!("./migrations/postgres"),
    };
    MigrationSet::new("identity", IDENTITY_VERSIONS, migrator)
}

/// Before the identity tables moved onto the one migrator they recorded their steps in a
/// table of their own, `auth_migrations`, as versions 1 to 4: the steps now numbered 1001 to
/// 1004, with the same statements.
const LEGACY_OFFSET: i64 = 1000;

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// A stored instant; out of range is damage to the database, never read as 1970.
fn time(us: i64) -> Result<DateTime<Utc>> {
    Utc.timestamp_micros(us)
        .single()
        .ok_or(IdentityError::CorruptInstant(us))
}

fn user_from_row<R: Row>(row: &R) -> Result<User>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    let roles: String = row.try_get("roles")?;
    Ok(User {
        tenant: row.try_get("tenant")?,
        name: row.try_get("name")?,
        roles: serde_json::from_str(&roles)?,
        manager: row.try_get("manager")?,
        email: row.try_get("email")?,
        created_at: time(row.try_get("created_at")?)?,
    })
}

fn token_from_row<R: Row>(row: &R) -> Result<TokenInfo>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<String>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<i64>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    Ok(TokenInfo {
        id: row.try_get("id")?,
        tenant: row.try_get("tenant")?,
        user: row.try_get("user_name")?,
        label: row.try_get("label")?,
        created_at: time(row.try_get("created_at")?)?,
        expires_at: row
            .try_get::<Option<i64>, _>("expires_at")?
            .map(time)
            .transpose()?,
        revoked_at: row
            .try_get::<Option<i64>, _>("revoked_at")?
            .map(time)
            .transpose()?,
    })
}

const TOKEN_COLUMNS: &str = "id, tenant, user_name, label, created_at, expires_at, revoked_at";

impl IdentityStore {
    /// Open the main database and bring the identity tables up to date.
    /// For a command run on a server's database (`explain`, `migrate`): the database must
    /// exist already (opening an SQLite file creates it, so a mistyped path would be a new,
    /// empty database) and know `tenant`.
    pub async fn open_for_tenant(
        db: &Database,
        tenant: &str,
    ) -> std::result::Result<Self, OpenForTenant> {
        if let Database::Sqlite(path) = db {
            if !path.exists() {
                return Err(OpenForTenant::Missing(format!(
                    "no database at {} (give --database)",
                    path.display()
                )));
            }
        }
        let identities = Self::open(db).await?;
        if !crate::database::valid_tenant_name(tenant) || !identities.tenant_exists(tenant).await? {
            return Err(OpenForTenant::Missing(format!("no tenant `{tenant}`")));
        }
        Ok(identities)
    }

    pub async fn open(db: &Database) -> Result<Self> {
        let store = match db {
            Database::Sqlite(path) => {
                let options = SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .foreign_keys(true)
                    .busy_timeout(std::time::Duration::from_secs(10));
                IdentityStore::Sqlite(
                    SqlitePoolOptions::new()
                        .max_connections(4)
                        .connect_with(options)
                        .await?,
                )
            }
            Database::Postgres(url) => {
                IdentityStore::Postgres(pool_options().max_connections(4).connect(url).await?)
            }
        };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<()> {
        let set = migrations(self);
        self.adopt_legacy_steps(&set).await?;
        match self {
            IdentityStore::Sqlite(pool) => set.run(pool).await?,
            IdentityStore::Postgres(pool) => set.run(pool).await?,
        }
        Ok(())
    }

    /// Move a database that still has `auth_migrations` onto the migrator: record each step
    /// it applied as the migrator's step (its checksum, so sqlx takes it as applied) and drop
    /// the old table, in one transaction, once. Two servers starting together take turns;
    /// the second finds the table gone.
    async fn adopt_legacy_steps(&self, set: &MigrationSet) -> Result<()> {
        macro_rules! adopt {
            ($conn:expr, $exists:expr) => {
                async {
                    let exists: i64 = sqlx::query_scalar($exists).fetch_one(&mut *$conn).await?;
                    if exists > 0 {
                        let applied: Option<i64> =
                            sqlx::query_scalar("SELECT MAX(version) FROM auth_migrations")
                                .fetch_one(&mut *$conn)
                                .await?;
                        let applied = applied.unwrap_or(0) + LEGACY_OFFSET;
                        $conn
                            .ensure_migrations_table()
                            .await
                            .map_err(MigrationError::from)?;
                        for step in set.migrations().filter(|m| m.version <= applied) {
                            sqlx::query(
                                "INSERT INTO _sqlx_migrations \
                             (version, description, success, checksum, execution_time) \
                             VALUES ($1, $2, TRUE, $3, 0) ON CONFLICT DO NOTHING",
                            )
                            .bind(step.version)
                            .bind(step.description.as_ref())
                            .bind(step.checksum.as_ref())
                            .execute(&mut *$conn)
                            .await?;
                        }
                        sqlx::query("DROP TABLE auth_migrations")
                            .execute(&mut *$conn)
                            .await?;
                    }
                    Ok::<_, IdentityError>(())
                }
                .await
            };
        }
        match self {
            IdentityStore::Sqlite(pool) => {
                // BEGIN IMMEDIATE: the write lock first, so two processes on one file take
                // turns rather than both reading the old table.
                let mut conn = pool.acquire().await?;
                sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
                let result = adopt!(
                    conn,
                    "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' \
                     AND name = 'auth_migrations'"
                );
                let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
                sqlx::query(end).execute(&mut *conn).await?;
                result
            }
            IdentityStore::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                // Nodes starting together take turns (the lock ends with the transaction).
                sqlx::query("SELECT pg_advisory_xact_lock(7375606301)")
                    .execute(&mut *tx)
                    .await?;
                adopt!(
                    tx,
                    "SELECT COUNT(*) FROM information_schema.tables \
                     WHERE table_schema = current_schema() AND table_name = 'auth_migrations'"
                )?;
                tx.commit().await?;
                Ok(())
            }
        }
    }

    /// Create a tenant; false if it existed.
    pub async fn create_tenant(&self, name: &str, at: DateTime<Utc>) -> Result<bool> {
        let done = on_db!(self, |pool| {
            sqlx::query(
            "INSERT INTO auth_tenants (name, created_at) VALUES ($1, $2) ON CONFLICT DO NOTHING"
        )
        .bind(name)
        .bind(micros(at))
        .execute(pool)
        .await?
        .rows_affected()
        });
        Ok(done == 1)
    }

    /// Create a tenant, its first administrator and their token, all or nothing. Returns
    /// `None` if the tenant exists.
    pub async fn create_tenant_with_admin(
        &self,
        tenant: &str,
        admin: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<(TokenInfo, String)>> {
        let secret = new_token().map_err(IdentityError::Random)?;
        let hash = token_hash(&secret);
        let roles = serde_json::to_string(&[super::ROLE_ADMIN])?;
        let label = "first administrator";
        let id: Option<i64> = on_db!(self, |pool| {
            let mut tx = pool.begin().await?;
            let created = sqlx::query(
                "INSERT INTO auth_tenants (name, created_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            )
            .bind(tenant)
            .bind(micros(at))
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if created == 0 {
                None
            } else {
                sqlx::query(
                    "INSERT INTO auth_users (tenant, name, roles, created_at) VALUES ($1, $2, $3, $4)",
                )
                .bind(tenant)
                .bind(admin)
                .bind(&roles)
                .bind(micros(at))
                .execute(&mut *tx)
                .await?;
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO auth_tokens (tenant, user_name, hash, label, created_at) \
                     VALUES ($1, $2, $3, $4, $5) RETURNING id",
                )
                .bind(tenant)
                .bind(admin)
                .bind(&hash)
                .bind(label)
                .bind(micros(at))
                .fetch_one(&mut *tx)
                .await?;
                tx.commit().await?;
                Some(id)
            }
        });
        Ok(id.map(|id| {
            let info = TokenInfo {
                id,
                tenant: tenant.into(),
                user: admin.into(),
                label: Some(label.into()),
                created_at: at.trunc_subsecs(6),
                expires_at: None,
                revoked_at: None,
            };
            (info, secret)
        }))
    }

    pub async fn tenants(&self) -> Result<Vec<String>> {
        Ok(on_db!(self, |pool| sqlx::query_scalar(
            "SELECT name FROM auth_tenants ORDER BY name"
        )
        .fetch_all(pool)
        .await?))
    }

    pub async fn tenant_exists(&self, name: &str) -> Result<bool> {
        let n: i64 = on_db!(self, |pool| sqlx::query_scalar(
            "SELECT COUNT(*) FROM auth_tenants WHERE name = $1"
        )
        .bind(name)
        .fetch_one(pool)
        .await?);
        Ok(n > 0)
    }

    pub async fn create_user(
        &self,
        tenant: &str,
        name: &str,
        roles: &[String],
        at: DateTime<Utc>,
    ) -> Result<User> {
        if !self.tenant_exists(tenant).await? {
            return Err(IdentityError::Missing(format!("tenant `{tenant}`")));
        }
        let roles_json = serde_json::to_string(roles)?;
        let done = on_db!(self, |pool| sqlx::query(
            "INSERT INTO auth_users (tenant, name, roles, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT DO NOTHING"
        )
        .bind(tenant)
        .bind(name)
        .bind(&roles_json)
        .bind(micros(at))
        .execute(pool)
        .await?
        .rows_affected());
        if done == 0 {
            return Err(IdentityError::Exists(format!("user `{name}`")));
        }
        Ok(User {
            tenant: tenant.into(),
            name: name.into(),
            roles: roles.to_vec(),
            manager: None,
            email: None,
            created_at: at.trunc_subsecs(6),
        })
    }

    /// Replace a user's roles; `None` if there is no such user.
    pub async fn set_roles(&self, tenant: &str, name: &str, roles: &[String]) -> Result<bool> {
        let roles_json = serde_json::to_string(roles)?;
        let done = on_db!(self, |pool| sqlx::query(
            "UPDATE auth_users SET roles = $1 WHERE tenant = $2 AND name = $3"
        )
        .bind(&roles_json)
        .bind(tenant)
        .bind(name)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(done == 1)
    }

    /// Set a user's manager and e-mail (each `None` leaves it as it is; `Some(None)` clears
    /// it); false if there is no such user.
    pub async fn set_attributes(
        &self,
        tenant: &str,
        name: &str,
        manager: Option<Option<&str>>,
        email: Option<Option<&str>>,
    ) -> Result<bool> {
        let done = on_db!(self, |pool| sqlx::query(
            "UPDATE auth_users SET \
               manager = CASE WHEN $1 THEN $2 ELSE manager END, \
               email = CASE WHEN $3 THEN $4 ELSE email END \
             WHERE tenant = $5 AND name = $6"
        )
        .bind(manager.is_some())
        .bind(manager.flatten())
        .bind(email.is_some())
        .bind(email.flatten())
        .bind(tenant)
        .bind(name)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(done == 1)
    }

    pub async fn users(&self, tenant: &str) -> Result<Vec<User>> {
        on_db!(self, |pool| {
            sqlx::query(
            "SELECT tenant, name, roles, manager, email, created_at FROM auth_users WHERE tenant = $1 ORDER BY name"
        )
        .bind(tenant)
        .fetch_all(pool)
        .await?
        .iter()
        .map(user_from_row)
        .collect()
        })
    }

    pub async fn user(&self, tenant: &str, name: &str) -> Result<Option<User>> {
        on_db!(self, |pool| {
            sqlx::query(
            "SELECT tenant, name, roles, manager, email, created_at FROM auth_users WHERE tenant = $1 AND name = $2"
        )
        .bind(tenant)
        .bind(name)
        .fetch_optional(pool)
        .await?
        .as_ref()
        .map(user_from_row)
        .transpose()
        })
    }

    /// Issue a token for a user; returns it with its secret, which is not stored.
    pub async fn create_token(
        &self,
        tenant: &str,
        user: &str,
        label: Option<&str>,
        expires_at: Option<DateTime<Utc>>,
        at: DateTime<Utc>,
    ) -> Result<(TokenInfo, String)> {
        if self.user(tenant, user).await?.is_none() {
            return Err(IdentityError::Missing(format!("user `{user}`")));
        }
        let secret = new_token().map_err(IdentityError::Random)?;
        let hash = token_hash(&secret);
        let id: i64 = on_db!(self, |pool| sqlx::query_scalar(
            "INSERT INTO auth_tokens (tenant, user_name, hash, label, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id"
        )
        .bind(tenant)
        .bind(user)
        .bind(&hash)
        .bind(label)
        .bind(micros(at))
        .bind(expires_at.map(micros))
        .fetch_one(pool)
        .await?);
        let info = TokenInfo {
            id,
            tenant: tenant.into(),
            user: user.into(),
            label: label.map(str::to_string),
            created_at: at.trunc_subsecs(6),
            expires_at: expires_at.map(|t| t.trunc_subsecs(6)),
            revoked_at: None,
        };
        Ok((info, secret))
    }

    pub async fn tokens(&self, tenant: &str) -> Result<Vec<TokenInfo>> {
        on_db!(self, |pool| sqlx::query(&format!(
            "SELECT {TOKEN_COLUMNS} FROM auth_tokens WHERE tenant = $1 ORDER BY id"
        ))
        .bind(tenant)
        .fetch_all(pool)
        .await?
        .iter()
        .map(token_from_row)
        .collect())
    }

    /// Revoke a token of a tenant (any tenant if `tenant` is `None`, for the CLI); false if
    /// there is no such token or it was already revoked.
    pub async fn revoke_token(
        &self,
        tenant: Option<&str>,
        id: i64,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        let done = on_db!(self, |pool| sqlx::query(
            "UPDATE auth_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL \
             AND ($3 IS NULL OR tenant = $3)"
        )
        .bind(micros(at))
        .bind(id)
        .bind(tenant)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(done == 1)
    }

    /// Who a presented token belongs to, if it is valid at `now`.
    pub async fn lookup(&self, token: &str, now: DateTime<Utc>) -> Result<Lookup> {
        let hash = token_hash(token);
        let row = on_db!(self, |pool| {
            let row = sqlx::query(
                "SELECT t.id, t.tenant, t.user_name, t.expires_at, t.revoked_at, u.roles \
                 FROM auth_tokens t JOIN auth_users u ON u.tenant = t.tenant AND u.name = t.user_name \
                 WHERE t.hash = $1",
            )
            .bind(&hash)
            .fetch_optional(pool)
            .await?;
            match row {
                None => None,
                Some(r) => Some((
                    r.try_get::<i64, _>("id")?,
                    r.try_get::<String, _>("tenant")?,
                    r.try_get::<String, _>("user_name")?,
                    r.try_get::<Option<i64>, _>("expires_at")?,
                    r.try_get::<Option<i64>, _>("revoked_at")?,
                    r.try_get::<String, _>("roles")?,
                )),
            }
        });
        let Some((id, tenant, user, expires_at, revoked_at, roles)) = row else {
            return Ok(Lookup::Unknown);
        };
        if revoked_at.is_some() {
            return Ok(Lookup::Revoked);
        }
        let expires_at = expires_at.map(time).transpose()?;
        if expires_at.is_some_and(|e| e <= now) {
            return Ok(Lookup::Expired);
        }
        Ok(Lookup::Valid {
            principal: Principal {
                tenant,
                user,
                roles: serde_json::from_str(&roles)?,
                token_id: id,
            },
            expires_at,
        })
    }

    /// A user's stored password hash; `None` if the user does not exist or has no password.
    pub async fn password_hash(&self, tenant: &str, user: &str) -> Result<Option<String>> {
        let found: Option<Option<String>> = on_db!(self, |pool| sqlx::query_scalar(
            "SELECT password_hash FROM auth_users WHERE tenant = $1 AND name = $2"
        )
        .bind(tenant)
        .bind(user)
        .fetch_optional(pool)
        .await?);
        Ok(found.flatten())
    }

    /// Set a user's password hash and end their sessions, except the one given (the session
    /// the user changed it from), in one transaction: whoever knew the old password is signed
    /// out. False if there is no such user.
    pub async fn set_password(
        &self,
        tenant: &str,
        user: &str,
        hash: &str,
        keep_session: Option<&str>,
    ) -> Result<bool> {
        let keep = keep_session.map(token_hash);
        let done = on_db!(self, |pool| {
            let mut tx = pool.begin().await?;
            let done = sqlx::query(
                "UPDATE auth_users SET password_hash = $1 WHERE tenant = $2 AND name = $3",
            )
            .bind(hash)
            .bind(tenant)
            .bind(user)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            sqlx::query(
                "DELETE FROM auth_sessions WHERE tenant = $1 AND user_name = $2 \
                 AND ($3 IS NULL OR id_hash <> $3)",
            )
            .bind(tenant)
            .bind(user)
            .bind(keep.as_deref())
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            done
        });
        Ok(done == 1)
    }

    /// Start a session for a user, with a new CSRF token: returns its secret (the cookie's value).
    /// Expired sessions are swept at the same time, so the table holds live ones only.
    pub async fn create_session(
        &self,
        tenant: &str,
        user: &str,
        at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<NewSession> {
        let secret = new_token().map_err(IdentityError::Random)?;
        let csrf = new_token().map_err(IdentityError::Random)?;
        on_db!(self, |pool| {
            sqlx::query("DELETE FROM auth_sessions WHERE expires_at <= $1")
                .bind(micros(at))
                .execute(pool)
                .await?;
            sqlx::query(
                "INSERT INTO auth_sessions (id_hash, tenant, user_name, csrf, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(token_hash(&secret))
            .bind(tenant)
            .bind(user)
            .bind(&csrf)
            .bind(micros(at))
            .bind(micros(expires_at))
            .execute(pool)
            .await?;
        });
        Ok(NewSession { secret, expires_at })
    }

    /// The session a cookie's secret opens, if it is live at `now`, with its user's roles as
    /// they are now (a change of roles applies to the next page).
    pub async fn session(&self, secret: &str, now: DateTime<Utc>) -> Result<Option<Session>> {
        let row = on_db!(self, |pool| {
            let row = sqlx::query(
                "SELECT s.tenant, s.user_name, s.csrf, s.expires_at, u.roles \
                 FROM auth_sessions s JOIN auth_users u ON u.tenant = s.tenant AND u.name = s.user_name \
                 WHERE s.id_hash = $1 AND s.expires_at > $2",
            )
            .bind(token_hash(secret))
            .bind(micros(now))
            .fetch_optional(pool)
            .await?;
            match row {
                None => None,
                Some(r) => Some((
                    r.try_get::<String, _>("tenant")?,
                    r.try_get::<String, _>("user_name")?,
                    r.try_get::<String, _>("csrf")?,
                    r.try_get::<i64, _>("expires_at")?,
                    r.try_get::<String, _>("roles")?,
                )),
            }
        });
        let Some((tenant, user, csrf, expires_at, roles)) = row else {
            return Ok(None);
        };
        Ok(Some(Session {
            principal: Principal {
                tenant,
                user,
                roles: serde_json::from_str(&roles)?,
                token_id: 0,
            },
            csrf,
            expires_at: time(expires_at)?,
        }))
    }

    /// End a session (signing out); false if there was none.
    pub async fn end_session(&self, secret: &str) -> Result<bool> {
        let done = on_db!(self, |pool| sqlx::query(
            "DELETE FROM auth_sessions WHERE id_hash = $1"
        )
        .bind(token_hash(secret))
        .execute(pool)
        .await?
        .rows_affected());
        Ok(done == 1)
    }

    /// A one-time link secret to set a user's password, valid until `expires_at`.
    pub async fn create_setup_link(
        &self,
        tenant: &str,
        user: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<String> {
        let secret = new_token().map_err(IdentityError::Random)?;
        on_db!(self, |pool| {
            sqlx::query(
            "INSERT INTO auth_setup_links (id_hash, tenant, user_name, expires_at) VALUES ($1, $2, $3, $4)"
        )
        .bind(token_hash(&secret))
        .bind(tenant)
        .bind(user)
        .bind(micros(expires_at))
        .execute(pool)
        .await?
        .rows_affected()
        });
        Ok(secret)
    }

    /// Who a setup link is for, if it is live (it stays usable until [`Self::use_setup_link`]).
    pub async fn setup_link(
        &self,
        secret: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<(String, String)>> {
        let row: Option<(String, String)> = on_db!(self, |pool| {
            sqlx::query_as(
            "SELECT tenant, user_name FROM auth_setup_links WHERE id_hash = $1 AND expires_at > $2"
        )
        .bind(token_hash(secret))
        .bind(micros(now))
        .fetch_optional(pool)
        .await?
        });
        Ok(row)
    }

    /// Set the password a live setup link is for and spend the link, in one transaction (two
    /// uses at once: one wins). Returns who it was for, `None` if the link is not live.
    pub async fn use_setup_link(
        &self,
        secret: &str,
        hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<(String, String)>> {
        let id = token_hash(secret);
        on_db!(self, |pool| {
            let mut tx = pool.begin().await?;
            let row: Option<(String, String)> = sqlx::query_as(
                "DELETE FROM auth_setup_links WHERE id_hash = $1 AND expires_at > $2 \
                 RETURNING tenant, user_name",
            )
            .bind(&id)
            .bind(micros(now))
            .fetch_optional(&mut *tx)
            .await?;
            if let Some((tenant, user)) = &row {
                sqlx::query(
                    "UPDATE auth_users SET password_hash = $1 WHERE tenant = $2 AND name = $3",
                )
                .bind(hash)
                .bind(tenant)
                .bind(user)
                .execute(&mut *tx)
                .await?;
                sqlx::query("DELETE FROM auth_sessions WHERE tenant = $1 AND user_name = $2")
                    .bind(tenant)
                    .bind(user)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(row)
        })
    }

    /// Whether any administrator of a tenant has a password (else the first start offers a
    /// link to set one).
    pub async fn admin_has_password(&self, tenant: &str) -> Result<bool> {
        let users = self.users(tenant).await?;
        for u in users
            .iter()
            .filter(|u| u.roles.iter().any(|r| r == super::ROLE_ADMIN))
        {
            if self.password_hash(tenant, &u.name).await?.is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    pub async fn ping(&self) -> Result<()> {
        on_db!(self, |pool| {
            sqlx::query("SELECT 1").execute(pool).await?;
        });
        Ok(())
    }
}

// After `on_db!`, which they use.
mod filters;
mod tailorings;
pub use filters::SavedFilter;
pub use tailorings::StoredTailoring;

#[cfg(test)]
mod tests {
    use super::*;

    /// Identity's steps must stay in their range of the shared `_sqlx_migrations`, on both
    /// databases, with the same steps on each (a legacy version maps to one step of each).
    #[tokio::test]
    async fn identity_steps_are_numbered_in_their_range() {
        let sqlite =
            IdentityStore::Sqlite(SqlitePool::connect_lazy("sqlite::memory:").expect("lazy pool"));
        let postgres =
            IdentityStore::Postgres(PgPool::connect_lazy("postgres:///x").expect("lazy pool"));
        let (a, b) = (migrations(&sqlite), migrations(&postgres));
        assert!(a.within_range() && b.within_range());
        let versions = |s: &MigrationSet| s.migrations().map(|m| m.version).collect::<Vec<_>>();
        assert_eq!(versions(&a), versions(&b));
        assert_eq!(versions(&a).first(), Some(&(LEGACY_OFFSET + 1)));
        assert_eq!(versions(&a).last(), Some(&1005));
    }
}
