//! The notifications outbox: what escalations asked to tell which role, for a webhook, a mail
//! relay or a chat bot to deliver.

use axum::http::StatusCode;
use axum::response::Response;
use itsmflow_engine::runtime::{InstanceId, NotificationFilter};

use super::QueryArgs;
use crate::serve::app::{json, JsonBody};
use crate::serve::auth::Ctx;
use crate::serve::error::{ApiError, ApiResult};
use crate::serve::tenants::Backend;
use crate::serve::wire;

type C<B> = Ctx<<B as Backend>::Store>;

#[utoipa::path(
    get,
    path = "/v1/notifications",
    operation_id = "listNotifications",
    tag = "notifications",
    summary = "The notifications outbox, oldest first",
    description = "What escalation steps asked to tell which role, for a webhook, a mail relay or a chat bot to deliver. Needs a role other than `requester`. Non-administrators must pass a `role` they hold (422 without one, 403 for a role not theirs); administrators see every role's notifications.",
    params(
        wire::notifications::NotificationQuery
    ),
    responses(
        (status = 200, description = "OK", body = wire::notifications::NotificationPage),
        (status = 400, response = wire::problem::BadRequest),
        (status = 401, response = wire::problem::Unauthorized),
        (status = 403, description = "`forbidden`: a requester only, or `role` is not one of the caller's.", body = wire::problem::Problem, content_type = "application/problem+json"),
        (status = 422, description = "`invalid-request`: `role` missing (non-administrators), or `limit` out of range.", body = wire::problem::Problem, content_type = "application/problem+json"),
        (status = 503, response = wire::problem::Unavailable)
    )
)]
/// Oldest first, a page at a time.
pub async fn list<B: Backend>(
    ctx: C<B>,
    QueryArgs(q): QueryArgs<wire::notifications::NotificationQuery>,
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
    let items = items
        .iter()
        .map(wire::notifications::Notification::from)
        .collect();
    Ok(json(
        StatusCode::OK,
        &wire::notifications::NotificationPage {
            items,
            next_after: next,
        },
    ))
}

#[utoipa::path(
    post,
    path = "/v1/notifications/delivered",
    operation_id = "markNotificationsDelivered",
    tag = "notifications",
    summary = "Mark notifications delivered",
    description = "Needs `admin`: this is what an integration's token does once it has delivered them. Ids already delivered are left as they are.",
    request_body(content = wire::notifications::DeliveredRequest),
    responses(
        (status = 200, description = "OK", body = wire::notifications::DeliveredResult),
        (status = 400, response = wire::problem::BadRequest),
        (status = 401, response = wire::problem::Unauthorized),
        (status = 403, response = wire::problem::Forbidden),
        (status = 413, response = wire::problem::TooLarge),
        (status = 415, response = wire::problem::UnsupportedMediaType),
        (status = 422, description = "`invalid-request`: `ids` missing, empty or longer than `--max-page`.", body = wire::problem::Problem, content_type = "application/problem+json"),
        (status = 503, response = wire::problem::Unavailable)
    )
)]
/// Mark notifications delivered (by whatever delivered them). Administrators only: this is
/// what an integration's token does.
pub async fn delivered<B: Backend>(
    ctx: C<B>,
    JsonBody(body): JsonBody<wire::notifications::DeliveredRequest>,
) -> ApiResult<Response> {
    ctx.require_admin()?;
    if body.ids.is_empty() || body.ids.len() > ctx.limits.max_page as usize {
        return Err(ApiError::invalid(format!(
            "`ids` must hold 1 to {} ids",
            ctx.limits.max_page
        )));
    }
    let marked = ctx.tenant.engine.mark_delivered(&body.ids).await?;
    Ok(json(
        StatusCode::OK,
        &wire::notifications::DeliveredResult { marked },
    ))
}
