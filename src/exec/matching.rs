//! Matching a step's output lines against its `fail_on`, `progress` and `ready = { log }`
//! patterns: every byte of every line, however long, in bounded memory.
//!
//! A line ends at `\n`, `\r\n` or a lone `\r` (a progress bar redraws itself after `\r`, so
//! each frame is a line and the last one wins). A line of up to `WINDOW` bytes is matched
//! whole, exactly as `regex` would match it. A longer line is matched in windows of
//! `WINDOW` bytes, each starting `OVERLAP` bytes before the end of the one before, so that
//! any match of up to `OVERLAP` bytes lies wholly inside some window: a pattern whose
//! matches are never longer than that (`FATAL`, `\d+%`, `"status": *"ready"`) is found
//! wherever it is in a line of any length. Only a match longer than `OVERLAP` inside a line
//! longer than `WINDOW` (`^start.*end$` around 300 KiB of text) can be missed. Each window
//! is searched with a few bytes of the line on either side in view, so `^`, `$` and `\b`
//! see the real neighbours: `^` never matches at a window's start, nor `$` at its end.
//! A line still being written is searched as far as it has come when the reader catches
//! up (a bar waiting at a frame); a match there counts once `CONTEXT` bytes follow it.
//!
//! Memory: one line buffer of at most `WINDOW` bytes per followed step, given back when a
//! long line ends; nothing is buffered once no pattern is left to look for in the line.
//! Why windows rather than a streaming automaton: `progress` needs the text of its named
//! groups, which only a buffer holds, and one rule for all three is easier to state.

use std::ops::Range;

use regex::Regex;
use regex_automata::util::captures::Captures;
use regex_automata::{meta, Input};

use super::tail::{truncate, Lines, Progress, Seen};

/// Lines up to this long are matched whole; longer ones window by window.
pub const WINDOW: usize = 1 << 20;
/// How much consecutive windows share: the longest match always found in a longer line.
pub const OVERLAP: usize = 256 << 10;
/// Bytes kept in view on each side of a window's searched span (one UTF-8 character), so
/// look-arounds see the line's real neighbours.
const CONTEXT: usize = 4;
/// A line buffer grown larger than this by a long line is given back when the line ends.
const KEEP: usize = 64 << 10;
/// Longest excerpt of a matching line in a `fail_on` reason, and longest progress message.
const EXCERPT: usize = 1000;
/// Bytes shown before a `fail_on` match that is not near the start of its line.
const BEFORE: usize = 100;

/// A step's output patterns, and the line being matched.
pub struct LineMatcher {
    progress: Option<meta::Regex>,
    captures: Option<Captures>,
    fail_on: Vec<(String, meta::Regex)>,
    ready: Option<meta::Regex>,
    /// The current line's bytes not yet searched past: from the line's start or, once the
    /// line is longer than a window, `CONTEXT` bytes before the next window's span.
    buf: Vec<u8>,
    /// Whether the current line is longer than a window (`buf` starts with context).
    windowed: bool,
    /// The current line's first `progress` match is taken; later ones are not looked for.
    progress_taken: bool,
    /// How much of the unfinished line `caught_up` has searched.
    tentative: usize,
}

impl LineMatcher {
    /// The patterns as the manifest compiled them; the same engine, given a window.
    pub fn new(
        progress: Option<&Regex>,
        fail_on: &[Regex],
        ready: Option<&Regex>,
    ) -> Result<Self, String> {
        let compile = |re: &Regex| {
            meta::Regex::new(re.as_str()).map_err(|e| format!("pattern `{}`: {e}", re.as_str()))
        };
        let progress = progress.map(compile).transpose()?;
        Ok(Self {
            captures: progress.as_ref().map(meta::Regex::create_captures),
            progress,
            fail_on: fail_on
                .iter()
                .map(|re| Ok((re.as_str().to_owned(), compile(re)?)))
                .collect::<Result<_, String>>()?,
            ready: ready.map(compile).transpose()?,
            buf: Vec::new(),
            windowed: false,
            progress_taken: false,
            tentative: 0,
        })
    }

    /// The lines read by one `Follower::poll`, matched into `seen`.
    pub fn with<'a>(&'a mut self, seen: &'a mut Seen) -> Matching<'a> {
        Matching {
            matcher: self,
            seen,
        }
    }

    /// Whether anything is left to look for in the current line.
    fn wants(&self, seen: &Seen) -> bool {
        (self.progress.is_some() && !self.progress_taken)
            || (!self.fail_on.is_empty() && seen.fail_match.is_none())
            || (self.ready.is_some() && !seen.log_ready)
    }

    /// Searches `hay[span]`; `hay` may hold up to `CONTEXT` bytes of the line either side,
    /// seen by look-arounds but part of no match. `whole_start`: `hay` begins where the
    /// line does. `end`: how `hay` ends.
    fn search(
        &mut self,
        hay: &[u8],
        span: Range<usize>,
        whole_start: bool,
        end: HayEnd,
        seen: &mut Seen,
    ) {
        let input = || Input::new(hay).span(span.clone());
        // In an unfinished line, a match reaching the end of what has come may grow or
        // vanish with the next bytes (and `$` or `\b` there would see a false end); one
        // with a character's worth of bytes after it stands.
        let stands = |m_end: usize| end != HayEnd::Unfinished || m_end + CONTEXT <= hay.len();
        if !self.progress_taken {
            if let (Some(re), Some(caps)) = (&self.progress, self.captures.as_mut()) {
                re.search_captures(&input(), caps);
                if caps.get_match().is_some_and(|m| stands(m.end())) {
                    // An unfinished line's progress is shown now and taken again when
                    // the line ends.
                    self.progress_taken = end != HayEnd::Unfinished;
                    if let Some(p) = progress_of(caps, hay) {
                        seen.set_progress(p);
                    }
                }
            }
        }
        if seen.fail_match.is_none() {
            for (text, re) in &self.fail_on {
                if let Some(m) = re.find(input()).filter(|m| stands(m.end())) {
                    let line = excerpt(hay, m.range(), whole_start, end == HayEnd::Line);
                    seen.fail_match = Some((text.clone(), line));
                    break;
                }
            }
        }
        if !seen.log_ready
            && self
                .ready
                .as_ref()
                .and_then(|re| re.find(input()))
                .is_some_and(|m| stands(m.end()))
        {
            seen.log_ready = true;
        }
    }

    /// The buffer is a full window and the line goes on: search it, keep its last
    /// `OVERLAP` bytes (and context) for the next window.
    fn slide(&mut self, seen: &mut Seen) {
        let buf = std::mem::take(&mut self.buf);
        let start = if self.windowed { CONTEXT } else { 0 };
        let end = buf.len() - CONTEXT;
        self.search(&buf, start..end, !self.windowed, HayEnd::Context, seen);
        self.buf = buf;
        self.buf.drain(..end - OVERLAP - CONTEXT);
        self.windowed = true;
        self.tentative = 0;
    }

    fn next_line(&mut self) {
        self.buf.clear();
        if self.buf.capacity() > KEEP {
            self.buf = Vec::new();
        }
        self.windowed = false;
        self.progress_taken = false;
        self.tentative = 0;
    }
}

/// How the searched bytes end.
#[derive(Clone, Copy, PartialEq, Eq)]
enum HayEnd {
    /// Where the line ends.
    Line,
    /// With `CONTEXT` bytes of the line after the span.
    Context,
    /// Where the bytes come so far end; the line goes on.
    Unfinished,
}

/// A `LineMatcher` writing what it finds into a step's `Seen`.
pub struct Matching<'a> {
    matcher: &'a mut LineMatcher,
    seen: &'a mut Seen,
}

impl Lines for Matching<'_> {
    fn line(&mut self, line: &[u8]) {
        let m = &mut *self.matcher;
        if !m.buf.is_empty() || m.windowed || line.len() > WINDOW {
            self.bytes(line);
            self.end();
            return;
        }
        // The common case: the whole line in the read buffer, matched where it lies.
        if m.wants(self.seen) {
            m.search(line, 0..line.len(), true, HayEnd::Line, self.seen);
        }
        m.next_line();
    }

    fn bytes(&mut self, mut bytes: &[u8]) {
        let m = &mut *self.matcher;
        while !bytes.is_empty() && m.wants(self.seen) {
            if m.buf.len() == WINDOW {
                m.slide(self.seen);
                continue;
            }
            let take = (WINDOW - m.buf.len()).min(bytes.len());
            m.buf.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
        }
    }

    fn end(&mut self) {
        let m = &mut *self.matcher;
        if m.wants(self.seen) {
            let buf = std::mem::take(&mut m.buf);
            let start = if m.windowed { CONTEXT } else { 0 };
            m.search(&buf, start..buf.len(), !m.windowed, HayEnd::Line, self.seen);
            m.buf = buf;
        }
        m.next_line();
    }

    fn discard(&mut self) {
        self.matcher.next_line();
    }

    /// The line so far is searched too, so a progress bar waiting at a frame shows it and
    /// a match is not held back until the line ends; searched again only once it has grown.
    fn caught_up(&mut self) {
        let m = &mut *self.matcher;
        if m.buf.len() > m.tentative && m.wants(self.seen) {
            m.tentative = m.buf.len();
            let buf = std::mem::take(&mut m.buf);
            let start = if m.windowed { CONTEXT } else { 0 };
            m.search(
                &buf,
                start..buf.len(),
                !m.windowed,
                HayEnd::Unfinished,
                self.seen,
            );
            m.buf = buf;
        }
    }
}

/// The progress a match's named groups give, if any.
fn progress_of(caps: &Captures, hay: &[u8]) -> Option<Progress> {
    let get = |name: &str| {
        caps.get_group_by_name(name)
            .map(|s| String::from_utf8_lossy(&hay[s.range()]).trim().to_owned())
    };
    let p = Progress {
        percent: get("percent").and_then(|s| s.trim_end_matches('%').parse().ok()),
        current: get("current").and_then(|s| s.parse().ok()),
        total: get("total").and_then(|s| s.parse().ok()),
        message: get("message")
            .filter(|m| !m.is_empty())
            .map(|m| truncate(&m, EXCERPT)),
    };
    (p != Progress::default()).then_some(p)
}

/// At most `EXCERPT` bytes of the line around a match in `hay`: the line's start when the
/// match is near it (as a short line is shown whole), else from a little before the match;
/// `…` where the line goes on.
fn excerpt(hay: &[u8], m: Range<usize>, whole_start: bool, whole_end: bool) -> String {
    let mut from = if whole_start && m.end <= EXCERPT {
        0
    } else {
        m.start.saturating_sub(BEFORE)
    };
    while from < m.start && is_continuation(hay[from]) {
        from += 1;
    }
    let mut to = (from + EXCERPT).min(hay.len());
    while to > from && to < hay.len() && is_continuation(hay[to]) {
        to -= 1;
    }
    let mut out = String::new();
    if from > 0 || !whole_start {
        out.push('…');
    }
    out.push_str(&String::from_utf8_lossy(&hay[from..to]));
    if to < hay.len() || !whole_end {
        out.push('…');
    }
    out
}

fn is_continuation(b: u8) -> bool {
    b & 0xC0 == 0x80
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher(progress: Option<&str>, fail_on: &[&str], ready: Option<&str>) -> LineMatcher {
        let re = |s: &str| Regex::new(s).expect("regex");
        let fail: Vec<Regex> = fail_on.iter().map(|s| re(s)).collect();
        LineMatcher::new(progress.map(re).as_ref(), &fail, ready.map(re).as_ref())
            .expect("patterns")
    }

    /// Feeds `line` in pieces of `piece` bytes, then ends it.
    fn feed(m: &mut LineMatcher, seen: &mut Seen, line: &[u8], piece: usize) {
        let mut lines = m.with(seen);
        for chunk in line.chunks(piece.max(1)) {
            lines.bytes(chunk);
        }
        lines.end();
    }

    #[test]
    fn a_marker_anywhere_in_a_long_line_is_found() {
        for len in [5_000, WINDOW - 3, WINDOW, WINDOW + 1, 3 * WINDOW + 17] {
            for at in [0, len / 2, len - 5] {
                let mut line = vec![b'x'; len];
                line[at..at + 5].copy_from_slice(b"FATAL");
                let mut m = matcher(None, &["FATAL"], None);
                let mut seen = Seen::default();
                feed(&mut m, &mut seen, &line, 65_536);
                let (pattern, shown) = seen.fail_match.expect("a match");
                assert_eq!(pattern, "FATAL");
                assert!(shown.contains("FATAL"), "{len} {at}: {shown}");
                assert!(shown.chars().count() <= EXCERPT + 2, "{len} {at}");
            }
        }
    }

    #[test]
    fn a_match_across_a_window_edge_is_found() {
        // Every position around the first window's end.
        for at in WINDOW - 40..WINDOW + 8 {
            let mut line = vec![b'-'; 2 * WINDOW];
            line[at..at + 12].copy_from_slice(b"ready: 12345");
            let mut m = matcher(None, &[], Some(r"ready: \d{5}\b"));
            let mut seen = Seen::default();
            feed(&mut m, &mut seen, &line, 4096);
            assert!(seen.log_ready, "at {at}");
        }
    }

    #[test]
    fn anchors_see_the_line_not_the_window() {
        let mut line = vec![b'a'; 3 * WINDOW];
        line[0] = b'S';
        *line.last_mut().expect("byte") = b'E';
        for (pattern, hit) in [
            ("^S", true),
            ("E$", true),
            ("^a", false),
            ("a$", false),
            (r"\ba", false),
        ] {
            let mut m = matcher(None, &[pattern], None);
            let mut seen = Seen::default();
            feed(&mut m, &mut seen, &line, 100_000);
            assert_eq!(seen.fail_match.is_some(), hit, "{pattern}");
        }
    }

    #[test]
    fn progress_takes_a_line_s_first_match_and_the_last_line_wins() {
        let re = r"(?P<percent>\d+)%";
        let mut m = matcher(Some(re), &[], None);
        let mut seen = Seen::default();
        let mut long = vec![b' '; 2 * WINDOW];
        long.extend_from_slice(b"42% 43%");
        feed(&mut m, &mut seen, &long, 65_536);
        assert_eq!(seen.progress.as_ref().and_then(|p| p.percent), Some(42.0));
        m.with(&mut seen).line(b"7% done");
        assert_eq!(seen.progress.as_ref().and_then(|p| p.percent), Some(7.0));
    }

    #[test]
    fn progress_groups_and_the_first_fail_on_match() {
        let mut m = matcher(
            Some(r"(?P<current>\d+)/(?P<total>\d+): (?P<message>.*)"),
            &["Traceback"],
            None,
        );
        let mut seen = Seen::default();
        let mut lines = m.with(&mut seen);
        lines.line(b"3/4: almost");
        for i in 0..50 {
            lines.line(format!("line {i}").as_bytes());
        }
        lines.line(b"Traceback (most recent call last):");
        lines.line(b"Traceback again");
        let p = seen.progress.clone().expect("progress");
        assert_eq!(p.describe(), "75% (3/4: almost)");
        assert_eq!(
            seen.fail_match.as_ref().map(|m| m.1.as_str()),
            Some("Traceback (most recent call last):")
        );
    }

    #[test]
    fn an_unfinished_line_counts_only_matches_with_bytes_after_them() {
        let mut m = matcher(
            Some(r"(?P<current>\d+)/(?P<total>\d+)"),
            &["FATAL"],
            Some("ready$"),
        );
        let mut seen = Seen::default();
        let mut lines = m.with(&mut seen);
        lines.bytes(b"12/4");
        lines.caught_up();
        assert!(seen.progress.is_none(), "12/4 may be 12/40");
        let mut lines = m.with(&mut seen);
        lines.bytes(b"0 done, ready");
        lines.caught_up();
        assert_eq!(seen.progress.as_ref().and_then(|p| p.total), Some(40));
        assert!(!seen.log_ready, "`ready$` waits for the line to end");
        let mut lines = m.with(&mut seen);
        lines.bytes(b" FATAL");
        lines.caught_up();
        assert!(
            seen.fail_match.is_none(),
            "a match waits for four bytes after it"
        );
        let mut lines = m.with(&mut seen);
        lines.bytes(b"!!!!");
        lines.caught_up();
        lines.end();
        assert!(seen.fail_match.is_some());
        assert!(!seen.log_ready, "the line ends in `!!!!`");
    }

    #[test]
    fn nothing_is_buffered_once_nothing_is_looked_for() {
        let mut m = matcher(None, &["FATAL"], None);
        let mut seen = Seen::default();
        let mut lines = m.with(&mut seen);
        lines.bytes(b"FATAL");
        lines.bytes(&vec![b'x'; WINDOW]);
        lines.bytes(&vec![b'x'; WINDOW]);
        assert!(m.buf.len() <= WINDOW);
        assert!(seen.fail_match.is_some());
        let mut lines = m.with(&mut seen);
        lines.bytes(&vec![b'x'; WINDOW]);
        assert!(m.buf.len() <= WINDOW, "{}", m.buf.len());
    }

    #[test]
    fn an_excerpt_shows_the_match_and_cuts_at_characters() {
        let short = b"FATAL: short";
        assert_eq!(excerpt(short, 0..5, true, true), "FATAL: short");
        let mut long = "é".repeat(3000).into_bytes();
        long.extend_from_slice(b"FATAL");
        long.extend_from_slice("é".repeat(3000).as_bytes());
        let at = 6000;
        let shown = excerpt(&long, at..at + 5, true, true);
        assert!(shown.starts_with('…') && shown.ends_with('…'), "{shown}");
        assert!(
            shown.contains("FATAL") && !shown.contains('\u{fffd}'),
            "{shown}"
        );
    }
}
