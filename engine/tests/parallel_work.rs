//! Work that fans out: one transition spawns several tickets (a part per team, each in its own
//! queue), and the parent moves on when the last part is done: the part's effect on its parent
//! reads the parts as this action leaves them (itself included), and its reads are checked in
//! the commit, so parts finishing at the same moment cannot each see the other open and leave
//! the parent waiting for ever. On every store (memory, a real SQLite file, a real PostgreSQL
//! database).

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use itsmflow_dsl::Sources;
use itsmflow_engine::runtime::{Actor, Catalog, InstanceId, ManualClock};
use itsmflow_engine::store::Store;
use serde_json::json;
use support::{fields, Node};

#[macro_use]
mod support;

const PROJECT: &str = r#"
role agent
queue a_team { members agent }
queue b_team { members agent }
queue c_team { members agent }

process order {
  fields {
    title: text required
  }
  links {
    parts: many part
  }
  stage open initial
  stage preparing
  stage done final
  stage stuck final
  transition fan_out: open -> preparing by role agent
    spawns part as parts with { team: a }
    spawns part as parts with { team: b }
    spawns part as parts with { team: c }
  transition all_done: preparing -> done when all parts where stage == finished
  transition one_failed: preparing -> stuck when any parts where stage == failed
}

process part {
  fields {
    title: text required
    team: enum(a, b, c) required
  }
  links {
    order: one order via parts
  }
  stage todo initial { queue by routing }
  stage finished final
  stage failed final
  transition finish: todo -> finished by role agent then perform all_done on order
  transition fail: todo -> failed by role agent then perform one_failed on order
  routing {
    when team == a => a_team
    when team == b => b_team
    otherwise => c_team
  }
}
"#;

fn sources() -> Sources {
    let mut s = Sources::new();
    s.add("order.itsm", PROJECT);
    s
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0)
        .single()
        .expect("date")
}

fn agent(name: &str) -> Actor {
    Actor::new(name, &["agent"])
}

/// An order fanned out into its three parts; the parts, in the order they were spawned.
async fn fanned_out<S: Store>(node: &Node<S>) -> (InstanceId, Vec<InstanceId>) {
    let e = &node.engine;
    let order = e
        .create(
            "order",
            &fields(json!({"title": "New starter"})),
            &agent("ann"),
        )
        .await
        .expect("create");
    let view = e
        .perform(
            order.id(),
            "fan_out",
            &Default::default(),
            None,
            &agent("ann"),
            None,
        )
        .await
        .expect("fan out");
    assert_eq!(view.stage(), "preparing");
    let parts: Vec<InstanceId> = e
        .links(order.id())
        .await
        .expect("links")
        .iter()
        .map(|l| l.other)
        .collect();
    assert_eq!(parts.len(), 3, "one part per spawns");
    let mut queues = Vec::new();
    for p in &parts {
        let v = e.instance(*p).await.expect("part");
        assert_eq!(v.process(), "part");
        assert_eq!(
            v.field("title"),
            Some(json!("New starter")),
            "copied by name"
        );
        queues.push(v.task().map(|t| t.queue.to_string()).expect("a task each"));
    }
    assert_eq!(
        queues,
        ["a_team", "b_team", "c_team"],
        "each in its team's queue"
    );
    (order.id(), parts)
}

async fn the_last_part_moves_the_order<S: Store>(node: &Node<S>) {
    let e = &node.engine;
    let (order, parts) = fanned_out(node).await;
    for (n, p) in parts.iter().enumerate() {
        let stage = e.instance(order).await.expect("order").stage().to_string();
        assert_eq!(stage, "preparing", "still waiting before part {n}");
        e.perform(*p, "finish", &Default::default(), None, &agent("bo"), None)
            .await
            .expect("finish");
    }
    assert_eq!(e.instance(order).await.expect("order").stage(), "done");
    let kinds: Vec<String> = e
        .history(parts[2])
        .await
        .expect("history")
        .iter()
        .map(|h| h.kind.to_string())
        .collect();
    assert!(kinds.contains(&"acted_on".to_string()), "{kinds:?}");
    let first: Vec<String> = e
        .history(parts[0])
        .await
        .expect("history")
        .iter()
        .map(|h| h.kind.to_string())
        .collect();
    assert!(
        first.contains(&"skipped".to_string()),
        "the first part's effect waits for the others: {first:?}"
    );
}

async fn parts_finishing_at_once_still_move_the_order<S: Store>(node: &Node<S>) {
    let e = node.engine.clone();
    for round in 0..5 {
        let (order, parts) = fanned_out(node).await;
        let mut running = tokio::task::JoinSet::new();
        for (n, p) in parts.into_iter().enumerate() {
            let e = e.clone();
            running.spawn(async move {
                e.perform(
                    p,
                    "finish",
                    &Default::default(),
                    None,
                    &agent(&format!("a{n}")),
                    None,
                )
                .await
                .map(|_| ())
            });
        }
        while let Some(done) = running.join_next().await {
            done.expect("task").expect("finish");
        }
        let v = e.instance(order).await.expect("order");
        assert_eq!(v.stage(), "done", "round {round}");
        let moved = e
            .history(order)
            .await
            .expect("history")
            .iter()
            .filter(|h| h.kind == "transitioned")
            .count();
        assert_eq!(moved, 2, "fan_out, then all_done once (round {round})");
    }
}

async fn a_failed_part_takes_the_declared_path<S: Store>(node: &Node<S>) {
    let e = &node.engine;
    let (order, parts) = fanned_out(node).await;
    e.perform(
        parts[1],
        "fail",
        &Default::default(),
        None,
        &agent("bo"),
        None,
    )
    .await
    .expect("fail");
    assert_eq!(e.instance(order).await.expect("order").stage(), "stuck");
    // The others are still open, each in its own queue.
    assert_eq!(e.instance(parts[0]).await.expect("part").stage(), "todo");
}

async fn node<S: Store>(store: S, catalog: Arc<Catalog>) -> Node<S> {
    let clock = Arc::new(ManualClock::new(start()));
    Node::open(store, catalog, clock, &sources()).await
}

async fn close<S: Store>(node: Node<S>) {
    node.stop().await;
}

on_every_store!(last_part, the_last_part_moves_the_order, node, close);
on_every_store!(
    at_once,
    parts_finishing_at_once_still_move_the_order,
    node,
    close
);
on_every_store!(
    failed_part,
    a_failed_part_takes_the_declared_path,
    node,
    close
);
