//! Rules run sandboxed: an endless loop, runaway recursion, a string or an array grown without
//! end in a rule are each stopped by the sandbox's limits and answered as a failed rule (422
//! `/problems/rule-failed`), nothing changes, and the server goes on serving; over a real
//! socket on a SQLite file and on PostgreSQL.

#[macro_use]
mod support;

use reqwest::StatusCode;
use serde_json::{json, Value as Json};
use support::{Db, Server};

on_both!(runaway_rules_fail_and_the_server_goes_on);

const PROJECT: &str = r#"
role agent

process sandbox {
  fields {
    title: text required
  }

  stage open initial
  stage done final

  transition spin: open -> done by role agent
  transition recurse: open -> done by role agent
  transition grow_text: open -> done by role agent
  transition grow_list: open -> done by role agent
  transition finish: open -> done by role agent

  rule endless when transition spin {
    let n = 0;
    loop { n += 1; }
    true
  }

  rule deep when transition recurse {
    fn down(n) { down(n + 1) }
    down(0) == true
  }

  rule huge_text when transition grow_text {
    let s = "x";
    loop { s += s; }
    true
  }

  rule huge_list when transition grow_list {
    let a = [];
    loop { a.push(title); }
    true
  }
}
"#;

async fn runaway_rules_fail_and_the_server_goes_on(db: Db) {
    let s = Server::start(&db);
    let alice = s.user(&s.admin, "alice", &["agent"]).await;
    let (st, b) = s
        .post(
            "/v1/definitions",
            &s.admin,
            json!({"files": [{"name": "sandbox.itsm", "text": PROJECT}]}),
        )
        .await;
    assert!(st.is_success(), "{st} {b}");
    let (st, v) = s
        .post(
            "/v1/instances",
            &alice,
            json!({"process": "sandbox", "fields": {"title": "t"}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let id = v["id"].as_i64().expect("id");
    let version = v["version"].clone();
    for (action, rule) in [
        ("spin", "endless"),
        ("recurse", "deep"),
        ("grow_text", "huge_text"),
        ("grow_list", "huge_list"),
    ] {
        let (st, p): (StatusCode, Json) = s
            .post(
                &format!("/v1/instances/{id}/actions/{action}"),
                &alice,
                json!({}),
            )
            .await;
        // Stopped by the sandbox's limits (the request's own time limit would be a 503).
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{action}: {p}");
        assert_eq!(p["type"], "/problems/rule-failed", "{action}: {p}");
        assert_eq!(p["rule"], rule, "{action}: {p}");
        let (_, now) = s.get(&format!("/v1/instances/{id}"), &alice).await;
        assert_eq!(now["version"], version, "{action} changed nothing");
        assert_eq!(now["stage"], "open");
    }
    let (st, _) = s.get("/healthz", &alice).await;
    assert_eq!(st, StatusCode::OK);
    let (st, v) = s
        .post(
            &format!("/v1/instances/{id}/actions/finish"),
            &alice,
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["stage"], "done");
    s.stop();
}
