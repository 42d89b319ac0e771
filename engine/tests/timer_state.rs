//! The timer state the engine keeps between changes (`runtime::timers::TimerState`) gives the
//! same schedule as a derivation from the whole history, however the history is cut into
//! changes and whenever it is asked in between: random histories over clocks that start, pause,
//! resume and stop, priorities on calendars in different time zones, escalation steps by share
//! and by duration, steps and breaches recorded as fired, and automatic transitions; and the
//! ticket's stays in queues with operational-level targets (OLA, a queue's own and a tier's),
//! moved between queues, paused, and their breaches recorded.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use itsmflow_engine::model::{ClockKind, PriorityId, QueueId, StageId, TransitionId};
use itsmflow_engine::runtime::catalog::{Definition, DefinitionId};
use itsmflow_engine::runtime::timers::{Schedule, TimerState};
use itsmflow_engine::runtime::types::{Cause, Event, EventKind};
use proptest::prelude::*;

mod support;

const PROJECT: &str = r#"
calendar office "Office hours, Amsterdam" {
  timezone "Europe/Amsterdam"
  hours mon-fri 08:00-12:30, 13:00-17:00
  holidays 2026-12-25 "Christmas Day", 2026-12-26 "Boxing Day"
}

calendar late "Late shift, New York" {
  timezone "America/New_York"
  hours mon-sat 14:00-22:00
}

role agent

tier 2 {
  targets {
    P2: resolve 2h on late
    default: resolve 5h
  }
}

queue desk {
  members agent
  targets on office {
    P1: resolve 1h on 24x7
    default: resolve 3h
  }
}

queue team {
  tier 2
  members agent
}

process flow {
  fields {
    title: text
  }

  priorities P1, P2, P3

  targets on office {
    P1: respond 15m, resolve 4h on 24x7
    P2: respond 30m, resolve 2d on late
    P3: respond 4h, resolve 1w
  }

  stage new "New" initial
  stage work "Work" {
    starts resolve
    queue desk
  }
  stage wait "Waiting" {
    pauses respond, resolve
  }
  stage fixed "Fixed" {
    stops resolve
  }
  stage done "Done" final

  transition start: new -> work by role agent
  transition hold: work -> wait by role agent
  transition resume: wait -> work by role agent or after 2h
  transition fix: work, wait -> fixed by role agent
  transition reopen: fixed -> work by role agent
  transition close: fixed -> done by role agent or after 1d

  escalation on resolve {
    at 50% => notify role agent
    at 2h => notify role agent
    at 100% => notify role agent
    at 150% => notify role agent
  }

  escalation on respond {
    at 80% => notify role agent
  }
}
"#;

fn definition() -> Definition {
    let project = Arc::new(support::checked_project("flow.itsm", PROJECT));
    Definition::new(DefinitionId(1), 1, "h".into(), start(), project, "flow").expect("flow")
}

/// A Friday afternoon in Amsterdam, a week before Christmas.
fn start() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-12-18T15:40:00+01:00")
        .expect("instant")
        .with_timezone(&Utc)
}

const STAGES: u32 = 5;

/// One step of a random history, after `wait` seconds.
#[derive(Clone, Debug)]
enum Step {
    Enter(u32),
    Priority(Option<u32>),
    Escalated(bool, u32),
    Breached(bool),
    Elapsed(u32),
    Comment,
    /// Moved to a queue (0 desk, its own OLA; 1 team, its tier's) or to none.
    Route(Option<u32>),
    OlaBreached(u32),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0..STAGES).prop_map(Step::Enter),
        1 => proptest::option::of(0u32..3).prop_map(Step::Priority),
        1 => (any::<bool>(), 0u32..4).prop_map(|(r, s)| Step::Escalated(r, s)),
        1 => any::<bool>().prop_map(Step::Breached),
        1 => (0u32..6).prop_map(Step::Elapsed),
        1 => Just(Step::Comment),
        2 => proptest::option::of(0u32..2).prop_map(Step::Route),
        1 => (0u32..2).prop_map(Step::OlaBreached),
    ]
}

fn wait() -> impl Strategy<Value = i64> {
    prop_oneof![0i64..120, 0i64..4 * 3_600, 0i64..4 * 86_400]
}

fn clock(resolve: bool) -> ClockKind {
    if resolve {
        ClockKind::Resolve
    } else {
        ClockKind::Respond
    }
}

/// The events of a random history, created in stage `first` with priority `priority`.
fn history(first: u32, priority: Option<u32>, steps: &[(i64, Step)]) -> Vec<Event> {
    let mut at = start();
    let mut stage = StageId(first);
    let event = |seq: usize, at, kind| Event {
        seq: seq as i64 + 1,
        at,
        actor: "someone".into(),
        kind,
        reason: None,
    };
    let mut events = vec![event(
        0,
        at,
        EventKind::Created {
            stage,
            fields: vec![None],
            priority: priority.map(PriorityId),
            queue: None,
            spawned_by: None,
        },
    )];
    for (wait, step) in steps {
        at += TimeDelta::seconds(*wait);
        let kind = match step {
            Step::Enter(to) => {
                let from = std::mem::replace(&mut stage, StageId(*to));
                EventKind::Transitioned {
                    action: TransitionId(0),
                    from,
                    to: stage,
                }
            }
            Step::Priority(to) => EventKind::PriorityChanged {
                from: None,
                to: to.map(PriorityId),
                cause: Cause::Fields,
            },
            Step::Escalated(resolve, step) => EventKind::Escalated {
                clock: clock(*resolve),
                step: *step,
                threshold: String::new(),
            },
            Step::Breached(resolve) => EventKind::Breached {
                clock: clock(*resolve),
            },
            Step::Elapsed(t) => EventKind::Elapsed {
                transition: TransitionId(*t),
            },
            Step::Comment => EventKind::Commented {
                text: "noted".into(),
            },
            Step::Route(to) => EventKind::Routed {
                from: None,
                to: to.map(QueueId),
                cause: Cause::Fields,
            },
            Step::OlaBreached(q) => EventKind::OlaBreached { queue: QueueId(*q) },
        };
        events.push(event(events.len(), at, kind));
    }
    events
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn kept_state_gives_the_schedule_of_the_whole_history(
        first in 0..STAGES,
        priority in proptest::option::of(0u32..3),
        steps in proptest::collection::vec((wait(), step()), 0..40),
        cuts in proptest::collection::vec(0usize..41, 0..6),
        ask_between in any::<bool>(),
    ) {
        let def = definition();
        let events = history(first, priority, &steps);
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(events.len())).collect();
        cuts.push(events.len());
        cuts.sort_unstable();
        let mut state = TimerState::default();
        let mut folded = 0;
        for cut in cuts {
            state.apply(&def, &events[folded..cut]);
            folded = cut;
            if ask_between || cut == events.len() {
                prop_assert_eq!(
                    state.schedule(&def).clone(),
                    Schedule::of(&def, &events[..cut]),
                    "after {} events", cut
                );
            }
        }
    }
}
