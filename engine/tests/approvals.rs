//! Approvals run: plans chosen by rule, levels opened with their approvers fixed, votes counted
//! once, quorums of every shape, levels in sequence and groups in parallel, early failure,
//! expiry and reminders on virtual time, delegation, segregation of duties, refusals that
//! change nothing, fifty approvers voting at once, and restarts mid-approval; on every store
//! (memory, a real SQLite file, a real PostgreSQL database).

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use itsmflow_dsl::Sources;
use itsmflow_engine::runtime::{
    Actor, ApprovalRefusal, Catalog, EngineError, InstanceId, ManualClock, NotificationFilter,
    StaticDirectory,
};
use itsmflow_engine::store::postgres::PostgresStore;
use itsmflow_engine::store::sqlite::SqliteStore;
use itsmflow_engine::store::Store;
use serde_json::{json, Value};
use support::{fields, Node, Place};

#[macro_use]
mod support;

/// Every shape of plan, one rule each, on `24x7` time (no targets), so delays are plain.
const CHANGE: &str = r#"
role requester
role cab
role change_manager
role ecab
role security
role finance
role senior

process change {
  fields {
    title: text required
    kind: enum(standard, minor, major, emergency, secure, poll, board) required
    implementer: text
  }

  stage draft initial
  stage approval {
    notify approvers "Please review change {id}: {title}"
  }
  stage approved
  stage rejected final
  stage expired final
  stage done final

  transition submit: draft -> approval
  transition withdraw: approval -> rejected
  transition finish: approved -> done

  approval in approval {
    when kind == standard => none
    when kind == minor => any 1 of role change_manager
    when kind == major => any 2 of role cab, then any 1 of role change_manager
    when kind == emergency => all of role ecab
    when kind == secure => any 1 of role security and any 1 of role finance
    when kind == poll => 50% of role cab
    otherwise => any 3 of role senior
    excludes implementer
    remind after 1d
    remind after 2d
    on approve => approved
    on reject => rejected
    on expire after 3d => expired
  }
}
"#;

fn project() -> Sources {
    let mut s = Sources::new();
    s.add("change.itsm", CHANGE);
    s
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0)
        .single()
        .expect("date")
}

fn person(name: &str) -> Actor {
    Actor::new(name, &["requester", "cab", "change_manager", "ecab"])
}

fn directory() -> Arc<StaticDirectory> {
    let d = StaticDirectory::new();
    d.set("cab", &["carol", "cedric", "chloe"]);
    d.set("change_manager", &["mia"]);
    d.set("ecab", &["eva", "emil"]);
    d.set("security", &["sam"]);
    d.set("finance", &["fay"]);
    d.set("senior", &["sid"]);
    Arc::new(d)
}

/// A test's world: the node, its clock, and the directory its approvers come from.
struct World<S: Store> {
    node: Node<S>,
    clock: Arc<ManualClock>,
    dir: Arc<StaticDirectory>,
}

impl<S: Store> World<S> {
    async fn raise(&self, kind: &str, by: &str) -> InstanceId {
        let e = &self.node.engine;
        let v = e
            .create(
                "change",
                &fields(json!({"title": "t", "kind": kind, "implementer": "ivan"})),
                &person(by),
            )
            .await
            .expect("create");
        e.perform(
            v.id(),
            "submit",
            &Default::default(),
            None,
            &person(by),
            None,
        )
        .await
        .expect("submit");
        v.id()
    }

    async fn vote(&self, id: InstanceId, who: &str, approve: bool) -> Result<String, EngineError> {
        self.node
            .engine
            .vote(
                id,
                approve,
                Some(format!("{who} says so")),
                None,
                None,
                &person(who),
            )
            .await
            .map(|v| v.stage().to_string())
    }

    async fn stage(&self, id: InstanceId) -> String {
        let v = self.node.engine.instance(id).await.expect("instance");
        v.stage().to_string()
    }

    async fn approval(&self, id: InstanceId) -> Value {
        let a = self.node.engine.approval(id).await.expect("approval");
        serde_json::to_value(a).expect("json")
    }

    /// The history's kinds, in order.
    async fn kinds(&self, id: InstanceId) -> Vec<String> {
        let h = self.node.engine.history(id).await.expect("history");
        h.iter().map(|e| e.kind.to_string()).collect()
    }

    async fn waiting_for(&self, user: &str) -> Vec<i64> {
        let b = self
            .node
            .engine
            .pending_ballots(user, 100)
            .await
            .expect("ballots");
        b.iter().map(|b| b.instance.0).collect()
    }

    async fn advance(&self, by: TimeDelta) {
        self.clock.advance(by);
        self.node.scheduler.settled().await;
    }
}

fn refusal(r: Result<String, EngineError>) -> ApprovalRefusal {
    match r {
        Err(EngineError::ApprovalRefused { refusal, .. }) => refusal,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// A world on `store`, with the approvals project published and a directory of approvers.
async fn world<S: Store>(store: S, catalog: Arc<Catalog>) -> World<S> {
    let clock = Arc::new(ManualClock::new(start()));
    let dir = directory();
    let node = Node::open_with(store, catalog, clock.clone(), &project(), dir.clone()).await;
    World { node, clock, dir }
}

async fn close<S: Store>(w: World<S>) {
    w.node.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Scenarios

/// A plan of `none` takes `on approve` in the submit's own change, recorded with its rule.
async fn none_moves_on_at_once<S: Store>(w: &World<S>) {
    let id = w.raise("standard", "rita").await;
    assert_eq!(w.stage(id).await, "approved");
    let h = w.node.engine.history(id).await.expect("history");
    let kinds: Vec<&str> = h.iter().map(|e| e.kind).collect();
    // The stage's `notify approvers` finds nobody to tell, and says so.
    assert_eq!(
        kinds,
        [
            "created",
            "transitioned",
            "approval_requested",
            "skipped",
            "approval_decided"
        ]
    );
    assert_eq!(h[3].data["action"], "notify approvers");
    assert_eq!(h[2].data["rule"], 0);
    assert!(h[2]
        .reason
        .as_deref()
        .unwrap_or("")
        .contains("kind == standard"));
    assert_eq!(h[4].data["outcome"], "approve");
    // The submit and the approval are one change: one version after the other, both written.
    assert_eq!(h[1].seq + 1, h[2].seq);
    assert!(w.node.engine.verify(id).await.expect("verify"));
}
on_every_store!(none_plan, none_moves_on_at_once, world, close);

/// Two levels in sequence: two of three CAB members, then the change manager; each level's
/// approvers are fixed when it opens, and "my approvals" follows.
async fn levels_in_sequence<S: Store>(w: &World<S>) {
    let id = w.raise("major", "rita").await;
    // Entering the stage told the level's approvers, in the definition's words.
    let notes = w
        .node
        .engine
        .notifications(
            &NotificationFilter {
                instance: Some(id),
                ..Default::default()
            },
            100,
            None,
        )
        .await
        .expect("notifications");
    let review = notes
        .iter()
        .find(|n| n.role == "approvers")
        .expect("the stage's notice");
    assert_eq!(review.message, format!("Please review change {id}: t"));
    assert_eq!(review.recipients, ["carol", "cedric", "chloe"]);
    let a = w.approval(id).await;
    assert_eq!(a["open_level"], 1);
    assert_eq!(
        a["levels"][0]["groups"][0]["approvers"],
        json!(["carol", "cedric", "chloe"])
    );
    assert_eq!(a["levels"][0]["groups"][0]["needed"], 2);
    assert_eq!(a["levels"][1]["state"], "to_come");
    assert!(a["explain"].as_str().unwrap_or("").contains("rule 3 of 7"));
    assert_eq!(w.waiting_for("carol").await, [id.0]);
    assert!(
        w.waiting_for("mia").await.is_empty(),
        "level 2 is not open yet"
    );

    // Who holds the role later changes nothing for the open level.
    w.dir.set("cab", &["carol", "zoe"]);
    assert!(matches!(
        refusal(w.vote(id, "zoe", true).await),
        ApprovalRefusal::NotApprover { .. }
    ));
    assert_eq!(w.vote(id, "cedric", true).await.expect("vote"), "approval");
    // ... but a later level takes the holders at its own opening.
    w.dir.set("change_manager", &["mia", "max"]);
    assert_eq!(w.vote(id, "chloe", true).await.expect("vote"), "approval");
    let a = w.approval(id).await;
    assert_eq!(a["open_level"], 2);
    assert_eq!(a["levels"][0]["state"], "approved");
    assert_eq!(
        a["levels"][1]["groups"][0]["approvers"],
        json!(["max", "mia"])
    );
    assert!(w.waiting_for("carol").await.is_empty(), "level 1 closed");
    assert_eq!(w.waiting_for("max").await, [id.0]);
    assert!(matches!(
        refusal(w.vote(id, "carol", true).await),
        ApprovalRefusal::NotApprover { level: 2, .. }
    ));
    assert_eq!(w.vote(id, "max", true).await.expect("vote"), "approved");
    assert!(w.waiting_for("mia").await.is_empty());
    let kinds = w.kinds(id).await;
    assert_eq!(kinds.iter().filter(|k| *k == "voted").count(), 3);
    assert_eq!(kinds.last().map(String::as_str), Some("approval_decided"));
    assert!(w.node.engine.verify(id).await.expect("verify"));
}
on_every_store!(sequence, levels_in_sequence, world, close);

/// A level fails as soon as its quorum can no longer be reached, with the reasons recorded.
async fn early_failure<S: Store>(w: &World<S>) {
    let id = w.raise("major", "rita").await;
    assert_eq!(w.vote(id, "carol", false).await.expect("vote"), "approval");
    // Two of three still could approve; after a second rejection they cannot.
    assert_eq!(w.vote(id, "cedric", false).await.expect("vote"), "rejected");
    let h = w.node.engine.history(id).await.expect("history");
    let decided = h
        .iter()
        .find(|e| e.kind == "approval_decided")
        .expect("decided");
    assert_eq!(decided.data["outcome"], "reject");
    let why = decided.reason.as_deref().unwrap_or("");
    assert!(why.contains("carol rejected: carol says so"), "{why}");
    assert!(why.contains("cedric rejected"), "{why}");
    assert!(w.waiting_for("chloe").await.is_empty());
    // The vote after the close is refused and changes nothing.
    let version = w.node.engine.instance(id).await.expect("i").version();
    assert!(matches!(
        refusal(w.vote(id, "chloe", true).await),
        ApprovalRefusal::NoApproval { .. }
    ));
    assert_eq!(
        w.node.engine.instance(id).await.expect("i").version(),
        version
    );
}
on_every_store!(failure, early_failure, world, close);

/// `all of role R`: every eligible holder; one rejection ends it.
async fn all_of<S: Store>(w: &World<S>) {
    let id = w.raise("emergency", "rita").await;
    assert_eq!(w.vote(id, "eva", true).await.expect("vote"), "approval");
    assert_eq!(w.vote(id, "emil", true).await.expect("vote"), "approved");
    let id = w.raise("emergency", "rita").await;
    assert_eq!(w.vote(id, "emil", false).await.expect("vote"), "rejected");
}
on_every_store!(all, all_of, world, close);

/// `50% of role R`: half the holders, rounded up (2 of 3).
async fn percentage<S: Store>(w: &World<S>) {
    let id = w.raise("poll", "rita").await;
    assert_eq!(w.approval(id).await["levels"][0]["groups"][0]["needed"], 2);
    assert_eq!(w.vote(id, "carol", true).await.expect("vote"), "approval");
    assert_eq!(w.vote(id, "chloe", true).await.expect("vote"), "approved");
}
on_every_store!(percent, percentage, world, close);

/// Groups in one level must each agree; someone in both counts in both.
async fn parallel_groups<S: Store>(w: &World<S>) {
    let id = w.raise("secure", "rita").await;
    assert_eq!(w.waiting_for("sam").await, [id.0]);
    assert_eq!(w.waiting_for("fay").await, [id.0]);
    assert_eq!(w.vote(id, "fay", true).await.expect("vote"), "approval");
    assert_eq!(w.vote(id, "sam", true).await.expect("vote"), "approved");

    w.dir.set("finance", &["sam"]);
    let id = w.raise("secure", "rita").await;
    assert_eq!(w.vote(id, "sam", true).await.expect("vote"), "approved");
}
on_every_store!(groups, parallel_groups, world, close);

/// Segregation of duties, double votes, non-approvers and closed levels: each refused with
/// its reason, and nothing written.
async fn refusals<S: Store>(w: &World<S>) {
    // Carol raises it: though she holds `cab`, she is no approver of her own change.
    let id = w.raise("major", "carol").await;
    let a = w.approval(id).await;
    assert_eq!(
        a["levels"][0]["groups"][0]["approvers"],
        json!(["cedric", "chloe"])
    );
    assert_eq!(a["levels"][0]["excluded"], json!(["carol"]));
    let version = w.node.engine.instance(id).await.expect("i").version();
    assert!(matches!(
        refusal(w.vote(id, "carol", true).await),
        ApprovalRefusal::OwnTicket
    ));
    // The implementer named in the ticket may not approve either, whatever role they hold.
    assert!(matches!(
        refusal(w.vote(id, "ivan", true).await),
        ApprovalRefusal::OwnTicket
    ));
    assert!(matches!(
        refusal(w.vote(id, "nobody", true).await),
        ApprovalRefusal::NotApprover { level: 1, .. }
    ));
    assert_eq!(
        w.node.engine.instance(id).await.expect("i").version(),
        version
    );
    w.vote(id, "cedric", true).await.expect("vote");
    assert!(matches!(
        refusal(w.vote(id, "cedric", false).await),
        ApprovalRefusal::AlreadyVoted { approve: true, .. }
    ));
    w.vote(id, "chloe", true).await.expect("vote");
    // A vote meant for level 1, now closed, is not counted on level 2.
    let r = w
        .node
        .engine
        .vote(id, true, None, Some(0), None, &person("mia"))
        .await
        .map(|v| v.stage().to_string());
    assert!(matches!(
        refusal(r),
        ApprovalRefusal::LevelClosed { level: 1, open: 2 }
    ));
    // A stale version given by the voter is a conflict.
    let r = w
        .node
        .engine
        .vote(id, true, None, None, Some(1), &person("mia"))
        .await;
    assert!(matches!(r, Err(EngineError::Store(_))), "{r:?}");
    assert_eq!(w.vote(id, "mia", true).await.expect("vote"), "approved");
    assert!(w.node.engine.verify(id).await.expect("verify"));
}
on_every_store!(refused, refusals, world, close);

/// A delegated vote: to a holder of the role, or anyone an administrator names; recorded as
/// cast by the delegate on the approver's behalf.
async fn delegation<S: Store>(w: &World<S>) {
    let e = &w.node.engine;
    let id = w.raise("minor", "rita").await;
    // Olga does not hold `change_manager`: only an administrator may name her.
    let r = e.delegate(id, None, "olga", &person("mia"), false).await;
    assert!(matches!(
        r,
        Err(EngineError::ApprovalRefused {
            refusal: ApprovalRefusal::BadDelegate { .. },
            ..
        })
    ));
    // Nor to the requester, by anyone.
    w.dir.set("change_manager", &["mia", "rita"]);
    let r = e.delegate(id, None, "rita", &person("mia"), false).await;
    assert!(matches!(
        r,
        Err(EngineError::ApprovalRefused {
            refusal: ApprovalRefusal::BadDelegate { .. },
            ..
        })
    ));
    // Someone else's vote is not theirs to delegate.
    let r = e
        .delegate(id, Some("mia"), "olga", &person("rita"), false)
        .await;
    assert!(r.is_err());
    w.dir.set("change_manager", &["mia", "olga"]);
    e.delegate(id, None, "olga", &person("mia"), false)
        .await
        .expect("delegate");
    assert!(w.waiting_for("mia").await.is_empty());
    let b = e.pending_ballots("olga", 10).await.expect("ballots");
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].on_behalf_of.as_deref(), Some("mia"));
    assert!(matches!(
        refusal(w.vote(id, "mia", true).await),
        ApprovalRefusal::Delegated { .. }
    ));
    assert_eq!(w.vote(id, "olga", true).await.expect("vote"), "approved");
    let h = e.history(id).await.expect("history");
    let voted = h.iter().find(|e| e.kind == "voted").expect("voted");
    assert_eq!(&*voted.actor, "olga");
    assert_eq!(voted.data["approver"], "mia");

    // An administrator names anyone who exists, for an approver.
    w.dir.set("change_manager", &["mia"]);
    let id = w.raise("minor", "rita").await;
    w.dir.set("auditors", &["otto"]);
    e.delegate(id, Some("mia"), "otto", &person("admin"), true)
        .await
        .expect("named by an administrator");
    assert_eq!(w.vote(id, "otto", false).await.expect("vote"), "rejected");
    let r = e
        .delegate(id, Some("mia"), "ghost", &person("admin"), true)
        .await;
    assert!(r.is_err(), "no such user");
}
on_every_store!(delegated, delegation, world, close);

/// Reminders to those who have not voted, then expiry, on virtual time; both durable timers.
async fn reminders_then_expiry<S: Store>(w: &World<S>) {
    let id = w.raise("major", "rita").await;
    w.vote(id, "carol", true).await.expect("vote");
    w.advance(TimeDelta::hours(23)).await;
    assert!(!w.kinds(id).await.contains(&"reminded".to_string()));
    w.advance(TimeDelta::hours(1)).await;
    let kinds = w.kinds(id).await;
    assert_eq!(kinds.iter().filter(|k| *k == "reminded").count(), 1);
    let notes = w
        .node
        .engine
        .notifications(
            &NotificationFilter {
                instance: Some(id),
                ..Default::default()
            },
            100,
            None,
        )
        .await
        .expect("notifications");
    let reminder = notes
        .iter()
        .find(|n| n.message.starts_with("reminder"))
        .expect("a reminder");
    assert_eq!(
        reminder.recipients,
        ["cedric", "chloe"],
        "only those who have not voted"
    );
    let opened = notes
        .iter()
        .find(|n| n.message.contains("awaits your approval"));
    assert_eq!(
        opened.map(|n| n.recipients.clone()),
        Some(vec!["carol".into(), "cedric".into(), "chloe".into()])
    );
    w.advance(TimeDelta::days(1)).await;
    assert_eq!(
        w.kinds(id)
            .await
            .iter()
            .filter(|k| *k == "reminded")
            .count(),
        2
    );
    assert_eq!(w.stage(id).await, "approval");
    w.advance(TimeDelta::days(1)).await;
    assert_eq!(w.stage(id).await, "expired");
    assert!(w.waiting_for("cedric").await.is_empty());
    // Nothing fires twice.
    let kinds = w.kinds(id).await;
    w.advance(TimeDelta::days(5)).await;
    assert_eq!(w.kinds(id).await, kinds);
    assert!(w.node.engine.verify(id).await.expect("verify"));
}
on_every_store!(expiry, reminders_then_expiry, world, close);

/// A level its approvers cannot meet waits, and says so: on the instance, in the history and
/// to the process managers.
async fn cannot_be_met<S: Store>(w: &World<S>) {
    let id = w.raise("board", "rita").await;
    assert_eq!(w.stage(id).await, "approval");
    let a = w.approval(id).await;
    assert_eq!(a["levels"][0]["state"], "cannot_proceed");
    let why = a["levels"][0]["cannot_proceed"].as_str().unwrap_or("");
    assert!(
        why.contains("needs 3 approvals of role `senior`, which has 1 approvers"),
        "{why}"
    );
    assert!(w.kinds(id).await.contains(&"approval_stuck".to_string()));
    let notes = w
        .node
        .engine
        .notifications(
            &NotificationFilter {
                role: Some("process_manager".into()),
                ..Default::default()
            },
            10,
            None,
        )
        .await
        .expect("notifications");
    assert_eq!(notes.len(), 1);
    assert!(notes[0].message.contains("cannot be approved"));
    // It can still be withdrawn, which closes its ballots.
    w.node
        .engine
        .perform(
            id,
            "withdraw",
            &Default::default(),
            None,
            &person("rita"),
            None,
        )
        .await
        .expect("withdraw");
    assert!(w.waiting_for("sid").await.is_empty());
}
on_every_store!(unmeetable, cannot_be_met, world, close);

/// Fifty approvers vote at once: every vote is counted, each exactly once.
async fn fifty_at_once<S: Store>(w: &World<S>) {
    let names: Vec<String> = (0..50).map(|i| format!("e{i:02}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    w.dir.set("ecab", &refs);
    let id = w.raise("emergency", "rita").await;
    let engine = w.node.engine.clone();
    let votes: Vec<_> = names
        .iter()
        .map(|n| {
            let engine = engine.clone();
            let who = person(n);
            tokio::spawn(async move { engine.vote(id, true, None, None, None, &who).await })
        })
        .collect();
    for v in votes {
        v.await.expect("joined").expect("every vote is taken");
    }
    let h = engine.history(id).await.expect("history");
    let mut voters: Vec<&str> = h
        .iter()
        .filter(|e| e.kind == "voted")
        .map(|e| e.data["approver"].as_str().unwrap_or(""))
        .collect();
    voters.sort();
    assert_eq!(voters, refs, "each once");
    assert_eq!(w.stage(id).await, "approved");
    assert!(engine.verify(id).await.expect("verify"));
}
on_every_store!(fifty, fifty_at_once, world, close);

// ---------------------------------------------------------------------------------------------
// Restarts

/// A server restarted mid-approval resumes where it was: votes cast stay cast, the open level
/// keeps its approvers, and its timers fire.
async fn restart_mid_approval<S: Store>(open: impl AsyncFn(Arc<Catalog>) -> S) {
    let clock = Arc::new(ManualClock::new(start()));
    let dir = directory();
    let catalog = Arc::new(Catalog::default());
    let node = Node::open_with(
        open(catalog.clone()).await,
        catalog,
        clock.clone(),
        &project(),
        dir.clone(),
    )
    .await;
    let w = World { node, clock, dir };
    let id = w.raise("major", "rita").await;
    w.vote(id, "carol", true).await.expect("vote");
    let World { node, clock, dir } = w;
    node.stop().await;

    let catalog = Arc::new(Catalog::default());
    let node = Node::open_with(
        open(catalog.clone()).await,
        catalog,
        clock.clone(),
        &project(),
        dir.clone(),
    )
    .await;
    let w = World { node, clock, dir };
    assert!(matches!(
        refusal(w.vote(id, "carol", true).await),
        ApprovalRefusal::AlreadyVoted { .. }
    ));
    assert_eq!(w.waiting_for("cedric").await, [id.0]);
    w.advance(TimeDelta::days(1)).await;
    assert!(w.kinds(id).await.contains(&"reminded".to_string()));
    assert_eq!(w.vote(id, "cedric", true).await.expect("vote"), "approval");
    assert_eq!(w.vote(id, "mia", true).await.expect("vote"), "approved");
    assert!(w.node.engine.verify(id).await.expect("verify"));
    w.node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumes_after_a_sqlite_restart() {
    let place = Place::new("sqlite").await;
    let Place::Sqlite(path) = place.clone() else {
        unreachable!()
    };
    restart_mid_approval(async |catalog| SqliteStore::open(&path, catalog).await.expect("sqlite"))
        .await;
    place.remove().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumes_after_a_postgres_restart() {
    let place = Place::new("postgres").await;
    let Place::Postgres(url) = place.clone() else {
        unreachable!()
    };
    restart_mid_approval(async |catalog| {
        PostgresStore::connect(&url, catalog)
            .await
            .expect("postgres")
    })
    .await;
    place.remove().await;
}
