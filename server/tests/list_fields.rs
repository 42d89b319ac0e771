//! `list(T)` fields over a real socket, on a SQLite file and on PostgreSQL: a ticket raised
//! with lists (JSON arrays), a bad element refused with a 422 problem naming the field and the
//! element's index, and a person named in a `list(person)` field (holding no role) sees the
//! ticket and performs the action only the people in the list may.

#[macro_use]
mod support;

use reqwest::StatusCode;
use serde_json::{json, Value as Json};
use support::{Db, Server};

on_both!(lists_over_http);

const PROJECT: &str = r#"
role agent

service email "E-mail"
service vpn "VPN"

process change {
  fields {
    title:        text required
    affected:     list(service) required
    implementers: list(person) required
    steps:        list(text)
  }

  stage planned initial
  stage done final

  transition implement: planned -> done by implementers when affected has email
}
"#;

fn errors(problem: &Json) -> Vec<Json> {
    problem["errors"].as_array().cloned().unwrap_or_default()
}

async fn lists_over_http(db: Db) {
    let s = Server::start(&db);
    let (st, b) = s
        .post(
            "/v1/definitions",
            &s.admin,
            json!({"files": [{"name": "change.itsm", "text": PROJECT}]}),
        )
        .await;
    assert!(st.is_success(), "{st} {b}");
    let agent = s.user(&s.admin, "alice", &["agent"]).await;
    let ann = s.user(&s.admin, "ann", &[]).await;
    let bob = s.user(&s.admin, "bob", &[]).await;

    // An unknown user as the second implementer: refused, naming the field and the index.
    let (st, problem) = s
        .post(
            "/v1/instances",
            &agent,
            json!({"process": "change", "fields": {
                "title": "upgrade", "affected": ["email"], "implementers": ["ann", "zed"],
            }}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    let errs = errors(&problem);
    assert_eq!(errs.len(), 1, "{problem}");
    assert_eq!(errs[0]["field"], "implementers", "{problem}");
    assert_eq!(errs[0]["index"], 1, "{problem}");
    assert!(
        errs[0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("zed")),
        "{problem}"
    );

    // A service that is none, and a list that is not an array.
    let (st, problem) = s
        .post(
            "/v1/instances",
            &agent,
            json!({"process": "change", "fields": {
                "title": "upgrade", "affected": ["email", "fax"], "implementers": "ann",
            }}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    let errs = errors(&problem);
    let affected = errs
        .iter()
        .find(|e| e["field"] == "affected")
        .expect("affected");
    assert_eq!(affected["index"], 1, "{problem}");
    let implementers = errs
        .iter()
        .find(|e| e["field"] == "implementers")
        .expect("implementers");
    assert!(implementers.get("index").is_none(), "{problem}");

    // Raised with lists; they come back as arrays.
    let (st, v) = s
        .post(
            "/v1/instances",
            &agent,
            json!({"process": "change", "fields": {
                "title": "upgrade", "affected": ["email", "vpn"], "implementers": ["ann"],
                "steps": ["back up", "upgrade", "test"],
            }}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let id = v["id"].as_i64().expect("id");
    assert_eq!(v["fields"]["affected"], json!(["email", "vpn"]), "{v}");
    assert_eq!(v["fields"]["steps"], json!(["back up", "upgrade", "test"]));

    // Bob is not among the implementers: he may not see it, let alone implement it.
    let (st, _) = s.get(&format!("/v1/instances/{id}"), &bob).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    // Ann is: she sees the ticket and implements the change.
    let (st, seen) = s.get(&format!("/v1/instances/{id}"), &ann).await;
    assert_eq!(st, StatusCode::OK, "{seen}");
    assert_eq!(seen["fields"]["implementers"], json!(["ann"]));
    let (st, done) = s
        .post(
            &format!("/v1/instances/{id}/actions/implement"),
            &ann,
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{done}");
    assert_eq!(done["stage"], "done", "{done}");
    s.stop();
}
