//! Tickets that relate: declared link kinds (checked when linking: the kind, the other
//! ticket's process, cardinality), `when` conditions over linked tickets, and `then perform`
//! effects on linked tickets, written with the acting change in one transaction; on every
//! store (memory, a real SQLite file, a real PostgreSQL database).

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use itsmflow_dsl::Sources;
use itsmflow_engine::runtime::logic;
use itsmflow_engine::runtime::{Actor, Catalog, EngineError, InstanceId, ManualClock};
use itsmflow_engine::store::{Store, StoreError};
use serde_json::{json, Map};
use support::{fields, Node};

#[macro_use]
mod support;

const PROJECT: &str = r#"
role agent
role problem_manager
queue desk { members agent }
queue problems { members problem_manager }

process incident {
  fields {
    title:      text required
    priority_class: enum(major, minor) required default minor
    resolution: text
  }
  links {
    caused_by: one problem
    parent:    one incident
    children:  many incident via parent
  }
  stage working initial { queue desk }
  stage resolved
  stage closed final
  transition resolve: working -> resolved by role agent requires resolution
  // A major incident closes only once its problem has addressed the root cause.
  transition close: resolved -> closed by role agent
    when priority_class == minor or any caused_by where stage in (resolved, closed)
  // A parent closes only when every child has.
  transition close_parent: working -> closed by role agent
    when all children where stage == closed
}

process problem {
  fields {
    title:      text required
    root_cause: text
  }
  links {
    incidents: many incident via caused_by
  }
  stage investigating initial { queue problems }
  stage resolved
  stage closed final
  transition resolve: investigating -> resolved by role problem_manager requires root_cause
    then perform resolve on incidents with { resolution: root_cause }
  transition reopen: resolved -> investigating by role problem_manager
  transition close: resolved -> closed by role problem_manager
}
"#;

fn sources() -> Sources {
    let mut s = Sources::new();
    s.add("relations.itsm", PROJECT);
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

fn manager() -> Actor {
    Actor::new("pam", &["problem_manager"])
}

async fn incident<S: Store>(node: &Node<S>, title: &str, class: &str) -> InstanceId {
    node.engine
        .create(
            "incident",
            &fields(json!({"title": title, "priority_class": class})),
            &agent(),
        )
        .await
        .expect("incident")
        .id()
}

async fn problem<S: Store>(node: &Node<S>) -> InstanceId {
    node.engine
        .create(
            "problem",
            &fields(json!({"title": "Mail stalls"})),
            &manager(),
        )
        .await
        .expect("problem")
        .id()
}

/// A problem's `resolve` resolves its open incidents with its root cause, each as one
/// recorded action in the same transaction; an incident whose stage does not allow `resolve`
/// is left alone; the history on both sides says what happened.
async fn problem_resolves_its_incidents<S: Store>(node: &Node<S>) {
    let e = &node.engine;
    let p = problem(node).await;
    let a = incident(node, "No mail on floor 2", "minor").await;
    let b = incident(node, "No mail on floor 3", "major").await;
    let done = incident(node, "No mail in the lab", "minor").await;
    for i in [a, b, done] {
        let (_, new) = e
            .link(i, p, "caused_by", &agent())
            .await
            .expect("link incident to problem");
        assert!(new);
    }
    e.perform(
        done,
        "resolve",
        &fields(json!({"resolution": "restarted the relay"})),
        None,
        &agent(),
        None,
    )
    .await
    .expect("resolved alone");
    let done_before = e.state(done).await.expect("state").version;

    // The problem sees the same links under its own name for them.
    let links = e.links(p).await.expect("links");
    assert_eq!(links.len(), 3, "{links:?}");
    assert!(links
        .iter()
        .all(|l| l.name.as_deref() == Some("incidents") && l.kind == "caused_by" && l.to == p));

    let resolved = e
        .perform(
            p,
            "resolve",
            &fields(json!({"root_cause": "the nightly backup locks the spool"})),
            None,
            &manager(),
            None,
        )
        .await
        .expect("resolve the problem");
    assert_eq!(resolved.stage(), "resolved");

    for i in [a, b] {
        let view = e.instance(i).await.expect("incident");
        assert_eq!(view.stage(), "resolved", "incident {i}");
        assert_eq!(
            view.field("resolution"),
            Some(json!("the nightly backup locks the spool")),
            "given by `with`"
        );
        let history = e.history(i).await.expect("history");
        let last = history
            .iter()
            .rev()
            .find(|ev| ev.kind == "transitioned")
            .expect("a transition");
        assert_eq!(last.actor.as_ref(), "pam", "the problem manager's action");
        assert_eq!(
            last.reason.as_deref(),
            Some(format!("problem {p}: resolve").as_str()),
            "its cause"
        );
        assert!(e.verify(i).await.expect("verify"));
    }
    // The incident resolved on its own is left as it was.
    assert_eq!(e.state(done).await.expect("state").version, done_before);

    let history = e.history(p).await.expect("history");
    let acted: Vec<i64> = history
        .iter()
        .filter(|ev| ev.kind == "acted_on")
        .map(|ev| ev.data["other"].as_i64().expect("other"))
        .collect();
    assert_eq!(acted, vec![a.0, b.0], "{history:#?}");
    assert!(e.verify(p).await.expect("verify"));
}

/// A `when` over linked tickets: a major incident closes only once its problem is resolved;
/// a parent only once every child is closed (and with no children at all).
async fn when_reads_linked_tickets<S: Store>(node: &Node<S>) {
    let e = &node.engine;
    let none = Map::new();
    let p = problem(node).await;
    let major = incident(node, "Mail down", "major").await;
    e.link(major, p, "caused_by", &agent()).await.expect("link");
    e.perform(
        major,
        "resolve",
        &fields(json!({"resolution": "workaround: restart"})),
        None,
        &agent(),
        None,
    )
    .await
    .expect("resolve");
    let refused = e
        .perform(major, "close", &none, None, &agent(), None)
        .await
        .expect_err("the problem is still open");
    match refused {
        EngineError::ConditionFailed { condition, .. } => assert_eq!(
            condition,
            "priority_class == minor or any caused_by where stage in (resolved, closed)"
        ),
        other => panic!("{other:?}"),
    }
    e.perform(
        p,
        "resolve",
        &fields(json!({"root_cause": "spool lock"})),
        None,
        &manager(),
        None,
    )
    .await
    .expect("problem resolved");
    let closed = e
        .perform(major, "close", &none, None, &agent(), None)
        .await
        .expect("now it may close");
    assert_eq!(closed.stage(), "closed");

    // Parent and children: `all` holds over none, and then only when every child is closed.
    let parent = incident(node, "Site outage", "major").await;
    let lonely = incident(node, "Printer jam", "minor").await;
    e.perform(lonely, "close_parent", &none, None, &agent(), None)
        .await
        .expect("no children: nothing to wait for");
    let c1 = incident(node, "Floor 1", "minor").await;
    let c2 = incident(node, "Floor 2", "minor").await;
    for c in [c1, c2] {
        e.link(c, parent, "parent", &agent()).await.expect("child");
    }
    // The parent's own side names them `children`.
    let links = e.links(parent).await.expect("links");
    assert!(links.iter().all(|l| l.name.as_deref() == Some("children")));
    e.perform(c1, "close_parent", &none, None, &agent(), None)
        .await
        .expect("c1 has no children");
    assert!(matches!(
        e.perform(parent, "close_parent", &none, None, &agent(), None)
            .await,
        Err(EngineError::ConditionFailed { .. })
    ));
    e.perform(c2, "close_parent", &none, None, &agent(), None)
        .await
        .expect("c2 closes");
    e.perform(parent, "close_parent", &none, None, &agent(), None)
        .await
        .expect("every child is closed");
}

/// Linking follows the declarations: the kind must be one the process declares, the other
/// ticket of the process it names, within `one`; linking again changes nothing; and a `via`
/// kind named from the reverse side is stored from the declaring side.
async fn links_follow_declarations<S: Store>(node: &Node<S>) {
    let e = &node.engine;
    let p = problem(node).await;
    let p2 = problem(node).await;
    let i = incident(node, "No mail", "minor").await;
    let j = incident(node, "No mail either", "minor").await;

    let refused = |r: Result<_, EngineError>| match r {
        Err(EngineError::LinkRefused { why, known, .. }) => (why, known),
        other => panic!("expected a refusal, got {other:?}"),
    };
    let (why, known) = refused(e.link(i, p, "relates_to", &agent()).await);
    assert!(why.contains("no link `relates_to`"), "{why}");
    assert_eq!(known, vec!["caused_by", "parent", "children"]);
    let (why, _) = refused(e.link(i, j, "caused_by", &agent()).await);
    assert!(why.contains("links to a problem ticket"), "{why}");

    // From the problem's side, through its `via` name: stored as incident `caused_by` problem.
    let (_, new) = e.link(p, i, "incidents", &manager()).await.expect("link");
    assert!(new);
    let (_, again) = e
        .link(i, p, "caused_by", &agent())
        .await
        .expect("same link");
    assert!(
        !again,
        "the same link, named from the other side, exists already"
    );
    let links = e.links(i).await.expect("links");
    assert_eq!(links.len(), 1, "{links:?}");
    assert_eq!((links[0].from, links[0].to), (i, p));
    assert_eq!(links[0].kind, "caused_by");

    // `caused_by: one problem`: a second problem is refused, whichever side asks.
    let (why, _) = refused(e.link(i, p2, "caused_by", &agent()).await);
    assert!(why.contains("already links to"), "{why}");
    let (why, _) = refused(e.link(p2, i, "incidents", &manager()).await);
    assert!(why.contains("already links to"), "{why}");
    let (why, _) = refused(e.link(i, i, "parent", &agent()).await);
    assert!(why.contains("itself"), "{why}");
    // Nothing refused was written.
    assert_eq!(e.links(p2).await.expect("links").len(), 0);
}

/// A change and the changes it carries to linked tickets are written together or not at all:
/// one stale version among them refuses the whole, and nothing is written.
async fn cascade_is_all_or_nothing<S: Store>(node: &Node<S>) {
    let e = &node.engine;
    let a = incident(node, "A", "minor").await;
    let b = incident(node, "B", "minor").await;
    let a_before = e.state(a).await.expect("a");
    let b_stale = e.state(b).await.expect("b");
    e.comment(b, "moved on", &agent()).await.expect("comment");

    let mut change = logic::unchanged(&a_before);
    let mut a_after = a_before.clone();
    a_after.version += 1;
    change.instance = Arc::new(a_after);
    change.events.push(itsmflow_engine::runtime::types::Event {
        seq: a_before.version + 1,
        at: start(),
        actor: "ann".into(),
        kind: itsmflow_engine::runtime::types::EventKind::Commented {
            text: "written only with b".into(),
        },
        reason: None,
    });
    change.cascade.push(logic::unchanged(&b_stale));
    let refused = e.store().commit(change).await.expect_err("b is stale");
    assert!(
        matches!(refused, StoreError::Conflict { id, .. } if id == b),
        "{refused:?}"
    );
    assert_eq!(e.state(a).await.expect("a"), a_before, "a is untouched");
    assert_eq!(
        e.history(a).await.expect("history").len() as i64,
        a_before.version
    );
}

async fn node<S: Store>(store: S, catalog: Arc<Catalog>) -> Node<S> {
    let clock = Arc::new(ManualClock::new(start()));
    Node::open(store, catalog, clock, &sources()).await
}

async fn close<S: Store>(node: Node<S>) {
    node.stop().await;
}

on_every_store!(effects, problem_resolves_its_incidents, node, close);
on_every_store!(conditions, when_reads_linked_tickets, node, close);
on_every_store!(declarations, links_follow_declarations, node, close);
on_every_store!(atomic, cascade_is_all_or_nothing, node, close);
