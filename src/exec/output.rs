//! Watching an attempt's output while it runs, the same wherever it runs (a local process
//! or a Slurm job): its log's new lines matched against `progress` and `fail_on` (and a
//! service's `log` probe), its progress file, the latest line for the live view
//! (throttled), and when it last showed activity (for `stall_timeout`).

use std::path::Path;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::matching::LineMatcher;
use super::tail::{self, Follower, Progress, Seen};
use super::Msg;

/// How often the latest output line is sent to the live view, at most.
const OUTPUT_EVERY: Duration = Duration::from_millis(500);

pub(crate) struct OutputWatch<'a> {
    step: usize,
    log_path: &'a Path,
    /// Where the attempt's output starts in the log.
    from: u64,
    lines: LineMatcher,
    /// Whether lines are read at all (some pattern needs them); else only the log's size.
    needs_lines: bool,
    follower: Follower,
    progress_file: Follower,
    last_size: u64,
    last_output_sent: Instant,
    /// The last time the attempt printed or reported progress (or started running).
    pub last_activity: Instant,
}

impl<'a> OutputWatch<'a> {
    pub fn new(
        step: usize,
        log_path: &'a Path,
        progress_path: &Path,
        from: u64,
        lines: LineMatcher,
        needs_lines: bool,
    ) -> Self {
        Self {
            step,
            log_path,
            from,
            lines,
            needs_lines,
            follower: Follower::new(log_path, from),
            progress_file: Follower::new(progress_path, 0),
            last_size: from,
            last_output_sent: Instant::now() - OUTPUT_EVERY,
            last_activity: Instant::now(),
        }
    }

    /// One look at the log and the progress file: new lines into `seen`, a progress change
    /// and (at most every `OUTPUT_EVERY`) the latest line sent on `tx`.
    pub fn poll(&mut self, seen: &mut Seen, tx: &mpsc::UnboundedSender<Msg>) {
        let grew = if self.needs_lines {
            self.follower.poll(&mut self.lines.with(seen)) > 0
        } else {
            let size = std::fs::metadata(self.log_path).map_or(self.last_size, |m| m.len());
            let grew = size != self.last_size;
            self.last_size = size;
            grew
        };
        self.poll_progress(seen);
        if grew || seen.progress_changed {
            self.last_activity = Instant::now();
        }
        self.send_progress(seen, tx);
        if grew && self.last_output_sent.elapsed() >= OUTPUT_EVERY {
            self.last_output_sent = Instant::now();
            if let Some(line) = tail::last_line(self.log_path, self.from) {
                let _ = tx.send(Msg::Output {
                    step: self.step,
                    line,
                });
            }
        }
    }

    /// The last look, once everything the attempt printed is in the log: the rest of the
    /// lines (a last one without a newline too) and progress written just before the end.
    pub fn finish(mut self, seen: &mut Seen, tx: &mpsc::UnboundedSender<Msg>) {
        if self.needs_lines {
            self.follower.poll(&mut self.lines.with(seen));
            self.follower.finish(&mut self.lines.with(seen));
        }
        self.poll_progress(seen);
        self.send_progress(seen, tx);
    }

    fn poll_progress(&mut self, seen: &mut Seen) {
        self.progress_file.poll_text(|line| {
            if let Some(p) = Progress::from_progress_line(line) {
                seen.set_progress(p);
            }
        });
    }

    fn send_progress(&self, seen: &mut Seen, tx: &mpsc::UnboundedSender<Msg>) {
        if std::mem::take(&mut seen.progress_changed) {
            if let Some(p) = &seen.progress {
                let _ = tx.send(Msg::Progress {
                    step: self.step,
                    progress: p.clone(),
                });
            }
        }
    }
}
