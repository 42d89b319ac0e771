//! Operational-level targets (OLA): a queue's `targets`, a `tier N { targets ... }` item for
//! every queue of a tier without targets of its own, and how they sit with the SLA targets of
//! the processes that put tickets in the queue.

use std::collections::HashMap;

use chrono::{DateTime, TimeZone, Utc};
use itsmflow_dsl::ast::{self, ClockKind, Span};
use itsmflow_dsl::Diagnostic;

use super::escalation::not_after;
use super::values::too_large_within;
use super::Ctx;
use crate::calendar::BusinessCalendar;
use crate::model::{Calendar, CalendarRef, Duration, Ola, OlaRow, Process, Queue};

/// Where a checked OLA's rows were written, for diagnostics against processes later: per row,
/// the span of its name and of its resolve target.
#[derive(Clone, Debug, Default)]
pub(crate) struct OlaSpans {
    pub rows: Vec<(Span, Span)>,
}

/// A checked `targets` block of a queue or tier: its rows, `default` included.
pub(crate) fn check_block(block: &ast::Targets, ctx: &mut Ctx) -> (Ola, OlaSpans) {
    let calendar = block.calendar.as_ref().and_then(|c| ctx.calendar(c));
    let mut ola = Ola {
        tier: None,
        calendar,
        rows: Vec::new(),
    };
    let mut spans = OlaSpans::default();
    let mut seen: HashMap<&str, Span> = HashMap::new();
    for row in &block.rows {
        let name = row.priority.name.as_str();
        if let Some(first) = seen.get(name) {
            ctx.diags.push(
                Diagnostic::error(
                    "duplicate-definition",
                    row.priority.span,
                    format!("OLA targets for `{name}` are given twice"),
                )
                .with_label("given again here")
                .with_secondary(*first, "first given here"),
            );
            continue;
        }
        seen.insert(name, row.priority.span);
        let row_calendar = row.calendar.as_ref().and_then(|c| ctx.calendar(c));
        let mut resolve: Option<&ast::ClockTarget> = None;
        for clock in &row.clocks {
            match clock.clock.node {
                ClockKind::Respond => ctx.diags.push(
                    Diagnostic::error(
                        "ola-respond",
                        clock.clock.span,
                        "an operational-level target has no respond clock",
                    )
                    .with_label("not measured for a queue")
                    .with_help(format!(
                        "an OLA measures how long a ticket stays with the group; when someone \
                         picks it up (a claim) is not part of the ticket's history, so it cannot \
                         be measured: write only `{name}: resolve ...`"
                    )),
                ),
                ClockKind::Resolve if resolve.is_some() => ctx.diags.push(
                    Diagnostic::error(
                        "duplicate-attribute",
                        clock.span,
                        "the resolve target is given twice",
                    )
                    .with_label("given again here"),
                ),
                ClockKind::Resolve => resolve = Some(clock),
            }
        }
        let Some(target) = resolve else {
            continue;
        };
        if target.duration.node.is_zero() {
            if !too_large_within(&ctx.diags, target.duration.span) {
                ctx.diags.push(
                    Diagnostic::error(
                        "zero-target",
                        target.duration.span,
                        "a target must be longer than zero",
                    )
                    .with_label("zero")
                    .with_help("leave the row out if this priority has no OLA target"),
                );
            }
            continue;
        }
        ola.rows.push(OlaRow {
            priority: (name != "default").then(|| name.to_string()),
            resolve: target.duration.node,
            calendar: row_calendar,
        });
        spans.rows.push((row.priority.span, target.duration.span));
    }
    (ola, spans)
}

/// A checked `tier N` item.
pub(crate) struct CheckedTier {
    pub number: u32,
    pub span: Span,
    pub ola: Option<(Ola, OlaSpans)>,
}

/// Check the `tier` items: one per tier number, a number that is a line of support, one
/// `targets` block each.
pub(crate) fn check_tiers(items: &[&ast::Tier], ctx: &mut Ctx) -> Vec<CheckedTier> {
    let mut tiers: Vec<CheckedTier> = Vec::new();
    for t in items {
        let number = match u32::try_from(t.number.node) {
            Ok(n) if n >= 1 => n,
            _ if too_large_within(&ctx.diags, t.number.span) => continue,
            _ => {
                ctx.diags.push(
                    Diagnostic::error(
                        "invalid-tier",
                        t.number.span,
                        format!("tier {} is not a line of support", t.number.node),
                    )
                    .with_label("tiers start at 1"),
                );
                continue;
            }
        };
        if let Some(first) = tiers.iter().find(|c| c.number == number) {
            ctx.diags.push(
                Diagnostic::error(
                    "duplicate-tier",
                    t.number.span,
                    format!("tier {number} is declared twice"),
                )
                .with_label("declared again here")
                .with_secondary(first.span, "first declared here")
                .with_help("give each tier's targets in one `tier` item"),
            );
            continue;
        }
        if let Some(extra) = t.targets.get(1) {
            ctx.diags.push(
                Diagnostic::error(
                    "duplicate-attribute",
                    extra.span,
                    "this tier's targets are given twice",
                )
                .with_label("given again here")
                .with_secondary(t.targets[0].span, "first given here"),
            );
        }
        let ola = t.targets.first().map(|block| check_block(block, ctx));
        tiers.push(CheckedTier {
            number,
            span: t.number.span,
            ola,
        });
    }
    tiers
}

/// Give every queue without targets of its own those of its tier, and warn of a tier item no
/// queue is of. `spans` are the queues' own OLA spans, filled in for the queues that take a
/// tier's.
pub(crate) fn inherit(
    tiers: &[CheckedTier],
    queues: &mut [Queue],
    spans: &mut [Option<OlaSpans>],
    diags: &mut Vec<Diagnostic>,
) {
    for tier in tiers {
        let mut used = false;
        for (q, s) in queues.iter_mut().zip(spans.iter_mut()) {
            if q.tier != Some(tier.number) {
                continue;
            }
            used = true;
            if q.ola.is_some() {
                continue; // its own targets override the tier's entirely
            }
            if let Some((ola, ola_spans)) = &tier.ola {
                q.ola = Some(Ola {
                    tier: Some(tier.number),
                    ..ola.clone()
                });
                *s = Some(ola_spans.clone());
            }
        }
        if !used {
            diags.push(
                Diagnostic::warning(
                    "unused-tier",
                    tier.span,
                    format!("no queue is of tier {}", tier.number),
                )
                .with_label("these targets apply to no queue")
                .with_help(format!(
                    "give queues `tier {}`, or remove this item",
                    tier.number
                )),
            );
        }
    }
}

/// Compare each queue's OLA with the processes that can put tickets in it: every row names a
/// priority one of them declares, and no OLA target is longer than the SLA resolve target of
/// the same priority (the group alone would breach the SLA).
pub(crate) fn check_against_processes(
    queues: &[Queue],
    spans: &[Option<OlaSpans>],
    processes: &[Process],
    calendars: &[Calendar],
    diags: &mut Vec<Diagnostic>,
) {
    // Per queue, the processes that can put tickets in it.
    let mut users: Vec<Vec<&Process>> = vec![Vec::new(); queues.len()];
    for p in processes {
        for q in p.queues_used(queues) {
            if let Some(list) = users.get_mut(q.index()) {
                list.push(p);
            }
        }
    }
    // Per tier: the queues that take its targets, and the processes using any of them.
    let takers = |tier: u32| {
        queues
            .iter()
            .enumerate()
            .filter(move |(_, q)| q.ola.as_ref().is_some_and(|o| o.tier == Some(tier)))
            .map(|(i, _)| i)
    };
    for (index, ((queue, spans), users_here)) in queues.iter().zip(spans).zip(&users).enumerate() {
        let (Some(ola), Some(spans)) = (&queue.ola, spans) else {
            continue;
        };
        if users_here.is_empty() {
            continue; // an unused queue is reported as such
        }
        // A tier's row applies to every queue that takes the tier's targets: it must name a
        // priority of some process using one of them. Reported once, at the first such queue
        // that is used.
        let row_users: Vec<&Process> = match ola.tier {
            None => users_here.clone(),
            Some(tier) if takers(tier).find(|i| !users[*i].is_empty()) == Some(index) => {
                takers(tier)
                    .flat_map(|i| users[i].iter().copied())
                    .collect()
            }
            Some(_) => Vec::new(),
        };
        let whose = match ola.tier {
            Some(n) => format!("the OLA of tier {n} (which queue `{}` takes)", queue.name),
            None => format!("the OLA of queue `{}`", queue.name),
        };
        for (row, (name_span, _)) in ola.rows.iter().zip(&spans.rows) {
            let Some(priority) = &row.priority else {
                continue;
            };
            if !row_users.is_empty() && !row_users.iter().any(|p| p.priorities.contains(priority)) {
                let mut names: Vec<&str> = row_users.iter().map(|p| p.name.as_str()).collect();
                names.sort_unstable();
                names.dedup();
                diags.push(
                    Diagnostic::warning(
                        "ola-unknown-priority",
                        *name_span,
                        match ola.tier {
                            Some(n) => format!("no process that uses a queue of tier {n} has priority `{priority}`"),
                            None => format!("no process that uses queue `{}` has priority `{priority}`", queue.name),
                        },
                    )
                    .with_label("this row never applies")
                    .with_help(format!(
                        "the targets apply to tickets of {}; name one of their priorities, or write `default`",
                        names.join(", ")
                    )),
                );
            }
        }
        for p in users_here {
            for (level, name) in p.priorities.iter().enumerate() {
                let Some(row) = ola.row(Some(name)) else {
                    continue;
                };
                let Some(sla) = p.targets.get(level).and_then(|t| t.as_ref()) else {
                    continue;
                };
                let Some(sla_resolve) = sla.resolve else {
                    continue;
                };
                let ola_calendar = ola.calendar_of(row).unwrap_or(sla.calendar);
                if !exceeds(
                    &row.resolve,
                    ola_calendar,
                    &sla_resolve,
                    sla.calendar,
                    calendars,
                ) {
                    continue;
                }
                let Some(span) = ola
                    .rows
                    .iter()
                    .position(|r| std::ptr::eq(r, row))
                    .and_then(|i| spans.rows.get(i))
                    .map(|(_, target)| *target)
                else {
                    continue;
                };
                let how = if ola_calendar == sla.calendar {
                    "both measured in business time on the same calendar".to_string()
                } else {
                    "on different calendars, compared unit by unit as written".to_string()
                };
                diags.push(
                    Diagnostic::warning(
                        "ola-exceeds-sla",
                        span,
                        format!(
                            "{whose} gives {name} tickets {}, longer than the {} `{}` agrees to resolve them in ({})",
                            row.resolve, sla_resolve, p.name, how
                        ),
                    )
                    .with_label(format!("longer than `{}`'s {name} resolve target", p.name))
                    .with_help("internal targets must make the SLA reachable: shorten this target, or give the queue a row for this priority"),
                );
            }
        }
    }
}

/// A Monday with no holiday in the usual calendars, from which business durations on one
/// calendar are measured to compare them: a day or week is as long as that calendar makes it.
fn reference() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 0, 0, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// Whether OLA target `ola` is longer than SLA target `sla`. On one calendar both are measured
/// as business time from the same start (`1d` on office hours is nine hours); on two
/// calendars a business day of one is not one of the other, so only a target longer in every
/// unit (weeks, days, time) counts, as for the checker's other comparisons of durations.
fn exceeds(
    ola: &Duration,
    ola_calendar: CalendarRef,
    sla: &Duration,
    sla_calendar: CalendarRef,
    calendars: &[Calendar],
) -> bool {
    if ola_calendar == sla_calendar {
        if let Some(cal) = BusinessCalendar::from_ref(calendars, ola_calendar) {
            let start = reference();
            if let (Some(o), Some(s)) = (cal.seconds_in(start, ola), cal.seconds_in(start, sla)) {
                return o > s;
            }
        }
    }
    not_after(sla, ola) && !not_after(ola, sla)
}
