//! A ticket: its fields and priority (and why), service clocks as progress bars, the task's
//! holder and lease (claim, renew, release), the actions the user may take as forms for their
//! required fields, the approval to vote on, comments and the history as a timeline.
//!
//! Every form goes through the API's own functions (`serve::routes::*`): the engine decides,
//! and a refusal is shown on the page with the API's words and status.

use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use itsmflow_engine::model::{FieldType, Process};
use itsmflow_engine::runtime::clocks::{Clock, ClockState};
use itsmflow_engine::runtime::ola::OlaClock;
use itsmflow_engine::runtime::types::ChecklistEntry;
use itsmflow_engine::runtime::{EventView, InstanceView, LinkView, TaskState};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::{Map, Value as Json};

use super::queue::{stage_label, title, when};
use crate::serve::auth::Ctx;
use crate::serve::error::ApiError;
use crate::serve::routes::{approvals, instances, queues, tasks};
use crate::serve::tenants::Backend;
use crate::web::csrf::{Fields, Posted};
use crate::web::layout::{self, Section, Viewer};
use crate::web::session::Signed;
use crate::web::standing::{self, Standing};
use crate::web::{WebError, WebResult};

type C<B> = Ctx<<B as Backend>::Store>;

#[derive(Deserialize, Default)]
pub struct TicketQuery {
    claimed: Option<String>,
    done: Option<String>,
}

/// A field's value as text: a list as its elements joined by commas (`ann, bob`), an empty
/// one as "none".
fn show(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        Json::Null => "—".into(),
        Json::Array(items) if items.is_empty() => "none".into(),
        Json::Array(items) => items.iter().map(show).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

/// The elements of a list field's value as the form shows them, one each.
pub(crate) fn list_items(v: Option<&Json>) -> Vec<String> {
    v.and_then(Json::as_array)
        .into_iter()
        .flatten()
        .map(|e| match e {
            Json::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect()
}

/// A field's value posted by a form, as the API takes it; `None` when left empty (so the
/// engine applies its default, or names it as missing). A list comes from a multiple select
/// (one value per chosen option) or a text area (one element per line); blank lines are left
/// out.
pub(crate) fn posted_value(ty: &FieldType, name: &str, form: &Fields) -> Option<Json> {
    match ty {
        FieldType::List(element) => {
            let items: Vec<Json> = form
                .all(name)
                .into_iter()
                .flat_map(str::lines)
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(|v| typed(element, v))
                .collect();
            (!items.is_empty()).then_some(Json::Array(items))
        }
        _ => form
            .get(name)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(|raw| typed(ty, raw)),
    }
}

pub(crate) fn label_of<'a>(name: &'a str, label: Option<&'a str>) -> &'a str {
    label.unwrap_or(name)
}

/// Why the ticket has its priority: the fields the process's priority table reads.
fn priority_why(view: &InstanceView, p: &Process) -> Option<String> {
    let table = p.priority_table.as_ref()?;
    let parts: Vec<String> = table
        .fields
        .iter()
        .filter_map(|f| p.fields.get(f.index()))
        .map(|f| {
            let v = view
                .field(&f.name)
                .map(|v| show(&v))
                .unwrap_or("unset".into());
            format!("{} {v}", f.name)
        })
        .collect();
    Some(format!("from {}", parts.join(" and ")))
}

/// One line of the timeline: what happened, and any text that came with it.
fn describe(e: &EventView) -> (String, Option<String>) {
    let d = &e.data;
    let s = |k: &str| d.get(k).map(show).unwrap_or_default();
    match e.kind {
        "created" => (format!("raised, in {}", s("stage")), None),
        "transitioned" => (
            format!("{}: {} → {}", s("action"), s("from"), s("to")),
            None,
        ),
        "fields_changed" => {
            let changes: Vec<String> = d
                .get("changes")
                .and_then(Json::as_array)
                .map(|cs| {
                    cs.iter()
                        .map(|c| {
                            format!(
                                "{}: {}",
                                c.get("field").map(show).unwrap_or_default(),
                                c.get("new").map(show).unwrap_or_default()
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            (format!("changed {}", changes.join(", ")), None)
        }
        "priority_changed" => (format!("priority {} → {}", s("from"), s("to")), None),
        "routed" => (format!("routed {} → {}", s("from"), s("to")), None),
        "commented" => ("commented".into(), Some(s("text"))),
        // Levels count from 0 in the history, from 1 for people (as the API's approval does).
        "voted" => (
            format!(
                "voted {} (level {})",
                s("decision"),
                d.get("level").and_then(Json::as_u64).map_or(0, |l| l + 1)
            ),
            d.get("comment").filter(|c| !c.is_null()).map(show),
        ),
        "approval_decided" => (
            format!("approval {}: {} → {}", s("outcome"), s("from"), s("to")),
            None,
        ),
        "escalated" => (
            format!("{} clock reached {}", s("clock"), s("threshold")),
            None,
        ),
        "breached" => (format!("{} clock breached", s("clock")), None),
        // The reason says which versions ("migrated from version 1 to version 2").
        "migrated" => (
            format!("moved to {} (was in {})", s("stage"), s("from_stage")),
            None,
        ),
        "checked" => (
            format!(
                "{} {} (checklist of {})",
                if d.get("done").and_then(Json::as_bool).unwrap_or(false) {
                    "ticked"
                } else {
                    "cleared"
                },
                s("item"),
                s("stage")
            ),
            None,
        ),
        other => (other.replace('_', " "), None),
    }
    .into_with_reason(e.reason.as_deref())
}

trait WithReason {
    fn into_with_reason(self, reason: Option<&str>) -> (String, Option<String>);
}

impl WithReason for (String, Option<String>) {
    fn into_with_reason(self, reason: Option<&str>) -> (String, Option<String>) {
        match reason {
            // A vote's comment is its reason too: shown once, as the text.
            Some(r) if !r.trim().is_empty() && self.1.as_deref() != Some(r) => {
                (format!("{} — {r}", self.0), self.1)
            }
            _ => self,
        }
    }
}

/// The form control for a field an action requires, filled with its current value.
pub(crate) fn input(action: &str, name: &str, ty: &FieldType, current: Option<Json>) -> Markup {
    let id = format!("f-{action}-{name}");
    let items = list_items(current.as_ref());
    let value = current.as_ref().map(show).unwrap_or_default();
    let value = if value == "—" { String::new() } else { value };
    html! {
        label for=(id) { (name) }
        @match ty {
            // Enum values (and services) are chosen; other elements are typed one per line.
            FieldType::List(element) => {
                @if let FieldType::Enum(values) = &**element {
                    select id=(id) name=(name) multiple required aria-describedby=(format!("{id}-hint")) {
                        @for v in values {
                            option value=(v) selected[items.contains(v)] { (v) }
                        }
                    }
                    span.hint id=(format!("{id}-hint")) { "Choose one or more." }
                } @else {
                    textarea id=(id) name=(name) required aria-describedby=(format!("{id}-hint")) { (items.join("\n")) }
                    span.hint id=(format!("{id}-hint")) { "One per line." }
                }
            }
            FieldType::Enum(values) => {
                select id=(id) name=(name) required {
                    option value="" { "Choose…" }
                    @for v in values {
                        option value=(v) selected[*v == value] { (v) }
                    }
                }
            }
            FieldType::Bool => {
                select id=(id) name=(name) required {
                    option value="" { "Choose…" }
                    option value="true" selected[value == "true"] { "yes" }
                    option value="false" selected[value == "false"] { "no" }
                }
            }
            FieldType::Int => { input id=(id) type="number" step="1" name=(name) value=(value) required; }
            FieldType::Text => { textarea id=(id) name=(name) required { (value) } }
            FieldType::Duration => {
                input id=(id) type="text" name=(name) value=(value) required placeholder="e.g. 4h";
            }
            FieldType::DateTime => {
                input id=(id) type="text" name=(name) value=(value) required placeholder="e.g. 2026-05-01T09:00:00Z";
            }
            FieldType::Person => {
                input id=(id) type="text" name=(name) value=(value) required autocomplete="off";
            }
        }
    }
}

/// The form's values for the fields `action` requires, typed as the API takes them. A value
/// that does not parse is passed as text, so the engine refuses it with its own message.
fn action_fields(p: &Process, action: &str, form: &Fields) -> Map<String, Json> {
    let mut out = Map::new();
    let Some(t) = p.transition(action).map(|t| &p.transitions[t.index()]) else {
        return out;
    };
    for f in t.requires.iter().filter_map(|f| p.fields.get(f.index())) {
        if let Some(value) = posted_value(&f.ty, &f.name, form) {
            out.insert(f.name.clone(), value);
        }
    }
    out
}

/// A form's text as the API takes the field's value. A value that does not parse is passed as
/// text, so the engine refuses it with its own message. A browser's `datetime-local` value
/// (`2026-05-01T09:00`, no zone) is read as UTC, as the form's hint says.
pub(crate) fn typed(ty: &FieldType, raw: &str) -> Json {
    match ty {
        FieldType::Int => raw
            .parse::<i64>()
            .map(Json::from)
            .unwrap_or_else(|_| Json::from(raw)),
        FieldType::Bool => match raw {
            "true" => Json::Bool(true),
            "false" => Json::Bool(false),
            other => Json::from(other),
        },
        FieldType::DateTime => match chrono::NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M") {
            Ok(t) => Json::from(t.and_utc().to_rfc3339()),
            Err(_) => Json::from(raw),
        },
        _ => Json::from(raw),
    }
}

fn clock_bar(c: &Clock) -> Markup {
    let s = Standing::of(c);
    let name = standing::kind(c);
    let id = format!("clock-{name}");
    // A native progress bar (no inline style: the pages' content security policy allows
    // none), labelled by the line above it, which says the same in words.
    html! {
        div.clockrow {
            div #(id) {
                strong { (name) } " "
                span class=(format!("clock {}", s.class())) { (standing::word_of(c)) } " "
                span { (standing::remaining(c)) " of " (c.target) " (" (format!("{:.0}", c.percent)) "% used)" }
            }
            progress class=(s.class()) max="100" value=(format!("{:.1}", c.percent.clamp(0.0, 100.0)))
                aria-labelledby=(id) {}
            @if let Some(due) = c.due_at { div.hint { "due " (when(due)) } }
        }
    }
}

/// The team's (OLA) clock of one stay in a queue: the current one as a bar like the service
/// clocks', a past one as a line saying how it ended.
fn ola_row(c: &OlaClock) -> Markup {
    let state = match c.state {
        ClockState::Running => "running",
        ClockState::Paused => "paused",
        ClockState::Met => "met",
        ClockState::Breached => "breached",
        ClockState::NotStarted => "not started",
    };
    let class = match c.state {
        ClockState::Breached => "breached",
        ClockState::Met => "on-time",
        ClockState::Paused => "paused",
        _ if c.remaining_seconds * 4 < c.target_seconds => "at-risk",
        _ => "on-time",
    };
    let source = match c.tier {
        Some(n) => format!("tier {n} target, row {}", c.row),
        None => format!("queue target, row {}", c.row),
    };
    let left = if c.remaining_seconds < 0 {
        format!("{} overdue", standing::duration(c.remaining_seconds))
    } else {
        format!("{} left", standing::duration(c.remaining_seconds))
    };
    let percent = if c.target_seconds > 0 {
        (c.elapsed_seconds as f64 / c.target_seconds as f64 * 100.0).clamp(0.0, 100.0)
    } else {
        0.0
    };
    let id = format!("ola-{}-{}", c.queue, c.entered_at.timestamp());
    html! {
        div.clockrow {
            div #(id) {
                strong { "OLA " (c.queue) } " "
                span class=(format!("clock {class}")) { (state) } " "
                @if c.left_at.is_none() {
                    span { (left) " of " (c.target) " (" (source) ", on " (c.calendar) ")" }
                } @else {
                    span { (standing::duration(c.elapsed_seconds)) " of " (c.target) " (" (source) ")" }
                }
            }
            @if c.left_at.is_none() {
                progress class=(class) max="100" value=(format!("{percent:.1}")) aria-labelledby=(id) {}
                @if let Some(due) = c.due_at { div.hint { "OLA due " (when(due)) } }
            } @else if let Some(left) = c.left_at {
                div.hint { "in the queue from " (when(c.entered_at)) " to " (when(left)) }
            }
        }
    }
}

struct Ticket {
    view: InstanceView,
    history: Vec<EventView>,
    links: Vec<LinkView>,
    clocks: Vec<Clock>,
    /// The ticket's OLA clocks, past stays first (empty for a process without OLA targets).
    ola: Vec<OlaClock>,
    approval: Option<Json>,
    checklist: Vec<ChecklistEntry>,
}

/// Everything the page shows, read through the API's own checks (a ticket the user may not
/// see is a 404, as in the API).
async fn load<B: Backend>(ctx: &C<B>, id: i64) -> WebResult<Ticket> {
    let view = instances::visible::<B>(ctx, id).await?;
    let history = instances::history_of::<B>(ctx, id).await?;
    let links = instances::links_of::<B>(ctx, id).await?;
    let clocks = ctx.tenant.engine.clocks(view.id()).await?;
    let ola = match view.definition().timing().ola {
        true => ctx.tenant.engine.ola_clocks(view.id()).await?,
        false => Vec::new(),
    };
    let checklist = ctx.tenant.engine.checklist(view.id()).await?;
    let approval = approvals::approval_of::<B>(ctx, &view)
        .await?
        .map(|a| serde_json::to_value(a).map_err(ApiError::internal))
        .transpose()?;
    Ok(Ticket {
        view,
        history,
        links,
        clocks,
        ola,
        approval,
        checklist,
    })
}

/// The checklist of the ticket's stage: each item ticked or not, with a button to tick or
/// clear it (the engine refuses those who may not, in the API's words).
fn checklist_section(t: &Ticket, csrf: &str) -> Markup {
    let id = t.view.id().0;
    html! {
        ul.checklist {
            @for entry in &t.checklist {
                li {
                    form method="post" action=(format!("/tickets/{id}/checklist/{}", entry.item)) {
                        input type="hidden" name="csrf" value=(csrf);
                        input type="hidden" name="version" value=(t.view.version());
                        input type="hidden" name="done" value=(if entry.done { "false" } else { "true" });
                        span.item {
                            @if entry.done { span.done aria-label="ticked" { "✓ " } }
                            @else { span.todo aria-label="not ticked" { "○ " } }
                            (label_of(&entry.item, entry.label.as_deref()))
                        }
                        " "
                        button.secondary type="submit"
                            aria-label=(format!("{} {}", if entry.done { "Clear" } else { "Tick" },
                                label_of(&entry.item, entry.label.as_deref()))) {
                            @if entry.done { "Clear" } @else { "Tick" }
                        }
                    }
                }
            }
        }
    }
}

/// The task's queue, holder and lease; claim, renew and release for those who work its queue
/// (`works`: the engine's own membership rule, [`QueueInfo::admits`]).
///
/// [`QueueInfo::admits`]: itsmflow_engine::runtime::catalog::QueueInfo::admits
fn task_section(t: &Ticket, me: &str, works: bool, csrf: &str, now: DateTime<Utc>) -> Markup {
    let id = t.view.id().0;
    let Some(task) = t.view.task() else {
        return html! { p.hint { "No task open: the ticket waits in no queue." } };
    };
    let live = task.state == TaskState::Claimed && task.lease_until.is_some_and(|l| l > now);
    let mine = live && task.claimed_by.as_deref() == Some(me);
    html! {
        dl.fields {
            dt { "Queue" } dd { a href=(format!("/queues/{}", task.queue)) { (task.queue) } }
            dt { "Holder" } dd #holder {
                @if live { (task.claimed_by.as_deref().unwrap_or("—")) } @else { "nobody" }
            }
            @if live { @if let Some(until) = task.lease_until {
                dt { "Lease" } dd { "until " (until.format("%H:%M:%S UTC")) " ("
                    (standing::duration((until - now).num_seconds())) " left)" }
            } }
        }
        @if works {
            div.actions-inline {
                @if mine {
                    form method="post" action=(format!("/tickets/{id}/renew")) {
                        input type="hidden" name="csrf" value=(csrf);
                        input type="hidden" name="task" value=(task.id.0);
                        input type="hidden" name="token" value=(task.token);
                        button.secondary type="submit" { "Renew lease" }
                    }
                    form method="post" action=(format!("/tickets/{id}/release")) {
                        input type="hidden" name="csrf" value=(csrf);
                        input type="hidden" name="task" value=(task.id.0);
                        input type="hidden" name="token" value=(task.token);
                        button.secondary type="submit" { "Release" }
                    }
                } @else if !live {
                    form method="post" action=(format!("/tickets/{id}/claim")) {
                        input type="hidden" name="csrf" value=(csrf);
                        input type="hidden" name="task" value=(task.id.0);
                        button type="submit" { "Claim" }
                    }
                }
            }
        }
    }
}

fn actions_section(t: &Ticket, actions: &[&str], csrf: &str) -> Markup {
    let id = t.view.id().0;
    let def = t.view.definition();
    let p = def.model();
    let version = t.view.version();
    html! {
        @if actions.is_empty() {
            p.hint { "Nothing you may do in this stage." }
        }
        @for a in actions {
            @if let Some(tr) = p.transition(a).map(|x| &p.transitions[x.index()]) {
                @let to = p.stages.get(tr.to.index()).map(|s| label_of(&s.name, s.label.as_deref())).unwrap_or("");
                @let name = label_of(&tr.name, tr.label.as_deref());
                form.action method="post" action=(format!("/tickets/{id}/actions/{a}")) {
                    input type="hidden" name="csrf" value=(csrf);
                    input type="hidden" name="version" value=(version);
                    @if tr.requires.is_empty() {
                        button type="submit" data-action=(a) { (name) }
                        span.hint { " → " (to) }
                    } @else {
                        fieldset {
                            legend { (name) " → " (to) }
                            @for f in tr.requires.iter().filter_map(|f| p.fields.get(f.index())) {
                                (input(a, &f.name, &f.ty, t.view.field(&f.name)))
                            }
                            p { button type="submit" data-action=(a) { (name) } }
                        }
                    }
                }
            }
        }
    }
}

fn approval_section(a: &Json, me: &str, csrf: &str, id: i64, version: i64) -> Markup {
    let waiting: Vec<&str> = a
        .get("waiting_for")
        .and_then(Json::as_array)
        .map(|w| w.iter().filter_map(Json::as_str).collect())
        .unwrap_or_default();
    let open = a.get("open_level").and_then(Json::as_u64);
    html! {
        @if let Some(e) = a.get("explain").and_then(Json::as_str) { p { (e) } }
        ol {
            @for l in a.get("levels").and_then(Json::as_array).into_iter().flatten() {
                li {
                    "Level " (l.get("level").map(show).unwrap_or_default()) ": "
                    (l.get("state").map(show).unwrap_or_default().replace('_', " "))
                    @for g in l.get("groups").and_then(Json::as_array).into_iter().flatten() {
                        " · " (g.get("role").filter(|r| !r.is_null()).or(g.get("person")).map(show).unwrap_or_default())
                        ": " (g.get("approvals").map(show).unwrap_or_default()) " of "
                        (g.get("needed").map(show).unwrap_or_default()) " approvals"
                    }
                }
            }
        }
        @if !waiting.is_empty() { p { "Waiting for " (waiting.join(", ")) "." } }
        @if waiting.contains(&me) {
            form method="post" action=(format!("/tickets/{id}/votes")) {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="version" value=(version);
                @if let Some(l) = open { input type="hidden" name="level" value=(l); }
                label for="vote-comment" { "Comment (optional)" }
                textarea #vote-comment name="comment" {}
                div.actions-inline {
                    button type="submit" name="decision" value="approve" { "Approve" }
                    button.danger type="submit" name="decision" value="reject" { "Reject" }
                }
            }
        }
    }
}

fn render<B: Backend>(
    signed: &Signed<B::Store>,
    t: &Ticket,
    status: StatusCode,
    notice: Option<&str>,
    error: Option<&str>,
) -> Response {
    let ctx = &signed.ctx;
    let csrf = &signed.session.csrf;
    let me = ctx.who.user.as_str();
    let now = ctx.tenant.engine.clock().now();
    let id = t.view.id().0;
    let def = t.view.definition();
    let p = def.model();
    let actor = ctx.actor();
    let actions = t.view.actions_for(&actor);
    let works = !ctx.who.is_requester_only()
        && t.view.task().is_some_and(|task| {
            ctx.tenant
                .engine
                .catalog()
                .queue(&task.queue)
                .is_some_and(|q| q.admits(&actor))
        });
    let heading = format!("#{id} {}", title(&t.view));
    let stage_label = stage_label(&t.view);
    let body = html! {
        h1 { (heading) }
        p.hint {
            (p.label.as_deref().unwrap_or(&p.name)) " · stage " strong #stage { (stage_label) }
            " · priority " strong.prio { (t.view.priority().unwrap_or("—")) }
            @if let Some(why) = priority_why(&t.view, p) { " (" (why) ")" }
            " · raised by " (t.view.created_by()) " on " (when(t.view.created_at()))
        }
        @if let Some(n) = notice { p.notice role="status" { (n) } }
        @if let Some(e) = error { p.error role="alert" #action-error { (e) } }
        div.grid {
            div {
                section.card aria-labelledby="h-actions" {
                    h2 #h-actions { "Actions" }
                    (actions_section(t, &actions, csrf))
                }
                section.card aria-labelledby="h-fields" {
                    h2 #h-fields { "Fields" }
                    dl.fields {
                        @for f in &p.fields {
                            dt { (f.name) }
                            dd { (t.view.field(&f.name).map(|v| show(&v)).unwrap_or("—".into())) }
                        }
                    }
                }
                section.card aria-labelledby="h-history" {
                    h2 #h-history { "History" }
                    ol.timeline {
                        @for e in t.history.iter().rev() {
                            @let (what, text) = describe(e);
                            li {
                                div.when { time datetime=(e.at.to_rfc3339()) { (when(e.at)) } " · " (e.actor) }
                                div { (what) }
                                @if let Some(text) = text { div.comment { (text) } }
                            }
                        }
                    }
                    form method="post" action=(format!("/tickets/{id}/comments")) {
                        input type="hidden" name="csrf" value=(csrf);
                        label for="comment" { "Add a comment" }
                        textarea #comment name="text" required {}
                        p { button type="submit" { "Comment" } }
                    }
                }
            }
            div {
                section.card aria-labelledby="h-task" {
                    h2 #h-task { "Task" }
                    (task_section(t, me, works, csrf, now))
                }
                @if !t.checklist.is_empty() {
                    section.card aria-labelledby="h-checklist" {
                        h2 #h-checklist { "Checklist" }
                        (checklist_section(t, csrf))
                    }
                }
                section.card aria-labelledby="h-clocks" {
                    h2 #h-clocks { "Service clocks" }
                    @if t.clocks.is_empty() { p.hint { "This ticket has no service targets." } }
                    @for c in &t.clocks { (clock_bar(c)) }
                }
                @if !t.ola.is_empty() {
                    section.card aria-labelledby="h-ola" {
                        h2 #h-ola { "Team targets (OLA)" }
                        @for c in t.ola.iter().rev() { (ola_row(c)) }
                    }
                }
                @if !t.links.is_empty() {
                    section.card aria-labelledby="h-links" {
                        h2 #h-links { "Related tickets" }
                        ul {
                            // A link reads as this ticket's process names it ("caused by
                            // #5", "children #7"); one it does not name reads from its
                            // source ("#7 spawned this ticket").
                            @for l in &t.links {
                                @let other = format!("/tickets/{}", l.other.0);
                                @if let Some(name) = &l.name {
                                    li { (name.replace('_', " ")) " " a href=(other) { "#" (l.other.0) } }
                                } @else {
                                    li { a href=(other) { "#" (l.other.0) } " " (l.kind.replace('_', " ")) " this ticket" }
                                }
                            }
                        }
                    }
                }
                @if let Some(a) = &t.approval {
                    section.card aria-labelledby="h-approval" {
                        h2 #h-approval { "Approval" }
                        (approval_section(a, me, csrf, id, t.view.version()))
                    }
                }
            }
        }
    };
    let viewer = Viewer {
        who: &ctx.who,
        csrf,
    };
    // Requesters reach their tickets from the portal; agents from their queues.
    let section = if ctx.who.is_requester_only() {
        Section::Portal
    } else {
        Section::Queues
    };
    layout::send(status, layout::page(&heading, Some(&viewer), section, body))
}

/// `GET /tickets/{id}`.
pub async fn page<B: Backend>(
    signed: Signed<B::Store>,
    Path(id): Path<i64>,
    Query(q): Query<TicketQuery>,
) -> WebResult<Response> {
    let t = load::<B>(&signed.ctx, id).await?;
    let notice = match (&q.claimed, &q.done) {
        (Some(_), _) => Some("You hold this ticket's task now.".to_string()),
        (_, Some(done)) => Some(format!("Done: {done}.")),
        _ => None,
    };
    Ok(render::<B>(
        &signed,
        &t,
        StatusCode::OK,
        notice.as_deref(),
        None,
    ))
}

/// After a form: back to the ticket with a note, or the ticket with the refusal shown (as the
/// API would have answered it: same status, same words).
async fn after<B: Backend>(
    signed: &Signed<B::Store>,
    id: i64,
    result: Result<String, ApiError>,
) -> WebResult<Response> {
    match result {
        Ok(done) => Ok(layout::see_other(&format!(
            "/tickets/{id}?done={}",
            super::auth::encode(&done)
        ))),
        // A ticket the user may not see stays unseen: the refusal is the page's 404.
        Err(e) if e.status == StatusCode::NOT_FOUND && e.kind == "not-found" => {
            Err(WebError::Api(e))
        }
        Err(e) => {
            let t = load::<B>(&signed.ctx, id).await?;
            let message = format!("{}: {}", e.title, e.detail);
            Ok(render::<B>(signed, &t, e.status, None, Some(&message)))
        }
    }
}

fn number(form: &Fields, name: &str) -> Result<i64, ApiError> {
    form.get(name)
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| ApiError::bad_request(format!("the form has no `{name}`; reload the page")))
}

/// `POST /tickets/{id}/actions/{action}`: the API's perform, with the version the page showed
/// (a ticket changed meanwhile is refused as a conflict, not acted on blindly).
pub async fn act<B: Backend>(
    Path((id, action)): Path<(i64, String)>,
    posted: Posted<B::Store>,
) -> WebResult<Response> {
    let Posted { signed, fields } = posted;
    let result = async {
        let expected = fields.get("version").and_then(|v| v.parse::<i64>().ok());
        let view = instances::visible::<B>(&signed.ctx, id).await?;
        let input = action_fields(view.definition().model(), &action, &fields);
        // The portal's answer box: words that go with the action, kept as its reason.
        let reason = fields
            .get("reason")
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(str::to_string);
        instances::act::<B>(&signed.ctx, id, &action, &input, expected, reason).await?;
        Ok(action.clone())
    }
    .await;
    // The portal's forms come back to the portal's list (only there: no open redirect).
    if result.is_ok() && fields.get("back") == Some(super::portal::MY_TICKETS) {
        return Ok(layout::see_other(&format!(
            "{}?done={}&ticket={id}",
            super::portal::MY_TICKETS,
            super::auth::encode(&action)
        )));
    }
    after::<B>(&signed, id, result).await
}

/// `POST /tickets/{id}/checklist/{item}`: tick or clear an item, with the version the page
/// showed.
pub async fn check<B: Backend>(
    Path((id, item)): Path<(i64, String)>,
    posted: Posted<B::Store>,
) -> WebResult<Response> {
    let Posted { signed, fields } = posted;
    let done = fields.get("done") == Some("true");
    let expected = fields.get("version").and_then(|v| v.parse::<i64>().ok());
    let result =
        crate::serve::routes::checklists::tick_item::<B>(&signed.ctx, id, &item, done, expected)
            .await
            .map(|_| format!("{} {item}", if done { "ticked" } else { "cleared" }));
    after::<B>(&signed, id, result).await
}

/// `POST /tickets/{id}/comments`.
pub async fn comment<B: Backend>(
    Path(id): Path<i64>,
    posted: Posted<B::Store>,
) -> WebResult<Response> {
    let Posted { signed, fields } = posted;
    let text = fields.get("text").unwrap_or_default().to_string();
    let result = instances::add_comment::<B>(&signed.ctx, id, &text)
        .await
        .map(|_| "commented".to_string());
    after::<B>(&signed, id, result).await
}

/// `POST /tickets/{id}/claim`.
pub async fn claim<B: Backend>(
    Path(id): Path<i64>,
    posted: Posted<B::Store>,
) -> WebResult<Response> {
    let Posted { signed, fields } = posted;
    let result = async {
        let task = number(&fields, "task")?;
        tasks::take::<B>(&signed.ctx, task, queues::lease(None)?).await?;
        Ok("claimed".to_string())
    }
    .await;
    after::<B>(&signed, id, result).await
}

/// `POST /tickets/{id}/renew`.
pub async fn renew<B: Backend>(
    Path(id): Path<i64>,
    posted: Posted<B::Store>,
) -> WebResult<Response> {
    let Posted { signed, fields } = posted;
    let result = async {
        let (task, token) = (number(&fields, "task")?, number(&fields, "token")?);
        tasks::keep::<B>(&signed.ctx, task, token, queues::lease(None)?).await?;
        Ok("lease renewed".to_string())
    }
    .await;
    after::<B>(&signed, id, result).await
}

/// `POST /tickets/{id}/release`.
pub async fn release<B: Backend>(
    Path(id): Path<i64>,
    posted: Posted<B::Store>,
) -> WebResult<Response> {
    let Posted { signed, fields } = posted;
    let result = async {
        let (task, token) = (number(&fields, "task")?, number(&fields, "token")?);
        tasks::give_back::<B>(&signed.ctx, task, token).await?;
        Ok("released".to_string())
    }
    .await;
    after::<B>(&signed, id, result).await
}

/// `POST /tickets/{id}/votes`.
pub async fn vote<B: Backend>(
    Path(id): Path<i64>,
    posted: Posted<B::Store>,
) -> WebResult<Response> {
    let Posted { signed, fields } = posted;
    let result = async {
        let approve = match fields.get("decision") {
            Some("approve") => true,
            Some("reject") => false,
            _ => return Err(ApiError::invalid("choose Approve or Reject")),
        };
        let level = fields.get("level").and_then(|l| l.parse::<u32>().ok());
        let expected = fields.get("version").and_then(|v| v.parse::<i64>().ok());
        let comment = fields.get("comment").map(str::to_string);
        approvals::cast_vote::<B>(&signed.ctx, id, approve, comment, level, expected).await?;
        Ok(if approve { "approved" } else { "rejected" }.to_string())
    }
    .await;
    after::<B>(&signed, id, result).await
}
