//! Explaining a ticket: which table cell and routing rule apply (`priority_cell`,
//! `routing_rule`, the functions the runtime decides with), and `Engine::explain` on virtual
//! time: clock targets, calendars and pauses, and why actions are refused.

use std::sync::Arc;

use chrono::{TimeDelta, TimeZone, Utc};
use itsmflow_engine::model::{Process, Value};
use itsmflow_engine::runtime::explain::{
    priority_cell, routing_rule, Fields, PrioritySource, QueueSource, TargetSource,
};
use itsmflow_engine::runtime::logic::{priority_of, queue_for};
use itsmflow_engine::runtime::{Actor, Catalog, Engine, ManualClock};
use itsmflow_engine::store::memory::MemoryStore;
use serde_json::{json, Map};
use support::{fields, processes};

mod support;

fn project() -> itsmflow_engine::model::Project {
    let checked = itsmflow_engine::check(&processes());
    checked.project.expect("the standard processes check")
}

/// The value index of `value` in the enum field `name`.
fn value(p: &Process, name: &str, value: &str) -> Value {
    let f = p.field(name).expect("field");
    match &p.fields[f.index()].ty {
        itsmflow_engine::model::FieldType::Enum(values) => {
            Value::Enum(values.iter().position(|v| v == value).expect("enum value") as u32)
        }
        other => panic!("`{name}` is {other}"),
    }
}

fn incident_fields(p: &Process, set: &[(&str, &str)]) -> Fields {
    let mut fields: Fields = vec![None; p.fields.len()];
    for (name, v) in set {
        let f = p.field(name).expect("field");
        fields[f.index()] = Some(value(p, name, v));
    }
    fields
}

#[test]
fn priority_cell_is_row_major_over_the_fields_the_table_reads() {
    let project = project();
    let p = project.process("incident").expect("incident");
    // impact high, urgency high: the first cell; impact medium, urgency low: row 2, column 3.
    let high = incident_fields(p, &[("impact", "high"), ("urgency", "high")]);
    assert_eq!(priority_cell(p, &high), Some(0));
    let medium_low = incident_fields(p, &[("impact", "medium"), ("urgency", "low")]);
    assert_eq!(priority_cell(p, &medium_low), Some(5));
    let table = p.priority_table.as_ref().expect("table");
    assert_eq!(
        Some(table.cells[5]),
        priority_of(p, &medium_low),
        "the cell is the one the priority comes from"
    );
    // A field the table reads unset: no cell, no priority.
    let unset = incident_fields(p, &[("impact", "high")]);
    assert_eq!(priority_cell(p, &unset), None);
    assert_eq!(priority_of(p, &unset), None);
}

#[test]
fn priority_cell_without_a_table_is_none() {
    let project = support::checked_project(
        "t.itsm",
        "queue desk\nprocess plain { fields { a: text } stage open initial { queue desk } stage done final transition finish: open -> done }",
    );
    let p = project.process("plain").expect("plain");
    assert_eq!(priority_cell(p, &vec![None]), None);
}

#[test]
fn routing_rule_is_the_first_that_holds_and_queue_for_agrees() {
    let project = project();
    let p = project.process("incident").expect("incident");
    let triage = p.stage("triage").expect("triage");
    let cases = [
        // P1 goes to the major incident team whatever the category.
        (("network.wifi", "high", "high"), 0),
        (("network.wifi", "low", "low"), 1),
        (("software", "high", "low"), 2),
        (("software", "low", "low"), 3),
    ];
    for ((category, impact, urgency), rule) in cases {
        let f = incident_fields(
            p,
            &[
                ("category", category),
                ("impact", impact),
                ("urgency", urgency),
            ],
        );
        let priority = priority_of(p, &f);
        assert_eq!(
            routing_rule(p, triage, &f, priority),
            Some(rule),
            "{category} {impact} {urgency}"
        );
        assert_eq!(
            queue_for(p, triage, &f, priority),
            Some(p.routing[rule].queue),
            "queue_for uses the same rule"
        );
    }
    assert_eq!(
        p.routing[1].text,
        "network: when category in (network.*) => network"
    );
    assert_eq!(p.routing[3].text, "otherwise => service_desk");
    // A stage that does not queue by routing has no routing rule.
    let new = p.stage("new").expect("new");
    let f = incident_fields(p, &[("category", "network")]);
    assert_eq!(routing_rule(p, new, &f, None), None);
}

#[tokio::test]
async fn explain_names_the_cell_the_rule_the_target_the_pauses_and_the_refusals() {
    // A Monday, in office hours.
    let t0 = Utc
        .with_ymd_and_hms(2026, 11, 2, 9, 0, 0)
        .single()
        .expect("time");
    let clock = Arc::new(ManualClock::new(t0));
    let catalog = Arc::new(Catalog::default());
    let e = Engine::open(MemoryStore::new(catalog.clone()), catalog, clock.clone())
        .await
        .expect("open");
    e.publish(&processes()).await.expect("publish");
    let agent = Actor::new("alice", &["agent"]);
    let input = fields(
        json!({"title": "Wifi down", "caller": "carol", "service": "email",
        "category": "network.wifi", "impact": "medium", "urgency": "low"}),
    );
    let id = e
        .create("incident", &input, &agent)
        .await
        .expect("create")
        .id();
    let none = Map::new();
    for action in ["log", "accept", "ask"] {
        e.perform(id, action, &none, None, &agent, None)
            .await
            .expect(action);
    }
    clock.advance(TimeDelta::hours(2));
    e.perform(id, "answer", &none, None, &agent, None)
        .await
        .expect("answer");

    let x = e
        .explain(id, &Actor::new("bob", &[]))
        .await
        .expect("explain");
    assert_eq!(x.stage, "working");
    assert_eq!(x.priority.source, PrioritySource::Table);
    assert_eq!(x.priority.cell, Some(5));
    assert_eq!(x.priority.row.as_deref(), Some("medium"));
    assert_eq!(x.priority.column.as_deref(), Some("low"));
    assert_eq!(x.priority.priority.as_deref(), Some("P4"));
    assert_eq!(x.queue.source, QueueSource::Routing);
    assert_eq!(x.queue.rule, Some(2));
    assert_eq!(x.queue.queue.as_deref(), Some("network"));

    let resolve = x
        .clocks
        .iter()
        .find(|c| c.clock.clock == itsmflow_engine::model::ClockKind::Resolve)
        .expect("resolve clock");
    assert_eq!(resolve.clock.target, "5d");
    assert_eq!(resolve.calendar, "office");
    assert_eq!(resolve.target_from, TargetSource::Priority);
    assert_eq!(resolve.pauses.len(), 1, "{:?}", resolve.pauses);
    assert_eq!(resolve.pauses[0].stage, "awaiting_caller");
    assert_eq!(resolve.pauses[0].seconds, 2 * 3600);
    assert_eq!(resolve.pauses[0].business_seconds, 2 * 3600);
    assert!(resolve.pauses[0].until.is_some());

    // bob holds no role: `resolve` needs one, and a resolution.
    let resolve_action = x
        .actions
        .items
        .iter()
        .find(|a| a.action == "resolve")
        .expect("resolve");
    assert!(!resolve_action.available);
    let kinds: Vec<&str> = resolve_action.refusals.iter().map(|r| r.kind).collect();
    assert_eq!(kinds, ["who", "fields"]);
    assert_eq!(resolve_action.refusals[1].fields, ["resolution"]);
    // Only the actions out of the current stage are listed.
    assert!(x.actions.items.iter().all(|a| a.action != "close"));

    // The agent may ask the caller; explaining wrote nothing.
    let version = e.instance(id).await.expect("read").version();
    let x = e.explain(id, &agent).await.expect("explain");
    let ask = x
        .actions
        .items
        .iter()
        .find(|a| a.action == "ask")
        .expect("ask");
    assert!(ask.available, "{:?}", ask.refusals);
    assert_eq!(e.instance(id).await.expect("read").version(), version);
}
