//! Agents' personal saved filters: a queue's filter and sort saved under a name (kept per user
//! and tenant by the identity store), listed on the queues page and the queue's own page, each
//! a link to the filtered queue, with a button to delete it. Saving a name again replaces it.
//!
//! A saved filter is only a query string: opening it goes through the queue page's own
//! checks, so a filter saved for a queue the user no longer works shows nothing of it.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Response;
use maud::{html, Markup};

use super::queue_filter::{Filter, FilterQuery};
use crate::identity::store::SavedFilter;
use crate::serve::app::App;
use crate::serve::error::ApiError;
use crate::serve::tenants::Backend;
use crate::web::csrf::{Fields, Posted};
use crate::web::layout;
use crate::web::session::Signed;
use crate::web::{WebError, WebResult};

/// The longest name a filter may have.
const MAX_NAME: usize = 60;
/// Filters a user may keep: enough for every queue several times, not a place to store data.
const MAX_FILTERS: usize = 50;

/// Where a saved filter opens.
pub fn href(f: &SavedFilter) -> String {
    if f.query.is_empty() {
        format!("/queues/{}", f.queue)
    } else {
        format!("/queues/{}?{}", f.queue, f.query)
    }
}

/// The user's saved filters (all queues).
pub async fn of<B: Backend>(
    app: &App<B>,
    signed: &Signed<B::Store>,
) -> WebResult<Vec<SavedFilter>> {
    let who = &signed.ctx.who;
    app.identities
        .saved_filters(&who.tenant, &who.user)
        .await
        .map_err(|e| WebError::Api(ApiError::unavailable(e)))
}

/// The form that saves the filter shown under a name (the filter travels in hidden fields).
pub fn save_form(queue: &str, filter: &Filter, csrf: &str) -> Markup {
    let hidden = filter.pairs();
    html! {
        form.save-filter #save-filter method="post" action=(format!("/queues/{queue}/filters")) {
            input type="hidden" name="csrf" value=(csrf);
            @for (k, v) in &hidden { input type="hidden" name=(k) value=(v); }
            label for="filter-name" { "Save this filter as" }
            div.search-row {
                input #filter-name type="text" name="name" required maxlength=(MAX_NAME) autocomplete="off"
                    aria-describedby="filter-name-hint";
                button type="submit" #save-filter-button { "Save" }
            }
            p.hint #filter-name-hint { "Only you see it; saving a name again replaces that filter." }
        }
    }
}

/// The list of saved filters, each a link with a delete button; `queue` limits it to one queue.
pub fn list(filters: &[SavedFilter], queue: Option<&str>, csrf: &str) -> Markup {
    let shown: Vec<&SavedFilter> = filters
        .iter()
        .filter(|f| queue.is_none_or(|q| f.queue == q))
        .collect();
    html! {
        section.card #saved-filters aria-labelledby="h-saved" {
            h2 #h-saved { "Your saved filters" }
            @if shown.is_empty() {
                p.hint { "None yet: filter a queue, then save the filter under a name." }
            } @else {
                ul.saved {
                    @for f in shown {
                        @let described = Filter::parse(&FilterQuery::from_query(&f.query))
                            .map(|x| x.describe())
                            .unwrap_or_else(|_| f.query.clone());
                        li data-filter=(f.name) {
                            a href=(href(f)) { (f.name) }
                            @if queue.is_none() { " · " (f.queue) }
                            " " span.hint { "(" (described) ")" }
                            form.inline method="post" action=(format!("/queues/{}/filters/delete", f.queue)) {
                                input type="hidden" name="csrf" value=(csrf);
                                input type="hidden" name="name" value=(f.name);
                                button.secondary type="submit" aria-label=(format!("Delete the filter {}", f.name)) { "Delete" }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn name_of(fields: &Fields) -> WebResult<String> {
    let name = fields.get("name").map(str::trim).unwrap_or_default();
    if name.is_empty() {
        return Err(WebError::BadForm("give the filter a name".into()));
    }
    if name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(WebError::BadForm(format!(
            "a filter's name is one line of at most {MAX_NAME} characters"
        )));
    }
    Ok(name.to_string())
}

/// `POST /queues/{queue}/filters`: save the posted filter under its name, then show it.
pub async fn save<B: Backend>(
    State(app): State<Arc<App<B>>>,
    Path(queue): Path<String>,
    posted: Posted<B::Store>,
) -> WebResult<Response> {
    let Posted { signed, fields } = posted;
    super::queue::known_queue::<B>(&signed.ctx, &queue)?;
    let name = name_of(&fields)?;
    let query = FilterQuery::from_fields(&fields);
    let filter = Filter::parse(&query)?;
    let existing = of(&app, &signed).await?;
    let replaces = existing.iter().any(|f| f.queue == queue && f.name == name);
    if !replaces && existing.len() >= MAX_FILTERS {
        return Err(WebError::BadForm(format!(
            "you have {MAX_FILTERS} saved filters, the most one may keep: delete one first"
        )));
    }
    let saved = SavedFilter {
        queue: queue.clone(),
        name: name.clone(),
        query: filter.to_query(),
        created_at: app.clock.now(),
    };
    let who = &signed.ctx.who;
    app.identities
        .save_filter(&who.tenant, &who.user, &saved)
        .await
        .map_err(|e| WebError::Api(ApiError::unavailable(e)))?;
    let sep = if saved.query.is_empty() { "?" } else { "&" };
    Ok(layout::see_other(&format!(
        "{}{sep}saved={}",
        href(&saved),
        super::auth::encode(&name)
    )))
}

/// `POST /queues/{queue}/filters/delete`: delete one of the user's filters, back to the
/// queues page.
pub async fn delete<B: Backend>(
    State(app): State<Arc<App<B>>>,
    Path(queue): Path<String>,
    posted: Posted<B::Store>,
) -> WebResult<Response> {
    let Posted { signed, fields } = posted;
    signed.ctx.require_agent()?;
    let name = name_of(&fields)?;
    let who = &signed.ctx.who;
    let gone = app
        .identities
        .delete_filter(&who.tenant, &who.user, &queue, &name)
        .await
        .map_err(|e| WebError::Api(ApiError::unavailable(e)))?;
    if !gone {
        return Err(
            ApiError::not_found(format!("you have no filter `{name}` on `{queue}`")).into(),
        );
    }
    Ok(layout::see_other(&format!(
        "/queues?deleted={}",
        super::auth::encode(&name)
    )))
}
