//! Delivering the notifications outbox to a webhook.
//!
//! Each tenant's notifications that are due (not held to business hours any more) are POSTed,
//! one request each, as JSON to the configured URL and marked delivered once it answers 2xx.
//! Delivery is at least once: a crash between the answer and the mark sends it again, so the
//! receiver should ignore ids it has seen. A failing receiver is retried with back-off; the
//! rows wait in the outbox meanwhile, in order.

use std::sync::Arc;
use std::time::Duration;

use itsmflow_engine::runtime::{Engine, Notification};
use itsmflow_engine::store::Store;
use serde_json::json;

/// Look for new notifications this often while the outbox is empty.
const IDLE_POLL: Duration = Duration::from_secs(2);
const BATCH: u32 = 100;
const MAX_BACKOFF: Duration = Duration::from_secs(60);

#[derive(Clone, Debug)]
pub struct Webhook {
    url: String,
    client: reqwest::Client,
}

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("the webhook URL `{0}` must start with http:// (put a TLS-terminating relay in front of an https:// receiver)")]
    Scheme(String),
    #[error("cannot make an HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

impl Webhook {
    pub fn new(url: &str) -> Result<Self, WebhookError> {
        if !url.starts_with("http://") {
            return Err(WebhookError::Scheme(url.to_string()));
        }
        Ok(Webhook {
            url: url.to_string(),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()?,
        })
    }

    async fn send(&self, tenant: &str, n: &Notification) -> Result<(), String> {
        let body = json!({ "tenant": tenant, "notification": n });
        let resp = self
            .client
            .post(&self.url)
            .header("x-itsmflow-notification", n.id.to_string())
            .json(&body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(format!("the receiver answered {}", resp.status()))
        }
    }

    /// Deliver a tenant's notifications until the task is stopped.
    pub async fn deliver<S: Store>(self, tenant: String, engine: Arc<Engine<S>>) {
        let mut backoff = Duration::from_secs(1);
        loop {
            let due = match engine.notifications_to_deliver(BATCH, None).await {
                Ok(due) => due,
                Err(e) => {
                    tracing::warn!(%tenant, error = %e, "cannot read the notifications outbox");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            };
            if due.is_empty() {
                tokio::time::sleep(IDLE_POLL).await;
                continue;
            }
            for n in &due {
                // In order: a receiver that fails holds back the ones after it.
                while let Err(e) = self.send(&tenant, n).await {
                    tracing::warn!(%tenant, notification = n.id, error = %e, "webhook delivery failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                backoff = Duration::from_secs(1);
                if let Err(e) = engine.mark_delivered(&[n.id]).await {
                    tracing::warn!(%tenant, notification = n.id, error = %e, "delivered but not marked; it will be sent again");
                }
            }
        }
    }
}
