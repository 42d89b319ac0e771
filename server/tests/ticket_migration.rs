//! Moving live tickets to a new version of their process through a running server, over a
//! real socket, on SQLite and PostgreSQL: a plan that leaves a stage unmapped is refused with
//! every problem named and nothing changes; the preview lists every live ticket before and
//! after; applying moves them (an agent's claim on a task whose stage and queue stay is kept);
//! the ticket then goes on under the new version, claimed from its new queue and completed.
//! Then the same through the command line, on the server's database: dry run, refusal, apply.

mod support;

use std::process::Command;

use reqwest::StatusCode;
use serde_json::{json, Value as Json};
use support::{Db, Server};

const V1: &str = r#"
role agent

queue desk {
  members agent
}

queue experts {
  members agent
}

process ticket {
  fields {
    title: text required
    impact: enum(high, low) required
  }

  priorities P1, P2

  priority from impact {
    high => P1
    low => P2
  }

  targets on 24x7 {
    P1: resolve 4h
    P2: resolve 8h
  }

  stage new initial {
    queue desk
  }
  stage triage {
    queue desk
  }
  stage working {
    queue desk
  }
  stage closed final

  transition sort: new -> triage by role agent
  transition take: new, triage -> working by role agent
  transition close: working -> closed by role agent
}
"#;

/// No triage; work is done by the experts; a category with a default.
const V2: &str = r#"
role agent

queue desk {
  members agent
}

queue experts {
  members agent
}

process ticket {
  fields {
    title: text required
    impact: enum(high, low) required
    category: enum(general, network) required default general
  }

  priorities P1, P2

  priority from impact {
    high => P1
    low => P2
  }

  targets on 24x7 {
    P1: resolve 4h
    P2: resolve 8h
  }

  stage new initial {
    queue desk
  }
  stage in_progress {
    queue experts
  }
  stage closed final

  transition take: new -> in_progress by role agent
  transition close: in_progress -> closed by role agent
}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite() {
    over_http(Db::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres() {
    over_http(Db::postgres().await).await;
}

async fn raise(s: &Server, token: &str, title: &str, then: &[&str]) -> i64 {
    let (st, b) = s
        .post(
            "/v1/instances",
            token,
            json!({"process": "ticket", "fields": {"title": title, "impact": "low"}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    let id = b["id"].as_i64().expect("id");
    for action in then {
        let (st, b) = s
            .post(
                &format!("/v1/instances/{id}/actions/{action}"),
                token,
                json!({}),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{action}: {b}");
    }
    id
}

async fn over_http(db: Db) {
    let s = Server::start(&db);
    let root = s.ops_tenant("ops.itsm", V1).await;
    let ann = s.user(&root, "ann", &["agent"]).await;
    let pat = s.user(&root, "pat", &["process_manager"]).await;

    let fresh = raise(&s, &ann, "fresh", &[]).await;
    let sorted = raise(&s, &ann, "sorted", &["sort"]).await;
    let worked = raise(&s, &ann, "worked", &["take"]).await;
    // Ann holds the fresh ticket's task: its stage and queue are the same in version 2.
    let (st, claim) = s.post("/v1/queues/desk/claim", &ann, json!({})).await;
    assert_eq!(st, StatusCode::OK, "{claim}");
    let claimed = claim["id"].as_i64().expect("task");
    assert_eq!(claim["instance"], fresh, "{claim}");
    s.publish(&root, "ops.itsm", V2).await;

    let unmapped = json!({"process": "ticket", "from": 1});
    let (st, refused) = s.post("/v1/migrations", &ann, unmapped.clone()).await;
    assert_eq!(
        st,
        StatusCode::FORBIDDEN,
        "agents do not migrate: {refused}"
    );
    let before = s.get(&format!("/v1/instances/{sorted}"), &ann).await.1;
    let (st, refused) = s.post("/v1/migrations", &pat, unmapped).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(refused["type"], "/problems/migration-refused", "{refused}");
    let codes: Vec<&str> = refused["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .filter_map(|p| p["code"].as_str())
        .collect();
    assert_eq!(codes, ["unmapped-stage", "unmapped-stage"], "{refused}");
    assert!(
        refused["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("nothing was changed"),
        "{refused}"
    );
    let after = s.get(&format!("/v1/instances/{sorted}"), &ann).await.1;
    assert_eq!(before, after, "a refused plan changes nothing");

    let plan = json!({
        "process": "ticket",
        "from": 1,
        "to": 2,
        "stages": {"triage": "in_progress", "working": "in_progress"},
        "clocks": {"resolve": "keep"},
    });
    let (st, preview) = s.post("/v1/migrations/preview", &pat, plan.clone()).await;
    assert_eq!(st, StatusCode::OK, "{preview}");
    assert_eq!(preview["dry_run"], true);
    assert_eq!(preview["migrated"], 0);
    let listed: Vec<i64> = preview["tickets"]
        .as_array()
        .expect("tickets")
        .iter()
        .filter_map(|t| t["instance"].as_i64())
        .collect();
    assert_eq!(listed, [fresh, sorted, worked], "{preview}");
    let t = &preview["tickets"][1];
    assert_eq!(t["before"]["stage"], "triage", "{t}");
    assert_eq!(t["before"]["version"], 1);
    assert_eq!(t["after"]["stage"], "in_progress");
    assert_eq!(t["after"]["queue"], "experts");
    assert_eq!(t["after"]["version"], 2);
    assert_eq!(t["after"]["clocks"][0]["clock"], "resolve", "{t}");
    assert!(t["after"]["clocks"][0]["remaining_seconds"]
        .as_i64()
        .is_some_and(|s| s > 7 * 3600));
    let unchanged = s.get(&format!("/v1/instances/{sorted}"), &ann).await.1;
    assert_eq!(before, unchanged, "a preview writes nothing");

    let (st, done) = s.post("/v1/migrations", &pat, plan.clone()).await;
    assert_eq!(st, StatusCode::OK, "{done}");
    assert_eq!(done["migrated"], 3, "{done}");
    assert_eq!(done["dry_run"], false);

    let (_, moved) = s.get(&format!("/v1/instances/{sorted}"), &ann).await;
    assert_eq!(moved["stage"], "in_progress", "{moved}");
    assert_eq!(moved["fields"]["category"], "general", "{moved}");
    assert_eq!(moved["task"]["queue"], "experts", "{moved}");
    let (_, history) = s
        .get(&format!("/v1/instances/{sorted}/history"), &ann)
        .await;
    let items = history["items"]
        .as_array()
        .or(history.as_array())
        .expect("history");
    let last = items.last().expect("an event");
    assert_eq!(last["kind"], "migrated", "{history}");
    assert_eq!(last["actor"], "pat");
    assert_eq!(last["data"]["from_stage"], "triage");
    assert!(
        items
            .iter()
            .any(|e| e["kind"] == "transitioned" && e["data"]["to"] == "triage"),
        "the history before reads as it was: {history}"
    );

    // The ticket's page says where it moved, and from which version.
    let (st, b) = s
        .call(
            reqwest::Method::PUT,
            "/v1/users/ann/password",
            &root,
            Some(json!({"password": "correct horse battery"})),
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{b}");
    let mut web =
        support::web::WebClient::signed_in(&s.base, "ops", "ann", "correct horse battery").await;
    let page = web.get(&format!("/tickets/{sorted}")).await;
    assert!(
        page.body.contains(
            "moved to in_progress (was in triage) — migrated from version 1 to version 2"
        ),
        "{}",
        page.body
    );

    // The claim on the fresh ticket's task is still Ann's: she completes it under version 2.
    let (st, task) = s.get(&format!("/v1/tasks/{claimed}"), &ann).await;
    assert_eq!(st, StatusCode::OK, "{task}");
    assert_eq!(task["state"], "claimed", "{task}");
    let (st, took) = s
        .post(
            &format!("/v1/tasks/{claimed}/complete"),
            &ann,
            json!({"token": claim["token"], "action": "take"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{took}");
    assert_eq!(took["stage"], "in_progress");

    // The moved ones are worked from the experts' queue, to the end.
    for _ in 0..3 {
        let (st, next) = s.post("/v1/queues/experts/claim", &ann, json!({})).await;
        assert_eq!(st, StatusCode::OK, "{next}");
        let (st, closed) = s
            .post(
                &format!("/v1/tasks/{}/complete", next["id"]),
                &ann,
                json!({"token": next["token"], "action": "close"}),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{closed}");
        assert_eq!(closed["stage"], "closed");
    }
    let (st, again) = s.post("/v1/migrations", &pat, plan).await;
    assert_eq!(st, StatusCode::OK, "{again}");
    assert_eq!(
        again["migrated"], 0,
        "nothing is left on version 1: {again}"
    );
    drop(s);
    drop(db);
}

fn itsmflow(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_itsmflow"))
        .args(args)
        .output()
        .expect("run itsmflow")
}

/// The command line on a stopped server's SQLite database: a refused plan exits 1 and says
/// why; a dry run lists the move and changes nothing; `--apply` moves the ticket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_line() {
    let db = Db::sqlite();
    let s = Server::start(&db);
    let root = s.ops_tenant("ops.itsm", V1).await;
    let ann = s.user(&root, "ann", &["agent"]).await;
    let id = raise(&s, &ann, "worked", &["take"]).await;
    s.publish(&root, "ops.itsm", V2).await;
    s.stop();

    let dir = tempfile::tempdir().expect("dir");
    let write = |name: &str, plan: Json| {
        let path = dir.path().join(name);
        std::fs::write(&path, plan.to_string()).expect("write plan");
        path.display().to_string()
    };
    let url = db.url();
    let unmapped = write("unmapped.json", json!({"process": "ticket", "from": 1}));
    let out = itsmflow(&["migrate", &unmapped, "--database", &url, "--tenant", "ops"]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains(
            "[unmapped-stage] 1 ticket in stage `working`, which version 2 does not have"
        ),
        "{said}"
    );

    let plan = write(
        "plan.json",
        json!({"process": "ticket", "from": 1, "stages": {"working": "in_progress"}}),
    );
    let out = itsmflow(&["migrate", &plan, "--database", &url, "--tenant", "ops"]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(
        said.contains("ticket version 1 to version 2: would move 1 live ticket"),
        "{said}"
    );
    // Under a minute has passed since the ticket was raised: 8h 0m or 7h 59m of the 8h are
    // left, the same before and after (the clock keeps its time).
    let line = said
        .lines()
        .find(|l| l.contains(&format!("#{id}:")))
        .unwrap_or_else(|| panic!("no line for #{id}: {said}"));
    let (before, after) = line.split_once(" -> ").expect("before -> after");
    let left = ["8h 0m left", "7h 59m left"]
        .into_iter()
        .find(|left| before.ends_with(&format!("working (desk, P2; resolve {left})")))
        .unwrap_or_else(|| panic!("{line}"));
    assert_eq!(
        after,
        format!("in_progress (experts, P2; resolve {left})"),
        "{line}"
    );
    assert!(said.contains("dry run: nothing was changed"), "{said}");

    let out = itsmflow(&[
        "migrate",
        &plan,
        "--database",
        &url,
        "--tenant",
        "ops",
        "--apply",
        "--as",
        "pat",
        "--format",
        "json",
    ]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{said}");
    let report: Json = serde_json::from_str(&said).expect("json report");
    assert_eq!(report["migrated"], 1, "{report}");

    let s = Server::start(&db);
    let (st, ops) = s.get("/v1/me", &ann).await;
    assert_eq!(st, StatusCode::OK, "{ops}");
    let (_, moved) = s.get(&format!("/v1/instances/{id}"), &ann).await;
    assert_eq!(moved["stage"], "in_progress", "{moved}");
    drop(s);
    drop(db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_page_sqlite() {
    on_the_web_page(Db::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_page_postgres() {
    on_the_web_page(Db::postgres().await).await;
}

/// A process manager on the web page: the form starts from the defaults (each stage to its
/// namesake, unmapped where there is none); a preview leaving a stage unmapped is refused with
/// the API's problems and changes nothing; a form without its security token is refused; the
/// mapped preview lists every ticket; moving them moves them.
async fn on_the_web_page(db: Db) {
    use support::web::WebClient;
    let s = Server::start(&db);
    let root = s.ops_tenant("ops.itsm", V1).await;
    let ann = s.user(&root, "ann", &["agent"]).await;
    s.user(&root, "pat", &["process_manager"]).await;
    let (st, b) = s
        .call(
            reqwest::Method::PUT,
            "/v1/users/pat/password",
            &root,
            Some(json!({"password": "correct horse battery"})),
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{b}");
    let sorted = raise(&s, &ann, "sorted", &["sort"]).await;
    let worked = raise(&s, &ann, "worked", &["take"]).await;
    s.publish(&root, "ops.itsm", V2).await;

    let mut pat = WebClient::signed_in(&s.base, "ops", "pat", "correct horse battery").await;
    let process = pat.get("/processes/ticket").await;
    assert!(
        process.body.contains(r#"href="/processes/ticket/migrate""#),
        "{}",
        process.body
    );
    let form = pat.get("/processes/ticket/migrate").await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    assert!(
        form.body.contains("Move live tickets of ticket"),
        "{}",
        form.body
    );
    assert!(
        form.body
            .contains(r#"<option value="" selected>(not mapped)</option>"#),
        "triage and working have no namesake: {}",
        form.body
    );
    assert!(
        form.body
            .contains(r#"<option value="new" selected>new</option>"#),
        "{}",
        form.body
    );
    let csrf = form.csrf();
    let before = s.get(&format!("/v1/instances/{sorted}"), &ann).await.1;

    let refused = pat
        .post(
            "/processes/ticket/migrate",
            &[("csrf", &csrf), ("from", "1"), ("to", "2"), ("do", "apply")],
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    assert!(
        refused.body.contains("Migration plan refused"),
        "{}",
        refused.body
    );
    assert!(
        refused
            .body
            .contains("1 ticket in stage `triage`, which version 2 does not have"),
        "{}",
        refused.body
    );
    assert_eq!(
        s.get(&format!("/v1/instances/{sorted}"), &ann).await.1,
        before
    );

    let mapped = [
        ("from", "1"),
        ("to", "2"),
        ("stage.new", "new"),
        ("stage.triage", "in_progress"),
        ("stage.working", "in_progress"),
        ("clock.resolve", "keep"),
    ];
    let forged = pat
        .post(
            "/processes/ticket/migrate",
            &[&mapped[..], &[("do", "apply")]].concat(),
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.body);
    assert_eq!(
        s.get(&format!("/v1/instances/{sorted}"), &ann).await.1,
        before
    );

    let with = |action: &'static str| {
        let mut form: Vec<(&str, &str)> = vec![("csrf", csrf.as_str()), ("do", action)];
        form.extend_from_slice(&mapped);
        form
    };
    let preview = pat
        .post("/processes/ticket/migrate", &with("preview"))
        .await;
    assert_eq!(preview.status, StatusCode::OK, "{}", preview.body);
    assert!(
        preview.body.contains("Preview: 2 live tickets would move"),
        "{}",
        preview.body
    );
    assert!(
        preview
            .body
            .contains(&format!(r#"href="/tickets/{worked}""#)),
        "{}",
        preview.body
    );
    assert!(
        preview
            .body
            .contains("<strong>in_progress</strong> · experts · P2"),
        "{}",
        preview.body
    );
    assert_eq!(
        s.get(&format!("/v1/instances/{sorted}"), &ann).await.1,
        before
    );

    let moved = pat.post("/processes/ticket/migrate", &with("apply")).await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.body);
    assert!(moved.body.contains("Moved 2 tickets"), "{}", moved.body);
    for id in [sorted, worked] {
        let (_, t) = s.get(&format!("/v1/instances/{id}"), &ann).await;
        assert_eq!(t["stage"], "in_progress", "{t}");
    }

    // Agents do not get the page.
    s.call(
        reqwest::Method::PUT,
        "/v1/users/ann/password",
        &root,
        Some(json!({"password": "correct horse battery"})),
    )
    .await;
    let mut agent = WebClient::signed_in(&s.base, "ops", "ann", "correct horse battery").await;
    let page = agent.get("/processes/ticket/migrate").await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
    drop(s);
    drop(db);
}
