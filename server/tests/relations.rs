//! Tickets that relate, end to end over a real socket on a SQLite file and on PostgreSQL, with
//! the standard processes: a problem resolves the incidents it caused while agents work on
//! them (each incident changed once by it, none of the agents' writes lost, the history on
//! both sides), only the caller confirms closure, and a material incident closes only once
//! the problem behind it is resolved (and is closed with the problem if still waiting).

#[macro_use]
mod support;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value as Json};
use support::{Db, Server};

on_both!(
    a_problem_resolves_its_incidents_while_agents_work_them,
    a_material_incident_waits_for_its_problem
);

const COMMENTS: usize = 8;

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

async fn history(s: &Server, instance: i64) -> Vec<Json> {
    let (st, h) = s
        .get(&format!("/v1/instances/{instance}/history"), &s.admin)
        .await;
    assert_eq!(st, StatusCode::OK, "{h}");
    h["items"].as_array().expect("items").clone()
}

/// A problem in root cause analysis, raised by `token`'s user.
async fn problem(s: &Server, token: &str) -> i64 {
    let (st, p) = s
        .post(
            "/v1/instances",
            token,
            json!({"process": "problem", "fields": {"title": "Mail relay drops messages",
                   "service": "email", "impact": "medium"}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{p}");
    let p = id(&p);
    act(s, token, p, "accept", json!({})).await;
    p
}

async fn a_problem_resolves_its_incidents_while_agents_work_them(db: Db) {
    let s = Server::start(&db);
    let a = &s.admin;
    let pam = s.user(a, "pam", &["problem_manager"]).await;
    let bob = s.user(a, "bob", &["requester"]).await;
    let agents = [
        s.user(a, "ann", &["agent"]).await,
        s.user(a, "ben", &["agent"]).await,
        s.user(a, "cat", &["agent"]).await,
    ];
    let p = problem(&s, &pam).await;
    let mut incidents = Vec::new();
    for (n, agent) in agents.iter().enumerate() {
        let i = id(&s.incident(&bob, &format!("No mail on floor {n}")).await);
        act(&s, agent, i, "accept", json!({})).await;
        let (st, v) = s
            .post(
                &format!("/v1/instances/{i}/links"),
                agent,
                json!({"to": p, "kind": "caused_by"}),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
        incidents.push(i);
    }
    // The problem names them its `incidents`.
    let (_, links) = s.get(&format!("/v1/instances/{p}/links"), &pam).await;
    let items = links["items"].as_array().expect("items");
    assert_eq!(items.len(), 3, "{links}");
    assert!(items.iter().all(|l| l["name"] == "incidents"), "{links}");

    // The problem is resolved while each agent comments on their incident and updates it.
    let resolve_path = format!("/v1/instances/{p}/actions/fix_without_change");
    let resolve = s.post(
        &resolve_path,
        &pam,
        json!({"fields": {"root_cause": "a full disk on the relay"}}),
    );
    let s = &s;
    let work = agents.iter().zip(&incidents).map(|(agent, &i)| async move {
        for n in 0..COMMENTS {
            let (st, v) = s
                .post(
                    &format!("/v1/instances/{i}/comments"),
                    agent,
                    json!({"text": format!("note {n}")}),
                )
                .await;
            assert_eq!(st, StatusCode::CREATED, "{v}");
            if n == COMMENTS / 2 {
                let (st, v) = s
                    .call(
                        Method::PATCH,
                        &format!("/v1/instances/{i}"),
                        agent,
                        Some(json!({"fields": {"service": "network"}})),
                    )
                    .await;
                assert_eq!(st, StatusCode::OK, "{v}");
            }
        }
    });
    let ((st, resolved), _) = tokio::join!(resolve, futures_util::future::join_all(work));
    assert_eq!(st, StatusCode::OK, "{resolved}");
    assert_eq!(resolved["stage"], "resolved");

    let cause = format!("problem {p}: fix_without_change");
    for &i in &incidents {
        let (_, v) = s.get(&format!("/v1/instances/{i}"), &bob).await;
        assert_eq!(v["stage"], "resolved", "{v}");
        assert_eq!(v["fields"]["resolution"], "a full disk on the relay");
        assert_eq!(v["fields"]["service"], "network", "the agent's update kept");
        let h = history(s, i).await;
        let by_problem: Vec<&Json> = h
            .iter()
            .filter(|e| e["kind"] == "transitioned" && e["data"]["to"] == "resolved")
            .collect();
        assert_eq!(by_problem.len(), 1, "resolved once: {h:#?}");
        assert_eq!(by_problem[0]["reason"], cause.as_str());
        assert_eq!(by_problem[0]["actor"], "pam");
        let comments = h.iter().filter(|e| e["kind"] == "commented").count();
        assert_eq!(comments, COMMENTS, "no comment lost");
    }
    let acted: Vec<i64> = history(s, p)
        .await
        .iter()
        .filter(|e| e["kind"] == "acted_on")
        .map(|e| e["data"]["other"].as_i64().expect("other"))
        .collect();
    assert_eq!(acted, incidents);

    // Only the caller confirms closure.
    let (st, v) = s
        .post(
            &format!("/v1/instances/{}/actions/close", incidents[0]),
            &agents[0],
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    assert_eq!(v["people"], json!(["caller"]), "{v}");
    let closed = act(s, &bob, incidents[0], "close", json!({})).await;
    assert_eq!(closed["stage"], "closed");
}

async fn a_material_incident_waits_for_its_problem(db: Db) {
    let s = Server::start(&db);
    let a = &s.admin;
    let pam = s.user(a, "pam", &["problem_manager"]).await;
    let ann = s.user(a, "ann", &["agent", "incident_manager"]).await;
    let bob = s.user(a, "bob", &["requester"]).await;
    let material = |title: &str| {
        json!({"process": "incident", "fields": {"title": title, "caller": "bob",
               "service": "email", "category": "software", "impact": "high",
               "urgency": "medium"}})
    };
    let (st, m) = s.post("/v1/instances", &bob, material("Mail down")).await;
    assert_eq!(st, StatusCode::CREATED, "{m}");
    assert_eq!(m["fields"]["material"], true, "{m}");
    let m = id(&m);
    act(&s, &bob, m, "log", json!({})).await;
    act(&s, &ann, m, "accept", json!({})).await;
    // Its problem is raised from it, then it is resolved with a workaround.
    act(&s, &ann, m, "raise_problem", json!({})).await;
    let (_, links) = s.get(&format!("/v1/instances/{m}/links"), &ann).await;
    assert_eq!(links["items"][0]["name"], "caused_by", "{links}");
    let p = links["items"][0]["other"].as_i64().expect("the problem");
    act(
        &s,
        &ann,
        m,
        "resolve",
        json!({"fields": {"resolution": "mail rerouted through the backup relay"}}),
    )
    .await;

    // The caller cannot close it while the problem is open: nothing changes.
    let (_, before) = s.get(&format!("/v1/instances/{m}"), &bob).await;
    let (st, v) = s
        .post(&format!("/v1/instances/{m}/actions/close"), &bob, json!({}))
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["type"], "/problems/condition-not-met", "{v}");
    assert!(
        v["condition"]
            .as_str()
            .is_some_and(|c| c.contains("any caused_by where stage in (resolved, closed)")),
        "{v}"
    );
    let (_, after) = s.get(&format!("/v1/instances/{m}"), &bob).await;
    assert_eq!(after, before);

    // A second material incident, attached to the same problem by an agent, waits too.
    let (_, w) = s.post("/v1/instances", &bob, material("Mail slow")).await;
    let w = id(&w);
    act(&s, &bob, w, "log", json!({})).await;
    act(&s, &ann, w, "accept", json!({})).await;
    let (st, v) = s
        .post(
            &format!("/v1/instances/{w}/links"),
            &ann,
            json!({"to": p, "kind": "caused_by"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    act(
        &s,
        &ann,
        w,
        "resolve",
        json!({"fields": {"resolution": "queue flushed"}}),
    )
    .await;

    // The problem is resolved: the caller may now close the first; closing the problem closes
    // the second, which nobody confirmed.
    act(&s, &pam, p, "accept", json!({})).await;
    act(
        &s,
        &pam,
        p,
        "fix_without_change",
        json!({"fields": {"root_cause": "the relay's certificate expired"}}),
    )
    .await;
    let (_, v) = s.get(&format!("/v1/instances/{m}"), &bob).await;
    assert_eq!(
        v["fields"]["resolution"], "mail rerouted through the backup relay",
        "resolved already: left alone"
    );
    let closed = act(&s, &bob, m, "close", json!({})).await;
    assert_eq!(closed["stage"], "closed");
    act(&s, &pam, p, "close", json!({})).await;
    let (_, v) = s.get(&format!("/v1/instances/{w}"), &bob).await;
    assert_eq!(v["stage"], "closed", "{v}");
    let h = history(&s, w).await;
    let last = h.last().expect("history");
    assert_eq!(
        last["reason"],
        format!("problem {p}: close").as_str(),
        "{h:#?}"
    );
}
