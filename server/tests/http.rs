//! The HTTP API over a real socket, against a real `itsmflow serve` on a real SQLite file
//! and on a real PostgreSQL database. Each scenario runs on both.

#[macro_use]
mod support;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value as Json};
use support::{Db, Server};

on_both!(
    incident_lifecycle,
    authentication_and_roles,
    tenants_are_isolated,
    validation_errors,
    conflicts,
    pagination,
    queue_events,
    definitions,
);

fn id(v: &Json) -> i64 {
    v["id"].as_i64().unwrap_or_else(|| panic!("no id in {v}"))
}

/// A caller raises an incident; an agent takes it from the service desk queue, accepts and
/// resolves it; the caller closes it. Everything is in the history, the clocks stopped.
async fn incident_lifecycle(db: Db) {
    let s = Server::start(&db);
    let alice = s.user(&s.admin, "alice", &["agent"]).await;
    let bob = s.user(&s.admin, "bob", &["requester", "caller"]).await;

    let inc = s.incident(&bob, "Mail is down").await;
    let inc_id = id(&inc);
    assert_eq!(inc["stage"], "triage");
    assert_eq!(inc["queue"], "service_desk");
    assert_eq!(inc["priority"], "P3");
    assert_eq!(inc["created_by"], "bob");

    let (st, queues) = s.get("/v1/queues", &alice).await;
    assert_eq!(st, StatusCode::OK, "{queues}");
    let sd = queues["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["name"] == "service_desk")
        .expect("service_desk listed")
        .clone();
    assert_eq!(sd["tasks"], 1);
    assert_eq!(sd["roles"], json!(["agent"]));

    let (st, tasks) = s.get("/v1/queues/service_desk/tasks", &alice).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(tasks["items"][0]["instance"], inc_id);

    // Take it, accept it.
    let (st, task) = s
        .post(
            "/v1/queues/service_desk/claim",
            &alice,
            json!({"lease_seconds": 120}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{task}");
    assert_eq!(task["claimed_by"], "alice");
    let (st, after) = s
        .post(
            &format!("/v1/tasks/{}/complete", id(&task)),
            &alice,
            json!({"token": task["token"], "action": "accept"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{after}");
    assert_eq!(after["stage"], "working");

    // Resolving needs a resolution: refused without, nothing changed.
    let (st, task) = s
        .post("/v1/queues/service_desk/claim", &alice, json!({}))
        .await;
    assert_eq!(st, StatusCode::OK, "{task}");
    let complete = format!("/v1/tasks/{}/complete", id(&task));
    let (st, err) = s
        .post(
            &complete,
            &alice,
            json!({"token": task["token"], "action": "resolve"}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    assert_eq!(err["type"], "/problems/missing-fields");
    assert_eq!(err["fields"], json!(["resolution"]));
    let (_, still) = s.get(&format!("/v1/instances/{inc_id}"), &alice).await;
    assert_eq!(still["stage"], "working");
    let (st, after) = s
        .post(
            &complete,
            &alice,
            json!({"token": task["token"], "action": "resolve",
                   "fields": {"resolution": "Restarted the mail relay"}}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{after}");
    assert_eq!(after["stage"], "resolved");
    assert_eq!(after["fields"]["resolution"], "Restarted the mail relay");

    // The caller comments and closes it.
    let (st, _) = s
        .post(
            &format!("/v1/instances/{inc_id}/comments"),
            &bob,
            json!({"text": "Works again, thanks"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let (st, closed) = s
        .post(
            &format!("/v1/instances/{inc_id}/actions/close"),
            &bob,
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{closed}");
    assert_eq!(closed["stage"], "closed");
    assert_eq!(closed["task"], Json::Null);

    let (st, history) = s
        .get(&format!("/v1/instances/{inc_id}/history"), &bob)
        .await;
    assert_eq!(st, StatusCode::OK);
    let kinds: Vec<(&str, &str)> = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["kind"].as_str().unwrap(), e["actor"].as_str().unwrap()))
        .collect();
    assert_eq!(kinds.first(), Some(&("created", "bob")));
    assert!(kinds.contains(&("transitioned", "alice")));
    assert!(kinds.contains(&("commented", "bob")));
    assert_eq!(kinds.last(), Some(&("transitioned", "bob")));

    let (st, clocks) = s.get(&format!("/v1/instances/{inc_id}/clocks"), &bob).await;
    assert_eq!(st, StatusCode::OK, "{clocks}");
    let states: Vec<&str> = clocks["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["met", "met"], "{clocks}");

    let (_, queues) = s.get("/v1/queues", &alice).await;
    assert!(queues["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|q| q["tasks"] == 0));
}

/// No token, a wrong one, a revoked one, an expired one, the wrong role: all refused, with
/// nothing changed.
async fn authentication_and_roles(db: Db) {
    let s = Server::start(&db);
    let alice = s.user(&s.admin, "alice", &["agent"]).await;
    let bob = s.user(&s.admin, "bob", &["requester"]).await;
    let carol = s.user(&s.admin, "carol", &["requester"]).await;
    let inc = s.incident(&bob, "Printer jam").await;
    let inc_id = id(&inc);

    // No token.
    let resp = s
        .http
        .get(format!("{}/v1/instances/{inc_id}", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    assert!(resp.headers().contains_key("www-authenticate"));
    assert!(resp.headers().contains_key("x-request-id"));

    // A wrong token.
    let (st, err) = s.get("/v1/queues", "itsm_not-a-token").await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert_eq!(err["type"], "/problems/unauthorized");

    // Revoked: refused at once, and the revocation cannot be repeated.
    let (st, tok) = s
        .post(
            "/v1/users/alice/tokens",
            &s.admin,
            json!({"label": "laptop"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let laptop = tok["secret"].as_str().unwrap().to_string();
    assert_eq!(s.get("/v1/queues", &laptop).await.0, StatusCode::OK);
    let (st, _) = s
        .call(
            Method::DELETE,
            &format!("/v1/tokens/{}", id(&tok)),
            &s.admin,
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, err) = s.get("/v1/queues", &laptop).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert!(err["detail"].as_str().unwrap().contains("revoked"), "{err}");
    let (st, _) = s
        .call(
            Method::DELETE,
            &format!("/v1/tokens/{}", id(&tok)),
            &s.admin,
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    // Tokens are listed without their secrets.
    let (_, tokens) = s.get("/v1/tokens", &s.admin).await;
    assert!(!tokens.to_string().contains(&laptop));
    assert!(tokens["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t.get("secret").is_none()));

    // Expired: a token whose expiry has passed (set in the database, as time passing would).
    let (_, tok) = s
        .post(
            "/v1/users/alice/tokens",
            &s.admin,
            json!({"expires_in_days": 1}),
        )
        .await;
    let short = tok["secret"].as_str().unwrap().to_string();
    expire_token(&db, id(&tok)).await;
    let (st, err) = s.get("/v1/queues", &short).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert!(err["detail"].as_str().unwrap().contains("expired"), "{err}");

    // Wrong roles.
    let (st, err) = s.get("/v1/queues", &bob).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{err}");
    assert_eq!(err["type"], "/problems/forbidden");
    let (st, _) = s
        .post(
            "/v1/definitions",
            &alice,
            json!({"files": [{"name": "x.itsm", "text": ""}]}),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, _) = s
        .post(
            "/v1/users",
            &alice,
            json!({"name": "mallory", "roles": ["admin"]}),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (_, users) = s.get("/v1/users", &s.admin).await;
    assert!(!users.to_string().contains("mallory"));
    // A requester may not perform an agent's action, and sees only their own tickets.
    let (st, err) = s
        .post(
            &format!("/v1/instances/{inc_id}/actions/accept"),
            &bob,
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{err}");
    let (st, _) = s.get(&format!("/v1/instances/{inc_id}"), &carol).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _) = s
        .post(
            &format!("/v1/instances/{inc_id}/comments"),
            &carol,
            json!({"text": "hi"}),
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (_, mine) = s.get("/v1/instances", &carol).await;
    assert_eq!(mine["items"], json!([]));
    let (_, mine) = s.get("/v1/instances?created_by=bob", &carol).await;
    assert_eq!(mine["items"], json!([]));

    // Nothing of that changed the incident.
    let (_, now) = s.get(&format!("/v1/instances/{inc_id}"), &alice).await;
    assert_eq!(now["version"], inc["version"]);
    assert_eq!(now["stage"], "triage");

    // Roles changed by an administrator take effect at once.
    let (st, _) = s
        .call(
            Method::PUT,
            "/v1/users/carol/roles",
            &s.admin,
            Some(json!({"roles": ["agent"]})),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        s.get(&format!("/v1/instances/{inc_id}"), &carol).await.0,
        StatusCode::OK
    );
}

async fn expire_token(db: &Db, token: i64) {
    let past = chrono::Utc::now().timestamp_micros() - 1_000_000;
    let sql = "UPDATE auth_tokens SET expires_at = $1 WHERE id = $2";
    match db {
        Db::Sqlite(_) => {
            let url = db.url();
            let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
            sqlx::query(sql)
                .bind(past)
                .bind(token)
                .execute(&pool)
                .await
                .unwrap();
        }
        Db::Postgres { url, .. } => {
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            sqlx::query(sql)
                .bind(past)
                .bind(token)
                .execute(&pool)
                .await
                .unwrap();
        }
    }
}

/// Another tenant's administrator reaches nothing of the default tenant, and vice versa.
async fn tenants_are_isolated(db: Db) {
    let s = Server::start(&db);
    let alice = s.user(&s.admin, "alice", &["agent"]).await;
    let inc = s.incident(&alice, "VPN flaps").await;
    let inc_id = id(&inc);

    let (st, acme) = s
        .post(
            "/v1/tenants",
            &s.admin,
            json!({"name": "acme", "admin": "root"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{acme}");
    let root = acme["secret"].as_str().unwrap().to_string();
    // Same user name, another tenant: a different person.
    let acme_alice = s.user(&root, "alice", &["agent", "admin"]).await;

    for token in [&root, &acme_alice] {
        assert_eq!(
            s.get(&format!("/v1/instances/{inc_id}"), token).await.0,
            StatusCode::NOT_FOUND
        );
        let (st, _) = s
            .post(
                &format!("/v1/instances/{inc_id}/actions/accept"),
                token,
                json!({}),
            )
            .await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        let (_, list) = s.get("/v1/instances", token).await;
        assert_eq!(list["items"], json!([]));
        let (_, tasks) = s.get("/v1/queues/service_desk/tasks", token).await;
        assert_eq!(tasks["items"], json!([]));
        // An agent there finds nothing to claim; its administrator (no agent role) may not.
        let (st, none) = s
            .post("/v1/queues/service_desk/claim", token, json!({}))
            .await;
        let expected = if token == &acme_alice {
            StatusCode::NO_CONTENT
        } else {
            StatusCode::FORBIDDEN
        };
        assert_eq!(st, expected, "{none}");
        let task = inc["task"]["id"].as_i64().unwrap();
        let (st, _) = s
            .post(&format!("/v1/tasks/{task}/claim"), token, json!({}))
            .await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        let (_, users) = s.get("/v1/users", token).await;
        assert!(!users.to_string().contains("\"default\""));
    }
    // Only operators create tenants.
    let (st, _) = s
        .post("/v1/tenants", &root, json!({"name": "evil", "admin": "x"}))
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, _) = s
        .post(
            "/v1/tenants",
            &s.admin,
            json!({"name": "acme", "admin": "y"}),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT);

    // The acme tenant works on its own: it got the standard processes.
    let acme_inc = s.incident(&acme_alice, "Acme's own").await;
    assert_eq!(
        s.get(&format!("/v1/instances/{}", id(&acme_inc)), &alice)
            .await
            .0,
        if id(&acme_inc) == inc_id {
            StatusCode::OK
        } else {
            StatusCode::NOT_FOUND
        }
    );
    let (_, mine) = s.get("/v1/instances", &acme_alice).await;
    assert_eq!(mine["items"].as_array().unwrap().len(), 1);
    assert_eq!(mine["items"][0]["fields"]["title"], "Acme's own");
    let (_, theirs) = s.get("/v1/instances", &alice).await;
    assert_eq!(theirs["items"].as_array().unwrap().len(), 1);
    assert_eq!(theirs["items"][0]["fields"]["title"], "VPN flaps");
    // Nothing changed in the default tenant.
    let (_, now) = s.get(&format!("/v1/instances/{inc_id}"), &alice).await;
    assert_eq!(now["version"], inc["version"]);
    assert_eq!(now["task"]["state"], "open");
}

async fn validation_errors(db: Db) {
    let s = Server::start_with(&db, &["--max-body-bytes", "16384"]);
    let alice = s.user(&s.admin, "alice", &["agent"]).await;

    let (st, err) = s
        .post(
            "/v1/instances",
            &alice,
            json!({"process": "incident", "fields": {"title": "x", "impact": "enormous", "reopened": "two"}}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    assert_eq!(err["type"], "/problems/invalid-fields");
    let fields: Vec<&str> = err["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    for f in ["impact", "reopened", "caller"] {
        assert!(fields.contains(&f), "{f} not reported in {err}");
    }
    let (st, err) = s
        .post(
            "/v1/instances",
            &alice,
            json!({"process": "nope", "fields": {}}),
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert!(err["detail"].as_str().unwrap().contains("nope"));
    // Malformed JSON, unknown members, wrong content type, bad path, bad limit.
    let resp = s
        .http
        .post(format!("{}/v1/instances", s.base))
        .bearer_auth(&alice)
        .header("content-type", "application/json")
        .body("{\"process\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let (st, _) = s
        .post(
            "/v1/instances",
            &alice,
            json!({"process": "incident", "feilds": {}}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    let resp = s
        .http
        .post(format!("{}/v1/instances", s.base))
        .bearer_auth(&alice)
        .body("process=incident")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(
        s.get("/v1/instances/abc", &alice).await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        s.get("/v1/instances?limit=0", &alice).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        s.get("/v1/instances?limit=100000", &alice).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(s.get("/v1/nowhere", &alice).await.0, StatusCode::NOT_FOUND);
    // An action that does not exist, or is not possible in this stage.
    let inc = s.incident(&alice, "x").await;
    let (st, err) = s
        .post(
            &format!("/v1/instances/{}/actions/explode", id(&inc)),
            &alice,
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{err}");
    let (st, err) = s
        .post(
            &format!("/v1/instances/{}/actions/resolve", id(&inc)),
            &alice,
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{err}");
    assert_eq!(err["type"], "/problems/action-not-allowed");
    assert!(err["allowed"]
        .as_array()
        .unwrap()
        .contains(&json!("accept")));
    // Bodies over the limit are refused. (Small enough to be sent whole before the server
    // answers, so the client reads the answer rather than a reset connection.)
    let big = "x".repeat(20_000);
    let (st, _) = s
        .post(
            &format!("/v1/instances/{}/comments", id(&inc)),
            &alice,
            json!({"text": big}),
        )
        .await;
    assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE);
    // None of the refused requests left a trace: the history is the creation and the log.
    let (_, history) = s
        .get(&format!("/v1/instances/{}/history", id(&inc)), &alice)
        .await;
    let kinds: Vec<&str> = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["created", "transitioned", "routed"], "{history}");
}

/// A stale version is refused with 409 and changes nothing; two agents claiming one task:
/// one wins.
async fn conflicts(db: Db) {
    let s = Server::start(&db);
    let alice = s.user(&s.admin, "alice", &["agent"]).await;
    let dave = s.user(&s.admin, "dave", &["agent"]).await;
    let inc = s.incident(&alice, "Slow laptop").await;
    let inc_id = id(&inc);
    let version = inc["version"].as_i64().unwrap();

    let (st, _) = s
        .call(
            Method::PATCH,
            &format!("/v1/instances/{inc_id}"),
            &alice,
            Some(json!({"fields": {"urgency": "high"}, "version": version})),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let (st, err) = s
        .call(
            Method::PATCH,
            &format!("/v1/instances/{inc_id}"),
            &dave,
            Some(json!({"fields": {"urgency": "low"}, "version": version})),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{err}");
    assert_eq!(err["type"], "/problems/conflict");
    // The same through If-Match.
    let resp = s
        .http
        .post(format!("{}/v1/instances/{inc_id}/actions/accept", s.base))
        .bearer_auth(&dave)
        .header("if-match", format!("\"{version}\""))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CONFLICT);
    let (_, now) = s.get(&format!("/v1/instances/{inc_id}"), &alice).await;
    assert_eq!(now["fields"]["urgency"], "high");
    assert_eq!(now["stage"], "triage");

    // Both claim the task at once: exactly one gets it.
    let task = now["task"]["id"].as_i64().unwrap();
    let path = format!("/v1/tasks/{task}/claim");
    let (a, d) = tokio::join!(
        s.post(&path, &alice, json!({})),
        s.post(&path, &dave, json!({}))
    );
    let statuses = [a.0, d.0];
    assert!(statuses.contains(&StatusCode::OK), "{statuses:?}");
    assert!(
        statuses.contains(&StatusCode::CONFLICT),
        "{statuses:?} {} {}",
        a.1,
        d.1
    );
    let (winner, winner_body, loser) = if a.0 == StatusCode::OK {
        (&alice, a.1, &dave)
    } else {
        (&dave, d.1, &alice)
    };
    // The loser cannot complete it; a stale token neither.
    let complete = format!("/v1/tasks/{task}/complete");
    let (st, err) = s
        .post(
            &complete,
            loser,
            json!({"token": winner_body["token"], "action": "accept"}),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{err}");
    assert_eq!(err["type"], "/problems/lease-lost");
    let (st, _) = s
        .post(
            &format!("/v1/tasks/{task}/release"),
            winner,
            json!({"token": winner_body["token"]}),
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _) = s
        .post(
            &complete,
            winner,
            json!({"token": winner_body["token"], "action": "accept"}),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT);
    let (_, now) = s.get(&format!("/v1/instances/{inc_id}"), &alice).await;
    assert_eq!(now["stage"], "triage");
}

async fn pagination(db: Db) {
    let s = Server::start(&db);
    let alice = s.user(&s.admin, "alice", &["agent"]).await;
    let mut created = Vec::new();
    for i in 0..7 {
        created.push(id(&s.incident(&alice, &format!("Ticket {i}")).await));
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/instances?process=incident&limit=3&cursor={c}"),
            None => "/v1/instances?process=incident&limit=3".to_string(),
        };
        let (st, page) = s.get(&path, &alice).await;
        assert_eq!(st, StatusCode::OK, "{page}");
        pages += 1;
        seen.extend(page["items"].as_array().unwrap().iter().map(id));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
        assert!(pages < 10, "pagination does not end");
    }
    created.reverse();
    assert_eq!(seen, created, "newest first, each exactly once");
    let (_, filtered) = s
        .get(
            "/v1/instances?stage=triage&queue=service_desk&limit=500",
            &alice,
        )
        .await;
    assert_eq!(filtered["items"].as_array().unwrap().len(), 7);
    let (_, none) = s.get("/v1/instances?stage=closed", &alice).await;
    assert_eq!(none["items"], json!([]));
    let (st, _) = s.get("/v1/instances?cursor=zzz", &alice).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
}

/// An agent's queue view hears about tasks without polling.
async fn queue_events(db: Db) {
    use futures_util::StreamExt;
    let s = Server::start(&db);
    let alice = s.user(&s.admin, "alice", &["agent"]).await;
    let resp = s
        .http
        .get(format!("{}/v1/queues/service_desk/events", s.base))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut stream = resp.bytes_stream();
    let mut text = String::new();
    // Wait until subscribed.
    while !text.contains("event: ready") {
        let chunk = stream.next().await.expect("stream open").unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    let inc = s.incident(&alice, "Events please").await;
    let (_, task) = s
        .post("/v1/queues/service_desk/claim", &alice, json!({}))
        .await;
    s.post(
        &format!("/v1/tasks/{}/release", id(&task)),
        &alice,
        json!({"token": task["token"]}),
    )
    .await;
    let want = ["event: added", "event: claimed", "event: released"];
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while !want.iter().all(|w| text.contains(w)) {
        let chunk = tokio::time::timeout_at(deadline, stream.next())
            .await
            .expect("events arrive")
            .expect("stream open")
            .unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(
        text.contains(&format!("\"instance\":{}", id(&inc))),
        "{text}"
    );
    // Completing it takes it out of the queue.
    let (_, task) = s
        .post("/v1/queues/service_desk/claim", &alice, json!({}))
        .await;
    let (st, _) = s
        .post(
            &format!("/v1/tasks/{}/complete", id(&task)),
            &alice,
            json!({"token": task["token"], "action": "cancel"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    while !text.contains("event: removed") {
        let chunk = tokio::time::timeout_at(deadline, stream.next())
            .await
            .expect("the removal arrives")
            .expect("stream open")
            .unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    // Another queue's stream does not exist for a queue nobody declared.
    assert_eq!(
        s.get("/v1/queues/nowhere/events", &alice).await.0,
        StatusCode::NOT_FOUND
    );
}

/// Publishing: a project that does not check is refused with every diagnostic, and replaces
/// nothing; a good one gets new versions.
async fn definitions(db: Db) {
    let s = Server::start(&db);
    let (st, list) = s.get("/v1/definitions", &s.admin).await;
    assert_eq!(st, StatusCode::OK);
    let incident = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["process"] == "incident")
        .expect("incident published at start")
        .clone();
    assert_eq!(incident["version"], 1);

    let mut files = support::project_files();
    let broken = files
        .iter_mut()
        .find(|f| f["name"] == "incident.itsm")
        .unwrap();
    let text = broken["text"]
        .as_str()
        .unwrap()
        .replace("-> triage", "-> triaage");
    broken["text"] = json!(text);
    let (st, err) = s
        .post("/v1/definitions", &s.admin, json!({"files": files}))
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    assert_eq!(err["type"], "/problems/invalid-definitions");
    let diags = err["diagnostics"].to_string();
    assert!(
        diags.contains("triaage") && diags.contains("incident.itsm"),
        "{diags}"
    );
    let (_, after) = s.get("/v1/definitions/incident", &s.admin).await;
    assert_eq!(after["versions"].as_array().unwrap().len(), 1);

    // A real change publishes a new version; instances started before stay on theirs.
    let alice = s.user(&s.admin, "alice", &["agent"]).await;
    let old = s.incident(&alice, "Before").await;
    let mut files = support::project_files();
    let changed = files
        .iter_mut()
        .find(|f| f["name"] == "incident.itsm")
        .unwrap();
    let text = changed["text"]
        .as_str()
        .unwrap()
        .replace("\"Incident management\"", "\"Incidents\"");
    changed["text"] = json!(text);
    let (st, published) = s
        .post("/v1/definitions", &s.admin, json!({"files": files}))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{published}");
    let (_, versions) = s.get("/v1/definitions/incident", &s.admin).await;
    assert_eq!(versions["versions"].as_array().unwrap().len(), 2);
    let (_, v2) = s.get("/v1/definitions/incident/versions/2", &alice).await;
    assert_eq!(v2["label"], "Incidents");
    assert!(v2["actions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["name"] == "accept"));
    let (_, old_now) = s.get(&format!("/v1/instances/{}", id(&old)), &alice).await;
    assert_eq!(old_now["definition_version"], 1);
    let new = s.incident(&alice, "After").await;
    assert_eq!(new["definition_version"], 2);

    let resp = s
        .http
        .get(format!(
            "{}/v1/definitions/incident/graph?format=mermaid",
            s.base
        ))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.text().await.unwrap().contains("triage"));
    let (st, _) = s
        .get("/v1/definitions/incident/graph?format=png", &alice)
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
}
