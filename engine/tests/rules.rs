//! Rules run with what they read in scope: fields, `stage`, `priority` and the priority levels'
//! names, each as documented (docs/language.md, "Rules"), whichever of them a rule names.

use std::sync::Arc;

use itsmflow_dsl::Sources;
use itsmflow_engine::runtime::{
    Actor, Catalog, Engine, EngineError, InstanceId, InstanceView, SystemClock,
};
use itsmflow_engine::store::memory::MemoryStore;
use serde_json::{json, Value};
use support::fields;

mod support;

const PROJECT: &str = r#"
role agent

process demo {
  fields {
    impact: enum(high, medium, low) required
    note:   text
    flag:   bool required default false
    count:  int required default 0
  }

  priorities P1, P2, P3

  priority from impact {
    high   => P1
    medium => P2
    low    => P3
  }

  stage open "Open" initial
  stage done "Done" final

  transition finish: open -> done by role agent

  // Urgent tickets close only with a note, and only from `open`; the word "flag" in this
  // string is not a read.
  rule urgent_need_notes when transition finish {
    let said = "flag";
    stage == "open" && (priority > P2 || note != "") && said.len() == 4
  }

  rule counted computes count {
    if flag { count + 10 } else { count + 1 }
  }
}
"#;

async fn engine() -> Engine<MemoryStore> {
    let catalog = Arc::new(Catalog::default());
    let e = Engine::open(
        MemoryStore::new(catalog.clone()),
        catalog,
        Arc::new(SystemClock),
    )
    .await
    .expect("open");
    let mut sources = Sources::new();
    sources.add("demo.itsm", PROJECT);
    e.publish(&sources).await.expect("publish");
    e
}

fn agent() -> Actor {
    Actor::new("ann", &["agent"])
}

/// A `demo` ticket with these fields.
async fn create(e: &Engine<MemoryStore>, with: Value) -> InstanceView {
    e.create("demo", &fields(with), &agent())
        .await
        .expect("create")
}

/// Perform `finish` on the ticket, with these fields.
async fn finish(
    e: &Engine<MemoryStore>,
    id: InstanceId,
    with: Value,
) -> Result<InstanceView, EngineError> {
    e.perform(id, "finish", &fields(with), None, &agent(), None)
        .await
}

#[tokio::test]
async fn guards_read_stage_priority_levels_and_fields() {
    let e = engine().await;

    // P1 with an empty note: refused.
    let urgent = create(&e, json!({"impact": "high", "note": ""})).await;
    let err = finish(&e, urgent.id(), json!({}))
        .await
        .expect_err("P1 needs a note");
    assert!(matches!(err, EngineError::GuardFailed { .. }), "{err}");
    // With one: allowed.
    let done = finish(&e, urgent.id(), json!({"note": "called back"}))
        .await
        .expect("P1 with a note");
    assert_eq!(done.stage(), "done");

    // P3 (less urgent than P2) needs none.
    let routine = create(&e, json!({"impact": "low", "note": ""})).await;
    let done = finish(&e, routine.id(), json!({}))
        .await
        .expect("P3 with no note");
    assert_eq!(done.stage(), "done");
}

#[tokio::test]
async fn computed_fields_read_other_fields_and_themselves() {
    let e = engine().await;
    let plain = create(&e, json!({"impact": "medium"})).await;
    let flagged = create(&e, json!({"impact": "medium", "flag": true})).await;
    let count = |view: &InstanceView| view.field("count").and_then(|v| v.as_i64());
    assert_eq!(count(&plain), Some(1));
    assert_eq!(count(&flagged), Some(10));
}
