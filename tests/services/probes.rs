//! Guarantee 10 for services (issue 19): an `http`/`tcp` probe passes only when the socket
//! that answers it belongs to a process of the service. Someone else's server on the port
//! is named by `plan`, refused by `run`, fails a service that finds it at its start, and
//! fails a service whose ready probe it answers. A service that truly serves passes,
//! whether it binds late, through a grandchild, on IPv6 or the wildcard, on a templated
//! port, under either containment mechanism.
//!
//! Real servers (`python3 -m http.server`) on real loopback ports picked by binding port 0;
//! waits poll with a deadline. Each test's sleeps carry numbers no other test uses.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::{free_port, process_alive, step};

const SOON: Duration = Duration::from_secs(20);
const RUN_DEADLINE: Duration = Duration::from_secs(60);

fn bgflow(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bgflow"));
    cmd.current_dir(dir)
        .args(["--color", "never"])
        .env_remove("BGFLOW_STATE_DIR")
        .env_remove("BGFLOW_CONFIG");
    cmd
}

fn run_args(dir: &Path, args: &[&str]) -> Output {
    bgflow(dir)
        .args(["run", "--progress", "never", "flow.toml"])
        .args(args)
        .output()
        .expect("bgflow runs")
}

fn summary(dir: &Path) -> Option<serde_json::Value> {
    // The newest run's: a test that runs more than once reads the last run's summary.
    let runs = std::fs::read_dir(dir.join(".bgflow/runs")).ok()?;
    let (_, newest) = runs
        .flatten()
        .map(|e| e.path().join("summary.json"))
        .filter_map(|p| Some((p.metadata().ok()?.modified().ok()?, p)))
        .max()?;
    serde_json::from_str(&std::fs::read_to_string(newest).ok()?).ok()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + SOON;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn listening(addr: &str) -> bool {
    std::net::TcpStream::connect(addr).is_ok()
}

/// Someone else's server: `python3 -m http.server PORT`, started by the test, not by
/// bgflow, and killed when dropped.
struct Foreign(Child);

impl Foreign {
    fn start(dir: &Path, port: u16) -> Self {
        let child = Command::new("python3")
            .args([
                "-m",
                "http.server",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 starts");
        let server = Self(child);
        wait_until("the foreign server to listen", || {
            listening(&format!("127.0.0.1:{port}"))
        });
        server
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Foreign {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits for a `bgflow run` started with `spawn`, within the run deadline.
fn finish(mut child: Child) -> Output {
    let deadline = Instant::now() + RUN_DEADLINE;
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() >= deadline {
            // SIGTERM first: bgflow then ends its steps, so nothing of the test is left.
            if let Ok(pid) = i32::try_from(child.id()) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGTERM,
                );
            }
            let grace = Instant::now() + Duration::from_secs(15);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < grace {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
            panic!("bgflow run did not end within {RUN_DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

fn spawn_run(dir: &Path) -> Child {
    bgflow(dir)
        .args(["run", "--progress", "never", "flow.toml"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bgflow starts")
}

fn reason(summary: &serde_json::Value, name: &str) -> String {
    step(summary, name)["reason"]
        .as_str()
        .unwrap_or("")
        .to_owned()
}

#[test]
fn someone_elses_server_on_the_port_is_named_by_plan_and_refused_by_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let foreign = Foreign::start(dir.path(), port);
    let manifest = format!(
        r#"[workflow]
name = "taken"

[steps.api]
kind = "service"
run = "touch api-ran; exec python3 -m http.server {port} --bind 127.0.0.1"
ready = {{ http = "http://127.0.0.1:{port}/", timeout = "20s" }}

[steps.e2e]
needs = ["api"]
run = "touch e2e-ran"

[steps.lint]
run = "touch lint-ran"
"#
    );
    std::fs::write(dir.path().join("flow.toml"), &manifest).expect("manifest");

    // `plan`: a warning at the probe, naming the process that holds the port.
    let plan = bgflow(dir.path())
        .args(["plan", "flow.toml"])
        .output()
        .expect("plan");
    let err = text(&plan.stderr);
    assert_eq!(plan.status.code(), Some(0), "a warning only:\n{err}");
    assert!(
        err.contains(&format!("port {port}")) && err.contains(&format!("pid {}", foreign.pid())),
        "{err}"
    );
    assert!(err.contains("http.server"), "the holder's command: {err}");
    assert!(
        err.contains("flow.toml:7:"),
        "the probe's place (line 7): {err}"
    );
    let json = bgflow(dir.path())
        .args(["plan", "--json", "flow.toml"])
        .output()
        .expect("plan --json");
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).expect("plan --json");
    let found = doc.to_string();
    assert!(
        found.contains(r#""code":"port-taken""#) && found.contains(r#""line":7"#),
        "{found}"
    );
    let strict = bgflow(dir.path())
        .args(["plan", "--strict", "flow.toml"])
        .output()
        .expect("plan --strict");
    assert_eq!(strict.status.code(), Some(3), "{}", text(&strict.stderr));
    let offline = bgflow(dir.path())
        .args(["plan", "--offline", "flow.toml"])
        .output()
        .expect("plan --offline");
    assert!(
        !text(&offline.stderr).contains("port-taken"),
        "--offline reads nothing of the machine"
    );

    // `run`: refused before anything starts, with the holder's pid and command.
    let out = run_args(dir.path(), &[]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains(&format!("pid {}", foreign.pid()))
            && err.contains("http.server")
            && err.contains("nothing ran"),
        "{err}"
    );
    for marker in ["api-ran", "e2e-ran", "lint-ran"] {
        assert!(!dir.path().join(marker).exists(), "{marker}: something ran");
    }
    assert!(
        !dir.path().join(".bgflow").exists(),
        "a refused first run makes no state folder"
    );

    // A run that does not start the service does not need its port.
    let only = run_args(dir.path(), &["--only", "lint"]);
    assert_eq!(only.status.code(), Some(0), "{}", text(&only.stderr));
    assert!(dir.path().join("lint-ran").exists());
    assert!(!dir.path().join("api-ran").exists());
}

#[test]
fn someone_elses_server_answering_the_ready_probe_fails_the_service_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    // The service never listens; someone else's server appears on its port while its
    // probe is being tried. Before, the probe passed and e2e ran against that server.
    let manifest = format!(
        r#"[workflow]
name = "impostor"

[steps.api]
kind = "service"
run = "touch spawned; exec sleep 3171"
ready = {{ tcp = "127.0.0.1:{port}", timeout = "40s", interval = "100ms" }}

[steps.e2e]
needs = ["api"]
run = "touch e2e-ran"
"#
    );
    std::fs::write(dir.path().join("flow.toml"), &manifest).expect("manifest");
    let child = spawn_run(dir.path());
    wait_until("the service to start", || {
        dir.path().join("spawned").exists()
    });
    let foreign = Foreign::start(dir.path(), port);
    let out = finish(child);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let summary = summary(dir.path()).expect("summary.json");
    assert_eq!(step(&summary, "api")["state"], "failed");
    let why = reason(&summary, "api");
    assert!(
        why.contains("service not ready")
            && why.contains(&format!("answered by pid {}", foreign.pid()))
            && why.contains("http.server")
            && why.contains("not a process of the service"),
        "{why}"
    );
    assert!(
        !why.contains("within 40s"),
        "it failed at once, not at the probe's timeout: {why}"
    );
    assert_eq!(step(&summary, "e2e")["state"], "skipped");
    assert!(!dir.path().join("e2e-ran").exists());
    assert!(!process_alive("sleep 3171"));
}

#[test]
fn a_port_taken_after_the_run_started_fails_the_service_before_it_starts() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("wait.sh"), crate::common::WAIT_SH).expect("wait.sh");
    let port = free_port();
    let manifest = format!(
        r#"[workflow]
name = "taken-later"

[steps.gate]
run = "touch waiting; sh wait.sh go"

[steps.api]
kind = "service"
needs = ["gate"]
run = "touch api-ran; exec python3 -m http.server {port} --bind 127.0.0.1"
ready = {{ http = "http://127.0.0.1:{port}/", timeout = "40s" }}

[steps.e2e]
needs = ["api"]
run = "touch e2e-ran"
"#
    );
    std::fs::write(dir.path().join("flow.toml"), &manifest).expect("manifest");
    let child = spawn_run(dir.path());
    wait_until("the run to start", || dir.path().join("waiting").exists());
    let foreign = Foreign::start(dir.path(), port);
    std::fs::write(dir.path().join("go"), "").expect("go");
    let out = finish(child);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let summary = summary(dir.path()).expect("summary.json");
    assert_eq!(step(&summary, "gate")["state"], "succeeded");
    assert_eq!(step(&summary, "api")["state"], "failed");
    let why = reason(&summary, "api");
    assert!(
        why.contains(&format!("port {port}"))
            && why.contains(&format!("already taken by pid {}", foreign.pid()))
            && why.contains("http.server")
            && why.contains("before the service started"),
        "{why}"
    );
    assert!(
        !dir.path().join("api-ran").exists(),
        "the service was not started"
    );
    assert!(!dir.path().join("e2e-ran").exists());
    assert!(err.contains("already taken by pid"), "{err}");
}

/// A service that serves through a grandchild (`sh` forks `sh`, which forks python),
/// after a delay, on a port from `--var`, probed as `localhost`, with health checks that
/// look at the socket too.
fn serving_grandchild_manifest() -> &'static str {
    r#"[workflow]
name = "serves"

[vars]
port = "1"

[steps.api]
kind = "service"
run = "sleep 0.5; sh -c 'python3 -m http.server {{ vars.port }} --bind 127.0.0.1; :'; :"
ready = { http = "http://localhost:{{ vars.port }}/", timeout = "30s", interval = "100ms" }
health = { tcp = "127.0.0.1:{{ vars.port }}", interval = "200ms", failures = 2 }

[steps.e2e]
needs = ["api"]
run = "sleep 1.5; touch e2e-ran"
"#
}

#[test]
fn a_service_serving_through_a_grandchild_on_a_templated_port_passes_under_both_containments() {
    for mechanism in ["auto", "process-group"] {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("flow.toml"), serving_grandchild_manifest())
            .expect("manifest");
        std::fs::write(
            dir.path().join("contain.toml"),
            format!("containment = \"{mechanism}\"\n"),
        )
        .expect("config");
        let port = free_port();
        let out = bgflow(dir.path())
            .args(["--config", "contain.toml", "run", "--progress", "never"])
            .args(["flow.toml", "--var", &format!("port={port}")])
            .output()
            .expect("bgflow runs");
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{mechanism}:\n{err}");
        let summary = summary(dir.path()).expect("summary.json");
        assert_eq!(step(&summary, "api")["state"], "succeeded", "{mechanism}");
        assert!(dir.path().join("e2e-ran").exists(), "{mechanism}");
        assert!(
            !process_alive(&format!("http.server {port}")),
            "{mechanism}: the server outlived the run"
        );
    }
}

#[test]
fn a_service_listening_on_ipv6_or_on_the_wildcard_passes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ipv6 = std::net::TcpListener::bind("[::1]:0").is_ok();
    let (wild, v6) = (free_port(), free_port());
    // Without --bind, http.server listens on `::` for IPv4 and IPv6 alike (or on 0.0.0.0
    // where there is no IPv6): a probe of 127.0.0.1 is taken by that wildcard socket.
    let mut manifest = format!(
        r#"[workflow]
name = "families"

[steps.wildcard]
kind = "service"
run = "exec python3 -m http.server {wild}"
ready = {{ http = "http://127.0.0.1:{wild}/", timeout = "30s", interval = "100ms" }}

[steps.e2e]
needs = ["wildcard"]
run = "touch e2e-ran"
"#
    );
    if ipv6 {
        manifest.push_str(&format!(
            r#"
[steps.v6]
kind = "service"
run = "exec python3 -m http.server {v6} --bind ::1"
ready = {{ tcp = "[::1]:{v6}", timeout = "30s", interval = "100ms" }}

[steps.e2e6]
needs = ["v6"]
run = "touch e2e6-ran"
"#
        ));
    } else {
        eprintln!("no IPv6 loopback here: only the wildcard service is tried");
    }
    std::fs::write(dir.path().join("flow.toml"), &manifest).expect("manifest");
    let out = run_args(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(dir.path().join("e2e-ran").exists());
    assert_eq!(dir.path().join("e2e6-ran").exists(), ipv6);
}

#[test]
fn someone_elses_server_answering_the_health_probe_fails_the_service() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    // The service's server runs beside its leader; the test kills it once the service is
    // ready and puts someone else's server on the port: the health checks must not pass.
    let manifest = format!(
        r#"[workflow]
name = "impostor-health"

[steps.api]
kind = "service"
run = "python3 -m http.server {port} --bind 127.0.0.1 & echo $! > server.pid; exec sleep 3172"
ready = {{ tcp = "127.0.0.1:{port}", timeout = "30s", interval = "100ms" }}
health = {{ tcp = "127.0.0.1:{port}", interval = "1s", failures = 5 }}

[steps.e2e]
needs = ["api"]
run = "touch ready-seen; exec sleep 3173"
"#
    );
    std::fs::write(dir.path().join("flow.toml"), &manifest).expect("manifest");
    let child = spawn_run(dir.path());
    wait_until("the service to be ready", || {
        dir.path().join("ready-seen").exists()
    });
    let pid: i32 = std::fs::read_to_string(dir.path().join("server.pid"))
        .expect("server.pid")
        .trim()
        .parse()
        .expect("a pid");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill the service's server");
    let foreign = Foreign::start(dir.path(), port);
    let out = finish(child);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let summary = summary(dir.path()).expect("summary.json");
    let why = reason(&summary, "api");
    assert!(
        why.contains("service unhealthy")
            && why.contains(&format!("answered by pid {}", foreign.pid()))
            && why.contains("not a process of the service"),
        "{why}"
    );
    assert!(!process_alive("sleep 3172") && !process_alive("sleep 3173"));
}

#[test]
fn a_service_whose_dependents_are_all_up_to_date_is_not_started_and_its_port_may_be_taken() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    // `check` reads what `build` makes: the service is needed when `build` must run.
    let manifest = format!(
        r#"[workflow]
name = "unneeded"

[steps.api]
kind = "service"
run = "touch api-ran; exec python3 -m http.server {port} --bind 127.0.0.1"
ready = {{ http = "http://127.0.0.1:{port}/", timeout = "20s" }}

[steps.e2e]
needs = ["api"]
run = "touch e2e-ran; echo e2e > out/e2e.txt"
outputs = ["out/e2e.txt"]

[steps.build]
run = "echo b > out/b.txt"
outputs = ["out/b.txt"]

[steps.check]
needs = ["api"]
run = "touch check-ran; cp out/b.txt out/check.txt"
inputs = ["out/b.txt"]
outputs = ["out/check.txt"]
"#
    );
    std::fs::write(dir.path().join("flow.toml"), &manifest).expect("manifest");
    let first = run_args(dir.path(), &[]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));
    for marker in ["api-ran", "e2e-ran", "check-ran"] {
        assert!(
            dir.path().join(marker).exists(),
            "{marker}: the first run ran it"
        );
        std::fs::remove_file(dir.path().join(marker)).expect("rm marker");
    }

    // Everything that needs `api` is up to date: it is not started, and someone else's
    // server on its port does not stop the run.
    let foreign = Foreign::start(dir.path(), port);
    let again = run_args(dir.path(), &[]);
    let err = text(&again.stderr);
    assert_eq!(again.status.code(), Some(0), "{err}");
    assert!(
        !dir.path().join("api-ran").exists(),
        "the service started: {err}"
    );
    let second = summary(dir.path()).expect("summary.json");
    assert_eq!(step(&second, "api")["state"], "skipped", "{second}");
    assert_eq!(
        reason(&second, "api"),
        "not needed: every step that needs it is up to date"
    );
    for kept in ["e2e", "check", "build"] {
        assert_eq!(step(&second, kept)["state"], "skipped", "{kept}: {second}");
        assert!(
            reason(&second, kept).starts_with("up to date since run"),
            "{second}"
        );
    }
    assert!(err.contains("api skipped: not needed"), "{err}");

    // A step upstream of a dependent must run (its output is gone): the service is needed,
    // and the taken port refuses the run before anything starts.
    std::fs::remove_file(dir.path().join("out/b.txt")).expect("rm out/b.txt");
    let stale = run_args(dir.path(), &[]);
    let err = text(&stale.stderr);
    assert_eq!(stale.status.code(), Some(3), "{err}");
    assert!(
        err.contains(&format!("pid {}", foreign.pid())) && err.contains("nothing ran"),
        "{err}"
    );
    assert!(!dir.path().join("out/b.txt").exists(), "build ran: {err}");

    // With the port free, that run starts the service for `check` (`e2e` stays kept).
    drop(foreign);
    wait_until("the foreign server to go", || {
        !listening(&format!("127.0.0.1:{port}"))
    });
    let rebuilt = run_args(dir.path(), &[]);
    assert_eq!(rebuilt.status.code(), Some(0), "{}", text(&rebuilt.stderr));
    let last = summary(dir.path()).expect("summary.json");
    assert_eq!(step(&last, "api")["state"], "succeeded", "{last}");
    assert_eq!(step(&last, "check")["state"], "succeeded", "{last}");
    assert_eq!(step(&last, "e2e")["state"], "skipped", "{last}");
    assert!(!process_alive(&format!("http.server {port}")));
}

#[test]
fn a_service_that_only_an_unneeded_service_needs_is_not_started_either() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A database behind an API behind a test: once the test is up to date, neither server
    // is started. `--force` starts both.
    let manifest = r#"[workflow]
name = "chain"

[steps.db]
kind = "service"
run = "touch db-ran; exec sleep 3313"
ready = { command = "test -e db-ran" }

[steps.api]
kind = "service"
needs = ["db"]
run = "touch api-ran; exec sleep 3314"
ready = { command = "test -e api-ran" }

[steps.e2e]
needs = ["api", "db"]
run = "echo e2e > out/e2e.txt"
outputs = ["out/e2e.txt"]
"#;
    std::fs::write(dir.path().join("flow.toml"), manifest).expect("manifest");
    let first = run_args(dir.path(), &[]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));
    for marker in ["db-ran", "api-ran"] {
        std::fs::remove_file(dir.path().join(marker)).expect("the first run started it");
    }
    let again = run_args(dir.path(), &[]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again.stderr));
    let again = summary(dir.path()).expect("summary.json");
    for svc in ["db", "api"] {
        assert_eq!(step(&again, svc)["state"], "skipped", "{svc}: {again}");
        assert!(reason(&again, svc).starts_with("not needed"), "{again}");
        assert!(
            !dir.path().join(format!("{svc}-ran")).exists(),
            "{svc} started"
        );
    }
    assert!(reason(&again, "e2e").starts_with("up to date since run"));
    let forced = run_args(dir.path(), &["--force"]);
    assert_eq!(forced.status.code(), Some(0), "{}", text(&forced.stderr));
    assert!(dir.path().join("db-ran").exists() && dir.path().join("api-ran").exists());
    assert!(!process_alive("sleep 3313") && !process_alive("sleep 3314"));
}
