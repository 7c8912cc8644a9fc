//! Removing what finished runs left: their records and log folders (`cleanup`, and the
//! retention after each run), and run folders the history does not know.

use std::path::PathBuf;

use crate::store::{now_ms, RunRow, Store, StoreError};

use super::Error;

/// What `remove_old` removed (or, with `dry_run`, would remove), and what it kept.
#[derive(Debug, Default)]
pub struct Removed {
    pub runs: Vec<RunRow>,
    /// Lost runs old enough but with processes still running (their supervisor was killed
    /// and their steps run on; `still_running` names them), or with Slurm jobs that `squeue`
    /// lists as queued or running (`slurm_jobs_left`): kept, so that `stop` can still find
    /// and end them, and their lock holds.
    pub kept: Vec<RunRow>,
}

/// Removes the records and log folders of finished runs in `states` older than `age`;
/// never an active run, nor a lost one whose processes or Slurm jobs still run.
pub fn remove_old(
    store: &mut Store,
    age: crate::manifest::Duration,
    states: &[&str],
    dry_run: bool,
) -> Result<Removed, StoreError> {
    let runs = store.runs(states, usize::MAX >> 1)?;
    let cutoff = now_ms() - i64::try_from(age.as_std().as_millis()).unwrap_or(i64::MAX);
    let mut old: Vec<RunRow> = runs
        .into_iter()
        .filter(|r| !r.is_active() && r.finished_at.unwrap_or(r.created_at) <= cutoff)
        .collect();
    super::status::fill_still_running(&mut old);
    for r in old.iter_mut().filter(|r| r.still_running.is_empty()) {
        super::status::ask_slurm_of(store, r)?;
    }
    // A run whose jobs `squeue` cannot tell of goes all the same: a retention that waited on
    // a cluster no longer there would keep it for ever.
    let (kept, runs) = old.into_iter().partition(RunRow::is_left_running);
    let out = Removed { runs, kept };
    if !dry_run {
        for r in &out.runs {
            let _ = std::fs::remove_dir_all(&r.log_dir);
            store.delete_run(&r.id)?;
        }
    }
    Ok(out)
}

/// The processes of a run the history does not know, in a cgroup folder marked with this
/// state folder (`exec::contain::marked`): what `end_unrecorded` ended (or, with
/// `dry_run`, would end).
#[derive(Debug)]
pub struct UnrecordedRun {
    pub run_id: String,
    pub dir: PathBuf,
    /// Each process, with its command line.
    pub processes: Vec<crate::exec::contain::Leftover>,
    /// Processes still alive after the last SIGKILL (should be none).
    pub survivors: Vec<u32>,
}

/// Ends (with `dry_run`, only lists) the processes of runs this history does not know that
/// still run in a cgroup folder marked with its state folder: the steps of a lost run whose
/// record was deleted with the history. SIGTERM, then SIGKILL after a second; their folders
/// go with them.
pub fn end_unrecorded(store: &Store, dry_run: bool) -> Vec<UnrecordedRun> {
    unrecorded(store)
        .into_iter()
        .map(|m| {
            let (processes, survivors) = if dry_run {
                (m.processes(), Vec::new())
            } else {
                let run = crate::exec::contain::RunProcesses::of(&m.run_id, Some(&m.dir));
                let swept = run.sweep(std::time::Duration::from_secs(1));
                (swept.ended, swept.survivors)
            };
            UnrecordedRun {
                run_id: m.run_id,
                dir: m.dir,
                processes,
                survivors,
            }
        })
        .collect()
}

/// The marked cgroup folders of this state folder, with live processes, whose run the
/// history does not know.
pub(super) fn unrecorded(store: &Store) -> Vec<crate::exec::contain::marked::Marked> {
    let mut found = crate::exec::contain::marked::live_in(store.state_dir());
    found.retain(|m| matches!(store.run_stored(&m.run_id), Ok(None)));
    found
}

/// What `remove_orphans` did with one folder.
#[derive(Debug)]
pub struct Orphan {
    pub path: PathBuf,
    /// Why it could not be removed.
    pub error: Option<std::io::Error>,
}

/// Removes (with `dry_run`, only lists) the folders of runs/ that the history does not
/// know and that are older than `status::ORPHAN_MIN_AGE`.
pub fn remove_orphans(store: &Store, dry_run: bool) -> Result<Vec<Orphan>, Error> {
    let orphans = store
        .orphans(super::status::ORPHAN_MIN_AGE)
        .map_err(|e| super::internal(&e))?;
    let runs = store.state_dir().join("runs");
    Ok(orphans
        .iter()
        .map(|name| {
            let path = runs.join(name);
            let error = if dry_run {
                None
            } else {
                std::fs::remove_dir_all(&path).err()
            };
            Orphan { path, error }
        })
        .collect())
}
