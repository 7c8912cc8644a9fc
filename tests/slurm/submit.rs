//! A stop while `sbatch` does not answer: the run ends within the limit, and a job that
//! `sbatch` made before it was killed is found by its name and comment and cancelled.

use std::process::Command;
use std::time::{Duration, Instant};

use super::{common, jobs_queued, slurm_here, text, Home, DEADLINE, HEADER};

/// The limit the supervisor gives `sbatch` after a stop, and `stop` its `squeue`.
const LIMIT: [(&str, &str); 1] = [("BGFLOW_TEST_SLURM_LIMIT_MS", "1500")];

/// Starts the workflow detached with `LIMIT` and waits until its `sbatch` (a fake that
/// touches `submitted`, then hangs) was called; the run's id.
fn detach_until_sbatch_hangs(home: &Home) -> String {
    let out = home.bgflow_with(&["run", "-d", "wf.toml"], &LIMIT);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let run = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let deadline = Instant::now() + DEADLINE;
    while !home.path().join("submitted").exists() {
        assert!(Instant::now() < deadline, "sbatch was not called");
        std::thread::sleep(Duration::from_millis(50));
    }
    run
}

/// The `sbatch` on PATH, for a fake one to call.
fn real_sbatch() -> String {
    let out = Command::new("sh")
        .args(["-c", "command -v sbatch"])
        .output()
        .expect("sh");
    let real = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(real.starts_with('/'), "no sbatch on PATH: {real:?}");
    real
}

/// The job id the real `sbatch` printed into `job-id` for a fake one.
fn job_id(home: &Home) -> String {
    let text = std::fs::read_to_string(home.path().join("job-id")).expect("the job id");
    let job = text.trim().split(';').next().unwrap_or("").to_owned();
    assert!(!job.is_empty(), "no job id in {text:?}");
    job
}

/// Waits until Slurm lists no job of `run` queued or running.
fn wait_no_job_of(run: &str) {
    let deadline = Instant::now() + DEADLINE;
    while !jobs_queued(run).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the job is still queued: {:?}",
            jobs_queued(run)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The run's summary.json.
fn summary_of(home: &Home, run: &str) -> serde_json::Value {
    let path = home
        .path()
        .join(".bgflow/runs")
        .join(run)
        .join("summary.json");
    serde_json::from_str(&std::fs::read_to_string(&path).expect("summary.json")).expect("JSON")
}

#[test]
fn a_stop_while_sbatch_hangs_ends_the_run_and_cancels_the_job_it_made() {
    if !slurm_here() {
        return;
    }
    let mut home = Home::new(&format!(
        r#"{HEADER}
[steps.held]
run = "sleep 337"
"#
    ));
    // The real `sbatch` takes the job and prints its id to a file; then this one answers
    // nothing, as with a controller that took the job but whose answer never came.
    let real = real_sbatch();
    let dir = home.path().display().to_string();
    home.fake(
        "sbatch",
        &format!("'{real}' \"$@\" > '{dir}/job-id'\ntouch '{dir}/submitted'\nexec sleep 339\n"),
    );
    let run = detach_until_sbatch_hangs(&home);
    let job = job_id(&home);
    assert_eq!(jobs_queued(&run), vec![job.clone()], "the job sbatch made");

    let stopped = Instant::now();
    let out = home.bgflow_with(&["stop", &run, "--yes"], &LIMIT);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        stopped.elapsed() < Duration::from_secs(30),
        "stop waited for sbatch: {:?}",
        stopped.elapsed()
    );
    let status = home.status(&run);
    assert_eq!(status["run"]["state"], "cancelled", "{status:#}");
    let held = Home::step(&status, "held");
    assert_eq!(held["state"], "cancelled", "{held}");
    let log = std::fs::read_to_string(held["log_path"].as_str().expect("a log path"))
        .expect("the step's log");
    assert!(
        log.contains(&format!(
            "bgflow: stopped while `sbatch` ran; cancelled the job it had made ({job})"
        )),
        "{log}"
    );
    wait_no_job_of(&run);
    common::assert_no_process("sleep 339");
    common::assert_no_process("sleep 337");
}

/// When `squeue` cannot tell whether the killed `sbatch` had made a job, now or at the
/// run's end, the step gets one warning that says so and how to look: a job nothing
/// follows is not silent.
#[test]
fn a_job_that_cannot_be_looked_for_after_a_stop_is_a_warning() {
    if !slurm_here() {
        return;
    }
    let mut home = Home::new(&format!(
        r#"{HEADER}
[steps.held]
run = "sleep 341"
"#
    ));
    let dir = home.path().display().to_string();
    home.fake(
        "sbatch",
        &format!("touch '{dir}/submitted'\nexec sleep 343\n"),
    );
    home.fake(
        "squeue",
        "echo 'squeue: error: Unable to contact slurm controller' >&2\nexit 1\n",
    );
    let run = detach_until_sbatch_hangs(&home);
    let out = home.bgflow_with(&["stop", &run, "--yes"], &LIMIT);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let summary = summary_of(&home, &run);
    let held = &summary["steps"][0];
    assert_eq!(held["state"], "cancelled", "{held}");
    let warned = held["warnings"].as_array().is_some_and(|w| {
        w.iter().any(|w| {
            w.as_str().is_some_and(|w| {
                w.contains("gave no job id, and whether Slurm took the job cannot be told")
                    && w.contains(&format!("squeue --name=bgflow-{run}"))
            })
        })
    });
    assert!(warned, "{held:#}");
    assert_eq!(
        held["warnings"].as_array().map(Vec::len),
        Some(1),
        "{held:#}"
    );
    common::assert_no_process("sleep 343");
}

/// A controller that takes the job but whose answer times out makes `sbatch` fail
/// although the job is queued (seen with a frozen `slurmctld`): the attempt finds that job
/// by the run's name and the step's comment and follows it, so the step runs once and
/// succeeds, with a warning that says what happened.
#[test]
fn a_job_queued_although_sbatch_failed_is_followed_as_the_attempts_job() {
    if !slurm_here() {
        return;
    }
    let mut home = Home::new(&format!(
        r#"{HEADER}
[steps.taken]
run = "echo ran >> taken.txt"
outputs = ["taken.txt"]
"#
    ));
    let real = real_sbatch();
    let dir = home.path().display().to_string();
    home.fake(
        "sbatch",
        &format!(
            "'{real}' \"$@\" > '{dir}/job-id'\n\
             echo 'sbatch: error: Batch job submission failed: Socket timed out on send/recv operation' >&2\n\
             exit 1\n"
        ),
    );
    let out = home.bgflow(&["run", "wf.toml", "--progress", "never"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    let job = job_id(&home);
    let warning = format!(
        "sbatch got no answer from the controller: sbatch: error: Batch job submission failed: Socket timed out on send/recv operation; Slurm took the job all the same (job {job}), which runs the step"
    );
    assert!(all.contains(&warning), "{all}");
    assert_eq!(
        std::fs::read_to_string(home.path().join("taken.txt")).expect("taken.txt"),
        "ran\n",
        "the step ran once"
    );
    let list: serde_json::Value =
        serde_json::from_slice(&home.bgflow(&["list", "--json"]).stdout).expect("list --json");
    let run = list["runs"][0]["id"].as_str().expect("a run id").to_owned();
    let summary = summary_of(&home, &run);
    assert_eq!(summary["steps"][0]["state"], "succeeded", "{summary:#}");
    assert_eq!(
        summary["steps"][0]["warnings"],
        serde_json::json!([warning]),
        "{summary:#}"
    );
    wait_no_job_of(&run);
}

/// A job that Slurm records only after the stop killed `sbatch` (its answer never came):
/// looked for right after the kill and again at the run's end, it is cancelled either
/// way, and the step's log or its warning names it.
#[test]
fn a_job_recorded_just_after_sbatch_was_killed_is_cancelled() {
    if !slurm_here() {
        return;
    }
    let mut home = Home::new(&format!(
        r#"{HEADER}
[steps.late]
run = "sleep 349"
"#
    ));
    let real = real_sbatch();
    let dir = home.path().display().to_string();
    // The job reaches Slurm only once this `sbatch` is gone (killed by the stop).
    home.fake(
        "sbatch",
        &format!(
            "me=$$\n\
             (while kill -0 $me 2>/dev/null; do sleep 0.05; done; '{real}' \"$@\" > '{dir}/job-id') </dev/null >/dev/null 2>&1 &\n\
             touch '{dir}/submitted'\n\
             exec sleep 353\n"
        ),
    );
    let run = detach_until_sbatch_hangs(&home);
    let out = home.bgflow_with(&["stop", &run, "--yes"], &LIMIT);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let job = job_id(&home);
    let summary = summary_of(&home, &run);
    let late = &summary["steps"][0];
    assert_eq!(late["state"], "cancelled", "{late:#}");
    let log = std::fs::read_to_string(late["log"].as_str().expect("a log path")).expect("log");
    let named_in_log = log.contains(&format!("cancelled the job it had made ({job})"));
    let named_in_warning = late["warnings"].as_array().is_some_and(|w| {
        w.iter().any(|w| {
            w.as_str()
                .is_some_and(|w| w.contains(&format!("Slurm job {job} of step `late` was queued")))
        })
    });
    assert!(named_in_log || named_in_warning, "{log}\n{late:#}");
    wait_no_job_of(&run);
    common::assert_no_process("sleep 349");
    common::assert_no_process("sleep 353");
}
