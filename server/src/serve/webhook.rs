//! Delivering the notifications outbox to a webhook.
//!
//! Each tenant's notifications that are due (not held to business hours any more) are POSTed,
//! one request each, as JSON to the configured URL and marked delivered once it answers 2xx.
//! A deliverer claims the rows it sends (a lease in the store, `Store::claim_deliveries`), so
//! deliverers on several nodes sharing one database never post the same notification twice at
//! once. Delivery is at least once: a crash between the answer and the mark, or a lease that
//! runs out while the receiver takes longer, sends it again, so the receiver should ignore ids
//! it has seen (the `x-itsmflow-notification` header). A failed attempt is tried again after a
//! growing pause (the row waits, the others go on); after `MAX_ATTEMPTS` the row is kept as a
//! dead letter with its last error (`GET /v1/notifications` shows both). The deliverer wakes
//! when this node commits a notification, and looks now and then for the rest (held ones that
//! fall due, other nodes' commits, retries).

use std::sync::Arc;
use std::time::Duration;

use super::wire::notifications as wire;
use itsmflow_engine::runtime::{Engine, Notification};
use itsmflow_engine::store::Store;

/// Look for notifications this often while nothing wakes the deliverer.
const IDLE_POLL: Duration = Duration::from_secs(2);
const BATCH: u32 = 100;
/// How long a claim keeps other deliverers off a row: well beyond a request's timeout.
const LEASE_SECS: i64 = 60;
/// Attempts before a notification is given up as a dead letter.
pub const MAX_ATTEMPTS: u32 = 10;
/// The pause after a failed attempt doubles from 1 s up to this.
const MAX_BACKOFF_SECS: i64 = 3600;
/// After a failure to read the outbox itself.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// The pause before attempt `attempts + 1` (after `attempts` failed): 1 s, 2 s, 4 s, ...
fn retry_in(attempts: u32) -> chrono::TimeDelta {
    let secs = 1i64
        .checked_shl(attempts.saturating_sub(1).min(30))
        .unwrap_or(MAX_BACKOFF_SECS);
    chrono::TimeDelta::seconds(secs.min(MAX_BACKOFF_SECS))
}

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
        let body = wire::WebhookPayload {
            tenant: tenant.to_string(),
            notification: n.into(),
        };
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
        let woken = engine.outbox_changes();
        let mut backoff = Duration::from_secs(1);
        loop {
            let due = match engine
                .claim_deliveries(BATCH, chrono::TimeDelta::seconds(LEASE_SECS))
                .await
            {
                Ok(due) => due,
                Err(e) => {
                    tracing::warn!(%tenant, error = %e, "cannot read the notifications outbox");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            };
            backoff = Duration::from_secs(1);
            if due.is_empty() {
                // Until this node commits a notification, or it is time to look again.
                let _ = tokio::time::timeout(IDLE_POLL, woken.notified()).await;
                continue;
            }
            for n in &due {
                let outcome = match self.send(&tenant, n).await {
                    Ok(()) => engine.mark_delivered(&[n.id]).await.map(|_| ()),
                    Err(e) => {
                        let retry = (n.attempts < MAX_ATTEMPTS).then(|| retry_in(n.attempts));
                        match retry {
                            Some(_) => {
                                tracing::warn!(%tenant, notification = n.id, attempts = n.attempts, error = %e, "webhook delivery failed; will retry")
                            }
                            None => {
                                tracing::error!(%tenant, notification = n.id, attempts = n.attempts, error = %e, "webhook delivery failed too often; kept as a dead letter")
                            }
                        }
                        engine.delivery_failed(n.id, &e, retry).await
                    }
                };
                if let Err(e) = outcome {
                    tracing::warn!(%tenant, notification = n.id, error = %e, "cannot record the delivery; it will be tried again when its claim runs out");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_to_an_hour() {
        let secs: Vec<i64> = [1, 2, 3, 4, 12, 13, 40]
            .into_iter()
            .map(|a| retry_in(a).num_seconds())
            .collect();
        assert_eq!(secs, [1, 2, 4, 8, 2048, 3600, 3600]);
    }
}
