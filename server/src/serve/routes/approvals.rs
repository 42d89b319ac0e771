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
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use itsmflow_engine::runtime::{InstanceId, InstanceView};
use serde::Deserialize;
use serde_json::{json, Value as Json};
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::StreamExt;

use super::instances::{announce, expected_version, visible};
use super::{PathArgs, QueryArgs};
use crate::serve::app::{json, App, JsonBody};
use crate::serve::auth::Ctx;
use crate::serve::error::{ApiError, ApiResult};
use crate::serve::tenants::Backend;

type C<B> = Ctx<<B as Backend>::Store>;
type S<B> = State<std::sync::Arc<App<B>>>;

/// The instance as JSON, with its approval beside it while it is in a stage that asks one.
pub async fn with_approval<B: Backend>(ctx: &C<B>, view: &InstanceView) -> ApiResult<Json> {
    let mut out = serde_json::to_value(view).map_err(ApiError::internal)?;
    if view.awaits_approval() {
        let approval = ctx.tenant.engine.approval(view.id()).await?;
        out["approval"] = serde_json::to_value(approval).map_err(ApiError::internal)?;
    }
    Ok(out)
}

pub async fn get<B: Backend>(ctx: C<B>, PathArgs(id): PathArgs<i64>) -> ApiResult<Response> {
    let view = visible::<B>(&ctx, id).await?;
    match ctx.tenant.engine.approval(view.id()).await? {
        Some(a) => Ok(json(StatusCode::OK, &a)),
        None => Err(ApiError::not_found(format!(
            "instance {id} is in stage `{}`, which asks for no approval",
            view.stage()
        ))),
    }
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Approve,
    Reject,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewVote {
    decision: Decision,
    comment: Option<String>,
    /// The level the voter saw (1 for the first): a vote for a level that has closed since is
    /// refused rather than counted on the next.
    level: Option<u32>,
    /// The instance version the voter saw; without it the vote counts on the approval as it is.
    version: Option<i64>,
}

/// Comments on votes are reasons, not documents.
const MAX_VOTE_COMMENT: usize = 4 * 1024;

pub async fn vote<B: Backend>(
    ctx: C<B>,
    PathArgs(id): PathArgs<i64>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<NewVote>,
) -> ApiResult<Response> {
    let expected = expected_version(&headers, body.version)?;
    let approve = matches!(body.decision, Decision::Approve);
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
    if comment.as_ref().is_some_and(|c| c.len() > MAX_VOTE_COMMENT) {
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
    announce::<B>(ctx, &after);
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewDelegation {
    /// Who votes instead.
    to: String,
    /// Whose vote is delegated: the caller's own unless an administrator names an approver.
    from: Option<String>,
}

pub async fn delegate<B: Backend>(
    ctx: C<B>,
    PathArgs(id): PathArgs<i64>,
    JsonBody(body): JsonBody<NewDelegation>,
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MineQuery {
    limit: Option<i64>,
}

/// The votes waiting for the caller: their own and those delegated to them, oldest first.
pub async fn mine<B: Backend>(
    ctx: C<B>,
    QueryArgs(q): QueryArgs<MineQuery>,
) -> ApiResult<Response> {
    let limit = ctx.limits.page(q.limit)?;
    let items = ctx
        .tenant
        .engine
        .pending_ballots(&ctx.who.user, limit)
        .await?;
    Ok(json(StatusCode::OK, &json!({ "items": items })))
}

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
            let data = json!({ "instance": news.instance, "ballots": mine });
            Some(Ok::<_, Infallible>(
                Event::default().event("approvals").data(data.to_string()),
            ))
        }
        Err(BroadcastStreamRecvError::Lagged(missed)) => Some(Ok(Event::default()
            .event("lagged")
            .data(format!("{{\"missed\":{missed}}}")))),
    });
    let ready = tokio_stream::once(Ok(Event::default().event("ready").data("{}")));
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
