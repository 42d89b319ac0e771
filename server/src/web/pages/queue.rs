//! Agents' queues: the list of the queues they work, and a queue as a live table in the order
//! to take its tasks (priority, then due time), with claim-next on a button and on `n`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use itsmflow_engine::runtime::clocks::Clock;
use itsmflow_engine::runtime::{InstanceView, Task, TaskState};
use maud::{html, Markup};

use crate::serve::app::App;
use crate::serve::auth::Ctx;
use crate::serve::error::ApiError;
use crate::serve::routes::{instances, queues};
use crate::serve::tenants::Backend;
use crate::web::csrf::Posted;
use crate::web::layout::{self, Section, Viewer};
use crate::web::session::Signed;
use crate::web::standing::{self, Standing};
use crate::web::WebResult;

type C<B> = Ctx<<B as Backend>::Store>;

/// Rows a queue page shows at most (the first, in the order they are to be taken).
const MAX_ROWS: u32 = 200;

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

/// The queue's open tasks with their tickets and clocks, read through the API's own checks.
pub async fn rows_of<B: Backend>(ctx: &C<B>, queue: &str, limit: u32) -> WebResult<Vec<Row>> {
    let tasks = queues::open_tasks::<B>(ctx, queue, limit).await?;
    let mut rows = Vec::with_capacity(tasks.len());
    for task in tasks {
        let view = match instances::visible::<B>(ctx, task.instance.0).await {
            Ok(v) => v,
            // Gone between the two reads (it cannot be, but a row is not worth a failed page).
            Err(e) if e.status == StatusCode::NOT_FOUND => continue,
            Err(e) => return Err(e.into()),
        };
        let clocks = ctx.tenant.engine.clocks(task.instance).await?;
        rows.push(Row { task, view, clocks });
    }
    Ok(rows)
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
        },
        None => html! { span.hint { "no clock running" } },
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

fn queue_page(
    signed: &Signed<impl itsmflow_engine::store::Store>,
    queue: &str,
    rows: &[Row],
    now: DateTime<Utc>,
    notice: Option<&str>,
) -> Markup {
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
            span { (rows.len()) " open, " (at_risk) " at risk or breached" }
            details #keys {
                summary { "Keyboard" }
                p { kbd { "n" } " claim next · " kbd { "j" } " / " kbd { "k" } " next / previous ticket · "
                    kbd { "Enter" } " open it · " kbd { "?" } " show these" }
            }
        }
        p.live #live-status role="status" aria-live="polite" {}
        table data-live-rows=(format!("/queues/{queue}/rows")) data-live-events=(format!("/queues/{queue}/events")) {
            caption { "In the order to take them: priority, then due time. Updates live." }
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

fn known_queue<B: Backend>(ctx: &C<B>, queue: &str) -> WebResult<()> {
    ctx.require_agent()?;
    if ctx.tenant.engine.catalog().queue(queue).is_none() {
        return Err(ApiError::not_found(format!("no queue `{queue}`")).into());
    }
    Ok(())
}

/// `GET /queues/{queue}`.
pub async fn page<B: Backend>(
    signed: Signed<B::Store>,
    Path(queue): Path<String>,
) -> WebResult<Response> {
    known_queue::<B>(&signed.ctx, &queue)?;
    let rows = rows_of::<B>(&signed.ctx, &queue, MAX_ROWS).await?;
    let now = signed.ctx.tenant.engine.clock().now();
    Ok(layout::send(
        StatusCode::OK,
        queue_page(&signed, &queue, &rows, now, None),
    ))
}

/// `GET /queues/{queue}/rows`: the table body alone, for the live refresh.
pub async fn rows<B: Backend>(
    signed: Signed<B::Store>,
    Path(queue): Path<String>,
) -> WebResult<Response> {
    known_queue::<B>(&signed.ctx, &queue)?;
    let rows = rows_of::<B>(&signed.ctx, &queue, MAX_ROWS).await?;
    let now = signed.ctx.tenant.engine.clock().now();
    Ok(layout::send(StatusCode::OK, body(&rows, now)))
}

/// `POST /queues/{queue}/claim`: take the next task and open its ticket.
pub async fn claim_next<B: Backend>(
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
            let rows = rows_of::<B>(&signed.ctx, &queue, MAX_ROWS).await?;
            let now = signed.ctx.tenant.engine.clock().now();
            Ok(layout::send(
                StatusCode::OK,
                queue_page(
                    &signed,
                    &queue,
                    &rows,
                    now,
                    Some("There is no task to take in this queue now."),
                ),
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

/// `GET /queues`: the queues the user works (their roles are among the queue's; every queue for
/// administrators), with their open tasks and how many are at risk or breached.
pub async fn list<B: Backend>(signed: Signed<B::Store>) -> WebResult<Response> {
    let ctx = &signed.ctx;
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
