//! JUnit XML reports of `kind = "test"` steps (pytest `--junitxml`, cargo-nextest, Maven
//! Surefire): counts and the failing tests.
//!
//! Guarantee 10: a report counts only when the attempt wrote it. Before an attempt starts,
//! the files matching `junit` are listed with their device, inode, size, mtime and ctime
//! (`Before`); after it, only a file that is new or whose stamp changed is read. Comparing
//! stamps, not the attempt's start time against the mtime, is what makes this hold on a
//! filesystem with coarse timestamps (a report written 2 ms before the attempt can carry a
//! later mtime than the attempt's clock, and one written during it an earlier one). A step
//! whose attempt wrote no report, or a report that cannot be read, fails: the check it
//! declared was not performed. Which steps may share a pattern is `plan`'s
//! (`validate/junit.rs`).

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
use serde::Serialize;

mod names;
pub use names::Namer;

/// The failing tests kept for display; the rest are counted in `truncated`.
pub const MAX_FAILING: usize = 20;
/// The longest message kept per failing test, in bytes.
const MAX_MESSAGE: usize = 2000;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TestCounts {
    pub passed: u64,
    pub failed: u64,
    pub errors: u64,
    pub skipped: u64,
    /// The first failing tests (`MAX_FAILING` at most), failures and errors in report order.
    pub failing: Vec<FailingTest>,
    /// Failing tests left out of `failing`.
    pub truncated: u64,
    /// Reports that could not be read, with why.
    pub warnings: Vec<String>,
    /// The report files read.
    pub files: Vec<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailingTest {
    /// A name to paste into the runner: a pytest node id (`tests/test_x.py::TestA::test_b`)
    /// when the report's test maps to a `.py` file, else `classname::name`.
    pub name: String,
    /// `failure` (an assertion failed) or `error` (the test could not run or raised).
    pub kind: FailKind,
    /// The failure's type: the report's `type` attribute (`java.lang.AssertionError`), else
    /// the exception on the last line of pytest's traceback (`tests/test_x.py:3:
    /// AssertionError`); null when the report has neither.
    #[serde(rename = "type")]
    pub type_: Option<String>,
    /// The `message` attribute, else the first line of the element's text; may span lines.
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailKind {
    Failure,
    Error,
}

impl FailingTest {
    /// `FAIL` or `ERROR`, as the summary marks it.
    pub fn mark(&self) -> &'static str {
        match self.kind {
            FailKind::Failure => "FAIL",
            FailKind::Error => "ERROR",
        }
    }

    /// The message with the type in front when the message does not already name it:
    /// `java.lang.AssertionError: expected:<1>`.
    pub fn detail(&self) -> String {
        match &self.type_ {
            Some(t) if !t.is_empty() && !self.message.contains(t.as_str()) => {
                if self.message.is_empty() {
                    t.clone()
                } else {
                    format!("{t}: {}", self.message)
                }
            }
            _ => self.message.clone(),
        }
    }
}

/// `1 error`, `2 errors`: as pytest counts tests that could not run (`0 errors` too).
pub fn errors_text(n: u64) -> String {
    format!("{n} error{}", if n == 1 { "" } else { "s" })
}

impl TestCounts {
    pub fn total(&self) -> u64 {
        self.passed + self.failed + self.errors + self.skipped
    }

    /// e.g. `10 passed, 2 failed, 1 skipped`.
    pub fn describe(&self) -> String {
        let mut parts = vec![format!("{} passed", self.passed)];
        if self.failed > 0 {
            parts.push(format!("{} failed", self.failed));
        }
        if self.errors > 0 {
            parts.push(errors_text(self.errors));
        }
        if self.skipped > 0 {
            parts.push(format!("{} skipped", self.skipped));
        }
        parts.join(", ")
    }

    /// Adds `other`'s counts (passed, failed, errors, skipped) to these; for a sum over
    /// steps, which names no test.
    pub fn add_counts(&mut self, other: &TestCounts) {
        self.passed += other.passed;
        self.failed += other.failed;
        self.errors += other.errors;
        self.skipped += other.skipped;
    }

    /// Adds one report's text; `names` turns a test case into the name shown.
    /// Returns false when the report is not a readable JUnit report (then a warning says why).
    pub fn add_report(&mut self, name: &str, xml: &str, names: &mut Namer) -> bool {
        let mut reader = Reader::from_str(xml);
        let mut case: Option<Case> = None;
        // Inside a <failure> or <error> lacking a `message` or a `type`: its text has them.
        let mut in_failure_text = false;
        let mut text = FailureText::default();
        let mut seen_case = false;
        loop {
            let event = match reader.read_event() {
                Ok(e) => e,
                Err(e) => {
                    self.warnings.push(format!(
                        "{name}: malformed JUnit XML at byte {}: {e}",
                        reader.error_position()
                    ));
                    return false;
                }
            };
            match event {
                Event::Start(e) if is(&e, b"testcase") => {
                    seen_case = true;
                    if let Some(done) = case.take() {
                        self.count(done, names);
                    }
                    case = Some(Case::new(&e));
                }
                Event::Empty(e) if is(&e, b"testcase") => {
                    seen_case = true;
                    self.count(Case::new(&e), names);
                }
                Event::Start(e) if is_outcome(&e) => {
                    if let Some(c) = case.as_mut() {
                        in_failure_text = c.mark(&e);
                        text = FailureText::default();
                    }
                }
                Event::Empty(e) if is_outcome(&e) => {
                    if let Some(c) = case.as_mut() {
                        c.mark(&e);
                    }
                }
                Event::Text(t) if in_failure_text => {
                    if let Ok(s) = t.xml_content(quick_xml::XmlVersion::Implicit1_0) {
                        text.push(&s);
                    }
                }
                Event::CData(t) if in_failure_text => {
                    if let Ok(s) = t.decode() {
                        text.push(&s);
                    }
                }
                Event::GeneralRef(r) if in_failure_text => {
                    if let Ok(name) = r.decode() {
                        if let Ok(s) = quick_xml::escape::unescape(&format!("&{name};")) {
                            text.push(&s);
                        }
                    }
                }
                Event::End(e)
                    if in_failure_text && (is_end(&e, b"failure") || is_end(&e, b"error")) =>
                {
                    in_failure_text = false;
                    if let Some(c) = case.as_mut() {
                        if c.message.is_empty() {
                            c.message = first_line(&text.head);
                        }
                        if c.type_.is_none() {
                            c.type_ = pytest_type(&text.tail);
                        }
                    }
                }
                Event::End(e) if is_end(&e, b"testcase") => {
                    in_failure_text = false;
                    if let Some(done) = case.take() {
                        self.count(done, names);
                    }
                }
                Event::Eof => break,
                _ => {}
            }
        }
        if let Some(done) = case.take() {
            self.count(done, names);
        }
        if !seen_case && !xml.contains("testsuite") {
            self.warnings.push(format!(
                "{name}: no <testsuite> or <testcase> found; is this a JUnit report?"
            ));
            return false;
        }
        true
    }

    fn count(&mut self, case: Case, names: &mut Namer) {
        let kind = match case.outcome {
            Outcome::Passed => {
                self.passed += 1;
                return;
            }
            Outcome::Skipped => {
                self.skipped += 1;
                return;
            }
            Outcome::Failed => {
                self.failed += 1;
                FailKind::Failure
            }
            Outcome::Error => {
                self.errors += 1;
                FailKind::Error
            }
        };
        if self.failing.len() < MAX_FAILING {
            let mut message = case.message;
            cap(&mut message);
            self.failing.push(FailingTest {
                name: names.name(&case.classname, &case.name, case.file.as_deref()),
                kind,
                type_: case.type_,
                message,
            });
        } else {
            self.truncated += 1;
        }
    }
}

/// One test case as read.
struct Case {
    classname: String,
    name: String,
    file: Option<String>,
    outcome: Outcome,
    type_: Option<String>,
    message: String,
}

impl Case {
    fn new(e: &BytesStart<'_>) -> Self {
        Self {
            classname: attr(e, b"classname").unwrap_or_default(),
            name: attr(e, b"name").unwrap_or_else(|| "?".to_owned()),
            file: attr(e, b"file").filter(|f| !f.is_empty()),
            outcome: Outcome::Passed,
            type_: None,
            message: String::new(),
        }
    }

    /// Takes a `<failure>`, `<error>` or `<skipped>`; true when its text is to be read for
    /// the message or the type (it has no `message` or `type` attribute). A test with a failure and an error
    /// (pytest: it failed, then its teardown raised) counts once, as the first one.
    fn mark(&mut self, e: &BytesStart<'_>) -> bool {
        let outcome = if is(e, b"failure") {
            Outcome::Failed
        } else if is(e, b"error") {
            Outcome::Error
        } else {
            Outcome::Skipped
        };
        if matches!(self.outcome, Outcome::Failed | Outcome::Error) {
            return false;
        }
        self.outcome = outcome;
        self.message = attr(e, b"message").unwrap_or_default();
        self.type_ = attr(e, b"type").filter(|t| !t.is_empty());
        (self.message.is_empty() || self.type_.is_none()) && outcome != Outcome::Skipped
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Passed,
    Failed,
    Error,
    Skipped,
}

fn is(e: &BytesStart<'_>, name: &[u8]) -> bool {
    e.local_name().as_ref() == name
}

fn is_outcome(e: &BytesStart<'_>) -> bool {
    is(e, b"failure") || is(e, b"error") || is(e, b"skipped")
}

fn is_end(e: &quick_xml::events::BytesEnd<'_>, name: &[u8]) -> bool {
    e.local_name().as_ref() == name
}

fn attr(e: &BytesStart<'_>, name: &[u8]) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.local_name().as_ref() == name)
        .and_then(|a| {
            a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .ok()
                .map(|v| v.into_owned())
        })
}

/// The text of a `<failure>` or `<error>`: its start while shorter than `MAX_MESSAGE` (for
/// a message, its first line) and its last bytes (for pytest's type): a traceback can be
/// megabytes.
#[derive(Default)]
struct FailureText {
    head: String,
    tail: String,
}

impl FailureText {
    fn push(&mut self, s: &str) {
        if self.head.len() < MAX_MESSAGE {
            self.head.push_str(s);
        }
        self.tail.push_str(s);
        if self.tail.len() > 2 * TAIL {
            let mut cut = self.tail.len() - TAIL;
            while !self.tail.is_char_boundary(cut) {
                cut += 1;
            }
            self.tail.drain(..cut);
        }
    }
}

/// The bytes of a failure's text kept for its last line.
const TAIL: usize = 256;

/// The exception type pytest writes on the last line of a failure's text:
/// `tests/test_x.py:12: AssertionError`.
fn pytest_type(tail: &str) -> Option<String> {
    let last = tail.lines().map(str::trim).rfind(|l| !l.is_empty())?;
    let (place, ty) = last.rsplit_once(": ")?;
    let (_, line) = place.rsplit_once(':')?;
    let is_type = !ty.is_empty()
        && ty
            .chars()
            .next()
            .is_some_and(|c| c.is_alphabetic() || c == '_')
        && ty
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '.');
    (is_type && !line.is_empty() && line.bytes().all(|b| b.is_ascii_digit())).then(|| ty.to_owned())
}

fn first_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
        .to_owned()
}

/// Cuts a message to `MAX_MESSAGE` bytes at a character boundary, marking the cut.
fn cap(message: &mut String) {
    let message_trimmed = message.trim_end().len();
    message.truncate(message_trimmed);
    if message.len() > MAX_MESSAGE {
        let mut cut = MAX_MESSAGE;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
        message.push('…');
    }
}

/// One file's identity and last change, to tell whether an attempt wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    fn of(m: &std::fs::Metadata) -> Self {
        Self {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        }
    }
}

/// The files matching a step's `junit` pattern before an attempt starts.
#[derive(Debug, Default)]
pub struct Before(HashMap<PathBuf, Stamp>);

impl Before {
    pub fn take(root: &Path, pattern: &str) -> Self {
        Self(
            super::fingerprint::matching_files_with_meta(root, pattern)
                .into_iter()
                .filter_map(|(p, m)| Some((p, Stamp::of(m.as_ref()?))))
                .collect(),
        )
    }
}

/// What an attempt's reports say, and why its check could not be performed if it could not.
pub struct Read {
    pub counts: TestCounts,
    /// Set when no report was written by the attempt or one could not be read: the step fails.
    pub not_performed: Option<String>,
}

/// Reads the reports matching `pattern` (relative to `root`) that the attempt wrote: new
/// since `before`, or changed. `cwd` is the step's folder, for pytest node ids.
pub fn read(root: &Path, pattern: &str, before: &Before, cwd: &Path) -> Read {
    let mut counts = TestCounts::default();
    let mut names = Namer::new(Some(cwd), Some(root));
    let mut stale = Vec::new();
    let mut fresh = Vec::new();
    for (path, meta) in super::fingerprint::matching_files_with_meta(root, pattern) {
        let Some(meta) = meta else { continue };
        if before.0.get(&path) == Some(&Stamp::of(&meta)) {
            stale.push(path);
        } else {
            fresh.push(path);
        }
    }
    let shown = |p: &Path| p.strip_prefix(root).unwrap_or(p).display().to_string();
    let mut not_performed = None;
    if fresh.is_empty() {
        let why = match stale.len() {
            0 => "no file matches it".to_owned(),
            n => format!(
                "{n} file(s) match it but were there before the attempt started, unchanged: {}",
                list(stale.iter().map(|p| shown(p)))
            ),
        };
        not_performed = Some(format!(
            "no JUnit report matching `{pattern}` was written by this attempt: {why}"
        ));
    }
    for path in fresh {
        let ok = match std::fs::read(&path) {
            Ok(bytes) => {
                counts.add_report(&shown(&path), &String::from_utf8_lossy(&bytes), &mut names)
            }
            Err(e) => {
                counts.warnings.push(format!("{}: {e}", shown(&path)));
                false
            }
        };
        if !ok && not_performed.is_none() {
            not_performed = Some(format!(
                "JUnit report could not be read: {}",
                counts.warnings.last().map_or("", String::as_str)
            ));
        }
        counts.files.push(path);
    }
    Read {
        counts,
        not_performed,
    }
}

/// What an attempt's reports do to its state: a step that would succeed fails when no
/// report was written or one could not be read, or when the reports list a failing test.
/// A step that failed already keeps its own reason, and why no report was read becomes a
/// warning.
pub fn judge(read: &mut Read, state: &mut super::StepState, reason: &mut Option<String>) {
    if *state != super::StepState::Succeeded {
        if let Some(why) = read.not_performed.take() {
            if !read
                .counts
                .warnings
                .iter()
                .any(|w| why.ends_with(w.as_str()))
            {
                read.counts.warnings.push(why);
            }
        }
        return;
    }
    if let Some(why) = &read.not_performed {
        *state = super::StepState::Failed;
        *reason = Some(why.clone());
        return;
    }
    let counts = &read.counts;
    let bad = counts.failed + counts.errors;
    if bad > 0 {
        *state = super::StepState::Failed;
        let first = counts
            .failing
            .first()
            .map(|t| {
                let detail = t.detail();
                let line = detail.lines().next().unwrap_or("");
                if line.is_empty() {
                    format!(": {}", t.name)
                } else {
                    format!(": {} ({line})", t.name)
                }
            })
            .unwrap_or_default();
        *reason = Some(format!("JUnit reports {bad} failing test(s){first}"));
    } else if counts.passed == 0 {
        // Not a failure (pytest exits 0 when every test skips), but a step whose tests did
        // not run proved nothing, and "succeeded" alone would hide it.
        let why = match counts.skipped {
            0 => "no test ran: the JUnit reports list no test case".to_owned(),
            n => format!("no test ran: the JUnit reports list {n} skipped and none passed"),
        };
        read.counts.warnings.push(why);
    }
}

/// At most 5 paths, then "and N more".
fn list(items: impl Iterator<Item = String>) -> String {
    let items: Vec<String> = items.collect();
    let mut out = items.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
    if items.len() > 5 {
        out.push_str(&format!(" and {} more", items.len() - 5));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const PYTEST: &str = r#"<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" errors="0" failures="1" skipped="1" tests="4">
<testcase classname="tests.test_app" name="test_ok" time="0.001" />
<testcase classname="tests.test_app" name="test_bad" time="0.002"><failure message="assert 1 == 2&#10; +  where 1 = f()">def test_bad():
&gt;  assert 1 == 2</failure></testcase>
<testcase classname="tests.test_app" name="test_skip"><skipped type="pytest.skip" message="not today" /></testcase>
<testcase classname="tests.test_app" name="test_err"><error>&lt;boom&gt; happened
more</error></testcase>
</testsuite></testsuites>"#;

    fn read(xml: &str) -> TestCounts {
        let mut c = TestCounts::default();
        c.add_report("junit.xml", xml, &mut Namer::new(None, None));
        c
    }

    #[test]
    fn counts_a_pytest_report_with_errors_apart_from_failures() {
        let c = read(PYTEST);
        assert_eq!((c.passed, c.failed, c.skipped, c.errors), (1, 1, 1, 1));
        assert_eq!(c.failing[0].name, "tests.test_app::test_bad");
        assert_eq!(c.failing[0].kind, FailKind::Failure);
        assert_eq!(c.failing[0].message, "assert 1 == 2\n +  where 1 = f()");
        assert_eq!(c.failing[0].type_, None);
        assert_eq!(c.failing[1].kind, FailKind::Error);
        assert_eq!(c.failing[1].mark(), "ERROR");
        assert_eq!(c.failing[1].message, "<boom> happened");
        assert_eq!(c.describe(), "1 passed, 1 failed, 1 error, 1 skipped");
        assert!(c.warnings.is_empty());
    }

    #[test]
    fn counts_nextest_and_surefire_shapes_with_the_failure_type() {
        let nextest = r#"<testsuites name="nextest-run" tests="2" failures="0"><testsuite name="bgflow" tests="2"><testcase name="a::b" classname="bgflow"></testcase><testcase name="c" classname="bgflow"/></testsuite></testsuites>"#;
        let mut c = read(nextest);
        assert_eq!((c.passed, c.failed), (2, 0));
        let surefire = r#"<testsuite name="com.x.AppTest" tests="1" failures="1"><testcase name="t" classname="com.x.AppTest"><failure message="expected:&lt;1&gt;" type="java.lang.AssertionError"/></testcase><testcase name="u" classname="com.x.AppTest"><failure/></testcase></testsuite>"#;
        c.add_report("s.xml", surefire, &mut Namer::new(None, None));
        assert_eq!((c.passed, c.failed), (2, 2));
        assert_eq!(c.failing[0].message, "expected:<1>");
        assert_eq!(
            c.failing[0].type_.as_deref(),
            Some("java.lang.AssertionError")
        );
        assert_eq!(
            c.failing[0].detail(),
            "java.lang.AssertionError: expected:<1>"
        );
        // A self-closing failure has no text: the next test's text is not its message.
        assert_eq!(c.failing[1].message, "");
    }

    #[test]
    fn the_type_comes_from_pytest_tracebacks_last_line() {
        let xml = r#"<testsuite><testcase classname="t" name="a"><failure message="assert 1 == 2">def test_a():
&gt;   assert 1 == 2

tests/test_x.py:2: AssertionError</failure></testcase><testcase classname="t" name="b"><error message="failed on setup with &quot;RuntimeError: no db&quot;">...
tests/test_x.py:9: RuntimeError</error></testcase></testsuite>"#;
        let c = read(xml);
        assert_eq!(c.failing[0].type_.as_deref(), Some("AssertionError"));
        assert_eq!(c.failing[0].detail(), "AssertionError: assert 1 == 2");
        assert_eq!(c.failing[1].type_.as_deref(), Some("RuntimeError"));
        assert_eq!(
            c.failing[1].detail(),
            "failed on setup with \"RuntimeError: no db\""
        );
        assert_eq!(pytest_type("x\nnot a type line"), None);
        assert_eq!(pytest_type("a.py:x: Foo"), None);
    }

    #[test]
    fn failing_tests_past_the_cap_are_counted_as_truncated() {
        let cases: String = (0..25)
            .map(|i| {
                format!(r#"<testcase classname="m" name="t{i}"><failure message="no"/></testcase>"#)
            })
            .collect();
        let c = read(&format!("<testsuite>{cases}</testsuite>"));
        assert_eq!(c.failed, 25);
        assert_eq!(c.failing.len(), MAX_FAILING);
        assert_eq!(c.truncated, 25 - MAX_FAILING as u64);
    }

    #[test]
    fn malformed_reports_are_warnings() {
        let mut c = TestCounts::default();
        let mut n = Namer::new(None, None);
        assert!(!c.add_report(
            "bad.xml",
            "<testsuite><testcase name='x'></testsuite>",
            &mut n
        ));
        assert!(!c.add_report("not.xml", "hello", &mut n));
        assert_eq!(c.warnings.len(), 2, "{:?}", c.warnings);
    }

    #[test]
    fn only_reports_the_attempt_wrote_are_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::create_dir(root.join("reports")).expect("mkdir");
        let ok = r#"<testsuite><testcase classname="m" name="t"/></testsuite>"#;
        std::fs::write(root.join("reports/old.xml"), ok).expect("write");
        let before = Before::take(root, "reports/*.xml");
        let r = super::read(root, "reports/*.xml", &before, root);
        let why = r.not_performed.expect("a stale report is not read");
        assert!(why.contains("reports/old.xml"), "{why}");
        assert_eq!(r.counts.total(), 0);
        std::fs::write(root.join("reports/new.xml"), ok).expect("write");
        let r = super::read(root, "reports/*.xml", &before, root);
        assert_eq!(r.not_performed, None);
        assert_eq!((r.counts.passed, r.counts.files.len()), (1, 1));
        let r = super::read(
            root,
            "report/*.xml",
            &Before::take(root, "report/*.xml"),
            root,
        );
        assert!(r
            .not_performed
            .expect("nothing matches")
            .contains("no file matches it"));
    }
}
