//! The executor interface: where one attempt of a step runs.
//!
//! The scheduler (`exec::execute`) starts a task per ready step (`step::run`); that task
//! owns what is the same wherever a step runs — retries and their delays, JUnit reports,
//! the fingerprint, judging the end (`step::judge`) — and hands each attempt to an
//! executor through `run_attempt`. An executor sends the same messages back (`Msg::Started`
//! with a local process, `Msg::Job` with a Slurm job, then progress, output lines and
//! warnings) and returns how the attempt ended as an `End` (exit status, signal, timeout,
//! stall, cancel, or a Slurm job that ended without a status), with what its output showed.
//! The store, the reports, retries, fail-fast, timeouts, up-to-date checks, `resume` and
//! JUnit see only those, never which executor ran the step.
//!
//! Executors: `local` (a process group or cgroup leaf on this machine) and `slurm` (one
//! batch job per attempt, docs/slurm.md).

use std::path::Path;

use tokio::sync::{mpsc, watch};

use super::step::{self, Ctx, End};
use super::tail::Seen;
use super::{local, slurm, Msg, Stop};

/// One attempt of one step, as the step's task hands it to an executor.
pub(crate) struct Attempt<'a> {
    pub ctx: &'a Ctx,
    pub index: usize,
    /// 1 for the first attempt.
    pub attempt: u32,
    pub attempts: u32,
    pub log_path: &'a Path,
    pub progress_path: &'a Path,
    pub tx: &'a mpsc::UnboundedSender<Msg>,
    pub stop: &'a mut watch::Receiver<Stop>,
    /// Services only: nothing needs the service any more.
    pub service_stop: &'a mut watch::Receiver<super::ServiceEnd>,
    /// What went wrong without failing the step, for its report.
    pub warnings: &'a mut Vec<String>,
}

/// Runs one attempt on the step's executor: how it ended, what its output showed, and
/// where its output starts in the step's log.
pub(crate) async fn run_attempt(a: Attempt<'_>) -> (End, Seen, u64) {
    let (command, from) = match step::prepare(&a) {
        Ok(prepared) => prepared,
        Err(end) => return (end, Seen::default(), 0),
    };
    if a.ctx.wf.steps[a.index].slurm().is_none() {
        return local::attempt(a, command, from).await;
    }
    match a.ctx.slurm.clone() {
        Some(cluster) => slurm::attempt(a, &cluster, command, from).await,
        // A Slurm step never runs here instead.
        None => (
            End::NotStarted(format!(
                "cannot write the Slurm job script in {}",
                a.ctx.log_dir.join("slurm").display()
            )),
            Seen::default(),
            from,
        ),
    }
}
