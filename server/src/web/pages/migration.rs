//! Moving a process's live tickets to another version, for process managers: the plan as a
//! form (where each stage of the old version goes, how each clock is carried, what becomes of
//! fields the new version lacks or requires), a preview listing every live ticket before and
//! after, and the move itself. Both go through the API's own function
//! (`routes::migrations::migrate`), so the page checks and refuses exactly as
//! `POST /v1/migrations` does, and shows the same problems.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::Response;
use itsmflow_engine::runtime::catalog::Definition;
use itsmflow_engine::runtime::migrate::{Plan, Report, Side};
use itsmflow_engine::runtime::types::ClockMode;
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::{Map, Value as Json};

use super::ticket::label_of;
use crate::serve::error::ApiError;
use crate::serve::routes::{definitions, migrations};
use crate::serve::tenants::Backend;
use crate::web::csrf::{Fields, Posted};
use crate::web::layout::{self, Section, Viewer};
use crate::web::session::Signed;
use crate::web::standing::left;
use crate::web::WebResult;

#[derive(Deserialize, Default)]
pub struct Versions {
    from: Option<u32>,
    to: Option<u32>,
}

/// What the page shows below the form.
enum Outcome {
    Nothing,
    Refused(ApiError),
    Report(Report),
}

/// `GET /processes/{process}/migrate?from=&to=`: the plan's form, filled with its defaults
/// (each stage to its namesake, every clock kept).
pub async fn page<B: Backend>(
    signed: Signed<B::Store>,
    Path(process): Path<String>,
    Query(q): Query<Versions>,
) -> WebResult<Response> {
    signed.ctx.require_publisher()?;
    let (from, to) = versions::<B>(&signed, &process, q.from, q.to)?;
    Ok(render(
        &signed,
        &from,
        &to,
        None,
        Outcome::Nothing,
        StatusCode::OK,
    ))
}

/// `POST /processes/{process}/migrate`: preview (`do=preview`) or move (`do=apply`) as the
/// form says.
pub async fn post<B: Backend>(
    Path(process): Path<String>,
    posted: Posted<B::Store>,
) -> WebResult<Response> {
    let Posted { signed, fields } = posted;
    signed.ctx.require_publisher()?;
    let number = |name: &str| fields.get(name).and_then(|v| v.parse::<u32>().ok());
    let (from, to) = versions::<B>(&signed, &process, number("from"), number("to"))?;
    let apply = fields.get("do") == Some("apply");
    let plan = plan_of(&process, &from, &to, &fields);
    let (status, outcome) = match migrations::migrate::<B>(&signed.ctx, plan, apply).await {
        Ok(report) => (StatusCode::OK, Outcome::Report(report)),
        Err(e) => (e.status, Outcome::Refused(e)),
    };
    Ok(render(&signed, &from, &to, Some(&fields), outcome, status))
}

/// The versions asked for: `from` defaults to the one before the latest, `to` to the latest.
fn versions<B: Backend>(
    signed: &Signed<B::Store>,
    process: &str,
    from: Option<u32>,
    to: Option<u32>,
) -> Result<(Arc<Definition>, Arc<Definition>), ApiError> {
    let latest = definitions::find::<B>(&signed.ctx, process, None)?;
    let to = definitions::find::<B>(&signed.ctx, process, Some(to.unwrap_or(latest.version)))?;
    let from = from.unwrap_or(to.version.saturating_sub(1).max(1));
    let from = definitions::find::<B>(&signed.ctx, process, Some(from))?;
    Ok((from, to))
}

/// The plan the form describes. Field values to set are read as JSON where they parse as a
/// number or `true`/`false`, else as text, as a person would type them.
fn plan_of(process: &str, from: &Definition, to: &Definition, f: &Fields) -> Plan {
    let mut stages = BTreeMap::new();
    for s in &from.model().stages {
        if let Some(target) = f
            .get(&format!("stage.{}", s.name))
            .filter(|t| !t.is_empty())
        {
            stages.insert(s.name.clone(), target.to_string());
        }
    }
    let mut clocks = BTreeMap::new();
    for clock in ["respond", "resolve"] {
        if let Some(mode) = f.get(&format!("clock.{clock}")) {
            clocks.insert(clock.to_string(), mode_of(mode));
        }
    }
    let drop_fields = f.all("drop").into_iter().map(str::to_string).collect();
    let mut set = Map::new();
    for field in &to.model().fields {
        if let Some(v) = f
            .get(&format!("set.{}", field.name))
            .map(str::trim)
            .filter(|v| !v.is_empty())
        {
            let value = match serde_json::from_str::<Json>(v) {
                Ok(n @ (Json::Number(_) | Json::Bool(_))) => n,
                _ => Json::String(v.to_string()),
            };
            set.insert(field.name.clone(), value);
        }
    }
    Plan {
        process: process.to_string(),
        from: from.version,
        to: Some(to.version),
        stages,
        clocks,
        drop_fields,
        set,
    }
}

fn mode_of(text: &str) -> ClockMode {
    ClockMode::parse(text).unwrap_or_default()
}

fn render<S: itsmflow_engine::store::Store>(
    signed: &Signed<S>,
    from: &Definition,
    to: &Definition,
    posted: Option<&Fields>,
    outcome: Outcome,
    status: StatusCode,
) -> Response {
    let (old, new) = (from.model(), to.model());
    let process = &from.process;
    let title = format!(
        "Move live tickets of {}",
        label_of(&old.name, old.label.as_deref())
    );
    let chosen = |name: &str| posted.and_then(|f| f.get(name)).map(str::to_string);
    let csrf = &signed.session.csrf;
    // Fields whose values the move would lose, and fields the new version requires that the
    // old one does not have.
    let lost: Vec<&str> = old
        .fields
        .iter()
        .filter(|f| {
            new.field(&f.name)
                .is_none_or(|id| new.fields[id.index()].ty.to_string() != f.ty.to_string())
        })
        .map(|f| f.name.as_str())
        .collect();
    let needed: Vec<&itsmflow_engine::model::Field> = new
        .fields
        .iter()
        .filter(|f| f.required && f.default.is_none() && old.field(&f.name).is_none())
        .collect();
    let body = html! {
        p { a href=(format!("/processes/{process}")) { "← " (label_of(&old.name, old.label.as_deref())) } }
        h1 { (title) }
        p.hint {
            "Tickets stay on the version they were created on until they end. A move takes every "
            "live ticket of one version to another, each in its own transaction, with the move "
            "recorded in its history. Preview first: it writes nothing."
        }
        form.filter method="get" action=(format!("/processes/{process}/migrate")) {
            div {
                label for="from" { "From version" }
                input #from type="number" name="from" min="1" value=(from.version);
            }
            div {
                label for="to" { "To version" }
                input #to type="number" name="to" min="1" value=(to.version);
            }
            button type="submit" { "Change versions" }
        }
        form method="post" action=(format!("/processes/{process}/migrate")) {
            input type="hidden" name="csrf" value=(csrf);
            input type="hidden" name="from" value=(from.version);
            input type="hidden" name="to" value=(to.version);
            section.card aria-labelledby="h-stages" {
                h2 #h-stages { "Stages" }
                table {
                    thead { tr {
                        th scope="col" { "In version " (from.version) }
                        th scope="col" { "Goes to, in version " (to.version) }
                    } }
                    tbody {
                        @for s in old.stages.iter().filter(|s| !s.is_final) {
                            @let field = format!("stage.{}", s.name);
                            @let picked = chosen(&field).unwrap_or_else(|| {
                                new.stage(&s.name).map(|_| s.name.clone()).unwrap_or_default()
                            });
                            tr {
                                td { label for=(field) { (label_of(&s.name, s.label.as_deref())) } }
                                td {
                                    select id=(field) name=(field) {
                                        option value="" selected[picked.is_empty()] { "(not mapped)" }
                                        @for t in new.stages.iter().filter(|t| !t.is_final) {
                                            option value=(t.name) selected[t.name == picked] {
                                                (label_of(&t.name, t.label.as_deref()))
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            section.card aria-labelledby="h-clocks" {
                h2 #h-clocks { "Clocks" }
                @for clock in ["respond", "resolve"] {
                    @let field = format!("clock.{clock}");
                    @let picked = chosen(&field).map_or(ClockMode::Keep, |m| mode_of(&m));
                    p {
                        label for=(field) { "The " (clock) " clock " }
                        select id=(field) name=(field) {
                            option value="keep" selected[picked == ClockMode::Keep] { "keeps the time it ran" }
                            option value="recompute" selected[picked == ClockMode::Recompute] { "is measured again on the new targets" }
                            option value="restart" selected[picked == ClockMode::Restart] { "starts again" }
                        }
                    }
                }
            }
            @if !lost.is_empty() || !needed.is_empty() {
                section.card aria-labelledby="h-fields" {
                    h2 #h-fields { "Fields" }
                    @for name in &lost {
                        @let id = format!("drop-{name}");
                        @let ticked = posted.is_some_and(|f| f.all("drop").contains(name));
                        p {
                            input id=(id) type="checkbox" name="drop" value=(name) checked[ticked];
                            label for=(id) { "Drop the values of " code { (name) } " (version " (to.version) " does not have it, or types it otherwise)" }
                        }
                    }
                    @for f in &needed {
                        @let field = format!("set.{}", f.name);
                        p {
                            label for=(field) { "Give every ticket " code { (f.name) } " (" (f.ty.to_string()) ", required in version " (to.version) ")" }
                            " "
                            input id=(field) name=(field) value=(chosen(&field).unwrap_or_default());
                        }
                    }
                }
            }
            div.toolbar {
                button type="submit" name="do" value="preview" { "Preview" }
                button.danger type="submit" name="do" value="apply" { "Move the tickets" }
            }
        }
        (outcome_section(&outcome))
    };
    layout::send(
        status,
        layout::page(
            &title,
            Some(&Viewer {
                who: &signed.ctx.who,
                csrf,
            }),
            Section::Processes,
            body,
        ),
    )
}

fn outcome_section(outcome: &Outcome) -> Markup {
    match outcome {
        Outcome::Nothing => html! {},
        Outcome::Refused(e) => html! {
            section.card.error role="alert" aria-labelledby="h-refused" #refused {
                h2 #h-refused { (e.title) }
                @match e.extra.get("problems").and_then(Json::as_array) {
                    Some(problems) => ul {
                        @for p in problems {
                            li {
                                code { (p["code"].as_str().unwrap_or_default()) } " "
                                (p["message"].as_str().unwrap_or_default())
                            }
                        }
                    },
                    None => p { (e.detail) },
                }
                p { "Nothing was changed." }
            }
        },
        Outcome::Report(r) => html! {
            section.card aria-labelledby="h-report" #report {
                h2 #h-report {
                    @if r.dry_run { "Preview: " (r.tickets.len()) " live ticket" @if r.tickets.len() != 1 { "s" } " would move" }
                    @else { "Moved " (r.migrated) " ticket" @if r.migrated != 1 { "s" } }
                }
                @if r.dry_run { p.hint role="status" { "Nothing was changed." } }
                @else { p.notice role="status" { "Each ticket's history records the move." } }
                @if !r.skipped.is_empty() {
                    p { "Left as they were (ended or moved meanwhile): "
                        @for (i, id) in r.skipped.iter().enumerate() {
                            @if i > 0 { ", " }
                            a href=(format!("/tickets/{id}")) { "#" (id) }
                        }
                    }
                }
                @if !r.tickets.is_empty() {
                    table {
                        thead { tr {
                            th scope="col" { "Ticket" }
                            th scope="col" { "Version " (r.from) }
                            th scope="col" { "Version " (r.to) }
                        } }
                        tbody {
                            @for t in &r.tickets {
                                tr {
                                    td { a href=(format!("/tickets/{}", t.instance)) { "#" (t.instance) } }
                                    td { (side(&t.before)) }
                                    td { (side(&t.after)) }
                                }
                            }
                        }
                    }
                }
            }
        },
    }
}

/// `in_progress · experts · P2 · resolve 3h 0m left`.
fn side(s: &Side) -> Markup {
    html! {
        strong { (s.stage) }
        @if let Some(q) = &s.queue { " · " (q) }
        @if let Some(p) = &s.priority { " · " (p) }
        @for c in &s.clocks {
            " · " (c.clock.as_str()) " "
            (left(c.remaining_seconds))
        }
    }
}
