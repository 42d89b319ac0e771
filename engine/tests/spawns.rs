//! Spawning with fields: the standard problem process requests a change for its known error,
//! and the change starts with the fields `with { ... }` maps and fixes (its title from the
//! problem's, a normal category 1 change), linked to the problem; on every store (memory, a
//! real SQLite file, a real PostgreSQL database).

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use itsmflow_engine::runtime::{Actor, Catalog, ManualClock};
use itsmflow_engine::store::Store;
use serde_json::{json, Map};
use support::{fields, processes, Node};

#[macro_use]
mod support;

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0)
        .single()
        .expect("date")
}

fn manager() -> Actor {
    Actor::new("pam", &["problem_manager"])
}

async fn problem_requests_a_change<S: Store>(node: &Node<S>) {
    let e = &node.engine;
    let p = e
        .create(
            "problem",
            &fields(
                json!({"title": "Mail queue stalls every night", "service": "email",
                           "impact": "medium"}),
            ),
            &manager(),
        )
        .await
        .expect("create");
    let id = p.id();
    let none = Map::new();
    e.perform(id, "accept", &none, None, &manager(), None)
        .await
        .expect("accept");
    e.perform(
        id,
        "record_known_error",
        &fields(json!({"root_cause": "the nightly backup locks the spool",
                       "workaround": "restart the queue runner after the backup"})),
        None,
        &manager(),
        None,
    )
    .await
    .expect("known error");
    let after = e
        .perform(id, "request_change", &none, None, &manager(), None)
        .await
        .expect("request a change");
    assert_eq!(after.stage(), "awaiting_change");

    let links = e.links(id).await.expect("links");
    assert_eq!(links.len(), 1, "{links:?}");
    // Stored from the change (`fixes: one problem`), named from the problem's side.
    assert_eq!(links[0].kind, "fixes");
    assert_eq!(links[0].name.as_deref(), Some("fixed_by"));
    assert_eq!(links[0].to, id);
    let change = e.instance(links[0].other).await.expect("change");
    assert_eq!(change.process(), "change");
    assert_eq!(change.created_by(), "pam");
    assert_eq!(
        change.field("title"),
        Some(json!("Mail queue stalls every night")),
        "copied by name"
    );
    assert_eq!(
        change.field("change_type"),
        Some(json!("normal")),
        "fixed by `with`"
    );
    assert_eq!(
        change.field("category"),
        Some(json!("1")),
        "fixed by `with`"
    );
    assert_eq!(
        change.field("backout_plan"),
        Some(json!("restart the queue runner after the backup")),
        "mapped from the problem's workaround"
    );
    assert!(e.verify(id).await.expect("verify"));
    assert!(e.verify(change.id()).await.expect("verify"));
}

async fn node<S: Store>(store: S, catalog: Arc<Catalog>) -> Node<S> {
    let clock = Arc::new(ManualClock::new(start()));
    Node::open(store, catalog, clock, &processes()).await
}

async fn close<S: Store>(node: Node<S>) {
    node.stop().await;
}

on_every_store!(requested_change, problem_requests_a_change, node, close);
