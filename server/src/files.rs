//! Finding and reading a project's `.itsm` files.
//!
//! A directory is a project: every `.itsm` file below it, in a stable (sorted) order. A file
//! belongs to the project of its directory, so checking one file still sees the calendars,
//! queues and roles its siblings declare; only the named files' problems are reported.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

use itsmflow_dsl::ast::FileId;
use itsmflow_dsl::Sources;

/// Files larger than this are refused: a definition this size is a mistake, not a process.
const MAX_FILE_SIZE: u64 = 16 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{0}: no such file or directory")]
    NotFound(PathBuf),
    #[error("{path}: cannot read: {source}")]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}: not UTF-8 text")]
    NotText(PathBuf),
    #[error("{0}: larger than 16 MiB")]
    TooLarge(PathBuf),
    #[error("{0}: no .itsm files found")]
    NoFiles(PathBuf),
}

/// The loaded project and which of its files the user asked about.
pub struct Loaded {
    pub sources: Sources,
    pub requested: BTreeSet<FileId>,
}

fn is_itsm(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "itsm")
}

/// Every `.itsm` file below `dir`, sorted.
pub fn itsm_files(dir: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(|source| LoadError::Unreadable {
            path: d.clone(),
            source,
        })?;
        for entry in entries {
            let entry = entry.map_err(|source| LoadError::Unreadable {
                path: d.clone(),
                source,
            })?;
            let path = entry.path();
            let kind = entry.file_type().map_err(|source| LoadError::Unreadable {
                path: path.clone(),
                source,
            })?;
            if kind.is_dir() {
                stack.push(path);
            } else if is_itsm(&path) {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

pub fn read_text(path: &Path) -> Result<String, LoadError> {
    let meta = std::fs::metadata(path).map_err(|source| LoadError::Unreadable {
        path: path.to_path_buf(),
        source,
    })?;
    if meta.len() > MAX_FILE_SIZE {
        return Err(LoadError::TooLarge(path.to_path_buf()));
    }
    let bytes = std::fs::read(path).map_err(|source| LoadError::Unreadable {
        path: path.to_path_buf(),
        source,
    })?;
    String::from_utf8(bytes).map_err(|_| LoadError::NotText(path.to_path_buf()))
}

/// `./a/./b.itsm` -> `a/b.itsm`: a path as the user would write it, without `.` steps (an
/// empty result is `.`). `..` steps stay: they may cross symbolic links.
fn tidy(path: &Path) -> PathBuf {
    let tidy: PathBuf = path
        .components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect();
    if tidy.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        tidy
    }
}

/// What two paths of the same file have in common: its canonical path (or the tidy path, if
/// it cannot be resolved).
fn identity(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| tidy(path))
}

/// Load the projects of `paths` (directories, or files standing for their directory). A file
/// named more than once, or both alone and through its directory (`incident.itsm` and the
/// `./incident.itsm` of `.`), is loaded once, under the first path it was named by.
pub fn load(paths: &[PathBuf]) -> Result<Loaded, LoadError> {
    // identity -> the path the file is reported under
    let mut all: BTreeMap<PathBuf, PathBuf> = BTreeMap::new();
    let mut requested_ids = BTreeSet::new();
    let mut add = |path: PathBuf, requested: bool| {
        let path = tidy(&path);
        let id = identity(&path);
        if requested {
            requested_ids.insert(id.clone());
        }
        all.entry(id).or_insert(path);
    };
    for p in paths {
        if !p.exists() {
            return Err(LoadError::NotFound(p.clone()));
        }
        if p.is_dir() {
            let files = itsm_files(p)?;
            if files.is_empty() {
                return Err(LoadError::NoFiles(p.clone()));
            }
            for f in files {
                add(f, true);
            }
        } else {
            add(p.clone(), true);
            let file = tidy(p);
            let dir = file
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            for f in itsm_files(dir)? {
                add(f, false);
            }
        }
    }
    let mut files: Vec<(PathBuf, PathBuf)> = all.into_iter().collect();
    files.sort_by(|a, b| a.1.cmp(&b.1));
    let mut sources = Sources::new();
    let mut requested = BTreeSet::new();
    for (id, path) in files {
        let text = read_text(&path)?;
        let file = sources.add(path.display().to_string(), text);
        if requested_ids.contains(&id) {
            requested.insert(file);
        }
    }
    Ok(Loaded { sources, requested })
}

/// Every `.itsm` file below `dir` as a project, each named by its path relative to `dir` (so
/// a project has the same names, and the same hash, wherever it is checked out).
pub fn load_project(dir: &Path) -> Result<Sources, LoadError> {
    if !dir.is_dir() {
        return Err(LoadError::NotFound(dir.to_path_buf()));
    }
    let mut sources = Sources::new();
    for path in itsm_files(dir)? {
        let text = read_text(&path)?;
        let name = path
            .strip_prefix(dir)
            .unwrap_or(&path)
            .to_string_lossy()
            .replace('\\', "/");
        sources.add(name, text);
    }
    if sources.iter().next().is_none() {
        return Err(LoadError::NoFiles(dir.to_path_buf()));
    }
    Ok(sources)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tidy_paths_drop_dot_steps_only() {
        assert_eq!(
            tidy(Path::new("./incident.itsm")),
            Path::new("incident.itsm")
        );
        assert_eq!(tidy(Path::new("a/./b.itsm")), Path::new("a/b.itsm"));
        assert_eq!(tidy(Path::new("../a/b.itsm")), Path::new("../a/b.itsm"));
        assert_eq!(tidy(Path::new(".")), Path::new("."));
        assert_eq!(tidy(Path::new("./")), Path::new("."));
    }
}
