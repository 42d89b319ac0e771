//! A database written by an earlier version opens: a project published before checks were
//! added that it fails (a `spawns ... as` naming a link kind it does not declare, a rule that
//! could fail at run time) is loaded again as published, and its tickets run on; a new publish
//! of the same text is refused. On a real SQLite file, reopened.

use std::sync::Arc;

use chrono::Utc;
use itsmflow_engine::runtime::catalog::{process_hash, ProjectSource};
use itsmflow_engine::runtime::{Actor, Catalog, Engine, EngineError, SystemClock};
use itsmflow_engine::store::sqlite::SqliteStore;
use itsmflow_engine::store::{NewDefinition, Store};
use serde_json::{json, Map};
use support::{fields, Place};

mod support;

/// As an earlier version accepted it: `as caused_by` was any name, and `note.len()` on an
/// optional field was not checked.
const OLD: &str = r#"
process incident {
  fields {
    title: text required
    note:  text
  }
  stage open initial
  stage done final
  transition raise: open -> open spawns problem as caused_by
  transition finish: open -> done
  rule noted when transition finish {
    note.len() > 0
  }
}

process problem {
  fields {
    title: text required
  }
  stage open initial
  stage done final
  transition finish: open -> done
}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_from_an_earlier_version_opens() {
    let place = Place::new("sqlite").await;
    let Place::Sqlite(path) = &place else {
        unreachable!()
    };
    // Written as an earlier version did: the project's source and its versions, as they were.
    let source = ProjectSource {
        files: vec![("old.itsm".to_string(), OLD.to_string())],
    };
    let hash = source.hash();
    let store = SqliteStore::open(path, Arc::new(Catalog::default()))
        .await
        .expect("sqlite");
    let versions: Vec<NewDefinition> = ["incident", "problem"]
        .into_iter()
        .map(|p| NewDefinition {
            process: p.to_string(),
            version: 1,
            hash: process_hash(&hash, p),
        })
        .collect();
    store
        .save_definitions(&hash, &source, &versions, Utc::now())
        .await
        .expect("save");
    drop(store);

    let catalog = Arc::new(Catalog::default());
    let store = SqliteStore::open(path, catalog.clone())
        .await
        .expect("sqlite");
    let e = Engine::open(store, catalog, Arc::new(SystemClock))
        .await
        .expect("the earlier project loads as published");
    let me = Actor::new("ann", &[]);
    let i = e
        .create("incident", &fields(json!({"title": "Mail down"})), &me)
        .await
        .expect("create");
    // It runs as it did: the spawn links through its (undeclared) kind.
    e.perform(i.id(), "raise", &Map::new(), None, &me, None)
        .await
        .expect("spawn");
    let links = e.links(i.id()).await.expect("links");
    assert_eq!(links[0].kind, "caused_by");
    // A new publish of the same text is refused now.
    let mut sources = itsmflow_dsl::Sources::new();
    sources.add(
        "old.itsm",
        OLD.replace(
            "title: text required\n    note",
            "title: text required\n    notes",
        ),
    );
    assert!(matches!(
        e.publish(&sources).await,
        Err(EngineError::InvalidDefinitions(_))
    ));
    place.remove().await;
}
