//! Where the repository's files and the programs on PATH are.

use std::path::{Path, PathBuf};

/// The portcullis repository root (the folder holding `tests/idp/idp.mjs`): the parent of this
/// crate's folder, whichever crate of the workspace uses the kit and wherever it runs from.
pub fn repo_root() -> PathBuf {
    let kit = Path::new(env!("CARGO_MANIFEST_DIR"));
    match kit.parent() {
        Some(root) if is_repo_root(root) => root.to_path_buf(),
        _ => panic!(
            "cannot locate the portcullis repository: the parent of {} holds no tests/idp/idp.mjs",
            kit.display()
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
