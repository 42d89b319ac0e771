//! A tenant's tailoring of the standard processes.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value as Json;
use utoipa::ToSchema;

use super::problem::DiagnosticReport;
use crate::identity::store::StoredTailoring;
use crate::serve::tenants;

/// The tenant's tailoring: its files, who set them when, and whether the tenant runs them.
#[derive(Debug, Serialize, ToSchema)]
pub struct Tailoring {
    pub files: Vec<TailoringFile>,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
    /// What became of the tailoring when the standard processes were last published to the
    /// tenant by this node; null before that.
    #[schema(required = true)]
    pub state: Option<TailoringState>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TailoringFile {
    pub name: String,
    pub text: String,
}

/// Whether the tenant runs the standard processes with its tailoring applied (`applied`), or
/// keeps the versions it had because they do not check with it (`not_applied`, with the
/// checker's report).
#[derive(Debug, Serialize, ToSchema)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum TailoringState {
    Applied {
        at: DateTime<Utc>,
    },
    NotApplied {
        at: DateTime<Utc>,
        #[schema(value_type = DiagnosticReport)]
        diagnostics: Json,
    },
}

impl From<&tenants::TailoringState> for TailoringState {
    fn from(s: &tenants::TailoringState) -> Self {
        match s {
            tenants::TailoringState::Applied { at } => TailoringState::Applied { at: *at },
            tenants::TailoringState::NotApplied { at, diagnostics } => TailoringState::NotApplied {
                at: *at,
                diagnostics: diagnostics.clone(),
            },
        }
    }
}

impl Tailoring {
    pub fn new(stored: StoredTailoring, state: Option<&tenants::TailoringState>) -> Self {
        Tailoring {
            files: stored
                .files
                .into_iter()
                .map(|(name, text)| TailoringFile { name, text })
                .collect(),
            updated_at: stored.updated_at,
            updated_by: stored.updated_by,
            state: state.map(TailoringState::from),
        }
    }
}
