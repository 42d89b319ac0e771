//! The caller, users, tokens and tenants.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::TimeDelta;

use super::PathArgs;
use crate::database::{valid_tenant_name, DEFAULT_TENANT};
use crate::identity::store::{IdentityError, TokenInfo, User};
use crate::identity::{valid_role_name, valid_user_name, ROLE_ADMIN};
use crate::serve::app::{json, App, JsonBody};
use crate::serve::auth::Ctx;
use crate::serve::error::{ApiError, ApiResult};
use crate::serve::tenants::Backend;
use crate::serve::wire;
use axum::extract::State;
use std::sync::Arc;

type C<B> = Ctx<<B as Backend>::Store>;
type S<B> = State<Arc<App<B>>>;

fn identity_error(e: IdentityError) -> ApiError {
    match e {
        IdentityError::Exists(what) => ApiError::conflict(format!("{what} already exists")),
        IdentityError::Missing(what) => ApiError::not_found(format!("{what} does not exist")),
        IdentityError::Database(e) => ApiError::unavailable(e),
        other => ApiError::internal(other),
    }
}

fn check_roles(roles: &[String]) -> ApiResult<()> {
    if let Some(bad) = roles.iter().find(|r| !valid_role_name(r)) {
        return Err(ApiError::invalid(format!(
            "role `{bad}` is not a valid role name (letters, digits and `_`, starting with a letter)"
        )));
    }
    Ok(())
}

#[utoipa::path(
    get,
    path = "/v1/me",
    operation_id = "getMe",
    tag = "identity",
    summary = "Who the token belongs to",
    responses(
        (status = 200, description = "OK", body = wire::identity::Me),
        (status = 401, response = wire::problem::Unauthorized),
        (status = 503, response = wire::problem::Unavailable)
    )
)]
pub async fn me<B: Backend>(ctx: C<B>) -> ApiResult<Response> {
    Ok(json(StatusCode::OK, &wire::identity::Me::from(&ctx.who)))
}

#[utoipa::path(
    put,
    path = "/v1/me/availability",
    operation_id = "setAvailability",
    tag = "identity",
    summary = "Take pushed work, or stop taking it",
    description = "Needs a role other than `requester`. Going inactive returns one's unclaimed assigned tasks to their queues.",
    request_body(content = wire::identity::AvailabilityRequest),
    responses(
        (status = 200, description = "OK", body = wire::identity::AvailabilityState),
        (status = 400, response = wire::problem::BadRequest),
        (status = 401, response = wire::problem::Unauthorized),
        (status = 403, response = wire::problem::Forbidden),
        (status = 413, response = wire::problem::TooLarge),
        (status = 415, response = wire::problem::UnsupportedMediaType),
        (status = 422, response = wire::problem::Invalid),
        (status = 503, response = wire::problem::Unavailable)
    )
)]
pub async fn availability<B: Backend>(
    ctx: C<B>,
    JsonBody(body): JsonBody<wire::identity::AvailabilityRequest>,
) -> ApiResult<Response> {
    ctx.require_agent()?;
    ctx.tenant
        .engine
        .set_agent(&ctx.actor(), body.active)
        .await?;
    Ok(json(
        StatusCode::OK,
        &wire::identity::AvailabilityState {
            active: body.active,
        },
    ))
}

#[utoipa::path(
    get,
    path = "/v1/users",
    operation_id = "listUsers",
    tag = "identity",
    summary = "The tenant's users",
    description = "Needs `admin`; acts within the caller's tenant.",
    responses(
        (status = 200, description = "OK", body = wire::identity::UserList),
        (status = 401, response = wire::problem::Unauthorized),
        (status = 403, response = wire::problem::Forbidden),
        (status = 503, response = wire::problem::Unavailable)
    )
)]
pub async fn users<B: Backend>(State(app): S<B>, ctx: C<B>) -> ApiResult<Response> {
    let items = users_of(&app, &ctx).await?;
    let items = items.into_iter().map(wire::identity::User::from).collect();
    Ok(json(StatusCode::OK, &wire::identity::UserList { items }))
}

/// The tenant's users, for an administrator (the API's list and the admin page).
pub(crate) async fn users_of<B: Backend>(app: &App<B>, ctx: &C<B>) -> ApiResult<Vec<User>> {
    ctx.require_admin()?;
    app.identities
        .users(&ctx.who.tenant)
        .await
        .map_err(identity_error)
}

/// A manager must be another user of the tenant; an e-mail address must look like one.
async fn check_attributes<B: Backend>(
    app: &App<B>,
    tenant: &str,
    name: &str,
    manager: Option<&str>,
    email: Option<&str>,
) -> ApiResult<()> {
    if let Some(m) = manager {
        if m == name {
            return Err(ApiError::invalid("a user cannot be their own `manager`"));
        }
        let found = app
            .identities
            .user(tenant, m)
            .await
            .map_err(identity_error)?;
        if found.is_none() {
            return Err(ApiError::invalid(format!(
                "`manager`: there is no user `{m}` in this tenant"
            )));
        }
    }
    if let Some(e) = email {
        let plausible = e.len() <= 254
            && !e.chars().any(|c| c.is_whitespace() || c == '\0')
            && e.split_once('@')
                .is_some_and(|(l, d)| !l.is_empty() && d.contains('.'));
        if !plausible {
            return Err(ApiError::invalid(format!(
                "`email` `{e}` is not an e-mail address"
            )));
        }
    }
    Ok(())
}

#[utoipa::path(
    post,
    path = "/v1/users",
    operation_id = "createUser",
    tag = "identity",
    summary = "Create a user",
    description = "Needs `admin`; acts within the caller's tenant. A user holding only `requester` (or no role) sees only their own tickets.",
    request_body(content = wire::identity::NewUserRequest),
    responses(
        (status = 201, description = "Created.", body = wire::identity::User),
        (status = 400, response = wire::problem::BadRequest),
        (status = 401, response = wire::problem::Unauthorized),
        (status = 403, response = wire::problem::Forbidden),
        (status = 409, description = "`conflict`: the user exists.", body = wire::problem::Problem, content_type = "application/problem+json"),
        (status = 413, response = wire::problem::TooLarge),
        (status = 415, response = wire::problem::UnsupportedMediaType),
        (status = 422, response = wire::problem::Invalid),
        (status = 503, response = wire::problem::Unavailable)
    )
)]
pub async fn create_user<B: Backend>(
    State(app): S<B>,
    ctx: C<B>,
    JsonBody(body): JsonBody<wire::identity::NewUserRequest>,
) -> ApiResult<Response> {
    let user = add_user(&app, &ctx, body).await?;
    Ok(json(StatusCode::CREATED, &wire::identity::User::from(user)))
}

/// Create a user of the caller's tenant (an administrator), with their manager and e-mail.
pub(crate) async fn add_user<B: Backend>(
    app: &App<B>,
    ctx: &C<B>,
    body: wire::identity::NewUserRequest,
) -> ApiResult<User> {
    ctx.require_admin()?;
    if !valid_user_name(&body.name) {
        return Err(ApiError::invalid(
            "`name` must be 1 to 100 letters, digits or `.`, `_`, `-`, `@`",
        ));
    }
    check_roles(&body.roles)?;
    let tenant = &ctx.who.tenant;
    check_attributes(
        app,
        tenant,
        &body.name,
        body.manager.as_deref(),
        body.email.as_deref(),
    )
    .await?;
    let mut user = app
        .identities
        .create_user(tenant, &body.name, &body.roles, app.clock.now())
        .await
        .map_err(identity_error)?;
    if body.manager.is_some() || body.email.is_some() {
        app.identities
            .set_attributes(
                tenant,
                &body.name,
                Some(body.manager.as_deref()),
                Some(body.email.as_deref()),
            )
            .await
            .map_err(identity_error)?;
        user.manager = body.manager;
        user.email = body.email;
    }
    tracing::info!(created = %user.name, "user created");
    Ok(user)
}

#[utoipa::path(
    patch,
    path = "/v1/users/{name}",
    operation_id = "setUserAttributes",
    tag = "identity",
    summary = "Set a user's manager and e-mail",
    description = "Needs `admin`; acts within the caller's tenant. The manager must be another user of the tenant; processes read it where they name `manager of` someone (an approval, who may perform an action).",
    params(
        ("name" = String, Path, description = "User name.", example = "alice")
    ),
    request_body(content = wire::identity::UserAttributesRequest),
    responses(
        (status = 200, description = "The user as they now are.", body = wire::identity::User),
        (status = 400, response = wire::problem::BadRequest),
        (status = 401, response = wire::problem::Unauthorized),
        (status = 403, response = wire::problem::Forbidden),
        (status = 404, response = wire::problem::NotFound),
        (status = 413, response = wire::problem::TooLarge),
        (status = 415, response = wire::problem::UnsupportedMediaType),
        (status = 422, response = wire::problem::Invalid),
        (status = 503, response = wire::problem::Unavailable)
    )
)]
pub async fn set_attributes<B: Backend>(
    State(app): S<B>,
    ctx: C<B>,
    PathArgs(name): PathArgs<String>,
    JsonBody(body): JsonBody<wire::identity::UserAttributesRequest>,
) -> ApiResult<Response> {
    let user = change_attributes(&app, &ctx, &name, body).await?;
    Ok(json(StatusCode::OK, &wire::identity::User::from(user)))
}

/// Change a user's manager and e-mail address (an administrator); returns the user.
pub(crate) async fn change_attributes<B: Backend>(
    app: &App<B>,
    ctx: &C<B>,
    name: &str,
    body: wire::identity::UserAttributesRequest,
) -> ApiResult<User> {
    ctx.require_admin()?;
    let tenant = &ctx.who.tenant;
    check_attributes(
        app,
        tenant,
        name,
        body.manager.clone().flatten().as_deref(),
        body.email.clone().flatten().as_deref(),
    )
    .await?;
    let found = app
        .identities
        .set_attributes(
            tenant,
            name,
            body.manager.as_ref().map(|m| m.as_deref()),
            body.email.as_ref().map(|e| e.as_deref()),
        )
        .await
        .map_err(identity_error)?;
    if !found {
        return Err(ApiError::not_found(format!("no user `{name}`")));
    }
    app.identities
        .user(tenant, name)
        .await
        .map_err(identity_error)?
        .ok_or_else(|| ApiError::not_found(format!("no user `{name}`")))
}

#[utoipa::path(
    put,
    path = "/v1/users/{name}/roles",
    operation_id = "setRoles",
    tag = "identity",
    summary = "Replace a user's roles",
    description = "Needs `admin`; acts within the caller's tenant. Takes effect at once on this node, within 5 s on others.",
    params(
        ("name" = String, Path, description = "User name.", example = "alice")
    ),
    request_body(content = wire::identity::RolesRequest),
    responses(
        (status = 200, description = "OK", body = wire::identity::UserRoles),
        (status = 400, response = wire::problem::BadRequest),
        (status = 401, response = wire::problem::Unauthorized),
        (status = 403, response = wire::problem::Forbidden),
        (status = 404, response = wire::problem::NotFound),
        (status = 413, response = wire::problem::TooLarge),
        (status = 415, response = wire::problem::UnsupportedMediaType),
        (status = 422, description = "`invalid-request`: a bad role name, or taking `admin` from oneself.", body = wire::problem::Problem, content_type = "application/problem+json"),
        (status = 503, response = wire::problem::Unavailable)
    )
)]
pub async fn set_roles<B: Backend>(
    State(app): S<B>,
    ctx: C<B>,
    PathArgs(name): PathArgs<String>,
    JsonBody(body): JsonBody<wire::identity::RolesRequest>,
) -> ApiResult<Response> {
    change_roles(&app, &ctx, &name, &body.roles).await?;
    Ok(json(
        StatusCode::OK,
        &wire::identity::UserRoles {
            name,
            roles: body.roles,
        },
    ))
}

/// Replace a user's roles (an administrator, who cannot take `admin` from themself).
pub(crate) async fn change_roles<B: Backend>(
    app: &App<B>,
    ctx: &C<B>,
    name: &str,
    roles: &[String],
) -> ApiResult<()> {
    ctx.require_admin()?;
    check_roles(roles)?;
    if name == ctx.who.user && !roles.iter().any(|r| r == ROLE_ADMIN) {
        return Err(ApiError::invalid(
            "you cannot take the `admin` role from yourself; ask another administrator",
        ));
    }
    let found = app
        .identities
        .set_roles(&ctx.who.tenant, name, roles)
        .await
        .map_err(identity_error)?;
    if !found {
        return Err(ApiError::not_found(format!("no user `{name}`")));
    }
    app.auth_cache.forget(&ctx.who.tenant, Some(name), None);
    Ok(())
}

/// Set a user's password: an administrator for any user of the tenant, anyone for themself
/// with their current password. The user's sessions end, except `keep_session` (the web
/// session the change was made from). The web page calls this too, so both check the same.
pub(crate) async fn change_password<B: Backend>(
    app: &App<B>,
    who: &crate::identity::Principal,
    name: &str,
    password: String,
    old_password: Option<String>,
    keep_session: Option<&str>,
) -> ApiResult<()> {
    use crate::identity::password;
    let own = name == who.user;
    if !own && !who.is_admin() {
        return Err(ApiError::forbidden(
            "setting another user's password needs the `admin` role",
        ));
    }
    password::acceptable(&password).map_err(|e| ApiError::invalid(e.to_string()))?;
    let tenant = &who.tenant;
    let stored = app
        .identities
        .password_hash(tenant, name)
        .await
        .map_err(identity_error)?;
    // An administrator setting someone else's password needs no old one; users changing their
    // own do, administrators too, when they have one (proof that it is them and not someone
    // at their unlocked desk).
    if own && stored.is_some() {
        let Some(old) = old_password else {
            return Err(ApiError::invalid(
                "give your current password as `old_password`",
            ));
        };
        let matches = password::verify_blocking(old, stored)
            .await
            .map_err(ApiError::internal)?;
        if !matches {
            return Err(ApiError::forbidden(
                "`old_password` is not your current password",
            ));
        }
    }
    let hash = password::hash_blocking(password)
        .await
        .map_err(ApiError::internal)?;
    let found = app
        .identities
        .set_password(tenant, name, &hash, keep_session)
        .await
        .map_err(identity_error)?;
    if !found {
        return Err(ApiError::not_found(format!("no user `{name}`")));
    }
    tracing::info!(user = %name, "password set");
    Ok(())
}

#[utoipa::path(
    put,
    path = "/v1/users/{name}/password",
    operation_id = "setPassword",
    tag = "identity",
    summary = "Set a user's password (for signing in to the web pages)",
    description = "An administrator sets any user's password in their tenant; any user sets their own, giving `old_password` when they have one. Stored as an Argon2id hash. Every web session of the user ends (their bearer tokens are not affected).",
    params(
        ("name" = String, Path, description = "User name.", example = "alice")
    ),
    request_body(content = wire::identity::PasswordRequest),
    responses(
        (status = 204, description = "Done; no body."),
        (status = 400, response = wire::problem::BadRequest),
        (status = 401, response = wire::problem::Unauthorized),
        (status = 403, description = "`forbidden`: another user's password without `admin`, or `old_password` is wrong.", body = wire::problem::Problem, content_type = "application/problem+json"),
        (status = 404, response = wire::problem::NotFound),
        (status = 413, response = wire::problem::TooLarge),
        (status = 415, response = wire::problem::UnsupportedMediaType),
        (status = 422, description = "`invalid-request`: the password is shorter than 10 characters, longer than 1024 bytes or holds a NUL, or `old_password` is missing.", body = wire::problem::Problem, content_type = "application/problem+json"),
        (status = 503, response = wire::problem::Unavailable)
    )
)]
pub async fn set_password<B: Backend>(
    State(app): S<B>,
    ctx: C<B>,
    PathArgs(name): PathArgs<String>,
    JsonBody(body): JsonBody<wire::identity::PasswordRequest>,
) -> ApiResult<Response> {
    change_password(
        &app,
        &ctx.who,
        &name,
        body.password,
        body.old_password,
        None,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(
    post,
    path = "/v1/users/{name}/tokens",
    operation_id = "createToken",
    tag = "identity",
    summary = "Issue a token for a user",
    description = "Needs `admin`; acts within the caller's tenant. The body is optional.",
    params(
        ("name" = String, Path, description = "User name.", example = "alice")
    ),
    request_body(content = wire::identity::NewTokenRequest, description = "Optional: a request without a body takes the defaults."),
    responses(
        (status = 201, description = "Created; `secret` is shown only here.", body = wire::identity::NewTokenResult),
        (status = 400, response = wire::problem::BadRequest),
        (status = 401, response = wire::problem::Unauthorized),
        (status = 403, response = wire::problem::Forbidden),
        (status = 404, response = wire::problem::NotFound),
        (status = 413, response = wire::problem::TooLarge),
        (status = 415, response = wire::problem::UnsupportedMediaType),
        (status = 422, response = wire::problem::Invalid),
        (status = 503, response = wire::problem::Unavailable)
    )
)]
pub async fn create_token<B: Backend>(
    State(app): S<B>,
    ctx: C<B>,
    PathArgs(name): PathArgs<String>,
    body: Option<JsonBody<wire::identity::NewTokenRequest>>,
) -> ApiResult<Response> {
    let body = body.map(|b| b.0).unwrap_or_default();
    let (info, secret) = issue_token(
        &app,
        &ctx,
        &name,
        body.label.as_deref(),
        body.expires_in_days,
    )
    .await?;
    Ok(json(
        StatusCode::CREATED,
        &wire::identity::NewTokenResult {
            token: info.into(),
            secret,
        },
    ))
}

/// A new token for a user of the tenant (an administrator): its record and its secret, which
/// is shown this once.
pub(crate) async fn issue_token<B: Backend>(
    app: &App<B>,
    ctx: &C<B>,
    name: &str,
    label: Option<&str>,
    expires_in_days: Option<i64>,
) -> ApiResult<(TokenInfo, String)> {
    ctx.require_admin()?;
    let now = app.clock.now();
    let expires_at = match expires_in_days {
        None => None,
        Some(d) if (1..=wire::identity::MAX_TOKEN_DAYS).contains(&d) => {
            Some(now + TimeDelta::days(d))
        }
        Some(_) => {
            return Err(ApiError::invalid(format!(
                "`expires_in_days` must be between 1 and {}",
                wire::identity::MAX_TOKEN_DAYS
            )))
        }
    };
    app.identities
        .create_token(&ctx.who.tenant, name, label, expires_at, now)
        .await
        .map_err(identity_error)
}

#[utoipa::path(
    get,
    path = "/v1/tokens",
    operation_id = "listTokens",
    tag = "identity",
    summary = "The tenant's tokens (never their secrets)",
    description = "Needs `admin`; acts within the caller's tenant.",
    responses(
        (status = 200, description = "OK", body = wire::identity::TokenList),
        (status = 401, response = wire::problem::Unauthorized),
        (status = 403, response = wire::problem::Forbidden),
        (status = 503, response = wire::problem::Unavailable)
    )
)]
pub async fn tokens<B: Backend>(State(app): S<B>, ctx: C<B>) -> ApiResult<Response> {
    let items = tokens_of(&app, &ctx).await?;
    let items = items.into_iter().map(wire::identity::Token::from).collect();
    Ok(json(StatusCode::OK, &wire::identity::TokenList { items }))
}

/// The tenant's tokens (never their secrets), for an administrator.
pub(crate) async fn tokens_of<B: Backend>(app: &App<B>, ctx: &C<B>) -> ApiResult<Vec<TokenInfo>> {
    ctx.require_admin()?;
    app.identities
        .tokens(&ctx.who.tenant)
        .await
        .map_err(identity_error)
}

#[utoipa::path(
    delete,
    path = "/v1/tokens/{id}",
    operation_id = "revokeToken",
    tag = "identity",
    summary = "Revoke a token",
    description = "Needs `admin`; acts within the caller's tenant. Refused at once on this node, within 5 s on others.",
    params(
        ("id" = i64, Path, description = "Token id.")
    ),
    responses(
        (status = 204, description = "Revoked."),
        (status = 400, response = wire::problem::BadRequest),
        (status = 401, response = wire::problem::Unauthorized),
        (status = 403, response = wire::problem::Forbidden),
        (status = 404, description = "`not-found`: no such token in the tenant, or it is already revoked.", body = wire::problem::Problem, content_type = "application/problem+json"),
        (status = 503, response = wire::problem::Unavailable)
    )
)]
pub async fn revoke_token<B: Backend>(
    State(app): S<B>,
    ctx: C<B>,
    PathArgs(id): PathArgs<i64>,
) -> ApiResult<Response> {
    revoke(&app, &ctx, id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Revoke a token of the tenant (an administrator): it stops working at once on this node.
pub(crate) async fn revoke<B: Backend>(app: &App<B>, ctx: &C<B>, id: i64) -> ApiResult<()> {
    ctx.require_admin()?;
    let revoked = app
        .identities
        .revoke_token(Some(&ctx.who.tenant), id, app.clock.now())
        .await
        .map_err(identity_error)?;
    if !revoked {
        return Err(ApiError::not_found(format!(
            "no token {id} that is not already revoked"
        )));
    }
    app.auth_cache.forget(&ctx.who.tenant, None, Some(id));
    Ok(())
}

#[utoipa::path(
    post,
    path = "/v1/tenants",
    operation_id = "createTenant",
    tag = "identity",
    summary = "Create a tenant with its first administrator",
    description = "Needs `admin` in the `default` tenant. The tenant's data lives apart: its own SQLite file or PostgreSQL schema.",
    request_body(content = wire::identity::NewTenantRequest),
    responses(
        (status = 201, description = "Created, with the standard processes published and a token for its administrator (`secret`, shown only here).", body = wire::identity::TenantCreated),
        (status = 400, response = wire::problem::BadRequest),
        (status = 401, response = wire::problem::Unauthorized),
        (status = 403, description = "`forbidden`: only administrators of the `default` tenant create tenants.", body = wire::problem::Problem, content_type = "application/problem+json"),
        (status = 409, description = "`conflict`: the tenant exists.", body = wire::problem::Problem, content_type = "application/problem+json"),
        (status = 413, response = wire::problem::TooLarge),
        (status = 415, response = wire::problem::UnsupportedMediaType),
        (status = 422, response = wire::problem::Invalid),
        (status = 503, response = wire::problem::Unavailable)
    )
)]
/// Create a tenant with its first administrator, and publish the standard processes to it.
/// Only administrators of the default tenant (the operators) may.
pub async fn create_tenant<B: Backend>(
    State(app): S<B>,
    ctx: C<B>,
    JsonBody(body): JsonBody<wire::identity::NewTenantRequest>,
) -> ApiResult<Response> {
    let created = add_tenant(&app, &ctx, &body.name, &body.admin).await?;
    Ok(json(StatusCode::CREATED, &created))
}

/// Tenants are the operators' (administrators of the default tenant).
fn require_operator<B: Backend>(ctx: &C<B>) -> ApiResult<()> {
    ctx.require_admin()?;
    if ctx.who.tenant != DEFAULT_TENANT {
        return Err(ApiError::forbidden(
            "tenants are created by administrators of the default tenant",
        ));
    }
    Ok(())
}

/// Every tenant's name, for those who may create tenants (the admin page lists them; the API
/// has no list of its own).
pub(crate) async fn tenant_names<B: Backend>(app: &App<B>, ctx: &C<B>) -> ApiResult<Vec<String>> {
    require_operator::<B>(ctx)?;
    app.identities
        .tenants()
        .await
        .map_err(ApiError::unavailable)
}

/// Create a tenant with its first administrator and publish the standard processes to it;
/// answers as the API does (with the administrator's token secret, shown once).
pub(crate) async fn add_tenant<B: Backend>(
    app: &App<B>,
    ctx: &C<B>,
    name: &str,
    admin: &str,
) -> ApiResult<wire::identity::TenantCreated> {
    require_operator::<B>(ctx)?;
    let body = wire::identity::NewTenantRequest {
        name: name.to_string(),
        admin: admin.to_string(),
    };
    if !valid_tenant_name(&body.name) {
        return Err(ApiError::invalid(
            "`name` must be 1 to 40 lowercase letters, digits or `_`, starting with a letter",
        ));
    }
    if !valid_user_name(&body.admin) {
        return Err(ApiError::invalid("`admin` is not a valid user name"));
    }
    let now = app.clock.now();
    let Some((info, secret)) = app
        .identities
        .create_tenant_with_admin(&body.name, &body.admin, now)
        .await
        .map_err(identity_error)?
    else {
        return Err(ApiError::conflict(format!(
            "tenant `{}` already exists",
            body.name
        )));
    };
    // The tenant and its administrator exist now, and the secret must reach the caller even
    // if publishing fails: the administrator can publish definitions later.
    let published = match app.tenants.publish_standard(&body.name).await {
        Ok(p) => p.iter().map(wire::definitions::Published::from).collect(),
        Err(e) => {
            tracing::error!(tenant = %body.name, error = %e, "standard definitions not published");
            Vec::new()
        }
    };
    tracing::info!(tenant = %body.name, "tenant created");
    Ok(wire::identity::TenantCreated {
        tenant: body.name,
        admin: body.admin,
        token: info.id,
        secret,
        published,
    })
}
