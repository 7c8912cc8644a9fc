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
    let real = Command::new("sh")
        .args(["-c", "command -v sbatch"])
        .output()
        .expect("sh");
    let real = String::from_utf8_lossy(&real.stdout).trim().to_owned();
    assert!(real.starts_with('/'), "no sbatch on PATH: {real:?}");
    let dir = home.path().display().to_string();
    home.fake(
        "sbatch",
        &format!("'{real}' \"$@\" > '{dir}/job-id'\ntouch '{dir}/submitted'\nexec sleep 339\n"),
    );
    let run = detach_until_sbatch_hangs(&home);
    let job = std::fs::read_to_string(home.path().join("job-id")).expect("the job id");
    let job = job.trim().split(';').next().unwrap_or("").to_owned();
    assert!(!job.is_empty(), "no job id");
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
    let deadline = Instant::now() + DEADLINE;
    while !jobs_queued(&run).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the job is still queued: {:?}",
            jobs_queued(&run)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    common::assert_no_process("sleep 339");
    common::assert_no_process("sleep 337");
}

/// When `squeue` cannot tell whether the killed `sbatch` had made a job, the step's
/// warnings (and its log) say so and how to look: a job nothing follows is not silent.
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
    let summary = home
        .path()
        .join(".bgflow/runs")
        .join(&run)
        .join("summary.json");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).expect("summary.json"))
            .expect("JSON");
    let held = &summary["steps"][0];
    assert_eq!(held["state"], "cancelled", "{held}");
    let warned = held["warnings"].as_array().is_some_and(|w| {
        w.iter().any(|w| {
            w.as_str().is_some_and(|w| {
                w.contains("whether Slurm took its job cannot be told")
                    && w.contains(&format!("squeue --name=bgflow-{run}"))
            })
        })
    });
    assert!(warned, "{held:#}");
    common::assert_no_process("sleep 343");
}
