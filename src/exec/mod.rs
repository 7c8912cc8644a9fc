//! The executor: runs a checked workflow's steps as supervised processes.
//!
//! It emits `RunEvent`s and never prints; progress bars, plain lines and the summary are
//! consumers (`report`). Scheduling decisions live in `scheduler` (pure), process groups
//! and signals in `process`, log following in `tail`, one step's attempts in `step`.

pub mod contain;
mod direct;
mod executor;
pub mod fingerprint;
pub mod junit;
mod local;
pub mod logpipe;
mod lookahead;
mod matching;
mod output;
pub mod probe;
pub mod process;
mod report;
pub mod scheduler;
mod signals;
pub mod slurm;
mod spawn;
pub mod step;
pub mod tail;
pub mod unneeded;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use nix::sys::signal::Signal;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

pub use crate::layout::log_file;
use crate::plan::Plan;
use crate::validate::Workflow;
pub use report::{RunReport, RunState, StepReport, StepState};
use scheduler::{Scheduler, Slot};
use signals::Signals;
pub use signals::STOP_REQUEST;
pub use tail::Progress;

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub run_id: String,
    /// The state folder (`.bgflow/`); logs go to `runs/<run-id>/` inside it.
    pub state_dir: PathBuf,
    pub jobs: usize,
    /// Steps to run with their upstream (`--only`); empty: all.
    pub only: Vec<usize>,
    pub keep_going: bool,
    /// Ignore up-to-date checks.
    pub force: bool,
    /// How often `RunEvent::Heartbeat` is sent.
    pub heartbeat: Duration,
    /// Fingerprints of earlier successes, by `fingerprint::key`; new ones are sent as
    /// `RunEvent::StepFingerprint` for a sink to store.
    pub fingerprints: std::collections::HashMap<String, crate::records::Recorded>,
    /// `resume`: the run this one continues.
    pub resume: Option<fingerprint::Resume>,
    /// How each step attempt's processes are kept together (guarantee 8).
    pub contain: Arc<contain::Containment>,
}

/// What the executor tells its consumers.
#[derive(Debug)]
pub enum RunEvent<'a> {
    RunStarted {
        run_id: &'a str,
        workflow: &'a str,
        steps: usize,
        log_dir: &'a std::path::Path,
        /// The containment mechanism in use: `cgroup` or `process-group`.
        containment: &'static str,
        /// The run's cgroup folder (every step attempt is a leaf under it), with `cgroup`.
        cgroup: Option<&'a std::path::Path>,
    },
    StepStarted {
        step: usize,
        attempt: u32,
        pid: u32,
        /// The process's start time (clock ticks after boot, /proc/PID/stat field 22):
        /// with the pid, it names the process even after the number is recycled.
        start_time: Option<u64>,
    },
    /// A step attempt's Slurm job was submitted (`state` `SUBMITTED`) or changed state
    /// (`PENDING (Priority)`, `RUNNING`, …): the step is running, on the cluster.
    StepJob {
        step: usize,
        attempt: u32,
        job_id: &'a str,
        state: &'a str,
    },
    StepProgress {
        step: usize,
        progress: &'a Progress,
    },
    /// The latest output line of a running step (throttled).
    StepOutput {
        step: usize,
        line: &'a str,
    },
    StepRetrying {
        step: usize,
        next_attempt: u32,
        delay: Duration,
        reason: &'a str,
    },
    /// A step succeeded with this fingerprint (`fingerprint::key`; its inputs as it started,
    /// its outputs as it ended); sent just before its `StepFinished`, so a later run can skip
    /// it while it stays up to date, even if this run never ends normally.
    StepFingerprint {
        step: usize,
        key: &'a str,
        inputs: &'a str,
        outputs: &'a str,
    },
    StepFinished {
        step: usize,
        report: &'a StepReport,
    },
    /// At the end of the run: a selected step that never ran (skipped after an upstream
    /// failure, cancelled by a stop) or was lost, with its final state.
    StepNotRun {
        step: usize,
        report: &'a StepReport,
    },
    /// bgflow got a signal and is stopping the steps.
    Stopping {
        signal: i32,
        second: bool,
    },
    RunFinished {
        report: &'a RunReport,
    },
    /// Sent every `RunOptions::heartbeat` while the run goes on: the supervisor is alive.
    Heartbeat,
    /// A service passed its ready probe; its dependents may start.
    ServiceReady {
        step: usize,
    },
    /// Something went wrong that does not fail the step (processes outlived it).
    StepWarning {
        step: usize,
        message: &'a str,
    },
}

/// A consumer of run events.
pub trait Sink {
    fn event(&mut self, event: &RunEvent<'_>);
    /// Why this consumer can no longer do its job (the run history cannot be written), if
    /// so: the run then ends its steps and fails with this reason (guarantee 13).
    fn broken(&self) -> Option<String> {
        None
    }
}

/// What running step tasks ask of the run loop.
#[derive(Debug)]
pub(crate) enum Msg {
    Started {
        step: usize,
        attempt: u32,
        pid: u32,
        start_time: Option<u64>,
    },
    /// An attempt's Slurm job was submitted or changed state.
    Job {
        step: usize,
        attempt: u32,
        job: String,
        state: String,
    },
    Progress {
        step: usize,
        progress: Progress,
    },
    /// Something went wrong that does not fail the step.
    Warning {
        step: usize,
        text: String,
    },
    Output {
        step: usize,
        line: String,
    },
    Retrying {
        step: usize,
        next_attempt: u32,
        delay: Duration,
        reason: String,
    },
    /// The attempt's command exited with success and the step's outputs are there: its
    /// job slot is free while its end is judged and recorded (`Finished` follows). `ack`
    /// is dropped once the steps the slot lets start have been started: the step's task
    /// waits for that, so that its bookkeeping comes after their starts.
    Exited {
        step: usize,
        ack: tokio::sync::oneshot::Sender<()>,
    },
    Finished {
        step: usize,
        report: Box<StepReport>,
        /// A success's fingerprint: its inputs as it started (`fingerprint::at_start`)
        /// and its outputs as it ended (`fingerprint::check_outputs`), to record.
        fingerprint: Option<Taken>,
    },
    /// A service passed its ready probe.
    Ready {
        step: usize,
    },
}

/// How the run loop tells running steps to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    No,
    /// Send this signal, then SIGKILL after the step's grace.
    Graceful(Signal),
    /// SIGKILL now.
    Kill,
}

/// What the run loop tells a running service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ServiceEnd {
    /// Go on serving.
    Serve,
    /// Every step that needs it has ended: stop it; it did its work (`succeeded`).
    Done,
    /// The run is stopping and no step that needs it still runs: stop it with this signal
    /// (`cancelled`). A service gets the run's stop only then, so that the steps using it
    /// end before it does, as `docker compose stop` and systemd order a stop.
    Stop(Signal),
}

/// Runs the workflow to the end and reports what happened. Never prints.
pub async fn execute(
    wf: Arc<Workflow>,
    plan: &Plan,
    opts: RunOptions,
    sink: &mut dyn Sink,
) -> RunReport {
    let started = SystemTime::now();
    let clock = tokio::time::Instant::now();
    let log_dir = opts.state_dir.join("runs").join(&opts.run_id);
    // Made once here: steps write their progress files into it from the start, while each
    // log file appears only with the step's first byte of output. A failure shows as the
    // steps' own (no log, no progress file), so it is not reported twice.
    let _ = crate::layout::ensure_private_dir(&log_dir);
    let selected = plan.selection(&opts.only);
    let fail_fast = wf.fail_fast && !opts.keep_going;
    let mut sched = Scheduler::new(
        &plan.upstream,
        &plan.downstream,
        &plan.order,
        &selected,
        fail_fast,
        opts.jobs,
    );
    let is_service = |s: usize| wf.steps[s].kind() == crate::manifest::StepKind::Service;
    sched.prefer_service_dependents(is_service);
    let mut reports: Vec<StepReport> = wf
        .steps
        .iter()
        .map(|s| StepReport::new(&s.name, s.allow_failure))
        .collect();
    sink.event(&RunEvent::RunStarted {
        run_id: &opts.run_id,
        workflow: &wf.name,
        steps: selected.iter().filter(|&&s| s).count(),
        log_dir: &log_dir,
        containment: opts.contain.mechanism().as_str(),
        cgroup: opts.contain.cgroup(),
    });

    let (tx, mut rx) = mpsc::unbounded_channel::<Msg>();
    let (stop_tx, stop_rx) = watch::channel(Stop::No);
    let mut tasks = JoinSet::new();
    // Which step each task follows: a task that panics fails its step.
    let mut task_steps = std::collections::HashMap::new();
    // Per-step "you are no longer needed" switches; only services listen.
    let not_a_service = watch::Sender::new(ServiceEnd::Serve);
    let mut service_stops: std::collections::HashMap<usize, watch::Sender<ServiceEnd>> =
        std::collections::HashMap::new();
    let ctx = Arc::new(step::Ctx {
        wf: Arc::clone(&wf),
        run_id: opts.run_id.clone(),
        log_dir: log_dir.clone(),
        environment: spawn::Environment::capture(&wf.env),
        stdin: std::fs::File::open("/dev/null")
            .ok()
            .map(std::os::fd::OwnedFd::from),
        contain: Arc::clone(&opts.contain),
        slurm: slurm::Cluster::for_run(&wf, &opts.run_id, &log_dir),
    });

    let mut signals = Signals::new();
    let mut heartbeat = tokio::time::interval(opts.heartbeat.max(Duration::from_millis(100)));
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let deadline = wf.timeout.map(|t| clock + t.as_std());
    let mut stop_reason: Option<String> = None;
    // The step whose failure made fail_fast stop the run, when that is the run's reason.
    let mut fail_fast_by: Option<usize> = None;
    let mut got_signal: Option<i32> = None;
    // Steps whose end is decided but not yet recorded or reported.
    let mut finished: Vec<(usize, Box<StepReport>, Option<Taken>)> = Vec::new();

    // When some step could be up to date, the selected steps' outputs are looked up
    // beside the run (`lookahead`): a step found with one missing starts without a lookup
    // of its own. (Which steps have a record is not sorted out here: that would delay the
    // first start by a key per step, 1 ms at 10,000 steps.)
    let absent = if opts.fingerprints.is_empty() || (opts.force && opts.resume.is_none()) {
        lookahead::Absent::none()
    } else {
        let candidates = plan
            .order
            .iter()
            .copied()
            .filter(|&s| selected[s])
            .collect();
        lookahead::Absent::look_ahead(&wf, candidates)
    };

    let mut unneeded = unneeded::Unneeded::find(
        &wf,
        plan,
        &selected,
        &opts.fingerprints,
        opts.force,
        opts.resume.as_ref(),
    );
    let mut exited: Vec<tokio::sync::oneshot::Sender<()>> = Vec::new();
    // Steps started in this run (not kept as up to date), for `fed_by_a_run`.
    let mut ran = vec![false; wf.steps.len()];
    // Steps kept as up to date in this turn of the loop, told after `finished`.
    let mut kept: Vec<usize> = Vec::new();
    loop {
        // Start what can start; up-to-date steps finish at once and may unlock others.
        let mut started_any = false;
        loop {
            let ready = sched.start_ready();
            if ready.is_empty() {
                break;
            }
            for s in ready {
                // A step fed by a step that ran in this run is not kept (guarantee 9): what
                // the feeder changed may not show in the stat of the paths it declared (a
                // folder's contents, a symlink's target, a package installed in a venv).
                // Looked at only for a step with a record (none in a first run).
                let fed_by_a_run = || {
                    (plan.upstream[s].iter()).any(|&u| ran[u] && plan.feeds(u, s) && !is_service(u))
                };
                let recorded = || {
                    (!absent.missing(s))
                        .then(|| {
                            opts.fingerprints
                                .get(&fingerprint::key(&wf.name, &wf.steps[s].name))
                        })
                        .flatten()
                        .filter(|_| !fed_by_a_run())
                };
                // Judged as the run started (`unneeded`): a service nobody will need, and
                // every step then found up to date beside a service.
                let verdict = unneeded.take(s).or_else(|| {
                    fingerprint::needs_no_run(&wf, s, recorded(), opts.force, opts.resume.as_ref())
                });
                if let Some(why) = verdict {
                    sched.mark_up_to_date(s);
                    let r = &mut reports[s];
                    r.state = StepState::Skipped;
                    r.reason = Some(why);
                    kept.push(s);
                } else {
                    ran[s] = true;
                    // Only a service is ever told to stop this way; every other step gets
                    // a receiver of one channel that never changes (at 10,000 steps, one
                    // channel each took 4 ms to drop at the end of the run).
                    let service_rx = if wf.steps[s].kind() == crate::manifest::StepKind::Service {
                        let (service_tx, service_rx) = watch::channel(ServiceEnd::Serve);
                        service_stops.insert(s, service_tx);
                        service_rx
                    } else {
                        not_a_service.subscribe()
                    };
                    let task = tasks.spawn(step::run(
                        Arc::clone(&ctx),
                        s,
                        service_rx,
                        tx.clone(),
                        stop_rx.clone(),
                    ));
                    task_steps.insert(task.id(), s);
                    started_any = true;
                }
            }
        }
        // The tasks of steps whose exit freed a slot go on after the tasks just started
        // (the runtime runs tasks in the order they are woken).
        exited.clear();
        if !finished.is_empty() {
            // Let the new step tasks run first: their processes start now, and the
            // bookkeeping below overlaps them instead of delaying them.
            if started_any {
                tokio::task::yield_now().await;
            }
            for (step, report, fingerprint) in finished.drain(..) {
                let mut report = *report;
                report.started_at = report.started_at.or(reports[step].started_at);
                // The step task does not know the pid; `Started` recorded it here.
                report.pid = report.pid.or(reports[step].pid);
                // Sent only with a success (`step::run`).
                if let Some((inputs, outputs)) = fingerprint {
                    let key = fingerprint::key(&wf.name, &wf.steps[step].name);
                    sink.event(&RunEvent::StepFingerprint {
                        step,
                        key: &key,
                        inputs: &inputs,
                        outputs: &outputs,
                    });
                }
                reports[step] = report;
                sink.event(&RunEvent::StepFinished {
                    step,
                    report: &reports[step],
                });
            }
        }
        // A kept step is told after the step whose end made it ready (above), so that the
        // live lines and the history read in the order things happened.
        for s in kept.drain(..) {
            sink.event(&RunEvent::StepFinished {
                step: s,
                report: &reports[s],
            });
        }
        debug_assert!(sched.invariant_holds());
        // Services nobody needs any more are stopped; at the end, all of them. Once the
        // run is stopping, a service gets the run's stop when no step that needs it still
        // runs (one that had served every dependent got its normal end first, and keeps it).
        let done = sched.is_done();
        let stop_now = *stop_tx.borrow();
        if let Stop::Graceful(sig) = stop_now {
            for (&svc, tx) in &service_stops {
                if sched.no_longer_needed(svc) {
                    tell(tx, ServiceEnd::Stop(sig));
                }
            }
        } else if !sched.is_stopping() {
            for svc in sched.serving() {
                if done || sched.no_longer_needed(svc) {
                    if let Some(tx) = service_stops.get(&svc) {
                        tell(tx, ServiceEnd::Done);
                    }
                }
            }
        }
        // Every task's last message is sent before the task ends, so once no task is left
        // and the channel is empty, nothing more can come.
        if done && tasks.is_empty() && rx.is_empty() {
            break;
        }
        let sleep_deadline = deadline.unwrap_or_else(|| clock + Duration::from_secs(86_400 * 365));
        tokio::select! {
            msg = rx.recv() => {
                let Some(msg) = msg else { break };
                match msg {
                    Msg::Started { step, attempt, pid, start_time } => {
                        let r = &mut reports[step];
                        r.state = StepState::Running;
                        r.attempts = attempt;
                        r.pid = Some(pid);
                        r.started_at.get_or_insert_with(SystemTime::now);
                        sink.event(&RunEvent::StepStarted { step, attempt, pid, start_time });
                    }
                    Msg::Job { step, attempt, job, state } => {
                        let r = &mut reports[step];
                        r.state = StepState::Running;
                        r.attempts = attempt;
                        r.started_at.get_or_insert_with(SystemTime::now);
                        sink.event(&RunEvent::StepJob { step, attempt, job_id: &job, state: &state });
                    }
                    Msg::Progress { step, progress } => {
                        sink.event(&RunEvent::StepProgress { step, progress: &progress });
                        reports[step].progress = Some(Box::new(progress));
                    }
                    Msg::Exited { step, ack } => {
                        sched.release(step);
                        exited.push(ack);
                    }
                    Msg::Ready { step } => {
                        sched.service_ready(step);
                        sink.event(&RunEvent::ServiceReady { step });
                    }
                    Msg::Warning { step, text } => sink.event(&RunEvent::StepWarning { step, message: &text }),
                    Msg::Output { step, line } => sink.event(&RunEvent::StepOutput { step, line: &line }),
                    Msg::Retrying { step, next_attempt, delay, reason } => {
                        sink.event(&RunEvent::StepRetrying { step, next_attempt, delay, reason: &reason });
                    }
                    Msg::Finished { step, mut report, fingerprint } => {
                        // Decide now; record and report after the steps this unlocks have
                        // started (below), so their start does not wait on the bookkeeping.
                        if report.state == StepState::Cancelled {
                            // Only a stop cancels a running step, and each stop has a reason.
                            report.reason = cancelled_because(report.reason.take(), stop_reason.as_deref());
                        }
                        let ok = report.state == StepState::Succeeded || (report.allow_failure && report.state.is_failure());
                        let counts = report.state.is_failure() && !report.allow_failure;
                        let decision = sched.finish(step, ok, counts);
                        if decision.stop_running {
                            // A service whose dependents have all ended (none cancelled by
                            // this stop) has done its work: it stops as it would have.
                            for svc in sched.serving().filter(|&s| sched.served_all(s)) {
                                if let Some(tx) = service_stops.get(&svc) {
                                    tell(tx, ServiceEnd::Done);
                                }
                            }
                            if stop_reason.is_none() {
                                stop_reason = Some(format!("step `{}` failed; fail_fast stopped the rest", wf.steps[step].name));
                                fail_fast_by = Some(step);
                            }
                            let _ = stop_tx.send(Stop::Graceful(Signal::SIGTERM));
                        }
                        finished.push((step, report, fingerprint));
                    }
                }
            }
            Some(sig) = signals.next() => {
                let second = got_signal.is_some();
                sink.event(&RunEvent::Stopping { signal: sig as i32, second });
                if second {
                    let _ = stop_tx.send(Stop::Kill);
                } else {
                    got_signal = Some(sig as i32);
                    stop_reason = Some(signals::stop_reason(sig, &log_dir));
                    sched.stop();
                    let _ = stop_tx.send(Stop::Graceful(sig));
                }
            }
            () = tokio::time::sleep_until(sleep_deadline), if deadline.is_some() && !sched.is_stopping() => {
                let limit = wf.timeout.map(|t| t.to_string()).unwrap_or_default();
                stop_reason = Some(format!("the workflow timeout ({limit}) was reached"));
                sched.stop();
                let _ = stop_tx.send(Stop::Graceful(Signal::SIGTERM));
            }
            _ = heartbeat.tick() => {
                sink.event(&RunEvent::Heartbeat);
                // A run whose history cannot be written would go on unseen: it ends.
                if !sched.is_stopping() {
                    if let Some(why) = sink.broken() {
                        stop_reason = Some(why);
                        sched.stop();
                        let _ = stop_tx.send(Stop::Graceful(Signal::SIGTERM));
                    }
                }
            }
            Some(joined) = tasks.join_next_with_id() => {
                let (id, failed) = match joined {
                    Ok((id, ())) => (id, None),
                    Err(e) => (e.id(), Some(e)),
                };
                let step = task_steps.remove(&id);
                if let Some(e) = failed {
                    // A step task panicked: its step can no longer be followed. It fails
                    // (else the run would wait for its end for ever) and the run stops.
                    let why = format!("internal error in a step supervisor: {e}");
                    stop_reason.get_or_insert_with(|| why.clone());
                    if let Some(s) = step.filter(|&s| matches!(sched.slot(s), Slot::Running | Slot::Exited | Slot::Serving)) {
                        let mut report = Box::new(StepReport::new(&wf.steps[s].name, false));
                        report.state = StepState::Failed;
                        report.reason = Some(why);
                        report.finished_at = Some(SystemTime::now());
                        sched.finish(s, false, true);
                        sched.stop();
                        let _ = stop_tx.send(Stop::Graceful(Signal::SIGTERM));
                        finished.push((s, report, None));
                    }
                }
            }
        }
    }
    // A task waiting for its `Exited` to be acknowledged goes on (it would wait for ever).
    drop(exited);
    while tasks.join_next().await.is_some() {}
    ctx.contain.reap_orphans();

    // Steps that never ran.
    for (s, r) in reports.iter_mut().enumerate() {
        let before = r.state;
        match sched.slot(s) {
            Slot::Skipped { because } => {
                r.state = StepState::Skipped;
                r.reason = Some(format!(
                    "upstream step `{}` failed",
                    wf.steps[*because].name
                ));
            }
            Slot::Cancelled => {
                r.state = StepState::Cancelled;
                r.reason = Some(format!(
                    "not started: {}",
                    stop_reason.as_deref().unwrap_or("the run stopped")
                ));
            }
            Slot::Pending { .. } | Slot::Ready | Slot::Running | Slot::Exited
                if r.state == StepState::Pending || r.state == StepState::Running =>
            {
                r.state = StepState::Lost;
                r.reason = Some("the supervisor lost track of this step".to_owned());
            }
            _ => {}
        }
        if r.state != before {
            sink.event(&RunEvent::StepNotRun { step: s, report: r });
        }
    }
    // A job Slurm took although its `sbatch` gave no id runs on with nothing to follow
    // it: looked for, cancelled and told of before the run ends.
    if let Some(cluster) = &ctx.slurm {
        for (name, text) in cluster.sweep().await {
            if let Some(step) = reports.iter().position(|r| r.name == name) {
                sink.event(&RunEvent::StepWarning {
                    step,
                    message: &text,
                });
                reports[step].warnings.push(text);
            }
        }
    }
    let reports: Vec<StepReport> = reports
        .into_iter()
        .enumerate()
        .filter(|(s, _)| selected[*s])
        .map(|(_, r)| r)
        .collect();
    let any_failure = reports
        .iter()
        .any(|r| r.state.is_failure() && !r.allow_failure);
    let any_cancelled = reports.iter().any(|r| r.state == StepState::Cancelled);
    // fail_fast that found nothing to stop (every other step had ended or depended on the
    // failure) did not end the run early: the reason says only which step failed.
    if let (Some(step), false) = (fail_fast_by, any_cancelled) {
        stop_reason = Some(format!("step `{}` failed", wf.steps[step].name));
    }
    let state = if got_signal.is_some() {
        RunState::Cancelled
    } else if any_failure || any_cancelled {
        RunState::Failed
    } else {
        RunState::Succeeded
    };
    // A run that failed without stopping early (no fail_fast, or `--keep-going`) names its
    // failures, for `list`, `status` and the last line as much as for the summary.
    if state == RunState::Failed && stop_reason.is_none() {
        stop_reason = failed_steps(&reports);
    }
    let report = RunReport {
        version: 1,
        run_id: opts.run_id.clone(),
        workflow: wf.name.clone(),
        file: wf.file.clone(),
        state,
        reason: stop_reason,
        started_at: Some(started),
        finished_at: Some(SystemTime::now()),
        duration_ms: u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX),
        log_dir,
        signal: got_signal,
        steps: reports,
    };
    sink.event(&RunEvent::RunFinished { report: &report });
    report
}

/// Tells a service how to end, once: the first word it gets stands.
fn tell(tx: &watch::Sender<ServiceEnd>, end: ServiceEnd) {
    tx.send_if_modified(|now| {
        let first = *now == ServiceEnd::Serve;
        if first {
            *now = end;
        }
        first
    });
}

/// `step `a` failed`, or `3 steps failed: `a`, `b`, `c``, naming at most three: the
/// steps that failed and count, in plan order.
fn failed_steps(reports: &[StepReport]) -> Option<String> {
    let failed: Vec<&str> = reports
        .iter()
        .filter(|r| r.state.is_failure() && !r.allow_failure)
        .map(|r| r.name.as_str())
        .collect();
    let named = |names: &[&str]| {
        names
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match failed.len() {
        0 => None,
        1 => Some(format!("step {} failed", named(&failed))),
        n @ 2..=3 => Some(format!("{n} steps failed: {}", named(&failed))),
        n => Some(format!(
            "{n} steps failed: {} and {} more",
            named(&failed[..3]),
            n - 3
        )),
    }
}

/// The reason of a step the run's stop cancelled while it ran: what it was doing, and why
/// the run stopped (e.g. which step's failure made fail_fast stop the rest).
fn cancelled_because(reason: Option<String>, stop: Option<&str>) -> Option<String> {
    let Some(stop) = stop else {
        return reason;
    };
    Some(match reason.as_deref() {
        None | Some("cancelled") => format!("stopped: {stop}"),
        Some(r) => format!("{r}: {stop}"),
    })
}

/// A success's fingerprint: its inputs as it started, its outputs as it ended.
type Taken = (String, String);
