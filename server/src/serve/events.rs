//! Live queue events for agents' queue views, sent as server-sent events.
//!
//! Every change this server makes to a task is published on its tenant's channel; a client
//! subscribes to one queue. Events are per node: a client sees what the node it is connected
//! to did (docs/api.md says how to run several nodes).

use std::convert::Infallible;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use chrono::{DateTime, Utc};
use futures_util::Stream;
use itsmflow_engine::runtime::Task;
use serde::Serialize;
use tokio::sync::broadcast;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::StreamExt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueEventKind {
    /// A task entered the queue (new, moved here, or released back).
    Added,
    Claimed,
    Released,
    /// The task left the queue: completed, or its instance moved on.
    Removed,
}

#[derive(Clone, Debug, Serialize)]
pub struct QueueEvent {
    #[serde(rename = "type")]
    pub kind: QueueEventKind,
    pub queue: String,
    pub task: i64,
    pub instance: i64,
    pub priority: Option<u32>,
    pub claimed_by: Option<String>,
    pub at: DateTime<Utc>,
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

/// Publish to whoever listens; nobody listening is fine.
pub fn publish(channel: &broadcast::Sender<QueueEvent>, event: QueueEvent) {
    let _ = channel.send(event);
}

/// The event stream of one queue. A subscriber that falls behind gets a `lagged` event telling
/// it to reload the queue, then continues with new events.
pub fn stream(
    channel: &broadcast::Sender<QueueEvent>,
    queue: String,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let events = BroadcastStream::new(channel.subscribe()).filter_map(move |item| match item {
        Ok(e) if e.queue == queue => {
            let data = serde_json::to_string(&e).unwrap_or_default();
            let name = serde_json::to_value(e.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            Some(Ok(Event::default().event(name).data(data)))
        }
        Ok(_) => None,
        Err(BroadcastStreamRecvError::Lagged(missed)) => Some(Ok(Event::default()
            .event("lagged")
            .data(format!("{{\"missed\":{missed}}}")))),
    });
    let ready = tokio_stream::once(Ok(Event::default().event("ready").data("{}")));
    Sse::new(ready.chain(events)).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
