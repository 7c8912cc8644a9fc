//! Guarantee 12: `plan` is bounded and discreet. Hostile manifests are answered with the
//! right diagnostics (each test gives bgflow a generous deadline, so a hang fails instead of
//! blocking the suite; the figures are measured by scripts/bench-plan.sh), and `plan` never
//! prints a value of the caller's environment.

use std::fmt::Write as _;
use std::process::Stdio;
use std::time::{Duration, Instant};

use super::*;

/// Far above what any of these takes, even in a debug build on a busy machine: it only
/// proves that bgflow ends.
const DEADLINE: Duration = Duration::from_secs(120);

/// Runs `bgflow --color never ARGS` in the test's folder and kills it at `DEADLINE`.
fn within_deadline(test: &Test, args: &[&str], status: i32) -> (String, String) {
    let mut child = std::process::Command::new(BIN)
        .current_dir(test.path())
        .args(["--color", "never"])
        .args(args)
        .env_remove("BGFLOW_STATE_DIR")
        .env_remove("BGFLOW_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bgflow starts");
    // Read both pipes on threads, so that a large output cannot block bgflow.
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut s).map(|_| s)
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut s).map(|_| s)
    });
    let start = Instant::now();
    let code = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st.code();
        }
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("bgflow {args:?} did not end within {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = out.join().expect("reader").expect("UTF-8 stdout");
    let stderr = err.join().expect("reader").expect("UTF-8 stderr");
    assert_eq!(code, Some(status), "bgflow {args:?}\n--- stderr\n{stderr}");
    (stdout, stderr)
}

fn workflow(steps: impl Fn(&mut String, usize), n: usize) -> String {
    let mut text = String::from("[workflow]\nname = \"hostile\"\n\n");
    for i in 0..n {
        steps(&mut text, i);
    }
    text
}

fn problems(json: &str) -> Vec<Value> {
    let doc: Value = serde_json::from_str(json).expect("one JSON document");
    doc["files"][0]["problems"]
        .as_array()
        .expect("problems")
        .clone()
}

#[test]
fn plan_can_hang_or_balloon_nested_loops_stop_at_their_fuel() {
    let test = Test::manifest(
        "[workflow]\nname = \"w\"\n\n[steps.a]\nrun = \"echo {% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}\"\n",
    );
    let (_, stderr) = within_deadline(&test, &["plan", "bgflow.toml"], INVALID);
    assert!(
        stderr.contains("this template takes more than 100000 steps to render"),
        "{stderr}"
    );
    assert!(stderr.contains("bgflow.toml:5:"), "{stderr}");
}

#[test]
fn plan_can_hang_or_balloon_a_10kb_variable_in_a_loop_stops_at_the_output_cap() {
    let big = "a".repeat(10 * 1024);
    let test = Test::manifest(&format!(
        "[workflow]\nname = \"w\"\n\n[vars]\nbig = \"{big}\"\n\n[steps.a]\nrun = \"echo {{% for i in range(100000) %}}{{{{ vars.big }}}}{{% endfor %}}\"\n"
    ));
    let (_, stderr) = within_deadline(&test, &["plan", "bgflow.toml"], INVALID);
    assert!(
        stderr.contains("this template renders more than 128 KiB"),
        "{stderr}"
    );
    assert!(stderr.contains("bgflow.toml:8:"), "{stderr}");
}

#[test]
fn plan_can_hang_or_balloon_repetition_and_statements_that_grow_are_refused() {
    for (run, message) in [
        (
            "{{ vars.big * 9000 }}",
            "`*` is not available in bgflow templates",
        ),
        (
            "{% set a = vars.big ~ vars.big %}{{ a }}",
            "`{% set %}` is not available in bgflow templates",
        ),
        (
            "{{ vars.big|replace('a', vars.big)|replace('a', vars.big) }}",
            "the result of `replace` would be larger than 64 MB",
        ),
        (
            "{{ range(100000)|join(vars.big) }}",
            "the result of `join` would be larger than 64 MB",
        ),
        ("{{ range(3)|map('string')|join }}", "filter map is unknown"),
    ] {
        let big = "a".repeat(10 * 1024);
        let test = Test::manifest(&format!(
            "[workflow]\nname = \"w\"\n\n[vars]\nbig = \"{big}\"\n\n[steps.a]\nrun = \"echo {run}\"\n"
        ));
        let (_, stderr) = within_deadline(&test, &["plan", "--offline", "bgflow.toml"], INVALID);
        assert!(stderr.contains(message), "{run}: {stderr}");
        assert!(stderr.contains("bgflow.toml:8:"), "{run}: {stderr}");
    }
}

#[test]
fn plan_can_hang_or_balloon_a_cycle_through_10000_steps_is_one_line() {
    let n = 10_000;
    let test = Test::manifest(&workflow(
        |t, i| {
            let _ = write!(
                t,
                "[steps.s{i}]\nrun = \"true\"\nneeds = [\"s{}\"]\n\n",
                (i + 1) % n
            );
        },
        n,
    ));
    let (_, stderr) = within_deadline(&test, &["plan", "--offline", "bgflow.toml"], INVALID);
    let cycle = stderr
        .lines()
        .find(|l| l.contains("dependency cycle"))
        .unwrap_or_else(|| panic!("no cycle:\n{stderr}"));
    assert!(cycle.contains("… 9994 more …"), "{cycle}");
    assert!(cycle.ends_with("(10000 steps)"), "{cycle}");
    assert!(
        stderr.lines().count() < 100,
        "{} lines",
        stderr.lines().count()
    );
    let (json, _) = within_deadline(
        &test,
        &["plan", "--offline", "--json", "bgflow.toml"],
        INVALID,
    );
    let found = problems(&json);
    assert_eq!(found.len(), 1, "{json}");
    assert_eq!(found[0]["code"], "cycle");
}

#[test]
fn plan_can_hang_or_balloon_10000_unknown_needs_draw_50_then_a_count() {
    let n = 10_000;
    let test = Test::manifest(&workflow(
        |t, i| {
            let _ = write!(t, "[steps.s{i}]\nrun = \"true\"\nneeds = [\"nope{i}\"]\n\n");
        },
        n,
    ));
    let (_, stderr) = within_deadline(&test, &["plan", "--offline", "bgflow.toml"], INVALID);
    assert_eq!(stderr.matches("× step `").count(), 50, "{stderr}");
    assert!(
        stderr.contains("… and 9950 more problems in bgflow.toml (9950 errors, 0 warnings); `bgflow plan --json` lists them all"),
        "{stderr}"
    );
    // The list of steps in a help line is cut too.
    assert!(stderr.contains("… and 9990 more"), "{stderr}");
    assert!(stderr.len() < 64 * 1024, "{} bytes of stderr", stderr.len());
    assert!(stderr.contains("10000 errors, 0 warnings; nothing ran"));
    let (json, _) = within_deadline(
        &test,
        &["plan", "--offline", "--json", "bgflow.toml"],
        INVALID,
    );
    let found = problems(&json);
    assert_eq!(found.len(), n);
    // Placed through the line index: the last one is on the file's last step.
    assert_eq!(found[n - 1]["line"], 4 * n as u64 + 2, "{}", found[n - 1]);
    assert_eq!(found[n - 1]["column"], 10);
}

#[test]
fn plan_can_hang_or_balloon_10000_misspelt_keys_draw_50_then_a_count() {
    let n = 10_000;
    let test = Test::manifest(&workflow(
        |t, i| {
            let _ = write!(t, "[steps.s{i}]\nrun = \"true\"\ntimout = \"1s\"\n\n");
        },
        n,
    ));
    let (_, stderr) = within_deadline(&test, &["plan", "--offline", "bgflow.toml"], INVALID);
    assert_eq!(stderr.matches("did you mean `timeout`?").count(), 50);
    assert!(stderr.contains("… and 9950 more problems"), "{stderr}");
    let (json, _) = within_deadline(
        &test,
        &["plan", "--offline", "--json", "bgflow.toml"],
        INVALID,
    );
    assert_eq!(problems(&json).len(), n);
}

#[test]
fn plan_can_hang_or_balloon_10000_globs_each_side_are_matched_at_once() {
    // A chain: each step reads, through a glob and a literal path, what the one before
    // makes through a literal path and a glob.
    let n = 10_000;
    let test = Test::manifest(&workflow(
        |t, i| {
            let _ = write!(
                t,
                "[steps.s{i}]\nrun = \"true\"\noutputs = [\"x/o{i}.txt\", \"y/*.o{i}\"]\n"
            );
            if i > 0 {
                let p = i - 1;
                let _ = writeln!(t, "inputs = [\"x/o{p}.t?t\", \"y/in.o{p}\"]");
            }
            t.push('\n');
        },
        n,
    ));
    let (json, _) = within_deadline(&test, &["plan", "--offline", "--json", "bgflow.toml"], OK);
    let doc: Value = serde_json::from_str(&json).expect("JSON");
    let steps = doc["files"][0]["plan"]["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), n);
    let last = &steps[n - 1];
    assert_eq!(last["name"], "s9999");
    assert_eq!(last["upstream"], serde_json::json!(["s9998"]));
    assert_eq!(last["inputs"][0]["made_by"], serde_json::json!(["s9998"]));
    assert_eq!(last["inputs"][1]["made_by"], serde_json::json!(["s9998"]));
}

const SECRET: &str = "hunter2-do-not-print";

#[test]
fn plan_prints_secrets_not_a_value_of_the_callers_environment() {
    let test = Test::manifest(
        "[workflow]\nname = \"w\"\n\n[steps.a]\nrun = \"echo {{ env.BGFLOW_TEST_SECRET }} > seen.txt\"\noutputs = [\"seen.txt\"]\ncwd = \"{{ env.BGFLOW_TEST_DIR }}\"\n",
    )
    .folder("d")
    .env("BGFLOW_TEST_SECRET", SECRET)
    .env("BGFLOW_TEST_DIR", "d");
    let human = test.args(["plan", "bgflow.toml"]).run();
    human.stdout_has("$ echo '<env:BGFLOW_TEST_SECRET>' > seen.txt");
    human.stdout_has("cwd    ");
    human.stdout_has("<env:BGFLOW_TEST_DIR>");
    assert!(!human.stdout.contains(SECRET) && !human.stderr.contains(SECRET));
    let json = Test::manifest(
        "[workflow]\nname = \"w\"\n\n[steps.a]\nrun = [\"echo\", \"{{ env.BGFLOW_TEST_SECRET }}\"]\n",
    )
    .env("BGFLOW_TEST_SECRET", SECRET)
    .args(["plan", "--json", "bgflow.toml"])
    .run();
    assert!(!json.stdout.contains(SECRET), "{}", json.stdout);
    assert_eq!(
        json.json()["files"][0]["plan"]["steps"][0]["command"]["argv"][1],
        "<env:BGFLOW_TEST_SECRET>"
    );
}

#[test]
fn plan_prints_secrets_not_with_the_whole_environment_or_debug() {
    for (run, message) in [
        (
            "echo {{ env }}",
            "the caller's environment is reachable only one name at a time, as `env.NAME`",
        ),
        ("echo {{ debug() }}", "debug is unknown"),
        ("echo {{ env|pprint }}", "filter pprint is unknown"),
        ("echo {% for k in env %}{{ k }}{% endfor %}", "not iterable"),
        ("echo {{ env|items }}", "cannot convert value into pairs"),
        ("echo {{ env|dictsort }}", "invalid template"),
        (
            "echo {{ [env]|first }}",
            "reachable only one name at a time",
        ),
    ] {
        let out = Test::manifest(&format!(
            "[workflow]\nname = \"w\"\n\n[steps.a]\nrun = \"{run}\"\n"
        ))
        .env("BGFLOW_TEST_SECRET", SECRET)
        .args(["plan", "bgflow.toml"])
        .status(INVALID)
        .run();
        assert!(out.stderr.contains(message), "{run}: {}", out.stderr);
        assert!(!out.stderr.contains(SECRET), "{run}: {}", out.stderr);
        assert_eq!(out.stdout, "");
    }
}

#[test]
fn plan_prints_secrets_yet_the_step_sees_the_real_value() {
    let out = Test::manifest(
        "[workflow]\nname = \"w\"\n\n[steps.a]\nrun = \"echo {{ env.BGFLOW_TEST_SECRET }} > seen.txt\"\noutputs = [\"seen.txt\"]\n",
    )
    .env("BGFLOW_TEST_SECRET", SECRET)
    .args(["run", "--progress", "never", "bgflow.toml"])
    .run();
    let seen = std::fs::read_to_string(out.path().join("seen.txt")).expect("seen.txt");
    assert_eq!(seen.trim(), SECRET);
}

#[test]
fn plan_prints_secrets_not_in_diagnostics_either() {
    let out = Test::manifest(
        "[workflow]\nname = \"w\"\n\n[steps.a]\nkind = \"service\"\nrun = \"{{ env.BGFLOW_TEST_SECRET }} --flag\"\ncwd = \"{{ env.BGFLOW_TEST_SECRET }}\"\nready = { http = \"{{ env.BGFLOW_TEST_SECRET }}\" }\n\n[steps.b]\nrun = [\"{{ env.BGFLOW_TEST_SECRET }}\"]\n",
    )
    .env("BGFLOW_TEST_SECRET", SECRET)
    .args(["plan", "bgflow.toml"])
    .status(INVALID)
    .run();
    out.stderr_has("the program of step `a` (from the caller's environment)")
        .stderr_has("the program of step `b` (from the caller's environment)")
        .stderr_has("working folder")
        .stderr_has("`http` probe `{{ env.BGFLOW_TEST_SECRET }}` is not an http:// URL");
    assert!(!out.stderr.contains(SECRET), "{}", out.stderr);
    let json = Test::manifest(
        "[workflow]\nname = \"w\"\n\n[steps.a]\nrun = \"{{ env.BGFLOW_TEST_SECRET }} --flag\"\n",
    )
    .env("BGFLOW_TEST_SECRET", SECRET)
    .args(["plan", "--json", "bgflow.toml"])
    .status(INVALID)
    .run();
    assert!(!json.stdout.contains(SECRET), "{}", json.stdout);
}
