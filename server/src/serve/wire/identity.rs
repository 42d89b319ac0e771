//! Identity: the caller, users, tokens and tenants, and the bodies that create and change
//! them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::definitions::Published;
use crate::identity::store::{TokenInfo, User as StoredUser};
use crate::identity::Principal;

/// The caller, as their token makes them.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    pub user: String,
    pub tenant: String,
    pub roles: Vec<String>,
    /// The id of the token the request was made with.
    pub token: i64,
}

impl From<&Principal> for Me {
    fn from(who: &Principal) -> Self {
        Me {
            user: who.user.clone(),
            tenant: who.tenant.clone(),
            roles: who.roles.clone(),
            token: who.token_id,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct User {
    pub tenant: String,
    pub name: String,
    pub roles: Vec<String>,
    /// Their manager, a user of the same tenant: who a process's `manager of` this user names
    /// (an approver, a performer).
    #[schema(required = true)]
    pub manager: Option<String>,
    #[schema(required = true)]
    pub email: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<StoredUser> for User {
    fn from(u: StoredUser) -> Self {
        User {
            tenant: u.tenant,
            name: u.name,
            roles: u.roles,
            manager: u.manager,
            email: u.email,
            created_at: u.created_at,
        }
    }
}

/// The tenant's users.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserList {
    pub items: Vec<User>,
}

/// A user's roles, as set.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserRoles {
    pub name: String,
    pub roles: Vec<String>,
}

/// A token as listed: never its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct Token {
    pub id: i64,
    pub tenant: String,
    pub user: String,
    #[schema(required = true)]
    pub label: Option<String>,
    pub created_at: DateTime<Utc>,
    #[schema(required = true)]
    pub expires_at: Option<DateTime<Utc>>,
    #[schema(required = true)]
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<TokenInfo> for Token {
    fn from(t: TokenInfo) -> Self {
        Token {
            id: t.id,
            tenant: t.tenant,
            user: t.user,
            label: t.label,
            created_at: t.created_at,
            expires_at: t.expires_at,
            revoked_at: t.revoked_at,
        }
    }
}

/// The tenant's tokens.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenList {
    pub items: Vec<Token>,
}

/// The new token, with its secret (shown only here).
#[derive(Debug, Serialize, ToSchema)]
pub struct NewTokenResult {
    #[serde(flatten)]
    pub token: Token,
    #[schema(pattern = "^itsm_[0-9a-f]{64}$")]
    pub secret: String,
}

/// A new tenant, with its first administrator's token (the secret is shown only here) and
/// the standard processes published to it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TenantCreated {
    pub tenant: String,
    pub admin: String,
    /// The id of the first administrator's token.
    pub token: i64,
    #[schema(pattern = "^itsm_[0-9a-f]{64}$")]
    pub secret: String,
    pub published: Vec<Published>,
}

/// Whether the caller takes pushed work now.
#[derive(Debug, Serialize, ToSchema)]
pub struct AvailabilityState {
    pub active: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AvailabilityRequest {
    /// Whether the caller takes pushed work (round-robin and least-loaded queues) now.
    pub active: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUserRequest {
    /// 1 to 100 letters, digits, `.`, `_`, `-`, `@`.
    #[schema(min_length = 1, max_length = 100, examples("alice"))]
    pub name: String,
    /// Role names: letters, digits and `_`, starting with a letter.
    #[schema(examples(json!(["agent"])))]
    pub roles: Vec<String>,
    /// Their manager: another user of the tenant.
    #[serde(default)]
    pub manager: Option<String>,
    /// An e-mail address.
    #[serde(default)]
    #[schema(max_length = 254)]
    pub email: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RolesRequest {
    /// Role names: letters, digits and `_`, starting with a letter.
    pub roles: Vec<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordRequest {
    /// At least 10 characters, at most 1024 bytes.
    #[schema(min_length = 10)]
    pub password: String,
    /// The current password, when users set their own.
    #[serde(default)]
    pub old_password: Option<String>,
}

/// The longest a token may last: ten years.
pub const MAX_TOKEN_DAYS: i64 = 3650;

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTokenRequest {
    #[serde(default)]
    #[schema(examples("laptop"))]
    pub label: Option<String>,
    /// Days until the token expires; leave it out for no expiry (`null` is refused).
    #[serde(default, deserialize_with = "not_null")]
    #[schema(minimum = 1, maximum = 3650, nullable = false)]
    pub expires_in_days: Option<i64>,
}

/// A member that may be left out but, when present, is not `null`.
fn not_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    i64::deserialize(d).map(Some)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTenantRequest {
    #[schema(pattern = "^[a-z][a-z0-9_]{0,39}$", examples("acme"))]
    pub name: String,
    /// The new tenant's first administrator.
    #[schema(min_length = 1, max_length = 100)]
    pub admin: String,
}

/// A user's attributes to change: a member left out keeps its value; `null` clears it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserAttributesRequest {
    /// Another user of the tenant.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub manager: Option<Option<String>>,
    /// An e-mail address.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 254)]
    pub email: Option<Option<String>>,
}

/// A member that is present, as `Some` (of `null` or a value).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}
