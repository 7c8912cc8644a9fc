//! Checking one workflow file as `plan --json` does, as data (`plan_workflow`), and the
//! problems a refused run was found with, in the same JSON form.

use std::path::Path;

use crate::diag::{self, Problem, ProblemJson, SourceFile};
use crate::report::plan as out;
use crate::validate::{self, Options};

use super::{Error, Observer};

/// One workflow file checked as `plan --json` shows it (its `files[0]`, with `version`):
/// `{version, file, valid, errors, warnings, workflow, plan, problems}`. `strict` counts
/// warnings as errors (also when `validation.strict` is set in the configuration).
/// Exit 2 when the file cannot be read or the configuration is bad; an invalid workflow
/// is data (`valid: false`), not an error.
pub fn plan(
    file: &Path,
    vars: &[(String, String)],
    offline: bool,
    strict: bool,
    config: Option<&Path>,
) -> Result<serde_json::Value, Error> {
    let source = diag::read_source(file).map_err(|m| Error::usage(format!("error: {m}\n")))?;
    let mut checked = validate::check(
        &source,
        &Options {
            vars: vars.to_vec(),
            offline,
        },
    );
    let root = checked.workflow.as_ref().map(|w| w.root.clone());
    let loaded = crate::config::load_for(config, root.as_deref(), Some(file))
        .map_err(Error::usage)?
        .config;
    validate::slurm::check_cluster(&mut checked, loaded.executor.slurm.as_ref(), offline);
    let strict = strict || loaded.validation.strict;
    let json = out::file_json(&source, &checked, strict);
    let mut value = serde_json::to_value(&json)
        .map_err(|e| Error::internal(format!("error: cannot write output: {e}\n")))?;
    if let serde_json::Value::Object(m) = &mut value {
        m.shift_insert(0, "version".into(), 1.into());
    }
    Ok(value)
}

/// An observer that keeps the problems a workflow was found with (as `plan --json`
/// shows them) and the notes, for a front-end that returns them as data.
#[derive(Debug, Default)]
pub struct Collect {
    pub problems: Vec<serde_json::Value>,
    pub notes: Vec<String>,
}

impl Observer for Collect {
    fn problems(&mut self, source: &SourceFile, problems: &[Problem], _errors: usize) {
        self.problems.extend(
            problems
                .iter()
                .filter_map(|p| serde_json::to_value(ProblemJson::new(source, p)).ok()),
        );
    }

    fn note(&mut self, text: &str) {
        self.notes.push(text.to_owned());
    }

    fn info(&mut self, text: &str) {
        self.notes.push(text.to_owned());
    }
}
