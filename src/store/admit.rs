//! Admission of a new run: `limits.max_concurrent_runs` and the lock per tree (guarantee 11)
//! are checked and the run's row inserted in one IMMEDIATE transaction, so two runs started
//! at the same instant never both see room for one.
//!
//! The lock is the run's row itself: its root and its declared outputs (`lock_outputs`),
//! held while its supervisor lives (`liveness::judge`), so a crashed run never leaves a
//! stale lock.

use std::path::Path;

use globset::GlobBuilder;

use super::liveness::{judge, Liveness};
use super::schema::{run_row, RUN_COLUMNS};
use super::NewRun;
use super::{insert_run_row, insert_steps, now_ms, Result, RunRow, Store};

/// How a run asks to be admitted.
#[derive(Debug, Clone, Copy)]
pub struct Admission {
    /// `limits.max_concurrent_runs` (0: no limit).
    pub limit: u32,
    /// Refuse when a live run of the same root holds overlapping outputs.
    pub check_lock: bool,
    /// The supervisor when it is this process (a foreground run): (pid, start time).
    pub supervisor: Option<(u32, Option<u64>)>,
    /// Insert the steps' rows too (a detached run); a foreground run has them written by
    /// its history thread while its first steps start.
    pub with_steps: bool,
}

/// Why a run was not admitted.
#[derive(Debug, Clone)]
pub enum Refusal {
    /// `limit` runs are already live.
    Limit { active: Vec<RunRow>, limit: u32 },
    /// `run` is live in the same root and declares outputs that overlap: `outputs`.
    Conflict {
        run: Box<RunRow>,
        outputs: Vec<String>,
    },
}

impl Store {
    /// Admits `run` and inserts its row, or says why not (nothing is written then).
    pub fn admit(&mut self, run: &NewRun, a: Admission) -> Result<Option<Refusal>> {
        let now = now_ms();
        self.write(|tx| {
            let active: Vec<RunRow> = tx
                .prepare_cached(&format!(
                    "SELECT {RUN_COLUMNS} FROM runs WHERE state IN ('pending', 'running') ORDER BY created_at"
                ))?
                .query_map([], run_row)?
                .collect::<rusqlite::Result<_>>()?;
            let live: Vec<RunRow> = active
                .into_iter()
                .filter(|r| judge(r, now) != Liveness::Gone)
                .collect();
            if a.limit > 0 && live.len() >= a.limit as usize {
                return Ok(Some(Refusal::Limit {
                    active: live,
                    limit: a.limit,
                }));
            }
            if let (true, Some(mine)) = (a.check_lock, &run.outputs) {
                let root = run.root.display().to_string();
                for other in live.iter().filter(|r| r.root == root) {
                    let Some(lock) = &other.lock else { continue };
                    let common: Vec<String> = mine
                        .iter()
                        .filter(|m| lock.outputs.iter().any(|o| overlap(m, o)))
                        .cloned()
                        .collect();
                    if !common.is_empty() {
                        return Ok(Some(Refusal::Conflict {
                            run: Box::new(other.clone()),
                            outputs: common,
                        }));
                    }
                }
            }
            insert_run_row(tx, run, now, a.supervisor)?;
            if a.with_steps {
                insert_steps(tx, run, now)?;
            }
            Ok(None)
        })
    }
}

/// An output as written, relative to `root` when it is under it: no `./`, no `//`, no
/// trailing `/`.
pub fn normalize_output(root: &Path, out: &str) -> String {
    let path = Path::new(out);
    let rel = path.strip_prefix(root).unwrap_or(path);
    let parts: Vec<&str> = rel
        .to_str()
        .unwrap_or(out)
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    let joined = parts.join("/");
    if out.starts_with('/') && rel == path {
        format!("/{joined}")
    } else {
        joined
    }
}

/// Whether two outputs (paths or globs, relative to one root) may name the same file: the
/// same path, one a folder of the other, or a glob of one matching the other or one of its
/// folders (`*` does not cross `/`).
pub fn overlap(a: &str, b: &str) -> bool {
    a == b || under(a, b) || under(b, a) || glob_covers(a, b) || glob_covers(b, a)
}

fn under(dir: &str, path: &str) -> bool {
    path.len() > dir.len() && path.starts_with(dir) && path.as_bytes()[dir.len()] == b'/'
}

fn glob_covers(pattern: &str, path: &str) -> bool {
    if !pattern.contains(['*', '?', '[', '{']) {
        return false;
    }
    let Ok(glob) = GlobBuilder::new(pattern).literal_separator(true).build() else {
        return false;
    };
    let m = glob.compile_matcher();
    // The path itself and each of its folders.
    m.is_match(path) || path.match_indices('/').any(|(i, _)| m.is_match(&path[..i]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_overlap_by_path_folder_and_glob() {
        assert!(overlap("build/x.txt", "build/x.txt"));
        assert!(overlap("build", "build/x.txt"));
        assert!(overlap("build/x.txt", "build"));
        assert!(!overlap("build", "builder/x"));
        assert!(overlap("build/*.txt", "build/x.txt"));
        assert!(!overlap("build/*.txt", "build/sub/x.txt"));
        assert!(overlap("build/*", "build/sub/x.txt"));
        assert!(overlap("out/**", "out/a/b"));
        assert!(!overlap("a.txt", "b.txt"));
        assert_eq!(normalize_output(Path::new("/r"), "./build//x/"), "build/x");
        assert_eq!(normalize_output(Path::new("/r"), "/r/build/x"), "build/x");
        assert_eq!(
            normalize_output(Path::new("/r"), "/elsewhere/x"),
            "/elsewhere/x"
        );
    }
}
