//! Reading a step's log as it grows: progress, `fail_on` matches, the last lines.
//!
//! The child writes straight into its log file (no pipe through bgflow), so output costs
//! bgflow nothing and survives bgflow. This reader follows the file in fixed-size chunks
//! and keeps only a bounded tail, so memory stays flat however much a step prints.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use serde::Serialize;

/// Lines kept for the failure report.
pub const TAIL_LINES: usize = 20;

/// How far a step says it is.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Progress {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub percent: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl Progress {
    /// 0..=100 when known.
    pub fn fraction_percent(&self) -> Option<f64> {
        match (self.percent, self.current, self.total) {
            (Some(p), _, _) => Some(p.clamp(0.0, 100.0)),
            (None, Some(c), Some(t)) if t > 0 => {
                Some((c as f64 * 100.0 / t as f64).clamp(0.0, 100.0))
            }
            _ => None,
        }
    }

    /// e.g. `45% (5/10: Implementing)`.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        if let Some(p) = self.fraction_percent() {
            out.push_str(&format!("{p:.0}%"));
        }
        let count = match (self.current, self.total) {
            (Some(c), Some(t)) => Some(format!("{c}/{t}")),
            _ => None,
        };
        let detail: Vec<String> = count.into_iter().chain(self.message.clone()).collect();
        if !detail.is_empty() {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(&format!("({})", detail.join(": ")));
        }
        out
    }

    /// Parses a line of the `BGFLOW_PROGRESS` file: `45 message` or `5/10 message`.
    pub fn from_progress_line(line: &str) -> Option<Self> {
        let line = line.trim();
        let (head, message) = match line.split_once(char::is_whitespace) {
            Some((h, m)) => (h, Some(m.trim().to_owned()).filter(|m| !m.is_empty())),
            None => (line, None),
        };
        let head = head.trim_end_matches('%');
        if let Some((c, t)) = head.split_once('/') {
            return Some(Self {
                current: Some(c.parse().ok()?),
                total: Some(t.parse().ok()?),
                message,
                ..Self::default()
            });
        }
        Some(Self {
            percent: Some(head.parse().ok().filter(|p: &f64| p.is_finite())?),
            message,
            ..Self::default()
        })
    }
}

/// What a `Follower` hands the lines it reads to, piece by piece: a line of any length
/// passes through without being held whole.
pub trait Lines {
    /// A whole line that came in one read (its end not included).
    fn line(&mut self, line: &[u8]) {
        self.bytes(line);
        self.end();
    }
    /// More bytes of the current line (no line end among them).
    fn bytes(&mut self, bytes: &[u8]);
    /// The current line ended.
    fn end(&mut self);
    /// The file was rewritten from its start: forget the unfinished line.
    fn discard(&mut self);
    /// The reader has caught up with the writer in the middle of a line (a progress bar
    /// waiting before its next `\r`).
    fn caught_up(&mut self) {}
}

/// Follows one file from an offset, line by line, without holding a line. A line ends at
/// `\n`, `\r\n` or a lone `\r` (after which a progress bar draws its next frame).
pub struct Follower {
    file: Option<File>,
    path: std::path::PathBuf,
    offset: u64,
    /// Part of the current line was handed on already.
    mid_line: bool,
    /// The last byte read was a `\r` ending a line: a `\n` right after it ends no other.
    after_cr: bool,
    /// `poll_text`'s unfinished line, at most `MAX_TEXT_LINE` bytes.
    text: Vec<u8>,
}

/// Longest line `poll_text` gives (the `BGFLOW_PROGRESS` file's lines are short); the rest
/// of a longer line is dropped.
const MAX_TEXT_LINE: usize = 4096;

impl Follower {
    pub fn new(path: &Path, offset: u64) -> Self {
        Self {
            file: None,
            path: path.to_path_buf(),
            offset,
            mid_line: false,
            after_cr: false,
            text: Vec::new(),
        }
    }

    /// Reads what was appended since the last call and hands it to `lines`. Returns the
    /// number of new bytes.
    pub fn poll(&mut self, lines: &mut impl Lines) -> u64 {
        if self.file.is_none() {
            self.file = File::open(&self.path).ok();
        }
        let Some(mut file) = self.file.take() else {
            return 0;
        };
        // A file rewritten from the start (`echo 45 > $BGFLOW_PROGRESS`) is read again.
        if file.metadata().is_ok_and(|m| m.len() < self.offset) {
            self.offset = 0;
            self.mid_line = false;
            self.after_cr = false;
            lines.discard();
        }
        if file.seek(SeekFrom::Start(self.offset)).is_err() {
            self.file = Some(file);
            return 0;
        }
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0;
        loop {
            let n = match file.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            total += n as u64;
            self.offset += n as u64;
            self.split(&buf[..n], lines);
        }
        if self.mid_line && total > 0 {
            lines.caught_up();
        }
        self.file = Some(file);
        total
    }

    fn split(&mut self, mut rest: &[u8], lines: &mut impl Lines) {
        if std::mem::take(&mut self.after_cr) && rest.first() == Some(&b'\n') {
            rest = &rest[1..];
        }
        while let Some(i) = memchr::memchr2(b'\n', b'\r', rest) {
            if std::mem::take(&mut self.mid_line) {
                lines.bytes(&rest[..i]);
                lines.end();
            } else {
                lines.line(&rest[..i]);
            }
            let cr = rest[i] == b'\r';
            rest = &rest[i + 1..];
            if cr {
                match rest.first() {
                    Some(b'\n') => rest = &rest[1..],
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
        }
        if !rest.is_empty() {
            lines.bytes(rest);
            self.mid_line = true;
        }
    }

    /// The unfinished last line, if any, ends here (the step has ended).
    pub fn finish(&mut self, lines: &mut impl Lines) {
        if std::mem::take(&mut self.mid_line) {
            lines.end();
        }
    }

    /// As `poll`, giving each whole line as text (cut to `MAX_TEXT_LINE` bytes).
    pub fn poll_text(&mut self, on_line: impl FnMut(&str)) -> u64 {
        let mut text = Text {
            buf: std::mem::take(&mut self.text),
            on_line,
        };
        let n = self.poll(&mut text);
        self.text = text.buf;
        n
    }
}

/// `poll_text`'s lines.
struct Text<F> {
    buf: Vec<u8>,
    on_line: F,
}

impl<F: FnMut(&str)> Lines for Text<F> {
    fn bytes(&mut self, bytes: &[u8]) {
        let room = MAX_TEXT_LINE.saturating_sub(self.buf.len());
        self.buf.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    fn end(&mut self) {
        (self.on_line)(&String::from_utf8_lossy(&self.buf));
        self.buf.clear();
    }

    fn discard(&mut self) {
        self.buf.clear();
    }
}

/// What the output of a step has shown so far (the matches; the last lines are read from
/// the end of the log when needed, so no line is copied on the hot path).
#[derive(Debug, Default)]
pub struct Seen {
    pub progress: Option<Progress>,
    pub progress_changed: bool,
    /// The first `fail_on` match: (pattern, the line or an excerpt of it around the match).
    pub fail_match: Option<(String, String)>,
    /// Whether the `ready = { log = ... }` pattern has matched.
    pub log_ready: bool,
    /// The outputs as a successful exit left them, when the step freed its job slot then
    /// (with the outputs' half of its fingerprint when it can be up to date): the step is
    /// judged from this look, not from a second one.
    pub outputs_at_exit: Option<Option<String>>,
    /// The first process that outlived the attempt's command and was ended, as `command
    /// (pid N)`: a service whose command exits with one left has put itself in the
    /// background.
    pub left_behind: Option<String>,
}

impl Seen {
    pub fn set_progress(&mut self, p: Progress) {
        if self.progress.as_ref() != Some(&p) {
            self.progress_changed = true;
        }
        self.progress = Some(p);
    }
}

pub(super) fn truncate(line: &str, max: usize) -> String {
    if line.len() <= max {
        return line.to_owned();
    }
    let mut cut = max;
    while !line.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &line[..cut])
}

/// The last `n` lines of a file after `from` (reading at most its last 64 KiB), each cut
/// to about 1000 bytes: a longer line shows its first and last 500 bytes around `…`, and
/// a line longer than what is read shows as `…` and its last 1000 bytes.
pub fn last_lines(path: &Path, from: u64, n: usize) -> Vec<String> {
    let Ok(mut file) = File::open(path) else {
        return Vec::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(64 * 1024).max(from);
    // One byte more, when there is one, says whether the first line read is whole.
    let read_from = if start > from { start - 1 } else { start };
    if start >= len || file.seek(SeekFrom::Start(read_from)).is_err() {
        return Vec::new();
    }
    let mut buf = Vec::new();
    if file.take(len - read_from).read_to_end(&mut buf).is_err() {
        return Vec::new();
    }
    let (first_cut, bytes) = match buf.split_first() {
        Some((&before, rest)) if read_from < start => (before != b'\n', rest),
        _ => (false, &buf[..]),
    };
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().collect();
    let skip = lines.len().saturating_sub(n);
    lines
        .iter()
        .enumerate()
        .skip(skip)
        // What a terminal shows of a line redrawn after `\r`: its last frame.
        .map(|(i, l)| {
            let l = l.trim_end_matches('\r');
            let shown = l.rsplit('\r').next().unwrap_or(l);
            if i == 0 && first_cut && shown.len() == l.len() {
                format!("…{}", end_of(shown, 1000))
            } else if shown.len() > 1000 {
                // Both ends of a long line: what it is about, and how it ends.
                let head = truncate(shown, 500);
                format!("{head}{}", end_of(shown, 500))
            } else {
                shown.to_owned()
            }
        })
        .collect()
}

/// The last `max` bytes of a line, or fewer at a character boundary.
fn end_of(line: &str, max: usize) -> &str {
    let mut cut = line.len().saturating_sub(max);
    while !line.is_char_boundary(cut) {
        cut += 1;
    }
    &line[cut..]
}

/// The last non-empty line of a file after `from`.
pub fn last_line(path: &Path, from: u64) -> Option<String> {
    last_lines(path, from, 5)
        .into_iter()
        .rev()
        .find(|l| !l.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn progress_lines() {
        let p = Progress::from_progress_line("45 Implementing").expect("percent");
        assert_eq!(p.percent, Some(45.0));
        assert_eq!(p.message.as_deref(), Some("Implementing"));
        let p = Progress::from_progress_line("5/10 Step five").expect("count");
        assert_eq!((p.current, p.total), (Some(5), Some(10)));
        assert_eq!(p.describe(), "50% (5/10: Step five)");
        assert_eq!(
            Progress::from_progress_line("12.5%").and_then(|p| p.percent),
            Some(12.5)
        );
        assert!(Progress::from_progress_line("soon").is_none());
        assert!(Progress::from_progress_line("").is_none());
    }

    /// Collects what a `Follower` hands on: whole lines, and the pieces of long ones.
    #[derive(Default)]
    struct Collect {
        lines: Vec<String>,
        current: Vec<u8>,
        pieces: usize,
    }

    impl Lines for Collect {
        fn bytes(&mut self, bytes: &[u8]) {
            self.pieces += 1;
            self.current.extend_from_slice(bytes);
        }
        fn end(&mut self) {
            let line = std::mem::take(&mut self.current);
            self.lines.push(String::from_utf8_lossy(&line).into_owned());
        }
        fn discard(&mut self) {
            self.current.clear();
        }
    }

    #[test]
    fn follower_hands_on_every_byte_of_a_long_line_in_pieces() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("log");
        let mut f = File::create(&path).expect("create");
        let mut follower = Follower::new(&path, 0);
        f.write_all(b"one\ntw").expect("write");
        let mut seen = Collect::default();
        follower.poll(&mut seen);
        assert_eq!(seen.lines, vec!["one"]);
        f.write_all(b"o\n").expect("write");
        f.write_all(&vec![b'x'; 300_000]).expect("write");
        f.write_all(b"\nend").expect("write");
        follower.poll(&mut seen);
        assert_eq!(seen.lines.len(), 3);
        assert_eq!(seen.lines[1], "two");
        assert_eq!(seen.lines[2].len(), 300_000, "every byte of a long line");
        assert!(seen.pieces >= 5, "a long line comes in pieces, not whole");
        follower.finish(&mut seen);
        assert_eq!(seen.lines[3], "end");
    }

    #[test]
    fn a_carriage_return_ends_a_line_and_crlf_ends_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("log");
        let mut f = File::create(&path).expect("create");
        let mut follower = Follower::new(&path, 0);
        let mut seen = Collect::default();
        f.write_all(b" 10%\r 20%\r 30%\r").expect("write");
        follower.poll(&mut seen);
        // The \n after a \r that ended a read still ends no other line.
        f.write_all(b"\nwin\r\ndos\n\nlast").expect("write");
        follower.poll(&mut seen);
        follower.finish(&mut seen);
        assert_eq!(
            seen.lines,
            vec![" 10%", " 20%", " 30%", "win", "dos", "", "last"]
        );
    }

    #[test]
    fn text_lines_are_cut_and_a_rewritten_file_is_read_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("progress");
        std::fs::write(&path, format!("5/10 a\n{}\n", "y".repeat(10_000))).expect("write");
        let mut follower = Follower::new(&path, 0);
        let mut lines = Vec::new();
        follower.poll_text(|l| lines.push(l.to_owned()));
        assert_eq!(lines[0], "5/10 a");
        assert_eq!(lines[1].len(), MAX_TEXT_LINE);
        std::fs::write(&path, "45\n").expect("write");
        follower.poll_text(|l| lines.push(l.to_owned()));
        assert_eq!(lines[2], "45");
    }

    #[test]
    fn last_lines_of_a_big_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("log");
        let mut f = File::create(&path).expect("create");
        f.write_all(b"attempt one\n").expect("write");
        let from = 12;
        for i in 0..100_000 {
            writeln!(f, "line {i}").expect("write");
        }
        writeln!(f).expect("write");
        let tail = last_lines(&path, from, TAIL_LINES);
        assert_eq!(tail.len(), TAIL_LINES);
        assert_eq!(tail[TAIL_LINES - 2], "line 99999");
        assert_eq!(last_line(&path, from).as_deref(), Some("line 99999"));
        assert!(last_lines(&path, 0, 5)
            .iter()
            .all(|l| !l.contains("attempt")));
        // A line longer than what is read: its end, marked as cut.
        let long = dir.path().join("long");
        std::fs::write(&long, format!("short\n{}END\n", "é".repeat(50_000))).expect("write");
        let tail = last_lines(&long, 0, 5);
        assert_eq!(tail.len(), 1, "{tail:?}");
        assert!(
            tail[0].starts_with('…') && tail[0].ends_with("éEND"),
            "{}",
            tail[0]
        );
        assert!(tail[0].len() <= 1000 + '…'.len_utf8());
        // A read that starts exactly at a line's start shows the line's start too.
        let exact = format!("{}\n{}\n", "a".repeat(1000), "b".repeat(64 * 1024 - 1));
        std::fs::write(&long, exact).expect("write");
        let tail = last_lines(&long, 0, 5);
        assert_eq!(tail.len(), 1, "{tail:?}");
        assert_eq!(tail[0], format!("{}…{}", "b".repeat(500), "b".repeat(500)));
        let over = format!("{}\n{}\n", "a".repeat(1000), "b".repeat(64 * 1024));
        std::fs::write(&long, over).expect("write");
        assert!(last_lines(&long, 0, 5)[0].starts_with("…b"));
        let small = dir.path().join("small");
        std::fs::write(&small, "old\nnew\n").expect("write");
        assert_eq!(last_lines(&small, 4, 5), vec!["new"]);
    }
}
