//! An ad-hoc command as a detached one-step run (`bgflow start`, `start_process`), and
//! `resume`: a new run of what did not succeed in an earlier one.

use std::path::{Path, PathBuf};

use super::launch::{launch, Launched, Mode, Started};
use super::spec::{source_of, Adhoc, ResumeOf, Spec};
use super::{Error, Observer, Places};
use crate::validate;
use crate::validate::host::is_assignment;

/// One command to run in the background, as `bgflow start` and `start_process` ask for it.
#[derive(Debug, Clone, Default)]
pub struct StartCommand {
    /// The program and its arguments.
    pub argv: Vec<String>,
    /// The run's (and step's) name; default: the program's name.
    pub name: Option<String>,
    /// `task`, `service` or `test`.
    pub kind: String,
    /// Stop the command after this long.
    pub timeout: Option<crate::manifest::Duration>,
    /// Free metadata stored with the run.
    pub meta: Vec<(String, String)>,
    /// The folder it runs in; default: the current one.
    pub cwd: Option<PathBuf>,
}

/// The step name of a command: `name`, else the program's file name with what a step
/// name may not hold replaced by `-`. For a shell line (`sh -c LINE`) the program is the
/// first word of one of its commands (split at `&&`, `||`, `;` and `|`) that is not
/// `NAME=value` or `exec`, passing over commands that only set the scene (`cd src`,
/// `source .venv/bin/activate`, `export X=1`): so that runs are not all `sh`, nor `cd`.
fn step_name(argv: &[String], name: Option<&str>) -> String {
    if let Some(n) = name {
        return n.to_owned();
    }
    let program = match argv {
        [sh, c, line] if sh == "sh" && c == "-c" => shell_program(line).or(Some(sh)),
        _ => argv.first().map(String::as_str),
    };
    let prog = program.and_then(|p| Path::new(p).file_name()).map_or_else(
        || "command".to_owned(),
        |n| n.to_string_lossy().into_owned(),
    );
    let clean: String = prog
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if clean.is_empty() {
        "command".to_owned()
    } else {
        clean
    }
}

/// The program a shell line is run for: the first command's program that is not one of
/// the builtins that only prepare or guard the ones after it, else the first program at all. A
/// name, not a parse: quotes are not followed.
fn shell_program(line: &str) -> Option<&str> {
    const SETUP: [&str; 16] = [
        "cd", "pushd", "source", ".", "export", "set", "umask", "ulimit", "unset", "trap", "exit",
        "[", "test", "true", ":", "echo",
    ];
    let programs: Vec<&str> = line
        .split(['&', '|', ';'])
        .filter_map(|command| {
            command
                .split_whitespace()
                .find(|w| *w != "exec" && !is_assignment(w) && !is_redirection_left(w))
        })
        .collect();
    programs
        .iter()
        .find(|p| !SETUP.contains(p))
        .or(programs.first())
        .copied()
}

/// What splitting a line at `&` leaves of a redirection such as `2>&1`: the `1`, or a
/// word that starts with `>` or `<`. Not a program.
fn is_redirection_left(word: &str) -> bool {
    word.starts_with(['>', '<']) || word.bytes().all(|b| b.is_ascii_digit())
}

/// Records and starts one command as a detached run; its state folder is the one found
/// from its folder upward (or `.bgflow/` there) unless `places` names one.
pub fn start(
    cmd: &StartCommand,
    places: &Places,
    obs: &mut dyn Observer,
) -> Result<Launched, Error> {
    let cwd = match &cmd.cwd {
        Some(c) => std::path::absolute(c).unwrap_or_else(|_| c.clone()),
        None => std::env::current_dir()
            .map_err(|e| Error::internal(format!("error: cannot write output: {e}\n")))?,
    };
    if cmd.argv.is_empty() {
        return Err(Error::usage("error: the command is empty\n"));
    }
    let name = step_name(&cmd.argv, cmd.name.as_deref());
    if !validate::valid_name(&name) {
        return Err(Error::usage(format!(
            "error: --name {name}: letters, digits, '-' and '_' only\n"
        )));
    }
    let state_dir = places
        .state_dir
        .clone()
        .or_else(|| super::find_state_dir(&cwd))
        .unwrap_or_else(|| cwd.join(".bgflow"));
    let spec = Spec {
        adhoc: Some(Adhoc {
            name,
            kind: cmd.kind.clone(),
            timeout: cmd.timeout.map(|t| t.to_string()),
            argv: cmd.argv.clone(),
            cwd,
        }),
        ..Spec::default()
    };
    let source = source_of(&spec).map_err(|e| Error::usage(format!("error: {e}\n")))?;
    let meta = serde_json::Value::Object(
        cmd.meta
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect(),
    );
    let places = Places {
        state_dir: Some(state_dir),
        config: places.config.clone(),
    };
    match launch(source, spec, Mode::Detached, &places, &meta, obs)? {
        Started::Detached(l) => Ok(l),
        // A detached launch never runs here.
        Started::Finished { code } => Err(Error::new(code, "")),
    }
}

/// What to resume, and how.
#[derive(Debug, Clone)]
pub struct Resume {
    /// A run id, or any unique prefix of one; `None`: the newest run in the state folder.
    pub run: Option<String>,
    pub mode: Mode,
    /// Run even while another run of the same workflow root writes the same outputs.
    pub allow_concurrent: bool,
}

/// What `resume` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resumed {
    /// Every step of `run` succeeded: nothing to resume.
    NothingToDo { run: String },
    /// A new run of what did not succeed in `from` (the run resumed, its id in full).
    Started { from: String, started: Started },
}

/// A new run of the same workflow and options that runs what did not succeed in the run,
/// and what did but is no longer up to date (guarantee 9): a step is kept only while its
/// command, environment, inputs and outputs are unchanged since the success it stands on,
/// and a service is never kept.
pub fn resume(req: &Resume, places: &Places, obs: &mut dyn Observer) -> Result<Resumed, Error> {
    let state_dir = places.state_dir.as_deref();
    let store = super::open(state_dir, obs)?;
    let id = match &req.run {
        Some(prefix) => store
            .resolve(prefix)
            .map_err(|e| Error::usage(format!("error: {e}\n")))?,
        None => super::newest(&store, "resume")?,
    };
    let (row, steps) = match (store.run(&id), store.steps(&id)) {
        (Ok(Some(r)), Ok(s)) => (r, s),
        (Err(e), _) | (_, Err(e)) => return Err(super::internal(&e)),
        (Ok(None), _) => return Err(Error::usage("")),
    };
    if row.is_active() {
        return Err(Error::usage(format!(
            "error: run {id} is still {}; stop it first or wait for it\n",
            row.state
        )));
    }
    let mut spec: Spec = serde_json::from_str(&row.spec).map_err(|e| {
        Error::internal(format!(
            "error: run {id} cannot be resumed: its spec is unreadable: {e}\n"
        ))
    })?;
    spec.allow_concurrent = req.allow_concurrent;
    // What succeeded in the run, kept by the new run only while it is up to date.
    let succeeded: Vec<String> = steps
        .iter()
        .filter(|s| {
            s.state == "succeeded"
                || (s.state == "skipped"
                    && s.reason.as_deref().is_some_and(|r| {
                        r.starts_with("up to date") || r.starts_with("succeeded in run")
                    }))
        })
        .map(|s| s.name.clone())
        .collect();
    if succeeded.len() == steps.len() && !steps.is_empty() {
        return Ok(Resumed::NothingToDo { run: id });
    }
    spec.resume = Some(ResumeOf {
        run: id.clone(),
        succeeded,
    });
    let source = source_of(&spec).map_err(|e| Error::usage(format!("error: {e}\n")))?;
    let dir = state_dir.map(Path::to_path_buf).or_else(|| {
        Path::new(&row.log_dir)
            .parent()
            .and_then(Path::parent)
            .map(Path::to_path_buf)
    });
    let meta = serde_json::json!({ "resumed_from": id });
    let places = Places {
        state_dir: dir,
        config: places.config.clone(),
    };
    launch(source, spec, req.mode, &places, &meta, obs)
        .map(|started| Resumed::Started { from: id, started })
}

#[cfg(test)]
mod tests {
    use super::step_name;

    #[test]
    fn a_command_is_named_after_its_program_with_what_a_name_may_not_hold_replaced() {
        let argv = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            step_name(&argv(&["/usr/bin/python3.12", "x"]), None),
            "python3-12"
        );
        assert_eq!(step_name(&argv(&["sleep"]), Some("nap")), "nap");
        assert_eq!(step_name(&argv(&["/"]), None), "command");
        assert_eq!(step_name(&[], None), "command");
        let sh = |line: &str| step_name(&argv(&["sh", "-c", line]), None);
        assert_eq!(sh("PYTHONPATH=src python3 -m pytest -q"), "python3");
        assert_eq!(sh("exec ./serve.sh --port 80"), "serve-sh");
        assert_eq!(sh("A=1 B=2"), "sh", "only assignments: the shell's name");
        assert_eq!(sh("  "), "sh");
        assert_eq!(sh("--x=1 make"), "--x-1", "not an assignment: a word");
        assert_eq!(sh("cd docs && make html"), "make");
        assert_eq!(sh(". .venv/bin/activate; pytest -x"), "pytest");
        assert_eq!(sh("export A=1 && cd x || exit 1; exec ./run.sh"), "run-sh");
        assert_eq!(sh("[ -f x ] && echo go && python3 x.py"), "python3");
        assert_eq!(sh("cd build"), "cd", "only scene-setting: its own name");
        assert_eq!(sh("make 2>&1 | tee build.log"), "make");
        assert_eq!(
            sh("cd docs 2>&1 && make html"),
            "make",
            "not the `1` of `2>&1`"
        );
    }
}
