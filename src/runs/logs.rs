//! A run's logs: which steps' log files to read, where the last lines begin, and pages of
//! a log read from an offset with a cap (`LogPage`), so that a caller can follow a log
//! that is still being written without holding it in memory.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use serde::Serialize;

use crate::store::{StepRow, Store};

use super::Error;

/// The text of a page when a caller gives no cap: 64 KiB.
pub const DEFAULT_CAP: usize = 64 * 1024;

/// The steps whose logs `logs RUN [STEP]` reads: the one named, or every step.
pub fn steps(store: &Store, id: &str, step: Option<&str>) -> Result<Vec<StepRow>, Error> {
    steps_matching(store, id, step, false)
}

/// As `steps`, and a matrix step's name is every instance of it in the run (as `--only`
/// selects them): `logs RUN test` reads `test[a]`, `test[b]`, ….
pub fn steps_or_instances(
    store: &Store,
    id: &str,
    step: Option<&str>,
) -> Result<Vec<StepRow>, Error> {
    steps_matching(store, id, step, true)
}

/// The run whose logs `bgflow logs [RUN] [STEP]` prints: the run `run` names (a prefix of
/// its id), else the newest. When `run` names no run, no step was given and the newest run
/// has a step of that name, the error says how to ask for that step's log (`bgflow logs
/// build` reads `build` as a run id).
pub fn run_for(store: &Store, run: Option<&str>, step: Option<&str>) -> Result<String, Error> {
    let Some(prefix) = run else {
        return super::newest(store, "show the logs of");
    };
    let err = match super::resolve(store, prefix) {
        Ok(id) => return Ok(id),
        Err(e) => e,
    };
    let newest = super::newest(store, "show the logs of").ok();
    match newest {
        Some(id) if step.is_none() && steps_or_instances(store, &id, Some(prefix)).is_ok() => {
            Err(Error::new(
                err.code,
                format!(
                    "{}\n  hint: `{prefix}` is a step of the newest run, {id}: `bgflow logs {id} {}`\n",
                    err.message.trim_end(),
                    crate::validate::template::shell_quote(prefix)
                ),
            ))
        }
        _ => Err(err),
    }
}

/// The name a step was written under: a matrix instance's row is `test[a]`, its step
/// `test` (what precedes `[`, which a step's own name cannot hold).
fn written(row: &str) -> &str {
    row.split_once('[').map_or(row, |(base, _)| base)
}

fn steps_matching(
    store: &Store,
    id: &str,
    step: Option<&str>,
    instances: bool,
) -> Result<Vec<StepRow>, Error> {
    let steps = store.steps(id).map_err(|e| super::internal(&e))?;
    let Some(name) = step else {
        return Ok(steps);
    };
    if let Some(one) = steps.iter().find(|s| s.name == name) {
        return Ok(vec![one.clone()]);
    }
    let of_matrix: Vec<StepRow> = (steps.iter())
        .filter(|s| s.name != written(&s.name) && written(&s.name) == name)
        .cloned()
        .collect();
    if !of_matrix.is_empty() {
        if instances {
            return Ok(of_matrix);
        }
        // One log is asked for (a page, with its offset): the matrix step's name would be
        // its own "did you mean".
        return Err(Error::usage(format!(
            "error: run {id} has no step `{name}`: it is a matrix step; name one of its {} instances: {}\n",
            of_matrix.len(),
            crate::diag::some_names(of_matrix.iter().map(|s| s.name.as_str()), 10)
        )));
    }
    let names = (steps.iter()).flat_map(|s| [s.name.as_str(), written(&s.name)]);
    let hint = crate::diag::did_you_mean(name, names)
        .map(|c| format!("did you mean `{c}`? "))
        .unwrap_or_default();
    Err(Error::usage(format!(
        "error: run {id} has no step `{name}` ({hint}steps: {})\n",
        crate::diag::some_names(steps.iter().map(|s| s.name.as_str()), 10)
    )))
}

/// Whether any of the steps `names` of run `id` can still write to its log (pending or
/// running, in a run that is active): `logs -f` stops following once none can.
pub fn still_writing(store: &Store, id: &str, names: &[&str]) -> Result<bool, Error> {
    let run = store.run(id).map_err(|e| super::internal(&e))?;
    let now = store.steps(id).map_err(|e| super::internal(&e))?;
    let done = |name: &str| {
        now.iter()
            .find(|s| s.name == name)
            .is_none_or(|s| !matches!(s.state.as_str(), "running" | "pending"))
    };
    Ok(!(run.as_ref().is_none_or(|r| !r.is_active()) || names.iter().all(|n| done(n))))
}

/// Which part of one step's log to read.
#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    /// The step; may be left out when the run has one step (a `start`ed command).
    pub step: Option<String>,
    /// Read from this byte offset (a page's `next_offset`); default: the start, or the
    /// last `tail` lines.
    pub offset: Option<u64>,
    /// Start at the last `tail` lines (when no `offset` is given).
    pub tail: Option<usize>,
    /// At most this many bytes of text (default `DEFAULT_CAP`).
    pub cap: Option<usize>,
    /// Refuse (exit 3) a log whose path leaves the run's folder, through `..` or a
    /// symbolic link (`bgflow serve`, which reads for people who cannot read the folder).
    pub confine: bool,
}

/// A page of a step's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogPage {
    pub step: String,
    /// The log's bytes from the offset asked for to `next_offset`, as UTF-8 (an invalid
    /// sequence becomes U+FFFD). Whole lines when the cap allows; a line longer than the
    /// cap is cut at the cap.
    pub text: String,
    /// Where the next page starts.
    pub next_offset: u64,
    /// Whether the log held more than this page when it was read.
    pub truncated: bool,
    /// The step's state when the page was read: a caller follows while it is `pending`
    /// or `running`.
    pub state: String,
}

/// A page of one step's log of run `id` (a full id). A step that printed nothing yet
/// has no log file: an empty page at offset 0.
pub fn page(store: &Store, id: &str, q: &LogQuery) -> Result<LogPage, Error> {
    let all = steps(store, id, q.step.as_deref())?;
    let step = match (q.step.as_deref(), all.as_slice()) {
        (Some(_), [s]) | (None, [s]) => s,
        (None, _) => {
            let names: Vec<&str> = all.iter().map(|s| s.name.as_str()).collect();
            return Err(Error::usage(format!(
                "error: run {id} has {} steps; name one (steps: {})\n",
                all.len(),
                names.join(", ")
            )));
        }
        (Some(_), _) => return Err(Error::internal("error: a step name matched twice\n")),
    };
    let confined;
    let path = if q.confine {
        let run = store
            .run_stored(id)
            .map_err(|e| super::internal(&e))?
            .ok_or_else(|| Error::usage(format!("error: no run `{id}`\n")))?;
        confined = confined_to(Path::new(&run.log_dir), Path::new(&step.log_path))?;
        confined.as_path()
    } else {
        Path::new(&step.log_path)
    };
    let start = match (q.offset, q.tail) {
        (Some(o), _) => o,
        (None, Some(n)) => tail_offset(path, n),
        (None, None) => 0,
    };
    let (text, next_offset, truncated) = read_page(path, start, q.cap.unwrap_or(DEFAULT_CAP))
        .map_err(|e| Error::internal(format!("error: cannot read {}: {e}\n", path.display())))?;
    Ok(LogPage {
        step: step.name.clone(),
        text,
        next_offset,
        truncated,
        state: step.state.clone(),
    })
}

/// The real path of `log` when it lies in `dir` (a run's folder), else exit 3: a path
/// with `..`, or one that a symbolic link (of the file or of a folder above it) takes out
/// of `dir`. A log not made yet is judged by its folder.
pub fn confined_to(dir: &Path, log: &Path) -> Result<std::path::PathBuf, Error> {
    use std::path::Component;
    let refuse = || {
        Error::invalid(format!(
            "error: the log {} is outside its run's folder {}\n",
            log.display(),
            dir.display()
        ))
    };
    if log.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(refuse());
    }
    let real_dir = std::fs::canonicalize(dir).map_err(|_| refuse())?;
    let real = match std::fs::canonicalize(log) {
        Ok(p) => p,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if std::fs::symlink_metadata(log).is_ok() {
                // A link to nothing.
                return Err(refuse());
            }
            let parent = log.parent().ok_or_else(refuse)?;
            let name = log.file_name().ok_or_else(refuse)?;
            std::fs::canonicalize(parent)
                .map_err(|_| refuse())?
                .join(name)
        }
        Err(_) => return Err(refuse()),
    };
    if real.starts_with(&real_dir) && real != real_dir {
        Ok(real)
    } else {
        Err(refuse())
    }
}

/// Reads at most `cap` bytes of `path` from `offset`: the text, the offset after it, and
/// whether more followed. The page ends after its last newline when it has one and more
/// follows; a missing file is an empty page.
pub fn read_page(path: &Path, offset: u64, cap: usize) -> std::io::Result<(String, u64, bool)> {
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok((String::new(), offset, false))
        }
        Err(e) => return Err(e),
    };
    let len = f.metadata()?.len();
    if offset >= len {
        return Ok((String::new(), offset, false));
    }
    f.seek(SeekFrom::Start(offset))?;
    let want = usize::try_from(len - offset)
        .unwrap_or(usize::MAX)
        .min(cap.max(1));
    let mut buf = vec![0u8; want];
    let mut got = 0;
    while got < want {
        match f.read(&mut buf[got..])? {
            0 => break,
            n => got += n,
        }
    }
    buf.truncate(got);
    let truncated = offset + (got as u64) < len;
    if truncated {
        // Whole lines when the page holds one; else the cap cuts a long line.
        if let Some(nl) = buf.iter().rposition(|b| *b == b'\n') {
            buf.truncate(nl + 1);
        } else if let Err(e) = std::str::from_utf8(&buf) {
            // Not in the middle of a character: the next page starts with all of it.
            if e.error_len().is_none() && e.valid_up_to() > 0 {
                buf.truncate(e.valid_up_to());
            }
        }
    }
    let next = offset + buf.len() as u64;
    Ok((String::from_utf8_lossy(&buf).into_owned(), next, truncated))
}

/// The offset where the last `n` lines of a file begin.
pub fn tail_offset(path: &Path, n: usize) -> u64 {
    let Ok(mut f) = std::fs::File::open(path) else {
        return 0;
    };
    let len = f.metadata().map_or(0, |m| m.len());
    let mut pos = len;
    let mut newlines = 0;
    let mut buf = vec![0u8; 8192];
    // A final newline ends the last line; it does not start a new one.
    let mut skip_last = true;
    while pos > 0 {
        let chunk = (pos).min(buf.len() as u64);
        pos -= chunk;
        if f.seek(SeekFrom::Start(pos)).is_err()
            || f.read_exact(&mut buf[..chunk as usize]).is_err()
        {
            return 0;
        }
        for i in (0..chunk as usize).rev() {
            if buf[i] == b'\n' {
                if skip_last && pos + i as u64 == len - 1 {
                    skip_last = false;
                    continue;
                }
                newlines += 1;
                if newlines == n {
                    return pos + i as u64 + 1;
                }
            }
        }
        skip_last = false;
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_follow_each_other_to_the_end_of_a_log() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("a.log");
        std::fs::write(&log, "one\ntwo\nthree\n").expect("write");
        let (text, next, more) = read_page(&log, 0, 9).expect("page");
        assert_eq!((text.as_str(), next, more), ("one\ntwo\n", 8, true));
        let (text, next, more) = read_page(&log, next, 9).expect("page");
        assert_eq!((text.as_str(), next, more), ("three\n", 14, false));
        let (text, next, more) = read_page(&log, next, 9).expect("page");
        assert_eq!((text.as_str(), next, more), ("", 14, false));
    }

    #[test]
    fn a_line_longer_than_the_cap_is_cut_at_the_cap() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("a.log");
        std::fs::write(&log, "abcdefgh\n").expect("write");
        let (text, next, more) = read_page(&log, 0, 3).expect("page");
        assert_eq!((text.as_str(), next, more), ("abc", 3, true));
        let (text, next, more) = read_page(&log, next, 100).expect("page");
        assert_eq!((text.as_str(), next, more), ("defgh\n", 9, false));
    }

    #[test]
    fn a_cap_inside_a_character_leaves_the_whole_character_to_the_next_page() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("a.log");
        std::fs::write(&log, "a\u{e9}b").expect("write");
        let (text, next, more) = read_page(&log, 0, 2).expect("page");
        assert_eq!((text.as_str(), next, more), ("a", 1, true));
        let (text, next, more) = read_page(&log, next, 2).expect("page");
        assert_eq!((text.as_str(), next, more), ("\u{e9}", 3, true));
    }

    #[test]
    fn a_log_not_made_yet_is_an_empty_page() {
        let dir = tempfile::tempdir().expect("tempdir");
        let page = read_page(&dir.path().join("none.log"), 0, 10).expect("page");
        assert_eq!(page, (String::new(), 0, false));
    }

    #[test]
    fn a_log_path_out_of_its_run_folder_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let run = dir.path().join("run");
        std::fs::create_dir(&run).expect("mkdir");
        std::fs::write(dir.path().join("secret"), "s").expect("write");
        std::fs::write(run.join("a.log"), "a").expect("write");
        assert!(confined_to(&run, &run.join("a.log")).is_ok());
        assert!(confined_to(&run, &run.join("not-yet.log")).is_ok());
        assert_eq!(
            confined_to(&run, &run.join("../secret")).map_err(|e| e.code),
            Err(crate::exit::INVALID)
        );
        std::os::unix::fs::symlink(dir.path().join("secret"), run.join("b.log")).expect("ln");
        assert!(confined_to(&run, &run.join("b.log")).is_err());
        std::os::unix::fs::symlink(dir.path().join("none"), run.join("c.log")).expect("ln");
        assert!(confined_to(&run, &run.join("c.log")).is_err());
    }

    #[test]
    fn the_tail_starts_at_the_last_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("a.log");
        std::fs::write(&log, "1\n2\n3\n").expect("write");
        assert_eq!(tail_offset(&log, 2), 2);
        assert_eq!(tail_offset(&log, 5), 0);
    }
}
