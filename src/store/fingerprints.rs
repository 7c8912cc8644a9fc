//! The fingerprints of steps' last successes, for up-to-date checks (guarantee 9): one per
//! step of a workflow, with the run that recorded it, so that a kept step can name the
//! success it stands on.

use std::collections::HashMap;

use super::{Result, Store};

/// A step's fingerprint as recorded by its last success (`exec::fingerprint`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// The command, cwd, environment and inputs, as the successful attempt started.
    pub inputs: String,
    /// The declared outputs, as the step succeeded.
    pub outputs: String,
    /// The run in which the step succeeded.
    pub run_id: String,
}

impl Store {
    /// Every stored fingerprint, by key (`exec::fingerprint::key`).
    pub fn fingerprints(&self) -> Result<HashMap<String, Recorded>> {
        let mut stmt = self
            .conn
            .prepare("SELECT key, hash, outputs, run_id FROM fingerprints")
            .map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    Recorded {
                        inputs: r.get(1)?,
                        outputs: r.get(2)?,
                        run_id: r.get(3)?,
                    },
                ))
            })
            .and_then(|rows| rows.collect())
            .map_err(|e| self.sql(e));
        rows
    }
}
