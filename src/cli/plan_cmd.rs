//! `bgflow plan` and `bgflow graph`.

use std::collections::{HashSet, VecDeque};
use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};

use crate::diag::{self, RenderOptions, SourceFile};
use crate::exit;
use crate::manifest::include;
use crate::plan::export;
use crate::report::{self, plan as out};
use crate::validate::{self, Options};

use super::discover;
use super::{GraphArgs, PlanArgs};

pub use crate::diag::read_source;

/// `plan` of a `bgflow.toml` that holds no `[workflow]`: its keys are checked as
/// configuration. Returns whether it is valid.
fn config_file(
    source: &SourceFile,
    json: bool,
    files: &mut Vec<out::FileJson>,
    color: bool,
    quiet: bool,
) -> io::Result<bool> {
    let problems: Vec<diag::Problem> = crate::config::check(&source.text)
        .err()
        .into_iter()
        .map(|p| *p)
        .collect();
    let valid = problems.is_empty();
    if json {
        files.push(out::FileJson {
            file: source.display.clone(),
            valid,
            errors: problems.len(),
            warnings: 0,
            workflow: None,
            plan: None,
            problems: problems
                .iter()
                .map(|p| diag::ProblemJson::new(source, p))
                .collect(),
        });
        return Ok(valid);
    }
    report::stderr(&diag::render(source, &problems, RenderOptions { color }));
    if valid && quiet {
        return Ok(valid);
    }
    report::stderr(&if valid {
        format!(
            "ok: {} holds no [workflow]: it is configuration, and its keys are valid\n",
            source.display
        )
    } else {
        format!(
            "error: {} holds no [workflow]: it is configuration, and it is not valid\n",
            source.display
        )
    });
    Ok(valid)
}

/// The workflows that include the fragment `path` (directly or not): among the files given,
/// and the default workflow found from the fragment's folder (docs/pre-commit.md).
fn includers_of(path: &Path, given: &[PathBuf]) -> Vec<PathBuf> {
    let Ok(me) = path.canonicalize() else {
        return Vec::new();
    };
    let folder = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut out: Vec<PathBuf> = Vec::new();
    let mut seen = HashSet::new();
    for candidate in given.iter().cloned().chain(discover::find_from(folder)) {
        let Ok(c) = candidate.canonicalize() else {
            continue;
        };
        if c != me && seen.insert(c) && include::included_by(&candidate).contains(&me) {
            out.push(candidate);
        }
    }
    out
}

/// `quiet` (`-q`): only errors, on stderr (and warnings under `--strict`, where they are
/// errors); no plan, no verdict of a valid file. `--json` is printed whole either way.
pub fn plan(args: &PlanArgs, color: bool, config: Option<&Path>, quiet: bool) -> io::Result<u8> {
    let opts = Options {
        vars: args.vars.clone(),
        offline: args.offline,
    };
    let mut code = exit::SUCCESS;
    let mut files = Vec::new();
    let mut printed_plans = 0;
    let mut todo: VecDeque<PathBuf> = if args.files.is_empty() {
        match discover::default_file() {
            Ok(f) => VecDeque::from([f]),
            Err(msg) => {
                report::stderr(&format!("error: {msg}\n"));
                return Ok(exit::USAGE);
            }
        }
    } else {
        args.files.iter().cloned().collect()
    };
    // Each file once, however it is reached (given twice, or as the includer of fragments).
    let mut done = HashSet::new();
    while let Some(path) = todo.pop_front() {
        if path.canonicalize().is_ok_and(|c| !done.insert(c)) {
            continue;
        }
        let source = match read_source(&path) {
            Ok(s) => s,
            Err(msg) => {
                report::stderr(&format!("error: {msg}\n"));
                code = exit::USAGE;
                continue;
            }
        };
        if path.file_name() == Some(OsStr::new(discover::FILE_NAME))
            && !discover::holds_workflow(&source.text)
        {
            // A bgflow.toml without [workflow] is configuration (pre-commit passes it too).
            let valid = config_file(&source, args.json, &mut files, color, quiet)?;
            if !valid && code == exit::SUCCESS {
                code = exit::INVALID;
            }
            continue;
        }
        let mut checked = validate::check(&source, &opts);
        // A fragment lacks [workflow] or its `name` (a `missing-key` problem); only then is
        // the file parsed again to tell.
        let maybe_fragment = checked.problems.iter().any(|p| p.code == "missing-key");
        if maybe_fragment && include::is_fragment(&source.text) {
            let includers = includers_of(&path, &args.files);
            if !includers.is_empty() {
                // A fragment is checked as part of each workflow that includes it.
                let names: Vec<String> =
                    includers.iter().map(|p| p.display().to_string()).collect();
                if !args.json && !quiet {
                    report::stderr(&format!(
                        "note: {} has no [workflow] of its own: it is checked as part of {}, which include{} it\n",
                        source.display,
                        names.join(", "),
                        if names.len() == 1 { "s" } else { "" },
                    ));
                }
                todo.extend(includers);
                continue;
            }
        }
        let root = checked.workflow.as_ref().map(|w| w.root.clone());
        let loaded = match crate::config::load_for(config, root.as_deref(), Some(&path)) {
            Ok(c) => c.config,
            Err(msg) => {
                report::stderr(&msg);
                code = exit::USAGE;
                continue;
            }
        };
        validate::slurm::check_cluster(&mut checked, loaded.executor.slurm.as_ref(), args.offline);
        let strict = args.strict || loaded.validation.strict;
        let errors = checked.has_errors();
        let warnings = checked.problems.iter().any(|p| !p.is_error());
        let valid = !(errors || (strict && warnings));
        if !valid && code == exit::SUCCESS {
            code = exit::INVALID;
        }
        if args.json {
            files.push(out::file_json(&source, &checked, strict));
            continue;
        }
        if valid && !quiet {
            if let (Some(wf), Some(plan)) = (&checked.workflow, &checked.plan) {
                let sep = if printed_plans > 0 { "\n" } else { "" };
                report::stdout(&format!("{sep}{}", out::human(wf, plan, &source)))?;
                printed_plans += 1;
            }
        }
        // `-q`: the errors only (warnings too under `--strict`), and the verdict of an
        // invalid file.
        let shown: std::borrow::Cow<[diag::Problem]> = if quiet {
            (checked.problems.iter())
                .filter(|p| p.is_error() || strict)
                .cloned()
                .collect()
        } else {
            (&checked.problems[..]).into()
        };
        report::stderr(&diag::render(&source, &shown, RenderOptions { color }));
        if !(quiet && valid) {
            report::stderr(&out::verdict(&source, &checked, strict));
        }
        drop(shown);
        // The process ends soon; freeing a 10,000-step plan piece by piece only costs time.
        std::mem::forget(checked);
    }
    if args.json {
        let doc = out::PlanDocument {
            version: 1,
            valid: code == exit::SUCCESS,
            files,
        };
        let text = serde_json::to_string_pretty(&doc).map_err(io::Error::other)?;
        report::stdout(&(text + "\n"))?;
    }
    Ok(code)
}

pub fn graph(args: &GraphArgs, color: bool) -> io::Result<u8> {
    let source = match super::discover::file_or_default(args.file.as_deref())
        .and_then(|f| read_source(&f))
    {
        Ok(s) => s,
        Err(msg) => {
            report::stderr(&format!("error: {msg}\n"));
            return Ok(exit::USAGE);
        }
    };
    let opts = Options {
        vars: args.vars.clone(),
        offline: true,
    };
    let checked = validate::check(&source, &opts);
    match (&checked.workflow, &checked.plan) {
        (Some(wf), Some(plan)) if !checked.has_errors() => {
            let names: Vec<&str> = wf.steps.iter().map(|s| s.name.as_str()).collect();
            report::stdout(&export::render(&wf.name, &names, plan, args.format))?;
            Ok(exit::SUCCESS)
        }
        _ => {
            report::stderr(&diag::render(
                &source,
                &checked.problems,
                RenderOptions { color },
            ));
            report::stderr(&out::verdict(&source, &checked, false));
            Ok(exit::INVALID)
        }
    }
}
