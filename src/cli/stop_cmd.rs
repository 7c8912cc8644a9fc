//! `bgflow stop RUN`: asks for confirmation on a terminal (unless `--yes`), then
//! `runs::stop::stop`, and says what became of the run.

use std::io::{self, IsTerminal};
use std::path::Path;

use crate::exit;
use crate::report;
use crate::runs::stop::{StopOptions, Stopped, ToStop};
use crate::runs::{self, Observer};

use super::run_cmd::failed;
use super::StopArgs;

fn confirm(question: &str) -> bool {
    if !io::stdin().is_terminal() {
        return false;
    }
    report::stderr(&format!("{question} [y/N] "));
    let mut answer = String::new();
    io::stdin().read_line(&mut answer).is_ok() && matches!(answer.trim(), "y" | "Y" | "yes")
}

/// Notes go to stderr as they come.
struct Notes;

impl Observer for Notes {
    fn note(&mut self, text: &str) {
        report::stderr(text);
    }
}

pub fn stop(args: &StopArgs, state_dir: Option<&Path>) -> io::Result<u8> {
    let mut store = match runs::open(state_dir, &mut Notes) {
        Ok(s) => s,
        Err(e) => return Ok(failed(&e)),
    };
    let opts = StopOptions {
        force: args.force,
        timeout: args.timeout.map(|t| t.as_std()),
        by: "`bgflow stop`",
    };
    let mut ask = |t: &ToStop<'_>| -> Result<bool, runs::Error> {
        if args.yes {
            return Ok(true);
        }
        if !io::stdin().is_terminal() {
            return Err(runs::Error::usage(
                "error: stop asks for confirmation; pass --yes when not on a terminal\n",
            ));
        }
        let how = if args.force { "kill" } else { "stop" };
        Ok(confirm(&format!(
            "{how} run {} ({}, {} process(es))?",
            t.id, t.workflow, t.processes
        )))
    };
    match runs::stop::stop(&mut store, &args.run, opts, &mut ask, &mut Notes) {
        Ok(Stopped::NotRunning { id, state }) => {
            report::stderr(&format!("run {id} is not running ({state})\n"));
            Ok(exit::SUCCESS)
        }
        Ok(Stopped::Declined) => {
            report::stderr("not stopped\n");
            Ok(exit::SUCCESS)
        }
        Ok(Stopped::Stopped { id, state }) => {
            report::stderr(&format!("run {id}: {state}\n"));
            Ok(exit::SUCCESS)
        }
        Err(e) => Ok(failed(&e)),
    }
}
