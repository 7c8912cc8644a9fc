//! Process kinds: services with ready and health probes, stall detection, JUnit results.
//! Real servers on 127.0.0.1 at free ports, real processes, polling with deadlines.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

#[path = "common/mod.rs"]
mod common;
#[path = "services/probes.rs"]
mod probes;

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

fn run(dir: &Path, manifest: &str) -> (Output, serde_json::Value) {
    run_with(dir, manifest, &[])
}

/// `bgflow run [extra] flow.toml`, and the run's summary.
fn run_with(dir: &Path, manifest: &str, extra: &[&str]) -> (Output, serde_json::Value) {
    std::fs::write(dir.join("flow.toml"), manifest).expect("write manifest");
    let out = Command::new(env!("CARGO_BIN_EXE_bgflow"))
        .current_dir(dir)
        .args(["--color", "never", "run", "--progress", "never"])
        .args(extra)
        .arg("flow.toml")
        .env_remove("BGFLOW_STATE_DIR")
        .env_remove("BGFLOW_CONFIG")
        .output()
        .expect("bgflow runs");
    let summary = std::fs::read_dir(dir.join(".bgflow/runs"))
        .expect("runs folder")
        .flatten()
        .map(|e| e.path().join("summary.json"))
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .last()
        .expect("summary.json");
    (
        out,
        serde_json::from_str(&summary).expect("summary is JSON"),
    )
}

fn step<'a>(summary: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    summary["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == name))
        .unwrap_or_else(|| panic!("no step {name} in {summary}"))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Whether a live (non-zombie) process has `needle` in its command line.
fn process_alive(needle: &str) -> bool {
    !common::live_processes(needle).is_empty()
}

#[test]
fn dependents_start_once_the_http_probe_passes_and_the_service_is_stopped_when_unneeded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    // The server only starts listening after a delay, so a client started too early fails.
    let manifest = format!(
        r#"
[workflow]
name = "svc"
[steps.api]
kind = "service"
run = "sleep 0.5; exec python3 -m http.server {port} --bind 127.0.0.1"
ready = {{ http = "http://127.0.0.1:{port}/", timeout = "20s", interval = "100ms" }}
[steps.client]
run = "python3 -c 'import urllib.request; print(urllib.request.urlopen(\"http://127.0.0.1:{port}/\").status)'"
needs = ["api"]
[steps.slow-after]
run = "sleep 1.5; echo done"
needs = ["client"]
"#
    );
    let (out, summary) = run(dir.path(), &manifest);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(step(&summary, "client")["state"], "succeeded");
    let api = step(&summary, "api");
    assert_eq!(api["state"], "succeeded");
    assert!(
        api["reason"]
            .as_str()
            .unwrap_or("")
            .contains("no remaining step needs it"),
        "{api}"
    );
    let log = std::fs::read_to_string(
        dir.path()
            .join(".bgflow/runs")
            .read_dir()
            .expect("runs")
            .flatten()
            .next()
            .expect("run")
            .path()
            .join("client.log"),
    )
    .expect("client log");
    assert!(log.contains("200"), "{log}");
    // The service was stopped as soon as its only dependent finished, before `slow-after` ended.
    let api_end = api["finished_at"].as_str().expect("finished_at").to_owned();
    let slow_end = step(&summary, "slow-after")["finished_at"]
        .as_str()
        .expect("finished_at")
        .to_owned();
    assert!(
        api_end < slow_end,
        "api stopped at {api_end}, slow-after ended at {slow_end}"
    );
    assert!(
        !process_alive(&format!("http.server {port}")),
        "the server survived the run"
    );
}

#[test]
fn a_ready_services_dependents_go_before_steps_that_need_no_service() {
    // One job slot. In plan order `unrelated-1` and `unrelated-2` (wave 1) come before
    // `client` (wave 2); `client` needs the service, so it takes the slot first and the
    // service is stopped before the unrelated steps run, instead of idling through them.
    let dir = tempfile::tempdir().expect("tempdir");
    let manifest = r#"
[workflow]
name = "svc-first"
[steps.db]
kind = "service"
run = "echo up; exec sleep 600"
ready = { log = "up", timeout = "20s" }
[steps.unrelated-1]
run = "echo unrelated-1 >> order.txt"
[steps.unrelated-2]
run = "echo unrelated-2 >> order.txt"
[steps.client]
run = "echo client >> order.txt"
needs = ["db"]
"#;
    let (out, summary) = run_with(dir.path(), manifest, &["-j1"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let order = std::fs::read_to_string(dir.path().join("order.txt")).expect("order.txt");
    assert_eq!(
        order.lines().collect::<Vec<_>>(),
        ["client", "unrelated-1", "unrelated-2"],
        "{}",
        stderr(&out)
    );
    let db = step(&summary, "db");
    assert_eq!(db["state"], "succeeded", "{db}");
    assert!(
        db["reason"]
            .as_str()
            .is_some_and(|r| r.contains("no remaining step needs it")),
        "{db}"
    );
}

#[test]
fn tcp_command_and_log_probes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let manifest = format!(
        r#"
[workflow]
name = "probes"
[steps.tcp-svc]
kind = "service"
run = "exec python3 -m http.server {port} --bind 127.0.0.1"
ready = {{ tcp = "127.0.0.1:{port}", timeout = "20s", interval = "100ms" }}
[steps.cmd-svc]
kind = "service"
run = "sleep 0.3; touch up; exec sleep 3071"
ready = {{ command = "test -f up", interval = "100ms" }}
[steps.log-svc]
kind = "service"
run = "echo booting; sleep 0.3; echo 'server READY on 1'; exec sleep 3072"
ready = {{ log = 'READY on \d', timeout = "10s" }}
[steps.uses-all]
run = "test -f up && echo ok"
needs = ["tcp-svc", "cmd-svc", "log-svc"]
"#
    );
    let (out, summary) = run(dir.path(), &manifest);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    for s in ["tcp-svc", "cmd-svc", "log-svc", "uses-all"] {
        assert_eq!(step(&summary, s)["state"], "succeeded", "{s}");
    }
    // Numbers no other test uses: the check matches command lines by substring.
    common::assert_no_process("sleep 3071");
    common::assert_no_process("sleep 3072");
}

#[test]
fn a_probe_that_never_passes_fails_the_service_with_its_last_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let manifest = format!(
        r#"
[workflow]
name = "unready"
[steps.api]
kind = "service"
run = "exec sleep 302"
ready = {{ http = "http://127.0.0.1:{port}/", timeout = "1s", interval = "100ms" }}
[steps.client]
run = "touch should-not-exist"
needs = ["api"]
"#
    );
    let (out, summary) = run(dir.path(), &manifest);
    assert_eq!(out.status.code(), Some(1));
    let api = step(&summary, "api");
    assert_eq!(api["state"], "failed");
    let reason = api["reason"].as_str().unwrap_or("");
    assert!(reason.contains("never became ready within 1s"), "{reason}");
    assert!(
        reason.contains(&format!("127.0.0.1:{port}")) && reason.to_lowercase().contains("refused"),
        "{reason}"
    );
    assert_eq!(step(&summary, "client")["state"], "skipped");
    assert!(!dir.path().join("should-not-exist").exists());
    assert!(!process_alive("sleep 302"));
}

#[test]
fn a_service_that_exits_on_its_own_fails_the_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let manifest = r#"
[workflow]
name = "quits"
[steps.api]
kind = "service"
run = "sleep 0.3; exit 0"
ready = { command = "true" }
[steps.client]
run = "sleep 5"
needs = ["api"]
"#;
    let started = Instant::now();
    let (out, summary) = run(dir.path(), manifest);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let api = step(&summary, "api");
    assert_eq!(api["state"], "failed");
    assert!(
        api["reason"]
            .as_str()
            .unwrap_or("")
            .contains("service exited on its own"),
        "{api}"
    );
    // fail_fast stopped the client instead of waiting for it.
    assert_eq!(step(&summary, "client")["state"], "cancelled");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the client was not stopped"
    );
}

/// Seen with `redis-server --daemonize yes` as a service: its command forked the server
/// into the background and exited 0, and the reason said only "service exited on its own
/// (exit code 0)" beside a separate warning. The reason names what it left running and
/// says what to do; that process is ended (guarantee 8).
#[test]
fn a_service_that_puts_itself_in_the_background_is_told_to_stay_in_the_foreground() {
    let dir = tempfile::tempdir().expect("tempdir");
    let manifest = r#"
[workflow]
name = "daemon"
[steps.api]
kind = "service"
# Exits once the background `sleep` has exec'd, so that it is named as itself.
run = "sleep 317 & until grep -q 317 /proc/$!/cmdline; do :; done; exit 0"
ready = { command = "true" }
[steps.client]
run = "true"
needs = ["api"]
"#;
    let (out, summary) = run(dir.path(), manifest);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let api = step(&summary, "api");
    assert_eq!(api["state"], "failed");
    let reason = api["reason"].as_str().unwrap_or("");
    assert!(
        reason.starts_with("service exited on its own (exit code 0), leaving `sleep 317` (pid ")
            && reason.ends_with(
                ") in the background: a service must run in the foreground (drop its daemonize option or `&`)"
            ),
        "{reason}"
    );
    assert!(!process_alive("sleep 317"));
}

#[test]
fn failing_health_checks_fail_the_run_with_the_probe_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let manifest = r#"
[workflow]
name = "sick"
[steps.api]
kind = "service"
run = "touch healthy; exec sleep 303"
ready = { command = "test -f healthy" }
health = { command = "test -f still-healthy", interval = "100ms", failures = 3 }
[steps.client]
run = "sleep 5"
needs = ["api"]
"#;
    let (out, summary) = run(dir.path(), manifest);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let reason = step(&summary, "api")["reason"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    assert!(
        reason.contains("unhealthy") && reason.contains("3 health checks failed in a row"),
        "{reason}"
    );
    assert!(reason.contains("test -f still-healthy"), "{reason}");
    assert!(!process_alive("sleep 303"));
}

#[test]
fn a_silent_step_is_stalled() {
    let dir = tempfile::tempdir().expect("tempdir");
    let manifest = r#"
[workflow]
name = "stall"
[steps.talks-then-hangs]
run = "echo working; exec sleep 304"
stall_timeout = "1s"
kill_grace = "500ms"
[steps.keeps-talking]
run = "for i in 1 2 3 4 5 6; do echo $i; sleep 0.3; done"
stall_timeout = "1s"
"#;
    let (out, summary) = run(dir.path(), manifest);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let s = step(&summary, "talks-then-hangs");
    assert_eq!(s["state"], "stalled");
    assert!(
        s["reason"]
            .as_str()
            .unwrap_or("")
            .contains("no output and no progress for 1s"),
        "{s}"
    );
    assert!(
        s["last_lines"]
            .as_array()
            .is_some_and(|l| l.iter().any(|x| x == "working")),
        "{s}"
    );
    assert!(!process_alive("sleep 304"));
}

#[test]
fn junit_counts_and_failing_tests_reach_the_summary_and_status() {
    let dir = tempfile::tempdir().expect("tempdir");
    let report = r#"<testsuites><testsuite name="pytest" tests="3"><testcase classname="tests.test_app" name="test_ok"/><testcase classname="tests.test_app" name="test_bad"><failure message="assert 1 == 2">trace</failure></testcase><testcase classname="tests.test_app" name="test_skip"><skipped message="later"/></testcase></testsuite></testsuites>"#;
    std::fs::write(dir.path().join("report.xml.in"), report).expect("fixture");
    // Exit 0, as `pytest ... || true` would: the report's failures still fail the step.
    let manifest = r#"
[workflow]
name = "junit"
[steps.tests]
kind = "test"
run = "mkdir -p reports && cp report.xml.in reports/junit.xml"
junit = "reports/*.xml"
"#;
    let (out, summary) = run(dir.path(), manifest);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let tests = step(&summary, "tests");
    assert_eq!(tests["state"], "failed");
    assert_eq!(tests["tests"]["passed"], 1);
    assert_eq!(tests["tests"]["failed"], 1);
    assert_eq!(tests["tests"]["skipped"], 1);
    assert_eq!(
        tests["tests"]["failing"][0]["name"],
        "tests.test_app::test_bad"
    );
    assert_eq!(tests["tests"]["failing"][0]["message"], "assert 1 == 2");
    let text = stderr(&out);
    assert!(text.contains("1 passed, 1 failed, 1 skipped"), "{text}");
    assert!(
        text.contains("FAIL tests.test_app::test_bad: assert 1 == 2"),
        "{text}"
    );
    let status = Command::new(env!("CARGO_BIN_EXE_bgflow"))
        .current_dir(dir.path())
        .args(["status", summary["run_id"].as_str().expect("id")])
        .output()
        .expect("status");
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(
        status.contains("tests: 1 passed, 1 failed, 1 skipped"),
        "{status}"
    );
}

/// Guarantee 10: a report that cannot be read is a check not performed, so the step fails
/// (with why), and bgflow does not crash.
#[test]
fn a_malformed_junit_report_fails_the_step_and_does_not_crash_bgflow() {
    let dir = tempfile::tempdir().expect("tempdir");
    let manifest = r#"
[workflow]
name = "junit-bad"
[steps.tests]
kind = "test"
run = "mkdir -p reports && echo '<testsuite><testcase name=\"x\"></testsuite>' > reports/junit.xml"
junit = "reports/*.xml"
"#;
    let (out, summary) = run(dir.path(), manifest);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let tests = step(&summary, "tests");
    assert_eq!(tests["state"], "failed");
    let reason = tests["reason"].as_str().unwrap_or("");
    assert!(
        reason
            .starts_with("JUnit report could not be read: reports/junit.xml: malformed JUnit XML"),
        "{tests}"
    );
    let warnings = tests["tests"]["warnings"].as_array().expect("warnings");
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().unwrap_or("").contains("malformed JUnit XML")),
        "{tests}"
    );
    assert!(stderr(&out).contains("warning: tests:"), "{}", stderr(&out));
}
