//! Queue events across nodes that share one PostgreSQL database, so an agent's queue view
//! hears what every node does, not only the node it is connected to.
//!
//! Each node sends the events it publishes with `NOTIFY` (batched, off the request path: a
//! request never waits for it) and `LISTEN`s for the other nodes' events, which it hands to
//! its own subscribers. Delivery is best effort, like the events themselves: a subscriber that
//! must not miss anything reloads the queue on `lagged`, or on reconnecting.
//!
//! A `NOTIFY` costs the database a transaction, so a node sends events only while another
//! node is there to hear them. Nodes say they are here on the same channel: when they start
//! listening (and others answer at once, so both know each other within a round trip), and
//! every [`HEARTBEAT`] after; a node not heard from for [`PEER_TTL`] is taken to be gone. A
//! single node on PostgreSQL, the usual case, then sends nothing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
/// How often a node says it is here.
const HEARTBEAT: Duration = Duration::from_secs(10);
/// A node not heard from for this long is taken to be gone.
const PEER_TTL: Duration = Duration::from_secs(30);

/// Where this node's events go for the others.
#[derive(Clone)]
pub struct Outbound {
    node: Arc<str>,
    tx: mpsc::Sender<String>,
    peers: Arc<Peers>,
}

impl Outbound {
    /// Send an event to the other nodes, if any is there.
    pub fn send(&self, tenant: &str, event: &QueueEvent) {
        if !self.has_peers() {
            return;
        }
        self.queue(json!({ "node": &*self.node, "tenant": tenant, "event": event }).to_string());
    }

    /// Whether another node has been heard from lately.
    pub fn has_peers(&self) -> bool {
        self.peers.any()
    }

    /// Tell the other nodes this one is here; `answer` when telling one that just arrived
    /// (which is not answered again).
    fn say_here(&self, answer: bool) {
        self.queue(json!({ "node": &*self.node, "here": { "answer": answer } }).to_string());
    }

    fn queue(&self, payload: String) {
        if self.tx.try_send(payload).is_err() {
            tracing::warn!("queue events for other nodes are backing up; dropping one");
        }
    }
}

/// The other nodes heard from, and when last.
#[derive(Default)]
struct Peers {
    seen: Mutex<HashMap<String, Instant>>,
}

impl Peers {
    fn seen(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn heard(&self, node: &str) {
        let now = Instant::now();
        let mut seen = self.seen();
        seen.retain(|_, at| now.duration_since(*at) < PEER_TTL);
        seen.insert(node.to_string(), now);
    }

    fn any(&self) -> bool {
        self.seen().values().any(|at| at.elapsed() < PEER_TTL)
    }
}

/// What a node says on the channel: an event it published, or that it is here.
#[derive(Deserialize)]
struct Message {
    node: String,
    #[serde(flatten)]
    says: Says,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Says {
    Event { tenant: String, event: QueueEvent },
    Here { here: Here },
}

#[derive(Deserialize)]
struct Here {
    answer: bool,
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

/// Start sending this node's events, and saying it is here every [`HEARTBEAT`]; returns where
/// to send them.
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
    let outbound = Outbound {
        node: node_id().into(),
        tx,
        peers: Arc::default(),
    };
    let heartbeat = outbound.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(HEARTBEAT);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            // An answer: nobody needs to answer a heartbeat.
            heartbeat.say_here(true);
        }
    });
    outbound
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
    // Listening now: whoever is there answers, so each knows the other at once.
    outbound.say_here(false);
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
        outbound.peers.heard(&m.node);
        match m.says {
            Says::Event { tenant, event } => {
                if let Some(t) = app.tenants.if_open(&tenant).await {
                    t.events.deliver_from_elsewhere(event);
                }
            }
            Says::Here { here } => {
                if !here.answer {
                    outbound.say_here(true);
                }
            }
        }
    }
}
