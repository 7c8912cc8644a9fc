use proptest::prelude::*;

use super::*;

struct Spec {
    names: Vec<String>,
    needs: Vec<Vec<String>>,
    inputs: Vec<Vec<String>>,
    outputs: Vec<Vec<String>>,
}

impl Spec {
    fn new(n: usize) -> Self {
        Self {
            names: (0..n).map(|i| format!("s{i}")).collect(),
            needs: vec![Vec::new(); n],
            inputs: vec![Vec::new(); n],
            outputs: vec![Vec::new(); n],
        }
    }

    fn nodes(&self) -> Vec<StepNode<'_>> {
        (0..self.names.len())
            .map(|i| StepNode {
                name: &self.names[i],
                needs: &self.needs[i],
                inputs: &self.inputs[i],
                outputs: &self.outputs[i],
                cwd: None,
            })
            .collect()
    }
}

fn need(spec: &mut Spec, to: usize, from: usize) {
    let name = spec.names[from].clone();
    spec.needs[to].push(name);
}

#[test]
fn artifacts_imply_edges_and_waves() {
    let mut s = Spec::new(3);
    s.outputs[0] = vec!["a.txt".into()];
    s.inputs[1] = vec!["a.txt".into()];
    s.outputs[1] = vec!["b/".into()];
    s.inputs[2] = vec!["b/x".into()];
    let (plan, issues) = build(&s.nodes());
    assert!(issues.is_empty(), "{issues:?}");
    assert!(plan.acyclic);
    assert_eq!(plan.waves, vec![vec![0], vec![1], vec![2]]);
    assert_eq!(plan.upstream[2], vec![1]);
    assert_eq!(plan.with_upstream(2), vec![0, 1, 2]);
}

#[test]
fn an_upstream_step_feeds_unless_it_is_only_needed() {
    // s0 makes a.txt, which s1 reads and also needs; s2 only needs s1; s3 reads a.txt.
    let mut s = Spec::new(4);
    s.outputs[0] = vec!["a.txt".into()];
    s.inputs[1] = vec!["a.txt".into()];
    need(&mut s, 1, 0);
    need(&mut s, 2, 1);
    s.inputs[3] = vec!["a.txt".into()];
    let (plan, issues) = build(&s.nodes());
    assert!(issues.is_empty(), "{issues:?}");
    assert_eq!(plan.order_only, vec![(2, 1)]);
    assert!(plan.feeds(0, 1), "an input edge, though also a need");
    assert!(!plan.feeds(1, 2), "only a need");
    assert!(plan.feeds(0, 3));
}

#[test]
fn independent_steps_share_a_wave() {
    let mut s = Spec::new(4);
    need(&mut s, 2, 0);
    need(&mut s, 2, 1);
    need(&mut s, 3, 0);
    let (plan, _) = build(&s.nodes());
    assert!(plan.acyclic);
    assert_eq!(plan.waves, vec![vec![0, 1], vec![2, 3]]);
    assert_eq!(plan.order, vec![0, 1, 2, 3]);
}

#[test]
fn unknown_and_self_needs_are_reported() {
    let mut s = Spec::new(2);
    s.needs[0] = vec!["s11".into(), "s0".into()];
    let (_, issues) = build(&s.nodes());
    assert_eq!(
        issues,
        vec![
            GraphIssue::UnknownNeed {
                step: 0,
                index: 0,
                name: "s11".into(),
            },
            GraphIssue::SelfNeed { step: 0, index: 1 },
        ]
    );
}

#[test]
fn cycle_path_is_given_in_order() {
    let mut s = Spec::new(4);
    need(&mut s, 1, 0);
    need(&mut s, 2, 1);
    need(&mut s, 0, 2);
    need(&mut s, 3, 0);
    let (plan, issues) = build(&s.nodes());
    assert!(!plan.acyclic);
    match issues.as_slice() {
        [GraphIssue::Cycle { steps, edges }] => {
            assert_eq!(steps, &vec![0, 1, 2]);
            assert_eq!(edges.len(), 3);
            assert_eq!((edges[2].from, edges[2].to), (2, 0));
        }
        other => panic!("expected one cycle, got {other:?}"),
    }
}

fn random_dag() -> impl Strategy<Value = (usize, Vec<(usize, usize)>)> {
    (2usize..40).prop_flat_map(|n| {
        let edge = (0..n, 0..n).prop_filter_map("forward edge", |(a, b)| (a < b).then_some((a, b)));
        (Just(n), proptest::collection::vec(edge, 0..n * 3))
    })
}

fn spec_from(n: usize, edges: &[(usize, usize)], perm: &[usize]) -> Spec {
    // Steps are declared in a shuffled order so the planner cannot lean on declaration order.
    let mut s = Spec::new(n);
    for (k, &(a, b)) in edges.iter().enumerate() {
        let (a, b) = (perm[a], perm[b]);
        if k % 2 == 0 {
            need(&mut s, b, a);
        } else {
            s.outputs[a].push(format!("art/{a}-{b}-{k}"));
            s.inputs[b].push(format!("art/{a}-{b}-{k}"));
        }
    }
    s
}

proptest! {
    #[test]
    fn order_respects_every_edge((n, edges) in random_dag(), seed in any::<u64>()) {
        let mut perm: Vec<usize> = (0..n).collect();
        // A cheap deterministic shuffle from the seed.
        let mut x = seed | 1;
        for i in (1..n).rev() {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            perm.swap(i, (x % (i as u64 + 1)) as usize);
        }
        let s = spec_from(n, &edges, &perm);
        let (plan, issues) = build(&s.nodes());
        prop_assert!(issues.is_empty(), "{:?}", issues);
        prop_assert!(plan.acyclic);
        let mut pos = vec![usize::MAX; n];
        for (i, &step) in plan.order.iter().enumerate() { pos[step] = i; }
        prop_assert!(pos.iter().all(|&p| p != usize::MAX), "every step is planned once");
        prop_assert_eq!(plan.order.len(), n);
        for &(a, b) in &edges {
            prop_assert!(pos[perm[a]] < pos[perm[b]], "edge {} -> {} broken", perm[a], perm[b]);
        }
    }

    #[test]
    fn a_back_edge_is_always_reported((n, mut edges) in random_dag(), pick in any::<prop::sample::Index>()) {
        // Close a cycle: a path a -> ... -> b exists once (a, b) is an edge; add b -> a.
        prop_assume!(!edges.is_empty());
        let (a, b) = edges[pick.index(edges.len())];
        edges.push((b, a));
        let perm: Vec<usize> = (0..n).collect();
        let s = spec_from(n, &edges, &perm);
        let (plan, issues) = build(&s.nodes());
        prop_assert!(!plan.acyclic);
        let cycles: Vec<_> = issues.iter().filter_map(|i| match i {
            GraphIssue::Cycle { steps, edges } => Some((steps.clone(), edges.clone())),
            _ => None,
        }).collect();
        prop_assert!(!cycles.is_empty());
        for (steps, cedges) in cycles {
            // The reported path is a real closed walk along declared edges.
            prop_assert_eq!(steps.len(), cedges.len());
            for (i, e) in cedges.iter().enumerate() {
                prop_assert_eq!(e.from, steps[i]);
                prop_assert_eq!(e.to, steps[(i + 1) % steps.len()]);
            }
        }
    }
}
