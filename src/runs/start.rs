//! `bgflow start` (one ad-hoc command as a detached run) and `bgflow resume`.

use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::exit;
use crate::report::{self, live::ProgressChoice};
use crate::validate;

use super::launch::{launch, source_of, Adhoc, Globals, Spec};
use crate::cli::StartArgs;

/// The run `resume` continues, and its steps that succeeded (or were kept or up to date):
/// those are kept while they are up to date, even under `--force`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResumeOf {
    pub run: String,
    #[serde(default)]
    pub succeeded: Vec<String>,
}

pub fn start(args: &StartArgs, g: Globals<'_>) -> io::Result<u8> {
    let state_dir = g.state_dir;
    let cwd = std::env::current_dir()?;
    let name = args.name.clone().unwrap_or_else(|| {
        let prog = Path::new(&args.command[0]).file_name().map_or_else(
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
    });
    if !validate::valid_name(&name) {
        report::stderr(&format!(
            "error: --name {name}: letters, digits, '-' and '_' only\n"
        ));
        return Ok(exit::USAGE);
    }
    let state_dir = state_dir
        .map(Path::to_path_buf)
        .or_else(|| crate::cli::history_cmd::find_state_dir(&cwd))
        .unwrap_or_else(|| cwd.join(".bgflow"));
    let spec = Spec {
        adhoc: Some(Adhoc {
            name,
            kind: args.kind.clone(),
            timeout: args.timeout.map(|t| t.to_string()),
            argv: args.command.clone(),
            cwd,
        }),
        ..Spec::default()
    };
    let source = match source_of(&spec) {
        Ok(s) => s,
        Err(e) => {
            report::stderr(&format!("error: {e}\n"));
            return Ok(exit::USAGE);
        }
    };
    let meta = serde_json::Value::Object(
        args.meta
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect(),
    );
    let g = Globals {
        state_dir: Some(&state_dir),
        ..g
    };
    launch(source, spec, g, true, ProgressChoice::Never, &meta)
}

/// `bgflow resume RUN`: a new run of the same workflow and options that runs what did not
/// succeed in RUN, and what did but is no longer up to date (guarantee 9): a step is kept
/// only while its command, environment, inputs and outputs are unchanged since the success
/// it stands on, and a service is never kept.
pub fn resume(args: &crate::cli::ResumeArgs, g: Globals<'_>) -> io::Result<u8> {
    let state_dir = g.state_dir;
    let store = match crate::cli::history_cmd::open(state_dir) {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    let id = match store.resolve(&args.run) {
        Ok(id) => id,
        Err(e) => {
            report::stderr(&format!("error: {e}\n"));
            return Ok(exit::USAGE);
        }
    };
    let (row, steps) = match (store.run(&id), store.steps(&id)) {
        (Ok(Some(r)), Ok(s)) => (r, s),
        (Err(e), _) | (_, Err(e)) => {
            report::stderr(&format!("error: {e}\n"));
            return Ok(exit::INTERNAL);
        }
        (Ok(None), _) => return Ok(exit::USAGE),
    };
    if row.is_active() {
        report::stderr(&format!(
            "error: run {id} is still {}; stop it first or wait for it\n",
            row.state
        ));
        return Ok(exit::USAGE);
    }
    let mut spec: Spec = match serde_json::from_str(&row.spec) {
        Ok(s) => s,
        Err(e) => {
            report::stderr(&format!(
                "error: run {id} cannot be resumed: its spec is unreadable: {e}\n"
            ));
            return Ok(exit::INTERNAL);
        }
    };
    spec.allow_concurrent = args.allow_concurrent;
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
        report::stderr(&format!("run {id} succeeded entirely; nothing to resume\n"));
        return Ok(exit::SUCCESS);
    }
    spec.resume = Some(ResumeOf {
        run: id.clone(),
        succeeded,
    });
    let source = match source_of(&spec) {
        Ok(s) => s,
        Err(e) => {
            report::stderr(&format!("error: {e}\n"));
            return Ok(exit::USAGE);
        }
    };
    let dir = state_dir.map(Path::to_path_buf).or_else(|| {
        Path::new(&row.log_dir)
            .parent()
            .and_then(Path::parent)
            .map(Path::to_path_buf)
    });
    let meta = serde_json::json!({ "resumed_from": id });
    let g = Globals {
        state_dir: dir.as_deref(),
        ..g
    };
    launch(source, spec, g, args.detach, args.progress, &meta)
}
