//! Whether a run's supervisor still lives, and the state a run is shown in.
//!
//! The state a reader shows is computed on read from the stored row and the supervisor's
//! process (guarantee 13): a run stored `pending`/`running` whose supervisor is gone is shown
//! `lost` even when that cannot be written (a full disk), and one whose supervisor lives but
//! has not written its heartbeat for more than two heartbeats (+ `HEARTBEAT_ALLOWANCE_MS`)
//! is shown `unresponsive`. `Store::reconcile_lost` writes what it can of this, best effort.

use std::path::Path;
use std::time::Duration;

use rusqlite::params;

use rusqlite::OptionalExtension;

use super::schema::{run_row, RUN_COLUMNS};
use super::{cached, now_ms, Result, RunRow, StepRow, Store};

/// What a heartbeat may lag behind its interval before the run counts as unresponsive: the
/// write goes through the history writer thread and SQLite's busy wait.
pub const HEARTBEAT_ALLOWANCE_MS: i64 = 1_000;
/// How long a run recorded without a supervisor (a detached run whose supervisor has not
/// started yet) counts as alive.
pub const UNSTARTED_GRACE_MS: i64 = 30_000;
/// The heartbeat of runs recorded before the interval was stored (`monitoring.heartbeat`'s
/// default).
pub const DEFAULT_HEARTBEAT_MS: i64 = 2_000;
/// Below this much free space, the state folder's device counts as full.
const FULL_BELOW: u64 = 256 * 1024;
/// The reason of a step still `pending` when its run's supervisor went: its `StepStarted`
/// may be the write that was lost, so "not started" would be a guess.
pub const NOT_RECORDED: &str = "not recorded as started before its supervisor went";

/// The supervisor of an active run, as judged from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    Alive,
    /// Alive, but its heartbeat is older than two heartbeats: for `silent_ms`.
    Unresponsive {
        silent_ms: i64,
    },
    Gone,
}

/// Judges the supervisor of a run stored `pending` or `running`.
pub fn judge(run: &RunRow, now: i64) -> Liveness {
    match run.supervisor_pid {
        Some(pid) => {
            if !supervisor_alive(pid, run.supervisor_start) {
                return Liveness::Gone;
            }
            let beat = run.heartbeat_ms.unwrap_or(DEFAULT_HEARTBEAT_MS).max(1);
            let last = run
                .heartbeat_at
                .or(run.started_at)
                .unwrap_or(run.created_at);
            let silent_ms = now - last;
            if silent_ms > 2 * beat + HEARTBEAT_ALLOWANCE_MS {
                Liveness::Unresponsive { silent_ms }
            } else {
                Liveness::Alive
            }
        }
        // Created but never started: alive while its creator may still start it.
        None if now - run.created_at > UNSTARTED_GRACE_MS => Liveness::Gone,
        None => Liveness::Alive,
    }
}

/// Free bytes for an unprivileged writer on the device of `dir`.
pub fn free_bytes(dir: &Path) -> Option<u64> {
    let s = nix::sys::statvfs::statvfs(dir).ok()?;
    #[allow(clippy::useless_conversion)] // u32 on some targets
    let (avail, frag) = (
        u64::from(s.blocks_available()),
        u64::from(s.fragment_size()),
    );
    Some(avail.saturating_mul(frag))
}

/// Whether the device of the state folder `dir` is (nearly) full.
pub fn device_full(dir: &Path) -> bool {
    free_bytes(dir).is_some_and(|b| b < FULL_BELOW)
}

const FULL_NOTE: &str = "the state folder's device is full (no space left for the run history)";

/// Why a run whose supervisor is gone is lost.
pub fn lost_reason(run: &RunRow, state_dir: &Path) -> String {
    let why = match run.supervisor_pid {
        Some(pid) => format!("the supervisor (pid {pid}) is gone"),
        None => format!(
            "its supervisor did not start within {} s",
            UNSTARTED_GRACE_MS / 1000
        ),
    };
    with_full_note(why, state_dir)
}

fn unresponsive_reason(run: &RunRow, silent_ms: i64, state_dir: &Path) -> String {
    let secs = Duration::from_millis(u64::try_from(silent_ms).unwrap_or(0)).as_secs_f64();
    let why = format!(
        "the supervisor (pid {}) is alive but has not written its heartbeat for {secs:.1} s",
        run.supervisor_pid.unwrap_or(0)
    );
    with_full_note(why, state_dir)
}

/// `why`, with a note when the state folder's device is full (the likely cause).
fn with_full_note(mut why: String, state_dir: &Path) -> String {
    if device_full(state_dir) {
        why.push_str("; ");
        why.push_str(FULL_NOTE);
    }
    why
}

/// The run as a reader shows it: `unresponsive` or `lost` when its supervisor says so,
/// whatever the stored row says.
pub fn show(run: &mut RunRow, state_dir: &Path, now: i64) {
    if !matches!(run.state.as_str(), "pending" | "running") {
        return;
    }
    match judge(run, now) {
        Liveness::Alive => {}
        Liveness::Unresponsive { silent_ms } => {
            run.reason = Some(unresponsive_reason(run, silent_ms, state_dir));
            run.state = "unresponsive".to_owned();
        }
        Liveness::Gone => {
            run.reason = Some(lost_reason(run, state_dir));
            run.state = "lost".to_owned();
        }
    }
}

/// The steps of a run shown `lost` although stored active, as `reconcile_lost` would write
/// them.
pub fn show_steps(run: &RunRow, steps: &mut [StepRow]) {
    if run.state != "lost" {
        return;
    }
    for s in steps {
        match s.state.as_str() {
            "running" => {
                s.state = "lost".to_owned();
                s.reason = Some("its supervisor is gone".to_owned());
            }
            "pending" => {
                s.state = "cancelled".to_owned();
                s.reason = Some(NOT_RECORDED.to_owned());
            }
            _ => {}
        }
    }
}

impl Store {
    /// The state folder holding this history.
    pub fn state_dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }

    /// Writes what readers see: every active run whose supervisor is gone becomes `lost`
    /// (with its unfinished steps), and a run that turned unresponsive, or back, gets a
    /// `run_unresponsive` / `run_responsive` event. Best effort: a reader waits at most half
    /// a second for the write lock, and shows the right state anyway (`show`). Returns the
    /// ids of the runs it marked lost.
    pub fn reconcile_lost(&mut self) -> Result<Vec<String>> {
        let active = self.runs_stored(&["pending", "running"], 10_000)?;
        let now = now_ms();
        let judged: Vec<(&RunRow, Liveness)> = active.iter().map(|r| (r, judge(r, now))).collect();
        if judged.iter().all(|(r, l)| {
            *l == Liveness::Alive && !self.last_mark_unresponsive(&r.id).unwrap_or(false)
        }) {
            return Ok(Vec::new());
        }
        let dir = self.state_dir().to_path_buf();
        let _ = self.conn.busy_timeout(Duration::from_millis(500));
        let out = self.write(|tx| {
            let mut ids = Vec::new();
            for (seen, _) in &judged {
                // Judged again on the row as it is now, inside the write lock: the run may
                // have ended, or beaten, since it was read.
                let Some(r) = tx
                    .prepare_cached(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1"))?
                    .query_row(params![seen.id], run_row)
                    .optional()?
                    .filter(|r| matches!(r.state.as_str(), "pending" | "running"))
                else {
                    continue;
                };
                let (r, l) = (&r, judge(&r, now_ms()));
                match l {
                    Liveness::Gone => {
                        if mark_lost(tx, r, &lost_reason(r, &dir), now)? {
                            ids.push(r.id.clone());
                        }
                    }
                    Liveness::Unresponsive { silent_ms } => {
                        if last_mark(tx, &r.id)?.is_none_or(|t| t != "run_unresponsive") {
                            cached(tx,
                                "INSERT INTO events (run_id, at, type, data) VALUES (?1, ?2, 'run_unresponsive', ?3)",
                                params![r.id, now, serde_json::json!({"version": 1, "supervisor_pid": r.supervisor_pid, "silent_ms": silent_ms}).to_string()],
                            )?;
                        }
                    }
                    Liveness::Alive => {
                        if last_mark(tx, &r.id)?.is_some_and(|t| t == "run_unresponsive") {
                            cached(tx,
                                "INSERT INTO events (run_id, at, type, data) VALUES (?1, ?2, 'run_responsive', ?3)",
                                params![r.id, now, serde_json::json!({"version": 1, "supervisor_pid": r.supervisor_pid}).to_string()],
                            )?;
                        }
                    }
                }
            }
            Ok(ids)
        });
        let _ = self.conn.busy_timeout(super::BUSY_TIMEOUT);
        out
    }

    /// SQLite's `data_version` for this connection: it changes when another connection
    /// (a supervisor) commits to the history. A reader that polls for a change reads rows
    /// only when it moved, without SQLite's page-cache refill of a full read.
    pub fn data_version(&self) -> Result<i64> {
        self.conn
            .prepare_cached("PRAGMA data_version")
            .and_then(|mut st| st.query_row([], |r| r.get(0)))
            .map_err(|e| self.sql(e))
    }

    fn last_mark_unresponsive(&self, run: &str) -> Result<bool> {
        last_mark(&self.conn, run)
            .map(|t| t.is_some_and(|t| t == "run_unresponsive"))
            .map_err(|e| self.sql(e))
    }
}

/// The type of the run's latest `run_unresponsive` / `run_responsive` event.
fn last_mark(conn: &rusqlite::Connection, run: &str) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached(
        "SELECT type FROM events WHERE run_id = ?1 AND type IN ('run_unresponsive', 'run_responsive')
         ORDER BY id DESC LIMIT 1",
    )?
    .query_row(params![run], |r| r.get(0))
    .optional()
}

/// Writes a run lost, with its unfinished steps; false when it was no longer active.
fn mark_lost(tx: &rusqlite::Connection, r: &RunRow, why: &str, now: i64) -> rusqlite::Result<bool> {
    let changed = tx.execute(
        "UPDATE runs SET state = 'lost', finished_at = ?2, reason = ?3
         WHERE id = ?1 AND state IN ('pending', 'running')",
        params![r.id, now, why],
    )?;
    if changed == 0 {
        return Ok(false);
    }
    cached(
        tx,
        "UPDATE steps SET state = 'lost', reason = 'its supervisor is gone', finished_at = ?2
         WHERE run_id = ?1 AND state = 'running'",
        params![r.id, now],
    )?;
    cached(
        tx,
        "UPDATE steps SET state = 'cancelled', reason = ?2 WHERE run_id = ?1 AND state = 'pending'",
        params![r.id, NOT_RECORDED],
    )?;
    cached(
        tx,
        "INSERT INTO events (run_id, at, type, data) VALUES (?1, ?2, 'run_lost', ?3)",
        params![
            r.id,
            now,
            serde_json::json!({"version": 1, "supervisor_pid": r.supervisor_pid, "reason": why})
                .to_string()
        ],
    )?;
    Ok(true)
}

/// Whether the supervisor recorded as (`pid`, `start`) still runs: same pid, same start
/// time, not a zombie. A stopped (frozen) process counts as alive.
pub fn supervisor_alive(pid: i64, start: Option<i64>) -> bool {
    let Ok(pid) = u32::try_from(pid) else {
        return false;
    };
    if pid == 0 {
        return false;
    }
    match crate::procfs::proc_stat(pid) {
        Some((state, _)) if state != 'Z' && state != 'X' => match start {
            Some(s) => {
                crate::procfs::start_time(pid).is_some_and(|now| i64::try_from(now).ok() == Some(s))
            }
            None => true,
        },
        _ => false,
    }
}
