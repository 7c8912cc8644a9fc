//! The copy of a step that prints a lot, on a thread of its own.
//!
//! The runtime's copy is woken whenever the pipe becomes readable, which for a program
//! writing without pause is every write it makes: it then moves that one write and waits
//! again, in lockstep with the writer. A pacer instead sleeps `PAUSE` after a helping that
//! did not nearly fill the pipe, and so moves hundreds of KiB a `splice`. It waits in
//! poll(2) when the pipe is empty, and stops as the runtime's copy does: at the pipe's
//! end, or when `finish` asks it to (then it takes what is there, at most
//! `LAST_HELPINGS` more).

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use tokio::net::unix::pipe::Receiver;
use tokio::sync::{oneshot, watch};

use super::{drain, Drained, Sink, LAST_HELPINGS};

/// A helping smaller than this means the writer is slower than the copy: the pacer sleeps
/// `PAUSE` before the next, so that the pipe fills meanwhile. (At the 2–3 GB/s a program
/// writes into a pipe here, 150 µs is about half of a 1 MiB pipe.)
const SMALL_HELPING: usize = 768 << 10;
const PAUSE: Duration = Duration::from_micros(150);
/// Pacer threads at once; the copies of further steps stay on the runtime.
const MAX_PACERS: usize = 4;

/// Pacer threads running now.
static PACERS: AtomicUsize = AtomicUsize::new(0);

/// One of the `MAX_PACERS` places, given back when dropped.
struct Place;

impl Place {
    fn take() -> Option<Place> {
        PACERS
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_PACERS).then_some(n + 1)
            })
            .ok()
            .map(|_| Place)
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        PACERS.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A started pacer thread, waiting to be given the pipe.
pub(super) struct Hand {
    give: mpsc::Sender<(OwnedFd, Sink)>,
    done: oneshot::Receiver<io::Result<u64>>,
    stop: Arc<AtomicBool>,
    /// Dropped to wake the thread from poll(2) when asked to stop.
    wake: OwnedFd,
}

impl Hand {
    /// Starts a pacer thread for `log`; `None` when `MAX_PACERS` already run or the thread
    /// cannot be started (the copy then stays on the runtime).
    pub(super) fn start(log: &Path) -> Option<Hand> {
        let place = Place::take()?;
        let (woken, wake) = nix::unistd::pipe2(OFlag::O_CLOEXEC).ok()?;
        let stop = Arc::new(AtomicBool::new(false));
        let (give, given) = mpsc::channel::<(OwnedFd, Sink)>();
        let (report, done) = oneshot::channel();
        let log = log.to_path_buf();
        let stopping = Arc::clone(&stop);
        std::thread::Builder::new()
            .name("bgflow-copy".into())
            .spawn(move || {
                let _place = place;
                if let Ok((read, sink)) = given.recv() {
                    let _ = report.send(run(&read, &log, sink, &woken, &stopping));
                }
            })
            .ok()?;
        Some(Hand {
            give,
            done,
            stop,
            wake,
        })
    }

    /// Hands the pipe and the log over and waits for the copy to end; returns the bytes
    /// the pacer moved.
    pub(super) async fn give(
        self,
        read: Receiver,
        sink: Sink,
        mut stopped: watch::Receiver<bool>,
    ) -> io::Result<u64> {
        let Hand {
            give,
            mut done,
            stop,
            wake,
        } = self;
        give.send((read.into_nonblocking_fd()?, sink))
            .map_err(|_| io::Error::other(ENDED))?;
        // Asked to stop, or the asker gone: either way the copy is to end.
        tokio::select! {
            moved = &mut done => return moved.unwrap_or_else(|_| Err(io::Error::other(ENDED))),
            _ = stopped.wait_for(|&s| s) => {}
        }
        stop.store(true, Ordering::Release);
        drop(wake);
        done.await.unwrap_or_else(|_| Err(io::Error::other(ENDED)))
    }
}

const ENDED: &str = "the copy of the step's output ended unexpectedly";

/// The pacer's loop; `woken` reads as ended once the copy is asked to stop.
fn run(
    read: &OwnedFd,
    log: &Path,
    sink: Sink,
    woken: &OwnedFd,
    stop: &AtomicBool,
) -> io::Result<u64> {
    // The pause is short; the default slack (50 µs) would be a third of it.
    let _ = nix::sys::prctl::set_timerslack(1_000);
    let mut sink = Some(sink);
    let mut total = 0u64;
    loop {
        if stop.load(Ordering::Acquire) {
            return Ok(total + drain(read, log, &mut sink, LAST_HELPINGS)?.moved());
        }
        match drain(read, log, &mut sink, 1)? {
            Drained::End(n) => return Ok(total + n),
            Drained::Budget(n) => {
                total += n;
                if usize::try_from(n).is_ok_and(|n| n < SMALL_HELPING) {
                    std::thread::sleep(PAUSE);
                }
            }
            Drained::Empty(n) => {
                total += n;
                wait(read, woken)?;
            }
        }
    }
}

/// Sleeps until the pipe has something to read, its writers are gone, or `woken` ends.
fn wait(read: &OwnedFd, woken: &OwnedFd) -> io::Result<()> {
    let mut fds = [
        PollFd::new(read.as_fd(), PollFlags::POLLIN),
        PollFd::new(woken.as_fd(), PollFlags::POLLIN),
    ];
    match poll(&mut fds, PollTimeout::NONE) {
        Ok(_) | Err(Errno::EINTR) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
