//! A step's output on its way to the log file.
//!
//! The step writes stdout and stderr into one pipe (so their order is kept). A task on the
//! runtime waits for the pipe to be readable and moves what arrived into `<step>.log`: the
//! first bytes with read(2) and write(2), the rest with splice(2), so a step printing
//! gigabytes costs bgflow no memory. The file is created when the first byte arrives: a step
//! that prints nothing leaves no file, which matters when thousands of quiet steps run
//! (creating a file is the dearest thing bgflow does per step on some file systems).
//!
//! The copy ends when every writer has closed the pipe. Processes that escaped the step's
//! process group may hold it open for ever, so `finish` also tells the copy to take what
//! is there now and stop. If the copy fails (a full disk), the step's next write fails
//! with EPIPE: the step sees the failure instead of its output vanishing.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{fcntl, splice, FcntlArg, OFlag, SpliceFFlags};
use tokio::net::unix::pipe::Receiver;
use tokio::sync::watch;

/// A larger pipe means fewer wake-ups for a step that prints a lot; set once output comes.
const PIPE_BYTES: i32 = 1 << 20;
const SPLICE_BYTES: usize = 1 << 20;
/// Helpings (of up to `SPLICE_BYTES`) per wake-up before the task yields to the rest of
/// the run, which shares the thread.
const HELPINGS_PER_WAKE: usize = 16;
/// After `finish`, a writer outside the step's group that never pauses is cut off after
/// this many more helpings.
const LAST_HELPINGS: usize = 64;

/// The running copy of one attempt's output.
pub struct Copier {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<io::Result<u64>>,
}

/// Makes the pipe and starts the copy into `log` (created with `open` when the first byte
/// comes). Returns the end the step writes to. Call from within the runtime.
pub fn start(log: PathBuf, open: fn(&Path) -> io::Result<File>) -> io::Result<(OwnedFd, Copier)> {
    let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(io::Error::from)?;
    // Only bgflow's end is made non-blocking; the step's end stays as programs expect.
    let read = Receiver::from_owned_fd(read)?;
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(copy(read, log, open, stopped));
    Ok((write, Copier { stop, task }))
}

impl Copier {
    /// Waits for the copy to end; call when the step's processes are gone. Returns the
    /// number of bytes written to the log.
    pub async fn finish(self) -> io::Result<u64> {
        let _ = self.stop.send(true);
        match self.task.await {
            Ok(r) => r,
            Err(e) => Err(io::Error::other(e)),
        }
    }
}

/// Where the copy writes: the log and the offset of its end (splice(2) refuses files
/// opened for appending, so the file is written at an offset).
struct Sink {
    file: File,
    at: u64,
}

async fn copy(
    read: Receiver,
    log: PathBuf,
    open: fn(&Path) -> io::Result<File>,
    mut stopped: watch::Receiver<bool>,
) -> io::Result<u64> {
    let mut sink: Option<Sink> = None;
    let mut total = 0u64;
    loop {
        if *stopped.borrow() {
            // The step's processes are gone: take what is there and stop.
            return match drain(&read, &log, open, &mut sink, LAST_HELPINGS)? {
                Drained::End(n) | Drained::Empty(n) | Drained::Budget(n) => Ok(total + n),
            };
        }
        tokio::select! {
            ready = read.readable() => {
                ready?;
                // An empty pipe clears the readiness (try_io sees WouldBlock).
                let mut emptied = 0;
                let drained = read.try_io(|| match drain(&read, &log, open, &mut sink, HELPINGS_PER_WAKE)? {
                    Drained::Empty(n) => {
                        emptied = n;
                        Err(io::ErrorKind::WouldBlock.into())
                    }
                    more => Ok(more),
                });
                match drained {
                    Ok(Drained::End(n)) => return Ok(total + n),
                    Ok(Drained::Budget(n) | Drained::Empty(n)) => {
                        total += n;
                        // Let the rest of the run have the thread between helpings.
                        tokio::task::yield_now().await;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => total += emptied,
                    Err(e) => return Err(e),
                }
            }
            _ = stopped.changed() => {}
        }
    }
}

enum Drained {
    /// Every writer is gone and the pipe is empty.
    End(u64),
    /// Nothing more to read for now.
    Empty(u64),
    /// The budget ran out with more to read.
    Budget(u64),
}

/// Moves what the pipe holds now into the log, at most `budget` helpings.
fn drain(
    read: &Receiver,
    log: &Path,
    open: fn(&Path) -> io::Result<File>,
    sink: &mut Option<Sink>,
    budget: usize,
) -> io::Result<Drained> {
    let mut moved = 0u64;
    for _ in 0..budget {
        let Some(out) = sink.as_mut() else {
            // The first bytes go through memory: until they come, there is no file.
            let mut buf = [0u8; 16 * 1024];
            match nix::unistd::read(read, &mut buf) {
                Ok(0) => return Ok(Drained::End(moved)),
                Ok(n) => {
                    let file = open(log)?;
                    let at = file.metadata()?.len();
                    file.write_all_at(&buf[..n], at)?;
                    let _ = fcntl(read, FcntlArg::F_SETPIPE_SZ(PIPE_BYTES));
                    *sink = Some(Sink {
                        file,
                        at: at + n as u64,
                    });
                    moved += n as u64;
                    continue;
                }
                Err(Errno::EAGAIN) => return Ok(Drained::Empty(moved)),
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
        };
        let mut offset = i64::try_from(out.at).unwrap_or(i64::MAX);
        let spliced = splice(
            read,
            None,
            out.file.as_fd(),
            Some(&mut offset),
            SPLICE_BYTES,
            SpliceFFlags::SPLICE_F_NONBLOCK,
        );
        match spliced {
            Ok(0) => return Ok(Drained::End(moved)),
            Ok(n) => {
                out.at += n as u64;
                moved += n as u64;
            }
            Err(Errno::EAGAIN) => return Ok(Drained::Empty(moved)),
            Err(Errno::EINTR) => {}
            // A file system that cannot splice: through memory instead.
            Err(Errno::EINVAL | Errno::ENOSYS | Errno::EOPNOTSUPP) => {
                let mut buf = vec![0u8; 64 * 1024];
                match nix::unistd::read(read, &mut buf) {
                    Ok(0) => return Ok(Drained::End(moved)),
                    Ok(n) => {
                        out.file.write_all_at(&buf[..n], out.at)?;
                        out.at += n as u64;
                        moved += n as u64;
                    }
                    Err(Errno::EAGAIN) => return Ok(Drained::Empty(moved)),
                    Err(Errno::EINTR) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Drained::Budget(moved))
}
