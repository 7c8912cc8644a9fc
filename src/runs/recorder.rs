//! The run history as a consumer of run events: every state change becomes rows in the
//! store. It sits above both `exec` (whose events it reads) and `store` (which it writes),
//! so neither of those imports the other.
//!
//! Writes are batched: state changes are flushed at once unless the last flush was under
//! 200 ms ago; the run loop's heartbeat (every 250 ms) flushes whatever waits. So a 10,000-step run costs tens of
//! transactions, not tens of thousands, and nothing waits more than one heartbeat.
//!
//! A batch is applied by a writer thread that owns the connection, so the run loop never
//! waits for SQLite: a flush is a channel send, and the next step starts while the last
//! batch is written. The thread applies batches in the order they were sent (several that
//! queued up while it was busy go in one transaction). `store()` and `Drop` wait for every
//! batch sent so far to be written and take the connection back.
//!
//! The writer also checkpoints the WAL into `bgflow.db` (guarantee 13): once while the
//! run's last steps are running, and again right after its last write, while the run's
//! summary is made and printed. The end-of-run checkpoint then finds little or nothing
//! left: at 1,000 steps it copied every page of the history and synced it after the last
//! step (2.9 ms of `fsync` alone, `strace -T`) before the summary could be printed.

use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;

use crate::exec::junit::TestCounts;
use crate::exec::{RunEvent, Sink, StepReport, StepState};
use crate::store::{now_ms, to_ms, NewRun, StepFinish, Store, StoreError, Write};

const FLUSH_EVERY: Duration = Duration::from_millis(200);
/// The error when the writer thread died (it never should: `Store::apply` returns errors).
const WRITER_GONE: &str = "the history writer thread stopped";
/// How often the supervisor's heartbeat time is written.
const DEFAULT_BEAT: Duration = Duration::from_secs(2);
/// The early checkpoint comes when this share of the run's steps is left to end (and at
/// least `EARLY_CHECKPOINT_MIN`): most of the history is then in `bgflow.db` before the
/// end, and the checkpoint's copy and syncs overlap the last steps.
const EARLY_CHECKPOINT_SHARE: usize = 20;
const EARLY_CHECKPOINT_MIN: usize = 2;

/// What the writer thread hands back: the connection, the first error, and whether the
/// last batch was checkpointed in full.
type Written = (Store, Option<String>, bool);

/// What the writer thread is handed: writes, and whether to checkpoint after them.
struct Batch {
    writes: Vec<Write>,
    checkpoint: bool,
}

/// Where batches go: the writer thread, or (once `store()` took the connection back, or if
/// the thread could not start) the connection here.
enum Writer {
    Thread {
        tx: mpsc::Sender<Batch>,
        handle: JoinHandle<Option<Written>>,
    },
    Here(Store),
    /// The thread died with the connection (its writes are lost; `error` says so), or
    /// `store()` is switching from the thread to here.
    Gone,
}

/// The first write error, shared by the writer thread and the sink: the run loop asks for
/// it on every heartbeat (`Sink::broken`) and ends the run when it is set.
type Failure = Arc<Mutex<Option<String>>>;

/// Why the run history cannot be written, for a person: a full device says so.
pub fn history_failure(e: &StoreError, state_dir: &std::path::Path) -> String {
    if e.is_full() || crate::store::liveness::device_full(state_dir) {
        "cannot write the run history: no space left on the device".to_owned()
    } else {
        format!("cannot write the run history: {e}")
    }
}

fn note_failure(failed: &Failure, e: &StoreError, state_dir: &std::path::Path) {
    if let Ok(mut f) = failed.lock() {
        f.get_or_insert_with(|| history_failure(e, state_dir));
    }
}

/// The writer thread: applies batches until the sender is dropped, then hands the
/// connection back with the first error, which it also shares in `failed` as soon as it
/// happens. (`Store::apply` returns errors; it does not panic. If it did, the join in
/// `store()` sees it and the run reports its history incomplete.)
fn write_batches(mut store: Store, rx: mpsc::Receiver<Batch>, failed: &Failure) -> Written {
    let mut error = None;
    let mut checkpointed = false;
    while let Ok(Batch {
        writes: mut batch,
        mut checkpoint,
    }) = rx.recv()
    {
        // Batches that queued up while the last one was written go in one transaction.
        while let Ok(more) = rx.try_recv() {
            batch.extend(more.writes);
            checkpoint |= more.checkpoint;
        }
        checkpointed = apply(&mut store, &batch, checkpoint, failed, &mut error);
    }
    (store, error, checkpointed)
}

/// Writes `batch`, then checkpoints when asked; whether the whole WAL is now in
/// `bgflow.db`. A checkpoint that cannot finish (a reader held an older snapshot past
/// `Store::checkpoint`'s half second) is left to the next one; the run's last is retried
/// by `supervise::execute`.
fn apply(
    store: &mut Store,
    batch: &[Write],
    checkpoint: bool,
    failed: &Failure,
    error: &mut Option<String>,
) -> bool {
    if let Err(e) = store.apply(batch) {
        note_failure(failed, &e, store.state_dir());
        error.get_or_insert_with(|| e.to_string());
    } else if !store.still_at_its_path() {
        // Written, but into a file nobody will read: the run would go on unseen (and a
        // new run of the same tree would not know it, guarantee 11). It ends (guarantee 13).
        let why = format!(
            "cannot write the run history: {} was deleted or replaced while the run went on",
            store.state_dir().join("bgflow.db").display()
        );
        if let Ok(mut f) = failed.lock() {
            f.get_or_insert_with(|| why.clone());
        }
        error.get_or_insert(why);
    }
    checkpoint && store.checkpoint().unwrap_or(false)
}

pub struct StoreSink {
    writer: Writer,
    run: String,
    names: Arc<[String]>,
    /// The run's log folder, from `RunStarted`: each step's log is in it (`log_in`).
    log_dir: std::path::PathBuf,
    pending: Vec<Write>,
    /// Checkpoint after the next batch.
    checkpoint_next: bool,
    /// How many more steps end before the early checkpoint (`None` once it came, or for
    /// a run too small for one).
    early_checkpoint_in: Option<usize>,
    last_flush: Instant,
    last_beat: Instant,
    /// How often the heartbeat time is written (`monitoring.heartbeat`).
    pub beat_every: Duration,
    /// Whether the last batch written was checkpointed in full (known once `store()` has
    /// taken the connection back).
    checkpointed: bool,
    /// The first write error, reported once at the end (a run is never failed by its
    /// history). Complete once `store()` has been called.
    pub error: Option<String>,
    /// The first write error as a reason for the run (`Sink::broken`), as soon as it happens.
    failed: Failure,
}

impl StoreSink {
    pub fn new(store: Store, run: &str, names: Arc<[String]>) -> Self {
        let (tx, rx) = mpsc::channel::<Batch>();
        // The connection goes to the thread only once it runs, so a thread that cannot
        // start leaves it here.
        let (give, take) = mpsc::channel::<Store>();
        let failed = Failure::default();
        let shared = Arc::clone(&failed);
        let spawned = std::thread::Builder::new()
            .name("bgflow-history".into())
            .spawn(move || {
                take.recv()
                    .ok()
                    .map(|store| write_batches(store, rx, &shared))
            });
        let writer = match spawned {
            Ok(handle) => match give.send(store) {
                Ok(()) => Writer::Thread { tx, handle },
                Err(mpsc::SendError(store)) => Writer::Here(store),
            },
            Err(_) => Writer::Here(store),
        };
        Self {
            writer,
            run: run.to_owned(),
            names,
            log_dir: std::path::PathBuf::new(),
            pending: Vec::new(),
            checkpoint_next: false,
            checkpointed: false,
            early_checkpoint_in: None,
            last_flush: Instant::now(),
            last_beat: Instant::now(),
            beat_every: DEFAULT_BEAT,
            error: None,
            failed,
        }
    }

    /// The store itself, for writes outside the event stream, once every batch sent so
    /// far is written. `None` only if the writer thread died, which `error` then says.
    pub fn store(&mut self) -> Option<&mut Store> {
        self.flush();
        self.writer = match std::mem::replace(&mut self.writer, Writer::Gone) {
            Writer::Thread { tx, handle } => {
                drop(tx);
                match handle.join() {
                    Ok(Some((store, error, checkpointed))) => {
                        if let Some(e) = error {
                            self.error.get_or_insert(e);
                        }
                        self.checkpointed = checkpointed;
                        Writer::Here(store)
                    }
                    _ => {
                        self.error.get_or_insert_with(|| WRITER_GONE.to_owned());
                        Writer::Gone
                    }
                }
            }
            other => other,
        };
        match &mut self.writer {
            Writer::Here(store) => Some(store),
            _ => None,
        }
    }

    /// Waits for every write, then makes sure the WAL is in `bgflow.db`: the writer
    /// checkpointed after the run's last write, and this tries again only if a reader held
    /// that one back. Losing the WAL later then loses nothing written so far.
    pub fn checkpoint(&mut self) {
        // `store()` first: it joins the writer, which says how its last checkpoint went.
        if self.store().is_none() || self.checkpointed {
            return;
        }
        if let Some(store) = self.store() {
            let _ = store.checkpoint();
        }
    }

    /// Records a new run, sent to the writer at once: the steps start while its rows are
    /// written, and every later write comes after them.
    pub fn record(&mut self, run: NewRun) {
        self.pending.push(Write::RunCreated(Box::new(run)));
        self.flush();
    }

    /// Hands the waiting writes to the writer.
    pub fn flush(&mut self) {
        if self.pending.is_empty() && !self.checkpoint_next {
            return;
        }
        self.last_flush = Instant::now();
        let checkpoint = std::mem::take(&mut self.checkpoint_next);
        match &mut self.writer {
            Writer::Thread { tx, .. } => {
                let batch = Batch {
                    writes: std::mem::take(&mut self.pending),
                    checkpoint,
                };
                if tx.send(batch).is_err() {
                    // The thread is gone (it panicked) and its connection with it.
                    self.error.get_or_insert_with(|| WRITER_GONE.to_owned());
                    if let Ok(mut f) = self.failed.lock() {
                        f.get_or_insert_with(|| WRITER_GONE.to_owned());
                    }
                }
            }
            Writer::Here(store) => {
                self.checkpointed = apply(
                    store,
                    &self.pending,
                    checkpoint,
                    &self.failed,
                    &mut self.error,
                );
                self.pending.clear();
            }
            Writer::Gone => self.pending.clear(),
        }
    }

    fn event(&mut self, kind: &str, step: Option<usize>, mut data: serde_json::Value) {
        if let Some(obj) = data.as_object_mut() {
            obj.insert("version".into(), json!(1));
        }
        self.event_data(kind, step, data.to_string());
    }

    /// An event whose data is already a JSON object (with its `version`).
    fn event_data(&mut self, kind: &str, step: Option<usize>, data: String) {
        self.pending.push(Write::Event {
            run: self.run.clone(),
            at: now_ms(),
            kind: kind.to_owned(),
            step: step.map(|s| self.names[s].clone()),
            data,
        });
    }

    /// The `StepStarted` row of `step` still waiting in this batch, taken out so that the
    /// step's final row carries its pid: one write instead of two for a step that started
    /// and ended within one flush (most of a run of short steps).
    fn take_started(&mut self, step: usize) -> Option<(u32, Option<u64>)> {
        let from = self.pending.len().saturating_sub(64);
        let at = self.pending[from..]
            .iter()
            .rposition(|w| matches!(w, Write::StepStarted { idx, .. } if *idx == step))?
            + from;
        match self.pending.remove(at) {
            Write::StepStarted { pid, pid_start, .. } => Some((pid, pid_start)),
            _ => None,
        }
    }

    /// The final state of a step: its row, and a `step_finished` event.
    fn step_finished(&mut self, step: usize, report: &StepReport, counts_done: bool) {
        if let Some(n) = self.early_checkpoint_in.as_mut() {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.early_checkpoint_in = None;
                self.checkpoint_next = true;
            }
        }
        let started = self.take_started(step);
        self.pending.push(Write::StepFinished {
            run: self.run.clone(),
            idx: step,
            row: Box::new(StepFinish {
                state: report.state.as_str().to_owned(),
                reason: report.reason.clone(),
                attempts: report.attempts,
                exit_code: report.exit_code,
                signal: report.signal.clone(),
                started_at: report.started_at.map(to_ms),
                finished_at: report.finished_at.map(to_ms),
                pid: started.map(|(pid, _)| pid),
                pid_start: started.and_then(|(_, start)| start),
                counts_done,
                // Counts only when a report was read: `status` shows no "0 passed" then.
                tests: report
                    .tests
                    .as_ref()
                    .filter(|t| !t.files.is_empty())
                    .map(|t| (t.passed, t.failed, t.errors, t.skipped, json!(t.failing))),
            }),
        });
        let data = StepFinishedData {
            state: report.state,
            reason: &report.reason,
            attempts: report.attempts,
            exit_code: report.exit_code,
            signal: &report.signal,
            duration_ms: report.duration_ms,
            log: &report.log_in(&self.log_dir),
            tests: report.tests.as_deref(),
            version: 1,
        };
        let data = serde_json::to_string(&data).unwrap_or_else(|_| "{}".to_owned());
        self.event_data("step_finished", Some(step), data);
    }
}

/// The data of a `step_finished` event, written without building a JSON tree first.
#[derive(Serialize)]
struct StepFinishedData<'a> {
    state: StepState,
    reason: &'a Option<String>,
    attempts: u32,
    exit_code: Option<i32>,
    signal: &'a Option<String>,
    duration_ms: Option<u64>,
    log: &'a std::path::Path,
    tests: Option<&'a TestCounts>,
    version: u32,
}

impl Sink for StoreSink {
    /// The first write error, as soon as the writer met it: the run ends its steps and fails
    /// with it (guarantee 13).
    fn broken(&self) -> Option<String> {
        self.failure()
    }

    fn event(&mut self, event: &RunEvent<'_>) {
        let mut urgent = true;
        match event {
            RunEvent::RunStarted {
                steps,
                log_dir,
                containment,
                cgroup,
                ..
            } => {
                self.log_dir = log_dir.to_path_buf();
                let left = (*steps / EARLY_CHECKPOINT_SHARE).max(EARLY_CHECKPOINT_MIN);
                self.early_checkpoint_in = steps.checked_sub(left).filter(|&n| n > 0);
                let pid = std::process::id();
                self.pending.push(Write::RunStarted {
                    run: self.run.clone(),
                    pid,
                    start: crate::procfs::start_time(pid),
                    heartbeat_ms: i64::try_from(self.beat_every.as_millis()).unwrap_or(i64::MAX),
                    containment,
                    cgroup: cgroup.map(|c| c.display().to_string()),
                });
                self.event(
                    "run_started",
                    None,
                    json!({ "steps": steps, "supervisor_pid": pid }),
                );
            }
            RunEvent::Heartbeat => {
                if self.last_beat.elapsed() >= self.beat_every {
                    self.last_beat = Instant::now();
                    self.pending.push(Write::Heartbeat {
                        run: self.run.clone(),
                    });
                }
            }
            RunEvent::StepStarted {
                step,
                attempt,
                pid,
                start_time,
            } => {
                self.pending.push(Write::StepStarted {
                    run: self.run.clone(),
                    idx: *step,
                    attempt: *attempt,
                    pid: *pid,
                    pid_start: *start_time,
                    at: now_ms(),
                });
                let data = format!(r#"{{"attempt":{attempt},"pid":{pid},"version":1}}"#);
                self.event_data("step_started", Some(*step), data);
            }
            RunEvent::StepJob {
                step,
                attempt,
                job_id,
                state,
            } => {
                self.pending.push(Write::StepJob {
                    run: self.run.clone(),
                    idx: *step,
                    attempt: *attempt,
                    job_id: (*job_id).to_owned(),
                    state: (*state).to_owned(),
                    at: now_ms(),
                });
                self.event(
                    "step_job",
                    Some(*step),
                    json!({ "version": 1, "attempt": attempt, "job_id": job_id, "state": state }),
                );
            }
            RunEvent::StepProgress { step, progress } => {
                self.pending.push(Write::StepProgress {
                    run: self.run.clone(),
                    idx: *step,
                    percent: progress.fraction_percent(),
                    current: progress.current,
                    total: progress.total,
                    message: progress.message.clone(),
                });
                self.event(
                    "step_progress",
                    Some(*step),
                    json!({ "progress": progress }),
                );
                urgent = false;
            }
            RunEvent::StepOutput { step, line } => {
                self.pending.push(Write::StepLine {
                    run: self.run.clone(),
                    idx: *step,
                    line: (*line).to_owned(),
                });
                urgent = false;
            }
            RunEvent::StepRetrying {
                step,
                next_attempt,
                delay,
                reason,
            } => {
                self.event(
                    "step_retrying",
                    Some(*step),
                    json!({ "next_attempt": next_attempt, "delay_ms": delay.as_millis() as u64, "reason": reason }),
                );
            }
            // In the batch of the step's `StepFinished`: written in one transaction with it.
            RunEvent::StepFingerprint {
                key,
                inputs,
                outputs,
                ..
            } => {
                self.pending.push(Write::Fingerprint {
                    key: (*key).to_owned(),
                    inputs: (*inputs).to_owned(),
                    outputs: (*outputs).to_owned(),
                    run: self.run.clone(),
                });
                urgent = false;
            }
            RunEvent::StepFinished { step, report } => self.step_finished(*step, report, true),
            // Steps that never ran do not add to `steps_done`: a failed run shows how far it got.
            RunEvent::StepNotRun { step, report } => self.step_finished(*step, report, false),
            RunEvent::ServiceReady { step } => {
                self.event("service_ready", Some(*step), json!({}));
            }
            RunEvent::StepWarning { step, message } => {
                self.event("step_warning", Some(*step), json!({ "message": message }));
            }
            RunEvent::Stopping { signal, second } => {
                self.event(
                    "run_stopping",
                    None,
                    json!({ "signal": signal, "second": second }),
                );
            }
            RunEvent::RunFinished { report } => {
                self.pending.push(Write::RunFinished {
                    run: self.run.clone(),
                    state: report.state.as_str().to_owned(),
                    reason: report.reason.clone(),
                    exit_code: i64::from(report.exit_code()),
                });
                self.event(
                    "run_finished",
                    None,
                    json!({ "state": report.state, "reason": report.reason, "exit_code": report.exit_code(), "duration_ms": report.duration_ms }),
                );
                self.checkpoint_next = true;
                self.flush();
                return;
            }
        }
        if matches!(event, RunEvent::Heartbeat)
            || self.checkpoint_next
            || (urgent && self.last_flush.elapsed() >= FLUSH_EVERY)
        {
            self.flush();
        }
    }
}

impl StoreSink {
    /// Why the history cannot be written, once a write failed.
    pub fn failure(&self) -> Option<String> {
        self.failed.lock().ok().and_then(|f| f.clone())
    }
}

impl Drop for StoreSink {
    /// Every write sent is on disk before the sink is gone.
    fn drop(&mut self) {
        let _ = self.store();
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use rusqlite::Connection;

    use super::*;

    fn new_run(id: &str, dir: &Path, spec: &serde_json::Value) -> NewRun {
        NewRun {
            id: id.to_owned(),
            workflow: "wf".to_owned(),
            file: None,
            root: dir.to_path_buf(),
            kind: "workflow",
            detached: false,
            log_dir: dir.to_path_buf(),
            spec: spec.clone(),
            meta: spec.clone(),
            steps: vec![(0, "task")],
            names: vec!["a".to_owned()].into(),
            outputs: None,
            heartbeat_ms: 2000,
        }
    }

    #[test]
    fn a_run_recorded_through_the_writer_comes_before_its_later_writes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let spec = serde_json::json!({});
        let mut sink = StoreSink::new(store, "new00001", vec!["a".to_owned()].into());
        sink.record(new_run("new00001", dir.path(), &spec));
        // Through the writer too, in the record's batch or a later one. Applied before the
        // record, its update would find no row and the run would stay `pending`.
        crate::exec::Sink::event(
            &mut sink,
            &crate::exec::RunEvent::RunStarted {
                run_id: "new00001",
                workflow: "wf",
                steps: 1,
                log_dir: dir.path(),
                containment: "process-group",
                cgroup: None,
            },
        );
        let store = sink.store().expect("writer");
        let run = store.run("new00001").expect("query").expect("row");
        assert_eq!((run.state.as_str(), run.steps_total), ("running", 1));
        let steps = store.steps("new00001").expect("steps");
        assert_eq!(steps.len(), 1);
        assert_eq!(
            (steps[0].name.as_str(), steps[0].state.as_str()),
            ("a", "pending")
        );
        assert!(sink.error.is_none(), "{:?}", sink.error);
    }

    #[test]
    fn a_failed_history_write_breaks_the_sink_at_once() {
        use crate::exec::{RunEvent, Sink};
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let spec = serde_json::json!({});
        let mut sink = StoreSink::new(store, "brk00001", vec!["a".to_owned()].into());
        sink.record(new_run("brk00001", dir.path(), &spec));
        assert_eq!(sink.broken(), None);
        // Another connection takes the table away: every later write of the run fails.
        Connection::open(dir.path().join("bgflow.db"))
            .and_then(|c| c.execute_batch("PRAGMA foreign_keys = OFF; DROP TABLE steps;"))
            .expect("drop the steps");
        Sink::event(
            &mut sink,
            &RunEvent::StepStarted {
                step: 0,
                attempt: 1,
                pid: 1,
                start_time: None,
            },
        );
        Sink::event(&mut sink, &RunEvent::Heartbeat);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let why = loop {
            if let Some(why) = sink.broken() {
                break why;
            }
            assert!(std::time::Instant::now() < deadline, "never broken");
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        assert!(why.starts_with("cannot write the run history: "), "{why}");
        assert!(why.contains("steps"), "{why}");
    }

    /// The history is in `bgflow.db` itself, not only in its WAL, once all but the last
    /// steps have ended (`EARLY_CHECKPOINT_*`): the file is read alone, copied without its
    /// WAL, as after the WAL was lost.
    #[test]
    fn the_history_is_checkpointed_while_the_last_steps_run() {
        use crate::exec::{RunEvent, Sink};
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let names: Arc<[String]> = (0..40).map(|i| format!("s{i}")).collect();
        let mut run = new_run("cpt00001", dir.path(), &serde_json::json!({}));
        run.steps = (0..40).map(|i| (i, "task")).collect();
        run.names = Arc::clone(&names);
        let mut sink = StoreSink::new(store, "cpt00001", Arc::clone(&names));
        sink.record(run);
        Sink::event(
            &mut sink,
            &RunEvent::RunStarted {
                run_id: "cpt00001",
                workflow: "wf",
                steps: 40,
                log_dir: dir.path(),
                containment: "process-group",
                cgroup: None,
            },
        );
        let alone = dir.path().join("alone.db");
        let succeeded_in_the_file_alone = || -> i64 {
            let _ = std::fs::remove_file(dir.path().join("alone.db-wal"));
            std::fs::copy(dir.path().join("bgflow.db"), &alone).expect("copy");
            Connection::open(&alone)
                .and_then(|c| {
                    c.query_row(
                        "SELECT count(*) FROM steps WHERE run_id = 'cpt00001' AND state = 'succeeded'",
                        [],
                        |r| r.get(0),
                    )
                })
                .unwrap_or(0)
        };
        let finish = |sink: &mut StoreSink, i: usize| {
            let mut report = StepReport::new(&names[i], false);
            report.state = StepState::Succeeded;
            Sink::event(
                sink,
                &RunEvent::StepFinished {
                    step: i,
                    report: &report,
                },
            );
            Sink::event(sink, &RunEvent::Heartbeat);
        };
        for i in 0..30 {
            finish(&mut sink, i);
        }
        // Not in the file yet, whether the writer has written them to the WAL or not.
        assert_eq!(succeeded_in_the_file_alone(), 0);
        for i in 30..38 {
            finish(&mut sink, i);
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while succeeded_in_the_file_alone() < 38 {
            assert!(
                std::time::Instant::now() < deadline,
                "bgflow.db alone never held the 38 ended steps"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(sink.error.is_none(), "{:?}", sink.error);
    }

    #[test]
    fn a_full_device_is_named_as_such() {
        let full = StoreError::Sql {
            path: "x".into(),
            source: rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
                None,
            ),
        };
        assert!(full.is_full());
        assert_eq!(
            history_failure(&full, Path::new("/")),
            "cannot write the run history: no space left on the device"
        );
    }
}
