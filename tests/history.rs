//! The run history and background runs, proved with the real binary: real supervisors,
//! real processes, a real SQLite file in a temp dir (DESIGN.md §2, §3, §4, §5.3, §5.5).
//!
//! Each test builds a `Home`: a temp dir holding workflow files, a `wait.sh` helper and a
//! state folder passed as `--state-dir`. Steps that must stay alive wait for a marker file
//! the test creates later (`sh wait.sh NAME`), so nothing depends on timing; the test polls
//! with a deadline (`wait_until`), never sleeps and hopes. A test that scans /proc for
//! leftover processes gives its `sleep` a duration no other test uses (`sleep 313`) and
//! matches the whole argv, so tests running in parallel never see each other's processes.
//! A `Home` force-stops its still-active runs when dropped, so a failing test leaves no
//! supervisor behind.

use std::collections::BTreeSet;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

#[path = "history/commands.rs"]
mod commands;
#[path = "history/config.rs"]
mod config;
#[path = "history/lifecycle.rs"]
mod lifecycle;
#[path = "history/lock.rs"]
mod lock;
#[path = "history/service.rs"]
mod service;
#[path = "history/truth.rs"]
mod truth;
#[path = "history/wal.rs"]
mod wal;
#[path = "history/watch.rs"]
mod watch;

#[path = "common/mod.rs"]
mod common;

const BIN: &str = env!("CARGO_BIN_EXE_bgflow");

/// Longest a test waits for a run to end.
const RUN_DEADLINE: Duration = Duration::from_secs(40);
/// Longest a test waits for something it expects to happen soon.
const SOON: Duration = Duration::from_secs(15);

/// What a finished bgflow invocation left.
#[derive(Debug)]
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }

    #[track_caller]
    fn expect(self, code: i32) -> Self {
        assert_eq!(
            self.code, code,
            "exit code\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// A temp dir with workflows, `wait.sh` and a state folder.
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("bgflow-history-")
            .tempdir()
            .expect("a temp dir");
        let home = Self { dir };
        home.write("wait.sh", common::WAIT_SH);
        home
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The state folder every command of this home uses.
    fn state(&self) -> PathBuf {
        self.path().join("state")
    }

    fn write(&self, rel: &str, contents: &str) {
        let full = self.path().join(rel);
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(full, contents).expect("write");
    }

    /// Creates a marker file a waiting step is looking for.
    fn touch(&self, rel: &str) {
        self.write(rel, "");
    }

    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path().join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
    }

    /// bgflow with a clean environment, in the home, without `--state-dir`.
    fn bare(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .current_dir(self.path())
            .env_remove("BGFLOW_STATE_DIR")
            .env_remove("BGFLOW_CONFIG")
            .env_remove("CI")
            .env("XDG_CONFIG_HOME", self.path().join("xdg"))
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        cmd
    }

    /// `bgflow --color never --state-dir STATE ARGS`.
    fn cmd(&self, args: &[&str]) -> Command {
        let state = self.state();
        let mut all: Vec<&str> = vec!["--color", "never", "--state-dir"];
        all.push(state.to_str().expect("utf-8 temp path"));
        all.extend_from_slice(args);
        self.bare(&all)
    }

    fn bgflow(&self, args: &[&str]) -> Out {
        output(self.cmd(args))
    }

    /// A foreground `run FILE --progress never`; returns the new run's id and the outcome.
    fn run(&self, file: &str) -> (String, Out) {
        self.run_with(&[], file)
    }

    /// `GLOBALS run FILE --progress never`.
    fn run_with(&self, globals: &[&str], file: &str) -> (String, Out) {
        let mut args = globals.to_vec();
        args.extend_from_slice(&["run", file, "--progress", "never"]);
        let out = self.bgflow(&args);
        let id = self.newest_run();
        (id, out)
    }

    /// `run -d FILE`: the run id it printed, checked to be the only thing on stdout.
    fn detach(&self, file: &str) -> String {
        let out = self.bgflow(&["run", "-d", file]).expect(0);
        run_id_of(&out)
    }

    fn newest_run(&self) -> String {
        let list = self
            .bgflow(&["list", "--json", "--limit", "1"])
            .expect(0)
            .json();
        list["runs"][0]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no run in the history: {list}"))
            .to_owned()
    }

    /// `status RUN --json`.
    fn status(&self, id: &str) -> Value {
        self.bgflow(&["status", id, "--json"]).expect(0).json()
    }

    /// Waits until the run is no longer pending or running; returns its `status --json`.
    fn wait_done(&self, id: &str) -> Value {
        wait_until(&format!("run {id} to end"), RUN_DEADLINE, || {
            let s = self.status(id);
            (!matches!(
                s["run"]["state"].as_str(),
                Some("pending" | "running" | "unresponsive")
            ))
            .then_some(s)
        })
    }

    /// Waits until step `step` of run `id` is running; returns the run's `status --json`.
    fn wait_step_running(&self, id: &str, step: &str) -> Value {
        wait_until(&format!("step {step} of {id} to run"), SOON, || {
            let s = self.status(id);
            (step_of(&s, step)["state"] == "running").then_some(s)
        })
    }

    /// Runs `bgflow ARGS` in the background, collecting its output as it comes.
    fn spawn(&self, args: &[&str]) -> Spawned {
        let mut cmd = self.cmd(args);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn bgflow");
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let readers = vec![
            collect(child.stdout.take().expect("stdout"), Arc::clone(&stdout)),
            collect(child.stderr.take().expect("stderr"), Arc::clone(&stderr)),
        ];
        Spawned {
            child,
            stdout,
            stderr,
            readers,
        }
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        // A failed test must not leave a supervisor (or its steps) running.
        stop_active(&self.state());
    }
}

/// Force-stops every active run of the history in `state`, and every lost one whose
/// processes still run.
fn stop_active(state: &Path) {
    if !state.join("bgflow.db").exists() {
        return;
    }
    let cmd = |args: &[&str]| {
        let mut c = Command::new(BIN);
        c.arg("--state-dir")
            .arg(state)
            .args(args)
            .stdin(Stdio::null());
        output(c)
    };
    let active = cmd(&["status", "--json"]);
    let Ok(doc) = serde_json::from_str::<Value>(&active.stdout) else {
        return;
    };
    for run in doc["runs"].as_array().into_iter().flatten() {
        if let Some(id) = run["id"].as_str() {
            let _ = cmd(&["stop", id, "--force", "--yes"]);
        }
    }
    // A test that failed after killing a supervisor leaves a lost run whose steps live on.
    let lost = cmd(&["list", "--status", "lost", "--limit", "1000", "--json"]);
    let Ok(doc) = serde_json::from_str::<Value>(&lost.stdout) else {
        return;
    };
    for run in doc["runs"].as_array().into_iter().flatten() {
        let running = run["still_running"]
            .as_array()
            .is_some_and(|p| !p.is_empty());
        if let (true, Some(id)) = (running, run["id"].as_str()) {
            let _ = cmd(&["stop", id, "--force", "--yes"]);
        }
    }
}

fn output(mut cmd: Command) -> Out {
    let out = cmd.output().expect("run bgflow");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The run id printed by `run -d` / `start`: alone on stdout.
#[track_caller]
fn run_id_of(out: &Out) -> String {
    let id = out.stdout.trim_end_matches('\n');
    assert!(
        id.len() == 8
            && id
                .bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
            && out.stdout == format!("{id}\n"),
        "stdout should be the run id alone, got {:?}",
        out.stdout
    );
    id.to_owned()
}

fn collect(mut from: impl Read + Send + 'static, into: Arc<Mutex<String>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 {
                break;
            }
            into.lock()
                .expect("output lock")
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    })
}

/// A bgflow process running in the background.
struct Spawned {
    child: Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
}

impl Spawned {
    fn stdout(&self) -> String {
        self.stdout.lock().expect("output lock").clone()
    }

    /// Waits for it to exit by itself (killing it and failing after `within`).
    fn finish(mut self, within: Duration) -> Out {
        let deadline = Instant::now() + within;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "bgflow did not exit within {within:?}\nstdout:\n{}\nstderr:\n{}",
                    self.stdout(),
                    self.stderr.lock().expect("output lock")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        let stderr = self.stderr.lock().expect("output lock").clone();
        Out {
            code: status.code().unwrap_or(-1),
            stdout: self.stdout(),
            stderr,
        }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Polls `probe` every 50 ms until it gives a value; fails the test after `within`.
#[track_caller]
fn wait_until<T>(what: &str, within: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The step named `name` in a `status --json` document.
#[track_caller]
fn step_of<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["steps"]
        .as_array()
        .and_then(|steps| steps.iter().find(|s| s["name"] == name))
        .unwrap_or_else(|| panic!("no step {name} in {status}"))
}

/// Live (not zombie) processes whose whole argv is `argv`.
fn processes(argv: &[&str]) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                return false;
            };
            let args: Vec<&[u8]> = raw
                .strip_suffix(b"\0")
                .unwrap_or(&raw)
                .split(|&b| b == 0)
                .collect();
            args.len() == argv.len() && args.iter().zip(argv).all(|(a, b)| *a == b.as_bytes())
        })
        .filter(|pid| {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            // The state follows the command name, which is in parentheses.
            let state = stat
                .rfind(')')
                .and_then(|i| stat[i + 1..].trim_start().chars().next());
            !matches!(state, Some('Z' | 'X') | None)
        })
        .collect()
}

/// Waits until a live process has argv `argv`.
#[track_caller]
fn wait_alive(argv: &[&str]) {
    wait_until(&format!("a `{}`", argv.join(" ")), SOON, || {
        (!processes(argv).is_empty()).then_some(())
    });
}

/// Waits until no live process has argv `argv`.
#[track_caller]
fn wait_gone(argv: &[&str]) {
    wait_until(&format!("no `{}` left", argv.join(" ")), SOON, || {
        processes(argv).is_empty().then_some(())
    });
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// The `type`s of `events` JSON Lines, checking each line's shape.
#[track_caller]
fn event_types(jsonl: &str, run: &str) -> Vec<String> {
    jsonl
        .lines()
        .map(|line| {
            let e: Value = serde_json::from_str(line)
                .unwrap_or_else(|err| panic!("not a JSON line ({err}): {line}"));
            assert_eq!(e["version"], 1, "{line}");
            assert_eq!(e["run"], run, "{line}");
            assert!(e["id"].is_i64() && e["at"].is_string(), "{line}");
            e["type"]
                .as_str()
                .unwrap_or_else(|| panic!("no type: {line}"))
                .to_owned()
        })
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// A tmpfs of `size` (e.g. "8m") mounted on a new folder `dir` (as root), unmounted when
/// dropped, also when the test fails: lazily if something still has a file open there.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    fn mount(dir: &Path, options: &str) -> Self {
        std::fs::create_dir_all(dir).expect("mkdir the mount point");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(dir)
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "mount -t tmpfs -o {options} {}",
            dir.display()
        );
        Self {
            dir: dir.to_path_buf(),
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Nothing of a run may hold the mount when it goes.
        stop_active(&self.dir);
        let ok = Command::new("umount")
            .arg(&self.dir)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
    }
}

/// Sends `signal` to `pid`.
/// `kill -9` of the supervisor that status `s` names; its pid.
fn kill_supervisor(s: &Value) -> i64 {
    let pid = s["run"]["supervisor_pid"].as_i64().expect("supervisor_pid");
    signal(pid, nix::sys::signal::Signal::SIGKILL);
    pid
}

fn signal(pid: i64, signal: nix::sys::signal::Signal) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(pid).expect("pid")),
        signal,
    )
    .unwrap_or_else(|e| panic!("kill -{signal} {pid}: {e}"));
}
