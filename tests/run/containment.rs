//! Guarantee 8 (issue 18): nothing a step starts outlives it, whatever it does to its session
//! or group, under both containment mechanisms: a cgroup v2 leaf per attempt, and the
//! process group with bgflow as subreaper and a step token.
//!
//! Every test's step starts the three escapes users met (`escapes`): `setsid`, a classic
//! daemon's fork-setsid-fork, and a job under `set -m`, waits until all three run, then
//! does what the trigger needs. Each test gives its sleeps numbers no other test uses, so
//! the scan of /proc finds only its own processes.

use super::*;

/// A config that forces the mechanism (`cgroup` or `process-group`), in the flow's folder.
fn config(flow: &Flow, mechanism: &str) -> String {
    flow.write("contain.toml", &format!("containment = \"{mechanism}\"\n"));
    flow.path().join("contain.toml").display().to_string()
}

/// Shell that starts three processes that leave the step's process group: `sleep {tag}1`
/// by `setsid`, `sleep {tag}2` as a daemon (fork, `setsid`, fork, the middle one exits),
/// `sleep {tag}3` as a job of a shell with job control; then waits until all three run.
fn escapes(tag: u32) -> String {
    format!(
        r#"setsid sh -c ': > e1; exec sleep {tag}1' & ( setsid sh -c 'sh -c ": > e2; exec sleep {tag}2" &' & ) ; bash -c 'set -m; sh -c ": > e3; exec sleep {tag}3" & exit 0'; sh wait.sh e1; sh wait.sh e2; sh wait.sh e3"#
    )
}

fn needles(tag: u32) -> Vec<String> {
    (1..=3)
        .map(|k| format!("sleep {tag}{k}"))
        .chain([format!("sleep {tag}9")])
        .collect()
}

/// Waits until the three escapes run.
fn wait_escaped(flow: &Flow, tag: u32) {
    wait_until(SOON, "the step to start its escapes", || {
        flow.exists("spawned")
    });
    for n in needles(tag).iter().take(3) {
        wait_until(SOON, &format!("`{n}` to run"), || {
            !live_processes(n).is_empty()
        });
    }
}

/// Waits (with a deadline) until no process of the test is alive (a zombie counts as gone).
#[track_caller]
fn assert_all_gone(tag: u32, what: &str) {
    let deadline = Instant::now() + SOON;
    loop {
        let left: Vec<(String, Vec<u32>)> = needles(tag)
            .into_iter()
            .map(|n| {
                let pids = live_processes(&n);
                (n, pids)
            })
            .filter(|(_, p)| !p.is_empty())
            .collect();
        if left.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            for (_, pids) in &left {
                for pid in pids {
                    let _ = kill(
                        Pid::from_raw(i32::try_from(*pid).expect("pid")),
                        Signal::SIGKILL,
                    );
                }
            }
            panic!("{what}: processes survived: {left:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A workflow of one step `leave` that escapes and then runs `then`.
fn one_step(tag: u32, then: &str, extra: &str) -> Flow {
    Flow::new(&format!(
        "[workflow]\nname = \"contain\"\n\n[steps.leave]\nrun = '''{}; touch spawned; {then}'''\n{extra}\n",
        escapes(tag)
    ))
}

/// A detached run, stopped (`--force`) when dropped: a test that fails half-way leaves
/// nothing running.
struct Detached<'a> {
    flow: &'a Flow,
    id: String,
}

impl Drop for Detached<'_> {
    fn drop(&mut self) {
        let _ = bgflow(self.flow, &["stop", &self.id, "--yes", "--force"]);
    }
}

/// `bgflow run -d`: the run, stopped when dropped.
fn detach<'a>(flow: &'a Flow, conf: &str) -> Detached<'a> {
    let out = Command::new(BIN)
        .args(["--color", "never", "run", "bgflow.toml", "-d"])
        .current_dir(flow.path())
        .env("BGFLOW_CONFIG", conf)
        .env_remove("BGFLOW_STATE_DIR")
        .stdin(Stdio::null())
        .output()
        .expect("run -d");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Detached {
        flow,
        id: String::from_utf8_lossy(&out.stdout).trim().to_owned(),
    }
}

/// `bgflow run -d` under a child subreaper (python3) that reaps whatever is orphaned below
/// it (the supervisor, then its steps), so that a killed process's number is free at once,
/// not whenever this machine's init reaps it. The reaper ends once nothing is left.
fn detach_reaped<'a>(flow: &'a Flow, conf: &str) -> (Detached<'a>, Child) {
    use std::io::Read;
    const REAPER: &str = "import ctypes, os, subprocess, sys
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
os.write(1, subprocess.run(sys.argv[1:], stdout=subprocess.PIPE).stdout)
os.close(1)
while True:
    try:
        os.wait()
    except ChildProcessError:
        break
";
    let mut reaper = Command::new("python3")
        .args([
            "-c",
            REAPER,
            BIN,
            "--color",
            "never",
            "run",
            "bgflow.toml",
            "-d",
        ])
        .current_dir(flow.path())
        .env("BGFLOW_CONFIG", conf)
        .env_remove("BGFLOW_STATE_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut id = String::new();
    reaper
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut id)
        .expect("the run id");
    assert!(!id.trim().is_empty(), "run -d printed no run id");
    let run = Detached {
        flow,
        id: id.trim().to_owned(),
    };
    (run, reaper)
}

fn bgflow(flow: &Flow, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .current_dir(flow.path())
        .env_remove("BGFLOW_STATE_DIR")
        .env_remove("BGFLOW_CONFIG")
        .stdin(Stdio::null())
        .output()
        .expect("bgflow")
}

fn status_json(flow: &Flow, id: &str) -> Value {
    let out = bgflow(flow, &["status", id, "--json"]);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "status --json: {e}: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn normal_exit(mechanism: &str, tag: u32) {
    let flow = one_step(tag, "echo done", "");
    let conf = config(&flow, mechanism);
    let out = flow
        .start_env(&["-v"], &[("BGFLOW_CONFIG", &conf)])
        .finish();
    out.expect_code(0).expect_state("leave", "succeeded");
    assert_all_gone(tag, "after the step's command exited");
    assert!(
        out.stderr.contains(&format!("containment: {mechanism}")),
        "-v names the mechanism: {}",
        out.stderr
    );
    let warning = "3 processes of step `leave` outlived it and were stopped";
    // Once live (after the time of day) and once in the summary below the table.
    assert_eq!(
        out.stderr.matches(&format!("warning: {warning}")).count(),
        2,
        "a live warning and one in the summary: {}",
        out.stderr
    );
    assert!(
        out.stderr
            .lines()
            .any(|l| l.starts_with(&format!("warning: {warning}"))),
        "{}",
        out.stderr
    );
    let warnings = out.step("leave")["warnings"].to_string();
    for k in 1..=3 {
        assert!(warnings.contains(&format!("{tag}{k}")), "{warnings}");
    }
    assert!(warnings.contains(warning), "summary.json: {warnings}");
}

fn timeout(mechanism: &str, tag: u32) {
    let flow = one_step(
        tag,
        &format!("sleep {tag}9"),
        "timeout = \"1s\"\nkill_grace = \"1s\"",
    );
    let conf = config(&flow, mechanism);
    let out = flow.start_env(&[], &[("BGFLOW_CONFIG", &conf)]).finish();
    out.expect_code(1).expect_state("leave", "timed_out");
    assert_all_gone(tag, "after the timeout");
}

/// The task that supervises the step panics while the step and its escapes run (a fault
/// injected in debug builds, `BGFLOW_TEST_PANIC_STEP`): the step fails, the run ends, and
/// nothing of the step is left, under either mechanism.
fn supervisor_panics(mechanism: &str, tag: u32) {
    let flow = one_step(tag, &format!("sleep {tag}9"), "");
    let conf = config(&flow, mechanism);
    let out = flow
        .start_env(
            &[],
            &[
                ("BGFLOW_CONFIG", &conf),
                ("BGFLOW_TEST_PANIC_STEP", "leave@spawned"),
            ],
        )
        .finish();
    out.expect_code(1).expect_state("leave", "failed");
    let reason = out.step("leave")["reason"].to_string();
    assert!(
        reason.contains("internal error in a step supervisor"),
        "{reason}"
    );
    assert_all_gone(tag, "after the step's supervisor panicked");
}

fn stop(mechanism: &str, tag: u32, force: bool) {
    let flow = one_step(tag, &format!("sleep {tag}9"), "");
    let conf = config(&flow, mechanism);
    let run = detach(&flow, &conf);
    let id = run.id.clone();
    wait_escaped(&flow, tag);
    let mut args = vec!["stop", id.as_str(), "--yes"];
    if force {
        args.push("--force");
    }
    let out = bgflow(&flow, &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_all_gone(tag, "after stop");
    let status = status_json(&flow, &id);
    assert_eq!(status["run"]["state"], "cancelled", "{status:#}");
}

fn signal(mechanism: &str, tag: u32, sig: Signal) {
    let flow = one_step(tag, &format!("sleep {tag}9"), "");
    let conf = config(&flow, mechanism);
    let running = flow.start_env(&[], &[("BGFLOW_CONFIG", &conf)]);
    wait_escaped(&flow, tag);
    running.signal(sig);
    let out = running.finish();
    out.expect_code(128 + sig as i32)
        .expect_state("leave", "cancelled");
    // A signal from outside bgflow (no stop request beside it) is named as such.
    assert_eq!(
        out.summary()["reason"],
        format!("bgflow received {}", sig.as_str()),
        "{}",
        out.stderr
    );
    assert_all_gone(tag, &format!("after {sig}"));
}

fn fail_fast(mechanism: &str, tag: u32) {
    let flow = Flow::new(&format!(
        "[workflow]\nname = \"contain\"\n\n[steps.leave]\nrun = '''{}; touch spawned; sleep {tag}9'''\n\n[steps.fail]\nrun = \"sh wait.sh spawned; exit 3\"\n",
        escapes(tag)
    ));
    let conf = config(&flow, mechanism);
    let out = flow.start_env(&[], &[("BGFLOW_CONFIG", &conf)]).finish();
    out.expect_code(1)
        .expect_state("fail", "failed")
        .expect_state("leave", "cancelled");
    assert_all_gone(tag, "after fail-fast");
}

fn service_end(mechanism: &str, tag: u32) {
    let flow = Flow::new(&format!(
        "[workflow]\nname = \"contain\"\n\n[steps.svc]\nkind = \"service\"\nrun = '''{}; touch spawned; echo up; exec sleep {tag}9'''\nready = {{ log = \"up\" }}\n\n[steps.client]\nneeds = [\"svc\"]\nrun = \"true\"\n",
        escapes(tag)
    ));
    let conf = config(&flow, mechanism);
    let out = flow.start_env(&[], &[("BGFLOW_CONFIG", &conf)]).finish();
    out.expect_code(0).expect_state("client", "succeeded");
    assert_all_gone(tag, "after the service was stopped");
}

/// A unit bgflow killed (escapees ended at the step's exit; a step that ignores SIGTERM,
/// killed after its grace) does not take down what starts after it: here `cgroup.kill`
/// left its leaf killing every process later started into it, and the next step (or
/// attempt) given that leaf failed at once with SIGKILL.
fn after_a_kill(mechanism: &str, tag: u32) {
    let flow = Flow::new(&format!(
        r#"[workflow]
name = "after-kill"

[steps.leave]
run = '''{}; touch spawned; echo done'''

[steps.next]
run = "echo next ran"
needs = ["leave"]

[steps.stubborn]
run = '''if [ "$BGFLOW_ATTEMPT" = 1 ]; then trap '' TERM; sleep {tag}9; fi; echo attempt $BGFLOW_ATTEMPT'''
needs = ["next"]
timeout = "1s"
kill_grace = "200ms"
retries = 1
retry_delay = "10ms"

[steps.last]
run = "echo last ran"
needs = ["stubborn"]
"#,
        escapes(tag)
    ));
    let conf = config(&flow, mechanism);
    let out = flow.start_env(&[], &[("BGFLOW_CONFIG", &conf)]).finish();
    out.expect_code(0)
        .expect_state("leave", "succeeded")
        .expect_state("next", "succeeded")
        .expect_state("stubborn", "succeeded")
        .expect_state("last", "succeeded");
    assert_eq!(out.step("stubborn")["attempts"], 2, "{}", out.stderr);
    assert_all_gone(tag, "after the run");
}

/// `kill -9` of the run's supervisor (`detached`) or of a foreground `bgflow run`: the run
/// is `lost`, and `stop` ends every process of it, the escapes too.
fn killed_supervisor(mechanism: &str, tag: u32, detached: bool) {
    let flow = one_step(tag, &format!("sleep {tag}9"), "");
    let conf = config(&flow, mechanism);
    let (id, _guard, _foreground) = if detached {
        let run = detach(&flow, &conf);
        let id = run.id.clone();
        wait_escaped(&flow, tag);
        let sup = status_json(&flow, &id)["run"]["supervisor_pid"]
            .as_i64()
            .expect("a supervisor pid");
        kill(
            Pid::from_raw(i32::try_from(sup).expect("pid")),
            Signal::SIGKILL,
        )
        .expect("kill -9");
        (id, Some(run), None)
    } else {
        let running = flow.start_env(&[], &[("BGFLOW_CONFIG", &conf)]);
        wait_escaped(&flow, tag);
        let dir = running.log_dir();
        let id = dir
            .file_name()
            .and_then(|n| n.to_str())
            .expect("run id")
            .to_owned();
        running.signal(Signal::SIGKILL);
        (id, None, Some(running))
    };
    wait_until(SOON, "the run to show lost", || {
        status_json(&flow, &id)["run"]["state"] == "lost"
    });
    assert!(
        !live_processes(&format!("sleep {tag}9")).is_empty(),
        "the step outlived its supervisor until `stop`"
    );
    let out = bgflow(&flow, &["stop", &id, "--yes"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("that its supervisor left"), "{stderr}");
    // A step pid recorded before the kill carries the start time /proc gives (taken from
    // the clock around `clone`); a wrong one would be "left alone" as recycled.
    assert!(!stderr.contains("left alone"), "{stderr}");
    assert_all_gone(tag, "after stop of the lost run");
}

/// A daemon that outlives its step starts another process while bgflow ends it (here on
/// SIGTERM, as a supervisor restarting its worker would): the warning counts and names
/// that one too, not just what was there when the step's command exited.
fn started_while_ending(mechanism: &str, tag: u32) {
    let flow = Flow::new(&format!(
        "[workflow]\nname = \"contain\"\n\n[steps.leave]\nrun = '''setsid sh -c 'trap \"sleep {tag}2 &\" TERM; : > e1; sleep {tag}1 & while :; do wait; done' & sh wait.sh e1'''\nkill_grace = \"1s\"\n"
    ));
    let conf = config(&flow, mechanism);
    let out = flow.start_env(&[], &[("BGFLOW_CONFIG", &conf)]).finish();
    out.expect_code(0).expect_state("leave", "succeeded");
    assert_all_gone(tag, "after the step's command exited");
    let warnings = out.step("leave")["warnings"].to_string();
    assert!(
        warnings.contains("3 processes of step `leave` outlived it and were stopped"),
        "{warnings}"
    );
    // The one started on SIGTERM is named by what it runs (a look may first have seen it
    // between its `fork` and its `execve`). `sleep {tag}1` may not be: under load the
    // SIGTERM can reach it before its `execve`, and it is then a copy of the `sh`.
    assert!(
        warnings.contains(&format!("sleep {tag}2 (pid ")),
        "{warnings}"
    );
}

/// Both mechanisms for each trigger: `name` becomes `name_cgroup` and `name_process_group`.
macro_rules! both {
    ($name:ident, $tag:expr, |$m:ident, $t:ident| $body:expr) => {
        mod $name {
            use super::*;
            #[test]
            fn cgroup() {
                let ($m, $t) = ("cgroup", $tag);
                $body
            }
            #[test]
            fn process_group() {
                let ($m, $t) = ("process-group", $tag + 1);
                $body
            }
        }
    };
}

both!(
    escapes_end_when_the_command_exits_with_a_warning,
    501,
    |m, t| normal_exit(m, t)
);
both!(escapes_end_at_the_timeout, 503, |m, t| timeout(m, t));
both!(a_process_started_while_ending_is_counted, 545, |m, t| {
    started_while_ending(m, t)
});
both!(escapes_end_at_stop, 505, |m, t| stop(m, t, false));
both!(escapes_end_at_stop_force, 507, |m, t| stop(m, t, true));
both!(escapes_end_at_ctrl_c, 509, |m, t| signal(
    m,
    t,
    Signal::SIGINT
));
both!(escapes_end_at_sigterm, 511, |m, t| signal(
    m,
    t,
    Signal::SIGTERM
));
both!(escapes_end_at_sighup, 513, |m, t| signal(
    m,
    t,
    Signal::SIGHUP
));
both!(escapes_end_at_fail_fast, 515, |m, t| fail_fast(m, t));
both!(escapes_end_with_their_service, 517, |m, t| service_end(
    m, t
));
both!(escapes_end_when_the_steps_supervisor_panics, 541, |m, t| {
    supervisor_panics(m, t)
});
both!(steps_after_a_killed_unit_start_normally, 531, |m, t| {
    after_a_kill(m, t)
});
both!(stop_ends_a_killed_supervisors_steps, 519, |m, t| {
    killed_supervisor(m, t, true)
});
both!(stop_ends_a_killed_foreground_runs_steps, 521, |m, t| {
    killed_supervisor(m, t, false)
});

/// `containment = "cgroup"` where none can be made is refused before anything runs; here
/// one can, so `auto` takes the cgroup, and `status --json` of a detached run says so.
#[test]
fn auto_takes_the_cgroup_here_and_status_shows_the_mechanism() {
    let flow = one_step(523, "sleep 5239", "");
    let conf = config(&flow, "auto");
    let run = detach(&flow, &conf);
    let id = run.id.clone();
    wait_escaped(&flow, 523);
    let status = status_json(&flow, &id);
    assert_eq!(status["run"]["containment"], "cgroup", "{status:#}");
    let cgroup = status["run"]["cgroup"]
        .as_str()
        .expect("the run's cgroup")
        .to_owned();
    assert!(cgroup.ends_with(&format!("bgflow-{id}")), "{cgroup}");
    assert!(Path::new(&cgroup).is_dir());
    let out = bgflow(&flow, &["stop", &id, "--yes"]);
    assert!(out.status.success());
    assert_all_gone(523, "after stop");
    wait_until(SOON, "the run's cgroup to be removed", || {
        !Path::new(&cgroup).exists()
    });
}

/// A supervisor killed by SIGKILL cannot remove its run's cgroup folder. The folder stays
/// while the run's orphans live in it (for `stop`), and the first reader after they are
/// gone removes it: none is left behind for good.
#[test]
fn a_lost_runs_cgroup_goes_once_nothing_is_left_in_it() {
    let flow = one_step(543, "sleep 5439", "");
    let conf = config(&flow, "cgroup");
    let run = detach(&flow, &conf);
    let id = run.id.clone();
    wait_escaped(&flow, 543);
    let status = status_json(&flow, &id);
    let cgroup = status["run"]["cgroup"]
        .as_str()
        .expect("the run's cgroup")
        .to_owned();
    let sup = status["run"]["supervisor_pid"]
        .as_i64()
        .expect("a supervisor pid");
    kill(
        Pid::from_raw(i32::try_from(sup).expect("pid")),
        Signal::SIGKILL,
    )
    .expect("kill -9 the supervisor");
    wait_until(SOON, "the run to show lost", || {
        status_json(&flow, &id)["run"]["state"] == "lost"
    });
    assert!(
        Path::new(&cgroup).is_dir(),
        "the folder went while the run's orphans live in it"
    );
    // The orphans end on their own (here, by SIGKILL from outside bgflow).
    for n in needles(543) {
        for pid in live_processes(&n) {
            let _ = kill(
                Pid::from_raw(i32::try_from(pid).expect("pid")),
                Signal::SIGKILL,
            );
        }
    }
    assert_all_gone(543, "after they were killed");
    wait_until(SOON, "a reader to remove the lost run's cgroup", || {
        let out = bgflow(&flow, &["list"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        !Path::new(&cgroup).exists()
    });
    assert_eq!(status_json(&flow, &id)["run"]["state"], "lost");
}

/// The state folder deleted (`rm -r .bgflow`) while a lost run's steps run on: no record
/// is left to find them by, so nothing did, and a new run wrote beside them. The run's
/// cgroup folder names its state folder; a new run of that folder is refused while they
/// run (guarantee 11), and `cleanup --orphans` ends them.
#[test]
fn processes_of_a_run_whose_history_was_deleted_hold_the_lock_until_cleanup_ends_them() {
    let flow = one_step(
        547,
        "echo x > out.txt; sleep 5479",
        "outputs = [\"out.txt\"]",
    );
    let conf = config(&flow, "cgroup");
    let run = detach(&flow, &conf);
    let id = run.id.clone();
    wait_escaped(&flow, 547);
    let status = status_json(&flow, &id);
    let cgroup = status["run"]["cgroup"].as_str().expect("cgroup").to_owned();
    let sup = status["run"]["supervisor_pid"].as_i64().expect("pid");
    kill(
        Pid::from_raw(i32::try_from(sup).expect("pid")),
        Signal::SIGKILL,
    )
    .expect("kill -9 the supervisor");
    std::fs::remove_dir_all(flow.path().join(".bgflow")).expect("rm -r .bgflow");
    // Started with a deadline: a run that is not refused runs the step, which waits.
    let again = flow.start_raw(&["run", "bgflow.toml"], &[]).finish();
    let stderr = again.stderr.as_str();
    assert_eq!(again.code(), 3, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "error: processes of run {id}, which the history in "
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("still run in {cgroup}: ")),
        "{stderr}"
    );
    assert!(stderr.contains("sleep 5479 (pid "), "{stderr}");
    assert!(
        stderr.contains("help: end them: bgflow cleanup --orphans; or pass --allow-concurrent"),
        "{stderr}"
    );
    assert!(
        !live_processes("sleep 5479").is_empty(),
        "refused, not ended"
    );
    let dry = bgflow(&flow, &["cleanup", "--orphans", "--dry-run"]);
    assert!(dry.status.success());
    assert!(
        !live_processes("sleep 5479").is_empty(),
        "a dry run ends nothing"
    );
    let out = bgflow(&flow, &["cleanup", "--orphans"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "of run {id}, which the history does not know, in {cgroup}: "
        )),
        "{stderr}"
    );
    assert_all_gone(547, "after cleanup --orphans");
    assert!(!Path::new(&cgroup).exists(), "the run's cgroup folder went");
}

/// A recorded pid that a new process has taken is never signalled: `stop` of a lost run
/// leaves it alone and says so. The number is handed to the new process by writing
/// /proc/sys/kernel/ns_last_pid (as root), retried if another process takes it first.
#[test]
fn stop_leaves_a_recycled_pid_alone_and_says_so() {
    let flow = Flow::new(
        "[workflow]\nname = \"recycle\"\n\n[steps.long]\nrun = \"touch spawned; exec sleep 5259\"\n",
    );
    let conf = config(&flow, "process-group");
    let (run, mut reaper) = detach_reaped(&flow, &conf);
    let id = run.id.clone();
    wait_until(SOON, "the step to start", || flow.exists("spawned"));
    let mut pid = None;
    wait_until(SOON, "the step's pid in the history", || {
        let s = status_json(&flow, &id);
        pid = s["steps"][0]["pid"].as_i64();
        pid.is_some()
    });
    let pid = i32::try_from(pid.expect("pid")).expect("pid fits");
    // The start time recorded with it (from the clock around `clone`) is the one /proc
    // gives, which `stop` compares.
    let step = status_json(&flow, &id)["steps"][0].clone();
    assert_eq!(
        step["pid_start"].as_u64(),
        common::proc_start_time(pid.unsigned_abs()),
        "{step}"
    );
    let run = status_json(&flow, &id)["run"].clone();
    let sup = run["supervisor_pid"].as_i64().expect("supervisor pid");
    kill(
        Pid::from_raw(i32::try_from(sup).expect("pid")),
        Signal::SIGKILL,
    )
    .expect("kill -9 supervisor");
    kill(Pid::from_raw(pid), Signal::SIGKILL).expect("kill -9 step");
    wait_until(SOON, "the step's process to go", || {
        common::proc_state(pid.unsigned_abs()).is_none_or(|s| s == 'Z' || s == 'X')
    });
    // The zombie (its parent, the supervisor, is gone) is reaped by the reaper; then the
    // number is free.
    wait_until(SOON, "the step's pid to be free", || {
        common::proc_state(pid.unsigned_abs()).is_none()
    });
    // A new process, a group leader like a step, takes the number.
    let mut taker = None;
    for _ in 0..200 {
        std::fs::write("/proc/sys/kernel/ns_last_pid", (pid - 1).to_string())
            .expect("write ns_last_pid (the tests run as root)");
        let mut child = Command::new("sleep");
        std::os::unix::process::CommandExt::process_group(&mut child, 0);
        let child = child.arg("5258").spawn().expect("sleep");
        if i32::try_from(child.id()).ok() == Some(pid) {
            taker = Some(child);
            break;
        }
        let mut child = child;
        let _ = child.kill();
        let _ = child.wait();
    }
    let mut taker = taker.expect("a new process took the recycled pid");
    let out = bgflow(&flow, &["stop", &id, "--yes"]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let alive = still_running(pid.unsigned_abs(), "sleep 5258");
    let _ = taker.kill();
    let _ = taker.wait();
    let _ = reaper.kill();
    let _ = reaper.wait();
    assert!(out.status.success(), "{stderr}");
    assert!(
        alive,
        "stop signalled the process that took the recycled pid: {stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "pid {pid}, recorded for step `long`, is now another process"
        )) && stderr.contains("left alone"),
        "{stderr}"
    );
}

/// bgflow started where no cgroup v2 is mounted (a private mount namespace without it).
const NO_CGROUP: [&str; 7] = [
    "unshare",
    "-m",
    "--propagation",
    "private",
    "sh",
    "-c",
    "umount -l /sys/fs/cgroup/unified 2>/dev/null; umount -l /sys/fs/cgroup 2>/dev/null; exec \"$0\" \"$@\"",
];

/// Where no cgroup can be made, `auto` falls back to the process group, and it still
/// contains every escape.
#[test]
fn auto_falls_back_to_the_process_group_without_a_cgroup() {
    let flow = one_step(527, "echo done", "");
    let conf = config(&flow, "auto");
    let out = flow
        .start_via(&NO_CGROUP, &["-v"], &[("BGFLOW_CONFIG", &conf)])
        .finish();
    out.expect_code(0).expect_state("leave", "succeeded");
    assert!(
        out.stderr.contains("containment: process-group"),
        "{}",
        out.stderr
    );
    assert!(out.step("leave")["warnings"]
        .to_string()
        .contains("3 processes"));
    assert_all_gone(527, "after the step's command exited");
}

/// `containment = "cgroup"` where none can be made: refused before anything runs (exit 3),
/// saying why.
#[test]
fn a_forced_cgroup_that_cannot_be_made_refuses_the_run() {
    let flow = Flow::new("[workflow]\nname = \"forced\"\n\n[steps.s]\nrun = \"touch ran\"\n");
    let conf = config(&flow, "cgroup");
    let out = flow
        .start_via(&NO_CGROUP, &[], &[("BGFLOW_CONFIG", &conf)])
        .finish();
    out.expect_code(3);
    assert!(
        out.stderr
            .contains("containment = \"cgroup\", but no cgroup can be made for the run"),
        "{}",
        out.stderr
    );
    assert!(!flow.exists("ran"), "nothing ran");
}
