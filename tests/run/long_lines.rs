//! Long output lines (issue 19, guarantees 7 and 10): `fail_on`, `progress` and
//! `ready = { log }` see every byte of a line, however long, in bounded memory; `\r` ends a
//! line; any byte counts as activity for `stall_timeout`.
//!
//! The lines are made by a real process (`head -c | tr`) into files the steps `cat`, with
//! the marker at the very end of the line (the worst case). The runs with a 100 MB line
//! are measured: bgflow's peak RSS (`wait4` of a python3 parent) must stay under
//! `MEMORY_BOUND`, a bound on correctness (flat memory), not a speed target.

use super::*;

/// 5 KB, 1 MB and 100 MB lines.
const SIZES: [(&str, u64); 3] = [("l5k", 5_000), ("l1m", 1_000_000), ("l100m", 100_000_000)];

/// Peak RSS allowed to bgflow while a step prints a 100 MB line.
const MEMORY_BOUND_KIB: u64 = 64 * 1024;

/// `sh mk.sh`: writes each of `SIZES` as one line of that many bytes (the newline not
/// counted), `x`s then `marker` (which holds no `'`).
fn mk_sh(marker: &str) -> String {
    let mut sh = format!("set -e\nm='{marker}'\n");
    for (name, len) in SIZES {
        sh.push_str(&format!(
            "head -c $(({len} - ${{#m}})) /dev/zero | tr '\\0' x > {name}\nprintf '%s\\n' \"$m\" >> {name}\n"
        ));
    }
    sh
}

/// Runs bgflow under a python3 parent that reports bgflow's peak RSS from wait4(2).
const MAXRSS_PY: &str = r#"import os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
sys.stderr.write("bgflow-maxrss-kib=%d\n" % usage.ru_maxrss)
sys.exit(os.waitstatus_to_exitcode(status))
"#;

/// Runs the flow under `MAXRSS_PY` and checks bgflow's peak RSS against the bound.
fn run_measured(flow: &Flow) -> Outcome {
    let out = flow
        .start_via(&["python3", "-c", MAXRSS_PY], &["-j", "4"], &[])
        .finish();
    let kib: u64 = out
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("bgflow-maxrss-kib="))
        .unwrap_or_else(|| panic!("no peak RSS reported; stderr:\n{}", out.stderr))
        .parse()
        .expect("a number");
    assert!(
        kib < MEMORY_BOUND_KIB,
        "bgflow's peak RSS was {kib} KiB with a 100 MB line (bound {MEMORY_BOUND_KIB} KiB)"
    );
    eprintln!("bgflow's peak RSS with a 100 MB line: {kib} KiB");
    out
}

/// Each step's log holds every byte of its line.
#[track_caller]
fn expect_whole_logs(out: &Outcome) {
    for (name, len) in SIZES {
        let size =
            std::fs::metadata(out.log_dir().join(format!("{name}.log"))).map_or(0, |m| m.len());
        assert_eq!(size, len + 1, "{name}.log holds every byte of the line");
    }
}

/// A workflow: a step `lines` making the lines, then one step per size, `STEP` (a TOML
/// body with `{name}` for the size's file).
fn long_line_flow(workflow: &str, marker: &str, step: &str) -> Flow {
    let mut manifest =
        format!("[workflow]\nname = \"{workflow}\"\nfail_fast = false\n\n[steps.lines]\nrun = \"sh mk.sh\"\n");
    for (name, _) in SIZES {
        manifest.push_str(&format!(
            "\n[steps.{name}]\nneeds = [\"lines\"]\n{}\n",
            step.replace("{name}", name)
        ));
    }
    let flow = Flow::new(&manifest);
    flow.write("mk.sh", &mk_sh(marker));
    flow
}

#[test]
fn fail_on_sees_a_match_at_the_end_of_a_5kb_1mb_and_100mb_line() {
    let flow = long_line_flow(
        "long-fail-on",
        "FATAL: disk on fire",
        "run = \"cat {name}\"\nfail_on = ['FATAL: \\w+']",
    );
    let out = run_measured(&flow);
    out.expect_code(1);
    for (name, _) in SIZES {
        out.expect_state(name, "failed");
        let reason = out.reason(name);
        assert!(
            reason.contains("output matched fail_on pattern `FATAL: \\w+`")
                && reason.contains("xxxFATAL: disk on fire"),
            "{name}: {reason}"
        );
        assert!(
            reason.len() < 1200,
            "{name}: the line is shown cut, not whole"
        );
        // The failure report's last lines show the end of the long line.
        let last = out.step(name)["last_lines"].as_array().expect("last_lines");
        let shown = last.last().and_then(|l| l.as_str()).unwrap_or("");
        assert!(
            shown.ends_with("xxxFATAL: disk on fire") && shown.len() < 1100,
            "{name}: last line {shown:?}"
        );
    }
    expect_whole_logs(&out);
}

#[test]
fn progress_sees_a_match_at_the_end_of_a_5kb_1mb_and_100mb_line() {
    let flow = long_line_flow(
        "long-progress",
        "7/9: at the end",
        "run = \"cat {name}\"\nprogress = '(?P<current>\\d+)/(?P<total>\\d+): (?P<message>.*)$'",
    );
    let out = run_measured(&flow);
    out.expect_code(0);
    for (name, _) in SIZES {
        assert_eq!(
            out.step(name)["progress"],
            serde_json::json!({"current": 7, "total": 9, "message": "at the end"}),
            "{name}"
        );
    }
    expect_whole_logs(&out);
}

#[test]
fn ready_log_sees_a_match_at_the_end_of_a_5kb_1mb_and_100mb_line() {
    // A JSON log line: a long field, then the status the probe waits for.
    let flow = long_line_flow(
        "long-ready",
        "\", \"status\": \"ready\"}",
        "kind = \"service\"\nrun = \"cat {name}; exec sleep 353\"\nready = { log = '\"status\": \"ready\"\\}$', timeout = \"30s\" }",
    );
    // A step that needs the three services runs only if each became ready.
    let manifest = flow.read("bgflow.toml")
        + "\n[steps.after]\nneeds = [\"l5k\", \"l1m\", \"l100m\"]\nrun = \"echo all ready\"\n";
    flow.write("bgflow.toml", &manifest);
    let out = run_measured(&flow);
    out.expect_code(0);
    out.expect_state("after", "succeeded");
    for (name, _) in SIZES {
        out.expect_state(name, "succeeded");
    }
    expect_whole_logs(&out);
    assert_no_process("sleep 353");
}

/// Issue 19: "Only the first 4,096 bytes of a line are seen": `fail_on = ['FATAL']` missed
/// `FATAL` at byte 5,000 of a line, a `\r`-drawn progress bar stayed at its first frame,
/// and a `ready = { log }` on a long JSON line never passed.
#[test]
fn only_the_first_4096_bytes_of_a_line_are_seen() {
    let flow = Flow::new(
        r#"
[workflow]
name = "first-4096"
fail_fast = false

[steps.fatal]
run = "python3 -c \"print('x' * 5000 + 'FATAL' + 'y' * 3000)\""
fail_on = ['FATAL']

[steps.bar]
run = "python3 -c \"import sys; [sys.stdout.write('\\r%3d%%|' % p + '#' * (p // 10)) for p in range(0, 101, 10)]; print()\""
progress = '(?P<percent>\d+)%\|'

[steps.json]
kind = "service"
run = "python3 -c \"import json; print(json.dumps({'pad': 'p' * 6000, 'event': 'listening'}), flush=True)\"; exec sleep 354"
ready = { log = '"event": "listening"', timeout = "20s" }

[steps.client]
needs = ["json"]
run = "true"
"#,
    );
    let out = flow.run(&["-j", "4"]);
    out.expect_code(1);
    out.expect_state("fatal", "failed");
    assert!(
        out.reason("fatal")
            .contains("output matched fail_on pattern `FATAL`"),
        "{}",
        out.reason("fatal")
    );
    out.expect_state("bar", "succeeded");
    assert_eq!(
        out.step("bar")["progress"],
        serde_json::json!({"percent": 100.0})
    );
    out.expect_state("json", "succeeded");
    out.expect_state("client", "succeeded");
    assert_no_process("sleep 354");
}

/// `\r` ends a progress line: a bar's frame is seen while the bar waits at it (before the
/// next `\r`), the last frame wins, and the failure report shows a redrawn line's last
/// frame. (Plain lines show progress at most every 3 s, so the history is asked.)
#[test]
fn a_carriage_return_ends_a_progress_line_and_the_last_frame_wins() {
    let flow = Flow::new(
        r#"
[workflow]
name = "frames"

[steps.bar]
run = "printf '\r 10%%|#'; printf '\r 40%%|####'; sh wait.sh go; printf '\r 70%%|#######'; sh wait.sh go2; printf '\r100%%|##########\n'; exit 3"
progress = '(?P<percent>\d+)%\|'
"#,
    );
    let running = flow.start(&[]);
    running.wait_for_stderr("progress bar: 40%");
    let text = running.stderr();
    let id = text
        .lines()
        .find_map(|l| l.split_once("run ")?.1.split_once(": workflow frames"))
        .map(|(id, _)| id.to_owned())
        .unwrap_or_else(|| panic!("a run id in:\n{text}"));
    flow.write("go", "");
    wait_until(SOON, "the history to show the bar at 70%", || {
        let out = Command::new(BIN)
            .args(["status", &id, "--json"])
            .current_dir(flow.path())
            .env_remove("BGFLOW_STATE_DIR")
            .env_remove("BGFLOW_CONFIG")
            .output()
            .expect("bgflow status");
        serde_json::from_slice::<Value>(&out.stdout).is_ok_and(|v| has_percent(&v, 70.0))
    });
    flow.write("go2", "");
    let out = running.finish();
    out.expect_code(1);
    assert_eq!(
        out.step("bar")["progress"],
        serde_json::json!({"percent": 100.0})
    );
    let last = out.step("bar")["last_lines"]
        .as_array()
        .expect("last_lines");
    assert_eq!(
        last.last().and_then(|l| l.as_str()),
        Some("100%|##########"),
        "the last frame of the redrawn line"
    );
}

/// Whether some field named `*percent*` in `v` holds `percent`.
fn has_percent(v: &Value, percent: f64) -> bool {
    match v {
        Value::Object(map) => map.iter().any(|(k, x)| {
            (k.contains("percent") && x.as_f64() == Some(percent)) || has_percent(x, percent)
        }),
        Value::Array(items) => items.iter().any(|x| has_percent(x, percent)),
        _ => false,
    }
}

/// `stall_timeout`: every byte counts as activity, even inside a line that never ends,
/// whether or not the step has output patterns; a step that goes quiet mid-line stalls.
#[test]
fn stall_timeout_counts_every_byte_of_a_line_that_never_ends() {
    let flow = Flow::new(
        r#"
[workflow]
name = "endless-line"
fail_fast = false

[steps.plain]
run = "i=0; while [ $i -lt 25 ]; do printf x; sleep 0.1; i=$((i+1)); done"
stall_timeout = "1s"

[steps.matched]
run = "i=0; while [ $i -lt 25 ]; do printf x; sleep 0.1; i=$((i+1)); done"
stall_timeout = "1s"
fail_on = ['FATAL']

[steps.quiet]
run = "printf 'half a line'; sleep 355"
stall_timeout = "1s"
kill_grace = "200ms"
"#,
    );
    let out = flow.run(&["-j", "3"]);
    out.expect_code(1);
    out.expect_state("plain", "succeeded");
    out.expect_state("matched", "succeeded");
    out.expect_state("quiet", "stalled");
    assert_eq!(out.log("plain"), "x".repeat(25));
    assert_no_process("sleep 355");
}
