//! Reading runs: one run with its steps (`status`), the active runs, the list, and waiting
//! for a run to end (`wait`). Synchronous: they read the store, which reconciles runs whose
//! supervisor is gone as they are read.

use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::exec::contain;
use crate::store::{Process, RunRow, StepRow, Store};

use super::Error;

/// A run and its steps, as `status --json` shows them (without `version`).
#[derive(Debug, Clone, Serialize)]
pub struct RunView {
    pub run: RunRow,
    pub steps: Vec<StepRow>,
}

impl RunView {
    /// Whether the run may still change (pending, running, unresponsive).
    pub fn is_active(&self) -> bool {
        self.run.is_active()
    }
}

/// The runs `list` shows, and the run folders the history does not know.
#[derive(Debug, Clone, Serialize)]
pub struct RunList {
    pub runs: Vec<RunRow>,
    pub orphans: Vec<String>,
}

/// A folder in runs/ younger than this may belong to a foreground run whose row is not
/// written yet: never reported nor removed as an orphan.
pub const ORPHAN_MIN_AGE: Duration = Duration::from_secs(60);

/// The states a run is active in.
pub const ACTIVE: [&str; 3] = ["pending", "running", "unresponsive"];

/// One run (by id or unique prefix) with its steps.
pub fn status(store: &Store, prefix: &str) -> Result<RunView, Error> {
    let id = super::resolve(store, prefix)?;
    view(store, &id)
}

/// One run (by id or unique prefix) with its steps as the history holds them, without
/// what is found as a run is read (`still_running`, `slurm_jobs_left`): for a reader that
/// polls for changes of state (the MCP server's subscriptions) and must not scan /proc or
/// ask `squeue` each time.
pub fn stored(store: &Store, prefix: &str) -> Result<RunView, Error> {
    read(store, &super::resolve(store, prefix)?)
}

/// One run, by its full id, with its steps, as the history holds them.
fn read(store: &Store, id: &str) -> Result<RunView, Error> {
    let (run, steps) = store
        .run_with_steps(id)
        .map_err(|e| super::internal(&e))?
        .ok_or_else(|| Error::internal("error: cannot write output: run vanished\n"))?;
    Ok(RunView { run, steps })
}

/// One run, by its full id, with its steps.
pub fn view(store: &Store, id: &str) -> Result<RunView, Error> {
    let RunView { mut run, steps } = read(store, id)?;
    fill_still_running(std::slice::from_mut(&mut run));
    fill_slurm_jobs_left(&mut run, &steps);
    Ok(RunView { run, steps })
}

/// `fill_slurm_jobs_left` for a run read without its steps: they are read only for a lost
/// run.
pub(crate) fn ask_slurm_of(
    store: &Store,
    run: &mut RunRow,
) -> Result<(), crate::store::StoreError> {
    if run.state == "lost" {
        let steps = store.steps(&run.id)?;
        fill_slurm_jobs_left(run, &steps);
    }
    Ok(())
}

/// Fills in which of a `lost` run's Slurm jobs are still queued or running: its supervisor
/// is gone, but its jobs run on in the cluster. One `squeue` call, made only for a lost run
/// with a step that was on Slurm when its supervisor went; none for any other run.
fn fill_slurm_jobs_left(run: &mut RunRow, steps: &[StepRow]) {
    let on_slurm = steps
        .iter()
        .any(|s| s.job_id.is_some() && s.state == "lost");
    if run.state != "lost" || !on_slurm {
        return;
    }
    match crate::exec::slurm::jobs_left(&run.id) {
        Ok(jobs) => run.slurm_jobs_left = jobs,
        Err(e) => run.slurm_jobs_unknown = Some(e),
    }
}

/// What a `lost` run's Slurm jobs still do, for people: `None` when nothing is known to run.
pub fn slurm_jobs_note(run: &RunRow) -> Option<String> {
    if let Some(e) = &run.slurm_jobs_unknown {
        return Some(format!(
            "whether its Slurm jobs still run cannot be told (`squeue`: {e}); they may still run"
        ));
    }
    let jobs = &run.slurm_jobs_left;
    if jobs.is_empty() {
        return None;
    }
    Some(format!(
        "{n} of its Slurm jobs {are} still queued or running ({})",
        jobs.join(", "),
        n = jobs.len(),
        are = if jobs.len() == 1 { "is" } else { "are" }
    ))
}

/// What a `lost` run still runs, on this machine and on Slurm: `None` when nothing is known
/// to (a run that is not lost, or whose steps are all gone).
pub fn left_running_note(run: &RunRow) -> Option<String> {
    match (still_running_note(run), slurm_jobs_note(run)) {
        (Some(here), Some(there)) => Some(format!("{here}; {there}")),
        (here, there) => here.or(there),
    }
}

/// What a `lost` run still runs, for people: `None` when nothing (or not lost).
pub fn still_running_note(run: &RunRow) -> Option<String> {
    let left = &run.still_running;
    if left.is_empty() {
        return None;
    }
    let n = left.len();
    Some(format!(
        "{n} of its processes still run{s}: {}",
        contain::listing(left.iter().map(|p| (p.pid, p.command.as_str()))),
        s = if n == 1 { "s" } else { "" },
    ))
}

/// Fills in what each `lost` run still runs: its supervisor is gone, but its steps'
/// processes may not be, and a run shown `lost` while they write on would be the silent
/// failure bgflow exists to prevent. One scan of /proc for all of them; nothing for a page
/// without a lost run. Every reader that names them (`status`, `list`, `cleanup`, the lock
/// per tree) fills them here.
pub(crate) fn fill_still_running(runs: &mut [RunRow]) {
    let lost: Vec<usize> = (0..runs.len())
        .filter(|&i| runs[i].state == "lost")
        .collect();
    if lost.is_empty() {
        return;
    }
    let keys: Vec<(&str, Option<&std::path::Path>)> = lost
        .iter()
        .map(|&i| {
            let r = &runs[i];
            (r.id.as_str(), r.cgroup.as_deref().map(std::path::Path::new))
        })
        .collect();
    let live = contain::live_of(&keys);
    for (i, pids) in lost.into_iter().zip(live) {
        runs[i].still_running = pids
            .into_iter()
            .map(|pid| Process {
                pid,
                command: crate::procfs::command_line(pid),
            })
            .collect();
    }
}

/// The active runs, newest first (at most 1,000).
pub fn active(store: &Store) -> Result<Vec<RunRow>, Error> {
    store.runs(&ACTIVE, 1000).map_err(|e| super::internal(&e))
}

/// The lost runs whose processes still run (newest first, of the last 1,000 lost): not
/// active, yet not over either.
pub fn lost_but_running(store: &Store) -> Result<Vec<RunRow>, Error> {
    let mut lost = store
        .runs(&["lost"], 1000)
        .map_err(|e| super::internal(&e))?;
    fill_still_running(&mut lost);
    lost.retain(|r| !r.still_running.is_empty());
    Ok(lost)
}

/// Runs newest first, at most `limit`, only in `state` if given (`all`: every state).
pub fn list(store: &Store, state: Option<&str>, limit: usize) -> Result<RunList, Error> {
    let states: Vec<&str> = match state {
        None | Some("all") => Vec::new(),
        Some(s) => vec![s],
    };
    let mut runs = store
        .runs(&states, limit)
        .map_err(|e| super::internal(&e))?;
    fill_still_running(&mut runs);
    let orphans = store.orphans(ORPHAN_MIN_AGE).unwrap_or_default();
    Ok(RunList { runs, orphans })
}

/// A page of the runs, newest first: as `list --json` shows them, `offset` runs in.
#[derive(Debug, Clone, Serialize)]
pub struct RunPage {
    pub runs: Vec<RunRow>,
    pub orphans: Vec<String>,
    /// Where this page starts, and whether more runs follow it.
    pub offset: usize,
    pub more: bool,
}

/// At most `limit` runs after the first `offset` (newest first), only in `state` if given.
/// A page reads `offset + limit + 1` rows: the first pages are what is cheap.
pub fn page(
    store: &Store,
    state: Option<&str>,
    offset: usize,
    limit: usize,
) -> Result<RunPage, Error> {
    let mut all = list(store, state, offset.saturating_add(limit).saturating_add(1))?;
    let more = all.runs.len() > offset.saturating_add(limit);
    let runs: Vec<RunRow> = all.runs.drain(..).skip(offset).take(limit).collect();
    Ok(RunPage {
        runs,
        orphans: all.orphans,
        offset,
        more,
    })
}

/// Waits for run `id` (a full id) to end, reading it every `every`, and hands each reading
/// to `each` (which may stop the wait with `Break`). Returns the last reading: the ended
/// run, or its state when `timeout` passed or `each` stopped it.
///
/// A reading costs a read of the run and its steps only when the history changed since the
/// last one (SQLite's `data_version`: a supervisor committed), and at least once a second
/// anyway, since a run's liveness moves with the clock; otherwise the previous reading is
/// handed on. Lost or unresponsive supervisors are reconciled at most once a second.
pub fn wait(
    store: &mut Store,
    id: &str,
    timeout: Option<Duration>,
    every: Duration,
    each: &mut dyn FnMut(&RunView) -> ControlFlow<()>,
) -> Result<RunView, Error> {
    const READ_ANYWAY: Duration = Duration::from_secs(1);
    let deadline = timeout.map(|t| Instant::now() + t);
    // The last reading, the `data_version` it was made at and when.
    let mut last: Option<(RunView, Option<i64>, Instant)> = None;
    loop {
        let version = store.data_version().ok();
        let reading = match last.take() {
            Some((v, seen, at))
                if version.is_some() && seen == version && at.elapsed() < READ_ANYWAY =>
            {
                (v, seen, at)
            }
            _ => {
                super::reconcile(store);
                (view(store, id)?, version, Instant::now())
            }
        };
        let now = &reading.0;
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        if each(now).is_break() || !now.is_active() || left == Some(Duration::ZERO) {
            return Ok(reading.0);
        }
        std::thread::sleep(left.map_or(every, |l| l.min(every)));
        last = Some(reading);
    }
}
