//! The end-of-run summary: a table of steps, then each failure with its reason, log path
//! and last lines. The same report is written as `summary.json`.
//!
//! A run of more than `LISTED` steps lists in its table only the steps that ran and did
//! not succeed (the first `LISTED`), with a count of the rest by state, and groups its
//! `not run` list by state and reason: nobody reads a table of 10,000 rows after a run,
//! and the rows that matter would scroll out of sight. Every step stays in
//! `summary.json` (and in `bgflow status RUN`).

use std::collections::HashMap;
use std::fmt::Write;
use std::path::Path;

use crate::exec::{RunReport, StepState};
use crate::report::live::{human_ms, mark};

/// How many rows the table and the `not run` list show at most; a run of at most this
/// many steps lists every one.
pub const LISTED: usize = 50;

/// Prints the summary to stderr as it is made.
pub fn print(report: &RunReport) {
    let mut err = Adapter(std::io::BufWriter::new(std::io::stderr().lock()));
    write(report, &mut err);
    let _ = std::io::Write::flush(&mut err.0);
}

/// `fmt::Write` into an `io::Write`; an error (a closed stderr) is dropped like the rest of
/// bgflow's output to people (`report::stderr`).
struct Adapter<W>(W);

impl<W: std::io::Write> Write for Adapter<W> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let _ = self.0.write_all(s.as_bytes());
        Ok(())
    }
}

fn write(report: &RunReport, out: &mut impl Write) {
    let _ = writeln!(
        out,
        "\nrun {} of {}: {}",
        report.run_id,
        report.workflow,
        report.state.as_str()
    );
    // Every step, or (past `LISTED` steps) those that ran and did not succeed, up to
    // `LISTED` (skipped and cancelled steps are in `not run`, with why).
    let every = report.steps.len() <= LISTED;
    let mut left_out = Counts::default();
    let mut rows = Vec::new();
    for s in &report.steps {
        let plain = matches!(
            s.state,
            StepState::Succeeded | StepState::Skipped | StepState::Cancelled
        );
        if rows.len() < LISTED && (every || !plain) {
            rows.push(s);
        } else {
            left_out.add(s.state, 1);
        }
    }
    let width = rows.iter().map(|s| s.name.len()).max().unwrap_or(4).max(4);
    if !rows.is_empty() {
        let _ = writeln!(
            out,
            "  {:<2} {:<width$}  {:<18} {:>8}  {:>8}  exit",
            "", "step", "state", "time", "attempts"
        );
    }
    for s in rows {
        let exit = match (s.exit_code, &s.signal) {
            (Some(c), _) => c.to_string(),
            (None, Some(sig)) => sig.clone(),
            _ => "-".to_owned(),
        };
        let time = s.duration_ms.map_or_else(|| "-".to_owned(), human_ms);
        let mut state = s.state.as_str().to_owned();
        if s.allow_failure && s.state.is_failure() {
            state.push_str(" (allowed)");
        }
        let _ = writeln!(
            out,
            "  {:<2} {:<width$}  {:<18} {:>8}  {:>8}  {exit}",
            mark(s.state),
            s.name,
            state,
            time,
            s.attempts
        );
    }
    if let Some(counts) = left_out.describe() {
        let _ = writeln!(
            out,
            "  not listed: {counts} (every step is in {})",
            report.log_dir.join("summary.json").display()
        );
    }
    let failures = report.steps.iter().filter(|s| s.state.is_failure());
    for s in failures.clone().take(LISTED) {
        let _ = writeln!(
            out,
            "\n{} {} {}: {}",
            if s.allow_failure {
                "warning:"
            } else {
                "error:"
            },
            s.name,
            s.state.as_str(),
            s.reason.as_deref().unwrap_or("failed")
        );
        let log = s.log_in(&report.log_dir);
        if log.exists() {
            let _ = writeln!(out, "  log: {}", super::pasteable(&log));
        } else {
            let _ = writeln!(out, "  log: none (the step printed nothing)");
        }
        if let Some(t) = s.tests.as_ref().filter(|t| !t.files.is_empty()) {
            let _ = writeln!(out, "  tests: {}", t.describe());
            write_failing(t, out);
        }
        if !s.last_lines.is_empty() {
            let _ = writeln!(out, "  last {} lines:", s.last_lines.len());
            for line in &s.last_lines {
                let _ = writeln!(out, "  | {line}");
            }
        }
    }
    let mut unlisted = Counts::default();
    for s in failures.skip(LISTED) {
        unlisted.add(s.state, 1);
    }
    if let Some(counts) = unlisted.describe() {
        let _ = writeln!(
            out,
            "\n… {} more that did not succeed: {counts} (each with its reason in {})",
            unlisted.total(),
            report.log_dir.join("summary.json").display()
        );
    }
    // The test counts: past a few test steps (a matrix of test files) one line of the sums
    // of every step's, the failed ones' included, so that the last word on the tests is
    // never "all passed" after a failure (`bgflow status` breaks it down); else a line for
    // each step that did not fail (a failed one's counts are in its block above).
    let tested: Vec<_> = (report.steps.iter())
        .filter_map(|s| s.tests.as_ref().map(|t| (s, t)))
        .collect();
    if tested.len() > FOLD_PAST {
        let mut sum = crate::exec::junit::TestCounts::default();
        for (_, t) in &tested {
            sum.add_counts(t);
        }
        let _ = writeln!(
            out,
            "\ntests: {} in {} steps (per step: bgflow status {})",
            sum.describe(),
            tested.len(),
            report.run_id
        );
    } else {
        for (s, t) in tested.into_iter().filter(|(s, _)| !s.state.is_failure()) {
            let _ = writeln!(out, "\n{} tests: {}", s.name, t.describe());
        }
    }
    for s in &report.steps {
        for w in s.tests.iter().flat_map(|t| &t.warnings) {
            let _ = writeln!(out, "warning: {}: {w}", s.name);
        }
        for w in &s.warnings {
            let _ = writeln!(out, "warning: {w}");
        }
    }
    write_not_run(report, out);
    let verdict = match report.exit_code() {
        0 => "ok".to_owned(),
        code => format!("exit {code}"),
    };
    let _ = writeln!(out);
    if report.state != crate::exec::RunState::Succeeded {
        let _ = writeln!(
            out,
            "resume (runs what did not succeed): {}",
            resume_command(report)
        );
    }
    let _ = writeln!(
        out,
        "{verdict}: {} in {}{}; logs in {}",
        report.state.as_str(),
        human_ms(report.duration_ms),
        report
            .reason
            .as_ref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default(),
        report.log_dir.display()
    );
}

/// `bgflow resume ID`, with `--state-dir` when the run's state folder is not the one
/// `bgflow` finds from here (`./.bgflow`), so that it works as printed.
fn resume_command(report: &RunReport) -> String {
    let state_dir = report.log_dir.parent().and_then(Path::parent);
    format!(
        "bgflow{} resume {}",
        super::state_dir_arg(state_dir),
        report.run_id
    )
}

/// The cancelled steps that had started (`stopped while running`, each with its time and
/// log, for what it printed before it was stopped is often the clue), then the steps that
/// did not start (`not run`), each with why: a line each, or past `LISTED` of them a line
/// for each state and reason they share (a fail-fast of 10,000 steps gives one), naming the
/// first few, at most `LISTED` lines in all.
fn write_not_run(report: &RunReport, out: &mut impl Write) {
    let (stopped, not_run): (Vec<_>, Vec<_>) = report
        .steps
        .iter()
        .filter(|s| matches!(s.state, StepState::Skipped | StepState::Cancelled))
        .filter_map(|s| s.reason.as_ref().map(|r| (s, r)))
        .partition(|(s, _)| s.state == StepState::Cancelled && s.started_at.is_some());
    // Steps kept as up to date are the usual case, not news: past a few they are one line
    // at the end, so that a failure's skipped dependents are not lost among them.
    let (kept, mut not_run): (Vec<_>, Vec<_>) = not_run.into_iter().partition(|(_, r)| {
        r.starts_with("up to date since run ") || r.starts_with("succeeded in run ")
    });
    let mut kept_line = None;
    if kept.len() > FOLD_PAST {
        // One run's successes (the usual rebuild) are named; several runs' are not listed.
        let first = kept[0].1;
        let why = if kept.iter().all(|(_, r)| *r == first) {
            first.as_str()
        } else {
            "up to date since earlier runs"
        };
        let names: Vec<&str> = kept.iter().map(|(s, _)| s.name.as_str()).collect();
        kept_line = Some(format!("{} skipped: {why} ({})", kept.len(), named(&names)));
    } else {
        not_run.extend(kept);
    }
    write_why("stopped while running", stopped, None, report, out);
    write_why("not run", not_run, kept_line, report, out);
}

/// The first `NAMED` of `names`, then how many more: `s0, s1, s2, s3, s4 and 115 more`.
pub fn named(names: &[&str]) -> String {
    let shown = names[..names.len().min(NAMED)].join(", ");
    match names.len().saturating_sub(NAMED) {
        0 => shown,
        n => format!("{shown} and {n} more"),
    }
}

/// How many of a kind the summary lists one by one (steps kept as up to date, steps not
/// started for one reason, passing test steps' counts); more are one line.
const FOLD_PAST: usize = 3;

/// One list of `write_not_run` under its title, with `last` as its last line.
fn write_why(
    title: &str,
    steps: Vec<(&crate::exec::StepReport, &String)>,
    last: Option<String>,
    report: &RunReport,
    out: &mut impl Write,
) {
    if steps.is_empty() && last.is_none() {
        return;
    }
    let _ = writeln!(out, "\n{title}:");
    write_steps_why(steps, report, out);
    if let Some(line) = last {
        let _ = writeln!(out, "  {line}");
    }
}

/// A line each, or past `LISTED` a line per state and reason shared.
fn write_steps_why(
    steps: Vec<(&crate::exec::StepReport, &String)>,
    report: &RunReport,
    out: &mut impl Write,
) {
    if steps.len() <= LISTED {
        // Steps that did not start and share a state and reason (a fail-fast's cancelled
        // instances of a matrix): past a few, one line, where the first of them would be.
        let mut sharing: HashMap<(&str, &str), Vec<&str>> = HashMap::new();
        for (s, reason) in steps.iter().filter(|(s, _)| s.started_at.is_none()) {
            let key = (s.state.as_str(), reason.as_str());
            sharing.entry(key).or_default().push(&s.name);
        }
        let mut written = std::collections::HashSet::new();
        for (s, reason) in &steps {
            let key = (s.state.as_str(), reason.as_str());
            let names = sharing.get(&key).filter(|n| n.len() > FOLD_PAST);
            if let Some(names) = names.filter(|_| s.started_at.is_none()) {
                if written.insert(key) {
                    write_group(s.state, reason, names, out);
                }
                continue;
            }
            let started = s.started_at.is_some();
            let after = match s.duration_ms {
                Some(ms) if started => format!(" after {}", human_ms(ms)),
                _ => String::new(),
            };
            let _ = writeln!(out, "  {} {}{after}: {reason}", s.name, s.state.as_str());
            let log = s.log_in(&report.log_dir);
            if started && log.exists() {
                let _ = writeln!(out, "    log: {}", super::pasteable(&log));
            }
        }
        return;
    }
    // Groups in the order first met: (state, reason, names), found by their key (10,000
    // steps may each have a reason of their own).
    let mut groups: Vec<(StepState, &str, Vec<&str>)> = Vec::new();
    let mut index: HashMap<(&str, &str), usize> = HashMap::new();
    for (s, reason) in steps {
        let at = *index
            .entry((s.state.as_str(), reason.as_str()))
            .or_insert_with(|| {
                groups.push((s.state, reason, Vec::new()));
                groups.len() - 1
            });
        groups[at].2.push(&s.name);
    }
    let mut rest = Counts::default();
    for (i, (state, reason, names)) in groups.iter().enumerate() {
        if i >= LISTED {
            rest.add(*state, names.len());
            continue;
        }
        write_group(*state, reason, names, out);
    }
    if let Some(counts) = rest.describe() {
        let _ = writeln!(out, "  … {} more: {counts}", rest.total());
    }
}

/// One line for steps that share a state and reason: `16 cancelled: REASON (s0, s1, s2, s3,
/// s4 and 11 more)`.
fn write_group(state: StepState, reason: &str, names: &[&str], out: &mut impl Write) {
    let _ = writeln!(
        out,
        "  {} {}: {reason} ({})",
        names.len(),
        state.as_str(),
        named(names)
    );
}

/// How many names a grouped `not run` line shows.
const NAMED: usize = 5;

/// How many steps of each state were left out of a list, in the order first met.
#[derive(Default)]
struct Counts(Vec<(StepState, usize)>);

impl Counts {
    fn add(&mut self, state: StepState, n: usize) {
        match self.0.iter_mut().find(|(s, _)| *s == state) {
            Some((_, count)) => *count += n,
            None => self.0.push((state, n)),
        }
    }

    fn total(&self) -> usize {
        self.0.iter().map(|(_, n)| n).sum()
    }

    /// `12 succeeded, 3 cancelled`; `None` when nothing was left out.
    fn describe(&self) -> Option<String> {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|(s, n)| format!("{n} {}", s.as_str()))
            .collect();
        (!parts.is_empty()).then(|| parts.join(", "))
    }
}

/// The lines of a failing test's message shown in the summary; the rest are counted.
const MESSAGE_LINES: usize = 10;

/// `FAIL name: message` / `ERROR name: type: message`, a message's further lines indented
/// under its first, then `… and N more` for the tests the report listed beyond the cap.
fn write_failing(t: &crate::exec::junit::TestCounts, out: &mut impl Write) {
    for f in &t.failing {
        let detail = f.detail();
        let mut lines = detail.lines();
        let first = lines.next().unwrap_or("");
        let _ = if first.is_empty() {
            writeln!(out, "    {} {}", f.mark(), f.name)
        } else {
            writeln!(out, "    {} {}: {first}", f.mark(), f.name)
        };
        let rest: Vec<&str> = lines.collect();
        for line in rest.iter().take(MESSAGE_LINES - 1) {
            let _ = writeln!(out, "{}", format!("        {line}").trim_end());
        }
        if rest.len() >= MESSAGE_LINES {
            let _ = writeln!(
                out,
                "        … {} more line(s)",
                rest.len() - (MESSAGE_LINES - 1)
            );
        }
    }
    if t.truncated > 0 {
        let _ = writeln!(out, "    … and {} more", t.truncated);
    }
}

/// Writes `summary.json` into the run's log folder.
pub fn write_json(report: &RunReport) -> std::io::Result<()> {
    std::fs::create_dir_all(&report.log_dir)?;
    let path: &Path = &report.log_dir.join("summary.json");
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    // Straight to the file through a buffer: the text is never held whole (4.6 MB at
    // 10,000 steps, grown by doubling and copied once more to add the newline).
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, f);
    serde_json::to_writer_pretty(&mut out, report).map_err(std::io::Error::other)?;
    out.write_all(b"\n")?;
    out.into_inner()
        .map_err(std::io::IntoInnerError::into_error)?;
    Ok(())
}
