//! The plan: the dependency graph of the steps and the order they can run in. Pure: no I/O.
//!
//! Edges come from `needs` and from artifacts (an output of A that makes an input of B, or
//! the folder B runs in). Problems of the graph are returned as `GraphIssue`s, which
//! `validate` turns into located diagnostics.

pub mod artifacts;
pub mod export;

use std::collections::{HashMap, VecDeque};

use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;

use artifacts::{OutputIndex, OutputRef};

/// What the planner needs to know of one step.
#[derive(Debug, Clone, Copy)]
pub struct StepNode<'a> {
    pub name: &'a str,
    pub needs: &'a [String],
    pub inputs: &'a [String],
    pub outputs: &'a [String],
    /// The step's working folder relative to the root, when it is not the root itself.
    pub cwd: Option<&'a str>,
}

/// Why an edge exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EdgeOrigin {
    /// `needs[index]` of the dependent step.
    Needs { index: usize },
    /// `inputs[index]` of the dependent step is made by `output`.
    Input { index: usize, output: OutputRef },
    /// The dependent step's `cwd` is made by `output`.
    Cwd { output: OutputRef },
}

/// `from` must succeed before `to` starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edge {
    pub from: usize,
    pub to: usize,
    pub origin: EdgeOrigin,
}

/// A problem with the shape of the graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GraphIssue {
    UnknownNeed {
        step: usize,
        index: usize,
        name: String,
    },
    SelfNeed {
        step: usize,
        index: usize,
    },
    /// `edges[i]` goes from `steps[i]` to `steps[i + 1]`, and the last back to the first.
    Cycle {
        steps: Vec<usize>,
        edges: Vec<Edge>,
    },
    DuplicateOutput {
        first: OutputRef,
        second: OutputRef,
        path: String,
    },
}

/// The steps in a runnable order.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Waves in order; a step's wave is one more than the latest wave of its upstream steps.
    pub waves: Vec<Vec<usize>>,
    /// Every step, wave by wave, in declaration order within a wave.
    pub order: Vec<usize>,
    pub edges: Vec<Edge>,
    /// Direct upstream steps of each step, sorted, without repeats.
    pub upstream: Vec<Vec<usize>>,
    /// Direct downstream steps of each step, sorted, without repeats.
    pub downstream: Vec<Vec<usize>>,
    /// For each step and each of its inputs: the outputs that make it.
    pub producers: Vec<Vec<Vec<OutputRef>>>,
    /// For each step: the outputs that make its `cwd`.
    pub cwd_producers: Vec<Vec<OutputRef>>,
    /// `(step, upstream)` pairs, sorted, where the upstream step is only waited for
    /// (`needs`) and makes none of the step's inputs nor its `cwd`. Every other upstream
    /// step feeds the step: when one runs, the step is not kept as up to date
    /// (`exec::fingerprint`), whatever the stat of its inputs says.
    pub order_only: Vec<(usize, usize)>,
    /// False when the graph has a cycle; then `waves` and `order` are empty.
    pub acyclic: bool,
}

impl Plan {
    /// Which steps a run of `only` (with their upstream) covers; empty `only`: every step.
    pub fn selection(&self, only: &[usize]) -> Vec<bool> {
        let mut selected = vec![only.is_empty(); self.upstream.len()];
        for &s in only {
            for u in self.with_upstream(s) {
                selected[u] = true;
            }
        }
        selected
    }

    /// Keeps only what running the steps needs (`order`, `upstream`, `downstream`) and frees
    /// the rest: the edges with their origins and each input's producers are for the checks
    /// and for showing the plan, and at 10,000 steps they take 2.8 MB.
    pub fn keep_only_the_order(&mut self) {
        self.waves = Vec::new();
        self.edges = Vec::new();
        self.producers = Vec::new();
        self.cwd_producers = Vec::new();
    }

    /// Whether `upstream` feeds `step` (makes one of its inputs or its `cwd`) rather than
    /// being only waited for.
    pub fn feeds(&self, upstream: usize, step: usize) -> bool {
        self.order_only.binary_search(&(step, upstream)).is_err()
    }

    /// `step` and everything upstream of it, transitively.
    pub fn with_upstream(&self, step: usize) -> Vec<usize> {
        let mut seen = vec![false; self.upstream.len()];
        let mut stack = vec![step];
        while let Some(s) = stack.pop() {
            if !std::mem::replace(&mut seen[s], true) {
                stack.extend(&self.upstream[s]);
            }
        }
        (0..seen.len()).filter(|&i| seen[i]).collect()
    }
}

/// Builds the graph. With a cycle the plan has edges but no order (`acyclic` is false).
pub fn build(steps: &[StepNode<'_>]) -> (Plan, Vec<GraphIssue>) {
    build_with_groups(steps, &HashMap::new())
}

/// Builds the graph where a need may name a group of steps: a matrix step's instances,
/// `groups[name]` (a range of `steps`). A need of a group is an edge from each of them.
pub fn build_with_groups(
    steps: &[StepNode<'_>],
    groups: &HashMap<String, std::ops::Range<usize>>,
) -> (Plan, Vec<GraphIssue>) {
    let mut issues = Vec::new();
    let by_name: foldhash::HashMap<&str, usize> =
        steps.iter().enumerate().map(|(i, s)| (s.name, i)).collect();
    let mut outputs = OutputIndex::new(steps.iter().enumerate().map(|(i, s)| (i, s.outputs)));
    outputs.index_input_globs(steps.iter().flat_map(|s| s.inputs.iter()));
    for (first, second, path) in &outputs.duplicates {
        issues.push(GraphIssue::DuplicateOutput {
            first: *first,
            second: *second,
            path: path.clone(),
        });
    }

    // Each step's edges depend on the index alone, so the steps are spread over every core.
    let mut indices: Vec<usize> = (0..steps.len()).collect();
    let runs = crate::par::map_runs(&mut indices, 2000, |run| {
        // Sized for one producer per input and need, the usual case: grown by doubling,
        // the edges of 10,000 steps would take 1.6 MB instead of 0.95.
        let expected = run
            .iter()
            .map(|&i| steps[i].needs.len() + steps[i].inputs.len())
            .sum();
        let mut links = Links {
            edges: Vec::with_capacity(expected),
            producers: Vec::with_capacity(run.len()),
            cwd_producers: Vec::with_capacity(run.len()),
            ..Links::default()
        };
        for &mut to in run {
            links.add(to, steps, &by_name, groups, &outputs);
        }
        links
    });
    // The graph's own problems (duplicate outputs) come first, as before. Each list grows
    // from the first run's (one run in `run`), never copied whole beside it.
    let (mut edges, mut producers, mut cwd_producers) = (Vec::new(), Vec::new(), Vec::new());
    let mut issues = vec![issues];
    for run in runs {
        edges.push(run.edges);
        issues.push(run.issues);
        producers.push(run.producers);
        cwd_producers.push(run.cwd_producers);
    }
    let mut edges = crate::par::concat(edges);
    let mut issues = crate::par::concat(issues);
    let producers = crate::par::concat(producers);
    let cwd_producers = crate::par::concat(cwd_producers);
    // Past the reserve (more than one producer for an input) the list grew by doubling;
    // a run of 10,000 steps keeps it until its checks end.
    edges.shrink_to_fit();
    let mut upstream = vec![Vec::new(); steps.len()];
    let mut downstream = vec![Vec::new(); steps.len()];
    for e in &edges {
        upstream[e.to].push(e.from);
        downstream[e.from].push(e.to);
    }
    for list in upstream.iter_mut().chain(downstream.iter_mut()) {
        list.sort_unstable();
        list.dedup();
        list.shrink_to_fit();
    }
    // Kahn's algorithm: a step's wave is one more than the latest of its upstream steps'.
    // Steps it never reaches lie on or behind a cycle.
    let mut waiting: Vec<usize> = upstream.iter().map(Vec::len).collect();
    let mut wave_of = vec![0usize; steps.len()];
    let mut queue: Vec<usize> = (0..steps.len()).filter(|&s| waiting[s] == 0).collect();
    let mut head = 0;
    while let Some(&s) = queue.get(head) {
        head += 1;
        for &d in &downstream[s] {
            wave_of[d] = wave_of[d].max(wave_of[s] + 1);
            waiting[d] -= 1;
            if waiting[d] == 0 {
                queue.push(d);
            }
        }
    }
    let acyclic = queue.len() == steps.len();
    if !acyclic {
        let mut graph: DiGraph<usize, usize> = DiGraph::with_capacity(steps.len(), edges.len());
        let nodes: Vec<NodeIndex> = (0..steps.len()).map(|i| graph.add_node(i)).collect();
        for (i, e) in edges.iter().enumerate() {
            graph.add_edge(nodes[e.from], nodes[e.to], i);
        }
        issues.extend(find_cycles(&graph, &edges));
    }
    let wave_count = if acyclic {
        wave_of.iter().max().map_or(0, |w| w + 1)
    } else {
        0
    };
    let mut waves = vec![Vec::new(); wave_count];
    if acyclic {
        for (s, &w) in wave_of.iter().enumerate() {
            waves[w].push(s);
        }
    }
    let order = waves.iter().flatten().copied().collect();
    let order_only = order_only(&edges);
    let plan = Plan {
        waves,
        order,
        edges,
        upstream,
        downstream,
        producers,
        cwd_producers,
        order_only,
        acyclic,
    };
    (plan, issues)
}

/// The `(to, from)` pairs of `needs` edges that no input or `cwd` edge doubles, sorted.
/// Most workflows have few `needs`: the artifact edges are looked at only for their steps.
fn order_only(edges: &[Edge]) -> Vec<(usize, usize)> {
    let mut needs: Vec<(usize, usize)> = (edges.iter())
        .filter(|e| matches!(e.origin, EdgeOrigin::Needs { .. }))
        .map(|e| (e.to, e.from))
        .collect();
    if needs.is_empty() {
        return needs;
    }
    needs.sort_unstable();
    needs.dedup();
    let fed: std::collections::HashSet<(usize, usize)> = (edges.iter())
        .filter(|e| !matches!(e.origin, EdgeOrigin::Needs { .. }))
        .map(|e| (e.to, e.from))
        .filter(|pair| needs.binary_search(pair).is_ok())
        .collect();
    needs.retain(|pair| !fed.contains(pair));
    needs.shrink_to_fit();
    needs
}

/// What a run of steps adds to the graph, step by step in order.
#[derive(Default)]
struct Links {
    edges: Vec<Edge>,
    issues: Vec<GraphIssue>,
    producers: Vec<Vec<Vec<OutputRef>>>,
    cwd_producers: Vec<Vec<OutputRef>>,
}

impl Links {
    /// The edges into step `to`: its `needs`, its inputs' and its `cwd`'s producers.
    fn add(
        &mut self,
        to: usize,
        steps: &[StepNode<'_>],
        by_name: &foldhash::HashMap<&str, usize>,
        groups: &HashMap<String, std::ops::Range<usize>>,
        outputs: &OutputIndex<'_>,
    ) {
        let step = &steps[to];
        for (index, need) in step.needs.iter().enumerate() {
            if let Some(group) = groups.get(need.as_str()) {
                if group.contains(&to) {
                    self.issues.push(GraphIssue::SelfNeed { step: to, index });
                    continue;
                }
                self.edges.extend(group.clone().map(|from| Edge {
                    from,
                    to,
                    origin: EdgeOrigin::Needs { index },
                }));
                continue;
            }
            match by_name.get(need.as_str()) {
                Some(&from) if from == to => {
                    self.issues.push(GraphIssue::SelfNeed { step: to, index })
                }
                Some(&from) => self.edges.push(Edge {
                    from,
                    to,
                    origin: EdgeOrigin::Needs { index },
                }),
                None => self.issues.push(GraphIssue::UnknownNeed {
                    step: to,
                    index,
                    name: need.clone(),
                }),
            }
        }
        // A step may read what it also writes (an in-place update); that is no edge.
        let mut made_by = |found: &[OutputRef], origin: &dyn Fn(OutputRef) -> EdgeOrigin| {
            for output in found.iter().filter(|o| o.step != to) {
                self.edges.push(Edge {
                    from: output.step,
                    to,
                    origin: origin(*output),
                });
            }
        };
        let mut mine = Vec::with_capacity(step.inputs.len());
        for (index, input) in step.inputs.iter().enumerate() {
            let found = outputs.producers(input);
            made_by(&found, &|output| EdgeOrigin::Input { index, output });
            mine.push(found);
        }
        let cwd = step
            .cwd
            .map(|c| outputs.producers(&format!("{c}/")))
            .unwrap_or_default();
        made_by(&cwd, &|output| EdgeOrigin::Cwd { output });
        self.producers.push(mine);
        self.cwd_producers.push(cwd);
    }
}

/// One shortest cycle through the first-declared step of every strongly connected component.
fn find_cycles(graph: &DiGraph<usize, usize>, edges: &[Edge]) -> Vec<GraphIssue> {
    let mut cycles = Vec::new();
    let mut components: Vec<Vec<NodeIndex>> = tarjan_scc(graph)
        .into_iter()
        .filter(|c| c.len() > 1)
        .collect();
    for c in &mut components {
        c.sort_by_key(|n| graph[*n]);
    }
    components.sort_by_key(|c| graph[c[0]]);
    for component in components {
        let start = component[0];
        let inside = |n: NodeIndex| {
            component
                .binary_search_by_key(&graph[n], |m| graph[*m])
                .is_ok()
        };
        // Breadth-first from `start` until an edge leads back to it.
        let mut came_by: HashMap<NodeIndex, usize> = HashMap::new();
        let mut queue = VecDeque::from([start]);
        let mut closing = None;
        'search: while let Some(n) = queue.pop_front() {
            let mut out: Vec<_> = graph.edges(n).collect();
            out.sort_by_key(|e| (graph[e.target()], *e.weight()));
            for e in out {
                let t = e.target();
                if t == start {
                    closing = Some(*e.weight());
                    break 'search;
                }
                if inside(t) && t != start && !came_by.contains_key(&t) {
                    came_by.insert(t, *e.weight());
                    queue.push_back(t);
                }
            }
        }
        let Some(last) = closing else { continue };
        let mut path_edges = vec![edges[last]];
        let mut at = edges[last].from;
        while at != graph[start] {
            let idx = came_by[&nodes_of(graph, at)];
            path_edges.push(edges[idx]);
            at = edges[idx].from;
        }
        path_edges.reverse();
        let steps = path_edges.iter().map(|e| e.from).collect();
        cycles.push(GraphIssue::Cycle {
            steps,
            edges: path_edges,
        });
    }
    cycles
}

fn nodes_of(_graph: &DiGraph<usize, usize>, step: usize) -> NodeIndex {
    // Nodes are added in step order, so a step's node index is its own index.
    NodeIndex::new(step)
}

#[cfg(test)]
mod tests;
