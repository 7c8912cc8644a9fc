//! One step's life: its attempts, each a supervised process with timeout, stall detection,
//! progress, `fail_on`, output checks; retries with a doubling delay.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use nix::sys::signal::Signal;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::logpipe;
use super::matching::LineMatcher;
use super::probe;
use super::process::{self, Spawn};
use super::tail::{self, Follower, Progress, Seen};
use super::{Msg, StepReport, StepState, Stop};
use crate::exec::fingerprint::{self, missing_output};
use crate::plan::artifacts::{is_glob, normalize};
use crate::validate::{Command, Workflow};

/// Shared by every step task of a run.
pub(crate) struct Ctx {
    pub wf: Arc<Workflow>,
    pub run_id: String,
    pub log_dir: PathBuf,
    /// Bgflow's environment with the workflow's `[env]`, built once for every start.
    pub environment: super::spawn::Environment,
    /// /dev/null, every step's standard input.
    pub stdin: Option<std::os::fd::OwnedFd>,
    /// How each attempt's processes are kept together and ended.
    pub contain: Arc<super::contain::Containment>,
}

const TICK: Duration = Duration::from_millis(100);
const OUTPUT_EVERY: Duration = Duration::from_millis(500);

impl End {
    /// This end with the exit status that ending the step's unit found.
    fn with_status(self, s: Option<std::process::ExitStatus>) -> Self {
        match self {
            Self::TimedOut(_) => Self::TimedOut(s),
            Self::Stalled(_) => Self::Stalled(s),
            Self::Cancelled(_) => Self::Cancelled(s),
            Self::ServiceStopped(_) => Self::ServiceStopped(s),
            Self::Unready(why, _) => Self::Unready(why, s),
            Self::Unhealthy(why, _) => Self::Unhealthy(why, s),
            Self::NotTheService(why, _) => Self::NotTheService(why, s),
            other @ (Self::Exited(_) | Self::NotStarted(_)) => other,
        }
    }
}

/// What woke the supervision loop.
enum Wake {
    Exited(std::io::Result<std::process::ExitStatus>),
    Tick,
    Timeout,
    Stop,
    Probe(Result<(), probe::Failure>),
    ServiceDone,
}

/// One probe try in flight.
type ProbeFuture =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), probe::Failure>> + Send>>;

/// Where a service stands with its probes.
enum Phase {
    /// Not a service.
    Task,
    /// Trying the ready probe until `deadline`.
    Starting {
        deadline: Instant,
        next: Instant,
        last_error: String,
    },
    /// Ready; health probes every `interval` (if any), `fails` failures in a row so far.
    Serving { next: Instant, fails: u32 },
}

/// How one attempt ended.
enum End {
    Exited(std::process::ExitStatus),
    TimedOut(Option<std::process::ExitStatus>),
    Stalled(Option<std::process::ExitStatus>),
    Cancelled(Option<std::process::ExitStatus>),
    NotStarted(String),
    /// A service stopped by bgflow because nothing needs it any more.
    ServiceStopped(Option<std::process::ExitStatus>),
    /// A service whose ready probe never passed: the probe's last error.
    Unready(String, Option<std::process::ExitStatus>),
    /// A service whose health probe failed too often: the probe's last error.
    Unhealthy(String, Option<std::process::ExitStatus>),
    /// A service whose ready probe another process answered (guarantee 10).
    NotTheService(String, Option<std::process::ExitStatus>),
}

/// Runs every attempt of step `index`; the last message it sends is `Finished`.
pub(crate) async fn run(
    ctx: Arc<Ctx>,
    index: usize,
    mut service_stop: watch::Receiver<bool>,
    tx: mpsc::UnboundedSender<Msg>,
    mut stop: watch::Receiver<Stop>,
) {
    let step = &ctx.wf.steps[index];
    let log_path = super::log_file(&ctx.log_dir, &step.name);
    let progress_path = ctx.log_dir.join(format!(
        "{}.progress",
        crate::file_name::step_file_name(&step.name)
    ));
    let mut report = StepReport::new(&step.name, step.allow_failure);
    report.started_at = Some(SystemTime::now());
    let clock = Instant::now();
    let attempts = step.retries() + 1;
    let mut delay = step.retry_delay().as_std();

    // The fingerprint of the attempt that ran last.
    let mut fingerprint = None;
    for attempt in 1..=attempts {
        report.attempts = attempt;
        // The reports there before the attempt: those it leaves unchanged are not its own.
        let junit = match (step.kind(), &step.more().junit) {
            (crate::manifest::StepKind::Test, Some(pattern)) => {
                Some((pattern, super::junit::Before::take(&ctx.wf.root, pattern)))
            }
            _ => None,
        };
        // The inputs as the attempt finds them: taken before it starts, so that nothing the
        // step or anyone else changes once it runs can make them look up to date.
        fingerprint = fingerprint::at_start(&ctx.wf, step);
        let (end, seen, from) = attempt_once(
            &ctx,
            index,
            attempt,
            attempts,
            &log_path,
            &progress_path,
            &tx,
            &mut stop,
            &mut service_stop,
            &mut report.warnings,
        )
        .await;
        // A cancelled, timed-out or stalled attempt, or one that never started, reads no
        // report: what matches the pattern then is not a result of this attempt.
        let exited = matches!(end, End::Exited(_));
        let (mut state, mut reason, status) = judge(&ctx, index, end, &seen);
        report.tests = None;
        if let (Some((pattern, before)), true) = (&junit, exited) {
            let mut read = super::junit::read(&ctx.wf.root, pattern, before, &step.cwd);
            super::junit::judge(&mut read, &mut state, &mut reason);
            report.tests = Some(Box::new(read.counts));
        }
        report.state = state;
        report.reason = reason;
        report.progress = seen.progress.clone().map(Box::new);
        report.exit_code = status.and_then(|s| s.code());
        report.signal = status.and_then(|s| s.signal()).map(signal_name);
        if state == StepState::Succeeded {
            report.last_lines.clear();
            break;
        }
        report.last_lines = tail::last_lines(&log_path, from, tail::TAIL_LINES);
        let stopping = *stop.borrow() != Stop::No;
        if state == StepState::Cancelled || stopping || attempt == attempts {
            break;
        }
        let _ = tx.send(Msg::Retrying {
            step: index,
            next_attempt: attempt + 1,
            delay,
            reason: report.reason.clone().unwrap_or_default(),
        });
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = wait_stop(&mut stop, |s| *s != Stop::No) => {
                report.state = StepState::Cancelled;
                report.reason = Some(format!("cancelled while waiting to retry (after: {})", report.reason.clone().unwrap_or_default()));
                break;
            }
        }
        delay = delay.saturating_mul(2);
    }
    report.finished_at = Some(SystemTime::now());
    report.duration_ms = Some(u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX));
    let fingerprint = fingerprint.filter(|_| report.state == StepState::Succeeded);
    let _ = tx.send(Msg::Finished {
        step: index,
        report: Box::new(report),
        fingerprint,
    });
}

#[allow(clippy::too_many_arguments)]
async fn attempt_once(
    ctx: &Ctx,
    index: usize,
    attempt: u32,
    attempts: u32,
    log_path: &std::path::Path,
    progress_path: &std::path::Path,
    tx: &mpsc::UnboundedSender<Msg>,
    stop: &mut watch::Receiver<Stop>,
    service_stop: &mut watch::Receiver<bool>,
    warnings: &mut Vec<String>,
) -> (End, Seen, u64) {
    let wf = &ctx.wf;
    let step = &wf.steps[index];
    let mut seen = Seen::default();
    let command = match wf.render_command(index, attempt) {
        Ok(c) => c,
        Err(e) => {
            return (
                End::NotStarted(format!("cannot render the command: {e}")),
                seen,
                0,
            )
        }
    };
    if attempts > 1 {
        if let Ok(log) = open_log(log_path) {
            let _ = writeln!(
                &log,
                "--- bgflow: {} attempt {attempt} of {attempts}: {} ---",
                step.name,
                command.display()
            );
        }
    }
    // A run's folder is new, so only a retry can find a log or progress file already there.
    let from = match attempt {
        1 => 0,
        _ => fs::metadata(log_path).map_or(0, |m| m.len()),
    };
    // The step creates its progress file when it has something to say; a retry starts clean.
    if attempt > 1 && progress_path.exists() {
        let _ = OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(progress_path);
    }
    for out in &step.outputs {
        let norm = normalize(out);
        if is_glob(&norm) {
            continue;
        }
        let target = wf.root.join(norm.trim_end_matches('/'));
        let parent = if norm.ends_with('/') {
            Some(target.as_path())
        } else {
            target.parent()
        };
        // One mkdir in the common case (the folder is there); the whole chain only when
        // a parent is missing too.
        if let Some(p) = parent {
            if fs::create_dir(p).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound) {
                let _ = fs::create_dir_all(p);
            }
        }
    }
    // A port another process holds would answer the service's probes (guarantee 10).
    if let Some(taken) = probe::port_taken(step) {
        return (End::NotStarted(taken), seen, from);
    }
    let grace = step.kill_grace().as_std();
    let is_service = step.kind() == crate::manifest::StepKind::Service;
    let ready_probe = step.more().ready.as_ref().filter(|_| is_service);
    let health_probe = step.more().health.as_ref().filter(|_| is_service);
    let ready_log = ready_probe
        .and_then(|p| p.log.as_deref())
        .and_then(|re| regex::Regex::new(re).ok());
    let needs_lines =
        step.progress().is_some() || !step.fail_on().is_empty() || ready_log.is_some();
    let mut lines = match LineMatcher::new(step.progress(), step.fail_on(), ready_log.as_ref()) {
        Ok(m) => m,
        // `plan` compiled every pattern with the same engine: not expected.
        Err(e) => return (End::NotStarted(format!("cannot compile {e}")), seen, from),
    };
    let mut unit = match ctx.contain.unit(index, attempt) {
        Ok(u) => u,
        Err(e) => {
            return (
                End::NotStarted(format!("cannot make the step's containment unit: {e}")),
                seen,
                from,
            )
        }
    };
    let attempt_text = attempt.to_string();
    let progress_text = progress_path.display().to_string();
    let env: Vec<(&str, &str)> = step
        .env()
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .chain([
            ("BGFLOW_RUN_ID", ctx.run_id.as_str()),
            ("BGFLOW_STEP", step.name.as_str()),
            ("BGFLOW_ATTEMPT", attempt_text.as_str()),
            ("BGFLOW_PROGRESS", progress_text.as_str()),
            (super::contain::TOKEN_VAR, unit.token.as_str()),
        ])
        .collect();
    let (output, copier) = match logpipe::start(log_path.to_path_buf()) {
        Ok(pair) => pair,
        Err(e) => {
            return (
                End::NotStarted(format!("cannot make the output pipe: {e}")),
                seen,
                from,
            )
        }
    };
    let spawned = match &ctx.stdin {
        Some(stdin) => process::spawn(Spawn {
            command: &command,
            cwd: &step.cwd,
            env: &env,
            environment: &ctx.environment,
            stdin: stdin.as_fd(),
            output,
            cgroup: unit.cgroup(),
        }),
        None => Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "cannot open /dev/null for its standard input",
        )),
    };
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            let _ = copier.finish().await;
            let what = match &command {
                Command::Shell(_) => "sh".to_owned(),
                Command::Argv(a) => a.first().cloned().unwrap_or_default(),
            };
            if let Ok(log) = open_log(log_path) {
                let _ = writeln!(
                    &log,
                    "bgflow: could not start `{what}` in {}: {e}",
                    step.cwd.display()
                );
            }
            return (
                End::NotStarted(format!(
                    "could not start `{what}` in {}: {e}",
                    step.cwd.display()
                )),
                seen,
                from,
            );
        }
    };
    let pid = child.id();
    unit.started(pid);
    let members = unit.members_handle();
    let _ = tx.send(Msg::Started {
        step: index,
        attempt,
        pid,
        start_time: process::start_time(pid),
    });

    let mut phase = match (is_service, ready_probe) {
        (false, _) => Phase::Task,
        (true, None) => {
            let _ = tx.send(Msg::Ready { step: index });
            Phase::Serving {
                next: Instant::now(),
                fails: 0,
            }
        }
        (true, Some(p)) => Phase::Starting {
            deadline: Instant::now() + p.timeout.map_or(Duration::from_secs(30), |d| d.as_std()),
            next: Instant::now(),
            last_error: "the probe has not run yet".to_owned(),
        },
    };
    let mut probing: Option<ProbeFuture> = None;
    let mut follower = Follower::new(log_path, from);
    let mut progress_file = Follower::new(progress_path, 0);
    let started = Instant::now();
    let timeout_at = step.timeout().map(|t| started + t.as_std());
    let stall = step.more().stall_timeout.map(|d| d.as_std());
    let mut last_activity = Instant::now();
    let mut last_size = from;
    let mut last_output_sent = Instant::now() - OUTPUT_EVERY;
    // The first tick comes after one period: a step that ends sooner is never polled for
    // output or progress while it runs (the end reads both once anyway).
    let mut ticker = tokio::time::interval_at(started + TICK, TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let far = started + Duration::from_secs(86_400 * 365);

    // The loop ends with how the attempt ended, and the signal that starts ending its
    // unit when bgflow ends it (`terminate_escalating`, after the loop).
    let (end, ending) = loop {
        let wake = tokio::select! {
            status = child.wait() => Wake::Exited(status),
            _ = ticker.tick() => Wake::Tick,
            () = tokio::time::sleep_until(timeout_at.unwrap_or(far)), if timeout_at.is_some() => Wake::Timeout,
            () = wait_stop(stop, |s| *s != Stop::No) => Wake::Stop,
            r = async { match probing.as_mut() { Some(f) => f.await, None => std::future::pending().await } } => Wake::Probe(r),
            () = async { if service_stop.wait_for(|s| *s).await.is_err() { std::future::pending::<()>().await } }, if is_service => Wake::ServiceDone,
        };
        match wake {
            Wake::Exited(Ok(status)) => break (End::Exited(status), None),
            Wake::ServiceDone => break (End::ServiceStopped(None), Some(Signal::SIGTERM)),
            Wake::Probe(result) => {
                probing = None;
                match (&mut phase, result) {
                    (Phase::Starting { .. }, Ok(())) => {
                        let _ = tx.send(Msg::Ready { step: index });
                        phase = Phase::Serving {
                            next: Instant::now(),
                            fails: 0,
                        };
                    }
                    (Phase::Starting { .. }, Err(e)) if e.foreign => {
                        break (End::NotTheService(e.text, None), Some(Signal::SIGTERM));
                    }
                    (
                        Phase::Starting {
                            deadline,
                            last_error,
                            ..
                        },
                        Err(e),
                    ) => {
                        *last_error = e.text;
                        if Instant::now() >= *deadline {
                            let why = std::mem::take(last_error);
                            break (End::Unready(why, None), Some(Signal::SIGTERM));
                        }
                    }
                    (Phase::Serving { fails, .. }, Ok(())) => *fails = 0,
                    (Phase::Serving { fails, .. }, Err(e)) => {
                        *fails += 1;
                        let limit = health_probe.and_then(|h| h.failures).unwrap_or(3);
                        if *fails >= limit {
                            let why = format!("{fails} health checks failed in a row: {}", e.text);
                            break (End::Unhealthy(why, None), Some(Signal::SIGTERM));
                        }
                    }
                    (Phase::Task, _) => {}
                }
            }
            Wake::Exited(Err(e)) => {
                break (End::NotStarted(format!("lost the process: {e}")), None)
            }
            Wake::Timeout => break (End::TimedOut(None), Some(Signal::SIGTERM)),
            Wake::Stop => {
                let first = match *stop.borrow() {
                    Stop::Graceful(sig) => sig,
                    _ => Signal::SIGKILL,
                };
                break (End::Cancelled(None), Some(first));
            }
            Wake::Tick => {
                let grew = if needs_lines {
                    follower.poll(&mut lines.with(&mut seen)) > 0
                } else {
                    let size = fs::metadata(log_path).map_or(last_size, |m| m.len());
                    let grew = size != last_size;
                    last_size = size;
                    grew
                };
                progress_file.poll_text(|line| {
                    if let Some(p) = Progress::from_progress_line(line) {
                        seen.set_progress(p);
                    }
                });
                if grew || seen.progress_changed {
                    last_activity = Instant::now();
                }
                if seen.progress_changed {
                    seen.progress_changed = false;
                    if let Some(p) = &seen.progress {
                        let _ = tx.send(Msg::Progress {
                            step: index,
                            progress: p.clone(),
                        });
                    }
                }
                if grew && last_output_sent.elapsed() >= OUTPUT_EVERY {
                    last_output_sent = Instant::now();
                    if let Some(line) = tail::last_line(log_path, from) {
                        let _ = tx.send(Msg::Output { step: index, line });
                    }
                }
                match &mut phase {
                    Phase::Starting {
                        deadline,
                        next,
                        last_error,
                    } => {
                        if seen.log_ready {
                            let _ = tx.send(Msg::Ready { step: index });
                            phase = Phase::Serving {
                                next: Instant::now(),
                                fails: 0,
                            };
                        } else if probing.is_none() && Instant::now() >= *deadline {
                            let why = if ready_log.is_some() {
                                "no output line matched the `log` ready probe".to_owned()
                            } else {
                                std::mem::take(last_error)
                            };
                            break (End::Unready(why, None), Some(Signal::SIGTERM));
                        } else if probing.is_none()
                            && Instant::now() >= *next
                            && ready_log.is_none()
                        {
                            let p = ready_probe.cloned().unwrap_or_default();
                            let interval = p
                                .interval
                                .map_or(Duration::from_millis(200), |d| d.as_std());
                            *next = Instant::now() + interval;
                            let (cwd, m) = (step.cwd.clone(), members.clone());
                            let limit = probe::TRY_LIMIT.min(
                                deadline
                                    .saturating_duration_since(Instant::now())
                                    .max(Duration::from_millis(100)),
                            );
                            probing = Some(Box::pin(async move {
                                probe::try_once(&p, &cwd, limit, Some(&m)).await
                            }));
                        }
                    }
                    Phase::Serving { next, .. } => {
                        if let Some(h) = health_probe {
                            if probing.is_none() && Instant::now() >= *next && h.log.is_none() {
                                let interval =
                                    h.interval.map_or(Duration::from_secs(10), |d| d.as_std());
                                *next = Instant::now() + interval;
                                let (p, cwd, m) = (h.clone(), step.cwd.clone(), members.clone());
                                probing = Some(Box::pin(async move {
                                    let limit = probe::TRY_LIMIT.min(interval);
                                    probe::try_once(&p, &cwd, limit, Some(&m)).await
                                }));
                            }
                        }
                    }
                    Phase::Task => {}
                }
                if let Some(limit) = stall {
                    if last_activity.elapsed() >= limit {
                        break (End::Stalled(None), Some(Signal::SIGTERM));
                    }
                }
            }
        }
    };
    let end = match ending {
        Some(first) => {
            end.with_status(terminate_escalating(&mut child, &unit, first, grace, stop).await)
        }
        None => end,
    };
    // Nothing the step started outlives it, whatever it did to its session or group.
    let left = unit.end(grace).await;
    if !left.is_empty() {
        let text = super::contain::describe(&step.name, &left);
        let _ = tx.send(Msg::Warning {
            step: index,
            text: text.clone(),
        });
        warnings.push(text);
    }
    drop(unit);
    // Everything the step printed is in the log before it is read for the last time.
    let _ = copier.finish().await;
    if needs_lines {
        follower.poll(&mut lines.with(&mut seen));
        follower.finish(&mut lines.with(&mut seen));
    }
    progress_file.poll_text(|line| {
        if let Some(p) = Progress::from_progress_line(line) {
            seen.set_progress(p);
        }
    });
    // Progress written just before the exit (after the last tick) is reported too.
    if std::mem::take(&mut seen.progress_changed) {
        if let Some(p) = &seen.progress {
            let _ = tx.send(Msg::Progress {
                step: index,
                progress: p.clone(),
            });
        }
    }
    (end, seen, from)
}

/// Ends the attempt's unit: `first` to every process of it, SIGKILL to all after `grace`
/// if the leader has not exited; a `Stop::Kill` meanwhile kills at once. What is left once
/// the leader has exited is ended by `Unit::end`.
async fn terminate_escalating(
    child: &mut process::Child,
    unit: &super::contain::Unit<'_>,
    first: Signal,
    grace: Duration,
    stop: &mut watch::Receiver<Stop>,
) -> Option<std::process::ExitStatus> {
    if *stop.borrow() == Stop::Kill {
        unit.signal(Signal::SIGKILL);
        return child.wait().await.ok();
    }
    unit.signal(first);
    let status = tokio::select! {
        s = tokio::time::timeout(grace, child.wait()) => match s {
            Ok(s) => s.ok(),
            Err(_) => {
                unit.signal(Signal::SIGKILL);
                child.wait().await.ok()
            }
        },
        () = wait_stop(stop, |s| *s == Stop::Kill) => {
            unit.signal(Signal::SIGKILL);
            child.wait().await.ok()
        }
    };
    status
}

/// The step's state from how the attempt ended and what its output showed.
fn judge(
    ctx: &Ctx,
    index: usize,
    end: End,
    seen: &Seen,
) -> (StepState, Option<String>, Option<std::process::ExitStatus>) {
    let step = &ctx.wf.steps[index];
    match end {
        End::NotStarted(why) => (StepState::Failed, Some(why), None),
        End::TimedOut(s) => (
            StepState::TimedOut,
            Some(format!(
                "timed out after {}",
                step.timeout().map(|t| t.to_string()).unwrap_or_default()
            )),
            s,
        ),
        End::Stalled(s) => (
            StepState::Stalled,
            Some(format!(
                "stalled: no output and no progress for {}",
                step.more()
                    .stall_timeout
                    .map(|t| t.to_string())
                    .unwrap_or_default()
            )),
            s,
        ),
        End::Cancelled(s) => (StepState::Cancelled, Some("cancelled".to_owned()), s),
        End::ServiceStopped(s) => (
            StepState::Succeeded,
            Some("service stopped: no remaining step needs it".to_owned()),
            s,
        ),
        End::Unready(why, s) => (
            StepState::Failed,
            Some(format!(
                "service never became ready within {}: {why}",
                step.more()
                    .ready
                    .as_ref()
                    .and_then(|r| r.timeout)
                    .unwrap_or(crate::manifest::Duration::from_secs(30))
            )),
            s,
        ),
        End::Unhealthy(why, s) => (
            StepState::Failed,
            Some(format!("service unhealthy: {why}")),
            s,
        ),
        End::NotTheService(why, s) => (
            StepState::Failed,
            Some(format!("service not ready: {why}")),
            s,
        ),
        End::Exited(status) if step.kind() == crate::manifest::StepKind::Service => {
            let how = match (status.code(), status.signal()) {
                (Some(c), _) => format!("exit code {c}"),
                (None, Some(sig)) => format!("signal {}", signal_name(sig)),
                _ => status.to_string(),
            };
            (
                StepState::Failed,
                Some(format!("service exited on its own ({how})")),
                Some(status),
            )
        }
        End::Exited(status) => {
            if let Some(sig) = status.signal() {
                return (
                    StepState::Failed,
                    Some(format!("killed by signal {}", signal_name(sig))),
                    Some(status),
                );
            }
            let code = status.code().unwrap_or(-1);
            if code != 0 {
                return (
                    StepState::Failed,
                    Some(format!("exit code {code}")),
                    Some(status),
                );
            }
            if let Some((pattern, line)) = &seen.fail_match {
                return (
                    StepState::Failed,
                    Some(format!(
                        "output matched fail_on pattern `{pattern}`: {line}"
                    )),
                    Some(status),
                );
            }
            for out in &step.outputs {
                if let Some(why) = missing_output(&ctx.wf.root, out) {
                    return (StepState::Failed, Some(why), Some(status));
                }
            }
            (StepState::Succeeded, None, Some(status))
        }
    }
}

fn signal_name(sig: i32) -> String {
    Signal::try_from(sig).map_or_else(|_| format!("signal {sig}"), |s| s.as_str().to_owned())
}

fn open_log(path: &std::path::Path) -> std::io::Result<File> {
    logpipe::make_log_dir(path)?;
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

/// Waits until the stop signal satisfies `pred` (forever if the sender is gone).
async fn wait_stop(stop: &mut watch::Receiver<Stop>, pred: impl FnMut(&Stop) -> bool) {
    if stop.wait_for(pred).await.is_err() {
        std::future::pending::<()>().await;
    }
}
