//! Queues: what there is to do, in order, and the next task to take.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::TimeDelta;
use itsmflow_engine::runtime::catalog::QueueInfo;
use itsmflow_engine::runtime::Task;

use super::{PathArgs, QueryArgs};
use crate::serve::app::{json, JsonBody};
use crate::serve::auth::Ctx;
use crate::serve::error::{ApiError, ApiResult};
use crate::serve::events;
use crate::serve::tenants::Backend;
use crate::serve::wire;

type C<B> = Ctx<<B as Backend>::Store>;

/// Every queue the tenant's definitions declare, with who works it and its number of tasks
/// not done: what `GET /v1/queues` lists and the web's queues page shows.
pub(crate) async fn summaries<B: Backend>(
    ctx: &C<B>,
) -> ApiResult<Vec<(String, std::sync::Arc<QueueInfo>, u64)>> {
    ctx.require_agent()?;
    let counts: std::collections::HashMap<String, u64> = ctx
        .tenant
        .engine
        .queue_counts()
        .await?
        .into_iter()
        .collect();
    Ok(ctx
        .tenant
        .engine
        .catalog()
        .queues()
        .into_iter()
        .map(|(name, info)| {
            let n = counts.get(&name).copied().unwrap_or(0);
            (name, info, n)
        })
        .collect())
}

#[utoipa::path(
    get,
    path = "/v1/queues",
    operation_id = "listQueues",
    tag = "queues",
    summary = "Every queue with its number of tasks not done",
    description = "Needs a role other than `requester`.",
    responses(
        (status = 200, description = "OK", body = wire::queues::QueueList),
        (status = 401, response = wire::problem::Unauthorized),
        (status = 403, response = wire::problem::Forbidden),
        (status = 503, response = wire::problem::Unavailable)
    )
)]
/// Every queue with the number of tasks not done in it.
pub async fn list<B: Backend>(ctx: C<B>) -> ApiResult<Response> {
    let items: Vec<_> = summaries::<B>(&ctx)
        .await?
        .into_iter()
        .map(|(name, info, tasks)| wire::queues::Queue::new(name, &info, tasks))
        .collect();
    Ok(json(StatusCode::OK, &wire::queues::QueueList { items }))
}

#[utoipa::path(
    get,
    path = "/v1/queues/{queue}/tasks",
    operation_id = "listQueueTasks",
    tag = "queues",
    summary = "The queue's tasks not done, in the order to take them",
    description = "Needs a role other than `requester`. Only the first page (`limit`) is returned; there is no cursor.",
    params(
        ("queue" = String, Path, description = "Queue name.", example = "service_desk"),
        wire::tasks::QueueTasksQuery
    ),
    responses(
        (status = 200, description = "OK", body = wire::tasks::TaskList),
        (status = 400, response = wire::problem::BadRequest),
        (status = 401, response = wire::problem::Unauthorized),
        (status = 403, response = wire::problem::Forbidden),
        (status = 404, response = wire::problem::NotFound),
        (status = 422, description = "`invalid-request`: `limit` out of range.", body = wire::problem::Problem, content_type = "application/problem+json"),
        (status = 503, response = wire::problem::Unavailable)
    )
)]
/// The queue's tasks not done, in the order agents should take them.
pub async fn tasks<B: Backend>(
    ctx: C<B>,
    PathArgs(queue): PathArgs<String>,
    QueryArgs(q): QueryArgs<wire::tasks::QueueTasksQuery>,
) -> ApiResult<Response> {
    let limit = ctx.limits.page(q.limit)?;
    let items = open_tasks::<B>(&ctx, &queue, limit).await?;
    let items = items.iter().map(wire::tasks::Task::from).collect();
    Ok(json(StatusCode::OK, &wire::tasks::TaskList { items }))
}

/// A queue's tasks not done, in the order agents should take them (priority, then due time).
pub(crate) async fn open_tasks<B: Backend>(
    ctx: &C<B>,
    queue: &str,
    limit: u32,
) -> ApiResult<Vec<Task>> {
    ctx.require_agent()?;
    Ok(ctx.tenant.engine.queue_tasks(queue, limit).await?)
}

const DEFAULT_LEASE: i64 = 300;
const MAX_LEASE: i64 = wire::tasks::MAX_LEASE_SECONDS;

pub fn lease(seconds: Option<i64>) -> ApiResult<TimeDelta> {
    let s = seconds.unwrap_or(DEFAULT_LEASE);
    if !(1..=MAX_LEASE).contains(&s) {
        return Err(ApiError::invalid(format!(
            "`lease_seconds` must be between 1 and {MAX_LEASE}"
        )));
    }
    Ok(TimeDelta::seconds(s))
}

#[utoipa::path(
    post,
    path = "/v1/queues/{queue}/claim",
    operation_id = "claimNext",
    tag = "queues",
    summary = "Claim the first task of the queue",
    description = "Needs a role other than `requester`. The body is optional.",
    params(
        ("queue" = String, Path, description = "Queue name.", example = "service_desk")
    ),
    request_body(content = wire::tasks::ClaimRequest, description = "Optional: a request without a body takes the defaults."),
    responses(
        (status = 200, description = "Claimed: the task, with its `token` and `lease_until`.", body = wire::tasks::Task),
        (status = 204, description = "Nothing claimable right now: the queue has no open task the caller may take. On PostgreSQL, tasks other agents are claiming at this moment are skipped (SKIP LOCKED), so a 204 can come while their claims are in flight and tasks remain; retry after a short pause rather than assume the queue is empty."),
        (status = 400, response = wire::problem::BadRequest),
        (status = 401, response = wire::problem::Unauthorized),
        (status = 403, description = "`forbidden`: a requester, or not a member of the queue's roles (`roles` lists them).", body = wire::problem::Problem, content_type = "application/problem+json"),
        (status = 404, response = wire::problem::NotFound),
        (status = 413, response = wire::problem::TooLarge),
        (status = 415, response = wire::problem::UnsupportedMediaType),
        (status = 422, description = "`invalid-request`: `lease_seconds` out of range.", body = wire::problem::Problem, content_type = "application/problem+json"),
        (status = 503, response = wire::problem::Unavailable)
    )
)]
/// Claim the first task of the queue: 200 with the task, or 204 if there is none to take.
pub async fn claim_next<B: Backend>(
    ctx: C<B>,
    PathArgs(queue): PathArgs<String>,
    body: Option<JsonBody<wire::tasks::ClaimRequest>>,
) -> ApiResult<Response> {
    let lease = lease(
        body.unwrap_or(JsonBody(wire::tasks::ClaimRequest::default()))
            .0
            .lease_seconds,
    )?;
    match take_next::<B>(&ctx, &queue, lease).await? {
        Some(task) => Ok(json(StatusCode::OK, &wire::tasks::Task::from(task))),
        None => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}

/// Claim the queue's first task for the caller (the engine tells the queue's listeners).
pub(crate) async fn take_next<B: Backend>(
    ctx: &C<B>,
    queue: &str,
    lease: TimeDelta,
) -> ApiResult<Option<Task>> {
    ctx.require_agent()?;
    Ok(ctx
        .tenant
        .engine
        .claim_next(queue, &ctx.actor(), lease)
        .await?)
}

#[utoipa::path(
    get,
    path = "/v1/queues/{queue}/events",
    operation_id = "queueEvents",
    tag = "queues",
    summary = "Live events of one queue (server-sent events)",
    description = "Needs a role other than `requester`. Not subject to the request timeout; ends when the server shuts down.",
    params(
        ("queue" = String, Path, description = "Queue name.", example = "service_desk")
    ),
    responses(
        (status = 200, description = "A `text/event-stream` that stays open until the client disconnects or the server shuts down (the stream then ends). Events: `ready` (data `{}`, once, when subscribed); `added`, `claimed`, `released`, `removed` (data: a QueueEvent), told by the engine from every change it commits, whoever made it (a request, a timer, an effect on a linked ticket, a spawn, an agent going off shift, a migration); `escalated` (data: a QueueEvent): a timer fired on the task's instance (an escalation step, a breach, an automatic transition) and the task is now in this queue, perhaps moved here or re-prioritised; a task the firing took out of a queue is announced there as `removed`; `lagged` (data `{\"missed\": N}`: the client fell behind and missed N events; reload the queue). A comment line is sent every 15 s to keep the connection open. Events reach clients on every node: nodes sharing a PostgreSQL database pass them to each other (NOTIFY/LISTEN), so a client hears about changes made through any node and timers fired by any node's scheduler. Best effort: reload the queue on `ready` and `lagged`.", body = String, content_type = "text/event-stream", example = json!("event: ready\ndata: {}\n\nevent: added\ndata: {\"type\":\"added\",\"queue\":\"service_desk\",\"task\":1,\"instance\":1,\"priority\":2,\"claimed_by\":null,\"at\":\"2026-03-02T09:00:00Z\"}\n\n")),
        (status = 401, response = wire::problem::Unauthorized),
        (status = 403, response = wire::problem::Forbidden),
        (status = 404, response = wire::problem::NotFound),
        (status = 503, response = wire::problem::Unavailable)
    )
)]
/// Server-sent events for one queue: `added`, `claimed`, `released`, `removed`, `escalated`.
pub async fn events<B: Backend>(
    axum::extract::State(app): axum::extract::State<std::sync::Arc<crate::serve::app::App<B>>>,
    ctx: C<B>,
    PathArgs(queue): PathArgs<String>,
) -> ApiResult<Response> {
    follow::<B>(&app, &ctx, queue)
}

/// The event stream of a queue, for an agent (the API's and the web pages' alike).
pub(crate) fn follow<B: Backend>(
    app: &crate::serve::app::App<B>,
    ctx: &C<B>,
    queue: String,
) -> ApiResult<Response> {
    ctx.require_agent()?;
    if ctx.tenant.engine.catalog().queue(&queue).is_none() {
        return Err(ApiError::not_found(format!("no queue `{queue}`")));
    }
    Ok(events::stream(&ctx.tenant.events, queue, app.shutdown.subscribe()).into_response())
}
