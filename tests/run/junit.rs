//! `kind = "test"` steps with `junit` (issue 19, guarantee 10): a report is read only by
//! the step and attempt that wrote it, a pattern that matches no such report fails the step,
//! and the failing-test list is complete, marked and pasteable. The reports are real JUnit
//! XML written by the step's command (copied from a file the test writes, or made by pytest).

use super::*;

/// A JUnit report of `passed` passing and `failed` failing tests in module `module`.
fn report(module: &str, passed: usize, failed: usize) -> String {
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><testsuites><testsuite name=\"pytest\" \
         tests=\"{}\" failures=\"{failed}\">",
        passed + failed
    );
    for i in 0..passed {
        xml.push_str(&format!(
            "<testcase classname=\"{module}\" name=\"test_ok_{i}\" time=\"0.001\"/>"
        ));
    }
    for i in 0..failed {
        xml.push_str(&format!(
            "<testcase classname=\"{module}\" name=\"test_bad_{i}\"><failure message=\"assert {i} == -1\">trace</failure></testcase>"
        ));
    }
    xml.push_str("</testsuite></testsuites>\n");
    xml
}

fn tests_of(out: &Outcome, step: &str) -> Value {
    out.step(step)["tests"].clone()
}

/// Issue 19: "JUnit reports are read by the wrong step. Two test steps with
/// `junit = "reports/*.xml"` read each other's files". Two such steps that may run at once
/// are refused by `plan` and `run`, naming both.
#[test]
fn junit_reports_are_read_by_the_wrong_step_two_unordered_steps_sharing_a_pattern_are_refused() {
    let flow = Flow::new(
        r#"
[workflow]
name = "shared"

[steps.unit]
kind = "test"
run = "true"
junit = "reports/*.xml"

[steps.e2e]
kind = "test"
run = "true"
junit = "reports/*.xml"
"#,
    );
    let out = flow.run(&[]);
    out.expect_code(3);
    assert!(
        out.stderr
            .contains("steps `unit` and `e2e` may run at the same time"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("also read by `unit`"), "{}", out.stderr);
    assert!(out.stderr.contains("read by `e2e`"), "{}", out.stderr);
    assert!(out.summary.is_none(), "nothing ran");

    // `plan --json` gives the code, both steps, the place of the second and, in `related`,
    // the place of the first.
    let plan = std::process::Command::new(BIN)
        .args(["plan", "--json", "bgflow.toml"])
        .current_dir(flow.path())
        .output()
        .expect("plan");
    assert_eq!(plan.status.code(), Some(3));
    let doc: Value = serde_json::from_slice(&plan.stdout).expect("plan --json");
    let problem = &doc["files"][0]["problems"][0];
    assert_eq!(problem["code"], "shared-junit", "{doc}");
    assert_eq!(problem["line"], 13, "{doc}");
    assert_eq!(problem["related"][0]["line"], 8, "{doc}");
    assert_eq!(problem["related"][0]["file"], "bgflow.toml", "{doc}");
    assert!(
        problem["message"]
            .as_str()
            .is_some_and(|m| m.contains("`unit` and `e2e`")),
        "{doc}"
    );
}

/// Issue 19: "a step with 5 passing tests was reported `7 passed, 1 failed`". Steps that
/// share a pattern but run one after the other (`needs`) each count only their own report,
/// even when the second starts within the same filesystem tick as the first one's report.
#[test]
fn junit_reports_are_read_by_the_wrong_step_ordered_steps_count_only_their_own_report() {
    let flow = Flow::new(
        r#"
[workflow]
name = "ordered"

[steps.unit]
kind = "test"
run = "mkdir -p reports && cp unit.xml.in reports/unit.xml"
junit = "reports/*.xml"

[steps.e2e]
kind = "test"
needs = ["unit"]
run = "cp e2e.xml.in reports/e2e.xml"
junit = "reports/*.xml"
"#,
    );
    flow.write("unit.xml.in", &report("tests.test_unit", 2, 0));
    flow.write("e2e.xml.in", &report("tests.test_e2e", 5, 0));
    let out = flow.run(&[]);
    out.expect_code(0);
    let unit = tests_of(&out, "unit");
    let e2e = tests_of(&out, "e2e");
    assert_eq!(
        (&unit["passed"], &unit["failed"]),
        (&json(2), &json(0)),
        "{unit}"
    );
    assert_eq!(
        (&e2e["passed"], &e2e["failed"]),
        (&json(5), &json(0)),
        "{e2e}"
    );
    assert_eq!(e2e["files"].as_array().map(Vec::len), Some(1), "{e2e}");
    assert!(out.stderr.contains("e2e tests: 5 passed"), "{}", out.stderr);
}

fn json(n: u64) -> Value {
    Value::from(n)
}

/// Issue 19: "A `junit` pattern that matches nothing passes": `junit = "report/*.xml"`
/// where the command wrote `reports/junit.xml` gave `succeeded; tests: 0 passed`.
#[test]
fn a_junit_pattern_that_matches_nothing_fails_the_step() {
    let flow = Flow::new(
        r#"
[workflow]
name = "typo"

[steps.tests]
kind = "test"
run = "mkdir -p reports && cp junit.xml.in reports/junit.xml"
junit = "report/*.xml"
"#,
    );
    flow.write("junit.xml.in", &report("tests.test_app", 3, 0));
    let out = flow.run(&[]);
    out.expect_code(1).expect_state("tests", "failed");
    assert_eq!(
        out.reason("tests"),
        "no JUnit report matching `report/*.xml` was written by this attempt: no file matches it"
    );
    assert_eq!(out.step("tests")["exit_code"], 0);
    assert!(
        out.stderr
            .contains("error: tests failed: no JUnit report matching `report/*.xml`"),
        "{}",
        out.stderr
    );
    // No report was read: no "0 passed" anywhere, as if tests had run.
    assert!(!out.stderr.contains("0 passed"), "{}", out.stderr);
    let status = bgflow_stdout(
        &flow,
        &["status", out.summary()["run_id"].as_str().expect("run id")],
    );
    assert!(status.contains("no JUnit report matching"), "{status}");
    assert!(!status.contains("tests: "), "{status}");
}

/// Issue 19, the same bullet: a report left by an earlier run matches the pattern but was
/// not written by this attempt, so it does not count, whatever its age.
#[test]
fn a_junit_pattern_that_matches_only_a_stale_report_fails_the_step() {
    let flow = Flow::new(
        r#"
[workflow]
name = "stale"

[steps.tests]
kind = "test"
run = "if [ -e first ]; then mkdir -p reports && cp junit.xml.in reports/junit.xml; fi"
junit = "reports/*.xml"
"#,
    );
    flow.write("junit.xml.in", &report("tests.test_app", 3, 0));
    flow.write("first", "");
    flow.run(&[])
        .expect_code(0)
        .expect_state("tests", "succeeded");
    std::fs::remove_file(flow.path().join("first")).expect("rm first");
    let out = flow.run(&["--force"]);
    out.expect_code(1).expect_state("tests", "failed");
    assert!(
        out.reason("tests").contains(
            "1 file(s) match it but were there before the attempt started, unchanged: reports/junit.xml"
        ),
        "{}",
        out.reason("tests")
    );
    assert_eq!(tests_of(&out, "tests")["passed"], 0);
}

/// "Written during the attempt": a retry does not count the report its first attempt left.
/// `quiet` writes a failing report and exits 1, then writes nothing and exits 0: it fails
/// for want of a report. `fixed` writes a passing report on its second attempt: only that
/// one counts.
#[test]
fn a_retry_does_not_count_the_report_of_the_attempt_before() {
    let flow = Flow::new(
        r#"
[workflow]
name = "retry"

[steps.quiet]
kind = "test"
retries = 1
retry_delay = "100ms"
run = "if [ $BGFLOW_ATTEMPT = 1 ]; then mkdir -p reports && cp bad.xml.in reports/quiet.xml; exit 1; fi"
junit = "reports/quiet.xml"

[steps.fixed]
kind = "test"
retries = 1
retry_delay = "100ms"
run = "mkdir -p reports; if [ $BGFLOW_ATTEMPT = 1 ]; then cp bad.xml.in reports/fixed.xml; exit 1; fi; cp good.xml.in reports/fixed.xml"
junit = "reports/fixed.xml"
"#,
    );
    flow.write("bad.xml.in", &report("tests.test_app", 1, 2));
    flow.write("good.xml.in", &report("tests.test_app", 3, 0));
    let out = flow.run(&["--keep-going"]);
    out.expect_code(1);
    out.expect_state("quiet", "failed");
    assert_eq!(out.step("quiet")["attempts"], 2);
    assert!(
        out.reason("quiet").starts_with(
            "no JUnit report matching `reports/quiet.xml` was written by this attempt: 1 file(s)"
        ),
        "{}",
        out.reason("quiet")
    );
    assert_eq!(
        tests_of(&out, "quiet")["failed"],
        0,
        "{}",
        out.step("quiet")
    );
    out.expect_state("fixed", "succeeded");
    let fixed = tests_of(&out, "fixed");
    assert_eq!(
        (&fixed["passed"], &fixed["failed"]),
        (&json(3), &json(0)),
        "{fixed}"
    );
}

/// Issue 19: "a cancelled step that wrote nothing showed another's counts". `e2e` (after
/// `unit`, same pattern) writes nothing and is cancelled when `bad` fails; it reads no
/// report. `slow` wrote a report and then timed out: it reads none either.
#[test]
fn a_cancelled_or_timed_out_test_step_reads_no_report() {
    let flow = Flow::new(
        r#"
[workflow]
name = "cancel"

[steps.unit]
kind = "test"
run = "mkdir -p reports && cp junit.xml.in reports/unit.xml"
junit = "reports/*.xml"

[steps.e2e]
kind = "test"
needs = ["unit"]
run = "touch e2e.started; sh wait.sh never"
junit = "reports/*.xml"

[steps.bad]
run = "sh wait.sh e2e.started; exit 3"
"#,
    );
    flow.write("junit.xml.in", &report("tests.test_unit", 4, 0));
    let out = flow.run(&[]);
    out.expect_code(1);
    out.expect_state("unit", "succeeded")
        .expect_state("e2e", "cancelled")
        .expect_state("bad", "failed");
    assert_eq!(tests_of(&out, "unit")["passed"], 4);
    assert_eq!(tests_of(&out, "e2e"), Value::Null, "{}", out.step("e2e"));

    let flow = Flow::new(
        r#"
[workflow]
name = "timeout"

[steps.slow]
kind = "test"
timeout = "1s"
run = "mkdir -p reports && cp junit.xml.in reports/slow.xml && sh wait.sh never"
junit = "reports/*.xml"
"#,
    );
    flow.write("junit.xml.in", &report("tests.test_slow", 4, 0));
    let out = flow.run(&[]);
    out.expect_code(1).expect_state("slow", "timed_out");
    assert!(flow.exists("reports/slow.xml"));
    assert_eq!(tests_of(&out, "slow"), Value::Null, "{}", out.step("slow"));
    assert!(!out.stderr.contains("tests: 4 passed"), "{}", out.stderr);
}

/// A report with 25 failing tests, 2 errors with a type, and a multi-line message.
fn many_failures() -> String {
    let mut xml = String::from("<testsuites><testsuite name=\"pytest\">");
    xml.push_str(
        "<testcase classname=\"tests.test_app.TestLogin\" name=\"test_multi\"><failure \
         message=\"assert 401 == 200&#10;  where 401 = login()&#10;  and 200 = OK\">trace</failure></testcase>",
    );
    xml.push_str(
        "<testcase classname=\"tests.test_app\" name=\"test_setup\"><error message=\"failed on setup with &quot;db down&quot;\" \
         type=\"ConnectionError\">trace</error></testcase>",
    );
    for i in 0..24 {
        xml.push_str(&format!(
            "<testcase classname=\"tests.test_app\" name=\"test_{i:02}\"><failure message=\"no {i}\"/></testcase>"
        ));
    }
    xml.push_str("<testcase classname=\"tests.test_app\" name=\"test_ok\"/>");
    xml.push_str("</testsuite></testsuites>\n");
    xml
}

fn run_many_failures() -> (Flow, Outcome) {
    let flow = Flow::new(
        r#"
[workflow]
name = "many"

[steps.tests]
kind = "test"
run = "mkdir -p reports && cp junit.xml.in reports/junit.xml"
junit = "reports/*.xml"
"#,
    );
    flow.write("junit.xml.in", &many_failures());
    flow.write("tests/test_app.py", "");
    let out = flow.run(&[]);
    out.expect_code(1).expect_state("tests", "failed");
    (flow, out)
}

/// Issue 19: "the failing-test list stops at 20 with no 'and N more'": the summary says
/// how many were left out, and `summary.json` counts them in `truncated`.
#[test]
fn the_failing_test_list_stops_at_20_with_and_n_more() {
    let (_flow, out) = run_many_failures();
    let tests = tests_of(&out, "tests");
    assert_eq!((&tests["failed"], &tests["errors"]), (&json(25), &json(1)));
    assert_eq!(
        tests["failing"].as_array().map(Vec::len),
        Some(20),
        "{tests}"
    );
    assert_eq!(tests["truncated"], 6, "{tests}");
    assert!(
        out.stderr.contains("\n    … and 6 more\n"),
        "{}",
        out.stderr
    );
}

/// Issue 19: "prints errors as FAIL". A JUnit `<error>` is `ERROR`, with its type.
#[test]
fn the_failing_test_list_prints_errors_as_error_with_their_type() {
    let (_flow, out) = run_many_failures();
    assert!(
        out.stderr.contains(
            "\n    ERROR tests/test_app.py::test_setup: ConnectionError: failed on setup with \"db down\"\n"
        ),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("FAIL tests/test_app.py::test_setup"),
        "{}",
        out.stderr
    );
    let error = &tests_of(&out, "tests")["failing"][1];
    assert_eq!(error["kind"], "error", "{error}");
    assert_eq!(error["type"], "ConnectionError", "{error}");
    assert_eq!(tests_of(&out, "tests")["failing"][0]["kind"], "failure");
}

/// Issue 19: "breaks indentation on multi-line messages": each further line of a message
/// is indented under the test's line.
#[test]
fn the_failing_test_list_indents_multi_line_messages() {
    let (_flow, out) = run_many_failures();
    assert!(
        out.stderr.contains(
            "\n    FAIL tests/test_app.py::TestLogin::test_multi: assert 401 == 200\
             \n          where 401 = login()\
             \n          and 200 = OK\
             \n    ERROR "
        ),
        "{}",
        out.stderr
    );
}

/// Issue 19: "shows names that cannot be pasted into the test runner". With real pytest:
/// each name bgflow shows, given back to pytest, runs exactly that test.
#[test]
fn the_failing_test_list_names_can_be_pasted_into_pytest() {
    need_pytest();
    let flow = Flow::new(
        r#"
[workflow]
name = "pytest"

[steps.tests]
kind = "test"
run = "python3 -m pytest -p no:cacheprovider -q --junitxml=reports/junit.xml tests"
junit = "reports/*.xml"
"#,
    );
    flow.write("tests/__init__.py", "");
    flow.write("tests/unit/__init__.py", "");
    flow.write(
        "tests/unit/test_calc.py",
        r#"import pytest


class TestAdd:
    def test_ok(self):
        assert 1 + 1 == 2

    @pytest.mark.parametrize("n", [1, 2])
    def test_bad(self, n):
        assert n + n == 5


@pytest.fixture
def broken():
    raise RuntimeError("no database")


def test_uses_broken(broken):
    pass


def test_message():
    assert "a\nb" == "a\nc"
"#,
    );
    let out = flow.run(&[]);
    out.expect_code(1).expect_state("tests", "failed");
    let tests = tests_of(&out, "tests");
    // pytest's own summary line in the log: `3 failed, 1 passed, 1 error in 0.05s`.
    let log = out.log("tests");
    assert!(log.contains("3 failed, 1 passed, 1 error"), "{log}");
    // Counted as pytest counts: one error is `1 error`, in the summary and in `status`.
    assert!(
        out.stderr.contains("tests: 1 passed, 3 failed, 1 error\n"),
        "{}",
        out.stderr
    );
    let status = bgflow_stdout(
        &flow,
        &["status", out.summary()["run_id"].as_str().expect("run id")],
    );
    assert!(
        status.contains("tests: 1 passed, 3 failed, 1 error ·"),
        "{status}"
    );
    assert_eq!(
        (&tests["passed"], &tests["failed"], &tests["errors"]),
        (&json(1), &json(3), &json(1)),
        "{tests}"
    );
    let names: Vec<&str> = tests["failing"]
        .as_array()
        .expect("failing")
        .iter()
        .map(|t| t["name"].as_str().expect("a name"))
        .collect();
    assert_eq!(
        names,
        [
            "tests/unit/test_calc.py::TestAdd::test_bad[1]",
            "tests/unit/test_calc.py::TestAdd::test_bad[2]",
            "tests/unit/test_calc.py::test_uses_broken",
            "tests/unit/test_calc.py::test_message",
        ],
        "{tests}"
    );
    assert!(
        out.stderr
            .contains("    ERROR tests/unit/test_calc.py::test_uses_broken"),
        "{}",
        out.stderr
    );
    for name in names {
        let again = std::process::Command::new("python3")
            .args(["-m", "pytest", "-p", "no:cacheprovider", "-q", name])
            .current_dir(flow.path())
            .output()
            .expect("pytest");
        let text = String::from_utf8_lossy(&again.stdout);
        let ran = text
            .lines()
            .last()
            .unwrap_or("")
            .split(' ')
            .filter_map(|w| w.parse::<u32>().ok())
            .sum::<u32>();
        assert_eq!(
            ran, 1,
            "`pytest {name}` should run exactly that test:\n{text}"
        );
        assert!(!text.contains("ERROR: not found"), "{name}:\n{text}");
    }
}

/// Seen on redis-py: a test file whose 34 tests all skipped (the server lacked a module)
/// made pytest exit 0, and the step "succeeded" with nothing else said. It still succeeds
/// (as pytest and JUnit count it), with a warning in the summary, summary.json and
/// `status`; a report without a single test case gets one too.
#[test]
fn a_test_step_whose_tests_all_skipped_succeeds_with_a_warning() {
    let flow = Flow::new(
        r#"
[workflow]
name = "skips"

[steps.skips]
kind = "test"
run = "mkdir -p a && cp skipped.xml a/r.xml"
junit = "a/*.xml"

[steps.empty]
kind = "test"
run = "mkdir -p b && cp empty.xml b/r.xml"
junit = "b/*.xml"

[steps.ran]
kind = "test"
run = "mkdir -p c && cp ran.xml c/r.xml"
junit = "c/*.xml"
"#,
    );
    flow.write(
        "skipped.xml",
        r#"<testsuites><testsuite name="pytest" tests="2" skipped="2">
<testcase classname="t" name="a"><skipped message="no module"/></testcase>
<testcase classname="t" name="b"><skipped message="no module"/></testcase>
</testsuite></testsuites>"#,
    );
    flow.write(
        "empty.xml",
        r#"<testsuites><testsuite name="none" tests="0"></testsuite></testsuites>"#,
    );
    flow.write("ran.xml", &report("t", 1, 0));
    let out = flow.run(&[]);
    out.expect_code(0)
        .expect_state("skips", "succeeded")
        .expect_state("empty", "succeeded")
        .expect_state("ran", "succeeded");
    let skipped = "no test ran: the JUnit reports list 2 skipped and none passed";
    assert_eq!(
        tests_of(&out, "skips")["warnings"],
        serde_json::json!([skipped])
    );
    assert_eq!(
        tests_of(&out, "empty")["warnings"],
        serde_json::json!(["no test ran: the JUnit reports list no test case"])
    );
    assert_eq!(tests_of(&out, "ran")["warnings"], serde_json::json!([]));
    assert!(
        out.stderr.contains(&format!("warning: skips: {skipped}")),
        "{}",
        out.stderr
    );
    let id = out.summary()["run_id"].as_str().expect("run id").to_owned();
    let text = bgflow_stdout(&flow, &["--color", "never", "status", &id]);
    let line = |name: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no line for {name}: {text}"))
            .to_owned()
    };
    assert!(
        line("skips").ends_with("tests: 0 passed, 0 failed, 2 skipped (no test ran)"),
        "{text}"
    );
    assert!(
        line("empty").ends_with("tests: 0 passed, 0 failed (no test ran)"),
        "{text}"
    );
    assert!(line("ran").ends_with("tests: 1 passed, 0 failed"), "{text}");
}

/// Seen on attrs 24.2.0 (a matrix of 24 pytest files, one failing): after the failure the
/// summary gave each passing test step two lines (`test[tests/test_abc.py] tests: 4
/// passed`, a blank line), 46 lines that pushed the failure off the screen. Past three
/// such steps, their counts are one line of sums, the failing step's included; that step
/// keeps its own counts in its block too.
#[test]
fn the_counts_of_many_passing_test_steps_are_one_line_of_sums() {
    let mut toml = String::from("[workflow]\nname = \"sums\"\n\n");
    for i in 0..5 {
        toml.push_str(&format!(
            "[steps.t{i}]\nkind = \"test\"\nrun = \"mkdir -p r && cp t{i}.xml.in r/t{i}.xml\"\njunit = \"r/t{i}.xml\"\n\n"
        ));
    }
    let flow = Flow::new(&toml);
    flow.write("t0.xml.in", &report("tests.test_t0", 1, 1));
    for i in 1..5 {
        flow.write(
            &format!("t{i}.xml.in"),
            &report(&format!("tests.test_t{i}"), i, 0),
        );
    }
    let out = flow.run(&["--keep-going"]);
    out.expect_code(1).expect_state("t0", "failed");
    let id = out.summary()["run_id"].as_str().expect("run id").to_owned();
    assert!(
        out.stderr.contains("  tests: 1 passed, 1 failed\n"),
        "{}",
        out.stderr
    );
    // 1 + 2 + 3 + 4 tests in the four steps that passed, and the failed step's 1 + 1: the
    // last word on the tests counts the failure (seen on msgpack 1.1.0: "tests: 240 passed
    // in 32 steps" closed a run whose two other test steps had each failed a test).
    assert!(
        out.stderr.contains(&format!(
            "\ntests: 11 passed, 1 failed in 5 steps (per step: bgflow status {id})\n"
        )),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("t1 tests:"), "{}", out.stderr);
}

/// Seen on attrs 24.2.0: a test file whose one test is skipped at import made pytest exit
/// 5 ("no tests collected"), and the step failed as a bare `exit code 5`, which reads as a
/// crash. The reason names pytest's meaning; another runner's 5 stays an exit code.
#[test]
fn pytest_collecting_no_test_is_named_in_the_reason() {
    need_pytest();
    let flow = Flow::new(
        r#"
[workflow]
name = "none"
fail_fast = false

[steps.empty]
kind = "test"
run = "python3 -m pytest -q -p no:cacheprovider tests/test_nothing.py"

[steps.other]
kind = "test"
run = "exit 5"
"#,
    );
    flow.write("tests/test_nothing.py", "def helper():\n    pass\n");
    let out = flow.run(&[]);
    out.expect_code(1)
        .expect_state("empty", "failed")
        .expect_state("other", "failed");
    assert_eq!(
        out.reason("empty"),
        "exit code 5: pytest collected no tests"
    );
    assert_eq!(out.reason("other"), "exit code 5");
    assert!(
        out.stderr
            .contains("error: empty failed: exit code 5: pytest collected no tests"),
        "{}",
        out.stderr
    );
}

/// Seen on pluggy 1.5.0: `-k 'test_x and'` made pytest exit 4 and the step failed as a bare
/// `exit code 4`; a test file that cannot be imported makes it exit 2. Real pytest, each
/// code named.
#[test]
fn pytests_interrupted_and_usage_exits_are_named_in_the_reason() {
    need_pytest();
    let flow = Flow::new(
        r#"
[workflow]
name = "codes"
fail_fast = false

[steps.usage]
kind = "test"
run = "python3 -m pytest -q -p no:cacheprovider tests/test_ok.py -k 'test_x and'"

[steps.broken]
kind = "test"
run = "python3 -m pytest -q -p no:cacheprovider tests"
"#,
    );
    flow.write("tests/test_ok.py", "def test_ok():\n    pass\n");
    flow.write("tests/test_broken.py", "import no_such_module_here\n");
    let out = flow.run(&[]);
    out.expect_code(1)
        .expect_state("usage", "failed")
        .expect_state("broken", "failed");
    assert_eq!(
        out.reason("usage"),
        "exit code 4: pytest's command line is wrong (an option, a `-k` or `-m` expression)"
    );
    assert_eq!(
        out.reason("broken"),
        "exit code 2: pytest was interrupted (an error while collecting the tests, or a signal)"
    );
}

/// Fails the test (never skips it) when real pytest is not there: CI installs it.
fn need_pytest() {
    let has_pytest = std::process::Command::new("python3")
        .args(["-m", "pytest", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        has_pytest,
        "this test runs real pytest: `python3 -m pip install pytest`"
    );
}
