//! Kept results are true (guarantee 9; issue 19): `resume` keeps a step only while it is up
//! to date, names the success it stands on, and never keeps a service; an up-to-date check
//! looks at the outputs too.

use super::*;

/// `a` copies `in.txt` to `a.txt`; `b` fails until `fixed` exists. `a.runs` counts a's runs.
const COPY_THEN_FAIL: &str = r#"
[workflow]
name = "kept"

[steps.a]
run = "cat in.txt > a.txt; echo ran >> a.runs"
inputs = ["in.txt"]
outputs = ["a.txt"]

[steps.b]
needs = ["a"]
run = "cat a.txt; test -f fixed"
"#;

/// `bgflow --color never resume RUN --progress never`, to the end.
fn resume(flow: &Flow, run: &str) -> Outcome {
    flow.start_raw(
        &["--color", "never", "resume", run, "--progress", "never"],
        &[],
    )
    .finish()
}

fn run_id(out: &Outcome) -> String {
    out.summary()["run_id"]
        .as_str()
        .expect("a run id")
        .to_owned()
}

/// A run of `COPY_THEN_FAIL` (or a variant) in which `a` succeeds and `b` fails; its id.
#[track_caller]
fn failed_run(flow: &Flow) -> String {
    let out = flow.run(&[]);
    out.expect_code(1)
        .expect_state("a", "succeeded")
        .expect_state("b", "failed");
    run_id(&out)
}

/// `COPY_THEN_FAIL` and a step `note` without outputs, which counts its runs in `note.runs`.
fn with_note() -> String {
    format!("{COPY_THEN_FAIL}\n[steps.note]\nrun = \"echo ran >> note.runs\"\n")
}

fn a_runs(flow: &Flow) -> usize {
    flow.read("a.runs").lines().count()
}

/// Issue 19, "`resume` keeps stale results and reports success", in its minimal form: `a`
/// copies `in.txt`, `b` fails; `in.txt` is edited and `b` fixed. `resume` used to keep `a`
/// ("succeeded in run X") with `a.txt` holding the old content; `a` must run again.
#[test]
fn resume_reruns_a_step_whose_input_changed_since_its_success() {
    let flow = Flow::new(COPY_THEN_FAIL);
    flow.write("in.txt", "old\n");
    let first = failed_run(&flow);
    assert_eq!(flow.read("a.txt"), "old\n");

    flow.write("in.txt", "new content\n");
    flow.write("fixed", "");
    let out = resume(&flow, &first);
    out.expect_code(0)
        .expect_state("a", "succeeded")
        .expect_state("b", "succeeded");
    assert_eq!(flow.read("a.txt"), "new content\n", "a.txt is stale");
    assert_eq!(a_runs(&flow), 2);
    assert!(out.log("b").contains("new content"), "{}", out.log("b"));
}

/// A step whose command changed since its success runs again on `resume`.
#[test]
fn resume_reruns_a_step_whose_command_changed() {
    let flow = Flow::new(COPY_THEN_FAIL);
    flow.write("in.txt", "one\n");
    let first = failed_run(&flow);

    flow.write(
        "bgflow.toml",
        &COPY_THEN_FAIL.replace("cat in.txt > a.txt;", "cat in.txt in.txt > a.txt;"),
    );
    flow.write("fixed", "");
    resume(&flow, &first)
        .expect_code(0)
        .expect_state("a", "succeeded");
    assert_eq!(flow.read("a.txt"), "one\none\n");
    assert_eq!(a_runs(&flow), 2);
}

/// A step whose environment (its own `env`, or the workflow's `[env]`) changed since its
/// success runs again on `resume`.
#[test]
fn resume_reruns_a_step_whose_environment_changed() {
    let manifest = |workflow_env: &str, step_env: &str| {
        format!(
            r#"
[workflow]
name = "kept-env"

[env]
PLACE = "{workflow_env}"

[steps.a]
run = "echo \"$GREETING $PLACE\" > a.txt; echo ran >> a.runs"
outputs = ["a.txt"]
env = {{ GREETING = "{step_env}" }}

[steps.b]
needs = ["a"]
run = "cat a.txt; test -f fixed"
"#
        )
    };
    let flow = Flow::new(&manifest("world", "hello"));
    let first = failed_run(&flow);
    assert_eq!(flow.read("a.txt"), "hello world\n");

    flow.write("bgflow.toml", &manifest("world", "goodbye"));
    let out = resume(&flow, &first);
    out.expect_code(1)
        .expect_state("a", "succeeded")
        .expect_state("b", "failed");
    assert_eq!(flow.read("a.txt"), "goodbye world\n");
    let second = run_id(&out);

    flow.write("bgflow.toml", &manifest("moon", "goodbye"));
    flow.write("fixed", "");
    resume(&flow, &second)
        .expect_code(0)
        .expect_state("a", "succeeded")
        .expect_state("b", "succeeded");
    assert_eq!(flow.read("a.txt"), "goodbye moon\n");
    assert_eq!(a_runs(&flow), 3);
}

/// An output deleted, or edited by hand, since the step's success is not the step's result
/// any more: `resume` runs the step again, which makes it anew.
#[test]
fn resume_reruns_a_step_whose_output_was_deleted_or_edited() {
    let flow = Flow::new(COPY_THEN_FAIL);
    flow.write("in.txt", "made by a\n");
    let first = failed_run(&flow);

    std::fs::remove_file(flow.path().join("a.txt")).expect("rm a.txt");
    let out = resume(&flow, &first);
    out.expect_code(1)
        .expect_state("a", "succeeded")
        .expect_state("b", "failed");
    assert_eq!(flow.read("a.txt"), "made by a\n");
    assert_eq!(a_runs(&flow), 2);
    let second = run_id(&out);

    flow.write("a.txt", "edited by hand\n");
    flow.write("fixed", "");
    resume(&flow, &second)
        .expect_code(0)
        .expect_state("a", "succeeded")
        .expect_state("b", "succeeded");
    assert_eq!(flow.read("a.txt"), "made by a\n");
    assert_eq!(a_runs(&flow), 3);
}

/// What is truly unchanged is kept, and says it succeeded in the resumed run; a step that
/// declares no outputs cannot be shown to be up to date, so it runs again.
#[test]
fn resume_keeps_an_unchanged_step_as_succeeded_in_that_run_and_reruns_one_without_outputs() {
    let flow = Flow::new(&with_note());
    flow.write("in.txt", "same\n");
    // Without fail-fast: `b`'s failure must not cancel `note` before it succeeded.
    let failed = flow.run(&["--keep-going"]);
    failed
        .expect_code(1)
        .expect_state("b", "failed")
        .expect_state("note", "succeeded");
    let first = run_id(&failed);

    flow.write("fixed", "");
    let out = resume(&flow, &first);
    out.expect_code(0)
        .expect_state("a", "skipped")
        .expect_state("b", "succeeded")
        .expect_state("note", "succeeded");
    assert_eq!(out.reason("a"), format!("succeeded in run {first}"));
    assert!(
        out.stderr
            .contains(&format!("finished a: skipped (succeeded in run {first})")),
        "{}",
        out.stderr
    );
    assert_eq!(a_runs(&flow), 1, "a ran again");
    assert_eq!(flow.read("note.runs"), "ran\nran\n");
    // Said, not silent: the step that succeeded and runs again, and why (not `a`, kept, nor
    // `b`, which failed).
    assert!(
        out.stderr.contains(&format!(
            "resume: 1 step that succeeded in run {first} runs again, as it declares no `outputs` to show what it left: note\n"
        )),
        "{}",
        out.stderr
    );
}

/// `bgflow resume` with no id resumes the newest run in the state folder (the one whose
/// summary just printed `bgflow resume ID`); with no run history it says so (exit 2).
#[test]
fn resume_without_an_id_resumes_the_newest_run() {
    let flow = Flow::new(&with_note());
    let none = flow.start_raw(&["resume"], &[]).finish();
    none.expect_code(2);
    assert!(
        none.stderr.contains("no run history here"),
        "{}",
        none.stderr
    );

    flow.write("in.txt", "same\n");
    let first = failed_run(&flow);
    // `b` and `note` start together here (`a` is up to date): with fail-fast, `b`'s
    // failure could cancel `note` before it succeeded, and the note below would not come.
    let again = flow.run(&["--keep-going"]);
    again
        .expect_code(1)
        .expect_state("a", "skipped")
        .expect_state("note", "succeeded");
    let second = run_id(&again);
    assert_ne!(first, second);
    flow.write("fixed", "");
    let out = flow
        .start_raw(&["--color", "never", "resume", "--progress", "never"], &[])
        .finish();
    out.expect_code(0)
        .expect_state("b", "succeeded")
        .expect_state("a", "skipped");
    // `a` stands on the first run's success; the note names the run resumed: the newest.
    assert_eq!(out.reason("a"), format!("up to date since run {first}"));
    assert!(
        out.stderr
            .contains(&format!("that succeeded in run {second} runs again")),
        "{}",
        out.stderr
    );
}

/// Issue 19: a step that was only skipped as up to date in run X was kept by `resume X` as
/// "succeeded in run X". The reason names the run whose success it stands on.
#[test]
fn resume_names_the_run_a_step_was_up_to_date_since_not_the_resumed_one() {
    let flow = Flow::new(COPY_THEN_FAIL);
    flow.write("in.txt", "same\n");
    let earliest = failed_run(&flow);

    let out = flow.run(&[]);
    out.expect_code(1)
        .expect_state("a", "skipped")
        .expect_state("b", "failed");
    assert_eq!(out.reason("a"), format!("up to date since run {earliest}"));
    let skipped_in = run_id(&out);

    flow.write("fixed", "");
    let out = resume(&flow, &skipped_in);
    out.expect_code(0)
        .expect_state("a", "skipped")
        .expect_state("b", "succeeded");
    assert_eq!(out.reason("a"), format!("up to date since run {earliest}"));
    assert_eq!(a_runs(&flow), 1);
}

/// Issue 19, "`resume` keeps services": a service "succeeds" by being stopped at the end of
/// its run. `resume` kept it as succeeded and did not start it, and the step that needs it
/// met no server. A service is never kept: it starts again, in the new run.
#[test]
fn resume_starts_a_service_again_for_the_step_that_needs_it() {
    let flow = Flow::new(
        r#"
[workflow]
name = "kept-service"
# The service ends as it does when its dependents are done ("succeeded"), not cancelled
# by the failure.
fail_fast = false

[steps.srv]
kind = "service"
run = "echo \"$BGFLOW_RUN_ID $$\" > srv.txt; echo serving; exec sleep 353"
ready = { log = "serving", timeout = "20s" }

[steps.e2e]
needs = ["srv"]
run = "read run pid < srv.txt; test \"$run\" = \"$BGFLOW_RUN_ID\" && kill -0 \"$pid\" && test -f fixed"
"#,
    );
    let out = flow.run(&[]);
    out.expect_code(1)
        .expect_state("srv", "succeeded")
        .expect_state("e2e", "failed");
    let first = run_id(&out);
    assert_no_process("sleep 353");

    flow.write("fixed", "");
    let out = resume(&flow, &first);
    out.expect_code(0)
        .expect_state("srv", "succeeded")
        .expect_state("e2e", "succeeded");
    assert!(
        out.reason("srv").contains("no remaining step needs it"),
        "the service ran in the new run: {}",
        out.reason("srv")
    );
    assert_eq!(
        flow.read("srv.txt").split_whitespace().next(),
        Some(run_id(&out).as_str()),
        "srv.txt was written by the new run's service"
    );
    assert_no_process("sleep 353");
}

/// Guarantee 9 for a plain run: an output edited by hand since the step's success is not up
/// to date; the step runs again and makes it anew. Unchanged, the step is skipped and says
/// since which run.
#[test]
fn an_up_to_date_check_runs_a_step_again_when_its_output_was_edited() {
    let flow = Flow::new(
        r#"
[workflow]
name = "edited-output"

[steps.a]
run = "cat in.txt > a.txt; echo ran >> a.runs"
inputs = ["in.txt"]
outputs = ["a.txt"]
"#,
    );
    flow.write("in.txt", "made by a\n");
    let out = flow.run(&[]);
    out.expect_code(0).expect_state("a", "succeeded");
    let first = run_id(&out);

    let out = flow.run(&[]);
    out.expect_code(0).expect_state("a", "skipped");
    assert_eq!(out.reason("a"), format!("up to date since run {first}"));

    flow.write("a.txt", "edited by hand, longer\n");
    flow.run(&[]).expect_code(0).expect_state("a", "succeeded");
    assert_eq!(flow.read("a.txt"), "made by a\n");
    assert_eq!(a_runs(&flow), 2);
}

/// A run with `--force` resumed: what succeeded in it is kept while it is up to date (the
/// resume does not redo it), and the rest runs, forced as before.
#[test]
fn resume_of_a_forced_run_keeps_what_succeeded_in_it_while_up_to_date() {
    let flow = Flow::new(COPY_THEN_FAIL);
    flow.write("in.txt", "same\n");
    let out = flow.run(&["--force"]);
    out.expect_code(1)
        .expect_state("a", "succeeded")
        .expect_state("b", "failed");
    let first = run_id(&out);

    flow.write("fixed", "");
    let out = resume(&flow, &first);
    out.expect_code(0)
        .expect_state("a", "skipped")
        .expect_state("b", "succeeded");
    assert_eq!(out.reason("a"), format!("succeeded in run {first}"));
    assert_eq!(a_runs(&flow), 1);
}

/// `resume -d`: the detached supervisor reads what to keep from the new run's stored spec,
/// and keeps and reruns as a foreground `resume` does.
#[test]
fn a_detached_resume_keeps_and_reruns_as_a_foreground_one() {
    let flow = Flow::new(COPY_THEN_FAIL);
    flow.write("in.txt", "same\n");
    let first = failed_run(&flow);

    flow.write("fixed", "");
    let id = bgflow_stdout(&flow, &["resume", "-d", &first])
        .trim()
        .to_owned();
    let status = || -> Value {
        serde_json::from_str(&bgflow_stdout(&flow, &["status", &id, "--json"]))
            .unwrap_or(Value::Null)
    };
    wait_until(RUN_DEADLINE, "the detached resume to end", || {
        status()["run"]["state"] == "succeeded" || status()["run"]["state"] == "failed"
    });
    let s = status();
    assert_eq!(s["run"]["state"], "succeeded", "{s:#}");
    let step = |name: &str| {
        s["steps"]
            .as_array()
            .and_then(|steps| steps.iter().find(|x| x["name"] == name))
            .cloned()
            .unwrap_or_else(|| panic!("no step {name}: {s:#}"))
    };
    assert_eq!(step("a")["state"], "skipped", "{s:#}");
    assert_eq!(step("a")["reason"], format!("succeeded in run {first}"));
    assert_eq!(step("b")["state"], "succeeded", "{s:#}");
    assert_eq!(a_runs(&flow), 1);
}

/// Guarantee 9 for a plain run: a service that declares an output is never skipped as up to
/// date (it used to be, on the second run, and the step that needs it met no server).
#[test]
fn a_service_with_an_output_is_never_up_to_date() {
    let flow = Flow::new(
        r#"
[workflow]
name = "service-output"

[steps.srv]
kind = "service"
run = "echo \"$BGFLOW_RUN_ID $$\" > srv.txt; echo serving; exec sleep 354"
outputs = ["srv.txt"]
ready = { log = "serving", timeout = "20s" }

[steps.e2e]
needs = ["srv"]
run = "read run pid < srv.txt; test \"$run\" = \"$BGFLOW_RUN_ID\" && kill -0 \"$pid\""
"#,
    );
    for _ in 0..2 {
        flow.run(&[])
            .expect_code(0)
            .expect_state("srv", "succeeded")
            .expect_state("e2e", "succeeded");
    }
    assert_no_process("sleep 354");
}

/// Guarantee 9 across an edge: a step fed by a step that ran in this run is not kept, even
/// when the stat of the path between them did not change. Seen on idna 3.10: `venv`
/// reinstalled a rebuilt wheel into `.venv`, whose `bin/python` (the tests' input) stayed
/// the same symlink, and the tests were kept as up to date against the old package. A step
/// only waited for (`needs`) does not count: its dependent is judged by its own inputs.
#[test]
fn a_step_fed_by_a_step_that_ran_is_not_kept_as_up_to_date() {
    let flow = Flow::new(
        r#"
[workflow]
name = "fed"

[steps.install]
run = "mkdir -p env/lib && cp src.txt env/lib/pkg.txt && (test -e env/python || touch env/python)"
inputs = ["src.txt"]
outputs = ["env/python"]

[steps.test]
run = "cat env/lib/pkg.txt > tested.txt"
inputs = ["env/python"]
outputs = ["tested.txt"]

[steps.notify]
run = "echo told >> told.txt"

[steps.report]
needs = ["notify"]
run = "cp tested.txt report.txt"
inputs = ["tested.txt"]
outputs = ["report.txt"]
"#,
    );
    flow.write("src.txt", "v1\n");
    flow.run(&[])
        .expect_code(0)
        .expect_state("test", "succeeded");
    assert_eq!(flow.read("tested.txt"), "v1\n");
    let out = flow.run(&[]);
    out.expect_code(0)
        .expect_state("install", "skipped")
        .expect_state("test", "skipped")
        .expect_state("report", "skipped");

    // `install` runs again and leaves `env/python` as it was, as `python -m venv` leaves
    // its symlink; `test` runs because `install` did, and sees the new package.
    let stamp = || {
        std::fs::metadata(flow.path().join("env/python"))
            .and_then(|m| m.modified())
            .expect("env/python")
    };
    let before = stamp();
    flow.write("src.txt", "v2, longer\n");
    let out = flow.run(&[]);
    out.expect_code(0)
        .expect_state("install", "succeeded")
        .expect_state("test", "succeeded")
        .expect_state("report", "succeeded");
    assert_eq!(before, stamp(), "the path between them did not change");
    assert_eq!(flow.read("tested.txt"), "v2, longer\n");

    // `notify` (no outputs) runs every time; `report` only waits for it and stays kept,
    // and is told after `notify`'s end, which made it ready.
    let out = flow.run(&[]);
    out.expect_code(0)
        .expect_state("notify", "succeeded")
        .expect_state("report", "skipped");
    let at = |what: &str| {
        out.stderr
            .find(what)
            .unwrap_or_else(|| panic!("no {what:?} in {}", out.stderr))
    };
    assert!(
        at("finished notify:") < at("finished report: skipped"),
        "{}",
        out.stderr
    );
}
