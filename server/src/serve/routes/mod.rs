//! Route handlers, one module per resource.

pub mod admin;
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
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(v)) => Ok(QueryArgs(v)),
            Err(e) => Err(ApiError::bad_request(e.body_text())),
        }
    }
}
