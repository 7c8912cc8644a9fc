//! Guarantee 13, "the history does not lie": a frozen supervisor is shown `unresponsive`,
//! `stop` of a run still active at its deadline fails, a state folder without room or
//! write access runs nothing, and a history that cannot be written never shows `running`.

use super::*;
use nix::sys::signal::Signal;

/// Sends SIGCONT to a stopped supervisor when dropped, so a failing test leaves nothing
/// frozen behind.
struct Thaw(i64);

impl Drop for Thaw {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(i32::try_from(self.0).unwrap_or(0)),
            Signal::SIGCONT,
        );
    }
}

/// The run's state as `status --json` and `list --json` show it, checked to agree.
fn shown(home: &Home, id: &str) -> (String, Value) {
    let s = home.status(id);
    let state = s["run"]["state"].as_str().expect("state").to_owned();
    let list = home.bgflow(&["list", "--json"]).expect(0).json();
    let listed = list["runs"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["id"] == id))
        .map(|r| r["state"].as_str().unwrap_or("").to_owned());
    // Both read the clock: at a boundary they may differ by one heartbeat; the next read agrees.
    if listed.as_deref() == Some(state.as_str()) {
        (state, s)
    } else {
        (String::from("disagree"), s)
    }
}

#[test]
fn a_frozen_supervisor_is_unresponsive_and_stop_fails_at_its_deadline() {
    let home = Home::new();
    home.write("bgflow.toml", "[monitoring]\nheartbeat = \"250ms\"\n");
    home.write(
        "frozen.toml",
        "[workflow]\nname = \"frozen\"\n\n[steps.nap]\nrun = \"sleep 319\"\n",
    );
    let id = home.detach("frozen.toml");
    let s = home.wait_step_running(&id, "nap");
    assert_eq!(s["run"]["heartbeat_ms"], 250, "{s}");
    let pid = s["run"]["supervisor_pid"].as_i64().expect("supervisor_pid");
    let _thaw = Thaw(pid);

    signal(pid, Signal::SIGSTOP);
    let s = wait_until("the run to be shown unresponsive", SOON, || {
        let (state, s) = shown(&home, &id);
        (state == "unresponsive").then_some(s)
    });
    assert!(
        s["run"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains(&pid.to_string()) && r.contains("heartbeat")),
        "{s}"
    );
    let text = home.bgflow(&["status", &id]).expect(0).stdout;
    assert!(text.contains("unresponsive"), "{text}");
    let active = home.bgflow(&["status", "--json"]).expect(0).json();
    assert_eq!(active["runs"][0]["state"], "unresponsive", "{active}");
    // `--status` filters on the state shown.
    let ids_in = |state: &str| -> Vec<String> {
        let l = home
            .bgflow(&["list", "--status", state, "--json"])
            .expect(0)
            .json();
        l["runs"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["id"].as_str().map(str::to_owned))
            .collect()
    };
    assert_eq!(ids_in("unresponsive"), std::slice::from_ref(&id));
    assert!(ids_in("running").is_empty());

    signal(pid, Signal::SIGCONT);
    wait_until("the run to be shown running again", SOON, || {
        (shown(&home, &id).0 == "running").then_some(())
    });
    let types = event_types(&home.bgflow(&["events", &id]).expect(0).stdout, &id);
    let marks: Vec<&String> = types
        .iter()
        .filter(|t| t.starts_with("run_unresponsive") || t.starts_with("run_responsive"))
        .collect();
    assert_eq!(marks, ["run_unresponsive", "run_responsive"], "{types:?}");

    // Frozen again: `stop` gives up at its deadline, says so, and fails.
    signal(pid, Signal::SIGSTOP);
    wait_until("the run to be unresponsive again", SOON, || {
        (shown(&home, &id).0 == "unresponsive").then_some(())
    });
    let began = Instant::now();
    let out = home
        .bgflow(&["stop", &id, "--yes", "--timeout", "2s"])
        .expect(1);
    assert!(
        began.elapsed() < Duration::from_secs(8),
        "stop took {:?}",
        began.elapsed()
    );
    assert!(
        out.stderr
            .contains(&format!("error: run {id} is still unresponsive after 2")),
        "{}",
        out.stderr
    );

    // Thawed, it acts on the stop request it was sent, and ends cleanly.
    signal(pid, Signal::SIGCONT);
    home.bgflow(&["stop", &id, "--yes"]).expect(0);
    let s = home.wait_done(&id);
    assert_eq!(s["run"]["state"], "cancelled", "{s}");
    wait_gone(&["sleep", "319"]);
}

#[test]
fn a_state_folder_that_cannot_be_written_or_is_too_small_runs_nothing() {
    let home = Home::new();
    home.write(
        "wf.toml",
        "[workflow]\nname = \"wf\"\n\n[steps.s]\nrun = \"touch ran\"\n",
    );
    // Read-only: root ignores file modes, not a read-only mount.
    let ro = home.path().join("ro");
    let _ro = Tmpfs::mount(&ro, "ro,size=1m");
    let small = home.path().join("small");
    let _small = Tmpfs::mount(&small, "size=4m");
    for dir in [&ro, &small] {
        let sd = dir.to_str().expect("utf-8");
        for args in [
            &["--state-dir", sd, "run", "wf.toml", "--progress", "never"][..],
            &["--state-dir", sd, "run", "-d", "wf.toml"][..],
            &["--state-dir", sd, "start", "--", "touch", "ran"][..],
        ] {
            let out = output(home.bare(args)).expect(4);
            assert!(
                out.stderr.contains(&format!("the state folder {sd}"))
                    && out.stderr.contains("nothing ran"),
                "{args:?}: {}",
                out.stderr
            );
            if dir == &small {
                assert!(out.stderr.contains("8 MiB"), "{}", out.stderr);
            } else {
                assert!(out.stderr.contains("cannot be written"), "{}", out.stderr);
            }
            assert_eq!(out.stdout, "");
        }
        assert!(!dir.join("bgflow.db").exists(), "no history in {sd}");
    }
    assert!(!home.path().join("ran").exists(), "nothing ran");
}

/// A detached run whose step fills the state folder's device, then sleeps: its history
/// cannot be written. Returns the home, the mount and the run id.
fn fill_the_state_device(sleep: &str) -> (Home, Tmpfs, String) {
    let home = Home::new();
    let mount = Tmpfs::mount(&home.state(), "size=24m");
    home.write("bgflow.toml", "[monitoring]\nheartbeat = \"250ms\"\n");
    let fill = home.state().join("fill");
    home.write(
        "full.toml",
        &format!(
            "[workflow]\nname = \"full\"\n\n[steps.fill]\nrun = \"head -c 64M /dev/zero > {}; sleep {sleep}\"\n",
            fill.display()
        ),
    );
    let id = home.detach("full.toml");
    wait_until("the device to fill", SOON, || {
        crate_free(&home.state())
            .is_some_and(|f| f < 64 * 1024)
            .then_some(())
    });
    (home, mount, id)
}

fn crate_free(dir: &Path) -> Option<u64> {
    let s = nix::sys::statvfs::statvfs(dir).ok()?;
    #[allow(clippy::useless_conversion)]
    Some(u64::from(s.blocks_available()) * u64::from(s.fragment_size()))
}

#[test]
fn a_history_that_cannot_be_written_is_never_shown_running() {
    let (home, _mount, id) = fill_the_state_device("320");
    let s = wait_until("the run to stop being shown running", SOON, || {
        let s = home.status(&id);
        (s["run"]["state"] != "running" && s["run"]["state"] != "pending").then_some(s)
    });
    assert!(
        s["run"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("no space left")),
        "{s}"
    );
    let list = home.bgflow(&["list", "--json"]).expect(0).json();
    assert_ne!(list["runs"][0]["state"], "running", "{list}");

    // Its supervisor dies while nothing can be written: shown lost on read, with the reason.
    let pid = kill_supervisor(&s);
    let s = wait_until("the run to be shown lost", SOON, || {
        let s = home.status(&id);
        (s["run"]["state"] == "lost").then_some(s)
    });
    let reason = s["run"]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains(&format!("the supervisor (pid {pid}) is gone"))
            && reason.contains("device is full"),
        "{s}"
    );
    // Its start may be one of the writes that were lost: then it does not claim either way.
    let step = step_of(&s, "fill");
    let recorded = step["state"] == "lost";
    assert!(
        recorded
            || (step["state"] == "cancelled"
                && step["reason"] == "not recorded as started before its supervisor went"),
        "{s}"
    );
    let list = home.bgflow(&["list", "--json"]).expect(0).json();
    assert_eq!(list["runs"][0]["state"], "lost", "{list}");
    let text = home.bgflow(&["status", &id]).expect(0).stdout;
    assert!(
        text.contains("lost") && text.contains("no space left"),
        "{text}"
    );

    // Room again: still lost (now written), and `stop` ends what it left behind.
    std::fs::remove_file(home.state().join("fill")).expect("rm fill");
    assert_eq!(home.status(&id)["run"]["state"], "lost");
    home.bgflow(&["stop", &id, "--yes"]).expect(0);
    if !recorded {
        // The history never learned the step's process group: nothing can find it there.
        for pid in processes(&["sleep", "320"]) {
            signal(i64::from(pid), Signal::SIGKILL);
        }
    }
    wait_gone(&["sleep", "320"]);
    assert_eq!(home.status(&id)["run"]["state"], "lost");
}

/// A supervisor whose history cannot be written ends its run (`Sink::broken`): its steps
/// are stopped, it exits, and the run is shown lost or failed with the reason.
#[test]
fn a_supervisor_that_cannot_write_the_history_ends_its_run_and_is_shown_lost() {
    let (home, _mount, id) = fill_the_state_device("321");
    let s = wait_until("the run to end", RUN_DEADLINE, || {
        let s = home.status(&id);
        matches!(s["run"]["state"].as_str(), Some("lost" | "failed")).then_some(s)
    });
    assert!(
        s["run"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("no space left")),
        "{s}"
    );
    let pid = s["run"]["supervisor_pid"].as_i64().expect("supervisor_pid");
    wait_until("the supervisor to exit", SOON, || {
        (!common::still_running(u32::try_from(pid).expect("pid"), "__supervise")).then_some(())
    });
    wait_gone(&["sleep", "321"]);
    for _ in 0..5 {
        let list = home.bgflow(&["list", "--json"]).expect(0).json();
        assert_ne!(list["runs"][0]["state"], "running", "{list}");
    }
    // Room again: what is shown stays true (the run ended; it does not come back).
    std::fs::remove_file(home.state().join("fill")).expect("rm fill");
    let s = home.status(&id);
    assert!(
        matches!(s["run"]["state"].as_str(), Some("lost" | "failed")),
        "{s}"
    );
}

/// The state folder deleted under a running run (`rm -rf .bgflow`, `git clean -fdx`): the
/// supervisor's writes went on into a deleted file, its steps ran to their end unseen
/// (`list` found no history), and a new run of the same tree was not refused (guarantee
/// 11). Now it cannot write the history and ends its steps, as a full device does: a
/// foreground run says why and exits 1; a detached supervisor exits too.
#[test]
fn a_run_whose_history_is_deleted_under_it_ends_its_steps() {
    let home = Home::new();
    home.write(
        "fg.toml",
        "[workflow]\nname = \"fg\"\n\n[steps.long]\nrun = \"sleep 322\"\n",
    );
    let run = home.spawn(&["run", "fg.toml", "--progress", "never"]);
    wait_alive(&["sleep", "322"]);
    std::fs::remove_dir_all(home.state()).expect("rm -rf the state folder");
    let out = run.finish(RUN_DEADLINE);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("was deleted or replaced while the run went on"),
        "{}",
        out.stderr
    );
    wait_gone(&["sleep", "322"]);

    home.write(
        "bg.toml",
        "[workflow]\nname = \"bg\"\n\n[steps.long]\nrun = \"sleep 323\"\n",
    );
    let id = home.detach("bg.toml");
    let s = home.wait_step_running(&id, "long");
    let pid = s["run"]["supervisor_pid"].as_i64().expect("supervisor_pid");
    std::fs::remove_dir_all(home.state()).expect("rm -rf the state folder");
    wait_until("the supervisor to exit", RUN_DEADLINE, || {
        (!common::still_running(u32::try_from(pid).expect("pid"), "__supervise")).then_some(())
    });
    wait_gone(&["sleep", "323"]);
}
