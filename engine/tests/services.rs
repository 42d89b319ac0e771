//! The service catalogue at run time: targets a service agrees override the process's own for
//! its tickets (per clock, on the service's calendar), a ticket moved to another service is
//! measured again against that service's targets, and a catalogue item raises a ticket of its
//! process with the fields it presets, refused without a field it requires; on every store
//! (memory, a real SQLite file, a real PostgreSQL database).

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use itsmflow_dsl::Sources;
use itsmflow_engine::runtime::{Actor, Catalog, EngineError, InstanceId, ManualClock};
use itsmflow_engine::store::Store;
use serde_json::json;
use support::{fields, Node};

#[macro_use]
mod support;

const PROJECT: &str = r#"
role agent
role mail_admin
queue desk { members agent }

service email "E-mail" {
  description "Mail for everyone"
  owner role mail_admin
  supported on 24x7
  queues desk
  targets {
    P1: resolve 1h
  }
  item shared_mailbox "Shared mailbox" {
    process ticket
    with { kind: request, title: "A shared mailbox" }
    requires justification
  }
}

service vpn "VPN" {
  queues desk
}

process ticket {
  fields {
    title:         text required
    service:       service required
    kind:          enum(incident, request) required default incident
    impact:        enum(high, low) required default high
    justification: text
  }

  priorities P1, P2

  priority from impact {
    high => P1
    low => P2
  }

  targets on 24x7 {
    P1: respond 30m, resolve 4h
    P2: respond 1h, resolve 8h
  }

  stage open initial {
    queue desk
  }
  stage closed final

  transition close: open -> closed by role agent
}
"#;

fn sources() -> Sources {
    let mut s = Sources::new();
    s.add("services.itsm", PROJECT);
    s
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0)
        .single()
        .expect("date")
}

fn agent() -> Actor {
    Actor::new("ann", &["agent"])
}

/// The due time of an instance's breach of `clock`.
async fn breach_at<S: Store>(node: &Node<S>, id: InstanceId, clock: &str) -> DateTime<Utc> {
    node.engine
        .timers(id)
        .await
        .expect("timers")
        .into_iter()
        .find(|t| t.kind == "breach" && t.what == clock)
        .unwrap_or_else(|| panic!("no {clock} breach"))
        .due_at
}

async fn service_targets_override<S: Store>(node: &Node<S>) {
    let e = &node.engine;
    let mail = e
        .create(
            "ticket",
            &fields(json!({"title": "No mail", "service": "email"})),
            &agent(),
        )
        .await
        .expect("create");
    let vpn = e
        .create(
            "ticket",
            &fields(json!({"title": "No VPN", "service": "vpn"})),
            &agent(),
        )
        .await
        .expect("create");
    // E-mail agrees a 1h resolve for P1; its respond is the process's 30m.
    assert_eq!(
        breach_at(node, mail.id(), "resolve").await,
        start() + TimeDelta::hours(1)
    );
    assert_eq!(
        breach_at(node, mail.id(), "respond").await,
        start() + TimeDelta::minutes(30)
    );
    assert_eq!(
        breach_at(node, vpn.id(), "resolve").await,
        start() + TimeDelta::hours(4)
    );
    let clocks = e.clocks(mail.id()).await.expect("clocks");
    let resolve = clocks
        .iter()
        .find(|c| c.clock.as_str() == "resolve")
        .expect("resolve");
    assert_eq!(resolve.target, "1h");
    // The VPN ticket turns out to be about e-mail: measured again on e-mail's target, from
    // when it was raised (not reset), and its task falls due then.
    let moved = e
        .update(
            vpn.id(),
            &fields(json!({"service": "email"})),
            None,
            &agent(),
            None,
        )
        .await
        .expect("move");
    assert_eq!(
        breach_at(node, vpn.id(), "resolve").await,
        start() + TimeDelta::hours(1)
    );
    assert_eq!(
        moved.task().and_then(|t| t.due_at),
        Some(start() + TimeDelta::hours(1))
    );
    for id in [mail.id(), vpn.id()] {
        assert!(e.verify(id).await.expect("verify"));
    }
}

async fn items_raise_tickets<S: Store>(node: &Node<S>) {
    let e = &node.engine;
    let refused = e
        .create_item("shared_mailbox", &fields(json!({})), &agent())
        .await
        .expect_err("the item needs a justification");
    match refused {
        EngineError::InvalidFields(errors) => {
            assert_eq!(errors.len(), 1, "{errors:?}");
            assert_eq!(errors[0].field, "justification");
            assert!(errors[0].message.contains("shared_mailbox"), "{errors:?}");
        }
        other => panic!("{other:?}"),
    }
    let t = e
        .create_item(
            "shared_mailbox",
            &fields(json!({"justification": "the team shares one inbox", "kind": "incident"})),
            &agent(),
        )
        .await
        .expect("raised");
    assert_eq!(t.process(), "ticket");
    // Its presets win, and its service is the item's.
    assert_eq!(t.field("kind"), Some(json!("request")));
    assert_eq!(t.field("title"), Some(json!("A shared mailbox")));
    assert_eq!(t.field("service"), Some(json!("email")));
    assert!(matches!(
        e.create_item("no_such_item", &fields(json!({})), &agent())
            .await,
        Err(EngineError::UnknownItem(_))
    ));
}

async fn node<S: Store>(store: S, catalog: Arc<Catalog>) -> Node<S> {
    let clock = Arc::new(ManualClock::new(start()));
    Node::open(store, catalog, clock, &sources()).await
}

async fn close<S: Store>(node: Node<S>) {
    node.stop().await;
}

on_every_store!(targets, service_targets_override, node, close);
on_every_store!(items, items_raise_tickets, node, close);
