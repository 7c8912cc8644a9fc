//! What happens when a run ends, besides the summary: `[hooks]` of the manifest, the
//! config's `notifications.command`, a desktop notification, a terminal notification.
//!
//! Each receives the same event JSON (docs/json-output.md, `run_finished`). A failing hook
//! or notification is a warning: it never changes the run's outcome.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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
/// Gives up (killing it) after `limit`. `Err` says why it failed.
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
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .current_dir(cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .spawn()
        .map_err(|e| format!("cannot start: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its input is fine.
        let _ = stdin.write_all(input.as_bytes());
    }
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(format!("it exited with {status}")),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "it ran longer than {}s and was killed",
                    limit.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(e.to_string()),
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
