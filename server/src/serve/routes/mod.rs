//! Route handlers, one module per resource.

pub mod admin;
pub mod approvals;
pub mod catalog;
pub mod checklists;
pub mod definitions;
pub mod health;
pub mod instances;
pub mod migrations;
pub mod notifications;
pub mod queues;
pub mod tailoring;
pub mod tasks;

use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequestParts, MatchedPath, Path, Query};
use axum::http::request::Parts;

use super::error::ApiError;
use super::request;

/// Path parameters; a malformed one (`/v1/instances/abc`) is a 400 in the problem format.
pub struct PathArgs<T>(pub T);

impl<T, S> FromRequestParts<S> for PathArgs<T>
where
    T: serde::de::DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        // No name holds a NUL character, and PostgreSQL cannot even look one up (a 500 there).
        if parts.uri.path().contains("%00") {
            return Err(ApiError::invalid(
                "the path contains a NUL character (%00), which no name holds",
            ));
        }
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(v)) => Ok(PathArgs(v)),
            Err(e) => Err(path_refused(parts, e)),
        }
    }
}

/// A path parameter that does not parse, named as the route names it (`{id}`), with what it
/// must be.
fn path_refused(parts: &Parts, e: PathRejection) -> ApiError {
    use axum::extract::path::ErrorKind;
    let PathRejection::FailedToDeserializePathParams(failed) = e else {
        return ApiError::internal(e.body_text());
    };
    // The route's parameter names, in order: `/v1/definitions/{process}/versions/{version}`.
    let names: Vec<String> = parts
        .extensions
        .get::<MatchedPath>()
        .map(|m| {
            m.as_str()
                .split('/')
                .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
                .map(|n| n.trim_start_matches('*').to_string())
                .collect()
        })
        .unwrap_or_default();
    let must = |key: &str, value: &str, expected: &str| {
        ApiError::bad_request(format!(
            "path parameter `{key}` must be {}, not `{value}`",
            request::expected_text(expected)
        ))
    };
    match failed.kind() {
        ErrorKind::ParseErrorAtKey {
            key,
            value,
            expected_type,
        } => must(key, value, expected_type),
        ErrorKind::ParseErrorAtIndex {
            index,
            value,
            expected_type,
        } => must(
            names.get(*index).map_or("?", String::as_str),
            value,
            expected_type,
        ),
        ErrorKind::ParseError {
            value,
            expected_type,
        } => must(
            names.first().map_or("?", String::as_str),
            value,
            expected_type,
        ),
        ErrorKind::InvalidUtf8InPathParam { key } => ApiError::bad_request(format!(
            "path parameter `{key}` is not UTF-8 once percent-decoded"
        )),
        ErrorKind::DeserializeError {
            key,
            value,
            message,
        } => ApiError::bad_request(format!(
            "path parameter `{key}` cannot be `{value}`: {message}"
        )),
        _ => ApiError::internal(failed.body_text()),
    }
}

/// Query parameters; malformed ones are a 400 in the problem format.
pub struct QueryArgs<T>(pub T);

impl<T, S> FromRequestParts<S> for QueryArgs<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let v = request::from_query::<T>(parts.uri.query().unwrap_or_default())?;
        // A NUL character cannot be stored or looked up in PostgreSQL (a 500 there).
        if parts.uri.query().is_some_and(|q| q.contains("%00")) {
            if let Ok(Query(pairs)) = Query::<Vec<(String, String)>>::try_from_uri(&parts.uri) {
                if let Some((name, _)) = pairs
                    .iter()
                    .find(|(k, v)| k.contains('\0') || v.contains('\0'))
                {
                    return Err(ApiError::invalid(format!(
                        "query parameter `{name}` contains a NUL character (%00)"
                    )));
                }
            }
        }
        Ok(QueryArgs(v))
    }
}
