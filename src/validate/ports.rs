//! Ports a service's probes would find taken (guarantee 10): an `http` or `tcp` probe of
//! this machine whose port another process already listens on would be answered by that
//! process. `plan` warns with the probe's place; `run` refuses to start (`runs/launch.rs`)
//! and a service that finds its port taken when it starts fails (`exec/step.rs`). Part
//! of the machine checks, skipped by `--offline`.

use super::{Cx, Step};
use crate::diag::Problem;
use crate::listeners::{self, Listener};
use crate::manifest::StepKind;

/// A probe of a service whose port another process holds.
#[derive(Debug, Clone)]
pub struct Taken {
    /// `ready` or `health`.
    pub probe: &'static str,
    /// `http` or `tcp`.
    pub field: &'static str,
    /// The probe's value as rendered (a URL or `host:port`).
    pub value: String,
    pub port: u16,
    /// Who holds it: `pid 812 (python3 -m http.server 8000)`.
    pub holder: String,
}

impl Taken {
    /// `port 8000 (`ready` probe http://127.0.0.1:8000/) is already taken by pid 812 (…)`.
    pub fn describe(&self) -> String {
        format!(
            "port {} (`{}` probe {}) is already taken by {}",
            self.port, self.probe, self.value, self.holder
        )
    }
}

/// The `http` and `tcp` probes of a service that point at this machine and whose port a
/// socket in `table` would answer; each port once. Any other step has none.
pub fn taken_ports(step: &Step, table: &[Listener]) -> Vec<Taken> {
    let mut out: Vec<Taken> = Vec::new();
    if step.kind() != StepKind::Service {
        return out;
    }
    let more = step.more();
    for (key, probe) in [("ready", &more.ready), ("health", &more.health)] {
        let Some(probe) = probe else { continue };
        let (field, value) = match (&probe.http, &probe.tcp) {
            (Some(url), _) => ("http", url),
            (None, Some(addr)) => ("tcp", addr),
            (None, None) => continue,
        };
        let Some((targets, port)) =
            listeners::probe_address(probe.http.as_deref(), probe.tcp.as_deref())
                .and_then(|a| listeners::local_targets(&a))
        else {
            continue;
        };
        if out.iter().any(|t| t.port == port) {
            continue;
        }
        let holders = listeners::answering_any(table, &targets, port);
        if holders.is_empty() {
            continue;
        }
        out.push(Taken {
            probe: key,
            field,
            value: value.clone(),
            port,
            holder: listeners::describe(&holders),
        });
    }
    out
}

/// Whether the step is a service with an `http` or `tcp` probe (only then is the socket
/// table worth reading).
pub fn has_port_probe(step: &Step) -> bool {
    step.kind() == StepKind::Service
        && [&step.more().ready, &step.more().health]
            .into_iter()
            .flatten()
            .any(|p| p.http.is_some() || p.tcp.is_some())
}

impl Cx<'_, '_> {
    /// A `port-taken` warning at each service probe whose port another process holds.
    pub(super) fn ports(&mut self, steps: &[Step]) {
        if !steps.iter().any(has_port_probe) {
            return;
        }
        let table = listeners::all();
        for step in steps {
            for t in taken_ports(step, &table) {
                let name = step.name.as_str();
                self.push(
                    Problem::warning("port-taken", format!("service `{name}`: {}", t.describe()))
                        .at_opt(
                            self.doc.value_span(&["steps", name, t.probe, t.field]),
                            "this port",
                        )
                        .help(
                            "`bgflow run` refuses to start while another process listens there \
                         (unless every step that needs the service is up to date); stop that \
                         process or give the service a free port",
                        ),
                );
            }
        }
    }
}
