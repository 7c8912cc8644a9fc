//! The checks of the graph's shape and of the machine (PATH, environment, files, folders),
//! turned into located problems. Part of `validate`; the machine checks are skipped by
//! `--offline`.

use std::ops::Range;
use std::path::Path;

use super::host::{self, Host};
use super::{Command, Cx, Step};
use crate::diag::Problem;
use crate::manifest;
use crate::plan::artifacts::{compile_glob, is_glob};
use crate::plan::{self, EdgeOrigin, GraphIssue, Plan};

impl Cx<'_, '_> {
    /// `suggestions`: how many more unknown names may still get a "did you mean"; each costs
    /// a comparison with every step name (`SUGGESTION_BUDGET`).
    pub(super) fn graph_issue(
        &mut self,
        names: &[&str],
        issue: &GraphIssue,
        suggestions: &mut usize,
    ) {
        match issue {
            GraphIssue::UnknownNeed { step, index, name } => {
                let mut p = Problem::error(
                    "unknown-step",
                    format!("step `{}` needs unknown step `{name}`", names[*step]),
                )
                .at_opt(
                    self.doc
                        .item_span(&["steps", names[*step], "needs"], *index),
                    "no step by this name",
                );
                let suggestion = (*suggestions > 0)
                    .then(|| {
                        *suggestions -= 1;
                        crate::diag::did_you_mean(name, names.iter().copied())
                    })
                    .flatten();
                p = match suggestion {
                    Some(s) => p.help(format!("did you mean `{s}`?")),
                    None => p.help(format!(
                        "steps: {}",
                        crate::diag::some_names(names.iter().copied(), 10)
                    )),
                };
                self.push(p);
            }
            GraphIssue::SelfNeed { step, index } => self.push(
                Problem::error(
                    "self-dependency",
                    format!("step `{}` needs itself", names[*step]),
                )
                .at_opt(
                    self.doc
                        .item_span(&["steps", names[*step], "needs"], *index),
                    "remove this",
                )
                .help("a step cannot wait for itself"),
            ),
            GraphIssue::Cycle { steps, edges } => {
                let mut p = Problem::error(
                    "cycle",
                    format!("dependency cycle: {}", cycle_path(names, steps)),
                )
                .at_opt(
                    self.doc.key_span(&["steps", names[steps[0]]]),
                    "this step waits for itself",
                )
                .help("remove one of these dependencies");
                // Only the edges that are drawn (`diag::MAX_RELATED`) are placed.
                for e in edges.iter().take(crate::diag::MAX_RELATED) {
                    if let Some((span, label)) = self.edge_place(names, e) {
                        p = p.also(span, label);
                    }
                }
                self.push(p);
            }
            GraphIssue::DuplicateOutput {
                first,
                second,
                path,
            } => self.push(
                Problem::error(
                    "duplicate-output",
                    format!(
                        "`{path}` is an output of both `{}` and `{}`",
                        names[first.step], names[second.step]
                    ),
                )
                .at_opt(
                    self.doc
                        .item_span(&["steps", names[second.step], "outputs"], second.index),
                    "declared again here",
                )
                .also(
                    self.doc
                        .item_span(&["steps", names[first.step], "outputs"], first.index)
                        .unwrap_or(0..0),
                    "first declared here",
                )
                .help("each artifact must have one producer; give one of them another path"),
            ),
        }
    }
}

/// `a -> b -> c -> a`; a long cycle keeps its first and last steps around a count, so that a
/// cycle through 10,000 steps is one line.
fn cycle_path(names: &[&str], steps: &[usize]) -> String {
    const HEAD: usize = 4;
    const TAIL: usize = 2;
    let name = |i: &usize| names[*i];
    let mut path: Vec<String> = Vec::new();
    if steps.len() <= HEAD + TAIL + 1 {
        path.extend(steps.iter().map(|s| name(s).to_owned()));
    } else {
        path.extend(steps[..HEAD].iter().map(|s| name(s).to_owned()));
        path.push(format!("… {} more …", steps.len() - HEAD - TAIL));
        path.extend(
            steps[steps.len() - TAIL..]
                .iter()
                .map(|s| name(s).to_owned()),
        );
    }
    path.push(names[steps[0]].to_owned());
    let mut out = path.join(" -> ");
    if steps.len() > HEAD + TAIL + 1 {
        out.push_str(&format!(" ({} steps)", steps.len()));
    }
    out
}

impl Cx<'_, '_> {
    fn edge_place(&self, names: &[&str], e: &plan::Edge) -> Option<(Range<usize>, String)> {
        let to = names[e.to];
        let from = names[e.from];
        match e.origin {
            EdgeOrigin::Needs { index } => Some((
                self.doc.item_span(&["steps", to, "needs"], index)?,
                format!("{to} needs {from}"),
            )),
            EdgeOrigin::Input { index, .. } => Some((
                self.doc.item_span(&["steps", to, "inputs"], index)?,
                format!("{to} reads an output of {from}"),
            )),
            EdgeOrigin::Cwd { .. } => Some((
                self.doc.value_span(&["steps", to, "cwd"])?,
                format!("{to} runs in a folder {from} makes"),
            )),
        }
    }

    /// `env`: what the env_file adds to the caller's environment.
    pub(super) fn requires(
        &mut self,
        req: &manifest::Requires,
        root: &Path,
        host: &mut Host,
        env: &[(String, String)],
    ) {
        for (i, tool) in req.tools.iter().enumerate() {
            if !host.program_exists(tool, root) {
                self.push(
                    Problem::error(
                        "missing-tool",
                        format!("required tool `{tool}` is not on PATH"),
                    )
                    .at_opt(self.doc.item_span(&["requires", "tools"], i), "not found")
                    .help("install it, or add its folder to PATH"),
                );
            }
        }
        for (i, var) in req.env.iter().enumerate() {
            let value = std::env::var_os(var).or_else(|| {
                env.iter()
                    .rev()
                    .find(|(k, _)| k == var)
                    .map(|(_, v)| v.into())
            });
            if value.as_ref().is_none_or(|v| v.is_empty()) {
                let state = if value.is_none() { "not set" } else { "empty" };
                self.push(
                    Problem::error(
                        "missing-env",
                        format!("required environment variable `{var}` is {state}"),
                    )
                    .at_opt(self.doc.item_span(&["requires", "env"], i), state)
                    .help(format!("export {var}=... before running bgflow")),
                );
            }
        }
        for (i, pattern) in req.files.iter().enumerate() {
            if is_glob(pattern) && compile_glob(pattern).is_err() {
                self.push(
                    Problem::error("invalid-glob", format!("invalid glob `{pattern}`"))
                        .at_opt(self.doc.item_span(&["requires", "files"], i), "here"),
                );
            } else if !host::path_exists(root, pattern) {
                self.push(
                    Problem::error(
                        "missing-file",
                        format!("required file `{pattern}` does not exist"),
                    )
                    .at_opt(self.doc.item_span(&["requires", "files"], i), "no match")
                    .help(format!("looked in {}", root.display())),
                );
            }
        }
    }

    /// The machine's checks of one step; returns whether each input exists on disk.
    pub(super) fn step_on_host(
        &mut self,
        steps: &[Step],
        index: usize,
        plan: &Plan,
        root: &Path,
        host: &mut Host,
    ) -> Vec<Option<bool>> {
        let step = &steps[index];
        let mut input_exists = step.input_exists.to_vec();
        let name = step.name.as_str();
        let producers = &plan.producers[index];
        for (i, pattern) in step.inputs.iter().enumerate() {
            // An invalid glob was reported already; calling it missing too would mislead.
            let bad_glob = is_glob(pattern) && compile_glob(pattern).is_err();
            if !producers[i].is_empty() || bad_glob {
                continue;
            }
            let exists = host::path_exists(root, pattern);
            input_exists[i] = Some(exists);
            if !exists {
                // Never a value of the caller's environment (guarantee 12).
                let pattern = &step.shown_paths(0)[i];
                self.push(
                    Problem::error("missing-input", format!("input `{pattern}` of step `{name}` does not exist and no step makes it"))
                        .at_opt(self.doc.item_span(&["steps", name, "inputs"], i), "missing")
                        .help(format!("create it before the run, or add a step with `outputs = [\"{pattern}\"]` (looked in {})", root.display())),
                );
            }
        }
        if step.more().cwd.is_some() && plan.cwd_producers[index].is_empty() && !step.cwd.is_dir() {
            self.push(
                Problem::error(
                    "missing-cwd",
                    format!(
                        "working folder `{}` of step `{name}` does not exist",
                        match step.more().cwd.as_deref() {
                            // Never a value of the caller's environment (guarantee 12).
                            Some(c) if c.contains("env") && super::template::is_template(c) =>
                                root.join(c).display().to_string(),
                            _ => step.cwd.display().to_string(),
                        }
                    ),
                )
                .at_opt(self.doc.value_span(&["steps", name, "cwd"]), "missing")
                .help("create the folder, or have an upstream step output it as `dir/`"),
            );
        }
        // A string `run` needs its shell (bash under `shell = "bash"`), and the script's
        // program is checked.
        let script = match &step.command {
            Command::Shell(s) if !s.is_empty() => {
                Some(("sh", s.as_str(), "string `run` commands need it"))
            }
            c => c
                .bash_script()
                .map(|s| ("bash", s, "`shell = \"bash\"` needs it")),
        };
        let program = match (script, &step.command) {
            (Some((shell, script, needs)), _) => {
                if !host.program_exists(shell, root) {
                    self.push(
                        Problem::error(
                            "missing-tool",
                            format!("`{shell}` is not on PATH; {needs}"),
                        )
                        .at_opt(
                            self.doc.value_span(&["steps", name, "run"]),
                            format!("runs under {shell} -c"),
                        ),
                    );
                }
                host::shell_program(script)
            }
            (None, Command::Argv(argv)) => argv.first().cloned(),
            (None, Command::Shell(_)) => None,
        };
        if let Some(program) = program {
            // Named as written when it may hold a value of the caller's environment.
            let from_env = step
                .run
                .as_deref()
                .is_some_and(super::rendering::mentions_env);
            let made_upstream = program.contains('/') && {
                let want = crate::plan::artifacts::normalized(&program);
                plan.with_upstream(index).iter().any(|&u| {
                    steps[u]
                        .outputs
                        .iter()
                        .any(|o| crate::plan::artifacts::normalized(o) == want)
                })
            };
            if !made_upstream && !host.program_exists(&program, &step.cwd) {
                let what = if from_env {
                    format!("the program of step `{name}` (from the caller's environment) does not exist or is not on PATH")
                } else if program.contains('/') {
                    format!(
                        "program `{program}` of step `{name}` does not exist or is not executable"
                    )
                } else {
                    format!("program `{program}` of step `{name}` is not on PATH")
                };
                self.push(
                    Problem::error("missing-tool", what)
                        .at_opt(
                            self.doc.value_span(&["steps", name, "run"]),
                            "runs this program",
                        )
                        .help("install it, fix the name, or add its folder to PATH"),
                );
            }
        }
        for (i, tool) in step.more().tools.iter().enumerate() {
            if !host.program_exists(tool, &step.cwd) {
                self.push(
                    Problem::error(
                        "missing-tool",
                        format!("tool `{tool}` of step `{name}` is not on PATH"),
                    )
                    .at_opt(
                        self.doc.item_span(&["steps", name, "tools"], i),
                        "not found",
                    )
                    .help("install it, or add its folder to PATH"),
                );
            }
        }
        for (i, out) in step.outputs.iter().enumerate() {
            if is_glob(out) {
                continue;
            }
            let target = root.join(crate::plan::artifacts::normalized(out).trim_end_matches('/'));
            if let Err(why) = host.can_create(&target, out.ends_with('/')) {
                // Never a value of the caller's environment (guarantee 12).
                let shown = &step.shown_paths(1)[i];
                let (out, why) = if shown == out {
                    (out, why)
                } else {
                    (shown, why.replace(out.as_str(), shown))
                };
                self.push(
                    Problem::error(
                        "unwritable-output",
                        format!("output `{out}` of step `{name}` cannot be written: {why}"),
                    )
                    .at_opt(
                        self.doc.item_span(&["steps", name, "outputs"], i),
                        "not writable",
                    ),
                );
            }
        }
        input_exists
    }
}
