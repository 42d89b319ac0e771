//! The agents' pages over a real socket, on SQLite and PostgreSQL: tenant isolation (a user of
//! another tenant, or a requester, sees nothing of a ticket and cannot act on it), CSRF refusals
//! on ticket forms that leave the ticket exactly as it was, refusals shown with the API's words,
//! and the queue's event stream opened by the session.

#[macro_use]
mod support;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value as Json};
use support::web::WebClient;
use support::{Db, Server};

on_both!(
    other_tenants_and_requesters_see_nothing,
    ticket_forms_need_their_token,
    refusals_are_the_apis,
    the_queue_stream_follows_the_session,
    an_approver_votes_on_the_page,
    a_requester_raises_and_follows_in_the_portal,
    processes_are_for_those_who_publish,
    a_broken_edit_shows_its_line_and_publishes_nothing,
    administrators_manage_users_tokens_and_tenants,
    a_requester_raises_a_catalogue_item,
    agents_save_their_queue_filters,
    the_editor_runs_the_drafts_tests,
    lists_are_chosen_and_typed_on_the_forms,
    team_targets_show_on_the_ticket_and_the_queue,
);

const PASSWORD: &str = "correct horse battery";

async fn with_password(s: &Server, token: &str, user: &str) {
    let (st, b) = s
        .call(
            Method::PUT,
            &format!("/v1/users/{user}/password"),
            token,
            Some(json!({ "password": PASSWORD })),
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{b}");
}

/// An agent with a password, and a requester who raised a logged incident; returns the
/// incident and the requester's token.
async fn setup(s: &Server) -> (i64, String) {
    s.user(&s.admin, "alice", &["agent"]).await;
    with_password(s, &s.admin, "alice").await;
    let carol = s.user(&s.admin, "carol", &["requester", "caller"]).await;
    let inc = s.incident(&carol, "Printer on fire").await;
    (inc["id"].as_i64().expect("id"), carol)
}

/// What must not change when a form is refused.
async fn state(s: &Server, id: i64) -> (Json, Json) {
    let (st, inst) = s.get(&format!("/v1/instances/{id}"), &s.admin).await;
    assert_eq!(st, StatusCode::OK);
    let (_, history) = s
        .get(&format!("/v1/instances/{id}/history"), &s.admin)
        .await;
    (inst, history)
}

async fn other_tenants_and_requesters_see_nothing(db: Db) {
    let s = Server::start(&db);
    let (id, _) = setup(&s).await;
    let before = state(&s, id).await;

    // Another tenant's agent.
    let (st, acme) = s
        .post(
            "/v1/tenants",
            &s.admin,
            json!({"name": "acme", "admin": "ann"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{acme}");
    let ann = acme["secret"].as_str().unwrap().to_string();
    s.user(&ann, "andy", &["agent"]).await;
    with_password(&s, &ann, "andy").await;
    // With two tenants the sign-in form asks which.
    let mut c = WebClient::new(&s.base);
    assert!(c.get("/sign-in").await.body.contains("id=\"tenant\""));
    // The same name and password in the default tenant is nobody there.
    assert_eq!(
        c.sign_in_as("default", "andy", PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
    let mut andy = WebClient::signed_in(&s.base, "acme", "andy", PASSWORD).await;
    let page = andy.get(&format!("/tickets/{id}")).await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    let mine = andy.get("/portal/tickets").await;
    assert!(!mine.body.contains("Printer on fire"), "{}", mine.body);
    assert!(!page.body.contains("Printer on fire"));
    let queue = andy.get("/queues/service_desk").await;
    assert_eq!(queue.status, StatusCode::OK);
    assert!(!queue.body.contains("Printer on fire"), "{}", queue.body);
    assert!(queue.body.contains("Nothing to do in this queue."));
    let rows = andy.get("/queues/service_desk/rows").await;
    assert!(!rows.body.contains("Printer on fire"));
    let token = queue.csrf();
    for (path, form) in [
        (
            format!("/tickets/{id}/comments"),
            vec![("text", "from acme")],
        ),
        (format!("/tickets/{id}/actions/accept"), vec![]),
        (format!("/tickets/{id}/claim"), vec![("task", "1")]),
    ] {
        let mut form = form;
        form.push(("csrf", &token));
        let r = andy.post(&path, &form).await;
        assert!(
            r.status == StatusCode::NOT_FOUND,
            "{path}: {} {}",
            r.status,
            r.body
        );
    }
    // Acme's claim-next takes nothing of ours.
    let claimed = andy
        .post("/queues/service_desk/claim", &[("csrf", &token)])
        .await;
    assert_eq!(claimed.status, StatusCode::OK);
    assert!(claimed.body.contains("There is no task to take"));
    assert_eq!(state(&s, id).await, before, "nothing changed");

    // A requester of the same tenant who did not raise it: no ticket, no queues.
    s.user(&s.admin, "rita", &["requester"]).await;
    with_password(&s, &s.admin, "rita").await;
    let mut rita = WebClient::signed_in(&s.base, "default", "rita", PASSWORD).await;
    assert_eq!(
        rita.get(&format!("/tickets/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
    let queues = rita.get("/queues").await;
    assert_eq!(queues.status, StatusCode::FORBIDDEN);
    assert_eq!(
        rita.get("/queues/service_desk").await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        rita.get("/queues/service_desk/events").await.status,
        StatusCode::FORBIDDEN
    );
    let home = rita.get("/").await;
    assert_eq!(home.location(), Some("/portal"));
    let mine = rita.get("/portal/tickets").await;
    assert_eq!(mine.status, StatusCode::OK);
    assert!(mine.body.contains("You have raised no tickets."));
    assert!(!mine.body.contains("Printer on fire"));

    // The caller who raised it sees it, with only what she may do offered: in triage the
    // actions are the agents', and she works no queue, so she is offered no claim.
    with_password(&s, &s.admin, "carol").await;
    let mut carol = WebClient::signed_in(&s.base, "default", "carol", PASSWORD).await;
    let queues = carol.get("/queues").await;
    assert!(queues.body.contains("None of your roles works a queue."));
    let page = carol.get(&format!("/tickets/{id}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Nothing you may do in this stage."));
    assert!(!page.body.contains("data-action="), "{}", page.body);
    assert!(!page.body.contains(&format!("/tickets/{id}/claim")));
    assert_eq!(state(&s, id).await, before, "nothing changed");
}

async fn ticket_forms_need_their_token(db: Db) {
    let s = Server::start(&db);
    let (id, _) = setup(&s).await;
    let mut alice = WebClient::signed_in(&s.base, "default", "alice", PASSWORD).await;
    let page = alice.get(&format!("/tickets/{id}")).await;
    assert_eq!(page.status, StatusCode::OK);
    let token = page.csrf();
    let version = support::web::hidden(&page.body, "version").expect("version field");
    let before = state(&s, id).await;

    for csrf in [None, Some("itsm_0000"), Some("")] {
        let mut form = vec![("version", version.as_str())];
        if let Some(t) = csrf {
            form.push(("csrf", t));
        }
        for path in [
            format!("/tickets/{id}/actions/accept"),
            format!("/tickets/{id}/comments"),
            format!("/tickets/{id}/claim"),
            "/queues/service_desk/claim".to_string(),
        ] {
            let mut form = form.clone();
            form.push(("text", "forged"));
            form.push(("task", "1"));
            let r = alice.post(&path, &form).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{path} {csrf:?}");
        }
    }
    assert_eq!(
        state(&s, id).await,
        before,
        "the ticket is exactly as it was"
    );
    let (_, task) = s.get("/v1/queues/service_desk/tasks", &s.admin).await;
    assert_eq!(task["items"][0]["state"], "open", "{task}");

    // With the token it works (the same form, posted by the page).
    let r = alice
        .post(
            &format!("/tickets/{id}/actions/accept"),
            &[("csrf", &token), ("version", &version)],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let (inst, _) = state(&s, id).await;
    assert_eq!(inst["stage"], "working");
}

async fn refusals_are_the_apis(db: Db) {
    let s = Server::start(&db);
    let (id, carol) = setup(&s).await;
    let mut alice = WebClient::signed_in(&s.base, "default", "alice", PASSWORD).await;
    let page = alice.get(&format!("/tickets/{id}")).await;
    let token = page.csrf();
    let version = support::web::hidden(&page.body, "version").unwrap();
    // Someone changes the ticket after the page was shown: the page's version is stale.
    let (st, _) = s
        .post(
            &format!("/v1/instances/{id}/comments"),
            &carol,
            json!({"text": "any news?"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let before = state(&s, id).await;
    let stale = alice
        .post(
            &format!("/tickets/{id}/actions/accept"),
            &[("csrf", &token), ("version", &version)],
        )
        .await;
    assert_eq!(stale.status, StatusCode::CONFLICT, "{}", stale.body);
    assert!(
        stale.body.contains("changed by someone else"),
        "{}",
        stale.body
    );
    assert_eq!(state(&s, id).await, before);

    // Resolving is not possible in triage: the API's refusal, with its status.
    let page = alice.get(&format!("/tickets/{id}")).await;
    let version = support::web::hidden(&page.body, "version").unwrap();
    assert!(
        !page.body.contains("data-action=\"resolve\""),
        "not offered in triage"
    );
    let r = alice
        .post(
            &format!("/tickets/{id}/actions/resolve"),
            &[("csrf", &token), ("version", &version), ("resolution", "x")],
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(
        r.body.contains("Action not possible in this stage"),
        "{}",
        r.body
    );
    // Accept, then resolve without a resolution: 422, missing fields.
    let r = alice
        .post(
            &format!("/tickets/{id}/actions/accept"),
            &[("csrf", &token), ("version", &version)],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let page = alice.get(&format!("/tickets/{id}")).await;
    assert!(page.body.contains("data-action=\"resolve\""));
    let version = support::web::hidden(&page.body, "version").unwrap();
    let before = state(&s, id).await;
    let r = alice
        .post(
            &format!("/tickets/{id}/actions/resolve"),
            &[
                ("csrf", &token),
                ("version", &version),
                ("resolution", "  "),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(r.body.contains("Required fields missing"), "{}", r.body);
    assert_eq!(state(&s, id).await, before);
    // An empty comment is refused as the API refuses it.
    let r = alice
        .post(
            &format!("/tickets/{id}/comments"),
            &[("csrf", &token), ("text", " ")],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("`text` is empty"));
    // A comment is in the history.
    let r = alice
        .post(
            &format!("/tickets/{id}/comments"),
            &[("csrf", &token), ("text", "On my way <b>now</b>")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let page = alice.get(&format!("/tickets/{id}")).await;
    assert!(
        page.body.contains("On my way &lt;b&gt;now&lt;/b&gt;"),
        "escaped"
    );

    // Related tickets, both ways.
    let other = s.incident(&carol, "Printer still smoking").await;
    let other = other["id"].as_i64().unwrap();
    let (st, b) = s
        .post(
            &format!("/v1/instances/{other}/links"),
            &s.admin,
            json!({"to": id, "kind": "parent"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    // Each side reads the link as its process names it.
    let page = alice.get(&format!("/tickets/{id}")).await;
    assert!(
        page.body.contains(&format!(
            "children <a href=\"/tickets/{other}\">#{other}</a>"
        )),
        "{}",
        page.body
    );
    let page = alice.get(&format!("/tickets/{other}")).await;
    assert!(page
        .body
        .contains(&format!("parent <a href=\"/tickets/{id}\">#{id}</a>")));
}

async fn the_queue_stream_follows_the_session(db: Db) {
    let s = Server::start(&db);
    setup(&s).await;
    let alice = WebClient::signed_in(&s.base, "default", "alice", PASSWORD).await;
    let cookie = alice
        .cookies
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ");
    let resp = s
        .http
        .get(format!("{}/queues/service_desk/events", s.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    drop(resp);
    // Without a session: to the sign-in page. And the API's stream never takes a cookie.
    let mut anon = WebClient::new(&s.base);
    let r = anon.get("/queues/service_desk/events").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let api = s
        .http
        .get(format!("{}/v1/queues/service_desk/events", s.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), StatusCode::UNAUTHORIZED);
    let unknown = s
        .http
        .get(format!("{}/queues/nowhere/events", s.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
}

/// A change waiting for the change manager's approval: her ticket page offers the vote, the
/// vote goes through the API's own vote, and the change moves on.
async fn an_approver_votes_on_the_page(db: Db) {
    let s = Server::start(&db);
    let rita = s.user(&s.admin, "rita", &["requester"]).await;
    let mia = s.user(&s.admin, "mia", &["change_manager"]).await;
    let ivan = s.user(&s.admin, "ivan", &["implementer"]).await;
    with_password(&s, &s.admin, "mia").await;
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
    let id = v["id"].as_i64().unwrap();
    for (action, token) in [("submit", &rita), ("assess", &mia)] {
        let (st, v) = s
            .post(
                &format!("/v1/instances/{id}/actions/{action}"),
                token,
                json!({}),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{action}: {v}");
    }
    let (_, approval) = s.get(&format!("/v1/instances/{id}/approval"), &mia).await;
    assert_eq!(approval["waiting_for"], json!(["mia"]), "{approval}");
    let stage_before = state(&s, id).await.0["stage"].clone();

    let mut web = WebClient::signed_in(&s.base, "default", "mia", PASSWORD).await;
    let page = web.get(&format!("/tickets/{id}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Waiting for mia."), "{}", page.body);
    assert!(page.body.contains("value=\"approve\""));
    let token = page.csrf();
    let level = support::web::hidden(&page.body, "level").expect("level");
    // Without the token: refused, no vote counted.
    let r = web
        .post(
            &format!("/tickets/{id}/votes"),
            &[("decision", "approve"), ("level", &level)],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let (_, still) = s.get(&format!("/v1/instances/{id}/approval"), &mia).await;
    assert_eq!(still["waiting_for"], json!(["mia"]));
    let r = web
        .post(
            &format!("/tickets/{id}/votes"),
            &[
                ("csrf", &token),
                ("decision", "approve"),
                ("level", &level),
                ("comment", "fine by me"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let (after, history) = state(&s, id).await;
    assert_ne!(
        after["stage"], stage_before,
        "the approval decided: {after}"
    );
    assert!(history.to_string().contains("fine by me"));
    let page = web.get(&format!("/tickets/{id}")).await;
    assert!(
        page.body.contains("voted approve (level 1)"),
        "{}",
        page.body
    );

    // Implemented and completed, the change is in its post-implementation review: the page
    // shows the review's checklist, and the change manager ticks it there.
    for (action, body) in [
        (
            "implement",
            json!({"fields": {"planned_start": "2026-12-08T20:00:00Z"}}),
        ),
        ("complete", json!({})),
    ] {
        let (st, v) = s
            .post(&format!("/v1/instances/{id}/actions/{action}"), &ivan, body)
            .await;
        assert_eq!(st, StatusCode::OK, "{action}: {v}");
    }
    let page = web.get(&format!("/tickets/{id}")).await;
    assert!(page.body.contains("id=\"h-checklist\""), "{}", page.body);
    assert!(page.body.contains("Objectives met, or why not recorded"));
    assert!(page.body.contains("aria-label=\"not ticked\""));
    let token = page.csrf();
    let version = support::web::hidden(&page.body, "version").expect("version");
    // Without the token: refused, nothing ticked.
    let r = web
        .post(
            &format!("/tickets/{id}/checklist/objectives"),
            &[("done", "true"), ("version", &version)],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = web
        .post(
            &format!("/tickets/{id}/checklist/objectives"),
            &[("csrf", &token), ("done", "true"), ("version", &version)],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let (_, list) = s.get(&format!("/v1/instances/{id}/checklist"), &mia).await;
    assert_eq!(list["items"][0]["done"], true, "{list}");
    assert_eq!(list["items"][1]["done"], false, "{list}");
    let page = web.get(&format!("/tickets/{id}")).await;
    assert!(page.body.contains("aria-label=\"ticked\""), "{}", page.body);
    assert!(page.body.contains("ticked objectives"), "{}", page.body);
    // Closing while items are unticked is refused on the page in the API's words.
    let close_version = support::web::hidden(&page.body, "version").expect("version");
    let r = web
        .post(
            &format!("/tickets/{id}/actions/close"),
            &[("csrf", &page.csrf()), ("version", &close_version)],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(
        r.body.contains("side_effects, backout not ticked"),
        "{}",
        r.body
    );
}

/// The number of instances the tenant holds (as the administrator's API lists them).
async fn instances(s: &Server) -> usize {
    let (st, list) = s.get("/v1/instances?limit=500", &s.admin).await;
    assert_eq!(st, StatusCode::OK, "{list}");
    list["items"].as_array().map_or(0, Vec::len)
}

/// A requester finds the incident form in the catalogue, raises a ticket through it (the
/// API's create: a missing required field is its message at that field, and nothing is
/// raised), sees it in her tickets with what happens next, logs it, and answers the agent's
/// question from the list.
async fn a_requester_raises_and_follows_in_the_portal(db: Db) {
    let s = Server::start(&db);
    s.user(&s.admin, "rita", &["requester"]).await;
    with_password(&s, &s.admin, "rita").await;
    let alice = s.user(&s.admin, "alice", &["agent"]).await;
    let mut rita = WebClient::signed_in(&s.base, "default", "rita", PASSWORD).await;

    // The catalogue, and its search.
    let all = rita.get("/portal").await;
    assert_eq!(all.status, StatusCode::OK);
    assert!(all.body.contains("Incident management"), "{}", all.body);
    assert!(all.body.contains("Service request"));
    let found = rita.get("/portal?q=SERVICE+request").await;
    assert!(found.body.contains("Service request"));
    assert!(!found.body.contains("Incident management"));
    let none = rita.get("/portal?q=zebra").await;
    assert!(none.body.contains("Nothing in the catalogue matches"));

    // The form, from the definition's fields.
    let form = rita.get("/portal/new/incident").await;
    assert_eq!(form.status, StatusCode::OK);
    for needle in [
        "name=\"title\"",
        "(required)",
        "id=\"field-caller\" type=\"text\" name=\"caller\" value=\"rita\"",
        "<option value=\"medium\" selected>",
        "<select id=\"field-category\"",
    ] {
        assert!(form.body.contains(needle), "{needle}: {}", form.body);
    }
    // Filled in later by an agent (a resolve requires it), so not asked now.
    assert!(!form.body.contains("name=\"resolution\""));
    let token = form.csrf();
    let fields = [
        ("caller", "rita"),
        ("service", "email"),
        ("category", "software"),
        ("impact", "low"),
        ("urgency", "medium"),
    ];

    // Without its token: refused, nothing raised.
    let before = instances(&s).await;
    let mut forged = fields.to_vec();
    forged.push(("title", "Forged"));
    let r = rita.post("/portal/new/incident", &forged).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Without a title: the engine's message at the field, nothing raised.
    let mut missing = fields.to_vec();
    missing.push(("csrf", &token));
    missing.push(("title", "  "));
    let r = rita.post("/portal/new/incident", &missing).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(
        r.body
            .contains("<p class=\"field-error\" id=\"err-title\">title is required</p>"),
        "{}",
        r.body
    );
    assert!(r.body.contains("Nothing was raised."));
    // A caller who is nobody here: the engine's words at that field.
    let mut nobody = missing.clone();
    nobody[0] = ("caller", "nobody");
    if let Some(t) = nobody.iter_mut().find(|(k, _)| *k == "title") {
        t.1 = "From nobody";
    }
    let r = rita.post("/portal/new/incident", &nobody).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(
        r.body
            .contains("id=\"err-caller\">caller `nobody` is not a user of this tenant"),
        "{}",
        r.body
    );
    // What she typed (and chose) is kept.
    assert!(
        r.body
            .contains("<option value=\"email\" selected>email</option>"),
        "{}",
        r.body
    );
    assert_eq!(instances(&s).await, before, "nothing raised");

    // Raised.
    let mut good = fields.to_vec();
    good.push(("csrf", &token));
    good.push(("title", "VPN drops every hour"));
    let r = rita.post("/portal/new/incident", &good).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let to = r.location().unwrap_or_default().to_string();
    assert!(to.starts_with("/portal/tickets?raised="), "{to}");
    let id: i64 = to.rsplit('=').next().unwrap_or_default().parse().unwrap();
    let mine = rita.get(&to).await;
    assert!(mine.body.contains(&format!("Ticket #{id} is raised.")));
    assert!(mine.body.contains("VPN drops every hour"));
    assert!(mine.body.contains("data-action=\"log\""), "{}", mine.body);
    let version = support::web::hidden(&mine.body, "version").unwrap();

    // Log it from the list: back to the list, waiting for the service desk.
    let r = rita
        .post(
            &format!("/tickets/{id}/actions/log"),
            &[
                ("csrf", &token),
                ("version", &version),
                ("back", "/portal/tickets"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(
        r.location(),
        Some(format!("/portal/tickets?done=log&ticket={id}").as_str())
    );
    let mine = rita.get("/portal/tickets").await;
    assert!(mine.body.contains("Triage"), "{}", mine.body);
    assert!(mine.body.contains("The service desk team works on it."));
    assert!(!mine.body.contains("data-action="));

    // The agent asks her something: her turn, she answers with a message.
    for action in ["accept", "ask"] {
        let (st, b) = s
            .post(
                &format!("/v1/instances/{id}/actions/{action}"),
                &alice,
                json!({}),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{action}: {b}");
    }
    let mine = rita.get("/portal/tickets").await;
    assert!(mine.body.contains("Awaiting caller"), "{}", mine.body);
    assert!(mine.body.contains("Your turn:"));
    assert!(mine.body.contains("data-action=\"answer\""));
    let version = support::web::hidden(&mine.body, "version").unwrap();
    let r = rita
        .post(
            &format!("/tickets/{id}/actions/answer"),
            &[
                ("csrf", &token),
                ("version", &version),
                ("back", "/portal/tickets"),
                ("reason", "It drops at five past each hour"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let (inst, history) = state(&s, id).await;
    assert_eq!(inst["stage"], "working");
    assert!(history
        .to_string()
        .contains("It drops at five past each hour"));
    let r = rita.get("/portal/tickets").await;
    assert!(!r.body.contains("data-action="));

    // Resolved: she may confirm (close) or reopen; she confirms, and it is finished.
    let (st, b) = s
        .post(
            &format!("/v1/instances/{id}/actions/resolve"),
            &alice,
            json!({"fields": {"resolution": "New VPN profile"}}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    let mine = rita.get("/portal/tickets").await;
    assert!(mine.body.contains("data-action=\"close\""), "{}", mine.body);
    assert!(mine.body.contains("data-action=\"reopen\""));
    let version = support::web::hidden(&mine.body, "version").unwrap();
    // Any other `back` is ignored: the ticket page, never another site.
    let r = rita
        .post(
            &format!("/tickets/{id}/actions/close"),
            &[
                ("csrf", &token),
                ("version", &version),
                ("back", "https://elsewhere.example/"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert!(
        r.location()
            .unwrap_or_default()
            .starts_with(&format!("/tickets/{id}?")),
        "{:?}",
        r.location()
    );
    let mine = rita.get("/portal/tickets").await;
    assert!(mine.body.contains("Closed"), "{}", mine.body);
    assert!(mine.body.contains("Nothing: this ticket is finished."));
}

/// The editor's files as its form posts them (`name.N`, `text.N`), read from the page's
/// hidden name fields, with their texts from `processes/` (what the server published).
fn editor_files(page: &str) -> Vec<(String, String)> {
    let disk: Vec<Json> = support::project_files();
    let mut files = Vec::new();
    for i in 0.. {
        let Some(name) = support::web::hidden(page, &format!("name.{i}")) else {
            break;
        };
        let text = disk
            .iter()
            .find(|f| name.ends_with(f["name"].as_str().unwrap()))
            .map(|f| f["text"].as_str().unwrap().to_string())
            .unwrap_or_else(|| panic!("{name} is not in processes/"));
        files.push((name, text));
    }
    assert!(!files.is_empty(), "{page}");
    files
}

fn form_of<'a>(csrf: &'a str, files: &'a [(String, String)]) -> Vec<(String, &'a str)> {
    let mut form = vec![("csrf".to_string(), csrf)];
    for (i, (name, text)) in files.iter().enumerate() {
        form.push((format!("name.{i}"), name.as_str()));
        form.push((format!("text.{i}"), text.as_str()));
    }
    form
}

async fn post_files(c: &mut WebClient, path: &str, form: &[(String, &str)]) -> support::web::Page {
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    c.post(path, &form).await
}

/// The published versions, by process.
async fn versions(s: &Server) -> Json {
    let (st, list) = s.get("/v1/definitions", &s.admin).await;
    assert_eq!(st, StatusCode::OK, "{list}");
    list
}

/// The definitions, their graphs and the editor are shown only to those who may publish
/// (`process_manager`, `admin`); everyone else, and another tenant, is refused.
async fn processes_are_for_those_who_publish(db: Db) {
    let s = Server::start(&db);
    for (user, roles) in [
        ("rita", vec!["requester"]),
        ("alice", vec!["agent"]),
        ("pam", vec!["process_manager"]),
    ] {
        s.user(&s.admin, user, &roles).await;
        with_password(&s, &s.admin, user).await;
    }
    for user in ["rita", "alice"] {
        let mut c = WebClient::signed_in(&s.base, "default", user, PASSWORD).await;
        let token = c.get("/account").await.csrf();
        for path in ["/processes", "/processes/incident", "/processes/edit"] {
            let r = c.get(path).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{user} {path}");
            assert!(r.body.contains("process_manager"), "{}", r.body);
        }
        let before = versions(&s).await;
        for path in [
            "/processes/edit/publish",
            "/processes/edit/check",
            "/processes/edit/review",
            "/processes/edit/format",
            "/processes/edit/diagnostics",
        ] {
            let r = c
                .post(
                    path,
                    &[("csrf", &token), ("name.0", "x.itsm"), ("text.0", "")],
                )
                .await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{user} {path}");
        }
        assert_eq!(versions(&s).await, before);
        // Nor is the way there offered.
        assert!(!c.get("/account").await.body.contains("href=\"/processes\""));
    }
    let mut pam = WebClient::signed_in(&s.base, "default", "pam", PASSWORD).await;
    let list = pam.get("/processes").await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(
        list.body.contains("href=\"/processes/incident\""),
        "{}",
        list.body
    );
    let page = pam.get("/processes/incident").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("<svg class=\"process-graph\""),
        "{}",
        page.body
    );
    // Stages are boxes with their labels; transitions lines with their names.
    assert!(page.body.contains(">In progress</text>"));
    assert!(page.body.contains(">accept</text>"));
    assert!(page.body.contains("marker-end=\"url(#arrow)\""));
    assert_eq!(
        pam.get("/processes/incident?version=9").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        pam.get("/processes/nothing").await.status,
        StatusCode::NOT_FOUND
    );

    // Another tenant's process manager sees its own definitions, never ours.
    let (st, acme) = s
        .post(
            "/v1/tenants",
            &s.admin,
            json!({"name": "acme", "admin": "ann"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{acme}");
    let ann = acme["secret"].as_str().unwrap().to_string();
    s.user(&ann, "pat", &["process_manager"]).await;
    with_password(&s, &ann, "pat").await;
    let mut pat = WebClient::signed_in(&s.base, "acme", "pat", PASSWORD).await;
    let page = pat.get("/processes/edit").await;
    assert_eq!(page.status, StatusCode::OK);
    let token = page.csrf();
    let files = editor_files(&page.body);
    let mut changed = files.clone();
    changed[0].1.push_str("\n// acme's own\n");
    let r = post_files(
        &mut pat,
        "/processes/edit/publish",
        &form_of(&token, &changed),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let ours = versions(&s).await;
    assert!(
        ours["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["version"] == 1),
        "{ours}"
    );
}

/// A process manager's edit with an unknown stage: Check shows the diagnostic at its line,
/// Review and Publish refuse and publish nothing, a form without its token changes nothing;
/// an unchanged project has nothing to publish; the fixed edit publishes new versions.
async fn a_broken_edit_shows_its_line_and_publishes_nothing(db: Db) {
    let s = Server::start(&db);
    s.user(&s.admin, "pam", &["process_manager"]).await;
    with_password(&s, &s.admin, "pam").await;
    let mut pam = WebClient::signed_in(&s.base, "default", "pam", PASSWORD).await;
    let page = pam.get("/processes/edit").await;
    assert_eq!(page.status, StatusCode::OK);
    let token = page.csrf();
    let files = editor_files(&page.body);
    let before = versions(&s).await;

    // Unchanged (sent with the CRLF line ends browsers send): nothing to publish.
    let crlf: Vec<(String, String)> = files
        .iter()
        .map(|(n, t)| (n.clone(), t.replace('\n', "\r\n")))
        .collect();
    let r = post_files(&mut pam, "/processes/edit/review", &form_of(&token, &crlf)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("id=\"no-change\""), "{}", r.body);

    // Broken: `log` leads to a stage that does not exist.
    let i = files
        .iter()
        .position(|(n, _)| n.ends_with("incident.itsm"))
        .unwrap();
    let mut broken = files.clone();
    broken[i].1 = broken[i].1.replace(
        "transition log: new -> triage",
        "transition log: new -> triaje",
    );
    assert_ne!(broken[i].1, files[i].1);
    let line = broken[i]
        .1
        .lines()
        .position(|l| l.contains("new -> triaje"))
        .unwrap()
        + 1;
    let column = broken[i]
        .1
        .lines()
        .nth(line - 1)
        .unwrap()
        .find("triaje")
        .unwrap()
        + 1;
    let at = format!("line {line}, column {column}</a> <code>unknown-stage</code>");
    let form = form_of(&token, &broken);
    let r = post_files(&mut pam, "/processes/edit/check", &form).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains(&at), "{at}: {}", r.body);
    // Shown under its file, with the line itself.
    let under = r.body.find(&format!("id=\"diag-{i}\"")).unwrap();
    assert!(r.body[under..].contains(&at));
    assert!(r
        .body
        .contains(&format!("{line} |   transition log: new -&gt; triaje")));
    // The same report as a fragment, for the page's script.
    let r = post_files(&mut pam, "/processes/edit/diagnostics", &form).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.starts_with("<div id=\"diag-summary\""), "{}", r.body);
    assert!(r.body.contains(&at));
    for path in ["/processes/edit/review", "/processes/edit/publish"] {
        let r = post_files(&mut pam, path, &form).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{path}");
        assert!(r.body.contains(&at), "{path}: {}", r.body);
        assert!(
            r.body.contains("nothing was published") || r.body.contains("Nothing was published")
        );
    }
    assert_eq!(versions(&s).await, before, "nothing published");

    // Fixed (and relabelled): without its token, nothing; with it, the review names the new
    // versions, and publishing makes them.
    let mut fixed = files.clone();
    fixed[i].1 = fixed[i]
        .1
        .replace("stage triage \"Triage\"", "stage triage \"Sorting\"");
    assert_ne!(fixed[i].1, files[i].1);
    let mut form = form_of(&token, &fixed);
    let forged: Vec<(String, &str)> = form[1..].to_vec();
    for path in [
        "/processes/edit/publish",
        "/processes/edit/review",
        "/processes/edit/check",
        "/processes/edit/diagnostics",
    ] {
        let r = post_files(&mut pam, path, &forged).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}");
    }
    assert_eq!(versions(&s).await, before);
    let r = post_files(&mut pam, "/processes/edit/review", &form).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("<strong>version 2</strong>"), "{}", r.body);
    assert!(r.body.contains("1 lines added, 1 removed"));
    form[0].1 = &token;
    let r = post_files(&mut pam, "/processes/edit/publish", &form).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let done = pam.get(r.location().unwrap()).await;
    assert!(done.body.contains("got a new version"), "{}", done.body);
    let after = versions(&s).await;
    let incident = after["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["process"] == "incident")
        .unwrap()
        .clone();
    assert_eq!(incident["version"], 2, "{after}");
    let graph = pam.get("/processes/incident").await;
    assert!(graph.body.contains(">Sorting</text>"));
    // The editor opens on what was published.
    let again = pam.get("/processes/edit").await;
    assert!(
        again.body.contains("stage triage &quot;Sorting&quot;")
            || again.body.contains("stage triage \"Sorting\"")
    );

    // A file added and one removed: the review names both.
    let mut more = form_of(&token, &fixed);
    more.push(("new_file".to_string(), "extra.itsm"));
    let r = post_files(&mut pam, "/processes/edit/check", &more).await;
    assert!(r.body.contains("value=\"extra.itsm\""), "{}", r.body);
    // The request process may go (its versions stay), with the catalogue items raised on it.
    let mut without_items = fixed.clone();
    if let Some((_, text)) = without_items
        .iter_mut()
        .find(|(n, _)| n.ends_with("catalogue.itsm"))
    {
        let mut kept = Vec::new();
        let mut in_item = false;
        for line in text.lines() {
            if line.trim_start().starts_with("item ") {
                in_item = true;
            }
            if !in_item {
                kept.push(line);
            }
            if in_item && line.trim() == "}" && line.starts_with("  }") {
                in_item = false;
            }
        }
        *text = kept.join("\n") + "\n";
    }
    let mut form = form_of(&token, &without_items);
    form.push(("new_file".to_string(), "extra.itsm"));
    let gone = fixed
        .iter()
        .position(|(n, _)| n.ends_with("/request.itsm") || n == "request.itsm")
        .unwrap();
    // With it go what needs it: its tests, the work orders it fans out into, and the
    // catalogue's tests of the items raised on it.
    let also = [
        "request.test.itsm",
        "work_order.itsm",
        "catalogue.test.itsm",
    ];
    let removed: Vec<String> = fixed
        .iter()
        .enumerate()
        .filter(|(i, (n, _))| *i == gone || also.iter().any(|a| n.ends_with(a)))
        .map(|(i, _)| format!("remove.{i}"))
        .collect();
    for remove in &removed {
        form.push((remove.clone(), "on"));
    }
    let r = post_files(&mut pam, "/processes/edit/review", &form).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(
        r.body.contains("extra.itsm</code>: new, 0 lines"),
        "{}",
        r.body
    );
    assert!(
        r.body
            .contains(&format!("{}</code>: removed", fixed[gone].0)),
        "{}",
        r.body
    );
    assert!(r.body.contains("No longer in the project"), "{}", r.body);
    assert_eq!(versions(&s).await, after);

    // Format lays a file out as `itsmflow fmt` does.
    let mut messy = fixed.clone();
    messy[i].1 = messy[i].1.replace(
        "stage new \"New\" initial",
        "stage   new   \"New\"    initial",
    );
    let r = post_files(&mut pam, "/processes/edit/format", &form_of(&token, &messy)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("Formatted."), "{}", r.body);
    assert!(
        r.body.contains("stage new &quot;New&quot; initial")
            || r.body.contains("stage new \"New\" initial")
    );
    assert!(!r.body.contains("stage   new"));
}

/// The tenant's users as the API lists them.
async fn users(s: &Server) -> Json {
    let (st, list) = s.get("/v1/users", &s.admin).await;
    assert_eq!(st, StatusCode::OK, "{list}");
    list
}

/// Users, roles, attributes, passwords, tokens and tenants through the admin pages (the API's
/// own functions): for administrators only, every form refused without its token, refusals in
/// the API's words, and each tenant's administrators see their own tenant only.
async fn administrators_manage_users_tokens_and_tenants(db: Db) {
    let s = Server::start(&db);
    with_password(&s, &s.admin, "admin").await;
    for (user, roles) in [
        ("rita", vec!["requester"]),
        ("pam", vec!["process_manager"]),
    ] {
        s.user(&s.admin, user, &roles).await;
        with_password(&s, &s.admin, user).await;
    }
    // Not administrators: nothing shown, nothing done.
    for user in ["rita", "pam"] {
        let mut c = WebClient::signed_in(&s.base, "default", user, PASSWORD).await;
        let token = c.get("/account").await.csrf();
        assert!(!c.get("/account").await.body.contains("href=\"/admin\""));
        for path in [
            "/admin",
            "/admin/tokens",
            "/admin/tenants",
            "/admin/users/rita",
        ] {
            assert_eq!(
                c.get(path).await.status,
                StatusCode::FORBIDDEN,
                "{user} {path}"
            );
        }
        let r = c
            .post(
                "/admin/users",
                &[("csrf", &token), ("name", "mallory"), ("roles", "admin")],
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let r = c
            .post(
                "/admin/users/rita/roles",
                &[("csrf", &token), ("role", "admin")],
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
    }
    assert!(!users(&s).await.to_string().contains("mallory"));

    let mut admin = WebClient::signed_in(&s.base, "default", "admin", PASSWORD).await;
    let page = admin.get("/admin").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("href=\"/admin/users/rita\""),
        "{}",
        page.body
    );
    let token = page.csrf();
    let dave = [
        ("name", "dave"),
        ("roles", "agent, team_lead"),
        ("manager", "pam"),
        ("email", "dave@example.com"),
        ("password", PASSWORD),
    ];
    // Without its token: nothing.
    let r = admin.post("/admin/users", &dave).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(!users(&s).await.to_string().contains("dave"));
    // A malformed address: the API's words, nothing created, the form kept.
    let mut bad = dave.to_vec();
    bad[3] = ("email", "dave at example");
    bad.push(("csrf", &token));
    let r = admin.post("/admin/users", &bad).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(r.body.contains("is not an e-mail address"), "{}", r.body);
    assert!(r.body.contains("value=\"dave\""));
    assert!(!users(&s).await.to_string().contains("dave"));
    let mut good = dave.to_vec();
    good.push(("csrf", &token));
    let r = admin.post("/admin/users", &good).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.location(), Some("/admin/users/dave?done=created"));
    let list = users(&s).await;
    let d = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "dave")
        .unwrap()
        .clone();
    assert_eq!(d["roles"], json!(["agent", "team_lead"]));
    assert_eq!(d["manager"], "pam");
    assert_eq!(d["email"], "dave@example.com");
    // His password works.
    WebClient::signed_in(&s.base, "default", "dave", PASSWORD).await;

    // Roles, ticked and written; manager and e-mail cleared.
    let r = admin
        .post(
            "/admin/users/dave/roles",
            &[
                ("csrf", &token),
                ("role", "agent"),
                ("role", "requester"),
                ("roles", "night_shift"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let r = admin
        .post(
            "/admin/users/dave/attributes",
            &[("csrf", &token), ("manager", ""), ("email", "")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let list = users(&s).await;
    let d = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "dave")
        .unwrap()
        .clone();
    assert_eq!(d["roles"], json!(["agent", "night_shift", "requester"]));
    assert!(d["manager"].is_null() && d["email"].is_null(), "{d}");
    // Taking `admin` from oneself is refused in the API's words.
    let r = admin
        .post(
            "/admin/users/admin/roles",
            &[("csrf", &token), ("role", "agent")],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r
        .body
        .contains("you cannot take the `admin` role from yourself"));

    // A token, shown once; revoked from the tokens page (not without the form's token).
    let r = admin
        .post(
            "/admin/users/dave/tokens",
            &[("csrf", &token), ("label", "ci"), ("days", "30")],
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let at = r.body.find("id=\"token-secret\">").unwrap() + "id=\"token-secret\">".len();
    let secret = r.body[at..].split('<').next().unwrap().to_string();
    assert!(secret.starts_with("itsm_"), "{secret}");
    assert_eq!(s.get("/v1/me", &secret).await.0, StatusCode::OK);
    let (_, tokens) = s.get("/v1/tokens", &s.admin).await;
    let id = tokens["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["user"] == "dave")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let list = admin.get("/admin/tokens").await;
    assert!(list.body.contains(&format!("/admin/tokens/{id}/revoke")));
    let r = admin.post(&format!("/admin/tokens/{id}/revoke"), &[]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(s.get("/v1/me", &secret).await.0, StatusCode::OK);
    let r = admin
        .post(&format!("/admin/tokens/{id}/revoke"), &[("csrf", &token)])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(s.get("/v1/me", &secret).await.0, StatusCode::UNAUTHORIZED);

    // A tenant: its administrator's token shown once; it sees its own users only, and may not
    // make tenants.
    let r = admin
        .post("/admin/tenants", &[("name", "acme"), ("admin", "ann")])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = admin
        .post(
            "/admin/tenants",
            &[("csrf", &token), ("name", "Acme!"), ("admin", "ann")],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("lowercase letters"), "{}", r.body);
    let r = admin
        .post(
            "/admin/tenants",
            &[("csrf", &token), ("name", "acme"), ("admin", "ann")],
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert!(r.body.contains("<li><code>acme</code></li>"), "{}", r.body);
    let at = r.body.find("id=\"tenant-secret\">").unwrap() + "id=\"tenant-secret\">".len();
    let ann = r.body[at..].split('<').next().unwrap().to_string();
    with_password(&s, &ann, "ann").await;
    let mut ann_web = WebClient::signed_in(&s.base, "acme", "ann", PASSWORD).await;
    let page = ann_web.get("/admin").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        !page.body.contains("rita") && !page.body.contains("dave"),
        "{}",
        page.body
    );
    assert_eq!(
        ann_web.get("/admin/users/rita").await.status,
        StatusCode::NOT_FOUND
    );
    let tenants = ann_web.get("/admin/tenants").await;
    assert!(tenants
        .body
        .contains("tenants are created by administrators of the default tenant"));
    let t = tenants.csrf();
    let r = ann_web
        .post(
            "/admin/tenants",
            &[("csrf", &t), ("name", "other"), ("admin", "x")],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

/// The portal lists the catalogue's services with their items, under the same search; an
/// item's form asks the process's fields and the item's `requires`, never its presets; the
/// engine's refusal is shown at its field; the ticket raised is the requester's.
async fn a_requester_raises_a_catalogue_item(db: Db) {
    let s = Server::start(&db);
    s.user(&s.admin, "rita", &["requester"]).await;
    with_password(&s, &s.admin, "rita").await;
    let mut rita = WebClient::signed_in(&s.base, "default", "rita", PASSWORD).await;

    let all = rita.get("/portal").await;
    assert_eq!(all.status, StatusCode::OK);
    for needle in [
        "<h2 id=\"h-services\">Services</h2>",
        "Remote access (VPN)",
        "Working from home and on the road",
        "<a href=\"/portal/items/vpn_access\">VPN access</a>",
        "A VPN account and token for remote work",
        "<a href=\"/portal/items/laptop\">New laptop</a>",
    ] {
        assert!(all.body.contains(needle), "{needle}: {}", all.body);
    }
    // Words may name the service and the item; one that names neither finds nothing.
    let found = rita.get("/portal?q=remote+access+token").await;
    assert!(
        found.body.contains("/portal/items/vpn_access"),
        "{}",
        found.body
    );
    assert!(!found.body.contains("/portal/items/laptop"));
    // A service's own words keep all its items.
    let desktop = rita.get("/portal?q=workstations").await;
    assert!(desktop.body.contains("/portal/items/laptop"));
    assert!(desktop.body.contains("/portal/items/software"));
    assert!(!desktop.body.contains("/portal/items/vpn_access"));
    let none = rita.get("/portal?q=zebra").await;
    assert!(none.body.contains("Nothing in the catalogue matches"));
    assert!(!none.body.contains("h-services"));

    // The form: the requester is her; what the item sets (the item, the service) is not
    // asked; its `requires` is marked required.
    let form = rita.get("/portal/items/vpn_access").await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    for needle in [
        "Request: VPN access",
        "id=\"field-requester\" type=\"text\" name=\"requester\" value=\"rita\"",
        "<label for=\"field-justification\">justification <span class=\"req\">(required)</span>",
    ] {
        assert!(form.body.contains(needle), "{needle}: {}", form.body);
    }
    assert!(!form.body.contains("name=\"item\""), "{}", form.body);
    assert!(!form.body.contains("name=\"service\""), "{}", form.body);
    assert_eq!(
        rita.get("/portal/items/nothing").await.status,
        StatusCode::NOT_FOUND
    );

    let token = form.csrf();
    let before = instances(&s).await;
    // Without its token: refused, nothing raised.
    let r = rita
        .post(
            "/portal/items/vpn_access",
            &[("requester", "rita"), ("justification", "x")],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Without the item's required field: the engine's words at it, nothing raised.
    let r = rita
        .post(
            "/portal/items/vpn_access",
            &[
                ("csrf", &token),
                ("requester", "rita"),
                ("notes", "from home"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(
        r.body
            .contains("id=\"err-justification\">justification is required for `vpn_access`</p>"),
        "{}",
        r.body
    );
    assert!(r.body.contains("Nothing was raised."));
    assert!(r.body.contains("from home"), "what she typed is kept");
    assert_eq!(instances(&s).await, before, "nothing raised");

    // Raised, with the item's presets whatever the form carried.
    let r = rita
        .post(
            "/portal/items/vpn_access",
            &[
                ("csrf", &token),
                ("requester", "rita"),
                ("justification", "I work from home on Fridays"),
                ("item", "laptop"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let to = r.location().unwrap_or_default().to_string();
    let id: i64 = to
        .rsplit('=')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{to}"));
    let (st, inst) = s.get(&format!("/v1/instances/{id}"), &s.admin).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(inst["process"], "request", "{inst}");
    assert_eq!(inst["fields"]["item"], "share_access", "{inst}");
    assert_eq!(inst["fields"]["service"], "vpn", "{inst}");
    assert_eq!(
        inst["fields"]["justification"],
        "I work from home on Fridays"
    );
    assert_eq!(inst["created_by"], "rita", "{inst}");
    let mine = rita.get(&to).await;
    assert!(
        mine.body.contains(&format!("Ticket #{id} is raised.")),
        "{}",
        mine.body
    );
    assert!(
        mine.body.contains(&format!("href=\"/tickets/{id}\"")),
        "{}",
        mine.body
    );
}

/// The names of the filters on the queues page.
fn saved_names(page: &str) -> Vec<String> {
    page.split("<li data-filter=\"")
        .skip(1)
        .filter_map(|p| p.split('"').next().map(str::to_string))
        .collect()
}

/// An agent filters a queue, saves the filter under a name, finds it on the queues page (and
/// nobody else does), opens it, replaces it, and deletes it; forms without their token change
/// nothing.
async fn agents_save_their_queue_filters(db: Db) {
    let s = Server::start(&db);
    let (id, carol) = setup(&s).await;
    s.user(&s.admin, "bob", &["agent"]).await;
    with_password(&s, &s.admin, "bob").await;
    let (st, b) = s
        .post(
            "/v1/instances",
            &carol,
            json!({"process": "incident", "fields": {"title": "Mouse squeaks", "caller": "carol",
                "service": "desktop", "category": "hardware", "impact": "low", "urgency": "low"}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    let mouse = b["id"].as_i64().unwrap();
    s.post(
        &format!("/v1/instances/{mouse}/actions/log"),
        &carol,
        json!({}),
    )
    .await;
    let mut alice = WebClient::signed_in(&s.base, "default", "alice", PASSWORD).await;

    // Filtering: by words, holder and order; a value the form does not offer is refused.
    let all = alice.get("/queues/service_desk").await;
    assert_eq!(all.status, StatusCode::OK);
    assert!(all.body.contains("Printer on fire") && all.body.contains("Mouse squeaks"));
    let printers = alice.get("/queues/service_desk?q=PRINTER").await;
    assert!(
        printers.body.contains("Printer on fire"),
        "{}",
        printers.body
    );
    assert!(!printers.body.contains("Mouse squeaks"));
    assert!(printers
        .body
        .contains("data-live-rows=\"/queues/service_desk/rows?q=printer\""));
    let rows = alice.get("/queues/service_desk/rows?q=mouse").await;
    assert!(rows.body.contains("Mouse squeaks") && !rows.body.contains("Printer on fire"));
    let mine = alice.get("/queues/service_desk?holder=me").await;
    assert!(
        mine.body.contains("Nothing to do in this queue."),
        "{}",
        mine.body
    );
    let newest = alice.get("/queues/service_desk?sort=newest").await;
    let (m, p) = (
        newest.body.find("Mouse squeaks").unwrap(),
        newest.body.find("Printer on fire").unwrap(),
    );
    assert!(m < p, "newest first");
    let bad = alice.get("/queues/service_desk?standing=late").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(
        bad.body.contains("unknown clock state `late`"),
        "{}",
        bad.body
    );

    // Saving needs the form's token.
    let token = all.csrf();
    let form = [("name", "Printers"), ("q", "printer"), ("sort", "due")];
    let r = alice.post("/queues/service_desk/filters", &form).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(saved_names(&alice.get("/queues").await.body).is_empty());
    let mut with_token = form.to_vec();
    with_token.push(("csrf", &token));
    let r = alice
        .post("/queues/service_desk/filters", &with_token)
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(
        r.location(),
        Some("/queues/service_desk?q=printer&sort=due&saved=Printers")
    );
    let shown = alice.get(r.location().unwrap()).await;
    assert!(
        shown.body.contains("Filter saved as “Printers”."),
        "{}",
        shown.body
    );
    assert!(shown.body.contains(&format!("href=\"/tickets/{id}\"")));
    assert!(!shown.body.contains("Mouse squeaks"));
    // A name is needed, and a filter the form cannot make is not saved.
    let r = alice
        .post(
            "/queues/service_desk/filters",
            &[("csrf", &token), ("name", " ")],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = alice
        .post(
            "/queues/service_desk/filters",
            &[("csrf", &token), ("name", "Odd"), ("holder", "them")],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // On the queues page, a link to the filtered queue; bob has none.
    let list = alice.get("/queues").await;
    assert_eq!(saved_names(&list.body), vec!["Printers"]);
    assert!(
        list.body
            .contains("<a href=\"/queues/service_desk?q=printer&amp;sort=due\">Printers</a>"),
        "{}",
        list.body
    );
    assert!(
        list.body.contains("“printer”, by time left"),
        "{}",
        list.body
    );
    let mut bob = WebClient::signed_in(&s.base, "default", "bob", PASSWORD).await;
    assert!(saved_names(&bob.get("/queues").await.body).is_empty());
    // Bob cannot delete alice's filter: he has none of that name.
    let bob_token = bob.get("/queues").await.csrf();
    let r = bob
        .post(
            "/queues/service_desk/filters/delete",
            &[("csrf", &bob_token), ("name", "Printers")],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // Saving the name again replaces it.
    let r = alice
        .post(
            "/queues/service_desk/filters",
            &[("csrf", &token), ("name", "Printers"), ("q", "mouse")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let list = alice.get("/queues").await;
    assert_eq!(saved_names(&list.body), vec!["Printers"]);
    assert!(
        list.body.contains("href=\"/queues/service_desk?q=mouse\""),
        "{}",
        list.body
    );

    // Deleting: not without the token; then gone.
    let r = alice
        .post(
            "/queues/service_desk/filters/delete",
            &[("name", "Printers")],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        saved_names(&alice.get("/queues").await.body),
        vec!["Printers"]
    );
    let r = alice
        .post(
            "/queues/service_desk/filters/delete",
            &[("csrf", &token), ("name", "Printers")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), Some("/queues?deleted=Printers"));
    let list = alice.get("/queues?deleted=Printers").await;
    assert!(list.body.contains("Filter “Printers” deleted."));
    assert!(saved_names(&list.body).is_empty());
}

/// **Run tests** runs the tests of the project as posted: all pass on the standard project,
/// with coverage; a broken expectation shows its line with the expected and actual values; a
/// project with errors shows its diagnostics and runs nothing. Nothing is published, and the
/// form is a publisher's, with its token.
async fn the_editor_runs_the_drafts_tests(db: Db) {
    let s = Server::start(&db);
    s.user(&s.admin, "pam", &["process_manager"]).await;
    with_password(&s, &s.admin, "pam").await;
    s.user(&s.admin, "alice", &["agent"]).await;
    with_password(&s, &s.admin, "alice").await;
    let mut pam = WebClient::signed_in(&s.base, "default", "pam", PASSWORD).await;
    let page = pam.get("/processes/edit").await;
    assert!(page.body.contains("id=\"run-tests\""), "{}", page.body);
    let token = page.csrf();
    let files = editor_files(&page.body);
    let before = versions(&s).await;

    let r = post_files(&mut pam, "/processes/edit/tests", &form_of(&token, &files)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains(" passed, 0 failed."), "{}", r.body);
    assert!(r.body.contains("class=\"test test-passed\""));
    assert!(r.body.contains("id=\"test-coverage\""));
    assert!(
        r.body.contains("<tr data-process=\"incident\">"),
        "{}",
        r.body
    );

    // A broken expectation: its line, expected and actual.
    let i = files
        .iter()
        .position(|(n, _)| n.ends_with("incident.test.itsm"))
        .unwrap();
    let mut broken = files.clone();
    let line = broken[i]
        .1
        .lines()
        .position(|l| l.trim() == "expect priority P1")
        .unwrap()
        + 1;
    broken[i].1 = broken[i]
        .1
        .replacen("expect priority P1", "expect priority P4", 1);
    let r = post_files(&mut pam, "/processes/edit/tests", &form_of(&token, &broken)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains(" passed, 1 failed."), "{}", r.body);
    let failed = r
        .body
        .split("class=\"test test-failed\"")
        .nth(1)
        .unwrap_or_default();
    assert!(
        failed.contains(&format!("Line {line}, column")),
        "line {line}: {failed}"
    );
    assert!(failed.contains("expect priority P4"), "{failed}");
    assert!(
        failed.contains("<dd class=\"expected\"><code>P4</code>"),
        "{failed}"
    );
    assert!(
        failed.contains("<dd class=\"actual\"><code>P1</code>"),
        "{failed}"
    );
    // What was typed stays in the editor.
    assert!(r.body.contains("expect priority P4"));

    // A project with errors: its diagnostics, no test.
    let j = files
        .iter()
        .position(|(n, _)| n.ends_with("incident.itsm"))
        .unwrap();
    let mut wrong = files.clone();
    wrong[j].1 = wrong[j].1.replace(
        "transition log: new -> triage",
        "transition log: new -> triaje",
    );
    let r = post_files(&mut pam, "/processes/edit/tests", &form_of(&token, &wrong)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(r.body.contains("No test ran."), "{}", r.body);
    assert!(r.body.contains("unknown-stage"), "{}", r.body);
    assert!(!r.body.contains("id=\"test-results\""));

    // Not without the token, and not for an agent.
    let r = post_files(
        &mut pam,
        "/processes/edit/tests",
        &form_of("forged", &files),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let mut alice = WebClient::signed_in(&s.base, "default", "alice", PASSWORD).await;
    let alice_token = alice.get("/account").await.csrf();
    let r = post_files(
        &mut alice,
        "/processes/edit/tests",
        &form_of(&alice_token, &files),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert_eq!(versions(&s).await, before, "nothing published");
}

/// A `list(service)` is a multiple select and a `list(person)` a text area of one user per line
/// on the raise form; a bad element is refused at its field with the engine's words, and the
/// ticket page shows the lists as they were raised.
async fn lists_are_chosen_and_typed_on_the_forms(db: Db) {
    let s = Server::start(&db);
    s.user(&s.admin, "rita", &["requester"]).await;
    with_password(&s, &s.admin, "rita").await;
    s.user(&s.admin, "wes", &[]).await;
    s.user(&s.admin, "alice", &["agent"]).await;
    with_password(&s, &s.admin, "alice").await;
    let mut rita = WebClient::signed_in(&s.base, "default", "rita", PASSWORD).await;

    let form = rita.get("/portal/new/incident").await;
    assert_eq!(form.status, StatusCode::OK);
    for needle in [
        "<label for=\"field-affected_services\">",
        "<select id=\"field-affected_services\" name=\"affected_services\" multiple",
        "<option value=\"vpn\">vpn</option>",
        "<label for=\"field-watchers\">",
        "<textarea id=\"field-watchers\" name=\"watchers\"",
        "User names, one per line.",
    ] {
        assert!(form.body.contains(needle), "{needle}: {}", form.body);
    }
    let token = form.csrf();
    let mut fields = vec![
        ("csrf", token.as_str()),
        ("title", "Mail and VPN down"),
        ("caller", "rita"),
        ("service", "email"),
        ("category", "software"),
        ("impact", "low"),
        ("affected_services", "vpn"),
        ("affected_services", "network"),
        ("watchers", "wes\r\n\r\n  zed  \r\n"),
    ];
    let before = instances(&s).await;
    let r = rita.post("/portal/new/incident", &fields).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(
        r.body
            .contains("id=\"err-watchers\">watchers `zed` is not a user of this tenant"),
        "{}",
        r.body
    );
    // What she chose and typed is kept, one element per line.
    assert!(
        r.body
            .contains("<option value=\"network\" selected>network</option>"),
        "{}",
        r.body
    );
    assert!(r.body.contains(">wes\nzed</textarea>"), "{}", r.body);
    assert_eq!(instances(&s).await, before, "nothing raised");

    if let Some(w) = fields.iter_mut().find(|(k, _)| *k == "watchers") {
        w.1 = "wes\n";
    }
    let r = rita.post("/portal/new/incident", &fields).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let to = r.location().unwrap_or_default().to_string();
    let id: i64 = to.rsplit('=').next().unwrap_or_default().parse().unwrap();
    let (_, v) = s.get(&format!("/v1/instances/{id}"), &s.admin).await;
    assert_eq!(
        v["fields"]["affected_services"],
        json!(["vpn", "network"]),
        "{v}"
    );
    assert_eq!(v["fields"]["watchers"], json!(["wes"]), "{v}");

    let mut alice = WebClient::signed_in(&s.base, "default", "alice", PASSWORD).await;
    let page = alice.get(&format!("/tickets/{id}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("<dd>vpn, network</dd>"), "{}", page.body);
    assert!(page.body.contains("<dd>wes</dd>"), "{}", page.body);
}

/// A network incident is with the network team, whose tier agrees an OLA: the ticket page
/// shows the team's clock, the queue page each task's OLA due time, and sorts by it.
async fn team_targets_show_on_the_ticket_and_the_queue(db: Db) {
    let s = Server::start(&db);
    s.user(&s.admin, "nick", &["agent", "network_engineer"])
        .await;
    with_password(&s, &s.admin, "nick").await;
    let carol = s.user(&s.admin, "carol", &["requester", "caller"]).await;
    let (st, b) = s
        .post(
            "/v1/instances",
            &carol,
            json!({"process": "incident", "fields": {"title": "Wi-Fi drops", "caller": "carol",
                "service": "network", "category": "network.wifi", "impact": "high", "urgency": "low"}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    let id = b["id"].as_i64().unwrap();
    let (st, b) = s
        .post(
            &format!("/v1/instances/{id}/actions/log"),
            &carol,
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    assert_eq!(b["queue"], "network");
    let due = b["task"]["ola_due_at"]
        .as_str()
        .expect("an OLA due time")
        .to_string();

    let mut nick = WebClient::signed_in(&s.base, "default", "nick", PASSWORD).await;
    let ticket = nick.get(&format!("/tickets/{id}")).await;
    assert_eq!(ticket.status, StatusCode::OK);
    assert!(
        ticket.body.contains("Team targets (OLA)"),
        "{}",
        ticket.body
    );
    assert!(ticket.body.contains("OLA network"), "{}", ticket.body);
    assert!(
        ticket.body.contains("tier 2 target, row P3"),
        "{}",
        ticket.body
    );

    // The due time as the pages write instants (`2026-03-02 08:00 UTC`).
    let shown = format!("OLA due {} {} UTC", &due[..10], &due[11..16]);
    let queue = nick.get("/queues/network").await;
    assert_eq!(queue.status, StatusCode::OK);
    assert!(queue.body.contains(&shown), "{shown} in {}", queue.body);
    let by_ola = nick.get("/queues/network?sort=ola").await;
    assert_eq!(by_ola.status, StatusCode::OK);
    assert!(
        by_ola.body.contains("Earliest OLA due time first"),
        "{}",
        by_ola.body
    );
}
