use super::*;

fn new_run<'a>(id: &'a str, dir: &'a Path, spec: &'a serde_json::Value) -> NewRun<'a> {
    NewRun {
        id,
        workflow: "wf",
        file: None,
        root: dir,
        kind: "workflow",
        detached: false,
        log_dir: dir,
        spec,
        meta: spec,
        steps: vec![(0, "a", "task", dir.join("a.log"))],
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
                start: process_start_time(me),
            },
            // Our own pid with a wrong start time stands for a reused pid.
            Write::RunStarted {
                run: "dead0001".into(),
                pid: me,
                start: Some(1),
            },
            Write::StepStarted {
                run: "dead0001".into(),
                idx: 0,
                attempt: 1,
                pid: 1,
                at: now_ms(),
            },
        ])
        .expect("apply");
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
