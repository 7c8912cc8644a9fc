//! Runs from start to end: the store on disk, detached runs under load, `start`, a lost
//! supervisor, `stop` and `resume`.

use super::*;

/// A workflow of three short steps, `a`, then `b` and `c` in parallel; they print lines and
/// `a` and `c` report progress, so every kind of write reaches the history.
const SMALL: &str = r#"
[workflow]
name = "small"

[steps.a]
run = "echo '1/2 first' >> \"$BGFLOW_PROGRESS\"; echo a; sleep 0.05; echo '2/2 done' >> \"$BGFLOW_PROGRESS\""

[steps.b]
needs = ["a"]
run = "echo b1; sleep 0.1; echo b2"

[steps.c]
needs = ["a"]
run = "echo 50 half >> \"$BGFLOW_PROGRESS\"; echo c"
"#;

#[test]
fn the_store_is_private_and_records_foreground_runs() {
    let home = Home::new();
    home.write(
        "flow/ok.toml",
        "[workflow]\nname = \"fine\"\n\n[steps.hello]\nrun = \"echo hello\"\n",
    );
    home.write(
        "flow/bad.toml",
        "[workflow]\nname = \"broken\"\n\n[steps.boom]\nrun = \"echo boom; exit 5\"\n",
    );
    // No --state-dir: the state folder is .bgflow/ in the workflow's root.
    output(home.bare(&["run", "flow/ok.toml", "--progress", "never"])).expect(0);
    let bad = output(home.bare(&["run", "flow/bad.toml", "--progress", "never"])).expect(1);
    assert!(bad.stderr.contains("boom"), "{}", bad.stderr);

    let state = home.path().join("flow/.bgflow");
    assert!(
        state.join("bgflow.db").is_file(),
        "no {}/bgflow.db",
        state.display()
    );
    assert_eq!(mode(&state), 0o700, "the state folder is private");
    assert_eq!(mode(&state.join("bgflow.db")), 0o600);
    // The latest writes stay in the WAL beside it (closing copies nothing into bgflow.db
    // and deletes nothing), as private as the database; the reads below go through it.
    let wal = state.join("bgflow.db-wal");
    assert!(wal.is_file(), "no {} after the runs", wal.display());
    assert_eq!(mode(&wal), 0o600);

    // Reading commands find it by searching upward from the current folder.
    std::fs::create_dir_all(home.path().join("flow/deep/er")).expect("mkdir");
    let mut list = home.bare(&["list", "--json"]);
    list.current_dir(home.path().join("flow/deep/er"));
    let runs = output(list).expect(0).json();
    let runs = runs["runs"].as_array().expect("runs").clone();
    assert_eq!(runs.len(), 2, "{runs:?}");
    // Newest first.
    assert_eq!(runs[0]["workflow"], "broken");
    assert_eq!(runs[0]["state"], "failed");
    assert_eq!(runs[0]["exit_code"], 1);
    assert_eq!(runs[0]["detached"], false);
    assert_eq!(runs[1]["workflow"], "fine");
    assert_eq!(runs[1]["state"], "succeeded");
    assert_eq!(runs[1]["exit_code"], 0);

    // Step logs are private too, and hold the output.
    for run in &runs {
        let id = run["id"].as_str().expect("id");
        let step = if run["workflow"] == "fine" {
            "hello"
        } else {
            "boom"
        };
        let log = state.join("runs").join(id).join(format!("{step}.log"));
        assert_eq!(mode(&log), 0o600, "{}", log.display());
        assert_eq!(
            std::fs::read_to_string(&log).expect("log"),
            format!("{step}\n")
        );
    }

    // The table names both, with their states.
    let mut table = home.bare(&["list"]);
    table.current_dir(home.path().join("flow/deep"));
    let table = output(table).expect(0).stdout;
    for run in &runs {
        let id = run["id"].as_str().expect("id");
        let line = table
            .lines()
            .find(|l| l.starts_with(id))
            .unwrap_or_else(|| panic!("{id} not listed:\n{table}"));
        assert!(
            line.contains(run["state"].as_str().expect("state")),
            "{line}"
        );
    }
}

#[test]
fn twenty_detached_runs_share_the_history_without_losing_a_row() {
    const RUNS: usize = 20;
    let home = Home::new();
    home.write("small.toml", SMALL);

    // Readers hammer the history while the runs start, run and end.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let stop = Arc::clone(&stop);
        let state = home.state();
        let cwd = home.path().to_path_buf();
        std::thread::spawn(move || {
            let mut outs = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                for args in [&["status"][..], &["list", "--json", "--limit", "50"][..]] {
                    let mut cmd = Command::new(BIN);
                    cmd.arg("--state-dir")
                        .arg(&state)
                        .args(args)
                        .current_dir(&cwd)
                        .stdin(Stdio::null());
                    outs.push((args.join(" "), output(cmd)));
                }
            }
            outs
        })
    };

    // All at once, into a history that does not exist yet.
    let starts: Vec<Child> = (0..RUNS)
        .map(|_| {
            home.cmd(&["run", "-d", "small.toml"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn run -d")
        })
        .collect();
    let ids: Vec<String> = starts
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().expect("run -d");
            let out = Out {
                code: out.status.code().unwrap_or(-1),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            };
            run_id_of(&out.expect(0))
        })
        .collect();
    assert_eq!(
        ids.iter().collect::<BTreeSet<_>>().len(),
        RUNS,
        "ids are unique"
    );

    let finals: Vec<Value> = ids.iter().map(|id| home.wait_done(id)).collect();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let reads = reader.join().expect("reader thread");

    let answered = reads.iter().filter(|(_, out)| out.code == 0).count();
    assert!(
        answered >= 4,
        "the readers read while the runs ran: {answered}"
    );
    for (what, out) in &reads {
        assert!(
            !out.stderr.contains("locked") && !out.stdout.contains("locked"),
            "`{what}`: {out:?}"
        );
        match out.code {
            0 if what.starts_with("list") => {
                let _ = out.json();
            }
            0 => {}
            // Only before the first run created the history.
            2 => assert!(out.stderr.contains("no run history"), "`{what}`: {out:?}"),
            _ => panic!("`{what}`: {out:?}"),
        }
    }
    for (id, s) in ids.iter().zip(&finals) {
        let run = &s["run"];
        assert_eq!(run["state"], "succeeded", "{s}");
        assert_eq!(run["steps_total"], 3, "{s}");
        assert_eq!(run["steps_done"], 3, "no lost step row: {s}");
        let steps = s["steps"].as_array().expect("steps");
        let names: Vec<&str> = steps.iter().filter_map(|st| st["name"].as_str()).collect();
        assert_eq!(names, ["a", "b", "c"], "{s}");
        for st in steps {
            assert_eq!(st["state"], "succeeded", "{s}");
            assert_eq!(st["attempts"], 1, "{s}");
            assert!(st["finished_at"].is_i64(), "{s}");
            // A step that starts and ends within one batch of writes keeps its pid.
            assert!(st["pid"].is_i64() && st["pgid"] == st["pid"], "{s}");
        }
        assert_eq!(step_of(s, "a")["progress_message"], "done", "{s}");
        let log = home.state().join("runs").join(id).join("supervisor.log");
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(
            !text.contains("locked") && !text.contains("error") && !text.contains("warning"),
            "{}:\n{text}",
            log.display()
        );
        let events = home.bgflow(&["events", id]).expect(0);
        let types = event_types(&events.stdout, id);
        assert_eq!(
            types.iter().filter(|t| *t == "step_finished").count(),
            3,
            "{types:?}"
        );
        assert_eq!(
            types.last().map(String::as_str),
            Some("run_finished"),
            "{types:?}"
        );
    }
    let all = home
        .bgflow(&["list", "--json", "--limit", "100"])
        .expect(0)
        .json();
    assert_eq!(all["runs"].as_array().map(Vec::len), Some(RUNS));
}

#[test]
fn detach_refuses_an_invalid_workflow_and_records_nothing() {
    let home = Home::new();
    home.write(
        "bad.toml",
        "[workflow]\nname = \"bad\"\n\n[steps.a]\nrun = \"touch ran\"\n\n[steps.b]\nrun = \"true\"\nneeds = [\"nope\"]\n",
    );
    let out = home.bgflow(&["run", "-d", "bad.toml"]).expect(3);
    assert_eq!(out.stdout, "", "no run id");
    assert!(out.stderr.contains("bad.toml:9:10"), "{}", out.stderr);
    assert!(out.stderr.contains("nope"), "{}", out.stderr);
    assert!(out.stderr.contains("nothing ran"), "{}", out.stderr);
    assert!(!home.state().exists(), "nothing recorded");
    assert!(!home.path().join("ran").exists(), "nothing started");
}

#[test]
fn detach_returns_while_the_step_runs_and_the_run_ends_in_the_background() {
    let home = Home::new();
    home.write(
        "slow.toml",
        "[workflow]\nname = \"slow\"\n\n[steps.wait]\nrun = \"echo waiting; sh wait.sh go; echo went\"\n\n[steps.after]\nneeds = [\"wait\"]\nrun = \"echo after > after.txt\"\n",
    );
    let out = home.bgflow(&["run", "-d", "slow.toml"]).expect(0);
    let id = run_id_of(&out);
    assert!(
        out.stderr.contains(&id),
        "details on stderr: {}",
        out.stderr
    );
    // It returned before the step could end: the step waits for a file made only now.
    let s = home.wait_step_running(&id, "wait");
    assert_eq!(s["run"]["state"], "running");
    assert_eq!(s["run"]["detached"], true);
    assert!(s["run"]["supervisor_pid"].is_i64(), "{s}");
    assert_eq!(step_of(&s, "after")["state"], "pending");
    assert!(!home.path().join("after.txt").exists());

    home.touch("go");
    let s = home.wait_done(&id);
    assert_eq!(s["run"]["state"], "succeeded", "{s}");
    assert_eq!(s["run"]["exit_code"], 0);
    assert_eq!(home.read("after.txt"), "after\n");
    assert_eq!(
        home.bgflow(&["logs", &id, "wait"]).expect(0).stdout,
        "waiting\nwent\n"
    );
}

#[test]
fn start_runs_one_command_with_name_meta_and_timeout() {
    let home = Home::new();
    let out = home
        .bgflow(&[
            "start",
            "--name",
            "job",
            "--meta",
            "owner=alice",
            "--meta",
            "ticket=T-7",
            "--",
            "sh",
            "-c",
            "echo started; sh wait.sh go",
        ])
        .expect(0);
    let job = run_id_of(&out);
    let s = home.wait_step_running(&job, "job");
    assert_eq!(s["run"]["workflow"], "job");
    assert_eq!(s["run"]["kind"], "command");
    assert_eq!(
        s["run"]["meta"],
        serde_json::json!({"owner": "alice", "ticket": "T-7"})
    );
    assert_eq!(
        s["steps"].as_array().map(Vec::len),
        Some(1),
        "one step: {s}"
    );

    // --timeout: the command is stopped and the step timed out.
    let out = home
        .bgflow(&["start", "--timeout", "1s", "--", "sleep", "30"])
        .expect(0);
    let timed = run_id_of(&out);
    let t = home.wait_done(&timed);
    assert_eq!(t["run"]["workflow"], "sleep", "named after the program");
    assert_eq!(t["run"]["state"], "failed", "{t}");
    assert_eq!(step_of(&t, "sleep")["state"], "timed_out", "{t}");
    assert_eq!(t["run"]["meta"], serde_json::json!({}));

    // list --status running: only the running one, with its meta.
    let running = home
        .bgflow(&["list", "--status", "running", "--json"])
        .expect(0)
        .json();
    let ids: Vec<&str> = running["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .filter_map(|r| r["id"].as_str())
        .collect();
    assert_eq!(ids, [job.as_str()]);
    assert_eq!(running["runs"][0]["meta"]["owner"], "alice");
    let failed = home
        .bgflow(&["list", "--status", "failed"])
        .expect(0)
        .stdout;
    assert!(
        failed.contains(&timed) && !failed.contains(&job),
        "{failed}"
    );

    home.touch("go");
    let s = home.wait_done(&job);
    assert_eq!(s["run"]["state"], "succeeded", "{s}");
    assert_eq!(
        home.bgflow(&["logs", &job]).expect(0).stdout,
        "job | started\n"
    );
}

#[test]
fn a_killed_supervisor_is_lost_and_stop_ends_its_orphans() {
    let home = Home::new();
    let sleeper = ["sleep", "316"];
    let out = home
        .bgflow(&[
            "start",
            "--name",
            "orphan",
            "--",
            "sh",
            "-c",
            "sleep 316 & sleep 316; wait",
        ])
        .expect(0);
    let id = run_id_of(&out);
    let s = home.wait_step_running(&id, "orphan");
    wait_until("both sleeps to start", SOON, || {
        (processes(&sleeper).len() == 2).then_some(())
    });
    let pid = kill_supervisor(&s);

    // The next reader notices (DESIGN.md §5.5): the run and its running step are lost.
    let s = wait_until("the run to be lost", SOON, || {
        let s = home.status(&id);
        (s["run"]["state"] != "running").then_some(s)
    });
    assert_eq!(s["run"]["state"], "lost", "{s}");
    assert!(
        s["run"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains(&pid.to_string())),
        "{s}"
    );
    assert_eq!(step_of(&s, "orphan")["state"], "lost", "{s}");
    // Lost, but not silent about what still runs: every reader names the live processes
    // and how to end them.
    let mut sleeps = processes(&sleeper);
    sleeps.sort_unstable();
    let still = |s: &serde_json::Value| -> Vec<u64> {
        let mut pids: Vec<u64> = s["still_running"]
            .as_array()
            .unwrap_or_else(|| panic!("no still_running in {s}"))
            .iter()
            .filter(|p| p["command"] == "sleep 316")
            .filter_map(|p| p["pid"].as_u64())
            .collect();
        pids.sort_unstable();
        pids
    };
    let expected: Vec<u64> = sleeps.iter().map(|&p| u64::from(p)).collect();
    assert_eq!(still(&s["run"]), expected, "{s}");
    let text = home.bgflow(&["status", &id]).expect(0).stdout;
    assert!(text.contains("lost"), "{text}");
    assert!(
        text.contains("processes still run")
            && text.contains(&format!("sleep 316 (pid {})", sleeps[0])),
        "{text}"
    );
    assert!(
        text.contains("help: end them with bgflow") && text.contains(&format!("stop {id}")),
        "{text}"
    );
    let listed = home
        .bgflow(&["list", "--status", "lost", "--json"])
        .expect(0)
        .json();
    assert_eq!(listed["runs"][0]["id"], id.as_str());
    assert_eq!(still(&listed["runs"][0]), expected, "{listed}");
    // `list` warns, and so does `status` without a run, which lists the active runs: this
    // one is not active, but not over.
    for args in [["list"], ["status"]] {
        let out = home.bgflow(&args).expect(0);
        assert!(
            out.stderr.contains(&format!(
                "warning: run {id} is lost, but 3 of its processes still run"
            )),
            "{args:?}: {}",
            out.stderr
        );
    }
    let types = event_types(&home.bgflow(&["events", &id]).expect(0).stdout, &id);
    assert!(types.iter().any(|t| t == "run_lost"), "{types:?}");

    // The step's processes outlived their supervisor; `stop` ends them by their group.
    assert_eq!(processes(&sleeper).len(), 2, "orphans are still there");
    let out = home.bgflow(&["stop", &id, "--yes"]).expect(0);
    assert!(out.stderr.contains("lost"), "{}", out.stderr);
    wait_gone(&sleeper);
    let s = home.status(&id);
    assert_eq!(s["run"]["state"], "lost");
    assert_eq!(s["run"]["still_running"], serde_json::json!([]), "{s}");
    let text = home.bgflow(&["status", &id]).expect(0).stdout;
    assert!(!text.contains("still run"), "{text}");
    for args in [["list"], ["status"]] {
        let out = home.bgflow(&args).expect(0);
        assert!(!out.stderr.contains("is lost"), "{args:?}: {}", out.stderr);
    }
}

#[test]
fn a_killed_supervisor_keeps_what_its_finished_steps_made_up_to_date() {
    let home = Home::new();
    home.write(
        "fp.toml",
        "[workflow]\nname = \"fp\"\n\n[steps.made]\nrun = \"echo data > made.txt\"\noutputs = [\"made.txt\"]\n\n[steps.hang]\nneeds = [\"made\"]\nrun = \"sleep 318\"\n",
    );
    let id = home.detach("fp.toml");
    let s = home.wait_step_running(&id, "hang");
    assert_eq!(step_of(&s, "made")["state"], "succeeded", "{s}");
    kill_supervisor(&s);
    home.bgflow(&["stop", &id, "--yes"]).expect(0);
    wait_gone(&["sleep", "318"]);

    // The supervisor never reached the end of its run, yet `made` was recorded with its
    // fingerprint: the next run finds it up to date.
    let out = home
        .bgflow(&["run", "fp.toml", "--only", "made", "--progress", "never"])
        .expect(0);
    let again = home.newest_run();
    assert!(
        out.stderr.contains("finished made: skipped") && out.stderr.contains("up to date"),
        "{}",
        out.stderr
    );
    assert_eq!(step_of(&home.status(&again), "made")["state"], "skipped");
}

#[test]
fn a_relative_state_dir_is_recorded_as_an_absolute_path() {
    let home = Home::new();
    home.write(
        "wf.toml",
        "[workflow]\nname = \"rel\"\n\n[steps.s]\nrun = \"echo hello\"\n",
    );
    std::fs::create_dir_all(home.path().join("sub")).expect("mkdir");
    let from_sub = |args: &[&str]| {
        let mut all = vec!["--state-dir", "../state"];
        all.extend_from_slice(args);
        let mut cmd = home.bare(&all);
        cmd.current_dir(home.path().join("sub"));
        output(cmd)
    };
    output(home.bare(&[
        "--state-dir",
        "state",
        "run",
        "wf.toml",
        "--progress",
        "never",
    ]))
    .expect(0);
    let out = output(home.bare(&["--state-dir", "state", "run", "-d", "wf.toml"])).expect(0);
    let detached = run_id_of(&out);
    home.wait_done(&detached);
    let runs = from_sub(&["list", "--json"]).expect(0).json();
    let runs = runs["runs"].as_array().expect("runs").clone();
    assert_eq!(runs.len(), 2);
    for run in &runs {
        let id = run["id"].as_str().expect("id");
        assert_eq!(run["state"], "succeeded", "{run}");
        let expected = home.state().join("runs").join(id);
        assert_eq!(run["log_dir"], expected.to_str().expect("utf-8"), "{run}");
        // Readable from another folder.
        assert_eq!(from_sub(&["logs", id, "s"]).expect(0).stdout, "hello\n");
    }
}

/// A one-step workflow whose step runs `script`, with `kill_grace`.
fn one_step(name: &str, script: &str, grace: &str) -> String {
    format!(
        "[workflow]\nname = \"{name}\"\n\n[steps.work]\nrun = \"{script}\"\nkill_grace = \"{grace}\"\n"
    )
}

#[test]
fn stop_cancels_a_detached_run_and_ends_its_processes() {
    let home = Home::new();
    let sleeper = ["sleep", "313"];
    home.write(
        "sleepy.toml",
        &(one_step("sleepy", "sleep 313", "5s")
            + "\n[steps.later]\nneeds = [\"work\"]\nrun = \"true\"\n"),
    );
    let detached = home.bgflow(&["run", "-d", "sleepy.toml"]).expect(0);
    let id = run_id_of(&detached);
    // The stop command `run -d` prints works as printed: without a terminal (stdin is
    // /dev/null here) it carries `--yes`.
    let stop_line = detached
        .stderr
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("stop:"))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no stop line: {}", detached.stderr));
    assert!(
        stop_line.starts_with("bgflow --state-dir ")
            && stop_line.ends_with(&format!(" stop {id} --yes")),
        "{stop_line}"
    );
    home.wait_step_running(&id, "work");
    wait_until("sleep 313 to start", SOON, || {
        (!processes(&sleeper).is_empty()).then_some(())
    });

    // Without --yes and without a terminal: a usage error, and nothing is stopped.
    let out = home.bgflow(&["stop", &id]).expect(2);
    assert!(out.stderr.contains("--yes"), "{}", out.stderr);
    assert_eq!(home.status(&id)["run"]["state"], "running");
    assert!(!processes(&sleeper).is_empty(), "still running");

    let words: Vec<&str> = stop_line.split(' ').skip(1).collect();
    let stopped = home.bare(&words).output().expect("run the printed stop");
    assert!(stopped.status.success(), "{stopped:?}");
    let s = home.status(&id);
    assert_eq!(s["run"]["state"], "cancelled", "{s}");
    // The run says who stopped it, not just the signal its supervisor got; the request
    // file that told it is taken.
    let by = "asked to stop by `bgflow stop` (pid ";
    assert!(
        s["run"]["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with(by)),
        "{s}"
    );
    let step = step_of(&s, "work");
    assert_eq!(step["state"], "cancelled", "{s}");
    assert_eq!(step["signal"], "SIGTERM", "{s}");
    assert!(
        step["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with(&format!("stopped: {by}"))),
        "{s}"
    );
    let log_dir = std::path::PathBuf::from(s["run"]["log_dir"].as_str().expect("log_dir"));
    assert!(
        !log_dir.join("stop-request").exists(),
        "{}",
        log_dir.display()
    );
    let later = step_of(&s, "later");
    assert_eq!(
        later["state"], "cancelled",
        "never started, not pending: {s}"
    );
    assert!(
        later["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("not started")),
        "{s}"
    );
    wait_gone(&sleeper);
    let types = event_types(&home.bgflow(&["events", &id]).expect(0).stdout, &id);
    assert!(types.iter().any(|t| t == "stop_requested"), "{types:?}");
    // Stopping it again is harmless.
    let out = home.bgflow(&["stop", &id, "--yes"]).expect(0);
    assert!(out.stderr.contains("not running"), "{}", out.stderr);
}

#[test]
fn stop_kills_a_step_that_ignores_sigterm_after_its_grace() {
    let home = Home::new();
    let sleeper = ["sleep", "314"];
    // `trap '' TERM` is inherited: the shell and both sleeps ignore SIGTERM.
    home.write(
        "stubborn.toml",
        &one_step(
            "stubborn",
            "trap '' TERM; sleep 314 & sleep 314; wait",
            "1s",
        ),
    );
    let id = home.detach("stubborn.toml");
    home.wait_step_running(&id, "work");
    wait_until("both sleeps to start", SOON, || {
        (processes(&sleeper).len() == 2).then_some(())
    });
    home.bgflow(&["stop", &id, "--yes"]).expect(0);
    let s = home.status(&id);
    assert_eq!(s["run"]["state"], "cancelled", "{s}");
    assert_eq!(step_of(&s, "work")["state"], "cancelled", "{s}");
    assert_eq!(
        step_of(&s, "work")["signal"],
        "SIGKILL",
        "killed after the grace: {s}"
    );
    wait_gone(&sleeper);
}

#[test]
fn stop_force_kills_at_once() {
    let home = Home::new();
    let sleeper = ["sleep", "315"];
    // A grace far longer than the test waits: only --force can end it in time.
    home.write(
        "stubborn.toml",
        &one_step(
            "stubborn",
            "trap '' TERM; sleep 315 & sleep 315; wait",
            "1h",
        ),
    );
    let id = home.detach("stubborn.toml");
    home.wait_step_running(&id, "work");
    wait_until("both sleeps to start", SOON, || {
        (processes(&sleeper).len() == 2).then_some(())
    });
    let began = Instant::now();
    home.bgflow(&["stop", &id, "--force", "--yes"]).expect(0);
    assert!(
        began.elapsed() < Duration::from_secs(10),
        "--force waited {:?}",
        began.elapsed()
    );
    let s = home.status(&id);
    assert_eq!(s["run"]["state"], "cancelled", "{s}");
    assert_eq!(step_of(&s, "work")["signal"], "SIGKILL", "{s}");
    wait_gone(&sleeper);
}

#[test]
fn resume_keeps_what_succeeded_and_runs_the_rest() {
    let home = Home::new();
    home.write(
        "res.toml",
        "[workflow]\nname = \"res\"\n\n[steps.a]\nrun = \"echo ran >> counter\"\noutputs = [\"counter\"]\n\n[steps.b]\nneeds = [\"a\"]\nrun = \"test -f ready\"\n\n[steps.c]\nneeds = [\"b\"]\nrun = \"echo c > c.txt\"\n",
    );
    let (first, out) = home.run("res.toml");
    out.expect(1);
    let s = home.status(&first);
    assert_eq!(s["run"]["state"], "failed");
    assert_eq!(step_of(&s, "a")["state"], "succeeded");
    assert_eq!(step_of(&s, "b")["state"], "failed");
    // A step that never ran is recorded with its final state, not left `pending`.
    assert_eq!(step_of(&s, "c")["state"], "skipped", "{s}");
    assert_eq!(
        step_of(&s, "c")["reason"],
        "upstream step `b` failed",
        "{s}"
    );
    let events = home.bgflow(&["events", &first]).expect(0).stdout;
    assert!(
        events.lines().any(|l| l.contains("\"step_finished\"")
            && l.contains("\"step\":\"c\"")
            && l.contains("\"skipped\"")),
        "{events}"
    );
    assert_eq!(home.read("counter"), "ran\n");

    home.touch("ready");
    let prefix = &first[..6];
    home.bgflow(&["resume", prefix, "--progress", "never"])
        .expect(0);
    let second = home.newest_run();
    assert_ne!(second, first, "a new run");
    let s = home.status(&second);
    assert_eq!(s["run"]["state"], "succeeded", "{s}");
    assert_eq!(s["run"]["meta"]["resumed_from"], first.as_str());
    let a = step_of(&s, "a");
    assert_eq!(a["state"], "skipped", "{s}");
    assert_eq!(a["reason"], format!("succeeded in run {first}"), "{s}");
    assert_eq!(step_of(&s, "b")["state"], "succeeded", "{s}");
    assert_eq!(step_of(&s, "c")["state"], "succeeded", "{s}");
    assert_eq!(home.read("counter"), "ran\n", "a did not run again");
    assert_eq!(home.read("c.txt"), "c\n");
    // The first run is left as it was.
    assert_eq!(home.status(&first)["run"]["state"], "failed");

    // Resuming a run that succeeded entirely has nothing to do.
    let out = home.bgflow(&["resume", &second]).expect(0);
    assert!(out.stderr.contains("nothing to resume"), "{}", out.stderr);
}
