//! Tasks: claim one, keep the lease, give it back, or complete it with an action.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::TimeDelta;
use itsmflow_engine::runtime::{EngineError, Task, TaskId};
use itsmflow_engine::store::StoreError;
use serde::Deserialize;
use serde_json::{Map, Value as Json};

use super::queues::lease;
use super::PathArgs;
use crate::serve::app::{json, JsonBody};
use crate::serve::auth::Ctx;
use crate::serve::error::{ApiError, ApiResult};
use crate::serve::events::{publish, QueueEvent, QueueEventKind};
use crate::serve::tenants::Backend;

type C<B> = Ctx<<B as Backend>::Store>;

pub async fn get<B: Backend>(ctx: C<B>, PathArgs(id): PathArgs<i64>) -> ApiResult<Response> {
    ctx.require_agent()?;
    Ok(json(
        StatusCode::OK,
        &ctx.tenant.engine.task(TaskId(id)).await?,
    ))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Claim {
    lease_seconds: Option<i64>,
}

pub async fn claim<B: Backend>(
    ctx: C<B>,
    PathArgs(id): PathArgs<i64>,
    body: Option<JsonBody<Claim>>,
) -> ApiResult<Response> {
    let lease = lease(body.unwrap_or(JsonBody(Claim::default())).0.lease_seconds)?;
    let task = take::<B>(&ctx, id, lease).await?;
    Ok(json(StatusCode::OK, &task))
}

/// Claim a task for the caller and tell its queue's listeners.
pub(crate) async fn take<B: Backend>(ctx: &C<B>, id: i64, lease: TimeDelta) -> ApiResult<Task> {
    ctx.require_agent()?;
    let task = ctx
        .tenant
        .engine
        .claim(TaskId(id), &ctx.actor(), lease)
        .await?;
    publish(
        &ctx.tenant.events,
        QueueEvent::of(
            QueueEventKind::Claimed,
            &task,
            ctx.tenant.engine.clock().now(),
        ),
    );
    Ok(task)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Renew {
    /// The fencing token the claim returned.
    token: i64,
    lease_seconds: Option<i64>,
}

pub async fn renew<B: Backend>(
    ctx: C<B>,
    PathArgs(id): PathArgs<i64>,
    JsonBody(body): JsonBody<Renew>,
) -> ApiResult<Response> {
    let lease = lease(body.lease_seconds)?;
    let task = keep::<B>(&ctx, id, body.token, lease).await?;
    Ok(json(StatusCode::OK, &task))
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Release {
    token: i64,
}

pub async fn release<B: Backend>(
    ctx: C<B>,
    PathArgs(id): PathArgs<i64>,
    JsonBody(body): JsonBody<Release>,
) -> ApiResult<Response> {
    give_back::<B>(&ctx, id, body.token).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Release the caller's claim on a task and tell its queue's listeners.
pub(crate) async fn give_back<B: Backend>(ctx: &C<B>, id: i64, token: i64) -> ApiResult<()> {
    ctx.require_agent()?;
    let engine = &ctx.tenant.engine;
    if let Err(e) = engine.release(TaskId(id), token, &ctx.actor()).await {
        return Err(refused::<B>(ctx, id, token, e).await);
    }
    if let Ok(task) = engine.task(TaskId(id)).await {
        publish(
            &ctx.tenant.events,
            QueueEvent::of(
                QueueEventKind::Released,
                &task,
                ctx.tenant.engine.clock().now(),
            ),
        );
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Complete {
    token: i64,
    /// The action performed on the task's instance, e.g. `resolve`.
    action: String,
    #[serde(default)]
    fields: Map<String, Json>,
}

/// Perform an action on the task's instance under the claim; the task is done with it.
pub async fn complete<B: Backend>(
    ctx: C<B>,
    PathArgs(id): PathArgs<i64>,
    JsonBody(body): JsonBody<Complete>,
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
    let now = engine.clock().now();
    match view.task() {
        // Still the same task (the action kept the instance in its stage).
        Some(t) if t.id.0 == id => {}
        next => {
            // The completed task left its queue (the engine hands back how it was).
            if let Some(done) = view.previous_task() {
                publish(
                    &ctx.tenant.events,
                    QueueEvent::of(QueueEventKind::Removed, done, now),
                );
            }
            if let Some(n) = next {
                publish(
                    &ctx.tenant.events,
                    QueueEvent::of(QueueEventKind::Added, n, now),
                );
            }
        }
    }
    // Completing a task that sends the ticket for approval shows the approval.
    Ok(json(
        StatusCode::OK,
        &super::approvals::with_approval::<B>(&ctx, &view).await?,
    ))
}
