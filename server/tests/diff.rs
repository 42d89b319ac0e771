//! `itsmflow diff` (issue 22): the standard processes against a client's, and two versions of
//! a project, as a plan of what changed, entry by entry; in text and JSON; and its exit codes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value as Json;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .to_path_buf()
}

fn itsmflow(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_itsmflow"))
        .args(args)
        .current_dir(workspace())
        .output()
        .expect("run itsmflow")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn both(out: &Output) -> String {
    format!("{}{}", stdout(out), String::from_utf8_lossy(&out.stderr))
}

/// Exactly Acme's changes (examples/acme/acme.itsm), as the plan prints them.
const ACME_PLAN: &str = r#"process change
  + field service: service
  - stage rejected "Rejected" final
  ~ approval approval: rule payroll none -> payroll: when service == payroll and category == 1 => any 1 of role change_manager, then any 1 of role service_owner; on reject rejected -> assessment

process incident
  + field cost_centre: text default "general"
  ~ targets calendar: office -> acme_hours
  ~ target P1: respond 15m -> 10m; resolve 4h -> 2h
  + stage awaiting_vendor "Awaiting vendor" {
      pauses resolve
    }
  + transition to_vendor "Wait for the vendor": working -> awaiting_vendor by role agent
  + transition from_vendor "The vendor answered": awaiting_vendor -> working by role agent
  + route sap: when service == payroll => acme_sap before network
  + escalation on resolve at 90% => notify role incident_manager "Acme incident {id} is about to breach"

+ calendar acme_hours "Acme office hours" {
    timezone "Europe/London"
    hours mon-fri 07:00-19:00
    hours sat, sun closed
    holidays 01-01 "New Year's Day", 12-25 "Christmas Day", 12-26 "Boxing Day"
    holidays easter-2 "Good Friday", easter+1 "Easter Monday"
  }
~ calendar office: holiday 05-04 none -> "Early May bank holiday"; holiday 04-27 "King's Day" -> none
+ queue acme_sap "Acme SAP team" {
    tier 2
    escalates_to vendor
    members agent
  }
~ queue helpdesk: name service_desk -> helpdesk; label "Service desk" -> "Acme helpdesk"; members agent -> agent, team_lead

9 added, 1 removed, 5 changed, 0 moved
"#;

#[test]
fn the_standard_processes_against_acme_show_exactly_acmes_changes() {
    let out = itsmflow(&["diff", "processes", "--to", "processes", "examples/acme"]);
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    assert_eq!(stdout(&out), ACME_PLAN);
}

#[test]
fn the_same_changes_as_json() {
    let out = itsmflow(&[
        "diff",
        "processes",
        "--to",
        "processes",
        "examples/acme",
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    let json: Json = serde_json::from_str(&stdout(&out)).expect("one JSON document");
    assert_eq!(
        json["summary"],
        serde_json::json!({"added": 9, "removed": 1, "changed": 5, "moved": 0})
    );
    let processes = json["processes"].as_array().expect("processes");
    assert_eq!(processes.len(), 2, "{json}");
    assert_eq!(processes[0]["name"], "change");
    // The extra approval rule, by its name.
    let approval = &processes[0]["changes"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["kind"] == "approval"))
        .cloned()
        .unwrap_or_default();
    assert!(
        approval["details"]
            .to_string()
            .contains("\"aspect\":\"rule payroll\""),
        "{approval}"
    );
    assert_eq!(processes[1]["name"], "incident");
    let changes = processes[1]["changes"].as_array().expect("changes");
    let find = |kind: &str, name: &str| {
        changes
            .iter()
            .find(|c| c["kind"] == kind && c["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {kind} {name}: {json}"))
    };
    let field = find("field", "cost_centre");
    assert_eq!(field["change"], "added");
    assert_eq!(field["old"], Json::Null);
    assert_eq!(field["new"], "field cost_centre: text default \"general\"");
    let calendar = find("targets_calendar", "");
    assert_eq!(calendar["change"], "changed");
    assert_eq!(calendar["details"][0]["old"], "office");
    assert_eq!(calendar["details"][0]["new"], "acme_hours");
    let p1 = find("target", "P1");
    assert_eq!(p1["old"], "target P1: respond 15m, resolve 4h on 24x7");
    assert_eq!(p1["new"], "target P1: respond 10m, resolve 2h on 24x7");
    assert_eq!(
        p1["details"],
        serde_json::json!([
            {"aspect": "respond", "old": "15m", "new": "10m"},
            {"aspect": "resolve", "old": "4h", "new": "2h"},
        ])
    );
    assert_eq!(find("stage", "awaiting_vendor")["change"], "added");
    assert_eq!(find("transition", "to_vendor")["change"], "added");
    assert_eq!(find("transition", "from_vendor")["change"], "added");
    assert_eq!(find("route", "sap")["place"], "before network");
    assert_eq!(find("escalation", "resolve at 90%")["change"], "added");
    let items: Vec<(String, String, String)> = json["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|c| {
            let s = |k: &str| c[k].as_str().unwrap_or_default().to_string();
            (s("kind"), s("name"), s("change"))
        })
        .collect();
    assert_eq!(
        items,
        [
            ("calendar".into(), "acme_hours".into(), "added".into()),
            ("calendar".into(), "office".into(), "changed".into()),
            ("queue".into(), "acme_sap".into(), "added".into()),
            ("queue".into(), "helpdesk".into(), "changed".into()),
        ]
    );
    // The renamed service desk is one change, its name among the details: the routes and
    // services that name it follow the rename and are no change of their own.
    let helpdesk = json["items"]
        .as_array()
        .and_then(|i| i.iter().find(|c| c["name"] == "helpdesk"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        helpdesk["details"][0],
        serde_json::json!({"aspect": "name", "old": "service_desk", "new": "helpdesk"})
    );
}

#[test]
fn identical_projects_have_no_differences() {
    let out = itsmflow(&["diff", "processes", "--to", "processes"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert_eq!(stdout(&out), "no differences\n");
    // Acme's changes leave the problem process alone.
    let out = itsmflow(&[
        "diff",
        "processes",
        "--to",
        "processes",
        "examples/acme",
        "--process",
        "problem",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert_eq!(stdout(&out), "no differences\n");
}

const SMALL: &str = r#"queue desk
queue network {
  tier 2
}
role agent

process ticket {
  fields {
    impact:  enum(high, low) required
    urgency: enum(high, low) required
  }
  priorities P1, P2, P3
  priority from impact, urgency {
    high => P1, P2
    low  => P2, P3
  }
  targets on 24x7 {
    P1: respond 1h, resolve 4h
    P2: respond 4h, resolve 1d
    P3: respond 1d, resolve 5d
  }
  stage new initial {
    queue by routing
  }
  stage done final
  transition finish: new -> done by role agent
  routing {
    urgent: when priority == P1 => network
    high: when impact == high => desk
    otherwise => desk
  }
}
"#;

/// A project of one file in a new temporary directory.
fn project(text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary directory");
    std::fs::write(dir.path().join("ticket.itsm"), text).expect("write the project");
    dir
}

fn path(dir: &tempfile::TempDir) -> &str {
    dir.path().to_str().expect("a UTF-8 path")
}

#[test]
fn two_versions_of_a_project_a_priority_cell_and_a_moved_route() {
    let before = project(SMALL);
    let after = project(&SMALL.replace("high => P1, P2", "high => P1, P1").replace(
        "    urgent: when priority == P1 => network\n    high: when impact == high => desk\n",
        "    high: when impact == high => desk\n    urgent: when priority == P1 => network\n",
    ));
    let out = itsmflow(&["check", "--deny-warnings", path(&before)]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));

    let out = itsmflow(&["diff", path(&before), "--to", path(&after)]);
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    assert_eq!(
        stdout(&out),
        "process ticket\n  \
         ~ priority impact=high, urgency=low: P2 -> P1\n  \
         ~ route urgent: moved before otherwise (was before high)\n\n\
         0 added, 0 removed, 1 changed, 1 moved\n"
    );
    // And back: the same changes, the other way round.
    let out = itsmflow(&["diff", path(&after), "--to", path(&before)]);
    assert!(
        stdout(&out).contains("~ priority impact=high, urgency=low: P1 -> P2"),
        "{}",
        both(&out)
    );
}

#[test]
fn a_side_that_does_not_check_is_trouble_not_a_difference() {
    let good = project(SMALL);
    let broken = project(&SMALL.replace("new -> done", "new -> nowhere"));
    let out = itsmflow(&["diff", path(&good), "--to", path(&broken)]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(stdout(&out).is_empty(), "{}", both(&out));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("error: the new project does not check") && said.contains("nowhere"),
        "{said}"
    );

    let out = itsmflow(&["diff", "processes", "--to", "no/such/dir"]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    let out = itsmflow(&[
        "diff",
        "processes",
        "--to",
        "processes",
        "--process",
        "nope",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(both(&out).contains("no process `nope`"), "{}", both(&out));
    let out = itsmflow(&[
        "diff",
        "processes",
        "--to",
        "processes",
        "--client",
        "globex",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(both(&out).contains("client `globex`"), "{}", both(&out));
}
