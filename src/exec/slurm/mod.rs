//! The Slurm executor: each attempt of a step is one batch job (docs/slurm.md).
//!
//! The supervisor submits an attempt when its step is ready (no `--dependency` chains) with
//! one `sbatch --parsable` whose arguments are an argv, never a shell string: the job
//! script (`JOB_SCRIPT`, written once into the run folder) gets the exit file and the
//! step's argv as its own arguments. The job's output goes to the step's log, so following
//! it, `fail_on`, `progress` and the failure report work as for a local step. The job
//! script runs the step in its own process group, passes TERM on to the group and writes
//! the step's exit status to a file: that file is the truth about the exit; Slurm's state
//! (TIMEOUT, OUT_OF_MEMORY, NODE_FAIL, CANCELLED…) names a cause the step did not choose.
//!
//! Status: one `squeue` per poll for the whole run (every job of a run has the name
//! `bgflow-<run id>`), however many jobs it has; `sacct` (or `sacct --completion`) only for
//! a job that left the queue without an exit file. `Cluster` owns that loop; attempts
//! wait for its polls (`subscribe`).

mod job;
mod query;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

pub(crate) use job::attempt;
pub use job::EXIT_GRACE;
pub use query::{cancel_run, jobs_left, JOB_STATES_ACTIVE};

use crate::validate::slurm::Settings;

/// How a Slurm job ended when its exit status alone does not say it all.
#[derive(Debug, Clone)]
pub struct Ended {
    pub job: String,
    /// Slurm's state (`TIMEOUT`, `OUT_OF_MEMORY`, `NODE_FAIL`, …), or what was last seen.
    pub state: String,
    /// Slurm's reason, or how the end was found.
    pub reason: Option<String>,
    /// The step's exit status, when the job script wrote it.
    pub status: Option<std::process::ExitStatus>,
}

/// What the last poll knows of one job.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobView {
    /// `PENDING`, `RUNNING`, `COMPLETED`, … (`None`: not seen by a poll yet).
    pub state: Option<String>,
    /// Slurm's reason (`Priority`, `Resources`, `TimeLimit`, …), without `None`.
    pub reason: Option<String>,
    /// A poll that started after the submission did not list it: it left the queue.
    pub gone: bool,
}

impl JobView {
    /// The job ended, or left the queue.
    pub fn ended(&self) -> bool {
        self.gone || self.state.as_deref().is_some_and(query::is_final)
    }

    /// `PENDING (Priority)`, `RUNNING`, as `status` shows it.
    pub fn describe(&self) -> String {
        match (&self.state, &self.reason) {
            (Some(s), Some(r)) => format!("{s} ({r})"),
            (Some(s), None) => s.clone(),
            (None, _) => "SUBMITTED".to_owned(),
        }
    }
}

struct Tracked {
    view: JobView,
    submitted: Instant,
}

/// The run's Slurm jobs: where their files go, and the one loop that polls them.
pub struct Cluster {
    settings: Settings,
    /// `bgflow-<run id>`: the name of every job of the run.
    tag: String,
    /// The run's `slurm/` folder: the job script and the exit files.
    dir: PathBuf,
    script: PathBuf,
    jobs: Mutex<HashMap<String, Tracked>>,
    polls: watch::Sender<u64>,
    /// The error of the last poll and how many polls in a row failed (0: the last worked).
    failing: Mutex<(u32, String)>,
    /// Steps with a submission whose job id never came (`sbatch` failed or was killed):
    /// Slurm may have taken the job all the same, so the run's end looks for it (`sweep`).
    unsure: Mutex<Vec<String>>,
}

/// After this many failed polls in a row, each running Slurm step warns once.
pub const POLL_FAILURES_WARNED: u32 = 3;

/// The job script. It holds no value of the workflow: the exit file and the step's argv
/// are its arguments (`sbatch SCRIPT EXIT_FILE ARGV...`). The step stays in the script's
/// process group (Slurm makes the batch script a group leader), so that Slurm's process
/// tracking still finds it if the script dies; TERM, INT or USR2 to the script (`scancel
/// --full`, the job's time limit) goes to the whole group, once. bash, not sh: dash's
/// `kill` cannot signal a process group.
///
/// A trapped signal cuts the script's `wait` short with 128+N; the step's own status then comes from waiting again, which
/// bash answers from the status it kept if the step has ended meanwhile. (Asking `kill
/// -0` whether the step still ran, as the script did before, lost that status whenever
/// bash had reaped the step first: a step whose TERM trap exited 7 was reported killed by
/// SIGTERM.)
pub const JOB_SCRIPT: &str = r#"#!/bin/bash
# Written by bgflow: one attempt of a step as a Slurm batch job (docs/slurm.md).
# $1: the file that receives the step's exit status; the other arguments: the step's argv.
# The step runs in this script's process group; TERM, INT or USR2 to this script goes to
# the whole group. The status is written to a temporary file and renamed, so that it is
# never read half written.
exit_file=$1
shift
"$@" </dev/null &
child=$!
trapped=
trap 'trapped=1; trap "" TERM INT USR2; kill -TERM 0 2>/dev/null' TERM INT USR2
wait "$child"
status=$?
if [ -n "$trapped" ] && [ "$status" -gt 128 ]; then
    # The trap cut the wait short: wait again for the step's own status (127: the first
    # wait had it after all).
    wait "$child"
    again=$?
    [ "$again" -eq 127 ] || status=$again
fi
printf '%s\n' "$status" > "$exit_file.tmp" && mv -f "$exit_file.tmp" "$exit_file"
exit "$status"
"#;

/// The job name of every job of run `run_id`.
pub fn tag(run_id: &str) -> String {
    format!("bgflow-{run_id}")
}

impl Cluster {
    /// The run's cluster: writes the job script into `log_dir/slurm/` and starts the poll
    /// loop on the current runtime (it ends with the last `Arc`).
    pub fn start(run_id: &str, log_dir: &Path, settings: Settings) -> std::io::Result<Arc<Self>> {
        use std::os::unix::fs::PermissionsExt;
        let dir = log_dir.join("slurm");
        crate::layout::ensure_private_dir(&dir)?;
        let script = dir.join("job.sh");
        std::fs::write(&script, JOB_SCRIPT)?;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700))?;
        let cluster = Arc::new(Self {
            settings,
            tag: tag(run_id),
            dir,
            script,
            jobs: Mutex::new(HashMap::new()),
            polls: watch::Sender::new(0),
            failing: Mutex::new((0, String::new())),
            unsure: Mutex::new(Vec::new()),
        });
        tokio::spawn(poll_loop(Arc::downgrade(&cluster)));
        Ok(cluster)
    }

    /// The run's Slurm cluster, when a step runs on Slurm. When its job script cannot be
    /// written, each Slurm step fails as it starts (`executor::run_attempt`): it never runs
    /// locally instead.
    pub fn for_run(
        wf: &crate::validate::Workflow,
        run_id: &str,
        log_dir: &Path,
    ) -> Option<Arc<Self>> {
        if !wf.steps.iter().any(|s| s.slurm().is_some()) {
            return None;
        }
        let settings = wf.slurm.clone().unwrap_or_else(|| {
            crate::validate::slurm::Settings::merged(wf.slurm_section.as_ref(), None)
        });
        Self::start(run_id, log_dir, settings).ok()
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The exit file of an attempt.
    fn exit_file(&self, step: &str, attempt: u32) -> PathBuf {
        self.dir.join(format!(
            "{}.{attempt}.exit",
            crate::file_name::step_file_name(step)
        ))
    }

    fn track(&self, job: &str) {
        self.lock().insert(
            job.to_owned(),
            Tracked {
                view: JobView::default(),
                submitted: Instant::now(),
            },
        );
    }

    fn forget(&self, job: &str) {
        self.lock().remove(job);
    }

    /// Whether an attempt of the run follows `job`.
    fn follows(&self, job: &str) -> bool {
        self.lock().contains_key(job)
    }

    /// Notes that a submission of `step` ended without a job id.
    fn unsure_of(&self, step: &str) {
        let mut unsure = self
            .unsure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !unsure.iter().any(|s| s == step) {
            unsure.push(step.to_owned());
        }
    }

    /// The queued or running jobs of `step` (the run's job name, the step's comment) that
    /// no attempt follows: Slurm took them although their `sbatch` gave no job id. Looked
    /// for every half second until one shows or `until` passes (once, if it has passed: a
    /// controller that comes back may record the job after answering a first look).
    /// `Err`: none showed and the last look failed.
    pub(super) async fn unfollowed(
        &self,
        step: &str,
        until: Instant,
    ) -> Result<Vec<String>, String> {
        loop {
            let looked = query::active_jobs_of_step(&self.tag, step)
                .await
                .map(|jobs| {
                    jobs.into_iter()
                        .filter(|j| !self.follows(j))
                        .collect::<Vec<_>>()
                });
            if matches!(&looked, Ok(jobs) if !jobs.is_empty()) || Instant::now() >= until {
                return looked;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// At the run's end: a job of a step whose submission ended without a job id runs on
    /// with nothing to follow it. Such jobs are looked for (`unfollowed`, for up to
    /// `query::ask_limit()` in all) and cancelled. Returns, per step, the warning to give
    /// it: the job cancelled, or that none was found or none could be looked for, with the
    /// `squeue` to look with.
    pub async fn sweep(&self) -> Vec<(String, String)> {
        let unsure = std::mem::take(
            &mut *self
                .unsure
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        let until = Instant::now() + query::ask_limit();
        let mut warnings = Vec::new();
        for step in unsure {
            let what = match self.unfollowed(&step, until).await {
                Ok(jobs) if !jobs.is_empty() => {
                    for job in jobs {
                        query::scancel(&job, &[]).await;
                        warnings.push((
                            step.clone(),
                            format!("Slurm job {job} of step `{step}` was queued although its `sbatch` gave no job id; cancelled at the end of the run"),
                        ));
                    }
                    continue;
                }
                Ok(_) => format!(
                    "Slurm listed no job of it within {} s, but a controller that answers late may still record one",
                    query::ask_limit().as_secs_f64()
                ),
                Err(e) => format!("whether Slurm took the job cannot be told ({e})"),
            };
            warnings.push((
                step.clone(),
                format!("a `sbatch` of step `{step}` gave no job id, and {what}; look with squeue --name={}", self.tag),
            ));
        }
        warnings
    }

    /// What the last poll knows of `job`.
    fn view(&self, job: &str) -> JobView {
        self.lock()
            .get(job)
            .map(|t| t.view.clone())
            .unwrap_or_default()
    }

    /// A receiver that changes after each poll.
    fn subscribe(&self) -> watch::Receiver<u64> {
        self.polls.subscribe()
    }

    /// Why the last `POLL_FAILURES_WARNED` or more polls failed, if they did.
    fn failing(&self) -> Option<String> {
        let f = self.failing_lock();
        (f.0 >= POLL_FAILURES_WARNED)
            .then(|| format!("{} status polls in a row failed: {}", f.0, f.1))
    }

    fn failing_lock(&self) -> std::sync::MutexGuard<'_, (u32, String)> {
        self.failing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Tracked>> {
        self.jobs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// One poll: one `squeue` for every job of the run.
    async fn poll(&self) {
        if self.lock().is_empty() {
            return;
        }
        let asked = Instant::now();
        let listed = match query::squeue(&self.tag).await {
            Ok(listed) => {
                self.failing_lock().0 = 0;
                listed
            }
            Err(e) => {
                // The controller did not answer: what is known stays as it was, and the
                // steps are told once it has gone on for a while (`failing`).
                let mut failing = self.failing_lock();
                failing.0 += 1;
                failing.1 = e;
                drop(failing);
                self.polls.send_modify(|n| *n += 1);
                return;
            }
        };
        let mut jobs = self.lock();
        for (id, t) in jobs.iter_mut() {
            match listed.get(id) {
                Some(view) => t.view = view.clone(),
                None if t.submitted < asked => t.view.gone = true,
                None => {}
            }
        }
        drop(jobs);
        self.polls.send_modify(|n| *n += 1);
    }
}

async fn poll_loop(cluster: Weak<Cluster>) {
    loop {
        let every = match cluster.upgrade() {
            Some(c) => c.settings.poll(),
            None => return,
        };
        tokio::time::sleep(every.max(Duration::from_millis(50))).await;
        match cluster.upgrade() {
            Some(c) => c.poll().await,
            None => return,
        }
    }
}

#[cfg(test)]
#[path = "script_tests.rs"]
mod script_tests;
