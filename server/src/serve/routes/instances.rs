//! Instances (tickets): create, read, list, act, update, comment, link, history, clocks,
//! explain.
//!
//! Requesters reach only the instances they created; for anyone else such an instance is a
//! 404, so its existence is not revealed either.

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use itsmflow_engine::runtime::{EventView, InstanceId, InstanceView, LinkView};
use itsmflow_engine::store::InstanceFilter;
use serde::Deserialize;
use serde_json::{json, Map, Value as Json};

use super::{PathArgs, QueryArgs};
use crate::serve::app::{json, JsonBody};
use crate::serve::auth::Ctx;
use crate::serve::error::{ApiError, ApiResult};
use crate::serve::events::{publish, QueueEvent, QueueEventKind};
use crate::serve::tenants::Backend;

type C<B> = Ctx<<B as Backend>::Store>;

/// The instance, if the caller may see it. A requester sees the tickets that name them (they
/// raised it, or a `person` field holds them: the caller, the requester) and those awaiting
/// their vote (a manager asked to approve their report's request).
pub(crate) async fn visible<B: Backend>(ctx: &C<B>, id: i64) -> ApiResult<InstanceView> {
    let view = ctx.tenant.engine.instance(InstanceId(id)).await?;
    if ctx.who.is_requester_only()
        && !view.names(&ctx.who.user)
        && !asked_to_vote::<B>(ctx, &view).await?
    {
        return Err(ApiError::not_found(format!("no instance {id}")));
    }
    Ok(view)
}

/// Whether the instance awaits the caller's vote.
async fn asked_to_vote<B: Backend>(ctx: &C<B>, view: &InstanceView) -> ApiResult<bool> {
    if !view.awaits_approval() {
        return Ok(false);
    }
    let approval = ctx.tenant.engine.approval(view.id()).await?;
    Ok(approval.is_some_and(|a| a.waiting_for().contains(&ctx.who.user.as_str())))
}

/// Tell queue listeners how the instance's task changed (the engine hands back the task as it
/// was before the action, so nothing is read again).
pub(crate) fn announce<B: Backend>(ctx: &C<B>, after: &InstanceView) {
    if !ctx.tenant.events.has_listeners() {
        return;
    }
    let now = ctx.tenant.engine.clock().now();
    let old = after.previous_task();
    let new = after.task();
    match (old, new) {
        (Some(o), Some(n)) if o.id == n.id && o.queue == n.queue && o.priority == n.priority => {}
        (Some(o), Some(n)) if o.id == n.id && o.queue == n.queue => publish(
            &ctx.tenant.events,
            QueueEvent::of(QueueEventKind::Added, n, now),
        ),
        _ => {
            if let Some(o) = old {
                publish(
                    &ctx.tenant.events,
                    QueueEvent::of(QueueEventKind::Removed, o, now),
                );
            }
            if let Some(n) = new {
                publish(
                    &ctx.tenant.events,
                    QueueEvent::of(QueueEventKind::Added, n, now),
                );
            }
        }
    }
}

fn located(view: &InstanceView) -> Response {
    let mut response = json(StatusCode::CREATED, view);
    if let Ok(v) = format!("/v1/instances/{}", view.id()).parse() {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewInstance {
    /// The process to raise a ticket of; or, instead, a catalogue `item`.
    #[serde(default)]
    process: Option<String>,
    #[serde(default)]
    item: Option<String>,
    #[serde(default)]
    fields: Map<String, Json>,
}

pub async fn create<B: Backend>(
    ctx: C<B>,
    JsonBody(body): JsonBody<NewInstance>,
) -> ApiResult<Response> {
    let view = match (&body.process, &body.item) {
        (Some(process), None) => raise::<B>(&ctx, process, &body.fields).await?,
        (None, Some(item)) => {
            let view = ctx
                .tenant
                .engine
                .create_item(item, &body.fields, &ctx.actor())
                .await?;
            announce::<B>(&ctx, &view);
            view
        }
        _ => {
            return Err(ApiError::invalid(
                "give either `process` (a published process) or `item` (a catalogue item)",
            ))
        }
    };
    Ok(located(&view))
}

/// Create an instance as the caller (the engine validates the fields) and tell the queues'
/// listeners. The portal's form calls this too, so its refusals are the API's.
pub(crate) async fn raise<B: Backend>(
    ctx: &C<B>,
    process: &str,
    fields: &Map<String, Json>,
) -> ApiResult<InstanceView> {
    let view = ctx
        .tenant
        .engine
        .create(process, fields, &ctx.actor())
        .await?;
    announce::<B>(ctx, &view);
    Ok(view)
}

/// The instance, with its version as the `ETag` (to send back in `If-Match`).
pub async fn get<B: Backend>(ctx: C<B>, PathArgs(id): PathArgs<i64>) -> ApiResult<Response> {
    let view = visible::<B>(&ctx, id).await?;
    let mut body = super::approvals::with_approval::<B>(&ctx, &view).await?;
    // Only a process whose queues agree OLA targets has OLA clocks: the others' tickets are
    // not read a second time (their history) for nothing.
    if view.definition().timing().ola {
        let clocks = ctx.tenant.engine.ola_clocks(view.id()).await?;
        body["ola"] = ola_json(clocks)?;
    }
    let mut response = json(StatusCode::OK, &body);
    if let Ok(tag) = format!("\"{}\"", view.version()).parse() {
        response.headers_mut().insert(header::ETAG, tag);
    }
    Ok(response)
}

/// A ticket's OLA clocks as the API shows them: the current stay's (the open one, the last),
/// and how the past ones ended.
fn ola_json(mut clocks: Vec<itsmflow_engine::runtime::ola::OlaClock>) -> ApiResult<Json> {
    let current = match clocks.last() {
        Some(c) if c.left_at.is_none() => clocks.pop(),
        _ => None,
    };
    Ok(json!({
        "current": serde_json::to_value(current).map_err(ApiError::internal)?,
        "past": serde_json::to_value(clocks).map_err(ApiError::internal)?,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    process: Option<String>,
    stage: Option<String>,
    queue: Option<String>,
    created_by: Option<String>,
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

fn not_given_out() -> ApiError {
    ApiError::invalid(
        "`cursor` is not one this API gave out for these filters; pass back a page's \
         `next_cursor` with the same `process` and `created_by`, or start again without it",
    )
}

/// Newest first, a page at a time.
pub async fn list<B: Backend>(
    ctx: C<B>,
    QueryArgs(q): QueryArgs<ListQuery>,
) -> ApiResult<Response> {
    let limit = ctx.limits.page(q.limit)?;
    let before = match q.cursor.as_deref() {
        None | Some("") => None,
        // Cursors are instance ids, so never 0 or negative.
        Some(c) => Some(InstanceId(
            c.parse::<i64>()
                .ok()
                .filter(|id| *id > 0)
                .ok_or_else(not_given_out)?,
        )),
    };
    let created_by = if ctx.who.is_requester_only() {
        Some(ctx.who.user.clone())
    } else {
        q.created_by
    };
    if let Some(InstanceId(at)) = before {
        // A cursor is the id of the last instance of a page given out under the same filters:
        // an instance that exists, of the process and creator asked for (which never change;
        // its stage and queue may have since). Anything else was never given out.
        let given_out = InstanceFilter {
            process: q.process.clone(),
            stage: None,
            queue: None,
            created_by: created_by.clone(),
            before: Some(InstanceId(at.saturating_add(1))),
        };
        let found = ctx.tenant.engine.list_instances(&given_out, 1).await?;
        if found.first().map(|i| i.id().0) != Some(at) {
            return Err(not_given_out());
        }
    }
    let filter = InstanceFilter {
        process: q.process,
        stage: q.stage,
        queue: q.queue,
        created_by,
        before,
    };
    let items = ctx.tenant.engine.list_instances(&filter, limit).await?;
    let next_cursor = if items.len() as u32 == limit {
        items.last().map(|i| i.id().0.to_string())
    } else {
        None
    };
    Ok(json(
        StatusCode::OK,
        &json!({ "items": items, "next_cursor": next_cursor }),
    ))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Act {
    #[serde(default)]
    fields: Map<String, Json>,
    /// The version the caller last saw; the change is refused (409) if it has moved on.
    version: Option<i64>,
    reason: Option<String>,
}

/// The expected version: from the body, or an `If-Match: "N"` header.
pub(crate) fn expected_version(headers: &HeaderMap, body: Option<i64>) -> ApiResult<Option<i64>> {
    let header = match headers.get(header::IF_MATCH) {
        None => None,
        Some(v) => {
            let text = v.to_str().unwrap_or_default().trim();
            if text == "*" {
                None
            } else {
                let tag = text.strip_prefix("W/").unwrap_or(text).trim_matches('"');
                Some(tag.parse::<i64>().map_err(|_| {
                    ApiError::bad_request(
                        "If-Match must be an instance version as its ETag gives it, e.g. `\"7\"`",
                    )
                })?)
            }
        }
    };
    let version = match (header, body) {
        (Some(h), Some(b)) if h != b => {
            return Err(ApiError::bad_request(
                "If-Match and `version` disagree; send one of them",
            ))
        }
        (h, b) => h.or(b),
    };
    match version {
        Some(v) if v < 1 => Err(ApiError::invalid(format!(
            "`version` {v} is not a version: versions start at 1"
        ))),
        v => Ok(v),
    }
}

pub async fn perform<B: Backend>(
    ctx: C<B>,
    PathArgs((id, action)): PathArgs<(i64, String)>,
    headers: HeaderMap,
    body: Option<JsonBody<Act>>,
) -> ApiResult<Response> {
    let body = body.map(|b| b.0).unwrap_or_default();
    let expected = expected_version(&headers, body.version)?;
    let after = act::<B>(&ctx, id, &action, &body.fields, expected, body.reason).await?;
    // An action that leads into an approval shows it (who is asked, and why).
    Ok(json(
        StatusCode::OK,
        &super::approvals::with_approval::<B>(&ctx, &after).await?,
    ))
}

/// Perform an action as the caller (the engine decides whether they may) and tell the queues'
/// listeners what moved.
pub(crate) async fn act<B: Backend>(
    ctx: &C<B>,
    id: i64,
    action: &str,
    fields: &Map<String, Json>,
    expected: Option<i64>,
    reason: Option<String>,
) -> ApiResult<InstanceView> {
    if ctx.who.is_requester_only() {
        visible::<B>(ctx, id).await?;
    }
    let after = ctx
        .tenant
        .engine
        .perform(
            InstanceId(id),
            action,
            fields,
            expected,
            &ctx.actor(),
            reason,
        )
        .await?;
    announce::<B>(ctx, &after);
    Ok(after)
}

pub async fn update<B: Backend>(
    ctx: C<B>,
    PathArgs(id): PathArgs<i64>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<Act>,
) -> ApiResult<Response> {
    // Fields outside a transition are the agents' to change; requesters act through actions.
    ctx.require_agent()?;
    let expected = expected_version(&headers, body.version)?;
    let after = ctx
        .tenant
        .engine
        .update(
            InstanceId(id),
            &body.fields,
            expected,
            &ctx.actor(),
            body.reason,
        )
        .await?;
    announce::<B>(&ctx, &after);
    Ok(json(StatusCode::OK, &after))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Comment {
    text: String,
}

/// Comments longer than this are refused: a log file belongs in an attachment.
const MAX_COMMENT: usize = 64 * 1024;

pub async fn comment<B: Backend>(
    ctx: C<B>,
    PathArgs(id): PathArgs<i64>,
    JsonBody(body): JsonBody<Comment>,
) -> ApiResult<Response> {
    let view = add_comment::<B>(&ctx, id, &body.text).await?;
    Ok(json(StatusCode::CREATED, &view))
}

/// Comment on an instance the caller may see.
pub(crate) async fn add_comment<B: Backend>(
    ctx: &C<B>,
    id: i64,
    text: &str,
) -> ApiResult<InstanceView> {
    if text.trim().is_empty() {
        return Err(ApiError::invalid("`text` is empty"));
    }
    if text.len() > MAX_COMMENT {
        return Err(ApiError::invalid("`text` is longer than 64 KiB"));
    }
    visible::<B>(ctx, id).await?;
    Ok(ctx
        .tenant
        .engine
        .comment(InstanceId(id), text, &ctx.actor())
        .await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewLink {
    to: i64,
    kind: String,
}

pub async fn link<B: Backend>(
    ctx: C<B>,
    PathArgs(id): PathArgs<i64>,
    JsonBody(body): JsonBody<NewLink>,
) -> ApiResult<Response> {
    if !crate::identity::valid_role_name(&body.kind) {
        return Err(ApiError::invalid(
            "`kind` must be an identifier, e.g. `caused_by` or `duplicate_of`",
        ));
    }
    if body.to == id {
        return Err(ApiError::invalid("an instance cannot be linked to itself"));
    }
    visible::<B>(&ctx, id).await?;
    visible::<B>(&ctx, body.to).await?;
    let (view, new) = ctx
        .tenant
        .engine
        .link(
            InstanceId(id),
            InstanceId(body.to),
            &body.kind,
            &ctx.actor(),
        )
        .await?;
    let status = if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(json(status, &view))
}

pub async fn links<B: Backend>(ctx: C<B>, PathArgs(id): PathArgs<i64>) -> ApiResult<Response> {
    let links = links_of::<B>(&ctx, id).await?;
    Ok(json(StatusCode::OK, &json!({ "items": links })))
}

/// The links of an instance the caller may see.
pub(crate) async fn links_of<B: Backend>(ctx: &C<B>, id: i64) -> ApiResult<Vec<LinkView>> {
    visible::<B>(ctx, id).await?;
    Ok(ctx.tenant.engine.links(InstanceId(id)).await?)
}

pub async fn history<B: Backend>(ctx: C<B>, PathArgs(id): PathArgs<i64>) -> ApiResult<Response> {
    let events = history_of::<B>(&ctx, id).await?;
    Ok(json(StatusCode::OK, &json!({ "items": events })))
}

/// The history of an instance the caller may see.
pub(crate) async fn history_of<B: Backend>(ctx: &C<B>, id: i64) -> ApiResult<Vec<EventView>> {
    visible::<B>(ctx, id).await?;
    Ok(ctx.tenant.engine.history(InstanceId(id)).await?)
}

pub async fn clocks<B: Backend>(ctx: C<B>, PathArgs(id): PathArgs<i64>) -> ApiResult<Response> {
    visible::<B>(&ctx, id).await?;
    let clocks = ctx.tenant.engine.clocks(InstanceId(id)).await?;
    Ok(json(StatusCode::OK, &json!({ "items": clocks })))
}

/// Why the instance is as it is, and what the caller may do with it now: seen by whoever may
/// see the instance (a requester, their own ticket), the actions explained for the caller.
pub async fn explain<B: Backend>(ctx: C<B>, PathArgs(id): PathArgs<i64>) -> ApiResult<Response> {
    visible::<B>(&ctx, id).await?;
    let explanation = ctx
        .tenant
        .engine
        .explain(InstanceId(id), &ctx.actor())
        .await?;
    Ok(json(StatusCode::OK, &explanation))
}
