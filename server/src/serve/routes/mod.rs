//! Route handlers, one module per resource.

pub mod admin;
pub mod approvals;
pub mod catalog;
pub mod definitions;
pub mod health;
pub mod instances;
pub mod notifications;
pub mod queues;
pub mod tasks;

use axum::extract::{FromRequestParts, Path, Query};
use axum::http::request::Parts;

use super::error::ApiError;

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
            Err(e) => Err(ApiError::bad_request(e.body_text())),
        }
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

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let v = match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(v)) => v,
            Err(e) => return Err(ApiError::bad_request(e.body_text())),
        };
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
