//! JUnit XML reports of `kind = "test"` steps (pytest `--junitxml`, cargo-nextest, Maven
//! Surefire): counts and the failing tests. A malformed report is a warning, never a crash.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
use serde::Serialize;

/// The failing tests kept for display.
const MAX_FAILING: usize = 20;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TestCounts {
    pub passed: u64,
    pub failed: u64,
    pub errors: u64,
    pub skipped: u64,
    /// The first failing tests: name and message.
    pub failing: Vec<FailingTest>,
    /// Reports that could not be read, with why.
    pub warnings: Vec<String>,
    /// The report files read.
    pub files: Vec<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailingTest {
    pub name: String,
    pub message: String,
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
            parts.push(format!("{} errors", self.errors));
        }
        if self.skipped > 0 {
            parts.push(format!("{} skipped", self.skipped));
        }
        parts.join(", ")
    }

    /// Adds one report's text.
    pub fn add_report(&mut self, name: &str, xml: &str) {
        let mut reader = Reader::from_str(xml);
        reader.config_mut().trim_text(true);
        // The test case being read: (name, its outcome, message).
        let mut case: Option<(String, Outcome, String)> = None;
        let mut in_failure_text = false;
        let mut seen_case = false;
        loop {
            let event = match reader.read_event() {
                Ok(e) => e,
                Err(e) => {
                    self.warnings.push(format!(
                        "{name}: malformed JUnit XML at byte {}: {e}",
                        reader.error_position()
                    ));
                    return;
                }
            };
            match event {
                Event::Start(e) if is(&e, b"testcase") => {
                    seen_case = true;
                    if let Some(done) = case.take() {
                        self.count(done);
                    }
                    case = Some((case_name(&e), Outcome::Passed, String::new()));
                }
                Event::Empty(e) if is(&e, b"testcase") => {
                    seen_case = true;
                    self.count((case_name(&e), Outcome::Passed, String::new()));
                }
                Event::Start(e) | Event::Empty(e)
                    if is(&e, b"failure") || is(&e, b"error") || is(&e, b"skipped") =>
                {
                    if let Some((_, outcome, message)) = case.as_mut() {
                        *outcome = if is(&e, b"failure") {
                            Outcome::Failed
                        } else if is(&e, b"error") {
                            Outcome::Error
                        } else {
                            Outcome::Skipped
                        };
                        *message = attr(&e, b"message").unwrap_or_default();
                        in_failure_text = message.is_empty();
                    }
                }
                Event::Text(t) if in_failure_text => {
                    if let (Some((_, _, message)), Ok(text)) = (case.as_mut(), t.decode()) {
                        *message = text.lines().next().unwrap_or("").trim().to_owned();
                    }
                    in_failure_text = false;
                }
                Event::End(e) if e.local_name().as_ref() == b"testcase" => {
                    if let Some(done) = case.take() {
                        self.count(done);
                    }
                }
                Event::Eof => break,
                _ => {}
            }
        }
        if let Some(done) = case.take() {
            self.count(done);
        }
        if !seen_case && !xml.contains("testsuite") {
            self.warnings.push(format!(
                "{name}: no <testsuite> or <testcase> found; is this a JUnit report?"
            ));
        }
    }

    fn count(&mut self, (name, outcome, message): (String, Outcome, String)) {
        match outcome {
            Outcome::Passed => self.passed += 1,
            Outcome::Skipped => self.skipped += 1,
            Outcome::Failed | Outcome::Error => {
                if outcome == Outcome::Failed {
                    self.failed += 1;
                } else {
                    self.errors += 1;
                }
                if self.failing.len() < MAX_FAILING {
                    self.failing.push(FailingTest { name, message });
                }
            }
        }
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

fn case_name(e: &BytesStart<'_>) -> String {
    let name = attr(e, b"name").unwrap_or_else(|| "?".to_owned());
    match attr(e, b"classname").filter(|c| !c.is_empty()) {
        Some(class) => format!("{class}::{name}"),
        None => name,
    }
}

/// Reads every report matching `pattern` (relative to `root`) written at or after `since`.
pub fn read(root: &Path, pattern: &str, since: SystemTime) -> TestCounts {
    let mut counts = TestCounts::default();
    let fresh: Vec<PathBuf> = super::fingerprint::matching_files_with_meta(root, pattern)
        .into_iter()
        .filter(|(_, meta)| {
            meta.as_ref()
                .and_then(|m| m.modified().ok())
                .is_some_and(|t| t + std::time::Duration::from_secs(1) >= since)
        })
        .map(|(path, _)| path)
        .collect();
    if fresh.is_empty() {
        counts.warnings.push(format!(
            "no JUnit report matching `{pattern}` was written by this step"
        ));
    }
    for path in fresh {
        match std::fs::read(&path) {
            Ok(bytes) => counts.add_report(
                &path.display().to_string(),
                &String::from_utf8_lossy(&bytes),
            ),
            Err(e) => counts.warnings.push(format!("{}: {e}", path.display())),
        }
        counts.files.push(path);
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    const PYTEST: &str = r#"<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" errors="0" failures="1" skipped="1" tests="4">
<testcase classname="tests.test_app" name="test_ok" time="0.001" />
<testcase classname="tests.test_app" name="test_bad" time="0.002"><failure message="assert 1 == 2">def test_bad():
&gt;  assert 1 == 2</failure></testcase>
<testcase classname="tests.test_app" name="test_skip"><skipped type="pytest.skip" message="not today" /></testcase>
<testcase classname="tests.test_app" name="test_err"><error>boom happened
more</error></testcase>
</testsuite></testsuites>"#;

    #[test]
    fn counts_a_pytest_report() {
        let mut c = TestCounts::default();
        c.add_report("junit.xml", PYTEST);
        assert_eq!((c.passed, c.failed, c.skipped, c.errors), (1, 1, 1, 1));
        assert_eq!(c.failing[0].name, "tests.test_app::test_bad");
        assert_eq!(c.failing[0].message, "assert 1 == 2");
        assert_eq!(c.failing[1].message, "boom happened");
        assert_eq!(c.describe(), "1 passed, 1 failed, 1 errors, 1 skipped");
        assert!(c.warnings.is_empty());
    }

    #[test]
    fn counts_nextest_and_surefire_shapes() {
        let nextest = r#"<testsuites name="nextest-run" tests="2" failures="0"><testsuite name="bgflow" tests="2"><testcase name="a::b" classname="bgflow"></testcase><testcase name="c" classname="bgflow"/></testsuite></testsuites>"#;
        let mut c = TestCounts::default();
        c.add_report("n.xml", nextest);
        assert_eq!((c.passed, c.failed), (2, 0));
        let surefire = r#"<testsuite name="com.x.AppTest" tests="1" failures="1"><testcase name="t" classname="com.x.AppTest"><failure message="expected:&lt;1&gt;" type="AssertionError"/></testcase></testsuite>"#;
        c.add_report("s.xml", surefire);
        assert_eq!((c.passed, c.failed), (2, 1));
        assert_eq!(c.failing[0].message, "expected:<1>");
    }

    #[test]
    fn malformed_reports_are_warnings() {
        let mut c = TestCounts::default();
        c.add_report("bad.xml", "<testsuite><testcase name='x'></testsuite>");
        c.add_report("not.xml", "hello");
        assert_eq!(c.warnings.len(), 2, "{:?}", c.warnings);
    }
}
