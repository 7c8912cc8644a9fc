//! Services no step of the run will need: every step that needs one is up to date.
//!
//! A service is started for the steps that need it. When each of them is up to date as
//! the run starts, starting it would cost its start-up (a database, a dev server) for
//! nothing, and could fail a run that has nothing to do: `run` refuses to start while a
//! service's port is taken (guarantee 10), and a developer's own server is often on it.
//! So before anything starts, for each selected service with selected dependents, the
//! run judges those dependents and every step upstream of them (services aside): when all
//! of them are up to date (a dependent that is a service: not needed itself), the service
//! is skipped ("not needed") and those steps are kept with the verdicts taken then. Taken
//! once, the verdicts cannot change under the run: a dependent found stale later would
//! otherwise run without its service. A step found up to date keeps its verdict also
//! beside a service that is needed (nothing upstream of it runs): it is judged once.
//!
//! Only workflows with a service, a recorded success and no `--force` do any of this.

use std::collections::HashMap;

use super::fingerprint::{self, Resume};
use crate::manifest::StepKind;
use crate::plan::Plan;
use crate::records::Recorded;
use crate::validate::Workflow;

/// Why a service is skipped.
pub const NOT_NEEDED: &str = "not needed: every step that needs it is up to date";

/// Verdicts taken as the run starts: the services it will not start, and the steps kept
/// with them.
#[derive(Debug, Default)]
pub struct Unneeded {
    services: Vec<usize>,
    decided: HashMap<usize, String>,
}

impl Unneeded {
    /// Judges the services among the `selected` steps (see the module's comment).
    pub fn find(
        wf: &Workflow,
        plan: &Plan,
        selected: &[bool],
        fingerprints: &HashMap<String, Recorded>,
        force: bool,
        resume: Option<&Resume>,
    ) -> Self {
        let mut out = Self::default();
        let is_service = |s: usize| wf.steps[s].kind() == StepKind::Service;
        if fingerprints.is_empty() || (force && resume.is_none()) {
            return out;
        }
        // Downstream first: a service that only a service the run will not start needs
        // (a database behind an API) is not needed either.
        let services: Vec<usize> = (plan.order.iter().rev().copied())
            .filter(|&s| selected[s] && is_service(s))
            .filter(|&s| plan.downstream[s].iter().any(|&d| selected[d]))
            .collect();
        if services.is_empty() {
            return out;
        }
        // Up to date as the run starts, or `None`; judged once each, in plan order, so a
        // step's upstream is judged before it.
        let mut verdict: HashMap<usize, Option<String>> = HashMap::new();
        let judge = |s: usize, verdict: &HashMap<usize, Option<String>>| -> Option<String> {
            if is_service(s) {
                return None;
            }
            let upstream_kept = plan.upstream[s]
                .iter()
                .filter(|&&u| selected[u] && !is_service(u))
                .all(|u| verdict.get(u).is_some_and(Option::is_some));
            if !upstream_kept {
                return None;
            }
            let recorded = fingerprints.get(&fingerprint::key(&wf.name, &wf.steps[s].name));
            fingerprint::needs_no_run(wf, s, recorded, force, resume)
        };
        for svc in services {
            let closure = closure_of(wf, plan, selected, svc);
            for &s in &closure {
                if !verdict.contains_key(&s) {
                    let v = judge(s, &verdict);
                    verdict.insert(s, v);
                }
            }
            let mut dependents = plan.downstream[svc].iter().filter(|&&d| selected[d]);
            if dependents.all(|d| verdict.get(d).is_some_and(Option::is_some) || out.skips(*d)) {
                out.services.push(svc);
                out.decided.insert(svc, NOT_NEEDED.to_owned());
            }
        }
        // Every step found up to date keeps its verdict, also beside a service that is
        // needed: nothing upstream of it runs, and it is not judged a second time.
        for (s, why) in verdict {
            if let Some(why) = why {
                out.decided.insert(s, why);
            }
        }
        out
    }

    /// Whether `step` is a service the run will not start.
    pub fn skips(&self, step: usize) -> bool {
        self.services.contains(&step)
    }

    /// The verdict taken for `step` as the run started (a service's "not needed", a
    /// step's "up to date since run X"), once.
    pub fn take(&mut self, step: usize) -> Option<String> {
        self.decided.remove(&step)
    }
}

/// The selected dependents of `svc` and every selected step upstream of them, in plan
/// order: what decides whether `svc` is needed. A service's upstream is not followed: a
/// dependent that is a service needs `svc` unless it is not needed itself.
fn closure_of(wf: &Workflow, plan: &Plan, selected: &[bool], svc: usize) -> Vec<usize> {
    let mut seen = vec![false; wf.steps.len()];
    let mut stack: Vec<usize> = (plan.downstream[svc].iter().copied())
        .filter(|&d| selected[d])
        .collect();
    while let Some(s) = stack.pop() {
        if std::mem::replace(&mut seen[s], true) || wf.steps[s].kind() == StepKind::Service {
            continue;
        }
        stack.extend(plan.upstream[s].iter().copied().filter(|&u| selected[u]));
    }
    plan.order.iter().copied().filter(|&s| seen[s]).collect()
}
