//! Liveness and readiness.

use serde::Serialize;
use utoipa::ToSchema;

/// Whether the server is up (`ok`), can serve (`ready`) or cannot (`unavailable`).
#[derive(Debug, Serialize, ToSchema)]
pub struct Status {
    pub status: Health,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    Ok,
    Ready,
    Unavailable,
}

impl Health {
    pub fn body(self) -> Status {
        Status { status: self }
    }
}
