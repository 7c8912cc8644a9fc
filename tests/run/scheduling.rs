//! bgflow run: scheduling, failures, --only and the workflow timeout.

use super::*;

// ---------------------------------------------------------------------------------------
// Scheduling: as soon as upstream succeeded, within -j / max_parallel / CPU count.
// ---------------------------------------------------------------------------------------

/// a -> b, a -> c, c -> d, and b waits for a file only d makes. Wave by wave, b would run
/// with c and give up before d ever started; as soon as upstream succeeded, d runs while b
/// waits. Also DESIGN.md §5.2: a valid diamond completes.
#[test]
fn step_starts_as_soon_as_its_upstream_succeeded_not_wave_by_wave() {
    let flow = Flow::new(
        r#"
[workflow]
name = "diamond"

[steps.a]
run = "touch a.done"

[steps.b]
needs = ["a"]
run = "sh wait.sh d.marker && touch b.done"

[steps.c]
needs = ["a"]
run = "touch c.done"

[steps.d]
needs = ["c"]
run = "touch d.marker"
"#,
    );
    let out = flow.run(&["-j", "4"]);
    out.expect_code(0);
    for s in ["a", "b", "c", "d"] {
        out.expect_state(s, "succeeded");
    }
    assert!(flow.exists("b.done"));
}

/// DESIGN.md §5.2: fan-out then fan-in through artifacts only (edges implied by inputs and
/// outputs, a glob input) completes without a stall.
#[test]
fn fan_out_fan_in_through_artifacts_completes() {
    let mut manifest = String::from(
        "[workflow]\nname = \"fan\"\n\n[steps.seed]\nrun = \"echo seed > out/seed.txt\"\noutputs = [\"out/seed.txt\"]\n",
    );
    for i in 0..6 {
        manifest.push_str(&format!(
            "\n[steps.part{i}]\nrun = \"cat out/seed.txt > parts/p{i}.txt\"\ninputs = [\"out/seed.txt\"]\noutputs = [\"parts/p{i}.txt\"]\n"
        ));
    }
    manifest.push_str(
        "\n[steps.join]\nrun = \"cat parts/*.txt > joined.txt\"\ninputs = [\"parts/*.txt\"]\noutputs = [\"joined.txt\"]\n",
    );
    let flow = Flow::new(&manifest);
    let out = flow.run(&["-j", "3"]);
    out.expect_code(0);
    out.expect_state("join", "succeeded");
    assert_eq!(flow.read("joined.txt"), "seed\n".repeat(6));
}

fn independent_slot_steps(names: &[&str], slots: usize, barrier: Option<usize>) -> String {
    let mut manifest = String::from("[workflow]\nname = \"slots\"\n");
    manifest.push_str("MAX_PARALLEL\n");
    let barrier = barrier.map(|b| format!(" {b}")).unwrap_or_default();
    for name in names {
        manifest.push_str(&format!(
            "\n[steps.{name}]\nrun = \"sh slot.sh {slots}{barrier}\"\n"
        ));
    }
    manifest
}

/// When a step started or ended, as summary.json gives it (RFC 3339).
fn instant(step: &Value, field: &str) -> jiff::Timestamp {
    step[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field}: {step}"))
        .parse()
        .expect("RFC 3339")
}

/// A step's job slot is free once its command exits with success and its outputs are
/// there: with -j 1, a ready step starts while the first step's leftover process is still
/// being ended (it ignores SIGTERM, so that takes `kill_grace`), and a dependent of the first
/// step still waits for its end. A command that exits 0 without its output keeps the slot:
/// the step fails and fail-fast starts nothing more; so does a step whose outputs are a glob.
#[test]
fn a_successful_command_frees_its_slot_while_its_leftovers_are_ended() {
    let flow = Flow::new(
        r#"
[workflow]
name = "release"

[steps.a]
run = '''trap '' TERM; sleep 3074 & touch a.out'''
outputs = ["a.out"]
kill_grace = "2s"

[steps.b]
run = "touch b.out"
outputs = ["b.out"]

[steps.c]
needs = ["a"]
run = "touch c.out"
outputs = ["c.out"]
"#,
    );
    let out = flow.run(&["-j", "1"]);
    out.expect_code(0);
    for s in ["a", "b", "c"] {
        out.expect_state(s, "succeeded");
    }
    let a_end = instant(out.step("a"), "finished_at");
    let b_start = instant(out.step("b"), "started_at");
    let c_start = instant(out.step("c"), "started_at");
    assert!(
        b_start + jiff::SignedDuration::from_secs(1) < a_end,
        "b started at {b_start:?}, not while a's leftover was ended (a ended {a_end:?})"
    );
    assert!(
        c_start >= a_end,
        "c started at {c_start:?} before a ended at {a_end:?}"
    );
    let warnings = out.step("a")["warnings"].to_string();
    assert!(warnings.contains("sleep 3074"), "{warnings}");
    assert_no_process("sleep 3074");

    let flow = Flow::new(
        r#"
[workflow]
name = "holds"

[steps.x]
run = "true"
outputs = ["x.out"]

[steps.y]
run = "touch y.out"
"#,
    );
    let out = flow.run(&["-j", "1"]);
    out.expect_code(1);
    out.expect_state("x", "failed");
    out.expect_state("y", "cancelled");
    assert!(!flow.exists("y.out"), "y ran after x failed");

    // Outputs named by a glob are looked for once, when the step is judged: such a step
    // keeps its slot until then.
    let flow = Flow::new(
        r#"
[workflow]
name = "glob"

[steps.g]
run = '''mkdir -p g; touch g/x.txt; trap '' TERM; sleep 3075 &'''
outputs = ["g/*.txt"]
kill_grace = "1s"

[steps.h]
run = "touch h.out"
"#,
    );
    let out = flow.run(&["-j", "1"]);
    out.expect_code(0);
    let g_end = instant(out.step("g"), "finished_at");
    let h_start = instant(out.step("h"), "started_at");
    assert!(
        h_start >= g_end,
        "h started at {h_start:?}, before g ended at {g_end:?}"
    );
    assert_no_process("sleep 3075");
}

/// -j 1 overrides workflow.max_parallel: each step takes the single slot, so any overlap
/// fails a step.
#[test]
fn jobs_1_runs_one_step_at_a_time() {
    let manifest = independent_slot_steps(&["s1", "s2", "s3", "s4"], 1, None)
        .replace("MAX_PARALLEL", "max_parallel = 4");
    let flow = Flow::new(&manifest);
    let out = flow.run(&["-j", "1"]);
    out.expect_code(0);
    for s in ["s1", "s2", "s3", "s4"] {
        out.expect_state(s, "succeeded");
    }
}

/// Without -j, workflow.max_parallel is the limit.
#[test]
fn max_parallel_limits_when_jobs_is_not_given() {
    let manifest = independent_slot_steps(&["s1", "s2", "s3"], 1, None)
        .replace("MAX_PARALLEL", "max_parallel = 1");
    let flow = Flow::new(&manifest);
    flow.run(&[]).expect_code(0);
}

/// -j 3: never more than 3 at once (3 slots) and really 3 at once (a barrier of 3).
#[test]
fn jobs_n_runs_exactly_n_steps_at_once() {
    let manifest = independent_slot_steps(&["s1", "s2", "s3", "s4", "s5"], 3, Some(3))
        .replace("MAX_PARALLEL", "max_parallel = 1");
    let flow = Flow::new(&manifest);
    let out = flow.run(&["-j", "3"]);
    out.expect_code(0);
    for s in ["s1", "s2", "s3", "s4", "s5"] {
        out.expect_state(s, "succeeded");
    }
}

/// Neither -j nor max_parallel: the number of CPUs, no more and no less.
#[test]
fn jobs_default_to_the_cpu_count() {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let names: Vec<String> = (0..=cpus).map(|i| format!("s{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let manifest = independent_slot_steps(&names, cpus, Some(cpus)).replace("MAX_PARALLEL", "");
    let flow = Flow::new(&manifest);
    flow.run(&[]).expect_code(0);
}

// ---------------------------------------------------------------------------------------
// Failures: fail-fast, keep-going, allow_failure.
// ---------------------------------------------------------------------------------------

/// fail_fast (the default): `bad` fails while `polite` (handles TERM) and `stubborn`
/// (ignores TERM) run. Nothing new starts (`late` waits for a free slot and never runs),
/// the running steps get SIGTERM to their groups, `stubborn` SIGKILL after its kill_grace.
#[test]
fn fail_fast_stops_running_steps_and_starts_nothing_new() {
    let flow = Flow::new(
        r#"
[workflow]
name = "fail-fast"

[steps.polite]
run = "trap 'echo polite got TERM; exit 143' TERM; touch polite.started; sleep 331 & wait"

[steps.stubborn]
run = "trap '' TERM; touch stubborn.started; sleep 332"
kill_grace = "300ms"

[steps.bad]
run = "sh wait.sh polite.started && sh wait.sh stubborn.started && echo bad breaks && exit 1"

[steps.late]
run = "touch late.ran"

[steps.after_polite]
needs = ["polite"]
run = "touch after_polite.ran"
"#,
    );
    let out = flow.run(&["-j", "3"]);
    out.expect_code(1);
    out.expect_state("bad", "failed");
    out.expect_state("polite", "cancelled");
    out.expect_state("stubborn", "cancelled");
    out.expect_state("late", "cancelled");
    out.expect_state("after_polite", "cancelled");
    assert!(
        out.reason("late").contains("`bad` failed"),
        "{}",
        out.reason("late")
    );
    assert!(!flow.exists("late.ran") && !flow.exists("after_polite.ran"));
    assert!(
        out.log("polite").contains("polite got TERM"),
        "SIGTERM reached the step's group: {:?}",
        out.log("polite")
    );
    assert_eq!(
        out.step("stubborn")["signal"],
        "SIGKILL",
        "SIGKILL after the grace"
    );
    assert_eq!(out.summary()["state"], "failed");
    assert_no_process("sleep 331");
    assert_no_process("sleep 332");
}

const KEEP_GOING: &str = r#"
[workflow]
name = "keep-going"
FAIL_FAST

[steps.a]
run = "echo a breaks; touch a.marker; exit 1"

[steps.b]
needs = ["a"]
run = "touch b.ran"

[steps.e]
needs = ["b"]
run = "touch e.ran"

[steps.c]
run = "sh wait.sh a.marker && sleep 0.5 && touch c.done"

[steps.d]
needs = ["c"]
run = "touch d.ran"
"#;

fn assert_kept_going(flow: &Flow, out: &Outcome) {
    out.expect_code(1);
    out.expect_state("a", "failed");
    out.expect_state("b", "skipped");
    out.expect_state("e", "skipped");
    assert_eq!(out.reason("b"), "upstream step `a` failed");
    assert_eq!(out.reason("e"), "upstream step `a` failed");
    out.expect_state("c", "succeeded");
    out.expect_state("d", "succeeded");
    assert!(flow.exists("c.done") && flow.exists("d.ran"));
    assert!(!flow.exists("b.ran") && !flow.exists("e.ran"));
    assert!(out.stderr.contains("b skipped: upstream step `a` failed"));
}

/// --keep-going: the independent branch c -> d goes on (c was running when a failed); the
/// dependents of the failure are skipped with the reason; the run still exits 1.
#[test]
fn keep_going_runs_independent_branches_and_skips_dependents() {
    let flow = Flow::new(&KEEP_GOING.replace("FAIL_FAST", ""));
    let out = flow.run(&["-j", "2", "--keep-going"]);
    assert_kept_going(&flow, &out);
}

/// `--no-fail-fast`, as cargo and nextest spell it, is --keep-going.
#[test]
fn no_fail_fast_is_keep_going() {
    let flow = Flow::new(&KEEP_GOING.replace("FAIL_FAST", ""));
    let out = flow.run(&["-j", "2", "--no-fail-fast"]);
    assert_kept_going(&flow, &out);
}

/// `fail_fast = false` in the workflow behaves like --keep-going.
#[test]
fn fail_fast_false_in_the_workflow_keeps_going() {
    let flow = Flow::new(&KEEP_GOING.replace("FAIL_FAST", "fail_fast = false"));
    let out = flow.run(&["-j", "2"]);
    assert_kept_going(&flow, &out);
}

/// allow_failure: the failure shows (summary, warning block) but the run succeeds, and its
/// dependents run (like GitHub's continue-on-error).
#[test]
fn allowed_failure_is_shown_but_does_not_fail_the_run() {
    let flow = Flow::new(
        r#"
[workflow]
name = "allowed"

[steps.lint]
run = "echo lint is unhappy; exit 2"
allow_failure = true

[steps.build]
needs = ["lint"]
run = "touch built"
"#,
    );
    let out = flow.run(&[]);
    out.expect_code(0);
    out.expect_state("lint", "failed");
    out.expect_state("build", "succeeded");
    assert_eq!(out.step("lint")["allow_failure"], true);
    assert_eq!(out.summary()["state"], "succeeded");
    assert!(flow.exists("built"));
    assert!(out.stderr.contains("failed (allowed)"), "{}", out.stderr);
    assert!(
        out.stderr.contains("warning: lint failed: exit code 2"),
        "{}",
        out.stderr
    );
}

// ---------------------------------------------------------------------------------------
// --only, workflow.timeout
// ---------------------------------------------------------------------------------------

/// --only b runs b with its upstream a, not its downstream c nor the unrelated x.
#[test]
fn only_runs_the_step_with_its_upstream() {
    let flow = Flow::new(
        r#"
[workflow]
name = "only"

[steps.a]
run = "touch a.ran"

[steps.b]
needs = ["a"]
run = "touch b.ran"

[steps.c]
needs = ["b"]
run = "touch c.ran"

[steps.x]
run = "touch x.ran"
"#,
    );
    let out = flow.run(&["--only", "b"]);
    out.expect_code(0);
    assert!(flow.exists("a.ran") && flow.exists("b.ran"));
    assert!(!flow.exists("c.ran") && !flow.exists("x.ran"));
    let names: Vec<&str> = out.summary()["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(names, ["a", "b"]);

    let unknown = flow.run(&["--only", "bb"]);
    unknown.expect_code(2);
    assert!(
        unknown.stderr.contains("did you mean `b`"),
        "{}",
        unknown.stderr
    );
}

/// workflow.timeout bounds the whole run: the running step is stopped, the rest is not
/// started, the run fails with the reason, and no process survives.
#[test]
fn workflow_timeout_bounds_the_whole_run() {
    let flow = Flow::new(
        r#"
[workflow]
name = "bounded"
timeout = "1s"

[steps.long]
run = "sleep 361"
kill_grace = "300ms"

[steps.after]
needs = ["long"]
run = "touch after.ran"
"#,
    );
    let out = flow.run(&[]);
    out.expect_code(1);
    out.expect_state("long", "cancelled");
    out.expect_state("after", "cancelled");
    assert!(!flow.exists("after.ran"));
    let reason = out.summary()["reason"].as_str().unwrap_or("");
    assert!(reason.contains("workflow timeout (1s)"), "{reason}");
    assert!(out.elapsed < Duration::from_secs(15), "{:?}", out.elapsed);
    assert_no_process("sleep 361");
}

/// A step's supervisor that panics (an internal error; a debug build injects one with
/// `BGFLOW_TEST_PANIC_STEP`) fails its step and ends the run: the run does not wait for that
/// step for ever, its dependent is skipped and the step still running is stopped.
#[test]
fn a_step_supervisor_that_panics_fails_its_step_and_the_run_ends() {
    let flow = Flow::new(
        r#"
[workflow]
name = "panics"

[steps.a]
run = "true"

[steps.b]
needs = ["a"]
run = "touch b.out"

[steps.c]
run = "sleep 3076"
"#,
    );
    let out = flow
        .start_env(&["-j", "2"], &[("BGFLOW_TEST_PANIC_STEP", "a")])
        .finish();
    out.expect_code(1);
    out.expect_state("a", "failed");
    let reason = out.step("a")["reason"].to_string();
    assert!(
        reason.contains("internal error in a step supervisor"),
        "{reason}"
    );
    out.expect_state("b", "skipped");
    assert!(!flow.exists("b.out"), "b ran after a failed");
    out.expect_state("c", "cancelled");
    assert_no_process("sleep 3076");
}
