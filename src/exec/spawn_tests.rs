//! Tests of `spawn`: the environment, the path search, starts that fail, start times.

use super::*;
use std::os::fd::AsFd;

fn env_of(e: &Environment, own: &[(&str, &str)]) -> Vec<String> {
    let (_owned, ptrs) = e.with(own).expect("env");
    ptrs.iter()
        .take_while(|p| !p.is_null())
        .map(|p| unsafe { CStr::from_ptr(*p) }.to_string_lossy().into_owned())
        .collect()
}

#[test]
fn run_wide_then_own_variables_win_and_each_key_appears_once() {
    let e = Environment::capture(&[
        ("BGFLOW_TEST_A".into(), "run".into()),
        ("BGFLOW_TEST_B".into(), "run".into()),
    ]);
    let vars = env_of(
        &e,
        &[
            ("BGFLOW_TEST_B", "step"),
            ("BGFLOW_TEST_B", "last"),
            ("BGFLOW_STEP", "s"),
        ],
    );
    let get = |k: &str| {
        vars.iter()
            .filter(|v| v.starts_with(&format!("{k}=")))
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(get("BGFLOW_TEST_A"), ["BGFLOW_TEST_A=run"]);
    assert_eq!(get("BGFLOW_TEST_B"), ["BGFLOW_TEST_B=last"]);
    assert_eq!(get("BGFLOW_STEP"), ["BGFLOW_STEP=s"]);
    // A key that only shares a prefix is not overridden.
    let vars = env_of(&e, &[("BGFLOW_TEST", "x")]);
    assert!(vars.contains(&"BGFLOW_TEST_A=run".to_owned()));
}

#[test]
fn programs_are_found_on_the_path_the_child_gets() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    for d in [&a, &b] {
        std::fs::create_dir(d).expect("mkdir");
        let tool = d.join("bgflow-test-tool");
        std::fs::write(&tool, "#!/bin/sh\n").expect("write");
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let a_path = a.display().to_string();
    let e = Environment::capture(&[("PATH".into(), a_path.clone())]);
    let found = |own: &[(&str, &str)]| {
        e.find("bgflow-test-tool", own, dir.path())
            .map(|c| c.to_string_lossy().into_owned())
    };
    let in_a = a.join("bgflow-test-tool").display().to_string();
    let in_b = b.join("bgflow-test-tool").display().to_string();
    assert_eq!(found(&[]).expect("on [env]'s PATH"), in_a);
    let b_path = b.display().to_string();
    assert_eq!(
        found(&[("PATH", &b_path)]).expect("on the step's PATH"),
        in_b,
        "a step's own PATH is searched, not the run's cached answer"
    );
    assert_eq!(found(&[]).expect("cached"), in_a);
    assert!(found(&[("PATH", "/nonexistent")]).is_err());
    // A relative folder is found from the step's cwd.
    assert_eq!(found(&[("PATH", "b")]).expect("relative"), in_b);
}

/// A start that fails in the child, before `execve`, is the caller's error with the
/// child's errno.
#[test]
fn a_start_that_fails_in_the_child_is_an_error() {
    let e = Environment::capture(&[]);
    let null = std::fs::File::open("/dev/null").expect("/dev/null");
    let dir = tempfile::tempdir().expect("tempdir");
    let not_executable = dir.path().join("plain");
    std::fs::write(&not_executable, "echo hi\n").expect("write");
    let start = |argv: &[&str], cwd: &Path| {
        spawn(
            &e,
            &Launch {
                argv,
                cwd,
                env: &[],
                stdin: null.as_fd(),
                output: null.as_fd(),
                cgroup: None,
            },
        )
    };
    let missing_cwd = start(&["true"], &dir.path().join("missing"));
    assert_eq!(
        missing_cwd.err().map(|e| e.raw_os_error()),
        Some(Some(libc::ENOENT)),
        "chdir into a missing folder"
    );
    let plain = not_executable.display().to_string();
    assert_eq!(
        start(&[&plain], dir.path()).err().map(|e| e.raw_os_error()),
        Some(Some(libc::EACCES)),
        "execve of a file without the execute bit"
    );
    let started = start(&["sh", "-c", "exit 7"], dir.path()).expect("a start that works");
    assert!(started.pidfd.is_some(), "clone made a pidfd");
    let pid = started.pid;
    let mut status = 0;
    // SAFETY: waiting for the child this test started.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert_eq!(libc::WEXITSTATUS(status), 7);
}

/// The start time taken from the clock is the one /proc gives, start after start;
/// where the clock cannot tell, it says nothing rather than a guess.
#[test]
fn the_start_time_from_the_clock_is_the_one_proc_gives() {
    let e = Environment::capture(&[]);
    let null = std::fs::File::open("/dev/null").expect("/dev/null");
    let (mut told, mut checked) = (0, 0);
    for _ in 0..300 {
        let launch = Launch {
            argv: &["true"],
            cwd: Path::new("/"),
            env: &[],
            stdin: null.as_fd(),
            output: null.as_fd(),
            cgroup: None,
        };
        let started = spawn(&e, &launch).expect("start `true`");
        // Until it is reaped, its /proc entry stays, exited or not.
        let proc_says =
            crate::procfs::start_time(started.pid.unsigned_abs()).expect("/proc/PID/stat");
        if let Some(clock_says) = started.start_time {
            assert_eq!(clock_says, proc_says, "pid {}", started.pid);
            told += 1;
        }
        checked += 1;
        let mut status = 0;
        // SAFETY: waiting for the child this test started.
        assert_eq!(
            unsafe { libc::waitpid(started.pid, &mut status, 0) },
            started.pid
        );
    }
    // Each start the clock tells must be right; how many it tells depends on the load (a
    // start whose clone spans a tick boundary is left to /proc), so only "some" is asserted.
    assert!(told > 0, "the clock told none of {checked} start times");
    // Readings in two ticks, or the wrong way round, say nothing.
    assert_eq!(start_time_between(19_999_999, 20_000_001, 100), None);
    assert_eq!(start_time_between(20_000_005, 20_000_001, 100), None);
    assert_eq!(start_time_between(20_000_001, 29_999_999, 100), Some(2));
    assert_eq!(start_time_between(1, 2, 0), None);
}

#[test]
fn a_nul_byte_is_an_error_not_a_panic() {
    let e = Environment::capture(&[]);
    assert!(e.with(&[("K", "a\0b")]).is_err());
}
