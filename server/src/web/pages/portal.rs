//! The requesters' portal: the catalogue of what they can raise (with a search: the services'
//! items, in `super::catalogue`, and the processes), a form for
//! raising a ticket generated from the process's fields, and their tickets with what happens
//! next and the actions they may take now (answering, confirming, cancelling).
//!
//! Raising goes through the API's own create (`instances::raise`), so the engine validates the
//! fields and its messages are shown at the fields they concern. Actions post to the ticket
//! page's action route (the API's perform), and come back here.

use std::collections::HashMap;

use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::Response;
use itsmflow_engine::model::{Field, FieldType, Process, RuleKind};
use itsmflow_engine::runtime::catalog::Definition;
use itsmflow_engine::runtime::{values, InstanceView};
use itsmflow_engine::store::InstanceFilter;
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::{Map, Value as Json};

use super::queue::{stage_label, title, when};
use super::ticket::{input, label_of, list_items, posted_value};
use crate::serve::error::ApiError;
use crate::serve::routes::{definitions, instances};
use crate::serve::tenants::Backend;
use crate::web::csrf::{Fields, Posted};
use crate::web::layout::{self, Section, Viewer};
use crate::web::session::Signed;
use crate::web::WebResult;

/// The portal's list of the user's tickets, where its action forms come back to.
pub const MY_TICKETS: &str = "/portal/tickets";

/// Tickets the list shows at most (newest first).
const MAX_TICKETS: u32 = 100;

#[derive(Deserialize, Default)]
pub struct CatalogueQuery {
    q: Option<String>,
}

/// What kind of thing a catalogue entry raises: a process directly (the services and their
/// items, `super::catalogue`, are a section of their own before these, under the same search).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Process,
}

impl Kind {
    fn heading(self) -> &'static str {
        match self {
            Kind::Process => "Processes",
        }
    }
}

/// One thing a requester can raise.
struct Entry {
    kind: Kind,
    /// Its name as the definitions write it (searched too).
    name: String,
    title: String,
    summary: String,
    href: String,
}

impl Entry {
    fn matches(&self, words: &[String]) -> bool {
        let text = format!("{} {} {}", self.name, self.title, self.summary).to_lowercase();
        words.iter().all(|w| text.contains(w.as_str()))
    }
}

fn process_entry(d: &Definition) -> Entry {
    let p = d.model();
    let asks: Vec<&str> = form_fields(p)
        .filter(|f| f.required)
        .map(|f| f.name.as_str())
        .collect();
    Entry {
        kind: Kind::Process,
        name: p.name.clone(),
        title: label_of(&p.name, p.label.as_deref()).to_string(),
        summary: if asks.is_empty() {
            "Nothing to fill in but what you want to say.".to_string()
        } else {
            format!("Asks for: {}.", asks.join(", ").replace('_', " "))
        },
        href: format!("/portal/new/{}", p.name),
    }
}

pub(super) fn viewer<'a, S: itsmflow_engine::store::Store>(signed: &'a Signed<S>) -> Viewer<'a> {
    Viewer {
        who: &signed.ctx.who,
        csrf: &signed.session.csrf,
    }
}

/// `GET /portal`: the catalogue, filtered by the search words (all must appear).
pub async fn catalogue<B: Backend>(
    signed: Signed<B::Store>,
    Query(q): Query<CatalogueQuery>,
) -> WebResult<Response> {
    let search = q.q.unwrap_or_default();
    let words: Vec<String> = search
        .split_whitespace()
        .map(|w| w.to_lowercase())
        .collect();
    let entries: Vec<Entry> = definitions::latest::<B>(&signed.ctx)
        .iter()
        .map(|d| process_entry(d))
        .filter(|e| e.matches(&words))
        .collect();
    let kinds = [Kind::Process];
    let project = signed.ctx.tenant.engine.catalog().latest_project();
    let (services, services_shown) = super::catalogue::services_section(project.as_deref(), &words);
    let body = html! {
        h1 { "What do you need?" }
        form.search role="search" method="get" action="/portal" {
            label for="q" { "Search the catalogue" }
            div.search-row {
                input #q type="search" name="q" value=(search) autocomplete="off";
                button type="submit" { "Search" }
            }
        }
        p { a href=(MY_TICKETS) { "Your tickets" } " — follow what you raised, answer questions, confirm." }
        @if entries.is_empty() && services_shown == 0 {
            p.empty role="status" { "Nothing in the catalogue matches “" (search) "”." }
        }
        (services)
        @for kind in kinds {
            @let of_kind: Vec<&Entry> = entries.iter().filter(|e| e.kind == kind).collect();
            @if !of_kind.is_empty() {
                section aria-labelledby=(format!("h-{}", kind.heading())) {
                    h2 id=(format!("h-{}", kind.heading())) { (kind.heading()) }
                    ul.catalogue {
                        @for e in of_kind {
                            li.card {
                                h3 { a href=(e.href) { (e.title) } }
                                p.hint { (e.summary) }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::send(
        StatusCode::OK,
        layout::page("Portal", Some(&viewer(&signed)), Section::Portal, body),
    ))
}

/// The fields the raise form asks for: all but those filled later (a transition requires
/// them: a resolution is written when resolving) or computed by a rule, unless the process
/// requires them from the start.
pub(super) fn form_fields(p: &Process) -> impl Iterator<Item = &Field> {
    let later: Vec<usize> = p
        .transitions
        .iter()
        .flat_map(|t| t.requires.iter().map(|f| f.index()))
        .chain(p.rules.iter().filter_map(|r| match r.kind {
            RuleKind::Computes(f) => Some(f.index()),
            RuleKind::Guard(_) => None,
        }))
        .collect();
    p.fields
        .iter()
        .enumerate()
        .filter(move |(i, f)| f.required || !later.contains(i))
        .map(|(_, f)| f)
}

/// A field's value in the form: what was posted, else its default, else (the first required
/// person field, which says whom the ticket is for) the signed-in user.
pub(super) fn prefill(f: &Field, posted: Option<&Fields>, me: &str, first_person: bool) -> String {
    if let Some(form) = posted {
        // A list's elements, one per line, whether posted by a select or a text area.
        if f.ty.element().is_some() {
            let lines: Vec<&str> = form
                .all(&f.name)
                .into_iter()
                .flat_map(str::lines)
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect();
            return lines.join("\n");
        }
        return form.get(&f.name).unwrap_or_default().to_string();
    }
    if let Some(d) = &f.default {
        return match values::to_json(f, d) {
            Json::Array(_) if f.ty.element().is_some() => {
                list_items(Some(&values::to_json(f, d))).join("\n")
            }
            // A `datetime-local` control takes minutes without a zone (the form is in UTC).
            Json::String(s) if f.ty == FieldType::DateTime => {
                chrono::DateTime::parse_from_rfc3339(&s)
                    .map(|t| t.naive_utc().format("%Y-%m-%dT%H:%M").to_string())
                    .unwrap_or(s)
            }
            Json::String(s) => s,
            Json::Null => String::new(),
            other => other.to_string(),
        };
    }
    if first_person {
        return me.to_string();
    }
    String::new()
}

/// One field of the raise form: its label (marked when required), its control, and the
/// engine's message about it, if the last attempt had one.
pub(super) fn control(f: &Field, value: &str, error: Option<&str>) -> Markup {
    let id = format!("field-{}", f.name);
    let err_id = format!("err-{}", f.name);
    let hint_id = format!("hint-{}", f.name);
    let hint = match &f.ty {
        FieldType::List(element) if matches!(**element, FieldType::Enum(_)) => {
            Some("Choose any number.")
        }
        FieldType::List(element) if **element == FieldType::Person => {
            Some("User names, one per line.")
        }
        FieldType::List(_) => Some("One per line."),
        FieldType::Person => Some("A user name, e.g. your own."),
        FieldType::Duration => Some("e.g. 4h, 2d, 1d4h"),
        FieldType::DateTime => Some("In UTC."),
        _ => None,
    };
    let described = [hint.map(|_| hint_id.clone()), error.map(|_| err_id.clone())]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    let described = (!described.is_empty()).then_some(described);
    let invalid = error.map(|_| "true");
    let required = f.required;
    html! {
        div.field.invalid[error.is_some()] {
            label for=(id) {
                (f.name.replace('_', " "))
                @if required { " " span.req { "(required)" } }
            }
            @if let Some(h) = hint { p.hint id=(hint_id) { (h) } }
            @match &f.ty {
                FieldType::List(element) => {
                    @let chosen: Vec<&str> = value.lines().map(str::trim).collect();
                    @if let FieldType::Enum(options) = &**element {
                        select id=(id) name=(f.name) multiple required[required] aria-invalid=[invalid] aria-describedby=[described.as_deref()] {
                            @for o in options { option value=(o) selected[chosen.contains(&o.as_str())] { (o.replace('_', " ")) } }
                        }
                    } @else {
                        textarea id=(id) name=(f.name) required[required] aria-invalid=[invalid] aria-describedby=[described.as_deref()] { (value) }
                    }
                }
                FieldType::Enum(options) => {
                    select id=(id) name=(f.name) required[required] aria-invalid=[invalid] aria-describedby=[described.as_deref()] {
                        @if !required || value.is_empty() { option value="" { "Choose…" } }
                        @for o in options { option value=(o) selected[o == value] { (o.replace('_', " ")) } }
                    }
                }
                FieldType::Bool => {
                    select id=(id) name=(f.name) required[required] aria-invalid=[invalid] aria-describedby=[described.as_deref()] {
                        option value="" { "Choose…" }
                        option value="true" selected[value == "true"] { "yes" }
                        option value="false" selected[value == "false"] { "no" }
                    }
                }
                FieldType::Int => {
                    input id=(id) type="number" step="1" name=(f.name) value=(value) required[required]
                        aria-invalid=[invalid] aria-describedby=[described.as_deref()];
                }
                FieldType::DateTime => {
                    input id=(id) type="datetime-local" name=(f.name) value=(value) required[required]
                        aria-invalid=[invalid] aria-describedby=[described.as_deref()];
                }
                // A title is one line; other text may be long.
                FieldType::Text if f.name != "title" => {
                    textarea id=(id) name=(f.name) required[required] aria-invalid=[invalid] aria-describedby=[described.as_deref()] { (value) }
                }
                _ => {
                    input id=(id) type="text" name=(f.name) value=(value) required[required]
                        aria-invalid=[invalid] aria-describedby=[described.as_deref()]
                        autocomplete=[(f.ty == FieldType::Person).then_some("off")];
                }
            }
            @if let Some(e) = error { p.field-error id=(err_id) { (f.name) " " (e) } }
        }
    }
}

fn raise_form(
    signed: &Signed<impl itsmflow_engine::store::Store>,
    d: &Definition,
    posted: Option<&Fields>,
    errors: &HashMap<String, String>,
    problem: Option<&str>,
) -> Markup {
    let p = d.model();
    let me = signed.ctx.who.user.as_str();
    let first_person = form_fields(p)
        .find(|f| f.required && f.ty == FieldType::Person && f.default.is_none())
        .map(|f| f.name.clone());
    let title = label_of(&p.name, p.label.as_deref());
    let (required, optional): (Vec<&Field>, Vec<&Field>) = form_fields(p).partition(|f| f.required);
    let one = |f: &Field| {
        let value = prefill(
            f,
            posted,
            me,
            first_person.as_deref() == Some(f.name.as_str()),
        );
        control(f, &value, errors.get(&f.name).map(String::as_str))
    };
    html! {
        p { a href="/portal" { "← Catalogue" } }
        h1 { "Raise: " (title) }
        @if let Some(m) = problem { p.error role="alert" #raise-error { (m) } }
        form.raise method="post" action=(format!("/portal/new/{}", p.name)) novalidate[!errors.is_empty()] {
            input type="hidden" name="csrf" value=(signed.session.csrf);
            p.hint { "Fields marked (required) must be filled in." }
            @for f in &required { (one(f)) }
            @if !optional.is_empty() {
                fieldset {
                    legend { "More details (optional)" }
                    @for f in &optional { (one(f)) }
                }
            }
            p { button type="submit" #raise { "Raise" } }
        }
    }
}

fn find<B: Backend>(
    signed: &Signed<B::Store>,
    process: &str,
) -> WebResult<std::sync::Arc<Definition>> {
    signed
        .ctx
        .tenant
        .engine
        .catalog()
        .latest(process)
        .ok_or_else(|| ApiError::not_found(format!("no process `{process}` is published")).into())
}

/// `GET /portal/new/{process}`.
pub async fn new_form<B: Backend>(
    signed: Signed<B::Store>,
    Path(process): Path<String>,
) -> WebResult<Response> {
    let d = find::<B>(&signed, &process)?;
    let body = raise_form(&signed, &d, None, &HashMap::new(), None);
    let title = format!(
        "Raise: {}",
        label_of(&d.model().name, d.model().label.as_deref())
    );
    Ok(layout::send(
        StatusCode::OK,
        layout::page(&title, Some(&viewer(&signed)), Section::Portal, body),
    ))
}

/// `POST /portal/new/{process}`: the API's create with the form's fields (empty ones left
/// out, so the engine applies defaults and says which required ones are missing).
pub async fn raise<B: Backend>(
    Path(process): Path<String>,
    posted: Posted<B::Store>,
) -> WebResult<Response> {
    let Posted { signed, fields } = posted;
    let d = find::<B>(&signed, &process)?;
    let p = d.model();
    let mut input = Map::new();
    for f in form_fields(p) {
        if let Some(value) = posted_value(&f.ty, &f.name, &fields) {
            input.insert(f.name.clone(), value);
        }
    }
    match instances::raise::<B>(&signed.ctx, &process, &input).await {
        Ok(view) => Ok(layout::see_other(&format!(
            "{MY_TICKETS}?raised={}",
            view.id().0
        ))),
        Err(e) => {
            let errors = field_errors(&e);
            let problem = format!("{}: {}. Nothing was raised.", e.title, e.detail);
            let body = raise_form(&signed, &d, Some(&fields), &errors, Some(&problem));
            let title = format!("Raise: {}", label_of(&p.name, p.label.as_deref()));
            Ok(layout::send(
                e.status,
                layout::page(&title, Some(&viewer(&signed)), Section::Portal, body),
            ))
        }
    }
}

/// The engine's words about each field of a refused raise, by field (several joined), to be
/// shown at the fields they concern; the rest goes above the form.
pub(super) fn field_errors(e: &ApiError) -> HashMap<String, String> {
    let mut errors = HashMap::new();
    for item in e
        .extra
        .get("errors")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
    {
        if let (Some(field), Some(message)) = (
            item.get("field").and_then(Json::as_str),
            item.get("message").and_then(Json::as_str),
        ) {
            errors
                .entry(field.to_string())
                .and_modify(|m: &mut String| {
                    m.push_str("; ");
                    m.push_str(message);
                })
                .or_insert_with(|| message.to_string());
        }
    }
    errors
}

#[derive(Deserialize, Default)]
pub struct MineQuery {
    raised: Option<i64>,
    done: Option<String>,
    ticket: Option<i64>,
}

/// What happens next to a ticket, in words, when the requester has nothing to do.
fn waiting_on(view: &InstanceView) -> String {
    let p = view.definition().model();
    let stage = p.stage(view.stage()).and_then(|s| p.stages.get(s.index()));
    if stage.is_some_and(|s| s.is_final) {
        return "Nothing: this ticket is finished.".into();
    }
    if view.awaits_approval() {
        return "It waits for approval.".into();
    }
    match view.task() {
        Some(t) => format!("The {} team works on it.", t.queue.replace('_', " ")),
        None => "It waits for the next step.".into(),
    }
}

/// The actions the requester may take now, as forms that come back to this list.
fn next_actions(view: &InstanceView, actions: &[&str], csrf: &str) -> Markup {
    let id = view.id().0;
    let p = view.definition().model();
    html! {
        @for a in actions {
            @if let Some(tr) = p.transition(a).map(|x| &p.transitions[x.index()]) {
                @let name = label_of(&tr.name, tr.label.as_deref()).replace('_', " ");
                form.action method="post" action=(format!("/tickets/{id}/actions/{a}")) {
                    input type="hidden" name="csrf" value=(csrf);
                    input type="hidden" name="version" value=(view.version());
                    input type="hidden" name="back" value=(MY_TICKETS);
                    details.action {
                        summary { (name) }
                        @for f in tr.requires.iter().filter_map(|f| p.fields.get(f.index())) {
                            (input(&format!("{id}-{a}"), &f.name, &f.ty, view.field(&f.name)))
                        }
                        label for=(format!("reason-{id}-{a}")) { "Message (optional)" }
                        textarea id=(format!("reason-{id}-{a}")) name="reason" {}
                        p { button type="submit" data-action=(a) data-ticket=(id) { (name) } }
                    }
                }
            }
        }
    }
}

/// `GET /portal/tickets`: the tickets the user raised, newest first, each with its stage,
/// what happens next, and what they may do now.
pub async fn mine<B: Backend>(
    signed: Signed<B::Store>,
    Query(q): Query<MineQuery>,
) -> WebResult<Response> {
    let who = &signed.ctx.who;
    // The filter the API's list forces on requesters: their own tickets.
    let filter = InstanceFilter {
        created_by: Some(who.user.clone()),
        ..Default::default()
    };
    // As many as the server lets a page hold, up to the list's own limit.
    let limit = signed
        .ctx
        .limits
        .page(Some(i64::from(MAX_TICKETS)))
        .or_else(|_| signed.ctx.limits.page(None))?;
    let tickets = signed
        .ctx
        .tenant
        .engine
        .list_instances(&filter, limit)
        .await?;
    let actor = signed.ctx.actor();
    let csrf = &signed.session.csrf;
    let notice = match (q.raised, &q.done, q.ticket) {
        (Some(id), _, _) => Some(format!("Ticket #{id} is raised.")),
        (_, Some(done), Some(id)) => Some(format!("#{id}: {} done.", done.replace('_', " "))),
        _ => None,
    };
    let body = html! {
        h1 { "Your tickets" }
        @if let Some(n) = notice { p.notice role="status" { (n) } }
        p { a.button href="/portal" { "Raise a ticket" } }
        @if tickets.is_empty() { p.empty { "You have raised no tickets." } }
        ul.tickets {
            @for v in &tickets {
                @let actions = v.actions_for(&actor);
                @let p = v.definition().model();
                li.card.ticket-card data-ticket=(v.id().0) {
                    h2 { a href=(format!("/tickets/{}", v.id().0)) { "#" (v.id().0) " " (title(v)) } }
                    dl.fields {
                        dt { "Kind" } dd { (label_of(&p.name, p.label.as_deref())) }
                        dt { "Status" } dd.stage { (stage_label(v)) }
                        dt { "Raised" } dd { (when(v.created_at())) }
                        dt { "Next" } dd {
                            @if actions.is_empty() { (waiting_on(v)) }
                            @else { strong { "Your turn:" } " choose what to do below." }
                        }
                    }
                    (next_actions(v, &actions, csrf))
                }
            }
        }
    };
    Ok(layout::send(
        StatusCode::OK,
        layout::page(
            "Your tickets",
            Some(&viewer(&signed)),
            Section::Portal,
            body,
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::super::ticket::typed;
    use super::*;
    use itsmflow_engine::model::Value;

    fn field(ty: FieldType, required: bool, default: Option<Value>) -> Field {
        Field {
            name: "f".into(),
            ty,
            required,
            default,
        }
    }

    #[test]
    fn forms_are_filled_with_defaults_then_the_user() {
        let when = field(
            FieldType::DateTime,
            false,
            Some(Value::DateTime(1_777_626_000)),
        );
        assert_eq!(prefill(&when, None, "rita", false), "2026-05-01T09:00");
        let count = field(FieldType::Int, false, Some(Value::Int(3)));
        assert_eq!(prefill(&count, None, "rita", false), "3");
        let who = field(FieldType::Person, true, None);
        assert_eq!(prefill(&who, None, "rita", true), "rita");
        assert_eq!(prefill(&who, None, "rita", false), "");
        let posted = Fields::parse(b"f=typed").unwrap();
        assert_eq!(prefill(&count, Some(&posted), "rita", false), "typed");
    }

    #[test]
    fn values_are_typed_as_the_api_takes_them() {
        assert_eq!(typed(&FieldType::Int, "42"), Json::from(42));
        assert_eq!(typed(&FieldType::Int, "4x"), Json::from("4x"));
        assert_eq!(typed(&FieldType::Bool, "true"), Json::Bool(true));
        assert_eq!(
            typed(&FieldType::DateTime, "2026-05-01T09:00"),
            Json::from("2026-05-01T09:00:00+00:00")
        );
        assert_eq!(typed(&FieldType::Text, "x"), Json::from("x"));
    }

    #[test]
    fn lists_come_from_selects_and_lines() {
        use super::super::ticket::posted_value;
        let ints = FieldType::List(Box::new(FieldType::Int));
        let kinds = FieldType::List(Box::new(FieldType::Enum(vec!["a".into(), "b".into()])));
        let form = Fields::parse(b"n=1%0D%0A%0D%0A+2+%0D%0Ax&k=b&k=a&e=+%0D%0A").unwrap();
        assert_eq!(
            posted_value(&ints, "n", &form),
            Some(serde_json::json!([1, 2, "x"]))
        );
        assert_eq!(
            posted_value(&kinds, "k", &form),
            Some(serde_json::json!(["b", "a"]))
        );
        assert_eq!(posted_value(&ints, "e", &form), None, "blank lines only");
        assert_eq!(posted_value(&ints, "missing", &form), None);
        // Posted again, one element per line, blank lines gone.
        let list = field(ints, false, None);
        let f = Field {
            name: "n".into(),
            ..list
        };
        assert_eq!(prefill(&f, Some(&form), "rita", false), "1\n2\nx");
        let tagged = field(
            FieldType::List(Box::new(FieldType::Text)),
            false,
            Some(Value::List(
                vec![Value::Text("x".into()), Value::Text("y".into())].into(),
            )),
        );
        assert_eq!(prefill(&tagged, None, "rita", false), "x\ny");
    }
}
