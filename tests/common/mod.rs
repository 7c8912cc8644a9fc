//! Helpers shared by the integration-test binaries: a marker-waiting script, and looking
//! at live processes in /proc.
//! A zombie (state `Z`) counts as gone: this machine's init reaps slowly.
#![allow(dead_code)]

/// `sh wait.sh FILE`: waits until FILE exists, for at most ~20 s (then exit 9, so a step
/// that waits for a marker nobody makes fails instead of hanging the suite).
pub const WAIT_SH: &str = r#"i=0
while [ ! -e "$1" ]; do
  i=$((i+1))
  if [ "$i" -gt 400 ]; then echo "gave up waiting for $1"; exit 9; fi
  sleep 0.05
done
"#;

/// Pids of live processes whose command line contains `needle` (zombies count as gone).
pub fn live_processes(needle: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| {
            let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                return false;
            };
            let cmdline = String::from_utf8_lossy(&raw).replace('\0', " ");
            cmdline.contains(needle) && proc_state(pid).is_some_and(|s| s != 'Z' && s != 'X')
        })
        .collect()
}

/// The fields of /proc/PID/stat after the command name (field 3, the state, first).
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    Some(rest.split(' ').map(str::to_owned).collect())
}

/// State letter and process group of a pid, from /proc/PID/stat.
pub fn proc_stat(pid: u32) -> Option<(char, i32)> {
    let fields = stat_fields(pid)?;
    let state = fields.first()?.chars().next()?;
    let pgrp = fields.get(2)?.parse().ok()?;
    Some((state, pgrp))
}

pub fn proc_state(pid: u32) -> Option<char> {
    proc_stat(pid).map(|(s, _)| s)
}

/// Field 22 of /proc/PID/stat: the process's start time in clock ticks after boot.
pub fn proc_start_time(pid: u32) -> Option<u64> {
    stat_fields(pid)?.get(19)?.parse().ok()
}

/// Live (non-zombie) members of process group `pgid`.
pub fn live_group_members(pgid: i32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| proc_stat(pid).is_some_and(|(s, g)| g == pgid && s != 'Z' && s != 'X'))
        .collect()
}

/// Whether `pid` is still the live process whose command line contains `needle`.
pub fn still_running(pid: u32, needle: &str) -> bool {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|raw| String::from_utf8_lossy(&raw).replace('\0', " "))
        .unwrap_or_default();
    cmdline.contains(needle) && proc_state(pid).is_some_and(|s| s != 'Z' && s != 'X')
}

#[track_caller]
pub fn assert_no_process(needle: &str) {
    let left: Vec<String> = live_processes(needle).into_iter().map(describe).collect();
    assert!(left.is_empty(), "processes `{needle}` survived: {left:#?}");
}

/// What a failed test should say about a process: its state, parent, group, cgroup and
/// command line (so that a survivor can be told from someone else's process).
pub fn describe(pid: u32) -> String {
    let fields = stat_fields(pid).unwrap_or_default();
    let field = |i: usize| fields.get(i).map_or("?", String::as_str).to_owned();
    let read = |what: &str| {
        std::fs::read(format!("/proc/{pid}/{what}"))
            .map(|raw| {
                String::from_utf8_lossy(&raw)
                    .replace('\0', " ")
                    .trim()
                    .to_owned()
            })
            .unwrap_or_default()
    };
    let cgroups = read("cgroup");
    // The cgroup v2 line; this machine also lists its v1 hierarchies.
    let cgroup = cgroups
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .unwrap_or("?");
    format!(
        "pid {pid} state {} ppid {} pgid {} cgroup {cgroup}: {}",
        field(0),
        field(1),
        field(2),
        read("cmdline")
    )
}
