//! The fingerprints of steps' last successes, for up-to-date checks (guarantee 9): one per
//! step of a workflow, with the run that recorded it, so that a kept step can name the
//! success it stands on.

use std::collections::HashMap;

use super::{Result, Store};

pub use crate::records::Recorded;

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

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::super::{schema::MIGRATIONS, Write};
    use super::*;

    fn record(key: &str, inputs: &str, outputs: &str, run: &str) -> Write {
        Write::Fingerprint {
            key: key.to_owned(),
            inputs: inputs.to_owned(),
            outputs: outputs.to_owned(),
            run: run.to_owned(),
        }
    }

    /// A fingerprint of a history before schema 4 covers neither outputs nor its run, so it
    /// can vouch for nothing: the upgrade drops it. A new one names its run, and the last
    /// success of a step replaces the one before.
    #[test]
    fn older_fingerprints_are_dropped_and_new_ones_name_their_run() {
        let dir = tempfile::tempdir().expect("tempdir");
        let conn = Connection::open(dir.path().join("bgflow.db")).expect("conn");
        for (i, m) in MIGRATIONS[..3].iter().enumerate() {
            conn.execute_batch(m).expect("migrate");
            conn.pragma_update(None, "user_version", i as i64 + 1)
                .expect("version");
        }
        conn.execute(
            "INSERT INTO fingerprints (key, hash, recorded_at) VALUES ('wf/a', 'old', 1)",
            [],
        )
        .expect("an old fingerprint");
        drop(conn);

        let mut store = Store::open(dir.path()).expect("upgrade");
        assert!(store.fingerprints().expect("read").is_empty());
        store
            .apply(&[record("wf/a", "in1", "out1", "run00001")])
            .expect("write");
        store
            .apply(&[
                record("wf/a", "in2", "out2", "run00002"),
                record("wf/b", "in3", "out3", "run00002"),
            ])
            .expect("write");
        let all = store.fingerprints().expect("read");
        assert_eq!(all.len(), 2);
        assert_eq!(
            all["wf/a"],
            Recorded {
                inputs: "in2".to_owned(),
                outputs: "out2".to_owned(),
                run_id: "run00002".to_owned(),
            }
        );
    }
}
