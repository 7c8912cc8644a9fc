//! `bgflow serve`: the status page and HTTP API (DESIGN.md §11, docs/serve.md), a
//! front-end beside `cli/` and `mcp/`. Every handler calls one `runs::` function on a
//! blocking thread and renders what it returns: JSON with the shapes of the `--json`
//! outputs under `/api/`, HTML pages (the current state in the first response, usable
//! without JavaScript) elsewhere, and events as server-sent events.
//!
//! Invariants: the server listens on loopback unless `--bind` says otherwise; every
//! request passes `guard` (the `Host` header, the token, `Origin` on `POST`) before a
//! handler sees it; no response carries a CORS header; what the page needs (HTML, CSS,
//! JS) is compiled into the binary. It names no SQL and starts no process: stopping a
//! run is `runs::stop`.

mod api;
mod assets;
mod guard;
mod html;
mod pages;
mod svg;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::routing::{get, post};
use axum::Router;
use tokio::sync::broadcast;

use crate::exit;
use crate::runs::{self, history::History, Places};

/// Where `bgflow serve` listens when `--bind` is not given.
pub const DEFAULT_BIND: &str = "127.0.0.1:7340";

/// How the server was started.
#[derive(Debug, Clone)]
pub struct Options {
    /// `--state-dir` / `BGFLOW_STATE_DIR`, `--config` / `BGFLOW_CONFIG`.
    pub places: Places,
    /// `--bind`: the address to listen on (port 0: a free one).
    pub bind: SocketAddr,
}

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct App {
    history: History,
    /// The secret that `POST` (and every read) must carry.
    token: Arc<str>,
    /// The address the server listens on.
    bound: SocketAddr,
    /// Events as they are recorded, pushed to every open `/api/events`.
    events: broadcast::Sender<Arc<runs::events::Recorded>>,
    /// The id of the newest event the feed has read.
    last_event: Arc<AtomicI64>,
    /// Each run's edges, found once (checking its workflow again costs as much as `plan`).
    graphs: Graphs,
}

/// Runs' edges by run id; emptied when it holds `GRAPHS_KEPT`.
pub(crate) type Graphs = Arc<Mutex<HashMap<String, Arc<runs::graph::Graph>>>>;
const GRAPHS_KEPT: usize = 256;

/// The edges of run `id` (a full id): from `graphs`, else found and kept.
pub(crate) fn edges(
    graphs: &Graphs,
    store: &runs::Store,
    id: &str,
) -> Result<Arc<runs::graph::Graph>, runs::Error> {
    let lock = |g: &Graphs| {
        g.lock()
            .map(|m| m.get(id).cloned())
            .unwrap_or_else(|p| p.into_inner().get(id).cloned())
    };
    if let Some(g) = lock(graphs) {
        return Ok(g);
    }
    let found = Arc::new(runs::graph::edges(store, id)?);
    let mut map = graphs
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if map.len() >= GRAPHS_KEPT {
        map.clear();
    }
    map.insert(id.to_owned(), found.clone());
    Ok(found)
}

impl App {
    fn state_dir(&self) -> Option<PathBuf> {
        self.history.dir()
    }

    /// The newest event id the feed has pushed (or seen at its start).
    fn last_event(&self) -> i64 {
        self.last_event.load(Ordering::SeqCst)
    }
}

/// A 32-character random token of `[0-9a-z]`.
fn new_token() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::rng();
    (0..32)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

fn router(app: App) -> Router {
    Router::new()
        .route("/", get(pages::runs_page))
        .route("/runs/{id}", get(pages::run_page))
        .route("/assets/{name}", get(assets::asset))
        .route("/api/runs", get(api::runs))
        .route("/api/runs/{id}", get(api::run))
        .route("/api/runs/{id}/logs/{step}", get(api::logs))
        .route("/api/runs/{id}/stop", post(api::stop))
        .route("/api/events", get(api::events))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            guard::guard,
        ))
        .with_state(app)
}

/// Runs the server until SIGINT or SIGTERM; returns the exit code (128+N on signal N, 4
/// when it cannot listen or start).
pub fn serve(opts: &Options) -> u8 {
    let listener = match std::net::TcpListener::bind(opts.bind) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot listen on {}: {e}", opts.bind);
            return exit::INTERNAL;
        }
    };
    let bound = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: cannot listen on {}: {e}", opts.bind);
            return exit::INTERNAL;
        }
    };
    if listener.set_nonblocking(true).is_err() {
        eprintln!("error: cannot listen on {bound}");
        return exit::INTERNAL;
    }
    if !bound.ip().is_loopback() {
        eprintln!(
            "warning: bgflow serve listens on {bound}, not on loopback: other machines can reach \
             it over plain HTTP (no encryption); anyone who has the token can read every run's \
             logs and stop runs"
        );
    }
    let token: Arc<str> = Arc::from(new_token());
    let (events, _) = broadcast::channel(1024);
    let app = App {
        history: History::new(opts.places.state_dir.clone()),
        token: token.clone(),
        bound,
        events,
        last_event: Arc::default(),
        graphs: Arc::default(),
    };
    feed(app.clone());
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the server: {e}");
            return exit::INTERNAL;
        }
    };
    // One line on stdout, for people and for scripts; the rest goes to stderr.
    println!("http://{bound}/?token={token}");
    eprintln!(
        "bgflow serve: the status page is at the URL above (it holds the token that stopping a \
         run needs); Ctrl-C ends the server"
    );
    let code = rt.block_on(async move {
        let listener = match tokio::net::TcpListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("error: cannot listen on {bound}: {e}");
                return exit::INTERNAL;
            }
        };
        let server = axum::serve(listener, router(app));
        tokio::select! {
            r = server => match r {
                Ok(()) => exit::SUCCESS,
                Err(e) => {
                    eprintln!("error: the server stopped: {e}");
                    exit::INTERNAL
                }
            },
            n = stopped() => 128 + n,
        }
    });
    // Open event streams and blocking reads are not waited for.
    rt.shutdown_timeout(Duration::from_millis(500));
    code
}

/// Waits for SIGINT or SIGTERM; the signal's number.
async fn stopped() -> u8 {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => 2,
        _ = term.recv() => 15,
    }
}

/// Starts the thread that reads new events from the history every 100 ms and pushes them
/// to the open event streams. It starts after the newest event of the history there is;
/// until a history exists, it looks for one every 200 ms, and pushes a new history's
/// events from its first.
fn feed(app: App) {
    let spawned = std::thread::Builder::new()
        .name("bgflow-serve-feed".into())
        .spawn(move || {
            let mut first = true;
            loop {
                let store = app
                    .state_dir()
                    .and_then(|d| runs::open(Some(&d), &mut runs::Silent).ok());
                let tail = match store {
                    Some(s) if first => runs::events::Tail::new(s).ok(),
                    Some(s) => Some(runs::events::Tail::after(s, app.last_event())),
                    None => None,
                };
                first = false;
                let Some(mut tail) = tail else {
                    std::thread::sleep(Duration::from_millis(200));
                    continue;
                };
                app.last_event.store(tail.last(), Ordering::SeqCst);
                follow(&app, &mut tail);
                std::thread::sleep(Duration::from_millis(200));
            }
        });
    if let Err(e) = spawned {
        eprintln!("warning: no live updates: cannot start a thread: {e}");
    }
}

/// Pushes `tail`'s events until the history cannot be read.
fn follow(app: &App, tail: &mut runs::events::Tail) {
    loop {
        match tail.read() {
            Ok(new) => {
                let full = new.len() == runs::events::PAGE;
                for e in new {
                    app.last_event.store(e.id, Ordering::SeqCst);
                    // No receiver: nobody is watching; not an error.
                    let _ = app.events.send(Arc::new(e));
                }
                if full {
                    continue;
                }
            }
            // The history went away or broke: open it again.
            Err(_) => return,
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
