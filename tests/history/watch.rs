//! `status --watch` off a terminal (issue 19).

use super::*;

/// Issue 19: "`status --watch` off a terminal printed 220 snapshots (1,540 lines) for a 66 s
/// run because the elapsed time counts as a change". A step that prints a line every 50 ms
/// for over two seconds changes its duration and its last line many times; the snapshots
/// printed are only those where a state, a count or a progress changed.
#[test]
fn status_watch_off_a_terminal_prints_a_snapshot_only_when_a_state_or_progress_changes() {
    let home = Home::new();
    home.write(
        "chatty.toml",
        "[workflow]\nname = \"chatty\"\n\n[steps.talk]\n\
         run = \"i=0; while [ ! -e go ]; do i=$((i+1)); echo line $i; sleep 0.05; done\"\n\
         progress = 'STEP (?P<current>\\d+)/(?P<total>\\d+)'\n\n\
         [steps.after]\nneeds = [\"talk\"]\nrun = \"echo STEP 1/2; sh wait.sh go2; echo STEP 2/2\"\n\
         progress = 'STEP (?P<current>\\d+)/(?P<total>\\d+)'\n",
    );
    let id = home.detach("chatty.toml");
    home.wait_step_running(&id, "talk");
    let watch = home.spawn(&["status", &id, "--watch"]);
    wait_until("a first snapshot", SOON, || {
        watch
            .stdout()
            .contains(&format!("run {id} · "))
            .then_some(())
    });
    // Over two seconds of output, so that the shown duration of `talk` changes at least
    // twice and its last line many times.
    let log = home.state().join("runs").join(&id).join("talk.log");
    wait_until("50 lines of output", SOON, || {
        std::fs::read_to_string(&log)
            .ok()
            .filter(|l| l.contains("line 50\n"))
    });
    let before_go = watch.stdout().matches(&format!("run {id} · ")).count();
    assert_eq!(
        before_go,
        1,
        "nothing but time and output changed:\n{}",
        watch.stdout()
    );
    home.touch("go");
    home.wait_step_running(&id, "after");
    wait_until("the progress of `after`", SOON, || {
        watch.stdout().contains("1/2").then_some(())
    });
    home.touch("go2");
    let out = watch.finish(RUN_DEADLINE).expect(0);
    assert!(out.stdout.contains("· succeeded ·"), "{}", out.stdout);
    let snapshots = out.stdout.matches(&format!("run {id} · ")).count();
    // talk running; after running (1/2, perhaps apart from its start); succeeded. Between
    // the last two, `after` may be seen at 2/2 or done while the run is still finishing.
    assert!(
        (3..=6).contains(&snapshots),
        "{snapshots} snapshots, one per state or progress change:\n{}",
        out.stdout
    );
}
