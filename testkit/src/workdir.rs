//! The folder a started program keeps its configuration, data and log in.

use std::path::{Path, PathBuf};

use tempfile::TempDir;

/// A fresh temporary folder, removed with the guard (tests), or a folder the caller keeps (the
/// bench keeps every log of a failed run in one place).
pub enum Workdir {
    Temp(TempDir),
    Kept(PathBuf),
}

impl Workdir {
    /// A new temporary folder named `portcullis-<kind>-...`.
    pub fn temp(kind: &str) -> Workdir {
        let dir = tempfile::Builder::new()
            .prefix(&format!("portcullis-{kind}-"))
            .tempdir()
            .unwrap_or_else(|e| panic!("temp dir for {kind}: {e}"));
        Workdir::Temp(dir)
    }

    /// `dir` itself, left in place afterwards.
    pub fn kept(dir: &Path) -> Workdir {
        Workdir::Kept(dir.to_path_buf())
    }

    pub fn path(&self) -> &Path {
        match self {
            Workdir::Temp(dir) => dir.path(),
            Workdir::Kept(dir) => dir,
        }
    }
}
