//! Reading a step's log as it grows: progress, `fail_on` matches, the last lines.
//!
//! The child writes straight into its log file (no pipe through bgflow), so output costs
//! bgflow nothing and survives bgflow. This reader follows the file in fixed-size chunks
//! and keeps only a bounded tail, so memory stays flat however much a step prints.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use regex::Regex;
use serde::Serialize;

/// Longest line kept for matching and display; the rest of a longer line is dropped.
const MAX_LINE: usize = 4096;
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

    /// Reads the named groups of a `progress` regex match.
    pub fn from_captures(caps: &regex::Captures<'_>) -> Option<Self> {
        let get = |n: &str| caps.name(n).map(|m| m.as_str().trim().to_owned());
        let p = Self {
            percent: get("percent").and_then(|s| s.trim_end_matches('%').parse().ok()),
            current: get("current").and_then(|s| s.parse().ok()),
            total: get("total").and_then(|s| s.parse().ok()),
            message: get("message").filter(|m| !m.is_empty()),
        };
        (p != Self::default()).then_some(p)
    }
}

/// Follows one file from an offset, line by line, without holding more than a line.
pub struct Follower {
    file: Option<File>,
    path: std::path::PathBuf,
    offset: u64,
    partial: Vec<u8>,
    partial_overflow: bool,
}

impl Follower {
    pub fn new(path: &Path, offset: u64) -> Self {
        Self {
            file: None,
            path: path.to_path_buf(),
            offset,
            partial: Vec::new(),
            partial_overflow: false,
        }
    }

    /// Reads what was appended since the last call; calls `on_line` for each whole line.
    /// Returns the number of new bytes.
    pub fn poll(&mut self, mut on_line: impl FnMut(&str)) -> u64 {
        if self.file.is_none() {
            self.file = File::open(&self.path).ok();
        }
        let Some(mut file) = self.file.take() else {
            return 0;
        };
        // A file rewritten from the start (`echo 45 > $BGFLOW_PROGRESS`) is read again.
        if file.metadata().is_ok_and(|m| m.len() < self.offset) {
            self.offset = 0;
            self.partial.clear();
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
            let mut rest = &buf[..n];
            while let Some(i) = rest.iter().position(|&b| b == b'\n') {
                self.push(&rest[..i]);
                let line = String::from_utf8_lossy(&self.partial);
                on_line(line.trim_end_matches('\r'));
                self.partial.clear();
                self.partial_overflow = false;
                rest = &rest[i + 1..];
            }
            self.push(rest);
        }
        self.file = Some(file);
        total
    }

    /// The unfinished last line, if any (for display at the end).
    pub fn finish(&mut self, on_line: impl FnOnce(&str)) {
        if !self.partial.is_empty() {
            let line = String::from_utf8_lossy(&self.partial).into_owned();
            on_line(&line);
            self.partial.clear();
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        let room = MAX_LINE.saturating_sub(self.partial.len());
        if bytes.len() > room {
            self.partial_overflow = true;
        }
        self.partial
            .extend_from_slice(&bytes[..bytes.len().min(room)]);
    }
}

/// What the output of a step has shown so far (the matches; the last lines are read from
/// the end of the log when needed, so no line is copied on the hot path).
#[derive(Debug, Default)]
pub struct Seen {
    pub progress: Option<Progress>,
    pub progress_changed: bool,
    /// The first `fail_on` match: (pattern, line).
    pub fail_match: Option<(String, String)>,
    /// Whether the `ready = { log = ... }` pattern has matched.
    pub log_ready: bool,
}

impl Seen {
    pub fn line(
        &mut self,
        line: &str,
        progress: Option<&Regex>,
        fail_on: &[Regex],
        ready_log: Option<&Regex>,
    ) {
        if let Some(re) = progress {
            if let Some(p) = re.captures(line).and_then(|c| Progress::from_captures(&c)) {
                self.set_progress(p);
            }
        }
        if self.fail_match.is_none() {
            if let Some(re) = fail_on.iter().find(|re| re.is_match(line)) {
                self.fail_match = Some((re.as_str().to_owned(), truncate(line, 1000)));
            }
        }
        if let Some(re) = ready_log {
            if re.is_match(line) {
                self.log_ready = true;
            }
        }
    }

    pub fn set_progress(&mut self, p: Progress) {
        if self.progress.as_ref() != Some(&p) {
            self.progress_changed = true;
        }
        self.progress = Some(p);
    }
}

fn truncate(line: &str, max: usize) -> String {
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
/// to 1000 bytes.
pub fn last_lines(path: &Path, from: u64, n: usize) -> Vec<String> {
    let Ok(mut file) = File::open(path) else {
        return Vec::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(64 * 1024).max(from);
    if start >= len || file.seek(SeekFrom::Start(start)).is_err() {
        return Vec::new();
    }
    let mut buf = Vec::new();
    if file.take(len - start).read_to_end(&mut buf).is_err() {
        return Vec::new();
    }
    let text = String::from_utf8_lossy(&buf);
    let mut lines: Vec<&str> = text.lines().collect();
    if start > from && !lines.is_empty() {
        lines.remove(0); // probably cut in the middle
    }
    let skip = lines.len().saturating_sub(n);
    lines[skip..]
        .iter()
        .map(|l| truncate(l.trim_end_matches('\r'), 1000))
        .collect()
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

    #[test]
    fn progress_regex_groups() {
        let re = Regex::new(r"(?P<current>\d+)/(?P<total>\d+): (?P<message>.*)").expect("regex");
        let mut seen = Seen::default();
        seen.line("3/4: almost", Some(&re), &[], None);
        let p = seen.progress.clone().expect("progress");
        assert_eq!(p.describe(), "75% (3/4: almost)");
    }

    #[test]
    fn follower_reads_lines_in_bounded_memory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("log");
        let mut f = File::create(&path).expect("create");
        let mut follower = Follower::new(&path, 0);
        f.write_all(b"one\ntw").expect("write");
        let mut lines = Vec::new();
        follower.poll(|l| lines.push(l.to_owned()));
        assert_eq!(lines, vec!["one"]);
        f.write_all(b"o\n").expect("write");
        f.write_all(&vec![b'x'; 100_000]).expect("write");
        f.write_all(b"\nend").expect("write");
        follower.poll(|l| lines.push(l.to_owned()));
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[1], "two");
        assert_eq!(
            lines[2].len(),
            MAX_LINE,
            "a long line is cut, not held whole"
        );
        let mut last = String::new();
        follower.finish(|l| last = l.to_owned());
        assert_eq!(last, "end");
    }

    #[test]
    fn fail_on_keeps_the_first_match() {
        let re = Regex::new("Traceback").expect("regex");
        let mut seen = Seen::default();
        for i in 0..50 {
            seen.line(&format!("line {i}"), None, std::slice::from_ref(&re), None);
        }
        seen.line(
            "Traceback (most recent call last):",
            None,
            std::slice::from_ref(&re),
            None,
        );
        seen.line("Traceback again", None, std::slice::from_ref(&re), None);
        assert_eq!(
            seen.fail_match.as_ref().map(|m| m.1.as_str()),
            Some("Traceback (most recent call last):")
        );
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
        let small = dir.path().join("small");
        std::fs::write(&small, "old\nnew\n").expect("write");
        assert_eq!(last_lines(&small, 4, 5), vec!["new"]);
    }
}
