//! From a read manifest to a checked `Workflow` and its `Plan`, collecting every problem.
//!
//! Order of checks: the file (syntax, schema) -> names and values -> templates -> the graph
//! -> the machine (skipped by `--offline`). Nothing here starts a process of the workflow;
//! the machine checks of Slurm steps ask the cluster with `sinfo` and `scontrol` (`slurm`).

mod cleans;
mod collapse;
mod env_file;
pub mod host;
mod junit;
mod junit_flag;
mod machine;
pub mod matrix;
mod paths;
mod pipeline;
pub mod ports;
mod rendering;
pub mod slurm;
mod step;
pub mod template;
mod values;

use rendering::{cwd_relative, names_the_run, render_run, shell_of, BASH};

use std::collections::{BTreeMap, HashSet};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use indexmap::IndexMap;
use regex::Regex;

use crate::diag::{Problem, SourceFile};
use crate::manifest::{self, Document, Duration, Hooks, Probe, RunSpec, StepKind, StepSpec};
use crate::plan::artifacts::{compile_glob, is_glob};
use crate::plan::{self, Plan, StepNode};
use host::Host;
use template::{Mode, Renderer, RunInfo, StepInfo};

/// How many step names may be compared with unknown names for a "did you mean" (each
/// comparison costs about 0.1 µs): 10,000 unknown `needs` in a 10,000-step workflow took
/// seconds when each was compared with every step.
const SUGGESTION_BUDGET: usize = 500_000;

/// How to check.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `--var K=V`, applied over `[vars]`.
    pub vars: Vec<(String, String)>,
    /// Only the checks that read nothing but the file.
    pub offline: bool,
}

/// A command ready to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Runs under `sh -c`.
    Shell(String),
    /// Runs directly, no shell.
    Argv(Vec<String>),
}

impl Command {
    /// The script of a string `run` under `shell = "bash"` (an argv of `BASH` then it).
    pub fn bash_script(&self) -> Option<&str> {
        match self {
            Self::Argv(argv)
                if argv.len() == BASH.len() + 1 && argv.iter().zip(BASH).all(|(a, b)| a == b) =>
            {
                argv.last().map(String::as_str)
            }
            _ => None,
        }
    }

    /// A one-line form for display.
    pub fn display(&self) -> String {
        match self {
            Self::Shell(s) => s.clone(),
            Self::Argv(argv) => argv
                .iter()
                .map(|a| template::shell_quote(a))
                .collect::<Vec<_>>()
                .join(" "),
        }
    }
}

/// A checked workflow: every name resolves, every template renders.
pub struct Workflow {
    pub name: String,
    pub description: Option<String>,
    pub file: PathBuf,
    pub root: PathBuf,
    pub max_parallel: Option<u32>,
    pub timeout: Option<Duration>,
    pub fail_fast: bool,
    pub vars: IndexMap<String, String>,
    /// `[env]`, rendered.
    pub env: Vec<(String, String)>,
    /// The `[env]` values that name the run, as written (see `More::env_of_run`).
    env_of_run: Vec<(usize, String)>,
    pub hooks: Hooks,
    pub steps: Vec<Step>,
    pub renderer: Renderer,
    /// `[executor.slurm]` as the workflow writes it.
    pub slurm_section: Option<manifest::SlurmSection>,
    /// With the config's keys under the workflow's (`slurm::check_cluster`), when a step
    /// runs on Slurm.
    pub slurm: Option<slurm::Settings>,
}

/// A checked step. A run holds one per step for its whole length, so what few steps set is
/// kept apart (`More`) and nothing is held twice: 168 bytes a step, with its strings beside
/// (docs/architecture.md). A step's `description` is read by no check and no run.
pub struct Step {
    pub name: String,
    pub kind: StepKind,
    pub allow_failure: bool,
    /// With `[defaults]` of the config applied (`config::apply`).
    pub retries: Option<u32>,
    pub kill_grace: Option<Duration>,
    /// As written.
    pub inputs: Box<[String]>,
    /// As written.
    pub outputs: Box<[String]>,
    /// The command rendered with plan-time placeholders for the run.
    pub command: Command,
    /// `run` as written when it holds a template, to be rendered again for each run and
    /// attempt; `None`: `command` is the text as written.
    run: Option<Box<RunSpec>>,
    /// Where it runs: steps without `cwd` share the root.
    pub cwd: Arc<Path>,
    /// For each input: whether it exists on disk now (`None`: not looked at).
    pub input_exists: Box<[Option<bool>]>,
    more: Option<Box<More>>,
}

/// What a step sets beyond its command, inputs and outputs: few steps set any of it.
#[derive(Default)]
pub struct More {
    pub needs: Vec<String>,
    /// `cwd` as written.
    pub cwd: Option<String>,
    /// The step's own `env`, rendered.
    pub env: Vec<(String, String)>,
    /// The `env` values that name the run (`{{ run.id }}`), as written, by their place in
    /// `env`: rendered again with the real run (`Workflow::set_run`).
    pub env_of_run: Vec<(usize, String)>,
    pub timeout: Option<Duration>,
    pub retry_delay: Option<Duration>,
    pub stall_timeout: Option<Duration>,
    pub progress: Option<Regex>,
    pub fail_on: Vec<Regex>,
    pub tools: Vec<String>,
    pub tags: Vec<String>,
    pub ready: Option<Box<Probe>>,
    pub health: Option<Box<Probe>>,
    pub junit: Option<String>,
    /// The matrix instance this step is, with its values.
    pub instance: Option<Arc<matrix::Instance>>,
    /// `inputs` and `outputs` as `plan` shows them, when a template of them reads the
    /// caller's environment (`<env:NAME>`).
    pub shown_paths: Option<Box<[Vec<String>; 2]>>,
    /// The step's Slurm job, when it runs on Slurm.
    pub slurm: Option<Box<slurm::Job>>,
}

static NO_MORE: More = More {
    needs: Vec::new(),
    cwd: None,
    env: Vec::new(),
    env_of_run: Vec::new(),
    timeout: None,
    retry_delay: None,
    stall_timeout: None,
    progress: None,
    fail_on: Vec::new(),
    tools: Vec::new(),
    tags: Vec::new(),
    ready: None,
    health: None,
    junit: None,
    instance: None,
    shown_paths: None,
    slurm: None,
};

impl More {
    fn is_empty(&self) -> bool {
        let More {
            needs,
            cwd,
            env,
            env_of_run,
            timeout,
            retry_delay,
            stall_timeout,
            progress,
            fail_on,
            tools,
            tags,
            ready,
            health,
            junit,
            instance,
            shown_paths,
            slurm,
        } = self;
        needs.is_empty()
            && cwd.is_none()
            && env.is_empty()
            && env_of_run.is_empty()
            && timeout.is_none()
            && retry_delay.is_none()
            && stall_timeout.is_none()
            && progress.is_none()
            && fail_on.is_empty()
            && tools.is_empty()
            && tags.is_empty()
            && ready.is_none()
            && health.is_none()
            && junit.is_none()
            && instance.is_none()
            && shown_paths.is_none()
            && slurm.is_none()
    }
}

pub const DEFAULT_KILL_GRACE: Duration = Duration::from_secs(10);
pub const DEFAULT_RETRY_DELAY: Duration = Duration::from_secs(1);

impl Step {
    /// What the step sets beyond its command, inputs and outputs.
    pub fn more(&self) -> &More {
        self.more.as_deref().unwrap_or(&NO_MORE)
    }
    /// The health probe, to fill in defaults.
    pub fn health_mut(&mut self) -> Option<&mut Probe> {
        self.more.as_mut()?.health.as_deref_mut()
    }
    pub fn kind(&self) -> StepKind {
        self.kind
    }
    pub fn timeout(&self) -> Option<Duration> {
        self.more().timeout
    }
    /// The step's Slurm job, when it runs on Slurm.
    pub fn slurm(&self) -> Option<&slurm::Job> {
        self.more().slurm.as_deref()
    }
    pub fn kill_grace(&self) -> Duration {
        self.kill_grace.unwrap_or(DEFAULT_KILL_GRACE)
    }
    pub fn retries(&self) -> u32 {
        self.retries.unwrap_or(0)
    }
    pub fn retry_delay(&self) -> Duration {
        self.more().retry_delay.unwrap_or(DEFAULT_RETRY_DELAY)
    }
    /// The step's own `env`, rendered.
    pub fn env(&self) -> &[(String, String)] {
        &self.more().env
    }
    pub fn progress(&self) -> Option<&Regex> {
        self.more().progress.as_ref()
    }
    pub fn fail_on(&self) -> &[Regex] {
        &self.more().fail_on
    }
    /// A matrix instance's values, `{{ matrix.NAME }}`.
    pub fn matrix(&self) -> Option<&[(String, String)]> {
        self.more().instance.as_deref().map(|i| i.values.as_slice())
    }
    /// The step's name in the file: a matrix instance's step, else its own name.
    pub fn written_name(&self) -> &str {
        self.more()
            .instance
            .as_deref()
            .map_or(&self.name, |i| i.base.as_str())
    }
    /// `inputs` (0) or `outputs` (1) as `plan` shows them (see `More::shown_paths`).
    pub fn shown_paths(&self, which: usize) -> &[String] {
        match &self.more().shown_paths {
            Some(shown) => &shown[which],
            None if which == 0 => &self.inputs,
            None => &self.outputs,
        }
    }
}

impl Workflow {
    /// Frees what only the checks and the shown plan use (whether each input exists now).
    pub fn forget_what_the_checks_found(&mut self) {
        for step in &mut self.steps {
            step.input_exists = Box::default();
        }
    }

    /// Renders step `index`'s command for a real run and attempt.
    pub fn render_command(&self, index: usize, attempt: u32) -> Result<Command, String> {
        let step = &self.steps[index];
        let Some(run) = &step.run else {
            return Ok(step.command.clone());
        };
        self.with_step_info(index, attempt, |info| {
            render_run(&self.renderer, Some(run), info, shell_of(&step.command))
                .map_err(|(e, _)| e.message)
        })
    }

    /// Calls `f` with what step `index`'s templates see of it: its inputs and outputs
    /// relative to its working folder.
    fn with_step_info<R>(
        &self,
        index: usize,
        attempt: u32,
        f: impl FnOnce(&StepInfo<'_>) -> R,
    ) -> R {
        let step = &self.steps[index];
        let relative =
            [&step.inputs, &step.outputs].map(|p| cwd_relative(&self.root, &step.cwd, p));
        f(&StepInfo {
            name: &step.name,
            inputs: relative[0].as_deref().unwrap_or(&step.inputs),
            outputs: relative[1].as_deref().unwrap_or(&step.outputs),
            attempt,
            matrix: step.matrix(),
        })
    }
}

/// The result of checking one file.
pub struct Checked {
    pub workflow: Option<Workflow>,
    pub plan: Option<Plan>,
    pub problems: Vec<Problem>,
}

impl Checked {
    pub fn has_errors(&self) -> bool {
        self.problems.iter().any(Problem::is_error)
    }
}

/// Checks a workflow file's text.
pub fn check(source: &SourceFile, opts: &Options) -> Checked {
    let (doc, loaded) = manifest::load(source);
    let step_count = loaded.all_steps().count();
    let mut problems = loaded.problems;
    if problems.iter().any(|p| p.code == "syntax") {
        return Checked {
            workflow: None,
            plan: None,
            problems,
        };
    }
    let doc = &doc;
    let m = loaded.manifest;
    let mut cx = Cx {
        doc,
        problems: &mut problems,
    };

    // The workflow section.
    let wf = &m.workflow;
    // A missing or non-string name was reported by `load`; an empty string was not.
    if loaded.name_written && !valid_name(&wf.name) {
        cx.error_at(
            "invalid-name",
            format!("invalid workflow name `{}`", wf.name),
            &["workflow", "name"],
            "letters, digits, '-' and '_' only",
        );
    }
    if wf.max_parallel == Some(0) {
        cx.error_at(
            "invalid-value",
            "`max_parallel` must be at least 1",
            &["workflow", "max_parallel"],
            "zero",
        );
    }
    cx.no_nul_outside_steps(&m);
    cx.not_zero(
        wf.timeout,
        &["workflow", "timeout"],
        "a run with no time fails at once; leave `timeout` out for no limit",
    );
    let file_dir = source
        .path
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let file_dir = if file_dir.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        file_dir
    };
    // `--offline` reads nothing but the workflow's files.
    let dotenv = if opts.offline {
        Vec::new()
    } else {
        cx.env_file(wf.env_file.as_ref(), &file_dir)
    };
    let root = match &wf.root {
        Some(r) => file_dir.join(r),
        None => file_dir,
    };
    let root = std::path::absolute(&root).unwrap_or(root);
    // A file found upward (`../../bgflow.toml`) or a `root = "../x"` would show its `..` in
    // every path of the plan and the run: the real folder reads better, and is the same.
    let root = if root
        .components()
        .any(|c| c == std::path::Component::ParentDir)
    {
        std::fs::canonicalize(&root).unwrap_or(root)
    } else {
        root
    };

    // `[step.build]` for `[steps.build]` is already an unknown key; "no steps" would repeat it.
    let misspelled_steps = cx
        .problems
        .iter()
        .any(|p| p.code == "unknown-key" && p.message.contains("top-level"));
    if step_count == 0 && !misspelled_steps {
        cx.problems.push(
            Problem::error("empty-workflow", "the workflow has no steps")
                .at_opt(doc.key_span(&["workflow"]), "in this workflow")
                .help("add a step:\n[steps.hello]\nrun = \"echo hello\""),
        );
    }

    // Variables: [vars] then --var.
    let mut vars = m.vars.clone();
    for (k, v) in &opts.vars {
        if !vars.contains_key(k) && !source.files().any(|(_, f)| mentions_var(&f.text, k)) {
            cx.unknown_var(k, &m.vars);
        }
        vars.insert(k.clone(), v.clone());
    }
    // The env_file's values under the caller's (`env_file.rs`).
    let caller_env: Option<BTreeMap<String, String>> = (!opts.offline).then(|| {
        let mut env: BTreeMap<String, String> = dotenv.iter().cloned().collect();
        env.extend(std::env::vars());
        env
    });
    let renderer = Renderer::new(
        &vars,
        caller_env,
        &wf.name,
        &root.to_string_lossy(),
        &RunInfo {
            id: "<run-id>".into(),
            dir: ".bgflow/runs/<run-id>".into(),
        },
    );

    // What the caller's environment does not set, before `[env]`, which goes over it.
    let mut env: Vec<(String, String)> = dotenv
        .into_iter()
        .filter(|(k, _)| std::env::var_os(k).is_none())
        .collect();
    let from_env_file = env.len();
    let mut env_of_run = Vec::new();
    for (k, v) in &m.env {
        cx.env_name(k, &["env", k]);
        if let Some(out) = cx.render(&renderer, v, Mode::Plain, None, &["env", k]) {
            if names_the_run(v) {
                env_of_run.push((env.len(), v.clone()));
            }
            cx.no_nul(&out, &format!("environment variable `{k}`"), || {
                doc.value_span(&["env", k])
            });
            env.push((k.clone(), out));
        }
    }
    for (event, cmd) in [
        ("on_success", &m.hooks.on_success),
        ("on_failure", &m.hooks.on_failure),
    ] {
        if let Some(cmd) = cmd {
            if let Some(out) = cx.render(&renderer, cmd, Mode::Shell, None, &["hooks", event]) {
                cx.no_nul(&out, &format!("`{event}`"), || {
                    doc.value_span(&["hooks", event])
                });
            }
        }
    }

    // Steps, one by one.
    // Each step is checked on its own, so the steps are spread over every core.
    let shared_root: Arc<Path> = Arc::from(root.as_path());
    let defaults = StepDefaults {
        executor: wf.executor.unwrap_or_default(),
        shell: wf.shell,
    };
    let mut steps = Vec::with_capacity(step_count);
    let mut groups = matrix::Groups::new();
    let mut matrix_globs = Vec::new();
    // Chunk by chunk, each freed once its steps are checked (`Loaded::steps`).
    for chunk in loaded.steps {
        // A matrix step becomes its instances here (`matrix`).
        let mut chunk: Vec<matrix::Item> = if chunk.iter().any(|s| s.spec.matrix.is_some()) {
            cx.expand(chunk, steps.len(), &root, &mut groups, &mut matrix_globs)
        } else {
            chunk.into_iter().map(|s| (s, None)).collect()
        };
        steps.extend(cx.on_every_core(
            &mut chunk,
            || (),
            |cx, (), (s, instance)| {
                let s = std::mem::take(s);
                cx.step(
                    s.name,
                    s.spec,
                    defaults,
                    &renderer,
                    &shared_root,
                    s.broken,
                    instance.take(),
                )
            },
        ));
    }
    if !matrix_globs.is_empty() {
        let outputs: Vec<(&str, &[String])> = steps
            .iter()
            .map(|s| (s.name.as_str(), &*s.outputs))
            .collect();
        cx.globs_over_outputs(&matrix_globs, &outputs);
    }

    // The graph.
    let nodes: Vec<StepNode<'_>> = steps
        .iter()
        .map(|step| StepNode {
            name: &step.name,
            needs: &step.more().needs,
            inputs: &step.inputs,
            outputs: &step.outputs,
            // As rendered: relative to the root, when it is under it.
            cwd: step
                .more()
                .cwd
                .as_ref()
                .and_then(|_| step.cwd.strip_prefix(&root).ok())
                .and_then(Path::to_str)
                .map(|c| c.trim_end_matches('/'))
                .filter(|c| !c.is_empty() && *c != "."),
        })
        .collect();
    let names: Vec<&str> = steps.iter().map(|s| s.name.as_str()).collect();
    let (plan, issues) = plan::build_with_groups(&nodes, &groups);
    let mut suggestions = SUGGESTION_BUDGET / names.len().max(1);
    for issue in issues {
        cx.graph_issue(&names, &issue, &mut suggestions);
    }
    drop(nodes);
    drop(names);
    junit::shared_reports(&mut cx, &steps, &plan);

    // The machine.
    if !opts.offline {
        let mut host = Host::default();
        cx.requires(&m.requires, &root, &mut host, &env[..from_env_file]);
        // Spread over every core like the steps above, with a cache per thread.
        let mut indices: Vec<usize> = (0..steps.len()).collect();
        let exists = cx.on_every_core(&mut indices, Host::default, |cx, host, &mut i| {
            cx.step_on_host(&steps, i, &plan, &root, host)
        });
        for (step, e) in steps.iter_mut().zip(exists) {
            step.input_exists = e.into_boxed_slice();
        }
        cx.ports(&steps);
    }

    let workflow = Workflow {
        name: wf.name.clone(),
        description: wf.description.clone(),
        file: source.path.clone(),
        root,
        max_parallel: wf.max_parallel,
        timeout: wf.timeout,
        fail_fast: wf.fail_fast.unwrap_or(true),
        vars,
        env,
        env_of_run,
        hooks: m.hooks.clone(),
        steps,
        renderer,
        slurm_section: m.executor.slurm.clone(),
        slurm: None,
    };
    // A workflow without problems is parsed once: a place looked up where no problem needs
    // it parses the whole file again (`Document`), which costs as much as the first parse.
    // Every debug build of the tests checks this.
    debug_assert!(
        !problems.is_empty() || !doc.parsed_again(),
        "checking a workflow without problems looked up a place in the file"
    );
    sort_problems(source, &mut problems);
    Checked {
        workflow: Some(workflow),
        plan: plan.acyclic.then_some(plan),
        problems,
    }
}

/// Problems in file order (errors before warnings at the same place), each once.
fn sort_problems(_source: &SourceFile, problems: &mut Vec<Problem>) {
    problems.sort_by_key(|p| {
        (
            p.span.as_ref().map_or(0, |s| s.start),
            std::cmp::Reverse(p.severity),
        )
    });
    let mut seen = HashSet::new();
    problems.retain(|p| seen.insert((p.code, p.message.clone(), p.span.clone())));
    collapse::instances(problems);
}

/// Whether a template of the file names `vars.NAME` (or `vars["NAME"]`): a variable that
/// only `--var` sets is still a variable of the workflow.
fn mentions_var(text: &str, name: &str) -> bool {
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let dotted = format!("vars.{name}");
    let dotted_here = text.match_indices(&dotted).any(|(i, _)| {
        let end = i + dotted.len();
        let before_ok = i == 0 || !ident(text.as_bytes()[i - 1]);
        before_ok && text.as_bytes().get(end).is_none_or(|&b| !ident(b))
    });
    dotted_here
        || text.contains(&format!("vars[\"{name}\"]"))
        || text.contains(&format!("vars['{name}']"))
}

pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// What `[workflow]` sets for every step that does not say otherwise.
#[derive(Debug, Clone, Copy)]
struct StepDefaults {
    executor: manifest::ExecutorKind,
    /// `None`: not written, `sh`.
    shell: Option<manifest::Shell>,
}

/// The checking context: the document for spans, and the problem list.
struct Cx<'a, 's> {
    doc: &'a Document<'s>,
    problems: &'a mut Vec<Problem>,
}

impl<'s> Cx<'_, 's> {
    /// Calls `f` on every item, spread over every core (`par::map_runs`); the results and
    /// the problems keep the items' order. `state` makes what each thread keeps to itself.
    fn on_every_core<I: Send, S, T: Send>(
        &mut self,
        items: &mut [I],
        state: impl Fn() -> S + Sync,
        f: impl Fn(&mut Cx<'_, 's>, &mut S, &mut I) -> T + Sync,
    ) -> Vec<T> {
        let doc = self.doc;
        let runs = crate::par::map_runs(items, 1000, |run| {
            let mut found = Vec::new();
            let mut cx = Cx {
                doc,
                problems: &mut found,
            };
            let mut own = state();
            let out: Vec<T> = run.iter_mut().map(|i| f(&mut cx, &mut own, i)).collect();
            (out, found)
        });
        let (out, found): (Vec<_>, Vec<_>) = runs.into_iter().unzip();
        self.problems.extend(found.into_iter().flatten());
        crate::par::concat(out)
    }
}

impl Cx<'_, '_> {
    fn error_at(
        &mut self,
        code: &'static str,
        message: impl Into<String>,
        path: &[&str],
        label: &str,
    ) {
        let span = self
            .doc
            .value_span(path)
            .or_else(|| self.doc.key_span(&path[..path.len().saturating_sub(1)]));
        self.problems
            .push(Problem::error(code, message).at_opt(span, label));
    }

    /// `--var NAME=...` where the workflow has no variable `NAME`.
    fn unknown_var(&mut self, name: &str, declared: &IndexMap<String, String>) {
        let mut p = Problem::error(
            "unknown-var",
            format!("`--var {name}` names no variable of the workflow"),
        )
        .at_opt(self.doc.key_span(&["vars"]), "the workflow's variables");
        p = match crate::diag::did_you_mean(name, declared.keys().map(String::as_str)) {
            Some(close) => p.help(format!("did you mean `--var {close}=...`?")),
            None if declared.is_empty() => p.help(format!(
                "the workflow declares no [vars] and no template uses `vars.{name}`"
            )),
            None => p.help(format!(
                "variables: {}; a template must use `vars.{name}` for `--var {name}` to mean anything",
                crate::diag::some_names(declared.keys().map(String::as_str), 10)
            )),
        };
        self.push(p);
    }

    fn push(&mut self, p: Problem) {
        self.problems.push(p);
    }

    /// Renders a template found at `path` (a string value), reporting errors at their place.
    fn render(
        &mut self,
        r: &Renderer,
        text: &str,
        mode: Mode,
        step: Option<&StepInfo<'_>>,
        path: &[&str],
    ) -> Option<String> {
        match r.render(text, mode, step) {
            Ok(out) => Some(out),
            Err(e) => {
                // Places are looked up only for a problem (`Document`).
                let place = self.inside(self.doc.value_span(path), text, e.range.clone());
                let mut p = Problem::error("template", e.message).at_opt(place, "here");
                if let Some(h) = e.help {
                    p = p.help(h);
                }
                self.push(p);
                None
            }
        }
    }

    /// The file span of `range` inside the string value at `span`, when it maps exactly.
    fn inside(
        &self,
        span: Option<Range<usize>>,
        text: &str,
        range: Option<Range<usize>>,
    ) -> Option<Range<usize>> {
        let span = span?;
        match (self.doc.string_body(&span, text), range) {
            (Some(base), Some(r)) => Some(base + r.start..base + r.end),
            _ => Some(span),
        }
    }
}
