//! Agents' queues: the list of the queues they work, and a queue as a live table in the order
//! to take its tasks (priority, then due time), with claim-next on a button and on `n`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use futures_util::{StreamExt, TryStreamExt};
use itsmflow_engine::runtime::clocks::{self, Clock};
use itsmflow_engine::runtime::{InstanceId, InstanceView, Task, TaskState};
use itsmflow_engine::store::{InstanceFilter, Store};
use maud::{html, Markup};

use super::queue_filter::{self, Filter, FilterQuery};
use super::saved_filters;
use crate::identity::store::SavedFilter;
use crate::serve::app::App;
use crate::serve::auth::Ctx;
use crate::serve::error::ApiError;
use crate::serve::routes::{instances, queues};
use crate::serve::tenants::Backend;
use crate::web::csrf::Posted;
use crate::web::layout::{self, Section, Viewer};
use crate::web::session::Signed;
use crate::web::standing::{self, Standing};
use crate::web::{WebError, WebResult};

type C<B> = Ctx<<B as Backend>::Store>;

/// Rows a queue page shows at most (the first, in the order they are to be taken).
const MAX_ROWS: u32 = 500;

/// A task with what its row shows of its ticket.
pub struct Row {
    pub task: Task,
    pub view: InstanceView,
    pub clocks: Vec<Clock>,
}

impl Row {
    pub fn standing(&self) -> Option<(Standing, &Clock)> {
        standing::most_urgent(&self.clocks).map(|c| (Standing::of(c), c))
    }
}

/// History reads in flight at once while a queue's clocks are worked out.
const CLOCK_READS: usize = 16;

/// The queue's open tasks with their tickets and clocks, read through the API's own checks.
///
/// The tickets are read in one batch (the instances whose open task is in the queue, with
/// their tasks), not one read per row; a task whose ticket the batch missed (a queue longer
/// than `limit`, or a change between the two reads) has its ticket read alone. Each row's
/// clocks come from its ticket's history, which the store reads per ticket: those reads go
/// [`CLOCK_READS`] at a time, and the clocks are worked out from the ticket already in hand
/// (the engine's `clocks` would read the ticket again).
///
/// Every ticket of the tenant is visible to an agent (the API's `visible` restricts only
/// requesters, and `open_tasks` has refused anyone but agents), so the batch needs no
/// per-ticket check.
pub async fn rows_of<B: Backend>(ctx: &C<B>, queue: &str, limit: u32) -> WebResult<Vec<Row>> {
    let tasks = queues::open_tasks::<B>(ctx, queue, limit).await?;
    let engine = &ctx.tenant.engine;
    let filter = InstanceFilter {
        queue: Some(queue.to_string()),
        ..Default::default()
    };
    let mut batch: HashMap<InstanceId, InstanceView> = engine
        .list_instances(&filter, limit)
        .await?
        .into_iter()
        .map(|v| (v.id(), v))
        .collect();
    let mut tickets = Vec::with_capacity(tasks.len());
    for task in tasks {
        let view = match batch.remove(&task.instance) {
            Some(v) => v,
            None => match instances::visible::<B>(ctx, task.instance.0).await {
                Ok(v) => v,
                // Gone between the reads (it cannot be, but a row is not worth a failed page).
                Err(e) if e.status == StatusCode::NOT_FOUND => continue,
                Err(e) => return Err(e.into()),
            },
        };
        tickets.push((task, view));
    }
    let now = engine.clock().now();
    let store = engine.store();
    futures_util::stream::iter(tickets)
        .map(|(task, view)| async move {
            let history = store
                .history(task.instance)
                .await
                .map_err(|e| WebError::from(ApiError::from(e)))?;
            let clocks = clocks::clocks(view.definition(), &history, now);
            Ok(Row { task, view, clocks })
        })
        .buffered(CLOCK_READS)
        .try_collect()
        .await
}

/// A short title for a ticket: its `title` field, else its process and number.
pub fn title(view: &InstanceView) -> String {
    match view.field("title") {
        Some(serde_json::Value::String(t)) if !t.trim().is_empty() => t,
        _ => format!("{} {}", view.process(), view.id().0),
    }
}

/// The ticket's stage as its process labels it (`In progress`), else its name.
pub fn stage_label(view: &InstanceView) -> String {
    let p = view.definition().model();
    p.stage(view.stage())
        .and_then(|s| p.stages.get(s.index()))
        .map(|s| s.label.clone().unwrap_or_else(|| s.name.clone()))
        .unwrap_or_else(|| view.stage().to_string())
}

pub fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// Who holds a task and until when, in words.
fn holder(task: &Task, now: DateTime<Utc>) -> (String, String) {
    match (&task.state, &task.claimed_by, task.lease_until) {
        (TaskState::Claimed, Some(by), Some(until)) if until > now => (
            by.to_string(),
            format!(
                "until {} ({} left)",
                until.format("%H:%M:%S UTC"),
                standing::duration((until - now).num_seconds())
            ),
        ),
        (TaskState::Claimed, Some(by), _) => (format!("{by} (lapsed)"), "expired".into()),
        _ => match &task.assigned_to {
            Some(a) => (format!("{a} (assigned)"), "—".into()),
            None => ("—".into(), "—".into()),
        },
    }
}

fn clock_cell(row: &Row) -> Markup {
    match row.standing() {
        Some((s, c)) => html! {
            span class=(format!("clock {}", s.class())) { (s.word()) }
            " "
            span { (standing::kind(c)) ": " (standing::remaining(c)) }
            @if let Some(due) = c.due_at {
                br; span.hint { "due " (when(due)) }
            }
            (ola_due(row))
        },
        None => html! {
            span.hint { "no clock running" }
            (ola_due(row))
        },
    }
}

/// The team's own (OLA) due time of the task, when its queue agrees one for the ticket.
fn ola_due(row: &Row) -> Markup {
    html! {
        @if let Some(due) = row.task.ola_due_at {
            br; span.hint.ola { "OLA due " (when(due)) }
        }
    }
}

/// The table body: what the page shows, and what the live refresh fetches again.
pub fn body(rows: &[Row], now: DateTime<Utc>) -> Markup {
    html! {
        tbody #rows {
            @if rows.is_empty() {
                tr { td.empty colspan="8" { "Nothing to do in this queue." } }
            }
            @for r in rows {
                @let (who, lease) = holder(&r.task, now);
                tr data-task=(r.task.id.0) data-standing=(r.standing().map(|(s, _)| s.class()).unwrap_or("none")) {
                    td {
                        a.ticket href=(format!("/tickets/{}", r.view.id().0)) {
                            "#" (r.view.id().0) " " (title(&r.view))
                        }
                    }
                    td { (stage_label(&r.view)) }
                    td.prio { (r.view.priority().unwrap_or("—")) }
                    td { (clock_cell(r)) }
                    td { @match r.view.field("service") {
                        Some(serde_json::Value::String(s)) => (s),
                        _ => "—",
                    } }
                    td { (who) }
                    td { (lease) }
                    td { (r.view.process()) }
                }
            }
        }
    }
}

/// What a queue page shows besides its rows: the filter, the user's saved filters, a notice.
struct Shown<'a> {
    filter: &'a Filter,
    saved: &'a [SavedFilter],
    notice: Option<&'a str>,
}

fn queue_page(
    signed: &Signed<impl itsmflow_engine::store::Store>,
    queue: &str,
    rows: &[Row],
    now: DateTime<Utc>,
    shown: &Shown,
) -> Markup {
    let notice = shown.notice;
    let query = shown.filter.to_query();
    let rows_url = if query.is_empty() {
        format!("/queues/{queue}/rows")
    } else {
        format!("/queues/{queue}/rows?{query}")
    };
    let csrf = &signed.session.csrf;
    let at_risk = rows
        .iter()
        .filter(|r| {
            r.standing()
                .is_some_and(|(s, _)| matches!(s, Standing::AtRisk | Standing::Breached))
        })
        .count();
    let body = html! {
        h1 { "Queue " (queue) }
        @if let Some(n) = notice { p.notice role="status" { (n) } }
        div.toolbar {
            form method="post" action=(format!("/queues/{queue}/claim")) {
                input type="hidden" name="csrf" value=(csrf);
                button #claim-next type="submit" aria-keyshortcuts="n" { "Claim next" }
            }
            span #row-count {
                (rows.len()) " open, " (at_risk) " at risk or breached"
                @if !shown.filter.is_default() { " (filtered: " (shown.filter.describe()) ")" }
            }
            details #keys {
                summary { "Keyboard" }
                p { kbd { "n" } " claim next · " kbd { "j" } " / " kbd { "k" } " next / previous ticket · "
                    kbd { "Enter" } " open it · " kbd { "?" } " show these" }
            }
        }
        (queue_filter::form(queue, shown.filter))
        p.live #live-status role="status" aria-live="polite" {}
        table data-live-rows=(rows_url) data-live-events=(format!("/queues/{queue}/events")) {
            caption { (shown.filter.order_words()) " Updates live." }
            thead {
                tr {
                    th scope="col" { "Ticket" }
                    th scope="col" { "Stage" }
                    th scope="col" { "Priority" }
                    th scope="col" { "Service clock" }
                    th scope="col" { "Service" }
                    th scope="col" { "Holder" }
                    th scope="col" { "Lease" }
                    th scope="col" { "Process" }
                }
            }
            (body(rows, now))
        }
        div.filters {
            (saved_filters::save_form(queue, shown.filter, csrf))
            (saved_filters::list(shown.saved, Some(queue), csrf))
        }
    };
    let viewer = Viewer {
        who: &signed.ctx.who,
        csrf,
    };
    layout::page(
        &format!("Queue {queue}"),
        Some(&viewer),
        Section::Queues,
        body,
    )
}

pub(super) fn known_queue<B: Backend>(ctx: &C<B>, queue: &str) -> WebResult<()> {
    ctx.require_agent()?;
    if ctx.tenant.engine.catalog().queue(queue).is_none() {
        return Err(ApiError::not_found(format!("no queue `{queue}`")).into());
    }
    Ok(())
}

/// The queue's rows as `filter` selects and orders them.
async fn filtered<B: Backend>(
    signed: &Signed<B::Store>,
    queue: &str,
    filter: &Filter,
) -> WebResult<(Vec<Row>, DateTime<Utc>)> {
    let rows = rows_of::<B>(&signed.ctx, queue, MAX_ROWS).await?;
    let now = signed.ctx.tenant.engine.clock().now();
    Ok((filter.apply(rows, &signed.ctx.who.user, now), now))
}

/// `GET /queues/{queue}?q=..&standing=..&holder=..&sort=..`.
pub async fn page<B: Backend>(
    State(app): State<Arc<App<B>>>,
    signed: Signed<B::Store>,
    Path(queue): Path<String>,
    Query(q): Query<FilterQuery>,
) -> WebResult<Response> {
    known_queue::<B>(&signed.ctx, &queue)?;
    let filter = Filter::parse(&q)?;
    let (rows, now) = filtered::<B>(&signed, &queue, &filter).await?;
    let saved = saved_filters::of(&app, &signed).await?;
    let notice = q.saved().map(|n| format!("Filter saved as “{n}”."));
    let shown = Shown {
        filter: &filter,
        saved: &saved,
        notice: notice.as_deref(),
    };
    Ok(layout::send(
        StatusCode::OK,
        queue_page(&signed, &queue, &rows, now, &shown),
    ))
}

/// `GET /queues/{queue}/rows`: the table body alone, for the live refresh.
pub async fn rows<B: Backend>(
    signed: Signed<B::Store>,
    Path(queue): Path<String>,
    Query(q): Query<FilterQuery>,
) -> WebResult<Response> {
    known_queue::<B>(&signed.ctx, &queue)?;
    let filter = Filter::parse(&q)?;
    let (rows, now) = filtered::<B>(&signed, &queue, &filter).await?;
    Ok(layout::send(StatusCode::OK, body(&rows, now)))
}

/// `POST /queues/{queue}/claim`: take the next task and open its ticket.
pub async fn claim_next<B: Backend>(
    State(app): State<Arc<App<B>>>,
    Path(queue): Path<String>,
    posted: Posted<B::Store>,
) -> WebResult<Response> {
    let signed = posted.signed;
    known_queue::<B>(&signed.ctx, &queue)?;
    let lease = queues::lease(None)?;
    match queues::take_next::<B>(&signed.ctx, &queue, lease).await? {
        Some(task) => Ok(layout::see_other(&format!(
            "/tickets/{}?claimed=1",
            task.instance.0
        ))),
        None => {
            let filter = Filter::default();
            let (rows, now) = filtered::<B>(&signed, &queue, &filter).await?;
            let saved = saved_filters::of(&app, &signed).await?;
            let shown = Shown {
                filter: &filter,
                saved: &saved,
                notice: Some("There is no task to take in this queue now."),
            };
            Ok(layout::send(
                StatusCode::OK,
                queue_page(&signed, &queue, &rows, now, &shown),
            ))
        }
    }
}

/// `GET /queues/{queue}/events`: the API's event stream of the queue, for the page's session.
pub async fn events<B: Backend>(
    State(app): State<Arc<App<B>>>,
    signed: Signed<B::Store>,
    Path(queue): Path<String>,
) -> WebResult<Response> {
    Ok(queues::follow::<B>(&app, &signed.ctx, queue)?.into_response())
}

#[derive(serde::Deserialize, Default)]
pub struct ListQuery {
    /// The name of a saved filter just deleted (a notice).
    deleted: Option<String>,
}

/// `GET /queues`: the queues the user works (their roles are among the queue's; every queue for
/// administrators), with their open tasks and how many are at risk or breached.
pub async fn list<B: Backend>(
    State(app): State<Arc<App<B>>>,
    signed: Signed<B::Store>,
    Query(q): Query<ListQuery>,
) -> WebResult<Response> {
    let ctx = &signed.ctx;
    let saved = saved_filters::of(&app, &signed).await?;
    let all = queues::summaries::<B>(ctx).await?;
    let mine: Vec<_> = all
        .into_iter()
        .filter(|(_, info, _)| {
            ctx.who.is_admin() || info.roles.is_empty() || info.roles.iter().any(|r| ctx.who.has(r))
        })
        .collect();
    let mut lines = Vec::with_capacity(mine.len());
    for (name, info, open) in mine {
        let rows = rows_of::<B>(ctx, &name, MAX_ROWS).await?;
        let count = |s: Standing| {
            rows.iter()
                .filter(|r| r.standing().is_some_and(|(x, _)| x == s))
                .count()
        };
        lines.push((
            name,
            info.roles.join(", "),
            open,
            count(Standing::AtRisk),
            count(Standing::Breached),
        ));
    }
    let body = html! {
        h1 { "Your queues" }
        @if let Some(name) = &q.deleted { p.notice role="status" { "Filter “" (name) "” deleted." } }
        @if lines.is_empty() {
            p { "None of your roles works a queue." }
        } @else {
            table {
                caption { "Queues your roles work. At risk: a service clock past its first warning." }
                thead { tr {
                    th scope="col" { "Queue" }
                    th scope="col" { "Worked by" }
                    th.num scope="col" { "Open" }
                    th.num scope="col" { "At risk" }
                    th.num scope="col" { "Breached" }
                } }
                tbody {
                    @for (name, roles, open, risk, late) in &lines {
                        tr {
                            td { a href=(format!("/queues/{name}")) { (name) } }
                            td { (roles) }
                            td.num { (open) }
                            td.num { @if *risk > 0 { span.clock.at-risk { (risk) " at risk" } } @else { "0" } }
                            td.num { @if *late > 0 { span.clock.breached { (late) " breached" } } @else { "0" } }
                        }
                    }
                }
            }
        }
        (saved_filters::list(&saved, None, &signed.session.csrf))
    };
    let viewer = Viewer {
        who: &ctx.who,
        csrf: &signed.session.csrf,
    };
    Ok(layout::send(
        StatusCode::OK,
        layout::page("Your queues", Some(&viewer), Section::Queues, body),
    ))
}
