//! `GET /v1/instances/{id}/explain` against a real `itsmflow serve` (a real SQLite file and a
//! real PostgreSQL database), and `itsmflow explain` on the database a server left: the
//! priority cell, the routing rule, the clocks' targets and calendars, the approval rule and
//! level, and actions refused for a missing role and for a missing required field.

#[macro_use]
mod support;

use std::process::Command;

use reqwest::StatusCode;
use serde_json::{json, Value as Json};
use support::{Db, Server};

on_both!(incident_explained, change_approval_explained);

fn id(v: &Json) -> i64 {
    v["id"].as_i64().unwrap_or_else(|| panic!("no id in {v}"))
}

/// A network incident of medium impact and low urgency (P4), raised by `caller` and logged.
async fn network_incident(s: &Server, caller_token: &str, caller: &str) -> i64 {
    let (st, v) = s
        .post(
            "/v1/instances",
            caller_token,
            json!({"process": "incident", "fields": {
                "title": "Wifi down on floor 3",
                "caller": caller,
                "service": "email",
                "category": "network.wifi",
                "impact": "medium",
                "urgency": "low",
            }}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let i = id(&v);
    let (st, v) = s
        .post(
            &format!("/v1/instances/{i}/actions/log"),
            caller_token,
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    i
}

fn action<'a>(x: &'a Json, name: &str) -> &'a Json {
    x["actions"]["items"]
        .as_array()
        .expect("actions")
        .iter()
        .find(|a| a["action"] == name)
        .unwrap_or_else(|| panic!("no action {name} in {x}"))
}

fn clock<'a>(x: &'a Json, name: &str) -> &'a Json {
    x["clocks"]
        .as_array()
        .expect("clocks")
        .iter()
        .find(|c| c["clock"] == name)
        .unwrap_or_else(|| panic!("no clock {name} in {x}"))
}

async fn incident_explained(db: Db) {
    let s = Server::start(&db);
    let a = &s.admin;
    let carol = s.user(a, "carol", &["requester"]).await;
    let alice = s.user(a, "alice", &["agent"]).await;
    let dan = s.user(a, "dan", &["requester"]).await;
    let i = network_incident(&s, &carol, "carol").await;
    let path = format!("/v1/instances/{i}/explain");

    // The caller, a requester, sees their own ticket explained, the actions for them.
    let (st, x) = s.get(&path, &carol).await;
    assert_eq!(st, StatusCode::OK, "{x}");
    assert_eq!(x["stage"], "triage");
    assert_eq!(x["priority"]["priority"], "P4");
    assert_eq!(x["priority"]["source"], "table");
    assert_eq!(x["priority"]["cell"], 5, "{x}");
    assert_eq!(x["priority"]["row"], "medium");
    assert_eq!(x["priority"]["column"], "low");
    assert_eq!(
        x["priority"]["reads"],
        json!([{"field": "impact", "value": "medium"}, {"field": "urgency", "value": "low"}])
    );
    assert_eq!(x["queue"]["queue"], "network");
    assert_eq!(x["queue"]["source"], "routing");
    assert_eq!(x["queue"]["rule"], 2);
    assert_eq!(
        x["queue"]["condition"],
        "network: when category in (network.*) => network"
    );
    let resolve = clock(&x, "resolve");
    assert_eq!(resolve["target"], "5d");
    assert_eq!(resolve["calendar"], "office");
    assert_eq!(resolve["target_from"], "priority");
    assert_eq!(resolve["priority"], "P4");
    assert_eq!(clock(&x, "respond")["target"], "1d");
    assert_eq!(x["approval"], Json::Null);
    assert_eq!(x["actions"]["user"], "carol");
    // A role the requester does not hold.
    let accept = action(&x, "accept");
    assert_eq!(accept["available"], false);
    assert_eq!(accept["refusals"][0]["kind"], "who", "{accept}");
    assert_eq!(
        accept["refusals"][0]["roles"],
        json!(["agent", "network_engineer", "incident_manager"])
    );
    // Only the actions out of triage.
    let names: Vec<&str> = x["actions"]["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|a| a["action"].as_str())
        .collect();
    assert_eq!(names, ["accept", "cancel"]);

    // Another requester does not learn the ticket exists.
    let (st, p) = s.get(&path, &dan).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{p}");
    let (st, p) = s.get("/v1/instances/999999/explain", &alice).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{p}");

    // An agent accepts it; resolving needs a resolution, and nothing else.
    let (st, v) = s
        .post(
            &format!("/v1/instances/{i}/actions/accept"),
            &alice,
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (st, x) = s.get(&path, &alice).await;
    assert_eq!(st, StatusCode::OK, "{x}");
    let resolve = action(&x, "resolve");
    assert_eq!(resolve["available"], false);
    assert_eq!(
        resolve["refusals"],
        json!([{"kind": "fields", "message": "`resolve` requires resolution", "fields": ["resolution"]}])
    );
    assert_eq!(action(&x, "ask")["available"], true);
    assert_eq!(clock(&x, "respond")["state"], "met");
    // Explaining changed nothing.
    let (_, v) = s.get(&format!("/v1/instances/{i}"), &alice).await;
    let version = v["version"].clone();
    s.get(&path, &alice).await;
    let (_, v) = s.get(&format!("/v1/instances/{i}"), &alice).await;
    assert_eq!(v["version"], version);
}

async fn change_approval_explained(db: Db) {
    let s = Server::start(&db);
    let a = &s.admin;
    let rita = s.user(a, "rita", &["requester"]).await;
    let mia = s.user(a, "mia", &["change_manager"]).await;
    s.user(a, "ivan", &["implementer"]).await;
    let (st, v) = s
        .post(
            "/v1/instances",
            &rita,
            json!({"process": "change", "fields": {
                "title": "Patch the mail servers",
                "change_type": "normal",
                "category": "1",
                "implementers": ["ivan"],
                "backout_plan": "restore the snapshot",
            }}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let i = id(&v);
    for (action, token) in [("submit", &rita), ("assess", &mia)] {
        let (st, v) = s
            .post(
                &format!("/v1/instances/{i}/actions/{action}"),
                token,
                json!({}),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{action}: {v}");
    }
    let (st, x) = s.get(&format!("/v1/instances/{i}/explain"), &mia).await;
    assert_eq!(st, StatusCode::OK, "{x}");
    assert_eq!(x["stage"], "approval");
    let approval = &x["approval"];
    assert_eq!(approval["rule"], 4, "{approval}");
    assert_eq!(
        approval["plan"],
        "minor: when category == 1 => any 1 of role change_manager"
    );
    assert_eq!(approval["open_level"], 1);
    assert_eq!(approval["levels"], 1);
    assert_eq!(approval["waiting_for"], json!(["mia"]));
    assert!(
        approval["explain"]
            .as_str()
            .is_some_and(|e| e.starts_with("rule 4 of 6")),
        "{approval}"
    );
    assert_eq!(x["priority"]["priority"], "normal");
    assert_eq!(x["queue"]["source"], "none");
}

/// The command line explains a ticket of the database a server wrote, as text and as JSON,
/// with the user's roles read from the database or given.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_explains_a_ticket() {
    let db = Db::sqlite();
    let s = Server::start(&db);
    let a = &s.admin;
    let carol = s.user(a, "carol", &["requester"]).await;
    s.user(a, "alice", &["agent"]).await;
    let i = network_incident(&s, &carol, "carol").await;
    s.stop();

    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_itsmflow"))
            .arg("explain")
            .arg(i.to_string())
            .args(["--database", &db.url()])
            .args(args)
            .output()
            .expect("run itsmflow explain");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };

    let (code, text, err) = run(&["--as", "carol"]);
    assert_eq!(code, Some(0), "{err}");
    for section in ["Priority", "Queue", "Clocks", "Approval", "Actions"] {
        assert!(
            text.lines().any(|l| l == section),
            "no {section} in:\n{text}"
        );
    }
    for fact in [
        "table cell 5 (row medium, column low) gives P4",
        "routing rule 2 matches: network: when category in (network.*) => network",
        "resolve: target 5d (of priority P4) on office",
        "as carol (roles requester)",
        "accept -> working: not available: `accept` may be performed only by role agent, network_engineer, incident_manager",
    ] {
        assert!(text.contains(fact), "no `{fact}` in:\n{text}");
    }

    // The roles the database gives alice: she may accept it.
    let (code, out, err) = run(&["--as", "alice", "--format", "json"]);
    assert_eq!(code, Some(0), "{err}");
    let x: Json = serde_json::from_str(&out).expect("JSON");
    assert_eq!(x["actions"]["roles"], json!(["agent"]));
    assert_eq!(action(&x, "accept")["available"], true);
    // Roles given replace them.
    let (code, out, err) = run(&["--as", "alice", "--role", "requester", "--format", "json"]);
    assert_eq!(code, Some(0), "{err}");
    let x: Json = serde_json::from_str(&out).expect("JSON");
    assert_eq!(action(&x, "accept")["available"], false);

    // Unusable input exits 2 with a message.
    let (code, _, err) = run(&["--as", "nobody_here"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("no user `nobody_here`"), "{err}");
    let out = Command::new(env!("CARGO_BIN_EXE_itsmflow"))
        .args(["explain", "999999", "--database", &db.url()])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no instance 999999"));
    let missing = db.url() + ".missing";
    let out = Command::new(env!("CARGO_BIN_EXE_itsmflow"))
        .args(["explain", "1", "--database", &missing])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no database"));
}
