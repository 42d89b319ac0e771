//! The service catalogue, for the portal: each service with its owner, hours, teams and
//! agreed targets, and what can be requested of it.

use axum::http::StatusCode;
use axum::response::Response;
use itsmflow_engine::model::{CalendarRef, Project, Service, Target};
use serde_json::{json, Map, Value as Json};

use crate::serve::app::json;
use crate::serve::auth::Ctx;
use crate::serve::error::ApiResult;
use crate::serve::tenants::Backend;

type C<B> = Ctx<<B as Backend>::Store>;

/// `GET /v1/catalog`: the catalogue of the tenant's newest published project (empty before
/// the first publish). Anyone signed in may read it: it is what the portal offers.
pub async fn get<B: Backend>(ctx: C<B>) -> ApiResult<Response> {
    let services = match ctx.tenant.engine.catalog().latest_project() {
        Some(project) => project
            .services
            .iter()
            .map(|s| service(&project, s))
            .collect(),
        None => Vec::new(),
    };
    Ok(json(StatusCode::OK, &json!({ "services": services })))
}

fn calendar_name(project: &Project, c: CalendarRef) -> String {
    match c {
        CalendarRef::AlwaysOpen => "24x7".to_string(),
        CalendarRef::Named(id) => project.calendars[id.index()].name.clone(),
    }
}

fn target(project: &Project, priority: &str, t: &Target) -> Json {
    json!({
        "priority": priority,
        "respond": t.respond.map(|d| d.to_string()),
        "resolve": t.resolve.map(|d| d.to_string()),
        "calendar": calendar_name(project, t.calendar),
    })
}

fn service(project: &Project, s: &Service) -> Json {
    let items: Vec<Json> = s
        .items
        .iter()
        .map(|i| {
            let process = project.process(&i.process);
            let field =
                |f: itsmflow_engine::model::FieldId| process.and_then(|p| p.fields.get(f.index()));
            let presets: Map<String, Json> = i
                .presets
                .iter()
                .filter_map(|(f, v)| {
                    let f = field(*f)?;
                    Some((
                        f.name.clone(),
                        itsmflow_engine::runtime::values::to_json(f, v),
                    ))
                })
                .collect();
            let requires: Vec<&str> = i
                .requires
                .iter()
                .filter_map(|f| field(*f).map(|f| f.name.as_str()))
                .collect();
            json!({
                "name": i.name,
                "label": i.label,
                "description": i.description,
                "process": i.process,
                "presets": presets,
                "requires": requires,
            })
        })
        .collect();
    json!({
        "name": s.name,
        "label": s.label,
        "description": s.description,
        "owner": s.owner.map(|r| project.role(r).name.clone()),
        "calendar": s.calendar.map(|c| calendar_name(project, c)),
        "queues": s.queues.iter().map(|q| project.queue(*q).name.clone()).collect::<Vec<_>>(),
        "targets": s.targets.iter().map(|(p, t)| target(project, p, t)).collect::<Vec<_>>(),
        "items": items,
    })
}
