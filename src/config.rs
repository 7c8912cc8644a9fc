//! `bgflow.toml`: user and project defaults (DESIGN.md §4; every key in bgflow.toml.example).
//!
//! Looked up as `--config` / `$BGFLOW_CONFIG`, then `bgflow.toml` in the workflow root, then
//! `$XDG_CONFIG_HOME/bgflow/config.toml` (`~/.config/...`). The first found is used whole.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::diag::{Problem, SourceFile};
use crate::manifest::Duration;

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub defaults: Defaults,
    pub validation: Validation,
    pub monitoring: Monitoring,
    pub notifications: Notifications,
    pub retention: Retention,
    pub state: State,
    pub limits: Limits,
    /// How a step's processes are kept together (guarantee 8): `auto` (a cgroup v2 leaf
    /// where bgflow may create one, else a process group with bgflow as subreaper),
    /// `cgroup` (refuse to run without one) or `process-group`.
    pub containment: Containment,
    /// `[executor.slurm]`: Slurm settings for every workflow that runs steps on Slurm; a
    /// workflow's own `[executor.slurm]` keys win, key by key.
    pub executor: crate::manifest::ExecutorSection,
}

/// The containment mechanism asked for (`containment` in bgflow.toml).
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Containment {
    #[default]
    Auto,
    Cgroup,
    ProcessGroup,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Defaults {
    /// Steps at once when neither `-j` nor `workflow.max_parallel` says; default: CPUs.
    pub max_parallel: Option<u32>,
    /// Workflow timeout when the workflow sets none.
    pub timeout: Option<Duration>,
    /// Step `kill_grace` when a step sets none (default 10s).
    pub kill_grace: Option<Duration>,
    /// Step `retries` when a step sets none (default 0).
    pub retries: Option<u32>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Validation {
    /// Warnings are errors for `plan` and `run`.
    pub strict: bool,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Monitoring {
    /// How often a supervisor records that it is alive.
    pub heartbeat: Duration,
    /// Default `interval` of service health probes.
    pub health_check_interval: Duration,
}

impl Default for Monitoring {
    fn default() -> Self {
        Self {
            heartbeat: Duration::from_secs(2),
            health_check_interval: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Success,
    Failure,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Notifications {
    /// A desktop notification (D-Bus org.freedesktop.Notifications) when a run ends.
    pub desktop: bool,
    /// A terminal notification (bell and OSC 9) when a foreground run ends.
    pub terminal: bool,
    /// Which outcomes notify.
    pub on: Vec<Outcome>,
    /// A shell command run when a run ends, with the event JSON on stdin.
    pub command: Option<String>,
}

impl Default for Notifications {
    fn default() -> Self {
        Self {
            desktop: false,
            terminal: true,
            on: vec![Outcome::Failure, Outcome::Success],
            command: None,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Retention {
    /// Remove finished runs older than this many days after each run (0: never).
    pub auto_cleanup_days: u32,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct State {
    /// The state folder, relative to the workflow root (default `.bgflow`).
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Refuse a new run while this many runs are active in the same state folder (0: no limit).
    pub max_concurrent_runs: u32,
    /// The longest any run may take; caps `workflow.timeout`.
    pub max_run_time: Option<Duration>,
}

/// A config file and what it holds; `path` is `None` when none was found.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    pub path: Option<PathBuf>,
    pub config: Config,
}

/// Fills what the workflow leaves unset from `[defaults]`, and caps its timeout by
/// `limits.max_run_time`.
pub fn apply(config: &Config, wf: &mut crate::validate::Workflow) {
    let d = &config.defaults;
    wf.max_parallel = wf.max_parallel.or(d.max_parallel);
    wf.timeout = wf.timeout.or(d.timeout);
    if let Some(cap) = config.limits.max_run_time {
        wf.timeout = Some(wf.timeout.map_or(cap, |t| t.min(cap)));
    }
    for step in &mut wf.steps {
        step.kill_grace = step.kill_grace.or(d.kill_grace);
        step.retries = step.retries.or(d.retries);
        if let Some(health) = step.health_mut() {
            health.interval = health
                .interval
                .or(Some(config.monitoring.health_check_interval));
        }
    }
}

/// Where the config comes from, in order.
pub fn candidates(explicit: Option<&Path>, root: Option<&Path>) -> Vec<PathBuf> {
    if let Some(p) = explicit {
        return vec![p.to_path_buf()];
    }
    let mut out = Vec::new();
    if let Some(r) = root {
        out.push(r.join("bgflow.toml"));
    }
    let xdg = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")));
    if let Some(x) = xdg {
        out.push(x.join("bgflow").join("config.toml"));
    }
    out
}

/// Loads the first config found. An explicit file that is missing, or any file that does
/// not parse, is an error: the rendered diagnostic.
pub fn load(explicit: Option<&Path>, root: Option<&Path>) -> Result<Loaded, String> {
    load_for(explicit, root, None)
}

/// Like `load`, skipping `workflow_file` itself (a workflow may be named `bgflow.toml`).
pub fn load_for(
    explicit: Option<&Path>,
    root: Option<&Path>,
    workflow_file: Option<&Path>,
) -> Result<Loaded, String> {
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    };
    for path in candidates(explicit, root) {
        if explicit.is_none() && workflow_file.is_some_and(|w| same(w, &path)) {
            continue;
        }
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && explicit.is_none() => continue,
            Err(e) => return Err(format!("error: config {}: {e}\n", path.display())),
        };
        // A `bgflow.toml` holding a `[workflow]` table is a workflow file, not a config.
        if explicit.is_none()
            && text
                .parse::<toml::Table>()
                .is_ok_and(|t| t.contains_key("workflow"))
        {
            continue;
        }
        return parse(&path, text).map(|config| Loaded {
            path: Some(path),
            config,
        });
    }
    Ok(Loaded::default())
}

/// Parses config text, or the problem with it (placed in `text`).
pub fn check(text: &str) -> Result<Config, Box<Problem>> {
    toml::from_str::<Config>(text).map_err(|e| {
        Box::new(
            Problem::error(
                "config",
                format!("invalid config: {}", e.message().trim_end()),
            )
            .at_opt(e.span(), "here")
            .help("see bgflow.toml.example for every key and its default"),
        )
    })
}

/// Parses config text; errors are rendered with the source line.
pub fn parse(path: &Path, text: String) -> Result<Config, String> {
    match check(&text) {
        Ok(c) => Ok(c),
        Err(p) => {
            let source = SourceFile::new(path, text);
            Err(crate::diag::render(
                &source,
                &[*p],
                crate::diag::RenderOptions { color: false },
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_parses_and_matches_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("bgflow.toml.example");
        let text = std::fs::read_to_string(&path).expect("bgflow.toml.example exists");
        let parsed = parse(&path, text).expect("bgflow.toml.example parses");
        // The example documents the defaults, so it must mean the same as no file at all.
        assert_eq!(parsed.validation, Config::default().validation);
        assert_eq!(
            parsed.notifications.terminal,
            Config::default().notifications.terminal
        );
        assert_eq!(parsed.monitoring, Config::default().monitoring);
    }

    #[test]
    fn unknown_keys_are_errors_with_a_place() {
        let err = parse(Path::new("bgflow.toml"), "[defaults]\nretires = 2\n".into())
            .expect_err("unknown key");
        assert!(err.contains("retires"), "{err}");
        assert!(err.contains("bgflow.toml:2:1"), "{err}");
    }

    #[test]
    fn explicit_missing_file_is_an_error() {
        assert!(load(Some(Path::new("/nonexistent/bgflow.toml")), None).is_err());
    }
}
