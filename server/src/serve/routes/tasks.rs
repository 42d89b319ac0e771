//! Tasks: claim one, keep the lease, give it back, or complete it with an action.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::TimeDelta;
use itsmflow_engine::runtime::{EngineError, Task, TaskId};
use itsmflow_engine::store::StoreError;

use super::queues::lease;
use super::PathArgs;
use crate::serve::app::{json, JsonBody};
use crate::serve::auth::Ctx;
use crate::serve::error::{ApiError, ApiResult};
use crate::serve::tenants::Backend;
use crate::serve::wire;

type C<B> = Ctx<<B as Backend>::Store>;

#[utoipa::path(
    get,
    path = "/v1/tasks/{id}",
    operation_id = "getTask",
    tag = "tasks",
    summary = "Read a task",
    description = "Needs a role other than `requester`.",
    params(
        ("id" = i64, Path, description = "Task id.")
    ),
    responses(
        (status = 200, description = "OK", body = wire::tasks::Task),
        (status = 400, response = wire::problem::BadRequest),
        (status = 401, response = wire::problem::Unauthorized),
        (status = 403, response = wire::problem::Forbidden),
        (status = 404, response = wire::problem::NotFound),
        (status = 503, response = wire::problem::Unavailable)
    )
)]
pub async fn get<B: Backend>(ctx: C<B>, PathArgs(id): PathArgs<i64>) -> ApiResult<Response> {
    ctx.require_agent()?;
    let task = ctx.tenant.engine.task(TaskId(id)).await?;
    Ok(json(StatusCode::OK, &wire::tasks::Task::from(task)))
}

#[utoipa::path(
    post,
    path = "/v1/tasks/{id}/claim",
    operation_id = "claimTask",
    tag = "tasks",
    summary = "Claim a task",
    description = "Needs a role other than `requester`. The body is optional. Claiming again a task one holds renews the claim with a new token.",
    params(
        ("id" = i64, Path, description = "Task id.")
    ),
    request_body(content = wire::tasks::ClaimRequest, description = "Optional: a request without a body takes the defaults."),
    responses(
        (status = 200, description = "Claimed: the task, with its new `token` and `lease_until`.", body = wire::tasks::Task),
        (status = 400, response = wire::problem::BadRequest),
        (status = 401, response = wire::problem::Unauthorized),
        (status = 403, description = "`forbidden`: a requester, or not a member of the queue's roles.", body = wire::problem::Problem, content_type = "application/problem+json"),
        (status = 404, response = wire::problem::NotFound),
        (status = 409, description = "`task-claimed` (someone else holds a live lease) or `task-done`.", body = wire::problem::Problem, content_type = "application/problem+json"),
        (status = 413, response = wire::problem::TooLarge),
        (status = 415, response = wire::problem::UnsupportedMediaType),
        (status = 422, description = "`invalid-request`: `lease_seconds` out of range.", body = wire::problem::Problem, content_type = "application/problem+json"),
        (status = 503, response = wire::problem::Unavailable)
    )
)]
pub async fn claim<B: Backend>(
    ctx: C<B>,
    PathArgs(id): PathArgs<i64>,
    body: Option<JsonBody<wire::tasks::ClaimRequest>>,
) -> ApiResult<Response> {
    let lease = lease(
        body.unwrap_or(JsonBody(wire::tasks::ClaimRequest::default()))
            .0
            .lease_seconds,
    )?;
    let task = take::<B>(&ctx, id, lease).await?;
    Ok(json(StatusCode::OK, &wire::tasks::Task::from(task)))
}

/// Claim a task for the caller (the engine tells its queue's listeners).
pub(crate) async fn take<B: Backend>(ctx: &C<B>, id: i64, lease: TimeDelta) -> ApiResult<Task> {
    ctx.require_agent()?;
    Ok(ctx
        .tenant
        .engine
        .claim(TaskId(id), &ctx.actor(), lease)
        .await?)
}

#[utoipa::path(
    post,
    path = "/v1/tasks/{id}/renew",
    operation_id = "renewTask",
    tag = "tasks",
    summary = "Extend a claim",
    description = "Needs a role other than `requester`.",
    params(
        ("id" = i64, Path, description = "Task id.")
    ),
    request_body(content = wire::tasks::RenewRequest),
    responses(
        (status = 200, description = "OK", body = wire::tasks::Task),
        (status = 400, response = wire::problem::BadRequest),
        (status = 401, response = wire::problem::Unauthorized),
        (status = 403, response = wire::problem::Forbidden),
        (status = 404, response = wire::problem::NotFound),
        (status = 409, description = "`lease-lost`: the claim is no longer the caller's with this token.", body = wire::problem::Problem, content_type = "application/problem+json"),
        (status = 413, response = wire::problem::TooLarge),
        (status = 415, response = wire::problem::UnsupportedMediaType),
        (status = 422, response = wire::problem::Invalid),
        (status = 503, response = wire::problem::Unavailable)
    )
)]
pub async fn renew<B: Backend>(
    ctx: C<B>,
    PathArgs(id): PathArgs<i64>,
    JsonBody(body): JsonBody<wire::tasks::RenewRequest>,
) -> ApiResult<Response> {
    let lease = lease(body.lease_seconds)?;
    let task = keep::<B>(&ctx, id, body.token, lease).await?;
    Ok(json(StatusCode::OK, &wire::tasks::Task::from(task)))
}

/// Renew the caller's lease on a task.
pub(crate) async fn keep<B: Backend>(
    ctx: &C<B>,
    id: i64,
    token: i64,
    lease: TimeDelta,
) -> ApiResult<Task> {
    ctx.require_agent()?;
    match ctx
        .tenant
        .engine
        .renew(TaskId(id), token, &ctx.actor(), lease)
        .await
    {
        Ok(task) => Ok(task),
        Err(e) => Err(refused::<B>(ctx, id, token, e).await),
    }
}

/// A refusal of a request made under a fencing token: when the claim is not the caller's
/// under that token, say whose it is now, from the task as it now is.
async fn refused<B: Backend>(ctx: &C<B>, id: i64, token: i64, e: EngineError) -> ApiError {
    if !matches!(e, EngineError::Store(StoreError::LeaseLost(_))) {
        return e.into();
    }
    let now = ctx.tenant.engine.task(TaskId(id)).await.ok();
    ApiError::lease_refused(id, token, &ctx.who.user, now.as_ref())
}

#[utoipa::path(
    post,
    path = "/v1/tasks/{id}/release",
    operation_id = "releaseTask",
    tag = "tasks",
    summary = "Give a claimed task back to its queue",
    description = "Needs a role other than `requester`.",
    params(
        ("id" = i64, Path, description = "Task id.")
    ),
    request_body(content = wire::tasks::ReleaseRequest),
    responses(
        (status = 204, description = "Done; no body."),
        (status = 400, response = wire::problem::BadRequest),
        (status = 401, response = wire::problem::Unauthorized),
        (status = 403, response = wire::problem::Forbidden),
        (status = 404, response = wire::problem::NotFound),
        (status = 409, description = "`lease-lost`: the claim is no longer the caller's with this token.", body = wire::problem::Problem, content_type = "application/problem+json"),
        (status = 413, response = wire::problem::TooLarge),
        (status = 415, response = wire::problem::UnsupportedMediaType),
        (status = 422, response = wire::problem::Invalid),
        (status = 503, response = wire::problem::Unavailable)
    )
)]
pub async fn release<B: Backend>(
    ctx: C<B>,
    PathArgs(id): PathArgs<i64>,
    JsonBody(body): JsonBody<wire::tasks::ReleaseRequest>,
) -> ApiResult<Response> {
    give_back::<B>(&ctx, id, body.token).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Release the caller's claim on a task (the engine tells its queue's listeners).
pub(crate) async fn give_back<B: Backend>(ctx: &C<B>, id: i64, token: i64) -> ApiResult<()> {
    ctx.require_agent()?;
    let engine = &ctx.tenant.engine;
    if let Err(e) = engine.release(TaskId(id), token, &ctx.actor()).await {
        return Err(refused::<B>(ctx, id, token, e).await);
    }
    Ok(())
}

#[utoipa::path(
    post,
    path = "/v1/tasks/{id}/complete",
    operation_id = "completeTask",
    tag = "tasks",
    summary = "Complete a claimed task by performing an action on its instance",
    description = "Needs a role other than `requester`. Nothing changes if the action is refused; the claim stays.",
    params(
        ("id" = i64, Path, description = "Task id.")
    ),
    request_body(content = wire::tasks::CompleteRequest),
    responses(
        (status = 200, description = "The instance after the action; its `task` is the next one, if any.", body = wire::instances::Instance),
        (status = 400, response = wire::problem::BadRequest),
        (status = 401, response = wire::problem::Unauthorized),
        (status = 403, description = "`forbidden`: the action is for other roles (`roles` lists them).", body = wire::problem::Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not-found` (no such instance) or `unknown-action` (the process has no such action).", body = wire::problem::Problem, content_type = "application/problem+json"),
        (status = 409, description = "`lease-lost` (the claim is no longer the caller's with this token), `action-not-allowed` or `rule-refused`.", body = wire::problem::Problem, content_type = "application/problem+json"),
        (status = 413, response = wire::problem::TooLarge),
        (status = 415, response = wire::problem::UnsupportedMediaType),
        (status = 422, description = "`missing-fields` (`fields` lists what the action requires), `invalid-fields`, `rule-failed` or `invalid-request`.", body = wire::problem::Problem, content_type = "application/problem+json"),
        (status = 503, response = wire::problem::Unavailable)
    )
)]
/// Perform an action on the task's instance under the claim; the task is done with it.
pub async fn complete<B: Backend>(
    ctx: C<B>,
    PathArgs(id): PathArgs<i64>,
    JsonBody(body): JsonBody<wire::tasks::CompleteRequest>,
) -> ApiResult<Response> {
    ctx.require_agent()?;
    let engine = &ctx.tenant.engine;
    let view = match engine
        .complete(
            TaskId(id),
            body.token,
            &body.action,
            &body.fields,
            &ctx.actor(),
        )
        .await
    {
        Ok(view) => view,
        Err(e) => return Err(refused::<B>(&ctx, id, body.token, e).await),
    };
    // Completing a task that sends the ticket for approval shows the approval.
    Ok(json(
        StatusCode::OK,
        &super::approvals::with_approval::<B>(&ctx, &view).await?,
    ))
}
