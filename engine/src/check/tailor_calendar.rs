//! Tailoring a calendar: a client's own time zone, hours and holidays over a standard
//! calendar (`calendar office for client acme extends office { add holidays 05-04 ... }`).
//! Hours are addressed by their days as written (`mon-fri`, `sat, sun`), holidays by their
//! dates (`12-26`, `easter+1`, `2027-05-03`), the time zone as the one it is.

use itsmflow_dsl::ast::{Calendar, CalendarEntry, Holiday, Hours, Span, Spanned, Verb};
use itsmflow_dsl::Diagnostic;

use super::names::did_you_mean;
use super::tailor::needs_verb;

/// The base calendar with the tailoring's entries applied, in order.
pub(super) fn apply_calendar(
    base: &Calendar,
    overlay: &Calendar,
    diags: &mut Vec<Diagnostic>,
) -> Calendar {
    let mut c = base.clone();
    c.name = overlay.name.clone();
    c.tailoring = None;
    if overlay.label.is_some() {
        c.label = overlay.label.clone();
    }
    for entry in &overlay.entries {
        match entry {
            CalendarEntry::Overlay { verb, entry, span } => {
                if let Err(d) = apply_entry(&mut c, verb, entry, *span) {
                    diags.push(*d);
                }
            }
            other => diags.push(needs_verb(
                other.span(),
                "write `add`, `replace` or `remove` before it",
                "`add holidays 05-04` adds a holiday, `replace hours mon-fri 07:00-19:00` \
                 rewrites the hours of those days, `remove holidays 04-27` takes one out",
            )),
        }
    }
    c
}

type Applying = Result<(), Box<Diagnostic>>;

fn apply_entry(
    c: &mut Calendar,
    verb: &Spanned<Verb>,
    entry: &CalendarEntry,
    span: Span,
) -> Applying {
    match entry {
        CalendarEntry::Timezone(tz) => timezone(c, verb, tz, span),
        CalendarEntry::Hours(h) => hours(c, verb, h, span),
        CalendarEntry::Holidays(days, _) => {
            for day in days {
                holiday(c, verb, day)?;
            }
            // A holidays line emptied by removals goes too.
            c.entries
                .retain(|e| !matches!(e, CalendarEntry::Holidays(days, _) if days.is_empty()));
            Ok(())
        }
        CalendarEntry::Overlay { span, .. } => Err(Box::new(Diagnostic::error(
            "tailoring-needs-verb",
            *span,
            "one verb per entry",
        ))),
    }
}

fn timezone(c: &mut Calendar, verb: &Spanned<Verb>, tz: &Spanned<String>, span: Span) -> Applying {
    let at = c
        .entries
        .iter()
        .position(|e| matches!(e, CalendarEntry::Timezone(_)));
    match (verb.node, at) {
        (Verb::Add, Some(i)) => Err(exists(span, "a time zone", c.entries[i].span())),
        (Verb::Add, None) => {
            c.entries.insert(0, CalendarEntry::Timezone(tz.clone()));
            Ok(())
        }
        (_, Some(i)) => {
            c.entries[i] = CalendarEntry::Timezone(tz.clone());
            Ok(())
        }
        (_, None) => Err(missing(span, verb, "a time zone", &c.name.name, None)),
    }
}

/// The days of an `hours` entry as written, its address.
pub(super) fn days(h: &Hours) -> String {
    h.days
        .iter()
        .map(|d| match &d.to {
            Some(to) => format!("{}-{}", d.from, to),
            None => d.from.to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn hours(c: &mut Calendar, verb: &Spanned<Verb>, h: &Hours, span: Span) -> Applying {
    let wanted = days(h);
    let at = c
        .entries
        .iter()
        .position(|e| matches!(e, CalendarEntry::Hours(x) if days(x) == wanted));
    let what = format!("hours for `{wanted}`");
    match (verb.node, at) {
        (Verb::Add, Some(i)) => Err(exists(span, &what, c.entries[i].span())),
        (Verb::Add, None) => {
            let after = c
                .entries
                .iter()
                .rposition(|e| matches!(e, CalendarEntry::Hours(_)))
                .map_or(c.entries.len(), |i| i + 1);
            c.entries.insert(after, CalendarEntry::Hours(h.clone()));
            Ok(())
        }
        (Verb::Remove, Some(i)) => {
            c.entries.remove(i);
            Ok(())
        }
        (_, Some(i)) => {
            c.entries[i] = CalendarEntry::Hours(h.clone());
            Ok(())
        }
        (_, None) => {
            let known: Vec<String> = c
                .entries
                .iter()
                .filter_map(|e| match e {
                    CalendarEntry::Hours(x) => Some(days(x)),
                    _ => None,
                })
                .collect();
            let close = did_you_mean(&wanted, known.iter().map(String::as_str)).map(str::to_string);
            let mut d = missing(span, verb, &what, &c.name.name, close);
            if !known.is_empty() {
                d = Box::new(d.with_help(format!(
                    "hours are addressed by their days as the base writes them: {}",
                    known
                        .iter()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            Err(d)
        }
    }
}

fn holiday(c: &mut Calendar, verb: &Spanned<Verb>, day: &Holiday) -> Applying {
    let date = &day.date.node;
    let found = c.entries.iter().enumerate().find_map(|(i, e)| match e {
        CalendarEntry::Holidays(days, _) => days
            .iter()
            .position(|d| d.date.node == *date)
            .map(|j| (i, j)),
        _ => None,
    });
    let what = format!("holiday `{date}`");
    match (verb.node, found) {
        (Verb::Add, Some((i, j))) => Err(exists(day.span, &what, holiday_span(c, i, j))),
        (Verb::Add, None) => {
            match c.entries.iter_mut().rev().find_map(|e| match e {
                CalendarEntry::Holidays(days, _) => Some(days),
                _ => None,
            }) {
                Some(days) => days.push(day.clone()),
                None => c
                    .entries
                    .push(CalendarEntry::Holidays(vec![day.clone()], day.span)),
            }
            Ok(())
        }
        (Verb::Remove, Some((i, j))) => {
            if let CalendarEntry::Holidays(days, _) = &mut c.entries[i] {
                days.remove(j);
            }
            Ok(())
        }
        (_, Some((i, j))) => {
            if let CalendarEntry::Holidays(days, _) = &mut c.entries[i] {
                days[j] = day.clone();
            }
            Ok(())
        }
        (_, None) => Err(missing(day.span, verb, &what, &c.name.name, None)),
    }
}

fn holiday_span(c: &Calendar, i: usize, j: usize) -> Span {
    match &c.entries[i] {
        CalendarEntry::Holidays(days, _) => days[j].span,
        other => other.span(),
    }
}

fn exists(span: Span, what: &str, base: Span) -> Box<Diagnostic> {
    Box::new(
        Diagnostic::error(
            "overlay-exists",
            span,
            format!("cannot add {what}: the calendar already has it"),
        )
        .with_label("added here")
        .with_secondary(base, "it is here")
        .with_help("write `replace` to change it"),
    )
}

fn missing(
    span: Span,
    verb: &Spanned<Verb>,
    what: &str,
    calendar: &str,
    close: Option<String>,
) -> Box<Diagnostic> {
    let v = verb.node.as_str();
    let d = Diagnostic::error(
        "overlay-missing",
        span,
        format!("cannot {v} {what}: calendar `{calendar}` has no such entry"),
    )
    .with_label(format!("{v} here"));
    Box::new(match close {
        Some(c) => d.with_help(format!("did you mean `{c}`?")),
        None if verb.node == Verb::Replace => {
            d.with_help("write `add` for an entry the base does not have")
        }
        None => d,
    })
}
