//! The JSON API under `/api/` (docs/serve.md, docs/json-output.md): the shapes of `list
//! --json`, `status --json`, a log page as `get_logs` returns it, events as `events`
//! prints them (pushed as server-sent events), and stop as `stop_run` returns it. A
//! `runs::Error` becomes `{"version": 1, "error": MESSAGE}` with a status for its exit
//! code: 404 for an unknown run or step, 403 for a refused log path, else 500.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use tokio::sync::{broadcast, mpsc};

use crate::exit;
use crate::runs::{self, events::Recorded, Error};

use super::App;

/// Runs on a page when the caller gives no `limit`, and at most.
pub const PAGE: usize = 50;
pub const PAGE_MAX: usize = 1000;

/// The states a run is shown in, and `all`.
pub const STATES: [&str; 8] = [
    "all",
    "pending",
    "running",
    "unresponsive",
    "succeeded",
    "failed",
    "cancelled",
    "lost",
];

/// A `runs::` error as a response.
pub fn error(e: &Error) -> Response {
    let status = match e.code {
        exit::USAGE => StatusCode::NOT_FOUND,
        exit::INVALID => StatusCode::FORBIDDEN,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    bad(status, e.message.trim_end().trim_start_matches("error: "))
}

pub fn bad(status: StatusCode, why: &str) -> Response {
    (
        status,
        Json(serde_json::json!({"version": 1, "error": why})),
    )
        .into_response()
}

/// `value` with `"version": 1` first.
pub fn versioned<T: Serialize>(value: &T) -> Response {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::Object(mut m)) => {
            m.shift_insert(0, "version".into(), 1.into());
            Json(serde_json::Value::Object(m)).into_response()
        }
        Ok(other) => Json(other).into_response(),
        Err(e) => bad(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

/// Runs `f` with the shared history on a blocking thread.
pub async fn with_history<T: Send + 'static>(
    app: &App,
    f: impl FnOnce(&mut runs::Store) -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    let h = app.history.clone();
    tokio::task::spawn_blocking(move || h.with(f))
        .await
        .unwrap_or_else(|e| Err(Error::internal(format!("error: {e}\n"))))
}

/// A `?state=` value, checked.
pub fn state_filter(q: &HashMap<String, String>) -> Result<Option<String>, Response> {
    match q.get("state").map(String::as_str) {
        None | Some("" | "all") => Ok(None),
        Some(s) if STATES.contains(&s) => Ok(Some(s.to_owned())),
        Some(s) => Err(bad(
            StatusCode::BAD_REQUEST,
            &format!("unknown state `{s}` (one of: {})", STATES.join(", ")),
        )),
    }
}

fn number<T: std::str::FromStr>(
    q: &HashMap<String, String>,
    key: &str,
) -> Result<Option<T>, Response> {
    match q.get(key) {
        None => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| {
            bad(
                StatusCode::BAD_REQUEST,
                &format!("`{key}` must be a number, not `{v}`"),
            )
        }),
    }
}

/// `GET /api/runs?state=&limit=&offset=`: `list --json`, with `offset` and `more`.
pub async fn runs(State(app): State<App>, Query(q): Query<HashMap<String, String>>) -> Response {
    let state = match state_filter(&q) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let (limit, offset) = match (number::<usize>(&q, "limit"), number::<usize>(&q, "offset")) {
        (Ok(l), Ok(o)) => (l.unwrap_or(PAGE).clamp(1, PAGE_MAX), o.unwrap_or(0)),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    match with_history(&app, move |s| {
        runs::status::page(s, state.as_deref(), offset, limit)
    })
    .await
    {
        Ok(p) => versioned(&p),
        Err(e) => error(&e),
    }
}

/// `GET /api/runs/{id}`: `status --json RUN` (a unique prefix names a run).
pub async fn run(State(app): State<App>, Path(id): Path<String>) -> Response {
    match with_history(&app, move |s| runs::status(s, &id)).await {
        Ok(v) => versioned(&v),
        Err(e) => error(&e),
    }
}

#[derive(Serialize)]
struct LogOut {
    run_id: String,
    #[serde(flatten)]
    page: runs::LogPage,
}

/// `GET /api/runs/{id}/logs/{step}?offset=&tail=&max_bytes=`: a page of one step's log,
/// never from outside the run's folder.
pub async fn logs(
    State(app): State<App>,
    Path((id, step)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (offset, tail, cap) = match (
        number::<u64>(&q, "offset"),
        number::<usize>(&q, "tail"),
        number::<usize>(&q, "max_bytes"),
    ) {
        (Ok(o), Ok(t), Ok(c)) => (o, t, c),
        (Err(r), _, _) | (_, Err(r), _) | (_, _, Err(r)) => return r,
    };
    let r = with_history(&app, move |s| {
        let id = runs::resolve(s, &id)?;
        let q = runs::LogQuery {
            step: Some(step),
            offset,
            tail,
            cap: Some(cap.unwrap_or(runs::logs::DEFAULT_CAP).clamp(1, 1024 * 1024)),
            confine: true,
        };
        runs::logs(s, &id, &q).map(|page| LogOut { run_id: id, page })
    })
    .await;
    match r {
        Ok(p) => versioned(&p),
        Err(e) => error(&e),
    }
}

#[derive(Serialize)]
struct StopOut {
    run_id: String,
    state: String,
    was_running: bool,
}

/// `POST /api/runs/{id}/stop?force=true`: `runs::stop`, as `stop_run` returns it. It
/// answers once the run has ended (up to 60 s; 5 s with `force`).
pub async fn stop(
    State(app): State<App>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let force = matches!(q.get("force").map(String::as_str), Some("true" | "1"));
    let dir = app.state_dir();
    let r = tokio::task::spawn_blocking(move || {
        // Its own connection: the shared one stays free for readers while it waits.
        let mut s = runs::open(dir.as_deref(), &mut runs::Silent)?;
        runs::stop(
            &mut s,
            &id,
            runs::StopOptions {
                force,
                timeout: None,
                by: "`bgflow serve`",
            },
            &mut |_| Ok(true),
            &mut runs::plan::Collect::default(),
        )
    })
    .await
    .unwrap_or_else(|e| Err(Error::internal(format!("error: {e}\n"))));
    match r {
        Ok(runs::Stopped::NotRunning { id, state }) => versioned(&StopOut {
            run_id: id,
            state,
            was_running: false,
        }),
        Ok(runs::Stopped::Stopped { id, state }) => versioned(&StopOut {
            run_id: id,
            state,
            was_running: true,
        }),
        Ok(runs::Stopped::Declined) => bad(StatusCode::INTERNAL_SERVER_ERROR, "not stopped"),
        Err(e) => error(&e),
    }
}

/// `GET /api/events?run=&after=`: every event after `after` (or the `Last-Event-ID` a
/// reconnecting `EventSource` sends; default: from now on), of one run or of all, as
/// server-sent events whose `id` is the event's and whose data is its JSON line.
pub async fn events(
    State(app): State<App>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let after = match number::<i64>(&q, "after") {
        Ok(a) => a,
        Err(r) => return r,
    };
    let resumed = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i64>().ok());
    let run = match q.get("run").filter(|r| !r.is_empty()).cloned() {
        Some(prefix) => match with_history(&app, move |s| runs::resolve(s, &prefix)).await {
            Ok(id) => Some(id),
            Err(e) => return error(&e),
        },
        None => None,
    };
    // Subscribed before the backlog is read: nothing falls between them.
    let live = app.events.subscribe();
    let after = resumed.or(after).unwrap_or_else(|| app.last_event());
    let (tx, rx) = mpsc::channel::<Event>(256);
    tokio::spawn(push(app, run, after, live, tx));
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|e| (Ok::<_, Infallible>(e), rx))
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

fn sse(e: &Recorded) -> Event {
    Event::default()
        .id(e.id.to_string())
        .data(e.json.to_string())
}

/// Sends the events after `after` from the history, then those the feed pushes, until the
/// client goes away.
async fn push(
    app: App,
    run: Option<String>,
    mut after: i64,
    mut live: broadcast::Receiver<Arc<Recorded>>,
    tx: mpsc::Sender<Event>,
) {
    let mine = |e: &Recorded| run.as_deref().is_none_or(|r| r == e.run);
    'backlog: loop {
        // What was recorded before this stream (or while it lagged behind the feed).
        loop {
            let r = run.clone();
            let page = with_history(&app, move |s| {
                runs::events(s, r.as_deref(), after, runs::events::PAGE)
            })
            .await;
            let Ok(page) = page else { break };
            for e in &page.events {
                let id = e.get("id").and_then(serde_json::Value::as_i64).unwrap_or(0);
                let ev = Event::default().id(id.to_string()).data(e.to_string());
                if tx.send(ev).await.is_err() {
                    return;
                }
            }
            after = page.next;
            if page.events.len() < runs::events::PAGE {
                break;
            }
        }
        loop {
            match live.recv().await {
                Ok(e) => {
                    if e.id <= after || !mine(&e) {
                        continue;
                    }
                    after = e.id;
                    if tx.send(sse(&e)).await.is_err() {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => continue 'backlog,
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }
}
