//! Liveness, readiness, metrics and the API description.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::database::DEFAULT_TENANT;
use crate::serve::app::{json, App};
use crate::serve::auth::Ctx;
use crate::serve::error::{ApiError, ApiResult};
use crate::serve::metrics::Gauge;
use crate::serve::tenants::Backend;
use crate::serve::wire;
use itsmflow_engine::store::Store;

#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "healthz",
    tag = "operations",
    summary = "Liveness: the process is up",
    security(()),
    responses(
        (status = 200, description = "OK", body = wire::health::Status)
    )
)]
/// The process is up.
pub async fn healthz() -> Response {
    json(StatusCode::OK, &wire::health::Health::Ok.body())
}

#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "readyz",
    tag = "operations",
    summary = "Readiness: the databases answer",
    security(()),
    responses(
        (status = 200, description = "Ready (`{\"status\": \"ready\"}`).", body = wire::health::Status),
        (status = 503, description = "Not ready (`{\"status\": \"unavailable\"}`).", body = wire::health::Status)
    )
)]
/// The server can serve: its databases answer.
pub async fn readyz<B: Backend>(State(app): State<Arc<App<B>>>) -> Response {
    let identities = app.identities.ping().await;
    let store = match app.tenants.get(DEFAULT_TENANT).await {
        Ok(t) => t
            .engine
            .queue_counts()
            .await
            .map(|_| ())
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    match (identities, store) {
        (Ok(()), Ok(())) => json(StatusCode::OK, &wire::health::Health::Ready.body()),
        (i, s) => {
            tracing::warn!(identities = ?i.err(), store = ?s.err(), "not ready");
            json(
                StatusCode::SERVICE_UNAVAILABLE,
                &wire::health::Health::Unavailable.body(),
            )
        }
    }
}

#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "operations",
    summary = "Prometheus metrics",
    description = "They span every tenant, so only administrators of the `default` tenant may read them.",
    responses(
        (status = 200, description = "The text exposition format: `itsmflow_http_requests_total`, `itsmflow_http_request_duration_seconds`, `itsmflow_queue_tasks`.", body = String, content_type = "text/plain"),
        (status = 401, response = wire::problem::Unauthorized),
        (status = 403, description = "`forbidden`: metrics are for administrators of the `default` tenant.", body = wire::problem::Problem, content_type = "application/problem+json"),
        (status = 503, response = wire::problem::Unavailable)
    )
)]
/// Prometheus metrics. They span every tenant, so only administrators of the default tenant
/// (the operators) may read them.
pub async fn metrics<B: Backend>(
    State(app): State<Arc<App<B>>>,
    ctx: Ctx<B::Store>,
) -> ApiResult<Response> {
    if ctx.who.tenant != DEFAULT_TENANT || !ctx.who.is_admin() {
        return Err(ApiError::forbidden(
            "metrics are for administrators of the default tenant",
        ));
    }
    let mut depth = Vec::new();
    let mut next_timer = Vec::new();
    let mut fired = Vec::new();
    let mut breaches = Vec::new();
    let now = app.clock.now();
    for t in app.tenants.opened().await {
        let tenant = || vec![("tenant", t.name.clone())];
        for (queue, n) in t.engine.queue_counts().await? {
            depth.push((vec![("tenant", t.name.clone()), ("queue", queue)], n as f64));
        }
        if let Some(at) = t.engine.store().next_wakeup_at().await? {
            next_timer.push((tenant(), (at - now).num_milliseconds() as f64 / 1000.0));
        }
        fired.push((tenant(), t.fired().await as f64));
        breaches.push((
            tenant(),
            t.breaches.load(std::sync::atomic::Ordering::Relaxed) as f64,
        ));
    }
    let text = app.metrics.render(&[
        Gauge {
            name: "itsmflow_queue_tasks",
            help: "Tasks not done, per queue.",
            values: depth,
        },
        Gauge {
            name: "itsmflow_next_timer_seconds",
            help: "Seconds until the earliest pending timer is due; negative when timers are overdue (the scheduler is behind).",
            values: next_timer,
        },
        Gauge {
            name: "itsmflow_timers_fired",
            help: "Timer points (escalation steps, breaches, automatic transitions) fired by this node since it started.",
            values: fired,
        },
        Gauge {
            name: "itsmflow_breaches",
            help: "Service clocks found past their target by this node since it started.",
            values: breaches,
        },
    ]);
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "openapi",
    tag = "operations",
    summary = "This API description",
    security(()),
    responses(
        (status = 200, description = "This document.", body = Object)
    )
)]
/// The OpenAPI description of this API.
pub async fn openapi() -> Response {
    static DOCUMENT: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(crate::serve::openapi::document);
    (
        [(header::CONTENT_TYPE, "application/json")],
        DOCUMENT.as_str(),
    )
        .into_response()
}
