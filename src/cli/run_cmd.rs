//! `bgflow run` (foreground or `--detach`), `bgflow start`, and the hidden `__supervise`.
//!
//! Every run is recorded in the store. A detached run is validated here, recorded as
//! `pending`, then handed to a new `bgflow __supervise RUN` process in its own session,
//! which reads how to run it from the store (the run's `spec`).

use std::io::{self, IsTerminal};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::diag::{self, RenderOptions, SourceFile};
use crate::exec::{self, RunEvent, RunOptions, Sink};
use crate::exit;
use crate::par;
use crate::plan::Plan;
use crate::report::live::{self, Bars, Plain, ProgressChoice};
use crate::report::{self, summary};
use crate::store::sink::StoreSink;
use crate::store::{NewRun, Store};
use crate::validate::{self, template::RunInfo, Options, Workflow};

use super::plan_cmd::read_source;
use super::RunArgs;

/// How to run a run: stored with it, so a supervisor or `resume` can do it again.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Spec {
    /// The workflow file (absolute); `None` for `bgflow start`.
    pub file: Option<PathBuf>,
    #[serde(default)]
    pub vars: Vec<(String, String)>,
    #[serde(default)]
    pub only: Vec<String>,
    #[serde(default)]
    pub keep_going: bool,
    #[serde(default)]
    pub force: bool,
    pub jobs: Option<u32>,
    /// `resume`: the run this one continues. (Specs stored before it had `keep`, a list of
    /// steps kept without a check; it is ignored.)
    #[serde(default)]
    pub resume: Option<super::start_cmd::ResumeOf>,
    /// `bgflow start`: the command and its settings.
    pub adhoc: Option<Adhoc>,
    /// `--allow-concurrent`: run even while a run of the same root writes the same outputs.
    #[serde(default)]
    pub allow_concurrent: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Adhoc {
    pub name: String,
    pub kind: String,
    pub timeout: Option<String>,
    pub argv: Vec<String>,
    pub cwd: PathBuf,
}

/// A short, random run id: 8 characters of [0-9a-z].
pub fn new_run_id() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::rng();
    (0..8)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// How often the run loop wakes its consumers: the store flushes waiting writes and
/// records the supervisor's heartbeat (DESIGN.md §5.5).
pub const HEARTBEAT: Duration = Duration::from_millis(250);

/// The global flags every run command needs.
#[derive(Debug, Clone, Copy)]
pub struct Globals<'a> {
    pub state_dir: Option<&'a Path>,
    pub config: Option<&'a Path>,
    pub color: bool,
    pub quiet: bool,
    /// `-v`: say how the steps are contained.
    pub verbose: bool,
}

/// A validated workflow ready to run.
struct Prepared {
    config: crate::config::Config,
    wf: Workflow,
    plan: Plan,
    only: Vec<usize>,
    resume: Option<exec::fingerprint::Resume>,
    /// Every step's name, by index: one list shared by every consumer of the run.
    names: Arc<[String]>,
}

/// Validates as `plan` does; on problems prints them and returns the exit code.
fn prepare(source: SourceFile, spec: &Spec, g: Globals<'_>) -> Result<Prepared, u8> {
    let (color, quiet) = (g.color, g.quiet);
    // The checks one at a time, and one heap for them and the run after them.
    par::use_one_thread();
    par::one_heap();
    let checked = validate::check(
        &source,
        &Options {
            vars: spec.vars.clone(),
            offline: false,
        },
    );
    let config_root = checked.workflow.as_ref().map(|w| w.root.clone());
    let config = match crate::config::load_for(g.config, config_root.as_deref(), Some(&source.path))
    {
        Ok(c) => c.config,
        Err(msg) => {
            report::stderr(&msg);
            return Err(exit::USAGE);
        }
    };
    let strict = config.validation.strict;
    let errors = checked
        .problems
        .iter()
        .filter(|p| p.is_error() || strict)
        .count();
    if errors > 0 || (!checked.problems.is_empty() && !quiet) {
        report::stderr(&diag::render(
            &source,
            &checked.problems,
            RenderOptions { color },
        ));
    }
    let (Some(mut wf), Some(mut plan)) = (checked.workflow, checked.plan) else {
        report::stderr(&format!(
            "error: {} is not valid; nothing ran\n",
            source.display
        ));
        return Err(exit::INVALID);
    };
    if errors > 0 {
        report::stderr(&format!(
            "error: {} is not valid: {errors} error{}; nothing ran\n",
            source.display,
            if errors == 1 { "" } else { "s" }
        ));
        return Err(exit::INVALID);
    }
    // The run holds these to its end; what only the checks needed goes now.
    plan.keep_only_the_order();
    wf.forget_what_the_checks_found();
    let mut only = Vec::new();
    for name in &spec.only {
        let named = wf.steps_named(name);
        if named.is_empty() {
            let hint = diag::did_you_mean(name, wf.steps.iter().map(|s| s.name.as_str()))
                .map(|c| format!(" (did you mean `{c}`?)"))
                .unwrap_or_default();
            report::stderr(&format!("error: --only {name}: no such step{hint}\n"));
            return Err(exit::USAGE);
        }
        only.extend(named);
    }
    let resume = spec.resume.as_ref().map(|r| exec::fingerprint::Resume {
        from: r.run.clone(),
        succeeded: r
            .succeeded
            .iter()
            .filter_map(|name| wf.steps.iter().position(|s| &s.name == name))
            .collect(),
    });
    // Guarantee 10: a service's probe port held by another process is refused up front.
    let taken = exec::probe::taken_before_run(&wf, &selected_steps(&plan, &only));
    if !taken.is_empty() {
        report::stderr(&exec::probe::refusal(&taken));
        return Err(exit::INVALID);
    }
    crate::config::apply(&config, &mut wf);
    let names = wf.steps.iter().map(|s| s.name.clone()).collect();
    Ok(Prepared {
        config,
        wf,
        plan,
        only,
        resume,
        names,
    })
}

/// The manifest text of a `bgflow start` command.
fn adhoc_source(a: &Adhoc) -> SourceFile {
    let q = |s: &str| toml::Value::String(s.to_owned()).to_string();
    let mut text = format!(
        "[workflow]\nname = {}\nroot = {}\n\n[steps.{}]\nkind = {}\nrun = [",
        q(&a.name),
        q(&a.cwd.to_string_lossy()),
        a.name,
        q(&a.kind)
    );
    text.push_str(&a.argv.iter().map(|s| q(s)).collect::<Vec<_>>().join(", "));
    text.push_str("]\n");
    if let Some(t) = &a.timeout {
        text.push_str(&format!("timeout = {}\n", q(t)));
    }
    SourceFile::new(&a.cwd.join(format!("{}.bgflow-start.toml", a.name)), text)
}

pub(super) fn source_of(spec: &Spec) -> Result<SourceFile, String> {
    match (&spec.adhoc, &spec.file) {
        (Some(a), _) => Ok(adhoc_source(a)),
        (None, Some(f)) => read_source(f),
        (None, None) => Err("the run has neither a workflow file nor a command".to_owned()),
    }
}

/// The state folder of a new run, always absolute: the log paths recorded in the history
/// must mean the same file whatever folder a later `logs` or `cleanup` runs in.
fn state_dir_for(p: &Prepared, state_dir: Option<&Path>) -> PathBuf {
    let dir = match (state_dir, &p.config.state.dir) {
        (Some(d), _) => d.to_path_buf(),
        (None, Some(d)) => p.wf.root.join(d),
        (None, None) => p.wf.root.join(".bgflow"),
    };
    std::path::absolute(&dir).unwrap_or(dir)
}

/// The record of a new run and its selected steps.
fn new_run(
    p: &Prepared,
    run_id: &str,
    log_dir: &Path,
    spec: &Spec,
    detached: bool,
    meta: &serde_json::Value,
) -> Result<NewRun, String> {
    let selected = selected_steps(&p.plan, &p.only);
    let steps = selected
        .iter()
        .map(|&i| (i, p.wf.steps[i].kind().as_str()))
        .collect();
    // The lock: what the selected steps declare they write (`bgflow start` takes none).
    let mut outputs: Vec<String> = selected
        .iter()
        .flat_map(|&i| p.wf.steps[i].outputs.iter())
        .map(|o| crate::store::admit::normalize_output(&p.wf.root, o))
        .collect();
    outputs.sort();
    outputs.dedup();
    Ok(NewRun {
        id: run_id.to_owned(),
        workflow: p.wf.name.clone(),
        file: spec.file.clone(),
        root: p.wf.root.clone(),
        kind: if spec.adhoc.is_some() {
            "command"
        } else {
            "workflow"
        },
        detached,
        log_dir: log_dir.to_path_buf(),
        spec: serde_json::to_value(spec).map_err(|e| e.to_string())?,
        meta: meta.clone(),
        steps,
        names: Arc::clone(&p.names),
        outputs: (spec.adhoc.is_none() && !outputs.is_empty()).then_some(outputs),
        heartbeat_ms: i64::try_from(beat_every(&p.config).as_millis()).unwrap_or(i64::MAX),
    })
}

/// How often the supervisor writes its heartbeat: `monitoring.heartbeat`, at least the run
/// loop's tick.
fn beat_every(config: &crate::config::Config) -> Duration {
    config.monitoring.heartbeat.as_std().max(HEARTBEAT)
}

fn selected_steps(plan: &Plan, only: &[usize]) -> Vec<usize> {
    let selection = plan.selection(only);
    (0..selection.len()).filter(|&i| selection[i]).collect()
}

/// Runs a prepared workflow to the end with the given display; returns the exit code.
/// `record`: the run's record, when the store does not have it yet.
#[allow(clippy::too_many_arguments)]
fn execute(
    p: Prepared,
    store: Store,
    record: Option<NewRun>,
    run_id: String,
    state_dir: PathBuf,
    spec: &Spec,
    display: Option<ProgressChoice>,
    quiet: bool,
    verbose: bool,
) -> u8 {
    let Prepared {
        config,
        mut wf,
        plan,
        only,
        resume,
        names,
    } = p;
    let log_dir = state_dir.join("runs").join(&run_id);
    wf.set_run(&RunInfo {
        id: run_id.clone(),
        dir: log_dir.display().to_string(),
    });
    let jobs = spec
        .jobs
        .or(wf.max_parallel)
        .map(|n| n as usize)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let total = selected_steps(&plan, &only).len();
    let contain = match exec::contain::Containment::choose(config.containment, &run_id) {
        Ok(c) => Arc::new(c),
        Err(why) => {
            report::stderr(&format!("error: {why}; nothing ran\n  help: set containment = \"auto\" or \"process-group\" in bgflow.toml\n"));
            if record.is_none() {
                // A detached run's record exists: it fails with the reason.
                let mut store = store;
                let _ = store.apply(&[crate::store::Write::RunFinished {
                    run: run_id,
                    state: "failed".into(),
                    reason: Some(why),
                    exit_code: i64::from(exit::INVALID),
                }]);
            }
            return exit::INVALID;
        }
    };
    let hooks = render_hooks(&wf);
    let root = wf.root.clone();
    let run_opts = RunOptions {
        run_id: run_id.clone(),
        state_dir,
        jobs,
        only,
        keep_going: spec.keep_going,
        force: spec.force,
        heartbeat: HEARTBEAT,
        fingerprints: store.fingerprints().unwrap_or_default(),
        resume,
        contain,
    };
    let mut store_sink = StoreSink::new(store, &run_id, Arc::clone(&names));
    if let Some(record) = record {
        store_sink.record(record);
    }
    store_sink.beat_every = beat_every(&config);
    let view: Option<Box<dyn Sink + Send>> = display.map(|choice| {
        let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty());
        if live::use_bars(choice, io::stderr().is_terminal(), ci) && !quiet {
            let mut bars = Bars::new(Arc::clone(&names), total);
            bars.verbose = verbose;
            Box::new(bars) as Box<dyn Sink + Send>
        } else {
            let mut plain = Plain::new(Arc::clone(&names), quiet);
            plain.verbose = verbose;
            Box::new(plain)
        }
    });
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            report::stderr(&format!("error: cannot start the async runtime: {e}\n"));
            return exit::INTERNAL;
        }
    };
    let wf = Arc::new(wf);
    let report = {
        let mut tee = Tee {
            first: &mut store_sink,
            second: view,
        };
        let (plan, wf) = (&plan, Arc::clone(&wf));
        // The steps are supervised from a thread that has done nothing yet. Linux places a
        // new child by how busy it thinks the forking thread is, and the main thread has
        // just spent up to a few hundred milliseconds checking the workflow. With 10,000
        // steps the kernel then queued 2,300 of 6,410 children forked while the other CPU
        // was busy on that busy CPU, behind its step, instead of beside their parent
        // (ninja: 71 of 4,154). From a fresh thread it is 25 of 4,336. (`perf record -e
        // sched:sched_wakeup_new,sched:sched_switch`; see docs/architecture.md.)
        par::on_a_fresh_thread("bgflow-run", move || {
            runtime.block_on(exec::execute(wf, plan, run_opts, &mut tee))
        })
    };
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            report::stderr(&format!("error: cannot start the run's thread: {e}\n"));
            return exit::INTERNAL;
        }
    };
    // summary.json is written on a second thread while the history writer finishes and the
    // table is built and printed: at 10,000 steps each took 15-30 ms, and both CPUs are
    // free once the steps are done.
    let (written, ()) = par::beside(
        "bgflow-summary",
        || summary::write_json(&report),
        || {
            // Waits for the history writer: `error` is complete after this. Then the WAL
            // goes into bgflow.db, so losing the WAL later loses nothing of this run.
            if let Some(store) = store_sink.store() {
                let _ = store.checkpoint();
            }
            if let Some(e) = store_sink.error.take() {
                report::stderr(&format!(
                    "warning: the run history could not be fully written: {e}\n"
                ));
            }
            // `-q`: the summary only when something went wrong.
            if display.is_some() && !(quiet && report.exit_code() == exit::SUCCESS) {
                summary::print(&report);
            }
        },
    );
    if let Err(e) = written {
        report::stderr(&format!("warning: cannot write summary.json: {e}\n"));
    }
    after_run(
        &report,
        &hooks,
        &root,
        &config,
        store_sink.store(),
        display.is_some(),
        quiet,
    );
    let code = report.exit_code();
    // The process ends next, and freeing the run's report, workflow and plan one allocation
    // at a time took 7 ms at 10,000 steps; the kernel takes the memory back at once.
    std::mem::forget((report, wf, plan));
    code
}

/// `[hooks]` rendered with the run's context: (event, command).
fn render_hooks(wf: &Workflow) -> Vec<(crate::config::Outcome, String)> {
    use crate::config::Outcome;
    use validate::template::Mode;
    let mut out = Vec::new();
    for (outcome, cmd) in [
        (Outcome::Success, &wf.hooks.on_success),
        (Outcome::Failure, &wf.hooks.on_failure),
    ] {
        if let Some(cmd) = cmd {
            match wf.renderer.render(cmd, Mode::Shell, None) {
                Ok(c) => out.push((outcome, c)),
                Err(e) => report::stderr(&format!("warning: hook not run: {}\n", e.message)),
            }
        }
    }
    out
}

/// Hooks, notifications and retention, once the run is over. Never changes the outcome.
fn after_run(
    report: &exec::RunReport,
    hooks: &[(crate::config::Outcome, String)],
    root: &Path,
    config: &crate::config::Config,
    mut store: Option<&mut Store>,
    foreground: bool,
    quiet: bool,
) {
    use crate::config::Outcome;
    use crate::report::notify;
    let event = notify::event_json(report).to_string();
    let outcome = if report.state == exec::RunState::Succeeded {
        Outcome::Success
    } else {
        Outcome::Failure
    };
    let hook_log = report.log_dir.join("hooks.log");
    let mut warn = |what: &str, why: String| {
        if !quiet {
            let see = if what.starts_with("desktop") {
                String::new()
            } else {
                format!(" (see {})", hook_log.display())
            };
            report::stderr(&format!("warning: {what} failed: {why}{see}\n"));
        }
        let _ = store.as_deref_mut().map(|store| {
            store.event(
                &report.run_id,
                "hook_failed",
                serde_json::json!({"version": 1, "hook": what, "error": why}),
            )
        });
    };
    for (when, cmd) in hooks {
        if *when == outcome {
            let name = if outcome == Outcome::Success {
                "hooks.on_success"
            } else {
                "hooks.on_failure"
            };
            if let Err(e) = notify::run_hook(cmd, root, &event, &hook_log, Duration::from_secs(60))
            {
                warn(name, e);
            }
        }
    }
    let n = &config.notifications;
    if notify::wanted(n, report.state) {
        if let Some(cmd) = &n.command {
            if let Err(e) = notify::run_hook(cmd, root, &event, &hook_log, Duration::from_secs(60))
            {
                warn("notifications.command", e);
            }
        }
        if n.desktop {
            if let Err(e) = notify::desktop(report) {
                warn("desktop notification", e);
            }
        }
        if n.terminal && foreground && !quiet && io::stderr().is_terminal() {
            report::stderr(&notify::terminal(report));
        }
    }
    if let Some(store) = store.filter(|_| config.retention.auto_cleanup_days > 0) {
        let age = crate::manifest::Duration::from_secs(
            u64::from(config.retention.auto_cleanup_days) * 86_400,
        );
        let _ = super::history_cmd::remove_old(
            store,
            age,
            &["succeeded", "failed", "cancelled", "lost"],
            false,
        );
    }
}

/// The store first (so a state change is queued for the history before it is shown), then
/// the display.
struct Tee<'a> {
    first: &'a mut StoreSink,
    second: Option<Box<dyn Sink + Send>>,
}

impl Sink for Tee<'_> {
    fn event(&mut self, event: &RunEvent<'_>) {
        self.first.event(event);
        if let Some(s) = self.second.as_mut() {
            s.event(event);
        }
    }

    fn broken(&self) -> Option<String> {
        self.first.broken()
    }
}

fn open_store(state_dir: &Path) -> Result<Store, u8> {
    let store = Store::open(state_dir).map_err(|e| {
        report::stderr(&format!("error: {e}\n"));
        exit::INTERNAL
    })?;
    if let Some(w) = store.new_history_warning() {
        report::stderr(&w);
    }
    Ok(store)
}

pub fn run(args: &RunArgs, g: Globals<'_>) -> io::Result<u8> {
    let file = std::path::absolute(&args.file).unwrap_or_else(|_| args.file.clone());
    let spec = Spec {
        file: Some(file),
        vars: args.vars.clone(),
        only: args.only.clone(),
        keep_going: args.keep_going,
        force: args.force,
        jobs: args.jobs,
        resume: None,
        adhoc: None,
        allow_concurrent: args.allow_concurrent,
    };
    let source = match read_source(&args.file) {
        Ok(s) => s,
        Err(msg) => {
            report::stderr(&format!("error: {msg}\n"));
            return Ok(exit::USAGE);
        }
    };
    launch(
        source,
        spec,
        g,
        args.detach,
        args.progress,
        &serde_json::json!({}),
    )
}

pub(super) fn launch(
    source: SourceFile,
    spec: Spec,
    g: Globals<'_>,
    detach: bool,
    progress: ProgressChoice,
    meta: &serde_json::Value,
) -> io::Result<u8> {
    let quiet = g.quiet;
    let prepared = match prepare(source, &spec, g) {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    let state_dir = state_dir_for(&prepared, g.state_dir);
    if let Err(code) = super::guard::check_state_dir(&state_dir) {
        return Ok(code);
    }
    let mut store = match open_store(&state_dir) {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    let run_id = new_run_id();
    let log_dir = state_dir.join("runs").join(&run_id);
    let record = match new_run(&prepared, &run_id, &log_dir, &spec, detach, meta) {
        Ok(r) => r,
        Err(e) => {
            report::stderr(&format!("error: cannot record the run: {e}\n"));
            return Ok(exit::INTERNAL);
        }
    };
    // Checked and taken in one transaction: the limit and the lock per tree.
    let me = std::process::id();
    let admission = crate::store::admit::Admission {
        limit: prepared.config.limits.max_concurrent_runs,
        check_lock: !spec.allow_concurrent && spec.adhoc.is_none(),
        supervisor: (!detach).then(|| (me, crate::exec::process::start_time(me))),
        with_steps: detach,
    };
    if let Err(code) = super::guard::admit(&mut store, &record, admission, &state_dir) {
        return Ok(code);
    }
    if !detach {
        // The run's row is in; the history thread writes its steps' rows while the first
        // steps start.
        return Ok(execute(
            prepared,
            store,
            Some(record),
            run_id,
            state_dir,
            &spec,
            Some(progress),
            quiet,
            g.verbose,
        ));
    }
    if let Err(e) = crate::store::ensure_private_dir(&log_dir) {
        report::stderr(&format!("error: {e}\n"));
        return Ok(exit::INTERNAL);
    }
    match spawn_supervisor(&state_dir, &run_id, &log_dir, g.config) {
        Ok(pid) => {
            let _ = store.event(
                &run_id,
                "supervisor_spawned",
                serde_json::json!({"version": 1, "pid": pid}),
            );
            report::stdout(&format!("{run_id}\n"))?;
            if !quiet {
                let sd = shell_arg(&state_dir);
                report::stderr(&format!(
                    "started run {run_id} of {} in the background (supervisor pid {pid})\n  logs:   {}\n  follow: bgflow --state-dir {sd} status {run_id} --watch\n          bgflow --state-dir {sd} logs {run_id} -f\n  stop:   bgflow --state-dir {sd} stop {run_id}\n",
                    prepared.wf.name,
                    log_dir.display()
                ));
            }
            Ok(exit::SUCCESS)
        }
        Err(e) => {
            let _ = store.apply(&[crate::store::Write::RunFinished {
                run: run_id.clone(),
                state: "failed".into(),
                reason: Some(format!("the supervisor could not start: {e}")),
                exit_code: i64::from(exit::INTERNAL),
            }]);
            let _ = store.checkpoint();
            report::stderr(&format!(
                "error: cannot start the background supervisor: {e}\n"
            ));
            Ok(exit::INTERNAL)
        }
    }
}

fn shell_arg(p: &Path) -> String {
    validate::template::shell_quote(&p.display().to_string())
}

/// Starts `bgflow __supervise RUN` detached: no terminal, stdio away from the caller.
fn spawn_supervisor(
    state_dir: &Path,
    run_id: &str,
    log_dir: &Path,
    config: Option<&Path>,
) -> io::Result<u32> {
    let exe = std::env::current_exe()?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(log_dir.join("supervisor.log"))?;
    let mut cmd = std::process::Command::new(exe);
    if let Some(c) = config {
        cmd.arg("--config")
            .arg(std::path::absolute(c).unwrap_or_else(|_| c.to_path_buf()));
    }
    let child = cmd
        .arg("--state-dir")
        .arg(state_dir)
        .arg("__supervise")
        .arg(run_id)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::from(log.try_clone()?))
        .stderr(std::process::Stdio::from(log))
        .spawn()?;
    Ok(child.id())
}

/// The detached supervisor: a new session, then the run as its spec says.
pub fn supervise(run_id: &str, g: Globals<'_>) -> u8 {
    let state_dir = g.state_dir;
    // Leave the caller's session: closing its terminal must not reach this process.
    let _ = nix::unistd::setsid();
    let Some(state_dir) = state_dir else {
        report::stderr("error: __supervise needs --state-dir\n");
        return exit::USAGE;
    };
    let mut store = match open_store(state_dir) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let row = match store.run(run_id) {
        Ok(Some(r)) => r,
        Ok(None) => {
            report::stderr(&format!("error: no run {run_id}\n"));
            return exit::USAGE;
        }
        Err(e) => {
            report::stderr(&format!("error: {e}\n"));
            return exit::INTERNAL;
        }
    };
    let fail = |store: &mut Store, why: String| {
        report::stderr(&format!("error: {why}\n"));
        let _ = store.apply(&[crate::store::Write::RunFinished {
            run: run_id.to_owned(),
            state: "failed".into(),
            reason: Some(why),
            exit_code: i64::from(exit::INVALID),
        }]);
        let _ = store.checkpoint();
        exit::INVALID
    };
    let spec: Spec = match serde_json::from_str(&row.spec) {
        Ok(s) => s,
        Err(e) => return fail(&mut store, format!("the run's spec is unreadable: {e}")),
    };
    let source = match source_of(&spec) {
        Ok(s) => s,
        Err(e) => return fail(&mut store, e),
    };
    let quiet = Globals {
        color: false,
        quiet: true,
        ..g
    };
    let prepared = match prepare(source, &spec, quiet) {
        Ok(p) => p,
        Err(_) => {
            return fail(
                &mut store,
                "the workflow is no longer valid; see supervisor.log".to_owned(),
            )
        }
    };
    execute(
        prepared,
        store,
        None,
        run_id.to_owned(),
        state_dir.to_path_buf(),
        &spec,
        None,
        true,
        false,
    )
}
