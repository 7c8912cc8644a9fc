//! A run's state changes as JSON objects (docs/json-output.md), read in pages from an
//! event id (`after`), as `events` prints them and `get_events` returns them.

use std::time::Duration;

use serde::Serialize;

use crate::store::{EventRow, Store};

use super::Error;

/// Events read at most at once.
pub const PAGE: usize = 1000;

/// A page of events: each as `events` prints it, and the id to read after next.
#[derive(Debug, Clone, Serialize)]
pub struct EventPage {
    pub events: Vec<serde_json::Value>,
    /// Pass as `after` to read the events that follow (the last event's id, or `after`).
    pub next: i64,
}

/// One event as a JSON object: version, id, type, run, step, at (RFC 3339), then its data.
pub fn event_json(e: &EventRow) -> serde_json::Value {
    let mut obj = serde_json::Map::new();
    obj.insert("version".into(), 1.into());
    obj.insert("id".into(), e.id.into());
    obj.insert("type".into(), e.r#type.clone().into());
    obj.insert("run".into(), e.run_id.clone().into());
    if let Some(s) = &e.step {
        obj.insert("step".into(), s.clone().into());
    }
    let at = jiff::Timestamp::from_millisecond(e.at)
        .map(|t| t.to_string())
        .unwrap_or_default();
    obj.insert("at".into(), at.into());
    if let serde_json::Value::Object(data) = &e.data {
        for (k, v) in data {
            if k != "version" {
                obj.insert(k.clone(), v.clone());
            }
        }
    }
    serde_json::Value::Object(obj)
}

/// The events after id `after`, of run `run` (a full id) or of every run, at most `limit`.
pub fn page(
    store: &Store,
    run: Option<&str>,
    after: i64,
    limit: usize,
) -> Result<EventPage, Error> {
    let rows = store
        .events(run, after, limit)
        .map_err(|e| super::internal(&e))?;
    let next = rows.last().map_or(after, |e| e.id);
    Ok(EventPage {
        events: rows.iter().map(event_json).collect(),
        next,
    })
}

/// Hands every event after `after` to `each`, a page at a time; with `follow`, goes on
/// reading new ones (every 200 ms) until run `run` has ended and its last event is read
/// (without `run`: until `each` fails). `each`'s error ends it and is returned.
pub fn follow<E>(
    store: &mut Store,
    run: Option<&str>,
    mut after: i64,
    follow: bool,
    each: &mut dyn FnMut(&EventPage) -> Result<(), E>,
) -> Result<Result<(), E>, Error> {
    loop {
        let p = page(store, run, after, PAGE)?;
        after = p.next;
        if let Err(e) = each(&p) {
            return Ok(Err(e));
        }
        if p.events.len() == PAGE {
            continue;
        }
        if !follow {
            return Ok(Ok(()));
        }
        // Records `run_lost`, `run_unresponsive`, `run_responsive` as readers see them.
        super::reconcile(store);
        if let Some(id) = run {
            let active = store.run(id).ok().flatten().is_some_and(|r| r.is_active());
            if !active
                && store
                    .events(Some(id), after, 1)
                    .map(|r| r.is_empty())
                    .unwrap_or(true)
            {
                return Ok(Ok(()));
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Every run's events as they are recorded, for a server that pushes them (`bgflow
/// serve`): each [`Tail::read`] returns the events recorded since the last, reading rows
/// only when the history changed (SQLite's `data_version`), and records lost or
/// unresponsive supervisors (as readers do) at most once a second.
pub struct Tail {
    store: Store,
    after: i64,
    version: Option<i64>,
    reconciled: std::time::Instant,
}

/// One event as `events` prints it, with its id and run.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub id: i64,
    pub run: String,
    pub json: serde_json::Value,
}

impl Tail {
    /// Starts after the newest event of `store`'s history.
    pub fn new(store: Store) -> Result<Self, Error> {
        let after = store.last_event_id().map_err(|e| super::internal(&e))?;
        Ok(Self::after(store, after))
    }

    /// Starts after event `after` (0: from the first).
    pub fn after(store: Store, after: i64) -> Self {
        Self {
            store,
            after,
            version: None,
            reconciled: std::time::Instant::now(),
        }
    }

    /// The id of the last event handed out (or of the newest when it started).
    pub fn last(&self) -> i64 {
        self.after
    }

    /// The events recorded since the last call (at most `PAGE`; call again at once when
    /// it returns that many).
    pub fn read(&mut self) -> Result<Vec<Recorded>, Error> {
        if self.reconciled.elapsed() >= Duration::from_secs(1) {
            super::reconcile(&mut self.store);
            self.reconciled = std::time::Instant::now();
            // Its own writes do not move `data_version`.
            self.version = None;
        }
        let version = self.store.data_version().ok();
        if version.is_some() && version == self.version {
            return Ok(Vec::new());
        }
        let rows = self
            .store
            .events(None, self.after, PAGE)
            .map_err(|e| super::internal(&e))?;
        if rows.len() < PAGE {
            // Read to the end: nothing new until the history changes again.
            self.version = version;
        }
        if let Some(last) = rows.last() {
            self.after = last.id;
        }
        Ok(rows
            .iter()
            .map(|e| Recorded {
                id: e.id,
                run: e.run_id.clone(),
                json: event_json(e),
            })
            .collect())
    }
}
