//! The project's items besides processes' insides: calendars, queues, roles, services, and
//! processes added or removed whole.

use itsmflow_dsl::ast::{Item, Process, Spanned};

use super::{added, compare as by_name, removed, show, Change, Kind, Shown};

/// The processes on both sides, paired by name, in the new side's order.
pub(super) fn process_pairs<'a>(
    old: &[&'a Item],
    new: &[&'a Item],
) -> Vec<(&'a Process, &'a Process)> {
    let old = processes(old);
    processes(new)
        .into_iter()
        .filter_map(|n| {
            old.iter()
                .find(|o| o.name.name == n.name.name)
                .map(|o| (*o, n))
        })
        .collect()
}

fn processes<'a>(items: &[&'a Item]) -> Vec<&'a Process> {
    items
        .iter()
        .copied()
        .filter_map(|i| match i {
            Item::Process(p) => Some(p),
            _ => None,
        })
        .collect()
}

/// Calendars, queues, tiers, roles, services and whole processes, in that order.
pub(super) fn compare(old: &[&Item], new: &[&Item]) -> Vec<Change> {
    let mut out = Vec::new();
    for kind in [
        Kind::Calendar,
        Kind::Queue,
        Kind::Tier,
        Kind::Role,
        Kind::Service,
    ] {
        out.extend(by_name(
            kind,
            &of_kind(old, kind),
            &of_kind(new, kind),
            show_item,
        ));
    }
    out.extend(whole_processes(old, new));
    out
}

/// The items of one kind, by name.
fn of_kind<'a>(items: &[&'a Item], kind: Kind) -> Vec<(String, &'a Item)> {
    items
        .iter()
        .copied()
        .filter(|i| item_kind(i) == Some(kind))
        .map(|i| (i.name().name.clone(), i))
        .collect()
}

fn item_kind(item: &Item) -> Option<Kind> {
    match item {
        Item::Calendar(_) => Some(Kind::Calendar),
        Item::Queue(_) => Some(Kind::Queue),
        Item::Tier(_) => Some(Kind::Tier),
        Item::Role(_) => Some(Kind::Role),
        Item::Service(_) => Some(Kind::Service),
        // Processes are compared entry by entry; tests are not part of what runs.
        Item::Process(_) | Item::Test(_) => None,
    }
}

/// An item, and its parts: its label and each entry of its block by keyword (`timezone`,
/// `hours`, `tier`, `members`, `item laptop`, ...).
fn show_item(item: &Item) -> Shown {
    let text = show::item(item.clone());
    let label: &Option<Spanned<String>> = match item {
        Item::Calendar(c) => &c.label,
        Item::Queue(q) => &q.label,
        Item::Tier(t) => &t.label,
        Item::Role(r) => &r.label,
        Item::Service(s) => &s.label,
        Item::Process(p) => &p.label,
        Item::Test(_) => &None,
    };
    let mut aspects = Vec::new();
    if let Some(label) = show::label(label) {
        aspects.push(("label".to_string(), label));
    }
    match item {
        // A calendar's holidays one by one, by date, as a tailoring addresses them.
        Item::Calendar(c) => aspects.extend(calendar_aspects(c)),
        _ => aspects.extend(show::body_entries(&text).iter().map(|e| show::keyed(e))),
    }
    Shown { text, aspects }
}

/// A calendar's time zone, its hours by their days, and each holiday by its date.
fn calendar_aspects(c: &itsmflow_dsl::ast::Calendar) -> Vec<(String, String)> {
    use itsmflow_dsl::ast::CalendarEntry;
    let mut out = Vec::new();
    for entry in &c.entries {
        match entry {
            CalendarEntry::Timezone(tz) => out.push(("timezone".to_string(), tz.node.clone())),
            CalendarEntry::Hours(h) => {
                let line =
                    show::one_line(&show::item(Item::Calendar(itsmflow_dsl::ast::Calendar {
                        entries: vec![entry.clone()],
                        ..c.clone()
                    })));
                let days = h
                    .days
                    .iter()
                    .map(|d| match &d.to {
                        Some(to) => format!("{}-{to}", d.from),
                        None => d.from.to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                let hours = line
                    .split_once(&format!("hours {days} "))
                    .map(|(_, rest)| rest.trim_end_matches(['}', ' ']).to_string())
                    .unwrap_or(line);
                out.push((format!("hours {days}"), hours));
            }
            CalendarEntry::Holidays(days, _) => {
                for day in days {
                    let label = day.label.as_ref().map(|l| format!("{:?}", l.node));
                    out.push((
                        format!("holiday {}", day.date.node),
                        label.unwrap_or_else(|| "(no label)".to_string()),
                    ));
                }
            }
            CalendarEntry::Overlay { .. } => {}
        }
    }
    out
}

/// Processes only one side has, printed whole.
fn whole_processes(old: &[&Item], new: &[&Item]) -> Vec<Change> {
    let (old, new) = (processes(old), processes(new));
    let text = |p: &Process| show::item(Item::Process(p.clone()));
    let has = |side: &[&Process], name: &str| side.iter().any(|x| x.name.name == name);
    let mut out: Vec<Change> = new
        .iter()
        .filter(|p| !has(&old, &p.name.name))
        .map(|p| added(Kind::Process, &p.name.name, text(p)))
        .collect();
    out.extend(
        old.iter()
            .filter(|p| !has(&new, &p.name.name))
            .map(|p| removed(Kind::Process, &p.name.name, text(p))),
    );
    out
}
