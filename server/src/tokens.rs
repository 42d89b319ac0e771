//! `itsmflow token`: manage API tokens directly in the database, e.g. to recover access or
//! to provision integrations from a script.

use chrono::{TimeDelta, Utc};

use crate::database::{valid_tenant_name, Database, DEFAULT_TENANT};
use crate::identity::store::{IdentityError, IdentityStore};
use crate::identity::{valid_role_name, valid_user_name};

#[derive(clap::Args, Debug)]
pub struct TokenArgs {
    #[command(subcommand)]
    command: TokenCommand,
    /// The server's database.
    #[arg(
        long,
        env = "ITSMFLOW_DATABASE_URL",
        default_value = "sqlite://itsmflow.db",
        global = true
    )]
    database_url: String,
}

#[derive(clap::Subcommand, Debug)]
enum TokenCommand {
    /// Issue a token for a user (created with `--roles` if it does not exist) and print it.
    Create {
        #[arg(long)]
        user: String,
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
        /// Roles of a new user, comma-separated (e.g. `agent,team_lead`).
        #[arg(long, value_delimiter = ',')]
        roles: Vec<String>,
        #[arg(long)]
        label: Option<String>,
        /// Days until the token expires; no expiry if absent.
        #[arg(long)]
        expires_in_days: Option<i64>,
    },
    /// List the tokens of a tenant (never their secrets).
    List {
        #[arg(long, default_value = DEFAULT_TENANT)]
        tenant: String,
    },
    /// Revoke a token by id.
    Revoke { id: i64 },
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error("{0}")]
    Invalid(String),
}

pub async fn run(args: TokenArgs) -> Result<(), TokenError> {
    let store = IdentityStore::open(&Database::parse(&args.database_url)).await?;
    let now = Utc::now();
    match args.command {
        TokenCommand::Create {
            user,
            tenant,
            roles,
            label,
            expires_in_days,
        } => {
            if !valid_tenant_name(&tenant) || !store.tenant_exists(&tenant).await? {
                return Err(TokenError::Invalid(format!("no tenant `{tenant}`")));
            }
            if !valid_user_name(&user) {
                return Err(TokenError::Invalid(format!(
                    "`{user}` is not a valid user name"
                )));
            }
            if let Some(bad) = roles.iter().find(|r| !valid_role_name(r)) {
                return Err(TokenError::Invalid(format!(
                    "`{bad}` is not a valid role name"
                )));
            }
            if store.user(&tenant, &user).await?.is_none() {
                if roles.is_empty() {
                    return Err(TokenError::Invalid(format!(
                        "no user `{user}` in tenant `{tenant}`; give --roles to create one"
                    )));
                }
                store.create_user(&tenant, &user, &roles, now).await?;
            } else if !roles.is_empty() {
                return Err(TokenError::Invalid(format!(
                    "user `{user}` exists; change roles through the API (PUT /v1/users/{user}/roles)"
                )));
            }
            let expires_at = match expires_in_days {
                None => None,
                Some(d) if (1..=3650).contains(&d) => Some(now + TimeDelta::days(d)),
                Some(_) => {
                    return Err(TokenError::Invalid(
                        "--expires-in-days must be between 1 and 3650".into(),
                    ))
                }
            };
            let (info, secret) = store
                .create_token(&tenant, &user, label.as_deref(), expires_at, now)
                .await?;
            eprintln!("token {} for {}@{} (shown once):", info.id, user, tenant);
            println!("{secret}");
        }
        TokenCommand::List { tenant } => {
            for t in store.tokens(&tenant).await? {
                let state = match (t.revoked_at, t.expires_at) {
                    (Some(_), _) => "revoked",
                    (None, Some(e)) if e <= now => "expired",
                    _ => "valid",
                };
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    t.id,
                    t.user,
                    state,
                    t.expires_at
                        .map(|e| e.to_rfc3339())
                        .unwrap_or_else(|| "-".into()),
                    t.label.unwrap_or_default()
                );
            }
        }
        TokenCommand::Revoke { id } => {
            if !store.revoke_token(None, id, now).await? {
                return Err(TokenError::Invalid(format!(
                    "no token {id} that is not already revoked"
                )));
            }
            eprintln!("token {id} revoked");
        }
    }
    Ok(())
}
