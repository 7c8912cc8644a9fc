//! The history survives its WAL (it is checkpointed at the end of every run), a damaged
//! `bgflow.db` is refused with a clear message, and `runs/` folders the history does not
//! know are reported and removable.

use super::*;

const TWO: &str = "[workflow]\nname = \"two\"\n\n[steps.s]\nrun = \"echo hi\"\n";

/// Two finished runs; returns their ids.
fn two_runs(home: &Home) -> Vec<String> {
    home.write("two.toml", TWO);
    let (a, out) = home.run("two.toml");
    out.expect(0);
    let b = run_id_of(&home.bgflow(&["run", "-d", "two.toml"]).expect(0));
    let s = home.wait_done(&b);
    // Its supervisor checkpoints the history after the run's last write, then exits.
    let pid = s["run"]["supervisor_pid"].as_i64().expect("supervisor_pid");
    wait_until("the supervisor to exit", SOON, || {
        (!common::still_running(u32::try_from(pid).expect("pid"), "__supervise")).then_some(())
    });
    vec![b, a]
}

fn listed(home: &Home) -> Vec<String> {
    let list = home.bgflow(&["list", "--json"]).expect(0).json();
    list["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .map(|r| {
            assert_eq!(r["state"], "succeeded", "{r}");
            r["id"].as_str().expect("id").to_owned()
        })
        .collect()
}

#[test]
fn losing_or_garbling_the_wal_loses_no_finished_run() {
    for garble in [false, true] {
        let home = Home::new();
        let ids = two_runs(&home);
        let wal = home.state().join("bgflow.db-wal");
        if garble {
            let mut bytes = std::fs::read(&wal).expect("read the WAL");
            let n = bytes.len().min(32);
            bytes[..n].fill(0xa5);
            std::fs::write(&wal, bytes).expect("garble the WAL");
        } else {
            std::fs::remove_file(&wal).expect("rm the WAL");
            let _ = std::fs::remove_file(home.state().join("bgflow.db-shm"));
        }
        assert_eq!(listed(&home), ids, "garbled: {garble}");
        assert_eq!(
            home.bgflow(&["logs", &ids[0], "s"]).expect(0).stdout,
            "hi\n"
        );
    }
}

#[test]
fn a_damaged_history_is_refused_with_exit_4_not_read_as_empty() {
    let home = Home::new();
    two_runs(&home);
    let db = home.state().join("bgflow.db");
    let mut bytes = std::fs::read(&db).expect("read");
    bytes[..100].fill(b'#');
    std::fs::write(&db, bytes).expect("write");
    for args in [
        &["list"][..],
        &["list", "--json"][..],
        &["status"][..],
        &["run", "two.toml", "--progress", "never"][..],
    ] {
        let out = home.bgflow(args).expect(4);
        assert!(
            out.stderr.contains("is damaged (file is not a database)")
                && out.stderr.contains("move it away")
                && out.stderr.contains(db.to_str().expect("utf-8")),
            "{args:?}: {}",
            out.stderr
        );
        assert!(!out.stderr.contains("no runs"), "{}", out.stderr);
        assert_eq!(out.stdout, "", "{args:?}");
    }
}

#[test]
fn run_folders_unknown_to_the_history_are_reported_and_removable() {
    let home = Home::new();
    let ids = two_runs(&home);
    let runs = home.state().join("runs");
    for name in ["zzzzzzzz", "young000"] {
        std::fs::create_dir_all(runs.join(name)).expect("mkdir");
        std::fs::write(runs.join(name).join("s.log"), "old\n").expect("write");
    }
    // Only folders older than a minute: a foreground run's folder may precede its row.
    let status = Command::new("touch")
        .args(["-d", "2 hours ago"])
        .arg(runs.join("zzzzzzzz"))
        .status()
        .expect("touch");
    assert!(status.success());

    let out = home.bgflow(&["list"]).expect(0);
    assert!(
        out.stderr.contains("warning: 1 run folder(s) in")
            && out.stderr.contains("zzzzzzzz")
            && out.stderr.contains("bgflow cleanup --orphans"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("young000"), "{}", out.stderr);
    assert!(
        !out.stdout.contains("zzzzzzzz"),
        "stdout is data: {}",
        out.stdout
    );
    let json = home.bgflow(&["list", "--json"]).expect(0).json();
    assert_eq!(json["orphans"], serde_json::json!(["zzzzzzzz"]), "{json}");

    let out = home
        .bgflow(&["cleanup", "--orphans", "--dry-run"])
        .expect(0);
    assert!(out.stdout.contains("would remove") && out.stdout.contains("zzzzzzzz"));
    assert!(runs.join("zzzzzzzz").is_dir());
    let out = home.bgflow(&["cleanup", "--orphans"]).expect(0);
    assert!(out.stdout.contains("removed"), "{}", out.stdout);
    assert!(!runs.join("zzzzzzzz").exists());
    assert!(runs.join("young000").is_dir(), "too young to be judged");
    for id in &ids {
        assert!(runs.join(id).is_dir(), "a known run's folder stays");
    }
    let out = home.bgflow(&["list"]).expect(0);
    assert!(!out.stderr.contains("warning"), "{}", out.stderr);
}

#[test]
fn a_new_history_beside_old_run_folders_says_so() {
    let home = Home::new();
    let ids = two_runs(&home);
    // The history is lost; an empty file stands in its place.
    for f in ["bgflow.db", "bgflow.db-wal", "bgflow.db-shm"] {
        let _ = std::fs::remove_file(home.state().join(f));
    }
    std::fs::write(home.state().join("bgflow.db"), "").expect("an empty bgflow.db");
    let out = home.bgflow(&["list", "--json"]).expect(0);
    assert!(
        out.stderr.contains("was a new, empty run history")
            && out.stderr.contains("2 run folder(s)"),
        "{}",
        out.stderr
    );
    assert_eq!(out.json()["runs"], serde_json::json!([]));
    // Once old enough, they are orphans like any other.
    for id in &ids {
        let status = Command::new("touch")
            .args(["-d", "2 hours ago"])
            .arg(home.state().join("runs").join(id))
            .status()
            .expect("touch");
        assert!(status.success());
    }
    let mut orphans: Vec<String> = ids.clone();
    orphans.sort();
    let json = home.bgflow(&["list", "--json"]).expect(0).json();
    assert_eq!(json["orphans"], serde_json::json!(orphans), "{json}");
}
