//! What a new run must pass before any step starts: a writable state folder with room
//! (`check_state_dir`), and admission by the history (`admit`: `limits.max_concurrent_runs`
//! and the lock per tree, DESIGN.md §7).

use std::path::Path;

use crate::exit;
use crate::store::admit::{overlap, Admission, Refusal};
use crate::store::{now_ms, NewRun, Store};

use super::Error;

/// The least free space the state folder's device must have for a run to start: the
/// history and the logs of a run need room, and a run that cannot write its history is
/// ended (guarantee 13). Documented in docs/background-runs.md.
pub const MIN_FREE_BYTES: u64 = 8 * 1024 * 1024;

/// Checks that `state_dir` (and its `runs/` folder) can be written and has at least
/// `MIN_FREE_BYTES` free; says what is wrong otherwise (exit 4, nothing ran).
pub fn check_state_dir(state_dir: &Path) -> Result<(), Error> {
    let fail = |what: String| {
        let help = if what.starts_with("has ") {
            "free some space on its device, or pass --state-dir DIR"
        } else {
            "make it writable, or pass --state-dir DIR (a folder bgflow can write)"
        };
        Error::new(
            exit::INTERNAL,
            format!(
                "error: the state folder {} {what}; nothing ran\n  help: {help}\n",
                state_dir.display()
            ),
        )
    };
    let runs = state_dir.join("runs");
    if let Err(e) = crate::store::ensure_private_dir(&runs) {
        return Err(fail(format!("cannot be written: {e}")));
    }
    for dir in [state_dir, runs.as_path()] {
        let probe = dir.join(format!(".bgflow-probe-{}", std::process::id()));
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&probe)
            .and_then(|mut f| std::io::Write::write_all(&mut f, b"probe"));
        let _ = std::fs::remove_file(&probe);
        if let Err(e) = written {
            return Err(fail(format!("cannot be written ({}: {e})", dir.display())));
        }
    }
    match crate::store::liveness::free_bytes(state_dir) {
        Some(free) if free < MIN_FREE_BYTES => Err(fail(format!(
            "has {} free on its device, less than the {} MiB a run needs",
            human_bytes(free),
            MIN_FREE_BYTES / (1024 * 1024)
        ))),
        _ => Ok(()),
    }
}

fn human_bytes(n: u64) -> String {
    if n >= 1024 * 1024 {
        format!("{:.1} MiB", n as f64 / (1024.0 * 1024.0))
    } else {
        format!("{} KiB", n / 1024)
    }
}

/// Admits the run in the history (inserting its row), or says why not: exit 3 when it is
/// refused, 4 when the history cannot be written.
pub fn admit(store: &mut Store, run: &NewRun, a: Admission, state_dir: &Path) -> Result<(), Error> {
    if a.check_lock {
        lost_writers(store, run, state_dir)?;
    }
    match store.admit(run, a) {
        Ok(None) => Ok(()),
        Ok(Some(Refusal::Limit { active, limit })) => {
            let ids: Vec<&str> = active.iter().map(|r| r.id.as_str()).collect();
            Err(Error::invalid(format!(
                "error: {} run(s) are active in {} ({}) and limits.max_concurrent_runs is {limit}; nothing ran\n  help: wait for one to end (bgflow{sd} status RUN --watch) or stop one ({})\n",
                active.len(),
                state_dir.display(),
                ids.join(", "),
                super::stop::command(Some(state_dir), "RUN"),
                sd = crate::report::state_dir_arg(Some(state_dir)),
            )))
        }
        Ok(Some(Refusal::Conflict {
            run: other,
            outputs,
        })) => {
            let pid = other
                .supervisor_pid
                .map_or_else(|| "supervisor starting".to_owned(), |p| format!("pid {p}"));
            let secs = (now_ms() - other.started_at.unwrap_or(other.created_at)).max(0) / 1000;
            // The same `--state-dir` in both commands: none when it is `./.bgflow`.
            let sd = crate::report::state_dir_arg(Some(state_dir));
            Err(Error::invalid(format!(
                "error: run {id} of `{wf}` ({pid}, started {secs}s ago) is active in {root} and writes the same outputs ({outs}); nothing ran\n  help: wait for it: bgflow{sd} status {id} --watch; stop it: {stop}; or pass --allow-concurrent\n",
                id = other.id,
                stop = super::stop::command(Some(state_dir), &other.id),
                wf = other.workflow,
                root = other.root,
                outs = outputs.join(", "),
            )))
        }
        Err(e) => Err(Error::internal(format!(
            "error: cannot record the run: {e}\n"
        ))),
    }
}

/// Processes of a run this history does not know (its record deleted with the state
/// folder while its steps ran on) in a cgroup folder marked with this state folder: what
/// they write cannot be told, so a run that takes the lock is refused while they run.
fn unrecorded_writers(store: &Store, state_dir: &Path) -> Result<(), Error> {
    let Some(m) = super::cleanup::unrecorded(store).into_iter().next() else {
        return Ok(());
    };
    let processes = m.processes();
    let what = crate::exec::contain::listing(processes.iter().map(|p| p.named()));
    Err(Error::invalid(format!(
        "error: processes of run {id}, which the history in {sd} does not know (was the state folder deleted while they ran?), still run in {dir}: {what}; nothing ran\n  help: end them: bgflow{arg} cleanup --orphans; or pass --allow-concurrent\n",
        id = m.run_id,
        sd = state_dir.display(),
        dir = m.dir.display(),
        arg = crate::report::state_dir_arg(Some(state_dir)),
    )))
}

/// A lost run (its supervisor gone) whose processes still run in the same root, with
/// outputs that overlap, holds the lock as a live run does (guarantee 11): the steps of a
/// killed supervisor write on, and a new run beside them would write the same files. Its
/// lock goes with its last process, so a crashed run still leaves no stale lock.
fn lost_writers(store: &mut Store, run: &NewRun, state_dir: &Path) -> Result<(), Error> {
    let Some(mine) = &run.outputs else {
        return Ok(());
    };
    unrecorded_writers(store, state_dir)?;
    let mut lost = super::reconcile(store);
    let root = run.root.display().to_string();
    // The outputs of this run that lost run `r` may still write.
    let common_of = |r: &crate::store::RunRow| -> Vec<String> {
        let Some(lock) = r.lock.as_ref() else {
            return Vec::new();
        };
        mine.iter()
            .filter(|m| lock.outputs.iter().any(|o| overlap(m, o)))
            .cloned()
            .collect()
    };
    lost.retain(|r| r.root == root && !common_of(r).is_empty());
    if lost.is_empty() {
        return Ok(());
    }
    // What they still run, as `status` finds it: one scan of /proc for all of them.
    super::status::fill_still_running(&mut lost);
    let refuse = |other: &crate::store::RunRow, what: String| {
        Error::invalid(format!(
            "error: run {id} of `{wf}` is lost (its supervisor is gone), but it may still write the same outputs in {root} ({outs}): {what}; nothing ran\n  help: end them: {stop}; or pass --allow-concurrent\n",
            id = other.id,
            stop = super::stop::command(Some(state_dir), &other.id),
            wf = other.workflow,
            outs = common_of(other).join(", "),
        ))
    };
    if let Some((other, note)) = lost
        .iter()
        .find_map(|r| super::status::still_running_note(r).map(|n| (r, n)))
    {
        return Err(refuse(other, note));
    }
    // A Slurm step's job runs on without its supervisor too: `squeue` for each holder that
    // submitted jobs (rare: a lost run of the same outputs in the same tree). Whether its
    // jobs still run cannot be told: refused, as a live holder is.
    for other in &mut lost {
        // A history that cannot be read here is read again by the run's own writes.
        let _ = super::status::ask_slurm_of(store, other);
        if let Some(note) = super::status::slurm_jobs_note(other) {
            return Err(refuse(other, note));
        }
    }
    Ok(())
}
