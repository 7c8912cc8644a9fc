//! The run history that a server's reading calls share (`bgflow mcp`, `bgflow serve`):
//! opened once (as `runs::open` opens it) and kept while its folder stays the same, so a
//! `get_run` or `list_runs` does not pay for opening SQLite. Runs whose supervisor is gone
//! are reconciled (recorded as lost) at most once a second, not at each call: reconciling
//! reads every active run, and a run read in between is shown with its supervisor's
//! liveness anyway (`Store::run`).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{self as runs, Error, Silent};
use crate::store::Store;

#[derive(Clone, Default)]
pub struct History {
    /// `--state-dir`; `None`: found from the server's folder upward at each use.
    dir: Option<PathBuf>,
    open: Arc<Mutex<Option<(PathBuf, Store, Instant)>>>,
}

/// How often the shared history reconciles lost runs.
const RECONCILE_EVERY: Duration = Duration::from_secs(1);

impl History {
    pub fn new(dir: Option<PathBuf>) -> Self {
        Self {
            dir,
            open: Arc::default(),
        }
    }

    /// The state folder: `--state-dir`, or the one found from the current folder upward.
    pub fn dir(&self) -> Option<PathBuf> {
        self.dir.clone().or_else(|| {
            std::env::current_dir()
                .ok()
                .and_then(|cwd| runs::find_state_dir(&cwd))
        })
    }

    /// Calls `f` with the history; the errors of `runs::open` when there is none.
    pub fn with<T>(&self, f: impl FnOnce(&mut Store) -> Result<T, Error>) -> Result<T, Error> {
        let Some(dir) = self.dir() else {
            // Its error names what is missing, as the CLI says it.
            return runs::open(None, &mut Silent).and_then(|mut s| f(&mut s));
        };
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if open.as_ref().is_none_or(|(d, _, _)| *d != dir) {
            *open = None;
            let store = runs::open(Some(&dir), &mut Silent)?;
            *open = Some((dir, store, Instant::now()));
        } else if let Some((_, store, at)) = open.as_mut() {
            if at.elapsed() >= RECONCILE_EVERY {
                runs::reconcile(store);
                *at = Instant::now();
            }
        }
        match open.as_mut() {
            Some((_, store, _)) => f(store),
            None => Err(Error::internal("error: the run history is not open\n")),
        }
    }
}
