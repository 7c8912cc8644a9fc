//! Starting a step's process as the leader of a new process group, and waiting for it.
//!
//! Every step runs as the leader of a new process group (nextest's model), in its
//! attempt's containment unit (`contain`), which is what is signalled to end it: a signal
//! (SIGTERM, or the caller's), then `kill_grace`, then SIGKILL to the whole unit.

use std::os::fd::OwnedFd;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::ExitStatus;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use tokio::io::unix::AsyncFd;

use super::spawn::{self as posix, Environment, Launch};
use crate::validate::Command;

/// What a step's process needs to start.
pub struct Spawn<'a> {
    pub command: &'a Command,
    pub cwd: &'a Path,
    /// The step's own variables on top of the run's environment (later wins).
    pub env: &'a [(&'a str, &'a str)],
    /// The run's environment, built once.
    pub environment: &'a Environment,
    /// Standard input (/dev/null, opened once per run).
    pub stdin: std::os::fd::BorrowedFd<'a>,
    /// Where stdout and stderr go (the write end of the log pipe). The caller keeps it:
    /// the log pipe's copy holds it until the step's processes are gone (`logpipe`).
    pub output: std::os::fd::BorrowedFd<'a>,
    /// The attempt's cgroup (its folder and `cgroup.procs`), when it has one.
    pub cgroup: Option<(std::os::fd::BorrowedFd<'a>, std::os::fd::BorrowedFd<'a>)>,
}

/// Starts the process: stdin from /dev/null, stdout and stderr into `output`. A string
/// command runs under `sh -c`, unless it is a plain command (`direct::plain_argv`) whose
/// program starts: then it runs as an array does, directly.
pub fn spawn(s: Spawn<'_>) -> std::io::Result<Child> {
    let started = match s.command {
        Command::Shell(script) => {
            // Any failure to start it directly (not found, not executable, a script
            // without `#!`) goes to the shell, which reports or handles it as it would.
            let direct = super::direct::plain_argv(script)
                .zip(clean_absolute(s.cwd))
                .and_then(|(words, pwd)| launch(&s, &words, Some(pwd)).ok());
            match direct {
                Some(started) => started,
                None => launch(&s, &["sh", "-c", script.as_str()], None)?,
            }
        }
        Command::Argv(argv) => {
            let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
            launch(&s, &argv, clean_absolute(s.cwd))?
        }
    };
    // A pidfd turns the exit into an event on the runtime; without one (Linux < 5.2) the
    // wait polls.
    let (pid, start_time) = (started.pid, started.start_time);
    let exit = posix::exit_event(started);
    Ok(Child {
        pid,
        start_time,
        exit,
        status: None,
    })
}

/// Starts `argv` with the step's environment and, when given, `PWD`: a program started
/// without a shell gets it as `sh` would give it, its cwd.
fn launch(s: &Spawn<'_>, argv: &[&str], pwd: Option<&str>) -> std::io::Result<posix::Started> {
    let with_pwd;
    let env = match pwd {
        Some(pwd) => {
            with_pwd = [s.env, &[("PWD", pwd)]].concat();
            &with_pwd
        }
        None => s.env,
    };
    posix::spawn(
        s.environment,
        &Launch {
            argv,
            cwd: s.cwd,
            env,
            stdin: s.stdin,
            output: s.output,
            cgroup: s.cgroup,
        },
    )
}

/// `path` as a `PWD` value: absolute, UTF-8, without `.` or `..` (what `sh` would check and
/// replace); `None` otherwise.
fn clean_absolute(path: &Path) -> Option<&str> {
    use std::path::Component;
    let text = path.to_str()?;
    let mut parts = path.components();
    (parts.next() == Some(Component::RootDir)
        && parts.all(|c| matches!(c, Component::Normal(_)))
        && !text.contains("/./")
        && !text.ends_with("/."))
    .then_some(text)
}

/// A started step process. Dropped before it was waited for, it is killed (a safety net
/// under the explicit group kills: never leave a child behind on a panic).
pub struct Child {
    pid: i32,
    /// From the clock at the start, when it tells (`spawn::start_time_between`).
    start_time: Option<u64>,
    exit: Option<AsyncFd<OwnedFd>>,
    status: Option<ExitStatus>,
}

impl Child {
    pub fn id(&self) -> u32 {
        self.pid.unsigned_abs()
    }

    /// Its start time (clock ticks after boot, as /proc/PID/stat gives it): from the clock
    /// at the start, or else from /proc.
    pub fn start_time(&self) -> Option<u64> {
        self.start_time.or_else(|| start_time(self.id()))
    }

    /// Waits for the process to exit and reaps it; cancel-safe, and returns the same status
    /// again once it has.
    pub async fn wait(&mut self) -> std::io::Result<ExitStatus> {
        loop {
            if let Some(status) = self.status {
                return Ok(status);
            }
            // A pidfd is readable from the exit on (also when the process exited before
            // it was registered), so the reap is tried only once it says so. It stays
            // readable, and the runtime reports edges: the readiness is never cleared, and
            // a reap that finds nothing yet (or no pidfd at all) polls.
            if let Some(fd) = &self.exit {
                let _ready = fd.readable().await?;
            }
            self.status = self.try_wait()?;
            if self.status.is_none() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }

    fn try_wait(&self) -> std::io::Result<Option<ExitStatus>> {
        match waitpid(Pid::from_raw(self.pid), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => Ok(Some(ExitStatus::from_raw((code & 0xff) << 8))),
            Ok(WaitStatus::Signaled(_, sig, core)) => Ok(Some(ExitStatus::from_raw(
                sig as i32 | if core { 0x80 } else { 0 },
            ))),
            Ok(_) => Ok(None),
            Err(nix::errno::Errno::EINTR) => Ok(None),
            Err(e) => Err(std::io::Error::from(e)),
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = kill(Pid::from_raw(self.pid), Signal::SIGKILL);
            let _ = self.try_wait();
        }
    }
}

pub use crate::procfs::{proc_stat, start_time};

/// Sends `signal` to process `pid` only if `still_it()` holds once a pidfd names it: a
/// number recycled between the check and the signal is never hit. Whether it was sent.
pub fn signal_checked(pid: u32, still_it: impl FnOnce() -> bool, signal: Signal) -> bool {
    use std::os::fd::AsFd;
    match super::spawn::pidfd_open(pid) {
        Ok(fd) => still_it() && super::spawn::pidfd_signal(fd.as_fd(), signal as i32).is_ok(),
        Err(_) => false,
    }
}
