//! The state folder's file names, and how its folders are made. A base module: the engine
//! (`exec`), the history (`store`) and the service layer (`runs`) all name these files, and
//! it imports none of them.

use std::path::{Path, PathBuf};

/// Where step `name` of a run writes its output: `<log_dir>/<name>.log`, made with its first
/// byte. The one place that says so; the history records the same path. A matrix
/// instance's name is made safe for a file name first (`file_name`).
pub fn log_file(log_dir: &Path, name: &str) -> PathBuf {
    log_dir.join(format!("{}.log", crate::file_name::step_file_name(name)))
}

/// Creates `dir` with mode 0700 (an existing folder is left as it is).
pub fn ensure_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}
