//! A tenant's tailoring of the standard processes: the client's files, applied over the
//! standard library the server publishes. Setting it checks the result first (a tailoring
//! that does not check is refused and nothing changes), then keeps the files and publishes;
//! every later start derives the tenant's processes from the standard library then in force
//! and the same files, and a tailoring that no longer checks keeps the tenant on the versions
//! it had, reported here.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use itsmflow_dsl::diagnostic;

use super::definitions::sources_of;
use crate::identity::store::{IdentityError, StoredTailoring};
use crate::serve::app::{json, App, JsonBody};
use crate::serve::auth::Ctx;
use crate::serve::error::{ApiError, ApiResult};
use crate::serve::tenants::{with_tailoring, Backend, PublishError};
use crate::serve::wire;

type C<B> = Ctx<<B as Backend>::Store>;
type S<B> = State<Arc<App<B>>>;

fn identity_error(e: IdentityError) -> ApiError {
    match e {
        IdentityError::Database(e) => ApiError::unavailable(e),
        other => ApiError::internal(other),
    }
}

#[utoipa::path(
    get,
    path = "/v1/tailoring",
    operation_id = "getTailoring",
    tag = "definitions",
    summary = "The tenant's tailoring of the standard processes",
    description = "The client's files applied over the standard library the server publishes, who set them when, and whether the tenant runs them: `state` is `applied`, or `not_applied` with the checker's `diagnostics` when the standard library in force and the tailoring do not check together (the tenant then keeps the versions it had). Needs `admin` or `process_manager`.",
    responses(
        (status = 200, description = "OK", body = wire::tailoring::Tailoring),
        (status = 401, response = wire::problem::Unauthorized),
        (status = 403, response = wire::problem::Forbidden),
        (status = 404, response = wire::problem::NotFound),
        (status = 503, response = wire::problem::Unavailable)
    )
)]
/// The tenant's tailoring: its files, who set them when, and whether the tenant runs them.
pub async fn get<B: Backend>(State(app): S<B>, ctx: C<B>) -> ApiResult<Response> {
    ctx.require_publisher()?;
    let tenant = ctx.who.tenant.as_str();
    let stored = app
        .identities
        .tailoring(tenant)
        .await
        .map_err(identity_error)?;
    let Some(stored) = stored else {
        return Err(ApiError::not_found(
            "this tenant runs the standard processes as they are: it has no tailoring",
        ));
    };
    let state = app.tenants.tailoring_state(tenant).await;
    Ok(json(
        StatusCode::OK,
        &wire::tailoring::Tailoring::new(stored, state.as_ref()),
    ))
}

#[utoipa::path(
    put,
    path = "/v1/tailoring",
    operation_id = "setTailoring",
    tag = "definitions",
    summary = "Set the tenant's tailoring",
    description = "Checks the standard processes with these files first; when they do not check, nothing changes (422). Otherwise keeps the files and publishes. Every later start derives the tenant's processes from the standard library then in force and the same files. Needs `admin` or `process_manager`.",
    request_body(content = wire::definitions::UploadRequest),
    responses(
        (status = 200, description = "Set; the processes the tailoring changes are published (a new version each where they changed).", body = wire::definitions::PublishResult),
        (status = 400, response = wire::problem::BadRequest),
        (status = 401, response = wire::problem::Unauthorized),
        (status = 403, response = wire::problem::Forbidden),
        (status = 409, response = wire::problem::Conflict),
        (status = 413, response = wire::problem::TooLarge),
        (status = 415, response = wire::problem::UnsupportedMediaType),
        (status = 422, description = "`invalid-definitions` (the standard processes with this tailoring do not check; nothing changed; `diagnostics` lists every problem) or `invalid-request` (no files, a bad or repeated file name).", body = wire::problem::Problem, content_type = "application/problem+json"),
        (status = 503, response = wire::problem::Unavailable)
    )
)]
/// Set the tenant's tailoring: checked over the standard library first; refused (422, with
/// the checker's report) when the result does not check, and then nothing changes.
pub async fn put<B: Backend>(
    State(app): S<B>,
    ctx: C<B>,
    JsonBody(upload): JsonBody<wire::definitions::UploadRequest>,
) -> ApiResult<Response> {
    ctx.require_publisher()?;
    let Some(standard) = app.tenants.standard() else {
        return Err(ApiError::conflict(
            "this server publishes no standard processes (it was started with --no-processes): \
             there is nothing to tailor; publish a whole project instead",
        ));
    };
    let files: Vec<(String, String)> = upload.files.into_iter().map(|f| (f.name, f.text)).collect();
    // The names must be sound on their own, as a project's are.
    sources_of(&files)?;
    let sources = with_tailoring(standard, &files);
    let checked = itsmflow_engine::check(&sources);
    if checked.project.is_none() {
        let errors = checked.diagnostics.iter().filter(|d| d.is_error()).count();
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-definitions",
            "Definitions do not check",
            format!(
                "the standard processes with this tailoring have {errors} error(s); nothing \
                 was changed"
            ),
        )
        .with(
            "diagnostics",
            diagnostic::to_json(&sources, &checked.diagnostics),
        ));
    }
    let tenant = ctx.who.tenant.clone();
    let stored = StoredTailoring {
        files,
        updated_at: app.clock.now(),
        updated_by: ctx.who.user.clone(),
    };
    app.identities
        .set_tailoring(&tenant, &stored)
        .await
        .map_err(identity_error)?;
    let published = republish(&app, &tenant).await?;
    tracing::info!(tenant = %tenant, files = stored.files.len(), "tailoring set");
    Ok(json(
        StatusCode::OK,
        &wire::definitions::PublishResult::of(&published),
    ))
}

#[utoipa::path(
    delete,
    path = "/v1/tailoring",
    operation_id = "deleteTailoring",
    tag = "definitions",
    summary = "Drop the tenant's tailoring",
    description = "The tenant runs the standard processes as they are again (a new version of each process the tailoring changed). Needs `admin` or `process_manager`.",
    responses(
        (status = 200, description = "Dropped and published.", body = wire::definitions::PublishResult),
        (status = 401, response = wire::problem::Unauthorized),
        (status = 403, response = wire::problem::Forbidden),
        (status = 404, response = wire::problem::NotFound),
        (status = 503, response = wire::problem::Unavailable)
    )
)]
/// Drop the tenant's tailoring: it runs the standard processes as they are again (a new
/// version of each process the tailoring changed).
pub async fn delete<B: Backend>(State(app): S<B>, ctx: C<B>) -> ApiResult<Response> {
    ctx.require_publisher()?;
    let tenant = ctx.who.tenant.clone();
    let dropped = app
        .identities
        .delete_tailoring(&tenant)
        .await
        .map_err(identity_error)?;
    if !dropped {
        return Err(ApiError::not_found("this tenant has no tailoring"));
    }
    let published = republish(&app, &tenant).await?;
    tracing::info!(tenant = %tenant, "tailoring dropped");
    Ok(json(
        StatusCode::OK,
        &wire::definitions::PublishResult::of(&published),
    ))
}

async fn republish<B: Backend>(
    app: &App<B>,
    tenant: &str,
) -> ApiResult<Vec<itsmflow_engine::runtime::Published>> {
    match app.tenants.publish_standard(tenant).await {
        Ok(published) => Ok(published),
        Err(PublishError::Engine(e)) => Err(e.into()),
        Err(PublishError::Identity(e)) => Err(identity_error(e)),
    }
}
