//! Embedding the engine as a Rust library: publish the standard processes, raise an incident,
//! work it, and read its history and clocks, with no server in between.
//!
//! ```sh
//! cargo run --example embed                      # in memory
//! cargo run --example embed -- /tmp/itsm.db      # in a SQLite file (kept between runs)
//! ```
//!
//! The engine is the same one `itsmflow serve` runs: a store (memory, SQLite or PostgreSQL),
//! a catalogue of published definitions, and a clock. Without a directory of users nobody
//! holds a role for approvals, so this walk-through uses an incident, which needs none.

use std::path::Path;
use std::sync::Arc;

use itsmflow_dsl::Sources;
use itsmflow_engine::runtime::{Actor, Catalog, Engine, SystemClock};
use itsmflow_engine::store::memory::MemoryStore;
use itsmflow_engine::store::sqlite::SqliteStore;
use itsmflow_engine::store::Store;
use serde_json::{json, Map, Value};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sources = standard_processes()?;
    let catalog = Arc::new(Catalog::default());
    match std::env::args().nth(1) {
        Some(path) => {
            let store = SqliteStore::open(&path, catalog.clone()).await?;
            walk_through(store, catalog, &sources).await
        }
        None => walk_through(MemoryStore::new(catalog.clone()), catalog, &sources).await,
    }
}

/// Every `.itsm` file of `processes/`: the project the server publishes at start.
fn standard_processes() -> std::io::Result<Sources> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("processes");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "itsm"))
        .collect();
    paths.sort();
    let mut sources = Sources::new();
    for p in paths {
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
        sources.add(name.unwrap_or_default(), std::fs::read_to_string(&p)?);
    }
    Ok(sources)
}

async fn walk_through<S: Store>(
    store: S,
    catalog: Arc<Catalog>,
    sources: &Sources,
) -> Result<(), Box<dyn std::error::Error>> {
    let engine = Engine::open(store, catalog, Arc::new(SystemClock)).await?;
    // Publishing checks the whole project first: a project with errors replaces nothing.
    for p in engine.publish(sources).await? {
        println!(
            "published {} v{}{}",
            p.process,
            p.version,
            if p.new { " (new)" } else { "" }
        );
    }

    let bob = Actor::new("bob", &[]);
    let alice = Actor::new("alice", &["agent"]);
    let incident = engine
        .create(
            "incident",
            &fields(json!({
                "title": "Mail is down",
                "caller": "bob",
                "service": "email",
                "category": "software.email",
                "impact": "medium",
                "urgency": "high",
            })),
            &bob,
        )
        .await?;
    let id = incident.id();
    println!(
        "incident {id}: stage {}, priority {}, queue {}",
        incident.stage(),
        incident.priority().unwrap_or("none"),
        incident.queue().unwrap_or("none")
    );

    // Without a version, an action applies to the ticket as it is now.
    for (action, input) in [
        ("log", json!({})),
        ("accept", json!({})),
        ("resolve", json!({"resolution": "Restarted the mail relay"})),
    ] {
        let who = if action == "log" { &bob } else { &alice };
        match engine
            .perform(id, action, &fields(input), None, who, None)
            .await
        {
            Ok(v) => println!("{action}: now {}", v.stage()),
            // A refusal says why, in the words of the definition.
            Err(e) => println!("{action}: refused: {e}"),
        }
    }

    for clock in engine.clocks(id).await? {
        println!(
            "{:?} clock: {:?}, {}s of {}s business time",
            clock.clock, clock.state, clock.elapsed_seconds, clock.target_seconds
        );
    }
    for e in engine.history(id).await? {
        println!(
            "  {} {} {} {}",
            e.seq,
            e.at.format("%H:%M:%S"),
            e.actor,
            e.kind
        );
    }
    Ok(())
}

fn fields(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}
