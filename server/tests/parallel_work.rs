//! Work that fans out, end to end over a real socket on a SQLite file and on PostgreSQL, with
//! the standard processes: a new starter's request is prepared by three teams at once (its
//! accounts, laptop and badge are work orders, each in its team's queue with a holder of its
//! own), the three agents finish at the same moment, and the request is delivered exactly once,
//! only when all three are done.

#[macro_use]
mod support;

use reqwest::StatusCode;
use serde_json::{json, Value as Json};
use support::{Db, Server};

on_both!(a_new_starter_is_prepared_in_parallel_and_delivered_when_all_parts_are_done);

fn id(v: &Json) -> i64 {
    v["id"].as_i64().unwrap_or_else(|| panic!("no id in {v}"))
}

async fn act(s: &Server, token: &str, instance: i64, action: &str, body: Json) -> Json {
    let (st, v) = s
        .post(
            &format!("/v1/instances/{instance}/actions/{action}"),
            token,
            body,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{action} on {instance}: {v}");
    v
}

async fn a_new_starter_is_prepared_in_parallel_and_delivered_when_all_parts_are_done(db: Db) {
    let s = Server::start(&db);
    let a = &s.admin;
    let rita = s.user(a, "rita", &["requester"]).await;
    let fred = s.user(a, "fred", &["fulfiller"]).await;
    let amir = s.user(a, "amir", &["access_manager"]).await;
    let alice = s.user(a, "alice", &["agent"]).await;

    let (st, r) = s
        .post(
            "/v1/instances",
            &rita,
            json!({"item": "new_starter",
                   "fields": {"requester": "rita", "justification": "Joins sales on Monday"}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{r}");
    let r = id(&r);
    act(&s, &rita, r, "submit", json!({})).await;
    let (st, refused) = s
        .post(
            &format!("/v1/instances/{r}/actions/prepare"),
            &alice,
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{refused}");
    let v = act(&s, &fred, r, "prepare", json!({})).await;
    assert_eq!(v["stage"], "preparing");

    // Three work orders, each in its team's queue.
    let (st, links) = s.get(&format!("/v1/instances/{r}/links"), a).await;
    assert_eq!(st, StatusCode::OK, "{links}");
    let parts: Vec<i64> = links["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|l| l["name"] == "parts")
        .map(|l| l["other"].as_i64().expect("other"))
        .collect();
    assert_eq!(parts.len(), 3, "{links}");
    let mut by_queue = std::collections::BTreeMap::new();
    for p in &parts {
        let (st, v) = s.get(&format!("/v1/instances/{p}"), a).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!(v["process"], "work_order");
        assert_eq!(v["fields"]["requester"], "rita", "copied from the request");
        by_queue.insert(v["queue"].as_str().expect("queue").to_string(), *p);
    }
    assert_eq!(
        by_queue.keys().collect::<Vec<_>>(),
        ["access_management", "fulfilment", "service_desk"]
    );

    // The badge's agent claims it from the desk's queue: a lease of its own.
    let (st, task) = s
        .post(
            "/v1/queues/service_desk/claim",
            &alice,
            json!({"lease_seconds": 600}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{task}");
    assert_eq!(task["instance"].as_i64(), Some(by_queue["service_desk"]));
    assert_eq!(task["claimed_by"], "alice");

    // All three finish at the same moment.
    let (badge, laptop, accounts) = (
        by_queue["service_desk"],
        by_queue["fulfilment"],
        by_queue["access_management"],
    );
    let complete = format!("/v1/tasks/{}/complete", id(&task));
    let token = task["token"].clone();
    let laptop_finish = format!("/v1/instances/{laptop}/actions/finish");
    let accounts_finish = format!("/v1/instances/{accounts}/actions/finish");
    let (one, two, three) = tokio::join!(
        s.post(
            &complete,
            &alice,
            json!({"token": token, "action": "finish"})
        ),
        s.post(&laptop_finish, &fred, json!({})),
        s.post(&accounts_finish, &amir, json!({})),
    );
    for (st, v) in [one, two, three] {
        assert_eq!(st, StatusCode::OK, "{v}");
    }
    let (st, v) = s.get(&format!("/v1/instances/{r}"), a).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["stage"], "delivered", "{v}");
    let (_, history) = s.get(&format!("/v1/instances/{r}/history"), a).await;
    let delivered = history["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|e| e["kind"] == "transitioned" && e["data"]["action"] == "prepared")
        .count();
    assert_eq!(delivered, 1, "delivered once: {history}");
    for p in [badge, laptop, accounts] {
        let (_, v) = s.get(&format!("/v1/instances/{p}"), a).await;
        assert_eq!(v["stage"], "done", "{v}");
    }
}
