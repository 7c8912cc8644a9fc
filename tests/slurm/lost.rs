//! A run whose supervisor was killed while its step ran on Slurm: `status` names the job
//! that runs on, the lock and `cleanup` keep the run, and `stop` cancels the job.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{common, jobs_queued, slurm_here, text, Home, DEADLINE, HEADER};

#[test]
fn slurm_stop_of_a_lost_run_cancels_its_jobs() {
    if !slurm_here() {
        return;
    }
    let mut home = Home::new(&format!(
        r#"{HEADER}
[steps.orphan]
run = "sleep 323"
outputs = ["orphan.txt"]
"#
    ));
    let run = home.detach();
    let status = home.wait_status(&run, "the job to run", |s| {
        Home::step(s, "orphan")["job_state"] == "RUNNING"
    });
    let supervisor = status["run"]["supervisor_pid"]
        .as_i64()
        .expect("a supervisor pid");
    let killed = Command::new("kill")
        .args(["-9", &supervisor.to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    home.wait_status(&run, "the run to be lost", |s| s["run"]["state"] == "lost");
    let job = jobs_queued(&run);
    assert_eq!(job.len(), 1, "the job outlives its supervisor");
    // `status` says the lost run's job runs on, and how to end it.
    let status = home.wait_status(&run, "its job named as left", |s| {
        s["run"]["slurm_jobs_left"] == serde_json::json!([job[0]])
    });
    assert_eq!(status["run"]["slurm_jobs_unknown"], Value::Null, "{status}");
    let out = home.bgflow(&["status", &run]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains(&format!(
            "1 of its Slurm jobs is still queued or running ({})",
            job[0]
        )) && said.contains("help: end them with bgflow"),
        "{}",
        text(&out)
    );
    // Nor does `cleanup` remove it while its job runs: `stop` still finds it.
    let out = home.bgflow(&["cleanup", "--older-than", "0s", "--status", "lost"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!("note: kept run {run} of `")),
        "{}",
        text(&out)
    );
    // When `squeue` cannot answer, `status` says the job may still run, not that none does.
    home.fail_squeue();
    let status = home.status(&run);
    assert!(
        status["run"]["slurm_jobs_unknown"]
            .as_str()
            .is_some_and(|e| e.contains("Unable to contact slurm controller")),
        "{status}"
    );
    let out = home.bgflow(&["status", &run]);
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("whether its Slurm jobs still run cannot be told"),
        "{}",
        text(&out)
    );
    // A controller that does not answer: `status` gives up on `squeue` at its limit (10 s;
    // 1.5 s here), and says so, instead of hanging while `squeue` retries for a minute.
    home.fake_squeue("exec sleep 319\n");
    let out = home.bgflow_with(&["status", &run], &[("BGFLOW_TEST_SLURM_LIMIT_MS", "1500")]);
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("(`squeue`: `squeue` did not answer within 1.5 s)"),
        "{}",
        text(&out)
    );
    let deadline = Instant::now() + DEADLINE;
    while !common::live_processes("sleep 319").is_empty() {
        assert!(
            Instant::now() < deadline,
            "the hanging squeue was not killed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    home.path_first = None;
    // Its job may still write orphan.txt: the lost run holds its lock (guarantee 11).
    let refused = home.bgflow(&["run", "-d", "wf.toml"]);
    assert_eq!(refused.status.code(), Some(3), "{}", text(&refused));
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains(&format!("error: run {run} of `"))
            && said.contains(&format!(
                "1 of its Slurm jobs is still queued or running ({})",
                job[0]
            ))
            && said.contains(&format!("stop {run}")),
        "{said}"
    );
    let out = home.bgflow(&["stop", &run, "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cancelled 1 Slurm job"),
        "{}",
        text(&out)
    );
    assert!(jobs_queued(&run).is_empty(), "{:?}", jobs_queued(&run));
    let status = home.wait_status(&run, "no job left", |s| s["run"]["state"] == "lost");
    assert_eq!(
        status["run"]["slurm_jobs_left"],
        serde_json::json!([]),
        "{status}"
    );
    let deadline = Instant::now() + DEADLINE;
    while !common::live_processes("sleep 323").is_empty() {
        assert!(Instant::now() < deadline, "sleep 323 survived");
        std::thread::sleep(Duration::from_millis(100));
    }
    // With its job gone, the lock went with it.
    let again = home.detach();
    let out = home.bgflow(&["stop", &again, "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(jobs_queued(&again).is_empty(), "{:?}", jobs_queued(&again));
}
