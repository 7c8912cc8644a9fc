//! `JOB_SCRIPT` run by bash here, without Slurm: the exit file holds the step's own status
//! however the step ends, also when the step ends while the script's trap still runs
//! (as on a loaded machine, where a step whose TERM trap exited 7 was reported killed by
//! SIGTERM).

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::JOB_SCRIPT;

/// How a case ends its step, and the status the exit file must then hold.
#[derive(Clone, Copy, Debug)]
enum Case {
    /// The step exits 3 by itself.
    Exits,
    /// TERM to the script; the script passes it on; the step's trap exits 7.
    TrapExits,
    /// TERM to the script; the step ignores it and exits 0 when told to.
    IgnoresTerm,
    /// The step is killed with SIGKILL, not through the script.
    Killed,
}

impl Case {
    fn step(self) -> &'static str {
        match self {
            Case::Exits => "echo $$ > pid; touch started; exit 3",
            Case::TrapExits => {
                "trap 'exit 7' TERM; echo $$ > pid; touch started; while :; do sleep 0.05; done"
            }
            Case::IgnoresTerm => {
                "trap '' TERM; echo $$ > pid; touch started; until [ -e go ]; do sleep 0.05; done"
            }
            Case::Killed => "echo $$ > pid; touch started; while :; do sleep 0.05; done",
        }
    }

    fn status(self) -> &'static str {
        match self {
            Case::Exits => "3",
            Case::TrapExits => "7",
            Case::IgnoresTerm => "0",
            Case::Killed => "137",
        }
    }
}

fn wait_for(what: &str, deadline: Instant, mut done: impl FnMut() -> bool) {
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn signal(pid: u32, sig: nix::sys::signal::Signal) {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(pid).expect("a pid"));
    nix::sys::signal::kill(pid, sig).expect("signal");
}

/// Runs `script` with the step of `case` in its own process group (the script signals
/// its group) and returns what its exit file holds.
fn run(script: &str, case: Case, dir: &Path) -> String {
    let path = dir.join("job.sh");
    std::fs::write(&path, script).expect("write the script");
    let exit_file = dir.join("exit");
    let mut child = Command::new("bash")
        .arg(&path)
        .arg(&exit_file)
        .args(["sh", "-c", case.step()])
        .current_dir(dir)
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("bash");
    let deadline = Instant::now() + Duration::from_secs(20);
    wait_for("the step to start", deadline, || {
        dir.join("started").exists()
    });
    let step_pid: u32 = std::fs::read_to_string(dir.join("pid"))
        .expect("the step's pid")
        .trim()
        .parse()
        .expect("a pid");
    use nix::sys::signal::Signal;
    match case {
        Case::Exits => {}
        Case::TrapExits => signal(child.id(), Signal::SIGTERM),
        Case::IgnoresTerm => {
            signal(child.id(), Signal::SIGTERM);
            std::fs::write(dir.join("go"), "").expect("go");
        }
        Case::Killed => signal(step_pid, Signal::SIGKILL),
    }
    wait_for("the script to end", deadline, || {
        child.try_wait().expect("wait").is_some()
    });
    std::fs::read_to_string(&exit_file)
        .unwrap_or_default()
        .trim()
        .to_owned()
}

#[test]
fn the_exit_file_holds_the_steps_own_status() {
    // The script as it is, and with its trap held until bash has reaped the step (the
    // order a loaded machine gave): the trap's `kill -TERM 0` ends the step, and the
    // script goes on only once the step is gone.
    let held = JOB_SCRIPT.replace(
        "kill -TERM 0 2>/dev/null'",
        "kill -TERM 0 2>/dev/null; while kill -0 \"$child\" 2>/dev/null; do sleep 0.01; done'",
    );
    assert_ne!(held, JOB_SCRIPT, "the trap to hold was not found");
    for (name, script) in [("as written", JOB_SCRIPT), ("trap held", held.as_str())] {
        for case in [
            Case::Exits,
            Case::TrapExits,
            Case::IgnoresTerm,
            Case::Killed,
        ] {
            let dir = tempfile::tempdir().expect("a temp dir");
            assert_eq!(
                run(script, case, dir.path()),
                case.status(),
                "{name}, {case:?}"
            );
        }
    }
}
