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

#[path = "run/big_summary.rs"]
mod big_summary;
#[path = "run/cancelled.rs"]
mod cancelled;
#[path = "run/chatty.rs"]
mod chatty;
#[path = "common/mod.rs"]
mod common;
#[path = "run/containment.rs"]
mod containment;
#[path = "run/dotenv.rs"]
mod dotenv;
#[path = "run/junit.rs"]
mod junit;
#[path = "run/long_lines.rs"]
mod long_lines;
#[path = "run/matrix.rs"]
mod matrix;
#[path = "run/output.rs"]
mod output;
#[path = "run/processes.rs"]
mod processes;
#[path = "run/resume.rs"]
mod resume;
#[path = "run/scheduling.rs"]
mod scheduling;
#[path = "run/shell.rs"]
mod shell;
use common::{assert_no_process, live_group_members, live_processes, still_running};

const BIN: &str = env!("CARGO_BIN_EXE_bgflow");

/// Longest any single run may take before the test gives up on it.
const RUN_DEADLINE: Duration = Duration::from_secs(40);
/// Longest a test waits for something it expects to happen soon.
const SOON: Duration = Duration::from_secs(20);

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

/// `bgflow ARGS` in the flow's folder, to the end; its stdout.
fn bgflow_stdout(flow: &Flow, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(args)
        .current_dir(flow.path())
        .env_remove("BGFLOW_STATE_DIR")
        .env_remove("BGFLOW_CONFIG")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .output()
        .expect("bgflow");
    assert!(
        out.status.success(),
        "bgflow {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

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
        flow.write("wait.sh", common::WAIT_SH);
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
        self.start_env(args, &[])
    }

    /// As `start`, with extra environment for bgflow.
    fn start_env(&self, args: &[&str], env: &[(&str, &str)]) -> Running {
        self.start_via(&[], args, env)
    }

    /// As `start_env`, with bgflow started by `WRAPPER... BIN` (e.g. a shell that changes
    /// what bgflow inherits, then execs it).
    fn start_via(&self, wrapper: &[&str], args: &[&str], env: &[(&str, &str)]) -> Running {
        let mut all = vec![
            "--color",
            "never",
            "run",
            "bgflow.toml",
            "--progress",
            "never",
        ];
        all.extend_from_slice(args);
        self.start_command(wrapper, &all, env)
    }

    /// `bgflow ARGS` with extra environment, in the background.
    fn start_raw(&self, args: &[&str], env: &[(&str, &str)]) -> Running {
        self.start_command(&[], args, env)
    }

    /// `WRAPPER... BIN ARGS` (or `BIN ARGS`) with extra environment, in the background.
    fn start_command(&self, wrapper: &[&str], args: &[&str], env: &[(&str, &str)]) -> Running {
        let mut cmd = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg(BIN);
                c
            }
            None => Command::new(BIN),
        };
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

/// The value of a `key=value` line of a step's log.
fn log_field(log: &str, key: &str) -> String {
    log.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key}= in the log:\n{log}"))
        .to_owned()
}
