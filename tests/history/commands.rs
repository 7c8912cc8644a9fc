//! The reading commands: `status` (with `--watch`), `logs`, `events`, `cleanup`, and run ids
//! given by prefix.

use super::*;

#[test]
fn status_shows_step_progress_and_only_active_runs() {
    let home = Home::new();
    home.write(
        "done.toml",
        "[workflow]\nname = \"done\"\n\n[steps.x]\nrun = \"true\"\n",
    );
    home.write(
        "progress.toml",
        "[workflow]\nname = \"progressing\"\n\n[steps.work]\nrun = \"echo 1/5 starting >> \\\"$BGFLOW_PROGRESS\\\"; echo 2/5 working >> \\\"$BGFLOW_PROGRESS\\\"; sh wait.sh go\"\n\n[steps.then]\nneeds = [\"work\"]\nrun = \"true\"\n",
    );
    let (finished, out) = home.run("done.toml");
    out.expect(0);
    let id = home.detach("progress.toml");

    let text = wait_until("40% (2/5: working) in status", SOON, || {
        let out = home.bgflow(&["status", &id]).expect(0);
        out.stdout
            .contains("40% (2/5: working)")
            .then_some(out.stdout)
    });
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("work "))
        .unwrap_or_else(|| panic!("no line for step work:\n{text}"));
    assert!(
        line.contains("running") && line.contains("40% (2/5: working)"),
        "{line}"
    );
    assert!(text.starts_with(&format!("run {id} ")), "{text}");
    assert!(text.contains("progressing"), "{text}");

    // --json: version, run, steps[].
    let s = home.status(&id);
    assert_eq!(s["version"], 1);
    assert_eq!(s["run"]["id"], id.as_str());
    assert_eq!(s["run"]["state"], "running");
    assert_eq!(s["run"]["steps_total"], 2);
    let work = step_of(&s, "work");
    assert_eq!(work["progress_current"], 2);
    assert_eq!(work["progress_total"], 5);
    assert_eq!(work["progress_message"], "working");
    assert!(work["pid"].is_i64() && work["pgid"].is_i64(), "{s}");
    assert!(
        work["log_path"]
            .as_str()
            .is_some_and(|p| p.ends_with("work.log")),
        "{s}"
    );
    assert_eq!(step_of(&s, "then")["state"], "pending");

    // Without RUN: the active runs only.
    let active = home.bgflow(&["status"]).expect(0).stdout;
    assert!(active.contains(&id), "{active}");
    assert!(!active.contains(&finished), "{active}");
    let active = home.bgflow(&["status", "--json"]).expect(0).json();
    let ids: Vec<&str> = active["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .filter_map(|r| r["id"].as_str())
        .collect();
    assert_eq!(ids, [id.as_str()]);

    home.touch("go");
    assert_eq!(home.wait_done(&id)["run"]["state"], "succeeded");
    let out = home.bgflow(&["status"]).expect(0);
    assert_eq!(out.stdout, "", "no active run left");
    assert!(out.stderr.contains("no active runs"), "{}", out.stderr);
}

#[test]
fn watch_prints_plain_snapshots_and_exits_with_the_outcome() {
    let home = Home::new();
    home.write(
        "ok.toml",
        "[workflow]\nname = \"watched\"\n\n[steps.work]\nrun = \"sh wait.sh go\"\n",
    );
    home.write(
        "fail.toml",
        "[workflow]\nname = \"failing\"\n\n[steps.work]\nrun = \"sh wait.sh go; exit 4\"\n",
    );
    let ok = home.detach("ok.toml");
    let bad = home.detach("fail.toml");
    home.wait_step_running(&ok, "work");
    home.wait_step_running(&bad, "work");

    // stderr is a pipe, not a terminal: plain snapshots on stdout.
    let watch_ok = home.spawn(&["status", &ok, "--watch"]);
    let watch_bad = home.spawn(&["status", &bad, "--watch"]);
    for (w, id) in [(&watch_ok, &ok), (&watch_bad, &bad)] {
        wait_until("a running snapshot", SOON, || {
            w.stdout().contains(&format!("run {id} · ")).then_some(())
        });
        assert!(w.stdout().contains("· running ·"), "{}", w.stdout());
    }
    home.touch("go");

    let out = watch_ok.finish(RUN_DEADLINE).expect(0);
    assert!(out.stdout.contains("· succeeded ·"), "{}", out.stdout);
    assert!(
        !out.stdout.contains('\x1b') && !out.stderr.contains('\x1b'),
        "{out:?}"
    );
    let snapshots = out.stdout.matches(&format!("run {ok} · ")).count();
    assert!(snapshots >= 2, "a snapshot per change: {}", out.stdout);

    let out = watch_bad.finish(RUN_DEADLINE).expect(1);
    assert!(out.stdout.contains("· failed ·"), "{}", out.stdout);
    assert!(out.stdout.contains("exit code 4"), "{}", out.stdout);

    // A run that already ended: one snapshot, at once.
    let out = home.bgflow(&["status", &ok, "--watch"]).expect(0);
    assert_eq!(
        out.stdout.matches(&format!("run {ok} · ")).count(),
        1,
        "{}",
        out.stdout
    );
}

#[test]
fn logs_print_one_step_all_steps_the_tail_and_follow() {
    let home = Home::new();
    home.write(
        "chatty.toml",
        "[workflow]\nname = \"chatty\"\n\n[steps.a]\nrun = \"printf 'a1\\\\na2\\\\na3\\\\n'\"\n\n[steps.b]\nneeds = [\"a\"]\nrun = \"printf 'b1\\\\nb2\\\\nb3\\\\nb4\\\\n'\"\n",
    );
    let (id, out) = home.run("chatty.toml");
    out.expect(0);

    assert_eq!(
        home.bgflow(&["logs", &id, "a"]).expect(0).stdout,
        "a1\na2\na3\n"
    );
    let all = home.bgflow(&["logs", &id]).expect(0).stdout;
    assert_eq!(
        all,
        "a | a1\na | a2\na | a3\nb | b1\nb | b2\nb | b3\nb | b4\n"
    );
    assert_eq!(
        home.bgflow(&["logs", &id, "b", "-n", "2"]).expect(0).stdout,
        "b3\nb4\n"
    );
    assert_eq!(
        home.bgflow(&["logs", &id, "-n", "1"]).expect(0).stdout,
        "a | a3\nb | b4\n"
    );
    let out = home.bgflow(&["logs", &id, "nope"]).expect(2);
    assert!(
        out.stderr.contains("a, b"),
        "names the steps: {}",
        out.stderr
    );

    // -f follows a running step and ends with it.
    home.write(
        "follow.toml",
        "[workflow]\nname = \"follow\"\n\n[steps.s]\nrun = \"echo before; sh wait.sh go; echo after; echo last\"\n",
    );
    let run = home.detach("follow.toml");
    home.wait_step_running(&run, "s");
    let follow = home.spawn(&["logs", &run, "s", "-f"]);
    wait_until("`before` to be followed", SOON, || {
        follow.stdout().contains("before\n").then_some(())
    });
    assert!(!follow.stdout().contains("after"), "{}", follow.stdout());
    home.touch("go");
    let out = follow.finish(RUN_DEADLINE).expect(0);
    assert_eq!(out.stdout, "before\nafter\nlast\n");
    assert_eq!(home.status(&run)["run"]["state"], "succeeded");
}

/// Seen on msgpack 1.1.0: after a failed run, `bgflow logs` was a usage error (RUN
/// required) and `bgflow logs build` said only that no run matches `build`. Without RUN,
/// `logs` takes the newest run, as `resume` does; a step's name where the run id goes is
/// named as such, with the command that prints its log.
#[test]
fn logs_without_a_run_read_the_newest_and_a_step_named_as_a_run_gets_a_hint() {
    let home = Home::new();
    let none = home.bgflow(&["logs"]).expect(2);
    assert!(none.stderr.contains("no run history"), "{}", none.stderr);
    for word in ["first", "second"] {
        home.write(
            &format!("{word}.toml"),
            &format!("[workflow]\nname = \"{word}\"\n\n[steps.build]\nrun = \"echo {word}\"\n"),
        );
    }
    home.run("first.toml").1.expect(0);
    let (id, second) = home.run("second.toml");
    second.expect(0);
    assert_eq!(home.bgflow(&["logs"]).expect(0).stdout, "build | second\n");
    assert_eq!(
        home.bgflow(&["logs", "-n", "1"]).expect(0).stdout,
        "build | second\n"
    );
    let step = home.bgflow(&["logs", "build"]).expect(2);
    assert!(
        step.stderr.contains(&format!(
            "error: no run matches `build`\n  hint: `build` is a step of the newest run, {id}: `bgflow logs {id} build`\n"
        )),
        "{}",
        step.stderr
    );
    let unknown = home.bgflow(&["logs", "nothing"]).expect(2);
    assert!(!unknown.stderr.contains("hint"), "{}", unknown.stderr);
}

#[test]
fn events_are_json_lines_and_follow_ends_with_the_run() {
    let home = Home::new();
    home.write(
        "ev.toml",
        "[workflow]\nname = \"ev\"\n\n[steps.one]\nrun = \"true\"\n\n[steps.two]\nneeds = [\"one\"]\nrun = \"sh wait.sh go\"\n",
    );
    home.touch("go");
    let (id, out) = home.run("ev.toml");
    let out = out.expect(0);
    let events = home.bgflow(&["events", &id]).expect(0).stdout;
    let types = event_types(&events, &id);
    assert_eq!(
        types.iter().map(String::as_str).collect::<BTreeSet<_>>(),
        [
            "run_created",
            "run_started",
            "step_started",
            "step_finished",
            "run_finished"
        ]
        .into_iter()
        .collect(),
        "{events}"
    );
    assert_eq!(types.first().map(String::as_str), Some("run_created"));
    assert_eq!(types.last().map(String::as_str), Some("run_finished"));
    assert_eq!(types.iter().filter(|t| *t == "step_finished").count(), 2);
    let finished: Value =
        serde_json::from_str(events.lines().last().expect("a line")).expect("json");
    assert_eq!(finished["state"], "succeeded");
    assert_eq!(finished["exit_code"], 0);
    for line in events.lines().filter(|l| l.contains("\"step_")) {
        let e: Value = serde_json::from_str(line).expect("json");
        assert!(matches!(e["step"].as_str(), Some("one" | "two")), "{line}");
    }
    // A step's end is recorded, and shown, before the step it unlocked starts.
    let steps: Vec<String> = events
        .lines()
        .filter(|l| l.contains("\"step_"))
        .map(|line| {
            let e: Value = serde_json::from_str(line).expect("json");
            format!(
                "{} {}",
                e["type"].as_str().unwrap_or("?"),
                e["step"].as_str().unwrap_or("?")
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            "step_started one",
            "step_finished one",
            "step_started two",
            "step_finished two"
        ],
        "{events}"
    );
    let shown: Vec<&str> = out
        .stderr
        .lines()
        .filter_map(|l| l.split_once(' ').map(|(_, rest)| rest))
        .filter(|l| l.starts_with("started ") || l.starts_with("finished "))
        .collect();
    assert_eq!(shown.len(), 4, "{}", out.stderr);
    for (line, want) in
        shown
            .iter()
            .zip(["started one", "finished one", "started two", "finished two"])
    {
        assert!(
            line.starts_with(want),
            "{line:?} is not {want:?}:\n{}",
            out.stderr
        );
    }

    // --follow on a detached run: prints as it goes, ends when the run ends.
    std::fs::remove_file(home.path().join("go")).expect("rm go");
    let run = home.detach("ev.toml");
    let follow = home.spawn(&["events", &run, "--follow"]);
    wait_until("step_started of `two`", SOON, || {
        follow
            .stdout()
            .lines()
            .any(|l| l.contains("\"step_started\"") && l.contains("\"two\""))
            .then_some(())
    });
    assert!(
        !follow.stdout().contains("run_finished"),
        "{}",
        follow.stdout()
    );
    home.touch("go");
    let out = follow.finish(RUN_DEADLINE).expect(0);
    let types = event_types(&out.stdout, &run);
    assert_eq!(
        types.last().map(String::as_str),
        Some("run_finished"),
        "{types:?}"
    );
    assert!(types.iter().any(|t| t == "supervisor_spawned"), "{types:?}");
}

#[test]
fn cleanup_removes_finished_runs_only_and_dry_run_removes_nothing() {
    let home = Home::new();
    home.write(
        "ok.toml",
        "[workflow]\nname = \"ok\"\n\n[steps.s]\nrun = \"echo ok\"\n",
    );
    home.write(
        "ko.toml",
        "[workflow]\nname = \"ko\"\n\n[steps.s]\nrun = \"exit 1\"\n",
    );
    home.write(
        "live.toml",
        "[workflow]\nname = \"live\"\n\n[steps.s]\nrun = \"sh wait.sh go\"\n",
    );
    let (ok, out) = home.run("ok.toml");
    out.expect(0);
    let (ko, out) = home.run("ko.toml");
    out.expect(1);
    let live = home.detach("live.toml");
    home.wait_step_running(&live, "s");
    let log_dir = |id: &str| home.state().join("runs").join(id);
    let ids = || -> BTreeSet<String> {
        let list = home
            .bgflow(&["list", "--json", "--status", "all"])
            .expect(0)
            .json();
        list["runs"]
            .as_array()
            .expect("runs")
            .iter()
            .filter_map(|r| r["id"].as_str().map(str::to_owned))
            .collect()
    };

    let out = home
        .bgflow(&["cleanup", "--older-than", "0s", "--dry-run"])
        .expect(0);
    assert!(
        out.stdout
            .contains(&format!("would remove {ok} ok succeeded")),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(&format!("would remove {ko} ko failed")),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains(&live), "{}", out.stdout);
    assert_eq!(ids(), set(&[&ok, &ko, &live]), "dry run removed nothing");
    assert!(log_dir(&ok).is_dir() && log_dir(&ko).is_dir());

    // Not old enough: nothing.
    let out = home.bgflow(&["cleanup", "--older-than", "1h"]).expect(0);
    assert_eq!(out.stdout, "");
    assert_eq!(ids().len(), 3);

    let out = home.bgflow(&["cleanup", "--older-than", "0s"]).expect(0);
    assert_eq!(out.stdout.lines().count(), 2, "{}", out.stdout);
    assert!(
        out.stdout.contains(&format!("removed {ok}")),
        "{}",
        out.stdout
    );
    assert_eq!(ids(), set(&[&live]), "a running run is never removed");
    assert!(
        !log_dir(&ok).exists() && !log_dir(&ko).exists(),
        "log folders removed"
    );
    assert!(log_dir(&live).is_dir());
    // Their events went with them.
    let events = home.bgflow(&["events"]).expect(0).stdout;
    assert!(!events.contains(&ok) && !events.contains(&ko), "{events}");
    assert!(events.contains(&live));
    let out = home.bgflow(&["status", &ok]).expect(2);
    assert!(out.stderr.contains("no run matches"), "{}", out.stderr);

    home.touch("go");
    assert_eq!(home.wait_done(&live)["run"]["state"], "succeeded");
    // --status narrows: a succeeded run is kept by `--status failed`.
    let out = home
        .bgflow(&["cleanup", "--older-than", "0s", "--status", "failed"])
        .expect(0);
    assert_eq!(out.stdout, "");
    assert_eq!(ids(), set(&[&live]));
    // -q removes in silence (seen on msgpack 1.1.0: `cleanup -q` printed a line a run).
    let out = home
        .bgflow(&["-q", "cleanup", "--older-than", "0s"])
        .expect(0);
    assert_eq!((out.stdout.as_str(), out.stderr.as_str()), ("", ""));
    assert!(ids().is_empty() && !log_dir(&live).exists());
}

/// A lost run whose step still runs (its supervisor was killed) is kept by `cleanup`, so
/// that `stop` can still find and end what it left; once they are ended it goes.
#[test]
fn cleanup_keeps_a_lost_run_whose_processes_still_run() {
    let home = Home::new();
    home.write(
        "left.toml",
        "[workflow]\nname = \"left\"\n\n[steps.s]\nrun = \"sh wait.sh go-319\"\n",
    );
    let id = home.detach("left.toml");
    kill_supervisor(&home.wait_step_running(&id, "s"));
    wait_until("the run to be lost", SOON, || {
        (home.status(&id)["run"]["state"] == "lost").then_some(())
    });
    let out = home.bgflow(&["cleanup", "--older-than", "0s"]).expect(0);
    assert!(!out.stdout.contains(&id), "{}", out.stdout);
    // Without a terminal (the test's stdin is /dev/null) `stop` refuses to ask, so the
    // command the note names carries `--yes`: it works as printed.
    let printed = format!(
        "bgflow --state-dir {} stop {id} --yes",
        home.state().display()
    );
    assert!(
        out.stderr
            .contains(&format!("note: kept run {id} of `left`: it is lost, but"))
            && out.stderr.contains(&format!("end them with {printed}\n")),
        "{}",
        out.stderr
    );
    assert_eq!(home.status(&id)["run"]["state"], "lost");
    // The note's command, run word for word.
    let words: Vec<&str> = printed.split(' ').skip(1).collect();
    home.bare(&words)
        .output()
        .map(|o| assert!(o.status.success(), "{o:?}"))
        .expect("run stop");
    wait_gone(&["sh", "wait.sh", "go-319"]);
    let out = home.bgflow(&["cleanup", "--older-than", "0s"]).expect(0);
    assert!(
        out.stdout.contains(&format!("removed {id} left lost")),
        "{}",
        out.stdout
    );
}

#[test]
fn run_ids_resolve_by_any_unique_prefix() {
    let home = Home::new();
    home.write(
        "t.toml",
        "[workflow]\nname = \"t\"\n\n[steps.s]\nrun = \"true\"\n",
    );
    // Runs until two ids share a first character (at most 37 with 36 characters).
    let mut ids: Vec<String> = Vec::new();
    let (a, b) = loop {
        let (id, out) = home.run("t.toml");
        out.expect(0);
        if let Some(other) = ids.iter().find(|o| o.as_bytes()[0] == id.as_bytes()[0]) {
            break (other.clone(), id);
        }
        assert!(ids.len() < 37, "36 first characters");
        ids.push(id);
    };
    ids.push(b.clone());

    // The shortest prefix of `b` that no other id shares.
    let unique = (1..=8)
        .map(|n| &b[..n])
        .find(|p| ids.iter().filter(|id| id.starts_with(p)).count() == 1)
        .expect("the whole id is unique");
    assert!(unique.len() >= 2);
    assert_eq!(home.status(unique)["run"]["id"], b.as_str());
    assert_eq!(home.status(&b)["run"]["id"], b.as_str(), "the whole id");
    assert_eq!(home.bgflow(&["logs", unique]).expect(0).stdout, "");

    // Ambiguous: exit 2, naming the candidates.
    let first = &b[..1];
    for cmd in [&["status", first][..], &["logs", first], &["events", first]] {
        let out = home.bgflow(cmd).expect(2);
        assert!(
            out.stderr.contains("matches several runs"),
            "{}",
            out.stderr
        );
        assert!(
            out.stderr.contains(&a) && out.stderr.contains(&b),
            "{}",
            out.stderr
        );
        assert_eq!(out.stdout, "");
    }

    // Unknown: exit 2, for every command that takes a run.
    let alphabet = "0123456789abcdefghijklmnopqrstuvwxyz";
    let unknown = alphabet
        .chars()
        .flat_map(|x| alphabet.chars().map(move |y| format!("{x}{y}")))
        .find(|p| !ids.iter().any(|id| id.starts_with(p.as_str())))
        .expect("an unused prefix");
    for cmd in [
        &["status", &unknown][..],
        &["status", &unknown, "--watch"],
        &["logs", &unknown],
        &["stop", &unknown, "--yes"],
        &["events", &unknown],
        &["resume", &unknown],
    ] {
        let out = home.bgflow(cmd).expect(2);
        assert!(
            out.stderr.contains(&format!("no run matches `{unknown}`")),
            "{cmd:?}: {}",
            out.stderr
        );
    }
    // Odd input is "no match", not an SQL pattern.
    home.bgflow(&["status", "%"]).expect(2);
    home.bgflow(&["status", "_"]).expect(2);
}

/// Seen on attrs 24.2.0: `run -d` in the workflow's own folder printed its follow and stop
/// commands with `--state-dir /the/folder/I/am/in/.bgflow`, lines that wrapped; the
/// summary's `resume` line already left it out there. Where the state folder is
/// `./.bgflow`, the printed commands leave it out, and they work as printed; from another
/// folder they name it.
#[test]
fn commands_printed_in_the_workflows_folder_leave_out_its_state_folder() {
    let home = Home::new();
    home.write(
        "flow/ok.toml",
        "[workflow]\nname = \"fine\"\n\n[steps.hello]\nrun = \"echo hello\"\n",
    );
    let mut here = home.bare(&["run", "-d", "ok.toml"]);
    here.current_dir(home.path().join("flow"));
    let out = output(here).expect(0);
    let id = run_id_of(&out);
    for line in [
        format!("  follow: bgflow status {id} --watch\n"),
        format!("          bgflow logs {id} -f\n"),
        format!("  stop:   bgflow stop {id} --yes\n"),
    ] {
        assert!(out.stderr.contains(&line), "{line:?} in {}", out.stderr);
    }
    let mut status = home.bare(&["status", &id, "--json"]);
    status.current_dir(home.path().join("flow"));
    assert_eq!(output(status).expect(0).json()["run"]["id"], id.as_str());

    let elsewhere = output(home.bare(&["run", "-d", "flow/ok.toml"])).expect(0);
    let state = home.path().join("flow/.bgflow");
    assert!(
        elsewhere.stderr.contains(&format!(
            "  follow: bgflow --state-dir {} status ",
            state.display()
        )),
        "{}",
        elsewhere.stderr
    );
}
