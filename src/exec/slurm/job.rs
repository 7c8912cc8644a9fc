//! One attempt as a Slurm job: submit, follow, and end it.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::ExitStatus;
use std::time::Duration;

use tokio::time::Instant;

use super::query::{self, names_a_cause};
use super::{Cluster, Ended, JobView};
use crate::exec::executor::Attempt;
use crate::exec::matching::LineMatcher;
use crate::exec::output::OutputWatch;
use crate::exec::step::{note_in_log, open_log, wait_stop, End};
use crate::exec::tail::Seen;
use crate::exec::{Msg, Stop};
use crate::validate::Command;

/// How often the attempt looks for its exit file and follows its log between polls.
const TICK: Duration = Duration::from_millis(100);
/// How long a job that ended or left the queue may take to show its exit file (a shared
/// file system may show it late) before the step fails with Slurm's state.
pub const EXIT_GRACE: Duration = Duration::from_secs(10);
/// How long a nonzero exit status waits for Slurm's final state, which may name the cause.
const LABEL_WAIT: Duration = Duration::from_secs(5);

/// Runs one attempt of a step as a Slurm job.
pub(crate) async fn attempt(
    a: Attempt<'_>,
    cluster: &Cluster,
    command: Command,
    from: u64,
) -> (End, Seen, u64) {
    let Attempt {
        ctx,
        index,
        attempt,
        log_path,
        progress_path,
        tx,
        stop,
        warnings: a_warnings,
        ..
    } = a;
    let step = &ctx.wf.steps[index];
    let mut seen = Seen::default();
    // Before anything is submitted: `plan` compiled the same patterns, so not expected.
    let lines = match LineMatcher::new(step.progress(), step.fail_on(), None) {
        Ok(m) => m,
        Err(e) => return (End::NotStarted(format!("cannot compile {e}")), seen, from),
    };
    let exit_file = cluster.exit_file(&step.name, attempt);
    let _ = std::fs::remove_file(&exit_file);
    // A stop while `sbatch` runs gives it Slurm's `MessageTimeout` to answer: its job is
    // then followed and ended as any other. A controller that does not answer could hold
    // it for minutes; past that, it is killed (`None`).
    let mut submission = Box::pin(submit(
        ctx, index, attempt, cluster, &command, log_path, &exit_file,
    ));
    let submitted = tokio::select! {
        r = &mut submission => Some(r),
        () = wait_stop(stop, |s| *s != Stop::No) => tokio::select! {
            r = tokio::time::timeout(query::ask_limit(), &mut submission) => r.ok(),
            // A second Ctrl-C waits for nothing.
            () = wait_stop(stop, |s| *s == Stop::Kill) => None,
        },
    };
    // Kills a `sbatch` that did not answer (`kill_on_drop`) before its job is looked for.
    drop(submission);
    let job = match submitted {
        None => {
            let note = match cancel_unrecorded(cluster, &step.name).await {
                Ok(jobs) if !jobs.is_empty() => {
                    format!("cancelled the job it had made ({})", jobs.join(", "))
                }
                found => {
                    // Slurm may record the job later: the run's end looks again, and
                    // warns if it still cannot tell (`Cluster::sweep`).
                    cluster.unsure_of(&step.name);
                    match found {
                        Err(e) => format!("whether it had made a job cannot be told yet: {e}"),
                        Ok(_) => "Slurm lists no job of it yet".to_owned(),
                    }
                }
            };
            note_in_log(log_path, &format!("stopped while `sbatch` ran; {note}"));
            return (End::Cancelled(None), seen, from);
        }
        Some(Ok(job)) => job,
        Some(Err(why)) => {
            // A `sbatch` that could not hear the controller's answer may have had its job
            // taken all the same (one the controller refused has none): such a job runs
            // this very attempt, and is followed as if `sbatch` had named it.
            let no_answer = query::no_answer(&why);
            let taken = if no_answer {
                let until = Instant::now() + query::ask_limit();
                let found = cluster.unfollowed(&step.name, until).await;
                found.ok().and_then(|jobs| jobs.into_iter().next())
            } else {
                None
            };
            let Some(job) = taken else {
                if no_answer {
                    // Slurm may record it later still: the run's end looks again.
                    cluster.unsure_of(&step.name);
                }
                note_in_log(log_path, &why);
                return (End::NotStarted(why), seen, from);
            };
            let text =
                format!("{why}; Slurm took the job all the same (job {job}), which runs the step");
            note_in_log(log_path, &text);
            let _ = tx.send(Msg::Warning {
                step: index,
                text: text.clone(),
            });
            a_warnings.push(text);
            job
        }
    };
    cluster.track(&job);
    let submitted = Instant::now();
    let _ = tx.send(Msg::Job {
        step: index,
        attempt,
        job: job.clone(),
        state: "SUBMITTED".to_owned(),
    });
    let mut polls = cluster.subscribe();
    let needs_lines = step.progress().is_some() || !step.fail_on().is_empty();
    let mut output = OutputWatch::new(index, log_path, progress_path, from, lines, needs_lines);
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let far = Instant::now() + Duration::from_secs(86_400 * 365);
    let stall = step.more().stall_timeout.map(|d| d.as_std());
    let grace = step.kill_grace().as_std();
    // The step's timeout and stall count from when its job runs, not while it waits.
    let mut running_since: Option<Instant> = None;
    let mut shown = JobView::default();
    // When the job was seen ended without an exit file; when a nonzero status was read.
    let mut ended_since: Option<Instant> = None;
    let mut status_since: Option<(Instant, ExitStatus)> = None;
    // Whether the steps were told that polls fail (again once they work and fail again).
    let mut warned = false;

    let end = loop {
        let timeout_at = running_since
            .and_then(|s| step.timeout().map(|t| s + t.as_std()))
            .unwrap_or(far);
        tokio::select! {
            _ = polls.changed() => {
                let failing = cluster.failing();
                if failing.is_some() && running_since.is_none() {
                    // Without a working poll the job's start is not seen: the timeout
                    // counts from the submission rather than never.
                    running_since = Some(submitted);
                }
                match (failing, warned) {
                    (Some(why), false) => {
                        warned = true;
                        let text = format!("slurm job {job} of step `{}`: {why}; its state is not known until a poll works", step.name);
                        let _ = tx.send(Msg::Warning { step: index, text: text.clone() });
                        a_warnings.push(text);
                    }
                    (None, true) => warned = false,
                    _ => {}
                }
                let view = cluster.view(&job);
                if view.state.is_some() && (view.state != shown.state || view.reason != shown.reason) {
                    let _ = tx.send(Msg::Job { step: index, attempt, job: job.clone(), state: view.describe() });
                }
                if running_since.is_none() && view.state.as_deref().is_some_and(|s| s != "PENDING" && s != "CONFIGURING") {
                    running_since = Some(Instant::now());
                    output.last_activity = Instant::now();
                }
                shown = view;
            }
            _ = ticker.tick() => {}
            () = tokio::time::sleep_until(timeout_at), if timeout_at < far => {
                let status = end_job(cluster, &job, &shown, &exit_file, grace, stop).await;
                break End::TimedOut(status);
            }
            () = wait_stop(stop, |s| *s != Stop::No) => {
                let status = end_job(cluster, &job, &shown, &exit_file, grace, stop).await;
                break End::Cancelled(status);
            }
        }
        // The exit file is the truth about the exit; Slurm's final state may name a cause.
        if let Some(status) = read_exit(&exit_file) {
            running_since.get_or_insert_with(Instant::now);
            if status.success() {
                break End::Exited(status);
            }
            let since = status_since.get_or_insert((Instant::now(), status)).0;
            if let Some(state) = shown.state.as_deref().filter(|s| query::is_final(s)) {
                break labelled(&job, state, &shown, status);
            }
            if shown.gone || since.elapsed() >= LABEL_WAIT {
                break End::Exited(status);
            }
        } else if shown.ended() {
            let since = *ended_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= EXIT_GRACE {
                break without_status(&job, &shown).await;
            }
        }
        // Output, progress and stall, as for a local step.
        output.poll(&mut seen, tx);
        if let (Some(limit), Some(_)) = (stall, running_since) {
            if output.last_activity.elapsed() >= limit {
                let status = end_job(cluster, &job, &shown, &exit_file, grace, stop).await;
                break End::Stalled(status);
            }
        }
    };
    cluster.forget(&job);
    output.finish(&mut seen, tx);
    (end, seen, from)
}

/// After a stop cut `sbatch` short (dropping it kills it), Slurm may have taken the job
/// all the same, and the run would never learn its id: one look for such a job of this
/// step (`Cluster::unfollowed`), and each found is cancelled. The jobs cancelled; `Err`:
/// `squeue` could not tell.
async fn cancel_unrecorded(cluster: &Cluster, step: &str) -> Result<Vec<String>, String> {
    let jobs = cluster.unfollowed(step, Instant::now()).await?;
    for job in &jobs {
        query::scancel(job, &[]).await;
    }
    Ok(jobs)
}

/// The sbatch arguments of an attempt, then `sbatch --parsable`: the job's id.
#[allow(clippy::too_many_arguments)]
async fn submit(
    ctx: &crate::exec::step::Ctx,
    index: usize,
    attempt: u32,
    cluster: &Cluster,
    command: &Command,
    log_path: &Path,
    exit_file: &Path,
) -> Result<String, String> {
    let wf = &ctx.wf;
    let step = &wf.steps[index];
    let job = step.slurm().cloned().unwrap_or_default();
    let s = cluster.settings();
    // The log exists (private) before Slurm opens it to append.
    open_log(log_path).map_err(|e| format!("cannot create the log {}: {e}", log_path.display()))?;
    let mut args: Vec<std::ffi::OsString> = vec![
        "--parsable".into(),
        format!("--job-name={}", cluster.tag).into(),
        format!("--comment={}", step.name).into(),
        os_arg("--output=", &output_pattern(log_path)?),
        "--open-mode=append".into(),
        os_arg("--chdir=", &step.cwd),
        "--ntasks=1".into(),
        "--no-requeue".into(),
    ];
    if let Some(c) = job.cpus {
        args.push(format!("--cpus-per-task={c}").into());
    }
    if let Some(m) = job.mem_mb {
        args.push(format!("--mem={m}M").into());
    }
    if let Some(g) = job.gpus.filter(|&g| g > 0) {
        args.push(format!("--gres=gpu:{g}").into());
    }
    if let Some(minutes) = job.minutes(step) {
        args.push(format!("--time={minutes}").into());
    }
    for (flag, value) in [
        ("--partition=", &s.partition),
        ("--account=", &s.account),
        ("--qos=", &s.qos),
    ] {
        if let Some(v) = value {
            args.push(format!("{flag}{v}").into());
        }
    }
    args.extend(s.extra.iter().map(Into::into));
    args.push(cluster.script.clone().into());
    args.push(exit_file.into());
    match command {
        Command::Shell(text) => args.extend(["sh".into(), "-c".into(), text.into()]),
        Command::Argv(argv) => args.extend(argv.iter().map(Into::into)),
    }
    let attempt_text = attempt.to_string();
    let progress = ctx.log_dir.join(format!(
        "{}.progress",
        crate::file_name::step_file_name(&step.name)
    ));
    let mut cmd = tokio::process::Command::new("sbatch");
    cmd.args(&args)
        .envs(wf.env.iter().map(|(k, v)| (k, v)))
        .envs(step.env().iter().map(|(k, v)| (k, v)))
        .env("BGFLOW_RUN_ID", &ctx.run_id)
        .env("BGFLOW_STEP", &step.name)
        .env("BGFLOW_ATTEMPT", &attempt_text)
        .env("BGFLOW_PROGRESS", &progress)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let out = cmd
        .output()
        .await
        .map_err(|e| format!("cannot run `sbatch`: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let err = err.trim().replace('\n', "; ");
        return Err(if query::no_answer(&err) {
            format!("sbatch got no answer from the controller: {err}")
        } else {
            format!("sbatch refused the job: {err}")
        });
    }
    // `ID` or `ID;CLUSTER`.
    let text = String::from_utf8_lossy(&out.stdout);
    let id = text
        .trim()
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_owned();
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit() || b == b'_') {
        return Err(format!(
            "sbatch gave no job id (it printed `{}`)",
            text.trim()
        ));
    }
    Ok(id)
}

/// `log` as sbatch's `--output` takes it: a filename pattern, where `%j`, `%x`, `%2F` and
/// the like are replaced, `%%` is `%`, and a backslash anywhere turns the replacing off
/// (and is dropped). A step's log name holds `%` (`test[tests%2Fa.py].log` for the
/// instance `test[tests/a.py]`): unescaped, Slurm wrote the output to `tests2Fa.py` and
/// the step's log stayed empty.
fn output_pattern(log: &Path) -> Result<std::path::PathBuf, String> {
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    let bytes = log.as_os_str().as_bytes();
    if bytes.contains(&b'\\') {
        return Err(format!(
            "the log path {} holds a backslash, which sbatch's --output does not take as it is; \
             use a state folder whose path has none",
            log.display()
        ));
    }
    let mut out = Vec::with_capacity(bytes.len() + 8);
    for &b in bytes {
        out.push(b);
        if b == b'%' {
            out.push(b'%');
        }
    }
    Ok(std::ffi::OsString::from_vec(out).into())
}

fn os_arg(flag: &str, path: &Path) -> std::ffi::OsString {
    let mut s = std::ffi::OsString::from(flag);
    s.push(path.as_os_str());
    s
}

/// The exit status the job script wrote: `sh`'s `$?`, where 128+N is signal N.
fn read_exit(path: &Path) -> Option<ExitStatus> {
    let text = std::fs::read_to_string(path).ok()?;
    let n: i32 = text.trim().parse().ok()?;
    Some(match n {
        129..=192 => ExitStatus::from_raw(n - 128),
        n => ExitStatus::from_raw((n & 0xff) << 8),
    })
}

/// A nonzero exit, with Slurm's state when that names a cause.
fn labelled(job: &str, state: &str, view: &JobView, status: ExitStatus) -> End {
    if names_a_cause(state) {
        End::Slurm(Ended {
            job: job.to_owned(),
            state: state.to_owned(),
            reason: view.reason.clone(),
            status: Some(status),
        })
    } else {
        End::Exited(status)
    }
}

/// A job that ended or left the queue and wrote no exit file within `EXIT_GRACE`: Slurm's
/// final state (from `squeue`, else accounting), or the last state seen and that neither
/// knows more.
async fn without_status(job: &str, view: &JobView) -> End {
    let (state, reason) = match (&view.state, view.gone) {
        (Some(s), false) => (s.clone(), view.reason.clone()),
        _ => match query::sacct(job).await {
            Some((state, reason)) => (state, reason),
            None => (
                "gone".to_owned(),
                Some(format!(
                    "it left the queue (last seen {}) and accounting has no record of it",
                    view.state.as_deref().unwrap_or("never")
                )),
            ),
        },
    };
    End::Slurm(Ended {
        job: job.to_owned(),
        state,
        reason,
        status: None,
    })
}

/// Ends the job: a pending one is cancelled; a running one gets TERM (`scancel --full`, so
/// the job script passes it on to the step's group), then, after `grace`, `scancel`, which
/// kills what is left. Waits (bounded) until Slurm shows the job ended. The exit status,
/// if the job script wrote one.
async fn end_job(
    cluster: &Cluster,
    job: &str,
    view: &JobView,
    exit_file: &Path,
    grace: Duration,
    stop: &mut tokio::sync::watch::Receiver<Stop>,
) -> Option<ExitStatus> {
    let pending = matches!(view.state.as_deref(), None | Some("PENDING"));
    if pending || *stop.borrow() == Stop::Kill {
        query::scancel(job, &[]).await;
    } else {
        query::scancel(job, &["--full", "--signal=TERM"]).await;
    }
    let mut polls = cluster.subscribe();
    let graceful_until = Instant::now() + grace;
    let mut hard = pending;
    // Slurm kills after its own KillWait; this bounds the wait whatever the cluster does.
    let give_up = Instant::now() + grace + Duration::from_secs(120);
    loop {
        let ended = cluster.view(job).ended();
        if ended && (hard || read_exit(exit_file).is_some()) {
            break;
        }
        if !hard && (Instant::now() >= graceful_until || read_exit(exit_file).is_some()) {
            query::scancel(job, &[]).await;
            hard = true;
        }
        if Instant::now() >= give_up {
            break;
        }
        tokio::select! {
            _ = polls.changed() => {}
            () = tokio::time::sleep(TICK) => {}
            () = wait_stop(stop, |s| *s == Stop::Kill), if !hard => {
                query::scancel(job, &[]).await;
                hard = true;
            }
        }
    }
    read_exit(exit_file)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::output_pattern;

    #[test]
    fn a_percent_in_the_log_path_is_doubled_and_a_backslash_refused() {
        assert_eq!(
            output_pattern(Path::new("/r/.bgflow/runs/x/each[data%2Fa.txt].log")),
            Ok("/r/.bgflow/runs/x/each[data%%2Fa.txt].log".into())
        );
        assert_eq!(
            output_pattern(Path::new("/r/plain.log")),
            Ok("/r/plain.log".into())
        );
        let err = output_pattern(Path::new("/r/a\\b/s.log")).expect_err("a backslash");
        assert!(err.contains("backslash"), "{err}");
    }
}
