//! An approval's reminder and expiry fire in a running server, on real time: a plan asks its
//! approver, who is reminded 2 seconds after the level opens, and the approval expires 4
//! seconds after the ticket entered the stage; over a real socket on a SQLite file and on
//! PostgreSQL. The test waits for what the history records; it does not time it.

#[macro_use]
mod support;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value as Json};
use support::{Db, Server};

on_both!(reminded_then_expired);

const PROJECT: &str = r#"
role approver

process purchase {
  fields {
    title: text required
  }

  stage draft initial
  stage approval
  stage ordered final
  stage rejected final
  stage expired final

  transition submit: draft -> approval

  approval in approval {
    otherwise => any 1 of role approver
    remind after 2s
    on approve => ordered
    on reject => rejected
    on expire after 4s => expired
  }
}
"#;

async fn kinds(s: &Server, id: i64) -> Vec<String> {
    let (_, h): (StatusCode, Json) = s
        .get(&format!("/v1/instances/{id}/history"), &s.admin)
        .await;
    h["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|e| e["kind"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

async fn reminded_then_expired(db: Db) {
    let s = Server::start(&db);
    let (st, b) = s
        .post(
            "/v1/definitions",
            &s.admin,
            json!({"files": [{"name": "purchase.itsm", "text": PROJECT}]}),
        )
        .await;
    assert!(st.is_success(), "{st} {b}");
    let ann = s.user(&s.admin, "ann", &["approver"]).await;
    let (st, v) = s
        .post(
            "/v1/instances",
            &s.admin,
            json!({"process": "purchase", "fields": {"title": "chairs"}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let id = v["id"].as_i64().expect("id");
    let (st, v) = s
        .post(
            &format!("/v1/instances/{id}/actions/submit"),
            &s.admin,
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["approval"]["waiting_for"], json!(["ann"]));

    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (_, now) = s.get(&format!("/v1/instances/{id}"), &s.admin).await;
        if now["stage"] == "expired" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never expired: {now}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let k = kinds(&s, id).await;
    assert_eq!(k.iter().filter(|k| *k == "reminded").count(), 1, "{k:?}");
    assert_eq!(
        k.last().map(String::as_str),
        Some("approval_decided"),
        "{k:?}"
    );
    // The reminder went to ann, who had not voted; her list is empty once it expired.
    let (_, notes) = s
        .get(&format!("/v1/notifications?instance={id}"), &s.admin)
        .await;
    assert!(
        notes["items"].as_array().expect("items").iter().any(|n| {
            n["recipients"] == json!(["ann"])
                && n["message"].as_str().unwrap_or("").starts_with("reminder")
        }),
        "{notes}"
    );
    let (_, mine) = s.get("/v1/me/approvals", &ann).await;
    assert_eq!(mine["items"], json!([]));
    s.stop();
}
