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

    pub(super) async fn next(&mut self) -> Option<Signal> {
        let futures = self.streams.iter_mut().filter_map(|(sig, stream)| {
            let sig = *sig;
            stream
                .as_mut()
                .map(|st| Box::pin(async move { st.recv().await.map(|()| sig) }))
        });
        let all: Vec<_> = futures.collect();
        if all.is_empty() {
            return std::future::pending().await;
        }
        select_first(all).await
    }
}

async fn select_first<F: std::future::Future<Output = Option<Signal>> + Unpin>(
    mut futures: Vec<F>,
) -> Option<Signal> {
    std::future::poll_fn(move |cx| {
        for f in &mut futures {
            if let std::task::Poll::Ready(v) = std::pin::Pin::new(f).poll(cx) {
                return std::task::Poll::Ready(v);
            }
        }
        std::task::Poll::Pending
    })
    .await
}
