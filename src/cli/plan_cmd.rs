//! `bgflow plan` and `bgflow graph`.

use std::io;
use std::path::Path;

use crate::diag::{self, RenderOptions};
use crate::exit;
use crate::plan::export;
use crate::report::{self, plan as out};
use crate::validate::{self, Options};

use super::{GraphArgs, PlanArgs};

pub use crate::diag::read_source;

pub fn plan(args: &PlanArgs, color: bool, config: Option<&Path>) -> io::Result<u8> {
    let opts = Options {
        vars: args.vars.clone(),
        offline: args.offline,
    };
    let mut code = exit::SUCCESS;
    let mut files = Vec::new();
    let mut printed_plans = 0;
    for path in &args.files {
        let source = match read_source(path) {
            Ok(s) => s,
            Err(msg) => {
                report::stderr(&format!("error: {msg}\n"));
                code = exit::USAGE;
                continue;
            }
        };
        let checked = validate::check(&source, &opts);
        let root = checked.workflow.as_ref().map(|w| w.root.clone());
        let strict = args.strict
            || match crate::config::load_for(config, root.as_deref(), Some(path)) {
                Ok(c) => c.config.validation.strict,
                Err(msg) => {
                    report::stderr(&msg);
                    code = exit::USAGE;
                    continue;
                }
            };
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
        if valid {
            if let (Some(wf), Some(plan)) = (&checked.workflow, &checked.plan) {
                let sep = if printed_plans > 0 { "\n" } else { "" };
                report::stdout(&format!("{sep}{}", out::human(wf, plan, &source)))?;
                printed_plans += 1;
            }
        }
        report::stderr(&diag::render(
            &source,
            &checked.problems,
            RenderOptions { color },
        ));
        report::stderr(&out::verdict(&source, &checked, strict));
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
    let source = match read_source(&args.file) {
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
