//! Guarantee 11, one writer per tree: a second run of a root whose outputs overlap an active
//! run's is refused (exit 3) unless `--allow-concurrent`; the lock is judged by the holder's
//! liveness; `limits.max_concurrent_runs` is checked and taken in one transaction.

use super::*;

#[test]
fn the_refusals_commands_name_the_state_folder_only_when_it_is_not_the_default() {
    let home = Home::new();
    home.write(
        "bare.toml",
        "[workflow]\nname = \"bare\"\n\n[steps.make]\nrun = \"sh wait.sh go-bare; echo x > x.txt\"\noutputs = [\"x.txt\"]\n",
    );
    // Both in `./.bgflow`: the commands to paste name no `--state-dir` (before, the wait
    // command did and the stop command did not).
    let first = run_id_of(&output(home.bare(&["run", "-d", "bare.toml"])).expect(0));
    let out = output(home.bare(&["run", "--progress", "never", "bare.toml"])).expect(3);
    assert!(
        out.stderr.contains(&format!(
            "wait for it: bgflow status {first} --watch; stop it: bgflow stop {first} --yes;"
        )),
        "{}",
        out.stderr
    );
    home.touch("go-bare");
    output(home.bare(&["status", &first, "--watch"])).expect(0);
}

#[test]
fn a_second_run_writing_the_same_outputs_is_refused_until_the_first_is_gone() {
    let home = Home::new();
    home.write(
        "lock.toml",
        "[workflow]\nname = \"lock\"\n\n[steps.make]\nrun = \"sh wait.sh go-lock; mkdir -p build; echo x > build/x.txt\"\noutputs = [\"build/x.txt\"]\n",
    );
    home.write(
        "other.toml",
        "[workflow]\nname = \"other\"\n\n[steps.make]\nrun = \"echo y > y.txt\"\noutputs = [\"y.txt\"]\n",
    );
    // A stopped run of the same workflow, to `resume` while another holds the lock.
    let stopped = run_id_of(&home.bgflow(&["run", "-d", "lock.toml"]).expect(0));
    home.bgflow(&["stop", &stopped, "--force", "--yes"])
        .expect(0);
    assert_eq!(home.status(&stopped)["run"]["state"], "cancelled");
    // A foreground run holds the lock while its step waits.
    let first_run = home.spawn(&["run", "lock.toml", "--progress", "never"]);
    let first = wait_until("the first run to be recorded", SOON, || {
        let list = home.bgflow(&["list", "--json"]);
        (list.code == 0)
            .then(|| list.json()["runs"][0]["id"].as_str().map(str::to_owned))
            .flatten()
            .filter(|id| *id != stopped)
    });
    let s = home.wait_step_running(&first, "make");
    assert_eq!(
        s["run"]["lock"],
        serde_json::json!({"root": home.path().to_str().expect("utf-8"), "outputs": ["build/x.txt"]}),
        "{s}"
    );
    assert_eq!(
        s["run"]["supervisor_pid"].as_i64(),
        Some(i64::from(first_run.child.id()))
    );

    let sd = home.state().display().to_string();
    for args in [
        &["run", "lock.toml", "--progress", "never"][..],
        &["run", "-d", "lock.toml"][..],
        &["resume", &stopped, "--progress", "never"][..],
        &["resume", "-d", &stopped][..],
    ] {
        let out = home.bgflow(args).expect(3);
        assert_eq!(out.stdout, "", "{args:?}");
        assert!(
            out.stderr
                .contains(&format!("error: run {first} of `lock`"))
                && out.stderr.contains("build/x.txt")
                && out.stderr.contains("nothing ran")
                && out.stderr.contains("--allow-concurrent")
                && out.stderr.contains(&format!(
                    "wait for it: bgflow --state-dir {sd} status {first} --watch; \
                     stop it: bgflow --state-dir {sd} stop {first}"
                )),
            "{args:?}: {}",
            out.stderr
        );
    }
    // Another workflow's outputs do not overlap: admitted.
    let (_, out) = home.run("other.toml");
    out.expect(0);
    // --allow-concurrent opts out.
    let allowed = run_id_of(
        &home
            .bgflow(&["run", "-d", "--allow-concurrent", "lock.toml"])
            .expect(0),
    );
    home.bgflow(&["stop", &allowed, "--force", "--yes"])
        .expect(0);

    // The holder crashes while its step runs: the step writes on, so the lost run holds
    // the lock as long as it does; a new run would write the same file beside it.
    signal(
        i64::from(first_run.child.id()),
        nix::sys::signal::Signal::SIGKILL,
    );
    drop(first_run);
    let out = home.bgflow(&["run", "-d", "lock.toml"]).expect(3);
    assert_eq!(home.status(&first)["run"]["state"], "lost");
    assert!(
        out.stderr
            .contains(&format!("error: run {first} of `lock` is lost"))
            && out.stderr.contains("of its processes still run")
            && out.stderr.contains("wait.sh go-lock")
            && out.stderr.contains("build/x.txt")
            && out.stderr.contains("nothing ran")
            && out.stderr.contains(&format!("stop {first}")),
        "{}",
        out.stderr
    );
    // Once its last process ends (here its step finishes on its own), the lock goes with
    // it: no stale lock.
    let step = [
        "sh",
        "-c",
        "sh wait.sh go-lock; mkdir -p build; echo x > build/x.txt",
    ];
    assert_eq!(processes(&step).len(), 1, "the lost run's step runs on");
    home.touch("go-lock");
    wait_gone(&step);
    assert!(home.path().join("build/x.txt").exists());
    let next = run_id_of(&home.bgflow(&["run", "-d", "lock.toml"]).expect(0));
    let s = home.wait_done(&next);
    assert_eq!(s["run"]["state"], "succeeded", "{s}");
    // A finished run holds nothing: the next one is admitted.
    let (_, out) = home.run("lock.toml");
    out.expect(0);
}

/// With `containment = "process-group"` too (a lost run's processes found by their
/// token): a lost run whose step still runs holds its lock until `stop` ends the step.
#[test]
fn a_lost_runs_running_step_holds_its_lock_until_stop_ends_it() {
    let home = Home::new();
    home.write("bgflow.toml", "containment = \"process-group\"\n");
    home.write(
        "held.toml",
        "[workflow]\nname = \"held\"\n\n[steps.write]\nrun = \"sh wait.sh go-318; echo y > out.txt\"\noutputs = [\"out.txt\"]\n",
    );
    let id = home.detach("held.toml");
    let s = home.wait_step_running(&id, "write");
    assert_eq!(s["run"]["containment"], "process-group", "{s}");
    kill_supervisor(&s);
    let out = home
        .bgflow(&["run", "held.toml", "--progress", "never"])
        .expect(3);
    assert!(
        out.stderr
            .contains(&format!("error: run {id} of `held` is lost"))
            && out.stderr.contains("wait.sh go-318")
            && out.stderr.contains("(out.txt)")
            && out.stderr.contains(&format!("stop {id}")),
        "{}",
        out.stderr
    );
    assert_eq!(home.status(&id)["run"]["state"], "lost");
    home.bgflow(&["stop", &id, "--yes"]).expect(0);
    wait_gone(&["sh", "wait.sh", "go-318"]);
    home.touch("go-318");
    let (_, out) = home.run("held.toml");
    out.expect(0);
}

#[test]
fn max_concurrent_runs_admits_exactly_the_limit_of_twenty_at_once() {
    const TRIALS: usize = 20;
    const AT_ONCE: usize = 20;
    let home = Home::new();
    home.write("bgflow.toml", "[limits]\nmax_concurrent_runs = 3\n");
    home.write(
        "nap.toml",
        "[workflow]\nname = \"nap\"\n\n[steps.nap]\nrun = \"sleep 317\"\n",
    );
    for trial in 0..TRIALS {
        let children: Vec<Child> = (0..AT_ONCE)
            .map(|_| {
                home.cmd(&["run", "-d", "nap.toml"])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("spawn run -d")
            })
            .collect();
        let outs: Vec<Out> = children
            .into_iter()
            .map(|c| {
                let o = c.wait_with_output().expect("run -d");
                Out {
                    code: o.status.code().unwrap_or(-1),
                    stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
                    stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
                }
            })
            .collect();
        let admitted: Vec<String> = outs.iter().filter(|o| o.code == 0).map(run_id_of).collect();
        for o in outs.iter().filter(|o| o.code != 0) {
            assert!(
                o.code == 3 && o.stderr.contains("max_concurrent_runs is 3"),
                "trial {trial}: {o:?}"
            );
        }
        assert_eq!(admitted.len(), 3, "trial {trial}: admitted {admitted:?}");
        for id in &admitted {
            home.bgflow(&["stop", id, "--force", "--yes"]).expect(0);
        }
    }
    wait_gone(&["sleep", "317"]);
}
