use itsmflow_dsl::ast::FileId;
use itsmflow_dsl::parse;

use super::*;

const BASE: &str = r#"
calendar office "Office" {
  timezone "Europe/Amsterdam"
  hours mon-fri 08:00-17:00
}
queue desk { tier 1 }
queue network { tier 2 }
role agent
role manager "Manager"

process incident "Incident" {
  fields {
    impact:  enum(high, low) required
    urgency: enum(high, low) required
    office:  text
  }
  links {
    caused_by: one problem
  }
  priorities P1, P2, P3
  priority from impact, urgency {
    high => P1, P2
    low  => P2, P3
  }
  targets on office {
    P1: respond 15m, resolve 4h on 24x7
    P2: respond 1h, resolve 1d
  }
  stage new initial
  stage triage "Triage" {
    queue by routing
  }
  stage done final
  transition log: new -> triage
  transition close: triage -> done by role agent
  routing {
    major: when priority == P1 => network
    network: when impact == high => network
    otherwise => desk
  }
  escalation on resolve {
    at 50% => notify role agent
  }
  approval in triage {
    when impact == high => any 1 of role manager
    otherwise => none
    on approve => done
  }
  rule noted when transition close {
    true
  }
}
"#;

fn file(text: &str) -> ast::File {
    let parsed = parse(FileId(0), text);
    assert!(!parsed.has_errors(), "{:?}", parsed.diagnostics);
    parsed.file
}

/// The diff from `BASE` to `BASE` with each `(from, to)` replaced once.
fn diff_to(edits: &[(&str, &str)]) -> Diff {
    let mut new = BASE.to_string();
    for (from, to) in edits {
        assert!(new.contains(from), "`{from}` is not in the base");
        new = new.replacen(from, to, 1);
    }
    diff(&[file(BASE)], &[file(&new)])
}

/// The plan's change lines (without the summary and blank lines).
fn lines(d: &Diff) -> Vec<String> {
    let text = d.to_text();
    text.lines()
        .filter(|l| !l.is_empty() && !l.contains(" added, "))
        .map(str::to_string)
        .collect()
}

#[test]
fn the_same_project_has_no_differences_however_it_is_laid_out() {
    let relaid = BASE
        .replace("  ", "    ")
        .replace("queue desk { tier 1 }", "queue desk {\n tier 1\n}");
    let d = diff(&[file(BASE)], &[file(&relaid)]);
    assert!(d.is_empty(), "{d:?}");
    assert_eq!(d.to_text(), "no differences\n");
    assert_eq!(d.summary, Summary::default());
}

#[test]
fn files_split_differently_are_the_same_project() {
    let at = BASE.find("queue desk").expect("a queue in the base");
    let (calendars, rest) = BASE.split_at(at);
    assert!(calendars.contains("calendar office"));
    let d = diff(&[file(BASE)], &[file(rest), file(calendars)]);
    assert!(d.is_empty(), "{d:?}");
}

#[test]
fn fields_added_removed_and_changed() {
    let d = diff_to(&[
        (
            "    office:  text\n",
            "    cost_centre: text default \"general\"\n",
        ),
        (
            "urgency: enum(high, low) required",
            "urgency: enum(high, low) default low",
        ),
    ]);
    assert_eq!(
        lines(&d),
        [
            "process incident",
            "  ~ field urgency: required yes -> no; default none -> low",
            "  + field cost_centre: text default \"general\"",
            "  - field office: text",
        ]
    );
    assert_eq!(
        d.summary,
        Summary {
            added: 1,
            removed: 1,
            changed: 1,
            moved: 0
        }
    );
    let d = diff_to(&[("office:  text", "office:  int")]);
    assert_eq!(lines(&d)[1], "  ~ field office: type text -> int");
}

#[test]
fn a_process_label_and_its_links() {
    let d = diff_to(&[
        (
            "process incident \"Incident\"",
            "process incident \"Incidents\"",
        ),
        ("caused_by: one problem", "caused_by: many problem"),
    ]);
    assert_eq!(
        lines(&d),
        [
            "process incident",
            "  ~ label: \"Incident\" -> \"Incidents\"",
            "  ~ link caused_by: one problem -> many problem",
        ]
    );
}

#[test]
fn targets_by_priority_and_their_calendar() {
    let d = diff_to(&[
        ("targets on office", "targets on acme_hours"),
        (
            "P1: respond 15m, resolve 4h on 24x7",
            "P1: respond 10m, resolve 2h on 24x7",
        ),
        ("    P2: respond 1h, resolve 1d\n", ""),
    ]);
    assert_eq!(
        lines(&d),
        [
            "process incident",
            "  ~ targets calendar: office -> acme_hours",
            "  ~ target P1: respond 15m -> 10m; resolve 4h -> 2h",
            "  - target P2: respond 1h, resolve 1d",
        ]
    );
    let changes = &d.processes[0].changes;
    assert_eq!(changes[0].old.as_deref(), Some("targets on office"));
    assert_eq!(
        changes[1].new.as_deref(),
        Some("target P1: respond 10m, resolve 2h on 24x7")
    );
    let d = diff_to(&[("resolve 4h on 24x7", "resolve 4h")]);
    assert_eq!(lines(&d)[1], "  ~ target P1: calendar 24x7 -> none");
}

#[test]
fn priority_levels_and_table_cells() {
    let d = diff_to(&[
        ("priorities P1, P2, P3", "priorities P1, P2, P3, P4"),
        ("high => P1, P2", "high => P1, P1"),
    ]);
    assert_eq!(
        lines(&d),
        [
            "process incident",
            "  ~ priorities: P1, P2, P3 -> P1, P2, P3, P4",
            "  ~ priority impact=high, urgency=low: P2 -> P1",
        ]
    );
    let cell = &d.processes[0].changes[1];
    assert_eq!(cell.kind, Kind::PriorityCell);
    assert_eq!(cell.old.as_deref(), Some("priority high, low => P2"));

    // A row written cell by cell is the same table.
    let d = diff_to(&[("high => P1, P2", "high, high => P1\n    high, low => P2")]);
    assert!(d.is_empty(), "{d:?}");

    // Read from other fields: the whole table changed.
    let d = diff_to(&[(
        "priority from impact, urgency {\n    high => P1, P2\n    low  => P2, P3\n  }",
        "priority from impact {\n    high => P1\n    low => P3\n  }",
    )]);
    assert_eq!(
        lines(&d)[1],
        "  ~ priority table: from impact, urgency -> impact"
    );
}

#[test]
fn stages_added_removed_and_changed_part_by_part() {
    let d = diff_to(&[
        (
            "stage triage \"Triage\" {\n    queue by routing\n  }",
            "stage triage \"Sorting\" {\n    queue desk\n    pauses resolve\n  }\n  \
             stage awaiting_vendor \"Awaiting vendor\" {\n    pauses resolve\n  }",
        ),
        ("stage done final", "stage done"),
    ]);
    assert_eq!(
        lines(&d),
        [
            "process incident",
            "  ~ stage triage: label \"Triage\" -> \"Sorting\"; queue by routing -> desk; \
             pauses none -> resolve",
            "  + stage awaiting_vendor \"Awaiting vendor\" {",
            "      pauses resolve",
            "    }",
            "  ~ stage done: kind final -> none",
        ]
    );
    let stage = &d.processes[0].changes[0];
    assert_eq!(
        stage.new.as_deref(),
        Some("stage triage \"Sorting\" {\n  queue desk\n  pauses resolve\n}")
    );
}

#[test]
fn transitions_clause_by_clause() {
    let d = diff_to(&[
        (
            "transition close: triage -> done by role agent",
            "transition close \"Close\": triage, new -> done by role manager or after 3d",
        ),
        ("  transition log: new -> triage\n", ""),
    ]);
    assert_eq!(
        lines(&d),
        [
            "process incident",
            "  ~ transition close: label none -> \"Close\"; from triage -> triage, new; \
             by role agent -> role manager; after none -> 3d",
            "  - transition log: new -> triage",
        ]
    );
}

#[test]
fn routes_added_in_place_moved_and_changed() {
    let d = diff_to(&[(
        "    major: when priority == P1 => network\n    network: when impact == high => network\n",
        "    network: when impact == high => desk\n    \
         sap: when urgency == high => desk\n    major: when priority == P1 => network\n",
    )]);
    assert_eq!(
        lines(&d),
        [
            "process incident",
            "  ~ route network: queue network -> desk",
            "  + route sap: when urgency == high => desk before major",
            "  ~ route major: moved before otherwise (was before network)",
        ]
    );
    let changes = &d.processes[0].changes;
    assert_eq!(changes[1].place.as_deref(), Some("before major"));
    assert_eq!(changes[2].change, ChangeKind::Moved);
    assert_eq!(d.summary.moved, 1);
    // An unchanged order is no move, whatever is added around it.
    let d = diff_to(&[(
        "    otherwise => desk",
        "    vip: when urgency == high => desk\n    otherwise => desk",
    )]);
    assert_eq!(
        lines(&d),
        [
            "process incident",
            "  + route vip: when urgency == high => desk before otherwise",
        ]
    );
}

#[test]
fn escalation_steps_by_clock_and_threshold() {
    let d = diff_to(&[(
        "    at 50% => notify role agent\n",
        "    at 50% => notify role manager\n    at 90% => raise priority\n",
    )]);
    assert_eq!(
        lines(&d),
        [
            "process incident",
            "  ~ escalation resolve at 50%: notify role agent -> notify role manager",
            "  + escalation on resolve at 90% => raise priority",
        ]
    );
    let d = diff_to(&[(
        "  escalation on resolve {\n    at 50% => notify role agent\n  }\n",
        "",
    )]);
    assert_eq!(
        lines(&d)[1],
        "  - escalation on resolve at 50% => notify role agent"
    );
}

#[test]
fn approvals_by_stage() {
    let d = diff_to(&[
        ("any 1 of role manager", "any 2 of role manager"),
        (
            "on approve => done",
            "on approve => done\n    remind after 1d",
        ),
    ]);
    assert_eq!(
        lines(&d),
        [
            "process incident",
            "  ~ approval triage: rules when impact == high => any 1 of role manager | otherwise \
             => none -> when impact == high => any 2 of role manager | otherwise => none; \
             remind none -> after 1d",
        ]
    );
}

#[test]
fn rules_by_name_with_their_bodies() {
    let d = diff_to(&[("    true\n", "    let a = 1;\n    a == 1\n")]);
    assert_eq!(
        lines(&d),
        ["process incident", "  ~ rule noted: body changed"]
    );
    let rule = &d.processes[0].changes[0];
    assert_eq!(rule.details[0].new.as_deref(), Some("let a = 1;\na == 1"));
    let d = diff_to(&[("when transition close", "when transition log")]);
    assert_eq!(
        lines(&d)[1],
        "  ~ rule noted: target when transition close -> when transition log"
    );
}

#[test]
fn calendars_queues_roles_and_whole_processes() {
    let d = diff_to(&[
        ("hours mon-fri 08:00-17:00", "hours mon-fri 07:00-19:00"),
        ("queue network { tier 2 }", "queue network { tier 3 }"),
        ("role manager \"Manager\"\n", "role lead\n"),
        ("process incident \"Incident\"", "process problem"),
    ]);
    assert_eq!(
        lines(&d)[..5],
        [
            "~ calendar office: hours mon-fri 08:00-17:00 -> 07:00-19:00",
            "~ queue network: tier 2 -> 3",
            "+ role lead",
            "- role manager \"Manager\"",
            "+ process problem {",
        ]
    );
    let removed = d
        .items
        .iter()
        .find(|c| c.kind == Kind::Process && c.change == ChangeKind::Removed);
    assert!(
        removed.is_some_and(|c| c.name == "incident"
            && c.old
                .as_deref()
                .is_some_and(|t| t.contains("stage done final"))),
        "{d:?}"
    );
    assert_eq!(d.only_process("incident").items.len(), 1);
}

#[test]
fn only_one_process_and_the_json_shape() {
    let d = diff_to(&[
        ("queue network { tier 2 }", "queue network { tier 3 }"),
        ("office:  text", "office:  int"),
    ]);
    assert_eq!(d.summary.changed, 2);
    let json = serde_json::to_value(&d).unwrap_or_default();
    assert_eq!(json["processes"][0]["name"], "incident");
    let change = &json["processes"][0]["changes"][0];
    assert_eq!(change["kind"], "field");
    assert_eq!(change["name"], "office");
    assert_eq!(change["change"], "changed");
    assert_eq!(change["old"], "field office: text");
    assert_eq!(change["new"], "field office: int");
    assert_eq!(change["details"][0]["aspect"], "type");
    assert_eq!(json["items"][0]["kind"], "queue");
    assert_eq!(json["summary"]["changed"], 2);

    let only = d.only_process("incident");
    assert!(only.items.is_empty());
    assert_eq!(only.summary.changed, 1);
    assert!(diff_to(&[("tier 2", "tier 3")])
        .only_process("incident")
        .is_empty());
}

#[test]
fn stage_attributes_by_keyword_with_repeated_ones_together() {
    let d = diff_to(&[(
        "    queue by routing\n",
        "    queue by routing\n    notify role agent\n    notify caller \"Hello\"\n    \
         every 30m => notify role manager\n    checklist {\n      laptop \"Laptop imaged\"\n    }\n",
    )]);
    assert_eq!(
        lines(&d),
        [
            "process incident",
            "  ~ stage triage: notify none -> role agent | caller \"Hello\"; \
             every none -> 30m => notify role manager; \
             checklist none -> { laptop \"Laptop imaged\" }",
        ]
    );
}

#[test]
fn services_entry_by_entry_and_their_items() {
    let service = "service email \"E-mail\" {\n  owner role manager\n  queues desk\n  \
                   item mailbox \"Mailbox\" {\n    process incident\n  }\n}\n";
    let old = format!("{BASE}{service}");
    let new = format!(
        "{BASE}{}",
        service
            .replace("queues desk", "queues desk, network")
            .replace("\"Mailbox\"", "\"Shared mailbox\"")
    );
    let d = diff(&[file(&old)], &[file(&new)]);
    assert_eq!(
        lines(&d),
        [
            "~ service email: queues desk -> desk, network; \
             item mailbox \"Mailbox\" { process incident } -> \"Shared mailbox\" { process incident }",
        ]
    );
}
