//! Every error the API returns, as `application/problem+json` (RFC 9457).
//!
//! Each kind has a stable `type` (`/problems/<slug>`, listed in docs/api.md) that clients can
//! match on. 4xx details say what to fix; 5xx details are generic and the cause goes to the
//! log with the request id, never to the client.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use itsmflow_engine::runtime::{ApprovalRefusal, EngineError, Task, TaskState};
use itsmflow_engine::store::StoreError;
use serde_json::{json, Map, Value as Json};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    /// The slug of the problem type.
    pub kind: &'static str,
    pub title: &'static str,
    pub detail: String,
    /// Extension members (e.g. `diagnostics`, `errors`, `allowed`).
    pub extra: Map<String, Json>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(
        status: StatusCode,
        kind: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        ApiError {
            status,
            kind,
            title,
            detail: detail.into(),
            extra: Map::new(),
        }
    }

    pub fn with(mut self, key: &str, value: Json) -> Self {
        self.extra.insert(key.to_string(), value);
        self
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Authentication required",
            detail,
        )
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", "Not allowed", detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", "Not found", detail)
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "bad-request",
            "Malformed request",
            detail,
        )
    }

    pub fn invalid(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-request",
            "Invalid request",
            detail,
        )
    }

    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", "Conflict", detail)
    }

    pub fn lease_lost(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "lease-lost", "Lease lost", detail)
    }

    /// Why renewing, releasing or completing task `id` as `caller` under fencing token `token`
    /// was refused, from the task as it now is (`None`: there is no such task). Says whose the
    /// claim is, so that an administrator presenting someone else's token is not told that
    /// their claim expired.
    pub fn lease_refused(id: i64, token: i64, caller: &str, now: Option<&Task>) -> Self {
        let Some(task) = now else {
            return ApiError::not_found(format!("no task {id}"));
        };
        let holder = task.claimed_by.as_deref();
        let detail = match task.state {
            TaskState::Done => {
                format!("task {id} is done: there is no claim on it to renew, release or complete")
            }
            TaskState::Claimed if holder.is_some_and(|h| h != caller) => {
                let holder = holder.unwrap_or_default();
                if task.token == token {
                    format!(
                        "token {token} is {holder}'s claim on task {id}, not yours: only the agent \
                         who claimed a task renews, releases or completes it under its token"
                    )
                } else {
                    format!(
                        "task {id} is claimed by {holder}, and token {token} is not a claim of \
                         yours on it (if it was, it ran out and {holder} claimed the task since)"
                    )
                }
            }
            TaskState::Claimed if task.token != token => format!(
                "token {token} is not your current claim on task {id}: you claimed it again \
                 since, under token {}; present that one",
                task.token
            ),
            TaskState::Claimed => format!(
                "your claim on task {id} under token {token} changed while this request was \
                 handled; read the task and claim it again"
            ),
            _ => format!(
                "task {id} is not claimed by anyone now: the claim under token {token} was \
                 released or withdrawn; claim it again"
            ),
        };
        ApiError::lease_lost(detail)
    }

    /// A failure that is ours, not the client's: logged in full, reported without details.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal server error",
            "the server failed to handle the request; it has been logged with this request's id",
        )
    }

    pub fn unavailable(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "storage unavailable");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Service unavailable",
            "the database did not accept the request; nothing was changed, retry later",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = Map::new();
        body.insert("type".into(), json!(format!("/problems/{}", self.kind)));
        body.insert("title".into(), json!(self.title));
        body.insert("status".into(), json!(self.status.as_u16()));
        body.insert("detail".into(), json!(self.detail));
        body.extend(self.extra);
        let mut response = (self.status, Json::Object(body).to_string()).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"itsmflow\""),
            );
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict { id, expected } => ApiError::conflict(format!(
                "instance {id} was changed by someone else since version {expected}; \
                 read it again and retry with its current version"
            ))
            .with("instance_id", json!(id)),
            StoreError::LeaseLost(task) => ApiError::lease_lost(format!(
                "the claim on task {task} under this token is no longer the caller's (it ran \
                 out and the task was claimed again, was released, or the task was completed)"
            )),
            StoreError::Claimed { task, by } => Self::new(
                StatusCode::CONFLICT,
                "task-claimed",
                "Task claimed by someone else",
                format!("task {task} is claimed by {by}"),
            ),
            StoreError::TaskDone(task) => Self::new(
                StatusCode::CONFLICT,
                "task-done",
                "Task already done",
                format!("task {task} is already done"),
            ),
            StoreError::NoTask(task) => ApiError::not_found(format!("no task {task}")),
            StoreError::NoInstance(id) => ApiError::not_found(format!("no instance {id}")),
            StoreError::Unavailable(e) => ApiError::unavailable(e),
            StoreError::Uncertain(cause) => {
                tracing::error!(error = %cause, "storage connection lost during a write");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "uncertain",
                    "Outcome unknown",
                    "the connection to the database failed during the write, which may have been applied: read the instance before trying again",
                )
            }
            other => ApiError::internal(other),
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        let detail = e.to_string();
        match e {
            // Definitions are uploaded through the definitions route, which reports these in
            // full; anywhere else they mean stored definitions no longer check.
            EngineError::InvalidDefinitions(_) => ApiError::internal(detail),
            EngineError::UnknownProcess(p) => ApiError::not_found(detail).with("process", json!(p)),
            EngineError::UnknownItem(i) => ApiError::not_found(detail).with("item", json!(i)),
            EngineError::InstanceNotFound(_) | EngineError::TaskNotFound(_) => {
                ApiError::not_found(detail)
            }
            EngineError::UnknownQueue(_) => ApiError::not_found(detail),
            EngineError::UnknownVersion { process, version } => ApiError::not_found(detail)
                .with("process", json!(process))
                .with("version", json!(version)),
            EngineError::MigrationRefused(problems) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "migration-refused",
                "Migration plan refused",
                format!("{detail}; nothing was changed"),
            )
            .with("problems", json!(problems)),
            EngineError::InvalidFields(errors) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-fields",
                "Invalid fields",
                detail,
            )
            .with(
                "errors",
                Json::Array(
                    errors
                        .iter()
                        .map(|e| match e.index {
                            Some(i) => json!({"field": e.field, "index": i, "message": e.message}),
                            None => json!({"field": e.field, "message": e.message}),
                        })
                        .collect(),
                ),
            ),
            EngineError::UnknownAction { .. } => Self::new(
                StatusCode::NOT_FOUND,
                "unknown-action",
                "Unknown action",
                detail,
            ),
            EngineError::ActionNotAllowed { allowed, .. } => Self::new(
                StatusCode::CONFLICT,
                "action-not-allowed",
                "Action not possible in this stage",
                detail,
            )
            .with("allowed", json!(allowed)),
            EngineError::Forbidden { roles, people, .. } => ApiError::forbidden(detail)
                .with("roles", json!(roles))
                .with("people", json!(people)),
            EngineError::NotQueueMember { roles, .. } => {
                ApiError::forbidden(detail).with("roles", json!(roles))
            }
            EngineError::ChecklistIncomplete { items, .. } => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "checklist-incomplete",
                "The checklist is not done",
                detail,
            )
            .with("items", json!(items)),
            EngineError::UnknownChecklistItem { known, .. } => {
                ApiError::not_found(detail).with("items", json!(known))
            }
            EngineError::MissingFields { fields, .. } => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "missing-fields",
                "Required fields missing",
                detail,
            )
            .with("fields", json!(fields)),
            EngineError::GuardFailed { rule, .. } => Self::new(
                StatusCode::CONFLICT,
                "rule-refused",
                "A rule does not allow this",
                detail,
            )
            .with("rule", json!(rule)),
            EngineError::ConditionFailed { condition, .. } => Self::new(
                StatusCode::CONFLICT,
                "condition-not-met",
                "The action's condition does not hold",
                detail,
            )
            .with("condition", json!(condition)),
            EngineError::LinkRefused { known, .. } => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "link-refused",
                "The link cannot be made",
                detail,
            )
            .with("kinds", json!(known)),
            EngineError::RuleFailed { rule, .. } => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "rule-failed",
                "A rule could not be evaluated",
                detail,
            )
            .with("rule", json!(rule)),
            EngineError::SpawnFailed { source, .. } => {
                let mut inner = ApiError::from(*source);
                inner.detail = detail;
                inner
            }
            EngineError::ApprovalRefused { instance, refusal } => {
                let (status, title) = match refusal {
                    ApprovalRefusal::OwnTicket | ApprovalRefusal::NotApprover { .. } => {
                        (StatusCode::FORBIDDEN, "Not an approver of this ticket")
                    }
                    ApprovalRefusal::BadDelegate { .. } => {
                        (StatusCode::UNPROCESSABLE_ENTITY, "Delegation refused")
                    }
                    ApprovalRefusal::NoApproval { .. }
                    | ApprovalRefusal::LevelClosed { .. }
                    | ApprovalRefusal::AlreadyVoted { .. }
                    | ApprovalRefusal::Delegated { .. } => {
                        (StatusCode::CONFLICT, "The vote cannot be taken")
                    }
                };
                Self::new(status, refusal.code(), title, detail)
                    .with("instance_id", json!(instance))
            }
            EngineError::Store(e) => e.into(),
        }
    }
}
