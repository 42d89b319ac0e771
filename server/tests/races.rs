//! Writes without a version are never refused as conflicts: two of them at the same moment on
//! one ticket (comments, field updates, a completion beside a comment) both apply, one after
//! the other, over a real socket on a SQLite file and on PostgreSQL; versioned ones still
//! conflict, and a version below 1 is refused as invalid.

#[macro_use]
mod support;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value as Json};
use support::{Db, Server};

on_both!(
    unversioned_writes_at_once_all_apply,
    versioned_writes_still_conflict
);

const PAIRS: usize = 100;

fn id(v: &Json) -> i64 {
    v["id"].as_i64().unwrap_or_else(|| panic!("no id in {v}"))
}

/// Send two requests at the same moment; both answers.
async fn together(
    s: &Server,
    a: (Method, String, &str, Json),
    b: (Method, String, &str, Json),
) -> [(StatusCode, Json); 2] {
    let (x, y) = tokio::join!(
        s.call(a.0, &a.1, a.2, Some(a.3)),
        s.call(b.0, &b.1, b.2, Some(b.3))
    );
    [x, y]
}

async fn history_kinds(s: &Server, instance: i64) -> Vec<String> {
    let (_, h) = s
        .get(&format!("/v1/instances/{instance}/history"), &s.admin)
        .await;
    h["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| e["kind"].as_str().unwrap_or("").to_string())
        .collect()
}

async fn unversioned_writes_at_once_all_apply(db: Db) {
    let s = Server::start(&db);
    let alice = s.user(&s.admin, "alice", &["agent"]).await;
    let bob = s.user(&s.admin, "bob", &["agent"]).await;
    let inc = s.incident(&alice, "Racing").await;
    let i = id(&inc);
    let path = format!("/v1/instances/{i}");
    for n in 0..PAIRS {
        // Two comments.
        let answers = together(
            &s,
            (
                Method::POST,
                format!("{path}/comments"),
                &alice,
                json!({"text": format!("a{n}")}),
            ),
            (
                Method::POST,
                format!("{path}/comments"),
                &bob,
                json!({"text": format!("b{n}")}),
            ),
        )
        .await;
        for (st, b) in &answers {
            assert_eq!(*st, StatusCode::CREATED, "pair {n}: {b}");
        }
        // A field update and a comment.
        let answers = together(
            &s,
            (
                Method::PATCH,
                path.clone(),
                &alice,
                json!({"fields": {"resolution": format!("try {n}")}}),
            ),
            (
                Method::POST,
                format!("{path}/comments"),
                &bob,
                json!({"text": format!("c{n}")}),
            ),
        )
        .await;
        for (st, b) in &answers {
            assert!(st.is_success(), "pair {n}: {st} {b}");
        }
    }
    let kinds = history_kinds(&s, i).await;
    assert_eq!(
        kinds.iter().filter(|k| *k == "commented").count(),
        3 * PAIRS,
        "every comment is there, once"
    );
    assert_eq!(
        kinds.iter().filter(|k| *k == "fields_changed").count(),
        PAIRS
    );

    // A completion and a comment on the same ticket at the same moment.
    for n in 0..PAIRS / 4 {
        let inc = s.incident(&alice, &format!("Complete me {n}")).await;
        let i = id(&inc);
        let task = inc["task"].clone();
        let (st, task) = s
            .post(&format!("/v1/tasks/{}/claim", id(&task)), &alice, json!({}))
            .await;
        assert_eq!(st, StatusCode::OK, "{task}");
        let answers = together(
            &s,
            (
                Method::POST,
                format!("/v1/tasks/{}/complete", id(&task)),
                &alice,
                json!({"token": task["token"], "action": "accept"}),
            ),
            (
                Method::POST,
                format!("/v1/instances/{i}/comments"),
                &bob,
                json!({"text": "hm"}),
            ),
        )
        .await;
        for (st, b) in &answers {
            assert!(st.is_success(), "completion pair {n}: {st} {b}");
        }
        let (_, after) = s.get(&format!("/v1/instances/{i}"), &alice).await;
        assert_eq!(after["stage"], "working", "{after}");
    }
    s.stop();
}

async fn versioned_writes_still_conflict(db: Db) {
    let s = Server::start(&db);
    let alice = s.user(&s.admin, "alice", &["agent"]).await;
    let inc = s.incident(&alice, "Versions").await;
    let i = id(&inc);
    let version = inc["version"].as_i64().expect("version");
    let path = format!("/v1/instances/{i}");
    let answers = together(
        &s,
        (
            Method::PATCH,
            path.clone(),
            &alice,
            json!({"fields": {"resolution": "one"}, "version": version}),
        ),
        (
            Method::PATCH,
            path.clone(),
            &alice,
            json!({"fields": {"resolution": "two"}, "version": version}),
        ),
    )
    .await;
    let mut statuses: Vec<u16> = answers.iter().map(|(st, _)| st.as_u16()).collect();
    statuses.sort();
    assert_eq!(statuses, [200, 409], "{answers:?}");
    let conflict = answers.iter().find(|(st, _)| *st == StatusCode::CONFLICT);
    assert_eq!(
        conflict.map(|(_, b)| b["type"].clone()),
        Some(json!("/problems/conflict"))
    );
    for bad in [-1, 0] {
        let (st, b) = s
            .call(
                Method::PATCH,
                &path,
                &alice,
                Some(json!({"fields": {"resolution": "x"}, "version": bad})),
            )
            .await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
        assert_eq!(b["type"], "/problems/invalid-request");
    }
    s.stop();
}
