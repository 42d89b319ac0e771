//! Notifications to a person reach the webhook, once each: the standard incident tells its
//! caller when it waits for their answer, and the webhook receives that one notification,
//! naming the caller, over a real socket on a SQLite file and on PostgreSQL.

#[macro_use]
mod support;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use support::{receiver, Db, Server};

on_both!(a_notification_to_the_caller_reaches_the_webhook_once);

async fn a_notification_to_the_caller_reaches_the_webhook_once(db: Db) {
    let (hook, received) = receiver().await;
    let s = Server::start_with(&db, &["--webhook-url", &hook]);
    let alice = s.user(&s.admin, "alice", &["agent"]).await;
    let bob = s.user(&s.admin, "bob", &["requester"]).await;
    let inc = s.incident(&bob, "Printer offline").await;
    let id = inc["id"].as_i64().expect("id");
    let path = format!("/v1/instances/{id}/actions");
    for action in ["accept", "ask"] {
        let (st, v) = s.post(&format!("{path}/{action}"), &alice, json!({})).await;
        assert_eq!(st, StatusCode::OK, "{action}: {v}");
    }

    // Delivered and marked so.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (_, pending) = s
            .get(
                &format!("/v1/notifications?instance={id}&undelivered=true"),
                &s.admin,
            )
            .await;
        let got = received.lock().expect("lock").len();
        if got > 0 && pending["items"] == json!([]) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never delivered");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The deliverer looks at the outbox every 2 seconds: after two more looks, still once.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let delivered = received.lock().expect("lock").clone();
    let to_bob: Vec<_> = delivered
        .iter()
        .filter(|d| d["notification"]["instance"] == id)
        .collect();
    assert_eq!(to_bob.len(), 1, "{delivered:?}");
    let n = &to_bob[0]["notification"];
    assert_eq!(n["role"], "caller");
    assert_eq!(n["recipients"], json!(["bob"]));
    assert_eq!(
        n["message"],
        format!("Incident {id} (Printer offline) waits for your answer")
    );

    // Only bob answers.
    let (st, p) = s
        .post(
            &format!("{path}/answer"),
            &s.user(&s.admin, "carl", &["requester"]).await,
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{p}");
    let (st, v) = s.post(&format!("{path}/answer"), &bob, json!({})).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["stage"], "working");
    s.stop();
}
