//! The local executor: an attempt as a supervised process group (or cgroup leaf) on this
//! machine, with its timeout, stall detection, probes, progress and `fail_on`.

use std::os::fd::AsFd;
use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::sync::watch;
use tokio::time::Instant;

use super::executor::Attempt;
use super::logpipe;
use super::matching::LineMatcher;
use super::output::OutputWatch;
use super::probe;
use super::process::{self, Spawn};
use super::step::{note_in_log, wait_stop, End};
use super::tail::Seen;
use super::ServiceEnd;
use super::{Msg, Stop};
use crate::validate::Command;

const TICK: Duration = Duration::from_millis(100);

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

/// Runs one attempt of a step on this machine; `command` and `from` come from
/// `step::prepare`.
pub(crate) async fn attempt(a: Attempt<'_>, command: Command, from: u64) -> (End, Seen, u64) {
    let Attempt {
        ctx,
        index,
        attempt,
        log_path,
        progress_path,
        tx,
        stop,
        service_stop,
        warnings,
        attempts,
        ..
    } = a;
    let wf = &ctx.wf;
    let step = &wf.steps[index];
    let mut seen = Seen::default();
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
    let lines = match LineMatcher::new(step.progress(), step.fail_on(), ready_log.as_ref()) {
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
    let copier = match logpipe::start(log_path.to_path_buf()) {
        Ok(copier) => copier,
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
            output: copier.writer(),
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
            let why = format!("could not start `{what}` in {}: {e}", step.cwd.display());
            note_in_log(log_path, &why);
            return (End::NotStarted(why), seen, from);
        }
    };
    let pid = child.id();
    unit.started(pid);
    let members = unit.members_handle();
    let _ = tx.send(Msg::Started {
        step: index,
        attempt,
        pid,
        start_time: child.start_time(),
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
    let started = Instant::now();
    let timeout_at = step.timeout().map(|t| started + t.as_std());
    let stall = step.more().stall_timeout.map(|d| d.as_std());
    let mut output = OutputWatch::new(index, log_path, progress_path, from, lines, needs_lines);
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
            // A service is stopped by the run loop (`service_stop`) once the steps that
            // need it have ended; only a kill reaches it at once.
            () = wait_stop(stop, |s| *s == Stop::Kill || (!is_service && *s != Stop::No)) => Wake::Stop,
            r = async { match probing.as_mut() { Some(f) => f.await, None => std::future::pending().await } } => Wake::Probe(r),
            () = async { if service_stop.wait_for(|s| *s != ServiceEnd::Serve).await.is_err() { std::future::pending::<()>().await } }, if is_service => Wake::ServiceDone,
        };
        match wake {
            Wake::Exited(Ok(status)) => break (End::Exited(status), None),
            Wake::ServiceDone => match *service_stop.borrow() {
                ServiceEnd::Stop(sig) => break (End::Cancelled(None), Some(sig)),
                _ => break (End::ServiceStopped(None), Some(Signal::SIGTERM)),
            },
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
                #[cfg(debug_assertions)]
                super::step::test_panic(step, true);
                output.poll(&mut seen, tx);
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
                    if output.last_activity.elapsed() >= limit {
                        break (End::Stalled(None), Some(Signal::SIGTERM));
                    }
                }
            }
        }
    };
    // A success frees its job slot before its unit, output and progress are seen to and
    // it is judged: a ready step starts meanwhile (`Scheduler::release`). Only where that
    // end cannot turn into a failure or a retry: a task without `fail_on` on its last
    // attempt, its outputs there (that look is the one the step is judged by). Outputs
    // named by a glob are matched when the step is judged, after the next step started:
    // a glob can walk a large folder.
    if let (End::Exited(status), None) = (&end, ending) {
        if status.success()
            && step.kind() == crate::manifest::StepKind::Task
            && step.fail_on().is_empty()
            && attempt == attempts
            && !step
                .outputs
                .iter()
                .any(|o| crate::plan::artifacts::is_glob(o))
        {
            let hash = super::fingerprint::can_be_up_to_date(step);
            if let Ok(outputs) = super::fingerprint::check_outputs(wf, step, hash) {
                seen.outputs_at_exit = Some(outputs);
                let (ack, acked) = tokio::sync::oneshot::channel();
                let _ = tx.send(Msg::Exited { step: index, ack });
                // The run loop and the steps it starts go first; this one's bookkeeping
                // after. (A `yield_now` did not: the runtime queues a task that yields
                // when it next polls for events, which came before the run loop's turn, so
                // this task ran ahead of the steps that loop then started.)
                let _ = acked.await;
            }
        }
    }
    let end = match ending {
        Some(first) => {
            end.with_status(terminate_escalating(&mut child, &unit, first, grace, stop).await)
        }
        None => end,
    };
    // Nothing the step started outlives it, whatever it did to its session or group.
    let left = unit.end(grace).await;
    if let Some(first) = left.first() {
        let (pid, command) = first.named();
        seen.left_behind = Some(format!("`{command}` (pid {pid})"));
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
    // Progress written just before the exit (after the last tick) is reported too.
    output.finish(&mut seen, tx);
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
