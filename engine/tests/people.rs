//! People a ticket names: `person` fields that hold users of the tenant only, transitions
//! performed by the caller, the creator, the assignee or someone's manager, and approvals asked
//! of a person (the requester's manager); on every store (memory, a real SQLite file, a real
//! PostgreSQL database).

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use itsmflow_dsl::Sources;
use itsmflow_engine::runtime::{
    Actor, ApprovalRefusal, Catalog, EngineError, InstanceId, ManualClock, StaticDirectory,
};
use itsmflow_engine::store::Store;
use serde_json::{json, Map};
use support::{fields, Node};

#[macro_use]
mod support;

const REQUESTS: &str = r#"
role agent
role senior

queue desk { members agent }

process request {
  fields {
    title: text required
    requester: person required
    cost: int default 0
  }

  stage submitted initial
  stage approval
  stage working { queue desk }
  stage delivered
  stage closed final
  stage rejected final

  transition submit: submitted -> approval by requester or role agent
  transition deliver: working -> delivered by assignee
  transition confirm: delivered -> closed by requester
  transition escalate: delivered -> working by manager of requester

  approval in approval {
    when cost > 1000 => manager of requester, then any 1 of role senior
    when cost > 0 => manager of requester
    otherwise => none
    on approve => working
    on reject => rejected
  }
}
"#;

fn project() -> Sources {
    let mut s = Sources::new();
    s.add("request.itsm", REQUESTS);
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

fn agent(name: &str) -> Actor {
    Actor::new(name, &["agent"])
}

fn directory() -> Arc<StaticDirectory> {
    let d = StaticDirectory::new();
    d.set("agent", &["alice", "andy"]);
    d.set("senior", &["sid"]);
    for u in ["rita", "bob", "mona", "max"] {
        d.add_user(u);
    }
    d.set_manager("rita", "mona");
    d.set_manager("bob", "max");
    Arc::new(d)
}

struct World<S: Store> {
    node: Node<S>,
}

impl<S: Store> World<S> {
    async fn raise(
        &self,
        requester: &str,
        cost: i64,
        by: &Actor,
    ) -> Result<InstanceId, EngineError> {
        let v = self
            .node
            .engine
            .create(
                "request",
                &fields(json!({"title": "t", "requester": requester, "cost": cost})),
                by,
            )
            .await?;
        Ok(v.id())
    }

    async fn act(&self, id: InstanceId, action: &str, by: &Actor) -> Result<String, EngineError> {
        self.node
            .engine
            .perform(id, action, &Map::new(), None, by, None)
            .await
            .map(|v| v.stage().to_string())
    }

    async fn vote(&self, id: InstanceId, by: &Actor) -> Result<String, EngineError> {
        self.node
            .engine
            .vote(id, true, None, None, None, by)
            .await
            .map(|v| v.stage().to_string())
    }
}

fn forbidden(r: Result<String, EngineError>) -> Vec<String> {
    match r {
        Err(EngineError::Forbidden { people, .. }) => people,
        other => panic!("expected forbidden, got {other:?}"),
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

/// A person field holds users of the tenant only, on creation and on update.
async fn person_fields_hold_users<S: Store>(w: &World<S>) {
    let r = w.raise("ritaa", 0, &someone("rita")).await;
    match r {
        Err(EngineError::InvalidFields(errors)) => {
            assert_eq!(errors.len(), 1);
            assert_eq!(errors[0].field, "requester");
            assert!(
                errors[0].message.contains("`ritaa` is not a user"),
                "{errors:?}"
            );
        }
        other => panic!("expected invalid fields, got {other:?}"),
    }
    let id = w.raise("rita", 0, &someone("rita")).await.expect("raise");
    let r = w
        .node
        .engine
        .update(
            id,
            &fields(json!({"requester": "nobody"})),
            None,
            &agent("alice"),
            None,
        )
        .await;
    assert!(matches!(r, Err(EngineError::InvalidFields(_))), "{r:?}");
    w.node
        .engine
        .update(
            id,
            &fields(json!({"requester": "bob"})),
            None,
            &agent("alice"),
            None,
        )
        .await
        .expect("a user");
}
on_every_store!(fields_of_people, person_fields_hold_users, world, close);

/// `by requester or role agent`, `by assignee`, `by requester`, `by manager of requester`.
async fn transitions_by_people<S: Store>(w: &World<S>) {
    // Raised by an agent for rita: only rita (or an agent) submits it.
    let id = w.raise("rita", 0, &agent("alice")).await.expect("raise");
    let who = forbidden(w.act(id, "submit", &someone("bob")).await);
    assert_eq!(who, ["requester"]);
    // No approval needed: straight to work.
    assert_eq!(
        w.act(id, "submit", &someone("rita")).await.expect("submit"),
        "working"
    );

    // Delivered by whoever holds the task.
    assert!(
        w.act(id, "deliver", &agent("andy")).await.is_err(),
        "nobody holds it yet"
    );
    let task = w
        .node
        .engine
        .claim_next("desk", &agent("alice"), TimeDelta::minutes(10))
        .await
        .expect("claim")
        .expect("a task");
    assert_eq!(
        forbidden(w.act(id, "deliver", &agent("andy")).await),
        ["assignee"]
    );
    let v = w
        .node
        .engine
        .complete(task.id, task.token, "deliver", &Map::new(), &agent("alice"))
        .await
        .expect("the assignee delivers");
    assert_eq!(v.stage(), "delivered");

    // Rita's manager may send it back; nobody else's.
    assert_eq!(
        forbidden(w.act(id, "escalate", &someone("max")).await),
        ["manager of requester"]
    );
    assert_eq!(
        w.act(id, "escalate", &someone("mona"))
            .await
            .expect("escalate"),
        "working"
    );
    let task = w
        .node
        .engine
        .claim_next("desk", &agent("alice"), TimeDelta::minutes(10))
        .await
        .expect("claim")
        .expect("a task");
    w.node
        .engine
        .complete(task.id, task.token, "deliver", &Map::new(), &agent("alice"))
        .await
        .expect("deliver");
    // Only the requester confirms; an agent may not.
    assert_eq!(
        forbidden(w.act(id, "confirm", &agent("alice")).await),
        ["requester"]
    );
    assert_eq!(
        w.act(id, "confirm", &someone("rita"))
            .await
            .expect("confirm"),
        "closed"
    );
}
on_every_store!(performed_by_people, transitions_by_people, world, close);

/// An approval asked of the requester's manager, then of a senior: only they vote.
async fn approved_by_the_manager<S: Store>(w: &World<S>) {
    let id = w
        .raise("rita", 2000, &someone("rita"))
        .await
        .expect("raise");
    assert_eq!(
        w.act(id, "submit", &someone("rita")).await.expect("submit"),
        "approval"
    );
    let a =
        serde_json::to_value(w.node.engine.approval(id).await.expect("approval")).expect("json");
    assert_eq!(
        a["levels"][0]["groups"][0]["person"],
        "manager of requester"
    );
    assert_eq!(a["levels"][0]["groups"][0]["approvers"], json!(["mona"]));
    // Max manages bob, not rita.
    match w.vote(id, &someone("max")).await {
        Err(EngineError::ApprovalRefused {
            refusal: ApprovalRefusal::NotApprover { .. },
            ..
        }) => {}
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(
        w.vote(id, &someone("mona")).await.expect("vote"),
        "approval"
    );
    assert_eq!(w.vote(id, &someone("sid")).await.expect("vote"), "working");

    // A requester whose manager the directory does not know: the level cannot be met, and
    // says so.
    let id = w.raise("mona", 10, &someone("mona")).await.expect("raise");
    w.act(id, "submit", &someone("mona")).await.expect("submit");
    let a =
        serde_json::to_value(w.node.engine.approval(id).await.expect("approval")).expect("json");
    assert_eq!(a["levels"][0]["state"], "cannot_proceed", "{a}");
    let why = a["levels"][0]["cannot_proceed"].as_str().unwrap_or("");
    assert!(
        why.contains("names nobody as `manager of requester`"),
        "{why}"
    );
}
on_every_store!(manager_approves, approved_by_the_manager, world, close);
