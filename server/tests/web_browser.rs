//! The web pages in a real headless Chromium (the system's package, over WebDriver), against a
//! real server on SQLite and on PostgreSQL: an agent signs in, opens her queue, claims the next
//! ticket from the keyboard, accepts and resolves it, while a second agent's browser on the
//! same queue sees the rows change without reloading; a form posted without its CSRF token
//! changes nothing. Every page visited is saved as a screenshot under
//! `target/screenshots/<database>/`.

#[macro_use]
mod support;

use std::path::PathBuf;

use reqwest::{Method, StatusCode};
use serde_json::json;
use support::browser::{Browser, Driver};
use support::{Db, Server};

on_both!(agents_work_a_queue_live);

const PASSWORD: &str = "correct horse battery";

fn shots(db: &Db) -> PathBuf {
    let kind = match db {
        Db::Sqlite(_) => "sqlite",
        Db::Postgres { .. } => "postgres",
    };
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/screenshots")
        .join(kind)
}

async fn sign_in(b: &Browser, base: &str, user: &str) {
    b.goto(&format!("{base}/")).await;
    // Not signed in: the start page sends the browser to sign in.
    assert!(b.url().await.contains("/sign-in"), "{}", b.url().await);
    b.type_into("#user", user).await;
    b.type_into("#password", PASSWORD).await;
    b.click("button[type=submit]").await;
    b.wait_for(
        "return location.pathname === '/queues'",
        10,
        "the queues page after signing in",
    )
    .await;
}

/// A script: the holder column of the queue table's first row.
const FIRST_HOLDER: &str =
    "var c = document.querySelector('tbody tr[data-task] td:nth-child(6)'); return c && c.textContent";

async fn agents_work_a_queue_live(db: Db) {
    let dir = shots(&db);
    let s = Server::start(&db);
    for (user, roles) in [("alice", vec!["agent"]), ("bob", vec!["agent"])] {
        s.user(&s.admin, user, &roles).await;
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
    let carol = s.user(&s.admin, "carol", &["requester", "caller"]).await;
    let inc = s.incident(&carol, "Printer on fire").await;
    let id = inc["id"].as_i64().expect("id");
    // A second, less urgent ticket waits behind it.
    let (st, b) = s
        .post(
            "/v1/instances",
            &carol,
            json!({"process": "incident", "fields": {"title": "Mouse squeaks", "caller": "carol",
                "service": "desktop", "category": "hardware", "impact": "low", "urgency": "low"}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    let low = b["id"].as_i64().unwrap();
    s.post(
        &format!("/v1/instances/{low}/actions/log"),
        &carol,
        json!({}),
    )
    .await;

    let driver = Driver::start().await;
    let alice = driver.browser().await;
    let bob = driver.browser().await;

    // Alice signs in and sees her queues.
    alice.goto(&format!("{}/", s.base)).await;
    alice.screenshot(&dir, "01-sign-in").await;
    sign_in(&alice, &s.base, "alice").await;
    let queues = alice.text("main table").await;
    assert!(queues.contains("service_desk"), "{queues}");
    alice.screenshot(&dir, "02-queues").await;
    alice.click("a[href='/queues/service_desk']").await;
    alice
        .wait_for(
            "return document.querySelector('table[data-live]') !== null",
            10,
            "the queue's live stream",
        )
        .await;
    // Priority first: the P3 printer before the P5 mouse.
    let order = alice
        .eval("return Array.from(document.querySelectorAll('tbody tr[data-task] a.ticket')).map(a => a.textContent)")
        .await;
    assert_eq!(
        order,
        json!([
            format!("#{id} Printer on fire"),
            format!("#{low} Mouse squeaks")
        ])
    );
    alice.screenshot(&dir, "03-queue").await;

    // Bob watches the same queue.
    sign_in(&bob, &s.base, "bob").await;
    bob.goto(&format!("{}/queues/service_desk", s.base)).await;
    bob.wait_for(
        "return document.querySelector('table[data-live]') !== null",
        10,
        "bob's live stream",
    )
    .await;
    assert_eq!(bob.eval(FIRST_HOLDER).await, json!("—"));
    // Marks this page: a reload would lose it.
    bob.eval("window.stillThisPage = true; return true").await;

    // Alice claims the next ticket from the keyboard: the ticket page opens.
    alice.press("n").await;
    alice
        .wait_for(
            &format!("return location.pathname === '/tickets/{id}'"),
            10,
            "the claimed ticket",
        )
        .await;
    assert_eq!(alice.text("#holder").await, "alice");
    alice.screenshot(&dir, "04-ticket-claimed").await;

    // Bob's row shows her as the holder, without a reload.
    bob.wait_for(
        &FIRST_HOLDER.replace(
            "return c && c.textContent",
            "return c !== null && c.textContent === 'alice'",
        ),
        10,
        "bob's queue to show alice holding the ticket",
    )
    .await;
    assert_eq!(
        bob.eval("return window.stillThisPage === true").await,
        json!(true)
    );
    bob.screenshot(&dir, "05-queue-live-claimed").await;

    // A form whose CSRF token was taken out changes nothing.
    alice
        .eval("document.querySelector('form[action$=\"/comments\"] input[name=csrf]').remove(); return true")
        .await;
    alice.type_into("#comment", "posted without a token").await;
    alice.click("form[action$='/comments'] button").await;
    alice
        .wait_for(
            "return document.querySelector('h1') && document.querySelector('h1').textContent === 'Not allowed'",
            10,
            "the refusal",
        )
        .await;
    alice.screenshot(&dir, "06-csrf-refused").await;
    let (_, history) = s
        .get(&format!("/v1/instances/{id}/history"), &s.admin)
        .await;
    assert!(
        !history.to_string().contains("posted without a token"),
        "{history}"
    );

    // Accept, claim the new task, resolve with a resolution.
    alice.goto(&format!("{}/tickets/{id}", s.base)).await;
    alice.click("button[data-action=accept]").await;
    alice
        .wait_for(
            "return document.querySelector('#stage') && document.querySelector('#stage').textContent === 'In progress'",
            10,
            "the ticket in progress",
        )
        .await;
    alice.click("form[action$='/claim'] button").await;
    alice
        .wait_for(
            "return document.querySelector('#holder') && document.querySelector('#holder').textContent === 'alice'",
            10,
            "alice holding the ticket again",
        )
        .await;
    // Resolving without a resolution is refused by the browser's own check first; the
    // resolution goes in the action's form.
    alice
        .type_into("#f-resolve-resolution", "Replaced the fuser")
        .await;
    alice.screenshot(&dir, "07-ticket-resolving").await;
    alice.click("button[data-action=resolve]").await;
    alice
        .wait_for(
            "return document.querySelector('#stage') && document.querySelector('#stage').textContent === 'Resolved'",
            10,
            "the ticket resolved",
        )
        .await;
    alice.screenshot(&dir, "08-ticket-resolved").await;

    // Bob's queue lost the ticket, still without a reload: only the mouse is left.
    bob.wait_for(
        &format!(
            "return Array.from(document.querySelectorAll('tbody tr[data-task] a.ticket')).map(a => a.textContent).join('|') === '#{low} Mouse squeaks'"
        ),
        10,
        "bob's queue without the resolved ticket",
    )
    .await;
    assert_eq!(
        bob.eval("return window.stillThisPage === true").await,
        json!(true)
    );
    bob.screenshot(&dir, "09-queue-live-resolved").await;

    // Her account page, where passwords are changed.
    alice.goto(&format!("{}/account", s.base)).await;
    assert!(alice.text("main").await.contains("Change your password"));
    alice.screenshot(&dir, "10-account").await;

    let (_, after) = s.get(&format!("/v1/instances/{id}"), &s.admin).await;
    assert_eq!(after["stage"], "resolved");
    assert_eq!(after["fields"]["resolution"], "Replaced the fuser");
    alice.close().await;
    bob.close().await;
}
