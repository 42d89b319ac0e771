//! How a service clock stands, as the pages show it: on time, at risk, breached or paused,
//! with the business time left (or overdue). Always a word and a symbol with the colour.

use itsmflow_engine::model::ClockKind;
use itsmflow_engine::runtime::clocks::{Clock, ClockState};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Standing {
    /// Stopped within its target (met), or not started: nothing to watch.
    Stopped,
    Paused,
    OnTime,
    /// Running and past its first warning: the first escalation step the process sets on the
    /// clock, or three quarters of the target when it sets none.
    AtRisk,
    Breached,
}

/// Where a clock warns when its process sets no escalation step on it, in percent.
pub const DEFAULT_WARNING: f64 = 75.0;

impl Standing {
    pub fn of(c: &Clock) -> Standing {
        match c.state {
            ClockState::Breached => Standing::Breached,
            ClockState::Paused => Standing::Paused,
            ClockState::Met | ClockState::NotStarted => Standing::Stopped,
            ClockState::Running => {
                let warned = match c.escalations.first() {
                    Some(first) => first.reached,
                    None => c.percent >= DEFAULT_WARNING,
                };
                if warned {
                    Standing::AtRisk
                } else {
                    Standing::OnTime
                }
            }
        }
    }

    /// The CSS class (`clock on-time`, …).
    pub fn class(self) -> &'static str {
        match self {
            Standing::Stopped => "stopped",
            Standing::Paused => "paused",
            Standing::OnTime => "on-time",
            Standing::AtRisk => "at-risk",
            Standing::Breached => "breached",
        }
    }

    pub fn word(self) -> &'static str {
        match self {
            Standing::Stopped => "stopped",
            Standing::Paused => "paused",
            Standing::OnTime => "on time",
            Standing::AtRisk => "at risk",
            Standing::Breached => "breached",
        }
    }
}

/// A clock's state in words: its standing, or for a stopped one whether it was met or has not
/// started.
pub fn word_of(c: &Clock) -> &'static str {
    match c.state {
        ClockState::Met => "met",
        ClockState::NotStarted => "not started",
        _ => Standing::of(c).word(),
    }
}

/// The clock a queue row shows: the most urgent of the ticket's live clocks (breached first,
/// then at risk, then the least time left), or a paused one if all are paused.
pub fn most_urgent(clocks: &[Clock]) -> Option<&Clock> {
    clocks
        .iter()
        .filter(|c| Standing::of(c) != Standing::Stopped)
        .max_by(|a, b| {
            Standing::of(a)
                .cmp(&Standing::of(b))
                .then(b.remaining_seconds.cmp(&a.remaining_seconds))
        })
}

/// Business seconds as people read them: `27h 5m`, `45m`, `under 1m`. Hours, never days: a
/// clock counts business time (a `3d` target on office hours is 27 hours of it), and a day
/// of 24 of those hours would mislead.
pub fn duration(seconds: i64) -> String {
    let s = seconds.abs();
    let (h, m) = (s / 3600, (s % 3600) / 60);
    if h > 0 {
        format!("{h}h {m}m")
    } else if m > 0 {
        format!("{m}m")
    } else {
        "under 1m".into()
    }
}

/// `3h 20m left`, `15m overdue`.
pub fn remaining(c: &Clock) -> String {
    left(c.remaining_seconds)
}

/// Business seconds left to a target, as [`remaining`] says them (negative: overdue).
pub fn left(remaining_seconds: i64) -> String {
    if remaining_seconds < 0 {
        format!("{} overdue", duration(remaining_seconds))
    } else {
        format!("{} left", duration(remaining_seconds))
    }
}

/// The clock's kind as a word (`respond`, `resolve`).
pub fn kind(c: &Clock) -> &'static str {
    match c.clock {
        ClockKind::Respond => "respond",
        ClockKind::Resolve => "resolve",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(duration(0), "under 1m");
        assert_eq!(duration(59), "under 1m");
        assert_eq!(duration(60), "1m");
        assert_eq!(duration(3 * 3600 + 20 * 60), "3h 20m");
        assert_eq!(duration(2 * 86_400 + 3 * 3600 + 59), "51h 0m");
        assert_eq!(duration(-900), "15m");
    }
}
