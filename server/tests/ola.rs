//! Operational-level targets in a running server, over a real socket: the instance view shows
//! the OLA clock of the ticket's stay in its queue, the queue's task listing carries its OLA
//! due time, `explain` names the target row, and when the stay passes its target (three
//! seconds on 24x7 here) the breach is recorded once and the queue's members are notified
//! through the outbox. The test waits for the notification; it does not time it.

mod support;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value as Json};
use support::{Db, Server};

const PROJECT: &str = r#"
role agent

queue desk {
  tier 1
  members agent
  targets on 24x7 {
    P2: resolve 3s
    default: resolve 1h
  }
}

process ticket {
  fields {
    title: text required
    impact: enum(high, low) required
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

  stage open initial {
    queue desk
  }
  stage closed final

  transition close: open -> closed by role agent
}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite() {
    ola(Db::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres() {
    ola(Db::postgres().await).await;
}

async fn ola(db: Db) {
    let s = Server::start(&db);
    let root = s.ops_tenant("ops.itsm", PROJECT).await;
    let ann = s.user(&root, "ann", &["agent"]).await;

    // A P1 ticket runs on the `default` row (1h); a P2 ticket on its own (3s).
    let (st, slow) = s
        .post(
            "/v1/instances",
            &ann,
            json!({"process": "ticket", "fields": {"title": "Slow printer", "impact": "high"}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{slow}");
    let slow_id = slow["id"].as_i64().unwrap();
    let (st, view) = s.get(&format!("/v1/instances/{slow_id}"), &ann).await;
    assert_eq!(st, StatusCode::OK, "{view}");
    let current = &view["ola"]["current"];
    assert_eq!(current["queue"], "desk", "{view}");
    assert_eq!(current["row"], "default");
    assert_eq!(current["target"], "1h");
    assert_eq!(current["state"], "running");
    assert_eq!(current["calendar"], "24x7");
    assert_eq!(view["ola"]["past"], json!([]));
    assert!(current["due_at"].is_string(), "{current}");
    assert_eq!(
        view["task"]["ola_due_at"], current["due_at"],
        "the task carries the stay's due time"
    );

    let (st, fast) = s
        .post(
            "/v1/instances",
            &ann,
            json!({"process": "ticket", "fields": {"title": "Printer on fire", "impact": "low"}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{fast}");
    let fast_id = fast["id"].as_i64().unwrap();

    // The queue lists both tasks with their OLA due times.
    let (st, tasks) = s.get("/v1/queues/desk/tasks", &ann).await;
    assert_eq!(st, StatusCode::OK, "{tasks}");
    let items = tasks["items"].as_array().expect("items");
    assert_eq!(items.len(), 2, "{tasks}");
    assert!(items.iter().all(|t| t["ola_due_at"].is_string()), "{tasks}");

    let (st, why) = s
        .get(&format!("/v1/instances/{fast_id}/explain"), &ann)
        .await;
    assert_eq!(st, StatusCode::OK, "{why}");
    assert_eq!(why["ola"]["row"], "P2", "explain names the row: {why}");
    assert_eq!(why["ola"]["target"], "3s");

    // The P2 stay passes its target: its members hear of it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let note = loop {
        let (st, notes) = s
            .get(
                &format!("/v1/notifications?role=agent&instance={fast_id}"),
                &ann,
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{notes}");
        let found = notes["items"]
            .as_array()
            .and_then(|items| items.iter().find(|n| n["clock"] == "ola").cloned());
        if let Some(n) = found {
            break n;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no OLA notification: {notes}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        note["message"]
            .as_str()
            .is_some_and(|m| m.contains("passed the OLA target of queue desk")),
        "{note}"
    );

    let (st, view) = s.get(&format!("/v1/instances/{fast_id}"), &ann).await;
    assert_eq!(st, StatusCode::OK, "{view}");
    assert_eq!(view["ola"]["current"]["state"], "breached", "{view}");
    assert_eq!(view["ola"]["current"]["breach_recorded"], true);
    let (st, history) = s
        .get(&format!("/v1/instances/{fast_id}/history"), &ann)
        .await;
    assert_eq!(st, StatusCode::OK, "{history}");
    let breaches: Vec<&Json> = history["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|e| e["kind"] == "ola_breached")
        .collect();
    assert_eq!(breaches.len(), 1, "{history}");
    assert_eq!(breaches[0]["data"]["queue"], "desk");

    // Closing ends the stay: it is a past one now, and reads breached.
    let (st, closed) = s
        .post(
            &format!("/v1/instances/{fast_id}/actions/close"),
            &ann,
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{closed}");
    let (_, view) = s.get(&format!("/v1/instances/{fast_id}"), &ann).await;
    assert_eq!(view["ola"]["current"], Json::Null, "{view}");
    assert_eq!(view["ola"]["past"][0]["state"], "breached", "{view}");

    // The other stay has not breached.
    let (_, view) = s.get(&format!("/v1/instances/{slow_id}"), &ann).await;
    assert_eq!(view["ola"]["current"]["state"], "running", "{view}");
    s.stop();
}
