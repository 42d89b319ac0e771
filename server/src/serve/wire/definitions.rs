//! Process definitions: their versions, one version's model in brief, what a publish did,
//! and the project files a publish (or a tenant's tailoring) sends.

use chrono::{DateTime, Utc};
use itsmflow_engine::runtime::catalog::Definition;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// A published version of a process.
#[derive(Debug, Serialize, ToSchema)]
pub struct DefinitionSummary {
    pub process: String,
    #[schema(minimum = 1)]
    pub version: u32,
    pub hash: String,
    pub published_at: DateTime<Utc>,
}

impl From<&Definition> for DefinitionSummary {
    fn from(d: &Definition) -> Self {
        DefinitionSummary {
            process: d.process.clone(),
            version: d.version,
            hash: d.hash.clone(),
            published_at: d.published_at,
        }
    }
}

/// The latest version of every process.
#[derive(Debug, Serialize, ToSchema)]
pub struct DefinitionList {
    pub items: Vec<DefinitionSummary>,
}

/// Every version of a process, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct DefinitionVersions {
    pub process: String,
    pub versions: Vec<DefinitionSummary>,
}

/// One version of a process: its model in brief.
#[derive(Debug, Serialize, ToSchema)]
pub struct DefinitionVersion {
    #[serde(flatten)]
    pub summary: DefinitionSummary,
    #[schema(required = true)]
    pub label: Option<String>,
    pub fields: Vec<FieldSummary>,
    /// The priorities, most urgent first.
    pub priorities: Vec<String>,
    pub stages: Vec<StageSummary>,
    pub actions: Vec<ActionSummary>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FieldSummary {
    pub name: String,
    /// The field's type as written.
    #[serde(rename = "type")]
    #[schema(examples("enum(high, medium, low)"))]
    pub ty: String,
    pub required: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StageSummary {
    pub name: String,
    #[schema(required = true)]
    pub label: Option<String>,
    pub initial: bool,
    #[serde(rename = "final")]
    pub is_final: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ActionSummary {
    pub name: String,
    #[schema(required = true)]
    pub label: Option<String>,
    /// The stages it leaves from.
    pub from: Vec<String>,
    /// The stage it leads to.
    pub to: String,
    /// The roles that may perform it (none: anyone).
    pub roles: Vec<String>,
    /// The fields it requires.
    pub requires: Vec<String>,
}

impl From<&Definition> for DefinitionVersion {
    fn from(d: &Definition) -> Self {
        let p = d.model();
        let stage = |s: usize| p.stages[s].name.clone();
        DefinitionVersion {
            summary: d.into(),
            label: p.label.clone(),
            fields: p
                .fields
                .iter()
                .map(|f| FieldSummary {
                    name: f.name.clone(),
                    ty: f.ty.to_string(),
                    required: f.required,
                })
                .collect(),
            priorities: p.priorities.clone(),
            stages: p
                .stages
                .iter()
                .map(|s| StageSummary {
                    name: s.name.clone(),
                    label: s.label.clone(),
                    initial: s.initial,
                    is_final: s.is_final,
                })
                .collect(),
            actions: p
                .transitions
                .iter()
                .map(|t| ActionSummary {
                    name: t.name.clone(),
                    label: t.label.clone(),
                    from: t.from.iter().map(|s| stage(s.index())).collect(),
                    to: stage(t.to.index()),
                    roles: t
                        .roles
                        .iter()
                        .map(|r| d.project.role(*r).name.clone())
                        .collect(),
                    requires: t
                        .requires
                        .iter()
                        .map(|f| p.fields[f.index()].name.clone())
                        .collect(),
                })
                .collect(),
        }
    }
}

/// A process a publish went through.
#[derive(Debug, Serialize, ToSchema)]
pub struct Published {
    pub process: String,
    #[schema(minimum = 1)]
    pub version: u32,
    /// False when the process was unchanged and kept its version.
    pub new: bool,
}

impl From<&itsmflow_engine::runtime::Published> for Published {
    fn from(p: &itsmflow_engine::runtime::Published) -> Self {
        Published {
            process: p.process.clone(),
            version: p.version,
            new: p.new,
        }
    }
}

/// What a publish did, process by process.
#[derive(Debug, Serialize, ToSchema)]
pub struct PublishResult {
    pub published: Vec<Published>,
}

impl PublishResult {
    pub fn of(published: &[itsmflow_engine::runtime::Published]) -> Self {
        PublishResult {
            published: published.iter().map(Published::from).collect(),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UploadRequest {
    /// The project's files; together they replace the tenant's project (or, for a tenant's
    /// tailoring, they are the tenant's files). Not empty; names unique.
    #[schema(min_items = 1)]
    pub files: Vec<UploadFile>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UploadFile {
    /// A relative path ending in `.itsm`, without `..`.
    #[schema(examples("incident.itsm"))]
    pub name: String,
    pub text: String,
}

/// The notation of a process graph.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GraphFormat {
    /// Graphviz DOT (`text/vnd.graphviz`).
    #[default]
    Dot,
    /// Mermaid (`text/plain`).
    Mermaid,
}

impl GraphFormat {
    /// The format a query's `format` names (an unknown one is refused as out of range, not as
    /// malformed).
    pub fn named(name: &str) -> Option<Self> {
        match name {
            "dot" => Some(GraphFormat::Dot),
            "mermaid" => Some(GraphFormat::Mermaid),
            _ => None,
        }
    }
}

/// Which version to draw, and how.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct GraphQuery {
    /// The notation: `dot` (Graphviz, the default) or `mermaid`; another is a 422.
    #[param(value_type = Option<GraphFormat>)]
    pub format: Option<String>,
    /// The version to draw; defaults to the latest.
    pub version: Option<u32>,
}
