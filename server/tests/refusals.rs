//! Refused requests over a real socket: each gets a clear error naming what was wrong, and
//! leaves every instance, task, link and event exactly as it was (read back over HTTP).

#[macro_use]
mod support;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value as Json};
use support::{Db, Server};

on_both!(
    spawn_failure_leaves_the_parent_as_it_was,
    nul_characters_are_refused_where_they_are,
);

fn id(v: &Json) -> i64 {
    v["id"].as_i64().unwrap_or_else(|| panic!("no id in {v}"))
}

/// Everything a refusal must leave alone: the instance (stage, fields, version, task with its
/// claim), its history and its links.
async fn snapshot(s: &Server, token: &str, inst: i64) -> (Json, Json, Json) {
    let (st, view) = s.get(&format!("/v1/instances/{inst}"), token).await;
    assert_eq!(st, StatusCode::OK, "{view}");
    let (st, history) = s.get(&format!("/v1/instances/{inst}/history"), token).await;
    assert_eq!(st, StatusCode::OK, "{history}");
    let (st, links) = s.get(&format!("/v1/instances/{inst}/links"), token).await;
    assert_eq!(st, StatusCode::OK, "{links}");
    (view, history, links)
}

/// A problem answer of this status and type, whose detail mentions `names` (where the
/// request was wrong).
fn refused(got: &(StatusCode, Json), status: StatusCode, kind: &str, names: &[&str]) {
    let (st, body) = got;
    assert_eq!(*st, status, "{body}");
    assert_eq!(body["type"], format!("/problems/{kind}"), "{body}");
    let detail = body["detail"].as_str().unwrap_or_default();
    for n in names {
        assert!(detail.contains(n), "`{n}` not named in {body}");
    }
}

/// A 422 `invalid-request` whose detail names `names`.
fn invalid(got: &(StatusCode, Json), names: &[&str]) {
    refused(
        got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid-request",
        names,
    );
}

/// A 422 `invalid-fields` naming exactly `fields` (in any order) in `errors`.
fn invalid_fields(got: &(StatusCode, Json), fields: &[&str]) {
    refused(got, StatusCode::UNPROCESSABLE_ENTITY, "invalid-fields", &[]);
    let mut named = error_fields(&got.1);
    named.sort_unstable();
    let mut want = fields.to_vec();
    want.sort_unstable();
    assert_eq!(named, want, "{}", got.1);
}

fn error_fields(err: &Json) -> Vec<&str> {
    err["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors in {err}"))
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect()
}

/// A body sent as is, with a content type.
async fn raw(
    s: &Server,
    method: Method,
    path: &str,
    token: &str,
    content_type: &str,
    body: &str,
) -> (StatusCode, Json) {
    let resp = s
        .http
        .request(method, format!("{}{path}", s.base))
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Json::String(text)),
    )
}

/// Bad fields on create: every one is named, whatever is wrong with it, and nothing is
/// created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_create_names_every_bad_field_and_creates_nothing() {
    let db = Db::sqlite();
    let s = Server::start(&db);
    let alice = s.user(&s.admin, "alice", &["agent"]).await;

    let got = s
        .post(
            "/v1/instances",
            &alice,
            json!({"process": "incident", "fields": {
                "title": 7,                 // wrong type
                "colour": "red",            // not a field
                "impact": "enormous",       // not in the enum
                "reopened": 1.5,            // not a whole number
                // caller, service, category: required and missing
            }}),
        )
        .await;
    invalid_fields(
        &got,
        &[
            "caller", "category", "colour", "impact", "reopened", "service", "title",
        ],
    );
    // Blank text is no value for a required field.
    let got = s
        .post(
            "/v1/instances",
            &alice,
            json!({"process": "incident", "fields": {"title": "  ", "caller": "alice",
                   "service": "email", "category": "software", "impact": "low"}}),
        )
        .await;
    invalid_fields(&got, &["title"]);

    // The body itself: each refusal names the member.
    let got = s
        .post(
            "/v1/instances",
            &alice,
            json!({"process": "incident", "fields": []}),
        )
        .await;
    invalid(&got, &["fields"]);
    let got = s.post("/v1/instances", &alice, json!({"process": 5})).await;
    invalid(&got, &["process"]);
    let got = s.post("/v1/instances", &alice, json!({"fields": {}})).await;
    invalid(&got, &["process"]);
    let got = raw(
        &s,
        Method::POST,
        "/v1/instances",
        &alice,
        "application/json",
        "{\"process\": \"incident\", \"fields\": {\"title\": }}",
    )
    .await;
    refused(&got, StatusCode::BAD_REQUEST, "bad-request", &["line 1"]);

    let (_, list) = s.get("/v1/instances", &alice).await;
    assert_eq!(
        list["items"],
        json!([]),
        "a refused create created something"
    );
}

/// An action refused for any reason (role, stage, unknown, stale version, bad fields, bad
/// body, guard, requires) changes nothing, fields sent with it included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_actions_change_nothing() {
    let db = Db::sqlite();
    let s = Server::start(&db);
    let alice = s.user(&s.admin, "alice", &["agent"]).await;
    let bob = s.user(&s.admin, "bob", &["requester"]).await;
    let inc = s.incident(&bob, "Mail is down").await;
    let inc_id = id(&inc);
    let before = snapshot(&s, &alice, inc_id).await;
    let act = |a: &str| format!("/v1/instances/{inc_id}/actions/{a}");

    // Not the action's role.
    let got = s
        .post(
            &act("accept"),
            &bob,
            json!({"fields": {"urgency": "high"}, "reason": "mine"}),
        )
        .await;
    refused(&got, StatusCode::FORBIDDEN, "forbidden", &["accept"]);
    assert_eq!(
        got.1["roles"],
        json!(["agent", "network_engineer", "incident_manager"])
    );
    // Not from this stage.
    let got = s
        .post(
            &act("resolve"),
            &alice,
            json!({"fields": {"resolution": "x"}}),
        )
        .await;
    refused(
        &got,
        StatusCode::CONFLICT,
        "action-not-allowed",
        &["resolve", "triage"],
    );
    assert_eq!(got.1["allowed"], json!(["accept", "cancel"]));
    // No such action.
    let got = s.post(&act("explode"), &alice, json!({})).await;
    refused(&got, StatusCode::NOT_FOUND, "unknown-action", &["explode"]);
    // A stale version, in the body and in If-Match.
    let stale = inc["version"].as_i64().unwrap() - 1;
    let got = s
        .post(
            &act("accept"),
            &alice,
            json!({"version": stale, "fields": {"urgency": "high"}}),
        )
        .await;
    refused(&got, StatusCode::CONFLICT, "conflict", &[]);
    assert_eq!(got.1["instance_id"], inc_id);
    let resp = s
        .http
        .post(format!("{}{}", s.base, act("accept")))
        .bearer_auth(&alice)
        .header("if-match", format!("W/\"{stale}\""))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CONFLICT);
    // If-Match and version disagreeing, or an If-Match that is no version.
    let resp = s
        .http
        .post(format!("{}{}", s.base, act("accept")))
        .bearer_auth(&alice)
        .header("if-match", format!("\"{}\"", inc["version"]))
        .json(&json!({"version": stale}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let resp = s
        .http
        .post(format!("{}{}", s.base, act("accept")))
        .bearer_auth(&alice)
        .header("if-match", "\"3\", \"4\"")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    // Bad fields with the action: each named, the transition not made.
    let got = s
        .post(
            &act("accept"),
            &alice,
            json!({"fields": {"urgency": "yesterday", "colour": "red"}}),
        )
        .await;
    invalid_fields(&got, &["colour", "urgency"]);
    // A bad body: a member of the wrong type, an unknown member, bad JSON, not JSON.
    let got = s.post(&act("accept"), &alice, json!({"reason": 5})).await;
    invalid(&got, &["reason"]);
    let got = s
        .post(&act("accept"), &alice, json!({"version": "3"}))
        .await;
    invalid(&got, &["version"]);
    let got = s
        .post(&act("accept"), &alice, json!({"resaon": "typo"}))
        .await;
    invalid(&got, &["resaon"]);
    let got = raw(
        &s,
        Method::POST,
        &act("accept"),
        &alice,
        "application/json",
        "{\"reason\": ",
    )
    .await;
    refused(&got, StatusCode::BAD_REQUEST, "bad-request", &[]);
    let got = raw(
        &s,
        Method::POST,
        &act("accept"),
        &alice,
        "text/plain",
        "{\"reason\": \"x\"}",
    )
    .await;
    refused(
        &got,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-media-type",
        &[],
    );
    // PATCH: several bad fields named at once; a required field not cleared.
    let got = s
        .call(
            Method::PATCH,
            &format!("/v1/instances/{inc_id}"),
            &alice,
            Some(json!({"fields": {"title": 7, "impact": "huge", "colour": "red"}})),
        )
        .await;
    invalid_fields(&got, &["colour", "impact", "title"]);
    let got = s
        .call(
            Method::PATCH,
            &format!("/v1/instances/{inc_id}"),
            &alice,
            Some(json!({"fields": {"caller": null}})),
        )
        .await;
    invalid_fields(&got, &["caller"]);
    // Comments: blank, or not text; links: to nothing, to itself, a kind that is no name.
    let comments = format!("/v1/instances/{inc_id}/comments");
    let got = s.post(&comments, &alice, json!({"text": " \n\t "})).await;
    invalid(&got, &["text"]);
    let got = s.post(&comments, &alice, json!({"text": ["hi"]})).await;
    invalid(&got, &["text"]);
    let links = format!("/v1/instances/{inc_id}/links");
    let got = s
        .post(&links, &alice, json!({"to": 999_999, "kind": "caused_by"}))
        .await;
    refused(&got, StatusCode::NOT_FOUND, "not-found", &["999999"]);
    let got = s
        .post(&links, &alice, json!({"to": inc_id, "kind": "caused_by"}))
        .await;
    invalid(&got, &["itself"]);
    let other = s.incident(&alice, "Other").await;
    let got = s
        .post(
            &links,
            &alice,
            json!({"to": id(&other), "kind": "caused by"}),
        )
        .await;
    invalid(&got, &["kind"]);
    let got = s.post(&links, &alice, json!({"to": id(&other)})).await;
    invalid(&got, &["kind"]);

    assert_eq!(snapshot(&s, &alice, inc_id).await, before);
    let (_, other_history) = s
        .get(&format!("/v1/instances/{}/history", id(&other)), &alice)
        .await;
    assert_eq!(other_history["items"].as_array().unwrap().len(), 3);

    // A guard that does not hold, and `requires` not met: the fields sent are not kept.
    let pm = s.user(&s.admin, "pat", &["problem_manager"]).await;
    let (st, problem) = s
        .post(
            "/v1/instances",
            &pm,
            json!({"process": "problem", "fields": {"title": "Mail keeps failing",
                   "service": "email", "impact": "high"}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{problem}");
    let pid = id(&problem);
    let (st, problem) = s
        .post(
            &format!("/v1/instances/{pid}/actions/accept"),
            &pm,
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{problem}");
    assert_eq!(problem["stage"], "investigating");
    let before = snapshot(&s, &pm, pid).await;
    let known_error = format!("/v1/instances/{pid}/actions/record_known_error");
    let got = s
        .post(
            &known_error,
            &pm,
            json!({"fields": {"root_cause": "disk full", "workaround": "reboot"}}),
        )
        .await;
    refused(
        &got,
        StatusCode::CONFLICT,
        "rule-refused",
        &["workaround_is_documented"],
    );
    assert_eq!(got.1["rule"], "workaround_is_documented");
    let got = s.post(&known_error, &pm, json!({})).await;
    refused(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "missing-fields",
        &[],
    );
    assert_eq!(got.1["fields"], json!(["root_cause", "workaround"]));
    let got = s
        .post(
            &known_error,
            &pm,
            json!({"fields": {"root_cause": "disk full"}}),
        )
        .await;
    refused(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "missing-fields",
        &[],
    );
    assert_eq!(got.1["fields"], json!(["workaround"]));
    assert_eq!(snapshot(&s, &pm, pid).await, before);
}

/// Claims: every refused renew, release, complete or claim leaves the claim as it was (same
/// holder, token and lease) and the instance untouched; the holder can still complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_task_requests_keep_the_claim() {
    let db = Db::sqlite();
    let s = Server::start(&db);
    let alice = s.user(&s.admin, "alice", &["agent"]).await;
    let dave = s.user(&s.admin, "dave", &["agent"]).await;
    let erin = s.user(&s.admin, "erin", &["network_engineer"]).await;
    let inc = s.incident(&alice, "Laptop will not boot").await;
    let inc_id = id(&inc);
    let (st, task) = s
        .post("/v1/queues/service_desk/claim", &alice, json!({}))
        .await;
    assert_eq!(st, StatusCode::OK, "{task}");
    let tid = id(&task);
    let token = task["token"].as_i64().unwrap();
    let before = snapshot(&s, &alice, inc_id).await;
    assert_eq!(before.0["task"], task);
    let path = |what: &str| format!("/v1/tasks/{tid}/{what}");

    // Someone else, or a stale token: the lease is not theirs.
    for (who, tok) in [(&dave, token), (&alice, token - 1), (&alice, token + 1)] {
        for (what, body) in [
            ("complete", json!({"token": tok, "action": "accept"})),
            ("renew", json!({"token": tok, "lease_seconds": 3600})),
            ("release", json!({"token": tok})),
        ] {
            let got = s.post(&path(what), who, body).await;
            refused(
                &got,
                StatusCode::CONFLICT,
                "lease-lost",
                &[&tid.to_string()],
            );
        }
    }
    // Someone else claiming: it is held; a queue they are not in: forbidden.
    let got = s.post(&path("claim"), &dave, json!({})).await;
    refused(&got, StatusCode::CONFLICT, "task-claimed", &["alice"]);
    let got = s.post(&path("claim"), &erin, json!({})).await;
    refused(&got, StatusCode::FORBIDDEN, "forbidden", &["service_desk"]);
    assert_eq!(got.1["roles"], json!(["agent"]));
    // The holder, with a good token but a bad request.
    let got = s
        .post(
            &path("complete"),
            &alice,
            json!({"token": token, "action": "resolve"}),
        )
        .await;
    refused(
        &got,
        StatusCode::CONFLICT,
        "action-not-allowed",
        &["resolve"],
    );
    let got = s
        .post(
            &path("complete"),
            &alice,
            json!({"token": token, "action": "explode"}),
        )
        .await;
    refused(&got, StatusCode::NOT_FOUND, "unknown-action", &["explode"]);
    let got = s
        .post(
            &path("complete"),
            &alice,
            json!({"token": token, "action": "accept", "fields": {"impact": "vast"}}),
        )
        .await;
    invalid_fields(&got, &["impact"]);
    let got = s
        .post(&path("complete"), &alice, json!({"token": token}))
        .await;
    invalid(&got, &["action"]);
    let got = s
        .post(
            &path("complete"),
            &alice,
            json!({"token": token, "action": "accept", "reason": "x"}),
        )
        .await;
    invalid(&got, &["reason"]);
    let got = s
        .post(
            &path("complete"),
            &alice,
            json!({"token": "1", "action": "accept"}),
        )
        .await;
    invalid(&got, &["token"]);
    for lease in [0, -5, 86_401] {
        let got = s
            .post(
                &path("renew"),
                &alice,
                json!({"token": token, "lease_seconds": lease}),
            )
            .await;
        invalid(&got, &["lease_seconds"]);
        let got = s
            .post(&path("claim"), &alice, json!({"lease_seconds": lease}))
            .await;
        invalid(&got, &["lease_seconds"]);
    }
    let got = s.post(&path("release"), &alice, json!({})).await;
    invalid(&got, &["token"]);
    // No such task: 404 for each verb, not a lost lease.
    for (what, body) in [
        ("claim", json!({})),
        ("renew", json!({"token": 1})),
        ("release", json!({"token": 1})),
        ("complete", json!({"token": 1, "action": "accept"})),
    ] {
        let got = s
            .post(&format!("/v1/tasks/999999/{what}"), &alice, body)
            .await;
        refused(&got, StatusCode::NOT_FOUND, "not-found", &["999999"]);
    }
    let got = s.get("/v1/tasks/abc", &alice).await;
    refused(&got, StatusCode::BAD_REQUEST, "bad-request", &[]);

    assert_eq!(snapshot(&s, &alice, inc_id).await, before);
    // The claim survived all that: its holder completes with its token.
    let (st, after) = s
        .post(
            &path("complete"),
            &alice,
            json!({"token": token, "action": "accept"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{after}");
    assert_eq!(after["stage"], "working");
    // And a done task stays done.
    let got = s
        .post(
            &path("complete"),
            &alice,
            json!({"token": token, "action": "accept"}),
        )
        .await;
    refused(&got, StatusCode::CONFLICT, "lease-lost", &[]);
    let got = s.post(&path("claim"), &alice, json!({})).await;
    refused(&got, StatusCode::CONFLICT, "task-done", &[]);
}

/// `limit` and `cursor` out of range are 422 naming the parameter (docs/api.md: "422
/// outside 1..max"; "a cursor the API did not give out is a 422").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_parameters_out_of_range_are_named() {
    let db = Db::sqlite();
    let s = Server::start(&db);
    let alice = s.user(&s.admin, "alice", &["agent"]).await;
    s.incident(&alice, "One").await;
    for path in [
        "/v1/instances?limit=-1",
        "/v1/instances?limit=0",
        "/v1/instances?limit=501",
        "/v1/instances?limit=4294967296",
        "/v1/queues/service_desk/tasks?limit=-1",
        "/v1/queues/service_desk/tasks?limit=501",
        "/v1/notifications?role=agent&limit=-1",
        "/v1/notifications?role=agent&limit=0",
    ] {
        let got = s.get(path, &alice).await;
        invalid(&got, &["limit"]);
    }
    for cursor in ["0", "-3", "abc", "1.5"] {
        let got = s
            .get(&format!("/v1/instances?cursor={cursor}"), &alice)
            .await;
        invalid(&got, &["cursor"]);
    }
    // Malformed (not a number) and unknown parameters stay 400, naming the parameter.
    let got = s.get("/v1/instances?limit=ten", &alice).await;
    refused(&got, StatusCode::BAD_REQUEST, "bad-request", &["limit"]);
    let got = s.get("/v1/instances?colour=red", &alice).await;
    refused(&got, StatusCode::BAD_REQUEST, "bad-request", &["colour"]);
    // The edges are accepted.
    for path in ["/v1/instances?limit=1", "/v1/instances?limit=500&cursor=1"] {
        let (st, page) = s.get(path, &alice).await;
        assert_eq!(st, StatusCode::OK, "{path}: {page}");
    }
}

/// The audit project: the standard processes and a hand-off whose spawned follow-up requires
/// a field the hand-off may leave unset (the project checks; the spawn can fail at run time).
fn project_with_handoff() -> Json {
    let mut files = support::project_files();
    files.push(json!({"name": "handoff.itsm", "text": HANDOFF}));
    json!({ "files": files })
}

const HANDOFF: &str = r#"
process handoff "Hand-off" {
  fields {
    title: text required
    owner: text
  }
  links {
    follows_up: one follow_up
  }
  stage open "Open" initial {
    queue service_desk
  }
  stage done "Done" final
  transition hand_off: open -> done by role agent spawns follow_up as follows_up
}

process follow_up "Follow-up" {
  fields {
    title: text required
    owner: text required
  }
  stage open "Open" initial
  stage done "Done" final
  transition finish: open -> done by role agent
}
"#;

/// A transition whose spawned instance cannot be created is refused whole: the parent does
/// not move, its task stays, no child, no link. Likewise when the parent's task is claimed by
/// someone else (the spawn would be valid then).
async fn spawn_failure_leaves_the_parent_as_it_was(db: Db) {
    let s = Server::start(&db);
    let alice = s.user(&s.admin, "alice", &["agent"]).await;
    let dave = s.user(&s.admin, "dave", &["agent"]).await;
    let (st, published) = s
        .post("/v1/definitions", &s.admin, project_with_handoff())
        .await;
    assert_eq!(st, StatusCode::CREATED, "{published}");

    let (st, parent) = s
        .post(
            "/v1/instances",
            &alice,
            json!({"process": "handoff", "fields": {"title": "Move the printer"}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{parent}");
    let pid = id(&parent);
    assert_eq!(parent["task"]["state"], "open");
    let before = snapshot(&s, &alice, pid).await;
    let hand_off = format!("/v1/instances/{pid}/actions/hand_off");

    // The follow-up requires `owner`, which the hand-off does not have.
    let got = s
        .post(&hand_off, &alice, json!({"reason": "over to facilities"}))
        .await;
    invalid_fields(&got, &["owner"]);
    assert!(
        got.1["detail"].as_str().unwrap().contains("follow_up"),
        "{}",
        got.1
    );
    nothing_spawned(&s, &alice, pid, &before).await;

    // With an owner the spawn is valid, but dave holds the task: refused, nothing spawned.
    let (st, task) = s
        .post(
            &format!("/v1/tasks/{}/claim", parent["task"]["id"]),
            &dave,
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{task}");
    let before = snapshot(&s, &alice, pid).await;
    let got = s
        .post(
            &hand_off,
            &alice,
            json!({"fields": {"owner": "facilities"}}),
        )
        .await;
    refused(&got, StatusCode::CONFLICT, "task-claimed", &["dave"]);
    nothing_spawned(&s, &alice, pid, &before).await;

    // Dave completes it with an owner: parent done, one child, linked.
    let (st, done) = s
        .post(
            &format!("/v1/tasks/{}/complete", id(&task)),
            &dave,
            json!({"token": task["token"], "action": "hand_off", "fields": {"owner": "facilities"}}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{done}");
    assert_eq!(done["stage"], "done");
    let (_, children) = s.get("/v1/instances?process=follow_up", &alice).await;
    assert_eq!(children["items"].as_array().unwrap().len(), 1, "{children}");
    assert_eq!(children["items"][0]["fields"]["owner"], "facilities");
    let (_, links) = s.get(&format!("/v1/instances/{pid}/links"), &alice).await;
    assert_eq!(links["items"][0]["kind"], "follows_up", "{links}");
}

/// The hand-off `pid` is as `before`, and there is no follow-up.
async fn nothing_spawned(s: &Server, token: &str, pid: i64, before: &(Json, Json, Json)) {
    assert_eq!(&snapshot(s, token, pid).await, before);
    let (_, children) = s.get("/v1/instances?process=follow_up", token).await;
    assert_eq!(children["items"], json!([]), "a refused spawn left a child");
}

/// A NUL character (`\u0000`) anywhere in text is refused with where it is, the same on both
/// stores; PostgreSQL cannot store one, so it used to be a 500 (or a 503 "retry later") there.
async fn nul_characters_are_refused_where_they_are(db: Db) {
    let s = Server::start(&db);
    let alice = s.user(&s.admin, "alice", &["agent", "admin"]).await;
    let inc = s.incident(&alice, "Mail is down").await;
    let inc_id = id(&inc);
    let before = snapshot(&s, &alice, inc_id).await;
    let (_, tokens_before) = s.get("/v1/tokens", &alice).await;
    let (_, versions_before) = s.get("/v1/definitions/incident", &alice).await;

    let fields = json!({"title": "a\u{0}b", "caller": "alice", "service": "email",
                        "category": "software", "impact": "low"});
    let inst = format!("/v1/instances/{inc_id}");
    for (method, path, body, at) in [
        (
            Method::POST,
            "/v1/instances".to_string(),
            json!({"process": "incident", "fields": fields}),
            "`fields.title`",
        ),
        (
            Method::POST,
            format!("{inst}/comments"),
            json!({"text": "see\u{0}log"}),
            "`text`",
        ),
        (
            Method::POST,
            format!("{inst}/actions/accept"),
            json!({"reason": "\u{0}"}),
            "`reason`",
        ),
        (
            Method::PATCH,
            inst.clone(),
            json!({"fields": {"resolution": "x\u{0}"}}),
            "`fields.resolution`",
        ),
        (
            Method::POST,
            "/v1/users/alice/tokens".to_string(),
            json!({"label": "lap\u{0}top"}),
            "`label`",
        ),
    ] {
        let got = s.call(method, &path, &alice, Some(body)).await;
        invalid(&got, &[at]);
    }
    // A filter: the parameter is named.
    let got = s.get("/v1/instances?process=inci%00dent", &alice).await;
    invalid(&got, &["`process`"]);
    // A name in the path (a user, a queue, a process): refused before anything looks it up.
    let got = s
        .call(
            Method::PUT,
            "/v1/users/al%00ice/roles",
            &alice,
            Some(json!({"roles": ["agent"]})),
        )
        .await;
    invalid(&got, &["path"]);
    let got = s.post("/v1/users/al%00ice/tokens", &alice, json!({})).await;
    invalid(&got, &["path"]);
    let got = s.get("/v1/queues/net%00work/tasks", &alice).await;
    invalid(&got, &["path"]);
    let got = s.get("/v1/definitions/inci%00dent", &alice).await;
    invalid(&got, &["path"]);
    // A project with one in a comment: nothing published.
    let mut project = project_with_handoff();
    project["files"][0]["text"] = json!(format!(
        "// \u{0}\n{}",
        project["files"][0]["text"].as_str().unwrap()
    ));
    let got = s.post("/v1/definitions", &alice, project).await;
    invalid(&got, &["`files[0].text`"]);

    assert_eq!(snapshot(&s, &alice, inc_id).await, before);
    let (_, list) = s.get("/v1/instances", &alice).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
    let (_, tokens) = s.get("/v1/tokens", &alice).await;
    assert_eq!(tokens, tokens_before);
    let (_, versions) = s.get("/v1/definitions/incident", &alice).await;
    assert_eq!(versions, versions_before);
    let (_, handoff) = s.get("/v1/definitions/handoff", &alice).await;
    assert_eq!(handoff["type"], "/problems/not-found", "{handoff}");
    // An escaped backslash before `u0000` is no NUL: accepted.
    let (st, view) = s
        .post(
            &format!("/v1/instances/{inc_id}/comments"),
            &alice,
            json!({"text": "the log says \\u0000"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{view}");
}

/// An action's fields may not clear a required field, exactly as `PATCH` may not (docs/api.md:
/// "Clearing a required field is refused"); an action used to take `null` or blank text for a
/// required field, leaving the instance without its title (and a stale priority when the
/// cleared field sets it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_action_cannot_clear_a_required_field() {
    let db = Db::sqlite();
    let s = Server::start(&db);
    let alice = s.user(&s.admin, "alice", &["agent"]).await;
    let inc = s.incident(&alice, "Mail is down").await;
    let inc_id = id(&inc);
    let before = snapshot(&s, &alice, inc_id).await;
    for fields in [
        json!({"title": null}),
        json!({"title": "   "}),
        json!({"impact": null}),
    ] {
        let got = s
            .post(
                &format!("/v1/instances/{inc_id}/actions/accept"),
                &alice,
                json!({ "fields": fields }),
            )
            .await;
        let name = fields.as_object().unwrap().keys().next().unwrap().clone();
        invalid_fields(&got, &[name.as_str()]);
        assert_eq!(snapshot(&s, &alice, inc_id).await, before);
    }
}

/// Linking the same two instances with the same kind again changes nothing: a `200` with the
/// instance as it is, no second `linked` event, no new version (it used to record a link the
/// store, keeping one row per pair and kind, did not add).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linking_twice_writes_no_second_event() {
    let db = Db::sqlite();
    let s = Server::start(&db);
    let alice = s.user(&s.admin, "alice", &["agent"]).await;
    let a = id(&s.incident(&alice, "A").await);
    let b = id(&s.incident(&alice, "B").await);
    let links = format!("/v1/instances/{a}/links");
    let (st, first) = s
        .post(&links, &alice, json!({"to": b, "kind": "parent"}))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{first}");
    let before = snapshot(&s, &alice, a).await;
    let (st, again) = s
        .post(&links, &alice, json!({"to": b, "kind": "parent"}))
        .await;
    assert_eq!(st, StatusCode::OK, "{again}");
    assert_eq!(again["version"], first["version"], "{again}");
    assert_eq!(snapshot(&s, &alice, a).await, before);
}
