//! Process managers' and consultants' view of the definitions: every process with its latest
//! version, and a process with all its versions, drawn as a graph (server-rendered SVG) with
//! its stages and transitions listed as tables. Read through the API's own definition
//! functions; shown only to those who may publish (the API's `POST /v1/definitions` role).

use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;
use serde::Deserialize;

use super::queue::when;
use super::ticket::label_of;
use crate::serve::routes::definitions;
use crate::serve::tenants::Backend;
use crate::web::graph_svg;
use crate::web::layout::{self, Section, Viewer};
use crate::web::session::Signed;
use crate::web::WebResult;

#[derive(Deserialize, Default)]
pub struct ListQuery {
    /// After publishing: how many processes got a new version.
    published: Option<usize>,
}

fn viewer<S: itsmflow_engine::store::Store>(signed: &Signed<S>) -> Viewer<'_> {
    Viewer {
        who: &signed.ctx.who,
        csrf: &signed.session.csrf,
    }
}

/// `GET /processes`.
pub async fn list<B: Backend>(
    signed: Signed<B::Store>,
    Query(q): Query<ListQuery>,
) -> WebResult<Response> {
    signed.ctx.require_publisher()?;
    let latest = definitions::latest::<B>(&signed.ctx);
    let body = html! {
        h1 { "Processes" }
        @if let Some(n) = q.published {
            p.notice role="status" #published {
                @if n == 0 { "Published: nothing had changed, every process keeps its version." }
                @else { "Published: " (n) " process" @if n != 1 { "es" } " got a new version." }
            }
        }
        div.toolbar {
            a.button href="/processes/edit" { "Edit the project" }
            span.hint { "Check, format and publish the definitions." }
        }
        @if latest.is_empty() {
            p.empty { "No process is published yet." }
        } @else {
            table {
                caption { "The latest version of each published process" }
                thead { tr {
                    th scope="col" { "Process" } th scope="col" { "Name" }
                    th.num scope="col" { "Version" } th scope="col" { "Published" }
                    th.num scope="col" { "Stages" } th.num scope="col" { "Actions" }
                } }
                tbody {
                    @for d in &latest {
                        @let p = d.model();
                        tr {
                            td { a href=(format!("/processes/{}", d.process)) { (label_of(&p.name, p.label.as_deref())) } }
                            td { code { (d.process) } }
                            td.num { (d.version) }
                            td { (when(d.published_at)) }
                            td.num { (p.stages.len()) }
                            td.num { (p.transitions.len()) }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::send(
        StatusCode::OK,
        layout::page(
            "Processes",
            Some(&viewer(&signed)),
            Section::Processes,
            body,
        ),
    ))
}

#[derive(Deserialize, Default)]
pub struct ProcessQuery {
    version: Option<u32>,
}

/// `GET /processes/{process}`: its versions, and the one asked for (the latest by default)
/// drawn and listed.
pub async fn page<B: Backend>(
    signed: Signed<B::Store>,
    Path(process): Path<String>,
    Query(q): Query<ProcessQuery>,
) -> WebResult<Response> {
    signed.ctx.require_publisher()?;
    let versions = definitions::versions_of::<B>(&signed.ctx, &process)?;
    let d = definitions::find::<B>(&signed.ctx, &process, q.version)?;
    let p = d.model();
    let project = &d.project;
    let title = label_of(&p.name, p.label.as_deref()).to_string();
    let stage_name = |s: usize| {
        p.stages
            .get(s)
            .map(|s| label_of(&s.name, s.label.as_deref()).to_string())
            .unwrap_or_default()
    };
    let body = html! {
        p { a href="/processes" { "← Processes" } }
        h1 { (title) " " span.hint { "version " (d.version) } }
        section.card aria-labelledby="h-graph" {
            h2 #h-graph { "Stages and transitions" }
            p.hint { "Bold: where a ticket starts. Double border: final. Dashed: an approval's outcome. Hover a line for who may take it." }
            // Focusable, so a wide graph can be scrolled from the keyboard.
            figure.graph tabindex="0" aria-labelledby="h-graph" { (graph_svg::render(project, p)) }
        }
        div.grid {
            section.card aria-labelledby="h-transitions" {
                h2 #h-transitions { "Transitions" }
                table {
                    thead { tr { th scope="col" { "Action" } th scope="col" { "From" } th scope="col" { "To" } th scope="col" { "Who" } th scope="col" { "Requires" } } }
                    tbody {
                        @for t in &p.transitions {
                            tr {
                                td { (label_of(&t.name, t.label.as_deref())) }
                                td { (t.from.iter().map(|s| stage_name(s.index())).collect::<Vec<_>>().join(", ")) }
                                td { (stage_name(t.to.index())) }
                                td {
                                    @let who: Vec<String> = t.roles.iter().map(|r| project.role(*r).name.clone())
                                        .chain(t.people.iter().map(|x| x.describe(p))).collect();
                                    @if who.is_empty() { "anyone" } @else { (who.join(", ")) }
                                    @if let Some(after) = t.after { " · by itself after " (after) }
                                }
                                td { (t.requires.iter().filter_map(|f| p.fields.get(f.index())).map(|f| f.name.as_str()).collect::<Vec<_>>().join(", ")) }
                            }
                        }
                    }
                }
            }
            div {
                section.card aria-labelledby="h-versions" {
                    h2 #h-versions { "Versions" }
                    table {
                        thead { tr { th.num scope="col" { "Version" } th scope="col" { "Published" } } }
                        tbody {
                            @for v in versions.iter().rev() {
                                tr {
                                    td.num {
                                        @if v.version == d.version { strong aria-current="true" { (v.version) } }
                                        @else { a href=(format!("/processes/{}?version={}", v.process, v.version)) { (v.version) } }
                                    }
                                    td { (when(v.published_at)) }
                                }
                            }
                        }
                    }
                    @if versions.len() > 1 {
                        p { a href=(format!("/processes/{process}/migrate")) { "Move live tickets to another version" } }
                    }
                }
                section.card aria-labelledby="h-fields" {
                    h2 #h-fields { "Fields" }
                    dl.fields {
                        @for f in &p.fields {
                            dt { (f.name) }
                            dd { (f.ty.to_string()) @if f.required { " · required" } }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::send(
        StatusCode::OK,
        layout::page(&title, Some(&viewer(&signed)), Section::Processes, body),
    ))
}
