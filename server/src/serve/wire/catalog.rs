//! The service catalogue, for the portal: each service with its owner, hours, teams and
//! agreed targets, and what can be requested of it.

use itsmflow_engine::model::{self, CalendarRef, Project, Target};
use serde::Serialize;
use serde_json::{Map, Value as Json};
use utoipa::ToSchema;

/// The catalogue of the tenant's newest published project (empty before the first publish).
#[derive(Debug, Serialize, ToSchema)]
pub struct Catalogue {
    pub services: Vec<Service>,
}

impl From<&Project> for Catalogue {
    fn from(project: &Project) -> Self {
        Catalogue {
            services: project
                .services
                .iter()
                .map(|s| Service::of(project, s))
                .collect(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Service {
    #[schema(examples("email"))]
    pub name: String,
    #[schema(required = true, examples("E-mail"))]
    pub label: Option<String>,
    #[schema(required = true)]
    pub description: Option<String>,
    /// The role whose holders answer for the service.
    #[schema(required = true)]
    pub owner: Option<String>,
    /// The calendar it is supported on.
    #[schema(required = true)]
    pub calendar: Option<String>,
    /// The queues that work it, first line first.
    pub queues: Vec<String>,
    /// Targets agreed for the service, by priority; they override the process's own for its
    /// tickets.
    pub targets: Vec<ServiceTarget>,
    pub items: Vec<CatalogueItem>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceTarget {
    #[schema(examples("P1"))]
    pub priority: String,
    #[schema(required = true, examples("10m"))]
    pub respond: Option<String>,
    #[schema(required = true, examples("2h"))]
    pub resolve: Option<String>,
    #[schema(examples("24x7"))]
    pub calendar: String,
}

/// Something the portal offers to request: a process, with fields it presets.
#[derive(Debug, Serialize, ToSchema)]
pub struct CatalogueItem {
    #[schema(examples("new_laptop"))]
    pub name: String,
    #[schema(required = true)]
    pub label: Option<String>,
    #[schema(required = true)]
    pub description: Option<String>,
    #[schema(examples("request"))]
    pub process: String,
    /// The fields the item fixes, by name.
    #[schema(value_type = Object)]
    pub presets: Map<String, Json>,
    /// Fields a ticket for this item must have besides the process's own required ones.
    pub requires: Vec<String>,
}

fn calendar_name(project: &Project, c: CalendarRef) -> String {
    match c {
        CalendarRef::AlwaysOpen => "24x7".to_string(),
        CalendarRef::Named(id) => project.calendars[id.index()].name.clone(),
    }
}

impl ServiceTarget {
    fn of(project: &Project, priority: &str, t: &Target) -> Self {
        ServiceTarget {
            priority: priority.to_string(),
            respond: t.respond.map(|d| d.to_string()),
            resolve: t.resolve.map(|d| d.to_string()),
            calendar: calendar_name(project, t.calendar),
        }
    }
}

impl CatalogueItem {
    fn of(project: &Project, i: &model::CatalogueItem) -> Self {
        let process = project.process(&i.process);
        let field = |f: model::FieldId| process.and_then(|p| p.fields.get(f.index()));
        CatalogueItem {
            name: i.name.clone(),
            label: i.label.clone(),
            description: i.description.clone(),
            process: i.process.clone(),
            presets: i
                .presets
                .iter()
                .filter_map(|(f, v)| {
                    let f = field(*f)?;
                    Some((
                        f.name.clone(),
                        itsmflow_engine::runtime::values::to_json(f, v),
                    ))
                })
                .collect(),
            requires: i
                .requires
                .iter()
                .filter_map(|f| field(*f).map(|f| f.name.clone()))
                .collect(),
        }
    }
}

impl Service {
    fn of(project: &Project, s: &model::Service) -> Self {
        Service {
            name: s.name.clone(),
            label: s.label.clone(),
            description: s.description.clone(),
            owner: s.owner.map(|r| project.role(r).name.clone()),
            calendar: s.calendar.map(|c| calendar_name(project, c)),
            queues: s
                .queues
                .iter()
                .map(|q| project.queue(*q).name.clone())
                .collect(),
            targets: s
                .targets
                .iter()
                .map(|(p, t)| ServiceTarget::of(project, p, t))
                .collect(),
            items: s
                .items
                .iter()
                .map(|i| CatalogueItem::of(project, i))
                .collect(),
        }
    }
}
