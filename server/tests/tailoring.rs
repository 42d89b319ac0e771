//! Tailoring per client (issue 22): a client's tenant runs the standard processes with its
//! tailoring applied, end to end over the HTTP API on SQLite and PostgreSQL; a tailoring that
//! breaks the process is refused and replaces nothing. And the command line: `check` for a
//! client, `effective`, and `test --base`.

#[macro_use]
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use reqwest::StatusCode;
use serde_json::{json, Value as Json};
use support::{Db, Server};

on_both!(
    a_client_tenant_runs_its_tailored_incident_process,
    a_tenants_tailoring_follows_the_standard_library
);

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .to_path_buf()
}

/// The standard project with Acme's tailoring (examples/acme/acme.itsm) beside it.
fn acme_files() -> Vec<Json> {
    let mut files = support::project_files();
    let path = workspace().join("examples/acme/acme.itsm");
    files.push(json!({
        "name": "acme.itsm",
        "text": std::fs::read_to_string(path).expect("acme.itsm"),
    }));
    files
}

async fn a_client_tenant_runs_its_tailored_incident_process(db: Db) {
    let s = Server::start(&db);
    let (st, acme) = s
        .post(
            "/v1/tenants",
            &s.admin,
            json!({"name": "acme", "admin": "root"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{acme}");
    let root = acme["secret"].as_str().expect("secret").to_string();

    let (st, published) = s
        .post("/v1/definitions", &root, json!({ "files": acme_files() }))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{published}");
    let (_, incident) = s.get("/v1/definitions/incident", &root).await;
    let versions = incident["versions"].as_array().map_or(0, Vec::len);
    assert_eq!(
        versions, 2,
        "the tailored incident is a new version: {incident}"
    );

    let sam = s.user(&root, "sam", &["agent"]).await;
    let carol = s.user(&root, "carol", &[]).await;
    let payroll = |caller: &str| {
        json!({
            "process": "incident",
            "fields": {
                "title": "Payslips missing",
                "caller": caller,
                "service": "payroll",
                "category": "software",
                "impact": "medium",
                "urgency": "medium",
            }
        })
    };
    let (st, created) = s.post("/v1/instances", &carol, payroll("carol")).await;
    assert_eq!(st, StatusCode::CREATED, "{created}");
    let id = created["id"].as_i64().expect("id");
    // The field the tailoring added, with its default.
    assert_eq!(created["fields"]["cost_centre"], "general", "{created}");

    let act = |action: &'static str| {
        let s = &s;
        let sam = sam.clone();
        async move {
            let (st, b) = s
                .post(
                    &format!("/v1/instances/{id}/actions/{action}"),
                    &sam,
                    json!({}),
                )
                .await;
            assert_eq!(st, StatusCode::OK, "{action}: {b}");
            b
        }
    };
    // The route the tailoring added, before the standard ones.
    let logged = act("log").await;
    assert_eq!(logged["queue"], "acme_sap", "{logged}");
    let (_, tasks) = s.get("/v1/queues/acme_sap/tasks", &sam).await;
    assert_eq!(tasks["items"][0]["instance"], id, "{tasks}");

    // The standard service desk under Acme's name: the standard route that names the desk
    // follows the rename, and the task is in the renamed queue.
    let printer = json!({
        "process": "incident",
        "fields": {
            "title": "A printer jams",
            "caller": "carol",
            "service": "desktop",
            "category": "hardware.printer",
            "impact": "medium",
            "urgency": "medium",
        }
    });
    let (st, jam) = s.post("/v1/instances", &carol, printer).await;
    assert_eq!(st, StatusCode::CREATED, "{jam}");
    let jam = jam["id"].as_i64().expect("id");
    let (st, logged) = s
        .post(&format!("/v1/instances/{jam}/actions/log"), &sam, json!({}))
        .await;
    assert_eq!(st, StatusCode::OK, "{logged}");
    assert_eq!(logged["queue"], "helpdesk", "{logged}");
    let (_, tasks) = s.get("/v1/queues/helpdesk/tasks", &sam).await;
    assert_eq!(tasks["items"][0]["instance"], jam, "{tasks}");

    // The stage and transitions it added, and the resolve clock paused there.
    act("accept").await;
    let waiting = act("to_vendor").await;
    assert_eq!(waiting["stage"], "awaiting_vendor", "{waiting}");
    let (_, view) = s.get(&format!("/v1/instances/{id}/clocks"), &sam).await;
    let resolve = view["items"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["clock"] == "resolve"))
        .cloned()
        .unwrap_or_else(|| panic!("a resolve clock: {view}"));
    assert_eq!(resolve["state"], "paused", "{resolve}");
    let back = act("from_vendor").await;
    assert_eq!(back["stage"], "working");

    // The tailored approval: a minor payroll change needs the change manager, then the
    // payroll service owner (a second level the standard process does not ask); a rejection
    // goes back to assessment.
    let mia = s.user(&root, "mia", &["change_manager"]).await;
    let owen = s.user(&root, "owen", &["service_owner"]).await;
    let change = |title: &str| {
        json!({"process": "change", "fields": {"title": title, "change_type": "normal",
            "category": "1", "service": "payroll"}})
    };
    for (title, decisions) in [
        (
            "New payslip layout",
            vec![(&mia, "approve"), (&owen, "approve")],
        ),
        ("Drop the old payslips", vec![(&mia, "reject")]),
    ] {
        let (st, c) = s.post("/v1/instances", &carol, change(title)).await;
        assert_eq!(st, StatusCode::CREATED, "{c}");
        let path = format!("/v1/instances/{}", c["id"]);
        let (st, b) = s
            .post(&format!("{path}/actions/submit"), &carol, json!({}))
            .await;
        assert_eq!(st, StatusCode::OK, "{b}");
        let (st, b) = s
            .post(
                &format!("{path}/actions/assess"),
                &mia,
                json!({"fields": {"backout_plan": "Restore the old layout"}}),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{b}");
        for (who, decision) in decisions {
            let (st, b) = s
                .post(
                    &format!("{path}/approval/votes"),
                    who,
                    json!({"decision": decision}),
                )
                .await;
            assert_eq!(st, StatusCode::OK, "{decision}: {b}");
        }
        let (_, now) = s.get(&path, &mia).await;
        let expected = if title.starts_with("New") {
            "scheduled"
        } else {
            "assessment"
        };
        assert_eq!(now["stage"], expected, "{title}: {now}");
    }

    // The default tenant runs the standard process: no such route, stage or field.
    let alice = s.user(&s.admin, "alice", &["agent"]).await;
    let (st, standard) = s.post("/v1/instances", &alice, payroll("alice")).await;
    assert_eq!(st, StatusCode::CREATED, "{standard}");
    assert!(
        standard["fields"].get("cost_centre").is_none(),
        "{standard}"
    );

    // A tailoring that breaks the process is refused, pointing at the change, and the
    // tenant keeps running the version it had.
    let mut broken = acme_files();
    if let Some(last) = broken.last_mut() {
        let text = last["text"]
            .as_str()
            .unwrap_or_default()
            .replace("require stage resolved", "remove stage resolved");
        last["text"] = json!(text);
    }
    let (st, err) = s
        .post("/v1/definitions", &root, json!({ "files": broken }))
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    let said = err["diagnostics"].to_string();
    assert!(
        said.contains("unknown stage `resolved`") && said.contains("tailored for client `acme`"),
        "{said}"
    );
    let (_, after) = s.get("/v1/definitions/incident", &root).await;
    assert_eq!(after["versions"].as_array().map_or(0, Vec::len), 2);
}

fn itsmflow(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_itsmflow"))
        .args(args)
        .current_dir(workspace())
        .output()
        .expect("run itsmflow")
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn effective_prints_what_the_client_runs() {
    let out = itsmflow(&[
        "effective",
        "processes",
        "examples/acme",
        "--process",
        "incident",
    ]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(said.contains("targets on acme_hours {"), "{said}");
    assert!(
        said.contains("P1: respond 10m, resolve 2h on 24x7"),
        "{said}"
    );
    // (Field types are aligned in a column: the spaces depend on the longest name.)
    assert!(
        said.lines()
            .any(|l| l.trim_start().starts_with("cost_centre:")
                && l.trim_end().ends_with("text default \"general\"")),
        "{said}"
    );
    assert!(
        said.contains("stage awaiting_vendor \"Awaiting vendor\""),
        "{said}"
    );
    // The added route sits where the tailoring placed it: before `network`.
    let sap = said.find("sap: when service == payroll => acme_sap");
    let network = said.find("network: when category in (network.*) => network");
    assert!(
        sap.is_some() && network.is_some() && sap < network,
        "{said}"
    );
    assert!(
        !said.contains("extends"),
        "the effective process is plain: {said}"
    );

    let out = itsmflow(&[
        "effective",
        "processes",
        "examples/acme",
        "--client",
        "globex",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("no tailoring for client `globex`"));
}

#[test]
fn check_and_test_a_client_against_the_standard_library() {
    let out = itsmflow(&["check", "--deny-warnings", "processes", "examples/acme"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = itsmflow(&["fmt", "--check", "examples/acme"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = itsmflow(&["test", "examples/acme", "--base", "processes"]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(said.contains("7 passed; 0 failed"), "{said}");
}

/// A copy of the standard library with the changes a new release might bring.
fn new_release(edits: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for entry in std::fs::read_dir(workspace().join("processes")).expect("processes") {
        let path = entry.expect("entry").path();
        let mut text = std::fs::read_to_string(&path).expect("read");
        if path.file_name().is_some_and(|n| n == "incident.itsm") {
            for (from, to) in edits {
                assert!(text.contains(from), "{from}");
                text = text.replace(from, to);
            }
        }
        std::fs::write(dir.path().join(path.file_name().expect("name")), text).expect("write");
    }
    dir
}

#[test]
fn rebase_sorts_a_clients_changes_entry_by_entry() {
    let release = new_release(&[
        // The same entry the client replaces: a conflict.
        (
            "P1: respond 15m, resolve 4h on 24x7",
            "P1: respond 20m, resolve 4h on 24x7",
        ),
        // What the client adds, now in the library as the client wrote it: obsolete.
        (
            "    at 75% => move to next tier\n",
            "    at 75% => move to next tier\n    at 90% => notify role incident_manager \"Acme incident {id} is about to breach\"\n",
        ),
    ]);
    let doc = rebase_refused(&release);
    let status = |head: &str| rebase_entry(&doc, head)["status"].clone();
    assert_eq!(status("replace target P1"), "conflicting");
    assert_eq!(status("add escalation on resolve at 90%"), "obsolete");
    assert_eq!(status("add field cost_centre"), "applying");
    assert_eq!(status("add route sap"), "applying");
    assert_eq!(status("require stage resolved"), "applying");
    let conflict = doc["entries"]
        .as_array()
        .and_then(|e| e.iter().find(|x| x["status"] == "conflicting"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(conflict["before"], "P1: respond 15m, resolve 4h on 24x7");
    assert_eq!(conflict["now"], "P1: respond 20m, resolve 4h on 24x7");
    assert_eq!(conflict["file"], "examples/acme/acme.itsm");
    assert_eq!(doc["summary"]["conflicting"], 1);
    // On the new library the obsolete step is now added twice: the check says so.
    assert!(doc["check"].to_string().contains("overlay-exists"), "{doc}");

    // A release that leaves the client's entries alone: all applying, exit 0.
    let quiet = new_release(&[("\"Incident management\"", "\"Incidents\"")]);
    let onto = quiet.path().display().to_string();
    let out = itsmflow(&[
        "rebase",
        "examples/acme",
        "--from",
        "processes",
        "--onto",
        &onto,
    ]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(
        said.contains("18 applying, 0 conflicting, 0 obsolete"),
        "{said}"
    );
}

/// A release that gives the service desk Acme's team leads and declares a queue of the name
/// Acme renames its desk to: the one entry is obsolete, the rename conflicts.
#[test]
fn rebase_judges_a_clients_queue_entries() {
    let release = library_copy();
    let path = release.path().join("queues.itsm");
    let library = std::fs::read_to_string(&path).expect("read");
    let desk = "queue service_desk \"Service desk\" {\n  tier 1\n  escalates_to second_line\n  members agent\n}\n";
    assert!(library.contains(desk), "{library}");
    let library = library.replacen(
        desk,
        &format!(
            "{}\nqueue helpdesk \"Walk-in helpdesk\" {{\n  tier 1\n  members agent\n}}\n",
            desk.replace("members agent", "members agent, team_lead")
        ),
        1,
    );
    std::fs::write(&path, library).expect("write");
    let doc = rebase_refused(&release);
    let entry = |head: &str| rebase_entry(&doc, head);
    let members = entry("add members team_lead");
    assert_eq!(members["kind"], "queue");
    assert_eq!(members["name"], "service_desk");
    assert_eq!(members["status"], "obsolete");
    let rename = entry("rename to helpdesk");
    assert_eq!(rename["status"], "conflicting");
    assert_eq!(entry("add field cost_centre")["kind"], "process");
    // On the new library, the rename is onto a queue that exists: the check says so.
    assert!(doc["check"].to_string().contains("rename-exists"), "{doc}");
}

/// A release whose office calendar drops King's Day and closes on 4 May under another
/// label: Acme's removal is obsolete, its holiday of that date conflicts.
#[test]
fn rebase_judges_a_clients_calendar_entries() {
    let release = library_copy();
    let path = release.path().join("calendars.itsm");
    let library = std::fs::read_to_string(&path).expect("read");
    let from = "easter+1 \"Easter Monday\", 04-27 \"King's Day\"";
    assert!(library.contains(from), "{library}");
    let library = library.replacen(
        from,
        "easter+1 \"Easter Monday\"\n  holidays 05-04 \"May Day\"",
        1,
    );
    std::fs::write(&path, library).expect("write");
    let doc = rebase_refused(&release);
    let entry = |head: &str| rebase_entry(&doc, head);
    let removed = entry("remove holidays 04-27");
    assert_eq!(removed["kind"], "calendar");
    assert_eq!(removed["name"], "office");
    assert_eq!(removed["status"], "obsolete");
    let added = entry("add holidays 05-04");
    assert_eq!(added["status"], "conflicting");
    assert_eq!(added["before"], Json::Null);
    assert_eq!(added["now"], "holidays 05-04 \"May Day\"");
}

#[test]
fn effective_prints_the_renamed_queue_and_what_follows_it() {
    let out = itsmflow(&["effective", "processes", "examples/acme"]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(
        said.contains("queue helpdesk \"Acme helpdesk\" {\n  tier 1\n  escalates_to second_line\n  members agent, team_lead\n}"),
        "{said}"
    );
    assert!(said.contains("otherwise => helpdesk"), "{said}");
    assert!(
        !said.contains("service_desk"),
        "every reference follows: {said}"
    );
}

/// `rebase examples/acme --from processes --onto RELEASE --format json`, which must find
/// something to report (exit 1): its JSON report.
fn rebase_refused(release: &tempfile::TempDir) -> Json {
    let onto = release.path().display().to_string();
    let out = itsmflow(&[
        "rebase",
        "examples/acme",
        "--from",
        "processes",
        "--onto",
        &onto,
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    serde_json::from_slice(&out.stdout).expect("json")
}

/// The entry of a rebase report whose head is `head`.
fn rebase_entry(doc: &Json, head: &str) -> Json {
    doc["entries"]
        .as_array()
        .and_then(|e| e.iter().find(|x| x["entry"] == head))
        .cloned()
        .unwrap_or_else(|| panic!("no entry {head}: {doc}"))
}

/// The standard library in a directory of its own, to be changed as a new release would.
fn library_copy() -> tempfile::TempDir {
    new_release(&[])
}

/// Edit the copy's incident process.
fn edit_incident(dir: &Path, from: &str, to: &str) {
    let path = dir.join("incident.itsm");
    let text = std::fs::read_to_string(&path).expect("read");
    assert!(text.contains(from), "{from}");
    std::fs::write(&path, text.replacen(from, to, 1)).expect("write");
}

fn acme_tailoring() -> Json {
    let text = std::fs::read_to_string(workspace().join("examples/acme/acme.itsm")).expect("acme");
    json!({ "files": [{ "name": "acme.itsm", "text": text }] })
}

/// Where a payroll incident raised in the tenant goes.
async fn payroll_queue(s: &Server, token: &str, caller: &str) -> Json {
    let (st, created) = s
        .post(
            "/v1/instances",
            token,
            json!({
                "process": "incident",
                "fields": {
                    "title": "Payslips missing",
                    "caller": caller,
                    "service": "payroll",
                    "category": "software",
                    "impact": "medium",
                    "urgency": "medium",
                }
            }),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{created}");
    let id = created["id"].as_i64().expect("id");
    let (st, logged) = s
        .post(&format!("/v1/instances/{id}/actions/log"), token, json!({}))
        .await;
    assert_eq!(st, StatusCode::OK, "{logged}");
    logged["queue"].clone()
}

async fn incident_versions(s: &Server, token: &str) -> usize {
    let (_, versions) = s.get("/v1/definitions/incident", token).await;
    versions["versions"].as_array().map_or(0, Vec::len)
}

/// A tenant keeps its tailoring as files; each start derives its processes from the standard
/// library then in force: a release that leaves the tailoring whole reaches the tenant with the
/// tailoring on top; one that collides with it leaves the tenant on the versions it had, and
/// says why.
async fn a_tenants_tailoring_follows_the_standard_library(db: Db) {
    let library = library_copy();
    let s = Server::start_on(&db, library.path(), &[]);
    let (st, acme) = s
        .post(
            "/v1/tenants",
            &s.admin,
            json!({"name": "acme", "admin": "root"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{acme}");
    let root = acme["secret"].as_str().expect("secret").to_string();
    s.user(&root, "carol", &["agent"]).await;
    let (st, none) = s.get("/v1/tailoring", &root).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{none}");

    let (st, set) = s
        .call(
            reqwest::Method::PUT,
            "/v1/tailoring",
            &root,
            Some(acme_tailoring()),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{set}");
    assert_eq!(incident_versions(&s, &root).await, 2);
    assert_eq!(payroll_queue(&s, &root, "root").await, "acme_sap");

    // A tailoring that does not check changes nothing.
    let mut broken = acme_tailoring();
    let text = broken["files"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .replace("require stage resolved", "remove stage resolved");
    broken["files"][0]["text"] = json!(text);
    let (st, refused) = s
        .call(reqwest::Method::PUT, "/v1/tailoring", &root, Some(broken))
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert!(refused["diagnostics"]
        .to_string()
        .contains("unknown stage `resolved`"));
    let (st, kept) = s.get("/v1/tailoring", &root).await;
    assert_eq!(st, StatusCode::OK, "{kept}");
    assert!(kept["files"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .contains("require stage resolved"));
    assert_eq!(kept["state"]["state"], "applied", "{kept}");
    assert_eq!(kept["updated_by"], "root");
    // Only those who publish may see or set it.
    let carol = s.user(&root, "dave", &["agent"]).await;
    assert_eq!(
        s.get("/v1/tailoring", &carol).await.0,
        StatusCode::FORBIDDEN
    );
    assert!(s.stop().success());

    // A release that leaves Acme's changes whole: Acme gets it, with its tailoring on top.
    edit_incident(library.path(), "\"Incident management\"", "\"Incidents\"");
    let s = Server::start_on(&db, library.path(), &[]);
    assert_eq!(incident_versions(&s, &root).await, 3);
    let (_, v3) = s.get("/v1/definitions/incident/versions/3", &root).await;
    assert_eq!(v3["label"], "Incidents", "{v3}");
    assert_eq!(payroll_queue(&s, &root, "root").await, "acme_sap");
    let (_, state) = s.get("/v1/tailoring", &root).await;
    assert_eq!(state["state"]["state"], "applied", "{state}");
    assert!(s.stop().success());

    // A release that collides with it: Acme stays on version 3 and is told why; the default
    // tenant takes the release.
    edit_incident(
        library.path(),
        "  stage resolved \"Resolved\" {",
        "  stage awaiting_vendor \"Awaiting vendor\"\n  stage resolved \"Resolved\" {",
    );
    edit_incident(
        library.path(),
        "  transition log: new -> triage",
        "  transition log: new -> triage\n  transition vendor_wait: working -> awaiting_vendor by role agent\n  transition vendor_back: awaiting_vendor -> working by role agent",
    );
    let s = Server::start_on(&db, library.path(), &[]);
    assert_eq!(
        incident_versions(&s, &root).await,
        3,
        "Acme keeps the version it had"
    );
    let (_, state) = s.get("/v1/tailoring", &root).await;
    assert_eq!(state["state"]["state"], "not_applied", "{state}");
    assert!(
        state["state"]["diagnostics"]
            .to_string()
            .contains("overlay-exists"),
        "{state}"
    );

    // Dropped: Acme runs the standard process as it is now.
    let (st, dropped) = s
        .call(reqwest::Method::DELETE, "/v1/tailoring", &root, None)
        .await;
    assert_eq!(st, StatusCode::OK, "{dropped}");
    assert_eq!(incident_versions(&s, &root).await, 4);
    assert_ne!(payroll_queue(&s, &root, "root").await, "acme_sap");
    assert_eq!(s.get("/v1/tailoring", &root).await.0, StatusCode::NOT_FOUND);
}
