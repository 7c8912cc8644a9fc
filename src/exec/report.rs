//! What a run reports: each step's state and report, the run's, and `summary.json`'s
//! shape of them (docs/json-output.md).

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::Serialize;

use super::{junit, Progress};
use crate::layout::log_file;

/// A step's final (or current) state, as stored and shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    Pending,
    Running,
    Succeeded,
    Failed,
    TimedOut,
    Stalled,
    Cancelled,
    Skipped,
    Lost,
}

impl StepState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::TimedOut => "timed_out",
            Self::Stalled => "stalled",
            Self::Cancelled => "cancelled",
            Self::Skipped => "skipped",
            Self::Lost => "lost",
        }
    }

    pub fn is_failure(self) -> bool {
        matches!(
            self,
            Self::Failed | Self::TimedOut | Self::Stalled | Self::Lost
        )
    }
}

/// A run's final state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    Succeeded,
    Failed,
    Cancelled,
}

impl RunState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }
}

/// What happened to one step. A run holds one per step to its end, so the log's path is
/// not kept here: it is `log_in(log_dir)`, and `summary.json` writes it (`RunReport`).
#[derive(Debug, Clone)]
pub struct StepReport {
    pub name: String,
    pub state: StepState,
    /// Why it failed, was skipped or cancelled.
    pub reason: Option<String>,
    pub attempts: u32,
    pub exit_code: Option<i32>,
    pub signal: Option<String>,
    pub pid: Option<u32>,
    pub started_at: Option<SystemTime>,
    pub finished_at: Option<SystemTime>,
    pub duration_ms: Option<u64>,
    pub allow_failure: bool,
    /// Boxed, as `tests`: a run holds a report per step, and few have either.
    pub progress: Option<Box<Progress>>,
    /// The last lines of output (failures only).
    pub last_lines: Vec<String>,
    /// What went wrong without failing the step: processes that outlived it.
    pub warnings: Vec<String>,
    /// `kind = "test"` with `junit`: what the reports say.
    pub tests: Option<Box<junit::TestCounts>>,
}

impl StepReport {
    pub fn new(name: &str, allow_failure: bool) -> Self {
        Self {
            name: name.to_owned(),
            state: StepState::Pending,
            reason: None,
            attempts: 0,
            exit_code: None,
            signal: None,
            pid: None,
            started_at: None,
            finished_at: None,
            duration_ms: None,
            allow_failure,
            progress: None,
            last_lines: Vec::new(),
            warnings: Vec::new(),
            tests: None,
        }
    }

    /// The step's log file in the run's log folder (`log_file`).
    pub fn log_in(&self, log_dir: &Path) -> PathBuf {
        log_file(log_dir, &self.name)
    }
}

/// A step of `summary.json`: the report's fields in their order, with the log's path.
struct StepJson<'a> {
    report: &'a StepReport,
    log_dir: &'a Path,
}

impl Serialize for StepJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let r = self.report;
        let mut out = s.serialize_struct("StepReport", 16)?;
        out.serialize_field("name", &r.name)?;
        out.serialize_field("state", &r.state)?;
        out.serialize_field("reason", &r.reason)?;
        out.serialize_field("attempts", &r.attempts)?;
        out.serialize_field("exit_code", &r.exit_code)?;
        out.serialize_field("signal", &r.signal)?;
        out.serialize_field("pid", &r.pid)?;
        out.serialize_field("started_at", &Time(r.started_at))?;
        out.serialize_field("finished_at", &Time(r.finished_at))?;
        out.serialize_field("duration_ms", &r.duration_ms)?;
        out.serialize_field("allow_failure", &r.allow_failure)?;
        out.serialize_field("log", &r.log_in(self.log_dir))?;
        out.serialize_field("progress", &r.progress)?;
        out.serialize_field("last_lines", &r.last_lines)?;
        out.serialize_field("tests", &r.tests)?;
        out.serialize_field("warnings", &r.warnings)?;
        out.end()
    }
}

/// A time as `summary.json` writes it: RFC 3339 in UTC, or null.
struct Time(Option<SystemTime>);

impl Serialize for Time {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0.map(jiff::Timestamp::try_from) {
            Some(Ok(ts)) => s.collect_str(&ts),
            _ => s.serialize_none(),
        }
    }
}

/// What happened to the run.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub version: u32,
    pub run_id: String,
    pub workflow: String,
    pub file: PathBuf,
    pub state: RunState,
    /// Why the run ended early, if it did.
    pub reason: Option<String>,
    pub started_at: Option<SystemTime>,
    pub finished_at: Option<SystemTime>,
    pub duration_ms: u64,
    pub log_dir: PathBuf,
    /// The signal that stopped bgflow, if one did.
    pub signal: Option<i32>,
    pub steps: Vec<StepReport>,
}

/// `summary.json` (docs/json-output.md): each step with its log's path.
impl Serialize for RunReport {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        struct Steps<'a>(&'a RunReport);
        impl Serialize for Steps<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_seq(self.0.steps.iter().map(|report| StepJson {
                    report,
                    log_dir: &self.0.log_dir,
                }))
            }
        }
        let mut out = s.serialize_struct("RunReport", 12)?;
        out.serialize_field("version", &self.version)?;
        out.serialize_field("run_id", &self.run_id)?;
        out.serialize_field("workflow", &self.workflow)?;
        out.serialize_field("file", &self.file)?;
        out.serialize_field("state", &self.state)?;
        out.serialize_field("reason", &self.reason)?;
        out.serialize_field("started_at", &Time(self.started_at))?;
        out.serialize_field("finished_at", &Time(self.finished_at))?;
        out.serialize_field("duration_ms", &self.duration_ms)?;
        out.serialize_field("log_dir", &self.log_dir)?;
        out.serialize_field("signal", &self.signal)?;
        out.serialize_field("steps", &Steps(self))?;
        out.end()
    }
}

impl RunReport {
    /// The process exit code, derived in this one place (docs/exit-codes.md).
    pub fn exit_code(&self) -> u8 {
        match (self.signal, self.state) {
            (Some(sig), _) => crate::exit::from_signal(sig),
            (None, RunState::Succeeded) => crate::exit::SUCCESS,
            _ => crate::exit::RUN_FAILED,
        }
    }
}
