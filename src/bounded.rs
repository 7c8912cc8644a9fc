//! A helper program run with a time limit: the Slurm queries of `plan` (`sinfo`,
//! `scontrol`) and of `status`, the lock and `stop` for a lost run (`squeue`, `scancel`). A
//! cluster whose controller does not answer makes them retry for a minute or more; bgflow
//! waits at most the limit (guarantee 12: nothing hangs).

use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// Runs `cmd` (its stdin /dev/null, its output captured) and waits at most `limit`: its
/// output, or why there is none. Past the limit it is killed with SIGKILL. Its output is read
/// while it runs, so a long answer cannot fill the pipe and stall it.
pub fn output_within(cmd: &mut Command, limit: Duration) -> Result<Output, String> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run `{program}`: {e}"))?;
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.map_err(|e| format!("cannot run `{program}`: {e}")),
        Err(_) => {
            // Not reaped until the reading thread's wait returns: `pid` is still this child.
            if let Ok(raw) = i32::try_from(pid) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(raw),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            Err(format!(
                "`{program}` did not answer within {}",
                seconds(limit)
            ))
        }
    }
}

/// `10 s`, or `1.5 s`.
fn seconds(d: Duration) -> String {
    let ms = d.as_millis();
    if ms % 1000 == 0 {
        format!("{} s", ms / 1000)
    } else {
        format!("{} s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_program_past_its_limit_is_killed_and_named() {
        let started = std::time::Instant::now();
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "exec sleep 37"]);
        let e = output_within(&mut cmd, Duration::from_millis(300)).expect_err("killed");
        assert_eq!(e, "`sh` did not answer within 0.3 s");
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "it waited for sleep"
        );
    }

    #[test]
    fn a_long_answer_does_not_stall_it() {
        let mut cmd = Command::new("sh");
        // 1 MB, far over a pipe's buffer.
        cmd.args(["-c", "head -c 1000000 /dev/zero"]);
        let out = output_within(&mut cmd, Duration::from_secs(20)).expect("its output");
        assert!(out.status.success());
        assert_eq!(out.stdout.len(), 1_000_000);
    }

    #[test]
    fn a_missing_program_says_so() {
        let mut cmd = Command::new("bgflow-no-such-program");
        let e = output_within(&mut cmd, Duration::from_secs(1)).expect_err("missing");
        assert!(
            e.starts_with("cannot run `bgflow-no-such-program`: "),
            "{e}"
        );
    }
}
