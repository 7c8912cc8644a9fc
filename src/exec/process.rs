//! Starting a step's process in its own process group, and ending the whole group.
//!
//! Every step runs as the leader of a new process group (nextest's model), so a signal to
//! `-pgid` reaches every process the step started, however deep. Ending is always: a
//! signal (SIGTERM, or the caller's), then `kill_grace`, then SIGKILL to the group.

use std::os::fd::OwnedFd;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::process::{Child, Command as TokioCommand};

use crate::validate::Command;

/// What a step's process needs to start.
pub struct Spawn<'a> {
    pub command: &'a Command,
    pub cwd: &'a Path,
    pub env: &'a [(String, String)],
    /// Where stdout and stderr go (the write end of the log pipe).
    pub output: OwnedFd,
}

/// Starts the process: stdin from /dev/null, stdout and stderr into `output`. `output` is
/// closed here once the child has its copies, so the reader sees the end when the step's
/// processes are gone.
pub fn spawn(s: Spawn<'_>) -> std::io::Result<Child> {
    let mut cmd = match s.command {
        Command::Shell(script) => {
            let mut c = TokioCommand::new("sh");
            c.arg("-c").arg(script);
            c
        }
        Command::Argv(argv) => {
            let (program, args) = argv.split_first().ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::InvalidInput, "empty command")
            })?;
            let mut c = TokioCommand::new(program);
            c.args(args);
            c
        }
    };
    cmd.current_dir(s.cwd)
        .envs(s.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::from(s.output.try_clone()?))
        .stderr(Stdio::from(s.output))
        .process_group(0)
        // A safety net under the explicit group kills: never leave a child behind on panic.
        .kill_on_drop(true);
    cmd.spawn()
}

/// Sends `signal` to every process of the group; a group already gone is not an error.
pub fn signal_group(pgid: u32, signal: Signal) {
    if let Ok(raw) = i32::try_from(pgid) {
        let _ = killpg(Pid::from_raw(raw), signal);
    }
}

/// Whether any process of the group is still alive (zombies count as gone).
pub fn group_alive(pgid: u32) -> bool {
    // Fast path: no process at all in the group (not even a zombie) is the common case
    // after a step ends, and needs no scan of /proc.
    let Ok(raw) = i32::try_from(pgid) else {
        return false;
    };
    if killpg(Pid::from_raw(raw), None) == Err(nix::errno::Errno::ESRCH) {
        return false;
    }
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|e| {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(|s| s.parse::<u32>().ok()) else {
            return false;
        };
        proc_stat(pid).is_some_and(|(state, group)| group == pgid && state != 'Z' && state != 'X')
    })
}

/// State letter and process group of a pid, from /proc/PID/stat.
pub fn proc_stat(pid: u32) -> Option<(char, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may itself hold spaces or parentheses.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    let state = fields.next()?.chars().next()?;
    let _ppid = fields.next()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some((state, pgrp))
}

/// Ends the group of a running child: `first` now, SIGKILL after `grace` if the leader has
/// not exited, and SIGKILL to stragglers of the group either way. Returns the exit status.
pub async fn terminate(
    child: &mut Child,
    pgid: u32,
    first: Signal,
    grace: Duration,
) -> Option<std::process::ExitStatus> {
    signal_group(pgid, first);
    let status = match tokio::time::timeout(grace, child.wait()).await {
        Ok(status) => status.ok(),
        Err(_) => {
            signal_group(pgid, Signal::SIGKILL);
            child.wait().await.ok()
        }
    };
    reap_group(pgid, grace).await;
    status
}

/// After the leader exited: give the rest of its group `grace` to go, then SIGKILL it.
pub async fn reap_group(pgid: u32, grace: Duration) {
    if !group_alive(pgid) {
        return;
    }
    signal_group(pgid, Signal::SIGTERM);
    let deadline = tokio::time::Instant::now() + grace;
    while group_alive(pgid) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    signal_group(pgid, Signal::SIGKILL);
}
