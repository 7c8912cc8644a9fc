//! `[workflow] env_file`: the dotenv file read for `plan` and `run` (docs/manifest.md).
//!
//! Its values join the environment under the caller's: a variable the caller's environment
//! sets keeps the caller's value, as `just`'s and dotenv's loaders do; `[env]` and a step's
//! `env` are applied over both. The values are never shown: `plan` masks `{{ env.NAME }}` as
//! `<env:NAME>` whichever of the two it comes from, and an error names a line, not a value.
//! `--offline` does not read the file (it reads nothing but the workflow's files).

use std::path::Path;

use super::Cx;
use crate::diag::Problem;
use crate::manifest::{dotenv, EnvFile};

impl Cx<'_, '_> {
    /// The assignments of the workflow's `env_file` (none when it has none, or when a
    /// problem was reported at its place).
    pub(super) fn env_file(
        &mut self,
        spec: Option<&EnvFile>,
        file_dir: &Path,
    ) -> Vec<(String, String)> {
        let Some(spec) = spec else {
            return Vec::new();
        };
        let at = || {
            let place = self.doc.value_span(&["workflow", "env_file", "path"]);
            place.or_else(|| self.doc.value_span(&["workflow", "env_file"]))
        };
        let name = spec.path();
        let path = file_dir.join(name);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && spec.optional() => {
                return Vec::new()
            }
            Err(e) => {
                let (message, help) = if e.kind() == std::io::ErrorKind::NotFound {
                    (
                        format!("env_file `{name}` does not exist"),
                        format!(
                            "looked for {}; write `env_file = {{ path = \"{name}\", optional = true }}` if it may be missing",
                            std::path::absolute(&path).unwrap_or(path).display()
                        ),
                    )
                } else {
                    (
                        format!("env_file `{name}` cannot be read: {e}"),
                        "it is read by `plan` and `run`".to_owned(),
                    )
                };
                let span = at();
                self.push(
                    Problem::error("env-file", message)
                        .at_opt(span, "here")
                        .help(help),
                );
                return Vec::new();
            }
        };
        let parsed = String::from_utf8(bytes)
            .map_err(|_| dotenv::Malformed {
                line: 0,
                what: "the file is not UTF-8 text".to_owned(),
            })
            .and_then(|text| dotenv::parse(&text));
        match parsed {
            Ok(pairs) => pairs,
            Err(e) => {
                let place = if e.line == 0 {
                    name.to_owned()
                } else {
                    format!("{name}:{}", e.line)
                };
                let span = at();
                self.push(
                    Problem::error("env-file", format!("env_file {place}: {}", e.what))
                        .at_opt(span, "in this file")
                        .help("one KEY=VALUE a line; docs/manifest.md says which forms are read (the value is not shown here)"),
                );
                Vec::new()
            }
        }
    }
}
