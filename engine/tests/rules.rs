//! Rules run with what they read in scope: fields, `stage`, `priority` and the priority levels'
//! names, each as documented (docs/language.md, "Rules"), whichever of them a rule names.

use std::sync::Arc;

use itsmflow_dsl::Sources;
use itsmflow_engine::runtime::{Actor, Catalog, Engine, EngineError, SystemClock};
use itsmflow_engine::store::memory::MemoryStore;
use serde_json::{json, Map, Value};

const PROJECT: &str = r#"
role agent

process demo {
  fields {
    impact: enum(high, medium, low) required
    note:   text
    flag:   bool default false
    count:  int default 0
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

fn fields(v: Value) -> Map<String, Value> {
    v.as_object().cloned().expect("object")
}

#[tokio::test]
async fn guards_read_stage_priority_levels_and_fields() {
    let e = engine().await;
    let agent = Actor::new("ann", &["agent"]);

    // P1 with an empty note: refused.
    let urgent = e
        .create(
            "demo",
            &fields(json!({"impact": "high", "note": ""})),
            &agent,
        )
        .await
        .expect("create");
    let err = e
        .perform(urgent.id(), "finish", &Map::new(), None, &agent, None)
        .await
        .expect_err("P1 needs a note");
    assert!(matches!(err, EngineError::GuardFailed { .. }), "{err}");
    // With one: allowed.
    let done = e
        .perform(
            urgent.id(),
            "finish",
            &fields(json!({"note": "called back"})),
            None,
            &agent,
            None,
        )
        .await
        .expect("P1 with a note");
    assert_eq!(done.stage(), "done");

    // P3 (less urgent than P2) needs none.
    let routine = e
        .create(
            "demo",
            &fields(json!({"impact": "low", "note": ""})),
            &agent,
        )
        .await
        .expect("create");
    let done = e
        .perform(routine.id(), "finish", &Map::new(), None, &agent, None)
        .await
        .expect("P3 with no note");
    assert_eq!(done.stage(), "done");
}

#[tokio::test]
async fn computed_fields_read_other_fields_and_themselves() {
    let e = engine().await;
    let agent = Actor::new("ann", &["agent"]);
    let plain = e
        .create("demo", &fields(json!({"impact": "medium"})), &agent)
        .await
        .expect("create");
    let flagged = e
        .create(
            "demo",
            &fields(json!({"impact": "medium", "flag": true})),
            &agent,
        )
        .await
        .expect("create");
    let count = |view: &itsmflow_engine::runtime::InstanceView| {
        view.field("count").and_then(|v| v.as_i64())
    };
    assert_eq!(count(&plain), Some(1));
    assert_eq!(count(&flagged), Some(10));
}
