//! Validate and record a run, then run it here (`Mode::Foreground`) or hand it to a new
//! `bgflow __supervise RUN` process in its own session (`Mode::Detached`), which reads how
//! to run it from the store (the run's `spec`, `runs::spec`) and runs it
//! (`runs::supervise`).

use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::diag::{self, read_source, SourceFile};
use crate::exec;
use crate::exit;
use crate::manifest::StepKind;
use crate::par;
use crate::plan::Plan;
use crate::store::NewRun;
use crate::validate::{self, Options, Workflow};

use super::spec::Spec;
use super::supervise::{beat_every, execute, open_store};
use super::{Error, Observer, Places};

/// A run of a workflow file, as `bgflow run` and `run_workflow` ask for it.
#[derive(Debug, Clone, Default)]
pub struct WorkflowRun {
    /// The workflow file, as given (problems name it so); the run records it absolute.
    pub file: PathBuf,
    pub vars: Vec<(String, String)>,
    pub only: Vec<String>,
    pub keep_going: bool,
    pub force: bool,
    pub jobs: Option<u32>,
    pub allow_concurrent: bool,
}

/// Run here to the end, or under a detached supervisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Foreground,
    Detached,
}

/// A detached run that was recorded and whose supervisor started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launched {
    pub run_id: String,
    pub workflow: String,
    pub supervisor_pid: u32,
    pub state_dir: PathBuf,
    pub log_dir: PathBuf,
}

/// What a launch did: handed the run to a supervisor, or ran it here to its exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Started {
    Detached(Launched),
    Finished { code: u8 },
}

/// A validated workflow ready to run.
pub(super) struct Prepared {
    pub config: crate::config::Config,
    pub wf: Workflow,
    pub plan: Plan,
    pub only: Vec<usize>,
    pub resume: Option<exec::fingerprint::Resume>,
    /// Every step's name, by index: one list shared by every consumer of the run.
    pub names: Arc<[String]>,
}

/// Validates as `plan` does; the problems go to `obs`, a refusal comes back as the error.
pub(super) fn prepare(
    source: SourceFile,
    spec: &Spec,
    config: Option<&Path>,
    obs: &mut dyn Observer,
) -> Result<Prepared, Error> {
    // The checks one at a time, and one heap for them and the run after them.
    par::use_one_thread();
    par::one_heap();
    let mut checked = validate::check(
        &source,
        &Options {
            vars: spec.vars.clone(),
            offline: false,
        },
    );
    let config_root = checked.workflow.as_ref().map(|w| w.root.clone());
    let config = match crate::config::load_for(config, config_root.as_deref(), Some(&source.path)) {
        Ok(c) => c.config,
        Err(msg) => return Err(Error::usage(msg)),
    };
    validate::slurm::check_cluster(&mut checked, config.executor.slurm.as_ref(), false);
    let strict = config.validation.strict;
    let errors = checked
        .problems
        .iter()
        .filter(|p| p.is_error() || strict)
        .count();
    if !checked.problems.is_empty() {
        obs.problems(&source, &checked.problems, errors);
    }
    let (Some(mut wf), Some(mut plan)) = (checked.workflow, checked.plan) else {
        return Err(Error::invalid(format!(
            "error: {} is not valid; nothing ran\n",
            source.display
        )));
    };
    if errors > 0 {
        return Err(Error::invalid(format!(
            "error: {} is not valid: {errors} error{}; nothing ran\n",
            source.display,
            if errors == 1 { "" } else { "s" }
        )));
    }
    // The run holds these to its end; what only the checks needed goes now.
    plan.keep_only_the_order();
    wf.forget_what_the_checks_found();
    let mut only = Vec::new();
    for name in &spec.only {
        // A matrix step's name selects every instance; an instance's name, that one.
        let named = wf.steps_named(name);
        if named.is_empty() && crate::validate::matrix::is_wildcard(name) {
            return Err(Error::usage(format!(
                "error: --only {name}: no step's name matches this pattern (`*` stands for any characters, `?` for one; a matrix instance is named `step[v1,v2]`, as `bgflow plan` shows it)\n"
            )));
        }
        if named.is_empty() {
            // A matrix step is named by its instances' common name (`test` of `test[a]`).
            let names = (wf.steps.iter()).flat_map(|s| [s.name.as_str(), s.written_name()]);
            let hint = diag::did_you_mean(name, names)
                .map(|c| format!(" (did you mean `{c}`?)"))
                .unwrap_or_default();
            return Err(Error::usage(format!(
                "error: --only {name}: no such step{hint}\n"
            )));
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
    if let Some(r) = &resume {
        rerun_note(&wf, r, obs);
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

/// Says which steps that succeeded in the run resumed run again because nothing shows what
/// they left (no `outputs`): `resume` keeps only what it can check (guarantee 9), and a
/// test step without `outputs` reran unexplained. Services are needed running: not news.
fn rerun_note(wf: &Workflow, r: &exec::fingerprint::Resume, obs: &mut dyn Observer) {
    let again: Vec<&str> = (wf.steps.iter().enumerate())
        .filter(|(i, s)| {
            r.succeeded.contains(i) && s.outputs.is_empty() && s.kind() != StepKind::Service
        })
        .map(|(_, s)| s.name.as_str())
        .collect();
    if again.is_empty() {
        return;
    }
    let n = again.len();
    let names = crate::report::summary::named(&again);
    obs.info(&format!(
        "resume: {n} step{s} that succeeded in run {} run{verb} again, as {they} declare{verb} no `outputs` to show what {they} left: {names}\n  help: list what a step makes in its `outputs` (a test step: its JUnit reports) for `resume` to keep it\n",
        r.from,
        s = if n == 1 { "" } else { "s" },
        verb = if n == 1 { "s" } else { "" },
        they = if n == 1 { "it" } else { "they" },
    ));
}

/// Guarantee 10: a port that a service of the run probes, held by another process, is
/// refused before anything starts (or is made: the state folder of a first run). A service
/// the run will not start, as every step that needs it is up to date (`exec::unneeded`),
/// does not count: a run with nothing to do is not refused for the developer's own server
/// on the port. Only an existing history can show that.
fn refuse_taken_ports(p: &Prepared, spec: &Spec, state_dir: &Path) -> Result<(), Error> {
    let mut selected = selected_steps(&p.plan, &p.only);
    if exec::probe::taken_before_run(&p.wf, &selected).is_empty() {
        return Ok(());
    }
    let fingerprints = crate::store::Store::open_existing(state_dir)
        .ok()
        .flatten()
        .and_then(|store| store.fingerprints().ok())
        .unwrap_or_default();
    let unneeded = exec::unneeded::Unneeded::find(
        &p.wf,
        &p.plan,
        &p.plan.selection(&p.only),
        &fingerprints,
        spec.force,
        p.resume.as_ref(),
    );
    selected.retain(|&s| !unneeded.skips(s));
    let taken = exec::probe::taken_before_run(&p.wf, &selected);
    if taken.is_empty() {
        return Ok(());
    }
    Err(Error::invalid(exec::probe::refusal(&taken)))
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

pub(super) fn selected_steps(plan: &Plan, only: &[usize]) -> Vec<usize> {
    let selection = plan.selection(only);
    (0..selection.len()).filter(|&i| selection[i]).collect()
}

/// Validates, records and starts a run of a workflow file (`bgflow run`, `run_workflow`).
pub fn run_workflow(
    req: &WorkflowRun,
    mode: Mode,
    places: &Places,
    obs: &mut dyn Observer,
) -> Result<Started, Error> {
    let file = std::path::absolute(&req.file).unwrap_or_else(|_| req.file.clone());
    let spec = Spec {
        file: Some(file),
        vars: req.vars.clone(),
        only: req.only.clone(),
        keep_going: req.keep_going,
        force: req.force,
        jobs: req.jobs,
        resume: None,
        adhoc: None,
        allow_concurrent: req.allow_concurrent,
    };
    let source = read_source(&req.file).map_err(|msg| Error::usage(format!("error: {msg}\n")))?;
    launch(source, spec, mode, places, &serde_json::json!({}), obs)
}

/// Validates `source` as `spec` says, checks the state folder, has the history admit the
/// run (the limit and the lock per tree, in one transaction), then runs it as `mode` says.
pub fn launch(
    source: SourceFile,
    spec: Spec,
    mode: Mode,
    places: &Places,
    meta: &serde_json::Value,
    obs: &mut dyn Observer,
) -> Result<Started, Error> {
    let detach = mode == Mode::Detached;
    let prepared = prepare(source, &spec, places.config.as_deref(), obs)?;
    let state_dir = state_dir_for(&prepared, places.state_dir.as_deref());
    refuse_taken_ports(&prepared, &spec, &state_dir)?;
    super::guard::check_state_dir(&state_dir)?;
    let mut store = open_store(&state_dir, obs)?;
    let run_id = super::spec::new_run_id();
    let log_dir = state_dir.join("runs").join(&run_id);
    let record = new_run(&prepared, &run_id, &log_dir, &spec, detach, meta)
        .map_err(|e| Error::internal(format!("error: cannot record the run: {e}\n")))?;
    // Checked and taken in one transaction: the limit and the lock per tree.
    let me = std::process::id();
    let admission = crate::store::admit::Admission {
        limit: prepared.config.limits.max_concurrent_runs,
        check_lock: !spec.allow_concurrent && spec.adhoc.is_none(),
        supervisor: (!detach).then(|| (me, crate::procfs::start_time(me))),
        with_steps: detach,
    };
    super::guard::admit(&mut store, &record, admission, &state_dir)?;
    if !detach {
        // The run's row is in; the history thread writes its steps' rows while the first
        // steps start.
        let code = execute(
            prepared,
            store,
            Some(record),
            run_id,
            state_dir,
            &spec,
            true,
            obs,
        )?;
        return Ok(Started::Finished { code });
    }
    crate::store::ensure_private_dir(&log_dir)
        .map_err(|e| Error::internal(format!("error: {e}\n")))?;
    match spawn_supervisor(&state_dir, &run_id, &log_dir, places.config.as_deref()) {
        // The supervisor records `supervisor_spawned` itself, before its run's first event:
        // written here, it could land after a quick run's `run_finished`.
        Ok(pid) => Ok(Started::Detached(Launched {
            run_id,
            workflow: prepared.wf.name.clone(),
            supervisor_pid: pid,
            state_dir,
            log_dir,
        })),
        Err(e) => {
            let _ = store.apply(&[crate::store::Write::RunFinished {
                run: run_id.clone(),
                state: "failed".into(),
                reason: Some(format!("the supervisor could not start: {e}")),
                exit_code: i64::from(exit::INTERNAL),
            }]);
            let _ = store.checkpoint();
            Err(Error::internal(format!(
                "error: cannot start the background supervisor: {e}\n"
            )))
        }
    }
}

/// Starts `bgflow __supervise RUN` detached: no terminal, stdio away from the caller.
fn spawn_supervisor(
    state_dir: &Path,
    run_id: &str,
    log_dir: &Path,
    config: Option<&Path>,
) -> std::io::Result<u32> {
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
