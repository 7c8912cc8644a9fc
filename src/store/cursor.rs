//! Where a reader that follows the history starts: the newest event's id.

use super::{Result, Store};

impl Store {
    /// The id of the newest event (0 when there is none).
    pub fn last_event_id(&self) -> Result<i64> {
        self.conn
            .prepare_cached("SELECT COALESCE(MAX(id), 0) FROM events")
            .and_then(|mut st| st.query_row([], |r| r.get(0)))
            .map_err(|e| self.sql(e))
    }
}
