//! The history's schema: its migrations (keyed on `PRAGMA user_version`) and how a row
//! becomes a `RunRow` or a `StepRow`.

use rusqlite::Row;
use serde::Serialize;

pub(super) const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    "CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        workflow TEXT NOT NULL,
        file TEXT,
        root TEXT NOT NULL,
        kind TEXT NOT NULL,
        state TEXT NOT NULL,
        reason TEXT,
        detached INTEGER NOT NULL DEFAULT 0,
        supervisor_pid INTEGER,
        supervisor_start INTEGER,
        heartbeat_at INTEGER,
        created_at INTEGER NOT NULL,
        started_at INTEGER,
        finished_at INTEGER,
        steps_total INTEGER NOT NULL DEFAULT 0,
        steps_done INTEGER NOT NULL DEFAULT 0,
        log_dir TEXT NOT NULL,
        spec TEXT NOT NULL DEFAULT '{}',
        meta TEXT NOT NULL DEFAULT '{}',
        exit_code INTEGER
     );
     CREATE INDEX runs_created ON runs(created_at DESC);
     CREATE INDEX runs_state ON runs(state);
     CREATE TABLE steps (
        run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        idx INTEGER NOT NULL,
        name TEXT NOT NULL,
        kind TEXT NOT NULL DEFAULT 'task',
        state TEXT NOT NULL,
        reason TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        pid INTEGER,
        pgid INTEGER,
        exit_code INTEGER,
        signal TEXT,
        started_at INTEGER,
        finished_at INTEGER,
        progress_percent REAL,
        progress_current INTEGER,
        progress_total INTEGER,
        progress_message TEXT,
        last_line TEXT,
        log_path TEXT NOT NULL,
        PRIMARY KEY (run_id, idx)
     );
     CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        at INTEGER NOT NULL,
        type TEXT NOT NULL,
        step TEXT,
        data TEXT NOT NULL
     );
     CREATE INDEX events_run ON events(run_id, id);
     CREATE TABLE fingerprints (
        key TEXT PRIMARY KEY,
        hash TEXT NOT NULL,
        recorded_at INTEGER NOT NULL
     );",
    // 2: test results of `kind = "test"` steps.
    "ALTER TABLE steps ADD COLUMN tests_passed INTEGER;
     ALTER TABLE steps ADD COLUMN tests_failed INTEGER;
     ALTER TABLE steps ADD COLUMN tests_errors INTEGER;
     ALTER TABLE steps ADD COLUMN tests_skipped INTEGER;
     ALTER TABLE steps ADD COLUMN tests_failing TEXT;",
    // 3: what readers need to judge a run (its heartbeat interval), the lock per tree
    // (its declared outputs, JSON; NULL: no lock), its containment, a step's start time.
    "ALTER TABLE runs ADD COLUMN heartbeat_ms INTEGER;
     ALTER TABLE runs ADD COLUMN lock_outputs TEXT;
     ALTER TABLE runs ADD COLUMN containment TEXT;
     ALTER TABLE runs ADD COLUMN cgroup TEXT;
     ALTER TABLE steps ADD COLUMN pid_start INTEGER;",
    // 4: a fingerprint covers the outputs as the step succeeded, and names the run it
    // succeeded in (guarantee 9). Older fingerprints lack both and can vouch for nothing:
    // they are dropped, and each step runs once more.
    "DROP TABLE fingerprints;
     CREATE TABLE fingerprints (
        key TEXT PRIMARY KEY,
        hash TEXT NOT NULL,
        outputs TEXT NOT NULL,
        run_id TEXT NOT NULL,
        recorded_at INTEGER NOT NULL
     );",
    // 5: a step's Slurm job (its id, and its last state with Slurm's reason).
    "ALTER TABLE steps ADD COLUMN job_id TEXT;
     ALTER TABLE steps ADD COLUMN job_state TEXT;",
];

/// The schema every migration above leads to, written out whole: a new history is made
/// from this in one transaction (`create`), instead of from the first schema and then
/// each change to it (SQLite parses the whole schema again after every `ALTER TABLE`:
/// 2 ms of a new run's start). `create::tests::the_fresh_schema_is_the_migrated_one`
/// compares the two, column by column and index by index.
pub(super) const FRESH: &str = "CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        workflow TEXT NOT NULL,
        file TEXT,
        root TEXT NOT NULL,
        kind TEXT NOT NULL,
        state TEXT NOT NULL,
        reason TEXT,
        detached INTEGER NOT NULL DEFAULT 0,
        supervisor_pid INTEGER,
        supervisor_start INTEGER,
        heartbeat_at INTEGER,
        created_at INTEGER NOT NULL,
        started_at INTEGER,
        finished_at INTEGER,
        steps_total INTEGER NOT NULL DEFAULT 0,
        steps_done INTEGER NOT NULL DEFAULT 0,
        log_dir TEXT NOT NULL,
        spec TEXT NOT NULL DEFAULT '{}',
        meta TEXT NOT NULL DEFAULT '{}',
        exit_code INTEGER,
        heartbeat_ms INTEGER,
        lock_outputs TEXT,
        containment TEXT,
        cgroup TEXT
     );
     CREATE INDEX runs_created ON runs(created_at DESC);
     CREATE INDEX runs_state ON runs(state);
     CREATE TABLE steps (
        run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        idx INTEGER NOT NULL,
        name TEXT NOT NULL,
        kind TEXT NOT NULL DEFAULT 'task',
        state TEXT NOT NULL,
        reason TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        pid INTEGER,
        pgid INTEGER,
        exit_code INTEGER,
        signal TEXT,
        started_at INTEGER,
        finished_at INTEGER,
        progress_percent REAL,
        progress_current INTEGER,
        progress_total INTEGER,
        progress_message TEXT,
        last_line TEXT,
        log_path TEXT NOT NULL,
        tests_passed INTEGER,
        tests_failed INTEGER,
        tests_errors INTEGER,
        tests_skipped INTEGER,
        tests_failing TEXT,
        pid_start INTEGER,
        job_id TEXT,
        job_state TEXT,
        PRIMARY KEY (run_id, idx)
     );
     CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        at INTEGER NOT NULL,
        type TEXT NOT NULL,
        step TEXT,
        data TEXT NOT NULL
     );
     CREATE INDEX events_run ON events(run_id, id);
     CREATE TABLE fingerprints (
        key TEXT PRIMARY KEY,
        hash TEXT NOT NULL,
        outputs TEXT NOT NULL,
        run_id TEXT NOT NULL,
        recorded_at INTEGER NOT NULL
     );";

pub(super) const RUN_COLUMNS: &str = "id, workflow, file, root, kind, state, reason, detached, supervisor_pid, supervisor_start,
    heartbeat_at, created_at, started_at, finished_at, steps_total, steps_done, log_dir, spec, meta, exit_code,
    heartbeat_ms, lock_outputs, containment, cgroup";

pub(super) fn run_row(r: &Row<'_>) -> rusqlite::Result<RunRow> {
    let meta: String = r.get(18)?;
    Ok(RunRow {
        id: r.get(0)?,
        workflow: r.get(1)?,
        file: r.get(2)?,
        root: r.get(3)?,
        kind: r.get(4)?,
        state: r.get(5)?,
        reason: r.get(6)?,
        detached: r.get(7)?,
        supervisor_pid: r.get(8)?,
        supervisor_start: r.get(9)?,
        heartbeat_at: r.get(10)?,
        created_at: r.get(11)?,
        started_at: r.get(12)?,
        finished_at: r.get(13)?,
        steps_total: r.get(14)?,
        steps_done: r.get(15)?,
        log_dir: r.get(16)?,
        spec: r.get(17)?,
        meta: serde_json::from_str(&meta).unwrap_or(serde_json::Value::Null),
        exit_code: r.get(19)?,
        heartbeat_ms: r.get(20)?,
        lock: r
            .get::<_, Option<String>>(21)?
            .and_then(|o| serde_json::from_str(&o).ok())
            .map(|outputs| Lock {
                root: r.get(3).unwrap_or_default(),
                outputs,
            }),
        containment: r.get(22)?,
        cgroup: r.get(23)?,
        still_running: Vec::new(),
        slurm_jobs_left: Vec::new(),
        slurm_jobs_unknown: None,
    })
}

pub(super) const STEP_COLUMNS: &str = "idx, name, kind, state, reason, attempts, pid, pgid, exit_code, signal, started_at, finished_at,
    progress_percent, progress_current, progress_total, progress_message, last_line, log_path,
    tests_passed, tests_failed, tests_errors, tests_skipped, tests_failing, pid_start, job_id, job_state";

pub(super) fn step_row(r: &Row<'_>) -> rusqlite::Result<StepRow> {
    Ok(StepRow {
        idx: r.get(0)?,
        name: r.get(1)?,
        kind: r.get(2)?,
        state: r.get(3)?,
        reason: r.get(4)?,
        attempts: r.get(5)?,
        pid: r.get(6)?,
        pgid: r.get(7)?,
        exit_code: r.get(8)?,
        signal: r.get(9)?,
        started_at: r.get(10)?,
        finished_at: r.get(11)?,
        progress_percent: r.get(12)?,
        progress_current: r.get(13)?,
        progress_total: r.get(14)?,
        progress_message: r.get(15)?,
        last_line: r.get(16)?,
        log_path: r.get(17)?,
        tests_passed: r.get(18)?,
        tests_failed: r.get(19)?,
        tests_errors: r.get(20)?,
        tests_skipped: r.get(21)?,
        tests_failing: r
            .get::<_, Option<String>>(22)?
            .and_then(|t| serde_json::from_str(&t).ok()),
        pid_start: r.get(23)?,
        job_id: r.get(24)?,
        job_state: r.get(25)?,
    })
}

/// A run as stored.
#[derive(Debug, Clone, Serialize)]
pub struct RunRow {
    pub id: String,
    pub workflow: String,
    pub file: Option<String>,
    pub root: String,
    pub kind: String,
    pub state: String,
    pub reason: Option<String>,
    pub detached: bool,
    pub supervisor_pid: Option<i64>,
    #[serde(skip)]
    pub supervisor_start: Option<i64>,
    pub heartbeat_at: Option<i64>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub steps_total: i64,
    pub steps_done: i64,
    pub log_dir: String,
    #[serde(skip)]
    pub spec: String,
    pub meta: serde_json::Value,
    pub exit_code: Option<i64>,
    /// How often its supervisor writes its heartbeat, in ms (`monitoring.heartbeat`).
    pub heartbeat_ms: Option<i64>,
    /// The lock per tree it holds while active; `None`: none (no declared outputs).
    pub lock: Option<Lock>,
    /// How its steps are contained: `cgroup` or `process-group`.
    pub containment: Option<String>,
    /// Its cgroup folder, with `cgroup` containment.
    pub cgroup: Option<String>,
    /// A `lost` run's processes that still run (its supervisor is gone, its steps are
    /// not): not stored, but found as the run is read (`runs::status`); empty otherwise.
    pub still_running: Vec<Process>,
    /// A `lost` run's Slurm jobs that `squeue` lists as still queued or running, found when
    /// the one run is read (`runs::status::view`: `status RUN`, `get_run`, its page); empty
    /// otherwise.
    pub slurm_jobs_left: Vec<String>,
    /// Why `squeue` could not tell whether such a run's jobs still run; `None` otherwise.
    pub slurm_jobs_unknown: Option<String>,
}

/// A process, as people and agents are told of it.
#[derive(Debug, Clone, Serialize)]
pub struct Process {
    pub pid: u32,
    /// Its command line, at most 80 characters.
    pub command: String,
}

/// The lock of a run: its workflow root and the outputs its selected steps declare
/// (relative to the root; paths or globs).
#[derive(Debug, Clone, Serialize)]
pub struct Lock {
    pub root: String,
    pub outputs: Vec<String>,
}

impl RunRow {
    /// Pending, running or unresponsive: its supervisor may still act.
    pub fn is_active(&self) -> bool {
        matches!(self.state.as_str(), "pending" | "running" | "unresponsive")
    }

    /// A lost run with processes or Slurm jobs known to run on (as its reader found them:
    /// `still_running`, `slurm_jobs_left`): not over, and `stop` still has work.
    pub fn is_left_running(&self) -> bool {
        !self.still_running.is_empty() || !self.slurm_jobs_left.is_empty()
    }
}

/// A step as stored.
#[derive(Debug, Clone, Serialize)]
pub struct StepRow {
    pub idx: i64,
    pub name: String,
    pub kind: String,
    pub state: String,
    pub reason: Option<String>,
    pub attempts: i64,
    pub pid: Option<i64>,
    pub pgid: Option<i64>,
    pub exit_code: Option<i64>,
    pub signal: Option<String>,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub progress_percent: Option<f64>,
    pub progress_current: Option<i64>,
    pub progress_total: Option<i64>,
    pub progress_message: Option<String>,
    pub last_line: Option<String>,
    pub log_path: String,
    /// The start time of `pid` (clock ticks after boot): with it, `pid` names one process.
    pub pid_start: Option<i64>,
    /// The Slurm job of the last attempt, when the step ran on Slurm.
    pub job_id: Option<String>,
    /// Its last state as Slurm showed it, with the reason: `PENDING (Priority)`, `RUNNING`.
    pub job_state: Option<String>,
    pub tests_passed: Option<i64>,
    pub tests_failed: Option<i64>,
    pub tests_errors: Option<i64>,
    pub tests_skipped: Option<i64>,
    /// `[{"name", "kind", "type", "message"}]` of the first failing tests (`TestCounts::failing`).
    pub tests_failing: Option<serde_json::Value>,
}

/// An event row.
#[derive(Debug, Clone, Serialize)]
pub struct EventRow {
    pub id: i64,
    pub run_id: String,
    pub at: i64,
    pub r#type: String,
    pub step: Option<String>,
    pub data: serde_json::Value,
}
