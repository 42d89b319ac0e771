//! A queue page of 500 tasks, rendered by the server, against the JSON list of the same tasks
//! (`GET /v1/queues/{queue}/tasks?limit=500`), both over a real socket from a real
//! `itsmflow serve` on SQLite (issue 21: "a queue page of 500 tasks rendered by the server in a
//! time comparable to the JSON list of the same tasks").
//!
//! Run with `cargo bench -p itsmflow --bench queue_page`; it prints criterion's figures for
//! each, then the ratio of their means (page / JSON). `ITSMFLOW_SERVER_BIN` names another
//! build of the server to measure (one from before a change, say).

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use reqwest::{Method, StatusCode};
use serde_json::json;
use support::web::WebClient;
use support::{Db, Server};

const TASKS: usize = 500;
const PASSWORD: &str = "correct horse battery";

/// A server whose `service_desk` queue holds `TASKS` open incidents, an agent's session on
/// the pages and her token for the API.
struct Setup {
    _db: Db,
    server: Server,
    agent_token: String,
    runtime: tokio::runtime::Runtime,
}

fn setup() -> Setup {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let db = Db::sqlite();
    let server = Server::start(&db);
    let agent_token = runtime.block_on(async {
        let token = server.user(&server.admin, "alice", &["agent"]).await;
        let (st, b) = server
            .call(
                Method::PUT,
                "/v1/users/alice/password",
                &server.admin,
                Some(json!({ "password": PASSWORD })),
            )
            .await;
        assert_eq!(st, StatusCode::NO_CONTENT, "{b}");
        let carol = server
            .user(&server.admin, "carol", &["requester", "caller"])
            .await;
        for i in 0..TASKS {
            // Low and medium impact: tickets the service desk works (high impact goes to
            // the major incident team).
            let (impact, urgency) = [
                ("medium", "medium"),
                ("medium", "low"),
                ("low", "medium"),
                ("low", "low"),
            ][i % 4];
            let (st, b) = server
                .post(
                    "/v1/instances",
                    &carol,
                    json!({"process": "incident", "fields": {"title": format!("Ticket {i}"),
                        "caller": "carol", "service": "email", "category": "software",
                        "impact": impact, "urgency": urgency}}),
                )
                .await;
            assert_eq!(st, StatusCode::CREATED, "{b}");
            let id = b["id"].as_i64().expect("id");
            let (st, b) = server
                .post(
                    &format!("/v1/instances/{id}/actions/log"),
                    &carol,
                    json!({}),
                )
                .await;
            assert_eq!(st, StatusCode::OK, "{b}");
        }
        token
    });
    Setup {
        _db: db,
        server,
        agent_token,
        runtime,
    }
}

fn mean(runs: u32, mut f: impl FnMut()) -> Duration {
    let start = Instant::now();
    for _ in 0..runs {
        f();
    }
    start.elapsed() / runs
}

fn bench(c: &mut Criterion) {
    let s = setup();
    let rt = &s.runtime;
    let mut page_client = rt.block_on(WebClient::signed_in(
        &s.server.base,
        "default",
        "alice",
        PASSWORD,
    ));
    let json_path = format!("/v1/queues/service_desk/tasks?limit={TASKS}");

    // Both show every task.
    let page = rt.block_on(page_client.get("/queues/service_desk"));
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.body.matches("<tr data-task=").count(), TASKS, "rows");
    let (st, list) = rt.block_on(s.server.get(&json_path, &s.agent_token));
    assert_eq!(st, StatusCode::OK);
    assert_eq!(list["items"].as_array().map(Vec::len), Some(TASKS));

    let mut get_page = || {
        let p = rt.block_on(page_client.get("/queues/service_desk"));
        assert_eq!(p.status, StatusCode::OK);
    };
    let get_json = || {
        let (st, _) = rt.block_on(s.server.get(&json_path, &s.agent_token));
        assert_eq!(st, StatusCode::OK);
    };

    let mut group = c.benchmark_group("queue of 500 tasks");
    group.sample_size(20);
    group.bench_function("HTML page", |b| b.iter(&mut get_page));
    group.bench_function("JSON list", |b| b.iter(get_json));
    group.finish();

    let (page_mean, json_mean) = (mean(20, &mut get_page), mean(20, get_json));
    println!(
        "queue of {TASKS} tasks: HTML page {page_mean:.2?}, JSON list {json_mean:.2?}, \
         ratio page/JSON {:.2}",
        page_mean.as_secs_f64() / json_mean.as_secs_f64()
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
