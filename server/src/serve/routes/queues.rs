//! Queues: what there is to do, in order, and the next task to take.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::TimeDelta;
use itsmflow_engine::model::Assignment;
use itsmflow_engine::runtime::catalog::QueueInfo;
use itsmflow_engine::runtime::Task;
use serde::Deserialize;
use serde_json::json;

use super::{PathArgs, QueryArgs};
use crate::serve::app::{json, JsonBody};
use crate::serve::auth::Ctx;
use crate::serve::error::{ApiError, ApiResult};
use crate::serve::events::{self, publish, QueueEvent, QueueEventKind};
use crate::serve::tenants::Backend;

type C<B> = Ctx<<B as Backend>::Store>;

fn assignment_name(a: Assignment) -> &'static str {
    match a {
        Assignment::Pull => "pull",
        Assignment::RoundRobin => "round_robin",
        Assignment::LeastLoaded => "least_loaded",
    }
}

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

/// Every queue with the number of tasks not done in it.
pub async fn list<B: Backend>(ctx: C<B>) -> ApiResult<Response> {
    let items: Vec<_> = summaries::<B>(&ctx)
        .await?
        .into_iter()
        .map(|(name, info, tasks)| {
            json!({
                "name": name,
                "roles": info.roles,
                "assignment": assignment_name(info.assignment),
                "tasks": tasks,
            })
        })
        .collect();
    Ok(json(StatusCode::OK, &json!({ "items": items })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TasksQuery {
    limit: Option<i64>,
}

/// The queue's tasks not done, in the order agents should take them.
pub async fn tasks<B: Backend>(
    ctx: C<B>,
    PathArgs(queue): PathArgs<String>,
    QueryArgs(q): QueryArgs<TasksQuery>,
) -> ApiResult<Response> {
    let limit = ctx.limits.page(q.limit)?;
    let items = open_tasks::<B>(&ctx, &queue, limit).await?;
    Ok(json(StatusCode::OK, &json!({ "items": items })))
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

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Lease {
    /// How long the claim lasts unless renewed; default 5 minutes.
    lease_seconds: Option<i64>,
}

const DEFAULT_LEASE: i64 = 300;
const MAX_LEASE: i64 = 24 * 3600;

pub fn lease(seconds: Option<i64>) -> ApiResult<TimeDelta> {
    let s = seconds.unwrap_or(DEFAULT_LEASE);
    if !(1..=MAX_LEASE).contains(&s) {
        return Err(ApiError::invalid(format!(
            "`lease_seconds` must be between 1 and {MAX_LEASE}"
        )));
    }
    Ok(TimeDelta::seconds(s))
}

/// Claim the first task of the queue: 200 with the task, or 204 if there is none to take.
pub async fn claim_next<B: Backend>(
    ctx: C<B>,
    PathArgs(queue): PathArgs<String>,
    body: Option<JsonBody<Lease>>,
) -> ApiResult<Response> {
    let lease = lease(body.unwrap_or(JsonBody(Lease::default())).0.lease_seconds)?;
    match take_next::<B>(&ctx, &queue, lease).await? {
        Some(task) => Ok(json(StatusCode::OK, &task)),
        None => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}

/// Claim the queue's first task for the caller and tell the queue's listeners.
pub(crate) async fn take_next<B: Backend>(
    ctx: &C<B>,
    queue: &str,
    lease: TimeDelta,
) -> ApiResult<Option<Task>> {
    ctx.require_agent()?;
    let task = ctx
        .tenant
        .engine
        .claim_next(queue, &ctx.actor(), lease)
        .await?;
    if let Some(task) = &task {
        publish(
            &ctx.tenant.events,
            QueueEvent::of(
                QueueEventKind::Claimed,
                task,
                ctx.tenant.engine.clock().now(),
            ),
        );
    }
    Ok(task)
}

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
