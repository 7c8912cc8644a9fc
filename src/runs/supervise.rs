//! Running a validated run to its end: the executor on a thread of its own, the history
//! writer and the caller's display as consumers of its events, then `summary.json`, hooks,
//! notifications and retention. Used by a foreground `run` and by the detached supervisor
//! (`bgflow __supervise RUN`, `supervise`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::exec::{self, RunEvent, RunOptions, Sink};
use crate::exit;
use crate::par;
use crate::report::summary;
use crate::store::{NewRun, Store};
use crate::validate::{self, template::RunInfo, Workflow};

use super::launch::{prepare, selected_steps, Prepared};
use super::recorder::StoreSink;
use super::spec::{source_of, Spec};
use super::{Error, Observer, Places};

/// How often the run loop wakes its consumers: the store flushes waiting writes and
/// records the supervisor's heartbeat (DESIGN.md §5.5).
pub const HEARTBEAT: Duration = Duration::from_millis(250);

/// How often the supervisor writes its heartbeat: `monitoring.heartbeat`, at least the run
/// loop's tick.
pub(super) fn beat_every(config: &crate::config::Config) -> Duration {
    config.monitoring.heartbeat.as_std().max(HEARTBEAT)
}

/// Runs a prepared workflow to the end; returns the exit code. `record`: the run's record,
/// when the store does not have it yet (a foreground run, shown through `obs`'s display
/// and summary when `foreground`).
#[allow(clippy::too_many_arguments)]
pub(super) fn execute(
    p: Prepared,
    store: Store,
    record: Option<NewRun>,
    run_id: String,
    state_dir: PathBuf,
    spec: &Spec,
    foreground: bool,
    obs: &mut dyn Observer,
) -> Result<u8, Error> {
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
    let contain = match exec::contain::Containment::choose(config.containment, &run_id, &state_dir)
    {
        Ok(c) => Arc::new(c),
        Err(why) => {
            let message = format!("error: {why}; nothing ran\n  help: set containment = \"auto\" or \"process-group\" in bgflow.toml\n");
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
            return Err(Error::invalid(message));
        }
    };
    let hooks = render_hooks(&wf, obs);
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
    let view = if foreground {
        obs.display(Arc::clone(&names), total)
    } else {
        None
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            return Err(Error::internal(format!(
                "error: cannot start the async runtime: {e}\n"
            )))
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
            par::short_slice();
            runtime.block_on(exec::execute(wf, plan, run_opts, &mut tee))
        })
    };
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            return Err(Error::internal(format!(
                "error: cannot start the run's thread: {e}\n"
            )))
        }
    };
    // summary.json is written on a second thread while the history writer finishes and the
    // table is built and printed: at 10,000 steps each took 15-30 ms, and both CPUs are
    // free once the steps are done.
    let (written, ()) = par::beside(
        "bgflow-summary",
        || summary::write_json(&report),
        || {
            // Printed while the history writer writes the run's end and checkpoints.
            if foreground {
                obs.summary(&report);
            }
            // Waits for the history writer (`error` is complete after this), with the WAL
            // then in bgflow.db.
            store_sink.checkpoint();
            if let Some(e) = store_sink.error.take() {
                obs.note(&format!(
                    "warning: the run history could not be fully written: {e}\n"
                ));
            }
        },
    );
    if let Err(e) = written {
        obs.note(&format!("warning: cannot write summary.json: {e}\n"));
    }
    after_run(
        &report,
        &hooks,
        &root,
        &config,
        store_sink.store(),
        foreground,
        obs,
    );
    let code = report.exit_code();
    // The process ends next, and freeing the run's report, workflow and plan one allocation
    // at a time took 7 ms at 10,000 steps; the kernel takes the memory back at once.
    std::mem::forget((report, wf, plan));
    Ok(code)
}

/// `[hooks]` rendered with the run's context: (event, command).
fn render_hooks(wf: &Workflow, obs: &mut dyn Observer) -> Vec<(crate::config::Outcome, String)> {
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
                Err(e) => obs.note(&format!("warning: hook not run: {}\n", e.message)),
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
    obs: &mut dyn Observer,
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
        let see = if what.starts_with("desktop") {
            String::new()
        } else {
            format!(" (see {})", hook_log.display())
        };
        obs.info(&format!("warning: {what} failed: {why}{see}\n"));
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
        if n.terminal && foreground {
            obs.bell(&notify::terminal(report));
        }
    }
    if let Some(store) = store.filter(|_| config.retention.auto_cleanup_days > 0) {
        let age = crate::manifest::Duration::from_secs(
            u64::from(config.retention.auto_cleanup_days) * 86_400,
        );
        let _ = super::cleanup::remove_old(
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

/// Opens (or makes) the history of a new run.
pub(super) fn open_store(state_dir: &Path, obs: &mut dyn Observer) -> Result<Store, Error> {
    let store = Store::open(state_dir).map_err(|e| super::internal(&e))?;
    if let Some(w) = store.new_history_warning() {
        obs.note(&w);
    }
    Ok(store)
}

/// The detached supervisor (`bgflow __supervise RUN`): a new session, then the run as its
/// stored spec says; returns the run's exit code. What it has to say goes to `obs` (the
/// supervisor's stderr is the run's `supervisor.log`).
pub fn supervise(run_id: &str, places: &Places, obs: &mut dyn Observer) -> u8 {
    // Leave the caller's session: closing its terminal must not reach this process.
    let _ = nix::unistd::setsid();
    let Some(state_dir) = places.state_dir.as_deref() else {
        obs.note("error: __supervise needs --state-dir\n");
        return exit::USAGE;
    };
    let mut store = match open_store(state_dir, obs) {
        Ok(s) => s,
        Err(e) => {
            obs.note(&e.message);
            return e.code;
        }
    };
    let row = match store.run(run_id) {
        Ok(Some(r)) => r,
        Ok(None) => {
            obs.note(&format!("error: no run {run_id}\n"));
            return exit::USAGE;
        }
        Err(e) => {
            obs.note(&format!("error: {e}\n"));
            return exit::INTERNAL;
        }
    };
    // First in the run's events after its creation, whatever the run does next.
    let _ = store.event(
        run_id,
        "supervisor_spawned",
        serde_json::json!({"version": 1, "pid": std::process::id()}),
    );
    let fail = |store: &mut Store, obs: &mut dyn Observer, why: String| {
        obs.note(&format!("error: {why}\n"));
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
        Err(e) => {
            return fail(
                &mut store,
                obs,
                format!("the run's spec is unreadable: {e}"),
            )
        }
    };
    let source = match source_of(&spec) {
        Ok(s) => s,
        Err(e) => return fail(&mut store, obs, e),
    };
    let prepared = match prepare(source, &spec, places.config.as_deref(), obs) {
        Ok(p) => p,
        Err(e) => {
            obs.note(&e.message);
            return fail(
                &mut store,
                obs,
                "the workflow is no longer valid; see supervisor.log".to_owned(),
            );
        }
    };
    match execute(
        prepared,
        store,
        None,
        run_id.to_owned(),
        state_dir.to_path_buf(),
        &spec,
        false,
        obs,
    ) {
        Ok(code) => code,
        Err(e) => {
            obs.note(&e.message);
            e.code
        }
    }
}
