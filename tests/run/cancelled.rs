//! A step cancelled by a stop says why the run stopped (issue 19).

use super::*;

/// Issue 19: "a step cancelled by fail-fast says only cancelled". `slow` is running when
/// `bad` fails; fail_fast stops it, and it says that `bad`'s failure did, in the live line,
/// the summary, summary.json and `status` (text and JSON). `later`, which never started,
/// says so too.
#[test]
fn a_step_cancelled_by_fail_fast_names_the_step_whose_failure_cancelled_it() {
    let flow = Flow::new(
        r#"
[workflow]
name = "fail-fast-reason"

[steps.slow]
run = "echo slow began; touch slow.started; sh wait.sh never.made"

[steps.bad]
run = "sh wait.sh slow.started; echo broken; exit 3"

[steps.later]
needs = ["slow"]
run = "true"
"#,
    );
    let out = flow.run(&["-j", "2"]);
    out.expect_code(1)
        .expect_state("bad", "failed")
        .expect_state("slow", "cancelled")
        .expect_state("later", "cancelled");
    let why = "step `bad` failed; fail_fast stopped the rest";
    assert_eq!(out.reason("slow"), format!("stopped: {why}"));
    assert_eq!(out.reason("later"), format!("not started: {why}"));
    let live = out
        .stderr
        .lines()
        .find(|l| l.contains("finished slow: cancelled"))
        .unwrap_or_else(|| panic!("no live line for slow: {}", out.stderr));
    assert!(live.ends_with(&format!("(stopped: {why})")), "{live}");
    // `slow` ran until it was stopped: the summary says so, with the log of what it
    // printed; `later` never started.
    let stopped = out
        .stderr
        .split("\nstopped while running:\n")
        .nth(1)
        .unwrap_or_else(|| panic!("no `stopped while running` list: {}", out.stderr));
    let (stopped, not_run) = stopped
        .split_once("\nnot run:\n")
        .unwrap_or_else(|| panic!("no `not run` list after it: {}", out.stderr));
    let slow = stopped.lines().next().unwrap_or_default();
    assert!(
        slow.starts_with("  slow cancelled after ") && slow.ends_with(&format!(": stopped: {why}")),
        "{}",
        out.stderr
    );
    let log = format!("    log: {}", out.log_dir().join("slow.log").display());
    assert_eq!(stopped.lines().nth(1), Some(log.as_str()), "{}", out.stderr);
    assert!(!stopped.contains("later"), "{}", out.stderr);
    assert!(
        not_run.starts_with(&format!("  later cancelled: not started: {why}\n")),
        "{}",
        out.stderr
    );

    let id = out.summary()["run_id"].as_str().expect("run id").to_owned();
    let status: Value =
        serde_json::from_str(&bgflow_stdout(&flow, &["status", &id, "--json"])).expect("JSON");
    let slow = status["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|s| s["name"] == "slow")
        .expect("slow in status");
    assert_eq!(slow["reason"], format!("stopped: {why}"), "{status:#}");
    let text = bgflow_stdout(&flow, &["--color", "never", "status", &id]);
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("slow "))
        .unwrap_or_else(|| panic!("no line for slow: {text}"));
    assert!(line.contains(&format!("stopped: {why}")), "{text}");
}

/// Seen on markupsafe's workflow: the last step failed after every other one had ended,
/// and the run said "fail_fast stopped the rest" although nothing was stopped. `first`
/// has ended when `last` (which needs it) fails, and `skipped` depends on the failure: the
/// run's reason names the failure only, in summary.json and the last line. When fail_fast
/// does stop something, the reason says so (the test above).
#[test]
fn fail_fast_that_finds_nothing_to_stop_does_not_say_it_stopped_the_rest() {
    let flow = Flow::new(
        r#"
[workflow]
name = "nothing-left"

[steps.first]
run = "true"

[steps.last]
needs = ["first"]
run = "exit 3"

[steps.skipped]
needs = ["last"]
run = "true"
"#,
    );
    let out = flow.run(&[]);
    out.expect_code(1)
        .expect_state("first", "succeeded")
        .expect_state("last", "failed")
        .expect_state("skipped", "skipped");
    expect_only_the_failure(&out, "last");
}

/// The run's reason, in summary.json and the last line, names step `failed` alone: no
/// "fail_fast stopped the rest".
fn expect_only_the_failure(out: &Outcome, failed: &str) {
    let why = format!("step `{failed}` failed");
    assert_eq!(out.summary()["reason"], why.as_str(), "{}", out.stderr);
    let last = out.stderr.lines().last().unwrap_or_default();
    assert!(last.contains(&format!("({why})")), "{}", out.stderr);
    assert!(!out.stderr.contains("fail_fast stopped"), "{}", out.stderr);
}

/// A workflow whose service `db` is ready once it prints `up`.
const DB: &str = r#"
[workflow]
name = "served"

[steps.db]
kind = "service"
run = "echo up; exec sleep 600"
ready = { log = "up", timeout = "20s" }
"#;

/// Seen on redis-py's workflow: a `redis-server` service, two pytest steps that need it;
/// the second failed after the first had ended, and fail-fast "cancelled" the service
/// although both its dependents were done, and said it stopped the rest. A service whose
/// dependents have all ended stops as it would have (succeeded) and the reason names the
/// failure only; one with a dependent that the stop cancels is cancelled with it.
#[test]
fn fail_fast_after_a_services_last_dependent_ends_stops_it_as_done() {
    let service = format!(
        r#"{DB}
[steps.quick]
needs = ["db"]
run = "true"

[steps.bad]
needs = ["db", "quick"]
run = "exit 3"
"#
    );
    let flow = Flow::new(&service);
    let out = flow.run(&[]);
    out.expect_code(1)
        .expect_state("quick", "succeeded")
        .expect_state("bad", "failed")
        .expect_state("db", "succeeded");
    expect_only_the_failure(&out, "bad");

    // Another dependent still running when `bad` fails: fail-fast stops it, and the
    // service with it.
    let flow =
        Flow::new(&format!(
        "{}\n[steps.slow]\nneeds = [\"db\"]\nrun = \"touch slow.started; sh wait.sh never.made\"\n",
        service.replace("run = \"exit 3\"", "run = \"sh wait.sh slow.started; exit 3\"")
    ));
    let out = flow.run(&["-j", "3"]);
    out.expect_code(1)
        .expect_state("bad", "failed")
        .expect_state("slow", "cancelled")
        .expect_state("db", "cancelled");
    assert_eq!(
        out.summary()["reason"],
        "step `bad` failed; fail_fast stopped the rest",
        "{}",
        out.stderr
    );

    // Dependents not yet started when the first fails (one slot, plan order): fail-fast
    // cancels them and the service, every time (the service's normal end and the stop
    // both came before it looked, and it took either).
    let flow = Flow::new(&format!(
        "{DB}\n[steps.t]\nneeds = [\"db\"]\nmatrix = {{ n = [\"1\", \"2\", \"3\"] }}\nrun = \"exit {{{{ matrix.n }}}}\"\n"
    ));
    for _ in 0..3 {
        let out = flow.run(&["-j", "1"]);
        out.expect_code(1)
            .expect_state("t[1]", "failed")
            .expect_state("t[2]", "cancelled")
            .expect_state("db", "cancelled");
    }
}

/// Seen on redis-py's matrix of test files with `fail_fast = false`: three instances
/// failed and the run ended "failed in 19.3s" with no reason, in the last line, `status`
/// and summary.json alike. The reason now names the failures (three at most) and counts
/// them; a failure allowed to fail is not one of them.
#[test]
fn a_run_that_failed_without_stopping_names_its_failures() {
    let flow = Flow::new(
        r#"
[workflow]
name = "many-failures"
fail_fast = false

[steps.t]
matrix = { n = ["1", "2", "3", "4", "5"] }
run = "exit {{ matrix.n }}"

[steps.fine]
run = "true"

[steps.allowed]
run = "exit 9"
allow_failure = true
"#,
    );
    let out = flow.run(&[]);
    out.expect_code(1).expect_state("fine", "succeeded");
    let why = "5 steps failed: `t[1]`, `t[2]`, `t[3]` and 2 more";
    assert_eq!(out.summary()["reason"], why, "{}", out.stderr);
    let last = out.stderr.lines().last().unwrap_or_default();
    assert!(last.contains(&format!("({why})")), "{}", out.stderr);
    let id = out.summary()["run_id"].as_str().expect("run id").to_owned();
    let status: Value =
        serde_json::from_str(&bgflow_stdout(&flow, &["status", &id, "--json"])).expect("JSON");
    assert_eq!(status["run"]["reason"], why, "{status:#}");

    // The line above the verdict resumes the run as printed.
    let hint = out.stderr.lines().rev().nth(1).unwrap_or_default();
    let command = hint
        .strip_prefix("resume (runs what did not succeed): ")
        .unwrap_or_else(|| panic!("no resume line: {}", out.stderr));
    assert_eq!(command, format!("bgflow resume {id}"));
    let resumed = std::process::Command::new(BIN)
        .args(command.split(' ').skip(1))
        .current_dir(flow.path())
        .output()
        .expect("resume");
    assert_eq!(resumed.status.code(), Some(1), "{resumed:?}");
    let resumed_err = String::from_utf8_lossy(&resumed.stderr);
    assert!(resumed_err.contains("error: t[1] failed"), "{resumed_err}");
    // Run from elsewhere with `--state-dir`, the line names the state folder.
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let state = flow.path().join(".bgflow");
    let far = std::process::Command::new(BIN)
        .arg("--state-dir")
        .arg(&state)
        .arg("run")
        .arg(flow.path().join("bgflow.toml"))
        .current_dir(elsewhere.path())
        .output()
        .expect("run from elsewhere");
    let far_err = String::from_utf8_lossy(&far.stderr);
    assert!(
        far_err.contains(&format!(
            "resume (runs what did not succeed): bgflow --state-dir {} resume ",
            state.display()
        )),
        "{far_err}"
    );

    flow.write(
        "bgflow.toml",
        &flow
            .read("bgflow.toml")
            .replace(r#"["1", "2", "3", "4", "5"]"#, r#"["0", "7"]"#),
    );
    let out = flow.run(&[]);
    out.expect_code(1);
    assert_eq!(
        out.summary()["reason"],
        "step `t[7]` failed",
        "{}",
        out.stderr
    );
}

/// Seen on redis-py's workflow: on Ctrl-C the `redis-server` service got SIGINT with the
/// pytest steps that used it, stopped first, and their logs ended in connection errors. A
/// stopping run now stops the steps that need a service first and the service once they
/// have ended (as `docker compose stop` does): here the client, still shutting down 0.3 s
/// after its signal, finds the service up, and the service is cancelled after it.
#[test]
fn a_stop_ends_a_services_dependents_before_the_service() {
    let flow = Flow::new(
        r#"
[workflow]
name = "ordered-stop"

[steps.db]
kind = "service"
run = "trap 'rm -f db.up; exit 0' TERM INT; : > db.up; echo up; while :; do sleep 0.05; done"
ready = { log = "up", timeout = "20s" }

[steps.client]
needs = ["db"]
run = "trap 'sleep 0.3; if [ -e db.up ]; then echo served > saw; else echo gone > saw; fi; exit 1' TERM INT; : > client.started; while :; do sleep 0.05; done"
"#,
    );
    let running = flow.start(&[]);
    wait_until(SOON, "the client to start", || {
        flow.path().join("client.started").exists()
    });
    running.signal(Signal::SIGINT);
    let out = running.finish();
    out.expect_code(130)
        .expect_state("client", "cancelled")
        .expect_state("db", "cancelled");
    assert_eq!(flow.read("saw"), "served\n", "{}", out.stderr);
    assert!(
        !flow.path().join("db.up").exists(),
        "the service got its stop"
    );
    let (client, db) = (out.step("client"), out.step("db"));
    assert!(
        db["finished_at"].as_str() >= client["finished_at"].as_str(),
        "{}",
        out.stderr
    );
}
