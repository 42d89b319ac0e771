//! Calendars: a valid time zone, business hours that make sense, real holiday dates.

use std::collections::BTreeSet;

use chrono::{Datelike, NaiveDate};
use chrono_tz::Tz;
use itsmflow_dsl::ast::{self, CalendarEntry, ClockTime, Ident};
use itsmflow_dsl::Diagnostic;

use super::names::did_you_mean;
use crate::calendar::yearly::YearlyDay;
use crate::calendar::CalendarIndex;
use crate::model::Calendar;

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn day_index(ident: &Ident, diags: &mut Vec<Diagnostic>) -> Option<usize> {
    if let Some(i) = DAYS.iter().position(|d| *d == ident.name) {
        return Some(i);
    }
    let lower = ident.name.to_lowercase();
    let guess = DAYS
        .iter()
        .find(|d| lower.starts_with(*d))
        .copied()
        .or_else(|| did_you_mean(&ident.name, DAYS.into_iter()));
    let d = Diagnostic::error(
        "unknown-day",
        ident.span,
        format!("unknown day `{}`", ident.name),
    )
    .with_label("not a day of the week");
    diags.push(match guess {
        Some(g) => d.with_help(format!(
            "did you mean `{g}`? days are written mon, tue, wed, thu, fri, sat, sun"
        )),
        None => d.with_help("days are written mon, tue, wed, thu, fri, sat, sun"),
    });
    None
}

fn minutes(t: &ClockTime, diags: &mut Vec<Diagnostic>) -> Option<u32> {
    if t.minute < 60 && (t.hour < 24 || (t.hour == 24 && t.minute == 0)) {
        return Some(t.hour * 60 + t.minute);
    }
    diags.push(
        Diagnostic::error(
            "invalid-time",
            t.span,
            format!("`{:02}:{:02}` is not a time of day", t.hour, t.minute),
        )
        .with_label("hours run from 00:00 to 24:00")
        .with_help("write times as hh:mm between 00:00 and 24:00"),
    );
    None
}

/// Check one calendar and build its model (with UTC and no hours where it is broken; the
/// project is discarded then anyway).
pub fn check_calendar(cal: &ast::Calendar, diags: &mut Vec<Diagnostic>) -> Calendar {
    let mut timezone: Option<(Tz, ast::Span)> = None;
    let mut saw_timezone = false;
    let mut week: [Vec<(u32, u32)>; 7] = Default::default();
    let mut day_set_at: [Option<ast::Span>; 7] = [None; 7];
    let mut holidays = BTreeSet::new();
    let mut yearly_seen: Vec<YearlyDay> = Vec::new();
    // Whether an hours line had errors: then "never open" may only mean its hours were lost.
    let mut hours_broken = false;

    for entry in &cal.entries {
        match entry {
            CalendarEntry::Timezone(tz) => {
                if saw_timezone {
                    diags.push(
                        Diagnostic::error(
                            "duplicate-attribute",
                            tz.span,
                            "the time zone is given twice",
                        )
                        .with_label("second time zone")
                        .with_help("a calendar has one time zone; remove one"),
                    );
                    continue;
                }
                saw_timezone = true;
                match tz.node.parse::<Tz>() {
                    Ok(z) => timezone = Some((z, tz.span)),
                    Err(_) => {
                        let names = chrono_tz::TZ_VARIANTS.iter().map(|z| z.name());
                        let d = Diagnostic::error(
                            "invalid-timezone",
                            tz.span,
                            format!("unknown time zone `{}`", tz.node),
                        )
                        .with_label("not an IANA time zone");
                        diags.push(match did_you_mean(&tz.node, names) {
                            Some(s) => d.with_help(format!("did you mean `{s}`?")),
                            None => d.with_help("use an IANA time zone name such as \"Europe/Amsterdam\" or \"UTC\""),
                        });
                    }
                }
            }
            CalendarEntry::Overlay { verb, .. } => diags.push(
                Diagnostic::error(
                    "overlay-outside-tailoring",
                    verb.span,
                    format!(
                        "`{}` changes the calendar a tailoring extends; `{}` extends none",
                        verb.node.as_str(),
                        cal.name
                    ),
                )
                .with_label("only in a tailoring")
                .with_help(format!(
                    "write the entry without `{}`, or tailor the calendar: `calendar {} for \
                     client NAME extends {} {{ ... }}`",
                    verb.node.as_str(),
                    cal.name,
                    cal.name
                )),
            ),
            CalendarEntry::Hours(h) => {
                let before = diags.len();
                check_hours(h, &mut week, &mut day_set_at, diags);
                hours_broken |= diags[before..].iter().any(Diagnostic::is_error);
            }
            CalendarEntry::Holidays(days, _) => {
                for day in days {
                    let text = &day.date.node;
                    // Every year: expanded into its dates (see `calendar/yearly.rs`).
                    if text.len() == 5 || text.starts_with("easter") {
                        match YearlyDay::parse(text) {
                            Some(yearly) if yearly_seen.contains(&yearly) => {
                                diags.push(
                                    Diagnostic::warning(
                                        "duplicate-holiday",
                                        day.date.span,
                                        format!("holiday {text} is listed twice"),
                                    )
                                    .with_label("listed again here"),
                                );
                            }
                            Some(yearly) => {
                                yearly_seen.push(yearly);
                                holidays.extend(yearly.dates());
                            }
                            None => diags.push(
                                Diagnostic::error(
                                    "invalid-date",
                                    day.date.span,
                                    format!("`{text}` is not a day of the year"),
                                )
                                .with_label("no such day")
                                .with_help(
                                    "write a yearly holiday as MM-DD (`12-25`) or as days from \
                                     Easter Sunday (`easter+1` for Easter Monday, `easter-2` for \
                                     Good Friday)",
                                ),
                            ),
                        }
                        continue;
                    }
                    match NaiveDate::parse_from_str(&day.date.node, "%Y-%m-%d") {
                        Ok(date) => {
                            if !holidays.insert(date)
                                && !yearly_seen
                                    .iter()
                                    .any(|y| y.in_year(date.year()) == Some(date))
                            {
                                diags.push(
                                    Diagnostic::warning(
                                        "duplicate-holiday",
                                        day.date.span,
                                        format!("holiday {} is listed twice", day.date.node),
                                    )
                                    .with_label("listed again here"),
                                );
                            }
                        }
                        Err(_) => diags.push(
                            Diagnostic::error(
                                "invalid-date",
                                day.date.span,
                                format!("`{}` is not a date", day.date.node),
                            )
                            .with_label("no such day")
                            .with_help("write dates as YYYY-MM-DD"),
                        ),
                    }
                }
            }
        }
    }

    if !saw_timezone {
        diags.push(
            Diagnostic::error(
                "missing-timezone",
                cal.name.span,
                format!("calendar `{}` has no time zone", cal.name),
            )
            .with_label("business hours need a time zone")
            .with_help("add a line such as `timezone \"Europe/Amsterdam\"`"),
        );
    }
    if week.iter().all(Vec::is_empty) && !hours_broken {
        diags.push(
            Diagnostic::error(
                "calendar-never-open",
                cal.name.span,
                format!("calendar `{}` has no business hours", cal.name),
            )
            .with_label("clocks on this calendar would never run")
            .with_help("add hours such as `hours mon-fri 08:00-17:00`, or use `24x7`"),
        );
    }
    Calendar {
        name: cal.name.name.clone(),
        label: cal.label.as_ref().map(|l| l.node.clone()),
        timezone: timezone.map(|(z, _)| z).unwrap_or(Tz::UTC),
        week,
        holidays,
        index: CalendarIndex::default(),
    }
}

fn check_hours(
    h: &ast::Hours,
    week: &mut [Vec<(u32, u32)>; 7],
    day_set_at: &mut [Option<ast::Span>; 7],
    diags: &mut Vec<Diagnostic>,
) {
    // Which days this line covers.
    let mut days = Vec::new();
    for range in &h.days {
        let from = day_index(&range.from, diags);
        let to = match &range.to {
            Some(t) => day_index(t, diags),
            None => from,
        };
        let (Some(from), Some(to)) = (from, to) else {
            continue;
        };
        if to < from {
            diags.push(
                Diagnostic::error(
                    "invalid-hours",
                    range.span,
                    format!("day range `{}` runs backwards", ast_range_text(range)),
                )
                .with_label("the week starts on monday")
                .with_help("split it, e.g. `fri-sun, mon`"),
            );
            continue;
        }
        days.extend(from..=to);
    }

    // The open ranges of this line, validated and sorted.
    let mut ranges = Vec::new();
    for r in h.times.iter().flatten() {
        let (Some(from), Some(to)) = (minutes(&r.from, diags), minutes(&r.to, diags)) else {
            continue;
        };
        if to <= from {
            diags.push(
                Diagnostic::error("invalid-hours", r.span, "opening hours end before they start")
                    .with_label("ends at or before its start")
                    .with_help("hours cannot cross midnight: split a night shift over two days, ending at 24:00 and starting at 00:00"),
            );
            continue;
        }
        ranges.push((from, to, r.span));
    }
    ranges.sort_by_key(|r| r.0);
    for pair in ranges.windows(2) {
        if pair[1].0 < pair[0].1 {
            diags.push(
                Diagnostic::error("invalid-hours", pair[1].2, "opening hours overlap")
                    .with_label("overlaps the range before it")
                    .with_secondary(pair[0].2, "this range"),
            );
        }
    }

    for day in days {
        if let Some(first) = day_set_at[day] {
            diags.push(
                Diagnostic::error(
                    "duplicate-hours",
                    h.span,
                    format!("hours for `{}` are given twice", DAYS[day]),
                )
                .with_label("given again here")
                .with_secondary(first, "first given here")
                .with_help(
                    "list all of a day's ranges on one line: `hours mon 08:00-12:00, 13:00-17:00`",
                ),
            );
            continue;
        }
        day_set_at[day] = Some(h.span);
        week[day] = ranges.iter().map(|(f, t, _)| (*f, *t)).collect();
    }
}

fn ast_range_text(r: &ast::DayRange) -> String {
    match &r.to {
        Some(t) => format!("{}-{}", r.from, t),
        None => r.from.name.clone(),
    }
}
