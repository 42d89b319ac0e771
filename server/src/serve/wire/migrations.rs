//! Moving live tickets to another version of their process: the plan a process manager sends
//! and the report the server answers (for a preview and for the move).

use std::collections::BTreeMap;

use itsmflow_engine::runtime::migrate;
use itsmflow_engine::runtime::types::ClockMode;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};
use utoipa::ToSchema;

/// Which live tickets move where, and how their clocks and fields are carried.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MigrationPlan {
    #[schema(examples("incident"))]
    pub process: String,
    /// The version whose live tickets (those not in a final stage) move.
    #[schema(minimum = 1)]
    pub from: u32,
    /// The version they move to; the latest when not given (an older one is a way back).
    #[serde(default)]
    #[schema(minimum = 1)]
    pub to: Option<u32>,
    /// Stage of `from` to stage of `to`; a stage not listed goes to the stage of the same
    /// name, where `to` has one.
    #[serde(default)]
    pub stages: BTreeMap<String, String>,
    /// Per clock (`respond`, `resolve`): `keep` (the default), `restart` or `recompute`.
    #[serde(default)]
    pub clocks: BTreeMap<String, ClockModeWire>,
    /// Fields whose values are dropped: `to` does not have them, or types them otherwise.
    #[serde(default)]
    pub drop_fields: Vec<String>,
    /// Values for fields of `to`, given to every ticket without one.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub set: Map<String, Json>,
}

/// How a clock is carried: `keep` the business time it ran, `restart` it at the migration, or
/// `recompute` the intervals it ran under the new version's target and calendar.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClockModeWire {
    Keep,
    Restart,
    Recompute,
}

impl From<ClockModeWire> for ClockMode {
    fn from(m: ClockModeWire) -> Self {
        match m {
            ClockModeWire::Keep => ClockMode::Keep,
            ClockModeWire::Restart => ClockMode::Restart,
            ClockModeWire::Recompute => ClockMode::Recompute,
        }
    }
}

impl From<MigrationPlan> for migrate::Plan {
    fn from(p: MigrationPlan) -> Self {
        migrate::Plan {
            process: p.process,
            from: p.from,
            to: p.to,
            stages: p.stages,
            clocks: p.clocks.into_iter().map(|(k, m)| (k, m.into())).collect(),
            drop_fields: p.drop_fields,
            set: p.set,
        }
    }
}

/// What a migration did, or (a preview) would do.
#[derive(Debug, Serialize, ToSchema)]
pub struct MigrationReport {
    pub process: String,
    pub from: u32,
    pub to: u32,
    pub dry_run: bool,
    /// Every live ticket of `from`, oldest first, as it reads before and after.
    pub tickets: Vec<TicketMove>,
    /// Tickets moved (0 for a preview).
    pub migrated: usize,
    /// Tickets that ended, or were moved by someone else, between the listing and their move;
    /// left as they are.
    pub skipped: Vec<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TicketMove {
    pub instance: i64,
    pub before: MigrationSide,
    pub after: MigrationSide,
}

/// A ticket as it reads on one side of the move.
#[derive(Debug, Serialize, ToSchema)]
pub struct MigrationSide {
    pub version: u32,
    pub stage: String,
    #[schema(required = true)]
    pub queue: Option<String>,
    #[schema(required = true)]
    pub priority: Option<String>,
    pub clocks: Vec<MigrationClock>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MigrationClock {
    #[schema(examples("resolve"))]
    pub clock: String,
    /// `not_started`, `running`, `paused`, `met` or `breached`.
    #[schema(examples("running"))]
    pub state: String,
    /// Business seconds left to its target (negative once breached).
    pub remaining_seconds: i64,
}

/// One problem of a refused plan: a stable code and what to change.
#[derive(Debug, Serialize, ToSchema)]
pub struct MigrationProblem {
    #[schema(examples("unmapped-stage"))]
    pub code: String,
    pub message: String,
}

fn side(s: migrate::Side) -> MigrationSide {
    MigrationSide {
        version: s.version,
        stage: s.stage,
        queue: s.queue,
        priority: s.priority,
        clocks: s
            .clocks
            .into_iter()
            .map(|c| MigrationClock {
                clock: c.clock.as_str().to_string(),
                state: serde_json::to_value(c.state)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                remaining_seconds: c.remaining_seconds,
            })
            .collect(),
    }
}

impl From<migrate::Report> for MigrationReport {
    fn from(r: migrate::Report) -> Self {
        MigrationReport {
            process: r.process,
            from: r.from,
            to: r.to,
            dry_run: r.dry_run,
            tickets: r
                .tickets
                .into_iter()
                .map(|t| TicketMove {
                    instance: t.instance.0,
                    before: side(t.before),
                    after: side(t.after),
                })
                .collect(),
            migrated: r.migrated,
            skipped: r.skipped.into_iter().map(|i| i.0).collect(),
        }
    }
}
