//! The scheduler's decisions as a plain state machine: what is ready, what to skip or cancel
//! after a failure. It spawns nothing and knows no time, so it is tested without processes.
//!
//! Invariant (DESIGN.md §5.2): while a selected step is neither finished nor skipped, one is
//! running or ready. Steps start in plan order as soon as every upstream step succeeded,
//! except that a step which needs a service (`prefer_service_dependents`) goes before the
//! ready steps that need none: a service is stopped once its dependents are done, so it is
//! not kept up (a port, a database, its memory) while unrelated steps take the job slots.

use std::collections::BTreeSet;

/// Where a step stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Slot {
    /// Waiting for upstream steps (`waiting` of them left).
    Pending {
        waiting: usize,
    },
    Ready,
    Running,
    /// Its command exited with success and its outputs are there: it holds no job slot
    /// while its end is judged and recorded (`release`), and its dependents wait for that.
    Exited,
    /// A service that passed its ready probe: dependents may start; it holds no job slot.
    Serving,
    /// Finished; `ok` when dependents may go on (success, up to date, or an allowed failure).
    Done {
        ok: bool,
    },
    /// Will not run because an upstream step failed.
    Skipped {
        because: usize,
    },
    /// Will not run because the run is stopping.
    Cancelled,
    /// Not selected by `--only`.
    NotSelected,
}

/// What the scheduler wants done after a step finished.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Decision {
    /// Fail-fast was triggered: stop the steps still running.
    pub stop_running: bool,
}

pub struct Scheduler<'p> {
    slots: Vec<Slot>,
    /// The plan's, borrowed: a run of 10,000 steps need not hold two copies.
    downstream: &'p [Vec<usize>],
    /// Ready steps by `rank`.
    ready: BTreeSet<(usize, usize)>,
    /// Each step's place in the start order: its position in the plan order, plus the
    /// number of steps unless it needs a service (`prefer_service_dependents`), so that
    /// every step that needs one comes first.
    rank: Vec<usize>,
    fail_fast: bool,
    jobs: usize,
    running: usize,
    /// Steps in `Slot::Exited`: not finished, but holding no job slot.
    exited: usize,
    stopping: bool,
    /// Services in `Slot::Serving`, kept apart so the run loop need not scan every slot.
    serving: BTreeSet<usize>,
}

impl<'p> Scheduler<'p> {
    /// `upstream`/`downstream`: direct edges; `order`: the plan order; `selected`: steps to run.
    pub fn new(
        upstream: &[Vec<usize>],
        downstream: &'p [Vec<usize>],
        order: &[usize],
        selected: &[bool],
        fail_fast: bool,
        jobs: usize,
    ) -> Self {
        let n = upstream.len();
        let mut rank = vec![0; n];
        for (p, &s) in order.iter().enumerate() {
            rank[s] = n + p;
        }
        let mut slots = Vec::with_capacity(n);
        let mut ready = BTreeSet::new();
        for s in 0..n {
            if !selected[s] {
                slots.push(Slot::NotSelected);
                continue;
            }
            let waiting = upstream[s].iter().filter(|&&u| selected[u]).count();
            if waiting == 0 {
                ready.insert((rank[s], s));
                slots.push(Slot::Ready);
            } else {
                slots.push(Slot::Pending { waiting });
            }
        }
        Self {
            slots,
            downstream,
            ready,
            rank,
            fail_fast,
            jobs: jobs.max(1),
            running: 0,
            exited: 0,
            stopping: false,
            serving: BTreeSet::new(),
        }
    }

    /// Ranks each selected step that directly needs a selected service (`is_service(u)`)
    /// before every ready step that needs none; plan order holds within each group. Call
    /// before the first `start_ready`.
    pub fn prefer_service_dependents(&mut self, is_service: impl Fn(usize) -> bool) {
        let n = self.slots.len();
        for u in 0..n {
            if self.slots[u] == Slot::NotSelected || !is_service(u) {
                continue;
            }
            for &d in &self.downstream[u] {
                if self.rank[d] >= n && self.slots[d] != Slot::NotSelected {
                    // A step that needs a selected service is never ready at the start.
                    debug_assert!(self.slots[d] != Slot::Ready);
                    self.rank[d] -= n;
                }
            }
        }
    }

    fn rank(&self, step: usize) -> (usize, usize) {
        (self.rank[step], step)
    }

    pub fn slot(&self, step: usize) -> &Slot {
        &self.slots[step]
    }

    pub fn running(&self) -> usize {
        self.running
    }

    /// Steps to start now, by rank (plan order, a service's dependents first), within the
    /// parallelism limit; they become `Running`.
    pub fn start_ready(&mut self) -> Vec<usize> {
        let mut out = Vec::new();
        while !self.stopping && self.running < self.jobs {
            let Some((_, s)) = self.ready.pop_first() else {
                break;
            };
            self.slots[s] = Slot::Running;
            self.running += 1;
            out.push(s);
        }
        out
    }

    /// A running service passed its ready probe: its dependents may start, and it no longer
    /// holds a job slot.
    pub fn service_ready(&mut self, step: usize) {
        if self.slots[step] != Slot::Running {
            return;
        }
        self.slots[step] = Slot::Serving;
        self.serving.insert(step);
        self.running -= 1;
        self.unlock_downstream(step);
    }

    /// A running step's command exited with success: its job slot is free for a ready step
    /// while its end is judged and recorded; its dependents still wait for `finish`.
    pub fn release(&mut self, step: usize) {
        if self.slots[step] != Slot::Running {
            return;
        }
        self.slots[step] = Slot::Exited;
        self.running -= 1;
        self.exited += 1;
    }

    /// Whether every direct dependent of `step` has finished or will not run: a service
    /// nobody needs any more can be stopped.
    pub fn no_longer_needed(&self, step: usize) -> bool {
        self.dependents_ended(step, true)
    }

    /// Whether every direct dependent of `step` has ended or will not run for a failure
    /// upstream, none of them cancelled: a service stopped now served all it was for.
    pub fn served_all(&self, step: usize) -> bool {
        self.dependents_ended(step, false)
    }

    /// Whether every direct dependent of `step` is done, skipped or not selected (or,
    /// with `cancelled_too`, cancelled).
    fn dependents_ended(&self, step: usize, cancelled_too: bool) -> bool {
        self.downstream[step].iter().all(|&d| match self.slots[d] {
            Slot::Done { .. } | Slot::Skipped { .. } | Slot::NotSelected => true,
            Slot::Cancelled => cancelled_too,
            _ => false,
        })
    }

    /// Services currently serving.
    pub fn serving(&self) -> impl Iterator<Item = usize> + '_ {
        self.serving.iter().copied()
    }

    fn unlock_downstream(&mut self, step: usize) {
        for i in 0..self.downstream[step].len() {
            let d = self.downstream[step][i];
            if let Slot::Pending { waiting } = &mut self.slots[d] {
                *waiting -= 1;
                if *waiting == 0 {
                    self.slots[d] = Slot::Ready;
                    self.ready.insert(self.rank(d));
                }
            }
        }
    }

    /// Records the end of a running (or serving) step. `ok`: dependents may go on.
    /// `counts_as_failure`: the failure fails the run (false for `allow_failure` steps).
    pub fn finish(&mut self, step: usize, ok: bool, counts_as_failure: bool) -> Decision {
        let was_serving = self.serving.remove(&step);
        debug_assert!(matches!(
            self.slots[step],
            Slot::Running | Slot::Serving | Slot::Exited
        ));
        if self.slots[step] == Slot::Exited {
            self.exited -= 1;
        } else if !was_serving {
            self.running -= 1;
        }
        self.slots[step] = Slot::Done { ok };
        let mut decision = Decision::default();
        if ok {
            if !was_serving {
                self.unlock_downstream(step);
            }
        } else {
            self.skip_downstream(step);
            if counts_as_failure && self.fail_fast {
                self.stop();
                decision.stop_running = true;
            }
        }
        decision
    }

    /// Marks a step that needs no run (up to date) as done without running it.
    pub fn mark_up_to_date(&mut self, step: usize) {
        self.finish(step, true, false);
    }

    fn skip_downstream(&mut self, failed: usize) {
        let mut stack = self.downstream[failed].clone();
        while let Some(d) = stack.pop() {
            match self.slots[d] {
                Slot::Pending { .. } | Slot::Ready => {
                    self.ready.remove(&self.rank(d));
                    self.slots[d] = Slot::Skipped { because: failed };
                    stack.extend(self.downstream[d].iter().copied());
                }
                _ => {}
            }
        }
    }

    /// Starts nothing new: every step not yet started is cancelled.
    pub fn stop(&mut self) {
        self.stopping = true;
        self.ready.clear();
        for slot in &mut self.slots {
            if matches!(slot, Slot::Pending { .. } | Slot::Ready) {
                *slot = Slot::Cancelled;
            }
        }
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping
    }

    /// No step is running or can still start.
    pub fn is_done(&self) -> bool {
        self.running == 0 && self.exited == 0 && (self.stopping || self.ready.is_empty())
    }

    /// The no-stall invariant: work remains only while something runs or is ready.
    pub fn invariant_holds(&self) -> bool {
        let remaining = self
            .slots
            .iter()
            .any(|s| matches!(s, Slot::Pending { .. } | Slot::Ready));
        !remaining || self.running > 0 || self.exited > 0 || !self.ready.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// a -> b -> d, a -> c; e alone.
    fn diamond(fail_fast: bool, jobs: usize) -> Scheduler<'static> {
        let upstream = vec![vec![], vec![0], vec![0], vec![1], vec![]];
        // The scheduler borrows the plan's lists; a test's may live as long as the test.
        let downstream = Vec::leak(vec![vec![1, 2], vec![3], vec![], vec![], vec![]]);
        Scheduler::new(
            &upstream,
            downstream,
            &[0, 4, 1, 2, 3],
            &[true; 5],
            fail_fast,
            jobs,
        )
    }

    #[test]
    fn starts_as_soon_as_upstream_succeeds_within_jobs() {
        let mut s = diamond(true, 2);
        assert_eq!(s.start_ready(), vec![0, 4]);
        assert_eq!(s.start_ready(), Vec::<usize>::new(), "jobs limit");
        s.finish(0, true, false);
        assert_eq!(s.start_ready(), vec![1], "one slot free");
        s.finish(4, true, false);
        assert_eq!(s.start_ready(), vec![2]);
        s.finish(1, true, false);
        assert_eq!(
            s.start_ready(),
            vec![3],
            "d starts without waiting for c's wave-mate"
        );
        s.finish(2, true, false);
        s.finish(3, true, false);
        assert!(s.is_done());
    }

    #[test]
    fn a_released_step_frees_its_slot_but_not_its_dependents() {
        let mut s = diamond(true, 1);
        assert_eq!(s.start_ready(), vec![0]);
        s.release(0);
        assert_eq!(s.slot(0), &Slot::Exited);
        assert_eq!(
            s.start_ready(),
            vec![4],
            "the free slot goes to a ready step"
        );
        assert_eq!(
            s.start_ready(),
            Vec::<usize>::new(),
            "b waits for a's finish"
        );
        s.finish(0, true, false);
        assert_eq!(s.start_ready(), Vec::<usize>::new(), "e holds the one slot");
        s.release(4);
        assert_eq!(s.start_ready(), vec![1]);
        s.finish(4, true, false);
        assert!(!s.is_done());
        s.finish(1, true, false);
        assert_eq!(s.start_ready(), vec![2]);
        s.finish(2, true, false);
        assert_eq!(s.start_ready(), vec![3]);
        s.finish(3, true, false);
        assert!(s.is_done());
    }

    #[test]
    fn fail_fast_cancels_the_rest() {
        let mut s = diamond(true, 1);
        assert_eq!(s.start_ready(), vec![0]);
        let d = s.finish(0, false, true);
        assert!(d.stop_running);
        assert_eq!(s.slot(1), &Slot::Skipped { because: 0 });
        assert_eq!(s.slot(4), &Slot::Cancelled);
        assert!(s.start_ready().is_empty());
        assert!(s.is_done());
    }

    #[test]
    fn keep_going_skips_only_dependents() {
        let mut s = diamond(false, 4);
        assert_eq!(s.start_ready(), vec![0, 4]);
        s.finish(4, true, false);
        s.finish(0, false, true);
        assert_eq!(s.slot(1), &Slot::Skipped { because: 0 });
        assert_eq!(s.slot(3), &Slot::Skipped { because: 0 });
        assert!(s.is_done());

        let mut s = diamond(false, 4);
        s.start_ready();
        s.finish(0, true, false);
        assert_eq!(s.start_ready(), vec![1, 2]);
        s.finish(1, false, true);
        assert_eq!(s.slot(3), &Slot::Skipped { because: 1 });
        assert_eq!(s.slot(2), &Slot::Running, "an independent branch goes on");
    }

    #[test]
    fn allowed_failure_lets_dependents_run() {
        let mut s = diamond(true, 4);
        s.start_ready();
        let d = s.finish(0, true, false);
        assert!(!d.stop_running);
        assert_eq!(s.start_ready(), vec![1, 2]);
    }

    #[test]
    fn a_ready_service_frees_its_slot_and_unlocks_dependents() {
        // svc -> a, svc -> b; jobs = 1.
        let upstream = vec![vec![], vec![0], vec![0]];
        let downstream = vec![vec![1, 2], vec![], vec![]];
        let mut s = Scheduler::new(&upstream, &downstream, &[0, 1, 2], &[true; 3], true, 1);
        assert_eq!(s.start_ready(), vec![0]);
        assert!(s.start_ready().is_empty());
        s.service_ready(0);
        assert_eq!(s.slot(0), &Slot::Serving);
        assert_eq!(s.start_ready(), vec![1], "the service holds no slot");
        assert!(!s.no_longer_needed(0));
        s.finish(1, true, false);
        assert_eq!(s.start_ready(), vec![2]);
        s.finish(2, true, false);
        assert!(s.no_longer_needed(0));
        assert!(
            s.is_done(),
            "only the service is left, and it holds no slot"
        );
        assert_eq!(s.serving().collect::<Vec<_>>(), vec![0]);
        s.finish(0, true, false);
        assert_eq!(s.serving().count(), 0);
    }

    #[test]
    fn a_ready_services_dependents_start_before_steps_that_need_no_service() {
        // svc -> a; b and c alone; plan order svc, b, c, a; jobs = 1.
        let upstream = vec![vec![], vec![0], vec![], vec![]];
        let downstream = vec![vec![1], vec![], vec![], vec![]];
        let order = [0, 2, 3, 1];
        let mut s = Scheduler::new(&upstream, &downstream, &order, &[true; 4], true, 1);
        s.prefer_service_dependents(|u| u == 0);
        assert_eq!(s.start_ready(), vec![0]);
        s.service_ready(0);
        assert_eq!(
            s.start_ready(),
            vec![1],
            "a needs the service: it goes first"
        );
        s.finish(1, true, false);
        assert!(s.no_longer_needed(0), "the service can stop before b and c");
        assert_eq!(s.start_ready(), vec![2]);
        s.finish(2, true, false);
        assert_eq!(s.start_ready(), vec![3]);
        // Without the preference, plan order alone: b, c, then a.
        let mut s = Scheduler::new(&upstream, &downstream, &order, &[true; 4], true, 1);
        assert_eq!(s.start_ready(), vec![0]);
        s.service_ready(0);
        assert_eq!(s.start_ready(), vec![2]);
    }

    #[test]
    fn a_dependent_made_ready_by_a_service_that_then_fails_is_skipped_not_started() {
        // b; svc -> a; jobs = 1; a is ready (ranked first) when svc fails before a starts.
        let upstream = vec![vec![], vec![], vec![1]];
        let downstream = vec![vec![], vec![2], vec![]];
        let mut s = Scheduler::new(&upstream, &downstream, &[1, 0, 2], &[true; 3], false, 1);
        s.prefer_service_dependents(|u| u == 1);
        assert_eq!(s.start_ready(), vec![1]);
        s.service_ready(1);
        assert_eq!(s.slot(2), &Slot::Ready);
        s.finish(1, false, true);
        assert_eq!(s.slot(2), &Slot::Skipped { because: 1 });
        assert_eq!(s.start_ready(), vec![0], "b starts; a, skipped, does not");
        s.finish(0, true, false);
        assert!(s.is_done());
    }

    #[test]
    fn a_failing_service_fails_fast() {
        let upstream = vec![vec![], vec![0], vec![]];
        let downstream = vec![vec![1], vec![], vec![]];
        let mut s = Scheduler::new(&upstream, &downstream, &[0, 2, 1], &[true; 3], true, 4);
        s.start_ready();
        s.service_ready(0);
        assert_eq!(s.start_ready(), vec![1]);
        let d = s.finish(0, false, true);
        assert!(d.stop_running, "a service that dies stops the run");
    }

    #[test]
    fn only_selected_steps_run() {
        let upstream = vec![vec![], vec![0], vec![]];
        let downstream = vec![vec![1], vec![], vec![]];
        let mut s = Scheduler::new(
            &upstream,
            &downstream,
            &[0, 2, 1],
            &[true, true, false],
            true,
            4,
        );
        assert_eq!(s.start_ready(), vec![0]);
        assert_eq!(s.slot(2), &Slot::NotSelected);
    }

    proptest! {
        /// Random DAGs, random outcomes, random finishing order, random steps ranked as a
        /// service's dependents: the run never stalls and never starts a step before its
        /// upstream succeeded (nor one skipped after a failure).
        #[test]
        fn never_stalls(n in 1usize..30, edges in proptest::collection::vec((0usize..30, 0usize..30), 0..60),
                        outcomes in proptest::collection::vec(any::<bool>(), 30),
                        picks in proptest::collection::vec(any::<prop::sample::Index>(), 60),
                        services in proptest::collection::vec(any::<bool>(), 30),
                        fail_fast in any::<bool>(), jobs in 1usize..4) {
            let mut upstream = vec![Vec::new(); n];
            let mut downstream = vec![Vec::new(); n];
            for (a, b) in edges {
                let (a, b) = (a % n, b % n);
                if a < b && !upstream[b].contains(&a) {
                    upstream[b].push(a);
                    downstream[a].push(b);
                }
            }
            let order: Vec<usize> = (0..n).collect();
            let mut s = Scheduler::new(&upstream, &downstream, &order, &vec![true; n], fail_fast, jobs);
            // Their dependents are ranked first; the "services" themselves run as tasks here.
            s.prefer_service_dependents(|u| services[u]);
            let mut running: Vec<usize> = Vec::new();
            let mut succeeded = vec![false; n];
            let mut k = 0;
            loop {
                for started in s.start_ready() {
                    for &u in &upstream[started] {
                        prop_assert!(succeeded[u], "step {} started before {}", started, u);
                    }
                    running.push(started);
                }
                prop_assert!(s.invariant_holds());
                if s.is_done() { break; }
                prop_assert!(!running.is_empty(), "stalled with work left");
                let i = picks[k % picks.len()].index(running.len());
                k += 1;
                let step = running.swap_remove(i);
                let ok = outcomes[step];
                // A success may first free its slot (its command exited): steps already
                // ready fill it, and none of its dependents may start before `finish`.
                if ok && k % 2 == 0 {
                    s.release(step);
                    for started in s.start_ready() {
                        for &u in &upstream[started] {
                            prop_assert!(succeeded[u], "step {} started before {}", started, u);
                        }
                        running.push(started);
                    }
                    prop_assert!(running.len() <= jobs, "more steps than job slots");
                    prop_assert!(s.invariant_holds());
                    prop_assert!(!s.is_done(), "done while a released step is unfinished");
                }
                succeeded[step] = ok;
                s.finish(step, ok, !ok);
            }
            prop_assert!(running.is_empty());
        }
    }
}
