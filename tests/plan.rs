//! `bgflow plan`, `graph`, `schema` and `completions`, run as the real binary against real
//! files in a temp dir (DESIGN.md §1, §2, §5.1).
//!
//! Each test builds a `Test`: a temp dir holding a workflow file and any other files it
//! needs, the arguments, the environment and the expected exit code. Diagnostics are
//! snapshotted (tests/snapshots/) with the temp dir's path redacted; accept new ones with
//! `INSTA_UPDATE=always cargo test --test plan` and read every changed `.snap` before
//! committing: a snapshot of a wrong message is a bug, not a test.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

#[path = "plan/bounded.rs"]
mod bounded;
#[path = "plan/commands.rs"]
mod commands;
#[path = "plan/diagnostics.rs"]
mod diagnostics;
#[path = "plan/guarantees.rs"]
mod guarantees;
#[path = "plan/include.rs"]
mod include;
#[path = "plan/matrix.rs"]
mod matrix;
#[path = "plan/output.rs"]
mod output;
#[path = "plan/values.rs"]
mod values;

const BIN: &str = env!("CARGO_BIN_EXE_bgflow");
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/plan");

const OK: i32 = 0;
const USAGE: i32 = 2;
const INVALID: i32 = 3;

/// One invocation of bgflow in a fresh temp dir.
struct Test {
    dir: tempfile::TempDir,
    args: Vec<String>,
    env: Vec<(String, String)>,
    env_remove: Vec<String>,
    status: i32,
}

impl Test {
    fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("bgflow-test-")
            .tempdir()
            .expect("a temp dir");
        Self {
            dir,
            args: Vec::new(),
            env: Vec::new(),
            env_remove: Vec::new(),
            status: OK,
        }
    }

    /// A temp dir holding `tests/fixtures/plan/NAME.toml` as `NAME.toml`.
    fn fixture(name: &str) -> Self {
        let text = std::fs::read_to_string(format!("{FIXTURES}/{name}.toml"))
            .unwrap_or_else(|e| panic!("fixture {name}.toml: {e}"));
        Self::new().file(&format!("{name}.toml"), &text)
    }

    /// A temp dir holding `text` as `bgflow.toml`.
    fn manifest(text: &str) -> Self {
        Self::new().file("bgflow.toml", text)
    }

    /// Writes a file (and its folders) into the temp dir.
    fn file(self, path: &str, contents: &str) -> Self {
        let full = self.path().join(path);
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&full, contents).expect("write");
        self
    }

    fn folder(self, path: &str) -> Self {
        std::fs::create_dir_all(self.path().join(path)).expect("mkdir");
        self
    }

    fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    fn env_remove(mut self, key: &str) -> Self {
        self.env_remove.push(key.into());
        self
    }

    fn status(mut self, code: i32) -> Self {
        self.status = code;
        self
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs bgflow in the temp dir (with `--color never` unless the test chose a `--color`)
    /// and checks the exit code.
    fn run(self) -> Output {
        let mut args = Vec::new();
        if !self.args.iter().any(|a| a == "--color") {
            args.extend(["--color".to_owned(), "never".to_owned()]);
        }
        args.extend(self.args.iter().cloned());
        let mut cmd = assert_cmd::Command::new(BIN);
        cmd.current_dir(self.path()).args(&args);
        for key in ["BGFLOW_STATE_DIR", "BGFLOW_CONFIG"] {
            cmd.env_remove(key);
        }
        for key in &self.env_remove {
            cmd.env_remove(key);
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("bgflow runs");
        let output = Output {
            stdout: String::from_utf8(out.stdout).expect("UTF-8 stdout"),
            stderr: String::from_utf8(out.stderr).expect("UTF-8 stderr"),
            code: out.status.code(),
            dir: self.dir,
        };
        assert_eq!(
            output.code,
            Some(self.status),
            "exit code of bgflow {args:?}\n--- stdout\n{}\n--- stderr\n{}",
            output.stdout,
            output.stderr
        );
        output
    }
}

/// What a run printed; keeps the temp dir alive for checks after the run.
struct Output {
    stdout: String,
    stderr: String,
    code: Option<i32>,
    dir: tempfile::TempDir,
}

impl Output {
    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn stderr_has(&self, needle: &str) -> &Self {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}:\n{}",
            self.stderr
        );
        self
    }

    fn stdout_has(&self, needle: &str) -> &Self {
        assert!(
            self.stdout.contains(needle),
            "stdout lacks {needle:?}:\n{}",
            self.stdout
        );
        self
    }

    /// Asserts that a diagnostic whose message contains `message` points at `place`
    /// (`FILE:LINE:COL`, the line under the message).
    fn problem_at(&self, message: &str, place: &str) -> &Self {
        let lines: Vec<&str> = self.stderr.lines().collect();
        let found = lines.windows(2).any(|w| {
            (w[0].contains("× ") || w[0].contains("⚠ "))
                && w[0].contains(message)
                && w[1].contains(&format!("[{place}]"))
        });
        assert!(found, "no problem {message:?} at {place}:\n{}", self.stderr);
        self
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{}", self.stdout))
    }

    /// insta settings that replace the temp dir's path (as given and as resolved) by `[TEMP]`.
    fn settings(&self) -> insta::Settings {
        let mut settings = insta::Settings::clone_current();
        let given = self.path().to_path_buf();
        let resolved = given.canonicalize().unwrap_or_else(|_| given.clone());
        for p in [resolved, given] {
            settings.add_filter(&regex::escape(&p.display().to_string()), "[TEMP]");
        }
        settings
    }

    fn snapshot_stderr(&self, name: &str) {
        self.settings()
            .bind(|| insta::assert_snapshot!(name, self.stderr));
    }

    fn snapshot_stdout(&self, name: &str) {
        self.settings()
            .bind(|| insta::assert_snapshot!(name, self.stdout));
    }
}

/// Every file and folder under `dir`, relative to it.
fn listing(dir: &Path) -> BTreeSet<PathBuf> {
    let mut found = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read_dir").flatten() {
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(path.clone());
            }
            found.insert(path.strip_prefix(dir).expect("inside").to_path_buf());
        }
    }
    found
}
