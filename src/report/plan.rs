//! `bgflow plan` output: the human plan, the verdict line, and the JSON document.

use std::collections::HashMap;
use std::fmt::Write;

use serde::Serialize;

use crate::diag::{ProblemJson, SourceFile};
use crate::plan::Plan;
use crate::validate::{Checked, Command, Workflow};

/// The plan for people: waves, each step with its command, inputs, outputs and timeout.
pub fn human(wf: &Workflow, plan: &Plan, source: &SourceFile) -> String {
    let n = wf.steps.len();
    let mut out = String::with_capacity(256);
    let _ = writeln!(
        out,
        "workflow {} ({}): {n} step{} in {} wave{}",
        wf.name,
        source.display,
        plural(n),
        plan.waves.len(),
        plural(plan.waves.len())
    );
    if let Some(d) = &wf.description {
        let _ = writeln!(out, "  {d}");
    }
    let instances = matrix_instances(wf);
    // A plan of thousands of steps is written on every core, a run of waves each.
    let mut waves: Vec<usize> = (0..plan.waves.len()).collect();
    let parts = crate::par::map_runs(&mut waves, 10, |run| {
        let steps: usize = run.iter().map(|&w| plan.waves[w].len()).sum();
        let mut part = String::with_capacity(steps * 160);
        for &mut w in run {
            let _ = writeln!(part, "\nwave {}", w + 1);
            for &i in &plan.waves[w] {
                step_lines(&mut part, wf, plan, &instances, i);
            }
        }
        part
    });
    out.reserve(parts.iter().map(String::len).sum());
    for part in parts {
        out.push_str(&part);
    }
    out
}

/// How many instances each matrix step has, by its name in the file.
fn matrix_instances(wf: &Workflow) -> HashMap<&str, usize> {
    let mut count = HashMap::new();
    for s in wf.steps.iter().filter(|s| s.matrix().is_some()) {
        *count.entry(s.written_name()).or_insert(0) += 1;
    }
    count
}

/// One step of the human plan.
fn step_lines(
    out: &mut String,
    wf: &Workflow,
    plan: &Plan,
    instances: &HashMap<&str, usize>,
    i: usize,
) {
    let step = &wf.steps[i];
    out.push_str("  ");
    out.push_str(&step.name);
    out.push_str(" (");
    out.push_str(step.kind().as_str());
    if let Some(job) = step.slurm() {
        out.push_str(", on slurm");
        if let Some(c) = job.cpus {
            let _ = write!(out, ", {c} cpus");
        }
        if let Some(m) = job.mem_mb {
            let _ = write!(out, ", {m} MB");
        }
        if let Some(g) = job.gpus {
            let _ = write!(out, ", {g} gpus");
        }
        if let Some(t) = job.time {
            let _ = write!(out, ", time {t}");
        }
    }
    if let Some(t) = step.timeout() {
        let _ = write!(out, ", timeout {t}");
    }
    if step.retries() > 0 {
        let _ = write!(out, ", retries {}", step.retries());
    }
    if step.allow_failure {
        out.push_str(", allow_failure");
    }
    out.push_str(")\n");
    if !plan.upstream[i].is_empty() {
        out.push_str("    after  ");
        join_names(out, wf, instances, plan.upstream[i].iter().copied());
        out.push('\n');
    }
    let shown = wf.shown_command(i);
    let _ = match (&*shown, shown.bash_script()) {
        (_, Some(script)) => writeln!(
            out,
            "    $ {}  (bash -eo pipefail)",
            script.replace('\n', "\n      ")
        ),
        (Command::Shell(s), _) if !s.contains('\n') => writeln!(out, "    $ {s}"),
        (Command::Shell(s), _) => writeln!(out, "    $ {}", s.replace('\n', "\n      ")),
        (c @ Command::Argv(_), _) => writeln!(
            out,
            "    $ {}  (no shell)",
            c.display().replace('\n', "\n      ")
        ),
    };
    if *step.cwd != *wf.root {
        let _ = writeln!(out, "    cwd    {}", wf.shown_cwd(i).display());
    }
    // A path rendered from the caller's environment is shown masked (guarantee 12).
    for (k, input) in step.shown_paths(0).iter().enumerate() {
        out.push_str("    in     ");
        out.push_str(input);
        out.push_str(" (");
        input_state(out, wf, plan, instances, i, k);
        out.push_str(")\n");
    }
    for output in step.shown_paths(1) {
        out.push_str("    out    ");
        out.push_str(output);
        out.push('\n');
    }
}

/// Step names separated by `, `, each once in a row; every instance of a matrix step in a
/// row is its name and count (`compile (all 32 instances)`), as `needs = ["compile"]` says.
fn join_names(
    out: &mut String,
    wf: &Workflow,
    instances: &HashMap<&str, usize>,
    steps: impl Iterator<Item = usize>,
) {
    let mut ids: Vec<usize> = steps.collect();
    ids.dedup();
    // The matrix step a step is an instance of.
    let matrix_of = |s: usize| {
        let step = &wf.steps[s];
        step.matrix().map(|_| step.written_name())
    };
    let mut at = 0;
    while at < ids.len() {
        if at > 0 {
            out.push_str(", ");
        }
        let base = matrix_of(ids[at]);
        let run = ids[at..]
            .iter()
            .take_while(|&&s| base.is_some() && matrix_of(s) == base)
            .count();
        match base.and_then(|b| instances.get(b).map(|&all| (b, all))) {
            Some((b, all)) if run == all && all > 1 => {
                let _ = write!(out, "{b} (all {all} instances)");
                at += run;
            }
            _ => {
                out.push_str(&wf.steps[ids[at]].name);
                at += 1;
            }
        }
    }
}

fn input_state(
    out: &mut String,
    wf: &Workflow,
    plan: &Plan,
    instances: &HashMap<&str, usize>,
    step: usize,
    input: usize,
) {
    let makers = &plan.producers[step][input];
    if !makers.is_empty() {
        out.push_str("made by ");
        join_names(out, wf, instances, makers.iter().map(|r| r.step));
        return;
    }
    out.push_str(match wf.steps[step].input_exists[input] {
        Some(true) => "exists",
        Some(false) => "missing",
        None => "not checked: --offline",
    });
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// The one-line verdict for a file.
pub fn verdict(source: &SourceFile, checked: &Checked, strict: bool) -> String {
    let errors = checked.problems.iter().filter(|p| p.is_error()).count();
    let warnings = checked.problems.len() - errors;
    let counts = format!(
        "{errors} error{}, {warnings} warning{}",
        plural(errors),
        plural(warnings)
    );
    if errors > 0 || (strict && warnings > 0) {
        let why = if errors == 0 { " (--strict)" } else { "" };
        format!(
            "error: {} is not valid: {counts}{why}; nothing ran\n",
            source.display
        )
    } else {
        let steps = checked.workflow.as_ref().map_or(0, |w| w.steps.len());
        format!(
            "ok: {} is valid: {steps} step{}, {counts}\n",
            source.display,
            plural(steps)
        )
    }
}

/// `bgflow plan --json`: one document for all files (docs/json-output.md).
#[derive(Serialize)]
pub struct PlanDocument {
    pub version: u32,
    pub valid: bool,
    pub files: Vec<FileJson>,
}

#[derive(Serialize)]
pub struct FileJson {
    pub file: String,
    pub valid: bool,
    pub errors: usize,
    pub warnings: usize,
    pub workflow: Option<String>,
    pub plan: Option<PlanJson>,
    pub problems: Vec<ProblemJson>,
}

#[derive(Serialize)]
pub struct PlanJson {
    pub root: String,
    pub waves: Vec<Vec<String>>,
    pub steps: Vec<StepJson>,
}

#[derive(Serialize)]
pub struct StepJson {
    pub name: String,
    pub kind: &'static str,
    pub wave: usize,
    /// `{"shell": "..."}` or `{"argv": [...]}`.
    pub command: serde_json::Value,
    pub cwd: String,
    pub upstream: Vec<String>,
    pub inputs: Vec<InputJson>,
    pub outputs: Vec<String>,
    pub timeout: Option<String>,
    pub retries: u32,
    pub allow_failure: bool,
    pub tags: Vec<String>,
    /// A matrix instance: the step as written and the instance's values.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matrix: Option<MatrixJson>,
    /// A step that runs on Slurm: what its job asks for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slurm: Option<serde_json::Value>,
}

#[derive(Serialize)]
pub struct MatrixJson {
    pub step: String,
    pub values: serde_json::Map<String, serde_json::Value>,
}

#[derive(Serialize)]
pub struct InputJson {
    pub path: String,
    pub made_by: Vec<String>,
    /// `null` when the disk was not looked at (`--offline`, or made upstream).
    pub exists: Option<bool>,
}

/// The JSON entry of one file.
pub fn file_json(source: &SourceFile, checked: &Checked, strict: bool) -> FileJson {
    let errors = checked.problems.iter().filter(|p| p.is_error()).count();
    let warnings = checked.problems.len() - errors;
    let valid = errors == 0 && !(strict && warnings > 0);
    let plan = match (&checked.workflow, &checked.plan) {
        (Some(wf), Some(plan)) if valid => Some(plan_json(wf, plan)),
        _ => None,
    };
    FileJson {
        file: source.display.clone(),
        valid,
        errors,
        warnings,
        workflow: checked.workflow.as_ref().map(|w| w.name.clone()),
        plan,
        problems: checked
            .problems
            .iter()
            .map(|p| ProblemJson::new(source, p))
            .collect(),
    }
}

fn plan_json(wf: &Workflow, plan: &Plan) -> PlanJson {
    let name = |i: usize| wf.steps[i].name.clone();
    let mut wave_of = vec![0; wf.steps.len()];
    for (w, wave) in plan.waves.iter().enumerate() {
        for &s in wave {
            wave_of[s] = w + 1;
        }
    }
    PlanJson {
        root: wf.root.display().to_string(),
        waves: plan
            .waves
            .iter()
            .map(|w| w.iter().map(|&s| name(s)).collect())
            .collect(),
        steps: plan
            .order
            .iter()
            .map(|&i| {
                let s = &wf.steps[i];
                StepJson {
                    name: s.name.clone(),
                    kind: s.kind().as_str(),
                    wave: wave_of[i],
                    command: match &*wf.shown_command(i) {
                        Command::Shell(c) => serde_json::json!({ "shell": c }),
                        Command::Argv(a) => serde_json::json!({ "argv": a }),
                    },
                    cwd: wf.shown_cwd(i).display().to_string(),
                    upstream: plan.upstream[i].iter().map(|&u| name(u)).collect(),
                    inputs: s
                        .shown_paths(0)
                        .iter()
                        .enumerate()
                        .map(|(k, path)| {
                            let mut made_by: Vec<String> =
                                plan.producers[i][k].iter().map(|r| name(r.step)).collect();
                            made_by.dedup();
                            InputJson {
                                path: path.clone(),
                                made_by,
                                exists: s.input_exists[k],
                            }
                        })
                        .collect(),
                    outputs: s.shown_paths(1).to_vec(),
                    timeout: s.timeout().map(|t| t.to_string()),
                    retries: s.retries(),
                    allow_failure: s.allow_failure,
                    tags: s.more().tags.clone(),
                    matrix: s.matrix().map(|values| MatrixJson {
                        step: s.written_name().to_owned(),
                        values: values
                            .iter()
                            .map(|(k, v)| (k.clone(), serde_json::Value::from(v.as_str())))
                            .collect(),
                    }),
                    slurm: s.slurm().map(|j| {
                        serde_json::json!({
                            "cpus": j.cpus,
                            "mem_mb": j.mem_mb,
                            "gpus": j.gpus,
                            "time": j.time.map(|t| t.to_string()),
                        })
                    }),
                }
            })
            .collect(),
    }
}
