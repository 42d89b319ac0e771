//! A queue page's filter and sort, read from its query string (`?q=printer&standing=at-risk&
//! holder=nobody&sort=due`), so a filtered queue is a link: bookmarked, refreshed live with
//! the same filter, and saved under a name (`super::saved_filters`) as exactly that query.

use chrono::{DateTime, Utc};
use itsmflow_engine::runtime::TaskState;
use maud::{html, Markup};
use serde::Deserialize;

use super::queue::{stage_label, title, Row};
use crate::web::standing::Standing;
use crate::web::WebError;

/// The query string as sent (every part optional; empty means "any").
#[derive(Deserialize, Default, Debug, Clone)]
pub struct FilterQuery {
    #[serde(default)]
    q: Option<String>,
    #[serde(default)]
    standing: Option<String>,
    #[serde(default)]
    holder: Option<String>,
    #[serde(default)]
    sort: Option<String>,
    /// The name a filter was just saved under (a notice, not part of the filter).
    #[serde(default)]
    saved: Option<String>,
}

impl FilterQuery {
    /// The filter's fields of a posted form (the save form repeats them as hidden fields).
    pub fn from_fields(form: &crate::web::csrf::Fields) -> Self {
        let get = |k: &str| form.get(k).map(str::to_string);
        FilterQuery {
            q: get("q"),
            standing: get("standing"),
            holder: get("holder"),
            sort: get("sort"),
            saved: None,
        }
    }

    /// A stored query string read back (a malformed one reads as no filter).
    pub fn from_query(query: &str) -> Self {
        serde_urlencoded::from_str(query).unwrap_or_default()
    }

    pub fn saved(&self) -> Option<&str> {
        self.saved.as_deref()
    }
}

/// Whose tasks to show.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Holder {
    #[default]
    Anyone,
    /// Claimed by or assigned to the viewer.
    Me,
    /// Neither claimed (a live lease) nor assigned.
    Nobody,
}

/// The order of the rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Sort {
    /// The queue's own order: priority, then due time.
    #[default]
    Priority,
    /// Most urgent clock first: the least business time left, whatever the priority.
    Due,
    /// Newest tasks first.
    Newest,
    /// The group's own target first: the earliest OLA due time (a task without one last).
    Ola,
}

/// A filter, read and checked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// Lowercased words that must all appear in the row's ticket, stage, service or process.
    pub words: Vec<String>,
    pub standing: Option<Standing>,
    pub holder: Holder,
    pub sort: Sort,
}

/// The longest search text kept (a filter is a link and a saved row, not a document).
const MAX_SEARCH: usize = 200;

const STANDINGS: [(Standing, &str); 4] = [
    (Standing::OnTime, "on-time"),
    (Standing::AtRisk, "at-risk"),
    (Standing::Breached, "breached"),
    (Standing::Paused, "paused"),
];

impl Filter {
    pub fn parse(q: &FilterQuery) -> Result<Filter, WebError> {
        let bad = |what: &str, v: &str| WebError::BadForm(format!("unknown {what} `{v}`"));
        let search = q.q.as_deref().unwrap_or_default().trim();
        if search.chars().count() > MAX_SEARCH {
            return Err(WebError::BadForm(format!(
                "the search may be at most {MAX_SEARCH} characters"
            )));
        }
        let standing = match q.standing.as_deref().unwrap_or_default() {
            "" => None,
            v => Some(
                STANDINGS
                    .iter()
                    .find(|(_, n)| *n == v)
                    .map(|(s, _)| *s)
                    .ok_or_else(|| bad("clock state", v))?,
            ),
        };
        let holder = match q.holder.as_deref().unwrap_or_default() {
            "" => Holder::Anyone,
            "me" => Holder::Me,
            "nobody" => Holder::Nobody,
            v => return Err(bad("holder", v)),
        };
        let sort = match q.sort.as_deref().unwrap_or_default() {
            "" | "priority" => Sort::Priority,
            "due" => Sort::Due,
            "newest" => Sort::Newest,
            "ola" => Sort::Ola,
            v => return Err(bad("order", v)),
        };
        Ok(Filter {
            words: search.split_whitespace().map(str::to_lowercase).collect(),
            standing,
            holder,
            sort,
        })
    }

    pub fn is_default(&self) -> bool {
        *self == Filter::default()
    }

    /// The filter as form fields, only those that differ from the default, in a fixed order.
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut parts = Vec::new();
        if !self.words.is_empty() {
            parts.push(("q", self.words.join(" ")));
        }
        if let Some((_, n)) = self
            .standing
            .and_then(|s| STANDINGS.iter().find(|(x, _)| *x == s))
        {
            parts.push(("standing", n.to_string()));
        }
        match self.holder {
            Holder::Anyone => {}
            Holder::Me => parts.push(("holder", "me".into())),
            Holder::Nobody => parts.push(("holder", "nobody".into())),
        }
        match self.sort {
            Sort::Priority => {}
            Sort::Due => parts.push(("sort", "due".into())),
            Sort::Newest => parts.push(("sort", "newest".into())),
            Sort::Ola => parts.push(("sort", "ola".into())),
        }
        parts
    }

    /// The query string that gives this filter back (empty for none), so the same filter is
    /// always the same link.
    pub fn to_query(&self) -> String {
        self.pairs()
            .iter()
            .map(|(k, v)| format!("{k}={}", super::auth::encode(v)))
            .collect::<Vec<_>>()
            .join("&")
    }

    /// The filter in words, for a saved filter's list entry.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.words.is_empty() {
            parts.push(format!("“{}”", self.words.join(" ")));
        }
        if let Some(s) = self.standing {
            parts.push(s.word().to_string());
        }
        match self.holder {
            Holder::Anyone => {}
            Holder::Me => parts.push("mine".into()),
            Holder::Nobody => parts.push("nobody's".into()),
        }
        parts.push(
            match self.sort {
                Sort::Priority => "by priority",
                Sort::Due => "by time left",
                Sort::Newest => "newest first",
                Sort::Ola => "by OLA due time",
            }
            .into(),
        );
        parts.join(", ")
    }

    /// What the table's order is, for its caption.
    pub fn order_words(&self) -> &'static str {
        match self.sort {
            Sort::Priority => "In the order to take them: priority, then due time.",
            Sort::Due => "Least business time left first.",
            Sort::Newest => "Newest first.",
            Sort::Ola => {
                "Earliest OLA due time first: what the team must finish first by its own targets."
            }
        }
    }

    fn keeps(&self, r: &Row, me: &str, now: DateTime<Utc>) -> bool {
        if let Some(want) = self.standing {
            if r.standing().map(|(s, _)| s) != Some(want) {
                return false;
            }
        }
        let claimed_by = match (&r.task.state, &r.task.claimed_by, r.task.lease_until) {
            (TaskState::Claimed, Some(by), Some(until)) if until > now => Some(by.as_ref()),
            _ => None,
        };
        let assigned = r.task.assigned_to.as_deref();
        let held = match self.holder {
            Holder::Anyone => true,
            Holder::Me => claimed_by == Some(me) || (claimed_by.is_none() && assigned == Some(me)),
            Holder::Nobody => claimed_by.is_none() && assigned.is_none(),
        };
        if !held {
            return false;
        }
        if self.words.is_empty() {
            return true;
        }
        let service = match r.view.field("service") {
            Some(serde_json::Value::String(s)) => s,
            _ => String::new(),
        };
        let text = format!(
            "#{} {} {} {} {}",
            r.view.id().0,
            title(&r.view),
            stage_label(&r.view),
            service,
            r.view.process()
        )
        .to_lowercase();
        self.words.iter().all(|w| text.contains(w.as_str()))
    }

    /// Keep the rows the filter selects, in its order (the queue's order is the one they come
    /// in, kept among equals).
    pub fn apply(&self, rows: Vec<Row>, me: &str, now: DateTime<Utc>) -> Vec<Row> {
        let mut rows: Vec<Row> = rows
            .into_iter()
            .filter(|r| self.keeps(r, me, now))
            .collect();
        match self.sort {
            Sort::Priority => {}
            Sort::Newest => rows.sort_by_key(|r| std::cmp::Reverse(r.task.created_at)),
            // The task carries its OLA due time (kept with it by the engine), so no clock is
            // worked out for this order; a task without one comes last.
            Sort::Ola => rows.sort_by_key(|r| {
                r.task
                    .ola_due_at
                    .map_or((1, i64::MAX), |d| (0, d.timestamp()))
            }),
            Sort::Due => rows.sort_by_key(|r| {
                // Overdue first (most overdue first), then the least time left; no clock last.
                r.standing()
                    .and_then(|(_, c)| c.due_at)
                    .map_or((1, i64::MAX), |d| (0, d.timestamp()))
            }),
        }
        rows
    }
}

/// The filter's form, above the queue's table: a GET form, so its result is a link.
pub fn form(queue: &str, f: &Filter) -> Markup {
    let standing = f
        .standing
        .and_then(|s| STANDINGS.iter().find(|(x, _)| *x == s))
        .map_or("", |(_, n)| *n);
    let holder = match f.holder {
        Holder::Anyone => "",
        Holder::Me => "me",
        Holder::Nobody => "nobody",
    };
    let sort = match f.sort {
        Sort::Priority => "priority",
        Sort::Due => "due",
        Sort::Newest => "newest",
        Sort::Ola => "ola",
    };
    html! {
        form.filter #queue-filter method="get" action=(format!("/queues/{queue}")) aria-label="Filter and sort" {
            div {
                label for="f-q" { "Search" }
                input #f-q type="search" name="q" value=(f.words.join(" ")) autocomplete="off";
            }
            div {
                label for="f-standing" { "Service clock" }
                select #f-standing name="standing" {
                    option value="" selected[standing.is_empty()] { "Any" }
                    @for (s, n) in STANDINGS {
                        option value=(n) selected[standing == n] { (s.word()) }
                    }
                }
            }
            div {
                label for="f-holder" { "Held by" }
                select #f-holder name="holder" {
                    option value="" selected[holder.is_empty()] { "Anyone" }
                    option value="me" selected[holder == "me"] { "Me" }
                    option value="nobody" selected[holder == "nobody"] { "Nobody" }
                }
            }
            div {
                label for="f-sort" { "Order" }
                select #f-sort name="sort" {
                    option value="priority" selected[sort == "priority"] { "Priority, then due time" }
                    option value="due" selected[sort == "due"] { "Least time left" }
                    option value="newest" selected[sort == "newest"] { "Newest first" }
                    option value="ola" selected[sort == "ola"] { "Earliest OLA due" }
                }
            }
            div { button type="submit" #apply-filter { "Apply" } }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> FilterQuery {
        FilterQuery::from_query(s)
    }

    #[test]
    fn filters_read_back_from_their_own_link() {
        let f = Filter::parse(&q("q=Printer+fire&standing=at-risk&holder=nobody&sort=due"))
            .expect("a filter");
        assert_eq!(f.words, vec!["printer", "fire"]);
        assert_eq!(f.standing, Some(Standing::AtRisk));
        assert_eq!(
            f.to_query(),
            "q=printer%20fire&standing=at-risk&holder=nobody&sort=due"
        );
        assert_eq!(Filter::parse(&q(&f.to_query())).ok(), Some(f));
        assert!(Filter::parse(&q("")).is_ok_and(|f| f.is_default() && f.to_query().is_empty()));
    }

    #[test]
    fn unknown_values_are_refused() {
        assert!(Filter::parse(&q("standing=late")).is_err());
        assert!(Filter::parse(&q("holder=them")).is_err());
        assert!(Filter::parse(&q("sort=random")).is_err());
        assert!(Filter::parse(&q(&format!("q={}", "x".repeat(201)))).is_err());
    }
}
