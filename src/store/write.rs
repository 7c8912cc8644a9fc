//! The writes a run's history writer sends, applied in batches by `Store::apply`.

use super::NewRun;

/// One write, applied in batches by `Store::apply`.
#[derive(Debug, Clone)]
pub enum Write {
    /// The run's row and its steps' rows. A foreground run sends this as its first write, so
    /// that its steps start while the rows are written (40 ms at 10,000 steps).
    RunCreated(Box<NewRun>),
    RunStarted {
        run: String,
        pid: u32,
        start: Option<u64>,
        heartbeat_ms: i64,
        containment: &'static str,
        cgroup: Option<String>,
    },
    Heartbeat {
        run: String,
    },
    StepStarted {
        run: String,
        idx: usize,
        attempt: u32,
        pid: u32,
        pid_start: Option<u64>,
        at: i64,
    },
    /// A step's Slurm job: submitted, or in a new state.
    StepJob {
        run: String,
        idx: usize,
        attempt: u32,
        job_id: String,
        state: String,
        at: i64,
    },
    StepProgress {
        run: String,
        idx: usize,
        percent: Option<f64>,
        current: Option<u64>,
        total: Option<u64>,
        message: Option<String>,
    },
    StepLine {
        run: String,
        idx: usize,
        line: String,
    },
    /// A step's fingerprint after a success (`exec::fingerprint`), for later up-to-date
    /// checks; `run` is the run it succeeded in.
    Fingerprint {
        key: String,
        inputs: String,
        outputs: String,
        run: String,
    },
    StepFinished {
        run: String,
        idx: usize,
        row: Box<StepFinish>,
    },
    RunFinished {
        run: String,
        state: String,
        reason: Option<String>,
        exit_code: i64,
    },
    Event {
        run: String,
        at: i64,
        kind: String,
        step: Option<String>,
        /// The event's data, already a JSON object.
        data: String,
    },
}

/// The final fields of a step.
#[derive(Debug, Clone)]
pub struct StepFinish {
    pub state: String,
    pub reason: Option<String>,
    pub attempts: u32,
    pub exit_code: Option<i32>,
    pub signal: Option<String>,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    /// The process of the last attempt, when its `StepStarted` row was folded into this one.
    pub pid: Option<u32>,
    /// The start time of `pid`, with it.
    pub pid_start: Option<u64>,
    pub counts_done: bool,
    /// (passed, failed, errors, skipped, failing tests as JSON).
    pub tests: Option<(u64, u64, u64, u64, serde_json::Value)>,
}
