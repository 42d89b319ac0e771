//! Instances (tickets): create, read, list, act, update, comment, link, history, clocks,
//! explain.
//!
//! Requesters reach only the instances they created; for anyone else such an instance is a
//! 404, so its existence is not revealed either.

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use itsmflow_engine::runtime::{EventView, InstanceId, InstanceView, LinkView};
use itsmflow_engine::store::InstanceFilter;
use serde_json::{Map, Value as Json};

use super::{PathArgs, QueryArgs};
use crate::serve::app::{json, JsonBody};
use crate::serve::auth::Ctx;
use crate::serve::error::{ApiError, ApiResult};
use crate::serve::tenants::Backend;
use crate::serve::wire;

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

fn located(view: &InstanceView) -> Response {
    let mut response = json(StatusCode::CREATED, &wire::instances::Instance::from(view));
    if let Ok(v) = format!("/v1/instances/{}", view.id()).parse() {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response
}

#[utoipa::path(
    post,
    path = "/v1/instances",
    operation_id = "createInstance",
    tag = "instances",
    summary = "Create an instance (raise a ticket)",
    description = "Creates an instance of the latest version of the process (or of a catalogue item's process, with its presets), in its initial stage.",
    request_body(content = wire::instances::NewInstanceRequest),
    responses(
        (status = 201, description = "Created.", body = wire::instances::Instance, headers(("Location" = String, description = "`/v1/instances/{id}`"))),
        (status = 400, response = wire::problem::BadRequest),
        (status = 401, response = wire::problem::Unauthorized),
        (status = 404, description = "`not-found`: no such process is published (`process` names it), or no such catalogue item (`item` names it).", body = wire::problem::Problem, content_type = "application/problem+json"),
        (status = 413, response = wire::problem::TooLarge),
        (status = 415, response = wire::problem::UnsupportedMediaType),
        (status = 422, description = "`invalid-fields` (`errors` lists each field), `rule-failed`, or `invalid-request`.", body = wire::problem::Problem, content_type = "application/problem+json"),
        (status = 503, response = wire::problem::Unavailable)
    )
)]
pub async fn create<B: Backend>(
    ctx: C<B>,
    JsonBody(body): JsonBody<wire::instances::NewInstanceRequest>,
) -> ApiResult<Response> {
    let view = match (&body.process, &body.item) {
        (Some(process), None) => raise::<B>(&ctx, process, &body.fields).await?,
        (None, Some(item)) => {
            let view = ctx
                .tenant
                .engine
                .create_item(item, &body.fields, &ctx.actor())
                .await?;
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
    Ok(view)
}

#[utoipa::path(
    get,
    path = "/v1/instances/{id}",
    operation_id = "getInstance",
    tag = "instances",
    summary = "Read an instance",
    description = "Requesters reach only instances they created; any other is a 404. The `ETag` header carries the version, to send back in `If-Match`.",
    params(
        ("id" = i64, Path, description = "Instance id.")
    ),
    responses(
        (status = 200, description = "OK", body = wire::instances::Instance, headers(("ETag" = String, description = "The instance's `version`, quoted: `\"N\"`."))),
        (status = 400, response = wire::problem::BadRequest),
        (status = 401, response = wire::problem::Unauthorized),
        (status = 404, response = wire::problem::NotFound),
        (status = 503, response = wire::problem::Unavailable)
    )
)]
/// The instance, with its version as the `ETag` (to send back in `If-Match`).
pub async fn get<B: Backend>(ctx: C<B>, PathArgs(id): PathArgs<i64>) -> ApiResult<Response> {
    let view = visible::<B>(&ctx, id).await?;
    let mut body = super::approvals::with_approval::<B>(&ctx, &view).await?;
    // Only a process whose queues agree OLA targets has OLA clocks: the others' tickets are
    // not read a second time (their history) for nothing.
    if view.definition().timing().ola {
        let clocks = ctx.tenant.engine.ola_clocks(view.id()).await?;
        body.ola = Some(clocks.into());
    }
    let mut response = json(StatusCode::OK, &body);
    if let Ok(tag) = format!("\"{}\"", view.version()).parse() {
        response.headers_mut().insert(header::ETAG, tag);
    }
    Ok(response)
}

fn not_given_out() -> ApiError {
    ApiError::invalid(
        "`cursor` is not one this API gave out for these filters; pass back a page's \
         `next_cursor` with the same `process` and `created_by`, or start again without it",
    )
}

#[utoipa::path(
    get,
    path = "/v1/instances",
    operation_id = "listInstances",
    tag = "instances",
    summary = "List instances, newest first, a page at a time",
    description = "Filters combine with AND. Requesters see only the instances they created (`created_by` is ignored for them).",
    params(
        wire::instances::InstanceQuery
    ),
    responses(
        (status = 200, description = "OK", body = wire::instances::InstancePage),
        (status = 400, response = wire::problem::BadRequest),
        (status = 401, response = wire::problem::Unauthorized),
        (status = 422, description = "`invalid-request`: `limit` out of range, or a `cursor` this API did not give out for these filters (not the id of an instance of the `process` and `created_by` asked for).", body = wire::problem::Problem, content_type = "application/problem+json"),
        (status = 503, response = wire::problem::Unavailable)
    )
)]
/// Newest first, a page at a time.
pub async fn list<B: Backend>(
    ctx: C<B>,
    QueryArgs(q): QueryArgs<wire::instances::InstanceQuery>,
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
    let items = items.iter().map(wire::instances::Instance::from).collect();
    Ok(json(
        StatusCode::OK,
        &wire::instances::InstancePage { items, next_cursor },
    ))
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

#[utoipa::path(
    post,
    path = "/v1/instances/{id}/actions/{action}",
    operation_id = "performAction",
    tag = "instances",
    summary = "Perform an action on an instance",
    description = "The body is optional (no body is the same as `{}`). Refused if another agent holds a live claim on the instance's task. Requesters reach only instances they created; any other is a 404.",
    params(
        ("id" = i64, Path, description = "Instance id."),
        ("action" = String, Path, description = "Action (transition) name.", example = "accept"),
        ("If-Match" = Option<String>, Header, description = "The instance version the caller last saw, as `GET /v1/instances/{id}` gives it in its `ETag`: `\"7\"` (the weak `W/\"7\"` and a bare `7` work too); refused with 409 if the instance has moved on. `*` matches any version, as if none were given. Anything else (including a list) is a 400. If the body also has `version`, both must agree (else 400).", example = "\"7\"")
    ),
    request_body(content = wire::instances::ActionRequest, description = "Optional: a request without a body takes the defaults."),
    responses(
        (status = 200, description = "The instance after the action.", body = wire::instances::Instance),
        (status = 400, response = wire::problem::BadRequest),
        (status = 401, response = wire::problem::Unauthorized),
        (status = 403, description = "`forbidden`: the action is for other roles (`roles` lists them).", body = wire::problem::Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not-found` (no such instance) or `unknown-action` (the process has no such action).", body = wire::problem::Problem, content_type = "application/problem+json"),
        (status = 409, description = "`conflict` (the instance changed since `version`/`If-Match`), `action-not-allowed` (not possible in this stage; `allowed` lists what is), `rule-refused` (a rule does not allow it; `rule` names it) or `task-claimed` (another agent holds the instance's task).", body = wire::problem::Problem, content_type = "application/problem+json"),
        (status = 413, response = wire::problem::TooLarge),
        (status = 415, response = wire::problem::UnsupportedMediaType),
        (status = 422, description = "`missing-fields` (`fields` lists what the action requires), `invalid-fields`, `rule-failed` or `invalid-request`.", body = wire::problem::Problem, content_type = "application/problem+json"),
        (status = 503, response = wire::problem::Unavailable)
    )
)]
pub async fn perform<B: Backend>(
    ctx: C<B>,
    PathArgs((id, action)): PathArgs<(i64, String)>,
    headers: HeaderMap,
    body: Option<JsonBody<wire::instances::ActionRequest>>,
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
    Ok(after)
}

#[utoipa::path(
    patch,
    path = "/v1/instances/{id}",
    operation_id = "updateInstance",
    tag = "instances",
    summary = "Change fields outside a transition",
    description = "Needs an agent: a role other than `requester` (a requester only gets 403, even on instances they created), but no particular process role. Priority and routing follow the new values; clearing a required field is refused.",
    params(
        ("id" = i64, Path, description = "Instance id."),
        ("If-Match" = Option<String>, Header, description = "The instance version the caller last saw, as `GET /v1/instances/{id}` gives it in its `ETag`: `\"7\"` (the weak `W/\"7\"` and a bare `7` work too); refused with 409 if the instance has moved on. `*` matches any version, as if none were given. Anything else (including a list) is a 400. If the body also has `version`, both must agree (else 400).", example = "\"7\"")
    ),
    request_body(content = wire::instances::ActionRequest),
    responses(
        (status = 200, description = "The instance after the change (unchanged if the values were already set).", body = wire::instances::Instance),
        (status = 400, response = wire::problem::BadRequest),
        (status = 401, response = wire::problem::Unauthorized),
        (status = 403, description = "`forbidden`: the caller is a requester only.", body = wire::problem::Problem, content_type = "application/problem+json"),
        (status = 404, response = wire::problem::NotFound),
        (status = 409, description = "`conflict`: the instance changed since `version`/`If-Match`.", body = wire::problem::Problem, content_type = "application/problem+json"),
        (status = 413, response = wire::problem::TooLarge),
        (status = 415, response = wire::problem::UnsupportedMediaType),
        (status = 422, description = "`invalid-fields` (incl. clearing a required field), `rule-failed` or `invalid-request`.", body = wire::problem::Problem, content_type = "application/problem+json"),
        (status = 503, response = wire::problem::Unavailable)
    )
)]
pub async fn update<B: Backend>(
    ctx: C<B>,
    PathArgs(id): PathArgs<i64>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<wire::instances::ActionRequest>,
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
    Ok(json(
        StatusCode::OK,
        &wire::instances::Instance::from(&after),
    ))
}

#[utoipa::path(
    post,
    path = "/v1/instances/{id}/comments",
    operation_id = "commentInstance",
    tag = "instances",
    summary = "Add a comment to the history",
    description = "Requesters reach only instances they created; any other is a 404.",
    params(
        ("id" = i64, Path, description = "Instance id.")
    ),
    request_body(content = wire::instances::CommentRequest),
    responses(
        (status = 201, description = "Commented; the instance with its new version.", body = wire::instances::Instance),
        (status = 400, response = wire::problem::BadRequest),
        (status = 401, response = wire::problem::Unauthorized),
        (status = 404, response = wire::problem::NotFound),
        (status = 413, response = wire::problem::TooLarge),
        (status = 415, response = wire::problem::UnsupportedMediaType),
        (status = 422, response = wire::problem::Invalid),
        (status = 503, response = wire::problem::Unavailable)
    )
)]
pub async fn comment<B: Backend>(
    ctx: C<B>,
    PathArgs(id): PathArgs<i64>,
    JsonBody(body): JsonBody<wire::instances::CommentRequest>,
) -> ApiResult<Response> {
    let view = add_comment::<B>(&ctx, id, &body.text).await?;
    Ok(json(
        StatusCode::CREATED,
        &wire::instances::Instance::from(&view),
    ))
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
    if text.len() > wire::instances::MAX_COMMENT {
        return Err(ApiError::invalid("`text` is longer than 64 KiB"));
    }
    visible::<B>(ctx, id).await?;
    Ok(ctx
        .tenant
        .engine
        .comment(InstanceId(id), text, &ctx.actor())
        .await?)
}

#[utoipa::path(
    post,
    path = "/v1/instances/{id}/links",
    operation_id = "linkInstance",
    tag = "instances",
    summary = "Link the instance to another",
    description = "Both instances must be visible to the caller. Requesters reach only instances they created; any other is a 404.",
    params(
        ("id" = i64, Path, description = "Instance id.")
    ),
    request_body(content = wire::instances::LinkRequest),
    responses(
        (status = 200, description = "The link exists already: nothing changed; the instance as it is.", body = wire::instances::Instance),
        (status = 201, description = "Linked; the instance with its new version.", body = wire::instances::Instance),
        (status = 400, response = wire::problem::BadRequest),
        (status = 401, response = wire::problem::Unauthorized),
        (status = 404, response = wire::problem::NotFound),
        (status = 413, response = wire::problem::TooLarge),
        (status = 415, response = wire::problem::UnsupportedMediaType),
        (status = 422, response = wire::problem::Invalid),
        (status = 503, response = wire::problem::Unavailable)
    )
)]
pub async fn link<B: Backend>(
    ctx: C<B>,
    PathArgs(id): PathArgs<i64>,
    JsonBody(body): JsonBody<wire::instances::LinkRequest>,
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
    Ok(json(status, &wire::instances::Instance::from(&view)))
}

#[utoipa::path(
    get,
    path = "/v1/instances/{id}/links",
    operation_id = "listLinks",
    tag = "instances",
    summary = "The instance's links",
    description = "Requesters reach only instances they created; any other is a 404.",
    params(
        ("id" = i64, Path, description = "Instance id.")
    ),
    responses(
        (status = 200, description = "OK", body = wire::instances::LinkList),
        (status = 400, response = wire::problem::BadRequest),
        (status = 401, response = wire::problem::Unauthorized),
        (status = 404, response = wire::problem::NotFound),
        (status = 503, response = wire::problem::Unavailable)
    )
)]
pub async fn links<B: Backend>(ctx: C<B>, PathArgs(id): PathArgs<i64>) -> ApiResult<Response> {
    let items = links_of::<B>(&ctx, id).await?;
    let items = items.iter().map(wire::instances::Link::from).collect();
    Ok(json(StatusCode::OK, &wire::instances::LinkList { items }))
}

/// The links of an instance the caller may see.
pub(crate) async fn links_of<B: Backend>(ctx: &C<B>, id: i64) -> ApiResult<Vec<LinkView>> {
    visible::<B>(ctx, id).await?;
    Ok(ctx.tenant.engine.links(InstanceId(id)).await?)
}

#[utoipa::path(
    get,
    path = "/v1/instances/{id}/history",
    operation_id = "getHistory",
    tag = "instances",
    summary = "The instance's history, oldest first",
    description = "Requesters reach only instances they created; any other is a 404.",
    params(
        ("id" = i64, Path, description = "Instance id.")
    ),
    responses(
        (status = 200, description = "OK", body = wire::instances::History),
        (status = 400, response = wire::problem::BadRequest),
        (status = 401, response = wire::problem::Unauthorized),
        (status = 404, response = wire::problem::NotFound),
        (status = 503, response = wire::problem::Unavailable)
    )
)]
pub async fn history<B: Backend>(ctx: C<B>, PathArgs(id): PathArgs<i64>) -> ApiResult<Response> {
    let events = history_of::<B>(&ctx, id).await?;
    let items = events
        .iter()
        .map(wire::instances::Event::try_from)
        .collect::<Result<_, _>>()
        .map_err(ApiError::internal)?;
    Ok(json(StatusCode::OK, &wire::instances::History { items }))
}

/// The history of an instance the caller may see.
pub(crate) async fn history_of<B: Backend>(ctx: &C<B>, id: i64) -> ApiResult<Vec<EventView>> {
    visible::<B>(ctx, id).await?;
    Ok(ctx.tenant.engine.history(InstanceId(id)).await?)
}

#[utoipa::path(
    get,
    path = "/v1/instances/{id}/clocks",
    operation_id = "getClocks",
    tag = "instances",
    summary = "The instance's service clocks now",
    description = "Those its current priority has a target for. Requesters reach only instances they created; any other is a 404.",
    params(
        ("id" = i64, Path, description = "Instance id.")
    ),
    responses(
        (status = 200, description = "OK", body = wire::instances::ClockList),
        (status = 400, response = wire::problem::BadRequest),
        (status = 401, response = wire::problem::Unauthorized),
        (status = 404, response = wire::problem::NotFound),
        (status = 503, response = wire::problem::Unavailable)
    )
)]
pub async fn clocks<B: Backend>(ctx: C<B>, PathArgs(id): PathArgs<i64>) -> ApiResult<Response> {
    visible::<B>(&ctx, id).await?;
    let clocks = ctx.tenant.engine.clocks(InstanceId(id)).await?;
    let items = clocks.iter().map(wire::instances::Clock::from).collect();
    Ok(json(StatusCode::OK, &wire::instances::ClockList { items }))
}

#[utoipa::path(
    get,
    path = "/v1/instances/{id}/explain",
    operation_id = "explainInstance",
    tag = "instances",
    summary = "Why the instance is as it is",
    description = "Which priority table cell gave its priority, which routing rule (or stage) its queue, the target, calendar, elapsed and remaining business time and pauses of each clock, the approval rule and open level, and every action out of the current stage with whether the caller may perform it now and every reason why not (as performing it would refuse it). Reads only. Requesters reach only instances they may see; any other is a 404.",
    params(
        ("id" = i64, Path, description = "Instance id.")
    ),
    responses(
        (status = 200, description = "OK", body = wire::explain::Explanation),
        (status = 400, response = wire::problem::BadRequest),
        (status = 401, response = wire::problem::Unauthorized),
        (status = 404, response = wire::problem::NotFound),
        (status = 503, response = wire::problem::Unavailable)
    )
)]
/// Why the instance is as it is, and what the caller may do with it now: seen by whoever may
/// see the instance (a requester, their own ticket), the actions explained for the caller.
pub async fn explain<B: Backend>(ctx: C<B>, PathArgs(id): PathArgs<i64>) -> ApiResult<Response> {
    visible::<B>(&ctx, id).await?;
    let explanation = ctx
        .tenant
        .engine
        .explain(InstanceId(id), &ctx.actor())
        .await?;
    Ok(json(
        StatusCode::OK,
        &wire::explain::Explanation::from(&explanation),
    ))
}
