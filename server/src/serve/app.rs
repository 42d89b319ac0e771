//! The HTTP application: shared state, the route table and the layers every request passes
//! through (request id, tracing, metrics, time limit, body limit). The web pages' routes are
//! in `crate::web` and join these.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderName, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post, put};
use axum::Router;
use itsmflow_engine::runtime::Clock;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use super::auth::AuthCache;
use super::error::ApiError;
use super::metrics::Metrics;
use super::routes::{
    admin, approvals, catalog, checklists, definitions, health, instances, migrations,
    notifications, queues, tailoring, tasks,
};
use super::tenants::{Backend, Tenants};
use crate::identity::store::IdentityStore;

pub struct App<B: Backend> {
    pub identities: IdentityStore,
    pub tenants: Tenants<B>,
    pub auth_cache: AuthCache,
    pub metrics: Metrics,
    pub clock: Arc<dyn Clock>,
    pub limits: Limits,
    /// Set when the server stops, so long-lived responses (event streams) end.
    pub shutdown: tokio::sync::watch::Sender<bool>,
    /// Failed sign-ins to the web pages, to slow down password guessing.
    pub throttle: crate::web::throttle::Throttle,
}

#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest request body accepted, in bytes.
    pub max_body: usize,
    /// Largest page a list returns (and the default when none is asked for is smaller).
    pub max_page: u32,
    /// Requests taking longer are answered 503 (server-sent event streams excepted).
    pub request_timeout: Duration,
}

pub const DEFAULT_PAGE: u32 = 50;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body: 4 * 1024 * 1024,
            max_page: 500,
            request_timeout: Duration::from_secs(30),
        }
    }
}

impl Limits {
    /// The page size for a request's `limit`, refusing what is out of range.
    /// (Taken signed, so that `limit=-1` is out of range like `limit=0`, not malformed.)
    pub fn page(&self, asked: Option<i64>) -> Result<u32, ApiError> {
        match asked {
            None => Ok(DEFAULT_PAGE.min(self.max_page)),
            Some(n) if n < 1 => Err(ApiError::invalid("`limit` must be at least 1")),
            Some(n) => match u32::try_from(n) {
                Ok(n) if n <= self.max_page => Ok(n),
                _ => Err(ApiError::invalid(format!(
                    "`limit` may be at most {}",
                    self.max_page
                ))),
            },
        }
    }
}

static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole API.
pub fn router<B: Backend>(app: Arc<App<B>>) -> Router {
    let limits = app.limits;
    // Event streams stay open as long as the client wants, so they skip the time limit.
    let streams = Router::new()
        .route("/v1/queues/{queue}/events", get(queues::events::<B>))
        .route("/v1/me/approvals/events", get(approvals::events::<B>))
        // A migration of many tickets takes longer than a request may (see the module).
        .route("/v1/migrations", post(migrations::apply::<B>))
        .route("/v1/migrations/preview", post(migrations::preview::<B>));
    let api = Router::new()
        .route(
            "/v1/definitions",
            get(definitions::list::<B>).post(definitions::publish::<B>),
        )
        .route("/v1/definitions/{process}", get(definitions::versions::<B>))
        .route(
            "/v1/tailoring",
            get(tailoring::get::<B>)
                .put(tailoring::put::<B>)
                .delete(tailoring::delete::<B>),
        )
        .route(
            "/v1/definitions/{process}/versions/{version}",
            get(definitions::version::<B>),
        )
        .route(
            "/v1/definitions/{process}/graph",
            get(definitions::graph::<B>),
        )
        .route(
            "/v1/instances",
            get(instances::list::<B>).post(instances::create::<B>),
        )
        .route(
            "/v1/instances/{id}",
            get(instances::get::<B>).patch(instances::update::<B>),
        )
        .route(
            "/v1/instances/{id}/actions/{action}",
            post(instances::perform::<B>),
        )
        .route("/v1/instances/{id}/comments", post(instances::comment::<B>))
        .route("/v1/instances/{id}/checklist", get(checklists::list::<B>))
        .route(
            "/v1/instances/{id}/checklist/{item}",
            post(checklists::tick::<B>),
        )
        .route(
            "/v1/instances/{id}/links",
            get(instances::links::<B>).post(instances::link::<B>),
        )
        .route("/v1/instances/{id}/history", get(instances::history::<B>))
        .route("/v1/instances/{id}/clocks", get(instances::clocks::<B>))
        .route("/v1/instances/{id}/explain", get(instances::explain::<B>))
        .route("/v1/instances/{id}/approval", get(approvals::get::<B>))
        .route(
            "/v1/instances/{id}/approval/votes",
            post(approvals::vote::<B>),
        )
        .route(
            "/v1/instances/{id}/approval/delegations",
            post(approvals::delegate::<B>),
        )
        .route("/v1/me/approvals", get(approvals::mine::<B>))
        .route("/v1/catalog", get(catalog::get::<B>))
        .route("/v1/queues", get(queues::list::<B>))
        .route("/v1/queues/{queue}/tasks", get(queues::tasks::<B>))
        .route("/v1/queues/{queue}/claim", post(queues::claim_next::<B>))
        .route("/v1/tasks/{id}", get(tasks::get::<B>))
        .route("/v1/tasks/{id}/claim", post(tasks::claim::<B>))
        .route("/v1/tasks/{id}/renew", post(tasks::renew::<B>))
        .route("/v1/tasks/{id}/release", post(tasks::release::<B>))
        .route("/v1/tasks/{id}/complete", post(tasks::complete::<B>))
        .route("/v1/notifications", get(notifications::list::<B>))
        .route(
            "/v1/notifications/delivered",
            post(notifications::delivered::<B>),
        )
        .route("/v1/me", get(admin::me::<B>))
        .route("/v1/me/availability", put(admin::availability::<B>))
        .route(
            "/v1/users",
            get(admin::users::<B>).post(admin::create_user::<B>),
        )
        .route("/v1/users/{name}", patch(admin::set_attributes::<B>))
        .route("/v1/users/{name}/roles", put(admin::set_roles::<B>))
        .route("/v1/users/{name}/password", put(admin::set_password::<B>))
        .route("/v1/users/{name}/tokens", post(admin::create_token::<B>))
        .route("/v1/tokens", get(admin::tokens::<B>))
        .route("/v1/tokens/{id}", delete(admin::revoke_token::<B>))
        .route("/v1/tenants", post(admin::create_tenant::<B>))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz::<B>))
        .route("/metrics", get(health::metrics::<B>))
        .route("/openapi.json", get(health::openapi))
        // The web pages (`server/src/web`), under the same limits as the API.
        .merge(crate::web::pages::<B>())
        .layer(
            tower::ServiceBuilder::new()
                .layer(axum::error_handling::HandleErrorLayer::new(timed_out))
                .layer(tower::timeout::TimeoutLayer::new(limits.request_timeout)),
        );
    api.merge(streams)
        .merge(crate::web::streams::<B>())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limits.max_body))
        .layer(middleware::from_fn_with_state(
            app.clone(),
            super::request::guard::<B>,
        ))
        .layer(middleware::from_fn_with_state(app.clone(), record::<B>))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            let id = req
                .headers()
                .get(&REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            tracing::info_span!(
                "request",
                id,
                method = %req.method(),
                path = %req.uri().path(),
                user = tracing::field::Empty,
                tenant = tracing::field::Empty,
            )
        }))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID.clone()))
        .layer(SetRequestIdLayer::new(REQUEST_ID.clone(), MakeRequestUuid))
        .with_state(app)
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route; see /openapi.json")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "Method not allowed",
        "this route does not take this method; see /openapi.json",
    )
}

/// A request that ran out of time. Whatever it was doing was either committed whole or not
/// at all (every engine call is one transaction), so the client can read and retry.
async fn timed_out(_: tower::BoxError) -> ApiError {
    timeout_error()
}

/// The refusal of a request that took longer than `--request-timeout`.
pub fn timeout_error() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "timeout",
        "Request timed out",
        "the request took longer than the server allows; read the resource again before retrying",
    )
}

/// Count the request and its latency under its route template.
async fn record<B: Backend>(State(app): State<Arc<App<B>>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let response = next.run(req).await;
    app.metrics.record(
        &method,
        &route,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// JSON bodies that fail to parse are answered in the API's problem format.
///
/// Text holding a NUL character (`\u0000`) is refused too, naming where it is: PostgreSQL
/// cannot store one, so such a body would otherwise fail there with a 500 (and be accepted
/// on SQLite).
pub struct JsonBody<T>(pub T);

impl<T, S> axum::extract::FromRequest<S> for JsonBody<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !json_content_type(req.headers()) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "JSON expected",
                "send the body as JSON with `Content-Type: application/json`",
            ));
        }
        let bytes = match axum::body::Bytes::from_request(req, state).await {
            Ok(bytes) => bytes,
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(super::request::too_large(None))
            }
            Err(_) => {
                return Err(ApiError::bad_request(
                    "the request body could not be read to its end",
                ))
            }
        };
        let value = super::request::from_json::<T>(&bytes)?;
        if let Some(at) = nul_in_json(&bytes) {
            return Err(ApiError::invalid(format!(
                "`{at}` contains a NUL character (\\u0000), which text may not hold"
            )));
        }
        Ok(JsonBody(value))
    }
}

/// `application/json`, or another `application/…+json` type (what axum's `Json` accepts).
fn json_content_type(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim();
    let essence = essence.to_ascii_lowercase();
    essence
        .strip_prefix("application/")
        .is_some_and(|sub| sub == "json" || (sub.len() > 5 && sub.ends_with("+json")))
}

/// Where a JSON document holds a NUL character in a string or a member name, as a path
/// (`fields.title`, `files[0].text`), if it does. A NUL can only be written `\u0000` in JSON,
/// so documents without that text are not parsed again.
fn nul_in_json(bytes: &[u8]) -> Option<String> {
    if !bytes.windows(6).any(|w| w == b"\\u0000") {
        return None;
    }
    fn walk(v: &serde_json::Value, at: &str) -> Option<String> {
        match v {
            serde_json::Value::String(s) if s.contains('\0') => Some(at.to_string()),
            serde_json::Value::Array(items) => items
                .iter()
                .enumerate()
                .find_map(|(i, item)| walk(item, &format!("{at}[{i}]"))),
            serde_json::Value::Object(members) => members.iter().find_map(|(k, item)| {
                let here = if at.is_empty() {
                    k.clone()
                } else {
                    format!("{at}.{k}")
                };
                if k.contains('\0') {
                    Some(here)
                } else {
                    walk(item, &here)
                }
            }),
            _ => None,
        }
    }
    let doc: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    walk(&doc, "").map(|at| if at.is_empty() { "the body".into() } else { at })
}

/// An optional JSON body: absent when the request has none (no body and no content type).
impl<T, S> axum::extract::OptionalFromRequest<S> for JsonBody<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Option<Self>, Self::Rejection> {
        let headers = req.headers();
        let has_body = headers.contains_key(axum::http::header::TRANSFER_ENCODING)
            || headers
                .get(axum::http::header::CONTENT_LENGTH)
                .is_some_and(|l| l != "0");
        // No body is no body, whatever the content type says.
        if !has_body {
            return Ok(None);
        }
        <Self as axum::extract::FromRequest<S>>::from_request(req, state)
            .await
            .map(Some)
    }
}

/// A JSON response with a status.
pub fn json<T: serde::Serialize>(status: StatusCode, value: &T) -> Response {
    (status, axum::Json(value)).into_response()
}
