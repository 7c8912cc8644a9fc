//! The Slurm commands bgflow runs, each with an argv (never a shell): `sbatch`, `squeue`,
//! `sacct`, `scancel`; and what their output means.

use std::collections::HashMap;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command as Process;

use super::JobView;

/// The states of a job that is not over: `squeue --states` of a job still queued or running.
pub const JOB_STATES_ACTIVE: &str =
    "PENDING,RUNNING,SUSPENDED,COMPLETING,CONFIGURING,RESIZING,REQUEUED,STOPPED";

/// How long one Slurm command may take before bgflow gives up on it (this poll, or this
/// try to cancel; the next one tries again).
const COMMAND_LIMIT: Duration = Duration::from_secs(30);

/// A state after which the job runs no more.
pub fn is_final(state: &str) -> bool {
    matches!(
        state,
        "COMPLETED"
            | "FAILED"
            | "CANCELLED"
            | "TIMEOUT"
            | "OUT_OF_MEMORY"
            | "NODE_FAIL"
            | "PREEMPTED"
            | "BOOT_FAIL"
            | "DEADLINE"
            | "SPECIAL_EXIT"
            | "REVOKED"
    )
}

/// A final state that names a cause outside the step: shown even when the step's exit
/// status was written.
pub fn names_a_cause(state: &str) -> bool {
    matches!(
        state,
        "TIMEOUT"
            | "OUT_OF_MEMORY"
            | "NODE_FAIL"
            | "PREEMPTED"
            | "BOOT_FAIL"
            | "DEADLINE"
            | "CANCELLED"
    )
}

/// Runs a Slurm command: its stdout, or the first line of its stderr as the error.
pub(super) async fn run(program: &str, args: &[String]) -> Result<String, String> {
    let mut cmd = Process::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let out = match tokio::time::timeout(COMMAND_LIMIT, cmd.output()).await {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => return Err(format!("cannot run `{program}`: {e}")),
        Err(_) => {
            return Err(format!(
                "`{program}` did not answer within {} s",
                COMMAND_LIMIT.as_secs()
            ))
        }
    };
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        let first = err.trim().lines().next().unwrap_or("").trim().to_owned();
        Err(if first.is_empty() {
            format!("`{program}` failed ({})", out.status)
        } else {
            first
        })
    }
}

/// Every job named `tag` that Slurm still lists (queued, running, or ended less than
/// `MinJobAge` ago), by id: one `squeue` call.
pub(super) async fn squeue(tag: &str) -> Result<HashMap<String, JobView>, String> {
    let args = [
        "--noheader".to_owned(),
        "--states=all".to_owned(),
        format!("--name={tag}"),
        "--format=%i|%T|%r".to_owned(),
    ];
    let out = run("squeue", &args).await?;
    Ok(parse_squeue(&out))
}

fn parse_squeue(out: &str) -> HashMap<String, JobView> {
    out.lines()
        .filter_map(|line| {
            let mut f = line.trim().splitn(3, '|');
            let id = f.next()?.trim();
            let state = f.next()?.trim();
            if id.is_empty() || state.is_empty() {
                return None;
            }
            let reason = f
                .next()
                .map(str::trim)
                .filter(|r| !r.is_empty() && *r != "None" && *r != "(null)");
            Some((
                id.to_owned(),
                JobView {
                    state: Some(state.to_owned()),
                    reason: reason.map(str::to_owned),
                    gone: false,
                },
            ))
        })
        .collect()
}

/// Whether a Slurm command's error says that the controller's answer never came (it may
/// have done what was asked all the same), rather than that it refused.
pub(super) fn no_answer(error: &str) -> bool {
    [
        "timed out",
        "Unable to contact",
        "Connection refused",
        "Connection reset",
    ]
    .iter()
    .any(|words| error.contains(words))
}

/// The ids of the queued or running jobs named `tag` whose comment is `step` (`sbatch
/// --comment`, the step's name): one `squeue` call.
pub(super) async fn active_jobs_of_step(tag: &str, step: &str) -> Result<Vec<String>, String> {
    let args = [
        "--noheader".to_owned(),
        format!("--states={JOB_STATES_ACTIVE}"),
        format!("--name={tag}"),
        "--format=%i|%k".to_owned(),
    ];
    let out = run("squeue", &args).await?;
    Ok(out
        .lines()
        .filter_map(|line| line.trim().split_once('|'))
        .filter(|(id, comment)| !id.is_empty() && *comment == step)
        .map(|(id, _)| id.to_owned())
        .collect())
}

/// How a job that left the queue ended, from accounting: `sacct`, or the job completion
/// log (`sacct --completion`) where accounting storage is off. `None`: neither knows.
pub(super) async fn sacct(job: &str) -> Option<(String, Option<String>)> {
    let accounting = [
        "--noheader",
        "--parsable2",
        "--allocations",
        "--jobs",
        job,
        "--format=JobIDRaw,State,Reason",
    ];
    let args: Vec<String> = accounting.iter().map(|s| (*s).to_owned()).collect();
    if let Ok(out) = run("sacct", &args).await {
        if let Some(found) = parse_sacct(&out, job) {
            return Some(found);
        }
    }
    let completion = [
        "--completion",
        "--noheader",
        "--parsable2",
        "--jobs",
        job,
        "--format=JobID,State",
    ];
    let args: Vec<String> = completion.iter().map(|s| (*s).to_owned()).collect();
    let out = run("sacct", &args).await.ok()?;
    parse_sacct(&out, job)
}

fn parse_sacct(out: &str, job: &str) -> Option<(String, Option<String>)> {
    out.lines().find_map(|line| {
        let mut f = line.split('|');
        if f.next()?.trim() != job {
            return None;
        }
        // `CANCELLED by 0`: the state is the first word.
        let state = f.next()?.split_whitespace().next()?.to_owned();
        let reason = f
            .next()
            .map(str::trim)
            .filter(|r| !r.is_empty() && *r != "None")
            .map(str::to_owned);
        Some((state, reason))
    })
}

/// `scancel` with these arguments before the job id; errors (a job already gone) are
/// what the next poll shows, so they are not returned.
pub(super) async fn scancel(job: &str, args: &[&str]) {
    let mut argv: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    argv.push(job.to_owned());
    let _ = run("scancel", &argv).await;
}

/// How long `squeue` or `scancel` may take when a command that reads or stops a lost run
/// asks (`status`, the lock, `stop`): Slurm's default `MessageTimeout`. A controller that
/// does not answer makes `squeue` retry for a minute; `status` must not wait that long.
const ASK_LIMIT: Duration = Duration::from_secs(10);

/// The limit for one such command, and for a `sbatch` to answer once its run is stopped;
/// debug builds take `BGFLOW_TEST_SLURM_LIMIT_MS` (tests).
pub(super) fn ask_limit() -> Duration {
    #[cfg(debug_assertions)]
    if let Some(ms) = std::env::var("BGFLOW_TEST_SLURM_LIMIT_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        return Duration::from_millis(ms);
    }
    ASK_LIMIT
}

/// Runs `program` with `args` (no shell), waiting at most `ask_limit()` for it.
fn output_within(program: &str, args: &[String]) -> Result<std::process::Output, String> {
    crate::bounded::output_within(std::process::Command::new(program).args(args), ask_limit())
}

/// The ids of the jobs of run `run_id` that are still queued or running (`stop` of a lost
/// run, `status` of one, the lock). `Err`: `squeue` did not answer.
pub fn jobs_left(run_id: &str) -> Result<Vec<String>, String> {
    let out = output_within(
        "squeue",
        &[
            "--noheader".to_owned(),
            format!("--states={JOB_STATES_ACTIVE}"),
            format!("--name={}", super::tag(run_id)),
            "--format=%i".to_owned(),
        ],
    )?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect())
}

/// Cancels every job of run `run_id` (`scancel --name`, which also finds a job submitted
/// just before its supervisor died and never recorded) and waits up to `wait` until
/// `squeue` lists none queued or running. Returns the jobs still there at the deadline.
pub fn cancel_run(run_id: &str, wait: Duration) -> Result<Vec<String>, String> {
    let tag = super::tag(run_id);
    let deadline = std::time::Instant::now() + wait;
    loop {
        let left = jobs_left(run_id)?;
        if left.is_empty() {
            return Ok(left);
        }
        let _ = output_within("scancel", &[format!("--name={tag}")]);
        if std::time::Instant::now() >= deadline {
            return Ok(left);
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squeue_lines_become_views() {
        let jobs = parse_squeue("12|PENDING|Priority\n13|RUNNING|None\n14|TIMEOUT|TimeLimit\n\n");
        assert_eq!(jobs["12"].describe(), "PENDING (Priority)");
        assert_eq!(jobs["13"].describe(), "RUNNING");
        assert!(jobs["14"].ended());
        assert!(!jobs["13"].ended());
    }

    #[test]
    fn sacct_finds_the_job_and_its_state() {
        let out = "7|CANCELLED by 0|None\n8|OUT_OF_MEMORY|\n";
        assert_eq!(parse_sacct(out, "7"), Some(("CANCELLED".into(), None)));
        assert_eq!(parse_sacct(out, "8"), Some(("OUT_OF_MEMORY".into(), None)));
        assert_eq!(
            parse_sacct("Slurm accounting storage is disabled\n", "8"),
            None
        );
    }
}
