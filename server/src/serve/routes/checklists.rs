//! The checklist of a ticket's stage: read it, and tick or clear its items.

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use itsmflow_engine::runtime::InstanceId;
use serde::Deserialize;
use serde_json::json;

use super::instances::{announce, expected_version, visible};
use super::PathArgs;
use crate::serve::app::{json, JsonBody};
use crate::serve::auth::Ctx;
use crate::serve::error::ApiResult;
use crate::serve::tenants::Backend;

type C<B> = Ctx<<B as Backend>::Store>;

/// The items of the checklist of the instance's stage, each with whether it is ticked (none
/// when the stage has no checklist).
pub async fn list<B: Backend>(ctx: C<B>, PathArgs(id): PathArgs<i64>) -> ApiResult<Response> {
    visible::<B>(&ctx, id).await?;
    let items = ctx.tenant.engine.checklist(InstanceId(id)).await?;
    Ok(json(StatusCode::OK, &json!({ "items": items })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tick {
    /// `true` ticks the item, `false` clears it.
    done: bool,
    #[serde(default)]
    version: Option<i64>,
}

/// Tick or clear an item; the instance as it is after.
pub async fn tick<B: Backend>(
    ctx: C<B>,
    PathArgs((id, item)): PathArgs<(i64, String)>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<Tick>,
) -> ApiResult<Response> {
    let expected = expected_version(&headers, body.version)?;
    let after = tick_item::<B>(&ctx, id, &item, body.done, expected).await?;
    Ok(json(StatusCode::OK, &after))
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
    announce::<B>(ctx, &after);
    Ok(after)
}
