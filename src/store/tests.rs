use super::*;

fn new_run(id: &str, dir: &Path, spec: &serde_json::Value) -> NewRun {
    NewRun {
        id: id.to_owned(),
        workflow: "wf".to_owned(),
        file: None,
        root: dir.to_path_buf(),
        kind: "workflow",
        detached: false,
        log_dir: dir.to_path_buf(),
        spec: spec.clone(),
        meta: spec.clone(),
        steps: vec![(0, "task")],
        names: vec!["a".to_owned()].into(),
        outputs: None,
        heartbeat_ms: 2000,
    }
}

#[test]
fn migrates_and_resolves_prefixes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = Store::open(dir.path()).expect("open");
    let spec = serde_json::json!({});
    store
        .create_run(&new_run("abc12345", dir.path(), &spec))
        .expect("insert");
    store
        .create_run(&new_run("abd99999", dir.path(), &spec))
        .expect("insert");
    assert_eq!(store.resolve("abc").expect("unique"), "abc12345");
    assert!(matches!(
        store.resolve("ab"),
        Err(StoreError::AmbiguousRun { .. })
    ));
    assert!(matches!(
        store.resolve("zz"),
        Err(StoreError::UnknownRun(_))
    ));
    assert!(matches!(
        store.resolve("a%"),
        Err(StoreError::UnknownRun(_))
    ));
    drop(store);
    // Opening again does not migrate twice.
    let store = Store::open(dir.path()).expect("reopen");
    assert_eq!(store.runs(&[], 10).expect("runs").len(), 2);
    let mode = std::fs::metadata(dir.path().join("bgflow.db"))
        .expect("db")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn a_run_whose_supervisor_is_gone_is_lost() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = Store::open(dir.path()).expect("open");
    let spec = serde_json::json!({});
    store
        .create_run(&new_run("live0001", dir.path(), &spec))
        .expect("insert");
    store
        .create_run(&new_run("dead0001", dir.path(), &spec))
        .expect("insert");
    let me = std::process::id();
    store
        .apply(&[
            Write::RunStarted {
                run: "live0001".into(),
                pid: me,
                start: crate::procfs::start_time(me),
                heartbeat_ms: 2000,
                containment: "process-group",
                cgroup: None,
            },
            // Our own pid with a wrong start time stands for a reused pid.
            Write::RunStarted {
                run: "dead0001".into(),
                pid: me,
                start: Some(1),
                heartbeat_ms: 2000,
                containment: "process-group",
                cgroup: None,
            },
            Write::StepStarted {
                run: "dead0001".into(),
                idx: 0,
                attempt: 1,
                pid: 1,
                pid_start: None,
                at: now_ms(),
            },
        ])
        .expect("apply");
    // Shown lost on read, before anything is written.
    let (shown, steps) = store
        .run_with_steps("dead0001")
        .expect("query")
        .expect("row");
    assert_eq!(shown.state, "lost");
    assert!(shown
        .reason
        .as_deref()
        .is_some_and(|r| r.contains("is gone")));
    assert_eq!(steps[0].state, "lost");
    assert_eq!(
        store
            .run_stored("dead0001")
            .expect("query")
            .expect("row")
            .state,
        "running"
    );
    assert_eq!(
        store.reconcile_lost().expect("reconcile"),
        vec!["dead0001".to_owned()]
    );
    let run = store.run("dead0001").expect("query").expect("row");
    assert_eq!(run.state, "lost");
    assert_eq!(store.steps("dead0001").expect("steps")[0].state, "lost");
    assert_eq!(
        store.run("live0001").expect("query").expect("row").state,
        "running"
    );
    assert!(store.reconcile_lost().expect("again").is_empty());
}

#[test]
fn refuses_a_newer_schema() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(Store::open(dir.path()).expect("open"));
    let conn = Connection::open(dir.path().join("bgflow.db")).expect("conn");
    conn.pragma_update(None, "user_version", 99).expect("bump");
    drop(conn);
    assert!(matches!(
        Store::open(dir.path()),
        Err(StoreError::TooNew { found: 99, .. })
    ));
}

#[test]
fn a_run_created_within_a_batch_takes_the_writes_after_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = Store::open(dir.path()).expect("open");
    let spec = serde_json::json!({});
    store
        .apply(&[
            Write::RunCreated(Box::new(new_run("new00002", dir.path(), &spec))),
            Write::StepStarted {
                run: "new00002".into(),
                idx: 0,
                attempt: 1,
                pid: 4242,
                pid_start: Some(77),
                at: now_ms(),
            },
        ])
        .expect("apply");
    let steps = store.steps("new00002").expect("steps");
    assert_eq!(steps[0].state, "running");
    assert_eq!(steps[0].pid, Some(4242));
    assert_eq!(steps[0].pid_start, Some(77));
    let events = store.events(Some("new00002"), 0, 10).expect("events");
    assert_eq!(events[0].r#type, "run_created");
}

#[test]
fn a_silent_supervisor_is_unresponsive_until_it_beats_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = Store::open(dir.path()).expect("open");
    let spec = serde_json::json!({});
    store
        .create_run(&new_run("slow0001", dir.path(), &spec))
        .expect("insert");
    let me = std::process::id();
    store
        .apply(&[Write::RunStarted {
            run: "slow0001".into(),
            pid: me,
            start: crate::procfs::start_time(me),
            heartbeat_ms: 100,
            containment: "process-group",
            cgroup: None,
        }])
        .expect("apply");
    store
        .conn
        .execute(
            "UPDATE runs SET heartbeat_at = ?1 WHERE id = 'slow0001'",
            params![now_ms() - 5_000],
        )
        .expect("age the heartbeat");
    let run = store.run("slow0001").expect("query").expect("row");
    assert_eq!(run.state, "unresponsive");
    assert!(run.is_active());
    store.reconcile_lost().expect("reconcile");
    store
        .apply(&[Write::Heartbeat {
            run: "slow0001".into(),
        }])
        .expect("beat");
    assert_eq!(
        store.run("slow0001").expect("q").expect("row").state,
        "running"
    );
    store.reconcile_lost().expect("reconcile");
    let types: Vec<String> = store
        .events(Some("slow0001"), 0, 100)
        .expect("events")
        .into_iter()
        .map(|e| e.r#type)
        .collect();
    assert!(
        types.ends_with(&["run_unresponsive".to_owned(), "run_responsive".to_owned()]),
        "{types:?}"
    );
}

#[test]
fn admission_takes_the_limit_and_the_lock_in_one_transaction() {
    use admit::{Admission, Refusal};
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = Store::open(dir.path()).expect("open");
    let spec = serde_json::json!({});
    let me = std::process::id();
    let a = Admission {
        limit: 2,
        check_lock: true,
        supervisor: Some((me, crate::procfs::start_time(me))),
        with_steps: false,
    };
    let mut first = new_run("lock0001", dir.path(), &spec);
    first.outputs = Some(vec!["build".to_owned()]);
    assert!(store.admit(&first, a).expect("admit").is_none());
    let row = store.run("lock0001").expect("q").expect("row");
    assert_eq!(row.supervisor_pid, Some(i64::from(me)));
    assert_eq!(row.lock.expect("lock").outputs, ["build"]);
    let mut second = new_run("lock0002", dir.path(), &spec);
    second.outputs = Some(vec!["build/x.txt".to_owned()]);
    match store.admit(&second, a).expect("admit") {
        Some(Refusal::Conflict { run, outputs }) => {
            assert_eq!(run.id, "lock0001");
            assert_eq!(outputs, ["build/x.txt"]);
        }
        other => panic!("{other:?}"),
    }
    assert!(
        store.run("lock0002").expect("q").is_none(),
        "nothing written"
    );
    second.outputs = Some(vec!["dist".to_owned()]);
    assert!(store.admit(&second, a).expect("admit").is_none());
    let third = new_run("lock0003", dir.path(), &spec);
    assert!(matches!(
        store.admit(&third, a).expect("admit"),
        Some(Refusal::Limit { limit: 2, .. })
    ));
}

#[test]
fn a_damaged_history_is_refused_not_read_as_empty() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(Store::open(dir.path()).expect("open"));
    let _ = std::fs::remove_file(dir.path().join("bgflow.db-wal"));
    let _ = std::fs::remove_file(dir.path().join("bgflow.db-shm"));
    let db = dir.path().join("bgflow.db");
    let mut bytes = std::fs::read(&db).expect("read");
    bytes[..100].fill(b'x');
    std::fs::write(&db, bytes).expect("write");
    let err = Store::open(dir.path()).err().expect("an error");
    assert!(matches!(err, StoreError::Damaged { .. }), "{err}");
    assert!(err.to_string().contains("not a database"), "{err}");
}

#[test]
fn twenty_processes_creating_one_history_at_once_all_open_it() {
    // Twenty `run -d` into a history that does not exist yet: some got "database is
    // locked" from the set-up (SQLite's busy wait does not cover all of it).
    for _ in 0..40 {
        let dir = tempfile::tempdir().expect("tempdir");
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(20));
        let openers: Vec<_> = (0..20)
            .map(|_| {
                let dir = dir.path().to_path_buf();
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    barrier.wait();
                    Store::open(&dir).map(drop).map_err(|e| e.to_string())
                })
            })
            .collect();
        for o in openers {
            o.join().expect("join").expect("open");
        }
    }
}
