//! The API's OpenAPI 3.1 document, derived from the code: the operations from the handlers'
//! `#[utoipa::path]` annotations, the schemas from the wire types (`super::wire`). It is served
//! at `/openapi.json`, printed by `itsmflow openapi`, and committed as `server/openapi.json`
//! (a test fails when that file differs from what the code derives).

use serde_json::{json, Value as Json};
use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{OpenApi as Document, Required};
use utoipa::{Modify, OpenApi};

use super::routes;
use super::wire;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "itsmflow",
        description = include_str!("openapi.md"),
        license(name = "See the repository"),
    ),
    servers((url = "http://127.0.0.1:8080", description = "`itsmflow serve` with its defaults")),
    security(("bearerAuth" = [])),
    tags(
        (name = "definitions", description = "Process definitions: publish, list, read, draw."),
        (name = "instances", description = "Instances (tickets): create, read, list, act, update, comment, link, history, clocks."),
        (name = "approvals", description = "Approval levels: a ticket's plan and ballots, votes, delegations, and each user's own list."),
        (name = "queues", description = "Queues: what there is to do, the next task, live events."),
        (name = "tasks", description = "Tasks: claim, renew, release, complete."),
        (name = "notifications", description = "The notifications outbox that escalations write: read it, mark rows delivered."),
        (name = "identity", description = "The caller, users, tokens and tenants."),
        (name = "operations", description = "Health, readiness, metrics and this description."),
    ),
    paths(
        routes::definitions::list,
        routes::definitions::publish,
        routes::definitions::versions,
        routes::definitions::version,
        routes::definitions::graph,
        routes::instances::list,
        routes::instances::create,
        routes::instances::get,
        routes::instances::update,
        routes::instances::perform,
        routes::instances::comment,
        routes::checklists::list,
        routes::checklists::tick,
        routes::instances::links,
        routes::instances::link,
        routes::instances::history,
        routes::instances::clocks,
        routes::instances::explain,
        routes::catalog::get,
        routes::queues::list,
        routes::queues::tasks,
        routes::queues::claim_next,
        routes::queues::events,
        routes::tasks::get,
        routes::tasks::claim,
        routes::tasks::renew,
        routes::tasks::release,
        routes::tasks::complete,
        routes::notifications::list,
        routes::notifications::delivered,
        routes::admin::me,
        routes::admin::availability,
        routes::admin::users,
        routes::admin::create_user,
        routes::admin::set_attributes,
        routes::admin::set_roles,
        routes::admin::set_password,
        routes::admin::create_token,
        routes::admin::tokens,
        routes::admin::revoke_token,
        routes::admin::create_tenant,
        routes::health::healthz,
        routes::health::readyz,
        routes::health::metrics,
        routes::health::openapi,
        routes::approvals::get,
        routes::approvals::vote,
        routes::approvals::delegate,
        routes::approvals::mine,
        routes::approvals::events,
        routes::tailoring::get,
        routes::tailoring::put,
        routes::tailoring::delete,
        routes::migrations::preview,
        routes::migrations::apply,
    ),
    components(
        // The schemas the operations refer to are collected from them; these are the ones
        // they name only indirectly: the problem body (the shared responses refer to it by
        // name), a query parameter's type, the events of the live streams (`x-events`), and
        // the webhook's body.
        schemas(
            wire::problem::Problem,
            wire::definitions::GraphFormat,
            wire::queues::QueueEvent,
            wire::queues::StreamReady,
            wire::queues::StreamLagged,
            wire::approvals::ApprovalsChanged,
            wire::notifications::WebhookPayload,
        ),
        responses(
            wire::problem::BadRequest,
            wire::problem::Unauthorized,
            wire::problem::Forbidden,
            wire::problem::NotFound,
            wire::problem::Conflict,
            wire::problem::Invalid,
            wire::problem::TooLarge,
            wire::problem::UnsupportedMediaType,
            wire::problem::Unavailable,
        ),
    ),
    modifiers(&BearerAuth, &OptionalBodies, &StreamEvents, &MalformedRequests),
)]
struct ApiDoc;

/// The bearer token every operation but health, readiness and this document asks for.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, doc: &mut Document) {
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some(
                "A token `itsm_` + 64 hex digits, from the first start's output, \
                 `POST /v1/users/{name}/tokens` or `itsmflow token create`.",
            ))
            .build();
        doc.components
            .get_or_insert_with(Default::default)
            .add_security_scheme("bearerAuth", SecurityScheme::Http(scheme));
    }
}

/// Every operation of the document, by its id.
fn operation<'d>(doc: &'d mut Document, id: &str) -> Option<&'d mut Operation> {
    doc.paths.paths.values_mut().find_map(|item| {
        [
            item.get.as_mut(),
            item.put.as_mut(),
            item.post.as_mut(),
            item.delete.as_mut(),
            item.patch.as_mut(),
        ]
        .into_iter()
        .flatten()
        .find(|op| op.operation_id.as_deref() == Some(id))
    })
}

/// The operations whose handlers take their body as `Option<JsonBody<_>>`: a request without
/// one takes the defaults. (The path macro marks every body it is given as required.)
struct OptionalBodies;

const OPTIONAL_BODIES: [&str; 4] = ["performAction", "claimTask", "claimNext", "createToken"];

impl Modify for OptionalBodies {
    fn modify(&self, doc: &mut Document) {
        for id in OPTIONAL_BODIES {
            if let Some(body) = operation(doc, id).and_then(|op| op.request_body.as_mut()) {
                body.required = Some(Required::False);
            }
        }
    }
}

/// The live streams' events: each event's name and the schema of its `data` (one JSON
/// document per event), as `x-events` on the stream's response. OpenAPI 3.1 has no way of its
/// own to describe the events of a `text/event-stream`.
struct StreamEvents;

fn schema_ref(name: &str) -> Json {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

impl Modify for StreamEvents {
    fn modify(&self, doc: &mut Document) {
        let queue_event = schema_ref("QueueEvent");
        let streams = [
            (
                "queueEvents",
                json!({
                    "ready": schema_ref("StreamReady"),
                    "added": queue_event,
                    "claimed": queue_event,
                    "released": queue_event,
                    "removed": queue_event,
                    "escalated": queue_event,
                    "lagged": schema_ref("StreamLagged"),
                }),
            ),
            (
                "myApprovalEvents",
                json!({
                    "ready": schema_ref("StreamReady"),
                    "approvals": schema_ref("ApprovalsChanged"),
                    "lagged": schema_ref("StreamLagged"),
                }),
            ),
        ];
        for (id, events) in streams {
            let Some(op) = operation(doc, id) else {
                continue;
            };
            if let Some(utoipa::openapi::RefOr::T(ok)) = op.responses.responses.get_mut("200") {
                ok.extensions
                    .get_or_insert_with(Extensions::default)
                    .merge(Extensions::builder().add("x-events", events).build());
            }
        }
    }
}

/// Every operation that takes parameters or a body refuses a malformed one (a path parameter
/// that is not a number, an unknown query parameter, JSON that does not parse) with 400, in
/// the problem format: the extractors all of them use (`PathArgs`, `QueryArgs`, `JsonBody`)
/// do.
struct MalformedRequests;

impl Modify for MalformedRequests {
    fn modify(&self, doc: &mut Document) {
        for item in doc.paths.paths.values_mut() {
            let ops = [
                item.get.as_mut(),
                item.put.as_mut(),
                item.post.as_mut(),
                item.delete.as_mut(),
                item.patch.as_mut(),
            ];
            for op in ops.into_iter().flatten() {
                let takes_input = op.request_body.is_some()
                    || op.parameters.as_ref().is_some_and(|p| !p.is_empty());
                if takes_input && !op.responses.responses.contains_key("400") {
                    let (name, _) = <wire::problem::BadRequest as utoipa::ToResponse>::response();
                    op.responses.responses.insert(
                        "400".to_string(),
                        utoipa::openapi::Ref::from_response_name(name).into(),
                    );
                }
            }
        }
    }
}

/// The document, as the server serves it and `server/openapi.json` holds it: pretty-printed
/// JSON ending in a newline.
pub fn document() -> String {
    let doc = ApiDoc::openapi();
    let mut text = doc
        .to_pretty_json()
        .expect("the OpenAPI document serialises");
    text.push('\n');
    text
}
