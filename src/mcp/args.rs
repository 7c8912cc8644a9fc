//! The arguments each tool takes, and the shapes of what it returns (for the output
//! schemas; the values themselves are the `runs::` data as the CLI's `--json` shows it).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `get_logs` returns at most this many bytes of text unless `max_bytes` says otherwise.
pub const LOG_CAP: usize = 16 * 1024;
/// The most `max_bytes` may ask for.
pub const LOG_CAP_MAX: usize = 1024 * 1024;
/// `wait_for_run` waits this long when `timeout_s` is not given.
pub const WAIT_DEFAULT_S: f64 = 60.0;
/// The longest a `wait_for_run` call blocks.
pub const WAIT_MAX_S: f64 = 3600.0;
/// The lines of a failed step's log `wait_for_run` returns.
pub const LAST_LINES: usize = 20;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanArgs {
    /// The workflow file (relative to the server's working folder).
    pub file: String,
    /// Workflow variables, NAME -> value (as `--var NAME=VALUE`).
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
    /// Count warnings as errors (as `plan --strict`).
    #[serde(default)]
    pub strict: bool,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunArgs {
    /// The workflow file (relative to the server's working folder).
    pub file: String,
    /// Workflow variables, NAME -> value (as `--var NAME=VALUE`).
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
    /// Run only these steps and what they need (as `--only`; `*`, `?`: `test[*,fast]`).
    #[serde(default)]
    pub only: Vec<String>,
    /// Go on with independent steps after a failure (as `--keep-going`).
    #[serde(default)]
    pub keep_going: bool,
    /// Run steps even when they are up to date (as `--force`).
    #[serde(default)]
    pub force: bool,
    /// At most this many steps at once (as `--jobs`).
    pub jobs: Option<u32>,
}

/// A command as one shell string (run by `sh -c`) or as a program and its arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum CommandArg {
    Shell(String),
    Argv(Vec<String>),
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StartArgs {
    /// A shell command line (run by `sh -c`), or a program and its arguments.
    pub command: CommandArg,
    /// The run's (and step's) name; default: the program's name.
    pub name: Option<String>,
    /// `task` (default), `service` or `test`.
    pub kind: Option<String>,
    /// Stop the command after this long, e.g. `30s`, `5m`, `2h`.
    pub timeout: Option<String>,
    /// The folder it runs in; default: the server's working folder.
    pub cwd: Option<String>,
    /// Free metadata stored with the run.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunIdArg {
    /// A run id, or any unique prefix of one.
    pub run_id: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListArgs {
    /// Only runs in this state (`running`, `failed`, `succeeded`, ...; `all`: every state).
    pub status: Option<String>,
    /// At most this many runs, newest first (default 20).
    pub limit: Option<usize>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogsArgs {
    /// A run id, or any unique prefix of one.
    pub run_id: String,
    /// The step; may be left out when the run has one step.
    pub step: Option<String>,
    /// Start at the last `tail` lines (when no `offset` is given).
    pub tail: Option<usize>,
    /// Read from this byte offset (a previous page's `next_offset`).
    pub offset: Option<u64>,
    /// At most this many bytes of text (default 16384, at most 1048576).
    pub max_bytes: Option<usize>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WaitArgs {
    /// A run id, or any unique prefix of one.
    pub run_id: String,
    /// Return after this many seconds at most, ended or not (default 60, at most 3600).
    pub timeout_s: Option<f64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StopArgs {
    /// A run id, or any unique prefix of one.
    pub run_id: String,
    /// SIGKILL at once instead of SIGTERM and the grace.
    #[serde(default)]
    pub force: bool,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EventsArgs {
    /// Only this run's events (a run id or unique prefix); default: every run's.
    pub run_id: Option<String>,
    /// Only events after this id (a previous page's `next`); default 0.
    pub after: Option<i64>,
    /// At most this many events (default 1000).
    pub limit: Option<usize>,
}

// What the tools return. Only their schemas are used; the values come from `runs::`.

/// One workflow file as `plan --json` shows it.
#[derive(Serialize, JsonSchema)]
pub struct PlanOut {
    pub version: u32,
    pub file: String,
    /// Whether it may run.
    pub valid: bool,
    pub errors: usize,
    pub warnings: usize,
    pub workflow: Option<String>,
    /// The execution plan (root, waves, steps) when valid.
    pub plan: Option<Value>,
    /// Each problem: severity, code, message, file, line, column, label, help, related.
    pub problems: Vec<Value>,
}

/// A run that was started in the background.
#[derive(Serialize, JsonSchema)]
pub struct StartedOut {
    pub run_id: String,
    pub workflow: String,
    /// The state folder holding the run's history.
    pub state_dir: String,
    /// The folder of the run's logs.
    pub log_dir: String,
}

/// A run and its steps, as `status --json` shows them.
#[derive(Serialize, JsonSchema)]
pub struct RunOut {
    pub version: u32,
    pub run: Value,
    pub steps: Vec<Value>,
}

/// Runs newest first, as `list --json` shows them.
#[derive(Serialize, JsonSchema)]
pub struct ListOut {
    pub version: u32,
    pub runs: Vec<Value>,
    /// Run folders the history does not know.
    pub orphans: Vec<String>,
}

/// A page of a step's log.
#[derive(Serialize, JsonSchema)]
pub struct LogsOut {
    pub run_id: String,
    pub step: String,
    pub text: String,
    /// Pass as `offset` to read on.
    pub next_offset: u64,
    /// Whether the log held more than this page.
    pub truncated: bool,
    /// The step's state when the page was read.
    pub state: String,
}

/// A step that did not succeed, with what to read about it.
#[derive(Serialize, JsonSchema)]
pub struct FailureOut {
    pub step: String,
    pub state: String,
    pub reason: Option<String>,
    pub exit_code: Option<i64>,
    pub log_path: String,
    /// The last lines of its log.
    pub last_lines: String,
    /// For a test step whose JUnit report was read: the failing tests (at most 20 of them,
    /// `{name, kind, type, message}`), as the step's `tests_failing` has them; absent
    /// otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failing_tests: Option<Value>,
}

/// A run once it has ended, or its state at the timeout.
#[derive(Serialize, JsonSchema)]
pub struct WaitOut {
    pub version: u32,
    /// Whether the run has ended (false: the timeout passed first).
    pub ended: bool,
    pub run: Value,
    pub steps: Vec<Value>,
    /// Each step that failed, timed out or was lost.
    pub failures: Vec<FailureOut>,
}

/// A run's state after `stop_run`.
#[derive(Serialize, JsonSchema)]
pub struct StopOut {
    pub run_id: String,
    pub state: String,
    /// False when the run had already ended and nothing of it was left.
    pub was_running: bool,
}

/// The new run of what did not succeed.
#[derive(Serialize, JsonSchema)]
pub struct ResumeOut {
    /// The new run; null when every step of the run succeeded (nothing to resume).
    pub run_id: Option<String>,
    pub resumed_from: String,
}

/// A page of events, as `events` prints them.
#[derive(Serialize, JsonSchema)]
pub struct EventsOut {
    pub events: Vec<Value>,
    /// Pass as `after` to read the events that follow.
    pub next: i64,
}
