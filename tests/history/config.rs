//! What happens around a run: `[hooks]`, `notifications.command`, and bgflow.toml
//! (DESIGN.md §4).

use super::*;

/// The `run_finished` event a hook wrote to `rel`.
fn event_in(home: &Home, rel: &str) -> Value {
    let text = home.read(rel);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{rel} is not JSON ({e}): {text}"))
}

#[test]
fn on_failure_gets_the_event_and_a_failing_hook_changes_no_exit_code() {
    let home = Home::new();
    home.write(
        "bad.toml",
        "[workflow]\nname = \"bad\"\n\n[hooks]\non_success = \"touch wrong-hook\"\non_failure = \"cat > failure.json; exit 7\"\n\n[steps.fine]\nrun = \"true\"\n\n[steps.boom]\nneeds = [\"fine\"]\nrun = \"echo oops; exit 3\"\n",
    );
    let (id, out) = home.run("bad.toml");
    let out = out.expect(1);
    assert!(
        out.stderr.contains("warning: hooks.on_failure failed") && out.stderr.contains('7'),
        "{}",
        out.stderr
    );
    assert!(
        !home.path().join("wrong-hook").exists(),
        "on_success did not run"
    );
    let e = event_in(&home, "failure.json");
    assert_eq!(e["version"], 1);
    assert_eq!(e["type"], "run_finished");
    assert_eq!(e["run"], id.as_str());
    assert_eq!(e["workflow"], "bad");
    assert_eq!(e["state"], "failed");
    assert_eq!(e["exit_code"], 1);
    let failed: Vec<&str> = e["failed_steps"]
        .as_array()
        .expect("failed_steps")
        .iter()
        .filter_map(|s| s["step"].as_str())
        .collect();
    assert_eq!(failed, ["boom"], "{e}");
    assert_eq!(e["failed_steps"][0]["reason"], "exit code 3");
    assert!(
        e["failed_steps"][0]["log"]
            .as_str()
            .is_some_and(|l| l.ends_with("boom.log")),
        "{e}"
    );
    // Recorded, and the run is still just `failed`.
    let types = event_types(&home.bgflow(&["events", &id]).expect(0).stdout, &id);
    assert!(types.iter().any(|t| t == "hook_failed"), "{types:?}");
    assert_eq!(home.status(&id)["run"]["state"], "failed");

    // A failing on_success hook leaves a successful run successful (exit 0).
    home.write(
        "good.toml",
        "[workflow]\nname = \"good\"\n\n[hooks]\non_success = \"cat > success.json; exit 9\"\n\n[steps.fine]\nrun = \"true\"\n",
    );
    let (id, out) = home.run("good.toml");
    let out = out.expect(0);
    assert!(
        out.stderr.contains("warning: hooks.on_success failed"),
        "{}",
        out.stderr
    );
    assert_eq!(event_in(&home, "success.json")["state"], "succeeded");
    assert_eq!(home.status(&id)["run"]["state"], "succeeded");
}

#[test]
fn a_detached_run_runs_its_hooks_too() {
    let home = Home::new();
    home.write(
        "bg.toml",
        "[workflow]\nname = \"bg\"\n\n[hooks]\non_success = \"cat > hook.tmp && mv hook.tmp hook.json\"\n\n[steps.s]\nrun = \"true\"\n",
    );
    let id = home.detach("bg.toml");
    home.wait_done(&id);
    wait_until("the hook's file", SOON, || {
        home.path().join("hook.json").exists().then_some(())
    });
    let e = event_in(&home, "hook.json");
    assert_eq!(e["run"], id.as_str());
    assert_eq!(e["state"], "succeeded");
}

/// Ctrl-C while a hook runs: the hook has a process group of its own (so that its 60 s
/// limit ends all of it), which the terminal's SIGINT no longer reaches; bgflow passes it
/// on. Without that the run's end waited out the limit. The hook's `sleep` is a child of
/// its shell (`; true` keeps `sh` from exec'ing it), and both are gone at once.
#[test]
fn a_sigint_during_a_hook_reaches_the_hook_and_all_it_started() {
    let home = Home::new();
    home.write(
        "hooked.toml",
        "[workflow]\nname = \"hooked\"\n\n[hooks]\non_success = \"touch hook.started; sleep 97; true\"\n\n[steps.s]\nrun = \"true\"\n",
    );
    let run = home.spawn(&["run", "hooked.toml", "--progress", "never"]);
    wait_until("the hook to start", SOON, || {
        home.path().join("hook.started").exists().then_some(())
    });
    wait_alive(&["sleep", "97"]);
    signal(i64::from(run.child.id()), nix::sys::signal::Signal::SIGINT);
    let out = run.finish(Duration::from_secs(20));
    assert!(
        out.stderr.contains("warning: hooks.on_success failed"),
        "{}",
        out.stderr
    );
    wait_gone(&["sleep", "97"]);
}

#[test]
fn notifications_command_gets_the_event_for_the_outcomes_asked() {
    let home = Home::new();
    home.write(
        "notify.toml",
        "[notifications]\non = [\"failure\"]\ncommand = \"cat > notified.json; exit 1\"\n",
    );
    home.write(
        "ok.toml",
        "[workflow]\nname = \"ok\"\n\n[steps.s]\nrun = \"true\"\n",
    );
    home.write(
        "ko.toml",
        "[workflow]\nname = \"ko\"\n\n[steps.s]\nrun = \"exit 2\"\n",
    );

    home.bgflow(&[
        "--config",
        "notify.toml",
        "run",
        "ok.toml",
        "--progress",
        "never",
    ])
    .expect(0);
    assert!(
        !home.path().join("notified.json").exists(),
        "success does not notify"
    );

    let out = home
        .bgflow(&[
            "--config",
            "notify.toml",
            "run",
            "ko.toml",
            "--progress",
            "never",
        ])
        .expect(1);
    assert!(
        out.stderr.contains("warning: notifications.command failed"),
        "{}",
        out.stderr
    );
    let id = home.newest_run();
    let e = event_in(&home, "notified.json");
    assert_eq!(e["run"], id.as_str());
    assert_eq!(e["state"], "failed");
    assert_eq!(e["failed_steps"][0]["step"], "s");

    // $BGFLOW_CONFIG works as --config does.
    std::fs::remove_file(home.path().join("notified.json")).expect("rm");
    let mut cmd = home.cmd(&["run", "ko.toml", "--progress", "never"]);
    cmd.env("BGFLOW_CONFIG", home.path().join("notify.toml"));
    output(cmd).expect(1);
    assert_eq!(event_in(&home, "notified.json")["state"], "failed");
}

#[test]
fn the_example_config_is_accepted() {
    let home = Home::new();
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/bgflow.toml.example");
    home.write(
        "tiny.toml",
        "[workflow]\nname = \"tiny\"\n\n[steps.s]\nrun = \"echo hi\"\n",
    );
    let out = home
        .bgflow(&["--config", example, "plan", "tiny.toml"])
        .expect(0);
    assert!(!out.stderr.contains("config"), "{}", out.stderr);
    let (id, out) = home.run_with(&["--config", example], "tiny.toml");
    out.expect(0);
    assert_eq!(home.status(&id)["run"]["state"], "succeeded");
}

#[test]
fn an_unknown_config_key_is_a_usage_error_with_its_place() {
    let home = Home::new();
    home.write("bad.toml", "[defaults]\nretries = 1\nbogus = 2\n");
    home.write(
        "tiny.toml",
        "[workflow]\nname = \"tiny\"\n\n[steps.s]\nrun = \"touch ran\"\n",
    );
    for cmd in [
        &["--config", "bad.toml", "run", "tiny.toml"][..],
        &["--config", "bad.toml", "run", "-d", "tiny.toml"],
        &["--config", "bad.toml", "plan", "tiny.toml"],
    ] {
        let out = home.bgflow(cmd).expect(2);
        assert!(
            out.stderr.contains("bad.toml:3:1"),
            "{cmd:?}: {}",
            out.stderr
        );
        assert!(out.stderr.contains("bogus"), "{}", out.stderr);
    }
    assert!(!home.path().join("ran").exists(), "nothing ran");
    assert!(!home.state().join("bgflow.db").exists(), "nothing recorded");
    // A missing --config file is an error too, not "no config".
    home.bgflow(&["--config", "missing.toml", "run", "tiny.toml"])
        .expect(2);
}

#[test]
fn max_concurrent_runs_refuses_a_second_detached_run() {
    let home = Home::new();
    home.write("limits.toml", "[limits]\nmax_concurrent_runs = 1\n");
    home.write(
        "long.toml",
        "[workflow]\nname = \"long\"\n\n[steps.s]\nrun = \"sh wait.sh go\"\n",
    );
    home.write(
        "quick.toml",
        "[workflow]\nname = \"quick\"\n\n[steps.s]\nrun = \"touch quick-ran\"\n",
    );
    let first = run_id_of(
        &home
            .bgflow(&["--config", "limits.toml", "run", "-d", "long.toml"])
            .expect(0),
    );
    home.wait_step_running(&first, "s");
    let out = home
        .bgflow(&["--config", "limits.toml", "run", "-d", "quick.toml"])
        .expect(3);
    assert_eq!(out.stdout, "");
    assert!(out.stderr.contains("max_concurrent_runs"), "{}", out.stderr);
    let out = home
        .bgflow(&[
            "--config",
            "limits.toml",
            "run",
            "quick.toml",
            "--progress",
            "never",
        ])
        .expect(3);
    assert!(out.stderr.contains("max_concurrent_runs"), "{}", out.stderr);
    assert!(!home.path().join("quick-ran").exists());
    let list = home.bgflow(&["list", "--json"]).expect(0).json();
    assert_eq!(list["runs"].as_array().map(Vec::len), Some(1), "{list}");

    // Once the first ends, there is room again.
    home.touch("go");
    home.wait_done(&first);
    let second = run_id_of(
        &home
            .bgflow(&["--config", "limits.toml", "run", "-d", "quick.toml"])
            .expect(0),
    );
    assert_eq!(home.wait_done(&second)["run"]["state"], "succeeded");
}

#[test]
fn default_retries_from_the_root_config_run_a_failing_step_twice() {
    let home = Home::new();
    // bgflow.toml in the workflow's root is the config when it holds no [workflow].
    home.write("proj/bgflow.toml", "[defaults]\nretries = 1\n");
    home.write(
        "proj/flaky.toml",
        "[workflow]\nname = \"flaky\"\n\n[steps.s]\nretry_delay = \"10ms\"\nrun = \"echo try >> attempts; exit 1\"\n",
    );
    let (id, out) = home.run("proj/flaky.toml");
    out.expect(1);
    assert_eq!(home.read("proj/attempts"), "try\ntry\n", "two attempts");
    let s = home.status(&id);
    assert_eq!(step_of(&s, "s")["attempts"], 2, "{s}");
    assert_eq!(step_of(&s, "s")["state"], "failed");
    let types = event_types(&home.bgflow(&["events", &id]).expect(0).stdout, &id);
    assert_eq!(
        types.iter().filter(|t| *t == "step_retrying").count(),
        1,
        "{types:?}"
    );
    assert_eq!(
        types.iter().filter(|t| *t == "step_started").count(),
        2,
        "{types:?}"
    );

    // A step's own `retries` beats the default.
    home.write(
        "proj/once.toml",
        "[workflow]\nname = \"once\"\n\n[steps.s]\nretries = 0\nrun = \"echo try >> once; exit 1\"\n",
    );
    home.run("proj/once.toml").1.expect(1);
    assert_eq!(home.read("proj/once"), "try\n");
}
