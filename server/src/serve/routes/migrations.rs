//! Moving a tenant's live tickets from one version of a process to another (see
//! `itsmflow_engine::runtime::migrate`): a preview that writes nothing, and the migration
//! itself. Both check the plan against both versions and the stages tickets occupy first; a
//! plan that does not check is refused (422, every problem named) and nothing changes.
//!
//! A migration of many tickets outlasts the API's request time limit, so these routes are
//! served without it, and the engine's work runs on a task of its own: a client that hangs up
//! does not stop a migration half-way (each ticket moves in its own transaction, and a run
//! stopped by the database can be run again: tickets already moved are no longer on `from`).

use axum::http::StatusCode;
use axum::response::Response;
use itsmflow_engine::runtime::migrate::{Plan, Report};

use crate::serve::app::{json, JsonBody};
use crate::serve::auth::Ctx;
use crate::serve::error::{ApiError, ApiResult};
use crate::serve::tenants::Backend;

type C<B> = Ctx<<B as Backend>::Store>;

/// What the plan would do to every live ticket, written nowhere.
pub async fn preview<B: Backend>(ctx: C<B>, JsonBody(plan): JsonBody<Plan>) -> ApiResult<Response> {
    run::<B>(ctx, plan, false).await
}

/// Move every live ticket as the plan says.
pub async fn apply<B: Backend>(ctx: C<B>, JsonBody(plan): JsonBody<Plan>) -> ApiResult<Response> {
    run::<B>(ctx, plan, true).await
}

async fn run<B: Backend>(ctx: C<B>, plan: Plan, apply: bool) -> ApiResult<Response> {
    let report = migrate::<B>(&ctx, plan, apply).await?;
    Ok(json(StatusCode::OK, &report))
}

/// Check `plan` and, with `apply`, move the tickets (what the API's routes and the web page
/// both do).
pub async fn migrate<B: Backend>(ctx: &C<B>, plan: Plan, apply: bool) -> ApiResult<Report> {
    ctx.require_publisher()?;
    let engine = ctx.tenant.engine.clone();
    let actor = ctx.actor();
    let process = plan.process.clone();
    let report = tokio::spawn(async move { engine.migrate(&plan, &actor, apply).await })
        .await
        .map_err(ApiError::internal)??;
    if apply {
        tracing::info!(
            tenant = %ctx.who.tenant,
            process = %process,
            from = report.from,
            to = report.to,
            migrated = report.migrated,
            "tickets migrated"
        );
    }
    Ok(report)
}
