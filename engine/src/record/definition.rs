//! Published definitions as records: their ids, the source of a publish, one published version
//! of a process, and [`Definitions`], how a store finds the version an id names.
//!
//! What the runtime works out of a version to run it (timers, names shared by tasks) is the
//! runtime's own: see `runtime::catalog::Definition`, which wraps a [`ProcessVersion`].

use std::sync::Arc;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::model::{Process, Project};

/// Identifies one published version of one process.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct DefinitionId(pub i64);

/// The source files of one publish, as they were checked.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProjectSource {
    /// `(file name, text)`, in the order they were checked.
    pub files: Vec<(String, String)>,
}

impl ProjectSource {
    pub fn to_sources(&self) -> itsmflow_dsl::Sources {
        let mut sources = itsmflow_dsl::Sources::new();
        for (name, text) in &self.files {
            sources.add(name.clone(), text.clone());
        }
        sources
    }

    /// A content hash of the whole project.
    pub fn hash(&self) -> String {
        let mut h = Sha256::new();
        for (name, text) in &self.files {
            h.update((name.len() as u64).to_le_bytes());
            h.update(name.as_bytes());
            h.update((text.len() as u64).to_le_bytes());
            h.update(text.as_bytes());
        }
        hex(&h.finalize())
    }
}

/// The content hash of one process within a project: a process gets a new version when
/// anything it could depend on changes (the project is the unit of meaning).
pub fn process_hash(project_hash: &str, process: &str) -> String {
    let mut h = Sha256::new();
    h.update(project_hash.as_bytes());
    h.update(b"\0");
    h.update(process.as_bytes());
    hex(&h.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One published version of one process: what a [`DefinitionId`] names, and what the codec
/// needs to turn the version's stage, field, priority, queue and role ids into names and back.
#[derive(Clone, Debug)]
pub struct ProcessVersion {
    pub id: DefinitionId,
    pub process: String,
    pub version: u32,
    pub hash: String,
    pub published_at: DateTime<Utc>,
    pub project: Arc<Project>,
    /// The process's place in `project.processes`.
    index: usize,
}

impl ProcessVersion {
    /// The version of `process` in `project`; `None` if the project has no such process.
    pub fn new(
        id: DefinitionId,
        version: u32,
        hash: String,
        published_at: DateTime<Utc>,
        project: Arc<Project>,
        process: &str,
    ) -> Option<Self> {
        let index = project.processes.iter().position(|p| p.name == process)?;
        Some(ProcessVersion {
            id,
            process: process.to_string(),
            version,
            hash,
            published_at,
            project,
            index,
        })
    }

    pub fn model(&self) -> &Process {
        &self.project.processes[self.index]
    }
}

/// The published versions a store reads and writes instances of, by id: a store keeps names
/// (the stored form), instances keep ids, and this is how one becomes the other. The runtime's
/// catalog is one; a store needs nothing else of it.
pub trait Definitions: Send + Sync {
    /// The published version with this id, if there is one.
    fn published(&self, id: DefinitionId) -> Option<Arc<ProcessVersion>>;
}
