//! Matrix instances run as steps of their own (issue 20, DESIGN.md §8): each with its
//! values, its own log file, its own up-to-date check and resume; `needs` of the matrix step
//! waits for all of them; `--only` takes the step (every instance), one instance, or a
//! pattern (`test[*,fast]`).

use super::*;

const TWO_BY_TWO: &str = r#"
[workflow]
name = "matrix"

[steps.test]
matrix = { python = ["3.11", "3.12"], mode = ["fast", "slow"], exclude = [{ python = "3.11", mode = "slow" }] }
run = "echo python={{ matrix.python }}; echo mode={{ matrix.mode }}; echo {{ matrix.python }}-{{ matrix.mode }} > r/{{ matrix.python }}-{{ matrix.mode }}.txt"
outputs = ["r/{{ matrix.python }}-{{ matrix.mode }}.txt"]

[steps.report]
needs = ["test"]
run = "ls r > report.txt"
outputs = ["report.txt"]
"#;

#[test]
fn a_two_by_two_matrix_with_an_exclude_runs_three_instances_each_with_its_values() {
    let flow = Flow::new(TWO_BY_TWO);
    std::fs::create_dir_all(flow.path().join("r")).expect("mkdir");
    let out = flow.run(&[]);
    out.expect_code(0);
    let instances = ["test[3.11,fast]", "test[3.12,fast]", "test[3.12,slow]"];
    for name in instances {
        out.expect_state(name, "succeeded");
        let (python, mode) = name[5..name.len() - 1].split_once(',').expect("two values");
        let log = std::fs::read_to_string(out.step(name)["log"].as_str().expect("a log path"))
            .expect("the instance's log");
        assert_eq!(log_field(&log, "python"), python);
        assert_eq!(log_field(&log, "mode"), mode);
        assert_eq!(
            flow.read(&format!("r/{python}-{mode}.txt")),
            format!("{python}-{mode}\n")
        );
    }
    assert!(
        !flow.exists("r/3.11-slow.txt"),
        "the excluded combination ran"
    );
    assert_eq!(out.summary()["steps"].as_array().expect("steps").len(), 4);
    // `needs = ["test"]` waited for every instance: it saw all three results.
    out.expect_state("report", "succeeded");
    assert_eq!(
        flow.read("report.txt"),
        "3.11-fast.txt\n3.12-fast.txt\n3.12-slow.txt\n"
    );
}

const FAN_OUT: &str = r#"
[workflow]
name = "fan"

[steps.count]
matrix = { csv = { glob = "data/*.csv" } }
run = "mkdir -p out && wc -l < {{ matrix.csv }} > out/{{ matrix.csv | stem }}.n && echo counted {{ matrix.csv | basename }}"
inputs = ["{{ matrix.csv }}"]
outputs = ["out/{{ matrix.csv | stem }}.n"]

[steps.total]
inputs = ["out/*.n"]
run = "python3 -c 'import glob; print(sum(int(open(f).read()) for f in glob.glob(\"out/*.n\")))' > total.txt"
outputs = ["total.txt"]
"#;

fn fan_out() -> Flow {
    let flow = Flow::new(FAN_OUT);
    flow.write("data/a.csv", "1\n");
    flow.write("data/b.csv", "1\n2\n");
    flow.write("data/c.csv", "1\n2\n3\n");
    flow
}

#[test]
fn a_glob_fan_out_over_three_files_feeds_one_reducer_that_sees_every_output() {
    let flow = fan_out();
    let out = flow.run(&[]);
    out.expect_code(0);
    for f in ["a", "b", "c"] {
        let name = format!("count[data/{f}.csv]");
        out.expect_state(&name, "succeeded");
        let log = out.step(&name)["log"]
            .as_str()
            .expect("a log path")
            .to_owned();
        // A `/` of a value cannot be in a file name: the instance's log is escaped.
        assert!(
            log.ends_with(&format!("count[data%2F{f}.csv].log")),
            "{log}"
        );
        assert_eq!(
            std::fs::read_to_string(&log).expect("log"),
            format!("counted {f}.csv\n")
        );
    }
    out.expect_state("total", "succeeded");
    assert_eq!(flow.read("total.txt").trim(), "6");
    // The reducer started after the last instance finished.
    let ended = |n: &str| out.step(n)["finished_at"].as_str().expect("end").to_owned();
    let started = out.step("total")["started_at"]
        .as_str()
        .expect("start")
        .to_owned();
    for f in ["a", "b", "c"] {
        assert!(ended(&format!("count[data/{f}.csv]")) <= started);
    }
    // `logs` and `status` take an instance's name.
    let run = out.summary()["run_id"].as_str().expect("run id").to_owned();
    let bgflow = |args: &[&str]| {
        Command::new(BIN)
            .current_dir(flow.path())
            .args(args)
            .output()
            .expect("bgflow")
    };
    let logs = bgflow(&["logs", &run, "count[data/b.csv]"]);
    assert!(logs.status.success());
    assert_eq!(String::from_utf8_lossy(&logs.stdout), "counted b.csv\n");
    // The matrix step's own name is every instance, each line marked with its instance;
    // a misspelling is told the name.
    let logs = bgflow(&["logs", &run, "count"]);
    assert!(logs.status.success());
    assert_eq!(
        String::from_utf8_lossy(&logs.stdout),
        "count[data/a.csv] | counted a.csv\ncount[data/b.csv] | counted b.csv\ncount[data/c.csv] | counted c.csv\n"
    );
    let typo = bgflow(&["logs", &run, "cont"]);
    assert_eq!(typo.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&typo.stderr).contains("has no step `cont` (did you mean `count`?"),
        "{}",
        String::from_utf8_lossy(&typo.stderr)
    );
    let status = bgflow(&["status", &run, "--json"]);
    assert!(status.status.success());
    assert!(String::from_utf8_lossy(&status.stdout).contains("count[data/c.csv]"));
}

#[test]
fn only_an_instance_runs_that_instance_alone_and_only_the_step_runs_them_all() {
    let flow = Flow::new(TWO_BY_TWO);
    std::fs::create_dir_all(flow.path().join("r")).expect("mkdir");
    let one = flow.run(&["--only", "test[3.12,slow]"]);
    one.expect_code(0)
        .expect_state("test[3.12,slow]", "succeeded");
    assert_eq!(one.summary()["steps"].as_array().expect("steps").len(), 1);
    assert!(flow.exists("r/3.12-slow.txt") && !flow.exists("r/3.11-fast.txt"));
    let all = flow.run(&["--only", "test"]);
    all.expect_code(0)
        .expect_state("test[3.11,fast]", "succeeded")
        .expect_state("test[3.12,fast]", "succeeded")
        .expect_state("test[3.12,slow]", "skipped");
    assert_eq!(all.summary()["steps"].as_array().expect("steps").len(), 3);
    let bad = flow.run(&["--only", "test[3.13,fast]"]);
    bad.expect_code(2);
    assert!(
        bad.stderr.contains("--only test[3.13,fast]: no such step"),
        "{}",
        bad.stderr
    );
    // A misspelt matrix step is told the name that selects its instances.
    let typo = flow.run(&["--only", "tst"]);
    typo.expect_code(2);
    assert!(
        typo.stderr
            .contains("--only tst: no such step (did you mean `test`?)"),
        "{}",
        typo.stderr
    );
}

/// Seen on msgpack 1.1.0 (a test matrix `impl` × 17 files): to run the C build's tests
/// alone took 17 `--only` flags; `--only 'test[c,*]'` was "no such step". A name holding
/// `*` or `?` is a pattern over whole step and instance names.
#[test]
fn only_a_pattern_runs_the_instances_it_matches() {
    let flow = Flow::new(TWO_BY_TWO);
    std::fs::create_dir_all(flow.path().join("r")).expect("mkdir");
    let fast = flow.run(&["--only", "test[*,fast]"]);
    fast.expect_code(0)
        .expect_state("test[3.11,fast]", "succeeded")
        .expect_state("test[3.12,fast]", "succeeded");
    assert_eq!(fast.summary()["steps"].as_array().expect("steps").len(), 2);
    assert!(!flow.exists("r/3.12-slow.txt") && !flow.exists("report.txt"));
    let one = flow.run(&["--only", "test[3.1?,slow]", "--only", "rep*"]);
    one.expect_code(0)
        .expect_state("test[3.12,slow]", "succeeded")
        .expect_state("report", "succeeded");
    assert!(flow.exists("r/3.12-slow.txt") && flow.exists("report.txt"));
    let none = flow.run(&["--only", "test[3.13,*]"]);
    none.expect_code(2);
    assert!(
        none.stderr
            .contains("--only test[3.13,*]: no step's name matches this pattern"),
        "{}",
        none.stderr
    );
}

/// Up-to-date and resume work per instance: fingerprints are keyed by the instance name.
#[test]
fn resume_keeps_the_instances_that_succeeded_and_reruns_the_failed_one() {
    let flow = Flow::new(
        r#"
[workflow]
name = "per-instance"
fail_fast = false

[steps.make]
matrix = { v = ["a", "b", "c"] }
run = "echo ran >> runs-{{ matrix.v }}; if [ {{ matrix.v }} = b ] && [ ! -f fixed ]; then echo not fixed; exit 1; fi; echo {{ matrix.v }} > out-{{ matrix.v }}"
outputs = ["out-{{ matrix.v }}"]
"#,
    );
    let first = flow.run(&[]);
    first
        .expect_code(1)
        .expect_state("make[a]", "succeeded")
        .expect_state("make[b]", "failed")
        .expect_state("make[c]", "succeeded");
    // An instance's log path holds `[`: it is printed quoted, to paste into any shell
    // (zsh refuses an unquoted `[…]` that matches no file).
    let log = first.log_dir().join("make[b].log");
    assert!(
        first
            .stderr
            .contains(&format!("  log: '{}'\n", log.display())),
        "{}",
        first.stderr
    );
    let run = first.summary()["run_id"]
        .as_str()
        .expect("run id")
        .to_owned();
    flow.write("fixed", "");
    let resumed = flow
        .start_raw(
            &["--color", "never", "resume", &run, "--progress", "never"],
            &[],
        )
        .finish();
    resumed.expect_code(0).expect_state("make[b]", "succeeded");
    for v in ["a", "c"] {
        assert_eq!(
            flow.read(&format!("runs-{v}")).lines().count(),
            1,
            "make[{v}] ran again"
        );
    }
    assert_eq!(flow.read("runs-b").lines().count(), 2);
    // A later run finds every instance up to date; a changed output reruns that one alone.
    let again = flow.run(&[]);
    again.expect_code(0);
    for v in ["a", "b", "c"] {
        again.expect_state(&format!("make[{v}]"), "skipped");
    }
    std::fs::remove_file(flow.path().join("out-c")).expect("rm");
    let third = flow.run(&[]);
    third
        .expect_code(0)
        .expect_state("make[a]", "skipped")
        .expect_state("make[c]", "succeeded");
    assert_eq!(flow.read("runs-c").lines().count(), 2);
}
