//! Queue events across nodes that share one PostgreSQL database, so an agent's queue view
//! hears what every node does, not only the node it is connected to.
//!
//! Each node sends the events it publishes with `NOTIFY` (batched, off the request path: a
//! request never waits for it) and `LISTEN`s for the other nodes' events, which it hands to
//! its own subscribers. Delivery is best effort, like the events themselves: a subscriber that
//! must not miss anything reloads the queue on `lagged`, or on reconnecting.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::json;
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::sync::mpsc;

use super::app::App;
use super::events::QueueEvent;
use super::tenants::Backend;

/// One channel for the whole database; the payload names the tenant.
const CHANNEL: &str = "itsmflow_queue_events";
/// Events waiting to be sent; beyond this (the database is unreachable) they are dropped.
const QUEUED: usize = 10_000;
const BATCH: usize = 256;

/// Where this node's events go for the others.
#[derive(Clone)]
pub struct Outbound {
    node: Arc<str>,
    tx: mpsc::Sender<String>,
}

impl Outbound {
    pub fn send(&self, tenant: &str, event: &QueueEvent) {
        let payload = json!({ "node": &*self.node, "tenant": tenant, "event": event }).to_string();
        if self.tx.try_send(payload).is_err() {
            tracing::warn!("queue events for other nodes are backing up; dropping one");
        }
    }
}

#[derive(Deserialize)]
struct Message {
    node: String,
    tenant: String,
    event: QueueEvent,
}

/// A name for this node, unique among those sharing the database.
fn node_id() -> String {
    let mut bytes = [0u8; 8];
    // Without randomness, the process id and start time are unique enough.
    if getrandom::fill(&mut bytes).is_err() {
        let seed = u64::from(std::process::id()) ^ chrono::Utc::now().timestamp_micros() as u64;
        bytes = seed.to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Start sending this node's events; returns where to send them and this node's id.
pub fn start(pool: PgPool) -> Outbound {
    let (tx, mut rx) = mpsc::channel::<String>(QUEUED);
    tokio::spawn(async move {
        while let Some(first) = rx.recv().await {
            let mut batch = vec![first];
            while batch.len() < BATCH {
                match rx.try_recv() {
                    Ok(p) => batch.push(p),
                    Err(_) => break,
                }
            }
            let sent = sqlx::query("SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p")
                .bind(CHANNEL)
                .bind(&batch)
                .execute(&pool)
                .await;
            if let Err(e) = sent {
                tracing::warn!(error = %e, events = batch.len(), "cannot send queue events to other nodes");
            }
        }
    });
    Outbound {
        node: node_id().into(),
        tx,
    }
}

/// Hand the other nodes' events to this node's subscribers, until the server stops.
pub async fn listen<B: Backend>(pool: PgPool, outbound: Outbound, app: Arc<App<B>>) {
    let mut listener = loop {
        match PgListener::connect_with(&pool).await {
            Ok(mut l) => match l.listen(CHANNEL).await {
                Ok(()) => break l,
                Err(e) => tracing::warn!(error = %e, "cannot listen for other nodes' queue events"),
            },
            Err(e) => tracing::warn!(error = %e, "cannot listen for other nodes' queue events"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    loop {
        // `recv` reconnects by itself after a lost connection.
        let note = match listener.recv().await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "lost other nodes' queue events; reconnecting");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let Ok(m) = serde_json::from_str::<Message>(note.payload()) else {
            tracing::warn!("unreadable queue event from another node");
            continue;
        };
        if *m.node == *outbound.node {
            continue;
        }
        if let Some(t) = app.tenants.if_open(&m.tenant).await {
            t.events.deliver_from_elsewhere(m.event);
        }
    }
}
