//! Commands that read the run history: `status`, `list`, `logs`, `events`, `cleanup`
//! (`stop` is in `stop_cmd`). The data comes from `runs::`; this module prints it.

use std::io::{self, BufRead, IsTerminal, Seek, SeekFrom};
use std::ops::ControlFlow;
use std::path::Path;
use std::time::Duration;

use crate::exit;
use crate::report::{self, live::human_ms};
use crate::runs::{self, Observer};
use crate::store::{now_ms, RunRow, StepRow, Store};

use super::{CleanupArgs, EventsArgs, ListArgs, LogsArgs, StatusArgs};

/// Notes (a new history's warning) go to stderr as they come.
struct Notes;

impl Observer for Notes {
    fn note(&mut self, text: &str) {
        report::stderr(text);
    }
}

/// Opens the history for a reading command, or prints why not.
fn open(state_dir: Option<&Path>) -> Result<Store, u8> {
    runs::open(state_dir, &mut Notes).map_err(|e| failed(&e))
}

fn failed(e: &runs::Error) -> u8 {
    report::stderr(&e.message);
    e.code
}

fn or_code<T>(r: Result<T, runs::Error>) -> Result<T, u8> {
    r.map_err(|e| failed(&e))
}

macro_rules! tri {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(code) => return Ok(code),
        }
    };
}

fn ago(ms: i64) -> String {
    let secs = (now_ms() - ms).max(0) / 1000;
    match secs {
        s if s < 60 => format!("{s}s ago"),
        s if s < 3600 => format!("{}m ago", s / 60),
        s if s < 86_400 => format!("{}h ago", s / 3600),
        s => format!("{}d ago", s / 86_400),
    }
}

fn duration_of(start: Option<i64>, end: Option<i64>) -> String {
    match start {
        Some(s) => human_ms(u64::try_from(end.unwrap_or_else(now_ms) - s).unwrap_or(0)),
        None => "-".to_owned(),
    }
}

fn step_progress(s: &StepRow) -> String {
    let p = crate::exec::Progress {
        percent: s.progress_percent,
        current: s.progress_current.and_then(|c| u64::try_from(c).ok()),
        total: s.progress_total.and_then(|c| u64::try_from(c).ok()),
        message: s.progress_message.clone(),
    };
    let p = if s.progress_current.is_some() {
        crate::exec::Progress { percent: None, ..p }
    } else {
        p
    };
    p.describe()
}

/// `45% (step 5/10: Implementation)` for the run: the done count and the running step's detail.
fn run_progress(run: &RunRow, steps: Option<&[StepRow]>) -> String {
    let mut out = format!("{}/{}", run.steps_done, run.steps_total);
    if let Some(running) = steps.and_then(|s| s.iter().find(|s| s.state == "running")) {
        let p = step_progress(running);
        out.push_str(&format!(
            " {}{}",
            running.name,
            if p.is_empty() {
                String::new()
            } else {
                format!(" {p}")
            }
        ));
    }
    out
}

fn list_table(runs: &[RunRow]) -> String {
    let mut out = format!(
        "{:<10} {:<20} {:<12} {:>9} {:<10} {:>9}\n",
        "ID", "WORKFLOW", "STATE", "PROGRESS", "STARTED", "DURATION"
    );
    for r in runs {
        let started = r
            .started_at
            .or(Some(r.created_at))
            .map_or_else(String::new, ago);
        out.push_str(&format!(
            "{:<10} {:<20} {:<12} {:>9} {:<10} {:>9}\n",
            r.id,
            truncate(&r.workflow, 20),
            r.state,
            format!("{}/{}", r.steps_done, r.steps_total),
            started,
            duration_of(r.started_at, r.finished_at)
        ));
    }
    out
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        s.chars().take(n - 1).collect::<String>() + "…"
    }
}

pub fn list(args: &ListArgs, state_dir: Option<&Path>) -> io::Result<u8> {
    let store = tri!(open(state_dir));
    let runs::RunList { runs, orphans } = tri!(or_code(runs::status::list(
        &store,
        args.status.as_deref(),
        args.limit
    )));
    for r in &runs {
        warn_still_running(r, state_dir);
    }
    if !orphans.is_empty() {
        report::stderr(&format!(
            "warning: {} run folder(s) in {} are not in the history: {}; `bgflow cleanup --orphans` removes them\n",
            orphans.len(),
            store.state_dir().join("runs").display(),
            orphans.join(", ")
        ));
    }
    if args.json {
        let doc = serde_json::json!({ "version": 1, "runs": runs, "orphans": orphans });
        report::stdout(&(serde_json::to_string_pretty(&doc).map_err(io::Error::other)? + "\n"))?;
    } else if runs.is_empty() {
        report::stderr("no runs\n");
    } else {
        report::stdout(&list_table(&runs))?;
    }
    Ok(exit::SUCCESS)
}

/// A warning on stderr for a lost run whose processes still run; nothing for another run.
fn warn_still_running(run: &RunRow, state_dir: Option<&Path>) {
    if let Some(note) = runs::status::still_running_note(run) {
        report::stderr(&format!(
            "warning: run {} is lost, but {note}\n  help: end them with {}\n",
            run.id,
            runs::stop::command(state_dir, &run.id)
        ));
    }
}

fn status_text(run: &RunRow, steps: &[StepRow], state_dir: Option<&Path>) -> String {
    let mut out = format!(
        "run {} · {} · {} · {} · {}\n",
        run.id,
        run.workflow,
        run.state,
        run_progress(run, Some(steps)),
        duration_of(run.started_at, run.finished_at)
    );
    if let Some(r) = &run.reason {
        out.push_str(&format!("  {r}\n"));
    }
    if let Some(note) = runs::status::left_running_note(run) {
        out.push_str(&format!(
            "  {note}\n  help: end them with {}\n",
            runs::stop::command(state_dir, &run.id)
        ));
    }
    out.push_str(&format!("  logs: {}\n", run.log_dir));
    let width = steps.iter().map(|s| s.name.len()).max().unwrap_or(4).max(4);
    for s in steps {
        let mut detail = step_progress(s);
        if let (Some(p), Some(f)) = (s.tests_passed, s.tests_failed) {
            let mut t = format!("tests: {p} passed, {f} failed");
            if let Some(e) = s.tests_errors.filter(|e| *e > 0) {
                t.push_str(&format!(", {}", runs::errors_text(e as u64)));
            }
            if let Some(k) = s.tests_skipped.filter(|k| *k > 0) {
                t.push_str(&format!(", {k} skipped"));
            }
            if p == 0 && f == 0 && s.tests_errors.unwrap_or(0) == 0 {
                t.push_str(" (no test ran)");
            }
            detail = if detail.is_empty() {
                t
            } else {
                format!("{detail} · {t}")
            };
        }
        if let Some(job) = &s.job_id {
            // A running step shows its job's state and Slurm's reason (PENDING (Priority)).
            let j = match (&s.job_state, s.state.as_str()) {
                (Some(st), "running") => format!("slurm job {job}: {st}"),
                _ => format!("slurm job {job}"),
            };
            detail = if detail.is_empty() {
                j
            } else {
                format!("{j} · {detail}")
            };
        }
        if let Some(r) = &s.reason {
            detail = if detail.is_empty() {
                r.clone()
            } else {
                format!("{detail} · {r}")
            };
        } else if s.state == "running" {
            if let Some(l) = &s.last_line {
                if detail.is_empty() {
                    detail = truncate(l, 60);
                }
            }
        }
        out.push_str(&format!(
            "  {:<width$}  {:<10} {:>8}  {detail}\n",
            s.name,
            s.state,
            duration_of(s.started_at, s.finished_at)
        ));
    }
    out
}

pub fn status(args: &StatusArgs, state_dir: Option<&Path>) -> io::Result<u8> {
    let store = tri!(open(state_dir));
    let Some(prefix) = &args.run else {
        let runs = tri!(or_code(runs::status::active(&store)));
        // Not active, but not over: a lost run whose processes still run.
        for r in tri!(or_code(runs::status::lost_but_running(&store))) {
            warn_still_running(&r, state_dir);
        }
        if args.json {
            let doc = serde_json::json!({ "version": 1, "runs": runs });
            report::stdout(
                &(serde_json::to_string_pretty(&doc).map_err(io::Error::other)? + "\n"),
            )?;
        } else if runs.is_empty() {
            report::stderr("no active runs (see `bgflow list` for finished ones)\n");
        } else {
            report::stdout(&list_table(&runs))?;
        }
        return Ok(exit::SUCCESS);
    };
    let id = tri!(or_code(runs::resolve(&store, prefix)));
    if args.watch {
        return watch(store, &id, state_dir);
    }
    let runs::RunView { run, steps } = tri!(or_code(runs::status::view(&store, &id)));
    if args.json {
        let doc = serde_json::json!({ "version": 1, "run": run, "steps": steps });
        report::stdout(&(serde_json::to_string_pretty(&doc).map_err(io::Error::other)? + "\n"))?;
    } else {
        report::stdout(&status_text(&run, &steps, state_dir))?;
    }
    Ok(exit::SUCCESS)
}

/// What a plain `status --watch` snapshot is printed for: the run's state, reason and done
/// count, and each step's state, attempts, progress, test counts and reason; not the times
/// nor a running step's last line of output.
fn watch_key(run: &RunRow, steps: &[StepRow]) -> String {
    let mut key = format!(
        "{}\u{0}{:?}\u{0}{}/{}\n",
        run.state, run.reason, run.steps_done, run.steps_total
    );
    for s in steps {
        key.push_str(&format!(
            "{}\u{0}{}\u{0}{:?}\u{0}{}\u{0}{:?}\u{0}{:?}\n",
            s.name,
            s.state,
            s.attempts,
            step_progress(s),
            (
                s.tests_passed,
                s.tests_failed,
                s.tests_errors,
                s.tests_skipped
            ),
            s.reason
        ));
    }
    key
}

/// Live bars drawn from the store until the run ends (plain snapshots when not a terminal).
fn watch(mut store: Store, id: &str, state_dir: Option<&Path>) -> io::Result<u8> {
    use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
    let tty = io::stderr().is_terminal();
    let multi = MultiProgress::with_draw_target(if tty {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    });
    let overall = multi.add(ProgressBar::new(0));
    overall.set_style(
        ProgressStyle::with_template("{prefix:.bold} [{bar:30}] {pos}/{len} steps {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let mut bars: std::collections::HashMap<i64, ProgressBar> = std::collections::HashMap::new();
    let mut last_plain = String::new();
    let mut broken: Option<io::Error> = None;
    let mut draw = |view: &runs::RunView| -> ControlFlow<()> {
        let (run, steps) = (&view.run, &view.steps);
        overall.set_prefix(format!("{} {}", run.workflow, run.id));
        overall.set_length(u64::try_from(run.steps_total).unwrap_or(0));
        overall.set_position(u64::try_from(run.steps_done).unwrap_or(0));
        overall.set_message(run.state.clone());
        for s in steps {
            if s.state == "running" {
                let bar = bars.entry(s.idx).or_insert_with(|| {
                    let b = multi.add(ProgressBar::new(100));
                    b.set_style(
                        ProgressStyle::with_template("  {prefix:.bold} [{bar:20}] {msg}")
                            .unwrap_or_else(|_| ProgressStyle::default_bar())
                            .progress_chars("=> "),
                    );
                    b.set_prefix(s.name.clone());
                    b
                });
                let p = step_progress(s);
                let pct =
                    s.progress_percent
                        .or_else(|| match (s.progress_current, s.progress_total) {
                            (Some(c), Some(t)) if t > 0 => Some(c as f64 * 100.0 / t as f64),
                            _ => None,
                        });
                bar.set_position(pct.map_or(0, |p| p.clamp(0.0, 100.0) as u64));
                bar.set_message(if p.is_empty() {
                    s.last_line
                        .clone()
                        .map(|l| truncate(&l, 60))
                        .unwrap_or_default()
                } else {
                    p
                });
            } else if let Some(bar) = bars.remove(&s.idx) {
                bar.finish_and_clear();
                multi.remove(&bar);
            }
        }
        if !tty {
            // Durations and output lines change all the time; a snapshot is printed when a
            // state, a count or a progress does (a 66 s run printed 220 snapshots).
            let key = watch_key(run, steps);
            if key != last_plain {
                if let Err(e) = report::stdout(&status_text(run, steps, state_dir)) {
                    broken = Some(e);
                    return ControlFlow::Break(());
                }
                last_plain = key;
            }
        }
        ControlFlow::Continue(())
    };
    let ended = tri!(or_code(runs::status::wait(
        &mut store,
        id,
        None,
        Duration::from_millis(300),
        &mut draw
    )));
    if let Some(e) = broken {
        return Err(e);
    }
    for (_, b) in bars.drain() {
        b.finish_and_clear();
    }
    overall.finish_and_clear();
    if tty {
        report::stdout(&status_text(&ended.run, &ended.steps, state_dir))?;
    }
    Ok(if ended.run.state == "succeeded" {
        exit::SUCCESS
    } else {
        exit::RUN_FAILED
    })
}

pub fn logs(args: &LogsArgs, state_dir: Option<&Path>) -> io::Result<u8> {
    let store = tri!(open(state_dir));
    let id = tri!(or_code(runs::logs::run_for(
        &store,
        args.run.as_deref(),
        args.step.as_deref()
    )));
    let chosen = tri!(or_code(runs::logs::steps_or_instances(
        &store,
        &id,
        args.step.as_deref()
    )));
    let prefix = args.step.is_none() || chosen.len() > 1;
    let mut offsets: Vec<u64> = Vec::with_capacity(chosen.len());
    let mut out = io::stdout().lock();
    // Steps that never started (kept as up to date, skipped, cancelled first): one line
    // for all of them when every step's log is asked for.
    let mut never_started: Vec<&crate::store::StepRow> = Vec::new();
    for s in &chosen {
        let path = Path::new(&s.log_path);
        if !path.exists() && !args.follow {
            // A log file appears with a step's first byte of output.
            let active = matches!(s.state.as_str(), "pending" | "running");
            if active {
                report::stderr(&format!(
                    "{}: no output yet (the step is {})\n",
                    s.name, s.state
                ));
            } else if s.attempts > 0 {
                let state = match s.state.as_str() {
                    "cancelled" | "lost" => format!("was {}", s.state),
                    other => other.replace('_', " "),
                };
                report::stderr(&format!("{}: printed nothing (the step {state})\n", s.name));
            } else if prefix {
                never_started.push(s);
            } else {
                let why = s
                    .reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default();
                report::stderr(&format!("{}: did not run ({}{why})\n", s.name, s.state));
            }
        }
        let start = match args.lines {
            Some(n) => runs::logs::tail_offset(path, n),
            None => 0,
        };
        let end = copy_lines(path, start, prefix.then_some(s.name.as_str()), &mut out);
        offsets.push(end);
    }
    if !args.follow {
        if !never_started.is_empty() {
            report::stderr(&did_not_run(&never_started));
        }
        return Ok(exit::SUCCESS);
    }
    let names: Vec<&str> = chosen.iter().map(|s| s.name.as_str()).collect();
    loop {
        let all_done = !tri!(or_code(runs::logs::still_writing(&store, &id, &names)));
        for (i, s) in chosen.iter().enumerate() {
            offsets[i] = copy_lines(
                Path::new(&s.log_path),
                offsets[i],
                prefix.then_some(s.name.as_str()),
                &mut out,
            );
        }
        if all_done {
            return Ok(exit::SUCCESS);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// One line for the steps of a run that never started: how many, in which states, and
/// their names (`bgflow status RUN` says why each).
fn did_not_run(steps: &[&crate::store::StepRow]) -> String {
    let mut states: Vec<(&str, usize)> = Vec::new();
    for s in steps {
        match states.iter_mut().find(|(state, _)| *state == s.state) {
            Some((_, n)) => *n += 1,
            None => states.push((&s.state, 1)),
        }
    }
    let states = match states.as_slice() {
        [(state, _)] => state.replace('_', " "),
        more => (more.iter())
            .map(|(state, n)| format!("{n} {}", state.replace('_', " ")))
            .collect::<Vec<_>>()
            .join(", "),
    };
    let names: Vec<&str> = steps.iter().map(|s| s.name.as_str()).collect();
    let n = steps.len();
    format!(
        "{n} step{s} did not run ({states}): {}\n",
        report::summary::named(&names),
        s = if n == 1 { "" } else { "s" },
    )
}

/// Copies whole lines from `offset`, each with an optional `name | ` prefix; returns the new
/// offset (an unfinished last line waits for its end).
fn copy_lines(path: &Path, offset: u64, prefix: Option<&str>, out: &mut impl io::Write) -> u64 {
    let Ok(mut f) = std::fs::File::open(path) else {
        return offset;
    };
    if f.seek(SeekFrom::Start(offset)).is_err() {
        return offset;
    }
    let mut reader = io::BufReader::with_capacity(64 * 1024, f);
    let mut pos = offset;
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return pos,
            Ok(n) if line.last() != Some(&b'\n') => {
                let _ = n;
                return pos;
            }
            Ok(n) => {
                pos += n as u64;
                let ok = match prefix {
                    Some(p) => out
                        .write_all(format!("{p} | ").as_bytes())
                        .and_then(|()| out.write_all(&line)),
                    None => out.write_all(&line),
                };
                if ok.is_err() {
                    // A closed pipe (`| head`): stop quietly.
                    std::process::exit(0);
                }
            }
        }
    }
}

pub fn events(args: &EventsArgs, state_dir: Option<&Path>) -> io::Result<u8> {
    let mut store = tri!(open(state_dir));
    let run = match &args.run {
        Some(p) => Some(tri!(or_code(runs::resolve(&store, p)))),
        None => None,
    };
    let mut print = |page: &runs::events::EventPage| -> io::Result<()> {
        let mut text = String::new();
        for e in &page.events {
            text.push_str(&e.to_string());
            text.push('\n');
        }
        report::stdout(&text)
    };
    let printed = tri!(or_code(runs::events::follow(
        &mut store,
        run.as_deref(),
        0,
        args.follow,
        &mut print
    )));
    printed.map(|()| exit::SUCCESS)
}

/// `cleanup`: with `quiet`, nothing but errors and the note on a lost run kept because its
/// processes still run (no line a removed run, no count).
pub fn cleanup(args: &CleanupArgs, state_dir: Option<&Path>, quiet: bool) -> io::Result<u8> {
    let mut store = tri!(open(state_dir));
    if args.orphans {
        return cleanup_orphans(&store, args.dry_run, quiet);
    }
    let states: Vec<&str> = match args.status.as_str() {
        "all" => vec!["succeeded", "failed", "cancelled", "lost"],
        s => vec![s],
    };
    let old = tri!(or_code(
        runs::cleanup::remove_old(&mut store, args.older_than, &states, args.dry_run)
            .map_err(|e| runs::Error::internal(format!("error: {e}\n")))
    ));
    let verb = if args.dry_run {
        "would remove"
    } else {
        "removed"
    };
    let text: String = old
        .runs
        .iter()
        .map(|r| format!("{verb} {} {} {}\n", r.id, r.workflow, r.state))
        .collect();
    if !quiet {
        report::stdout(&text)?;
    }
    for r in &old.kept {
        if let Some(note) = runs::status::left_running_note(r) {
            report::stderr(&format!(
                "note: kept run {id} of `{wf}`: it is lost, but {note}; end them with {stop}\n",
                id = r.id,
                wf = r.workflow,
                stop = runs::stop::command(state_dir, &r.id),
            ));
        }
    }
    if !quiet {
        report::stderr(&format!(
            "{} run(s) {}\n",
            old.runs.len(),
            if args.dry_run {
                "would be removed"
            } else {
                "removed"
            }
        ));
    }
    Ok(exit::SUCCESS)
}

/// `cleanup --orphans`: removes the folders of runs/ that the history does not know, and
/// ends the processes of such runs still running in a cgroup folder marked with this
/// state folder.
fn cleanup_orphans(store: &Store, dry_run: bool, quiet: bool) -> io::Result<u8> {
    let mut failed = false;
    for run in runs::cleanup::end_unrecorded(store, dry_run) {
        let what = crate::exec::contain::listing(run.processes.iter().map(|p| p.named()));
        let n = run.processes.len();
        let verb = if dry_run { "would end" } else { "ended" };
        report::stderr(&format!(
            "{verb} {n} process{} of run {}, which the history does not know, in {}: {what}\n",
            if n == 1 { "" } else { "es" },
            run.run_id,
            run.dir.display(),
        ));
        if !run.survivors.is_empty() {
            report::stderr(&format!(
                "error: {} process(es) of run {} survived SIGKILL: {:?}\n",
                run.survivors.len(),
                run.run_id,
                run.survivors
            ));
            failed = true;
        }
    }
    let orphans = tri!(or_code(runs::cleanup::remove_orphans(store, dry_run)));
    let mut text = String::new();
    for o in &orphans {
        if dry_run {
            text.push_str(&format!("would remove {}\n", o.path.display()));
        } else if let Some(e) = &o.error {
            report::stderr(&format!("error: cannot remove {}: {e}\n", o.path.display()));
            failed = true;
        } else {
            text.push_str(&format!("removed {}\n", o.path.display()));
        }
    }
    if !quiet {
        report::stdout(&text)?;
        report::stderr(&format!(
            "{} orphaned run folder(s) {}\n",
            orphans.len(),
            if dry_run {
                "would be removed"
            } else {
                "removed"
            }
        ));
    }
    Ok(if failed {
        exit::INTERNAL
    } else {
        exit::SUCCESS
    })
}
