//! The manifest's types, exactly as written in the TOML file (schema v1, DESIGN.md §1).
//!
//! These types are the single source of the JSON Schema (`bgflow schema`) and of the set
//! of known keys used for "did you mean" hints. They hold no semantic checks: those live
//! in `validate`.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::duration::Duration;
use super::matrix::Matrix;

/// A bgflow workflow file.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "bgflow workflow (manifest v1)")]
pub struct Manifest {
    /// The workflow's identity and run-wide settings.
    pub workflow: WorkflowSection,
    /// Template variables, `{{ vars.NAME }}`; `--var NAME=VALUE` overrides.
    #[serde(default)]
    pub vars: IndexMap<String, String>,
    /// Environment for every step; values are templates.
    #[serde(default)]
    pub env: IndexMap<String, String>,
    /// Preconditions checked by `bgflow plan` before anything runs.
    #[serde(default)]
    pub requires: Requires,
    /// Commands run on run events; the event is JSON on stdin.
    #[serde(default)]
    pub hooks: Hooks,
    /// The steps, by name (letters, digits, `-` and `_`).
    #[serde(default)]
    pub steps: IndexMap<String, StepSpec>,
    /// Settings of the executors: `[executor.slurm]`.
    #[serde(default)]
    pub executor: ExecutorSection,
}

/// Where a step's attempts run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExecutorKind {
    /// A supervised process group (or cgroup) on this machine (the default).
    #[default]
    Local,
    /// A Slurm batch job per attempt (docs/slurm.md). The workflow root must be on a file
    /// system the cluster's nodes share.
    Slurm,
}

/// `[executor]` (in the workflow, or in bgflow.toml).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecutorSection {
    /// `[executor.slurm]`: where and how Slurm jobs are submitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slurm: Option<SlurmSection>,
}

/// `[executor.slurm]`; a key the workflow leaves out is taken from bgflow.toml's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SlurmSection {
    /// `sbatch --partition`; default: the cluster's default partition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
    /// `sbatch --account`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// `sbatch --qos`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qos: Option<String>,
    /// Time between two `squeue` calls (one per poll for the whole run; default 5s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll_interval: Option<Duration>,
    /// More `sbatch` arguments, one list item per argument (never split by a shell).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<Vec<String>>,
}

/// A step's `resources` on Slurm: what its job asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    /// CPUs for the step (`--cpus-per-task`; default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub cpus: Option<u32>,
    /// Memory, `512M`, `4G`, `1T` or a number of megabytes (`--mem`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem: Option<String>,
    /// GPUs (`--gres=gpu:N`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpus: Option<u32>,
    /// The job's time limit (`--time`, whole minutes rounded up); default: the step's
    /// `timeout` plus its `kill_grace` and a minute, else the partition's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<Duration>,
}

/// `[workflow]`
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkflowSection {
    /// Required; letters, digits, `-` and `_`.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Artifacts and `cwd` are relative to this folder; default: the file's folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
    /// Most steps running at once; default: config, else the number of CPUs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_parallel: Option<u32>,
    /// Deadline for the whole run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// On a failure, start nothing new and stop running steps (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_fast: Option<bool>,
    /// Other files whose steps, `[vars]` and `[env]` join this workflow, relative to the file
    /// that names them. A name defined in two files is an error; an included file may include
    /// others (a cycle is an error; a file reached twice is read once).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<String>,
    /// A dotenv file, relative to this file, whose variables reach every step (under the
    /// caller's environment, `[env]` and step `env`); `plan` never prints its values. A
    /// table `{ path = ".env", optional = true }` allows the file to be missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_file: Option<EnvFile>,
    /// Where steps run unless a step says otherwise: `local` (default) or `slurm`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor: Option<ExecutorKind>,
    /// The shell of every string `run` unless a step says otherwise: `sh` (default) or
    /// `bash` (`bash -eo pipefail`: a failing command of a pipeline or list fails it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<Shell>,
}

/// The shell a string `run` goes to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Shell {
    /// `sh -c` (the default): POSIX; a pipeline's exit status is its last command's.
    #[default]
    Sh,
    /// `bash --noprofile --norc -eo pipefail -c`, as GitHub Actions runs `shell: bash`: the
    /// first command that fails ends the script, and a pipeline fails when any of its
    /// commands does.
    Bash,
}

/// `[workflow] env_file`: a path, or `{ path, optional }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(untagged, deny_unknown_fields)]
pub enum EnvFile {
    /// The file must exist (a missing one is a `plan` error).
    Path(String),
    Table {
        path: String,
        /// `true`: a missing file is no error (and sets nothing).
        #[serde(default)]
        optional: bool,
    },
}

impl EnvFile {
    pub fn path(&self) -> &str {
        match self {
            Self::Path(p) | Self::Table { path: p, .. } => p,
        }
    }

    pub fn optional(&self) -> bool {
        matches!(self, Self::Table { optional: true, .. })
    }
}

/// `[requires]`
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Requires {
    /// Programs that must resolve on PATH.
    #[serde(default)]
    pub tools: Vec<String>,
    /// Environment variables that must be set and non-empty.
    #[serde(default)]
    pub env: Vec<String>,
    /// Paths or globs (relative to the root) that must match an existing file.
    #[serde(default)]
    pub files: Vec<String>,
}

/// `[hooks]`: commands (templates, run under `sh -c`) with the event JSON on stdin.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Hooks {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_success: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<String>,
}

/// What sort of process a step is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum StepKind {
    /// Runs to completion (the default).
    #[default]
    Task,
    /// Long-running; dependents start once it is ready; stopped at the end.
    Service,
    /// A test suite whose JUnit XML reports are read after it ends.
    Test,
}

impl StepKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Task => "task",
            Self::Service => "service",
            Self::Test => "test",
        }
    }
}

/// A step's command: a string runs under `sh -c`; an array runs as argv with no shell.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum RunSpec {
    Shell(String),
    Argv(Vec<String>),
}

/// `[steps.NAME]`
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StepSpec {
    #[serde(default)]
    pub kind: StepKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Required. A string is a shell command, run by `sh -c` (plain words with no shell
    /// syntax start their program directly, to the same effect); an array runs as argv with
    /// no shell.
    #[schemars(required, with = "RunSpec")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<RunSpec>,
    /// The shell of a string `run`: `sh` or `bash` (default: `[workflow] shell`, else `sh`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<Shell>,
    /// Explicit dependencies, in addition to those implied by artifacts. Templates: a step
    /// with a `matrix` names all its instances, `step[v1,v2]` one.
    #[serde(default)]
    pub needs: Vec<String>,
    /// Globs; each must match an existing file or an upstream output. Templates (rendered
    /// as paths, not shell-quoted).
    #[serde(default)]
    pub inputs: Vec<String>,
    /// Must exist when the step succeeds; `dir/` means a non-empty folder. Templates
    /// (rendered as paths, not shell-quoted).
    #[serde(default)]
    pub outputs: Vec<String>,
    /// One instance of the step per combination of values, named `step[v1,v2]`;
    /// `{{ matrix.NAME }}` in its templates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matrix: Option<Box<Matrix>>,
    /// Working folder, relative to the root; must exist or be made upstream. A template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    #[serde(default)]
    pub env: IndexMap<String, String>,
    /// Then SIGTERM to the whole process group, SIGKILL after `kill_grace`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// Time between SIGTERM and SIGKILL (default 10s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kill_grace: Option<Duration>,
    /// Further attempts after a failure or timeout (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    /// Delay before the first retry, doubled after each attempt (default 1s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_delay: Option<Duration>,
    /// A failure is reported but does not fail the run.
    #[serde(default)]
    pub allow_failure: bool,
    /// Extra programs this step needs on PATH.
    #[serde(default)]
    pub tools: Vec<String>,
    /// Regex over output lines; named groups `percent` | `current` + `total` | `message`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<String>,
    /// No output and no progress for this long: the step fails as stalled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stall_timeout: Option<Duration>,
    /// Regexes; a match in the output fails the step even on exit 0.
    #[serde(default)]
    pub fail_on: Vec<String>,
    /// Free labels, for selection and display.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Services: the readiness probe that lets dependents start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<Box<Probe>>,
    /// Services: a probe repeated every `interval`; `failures` in a row fail the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<Box<Probe>>,
    /// Tests: glob of JUnit XML reports read after the step. A template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub junit: Option<String>,
    /// Where this step runs: `local` or `slurm` (default: `[workflow] executor`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor: Option<ExecutorKind>,
    /// What the step's Slurm job asks for: `{ cpus, mem, gpus, time }`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Box<Resources>>,
}

/// A readiness or health probe: exactly one of `http`, `tcp`, `command`, `log`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Probe {
    /// A URL that must answer 2xx.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<String>,
    /// `host:port` that must accept a connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<String>,
    /// A shell command that must exit 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// A regex that must match a line of the service's output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
    /// How long to keep trying (ready probes, default 30s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// Time between tries (default 200ms for ready, 10s for health).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Duration>,
    /// Health probes: failures in a row that mark the service unhealthy (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failures: Option<u32>,
}
