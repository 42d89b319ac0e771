//! A stored instant out of range is a corruption, reported as one, not read as 1970 (where a
//! wake-up or a task would sort first for ever). On a real SQLite file and a real PostgreSQL
//! database.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use itsmflow_dsl::Sources;
use itsmflow_engine::runtime::{Actor, Catalog, Engine, ManualClock};
use itsmflow_engine::store::postgres::PostgresStore;
use itsmflow_engine::store::sqlite::SqliteStore;
use itsmflow_engine::store::{Store, StoreError};
use serde_json::json;
use support::{fields, Place};

#[macro_use]
mod support;

const PROJECT: &str = r#"
process job {
  fields {
    title: text required
  }
  stage open initial
  stage done final
  transition finish: open -> done after 1h
}
"#;

/// Beyond what chrono can hold (about 262,000 years).
const OUT_OF_RANGE: i64 = i64::MAX - 1;

async fn one_timer<S: Store>(store: S, catalog: Arc<Catalog>) -> Engine<S> {
    let clock = Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0)
            .single()
            .expect("date"),
    ));
    let engine = Engine::open(store, catalog, clock).await.expect("open");
    let mut sources = Sources::new();
    sources.add("job.itsm", PROJECT);
    engine.publish(&sources).await.expect("publish");
    engine
        .create(
            "job",
            &fields(json!({"title": "x"})),
            &Actor::new("ann", &[]),
        )
        .await
        .expect("create");
    assert!(engine
        .store()
        .next_wakeup_at()
        .await
        .expect("read")
        .is_some());
    engine
}

fn corrupt(e: StoreError) {
    assert!(
        matches!(&e, StoreError::Corrupt(why) if why.contains("out of range")),
        "{e:?}"
    );
}

#[tokio::test]
async fn sqlite_reports_an_instant_out_of_range() {
    let place = Place::new("sqlite").await;
    let Place::Sqlite(path) = &place else {
        unreachable!()
    };
    let catalog = Arc::new(Catalog::default());
    let store = SqliteStore::open(path, catalog.clone())
        .await
        .expect("sqlite");
    let engine = one_timer(store, catalog).await;
    let conn = rusqlite::Connection::open(path).expect("open the file");
    conn.execute("UPDATE wakeups SET fire_at = ?1", [OUT_OF_RANGE])
        .expect("damage it");
    drop(conn);
    corrupt(engine.store().next_wakeup_at().await.expect_err("corrupt"));
    drop(engine);
    place.remove().await;
}

#[tokio::test]
async fn postgres_reports_an_instant_out_of_range() {
    let place = Place::new("postgres").await;
    let Place::Postgres(url) = &place else {
        unreachable!()
    };
    let catalog = Arc::new(Catalog::default());
    let store = PostgresStore::connect(url, catalog.clone())
        .await
        .expect("postgres");
    let engine = one_timer(store, catalog).await;
    let pool = sqlx::PgPool::connect(url).await.expect("connect");
    sqlx::query("UPDATE wakeups SET fire_at = $1")
        .bind(OUT_OF_RANGE)
        .execute(&pool)
        .await
        .expect("damage it");
    pool.close().await;
    corrupt(engine.store().next_wakeup_at().await.expect_err("corrupt"));
    drop(engine);
    place.remove().await;
}
