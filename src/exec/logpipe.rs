//! A step's output on its way to the log file.
//!
//! The step writes stdout and stderr into one pipe (so their order is kept); a thread moves
//! what arrives into `<step>.log` with `splice(2)`, so bytes never pass through bgflow's
//! memory and a step printing gigabytes costs no more memory than one printing nothing.
//! The file is created when the first byte arrives: a step that prints nothing leaves no
//! file, which matters when thousands of quiet steps run (creating a file is the dearest
//! thing bgflow does per step on some file systems).
//!
//! The copy ends when every writer has closed the pipe. Processes that escaped the step's
//! process group may hold it open for ever, so `finish` also tells the thread to take what
//! is there and stop.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use nix::errno::Errno;
use nix::fcntl::{fcntl, splice, FcntlArg, OFlag, SpliceFFlags};
use nix::poll::{poll, PollFd, PollFlags};

/// A larger pipe means fewer wake-ups for a step that prints a lot.
const PIPE_BYTES: i32 = 1 << 20;
const SPLICE_BYTES: usize = 1 << 20;
/// How often a copy blocked on a quiet pipe looks at the stop flag.
const POLL_MS: u16 = 50;

/// The running copy of one attempt's output.
pub struct Copier {
    stop: Arc<AtomicBool>,
    handle: tokio::task::JoinHandle<io::Result<u64>>,
}

/// Makes the pipe and starts the copy into `log` (created, with its folder, when the first
/// byte comes; appended to when it exists). Returns the end the step writes to.
pub fn start(log: PathBuf, open: fn(&Path) -> io::Result<File>) -> io::Result<(OwnedFd, Copier)> {
    let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(io::Error::from)?;
    // Best effort: the default 64 KiB pipe works too, with more wake-ups.
    let _ = fcntl(&write, FcntlArg::F_SETPIPE_SZ(PIPE_BYTES));
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let handle = tokio::task::spawn_blocking(move || copy(&read, &log, open, &flag));
    Ok((write, Copier { stop, handle }))
}

impl Copier {
    /// Waits for the copy to end; call when the step's processes are gone. Returns the
    /// number of bytes written to the log.
    pub async fn finish(self) -> io::Result<u64> {
        self.stop.store(true, Ordering::Relaxed);
        match self.handle.await {
            Ok(r) => r,
            Err(e) => Err(io::Error::other(e)),
        }
    }
}

fn copy(
    read: &OwnedFd,
    log: &Path,
    open: fn(&Path) -> io::Result<File>,
    stop: &AtomicBool,
) -> io::Result<u64> {
    // splice(2) refuses files opened for appending, so the file is written at an offset:
    // its end when it is opened (a retry's header or an earlier attempt's output is kept).
    let mut file: Option<(File, i64)> = None;
    let mut total = 0u64;
    loop {
        let stopping = stop.load(Ordering::Relaxed);
        let mut fds = [PollFd::new(read.as_fd(), PollFlags::POLLIN)];
        let ready = match poll(&mut fds, if stopping { 0u16 } else { POLL_MS }) {
            Ok(n) => n,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        };
        let events = fds[0].revents().unwrap_or(PollFlags::empty());
        if ready == 0 {
            if stopping {
                return Ok(total);
            }
            continue;
        }
        if !events.contains(PollFlags::POLLIN) {
            // Hung up with nothing left to read: every writer is gone.
            return Ok(total);
        }
        let (out, offset) = match &mut file {
            Some(f) => f,
            None => {
                let f = open(log)?;
                let end = i64::try_from(f.metadata()?.len()).unwrap_or(i64::MAX);
                file.insert((f, end))
            }
        };
        // Take everything there is now; 0 means every writer is gone and the pipe is empty.
        // After the stop, a writer outside the step's group that never pauses is cut off.
        let mut helpings = 0;
        loop {
            let moved = splice(
                read,
                None,
                &*out,
                Some(offset),
                SPLICE_BYTES,
                SpliceFFlags::SPLICE_F_NONBLOCK,
            );
            match moved {
                Ok(0) => return Ok(total),
                Ok(n) => {
                    total += n as u64;
                    helpings += 1;
                    if stopping && helpings >= 64 {
                        return Ok(total);
                    }
                }
                Err(Errno::EAGAIN) => break,
                Err(Errno::EINTR) => {}
                // A file system without splice: copy through memory instead.
                Err(Errno::EINVAL | Errno::ENOSYS | Errno::EOPNOTSUPP) => {
                    return copy_slowly(read, out, *offset, stop).map(|n| total + n);
                }
                Err(e) => return Err(e.into()),
            }
        }
        if stopping {
            return Ok(total);
        }
    }
}

/// The same copy with read(2) and write(2), for files splice(2) cannot write.
fn copy_slowly(read: &OwnedFd, out: &File, at: i64, stop: &AtomicBool) -> io::Result<u64> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; 64 * 1024];
    let mut at = u64::try_from(at).unwrap_or(0);
    let mut total = 0u64;
    loop {
        let stopping = stop.load(Ordering::Relaxed);
        let mut fds = [PollFd::new(read.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, if stopping { 0u16 } else { POLL_MS }) {
            Ok(0) if stopping => return Ok(total),
            Ok(0) | Err(Errno::EINTR) => continue,
            Ok(_) => {}
            Err(e) => return Err(e.into()),
        }
        match nix::unistd::read(read, &mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => {
                out.write_all_at(&buf[..n], at)?;
                at += n as u64;
                total += n as u64;
            }
            Err(Errno::EINTR | Errno::EAGAIN) => {}
            Err(e) => return Err(e.into()),
        }
    }
}
