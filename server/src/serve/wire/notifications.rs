//! The notifications outbox: its rows, pages of them, marking them delivered, and the body
//! the webhook sends.

use chrono::{DateTime, Utc};
use itsmflow_engine::runtime as engine;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// A row of the notifications outbox: written by an escalation step that notifies a role, or by an
/// approval (approvers asked, reminded or handed a delegated vote; process managers told of a level
/// that cannot be met).
#[derive(Debug, Serialize, ToSchema)]
pub struct Notification {
    /// Increasing; the cursor of `after`, and what `POST /v1/notifications/delivered` takes.
    pub id: i64,
    pub instance: i64,
    /// The role to tell.
    pub role: String,
    /// The clock whose escalation step wrote it (`respond`, `resolve`).
    #[schema(required = true)]
    pub clock: Option<String>,
    /// The step's threshold, as written in the definition (`50%`, `2h`).
    #[schema(required = true)]
    pub threshold: Option<String>,
    #[schema(examples("incident 12 reached 50% of its resolve target (P1)"))]
    pub message: String,
    pub created_at: DateTime<Utc>,
    /// When it is to be delivered: `created_at`, or the next business opening for a step `during
    /// business hours`.
    pub deliver_at: DateTime<Utc>,
    /// When it was marked delivered; null until then.
    #[schema(required = true)]
    pub delivered_at: Option<DateTime<Utc>>,
    /// The people it is for, when it is for some holders of the role only (the approvers of a level
    /// who have not voted, a delegate); empty for every holder of the role.
    pub recipients: Vec<String>,
    /// Delivery attempts so far (each claim by a deliverer counts one).
    pub attempts: u32,
    /// Why the last delivery attempt failed, if it did.
    #[schema(required = true)]
    pub last_error: Option<String>,
    /// When delivery was given up after too many failed attempts (a dead letter, kept for
    /// inspection).
    #[schema(required = true)]
    pub dead_at: Option<DateTime<Utc>>,
}

/// A page of notifications, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationPage {
    pub items: Vec<Notification>,
    /// Pass as `after` (with the same filters) for the next page; null when this page is not full.
    #[schema(required = true)]
    pub next_after: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveredResult {
    /// How many of them were not marked delivered before (unknown and already delivered ids are not
    /// counted).
    pub marked: u64,
}

/// Not an endpoint: the body `itsmflow serve --webhook-url URL` POSTs to `URL` for each due
/// notification, with the header `x-itsmflow-notification: <id>`. A 2xx answer marks it delivered;
/// anything else is retried with back-off. Delivery is at least once: ignore ids already seen.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookPayload {
    pub tenant: String,
    pub notification: Notification,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeliveredRequest {
    /// Notification ids: 1 to `--max-page` of them.
    #[schema(min_items = 1)]
    pub ids: Vec<i64>,
}

impl From<&engine::Notification> for Notification {
    fn from(n: &engine::Notification) -> Self {
        Notification {
            id: n.id,
            instance: n.instance.0,
            role: n.role.clone(),
            clock: n.clock.clone(),
            threshold: n.threshold.clone(),
            message: n.message.clone(),
            created_at: n.created_at,
            deliver_at: n.deliver_at,
            delivered_at: n.delivered_at,
            recipients: n.recipients.clone(),
            attempts: n.attempts,
            last_error: n.last_error.clone(),
            dead_at: n.dead_at,
        }
    }
}

/// Which notifications to list, oldest first.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct NotificationQuery {
    /// Only notifications to this role. Required unless the caller is an administrator:
    /// people see the notifications addressed to a role they hold.
    pub role: Option<String>,
    /// Only those about this instance.
    pub instance: Option<i64>,
    /// Only those not yet marked delivered.
    #[serde(default)]
    pub undelivered: bool,
    /// Only those whose `deliver_at` has come (held ones wait for business hours).
    #[serde(default)]
    pub due: bool,
    /// `next_after` of the previous page: only ids after it.
    pub after: Option<i64>,
    /// Page size: 1 to the server's `--max-page` (default 500); 50 if absent. Out of range is a
    /// 422.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}
