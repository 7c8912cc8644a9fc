//! Rendering a checked workflow again: with the real run at run time (`set_run`), and as
//! `plan` shows it, with the caller's environment masked (`shown_command`, `shown_cwd`).
//! Also what a step's templates see of its paths: relative to its working folder.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::template::{self, Mode, Renderer, RunInfo, StepInfo};
use super::{Command, Workflow};
use crate::manifest::{self, RunSpec};

/// Whether a template names the run (`run.id`, `run.dir`), which `plan` knows only as a
/// placeholder.
pub(super) fn names_the_run(text: &str) -> bool {
    template::is_template(text) && text.contains("run")
}

impl Workflow {
    /// Gives the templates the real run (id and folder) and renders again what was rendered
    /// with the plan's placeholder `<run-id>`: `env` values and `cwd` that name the run.
    /// Commands are rendered for each attempt anyway (`render_command`).
    pub fn set_run(&mut self, run: &RunInfo) {
        self.renderer.set_run(run);
        let renderer = &self.renderer;
        for (i, text) in &self.env_of_run {
            if let Ok(out) = renderer.render(text, Mode::Plain, None) {
                self.env[*i].1 = out;
            }
        }
        for step in &mut self.steps {
            let Some(more) = step.more.as_deref_mut() else {
                continue;
            };
            if !more.env_of_run.is_empty() || more.cwd.as_deref().is_some_and(names_the_run) {
                let instance = more.instance.clone();
                let info = StepInfo {
                    name: &step.name,
                    inputs: &step.inputs,
                    outputs: &step.outputs,
                    attempt: 1,
                    matrix: instance.as_deref().map(|i| i.values.as_slice()),
                };
                if let Some(c) = more.cwd.as_deref().filter(|c| names_the_run(c)) {
                    if let Ok(rel) = renderer.render(c, Mode::Plain, Some(&info)) {
                        step.cwd = Arc::from(self.root.join(rel));
                    }
                }
                let relative =
                    [&step.inputs, &step.outputs].map(|p| cwd_relative(&self.root, &step.cwd, p));
                let info = StepInfo {
                    inputs: relative[0].as_deref().unwrap_or(&step.inputs),
                    outputs: relative[1].as_deref().unwrap_or(&step.outputs),
                    ..info
                };
                for (i, text) in &more.env_of_run {
                    if let Ok(out) = renderer.render(text, Mode::Plain, Some(&info)) {
                        more.env[*i].1 = out;
                    }
                }
            }
        }
    }
}

impl Workflow {
    /// Step `index`'s command as `plan` shows it: a value of the caller's environment is
    /// `<env:NAME>` (the step's process alone sees the value).
    pub fn shown_command(&self, index: usize) -> std::borrow::Cow<'_, Command> {
        use std::borrow::Cow;
        let step = &self.steps[index];
        let Some(run) = step.run.as_deref().filter(|r| mentions_env(r)) else {
            return Cow::Borrowed(&step.command);
        };
        Cow::Owned(self.with_step_info(index, 1, |info| {
            let shown = |text: &str, mode| {
                self.renderer
                    .render_shown(text, mode, Some(info))
                    .unwrap_or_else(|_| text.to_owned())
            };
            match run {
                RunSpec::Shell(s) => script_under(shell_of(&step.command), shown(s, Mode::Shell)),
                RunSpec::Argv(argv) => {
                    Command::Argv(argv.iter().map(|a| shown(a, Mode::Plain)).collect())
                }
            }
        }))
    }

    /// Step `index`'s working folder as `plan` shows it (see `shown_command`).
    pub fn shown_cwd(&self, index: usize) -> PathBuf {
        let step = &self.steps[index];
        match step.more().cwd.as_deref() {
            Some(c) if c.contains("env") && template::is_template(c) => {
                // `cwd` sees the paths as written (relative to the root).
                let info = StepInfo {
                    name: &step.name,
                    inputs: &step.inputs,
                    outputs: &step.outputs,
                    attempt: 1,
                    matrix: step.matrix(),
                };
                let rel = self
                    .renderer
                    .render_shown(c, Mode::Plain, Some(&info))
                    .unwrap_or_else(|_| c.to_owned());
                self.root.join(rel)
            }
            _ => step.cwd.to_path_buf(),
        }
    }
}

/// `paths` (relative to `root`, as written) relative to `cwd`, for `{{ step.inputs }}` and
/// `{{ step.outputs }}` in what runs there; `None` when `cwd` is the root. A folder that is
/// not plainly under the root (`..`, a link) gets absolute paths.
pub(crate) fn cwd_relative(root: &Path, cwd: &Path, paths: &[String]) -> Option<Vec<String>> {
    use std::path::Component;
    if cwd == root || paths.is_empty() {
        return None;
    }
    let under: Option<Vec<&std::ffi::OsStr>> = cwd.strip_prefix(root).ok().and_then(|rel| {
        rel.components()
            .filter(|c| *c != Component::CurDir)
            .map(|c| match c {
                Component::Normal(part) => Some(part),
                _ => None,
            })
            .collect()
    });
    let absolute = || {
        paths
            .iter()
            .map(|p| root.join(p).to_string_lossy().into_owned())
            .collect()
    };
    let base = match under {
        // `sub/..`-like folders and folders elsewhere.
        None => return Some(absolute()),
        // `.`: the root itself.
        Some(b) if b.is_empty() => return None,
        Some(b) => b,
    };
    Some(
        paths
            .iter()
            .map(|p| {
                let path = Path::new(p);
                if path.is_absolute() {
                    return p.clone();
                }
                let parts: Vec<&std::ffi::OsStr> = path
                    .components()
                    .filter(|c| *c != Component::CurDir)
                    .map(Component::as_os_str)
                    .collect();
                let common = base.iter().zip(&parts).take_while(|(a, b)| a == b).count();
                let mut out = std::path::PathBuf::new();
                for _ in common..base.len() {
                    out.push("..");
                }
                for part in &parts[common..] {
                    out.push(part);
                }
                let mut text = out.to_string_lossy().into_owned();
                if text.is_empty() {
                    text.push('.');
                }
                if p.ends_with('/') && !text.ends_with('/') {
                    text.push('/');
                }
                text
            })
            .collect(),
    )
}

pub(super) fn mentions_env(run: &RunSpec) -> bool {
    let uses = |t: &str| t.contains("env") && template::is_template(t);
    match run {
        RunSpec::Shell(s) => uses(s),
        RunSpec::Argv(argv) => argv.iter().any(|a| uses(a)),
    }
}

/// A step's `run` rendered into the command that starts: a string under `shell`.
pub(super) fn render_run(
    renderer: &Renderer,
    run: Option<&RunSpec>,
    info: &StepInfo<'_>,
    shell: manifest::Shell,
) -> Result<Command, (template::TemplateError, Option<usize>)> {
    match run {
        Some(RunSpec::Shell(s)) => renderer
            .render(s, Mode::Shell, Some(info))
            .map(|script| script_under(shell, script))
            .map_err(|e| (e, None)),
        Some(RunSpec::Argv(argv)) => argv
            .iter()
            .enumerate()
            .map(|(i, a)| {
                renderer
                    .render(a, Mode::Plain, Some(info))
                    .map_err(|e| (e, Some(i)))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Command::Argv),
        None => Ok(Command::Argv(Vec::new())),
    }
}

/// The shell a checked command runs its string `run` under: a bash script is its argv.
pub(super) fn shell_of(command: &Command) -> manifest::Shell {
    match command.bash_script() {
        Some(_) => manifest::Shell::Bash,
        None => manifest::Shell::Sh,
    }
}

/// A rendered string `run` as the command that starts it under `shell`.
fn script_under(shell: manifest::Shell, script: String) -> Command {
    match shell {
        manifest::Shell::Sh => Command::Shell(script),
        manifest::Shell::Bash => Command::Argv(
            BASH.iter()
                .map(|w| (*w).to_owned())
                .chain([script])
                .collect(),
        ),
    }
}

/// How a string `run` starts under `shell = "bash"`, the script after it: GitHub Actions'
/// `shell: bash`, so that a failing command of a pipeline (`cargo build | tee build.log`)
/// or of a list fails the step instead of vanishing behind the last command's status.
pub(super) const BASH: [&str; 6] = ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c"];

#[cfg(test)]
mod cwd_tests {
    use super::cwd_relative;
    use std::path::Path;

    #[test]
    fn paths_are_relative_to_the_steps_folder() {
        let root = Path::new("/w");
        let paths = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let got = |cwd: &str, v: &[&str]| cwd_relative(root, Path::new(cwd), &paths(v));
        assert_eq!(got("/w", &["a"]), None);
        assert_eq!(got("/w/.", &["a"]), None);
        assert_eq!(
            got("/w/sub", &["sub/out.txt", "out.txt", "./sub/d/", "/abs"]),
            Some(paths(&["out.txt", "../out.txt", "d/", "/abs"]))
        );
        assert_eq!(
            got("/w/a/b", &["a/c/x", "a/b"]),
            Some(paths(&["../c/x", "."]))
        );
        assert_eq!(got("/w/../x", &["a"]), Some(paths(&["/w/a"])));
        assert_eq!(got("/elsewhere", &["a"]), Some(paths(&["/w/a"])));
    }
}
