//! Queues: what there is to do, in order, and the next task to take.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::TimeDelta;
use itsmflow_engine::model::Assignment;
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

/// Every queue with the number of tasks not done in it.
pub async fn list<B: Backend>(ctx: C<B>) -> ApiResult<Response> {
    ctx.require_agent()?;
    let counts: std::collections::HashMap<String, u64> = ctx
        .tenant
        .engine
        .queue_counts()
        .await?
        .into_iter()
        .collect();
    let items: Vec<_> = ctx
        .tenant
        .engine
        .catalog()
        .queues()
        .into_iter()
        .map(|(name, info)| {
            json!({
                "name": name,
                "roles": info.roles,
                "assignment": assignment_name(info.assignment),
                "tasks": counts.get(&name).copied().unwrap_or(0),
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
    ctx.require_agent()?;
    let limit = ctx.limits.page(q.limit)?;
    let items = ctx.tenant.engine.queue_tasks(&queue, limit).await?;
    Ok(json(StatusCode::OK, &json!({ "items": items })))
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
    ctx.require_agent()?;
    let lease = lease(body.unwrap_or(JsonBody(Lease::default())).0.lease_seconds)?;
    match ctx
        .tenant
        .engine
        .claim_next(&queue, &ctx.actor(), lease)
        .await?
    {
        Some(task) => {
            publish(
                &ctx.tenant.events,
                QueueEvent::of(
                    QueueEventKind::Claimed,
                    &task,
                    ctx.tenant.engine.clock().now(),
                ),
            );
            Ok(json(StatusCode::OK, &task))
        }
        None => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}

/// Server-sent events for one queue: `added`, `claimed`, `released`, `removed`, `escalated`.
pub async fn events<B: Backend>(
    axum::extract::State(app): axum::extract::State<std::sync::Arc<crate::serve::app::App<B>>>,
    ctx: C<B>,
    PathArgs(queue): PathArgs<String>,
) -> ApiResult<Response> {
    ctx.require_agent()?;
    if ctx.tenant.engine.catalog().queue(&queue).is_none() {
        return Err(ApiError::not_found(format!("no queue `{queue}`")));
    }
    Ok(events::stream(&ctx.tenant.events, queue, app.shutdown.subscribe()).into_response())
}
