//! The notifications outbox: what escalations asked to tell which role, for a webhook, a mail
//! relay or a chat bot to deliver.

use axum::http::StatusCode;
use axum::response::Response;
use itsmflow_engine::runtime::{InstanceId, NotificationFilter};
use serde::Deserialize;
use serde_json::json;

use super::QueryArgs;
use crate::serve::app::{json, JsonBody};
use crate::serve::auth::Ctx;
use crate::serve::error::{ApiError, ApiResult};
use crate::serve::tenants::Backend;

type C<B> = Ctx<<B as Backend>::Store>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only those to this role. Required unless the caller is an administrator: people see
    /// the notifications addressed to a role they hold.
    role: Option<String>,
    instance: Option<i64>,
    /// Only those not yet marked delivered.
    #[serde(default)]
    undelivered: bool,
    /// Only those whose delivery time has come (held ones wait for business hours).
    #[serde(default)]
    due: bool,
    /// The id of the last notification of the previous page.
    after: Option<i64>,
    limit: Option<i64>,
}

/// Oldest first, a page at a time.
pub async fn list<B: Backend>(
    ctx: C<B>,
    QueryArgs(q): QueryArgs<ListQuery>,
) -> ApiResult<Response> {
    ctx.require_agent()?;
    let limit = ctx.limits.page(q.limit)?;
    match &q.role {
        None if !ctx.who.is_admin() => {
            return Err(ApiError::invalid(format!(
                "give `role`, one of yours: {}",
                ctx.who.roles.join(", ")
            )))
        }
        Some(r) if !ctx.who.is_admin() && !ctx.who.has(r) => {
            return Err(ApiError::forbidden(format!(
                "you do not hold role `{r}`; you may read notifications to {}",
                ctx.who.roles.join(", ")
            )))
        }
        _ => {}
    }
    let filter = NotificationFilter {
        role: q.role,
        instance: q.instance.map(InstanceId),
        undelivered: q.undelivered,
        deliverable_at: q.due.then(|| ctx.tenant.engine.clock().now()),
    };
    let items = ctx
        .tenant
        .engine
        .notifications(&filter, limit, q.after)
        .await?;
    let next = if items.len() as u32 == limit {
        items.last().map(|n| n.id)
    } else {
        None
    };
    Ok(json(
        StatusCode::OK,
        &json!({ "items": items, "next_after": next }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Delivered {
    ids: Vec<i64>,
}

/// Mark notifications delivered (by whatever delivered them). Administrators only: this is
/// what an integration's token does.
pub async fn delivered<B: Backend>(
    ctx: C<B>,
    JsonBody(body): JsonBody<Delivered>,
) -> ApiResult<Response> {
    ctx.require_admin()?;
    if body.ids.is_empty() || body.ids.len() > ctx.limits.max_page as usize {
        return Err(ApiError::invalid(format!(
            "`ids` must hold 1 to {} ids",
            ctx.limits.max_page
        )));
    }
    let marked = ctx.tenant.engine.mark_delivered(&body.ids).await?;
    Ok(json(StatusCode::OK, &json!({ "marked": marked })))
}
