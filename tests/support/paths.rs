//! Where the repository's files are, whoever compiles this module.

use std::path::{Path, PathBuf};

/// The portcullis repository root (the folder holding `tests/idp/idp.mjs`).
///
/// Normally CARGO_MANIFEST_DIR. When the harness is compiled by another crate
/// through `#[path = ".../tests/support/mod.rs"]`, the manifest dir is that
/// crate's, so fall back to the location of this very source file.
pub fn repo_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    if is_repo_root(&manifest) {
        return manifest;
    }
    // file!() is relative to the invoking workspace root, or absolute when the
    // module was included through an absolute #[path]; join handles both.
    #[allow(clippy::join_absolute_paths)] // an absolute file!() replacing the base is intended
    let this_file = manifest.join(file!());
    let from_file = this_file
        .parent() // support/
        .and_then(Path::parent) // tests/
        .and_then(Path::parent) // repository root
        .map(Path::to_path_buf);
    match from_file {
        Some(root) if is_repo_root(&root) => root,
        _ => panic!(
            "cannot locate the portcullis repository: neither {} nor the folder of {} holds tests/idp/idp.mjs",
            manifest.display(),
            this_file.display()
        ),
    }
}

fn is_repo_root(dir: &Path) -> bool {
    dir.join("tests/idp/idp.mjs").is_file()
}

/// A file of the repository, by its path relative to the root.
pub fn repo_file(relative: &str) -> PathBuf {
    let path = repo_root().join(relative);
    assert!(
        path.exists(),
        "expected repository file {} to exist",
        path.display()
    );
    path
}

/// Is `program` an executable found on PATH (or a path that exists)?
pub fn find_program(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        let path = PathBuf::from(program);
        return path.is_file().then_some(path);
    }
    let path_var = std::env::var_os("PATH")?;
    std::env::split_paths(&path_var)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// The program to run, or a panic that says how to install it.
pub fn require_program(program: &str, install_hint: &str) -> PathBuf {
    find_program(program).unwrap_or_else(|| {
        panic!("`{program}` is not installed or not on PATH; install it with: {install_hint}")
    })
}
