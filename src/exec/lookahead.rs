//! Looking ahead for outputs that are not there, beside the run.
//!
//! A step with a recorded success is up to date only if its declared outputs are there
//! (`fingerprint`), so as it becomes ready the executor looks them up. In a tree whose
//! outputs were deleted (`rm -rf out`, then the workflow again: the common way to rebuild)
//! that lookup is of a name the kernel has not seen yet, and it takes the folder's lock,
//! which every step then creating its output in the same folder holds in turn: at 1,000
//! steps the executor's thread was put to sleep there 260 times, and the run took 1.20x
//! make's time instead of 1.05x (`scripts/bench-run.sh`, "again": the history kept).
//!
//! So a thread of its own looks at the selected steps' outputs as the run starts (when any
//! step has a record), in the order the steps come, and marks the steps with one missing.
//! Such a step is not up to date, and the executor starts it without a lookup of its own.
//! A mark can only make a step run: an output missing at some moment of this run, then
//! put back, has a new modification time and would not match its record anyway. A step
//! not yet looked at, or whose outputs are there, is checked as before.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;

use super::fingerprint;
use crate::validate::Workflow;

const UNKNOWN: u8 = 0;
const MISSING: u8 = 1;
const THERE: u8 = 2;

/// The marks, filled in by the look-ahead thread; its work stops when this is dropped.
pub struct Absent {
    marks: Arc<[AtomicU8]>,
    stop: Arc<AtomicBool>,
}

impl Absent {
    /// Nothing marked: every step is checked as it becomes ready.
    pub fn none() -> Self {
        Self {
            marks: Arc::from([]),
            stop: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Starts looking at the outputs of `steps` (indexes into `wf.steps`, in the order
    /// they are likely to become ready); a step without outputs is passed over. Without a
    /// thread, nothing is marked.
    pub fn look_ahead(wf: &Arc<Workflow>, steps: Vec<usize>) -> Self {
        if steps.is_empty() {
            return Self::none();
        }
        let marks: Arc<[AtomicU8]> = (0..wf.steps.len())
            .map(|_| AtomicU8::new(UNKNOWN))
            .collect();
        let stop = Arc::new(AtomicBool::new(false));
        let (wf, m, s) = (Arc::clone(wf), Arc::clone(&marks), Arc::clone(&stop));
        let looking = std::thread::Builder::new()
            .name("bgflow-lookahead".into())
            .spawn(move || {
                for i in steps {
                    if s.load(Ordering::Relaxed) {
                        return;
                    }
                    let outputs = &wf.steps[i].outputs;
                    if outputs.is_empty() {
                        continue;
                    }
                    let there = fingerprint::outputs_exist(&wf.root, outputs);
                    m[i].store(if there { THERE } else { MISSING }, Ordering::Relaxed);
                }
            });
        match looking {
            Ok(_) => Self { marks, stop },
            Err(_) => Self::none(),
        }
    }

    /// Whether step `s` had a declared output missing when it was looked at.
    pub fn missing(&self, s: usize) -> bool {
        self.marks
            .get(s)
            .is_some_and(|m| m.load(Ordering::Relaxed) == MISSING)
    }
}

impl Drop for Absent {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn steps_with_an_output_missing_are_marked_and_no_other() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("there.txt"), "x").unwrap();
        let file = dir.path().join("bgflow.toml");
        std::fs::write(
            &file,
            "[workflow]\nname = \"w\"\n\n\
             [steps.a]\nrun = \"true\"\noutputs = [\"there.txt\"]\n\n\
             [steps.b]\nrun = \"true\"\noutputs = [\"gone.txt\"]\n\n\
             [steps.c]\nrun = \"true\"\noutputs = [\"there.txt\", \"gone/\"]\n\n\
             [steps.d]\nrun = \"true\"\noutputs = [\"gone.txt\"]\n",
        )
        .unwrap();
        let source = crate::diag::read_source(&file).unwrap();
        let wf = Arc::new(
            crate::validate::check(&source, &Default::default())
                .workflow
                .unwrap(),
        );
        let index = |name: &str| wf.steps.iter().position(|s| s.name == name).unwrap();
        // d is not asked about: it stays unmarked, so it is checked as before.
        let absent = Absent::look_ahead(&wf, vec![index("a"), index("b"), index("c")]);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !(absent.missing(index("b")) && absent.missing(index("c"))) {
            assert!(
                std::time::Instant::now() < deadline,
                "the look-ahead never marked b and c"
            );
            std::thread::yield_now();
        }
        // a was looked at before b: its mark is final.
        assert!(!absent.missing(index("a")));
        assert!(!absent.missing(index("d")));
        assert!(!Absent::none().missing(0));
    }
}
