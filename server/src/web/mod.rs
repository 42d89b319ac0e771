//! The web workspace: server-rendered HTML pages served by `itsmflow serve` beside the API,
//! at `/`. Assets are compiled into the binary; live updates come from the API's queue event
//! streams; forms are plain HTML forms (a small script adds live rows and keyboard shortcuts).
//!
//! Boundary: pages decide nothing about who may do what. A page builds the same [`Ctx`] a
//! bearer token gives the API (from the session, [`session::Signed`]) and calls the same
//! functions the API's handlers call (`serve::routes::*`), which check roles, tenants and
//! visibility and call the engine; pages only render what comes back, refusals included.
//!
//! [`Ctx`]: crate::serve::auth::Ctx

pub mod assets;
pub mod csrf;
pub mod graph_svg;
pub mod layout;
pub mod pages;
pub mod session;
pub mod standing;
pub mod throttle;

use std::sync::Arc;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::html;

use crate::serve::app::App;
use crate::serve::error::ApiError;
use crate::serve::tenants::Backend;

/// Why a page could not be shown or a form not taken.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// Not signed in: go to the sign-in page, then back to `next`.
    #[error("sign in first")]
    SignIn { next: String },
    /// Refused before anything ran: no session for a form, or a missing or wrong CSRF token.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    BadForm(String),
    /// What the API would have answered.
    #[error("{}", .0.detail)]
    Api(ApiError),
}

impl From<ApiError> for WebError {
    fn from(e: ApiError) -> Self {
        WebError::Api(e)
    }
}

impl From<itsmflow_engine::runtime::EngineError> for WebError {
    fn from(e: itsmflow_engine::runtime::EngineError) -> Self {
        WebError::Api(e.into())
    }
}

pub type WebResult<T> = Result<T, WebError>;

impl WebError {
    pub fn status(&self) -> StatusCode {
        match self {
            WebError::SignIn { .. } => StatusCode::SEE_OTHER,
            WebError::Forbidden(_) => StatusCode::FORBIDDEN,
            WebError::BadForm(_) => StatusCode::BAD_REQUEST,
            WebError::Api(e) => e.status,
        }
    }

    /// A heading for the error page.
    fn title(&self) -> &'static str {
        match self {
            WebError::SignIn { .. } => "Sign in",
            WebError::Forbidden(_) => "Not allowed",
            WebError::BadForm(_) => "The form could not be read",
            WebError::Api(e) => e.title,
        }
    }
}

/// Where to go after signing in: a path of this site only (never `//elsewhere` or a URL), so
/// the sign-in page cannot be used to send people to another site.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.into(),
        _ => "/".into(),
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        if let WebError::SignIn { next } = &self {
            let next = safe_next(Some(next));
            let to = if next == "/" {
                "/sign-in".to_string()
            } else {
                format!("/sign-in?next={}", pages::auth::encode(&next))
            };
            return layout::see_other(&to);
        }
        let status = self.status();
        let detail = self.to_string();
        let body = html! {
            div.card.narrow {
                h1 { (self.title()) }
                p.error role="alert" { (detail) }
                p { a href="/" { "Back to the start page" } }
            }
        };
        layout::send(
            status,
            layout::page(self.title(), None, layout::Section::None, body),
        )
    }
}

/// Every page, form and asset (taking the API's time limit with the routes they join).
pub fn pages<B: Backend>() -> Router<Arc<App<B>>> {
    use pages::{
        account, admin, auth, catalogue, editor, home, migration, portal, process_tests, processes,
        queue, saved_filters, ticket,
    };
    Router::new()
        .route("/", get(home::home::<B>))
        .route("/sign-in", get(auth::form::<B>).post(auth::sign_in::<B>))
        .route("/sign-out", post(auth::sign_out::<B>))
        .route(
            "/setup/{secret}",
            get(auth::setup_form::<B>).post(auth::setup::<B>),
        )
        .route("/account", get(account::page::<B>))
        .route("/account/password", post(account::password::<B>))
        .route("/portal", get(portal::catalogue::<B>))
        .route(
            "/portal/new/{process}",
            get(portal::new_form::<B>).post(portal::raise::<B>),
        )
        .route(portal::MY_TICKETS, get(portal::mine::<B>))
        .route(
            "/portal/items/{item}",
            get(catalogue::new_form::<B>).post(catalogue::raise::<B>),
        )
        .route("/admin", get(admin::users::<B>))
        .route("/admin/users", post(admin::create_user::<B>))
        .route("/admin/users/{name}", get(admin::user::<B>))
        .route("/admin/users/{name}/roles", post(admin::roles::<B>))
        .route(
            "/admin/users/{name}/attributes",
            post(admin::attributes::<B>),
        )
        .route(
            "/admin/users/{name}/password",
            post(admin::set_password::<B>),
        )
        .route("/admin/users/{name}/tokens", post(admin::issue_token::<B>))
        .route("/admin/tokens", get(admin::tokens::<B>))
        .route("/admin/tokens/{id}/revoke", post(admin::revoke::<B>))
        .route(
            "/admin/tenants",
            get(admin::tenants::<B>).post(admin::create_tenant::<B>),
        )
        .route("/processes", get(processes::list::<B>))
        .route("/processes/edit", get(editor::page::<B>))
        .route("/processes/edit/check", post(editor::check_page::<B>))
        .route(
            "/processes/edit/diagnostics",
            post(editor::diagnostics::<B>),
        )
        .route("/processes/edit/format", post(editor::format_page::<B>))
        .route("/processes/edit/review", post(editor::review::<B>))
        .route("/processes/edit/publish", post(editor::publish::<B>))
        .route("/processes/edit/tests", post(process_tests::run::<B>))
        .route("/processes/{process}", get(processes::page::<B>))
        .route("/processes/{process}/migrate", get(migration::page::<B>))
        .route("/queues", get(queue::list::<B>))
        .route("/queues/{queue}", get(queue::page::<B>))
        .route("/queues/{queue}/rows", get(queue::rows::<B>))
        .route("/queues/{queue}/claim", post(queue::claim_next::<B>))
        .route("/queues/{queue}/filters", post(saved_filters::save::<B>))
        .route(
            "/queues/{queue}/filters/delete",
            post(saved_filters::delete::<B>),
        )
        .route("/tickets/{id}", get(ticket::page::<B>))
        .route("/tickets/{id}/actions/{action}", post(ticket::act::<B>))
        .route("/tickets/{id}/comments", post(ticket::comment::<B>))
        .route("/tickets/{id}/checklist/{item}", post(ticket::check::<B>))
        .route("/tickets/{id}/claim", post(ticket::claim::<B>))
        .route("/tickets/{id}/renew", post(ticket::renew::<B>))
        .route("/tickets/{id}/release", post(ticket::release::<B>))
        .route("/tickets/{id}/votes", post(ticket::vote::<B>))
        .route("/assets/{file}", get(assets::get))
        .layer(middleware::from_fn(harden))
}

/// The pages without the time limit: the live streams (they stay open), and moving live
/// tickets (it runs as long as the tickets take).
pub fn streams<B: Backend>() -> Router<Arc<App<B>>> {
    Router::new()
        .route("/queues/{queue}/events", get(pages::queue::events::<B>))
        // A migration of many tickets takes longer than a page may (as its API route does).
        .route(
            "/processes/{process}/migrate",
            axum::routing::post(pages::migration::post::<B>),
        )
        .layer(middleware::from_fn(harden))
}

async fn harden(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    layout::harden(response.headers_mut());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        assert_eq!(safe_next(Some("/queues/x")), "/queues/x");
        assert_eq!(safe_next(Some("//evil.example/")), "/");
        assert_eq!(safe_next(Some("https://evil.example/")), "/");
        assert_eq!(safe_next(Some("/\\evil.example")), "/");
        assert_eq!(safe_next(None), "/");
    }
}
