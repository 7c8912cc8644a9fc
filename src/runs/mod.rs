//! The service layer: what a front-end does with runs, as data in and data out. The CLI
//! (`cli/`), `bgflow mcp` (`mcp/`) and `bgflow serve` (`serve/`) parse their input into
//! these options, call one function, and render what it returns.
//!
//! Invariants: nothing here prints or prompts. What a person may want to read while a
//! call works (a workflow's problems, a warning, a note) goes to the caller's [`Observer`];
//! a call that does nothing returns an [`Error`] carrying the exit code and the message the
//! CLI prints. Options are this module's own types, never clap's. `runs/` imports the
//! layers below it (`exec`, `store`, `report`, `validate`, ...) and never `cli/`.
//!
//! | does | call | CLI | MCP tool (DESIGN.md §9) |
//! |---|---|---|---|
//! | validate, record, start | `run_workflow(&WorkflowRun, Mode, ..)` -> `Started` | `run [-d]` | `run_workflow` |
//! | one command, detached | `start(&StartCommand, ..)` -> `Launched` | `start` | `start_process` |
//! | a run and its steps | `status(&store, prefix)` -> `RunView` | `status RUN` | `get_run` |
//! | the runs | `list(&store, state, limit)` -> `RunList`; `active` | `list`, `status` | `list_runs` |
//! | a step's log | `logs(&store, id, &LogQuery)` -> `LogPage` | `logs` | `get_logs` |
//! | wait for the end | `wait(&mut store, id, timeout, every, each)` -> `RunView` | `status --watch` | `wait_for_run` |
//! | stop | `stop(&mut store, prefix, StopOptions, confirm, ..)` -> `Stopped` | `stop` | `stop_run` |
//! | resume | `resume(&Resume, ..)` -> `Resumed` | `resume` | `resume_run` |
//! | events | `events(&store, run, after, limit)` -> `EventPage`; `events::follow` | `events` | `get_events` |
//! | clean up | `cleanup::remove_old`, `cleanup::remove_orphans` | `cleanup` | |
//!
//! The history is opened with `open` (reading commands) and ids resolved with `resolve`.

pub mod cleanup;
pub mod events;
pub mod graph;
pub mod guard;
pub mod history;
pub mod launch;
pub mod logs;
pub mod plan;
pub mod recorder;
pub mod spec;
pub mod start;
pub mod status;
pub mod stop;
pub mod supervise;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::diag::{Problem, SourceFile};
use crate::exec::{RunReport, Sink};
use crate::exit;
use crate::store::StoreError;

/// The history and its rows, as the calls above take and return them.
pub use crate::exec::junit::errors_text;
pub use crate::store::{RunRow, StepRow, Store};
pub use events::{page as events, EventPage};
pub use launch::{launch, run_workflow, Launched, Mode, Started, WorkflowRun};
pub use logs::{page as logs, LogPage, LogQuery};
pub use start::{resume, start, Resume, Resumed, StartCommand};
pub use status::{active, list, status, wait, RunList, RunPage, RunView};
pub use stop::{stop, StopOptions, Stopped};

/// Why a call did nothing, or could not finish: the exit code (docs/exit-codes.md) and
/// the message for people, as the CLI prints it on stderr (`error: …` with its help lines,
/// ending in a newline).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub code: u8,
    pub message: String,
}

impl Error {
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// Exit 2: the caller asked for something that does not exist or cannot be.
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(exit::USAGE, message)
    }

    /// Exit 3: the workflow or the run was refused; nothing ran.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(exit::INVALID, message)
    }

    /// Exit 4: bgflow could not do its part (the history, a folder, a process).
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(exit::INTERNAL, message)
    }

    /// A store error, as reading commands report it: exit 2 for an unknown or ambiguous
    /// run id, else 4.
    pub fn store(e: &StoreError) -> Self {
        let code = match e {
            StoreError::UnknownRun(_) | StoreError::AmbiguousRun { .. } => exit::USAGE,
            _ => exit::INTERNAL,
        };
        Self::new(code, format!("error: {e}\n"))
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message.trim_end())
    }
}

impl std::error::Error for Error {}

/// An internal store error (exit 4), whatever its kind.
pub(crate) fn internal(e: &StoreError) -> Error {
    Error::internal(format!("error: {e}\n"))
}

/// What a call has to say while it works. The CLI prints it on stderr; a server may
/// collect it or drop it. Every method has a default that drops it.
pub trait Observer {
    /// The problems a workflow was found with, before it runs or is refused; `errors` of
    /// them are errors (warnings count under `validation.strict`).
    fn problems(&mut self, _source: &SourceFile, _problems: &[Problem], _errors: usize) {}
    /// A warning or note that is always shown (ends in a newline).
    fn note(&mut self, _text: &str) {}
    /// A note shown unless the person asked for quiet (`-q`).
    fn info(&mut self, _text: &str) {}
    /// The terminal notification of a foreground run's end (shown on a terminal only).
    fn bell(&mut self, _text: &str) {}
    /// The live display of a foreground run: `names` of every step, `total` selected.
    fn display(&mut self, _names: Arc<[String]>, _total: usize) -> Option<Box<dyn Sink + Send>> {
        None
    }
    /// A foreground run's end-of-run summary.
    fn summary(&mut self, _report: &RunReport) {}
}

/// An observer that keeps nothing.
pub struct Silent;

impl Observer for Silent {}

/// Where the history and the configuration are: `--state-dir` and `--config` or their
/// environment variables. `None`: found as the CLI finds them.
#[derive(Debug, Clone, Default)]
pub struct Places {
    pub state_dir: Option<PathBuf>,
    pub config: Option<PathBuf>,
}

/// `.bgflow/` holding a run history, searched from `start` upward.
pub fn find_state_dir(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .map(|d| d.join(".bgflow"))
        .find(|d| d.join("bgflow.db").is_file())
}

/// Opens the history for the reading commands (and `stop`, `resume`), reconciling runs
/// whose supervisor is gone; exit 2 when there is none, 4 when it cannot be read.
pub fn open(state_dir: Option<&Path>, obs: &mut dyn Observer) -> Result<Store, Error> {
    let dir = match state_dir {
        Some(d) => d.to_path_buf(),
        None => {
            let cwd = std::env::current_dir().map_err(|_| Error::new(exit::INTERNAL, ""))?;
            find_state_dir(&cwd).ok_or_else(|| Error::usage(
                "error: no run history here: no .bgflow/bgflow.db in this folder or above\n  help: run a workflow first, or pass --state-dir DIR\n",
            ))?
        }
    };
    match Store::open_existing(&dir) {
        Ok(Some(mut s)) => {
            if let Some(w) = s.new_history_warning() {
                obs.note(&w);
            }
            reconcile(&mut s);
            Ok(s)
        }
        Ok(None) => Err(Error::usage(format!(
            "error: no run history in {}\n",
            dir.display()
        ))),
        Err(e) => Err(internal(&e)),
    }
}

/// Writes what readers see (`Store::reconcile_lost`: runs whose supervisor is gone become
/// `lost`), then removes the cgroup folder of every lost run that no live process is left
/// in. A supervisor killed by SIGKILL never removes its own, and each folder left is a
/// kernel object kept for good; one that still holds the run's orphans stays, for `stop`.
/// Best effort, like the reconcile itself. Returns the lost runs it read (none when the
/// history could not be read).
pub fn reconcile(store: &mut Store) -> Vec<crate::store::RunRow> {
    let _ = store.reconcile_lost();
    let lost = store.runs_stored(&["lost"], 10_000).unwrap_or_default();
    for run in &lost {
        if let Some(dir) = run.cgroup.as_deref().map(Path::new).filter(|d| d.is_dir()) {
            crate::exec::contain::RunProcesses::of(&run.id, Some(dir)).remove_if_empty();
        }
    }
    lost
}

/// The newest run in the state folder: what `bgflow resume` and `bgflow logs` with no id
/// take (the run just ended, in the usual case). `what` names the command's object in the
/// error when the history has no run (`no run to resume`).
pub fn newest(store: &Store, what: &str) -> Result<String, Error> {
    match store.runs_stored(&[], 1) {
        Ok(rows) => rows.into_iter().next().map(|r| r.id).ok_or_else(|| {
            Error::usage(format!(
                "error: no run to {what}: the history in {} has none\n",
                store.state_dir().display()
            ))
        }),
        Err(e) => Err(internal(&e)),
    }
}

/// The full id of the run that `prefix` names (exit 2 when none or several do).
pub fn resolve(store: &Store, prefix: &str) -> Result<String, Error> {
    store.resolve(prefix).map_err(|e| Error::store(&e))
}
