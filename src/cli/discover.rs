//! The default workflow file: what `plan`, `run` and `graph` use when no FILE is given.
//!
//! The rule (docs/cli.md): starting in the current folder and going up to the file system's
//! root, the first `bgflow.toml` that holds a `[workflow]` table. A `bgflow.toml` without one
//! is a configuration file (`config.rs`) and the search goes on above it, so a project's
//! settings in a subfolder do not hide the workflow further up. As `just` finds its justfile,
//! the file found is shown by the path from the current folder (`../bgflow.toml`).

use std::path::{Path, PathBuf};

use toml::de::DeTable;

/// The name the default workflow file has.
pub const FILE_NAME: &str = "bgflow.toml";

/// The rule, as said in messages.
pub const RULE: &str = "the first bgflow.toml holding a [workflow] table, in the current folder or a folder above it (a bgflow.toml without [workflow] is configuration and is passed over)";

/// Whether `text` holds a `[workflow]` table (a `bgflow.toml` that does is a workflow file).
pub fn holds_workflow(text: &str) -> bool {
    // A file with a syntax error still shows whether it has the table; its errors are for
    // `plan` to report.
    DeTable::parse_recoverable(text)
        .0
        .get_ref()
        .contains_key("workflow")
}

/// The nearest workflow file from `start` upward: its path from `start` as `start` is
/// written (`bgflow.toml`, `../bgflow.toml`), or `None`.
pub fn find_from(start: &Path) -> Option<PathBuf> {
    let absolute = std::path::absolute(start).ok()?;
    let mut shown = start.to_path_buf();
    for dir in absolute.ancestors() {
        let candidate = dir.join(FILE_NAME);
        if let Ok(text) = std::fs::read_to_string(&candidate) {
            if holds_workflow(&text) {
                // `./bgflow.toml` reads better as `bgflow.toml`, `sub/../x` as `x`.
                return Some(PathBuf::from(crate::manifest::include::tidy(
                    &shown.join(FILE_NAME),
                )));
            }
        }
        shown.push("..");
    }
    None
}

/// The default workflow file from the current folder, or the message for exit 2.
pub fn default_file() -> Result<PathBuf, String> {
    let here = std::env::current_dir()
        .map_err(|e| format!("no workflow file given, and the current folder is unusable: {e}"))?;
    find_from(Path::new(".")).ok_or_else(|| {
        format!(
            "no workflow file given, and none found: looked for {RULE}, from {}\n  help: pass the file (`bgflow plan FILE`), or name the workflow bgflow.toml",
            here.display()
        )
    })
}

/// `file`, else the default workflow file.
pub fn file_or_default(file: Option<&Path>) -> Result<PathBuf, String> {
    match file {
        Some(f) => Ok(f.to_path_buf()),
        None => default_file(),
    }
}

/// `file`, else the default workflow file; `None` when there is none, after saying so on
/// stderr (exit 2).
pub fn file_or_report(file: Option<&Path>) -> Option<PathBuf> {
    file_or_default(file)
        .map_err(|msg| crate::report::stderr(&format!("error: {msg}\n")))
        .ok()
}
