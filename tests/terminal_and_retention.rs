//! `retention.auto_cleanup_days` removes old finished runs after a run; under a real
//! pseudo-terminal: `run`'s bars, the end-of-run notification, `stop` asking first, `status
//! --watch` bars.

use std::path::Path;
use std::process::Command;

fn bgflow(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_bgflow"));
    c.current_dir(dir)
        .args(["--color", "never"])
        .env_remove("BGFLOW_STATE_DIR")
        .env_remove("BGFLOW_CONFIG")
        .env("XDG_CONFIG_HOME", dir.join("no-user-config"));
    c
}

const FLOW: &str = "[workflow]\nname = \"tiny\"\n[steps.a]\nrun = \"echo hi\"\n";

#[test]
fn auto_cleanup_removes_runs_older_than_the_limit_and_keeps_the_rest() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("flow.toml"), FLOW).expect("flow");
    for _ in 0..2 {
        let out = bgflow(dir.path())
            .args(["run", "--progress", "never", "flow.toml"])
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(0));
    }
    let db = dir.path().join(".bgflow/bgflow.db");
    let conn = rusqlite::Connection::open(&db).expect("db");
    let ids: Vec<(String, String)> = conn
        .prepare("SELECT id, log_dir FROM runs ORDER BY created_at")
        .and_then(|mut s| {
            s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .and_then(|r| r.collect())
        })
        .expect("ids");
    assert_eq!(ids.len(), 2);
    // Age the first run by ten days.
    let ten_days_ms: i64 = 10 * 86_400_000;
    conn.execute(
        "UPDATE runs SET created_at = created_at - ?1, finished_at = finished_at - ?1 WHERE id = ?2",
        rusqlite::params![ten_days_ms, ids[0].0],
    )
    .expect("age");
    drop(conn);
    std::fs::write(
        dir.path().join("cfg.toml"),
        "[retention]\nauto_cleanup_days = 7\n",
    )
    .expect("cfg");
    let out = bgflow(dir.path())
        .args([
            "--config",
            "cfg.toml",
            "run",
            "--progress",
            "never",
            "flow.toml",
        ])
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let conn = rusqlite::Connection::open(&db).expect("db");
    let left: Vec<String> = conn
        .prepare("SELECT id FROM runs")
        .and_then(|mut s| s.query_map([], |r| r.get(0)).and_then(|r| r.collect()))
        .expect("ids");
    assert_eq!(
        left.len(),
        2,
        "the old run goes, the recent and the new one stay: {left:?}"
    );
    assert!(
        !left.contains(&ids[0].0),
        "the ten-day-old run was not removed"
    );
    assert!(left.contains(&ids[1].0));
    assert!(
        !Path::new(&ids[0].1).exists(),
        "its log folder was not removed"
    );
    assert!(Path::new(&ids[1].1).exists());
}

#[test]
fn a_foreground_run_on_a_terminal_rings_at_the_end() {
    if Command::new("script").arg("--version").output().is_err() {
        panic!("`script` (util-linux) is needed to give bgflow a terminal");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("flow.toml"), FLOW).expect("flow");
    let bin = env!("CARGO_BIN_EXE_bgflow");
    let run = |config: &str| {
        std::fs::write(dir.path().join("cfg.toml"), config).expect("cfg");
        let cmd = format!("{bin} --config cfg.toml run --progress never flow.toml");
        let (code, screen) = on_a_terminal(dir.path(), &cmd, "");
        assert_eq!(code, Some(0), "{screen}");
        screen
    };
    let on = run("[notifications]\nterminal = true\n");
    assert!(
        on.contains("\u{1b}]9;bgflow: tiny succeeded"),
        "no OSC 9 notification in {on:?}"
    );
    let off = run("[notifications]\nterminal = false\n");
    assert!(
        !off.contains("\u{1b}]9;"),
        "notification despite terminal = false: {off:?}"
    );
    let filtered = run("[notifications]\non = [\"failure\"]\n");
    assert!(
        !filtered.contains("\u{1b}]9;"),
        "a success notified despite on = [failure]"
    );
}

/// `script` running `cmd` (a shell command line) under a pseudo-terminal in `dir`, with
/// piped input and the screen on its stdout.
fn terminal(dir: &Path, cmd: &str) -> Command {
    let mut c = Command::new("script");
    c.current_dir(dir)
        .env("XDG_CONFIG_HOME", dir.join("none"))
        .env_remove("CI")
        .env_remove("BGFLOW_STATE_DIR")
        .env_remove("BGFLOW_CONFIG")
        .args(["-qec", cmd, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    c
}

/// Runs `cmd` (a shell command line) under a pseudo-terminal with `input` typed in.
fn on_a_terminal(dir: &Path, cmd: &str, input: &str) -> (Option<i32>, String) {
    use std::io::Write as _;
    let mut child = terminal(dir, cmd)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("script");
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input.as_bytes());
    }
    let out = child.wait_with_output().expect("script output");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn detached(dir: &Path, flow: &str) -> String {
    std::fs::write(dir.join("flow.toml"), flow).expect("flow");
    let out = bgflow(dir)
        .args(["run", "-d", "flow.toml"])
        .output()
        .expect("run -d");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn run_state(dir: &Path, id: &str) -> String {
    let out = bgflow(dir)
        .args(["status", id, "--json"])
        .output()
        .expect("status");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status json");
    doc["run"]["state"].as_str().unwrap_or_default().to_owned()
}

#[test]
fn stop_asks_on_a_terminal_and_no_keeps_the_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let id = detached(
        dir.path(),
        "[workflow]\nname = \"asked\"\n[steps.long]\nrun = \"sleep 317\"\n",
    );
    // `run -d` returns while the run is still pending; `stop` is asked about a running one.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while run_state(dir.path(), &id) != "running" {
        assert!(
            std::time::Instant::now() < deadline,
            "the run never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let bin = env!("CARGO_BIN_EXE_bgflow");
    let (code, screen) = on_a_terminal(dir.path(), &format!("{bin} stop {id}"), "n\n");
    assert_eq!(code, Some(0), "{screen}");
    assert!(screen.contains("[y/N]"), "no question asked: {screen:?}");
    assert!(screen.contains("not stopped"), "{screen:?}");
    assert_eq!(run_state(dir.path(), &id), "running");
    let (code, screen) = on_a_terminal(dir.path(), &format!("{bin} stop {id}"), "y\n");
    assert_eq!(code, Some(0), "{screen}");
    assert_eq!(run_state(dir.path(), &id), "cancelled", "{screen}");
}

#[test]
fn watch_draws_bars_on_a_terminal_until_the_run_ends() {
    let dir = tempfile::tempdir().expect("tempdir");
    let flow = "[workflow]\nname = \"watched\"\n[steps.work]\nrun = \"for i in 1 2 3 4; do echo \\\"$i/4 part $i\\\" >> \\\"$BGFLOW_PROGRESS\\\"; sleep 0.3; done\"\n";
    let id = detached(dir.path(), flow);
    let bin = env!("CARGO_BIN_EXE_bgflow");
    let (code, screen) = on_a_terminal(dir.path(), &format!("{bin} status {id} --watch"), "");
    assert_eq!(code, Some(0), "{screen}");
    assert!(
        screen.contains(&format!("watched {id}")),
        "no overall bar: {screen:?}"
    );
    assert!(screen.contains("steps"), "{screen:?}");
    assert!(
        screen.contains("succeeded"),
        "the final status is shown: {screen:?}"
    );
}

#[test]
fn a_run_on_a_terminal_draws_an_overall_bar_and_a_line_per_running_step() {
    use std::io::Read as _;
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().expect("tempdir");
    // Both steps wait for `go`, which the test makes once it has seen them on the screen.
    let wait = "while [ ! -f go ]; do sleep 0.05; done";
    let flow = format!(
        "[workflow]\nname = \"drawn\"\n[steps.copy]\nrun = \"echo '3/10 copying' >> \\\"$BGFLOW_PROGRESS\\\"; {wait}\"\n[steps.talk]\nrun = \"echo working on it; {wait}\"\n"
    );
    std::fs::write(dir.path().join("flow.toml"), flow).expect("flow");
    let bin = env!("CARGO_BIN_EXE_bgflow");
    let mut child = terminal(dir.path(), &format!("{bin} run -j2 flow.toml"))
        .spawn()
        .expect("script");
    let mut stdout = child.stdout.take().expect("stdout");
    let screen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let reader = {
        let screen = std::sync::Arc::clone(&screen);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                screen.lock().expect("screen").extend_from_slice(&buf[..n]);
            }
        })
    };
    let text = || String::from_utf8_lossy(&screen.lock().expect("screen")).into_owned();
    let deadline = Instant::now() + Duration::from_secs(30);
    let wanted = [
        "drawn ",
        "0/2 steps",
        // No step has ended: no rate, so no time left to tell.
        "eta -",
        "copy",
        "3/10",
        "copying",
        "talk",
        "working on it",
    ];
    while !wanted.iter().all(|w| text().contains(w)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    // Whatever was seen, the steps end now, so a failure leaves no process behind.
    std::fs::write(dir.path().join("go"), "").expect("go");
    let missing: Vec<&&str> = wanted.iter().filter(|w| !text().contains(*w)).collect();
    if !missing.is_empty() {
        let _ = child.wait();
        panic!("missing {missing:?} on the screen: {:?}", text());
    }
    let status = child.wait().expect("script");
    reader.join().expect("reader");
    assert_eq!(status.code(), Some(0), "{}", text());
    assert!(
        !text().contains("0/2 steps  00:00:00  eta 0s"),
        "{}",
        text()
    );
    assert!(
        text().contains("succeeded"),
        "the summary follows: {}",
        text()
    );
}
