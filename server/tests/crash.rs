//! A server killed mid-load (SIGKILL: no shutdown, no flush) loses nothing it acknowledged.
//! Started again on the same database, every acknowledged creation and action is there, and
//! every instance is whole: its version is its history's length and its stage is where its last
//! transition went (a change applies completely or not at all, killed or not).

#[macro_use]
mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value as Json};
use support::{Db, Server};

on_both!(a_killed_server_loses_nothing_it_acknowledged);

/// Clients acting at once, each on an incident of its own.
const CLIENTS: usize = 12;

/// Acknowledged actions, across the clients, after which the server is killed.
const KILL_AFTER: u64 = 300;

/// What one client was told succeeded.
#[derive(Default)]
struct Acknowledged {
    /// Per instance, the highest version an answer returned.
    versions: HashMap<i64, i64>,
    /// Instances whose creation was answered 201.
    created: Vec<i64>,
}

/// A request that may find the server gone, or going (a 5xx: nothing was promised): `None`
/// then.
async fn post(
    http: &reqwest::Client,
    url: String,
    token: &str,
    body: Json,
) -> Option<(StatusCode, Json)> {
    let resp = http
        .post(url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .ok()?;
    let status = resp.status();
    if status.is_server_error() {
        return None;
    }
    let body = resp.json().await.ok()?;
    Some((status, body))
}

/// Move one incident between `working` and `awaiting_caller`, and now and then raise a new
/// one, until the server stops answering; everything answered as done is recorded.
async fn client(
    http: reqwest::Client,
    base: String,
    token: String,
    incident: i64,
    acked_so_far: Arc<AtomicU64>,
) -> Acknowledged {
    let mut acked = Acknowledged::default();
    let mut turn = 0u64;
    loop {
        turn += 1;
        let action = if turn % 2 == 1 { "ask" } else { "answer" };
        let url = format!("{base}/v1/instances/{incident}/actions/{action}");
        let Some((st, body)) = post(&http, url, &token, json!({})).await else {
            return acked;
        };
        assert_eq!(st, StatusCode::OK, "{action}: {body}");
        let version = body["version"].as_i64().expect("version");
        acked.versions.insert(incident, version);
        acked_so_far.fetch_add(1, Ordering::Relaxed);
        if turn.is_multiple_of(5) {
            let fields = json!({"title": format!("raised in turn {turn}"), "caller": "alice",
                "service": "email", "category": "software", "impact": "low", "urgency": "low"});
            let url = format!("{base}/v1/instances");
            let body = json!({"process": "incident", "fields": fields});
            let Some((st, body)) = post(&http, url, &token, body).await else {
                return acked;
            };
            assert_eq!(st, StatusCode::CREATED, "{body}");
            acked.created.push(body["id"].as_i64().expect("id"));
        }
    }
}

/// The instance, checked whole: its version counts its history, and its stage (and its
/// task's) is where the last transition went. Returns its version.
async fn whole(s: &Server, token: &str, id: i64) -> i64 {
    let (st, inst) = s.get(&format!("/v1/instances/{id}"), token).await;
    assert_eq!(
        st,
        StatusCode::OK,
        "instance {id} acknowledged, then lost: {inst}"
    );
    let (st, history) = s.get(&format!("/v1/instances/{id}/history"), token).await;
    assert_eq!(st, StatusCode::OK, "{history}");
    let events = history["items"].as_array().expect("items");
    let version = inst["version"].as_i64().expect("version");
    assert_eq!(
        version,
        events.len() as i64,
        "instance {id}: {inst} {history}"
    );
    let last_stage = events
        .iter()
        .rev()
        .find_map(|e| match e["kind"].as_str() {
            Some("transitioned") => e["data"]["to"].as_str(),
            Some("created") => e["data"]["stage"].as_str(),
            _ => None,
        })
        .expect("a creation");
    assert_eq!(inst["stage"], last_stage, "instance {id}: {history}");
    if !inst["task"].is_null() {
        assert_eq!(inst["task"]["stage"], last_stage, "instance {id}: {inst}");
    }
    version
}

async fn a_killed_server_loses_nothing_it_acknowledged(db: Db) {
    let server = Server::start(&db);
    let token = server
        .user(
            &server.admin,
            "alice",
            &["agent", "network_engineer", "caller"],
        )
        .await;
    let mut incidents = Vec::new();
    for i in 0..CLIENTS {
        let id = server.incident(&token, &format!("Incident {i}")).await["id"]
            .as_i64()
            .expect("id");
        let (st, body) = server
            .post(
                &format!("/v1/instances/{id}/actions/accept"),
                &token,
                json!({}),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{body}");
        incidents.push(id);
    }

    let acked_so_far = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = incidents
        .iter()
        .map(|&id| {
            let (http, base, token) = (server.http.clone(), server.base.clone(), token.clone());
            tokio::spawn(client(http, base, token, id, acked_so_far.clone()))
        })
        .collect();
    // Kill the server while the clients are busy (once they have done enough for the check
    // to mean something, however slow the machine), then collect what each was told.
    let started = Instant::now();
    while acked_so_far.load(Ordering::Relaxed) < KILL_AFTER {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the clients got nothing done"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.kill();
    let mut acked = Acknowledged::default();
    for c in clients {
        let mine = c.await.expect("a client panicked");
        acked.versions.extend(mine.versions);
        acked.created.extend(mine.created);
    }
    assert!(acked_so_far.load(Ordering::Relaxed) >= KILL_AFTER && !acked.created.is_empty());

    let server = Server::start(&db);
    for (&id, &version) in &acked.versions {
        let now = whole(&server, &token, id).await;
        assert!(
            now >= version,
            "instance {id} was acknowledged at version {version}, is at {now}"
        );
    }
    for &id in &acked.created {
        whole(&server, &token, id).await;
    }
}
