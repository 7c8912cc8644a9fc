//! The run history: `.bgflow/bgflow.db`, SQLite in WAL mode. The only module with SQL.
//!
//! Runs, steps, events and fingerprints. Writers keep transactions short and readers never
//! block them (WAL); a busy timeout absorbs the rest, so many supervisors and many `status`
//! calls can share one file. Migrations are keyed on `PRAGMA user_version`.

pub mod admit;
mod create;
mod cursor;
mod fingerprints;
pub mod liveness;
mod schema;
mod write;

pub use fingerprints::Recorded;
pub use liveness::supervisor_alive;
pub use write::{StepFinish, Write};

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::config::DbConfig;
use rusqlite::{params, Connection, OptionalExtension};

use schema::{run_row, step_row, MIGRATIONS, RUN_COLUMNS, STEP_COLUMNS};
pub use schema::{EventRow, Lock, Process, RunRow, StepRow};

/// Errors of the store, with the file they concern.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the run history {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("cannot create the state folder {path}: {source}")]
    Folder {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("run history {path}: {source}")]
    Sql {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("the run history {path} was written by a newer bgflow (schema {found}, this bgflow knows {known})")]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("the run history {path} is damaged ({what}); move it away to start a new history (the runs/ folders are kept)")]
    Damaged { path: PathBuf, what: String },
    #[error("no run matches `{0}`")]
    UnknownRun(String),
    #[error("`{prefix}` matches several runs: {}", .candidates.join(", "))]
    AmbiguousRun {
        prefix: String,
        candidates: Vec<String>,
    },
}

pub type Result<T> = std::result::Result<T, StoreError>;

impl StoreError {
    /// Whether the error is the device running out of space.
    pub fn is_full(&self) -> bool {
        match self {
            Self::Sql { source, .. } | Self::Open { source, .. } => {
                source.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull)
            }
            Self::Folder { source, .. } => source.raw_os_error() == Some(libc::ENOSPC),
            _ => false,
        }
    }
}

/// `Sql`, or `Damaged` when SQLite says the file is not a database or is corrupt.
/// SQLite's "database is locked" (or a table locked by this connection).
fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

fn sql_error(path: &Path, source: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode::{DatabaseCorrupt, NotADatabase};
    match source.sqlite_error_code() {
        Some(NotADatabase) => StoreError::Damaged {
            path: path.to_path_buf(),
            what: "file is not a database".to_owned(),
        },
        Some(DatabaseCorrupt) => StoreError::Damaged {
            path: path.to_path_buf(),
            what: "the database disk image is malformed".to_owned(),
        },
        _ => StoreError::Sql {
            path: path.to_path_buf(),
            source,
        },
    }
}

/// How long a writer waits for another's transaction.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs one statement through the connection's statement cache: a run writes the same few
/// statements thousands of times, and parsing them again each time was a tenth of the
/// executor's own time.
fn cached(
    conn: &rusqlite::Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute(params)
}

/// The row of a new run; `supervisor`: this process, for a foreground run. `OR IGNORE`: a
/// foreground run's row is inserted at admission, and its `RunCreated` write only adds the
/// steps.
fn insert_run_row(
    tx: &rusqlite::Connection,
    run: &NewRun,
    now: i64,
    supervisor: Option<(u32, Option<u64>)>,
) -> rusqlite::Result<usize> {
    cached(
        tx,
        "INSERT OR IGNORE INTO runs (id, workflow, file, root, kind, state, detached, created_at, steps_total, log_dir,
         spec, meta, heartbeat_ms, lock_outputs, supervisor_pid, supervisor_start, heartbeat_at)
         VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
        params![
            run.id,
            run.workflow,
            run.file.as_ref().map(|f| f.display().to_string()),
            run.root.display().to_string(),
            run.kind,
            run.detached,
            now,
            run.steps.len() as i64,
            run.log_dir.display().to_string(),
            run.spec.to_string(),
            run.meta.to_string(),
            run.heartbeat_ms,
            run.outputs
                .as_ref()
                .map(|o| serde_json::Value::from(o.clone()).to_string()),
            supervisor.map(|(pid, _)| i64::from(pid)),
            supervisor.and_then(|(_, start)| start).and_then(|s| i64::try_from(s).ok()),
            supervisor.map(|_| now),
        ],
    )
}

/// The steps of a new run, and its `run_created` event.
fn insert_steps(tx: &rusqlite::Connection, run: &NewRun, now: i64) -> rusqlite::Result<usize> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO steps (run_id, idx, name, kind, state, log_path) VALUES (?1, ?2, ?3, ?4, 'pending', ?5)",
    )?;
    for &(idx, kind) in &run.steps {
        let name = &run.names[idx];
        let log = crate::layout::log_file(&run.log_dir, name);
        stmt.execute(params![
            run.id,
            idx as i64,
            name,
            kind,
            log.display().to_string()
        ])?;
    }
    cached(
        tx,
        "INSERT INTO events (run_id, at, type, data) VALUES (?1, ?2, 'run_created', ?3)",
        params![
            run.id,
            now,
            serde_json::json!({"version": 1, "workflow": run.workflow, "detached": run.detached})
                .to_string()
        ],
    )
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    to_ms(SystemTime::now())
}

pub fn to_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// An open run history.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// The device and inode of `path` once open: a history deleted or replaced under a
    /// running supervisor (`rm -rf .bgflow`, `git clean -fdx`) takes its writes into a
    /// file nobody reads (`still_at_its_path`).
    file_id: Option<(u64, u64)>,
    /// Run folders already in `runs/` when this open created the history's schema: the
    /// history was lost or replaced, and they are not in it (`new_history_warning`).
    pub created_over: usize,
}

/// A new run and its steps, as first recorded: `pending`, nothing started.
#[derive(Debug, Clone)]
pub struct NewRun {
    pub id: String,
    pub workflow: String,
    pub file: Option<PathBuf>,
    pub root: PathBuf,
    pub kind: &'static str,
    pub detached: bool,
    pub log_dir: PathBuf,
    /// How to run it again (`resume`, and the detached supervisor): JSON.
    pub spec: serde_json::Value,
    pub meta: serde_json::Value,
    /// (index, kind) of each selected step; its log is `log_dir/<name>.log`.
    pub steps: Vec<(usize, &'static str)>,
    /// Every step's name, by index (shared with the run's other consumers).
    pub names: std::sync::Arc<[String]>,
    /// The outputs its selected steps declare, normalized (`admit::normalize_output`):
    /// its lock. `None`: it takes no lock.
    pub outputs: Option<Vec<String>>,
    /// `monitoring.heartbeat`, in ms.
    pub heartbeat_ms: i64,
}

impl Store {
    /// Opens (creating it, mode 0700, if needed) the store in `state_dir`.
    pub fn open(state_dir: &Path) -> Result<Self> {
        ensure_private_dir(state_dir)?;
        let path = state_dir.join("bgflow.db");
        check_header(&path)?;
        let created = create::new_history(state_dir, &path);
        let conn = Connection::open(&path).map_err(|source| StoreError::Open {
            path: path.clone(),
            source,
        })?;
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
        let file_id = file_id(&path);
        let mut store = Self {
            conn,
            path,
            file_id,
            created_over: if created { run_folders(state_dir) } else { 0 },
        };
        // A history being created or migrated by another process can answer "database is
        // locked" where SQLite's busy wait does not apply (switching a new file to WAL, its
        // shared-memory index being set up): set-up is tried again until BUSY_TIMEOUT.
        let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
        loop {
            match store.setup() {
                Err(StoreError::Sql { source, .. })
                    if is_busy(&source) && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(20));
                }
                done => return done.map(|()| store),
            }
        }
    }

    /// Whether the history file this store writes is still the one at its path: `false`
    /// once it was deleted or another file took its place, when every write goes into a
    /// file no other bgflow command will read.
    pub fn still_at_its_path(&self) -> bool {
        self.file_id
            .is_none_or(|id| file_id(&self.path) == Some(id))
    }

    /// Opens an existing store; `None` when there is none.
    pub fn open_existing(state_dir: &Path) -> Result<Option<Self>> {
        if !state_dir.join("bgflow.db").exists() {
            return Ok(None);
        }
        Self::open(state_dir).map(Some)
    }

    fn sql(&self, source: rusqlite::Error) -> StoreError {
        sql_error(&self.path, source)
    }

    fn setup(&mut self) -> Result<()> {
        self.conn
            .busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| self.sql(e))?;
        self.conn
            .execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
            )
            .map_err(|e| self.sql(e))?;
        // The last connection to close would copy the WAL into the database and delete it:
        // deleting a 4 MB WAL took 9 ms here, half of the time `run` spent after its last
        // step. Left in place, the next writer reuses the file and checkpoints it as it
        // grows. Nothing is less safe: the WAL's commits are the database's.
        self.conn
            .set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
            .map_err(|e| self.sql(e))?;
        let version: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| self.sql(e))?;
        let known = MIGRATIONS.len() as i64;
        if version > known {
            return Err(StoreError::TooNew {
                path: self.path.clone(),
                found: version,
                known,
            });
        }
        if version < known {
            let tx = self
                .conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(|e| sql_error(&self.path, e))?;
            // Read again inside the lock: another process may have migrated meanwhile.
            let current: i64 = tx
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .unwrap_or(version);
            if current == 0 {
                self.created_over = self.path.parent().map_or(0, run_folders);
            }
            for (i, m) in MIGRATIONS
                .iter()
                .enumerate()
                .skip(usize::try_from(current).unwrap_or(0))
            {
                tx.execute_batch(m).map_err(|e| sql_error(&self.path, e))?;
                tx.pragma_update(None, "user_version", i as i64 + 1)
                    .map_err(|e| sql_error(&self.path, e))?;
            }
            tx.commit().map_err(|e| sql_error(&self.path, e))?;
        }
        Ok(())
    }

    /// Runs `f` in one IMMEDIATE transaction (a writer takes the lock up front, so two
    /// writers never deadlock upgrading a read lock), committing when it returns `Ok`.
    fn write<T>(
        &mut self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T> {
        let path = self.path.clone();
        let sql = |source| sql_error(&path, source);
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(sql)?;
        let out = f(&tx).map_err(sql)?;
        tx.commit().map_err(sql)?;
        Ok(out)
    }

    pub fn create_run(&mut self, run: &NewRun) -> Result<()> {
        let now = now_ms();
        self.write(|tx| {
            insert_run_row(tx, run, now, None)?;
            insert_steps(tx, run, now).map(drop)
        })
    }

    /// Applies writes in one transaction.
    pub fn apply(&mut self, writes: &[Write]) -> Result<()> {
        if writes.is_empty() {
            return Ok(());
        }
        self.write(|tx| {
        let now = now_ms();
        // Finished steps per run, added to `steps_done` once per batch.
        let mut done: Vec<(&String, i64)> = Vec::new();
        for w in writes {
            match w {
                Write::RunCreated(new) => insert_run_row(tx, new, now, None).and_then(|_| insert_steps(tx, new, now)),
                Write::RunStarted { run, pid, start, heartbeat_ms, containment, cgroup } => cached(tx,
                    "UPDATE runs SET state = 'running', started_at = COALESCE(started_at, ?2), supervisor_pid = ?3,
                     supervisor_start = ?4, heartbeat_at = ?2, heartbeat_ms = ?5, containment = ?6, cgroup = ?7
                     WHERE id = ?1",
                    params![run, now, *pid as i64, start.map(|s| s as i64), heartbeat_ms, containment, cgroup],
                ),
                Write::Heartbeat { run } => cached(tx, "UPDATE runs SET heartbeat_at = ?2 WHERE id = ?1", params![run, now]),
                Write::StepStarted { run, idx, attempt, pid, pid_start, at } => cached(tx,
                    "UPDATE steps SET state = 'running', attempts = ?3, pid = ?4, pgid = ?4, pid_start = ?6,
                     started_at = COALESCE(started_at, ?5), finished_at = NULL WHERE run_id = ?1 AND idx = ?2",
                    params![run, *idx as i64, attempt, *pid as i64, at, pid_start.and_then(|s| i64::try_from(s).ok())],
                ),
                Write::StepJob { run, idx, attempt, job_id, state, at } => cached(tx,
                    "UPDATE steps SET state = 'running', attempts = ?3, job_id = ?4, job_state = ?5,
                     started_at = COALESCE(started_at, ?6), finished_at = NULL WHERE run_id = ?1 AND idx = ?2",
                    params![run, *idx as i64, attempt, job_id, state, at],
                ),
                Write::StepProgress { run, idx, percent, current, total, message } => cached(tx,
                    "UPDATE steps SET progress_percent = ?3, progress_current = ?4, progress_total = ?5, progress_message = ?6
                     WHERE run_id = ?1 AND idx = ?2",
                    params![run, *idx as i64, percent, current.map(|c| c as i64), total.map(|t| t as i64), message],
                ),
                Write::StepLine { run, idx, line } => cached(tx,
                    "UPDATE steps SET last_line = ?3 WHERE run_id = ?1 AND idx = ?2",
                    params![run, *idx as i64, line],
                ),
                Write::Fingerprint { key, inputs, outputs, run } => cached(tx,
                    "INSERT INTO fingerprints (key, hash, outputs, run_id, recorded_at) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT(key) DO UPDATE SET hash = excluded.hash, outputs = excluded.outputs,
                     run_id = excluded.run_id, recorded_at = excluded.recorded_at",
                    params![key, inputs, outputs, run, now],
                ),
                Write::StepFinished { run, idx, row } => {
                    if row.counts_done {
                        match done.iter_mut().find(|(r, _)| *r == run) {
                            Some((_, n)) => *n += 1,
                            None => done.push((run, 1)),
                        }
                    }
                    cached(tx,
                        "UPDATE steps SET state = ?3, reason = ?4, attempts = ?5, exit_code = ?6, signal = ?7,
                         started_at = COALESCE(?8, started_at), finished_at = ?9,
                         pid = COALESCE(?10, pid), pgid = COALESCE(?10, pgid), pid_start = COALESCE(?11, pid_start)
                         WHERE run_id = ?1 AND idx = ?2",
                        params![
                            run,
                            *idx as i64,
                            row.state,
                            row.reason,
                            row.attempts,
                            row.exit_code,
                            row.signal,
                            row.started_at,
                            row.finished_at.unwrap_or(now),
                            row.pid.map(i64::from),
                            row.pid_start.and_then(|s| i64::try_from(s).ok())
                        ],
                    )
                    .and_then(|_| match &row.tests {
                        Some((p, f, e, sk, failing)) => cached(tx,
                            "UPDATE steps SET tests_passed = ?3, tests_failed = ?4, tests_errors = ?5, tests_skipped = ?6,
                             tests_failing = ?7 WHERE run_id = ?1 AND idx = ?2",
                            params![run, *idx as i64, *p as i64, *f as i64, *e as i64, *sk as i64, failing.to_string()],
                        ),
                        None => Ok(0),
                    })
                }
                Write::RunFinished { run, state, reason, exit_code } => cached(tx,
                    "UPDATE runs SET state = ?2, reason = ?3, exit_code = ?4, finished_at = ?5, heartbeat_at = ?5 WHERE id = ?1",
                    params![run, state, reason, exit_code, now],
                ),
                Write::Event { run, at, kind, step, data } => cached(tx,
                    "INSERT INTO events (run_id, at, type, step, data) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![run, at, kind, step, data],
                ),
            }
            ?;
        }
        for (run, n) in done {
            cached(tx, "UPDATE runs SET steps_done = steps_done + ?2 WHERE id = ?1", params![run, n])?;
        }
            Ok(())
        })
    }

    /// Finds a run by a unique prefix of its id.
    pub fn resolve(&self, prefix: &str) -> Result<String> {
        // A whole id (what agents and scripts pass) is found through the key, without
        // scanning every run for the prefix.
        let exact: Option<String> = self
            .conn
            .prepare_cached("SELECT id FROM runs WHERE id = ?1")
            .and_then(|mut st| st.query_row(params![prefix], |r| r.get(0)).optional())
            .map_err(|e| self.sql(e))?;
        if let Some(id) = exact {
            return Ok(id);
        }
        let pattern = format!("{}%", prefix.replace(['%', '_'], ""));
        let mut stmt = self
            .conn
            .prepare("SELECT id FROM runs WHERE id LIKE ?1 ORDER BY created_at DESC LIMIT 6")
            .map_err(|e| self.sql(e))?;
        let ids: Vec<String> = stmt
            .query_map(params![pattern], |r| r.get(0))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.sql(e))?;
        if prefix.is_empty() || prefix.contains(['%', '_']) {
            return Err(StoreError::UnknownRun(prefix.to_owned()));
        }
        if let Some(exact) = ids.iter().find(|id| id.as_str() == prefix) {
            return Ok(exact.clone());
        }
        match ids.len() {
            0 => Err(StoreError::UnknownRun(prefix.to_owned())),
            1 => Ok(ids[0].clone()),
            _ => Err(StoreError::AmbiguousRun {
                prefix: prefix.to_owned(),
                candidates: ids,
            }),
        }
    }

    /// A run as shown (`liveness::show`: `unresponsive` or `lost` computed on read).
    pub fn run(&self, id: &str) -> Result<Option<RunRow>> {
        let mut row = self.run_stored(id)?;
        if let Some(r) = row.as_mut() {
            liveness::show(r, self.state_dir(), now_ms());
        }
        Ok(row)
    }

    /// A run as stored.
    pub fn run_stored(&self, id: &str) -> Result<Option<RunRow>> {
        self.conn
            .query_row(
                &format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1"),
                params![id],
                run_row,
            )
            .optional()
            .map_err(|e| self.sql(e))
    }

    /// A run and its steps read in one transaction, so they agree with each other: a step
    /// never shows as running beside a run row from before the run started.
    pub fn run_with_steps(&self, id: &str) -> Result<Option<(RunRow, Vec<StepRow>)>> {
        let tx = self.conn.unchecked_transaction().map_err(|e| self.sql(e))?;
        let Some(run) = self.run(id)? else {
            return Ok(None);
        };
        let mut steps = self.steps(id)?;
        tx.commit().map_err(|e| self.sql(e))?;
        liveness::show_steps(&run, &mut steps);
        Ok(Some((run, steps)))
    }

    /// Runs as shown (`liveness::show`), newest first. `states`: only runs shown in these
    /// (empty: all).
    pub fn runs(&self, states: &[&str], limit: usize) -> Result<Vec<RunRow>> {
        let now = now_ms();
        let dir = self.state_dir().to_path_buf();
        if states.is_empty() {
            let mut rows = self.runs_stored(&[], limit)?;
            for r in &mut rows {
                liveness::show(r, &dir, now);
            }
            return Ok(rows);
        }
        // A run stored active may be shown in any of these states.
        let mut stored: Vec<&str> = states.to_vec();
        stored.extend(["pending", "running"]);
        let mut rows = self.runs_stored(&stored, limit.saturating_add(1000))?;
        for r in &mut rows {
            liveness::show(r, &dir, now);
        }
        rows.retain(|r| states.contains(&r.state.as_str()));
        rows.truncate(limit);
        Ok(rows)
    }

    /// Runs as stored, newest first. `states`: only these (empty: all).
    pub fn runs_stored(&self, states: &[&str], limit: usize) -> Result<Vec<RunRow>> {
        let filter = if states.is_empty() {
            String::new()
        } else {
            format!(
                "WHERE state IN ({})",
                states
                    .iter()
                    .map(|s| format!("'{}'", s.replace('\'', "")))
                    .collect::<Vec<_>>()
                    .join(",")
            )
        };
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT {RUN_COLUMNS} FROM runs {filter} ORDER BY created_at DESC, id LIMIT ?1"
            ))
            .map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map(params![i64::try_from(limit).unwrap_or(i64::MAX)], run_row)
            .and_then(|rows| rows.collect())
            .map_err(|e| self.sql(e));
        rows
    }

    pub fn steps(&self, run_id: &str) -> Result<Vec<StepRow>> {
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT {STEP_COLUMNS} FROM steps WHERE run_id = ?1 ORDER BY idx"
            ))
            .map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map(params![run_id], step_row)
            .and_then(|rows| rows.collect())
            .map_err(|e| self.sql(e));
        rows
    }

    /// Events after `after` (an event id), oldest first; `run`: only that run's.
    pub fn events(&self, run: Option<&str>, after: i64, limit: usize) -> Result<Vec<EventRow>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, run_id, at, type, step, data FROM events
                 WHERE id > ?1 AND (?2 IS NULL OR run_id = ?2) ORDER BY id LIMIT ?3",
            )
            .map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map(params![after, run, limit as i64], |r| {
                let data: String = r.get(5)?;
                Ok(EventRow {
                    id: r.get(0)?,
                    run_id: r.get(1)?,
                    at: r.get(2)?,
                    r#type: r.get(3)?,
                    step: r.get(4)?,
                    data: serde_json::from_str(&data).unwrap_or(serde_json::Value::Null),
                })
            })
            .and_then(|rows| rows.collect())
            .map_err(|e| self.sql(e));
        rows
    }

    /// Copies the WAL's commits into `bgflow.db`, so losing `bgflow.db-wal` later loses
    /// nothing written so far. Called once a run's last write is done. PASSIVE, retried for
    /// up to half a second while a reader still holds an older snapshot: a FULL checkpoint
    /// would hold every other run's writers back while it waits for the readers. Whether
    /// the whole WAL is now in `bgflow.db`.
    pub fn checkpoint(&self) -> Result<bool> {
        let deadline = std::time::Instant::now() + Duration::from_millis(500);
        loop {
            let (busy, log, done): (i64, i64, i64) = self
                .conn
                .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .map_err(|e| self.sql(e))?;
            if busy == 0 && done >= log {
                return Ok(true);
            }
            if std::time::Instant::now() >= deadline {
                return Ok(false);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// A warning when this open made a new history beside run folders it does not know.
    pub fn new_history_warning(&self) -> Option<String> {
        (self.created_over > 0).then(|| {
            format!(
                "warning: {} was a new, empty run history, but {} holds {} run folder(s) it does not know: the history was lost or replaced; `bgflow list` names them and `bgflow cleanup --orphans` removes them\n",
                self.path.display(),
                self.state_dir().join("runs").display(),
                self.created_over
            )
        })
    }

    /// Folders in `runs/` that no run of the history names, older than `min_age` (a
    /// foreground run's folder can appear just before its row): their names, sorted.
    pub fn orphans(&self, min_age: Duration) -> Result<Vec<String>> {
        let dir = self.state_dir().join("runs");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Ok(Vec::new());
        };
        let known: std::collections::HashSet<String> = self
            .conn
            .prepare("SELECT id FROM runs")
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            .map_err(|e| self.sql(e))?;
        let now = SystemTime::now();
        let mut out: Vec<String> = entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                // Known names first: a history of 10,000 runs has 10,000 folders to skip.
                if known.contains(&name) || !e.file_type().is_ok_and(|t| t.is_dir()) {
                    return None;
                }
                let old = e
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|m| now.duration_since(m).ok())
                    .is_some_and(|age| age >= min_age);
                old.then_some(name)
            })
            .collect();
        out.sort();
        Ok(out)
    }

    /// Deletes a finished run's rows (steps and events go with it).
    pub fn delete_run(&mut self, id: &str) -> Result<()> {
        self.conn
            .execute(
                "DELETE FROM runs WHERE id = ?1 AND state NOT IN ('pending', 'running')",
                params![id],
            )
            .map(|_| ())
            .map_err(|e| self.sql(e))
    }

    /// Records a note on a run (e.g. "stop requested").
    pub fn event(&mut self, run: &str, kind: &str, data: serde_json::Value) -> Result<()> {
        self.apply(&[Write::Event {
            run: run.to_owned(),
            at: now_ms(),
            kind: kind.to_owned(),
            step: None,
            data: data.to_string(),
        }])
    }
}

/// Refuses a `bgflow.db` that does not start as an SQLite database does: SQLite itself may
/// read page 1 from the WAL and never look at the file's header.
fn check_header(path: &Path) -> Result<()> {
    use std::io::Read;
    let Ok(mut f) = std::fs::File::open(path) else {
        return Ok(());
    };
    let mut head = [0u8; 16];
    match f.read(&mut head) {
        // Empty: a new history.
        Ok(0) => Ok(()),
        Ok(16) if &head == b"SQLite format 3\0" => Ok(()),
        Ok(_) => Err(StoreError::Damaged {
            path: path.to_path_buf(),
            what: "file is not a database".to_owned(),
        }),
        Err(source) => Err(StoreError::Folder {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// The device and inode of the file at `path`.
fn file_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// How many run folders `state_dir/runs` holds.
fn run_folders(state_dir: &Path) -> usize {
    std::fs::read_dir(state_dir.join("runs"))
        .map_or(0, |d| d.flatten().filter(|e| e.path().is_dir()).count())
}

/// Creates `dir` with mode 0700 (an existing folder is left as it is).
pub fn ensure_private_dir(dir: &Path) -> Result<()> {
    crate::layout::ensure_private_dir(dir).map_err(|source| StoreError::Folder {
        path: dir.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests;
