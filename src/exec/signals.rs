//! The signals that stop a run (SIGINT, SIGTERM, SIGHUP), as one stream for the run loop.

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
