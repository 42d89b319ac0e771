//! Definitions: publish a project, list versions, read one, draw its graph.

use std::sync::Arc;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use itsmflow_dsl::{diagnostic, Sources};
use itsmflow_engine::runtime::catalog::Definition;
use itsmflow_engine::runtime::{EngineError, Published};

use super::{PathArgs, QueryArgs};
use crate::serve::app::{json, JsonBody};
use crate::serve::auth::Ctx;
use crate::serve::error::{ApiError, ApiResult};
use crate::serve::tenants::Backend;
use crate::serve::wire;

type C<B> = Ctx<<B as Backend>::Store>;

#[utoipa::path(
    get,
    path = "/v1/definitions",
    operation_id = "listDefinitions",
    tag = "definitions",
    summary = "The latest version of every process",
    responses(
        (status = 200, description = "OK", body = wire::definitions::DefinitionList),
        (status = 401, response = wire::problem::Unauthorized),
        (status = 503, response = wire::problem::Unavailable)
    )
)]
/// The latest version of every process.
pub async fn list<B: Backend>(ctx: C<B>) -> ApiResult<Response> {
    let items = latest::<B>(&ctx)
        .iter()
        .map(|d| wire::definitions::DefinitionSummary::from(&**d))
        .collect();
    Ok(json(
        StatusCode::OK,
        &wire::definitions::DefinitionList { items },
    ))
}

/// The latest version of every process, in the catalogue's order (the list above, and the
/// web pages' catalogue and process list).
pub(crate) fn latest<B: Backend>(ctx: &C<B>) -> Vec<Arc<Definition>> {
    let mut latest: Vec<Arc<Definition>> = Vec::new();
    for d in ctx.tenant.engine.catalog().definitions() {
        match latest.last_mut() {
            Some(last) if last.process == d.process => *last = d,
            _ => latest.push(d),
        }
    }
    latest
}

#[utoipa::path(
    post,
    path = "/v1/definitions",
    operation_id = "publishDefinitions",
    tag = "definitions",
    summary = "Publish the tenant's project",
    description = "The files together replace the tenant's project. Changed processes get a new version; instances keep the version they started on. Needs `admin` or `process_manager`.",
    request_body(content = wire::definitions::UploadRequest),
    responses(
        (status = 200, description = "Nothing changed: every process kept its version.", body = wire::definitions::PublishResult),
        (status = 201, description = "Published; at least one process got a new version.", body = wire::definitions::PublishResult),
        (status = 400, response = wire::problem::BadRequest),
        (status = 401, response = wire::problem::Unauthorized),
        (status = 403, response = wire::problem::Forbidden),
        (status = 413, response = wire::problem::TooLarge),
        (status = 415, response = wire::problem::UnsupportedMediaType),
        (status = 422, description = "`invalid-definitions` (the project does not check; nothing was published; `diagnostics` lists every problem) or `invalid-request` (no files, a bad or repeated file name, a missing member).", body = wire::problem::Problem, content_type = "application/problem+json"),
        (status = 503, response = wire::problem::Unavailable)
    )
)]
pub async fn publish<B: Backend>(
    ctx: C<B>,
    JsonBody(upload): JsonBody<wire::definitions::UploadRequest>,
) -> ApiResult<Response> {
    let files: Vec<(String, String)> = upload.files.into_iter().map(|f| (f.name, f.text)).collect();
    let published = publish_files::<B>(&ctx, &files).await?;
    let status = if published.iter().any(|p| p.new) {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(json(
        status,
        &wire::definitions::PublishResult::of(&published),
    ))
}

/// A project's files as the engine checks them, refused when a name is not a relative
/// `.itsm` path or is sent twice.
pub(crate) fn sources_of(files: &[(String, String)]) -> ApiResult<Sources> {
    if files.is_empty() {
        return Err(ApiError::invalid(
            "`files` is empty; send the project's .itsm files",
        ));
    }
    let mut sources = Sources::new();
    let mut seen = std::collections::HashSet::new();
    for (name, text) in files {
        if let Some(why) = bad_file_name(name) {
            return Err(ApiError::invalid(format!("file name `{name}` {why}")));
        }
        if !seen.insert(name.as_str()) {
            return Err(ApiError::invalid(format!("file `{name}` is sent twice")));
        }
        sources.add(name.clone(), text.clone());
    }
    Ok(sources)
}

/// What is wrong with a project file's name, if anything: it must be a path inside the
/// project directory (relative, no `..` part) ending in `.itsm`.
fn bad_file_name(name: &str) -> Option<&'static str> {
    let parts: Vec<&str> = name.split(['/', '\\']).collect();
    let drive =
        name.len() >= 2 && name.as_bytes()[1] == b':' && name.as_bytes()[0].is_ascii_alphabetic();
    if name.starts_with(['/', '\\']) || drive {
        Some("is absolute; a file's name is its path inside the project directory (`incident.itsm`, `shared/roles.itsm`)")
    } else if parts.contains(&"..") {
        Some("may not leave the project directory (`..`); a file's name is its path inside it")
    } else if !name.ends_with(".itsm") || parts.last().is_some_and(|f| *f == ".itsm") {
        Some("must end in .itsm, after a name (`incident.itsm`)")
    } else {
        None
    }
}

/// Publish a project as the caller: the API's publish, and the editor page's. A project with
/// errors publishes nothing; the refusal carries its diagnostics.
pub(crate) async fn publish_files<B: Backend>(
    ctx: &C<B>,
    files: &[(String, String)],
) -> ApiResult<Vec<Published>> {
    ctx.require_publisher()?;
    let sources = sources_of(files)?;
    match ctx.tenant.engine.publish(&sources).await {
        Ok(published) => {
            tracing::info!(files = files.len(), "definitions published");
            Ok(published)
        }
        Err(EngineError::InvalidDefinitions(diagnostics)) => {
            let errors = diagnostics.iter().filter(|d| d.is_error()).count();
            Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-definitions",
                "Definitions do not check",
                format!("the project has {errors} error(s); nothing was published"),
            )
            .with("diagnostics", diagnostic::to_json(&sources, &diagnostics)))
        }
        Err(e) => Err(e.into()),
    }
}

#[utoipa::path(
    get,
    path = "/v1/definitions/{process}",
    operation_id = "listDefinitionVersions",
    tag = "definitions",
    summary = "Every version of a process",
    params(
        ("process" = String, Path, description = "Process name.", example = "incident")
    ),
    responses(
        (status = 200, description = "OK", body = wire::definitions::DefinitionVersions),
        (status = 401, response = wire::problem::Unauthorized),
        (status = 404, response = wire::problem::NotFound),
        (status = 503, response = wire::problem::Unavailable)
    )
)]
/// Every version of a process.
pub async fn versions<B: Backend>(
    ctx: C<B>,
    PathArgs(process): PathArgs<String>,
) -> ApiResult<Response> {
    let versions = versions_of::<B>(&ctx, &process)?
        .iter()
        .map(|d| wire::definitions::DefinitionSummary::from(&**d))
        .collect();
    Ok(json(
        StatusCode::OK,
        &wire::definitions::DefinitionVersions { process, versions },
    ))
}

/// Every version of a process, oldest first; 404 when none is published.
pub(crate) fn versions_of<B: Backend>(
    ctx: &C<B>,
    process: &str,
) -> ApiResult<Vec<Arc<Definition>>> {
    let items: Vec<Arc<Definition>> = ctx
        .tenant
        .engine
        .catalog()
        .definitions()
        .into_iter()
        .filter(|d| d.process == process)
        .collect();
    if items.is_empty() {
        return Err(ApiError::not_found(format!(
            "no process `{process}` is published"
        )));
    }
    Ok(items)
}

pub(crate) fn find<B: Backend>(
    ctx: &C<B>,
    process: &str,
    version: Option<u32>,
) -> ApiResult<Arc<Definition>> {
    let catalog = ctx.tenant.engine.catalog();
    let found = match version {
        Some(v) => catalog.version(process, v),
        None => catalog.latest(process),
    };
    found.ok_or_else(|| match version {
        Some(v) => ApiError::not_found(format!("process `{process}` has no version {v}")),
        None => ApiError::not_found(format!("no process `{process}` is published")),
    })
}

#[utoipa::path(
    get,
    path = "/v1/definitions/{process}/versions/{version}",
    operation_id = "getDefinitionVersion",
    tag = "definitions",
    summary = "One version of a process: fields, priorities, stages, actions",
    params(
        ("process" = String, Path, description = "Process name.", example = "incident"),
        ("version" = i32, Path, minimum = 0, description = "Definition version.")
    ),
    responses(
        (status = 200, description = "OK", body = wire::definitions::DefinitionVersion),
        (status = 400, response = wire::problem::BadRequest),
        (status = 401, response = wire::problem::Unauthorized),
        (status = 404, response = wire::problem::NotFound),
        (status = 503, response = wire::problem::Unavailable)
    )
)]
/// One version: its model in brief and the source of the project it was published with.
pub async fn version<B: Backend>(
    ctx: C<B>,
    PathArgs((process, version)): PathArgs<(String, u32)>,
) -> ApiResult<Response> {
    let d = find::<B>(&ctx, &process, Some(version))?;
    Ok(json(
        StatusCode::OK,
        &wire::definitions::DefinitionVersion::from(&*d),
    ))
}

#[utoipa::path(
    get,
    path = "/v1/definitions/{process}/graph",
    operation_id = "getDefinitionGraph",
    tag = "definitions",
    summary = "The process as a Graphviz or Mermaid graph",
    params(
        ("process" = String, Path, description = "Process name.", example = "incident"),
        wire::definitions::GraphQuery
    ),
    responses(
        (status = 200, description = "The graph: Graphviz DOT (`text/vnd.graphviz`) or Mermaid (`text/plain`).", content((String = "text/vnd.graphviz"), (String = "text/plain"))),
        (status = 400, response = wire::problem::BadRequest),
        (status = 401, response = wire::problem::Unauthorized),
        (status = 404, response = wire::problem::NotFound),
        (status = 422, description = "`invalid-request`: an unknown `format`.", body = wire::problem::Problem, content_type = "application/problem+json"),
        (status = 503, response = wire::problem::Unavailable)
    )
)]
/// The process as a Graphviz or Mermaid graph.
pub async fn graph<B: Backend>(
    ctx: C<B>,
    PathArgs(process): PathArgs<String>,
    QueryArgs(q): QueryArgs<wire::definitions::GraphQuery>,
) -> ApiResult<Response> {
    let d = find::<B>(&ctx, &process, q.version)?;
    let format = match q.format.as_deref() {
        None => wire::definitions::GraphFormat::default(),
        Some(name) => wire::definitions::GraphFormat::named(name).ok_or_else(|| {
            ApiError::invalid(format!(
                "unknown graph format `{name}`; use `dot` or `mermaid`"
            ))
        })?,
    };
    let (text, content_type) = match format {
        wire::definitions::GraphFormat::Dot => (
            itsmflow_engine::graph::to_dot(&d.project, d.model()),
            "text/vnd.graphviz; charset=utf-8",
        ),
        wire::definitions::GraphFormat::Mermaid => (
            itsmflow_engine::graph::to_mermaid(&d.project, d.model()),
            "text/plain; charset=utf-8",
        ),
    };
    Ok(([(header::CONTENT_TYPE, content_type)], text).into_response())
}
