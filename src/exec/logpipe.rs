//! A step's output on its way to the log file.
//!
//! The step writes stdout and stderr into one pipe (so their order is kept). A task on the
//! runtime waits for the pipe to be readable and moves what arrived into `<step>.log`: the
//! first bytes with read(2) and write(2), the rest with splice(2), so a step printing
//! gigabytes costs bgflow no memory. The file is created when the first byte arrives: a step
//! that prints nothing leaves no file, which matters when thousands of quiet steps run
//! (creating a file is the dearest thing bgflow does per step on some file systems).
//!
//! bgflow keeps the pipe's write end open until `finish`, once the step's processes are
//! gone: the pipe then never reports its end while the step runs, so a quiet step costs
//! the supervisor no wake-up but its exit (when the step closed the last writer, the
//! supervisor woke once for the pipe's end and again for the exit: a sleep and a wake of
//! the supervisor's thread more per step, and a step preempted for it on a busy machine).
//! `finish` closes that end and tells the copy to take what is there and stop: processes
//! that escaped the step may hold the pipe open for ever. If the copy fails (a full
//! disk), the step's next write fails with EPIPE: the step sees the failure instead of its
//! output vanishing.
//!
//! A step that prints a lot is handed to a thread of its own once a mebibyte has come
//! (`pacer`, which says why).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
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
/// Bytes copied on the runtime before a pacer thread takes the copy over.
const PACE_AFTER: u64 = 1 << 20;

mod pacer;

/// The running copy of one attempt's output.
pub struct Copier {
    /// bgflow's write end, the step's output (`writer`), closed by `finish`.
    write: OwnedFd,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<io::Result<u64>>,
}

/// Makes the pipe and starts the copy into `log` (created when the first byte comes, or
/// continued where it ends); the step writes to `Copier::writer`. Call within the runtime.
pub fn start(log: PathBuf) -> io::Result<Copier> {
    let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(io::Error::from)?;
    // Only bgflow's end is made non-blocking; the step's end stays as programs expect.
    // A new pipe's read end has no other status flag to keep, and is known to be a pipe,
    // so the checked constructor's fstat and F_GETFL are not needed (two system calls a
    // step).
    fcntl(&read, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).map_err(io::Error::from)?;
    let read = Receiver::from_owned_fd_unchecked(read)?;
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(copy(read, log, stopped));
    Ok(Copier { write, stop, task })
}

impl Copier {
    /// The end the step's stdout and stderr go to.
    pub fn writer(&self) -> std::os::fd::BorrowedFd<'_> {
        self.write.as_fd()
    }

    /// Waits for the copy to end; call when the step's processes are gone. Returns the
    /// number of bytes written to the log.
    pub async fn finish(self) -> io::Result<u64> {
        // With bgflow's end closed, a pipe no process of the step holds reads as ended.
        drop(self.write);
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

async fn copy(read: Receiver, log: PathBuf, mut stopped: watch::Receiver<bool>) -> io::Result<u64> {
    let mut sink: Option<Sink> = None;
    let mut total = 0u64;
    // Whether the pipe is large enough for a pacer, once asked.
    let mut big_pipe: Option<bool> = None;
    loop {
        if *stopped.borrow() {
            // The step's processes are gone: take what is there and stop.
            return Ok(total + drain(&read, &log, &mut sink, LAST_HELPINGS)?.moved());
        }
        tokio::select! {
            ready = read.readable() => {
                ready?;
                // An empty pipe clears the readiness (try_io sees WouldBlock).
                let mut emptied = 0;
                let drained = read.try_io(|| match drain(&read, &log, &mut sink, HELPINGS_PER_WAKE)? {
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
                // Only a pipe as large as asked for: a 64 KiB one would fill within the
                // pacer's pause, and the step would wait on it.
                let pace = total >= PACE_AFTER
                    && sink.is_some()
                    && *big_pipe.get_or_insert_with(|| {
                        fcntl(&read, FcntlArg::F_GETPIPE_SZ).is_ok_and(|n| n >= PIPE_BYTES)
                    });
                if pace {
                    // The place and the thread first: the log leaves here only once one runs.
                    let handed = pacer::Hand::start(&log)
                        .and_then(|hand| sink.take().map(|out| (hand, out)));
                    if let Some((hand, out)) = handed {
                        return hand.give(read, out, stopped).await.map(|n| total + n);
                    }
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

impl Drained {
    /// The bytes moved, however the drain ended.
    fn moved(&self) -> u64 {
        match *self {
            Drained::End(n) | Drained::Empty(n) | Drained::Budget(n) => n,
        }
    }
}

/// Moves what the pipe holds now into the log, at most `budget` helpings.
fn drain(
    read: &impl AsFd,
    log: &Path,
    sink: &mut Option<Sink>,
    budget: usize,
) -> io::Result<Drained> {
    let mut moved = 0u64;
    for _ in 0..budget {
        let helping = match sink.as_mut() {
            // The first bytes go through memory: until they come, there is no file.
            None => through_memory(read, log, sink),
            Some(out) => {
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
                    Ok(n) => {
                        out.at += n as u64;
                        Ok(n)
                    }
                    // A file system that cannot splice: through memory instead.
                    Err(Errno::EINVAL | Errno::ENOSYS | Errno::EOPNOTSUPP) => {
                        through_memory(read, log, sink)
                    }
                    Err(e) => Err(e.into()),
                }
            }
        };
        match helping {
            Ok(0) => return Ok(Drained::End(moved)),
            Ok(n) => moved += n as u64,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Drained::Empty(moved)),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Drained::Budget(moved))
}

/// One read(2) from the pipe, written at the end of the log (opened, and the pipe
/// enlarged, with the first bytes). 0: every writer is gone and the pipe is empty.
fn through_memory(read: &impl AsFd, log: &Path, sink: &mut Option<Sink>) -> io::Result<usize> {
    READ_BUFFER.with_borrow_mut(|buf| {
        let n = nix::unistd::read(read, buf)?;
        if n == 0 {
            return Ok(0);
        }
        let out = match sink {
            Some(out) => out,
            None => {
                let file = open_at_end(log)?;
                let at = file.metadata()?.len();
                let _ = fcntl(read, FcntlArg::F_SETPIPE_SZ(PIPE_BYTES));
                sink.insert(Sink { file, at })
            }
        };
        out.file.write_all_at(&buf[..n], out.at)?;
        out.at += n as u64;
        Ok(n)
    })
}

thread_local! {
    /// `through_memory`'s buffer, zeroed once per thread. Every step reads its pipe this
    /// way at least once (a quiet step's read sees only the end), and zeroing a fresh
    /// 64 KiB buffer for each read was 40% of the supervisor's instructions on a run of
    /// quiet steps (`valgrind --tool=callgrind`).
    static READ_BUFFER: std::cell::RefCell<Box<[u8]>> =
        std::cell::RefCell::new(vec![0u8; 64 * 1024].into_boxed_slice());
}

/// The log opened for writing at an offset, not for appending: splice(2) refuses files
/// opened with O_APPEND.
fn open_at_end(log: &Path) -> io::Result<File> {
    make_log_dir(log)?;
    OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .mode(0o600)
        .open(log)
}

/// Makes the folder of `log` (the run's folder), readable by its owner only.
pub fn make_log_dir(log: &Path) -> io::Result<()> {
    match log.parent() {
        Some(dir) => crate::layout::ensure_private_dir(dir).map_err(|source| {
            // The words `store::ensure_private_dir` gave before the layers were split.
            io::Error::other(format!(
                "cannot create the state folder {}: {source}",
                dir.display()
            ))
        }),
        None => Ok(()),
    }
}
