//! `/`: where a signed-in user starts. Agents start at their queues; requesters (until the
//! portal exists) see the tickets they raised.

use axum::http::StatusCode;
use axum::response::Response;
use itsmflow_engine::store::InstanceFilter;
use maud::html;

use super::queue::{stage_label, title, when};
use crate::serve::tenants::Backend;
use crate::web::layout::{self, Section, Viewer};
use crate::web::session::Signed;
use crate::web::WebResult;

/// `GET /`.
pub async fn home<B: Backend>(signed: Signed<B::Store>) -> WebResult<Response> {
    let who = &signed.ctx.who;
    if !who.is_requester_only() {
        return Ok(layout::see_other("/queues"));
    }
    // The filter the API's list forces on requesters: their own tickets.
    let filter = InstanceFilter {
        created_by: Some(who.user.clone()),
        ..Default::default()
    };
    let mine = signed
        .ctx
        .tenant
        .engine
        .list_instances(&filter, signed.ctx.limits.page(None)?)
        .await?;
    let viewer = Viewer {
        who,
        csrf: &signed.session.csrf,
    };
    let body = html! {
        h1 { "Your tickets" }
        @if mine.is_empty() { p { "You have raised no tickets." } }
        @else {
            table {
                thead { tr { th scope="col" { "Ticket" } th scope="col" { "Stage" } th scope="col" { "Raised" } } }
                tbody {
                    @for v in &mine {
                        tr {
                            td { a href=(format!("/tickets/{}", v.id().0)) { "#" (v.id().0) " " (title(v)) } }
                            td { (stage_label(v)) }
                            td { (when(v.created_at())) }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::send(
        StatusCode::OK,
        layout::page("Your tickets", Some(&viewer), Section::None, body),
    ))
}
