//! Threads, and the heap they share.
//!
//! Work on every core without a thread pool: a list is cut into one run of consecutive items
//! per core, and the runs are handled at once on scoped threads. Used where `bgflow plan`
//! handles thousands of independent steps; results come back in the list's order. Also
//! one call on a thread of its own (`on_a_fresh_thread`), two calls at once (`beside`) and
//! one heap for every thread (`one_heap`), which `bgflow run` uses to supervise its steps
//! and to write its summary.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

static ONE_THREAD: AtomicBool = AtomicBool::new(false);

/// Keeps all later work on the calling thread. `bgflow run` validates this way: speed
/// matters little there, and checks made one after another hold less memory at once
/// (5 MB less at the peak of a 10,000-step run, and no slower at 1,000 steps).
pub fn use_one_thread() {
    ONE_THREAD.store(true, Ordering::Relaxed);
}

/// Makes every thread allocate from the main thread's heap. glibc gives each thread that
/// allocates a heap ("arena") of its own and does not hand memory freed in one heap to
/// another thread's allocations. `bgflow run` checks the workflow on the main thread and
/// supervises the steps on another (`on_a_fresh_thread`); with one heap the supervisor
/// reuses what the checks freed (10 MB at 10,000 steps). Call before other threads start.
#[allow(unsafe_code)]
pub fn one_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` changes a setting of glibc's allocator under the allocator's own
    // lock and takes no pointers; a limit of one arena only stops new arenas being made.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// Hands the heap's free pages back to the system (glibc's `malloc_trim`). A long-lived
/// server calls it when idle: after a large reply (a `list_runs` of 1,000 runs builds
/// megabytes of JSON) the freed memory would otherwise stay in the process for good.
#[allow(unsafe_code)]
pub fn give_back_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` works under the allocator's own lock and takes no pointers; it
    // only releases pages no allocation uses.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Runs `f` on a new thread named `name` and waits for it; a panic in `f` goes on in the
/// caller. Errs, without calling `f`, when the thread cannot be started.
pub fn on_a_fresh_thread<R: Send>(name: &str, f: impl FnOnce() -> R + Send) -> io::Result<R> {
    std::thread::scope(|scope| {
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn_scoped(scope, f)?;
        Ok(thread
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
    })
}

/// Asks the kernel to let the calling thread take a CPU as soon as it wakes: a request
/// for a short time slice (Linux 6.12+, `sched_setattr` with `sched_runtime` on a
/// SCHED_OTHER thread, allowed without privileges). The thread that supervises the steps
/// wakes for each step's exit, works some 50 µs and sleeps again. With the default slice
/// the kernel often queued it behind a running step on one CPU while the CPU whose step
/// had just exited stayed idle, for the whole of that step (about 1 ms, 17 times in a
/// run of 1,000 `touch` steps: 4% of the run); a short slice preempts on wake-up. The
/// steps are not changed: reset-on-fork gives every child the default slice back. Left
/// alone when the thread runs under another policy or a negative nice value (which
/// reset-on-fork would raise to 0 for the steps); older kernels refuse or ignore the
/// request, and the run goes on either way.
#[allow(unsafe_code)]
pub fn short_slice() {
    #[cfg(target_os = "linux")]
    {
        /// `struct sched_attr`, the first version (48 bytes).
        #[repr(C)]
        struct SchedAttr {
            size: u32,
            policy: u32,
            flags: u64,
            nice: i32,
            priority: u32,
            runtime: u64,
            deadline: u64,
            period: u64,
        }
        const SCHED_FLAG_RESET_ON_FORK: u64 = 1;
        const SLICE_NS: u64 = 100_000;
        // SAFETY: queries of the calling thread's own scheduling, taking no pointers.
        let policy = unsafe { libc::sched_getscheduler(0) };
        if policy != libc::SCHED_OTHER {
            return;
        }
        // getpriority returns -1 both for nice -1 and for an error: either way, leave it.
        // SAFETY: as above.
        let nice = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
        if nice < 0 {
            return;
        }
        let attr = SchedAttr {
            size: std::mem::size_of::<SchedAttr>() as u32,
            policy: libc::SCHED_OTHER as u32,
            flags: SCHED_FLAG_RESET_ON_FORK,
            nice,
            priority: 0,
            runtime: SLICE_NS,
            deadline: 0,
            period: 0,
        };
        // SAFETY: `attr` is a valid `struct sched_attr` of the size it says, read by the
        // kernel during the call only; pid 0 is the calling thread.
        unsafe {
            libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0);
        }
    }
}

/// Runs `there` on a new thread named `name` while `here` runs on the calling thread, and
/// returns both results. When the thread cannot be started, `there` runs here after `here`.
/// A panic in either goes on in the caller.
pub fn beside<A: Send, B>(
    name: &str,
    there: impl Fn() -> A + Sync,
    here: impl FnOnce() -> B,
) -> (A, B) {
    std::thread::scope(|scope| {
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn_scoped(scope, &there);
        let b = here();
        let a = match thread {
            Ok(thread) => thread
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            Err(_) => there(),
        };
        (a, b)
    })
}

/// How many threads parallel work may use.
pub fn threads() -> usize {
    if ONE_THREAD.load(Ordering::Relaxed) {
        1
    } else {
        std::thread::available_parallelism().map_or(1, usize::from)
    }
}

/// Calls `f` on consecutive runs of `items` (each at least `min_run` long, one per core) at
/// once, and returns the results in order. The runs are slices of `items`, so nothing is
/// copied; `f` may take what it needs out of them. A single run is handled without a thread;
/// a run whose thread cannot be started (or has not started yet) is handled by the caller's.
pub fn map_runs<T: Send, R: Send>(
    items: &mut [T],
    min_run: usize,
    f: impl Fn(&mut [T]) -> R + Sync,
) -> Vec<R> {
    let cores = threads();
    let runs = cores.min(items.len() / min_run.max(1)).max(1);
    if runs == 1 {
        return vec![f(items)];
    }
    let per_run = items.len().div_ceil(runs);
    let slots: Vec<Mutex<Option<&mut [T]>>> = items
        .chunks_mut(per_run)
        .map(|run| Mutex::new(Some(run)))
        .collect();
    let results: Vec<Mutex<Option<R>>> = slots.iter().map(|_| Mutex::new(None)).collect();
    let work = |i: usize| {
        let run = lock(&slots[i]).take();
        if let Some(run) = run {
            let r = f(run);
            *lock(&results[i]) = Some(r);
        }
    };
    let work = &work;
    std::thread::scope(|scope| {
        for i in 1..slots.len() {
            // Not started: the loop below does the run here.
            let _ = std::thread::Builder::new()
                .name("bgflow-work".into())
                .spawn_scoped(scope, move || work(i));
        }
        for i in 0..slots.len() {
            work(i);
        }
    });
    results
        .into_iter()
        .map(|r| {
            r.into_inner()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .expect("every run is handled by a thread or by the caller")
        })
        .collect()
}

/// The runs' lists as one, grown from the first (a large list grows in place, unlike a
/// fresh one that must be faulted in page by page).
pub fn concat<T>(runs: Vec<Vec<T>>) -> Vec<T> {
    let mut runs = runs.into_iter();
    let mut all = runs.next().unwrap_or_default();
    for mut more in runs {
        all.append(&mut more);
    }
    all
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beside_runs_one_call_on_a_named_thread_and_returns_both() {
        let (there, here) = beside(
            "bgflow-test",
            || std::thread::current().name().map(str::to_owned),
            || std::thread::current().name().map(str::to_owned),
        );
        assert_eq!(there.as_deref(), Some("bgflow-test"));
        assert_ne!(here.as_deref(), Some("bgflow-test"));
    }

    #[test]
    fn results_keep_the_order_of_the_items() {
        let mut items: Vec<u32> = (0..10_000).collect();
        let runs = map_runs(&mut items, 100, |run| {
            run.iter().map(|x| x * 2).collect::<Vec<_>>()
        });
        let flat = concat(runs);
        assert_eq!(flat, (0..10_000).map(|x| x * 2).collect::<Vec<_>>());
    }

    #[test]
    fn a_short_list_is_one_run() {
        let runs = map_runs(&mut [1, 2, 3], 100, |run| run.len());
        assert_eq!(runs, vec![3]);
    }
}
