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
use crate::serve::wire;

type C<B> = Ctx<<B as Backend>::Store>;

#[utoipa::path(
    post,
    path = "/v1/migrations/preview",
    operation_id = "previewMigration",
    tag = "definitions",
    summary = "Preview moving live tickets to another version",
    description = "A dry run of `POST /v1/migrations`: checks the plan the same way and lists every live ticket of `from` as it reads now and as it would after the move (stage, queue, priority, business time left on each clock). Writes nothing. Not bound by the request time limit. Needs `admin` or `process_manager`.",
    request_body(content = wire::migrations::MigrationPlan),
    responses(
        (status = 200, description = "What the migration would do; nothing was written.", body = wire::migrations::MigrationReport),
        (status = 400, response = wire::problem::BadRequest),
        (status = 401, response = wire::problem::Unauthorized),
        (status = 403, response = wire::problem::Forbidden),
        (status = 404, response = wire::problem::NotFound),
        (status = 413, response = wire::problem::TooLarge),
        (status = 415, response = wire::problem::UnsupportedMediaType),
        (status = 422, description = "`migration-refused` (the plan does not check against both versions and the stages live tickets occupy; `problems` lists every problem with its code; nothing changed) or `invalid-request` (the body is not a plan).", body = wire::problem::Problem, content_type = "application/problem+json"),
        (status = 503, response = wire::problem::Unavailable)
    )
)]
/// What the plan would do to every live ticket, written nowhere.
pub async fn preview<B: Backend>(
    ctx: C<B>,
    JsonBody(plan): JsonBody<wire::migrations::MigrationPlan>,
) -> ApiResult<Response> {
    run::<B>(ctx, plan.into(), false).await
}

#[utoipa::path(
    post,
    path = "/v1/migrations",
    operation_id = "migrate",
    tag = "definitions",
    summary = "Move live tickets to another version",
    description = "Checks the plan against both versions and the stages live tickets occupy; when it does not check, nothing changes (422). Otherwise moves every live ticket of `from` to `to`, each in its own transaction under its version check, with a `migrated` event in its history and its task and timers rewritten. Not bound by the request time limit; runs to the end even if the client hangs up. Needs `admin` or `process_manager`.",
    request_body(content = wire::migrations::MigrationPlan),
    responses(
        (status = 200, description = "Done: every ticket moved, as it read before and after; `skipped` lists tickets that ended or were moved meanwhile.", body = wire::migrations::MigrationReport),
        (status = 400, response = wire::problem::BadRequest),
        (status = 401, response = wire::problem::Unauthorized),
        (status = 403, response = wire::problem::Forbidden),
        (status = 404, response = wire::problem::NotFound),
        (status = 413, response = wire::problem::TooLarge),
        (status = 415, response = wire::problem::UnsupportedMediaType),
        (status = 422, description = "`migration-refused` (the plan does not check against both versions and the stages live tickets occupy; `problems` lists every problem with its code; nothing changed) or `invalid-request` (the body is not a plan).", body = wire::problem::Problem, content_type = "application/problem+json"),
        (status = 503, response = wire::problem::Unavailable)
    )
)]
/// Move every live ticket as the plan says.
pub async fn apply<B: Backend>(
    ctx: C<B>,
    JsonBody(plan): JsonBody<wire::migrations::MigrationPlan>,
) -> ApiResult<Response> {
    run::<B>(ctx, plan.into(), true).await
}

async fn run<B: Backend>(ctx: C<B>, plan: Plan, apply: bool) -> ApiResult<Response> {
    let report = migrate::<B>(&ctx, plan, apply).await?;
    Ok(json(
        StatusCode::OK,
        &wire::migrations::MigrationReport::from(report),
    ))
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
