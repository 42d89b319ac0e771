//! `list(T)` fields on every store (memory, a real SQLite file, a real PostgreSQL database):
//! list values stored as JSON arrays, updated and read back; each element validated (a person
//! must be a user, an enum element one of its values, a required list not empty); routing by
//! `has`, a transition's `when ... is empty`, a transition `by watchers` performed by anyone in
//! the list, and a notice to every watcher once, its message listing them.

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use itsmflow_dsl::Sources;
use itsmflow_engine::runtime::{
    Actor, Catalog, EngineError, InstanceId, InstanceView, ManualClock, NotificationFilter,
    StaticDirectory,
};
use itsmflow_engine::store::Store;
use serde_json::{json, Map, Value};
use support::{fields, Node};

#[macro_use]
mod support;

const INCIDENTS: &str = r#"
role agent

queue desk { members agent }
queue network { members agent }

service email "E-mail"
service vpn "VPN"

process incident {
  fields {
    title:    text required
    affected: list(service) required
    watchers: list(person)
    tags:     list(text) default ["new"]
    kinds:    list(enum(hardware.laptop, hardware.desk, software))
  }

  stage new initial
  stage triage {
    queue by routing
  }
  stage resolved {
    notify watchers "Incident {id} on {affected} is resolved; told: {watchers}"
  }
  stage closed final

  transition log: new -> triage
  transition resolve: triage -> resolved by role agent or by watchers
    when not watchers is empty
  transition close: resolved -> closed by watchers

  routing {
    when affected has vpn or kinds has hardware.* => network
    otherwise => desk
  }
}
"#;

fn project() -> Sources {
    let mut s = Sources::new();
    s.add("incident.itsm", INCIDENTS);
    s
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0)
        .single()
        .expect("date")
}

fn someone(name: &str) -> Actor {
    Actor::new(name, &[])
}

fn directory() -> Arc<StaticDirectory> {
    let d = StaticDirectory::new();
    d.set("agent", &["alice"]);
    for u in ["ann", "bob", "carol"] {
        d.add_user(u);
    }
    Arc::new(d)
}

struct World<S: Store> {
    node: Node<S>,
}

impl<S: Store> World<S> {
    async fn raise(&self, values: Value) -> Result<InstanceView, EngineError> {
        self.node
            .engine
            .create("incident", &fields(values), &someone("carol"))
            .await
    }

    async fn act(&self, id: InstanceId, action: &str, by: &Actor) -> Result<String, EngineError> {
        self.node
            .engine
            .perform(id, action, &Map::new(), None, by, None)
            .await
            .map(|v| v.stage().to_string())
    }

    /// The ticket as the store has it now.
    async fn read(&self, id: InstanceId) -> InstanceView {
        self.node.engine.instance(id).await.expect("read back")
    }
}

async fn world<S: Store>(store: S, catalog: Arc<Catalog>) -> World<S> {
    let clock = Arc::new(ManualClock::new(start()));
    let node = Node::open_with(store, catalog, clock, &project(), directory()).await;
    World { node }
}

async fn close<S: Store>(w: World<S>) {
    w.node.stop().await;
}

/// The refusals of a create or update: (field, element index, message).
fn refusals<T: std::fmt::Debug>(r: Result<T, EngineError>) -> Vec<(String, Option<usize>, String)> {
    match r {
        Err(EngineError::InvalidFields(errors)) => errors
            .into_iter()
            .map(|e| (e.field, e.index, e.message))
            .collect(),
        other => panic!("expected invalid fields, got {other:?}"),
    }
}

/// Stored as arrays, with the default applied, updated and read back; bad elements are named by
/// their position.
async fn lists_are_stored_and_validated<S: Store>(w: &World<S>) {
    let v = w
        .raise(json!({"title": "mail down", "affected": ["email"], "watchers": ["ann", "bob"]}))
        .await
        .expect("raise");
    let id = v.id();
    let back = w.read(id).await;
    assert_eq!(back.field("affected"), Some(json!(["email"])));
    assert_eq!(back.field("watchers"), Some(json!(["ann", "bob"])));
    assert_eq!(back.field("tags"), Some(json!(["new"])), "the default");

    w.node
        .engine
        .update(
            id,
            &fields(json!({"affected": ["email", "vpn"], "kinds": ["software"], "tags": []})),
            None,
            &someone("alice"),
            None,
        )
        .await
        .expect("update");
    let back = w.read(id).await;
    assert_eq!(back.field("affected"), Some(json!(["email", "vpn"])));
    assert_eq!(back.field("kinds"), Some(json!(["software"])));
    assert_eq!(back.field("tags"), Some(json!([])));

    let bad_user = w
        .raise(json!({"title": "t", "affected": ["email"], "watchers": ["ann", "zed"]}))
        .await;
    let r = refusals(bad_user);
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!((r[0].0.as_str(), r[0].1), ("watchers", Some(1)));
    assert!(r[0].2.contains("`zed` is not a user"), "{r:?}");

    let bad_service = w
        .raise(json!({"title": "t", "affected": ["email", "fax"]}))
        .await;
    let r = refusals(bad_service);
    assert_eq!((r[0].0.as_str(), r[0].1), ("affected", Some(1)), "{r:?}");
    assert!(r[0].2.contains("email, vpn"), "{r:?}");

    let not_a_list = w.raise(json!({"title": "t", "affected": "email"})).await;
    let r = refusals(not_a_list);
    assert_eq!((r[0].0.as_str(), r[0].1), ("affected", None), "{r:?}");

    let empty = w.raise(json!({"title": "t", "affected": []})).await;
    let r = refusals(empty);
    assert_eq!(r[0].0, "affected", "{r:?}");
    assert!(r[0].2.contains("at least one"), "{r:?}");

    // A required list cannot be emptied by an update either.
    let cleared = w
        .node
        .engine
        .update(
            id,
            &fields(json!({"affected": []})),
            None,
            &someone("alice"),
            None,
        )
        .await;
    assert_eq!(refusals(cleared)[0].0, "affected");
}
on_every_store!(
    stored_and_validated,
    lists_are_stored_and_validated,
    world,
    close
);

/// `has` routes; `when not watchers is empty` and `by watchers` decide who may resolve and
/// close; each watcher is told once, the message listing them all.
async fn lists_decide<S: Store>(w: &World<S>) {
    let vpn = w
        .raise(json!({"title": "vpn", "affected": ["email", "vpn"], "watchers": ["ann", "bob", "ann"]}))
        .await
        .expect("raise");
    let mail = w
        .raise(json!({"title": "mail", "affected": ["email"]}))
        .await
        .expect("raise");
    let laptop = w
        .raise(json!({"title": "laptop", "affected": ["email"], "kinds": ["hardware.laptop"]}))
        .await
        .expect("raise");
    let queue = |v: &InstanceView| v.queue().map(str::to_string);
    let vpn = w
        .node
        .engine
        .perform(vpn.id(), "log", &Map::new(), None, &someone("carol"), None)
        .await
        .expect("log");
    let mail = w
        .node
        .engine
        .perform(mail.id(), "log", &Map::new(), None, &someone("carol"), None)
        .await
        .expect("log");
    let laptop = w
        .node
        .engine
        .perform(
            laptop.id(),
            "log",
            &Map::new(),
            None,
            &someone("carol"),
            None,
        )
        .await
        .expect("log");
    assert_eq!(queue(&vpn).as_deref(), Some("network"), "affected has vpn");
    assert_eq!(
        queue(&laptop).as_deref(),
        Some("network"),
        "kinds has hardware.*"
    );
    assert_eq!(queue(&mail).as_deref(), Some("desk"));

    // Without watchers, `resolve` is not possible, not even for an agent.
    let r = w
        .act(mail.id(), "resolve", &Actor::new("alice", &["agent"]))
        .await;
    assert!(r.is_err(), "{r:?}");

    // A watcher resolves; someone not in the list may not.
    let r = w.act(vpn.id(), "resolve", &someone("carol")).await;
    match r {
        Err(EngineError::Forbidden { people, .. }) => assert_eq!(people, ["watchers"]),
        other => panic!("expected forbidden, got {other:?}"),
    }
    assert_eq!(
        w.act(vpn.id(), "resolve", &someone("bob"))
            .await
            .expect("a watcher resolves"),
        "resolved"
    );
    let sent = w
        .node
        .engine
        .notifications(
            &NotificationFilter {
                instance: Some(vpn.id()),
                ..Default::default()
            },
            100,
            None,
        )
        .await
        .expect("notifications");
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].recipients, ["ann", "bob"], "each once");
    assert!(
        sent[0]
            .message
            .contains("on email, vpn is resolved; told: ann, bob, ann"),
        "{}",
        sent[0].message
    );
    assert_eq!(
        w.act(vpn.id(), "close", &someone("ann"))
            .await
            .expect("another watcher closes"),
        "closed"
    );
}
on_every_store!(deciding, lists_decide, world, close);
