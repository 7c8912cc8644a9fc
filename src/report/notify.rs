//! What happens when a run ends, besides the summary: `[hooks]` of the manifest, the
//! config's `notifications.command`, a desktop notification, a terminal notification.
//!
//! Each receives the same event JSON (docs/json-output.md, `run_finished`). A failing hook
//! or notification is a warning: it never changes the run's outcome.

use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::json;

use crate::config::{Notifications, Outcome};
use crate::exec::{RunReport, RunState};

/// The `run_finished` event given to hooks and notification commands on stdin.
pub fn event_json(report: &RunReport) -> serde_json::Value {
    let failed: Vec<serde_json::Value> = report
        .steps
        .iter()
        .filter(|s| s.state.is_failure())
        .map(|s| json!({ "step": s.name, "state": s.state, "reason": s.reason, "log": s.log_in(&report.log_dir), "allow_failure": s.allow_failure }))
        .collect();
    json!({
        "version": 1,
        "type": "run_finished",
        "run": report.run_id,
        "workflow": report.workflow,
        "state": report.state,
        "reason": report.reason,
        "exit_code": report.exit_code(),
        "duration_ms": report.duration_ms,
        "log_dir": report.log_dir,
        "failed_steps": failed,
    })
}

/// Runs `command` under `sh -c` in `cwd` with `input` on stdin; output goes to `log`.
/// Gives up after `limit`, killing the hook's process group (the shell and what it
/// started and left in its group). `Err` says why it failed.
///
/// The hook has a process group of its own, so that the limit ends all of it; a SIGINT,
/// SIGTERM or SIGHUP that bgflow gets meanwhile (Ctrl-C on its terminal, which no longer
/// reaches the hook's group) is passed on to that group. The input is written while the
/// limit runs: a hook that does not read it, given more than a pipe holds (the event of a
/// run with some thousand failed steps), would otherwise hold bgflow in `write` until the
/// hook ended. What a hook leaves running once its shell has exited (`open report.html &`)
/// is left alone.
pub fn run_hook(
    command: &str,
    cwd: &Path,
    input: &str,
    log: &Path,
    limit: Duration,
) -> Result<(), String> {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(log)
        .map_err(|e| format!("cannot open {}: {e}", log.display()))?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    let mut cmd = tokio::process::Command::new("sh");
    cmd.arg("-c")
        .arg(command)
        .current_dir(cwd)
        .process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err));
    // A runtime of its own, on a thread of its own: the caller may be inside another.
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| format!("cannot start: {e}"))?;
                rt.block_on(wait_hook(cmd, input, limit))
            })
            .join()
            .unwrap_or_else(|_| Err("its supervision panicked".to_owned()))
    })
}

/// The next of `stops` to come.
async fn next_stop(
    stops: &mut [(nix::sys::signal::Signal, tokio::signal::unix::Signal)],
) -> nix::sys::signal::Signal {
    std::future::poll_fn(|cx| {
        for (sig, stream) in stops.iter_mut() {
            if let std::task::Poll::Ready(Some(())) = stream.poll_recv(cx) {
                return std::task::Poll::Ready(*sig);
            }
        }
        std::task::Poll::Pending
    })
    .await
}

async fn wait_hook(
    mut cmd: tokio::process::Command,
    input: &str,
    limit: Duration,
) -> Result<(), String> {
    use nix::sys::signal::{killpg, Signal};
    use tokio::io::AsyncWriteExt;
    use tokio::signal::unix::{signal, SignalKind};
    let mut child = cmd.spawn().map_err(|e| format!("cannot start: {e}"))?;
    let group = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .map(nix::unistd::Pid::from_raw);
    if let Some(mut pipe) = child.stdin.take() {
        // A task of this runtime, ended with it: a hook that does not read its input is
        // fine (EPIPE once it exits).
        let input = input.to_owned();
        tokio::spawn(async move {
            let _ = pipe.write_all(input.as_bytes()).await;
        });
    }
    let mut stops: Vec<(Signal, tokio::signal::unix::Signal)> = [
        (Signal::SIGINT, SignalKind::interrupt()),
        (Signal::SIGTERM, SignalKind::terminate()),
        (Signal::SIGHUP, SignalKind::hangup()),
    ]
    .into_iter()
    .filter_map(|(sig, kind)| signal(kind).ok().map(|s| (sig, s)))
    .collect();
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        tokio::select! {
            status = child.wait() => {
                return match status {
                    Ok(s) if s.success() => Ok(()),
                    Ok(s) => Err(format!("it exited with {s}")),
                    Err(e) => Err(e.to_string()),
                };
            }
            sig = next_stop(&mut stops) => {
                if let Some(g) = group {
                    let _ = killpg(g, sig);
                }
            }
            () = tokio::time::sleep_until(deadline) => {
                if let Some(g) = group {
                    let _ = killpg(g, Signal::SIGKILL);
                }
                let _ = child.kill().await;
                return Err(format!(
                    "it ran longer than {}s and was killed",
                    limit.as_secs_f64()
                ));
            }
        }
    }
}

/// Whether the config asks to notify for this outcome.
pub fn wanted(n: &Notifications, state: RunState) -> bool {
    let outcome = if state == RunState::Succeeded {
        Outcome::Success
    } else {
        Outcome::Failure
    };
    n.on.contains(&outcome)
}

/// The one-line text of a notification.
pub fn headline(report: &RunReport) -> (String, String) {
    let summary = format!("bgflow: {} {}", report.workflow, report.state.as_str());
    let failed: Vec<&str> = report
        .steps
        .iter()
        .filter(|s| s.state.is_failure())
        .map(|s| s.name.as_str())
        .collect();
    let body = if failed.is_empty() {
        format!(
            "run {} {} in {}",
            report.run_id,
            report.state.as_str(),
            crate::report::live::human_ms(report.duration_ms)
        )
    } else {
        format!(
            "run {}: {} failed; logs in {}",
            report.run_id,
            failed.join(", "),
            report.log_dir.display()
        )
    };
    (summary, body)
}

/// Longest the end of a run waits for the notification server. Neither zbus nor the bus
/// time a call out on their own, so a hung server would otherwise hold up bgflow's exit forever.
pub const DESKTOP_TIMEOUT: Duration = Duration::from_secs(5);

/// Sends a desktop notification over D-Bus (no C library: zbus), waiting at most
/// [`DESKTOP_TIMEOUT`] for the server's answer.
pub fn desktop(report: &RunReport) -> Result<(), String> {
    let (summary, body) = headline(report);
    let (tx, rx) = std::sync::mpsc::channel();
    // On a thread of its own: it can be left behind if the server never answers, and zbus's
    // `block_on` (inside `show`) is not run on a thread of bgflow's Tokio runtime.
    std::thread::Builder::new()
        .name("desktop-notification".into())
        .spawn(move || {
            let sent = notify_rust::Notification::new()
                .appname("bgflow")
                .summary(&summary)
                .body(&body)
                .show()
                .map(|_| ())
                .map_err(|e| e.to_string());
            let _ = tx.send(sent);
        })
        .map_err(|e| format!("cannot start a thread: {e}"))?;
    match rx.recv_timeout(DESKTOP_TIMEOUT) {
        Ok(sent) => sent,
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Err(format!(
            "the notification server did not answer within {}s",
            DESKTOP_TIMEOUT.as_secs()
        )),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            Err("the notification thread ended without an answer".to_string())
        }
    }
}

/// A terminal notification: the bell, and OSC 9 (shown by terminals that support it).
pub fn terminal(report: &RunReport) -> String {
    let (summary, body) = headline(report);
    format!("\x1b]9;{summary}: {body}\x07\x07")
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::{Duration, Instant};

    use super::run_hook;

    /// Whether process `pid` is gone (a zombie counts as gone: the init here reaps slowly).
    fn gone(pid: &str) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| {
            s.rsplit(')')
                .next()
                .is_some_and(|r| r.trim_start().starts_with('Z'))
        })
    }

    /// A hook that reads none of a large input and outlives its limit is killed at the
    /// limit, with what it started in its group; bgflow does not wait in `write` for it.
    #[test]
    fn a_hook_that_reads_no_input_is_killed_at_its_limit_with_its_children() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("hooks.log");
        let input = "x".repeat(1 << 20);
        let started = Instant::now();
        let r = run_hook(
            "sleep 30 & echo $! > child; sleep 30",
            dir.path(),
            &input,
            &log,
            Duration::from_millis(500),
        );
        let took = started.elapsed();
        assert!(
            r.as_ref()
                .is_err_and(|e| e.contains("ran longer than 0.5s")),
            "{r:?}"
        );
        assert!(took < Duration::from_secs(10), "took {took:?}");
        let child = std::fs::read_to_string(dir.path().join("child")).expect("child pid");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !gone(child.trim()) {
            assert!(
                Instant::now() < deadline,
                "the hook's child {child} lives on"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn a_hook_gets_the_event_on_stdin_and_its_exit_status_is_told() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("hooks.log");
        let ok = run_hook(
            "cat > got",
            dir.path(),
            "{\"run\":\"r\"}",
            &log,
            Duration::from_secs(30),
        );
        assert_eq!(ok, Ok(()));
        assert_eq!(
            std::fs::read_to_string(dir.path().join("got")).expect("got"),
            "{\"run\":\"r\"}"
        );
        let bad = run_hook("exit 3", Path::new("/"), "", &log, Duration::from_secs(30));
        assert!(bad.is_err_and(|e| e.contains("exit status: 3")));
    }
}
