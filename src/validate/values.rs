//! Values that read well but would fail at run time, refused by `plan` at their place: NUL
//! bytes (an argument, an environment entry or a path ends at one), environment names that
//! are empty or hold `=`, durations of zero where zero means nothing, and step names whose
//! log file would be one of bgflow's own in the run folder.

use std::ops::Range;

use super::Cx;
use crate::diag::Problem;
use crate::manifest::{Duration, Probe};

/// Step names whose `<name>.log` in the run folder is a file bgflow itself writes there
/// (`runs/supervise.rs`: `hooks.log` for the hooks' output, `supervisor.log` for a detached
/// run's supervisor).
pub const RESERVED_STEP_NAMES: [&str; 2] = ["hooks", "supervisor"];

impl Cx<'_, '_> {
    /// A NUL byte in `text` (as rendered) is an error at `span`.
    pub(super) fn no_nul(
        &mut self,
        text: &str,
        what: &str,
        span: impl FnOnce() -> Option<Range<usize>>,
    ) {
        if text.contains('\0') {
            self.push(
                Problem::error("nul-byte", format!("{what} holds a NUL byte"))
                    .at_opt(span(), "NUL byte")
                    .help("an argument, an environment value or a path ends at a NUL byte, so the step could not start as written; remove it"),
            );
        }
    }

    /// An environment name that no process can be given: empty, holding `=` or NUL.
    pub(super) fn env_name(&mut self, name: &str, path: &[&str]) {
        let why = if name.is_empty() {
            "is empty"
        } else if name.contains('=') {
            "holds `=`"
        } else if name.contains('\0') {
            "holds a NUL byte"
        } else {
            return;
        };
        self.push(
            Problem::error(
                "invalid-env-name",
                if name.is_empty() {
                    "an environment variable name is empty".to_owned()
                } else {
                    format!("environment variable name `{name}` {why}")
                },
            )
            .at_opt(self.doc.key_span(path), "not a variable name")
            .help("the environment is a list of NAME=VALUE: a name cannot be empty or hold `=`"),
        );
    }

    /// A zero duration where zero means nothing (a timeout that has passed before the step
    /// starts, a probe that never waits between tries).
    pub(super) fn not_zero(&mut self, value: Option<Duration>, path: &[&str], why: &str) {
        if value.is_some_and(|d| d.as_std().is_zero()) {
            self.push(
                Problem::error(
                    "invalid-value",
                    format!("`{}` must be longer than 0s", path[path.len() - 1]),
                )
                .at_opt(self.doc.value_span(path), "zero")
                .help(why.to_owned()),
            );
        }
    }

    /// The durations and counts of a probe.
    pub(super) fn probe_values(&mut self, step: &str, key: &str, probe: &Probe) {
        self.not_zero(
            probe.timeout,
            &["steps", step, key, "timeout"],
            "a probe with no time to pass fails at once; leave it out for the default",
        );
        self.not_zero(
            probe.interval,
            &["steps", step, key, "interval"],
            "tries with no pause between them would keep a CPU busy; leave it out for the default",
        );
        if probe.failures == Some(0) {
            self.push(
                Problem::error("invalid-value", "`failures` must be at least 1")
                    .at_opt(
                        self.doc.value_span(&["steps", step, key, "failures"]),
                        "zero",
                    )
                    .help("the failures in a row that mark the service unhealthy"),
            );
        }
        for (field, value) in [
            ("http", &probe.http),
            ("tcp", &probe.tcp),
            ("command", &probe.command),
        ] {
            if let Some(v) = value {
                let doc = self.doc;
                self.no_nul(v, &format!("`{key}.{field}`"), || {
                    doc.value_span(&["steps", step, key, field])
                });
            }
        }
    }

    /// NUL bytes in `[workflow] root` and `[requires]`, whose values name paths, programs and
    /// environment variables.
    pub(super) fn no_nul_outside_steps(&mut self, m: &crate::manifest::Manifest) {
        let doc = self.doc;
        if let Some(root) = &m.workflow.root {
            self.no_nul(root, "`root`", || doc.value_span(&["workflow", "root"]));
        }
        for (key, list) in [
            ("tools", &m.requires.tools),
            ("env", &m.requires.env),
            ("files", &m.requires.files),
        ] {
            for (i, item) in list.iter().enumerate() {
                self.no_nul(item, &format!("an entry of `requires.{key}`"), || {
                    doc.item_span(&["requires", key], i)
                });
            }
        }
    }

    /// A step name whose log would be one of bgflow's own files.
    pub(super) fn reserved_name(&mut self, name: &str) {
        if RESERVED_STEP_NAMES.contains(&name) {
            self.push(
                Problem::error(
                    "reserved-name",
                    format!("a step cannot be named `{name}`: bgflow writes its own `{name}.log` in the run folder"),
                )
                .at_opt(self.doc.key_span(&["steps", name]), "reserved")
                .help(format!(
                    "rename the step, e.g. `[steps.{name}-step]`; reserved names: {}",
                    RESERVED_STEP_NAMES.join(", ")
                )),
            );
        }
    }
}
