//! `bgflow run`: validate exactly as `plan` does, then execute in the foreground.

use std::io::{self, IsTerminal};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::diag::{self, RenderOptions};
use crate::exec::{self, RunOptions, Sink};
use crate::exit;
use crate::report::live::{self, Bars, Plain};
use crate::report::{self, summary};
use crate::validate::{self, template::RunInfo, Options};

use super::plan_cmd::read_source;
use super::RunArgs;

/// A short, random run id: 8 characters of [0-9a-z].
pub fn new_run_id() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::rng();
    (0..8)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Creates the state folder (mode 0700) if needed.
pub fn ensure_state_dir(dir: &Path) -> io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

pub fn run(args: &RunArgs, state_dir: Option<&Path>, color: bool, quiet: bool) -> io::Result<u8> {
    let source = match read_source(&args.file) {
        Ok(s) => s,
        Err(msg) => {
            report::stderr(&format!("error: {msg}\n"));
            return Ok(exit::USAGE);
        }
    };
    let opts = Options {
        vars: args.vars.clone(),
        offline: false,
    };
    let checked = validate::check(&source, &opts);
    if checked.has_errors() || !checked.problems.is_empty() && !quiet {
        report::stderr(&diag::render(
            &source,
            &checked.problems,
            RenderOptions { color },
        ));
    }
    let (Some(mut wf), Some(plan)) = (checked.workflow, checked.plan) else {
        report::stderr(&format!(
            "error: {} is not valid; nothing ran\n",
            source.display
        ));
        return Ok(exit::INVALID);
    };
    if checked.problems.iter().any(|p| p.is_error()) {
        let errors = checked.problems.iter().filter(|p| p.is_error()).count();
        report::stderr(&format!(
            "error: {} is not valid: {errors} error{}; nothing ran\n",
            source.display,
            if errors == 1 { "" } else { "s" }
        ));
        return Ok(exit::INVALID);
    }

    let mut only = Vec::new();
    for name in &args.only {
        match wf.steps.iter().position(|s| &s.name == name) {
            Some(i) => only.push(i),
            None => {
                let names: Vec<&str> = wf.steps.iter().map(|s| s.name.as_str()).collect();
                let hint = diag::did_you_mean(name, names.iter().copied())
                    .map(|c| format!(" (did you mean `{c}`?)"))
                    .unwrap_or_default();
                report::stderr(&format!("error: --only {name}: no such step{hint}\n"));
                return Ok(exit::USAGE);
            }
        }
    }
    let state_dir: PathBuf = state_dir.map_or_else(|| wf.root.join(".bgflow"), Path::to_path_buf);
    if let Err(e) = ensure_state_dir(&state_dir) {
        report::stderr(&format!(
            "error: cannot create the state folder {}: {e}\n",
            state_dir.display()
        ));
        return Ok(exit::INTERNAL);
    }
    let run_id = new_run_id();
    let run_dir = state_dir.join("runs").join(&run_id);
    wf.renderer.set_run(&RunInfo {
        id: run_id.clone(),
        dir: run_dir.display().to_string(),
    });
    let jobs = args
        .jobs
        .or(wf.max_parallel)
        .map(|n| n as usize)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let run_opts = RunOptions {
        run_id,
        state_dir,
        jobs,
        only,
        keep_going: args.keep_going,
        force: args.force,
    };
    let names: Vec<String> = wf.steps.iter().map(|s| s.name.clone()).collect();
    let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty());
    let mut sink: Box<dyn Sink> =
        if live::use_bars(args.progress, io::stderr().is_terminal(), ci) && !quiet {
            let total = if run_opts.only.is_empty() {
                names.len()
            } else {
                plan_selected(&plan, &run_opts.only)
            };
            Box::new(Bars::new(names, total))
        } else {
            Box::new(Plain::new(names, quiet))
        };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            report::stderr(&format!("error: cannot start the async runtime: {e}\n"));
            return Ok(exit::INTERNAL);
        }
    };
    let wf = Arc::new(wf);
    let report = runtime.block_on(exec::execute(wf, &plan, run_opts, sink.as_mut()));
    drop(sink);
    if let Err(e) = summary::write_json(&report) {
        report::stderr(&format!("warning: cannot write summary.json: {e}\n"));
    }
    report::stderr(&summary::text(&report));
    Ok(report.exit_code())
}

fn plan_selected(plan: &crate::plan::Plan, only: &[usize]) -> usize {
    let mut all: Vec<usize> = only.iter().flat_map(|&s| plan.with_upstream(s)).collect();
    all.sort_unstable();
    all.dedup();
    all.len()
}
