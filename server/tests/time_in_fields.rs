//! Time in fields in a running server, on real time, over a real socket on a SQLite file and
//! on PostgreSQL: an access grant is revoked at the instant its `valid_until` field holds
//! (moved once by an update), and a step repeats every second while a ticket stays in its
//! stage and stops when it leaves. The test waits for what the history records; it does not
//! time it.

#[macro_use]
mod support;

use std::time::Duration;

use chrono::Utc;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value as Json};
use support::{Db, Server};

on_both!(a_grant_lapses_and_a_step_repeats);

const PROJECT: &str = r#"
role agent

process access {
  fields {
    user:        text required
    valid_until: datetime
  }

  stage granted initial {
    every 1s => notify role agent "Access {id} is still granted"
  }
  stage revoked final

  transition revoke: granted -> revoked by role agent or at valid_until
}
"#;

async fn history(s: &Server, id: i64) -> Vec<Json> {
    let (_, h) = s
        .get(&format!("/v1/instances/{id}/history"), &s.admin)
        .await;
    h["items"].as_array().cloned().unwrap_or_default()
}

/// Wait (up to a minute) until the history has an event of `kind` that `pick` accepts.
async fn until(s: &Server, id: i64, what: &str, pick: impl Fn(&[Json]) -> bool) -> Vec<Json> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let h = history(s, id).await;
        if pick(&h) {
            return h;
        }
        assert!(tokio::time::Instant::now() < deadline, "no {what}: {h:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn count(h: &[Json], kind: &str) -> usize {
    h.iter().filter(|e| e["kind"] == kind).count()
}

async fn a_grant_lapses_and_a_step_repeats(db: Db) {
    let s = Server::start(&db);
    let (st, b) = s
        .post(
            "/v1/definitions",
            &s.admin,
            json!({"files": [{"name": "access.itsm", "text": PROJECT}]}),
        )
        .await;
    assert!(st.is_success(), "{st} {b}");
    let far = (Utc::now() + chrono::TimeDelta::days(30)).to_rfc3339();
    let (st, v) = s
        .post(
            "/v1/instances",
            &s.admin,
            json!({"process": "access", "fields": {"user": "dave", "valid_until": far}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let id = v["id"].as_i64().expect("id");

    // The step repeats while the grant stands, once per second.
    let h = until(&s, id, "three runs", |h| count(h, "recurred") >= 3).await;
    let periods: Vec<i64> = h
        .iter()
        .filter(|e| e["kind"] == "recurred")
        .map(|e| e["data"]["period"].as_i64().expect("period"))
        .collect();
    assert!(periods.windows(2).all(|w| w[0] < w[1]), "{periods:?}");

    // Its end is brought forward to two seconds from now: revoked then, by the engine.
    let soon = (Utc::now() + chrono::TimeDelta::seconds(2)).to_rfc3339();
    let (st, v) = s
        .call(
            Method::PATCH,
            &format!("/v1/instances/{id}"),
            &s.admin,
            Some(json!({"fields": {"valid_until": soon}})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let h = until(&s, id, "the revocation", |h| count(h, "transitioned") == 1).await;
    let (_, v) = s.get(&format!("/v1/instances/{id}"), &s.admin).await;
    assert_eq!(v["stage"], "revoked", "{v}");
    let elapsed = h.iter().find(|e| e["kind"] == "elapsed").expect("elapsed");
    assert_eq!(elapsed["actor"], "system");
    assert!(
        elapsed["reason"]
            .as_str()
            .is_some_and(|r| r.contains("valid_until")),
        "{elapsed}"
    );

    // Out of the stage, the step stops.
    let runs = count(&history(&s, id).await, "recurred");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(count(&history(&s, id).await, "recurred"), runs);
}
