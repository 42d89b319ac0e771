//! The portal's service catalogue: the services the tenant's project declares, each with what
//! can be requested of it (its catalogue items), and the form that raises an item.
//!
//! An item's form is its process's raise form less the fields the item presets (the item sets
//! them; asking would let the requester contradict it), with the item's own `requires` fields
//! marked required. Raising goes through the engine's `create_item`, the code
//! `POST /v1/instances` with `item` runs, so a refusal carries the API's own words, shown at the
//! fields they concern.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::Response;
use itsmflow_engine::model::{CatalogueItem, Field, FieldType, Process, Project, Service};
use maud::{html, Markup};
use serde_json::Map;

use super::portal::{control, field_errors, form_fields, prefill, viewer, MY_TICKETS};
use super::ticket::{label_of, posted_value};
use crate::serve::error::ApiError;
use crate::serve::tenants::Backend;
use crate::web::csrf::{Fields, Posted};
use crate::web::layout::{self, Section};
use crate::web::session::Signed;
use crate::web::WebResult;

/// Where an item's form is.
pub fn item_href(item: &str) -> String {
    format!("/portal/items/{item}")
}

fn words_match(text: &str, words: &[String]) -> bool {
    let text = text.to_lowercase();
    words.iter().all(|w| text.contains(w.as_str()))
}

fn service_text(s: &Service) -> String {
    format!(
        "{} {} {}",
        s.name,
        s.label.as_deref().unwrap_or_default(),
        s.description.as_deref().unwrap_or_default()
    )
}

fn item_text(i: &CatalogueItem) -> String {
    format!(
        "{} {} {}",
        i.name,
        i.label.as_deref().unwrap_or_default(),
        i.description.as_deref().unwrap_or_default()
    )
}

/// The services the search keeps, each with the items it keeps: a service whose own words
/// match keeps all its items; otherwise it is kept with the items that match, if any.
fn matching<'a>(
    project: &'a Project,
    words: &[String],
) -> Vec<(&'a Service, Vec<&'a CatalogueItem>)> {
    project
        .services
        .iter()
        .filter_map(|s| {
            if words_match(&service_text(s), words) {
                return Some((s, s.items.iter().collect()));
            }
            // A word may name the service and another the item ("vpn access").
            let items: Vec<&CatalogueItem> = s
                .items
                .iter()
                .filter(|i| words_match(&format!("{} {}", service_text(s), item_text(i)), words))
                .collect();
            (!items.is_empty()).then_some((s, items))
        })
        .collect()
}

/// The catalogue's section of the portal: services and their items that match the search
/// words, and how many services it shows.
pub fn services_section(project: Option<&Project>, words: &[String]) -> (Markup, usize) {
    let Some(project) = project else {
        return (html! {}, 0);
    };
    let found = matching(project, words);
    let markup = html! {
        @if !found.is_empty() {
            section aria-labelledby="h-services" {
                h2 #h-services { "Services" }
                ul.catalogue.services {
                    @for (s, items) in &found {
                        li.card.service data-service=(s.name) {
                            h3 { (label_of(&s.name, s.label.as_deref())) }
                            @if let Some(d) = &s.description { p.hint { (d) } }
                            @if items.is_empty() {
                                p.hint { "Nothing to request here: report a problem with it as an incident." }
                            } @else {
                                ul.items aria-label=(format!("What you can request of {}", label_of(&s.name, s.label.as_deref()))) {
                                    @for i in items {
                                        li data-item=(i.name) {
                                            a href=(item_href(&i.name)) { (label_of(&i.name, i.label.as_deref())) }
                                            @if let Some(d) = &i.description { br; span.hint { (d) } }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    (markup, found.len())
}

/// The fields an item's form asks for, in the process's order: the process's own raise
/// fields and the item's `requires` (marked required), less the item's presets (its service
/// among them, where the process has a service field).
fn item_fields(p: &Process, item: &CatalogueItem) -> Vec<Field> {
    let asked: Vec<&str> = form_fields(p).map(|f| f.name.as_str()).collect();
    p.fields
        .iter()
        .enumerate()
        .filter(|(i, _)| !item.presets.iter().any(|(f, _)| f.index() == *i))
        .filter_map(|(i, f)| {
            let required = item.requires.iter().any(|r| r.index() == i);
            if !required && !asked.contains(&f.name.as_str()) {
                return None;
            }
            let mut f = f.clone();
            f.required |= required;
            Some(f)
        })
        .collect()
}

/// An item of the newest published project, with its service and process.
struct Found {
    project: Arc<Project>,
    service: usize,
    item: usize,
}

impl Found {
    fn service(&self) -> &Service {
        &self.project.services[self.service]
    }
    fn item(&self) -> &CatalogueItem {
        &self.service().items[self.item]
    }
    fn process(&self) -> WebResult<&Process> {
        let name = &self.item().process;
        self.project
            .process(name)
            .ok_or_else(|| ApiError::not_found(format!("no process `{name}` is published")).into())
    }
    fn fields(&self) -> WebResult<Vec<Field>> {
        Ok(item_fields(self.process()?, self.item()))
    }
    fn title(&self) -> &str {
        label_of(&self.item().name, self.item().label.as_deref())
    }
}

fn find<B: Backend>(signed: &Signed<B::Store>, item: &str) -> WebResult<Found> {
    let not_found = || ApiError::not_found(format!("no catalogue item `{item}`"));
    let project = signed
        .ctx
        .tenant
        .engine
        .catalog()
        .latest_project()
        .ok_or_else(not_found)?;
    let (service, at) = project
        .services
        .iter()
        .enumerate()
        .find_map(|(si, s)| {
            s.items
                .iter()
                .position(|i| i.name == item)
                .map(|ii| (si, ii))
        })
        .ok_or_else(not_found)?;
    Ok(Found {
        project,
        service,
        item: at,
    })
}

fn item_form(
    signed: &Signed<impl itsmflow_engine::store::Store>,
    found: &Found,
    fields: &[Field],
    posted: Option<&Fields>,
    errors: &HashMap<String, String>,
    problem: Option<&str>,
) -> Markup {
    let me = signed.ctx.who.user.as_str();
    let item = found.item();
    let service = found.service();
    let first_person = fields
        .iter()
        .find(|f| f.required && f.ty == FieldType::Person && f.default.is_none())
        .map(|f| f.name.clone());
    let (required, optional): (Vec<&Field>, Vec<&Field>) = fields.iter().partition(|f| f.required);
    let one = |f: &Field| {
        let first = first_person.as_deref() == Some(f.name.as_str());
        control(
            f,
            &prefill(f, posted, me, first),
            errors.get(&f.name).map(String::as_str),
        )
    };
    html! {
        p { a href="/portal" { "← Catalogue" } }
        h1 { "Request: " (found.title()) }
        p.hint #item-service {
            (label_of(&service.name, service.label.as_deref()))
            @if let Some(d) = &item.description { " · " (d) }
        }
        @if let Some(m) = problem { p.error role="alert" #raise-error { (m) } }
        form.raise method="post" action=(item_href(&item.name)) novalidate[!errors.is_empty()] {
            input type="hidden" name="csrf" value=(signed.session.csrf);
            p.hint { "Fields marked (required) must be filled in." }
            @for f in &required { (one(f)) }
            @if !optional.is_empty() {
                fieldset {
                    legend { "More details (optional)" }
                    @for f in &optional { (one(f)) }
                }
            }
            p { button type="submit" #raise { "Request" } }
        }
    }
}

fn send_form(
    signed: &Signed<impl itsmflow_engine::store::Store>,
    status: StatusCode,
    found: &Found,
    body: Markup,
) -> Response {
    let title = format!("Request: {}", found.title());
    layout::send(
        status,
        layout::page(&title, Some(&viewer(signed)), Section::Portal, body),
    )
}

/// `GET /portal/items/{item}`.
pub async fn new_form<B: Backend>(
    signed: Signed<B::Store>,
    Path(item): Path<String>,
) -> WebResult<Response> {
    let found = find::<B>(&signed, &item)?;
    let fields = found.fields()?;
    let body = item_form(&signed, &found, &fields, None, &HashMap::new(), None);
    Ok(send_form(&signed, StatusCode::OK, &found, body))
}

/// `POST /portal/items/{item}`: the engine's `create_item` with the form's fields (empty ones
/// left out, so the engine applies defaults and names the required ones missing); the item's
/// presets are set by the engine, whatever the form carries.
pub async fn raise<B: Backend>(
    Path(item): Path<String>,
    posted: Posted<B::Store>,
) -> WebResult<Response> {
    let Posted { signed, fields } = posted;
    let found = find::<B>(&signed, &item)?;
    let asked = found.fields()?;
    let mut input = Map::new();
    for f in &asked {
        if let Some(value) = posted_value(&f.ty, &f.name, &fields) {
            input.insert(f.name.clone(), value);
        }
    }
    let ctx = &signed.ctx;
    let created = ctx
        .tenant
        .engine
        .create_item(&item, &input, &ctx.actor())
        .await
        .map_err(ApiError::from);
    match created {
        Ok(view) => Ok(layout::see_other(&format!(
            "{MY_TICKETS}?raised={}",
            view.id().0
        ))),
        Err(e) => {
            let errors = field_errors(&e);
            let problem = format!("{}: {}. Nothing was raised.", e.title, e.detail);
            let body = item_form(
                &signed,
                &found,
                &asked,
                Some(&fields),
                &errors,
                Some(&problem),
            );
            Ok(send_form(&signed, e.status, &found, body))
        }
    }
}
