//! `[notifications] desktop = true`, proven with a real D-Bus round trip: each test starts a
//! private session bus (`dbus-daemon --session`), serves `org.freedesktop.Notifications` on it
//! with zbus, runs the real `bgflow` binary against that bus and looks at the `Notify` calls
//! the server received.
//!
//! Needs `dbus-daemon` (Debian: `apt-get install dbus`, or just `dbus-daemon`). Without it the
//! tests fail and say so; they never pass without having talked to a bus.
//!
//! No test sleeps and hopes: bgflow sends the notification and waits for the server's reply
//! before it exits, so once bgflow has exited every `Notify` it made has been recorded. A test
//! that expects none still waits a short, bounded time after the exit, for a message that
//! would still be in flight in the bus.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_bgflow");

/// Longest a bgflow run may take before the test gives up on it.
const RUN_DEADLINE: Duration = Duration::from_secs(40);
/// Longest the test waits for something it expects to happen soon.
const SOON: Duration = Duration::from_secs(10);
/// How long, after bgflow exited, a test that expects no notification waits for one.
const AFTER_EXIT: Duration = Duration::from_millis(300);

const NOTIFICATIONS_NAME: &str = "org.freedesktop.Notifications";
const NOTIFICATIONS_PATH: &str = "/org/freedesktop/Notifications";

// ---------------------------------------------------------------------------------------
// A private session bus.
// ---------------------------------------------------------------------------------------

/// A `dbus-daemon --session` of this test's own, killed when dropped.
struct Bus {
    daemon: Child,
    address: String,
    /// Kept open so the daemon never writes into a closed pipe.
    _stdout: BufReader<ChildStdout>,
    /// Holds the daemon's stderr (a file, not a pipe: it writes there after printing its
    /// address, and a closed pipe would kill it with SIGPIPE).
    _dir: tempfile::TempDir,
}

impl Bus {
    fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("bgflow-dbus-")
            .tempdir()
            .expect("a temp dir");
        let err_path = dir.path().join("dbus-daemon.stderr");
        let stderr = std::fs::File::create(&err_path).expect("dbus-daemon stderr file");
        let mut daemon = match Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address=1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
        {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                "`dbus-daemon` was not found, so these tests cannot start a session bus: \
                 install the Debian package `dbus` (`apt-get install dbus`)"
            ),
            Err(e) => panic!("cannot start `dbus-daemon --session`: {e}"),
        };
        let mut stdout = BufReader::new(daemon.stdout.take().expect("dbus-daemon stdout"));
        let mut line = String::new();
        // The daemon prints its address as soon as it listens, or exits (closing the pipe).
        let read = stdout.read_line(&mut line);
        let address = line.trim().to_string();
        if read.is_err() || address.is_empty() {
            let _ = daemon.kill();
            let _ = daemon.wait();
            panic!(
                "`dbus-daemon --session` printed no address ({read:?}); is the Debian package \
                 `dbus` fully installed (it needs /usr/share/dbus-1/session.conf)? stderr:\n{}",
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        Self {
            daemon,
            address,
            _stdout: stdout,
            _dir: dir,
        }
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

// ---------------------------------------------------------------------------------------
// A notification server on that bus.
// ---------------------------------------------------------------------------------------

/// One `Notify` call, as the server received it.
#[derive(Debug, Clone)]
#[allow(dead_code)] // Every field shows in a failing assertion's Debug output.
struct Notified {
    app_name: String,
    replaces_id: u32,
    app_icon: String,
    summary: String,
    body: String,
    actions: Vec<String>,
    hints: Vec<String>,
    expire_timeout: i32,
}

/// `org.freedesktop.Notifications` (Desktop Notifications Specification 1.2), recording
/// every `Notify`. A `hang`ing server records the call and never answers it.
struct Server {
    calls: Sender<Notified>,
    last_id: AtomicU32,
    hang: bool,
}

#[zbus::interface(name = "org.freedesktop.Notifications")]
impl Server {
    #[allow(clippy::too_many_arguments)]
    async fn notify(
        &self,
        app_name: String,
        replaces_id: u32,
        app_icon: String,
        summary: String,
        body: String,
        actions: Vec<String>,
        hints: HashMap<String, zbus::OwnedVariant>,
        expire_timeout: i32,
    ) -> u32 {
        let mut hints: Vec<String> = hints.into_keys().collect();
        hints.sort();
        // The test may have stopped listening (it failed); the reply still goes out.
        let _ = self.calls.send(Notified {
            app_name,
            replaces_id,
            app_icon,
            summary,
            body,
            actions,
            hints,
            expire_timeout,
        });
        if self.hang {
            std::future::pending::<()>().await;
        }
        self.last_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn get_capabilities(&self) -> Vec<String> {
        vec!["body".to_string()]
    }

    fn get_server_information(&self) -> (String, String, String, String) {
        (
            "bgflow-test".to_string(),
            "bgflow".to_string(),
            "0".to_string(),
            "1.2".to_string(),
        )
    }

    fn close_notification(&self, _id: u32) {}
}

/// A bus with a notification server on it; `calls` receives each `Notify`.
struct Desktop {
    calls: Receiver<Notified>,
    // Dropped in this order: the connection, then the daemon.
    _server: zbus::Connection,
    bus: Bus,
}

impl Desktop {
    fn start() -> Self {
        Self::serve(false)
    }

    /// A server that records each `Notify` and never answers it.
    fn hung() -> Self {
        Self::serve(true)
    }

    fn serve(hang: bool) -> Self {
        let bus = Bus::start();
        let (tx, calls) = mpsc::channel();
        let server = Server {
            calls: tx,
            last_id: AtomicU32::new(0),
            hang,
        };
        // `build` returns once the name is ours; after `block_on` returns, zbus's helper thread
        // serves the calls.
        let conn = zbus::block_on(
            zbus::connection::Builder::address(bus.address.as_str())
                .name(NOTIFICATIONS_NAME)
                .serve_at(NOTIFICATIONS_PATH, server)
                .build(),
        )
        .unwrap_or_else(|e| {
            panic!(
                "cannot serve {NOTIFICATIONS_NAME} on the test bus {}: {e}",
                bus.address
            )
        });
        Self {
            calls,
            _server: conn,
            bus,
        }
    }

    /// The one notification of a finished run: one arrives within SOON, and no second.
    #[track_caller]
    fn expect_one(&self, out: &Finished) -> Notified {
        let first = match self.calls.recv_timeout(SOON) {
            Ok(n) => n,
            Err(e) => panic!("no Notify within {SOON:?} ({e}); {out:?}"),
        };
        match self.calls.try_recv() {
            Err(TryRecvError::Empty) => {}
            other => panic!("a second notification: {other:?}; the first: {first:?}"),
        }
        first
    }

    /// No notification: none came before bgflow exited, and none in a short window after.
    #[track_caller]
    fn expect_none(&self, out: &Finished) {
        match self.calls.recv_timeout(AFTER_EXIT) {
            Err(RecvTimeoutError::Timeout) => {}
            other => panic!("expected no notification, got {other:?}; {out:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// bgflow on a tiny workflow.
// ---------------------------------------------------------------------------------------

/// A workflow and a config in a fresh temp dir.
struct Flow {
    dir: tempfile::TempDir,
}

/// What a finished bgflow left behind.
struct Finished {
    status: ExitStatus,
    elapsed: Duration,
    stdout: String,
    stderr: String,
}

impl std::fmt::Debug for Finished {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "bgflow {} after {:?}\n--- stdout:\n{}--- stderr:\n{}",
            self.status, self.elapsed, self.stdout, self.stderr
        )
    }
}

impl Finished {
    #[track_caller]
    fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(self.status.code(), Some(code), "exit code; {self:?}");
        self
    }
}

/// Steps `setup` (succeeds) then `compile`, whose command is COMPILE.
fn manifest(compile: &str) -> String {
    format!(
        "[workflow]\nname = \"notify-demo\"\n\n[steps.setup]\nrun = \"true\"\n\n\
         [steps.compile]\nneeds = [\"setup\"]\nrun = \"{compile}\"\n"
    )
}

impl Flow {
    /// A workflow that succeeds (`fail = false`) or whose step `compile` fails, and
    /// `cfg.toml` holding `config`.
    fn new(fail: bool, config: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("bgflow-notify-")
            .tempdir()
            .expect("a temp dir");
        let compile = if fail { "exit 3" } else { "true" };
        std::fs::write(dir.path().join("flow.toml"), manifest(compile)).expect("write flow");
        std::fs::write(dir.path().join("cfg.toml"), config).expect("write config");
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `bgflow --config cfg.toml run flow.toml --progress never`, with the session bus at
    /// `bus_address`, to the end (at most RUN_DEADLINE).
    fn run(&self, bus_address: &str) -> Finished {
        let out_path = self.path().join("bgflow.stdout");
        let err_path = self.path().join("bgflow.stderr");
        let mut child = Command::new(BIN)
            .args([
                "--config",
                "cfg.toml",
                "run",
                "flow.toml",
                "--progress",
                "never",
            ])
            .current_dir(self.path())
            .env("DBUS_SESSION_BUS_ADDRESS", bus_address)
            .env_remove("BGFLOW_CONFIG")
            .env_remove("BGFLOW_STATE_DIR")
            .env_remove("CI")
            .env_remove("NO_COLOR")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out_path).expect("stdout file"))
            .stderr(std::fs::File::create(&err_path).expect("stderr file"))
            .spawn()
            .expect("start bgflow");
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for bgflow") {
                break status;
            }
            if started.elapsed() > RUN_DEADLINE {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "bgflow still running after {RUN_DEADLINE:?}; stderr:\n{}",
                    std::fs::read_to_string(&err_path).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        Finished {
            status,
            elapsed: started.elapsed(),
            stdout: std::fs::read_to_string(&out_path).expect("read stdout"),
            stderr: std::fs::read_to_string(&err_path).expect("read stderr"),
        }
    }
}

const DESKTOP: &str = "[notifications]\ndesktop = true\n";

// ---------------------------------------------------------------------------------------
// Tests.
// ---------------------------------------------------------------------------------------

/// A successful run sends one notification, from "bgflow", whose summary names the
/// workflow and says it succeeded.
#[test]
fn successful_run_sends_one_desktop_notification() {
    let desktop = Desktop::start();
    let flow = Flow::new(false, DESKTOP);
    let out = flow.run(&desktop.bus.address);
    out.expect_code(0);
    let n = desktop.expect_one(&out);
    assert_eq!(n.app_name, "bgflow", "{n:#?}");
    assert_eq!(n.summary, "bgflow: notify-demo succeeded", "{n:#?}");
    assert!(n.body.contains("succeeded"), "{n:#?}");
    assert_eq!(
        n.replaces_id, 0,
        "a new notification, not a replacement: {n:#?}"
    );
}

/// A failed run sends one notification whose summary says it failed and whose body names
/// the failing step (and only that step).
#[test]
fn failed_run_notification_names_the_failing_step() {
    let desktop = Desktop::start();
    let flow = Flow::new(true, DESKTOP);
    let out = flow.run(&desktop.bus.address);
    out.expect_code(1);
    let n = desktop.expect_one(&out);
    assert_eq!(n.app_name, "bgflow", "{n:#?}");
    assert_eq!(n.summary, "bgflow: notify-demo failed", "{n:#?}");
    assert!(n.body.contains("compile failed"), "{n:#?}");
    assert!(
        !n.body.contains("setup"),
        "names only the failed step: {n:#?}"
    );
}

/// `on = ["failure"]`: a successful run sends none, and a failed one (same config) does, so
/// the silence is the filter's doing; `desktop = false` sends none even for a failure.
#[test]
fn on_filter_and_desktop_false_send_nothing() {
    let desktop = Desktop::start();
    let failures_only = "[notifications]\ndesktop = true\non = [\"failure\"]\n";

    let out = Flow::new(false, failures_only).run(&desktop.bus.address);
    out.expect_code(0);
    desktop.expect_none(&out);

    let out = Flow::new(true, failures_only).run(&desktop.bus.address);
    out.expect_code(1);
    let n = desktop.expect_one(&out);
    assert_eq!(n.summary, "bgflow: notify-demo failed", "{n:#?}");

    let off = "[notifications]\ndesktop = false\n";
    let out = Flow::new(true, off).run(&desktop.bus.address);
    out.expect_code(1);
    desktop.expect_none(&out);
    let out = Flow::new(false, off).run(&desktop.bus.address);
    out.expect_code(0);
    desktop.expect_none(&out);
}

/// No session bus to reach: the run's exit code is unchanged and a warning says the
/// desktop notification failed.
#[test]
fn unreachable_bus_is_a_warning_not_a_failure() {
    let nowhere = tempfile::tempdir().expect("a temp dir");
    let address = format!(
        "unix:path={}",
        nowhere.path().join("no-such-bus-socket").display()
    );
    for (fail, code) in [(false, 0), (true, 1)] {
        let out = Flow::new(fail, DESKTOP).run(&address);
        out.expect_code(code);
        assert!(
            out.stderr.contains("warning") && out.stderr.contains("desktop notification"),
            "no warning about the desktop notification; {out:?}"
        );
    }
}

/// A notification server that takes the call and never answers (neither zbus nor the bus
/// time the call out; before `notify::DESKTOP_TIMEOUT`, bgflow never exited): bgflow gives up
/// after a few seconds, warns, and exits with the run's code.
#[test]
fn hung_notification_server_does_not_hold_up_the_exit() {
    let desktop = Desktop::hung();
    let out = Flow::new(false, DESKTOP).run(&desktop.bus.address);
    out.expect_code(0);
    let n = desktop.expect_one(&out);
    assert_eq!(n.summary, "bgflow: notify-demo succeeded", "{n:#?}");
    assert!(
        out.elapsed < Duration::from_secs(15),
        "bgflow waited too long for the notification server; {out:?}"
    );
    assert!(
        out.stderr.contains("warning") && out.stderr.contains("desktop notification"),
        "no warning about the desktop notification; {out:?}"
    );
}
