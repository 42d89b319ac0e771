//! Notifications a definition sends: on performing a transition, on entering a stage and from
//! escalation steps, to roles, to people the ticket names (a person field, someone's manager)
//! and with messages over the ticket's fields; each an outbox row with its recipients, on every
//! store (memory, a real SQLite file, a real PostgreSQL database), on virtual time.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use itsmflow_dsl::Sources;
use itsmflow_engine::runtime::{
    Actor, Catalog, InstanceId, ManualClock, Notification, NotificationFilter, StaticDirectory,
};
use itsmflow_engine::store::Store;
use serde_json::{json, Map};
use support::{fields, Node};

#[macro_use]
mod support;

const TICKETS: &str = r#"
role agent
role team_lead

queue desk {
  members agent
}

process ticket {
  fields {
    title: text required
    caller: person required
    impact: enum(high, low) required
    resolution: text
  }

  priorities P1, P2

  priority from impact {
    high => P1
    low => P2
  }

  targets on 24x7 {
    P1: resolve 4h
    P2: resolve 8h
  }

  stage open initial
  stage working {
    queue desk
  }
  stage resolved {
    stops resolve
    notify caller "Your ticket {id} ({title}) is resolved: {resolution}"
  }
  stage closed final

  transition start: open -> working
  transition resolve: working -> resolved by role agent requires resolution notify manager of caller and role team_lead
  transition close: resolved -> closed by caller

  escalation on resolve {
    at 50% => notify caller and role team_lead "Ticket {id} is half way to its target ({priority})"
  }
}
"#;

fn project() -> Sources {
    let mut s = Sources::new();
    s.add("ticket.itsm", TICKETS);
    s
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0)
        .single()
        .expect("date")
}

fn directory() -> Arc<StaticDirectory> {
    let d = StaticDirectory::new();
    d.set("agent", &["alice"]);
    d.set("team_lead", &["tina"]);
    for u in ["rita", "mona", "bob"] {
        d.add_user(u);
    }
    d.set_manager("rita", "mona");
    Arc::new(d)
}

fn agent() -> Actor {
    Actor::new("alice", &["agent"])
}

async fn outbox<S: Store>(node: &Node<S>, id: InstanceId) -> Vec<Notification> {
    node.engine
        .notifications(
            &NotificationFilter {
                instance: Some(id),
                ..Default::default()
            },
            100,
            None,
        )
        .await
        .expect("notifications")
}

/// (role, recipients, message) of each row.
fn rows(notes: &[Notification]) -> Vec<(String, Vec<String>, String)> {
    notes
        .iter()
        .map(|n| (n.role.clone(), n.recipients.clone(), n.message.clone()))
        .collect()
}

async fn raise<S: Store>(node: &Node<S>, caller: &str) -> InstanceId {
    let e = &node.engine;
    let v = e
        .create(
            "ticket",
            &fields(json!({"title": "Printer jam", "caller": caller, "impact": "low"})),
            &agent(),
        )
        .await
        .expect("create");
    e.perform(v.id(), "start", &Map::new(), None, &agent(), None)
        .await
        .expect("start");
    v.id()
}

async fn notices_to_roles_and_people<S: Store>(w: &(Node<S>, Arc<ManualClock>)) {
    let (node, clock) = (&w.0, &w.1);
    let e = &node.engine;
    let id = raise(node, "rita").await;
    assert!(outbox(node, id).await.is_empty());

    // Half of P2's 8 hours: the caller and the team lead hear of it, in the definition's words.
    clock.advance(TimeDelta::hours(4));
    node.scheduler.settled().await;
    let half = format!("Ticket {id} is half way to its target (P2)");
    assert_eq!(
        rows(&outbox(node, id).await),
        [
            ("caller".to_string(), vec!["rita".to_string()], half.clone()),
            ("team_lead".to_string(), vec![], half.clone()),
        ]
    );

    // Resolving tells the caller's manager and the team lead (the transition), and the caller
    // (entering `resolved`), with the resolution in the message.
    e.perform(
        id,
        "resolve",
        &fields(json!({"resolution": "cleared the tray"})),
        None,
        &agent(),
        None,
    )
    .await
    .expect("resolve");
    let all = rows(&outbox(node, id).await);
    let after: Vec<_> = all[2..].to_vec();
    let resolved = format!("ticket {id}: resolve");
    assert_eq!(
        after,
        [
            (
                "manager of caller".to_string(),
                vec!["mona".to_string()],
                resolved.clone()
            ),
            ("team_lead".to_string(), vec![], resolved),
            (
                "caller".to_string(),
                vec!["rita".to_string()],
                format!("Your ticket {id} (Printer jam) is resolved: cleared the tray")
            ),
        ]
    );
    let history = e.history(id).await.expect("history");
    assert_eq!(
        history.iter().filter(|h| h.kind == "notified").count(),
        5,
        "one event per row"
    );
    assert!(e.verify(id).await.expect("verify"));
}

/// A person the ticket does not name (bob has no manager) is skipped, and the history says so.
async fn nobody_named_is_skipped<S: Store>(w: &(Node<S>, Arc<ManualClock>)) {
    let node = &w.0;
    let e = &node.engine;
    let id = raise(node, "bob").await;
    e.perform(
        id,
        "resolve",
        &fields(json!({"resolution": "done"})),
        None,
        &agent(),
        None,
    )
    .await
    .expect("resolve");
    let roles: Vec<String> = outbox(node, id).await.into_iter().map(|n| n.role).collect();
    assert_eq!(roles, ["team_lead", "caller"]);
    let history = e.history(id).await.expect("history");
    let skipped = history
        .iter()
        .find(|h| h.kind == "skipped")
        .expect("a skipped notification");
    assert_eq!(skipped.data["action"], "notify manager of caller");
}

/// A node on `store`, with the tickets project and a directory, on virtual time.
async fn world<S: Store>(store: S, catalog: Arc<Catalog>) -> (Node<S>, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(start()));
    let node = Node::open_with(store, catalog, clock.clone(), &project(), directory()).await;
    (node, clock)
}

async fn close<S: Store>(w: (Node<S>, Arc<ManualClock>)) {
    w.0.stop().await;
}

on_every_store!(
    to_roles_and_people,
    notices_to_roles_and_people,
    world,
    close
);
on_every_store!(skipped, nobody_named_is_skipped, world, close);
