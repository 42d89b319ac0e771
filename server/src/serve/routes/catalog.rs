//! The service catalogue, for the portal: each service with its owner, hours, teams and
//! agreed targets, and what can be requested of it.

use axum::http::StatusCode;
use axum::response::Response;

use crate::serve::app::json;
use crate::serve::auth::Ctx;
use crate::serve::error::ApiResult;
use crate::serve::tenants::Backend;
use crate::serve::wire;

type C<B> = Ctx<<B as Backend>::Store>;

#[utoipa::path(
    get,
    path = "/v1/catalog",
    operation_id = "getCatalog",
    tag = "definitions",
    summary = "The service catalogue",
    description = "The services of the newest published project, each with its owner, hours, queues, agreed targets and the items that can be requested of it. Anyone signed in may read it.",
    responses(
        (status = 200, description = "OK", body = wire::catalog::Catalogue),
        (status = 401, response = wire::problem::Unauthorized),
        (status = 503, response = wire::problem::Unavailable)
    )
)]
/// `GET /v1/catalog`: the catalogue of the tenant's newest published project (empty before
/// the first publish). Anyone signed in may read it: it is what the portal offers.
pub async fn get<B: Backend>(ctx: C<B>) -> ApiResult<Response> {
    let catalogue = match ctx.tenant.engine.catalog().latest_project() {
        Some(project) => wire::catalog::Catalogue::from(&*project),
        None => wire::catalog::Catalogue {
            services: Vec::new(),
        },
    };
    Ok(json(StatusCode::OK, &catalogue))
}
