//! The service layer (`bgflow::runs`), called as a library on runs the real binary started
//! and supervises: what `bgflow mcp` will call. Its data must be what the CLI shows.

use std::ops::ControlFlow;

use bgflow::runs::{self, LogQuery, Silent};

use super::*;

fn open(home: &Home) -> bgflow::store::Store {
    runs::open(Some(&home.state()), &mut Silent).expect("the history")
}

/// `runs::status::wait` blocks at most its timeout and then gives the run as it is; once
/// the run ends it gives the ended run.
#[test]
fn runs_wait_returns_the_current_run_at_its_timeout_and_the_ended_run_after() {
    let home = Home::new();
    home.write(
        "hold.toml",
        "[workflow]\nname = \"hold\"\n\n[steps.hold]\nrun = \"sh wait.sh go; echo done\"\n",
    );
    let id = home.detach("hold.toml");
    home.wait_step_running(&id, "hold");
    let mut store = open(&home);
    let mut seen = 0;
    let early = runs::status::wait(
        &mut store,
        &id,
        Some(Duration::from_millis(300)),
        Duration::from_millis(50),
        &mut |_| {
            seen += 1;
            ControlFlow::Continue(())
        },
    )
    .expect("wait");
    assert!(early.is_active(), "{:?}", early.run.state);
    assert_eq!(early.run.id, id);
    assert!(seen >= 2, "read {seen} time(s) in 300 ms at 50 ms");
    home.touch("go");
    let ended = runs::status::wait(
        &mut store,
        &id,
        Some(RUN_DEADLINE),
        Duration::from_millis(50),
        &mut |_| ControlFlow::Continue(()),
    )
    .expect("wait");
    assert_eq!(ended.run.state, "succeeded");
    assert_eq!(ended.steps[0].state, "succeeded");
    // The same document `status --json` prints, but for its version.
    let mut shown = home.status(&id);
    shown.as_object_mut().expect("object").remove("version");
    assert_eq!(serde_json::to_value(&ended).expect("json"), shown);
}

/// `runs::logs::page` reads a step's log from an offset, at most `cap` bytes and whole
/// lines, and says whether more followed; the pages joined are the log.
#[test]
fn log_pages_from_offsets_read_a_log_once_to_its_end() {
    let home = Home::new();
    home.write(
        "talk.toml",
        "[workflow]\nname = \"talk\"\n\n[steps.talk]\nrun = \"printf 'one\\\\ntwo\\\\nthree\\\\n'\"\n\n\
         [steps.quiet]\nrun = \"true\"\n",
    );
    let id = home.detach("talk.toml");
    home.wait_done(&id);
    let store = open(&home);
    let ask = |offset: Option<u64>| LogQuery {
        step: Some("talk".to_owned()),
        offset,
        tail: None,
        cap: Some(9),
        confine: false,
    };
    let first = runs::logs::page(&store, &id, &ask(None)).expect("page");
    assert_eq!(
        (first.text.as_str(), first.next_offset, first.truncated),
        ("one\ntwo\n", 8, true)
    );
    let second = runs::logs::page(&store, &id, &ask(Some(first.next_offset))).expect("page");
    assert_eq!(
        (second.text.as_str(), second.next_offset, second.truncated),
        ("three\n", 14, false)
    );
    assert_eq!(second.state, "succeeded");
    let last = runs::logs::page(&store, &id, &ask(Some(second.next_offset))).expect("page");
    assert_eq!((last.text.as_str(), last.truncated), ("", false));
    let tail = LogQuery {
        tail: Some(1),
        ..ask(None)
    };
    assert_eq!(
        runs::logs::page(&store, &id, &tail).expect("page").text,
        "three\n"
    );
    // A step that printed nothing has no log file: an empty page, not an error.
    let quiet = LogQuery {
        step: Some("quiet".to_owned()),
        ..LogQuery::default()
    };
    let page = runs::logs::page(&store, &id, &quiet).expect("page");
    assert_eq!((page.text.as_str(), page.next_offset), ("", 0));
    // Two steps and none named: which log is meant is not guessed.
    let err = runs::logs::page(&store, &id, &LogQuery::default()).expect_err("ambiguous");
    assert_eq!(err.code, 2, "{err}");
    assert!(err.message.contains("has 2 steps; name one"), "{err}");
}

/// `runs::events::page` gives each event as `bgflow events RUN` prints it, and `next`
/// reads on after the last.
#[test]
fn event_pages_hold_what_events_prints() {
    let home = Home::new();
    home.write(
        "one.toml",
        "[workflow]\nname = \"one\"\n\n[steps.a]\nrun = \"true\"\n",
    );
    let id = home.detach("one.toml");
    home.wait_done(&id);
    let printed = home.bgflow(&["events", &id]).expect(0).stdout;
    let store = open(&home);
    let page = runs::events::page(&store, Some(&id), 0, 1000).expect("events");
    let lines: String = page.events.iter().map(|e| format!("{e}\n")).collect();
    assert_eq!(lines, printed);
    assert!(page.events.len() >= 3, "{lines}");
    let after = runs::events::page(&store, Some(&id), page.next, 1000).expect("events");
    assert!(after.events.is_empty(), "{:?}", after.events);
    assert_eq!(after.next, page.next);
}
