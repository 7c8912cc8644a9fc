//! bgflow run: the step process, timeouts, signals and retries.

use super::*;

// ---------------------------------------------------------------------------------------
// The step's process: group, stdin, cwd, env, shell or not.
// ---------------------------------------------------------------------------------------

/// A step runs as the leader of its own process group, with stdin from /dev/null, in its
/// cwd, with [env], its own env and BGFLOW_RUN_ID / STEP / ATTEMPT / PROGRESS.
#[test]
fn step_runs_in_its_own_group_with_null_stdin_cwd_and_env() {
    let flow = Flow::new(
        r#"
[workflow]
name = "probe"

[env]
SHARED = "from the env table"

[steps.probe]
cwd = "sub"
env = { OWN = "from the step" }
run = '''
echo "pid=$$"
echo "pgrp=$(cut -d' ' -f5 /proc/$$/stat)"
echo "stdin=$(readlink /proc/self/fd/0)"
echo "stdin_bytes=$(wc -c)"
echo "cwd=$(pwd -P)"
echo "shared=$SHARED"
echo "own=$OWN"
echo "run_id=$BGFLOW_RUN_ID"
echo "step=$BGFLOW_STEP"
echo "attempt=$BGFLOW_ATTEMPT"
echo "progress=$BGFLOW_PROGRESS"
'''
"#,
    );
    std::fs::create_dir(flow.path().join("sub")).expect("mkdir sub");
    let out = flow.run(&[]);
    out.expect_code(0);
    let log = out.log("probe");
    let field = |k: &str| log_field(&log, k);
    assert_eq!(field("pgrp"), field("pid"), "the step leads its own group");
    assert_ne!(
        field("pgrp"),
        nix::unistd::getpgrp().to_string(),
        "not bgflow's group"
    );
    assert_eq!(field("stdin"), "/dev/null");
    assert_eq!(field("stdin_bytes"), "0");
    let sub = flow.path().join("sub").canonicalize().expect("canonical");
    assert_eq!(field("cwd"), sub.display().to_string());
    assert_eq!(field("shared"), "from the env table");
    assert_eq!(field("own"), "from the step");
    assert_eq!(
        field("run_id"),
        out.summary()["run_id"].as_str().expect("id")
    );
    assert_eq!(field("step"), "probe");
    assert_eq!(field("attempt"), "1");
    assert_eq!(
        field("progress"),
        out.log_dir().join("probe.progress").display().to_string()
    );
    assert_eq!(
        out.step("probe")["pid"].as_u64().map(|p| p.to_string()),
        Some(field("pid")),
        "summary.json records the step's pid"
    );
}

/// The environment is layered: bgflow's own, then `[env]`, then the step's `env`, then
/// bgflow's per-step variables (an inherited `BGFLOW_STEP` is replaced). Signals start at
/// their defaults: Rust ignores SIGPIPE in bgflow, and that must not reach the step, or
/// `yes | head -n1` would leave `yes` writing into a closed pipe forever.
#[test]
fn the_environment_is_layered_and_signals_start_at_their_defaults() {
    let flow = Flow::new(
        r#"
[workflow]
name = "layers"

[env]
BGFLOW_TEST_TABLE = "env table"
BGFLOW_TEST_BOTH = "env table"

[steps.layers]
env = { BGFLOW_TEST_BOTH = "step", BGFLOW_TEST_INHERITED_TOO = "step" }
run = '''
echo "inherited=$BGFLOW_TEST_INHERITED"
echo "inherited_too=$BGFLOW_TEST_INHERITED_TOO"
echo "table=$BGFLOW_TEST_TABLE"
echo "both=$BGFLOW_TEST_BOTH"
echo "step=$BGFLOW_STEP"
echo "count=$(env | grep -c '^BGFLOW_TEST_BOTH=')"
echo "first=$(yes | head -n 1)"
grep '^SigIgn:' /proc/self/status | sed 's/^SigIgn:[[:space:]]*/ignored=/'
'''
"#,
    );
    let out = flow
        .start_env(
            &[],
            &[
                ("BGFLOW_TEST_INHERITED", "from bgflow"),
                ("BGFLOW_TEST_INHERITED_TOO", "from bgflow"),
                ("BGFLOW_STEP", "not this one"),
            ],
        )
        .finish();
    out.expect_code(0);
    let log = out.log("layers");
    let field = |k: &str| log_field(&log, k);
    assert_eq!(field("inherited"), "from bgflow");
    assert_eq!(field("inherited_too"), "step");
    assert_eq!(field("table"), "env table");
    assert_eq!(field("both"), "step");
    assert_eq!(field("step"), "layers");
    assert_eq!(field("count"), "1", "each variable is passed once");
    assert_eq!(field("first"), "y");
    let ignored = u64::from_str_radix(&field("ignored"), 16).expect("SigIgn is hex");
    assert_eq!(
        ignored & (1 << (13 - 1)),
        0,
        "SIGPIPE is not ignored in the step"
    );
}

/// A step starts with no signal blocked or ignored, even when bgflow itself was started
/// with signals ignored (as under `nohup`), whether or not bgflow has a handler for them:
/// SIGHUP is one bgflow handles, SIGUSR1, SIGTSTP and SIGXFSZ are not.
#[test]
fn a_step_starts_with_every_signal_at_its_default() {
    let flow = Flow::new(
        r#"
[workflow]
name = "signals"

[steps.status]
run = ["grep", "-E", "^Sig(Ign|Blk):", "/proc/self/status"]
"#,
    );
    let out = flow
        .start_via(
            &["sh", "-c", r#"trap '' HUP USR1 TSTP XFSZ; exec "$0" "$@""#],
            &[],
            &[],
        )
        .finish();
    out.expect_code(0);
    let log = out.log("status");
    let mask = |k: &str| {
        let v = log
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{k}:")))
            .unwrap_or_else(|| panic!("no {k} in the log: {log}"));
        u64::from_str_radix(v.trim(), 16).unwrap_or_else(|_| panic!("{k} is hex: {log}"))
    };
    assert_eq!(mask("SigIgn"), 0, "no signal is ignored in the step: {log}");
    assert_eq!(mask("SigBlk"), 0, "no signal is blocked in the step: {log}");
}

/// A string `run` goes through `sh -c`; an array is executed directly, so `$HOME` and
/// `;` stay literal.
#[test]
fn string_run_uses_sh_and_array_run_uses_no_shell() {
    let flow = Flow::new(
        r#"
[workflow]
name = "argv"

[steps.shell]
run = 'echo "$0 $HOME"'

[steps.direct]
run = ["printf", "%s|%s", "$HOME", "a b; touch PWNED"]
"#,
    );
    let out = flow.run(&[]);
    out.expect_code(0);
    assert_eq!(out.log("direct"), "$HOME|a b; touch PWNED");
    let home = std::env::var("HOME").unwrap_or_default();
    assert_eq!(out.log("shell"), format!("sh {home}\n"));
    assert!(!flow.exists("PWNED"));
}

/// A string `run` of plain words (no quoting, expansion, operator or builtin) starts its
/// program directly, as GNU make does: `sh show.sh` is one shell, whose parent is bgflow,
/// not a shell under another shell. It sees `PWD` as `sh` would set it: its cwd. A string
/// with shell syntax still goes through `sh -c`; an array also gets its cwd as `PWD`.
#[test]
fn a_plain_string_run_starts_its_program_without_a_shell() {
    let flow = Flow::new(
        r#"
[workflow]
name = "direct"

[steps.plain]
run = "sh ../show.sh"
cwd = "sub"

[steps.shell]
run = "sh ../show.sh; true"
cwd = "sub"

[steps.array]
run = ["sh", "../show.sh"]
cwd = "sub"
"#,
    );
    flow.write("sub/.keep", "");
    flow.write(
        "show.sh",
        "echo \"parent=$(cat /proc/$PPID/comm)\"\necho \"pwd=$PWD\"\n",
    );
    let out = flow.run(&[]);
    out.expect_code(0);
    let sub = flow.path().join("sub");
    assert_eq!(
        out.log("plain"),
        format!("parent=bgflow\npwd={}\n", sub.display())
    );
    assert_eq!(
        out.log("shell"),
        format!("parent=sh\npwd={}\n", sub.display())
    );
    assert_eq!(
        out.log("array"),
        format!("parent=bgflow\npwd={}\n", sub.display())
    );
}

/// A plain string whose program cannot be executed directly goes to `sh -c` after all:
/// an executable script without a `#!` line is run by the shell, as `sh -c` always did.
#[test]
fn a_plain_string_run_that_cannot_be_executed_directly_goes_to_the_shell() {
    use std::os::unix::fs::PermissionsExt;
    let flow = Flow::new(
        r#"
[workflow]
name = "fallback"

[steps.script]
run = "./no-shebang made"
outputs = ["made"]
"#,
    );
    flow.write("no-shebang", "echo \"run by $0\" > \"$1\"\n");
    std::fs::set_permissions(
        flow.path().join("no-shebang"),
        std::fs::Permissions::from_mode(0o755),
    )
    .expect("chmod");
    let out = flow.run(&[]);
    out.expect_code(0).expect_state("script", "succeeded");
    assert_eq!(flow.read("made"), "run by ./no-shebang\n");
}

// ---------------------------------------------------------------------------------------
// Timeouts and signals end the whole process tree (DESIGN.md §5.3).
// ---------------------------------------------------------------------------------------

/// timeout = "1s" on `sleep & sleep; wait` (three levels of processes): SIGTERM to the
/// whole group, the step is timed_out, and no process of it survives.
#[test]
fn timeout_kills_the_whole_process_tree() {
    let flow = Flow::new(
        r#"
[workflow]
name = "tree"

[steps.tree]
run = '''sh -c 'sleep 351 & echo $! > bg.pid; sh -c "echo \$\$ > fg.pid; exec sleep 352"; wait' '''
timeout = "1s"
kill_grace = "500ms"
"#,
    );
    let out = flow.run(&[]);
    out.expect_code(1);
    out.expect_state("tree", "timed_out");
    assert_eq!(out.reason("tree"), "timed out after 1s");
    for (file, needle) in [("bg.pid", "sleep 351"), ("fg.pid", "sleep 352")] {
        let pid: u32 = flow.read(file).trim().parse().expect("a pid");
        assert!(
            !still_running(pid, needle),
            "{needle} (pid {pid}) survived the timeout"
        );
    }
    assert_no_process("sleep 351");
    assert_no_process("sleep 352");
    let pgid = out.step("tree")["pid"].as_i64().expect("pid") as i32;
    assert!(live_group_members(pgid).is_empty());
}

/// A step that traps TERM outlives the SIGTERM and is killed by SIGKILL after kill_grace.
#[test]
fn timeout_sigkills_a_step_that_traps_term_after_the_grace() {
    let flow = Flow::new(
        r#"
[workflow]
name = "stubborn"

[steps.stubborn]
run = "trap 'echo got TERM, staying' TERM; while :; do sleep 0.05; done"
timeout = "1s"
kill_grace = "500ms"
"#,
    );
    let out = flow.run(&[]);
    out.expect_code(1);
    out.expect_state("stubborn", "timed_out");
    assert_eq!(out.step("stubborn")["signal"], "SIGKILL");
    assert!(
        out.log("stubborn").contains("got TERM, staying"),
        "TERM came first"
    );
    let ms = out.step("stubborn")["duration_ms"]
        .as_u64()
        .expect("duration");
    assert!(
        ms >= 1500,
        "killed after timeout + grace, not before: {ms} ms"
    );
    let pgid = out.step("stubborn")["pid"].as_i64().expect("pid") as i32;
    assert!(live_group_members(pgid).is_empty());
}

/// SIGINT / SIGTERM / SIGHUP to bgflow: forwarded to every running group; the running and
/// pending steps are cancelled; bgflow exits 128+N; nothing survives.
fn signal_cancels_the_run(sig: Signal, code: i32, sleep: &str) {
    let flow = Flow::new(&format!(
        r#"
[workflow]
name = "signalled"

[steps.first]
run = "touch first.started; {sleep}"
kill_grace = "2s"

[steps.second]
run = "touch second.started; {sleep}"
kill_grace = "2s"

[steps.next]
needs = ["first"]
run = "touch next.ran"
"#
    ));
    let running = flow.start(&["-j", "2"]);
    wait_until(SOON, "both steps to start", || {
        flow.exists("first.started") && flow.exists("second.started")
    });
    wait_until(SOON, "the sleeps to run", || {
        live_processes(sleep).len() >= 2
    });
    running.signal(sig);
    let out = running.finish();
    out.expect_code(code);
    assert_eq!(out.summary()["state"], "cancelled");
    assert_eq!(out.summary()["signal"], sig as i32);
    out.expect_state("first", "cancelled");
    out.expect_state("second", "cancelled");
    out.expect_state("next", "cancelled");
    assert!(!flow.exists("next.ran"));
    assert!(
        out.elapsed < Duration::from_secs(15),
        "within the grace: {:?}",
        out.elapsed
    );
    assert_no_process(sleep);
}

#[test]
fn sigint_cancels_the_steps_and_exits_130() {
    signal_cancels_the_run(Signal::SIGINT, 130, "sleep 341");
}

#[test]
fn sigterm_cancels_the_steps_and_exits_143() {
    signal_cancels_the_run(Signal::SIGTERM, 143, "sleep 342");
}

#[test]
fn sighup_cancels_the_steps_and_exits_129() {
    signal_cancels_the_run(Signal::SIGHUP, 129, "sleep 343");
}

/// A second Ctrl-C kills at once, without waiting out a long kill_grace.
#[test]
fn second_sigint_kills_at_once() {
    let flow = Flow::new(
        r#"
[workflow]
name = "impatient"

[steps.stubborn]
run = "trap '' INT TERM; touch stubborn.started; sleep 344"
kill_grace = "60s"
"#,
    );
    let running = flow.start(&[]);
    wait_until(SOON, "the step to start", || {
        flow.exists("stubborn.started")
    });
    wait_until(SOON, "the sleep to run", || {
        !live_processes("sleep 344").is_empty()
    });
    running.signal(Signal::SIGINT);
    running.wait_for_stderr("got signal 2");
    assert!(
        !live_processes("sleep 344").is_empty(),
        "the step ignores SIGINT and SIGTERM"
    );
    let second = Instant::now();
    running.signal(Signal::SIGINT);
    let out = running.finish();
    out.expect_code(130);
    assert!(
        second.elapsed() < Duration::from_secs(10),
        "killed at once, not after the 60s grace: {:?}",
        second.elapsed()
    );
    out.expect_state("stubborn", "cancelled");
    assert_eq!(out.step("stubborn")["signal"], "SIGKILL");
    assert_no_process("sleep 344");
}

// ---------------------------------------------------------------------------------------
// Retries
// ---------------------------------------------------------------------------------------

/// retries = 2, retry_delay = 300ms: three attempts, 300 ms then 600 ms apart (doubling),
/// each with a header in the log; the failure report shows the last attempt's lines.
#[test]
fn retries_double_the_delay_and_log_every_attempt() {
    let flow = Flow::new(
        r#"
[workflow]
name = "flaky"

[steps.flaky]
run = "date +%s.%N >> times.txt; echo attempt $BGFLOW_ATTEMPT says no; exit 1"
retries = 2
retry_delay = "300ms"
"#,
    );
    let out = flow.run(&[]);
    out.expect_code(1);
    out.expect_state("flaky", "failed");
    assert_eq!(out.step("flaky")["attempts"], 3);
    let times: Vec<f64> = flow
        .read("times.txt")
        .lines()
        .map(|l| l.parse().expect("a time"))
        .collect();
    assert_eq!(times.len(), 3);
    let (gap1, gap2) = (times[1] - times[0], times[2] - times[1]);
    assert!(gap1 >= 0.3, "first delay {gap1}");
    assert!(gap2 >= 0.6, "second delay doubled: {gap2}");
    let log = out.log("flaky");
    for n in 1..=3 {
        assert!(
            log.contains(&format!("--- bgflow: flaky attempt {n} of 3:")),
            "attempt header {n}:\n{log}"
        );
        assert!(log.contains(&format!("attempt {n} says no")), "{log}");
    }
    assert_eq!(
        out.step("flaky")["last_lines"],
        serde_json::json!(["attempt 3 says no"])
    );
    assert!(
        out.stderr.contains("retrying flaky in 300ms: attempt 2"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("retrying flaky in 600ms: attempt 3"),
        "{}",
        out.stderr
    );
}

/// A step that fails once and then succeeds succeeds, with 2 attempts.
#[test]
fn retry_succeeds_on_a_later_attempt() {
    let flow = Flow::new(
        r#"
[workflow]
name = "second-time"

[steps.eventually]
run = '[ "$BGFLOW_ATTEMPT" -ge 2 ] || { echo not yet; exit 1; }; echo fine'
retries = 3
retry_delay = "100ms"
"#,
    );
    let out = flow.run(&[]);
    out.expect_code(0);
    out.expect_state("eventually", "succeeded");
    assert_eq!(out.step("eventually")["attempts"], 2);
}

/// A `run` with a template is rendered again for the run and for each attempt (the checked
/// step keeps the template only then), while a `run` without one runs as written.
#[test]
fn a_templated_run_is_rendered_for_the_run_and_each_attempt() {
    let flow = Flow::new(
        r#"
[workflow]
name = "rendered"

[steps.templated]
run = 'echo "id={{ run.id }} attempt={{ step.attempt }}"; [ "$BGFLOW_ATTEMPT" -ge 2 ]'
retries = 1
retry_delay = "10ms"

[steps.plain]
run = ["echo", "{ {not a template} }"]
"#,
    );
    let out = flow.run(&[]);
    out.expect_code(0);
    let id = out.summary()["run_id"].as_str().expect("run_id").to_owned();
    let log = out.log("templated");
    assert!(
        log.contains(&format!("id={id} attempt=1")) && log.contains(&format!("id={id} attempt=2")),
        "each attempt renders its own number and the run's id: {log}"
    );
    assert!(!log.contains("<run-id>"), "no plan-time placeholder: {log}");
    assert_eq!(out.log("plain").trim(), "{ {not a template} }");
}

/// A process that leaves the step's group (`setsid`) and keeps its output open does not
/// keep the step from ending, and does not outlive it (guarantee 8): it is stopped when the
/// step's command exits, and the step says so in a warning. What it printed before the step
/// ended is in the log.
#[test]
fn an_escaped_process_holding_the_output_is_stopped_with_the_step_and_reported() {
    let flow = Flow::new(
        r#"
[workflow]
name = "escape"

[steps.leave]
run = "echo before; setsid sh -c 'touch escaped; exec sleep 377' & while [ ! -e escaped ]; do sleep 0.01; done; echo after"
"#,
    );
    let started = Instant::now();
    let out = flow.run(&[]);
    let took = started.elapsed();
    let escaped = live_processes("sleep 377");
    for pid in &escaped {
        let _ = kill(
            Pid::from_raw(i32::try_from(*pid).expect("pid")),
            Signal::SIGKILL,
        );
    }
    out.expect_code(0).expect_state("leave", "succeeded");
    assert!(
        escaped.is_empty(),
        "the escaped sleep outlived its step: {escaped:?}"
    );
    let warnings = out.step("leave")["warnings"].to_string();
    assert!(
        warnings.contains("1 process of step `leave` outlived it and was stopped")
            && warnings.contains("sleep 377"),
        "{warnings}"
    );
    assert!(
        took < Duration::from_secs(20),
        "the run waited for the escaped process: {took:?}"
    );
    assert_eq!(out.log("leave"), "before\nafter\n");
}

/// bgflow raises its own soft limit on open descriptors (each running step holds some in
/// the supervisor) and starts each step with the limit it was given.
#[test]
fn many_parallel_steps_fit_under_a_low_descriptor_limit_and_get_that_limit() {
    let mut toml = String::from("[workflow]\nname = \"fds\"\n");
    for i in 0..40 {
        toml.push_str(&format!(
            "\n[steps.s{i}]\nrun = '''ulimit -n > limit{i}; sleep 0.5'''\n"
        ));
    }
    let flow = Flow::new(&toml);
    // 40 steps at once hold well over 64 descriptors in the supervisor.
    flow.start_via(
        &["sh", "-c", "ulimit -Sn 64 && exec \"$0\" \"$@\""],
        &["-j", "40"],
        &[],
    )
    .finish()
    .expect_code(0);
    for i in 0..40 {
        assert_eq!(flow.read(&format!("limit{i}")).trim(), "64", "step s{i}");
    }
}

/// The thread that supervises the steps asks the kernel for a short time slice, so that it
/// takes a CPU as soon as a step exits (Linux 6.12+). The steps do not inherit it: each
/// has the kernel's default slice, as a process started outside bgflow has, and the nice
/// value bgflow was started with.
#[test]
fn steps_keep_the_default_slice_and_nice_while_the_supervisor_asks_for_a_short_one() {
    let flow = Flow::new(
        r#"
[workflow]
name = "slices"

[steps.look]
run = '''
echo "nice=$(nice)"
echo "slice=$(sed -n 's/^se.slice *: *//p' /proc/self/sched)"
for t in /proc/$PPID/task/*; do
  if [ "$(cat "$t/comm")" = bgflow-run ]; then
    echo "run_slice=$(sed -n 's/^se.slice *: *//p' "$t/sched")"
  fi
done
'''
"#,
    );
    let out = flow.start_via(&["nice", "-n", "7"], &[], &[]).finish();
    out.expect_code(0);
    let log = out.log("look");
    let field = |k: &str| log_field(&log, k);
    assert_eq!(field("nice"), "7", "{log}");
    // The slice of a process started here, as the step is, under the same nice value.
    let outside = Command::new("nice")
        .args([
            "-n",
            "7",
            "sed",
            "-n",
            "s/^se.slice *: *//p",
            "/proc/self/sched",
        ])
        .output()
        .expect("run sed");
    let outside = String::from_utf8_lossy(&outside.stdout).trim().to_owned();
    assert!(
        !outside.is_empty(),
        "this kernel shows no se.slice in /proc/PID/sched, which this test reads"
    );
    assert_eq!(field("slice"), outside, "{log}");
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").expect("osrelease");
    let release = release.trim();
    let mut numbers = release
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse::<u32>().ok());
    let version = (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0));
    let expected = if version >= (6, 12) {
        "100000"
    } else {
        outside.as_str()
    };
    assert_eq!(field("run_slice"), expected, "kernel {release}: {log}");
}
