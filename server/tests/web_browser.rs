//! The web pages in a real headless Chromium (the system's package, over WebDriver), against a
//! real server on SQLite and on PostgreSQL: an agent signs in, opens her queue, claims the next
//! ticket from the keyboard, accepts and resolves it, while a second agent's browser on the
//! same queue sees the rows change without reloading; a form posted without its CSRF token
//! changes nothing; a requester raises a ticket in the portal, sees it in her tickets and
//! answers the agent's question there (also on a phone-sized screen); a process manager's
//! broken edit shows the diagnostic at its line as she types and publishes nothing, and the
//! fixed edit publishes; an administrator's pages. Every page visited is saved as a screenshot
//! under `target/screenshots/<database>/`.

#[macro_use]
mod support;

use std::path::PathBuf;

use reqwest::{Method, StatusCode};
use serde_json::json;
use support::browser::{Browser, Driver};
use support::{Db, Server};

on_both!(
    agents_work_a_queue_live,
    the_portal_the_editor_and_administration,
    catalogue_items_saved_filters_and_process_tests,
    a_change_manager_ticks_the_review_checklist,
    an_agent_sees_the_teams_target_and_list_fields,
);

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
    sign_in_to(b, base, user, "/queues").await;
}

/// Sign in from the start page, and wait for where the user starts (`/queues`, `/portal`).
async fn sign_in_to(b: &Browser, base: &str, user: &str, lands: &str) {
    b.goto(&format!("{base}/")).await;
    // Not signed in: the start page sends the browser to sign in.
    assert!(b.url().await.contains("/sign-in"), "{}", b.url().await);
    b.type_into("#user", user).await;
    b.type_into("#password", PASSWORD).await;
    b.click("button[type=submit]").await;
    b.wait_for(
        &format!("return location.pathname === '{lands}'"),
        10,
        "the start page after signing in",
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

async fn with_password(s: &Server, user: &str) {
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

/// A script: the stage shown for ticket `id` in the portal's list.
fn portal_stage(id: i64, stage: &str) -> String {
    format!(
        "var c = document.querySelector('li[data-ticket=\"{id}\"] dd.stage'); return c !== null && c.textContent === '{stage}'"
    )
}

/// A script that replaces text in the editor's file ending in `file` and tells the page, as
/// typing would.
fn edit(file: &str, from: &str, to: &str) -> String {
    format!(
        "var names = Array.from(document.querySelectorAll('input[name^=\"name.\"]'));
         var at = names.findIndex(n => n.value.endsWith('{file}'));
         var area = document.getElementById('text-' + at);
         area.closest('details').open = true;
         area.value = area.value.replace({from:?}, {to:?});
         area.dispatchEvent(new Event('input', {{ bubbles: true }}));
         return at"
    )
}

async fn the_portal_the_editor_and_administration(db: Db) {
    let dir = shots(&db);
    let s = Server::start(&db);
    s.user(&s.admin, "rita", &["requester"]).await;
    s.user(&s.admin, "pam", &["process_manager"]).await;
    let alice = s.user(&s.admin, "alice", &["agent"]).await;
    for user in ["rita", "pam", "admin"] {
        with_password(&s, user).await;
    }
    let driver = Driver::start().await;
    let b = driver.browser().await;

    // Rita raises an incident from the catalogue.
    sign_in_to(&b, &s.base, "rita", "/portal").await;
    assert!(b.text("main").await.contains("Service request"));
    b.screenshot(&dir, "11-portal").await;
    b.type_into("#q", "incident").await;
    b.click("form[role=search] button").await;
    b.wait_for(
        "return document.querySelectorAll('ul.catalogue li').length === 1",
        10,
        "the search's one result",
    )
    .await;
    b.click("ul.catalogue a").await;
    b.wait_for(
        "return location.pathname === '/portal/new/incident'",
        10,
        "the raise form",
    )
    .await;
    b.type_into("#field-title", "VPN drops every hour").await;
    // The service is one of the catalogue's, chosen from a list like the other enums.
    b.eval("document.getElementById('field-service').value = 'vpn'; document.getElementById('field-category').value = 'network'; document.getElementById('field-impact').value = 'medium'; return true").await;
    b.screenshot(&dir, "12-portal-raise").await;
    b.click("#raise").await;
    b.wait_for(
        "return location.pathname === '/portal/tickets'",
        10,
        "her tickets",
    )
    .await;
    let id: i64 = b
        .eval("return document.querySelector('li[data-ticket]').getAttribute('data-ticket')")
        .await
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(b
        .text("p.notice")
        .await
        .contains(&format!("#{id} is raised")));
    // What happens next: she logs it.
    b.click(&format!("li[data-ticket='{id}'] details summary"))
        .await;
    b.screenshot(&dir, "13-portal-tickets").await;
    b.click(&format!("button[data-ticket='{id}'][data-action=log]"))
        .await;
    b.wait_for(&portal_stage(id, "Triage"), 10, "the ticket in triage")
        .await;

    // The agent asks her something; she answers from her list.
    for action in ["accept", "ask"] {
        let (st, v) = s
            .post(
                &format!("/v1/instances/{id}/actions/{action}"),
                &alice,
                json!({}),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{action}: {v}");
    }
    b.goto(&format!("{}/portal/tickets", s.base)).await;
    b.wait_for(&portal_stage(id, "Awaiting caller"), 10, "her turn")
        .await;
    b.click(&format!("li[data-ticket='{id}'] details summary"))
        .await;
    b.type_into(
        &format!("#reason-{id}-answer"),
        "It drops at five past each hour",
    )
    .await;
    b.screenshot(&dir, "14-portal-answering").await;
    b.click(&format!("button[data-ticket='{id}'][data-action=answer]"))
        .await;
    b.wait_for(&portal_stage(id, "In progress"), 10, "the answer taken")
        .await;
    let (_, history) = s
        .get(&format!("/v1/instances/{id}/history"), &s.admin)
        .await;
    assert!(history
        .to_string()
        .contains("It drops at five past each hour"));

    // On a phone: nothing wider than the screen.
    b.resize(390, 844).await;
    b.goto(&format!("{}/portal/tickets", s.base)).await;
    b.wait_for(&portal_stage(id, "In progress"), 10, "the list on a phone")
        .await;
    let wide = "return document.documentElement.scrollWidth <= window.innerWidth";
    assert_eq!(b.eval(wide).await, json!(true), "no sideways scrolling");
    b.screenshot(&dir, "15-portal-phone").await;
    b.goto(&format!("{}/portal/new/request", s.base)).await;
    assert_eq!(b.eval(wide).await, json!(true), "no sideways scrolling");
    b.screenshot(&dir, "16-portal-phone-raise").await;
    b.resize(1280, 900).await;
    b.click("form[action='/sign-out'] button").await;

    // Pam's processes, a graph, and an edit: broken, then fixed.
    sign_in_to(&b, &s.base, "pam", "/queues").await;
    b.click("a[href='/processes']").await;
    b.wait_for(
        "return location.pathname === '/processes'",
        10,
        "the processes",
    )
    .await;
    b.screenshot(&dir, "17-processes").await;
    b.click("a[href='/processes/incident']").await;
    b.wait_for(
        "return document.querySelector('svg.process-graph') !== null",
        10,
        "the graph",
    )
    .await;
    b.screenshot(&dir, "18-process-graph").await;
    // A process with an approval: its outcomes are dashed lines.
    b.goto(&format!("{}/processes/change", s.base)).await;
    assert!(b.count("svg.process-graph path.edge.approval").await > 0);
    b.screenshot(&dir, "18-process-graph-change").await;
    b.goto(&format!("{}/processes/edit", s.base)).await;
    let at = b
        .eval(&edit(
            "incident.itsm",
            "transition log: new -> triage",
            "transition log: new -> triaje",
        ))
        .await;
    let at = at.as_i64().expect("the incident file");
    let line = b
        .eval(&format!(
            "return document.getElementById('text-{at}').value.split('\\n').findIndex(l => l.includes('-> triaje')) + 1"
        ))
        .await;
    // The diagnostic appears under the file, at its line, while she types.
    b.wait_for(
        &format!(
            "var d = document.querySelector('#diag-{at} li.diagnostic'); return d !== null && d.textContent.includes('line {line},') && d.textContent.includes('unknown-stage')"
        ),
        10,
        "the diagnostic at its line",
    )
    .await;
    b.eval(&format!(
        "document.querySelector('#diag-{at} a.goto').scrollIntoView({{block: 'center'}}); return true"
    ))
    .await;
    b.click(&format!("#diag-{at} a.goto")).await;
    assert_eq!(
        b.eval(&format!("return document.activeElement.id === 'text-{at}'"))
            .await,
        json!(true),
        "the link puts the cursor in the file"
    );
    b.eval(&format!(
        "document.querySelector('#diag-{at}').scrollIntoView({{block: 'end'}}); window.scrollBy(0, 80); return true"
    ))
    .await;
    b.screenshot(&dir, "19-editor-diagnostic").await;
    b.click("#review").await;
    b.wait_for(
        "return document.getElementById('editor-error') !== null",
        10,
        "the refusal",
    )
    .await;
    assert!(b
        .text("#editor-error")
        .await
        .contains("Nothing was published"));
    let (_, defs) = s.get("/v1/definitions/incident", &s.admin).await;
    assert_eq!(defs["versions"].as_array().map(Vec::len), Some(1), "{defs}");
    // Fixed, and the triage stage relabelled.
    b.eval(&edit(
        "incident.itsm",
        "transition log: new -> triaje",
        "transition log: new -> triage",
    ))
    .await;
    b.eval(&edit(
        "incident.itsm",
        "stage triage \"Triage\"",
        "stage triage \"Sorting\"",
    ))
    .await;
    b.click("#review").await;
    b.wait_for(
        "return document.getElementById('publish') !== null",
        10,
        "the review",
    )
    .await;
    assert!(b.text("#changes").await.contains("version 2"));
    b.screenshot(&dir, "20-editor-review").await;
    b.click("#publish").await;
    b.wait_for(
        "return document.getElementById('published') !== null",
        10,
        "published",
    )
    .await;
    let (_, defs) = s.get("/v1/definitions/incident", &s.admin).await;
    assert_eq!(defs["versions"].as_array().map(Vec::len), Some(2), "{defs}");
    // The live incidents move to version 2: previewed, then moved.
    b.goto(&format!("{}/processes/incident", s.base)).await;
    b.click("a[href='/processes/incident/migrate']").await;
    b.wait_for(
        "return document.querySelector('button[value=preview]') !== null",
        10,
        "the migration form",
    )
    .await;
    b.click("button[value=preview]").await;
    b.wait_for(
        "return document.getElementById('report') !== null",
        10,
        "the preview",
    )
    .await;
    assert!(b.text("#h-report").await.contains("would move"));
    b.eval("document.getElementById('h-clocks').scrollIntoView(); return true")
        .await;
    b.screenshot(&dir, "32-migration-preview").await;
    b.click("button[value=apply]").await;
    b.wait_for(
        "return (document.getElementById('h-report') || {textContent: ''}).textContent.startsWith('Moved')",
        10,
        "the move",
    )
    .await;
    b.click("form[action='/sign-out'] button").await;

    // The administrator's pages.
    sign_in_to(&b, &s.base, "admin", "/queues").await;
    b.click("a[href='/admin']").await;
    b.wait_for(
        "return location.pathname === '/admin'",
        10,
        "the admin page",
    )
    .await;
    b.screenshot(&dir, "21-admin-users").await;
    b.click("a[href='/admin/users/rita']").await;
    b.wait_for(
        "return location.pathname === '/admin/users/rita'",
        10,
        "rita's page",
    )
    .await;
    b.click("#issue-token").await;
    b.wait_for(
        "return document.getElementById('token-secret') !== null",
        10,
        "the new token",
    )
    .await;
    b.screenshot(&dir, "22-admin-user").await;
    b.goto(&format!("{}/admin/tokens", s.base)).await;
    b.screenshot(&dir, "23-admin-tokens").await;
    b.close().await;
}

/// A requester raises a catalogue item and finds it in her tickets; an agent saves a queue
/// filter and opens it from her queues; a process manager runs the tests of her edit and sees
/// the broken expectation at its line with its values.
async fn catalogue_items_saved_filters_and_process_tests(db: Db) {
    let dir = shots(&db);
    let s = Server::start(&db);
    s.user(&s.admin, "rita", &["requester"]).await;
    s.user(&s.admin, "pam", &["process_manager"]).await;
    s.user(&s.admin, "alice", &["agent"]).await;
    for user in ["rita", "pam", "alice"] {
        with_password(&s, user).await;
    }
    let carol = s.user(&s.admin, "carol", &["requester", "caller"]).await;
    for title in ["Printer on fire", "Printer jams", "Mouse squeaks"] {
        let inc = s.incident(&carol, title).await;
        assert!(inc["id"].as_i64().is_some(), "{inc}");
    }
    let driver = Driver::start().await;
    let b = driver.browser().await;

    // Rita finds VPN access among the services and requests it.
    sign_in_to(&b, &s.base, "rita", "/portal").await;
    b.type_into("#q", "vpn").await;
    b.click("form[role=search] button").await;
    b.wait_for(
        "return document.querySelectorAll('li[data-item]').length === 1",
        10,
        "the one item found",
    )
    .await;
    b.screenshot(&dir, "24-portal-services").await;
    b.click("a[href='/portal/items/vpn_access']").await;
    b.wait_for(
        "return location.pathname === '/portal/items/vpn_access'",
        10,
        "the item's form",
    )
    .await;
    assert_eq!(b.count("[name=item]").await, 0, "the item sets it");
    b.type_into("#field-justification", "I work from home on Fridays")
        .await;
    b.screenshot(&dir, "25-portal-item").await;
    b.click("#raise").await;
    b.wait_for(
        "return location.pathname === '/portal/tickets'",
        10,
        "her tickets",
    )
    .await;
    let id: i64 = b
        .eval("return document.querySelector('li[data-ticket]').getAttribute('data-ticket')")
        .await
        .as_str()
        .and_then(|v| v.parse().ok())
        .expect("a ticket");
    assert!(b
        .text("p.notice")
        .await
        .contains(&format!("#{id} is raised")));
    let card = b.text(&format!("li[data-ticket='{id}']")).await;
    assert!(card.contains("Service request"), "{card}");
    let (_, inst) = s.get(&format!("/v1/instances/{id}"), &s.admin).await;
    assert_eq!(inst["fields"]["item"], "share_access", "{inst}");
    sign_out(&b).await;

    // Alice filters her queue, saves the filter, and opens it again from her queues.
    sign_in_to(&b, &s.base, "alice", "/queues").await;
    b.goto(&format!("{}/queues/service_desk", s.base)).await;
    b.type_into("#f-q", "printer").await;
    b.eval("document.getElementById('f-sort').value = 'newest'; return true")
        .await;
    b.click("#apply-filter").await;
    b.wait_for(
        "return location.search.includes('q=printer')",
        10,
        "the filtered queue",
    )
    .await;
    let titles = "return Array.from(document.querySelectorAll('tbody tr[data-task] a.ticket')).map(a => a.textContent.replace(/^#\\d+ /, ''))";
    assert_eq!(
        b.eval(titles).await,
        json!(["Printer jams", "Printer on fire"])
    );
    b.type_into("#filter-name", "Printers").await;
    b.click("#save-filter-button").await;
    b.wait_for(
        "return document.querySelector('li[data-filter=\"Printers\"]') !== null",
        10,
        "the saved filter",
    )
    .await;
    assert!(b.text("p.notice").await.contains("Printers"));
    b.screenshot(&dir, "26-queue-filtered").await;
    b.goto(&format!("{}/queues", s.base)).await;
    b.screenshot(&dir, "27-queues-saved-filters").await;
    b.click("li[data-filter='Printers'] a").await;
    b.wait_for(
        "return location.pathname === '/queues/service_desk' && location.search.includes('q=printer')",
        10,
        "the filter opened",
    )
    .await;
    assert_eq!(
        b.eval(titles).await,
        json!(["Printer jams", "Printer on fire"])
    );
    b.goto(&format!("{}/queues", s.base)).await;
    b.click("li[data-filter='Printers'] button").await;
    b.wait_for(
        "return location.search.includes('deleted=') && document.querySelector('li[data-filter]') === null",
        10,
        "the filter deleted",
    )
    .await;
    sign_out(&b).await;

    // Pam breaks an expectation of the incident tests and runs them.
    sign_in_to(&b, &s.base, "pam", "/queues").await;
    b.goto(&format!("{}/processes/edit", s.base)).await;
    let at = b
        .eval(&edit(
            "incident.test.itsm",
            "expect priority P1",
            "expect priority P4",
        ))
        .await
        .as_i64()
        .expect("the incident tests");
    let line = b
        .eval(&format!(
            "return document.getElementById('text-{at}').value.split('\\n').findIndex(l => l.includes('expect priority P4')) + 1"
        ))
        .await;
    b.click("#run-tests").await;
    b.wait_for(
        "return document.getElementById('test-results') !== null",
        30,
        "the tests' results",
    )
    .await;
    assert!(b.text("#test-summary").await.contains(" 1 failed."));
    let failed = b.text("li.test-failed").await;
    assert!(
        failed.contains(&format!("Line {line}, column")),
        "{line}: {failed}"
    );
    assert_eq!(b.text("li.test-failed dd.expected").await, "P4");
    assert_eq!(b.text("li.test-failed dd.actual").await, "P1");
    // The edit is kept: the tests ran on the draft.
    let kept = b
        .eval(&format!(
            "return document.getElementById('text-{at}').value.includes('expect priority P4')"
        ))
        .await;
    assert_eq!(kept, json!(true));
    b.eval(
        "document.querySelector('li.test-failed').scrollIntoView({block: 'center'}); return true",
    )
    .await;
    b.screenshot(&dir, "28-editor-tests").await;
    // The step's line is a link that puts the cursor there, in its file.
    b.click("li.test-failed a.goto").await;
    assert_eq!(
        b.eval(&format!("return document.activeElement.id === 'text-{at}'"))
            .await,
        json!(true),
        "the link puts the cursor in the test's file"
    );
    b.close().await;
}

/// Sign out, and wait until it is done (the next page must not see the session).
/// A change in its post-implementation review: the change manager ticks its checklist on the
/// ticket page, in a real browser.
async fn a_change_manager_ticks_the_review_checklist(db: Db) {
    let dir = shots(&db);
    let s = Server::start(&db);
    let rita = s.user(&s.admin, "rita", &["requester"]).await;
    let mia = s.user(&s.admin, "mia", &["change_manager"]).await;
    let ivan = s.user(&s.admin, "ivan", &["implementer"]).await;
    with_password(&s, "mia").await;
    let (st, v) = s
        .post(
            "/v1/instances",
            &rita,
            json!({"process": "change", "fields": {
                "title": "Patch the mail relay", "change_type": "normal", "category": "1",
                "implementers": ["ivan"], "backout_plan": "restore the snapshot",
            }}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let id = v["id"].as_i64().expect("id");
    let steps = [
        ("actions/submit", &rita, json!({})),
        ("actions/assess", &mia, json!({})),
        ("approval/votes", &mia, json!({"decision": "approve"})),
        (
            "actions/implement",
            &ivan,
            json!({"fields": {"planned_start": "2026-12-08T20:00:00Z"}}),
        ),
        ("actions/complete", &ivan, json!({})),
    ];
    for (path, token, body) in steps {
        let (st, v) = s
            .post(&format!("/v1/instances/{id}/{path}"), token, body)
            .await;
        assert_eq!(st, StatusCode::OK, "{path}: {v}");
    }

    let driver = Driver::start().await;
    let b = driver.browser().await;
    sign_in(&b, &s.base, "mia").await;
    b.goto(&format!("{}/tickets/{id}", s.base)).await;
    assert!(b.text("#h-checklist").await.contains("Checklist"));
    b.click("ul.checklist li:first-child button").await;
    b.wait_for(
        "return document.querySelectorAll('ul.checklist .done').length === 1",
        10,
        "the first item ticked",
    )
    .await;
    b.screenshot(&dir, "29-ticket-checklist").await;
    let (_, list) = s.get(&format!("/v1/instances/{id}/checklist"), &mia).await;
    assert_eq!(list["items"][0]["done"], true, "{list}");
}

async fn sign_out(b: &Browser) {
    b.click("form[action='/sign-out'] button").await;
    b.wait_for("return location.pathname === '/sign-in'", 10, "signed out")
        .await;
}

/// A network incident with watchers and affected services, in the network team's queue, whose
/// tier agrees an OLA: the queue shows when the team's own target is due, the ticket its team
/// clock beside the service clocks, and the lists as they were raised.
async fn an_agent_sees_the_teams_target_and_list_fields(db: Db) {
    let dir = shots(&db);
    let s = Server::start(&db);
    s.user(&s.admin, "nick", &["agent", "network_engineer"])
        .await;
    with_password(&s, "nick").await;
    s.user(&s.admin, "wes", &[]).await;
    let carol = s.user(&s.admin, "carol", &["requester", "caller"]).await;
    let (st, b) = s
        .post(
            "/v1/instances",
            &carol,
            json!({"process": "incident", "fields": {"title": "Wi-Fi drops on floor 3",
                "caller": "carol", "service": "network", "category": "network.wifi",
                "impact": "high", "urgency": "low", "watchers": ["wes"],
                "affected_services": ["vpn", "email"]}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    let id = b["id"].as_i64().expect("id");
    let (st, b) = s
        .post(
            &format!("/v1/instances/{id}/actions/log"),
            &carol,
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    assert_eq!(b["queue"], "network", "{b}");

    let driver = Driver::start().await;
    let nick = driver.browser().await;
    sign_in(&nick, &s.base, "nick").await;
    nick.goto(&format!("{}/queues/network?sort=ola", s.base))
        .await;
    let row = nick.text("tbody tr[data-task]").await;
    assert!(row.contains("OLA due"), "{row}");
    nick.screenshot(&dir, "30-queue-ola").await;
    nick.goto(&format!("{}/tickets/{id}", s.base)).await;
    let page = nick.text("main").await;
    assert!(page.contains("OLA network"), "{page}");
    assert!(page.contains("vpn, email"), "{page}");
    assert!(page.contains("wes"), "{page}");
    nick.screenshot(&dir, "31-ticket-ola-lists").await;
    nick.close().await;
}
