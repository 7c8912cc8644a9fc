//! How to run a run, stored with it (the run's `spec`), so that a detached supervisor or
//! `resume` can do it again; and the workflow text of an ad-hoc command.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::diag::{read_source, SourceFile};

/// How to run a run: stored with it, so a supervisor or `resume` can do it again.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Spec {
    /// The workflow file (absolute); `None` for `bgflow start`.
    pub file: Option<PathBuf>,
    #[serde(default)]
    pub vars: Vec<(String, String)>,
    #[serde(default)]
    pub only: Vec<String>,
    #[serde(default)]
    pub keep_going: bool,
    #[serde(default)]
    pub force: bool,
    pub jobs: Option<u32>,
    /// `resume`: the run this one continues. (Specs stored before it had `keep`, a list of
    /// steps kept without a check; it is ignored.)
    #[serde(default)]
    pub resume: Option<ResumeOf>,
    /// `bgflow start`: the command and its settings.
    pub adhoc: Option<Adhoc>,
    /// `--allow-concurrent`: run even while a run of the same root writes the same outputs.
    #[serde(default)]
    pub allow_concurrent: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Adhoc {
    pub name: String,
    pub kind: String,
    pub timeout: Option<String>,
    pub argv: Vec<String>,
    pub cwd: PathBuf,
}

/// A short, random run id: 8 characters of [0-9a-z].
pub fn new_run_id() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::rng();
    (0..8)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// The run `resume` continues, and its steps that succeeded (or were kept or up to date):
/// those are kept while they are up to date, even under `--force`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResumeOf {
    pub run: String,
    #[serde(default)]
    pub succeeded: Vec<String>,
}

/// The manifest text of a `bgflow start` command.
fn adhoc_source(a: &Adhoc) -> SourceFile {
    let q = |s: &str| toml::Value::String(s.to_owned()).to_string();
    let mut text = format!(
        "[workflow]\nname = {}\nroot = {}\n\n[steps.{}]\nkind = {}\nrun = [",
        q(&a.name),
        q(&a.cwd.to_string_lossy()),
        a.name,
        q(&a.kind)
    );
    text.push_str(&a.argv.iter().map(|s| q(s)).collect::<Vec<_>>().join(", "));
    text.push_str("]\n");
    if let Some(t) = &a.timeout {
        text.push_str(&format!("timeout = {}\n", q(t)));
    }
    SourceFile::new(&a.cwd.join(format!("{}.bgflow-start.toml", a.name)), text)
}

pub fn source_of(spec: &Spec) -> Result<SourceFile, String> {
    match (&spec.adhoc, &spec.file) {
        (Some(a), _) => Ok(adhoc_source(a)),
        (None, Some(f)) => read_source(f),
        (None, None) => Err("the run has neither a workflow file nor a command".to_owned()),
    }
}
