//! Live run display: progress bars on a terminal, plain timestamped lines elsewhere.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::exec::{RunEvent, Sink, StepState};
use crate::report::stderr;

/// `--progress`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ProgressChoice {
    #[default]
    Auto,
    Always,
    Never,
}

/// Whether to draw bars: a pure function of the choice, "stderr is a terminal" and "CI is set".
pub fn use_bars(choice: ProgressChoice, stderr_is_terminal: bool, ci: bool) -> bool {
    match choice {
        ProgressChoice::Always => true,
        ProgressChoice::Never => false,
        ProgressChoice::Auto => stderr_is_terminal && !ci,
    }
}

/// How often a plain progress line may repeat for one step.
const PLAIN_PROGRESS_EVERY: Duration = Duration::from_secs(3);

/// Plain lines: `HH:MM:SS event`, for logs and CI.
pub struct Plain {
    names: Arc<[String]>,
    last_progress: HashMap<usize, Instant>,
    quiet: bool,
    /// `-v`: also the containment mechanism.
    pub verbose: bool,
    out: Lines,
}

/// Writes plain lines. A run of thousands of short steps prints two lines a step, so the
/// time of day is formatted once a second and the line is built in one reused buffer.
#[derive(Default)]
struct Lines {
    /// The Unix second `stamp` shows.
    second: Option<i64>,
    stamp: String,
    line: String,
    /// The local time zone, found with the first line.
    zone: Option<jiff::tz::TimeZone>,
}

/// The local time zone: `TZ` if set, else `/etc/localtime` read directly. (Given only the
/// name `/etc/localtime` links to, jiff lists every folder of the time zone database
/// first: about 1.5 ms before a run's first line.)
fn local_zone() -> jiff::tz::TimeZone {
    if std::env::var_os("TZ").is_none() {
        if let Some(zone) = std::fs::read("/etc/localtime")
            .ok()
            .and_then(|data| jiff::tz::TimeZone::tzif("localtime", &data).ok())
        {
            return zone;
        }
    }
    jiff::tz::TimeZone::system()
}

impl Lines {
    fn say(&mut self, text: std::fmt::Arguments<'_>) {
        use std::fmt::Write as _;
        let now = jiff::Timestamp::now();
        if self.second != Some(now.as_second()) {
            self.second = Some(now.as_second());
            let zone = self.zone.get_or_insert_with(local_zone).clone();
            self.stamp = now.to_zoned(zone).strftime("%H:%M:%S").to_string();
        }
        self.line.clear();
        let _ = writeln!(self.line, "{} {text}", self.stamp);
        stderr(&self.line);
    }
}

impl Plain {
    pub fn new(names: Arc<[String]>, quiet: bool) -> Self {
        Self {
            names,
            last_progress: HashMap::new(),
            quiet,
            verbose: false,
            out: Lines::default(),
        }
    }
}

impl Sink for Plain {
    fn event(&mut self, event: &RunEvent<'_>) {
        if self.quiet {
            return;
        }
        let Self {
            names,
            last_progress,
            out,
            verbose,
            ..
        } = self;
        match event {
            RunEvent::RunStarted {
                run_id,
                workflow,
                steps,
                log_dir,
                containment,
                cgroup,
            } => {
                out.say(format_args!(
                    "run {run_id}: workflow {workflow}, {steps} step(s), logs in {}",
                    log_dir.display()
                ));
                if *verbose {
                    out.say(format_args!("{}", containment_line(containment, *cgroup)));
                }
            }
            RunEvent::StepWarning { message, .. } => out.say(format_args!("warning: {message}")),
            RunEvent::StepStarted {
                step, attempt, pid, ..
            } => {
                let again = attempt_suffix(*attempt);
                out.say(format_args!("started {}{again}, pid {pid}", names[*step]));
            }
            RunEvent::StepJob {
                step,
                attempt,
                job_id,
                state,
            } => {
                let again = attempt_suffix(*attempt);
                if *state == "SUBMITTED" {
                    out.say(format_args!(
                        "submitted {}{again}, slurm job {job_id}",
                        names[*step]
                    ));
                } else {
                    out.say(format_args!(
                        "slurm job {job_id} of {}{again}: {state}",
                        names[*step]
                    ));
                }
            }
            RunEvent::StepProgress { step, progress } => {
                let due = last_progress
                    .get(step)
                    .is_none_or(|t| t.elapsed() >= PLAIN_PROGRESS_EVERY);
                if due {
                    last_progress.insert(*step, Instant::now());
                    out.say(format_args!(
                        "progress {}: {}",
                        names[*step],
                        progress.describe()
                    ));
                }
            }
            RunEvent::StepOutput { .. } | RunEvent::StepNotRun { .. } => {}
            RunEvent::StepRetrying {
                step,
                next_attempt,
                delay,
                reason,
            } => out.say(format_args!(
                "retrying {} in {}: attempt {next_attempt} after: {reason}",
                names[*step],
                crate::manifest::Duration(*delay)
            )),
            RunEvent::StepFinished { step, report } => {
                let took = report
                    .duration_ms
                    .map(|ms| format!(" in {}", human_ms(ms)))
                    .unwrap_or_default();
                let why = report
                    .reason
                    .as_ref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default();
                // No report read: no counts, rather than a "0 passed" that was never run.
                let tests = report
                    .tests
                    .as_ref()
                    .filter(|t| !t.files.is_empty())
                    .map(|t| format!("; tests: {}", t.describe()))
                    .unwrap_or_default();
                out.say(format_args!(
                    "finished {}: {}{took}{why}{tests}",
                    names[*step],
                    report.state.as_str()
                ));
            }
            RunEvent::Stopping { signal, second } => {
                let what = if *second {
                    "killing every step now"
                } else {
                    "stopping the running steps (again to kill at once)"
                };
                out.say(format_args!("got signal {signal}: {what}"));
            }
            RunEvent::RunFinished { .. }
            | RunEvent::Heartbeat
            | RunEvent::StepFingerprint { .. } => {}
            RunEvent::ServiceReady { step } => out.say(format_args!("ready {}", names[*step])),
        }
    }
}

/// Progress bars: an overall bar and one line per running step.
pub struct Bars {
    names: Arc<[String]>,
    multi: MultiProgress,
    overall: ProgressBar,
    steps: HashMap<usize, ProgressBar>,
    /// `-v`: also the containment mechanism.
    pub verbose: bool,
}

/// `-v`'s line about how the steps are contained.
fn containment_line(containment: &str, cgroup: Option<&std::path::Path>) -> String {
    match cgroup {
        Some(dir) => format!("containment: {containment} ({})", dir.display()),
        None => format!("containment: {containment}"),
    }
}

impl Bars {
    pub fn new(names: Arc<[String]>, total: usize) -> Self {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10));
        let overall = multi.add(ProgressBar::new(total as u64));
        overall.set_style(
            ProgressStyle::with_template(
                "{prefix:.bold} [{bar:30}] {pos}/{len} steps  {elapsed_precise}  eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            // Until a step has ended there is no rate to tell the rest from: `-`, not `0s`.
            .with_key(
                "eta",
                |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = match s.pos() {
                        0 => w.write_str("-"),
                        _ => write!(w, "{:#}", indicatif::HumanDuration(s.eta())),
                    };
                },
            )
            .progress_chars("=> "),
        );
        overall.set_prefix("bgflow");
        overall.enable_steady_tick(Duration::from_millis(200));
        Self {
            names,
            multi,
            overall,
            steps: HashMap::new(),
            verbose: false,
        }
    }
}

impl Sink for Bars {
    fn event(&mut self, event: &RunEvent<'_>) {
        match event {
            RunEvent::RunStarted {
                run_id,
                workflow,
                containment,
                cgroup,
                ..
            } => {
                self.overall.set_prefix(format!("{workflow} {run_id}"));
                if self.verbose {
                    let _ = self.multi.println(containment_line(containment, *cgroup));
                }
            }
            RunEvent::StepWarning { message, .. } => {
                let _ = self.multi.println(format!("warning: {message}"));
            }
            RunEvent::StepJob {
                step,
                attempt,
                job_id,
                state,
            } => {
                if let Some(bar) = self.steps.get(step) {
                    bar.set_message(format!("slurm job {job_id}: {state}"));
                }
                if *state == "SUBMITTED" {
                    // The bar appears as for a local start.
                    self.event(&RunEvent::StepStarted {
                        step: *step,
                        attempt: *attempt,
                        pid: 0,
                        start_time: None,
                    });
                    if let Some(bar) = self.steps.get(step) {
                        bar.set_message(format!("slurm job {job_id}: submitted"));
                    }
                }
            }
            RunEvent::StepStarted { step, attempt, .. } => {
                let bar = self.steps.entry(*step).or_insert_with(|| {
                    let b = self.multi.add(ProgressBar::new_spinner());
                    b.set_style(
                        ProgressStyle::with_template(
                            "  {spinner} {prefix:.bold} {elapsed:>4} {msg}",
                        )
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                    );
                    b.enable_steady_tick(Duration::from_millis(120));
                    b
                });
                let again = attempt_suffix(*attempt);
                bar.set_prefix(format!("{}{again}", self.names[*step]));
            }
            RunEvent::StepProgress { step, progress } => {
                if let Some(bar) = self.steps.get(step) {
                    bar.set_message(progress.describe());
                }
            }
            RunEvent::StepOutput { step, line } => {
                if let Some(bar) = self.steps.get(step) {
                    let short: String = line.chars().take(80).collect();
                    bar.set_message(short);
                }
            }
            RunEvent::StepRetrying {
                step,
                next_attempt,
                reason,
                ..
            } => {
                if let Some(bar) = self.steps.get(step) {
                    bar.set_message(format!("retrying (attempt {next_attempt}) after: {reason}"));
                }
            }
            RunEvent::StepFinished { step, report } => {
                if let Some(bar) = self.steps.remove(step) {
                    bar.finish_and_clear();
                    self.multi.remove(&bar);
                }
                self.overall.inc(1);
                if report.state != StepState::Succeeded && report.state != StepState::Skipped {
                    let _ = self.multi.println(format!(
                        "  {} {}: {}",
                        mark(report.state),
                        self.names[*step],
                        report.reason.as_deref().unwrap_or(report.state.as_str())
                    ));
                }
            }
            RunEvent::Stopping { second, .. } => {
                let what = if *second {
                    "killing every step now"
                } else {
                    "stopping; Ctrl-C again to kill at once"
                };
                let _ = self.multi.println(format!("  {what}"));
            }
            RunEvent::RunFinished { .. } => {
                for (_, bar) in self.steps.drain() {
                    bar.finish_and_clear();
                }
                self.overall.finish_and_clear();
                let _ = self.multi.clear();
            }
            // The summary lists what did not run.
            RunEvent::Heartbeat
            | RunEvent::StepNotRun { .. }
            | RunEvent::StepFingerprint { .. } => {}
            RunEvent::ServiceReady { step } => {
                if let Some(bar) = self.steps.get(step) {
                    bar.set_message("ready");
                }
            }
        }
    }
}

pub fn mark(state: StepState) -> &'static str {
    match state {
        StepState::Succeeded => "ok",
        StepState::Skipped => "--",
        StepState::Cancelled => "XX",
        _ => "!!",
    }
}

/// `1.2s`, `3m04s`, `1h02m`.
pub fn human_ms(ms: u64) -> String {
    let s = ms / 1000;
    if s < 60 {
        format!("{}.{}s", s, (ms % 1000) / 100)
    } else if s < 3600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    }
}

/// " (attempt N)" after a step's name from its second attempt on; empty (no allocation)
/// on a first attempt.
fn attempt_suffix(attempt: u32) -> String {
    if attempt > 1 {
        format!(" (attempt {attempt})")
    } else {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_only_on_a_terminal_outside_ci() {
        assert!(use_bars(ProgressChoice::Auto, true, false));
        assert!(!use_bars(ProgressChoice::Auto, true, true));
        assert!(!use_bars(ProgressChoice::Auto, false, false));
        assert!(use_bars(ProgressChoice::Always, false, true));
        assert!(!use_bars(ProgressChoice::Never, true, false));
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(human_ms(1234), "1.2s");
        assert_eq!(human_ms(184_000), "3m04s");
        assert_eq!(human_ms(3_720_000), "1h02m");
    }
}
