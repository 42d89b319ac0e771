//! Accessibility: axe-core (the accessibility engine browsers' own audits use) run in headless
//! Chromium over every page, as each kind of user sees it, including the editor showing a
//! problem and the portal's form showing the engine's refusal. No serious or critical
//! violation may be found.
//!
//! axe-core cannot be downloaded by a test, so `.ci/run` fetches it from the npm registry
//! (`npm pack axe-core@4.10.2`) and sets `ITSMFLOW_AXE` to its `axe.min.js`; by hand:
//! `ITSMFLOW_AXE=/path/to/package/axe.min.js cargo test -p itsmflow --test web_a11y`.
//! It runs on SQLite only: the pages are the same on PostgreSQL.

#[macro_use]
mod support;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value as Json};
use support::browser::{Browser, Driver};
use support::{Db, Server};

const PASSWORD: &str = "correct horse battery";

async fn sign_in(b: &Browser, base: &str, user: &str) {
    b.goto(&format!("{base}/sign-in")).await;
    b.type_into("#user", user).await;
    b.type_into("#password", PASSWORD).await;
    b.click("button[type=submit]").await;
    b.wait_for(
        "return !location.pathname.startsWith('/sign-in')",
        10,
        "signed in",
    )
    .await;
}

async fn sign_out(b: &Browser) {
    b.click("form[action='/sign-out'] button").await;
    b.wait_for(
        "return location.pathname.startsWith('/sign-in')",
        10,
        "signed out",
    )
    .await;
}

/// The serious and critical violations axe finds on the page shown, as text.
async fn audit(b: &Browser, axe: &str) -> Vec<String> {
    b.eval(&format!(
        "{axe}; window.__axe = null; axe.run(document, {{resultTypes: ['violations']}}).then(r => \
         window.__axe = r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical') \
         .map(v => v.impact + ' ' + v.id + ': ' + v.help + ' at ' + v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(' | '))); \
         return true"
    ))
    .await;
    b.wait_for("return window.__axe !== null", 60, "axe's audit")
        .await;
    match b.eval("return window.__axe").await {
        Json::Array(v) => v.iter().map(|x| x.to_string()).collect(),
        other => vec![format!("no answer from axe: {other}")],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_page_has_a_serious_violation() {
    let path = std::env::var("ITSMFLOW_AXE")
        .expect("ITSMFLOW_AXE: the path of axe-core's axe.min.js (run the tests through .ci/run)");
    let axe = std::fs::read_to_string(&path).expect("axe.min.js");
    let db = Db::sqlite();
    let s = Server::start(&db);
    let rita = s.user(&s.admin, "rita", &["requester", "caller"]).await;
    let alice = s.user(&s.admin, "alice", &["agent"]).await;
    s.user(&s.admin, "pam", &["process_manager"]).await;
    for user in ["rita", "alice", "pam", "admin"] {
        let (st, b) = s
            .call(
                Method::PUT,
                &format!("/v1/users/{user}/password"),
                &s.admin,
                Some(json!({ "password": PASSWORD })),
            )
            .await;
        assert_eq!(st, StatusCode::NO_CONTENT, "{b}");
    }
    let inc = s.incident(&rita, "Printer on fire").await;
    let id = inc["id"].as_i64().expect("id");
    for action in ["accept", "ask"] {
        s.post(
            &format!("/v1/instances/{id}/actions/{action}"),
            &alice,
            json!({}),
        )
        .await;
    }
    let driver = Driver::start().await;
    let b = driver.browser().await;
    let mut found = Vec::new();
    let mut check = |page: String, v: Vec<String>| {
        for x in v {
            found.push(format!("{page}: {x}"));
        }
    };

    b.goto(&format!("{}/sign-in", s.base)).await;
    check("/sign-in".into(), audit(&b, &axe).await);
    for (user, paths) in [
        (
            "rita",
            vec![
                "/portal".to_string(),
                "/portal?q=zebra".into(),
                "/portal/new/incident".into(),
                "/portal/new/request".into(),
                "/portal/new/change".into(),
                "/portal?q=vpn".into(),
                "/portal/items/vpn_access".into(),
                "/portal/tickets".into(),
                format!("/tickets/{id}"),
                "/account".into(),
            ],
        ),
        (
            "alice",
            vec![
                "/queues".to_string(),
                "/queues/service_desk".into(),
                "/queues/service_desk?q=printer&standing=on-time&holder=nobody&sort=due".into(),
                format!("/tickets/{id}"),
            ],
        ),
        (
            "pam",
            vec![
                "/processes".to_string(),
                "/processes/incident".into(),
                "/processes/change".into(),
                "/processes/incident/migrate".into(),
                "/processes/edit".into(),
            ],
        ),
        (
            "admin",
            vec![
                "/admin".to_string(),
                "/admin/users/rita".into(),
                "/admin/tokens".into(),
                "/admin/tenants".into(),
            ],
        ),
    ] {
        sign_in(&b, &s.base, user).await;
        for p in paths {
            b.goto(&format!("{}{p}", s.base)).await;
            check(format!("{user} {p}"), audit(&b, &axe).await);
        }
        match user {
            // The engine's refusal shown at a field.
            "rita" => {
                b.goto(&format!("{}/portal/new/incident", s.base)).await;
                b.eval("document.querySelector('form.raise').noValidate = true; return true")
                    .await;
                b.click("#raise").await;
                b.wait_for(
                    "return document.getElementById('raise-error') !== null",
                    10,
                    "the refusal",
                )
                .await;
                check("rita raise refused".into(), audit(&b, &axe).await);
                // A catalogue item's refusal, at the item's required field.
                b.goto(&format!("{}/portal/items/vpn_access", s.base)).await;
                b.eval("document.querySelector('form.raise').noValidate = true; return true")
                    .await;
                b.click("#raise").await;
                b.wait_for(
                    "return document.getElementById('raise-error') !== null",
                    10,
                    "the item's refusal",
                )
                .await;
                check("rita item refused".into(), audit(&b, &axe).await);
            }
            // A saved filter, on the queue and on the queues page.
            "alice" => {
                b.goto(&format!("{}/queues/service_desk?q=printer", s.base))
                    .await;
                b.type_into("#filter-name", "Printers").await;
                b.click("#save-filter-button").await;
                b.wait_for(
                    "return document.querySelector('li[data-filter]') !== null",
                    10,
                    "the saved filter",
                )
                .await;
                check(
                    "alice queue with a saved filter".into(),
                    audit(&b, &axe).await,
                );
                b.goto(&format!("{}/queues", s.base)).await;
                check("alice saved filters".into(), audit(&b, &axe).await);
            }
            // A problem at its line; the review of a clean project.
            "pam" => {
                b.goto(&format!("{}/processes/edit", s.base)).await;
                b.eval(
                    "var a = Array.from(document.querySelectorAll('textarea.code')).find(t => t.value.includes('transition log: new -> triage')); \
                     a.value = a.value.replace('new -> triage', 'new -> triaje'); return true",
                )
                .await;
                b.click("#check").await;
                b.wait_for(
                    "return document.querySelector('li.diagnostic') !== null",
                    10,
                    "the diagnostic",
                )
                .await;
                check("pam editor with a problem".into(), audit(&b, &axe).await);
                b.goto(&format!("{}/processes/edit", s.base)).await;
                b.click("#review").await;
                b.wait_for(
                    "return document.getElementById('changes') !== null",
                    10,
                    "the review",
                )
                .await;
                check("pam review".into(), audit(&b, &axe).await);
                // The tests' results, one failing.
                b.goto(&format!("{}/processes/edit", s.base)).await;
                b.eval(
                    "var a = Array.from(document.querySelectorAll('textarea.code')).find(t => t.value.includes('expect priority P1')); \
                     a.value = a.value.replace('expect priority P1', 'expect priority P4'); return true",
                )
                .await;
                b.click("#run-tests").await;
                b.wait_for(
                    "return document.getElementById('test-results') !== null",
                    30,
                    "the tests' results",
                )
                .await;
                b.eval("document.querySelector('details.passed-tests').open = true; return true")
                    .await;
                check("pam tests run".into(), audit(&b, &axe).await);
            }
            _ => {}
        }
        sign_out(&b).await;
    }
    b.close().await;
    assert!(found.is_empty(), "{}", found.join("\n"));
}
