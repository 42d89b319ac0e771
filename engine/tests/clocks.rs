//! Service clocks on virtual time: targets, pauses, stops, a priority raised mid-way, breach.
//! Clocks are derived from the history, so the in-memory store shows the same as any other.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use itsmflow_engine::model::ClockKind;
use itsmflow_engine::runtime::clocks::{Clock, ClockState};
use itsmflow_engine::runtime::{Actor, Catalog, Engine, InstanceId, ManualClock};
use itsmflow_engine::store::memory::MemoryStore;
use serde_json::{json, Map, Value};
use support::{fields, processes};

mod support;

fn incident(impact: &str, urgency: &str) -> Map<String, Value> {
    fields(
        json!({"title": "Mail down", "caller": "carol", "service": "email", "category": "software",
                  "impact": impact, "urgency": urgency}),
    )
}

async fn engine(start: DateTime<Utc>) -> (Engine<MemoryStore>, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(start));
    let catalog = Arc::new(Catalog::default());
    let e = Engine::open(MemoryStore::new(catalog.clone()), catalog, clock.clone())
        .await
        .expect("open");
    e.publish(&processes()).await.expect("publish");
    (e, clock)
}

async fn clock(e: &Engine<MemoryStore>, id: InstanceId, kind: ClockKind) -> Clock {
    e.clocks(id)
        .await
        .expect("clocks")
        .into_iter()
        .find(|c| c.clock == kind)
        .expect("clock")
}

fn agent() -> Actor {
    Actor::new("alice", &["agent", "caller"])
}

/// P1 runs on 24x7: respond 15m, resolve 4h.
#[tokio::test]
async fn pauses_stop_the_resolve_clock_and_stops_meet_the_respond_clock() {
    let t0 = Utc
        .with_ymd_and_hms(2026, 11, 2, 9, 0, 0)
        .single()
        .expect("time");
    let (e, time) = engine(t0).await;
    let none = Map::new();
    let inc = e
        .create("incident", &incident("high", "high"), &agent())
        .await
        .expect("create");
    assert_eq!(inc.priority(), Some("P1"));
    let id = inc.id();

    time.advance(TimeDelta::minutes(5));
    e.perform(id, "log", &none, None, &agent(), None)
        .await
        .expect("log");
    time.advance(TimeDelta::minutes(5));
    e.perform(id, "accept", &none, None, &agent(), None)
        .await
        .expect("accept");
    let respond = clock(&e, id, ClockKind::Respond).await;
    assert_eq!(respond.state, ClockState::Met);
    assert_eq!(
        (respond.elapsed_seconds, respond.target_seconds),
        (600, 900)
    );
    assert_eq!(respond.due_at, None);

    time.advance(TimeDelta::minutes(50)); // t0 + 1h
    e.perform(id, "ask", &none, None, &agent(), None)
        .await
        .expect("ask");
    time.advance(TimeDelta::hours(3)); // paused: does not count
    let paused = clock(&e, id, ClockKind::Resolve).await;
    assert_eq!(paused.state, ClockState::Paused);
    assert_eq!(paused.elapsed_seconds, 3600);
    assert_eq!(paused.due_at, None, "no due instant while paused");
    assert!(
        paused.escalations.iter().all(|p| p.due_at.is_none()),
        "no escalation is due while the clock is paused"
    );

    e.perform(id, "answer", &none, None, &agent(), None)
        .await
        .expect("answer"); // t0 + 4h
    time.advance(TimeDelta::hours(1)); // t0 + 5h
    let resolve = clock(&e, id, ClockKind::Resolve).await;
    assert_eq!(resolve.state, ClockState::Running);
    assert_eq!(resolve.elapsed_seconds, 2 * 3600);
    assert_eq!(resolve.remaining_seconds, 2 * 3600);
    assert_eq!(resolve.percent, 50.0);
    assert_eq!(
        resolve.due_at,
        Some(t0 + TimeDelta::hours(7)),
        "now plus the remaining time"
    );

    // The incident's escalation on resolve: 50%, 75% and 100% of 4h.
    let points: Vec<(&str, i64, bool, Option<DateTime<Utc>>)> = resolve
        .escalations
        .iter()
        .map(|p| (p.threshold.as_str(), p.at_seconds, p.reached, p.due_at))
        .collect();
    assert_eq!(
        points,
        [
            ("50%", 7200, true, None),
            ("75%", 10800, false, Some(t0 + TimeDelta::hours(6))),
            ("100%", 14400, false, Some(t0 + TimeDelta::hours(7))),
        ]
    );

    time.advance(TimeDelta::hours(3)); // t0 + 8h: 5h of 4h
    let late = clock(&e, id, ClockKind::Resolve).await;
    assert_eq!(late.state, ClockState::Breached);
    assert_eq!(late.percent, 125.0);
    assert_eq!(late.remaining_seconds, -3600);

    e.perform(
        id,
        "resolve",
        &fields(json!({"resolution": "restarted"})),
        None,
        &agent(),
        None,
    )
    .await
    .expect("resolve");
    time.advance(TimeDelta::hours(10));
    let stopped = clock(&e, id, ClockKind::Resolve).await;
    assert_eq!(
        stopped.state,
        ClockState::Breached,
        "stopped after its target"
    );
    assert_eq!(
        stopped.elapsed_seconds,
        5 * 3600,
        "a stopped clock no longer counts"
    );
}

/// Raising priority changes the target and its calendar, re-measures the time already spent
/// on the new calendar, and keeps it: the clock is not reset.
#[tokio::test]
async fn a_priority_raised_mid_way_keeps_the_elapsed_time() {
    // Monday 09:00 in Amsterdam (CET): office hours are open.
    let t0 = Utc
        .with_ymd_and_hms(2026, 11, 2, 8, 0, 0)
        .single()
        .expect("time");
    let (e, time) = engine(t0).await;
    let inc = e
        .create("incident", &incident("medium", "medium"), &agent())
        .await
        .expect("create");
    assert_eq!(inc.priority(), Some("P3"));
    let id = inc.id();
    e.perform(id, "log", &Map::new(), None, &agent(), None)
        .await
        .expect("log");

    time.advance(TimeDelta::hours(2));
    let before = clock(&e, id, ClockKind::Resolve).await;
    assert_eq!(before.target, "3d");
    assert_eq!(
        before.elapsed_seconds,
        2 * 3600,
        "09:00-11:00 local, all open"
    );
    assert!(
        before.target_seconds > 20 * 3600,
        "three office days: {}",
        before.target_seconds
    );

    e.update(
        id,
        &fields(json!({"impact": "high", "urgency": "high"})),
        None,
        &agent(),
        None,
    )
    .await
    .expect("raise");
    let after = clock(&e, id, ClockKind::Resolve).await;
    assert_eq!(after.target, "4h");
    assert_eq!(after.elapsed_seconds, 2 * 3600, "elapsed kept");
    assert_eq!(after.remaining_seconds, 2 * 3600);
    assert_eq!(
        after.due_at,
        Some(t0 + TimeDelta::hours(4)),
        "due from the clock's start, on 24x7 now"
    );
    assert_eq!(after.started_at, Some(t0));
}

/// Office hours: a clock does not run at night.
#[tokio::test]
async fn clocks_run_only_in_business_hours() {
    // Monday 16:00 in Amsterdam, one hour before closing.
    let t0 = Utc
        .with_ymd_and_hms(2026, 11, 2, 15, 0, 0)
        .single()
        .expect("time");
    let (e, time) = engine(t0).await;
    let inc = e
        .create("incident", &incident("medium", "medium"), &agent())
        .await
        .expect("create");
    time.advance(TimeDelta::hours(18)); // Tuesday 10:00 local
    let respond = clock(&e, inc.id(), ClockKind::Respond).await;
    // 16:00-17:00 Monday and 08:00-10:00 Tuesday.
    assert_eq!(respond.elapsed_seconds, 3 * 3600);
    assert_eq!(respond.target_seconds, 4 * 3600);
    assert_eq!(respond.state, ClockState::Running);
    assert_eq!(
        respond.due_at,
        Some(t0 + TimeDelta::hours(19)),
        "Tuesday 11:00 local"
    );
}
