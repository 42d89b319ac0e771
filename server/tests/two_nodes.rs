//! Two `itsmflow serve` processes on one PostgreSQL database, 32 agents claiming from the
//! same queue through both: every task is completed exactly once.

mod support;

use std::collections::HashMap;
use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::json;
use support::{Db, Server};

const INCIDENTS: usize = 300;
const AGENTS: usize = 32;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_task_completed_exactly_once_across_two_nodes() {
    let db = Db::postgres().await;
    let a = Server::start(&db);
    // The second node starts on the same database: it finds the administrator and the
    // published definitions, and prints no token.
    let b = Server::start(&db);
    assert!(!a.admin.is_empty());
    assert!(
        b.admin.is_empty(),
        "only the first start creates an administrator"
    );

    let mut tokens = Vec::new();
    for i in 0..AGENTS {
        tokens.push(a.user(&a.admin, &format!("agent{i}"), &["agent"]).await);
    }
    // Raise the incidents through both nodes.
    let raiser = &tokens[0];
    for i in 0..INCIDENTS {
        let node = if i % 2 == 0 { &a } else { &b };
        node.incident(raiser, &format!("Incident {i}")).await;
    }

    let nodes = Arc::new([a, b]);
    let mut workers = Vec::new();
    for (i, token) in tokens.into_iter().enumerate() {
        let nodes = nodes.clone();
        workers.push(tokio::spawn(async move {
            let mut done = Vec::new();
            let mut turn = i;
            loop {
                // Alternate nodes, so claims and completions cross between them.
                let node = &nodes[turn % 2];
                turn += 1;
                let (st, task) = node
                    .post(
                        "/v1/queues/service_desk/claim",
                        &token,
                        json!({"lease_seconds": 60}),
                    )
                    .await;
                if st == StatusCode::NO_CONTENT {
                    break;
                }
                assert_eq!(st, StatusCode::OK, "{task}");
                let other = &nodes[turn % 2];
                let (st, body) = other
                    .post(
                        &format!("/v1/tasks/{}/complete", task["id"]),
                        &token,
                        json!({"token": task["token"], "action": "cancel"}),
                    )
                    .await;
                assert_eq!(st, StatusCode::OK, "{body}");
                done.push(task["instance"].as_i64().unwrap());
            }
            done
        }));
    }
    let mut completions: HashMap<i64, usize> = HashMap::new();
    for w in workers {
        for instance in w.await.unwrap() {
            *completions.entry(instance).or_default() += 1;
        }
    }
    assert_eq!(
        completions.len(),
        INCIDENTS,
        "every incident's task was completed"
    );
    assert!(
        completions.values().all(|n| *n == 1),
        "no task was completed twice"
    );

    // And the database agrees: every incident is cancelled, by exactly one transition.
    let admin = nodes[0].admin.clone();
    let mut cursor = None::<String>;
    let mut cancelled = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/instances?limit=100&cursor={c}"),
            None => "/v1/instances?limit=100".into(),
        };
        let (_, page) = nodes[1].get(&path, &admin).await;
        for inc in page["items"].as_array().unwrap() {
            assert_eq!(inc["stage"], "cancelled", "{inc}");
            cancelled += 1;
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(cancelled, INCIDENTS);
    let (_, queues) = nodes[0].get("/v1/queues", &admin).await;
    assert!(queues["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|q| q["tasks"] == 0));
}

/// An agent watching a queue through one node hears what is done through the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_events_reach_agents_on_the_other_node() {
    use futures_util::StreamExt;
    let db = Db::postgres().await;
    let a = Server::start(&db);
    let b = Server::start(&db);
    let alice = a.user(&a.admin, "alice", &["agent"]).await;

    let resp = b
        .http
        .get(format!("{}/v1/queues/service_desk/events", b.base))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mut stream = resp.bytes_stream();
    let mut text = String::new();
    while !text.contains("event: ready") {
        text.push_str(&String::from_utf8_lossy(
            &stream.next().await.unwrap().unwrap(),
        ));
    }
    // The node raising the incident may open its LISTEN a moment after it starts serving:
    // raise incidents until one is heard, then check the claim of it is heard too.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut raised = 0;
    while !text.contains("event: added") {
        a.incident(&alice, &format!("Raised on node a ({raised})"))
            .await;
        raised += 1;
        if let Ok(Some(Ok(chunk))) =
            tokio::time::timeout(std::time::Duration::from_millis(500), stream.next()).await
        {
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no event crossed nodes: {text}"
        );
    }
    let (st, task) = a
        .post("/v1/queues/service_desk/claim", &alice, json!({}))
        .await;
    assert_eq!(st, StatusCode::OK, "{task}");
    while !text.contains("event: claimed") {
        let chunk = tokio::time::timeout_at(deadline, stream.next())
            .await
            .expect("the claim is heard on the other node")
            .expect("stream open")
            .unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(text.contains("\"claimed_by\":\"alice\""), "{text}");
}

const NOTIFICATIONS: usize = 60;

/// Two nodes on one PostgreSQL database, each delivering the shared notifications outbox to
/// the same webhook: every notification arrives exactly once (the deliverers claim rows, so
/// neither posts what the other has taken).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_notification_delivered_exactly_once_by_two_nodes() {
    let db = Db::postgres().await;
    let (hook, received) = support::receiver().await;
    let a = Server::start_with(&db, &["--webhook-url", &hook]);
    let b = Server::start_with(&db, &["--webhook-url", &hook]);
    let agent = a.user(&a.admin, "alice", &["agent"]).await;
    let caller = a.user(&a.admin, "carol", &["requester"]).await;
    // Each incident asks its caller once: one notification each, committed through both nodes.
    for i in 0..NOTIFICATIONS {
        let node = if i % 2 == 0 { &a } else { &b };
        let inc = node.incident(&caller, &format!("Incident {i}")).await;
        let id = inc["id"].as_i64().expect("id");
        for action in ["accept", "ask"] {
            let (st, v) = node
                .post(
                    &format!("/v1/instances/{id}/actions/{action}"),
                    &agent,
                    json!({}),
                )
                .await;
            assert_eq!(st, StatusCode::OK, "{action}: {v}");
        }
    }
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(90);
    loop {
        let (_, pending) = a
            .get("/v1/notifications?undelivered=true&limit=500", &a.admin)
            .await;
        let waiting = pending["items"].as_array().map_or(usize::MAX, Vec::len);
        if waiting == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{waiting} notifications still undelivered"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    // A moment for a duplicate to show up, were one on its way.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let got = received.lock().expect("lock").clone();
    let mut per_id: HashMap<i64, usize> = HashMap::new();
    for body in &got {
        let id = body["notification"]["id"].as_i64().expect("id");
        *per_id.entry(id).or_default() += 1;
    }
    assert_eq!(per_id.len(), NOTIFICATIONS, "{per_id:?}");
    assert!(
        per_id.values().all(|n| *n == 1),
        "delivered more than once: {:?}",
        per_id.iter().filter(|(_, n)| **n > 1).collect::<Vec<_>>()
    );
}

const ELSEWHERE: &str = include_str!("elsewhere.itsm");

/// A queue's event stream through one node, read as text.
struct Heard {
    stream: futures_util::stream::BoxStream<'static, reqwest::Result<String>>,
    text: String,
}

impl Heard {
    async fn listen(node: &Server, queue: &str, token: &str) -> Heard {
        use futures_util::StreamExt;
        let resp = node
            .http
            .get(format!("{}/v1/queues/{queue}/events", node.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let text = resp
            .bytes_stream()
            .map(|chunk| chunk.map(|b| String::from_utf8_lossy(&b).into_owned()));
        let mut heard = Heard {
            stream: Box::pin(text),
            text: String::new(),
        };
        while !heard.text.contains("event: ready") {
            let chunk = heard.stream.next().await.expect("open").expect("chunk");
            heard.text.push_str(&chunk);
        }
        heard
    }

    /// Wait until an event of `kind` about `instance` is heard.
    async fn until(&mut self, kind: &str, instance: i64) {
        use futures_util::StreamExt;
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let seen = self.text.split("\n\n").any(|event| {
                event.contains(&format!("event: {kind}\n"))
                    && event.contains(&format!("\"instance\":{instance},"))
            });
            if seen {
                return;
            }
            let chunk = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .unwrap_or_else(|_| panic!("no `{kind}` of {instance} heard: {}", self.text))
                .expect("stream open")
                .expect("chunk");
            self.text.push_str(&chunk);
        }
    }
}

/// Changes made by something other than a request to a task's own queue are heard through
/// the other node too: a spawned ticket's task added, an effect closing a linked ticket's
/// task, an agent going off shift returning their pushed task, a timer escalating a task.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn changes_made_elsewhere_are_heard_on_the_other_node() {
    let db = Db::postgres().await;
    let a = Server::start(&db);
    let b = Server::start(&db);
    let root = a.ops_tenant("elsewhere.itsm", ELSEWHERE).await;
    let ann = a.user(&root, "ann", &["agent"]).await;
    let mut desk = Heard::listen(&b, "desk", &ann).await;
    let mut pushed = Heard::listen(&b, "pushed", &ann).await;
    let mut experts = Heard::listen(&b, "experts", &ann).await;
    let raise = |impact: &'static str| {
        let (a, ann) = (&a, &ann);
        async move {
            let (st, v) = a
                .post(
                    "/v1/instances",
                    ann,
                    json!({"process": "ticket", "fields": {"title": "Heard elsewhere", "impact": impact}}),
                )
                .await;
            assert_eq!(st, StatusCode::CREATED, "{v}");
            v["id"].as_i64().expect("id")
        }
    };
    let act = |id: i64, action: &'static str| {
        let (a, ann) = (&a, &ann);
        async move {
            let (st, v) = a
                .post(
                    &format!("/v1/instances/{id}/actions/{action}"),
                    ann,
                    json!({}),
                )
                .await;
            assert_eq!(st, StatusCode::OK, "{action}: {v}");
            v
        }
    };

    // The node raising tickets may open its LISTEN a moment after it starts serving: the
    // first ticket is raised until one is heard.
    let mut first = raise("low").await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let heard = tokio::time::timeout(
            std::time::Duration::from_millis(500),
            desk.until("added", first),
        )
        .await;
        if heard.is_ok() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no event crossed nodes"
        );
        first = raise("low").await;
    }

    // Pushed to ann, then returned to the queue when she goes off shift.
    let (st, v) = a
        .call(
            reqwest::Method::PUT,
            "/v1/me/availability",
            &ann,
            Some(json!({"active": true})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let handed = act(first, "hand").await;
    assert_eq!(handed["task"]["assigned_to"], "ann", "{handed}");
    pushed.until("added", first).await;
    let (st, v) = a
        .call(
            reqwest::Method::PUT,
            "/v1/me/availability",
            &ann,
            Some(json!({"active": false})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    pushed.until("released", first).await;

    // A spawned job's task enters its queue; finishing the ticket finishes the job.
    let parent = raise("low").await;
    act(parent, "split").await;
    let (_, links) = a.get(&format!("/v1/instances/{parent}/links"), &ann).await;
    let job = links["items"][0]["other"]
        .as_i64()
        .expect("the spawned job");
    desk.until("added", job).await;
    act(parent, "finish").await;
    desk.until("removed", job).await;

    // A P1's escalation step moves it to the experts, fired by either node's scheduler.
    let urgent = raise("high").await;
    experts.until("escalated", urgent).await;
    desk.until("removed", urgent).await;
}

/// A node sends its queue events to the database only while another node is there to hear
/// them: alone, it sends none; once a node says it is here, it answers and sends them. The
/// other node here is the test itself, listening on the channel as nodes do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_alone_sends_no_events_to_the_database() {
    use sqlx::postgres::PgListener;
    const CHANNEL: &str = "itsmflow_queue_events";
    /// The next message on the channel, if one comes within a second.
    async fn next(listener: &mut PgListener) -> Option<serde_json::Value> {
        let wait = std::time::Duration::from_secs(1);
        let note = tokio::time::timeout(wait, listener.recv()).await.ok()?;
        Some(serde_json::from_str(note.expect("notification").payload()).expect("json"))
    }
    let db = Db::postgres().await;
    let a = Server::start(&db);
    let alice = a.user(&a.admin, "alice", &["agent"]).await;
    let mut listener = PgListener::connect(&db.url()).await.expect("connect");
    listener.listen(CHANNEL).await.expect("listen");
    // Alone (its own hello came before the test listened; its heartbeats say only "here").
    a.incident(&alice, "Nobody hears this").await;
    while let Some(m) = next(&mut listener).await {
        assert!(
            m.get("event").is_none(),
            "an event sent with nobody to hear it: {m}"
        );
    }
    // Another node says it is here: the node answers, and sends its events from then on.
    let pool = sqlx::PgPool::connect(&db.url()).await.expect("connect");
    let hello = json!({"node": "test-node", "here": {"answer": false}}).to_string();
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(&hello)
        .execute(&pool)
        .await
        .expect("notify");
    let mut answered = false;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while !answered {
        assert!(tokio::time::Instant::now() < deadline, "no answer");
        if let Some(m) = next(&mut listener).await {
            answered = m["node"] != "test-node" && m["here"]["answer"] == true;
        }
    }
    let inc = a.incident(&alice, "Heard by the other node").await;
    loop {
        assert!(tokio::time::Instant::now() < deadline, "no event sent");
        if let Some(m) = next(&mut listener).await {
            if m["event"]["instance"] == inc["id"] {
                assert_eq!(m["event"]["type"], "added", "{m}");
                break;
            }
        }
    }
}
