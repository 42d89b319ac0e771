//! Approvals: a ticket's approval (plan, levels, ballots), votes and delegations on it, and
//! each user's own list of votes waiting for them, read or followed live.
//!
//! Who may vote is the engine's to decide (the approvers fixed when the level opened, less the
//! ticket's creator and the people its `excludes` fields name); a refusal is a problem with a
//! type naming why (`/problems/already-voted`, `/problems/not-an-approver`, ...).

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use itsmflow_engine::runtime::{InstanceId, InstanceView};
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::StreamExt;

use super::instances::{expected_version, visible};
use super::{PathArgs, QueryArgs};
use crate::serve::app::{json, App, JsonBody};
use crate::serve::auth::Ctx;
use crate::serve::error::{ApiError, ApiResult};
use crate::serve::events::sse_event;
use crate::serve::tenants::Backend;
use crate::serve::wire;

type C<B> = Ctx<<B as Backend>::Store>;
type S<B> = State<std::sync::Arc<App<B>>>;

/// The instance as the API shows it, with its approval beside it while it is in a stage that
/// asks one.
pub async fn with_approval<B: Backend>(
    ctx: &C<B>,
    view: &InstanceView,
) -> ApiResult<wire::instances::Instance> {
    let mut out = wire::instances::Instance::from(view);
    if view.awaits_approval() {
        let approval = ctx.tenant.engine.approval(view.id()).await?;
        out.approval = approval.as_ref().map(wire::approvals::Approval::from);
    }
    Ok(out)
}

#[utoipa::path(
    get,
    path = "/v1/instances/{id}/approval",
    operation_id = "getApproval",
    tag = "approvals",
    summary = "The approval of the instance's stage",
    description = "The plan and the rule that chose it, each level (approved, open, to come) with its groups, approvers and ballots, who is still to vote, and when it expires. Requesters reach only instances they created.",
    params(
        ("id" = i64, Path, description = "Instance id.")
    ),
    responses(
        (status = 200, description = "The approval.", body = wire::approvals::Approval),
        (status = 400, response = wire::problem::BadRequest),
        (status = 401, response = wire::problem::Unauthorized),
        (status = 404, response = wire::problem::NotFound),
        (status = 503, response = wire::problem::Unavailable)
    )
)]
pub async fn get<B: Backend>(ctx: C<B>, PathArgs(id): PathArgs<i64>) -> ApiResult<Response> {
    let view = visible::<B>(&ctx, id).await?;
    match ctx.tenant.engine.approval(view.id()).await? {
        Some(a) => Ok(json(StatusCode::OK, &wire::approvals::Approval::from(&a))),
        None => Err(ApiError::not_found(format!(
            "instance {id} is in stage `{}`, which asks for no approval",
            view.stage()
        ))),
    }
}

#[utoipa::path(
    post,
    path = "/v1/instances/{id}/approval/votes",
    operation_id = "vote",
    tag = "approvals",
    summary = "Vote on the open level",
    description = "Approve or reject, on the caller's own ballot or one delegated to them. A vote counts once; a level passes when every group reached its quorum (the next level opens, or `on approve` is taken) and fails as soon as one group can no longer reach it (`on reject`). Refusals change nothing and name why: 403 `/problems/segregation-of-duties` (the caller raised the ticket or is named in one of its `excludes` fields), 403 `/problems/not-an-approver`, 409 `/problems/already-voted`, 409 `/problems/vote-delegated`, 409 `/problems/level-closed`, 409 `/problems/no-open-approval`, 409 `/problems/conflict` (only when a `version` or `If-Match` was sent).",
    params(
        ("id" = i64, Path, description = "Instance id."),
        ("If-Match" = Option<String>, Header, description = "The instance version the caller last saw, as `GET /v1/instances/{id}` gives it in its `ETag`: `\"7\"` (the weak `W/\"7\"` and a bare `7` work too); refused with 409 if the instance has moved on. `*` matches any version, as if none were given. Anything else (including a list) is a 400. If the body also has `version`, both must agree (else 400).", example = "\"7\"")
    ),
    request_body(content = wire::approvals::VoteRequest),
    responses(
        (status = 200, description = "Counted; the instance as it now is, with its approval while it still awaits one.", body = wire::instances::Instance),
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
pub async fn vote<B: Backend>(
    ctx: C<B>,
    PathArgs(id): PathArgs<i64>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<wire::approvals::VoteRequest>,
) -> ApiResult<Response> {
    let expected = expected_version(&headers, body.version)?;
    let approve = matches!(body.decision, wire::approvals::Decision::Approve);
    let after = cast_vote::<B>(&ctx, id, approve, body.comment, body.level, expected).await?;
    Ok(json(
        StatusCode::OK,
        &with_approval::<B>(&ctx, &after).await?,
    ))
}

/// Vote on an instance's open approval level (`level` counts from 1) as the caller; the engine
/// decides whether they may.
pub(crate) async fn cast_vote<B: Backend>(
    ctx: &C<B>,
    id: i64,
    approve: bool,
    comment: Option<String>,
    level: Option<u32>,
    expected: Option<i64>,
) -> ApiResult<InstanceView> {
    let comment = comment
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty());
    if comment
        .as_ref()
        .is_some_and(|c| c.len() > wire::approvals::MAX_VOTE_COMMENT)
    {
        return Err(ApiError::invalid("`comment` is longer than 4 KiB"));
    }
    let level = match level {
        Some(0) => return Err(ApiError::invalid("`level` counts from 1")),
        l => l.map(|l| l - 1),
    };
    visible::<B>(ctx, id).await?;
    let after = ctx
        .tenant
        .engine
        .vote(
            InstanceId(id),
            approve,
            comment,
            level,
            expected,
            &ctx.actor(),
        )
        .await?;
    Ok(after)
}

/// The approval of an instance the caller may see, if its stage asks one.
pub(crate) async fn approval_of<B: Backend>(
    ctx: &C<B>,
    view: &InstanceView,
) -> ApiResult<Option<itsmflow_engine::runtime::ApprovalView>> {
    if !view.awaits_approval() {
        return Ok(None);
    }
    Ok(ctx.tenant.engine.approval(view.id()).await?)
}

#[utoipa::path(
    post,
    path = "/v1/instances/{id}/approval/delegations",
    operation_id = "delegateVote",
    tag = "approvals",
    summary = "Hand a vote on the open level to someone else",
    description = "The approver (or an administrator, naming `from`) hands their ballot to `to`, who votes on their behalf; the history records both names. Refused with 422 `/problems/delegate-refused` when `to` holds none of the approver's roles (unless an administrator names them), may not vote on the ticket, or already has a vote on the level. Refusals change nothing and name why: 403 `/problems/segregation-of-duties` (the caller raised the ticket or is named in one of its `excludes` fields), 403 `/problems/not-an-approver`, 409 `/problems/already-voted`, 409 `/problems/vote-delegated`, 409 `/problems/level-closed`, 409 `/problems/no-open-approval`, 409 `/problems/conflict` (only when a `version` or `If-Match` was sent).",
    params(
        ("id" = i64, Path, description = "Instance id.")
    ),
    request_body(content = wire::approvals::DelegationRequest),
    responses(
        (status = 200, description = "Delegated; the instance with its approval.", body = wire::instances::Instance),
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
pub async fn delegate<B: Backend>(
    ctx: C<B>,
    PathArgs(id): PathArgs<i64>,
    JsonBody(body): JsonBody<wire::approvals::DelegationRequest>,
) -> ApiResult<Response> {
    if !crate::identity::valid_user_name(&body.to) {
        return Err(ApiError::invalid("`to` is not a valid user name"));
    }
    visible::<B>(&ctx, id).await?;
    let after = ctx
        .tenant
        .engine
        .delegate(
            InstanceId(id),
            body.from.as_deref(),
            &body.to,
            &ctx.actor(),
            ctx.who.is_admin(),
        )
        .await?;
    Ok(json(
        StatusCode::OK,
        &with_approval::<B>(&ctx, &after).await?,
    ))
}

#[utoipa::path(
    get,
    path = "/v1/me/approvals",
    operation_id = "myApprovals",
    tag = "approvals",
    summary = "The votes waiting for the caller",
    description = "Their own ballots on open levels and those delegated to them, oldest level first.",
    params(
        wire::approvals::MyApprovalsQuery
    ),
    responses(
        (status = 200, description = "The caller's pending votes.", body = wire::approvals::PendingBallotPage),
        (status = 400, response = wire::problem::BadRequest),
        (status = 401, response = wire::problem::Unauthorized),
        (status = 422, response = wire::problem::Invalid),
        (status = 503, response = wire::problem::Unavailable)
    )
)]
/// The votes waiting for the caller: their own and those delegated to them, oldest first.
pub async fn mine<B: Backend>(
    ctx: C<B>,
    QueryArgs(q): QueryArgs<wire::approvals::MyApprovalsQuery>,
) -> ApiResult<Response> {
    let limit = ctx.limits.page(q.limit)?;
    let items = ctx
        .tenant
        .engine
        .pending_ballots(&ctx.who.user, limit)
        .await?;
    let items = items
        .iter()
        .map(wire::approvals::PendingBallot::from)
        .collect();
    Ok(json(
        StatusCode::OK,
        &wire::approvals::PendingBallotPage { items },
    ))
}

#[utoipa::path(
    get,
    path = "/v1/me/approvals/events",
    operation_id = "myApprovalEvents",
    tag = "approvals",
    summary = "Live changes of the caller's votes (server-sent events)",
    description = "Not subject to the request timeout; ends when the server shuts down.",
    responses(
        (status = 200, description = "A `text/event-stream`. Events: `ready` (data `{}`, once, when subscribed); `approvals` (data `{\"instance\": N, \"ballots\": [PendingBallot...]}`): the instance's ballots changed (a level opened or closed, a vote, a delegation) and these are the caller's on it now; an empty list means nothing there waits for the caller any more; `lagged` (data `{\"missed\": N}`): reload the list. Changes made through this node only: reload the list on `ready` and `lagged`.", body = String, content_type = "text/event-stream", example = json!("event: ready\ndata: {}\n\nevent: approvals\ndata: {\"instance\":7,\"ballots\":[]}\n\n")),
        (status = 401, response = wire::problem::Unauthorized),
        (status = 503, response = wire::problem::Unavailable)
    )
)]
/// Server-sent events for the caller's list: `approvals` whenever an instance's ballots change,
/// with the caller's ballots on it now (an empty list: nothing waits for them there any more).
/// Events of this node's changes: clients also re-read the list when they (re)connect.
pub async fn events<B: Backend>(State(app): S<B>, ctx: C<B>) -> ApiResult<Response> {
    let user = ctx.who.user.clone();
    let mut shutdown = app.shutdown.subscribe();
    let changes = BroadcastStream::new(ctx.tenant.engine.ballot_changes());
    let events = changes.filter_map(move |item| match item {
        Ok(news) => {
            let mine = news.change.for_user(&user)?;
            let data = wire::approvals::ApprovalsChanged {
                instance: news.instance.0,
                ballots: mine
                    .into_iter()
                    .map(wire::approvals::PendingBallot::from)
                    .collect(),
            };
            Some(Ok::<_, Infallible>(sse_event("approvals", &data)))
        }
        Err(BroadcastStreamRecvError::Lagged(missed)) => Some(Ok(sse_event(
            "lagged",
            &wire::queues::StreamLagged { missed },
        ))),
    });
    let ready = tokio_stream::once(Ok(sse_event("ready", &wire::queues::StreamReady {})));
    let stopping = async move {
        let _ = shutdown.wait_for(|stop| *stop).await;
    };
    Ok(Sse::new(futures_util::StreamExt::take_until(
        ready.chain(events),
        Box::pin(stopping),
    ))
    .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
    .into_response())
}
