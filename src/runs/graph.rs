//! A run's step graph: its steps' edges as the plan draws them, for a front-end that shows
//! the run as a picture (`bgflow serve`). The history keeps the steps, not the edges: they
//! come from checking the run's stored spec again (offline, with its `--var`s), and only
//! edges between steps of the run are kept. When the workflow file has changed so much
//! that it no longer checks, the graph has no edges and says why.

use serde::Serialize;

use crate::store::Store;
use crate::validate::{self, Options};

use super::spec::{source_of, Spec};
use super::Error;

/// A run's edges, each `[upstream, downstream]` by step name.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Graph {
    pub edges: Vec<[String; 2]>,
    /// Why there are no edges although the run has several steps.
    pub note: Option<String>,
}

/// The edges between the steps of run `id` (a full id).
pub fn edges(store: &Store, id: &str) -> Result<Graph, Error> {
    let run = store
        .run_stored(id)
        .map_err(|e| super::internal(&e))?
        .ok_or_else(|| Error::usage(format!("error: no run `{id}`\n")))?;
    let steps = store.steps(id).map_err(|e| super::internal(&e))?;
    if steps.len() < 2 {
        return Ok(Graph::default());
    }
    let without = |why: String| Graph {
        edges: Vec::new(),
        note: Some(why),
    };
    let spec: Spec = match serde_json::from_str(&run.spec) {
        Ok(s) => s,
        Err(e) => return Ok(without(format!("the run's spec is unreadable: {e}"))),
    };
    let source = match source_of(&spec) {
        Ok(s) => s,
        Err(e) => return Ok(without(format!("the workflow cannot be read: {e}"))),
    };
    let checked = validate::check(
        &source,
        &Options {
            vars: spec.vars.clone(),
            offline: true,
        },
    );
    let (Some(wf), Some(plan)) = (checked.workflow.as_ref(), checked.plan.as_ref()) else {
        return Ok(without(
            "the workflow file no longer checks: its edges cannot be drawn".to_owned(),
        ));
    };
    let in_run: std::collections::HashSet<&str> = steps.iter().map(|s| s.name.as_str()).collect();
    let mut edges = Vec::new();
    for (i, ups) in plan.upstream.iter().enumerate() {
        let Some(to) = wf.steps.get(i).map(|s| s.name.as_str()) else {
            continue;
        };
        if !in_run.contains(to) {
            continue;
        }
        for &u in ups {
            if let Some(from) = wf.steps.get(u).map(|s| s.name.as_str()) {
                if in_run.contains(from) {
                    edges.push([from.to_owned(), to.to_owned()]);
                }
            }
        }
    }
    Ok(Graph { edges, note: None })
}
