//! The end-of-run summary of a large run: the steps that need a look, counts for the rest,
//! and every step still in summary.json.

use super::*;

/// A workflow of `n` independent steps named `s0`.., where `fails(i)` steps exit 3.
fn many(n: usize, fail_fast: bool, fails: impl Fn(usize) -> bool) -> Flow {
    let mut toml = format!("[workflow]\nname = \"many\"\nfail_fast = {fail_fast}\n\n");
    for i in 0..n {
        let run = if fails(i) { "exit 3" } else { "true" };
        toml.push_str(&format!("[steps.s{i}]\nrun = \"{run}\"\n\n"));
    }
    Flow::new(&toml)
}

/// The summary's lines between `run ID of WORKFLOW: STATE` and the verdict.
fn summary_lines(out: &Outcome) -> Vec<&str> {
    let from = out
        .stderr
        .find("\nrun ")
        .unwrap_or_else(|| panic!("no summary: {}", out.stderr));
    out.stderr[from..].lines().collect()
}

/// 120 steps, one failing, fail-fast, one slot: the table lists the failure alone and
/// counts the rest by state; the 114 steps fail-fast stopped are one line of `not run`
/// that names the first five; summary.json still has every step.
#[test]
fn a_large_run_lists_what_needs_a_look_and_counts_the_rest() {
    let flow = many(120, true, |i| i == 5);
    let out = flow.run(&["-j", "1"]);
    out.expect_code(1).expect_state("s5", "failed");
    let lines = summary_lines(&out);
    let rows: Vec<&&str> = lines
        .iter()
        .filter(|l| l.starts_with("  ok ") || l.starts_with("  !! ") || l.starts_with("  XX "))
        .collect();
    assert_eq!(rows.len(), 1, "one row, the failure: {}", out.stderr);
    assert!(rows[0].starts_with("  !! s5 "), "{}", out.stderr);
    let json = out.log_dir().join("summary.json");
    assert!(
        lines.contains(
            &format!(
                "  not listed: 5 succeeded, 114 cancelled (every step is in {})",
                json.display()
            )
            .as_str()
        ),
        "{}",
        out.stderr
    );
    assert!(
        lines.contains(&"  114 cancelled: not started: step `s5` failed; fail_fast stopped the rest (s6, s7, s8, s9, s10 and 109 more)"),
        "{}",
        out.stderr
    );
    assert!(
        lines.contains(&"error: s5 failed: exit code 3"),
        "{}",
        out.stderr
    );
    assert!(lines.len() < 20, "a short summary: {}", out.stderr);
    let steps = out.summary()["steps"].as_array().expect("steps").len();
    assert_eq!(steps, 120);
}

/// 120 steps, 60 failing, no fail-fast: the table and the failure reports stop at 50
/// each, and what they left out is counted; a run of 50 steps or fewer lists every step
/// (`summary_table_and_json_describe_every_step`).
#[test]
fn a_large_run_with_many_failures_reports_the_first_fifty_and_counts_the_rest() {
    let flow = many(120, false, |i| i % 2 == 1);
    let out = flow.run(&["-j", "2"]);
    out.expect_code(1);
    let lines = summary_lines(&out);
    let failed_rows = lines.iter().filter(|l| l.starts_with("  !! s")).count();
    assert_eq!(failed_rows, 50, "{}", out.stderr);
    assert!(
        !lines.iter().any(|l| l.starts_with("  ok s")),
        "no succeeded rows: {}",
        out.stderr
    );
    let json = out.log_dir().join("summary.json");
    assert!(
        lines.contains(
            &format!(
                "  not listed: 60 succeeded, 10 failed (every step is in {})",
                json.display()
            )
            .as_str()
        ),
        "{}",
        out.stderr
    );
    let reports = lines.iter().filter(|l| l.starts_with("error: s")).count();
    assert_eq!(reports, 50, "{}", out.stderr);
    assert!(
        lines.contains(
            &format!(
                "… 10 more that did not succeed: 10 failed (each with its reason in {})",
                json.display()
            )
            .as_str()
        ),
        "{}",
        out.stderr
    );
}

/// Once everything is up to date, a large run's summary is a few lines, not one per step.
#[test]
fn a_large_up_to_date_run_is_summed_up_in_a_few_lines() {
    let flow = many(120, true, |_| false);
    let mut toml = flow.read("bgflow.toml");
    // Outputs make the steps up to date on the second run.
    for i in 0..120 {
        toml = toml.replace(
            &format!("[steps.s{i}]\nrun = \"true\"\n"),
            &format!("[steps.s{i}]\nrun = \"touch out/{i}\"\noutputs = [\"out/{i}\"]\n"),
        );
    }
    flow.write("bgflow.toml", &toml);
    flow.run(&[]).expect_code(0);
    let out = flow.run(&[]);
    out.expect_code(0);
    let lines = summary_lines(&out);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("  not listed: 120 skipped (every step is in ")),
        "{}",
        out.stderr
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("  120 skipped: up to date since run ")
                && l.ends_with("(s0, s1, s2, s3, s4 and 115 more)")),
        "{}",
        out.stderr
    );
    assert!(lines.len() < 12, "a short summary: {}", out.stderr);
}

/// Seen building Lua 5.4.7 (32 compile steps): after an edit broke one file, the summary's
/// `not run` list gave 31 lines of "skipped: up to date since run …" and, last, the three
/// steps the failure kept from running. Kept steps past three are now one line after the
/// others; three or fewer are still listed one by one.
#[test]
fn steps_kept_as_up_to_date_are_one_line_after_what_the_failure_skipped() {
    let step =
        |i: usize| format!("[steps.s{i}]\nrun = \"touch out/{i}\"\noutputs = [\"out/{i}\"]\n\n");
    let toml = |kept: usize| {
        let mut t = String::from("[workflow]\nname = \"kept\"\n\n");
        (0..kept).for_each(|i| t.push_str(&step(i)));
        t + "[steps.bad]\nrun = \"exit 3\"\n\n[steps.after]\nneeds = [\"bad\"]\nrun = \"true\"\n"
    };
    for (kept, grouped) in [(6, true), (3, false)] {
        let flow = Flow::new(&toml(kept));
        flow.run(&["--keep-going"]).expect_code(1);
        let out = flow.run(&["--keep-going"]);
        out.expect_code(1);
        let not_run = not_run_list(&out);
        let lines: Vec<&str> = not_run.lines().collect();
        assert_eq!(
            lines[0], "  after skipped: upstream step `bad` failed",
            "{not_run}"
        );
        if grouped {
            assert_eq!(lines.len(), 2, "{not_run}");
            assert!(
                lines[1].starts_with("  6 skipped: up to date since run ")
                    && lines[1].ends_with(" (s0, s1, s2, s3, s4 and 1 more)"),
                "{not_run}"
            );
        } else {
            assert_eq!(lines.len(), 4, "{not_run}");
            assert!(
                lines[1].starts_with("  s0 skipped: up to date since run "),
                "{not_run}"
            );
        }
    }
}

/// Seen on attrs 24.2.0: a fail-fast after one of 24 test files failed listed each of the
/// 16 that had not started on a line of its own, all with the same reason. Past three,
/// steps that did not start for one reason are one line; three or fewer, a line each.
#[test]
fn steps_cancelled_before_they_started_for_one_reason_are_one_line() {
    let toml = |n: usize| {
        let mut t = String::from("[workflow]\nname = \"ff\"\n\n[steps.bad]\nrun = \"exit 3\"\n\n");
        (0..n).for_each(|i| t.push_str(&format!("[steps.s{i}]\nrun = \"true\"\n\n")));
        t
    };
    let why = "not started: step `bad` failed; fail_fast stopped the rest";
    for (n, grouped) in [(5, true), (3, false)] {
        let flow = Flow::new(&toml(n));
        let out = flow.run(&["-j", "1"]);
        out.expect_code(1).expect_state("bad", "failed");
        let not_run = not_run_list(&out);
        let lines: Vec<&str> = not_run.lines().collect();
        if grouped {
            assert_eq!(
                lines,
                [format!("  5 cancelled: {why} (s0, s1, s2, s3, s4)")],
                "{not_run}"
            );
        } else {
            let each: Vec<String> = (0..3).map(|i| format!("  s{i} cancelled: {why}")).collect();
            assert_eq!(lines, each, "{not_run}");
        }
    }
}

/// The summary's `not run` list, its heading left out.
#[track_caller]
fn not_run_list(out: &Outcome) -> &str {
    out.stderr
        .split("\nnot run:\n")
        .nth(1)
        .and_then(|s| s.split("\n\n").next())
        .unwrap_or_else(|| panic!("no `not run` list: {}", out.stderr))
}
