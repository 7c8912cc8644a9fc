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

use super::{cgroup_members, run_folders, Leftover};

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

impl Marked {
    /// Its processes, each with its command line.
    pub fn processes(&self) -> Vec<Leftover> {
        (self.pids.iter())
            .map(|&pid| Leftover {
                pid,
                command: crate::procfs::command_line(pid),
            })
            .collect()
    }
}

/// The run cgroup folders marked with `state_dir` that still hold a live process.
pub fn live_in(state_dir: &Path) -> Vec<Marked> {
    let state = fs::canonicalize(state_dir).unwrap_or_else(|_| state_dir.to_path_buf());
    run_folders()
        .into_iter()
        .filter(|(_, dir)| marked_with(dir).as_deref() == Some(state.as_path()))
        .filter_map(|(run_id, dir)| {
            let pids = cgroup_members(&dir);
            (!pids.is_empty()).then_some(Marked { run_id, dir, pids })
        })
        .collect()
}
