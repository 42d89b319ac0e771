//! Live queue events for agents' queue views, sent as server-sent events.
//!
//! The engine tells what every change it commits does to tasks, whoever made the change (a
//! request, a timer, an effect on a linked ticket, an agent going off shift, a migration);
//! [`relay`] publishes that on the tenant's channel, and a client subscribes to one queue.
//! Nodes sharing a PostgreSQL database pass their events to each other ([`super::fanout`]),
//! so a client hears what any node did.

use std::convert::Infallible;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use chrono::{DateTime, Utc};
use futures_util::Stream;
use std::sync::Arc;

use itsmflow_engine::runtime::{Firing, Task, TaskEvent, TaskEventKind};
use serde::Serialize;
use tokio::sync::broadcast;

use super::wire::queues as wire;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::StreamExt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueEventKind {
    /// A task entered the queue (new, moved here, or released back).
    Added,
    Claimed,
    Released,
    /// The task left the queue: completed, or its instance moved on.
    Removed,
    /// A timer fired on the task's instance (an escalation step, a breach, an automatic
    /// transition): it may have moved here, changed priority, or be about to go.
    Escalated,
}

#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct QueueEvent {
    #[serde(rename = "type")]
    pub kind: QueueEventKind,
    pub queue: std::sync::Arc<str>,
    pub task: i64,
    pub instance: i64,
    pub priority: Option<u32>,
    pub claimed_by: Option<std::sync::Arc<str>>,
    pub at: DateTime<Utc>,
}

impl From<TaskEventKind> for QueueEventKind {
    fn from(kind: TaskEventKind) -> Self {
        match kind {
            TaskEventKind::Added => QueueEventKind::Added,
            TaskEventKind::Claimed => QueueEventKind::Claimed,
            TaskEventKind::Released => QueueEventKind::Released,
            TaskEventKind::Removed => QueueEventKind::Removed,
            TaskEventKind::Escalated => QueueEventKind::Escalated,
        }
    }
}

impl From<&TaskEvent> for QueueEvent {
    fn from(e: &TaskEvent) -> Self {
        QueueEvent::of(e.kind.into(), &e.task, e.at)
    }
}

impl QueueEvent {
    pub fn of(kind: QueueEventKind, task: &Task, at: DateTime<Utc>) -> Self {
        QueueEvent {
            kind,
            queue: task.queue.clone(),
            task: task.id.0,
            instance: task.instance.0,
            priority: task.priority,
            claimed_by: task.claimed_by.clone(),
            at,
        }
    }
}

/// What a subscriber on this node hears: an event, or that events were lost before reaching
/// this node's channel (the relay fell behind the engine), so it reloads.
#[derive(Clone, Debug)]
pub enum Heard {
    Event(QueueEvent),
    Missed(u64),
}

/// A tenant's queue events: subscribers on this node, and, when several nodes share a
/// PostgreSQL database, the other nodes (see [`super::fanout`]).
#[derive(Clone)]
pub struct EventBus {
    tenant: String,
    local: broadcast::Sender<Heard>,
    remote: Option<super::fanout::Outbound>,
}

/// Subscribers that fall this far behind miss events (and are told so).
const EVENT_BUFFER: usize = 1024;

impl EventBus {
    pub fn new(tenant: &str, remote: Option<super::fanout::Outbound>) -> Self {
        EventBus {
            tenant: tenant.to_string(),
            local: broadcast::channel(EVENT_BUFFER).0,
            remote,
        }
    }

    /// Whether anyone may be listening: here, or on another node.
    pub fn has_listeners(&self) -> bool {
        self.local.receiver_count() > 0 || self.remote.as_ref().is_some_and(|r| r.has_peers())
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Heard> {
        self.local.subscribe()
    }

    /// An event another node published: for this node's subscribers only.
    pub fn deliver_from_elsewhere(&self, event: QueueEvent) {
        let _ = self.local.send(Heard::Event(event));
    }

    /// Publish to whoever listens, here and on other nodes.
    fn publish(&self, event: QueueEvent) {
        if let Some(remote) = &self.remote {
            remote.send(&self.tenant, &event);
        }
        // Nobody listening is fine.
        let _ = self.local.send(Heard::Event(event));
    }
}

/// Publish what the engine tells of tasks, until the engine is gone. `told` is taken before
/// the engine serves anything, so no change goes untold.
pub async fn relay(mut told: broadcast::Receiver<TaskEvent>, bus: EventBus) {
    loop {
        match told.recv().await {
            Ok(event) if bus.has_listeners() => bus.publish(QueueEvent::from(&event)),
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::warn!(
                    missed,
                    "queue events fell behind; listeners are told to reload"
                );
                let _ = bus.local.send(Heard::Missed(missed));
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// Count the clocks the scheduler's firings found breached, for the metrics.
pub async fn count_breaches(
    mut firings: broadcast::Receiver<Firing>,
    breaches: Arc<std::sync::atomic::AtomicU64>,
) {
    loop {
        match firings.recv().await {
            Ok(firing) => {
                breaches.fetch_add(
                    u64::from(firing.breaches),
                    std::sync::atomic::Ordering::Relaxed,
                );
            }
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// A server-sent event named `name` whose data is `data` as JSON.
pub fn sse_event(name: &str, data: &impl Serialize) -> Event {
    let data = serde_json::to_string(data).unwrap_or_else(|e| {
        tracing::error!(error = %e, event = name, "cannot serialise a server-sent event");
        "{}".to_string()
    });
    Event::default().event(name).data(data)
}

/// The event stream of one queue. A subscriber that falls behind gets a `lagged` event telling
/// it to reload the queue, then continues with new events.
pub fn stream(
    channel: &EventBus,
    queue: String,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let lagged = |missed| Some(Ok(sse_event("lagged", &wire::StreamLagged { missed })));
    let events = BroadcastStream::new(channel.subscribe()).filter_map(move |item| match item {
        Ok(Heard::Event(e)) if *e.queue == *queue => {
            let e = wire::QueueEvent::from(&e);
            Some(Ok(sse_event(e.kind.name(), &e)))
        }
        Ok(Heard::Event(_)) => None,
        Ok(Heard::Missed(missed)) | Err(BroadcastStreamRecvError::Lagged(missed)) => lagged(missed),
    });
    let ready = tokio_stream::once(Ok(sse_event("ready", &wire::StreamReady {})));
    // Streams end when the server stops, so a graceful shutdown does not wait on them.
    let stopping = async move {
        let _ = shutdown.wait_for(|stop| *stop).await;
    };
    Sse::new(futures_util::StreamExt::take_until(
        ready.chain(events),
        Box::pin(stopping),
    ))
    .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
