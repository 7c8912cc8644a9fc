//! `bgflow run`, the hidden `__supervise`, and how the run commands show what `runs::`
//! says: the arguments become `runs::` options, and `Stderr` prints what a run has to say.

use std::io::{self, IsTerminal};
use std::path::Path;
use std::sync::Arc;

use crate::diag::{self, Problem, RenderOptions, SourceFile};
use crate::exec::{RunReport, Sink};
use crate::exit;
use crate::report::live::{self, Bars, Plain, ProgressChoice};
use crate::report::{self, summary};
use crate::runs::{self, Launched, Mode, Observer, Places, Started, WorkflowRun};

use super::RunArgs;

/// The global flags every run command needs.
#[derive(Debug, Clone, Copy)]
pub struct Globals<'a> {
    pub state_dir: Option<&'a Path>,
    pub config: Option<&'a Path>,
    pub color: bool,
    pub quiet: bool,
    /// `-v`: say how the steps are contained.
    pub verbose: bool,
}

impl Globals<'_> {
    pub fn places(&self) -> Places {
        Places {
            state_dir: self.state_dir.map(Path::to_path_buf),
            config: self.config.map(Path::to_path_buf),
        }
    }

    /// What a run has to say, printed on stderr as these flags want it.
    pub fn stderr(&self, progress: ProgressChoice) -> Stderr {
        Stderr {
            color: self.color,
            quiet: self.quiet,
            verbose: self.verbose,
            progress,
        }
    }
}

/// Prints on stderr what `runs::` has to say: problems drawn with their source, warnings,
/// and for a foreground run its progress and summary.
pub struct Stderr {
    pub color: bool,
    /// `-q`: only errors (and a failed run's summary).
    pub quiet: bool,
    pub verbose: bool,
    pub progress: ProgressChoice,
}

impl Observer for Stderr {
    fn problems(&mut self, source: &SourceFile, problems: &[Problem], errors: usize) {
        if errors > 0 || !self.quiet {
            report::stderr(&diag::render(
                source,
                problems,
                RenderOptions { color: self.color },
            ));
        }
    }

    fn note(&mut self, text: &str) {
        report::stderr(text);
    }

    fn info(&mut self, text: &str) {
        if !self.quiet {
            report::stderr(text);
        }
    }

    fn bell(&mut self, text: &str) {
        if !self.quiet && io::stderr().is_terminal() {
            report::stderr(text);
        }
    }

    fn display(&mut self, names: Arc<[String]>, total: usize) -> Option<Box<dyn Sink + Send>> {
        let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty());
        if live::use_bars(self.progress, io::stderr().is_terminal(), ci) && !self.quiet {
            let mut bars = Bars::new(names, total);
            bars.verbose = self.verbose;
            Some(Box::new(bars))
        } else {
            let mut plain = Plain::new(names, self.quiet);
            plain.verbose = self.verbose;
            Some(Box::new(plain))
        }
    }

    fn summary(&mut self, report: &RunReport) {
        // `-q`: the summary only when something went wrong.
        if !(self.quiet && report.exit_code() == exit::SUCCESS) {
            summary::print(report);
        }
    }
}

/// The exit code of a launch, printing the run id of a detached one (and, unless `-q`,
/// how to follow it) or the error.
pub(super) fn finish(result: Result<Started, runs::Error>, quiet: bool) -> io::Result<u8> {
    match result {
        Ok(Started::Finished { code }) => Ok(code),
        Ok(Started::Detached(l)) => launched(&l, quiet),
        Err(e) => Ok(failed(&e)),
    }
}

/// Prints an error of `runs::`; its exit code.
pub(super) fn failed(e: &runs::Error) -> u8 {
    report::stderr(&e.message);
    e.code
}

/// Prints a detached run's id on stdout and, unless `-q`, how to follow it on stderr.
pub(super) fn launched(l: &Launched, quiet: bool) -> io::Result<u8> {
    let run_id = &l.run_id;
    report::stdout(&format!("{run_id}\n"))?;
    if !quiet {
        let sd = report::state_dir_arg(Some(&l.state_dir));
        report::stderr(&format!(
            "started run {run_id} of {} in the background (supervisor pid {})\n  logs:   {}\n  follow: bgflow{sd} status {run_id} --watch\n          bgflow{sd} logs {run_id} -f\n  stop:   {}\n",
            l.workflow,
            l.supervisor_pid,
            l.log_dir.display(),
            runs::stop::command(Some(&l.state_dir), run_id),
        ));
    }
    Ok(exit::SUCCESS)
}

pub fn run(args: &RunArgs, g: Globals<'_>) -> io::Result<u8> {
    let Some(given) = super::discover::file_or_report(args.file.as_deref()) else {
        return Ok(exit::USAGE);
    };
    let req = WorkflowRun {
        file: given,
        vars: args.vars.clone(),
        only: args.only.clone(),
        keep_going: args.keep_going,
        force: args.force,
        jobs: args.jobs,
        allow_concurrent: args.allow_concurrent,
    };
    let mode = if args.detach {
        Mode::Detached
    } else {
        Mode::Foreground
    };
    let mut obs = g.stderr(args.progress);
    finish(
        runs::run_workflow(&req, mode, &g.places(), &mut obs),
        g.quiet,
    )
}

/// The detached supervisor (`bgflow __supervise RUN`); its stderr is `supervisor.log`.
pub fn supervise(run_id: &str, g: Globals<'_>) -> u8 {
    let mut obs = Stderr {
        color: false,
        quiet: true,
        verbose: false,
        progress: ProgressChoice::Never,
    };
    runs::supervise::supervise(run_id, &g.places(), &mut obs)
}
