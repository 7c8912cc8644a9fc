//! Containment (guarantee 8, DESIGN.md §7): each step attempt runs in a unit that its
//! processes cannot leave by `setsid`, `setpgid`, a double fork or job control, and every
//! ending of the step ends the whole unit.
//!
//! Two mechanisms, chosen once per run (`containment` in bgflow.toml; `auto` by default):
//! - `cgroup`: a cgroup v2 folder per run, `bgflow-<run id>` beside bgflow's own cgroup
//!   (writable as root, or in a delegated subtree on a systemd desktop), and a leaf in it for
//!   each running attempt (a leaf found empty when its attempt ends serves a later one:
//!   making and removing a cgroup cost about 100 µs a step here). The child is born in its
//!   leaf (`clone3` with CLONE_INTO_CGROUP; elsewhere it moves itself in before `execve`),
//!   so nothing it starts is ever outside it; `cgroup.kill` ends the leaf and anything
//!   nested in it at once.
//! - `process-group`: the step's process group, bgflow as child subreaper (an orphan of a
//!   step becomes bgflow's child, not init's), and `BGFLOW_STEP_TOKEN=<run>.<step>.<attempt>`
//!   in every step process's environment, by which a process that left the group is found
//!   in /proc. A process that empties its own environment and leaves its group is out of
//!   reach here; the cgroup is not.
//!
//! Recycled numbers: a step's leader is bgflow's own child and is signalled only until it
//! is reaped; its group is signalled while the step is being ended, milliseconds after the
//! leader's exit, far less than the pid space takes to wrap. Anything found later (`stop`
//! of a lost run) is signalled through a pidfd opened and then checked (its token), so a
//! number given to another process in between is never signalled.

use std::fs;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;

use super::process::proc_stat;
use crate::config::Containment as Asked;

pub mod marked;
mod outside;
pub use outside::{live_of, RunProcesses, Swept};

/// The environment variable that marks every process of a step attempt.
pub const TOKEN_VAR: &str = "BGFLOW_STEP_TOKEN";

/// How a run keeps its steps' processes together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    Cgroup,
    ProcessGroup,
}

impl Mechanism {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cgroup => "cgroup",
            Self::ProcessGroup => "process-group",
        }
    }
}

/// A run's containment: the mechanism, and with `cgroup` the run's folder.
#[derive(Debug)]
pub struct Containment {
    mechanism: Mechanism,
    run_id: String,
    dir: Option<PathBuf>,
    /// Empty leaves, ready for the next attempt.
    free: std::sync::Mutex<Vec<Leaf>>,
    /// Leaves made so far (their names are `leaf-<n>`).
    made: std::sync::atomic::AtomicUsize,
}

/// A leaf cgroup of the run, with its folder, `cgroup.procs` and `cgroup.events` open (a
/// step's end reads `populated` with one `pread`).
#[derive(Debug)]
struct Leaf {
    path: PathBuf,
    dir: OwnedFd,
    procs: OwnedFd,
    events: fs::File,
}

impl Leaf {
    /// `populated 1` in the leaf's `cgroup.events`: a process in it or below it.
    fn populated(&self) -> bool {
        use std::os::unix::fs::FileExt;
        let mut buf = [0u8; 128];
        match self.events.read_at(&mut buf, 0) {
            Ok(n) => buf[..n].split(|b| *b == b'\n').any(|l| l == b"populated 1"),
            Err(_) => populated(&self.path),
        }
    }
}

impl Containment {
    /// The mechanism `asked` for, for run `run_id` of the history in `state_dir`: `auto`
    /// takes a cgroup where one can be made and the process group otherwise; `cgroup` is an
    /// error where none can be made. The run's cgroup folder is marked with `state_dir`
    /// ([`marked`]).
    pub fn choose(asked: Asked, run_id: &str, state_dir: &Path) -> Result<Self, String> {
        let cgroup = || {
            run_cgroup(run_id, state_dir).map(|dir| Self {
                mechanism: Mechanism::Cgroup,
                run_id: run_id.to_owned(),
                dir: Some(dir),
                free: std::sync::Mutex::default(),
                made: std::sync::atomic::AtomicUsize::new(0),
            })
        };
        match asked {
            Asked::Cgroup => cgroup().map_err(|e| {
                format!("containment = \"cgroup\", but no cgroup can be made for the run: {e}")
            }),
            Asked::Auto => Ok(cgroup().unwrap_or_else(|_| Self::process_group(run_id))),
            Asked::ProcessGroup => Ok(Self::process_group(run_id)),
        }
    }

    fn process_group(run_id: &str) -> Self {
        // Orphans of a step become this process's children, where they can be found and
        // reaped, instead of init's.
        let _ = nix::sys::prctl::set_child_subreaper(true);
        Self {
            mechanism: Mechanism::ProcessGroup,
            run_id: run_id.to_owned(),
            dir: None,
            free: std::sync::Mutex::default(),
            made: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// The run's cgroup folder, with `cgroup`.
    pub fn cgroup(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// A unit for one attempt of step `step` (its index).
    pub fn unit(&self, step: usize, attempt: u32) -> io::Result<Unit<'_>> {
        let token = format!("{}.{step}.{attempt}", self.run_id);
        let leaf = match &self.dir {
            Some(dir) => Some(match self.free.lock().ok().and_then(|mut f| f.pop()) {
                Some(leaf) => leaf,
                None => self.new_leaf(dir)?,
            }),
            None => None,
        };
        Ok(Unit {
            token,
            leaf,
            pool: self,
            pgid: 0,
            signalled: std::sync::atomic::AtomicBool::new(false),
            killed: std::sync::atomic::AtomicBool::new(false),
            empty: false,
            ended: false,
        })
    }

    fn new_leaf(&self, dir: &Path) -> io::Result<Leaf> {
        use std::os::unix::fs::OpenOptionsExt;
        let n = self.made.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = dir.join(format!("leaf-{n}"));
        fs::create_dir(&path)?;
        let folder = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY)
            .open(&path)?;
        let procs = fs::OpenOptions::new()
            .write(true)
            .open(path.join("cgroup.procs"))?;
        let events = fs::File::open(path.join("cgroup.events"))?;
        Ok(Leaf {
            path,
            dir: OwnedFd::from(folder),
            procs: OwnedFd::from(procs),
            events,
        })
    }

    /// With `process-group`: reaps orphans of steps that ended on their own and were
    /// left as zombies of this process. Only once no step runs: a step's own leader is
    /// reaped by its supervision, never here.
    pub fn reap_orphans(&self) {
        if self.mechanism != Mechanism::ProcessGroup {
            return;
        }
        use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
        while let Ok(status) = waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            if status == WaitStatus::StillAlive {
                break;
            }
        }
    }
}

impl Drop for Containment {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            remove_tree(dir);
        }
    }
}

/// One step attempt's unit.
#[derive(Debug)]
pub struct Unit<'a> {
    /// `BGFLOW_STEP_TOKEN` of the attempt.
    pub token: String,
    leaf: Option<Leaf>,
    /// Where the leaf goes back once empty.
    pool: &'a Containment,
    /// The leader's pid, which is its group's id; 0 before it started.
    pgid: u32,
    /// Whether the unit was told to end (a timeout, a stop): its processes are then given
    /// a moment to go before what is left is counted.
    signalled: std::sync::atomic::AtomicBool,
    /// `cgroup.kill` was written to the leaf: it is never used again (see `Drop`).
    killed: std::sync::atomic::AtomicBool,
    /// `end` found nothing left.
    empty: bool,
    /// `end` ran to its close: what it ended is gone, and `Drop` has nothing to do.
    ended: bool,
}

/// Who belongs to a unit, apart from it: its leaf, or its group and token.
#[derive(Debug, Clone)]
pub struct Members {
    leaf: Option<PathBuf>,
    pgid: u32,
    token: String,
}

impl Members {
    /// Every live process of the unit (as `Unit::members`).
    pub fn list(&self) -> Vec<u32> {
        match &self.leaf {
            Some(leaf) => cgroup_members(leaf),
            None => scan_proc(|pid, pgid| {
                (self.pgid != 0 && pgid == self.pgid) || has_token(pid, &self.token, false)
            }),
        }
    }
}

/// A process that was still there when its step ended.
#[derive(Debug, Clone)]
pub struct Leftover {
    pub pid: u32,
    pub command: String,
}

impl Leftover {
    /// As `listing` takes it.
    pub fn named(&self) -> (u32, &str) {
        (self.pid, &self.command)
    }
}

impl Unit<'_> {
    /// The leaf's folder and `cgroup.procs`, for the child to start in.
    pub fn cgroup(&self) -> Option<(BorrowedFd<'_>, BorrowedFd<'_>)> {
        self.leaf.as_ref().map(|l| (l.dir.as_fd(), l.procs.as_fd()))
    }

    fn leaf(&self) -> Option<&Path> {
        self.leaf.as_ref().map(|l| l.path.as_path())
    }

    /// The leader started with this pid (and group).
    pub fn started(&mut self, pid: u32) {
        self.pgid = pid;
    }

    /// Who belongs to the unit, as a value a probe can take to another task.
    pub fn members_handle(&self) -> Members {
        Members {
            leaf: self.leaf().map(Path::to_path_buf),
            pgid: self.pgid,
            token: self.token.clone(),
        }
    }

    /// Every live process of the unit.
    pub fn members(&self) -> Vec<u32> {
        match self.leaf() {
            Some(leaf) => cgroup_members(leaf),
            None => scan_proc(|pid, pgid| {
                (self.pgid != 0 && pgid == self.pgid) || has_token(pid, &self.token, false)
            }),
        }
    }

    /// Sends `signal` to every process of the unit.
    pub fn signal(&self, signal: Signal) {
        if self.pgid == 0 {
            return;
        }
        self.signalled
            .store(true, std::sync::atomic::Ordering::Relaxed);
        if signal == Signal::SIGKILL && self.kill_cgroup() {
            return;
        }
        if let Ok(raw) = i32::try_from(self.pgid) {
            let _ = killpg(Pid::from_raw(raw), signal);
        }
        for pid in self.members() {
            if let Ok(raw) = i32::try_from(pid) {
                let _ = kill(Pid::from_raw(raw), signal);
            }
        }
    }

    /// `cgroup.kill` of the leaf: every process in it and below it, at once.
    fn kill_cgroup(&self) -> bool {
        let Some(leaf) = self.leaf() else {
            return false;
        };
        // Marked before the write: a write that fails half-way may still have killed.
        self.killed
            .store(true, std::sync::atomic::Ordering::Relaxed);
        fs::write(leaf.join("cgroup.kill"), "1").is_ok()
    }

    /// Whether anything of the unit may still be alive, cheaply: the leaf's `populated`;
    /// or the group, and any child of this process (orphans come here as subreaper)
    /// that carries the token.
    fn maybe_alive(&self) -> bool {
        match &self.leaf {
            Some(leaf) => leaf.populated(),
            None => {
                let group = i32::try_from(self.pgid)
                    .is_ok_and(|g| killpg(Pid::from_raw(g), None) != Err(nix::errno::Errno::ESRCH));
                // Without the children lists (CONFIG_PROC_CHILDREN), /proc is scanned.
                group
                    || own_children().is_none_or(|children| {
                        children
                            .into_iter()
                            .any(|pid| has_token(pid, &self.token, false))
                    })
            }
        }
    }

    /// After the leader exited and was reaped: ends what is left of the unit (`signal`,
    /// `grace`, then SIGKILL) and returns what it was. Empty in the common case, found
    /// without a scan of /proc.
    pub async fn end(&mut self, grace: Duration) -> Vec<Leftover> {
        if self.pgid == 0 || !self.maybe_alive() {
            // An empty unit stays empty: nothing is left in it to start a process.
            self.empty = true;
            self.ended = true;
            return Vec::new();
        }
        if self.signalled.load(std::sync::atomic::Ordering::Relaxed) {
            // Processes that got the step's signal may still be on their way out.
            let settle = tokio::time::Instant::now() + grace.min(Duration::from_millis(500));
            while !self.members().is_empty() && tokio::time::Instant::now() < settle {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        let mut noted = Noted::default();
        if !noted.note(self.members()) {
            self.ended = true;
            return Vec::new();
        }
        self.signal(Signal::SIGTERM);
        // A process that one of them starts meanwhile (a daemon starting its workers) is
        // one of them too: each look notes the new ones, so the warning counts them all.
        let deadline = tokio::time::Instant::now() + grace;
        while noted.note(self.members()) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.signal(Signal::SIGKILL);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while noted.note(self.members()) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if self.leaf.is_none() {
            // They were this process's children once their parents were gone.
            for l in &noted.left {
                reap(l.pid);
            }
        }
        self.ended = true;
        noted.left
    }
}

impl Drop for Unit<'_> {
    fn drop(&mut self) {
        let Some(leaf) = self.leaf.take() else {
            // A process group's unit dropped before `end` ran to its close: the task that
            // supervised it panicked, or was cancelled. Everything of it is ended now, as
            // `cgroup.kill` does below (its leader, if not yet reaped, by `Child`'s drop).
            if !self.ended && self.pgid != 0 {
                self.signal(Signal::SIGKILL);
            }
            return;
        };
        if !self.empty && leaf.populated() {
            // Never leave a process behind; the leaf is not used again (the run's end
            // removes it).
            let _ = fs::write(leaf.path.join("cgroup.kill"), "1");
        } else if self.killed.load(std::sync::atomic::Ordering::Relaxed) {
            // A leaf that was killed is not used again: here (Linux 6.18) every process
            // later started into it by `clone3` with CLONE_INTO_CGROUP was killed at once,
            // and the step reported as "killed by signal SIGKILL". Removed now, being
            // empty; else the run's end removes it.
            let path = leaf.path.clone();
            drop(leaf);
            let _ = fs::remove_dir(path);
        } else if let Ok(mut free) = self.pool.free.lock() {
            free.push(leaf);
        }
    }
}

/// The processes seen in a unit while it is ended, in the order first seen.
#[derive(Default)]
struct Noted {
    left: Vec<Leftover>,
    /// Where each pid is in `left`, and whether its command line was read again.
    at: std::collections::HashMap<u32, (usize, bool)>,
}

impl Noted {
    /// Adds the processes of `members` not seen before. One seen before has its command
    /// line read once more, at the next look: one first seen between its `fork` and its
    /// `execve` is named by what it runs. Whether any member is alive.
    fn note(&mut self, members: Vec<u32>) -> bool {
        let alive = !members.is_empty();
        for pid in members {
            match self.at.get_mut(&pid) {
                Some((i, read_again @ false)) => {
                    *read_again = true;
                    let command = crate::procfs::command_line(pid);
                    // Not what a process that is gone or a zombie shows ("?", "[sleep]").
                    if command != "?" && !command.starts_with('[') {
                        self.left[*i].command = command;
                    }
                }
                Some(_) => {}
                None => {
                    self.at.insert(pid, (self.left.len(), false));
                    self.left.push(Leftover {
                        pid,
                        command: crate::procfs::command_line(pid),
                    });
                }
            }
        }
        alive
    }
}

/// A short description of processes that outlived their step, for a warning.
pub fn describe(step: &str, left: &[Leftover]) -> String {
    let n = left.len();
    format!(
        "{n} process{} of step `{step}` outlived it and {} stopped: {}",
        if n == 1 { "" } else { "es" },
        if n == 1 { "was" } else { "were" },
        listing(left.iter().map(Leftover::named))
    )
}

/// Processes as messages name them, from their `(pid, command line)`: the first five as
/// `command (pid N)`, then how many more.
pub fn listing<'a>(left: impl IntoIterator<Item = (u32, &'a str)>) -> String {
    const SHOWN: usize = 5;
    let mut what: Vec<String> = Vec::new();
    let mut more = 0;
    for (pid, command) in left {
        if what.len() < SHOWN {
            what.push(format!("{command} (pid {pid})"));
        } else {
            more += 1;
        }
    }
    let more = if more > 0 {
        format!(", and {more} more")
    } else {
        String::new()
    };
    format!("{}{more}", what.join(", "))
}

/// The run's cgroup folder, made beside bgflow's own cgroup; it must offer `cgroup.kill`
/// (Linux 5.14+) and this process must be able to move processes into it.
fn run_cgroup(run_id: &str, state_dir: &Path) -> io::Result<PathBuf> {
    let mount = cgroup2_mount().ok_or_else(|| {
        io::Error::new(io::ErrorKind::NotFound, "no cgroup2 file system is mounted")
    })?;
    let own = own_cgroup().ok_or_else(|| {
        io::Error::new(io::ErrorKind::NotFound, "this process is in no cgroup v2")
    })?;
    let base = mount.join(own.trim_start_matches('/'));
    let dir = base.join(format!("bgflow-{run_id}"));
    fs::create_dir(&dir)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", dir.display())))?;
    let usable = dir.join("cgroup.kill").exists()
        && nix::unistd::access(&dir.join("cgroup.procs"), nix::unistd::AccessFlags::W_OK).is_ok()
        && nix::unistd::access(&base.join("cgroup.procs"), nix::unistd::AccessFlags::W_OK).is_ok();
    if !usable {
        let _ = fs::remove_dir(&dir);
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!(
                "{}: no cgroup.kill (Linux 5.14+) or no right to move processes",
                dir.display()
            ),
        ));
    }
    marked::mark(&dir, state_dir);
    Ok(dir)
}

/// Where the cgroup v2 file system is mounted, from /proc/self/mountinfo.
fn cgroup2_mount() -> Option<PathBuf> {
    let info = fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        if right.split(' ').next()? != "cgroup2" {
            return None;
        }
        left.split(' ')
            .nth(4)
            .map(|m| PathBuf::from(unescape_mount(m)))
    })
}

/// mountinfo writes space, tab, newline and backslash as octal escapes.
fn unescape_mount(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// This process's cgroup v2 path (`0::/path` in /proc/self/cgroup).
fn own_cgroup() -> Option<String> {
    let text = fs::read_to_string("/proc/self/cgroup").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(str::to_owned)
}

/// A run's cgroup folder found by its name, for a run whose record lacks it.
fn find_run_cgroup(run_id: &str) -> Option<PathBuf> {
    run_folders()
        .into_iter()
        .find_map(|(id, dir)| (id == run_id).then_some(dir))
}

/// Every run's cgroup folder (`bgflow-RUN`) with its run id, from a walk of the cgroup
/// tree, at most 8 levels down; a run's folder is not entered (its leaves are no runs).
fn run_folders() -> Vec<(String, PathBuf)> {
    let mut found = Vec::new();
    let Some(mount) = cgroup2_mount() else {
        return found;
    };
    let mut level = vec![mount];
    for _ in 0..8 {
        let mut next = Vec::new();
        for dir in level {
            for e in fs::read_dir(&dir).into_iter().flatten().flatten() {
                if !e.file_type().is_ok_and(|t| t.is_dir()) {
                    continue;
                }
                match e
                    .file_name()
                    .to_str()
                    .and_then(|n| n.strip_prefix("bgflow-"))
                {
                    Some(id) => found.push((id.to_owned(), e.path())),
                    None => next.push(e.path()),
                }
            }
        }
        if next.is_empty() {
            break;
        }
        level = next;
    }
    found
}

/// `populated 1` in the folder's `cgroup.events`: a process in it or below it.
fn populated(dir: &Path) -> bool {
    fs::read_to_string(dir.join("cgroup.events"))
        .map(|t| t.lines().any(|l| l == "populated 1"))
        .unwrap_or(false)
}

/// Live processes in a cgroup folder and the folders below it.
fn cgroup_members(dir: &Path) -> Vec<u32> {
    let mut pids = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        if let Ok(text) = fs::read_to_string(d.join("cgroup.procs")) {
            pids.extend(
                text.lines()
                    .filter_map(|l| l.trim().parse::<u32>().ok())
                    .filter(|&p| alive(p)),
            );
        }
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                dirs.push(e.path());
            }
        }
    }
    pids
}

/// Whether `pid` is in the cgroup folder `dir` or below it.
fn in_cgroup(pid: u32, dir: &Path, mount: &Path) -> bool {
    let Ok(text) = fs::read_to_string(format!("/proc/{pid}/cgroup")) else {
        return false;
    };
    text.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .is_some_and(|path| mount.join(path.trim_start_matches('/')).starts_with(dir))
}

/// Removes a cgroup folder and the folders below it, deepest first, ending what is in
/// them.
fn remove_tree(dir: &Path) {
    let mut all = vec![dir.to_path_buf()];
    let mut i = 0;
    while i < all.len() {
        for e in fs::read_dir(&all[i]).into_iter().flatten().flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                all.push(e.path());
            }
        }
        i += 1;
    }
    if populated(dir) {
        let _ = fs::write(dir.join("cgroup.kill"), "1");
        let deadline = Instant::now() + Duration::from_secs(2);
        while populated(dir) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    for d in all.iter().rev() {
        let _ = fs::remove_dir(d);
    }
}

/// Not a zombie, and there.
fn alive(pid: u32) -> bool {
    proc_stat(pid).is_some_and(|(state, _)| state != 'Z' && state != 'X')
}

/// Live processes for which `pick(pid, pgid)` holds, from a scan of /proc.
fn scan_proc(pick: impl Fn(u32, u32) -> bool) -> Vec<u32> {
    let me = std::process::id();
    fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me)
        .filter(|&pid| {
            proc_stat(pid)
                .is_some_and(|(state, pgid)| state != 'Z' && state != 'X' && pick(pid, pgid))
        })
        .collect()
}

/// Whether the process's environment holds `BGFLOW_STEP_TOKEN=<token>` (or, with
/// `prefix`, a token starting with `token`).
fn has_token(pid: u32, token: &str, prefix: bool) -> bool {
    token_of(pid).is_some_and(|value| {
        if prefix {
            value.starts_with(token.as_bytes())
        } else {
            value == token.as_bytes()
        }
    })
}

/// The value of `BGFLOW_STEP_TOKEN` in the process's environment, if it has one.
fn token_of(pid: u32) -> Option<Vec<u8>> {
    let env = fs::read(format!("/proc/{pid}/environ")).ok()?;
    let key = TOKEN_VAR.as_bytes();
    env.split(|b| *b == 0)
        .find(|entry| entry.len() > key.len() && entry.starts_with(key) && entry[key.len()] == b'=')
        .map(|entry| entry[key.len() + 1..].to_vec())
}

/// The children of this process's main thread, where the kernel puts a subreaper's
/// orphans (the first live thread of its group: `find_new_reaper`); `None` where the
/// kernel keeps no such list (CONFIG_PROC_CHILDREN).
fn own_children() -> Option<Vec<u32>> {
    let me = std::process::id();
    let text = fs::read_to_string(format!("/proc/{me}/task/{me}/children")).ok()?;
    Some(
        text.split_whitespace()
            .filter_map(|p| p.parse::<u32>().ok())
            .collect(),
    )
}

/// Reaps `pid` if it is this process's exited child.
fn reap(pid: u32) {
    use nix::sys::wait::{waitpid, WaitPidFlag};
    if let Ok(raw) = i32::try_from(pid) {
        let _ = waitpid(Pid::from_raw(raw), Some(WaitPidFlag::WNOHANG));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_counts_and_lists_at_most_five() {
        let one = [Leftover {
            pid: 7,
            command: "sleep 600".into(),
        }];
        assert_eq!(
            describe("serve", &one),
            "1 process of step `serve` outlived it and was stopped: sleep 600 (pid 7)"
        );
        let many: Vec<Leftover> = (1..=7)
            .map(|pid| Leftover {
                pid,
                command: "x".into(),
            })
            .collect();
        let text = describe("s", &many);
        assert!(text.starts_with("7 processes of step `s` outlived it and were stopped"));
        assert!(text.ends_with(", and 2 more"), "{text}");
    }

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unescape_mount("/a\\040b\\134c"), "/a b\\c");
    }
}
