//! The catalog as threads read it: each thread answers from its shard of replicas, which must
//! agree with what was published, see every later publish, and never mix two catalogs.

mod support;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use itsmflow_engine::record::Definitions;
use itsmflow_engine::runtime::catalog::{Catalog, Definition, DefinitionId};

fn at() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-27T09:00:00Z")
        .expect("instant")
        .with_timezone(&Utc)
}

/// The standard processes, with the network queue's members replaced by `members`.
fn project(members: &str) -> Arc<itsmflow_engine::model::Project> {
    let mut sources = itsmflow_dsl::Sources::new();
    for (_, file) in support::processes().iter() {
        let text = file.text.replace(
            "escalates_to vendor\n  members network_engineer",
            &format!("escalates_to vendor\n  members {members}"),
        );
        sources.add(file.name.clone(), text);
    }
    let checked = itsmflow_engine::check(&sources);
    Arc::new(checked.project.expect("the standard processes check"))
}

fn definition(id: i64, version: u32, process: &str, members: &str) -> Definition {
    Definition::new(
        DefinitionId(id),
        version,
        format!("hash-{id}"),
        at(),
        project(members),
        process,
    )
    .expect("a process of the project")
}

fn network_members(catalog: &Catalog) -> Vec<String> {
    catalog.queue("network").expect("declared").roles.clone()
}

#[test]
fn a_thread_that_read_before_a_publish_sees_it() {
    let catalog = Catalog::default();
    catalog.insert(definition(1, 1, "incident", "network_engineer"));
    assert_eq!(catalog.latest("incident").expect("published").version, 1);
    assert_eq!(network_members(&catalog), ["network_engineer"]);

    catalog.insert(definition(2, 2, "incident", "agent"));
    assert_eq!(
        catalog.latest("incident").expect("published").version,
        2,
        "the latest version after a publish"
    );
    assert_eq!(
        network_members(&catalog),
        ["agent"],
        "the queue's new members"
    );
    let first = catalog.get(DefinitionId(1)).expect("kept");
    assert_eq!((first.version, first.hash.as_str()), (1, "hash-1"));
    assert!(catalog.latest("problem").is_none(), "never published");
}

#[test]
fn every_thread_reads_what_was_published() {
    let catalog = Arc::new(Catalog::default());
    catalog.insert(definition(1, 1, "incident", "network_engineer"));
    catalog.insert(definition(2, 1, "problem", "network_engineer"));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let catalog = catalog.clone();
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                for _ in 0..3 {
                    for id in [1, 2] {
                        let d = catalog.get(DefinitionId(id)).expect("published");
                        let names = d.task_names();
                        seen.push((
                            d.id,
                            d.process.clone(),
                            d.version,
                            names.process.to_string(),
                            names.stages.len(),
                            d.model().name.clone(),
                        ));
                    }
                }
                seen
            })
        })
        .collect();
    for t in threads {
        for (id, process, version, task_process, stages, model) in t.join().expect("thread") {
            let shared = catalog
                .definitions()
                .into_iter()
                .find(|d| d.id == id)
                .expect("published");
            assert_eq!(process, shared.process);
            assert_eq!(version, shared.version);
            assert_eq!(task_process, process);
            assert_eq!(model, process);
            assert_eq!(stages, shared.task_names().stages.len());
        }
    }
}

#[test]
fn two_catalogs_on_one_thread_stay_apart() {
    let first = Catalog::default();
    let second = Catalog::default();
    first.insert(definition(1, 1, "incident", "network_engineer"));
    second.insert(definition(1, 1, "change", "agent"));
    for _ in 0..2 {
        assert_eq!(first.get(DefinitionId(1)).expect("one").process, "incident");
        assert_eq!(second.get(DefinitionId(1)).expect("one").process, "change");
        assert_eq!(network_members(&first), ["network_engineer"]);
        assert_eq!(network_members(&second), ["agent"]);
        assert!(first.latest("change").is_none());
        assert!(second.latest("incident").is_none());
    }
}

#[test]
fn a_store_finds_each_published_version_by_id() {
    let catalog = Catalog::default();
    catalog.insert(definition(1, 1, "incident", "network_engineer"));
    catalog.insert(definition(2, 2, "incident", "agent"));
    // As a store holds it: the lookup, not the catalog.
    let definitions: Arc<dyn Definitions> = Arc::new(catalog);
    for (id, version) in [(1, 1), (2, 2)] {
        let found = definitions
            .published(DefinitionId(id))
            .expect("a published version");
        assert_eq!(
            (found.id, found.version, found.process.as_str()),
            (DefinitionId(id), version, "incident")
        );
        assert_eq!(found.model().name, "incident");
    }
    assert!(
        definitions.published(DefinitionId(3)).is_none(),
        "no version was published with id 3"
    );
}
