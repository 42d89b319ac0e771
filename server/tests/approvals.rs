//! Approvals over the HTTP API, against a real `itsmflow serve` on a real SQLite file and a
//! real PostgreSQL database: the standard change process taken to its end for standard,
//! category 0 to 3 and emergency changes; the request process with its line manager's
//! approval; refused votes that answer problem+json and change nothing; delegation; each
//! approver's own list, read and followed live.

#[macro_use]
mod support;

use reqwest::StatusCode;
use serde_json::{json, Value as Json};
use support::{Db, Server};

on_both!(
    problem_spawns_its_change,
    change_process,
    request_process,
    refused_votes,
    delegation_and_live_list
);

fn id(v: &Json) -> i64 {
    v["id"].as_i64().unwrap_or_else(|| panic!("no id in {v}"))
}

/// The people of a change board, each with a token.
struct Board {
    rita: String,
    mia: String,
    cab: Vec<String>,
    sue: String,
    eve: String,
    ivan: String,
}

async fn board(s: &Server) -> Board {
    let a = &s.admin;
    Board {
        rita: s.user(a, "rita", &["requester"]).await,
        mia: s.user(a, "mia", &["change_manager"]).await,
        cab: vec![
            s.user(a, "carl", &["cab"]).await,
            s.user(a, "cleo", &["cab"]).await,
            s.user(a, "chad", &["cab"]).await,
            s.user(a, "cora", &["cab"]).await,
        ],
        sue: s.user(a, "sue", &["senior_management"]).await,
        eve: s.user(a, "eve", &["ecab"]).await,
        // The implementer also sits on the CAB, but never approves what they implement.
        ivan: s.user(a, "ivan", &["implementer", "cab"]).await,
    }
}

/// Raise a change as Rita, submit it, and have the change manager send it for approval;
/// returns the instance as the last action left it.
async fn to_approval(s: &Server, b: &Board, change_type: &str, category: &str) -> Json {
    let (st, v) = s
        .post(
            "/v1/instances",
            &b.rita,
            json!({"process": "change", "fields": {
                "title": format!("{change_type} {category}"),
                "change_type": change_type,
                "category": category,
                "implementers": ["ivan"],
                "backout_plan": "restore the snapshot",
            }}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let path = format!("/v1/instances/{}/actions", id(&v));
    let (st, v) = s.post(&format!("{path}/submit"), &b.rita, json!({})).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (st, v) = s.post(&format!("{path}/assess"), &b.mia, json!({})).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v
}

async fn vote(s: &Server, token: &str, instance: i64, decision: &str) -> (StatusCode, Json) {
    s.post(
        &format!("/v1/instances/{instance}/approval/votes"),
        token,
        json!({"decision": decision, "comment": "looked at it"}),
    )
    .await
}

/// Schedule, implement, complete and close an approved change: the post-implementation review's
/// checklist is ticked first (closing before is refused, naming what is not ticked; the
/// implementer may not tick the change manager's review).
async fn finish(s: &Server, b: &Board, instance: i64) {
    let path = format!("/v1/instances/{instance}/actions");
    let (st, v) = s
        .post(
            &format!("{path}/implement"),
            &b.ivan,
            json!({"fields": {"planned_start": "2026-12-08T20:00:00Z"}}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (st, v) = s
        .post(&format!("{path}/complete"), &b.ivan, json!({}))
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (st, p) = s.post(&format!("{path}/close"), &b.mia, json!({})).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    assert_eq!(p["type"], "/problems/checklist-incomplete");
    assert_eq!(p["items"], json!(["objectives", "side_effects", "backout"]));
    let checklist = format!("/v1/instances/{instance}/checklist");
    let (st, list) = s.get(&checklist, &b.mia).await;
    assert_eq!(st, StatusCode::OK, "{list}");
    assert_eq!(list["items"][0]["item"], "objectives");
    assert_eq!(list["items"][0]["done"], false);
    let (st, p) = s
        .post(
            &format!("{checklist}/objectives"),
            &b.ivan,
            json!({"done": true}),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{p}");
    let (st, p) = s
        .post(
            &format!("{checklist}/objectivs"),
            &b.mia,
            json!({"done": true}),
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{p}");
    for item in ["objectives", "side_effects", "backout"] {
        let (st, v) = s
            .post(
                &format!("{checklist}/{item}"),
                &b.mia,
                json!({"done": true}),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{item}: {v}");
    }
    // Ticking a ticked item again changes nothing.
    let (_, before) = s.get(&format!("/v1/instances/{instance}"), &b.mia).await;
    let (st, again) = s
        .post(
            &format!("{checklist}/backout"),
            &b.mia,
            json!({"done": true}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{again}");
    assert_eq!(again["version"], before["version"]);
    let (_, list) = s.get(&checklist, &b.mia).await;
    assert!(
        list["items"]
            .as_array()
            .expect("items")
            .iter()
            .all(|i| i["done"] == true),
        "{list}"
    );
    let (st, v) = s.post(&format!("{path}/close"), &b.mia, json!({})).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["stage"], "closed");
}

/// The JSON of every `data:` line of an event stream read so far.
fn data_lines(text: &str) -> Vec<Json> {
    text.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str(d.trim()).ok())
        .collect()
}

/// A known error's permanent fix: the problem requests a change, which starts with the fields
/// the problem process maps and fixes, and goes through its category 1 approval.
async fn problem_spawns_its_change(db: Db) {
    let s = Server::start(&db);
    let a = &s.admin;
    let pam = s.user(a, "pam", &["problem_manager"]).await;
    let mia = s.user(a, "mia", &["change_manager"]).await;
    let (st, p) = s
        .post(
            "/v1/instances",
            &pam,
            json!({"process": "problem", "fields": {"title": "Mail queue stalls nightly",
                   "service": "email", "impact": "medium"}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{p}");
    let i = id(&p);
    let path = format!("/v1/instances/{i}/actions");
    for (action, body) in [
        ("accept", json!({})),
        (
            "record_known_error",
            json!({"fields": {"root_cause": "the backup locks the spool",
                              "workaround": "restart the queue runner after the backup"}}),
        ),
        ("request_change", json!({})),
    ] {
        let (st, v) = s.post(&format!("{path}/{action}"), &pam, body).await;
        assert_eq!(st, StatusCode::OK, "{action}: {v}");
    }
    let (_, links) = s.get(&format!("/v1/instances/{i}/links"), &pam).await;
    // Stored from the change (`fixes: one problem`), named from the problem's side.
    assert_eq!(links["items"][0]["kind"], "fixes", "{links}");
    assert_eq!(links["items"][0]["name"], "fixed_by", "{links}");
    assert_eq!(links["items"][0]["to"], i, "{links}");
    let change = links["items"][0]["other"].as_i64().expect("the change");
    let (_, c) = s.get(&format!("/v1/instances/{change}"), &mia).await;
    assert_eq!(c["process"], "change");
    assert_eq!(c["fields"]["title"], "Mail queue stalls nightly");
    assert_eq!(c["fields"]["change_type"], "normal");
    assert_eq!(c["fields"]["category"], "1");
    assert_eq!(
        c["fields"]["backout_plan"],
        "restart the queue runner after the backup"
    );
    // Submitted by the problem manager who raised it, approved by the change manager.
    let cpath = format!("/v1/instances/{change}/actions");
    let (st, v) = s.post(&format!("{cpath}/submit"), &pam, json!({})).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (st, v) = s.post(&format!("{cpath}/assess"), &mia, json!({})).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["approval"]["waiting_for"], json!(["mia"]), "{v}");
    let (st, v) = vote(&s, &mia, change, "approve").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["stage"], "scheduled");

    // An incident the problem caused waits in progress; the change is implemented and
    // completed: the problem it fixes is resolved (`then perform change_done on fixes`), and
    // so is the incident (`then perform resolve on incidents`), in the one transaction.
    let ann = s.user(a, "ann", &["agent"]).await;
    let ivan = s.user(a, "ivan", &["implementer"]).await;
    let inc = id(&s.incident(&ann, "Mail delayed").await);
    for action in ["accept"] {
        let (st, v) = s
            .post(
                &format!("/v1/instances/{inc}/actions/{action}"),
                &ann,
                json!({}),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");
    }
    let (st, v) = s
        .post(
            &format!("/v1/instances/{inc}/links"),
            &ann,
            json!({"to": i, "kind": "caused_by"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let (st, v) = s
        .post(
            &format!("{cpath}/implement"),
            &ivan,
            json!({"fields": {"planned_start": "2026-12-08T20:00:00Z"}}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (st, v) = s.post(&format!("{cpath}/complete"), &ivan, json!({})).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["stage"], "review");
    let (_, problem) = s.get(&format!("/v1/instances/{i}"), &pam).await;
    assert_eq!(problem["stage"], "resolved", "{problem}");
    let (_, incident) = s.get(&format!("/v1/instances/{inc}"), &ann).await;
    assert_eq!(incident["stage"], "resolved", "{incident}");
    assert_eq!(
        incident["fields"]["resolution"], "the backup locks the spool",
        "{incident}"
    );
    assert!(kinds(&s, change).await.contains(&"acted_on".to_string()));
    assert!(kinds(&s, i).await.contains(&"acted_on".to_string()));
    s.stop();
}

/// The history's kinds.
async fn kinds(s: &Server, instance: i64) -> Vec<String> {
    let (st, h) = s
        .get(&format!("/v1/instances/{instance}/history"), &s.admin)
        .await;
    assert_eq!(st, StatusCode::OK, "{h}");
    h["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| e["kind"].as_str().unwrap_or("").to_string())
        .collect()
}

/// Every kind of change, from registration to closure, approved as its type and category
/// call for.
async fn change_process(db: Db) {
    let s = Server::start(&db);
    let b = board(&s).await;

    // Standard changes and category 0 need no approval: straight to scheduled.
    for (t, c) in [("standard", "2"), ("normal", "0")] {
        let v = to_approval(&s, &b, t, c).await;
        assert_eq!(v["stage"], "scheduled", "{t} {c}: {v}");
        let k = kinds(&s, id(&v)).await;
        assert!(k.contains(&"approval_requested".into()) && k.contains(&"approval_decided".into()));
        finish(&s, &b, id(&v)).await;
    }

    // Category 1: the change manager authorises.
    let v = to_approval(&s, &b, "normal", "1").await;
    assert_eq!(v["stage"], "approval");
    assert_eq!(v["approval"]["waiting_for"], json!(["mia"]));
    let (st, after) = vote(&s, &b.mia, id(&v), "approve").await;
    assert_eq!(st, StatusCode::OK, "{after}");
    assert_eq!(after["stage"], "scheduled");
    finish(&s, &b, id(&v)).await;

    // Category 2: three of the CAB advise, then the change manager; Ivan implements it, so
    // he is not among the approvers though he sits on the CAB.
    let v = to_approval(&s, &b, "normal", "2").await;
    let i = id(&v);
    let level = &v["approval"]["levels"][0];
    assert_eq!(
        level["groups"][0]["approvers"],
        json!(["carl", "chad", "cleo", "cora"])
    );
    assert_eq!(level["excluded"], json!(["ivan"]));
    for t in &b.cab[..2] {
        let (st, after) = vote(&s, t, i, "approve").await;
        assert_eq!(st, StatusCode::OK, "{after}");
        assert_eq!(after["approval"]["open_level"], 1);
    }
    let (_, after) = vote(&s, &b.cab[2], i, "approve").await;
    assert_eq!(after["approval"]["open_level"], 2, "{after}");
    assert_eq!(after["approval"]["levels"][0]["state"], "approved");
    let (_, after) = vote(&s, &b.mia, i, "approve").await;
    assert_eq!(after["stage"], "scheduled");
    finish(&s, &b, i).await;

    // Category 3: half the CAB and senior management together, then the change manager.
    let v = to_approval(&s, &b, "normal", "3").await;
    let i = id(&v);
    let groups = &v["approval"]["levels"][0]["groups"];
    assert_eq!(
        groups[0]["needed"], 3,
        "50% of the 5 holders of `cab`, rounded up: {groups}"
    );
    assert_eq!(groups[1]["role"], "senior_management");
    for t in &b.cab[..3] {
        vote(&s, t, i, "approve").await;
    }
    let (_, a) = s.get(&format!("/v1/instances/{i}/approval"), &b.mia).await;
    assert_eq!(
        a["open_level"], 1,
        "senior management has not agreed yet: {a}"
    );
    assert_eq!(a["waiting_for"], json!(["cora", "sue"]));
    let (_, after) = vote(&s, &b.sue, i, "approve").await;
    assert_eq!(after["approval"]["open_level"], 2);
    let (_, after) = vote(&s, &b.mia, i, "approve").await;
    assert_eq!(after["stage"], "scheduled");
    finish(&s, &b, i).await;

    // Emergency: one member of the emergency CAB.
    let v = to_approval(&s, &b, "emergency", "3").await;
    assert!(v["approval"]["explain"]
        .as_str()
        .unwrap_or("")
        .contains("change_type == emergency"));
    let (_, after) = vote(&s, &b.eve, id(&v), "approve").await;
    assert_eq!(after["stage"], "scheduled");
    finish(&s, &b, id(&v)).await;

    // A rejection at the CAB level ends it as soon as three approvals are out of reach.
    let v = to_approval(&s, &b, "normal", "2").await;
    let i = id(&v);
    vote(&s, &b.cab[0], i, "reject").await;
    let (_, after) = vote(&s, &b.cab[1], i, "reject").await;
    assert_eq!(after["stage"], "rejected", "{after}");
    assert!(after.get("approval").is_none());

    // Approvers were told, through the outbox, by name.
    let (st, notes) = s.get("/v1/notifications?limit=500", &s.admin).await;
    assert_eq!(st, StatusCode::OK, "{notes}");
    assert!(notes["items"].as_array().expect("items").iter().any(|n| {
        n["recipients"] == json!(["eve"])
            && n["message"]
                .as_str()
                .unwrap_or("")
                .contains("awaits your approval")
    }));
    s.stop();
}

/// A request that costs money waits for the requester's own manager, from the directory:
/// not another manager, and not the requester.
async fn request_process(db: Db) {
    let s = Server::start(&db);
    let a = &s.admin;
    let rita = s.user(a, "rita", &["requester"]).await;
    let lee = s.user(a, "lee", &["requester"]).await;
    let max = s.user(a, "max", &["agent"]).await;
    let fred = s.user(a, "fred", &["fulfiller"]).await;
    let (st, u) = s
        .call(
            reqwest::Method::PATCH,
            "/v1/users/rita",
            a,
            Some(json!({"manager": "lee", "email": "rita@example.org"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{u}");
    assert_eq!(u["manager"], "lee");
    // Nobody's manager is someone who does not exist.
    let (st, p) = s
        .call(
            reqwest::Method::PATCH,
            "/v1/users/max",
            a,
            Some(json!({"manager": "ghost"})),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    // A requester is a user of the tenant.
    let (st, p) = s
        .post(
            "/v1/instances",
            &rita,
            json!({"process": "request", "fields": {"requester": "ritta", "item": "laptop"}}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    assert_eq!(p["errors"][0]["field"], "requester");
    let (st, v) = s
        .post(
            "/v1/instances",
            &rita,
            json!({"process": "request", "fields": {
                "requester": "rita", "item": "laptop", "cost": 900,
            }}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let i = id(&v);
    let (st, v) = s
        .post(
            &format!("/v1/instances/{i}/actions/submit"),
            &rita,
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["stage"], "approval");
    assert_eq!(v["approval"]["waiting_for"], json!(["lee"]));
    let (_, mine) = s.get("/v1/me/approvals", &lee).await;
    assert_eq!(mine["items"][0]["instance"], i, "{mine}");
    assert_eq!(
        v["approval"]["levels"][0]["groups"][0]["person"],
        "manager of requester"
    );
    let (st, refused) = vote(&s, &rita, i, "approve").await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{refused}");
    assert_eq!(refused["type"], "/problems/segregation-of-duties");
    let (st, refused) = vote(&s, &max, i, "approve").await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{refused}");
    assert_eq!(refused["type"], "/problems/not-an-approver");
    let (st, v) = vote(&s, &lee, i, "approve").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["stage"], "fulfilment");
    let (_, mine) = s.get("/v1/me/approvals", &lee).await;
    assert_eq!(mine["items"], json!([]));

    // Fulfilment, delivery and the requester's confirmation.
    let (st, task) = s
        .post("/v1/queues/fulfilment/claim", &fred, json!({}))
        .await;
    assert_eq!(st, StatusCode::OK, "{task}");
    let (st, v) = s
        .post(
            &format!("/v1/tasks/{}/complete", id(&task)),
            &fred,
            json!({"token": task["token"], "action": "deliver"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    // Only the requester confirms: not even the fulfiller.
    let (st, p) = s
        .post(
            &format!("/v1/instances/{i}/actions/confirm"),
            &fred,
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{p}");
    assert_eq!(p["people"], json!(["requester"]));
    let (st, v) = s
        .post(
            &format!("/v1/instances/{i}/actions/confirm"),
            &rita,
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["stage"], "closed");

    // A facilities request needs nobody's approval.
    let (_, v) = s
        .post(
            "/v1/instances",
            &rita,
            json!({"process": "request", "fields": {"requester": "rita", "item": "facilities"}}),
        )
        .await;
    let (_, v) = s
        .post(
            &format!("/v1/instances/{}/actions/submit", id(&v)),
            &rita,
            json!({}),
        )
        .await;
    assert_eq!(v["stage"], "fulfilment", "{v}");
    s.stop();
}

/// Every refused vote is problem+json naming why, and the instance, its history and the
/// approver lists read back exactly as before.
async fn refused_votes(db: Db) {
    let s = Server::start(&db);
    let b = board(&s).await;
    let v = to_approval(&s, &b, "normal", "2").await;
    let i = id(&v);
    let before = s.get(&format!("/v1/instances/{i}"), &s.admin).await.1;
    let history = kinds(&s, i).await;
    let cases = [
        (
            &b.rita,
            StatusCode::FORBIDDEN,
            "/problems/segregation-of-duties",
        ),
        (
            &b.ivan,
            StatusCode::FORBIDDEN,
            "/problems/segregation-of-duties",
        ),
        (&b.eve, StatusCode::FORBIDDEN, "/problems/not-an-approver"),
        (&b.mia, StatusCode::FORBIDDEN, "/problems/not-an-approver"),
    ];
    for (token, status, kind) in cases {
        let (st, p) = vote(&s, token, i, "approve").await;
        assert_eq!(st, status, "{p}");
        assert_eq!(p["type"], kind, "{p}");
        assert!(!p["detail"].as_str().unwrap_or("").is_empty());
    }
    let (st, p) = s
        .post(
            &format!("/v1/instances/{i}/approval/votes"),
            &b.cab[0],
            json!({"decision": "maybe"}),
        )
        .await;
    assert_eq!(st.as_u16() / 100, 4, "{p}");
    assert_eq!(
        s.get(&format!("/v1/instances/{i}"), &s.admin).await.1,
        before
    );
    assert_eq!(kinds(&s, i).await, history);

    let (st, _) = vote(&s, &b.cab[0], i, "approve").await;
    assert_eq!(st, StatusCode::OK);
    let (st, p) = vote(&s, &b.cab[0], i, "reject").await;
    assert_eq!(st, StatusCode::CONFLICT, "{p}");
    assert_eq!(p["type"], "/problems/already-voted");
    // A vote for level 2 while level 1 is open.
    let (st, p) = s
        .post(
            &format!("/v1/instances/{i}/approval/votes"),
            &b.cab[1],
            json!({"decision": "approve", "level": 2}),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{p}");
    assert_eq!(p["type"], "/problems/level-closed");
    // A stale version sent by the voter.
    let (st, p) = s
        .post(
            &format!("/v1/instances/{i}/approval/votes"),
            &b.cab[1],
            json!({"decision": "approve", "version": 1}),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{p}");
    assert_eq!(p["type"], "/problems/conflict");
    // Withdrawn, then voted on: nothing awaits approval, and nobody's list holds it.
    let (st, v) = s
        .post(
            &format!("/v1/instances/{i}/actions/withdraw"),
            &b.rita,
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (st, p) = vote(&s, &b.cab[1], i, "approve").await;
    assert_eq!(st, StatusCode::CONFLICT, "{p}");
    assert_eq!(p["type"], "/problems/no-open-approval");
    let (_, mine) = s.get("/v1/me/approvals", &b.cab[1]).await;
    assert_eq!(mine["items"], json!([]));
    s.stop();
}

/// A vote delegated by its approver, and the approver's list as it changes, live.
async fn delegation_and_live_list(db: Db) {
    use futures_util::StreamExt;
    let s = Server::start(&db);
    let b = board(&s).await;
    let max = s.user(&s.admin, "max", &["change_manager"]).await;
    let resp = s
        .http
        .get(format!("{}/v1/me/approvals/events", s.base))
        .bearer_auth(&max)
        .send()
        .await
        .expect("events");
    assert_eq!(resp.status(), StatusCode::OK);
    let mut stream = resp.bytes_stream();
    let mut text = String::new();
    while !text.contains("event: ready") {
        let chunk = stream.next().await.expect("open").expect("chunk");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }

    let v = to_approval(&s, &b, "normal", "1").await;
    let i = id(&v);
    assert_eq!(v["approval"]["waiting_for"], json!(["max", "mia"]));
    let (st, after) = s
        .post(
            &format!("/v1/instances/{i}/approval/delegations"),
            &b.mia,
            json!({"to": "sue"}),
        )
        .await;
    assert_eq!(
        st,
        StatusCode::UNPROCESSABLE_ENTITY,
        "sue is no change manager: {after}"
    );
    assert_eq!(after["type"], "/problems/delegate-refused");
    let (st, after) = s
        .post(
            &format!("/v1/instances/{i}/approval/delegations"),
            &s.admin,
            json!({"from": "mia", "to": "sue"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "an administrator may name her: {after}");
    let ballots = after["approval"]["levels"][0]["ballots"]
        .as_array()
        .expect("ballots")
        .clone();
    assert!(ballots
        .iter()
        .any(|b| b["approver"] == "mia" && b["delegate"] == "sue"));
    let (_, mine) = s.get("/v1/me/approvals", &b.sue).await;
    assert_eq!(mine["items"][0]["on_behalf_of"], "mia", "{mine}");

    // Max's live list hears of the level and of its end.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    let wanted = format!("\"instance\":{i}");
    while !text.contains(&wanted) {
        let chunk = tokio::time::timeout_at(deadline, stream.next())
            .await
            .expect("an event arrives")
            .expect("open")
            .expect("chunk");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(text.contains("\"approver\":\"max\""), "{text}");
    let seen = text.len();
    let (st, after) = vote(&s, &b.sue, i, "approve").await;
    assert_eq!(st, StatusCode::OK, "{after}");
    assert_eq!(after["stage"], "scheduled");
    let closed = |text: &str| {
        data_lines(text)
            .iter()
            .any(|d| d["instance"] == i && d["ballots"] == json!([]))
    };
    while !closed(&text[seen..]) {
        let chunk = tokio::time::timeout_at(deadline, stream.next())
            .await
            .expect("the end of the level arrives")
            .expect("open")
            .expect("chunk");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    let (_, h) = s.get(&format!("/v1/instances/{i}/history"), &s.admin).await;
    let voted = h["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|e| e["kind"] == "voted")
        .expect("voted")
        .clone();
    assert_eq!(voted["actor"], "sue");
    assert_eq!(voted["data"]["approver"], "mia");
    s.stop();
}
