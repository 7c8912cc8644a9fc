//! A run's processes seen from outside its supervisor: what `stop` ends for a run whose
//! supervisor is gone, what a new run finds still writing for a lost one (the lock per tree),
//! and the run's cgroup folder a reader removes once nothing is left in it.

use std::fs;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{
    alive, cgroup2_mount, cgroup_members, find_run_cgroup, has_token, in_cgroup, remove_tree,
    scan_proc, token_of, Leftover,
};
use crate::exec::spawn;

/// What `stop` found and did for a run whose supervisor is gone.
#[derive(Debug, Default)]
pub struct Swept {
    /// Processes signalled, with their command lines.
    pub ended: Vec<Leftover>,
    /// Processes still alive after the last SIGKILL (should be none).
    pub survivors: Vec<u32>,
}

/// Every process of one run, seen from outside its supervisor (`stop`): in the run's cgroup
/// folder (`recorded` when it is that run's, else found by its name), or carrying one of
/// the run's tokens. The folder is found once.
pub struct RunProcesses {
    prefix: String,
    dir: Option<PathBuf>,
    mount: Option<PathBuf>,
}

impl RunProcesses {
    pub fn of(run_id: &str, recorded: Option<&Path>) -> Self {
        let dir = recorded_folder(run_id, recorded)
            .map(Path::to_path_buf)
            .or_else(|| find_run_cgroup(run_id));
        Self {
            prefix: format!("{run_id}."),
            dir,
            mount: cgroup2_mount(),
        }
    }

    /// The live processes of the run.
    pub fn list(&self) -> Vec<u32> {
        let mut pids = self.dir.as_deref().map(cgroup_members).unwrap_or_default();
        pids.extend(scan_proc(|pid, _| has_token(pid, &self.prefix, true)));
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    /// Whether `pid` is a live process of the run.
    pub fn owns(&self, pid: u32) -> bool {
        alive(pid)
            && (has_token(pid, &self.prefix, true)
                || match (&self.dir, &self.mount) {
                    (Some(dir), Some(mount)) => in_cgroup(pid, dir, mount),
                    _ => false,
                })
    }

    /// Removes the run's cgroup folder (and its leaves) when no live process is in it; for
    /// a run whose supervisor is gone, so that nothing starts there again.
    pub fn remove_if_empty(&self) {
        if let Some(dir) = self.dir.as_deref().filter(|d| cgroup_members(d).is_empty()) {
            remove_tree(dir);
        }
    }

    /// The run's processes, each held by a pidfd opened before it is checked again, so a
    /// number recycled meanwhile is never signalled.
    fn held(&self) -> Vec<(u32, OwnedFd)> {
        self.list()
            .into_iter()
            .filter_map(|pid| {
                let fd = spawn::pidfd_open(pid).ok()?;
                self.owns(pid).then_some((pid, fd))
            })
            .collect()
    }

    /// Ends every process of the run that its supervisor left behind. `grace`: between
    /// SIGTERM and SIGKILL (zero: SIGKILL at once).
    pub fn sweep(&self, grace: Duration) -> Swept {
        let find = || self.held();
        let dir = &self.dir;
        let mut swept = Swept::default();
        let first = find();
        swept.ended = first
            .iter()
            .map(|(pid, _)| Leftover {
                pid: *pid,
                command: crate::procfs::command_line(*pid),
            })
            .collect();
        if !grace.is_zero() {
            for (_, fd) in &first {
                let _ = spawn::pidfd_signal(fd.as_fd(), libc::SIGTERM);
            }
            let deadline = Instant::now() + grace;
            while !find().is_empty() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        if let Some(d) = &dir {
            let _ = fs::write(d.join("cgroup.kill"), "1");
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let left = find();
            for (_, fd) in &left {
                let _ = spawn::pidfd_signal(fd.as_fd(), libc::SIGKILL);
            }
            if left.is_empty() || Instant::now() >= deadline {
                swept.survivors = left.iter().map(|(p, _)| *p).collect();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if let Some(d) = &dir {
            remove_tree(d);
        }
        swept
    }
}

/// The cgroup folder recorded for run `run_id`, when it is that run's and still there.
fn recorded_folder<'a>(run_id: &str, recorded: Option<&'a Path>) -> Option<&'a Path> {
    let name = format!("bgflow-{run_id}");
    recorded
        .filter(|d| d.file_name() == Some(std::ffi::OsStr::new(&name)))
        .filter(|d| d.is_dir())
}

/// The live processes of each of `runs` (its id and the cgroup folder recorded for it), in
/// their order, with one scan of /proc for all of them: the members of each recorded folder
/// that is still there (one that is gone is not searched for), and every process carrying a
/// token of one of the runs.
pub fn live_of(runs: &[(&str, Option<&Path>)]) -> Vec<Vec<u32>> {
    let mut found: Vec<Vec<u32>> = runs
        .iter()
        .map(|(id, dir)| {
            recorded_folder(id, *dir)
                .map(cgroup_members)
                .unwrap_or_default()
        })
        .collect();
    if runs.is_empty() {
        return found;
    }
    for pid in scan_proc(|_, _| true) {
        let Some(token) = token_of(pid) else { continue };
        let run = token.split(|b| *b == b'.').next().unwrap_or_default();
        if let Some(i) = runs.iter().position(|(id, _)| id.as_bytes() == run) {
            found[i].push(pid);
        }
    }
    for pids in &mut found {
        pids.sort_unstable();
        pids.dedup();
    }
    found
}
