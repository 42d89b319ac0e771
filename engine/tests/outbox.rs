//! The notifications outbox is claimed: deliverers racing for it each get other rows, a claimed
//! row stays with its deliverer until the lease runs out, a failed attempt waits for its retry
//! and too many make a dead letter, and a delivered row is never handed out again; on every
//! store (memory, a real SQLite file, a real PostgreSQL database).

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use itsmflow_dsl::Sources;
use itsmflow_engine::runtime::{Actor, Catalog, ManualClock, NotificationFilter};
use itsmflow_engine::store::Store;
use serde_json::{json, Map};
use support::{fields, Node};

#[macro_use]
mod support;

const PROJECT: &str = r#"
role watcher

process ping {
  fields {
    title: text required
  }

  stage open initial
  stage sent final {
    notify role watcher "Ping {id}"
  }

  transition send: open -> sent
}
"#;

const TICKETS: usize = 12;

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0)
        .single()
        .expect("date")
}

struct World<S: Store> {
    node: Node<S>,
    clock: Arc<ManualClock>,
}

async fn world<S: Store>(store: S, catalog: Arc<Catalog>) -> World<S> {
    let clock = Arc::new(ManualClock::new(start()));
    let mut sources = Sources::new();
    sources.add("outbox.itsm", PROJECT);
    let node = Node::open(store, catalog, clock.clone(), &sources).await;
    World { node, clock }
}

async fn close<S: Store>(w: World<S>) {
    w.node.stop().await;
}

async fn claims<S: Store>(w: &World<S>) {
    let e = &w.node.engine;
    let me = Actor::new("ann", &[]);
    for n in 0..TICKETS {
        let t = e
            .create("ping", &fields(json!({"title": format!("ping {n}")})), &me)
            .await
            .expect("create");
        e.perform(t.id(), "send", &Map::new(), None, &me, None)
            .await
            .expect("send");
    }
    let lease = TimeDelta::seconds(60);

    // Four deliverers at once, three rows each at most: every row to exactly one of them.
    let batches = tokio::join!(
        e.claim_deliveries(3, lease),
        e.claim_deliveries(3, lease),
        e.claim_deliveries(3, lease),
        e.claim_deliveries(3, lease)
    );
    let mut seen = HashSet::new();
    for b in [batches.0, batches.1, batches.2, batches.3] {
        for n in b.expect("claim") {
            assert!(seen.insert(n.id), "row {} handed out twice", n.id);
            assert_eq!(n.attempts, 1);
        }
    }
    assert_eq!(seen.len(), TICKETS);
    assert!(
        e.claim_deliveries(100, lease)
            .await
            .expect("claim")
            .is_empty(),
        "all leased"
    );

    // The lease runs out: the rows are handed out again, a second attempt each.
    w.clock.advance(TimeDelta::seconds(61));
    let again = e.claim_deliveries(100, lease).await.expect("claim");
    assert_eq!(again.len(), TICKETS);
    assert!(again.iter().all(|n| n.attempts == 2));
    let ids: Vec<i64> = again.iter().map(|n| n.id).collect();

    // Delivered, failed (retry in 30 s), given up.
    e.mark_delivered(&ids[..4]).await.expect("delivered");
    for id in &ids[4..8] {
        e.delivery_failed(
            *id,
            "the receiver answered 503",
            Some(TimeDelta::seconds(30)),
        )
        .await
        .expect("failed");
    }
    for id in &ids[8..] {
        e.delivery_failed(*id, "the receiver answered 410", None)
            .await
            .expect("dead");
    }
    w.clock.advance(TimeDelta::seconds(29));
    assert!(
        e.claim_deliveries(100, lease)
            .await
            .expect("claim")
            .is_empty(),
        "retries wait"
    );
    w.clock.advance(TimeDelta::seconds(1));
    let retried = e.claim_deliveries(100, lease).await.expect("claim");
    assert_eq!(
        retried.iter().map(|n| n.id).collect::<Vec<_>>(),
        ids[4..8].to_vec()
    );
    assert!(retried
        .iter()
        .all(|n| n.attempts == 3 && n.last_error.as_deref() == Some("the receiver answered 503")));
    w.clock.advance(TimeDelta::days(1));
    assert!(
        e.claim_deliveries(100, lease)
            .await
            .expect("claim")
            .iter()
            .all(|n| ids[4..8].contains(&n.id)),
        "delivered and dead rows are never handed out again"
    );
    let all = e
        .notifications(&NotificationFilter::default(), 100, None)
        .await
        .expect("list");
    let dead: Vec<i64> = all
        .iter()
        .filter(|n| n.dead_at.is_some())
        .map(|n| n.id)
        .collect();
    assert_eq!(dead, ids[8..].to_vec());
    assert_eq!(all.iter().filter(|n| n.delivered_at.is_some()).count(), 4);
}

on_every_store!(claimed_outbox, claims, world, close);
