//! `/`: where a signed-in user starts.

use axum::response::Response;
use maud::html;

use crate::serve::tenants::Backend;
use crate::web::layout::{self, Section, Viewer};
use crate::web::session::Signed;
use crate::web::WebResult;

/// `GET /`.
pub async fn home<B: Backend>(signed: Signed<B::Store>) -> WebResult<Response> {
    let who = &signed.ctx.who;
    let viewer = Viewer {
        who,
        csrf: &signed.session.csrf,
    };
    let body = html! {
        h1 { "Welcome, " (who.user) }
        p { "Signed in to " (who.tenant) " as " (who.roles.join(", ")) "." }
    };
    Ok(layout::send(
        axum::http::StatusCode::OK,
        layout::page("Start", Some(&viewer), Section::None, body),
    ))
}
