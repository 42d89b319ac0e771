//! The checklist of a ticket's stage, and the body that ticks or clears an item.

use itsmflow_engine::runtime::types::ChecklistEntry;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The items of the checklist of the instance's stage (none when the stage has no checklist).
#[derive(Debug, Serialize, ToSchema)]
pub struct Checklist {
    pub items: Vec<ChecklistItem>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChecklistItem {
    pub item: String,
    /// As the definition labels it; absent when it does not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    pub done: bool,
}

impl From<&ChecklistEntry> for ChecklistItem {
    fn from(e: &ChecklistEntry) -> Self {
        ChecklistItem {
            item: e.item.clone(),
            label: e.label.clone(),
            done: e.done,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChecklistTick {
    /// `true` ticks the item, `false` clears it.
    pub done: bool,
    /// The instance's version this change expects (or send `If-Match`; both must agree).
    #[serde(default)]
    #[schema(minimum = 1)]
    pub version: Option<i64>,
}
