//! The run history: `.bgflow/bgflow.db`, SQLite in WAL mode. The only module with SQL.
//!
//! Runs, steps, events and fingerprints. Writers keep transactions short and readers never
//! block them (WAL); a busy timeout absorbs the rest, so many supervisors and many `status`
//! calls can share one file. Migrations are keyed on `PRAGMA user_version`.

pub mod sink;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::config::DbConfig;
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;

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
    #[error("no run matches `{0}`")]
    UnknownRun(String),
    #[error("`{prefix}` matches several runs: {}", .candidates.join(", "))]
    AmbiguousRun {
        prefix: String,
        candidates: Vec<String>,
    },
}

pub type Result<T> = std::result::Result<T, StoreError>;

const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    "CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        workflow TEXT NOT NULL,
        file TEXT,
        root TEXT NOT NULL,
        kind TEXT NOT NULL,
        state TEXT NOT NULL,
        reason TEXT,
        detached INTEGER NOT NULL DEFAULT 0,
        supervisor_pid INTEGER,
        supervisor_start INTEGER,
        heartbeat_at INTEGER,
        created_at INTEGER NOT NULL,
        started_at INTEGER,
        finished_at INTEGER,
        steps_total INTEGER NOT NULL DEFAULT 0,
        steps_done INTEGER NOT NULL DEFAULT 0,
        log_dir TEXT NOT NULL,
        spec TEXT NOT NULL DEFAULT '{}',
        meta TEXT NOT NULL DEFAULT '{}',
        exit_code INTEGER
     );
     CREATE INDEX runs_created ON runs(created_at DESC);
     CREATE INDEX runs_state ON runs(state);
     CREATE TABLE steps (
        run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        idx INTEGER NOT NULL,
        name TEXT NOT NULL,
        kind TEXT NOT NULL DEFAULT 'task',
        state TEXT NOT NULL,
        reason TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        pid INTEGER,
        pgid INTEGER,
        exit_code INTEGER,
        signal TEXT,
        started_at INTEGER,
        finished_at INTEGER,
        progress_percent REAL,
        progress_current INTEGER,
        progress_total INTEGER,
        progress_message TEXT,
        last_line TEXT,
        log_path TEXT NOT NULL,
        PRIMARY KEY (run_id, idx)
     );
     CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        at INTEGER NOT NULL,
        type TEXT NOT NULL,
        step TEXT,
        data TEXT NOT NULL
     );
     CREATE INDEX events_run ON events(run_id, id);
     CREATE TABLE fingerprints (
        key TEXT PRIMARY KEY,
        hash TEXT NOT NULL,
        recorded_at INTEGER NOT NULL
     );",
    // 2: test results of `kind = "test"` steps.
    "ALTER TABLE steps ADD COLUMN tests_passed INTEGER;
     ALTER TABLE steps ADD COLUMN tests_failed INTEGER;
     ALTER TABLE steps ADD COLUMN tests_errors INTEGER;
     ALTER TABLE steps ADD COLUMN tests_skipped INTEGER;
     ALTER TABLE steps ADD COLUMN tests_failing TEXT;",
];

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

/// The rows of a new run: the run, its steps, and a `run_created` event.
fn insert_run(tx: &rusqlite::Connection, run: &NewRun, now: i64) -> rusqlite::Result<usize> {
    cached(
        tx,
        "INSERT INTO runs (id, workflow, file, root, kind, state, detached, created_at, steps_total, log_dir, spec, meta)
         VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6, ?7, ?8, ?9, ?10, ?11)",
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
        ],
    )?;
    let mut stmt = tx.prepare_cached(
        "INSERT INTO steps (run_id, idx, name, kind, state, log_path) VALUES (?1, ?2, ?3, ?4, 'pending', ?5)",
    )?;
    for &(idx, kind) in &run.steps {
        let name = &run.names[idx];
        let log = crate::exec::log_file(&run.log_dir, name);
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
}

/// A run as stored.
#[derive(Debug, Clone, Serialize)]
pub struct RunRow {
    pub id: String,
    pub workflow: String,
    pub file: Option<String>,
    pub root: String,
    pub kind: String,
    pub state: String,
    pub reason: Option<String>,
    pub detached: bool,
    pub supervisor_pid: Option<i64>,
    #[serde(skip)]
    pub supervisor_start: Option<i64>,
    pub heartbeat_at: Option<i64>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub steps_total: i64,
    pub steps_done: i64,
    pub log_dir: String,
    #[serde(skip)]
    pub spec: String,
    pub meta: serde_json::Value,
    pub exit_code: Option<i64>,
}

impl RunRow {
    pub fn is_active(&self) -> bool {
        matches!(self.state.as_str(), "pending" | "running")
    }
}

/// A step as stored.
#[derive(Debug, Clone, Serialize)]
pub struct StepRow {
    pub idx: i64,
    pub name: String,
    pub kind: String,
    pub state: String,
    pub reason: Option<String>,
    pub attempts: i64,
    pub pid: Option<i64>,
    pub pgid: Option<i64>,
    pub exit_code: Option<i64>,
    pub signal: Option<String>,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub progress_percent: Option<f64>,
    pub progress_current: Option<i64>,
    pub progress_total: Option<i64>,
    pub progress_message: Option<String>,
    pub last_line: Option<String>,
    pub log_path: String,
    pub tests_passed: Option<i64>,
    pub tests_failed: Option<i64>,
    pub tests_errors: Option<i64>,
    pub tests_skipped: Option<i64>,
    /// `[{"name": ..., "message": ...}]` of the first failing tests.
    pub tests_failing: Option<serde_json::Value>,
}

/// An event row.
#[derive(Debug, Clone, Serialize)]
pub struct EventRow {
    pub id: i64,
    pub run_id: String,
    pub at: i64,
    pub r#type: String,
    pub step: Option<String>,
    pub data: serde_json::Value,
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
}

/// One write, applied in batches by `Store::apply`.
#[derive(Debug, Clone)]
pub enum Write {
    /// The run's row and its steps' rows. A foreground run sends this as its first write, so
    /// that its steps start while the rows are written (40 ms at 10,000 steps).
    RunCreated(Box<NewRun>),
    RunStarted {
        run: String,
        pid: u32,
        start: Option<u64>,
    },
    Heartbeat {
        run: String,
    },
    StepStarted {
        run: String,
        idx: usize,
        attempt: u32,
        pid: u32,
        at: i64,
    },
    StepProgress {
        run: String,
        idx: usize,
        percent: Option<f64>,
        current: Option<u64>,
        total: Option<u64>,
        message: Option<String>,
    },
    StepLine {
        run: String,
        idx: usize,
        line: String,
    },
    /// A step's fingerprint after a success (`exec::fingerprint`), for later up-to-date
    /// checks.
    Fingerprint {
        key: String,
        hash: String,
    },
    StepFinished {
        run: String,
        idx: usize,
        row: Box<StepFinish>,
    },
    RunFinished {
        run: String,
        state: String,
        reason: Option<String>,
        exit_code: i64,
    },
    Event {
        run: String,
        at: i64,
        kind: String,
        step: Option<String>,
        /// The event's data, already a JSON object.
        data: String,
    },
}

/// The final fields of a step.
#[derive(Debug, Clone)]
pub struct StepFinish {
    pub state: String,
    pub reason: Option<String>,
    pub attempts: u32,
    pub exit_code: Option<i32>,
    pub signal: Option<String>,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    /// The process of the last attempt, when its `StepStarted` row was folded into this one.
    pub pid: Option<u32>,
    pub counts_done: bool,
    /// (passed, failed, errors, skipped, failing tests as JSON).
    pub tests: Option<(u64, u64, u64, u64, serde_json::Value)>,
}

impl Store {
    /// Opens (creating it, mode 0700, if needed) the store in `state_dir`.
    pub fn open(state_dir: &Path) -> Result<Self> {
        ensure_private_dir(state_dir)?;
        let path = state_dir.join("bgflow.db");
        let conn = Connection::open(&path).map_err(|source| StoreError::Open {
            path: path.clone(),
            source,
        })?;
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
        let mut store = Self { conn, path };
        store.setup()?;
        Ok(store)
    }

    /// Opens an existing store; `None` when there is none.
    pub fn open_existing(state_dir: &Path) -> Result<Option<Self>> {
        if !state_dir.join("bgflow.db").exists() {
            return Ok(None);
        }
        Self::open(state_dir).map(Some)
    }

    fn sql(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sql {
            path: self.path.clone(),
            source,
        }
    }

    fn setup(&mut self) -> Result<()> {
        self.conn
            .busy_timeout(Duration::from_secs(10))
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
                .map_err(|e| StoreError::Sql {
                    path: self.path.clone(),
                    source: e,
                })?;
            // Read again inside the lock: another process may have migrated meanwhile.
            let current: i64 = tx
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .unwrap_or(version);
            for (i, m) in MIGRATIONS
                .iter()
                .enumerate()
                .skip(usize::try_from(current).unwrap_or(0))
            {
                tx.execute_batch(m).map_err(|e| StoreError::Sql {
                    path: self.path.clone(),
                    source: e,
                })?;
                tx.pragma_update(None, "user_version", i as i64 + 1)
                    .map_err(|e| StoreError::Sql {
                        path: self.path.clone(),
                        source: e,
                    })?;
            }
            tx.commit().map_err(|e| StoreError::Sql {
                path: self.path.clone(),
                source: e,
            })?;
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
        let sql = |source| StoreError::Sql {
            path: path.clone(),
            source,
        };
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(sql)?;
        let out = f(&tx).map_err(sql)?;
        tx.commit().map_err(sql)?;
        Ok(out)
    }

    pub fn create_run(&mut self, run: &NewRun) -> Result<()> {
        self.write(|tx| insert_run(tx, run, now_ms()).map(drop))
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
                Write::RunCreated(new) => insert_run(tx, new, now),
                Write::RunStarted { run, pid, start } => cached(tx,
                    "UPDATE runs SET state = 'running', started_at = COALESCE(started_at, ?2), supervisor_pid = ?3,
                     supervisor_start = ?4, heartbeat_at = ?2 WHERE id = ?1",
                    params![run, now, *pid as i64, start.map(|s| s as i64)],
                ),
                Write::Heartbeat { run } => cached(tx, "UPDATE runs SET heartbeat_at = ?2 WHERE id = ?1", params![run, now]),
                Write::StepStarted { run, idx, attempt, pid, at } => cached(tx,
                    "UPDATE steps SET state = 'running', attempts = ?3, pid = ?4, pgid = ?4,
                     started_at = COALESCE(started_at, ?5), finished_at = NULL WHERE run_id = ?1 AND idx = ?2",
                    params![run, *idx as i64, attempt, *pid as i64, at],
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
                Write::Fingerprint { key, hash } => cached(tx,
                    "INSERT INTO fingerprints (key, hash, recorded_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT(key) DO UPDATE SET hash = excluded.hash, recorded_at = excluded.recorded_at",
                    params![key, hash, now],
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
                         pid = COALESCE(?10, pid), pgid = COALESCE(?10, pgid) WHERE run_id = ?1 AND idx = ?2",
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
                            row.pid.map(i64::from)
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

    pub fn run(&self, id: &str) -> Result<Option<RunRow>> {
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
        let steps = self.steps(id)?;
        tx.commit().map_err(|e| self.sql(e))?;
        Ok(Some((run, steps)))
    }

    /// Runs, newest first. `states`: only these (empty: all).
    pub fn runs(&self, states: &[&str], limit: usize) -> Result<Vec<RunRow>> {
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
            .query_map(params![limit as i64], run_row)
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

    /// Marks as `lost` every active run whose supervisor is gone (checked by pid and by the
    /// process's start time, against pid reuse), with its unfinished steps. Returns their ids.
    pub fn reconcile_lost(&mut self) -> Result<Vec<String>> {
        let active = self.runs(&["pending", "running"], 10_000)?;
        let now = now_ms();
        let lost: Vec<&RunRow> = active
            .iter()
            .filter(|r| match (r.supervisor_pid, r.supervisor_start) {
                (Some(pid), start) => !supervisor_alive(pid, start),
                // Created but never started: lost once its creator had ample time to start it.
                (None, _) => now - r.created_at > 30_000,
            })
            .collect();
        if lost.is_empty() {
            return Ok(Vec::new());
        }
        self.write(|tx| {
        let mut ids = Vec::new();
        for r in lost {
            let changed = tx
                .execute(
                    "UPDATE runs SET state = 'lost', finished_at = ?2,
                     reason = 'the supervisor (pid ' || COALESCE(supervisor_pid, '?') || ') is gone'
                     WHERE id = ?1 AND state IN ('pending', 'running')",
                    params![r.id, now],
                )
                ?;
            if changed == 0 {
                continue;
            }
            cached(tx,
                "UPDATE steps SET state = 'lost', reason = 'its supervisor is gone', finished_at = ?2
                 WHERE run_id = ?1 AND state = 'running'",
                params![r.id, now],
            )
            ?;
            cached(tx,
                "UPDATE steps SET state = 'cancelled', reason = 'not started: its supervisor is gone'
                 WHERE run_id = ?1 AND state = 'pending'",
                params![r.id],
            )
            ?;
            cached(tx,
                "INSERT INTO events (run_id, at, type, data) VALUES (?1, ?2, 'run_lost', ?3)",
                params![
                    r.id,
                    now,
                    serde_json::json!({"version": 1, "supervisor_pid": r.supervisor_pid})
                        .to_string()
                ],
            )
            ?;
            ids.push(r.id.clone());
        }
            Ok(ids)
        })
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

    /// Every stored fingerprint, by key.
    pub fn fingerprints(&self) -> Result<std::collections::HashMap<String, String>> {
        let mut stmt = self
            .conn
            .prepare("SELECT key, hash FROM fingerprints")
            .map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.sql(e));
        rows
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

const RUN_COLUMNS: &str = "id, workflow, file, root, kind, state, reason, detached, supervisor_pid, supervisor_start,
    heartbeat_at, created_at, started_at, finished_at, steps_total, steps_done, log_dir, spec, meta, exit_code";

fn run_row(r: &Row<'_>) -> rusqlite::Result<RunRow> {
    let meta: String = r.get(18)?;
    Ok(RunRow {
        id: r.get(0)?,
        workflow: r.get(1)?,
        file: r.get(2)?,
        root: r.get(3)?,
        kind: r.get(4)?,
        state: r.get(5)?,
        reason: r.get(6)?,
        detached: r.get(7)?,
        supervisor_pid: r.get(8)?,
        supervisor_start: r.get(9)?,
        heartbeat_at: r.get(10)?,
        created_at: r.get(11)?,
        started_at: r.get(12)?,
        finished_at: r.get(13)?,
        steps_total: r.get(14)?,
        steps_done: r.get(15)?,
        log_dir: r.get(16)?,
        spec: r.get(17)?,
        meta: serde_json::from_str(&meta).unwrap_or(serde_json::Value::Null),
        exit_code: r.get(19)?,
    })
}

const STEP_COLUMNS: &str = "idx, name, kind, state, reason, attempts, pid, pgid, exit_code, signal, started_at, finished_at,
    progress_percent, progress_current, progress_total, progress_message, last_line, log_path,
    tests_passed, tests_failed, tests_errors, tests_skipped, tests_failing";

fn step_row(r: &Row<'_>) -> rusqlite::Result<StepRow> {
    Ok(StepRow {
        idx: r.get(0)?,
        name: r.get(1)?,
        kind: r.get(2)?,
        state: r.get(3)?,
        reason: r.get(4)?,
        attempts: r.get(5)?,
        pid: r.get(6)?,
        pgid: r.get(7)?,
        exit_code: r.get(8)?,
        signal: r.get(9)?,
        started_at: r.get(10)?,
        finished_at: r.get(11)?,
        progress_percent: r.get(12)?,
        progress_current: r.get(13)?,
        progress_total: r.get(14)?,
        progress_message: r.get(15)?,
        last_line: r.get(16)?,
        log_path: r.get(17)?,
        tests_passed: r.get(18)?,
        tests_failed: r.get(19)?,
        tests_errors: r.get(20)?,
        tests_skipped: r.get(21)?,
        tests_failing: r
            .get::<_, Option<String>>(22)?
            .and_then(|t| serde_json::from_str(&t).ok()),
    })
}

/// Creates `dir` with mode 0700 (an existing folder is left as it is).
pub fn ensure_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| StoreError::Folder {
            path: dir.to_path_buf(),
            source,
        })
}

/// The start time of a process (clock ticks after boot), from /proc/PID/stat field 22.
pub fn process_start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    // Fields after the command: state(3) ... starttime(22) => index 19 in `rest`.
    rest.split(' ').nth(19)?.parse().ok()
}

/// Whether the supervisor recorded as (`pid`, `start`) still runs: same pid, same start
/// time, not a zombie.
pub fn supervisor_alive(pid: i64, start: Option<i64>) -> bool {
    let Ok(pid) = u32::try_from(pid) else {
        return false;
    };
    match crate::exec::process::proc_stat(pid) {
        Some((state, _)) if state != 'Z' && state != 'X' => match start {
            Some(s) => {
                process_start_time(pid).is_some_and(|now| i64::try_from(now).ok() == Some(s))
            }
            None => true,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests;
