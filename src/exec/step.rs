//! One step's life: its attempts, each a supervised process with timeout, stall detection,
//! progress, `fail_on`, output checks; retries with a doubling delay.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use nix::sys::signal::Signal;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::executor::Attempt;
use super::logpipe;
use super::tail::{self, Seen};
use super::{Msg, StepReport, StepState, Stop};
use crate::exec::fingerprint;
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
    /// The run's Slurm jobs, when a step runs on Slurm.
    pub slurm: Option<Arc<super::slurm::Cluster>>,
}

impl End {
    /// This end with the exit status that ending the step's unit found.
    pub(crate) fn with_status(self, s: Option<std::process::ExitStatus>) -> Self {
        match self {
            Self::TimedOut(_) => Self::TimedOut(s),
            Self::Stalled(_) => Self::Stalled(s),
            Self::Cancelled(_) => Self::Cancelled(s),
            Self::ServiceStopped(_) => Self::ServiceStopped(s),
            Self::Unready(why, _) => Self::Unready(why, s),
            Self::Unhealthy(why, _) => Self::Unhealthy(why, s),
            Self::NotTheService(why, _) => Self::NotTheService(why, s),
            other @ (Self::Exited(_) | Self::NotStarted(_) | Self::Slurm(_)) => other,
        }
    }
}

/// How one attempt ended, on any executor.
pub(crate) enum End {
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
    /// A Slurm job whose end Slurm explains (TIMEOUT, OUT_OF_MEMORY, NODE_FAIL, …), with
    /// the exit status if the job script wrote one.
    Slurm(super::slurm::Ended),
}

/// Tests make a step's supervisor panic; release builds have no such switch.
/// `BGFLOW_TEST_PANIC_STEP=NAME`: as the task of step NAME starts (`running` false).
/// `BGFLOW_TEST_PANIC_STEP=NAME@FILE`: while an attempt of it runs (`running` true), at its
/// first tick (100 ms) once FILE, in the step's folder, exists: its processes are there.
#[cfg(debug_assertions)]
pub(crate) fn test_panic(step: &crate::validate::Step, running: bool) {
    let Some(value) = std::env::var_os("BGFLOW_TEST_PANIC_STEP") else {
        return;
    };
    let value = value.to_string_lossy();
    let (name, file) = match value.split_once('@') {
        Some((name, file)) => (name, Some(file)),
        None => (&*value, None),
    };
    if name != step.name.as_str() {
        return;
    }
    match (running, file) {
        (false, None) => panic!("BGFLOW_TEST_PANIC_STEP={value}"),
        (true, Some(file)) if step.cwd.join(file).exists() => {
            panic!("BGFLOW_TEST_PANIC_STEP={value}")
        }
        _ => {}
    }
}

/// Runs every attempt of step `index`; the last message it sends is `Finished`.
pub(crate) async fn run(
    ctx: Arc<Ctx>,
    index: usize,
    mut service_stop: watch::Receiver<super::ServiceEnd>,
    tx: mpsc::UnboundedSender<Msg>,
    mut stop: watch::Receiver<Stop>,
) {
    let step = &ctx.wf.steps[index];
    #[cfg(debug_assertions)]
    test_panic(step, false);
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

    // The fingerprint of the attempt that ran last: its inputs as it started, and its
    // outputs as its success left them (taken here, before a dependent can touch them).
    let mut fingerprint = None;
    let mut outputs = None;
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
        let (end, mut seen, from) = super::executor::run_attempt(Attempt {
            ctx: &ctx,
            index,
            attempt,
            attempts,
            log_path: &log_path,
            progress_path: &progress_path,
            tx: &tx,
            stop: &mut stop,
            service_stop: &mut service_stop,
            warnings: &mut report.warnings,
        })
        .await;
        // A cancelled, timed-out or stalled attempt, or one that never started, reads no
        // report: what matches the pattern then is not a result of this attempt.
        let exited = matches!(end, End::Exited(_));
        outputs = None;
        let hash = fingerprint.is_some();
        let (mut state, mut reason, status) =
            judge(&ctx, index, end, &mut seen, hash, &mut outputs);
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
    let fingerprint = fingerprint
        .filter(|_| report.state == StepState::Succeeded)
        .zip(outputs);
    let _ = tx.send(Msg::Finished {
        step: index,
        report: Box::new(report),
        fingerprint,
    });
}

/// What every executor does before an attempt starts: the command rendered for it, the
/// retry's header line in the log, the progress file emptied, the outputs' folders made.
/// Returns the command and where the attempt's output starts in the log, or how it ended
/// without starting.
pub(crate) fn prepare(a: &Attempt<'_>) -> Result<(Command, u64), End> {
    let (ctx, index, attempt, attempts) = (a.ctx, a.index, a.attempt, a.attempts);
    let (log_path, progress_path) = (a.log_path, a.progress_path);
    let wf = &ctx.wf;
    let step = &wf.steps[index];
    let command = match wf.render_command(index, attempt) {
        Ok(c) => c,
        Err(e) => return Err(End::NotStarted(format!("cannot render the command: {e}"))),
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
    Ok((command, from))
}

/// The step's state from how the attempt ended and what its output showed.
fn judge(
    ctx: &Ctx,
    index: usize,
    end: End,
    seen: &mut Seen,
    hash: bool,
    outputs: &mut Option<String>,
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
        End::Slurm(ended) => {
            let how = match ended.status {
                Some(st) => match (st.code(), st.signal()) {
                    (_, Some(sig)) => format!("killed by signal {}", signal_name(sig)),
                    (Some(c), None) => format!("exit code {c}"),
                    _ => st.to_string(),
                },
                None => format!(
                    "no exit status written within {}s",
                    super::slurm::EXIT_GRACE.as_secs()
                ),
            };
            let why = ended.reason.map(|r| format!(" ({r})")).unwrap_or_default();
            let state = match ended.state.as_str() {
                "TIMEOUT" | "DEADLINE" => StepState::TimedOut,
                _ => StepState::Failed,
            };
            (
                state,
                Some(format!(
                    "slurm job {} ended {}{why}: {how}",
                    ended.job, ended.state
                )),
                ended.status,
            )
        }
        End::Exited(status) if step.kind() == crate::manifest::StepKind::Service => {
            let how = match (status.code(), status.signal()) {
                (Some(c), _) => format!("exit code {c}"),
                (None, Some(sig)) => format!("signal {}", signal_name(sig)),
                _ => status.to_string(),
            };
            // Its command ended while a process it started lived on: a daemon that forked
            // into the background (`redis-server --daemonize yes`, `pg_ctl start`).
            let why = match &seen.left_behind {
                Some(left) => format!(
                    "service exited on its own ({how}), leaving {left} in the background: a service must run in the foreground (drop its daemonize option or `&`)"
                ),
                None => format!("service exited on its own ({how})"),
            };
            (StepState::Failed, Some(why), Some(status))
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
                    Some(format!("exit code {code}{}", runner_says(step, code))),
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
            // Looked at once: at the exit when the step freed its slot then, else here.
            let looked = match seen.outputs_at_exit.take() {
                Some(outputs) => Ok(outputs),
                None => fingerprint::check_outputs(&ctx.wf, step, hash),
            };
            match looked {
                Err(why) => (StepState::Failed, Some(why), Some(status)),
                Ok(hashed) => {
                    *outputs = hashed;
                    (StepState::Succeeded, None, Some(status))
                }
            }
        }
    }
}

fn signal_name(sig: i32) -> String {
    Signal::try_from(sig).map_or_else(|_| format!("signal {sig}"), |s| s.as_str().to_owned())
}

pub(crate) fn open_log(path: &std::path::Path) -> std::io::Result<File> {
    logpipe::make_log_dir(path)?;
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

/// Appends `bgflow: TEXT` to the step's log, where a reader of the log looks for why it
/// ends as it does; best effort (the step's report carries the reason too).
pub(crate) fn note_in_log(path: &std::path::Path, text: &str) {
    if let Ok(log) = open_log(path) {
        let _ = writeln!(&log, "bgflow: {text}");
    }
}

/// Waits until the stop signal satisfies `pred` (forever if the sender is gone).
pub(crate) async fn wait_stop(stop: &mut watch::Receiver<Stop>, pred: impl FnMut(&Stop) -> bool) {
    if stop.wait_for(pred).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// What a test runner means by an exit code that is not a failed test, for the reason:
/// pytest exits 5 when it collected no test (a path or `-k` that matches nothing, a module
/// skipped whole), which reads as a crash without it; 2 when it stopped early (a test file
/// that cannot be imported stops the collection), 3 on an error of its own, 4 when its
/// command line is wrong (a `-k` expression it cannot parse, an unknown option).
fn runner_says(step: &crate::validate::Step, code: i32) -> &'static str {
    let pytest = || {
        let text = step.command.display();
        text.contains("pytest") || text.contains("py.test")
    };
    if step.kind() != crate::manifest::StepKind::Test || !(2..=5).contains(&code) || !pytest() {
        return "";
    }
    match code {
        2 => ": pytest was interrupted (an error while collecting the tests, or a signal)",
        3 => ": pytest hit an internal error",
        4 => ": pytest's command line is wrong (an option, a `-k` or `-m` expression)",
        _ => ": pytest collected no tests",
    }
}
