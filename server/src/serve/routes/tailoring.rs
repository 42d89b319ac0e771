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
use serde_json::json;

use super::definitions::{sources_of, Upload};
use crate::identity::store::{IdentityError, StoredTailoring};
use crate::serve::app::{json, App, JsonBody};
use crate::serve::auth::Ctx;
use crate::serve::error::{ApiError, ApiResult};
use crate::serve::tenants::{with_tailoring, Backend, PublishError};

type C<B> = Ctx<<B as Backend>::Store>;
type S<B> = State<Arc<App<B>>>;

fn identity_error(e: IdentityError) -> ApiError {
    match e {
        IdentityError::Database(e) => ApiError::unavailable(e),
        other => ApiError::internal(other),
    }
}

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
    let files: Vec<_> = stored
        .files
        .iter()
        .map(|(name, text)| json!({ "name": name, "text": text }))
        .collect();
    Ok(json(
        StatusCode::OK,
        &json!({
            "files": files,
            "updated_at": stored.updated_at,
            "updated_by": stored.updated_by,
            "state": state,
        }),
    ))
}

/// Set the tenant's tailoring: checked over the standard library first; refused (422, with
/// the checker's report) when the result does not check, and then nothing changes.
pub async fn put<B: Backend>(
    State(app): S<B>,
    ctx: C<B>,
    JsonBody(upload): JsonBody<Upload>,
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
    Ok(json(StatusCode::OK, &json!({ "published": published })))
}

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
    Ok(json(StatusCode::OK, &json!({ "published": published })))
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
