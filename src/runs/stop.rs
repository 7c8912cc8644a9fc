//! `bgflow stop RUN`: ask the run's supervisor to end it, wait up to a deadline, and end
//! whatever of the run is left (everything of a lost run) through its containment
//! (`exec::contain`): never a process that is not the run's.

use std::io::{self, IsTerminal};
use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::exec::process;
use crate::exit;
use crate::report::{self, live::human_ms};
use crate::store::RunRow;

use crate::cli::history_cmd::{open, or_code, resolve};
use crate::cli::StopArgs;

macro_rules! tri {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(code) => return Ok(code),
        }
    };
}

fn confirm(question: &str) -> bool {
    if !io::stdin().is_terminal() {
        return false;
    }
    report::stderr(&format!("{question} [y/N] "));
    let mut answer = String::new();
    io::stdin().read_line(&mut answer).is_ok() && matches!(answer.trim(), "y" | "Y" | "yes")
}

pub fn stop(args: &StopArgs, state_dir: Option<&Path>) -> io::Result<u8> {
    use crate::exec::contain;
    let mut store = tri!(open(state_dir));
    let id = tri!(resolve(&store, &args.run));
    let (run, steps) =
        tri!(or_code(store.run_with_steps(&id))).ok_or_else(|| io::Error::other("run vanished"))?;
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
            report::stderr(&format!(
                "note: pid {pid}, recorded for step `{}`, is now another process ({}); left alone\n",
                s.name,
                contain::command_line(pid)
            ));
        }
    }
    if !run.is_active() && left.is_empty() {
        report::stderr(&format!("run {id} is not running ({})\n", run.state));
        return Ok(exit::SUCCESS);
    }
    if !args.yes {
        if !io::stdin().is_terminal() {
            report::stderr(
                "error: stop asks for confirmation; pass --yes when not on a terminal\n",
            );
            return Ok(exit::USAGE);
        }
        let how = if args.force { "kill" } else { "stop" };
        if !confirm(&format!(
            "{how} run {id} ({}, {} process(es))?",
            run.workflow,
            left.len().max(1)
        )) {
            report::stderr("not stopped\n");
            return Ok(exit::SUCCESS);
        }
    }
    let _ = store.event(
        &id,
        "stop_requested",
        serde_json::json!({"version": 1, "force": args.force}),
    );
    let wait = args.timeout.map_or_else(
        || Duration::from_secs(if args.force { 5 } else { 60 }),
        |t| t.as_std(),
    );
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
                signalled = signal_supervisor(&now, args.force);
            }
            if Instant::now() >= deadline {
                if args.force {
                    // A supervisor that does not answer (frozen, deadlocked) is killed,
                    // and what it supervised is ended below.
                    kill_supervisor(&now);
                    break;
                }
                // Still active at the deadline: say so and fail (guarantee 13), leaving its
                // steps to the supervisor that may still come back.
                let why = now.reason.map(|r| format!(": {r}")).unwrap_or_default();
                report::stderr(&format!(
                    "error: run {id} is still {} after {}{why}\n  help: the stop request stands; check again with bgflow status {id}, or kill it and every process of it: bgflow stop {id} --force --yes\n",
                    now.state,
                    human_ms(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX)),
                ));
                return Ok(exit::RUN_FAILED);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    // What a lost supervisor left behind, or what still stands after it went.
    let grace = if args.force {
        Duration::ZERO
    } else {
        Duration::from_secs(10)
    };
    let swept = processes.sweep(grace);
    if !swept.ended.is_empty() {
        let what: Vec<String> = swept
            .ended
            .iter()
            .take(5)
            .map(|l| format!("{} (pid {})", l.command, l.pid))
            .collect();
        report::stderr(&format!(
            "ended {} process(es) of run {id} that its supervisor left: {}\n",
            swept.ended.len(),
            what.join(", ")
        ));
    }
    let _ = store.reconcile_lost();
    let state = store
        .run(&id)
        .ok()
        .flatten()
        .map_or_else(|| "unknown".to_owned(), |r| r.state);
    if !swept.survivors.is_empty() {
        report::stderr(&format!(
            "error: run {id}: {} process(es) survived SIGKILL: {:?}\n",
            swept.survivors.len(),
            swept.survivors
        ));
        return Ok(exit::INTERNAL);
    }
    report::stderr(&format!("run {id}: {state}\n"));
    Ok(exit::SUCCESS)
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
fn signal_supervisor(run: &RunRow, force: bool) -> bool {
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
    let _ = nix::sys::signal::kill(target, Signal::SIGTERM);
    if force {
        // A second signal tells the supervisor to kill at once.
        std::thread::sleep(Duration::from_millis(100));
        let _ = nix::sys::signal::kill(target, Signal::SIGTERM);
    }
    true
}
