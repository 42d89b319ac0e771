//! The checklist of a ticket's stage: read it, and tick or clear its items.

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use itsmflow_engine::runtime::InstanceId;

use super::instances::{expected_version, visible};
use super::PathArgs;
use crate::serve::app::{json, JsonBody};
use crate::serve::auth::Ctx;
use crate::serve::error::ApiResult;
use crate::serve::tenants::Backend;
use crate::serve::wire;

type C<B> = Ctx<<B as Backend>::Store>;

#[utoipa::path(
    get,
    path = "/v1/instances/{id}/checklist",
    operation_id = "getChecklist",
    tag = "instances",
    summary = "The checklist of the instance's stage",
    description = "Each item of the checklist of the stage the instance is in, with whether it is ticked (it starts with none ticked each time the instance enters the stage). Empty when the stage has no checklist. Requesters reach only instances they created; any other is a 404.",
    params(
        ("id" = i64, Path, description = "Instance id.")
    ),
    responses(
        (status = 200, description = "The items.", body = wire::checklists::Checklist),
        (status = 401, response = wire::problem::Unauthorized),
        (status = 404, response = wire::problem::NotFound),
        (status = 503, response = wire::problem::Unavailable)
    )
)]
/// The items of the checklist of the instance's stage, each with whether it is ticked (none
/// when the stage has no checklist).
pub async fn list<B: Backend>(ctx: C<B>, PathArgs(id): PathArgs<i64>) -> ApiResult<Response> {
    visible::<B>(&ctx, id).await?;
    let items = ctx.tenant.engine.checklist(InstanceId(id)).await?;
    let items = items
        .iter()
        .map(wire::checklists::ChecklistItem::from)
        .collect();
    Ok(json(StatusCode::OK, &wire::checklists::Checklist { items }))
}

#[utoipa::path(
    post,
    path = "/v1/instances/{id}/checklist/{item}",
    operation_id = "tickChecklistItem",
    tag = "instances",
    summary = "Tick or clear an item of the checklist",
    description = "Anyone who may perform some transition out of the stage may tick or clear its items; an item already so changes nothing (no new version). Each change is in the history as `checked`. A transition that `requires checklist` is refused with `422 /problems/checklist-incomplete` until every item is ticked. An item the stage's checklist does not have is a 404 listing its items.",
    params(
        ("id" = i64, Path, description = "Instance id."),
        ("item" = String, Path, min_length = 1, description = "The item's name, as the definition writes it.")
    ),
    request_body(content = wire::checklists::ChecklistTick),
    responses(
        (status = 200, description = "Ticked or cleared; the instance with its version.", body = wire::instances::Instance),
        (status = 400, response = wire::problem::BadRequest),
        (status = 401, response = wire::problem::Unauthorized),
        (status = 403, response = wire::problem::Forbidden),
        (status = 404, response = wire::problem::NotFound),
        (status = 409, response = wire::problem::Conflict),
        (status = 413, response = wire::problem::TooLarge),
        (status = 415, response = wire::problem::UnsupportedMediaType),
        (status = 422, response = wire::problem::Invalid),
        (status = 503, response = wire::problem::Unavailable)
    )
)]
/// Tick or clear an item; the instance as it is after.
pub async fn tick<B: Backend>(
    ctx: C<B>,
    PathArgs((id, item)): PathArgs<(i64, String)>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<wire::checklists::ChecklistTick>,
) -> ApiResult<Response> {
    let expected = expected_version(&headers, body.version)?;
    let after = tick_item::<B>(&ctx, id, &item, body.done, expected).await?;
    Ok(json(
        StatusCode::OK,
        &wire::instances::Instance::from(&after),
    ))
}

/// Tick or clear an item of an instance the caller may see (the engine decides whether they
/// may), and tell the queues' listeners: the API's and the ticket page's one way to do it.
pub(crate) async fn tick_item<B: Backend>(
    ctx: &C<B>,
    id: i64,
    item: &str,
    done: bool,
    expected: Option<i64>,
) -> ApiResult<itsmflow_engine::runtime::InstanceView> {
    visible::<B>(ctx, id).await?;
    let after = ctx
        .tenant
        .engine
        .check_item(InstanceId(id), item, done, expected, &ctx.actor())
        .await?;
    Ok(after)
}
