//! Carrying a client's calendar tailorings onto a new standard library: each entry judged as a
//! process tailoring's is (see [`super::rebase`]), the time zone as the one it is, hours by
//! their days as written, a holiday by its date.

use itsmflow_dsl::ast::{self, Calendar, CalendarEntry, Holiday, Item, Verb};
use itsmflow_dsl::format;

use super::rebase::{base_gone, status, EntryReport};
use super::tailor_calendar::days;

/// Judge every entry of `client`'s calendar tailorings (in `client_files`) against the base
/// calendar before (`old`) and now (`new`).
pub(super) fn rebase_calendars(
    old: &[ast::File],
    new: &[ast::File],
    client_files: &[ast::File],
    client: &str,
) -> Vec<EntryReport> {
    let mut out = Vec::new();
    for overlay in calendars(client_files) {
        let Some(t) = overlay
            .tailoring
            .as_ref()
            .filter(|t| t.client.name == client)
        else {
            continue;
        };
        let (before, now) = (base(old, &t.base.name), base(new, &t.base.name));
        let (Some(before), Some(now)) = (before, now) else {
            out.push(base_gone("calendar", &overlay.name, t, before.is_none()));
            continue;
        };
        for entry in &overlay.entries {
            let CalendarEntry::Overlay { verb, entry, span } = entry else {
                // Not an entry of a tailoring (`tailoring-needs-verb` says so).
                continue;
            };
            for (head, address) in addresses(entry) {
                let (was, is) = (address.content(before), address.content(now));
                // A removal only names its entry.
                let mine = match verb.node {
                    Verb::Remove => None,
                    _ => address.text_in(entry),
                };
                let (status, reason) = status(verb.node, was.as_ref(), is.as_ref(), mine.as_ref());
                out.push(EntryReport {
                    kind: "calendar",
                    item: overlay.name.name.clone(),
                    entry: format!("{} {head}", verb.node.as_str()),
                    status,
                    reason,
                    before: was,
                    now: is,
                    span: *span,
                });
            }
        }
    }
    out
}

/// An entry of a calendar by its stable name.
enum CalendarAddress {
    Timezone,
    /// Hours by their days as written (`mon-fri`).
    Hours(String),
    /// A holiday by its date as written (`12-26`, `easter+1`).
    Holiday(String),
}

/// What an entry of a tailoring addresses: a `holidays` line, each of its dates.
fn addresses(entry: &CalendarEntry) -> Vec<(String, CalendarAddress)> {
    match entry {
        CalendarEntry::Timezone(_) => vec![("timezone".to_string(), CalendarAddress::Timezone)],
        CalendarEntry::Hours(h) => {
            let d = days(h);
            vec![(format!("hours {d}"), CalendarAddress::Hours(d))]
        }
        CalendarEntry::Holidays(list, _) => list
            .iter()
            .map(|h| {
                let date = h.date.node.clone();
                (format!("holidays {date}"), CalendarAddress::Holiday(date))
            })
            .collect(),
        CalendarEntry::Overlay { .. } => Vec::new(),
    }
}

impl CalendarAddress {
    /// The base's entry as the language writes it, `None` where it has none.
    fn content(&self, c: &Calendar) -> Option<String> {
        c.entries.iter().find_map(|e| self.text_in(e))
    }

    /// The entry `e` says of this address, as the language writes it (`None`: nothing).
    fn text_in(&self, e: &CalendarEntry) -> Option<String> {
        match (self, e) {
            (CalendarAddress::Timezone, CalendarEntry::Timezone(_)) => Some(text(e)),
            (CalendarAddress::Hours(d), CalendarEntry::Hours(h)) if days(h) == *d => Some(text(e)),
            (CalendarAddress::Holiday(date), CalendarEntry::Holidays(list, span)) => list
                .iter()
                .find(|h| h.date.node == *date)
                .map(|h| holiday_text(h, *span)),
            _ => None,
        }
    }
}

fn holiday_text(h: &Holiday, span: ast::Span) -> String {
    text(&CalendarEntry::Holidays(vec![h.clone()], span))
}

/// A calendar entry printed by the formatter, on one line.
fn text(entry: &CalendarEntry) -> String {
    let c = Calendar {
        name: ast::Ident {
            name: "x".to_string(),
            span: ast::Span::default(),
        },
        label: None,
        tailoring: None,
        entries: vec![entry.clone()],
        span: ast::Span::default(),
    };
    let printed = format::format(
        "",
        &ast::File {
            items: vec![Item::Calendar(c)],
        },
    );
    let lines: Vec<&str> = printed.lines().collect();
    // `calendar x {`, the entry, `}`.
    let inner = lines.get(1..lines.len().saturating_sub(1)).unwrap_or(&[]);
    inner.iter().map(|l| l.trim()).collect::<Vec<_>>().join(" ")
}

fn calendars(files: &[ast::File]) -> impl Iterator<Item = &Calendar> {
    files.iter().flat_map(|f| &f.items).filter_map(|i| match i {
        Item::Calendar(c) => Some(c),
        _ => None,
    })
}

fn base<'a>(files: &'a [ast::File], name: &str) -> Option<&'a Calendar> {
    calendars(files).find(|c| c.tailoring.is_none() && c.name.name == name)
}
