//! `bgflow run`: the arguments become a run's `Spec`, then `runs::launch`.

use std::io;

use crate::exit;
use crate::report;
use crate::runs::launch::{launch, Globals, Spec};

use super::plan_cmd::read_source;
use super::RunArgs;

pub fn run(args: &RunArgs, g: Globals<'_>) -> io::Result<u8> {
    let file = std::path::absolute(&args.file).unwrap_or_else(|_| args.file.clone());
    let spec = Spec {
        file: Some(file),
        vars: args.vars.clone(),
        only: args.only.clone(),
        keep_going: args.keep_going,
        force: args.force,
        jobs: args.jobs,
        resume: None,
        adhoc: None,
        allow_concurrent: args.allow_concurrent,
    };
    let source = match read_source(&args.file) {
        Ok(s) => s,
        Err(msg) => {
            report::stderr(&format!("error: {msg}\n"));
            return Ok(exit::USAGE);
        }
    };
    launch(
        source,
        spec,
        g,
        args.detach,
        args.progress,
        &serde_json::json!({}),
    )
}
