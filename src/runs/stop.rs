//! Stopping a run: ask the run's supervisor to end it, wait up to a deadline, and end
//! whatever of the run is left (everything of a lost run) through its containment
//! (`exec::contain`): never a process that is not the run's. Confirmation is the caller's.

use std::io::IsTerminal;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::exec::process;
use crate::exit;
use crate::report::live::human_ms;
use crate::store::{RunRow, Store};

use super::{Error, Observer};

/// The `stop` command for run `id`, as it runs where it is printed: with `--state-dir`
/// when a state folder is named that is not `./.bgflow` here (`report::state_dir_arg`),
/// and with `--yes` when stdin is not a terminal, where `stop` cannot ask and refuses
/// without it (exit 2). Every help line that names `stop`
/// uses it, so an agent that runs a hint as printed stops the run.
pub fn command(state_dir: Option<&Path>, id: &str) -> String {
    let mut cmd = String::from("bgflow");
    cmd.push_str(&crate::report::state_dir_arg(state_dir));
    cmd.push_str(" stop ");
    cmd.push_str(id);
    if !std::io::stdin().is_terminal() {
        cmd.push_str(" --yes");
    }
    cmd
}

/// How to stop a run.
#[derive(Debug, Clone, Copy, Default)]
pub struct StopOptions {
    /// SIGKILL at once instead of SIGTERM and the grace.
    pub force: bool,
    /// How long to wait for the run to end (default 60 s, with `force` 5 s).
    pub timeout: Option<Duration>,
    /// Who asks, as the run's reason will name it ("asked to stop by `bgflow stop` (pid
    /// 4242)"): `"`bgflow stop`"`, `"the MCP tool `stop_run`"`, …; this process's pid is
    /// added. Empty: the run says which signal it received.
    pub by: &'static str,
}

/// What `stop` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stopped {
    /// The run had ended and nothing of it was left.
    NotRunning { id: String, state: String },
    /// The caller's confirmation said no.
    Declined,
    /// The run was stopped: its state now.
    Stopped { id: String, state: String },
}

/// What the caller is asked to confirm before a run is stopped.
#[derive(Debug, Clone)]
pub struct ToStop<'a> {
    pub id: &'a str,
    pub workflow: &'a str,
    /// Processes of the run found now (at least 1 is shown).
    pub processes: usize,
}

/// Stops a run: asks its supervisor to end it, waits up to the deadline, and ends whatever
/// of the run is left (everything of a lost run) through its containment. `confirm` is
/// asked once, before anything is signalled (`Ok(false)`: not stopped; an error is
/// returned as it is). Exit 1 when the run is still active at the deadline, 4 when a
/// process survived SIGKILL.
pub fn stop(
    store: &mut Store,
    prefix: &str,
    opts: StopOptions,
    confirm: &mut dyn FnMut(&ToStop<'_>) -> Result<bool, Error>,
    obs: &mut dyn Observer,
) -> Result<Stopped, Error> {
    use crate::exec::contain;
    let id = super::resolve(store, prefix)?;
    let (run, steps) = store
        .run_with_steps(&id)
        .map_err(|e| super::internal(&e))?
        .ok_or_else(|| Error::internal("error: cannot write output: run vanished\n"))?;
    let cgroup: Option<&Path> = run.cgroup.as_deref().map(Path::new);
    // Every process of the run: in its cgroup, or carrying one of its step tokens.
    let processes = contain::RunProcesses::of(&id, cgroup);
    let left = processes.list();
    // A number recorded for a step that now names another process is never signalled.
    for s in &steps {
        let Some(pid) = s.pid.and_then(|p| u32::try_from(p).ok()) else {
            continue;
        };
        // The same process: its recorded start time, or (recorded by an older bgflow)
        // the run's token or cgroup.
        let same = match s.pid_start {
            Some(start) => {
                process::start_time(pid).and_then(|t| i64::try_from(t).ok()) == Some(start)
            }
            None => processes.owns(pid),
        };
        if matches!(s.state.as_str(), "running" | "lost")
            && process::proc_stat(pid).is_some_and(|(st, _)| st != 'Z' && st != 'X')
            && !same
        {
            obs.note(&format!(
                "note: pid {pid}, recorded for step `{}`, is now another process ({}); left alone\n",
                s.name,
                crate::procfs::command_line(pid)
            ));
        }
    }
    // A run with Slurm steps: its jobs still queued or running (a lost supervisor's too).
    let on_slurm = steps.iter().any(|s| s.job_id.is_some());
    let jobs = if on_slurm {
        crate::exec::slurm::jobs_left(&id).map_err(|e| {
            Error::internal(format!(
                "error: run {id}: cannot list its Slurm jobs: {e}\n"
            ))
        })?
    } else {
        Vec::new()
    };
    if !run.is_active() && left.is_empty() && jobs.is_empty() {
        return Ok(Stopped::NotRunning {
            id,
            state: run.state,
        });
    }
    if !confirm(&ToStop {
        id: &id,
        workflow: &run.workflow,
        processes: (left.len() + jobs.len()).max(1),
    })? {
        return Ok(Stopped::Declined);
    }
    let _ = store.event(
        &id,
        "stop_requested",
        serde_json::json!({"version": 1, "force": opts.force, "by": opts.by}),
    );
    let wait = opts
        .timeout
        .unwrap_or_else(|| Duration::from_secs(if opts.force { 5 } else { 60 }));
    if run.is_active() {
        let deadline = Instant::now() + wait;
        // A detached run may not have its supervisor yet: it is signalled once it has.
        let mut signalled = false;
        loop {
            let Ok(Some(now)) = store.run(&id) else { break };
            if !now.is_active() {
                break;
            }
            if !signalled {
                signalled = signal_supervisor(&now, opts.force, opts.by);
            }
            if Instant::now() >= deadline {
                if opts.force {
                    // A supervisor that does not answer (frozen, deadlocked) is killed,
                    // and what it supervised is ended below.
                    kill_supervisor(&now);
                    break;
                }
                // Still active at the deadline: say so and fail (guarantee 13), leaving its
                // steps to the supervisor that may still come back.
                let why = now.reason.map(|r| format!(": {r}")).unwrap_or_default();
                return Err(Error::new(exit::RUN_FAILED, format!(
                    "error: run {id} is still {} after {}{why}\n  help: the stop request stands; check again with bgflow status {id}, or kill it and every process of it: bgflow stop {id} --force --yes\n",
                    now.state,
                    human_ms(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX)),
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    // What a lost supervisor left behind, or what still stands after it went.
    let grace = if opts.force {
        Duration::ZERO
    } else {
        Duration::from_secs(10)
    };
    let swept = processes.sweep(grace);
    if !swept.ended.is_empty() {
        obs.note(&format!(
            "ended {} process(es) of run {id} that its supervisor left: {}\n",
            swept.ended.len(),
            contain::listing(swept.ended.iter().map(contain::Leftover::named))
        ));
    }
    if on_slurm {
        stop_jobs(&id, opts.force, obs)?;
    }
    super::reconcile(store);
    let state = store
        .run(&id)
        .ok()
        .flatten()
        .map_or_else(|| "unknown".to_owned(), |r| r.state);
    if !swept.survivors.is_empty() {
        return Err(Error::internal(format!(
            "error: run {id}: {} process(es) survived SIGKILL: {:?}\n",
            swept.survivors.len(),
            swept.survivors
        )));
    }
    Ok(Stopped::Stopped { id, state })
}

/// Cancels the Slurm jobs of run `id` that are still queued or running (those a lost
/// supervisor left; an ended supervisor cancelled its own) and waits until `squeue` lists
/// none. Exit 4 when some are still there after the wait.
fn stop_jobs(id: &str, force: bool, obs: &mut dyn Observer) -> Result<(), Error> {
    let before = crate::exec::slurm::jobs_left(id).unwrap_or_default();
    let wait = Duration::from_secs(if force { 15 } else { 60 });
    let left = crate::exec::slurm::cancel_run(id, wait).map_err(|e| {
        Error::internal(format!(
            "error: run {id}: cannot cancel its Slurm jobs: {e}\n"
        ))
    })?;
    if !left.is_empty() {
        return Err(Error::internal(format!(
            "error: run {id}: {} Slurm job(s) still queued or running after scancel: {}\n",
            left.len(),
            left.join(", ")
        )));
    }
    if !before.is_empty() {
        obs.note(&format!(
            "cancelled {} Slurm job(s) of run {id} that its supervisor left: {}\n",
            before.len(),
            before.join(", ")
        ));
    }
    Ok(())
}

/// SIGKILL to the run's supervisor, through a pidfd opened before its start time is checked
/// again (a recycled number is never hit).
fn kill_supervisor(run: &RunRow) {
    let Some(pid) = run.supervisor_pid.and_then(|p| u32::try_from(p).ok()) else {
        return;
    };
    process::signal_checked(
        pid,
        || crate::store::supervisor_alive(i64::from(pid), run.supervisor_start),
        Signal::SIGKILL,
    );
}

/// SIGTERM to the run's supervisor (twice with `force`: kill at once), only once its pid
/// and start time are recorded and still name it; whether it was sent.
fn signal_supervisor(run: &RunRow, force: bool, by: &str) -> bool {
    let Some(pid) = run
        .supervisor_pid
        .filter(|&p| crate::store::supervisor_alive(p, run.supervisor_start))
        .and_then(|p| i32::try_from(p).ok())
    else {
        return false;
    };
    // A foreground run records its pid at admission, before it handles signals: wait for
    // its `RunStarted` (state `running`).
    if run.state == "pending" {
        return false;
    }
    let target = nix::unistd::Pid::from_raw(pid);
    // Who asks, for the run's reason (`exec::STOP_REQUEST`); a request the signal did not
    // carry is taken back.
    let request = Path::new(&run.log_dir).join(crate::exec::STOP_REQUEST);
    if !by.is_empty() {
        let _ = std::fs::write(&request, format!("{by} (pid {})", std::process::id()));
    }
    if nix::sys::signal::kill(target, Signal::SIGTERM).is_err() {
        let _ = std::fs::remove_file(&request);
    }
    if force {
        // A second signal tells the supervisor to kill at once.
        std::thread::sleep(Duration::from_millis(100));
        let _ = nix::sys::signal::kill(target, Signal::SIGTERM);
    }
    true
}
