//! bgflow run: outputs, fail_on, logs, progress, the summary and up-to-date checks.

use super::*;

// ---------------------------------------------------------------------------------------
// Outputs and fail_on
// ---------------------------------------------------------------------------------------

/// After exit 0 every declared output must exist ("dir/" = a non-empty folder); the
/// folders of outputs are made before the step starts.
#[test]
fn declared_outputs_are_checked_and_their_folders_made() {
    let flow = Flow::new(
        r#"
[workflow]
name = "outputs"

[steps.forgets]
run = "echo did nothing"
outputs = ["result.txt"]

[steps.empty_dir]
run = "true"
outputs = ["reports/"]

[steps.nested]
run = "echo x > deep/er/file.txt"
outputs = ["deep/er/file.txt"]

[steps.full_dir]
run = "echo x > made/one.txt"
outputs = ["made/"]
"#,
    );
    let out = flow.run(&["--keep-going"]);
    out.expect_code(1);
    out.expect_state("forgets", "failed");
    assert_eq!(
        out.reason("forgets"),
        "declared output `result.txt` was not produced"
    );
    assert_eq!(out.step("forgets")["exit_code"], 0);
    out.expect_state("empty_dir", "failed");
    assert!(
        out.reason("empty_dir")
            .starts_with("declared output `reports/` was not produced"),
        "{}",
        out.reason("empty_dir")
    );
    out.expect_state("nested", "succeeded");
    out.expect_state("full_dir", "succeeded");
}

/// A fail_on match in the output fails the step even though it exited 0.
#[test]
fn fail_on_match_fails_a_step_that_exited_0() {
    let flow = Flow::new(
        r#"
[workflow]
name = "fail-on"

[steps.script]
run = "echo working; echo 'Traceback (most recent call last):'; echo '  boom'"
fail_on = ['Traceback \(most recent call last\)']
"#,
    );
    let out = flow.run(&[]);
    out.expect_code(1);
    out.expect_state("script", "failed");
    assert_eq!(out.step("script")["exit_code"], 0);
    assert!(
        out.reason("script").contains("fail_on")
            && out
                .reason("script")
                .contains("Traceback (most recent call last):"),
        "{}",
        out.reason("script")
    );
}

// ---------------------------------------------------------------------------------------
// Logs, plain lines, progress
// ---------------------------------------------------------------------------------------

/// stdout and stderr reach the log as they come: the step prints a line, then waits for a
/// file the test makes only after it saw that line in the log.
#[test]
fn output_streams_to_the_log_while_the_step_runs() {
    let flow = Flow::new(
        r#"
[workflow]
name = "stream"

[steps.talk]
run = "echo first line; echo to stderr >&2; sh wait.sh go; echo second line"
"#,
    );
    let running = flow.start(&[]);
    let log = running.log_dir().join("talk.log");
    wait_until(SOON, "the first lines in the log", || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        text.contains("first line\n") && text.contains("to stderr\n")
    });
    assert!(!std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("second line"));
    flow.write("go", "");
    let out = running.finish();
    out.expect_code(0);
    assert_eq!(out.log("talk"), "first line\nto stderr\nsecond line\n");
}

/// The summary of a failing step shows its last lines (the last 20), in text and JSON.
#[test]
fn failure_report_shows_the_last_lines() {
    let flow = Flow::new(
        r#"
[workflow]
name = "noisy"

[steps.noisy]
run = 'i=1; while [ $i -le 30 ]; do echo "line $i"; i=$((i+1)); done; exit 4'
"#,
    );
    let out = flow.run(&[]);
    out.expect_code(1);
    let last: Vec<&str> = out.step("noisy")["last_lines"]
        .as_array()
        .expect("last_lines")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let expected: Vec<String> = (11..=30).map(|i| format!("line {i}")).collect();
    assert_eq!(last, expected);
    assert!(
        out.stderr.contains("error: noisy failed: exit code 4"),
        "{}",
        out.stderr
    );
    let log = out.log_dir().join("noisy.log");
    assert!(out.stderr.contains(&format!("  log: {}", log.display())));
    assert!(out.stderr.contains("  | line 30\n") && !out.stderr.contains("  | line 10\n"));
}

/// Plain lines (not a terminal, --progress never): timestamped started / progress /
/// finished lines. Progress comes from lines appended to $BGFLOW_PROGRESS and from the
/// `progress` regex, and shows in the plain output and in summary.json.
#[test]
fn plain_lines_show_start_progress_and_finish() {
    let flow = Flow::new(
        r#"
[workflow]
name = "progress"

[steps.work]
run = 'echo "5/10 Implementing" >> "$BGFLOW_PROGRESS"; sh wait.sh go; echo "90 Testing" >> "$BGFLOW_PROGRESS"'

[steps.count]
run = "echo '3/4: almost there'; sh wait.sh go"
progress = '(?P<current>\d+)/(?P<total>\d+): (?P<message>.*)'
"#,
    );
    let running = flow.start(&["-j", "2"]);
    running.wait_for_stderr("progress work: 50% (5/10: Implementing)");
    running.wait_for_stderr("progress count: 75% (3/4: almost there)");
    flow.write("go", "");
    let out = running.finish();
    out.expect_code(0);
    let ts = r"^\d\d:\d\d:\d\d ";
    for pattern in [
        format!(r"{ts}run \w+: workflow progress, 2 step\(s\), logs in /"),
        format!(r"{ts}started work, pid \d+$"),
        format!(r"{ts}started count, pid \d+$"),
        format!(r"{ts}progress work: 50% \(5/10: Implementing\)$"),
        format!(r"{ts}progress count: 75% \(3/4: almost there\)$"),
        format!(r"{ts}finished work: succeeded in \d+\.\ds$"),
        format!(r"{ts}finished count: succeeded in \d+\.\ds$"),
    ] {
        let re = Regex::new(&format!("(?m){pattern}")).expect("regex");
        assert!(
            re.is_match(&out.stderr),
            "no line {pattern}:\n{}",
            out.stderr
        );
    }
    assert!(!out.stderr.contains('\u{1b}'), "no escape codes");
    assert_eq!(
        out.step("work")["progress"],
        serde_json::json!({"percent": 90.0, "message": "Testing"})
    );
    assert_eq!(
        out.step("count")["progress"],
        serde_json::json!({"current": 3, "total": 4, "message": "almost there"})
    );
}

/// With CI set, `--progress auto` also gives plain lines.
#[test]
fn ci_gives_plain_lines() {
    let flow = Flow::new("[workflow]\nname = \"ci\"\n\n[steps.one]\nrun = \"true\"\n");
    let out = flow
        .start_raw(
            &[
                "--color",
                "never",
                "run",
                "bgflow.toml",
                "--progress",
                "auto",
            ],
            &[("CI", "true")],
        )
        .finish();
    out.expect_code(0);
    let re = Regex::new(r"(?m)^\d\d:\d\d:\d\d finished one: succeeded in \d+\.\ds$").expect("re");
    assert!(re.is_match(&out.stderr), "{}", out.stderr);
}

/// Plain lines show the local time of day, in the zone `TZ` names when it is set (here a
/// POSIX zone 5 hours ahead of UTC) and in /etc/localtime's otherwise.
#[test]
fn plain_lines_show_the_local_time_of_day() {
    let flow = Flow::new("[workflow]\nname = \"tz\"\n\n[steps.one]\nrun = \"true\"\n");
    let utc_hour = || (jiff::Timestamp::now().as_second().rem_euclid(86_400) / 3600) as u32;
    let hour_of = |stderr: &str| -> u32 {
        stderr
            .lines()
            .find_map(|l| l.get(..2)?.parse().ok())
            .unwrap_or_else(|| panic!("no line starting with the hour: {stderr}"))
    };
    let before = utc_hour();
    let out = flow.start_env(&[], &[("TZ", "BGF-5")]).finish();
    let after = utc_hour();
    out.expect_code(0);
    let shown = hour_of(&out.stderr);
    assert!(
        [(before + 5) % 24, (after + 5) % 24].contains(&shown),
        "TZ=BGF-5 shows UTC+5 ({before}..{after} UTC): {}",
        out.stderr
    );
    let local = |ts: jiff::Timestamp| {
        let zone = jiff::tz::TimeZone::try_system().expect("the system time zone");
        ts.to_zoned(zone).hour() as u32
    };
    let before = local(jiff::Timestamp::now());
    let out = flow.start_env(&[], &[]).finish();
    let after = local(jiff::Timestamp::now());
    out.expect_code(0);
    let shown = hour_of(&out.stderr);
    assert!(
        [before, after].contains(&shown),
        "without TZ, the hour of /etc/localtime ({before}..{after}): {}",
        out.stderr
    );
}

// ---------------------------------------------------------------------------------------
// The summary, and DESIGN.md §5.4
// ---------------------------------------------------------------------------------------

/// The table: each step's state, duration, attempts, exit code or signal; then each failure
/// with reason, log path and last lines; exit 1. summary.json holds the same.
#[test]
fn summary_table_and_json_describe_every_step() {
    let flow = Flow::new(
        r#"
[workflow]
name = "table"
fail_fast = false

[steps.fine]
run = "echo fine"

[steps.broken]
run = "echo about to fail; exit 3"

[steps.killed]
run = "echo about to die; kill -KILL $$"

[steps.downstream]
needs = ["broken"]
run = "true"
"#,
    );
    let out = flow.run(&[]);
    out.expect_code(1);
    let rows = [
        r"^  ok fine\s+succeeded\s+\d+\.\ds\s+1  0$",
        r"^  !! broken\s+failed\s+\d+\.\ds\s+1  3$",
        r"^  !! killed\s+failed\s+\d+\.\ds\s+1  SIGKILL$",
        r"^  -- downstream\s+skipped\s+-\s+0  -$",
        r"^\s+step\s+state\s+time\s+attempts\s+exit$",
        r"^error: broken failed: exit code 3$",
        r"^error: killed failed: killed by signal SIGKILL$",
        r"^  \| about to fail$",
        r"^  \| about to die$",
        r"^  downstream skipped: upstream step `broken` failed$",
        r"^exit 1: failed in \d+\.\ds \(2 steps failed: `broken`, `killed`\); logs in /",
    ];
    for row in rows {
        let re = Regex::new(&format!("(?m){row}")).expect("regex");
        assert!(re.is_match(&out.stderr), "no line {row}:\n{}", out.stderr);
    }
    let s = out.summary();
    assert_eq!(s["state"], "failed");
    assert_eq!(s["workflow"], "table");
    assert!(s["duration_ms"].is_u64());
    let fine = out.step("fine");
    assert_eq!(fine["state"], "succeeded");
    assert_eq!(fine["exit_code"], 0);
    assert_eq!(fine["attempts"], 1);
    assert!(fine["duration_ms"].is_u64());
    let broken = out.step("broken");
    assert_eq!(broken["exit_code"], 3);
    assert_eq!(broken["reason"], "exit code 3");
    assert_eq!(broken["last_lines"], serde_json::json!(["about to fail"]));
    assert_eq!(
        broken["log"].as_str(),
        Some(out.log_dir().join("broken.log").to_str().expect("utf-8"))
    );
    let killed = out.step("killed");
    assert_eq!(killed["exit_code"], Value::Null);
    assert_eq!(killed["signal"], "SIGKILL");
    assert_eq!(out.step("downstream")["attempts"], 0);

    let ok = Flow::new("[workflow]\nname = \"fine\"\n\n[steps.one]\nrun = \"true\"\n").run(&[]);
    ok.expect_code(0);
    assert!(ok.stderr.contains("\nok: succeeded in "), "{}", ok.stderr);
    assert_eq!(ok.summary()["state"], "succeeded");
}

/// DESIGN.md §5.4: every kind of failure names the step, the reason, the log path and the
/// last lines, and the exit code is non-zero.
#[test]
fn every_failure_names_step_reason_log_and_last_lines() {
    let flow = Flow::new(
        r#"
[workflow]
name = "failures"
fail_fast = false

[steps.by_exit]
run = "echo by_exit-line; exit 7"

[steps.by_signal]
run = "echo by_signal-line; kill -TERM $$"

[steps.by_timeout]
run = "echo by_timeout-line; sleep 371"
timeout = "500ms"
kill_grace = "200ms"

[steps.by_stall]
run = "echo by_stall-line; sleep 372"
stall_timeout = "500ms"
kill_grace = "200ms"

[steps.by_output]
run = "echo by_output-line"
outputs = ["never.txt"]

[steps.by_match]
run = "echo 'FATAL: by_match-line'"
fail_on = ['^FATAL']
"#,
    );
    let out = flow.run(&["-j", "6"]);
    out.expect_code(1);
    let cases = [
        ("by_exit", "failed", "exit code 7"),
        ("by_signal", "failed", "killed by signal SIGTERM"),
        ("by_timeout", "timed_out", "timed out after 500ms"),
        (
            "by_stall",
            "stalled",
            "stalled: no output and no progress for 500ms",
        ),
        (
            "by_output",
            "failed",
            "declared output `never.txt` was not produced",
        ),
        (
            "by_match",
            "failed",
            "output matched fail_on pattern `^FATAL`",
        ),
    ];
    for (name, state, reason) in cases {
        out.expect_state(name, state);
        assert!(
            out.reason(name).contains(reason),
            "{name}: {}",
            out.reason(name)
        );
        let step = out.step(name);
        let log = PathBuf::from(step["log"].as_str().expect("log"));
        assert!(log.is_file(), "{name}: the log exists");
        let last = step["last_lines"].as_array().expect("last_lines");
        assert!(
            last.iter().any(|l| l
                .as_str()
                .is_some_and(|l| l.contains(&format!("{name}-line")))),
            "{name}: last lines {last:?}"
        );
        assert!(
            out.stderr
                .contains(&format!("error: {name} {state}: {reason}")),
            "{name} in the text summary:\n{}",
            out.stderr
        );
        assert!(out.stderr.contains(&format!("  log: {}", log.display())));
    }
    assert_no_process("sleep 371");
    assert_no_process("sleep 372");
}

// ---------------------------------------------------------------------------------------
// Up to date
// ---------------------------------------------------------------------------------------

/// A step whose outputs exist and whose fingerprint matches its last success is skipped as
/// "up to date"; a changed input (content and size, or only mtime) or a missing output runs
/// it again; --force runs it regardless.
#[test]
fn up_to_date_step_is_skipped_until_an_input_changes_or_force() {
    let flow = Flow::new(
        r#"
[workflow]
name = "incremental"

[steps.copy]
run = "cat in.txt > out.txt; echo ran >> runs.txt"
inputs = ["in.txt"]
outputs = ["out.txt"]

[steps.after]
run = "cat out.txt > final.txt"
inputs = ["out.txt"]
outputs = ["final.txt"]
"#,
    );
    flow.write("in.txt", "one\n");
    let runs = || flow.read("runs.txt").lines().count();

    flow.run(&[])
        .expect_code(0)
        .expect_state("copy", "succeeded");
    assert_eq!(runs(), 1);

    let again = flow.run(&[]);
    again.expect_code(0).expect_state("copy", "skipped");
    again.expect_state("after", "skipped");
    assert!(again.reason("copy").starts_with("up to date since run "));
    assert!(again
        .stderr
        .contains("finished copy: skipped (up to date since run "));
    assert_eq!(runs(), 1);

    flow.write("in.txt", "two, longer\n");
    let changed = flow.run(&[]);
    changed.expect_code(0).expect_state("copy", "succeeded");
    changed.expect_state("after", "succeeded");
    assert_eq!(runs(), 2);
    assert_eq!(flow.read("final.txt"), "two, longer\n");
    flow.run(&[]).expect_code(0).expect_state("copy", "skipped");
    assert_eq!(runs(), 2);

    // Same content and size, another mtime.
    let input = std::fs::File::options()
        .write(true)
        .open(flow.path().join("in.txt"))
        .expect("open in.txt");
    input
        .set_modified(SystemTime::now() - Duration::from_secs(3600))
        .expect("set mtime");
    drop(input);
    flow.run(&[])
        .expect_code(0)
        .expect_state("copy", "succeeded");
    assert_eq!(runs(), 3);

    flow.run(&["--force"])
        .expect_code(0)
        .expect_state("copy", "succeeded");
    assert_eq!(runs(), 4);

    std::fs::remove_file(flow.path().join("out.txt")).expect("rm out.txt");
    flow.run(&[])
        .expect_code(0)
        .expect_state("copy", "succeeded");
    assert_eq!(runs(), 5);
}

/// A rebuild after some outputs were deleted: the look-ahead that finds missing outputs
/// beside the run (`exec::lookahead`) must decide exactly as the check at each step's
/// start would. Of 40 steps writing into one folder (20, and 20 that each read one of
/// theirs), those whose output went and those reading a remade one run again; every
/// other step stays up to date.
#[test]
fn after_outputs_are_deleted_exactly_their_steps_and_what_reads_them_run_again() {
    let mut manifest = String::from("[workflow]\nname = \"rebuild\"\n");
    for i in 0..40 {
        manifest.push_str(&format!(
            "\n[steps.s{i}]\nrun = \"echo {i} > out/{i}.txt\"\noutputs = [\"out/{i}.txt\"]\n"
        ));
        // Steps 20-39 each read the output of step i - 20.
        if i >= 20 {
            manifest.push_str(&format!("inputs = [\"out/{}.txt\"]\n", i - 20));
        }
    }
    let flow = Flow::new(&manifest);
    flow.run(&[]).expect_code(0);
    let again = flow.run(&[]);
    again.expect_code(0);
    for i in 0..40 {
        again.expect_state(&format!("s{i}"), "skipped");
    }
    // Deleted: 0-4 (each read by 20-24) and 30-34 (read by nothing).
    for i in (0..5).chain(30..35) {
        std::fs::remove_file(flow.path().join(format!("out/{i}.txt"))).expect("rm output");
    }
    let rebuilt = flow.run(&[]);
    rebuilt.expect_code(0);
    for i in 0..40 {
        let runs = i < 5 || (20..25).contains(&i) || (30..35).contains(&i);
        rebuilt.expect_state(&format!("s{i}"), if runs { "succeeded" } else { "skipped" });
    }
    assert_eq!(flow.read("out/3.txt"), "3\n");
}

/// The fingerprint records the inputs as the step found them when it started: an input
/// edited while the step runs (here by the step itself, after reading it) makes the next
/// run rerun the step instead of keeping an output built from the old content.
#[test]
fn an_input_edited_while_its_step_runs_is_not_up_to_date_afterwards() {
    let flow = Flow::new(
        r#"
[workflow]
name = "edited-meanwhile"

[steps.copy]
run = "cat in.txt > out.txt; echo ran >> runs.txt; printf 'edited while copy ran\\n' > in.txt"
inputs = ["in.txt"]
outputs = ["out.txt"]
"#,
    );
    flow.write("in.txt", "one\n");
    let runs = || flow.read("runs.txt").lines().count();

    flow.run(&[])
        .expect_code(0)
        .expect_state("copy", "succeeded");
    assert_eq!(flow.read("out.txt"), "one\n");
    assert_eq!(runs(), 1);

    let again = flow.run(&[]);
    again.expect_code(0).expect_state("copy", "succeeded");
    assert_eq!(runs(), 2, "the edited input must make the step run again");
    assert_eq!(flow.read("out.txt"), "edited while copy ran\n");
}

/// A step's own outputs are not among its inputs, even inside an input folder: a step that
/// writes its summary into the folder it reads is up to date on the next run, and runs
/// again when another file of the folder changes.
#[test]
fn a_step_whose_output_is_inside_its_input_folder_is_up_to_date_afterwards() {
    let flow = Flow::new(
        r#"
[workflow]
name = "inside"

[steps.sum]
run = "ls data > data/summary.txt; echo ran >> runs.txt"
inputs = ["data/"]
outputs = ["data/summary.txt"]
"#,
    );
    flow.write("data/a.txt", "a\n");
    let runs = || flow.read("runs.txt").lines().count();

    flow.run(&[])
        .expect_code(0)
        .expect_state("sum", "succeeded");
    flow.run(&[]).expect_code(0).expect_state("sum", "skipped");
    flow.run(&[]).expect_code(0).expect_state("sum", "skipped");
    assert_eq!(runs(), 1);

    flow.write("data/b.txt", "b\n");
    flow.run(&[])
        .expect_code(0)
        .expect_state("sum", "succeeded");
    assert_eq!(runs(), 2);
    assert_eq!(flow.read("data/summary.txt"), "a.txt\nb.txt\nsummary.txt\n");
    flow.run(&[]).expect_code(0).expect_state("sum", "skipped");
}

// ---------------------------------------------------------------------------------------
// Hostile values, invalid workflows, the state folder
// ---------------------------------------------------------------------------------------

/// `--var` values full of shell syntax arrive in the command as one literal word and run
/// nothing.
#[test]
fn hostile_vars_arrive_literally_and_run_nothing() {
    let values = [
        "'; touch PWNED; '",
        "$(touch PWNED)",
        "`touch PWNED`",
        "\"; touch PWNED; \"",
        "first line\n; touch PWNED\nthird line",
        "x && touch PWNED || touch PWNED",
        "\\'; touch PWNED #",
    ];
    let flow = Flow::new(
        r#"
[workflow]
name = "hostile"

[vars]
v = "harmless"

[steps.echo]
run = "printf '%s' {{ vars.v }} > out.txt"
outputs = ["out.txt"]
"#,
    );
    for value in values {
        let var = format!("v={value}");
        let out = flow.run(&["--force", "--var", &var]);
        out.expect_code(0);
        assert_eq!(
            std::fs::read(flow.path().join("out.txt")).expect("out.txt"),
            value.as_bytes(),
            "value {value:?}"
        );
        assert!(!flow.exists("PWNED"), "value {value:?} ran a command");
    }
}

/// An invalid workflow: exit 3 with the diagnostics, and nothing starts (the step that
/// would make a file does not).
#[test]
fn invalid_workflow_exits_3_and_starts_nothing() {
    let flow = Flow::new(
        r#"
[workflow]
name = "invalid"

[steps.maker]
run = "touch created.txt"

[steps.broken]
needs = ["nowhere"]
run = "touch broken.txt"
"#,
    );
    let out = flow.run(&[]);
    out.expect_code(3);
    assert!(!flow.exists("created.txt") && !flow.exists("broken.txt"));
    assert!(out.stderr.contains("nowhere"), "{}", out.stderr);
    assert!(out.stderr.contains("nothing ran"), "{}", out.stderr);
    assert!(out.summary.is_none());
    assert!(!flow.path().join(".bgflow/runs").exists());
}

/// --state-dir puts logs and summary.json there instead of `.bgflow/` in the root.
#[test]
fn state_dir_flag_moves_logs_and_summary() {
    let flow = Flow::new("[workflow]\nname = \"elsewhere\"\n\n[steps.one]\nrun = \"echo hello\"\n");
    let out = flow
        .start_raw(
            &[
                "--color",
                "never",
                "--state-dir",
                "custom-state",
                "run",
                "bgflow.toml",
                "--progress",
                "never",
            ],
            &[],
        )
        .finish();
    out.expect_code(0);
    let runs = flow.path().join("custom-state").join("runs");
    let id = out.summary()["run_id"].as_str().expect("id").to_owned();
    assert_eq!(
        std::fs::read_to_string(runs.join(&id).join("one.log")).expect("log"),
        "hello\n"
    );
    assert!(runs.join(&id).join("summary.json").is_file());
    assert!(!flow.path().join(".bgflow").exists());
}

/// A log file appears with a step's first byte of output: a quiet step leaves none, and
/// the failure report and `bgflow logs` say it printed nothing rather than name a file.
#[test]
fn a_quiet_step_leaves_no_log_file_and_says_so() {
    let flow = Flow::new(
        r#"
[workflow]
name = "quiet"
fail_fast = false

[steps.talk]
run = "echo said"

[steps.mute]
run = "exit 3"

[steps.after]
needs = ["mute"]
run = "echo never"

[steps.later]
needs = ["mute"]
run = "echo never"
"#,
    );
    let out = flow.run(&[]);
    out.expect_code(1)
        .expect_state("talk", "succeeded")
        .expect_state("mute", "failed")
        .expect_state("after", "skipped");
    assert_eq!(out.log("talk"), "said\n");
    assert!(out.log_dir().is_dir(), "the run's folder exists");
    assert!(
        !out.log_dir().join("mute.log").exists(),
        "no file for a quiet step"
    );
    assert!(
        out.stderr
            .contains("  log: none (the step printed nothing)"),
        "{}",
        out.stderr
    );
    let id = out.summary()["run_id"].as_str().expect("id").to_owned();
    let logs = flow.start_raw(&["logs", &id, "mute"], &[]).finish();
    assert_eq!(logs.code(), 0, "{}", logs.stderr);
    assert!(
        logs.stderr
            .contains("mute: printed nothing (the step failed)"),
        "{}",
        logs.stderr
    );
    // A step that never started did not print nothing: it did not run. Asked for alone,
    // it says why; among every step's logs, those that never started are one line.
    let after = flow.start_raw(&["logs", &id, "after"], &[]).finish();
    assert_eq!(after.code(), 0, "{}", after.stderr);
    assert_eq!(
        after.stderr,
        "after: did not run (skipped: upstream step `mute` failed)\n"
    );
    let all = flow.start_raw(&["logs", &id], &[]).finish();
    assert_eq!(all.code(), 0, "{}", all.stderr);
    assert!(
        all.stderr
            .contains("mute: printed nothing (the step failed)")
            && all
                .stderr
                .contains("2 steps did not run (skipped): after, later\n")
            && !all.stderr.contains("after: printed nothing"),
        "{}",
        all.stderr
    );
}
