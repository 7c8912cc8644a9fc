//! `bgflow run`, run as the real binary on workflows written into temp dirs, with real
//! processes, real signals and real files (issue 3; DESIGN.md §1, §2, §5.2–§5.4).
//!
//! Every test builds a `Flow`: a temp dir holding `bgflow.toml` and two helper scripts the
//! steps use to wait without guessing (`wait.sh FILE`, `slot.sh N [BARRIER]`). The test
//! polls with a deadline (`wait_until`) and never sleeps and hopes. Each test that looks for
//! leftover processes gives its `sleep`s a duration no other test uses (`sleep 331`), so the
//! scan of /proc finds only its own processes even when tests run in parallel.

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use regex::Regex;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_bgflow");

/// Longest any single run may take before the test gives up on it.
const RUN_DEADLINE: Duration = Duration::from_secs(40);
/// Longest a test waits for something it expects to happen soon.
const SOON: Duration = Duration::from_secs(20);

/// `sh wait.sh FILE`: waits until FILE exists, for at most ~20 s (then exit 9, so a
/// scheduling bug fails the step instead of hanging the suite).
const WAIT_SH: &str = r#"i=0
while [ ! -e "$1" ]; do
  i=$((i+1))
  if [ "$i" -gt 400 ]; then echo "gave up waiting for $1"; exit 9; fi
  sleep 0.05
done
"#;

/// `sh slot.sh N [BARRIER]`: takes one of N slots (a folder made with the atomic `mkdir`)
/// and fails if all N are taken, i.e. if more than N steps run at once. With BARRIER, waits
/// (at most ~20 s) until BARRIER steps have started, i.e. until BARRIER run at once.
const SLOT_SH: &str = r#"mkdir -p slots started
mine=
k=1
while [ "$k" -le "$1" ]; do
  if mkdir "slots/$k" 2>/dev/null; then mine=$k; break; fi
  k=$((k+1))
done
if [ -z "$mine" ]; then echo "more than $1 steps at once"; exit 1; fi
touch "started/$BGFLOW_STEP"
if [ -n "$2" ]; then
  i=0
  while [ "$(ls started | wc -l)" -lt "$2" ]; do
    i=$((i+1))
    if [ "$i" -gt 400 ]; then echo "only $(ls started | wc -l) of $2 steps ran at once"; exit 9; fi
    sleep 0.05
  done
fi
sleep 0.2
rmdir "slots/$mine"
"#;

/// A workflow in a fresh temp dir.
struct Flow {
    dir: tempfile::TempDir,
}

impl Flow {
    fn new(manifest: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("bgflow-run-")
            .tempdir()
            .expect("a temp dir");
        let flow = Self { dir };
        flow.write("bgflow.toml", manifest);
        flow.write("wait.sh", WAIT_SH);
        flow.write("slot.sh", SLOT_SH);
        flow
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn write(&self, rel: &str, contents: &str) {
        let full = self.path().join(rel);
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(full, contents).expect("write");
    }

    fn exists(&self, rel: &str) -> bool {
        self.path().join(rel).exists()
    }

    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path().join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
    }

    /// `bgflow --color never run bgflow.toml --progress never ARGS`, to the end.
    fn run(&self, args: &[&str]) -> Outcome {
        self.start(args).finish()
    }

    /// `bgflow --color never run bgflow.toml --progress never ARGS`, in the background.
    fn start(&self, args: &[&str]) -> Running {
        let mut all = vec![
            "--color",
            "never",
            "run",
            "bgflow.toml",
            "--progress",
            "never",
        ];
        all.extend_from_slice(args);
        self.start_raw(&all, &[])
    }

    /// `bgflow ARGS` with extra environment, in the background.
    fn start_raw(&self, args: &[&str], env: &[(&str, &str)]) -> Running {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .current_dir(self.path())
            .env_remove("CI")
            .env_remove("BGFLOW_STATE_DIR")
            .env_remove("BGFLOW_CONFIG")
            .env_remove("NO_COLOR")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start bgflow");
        let stderr = Arc::new(Mutex::new(String::new()));
        let pipe = child.stderr.take().expect("stderr pipe");
        let sink = Arc::clone(&stderr);
        let reader = std::thread::spawn(move || {
            let mut pipe = BufReader::new(pipe);
            let mut line = String::new();
            while pipe.read_line(&mut line).is_ok_and(|n| n > 0) {
                sink.lock().expect("stderr lock").push_str(&line);
                line.clear();
            }
        });
        Running {
            child,
            cwd: self.path().to_path_buf(),
            stderr,
            reader: Some(reader),
            started: Instant::now(),
        }
    }
}

/// A bgflow process still running; its stderr is collected as it comes.
struct Running {
    child: Child,
    /// Where bgflow runs; relative paths it prints are relative to this.
    cwd: PathBuf,
    stderr: Arc<Mutex<String>>,
    reader: Option<JoinHandle<()>>,
    started: Instant,
}

impl Running {
    fn pid(&self) -> Pid {
        Pid::from_raw(i32::try_from(self.child.id()).expect("pid fits"))
    }

    fn stderr(&self) -> String {
        self.stderr.lock().expect("stderr lock").clone()
    }

    fn signal(&self, sig: Signal) {
        kill(self.pid(), sig).expect("signal bgflow");
    }

    /// Waits until stderr contains `text`.
    fn wait_for_stderr(&self, text: &str) {
        wait_until(SOON, &format!("stderr to contain {text:?}"), || {
            self.stderr().contains(text)
        });
    }

    /// The run's log folder, from the first plain line (`... logs in DIR`).
    fn log_dir(&self) -> PathBuf {
        self.wait_for_stderr("logs in ");
        let text = self.stderr();
        let line = text
            .lines()
            .find(|l| l.contains("logs in "))
            .expect("a logs-in line");
        self.cwd
            .join(line.rsplit_once("logs in ").expect("logs in").1.trim())
    }

    /// Waits for bgflow to exit (at most `RUN_DEADLINE`) and collects what it left.
    fn finish(mut self) -> Outcome {
        let deadline = self.started + RUN_DEADLINE;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait for bgflow") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "bgflow did not finish within {RUN_DEADLINE:?}; stderr so far:\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        if let Some(reader) = self.reader.take() {
            reader.join().expect("stderr reader");
        }
        let stderr = self.stderr();
        let log_dir = stderr
            .lines()
            .rev()
            .find_map(|l| l.rsplit_once("; logs in "))
            .map(|(_, dir)| self.cwd.join(dir.trim()));
        let summary = log_dir.as_ref().and_then(|d| {
            let text = std::fs::read_to_string(d.join("summary.json")).ok()?;
            Some(serde_json::from_str(&text).expect("summary.json is JSON"))
        });
        Outcome {
            status,
            stderr,
            log_dir,
            summary,
            elapsed: self.started.elapsed(),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // Only when a test failed half-way: stop bgflow the way a user would, so it stops
        // its steps, then make sure.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = kill(self.pid(), Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(5);
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// What a finished bgflow left behind.
struct Outcome {
    status: ExitStatus,
    stderr: String,
    log_dir: Option<PathBuf>,
    summary: Option<Value>,
    elapsed: Duration,
}

impl Outcome {
    fn code(&self) -> i32 {
        self.status.code().unwrap_or_else(|| {
            panic!(
                "bgflow died of signal {:?}; stderr:\n{}",
                self.status.signal(),
                self.stderr
            )
        })
    }

    #[track_caller]
    fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code(),
            code,
            "exit code; stderr:\n{}\nsummary: {:#?}",
            self.stderr,
            self.summary
        );
        self
    }

    fn summary(&self) -> &Value {
        self.summary
            .as_ref()
            .unwrap_or_else(|| panic!("no summary.json; stderr:\n{}", self.stderr))
    }

    fn log_dir(&self) -> &Path {
        self.log_dir.as_deref().expect("a log folder")
    }

    /// The summary.json entry of step `name`.
    fn step(&self, name: &str) -> &Value {
        self.summary()["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("no step {name} in summary.json: {:#?}", self.summary()))
    }

    fn state(&self, name: &str) -> &str {
        self.step(name)["state"].as_str().expect("a state")
    }

    fn reason(&self, name: &str) -> &str {
        self.step(name)["reason"].as_str().unwrap_or("")
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.log_dir().join(format!("{name}.log"))).unwrap_or_default()
    }

    #[track_caller]
    fn expect_state(&self, name: &str, state: &str) -> &Self {
        assert_eq!(
            self.state(name),
            state,
            "state of {name}: {:#}\nstderr:\n{}",
            self.step(name),
            self.stderr
        );
        self
    }
}

/// Polls `cond` every 10 ms until it holds; panics after `within`.
#[track_caller]
fn wait_until(within: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Pids of live processes whose command line contains `needle` (zombies count as gone).
fn live_processes(needle: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| {
            let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                return false;
            };
            let cmdline = String::from_utf8_lossy(&raw).replace('\0', " ");
            cmdline.contains(needle) && proc_state(pid).is_some_and(|s| s != 'Z' && s != 'X')
        })
        .collect()
}

/// State letter and process group of a pid, from /proc/PID/stat.
fn proc_stat(pid: u32) -> Option<(char, i32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    let state = fields.next()?.chars().next()?;
    let _ppid = fields.next()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some((state, pgrp))
}

fn proc_state(pid: u32) -> Option<char> {
    proc_stat(pid).map(|(s, _)| s)
}

/// Live (non-zombie) members of process group `pgid`.
fn live_group_members(pgid: i32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| proc_stat(pid).is_some_and(|(s, g)| g == pgid && s != 'Z' && s != 'X'))
        .collect()
}

/// Whether `pid` is still the live process whose command line contains `needle`.
fn still_running(pid: u32, needle: &str) -> bool {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|raw| String::from_utf8_lossy(&raw).replace('\0', " "))
        .unwrap_or_default();
    cmdline.contains(needle) && proc_state(pid).is_some_and(|s| s != 'Z' && s != 'X')
}

#[track_caller]
fn assert_no_process(needle: &str) {
    let left = live_processes(needle);
    assert!(left.is_empty(), "processes `{needle}` survived: {left:?}");
}

// ---------------------------------------------------------------------------------------
// Scheduling: as soon as upstream succeeded, within -j / max_parallel / CPU count.
// ---------------------------------------------------------------------------------------

/// a -> b, a -> c, c -> d, and b waits for a file only d makes. Wave by wave, b would run
/// with c and give up before d ever started; as soon as upstream succeeded, d runs while b
/// waits. Also DESIGN.md §5.2: a valid diamond completes.
#[test]
fn step_starts_as_soon_as_its_upstream_succeeded_not_wave_by_wave() {
    let flow = Flow::new(
        r#"
[workflow]
name = "diamond"

[steps.a]
run = "touch a.done"

[steps.b]
needs = ["a"]
run = "sh wait.sh d.marker && touch b.done"

[steps.c]
needs = ["a"]
run = "touch c.done"

[steps.d]
needs = ["c"]
run = "touch d.marker"
"#,
    );
    let out = flow.run(&["-j", "4"]);
    out.expect_code(0);
    for s in ["a", "b", "c", "d"] {
        out.expect_state(s, "succeeded");
    }
    assert!(flow.exists("b.done"));
}

/// DESIGN.md §5.2: fan-out then fan-in through artifacts only (edges implied by inputs and
/// outputs, a glob input) completes without a stall.
#[test]
fn fan_out_fan_in_through_artifacts_completes() {
    let mut manifest = String::from(
        "[workflow]\nname = \"fan\"\n\n[steps.seed]\nrun = \"echo seed > out/seed.txt\"\noutputs = [\"out/seed.txt\"]\n",
    );
    for i in 0..6 {
        manifest.push_str(&format!(
            "\n[steps.part{i}]\nrun = \"cat out/seed.txt > parts/p{i}.txt\"\ninputs = [\"out/seed.txt\"]\noutputs = [\"parts/p{i}.txt\"]\n"
        ));
    }
    manifest.push_str(
        "\n[steps.join]\nrun = \"cat parts/*.txt > joined.txt\"\ninputs = [\"parts/*.txt\"]\noutputs = [\"joined.txt\"]\n",
    );
    let flow = Flow::new(&manifest);
    let out = flow.run(&["-j", "3"]);
    out.expect_code(0);
    out.expect_state("join", "succeeded");
    assert_eq!(flow.read("joined.txt"), "seed\n".repeat(6));
}

fn independent_slot_steps(names: &[&str], slots: usize, barrier: Option<usize>) -> String {
    let mut manifest = String::from("[workflow]\nname = \"slots\"\n");
    manifest.push_str("MAX_PARALLEL\n");
    let barrier = barrier.map(|b| format!(" {b}")).unwrap_or_default();
    for name in names {
        manifest.push_str(&format!(
            "\n[steps.{name}]\nrun = \"sh slot.sh {slots}{barrier}\"\n"
        ));
    }
    manifest
}

/// -j 1 overrides workflow.max_parallel: each step takes the single slot, so any overlap
/// fails a step.
#[test]
fn jobs_1_runs_one_step_at_a_time() {
    let manifest = independent_slot_steps(&["s1", "s2", "s3", "s4"], 1, None)
        .replace("MAX_PARALLEL", "max_parallel = 4");
    let flow = Flow::new(&manifest);
    let out = flow.run(&["-j", "1"]);
    out.expect_code(0);
    for s in ["s1", "s2", "s3", "s4"] {
        out.expect_state(s, "succeeded");
    }
}

/// Without -j, workflow.max_parallel is the limit.
#[test]
fn max_parallel_limits_when_jobs_is_not_given() {
    let manifest = independent_slot_steps(&["s1", "s2", "s3"], 1, None)
        .replace("MAX_PARALLEL", "max_parallel = 1");
    let flow = Flow::new(&manifest);
    flow.run(&[]).expect_code(0);
}

/// -j 3: never more than 3 at once (3 slots) and really 3 at once (a barrier of 3).
#[test]
fn jobs_n_runs_exactly_n_steps_at_once() {
    let manifest = independent_slot_steps(&["s1", "s2", "s3", "s4", "s5"], 3, Some(3))
        .replace("MAX_PARALLEL", "max_parallel = 1");
    let flow = Flow::new(&manifest);
    let out = flow.run(&["-j", "3"]);
    out.expect_code(0);
    for s in ["s1", "s2", "s3", "s4", "s5"] {
        out.expect_state(s, "succeeded");
    }
}

/// Neither -j nor max_parallel: the number of CPUs, no more and no less.
#[test]
fn jobs_default_to_the_cpu_count() {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let names: Vec<String> = (0..=cpus).map(|i| format!("s{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let manifest = independent_slot_steps(&names, cpus, Some(cpus)).replace("MAX_PARALLEL", "");
    let flow = Flow::new(&manifest);
    flow.run(&[]).expect_code(0);
}

// ---------------------------------------------------------------------------------------
// Failures: fail-fast, keep-going, allow_failure.
// ---------------------------------------------------------------------------------------

/// fail_fast (the default): `bad` fails while `polite` (handles TERM) and `stubborn`
/// (ignores TERM) run. Nothing new starts (`late` waits for a free slot and never runs),
/// the running steps get SIGTERM to their groups, `stubborn` SIGKILL after its kill_grace.
#[test]
fn fail_fast_stops_running_steps_and_starts_nothing_new() {
    let flow = Flow::new(
        r#"
[workflow]
name = "fail-fast"

[steps.polite]
run = "trap 'echo polite got TERM; exit 143' TERM; touch polite.started; sleep 331 & wait"

[steps.stubborn]
run = "trap '' TERM; touch stubborn.started; sleep 332"
kill_grace = "300ms"

[steps.bad]
run = "sh wait.sh polite.started && sh wait.sh stubborn.started && echo bad breaks && exit 1"

[steps.late]
run = "touch late.ran"

[steps.after_polite]
needs = ["polite"]
run = "touch after_polite.ran"
"#,
    );
    let out = flow.run(&["-j", "3"]);
    out.expect_code(1);
    out.expect_state("bad", "failed");
    out.expect_state("polite", "cancelled");
    out.expect_state("stubborn", "cancelled");
    out.expect_state("late", "cancelled");
    out.expect_state("after_polite", "cancelled");
    assert!(
        out.reason("late").contains("`bad` failed"),
        "{}",
        out.reason("late")
    );
    assert!(!flow.exists("late.ran") && !flow.exists("after_polite.ran"));
    assert!(
        out.log("polite").contains("polite got TERM"),
        "SIGTERM reached the step's group: {:?}",
        out.log("polite")
    );
    assert_eq!(
        out.step("stubborn")["signal"],
        "SIGKILL",
        "SIGKILL after the grace"
    );
    assert_eq!(out.summary()["state"], "failed");
    assert_no_process("sleep 331");
    assert_no_process("sleep 332");
}

const KEEP_GOING: &str = r#"
[workflow]
name = "keep-going"
FAIL_FAST

[steps.a]
run = "echo a breaks; touch a.marker; exit 1"

[steps.b]
needs = ["a"]
run = "touch b.ran"

[steps.e]
needs = ["b"]
run = "touch e.ran"

[steps.c]
run = "sh wait.sh a.marker && sleep 0.5 && touch c.done"

[steps.d]
needs = ["c"]
run = "touch d.ran"
"#;

fn assert_kept_going(flow: &Flow, out: &Outcome) {
    out.expect_code(1);
    out.expect_state("a", "failed");
    out.expect_state("b", "skipped");
    out.expect_state("e", "skipped");
    assert_eq!(out.reason("b"), "upstream step `a` failed");
    assert_eq!(out.reason("e"), "upstream step `a` failed");
    out.expect_state("c", "succeeded");
    out.expect_state("d", "succeeded");
    assert!(flow.exists("c.done") && flow.exists("d.ran"));
    assert!(!flow.exists("b.ran") && !flow.exists("e.ran"));
    assert!(out.stderr.contains("b skipped: upstream step `a` failed"));
}

/// --keep-going: the independent branch c -> d goes on (c was running when a failed); the
/// dependents of the failure are skipped with the reason; the run still exits 1.
#[test]
fn keep_going_runs_independent_branches_and_skips_dependents() {
    let flow = Flow::new(&KEEP_GOING.replace("FAIL_FAST", ""));
    let out = flow.run(&["-j", "2", "--keep-going"]);
    assert_kept_going(&flow, &out);
}

/// `fail_fast = false` in the workflow behaves like --keep-going.
#[test]
fn fail_fast_false_in_the_workflow_keeps_going() {
    let flow = Flow::new(&KEEP_GOING.replace("FAIL_FAST", "fail_fast = false"));
    let out = flow.run(&["-j", "2"]);
    assert_kept_going(&flow, &out);
}

/// allow_failure: the failure shows (summary, warning block) but the run succeeds, and its
/// dependents run (like GitHub's continue-on-error).
#[test]
fn allowed_failure_is_shown_but_does_not_fail_the_run() {
    let flow = Flow::new(
        r#"
[workflow]
name = "allowed"

[steps.lint]
run = "echo lint is unhappy; exit 2"
allow_failure = true

[steps.build]
needs = ["lint"]
run = "touch built"
"#,
    );
    let out = flow.run(&[]);
    out.expect_code(0);
    out.expect_state("lint", "failed");
    out.expect_state("build", "succeeded");
    assert_eq!(out.step("lint")["allow_failure"], true);
    assert_eq!(out.summary()["state"], "succeeded");
    assert!(flow.exists("built"));
    assert!(out.stderr.contains("failed (allowed)"), "{}", out.stderr);
    assert!(
        out.stderr.contains("warning: lint failed: exit code 2"),
        "{}",
        out.stderr
    );
}

// ---------------------------------------------------------------------------------------
// --only, workflow.timeout
// ---------------------------------------------------------------------------------------

/// --only b runs b with its upstream a, not its downstream c nor the unrelated x.
#[test]
fn only_runs_the_step_with_its_upstream() {
    let flow = Flow::new(
        r#"
[workflow]
name = "only"

[steps.a]
run = "touch a.ran"

[steps.b]
needs = ["a"]
run = "touch b.ran"

[steps.c]
needs = ["b"]
run = "touch c.ran"

[steps.x]
run = "touch x.ran"
"#,
    );
    let out = flow.run(&["--only", "b"]);
    out.expect_code(0);
    assert!(flow.exists("a.ran") && flow.exists("b.ran"));
    assert!(!flow.exists("c.ran") && !flow.exists("x.ran"));
    let names: Vec<&str> = out.summary()["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(names, ["a", "b"]);

    let unknown = flow.run(&["--only", "bb"]);
    unknown.expect_code(2);
    assert!(
        unknown.stderr.contains("did you mean `b`"),
        "{}",
        unknown.stderr
    );
}

/// workflow.timeout bounds the whole run: the running step is stopped, the rest is not
/// started, the run fails with the reason, and no process survives.
#[test]
fn workflow_timeout_bounds_the_whole_run() {
    let flow = Flow::new(
        r#"
[workflow]
name = "bounded"
timeout = "1s"

[steps.long]
run = "sleep 361"
kill_grace = "300ms"

[steps.after]
needs = ["long"]
run = "touch after.ran"
"#,
    );
    let out = flow.run(&[]);
    out.expect_code(1);
    out.expect_state("long", "cancelled");
    out.expect_state("after", "cancelled");
    assert!(!flow.exists("after.ran"));
    let reason = out.summary()["reason"].as_str().unwrap_or("");
    assert!(reason.contains("workflow timeout (1s)"), "{reason}");
    assert!(out.elapsed < Duration::from_secs(15), "{:?}", out.elapsed);
    assert_no_process("sleep 361");
}

// ---------------------------------------------------------------------------------------
// The step's process: group, stdin, cwd, env, shell or not.
// ---------------------------------------------------------------------------------------

/// A step runs as the leader of its own process group, with stdin from /dev/null, in its
/// cwd, with [env], its own env and BGFLOW_RUN_ID / STEP / ATTEMPT / PROGRESS.
#[test]
fn step_runs_in_its_own_group_with_null_stdin_cwd_and_env() {
    let flow = Flow::new(
        r#"
[workflow]
name = "probe"

[env]
SHARED = "from the env table"

[steps.probe]
cwd = "sub"
env = { OWN = "from the step" }
run = '''
echo "pid=$$"
echo "pgrp=$(cut -d' ' -f5 /proc/$$/stat)"
echo "stdin=$(readlink /proc/self/fd/0)"
echo "stdin_bytes=$(wc -c)"
echo "cwd=$(pwd -P)"
echo "shared=$SHARED"
echo "own=$OWN"
echo "run_id=$BGFLOW_RUN_ID"
echo "step=$BGFLOW_STEP"
echo "attempt=$BGFLOW_ATTEMPT"
echo "progress=$BGFLOW_PROGRESS"
'''
"#,
    );
    std::fs::create_dir(flow.path().join("sub")).expect("mkdir sub");
    let out = flow.run(&[]);
    out.expect_code(0);
    let log = out.log("probe");
    let field = |k: &str| -> String {
        log.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap_or_else(|| panic!("no {k}= in the log:\n{log}"))
            .to_owned()
    };
    assert_eq!(field("pgrp"), field("pid"), "the step leads its own group");
    assert_ne!(
        field("pgrp"),
        nix::unistd::getpgrp().to_string(),
        "not bgflow's group"
    );
    assert_eq!(field("stdin"), "/dev/null");
    assert_eq!(field("stdin_bytes"), "0");
    let sub = flow.path().join("sub").canonicalize().expect("canonical");
    assert_eq!(field("cwd"), sub.display().to_string());
    assert_eq!(field("shared"), "from the env table");
    assert_eq!(field("own"), "from the step");
    assert_eq!(
        field("run_id"),
        out.summary()["run_id"].as_str().expect("id")
    );
    assert_eq!(field("step"), "probe");
    assert_eq!(field("attempt"), "1");
    assert_eq!(
        field("progress"),
        out.log_dir().join("probe.progress").display().to_string()
    );
    assert_eq!(
        out.step("probe")["pid"].as_u64().map(|p| p.to_string()),
        Some(field("pid")),
        "summary.json records the step's pid"
    );
}

/// A string `run` goes through `sh -c`; an array is executed directly, so `$HOME` and
/// `;` stay literal.
#[test]
fn string_run_uses_sh_and_array_run_uses_no_shell() {
    let flow = Flow::new(
        r#"
[workflow]
name = "argv"

[steps.shell]
run = 'echo "$0 $HOME"'

[steps.direct]
run = ["printf", "%s|%s", "$HOME", "a b; touch PWNED"]
"#,
    );
    let out = flow.run(&[]);
    out.expect_code(0);
    assert_eq!(out.log("direct"), "$HOME|a b; touch PWNED");
    let home = std::env::var("HOME").unwrap_or_default();
    assert_eq!(out.log("shell"), format!("sh {home}\n"));
    assert!(!flow.exists("PWNED"));
}

// ---------------------------------------------------------------------------------------
// Timeouts and signals end the whole process tree (DESIGN.md §5.3).
// ---------------------------------------------------------------------------------------

/// timeout = "1s" on `sleep & sleep; wait` (three levels of processes): SIGTERM to the
/// whole group, the step is timed_out, and no process of it survives.
#[test]
fn timeout_kills_the_whole_process_tree() {
    let flow = Flow::new(
        r#"
[workflow]
name = "tree"

[steps.tree]
run = '''sh -c 'sleep 351 & echo $! > bg.pid; sh -c "echo \$\$ > fg.pid; exec sleep 352"; wait' '''
timeout = "1s"
kill_grace = "500ms"
"#,
    );
    let out = flow.run(&[]);
    out.expect_code(1);
    out.expect_state("tree", "timed_out");
    assert_eq!(out.reason("tree"), "timed out after 1s");
    for (file, needle) in [("bg.pid", "sleep 351"), ("fg.pid", "sleep 352")] {
        let pid: u32 = flow.read(file).trim().parse().expect("a pid");
        assert!(
            !still_running(pid, needle),
            "{needle} (pid {pid}) survived the timeout"
        );
    }
    assert_no_process("sleep 351");
    assert_no_process("sleep 352");
    let pgid = out.step("tree")["pid"].as_i64().expect("pid") as i32;
    assert!(live_group_members(pgid).is_empty());
}

/// A step that traps TERM outlives the SIGTERM and is killed by SIGKILL after kill_grace.
#[test]
fn timeout_sigkills_a_step_that_traps_term_after_the_grace() {
    let flow = Flow::new(
        r#"
[workflow]
name = "stubborn"

[steps.stubborn]
run = "trap 'echo got TERM, staying' TERM; while :; do sleep 0.05; done"
timeout = "1s"
kill_grace = "500ms"
"#,
    );
    let out = flow.run(&[]);
    out.expect_code(1);
    out.expect_state("stubborn", "timed_out");
    assert_eq!(out.step("stubborn")["signal"], "SIGKILL");
    assert!(
        out.log("stubborn").contains("got TERM, staying"),
        "TERM came first"
    );
    let ms = out.step("stubborn")["duration_ms"]
        .as_u64()
        .expect("duration");
    assert!(
        ms >= 1500,
        "killed after timeout + grace, not before: {ms} ms"
    );
    let pgid = out.step("stubborn")["pid"].as_i64().expect("pid") as i32;
    assert!(live_group_members(pgid).is_empty());
}

/// SIGINT / SIGTERM / SIGHUP to bgflow: forwarded to every running group; the running and
/// pending steps are cancelled; bgflow exits 128+N; nothing survives.
fn signal_cancels_the_run(sig: Signal, code: i32, sleep: &str) {
    let flow = Flow::new(&format!(
        r#"
[workflow]
name = "signalled"

[steps.first]
run = "touch first.started; {sleep}"
kill_grace = "2s"

[steps.second]
run = "touch second.started; {sleep}"
kill_grace = "2s"

[steps.next]
needs = ["first"]
run = "touch next.ran"
"#
    ));
    let running = flow.start(&["-j", "2"]);
    wait_until(SOON, "both steps to start", || {
        flow.exists("first.started") && flow.exists("second.started")
    });
    wait_until(SOON, "the sleeps to run", || {
        live_processes(sleep).len() >= 2
    });
    running.signal(sig);
    let out = running.finish();
    out.expect_code(code);
    assert_eq!(out.summary()["state"], "cancelled");
    assert_eq!(out.summary()["signal"], sig as i32);
    out.expect_state("first", "cancelled");
    out.expect_state("second", "cancelled");
    out.expect_state("next", "cancelled");
    assert!(!flow.exists("next.ran"));
    assert!(
        out.elapsed < Duration::from_secs(15),
        "within the grace: {:?}",
        out.elapsed
    );
    assert_no_process(sleep);
}

#[test]
fn sigint_cancels_the_steps_and_exits_130() {
    signal_cancels_the_run(Signal::SIGINT, 130, "sleep 341");
}

#[test]
fn sigterm_cancels_the_steps_and_exits_143() {
    signal_cancels_the_run(Signal::SIGTERM, 143, "sleep 342");
}

#[test]
fn sighup_cancels_the_steps_and_exits_129() {
    signal_cancels_the_run(Signal::SIGHUP, 129, "sleep 343");
}

/// A second Ctrl-C kills at once, without waiting out a long kill_grace.
#[test]
fn second_sigint_kills_at_once() {
    let flow = Flow::new(
        r#"
[workflow]
name = "impatient"

[steps.stubborn]
run = "trap '' INT TERM; touch stubborn.started; sleep 344"
kill_grace = "60s"
"#,
    );
    let running = flow.start(&[]);
    wait_until(SOON, "the step to start", || {
        flow.exists("stubborn.started")
    });
    wait_until(SOON, "the sleep to run", || {
        !live_processes("sleep 344").is_empty()
    });
    running.signal(Signal::SIGINT);
    running.wait_for_stderr("got signal 2");
    assert!(
        !live_processes("sleep 344").is_empty(),
        "the step ignores SIGINT and SIGTERM"
    );
    let second = Instant::now();
    running.signal(Signal::SIGINT);
    let out = running.finish();
    out.expect_code(130);
    assert!(
        second.elapsed() < Duration::from_secs(10),
        "killed at once, not after the 60s grace: {:?}",
        second.elapsed()
    );
    out.expect_state("stubborn", "cancelled");
    assert_eq!(out.step("stubborn")["signal"], "SIGKILL");
    assert_no_process("sleep 344");
}

// ---------------------------------------------------------------------------------------
// Retries
// ---------------------------------------------------------------------------------------

/// retries = 2, retry_delay = 300ms: three attempts, 300 ms then 600 ms apart (doubling),
/// each with a header in the log; the failure report shows the last attempt's lines.
#[test]
fn retries_double_the_delay_and_log_every_attempt() {
    let flow = Flow::new(
        r#"
[workflow]
name = "flaky"

[steps.flaky]
run = "date +%s.%N >> times.txt; echo attempt $BGFLOW_ATTEMPT says no; exit 1"
retries = 2
retry_delay = "300ms"
"#,
    );
    let out = flow.run(&[]);
    out.expect_code(1);
    out.expect_state("flaky", "failed");
    assert_eq!(out.step("flaky")["attempts"], 3);
    let times: Vec<f64> = flow
        .read("times.txt")
        .lines()
        .map(|l| l.parse().expect("a time"))
        .collect();
    assert_eq!(times.len(), 3);
    let (gap1, gap2) = (times[1] - times[0], times[2] - times[1]);
    assert!(gap1 >= 0.3, "first delay {gap1}");
    assert!(gap2 >= 0.6, "second delay doubled: {gap2}");
    let log = out.log("flaky");
    for n in 1..=3 {
        assert!(
            log.contains(&format!("--- bgflow: flaky attempt {n} of 3:")),
            "attempt header {n}:\n{log}"
        );
        assert!(log.contains(&format!("attempt {n} says no")), "{log}");
    }
    assert_eq!(
        out.step("flaky")["last_lines"],
        serde_json::json!(["attempt 3 says no"])
    );
    assert!(
        out.stderr.contains("retrying flaky in 300ms: attempt 2"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("retrying flaky in 600ms: attempt 3"),
        "{}",
        out.stderr
    );
}

/// A step that fails once and then succeeds succeeds, with 2 attempts.
#[test]
fn retry_succeeds_on_a_later_attempt() {
    let flow = Flow::new(
        r#"
[workflow]
name = "second-time"

[steps.eventually]
run = '[ "$BGFLOW_ATTEMPT" -ge 2 ] || { echo not yet; exit 1; }; echo fine'
retries = 3
retry_delay = "100ms"
"#,
    );
    let out = flow.run(&[]);
    out.expect_code(0);
    out.expect_state("eventually", "succeeded");
    assert_eq!(out.step("eventually")["attempts"], 2);
}

// ---------------------------------------------------------------------------------------
// Outputs and fail_on
// ---------------------------------------------------------------------------------------

/// After exit 0 every declared output must exist ("dir/" = a non-empty folder); the
/// folders of outputs are made before the step starts.
#[test]
fn declared_outputs_are_checked_and_their_folders_made() {
    let flow = Flow::new(
        r#"
[workflow]
name = "outputs"

[steps.forgets]
run = "echo did nothing"
outputs = ["result.txt"]

[steps.empty_dir]
run = "true"
outputs = ["reports/"]

[steps.nested]
run = "echo x > deep/er/file.txt"
outputs = ["deep/er/file.txt"]

[steps.full_dir]
run = "echo x > made/one.txt"
outputs = ["made/"]
"#,
    );
    let out = flow.run(&["--keep-going"]);
    out.expect_code(1);
    out.expect_state("forgets", "failed");
    assert_eq!(
        out.reason("forgets"),
        "declared output `result.txt` was not produced"
    );
    assert_eq!(out.step("forgets")["exit_code"], 0);
    out.expect_state("empty_dir", "failed");
    assert!(
        out.reason("empty_dir")
            .starts_with("declared output `reports/` was not produced"),
        "{}",
        out.reason("empty_dir")
    );
    out.expect_state("nested", "succeeded");
    out.expect_state("full_dir", "succeeded");
}

/// A fail_on match in the output fails the step even though it exited 0.
#[test]
fn fail_on_match_fails_a_step_that_exited_0() {
    let flow = Flow::new(
        r#"
[workflow]
name = "fail-on"

[steps.script]
run = "echo working; echo 'Traceback (most recent call last):'; echo '  boom'"
fail_on = ['Traceback \(most recent call last\)']
"#,
    );
    let out = flow.run(&[]);
    out.expect_code(1);
    out.expect_state("script", "failed");
    assert_eq!(out.step("script")["exit_code"], 0);
    assert!(
        out.reason("script").contains("fail_on")
            && out
                .reason("script")
                .contains("Traceback (most recent call last):"),
        "{}",
        out.reason("script")
    );
}

// ---------------------------------------------------------------------------------------
// Logs, plain lines, progress
// ---------------------------------------------------------------------------------------

/// stdout and stderr reach the log as they come: the step prints a line, then waits for a
/// file the test makes only after it saw that line in the log.
#[test]
fn output_streams_to_the_log_while_the_step_runs() {
    let flow = Flow::new(
        r#"
[workflow]
name = "stream"

[steps.talk]
run = "echo first line; echo to stderr >&2; sh wait.sh go; echo second line"
"#,
    );
    let running = flow.start(&[]);
    let log = running.log_dir().join("talk.log");
    wait_until(SOON, "the first lines in the log", || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        text.contains("first line\n") && text.contains("to stderr\n")
    });
    assert!(!std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("second line"));
    flow.write("go", "");
    let out = running.finish();
    out.expect_code(0);
    assert_eq!(out.log("talk"), "first line\nto stderr\nsecond line\n");
}

/// The summary of a failing step shows its last lines (the last 20), in text and JSON.
#[test]
fn failure_report_shows_the_last_lines() {
    let flow = Flow::new(
        r#"
[workflow]
name = "noisy"

[steps.noisy]
run = 'i=1; while [ $i -le 30 ]; do echo "line $i"; i=$((i+1)); done; exit 4'
"#,
    );
    let out = flow.run(&[]);
    out.expect_code(1);
    let last: Vec<&str> = out.step("noisy")["last_lines"]
        .as_array()
        .expect("last_lines")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let expected: Vec<String> = (11..=30).map(|i| format!("line {i}")).collect();
    assert_eq!(last, expected);
    assert!(
        out.stderr.contains("error: noisy failed: exit code 4"),
        "{}",
        out.stderr
    );
    let log = out.log_dir().join("noisy.log");
    assert!(out.stderr.contains(&format!("  log: {}", log.display())));
    assert!(out.stderr.contains("  | line 30\n") && !out.stderr.contains("  | line 10\n"));
}

/// Plain lines (not a terminal, --progress never): timestamped started / progress /
/// finished lines. Progress comes from lines appended to $BGFLOW_PROGRESS and from the
/// `progress` regex, and shows in the plain output and in summary.json.
#[test]
fn plain_lines_show_start_progress_and_finish() {
    let flow = Flow::new(
        r#"
[workflow]
name = "progress"

[steps.work]
run = 'echo "5/10 Implementing" >> "$BGFLOW_PROGRESS"; sh wait.sh go; echo "90 Testing" >> "$BGFLOW_PROGRESS"'

[steps.count]
run = "echo '3/4: almost there'; sh wait.sh go"
progress = '(?P<current>\d+)/(?P<total>\d+): (?P<message>.*)'
"#,
    );
    let running = flow.start(&["-j", "2"]);
    running.wait_for_stderr("progress work: 50% (5/10: Implementing)");
    running.wait_for_stderr("progress count: 75% (3/4: almost there)");
    flow.write("go", "");
    let out = running.finish();
    out.expect_code(0);
    let ts = r"^\d\d:\d\d:\d\d ";
    for pattern in [
        format!(r"{ts}run \w+: workflow progress, 2 step\(s\), logs in /"),
        format!(r"{ts}started work, pid \d+$"),
        format!(r"{ts}started count, pid \d+$"),
        format!(r"{ts}progress work: 50% \(5/10: Implementing\)$"),
        format!(r"{ts}progress count: 75% \(3/4: almost there\)$"),
        format!(r"{ts}finished work: succeeded in \d+\.\ds$"),
        format!(r"{ts}finished count: succeeded in \d+\.\ds$"),
    ] {
        let re = Regex::new(&format!("(?m){pattern}")).expect("regex");
        assert!(
            re.is_match(&out.stderr),
            "no line {pattern}:\n{}",
            out.stderr
        );
    }
    assert!(!out.stderr.contains('\u{1b}'), "no escape codes");
    assert_eq!(
        out.step("work")["progress"],
        serde_json::json!({"percent": 90.0, "message": "Testing"})
    );
    assert_eq!(
        out.step("count")["progress"],
        serde_json::json!({"current": 3, "total": 4, "message": "almost there"})
    );
}

/// With CI set, `--progress auto` also gives plain lines.
#[test]
fn ci_gives_plain_lines() {
    let flow = Flow::new("[workflow]\nname = \"ci\"\n\n[steps.one]\nrun = \"true\"\n");
    let out = flow
        .start_raw(
            &[
                "--color",
                "never",
                "run",
                "bgflow.toml",
                "--progress",
                "auto",
            ],
            &[("CI", "true")],
        )
        .finish();
    out.expect_code(0);
    let re = Regex::new(r"(?m)^\d\d:\d\d:\d\d finished one: succeeded in \d+\.\ds$").expect("re");
    assert!(re.is_match(&out.stderr), "{}", out.stderr);
}

// ---------------------------------------------------------------------------------------
// The summary, and DESIGN.md §5.4
// ---------------------------------------------------------------------------------------

/// The table: each step's state, duration, attempts, exit code or signal; then each failure
/// with reason, log path and last lines; exit 1. summary.json holds the same.
#[test]
fn summary_table_and_json_describe_every_step() {
    let flow = Flow::new(
        r#"
[workflow]
name = "table"
fail_fast = false

[steps.fine]
run = "echo fine"

[steps.broken]
run = "echo about to fail; exit 3"

[steps.killed]
run = "echo about to die; kill -KILL $$"

[steps.downstream]
needs = ["broken"]
run = "true"
"#,
    );
    let out = flow.run(&[]);
    out.expect_code(1);
    let rows = [
        r"^  ok fine\s+succeeded\s+\d+\.\ds\s+1  0$",
        r"^  !! broken\s+failed\s+\d+\.\ds\s+1  3$",
        r"^  !! killed\s+failed\s+\d+\.\ds\s+1  SIGKILL$",
        r"^  -- downstream\s+skipped\s+-\s+0  -$",
        r"^\s+step\s+state\s+time\s+attempts\s+exit$",
        r"^error: broken failed: exit code 3$",
        r"^error: killed failed: killed by signal SIGKILL$",
        r"^  \| about to fail$",
        r"^  \| about to die$",
        r"^  downstream skipped: upstream step `broken` failed$",
        r"^exit 1: failed in \d+\.\ds; logs in /",
    ];
    for row in rows {
        let re = Regex::new(&format!("(?m){row}")).expect("regex");
        assert!(re.is_match(&out.stderr), "no line {row}:\n{}", out.stderr);
    }
    let s = out.summary();
    assert_eq!(s["state"], "failed");
    assert_eq!(s["workflow"], "table");
    assert!(s["duration_ms"].is_u64());
    let fine = out.step("fine");
    assert_eq!(fine["state"], "succeeded");
    assert_eq!(fine["exit_code"], 0);
    assert_eq!(fine["attempts"], 1);
    assert!(fine["duration_ms"].is_u64());
    let broken = out.step("broken");
    assert_eq!(broken["exit_code"], 3);
    assert_eq!(broken["reason"], "exit code 3");
    assert_eq!(broken["last_lines"], serde_json::json!(["about to fail"]));
    assert_eq!(
        broken["log"].as_str(),
        Some(out.log_dir().join("broken.log").to_str().expect("utf-8"))
    );
    let killed = out.step("killed");
    assert_eq!(killed["exit_code"], Value::Null);
    assert_eq!(killed["signal"], "SIGKILL");
    assert_eq!(out.step("downstream")["attempts"], 0);

    let ok = Flow::new("[workflow]\nname = \"fine\"\n\n[steps.one]\nrun = \"true\"\n").run(&[]);
    ok.expect_code(0);
    assert!(ok.stderr.contains("\nok: succeeded in "), "{}", ok.stderr);
    assert_eq!(ok.summary()["state"], "succeeded");
}

/// DESIGN.md §5.4: every kind of failure names the step, the reason, the log path and the
/// last lines, and the exit code is non-zero.
#[test]
fn every_failure_names_step_reason_log_and_last_lines() {
    let flow = Flow::new(
        r#"
[workflow]
name = "failures"
fail_fast = false

[steps.by_exit]
run = "echo by_exit-line; exit 7"

[steps.by_signal]
run = "echo by_signal-line; kill -TERM $$"

[steps.by_timeout]
run = "echo by_timeout-line; sleep 371"
timeout = "500ms"
kill_grace = "200ms"

[steps.by_stall]
run = "echo by_stall-line; sleep 372"
stall_timeout = "500ms"
kill_grace = "200ms"

[steps.by_output]
run = "echo by_output-line"
outputs = ["never.txt"]

[steps.by_match]
run = "echo 'FATAL: by_match-line'"
fail_on = ['^FATAL']
"#,
    );
    let out = flow.run(&["-j", "6"]);
    out.expect_code(1);
    let cases = [
        ("by_exit", "failed", "exit code 7"),
        ("by_signal", "failed", "killed by signal SIGTERM"),
        ("by_timeout", "timed_out", "timed out after 500ms"),
        (
            "by_stall",
            "stalled",
            "stalled: no output and no progress for 500ms",
        ),
        (
            "by_output",
            "failed",
            "declared output `never.txt` was not produced",
        ),
        (
            "by_match",
            "failed",
            "output matched fail_on pattern `^FATAL`",
        ),
    ];
    for (name, state, reason) in cases {
        out.expect_state(name, state);
        assert!(
            out.reason(name).contains(reason),
            "{name}: {}",
            out.reason(name)
        );
        let step = out.step(name);
        let log = PathBuf::from(step["log"].as_str().expect("log"));
        assert!(log.is_file(), "{name}: the log exists");
        let last = step["last_lines"].as_array().expect("last_lines");
        assert!(
            last.iter().any(|l| l
                .as_str()
                .is_some_and(|l| l.contains(&format!("{name}-line")))),
            "{name}: last lines {last:?}"
        );
        assert!(
            out.stderr
                .contains(&format!("error: {name} {state}: {reason}")),
            "{name} in the text summary:\n{}",
            out.stderr
        );
        assert!(out.stderr.contains(&format!("  log: {}", log.display())));
    }
    assert_no_process("sleep 371");
    assert_no_process("sleep 372");
}

// ---------------------------------------------------------------------------------------
// Up to date
// ---------------------------------------------------------------------------------------

/// A step whose outputs exist and whose fingerprint matches its last success is skipped as
/// "up to date"; a changed input (content and size, or only mtime) or a missing output runs
/// it again; --force runs it regardless.
#[test]
fn up_to_date_step_is_skipped_until_an_input_changes_or_force() {
    let flow = Flow::new(
        r#"
[workflow]
name = "incremental"

[steps.copy]
run = "cat in.txt > out.txt; echo ran >> runs.txt"
inputs = ["in.txt"]
outputs = ["out.txt"]

[steps.after]
run = "cat out.txt > final.txt"
inputs = ["out.txt"]
outputs = ["final.txt"]
"#,
    );
    flow.write("in.txt", "one\n");
    let runs = || flow.read("runs.txt").lines().count();

    flow.run(&[])
        .expect_code(0)
        .expect_state("copy", "succeeded");
    assert_eq!(runs(), 1);

    let again = flow.run(&[]);
    again.expect_code(0).expect_state("copy", "skipped");
    again.expect_state("after", "skipped");
    assert_eq!(again.reason("copy"), "up to date");
    assert!(again.stderr.contains("finished copy: skipped (up to date)"));
    assert_eq!(runs(), 1);

    flow.write("in.txt", "two, longer\n");
    let changed = flow.run(&[]);
    changed.expect_code(0).expect_state("copy", "succeeded");
    changed.expect_state("after", "succeeded");
    assert_eq!(runs(), 2);
    assert_eq!(flow.read("final.txt"), "two, longer\n");
    flow.run(&[]).expect_code(0).expect_state("copy", "skipped");
    assert_eq!(runs(), 2);

    // Same content and size, another mtime.
    let input = std::fs::File::options()
        .write(true)
        .open(flow.path().join("in.txt"))
        .expect("open in.txt");
    input
        .set_modified(SystemTime::now() - Duration::from_secs(3600))
        .expect("set mtime");
    drop(input);
    flow.run(&[])
        .expect_code(0)
        .expect_state("copy", "succeeded");
    assert_eq!(runs(), 3);

    flow.run(&["--force"])
        .expect_code(0)
        .expect_state("copy", "succeeded");
    assert_eq!(runs(), 4);

    std::fs::remove_file(flow.path().join("out.txt")).expect("rm out.txt");
    flow.run(&[])
        .expect_code(0)
        .expect_state("copy", "succeeded");
    assert_eq!(runs(), 5);
}

// ---------------------------------------------------------------------------------------
// Hostile values, invalid workflows, the state folder
// ---------------------------------------------------------------------------------------

/// `--var` values full of shell syntax arrive in the command as one literal word and run
/// nothing.
#[test]
fn hostile_vars_arrive_literally_and_run_nothing() {
    let values = [
        "'; touch PWNED; '",
        "$(touch PWNED)",
        "`touch PWNED`",
        "\"; touch PWNED; \"",
        "first line\n; touch PWNED\nthird line",
        "x && touch PWNED || touch PWNED",
        "\\'; touch PWNED #",
    ];
    let flow = Flow::new(
        r#"
[workflow]
name = "hostile"

[vars]
v = "harmless"

[steps.echo]
run = "printf '%s' {{ vars.v }} > out.txt"
outputs = ["out.txt"]
"#,
    );
    for value in values {
        let var = format!("v={value}");
        let out = flow.run(&["--force", "--var", &var]);
        out.expect_code(0);
        assert_eq!(
            std::fs::read(flow.path().join("out.txt")).expect("out.txt"),
            value.as_bytes(),
            "value {value:?}"
        );
        assert!(!flow.exists("PWNED"), "value {value:?} ran a command");
    }
}

/// An invalid workflow: exit 3 with the diagnostics, and nothing starts (the step that
/// would make a file does not).
#[test]
fn invalid_workflow_exits_3_and_starts_nothing() {
    let flow = Flow::new(
        r#"
[workflow]
name = "invalid"

[steps.maker]
run = "touch created.txt"

[steps.broken]
needs = ["nowhere"]
run = "touch broken.txt"
"#,
    );
    let out = flow.run(&[]);
    out.expect_code(3);
    assert!(!flow.exists("created.txt") && !flow.exists("broken.txt"));
    assert!(out.stderr.contains("nowhere"), "{}", out.stderr);
    assert!(out.stderr.contains("nothing ran"), "{}", out.stderr);
    assert!(out.summary.is_none());
    assert!(!flow.path().join(".bgflow/runs").exists());
}

/// --state-dir puts logs and summary.json there instead of `.bgflow/` in the root.
#[test]
fn state_dir_flag_moves_logs_and_summary() {
    let flow = Flow::new("[workflow]\nname = \"elsewhere\"\n\n[steps.one]\nrun = \"echo hello\"\n");
    let out = flow
        .start_raw(
            &[
                "--color",
                "never",
                "--state-dir",
                "custom-state",
                "run",
                "bgflow.toml",
                "--progress",
                "never",
            ],
            &[],
        )
        .finish();
    out.expect_code(0);
    let runs = flow.path().join("custom-state").join("runs");
    let id = out.summary()["run_id"].as_str().expect("id").to_owned();
    assert_eq!(
        std::fs::read_to_string(runs.join(&id).join("one.log")).expect("log"),
        "hello\n"
    );
    assert!(runs.join(&id).join("summary.json").is_file());
    assert!(!flow.path().join(".bgflow").exists());
}
