//! The Slurm executor against a real Slurm cluster (DESIGN.md §10, docs/slurm.md): the real
//! binary submits real jobs with `sbatch`, follows them with `squeue` and ends them with
//! `scancel`. CI starts a one-node cluster with `scripts/slurm-up.sh` before the tests.
//!
//! These tests FAIL when Slurm is not there (no `sbatch`, or `sinfo` cannot reach a
//! controller): they never skip silently. `BGFLOW_SKIP_SLURM_TESTS=1` skips them for a quick
//! local loop (each prints that it was skipped); CI never sets it.
//!
//! Each test works in its own temp dir (the workflow root, on the node's file system), polls
//! with a deadline and gives its `sleep` a duration no other test uses, so that tests
//! running at once never see each other's processes.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

#[path = "common/mod.rs"]
mod common;
#[path = "slurm/lost.rs"]
mod lost;
#[path = "slurm/plan.rs"]
mod plan;
#[path = "slurm/submit.rs"]
mod submit;

const BIN: &str = env!("CARGO_BIN_EXE_bgflow");
/// Longest a test waits for a run or a job.
const DEADLINE: Duration = Duration::from_secs(60);

/// Whether the Slurm tests should run: false only with `BGFLOW_SKIP_SLURM_TESTS=1`; with
/// Slurm missing or down, the test fails with what to do.
fn slurm_here() -> bool {
    if std::env::var("BGFLOW_SKIP_SLURM_TESTS").is_ok_and(|v| v == "1") {
        eprintln!("skipped: BGFLOW_SKIP_SLURM_TESTS=1");
        return false;
    }
    // Asked once per test binary, and for 15 s at most (a missing controller makes `sinfo`
    // retry for a minute).
    static UP: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let up = *UP.get_or_init(|| {
        Command::new("timeout")
            .args(["15", "sinfo", "--noheader", "--format=%a"])
            .output()
            .is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).contains("up"))
    });
    assert!(
        up,
        "no Slurm cluster answers (`sinfo` failed): install slurm-wlm, slurmctld, slurmd and munge, \
         start one with scripts/slurm-up.sh, or set BGFLOW_SKIP_SLURM_TESTS=1 to skip these tests"
    );
    true
}

/// A workflow folder with its state folder.
struct Home {
    dir: tempfile::TempDir,
    /// Extra folder put first on PATH (wrappers that count Slurm calls).
    path_first: Option<PathBuf>,
}

impl Home {
    fn new(workflow: &str) -> Self {
        let dir = tempfile::tempdir().expect("a temp dir");
        std::fs::write(dir.path().join("wf.toml"), workflow).expect("write the workflow");
        std::fs::write(dir.path().join("wait.sh"), common::WAIT_SH).expect("write wait.sh");
        Self {
            dir,
            path_first: None,
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Puts first on PATH a `squeue` that fails as with a controller that does not answer.
    fn fail_squeue(&mut self) {
        self.fake_squeue("echo 'squeue: error: Unable to contact slurm controller' >&2\nexit 1\n");
    }

    /// Puts first on PATH a `squeue` that runs `script` (sh).
    fn fake_squeue(&mut self, script: &str) {
        self.fake("squeue", script);
    }

    /// Puts first on PATH a program `name` that runs `script` (sh).
    fn fake(&mut self, name: &str, script: &str) {
        let bin = self.path().join("bin");
        let _ = std::fs::create_dir(&bin);
        let program = bin.join(name);
        std::fs::write(&program, format!("#!/bin/sh\n{script}")).expect("write the program");
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        self.path_first = Some(bin);
    }

    fn bgflow(&self, args: &[&str]) -> Output {
        self.bgflow_with(args, &[])
    }

    fn bgflow_with(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(BIN);
        cmd.current_dir(self.path())
            .arg("--state-dir")
            .arg(self.path().join(".bgflow"))
            .args(args)
            .envs(env.iter().copied())
            .env("NO_COLOR", "1")
            .env_remove("BGFLOW_CONFIG");
        if let Some(first) = &self.path_first {
            let path = std::env::var("PATH").unwrap_or_default();
            cmd.env("PATH", format!("{}:{path}", first.display()));
        }
        cmd.output().expect("run bgflow")
    }

    fn status(&self, run: &str) -> Value {
        let out = self.bgflow(&["status", run, "--json"]);
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "status --json: {e}: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
    }

    fn step<'v>(status: &'v Value, name: &str) -> &'v Value {
        status["steps"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["name"] == name))
            .unwrap_or_else(|| panic!("no step {name} in {status}"))
    }

    /// Starts the workflow detached; its run id.
    fn detach(&self) -> String {
        let out = self.bgflow(&["run", "-d", "wf.toml"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Waits until `pred` holds of the run's `status --json`; the status then.
    fn wait_status(&self, run: &str, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let s = self.status(run);
            if pred(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {s:#}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The jobs of run `run` that Slurm still has queued or running.
fn jobs_queued(run: &str) -> Vec<String> {
    let out = Command::new("squeue")
        .args([
            "--noheader",
            "--states=PENDING,RUNNING,SUSPENDED,COMPLETING,CONFIGURING",
            &format!("--name=bgflow-{run}"),
            "--format=%i",
        ])
        .output()
        .expect("squeue");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Slurm's state of job `id`, as `squeue --states=all` shows it.
fn job_state(id: &str) -> String {
    let out = Command::new("squeue")
        .args(["--noheader", "--states=all", "--jobs", id, "--format=%T"])
        .output()
        .expect("squeue");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

const HEADER: &str = r#"[workflow]
name = "on-slurm"
executor = "slurm"

[executor.slurm]
poll_interval = "300ms"
"#;

#[test]
fn slurm_chain_and_fan_out_through_artifacts_with_one_squeue_per_poll() {
    if !slurm_here() {
        return;
    }
    let mut home = Home::new(&format!(
        r#"{HEADER}
[steps.make]
run = "mkdir -p out && echo seed > out/seed.txt"
outputs = ["out/seed.txt"]

[steps.left]
run = ["sh", "-c", "cat out/seed.txt > out/left.txt; echo \"it's $BGFLOW_STEP\" >> out/left.txt"]
inputs = ["out/seed.txt"]
outputs = ["out/left.txt"]

[steps.right]
run = "tr a-z A-Z < out/seed.txt > out/right.txt"
inputs = ["out/seed.txt"]
outputs = ["out/right.txt"]

[steps.join]
run = "cat out/left.txt out/right.txt > out/all.txt"
inputs = ["out/left.txt", "out/right.txt"]
outputs = ["out/all.txt"]
"#
    ));
    // squeue and sacct wrappers that log each call, first on PATH.
    let bin = home.path().join("bin");
    std::fs::create_dir(&bin).expect("mkdir bin");
    let calls = home.path().join("calls.log");
    for tool in ["squeue", "sacct"] {
        let real = which(tool);
        let wrapper = bin.join(tool);
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\necho \"$(date +%s.%N) {tool} $*\" >> '{}'\nexec '{}' \"$@\"\n",
                calls.display(),
                real.display()
            ),
        )
        .expect("write a wrapper");
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    home.path_first = Some(bin);
    let out = home.bgflow(&["run", "wf.toml", "--progress", "never"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let all = std::fs::read_to_string(home.path().join("out/all.txt")).expect("out/all.txt");
    assert_eq!(all, "seed\nit's left\nSEED\n");
    // Each step ran as its own job, recorded in the history.
    let runs = home.bgflow(&["list", "--json"]);
    let list: Value = serde_json::from_slice(&runs.stdout).expect("list --json");
    let run = list["runs"][0]["id"].as_str().expect("a run id").to_owned();
    let status = home.status(&run);
    let mut ids: Vec<String> = ["make", "left", "right", "join"]
        .iter()
        .map(|s| {
            let step = Home::step(&status, s);
            assert_eq!(step["state"], "succeeded", "{step}");
            step["job_id"].as_str().expect("a job id").to_owned()
        })
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 4, "one job per step: {ids:?}");
    // Status: one squeue per poll for the whole run (by its job name), never one per job.
    let log = std::fs::read_to_string(&calls).unwrap_or_default();
    let squeues: Vec<f64> = log
        .lines()
        .filter(|l| l.contains(" squeue "))
        .map(|l| {
            assert!(
                l.contains(&format!("--name=bgflow-{run}")) && !l.contains("--jobs"),
                "a squeue call not for the whole run: {l}"
            );
            l.split(' ')
                .next()
                .and_then(|t| t.parse().ok())
                .expect("a time")
        })
        .collect();
    assert!(!squeues.is_empty(), "no squeue call was logged: {log}");
    for pair in squeues.windows(2) {
        assert!(
            pair[1] - pair[0] >= 0.2,
            "two squeue calls {:.3} s apart (poll_interval 300ms): {log}",
            pair[1] - pair[0]
        );
    }
    assert!(jobs_queued(&run).is_empty());
}

#[test]
fn slurm_failing_step_names_its_exit_code_and_last_lines() {
    if !slurm_here() {
        return;
    }
    let home = Home::new(&format!(
        r#"{HEADER}
[steps.broken]
run = "echo first-words; echo last-words-of-broken; exit 3"
"#
    ));
    let out = home.bgflow(&["run", "wf.toml", "--progress", "never"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("exit code 3"), "{all}");
    assert!(all.contains("last-words-of-broken"), "{all}");
    assert!(!all.contains("unknown"), "{all}");
}

/// `shell = "bash"` holds on Slurm: the job runs the string under `bash -eo pipefail`, so
/// a failure before a `|` fails the step there as on this machine.
#[test]
fn slurm_a_bash_step_fails_on_a_failure_inside_its_pipeline() {
    if !slurm_here() {
        return;
    }
    let home = Home::new(&format!(
        r#"{HEADER}
[steps.piped]
shell = "bash"
run = "echo before-the-pipe; sh -c 'exit 7' | cat"
"#
    ));
    let out = home.bgflow(&["run", "wf.toml", "--progress", "never"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("exit code 7"), "{all}");
    assert!(all.contains("before-the-pipe"), "{all}");
}

/// A matrix instance over paths (`each[data/a.txt]`) has `%2F` in its log's name, which
/// sbatch's `--output` read as a pattern: the output went to another file and the step's
/// log stayed empty. Its output is in its log, and `logs` shows it.
#[test]
fn slurm_a_step_whose_log_name_holds_a_percent_gets_its_output() {
    if !slurm_here() {
        return;
    }
    let home = Home::new(&format!(
        r#"{HEADER}
[steps.each]
matrix = {{ f = ["data/a.txt", "100%"] }}
run = "echo output-of-{{{{ matrix.f }}}}"
"#
    ));
    let out = home.bgflow(&["run", "wf.toml", "--progress", "never"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    for value in ["data/a.txt", "100%"] {
        let step = format!("each[{value}]");
        let run = home.bgflow(&["list", "--json"]);
        let list: Value = serde_json::from_slice(&run.stdout).expect("list --json");
        let id = list["runs"][0]["id"].as_str().expect("a run id").to_owned();
        let logs = home.bgflow(&["logs", &id, &step]);
        assert!(
            String::from_utf8_lossy(&logs.stdout).contains(&format!("output-of-{value}")),
            "{step}: {}",
            text(&logs)
        );
    }
}

#[test]
fn slurm_job_cancelled_outside_bgflow_fails_with_slurms_state() {
    if !slurm_here() {
        return;
    }
    let home = Home::new(&format!(
        r#"{HEADER}
[steps.victim]
run = "echo victim-started; sleep 331"
"#
    ));
    let run = home.detach();
    let status = home.wait_status(&run, "the job to run", |s| {
        Home::step(s, "victim")["job_state"] == "RUNNING"
    });
    let job = Home::step(&status, "victim")["job_id"]
        .as_str()
        .expect("a job id")
        .to_owned();
    let out = Command::new("scancel").arg(&job).output().expect("scancel");
    assert!(out.status.success(), "{}", text(&out));
    let status = home.wait_status(&run, "the run to end", |s| s["run"]["state"] != "running");
    let step = Home::step(&status, "victim");
    assert_eq!(step["state"], "failed", "{status:#}");
    let reason = step["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains(&format!("slurm job {job} ended CANCELLED")),
        "{reason}"
    );
    common::assert_no_process("sleep 331");
}

#[test]
fn slurm_timeout_sends_term_to_the_step_group_then_cancels_the_job() {
    if !slurm_here() {
        return;
    }
    let home = Home::new(&format!(
        r#"{HEADER}
[steps.slow]
run = "trap 'touch got-term; exit 7' TERM; sleep 317 & sleep 317 & wait"
timeout = "1s"
kill_grace = "60s"
"#
    ));
    let started = Instant::now();
    let out = home.bgflow(&["run", "wf.toml", "--progress", "never"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("timed out after 1s"), "{all}");
    // TERM reached the step's process group at once (the job script passes it on): the step
    // ran its trap, and the run did not wait out the 60 s grace for Slurm's kill.
    assert!(home.path().join("got-term").exists(), "{all}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the timeout waited for the grace: {:?}",
        started.elapsed()
    );
    let list: Value =
        serde_json::from_slice(&home.bgflow(&["list", "--json"]).stdout).expect("list --json");
    let run = list["runs"][0]["id"].as_str().expect("a run id").to_owned();
    let status = home.status(&run);
    let slow = Home::step(&status, "slow");
    assert_eq!(slow["state"], "timed_out", "{slow}");
    assert_eq!(
        slow["exit_code"], 7,
        "the status the step's trap exited with: {slow}"
    );
    assert!(jobs_queued(&run).is_empty(), "{:?}", jobs_queued(&run));
    common::assert_no_process("sleep 317");
}

#[test]
fn slurm_stop_leaves_no_job_and_no_process() {
    if !slurm_here() {
        return;
    }
    let home = Home::new(&format!(
        r#"{HEADER}
[steps.long]
run = "sleep 319"
"#
    ));
    let run = home.detach();
    let status = home.wait_status(&run, "the job to run", |s| {
        Home::step(s, "long")["job_state"] == "RUNNING"
    });
    let job = Home::step(&status, "long")["job_id"]
        .as_str()
        .expect("a job id")
        .to_owned();
    let out = home.bgflow(&["stop", &run, "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(jobs_queued(&run).is_empty(), "{:?}", jobs_queued(&run));
    let state = job_state(&job);
    assert!(
        state.is_empty() || state == "CANCELLED" || state == "FAILED",
        "job {job}: {state}"
    );
    assert_eq!(home.status(&run)["run"]["state"], "cancelled");
    common::assert_no_process("sleep 319");
}

#[test]
fn slurm_retry_submits_a_second_job() {
    if !slurm_here() {
        return;
    }
    let home = Home::new(&format!(
        r#"{HEADER}
[steps.flaky]
run = "if [ -e tried ]; then echo second-time; else touch tried; echo first-time; exit 1; fi"
retries = 1
retry_delay = "100ms"
"#
    ));
    let out = home.bgflow(&["run", "wf.toml", "--progress", "never"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    let list: Value =
        serde_json::from_slice(&home.bgflow(&["list", "--json"]).stdout).expect("list --json");
    let run = list["runs"][0]["id"].as_str().expect("a run id").to_owned();
    let step = Home::step(&home.status(&run), "flaky").clone();
    assert_eq!(step["attempts"], 2, "{step}");
    let events = home.bgflow(&["events", &run]);
    let submitted: Vec<String> = String::from_utf8_lossy(&events.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["type"] == "step_job" && e["state"] == "SUBMITTED")
        .map(|e| e["job_id"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(submitted.len(), 2, "{submitted:?}");
    assert_ne!(submitted[0], submitted[1]);
    let log = std::fs::read_to_string(home.path().join(format!(".bgflow/runs/{run}/flaky.log")))
        .expect("the step's log");
    assert!(
        log.contains("first-time") && log.contains("second-time"),
        "{log}"
    );
}

fn which(tool: &str) -> PathBuf {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .map(|d| Path::new(d).join(tool))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{tool} is not on PATH"))
}

#[test]
fn slurm_status_shows_the_job_and_its_pending_reason() {
    if !slurm_here() {
        return;
    }
    // `--hold` keeps the job pending, with Slurm's reason JobHeldUser.
    let home = Home::new(
        r#"[workflow]
name = "held"
executor = "slurm"

[executor.slurm]
poll_interval = "300ms"
extra = ["--hold"]

[steps.waits]
run = "true"
"#,
    );
    let run = home.detach();
    let status = home.wait_status(&run, "the job's pending reason", |s| {
        Home::step(s, "waits")["job_state"] == "PENDING (JobHeldUser)"
    });
    let job = Home::step(&status, "waits")["job_id"]
        .as_str()
        .expect("a job id")
        .to_owned();
    let human = home.bgflow(&["status", &run]);
    let shown = String::from_utf8_lossy(&human.stdout);
    assert!(
        shown.contains(&format!("slurm job {job}: PENDING (JobHeldUser)")),
        "{shown}"
    );
    // A pending job is cancelled at once by stop.
    let out = home.bgflow(&["stop", &run, "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(jobs_queued(&run).is_empty(), "{:?}", jobs_queued(&run));
    let step = Home::step(&home.status(&run), "waits").clone();
    assert_eq!(step["state"], "cancelled", "{step}");
}

#[test]
fn slurm_fail_fast_and_the_workflow_timeout_cancel_running_jobs() {
    if !slurm_here() {
        return;
    }
    // fail_fast: `bad` fails while `busy` runs; `busy`'s job is cancelled.
    let home = Home::new(&format!(
        r#"{HEADER}
[steps.busy]
run = "touch busy-started; sleep 337"

[steps.bad]
run = "sh wait.sh busy-started; exit 4"
"#
    ));
    let out = home.bgflow(&["run", "wf.toml", "--progress", "never"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    let list: Value =
        serde_json::from_slice(&home.bgflow(&["list", "--json"]).stdout).expect("list --json");
    let run = list["runs"][0]["id"].as_str().expect("a run id").to_owned();
    let status = home.status(&run);
    assert_eq!(Home::step(&status, "bad")["reason"], "exit code 4");
    let busy = Home::step(&status, "busy");
    assert_eq!(busy["state"], "cancelled", "{busy}");
    assert!(jobs_queued(&run).is_empty(), "{:?}", jobs_queued(&run));
    common::assert_no_process("sleep 337");

    // The workflow's timeout ends the job the same way.
    let home = Home::new(
        r#"[workflow]
name = "deadline"
executor = "slurm"
timeout = "3s"

[executor.slurm]
poll_interval = "300ms"

[steps.forever]
run = "sleep 339"
"#,
    );
    let out = home.bgflow(&["run", "wf.toml", "--progress", "never"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("workflow timeout (3s) was reached"), "{all}");
    let list: Value =
        serde_json::from_slice(&home.bgflow(&["list", "--json"]).stdout).expect("list --json");
    let run = list["runs"][0]["id"].as_str().expect("a run id").to_owned();
    assert!(jobs_queued(&run).is_empty(), "{:?}", jobs_queued(&run));
    common::assert_no_process("sleep 339");
}

#[test]
fn slurm_ctrl_c_of_a_foreground_run_cancels_its_job() {
    if !slurm_here() {
        return;
    }
    let home = Home::new(&format!(
        r#"{HEADER}
[steps.watched]
run = "sleep 343"
"#
    ));
    let mut child = Command::new(BIN)
        .current_dir(home.path())
        .arg("--state-dir")
        .arg(home.path().join(".bgflow"))
        .args(["run", "wf.toml", "--progress", "never"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start bgflow run");
    let deadline = Instant::now() + DEADLINE;
    let run = loop {
        let list: Value =
            serde_json::from_slice(&home.bgflow(&["list", "--json"]).stdout).unwrap_or(Value::Null);
        if let Some(id) = list["runs"][0]["id"].as_str() {
            let s = home.status(id);
            if Home::step(&s, "watched")["job_state"] == "RUNNING" {
                break id.to_owned();
            }
        }
        assert!(Instant::now() < deadline, "the job never ran");
        std::thread::sleep(Duration::from_millis(100));
    };
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill -INT");
    assert!(sent.success());
    let code = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status.code();
        }
        assert!(Instant::now() < deadline, "bgflow did not end after Ctrl-C");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(code, Some(130));
    assert!(jobs_queued(&run).is_empty(), "{:?}", jobs_queued(&run));
    assert_eq!(
        Home::step(&home.status(&run), "watched")["state"],
        "cancelled"
    );
    common::assert_no_process("sleep 343");
}

#[test]
fn slurm_failing_status_polls_are_a_warning_not_silence() {
    if !slurm_here() {
        return;
    }
    let mut home = Home::new(&format!(
        r#"{HEADER}
[steps.unseen]
run = "sleep 2; echo done-unseen"
"#
    ));
    // squeue fails as with a controller that does not answer; the job still runs.
    home.fail_squeue();
    let out = home.bgflow(&["run", "wf.toml", "--progress", "never"]);
    let all = text(&out);
    // The exit file still tells the end; the failing polls are said, not swallowed.
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(all.contains("status polls in a row failed"), "{all}");
    assert!(all.contains("Unable to contact slurm controller"), "{all}");
}

#[test]
fn slurm_job_that_ends_without_an_exit_status_fails_with_slurms_state_after_the_grace() {
    if !slurm_here() {
        return;
    }
    // The step kills its job script, which then never writes the exit file.
    let home = Home::new(&format!(
        r#"{HEADER}
[steps.selfkill]
run = "echo about-to-kill; kill -KILL $PPID; sleep 347"
"#
    ));
    let out = home.bgflow(&["run", "wf.toml", "--progress", "never"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("no exit status written within 10s"), "{all}");
    assert!(all.contains("about-to-kill"), "{all}");
    assert!(!all.contains("unknown"), "{all}");
    let list: Value =
        serde_json::from_slice(&home.bgflow(&["list", "--json"]).stdout).expect("list --json");
    let run = list["runs"][0]["id"].as_str().expect("a run id").to_owned();
    let step = Home::step(&home.status(&run), "selfkill").clone();
    let job = step["job_id"].as_str().expect("a job id");
    let reason = step["reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with(&format!("slurm job {job} ended ")),
        "{reason}"
    );
    assert!(jobs_queued(&run).is_empty(), "{:?}", jobs_queued(&run));
    // The step stays in the job script's process group: Slurm ends it with its job.
    let deadline = Instant::now() + DEADLINE;
    while !common::live_processes("sleep 347").is_empty() {
        assert!(Instant::now() < deadline, "sleep 347 outlived its job");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn slurm_job_that_left_the_run_s_queue_without_an_exit_status_fails_with_the_state_accounting_gives(
) {
    if !slurm_here() {
        return;
    }
    // The step renames its job, so the run's one `squeue --name=bgflow-RUN` no longer lists
    // it (as when Slurm has purged a job), then kills its job script, which never writes the
    // exit file. bgflow must ask accounting (here the job completion log, `sacct -c`).
    let home = Home::new(&format!(
        r#"{HEADER}
[steps.renamed]
run = "scontrol update jobid=$SLURM_JOB_ID name=bgflow-renamed-away && echo renamed && kill -KILL $PPID; sleep 348"
"#
    ));
    let out = home.bgflow(&["run", "wf.toml", "--progress", "never"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("renamed"), "{all}");
    assert!(all.contains("no exit status written within 10s"), "{all}");
    let list: Value =
        serde_json::from_slice(&home.bgflow(&["list", "--json"]).stdout).expect("list --json");
    let run = list["runs"][0]["id"].as_str().expect("a run id").to_owned();
    let step = Home::step(&home.status(&run), "renamed").clone();
    let job = step["job_id"].as_str().expect("a job id");
    let reason = step["reason"].as_str().unwrap_or_default();
    // Accounting knew the job: its state is in the reason, not "gone" or "unknown".
    assert!(
        reason.starts_with(&format!("slurm job {job} ended ")),
        "{reason}"
    );
    assert!(
        ["FAILED", "CANCELLED", "COMPLETED", "NODE_FAIL"]
            .iter()
            .any(|s| reason.contains(s)),
        "{reason}"
    );
    assert!(
        !reason.contains("gone") && !reason.contains("unknown"),
        "{reason}"
    );
    let deadline = Instant::now() + DEADLINE;
    while !common::live_processes("sleep 348").is_empty() {
        assert!(Instant::now() < deadline, "sleep 348 outlived its job");
        std::thread::sleep(Duration::from_millis(100));
    }
}
