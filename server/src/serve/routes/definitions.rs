//! Definitions: publish a project, list versions, read one, draw its graph.

use std::sync::Arc;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use itsmflow_dsl::{diagnostic, Sources};
use itsmflow_engine::runtime::catalog::Definition;
use itsmflow_engine::runtime::{EngineError, Published};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{PathArgs, QueryArgs};
use crate::serve::app::{json, JsonBody};
use crate::serve::auth::Ctx;
use crate::serve::error::{ApiError, ApiResult};
use crate::serve::tenants::Backend;

type C<B> = Ctx<<B as Backend>::Store>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Upload {
    /// The project's files; together they replace the tenant's project (or, for a tenant's
    /// tailoring, they are the client's files).
    pub(crate) files: Vec<UploadFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadFile {
    pub(crate) name: String,
    pub(crate) text: String,
}

#[derive(Serialize)]
struct Summary {
    process: String,
    version: u32,
    hash: String,
    published_at: chrono::DateTime<chrono::Utc>,
}

fn summary(d: &Definition) -> Summary {
    Summary {
        process: d.process.clone(),
        version: d.version,
        hash: d.hash.clone(),
        published_at: d.published_at,
    }
}

/// The latest version of every process.
pub async fn list<B: Backend>(ctx: C<B>) -> ApiResult<Response> {
    let items: Vec<Summary> = latest::<B>(&ctx).iter().map(|d| summary(d)).collect();
    Ok(json(StatusCode::OK, &json!({ "items": items })))
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

pub async fn publish<B: Backend>(
    ctx: C<B>,
    JsonBody(upload): JsonBody<Upload>,
) -> ApiResult<Response> {
    let files: Vec<(String, String)> = upload.files.into_iter().map(|f| (f.name, f.text)).collect();
    let published = publish_files::<B>(&ctx, &files).await?;
    let status = if published.iter().any(|p| p.new) {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(json(status, &json!({ "published": published })))
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

/// Every version of a process.
pub async fn versions<B: Backend>(
    ctx: C<B>,
    PathArgs(process): PathArgs<String>,
) -> ApiResult<Response> {
    let items: Vec<Summary> = versions_of::<B>(&ctx, &process)?
        .iter()
        .map(|d| summary(d))
        .collect();
    Ok(json(
        StatusCode::OK,
        &json!({ "process": process, "versions": items }),
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

/// One version: its model in brief and the source of the project it was published with.
pub async fn version<B: Backend>(
    ctx: C<B>,
    PathArgs((process, version)): PathArgs<(String, u32)>,
) -> ApiResult<Response> {
    let d = find::<B>(&ctx, &process, Some(version))?;
    let p = d.model();
    let fields: Vec<_> = p
        .fields
        .iter()
        .map(|f| json!({"name": f.name, "type": f.ty.to_string(), "required": f.required}))
        .collect();
    let stages: Vec<_> = p
        .stages
        .iter()
        .map(|s| json!({"name": s.name, "label": s.label, "initial": s.initial, "final": s.is_final}))
        .collect();
    let actions: Vec<_> = p
        .transitions
        .iter()
        .map(|t| {
            json!({
                "name": t.name,
                "label": t.label,
                "from": t.from.iter().map(|s| &p.stages[s.index()].name).collect::<Vec<_>>(),
                "to": p.stages[t.to.index()].name,
                "roles": t.roles.iter().map(|r| &d.project.role(*r).name).collect::<Vec<_>>(),
                "requires": t.requires.iter().map(|f| &p.fields[f.index()].name).collect::<Vec<_>>(),
            })
        })
        .collect();
    let mut body = serde_json::to_value(summary(&d)).map_err(ApiError::internal)?;
    body["label"] = json!(p.label);
    body["fields"] = json!(fields);
    body["priorities"] = json!(p.priorities);
    body["stages"] = json!(stages);
    body["actions"] = json!(actions);
    Ok(json(StatusCode::OK, &body))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphQuery {
    format: Option<String>,
    version: Option<u32>,
}

/// The process as a Graphviz or Mermaid graph.
pub async fn graph<B: Backend>(
    ctx: C<B>,
    PathArgs(process): PathArgs<String>,
    QueryArgs(q): QueryArgs<GraphQuery>,
) -> ApiResult<Response> {
    let d = find::<B>(&ctx, &process, q.version)?;
    let (text, content_type) = match q.format.as_deref().unwrap_or("dot") {
        "dot" => (
            itsmflow_engine::graph::to_dot(&d.project, d.model()),
            "text/vnd.graphviz; charset=utf-8",
        ),
        "mermaid" => (
            itsmflow_engine::graph::to_mermaid(&d.project, d.model()),
            "text/plain; charset=utf-8",
        ),
        other => {
            return Err(ApiError::invalid(format!(
                "unknown graph format `{other}`; use `dot` or `mermaid`"
            )))
        }
    };
    Ok(([(header::CONTENT_TYPE, content_type)], text).into_response())
}
