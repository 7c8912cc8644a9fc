//! A run's cgroup folder carries the state folder whose history records the run, as the
//! extended attribute `user.bgflow.state`. So the processes of a run whose record is gone
//! (the state folder deleted, `rm -r .bgflow`, while the steps of a lost run ran on) are
//! still found: a new run of that state folder is refused while they run (guarantee 11,
//! `runs::guard`), and `bgflow cleanup --orphans` ends them. A file system without user
//! extended attributes leaves the folder unmarked, as a run in process-group containment
//! has no folder: those are found through the history only.

use std::ffi::{CStr, CString, OsString};
use std::fs;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use super::{cgroup2_mount, cgroup_members};

const STATE_XATTR: &CStr = c"user.bgflow.state";

/// Marks `dir`, a run's cgroup folder, as recorded in the history of `state_dir`; best
/// effort (a folder left unmarked is found through the history only).
#[allow(unsafe_code)]
pub(super) fn mark(dir: &Path, state_dir: &Path) {
    let state = fs::canonicalize(state_dir).unwrap_or_else(|_| state_dir.to_path_buf());
    let Ok(path) = CString::new(dir.as_os_str().as_bytes()) else {
        return;
    };
    let value = state.as_os_str().as_bytes();
    // SAFETY: a plain system call on NUL-terminated strings and a byte slice that live
    // across it.
    unsafe {
        libc::setxattr(
            path.as_ptr(),
            STATE_XATTR.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        );
    }
}

/// The state folder `dir` is marked with, if any.
#[allow(unsafe_code)]
fn marked_with(dir: &Path) -> Option<PathBuf> {
    let path = CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut buf = vec![0u8; 4096];
    // SAFETY: a plain system call writing at most `buf.len()` bytes into `buf`.
    let n = unsafe {
        libc::getxattr(
            path.as_ptr(),
            STATE_XATTR.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    buf.truncate(usize::try_from(n).ok()?);
    Some(PathBuf::from(OsString::from_vec(buf)))
}

/// A run's cgroup folder marked with a state folder, and the live processes in it.
#[derive(Debug)]
pub struct Marked {
    pub run_id: String,
    pub dir: PathBuf,
    pub pids: Vec<u32>,
}

/// The run cgroup folders (`bgflow-RUN`) marked with `state_dir` that still hold a live
/// process, from a walk of the cgroup tree (at most 8 levels down; a run's own folder is
/// not entered, its leaves are no runs).
pub fn live_in(state_dir: &Path) -> Vec<Marked> {
    let Some(mount) = cgroup2_mount() else {
        return Vec::new();
    };
    let state = fs::canonicalize(state_dir).unwrap_or_else(|_| state_dir.to_path_buf());
    let mut found = Vec::new();
    let mut level = vec![mount];
    for _ in 0..8 {
        let mut next = Vec::new();
        for dir in level {
            for e in fs::read_dir(&dir).into_iter().flatten().flatten() {
                if !e.file_type().is_ok_and(|t| t.is_dir()) {
                    continue;
                }
                let name = e.file_name();
                let Some(run_id) = name.to_str().and_then(|n| n.strip_prefix("bgflow-")) else {
                    next.push(e.path());
                    continue;
                };
                let dir = e.path();
                if marked_with(&dir).as_deref() != Some(state.as_path()) {
                    continue;
                }
                let pids = cgroup_members(&dir);
                if !pids.is_empty() {
                    let run_id = run_id.to_owned();
                    found.push(Marked { run_id, dir, pids });
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
