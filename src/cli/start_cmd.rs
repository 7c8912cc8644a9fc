//! `bgflow start` (one ad-hoc command as a detached run) and `bgflow resume`.

use std::io;

use crate::report::{self, live::ProgressChoice};
use crate::runs::{self, Mode, Resumed, StartCommand};

use super::run_cmd::{failed, finish, launched, Globals};
use super::{ResumeArgs, StartArgs};

pub fn start(args: &StartArgs, g: Globals<'_>) -> io::Result<u8> {
    let cmd = StartCommand {
        argv: args.command.clone(),
        name: args.name.clone(),
        kind: args.kind.clone(),
        timeout: args.timeout,
        meta: args.meta.clone(),
        cwd: None,
    };
    let mut obs = g.stderr(ProgressChoice::Never);
    match runs::start(&cmd, &g.places(), &mut obs) {
        Ok(l) => launched(&l, g.quiet),
        Err(e) => Ok(failed(&e)),
    }
}

/// `bgflow resume RUN`: a new run of what did not succeed in RUN (`runs::resume`).
pub fn resume(args: &ResumeArgs, g: Globals<'_>) -> io::Result<u8> {
    let req = runs::Resume {
        run: args.run.clone(),
        mode: if args.detach {
            Mode::Detached
        } else {
            Mode::Foreground
        },
        allow_concurrent: args.allow_concurrent,
    };
    let mut obs = g.stderr(args.progress);
    match runs::resume(&req, &g.places(), &mut obs) {
        Ok(Resumed::NothingToDo { run }) => {
            report::stderr(&format!(
                "run {run} succeeded entirely; nothing to resume\n"
            ));
            Ok(crate::exit::SUCCESS)
        }
        Ok(Resumed::Started { started, .. }) => finish(Ok(started), g.quiet),
        Err(e) => Ok(failed(&e)),
    }
}
