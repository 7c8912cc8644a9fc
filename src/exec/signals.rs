//! The signals that stop a run (SIGINT, SIGTERM, SIGHUP), as one stream for the run loop,
//! and the note by which a stop that bgflow asked for says who asked.

use std::io::Read;
use std::path::Path;

use nix::sys::signal::Signal;
use tokio::signal::unix::{signal, SignalKind};

/// SIGINT, SIGTERM and SIGHUP as one stream.
pub(super) struct Signals {
    streams: Vec<(Signal, Option<tokio::signal::unix::Signal>)>,
}

impl Signals {
    pub(super) fn new() -> Self {
        let kinds = [
            (Signal::SIGINT, SignalKind::interrupt()),
            (Signal::SIGTERM, SignalKind::terminate()),
            (Signal::SIGHUP, SignalKind::hangup()),
        ];
        Self {
            streams: kinds
                .into_iter()
                .map(|(s, k)| (s, signal(k).ok()))
                .collect(),
        }
    }

    /// The next of them to come; never, when none could be registered. `None` once a
    /// stream has ended.
    pub(super) async fn next(&mut self) -> Option<Signal> {
        // Polls the streams in place: called on every turn of the run loop, so it builds
        // no futures and allocates nothing.
        std::future::poll_fn(|cx| {
            for (sig, stream) in &mut self.streams {
                if let Some(st) = stream {
                    if let std::task::Poll::Ready(got) = st.poll_recv(cx) {
                        return std::task::Poll::Ready(got.map(|()| *sig));
                    }
                }
            }
            std::task::Poll::Pending
        })
        .await
    }
}

/// The file in a run's folder that a bgflow front-end (`bgflow stop`, the MCP tool
/// `stop_run`, `bgflow serve`) writes just before it sends the run's supervisor SIGTERM:
/// who asks, so that the run says "asked to stop by `bgflow stop` (pid 4242)" rather than
/// "bgflow received SIGTERM".
pub const STOP_REQUEST: &str = "stop-request";

/// Why the run stops on `sig`: who asked, when a stop request is in `log_dir`, else the
/// signal. The request is taken (removed) so that it explains one stop only; at most its
/// first 200 bytes are read, control characters left out.
pub(super) fn stop_reason(sig: Signal, log_dir: &Path) -> String {
    let path = log_dir.join(STOP_REQUEST);
    let mut by = String::new();
    if sig == Signal::SIGTERM {
        if let Ok(f) = std::fs::File::open(&path) {
            let mut bytes = Vec::new();
            let _ = f.take(200).read_to_end(&mut bytes);
            by = String::from_utf8_lossy(&bytes)
                .chars()
                .filter(|c| !c.is_control())
                .collect::<String>()
                .trim()
                .to_owned();
        }
    }
    let _ = std::fs::remove_file(&path);
    if by.is_empty() {
        format!("bgflow received {}", sig.as_str())
    } else {
        format!("asked to stop by {by}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stop_request_names_who_asked_once_and_only_for_sigterm() {
        let dir = tempfile::tempdir().expect("tempdir");
        let request = dir.path().join(STOP_REQUEST);
        std::fs::write(&request, "`bgflow stop` (pid 7)\n\u{1b}]0;x\u{7}").expect("write");
        assert_eq!(
            stop_reason(Signal::SIGTERM, dir.path()),
            "asked to stop by `bgflow stop` (pid 7)]0;x"
        );
        assert!(!request.exists(), "taken");
        assert_eq!(
            stop_reason(Signal::SIGTERM, dir.path()),
            "bgflow received SIGTERM"
        );
        // Ctrl-C is Ctrl-C, whatever request lies beside it; an endless one is cut.
        std::fs::write(&request, "x".repeat(10_000)).expect("write");
        assert_eq!(
            stop_reason(Signal::SIGINT, dir.path()),
            "bgflow received SIGINT"
        );
        std::fs::write(&request, "x".repeat(10_000)).expect("write");
        assert_eq!(
            stop_reason(Signal::SIGTERM, dir.path()).len(),
            "asked to stop by ".len() + 200
        );
    }
}
