//! Errors: the `application/problem+json` body every refusal has (rendered by
//! `crate::serve::error::ApiError`; described here), the checker's report some carry, and the
//! problem responses many operations share.

use serde::Serialize;
use utoipa::ToSchema;

/// An error, as `application/problem+json` (RFC 9457). `type` is a stable identifier
/// `/problems/<slug>` that clients can match on; `detail` says what to fix (for 5xx it is generic
/// and the cause is logged with the request's `x-request-id`). Some problem types carry extension
/// members, listed here.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    #[schema(examples("/problems/missing-fields"))]
    pub kind: ProblemType,
    #[schema(examples("Required fields missing"))]
    pub title: String,
    #[schema(examples(422))]
    pub status: u16,
    #[schema(examples("`resolve` requires resolution"))]
    pub detail: String,
    /// `conflict` on a stale version: the id of the instance that changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<i64>,
    /// `not-found` for an unknown process: its name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process: Option<String>,
    /// `invalid-fields`: every field that is wrong, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
    /// `missing-fields`: the fields the action requires that are not set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fields: Option<Vec<String>>,
    /// `action-not-allowed`: the actions possible in the instance's stage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed: Option<Vec<String>>,
    /// `forbidden` by the process: the roles that may perform the action or work the queue.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
    /// `rule-refused`, `rule-failed`: the rule's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diagnostics: Option<DiagnosticReport>,
    /// `not-found` for an unknown version of a process: the version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    /// `migration-refused`: every problem of the plan, each with a stable code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problems: Option<Vec<super::migrations::MigrationProblem>>,
}

/// The problem's type: a stable identifier for clients to match on.
// `ApiError` renders problems; this type describes their `type` for the document.
#[allow(dead_code)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub enum ProblemType {
    #[serde(rename = "/problems/bad-request")]
    BadRequest,
    #[serde(rename = "/problems/invalid-request")]
    InvalidRequest,
    #[serde(rename = "/problems/unauthorized")]
    Unauthorized,
    #[serde(rename = "/problems/forbidden")]
    Forbidden,
    #[serde(rename = "/problems/not-found")]
    NotFound,
    #[serde(rename = "/problems/method-not-allowed")]
    MethodNotAllowed,
    #[serde(rename = "/problems/conflict")]
    Conflict,
    #[serde(rename = "/problems/unsupported-media-type")]
    UnsupportedMediaType,
    #[serde(rename = "/problems/too-large")]
    TooLarge,
    #[serde(rename = "/problems/uri-too-long")]
    UriTooLong,
    #[serde(rename = "/problems/invalid-definitions")]
    InvalidDefinitions,
    #[serde(rename = "/problems/invalid-fields")]
    InvalidFields,
    #[serde(rename = "/problems/missing-fields")]
    MissingFields,
    #[serde(rename = "/problems/unknown-action")]
    UnknownAction,
    #[serde(rename = "/problems/action-not-allowed")]
    ActionNotAllowed,
    #[serde(rename = "/problems/rule-refused")]
    RuleRefused,
    #[serde(rename = "/problems/condition-not-met")]
    ConditionNotMet,
    #[serde(rename = "/problems/link-refused")]
    LinkRefused,
    #[serde(rename = "/problems/rule-failed")]
    RuleFailed,
    #[serde(rename = "/problems/lease-lost")]
    LeaseLost,
    #[serde(rename = "/problems/task-claimed")]
    TaskClaimed,
    #[serde(rename = "/problems/task-done")]
    TaskDone,
    #[serde(rename = "/problems/internal")]
    Internal,
    #[serde(rename = "/problems/unavailable")]
    Unavailable,
    #[serde(rename = "/problems/timeout")]
    Timeout,
    #[serde(rename = "/problems/uncertain")]
    Uncertain,
    #[serde(rename = "/problems/checklist-incomplete")]
    ChecklistIncomplete,
    #[serde(rename = "/problems/no-open-approval")]
    NoOpenApproval,
    #[serde(rename = "/problems/level-closed")]
    LevelClosed,
    #[serde(rename = "/problems/segregation-of-duties")]
    SegregationOfDuties,
    #[serde(rename = "/problems/already-voted")]
    AlreadyVoted,
    #[serde(rename = "/problems/vote-delegated")]
    VoteDelegated,
    #[serde(rename = "/problems/not-an-approver")]
    NotAnApprover,
    #[serde(rename = "/problems/delegate-refused")]
    DelegateRefused,
    #[serde(rename = "/problems/migration-refused")]
    MigrationRefused,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FieldError {
    pub field: String,
    /// For an element of a list field: its position, from 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0)]
    pub index: Option<i64>,
    pub message: String,
}

/// `invalid-definitions`: every problem found in the uploaded project (as `itsmflow check --format
/// json`).
#[derive(Debug, Serialize, ToSchema)]
pub struct DiagnosticReport {
    pub errors: u32,
    pub warnings: u32,
    pub diagnostics: Vec<Diagnostic>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Diagnostic {
    #[schema(examples("E0201"))]
    pub code: String,
    pub severity: DiagnosticSeverity,
    pub message: String,
    pub file: String,
    #[schema(minimum = 1)]
    pub line: i64,
    #[schema(minimum = 1)]
    pub column: i64,
    #[schema(minimum = 1)]
    pub end_line: i64,
    #[schema(minimum = 1)]
    pub end_column: i64,
    pub label: String,
    pub related: Vec<DiagnosticRelated>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
}

// The checker renders diagnostics (`itsmflow_dsl::diagnostic::to_json`); this type
// describes them for the document.
#[allow(dead_code)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DiagnosticSeverity {
    Error,
    Warning,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DiagnosticRelated {
    pub file: String,
    #[schema(minimum = 1)]
    pub line: i64,
    #[schema(minimum = 1)]
    pub column: i64,
    #[schema(minimum = 1)]
    pub end_line: i64,
    #[schema(minimum = 1)]
    pub end_column: i64,
    pub message: String,
}

/// A problem response shared by many operations: registered once under
/// `#/components/responses/<name>` and referred to by the operations that answer it.
macro_rules! problem_response {
    ($(#[doc = $doc:literal])+ $name:ident $(, header $header:literal = $example:literal)?) => {
        $(#[doc = $doc])+
        pub struct $name;

        impl<'r> utoipa::ToResponse<'r> for $name {
            fn response() -> (&'r str, utoipa::openapi::RefOr<utoipa::openapi::Response>) {
                let description = [$($doc.trim()),+].join(" ");
                let content = utoipa::openapi::ContentBuilder::new()
                    .schema(Some(utoipa::openapi::Ref::from_schema_name("Problem")))
                    .build();
                #[allow(unused_mut)]
                let mut response = utoipa::openapi::ResponseBuilder::new()
                    .description(description)
                    .content("application/problem+json", content);
                $(
                    response = response.header(
                        $header,
                        utoipa::openapi::HeaderBuilder::new()
                            .schema(
                                utoipa::openapi::ObjectBuilder::new()
                                    .schema_type(utoipa::openapi::schema::Type::String)
                                    .examples([$example]),
                            )
                            .build(),
                    );
                )?
                (stringify!($name), response.build().into())
            }
        }
    };
}

problem_response! {
    /// `bad-request`: the request is malformed (JSON syntax, a malformed path or query
    /// parameter, an unknown query parameter, a bad `If-Match`).
    BadRequest
}
problem_response! {
    /// `unauthorized`: no bearer token, or it is unknown, revoked or expired.
    Unauthorized, header "WWW-Authenticate" = "Bearer realm=\"itsmflow\""
}
problem_response! {
    /// `forbidden`: the caller's roles do not allow this.
    Forbidden
}
problem_response! {
    /// `not-found`: the resource does not exist in the caller's tenant, or the caller may not
    /// see it.
    NotFound
}
problem_response! {
    /// `conflict`: the resource already exists, or changed since the given version.
    Conflict
}
problem_response! {
    /// `invalid-request`: the body or a parameter is well-formed but not acceptable (missing
    /// or unknown member, out-of-range value).
    Invalid
}
problem_response! {
    /// `too-large`: the body is larger than the server accepts (`--max-body-bytes`).
    TooLarge
}
problem_response! {
    /// `unsupported-media-type`: the body is not sent as `application/json`.
    UnsupportedMediaType
}
problem_response! {
    /// `unavailable`: the database did not answer; nothing was changed, retry later. Or
    /// `timeout`: the request took longer than `--request-timeout`; a change it made is either
    /// whole or absent, so read the resource again before retrying.
    Unavailable
}
